package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/workflows"
)

// testConfig mirrors the production defaults. Every value is explicit because the test
// environment fills unset retry fields differently from the server: an unset
// MaximumInterval becomes InitialInterval there (the server uses 100×), so backoff
// would look flat.
func testConfig() workflows.Config {
	return workflows.Config{
		Retry: workflows.RetryConfig{
			MaxAttempts:        3,
			InitialInterval:    5 * time.Second,
			MaxInterval:        5 * time.Minute,
			BackoffCoefficient: 2,
		},
		HTTPTimeout:            10 * time.Second,
		ConnWaitTimeout:        10 * time.Second,
		DBRetryTimeout:         5 * time.Second,
		RecordRetryMaxInterval: 30 * time.Second,
		MaxEventDataBytes:      256 << 10,
		ChildrenPerRun:         1000,
		FirstAttemptLocal:      true,
		// Off here: it needs the canonical workflow id, which the inline tests set.
		InlineSingleDelivery: false,
	}
}

// newEnv registers the workflows under their contract names, as deliveryworker.Register does,
// and a zero activities.Delivery: every activity is mocked, so the real ones never touch a database.
// Activities retry as the server retries them (see serverRetries); interceptors are
// added after that.
func newEnv(cfg workflows.Config, interceptors ...interceptor.WorkerInterceptor) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	wf := workflows.New(cfg)
	env.RegisterWorkflowWithOptions(wf.DeliverWebhook, workflow.RegisterOptions{Name: workflows.DeliverWebhookName})
	env.RegisterWorkflowWithOptions(wf.DispatchEvent, workflow.RegisterOptions{Name: workflows.DispatchEventName})
	env.RegisterActivity(&activities.Delivery{})
	env.SetWorkerOptions(worker.Options{
		Interceptors: append([]interceptor.WorkerInterceptor{&serverRetries{}}, interceptors...),
	})
	return env
}

// serverRetries undoes a shortcut of the test environment: it turns an activity retry
// policy without a limit (MaximumAttempts 0, which the server retries forever) into one
// of 10 attempts. Outages longer than that are the point of several tests here, so an
// unlimited policy gets serverRetryLimit attempts instead: as good as forever for a
// test, still finite if a workflow bug retried forever. A policy with a limit is left
// as the workflow asked, so a limit set by mistake still shows.
type serverRetries struct {
	interceptor.WorkerInterceptorBase
}

const serverRetryLimit = 500

func (*serverRetries) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &serverRetriesInbound{}
	i.Next = next
	return i
}

type serverRetriesInbound struct {
	interceptor.WorkflowInboundInterceptorBase
}

func (i *serverRetriesInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	o := &serverRetriesOutbound{}
	o.Next = outbound
	return i.Next.Init(o)
}

type serverRetriesOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
}

