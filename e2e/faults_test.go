package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/deliveryworker"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/workflows"
)

// workerProcess is `bin/webhooks worker` as a real child process, so a test can SIGKILL it.
type workerProcess struct {
	t      *testing.T
	env    []string
	cmd    *exec.Cmd
	exited chan struct{}        // closed once cmd has been waited for
	logs   *testinfra.LogBuffer // written by exec's copying goroutine while the test reads it
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

// startWorkerProcess runs the worker against the package's database and dev server.
func startWorkerProcess(t *testing.T, masterKey, taskQueue string, extraEnv ...string) *workerProcess {
	t.Helper()
	return startWorkerProcessOn(t, testinfra.DatabaseURL(t), testinfra.TemporalAddress(t), masterKey, taskQueue, extraEnv...)
}

// startWorkerProcessOn runs the worker against a database and a Temporal server of the
// test's own, which the test may stop and start under it.
func startWorkerProcessOn(t *testing.T, databaseURL, temporalAddress, masterKey, taskQueue string, extraEnv ...string) *workerProcess {
	t.Helper()
	p := &workerProcess{t: t, logs: &testinfra.LogBuffer{}, env: append(os.Environ(),
		"DATABASE_URL="+databaseURL,
		"TEMPORAL_ADDRESS="+temporalAddress,
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
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func (p *workerProcess) start() {
	p.cmd = exec.Command(testinfra.Binary(p.t, "webhooks"), "worker")
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(p.t, p.cmd.Start())
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(p.cmd, p.exited)
}

// running says whether the process is still alive; one that exited on its own is a
// finding for the test.
func (p *workerProcess) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop ends the worker the way an orchestrator does and waits for its last output.
func (p *workerProcess) stop() {
	p.terminate(time.Minute)
}

// terminate sends SIGTERM and waits up to grace for the worker to finish its in-flight
// tasks and exit, then kills it; it reports whether the worker exited in time.
func (p *workerProcess) terminate(grace time.Duration) bool {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
		return true
	case <-time.After(grace):
		p.kill()
		return false
	}
}

func (p *workerProcess) kill() {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.exited
}

func TestWorkerKilledMidRetriesStillDeliversOnce(t *testing.T) {
	masterKey, box := newMasterKey(t)
	tq := "faults-" + uuid.NewString()
	w := startWorkerProcess(t, masterKey, tq)
	s := newAPIStack(t, box, testinfra.Temporal(t), tq)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	rcv.FailFirst(2)
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "CONTRACT_EXPIRING")

	eventID, err := dispatch.NewWebhookDispatchService(testinfra.Temporal(t), tq).Trigger(context.Background(), events.ContractExpiring, dispatch.Event{UserID: user})
	require.NoError(t, err)
	rcv.WaitFor(t, 1, 30*time.Second)
	w.kill() // mid retry sequence: attempt 1 failed, attempt 2 is scheduled
	time.Sleep(time.Second)
	w.start()

	res := deliveryResult(t, eventID, hook.ID)
	assert.Equal(t, delivery.OutcomeSucceeded, res.Outcome, "worker logs:\n%s", w.logs.String())
	reqs := rcv.Requests()
	assert.Len(t, reqs, 3, "two failures and one success: never more than the policy allows")
	assert.LessOrEqual(t, res.Attempts, 3)
	failures, _ := webhookState(t, hook.ID)
	assert.Equal(t, 0, failures)
	for _, r := range reqs {
		verify(t, hook.Secret, r)
	}
}

func TestReceiverDownForTwoAttemptsThenUp(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	// A port with nothing behind it yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	user := newUser()
	hook := s.createWebhook(user, "http://"+addr+"/hook", "WARRANTY_EXPIRING")

	eventID, err := dispatcher(t, s).Trigger(context.Background(), events.WarrantyExpiring, dispatch.Event{UserID: user})
	require.NoError(t, err)
	eventually(t, 30*time.Second, func() bool {
		var attempts int
		_ = testinfra.DB(t).NewRaw("SELECT attempts FROM webhook_deliveries WHERE webhook_id = ?", hook.ID).Scan(context.Background(), &attempts)
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
	assert.Equal(t, delivery.OutcomeSucceeded, res.Outcome)
	assert.Equal(t, 3, res.Attempts)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, got, "delivered once")
}

func TestConcurrentFailuresCountExactly(t *testing.T) {
	const n = 50
	cfg := testfixture.WorkerConfig()
	cfg.RetryMaxAttempts = 1
	cfg.DisableAfterFailures = 0
	s := newStack(t, testfixture.WorkerSettings{Config: cfg})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusBadGateway))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "BOOKING_CANCELLED")
	d := dispatcher(t, s)

	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := d.Trigger(context.Background(), events.BookingCancelled, dispatch.Event{UserID: user})
			assert.NoError(t, err)
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, delivery.OutcomeFailed, deliveryResult(t, id, hook.ID).Outcome)
	}
	failures, active := webhookState(t, hook.ID)
	assert.Equal(t, n, failures)
	assert.True(t, active)
	assert.Len(t, rcv.Requests(), n)
}

