package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/assetsup/webhooks/delivery"
)

// Delivery is one DeliverWebhook run: one event sent to one webhook, over its attempts.
type Delivery struct {
	bun.BaseModel `bun:"table:webhook_deliveries,alias:d"`

	ID              string           `bun:"id,pk,type:uuid"`
	WebhookID       string           `bun:"webhook_id,notnull,type:uuid"`
	EventID         string           `bun:"event_id,notnull"`
	Event           string           `bun:"event,notnull"`
	Kind            delivery.Kind    `bun:"kind,notnull"`
	RedeliveryOf    *string          `bun:"redelivery_of,type:uuid"`
	Status          delivery.Outcome `bun:"status,notnull"`
	Attempts        int              `bun:"attempts,notnull"`
	LastStatusCode  *int             `bun:"last_status_code"`
	LastError       *string          `bun:"last_error"`
	ResponseExcerpt *string          `bun:"response_excerpt"`
	DurationMS      *int             `bun:"duration_ms"`
	RequestBody     []byte           `bun:"request_body"`
	WorkflowID      string           `bun:"workflow_id,notnull"`
	RunID           string           `bun:"run_id,notnull"`
	CreatedAt       time.Time        `bun:"created_at,nullzero,notnull,default:current_timestamp"`
	UpdatedAt       time.Time        `bun:"updated_at,nullzero,notnull,default:current_timestamp"`
	CompletedAt     *time.Time       `bun:"completed_at"`
}

// Subscriber is what the dispatcher needs to start a delivery: nothing secret.
type Subscriber struct {
	ID     string  `bun:"id"`
	Name   string  `bun:"name"`
	URL    string  `bun:"url"`
	Filter *string `bun:"filter"` // nil: every event is delivered
}

// ListSubscribers returns up to limit of userID's active webhooks subscribed to event
// with ids after afterID, in id order, so a large fan-out pages with a keyset cursor.
func ListSubscribers(ctx context.Context, db bun.IDB, userID, event, afterID string, limit int) ([]Subscriber, error) {
	subs := []Subscriber{}
	q := db.NewSelect().Model((*Webhook)(nil)).
		Column("id", "name", "url", "filter").
		Where("user_id = ?", userID).
		Where("is_active").
		Where("events @> ARRAY[?]::text[]", event).
		OrderExpr("id").
		Limit(limit)
	if afterID != "" {
		q.Where("id > ?", afterID)
	}
	if err := q.Scan(ctx, &subs); err != nil {
		return nil, fmt.Errorf("list subscribers: %w", err)
	}
	return subs, nil
}

// DeliveryTarget is a webhook as the Send activity sees it, with what earlier attempts of
// this delivery already recorded.
type DeliveryTarget struct {
	ID                       string           `bun:"id"`
	UserID                   string           `bun:"user_id"`
	URL                      string           `bun:"url"`
	IsActive                 bool             `bun:"is_active"`
	SecretSealed             []byte           `bun:"secret_sealed"`
	SecretKeyVersion         int              `bun:"secret_key_version"`
	PreviousSecretSealed     []byte           `bun:"previous_secret_sealed"`
	PreviousSecretKeyVersion int              `bun:"previous_secret_key_version"`
	PreviousSecretExpiresAt  *time.Time       `bun:"previous_secret_expires_at"`
	HeadersSealed            []byte           `bun:"headers_sealed"` // nil: no custom headers
	HeadersKeyVersion        int              `bun:"headers_key_version"`
	RateLimitPerSecond       *float64         `bun:"rate_limit_per_second"` // nil: the service default
	RateLimitBurst           *int             `bun:"rate_limit_burst"`
	MaxInFlight              *int             `bun:"max_in_flight"` // nil: no cap
	Filter                   *string          `bun:"filter"`
	PriorStatus              delivery.Outcome `bun:"prior_status"` // "" when no attempt was recorded yet
	PriorAttempts            int              `bun:"prior_attempts"`
	PriorStatusCode          int              `bun:"prior_status_code"`
	PriorError               string           `bun:"prior_error"`
	PriorCompleted           bool             `bun:"prior_completed"`
}

