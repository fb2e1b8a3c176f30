// Package payloadcodec keeps event data out of Temporal's history in plaintext: a
// converter.PayloadCodec that encrypts every payload with AES-256-GCM before it leaves
// the process, and the codec server (Handler) that decrypts them for an operator's Web UI.
//
// An encrypted payload is the original payload, protobuf-encoded and sealed, with
// metadata "encoding: binary/encrypted" and "encryption-key-id: <id>" in plaintext, the
// format of Temporal's encryption samples. The key id says which key opens it, which is
// how keys rotate: the current key seals, older keys only open what they sealed. The
// TypeScript client (clients/typescript/src/codec.ts) reads and writes the same format.
package payloadcodec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

const (
	// EncodingEncrypted is the metadata encoding of a payload this codec sealed.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that sealed a payload, in its metadata.
	MetadataKeyID = "encryption-key-id"
)

// ErrDecrypt is returned when an encrypted payload does not open: unknown key id, wrong
// key, or tampered ciphertext.
var ErrDecrypt = errors.New("decrypt payload")

// keyIDPattern keeps key ids printable and free of the list separators ',' and ':'.
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Key is one AES-256 key and the id stored beside everything it seals.
type Key struct {
	ID    string
	Bytes []byte
}

// ParseKey decodes a standard base64 key that must be exactly 32 bytes (AES-256). The
// error never contains the key.
func ParseKey(id, b64 string) (Key, error) {
	if !keyIDPattern.MatchString(id) {
		return Key{}, fmt.Errorf("key id %q: want 1 to 64 letters, digits, '.', '_' or '-'", id)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return Key{}, fmt.Errorf("key %s: not standard base64", id)
	}
	if len(b) != 32 {
		return Key{}, fmt.Errorf("key %s: want 32 bytes, got %d", id, len(b))
	}
	return Key{ID: id, Bytes: b}, nil
}

// ParseKeys decodes a list "id:base64,id:base64,..." (TEMPORAL_PAYLOAD_OLD_KEYS); blank
// entries are ignored.
func ParseKeys(list string) ([]Key, error) {
	var keys []Key
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, errors.New("entries must be id:base64")
		}
		k, err := ParseKey(id, b64)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Codec encrypts payloads with its current key and decrypts with any key it knows.
// It is safe for concurrent use.
type Codec struct {
	current string // empty: decrypt only
	aeads   map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec sealing with current; older keys only open what they sealed.
func New(current Key, older ...Key) (*Codec, error) {
	c, err := newCodec(append([]Key{current}, older...))
	if err != nil {
		return nil, err
	}
	c.current = current.ID
	return c, nil
}

// NewDecryptOnly returns a codec that leaves new payloads in plaintext and still opens
// what keys sealed: how encryption is switched off without stranding running workflows.
func NewDecryptOnly(keys ...Key) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	return newCodec(keys)
}

func newCodec(keys []Key) (*Codec, error) {
	c := &Codec{aeads: map[string]cipher.AEAD{}}
	for _, k := range keys {
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("key id %s given twice", k.ID)
		}
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("key id %q: want 1 to 64 letters, digits, '.', '_' or '-'", k.ID)
		}
		if len(k.Bytes) != 32 {
			return nil, fmt.Errorf("key %s: want 32 bytes, got %d", k.ID, len(k.Bytes))
		}
		block, err := aes.NewCipher(k.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
	}
	return c, nil
}

// CurrentKeyID is the id new payloads are sealed under ("" when decrypt only).
func (c *Codec) CurrentKeyID() string { return c.current }

// Encode seals each payload whole (metadata and data) under the current key, with a
// fresh random nonce: the same value encrypts differently every time.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.current == "" {
		return payloads, nil
	}
	aead := c.aeads[c.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("encode payload: %w", err)
		}
		sealed := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(sealed); err != nil {
			return payloads, fmt.Errorf("read nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(c.current),
			},
			Data: aead.Seal(sealed, sealed, plain, nil),
		}
	}
	return out, nil
}

// Decode opens each encrypted payload with the key its metadata names; payloads that
// are not encrypted (written before encryption was switched on) pass unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		plain, err := c.open(string(p.GetMetadata()[MetadataKeyID]), p.GetData())
		if err != nil {
			return payloads, err
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return payloads, fmt.Errorf("%w: %w", ErrDecrypt, err)
		}
		out[i] = &orig
	}
	return out, nil
}

func (c *Codec) open(keyID string, sealed []byte) ([]byte, error) {
	aead, ok := c.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("%w: key id %q is not configured (TEMPORAL_PAYLOAD_KEY, TEMPORAL_PAYLOAD_OLD_KEYS)", ErrDecrypt, keyID)
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: key id %q: too short", ErrDecrypt, keyID)
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: key id %q: authentication failed", ErrDecrypt, keyID)
	}
	return plain, nil
}
