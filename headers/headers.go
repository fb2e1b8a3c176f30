// Package headers handles the custom headers a receiver asks for on its webhook (an API
// gateway's Authorization or X-Api-Key): which names and values are acceptable, and how
// they are kept. Values are secrets: they are sealed at rest like the signing secret,
// shown afterwards only as a fingerprint, and opened only by the send activity.
package headers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/assetsup/webhooks/secrets"
)

// Header is one custom header, its name in canonical form.
type Header struct {
	Name  string
	Value string
}

// reservedNames are headers the service sets itself, or that HTTP gives a meaning a
// receiver's setting must not change (framing, connection handling, the target host).
var reservedNames = []string{
	"Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "User-Agent",
	"Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Expect",
}

// reservedPrefixes are the service's own header families: its signature and ids, and
// the Standard Webhooks headers.
var reservedPrefixes = []string{"X-Assetsup-", "Webhook-"}

// Reserved says whether name (any case) is one a receiver may not set.
func Reserved(name string) bool {
	c := http.CanonicalHeaderKey(name)
	if slices.Contains(reservedNames, c) {
		return true
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(c, p) {
			return true
		}
	}
	return false
}

// Problem is why a set of headers was refused, worded for the API's caller.
type Problem struct{ Message string }

func (p *Problem) Error() string { return p.Message }

// Validate checks a requested set of headers: at most maxCount, names that are HTTP
// tokens and not reserved, each name once whatever its case, values that are valid
// field values (no CR, LF or NUL), and at most maxBytes of names and values together.
// It returns them sorted by canonical name.
func Validate(in map[string]string, maxCount, maxBytes int) ([]Header, error) {
	if maxCount == 0 && len(in) > 0 {
		return nil, &Problem{"custom headers are not enabled on this service"}
	}
	if len(in) > maxCount {
		return nil, &Problem{fmt.Sprintf("at most %d headers are allowed, got %d", maxCount, len(in))}
	}
	out := make([]Header, 0, len(in))
	size := 0
	for name, value := range in {
		c := http.CanonicalHeaderKey(name)
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			return nil, &Problem{fmt.Sprintf("header name %q is not a valid HTTP header name", name)}
		case Reserved(name):
			return nil, &Problem{fmt.Sprintf("header %s is reserved: the service sets it, or HTTP gives it a meaning of its own (reserved: %s, and every X-AssetsUp-* and webhook-* header)",
				c, strings.Join(reservedNames, ", "))}
		case strings.TrimSpace(value) == "":
			return nil, &Problem{fmt.Sprintf("header %s has an empty value", c)}
		case !httpguts.ValidHeaderFieldValue(value):
			return nil, &Problem{fmt.Sprintf("header %s has a value with a control character (CR, LF, NUL ...)", c)}
		}
		if slices.ContainsFunc(out, func(h Header) bool { return h.Name == c }) {
			return nil, &Problem{fmt.Sprintf("header %s is given twice (names are case-insensitive)", c)}
		}
		size += len(name) + len(value)
		out = append(out, Header{Name: c, Value: value})
	}
	if size > maxBytes {
		return nil, &Problem{fmt.Sprintf("headers total %d bytes of names and values; at most %d are allowed", size, maxBytes)}
	}
	slices.SortFunc(out, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Fingerprint identifies a value without showing it: the first 16 hex digits of its
// SHA-256, which its owner can compute to check which value is set
// (printf %s "$VALUE" | sha256sum | cut -c1-16).
func Fingerprint(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])[:16]
}

// additionalData binds sealed headers to one webhook, and apart from its signing secret
// (sealed under the bare webhook id), so neither opens in the other's place.
func additionalData(webhookID string) string { return "headers:" + webhookID }

// Seal encrypts hs for webhookID under box's current key. No headers seal to nil.
func Seal(box *secrets.Box, webhookID string, hs []Header) (sealed []byte, keyVersion int, err error) {
	if len(hs) == 0 {
		return nil, 0, nil
	}
	pairs := make([][2]string, len(hs))
	for i, h := range hs {
		pairs[i] = [2]string{h.Name, h.Value}
	}
	plain, err := json.Marshal(pairs)
	if err != nil {
		return nil, 0, fmt.Errorf("encode headers: %w", err)
	}
	return box.Seal(additionalData(webhookID), string(plain))
}

// Open decrypts what Seal sealed for webhookID. Nil opens to no headers.
func Open(box *secrets.Box, webhookID string, sealed []byte, keyVersion int) ([]Header, error) {
	if sealed == nil {
		return nil, nil
	}
	plain, err := box.Open(additionalData(webhookID), sealed, keyVersion)
	if err != nil {
		return nil, err
	}
	var pairs [][2]string
	if err := json.Unmarshal([]byte(plain), &pairs); err != nil {
		return nil, fmt.Errorf("decode headers: %w", err)
	}
	hs := make([]Header, len(pairs))
	for i, p := range pairs {
		hs[i] = Header{Name: p[0], Value: p[1]}
	}
	return hs, nil
}
