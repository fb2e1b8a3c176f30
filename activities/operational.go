package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/operational"
	"github.com/assetsup/webhooks/signing"
)

// Error types of the operational events' sending.
const (
	// ErrTypeOperationalOff: OPERATIONAL_WEBHOOK_URL is not set on this worker.
	ErrTypeOperationalOff = "OperationalOff"
	// ErrTypeOperationalMissing: the event's row is gone; there is nothing to send.
	ErrTypeOperationalMissing = "OperationalMissing"
)

// OperationalConfig is where operational events go and how they are started. Events
// are recorded and sent only while URL is set.
type OperationalConfig struct {
	URL string
	// Secret signs every event, as a webhook's secret signs its deliveries. Never logged.
	Secret string
	// Client sends the events: the backend's URL is the operator's own, so it is not held
	// to the SSRF guard that receivers' URLs are.
	Client *http.Client
	// AlertAfterFailures is the failure streak that raises webhook.failing (0: never).
	AlertAfterFailures int
	// Start begins the SendOperationalEvent workflow of an event. Starting one that was
	// started before must do nothing and return nil: its workflow id is the event's.
	Start func(ctx context.Context, ev OperationalEvent) error
}

func (c OperationalConfig) enabled() bool { return c.URL != "" && c.Start != nil }

// OperationalEvent names an operational event: the SendOperationalEvent workflow's input.
type OperationalEvent struct {
	EventID   string           `json:"eventId"`
	Type      operational.Type `json:"type"`
	UserID    string           `json:"userId"`
	WebhookID string           `json:"webhookId"`
}

func refOf(ev operational.Event) OperationalEvent {
	return OperationalEvent{EventID: ev.ID, Type: ev.Type, UserID: ev.UserID, WebhookID: ev.WebhookID}
}

// completeDelivery is models.CompleteDelivery, telling the backend when the outcome
// made the webhook's failure streak reach the alert threshold or switched it off. Those
// events are recorded in the same transaction as the outcome, so they exist exactly when
// it changed the webhook, and their workflows are started from what is recorded, so a
// retry after a crash starts them too. Successes, tests, and everything while
// operational events are off take the one-statement path.
func (s *Delivery) completeDelivery(ctx context.Context, in CompleteInput, c models.Completion) (models.CompletionResult, error) {
	ops := s.cfg.Operational
	if !ops.enabled() || in.Succeeded {
		return models.CompleteDelivery(ctx, s.db, c)
	}
	cause := operational.DeliveryCause(in.DeliveryID)
	ids := []string{operational.EventID(cause, operational.WebhookFailing), operational.EventID(cause, operational.WebhookDisabled)}
	if in.Kind == delivery.KindTest {
		// A test leaves the streak alone; only its 410 switched the webhook off (in Send).
		res, err := models.CompleteDelivery(ctx, s.db, c)
		if err != nil || !in.Gone {
			return res, err
		}
		return res, s.startOperational(ctx, ids[1])
	}
	var res models.CompletionResult
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		before, err := operational.LockWebhook(ctx, tx, in.WebhookID)
		if errors.Is(err, operational.ErrNotFound) {
			res, err = models.CompleteDelivery(ctx, tx, c) // creates nothing for a deleted webhook
			return err
		}
		if err != nil {
			return err
		}
		if res, err = models.CompleteDelivery(ctx, tx, c); err != nil || !res.Completed {
			return err
		}
		data := operational.Data{UserID: before.UserID, WebhookID: before.ID, WebhookName: before.Name, FailureCount: res.FailureCount}
		var evs []operational.Event
		if n := ops.AlertAfterFailures; n > 0 && before.FailureCount < n && res.FailureCount >= n {
			d := data
			d.Reason = fmt.Sprintf("%d consecutive failed deliveries", res.FailureCount)
			d.LastError = in.Error
			ev, err := operational.NewEvent(cause, operational.WebhookFailing, d)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		if before.IsActive && res.Disabled {
			d := data
			d.Reason = c.DisabledReason
			if in.Gone {
				d.Reason = models.GoneReason
			}
			ev, err := operational.NewEvent(cause, operational.WebhookDisabled, d)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		return operational.Record(ctx, tx, evs...)
	})
	if err != nil {
		return models.CompletionResult{}, err
	}
	return res, s.startOperational(ctx, ids...)
}

