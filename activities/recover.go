package activities

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/filter"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/operational"
)

// A recovery lists its deliveries a page at a time and records its progress with each
// page, so the progress it shows is at most a page behind. A page also holds at most
// recoverPageBytes of bodies: it travels in the workflow's history.
const (
	recoverPageSize  = 20
	recoverPageBytes = 512 << 10
)

// redeliveryNamespace seeds the ids of recoveries' redeliveries.
var redeliveryNamespace = uuid.MustParse("0c3e5a8d-7f21-4b96-a4d2-5e9b1f6c3a70")

// RecoveryRedeliveryID is the delivery id any recovery gives its redelivery of delivery
// originalID. Being the same for every recovery, a redelivery that another recovery
// made is in the delivery log under it, and a recovery skips that original.
func RecoveryRedeliveryID(originalID string) string {
	return uuid.NewSHA1(redeliveryNamespace, []byte("recovery\x00"+originalID)).String()
}

// ListRecoverableInput asks for the next page of a recovery, and records the progress
// made before it.
type ListRecoverableInput struct {
	RecoveryID string             `json:"recoveryId"`
	WebhookID  string             `json:"webhookId"`
	Since      time.Time          `json:"since"`
	Until      time.Time          `json:"until"`
	Statuses   []delivery.Outcome `json:"statuses"`
	// After is the position after the last page; nil for the first.
	After    *models.RecoverableCursor `json:"after,omitempty"`
	Progress models.RecoveryProgress   `json:"progress"`
}

// Recoverable is one delivery to send again: the original, the id its redelivery gets,
// and the body it carried.
type Recoverable struct {
	OriginalID   string         `json:"originalId"`
	RedeliveryID string         `json:"redeliveryId"`
	Payload      events.Payload `json:"payload"`
}

// ListRecoverableResult is a page: the deliveries to send, how many matched (those
// skipped included) and where the next page starts (nil after the last).
type ListRecoverableResult struct {
	Deliveries []Recoverable             `json:"deliveries"`
	Matched    int                       `json:"matched"`
	Skipped    int                       `json:"skipped"`
	Next       *models.RecoverableCursor `json:"next,omitempty"`
}

