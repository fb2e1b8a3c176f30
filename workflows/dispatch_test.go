package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/workflows"
)

// occurredAt is deliberately not UTC: receivers must get the instant in UTC.
var occurredAt = time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))

func dispatchInput() workflows.DispatchEventInput {
	return workflows.DispatchEventInput{
		ID:         "evt-1",
		Event:      events.AssetTransferred,
		UserID:     "user-1",
		Data:       json.RawMessage(`{"assetId":"a-1"}`),
		OccurredAt: occurredAt,
	}
}

// listInput is the first ListSubscribers request of dispatching in: the payload as it
// will be sent goes along, so the listing can apply the subscribers' filters.
func listInput(in workflows.DispatchEventInput) activities.ListSubscribersInput {
	return activities.ListSubscribersInput{UserID: in.UserID, Event: in.Event, Payload: &events.Payload{
		ID: in.ID, Event: in.Event, Timestamp: in.OccurredAt.UTC().Format(time.RFC3339), Data: in.Data,
	}}
}

// subscriberPages answers ListSubscribers from pages keyed by the cursor they follow,
// the way the keyset query pages by webhook id, and records every request. The first
// failFirst requests fail the way a database outage would: with a plain, retryable error.
type subscriberPages struct {
	mu        sync.Mutex
	pages     map[string]activities.ListSubscribersResult
	requests  []activities.ListSubscribersInput
	local     []bool // per request: ran as a local activity
	failFirst int
}

func mockSubscribers(env *testsuite.TestWorkflowEnvironment, pages map[string]activities.ListSubscribersResult) *subscriberPages {
	m := &subscriberPages{pages: pages}
	env.OnActivity("ListSubscribers", mock.Anything, mock.Anything).Return(m.list)
	return m
}

func (m *subscriberPages) list(ctx context.Context, in activities.ListSubscribersInput) (activities.ListSubscribersResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests = append(m.requests, in)
	m.local = append(m.local, activity.GetInfo(ctx).IsLocalActivity)
	if len(m.requests) <= m.failFirst {
		return activities.ListSubscribersResult{}, errors.New("database down")
	}
	page, ok := m.pages[in.After]
	if !ok {
		return activities.ListSubscribersResult{}, temporal.NewNonRetryableApplicationError("no page after "+in.After, "Test", nil)
	}
	return page, nil
}

func (m *subscriberPages) recorded() []activities.ListSubscribersInput {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]activities.ListSubscribersInput(nil), m.requests...)
}

func (m *subscriberPages) recordedLocal() []bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]bool(nil), m.local...)
}

// pagesOf splits subscribers into pages of size, each but the last naming the cursor
// of the next, as activities.ListSubscribers does.
func pagesOf(size int, ids ...string) map[string]activities.ListSubscribersResult {
	pages := map[string]activities.ListSubscribersResult{}
	after := ""
	for start := 0; start < len(ids); start += size {
		end := min(start+size, len(ids))
		var page activities.ListSubscribersResult
		for _, id := range ids[start:end] {
			page.Subscribers = append(page.Subscribers, activities.Subscriber{ID: id, Name: "hook " + id, Host: id + ".example.com"})
		}
		if end < len(ids) {
			page.Next = ids[end-1]
		}
		pages[after] = page
		after = page.Next
	}
	if len(ids) == 0 {
		pages[""] = activities.ListSubscribersResult{}
	}
	return pages
}

// startedChild is one DeliverWebhook the dispatch started, as the child itself saw it.
type startedChild struct {
	WorkflowID string
	ParentID   string // the workflow id of the dispatch that started it
	Input      workflows.DeliverWebhookInput
	WebhookID  string // the WebhookId search attribute
}

// childMock stands in for DeliverWebhook: the dispatch only starts deliveries, so what
// matters is what each child was started with.
type childMock struct {
	mu       sync.Mutex
	children []startedChild
}

func mockDeliveries(env *testsuite.TestWorkflowEnvironment) *childMock {
	m := &childMock{}
	env.OnWorkflow(workflows.DeliverWebhookName, mock.Anything, mock.Anything).Return(m.deliver)
	return m
}