// deactivateGone switches the webhook off after a 410 Gone and, with operational events
// on, records webhook.disabled in the same statement. The delivery's outcome step starts
// the event's workflow: it runs next, and finds the event by the delivery's id.
func (s *Delivery) deactivateGone(ctx context.Context, id delivery.Identity) error {
	if !s.cfg.Operational.enabled() {
		return models.DeactivateWebhook(ctx, s.db, id.WebhookID, models.GoneReason)
	}
	eventID := operational.EventID(operational.DeliveryCause(id.DeliveryID), operational.WebhookDisabled)
	_, err := operational.DeactivateGone(ctx, s.db, id.WebhookID, models.GoneReason, eventID)
	return err
}

// startOperational starts the workflows of those of ids that are recorded, in the order
// given. A workflow started before is not started again (its id is the event's).
func (s *Delivery) startOperational(ctx context.Context, ids ...string) error {
	evs, err := operational.Recorded(ctx, s.db, ids...)
	if err != nil {
		return err
	}
	for _, id := range ids {
		for _, ev := range evs {
			if ev.ID != id || ev.SentAt != nil {
				continue
			}
			if err := s.cfg.Operational.Start(ctx, refOf(ev)); err != nil {
				// Retried with the step: the event stays recorded, and its start is idempotent.
				return fmt.Errorf("start operational event %s: %w", ev.Type, err)
			}
			activity.GetLogger(ctx).Info("operational event", "type", ev.Type, "event_id", ev.ID, "webhook_id", ev.WebhookID)
		}
	}
	return nil
}

// SendOperationalInput is one attempt at an operational event, with the attempt budget
// and backoff of the workflow run that sends it, as SendInput has for a delivery.
type SendOperationalInput struct {
	OperationalEvent
	MaxAttempts int     `json:"maxAttempts"`
	Backoff     Backoff `json:"backoff"`
}

// SendOperationalResult is the successful attempt.
type SendOperationalResult struct {
	Attempt    int  `json:"attempt"`
	StatusCode int  `json:"statusCode,omitempty"`
	Already    bool `json:"already,omitempty"` // an earlier run sent it and did not live to say so
}