func (o *serverRetriesOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	if p := workflow.GetActivityOptions(ctx).RetryPolicy; p != nil && p.MaximumAttempts == 0 {
		unlimited := *p
		unlimited.MaximumAttempts = serverRetryLimit
		ctx = workflow.WithRetryPolicy(ctx, unlimited)
	}
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func deliverInput() workflows.DeliverWebhookInput {
	return workflows.DeliverWebhookInput{
		Identity: delivery.Identity{DeliveryID: workflows.DeliveryID("evt-1", "wh-1"), WebhookID: "wh-1", Kind: delivery.KindEvent},
		UserID:   "user-1",
		Payload: events.Payload{
			ID:        "evt-1",
			Event:     events.AssetTransferred,
			Timestamp: "2025-03-04T04:06:07Z",
			Data:      []byte(`{"assetId":"a-1"}`),
		},
	}
}

// sendCall is what the mock tells respond about one call of Send.
type sendCall struct {
	In activities.SendInput
	// Attempt is the receiver attempt this call claims if it sends: the earlier calls
	// that sent, plus one, as models.ClaimAttempt numbers them. Temporal's own attempt
	// counter also counts our failures, so Send never reads it.
	Attempt int
	// Call numbers every call, our failures included, from 1.
	Call int
}

// sendAttempt is what one Send call saw: the (mock) time it started, the timeout it ran
// under and whether it used one of the receiver's attempts. The test environment leaves
// activity.Info.RetryPolicy nil, so the policy is checked by its effects: count and gaps.
type sendAttempt struct {
	sendCall
	Local        bool
	At           time.Time
	StartToClose time.Duration
	WorkflowID   string
	Sent         bool // used a receiver attempt: neither our failure nor a skip
}

// sendMock stands in for activities.Send and keeps its contract: it numbers the
// receiver's attempts itself, counting only calls that sent (not our failures, not
// skips), and once in.MaxAttempts of them are used it answers AttemptsExhausted without
// calling respond, as Send does when an earlier run used the last attempt. respond
// shapes its failures with the helpers below, which read the budget and backoff from
// the call's input as Send does. Activities run on their own goroutines, hence the lock.
type sendMock struct {
	mu      sync.Mutex
	env     *testsuite.TestWorkflowEnvironment
	calls   []sendAttempt
	sent    int
	respond func(c sendCall) (activities.SendResult, error)
}

func mockSend(env *testsuite.TestWorkflowEnvironment, respond func(c sendCall) (activities.SendResult, error)) *sendMock {
	m := &sendMock{env: env, respond: respond}
	env.OnActivity("Send", mock.Anything, mock.Anything).Return(m.send)
	return m
}

func (m *sendMock) send(ctx context.Context, in activities.SendInput) (activities.SendResult, error) {
	info := activity.GetInfo(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	c := sendCall{In: in, Attempt: m.sent + 1, Call: len(m.calls) + 1}
	var res activities.SendResult
	var err error
	sent := false
	if m.sent >= max(in.MaxAttempts, 1) {
		err = temporal.NewNonRetryableApplicationError("the last attempt was already used", activities.ErrTypeExhausted, nil,
			activities.SendFailure{Attempt: m.sent})
	} else {
		res, err = m.respond(c)
		sent = !res.Skipped && !ours(err)
	}
	if sent {
		m.sent++
	}
	m.calls = append(m.calls, sendAttempt{
		sendCall:     c,
		Local:        info.IsLocalActivity,
		At:           m.env.Now(),
		StartToClose: info.StartToCloseTimeout,
		WorkflowID:   info.WorkflowExecution.ID,
		Sent:         sent,
	})
	return res, err
}

// ours says whether err is one of the service's own failures, which send nothing.
func ours(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && activities.IsOurs(appErr.Type())
}

func (m *sendMock) recorded() []sendAttempt {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sendAttempt(nil), m.calls...)
}

// gaps are the delays between consecutive call starts: the backoff, since the mock
// takes no time.
func (m *sendMock) gaps() []time.Duration {
	calls := m.recorded()
	var gaps []time.Duration
	for i := 1; i < len(calls); i++ {
		gaps = append(gaps, calls[i].At.Sub(calls[i-1].At))
	}
	return gaps
}

// completeCall is one call of Complete: its input, when it ran and whether it ran as a
// local activity.
type completeCall struct {
	In    activities.CompleteInput
	Local bool
	At    time.Time
}

// completeMock records the outcomes the workflow asked to record, failing the first
// failFirst calls the way a database outage would: with a plain, retryable error.
type completeMock struct {
	mu        sync.Mutex
	env       *testsuite.TestWorkflowEnvironment
	calls     []completeCall
	failFirst int
}

func mockComplete(env *testsuite.TestWorkflowEnvironment, failFirst int) *completeMock {
	m := &completeMock{env: env, failFirst: failFirst}
	env.OnActivity("Complete", mock.Anything, mock.Anything).Return(m.complete)
	return m
}

func (m *completeMock) complete(ctx context.Context, in activities.CompleteInput) (activities.CompleteResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, completeCall{In: in, Local: activity.GetInfo(ctx).IsLocalActivity, At: m.env.Now()})
	if len(m.calls) <= m.failFirst {
		return activities.CompleteResult{}, errors.New("database down")
	}
	return activities.CompleteResult{FailureCount: 1}, nil
}

// recorded returns the inputs of every call, failed ones included.
func (m *completeMock) recorded() []activities.CompleteInput {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ins []activities.CompleteInput
	for _, c := range m.calls {
		ins = append(ins, c.In)
	}
	return ins
}

func (m *completeMock) recordedCalls() []completeCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]completeCall(nil), m.calls...)
}

// receiverFailure is how Send shapes a receiver's failure on attempt c.Attempt: the
// attempt and status ride as details (the only way the workflow learns them once the
// attempts are used up); the last attempt is final; any other asks for the wait the
// receiver gave (retryAfter, from Retry-After) or else the run's backoff for this
// attempt number.
func receiverFailure(c sendCall, errType, msg string, status int, retryAfter time.Duration) error {
	opts := temporal.ApplicationErrorOptions{Details: []any{activities.SendFailure{Attempt: c.Attempt, StatusCode: status}}}
	switch {
	case c.Attempt >= max(c.In.MaxAttempts, 1):
		opts.NonRetryable = true
	case retryAfter > 0:
		opts.NextRetryDelay = retryAfter
	case c.In.Backoff.Initial > 0:
		opts.NextRetryDelay = c.In.Backoff.After(c.Attempt)
	}
	return temporal.NewApplicationErrorWithOptions(msg, errType, opts)
}

