package secrets_test

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/secrets"
)

func newKey(t *testing.T, version int) secrets.Key {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	k, err := secrets.ParseKey(version, base64.StdEncoding.EncodeToString(b))
	require.NoError(t, err)
	return k
}

func TestGenerate(t *testing.T) {
	s1, err := secrets.Generate()
	require.NoError(t, err)
	s2, err := secrets.Generate()
	require.NoError(t, err)
	assert.NotEqual(t, s1, s2)
	require.True(t, strings.HasPrefix(s1, "whsec_"))
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s1, "whsec_"))
	require.NoError(t, err)
	assert.Len(t, raw, 32)
	assert.Len(t, secrets.Fingerprint(s1), 64)
	assert.NotContains(t, secrets.Fingerprint(s1), strings.TrimPrefix(s1, "whsec_"))
}

func TestSealOpenRoundTrip(t *testing.T) {
	box, err := secrets.NewBox(newKey(t, 1))
	require.NoError(t, err)
	secret, err := secrets.Generate()
	require.NoError(t, err)

	sealed, v, err := box.Seal("wh-1", secret)
	require.NoError(t, err)
	assert.Equal(t, 1, v)
	assert.NotContains(t, string(sealed), secret)

	got, err := box.Open("wh-1", sealed, v)
	require.NoError(t, err)
	assert.Equal(t, secret, got)
}

func TestOpenRejects(t *testing.T) {
	key := newKey(t, 1)
	box, err := secrets.NewBox(key)
	require.NoError(t, err)
	sealed, v, err := box.Seal("wh-1", "whsec_abc")
	require.NoError(t, err)

	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 0x01
	otherBox, err := secrets.NewBox(newKey(t, 1))
	require.NoError(t, err)

	tests := []struct {
		name    string
		box     *secrets.Box
		webhook string
		sealed  []byte
		version int
	}{
		{name: "tampered ciphertext", box: box, webhook: "wh-1", sealed: flipped, version: v},
		{name: "other webhook id", box: box, webhook: "wh-2", sealed: sealed, version: v},
		{name: "other master key", box: otherBox, webhook: "wh-1", sealed: sealed, version: v},
		{name: "unknown key version", box: box, webhook: "wh-1", sealed: sealed, version: 9},
		{name: "truncated", box: box, webhook: "wh-1", sealed: sealed[:5], version: v},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.box.Open(tt.webhook, tt.sealed, tt.version)
			require.ErrorIs(t, err, secrets.ErrOpen)
		})
	}
}

func TestKeyRotationOpensOldRows(t *testing.T) {
	oldKey, newKey := newKey(t, 1), newKey(t, 2)
	oldBox, err := secrets.NewBox(oldKey)
	require.NoError(t, err)
	sealed, v, err := oldBox.Seal("wh-1", "whsec_x")
	require.NoError(t, err)

	rotated, err := secrets.NewBox(newKey, oldKey)
	require.NoError(t, err)
	got, err := rotated.Open("wh-1", sealed, v)
	require.NoError(t, err)
	assert.Equal(t, "whsec_x", got)
	_, v2, err := rotated.Seal("wh-1", "whsec_y")
	require.NoError(t, err)
	assert.Equal(t, 2, v2)
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		version int
		wantErr string
	}{
		{name: "not base64", give: "!!!", version: 1, wantErr: "base64"},
		{name: "too short", give: base64.StdEncoding.EncodeToString(make([]byte, 16)), version: 1, wantErr: "want 32 bytes"},
		{name: "bad version", give: base64.StdEncoding.EncodeToString(make([]byte, 32)), version: 0, wantErr: "1 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := secrets.ParseKey(tt.version, tt.give)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
