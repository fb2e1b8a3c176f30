package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testenv"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/worker"
	"github.com/assetsup/webhooks/workflows"
)

// workerProcess is `bin/webhooks worker` as a real child process, so a test can SIGKILL it.
type workerProcess struct {
	t    *testing.T
	env  []string
	cmd  *exec.Cmd
	logs *testenv.LogBuffer // written by exec's copying goroutine while the test reads it
}

func newMasterKey(t *testing.T) (string, *secrets.Box) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	b64 := base64.StdEncoding.EncodeToString(b)
	key, err := secrets.ParseKey(1, b64)
	require.NoError(t, err)
	box, err := secrets.NewBox(key)
	require.NoError(t, err)
	return b64, box
}

func startWorkerProcess(t *testing.T, masterKey, taskQueue string, extraEnv ...string) *workerProcess {
	t.Helper()
	p := &workerProcess{t: t, logs: &testenv.LogBuffer{}, env: append(os.Environ(),
		"DATABASE_URL="+testenv.DatabaseURL(t),
		"TEMPORAL_ADDRESS="+testenv.TemporalAddress(t),
		"TEMPORAL_TASK_QUEUE="+taskQueue,
		"WEBHOOK_SECRET_KEY="+masterKey,
		"WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8",
		"WEBHOOK_RETRY_INITIAL_INTERVAL=2s",
		"WEBHOOK_HTTP_TIMEOUT=2s",
		"WEBHOOK_DB_RETRY_TIMEOUT=1s",
		"METRICS_ADDR=127.0.0.1:0",
		"LOG_LEVEL=warn",
	)}
	p.env = append(p.env, extraEnv...) // later entries win
	p.start()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

func (p *workerProcess) start() {
	p.cmd = exec.Command(testenv.Binary(p.t, "webhooks"), "worker")
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(p.t, p.cmd.Start())
}

// stop ends the worker the way an orchestrator does and waits for its last output.
func (p *workerProcess) stop() {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	_ = p.cmd.Wait()
}

func (p *workerProcess) kill() {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.cmd.Wait()
}

// failFirst makes the receiver answer 500 to its next n requests, then 200.
func failFirst(r *receiver, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = http.StatusOK
	r.failFirst = n
}

func TestWorkerKilledMidRetriesStillDeliversOnce(t *testing.T) {
	masterKey, box := newMasterKey(t)
	tq := "faults-" + uuid.NewString()
	w := startWorkerProcess(t, masterKey, tq)
	s := newAPIStack(t, box, testenv.Temporal(t), tq)
	rcv := newReceiver(t, http.StatusOK)
	failFirst(rcv, 2)
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "CONTRACT_EXPIRING")

	eventID, err := dispatch.NewWebhookDispatchService(testenv.Temporal(t), tq).Trigger(context.Background(), events.ContractExpiring, dispatch.Payload{UserID: user})
	require.NoError(t, err)
	rcv.waitFor(t, 1, 30*time.Second)
	w.kill() // mid retry sequence: attempt 1 failed, attempt 2 is scheduled
	time.Sleep(time.Second)
	w.start()

	res := deliveryResult(t, eventID, hook.ID)
	assert.Equal(t, workflows.OutcomeSucceeded, res.Outcome, "worker logs:\n%s", w.logs.String())
	reqs := rcv.all()
	assert.Len(t, reqs, 3, "two failures and one success: never more than the policy allows")
	assert.LessOrEqual(t, res.Attempts, 3)
	failures, _ := webhookState(t, hook.ID)
	assert.Equal(t, 0, failures)
	for _, r := range reqs {
		verify(t, hook.Secret, r)
	}
}

