package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/events"
)

// DeliverWebhookInput is one event for one webhook. It names the webhook; the secret
// is loaded by the activity and never appears here.
type DeliverWebhookInput struct {
	DeliveryID   string         `json:"deliveryId"`
	WebhookID    string         `json:"webhookId"`
	UserID       string         `json:"userId"`
	Kind         string         `json:"kind"`
	RedeliveryOf string         `json:"redeliveryOf,omitempty"`
	Payload      events.Payload `json:"payload"`
	// MaxAttempts overrides WEBHOOK_RETRY_MAX_ATTEMPTS when positive: test deliveries send once.
	MaxAttempts int `json:"maxAttempts,omitempty"`
}

// DeliverWebhookResult is the outcome of a delivery. A failed delivery also fails the
// workflow (so the Web UI lists it as Failed) with this result as the error's details.
type DeliverWebhookResult struct {
	DeliveryID string `json:"deliveryId"`
	Outcome    string `json:"outcome"`
	Attempts   int    `json:"attempts"`
	StatusCode int    `json:"statusCode,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"durationMs"`
}

// DeliverWebhook sends the event to the webhook under the retry policy, then records the
// outcome on the webhook. Recording retries on its own policy: a database outage delays
// it but never costs an HTTP attempt or loses the count.
func (w *Workflows) DeliverWebhook(ctx workflow.Context, in DeliverWebhookInput) (DeliverWebhookResult, error) {
	maxAttempts := w.cfg.Retry.MaxAttempts
	if in.MaxAttempts > 0 {
		maxAttempts = in.MaxAttempts
	}
	sendCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// Above the HTTP timeout, with room for the database waits around the POST.
		StartToCloseTimeout: w.cfg.HTTPTimeout + 2*w.cfg.DBRetryTimeout + 5*time.Second,
		HeartbeatTimeout:    0,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    w.cfg.Retry.InitialInterval,
			BackoffCoefficient: w.cfg.Retry.BackoffCoefficient,
			MaximumInterval:    w.cfg.Retry.MaxInterval,
			MaximumAttempts:    int32(maxAttempts),
		},
	})
	var a *activities.Sender
	start := workflow.Now(ctx)
	var sent activities.SendResult
	err := workflow.ExecuteActivity(sendCtx, a.Send, activities.SendInput{
		DeliveryID:   in.DeliveryID,
		WebhookID:    in.WebhookID,
		Kind:         in.Kind,
		RedeliveryOf: in.RedeliveryOf,
		Payload:      in.Payload,
	}).Get(ctx, &sent)
	if err == nil && sent.Skipped {
		return DeliverWebhookResult{DeliveryID: in.DeliveryID, Outcome: OutcomeSkipped, Error: sent.Reason}, nil
	}

	res := DeliverWebhookResult{DeliveryID: in.DeliveryID, Outcome: OutcomeSucceeded, Attempts: sent.Attempt, StatusCode: sent.StatusCode, DurationMS: sent.DurationMS}
	if err != nil {
		res = failedResult(in.DeliveryID, err, maxAttempts)
		res.DurationMS = workflow.Now(ctx).Sub(start).Milliseconds()
	}

	recordCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    w.cfg.RecordRetryMaxInterval,
			MaximumAttempts:    0, // until the database answers: the outcome must be counted
		},
	})
	err = workflow.ExecuteLocalActivity(recordCtx, a.Complete, activities.CompleteInput{
		DeliveryID:   in.DeliveryID,
		WebhookID:    in.WebhookID,
		Kind:         in.Kind,
		RedeliveryOf: in.RedeliveryOf,
		EventID:      in.Payload.ID,
		Event:        in.Payload.Event,
		Succeeded:    res.Outcome == OutcomeSucceeded,
		Attempts:     res.Attempts,
		StatusCode:   res.StatusCode,
		Error:        res.Error,
	}).Get(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("record delivery outcome: %w", err)
	}
	if res.Outcome == OutcomeFailed {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("delivery failed after %d attempt(s): %s", res.Attempts, res.Error), ErrTypeDeliveryFailed, nil, res)
	}
	return res, nil
}

// failedResult reads what the last attempt reported from the activity error.
func failedResult(deliveryID string, err error, maxAttempts int) DeliverWebhookResult {
	res := DeliverWebhookResult{DeliveryID: deliveryID, Outcome: OutcomeFailed, Attempts: maxAttempts, Error: err.Error()}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		res.Error = appErr.Message()
		var f activities.SendFailure
		if appErr.HasDetails() && appErr.Details(&f) == nil && f.Attempt > 0 {
			res.Attempts, res.StatusCode = f.Attempt, f.StatusCode
		}
		return res
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		res.Error = "attempt timed out"
	}
	return res
}

// DeliveryResultOf extracts the result of a finished DeliverWebhook run from what
// WorkflowRun.Get returned: the value on success, the error's details on failure.
func DeliveryResultOf(getErr error, value DeliverWebhookResult) (DeliverWebhookResult, error) {
	if getErr == nil {
		return value, nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(getErr, &appErr) && appErr.Type() == ErrTypeDeliveryFailed {
		var res DeliverWebhookResult
		if err := appErr.Details(&res); err == nil {
			return res, nil
		}
	}
	return DeliverWebhookResult{}, getErr
}
