package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/workflows"
)

// recoveryOf polls a recovery until it has ended, and returns it.
func recoveryOf(t *testing.T, s *stack, user, webhookID, recoveryID string, within time.Duration) api.Recovery {
	t.Helper()
	var r api.Recovery
	eventually(t, within, func() bool {
		r = api.Recovery{}
		code := s.call(user, http.MethodGet, "/webhooks/"+webhookID+"/recoveries/"+recoveryID, nil, &r)
		require.Equal(t, http.StatusOK, code)
		return r.State != "running" && r.State != "canceling"
	}, "the recovery ends")
	return r
}

// failedRows waits until webhookID has n failed deliveries in the log and returns their
// ids with their bodies.
func failedRows(t *testing.T, webhookID string, n int) map[string][]byte {
	t.Helper()
	var rows []struct {
		ID   string `bun:"id"`
		Body []byte `bun:"request_body"`
	}
	eventually(t, 90*time.Second, func() bool {
		rows = nil
		require.NoError(t, testinfra.DB(t).NewRaw(`SELECT id, request_body FROM webhook_deliveries
			WHERE webhook_id = ? AND status = 'failed'`, webhookID).Scan(context.Background(), &rows))
		return len(rows) >= n
	}, fmt.Sprintf("%d failed deliveries logged", n))
	out := map[string][]byte{}
	for _, r := range rows {
		out[r.ID] = r.Body
	}
	return out
}

// byDelivery groups a receiver's requests by their X-AssetsUp-Delivery header.
func byDelivery(reqs []testfixture.Request) map[string][]testfixture.Request {
	out := map[string][]testfixture.Request{}
	for _, r := range reqs {
		id := r.Header.Get("X-AssetsUp-Delivery")
		out[id] = append(out[id], r)
	}
	return out
}