// ListRecoverable records the recovery's progress so far and returns its next page,
// oldest first. A delivery whose redelivery by a recovery is already in the log, or
// whose body was not recorded, is counted as skipped and not returned.
func (s *Delivery) ListRecoverable(ctx context.Context, in ListRecoverableInput) (ListRecoverableResult, error) {
	if err := models.RecordRecoveryProgress(ctx, s.db, in.RecoveryID, in.Progress); err != nil {
		return ListRecoverableResult{}, err
	}
	if in.After == nil && in.Progress == (models.RecoveryProgress{}) {
		s.cfg.OpsMetrics.recoveryStarted()
	}
	rows, err := models.ListRecoverable(ctx, s.db, in.WebhookID, in.Since, in.Until, in.Statuses, in.After, recoverPageSize)
	if err != nil {
		return ListRecoverableResult{}, err
	}
	full := len(rows) == recoverPageSize
	size := 0
	for i, r := range rows {
		if i > 0 && size+len(r.RequestBody) > recoverPageBytes {
			rows, full = rows[:i], true
			break
		}
		size += len(r.RequestBody)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = RecoveryRedeliveryID(r.ID)
	}
	made, err := models.ExistingDeliveries(ctx, s.db, ids)
	if err != nil {
		return ListRecoverableResult{}, err
	}
	done := make(map[string]bool, len(made))
	for _, id := range made {
		done[id] = true
	}
	res := ListRecoverableResult{Deliveries: []Recoverable{}, Matched: len(rows)}
	for i, r := range rows {
		var p events.Payload
		if done[ids[i]] || len(r.RequestBody) == 0 || json.Unmarshal(r.RequestBody, &p) != nil {
			res.Skipped++
			continue
		}
		res.Deliveries = append(res.Deliveries, Recoverable{OriginalID: r.ID, RedeliveryID: ids[i], Payload: p})
	}
	if full && len(rows) > 0 {
		last := rows[len(rows)-1]
		res.Next = &models.RecoverableCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return res, nil
}

// FinishRecoveryInput records how a recovery ended.
type FinishRecoveryInput struct {
	RecoveryID string                  `json:"recoveryId"`
	State      string                  `json:"state"`
	Progress   models.RecoveryProgress `json:"progress"`
	// Reason says why a recovery failed.
	Reason string `json:"reason,omitempty"`
}

// FinishRecoveryResult is the state the recovery ended in (the first end recorded wins).
type FinishRecoveryResult struct {
	State string `json:"state"`
}

// FinishRecovery records the recovery's end and final counts, once, and tells the
// backend (webhook.recovery_completed) when it completed. The event is recorded in the
// same transaction as the end, so a retry neither loses nor repeats it.
func (s *Delivery) FinishRecovery(ctx context.Context, in FinishRecoveryInput) (FinishRecoveryResult, error) {
	var r *models.Recovery
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var now bool
		var err error
		r, now, err = models.FinishRecovery(ctx, tx, in.RecoveryID, in.State, in.Progress, in.Reason)
		if err != nil || !now {
			return err
		}
		s.cfg.OpsMetrics.recoveryFinished(r.State)
		if !s.cfg.Operational.enabled() || r.State != models.RecoveryCompleted {
			return nil
		}
		hook, err := operational.LockWebhook(ctx, tx, r.WebhookID)
		if err != nil {
			return err
		}
		reason := "recovery of the failed deliveries in the window asked for"
		if r.Reason == models.RecoveryMissed {
			reason = "recovery of the deliveries missed while the webhook was off, after it was switched on again"
		}
		ev, err := operational.NewEvent(operational.RecoveryCause(r.ID), operational.RecoveryCompleted, operational.Data{
			UserID: r.UserID, WebhookID: r.WebhookID, WebhookName: hook.Name, Reason: reason,
			Recovery: &operational.RecoverySummary{
				RecoveryID: r.ID, State: r.State, Matched: r.Matched, Redelivered: r.Redelivered,
				Succeeded: r.Succeeded, Failed: r.Failed,
			},
		})
		if err != nil {
			return err
		}
		return operational.Record(ctx, tx, ev)
	})
	if errors.Is(err, models.ErrNotFound) || errors.Is(err, operational.ErrNotFound) {
		return FinishRecoveryResult{State: "deleted"}, nil // the webhook was deleted, and its recoveries with it
	}
	if err != nil {
		return FinishRecoveryResult{}, err
	}
	if s.cfg.Operational.enabled() && r.State == models.RecoveryCompleted {
		if err := s.startOperational(ctx, operational.EventID(operational.RecoveryCause(r.ID), operational.RecoveryCompleted)); err != nil {
			return FinishRecoveryResult{}, err
		}
	}
	return FinishRecoveryResult{State: r.State}, nil
}

// recordMissed logs the event as missed for the inactive webhooks subscribed to it
// whose filter (if any) it matches, in one statement: no workflow, nothing sent or
// counted. The body is the one an active webhook would have got.
func (s *Delivery) recordMissed(ctx context.Context, in ListSubscribersInput, inactive []models.InactiveSubscriber) error {
	if len(inactive) == 0 || in.Payload == nil {
		return nil
	}
	var missed []models.Missed
	var ev *filter.Event
	for _, w := range inactive {
		if w.Filter != nil {
			if ev == nil {
				var err error
				if ev, err = filterEvent(*in.Payload); err != nil {
					return err
				}
			}
			if _, ok := s.match(ctx, w.ID, *w.Filter, ev); !ok {
				continue // it would not have been sent had the webhook been on
			}
		}
		reason := "webhook inactive"
		if w.DisabledReason != nil {
			reason += ": " + *w.DisabledReason
		}
		missed = append(missed, models.Missed{DeliveryID: delivery.ID(in.Payload.ID, w.ID), WebhookID: w.ID, Reason: reason})
	}
	if len(missed) == 0 {
		return nil
	}
	body, err := in.Payload.Marshal()
	if err != nil {
		return err
	}
	row := deliveryRow(ctx, delivery.Identity{Kind: delivery.KindEvent}, in.Payload.ID, in.Payload.Event)
	row.RequestBody = body
	if err := models.RecordMissed(ctx, s.db, row, missed); err != nil {
		return err
	}
	s.cfg.OpsMetrics.missedDeliveries(len(missed))
	return nil
}

// RecoveryProgress and RecoveryCursor are the models' types, named here for the
// workflows, which see the database only through the activities.
type (
	RecoveryProgress = models.RecoveryProgress
	RecoveryCursor   = models.RecoverableCursor
)

// How a recovery ends, as FinishRecoveryInput.State.
const (
	RecoveryCompleted = models.RecoveryCompleted
	RecoveryCanceled  = models.RecoveryCanceled
	RecoveryFailed    = models.RecoveryFailed
)
