package operational

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// ErrNotFound is an event id with no row.
var ErrNotFound = errors.New("operational event not found")

// Event is one operational event as the outbox holds it.
type Event struct {
	ID        string          `bun:"id"`
	Type      Type            `bun:"type"`
	UserID    string          `bun:"user_id"`
	WebhookID string          `bun:"webhook_id"`
	Data      json.RawMessage `bun:"data"`
	Attempts  int             `bun:"attempts"`
	CreatedAt time.Time       `bun:"created_at"`
	SentAt    *time.Time      `bun:"sent_at"`
}

// NewEvent is the event of type t that cause gives rise to, about d's webhook.
func NewEvent(cause string, t Type, d Data) (Event, error) {
	data, err := json.Marshal(d)
	if err != nil {
		return Event{}, fmt.Errorf("encode operational event data: %w", err)
	}
	return Event{ID: EventID(cause, t), Type: t, UserID: d.UserID, WebhookID: d.WebhookID, Data: data}, nil
}

// Record writes events that are not recorded yet, in one statement; an event recorded
// before (its cause retried) is left as it is.
func Record(ctx context.Context, db bun.IDB, evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	ids, types, users, hooks, data := make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs))
	for i, e := range evs {
		ids[i], types[i], users[i], hooks[i], data[i] = e.ID, string(e.Type), e.UserID, e.WebhookID, string(e.Data)
	}
	_, err := db.NewRaw(`
INSERT INTO operational_events (id, type, user_id, webhook_id, data)
SELECT v.id, v.type, v.user_id, v.webhook_id, v.data::jsonb
FROM unnest(?::uuid[], ?::text[], ?::text[], ?::uuid[], ?::text[]) AS v (id, type, user_id, webhook_id, data)
ON CONFLICT (id) DO NOTHING`,
		pgdialect.Array(ids), pgdialect.Array(types), pgdialect.Array(users), pgdialect.Array(hooks), pgdialect.Array(data),
	).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record operational events: %w", err)
	}
	return nil
}

// Recorded returns those of ids that are recorded, with their type, user and webhook.
func Recorded(ctx context.Context, db bun.IDB, ids ...string) ([]Event, error) {
	evs := []Event{}
	if len(ids) == 0 {
		return evs, nil
	}
	err := db.NewRaw(`SELECT id, type, user_id, webhook_id, data, attempts, created_at, sent_at
FROM operational_events WHERE id = ANY(?::uuid[]) ORDER BY created_at, id`, pgdialect.Array(ids)).Scan(ctx, &evs)
	if err != nil {
		return nil, fmt.Errorf("read operational events: %w", err)
	}
	return evs, nil
}

// Get returns one event; a missing one is ErrNotFound.
func Get(ctx context.Context, db bun.IDB, id string) (*Event, error) {
	evs, err := Recorded(ctx, db, id)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, ErrNotFound
	}
	return &evs[0], nil
}

// ClaimAttempt takes the next of an event's attempts before it is sent and returns its
// number, or 0 when none may be made: it was sent, or maxAttempts are used. As for
// deliveries, counting before sending keeps the budget exact through our own failures.
func ClaimAttempt(ctx context.Context, db bun.IDB, id string, maxAttempts int) (int, error) {
	var n int
	err := db.NewRaw(`UPDATE operational_events SET attempts = attempts + 1
WHERE id = ? AND sent_at IS NULL AND attempts < ? RETURNING attempts`, id, maxAttempts).Scan(ctx, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("claim operational attempt: %w", err)
	}
	return n, nil
}

// RecordAttempt writes what an attempt got: sent (a 2xx), or the status and error.
func RecordAttempt(ctx context.Context, db bun.IDB, id string, sent bool, statusCode int, msg string) error {
	var code any
	if statusCode != 0 {
		code = statusCode
	}
	var errMsg any
	if msg != "" {
		errMsg = msg
	}
	_, err := db.NewRaw(`UPDATE operational_events SET
    sent_at = CASE WHEN ? THEN coalesce(sent_at, current_timestamp) ELSE sent_at END,
    last_status_code = ?, last_error = ?
WHERE id = ?`, sent, code, errMsg, id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record operational attempt: %w", err)
	}
	return nil
}

