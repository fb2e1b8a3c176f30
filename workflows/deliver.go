package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
)

// DeliverWebhookInput is one event for one webhook. It names the webhook; the secret
// is loaded by the activity and never appears here.
type DeliverWebhookInput struct {
	delivery.Identity
	UserID  string         `json:"userId"`
	Payload events.Payload `json:"payload"`
	// MaxAttempts overrides WEBHOOK_RETRY_MAX_ATTEMPTS when positive: test deliveries send once.
	MaxAttempts int `json:"maxAttempts,omitempty"`
}

// DeliverWebhookResult is the outcome of a delivery. A failed delivery also fails the
// workflow (so the Web UI lists it as Failed) with this result as the error's details.
type DeliverWebhookResult struct {
	DeliveryID string           `json:"deliveryId"`
	Outcome    delivery.Outcome `json:"outcome"`
	Attempts   int              `json:"attempts"`
	StatusCode int              `json:"statusCode,omitempty"`
	Error      string           `json:"error,omitempty"`
	DurationMS int64            `json:"durationMs"`
}

// DeliverWebhook sends the event to the webhook under the retry policy, then records the
// outcome on the webhook. Recording waits for the database as long as it takes: an
// outage delays it but never costs an HTTP attempt or loses the count.
func (w *Workflows) DeliverWebhook(ctx workflow.Context, in DeliverWebhookInput) (DeliverWebhookResult, error) {
	return w.deliver(ctx, w.runConfig(ctx), in)
}

// deliver is DeliverWebhook's body, shared with DispatchEvent's inline delivery so that
// both send, retry, record and fail in exactly the same way.
func (w *Workflows) deliver(ctx workflow.Context, cfg runSettings, in DeliverWebhookInput) (DeliverWebhookResult, error) {
	maxAttempts := cfg.Retry.MaxAttempts
	if in.MaxAttempts > 0 {
		maxAttempts = in.MaxAttempts
	}
	var sent activities.SendResult
	start := workflow.Now(ctx)
	err := w.send(ctx, cfg, activities.SendInput{
		Identity:    in.Identity,
		Payload:     in.Payload,
		MaxAttempts: maxAttempts,
		Backoff: activities.Backoff{
			Initial: cfg.Retry.InitialInterval, Coefficient: cfg.Retry.BackoffCoefficient, Max: cfg.Retry.MaxInterval,
		},
	}, &sent)

	outcome := activities.CompleteInput{Identity: in.Identity, EventID: in.Payload.ID, Event: in.Payload.Event}
	var res DeliverWebhookResult
	switch {
	case err == nil && sent.Skipped:
		// Closes the log row of an attempt made before the webhook went off, if any.
		res = DeliverWebhookResult{DeliveryID: in.DeliveryID, Outcome: delivery.OutcomeSkipped, Attempts: sent.Attempt, Error: sent.Reason}
		outcome.Skipped, outcome.Error = true, sent.Reason
	case err == nil:
		res = DeliverWebhookResult{DeliveryID: in.DeliveryID, Outcome: delivery.OutcomeSucceeded, Attempts: sent.Attempt, StatusCode: sent.StatusCode, DurationMS: sent.DurationMS}
		outcome.Succeeded, outcome.Attempts, outcome.StatusCode = true, res.Attempts, res.StatusCode
	default:
		res = failedResult(in.DeliveryID, err, maxAttempts)
		res.DurationMS = workflow.Now(ctx).Sub(start).Milliseconds()
		outcome.Attempts, outcome.StatusCode, outcome.Error = res.Attempts, res.StatusCode, res.Error
		outcome.Gone = errorType(err) == activities.ErrTypeGone
	}
	var a *activities.Delivery
	if outcome.Skipped && cfg.legacy {
		return res, nil // that release left a skipped delivery's row as it was
	}
	if err := databaseStep(ctx, cfg, a.Complete, outcome, nil); err != nil {
		return res, fmt.Errorf("record delivery outcome: %w", err)
	}
	if res.Outcome == delivery.OutcomeFailed {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("delivery failed after %d attempt(s): %s", res.Attempts, res.Error), ErrTypeDeliveryFailed, nil, res)
	}
	return res, nil
}