// A receiver down for 40 events, then back. A recovery since before the outage,
// requested twice, redelivers exactly the 40 failed ones, once each, though the worker
// (a real process) is killed in the middle of it; the same request afterwards, and an
// overlapping recovery, redeliver nothing more.
func TestRecoverRedeliversTheFailedOnesOnceThroughAWorkerKill(t *testing.T) {
	const outage = 40
	masterKey, box := newMasterKey(t)
	tq := "recover-" + uuid.NewString()
	w := startWorkerProcess(t, masterKey, tq,
		"WEBHOOK_DISABLE_AFTER_FAILURES=0", // the outage must not switch the webhook off
		"WEBHOOK_RETRY_MAX_ATTEMPTS=2", "WEBHOOK_RETRY_INITIAL_INTERVAL=1s",
		"WEBHOOK_RECOVER_RATE=4", // four a second, then a wait: room to kill the worker between two
	)
	s := newAPIStack(t, box, testinfra.Temporal(t), tq)

	var mu sync.Mutex
	var redelivered []string // X-AssetsUp-Delivery of each redelivery answered, in order
	answered := make(chan struct{}, 100)
	down := true
	rcv := testfixture.NewReceiver(t, func(_ int, rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := down
		mu.Unlock()
		if fail {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rw.WriteHeader(http.StatusOK)
		mu.Lock()
		redelivered = append(redelivered, r.Header.Get("X-AssetsUp-Delivery"))
		mu.Unlock()
		select {
		case answered <- struct{}{}:
		default:
		}
	})
	user := newUser()
	hook := s.createWebhook(user, rcv.URL+"/in", "LOW_STOCK")
	since := time.Now().UTC().Add(-time.Minute)

	ids := handOver(t, s, outage, user)
	failed := failedRows(t, hook.ID, outage)
	require.Len(t, failed, outage)
	mu.Lock()
	down = false
	mu.Unlock()
	// Back up: a delivery after the outage succeeds, and is not recovered.
	after, err := dispatcher(t, s).Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user})
	require.NoError(t, err)
	_ = deliveryResult(t, after, hook.ID)
	until := time.Now().UTC().Add(time.Second)
	drain(answered)
	mu.Lock()
	redelivered = nil
	mu.Unlock()

	body := map[string]any{"since": since.Format(time.RFC3339Nano), "until": until.Format(time.RFC3339Nano), "status": []string{"failed"}}
	var first, second api.Recovery
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/recover", body, &first))
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/recover", body, &second))
	assert.Equal(t, first.ID, second.ID, "the same request names the same recovery")
	assert.Equal(t, workflows.RecoveryWorkflowID(hook.ID, first.ID), first.WorkflowID)

	// The recovery is visible by the webhook's search attribute.
	desc, err := testinfra.Temporal(t).DescribeWorkflowExecution(context.Background(), first.WorkflowID, "")
	require.NoError(t, err)
	assert.Contains(t, desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(), "WebhookId")

	// Kill the worker between two redeliveries, once ten have been answered: while the
	// recovery waits for its next second, with no request in flight (a kill mid-request
	// is the crash window every delivery has, measured by the outage suite).
	for range 10 {
		select {
		case <-answered:
		case <-time.After(60 * time.Second):
			t.Fatalf("redeliveries stalled; worker logs:\n%s", w.logs.String())
		}
	}
	eventually(t, 30*time.Second, func() bool { return waitingOnTimer(t, first.WorkflowID) }, "the recovery waits for its next second")
	w.kill()
	time.Sleep(time.Second)
	w.start()

	r := recoveryOf(t, s, user, hook.ID, first.ID, 2*time.Minute)
	assert.Equal(t, "completed", r.State, "worker logs:\n%s", w.logs.String())
	assert.Equal(t, outage, r.Matched)
	assert.Equal(t, outage, r.Redelivered)
	assert.Equal(t, outage, r.Succeeded)
	assert.Zero(t, r.Failed)
	assert.Zero(t, r.Skipped)

	mu.Lock()
	got := append([]string(nil), redelivered...)
	mu.Unlock()
	want := map[string]bool{}
	for orig := range failed {
		want[activities.RecoveryRedeliveryID(orig)] = true
	}
	counts := map[string]int{}
	for _, id := range got {
		counts[id]++
	}
	assert.Len(t, got, outage, "exactly the failed ones, once each")
	for id, n := range counts {
		assert.True(t, want[id], "%s is no failed delivery's redelivery", id)
		assert.Equal(t, 1, n, "redelivery %s arrived %d times", id, n)
	}
	// Each is in the log as a redelivery of its original, with the same body.
	for orig, origBody := range failed {
		var row struct {
			Kind         string `bun:"kind"`
			RedeliveryOf string `bun:"redelivery_of"`
			Status       string `bun:"status"`
			Body         []byte `bun:"request_body"`
		}
		require.NoError(t, testinfra.DB(t).NewRaw(`SELECT kind, redelivery_of, status, request_body FROM webhook_deliveries WHERE id = ?`,
			activities.RecoveryRedeliveryID(orig)).Scan(context.Background(), &row))
		assert.Equal(t, "redelivery", row.Kind)
		assert.Equal(t, orig, row.RedeliveryOf)
		assert.Equal(t, "succeeded", row.Status)
		assert.Equal(t, origBody, row.Body, "the same body")
	}
	reqs := byDelivery(rcv.Requests())
	for _, id := range ids {
		assert.Len(t, reqs[workflows.DeliveryID(id, hook.ID)], 2, "the outage's two attempts, no more")
	}

	// The same request again answers with the finished recovery; an overlapping one finds
	// everything redelivered already. Neither sends anything.
	var again api.Recovery
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/recover", body, &again))
	assert.Equal(t, first.ID, again.ID)
	assert.Equal(t, "completed", again.State)
	overlap := map[string]any{"since": since.Add(-time.Hour).Format(time.RFC3339Nano), "status": []string{"failed"}}
	var other api.Recovery
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/recover", overlap, &other))
	assert.NotEqual(t, first.ID, other.ID)
	o := recoveryOf(t, s, user, hook.ID, other.ID, time.Minute)
	assert.Equal(t, "completed", o.State)
	assert.Equal(t, outage, o.Matched)
	assert.Equal(t, outage, o.Skipped)
	assert.Zero(t, o.Redelivered)
	time.Sleep(time.Second)
	mu.Lock()
	assert.Len(t, redelivered, outage, "nothing recovered twice")
	mu.Unlock()
	for _, r := range rcv.Requests() {
		verify(t, hook.Secret, r)
	}
}

