package deliveryworker

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/operational"
	"github.com/assetsup/webhooks/workflows"
)

// OperationalStarter starts an operational event's SendOperationalEvent workflow on
// taskQueue, under the event's own workflow id: Temporal refuses a second start, so an
// event is sent once however often what recorded it is retried. The run carries the
// webhook's search attributes, so operators find it beside the webhook's deliveries.
func OperationalStarter(c client.Client, taskQueue string) func(context.Context, activities.OperationalEvent) error {
	return func(ctx context.Context, ev activities.OperationalEvent) error {
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                    operational.WorkflowID(ev.EventID),
			TaskQueue:             taskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			TypedSearchAttributes: temporal.NewSearchAttributes(
				workflows.SearchAttrWebhookID.ValueSet(ev.WebhookID),
				workflows.SearchAttrUserID.ValueSet(ev.UserID),
			),
		}, workflows.SendOperationalEventName, ev)
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if err != nil && !errors.As(err, &started) {
			return fmt.Errorf("start %s: %w", workflows.SendOperationalEventName, err)
		}
		return nil
	}
}