func (m *childMock) deliver(ctx workflow.Context, in workflows.DeliverWebhookInput) (workflows.DeliverWebhookResult, error) {
	webhookID, _ := workflow.GetTypedSearchAttributes(ctx).GetKeyword(workflows.SearchAttrWebhookID)
	m.mu.Lock()
	info := workflow.GetInfo(ctx)
	var parentID string
	if info.ParentWorkflowExecution != nil {
		parentID = info.ParentWorkflowExecution.ID
	}
	m.children = append(m.children, startedChild{
		WorkflowID: info.WorkflowExecution.ID,
		ParentID:   parentID,
		Input:      in,
		WebhookID:  webhookID,
	})
	m.mu.Unlock()
	return workflows.DeliverWebhookResult{DeliveryID: in.DeliveryID, Outcome: delivery.OutcomeSucceeded, Attempts: 1}, nil
}

// byWebhook indexes the children by webhook id: children start concurrently, so their
// order is not part of the contract.
func (m *childMock) byWebhook() map[string]startedChild {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]startedChild{}
	for _, c := range m.children {
		out[c.Input.WebhookID] = c
	}
	return out
}

func (m *childMock) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.children)
}

// startedBy counts the children the dispatch under workflowID started.
func (m *childMock) startedBy(workflowID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.children {
		if c.ParentID == workflowID {
			n++
		}
	}
	return n
}

// runDispatch runs DispatchEvent under its canonical id, the only one that lists
// subscribers (any other forwards there), as the dispatch package starts it.
func runDispatch(t *testing.T, env *testsuite.TestWorkflowEnvironment, in workflows.DispatchEventInput) (workflows.DispatchEventResult, error) {
	t.Helper()
	return runDispatchAs(t, env, workflows.DispatchWorkflowID(in.ID), in)
}

func TestDispatchEventStartsOneDeliveryPerSubscriber(t *testing.T) {
	env := newEnv(testConfig())
	list := mockSubscribers(env, pagesOf(10, "wh-a", "wh-b", "wh-c"))
	children := mockDeliveries(env)
	in := dispatchInput()

	res, err := runDispatch(t, env, in)

	require.NoError(t, err)
	assert.Equal(t, workflows.DispatchEventResult{Started: 3}, res)
	assert.Equal(t, []activities.ListSubscribersInput{listInput(in)}, list.recorded(), "the payload goes along, for the filters")

	got := children.byWebhook()
	require.Len(t, got, 3)
	assert.Equal(t, 3, children.count(), "one delivery per subscriber, no more")
	for _, id := range []string{"wh-a", "wh-b", "wh-c"} {
		c, ok := got[id]
		require.True(t, ok, "no delivery for %s", id)
		// The workflow id is the dedup key: a second dispatch of evt-1 must collide with it.
		assert.Equal(t, workflows.DeliveryWorkflowID(in.ID, id), c.WorkflowID)
		assert.Equal(t, workflows.DeliveryID(in.ID, id), c.Input.DeliveryID)
		assert.Equal(t, id, c.WebhookID, "operators filter deliveries by webhook")
		assert.Equal(t, "user-1", c.Input.UserID)
		assert.Equal(t, delivery.KindEvent, c.Input.Kind)
		assert.Zero(t, c.Input.MaxAttempts, "event deliveries use the configured retry policy")
	}
}

func TestDispatchEventWithoutSubscribers(t *testing.T) {
	env := newEnv(testConfig())
	mockSubscribers(env, pagesOf(10))
	children := mockDeliveries(env)

	res, err := runDispatch(t, env, dispatchInput())

	require.NoError(t, err)
	assert.Equal(t, workflows.DispatchEventResult{}, res)
	assert.Zero(t, children.count())
}

func TestDeliveryID(t *testing.T) {
	base := workflows.DeliveryID("evt-1", "wh-1")
	// Same inputs, same id: a re-dispatch or retry writes the same delivery log row.
	assert.Equal(t, base, workflows.DeliveryID("evt-1", "wh-1"))

	tests := []struct {
		name          string
		giveEvent     string
		giveWebhook   string
		wantDifferent bool
	}{
		{name: "other webhook", giveEvent: "evt-1", giveWebhook: "wh-2", wantDifferent: true},
		{name: "other event", giveEvent: "evt-2", giveWebhook: "wh-1", wantDifferent: true},
		// Without a separator "evt-1"+"wh-1" and "evt-1w"+"h-1" would be the same key.
		{name: "boundary moved", giveEvent: "evt-1w", giveWebhook: "h-1", wantDifferent: true},
		{name: "same pair", giveEvent: "evt-1", giveWebhook: "wh-1", wantDifferent: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := workflows.DeliveryID(tt.giveEvent, tt.giveWebhook)
			assert.Equal(t, tt.wantDifferent, got != base)
			assert.Len(t, got, 36, "delivery ids are UUIDs: the log's primary key")
		})
	}
}

