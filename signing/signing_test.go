package signing_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/signing"
)

// The in-repository copy must not drift from the original it was copied from. The
// original is not part of the repository: make test names it in SHARED_SIGNATURE_VECTORS
// when it sits beside the checkout. This is the only test that may skip, when there is
// no original to compare with; every other test reads the copy and fails without it.
func TestVectorsMatchShared(t *testing.T) {
	original := os.Getenv("SHARED_SIGNATURE_VECTORS")
	if original == "" {
		t.Skipf("SHARED_SIGNATURE_VECTORS is not set: no original to compare %s against", testfixture.SignatureVectorsFile)
	}
	shared, err := os.ReadFile(original)
	require.NoError(t, err)
	own, err := os.ReadFile(filepath.Join("..", testfixture.SignatureVectorsFile))
	require.NoError(t, err)
	assert.Equal(t, string(shared), string(own), "%s differs from %s: copy the original over it", testfixture.SignatureVectorsFile, original)
}

func TestSignMatchesVectors(t *testing.T) {
	for i, v := range testfixture.SignatureVectors(t) {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			assert.Equal(t, v.AssetsUp, signing.Sign(v.Secret, []byte(v.Body)))
			assert.True(t, signing.Verify(v.Secret, []byte(v.Body), v.AssetsUp))
			assert.False(t, signing.Verify(v.Secret, []byte(v.Body+" "), v.AssetsUp))
			assert.False(t, signing.Verify(v.Secret+"x", []byte(v.Body), v.AssetsUp))

			ts, err := strconv.ParseInt(v.WebhookTimestamp, 10, 64)
			require.NoError(t, err)
			got, err := signing.StandardSign(v.Secret, v.WebhookID, ts, []byte(v.Body))
			require.NoError(t, err)
			assert.Equal(t, v.WebhookSignature, got)
		})
	}
}

func TestSignAllDuringRotation(t *testing.T) {
	vs := testfixture.SignatureVectors(t)
	newSecret, oldSecret := vs[1].Secret, vs[0].Secret
	body := []byte(vs[0].Body)

	header := signing.SignAll([]string{newSecret, oldSecret}, body)
	assert.Equal(t, signing.Sign(newSecret, body)+","+signing.Sign(oldSecret, body), header)
	assert.True(t, signing.Verify(oldSecret, body, header))
	assert.True(t, signing.Verify(newSecret, body, header))
	assert.False(t, signing.Verify("whsec_other", body, header))

	std, err := signing.StandardSignAll([]string{newSecret, oldSecret}, "evt_01", 1795867200, body)
	require.NoError(t, err)
	assert.Contains(t, std, vs[0].WebhookSignature)
	assert.Regexp(t, `^v1,\S+ v1,\S+$`, std)
}

func TestStandardSignRejectsNonBase64Secret(t *testing.T) {
	_, err := signing.StandardSign("whsec_***", "m", 1, nil)
	require.Error(t, err)
}

func FuzzVerify(f *testing.F) {
	f.Add("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", []byte(`{"a":1}`), "sha256=00")
	f.Add("", []byte{}, "")
	f.Add("k", []byte("x"), ",,sha256=,")
	f.Fuzz(func(t *testing.T, secret string, body []byte, header string) {
		sig := signing.Sign(secret, body)
		if !signing.Verify(secret, body, sig) {
			t.Fatalf("own signature does not verify")
		}
		if !signing.Verify(secret, body, header+","+sig) {
			t.Fatalf("signature in a list does not verify")
		}
		_ = signing.Verify(secret, body, header)
		_, _ = signing.StandardSign(secret, "id", 1, body)
	})
}

// SetHeaders must put the vectors' own values on the wire, under the exact names
// receivers and Standard Webhooks libraries read.
func TestSetHeadersMatchesVectors(t *testing.T) {
	for i, v := range testfixture.SignatureVectors(t) {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			ts, err := strconv.ParseInt(v.WebhookTimestamp, 10, 64)
			require.NoError(t, err)
			h := http.Header{}
			require.NoError(t, signing.SetHeaders(h, []string{v.Secret}, signing.Delivery{
				Event: "LOW_STOCK", DeliveryID: "d-1", MsgID: v.WebhookID, Timestamp: ts, Body: []byte(v.Body),
			}))
			assert.Equal(t, http.Header{
				"X-Assetsup-Signature": {v.AssetsUp},
				"X-Assetsup-Event":     {"LOW_STOCK"},
				"X-Assetsup-Delivery":  {"d-1"},
				"X-Assetsup-Timestamp": {v.WebhookTimestamp},
				"webhook-id":           {v.WebhookID},
				"webhook-timestamp":    {v.WebhookTimestamp},
				"webhook-signature":    {v.WebhookSignature},
			}, h)
		})
	}
	err := signing.SetHeaders(http.Header{}, []string{"whsec_%%%"}, signing.Delivery{MsgID: "m", Body: []byte("{}")})
	assert.Error(t, err, "a secret that is not base64 cannot sign")
}
