package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
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

// recoverEnv is newEnv for the recovery and operational workflows.
func recoverEnv(cfg workflows.Config) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	wf := workflows.New(cfg)
	env.RegisterWorkflowWithOptions(wf.RecoverDeliveries, workflow.RegisterOptions{Name: workflows.RecoverDeliveriesName})
	env.RegisterWorkflowWithOptions(wf.SendOperationalEvent, workflow.RegisterOptions{Name: workflows.SendOperationalEventName})
	env.RegisterWorkflowWithOptions(wf.NotifyRotationEnded, workflow.RegisterOptions{Name: workflows.NotifyRotationEndedName})
	env.RegisterActivity(&activities.Delivery{})
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&serverRetries{}}})
	return env
}

// recoverable is a delivery a recovery page returns.
func recoverable(n string) activities.Recoverable {
	return activities.Recoverable{
		OriginalID: "orig-" + n, RedeliveryID: "redo-" + n,
		Payload: events.Payload{ID: "evt-" + n, Event: events.LowStock, Timestamp: "2026-12-01T00:00:00Z", Data: []byte(`{}`)},
	}
}

// recoveryMock answers the recovery's activities: pages in order, Send by the
// redelivery's id (succeeds unless told otherwise), and records what it was asked.
type recoveryMock struct {
	mu       sync.Mutex
	env      *testsuite.TestWorkflowEnvironment
	pages    []activities.ListRecoverableResult
	respond  map[string]func() (activities.SendResult, error)
	listed   []activities.ListRecoverableInput
	sends    []activities.SendInput
	sentAt   []time.Time
	finished []activities.FinishRecoveryInput
}

func mockRecovery(env *testsuite.TestWorkflowEnvironment, pages ...activities.ListRecoverableResult) *recoveryMock {
	m := &recoveryMock{env: env, pages: pages, respond: map[string]func() (activities.SendResult, error){}}
	env.OnActivity("ListRecoverable", mock.Anything, mock.Anything).Return(m.list)
	env.OnActivity("Send", mock.Anything, mock.Anything).Return(m.send)
	env.OnActivity("Complete", mock.Anything, mock.Anything).Return(activities.CompleteResult{}, nil)
	env.OnActivity("FinishRecovery", mock.Anything, mock.Anything).Return(m.finish)
	return m
}

func (m *recoveryMock) list(_ context.Context, in activities.ListRecoverableInput) (activities.ListRecoverableResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.listed)
	m.listed = append(m.listed, in)
	if n >= len(m.pages) {
		return activities.ListRecoverableResult{}, errors.New("listed past the last page")
	}
	return m.pages[n], nil
}

func (m *recoveryMock) send(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sends = append(m.sends, in)
	m.sentAt = append(m.sentAt, m.env.Now())
	if r, ok := m.respond[in.DeliveryID]; ok {
		return r()
	}
	return activities.SendResult{Attempt: 1, StatusCode: 200}, nil
}

func (m *recoveryMock) finish(_ context.Context, in activities.FinishRecoveryInput) (activities.FinishRecoveryResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.finished = append(m.finished, in)
	return activities.FinishRecoveryResult{State: in.State}, nil
}

func recoverInput() workflows.RecoverDeliveriesInput {
	return workflows.RecoverDeliveriesInput{
		RecoveryID: "rec-1", WebhookID: "wh-1", UserID: "user-1",
		Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
		Statuses: []delivery.Outcome{delivery.OutcomeFailed},
	}
}