// LoadDeliveryTarget reads webhook webhookID and delivery deliveryID in one query.
// A missing webhook is ErrNotFound.
func LoadDeliveryTarget(ctx context.Context, db bun.IDB, webhookID, deliveryID string) (*DeliveryTarget, error) {
	t := new(DeliveryTarget)
	err := db.NewRaw(`
SELECT w.id, w.user_id, w.url, w.is_active, w.secret_sealed, w.secret_key_version,
       w.previous_secret_sealed, COALESCE(w.previous_secret_key_version, 0) AS previous_secret_key_version,
       w.previous_secret_expires_at,
       w.headers_sealed, COALESCE(w.headers_key_version, 0) AS headers_key_version,
       w.rate_limit_per_second, w.rate_limit_burst, w.max_in_flight, w.filter,
       COALESCE(d.status, '') AS prior_status, COALESCE(d.attempts, 0) AS prior_attempts,
       COALESCE(d.last_status_code, 0) AS prior_status_code, COALESCE(d.last_error, '') AS prior_error,
       d.completed_at IS NOT NULL AS prior_completed
FROM webhooks AS w
LEFT JOIN webhook_deliveries AS d ON d.id = ? AND d.webhook_id = w.id
WHERE w.id = ?`, deliveryID, webhookID).Scan(ctx, t)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load delivery target: %w", err)
	}
	return t, nil
}

// ClaimAttempt takes the next of a delivery's attempts before anything is sent, and
// returns its number, or 0 when no attempt may be made: the webhook is gone, or the
// delivery succeeded, was completed, or has used maxAttempts. It creates the row on the
// first attempt, with the request body.
//
// Counting before sending is what keeps the receiver's budget exact through our own
// outages: an attempt that cannot be claimed is not sent, and an attempt that was sent
// is counted even when recording its outcome fails afterwards. A worker that dies
// between the claim and the request costs the receiver one attempt it never saw.
func ClaimAttempt(ctx context.Context, db bun.IDB, d Delivery, maxAttempts int) (int, error) {
	var n int
	err := db.NewRaw(`
INSERT INTO webhook_deliveries AS d
    (id, webhook_id, event_id, event, kind, redelivery_of, status, attempts, request_body, workflow_id, run_id)
SELECT ?, w.id, ?, ?, ?, ?, ?, 1, ?, ?, ?
FROM webhooks AS w WHERE w.id = ? AND ? > 0
ON CONFLICT (id) DO UPDATE SET
    attempts = d.attempts + 1,
    workflow_id = EXCLUDED.workflow_id,
    run_id = EXCLUDED.run_id,
    updated_at = current_timestamp
WHERE d.status = ? AND d.completed_at IS NULL AND d.attempts < ?
RETURNING d.attempts`,
		d.ID, d.EventID, d.Event, d.Kind, d.RedeliveryOf, delivery.OutcomePending, d.RequestBody, d.WorkflowID, d.RunID,
		d.WebhookID, maxAttempts, delivery.OutcomePending, maxAttempts,
	).Scan(ctx, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("claim attempt: %w", err)
	}
	return n, nil
}

// Filtered is one delivery that a webhook's filter turned down, with why.
type Filtered = Closed

// Closed is one delivery closed without an attempt, with why.
type Closed struct {
	DeliveryID string
	WebhookID  string
	Reason     string
}

// RecordFiltered logs deliveries of one event that were turned down by their webhooks'
// filters (recordClosed).
func RecordFiltered(ctx context.Context, db bun.IDB, d Delivery, rows []Filtered) error {
	if err := recordClosed(ctx, db, d, delivery.OutcomeFiltered, rows); err != nil {
		return fmt.Errorf("record filtered deliveries: %w", err)
	}
	return nil
}

// recordClosed logs deliveries of one event closed as outcome without an attempt, in
// one statement: nothing counted, the body they would have carried (so a redelivery or
// a recovery can still send it). Rows that exist already are left alone, which makes it
// safe to repeat, and webhooks deleted meanwhile are skipped.
func recordClosed(ctx context.Context, db bun.IDB, d Delivery, outcome delivery.Outcome, rows []Closed) error {
	if len(rows) == 0 {
		return nil
	}
	ids, hooks, reasons := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
	for i, r := range rows {
		ids[i], hooks[i], reasons[i] = r.DeliveryID, r.WebhookID, r.Reason
	}
	_, err := db.NewRaw(`
INSERT INTO webhook_deliveries
    (id, webhook_id, event_id, event, kind, status, attempts, last_error, request_body, workflow_id, run_id, completed_at)
SELECT v.id, w.id, ?, ?, ?, ?, 0, v.reason, ?, ?, ?, current_timestamp
FROM unnest(?::uuid[], ?::uuid[], ?::text[]) AS v (id, webhook_id, reason)
JOIN webhooks AS w ON w.id = v.webhook_id
ON CONFLICT (id) DO NOTHING`,
		d.EventID, d.Event, d.Kind, outcome, d.RequestBody, d.WorkflowID, d.RunID,
		pgdialect.Array(ids), pgdialect.Array(hooks), pgdialect.Array(reasons),
	).Exec(ctx)
	return err
}