func http500(c sendCall) error {
	return receiverFailure(c, activities.ErrTypeHTTPStatus, "receiver answered HTTP 500", 500, 0)
}

// http429 is a 429 whose Retry-After (already capped by Send) asks for wait.
func http429(c sendCall, wait time.Duration) error {
	return receiverFailure(c, activities.ErrTypeHTTPStatus, "receiver answered HTTP 429", 429, wait)
}

// http410 is how Send reports 410 Gone: final on any attempt.
func http410(c sendCall) error {
	return temporal.NewApplicationErrorWithOptions("receiver answered HTTP 410", activities.ErrTypeGone,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.SendFailure{Attempt: c.Attempt, StatusCode: 410}}})
}

// forbiddenAddress is how Send reports a URL resolving to a private address: final.
func forbiddenAddress(c sendCall) error {
	return temporal.NewApplicationErrorWithOptions("destination refused", activities.ErrTypeForbiddenAddress,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.SendFailure{Attempt: c.Attempt}}})
}

// databaseDown is our failure: nothing was sent, so it carries no attempt, and asks to
// be tried again after wait.
func databaseDown(wait time.Duration) error {
	return temporal.NewApplicationErrorWithOptions("database unavailable; nothing sent", activities.ErrTypeDatabase,
		temporal.ApplicationErrorOptions{NextRetryDelay: wait})
}

// noConnectionSlot is our other failure: every connection to the receiver's host stayed
// busy for WEBHOOK_CONN_WAIT_TIMEOUT, so nothing was sent.
func noConnectionSlot(wait time.Duration) error {
	return temporal.NewApplicationErrorWithOptions("no connection to the receiver's host came free; nothing sent",
		activities.ErrTypeConnectionWait, temporal.ApplicationErrorOptions{NextRetryDelay: wait})
}

func alwaysHTTP500(c sendCall) (activities.SendResult, error) {
	return activities.SendResult{}, http500(c)
}

func succeeds(c sendCall) (activities.SendResult, error) {
	return activities.SendResult{Attempt: c.Attempt, StatusCode: 200}, nil
}

// runDeliver runs DeliverWebhook to completion and returns its result as a caller
// sees it: through DeliveryResultOf, which reads a failure's details.
func runDeliver(t *testing.T, env *testsuite.TestWorkflowEnvironment, in workflows.DeliverWebhookInput) (workflows.DeliverWebhookResult, error) {
	t.Helper()
	env.ExecuteWorkflow(workflows.DeliverWebhookName, in)
	require.True(t, env.IsWorkflowCompleted())
	wfErr := env.GetWorkflowError()
	var value workflows.DeliverWebhookResult
	if wfErr == nil {
		require.NoError(t, env.GetWorkflowResult(&value))
	}
	res, err := workflows.DeliveryResultOf(wfErr, value)
	require.NoError(t, err, "workflow error carries no delivery result: %v", wfErr)
	return res, wfErr
}

func TestDeliverWebhookRetryPolicy(t *testing.T) {
	tests := []struct {
		name      string
		give      workflows.RetryConfig
		wantGaps  []time.Duration
		wantCount int
	}{
		{
			name:      "exponential backoff from the initial interval",
			give:      workflows.RetryConfig{MaxAttempts: 3, InitialInterval: 5 * time.Second, MaxInterval: 5 * time.Minute, BackoffCoefficient: 2},
			wantGaps:  []time.Duration{5 * time.Second, 10 * time.Second},
			wantCount: 3,
		},
		{
			// Without the cap a receiver down for a day would wait hours between attempts.
			name:      "backoff capped at the maximum interval",
			give:      workflows.RetryConfig{MaxAttempts: 6, InitialInterval: 5 * time.Second, MaxInterval: 12 * time.Second, BackoffCoefficient: 2},
			wantGaps:  []time.Duration{5 * time.Second, 10 * time.Second, 12 * time.Second, 12 * time.Second, 12 * time.Second},
			wantCount: 6,
		},
	}
	for _, tt := range tests {
		// The local first attempt must not change the schedule: same count, same gaps.
		for _, local := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/local first %t", tt.name, local), func(t *testing.T) {
				cfg := testConfig()
				cfg.Retry = tt.give
				cfg.FirstAttemptLocal = local
				env := newEnv(cfg)
				send := mockSend(env, alwaysHTTP500)
				mockComplete(env, 0)

				res, err := runDeliver(t, env, deliverInput())
				require.Error(t, err)

				attempts := send.recorded()
				require.Len(t, attempts, tt.wantCount)
				for i, a := range attempts {
					assert.Equal(t, i+1, a.Attempt)
					assert.Equal(t, local && i == 0, a.Local, "attempt %d: only the first may be local", i+1)
					// Only StartToClose is retried: at or below the HTTP timeout a slow
					// receiver would fail the attempt before the client gives up.
					assert.Greater(t, a.StartToClose, cfg.HTTPTimeout)
				}
				assert.Equal(t, tt.wantGaps, send.gaps())
				assert.Equal(t, tt.wantCount, res.Attempts)
			})
		}
	}
}

