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
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/workflows"
)

// testConfig mirrors the production defaults. Every value is explicit because the test
// environment fills unset retry fields differently from the server (see TEMPORAL.md).
func testConfig() workflows.Config {
	return workflows.Config{
		Retry: workflows.RetryConfig{
			MaxAttempts:        3,
			InitialInterval:    5 * time.Second,
			MaxInterval:        5 * time.Minute,
			BackoffCoefficient: 2,
		},
		HTTPTimeout:            10 * time.Second,
		DBRetryTimeout:         5 * time.Second,
		RecordRetryMaxInterval: 30 * time.Second,
		MaxEventDataBytes:      256 << 10,
		ChildrenPerRun:         1000,
		FirstAttemptLocal:      true,
		// Off here: it needs the canonical workflow id, which the inline tests set.
		InlineSingleDelivery: false,
	}
}

// newEnv registers the workflows under their contract names, as worker.Register does,
// and a zero Sender: every activity is mocked, so the real ones never touch a database.
func newEnv(cfg workflows.Config) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	wf := workflows.New(cfg)
	env.RegisterWorkflowWithOptions(wf.DeliverWebhook, workflow.RegisterOptions{Name: workflows.DeliverWebhookName})
	env.RegisterWorkflowWithOptions(wf.DispatchEvent, workflow.RegisterOptions{Name: workflows.DispatchEventName})
	env.RegisterActivity(&activities.Sender{})
	return env
}

func deliverInput() workflows.DeliverWebhookInput {
	return workflows.DeliverWebhookInput{
		DeliveryID: workflows.DeliveryID("evt-1", "wh-1"),
		WebhookID:  "wh-1",
		UserID:     "user-1",
		Kind:       workflows.KindEvent,
		Payload: events.Payload{
			ID:        "evt-1",
			Event:     events.AssetTransferred,
			Timestamp: "2025-03-04T04:06:07Z",
			Data:      []byte(`{"assetId":"a-1"}`),
		},
	}
}

// sendAttempt is what one Send attempt saw: the attempt number Temporal gave it, the
// (mock) time it started and the timeout it ran under. The test environment leaves
// activity.Info.RetryPolicy nil, so the policy is checked by its effects: count and gaps.
type sendAttempt struct {
	Attempt      int32 // across the local first attempt and the activity's: what Send numbers
	Local        bool
	At           time.Time
	StartToClose time.Duration
	Input        activities.SendInput
}

// sendMock records every Send attempt and answers with respond. Activities run on
// their own goroutines, hence the lock.
type sendMock struct {
	mu       sync.Mutex
	env      *testsuite.TestWorkflowEnvironment
	attempts []sendAttempt
	respond  func(attempt int32) (activities.SendResult, error)
}

func mockSend(env *testsuite.TestWorkflowEnvironment, respond func(attempt int32) (activities.SendResult, error)) *sendMock {
	m := &sendMock{env: env, respond: respond}
	env.OnActivity("Send", mock.Anything, mock.Anything).Return(m.send)
	return m
}

func (m *sendMock) send(ctx context.Context, in activities.SendInput) (activities.SendResult, error) {
	info := activity.GetInfo(ctx)
	attempt := info.Attempt + int32(in.AttemptOffset)
	m.mu.Lock()
	m.attempts = append(m.attempts, sendAttempt{
		Attempt:      attempt,
		Local:        info.IsLocalActivity,
		At:           m.env.Now(),
		StartToClose: info.StartToCloseTimeout,
		Input:        in,
	})
	m.mu.Unlock()
	return m.respond(attempt)
}

func (m *sendMock) recorded() []sendAttempt {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sendAttempt(nil), m.attempts...)
}

// gaps are the delays between consecutive attempt starts: the backoff, since the mock
// takes no time.
func (m *sendMock) gaps() []time.Duration {
	attempts := m.recorded()
	var gaps []time.Duration
	for i := 1; i < len(attempts); i++ {
		gaps = append(gaps, attempts[i].At.Sub(attempts[i-1].At))
	}
	return gaps
}

// completeMock records the outcomes the workflow asked to record, failing the first
// failFirst calls the way a database outage would: with a plain, retryable error.
type completeMock struct {
	mu        sync.Mutex
	calls     []activities.CompleteInput
	failFirst int
}

func mockComplete(env *testsuite.TestWorkflowEnvironment, failFirst int) *completeMock {
	m := &completeMock{failFirst: failFirst}
	env.OnActivity("Complete", mock.Anything, mock.Anything).Return(m.complete)
	return m
}

func (m *completeMock) complete(_ context.Context, in activities.CompleteInput) (activities.CompleteResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, in)
	if len(m.calls) <= m.failFirst {
		return activities.CompleteResult{}, errors.New("database down")
	}
	return activities.CompleteResult{FailureCount: 1}, nil
}