func TestReceiverDownForTwoAttemptsThenUp(t *testing.T) {
	s := newStack(t, testenv.WorkerSettings{})
	// A port with nothing behind it yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	user := newUser()
	hook := s.createWebhook(user, "http://"+addr+"/hook", "WARRANTY_EXPIRING")

	eventID, err := dispatcher(t, s).Trigger(context.Background(), events.WarrantyExpiring, dispatch.Payload{UserID: user})
	require.NoError(t, err)
	eventually(t, 30*time.Second, func() bool {
		var attempts int
		_ = testenv.DB(t).NewRaw("SELECT attempts FROM webhook_deliveries WHERE webhook_id = ?", hook.ID).Scan(context.Background(), &attempts)
		return attempts >= 2
	}, "two refused attempts recorded")

	var mu sync.Mutex
	got := 0
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	res := deliveryResult(t, eventID, hook.ID)
	assert.Equal(t, workflows.OutcomeSucceeded, res.Outcome)
	assert.Equal(t, 3, res.Attempts)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, got, "delivered once")
}

func TestConcurrentFailuresCountExactly(t *testing.T) {
	const n = 50
	settings := testenv.WorkerSettings{Workflows: testenv.DefaultWorkflowConfig(), Sender: testenv.DefaultSenderConfig()}
	settings.Workflows.Retry.MaxAttempts = 1
	settings.Sender.DisableAfterFailures = 0
	s := newStack(t, settings)
	rcv := newReceiver(t, http.StatusBadGateway)
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "BOOKING_CANCELLED")
	d := dispatcher(t, s)

	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := d.Trigger(context.Background(), events.BookingCancelled, dispatch.Payload{UserID: user})
			assert.NoError(t, err)
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, workflows.OutcomeFailed, deliveryResult(t, id, hook.ID).Outcome)
	}
	failures, active := webhookState(t, hook.ID)
	assert.Equal(t, n, failures)
	assert.True(t, active)
	assert.Len(t, rcv.all(), n)
}

func TestAutoDisableAtThreshold(t *testing.T) {
	settings := testenv.WorkerSettings{Workflows: testenv.DefaultWorkflowConfig(), Sender: testenv.DefaultSenderConfig()}
	settings.Workflows.Retry.MaxAttempts = 1
	settings.Sender.DisableAfterFailures = 3
	s := newStack(t, settings)
	rcv := newReceiver(t, http.StatusInternalServerError)
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	d := dispatcher(t, s)
	for range 3 {
		id, err := d.Trigger(context.Background(), events.LowStock, dispatch.Payload{UserID: user})
		require.NoError(t, err)
		deliveryResult(t, id, hook.ID)
	}
	var got struct {
		IsActive       bool    `json:"isActive"`
		FailureCount   int     `json:"failureCount"`
		DisabledReason *string `json:"disabledReason"`
		DisabledAt     *string `json:"disabledAt"`
	}
	require.Equal(t, http.StatusOK, s.call(user, http.MethodGet, "/webhooks/"+hook.ID, nil, &got))
	assert.False(t, got.IsActive)
	assert.Equal(t, 3, got.FailureCount)
	require.NotNil(t, got.DisabledReason)
	assert.Contains(t, *got.DisabledReason, "3 consecutive failed deliveries")
	assert.NotNil(t, got.DisabledAt)

	// Switched off: the next event is not sent. Re-enabling resets the count.
	id, err := d.Trigger(context.Background(), events.LowStock, dispatch.Payload{UserID: user})
	require.NoError(t, err)
	assert.Equal(t, workflows.DispatchEventResult{}, dispatchResult(t, id))
	assert.Len(t, rcv.all(), 3)
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPatch, "/webhooks/"+hook.ID, map[string]any{"isActive": true}, &got))
	assert.True(t, got.IsActive)
	assert.Equal(t, 0, got.FailureCount)
	assert.Nil(t, got.DisabledReason)
}

