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
	return w.deliver(ctx, in)
}

// deliver is DeliverWebhook's body, shared with DispatchEvent's inline delivery so that
// both send, retry, record and fail in exactly the same way.
func (w *Workflows) deliver(ctx workflow.Context, in DeliverWebhookInput) (DeliverWebhookResult, error) {
	maxAttempts := w.cfg.Retry.MaxAttempts
	if in.MaxAttempts > 0 {
		maxAttempts = in.MaxAttempts
	}
	var sent activities.SendResult
	start := workflow.Now(ctx)
	err := w.send(ctx, activities.SendInput{
		DeliveryID:   in.DeliveryID,
		WebhookID:    in.WebhookID,
		Kind:         in.Kind,
		RedeliveryOf: in.RedeliveryOf,
		Payload:      in.Payload,
	}, maxAttempts, &sent)
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
	var a *activities.Sender
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

// localFirstVersion marks histories whose first attempt may be a local activity, so
// deliveries started by an older worker replay as they were recorded.
const localFirstVersion = "local-first-attempt"

// send makes the delivery's attempts under the retry policy and stores the successful
// one's result in sent.
//
// With FirstAttemptLocal, attempt 1 is a local activity: it runs inside the workflow
// task, so a delivery that succeeds at once (nearly all of them) costs Temporal no
// activity task, no matching and two fewer history events, about a third of its work.
// A retryable failure hands over to a normal activity after the same backoff the policy
// would have used, so later attempts are server-side retries that operators see as a
// pending activity with its attempt count and last failure, exactly as before.
func (w *Workflows) send(ctx workflow.Context, in activities.SendInput, maxAttempts int, sent *activities.SendResult) error {
	var a *activities.Sender
	// Above the HTTP timeout, with room for the database waits around the POST.
	timeout := w.cfg.HTTPTimeout + 2*w.cfg.DBRetryTimeout + 5*time.Second
	policy := temporal.RetryPolicy{
		InitialInterval:    w.cfg.Retry.InitialInterval,
		BackoffCoefficient: w.cfg.Retry.BackoffCoefficient,
		MaximumInterval:    w.cfg.Retry.MaxInterval,
		MaximumAttempts:    int32(maxAttempts),
	}
	if recordedSetting(ctx, localFirstVersion, w.cfg.FirstAttemptLocal) {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: timeout,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		err := workflow.ExecuteLocalActivity(lctx, a.Send, in).Get(ctx, sent)
		if err == nil || maxAttempts <= 1 || !retryable(err) {
			return err
		}
		if err := workflow.Sleep(ctx, firstRetryDelay(err, policy.InitialInterval)); err != nil {
			return err
		}
		in.AttemptOffset = 1
		policy.MaximumAttempts--
		policy.InitialInterval = min(time.Duration(float64(policy.InitialInterval)*policy.BackoffCoefficient), policy.MaximumInterval)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: timeout, RetryPolicy: &policy})
	return workflow.ExecuteActivity(actx, a.Send, in).Get(ctx, sent)
}

// retryable says whether the retry policy would try again after err.
func retryable(err error) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return !appErr.NonRetryable()
	}
	var canceled *temporal.CanceledError
	return !errors.As(err, &canceled)
}

// firstRetryDelay is the wait before attempt 2: the receiver's Retry-After when it gave
// one (Send has already capped it), else the policy's first interval.
func firstRetryDelay(err error, initial time.Duration) time.Duration {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NextRetryDelay() > 0 {
		return appErr.NextRetryDelay()
	}
	return initial
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