func (m *completeMock) recorded() []activities.CompleteInput {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]activities.CompleteInput(nil), m.calls...)
}

// http500 is how Send reports a receiver error: the attempt and status ride as details,
// which is the only way the workflow learns them once retries are exhausted.
func http500(attempt int32) error {
	return temporal.NewApplicationErrorWithOptions("receiver answered HTTP 500", activities.ErrTypeHTTPStatus,
		temporal.ApplicationErrorOptions{Details: []any{activities.SendFailure{Attempt: int(attempt), StatusCode: 500}}})
}

// http410 is how Send reports 410 Gone: final, never retried.
func http410(attempt int32) error {
	return temporal.NewApplicationErrorWithOptions("receiver answered HTTP 410", activities.ErrTypeGone,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.SendFailure{Attempt: int(attempt), StatusCode: 410}}})
}

func alwaysHTTP500(attempt int32) (activities.SendResult, error) {
	return activities.SendResult{}, http500(attempt)
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
					assert.Equal(t, int32(i+1), a.Attempt)
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
	gone := func(attempt int32) (activities.SendResult, error) { return activities.SendResult{}, http410(attempt) }
	ok := func(attempt int32) (activities.SendResult, error) {
		return activities.SendResult{Attempt: int(attempt), StatusCode: 200}, nil
	}
	tests := []struct {
		name         string
		maxAttempts  int // 0: the configured 3
		respond      func(int32) (activities.SendResult, error)
		wantLocal    []bool
		wantOutcome  string
		wantAttempts int
	}{
		{"success at once: one local attempt, no activity", 0, ok, []bool{true}, workflows.OutcomeSucceeded, 1},
		{"retryable failure hands over to the activity", 0, alwaysHTTP500, []bool{true, false, false}, workflows.OutcomeFailed, 3},
		{"non-retryable failure stops at the local attempt", 0, gone, []bool{true}, workflows.OutcomeFailed, 1},
		{"a single-attempt delivery (test) is only local", 1, alwaysHTTP500, []bool{true}, workflows.OutcomeFailed, 1},
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
				assert.Equal(t, int32(i+1), a.Attempt, "attempts are numbered across local and activity")
				assert.Equal(t, in.DeliveryID, a.Input.DeliveryID)
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
		Outcome:    workflows.OutcomeFailed,
		Attempts:   3,
		StatusCode: 500,
		Error:      "receiver answered HTTP 500",
		DurationMS: (15 * time.Second).Milliseconds(), // 5 s + 10 s of backoff, mock attempts take no time
	}, res)
	assert.Len(t, send.recorded(), 3)
	assert.Equal(t, []activities.CompleteInput{{
		DeliveryID: in.DeliveryID,
		WebhookID:  in.WebhookID,
		Kind:       workflows.KindEvent,
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
	send := mockSend(env, func(attempt int32) (activities.SendResult, error) {
		if attempt == 1 {
			return activities.SendResult{}, http500(attempt)
		}
		return activities.SendResult{Attempt: int(attempt), StatusCode: 204, DurationMS: 42}, nil
	})
	complete := mockComplete(env, 0)
	in := deliverInput()

	res, err := runDeliver(t, env, in)

	require.NoError(t, err)
	assert.Equal(t, workflows.DeliverWebhookResult{
		DeliveryID: in.DeliveryID, Outcome: workflows.OutcomeSucceeded, Attempts: 2, StatusCode: 204, DurationMS: 42,
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
		give func(attempt int32) (activities.SendResult, error)
		want activities.CompleteInput
	}{
		{
			name: "success",
			give: func(attempt int32) (activities.SendResult, error) {
				return activities.SendResult{Attempt: int(attempt), StatusCode: 200}, nil
			},
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
			in.Kind = workflows.KindRedelivery
			in.RedeliveryOf = "original-delivery"

			_, _ = runDeliver(t, env, in)

			// The record step identifies the delivery fully: the activity writes the
			// log row from this input alone.
			want := tt.want
			want.DeliveryID = in.DeliveryID
			want.WebhookID = in.WebhookID
			want.Kind = workflows.KindRedelivery
			want.RedeliveryOf = "original-delivery"
			want.EventID = in.Payload.ID
			want.Event = in.Payload.Event
			assert.Equal(t, []activities.CompleteInput{want}, complete.recorded())
		})
	}
}

func TestDeliverWebhookRetriesRecordingWithoutResending(t *testing.T) {
	env := newEnv(testConfig())
	send := mockSend(env, func(attempt int32) (activities.SendResult, error) {
		return activities.SendResult{Attempt: int(attempt), StatusCode: 200}, nil
	})
	complete := mockComplete(env, 2) // the database is down for the first two tries

	res, err := runDeliver(t, env, deliverInput())

	require.NoError(t, err)
	assert.Equal(t, workflows.OutcomeSucceeded, res.Outcome)
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

func TestDeliverWebhookSkipsWithoutRecording(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "deleted webhook", give: "webhook deleted"},
		{name: "inactive webhook", give: "webhook inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(testConfig())
			send := mockSend(env, func(int32) (activities.SendResult, error) {
				return activities.SendResult{Skipped: true, Reason: tt.give}, nil
			})
			complete := mockComplete(env, 0)
			in := deliverInput()

			res, err := runDeliver(t, env, in)

			require.NoError(t, err)
			assert.Equal(t, workflows.DeliverWebhookResult{
				DeliveryID: in.DeliveryID, Outcome: workflows.OutcomeSkipped, Error: tt.give,
			}, res)
			assert.Len(t, send.recorded(), 1)
			// Nothing was sent, so nothing may count against the webhook's failure streak.
			assert.Empty(t, complete.recorded())
		})
	}
}

