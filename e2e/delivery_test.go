package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/workflows"
)

func dispatcher(t *testing.T, s *stack) *dispatch.WebhookDispatchService {
	return dispatch.NewWebhookDispatchService(testinfra.Temporal(t), s.taskQueue)
}

// dispatchResult waits for the DispatchEvent run of eventID.
func dispatchResult(t *testing.T, eventID string) workflows.DispatchEventResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var res workflows.DispatchEventResult
	require.NoError(t, testinfra.Temporal(t).GetWorkflow(ctx, workflows.DispatchWorkflowID(eventID), "").Get(ctx, &res))
	return res
}

// deliveryResult waits for the delivery of eventID to webhookID and returns its outcome:
// from the dispatch itself when it delivered inline (the webhook was the event's only
// subscriber), else from the DeliverWebhook child.
func deliveryResult(t *testing.T, eventID, webhookID string) workflows.DeliverWebhookResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var dispatched workflows.DispatchEventResult
	getErr := testinfra.Temporal(t).GetWorkflow(ctx, workflows.DispatchWorkflowID(eventID), "").Get(ctx, &dispatched)
	if getErr == nil && dispatched.Delivery == nil {
		var value workflows.DeliverWebhookResult
		getErr = testinfra.Temporal(t).GetWorkflow(ctx, workflows.DeliveryWorkflowID(eventID, webhookID), "").Get(ctx, &value)
		res, err := workflows.DeliveryResultOf(getErr, value)
		require.NoError(t, err)
		return res
	}
	var value workflows.DeliverWebhookResult
	if dispatched.Delivery != nil {
		value = *dispatched.Delivery
	}
	res, err := workflows.DeliveryResultOf(getErr, value)
	require.NoError(t, err)
	require.Equal(t, workflows.DeliveryID(eventID, webhookID), res.DeliveryID, "the inline delivery is another webhook's")
	return res
}

func webhookState(t *testing.T, id string) (failures int, active bool) {
	t.Helper()
	err := testinfra.DB(t).NewRaw("SELECT failure_count, is_active FROM webhooks WHERE id = ?", id).
		Scan(context.Background(), &failures, &active)
	require.NoError(t, err)
	return failures, active
}

func TestDispatchDeliversSignedEvent(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL+"/hooks/assetsup", "ASSET_TRANSFERRED", "LOW_STOCK")

	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	eventID, err := dispatcher(t, s).Trigger(context.Background(), events.AssetTransferred, dispatch.Event{
		UserID: user, OccurredAt: at, Data: map[string]any{"assetId": "a-1", "from": "dept-1", "to": "dept-2"},
	})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(eventID, "evt_"))

	req := rcv.WaitFor(t, 1, 30*time.Second)[0]
	verify(t, hook.Secret, req)
	assert.JSONEq(t, `{"id":"`+eventID+`","event":"ASSET_TRANSFERRED","timestamp":"2026-11-28T12:00:00Z","data":{"assetId":"a-1","from":"dept-1","to":"dept-2"}}`, string(req.Body))
	assert.True(t, strings.HasPrefix(string(req.Body), `{"id":`), "field order is id, event, timestamp, data")
	assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
	assert.Equal(t, "ASSET_TRANSFERRED", req.Header.Get("X-AssetsUp-Event"))
	assert.Equal(t, workflows.DeliveryID(eventID, hook.ID), req.Header.Get("X-AssetsUp-Delivery"))
	assert.Equal(t, eventID, req.Header.Get("webhook-id"))
	assert.True(t, strings.HasPrefix(req.Header.Get("User-Agent"), "AssetsUp-Webhooks/"))

	// The event's only subscriber: delivered by the dispatch itself, no child.
	dispatched := dispatchResult(t, eventID)
	assert.Equal(t, 1, dispatched.Started)
	require.NotNil(t, dispatched.Delivery, "a single subscriber is delivered inline")
	res := deliveryResult(t, eventID, hook.ID)
	assert.Equal(t, delivery.OutcomeSucceeded, res.Outcome)
	assert.Equal(t, 1, res.Attempts)
	assert.Equal(t, 200, res.StatusCode)

	// The delivery log shows it, with the workflow id operators open in the Web UI.
	var page struct {
		Deliveries []struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			Attempts   int    `json:"attempts"`
			WorkflowID string `json:"workflowId"`
		} `json:"deliveries"`
	}
	eventually(t, 10*time.Second, func() bool {
		require.Equal(t, http.StatusOK, s.call(user, http.MethodGet, "/webhooks/"+hook.ID+"/deliveries", nil, &page))
		return len(page.Deliveries) == 1 && page.Deliveries[0].Status == "succeeded"
	}, "delivery logged as succeeded")
	assert.Equal(t, workflows.DispatchWorkflowID(eventID), page.Deliveries[0].WorkflowID)

	// Redelivery sends the same body again under a new delivery id.
	var redo struct {
		DeliveryID   string `json:"deliveryId"`
		RedeliveryOf string `json:"redeliveryOf"`
	}
	code := s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/deliveries/"+page.Deliveries[0].ID+"/redeliver", nil, &redo)
	require.Equal(t, http.StatusAccepted, code)
	again := rcv.WaitFor(t, 2, 30*time.Second)[1]
	assert.Equal(t, string(req.Body), string(again.Body))
	assert.Equal(t, redo.DeliveryID, again.Header.Get("X-AssetsUp-Delivery"))
	assert.NotEqual(t, req.Header.Get("X-AssetsUp-Delivery"), again.Header.Get("X-AssetsUp-Delivery"))
	verify(t, hook.Secret, again)
}

