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

// ErrRecoveryRunning is a recovery refused because another of the webhook's is running.
var ErrRecoveryRunning = errors.New("another recovery of this webhook is running")

// Recovery states.
const (
	RecoveryRunning   = "running"
	RecoveryCompleted = "completed"
	RecoveryCanceled  = "canceled"
	RecoveryFailed    = "failed"
)

// Recovery reasons: asked for by POST /webhooks/:id/recover, or by re-enabling a
// webhook with recoverMissed.
const (
	RecoveryRequested = "requested"
	RecoveryMissed    = "missed"
)

// Recovery is one RecoverDeliveries run over a webhook's delivery log: what it was asked
// to redeliver and how far it got.
type Recovery struct {
	bun.BaseModel `bun:"table:webhook_recoveries,alias:r"`

	ID                string     `bun:"id,pk,type:uuid"`
	WebhookID         string     `bun:"webhook_id,notnull,type:uuid"`
	UserID            string     `bun:"user_id,notnull"`
	WindowStart       time.Time  `bun:"window_start,notnull"`
	WindowEnd         time.Time  `bun:"window_end,notnull"`
	Statuses          []string   `bun:"statuses,array,notnull"`
	Reason            string     `bun:"reason,notnull"`
	State             string     `bun:"state,notnull"`
	Matched           int        `bun:"matched,notnull"`
	Skipped           int        `bun:"skipped,notnull"`
	Redelivered       int        `bun:"redelivered,notnull"`
	Succeeded         int        `bun:"succeeded,notnull"`
	Failed            int        `bun:"failed,notnull"`
	Error             *string    `bun:"error"`
	WorkflowID        string     `bun:"workflow_id,notnull"`
	CreatedAt         time.Time  `bun:"created_at,nullzero,notnull,default:current_timestamp"`
	UpdatedAt         time.Time  `bun:"updated_at,nullzero,notnull,default:current_timestamp"`
	CancelRequestedAt *time.Time `bun:"cancel_requested_at"`
	CompletedAt       *time.Time `bun:"completed_at"`
}

// RecoveryProgress is what a recovery has done so far.
type RecoveryProgress struct {
	// Matched counts the deliveries in the window with the recovered statuses.
	Matched int `json:"matched"`
	// Skipped counts those of them another recovery had already redelivered, or whose
	// body was not recorded.
	Skipped int `json:"skipped"`
	// Redelivered counts the redeliveries made; Succeeded and Failed their outcomes.
	Redelivered int `json:"redelivered"`
	Succeeded   int `json:"succeeded"`
	Failed      int `json:"failed"`
}

// CreateRecovery stores r as running and returns it, unless it exists already (the same
// request again): then it returns the stored one and created false. Another running
// recovery of the webhook is ErrRecoveryRunning, returned with that recovery.
func CreateRecovery(ctx context.Context, db bun.IDB, r *Recovery) (*Recovery, bool, error) {
	r.State = RecoveryRunning
	res, err := db.NewInsert().Model(r).
		ExcludeColumn("created_at", "updated_at").
		On("CONFLICT DO NOTHING").
		Returning("*").
		Exec(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("insert recovery: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return r, true, nil
	}
	existing := new(Recovery)
	err = db.NewSelect().Model(existing).Where("id = ?", r.ID).Scan(ctx)
	if err == nil {
		return existing, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("read recovery: %w", err)
	}
	running, err := RunningRecovery(ctx, db, r.WebhookID)
	if errors.Is(err, ErrNotFound) {
		// It finished between the insert and this read: the caller may try again.
		return nil, false, fmt.Errorf("recovery conflict that resolved itself: %w", ErrRecoveryRunning)
	}
	if err != nil {
		return nil, false, err
	}
	return running, false, ErrRecoveryRunning
}

// RunningRecovery returns the webhook's running recovery, ErrNotFound when none runs.
func RunningRecovery(ctx context.Context, db bun.IDB, webhookID string) (*Recovery, error) {
	r := new(Recovery)
	if err := scanOne(ctx, db.NewSelect().Model(r).Where("webhook_id = ? AND state = ?", webhookID, RecoveryRunning), "read running recovery"); err != nil {
		return nil, err
	}
	return r, nil
}

// GetRecovery returns one of a webhook's recoveries; another webhook's is ErrNotFound.
func GetRecovery(ctx context.Context, db bun.IDB, webhookID, id string) (*Recovery, error) {
	r := new(Recovery)
	if err := scanOne(ctx, db.NewSelect().Model(r).Where("id = ? AND webhook_id = ?", id, webhookID), "get recovery"); err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteRecovery removes a running recovery whose workflow never started, so it holds
// no webhook's one running slot.
func DeleteRecovery(ctx context.Context, db bun.IDB, id string) error {
	_, err := db.NewDelete().Model((*Recovery)(nil)).Where("id = ? AND state = ?", id, RecoveryRunning).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete recovery: %w", err)
	}
	return nil
}

// RequestRecoveryCancel notes that the recovery was asked to stop; its workflow records
// the end. It returns the recovery as it now stands.
func RequestRecoveryCancel(ctx context.Context, db bun.IDB, webhookID, id string) (*Recovery, error) {
	r := new(Recovery)
	err := db.NewUpdate().Model(r).
		Set("cancel_requested_at = coalesce(r.cancel_requested_at, current_timestamp)").
		Set("updated_at = current_timestamp").
		Where("id = ? AND webhook_id = ?", id, webhookID).
		Returning("*").
		Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cancel recovery: %w", err)
	}
	return r, nil
}