// Attempt is what one HTTP attempt of a delivery left behind.
type Attempt struct {
	Delivery        Delivery // identity columns and the request body
	Number          int
	Succeeded       bool
	StatusCode      int // 0 when no response arrived
	Error           string
	ResponseExcerpt string
	Duration        time.Duration
}

// RecordAttempt writes an attempt onto the delivery's row, creating the row on the
// first attempt. A success marks the row succeeded at once, so a retried activity
// that finds it does not send again. A completed row is left as it is.
func RecordAttempt(ctx context.Context, db bun.IDB, a Attempt) error {
	d := a.Delivery
	d.Attempts = a.Number
	d.Status = delivery.OutcomePending
	if a.Succeeded {
		d.Status = delivery.OutcomeSucceeded
	}
	d.LastStatusCode = nilIfZero(a.StatusCode)
	d.LastError = nilIfEmpty(a.Error)
	d.ResponseExcerpt = nilIfEmpty(a.ResponseExcerpt)
	ms := int(a.Duration.Milliseconds())
	d.DurationMS = &ms
	_, err := db.NewInsert().Model(&d).
		ExcludeColumn("created_at", "updated_at", "completed_at").
		On("CONFLICT (id) DO UPDATE").
		Set("attempts = GREATEST(d.attempts, EXCLUDED.attempts)").
		Set("status = CASE WHEN d.status = ? THEN d.status ELSE EXCLUDED.status END", delivery.OutcomeSucceeded).
		Set("last_status_code = EXCLUDED.last_status_code").
		Set("last_error = EXCLUDED.last_error").
		Set("response_excerpt = EXCLUDED.response_excerpt").
		Set("duration_ms = EXCLUDED.duration_ms").
		Set("run_id = EXCLUDED.run_id").
		Set("updated_at = current_timestamp").
		Where("d.completed_at IS NULL").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("record attempt: %w", err)
	}
	// The attempt's own row: written again unchanged when a retried record step repeats it.
	_, err = db.NewInsert().Model(&DeliveryAttempt{
		DeliveryID: a.Delivery.ID, Attempt: a.Number, Succeeded: a.Succeeded,
		StatusCode: d.LastStatusCode, Error: d.LastError, ResponseExcerpt: d.ResponseExcerpt, DurationMS: ms,
	}).ExcludeColumn("recorded_at").On("CONFLICT (delivery_id, attempt) DO NOTHING").Exec(ctx)
	if err != nil {
		return fmt.Errorf("record attempt log: %w", err)
	}
	return nil
}

// DeliveryAttempt is one attempt of a delivery as the receiver answered it.
type DeliveryAttempt struct {
	bun.BaseModel `bun:"table:webhook_delivery_attempts,alias:a"`

	DeliveryID      string    `bun:"delivery_id,pk,type:uuid"`
	Attempt         int       `bun:"attempt,pk"`
	Succeeded       bool      `bun:"succeeded"`
	StatusCode      *int      `bun:"status_code"`
	Error           *string   `bun:"error"`
	ResponseExcerpt *string   `bun:"response_excerpt"`
	DurationMS      int       `bun:"duration_ms"`
	RecordedAt      time.Time `bun:"recorded_at"`
}

// ListAttempts returns a delivery's recorded attempts, first to last.
func ListAttempts(ctx context.Context, db bun.IDB, deliveryID string) ([]DeliveryAttempt, error) {
	as := []DeliveryAttempt{}
	if err := db.NewSelect().Model(&as).Where("delivery_id = ?", deliveryID).Order("attempt").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	return as, nil
}

// Completion is the final outcome of a delivery.
type Completion struct {
	Delivery       Delivery // identity columns; the row is created if no attempt recorded it
	Succeeded      bool
	Attempts       int
	StatusCode     int
	Error          string
	DisableAfter   int // consecutive failures that switch the webhook off; 0 never does
	DisabledReason string
	// Gone switches the webhook off at once, with GoneReason: the receiver answered 410.
	// Send does so too as soon as it sees the 410; this is the copy that cannot be lost.
	Gone bool
}