// WebhookState is what an event about a webhook needs to know of it.
type WebhookState struct {
	ID           string `bun:"id"`
	UserID       string `bun:"user_id"`
	Name         string `bun:"name"`
	IsActive     bool   `bun:"is_active"`
	FailureCount int    `bun:"failure_count"`
}

// LockWebhook reads a webhook and holds its row until the transaction ends, so what a
// statement that follows changes can be told apart from what was there before it. A
// deleted webhook is ErrNotFound.
func LockWebhook(ctx context.Context, tx bun.IDB, id string) (*WebhookState, error) {
	w := new(WebhookState)
	err := tx.NewRaw(`SELECT id, user_id, name, is_active, failure_count FROM webhooks WHERE id = ? FOR UPDATE`, id).Scan(ctx, w)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lock webhook: %w", err)
	}
	return w, nil
}

// DeactivateGone switches an active webhook off for a 410 Gone and records the
// webhook.disabled event eventID about it, in one statement: the event exists exactly
// when this switched the webhook off. It returns whether it did.
func DeactivateGone(ctx context.Context, db bun.IDB, webhookID, reason, eventID string) (bool, error) {
	var n int
	err := db.NewRaw(`
WITH w AS (
    UPDATE webhooks SET is_active = false, disabled_reason = ?, disabled_at = current_timestamp,
        updated_at = current_timestamp
    WHERE id = ? AND is_active
    RETURNING id, user_id, name, failure_count
), e AS (
    INSERT INTO operational_events (id, type, user_id, webhook_id, data)
    SELECT ?, ?, w.user_id, w.id,
           jsonb_build_object('userId', w.user_id, 'webhookId', w.id, 'webhookName', w.name, 'reason', ?::text)
    FROM w
    ON CONFLICT (id) DO NOTHING
)
SELECT count(*) FROM w`, reason, webhookID, eventID, WebhookDisabled, reason).Scan(ctx, &n)
	if err != nil {
		return false, fmt.Errorf("deactivate webhook: %w", err)
	}
	return n > 0, nil
}

// RotationEnded records the secret_rotation_ended event of a webhook whose previous
// secret expired at expiresAt, unless a later rotation replaced it meanwhile (that
// rotation's end is told instead) or the webhook is gone. It returns the event, nil
// when there is none to tell.
func RotationEnded(ctx context.Context, db bun.IDB, webhookID string, expiresAt time.Time) (*Event, error) {
	var w struct {
		UserID    string     `bun:"user_id"`
		Name      string     `bun:"name"`
		ExpiresAt *time.Time `bun:"previous_secret_expires_at"`
	}
	err := db.NewRaw(`SELECT user_id, name, previous_secret_expires_at FROM webhooks WHERE id = ?`, webhookID).Scan(ctx, &w)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rotated webhook: %w", err)
	}
	// PostgreSQL keeps microseconds: compare at that precision.
	if w.ExpiresAt == nil || !w.ExpiresAt.Truncate(time.Microsecond).Equal(expiresAt.Truncate(time.Microsecond)) {
		return nil, nil
	}
	expired := expiresAt.UTC()
	ev, err := NewEvent(RotationCause(webhookID, expiresAt), SecretRotationEnded, Data{
		UserID: w.UserID, WebhookID: webhookID, WebhookName: w.Name,
		Reason:                  "the previous signing secret stopped signing; only the current one signs now",
		PreviousSecretExpiredAt: &expired,
	})
	if err != nil {
		return nil, err
	}
	if err := Record(ctx, db, ev); err != nil {
		return nil, err
	}
	return &ev, nil
}