func TestAutoDisableAtThreshold(t *testing.T) {
	cfg := testfixture.WorkerConfig()
	cfg.RetryMaxAttempts = 1
	cfg.DisableAfterFailures = 3
	s := newStack(t, testfixture.WorkerSettings{Config: cfg})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
	d := dispatcher(t, s)
	for range 3 {
		id, err := d.Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user})
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
	id, err := d.Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user})
	require.NoError(t, err)
	assert.Equal(t, workflows.DispatchEventResult{}, dispatchResult(t, id))
	assert.Len(t, rcv.Requests(), 3)
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPatch, "/webhooks/"+hook.ID, map[string]any{"isActive": true}, &got))
	assert.True(t, got.IsActive)
	assert.Equal(t, 0, got.FailureCount)
	assert.Nil(t, got.DisabledReason)
}

// fileTemporal is a Temporal server of one test's own that it stops and starts again
// on the same persistence and port (testinfra.RestartableTemporal: a dev server on a
// SQLite file, or the real server on PostgreSQL in the server target).
type fileTemporal struct {
	*testinfra.RestartableTemporal
	t        *testing.T
	hostPort string
}

func startFileTemporal(t *testing.T) *fileTemporal {
	t.Helper()
	r := testinfra.StartRestartableTemporal(t)
	return &fileTemporal{RestartableTemporal: r, t: t, hostPort: r.HostPort()}
}

func (f *fileTemporal) start() { f.Start() }
func (f *fileTemporal) stop()  { f.Stop() }

// dial returns a client of the server that outlives its restarts, with the delivery
// search attributes registered.
func (f *fileTemporal) dial() client.Client {
	f.t.Helper()
	c, err := client.Dial(client.Options{HostPort: f.hostPort, Logger: testinfra.QuietLogger()})
	require.NoError(f.t, err)
	f.t.Cleanup(c.Close)
	require.NoError(f.t, deliveryworker.EnsureSearchAttributes(context.Background(), c, "default"))
	return c
}

func TestTemporalRestartResumesPendingDeliveries(t *testing.T) {
	temporal := startFileTemporal(t)
	c := temporal.dial()

	_, box := newMasterKey(t)
	tq := testfixture.StartWorkerOn(t, c, testfixture.WorkerSettings{Box: box, Logger: logs.Logger()})
	s := newAPIStack(t, box, c, tq)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	rcv.FailFirst(1)
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "ASSET_STATUS_CHANGED")
	eventID, err := dispatch.NewWebhookDispatchService(c, tq).Trigger(context.Background(), events.AssetStatusChanged, dispatch.Event{UserID: user})
	require.NoError(t, err)
	rcv.WaitFor(t, 1, 30*time.Second)

	// Down while the retry is pending, then back on the same file and port.
	temporal.stop()
	time.Sleep(500 * time.Millisecond)
	temporal.start()

	rcv.WaitFor(t, 2, 90*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.DispatchEventResult
	require.NoError(t, c.GetWorkflow(ctx, workflows.DispatchWorkflowID(eventID), "").Get(ctx, &res))
	require.NotNil(t, res.Delivery, "the only subscriber is delivered by the dispatch")
	assert.Equal(t, workflows.DeliveryID(eventID, hook.ID), res.Delivery.DeliveryID)
	assert.Equal(t, delivery.OutcomeSucceeded, res.Delivery.Outcome)
	assert.Len(t, rcv.Requests(), 2)
}
