package e2e_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/deliveryworker"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/workflows"
)

// updateHistories rewrites the committed corpus that workflows/replay_test.go replays
// without a server (make replay-corpus).
var updateHistories = flag.Bool("update-histories", false, "write the recorded histories to workflows/testdata/histories")

// corpusDir is the corpus, seen from this package's directory.
const corpusDir = "../workflows/testdata/histories"

// The shapes of the corpus: one per way a delivery's history can look. The workflows
// package requires every one of them in the committed manifest.
const (
	shapeInlineSuccess = "inline-success"
	shapeInlineRetries = "inline-retries"
	shapeRetryAfter    = "retry-after"
	shapeGone          = "gone-410"
	shapeFanOut        = "fan-out"
	shapeTest          = "test-delivery"
	shapeRedelivery    = "redelivery"
	shapeSkipped       = "skipped"
	shapeRecordRetried = "record-retried"
	shapeOurs          = "ours-database-down"
)

// corpusRun is one recorded workflow execution; the exported fields are its manifest entry.
type corpusRun struct {
	Shape      string `json:"shape"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	File       string `json:"file"`
	history    *historypb.History
}

// corpus collects the runs of shapes recorded in parallel.
type corpus struct {
	mu   sync.Mutex
	runs []corpusRun
}

// add fetches the closed run's history, keeps it under shape, and returns it for the
// shape's assertions. part names the run within its shape (a shape may span several).
func (c *corpus) add(t *testing.T, shape, part, workflowID, runID string) *historypb.History {
	t.Helper()
	h := workflowHistory(t, workflowID, runID)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs = append(c.runs, corpusRun{
		Shape: shape, WorkflowID: workflowID, RunID: runID, File: shape + "." + part + ".json", history: h,
	})
	return h
}

// TestReplayCorpus records every delivery shape on the real dev server, checks each
// history has the shape it stands for, and replays them all under the current code, as
// a worker restarted with another setting would. With -update-histories it also writes
// them to the corpus that `go test -short ./workflows/` replays.
func TestReplayCorpus(t *testing.T) {
	began := time.Now()
	var c corpus
	t.Run("record", func(t *testing.T) {
		t.Run(shapeInlineSuccess, func(t *testing.T) { t.Parallel(); recordInlineSuccess(t, &c) })
		t.Run(shapeInlineRetries, func(t *testing.T) { t.Parallel(); recordInlineRetries(t, &c) })
		t.Run(shapeRetryAfter, func(t *testing.T) { t.Parallel(); recordRetryAfter(t, &c) })
		t.Run(shapeGone, func(t *testing.T) { t.Parallel(); recordGone(t, &c) })
		t.Run(shapeFanOut, func(t *testing.T) { t.Parallel(); recordFanOut(t, &c) })
		t.Run(shapeTest, func(t *testing.T) { t.Parallel(); recordTestDelivery(t, &c) })
		t.Run(shapeRedelivery, func(t *testing.T) { t.Parallel(); recordRedelivery(t, &c) })
		t.Run(shapeSkipped, func(t *testing.T) { t.Parallel(); recordSkipped(t, &c) })
		t.Run(shapeRecordRetried+"+"+shapeOurs, func(t *testing.T) { t.Parallel(); recordDatabaseOutage(t, &c) })
	})
	require.False(t, t.Failed(), "every shape recorded")
	t.Logf("recorded %d runs in %s", len(c.runs), time.Since(began).Round(time.Millisecond))

	// The full table of settings is replayed over the committed corpus (workflows/replay_test.go);
	// here the fresh histories meet the two settings that change a delivery's shape most.
	current := deliveryworker.WorkflowConfig(testfixture.WorkerConfig())
	inlineFlipped, localFlipped := current, current
	inlineFlipped.InlineSingleDelivery = !current.InlineSingleDelivery
	localFlipped.FirstAttemptLocal = !current.FirstAttemptLocal
	configs := []struct {
		name string
		give workflows.Config
	}{
		{name: "current", give: current},
		{name: "WEBHOOK_DISPATCH_INLINE_SINGLE flipped", give: inlineFlipped},
		{name: "WEBHOOK_FIRST_ATTEMPT_LOCAL flipped", give: localFlipped},
	}
	for _, tt := range configs {
		replayer := newReplayer(tt.give)
		for _, run := range c.runs {
			err := replayer.ReplayWorkflowHistoryWithOptions(testinfra.QuietLogger(), run.history, worker.ReplayWorkflowHistoryOptions{
				// The real ids: a dispatch's behaviour depends on its own workflow id.
				OriginalExecution: workflow.Execution{ID: run.WorkflowID, RunID: run.RunID},
			})
			assert.NoError(t, err, "%s (%s) replayed with %s", run.File, run.WorkflowID, tt.name)
		}
	}
	if *updateHistories && !t.Failed() {
		writeCorpus(t, c.runs)
	}
	t.Logf("recorded and replayed in %s", time.Since(began).Round(time.Millisecond))
}

func newReplayer(cfg workflows.Config) worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	wf := workflows.New(cfg)
	r.RegisterWorkflowWithOptions(wf.DispatchEvent, workflow.RegisterOptions{Name: workflows.DispatchEventName})
	r.RegisterWorkflowWithOptions(wf.DeliverWebhook, workflow.RegisterOptions{Name: workflows.DeliverWebhookName})
	r.RegisterWorkflowWithOptions(wf.PruneDeliveries, workflow.RegisterOptions{Name: workflows.PruneDeliveriesName})
	return r
}

// writeCorpus replaces the committed corpus with runs: one protojson history per file,
// as `temporal workflow show --output json` writes it and client.HistoryFromJSON reads it.
func writeCorpus(t *testing.T, runs []corpusRun) {
	t.Helper()
	writeCorpusTo(t, corpusDir, runs)
}

// writeCorpusTo replaces the corpus in dir with runs and their manifest.
func writeCorpusTo(t *testing.T, dir string, runs []corpusRun) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	for _, f := range old {
		require.NoError(t, os.Remove(f))
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].File < runs[j].File })
	for _, run := range runs {
		b, err := temporalproto.CustomJSONMarshalOptions{Indent: " "}.Marshal(run.history)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, run.File), append(b, '\n'), 0o644))
	}
	manifest, err := json.MarshalIndent(runs, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), append(manifest, '\n'), 0o644))
	t.Logf("wrote %d histories to %s", len(runs), dir)
}

// corpusEventData is what the corpus's events carry: more than the 2 bytes the
// WEBHOOK_MAX_EVENT_DATA_BYTES mutation allows, so that setting read live would show.
var corpusEventData = map[string]any{"assetId": "asset-replay", "quantity": 2}

// triggerWithData hands an event for user to the stack's worker and returns its id.
func triggerWithData(t *testing.T, taskQueue, user string) string {
	t.Helper()
	id, err := dispatch.NewWebhookDispatchService(testinfra.Temporal(t), taskQueue).
		Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user, Data: corpusEventData})
	require.NoError(t, err)
	return id
}

func recordInlineSuccess(t *testing.T, c *corpus) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := newScriptedReceiver(t, scriptedAnswer{status: http.StatusOK})
	user := newUser()
	s.createWebhook(user, rcv.URL, "LOW_STOCK")
	id := workflows.DispatchWorkflowID(triggerWithData(t, s.taskQueue, user))

	h := c.add(t, shapeInlineSuccess, "dispatch", id, latestClosedRun(t, id))
	assert.Equal(t, []string{"version", "search attributes", "config", "local ListSubscribers", "search attributes", "memo", "local Send", "local Complete", "completed"}, historySteps(t, h))
	res := dispatchResultOf(t, h)
	require.NotNil(t, res.Delivery, "the only subscriber is delivered inline")
	assert.Equal(t, delivery.OutcomeSucceeded, res.Delivery.Outcome)
	assert.Len(t, rcv.requests(), 1)
}

func recordInlineRetries(t *testing.T, c *corpus) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := newScriptedReceiver(t, scriptedAnswer{status: http.StatusInternalServerError}, scriptedAnswer{status: http.StatusInternalServerError}, scriptedAnswer{status: http.StatusOK})
	user := newUser()
	s.createWebhook(user, rcv.URL, "LOW_STOCK")
	id := workflows.DispatchWorkflowID(triggerWithData(t, s.taskQueue, user))

	h := c.add(t, shapeInlineRetries, "dispatch", id, latestClosedRun(t, id))
	// Attempt 1 locally, then the hand-over after the run's first backoff (1 s) to an
	// activity that Temporal retries: attempts 2 and 3.
	assert.Equal(t, []string{
		"version", "search attributes", "config", "local ListSubscribers", "search attributes", "memo",
		"local Send failed", "timer 1s", "activity Send", "local Complete", "completed",
	}, historySteps(t, h))
	assert.Equal(t, activities.ErrTypeHTTPStatus, localFailureType(t, h, "Send"))
	assert.Equal(t, int32(2), activityAttempts(h, "Send"), "the activity's own attempts: the receiver's 2nd and 3rd")
	res := dispatchResultOf(t, h)
	require.NotNil(t, res.Delivery)
	assert.Equal(t, delivery.OutcomeSucceeded, res.Delivery.Outcome)
	assert.Equal(t, 3, res.Delivery.Attempts)
	assert.Len(t, rcv.requests(), 3)
}

func recordRetryAfter(t *testing.T, c *corpus) {
	s := newStack(t, testfixture.WorkerSettings{})
	// 3 s: unlike any backoff of the run (1 s, then 2 s), so the waits below are the receiver's.
	busy := scriptedAnswer{status: http.StatusServiceUnavailable, retryAfter: "3"}
	rcv := newScriptedReceiver(t, busy, busy, scriptedAnswer{status: http.StatusOK})
	user := newUser()
	s.createWebhook(user, rcv.URL, "LOW_STOCK")
	id := workflows.DispatchWorkflowID(triggerWithData(t, s.taskQueue, user))

	h := c.add(t, shapeRetryAfter, "dispatch", id, latestClosedRun(t, id))
	assert.Equal(t, []string{
		"version", "search attributes", "config", "local ListSubscribers", "search attributes", "memo",
		"local Send failed", "timer 3s", "activity Send", "local Complete", "completed",
	}, historySteps(t, h))
	assert.Equal(t, int32(2), activityAttempts(h, "Send"))
	reqs := rcv.requests()
	require.Len(t, reqs, 3)
	assert.GreaterOrEqual(t, reqs[1].Sub(reqs[0]), 3*time.Second, "the hand-over waited for Retry-After")
	assert.GreaterOrEqual(t, reqs[2].Sub(reqs[1]), 3*time.Second, "the activity's retry waited for Retry-After, not the 2 s backoff")
}

func recordGone(t *testing.T, c *corpus) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := newScriptedReceiver(t, scriptedAnswer{status: http.StatusGone})
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	id := workflows.DispatchWorkflowID(triggerWithData(t, s.taskQueue, user))

	h := c.add(t, shapeGone, "dispatch", id, latestClosedRun(t, id))
	assert.Equal(t, []string{
		"version", "search attributes", "config", "local ListSubscribers", "search attributes", "memo", "local Send failed", "local Complete", "failed",
	}, historySteps(t, h))
	assert.Equal(t, activities.ErrTypeGone, localFailureType(t, h, "Send"))
	assert.Equal(t, workflows.ErrTypeDeliveryFailed, h.GetEvents()[len(h.GetEvents())-1].
		GetWorkflowExecutionFailedEventAttributes().GetFailure().GetApplicationFailureInfo().GetType())
	var got created
	require.Equal(t, http.StatusOK, s.call(user, http.MethodGet, "/webhooks/"+hook.ID, nil, &got))
	assert.False(t, got.IsActive, "410 switches the webhook off")
	assert.Len(t, rcv.requests(), 1)
}

func recordFanOut(t *testing.T, c *corpus) {
	// Two subscribers a page and two children a run: five subscribers take three runs.
	cfg := testfixture.WorkerConfig()
	cfg.DispatchChildrenPerRun = 2
	cfg.DispatchPageSize = 2
	s := newStack(t, testfixture.WorkerSettings{Config: cfg})
	rcv := newScriptedReceiver(t, scriptedAnswer{status: http.StatusOK})
	user := newUser()
	var hooks []string
	for range 5 {
		hooks = append(hooks, s.createWebhook(user, rcv.URL, "LOW_STOCK").ID)
	}
	eventID := triggerWithData(t, s.taskQueue, user)
	id := workflows.DispatchWorkflowID(eventID)

	runs := continueAsNewChain(t, id, latestClosedRun(t, id))
	require.Len(t, runs, 3, "runs linked by continue-as-new")
	wantRuns := [][]string{
		{"version", "search attributes", "config", "local ListSubscribers", "child DeliverWebhook", "child DeliverWebhook", "continued as new"},
		{"version", "search attributes", "config", "local ListSubscribers", "child DeliverWebhook", "child DeliverWebhook", "continued as new"},
		{"version", "search attributes", "config", "local ListSubscribers", "child DeliverWebhook", "completed"},
	}
	for i, runID := range runs {
		h := c.add(t, shapeFanOut, fmt.Sprintf("dispatch-run%d", i+1), id, runID)
		assert.Equal(t, wantRuns[i], historySteps(t, h), "run %d", i+1)
		if i < len(runs)-1 {
			last := h.GetEvents()[len(h.GetEvents())-1]
			assert.Equal(t, runs[i+1], last.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId())
		} else {
			assert.Equal(t, 5, dispatchResultOf(t, h).Started)
		}
	}
	sort.Strings(hooks)
	for i, hook := range hooks {
		child := workflows.DeliveryWorkflowID(eventID, hook)
		h := c.add(t, shapeFanOut, fmt.Sprintf("delivery-%d", i+1), child, latestClosedRun(t, child))
		assert.Equal(t, []string{"version", "search attributes", "config", "local Send", "local Complete", "completed"}, historySteps(t, h), child)
	}
	assert.Len(t, rcv.requests(), 5)
}

func recordTestDelivery(t *testing.T, c *corpus) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := newScriptedReceiver(t, scriptedAnswer{status: http.StatusOK})
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	var res struct {
		Delivered  *bool  `json:"delivered"`
		WorkflowID string `json:"workflowId"`
	}
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/test", nil, &res))
	require.NotNil(t, res.Delivered)
	assert.True(t, *res.Delivered)

	h := c.add(t, shapeTest, "delivery", res.WorkflowID, latestClosedRun(t, res.WorkflowID))
	assert.Equal(t, []string{"version", "search attributes", "config", "local Send", "local Complete", "completed"}, historySteps(t, h))
	in := deliverInputOf(t, h)
	assert.Equal(t, delivery.KindTest, in.Kind)
	assert.Equal(t, 1, in.MaxAttempts, "a test delivery sends once")
	assert.Len(t, rcv.requests(), 1)
}

func recordRedelivery(t *testing.T, c *corpus) {
	s := newStack(t, testfixture.WorkerSettings{})
	rcv := newScriptedReceiver(t, scriptedAnswer{status: http.StatusOK})
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	eventID := triggerWithData(t, s.taskQueue, user)
	latestClosedRun(t, workflows.DispatchWorkflowID(eventID))
	original := workflows.DeliveryID(eventID, hook.ID)

	var res struct {
		WorkflowID string `json:"workflowId"`
	}
	path := "/webhooks/" + hook.ID + "/deliveries/" + original + "/redeliver"
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodPost, path, nil, &res))

	h := c.add(t, shapeRedelivery, "delivery", res.WorkflowID, latestClosedRun(t, res.WorkflowID))
	assert.Equal(t, []string{"version", "search attributes", "config", "local Send", "local Complete", "completed"}, historySteps(t, h))
	in := deliverInputOf(t, h)
	assert.Equal(t, delivery.KindRedelivery, in.Kind)
	assert.Equal(t, original, in.RedeliveryOf)
	bodies := rcv.bodies()
	require.Len(t, bodies, 2)
	assert.JSONEq(t, string(bodies[0]), string(bodies[1]), "the original body, sent again")
}

func recordSkipped(t *testing.T, c *corpus) {
	s := newStack(t, testfixture.WorkerSettings{})
	// The first attempt is held at the receiver until the webhook is paused, so the
	// retry finds it off whatever the machine's speed.
	rcv := newScriptedReceiver(t, scriptedAnswer{status: http.StatusInternalServerError, hold: true}, scriptedAnswer{status: http.StatusOK})
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	eventID := triggerWithData(t, s.taskQueue, user)
	rcv.awaitHeld(t)
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPatch, "/webhooks/"+hook.ID, map[string]any{"isActive": false}, nil))
	rcv.release()

	id := workflows.DispatchWorkflowID(eventID)
	h := c.add(t, shapeSkipped, "dispatch", id, latestClosedRun(t, id))
	assert.Equal(t, []string{
		"version", "search attributes", "config", "local ListSubscribers", "search attributes", "memo",
		"local Send failed", "timer 1s", "activity Send", "local Complete", "completed",
	}, historySteps(t, h))
	res := dispatchResultOf(t, h)
	require.NotNil(t, res.Delivery)
	assert.Equal(t, delivery.OutcomeSkipped, res.Delivery.Outcome)
	var d struct {
		Status string `json:"status"`
	}
	require.Equal(t, http.StatusOK, s.call(user, http.MethodGet, "/webhooks/"+hook.ID+"/deliveries/"+workflows.DeliveryID(eventID, hook.ID), nil, &d))
	assert.Equal(t, "skipped", d.Status)
	assert.Len(t, rcv.requests(), 1, "nothing sent to a paused webhook")
}

// recordDatabaseOutage records the two shapes an outage of the worker's database
// leaves: the outcome step of a delivery that was sent just before it (record-retried),
// and a delivery that found the database down before sending (ours). The database is a
// private server, so stopping it disturbs no other test.
func recordDatabaseOutage(t *testing.T, c *corpus) {
	pg := testinfra.StartPrivatePostgres(t)
	db := pg.Open()
	box := testfixture.Box(t)
	cfg := testfixture.WorkerConfig()
	cfg.DBRetryTimeout = 2 * time.Second
	cfg.HTTPTimeout = 15 * time.Second // room for stopping the database while a request is held
	tq := testfixture.StartWorker(t, testfixture.WorkerSettings{Box: box, DB: db, Config: cfg, Logger: logs.Logger()})
	tc := testinfra.Temporal(t)

	sent := newScriptedReceiver(t, scriptedAnswer{status: http.StatusOK, hold: true})
	ours := newScriptedReceiver(t, scriptedAnswer{status: http.StatusOK})
	sentUser, oursUser := newUser(), newUser()
	sentHook := insertWebhook(t, db, box, sentUser, sent.URL, "LOW_STOCK")
	oursHook := insertWebhook(t, db, box, oursUser, ours.URL, "LOW_STOCK")

	sentEvent := triggerWithData(t, tq, sentUser)
	sent.awaitHeld(t)
	pg.Stop()
	sent.release() // answered 200 with the database already gone: only the outcome is left

	// A delivery starting now, as a dispatch's child does, finds the database down.
	data, err := json.Marshal(corpusEventData)
	require.NoError(t, err)
	oursEvent := "evt_ours_" + strings.ReplaceAll(oursUser, "-", "")
	oursID := workflows.DeliveryWorkflowID(oursEvent, oursHook)
	_, err = tc.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: oursID, TaskQueue: tq,
		TypedSearchAttributes: workflows.DeliverySearchAttributes(oursHook, events.LowStock, oursUser),
		Memo:                  workflows.DeliveryMemo("hook", models.URLHost(ours.URL)),
	}, workflows.DeliverWebhookName, workflows.DeliverWebhookInput{
		Identity: delivery.Identity{DeliveryID: workflows.DeliveryID(oursEvent, oursHook), WebhookID: oursHook, Kind: delivery.KindEvent},
		UserID:   oursUser,
		Payload: events.Payload{
			ID: oursEvent, Event: events.LowStock, Timestamp: time.Now().UTC().Format(time.RFC3339),
			Data: data,
		},
	})
	require.NoError(t, err)

	// Up again only once both steps have handed over to activities that failed at least
	// once, however long their local retries last (the outcome step's run for
	// max(WEBHOOK_DB_RETRY_TIMEOUT, 15 s) of workflow time), so the shapes never depend
	// on the machine's speed.
	sentID := workflows.DispatchWorkflowID(sentEvent)
	eventually(t, 90*time.Second, func() bool {
		return pendingActivityAttempt(t, sentID, "Complete") >= 2 && pendingActivityAttempt(t, oursID, "Send") >= 2
	}, "the outcome and the send retried as activities while the database is down")
	pg.Start()

	h := c.add(t, shapeRecordRetried, "dispatch", sentID, latestClosedRun(t, sentID))
	assert.Equal(t, []string{
		"version", "search attributes", "config", "local ListSubscribers", "search attributes", "memo",
		"local Send", "local Complete failed", "activity Complete", "completed",
	}, historySteps(t, h))
	assert.GreaterOrEqual(t, activityAttempts(h, "Complete"), int32(2))
	res := dispatchResultOf(t, h)
	require.NotNil(t, res.Delivery)
	assert.Equal(t, delivery.OutcomeSucceeded, res.Delivery.Outcome)
	assert.Len(t, sent.requests(), 1, "recording the outcome sends nothing again")

	h = c.add(t, shapeOurs, "delivery", oursID, latestClosedRun(t, oursID))
	assert.Equal(t, []string{"version", "search attributes", "config", "local Send failed", "timer 1s", "activity Send", "local Complete", "completed"}, historySteps(t, h))
	assert.Equal(t, activities.ErrTypeDatabase, localFailureType(t, h, "Send"))
	assert.GreaterOrEqual(t, activityAttempts(h, "Send"), int32(2))
	assert.Len(t, ours.requests(), 1, "sent once, when the database was back")

	var status string
	var attempts, failures int
	require.NoError(t, db.NewRaw("SELECT d.status, d.attempts, w.failure_count FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?",
		workflows.DeliveryID(oursEvent, oursHook)).Scan(context.Background(), &status, &attempts, &failures))
	assert.Equal(t, "succeeded", status)
	assert.Equal(t, 1, attempts, "the outage cost the receiver no attempt")
	assert.Equal(t, 0, failures)
	require.NoError(t, db.NewRaw("SELECT status FROM webhook_deliveries WHERE id = ?",
		workflows.DeliveryID(sentEvent, sentHook)).Scan(context.Background(), &status))
	assert.Equal(t, "succeeded", status)
}

// scriptedAnswer is one response of a scriptedReceiver; hold keeps the request open
// until the test releases it.
type scriptedAnswer struct {
	status     int
	retryAfter string
	hold       bool
}

// scriptedReceiver is a receiver that answers its requests in turn from a script,
// repeating the last answer, so a test decides the fate of each attempt.
type scriptedReceiver struct {
	*testfixture.Receiver
	held    chan struct{}
	proceed chan struct{}
}

func newScriptedReceiver(t *testing.T, script ...scriptedAnswer) *scriptedReceiver {
	r := &scriptedReceiver{held: make(chan struct{}, 1), proceed: make(chan struct{})}
	r.Receiver = testfixture.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		a := script[min(n, len(script)-1)]
		if a.hold {
			r.held <- struct{}{}
			select {
			case <-r.proceed:
			case <-time.After(time.Minute): // a failed test must not keep the server from closing
			}
		}
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.WriteHeader(a.status)
	})
	return r
}

// awaitHeld waits until a held request has arrived.
func (r *scriptedReceiver) awaitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-r.held:
	case <-time.After(time.Minute):
		t.Fatal("no request reached the receiver")
	}
}

// release lets the held request be answered.
func (r *scriptedReceiver) release() { close(r.proceed) }

// requests returns the arrival times of the requests so far.
func (r *scriptedReceiver) requests() []time.Time {
	var times []time.Time
	for _, req := range r.Requests() {
		times = append(times, req.At)
	}
	return times
}

func (r *scriptedReceiver) bodies() [][]byte {
	var bodies [][]byte
	for _, req := range r.Requests() {
		bodies = append(bodies, req.Body)
	}
	return bodies
}

// latestClosedRun waits until the workflow's latest run has closed and returns its run id.
func latestClosedRun(t *testing.T, workflowID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	eventually(t, 90*time.Second, func() bool { return closed(ctx, t, workflowID) }, workflowID+" closed")
	desc, err := testinfra.Temporal(t).DescribeWorkflowExecution(ctx, workflowID, "")
	require.NoError(t, err)
	return desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
}

func closed(ctx context.Context, t *testing.T, id string) bool {
	desc, err := testinfra.Temporal(t).DescribeWorkflowExecution(ctx, id, "")
	return err == nil && desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// continueAsNewChain returns the runs that led to lastRunID by continue-as-new, first run first.
func continueAsNewChain(t *testing.T, workflowID, lastRunID string) []string {
	t.Helper()
	runs := []string{lastRunID}
	for {
		first := workflowHistory(t, workflowID, runs[0]).GetEvents()[0]
		prev := first.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if prev == "" {
			return runs
		}
		runs = append([]string{prev}, runs...)
	}
}

// pendingActivityAttempt is the attempt a running workflow's pending activity of that type is
// on, 0 when it has none.
func pendingActivityAttempt(t *testing.T, workflowID, activityType string) int32 {
	desc, err := testinfra.Temporal(t).DescribeWorkflowExecution(context.Background(), workflowID, "")
	if err != nil {
		return 0
	}
	for _, p := range desc.GetPendingActivities() {
		if p.GetActivityType().GetName() == activityType {
			return p.GetAttempt()
		}
	}
	return 0
}

func workflowHistory(t *testing.T, workflowID, runID string) *historypb.History {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := &historypb.History{}
	iter := testinfra.Temporal(t).GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	require.NotEmpty(t, h.Events, workflowID)
	return h
}

// historySteps reads a history as the workflow's decisions in order, in words, leaving
// out the bookkeeping (workflow tasks, activity starts, child starts) that does not change
// with the workflow's code.
func historySteps(t *testing.T, h *historypb.History) []string {
	t.Helper()
	scheduled := map[int64]string{}
	var out []string
	for _, e := range h.GetEvents() {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := e.GetMarkerRecordedEventAttributes()
			switch a.GetMarkerName() {
			case "SideEffect":
				out = append(out, "config")
			case "LocalActivity":
				s := "local " + localActivityType(t, a.GetDetails())
				if a.GetFailure() != nil {
					s += " failed"
				}
				out = append(out, s)
			case "Version":
				out = append(out, "version")
			default:
				out = append(out, "marker "+a.GetMarkerName())
			}
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			out = append(out, "timer "+e.GetTimerStartedEventAttributes().GetStartToFireTimeout().AsDuration().String())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[e.GetEventId()] = e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			out = append(out, "activity "+scheduled[e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()])
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			out = append(out, "activity "+scheduled[e.GetActivityTaskFailedEventAttributes().GetScheduledEventId()]+" failed")
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			out = append(out, "activity "+scheduled[e.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()]+" timed out")
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			out = append(out, "child "+e.GetStartChildWorkflowExecutionInitiatedEventAttributes().GetWorkflowType().GetName())
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			out = append(out, "search attributes")
		case enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
			out = append(out, "memo")
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			out = append(out, "completed")
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			out = append(out, "failed")
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			out = append(out, "continued as new")
		}
	}
	return out
}

func localActivityType(t *testing.T, details map[string]*commonpb.Payloads) string {
	t.Helper()
	var data struct{ ActivityType string }
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(details["data"], &data))
	return data.ActivityType
}

// localFailureType is the error type of the first failed local run of activityType.
func localFailureType(t *testing.T, h *historypb.History, activityType string) string {
	t.Helper()
	for _, e := range h.GetEvents() {
		a := e.GetMarkerRecordedEventAttributes()
		if a.GetMarkerName() == "LocalActivity" && a.GetFailure() != nil && localActivityType(t, a.GetDetails()) == activityType {
			return a.GetFailure().GetApplicationFailureInfo().GetType()
		}
	}
	return ""
}

// activityAttempts is how many times Temporal ran the (last) activity of activityType.
func activityAttempts(h *historypb.History, activityType string) int32 {
	var scheduled int64
	var attempts int32
	for _, e := range h.GetEvents() {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == activityType {
			scheduled = e.GetEventId()
		}
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil && a.GetScheduledEventId() == scheduled {
			attempts = a.GetAttempt()
		}
	}
	return attempts
}

func dispatchResultOf(t *testing.T, h *historypb.History) workflows.DispatchEventResult {
	t.Helper()
	last := h.GetEvents()[len(h.GetEvents())-1]
	var res workflows.DispatchEventResult
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(last.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res))
	return res
}

func deliverInputOf(t *testing.T, h *historypb.History) workflows.DeliverWebhookInput {
	t.Helper()
	var in workflows.DeliverWebhookInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput(), &in))
	return in
}
