package headers_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/headers"
	"github.com/assetsup/webhooks/internal/testfixture"
)

func TestReserved(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"Host", true}, {"host", true}, {"CONTENT-TYPE", true}, {"Content-Length", true},
		{"transfer-encoding", true}, {"Connection", true}, {"User-Agent", true}, {"Keep-Alive", true},
		{"TE", true}, {"Trailer", true}, {"Upgrade", true}, {"Expect", true}, {"Proxy-Connection", true},
		{"X-AssetsUp-Signature", true}, {"x-assetsup-anything", true}, {"X-ASSETSUP-", true},
		{"webhook-id", true}, {"Webhook-Signature", true}, {"WEBHOOK-TIMESTAMP", true},
		{"Authorization", false}, {"X-Api-Key", false}, {"X-AssetsUpX", false}, {"Webhook", false}, {"X-Webhook-Token", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, headers.Reserved(tt.give), tt.give)
	}
}

func TestValidate(t *testing.T) {
	got, err := headers.Validate(map[string]string{"x-api-key": "k", "Authorization": "Bearer t\tx"}, 2, 100)
	require.NoError(t, err)
	assert.Equal(t, []headers.Header{{Name: "Authorization", Value: "Bearer t\tx"}, {Name: "X-Api-Key", Value: "k"}}, got, "canonical names, sorted")
	none, err := headers.Validate(map[string]string{}, 0, 1)
	require.NoError(t, err)
	assert.Empty(t, none)

	tests := []struct {
		name     string
		give     map[string]string
		maxCount int
		maxBytes int
		want     string
	}{
		{name: "reserved", give: map[string]string{"Host": "x"}, maxCount: 5, maxBytes: 100, want: "Host is reserved"},
		{name: "not a token", give: map[string]string{"X Key": "v"}, maxCount: 5, maxBytes: 100, want: "not a valid HTTP header name"},
		{name: "non-ASCII name", give: map[string]string{"X-Clé": "v"}, maxCount: 5, maxBytes: 100, want: "not a valid"},
		{name: "CRLF injection", give: map[string]string{"X-Key": "v\r\nHost: evil"}, maxCount: 5, maxBytes: 100, want: "control character"},
		{name: "empty value", give: map[string]string{"X-Key": ""}, maxCount: 5, maxBytes: 100, want: "empty"},
		{name: "same name twice", give: map[string]string{"X-KEY": "a", "x-key": "b"}, maxCount: 5, maxBytes: 100, want: "twice"},
		{name: "too many", give: map[string]string{"A": "1", "B": "2", "C": "3"}, maxCount: 2, maxBytes: 100, want: "at most 2"},
		{name: "too large", give: map[string]string{"X-Key": strings.Repeat("v", 20)}, maxCount: 5, maxBytes: 20, want: "at most 20"},
		{name: "disabled", give: map[string]string{"X-Key": "v"}, maxCount: 0, maxBytes: 100, want: "not enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := headers.Validate(tt.give, tt.maxCount, tt.maxBytes)
			var p *headers.Problem
			require.ErrorAs(t, err, &p)
			assert.Contains(t, p.Message, tt.want)
		})
	}
}

// Sealed headers open for their webhook only, and not as its signing secret would.
func TestSealOpen(t *testing.T) {
	box := testfixture.Box(t)
	hs := []headers.Header{{Name: "Authorization", Value: "Bearer abc"}, {Name: "X-Api-Key", Value: "k\"ey"}}
	sealed, version, err := headers.Seal(box, "webhook-1", hs)
	require.NoError(t, err)
	assert.NotContains(t, string(sealed), "Bearer abc")
	got, err := headers.Open(box, "webhook-1", sealed, version)
	require.NoError(t, err)
	assert.Equal(t, hs, got)

	_, err = headers.Open(box, "webhook-2", sealed, version)
	assert.Error(t, err, "bound to its webhook")
	_, err = box.Open("webhook-1", sealed, version)
	assert.Error(t, err, "not a signing secret of the same webhook")
	_, err = headers.Open(testfixture.Box(t), "webhook-1", sealed, version)
	assert.Error(t, err, "another master key")

	none, version, err := headers.Seal(box, "webhook-1", nil)
	require.NoError(t, err)
	assert.Nil(t, none)
	got, err = headers.Open(box, "webhook-1", none, version)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestFingerprint(t *testing.T) {
	sum := sha256.Sum256([]byte("Bearer abc"))
	assert.Equal(t, hex.EncodeToString(sum[:])[:16], headers.Fingerprint("Bearer abc"))
	assert.NotEqual(t, headers.Fingerprint("a"), headers.Fingerprint("b"))
}
