package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Webhook is a registered receiver URL and the events it subscribes to.
type Webhook struct {
	bun.BaseModel `bun:"table:webhooks,alias:w"`

	ID                       string     `bun:"id,pk,type:uuid"`
	UserID                   string     `bun:"user_id,notnull"`
	Name                     string     `bun:"name,notnull"`
	URL                      string     `bun:"url,notnull"`
	SecretHash               string     `bun:"secret_hash,notnull"`
	SecretSealed             []byte     `bun:"secret_sealed,notnull"`
	SecretKeyVersion         int        `bun:"secret_key_version,notnull"`
	PreviousSecretSealed     []byte     `bun:"previous_secret_sealed,nullzero"`
	PreviousSecretKeyVersion int        `bun:"previous_secret_key_version,nullzero"`
	PreviousSecretExpiresAt  *time.Time `bun:"previous_secret_expires_at"`
	Events                   []string   `bun:"events,array,notnull"`
	IsActive                 bool       `bun:"is_active,notnull"`
	LastTriggeredAt          *time.Time `bun:"last_triggered_at"`
	FailureCount             int        `bun:"failure_count,notnull"`
	DisabledReason           *string    `bun:"disabled_reason"`
	DisabledAt               *time.Time `bun:"disabled_at"`
	CreatedAt                time.Time  `bun:"created_at,nullzero,notnull,default:current_timestamp"`
	UpdatedAt                time.Time  `bun:"updated_at,nullzero,notnull,default:current_timestamp"`

	// Headers names the custom headers sent with every request, each with a fingerprint
	// of its value; the values exist only sealed, in HeadersSealed (see SealedHeaders).
	Headers           []HeaderInfo `bun:"headers,type:jsonb,nullzero,notnull,default:'[]'"`
	HeadersSealed     []byte       `bun:"headers_sealed"`
	HeadersKeyVersion int          `bun:"headers_key_version,nullzero"`
	// RateLimitPerSecond and RateLimitBurst: nil leaves the service default.
	RateLimitPerSecond *float64 `bun:"rate_limit_per_second"`
	RateLimitBurst     *int     `bun:"rate_limit_burst"`
	MaxInFlight        *int     `bun:"max_in_flight"`
	Filter             *string  `bun:"filter"`
}

// HeaderInfo is what may be shown of a custom header: its name and a fingerprint of its
// value, never the value.
type HeaderInfo struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
}

// SealedHeaders is a webhook's custom headers in stored form: what may be shown, and
// the names and values sealed under the master key of version KeyVersion. No headers is
// Info empty and Sealed nil.
type SealedHeaders struct {
	Info       []HeaderInfo
	Sealed     []byte
	KeyVersion int
}

// SetHeaders stores h on w, as a create inserts it.
func (w *Webhook) SetHeaders(h SealedHeaders) {
	w.Headers, w.HeadersSealed, w.HeadersKeyVersion = h.Info, h.Sealed, h.KeyVersion
}

// CreateWebhook inserts w unless its user already has maxPerUser webhooks. A
// per-user advisory lock makes the count and the insert one decision, so two
// concurrent creates cannot both slip under the cap.
func CreateWebhook(ctx context.Context, db bun.IDB, w *Webhook, maxPerUser int) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", "webhooks:"+w.UserID); err != nil {
			return fmt.Errorf("lock user webhooks: %w", err)
		}
		n, err := tx.NewSelect().Model((*Webhook)(nil)).Where("user_id = ?", w.UserID).Count(ctx)
		if err != nil {
			return fmt.Errorf("count webhooks: %w", err)
		}
		if n >= maxPerUser {
			return ErrLimitReached
		}
		if _, err := tx.NewInsert().Model(w).Returning("*").Exec(ctx); err != nil {
			return fmt.Errorf("insert webhook: %w", err)
		}
		return nil
	})
}

// ListWebhooks returns a user's webhooks, newest first.
func ListWebhooks(ctx context.Context, db bun.IDB, userID string) ([]Webhook, error) {
	hooks := []Webhook{}
	err := db.NewSelect().Model(&hooks).
		// The list never shows secrets, and decoding the sealed bytea columns was about
		// an eighth of this query's time.
		ExcludeColumn("secret_hash", "secret_sealed", "secret_key_version",
			"previous_secret_sealed", "previous_secret_key_version", "previous_secret_expires_at",
			"headers_sealed", "headers_key_version").
		Where("user_id = ?", userID).
		OrderExpr("created_at DESC, id DESC").
		Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return hooks, nil
}

// WebhookListVersion identifies the current state of userID's webhooks: it changes
// whenever one is created, changed (by the API or by a delivery's outcome) or deleted,
// because every committed insert or update gives the row a new xmin.
func WebhookListVersion(ctx context.Context, db bun.IDB, userID string) (string, error) {
	var v string
	err := db.NewRaw(`SELECT coalesce(md5(string_agg(id::text || '.' || xmin::text, ',' ORDER BY id)), 'none')
		FROM webhooks WHERE user_id = ?`, userID).Scan(ctx, &v)
	if err != nil {
		return "", fmt.Errorf("webhook list version: %w", err)
	}
	return v, nil
}