func TestFailingReceiverGetsThreeAttemptsThenCounts(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	d := dispatcher(t, s)

	eventID, err := d.Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user})
	require.NoError(t, err)
	res := deliveryResult(t, eventID, hook.ID)
	assert.Equal(t, delivery.OutcomeFailed, res.Outcome)
	assert.Equal(t, 3, res.Attempts)
	assert.Equal(t, 500, res.StatusCode)

	reqs := rcv.Requests()
	require.Len(t, reqs, 3, "exactly the policy's attempts")
	gap1, gap2 := reqs[1].At.Sub(reqs[0].At), reqs[2].At.Sub(reqs[1].At)
	assert.GreaterOrEqual(t, gap1, 900*time.Millisecond)
	assert.Greater(t, gap2, gap1+500*time.Millisecond, "backoff grows: %s then %s", gap1, gap2)
	for _, r := range reqs {
		assert.Equal(t, string(reqs[0].Body), string(r.Body), "identical body on every attempt")
		verify(t, hook.Secret, r)
	}
	failures, active := webhookState(t, hook.ID)
	assert.Equal(t, 1, failures)
	assert.True(t, active)

	// The workflow failed visibly for operators, with the result in its details.
	ctx := context.Background()
	getErr := testinfra.Temporal(t).GetWorkflow(ctx, workflows.DispatchWorkflowID(eventID), "").Get(ctx, nil)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(getErr, &appErr))
	assert.Equal(t, workflows.ErrTypeDeliveryFailed, appErr.Type())

	// A later success resets the streak.
	rcv.SetStatus(http.StatusNoContent)
	eventID2, err := d.Trigger(ctx, events.LowStock, dispatch.Event{UserID: user})
	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomeSucceeded, deliveryResult(t, eventID2, hook.ID).Outcome)
	failures, _ = webhookState(t, hook.ID)
	assert.Equal(t, 0, failures)
}

func TestDuplicateDispatchIsDeliveredOnce(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "BOOKING_CONFIRMED")
	d := dispatcher(t, s)
	ctx := context.Background()

	payload := dispatch.Event{ID: "evt_dup_" + hook.ID, UserID: user, Data: map[string]any{"bookingId": "b-1"}}
	_, err := d.Trigger(ctx, events.BookingConfirmed, payload)
	require.NoError(t, err)
	_, err = d.Trigger(ctx, events.BookingConfirmed, payload) // a retry by the same caller
	require.NoError(t, err)

	// A second caller with its own workflow id, while the first delivery may still be in
	// flight: it hands over to the event's dispatch, which already exists.
	second := dispatchUnder(t, s, "other-caller-"+payload.ID, payload.ID, user)
	assert.Equal(t, workflows.DispatchEventResult{Duplicates: 1, ForwardedTo: workflows.DispatchWorkflowID(payload.ID)}, second)
	assert.Equal(t, 1, dispatchResult(t, payload.ID).Started)

	rcv.WaitFor(t, 1, 30*time.Second)
	assert.Equal(t, delivery.OutcomeSucceeded, deliveryResult(t, payload.ID, hook.ID).Outcome)
	time.Sleep(2 * time.Second) // room for a wrong second delivery to arrive
	assert.Len(t, rcv.Requests(), 1)
}

