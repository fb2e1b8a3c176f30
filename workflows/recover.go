package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
)

// RecoverDeliveriesName is the workflow type of a recovery.
const RecoverDeliveriesName = "RecoverDeliveries"

// ErrTypeRecoveryStopped fails a recovery that could not go on: its webhook was
// switched off or deleted while it ran.
const ErrTypeRecoveryStopped = "RecoveryStopped"

// recoverRunBytes bounds the bodies one run of a recovery carries in its history before
// it continues as new, far below Temporal's history limits.
const recoverRunBytes = 4 << 20

// RecoveryWorkflowID is the workflow id of recovery recoveryID: a recovery runs once.
func RecoveryWorkflowID(webhookID, recoveryID string) string {
	return "recovery:" + webhookID + ":" + recoveryID
}

// RecoverDeliveriesInput is one recovery: redeliver webhook WebhookID's event deliveries
// created in [Since, Until) whose status is one of Statuses.
type RecoverDeliveriesInput struct {
	RecoveryID string             `json:"recoveryId"`
	WebhookID  string             `json:"webhookId"`
	UserID     string             `json:"userId"`
	Since      time.Time          `json:"since"`
	Until      time.Time          `json:"until"`
	Statuses   []delivery.Outcome `json:"statuses"`

	// Carried across continue-as-new; callers leave them empty.
	Cursor   *activities.RecoveryCursor  `json:"cursor,omitempty"`
	Progress activities.RecoveryProgress `json:"progress"`
}

// RecoverDeliveriesResult is how the recovery ended.
type RecoverDeliveriesResult struct {
	State    string                      `json:"state"`
	Progress activities.RecoveryProgress `json:"progress"`
}

// RecoverDeliveries redelivers each matching delivery once, oldest first, as a
// redelivery linked to the original (its body, a new delivery id), at most RecoverRate
// a second (see pacer). Each redelivery runs in this workflow exactly as a delivery runs in
// DeliverWebhook (first attempt local, retries, outcome recorded), one after the other,
// so the receiver gets them in the order they happened and nothing is started per
// delivery. A redelivery's id is the same whichever recovery makes it, so one already
// made is skipped, and a worker restarted mid-recovery resumes where its history ends.
//
// Cancelling stops it between redeliveries: the one in flight finishes first. It pages
// through the delivery log, recording its progress with each page, and continues as new
// after ChildrenPerRun redeliveries to keep its history small.
func (w *Workflows) RecoverDeliveries(ctx workflow.Context, in RecoverDeliveriesInput) (RecoverDeliveriesResult, error) {
	cfg := w.runConfig(ctx)
	var a *activities.Delivery
	// Redeliveries and the final record run where the cancellation does not reach.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	pace := newPacer(cfg.RecoverRate, workflow.Now(ctx))
	sent, size := 0, 0
	for {
		var page activities.ListRecoverableResult
		err := databaseStep(ctx, cfg, a.ListRecoverable, activities.ListRecoverableInput{
			RecoveryID: in.RecoveryID, WebhookID: in.WebhookID, Since: in.Since, Until: in.Until,
			Statuses: in.Statuses, After: in.Cursor, Progress: in.Progress,
		}, &page)
		if err != nil {
			return w.endRecovery(ctx, dctx, cfg, in, err)
		}
		in.Progress.Matched += page.Matched
		in.Progress.Skipped += page.Skipped
		for _, d := range page.Deliveries {
			if err := pace.wait(ctx); err != nil {
				return w.endRecovery(ctx, dctx, cfg, in, err)
			}
			res, err := w.deliver(dctx, cfg, DeliverWebhookInput{
				Identity: delivery.Identity{
					DeliveryID: d.RedeliveryID, WebhookID: in.WebhookID, Kind: delivery.KindRedelivery, RedeliveryOf: d.OriginalID,
				},
				UserID:  in.UserID,
				Payload: d.Payload,
			})
			switch {
			case err == nil && res.Outcome == delivery.OutcomeSucceeded:
				in.Progress.Redelivered++
				in.Progress.Succeeded++
			case err == nil:
				// Skipped: the webhook is off or gone, so every later one would be too. What
				// is left stays unsent, for a recovery once it is on again.
				return w.endRecovery(ctx, dctx, cfg, in, temporal.NewNonRetryableApplicationError(
					"recovery stopped: "+res.Error, ErrTypeRecoveryStopped, nil))
			case errorType(err) == ErrTypeDeliveryFailed:
				in.Progress.Redelivered++
				in.Progress.Failed++
			default:
				return w.endRecovery(ctx, dctx, cfg, in, err)
			}
			sent++
			size += len(d.Payload.Data)
		}
		if page.Next == nil {
			return w.endRecovery(ctx, dctx, cfg, in, nil)
		}
		in.Cursor = page.Next
		if sent >= cfg.ChildrenPerRun || size >= recoverRunBytes {
			return RecoverDeliveriesResult{}, workflow.NewContinueAsNewError(ctx, RecoverDeliveriesName, in)
		}
	}
}

// endRecovery records how the recovery ended (cause nil: it went through its window)
// and returns it: a cancelled recovery ends as cancelled, one that could not go on as
// failed, with cause.
func (w *Workflows) endRecovery(ctx, dctx workflow.Context, cfg runSettings, in RecoverDeliveriesInput, cause error) (RecoverDeliveriesResult, error) {
	state, reason := activities.RecoveryCompleted, ""
	switch {
	case cause == nil:
	case ctx.Err() != nil || temporal.IsCanceledError(cause):
		state, cause = activities.RecoveryCanceled, ctx.Err()
	default:
		state, reason = activities.RecoveryFailed, cause.Error()
		var appErr *temporal.ApplicationError
		if errors.As(cause, &appErr) {
			reason = appErr.Message()
		}
	}
	var a *activities.Delivery
	var out activities.FinishRecoveryResult
	err := databaseStep(dctx, cfg, a.FinishRecovery, activities.FinishRecoveryInput{
		RecoveryID: in.RecoveryID, State: state, Progress: in.Progress, Reason: reason,
	}, &out)
	if err != nil {
		return RecoverDeliveriesResult{}, fmt.Errorf("record recovery end: %w", err)
	}
	return RecoverDeliveriesResult{State: state, Progress: in.Progress}, cause
}

// pacer holds a recovery to rate redeliveries a second: per of them in each window (a
// second, or 1/rate when that is longer), then a wait for the window's end. Whole
// windows, not a wait per redelivery: a Temporal timer is only about a second precise
// (the dev server rounds shorter ones up to a second), so waits of a tenth of a second
// would slow a recovery of 10 a second to one. A window in which redeliveries took
// longer than the window ends without a wait.
type pacer struct {
	window time.Duration
	per    int
	start  time.Time
	used   int
}

func newPacer(rate float64, now time.Time) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	window := max(time.Second, time.Duration(float64(time.Second)/rate))
	return &pacer{window: window, per: max(1, int(rate*window.Seconds())), start: now}
}

// wait returns when the next redelivery may go.
func (p *pacer) wait(ctx workflow.Context) error {
	if p.per == 0 {
		return ctx.Err()
	}
	now := workflow.Now(ctx)
	if p.used >= p.per {
		if d := p.start.Add(p.window).Sub(now); d > 0 {
			if err := workflow.Sleep(ctx, d); err != nil {
				return err
			}
			now = workflow.Now(ctx)
		}
	}
	if !now.Before(p.start.Add(p.window)) {
		p.start, p.used = now, 0
	}
	p.used++
	return ctx.Err()
}