// GoneReason is the disabled reason of a webhook whose receiver answered 410 Gone.
const GoneReason = "receiver answered 410 Gone"

// CompletionResult says what CompleteDelivery changed.
type CompletionResult struct {
	Completed    bool // false when an earlier run of this step already completed the delivery
	FailureCount int
	Disabled     bool
}

// CompleteDelivery closes a delivery and, for everything but tests, updates its
// webhook's streak in the same statement: last_triggered_at, failure_count reset on
// success or incremented on failure (in SQL, so concurrent deliveries count exactly),
// and the switch-off after DisableAfter consecutive failures. Running it twice for the
// same delivery changes nothing the second time, which makes the step safe to retry.
func CompleteDelivery(ctx context.Context, db bun.IDB, c Completion) (CompletionResult, error) {
	status := delivery.OutcomeFailed
	if c.Succeeded {
		status = delivery.OutcomeSucceeded
	}
	d := c.Delivery
	args := completionArgs{
		ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, Event: d.Event, Kind: d.Kind,
		RedeliveryOf: d.RedeliveryOf, Status: status, Attempts: c.Attempts,
		StatusCode: nilIfZero(c.StatusCode), Error: nilIfEmpty(c.Error), WorkflowID: d.WorkflowID, RunID: d.RunID,
		Succeeded: c.Succeeded, Gone: c.Gone, GoneReason: GoneReason,
		DisableAfter: c.DisableAfter, DisabledReason: c.DisabledReason, TestKind: delivery.KindTest,
	}
	var res CompletionResult
	var failures sql.NullInt64
	var active sql.NullBool
	err := db.NewRaw(`
WITH d AS (
    INSERT INTO webhook_deliveries AS d
        (id, webhook_id, event_id, event, kind, redelivery_of, status, attempts,
         last_status_code, last_error, workflow_id, run_id, completed_at)
    SELECT ?id, w.id, ?event_id, ?event, ?kind, ?redelivery_of, ?status, ?attempts,
           ?status_code, ?error, ?workflow_id, ?run_id, current_timestamp
    FROM webhooks AS w WHERE w.id = ?webhook_id
    ON CONFLICT (id) DO UPDATE SET
        status = EXCLUDED.status,
        attempts = GREATEST(d.attempts, EXCLUDED.attempts),
        last_status_code = COALESCE(EXCLUDED.last_status_code, d.last_status_code),
        last_error = EXCLUDED.last_error,
        completed_at = EXCLUDED.completed_at,
        updated_at = current_timestamp
    WHERE d.completed_at IS NULL
    RETURNING d.webhook_id, d.kind
), w AS (
    UPDATE webhooks AS w SET
        last_triggered_at = current_timestamp,
        failure_count = CASE WHEN ?succeeded THEN 0 ELSE w.failure_count + 1 END,
        is_active = CASE WHEN ?succeeded THEN w.is_active
                         WHEN ?gone OR (?disable_after > 0 AND w.failure_count + 1 >= ?disable_after) THEN false
                         ELSE w.is_active END,
        disabled_reason = CASE WHEN NOT ?succeeded AND w.is_active AND ?gone THEN ?gone_reason
                               WHEN NOT ?succeeded AND w.is_active AND ?disable_after > 0
                                    AND w.failure_count + 1 >= ?disable_after THEN ?disabled_reason
                               ELSE w.disabled_reason END,
        disabled_at = CASE WHEN NOT ?succeeded AND w.is_active
                                AND (?gone OR (?disable_after > 0 AND w.failure_count + 1 >= ?disable_after))
                           THEN current_timestamp
                           ELSE w.disabled_at END,
        updated_at = current_timestamp
    FROM d
    WHERE w.id = d.webhook_id AND d.kind <> ?test_kind
    RETURNING w.failure_count, w.is_active
)
SELECT (SELECT count(*) FROM d) > 0, (SELECT failure_count FROM w), (SELECT is_active FROM w)`, &args,
	).Scan(ctx, &res.Completed, &failures, &active)
	if err != nil {
		return CompletionResult{}, fmt.Errorf("complete delivery: %w", err)
	}
	res.FailureCount = int(failures.Int64)
	res.Disabled = active.Valid && !active.Bool
	return res, nil
}