// RecordRecoveryProgress writes a running recovery's progress. The values are totals,
// not increments, so writing the same progress twice changes nothing.
func RecordRecoveryProgress(ctx context.Context, db bun.IDB, id string, p RecoveryProgress) error {
	_, err := db.NewUpdate().Model((*Recovery)(nil)).
		Set("matched = ?, skipped = ?, redelivered = ?, succeeded = ?, failed = ?", p.Matched, p.Skipped, p.Redelivered, p.Succeeded, p.Failed).
		Set("updated_at = current_timestamp").
		Where("id = ? AND state = ?", id, RecoveryRunning).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("record recovery progress: %w", err)
	}
	return nil
}

// FinishRecovery records a recovery's end, state and final progress, once: it returns
// the recovery and whether this call ended it (false when an earlier one did).
func FinishRecovery(ctx context.Context, db bun.IDB, id, state string, p RecoveryProgress, reason string) (*Recovery, bool, error) {
	var errMsg any
	if reason != "" {
		errMsg = reason
	}
	r := new(Recovery)
	err := db.NewUpdate().Model(r).
		Set("state = ?", state).
		Set("matched = ?, skipped = ?, redelivered = ?, succeeded = ?, failed = ?", p.Matched, p.Skipped, p.Redelivered, p.Succeeded, p.Failed).
		Set("error = ?", errMsg).
		Set("completed_at = current_timestamp, updated_at = current_timestamp").
		Where("id = ? AND state = ?", id, RecoveryRunning).
		Returning("*").
		Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		r = new(Recovery)
		err := db.NewSelect().Model(r).Where("id = ?", id).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, ErrNotFound // its webhook was deleted
		}
		if err != nil {
			return nil, false, fmt.Errorf("read finished recovery: %w", err)
		}
		return r, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("finish recovery: %w", err)
	}
	return r, true, nil
}

// RecoverableCursor is the position after a delivery of a recovery's listing: oldest
// first, by (created_at, id).
type RecoverableCursor struct {
	CreatedAt time.Time `json:"createdAt"`
	ID        string    `json:"id"`
}

// Recoverable is a delivery a recovery may send again: the original event's delivery and
// the body it carried (nil when none was recorded).
type Recoverable struct {
	ID          string    `bun:"id"`
	CreatedAt   time.Time `bun:"created_at"`
	RequestBody []byte    `bun:"request_body"`
}

// ListRecoverable returns up to limit of a webhook's event deliveries created in
// [since, until) with one of statuses, oldest first (the order they happened), after
// cursor (nil for the first page). Tests and redeliveries are never recovered: a
// recovery sends each original event once.
func ListRecoverable(ctx context.Context, db bun.IDB, webhookID string, since, until time.Time, statuses []delivery.Outcome, after *RecoverableCursor, limit int) ([]Recoverable, error) {
	out := []Recoverable{}
	st := make([]string, len(statuses))
	for i, s := range statuses {
		st[i] = string(s)
	}
	q := db.NewSelect().Model((*Delivery)(nil)).
		Column("id", "created_at", "request_body").
		Where("webhook_id = ?", webhookID).
		Where("kind = ?", delivery.KindEvent).
		Where("status = ANY(?::text[])", pgdialect.Array(st)).
		Where("created_at >= ? AND created_at < ?", since, until).
		OrderExpr("created_at, id").
		Limit(limit)
	if after != nil {
		q.Where("(created_at, id) > (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("list recoverable deliveries: %w", err)
	}
	return out, nil
}

// ExistingDeliveries returns those of ids that are in the delivery log.
func ExistingDeliveries(ctx context.Context, db bun.IDB, ids []string) ([]string, error) {
	found := []string{}
	if len(ids) == 0 {
		return found, nil
	}
	err := db.NewSelect().Model((*Delivery)(nil)).Column("id").
		Where("id = ANY(?::uuid[])", pgdialect.Array(ids)).Scan(ctx, &found)
	if err != nil {
		return nil, fmt.Errorf("find deliveries: %w", err)
	}
	return found, nil
}

// PruneRecoveryHealth deletes what recoveries, endpoint health and operational events
// keep beside the delivery log once it is past the log's retention (cutoff): hours of
// statistics, finished recoveries and operational events created before cutoff (an
// event not yet sent by then never will be). It returns how many rows went. It belongs
// beside PruneDeliveries, in the same Schedule.
func PruneRecoveryHealth(ctx context.Context, db bun.IDB, cutoff time.Time) (int, error) {
	total := 0
	for _, q := range []string{
		`DELETE FROM webhook_delivery_stats WHERE hour < date_trunc('hour', ?::timestamptz)`,
		`DELETE FROM webhook_recoveries WHERE state <> 'running' AND created_at < ?`,
		`DELETE FROM operational_events WHERE created_at < ?`,
	} {
		res, err := db.NewRaw(q, cutoff).Exec(ctx)
		if err != nil {
			return total, fmt.Errorf("prune recovery and health rows: %w", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}