func TestDispatchUnderAnotherIDFirstIsDeliveredOnce(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "BOOKING_CONFIRMED")
	eventID := "evt_foreign_" + hook.ID

	first := dispatchUnder(t, s, "caller-own-"+eventID, eventID, user)
	assert.Equal(t, workflows.DispatchEventResult{ForwardedTo: workflows.DispatchWorkflowID(eventID)}, first)
	// The documented start, after the fact: the event's dispatch already exists.
	_, err := dispatcher(t, s).Trigger(context.Background(), events.BookingConfirmed, dispatch.Event{ID: eventID, UserID: user})
	require.NoError(t, err)

	assert.Equal(t, delivery.OutcomeSucceeded, deliveryResult(t, eventID, hook.ID).Outcome)
	time.Sleep(2 * time.Second)
	require.Len(t, rcv.Requests(), 1)
	verify(t, hook.Secret, rcv.Requests()[0])
}

// dispatchUnder starts DispatchEvent under a workflow id of the caller's choosing, as a
// client that ignores DispatchWorkflowID would, and waits for its result.
func dispatchUnder(t *testing.T, s *stack, workflowID, eventID, user string) workflows.DispatchEventResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run, err := testinfra.Temporal(t).ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflowID, TaskQueue: s.taskQueue},
		workflows.DispatchEventName, workflows.DispatchEventInput{
			ID: eventID, Event: events.BookingConfirmed, UserID: user, Data: json.RawMessage(`{"bookingId":"b-1"}`),
		})
	require.NoError(t, err)
	var res workflows.DispatchEventResult
	require.NoError(t, run.Get(ctx, &res))
	return res
}

func TestOnlyTheUsersActiveSubscribedWebhooksReceive(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	user, other := newUser(), newUser()
	subscribed := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	inactive := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	unsubscribed := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	otherUsers := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))

	hook := s.createWebhook(user, subscribed.URL, "WORK_ORDER_COMPLETED")
	off := s.createWebhook(user, inactive.URL, "WORK_ORDER_COMPLETED")
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPatch, "/webhooks/"+off.ID, map[string]any{"isActive": false}, nil))
	s.createWebhook(user, unsubscribed.URL, "WORK_ORDER_ASSIGNED")
	s.createWebhook(other, otherUsers.URL, "WORK_ORDER_COMPLETED")

	eventID, err := dispatcher(t, s).Trigger(context.Background(), events.WorkOrderCompleted, dispatch.Event{UserID: user})
	require.NoError(t, err)
	assert.Equal(t, 1, dispatchResult(t, eventID).Started)
	assert.Equal(t, delivery.OutcomeSucceeded, deliveryResult(t, eventID, hook.ID).Outcome)
	assert.Len(t, subscribed.Requests(), 1)
	assert.Empty(t, inactive.Requests())
	assert.Empty(t, unsubscribed.Requests())
	assert.Empty(t, otherUsers.Requests())
}

func TestWebhookSwitchedOffBeforeAttemptGetsNothing(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "MAINTENANCE_DUE")

	eventID, err := dispatcher(t, s).Trigger(context.Background(), events.MaintenanceDue, dispatch.Event{UserID: user})
	require.NoError(t, err)
	rcv.WaitFor(t, 1, 30*time.Second)
	// Paused between attempts: the retries stop, nothing more is sent, nothing counted.
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPatch, "/webhooks/"+hook.ID, map[string]any{"isActive": false}, nil))
	res := deliveryResult(t, eventID, hook.ID)
	assert.Equal(t, delivery.OutcomeSkipped, res.Outcome)
	assert.Len(t, rcv.Requests(), 1)
	failures, _ := webhookState(t, hook.ID)
	assert.Equal(t, 0, failures)
}

func TestInvalidEventFailsWithClearMessage(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	ctx := context.Background()
	tests := []struct {
		name string
		give workflows.DispatchEventInput
		want string
	}{
		{name: "unknown event", give: workflows.DispatchEventInput{ID: "e1", Event: "NOPE", UserID: "u"}, want: "not a NotificationEvent"},
		{name: "missing user", give: workflows.DispatchEventInput{ID: "e2", Event: events.LowStock}, want: "userId is required"},
		{name: "data too large", give: workflows.DispatchEventInput{ID: "e3", Event: events.LowStock, UserID: "u",
			Data: json.RawMessage(`{"x":"` + strings.Repeat("a", 300<<10) + `"}`)}, want: "limit is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := testinfra.Temporal(t).ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: "invalid-" + newUser(), TaskQueue: s.taskQueue,
			}, workflows.DispatchEventName, tt.give)
			require.NoError(t, err)
			err = run.Get(ctx, nil)
			var appErr *temporal.ApplicationError
			require.True(t, errors.As(err, &appErr), "%v", err)
			assert.Equal(t, workflows.ErrTypeInvalidEvent, appErr.Type())
			assert.Contains(t, appErr.Error(), tt.want)
		})
	}
}