func TestDeliverWebhookFirstAttemptLocal(t *testing.T) {
	gone := func(c sendCall) (activities.SendResult, error) { return activities.SendResult{}, http410(c) }
	tests := []struct {
		name         string
		maxAttempts  int // 0: the configured 3
		respond      func(sendCall) (activities.SendResult, error)
		wantLocal    []bool
		wantOutcome  delivery.Outcome
		wantAttempts int
	}{
		{"success at once: one local attempt, no activity", 0, succeeds, []bool{true}, delivery.OutcomeSucceeded, 1},
		{"retryable failure hands over to the activity", 0, alwaysHTTP500, []bool{true, false, false}, delivery.OutcomeFailed, 3},
		{"non-retryable failure stops at the local attempt", 0, gone, []bool{true}, delivery.OutcomeFailed, 1},
		{"a single-attempt delivery (test) is only local", 1, alwaysHTTP500, []bool{true}, delivery.OutcomeFailed, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(testConfig())
			send := mockSend(env, tt.respond)
			complete := mockComplete(env, 0)
			in := deliverInput()
			in.MaxAttempts = tt.maxAttempts

			res, _ := runDeliver(t, env, in)

			var local []bool
			for i, a := range send.recorded() {
				local = append(local, a.Local)
				assert.Equal(t, i+1, a.Attempt, "attempts are numbered across local and activity")
				assert.Equal(t, in.DeliveryID, a.In.DeliveryID)
			}
			assert.Equal(t, tt.wantLocal, local)
			assert.Equal(t, tt.wantOutcome, res.Outcome)
			assert.Equal(t, tt.wantAttempts, res.Attempts)
			calls := complete.recorded()
			require.Len(t, calls, 1, "the outcome is recorded once, whichever attempt decided it")
			assert.Equal(t, tt.wantAttempts, calls[0].Attempts)
		})
	}
}

func TestDeliverWebhookFailsAfterMaxAttempts(t *testing.T) {
	env := newEnv(testConfig())
	send := mockSend(env, alwaysHTTP500)
	complete := mockComplete(env, 0)
	in := deliverInput()

	res, err := runDeliver(t, env, in)

	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	// Callers and the Web UI tell a failed delivery from a broken workflow by this type.
	assert.Equal(t, workflows.ErrTypeDeliveryFailed, appErr.Type())
	assert.True(t, appErr.NonRetryable(), "a workflow retry would resend after the policy gave up")
	assert.Contains(t, appErr.Error(), "after 3 attempt(s)")
	assert.Equal(t, workflows.DeliverWebhookResult{
		DeliveryID: in.DeliveryID,
		Outcome:    delivery.OutcomeFailed,
		Attempts:   3,
		StatusCode: 500,
		Error:      "receiver answered HTTP 500",
		DurationMS: (15 * time.Second).Milliseconds(), // 5 s + 10 s of backoff, mock attempts take no time
	}, res)
	assert.Len(t, send.recorded(), 3)
	assert.Equal(t, []activities.CompleteInput{{
		Identity:   delivery.Identity{DeliveryID: in.DeliveryID, WebhookID: in.WebhookID, Kind: delivery.KindEvent},
		EventID:    in.Payload.ID,
		Event:      in.Payload.Event,
		Succeeded:  false,
		Attempts:   3,
		StatusCode: 500,
		Error:      "receiver answered HTTP 500",
	}}, complete.recorded())
}

