package payloadcodec_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/assetsup/webhooks/payloadcodec"
	"github.com/assetsup/webhooks/temporalclient"
)

var updateVectors = flag.Bool("update-vectors", false, "write testdata/vectors.json again (new ciphertexts)")

// vectorsFile holds payloads sealed by this package under fixed keys; the TypeScript
// codec's tests (clients/typescript/src/test/codec.test.ts) open the same file.
const vectorsFile = "testdata/vectors.json"

func newKey(t testing.TB, id string) payloadcodec.Key {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	k, err := payloadcodec.ParseKey(id, base64.StdEncoding.EncodeToString(b))
	require.NoError(t, err)
	return k
}

func newCodec(t testing.TB, current payloadcodec.Key, older ...payloadcodec.Key) *payloadcodec.Codec {
	t.Helper()
	c, err := payloadcodec.New(current, older...)
	require.NoError(t, err)
	return c
}

func jsonPayload(t testing.TB, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	require.NoError(t, err)
	return p
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give *commonpb.Payload
	}{
		{name: "json event", give: jsonPayload(t, map[string]any{"title": "Laptop moved to Lagos", "qty": 2})},
		{name: "binary/null", give: jsonPayload(t, nil)},
		{name: "empty", give: &commonpb.Payload{}},
		{name: "metadata only", give: &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}}},
		{name: "large", give: &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: bytes.Repeat([]byte("x"), 1<<20)}},
	}
	c := newCodec(t, newKey(t, "k1"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := c.Encode([]*commonpb.Payload{tt.give})
			require.NoError(t, err)
			require.Len(t, enc, 1)
			assert.Equal(t, payloadcodec.EncodingEncrypted, string(enc[0].GetMetadata()[converter.MetadataEncoding]))
			assert.Equal(t, "k1", string(enc[0].GetMetadata()[payloadcodec.MetadataKeyID]))
			assert.Len(t, enc[0].GetMetadata(), 2, "nothing of the original metadata stays in plaintext")
			if len(tt.give.GetData()) > 0 {
				assert.False(t, bytes.Contains(enc[0].GetData(), tt.give.GetData()), "data is not in the ciphertext")
			}

			dec, err := c.Decode(enc)
			require.NoError(t, err)
			require.Len(t, dec, 1)
			assert.True(t, proto.Equal(tt.give, dec[0]), "decoded %v, want %v", dec[0], tt.give)
		})
	}
}

func TestEncodeUsesAFreshNonceEachTime(t *testing.T) {
	c := newCodec(t, newKey(t, "k1"))
	p := jsonPayload(t, "same value")
	a, err := c.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	b, err := c.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	assert.NotEqual(t, a[0].GetData(), b[0].GetData(), "equal values must not be recognisable in history")
}

func TestDecodeLeavesPlaintextPayloads(t *testing.T) {
	c := newCodec(t, newKey(t, "k1"))
	// Written before encryption was switched on: still readable after.
	plain := []*commonpb.Payload{jsonPayload(t, "before"), jsonPayload(t, map[string]int{"n": 1})}
	dec, err := c.Decode(plain)
	require.NoError(t, err)
	assert.Equal(t, plain, dec)
}

func TestKeyRotation(t *testing.T) {
	oldKey, newK := newKey(t, "2025-01"), newKey(t, "2025-06")
	before := newCodec(t, oldKey)
	sealedOld, err := before.Encode([]*commonpb.Payload{jsonPayload(t, "sealed by the old key")})
	require.NoError(t, err)

	after := newCodec(t, newK, oldKey)
	dec, err := after.Decode(sealedOld)
	require.NoError(t, err, "an old key still opens what it sealed")
	assert.True(t, proto.Equal(jsonPayload(t, "sealed by the old key"), dec[0]))

	sealedNew, err := after.Encode([]*commonpb.Payload{jsonPayload(t, "new")})
	require.NoError(t, err)
	assert.Equal(t, "2025-06", string(sealedNew[0].GetMetadata()[payloadcodec.MetadataKeyID]), "the current key seals")

	_, err = before.Decode(sealedNew)
	require.ErrorIs(t, err, payloadcodec.ErrDecrypt, "a worker without the new key cannot open it")
	assert.Contains(t, err.Error(), `"2025-06"`, "the error names the missing key id")

	withoutOld := newCodec(t, newK)
	_, err = withoutOld.Decode(sealedOld)
	require.ErrorIs(t, err, payloadcodec.ErrDecrypt)
}

