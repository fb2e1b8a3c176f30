// Package signing computes and checks the signatures receivers use to trust a delivery.
//
// Two schemes ride on every request: our own X-AssetsUp-Signature (HMAC-SHA256 of the
// raw body keyed by the whole whsec_ string, GitHub style) and Standard Webhooks'
// webhook-signature, so receivers can use either their own code or an official library.
package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/assetsup/webhooks/secrets"
)

// Header names set on every delivery.
const (
	HeaderSignature = "X-AssetsUp-Signature"
	HeaderEvent     = "X-AssetsUp-Event"
	HeaderDelivery  = "X-AssetsUp-Delivery"
	HeaderTimestamp = "X-AssetsUp-Timestamp"

	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// Sign returns "sha256=<lowercase hex HMAC-SHA256(secret, body)>".
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// SignAll signs with every secret, newest first, comma-separated: during a secret
// rotation receivers holding either secret can verify.
func SignAll(secrets []string, body []byte) string {
	parts := make([]string, len(secrets))
	for i, s := range secrets {
		parts[i] = Sign(s, body)
	}
	return strings.Join(parts, ",")
}

// Verify reports whether header holds a valid signature of body under secret,
// comparing in constant time. header may list several signatures.
func Verify(secret string, body []byte, header string) bool {
	want := []byte(Sign(secret, body))
	ok := false
	for _, part := range strings.Split(header, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(part)), want) {
			ok = true
		}
	}
	return ok
}

// StandardSign returns the Standard Webhooks signature "v1,<base64 HMAC-SHA256>" over
// "msgID.timestamp.body", keyed by the base64-decoded part of the secret after "whsec_".
func StandardSign(secret, msgID string, timestamp int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secrets.Prefix))
	if err != nil {
		return "", fmt.Errorf("decode secret: not base64 after %s", secrets.Prefix)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// StandardSignAll signs with every secret, space-separated as the spec prescribes.
func StandardSignAll(secrets []string, msgID string, timestamp int64, body []byte) (string, error) {
	parts := make([]string, len(secrets))
	for i, s := range secrets {
		sig, err := StandardSign(s, msgID, timestamp, body)
		if err != nil {
			return "", err
		}
		parts[i] = sig
	}
	return strings.Join(parts, " "), nil
}

// Delivery names one signed POST: what it carries and which event and delivery it is.
type Delivery struct {
	Event      string
	DeliveryID string
	MsgID      string // Standard Webhooks' webhook-id: the event id (the delivery id for tests)
	Timestamp  int64
	Body       []byte
}

// SetHeaders sets every signature and identity header of d on h, signed with each of
// secrets (newest first). The Standard Webhooks names are set as written, lower case,
// as that spec shows them.
func SetHeaders(h http.Header, secrets []string, d Delivery) error {
	std, err := StandardSignAll(secrets, d.MsgID, d.Timestamp, d.Body)
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(d.Timestamp, 10)
	h.Set(HeaderSignature, SignAll(secrets, d.Body))
	h.Set(HeaderEvent, d.Event)
	h.Set(HeaderDelivery, d.DeliveryID)
	h.Set(HeaderTimestamp, ts)
	h[HeaderWebhookID] = []string{d.MsgID}
	h[HeaderWebhookTimestamp] = []string{ts}
	h[HeaderWebhookSignature] = []string{std}
	return nil
}