// SendOperational signs an operational event with OPERATIONAL_WEBHOOK_SECRET and POSTs
// it to OPERATIONAL_WEBHOOK_URL, as its next attempt. Failures split as Send's do: the
// backend's (an answer other than 2xx, no answer) use one of MaxAttempts; ours (the
// database) send nothing, cost nothing, and are retried for as long as they last.
func (s *Delivery) SendOperational(ctx context.Context, in SendOperationalInput) (SendOperationalResult, error) {
	ops := s.cfg.Operational
	if ops.URL == "" || ops.Client == nil {
		return SendOperationalResult{}, temporal.NewNonRetryableApplicationError(
			"operational events are off on this worker: set OPERATIONAL_WEBHOOK_URL", ErrTypeOperationalOff, nil)
	}
	var ev *operational.Event
	err := s.withDBRetry(ctx, func(ctx context.Context) error {
		var err error
		ev, err = operational.Get(ctx, s.db, in.EventID)
		return err
	})
	switch {
	case errors.Is(err, operational.ErrNotFound):
		return SendOperationalResult{}, temporal.NewNonRetryableApplicationError("operational event not recorded", ErrTypeOperationalMissing, nil)
	case err != nil:
		return SendOperationalResult{}, s.ours(ctx, ErrTypeDatabase, "database unavailable; nothing sent", err)
	case ev.SentAt != nil:
		return SendOperationalResult{Attempt: ev.Attempts, Already: true}, nil
	}
	body, err := operational.Body(ev.ID, ev.Type, ev.CreatedAt, ev.Data)
	if err != nil {
		return SendOperationalResult{}, temporal.NewNonRetryableApplicationError("operational event cannot be encoded", "Payload", nil)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ops.URL, bytes.NewReader(body))
	if err != nil {
		return SendOperationalResult{}, temporal.NewNonRetryableApplicationError("OPERATIONAL_WEBHOOK_URL is not a valid request target", "URL", nil)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	err = signing.SetHeaders(req.Header, []string{ops.Secret}, signing.Delivery{
		Event: string(ev.Type), DeliveryID: ev.ID, MsgID: ev.ID, Timestamp: s.now().Unix(), Body: body,
	})
	if err != nil {
		return SendOperationalResult{}, temporal.NewNonRetryableApplicationError("OPERATIONAL_WEBHOOK_SECRET is malformed", "Secret", nil)
	}
	budgetIn := SendInput{MaxAttempts: in.MaxAttempts, Backoff: in.Backoff}
	var attempt int
	err = s.withDBRetry(ctx, func(ctx context.Context) error {
		var err error
		attempt, err = operational.ClaimAttempt(ctx, s.db, ev.ID, budget(budgetIn))
		return err
	})
	if err != nil {
		return SendOperationalResult{}, s.ours(ctx, ErrTypeDatabase, "database unavailable; nothing sent", err)
	}
	if attempt == 0 {
		// Sent meanwhile by another run, or the last attempt was used by one that died.
		if again, err := operational.Get(ctx, s.db, ev.ID); err == nil && again.SentAt != nil {
			return SendOperationalResult{Attempt: again.Attempts, Already: true}, nil
		}
		return SendOperationalResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("all %d attempts made", ev.Attempts), ErrTypeExhausted, nil, SendFailure{Attempt: ev.Attempts})
	}

	// Counted and going out: it runs to its answer even if the worker is told to stop.
	ctx = context.WithoutCancel(ctx)
	resp, err := ops.Client.Do(req.WithContext(ctx))
	if err != nil {
		msg := describeTransportError(err)
		s.recordOperational(ctx, ev.ID, false, 0, msg)
		s.cfg.OpsMetrics.operationalAttempt(ev.Type, "error")
		return SendOperationalResult{}, s.transportFailure(err, msg, attempt, budgetIn)
	}
	_, _ = readCapped(resp.Body, s.cfg.MaxResponseBytes)
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		s.recordOperational(ctx, ev.ID, true, resp.StatusCode, "")
		s.cfg.OpsMetrics.operationalAttempt(ev.Type, "sent")
		activity.GetLogger(ctx).Info("operational event sent", "type", ev.Type, "event_id", ev.ID, "attempt", attempt)
		return SendOperationalResult{Attempt: attempt, StatusCode: resp.StatusCode}, nil
	}
	msg := statusMessage(resp)
	s.recordOperational(ctx, ev.ID, false, resp.StatusCode, msg)
	s.cfg.OpsMetrics.operationalAttempt(ev.Type, "failed")
	return SendOperationalResult{}, temporal.NewApplicationErrorWithOptions(msg, ErrTypeHTTPStatus, receiverFailure(attempt, resp.StatusCode, budgetIn))
}

// recordOperational writes an attempt's answer; losing it changes nothing that was sent.
func (s *Delivery) recordOperational(ctx context.Context, id string, sent bool, status int, msg string) {
	err := s.withDBRetry(ctx, func(ctx context.Context) error { return operational.RecordAttempt(ctx, s.db, id, sent, status, msg) })
	if err != nil {
		activity.GetLogger(ctx).Error("record operational attempt", "event_id", id, "error", err)
	}
}

// RotationEndedInput names the end of a secret rotation's grace period.
type RotationEndedInput struct {
	WebhookID string `json:"webhookId"`
	// ExpiresAt is when the replaced secret stopped signing, as the rotation set it.
	ExpiresAt time.Time `json:"expiresAt"`
}

// EmitRotationEnded tells the backend that a rotation's grace period is over, unless a
// later rotation replaced the secret meanwhile (its own end is told) or the webhook is
// gone. It says whether an event was started.
func (s *Delivery) EmitRotationEnded(ctx context.Context, in RotationEndedInput) (bool, error) {
	if !s.cfg.Operational.enabled() {
		return false, nil
	}
	ev, err := operational.RotationEnded(ctx, s.db, in.WebhookID, in.ExpiresAt)
	if err != nil || ev == nil {
		return false, err
	}
	return true, s.startOperational(ctx, ev.ID)
}