func TestDecryptOnly(t *testing.T) {
	k := newKey(t, "k1")
	sealed, err := newCodec(t, k).Encode([]*commonpb.Payload{jsonPayload(t, "secret")})
	require.NoError(t, err)

	off, err := payloadcodec.NewDecryptOnly(k)
	require.NoError(t, err)
	assert.Empty(t, off.CurrentKeyID())
	plain := []*commonpb.Payload{jsonPayload(t, "new data stays plaintext")}
	enc, err := off.Encode(plain)
	require.NoError(t, err)
	assert.Equal(t, plain, enc)
	dec, err := off.Decode(sealed)
	require.NoError(t, err, "switching encryption off keeps running workflows readable")
	assert.True(t, proto.Equal(jsonPayload(t, "secret"), dec[0]))

	_, err = payloadcodec.NewDecryptOnly()
	require.Error(t, err)
}

func TestDecodeRefusesTamperedPayloads(t *testing.T) {
	k := newKey(t, "k1")
	c := newCodec(t, k)
	sealed, err := c.Encode([]*commonpb.Payload{jsonPayload(t, "amount: 100")})
	require.NoError(t, err)

	flipped := proto.Clone(sealed[0]).(*commonpb.Payload)
	flipped.Data[len(flipped.Data)-1] ^= 1
	otherKeySameID := newCodec(t, newKey(t, "k1"))
	tests := []struct {
		name  string
		codec *payloadcodec.Codec
		give  *commonpb.Payload
	}{
		{name: "flipped bit", codec: c, give: flipped},
		{name: "truncated", codec: c, give: &commonpb.Payload{Metadata: sealed[0].GetMetadata(), Data: sealed[0].GetData()[:10]}},
		{name: "another key under the same id", codec: otherKeySameID, give: sealed[0]},
		{name: "no key id", codec: c, give: &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(payloadcodec.EncodingEncrypted)}, Data: sealed[0].GetData(),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.codec.Decode([]*commonpb.Payload{tt.give})
			require.ErrorIs(t, err, payloadcodec.ErrDecrypt)
		})
	}
}

func TestParseKey(t *testing.T) {
	valid := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	tests := []struct {
		name    string
		id, b64 string
		wantErr string
	}{
		{name: "valid", id: "2025-06.a_b", b64: valid},
		{name: "valid with spaces", id: "1", b64: " " + valid + "\n"},
		{name: "empty id", id: "", b64: valid, wantErr: "key id"},
		{name: "id with a colon", id: "a:b", b64: valid, wantErr: "key id"},
		{name: "id with a comma", id: "a,b", b64: valid, wantErr: "key id"},
		{name: "not base64", id: "1", b64: "not base64!", wantErr: "not standard base64"},
		{name: "16 bytes", id: "1", b64: base64.StdEncoding.EncodeToString(make([]byte, 16)), wantErr: "want 32 bytes, got 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := payloadcodec.ParseKey(tt.id, tt.b64)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.id, k.ID)
				assert.Len(t, k.Bytes, 32)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), tt.b64, "an error never repeats the key")
		})
	}
}

func TestParseKeys(t *testing.T) {
	a := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	b := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	tests := []struct {
		name    string
		give    string
		wantIDs []string
		wantErr bool
	}{
		{name: "empty", give: ""},
		{name: "two", give: "old:" + a + ", older:" + b, wantIDs: []string{"old", "older"}},
		{name: "blank entries", give: ",old:" + a + ",,", wantIDs: []string{"old"}},
		{name: "no id", give: a, wantErr: true},
		{name: "bad key", give: "old:xyz", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := payloadcodec.ParseKeys(tt.give)
			if tt.wantErr {
				require.Error(t, err)
				assert.NotContains(t, err.Error(), a)
				return
			}
			require.NoError(t, err)
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID)
			}
			assert.Equal(t, tt.wantIDs, ids)
		})
	}
}

func TestNewRefusesDuplicateKeyIDs(t *testing.T) {
	_, err := payloadcodec.New(newKey(t, "k1"), newKey(t, "k1"))
	require.ErrorContains(t, err, "k1 given twice")
	_, err = payloadcodec.New(payloadcodec.Key{ID: "k", Bytes: make([]byte, 16)})
	require.ErrorContains(t, err, "want 32 bytes")
}