func TestTemporalRestartResumesPendingDeliveries(t *testing.T) {
	// A server of this test's own, on a file store, so it can be restarted.
	cli, err := testenv.TemporalCLI()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hostPort := ln.Addr().String()
	require.NoError(t, ln.Close())
	dbFile := filepath.Join(t.TempDir(), "temporal.db")
	start := func() *testsuite.DevServer {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
			ExistingPath: cli, DBFilename: dbFile, LogLevel: "error", Stdout: io.Discard, Stderr: io.Discard,
			ClientOptions: &client.Options{HostPort: hostPort, Namespace: "default", Logger: testenv.QuietLogger()},
		})
		require.NoError(t, err)
		return srv
	}
	srv := start()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Stop()
		}
	})
	c, err := client.Dial(client.Options{HostPort: hostPort, Logger: testenv.QuietLogger()})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	require.NoError(t, worker.EnsureSearchAttributes(context.Background(), c, "default"))

	_, box := newMasterKey(t)
	tq := testenv.StartWorkerOn(t, c, testenv.WorkerSettings{Box: box})
	s := newAPIStack(t, box, c, tq)
	rcv := newReceiver(t, http.StatusOK)
	failFirst(rcv, 1)
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "ASSET_STATUS_CHANGED")
	eventID, err := dispatch.NewWebhookDispatchService(c, tq).Trigger(context.Background(), events.AssetStatusChanged, dispatch.Payload{UserID: user})
	require.NoError(t, err)
	rcv.waitFor(t, 1, 30*time.Second)

	// Down while the retry is pending, then back on the same file and port.
	require.NoError(t, srv.Stop())
	stopped = true
	time.Sleep(500 * time.Millisecond)
	srv = start()
	stopped = false

	rcv.waitFor(t, 2, 90*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.DispatchEventResult
	require.NoError(t, c.GetWorkflow(ctx, workflows.DispatchWorkflowID(eventID), "").Get(ctx, &res))
	require.NotNil(t, res.Delivery, "the only subscriber is delivered by the dispatch")
	assert.Equal(t, workflows.DeliveryID(eventID, hook.ID), res.Delivery.DeliveryID)
	assert.Equal(t, workflows.OutcomeSucceeded, res.Delivery.Outcome)
	assert.Len(t, rcv.all(), 2)
}

func TestDatabaseRestartLosesNoDelivery(t *testing.T) {
	const n = 10
	pg := testenv.StartPrivatePostgres(t)
	db := pg.Open()
	_, box := newMasterKey(t)
	tq := testenv.StartWorker(t, testenv.WorkerSettings{Box: box, DB: db})

	var mu sync.Mutex
	seen := map[string]int{}
	slow := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // keeps deliveries in flight across the restart
		mu.Lock()
		seen[r.Header.Get("X-AssetsUp-Delivery")]++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	user := newUser()
	hookID := insertWebhook(t, db, box, user, slow, "LOW_STOCK")

	d := dispatch.NewWebhookDispatchService(testenv.Temporal(t), tq)
	ids := make([]string, n)
	for i := range n {
		id, err := d.Trigger(context.Background(), events.LowStock, dispatch.Payload{UserID: user})
		require.NoError(t, err)
		ids[i] = id
		if i == n/2 {
			pg.Restart()
		}
	}
	for _, id := range ids {
		assert.Equal(t, workflows.OutcomeSucceeded, deliveryResult(t, id, hookID).Outcome)
	}
	mu.Lock()
	assert.Len(t, seen, n, "every event delivered")
	for id, count := range seen {
		assert.Equal(t, 1, count, "delivery %s sent once", id)
	}
	mu.Unlock()
	var succeeded, failures int
	require.NoError(t, db.NewRaw("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = ? AND status = 'succeeded' AND completed_at IS NOT NULL", hookID).Scan(context.Background(), &succeeded))
	require.NoError(t, db.NewRaw("SELECT failure_count FROM webhooks WHERE id = ?", hookID).Scan(context.Background(), &failures))
	assert.Equal(t, n, succeeded)
	assert.Equal(t, 0, failures)
}