func TestDeliverWebhookSucceedsOnRetry(t *testing.T) {
	env := newEnv(testConfig())
	send := mockSend(env, func(c sendCall) (activities.SendResult, error) {
		if c.Attempt == 1 {
			return activities.SendResult{}, http500(c)
		}
		return activities.SendResult{Attempt: c.Attempt, StatusCode: 204, DurationMS: 42}, nil
	})
	complete := mockComplete(env, 0)
	in := deliverInput()

	res, err := runDeliver(t, env, in)

	require.NoError(t, err)
	assert.Equal(t, workflows.DeliverWebhookResult{
		DeliveryID: in.DeliveryID, Outcome: delivery.OutcomeSucceeded, Attempts: 2, StatusCode: 204, DurationMS: 42,
	}, res)
	assert.Len(t, send.recorded(), 2)
	calls := complete.recorded()
	require.Len(t, calls, 1)
	assert.True(t, calls[0].Succeeded)
	assert.Equal(t, 2, calls[0].Attempts)
	assert.Equal(t, 204, calls[0].StatusCode)
	assert.Empty(t, calls[0].Error, "an earlier attempt's error must not be recorded on a success")
}

func TestDeliverWebhookRecordsOutcome(t *testing.T) {
	tests := []struct {
		name string
		give func(c sendCall) (activities.SendResult, error)
		want activities.CompleteInput
	}{
		{
			name: "success",
			give: succeeds,
			want: activities.CompleteInput{Succeeded: true, Attempts: 1, StatusCode: 200},
		},
		{
			name: "failure",
			give: alwaysHTTP500,
			want: activities.CompleteInput{Succeeded: false, Attempts: 3, StatusCode: 500, Error: "receiver answered HTTP 500"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(testConfig())
			mockSend(env, tt.give)
			complete := mockComplete(env, 0)
			in := deliverInput()
			in.Kind = delivery.KindRedelivery
			in.RedeliveryOf = "original-delivery"

			_, _ = runDeliver(t, env, in)

			// The record step identifies the delivery fully: the activity writes the
			// log row from this input alone.
			want := tt.want
			want.Identity = delivery.Identity{
				DeliveryID: in.DeliveryID, WebhookID: in.WebhookID, Kind: delivery.KindRedelivery, RedeliveryOf: "original-delivery",
			}
			want.EventID = in.Payload.ID
			want.Event = in.Payload.Event
			assert.Equal(t, []activities.CompleteInput{want}, complete.recorded())
		})
	}
}

func TestDeliverWebhookRetriesRecordingWithoutResending(t *testing.T) {
	env := newEnv(testConfig())
	send := mockSend(env, succeeds)
	complete := mockComplete(env, 2) // the database is down for the first two tries

	res, err := runDeliver(t, env, deliverInput())

	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomeSucceeded, res.Outcome)
	// A database outage must not cost the receiver a second POST or change the count.
	assert.Len(t, send.recorded(), 1)
	assert.Equal(t, 1, res.Attempts)
	calls := complete.recorded()
	require.Len(t, calls, 3)
	for _, c := range calls {
		assert.True(t, c.Succeeded)
		assert.Equal(t, 1, c.Attempts)
	}
}

func TestDeliverWebhookRecordsTheOutcomeThroughALongOutage(t *testing.T) {
	cfg := testConfig()
	env := newEnv(cfg)
	send := mockSend(env, succeeds)
	// Longer than the local activity's DBRetryTimeout: the step must hand over to an
	// activity that Temporal retries, not give up and lose the outcome.
	complete := mockComplete(env, 20)
	in := deliverInput()

	res, err := runDeliver(t, env, in)

	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomeSucceeded, res.Outcome)
	assert.Len(t, send.recorded(), 1, "waiting for the database sends nothing again")
	calls := complete.recordedCalls()
	require.Len(t, calls, 21, "every failed try is tried again, until the database answers")
	want := activities.CompleteInput{
		Identity: delivery.Identity{DeliveryID: in.DeliveryID, WebhookID: in.WebhookID, Kind: delivery.KindEvent},
		EventID:  in.Payload.ID, Event: in.Payload.Event, Succeeded: true, Attempts: 1, StatusCode: 200,
	}
	var local, remote int
	for i, c := range calls {
		assert.Equal(t, want, c.In, "call %d", i+1)
		if c.Local {
			assert.Zero(t, remote, "call %d: local again after the hand-over", i+1)
			local++
		} else {
			remote++
		}
	}
	assert.True(t, calls[0].Local, "the fast path comes first")
	assert.Greater(t, local, 1, "a short outage is retried in place")
	assert.LessOrEqual(t, calls[local-1].At.Sub(calls[0].At), cfg.DBRetryTimeout, "retried in place past DBRetryTimeout")
	// Operators see a long outage as a pending activity with its last error.
	assert.Positive(t, remote, "the step never left the local activity")
	var longest time.Duration
	for i := local + 1; i < len(calls); i++ {
		longest = max(longest, calls[i].At.Sub(calls[i-1].At))
	}
	// A long outage is polled every RecordRetryMaxInterval, not ever more rarely.
	assert.Equal(t, cfg.RecordRetryMaxInterval, longest)
}