// The data converter the clients use: values go in and come out as they were, and
// nothing of them is readable in between.
func TestDataConverterRoundTrip(t *testing.T) {
	type event struct {
		Title   string         `json:"title"`
		Message string         `json:"message"`
		Meta    map[string]any `json:"metadata"`
	}
	give := event{Title: "Forklift FL-7 assigned to Ada", Message: "Warehouse 3", Meta: map[string]any{"site": "Ikeja"}}
	dc := temporalclient.DataConverter(newCodec(t, newKey(t, "k1")))
	payloads, err := dc.ToPayloads(give, "second arg")
	require.NoError(t, err)
	raw, err := proto.Marshal(payloads)
	require.NoError(t, err)
	for _, s := range []string{give.Title, give.Message, "Ikeja", "second arg"} {
		assert.NotContains(t, string(raw), s)
	}
	var got event
	var second string
	require.NoError(t, dc.FromPayloads(payloads, &got, &second))
	assert.Equal(t, give, got)
	assert.Equal(t, "second arg", second)
}

// vectors is testdata/vectors.json: keys, and payloads sealed under them by this codec.
type vectors struct {
	Keys    []vectorKey `json:"keys"`
	Vectors []vector    `json:"vectors"`
}

type vectorKey struct {
	ID  string `json:"id"`
	Key string `json:"key"` // base64
}

type vector struct {
	Name string `json:"name"`
	// Plain and Sealed are commonpb.Payload as protobuf JSON, the codec server's format.
	Plain  json.RawMessage `json:"plain"`
	Sealed json.RawMessage `json:"sealed"`
}

// The committed vectors still open: the format is fixed, since histories keep what was
// sealed years ago. -update-vectors seals them again.
func TestVectors(t *testing.T) {
	path := filepath.FromSlash(vectorsFile)
	if *updateVectors {
		writeVectors(t, path)
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var v vectors
	require.NoError(t, json.Unmarshal(b, &v))
	require.NotEmpty(t, v.Vectors)

	var keys []payloadcodec.Key
	for _, k := range v.Keys {
		key, err := payloadcodec.ParseKey(k.ID, k.Key)
		require.NoError(t, err)
		keys = append(keys, key)
	}
	c, err := payloadcodec.NewDecryptOnly(keys...)
	require.NoError(t, err)
	for _, tt := range v.Vectors {
		t.Run(tt.Name, func(t *testing.T) {
			var plain, sealed commonpb.Payload
			require.NoError(t, protojson.Unmarshal(tt.Plain, &plain))
			require.NoError(t, protojson.Unmarshal(tt.Sealed, &sealed))
			require.Equal(t, payloadcodec.EncodingEncrypted, string(sealed.GetMetadata()[converter.MetadataEncoding]))
			dec, err := c.Decode([]*commonpb.Payload{&sealed})
			require.NoError(t, err)
			assert.True(t, proto.Equal(&plain, dec[0]), "%s: decoded %v", tt.Name, dec[0])
		})
	}
}

func writeVectors(t *testing.T, path string) {
	t.Helper()
	keyA := payloadcodec.Key{ID: "vector-a", Bytes: bytes.Repeat([]byte{0xa1}, 32)}
	keyB := payloadcodec.Key{ID: "vector-b", Bytes: []byte("0123456789abcdef0123456789abcdef")}
	plains := []struct {
		name string
		key  payloadcodec.Key
		give *commonpb.Payload
	}{
		{"json-object", keyA, jsonPayload(t, map[string]any{"title": "Pallet 12 received", "message": "Dock 4 – 3 items", "metadata": map[string]any{"site": "Ikeja"}})},
		{"json-string-unicode", keyB, jsonPayload(t, "Zoë's laptop → Lagos ✓")},
		{"binary-null", keyA, jsonPayload(t, nil)},
		{"binary-plain", keyB, &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: []byte{0, 1, 2, 255}}},
	}
	v := vectors{Keys: []vectorKey{
		{ID: keyA.ID, Key: base64.StdEncoding.EncodeToString(keyA.Bytes)},
		{ID: keyB.ID, Key: base64.StdEncoding.EncodeToString(keyB.Bytes)},
	}}
	for _, p := range plains {
		sealed, err := newCodec(t, p.key).Encode([]*commonpb.Payload{p.give})
		require.NoError(t, err)
		plainJSON, err := protojson.Marshal(p.give)
		require.NoError(t, err)
		sealedJSON, err := protojson.Marshal(sealed[0])
		require.NoError(t, err)
		v.Vectors = append(v.Vectors, vector{Name: p.name, Plain: plainJSON, Sealed: sealedJSON})
	}
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	t.Logf("wrote %d vectors to %s", len(v.Vectors), path)
}