func TestDispatchEventPayload(t *testing.T) {
	startTime := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name           string
		giveData       json.RawMessage
		giveOccurredAt time.Time
		wantData       json.RawMessage
		wantTimestamp  string
	}{
		{
			name:           "data passed through, time in UTC",
			giveData:       json.RawMessage(`{"assetId":"a-1","to":{"department":"ops"}}`),
			giveOccurredAt: occurredAt,
			wantData:       json.RawMessage(`{"assetId":"a-1","to":{"department":"ops"}}`),
			wantTimestamp:  "2025-03-04T04:06:07Z",
		},
		{
			// Receivers may read payload.data.x without checking for null.
			name:           "absent data becomes an empty object",
			giveData:       nil,
			giveOccurredAt: occurredAt,
			wantData:       json.RawMessage(`{}`),
			wantTimestamp:  "2025-03-04T04:06:07Z",
		},
		{
			name:           "null data becomes an empty object",
			giveData:       json.RawMessage(`null`),
			giveOccurredAt: occurredAt,
			wantData:       json.RawMessage(`{}`),
			wantTimestamp:  "2025-03-04T04:06:07Z",
		},
		{
			name:           "no occurredAt: the workflow's start time",
			giveData:       json.RawMessage(`{}`),
			giveOccurredAt: time.Time{},
			wantData:       json.RawMessage(`{}`),
			wantTimestamp:  "2025-06-01T12:00:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(testConfig())
			env.SetStartTime(startTime)
			mockSubscribers(env, pagesOf(10, "wh-a", "wh-b"))
			children := mockDeliveries(env)
			in := dispatchInput()
			in.Data = tt.giveData
			in.OccurredAt = tt.giveOccurredAt

			_, err := runDispatch(t, env, in)

			require.NoError(t, err)
			got := children.byWebhook()
			require.Len(t, got, 2)
			want := events.Payload{ID: "evt-1", Event: events.AssetTransferred, Timestamp: tt.wantTimestamp, Data: tt.wantData}
			for id, c := range got {
				assert.Equal(t, want, c.Input.Payload, id)
			}
		})
	}
}

// runDispatchRuns runs DispatchEvent and every run it continues as, as the server
// would, and returns the final result with the input each run started with.
func runDispatchRuns(t *testing.T, cfg workflows.Config, pages map[string]activities.ListSubscribersResult,
	children *childMock, in workflows.DispatchEventInput,
) (workflows.DispatchEventResult, []workflows.DispatchEventInput) {
	t.Helper()
	var runs []workflows.DispatchEventInput
	for range 10 {
		runs = append(runs, in)
		env := newEnv(cfg)
		mockSubscribers(env, pages)
		env.OnWorkflow(workflows.DeliverWebhookName, mock.Anything, mock.Anything).Return(children.deliver)

		// Continue-as-new keeps the workflow id.
		res, err := runDispatch(t, env, in)
		if err == nil {
			return res, runs
		}
		require.True(t, workflow.IsContinueAsNewError(err), "run %d: %v", len(runs), err)
		var can *workflow.ContinueAsNewError
		require.ErrorAs(t, err, &can)
		require.Equal(t, workflows.DispatchEventName, can.WorkflowType.Name)
		in = workflows.DispatchEventInput{}
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	}
	require.FailNow(t, "dispatch did not finish in 10 runs")
	return workflows.DispatchEventResult{}, nil
}

