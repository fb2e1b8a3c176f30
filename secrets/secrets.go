// Package secrets issues webhook signing secrets and keeps them sealed at rest.
//
// Signing needs the secret itself, so a one-way hash alone cannot serve. We store a
// SHA-256 fingerprint (proof of issue, safe to compare and show) and the secret sealed
// with AES-256-GCM under a master key that never touches the database.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Prefix marks a webhook secret, as Standard Webhooks and Svix spell it.
const Prefix = "whsec_"

// secretBytes is the entropy of a secret: 256 bits, the HMAC-SHA256 block strength.
const secretBytes = 32

// ErrOpen is returned when a sealed secret cannot be opened: wrong key, wrong
// webhook, or tampered ciphertext. It never says which, on purpose.
var ErrOpen = errors.New("open sealed secret")

// Generate returns a new secret: "whsec_" followed by standard base64 of 32 random bytes.
// Receivers use the whole string as their HMAC key.
func Generate() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return Prefix + base64.StdEncoding.EncodeToString(b), nil
}

// Fingerprint is the SHA-256 hex of the secret string: stored and comparable,
// useless for signing.
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Key is one master key with its version, so sealed rows say which key opens them.
type Key struct {
	Version int
	Bytes   []byte
}

// ParseKey decodes a base64 master key that must be exactly 32 bytes (AES-256).
func ParseKey(version int, b64 string) (Key, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return Key{}, fmt.Errorf("decode key version %d: not standard base64", version)
	}
	if len(b) != 32 {
		return Key{}, fmt.Errorf("key version %d: want 32 bytes, got %d", version, len(b))
	}
	if version < 1 {
		return Key{}, fmt.Errorf("key version %d: must be 1 or more", version)
	}
	return Key{Version: version, Bytes: b}, nil
}

// Box seals with the current key and opens with any known key, which is how the
// master key rotates: add the new key as current, keep the old one until rows are resealed.
type Box struct {
	current int
	aeads   map[int]cipher.AEAD
}

// NewBox builds a Box whose current key is current; older keys only open.
func NewBox(current Key, older ...Key) (*Box, error) {
	b := &Box{current: current.Version, aeads: map[int]cipher.AEAD{}}
	for _, k := range append([]Key{current}, older...) {
		if _, dup := b.aeads[k.Version]; dup {
			return nil, fmt.Errorf("key version %d given twice", k.Version)
		}
		block, err := aes.NewCipher(k.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key version %d: %w", k.Version, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key version %d: %w", k.Version, err)
		}
		b.aeads[k.Version] = aead
	}
	return b, nil
}

// Seal encrypts secret for one webhook. The webhook id is bound as additional data,
// so a sealed value copied onto another row does not open there.
func (b *Box) Seal(webhookID, secret string) (sealed []byte, keyVersion int, err error) {
	aead := b.aeads[b.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, 0, fmt.Errorf("read nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, []byte(secret), []byte(webhookID)), b.current, nil
}

// Open decrypts a value sealed by Seal for the same webhook id.
func (b *Box) Open(webhookID string, sealed []byte, keyVersion int) (string, error) {
	aead, ok := b.aeads[keyVersion]
	if !ok {
		return "", fmt.Errorf("%w: unknown key version %d", ErrOpen, keyVersion)
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return "", ErrOpen
	}
	nonce, ct := sealed[:aead.NonceSize()], sealed[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ct, []byte(webhookID))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}