// completionArgs are CompleteDelivery's named placeholders (?name).
type completionArgs struct {
	ID             string           `bun:"id"`
	WebhookID      string           `bun:"webhook_id"`
	EventID        string           `bun:"event_id"`
	Event          string           `bun:"event"`
	Kind           delivery.Kind    `bun:"kind"`
	RedeliveryOf   *string          `bun:"redelivery_of"`
	Status         delivery.Outcome `bun:"status"`
	Attempts       int              `bun:"attempts"`
	StatusCode     *int             `bun:"status_code"`
	Error          *string          `bun:"error"`
	WorkflowID     string           `bun:"workflow_id"`
	RunID          string           `bun:"run_id"`
	Succeeded      bool             `bun:"succeeded"`
	Gone           bool             `bun:"gone"`
	GoneReason     string           `bun:"gone_reason"`
	DisableAfter   int              `bun:"disable_after"`
	DisabledReason string           `bun:"disabled_reason"`
	TestKind       delivery.Kind    `bun:"test_kind"` // deliveries of this kind leave the streak alone
}

// SkipDelivery closes a delivery that ends without a final attempt (its webhook was
// paused, disabled or deleted while it waited to retry) as skipped, with the reason. It
// creates no row for a delivery that never made an attempt, and touches no counter:
// the receiver did not fail. It returns whether it closed a row.
func SkipDelivery(ctx context.Context, db bun.IDB, deliveryID, reason string) (bool, error) {
	res, err := db.NewUpdate().Model((*Delivery)(nil)).
		Set("status = ?", delivery.OutcomeSkipped).
		Set("last_error = ?", reason).
		Set("completed_at = current_timestamp").
		Set("updated_at = current_timestamp").
		Where("id = ? AND completed_at IS NULL AND status = ?", deliveryID, delivery.OutcomePending).
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("skip delivery: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// DeactivateWebhook switches a webhook off for a reason the receiver gave (410 Gone).
func DeactivateWebhook(ctx context.Context, db bun.IDB, id, reason string) error {
	_, err := db.NewUpdate().Model((*Webhook)(nil)).
		Set("is_active = false").
		Set("disabled_reason = ?", reason).
		Set("disabled_at = current_timestamp").
		Set("updated_at = current_timestamp").
		Where("id = ? AND is_active", id).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("deactivate webhook: %w", err)
	}
	return nil
}

func nilIfZero(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// DeliveryCursor is the position after the last row of a page: newest first means
// (created_at, id) descending.
type DeliveryCursor struct {
	CreatedAt time.Time
	ID        string
}

// ListDeliveries returns up to limit of a webhook's deliveries, newest first, after
// cursor (nil for the first page), optionally only those with status and of event ("":
// any).
func ListDeliveries(ctx context.Context, db bun.IDB, webhookID string, status delivery.Outcome, event string, limit int, after *DeliveryCursor) ([]Delivery, error) {
	ds := []Delivery{}
	q := db.NewSelect().Model(&ds).
		ExcludeColumn("request_body").
		Where("webhook_id = ?", webhookID).
		OrderExpr("created_at DESC, id DESC").
		Limit(limit)
	if status != "" {
		q.Where("status = ?", status)
	}
	if event != "" {
		q.Where("event = ?", event)
	}
	if after != nil {
		q.Where("(created_at, id) < (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return ds, nil
}

// GetDelivery returns one delivery of a webhook, with its request body.
func GetDelivery(ctx context.Context, db bun.IDB, webhookID, id string) (*Delivery, error) {
	d := new(Delivery)
	if err := scanOne(ctx, db.NewSelect().Model(d).Where("id = ? AND webhook_id = ?", id, webhookID), "get delivery"); err != nil {
		return nil, err
	}
	return d, nil
}

// PruneDeliveries deletes deliveries created before cutoff, in batches so a large
// backlog does not hold one long transaction. It returns how many were deleted.
func PruneDeliveries(ctx context.Context, db bun.IDB, cutoff time.Time, batch int) (int, error) {
	total := 0
	for {
		res, err := db.NewRaw(`DELETE FROM webhook_deliveries WHERE id IN (
    SELECT id FROM webhook_deliveries WHERE created_at < ? LIMIT ?)`, cutoff, batch).Exec(ctx)
		if err != nil {
			return total, fmt.Errorf("prune deliveries: %w", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
		if int(n) < batch {
			return total, nil
		}
	}
}
