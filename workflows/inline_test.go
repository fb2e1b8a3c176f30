package workflows_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/workflows"
)

func inlineConfig() workflows.Config {
	cfg := testConfig()
	cfg.InlineSingleDelivery = true
	return cfg
}

// upserts records what the workflow told the Web UI about itself.
type upserts struct {
	mu    sync.Mutex
	attrs []temporal.SearchAttributes
	memos []map[string]any
}

func recordUpserts(env *testsuite.TestWorkflowEnvironment) *upserts {
	u := &upserts{}
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.attrs = append(u.attrs, args.Get(0).(temporal.SearchAttributes))
	}).Return(nil)
	env.OnUpsertMemo(mock.Anything).Run(func(args mock.Arguments) {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.memos = append(u.memos, args.Get(0).(map[string]any))
	}).Return(nil)
	return u
}

// runDispatchAs runs DispatchEvent under workflowID, as the dispatch package would start it.
func runDispatchAs(t *testing.T, env *testsuite.TestWorkflowEnvironment, workflowID string, in workflows.DispatchEventInput) (workflows.DispatchEventResult, error) {
	t.Helper()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflowID})
	env.ExecuteWorkflow(workflows.DispatchEventName, in)
	require.True(t, env.IsWorkflowCompleted())
	var res workflows.DispatchEventResult
	err := env.GetWorkflowError()
	if err == nil {
		require.NoError(t, env.GetWorkflowResult(&res))
	}
	return res, err
}

func TestDispatchEventDeliversASingleSubscriberInline(t *testing.T) {
	env := newEnv(inlineConfig())
	in := dispatchInput()
	mockSubscribers(env, pagesOf(10, "wh-a"))
	children := mockDeliveries(env)
	send := mockSend(env, func(c sendCall) (activities.SendResult, error) {
		return activities.SendResult{Attempt: c.Attempt, StatusCode: 204, DurationMS: 3}, nil
	})
	complete := mockComplete(env, 0)
	seen := recordUpserts(env)

	res, err := runDispatchAs(t, env, workflows.DispatchWorkflowID(in.ID), in)

	require.NoError(t, err)
	want := workflows.DeliverWebhookResult{DeliveryID: workflows.DeliveryID(in.ID, "wh-a"), Outcome: delivery.OutcomeSucceeded, Attempts: 1, StatusCode: 204, DurationMS: 3}
	assert.Equal(t, workflows.DispatchEventResult{Started: 1, Delivery: &want}, res)
	assert.Zero(t, children.count(), "the only delivery runs in the dispatch, not in a child")

	sent := send.recorded()
	require.Len(t, sent, 1)
	assert.Equal(t, workflows.DeliveryID(in.ID, "wh-a"), sent[0].In.DeliveryID, "the same delivery id a child would use")
	assert.Equal(t, "wh-a", sent[0].In.WebhookID)
	assert.Equal(t, in.ID, sent[0].In.Payload.ID)
	assert.Equal(t, 3, sent[0].In.MaxAttempts, "the configured attempts, as in a child")
	recorded := complete.recorded()
	require.Len(t, recorded, 1)
	assert.True(t, recorded[0].Succeeded)

	// Operators find the delivery by webhook, event and user, as they find a child.
	seen.mu.Lock()
	defer seen.mu.Unlock()
	var webhookID, event, user string
	for _, sa := range seen.attrs {
		if v, ok := sa.GetKeyword(workflows.SearchAttrWebhookID); ok {
			webhookID = v
		}
		if v, ok := sa.GetKeyword(workflows.SearchAttrEvent); ok {
			event = v
		}
		if v, ok := sa.GetKeyword(workflows.SearchAttrUserID); ok {
			user = v
		}
	}
	assert.Equal(t, "wh-a", webhookID)
	assert.Equal(t, string(in.Event), event)
	assert.Equal(t, in.UserID, user)
	assert.Equal(t, []map[string]any{workflows.DeliveryMemo("hook wh-a", "wh-a.example.com")}, seen.memos)
}

func TestDispatchEventInlineFailureFailsTheDispatch(t *testing.T) {
	env := newEnv(inlineConfig())
	in := dispatchInput()
	mockSubscribers(env, pagesOf(10, "wh-a"))
	mockDeliveries(env)
	send := mockSend(env, alwaysHTTP500)
	complete := mockComplete(env, 0)
	recordUpserts(env)

	_, err := runDispatchAs(t, env, workflows.DispatchWorkflowID(in.ID), in)

	// Failed in the Web UI like a failed DeliverWebhook, with the same details.
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "got %v", err)
	assert.Equal(t, workflows.ErrTypeDeliveryFailed, appErr.Type())
	res, err := workflows.DeliveryResultOf(err, workflows.DeliverWebhookResult{})
	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomeFailed, res.Outcome)
	assert.Equal(t, 3, res.Attempts)
	assert.Equal(t, 500, res.StatusCode)
	assert.Len(t, send.recorded(), 3, "the configured retry policy, as in a child")
	recorded := complete.recorded()
	require.Len(t, recorded, 1)
	assert.False(t, recorded[0].Succeeded)
}

