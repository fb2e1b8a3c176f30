// Package testfixture makes what tests (and the benchmark) put into the infrastructure
// testinfra provides: a secrets box, webhooks with sealed secrets created directly in
// the database, a recording receiver, and an in-process worker built by the service's
// own wiring (deliveryworker.Build).
package testfixture

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"math"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/secrets"
)

// Box returns a secrets box with a fresh random master key.
func Box(t testing.TB) *secrets.Box {
	t.Helper()
	box, _, err := NewBox()
	require.NoError(t, err)
	return box
}

// NewBox returns a secrets box with a fresh random master key, and that key in base64
// (WEBHOOK_SECRET_KEY) for a service that must open what the box seals.
func NewBox() (*secrets.Box, string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	keyB64 := base64.StdEncoding.EncodeToString(b)
	key, err := secrets.ParseKey(1, keyB64)
	if err != nil {
		return nil, "", err
	}
	box, err := secrets.NewBox(key)
	return box, keyB64, err
}

// Webhook describes a webhook to create; ID defaults to a fresh UUID, Name to "hook".
type Webhook struct {
	ID     string
	UserID string
	URL    string
	Events []string
	Name   string
}

// Hook is a webhook the factory created, with the plaintext secret its receiver holds.
type Hook struct {
	ID     string
	UserID string
	Secret string
}

// NewWebhook stores an active webhook with a freshly generated secret sealed by box,
// directly in the database (no per-user limit), as the API's create does.
func NewWebhook(ctx context.Context, db bun.IDB, box *secrets.Box, w Webhook) (Hook, error) {
	secret, err := secrets.Generate()
	if err != nil {
		return Hook{}, err
	}
	if w.ID == "" {
		w.ID = uuid.NewString()
	}
	if w.Name == "" {
		w.Name = "hook"
	}
	row := &models.Webhook{
		ID: w.ID, UserID: w.UserID, Name: w.Name, URL: w.URL, Events: w.Events,
		IsActive: true, SecretHash: secrets.Fingerprint(secret),
	}
	row.SecretSealed, row.SecretKeyVersion, err = box.Seal(row.ID, secret)
	if err != nil {
		return Hook{}, err
	}
	if err := models.CreateWebhook(ctx, db, row, math.MaxInt32); err != nil {
		return Hook{}, err
	}
	return Hook{ID: row.ID, UserID: w.UserID, Secret: secret}, nil
}

// CreateWebhook is NewWebhook for a test, which fails when it does.
func CreateWebhook(t testing.TB, db bun.IDB, box *secrets.Box, w Webhook) Hook {
	t.Helper()
	h, err := NewWebhook(context.Background(), db, box, w)
	require.NoError(t, err)
	return h
}