func TestRecoverDeliveriesRedeliversInOrderAtTheRate(t *testing.T) {
	cfg := testConfig()
	cfg.RecoverRate = 2
	env := recoverEnv(cfg)
	cursor := &activities.RecoveryCursor{CreatedAt: time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC), ID: "orig-2"}
	m := mockRecovery(env,
		activities.ListRecoverableResult{Deliveries: []activities.Recoverable{recoverable("1"), recoverable("2")}, Matched: 3, Skipped: 1, Next: cursor},
		activities.ListRecoverableResult{Deliveries: []activities.Recoverable{recoverable("3")}, Matched: 1},
	)
	env.ExecuteWorkflow(workflows.RecoverDeliveriesName, recoverInput())
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.RecoverDeliveriesResult
	require.NoError(t, env.GetWorkflowResult(&res))

	want := activities.RecoveryProgress{Matched: 4, Skipped: 1, Redelivered: 3, Succeeded: 3}
	assert.Equal(t, activities.RecoveryCompleted, res.State)
	assert.Equal(t, want, res.Progress)
	require.Len(t, m.sends, 3)
	for i, n := range []string{"1", "2", "3"} {
		s := m.sends[i]
		assert.Equal(t, delivery.Identity{DeliveryID: "redo-" + n, WebhookID: "wh-1", Kind: delivery.KindRedelivery, RedeliveryOf: "orig-" + n}, s.Identity,
			"in the order they happened, each a redelivery linked to its original")
		assert.Equal(t, "evt-"+n, s.Payload.ID, "with the original's body")
	}
	for i, at := range m.sentAt {
		within := 0
		for _, other := range m.sentAt[i:] {
			if other.Sub(at) < time.Second {
				within++
			}
		}
		assert.LessOrEqual(t, within, 2, "at most WEBHOOK_RECOVER_RATE in any second")
	}
	assert.GreaterOrEqual(t, m.sentAt[2].Sub(m.sentAt[0]), time.Second, "the third waited for the next second")
	require.Len(t, m.listed, 2)
	assert.Nil(t, m.listed[0].After)
	assert.Equal(t, cursor, m.listed[1].After, "the next page starts after the last")
	assert.Equal(t, activities.RecoveryProgress{Matched: 3, Skipped: 1, Redelivered: 2, Succeeded: 2}, m.listed[1].Progress,
		"each page records the progress made before it")
	require.Len(t, m.finished, 1)
	assert.Equal(t, activities.FinishRecoveryInput{RecoveryID: "rec-1", State: activities.RecoveryCompleted, Progress: want}, m.finished[0])
}

func TestRecoverDeliveriesCountsFailuresAndStopsWhenTheWebhookIsOff(t *testing.T) {
	cfg := testConfig()
	cfg.Retry.MaxAttempts = 1
	env := recoverEnv(cfg)
	m := mockRecovery(env, activities.ListRecoverableResult{
		Deliveries: []activities.Recoverable{recoverable("1"), recoverable("2"), recoverable("3"), recoverable("4")}, Matched: 4,
	})
	m.respond["redo-2"] = func() (activities.SendResult, error) {
		return activities.SendResult{}, temporal.NewApplicationErrorWithOptions("receiver answered HTTP 500", activities.ErrTypeHTTPStatus,
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.SendFailure{Attempt: 1, StatusCode: 500}}})
	}
	m.respond["redo-3"] = func() (activities.SendResult, error) {
		return activities.SendResult{Skipped: true, Reason: "webhook inactive"}, nil
	}
	env.ExecuteWorkflow(workflows.RecoverDeliveriesName, recoverInput())
	require.True(t, env.IsWorkflowCompleted())
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &appErr)
	assert.Equal(t, workflows.ErrTypeRecoveryStopped, appErr.Type())

	assert.Len(t, m.sends, 3, "nothing is sent once the webhook is off")
	require.Len(t, m.finished, 1)
	assert.Equal(t, activities.RecoveryFailed, m.finished[0].State)
	assert.Equal(t, "recovery stopped: webhook inactive", m.finished[0].Reason)
	assert.Equal(t, activities.RecoveryProgress{Matched: 4, Redelivered: 2, Succeeded: 1, Failed: 1}, m.finished[0].Progress,
		"a failed redelivery is counted and the recovery goes on")
}