func TestDeliverWebhookAttemptLimits(t *testing.T) {
	tests := []struct {
		name           string
		giveMax        int
		giveErr        func(attempt int32) error
		wantAttempts   int
		wantStatusCode int
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
			name:           "410 Gone is not retried",
			giveMax:        0,
			giveErr:        http410,
			wantAttempts:   1,
			wantStatusCode: 410,
		},
		{
			name:    "forbidden address is not retried",
			giveMax: 0,
			giveErr: func(attempt int32) error {
				return temporal.NewApplicationErrorWithOptions("destination refused", activities.ErrTypeForbiddenAddress,
					temporal.ApplicationErrorOptions{
						NonRetryable: true,
						Details:      []any{activities.SendFailure{Attempt: int(attempt)}},
					})
			},
			wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(testConfig())
			send := mockSend(env, func(attempt int32) (activities.SendResult, error) {
				return activities.SendResult{}, tt.giveErr(attempt)
			})
			complete := mockComplete(env, 0)
			in := deliverInput()
			in.MaxAttempts = tt.giveMax

			res, err := runDeliver(t, env, in)

			require.Error(t, err)
			assert.Len(t, send.recorded(), 1)
			assert.Equal(t, workflows.OutcomeFailed, res.Outcome)
			assert.Equal(t, tt.wantAttempts, res.Attempts)
			assert.Equal(t, tt.wantStatusCode, res.StatusCode)
			calls := complete.recorded()
			require.Len(t, calls, 1)
			assert.Equal(t, tt.wantAttempts, calls[0].Attempts)
		})
	}
}

func TestDeliverWebhookHonoursRetryAfter(t *testing.T) {
	env := newEnv(testConfig())
	send := mockSend(env, func(attempt int32) (activities.SendResult, error) {
		if attempt == 1 {
			return activities.SendResult{}, temporal.NewApplicationErrorWithOptions("receiver answered HTTP 429", activities.ErrTypeHTTPStatus,
				temporal.ApplicationErrorOptions{
					NextRetryDelay: 30 * time.Second, // Retry-After: 30
					Details:        []any{activities.SendFailure{Attempt: int(attempt), StatusCode: 429}},
				})
		}
		return activities.SendResult{Attempt: int(attempt), StatusCode: 200}, nil
	})
	mockComplete(env, 0)

	res, err := runDeliver(t, env, deliverInput())

	require.NoError(t, err)
	assert.Equal(t, 2, res.Attempts)
	// 30 s, not the policy's 5 s: retrying sooner only earns another 429.
	assert.Equal(t, []time.Duration{30 * time.Second}, send.gaps())
}

func TestDeliverWebhookSendsTheInput(t *testing.T) {
	env := newEnv(testConfig())
	send := mockSend(env, func(attempt int32) (activities.SendResult, error) {
		return activities.SendResult{Attempt: int(attempt), StatusCode: 200}, nil
	})
	mockComplete(env, 0)
	in := deliverInput()
	in.Kind = workflows.KindRedelivery
	in.RedeliveryOf = "original-delivery"

	_, err := runDeliver(t, env, in)

	require.NoError(t, err)
	attempts := send.recorded()
	require.Len(t, attempts, 1)
	// The receiver must get the very bytes the event produced, under the delivery's id.
	assert.Equal(t, activities.SendInput{
		DeliveryID:   in.DeliveryID,
		WebhookID:    in.WebhookID,
		Kind:         workflows.KindRedelivery,
		RedeliveryOf: "original-delivery",
		Payload:      in.Payload,
	}, attempts[0].Input)
}