func TestDeliverWebhookSkipClosesTheDelivery(t *testing.T) {
	tests := []struct {
		name      string
		giveFails int // receiver failures before the skip
		give      string
		wantCalls int
	}{
		{name: "deleted webhook", give: "webhook deleted", wantCalls: 1},
		{name: "inactive webhook", give: "webhook inactive", wantCalls: 1},
		{name: "switched off after a failed attempt", giveFails: 1, give: "webhook inactive", wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(testConfig())
			send := mockSend(env, func(c sendCall) (activities.SendResult, error) {
				if c.Attempt <= tt.giveFails {
					return activities.SendResult{}, http500(c)
				}
				return activities.SendResult{Skipped: true, Reason: tt.give}, nil
			})
			complete := mockComplete(env, 0)
			in := deliverInput()

			res, err := runDeliver(t, env, in)

			require.NoError(t, err, "a skip is not a failed delivery")
			assert.Equal(t, in.DeliveryID, res.DeliveryID)
			assert.Equal(t, delivery.OutcomeSkipped, res.Outcome)
			assert.Equal(t, tt.give, res.Error)
			assert.Len(t, send.recorded(), tt.wantCalls)
			// Skipped closes a log row an earlier attempt left pending, and nothing more:
			// no attempt count, no status, nothing that counts against the webhook.
			assert.Equal(t, []activities.CompleteInput{{
				Identity: delivery.Identity{DeliveryID: in.DeliveryID, WebhookID: in.WebhookID, Kind: delivery.KindEvent},
				EventID:  in.Payload.ID, Event: in.Payload.Event, Skipped: true, Error: tt.give,
			}}, complete.recorded())
		})
	}
}

func TestDeliverWebhookAttemptLimits(t *testing.T) {
	tests := []struct {
		name           string
		giveMax        int
		giveErr        func(c sendCall) error
		wantAttempts   int
		wantStatusCode int
		wantGone       bool
	}{
		{
			// The test endpoint answers the caller with one attempt's result.
			name:           "test delivery sends once",
			giveMax:        1,
			giveErr:        http500,
			wantAttempts:   1,
			wantStatusCode: 500,
		},
		{
			// Gone tells the outcome step to switch the webhook off: Send's own attempt
			// to do so may have met a database outage.
			name:           "410 Gone is not retried and switches the webhook off",
			giveMax:        0,
			giveErr:        http410,
			wantAttempts:   1,
			wantStatusCode: 410,
			wantGone:       true,
		},
		{
			name:         "forbidden address is not retried",
			giveMax:      0,
			giveErr:      forbiddenAddress,
			wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(testConfig())
			send := mockSend(env, func(c sendCall) (activities.SendResult, error) {
				return activities.SendResult{}, tt.giveErr(c)
			})
			complete := mockComplete(env, 0)
			in := deliverInput()
			in.MaxAttempts = tt.giveMax

			res, err := runDeliver(t, env, in)

			require.Error(t, err)
			assert.Len(t, send.recorded(), 1)
			assert.Equal(t, delivery.OutcomeFailed, res.Outcome)
			assert.Equal(t, tt.wantAttempts, res.Attempts)
			assert.Equal(t, tt.wantStatusCode, res.StatusCode)
			calls := complete.recorded()
			require.Len(t, calls, 1)
			assert.Equal(t, tt.wantAttempts, calls[0].Attempts)
			assert.Equal(t, tt.wantStatusCode, calls[0].StatusCode)
			assert.Equal(t, tt.wantGone, calls[0].Gone)
		})
	}
}

func TestDeliverWebhookHonoursRetryAfter(t *testing.T) {
	env := newEnv(testConfig())
	send := mockSend(env, func(c sendCall) (activities.SendResult, error) {
		if c.Attempt == 1 {
			return activities.SendResult{}, http429(c, 30*time.Second) // Retry-After: 30
		}
		return succeeds(c)
	})
	mockComplete(env, 0)

	res, err := runDeliver(t, env, deliverInput())

	require.NoError(t, err)
	assert.Equal(t, 2, res.Attempts)
	// 30 s, not the policy's 5 s: retrying sooner only earns another 429.
	assert.Equal(t, []time.Duration{30 * time.Second}, send.gaps())
}