// One running recovery per webhook; cancelling stops it.
func TestOneRecoveryAtATimeAndCancel(t *testing.T) {
	cfg := testfixture.WorkerConfig()
	cfg.RetryMaxAttempts, cfg.DisableAfterFailures, cfg.RecoverRate = 1, 0, 1 // a second apart: time to look
	s := newStack(t, testfixture.WorkerSettings{Config: cfg})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	handOver(t, s, 6, user)
	failedRows(t, hook.ID, 6)
	rcv.SetStatus(http.StatusOK)

	since := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339Nano)
	var r api.Recovery
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/recover", map[string]any{"since": since}, &r))
	var conflict struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	code := s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/recover", map[string]any{"since": since, "status": []string{"missed"}}, &conflict)
	assert.Equal(t, http.StatusConflict, code)
	assert.Equal(t, "recovery_running", conflict.Error.Code)
	assert.Contains(t, conflict.Error.Message, r.ID)

	rcv.WaitFor(t, 7, 30*time.Second) // six failures, one redelivery
	var canceling api.Recovery
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodDelete, "/webhooks/"+hook.ID+"/recoveries/"+r.ID, nil, &canceling))
	assert.Contains(t, []string{"canceling", "canceled"}, canceling.State)
	ended := recoveryOf(t, s, user, hook.ID, r.ID, 30*time.Second)
	assert.Equal(t, "canceled", ended.State)
	assert.Less(t, ended.Redelivered, 6, "stopped before the end")
	sent := len(rcv.Requests())
	time.Sleep(2 * time.Second)
	assert.Len(t, rcv.Requests(), sent, "nothing sent after the cancel")

	// A second user can neither recover, see, cancel nor read the health of the webhook.
	stranger := newUser()
	var nf struct {
		Error struct{ Code string } `json:"error"`
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/webhooks/" + hook.ID + "/recover", map[string]any{"since": since}},
		{http.MethodGet, "/webhooks/" + hook.ID + "/recoveries/" + r.ID, nil},
		{http.MethodDelete, "/webhooks/" + hook.ID + "/recoveries/" + r.ID, nil},
		{http.MethodGet, "/webhooks/" + hook.ID + "/stats?window=24h", nil},
	} {
		assert.Equal(t, http.StatusNotFound, s.call(stranger, c.method, c.path, c.body, &nf), "%s %s", c.method, c.path)
		assert.Equal(t, "not_found", nf.Error.Code)
	}
	var stats api.Stats
	require.Equal(t, http.StatusOK, s.call(user, http.MethodGet, "/webhooks/"+hook.ID+"/stats?window=1h", nil, &stats))
	assert.Equal(t, 6, stats.Deliveries.Failed)
	assert.Equal(t, ended.Succeeded, stats.Deliveries.Succeeded, "the redeliveries")
}

// A recovery whose workflow an operator terminated does not hold the webhook's one
// running recovery: the next request closes it and starts.
func TestTerminatedRecoveryDoesNotHoldTheWebhook(t *testing.T) {
	cfg := testfixture.WorkerConfig()
	cfg.RetryMaxAttempts, cfg.DisableAfterFailures, cfg.RecoverRate = 1, 0, 0.2 // one every five seconds
	s := newStack(t, testfixture.WorkerSettings{Config: cfg})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	handOver(t, s, 3, user)
	failedRows(t, hook.ID, 3)

	since := time.Now().UTC().Add(-time.Hour)
	var r api.Recovery
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/recover", map[string]any{"since": since.Format(time.RFC3339Nano)}, &r))
	require.NoError(t, testinfra.Temporal(t).TerminateWorkflow(context.Background(), r.WorkflowID, "", "operator"))
	// Recorded long enough ago that a missing workflow is not one still starting.
	_, err := testinfra.DB(t).NewRaw(`UPDATE webhook_recoveries SET created_at = created_at - interval '1 minute' WHERE id = ?`, r.ID).Exec(context.Background())
	require.NoError(t, err)

	var next api.Recovery
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/recover",
		map[string]any{"since": since.Add(time.Minute).Format(time.RFC3339Nano)}, &next))
	assert.NotEqual(t, r.ID, next.ID)
	var old api.Recovery
	require.Equal(t, http.StatusOK, s.call(user, http.MethodGet, "/webhooks/"+hook.ID+"/recoveries/"+r.ID, nil, &old))
	assert.Equal(t, "failed", old.State)
	require.NotNil(t, old.Error)
	assert.Contains(t, *old.Error, "no longer running")
	var dummy api.Recovery
	require.Equal(t, http.StatusAccepted, s.call(user, http.MethodDelete, "/webhooks/"+hook.ID+"/recoveries/"+next.ID, nil, &dummy))
	assert.Equal(t, "canceled", recoveryOf(t, s, user, hook.ID, next.ID, 30*time.Second).State)
}