// databaseStep runs an activity that only reads or writes the database, and must
// succeed however long the database is away: first as a local activity retried in
// place for DBRetryTimeout (no history events, the fast path), then as an activity
// Temporal retries with no limit, which operators see as a pending activity with its
// last error for as long as the outage lasts. Both activities are idempotent.
func databaseStep(ctx workflow.Context, cfg runSettings, activity, in, out any) error {
	policy := &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    cfg.RecordRetryMaxInterval,
		MaximumAttempts:    0, // until the database answers
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: min(databaseCallTimeout, cfg.DBRetryTimeout),
		// Explicit: left unset, it would default to StartToClose and end the retries early.
		ScheduleToCloseTimeout: cfg.DBRetryTimeout,
		RetryPolicy:            policy,
	})
	err := workflow.ExecuteLocalActivity(lctx, activity, in).Get(ctx, out)
	if err == nil || !retryable(err) {
		return err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: databaseCallTimeout,
		RetryPolicy:         policy,
	})
	return workflow.ExecuteActivity(actx, activity, in).Get(ctx, out)
}

// databaseCallTimeout bounds one try of a database step: its statements are short.
const databaseCallTimeout = 15 * time.Second

// send makes the delivery's attempts and stores the successful one's result in sent.
//
// Send keeps the receiver's attempt budget itself (in.MaxAttempts), so Temporal's
// policy retries without a limit: the receiver's failures stop it on the last attempt,
// and our own failures (database, connection slots) are retried until they pass.
//
// With FirstAttemptLocal, attempt 1 is a local activity: it runs inside the workflow
// task, so a delivery that succeeds at once (nearly all of them) costs Temporal no
// activity task, no matching and two fewer history events, about a third of its work.
// Any retryable failure hands over to a normal activity after the wait the failure
// asked for, so later attempts are server-side retries that operators see as a pending
// activity with its attempt count and last failure.
func (w *Workflows) send(ctx workflow.Context, cfg runSettings, in activities.SendInput, sent *activities.SendResult) error {
	var a *activities.Delivery
	// Above the HTTP timeout, with room for the connection wait and the database waits
	// around the POST.
	timeout := cfg.HTTPTimeout + cfg.ConnWaitTimeout + 3*cfg.DBRetryTimeout + 5*time.Second
	policy := temporal.RetryPolicy{
		InitialInterval:    cfg.Retry.InitialInterval,
		BackoffCoefficient: cfg.Retry.BackoffCoefficient,
		MaximumInterval:    cfg.Retry.MaxInterval,
	}
	local := cfg.FirstAttemptLocal
	if cfg.legacy {
		// That release's Send did not keep the budget: Temporal's policy did, and it
		// still does for these runs (an input without MaxAttempts tells Send so).
		local = legacySetting(ctx, legacyLocalFirstVersion, cfg.FirstAttemptLocal)
		policy.MaximumAttempts = int32(in.MaxAttempts)
		in.MaxAttempts, in.Backoff = 0, activities.Backoff{}
	}
	if local {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: timeout,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		err := workflow.ExecuteLocalActivity(lctx, a.Send, in).Get(ctx, sent)
		if err == nil || policy.MaximumAttempts == 1 || !retryable(err) {
			return err
		}
		if err := workflow.Sleep(ctx, firstRetryDelay(err, policy.InitialInterval)); err != nil {
			return err
		}
		if cfg.legacy {
			policy.MaximumAttempts--
			policy.InitialInterval = min(time.Duration(float64(policy.InitialInterval)*policy.BackoffCoefficient), policy.MaximumInterval)
		}
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

// firstRetryDelay is the wait before the first server-side try: what the failure asked
// for (the run's backoff, a capped Retry-After, or our own short retry wait), else the
// policy's first interval.
func firstRetryDelay(err error, initial time.Duration) time.Duration {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NextRetryDelay() > 0 {
		return appErr.NextRetryDelay()
	}
	return initial
}

// failedResult reads what the last attempt reported from the activity error.
func failedResult(deliveryID string, err error, maxAttempts int) DeliverWebhookResult {
	res := DeliverWebhookResult{DeliveryID: deliveryID, Outcome: delivery.OutcomeFailed, Attempts: maxAttempts, Error: err.Error()}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		// Without details nothing was sent (the URL or the payload was refused first).
		res.Error, res.Attempts = appErr.Message(), 0
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

// errorType is the application error type of a failed activity, "" for others.
func errorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
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