func TestDispatchEventUsesChildrenUnlessInlineApplies(t *testing.T) {
	canonical := workflows.DispatchWorkflowID(dispatchInput().ID)
	cases := []struct {
		name        string
		inline      bool
		subscribers []string
		pageSize    int
		workflowID  string
		wantStarted int
	}{
		{"two subscribers", true, []string{"wh-a", "wh-b"}, 10, canonical, 2},
		{"one subscriber on a later page", true, []string{"wh-a", "wh-b", "wh-c"}, 2, canonical, 3},
		// A first page of one is not the only subscriber: the next page must not be lost.
		{"one subscriber on a first page with more to come", true, []string{"wh-a", "wh-b"}, 1, canonical, 2},
		{"inline switched off", false, []string{"wh-a"}, 10, canonical, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.InlineSingleDelivery = tc.inline
			env := newEnv(cfg)
			in := dispatchInput()
			mockSubscribers(env, pagesOf(tc.pageSize, tc.subscribers...))
			children := mockDeliveries(env)
			send := mockSend(env, succeeds)

			res, err := runDispatchAs(t, env, tc.workflowID, in)

			require.NoError(t, err)
			assert.Equal(t, workflows.DispatchEventResult{Started: tc.wantStarted}, res)
			assert.Equal(t, tc.wantStarted, children.count())
			assert.Empty(t, send.recorded(), "nothing is sent by the dispatch itself")
			for _, id := range tc.subscribers {
				assert.Equal(t, workflows.DeliveryWorkflowID(in.ID, id), children.byWebhook()[id].WorkflowID)
			}
		})
	}
}

// startedDispatches records the DispatchEvent children a dispatch started.
type startedDispatches struct {
	mu     sync.Mutex
	ids    []string
	inputs []workflows.DispatchEventInput
}

func TestDispatchEventUnderAnotherIDForwardsToTheCanonicalDispatch(t *testing.T) {
	for _, inline := range []bool{true, false} {
		for _, alreadyThere := range []bool{false, true} {
			name := fmt.Sprintf("inline %t/%s", inline, map[bool]string{false: "first", true: "already dispatched"}[alreadyThere])
			t.Run(name, func(t *testing.T) {
				// Whatever the inline setting: a worker with it off would otherwise start
				// children under this id while another, with it on, delivers inline
				// under the canonical one, and the receiver would get the event twice.
				cfg := testConfig()
				cfg.InlineSingleDelivery = inline
				in := dispatchInput()
				canonical := workflows.DispatchWorkflowID(in.ID)
				env := newEnv(cfg, &earlierDispatch{started: map[string]bool{canonical: alreadyThere}})
				mockSubscribers(env, pagesOf(10, "wh-a"))
				children := mockDeliveries(env)
				send := mockSend(env, succeeds)
				mockComplete(env, 0)
				forwarded := &startedDispatches{}
				env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, args converter.EncodedValues) {
					if info.WorkflowType.Name != workflows.DispatchEventName {
						return
					}
					var got workflows.DispatchEventInput
					require.NoError(t, args.Get(&got))
					forwarded.mu.Lock()
					defer forwarded.mu.Unlock()
					forwarded.ids = append(forwarded.ids, info.WorkflowExecution.ID)
					forwarded.inputs = append(forwarded.inputs, got)
				})

				res, err := runDispatchAs(t, env, "caller-own-id", in)

				require.NoError(t, err)
				// Nothing is delivered under a second id: neither inline (an inline
				// delivery has no child id to collide with) nor through children.
				assert.Zero(t, children.startedBy("caller-own-id"))
				for _, c := range send.recorded() {
					assert.NotEqual(t, "caller-own-id", c.WorkflowID, "sent by the forwarding dispatch")
				}
				forwarded.mu.Lock()
				defer forwarded.mu.Unlock()
				if alreadyThere {
					assert.Equal(t, workflows.DispatchEventResult{Duplicates: 1, ForwardedTo: canonical}, res)
					assert.Empty(t, forwarded.ids)
					return
				}
				assert.Equal(t, workflows.DispatchEventResult{ForwardedTo: canonical}, res)
				require.Equal(t, []string{canonical}, forwarded.ids)
				assert.Equal(t, in.ID, forwarded.inputs[0].ID)
				assert.Equal(t, in.UserID, forwarded.inputs[0].UserID)
				assert.JSONEq(t, string(in.Data), string(forwarded.inputs[0].Data))
			})
		}
	}
}
