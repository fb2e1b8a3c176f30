package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testenv"
	"github.com/assetsup/webhooks/workflows"
)

// shapeSettings are the settings that change what a delivery's history looks like.
type shapeSettings struct{ inline, localFirst bool }

func (s shapeSettings) String() string {
	return fmt.Sprintf("inline=%t,localFirst=%t", s.inline, s.localFirst)
}

func (s shapeSettings) config() workflows.Config {
	cfg := testenv.DefaultWorkflowConfig()
	cfg.InlineSingleDelivery, cfg.FirstAttemptLocal = s.inline, s.localFirst
	return cfg
}

// An operator may flip WEBHOOK_DISPATCH_INLINE_SINGLE or WEBHOOK_FIRST_ATTEMPT_LOCAL and
// restart workers while deliveries are retrying: every history recorded under one
// setting must replay under the other, or those deliveries would be stuck.
func TestHistoriesReplayUnderEverySetting(t *testing.T) {
	all := []shapeSettings{{true, true}, {true, false}, {false, true}, {false, false}}
	for _, recorded := range all {
		t.Run("recorded "+recorded.String(), func(t *testing.T) {
			t.Parallel()
			histories := recordHistories(t, recorded)
			for _, replay := range all {
				replayer := sdkworker.NewWorkflowReplayer()
				wf := workflows.New(replay.config())
				replayer.RegisterWorkflowWithOptions(wf.DispatchEvent, workflow.RegisterOptions{Name: workflows.DispatchEventName})
				replayer.RegisterWorkflowWithOptions(wf.DeliverWebhook, workflow.RegisterOptions{Name: workflows.DeliverWebhookName})
				for run, h := range histories {
					// The real ids: a dispatch's shape depends on its own workflow id.
					err := replayer.ReplayWorkflowHistoryWithOptions(testenv.QuietLogger(), h, sdkworker.ReplayWorkflowHistoryOptions{
						OriginalExecution: run,
					})
					require.NoError(t, err, "%s recorded with %s, replayed with %s", run.ID, recorded, replay)
				}
			}
		})
	}
}

// recordHistories runs every delivery shape on a worker with settings and returns each
// closed workflow's history by workflow id.
func recordHistories(t *testing.T, settings shapeSettings) map[workflow.Execution]*historypb.History {
	s := newStack(t, testenv.WorkerSettings{Workflows: settings.config(), Sender: testenv.DefaultSenderConfig()})
	ok, failing := newReceiver(t, http.StatusOK), newReceiver(t, http.StatusInternalServerError)
	single, failer, multi, foreign := newUser(), newUser(), newUser(), newUser()
	s.createWebhook(single, ok.URL, "LOW_STOCK")
	s.createWebhook(failer, failing.URL, "LOW_STOCK")
	s.createWebhook(multi, ok.URL, "LOW_STOCK")
	s.createWebhook(multi, ok.URL, "LOW_STOCK")
	s.createWebhook(foreign, ok.URL, "LOW_STOCK")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testenv.Temporal(t)
	var ids []string
	for _, user := range []string{single, failer, multi} {
		id, err := dispatch.NewWebhookDispatchService(c, s.taskQueue).Trigger(ctx, events.LowStock, dispatch.Payload{UserID: user})
		require.NoError(t, err)
		ids = append(ids, workflows.DispatchWorkflowID(id))
	}
	foreignID := "replay-foreign-" + foreign
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: foreignID, TaskQueue: s.taskQueue}, workflows.DispatchEventName,
		workflows.DispatchEventInput{ID: "evt_" + foreign, Event: events.LowStock, UserID: foreign})
	require.NoError(t, err)
	ids = append(ids, foreignID)
	if settings.inline {
		ids = append(ids, workflows.DispatchWorkflowID("evt_"+foreign)) // where it forwards to
	}

	// Every workflow of the run: the dispatches and whatever deliveries they started.
	eventually(t, 90*time.Second, func() bool {
		for _, id := range ids {
			if !closed(ctx, t, id) {
				return false
			}
		}
		return len(ok.all()) == 4 && len(failing.all()) == 3
	}, "every delivery over")
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("TaskQueue = %q", s.taskQueue), PageSize: 100,
	})
	require.NoError(t, err)
	histories := map[workflow.Execution]*historypb.History{}
	for _, e := range resp.GetExecutions() {
		id := e.GetExecution().GetWorkflowId()
		require.Eventually(t, func() bool { return closed(ctx, t, id) }, time.Minute, 200*time.Millisecond, id)
		h := &historypb.History{}
		iter := c.GetWorkflowHistory(ctx, id, e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			require.NoError(t, err)
			h.Events = append(h.Events, ev)
		}
		histories[workflow.Execution{ID: id, RunID: e.GetExecution().GetRunId()}] = h
	}
	require.GreaterOrEqual(t, len(histories), len(ids), "the dispatches, and children where the shape has them")
	return histories
}

func closed(ctx context.Context, t *testing.T, id string) bool {
	desc, err := testenv.Temporal(t).DescribeWorkflowExecution(ctx, id, "")
	return err == nil && desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}
