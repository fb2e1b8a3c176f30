package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
)

// PruneDeliveriesName is the workflow a Temporal Schedule runs to trim the delivery log.
const PruneDeliveriesName = "PruneDeliveries"

// PruneDeliveries deletes delivery log rows past their retention. A Schedule runs it,
// so pruning is visible, pausable and never runs twice at once.
func (w *Workflows) PruneDeliveries(ctx workflow.Context) (activities.PruneResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 5},
	})
	var a *activities.Delivery
	var res activities.PruneResult
	err := workflow.ExecuteActivity(ctx, a.PruneDeliveries).Get(ctx, &res)
	return res, err
}