func TestDispatchEventPagesAndContinuesAsNew(t *testing.T) {
	ids := []string{"wh-1", "wh-2", "wh-3", "wh-4", "wh-5"}
	tests := []struct {
		name           string
		giveChildren   int
		wantRuns       int
		wantRunCursors []string
		wantRunStarted []int
	}{
		{
			// A big fan-out must not grow one history without bound.
			name:           "new run after each page at the per-run limit",
			giveChildren:   2,
			wantRuns:       3,
			wantRunCursors: []string{"", "wh-2", "wh-4"},
			wantRunStarted: []int{0, 2, 4},
		},
		{
			name:           "all pages in one run under the limit",
			giveChildren:   1000,
			wantRuns:       1,
			wantRunCursors: []string{""},
			wantRunStarted: []int{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ChildrenPerRun = tt.giveChildren
			children := &childMock{}
			in := dispatchInput()

			res, runs := runDispatchRuns(t, cfg, pagesOf(2, ids...), children, in)

			assert.Equal(t, workflows.DispatchEventResult{Started: 5}, res)
			require.Len(t, runs, tt.wantRuns)
			for i, run := range runs {
				assert.Equal(t, tt.wantRunCursors[i], run.Cursor, "run %d cursor", i)
				assert.Equal(t, tt.wantRunStarted[i], run.Started, "run %d started", i)
				// Later runs must deliver the same event: same id, same instant.
				assert.Equal(t, in.ID, run.ID)
				assert.True(t, in.OccurredAt.Equal(run.OccurredAt), "run %d occurredAt %s", i, run.OccurredAt)
				assert.JSONEq(t, string(in.Data), string(run.Data))
			}
			got := children.byWebhook()
			assert.Len(t, got, 5)
			assert.Equal(t, 5, children.count(), "no subscriber delivered twice across runs")
			for _, id := range ids {
				assert.Equal(t, workflows.DeliveryWorkflowID(in.ID, id), got[id].WorkflowID)
			}
		})
	}
}

func TestDispatchEventRejectsInvalidEvents(t *testing.T) {
	tests := []struct {
		name        string
		give        func(in *workflows.DispatchEventInput)
		wantMessage string
	}{
		{name: "unknown event", give: func(in *workflows.DispatchEventInput) { in.Event = "ASSET_EXPLODED" }, wantMessage: `event "ASSET_EXPLODED" is not a NotificationEvent`},
		{name: "test event", give: func(in *workflows.DispatchEventInput) { in.Event = events.Test }, wantMessage: `event "webhook.test" is not a NotificationEvent`},
		{name: "empty userId", give: func(in *workflows.DispatchEventInput) { in.UserID = "" }, wantMessage: "userId is required"},
		{name: "missing id", give: func(in *workflows.DispatchEventInput) { in.ID = "" }, wantMessage: "id is required"},
		{name: "id with spaces", give: func(in *workflows.DispatchEventInput) { in.ID = "evt 1" }, wantMessage: "id is required"},
		{name: "id too long", give: func(in *workflows.DispatchEventInput) { in.ID = strings.Repeat("e", 201) }, wantMessage: "id is required"},
		{
			name: "data over the limit",
			give: func(in *workflows.DispatchEventInput) {
				in.Data = json.RawMessage(`{"x":"` + strings.Repeat("a", 256<<10) + `"}`)
			},
			wantMessage: fmt.Sprintf("data is %d bytes; the limit is %d", 256<<10+8, 256<<10),
		},
		{name: "data is an array", give: func(in *workflows.DispatchEventInput) { in.Data = json.RawMessage(`[1,2]`) }, wantMessage: "data must be a JSON object"},
		{name: "data is a string", give: func(in *workflows.DispatchEventInput) { in.Data = json.RawMessage(`"hello"`) }, wantMessage: "data must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(testConfig())
			list := mockSubscribers(env, pagesOf(10, "wh-a"))
			children := mockDeliveries(env)
			in := dispatchInput()
			tt.give(&in)

			_, err := runDispatch(t, env, in)

			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			assert.Equal(t, workflows.ErrTypeInvalidEvent, appErr.Type())
			// Retrying cannot fix the input; the caller must see why at once.
			assert.True(t, appErr.NonRetryable())
			assert.Contains(t, appErr.Error(), "invalid event: "+tt.wantMessage)
			assert.Empty(t, list.recorded(), "nothing is looked up for an invalid event")
			assert.Zero(t, children.count())
		})
	}
}

func TestDispatchEventListFailure(t *testing.T) {
	env := newEnv(testConfig())
	env.OnActivity("ListSubscribers", mock.Anything, mock.Anything).
		Return(activities.ListSubscribersResult{}, temporal.NewNonRetryableApplicationError("boom", "Test", nil))
	children := mockDeliveries(env)

	_, err := runDispatch(t, env, dispatchInput())

	require.Error(t, err)
	assert.Contains(t, err.Error(), "list subscribers")
	assert.Zero(t, children.count())
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
}