// A webhook switched off after failures misses 25 events; switched on again with
// recoverMissed, it receives exactly those 25, in the order they happened.
func TestRecoverMissedAfterAutoDisable(t *testing.T) {
	const missed = 25
	cfg := testfixture.WorkerConfig()
	cfg.RetryMaxAttempts, cfg.DisableAfterFailures, cfg.RecoverRate = 1, 3, 50
	s := newStack(t, testfixture.WorkerSettings{Config: cfg})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	for i := range 3 {
		id, err := dispatcher(t, s).Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user, Data: map[string]any{"failed": i}})
		require.NoError(t, err)
		_ = deliveryResult(t, id, hook.ID)
	}
	_, active := webhookState(t, hook.ID)
	require.False(t, active, "switched off after three failures")

	// One at a time, so the order they happened is the order they were handed over.
	var want []string
	for i := range missed {
		id, err := dispatcher(t, s).Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user, Data: map[string]any{"seq": i}})
		require.NoError(t, err)
		dispatchResult(t, id)
		want = append(want, id)
	}
	var n int
	require.NoError(t, testinfra.DB(t).NewRaw(`SELECT count(*) FROM webhook_deliveries WHERE webhook_id = ? AND status = 'missed'`, hook.ID).
		Scan(context.Background(), &n))
	require.Equal(t, missed, n, "each event logged as missed")
	require.Len(t, rcv.Requests(), 3, "nothing sent while off")

	rcv.SetStatus(http.StatusOK)
	var on api.RecoveredWebhook
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPatch, "/webhooks/"+hook.ID, map[string]any{"isActive": true, "recoverMissed": true}, &on))
	assert.True(t, on.IsActive)
	require.NotNil(t, on.Recovery)
	assert.Equal(t, "missed", on.Recovery.Reason)
	assert.Equal(t, []string{"missed"}, on.Recovery.Status)

	r := recoveryOf(t, s, user, hook.ID, on.Recovery.ID, time.Minute)
	assert.Equal(t, "completed", r.State)
	assert.Equal(t, missed, r.Redelivered)
	assert.Equal(t, missed, r.Succeeded)
	reqs := rcv.WaitFor(t, 3+missed, 10*time.Second)
	time.Sleep(time.Second)
	reqs = rcv.Requests()
	require.Len(t, reqs, 3+missed, "exactly the missed ones: the three failures are not resent")
	var got []string
	for _, req := range reqs[3:] {
		verify(t, hook.Secret, req)
		var p events.Payload
		require.NoError(t, json.Unmarshal(req.Body, &p))
		got = append(got, p.ID)
	}
	assert.Equal(t, want, got, "in the order they happened")
}

// waitingOnTimer says whether a workflow's history ends with a timer started: it waits,
// and no worker holds any of its work.
func waitingOnTimer(t *testing.T, workflowID string) bool {
	t.Helper()
	it := testinfra.Temporal(t).GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	var last enumspb.EventType
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		last = ev.GetEventType()
	}
	return last == enumspb.EVENT_TYPE_TIMER_STARTED
}

// handOver hands over n events of LOW_STOCK for user, side by side, and returns their ids.
func handOver(t *testing.T, s *stack, n int, user string) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id, err := dispatcher(t, s).Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user, Data: map[string]any{"n": i}})
			ids[i] = id
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return ids
}

func drain(c chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