func TestDeliverWebhookSendsTheInput(t *testing.T) {
	tests := []struct {
		name      string
		giveRetry workflows.RetryConfig
		giveMax   int
		wantMax   int
		wantCalls int
	}{
		{
			name:      "the configured attempts",
			giveRetry: workflows.RetryConfig{MaxAttempts: 3, InitialInterval: 5 * time.Second, MaxInterval: 5 * time.Minute, BackoffCoefficient: 2},
			wantMax:   3,
			wantCalls: 2,
		},
		{
			name:      "other retry settings",
			giveRetry: workflows.RetryConfig{MaxAttempts: 7, InitialInterval: time.Second, MaxInterval: time.Minute, BackoffCoefficient: 3},
			wantMax:   7,
			wantCalls: 2,
		},
		{
			// A test delivery's single attempt is Send's budget, not a retry policy limit.
			name:      "the input's attempts override the configured ones",
			giveRetry: workflows.RetryConfig{MaxAttempts: 3, InitialInterval: 5 * time.Second, MaxInterval: 5 * time.Minute, BackoffCoefficient: 2},
			giveMax:   1,
			wantMax:   1,
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Retry = tt.giveRetry
			env := newEnv(cfg)
			// One failure first, so that the input of the activity is checked as well as
			// the local attempt's.
			send := mockSend(env, func(c sendCall) (activities.SendResult, error) {
				if c.Attempt == 1 {
					return activities.SendResult{}, http500(c)
				}
				return succeeds(c)
			})
			mockComplete(env, 0)
			in := deliverInput()
			in.Kind = delivery.KindRedelivery
			in.RedeliveryOf = "original-delivery"
			in.MaxAttempts = tt.giveMax

			_, _ = runDeliver(t, env, in)

			calls := send.recorded()
			require.Len(t, calls, tt.wantCalls)
			// The receiver must get the very bytes the event produced, under the
			// delivery's id; Send keeps the attempt budget and backoff, fixed per run.
			want := activities.SendInput{
				Identity: delivery.Identity{
					DeliveryID: in.DeliveryID, WebhookID: in.WebhookID, Kind: delivery.KindRedelivery, RedeliveryOf: "original-delivery",
				},
				Payload:     in.Payload,
				MaxAttempts: tt.wantMax,
				Backoff: activities.Backoff{
					Initial: tt.giveRetry.InitialInterval, Coefficient: tt.giveRetry.BackoffCoefficient, Max: tt.giveRetry.MaxInterval,
				},
			}
			for i, c := range calls {
				assert.Equal(t, want, c.In, "call %d", i+1)
			}
		})
	}
}