// earlierDispatch plays the server's part for deliveries an earlier dispatch of the
// same event already started. The test environment holds only the workflows of the run
// under test, and reports its own collisions as serviceerror.WorkflowExecutionAlreadyStarted
// where a real worker reports temporal.ChildWorkflowExecutionAlreadyStartedError; so
// starting one of these workflow ids fails here exactly as the SDK fails it in production.
type earlierDispatch struct {
	interceptor.WorkerInterceptorBase
	started map[string]bool // delivery workflow ids
}

func (e *earlierDispatch) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &earlierDispatchInbound{started: e.started}
	i.Next = next
	return i
}

type earlierDispatchInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	started map[string]bool
}

func (i *earlierDispatchInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	o := &earlierDispatchOutbound{started: i.started}
	o.Next = outbound
	return i.Next.Init(o)
}

type earlierDispatchOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	started map[string]bool
}

func (o *earlierDispatchOutbound) ExecuteChildWorkflow(ctx workflow.Context, childWorkflowType string, args ...any) workflow.ChildWorkflowFuture {
	if !o.started[workflow.GetChildWorkflowOptions(ctx).WorkflowID] {
		return o.Next.ExecuteChildWorkflow(ctx, childWorkflowType, args...)
	}
	f, set := workflow.NewFuture(ctx)
	set.SetError(&temporal.ChildWorkflowExecutionAlreadyStartedError{})
	return notStartedChild{Future: f}
}

// notStartedChild is a child whose start failed: every future it hands out holds that error.
type notStartedChild struct{ workflow.Future }

func (c notStartedChild) GetChildWorkflowExecution() workflow.Future { return c.Future }

func (c notStartedChild) SignalChildWorkflow(workflow.Context, string, any) workflow.Future {
	return c.Future
}

func (c notStartedChild) SignalChildWorkflowWithOptions(workflow.Context, string, any, workflow.SignalChildWorkflowOptions) workflow.Future {
	return c.Future
}

func TestDispatchEventCountsDuplicates(t *testing.T) {
	in := dispatchInput()
	env := newEnv(testConfig(), &earlierDispatch{
		started: map[string]bool{
			workflows.DeliveryWorkflowID(in.ID, "wh-a"): true,
			workflows.DeliveryWorkflowID(in.ID, "wh-c"): true,
		},
	})
	mockSubscribers(env, pagesOf(10, "wh-a", "wh-b", "wh-c"))
	children := mockDeliveries(env)

	res, err := runDispatch(t, env, in)

	// A re-dispatched event is normal (the backend retries its hand-over): it must
	// succeed, start only what is missing, and say how many were already there.
	require.NoError(t, err)
	assert.Equal(t, workflows.DispatchEventResult{Started: 1, Duplicates: 2}, res)
	got := children.byWebhook()
	assert.Len(t, got, 1)
	assert.Contains(t, got, "wh-b")
}

func TestDispatchEventListsSubscribersThroughALongOutage(t *testing.T) {
	env := newEnv(testConfig())
	list := mockSubscribers(env, pagesOf(10, "wh-a", "wh-b", "wh-c"))
	// Longer than the local activity's DBRetryTimeout: an event handed over during an
	// outage must wait for the database, not be lost.
	list.failFirst = 20
	children := mockDeliveries(env)
	in := dispatchInput()

	res, err := runDispatch(t, env, in)

	require.NoError(t, err)
	assert.Equal(t, workflows.DispatchEventResult{Started: 3}, res)
	assert.Equal(t, 3, children.count())
	requests := list.recorded()
	require.Len(t, requests, 21, "every failed try is tried again, until the database answers")
	for i, r := range requests {
		assert.Equal(t, listInput(in), r, "request %d", i+1)
	}
	local := list.recordedLocal()
	assert.True(t, local[0], "the fast path comes first")
	// Operators see a long outage as a pending activity with its last error.
	assert.False(t, local[len(local)-1], "the step never left the local activity")
	for i := 1; i < len(local); i++ {
		assert.False(t, local[i] && !local[i-1], "request %d: local again after the hand-over", i+1)
	}
}