func TestRecoverDeliveriesCancelled(t *testing.T) {
	cfg := testConfig()
	cfg.RecoverRate = 0.1 // ten seconds apart
	env := recoverEnv(cfg)
	m := mockRecovery(env, activities.ListRecoverableResult{
		Deliveries: []activities.Recoverable{recoverable("1"), recoverable("2"), recoverable("3")}, Matched: 3,
	})
	env.RegisterDelayedCallback(env.CancelWorkflow, 15*time.Second)
	env.ExecuteWorkflow(workflows.RecoverDeliveriesName, recoverInput())
	require.True(t, env.IsWorkflowCompleted())
	assert.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "%v", env.GetWorkflowError())
	assert.Len(t, m.sends, 2, "cancelled while waiting for the third")
	require.Len(t, m.finished, 1)
	assert.Equal(t, activities.RecoveryCanceled, m.finished[0].State)
	assert.Equal(t, 2, m.finished[0].Progress.Succeeded)
}

func TestRecoverDeliveriesContinuesAsNew(t *testing.T) {
	cfg := testConfig()
	cfg.ChildrenPerRun = 2
	env := recoverEnv(cfg)
	cursor := &activities.RecoveryCursor{CreatedAt: time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC), ID: "orig-2"}
	mockRecovery(env, activities.ListRecoverableResult{
		Deliveries: []activities.Recoverable{recoverable("1"), recoverable("2")}, Matched: 2, Next: cursor,
	})
	env.ExecuteWorkflow(workflows.RecoverDeliveriesName, recoverInput())
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	assert.Equal(t, workflows.RecoverDeliveriesName, can.WorkflowType.Name)
	var next workflows.RecoverDeliveriesInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	assert.Equal(t, cursor.ID, next.Cursor.ID)
	assert.Equal(t, activities.RecoveryProgress{Matched: 2, Redelivered: 2, Succeeded: 2}, next.Progress, "the progress carries over")
}

func TestSendOperationalEventUsesTheRunsPolicy(t *testing.T) {
	cfg := testConfig()
	env := recoverEnv(cfg)
	var got activities.SendOperationalInput
	calls := 0
	env.OnActivity("SendOperational", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendOperationalInput) (activities.SendOperationalResult, error) {
			got = in
			calls++
			if calls == 1 {
				return activities.SendOperationalResult{}, databaseDown(time.Second)
			}
			return activities.SendOperationalResult{Attempt: 1, StatusCode: 200}, nil
		})
	ev := activities.OperationalEvent{EventID: "ev-1", Type: "webhook.failing", UserID: "user-1", WebhookID: "wh-1"}
	env.ExecuteWorkflow(workflows.SendOperationalEventName, ev)
	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, 2, calls, "our failure is retried")
	assert.Equal(t, ev, got.OperationalEvent)
	assert.Equal(t, cfg.Retry.MaxAttempts, got.MaxAttempts)
	assert.Equal(t, activities.Backoff{Initial: cfg.Retry.InitialInterval, Coefficient: cfg.Retry.BackoffCoefficient, Max: cfg.Retry.MaxInterval}, got.Backoff)
}

func TestNotifyRotationEndedWaitsForTheGrace(t *testing.T) {
	env := recoverEnv(testConfig())
	start := env.Now()
	var at time.Time
	env.OnActivity("EmitRotationEnded", mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RotationEndedInput) (bool, error) {
			at = env.Now()
			return true, nil
		})
	expires := start.Add(24 * time.Hour)
	env.ExecuteWorkflow(workflows.NotifyRotationEndedName, workflows.NotifyRotationEndedInput{WebhookID: "wh-1", ExpiresAt: expires})
	require.NoError(t, env.GetWorkflowError())
	var told bool
	require.NoError(t, env.GetWorkflowResult(&told))
	assert.True(t, told)
	assert.False(t, at.Before(expires), "told at %s, the grace ends at %s", at, expires)
}