func TestDeliverWebhookOurFailuresCostNoAttempt(t *testing.T) {
	// Each letter is one call of Send: d the database is down, c no connection slot came
	// free (both send nothing), f the receiver fails (HTTP 500), s the receiver succeeds.
	tests := []struct {
		name         string
		giveLocal    bool
		giveMax      int // 0: the configured 3
		give         string
		wantOutcome  delivery.Outcome
		wantAttempts int
		wantGaps     []time.Duration
	}{
		{
			name:         "outage on the local attempt",
			giveLocal:    true,
			give:         "dfff",
			wantOutcome:  delivery.OutcomeFailed,
			wantAttempts: 3,
			wantGaps:     []time.Duration{time.Second, 5 * time.Second, 10 * time.Second},
		},
		{
			name:         "outage through the local attempt and the activity's first tries",
			giveLocal:    true,
			give:         "dddfff",
			wantOutcome:  delivery.OutcomeFailed,
			wantAttempts: 3,
			wantGaps:     []time.Duration{time.Second, time.Second, time.Second, 5 * time.Second, 10 * time.Second},
		},
		{
			name:         "outage between the receiver's attempts",
			giveLocal:    true,
			give:         "fdddff",
			wantOutcome:  delivery.OutcomeFailed,
			wantAttempts: 3,
			// The receiver's second wait is its own 10 s, however many tries Temporal
			// counted in between.
			wantGaps: []time.Duration{5 * time.Second, time.Second, time.Second, time.Second, 10 * time.Second},
		},
		{
			// A receiver slow for other deliveries must not use up this one's attempts.
			name:         "no connection slot for a while",
			giveLocal:    true,
			give:         "ccfff",
			wantOutcome:  delivery.OutcomeFailed,
			wantAttempts: 3,
			wantGaps:     []time.Duration{time.Second, time.Second, 5 * time.Second, 10 * time.Second},
		},
		{
			name:         "outage without a local attempt",
			giveLocal:    false,
			give:         "dddfff",
			wantOutcome:  delivery.OutcomeFailed,
			wantAttempts: 3,
			wantGaps:     []time.Duration{time.Second, time.Second, time.Second, 5 * time.Second, 10 * time.Second},
		},
		{
			name:         "the receiver answers after the outage",
			giveLocal:    true,
			give:         "ddds",
			wantOutcome:  delivery.OutcomeSucceeded,
			wantAttempts: 1,
			wantGaps:     []time.Duration{time.Second, time.Second, time.Second},
		},
		{
			// The test endpoint's one attempt must not be lost to our outage.
			name:         "a single-attempt delivery still gets its attempt",
			giveLocal:    true,
			giveMax:      1,
			give:         "ddf",
			wantOutcome:  delivery.OutcomeFailed,
			wantAttempts: 1,
			wantGaps:     []time.Duration{time.Second, time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.FirstAttemptLocal = tt.giveLocal
			env := newEnv(cfg)
			send := mockSend(env, func(c sendCall) (activities.SendResult, error) {
				if c.Call > len(tt.give) {
					return activities.SendResult{}, temporal.NewNonRetryableApplicationError("unexpected call", "Test", nil)
				}
				switch tt.give[c.Call-1] {
				case 'd':
					return activities.SendResult{}, databaseDown(time.Second)
				case 'c':
					return activities.SendResult{}, noConnectionSlot(time.Second)
				case 'f':
					return activities.SendResult{}, http500(c)
				default:
					return succeeds(c)
				}
			})
			complete := mockComplete(env, 0)
			in := deliverInput()
			in.MaxAttempts = tt.giveMax

			res, _ := runDeliver(t, env, in)

			calls := send.recorded()
			require.Len(t, calls, len(tt.give))
			attempt := 0
			for i, c := range calls {
				sends := tt.give[i] == 'f' || tt.give[i] == 's'
				if sends {
					attempt++
				}
				assert.Equal(t, sends, c.Sent, "call %d", i+1)
				if c.Sent {
					assert.Equal(t, attempt, c.Attempt, "call %d: our failures must not advance the receiver's count", i+1)
				}
			}
			assert.Equal(t, tt.wantGaps, send.gaps())
			assert.Equal(t, tt.wantOutcome, res.Outcome)
			assert.Equal(t, tt.wantAttempts, res.Attempts)
			recorded := complete.recorded()
			require.Len(t, recorded, 1)
			assert.Equal(t, tt.wantAttempts, recorded[0].Attempts)
			// The outage was ours: it must never appear as the receiver's failure.
			if tt.wantOutcome == delivery.OutcomeSucceeded {
				assert.True(t, recorded[0].Succeeded)
				assert.Empty(t, recorded[0].Error)
				return
			}
			assert.False(t, recorded[0].Succeeded)
			assert.Equal(t, 500, recorded[0].StatusCode)
			assert.Equal(t, "receiver answered HTTP 500", recorded[0].Error)
		})
	}
}

func TestDeliverWebhookRidesOutALongOutage(t *testing.T) {
	const outage = 50
	env := newEnv(testConfig())
	send := mockSend(env, func(c sendCall) (activities.SendResult, error) {
		if c.Call <= outage {
			// Send's own wait: doubling from 1 s up to WEBHOOK_RECORD_RETRY_MAX_INTERVAL.
			return activities.SendResult{}, databaseDown(min(time.Second<<min(c.Call-1, 10), 30*time.Second))
		}
		return succeeds(c)
	})
	complete := mockComplete(env, 0)

	res, err := runDeliver(t, env, deliverInput())

	require.NoError(t, err, "an outage of ours must never fail a delivery")
	assert.Equal(t, delivery.OutcomeSucceeded, res.Outcome)
	assert.Equal(t, 1, res.Attempts, "the receiver got its first attempt after the outage")
	calls := send.recorded()
	require.Len(t, calls, outage+1)
	assert.Greater(t, calls[outage].At.Sub(calls[0].At), 20*time.Minute, "the outage was not a long one")
	recorded := complete.recorded()
	require.Len(t, recorded, 1)
	assert.True(t, recorded[0].Succeeded)
	assert.Equal(t, 1, recorded[0].Attempts)
}
