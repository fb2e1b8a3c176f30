package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
)

// Workflow types of the operational events.
const (
	SendOperationalEventName = "SendOperationalEvent"
	NotifyRotationEndedName  = "NotifyRotationEnded"
)

// SendOperationalEvent sends one operational event to the AssetsUp backend under the
// delivery retry policy: the backend's failures use the run's WEBHOOK_RETRY_MAX_ATTEMPTS,
// ours (the database) are retried until they pass without using any. Its workflow id is
// the event's (operational.WorkflowID), so an event is sent by one run only.
func (w *Workflows) SendOperationalEvent(ctx workflow.Context, in activities.OperationalEvent) (activities.SendOperationalResult, error) {
	cfg := w.runConfig(ctx)
	var a *activities.Delivery
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// Above the HTTP timeout, with room for the database waits around the POST.
		StartToCloseTimeout: cfg.HTTPTimeout + 3*cfg.DBRetryTimeout + 5*time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    cfg.Retry.InitialInterval,
			BackoffCoefficient: cfg.Retry.BackoffCoefficient,
			MaximumInterval:    cfg.Retry.MaxInterval,
		},
	})
	var res activities.SendOperationalResult
	err := workflow.ExecuteActivity(actx, a.SendOperational, activities.SendOperationalInput{
		OperationalEvent: in,
		MaxAttempts:      cfg.Retry.MaxAttempts,
		Backoff: activities.Backoff{
			Initial: cfg.Retry.InitialInterval, Coefficient: cfg.Retry.BackoffCoefficient, Max: cfg.Retry.MaxInterval,
		},
	}).Get(ctx, &res)
	return res, err
}

// NotifyRotationEndedInput names the rotation whose grace period's end is told.
type NotifyRotationEndedInput = activities.RotationEndedInput

// RotationEndedWorkflowID is the workflow id of the notice that webhookID's previous
// secret stops signing at expiresAt: one per rotation.
func RotationEndedWorkflowID(webhookID string, expiresAt time.Time) string {
	return "rotation-ended:" + webhookID + ":" + expiresAt.UTC().Format(time.RFC3339Nano)
}

// NotifyRotationEnded waits, as a durable timer, until a rotated secret's grace period
// is over, then tells the backend (webhook.secret_rotation_ended), unless the secret was
// rotated again meanwhile (that rotation's notice tells instead).
func (w *Workflows) NotifyRotationEnded(ctx workflow.Context, in activities.RotationEndedInput) (bool, error) {
	cfg := w.runConfig(ctx)
	if d := in.ExpiresAt.Sub(workflow.Now(ctx)); d > 0 {
		if err := workflow.Sleep(ctx, d); err != nil {
			return false, err
		}
	}
	var a *activities.Delivery
	var told bool
	err := databaseStep(ctx, cfg, a.EmitRotationEnded, in, &told)
	return told, err
}
