package dispatch_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/workflows"
)

func TestMain(m *testing.M) { os.Exit(testinfra.Main(m)) }

// Trigger and Dispatch start the real DispatchEvent on a real server; no worker runs
// here, so the test reads the started workflow's input back from Temporal.
func TestTriggerStartsDispatchEvent(t *testing.T) {
	c := testinfra.Temporal(t)
	tq := "dispatch-" + uuid.NewString()
	svc := dispatch.NewWebhookDispatchService(c, tq)
	ctx := context.Background()

	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	id, err := svc.Trigger(ctx, events.AssetTransferred, dispatch.Event{UserID: "u-1", OccurredAt: at, Data: map[string]any{"assetId": "a-1"}})
	require.NoError(t, err)
	assert.Regexp(t, `^evt_[0-9a-f]{32}$`, id)

	desc, err := c.DescribeWorkflowExecution(ctx, workflows.DispatchWorkflowID(id), "")
	require.NoError(t, err)
	assert.Equal(t, workflows.DispatchEventName, desc.WorkflowExecutionInfo.Type.Name)
	assert.Equal(t, tq, desc.WorkflowExecutionInfo.TaskQueue)

	// Same id again: accepted, and still one workflow.
	again, err := svc.Trigger(ctx, events.AssetTransferred, dispatch.Event{ID: id, UserID: "u-1"})
	require.NoError(t, err)
	assert.Equal(t, id, again)

	notes := dispatch.NewNotificationDispatchService(svc)
	noteID := "note-" + uuid.NewString()
	got, err := notes.Dispatch(ctx, dispatch.Notification{ID: noteID, UserID: "u-2", Event: events.LowStock, Title: "Low stock", EntityID: "c-9"})
	require.NoError(t, err)
	assert.Equal(t, noteID, got)
	_, err = c.DescribeWorkflowExecution(ctx, workflows.DispatchWorkflowID(noteID), "")
	require.NoError(t, err)
}

// An id whose dispatch is running or completed is accepted and starts nothing; an id
// whose dispatch was terminated (or failed) must not block the event: the caller's retry
// starts it again, or the event would be dropped while the caller was told "done".
func TestTriggerAgainAfterEachEnding(t *testing.T) {
	c := testinfra.Temporal(t)
	idle := dispatch.NewWebhookDispatchService(c, "dispatch-"+uuid.NewString()) // no worker: runs stay running
	served := dispatch.NewWebhookDispatchService(c, testfixture.StartWorker(t, testfixture.WorkerSettings{Box: testfixture.Box(t)}))
	ctx := context.Background()
	tests := []struct {
		name    string
		svc     *dispatch.WebhookDispatchService
		end     func(t *testing.T, workflowID string)
		wantNew bool
	}{
		{name: "running", svc: idle, end: func(*testing.T, string) {}, wantNew: false},
		{name: "completed", svc: served, end: func(t *testing.T, id string) {
			// A user without webhooks: the dispatch completes with nothing to send.
			require.NoError(t, c.GetWorkflow(ctx, id, "").Get(ctx, nil))
		}, wantNew: false},
		{name: "terminated", svc: idle, end: func(t *testing.T, id string) {
			require.NoError(t, c.TerminateWorkflow(ctx, id, "", "operator gave up"))
		}, wantNew: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.svc.Trigger(ctx, events.LowStock, dispatch.Event{ID: "evt-" + uuid.NewString(), UserID: "u-" + uuid.NewString()})
			require.NoError(t, err)
			wid := workflows.DispatchWorkflowID(id)
			first, err := c.DescribeWorkflowExecution(ctx, wid, "")
			require.NoError(t, err)
			tt.end(t, wid)

			again, err := tt.svc.Trigger(ctx, events.LowStock, dispatch.Event{ID: id, UserID: "u-1"})
			require.NoError(t, err)
			assert.Equal(t, id, again)
			latest, err := c.DescribeWorkflowExecution(ctx, wid, "")
			require.NoError(t, err)
			gotNew := latest.WorkflowExecutionInfo.Execution.RunId != first.WorkflowExecutionInfo.Execution.RunId
			assert.Equal(t, tt.wantNew, gotNew, "a new run after the first was %s", tt.name)
		})
	}
}

func TestTriggerRefusesBadEvents(t *testing.T) {
	svc := dispatch.NewWebhookDispatchService(testinfra.Temporal(t), "unused")
	tests := []struct {
		name  string
		event events.NotificationEvent
		give  dispatch.Event
		want  string
	}{
		{name: "unknown event", event: "NOPE", give: dispatch.Event{UserID: "u"}, want: "not a NotificationEvent"},
		{name: "no user", event: events.LowStock, give: dispatch.Event{}, want: "userId is required"},
		{name: "bad id", event: events.LowStock, give: dispatch.Event{ID: "has space", UserID: "u"}, want: "id is required"},
		{name: "data not an object", event: events.LowStock, give: dispatch.Event{UserID: "u", Data: []int{1}}, want: "JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Trigger(context.Background(), tt.event, tt.give)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