// GetWebhook returns one of userID's webhooks; another user's is ErrNotFound.
func GetWebhook(ctx context.Context, db bun.IDB, userID, id string) (*Webhook, error) {
	w := new(Webhook)
	err := db.NewSelect().Model(w).Where("id = ? AND user_id = ?", id, userID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook: %w", err)
	}
	return w, nil
}

// WebhookPatch holds the fields a PATCH may change; nil leaves a field as it is. The
// controls that may be removed say so with Set: Set with a nil value removes it.
type WebhookPatch struct {
	Name     *string
	URL      *string
	Events   []string
	IsActive *bool
	// Headers replaces every custom header; one with no headers removes them all.
	Headers        *SealedHeaders
	SetRateLimit   bool
	RateLimit      *RateLimit
	SetMaxInFlight bool
	MaxInFlight    *int
	SetFilter      bool
	Filter         *string
}

// RateLimit is a webhook's delivery rate: PerSecond on average, up to Burst at once.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// UpdateWebhook applies p to one of userID's webhooks in a single statement and
// returns the new row. Turning a webhook on clears its failure streak and disabled
// reason; turning it off records when and why.
func UpdateWebhook(ctx context.Context, db bun.IDB, userID, id string, p WebhookPatch) (*Webhook, error) {
	w := new(Webhook)
	q := db.NewUpdate().Model(w).
		Where("id = ? AND user_id = ?", id, userID).
		Set("updated_at = current_timestamp").
		Returning("*")
	if p.Name != nil {
		q.Set("name = ?", *p.Name)
	}
	if p.URL != nil {
		q.Set("url = ?", *p.URL)
	}
	if p.Events != nil {
		q.Set("events = ?", pgdialect.Array(p.Events))
	}
	if h := p.Headers; h != nil {
		info, err := json.Marshal(append([]HeaderInfo{}, h.Info...))
		if err != nil {
			return nil, fmt.Errorf("encode header names: %w", err)
		}
		version := sql.NullInt64{Int64: int64(h.KeyVersion), Valid: h.Sealed != nil}
		q.Set("headers = ?::jsonb", string(info)).Set("headers_sealed = ?", h.Sealed).Set("headers_key_version = ?", version)
	}
	if p.SetRateLimit {
		var perSecond, burst any
		if p.RateLimit != nil {
			perSecond, burst = p.RateLimit.PerSecond, p.RateLimit.Burst
		}
		q.Set("rate_limit_per_second = ?", perSecond).Set("rate_limit_burst = ?", burst)
		// A new rate starts afresh: slots spaced for the old one would hold the first
		// attempts under a raised limit back by up to an old interval.
		q.With("reset_rate", db.NewRaw(`DELETE FROM throttle_rates
			WHERE webhook_id = (SELECT id FROM webhooks WHERE id = ? AND user_id = ?)`, id, userID))
	}
	if p.SetMaxInFlight {
		q.Set("max_in_flight = ?", p.MaxInFlight)
	}
	if p.SetFilter {
		q.Set("filter = ?", p.Filter)
	}
	if p.IsActive != nil && *p.IsActive {
		q.Set("is_active = true, failure_count = 0, disabled_reason = NULL, disabled_at = NULL")
	}
	if p.IsActive != nil && !*p.IsActive {
		q.Set("is_active = false").
			Set("disabled_reason = CASE WHEN w.is_active THEN 'paused by user' ELSE w.disabled_reason END").
			Set("disabled_at = CASE WHEN w.is_active THEN current_timestamp ELSE w.disabled_at END")
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("update webhook: %w", err)
	}
	return w, nil
}

// DeleteWebhook removes one of userID's webhooks and its delivery log.
func DeleteWebhook(ctx context.Context, db bun.IDB, userID, id string) error {
	res, err := db.NewDelete().Model((*Webhook)(nil)).Where("id = ? AND user_id = ?", id, userID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SecretRotation is a newly issued secret in stored form.
type SecretRotation struct {
	Hash       string
	Sealed     []byte
	KeyVersion int
	Grace      time.Duration
}

// RotateSecret makes r the webhook's secret and keeps the current one signing for
// r.Grace, in one statement. It returns when the previous secret stops signing.
func RotateSecret(ctx context.Context, db bun.IDB, userID, id string, r SecretRotation) (time.Time, error) {
	var expires time.Time
	err := db.NewUpdate().Model((*Webhook)(nil)).
		Set("previous_secret_sealed = w.secret_sealed").
		Set("previous_secret_key_version = w.secret_key_version").
		Set("previous_secret_expires_at = current_timestamp + ?::interval", fmt.Sprintf("%d microseconds", r.Grace.Microseconds())).
		Set("secret_hash = ?", r.Hash).
		Set("secret_sealed = ?", r.Sealed).
		Set("secret_key_version = ?", r.KeyVersion).
		Set("updated_at = current_timestamp").
		Where("id = ? AND user_id = ?", id, userID).
		Returning("previous_secret_expires_at").
		Scan(ctx, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, ErrNotFound
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("rotate secret: %w", err)
	}
	return expires, nil
}

// URLHost returns a webhook URL's host for logs and memos: never its path or query,
// which may carry a receiver's token.
func URLHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
