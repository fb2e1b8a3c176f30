// Package cluster_test runs the service on the production topology (internal/cluster):
// the real Temporal server on PostgreSQL persistence and advanced visibility, three
// worker replicas and two API replicas behind a balancer, each a `webhooks` process, and
// tests what only such a cluster has: a worker replica killed or stopped while the
// others carry on, the Temporal server restarted mid-retry, an API replica killed behind
// the others, and searches answered by PostgreSQL visibility.
package cluster_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/cluster"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

func TestMain(m *testing.M) { os.Exit(testinfra.Main(m)) }

// shutdownTimeout is the replicas' SHUTDOWN_TIMEOUT.
const shutdownTimeout = 10 * time.Second

// stack is the package's production stack, shared by its tests (which run one at a
// time and restart what they stop).
type stack struct {
	c        *cluster.Cluster
	tc       client.Client
	db       *bun.DB
	jwt      []byte
	tq       string
	dispatch *dispatch.WebhookDispatchService
}

var (
	stackOnce sync.Once
	shared    *stack
	stackErr  error
	stopStack func()
)

func startStack(t *testing.T) *stack {
	t.Helper()
	testinfra.NeedsFullSuite(t, "the production stack (real Temporal server, worker and API processes)")
	testinfra.Binary(t, "webhooks")
	testinfra.TemporalServer(t)
	stackOnce.Do(func() { shared, stackErr = newStack() })
	if stackErr != nil {
		t.Fatalf("the production stack is required: %v", stackErr)
	}
	return shared
}

func newStack() (*stack, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := testinfra.RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "webhooks-cluster-")
	if err != nil {
		return nil, err
	}
	_, masterKey, err := testfixture.NewBox()
	if err != nil {
		return nil, err
	}
	suffix := testinfra.RandomHex(6)
	s := &stack{jwt: []byte(testinfra.RandomHex(32)), tq: "cluster-" + suffix}
	apiAddr, _ := testinfra.FreeAddr()
	uiAddr, _ := testinfra.FreeAddr()
	frontend, _ := testinfra.FreeAddr()
	opts := cluster.Options{
		Root: root, StateDir: dir, AdminURL: testinfra.AdminURL(),
		TemporalDatabase: "temporal_cluster_" + suffix, VisibilityDatabase: "temporal_vis_cluster_" + suffix,
		AppDatabase: "webhooks_cluster_" + suffix, FrontendAddr: frontend, UIAddr: uiAddr, APIAddr: apiAddr,
		TemporalLogLevel: "error", APIReplicas: 2, WorkerReplicas: 3,
		// The machine's PostgreSQL allows 100 connections for every test package at once.
		TemporalMaxConns: 4, TemporalVisibilityMaxConns: 2,
		Env: []string{
			"JWT_SECRET=" + string(s.jwt), "WEBHOOK_SECRET_KEY=" + masterKey,
			"TEMPORAL_TASK_QUEUE=" + s.tq, "LOG_LEVEL=warn",
			"WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8",
			"WEBHOOK_RETRY_MAX_ATTEMPTS=5", "WEBHOOK_RETRY_INITIAL_INTERVAL=1s", "WEBHOOK_RETRY_MAX_INTERVAL=4s",
			"WEBHOOK_HTTP_TIMEOUT=3s", "WEBHOOK_CONN_WAIT_TIMEOUT=2s", "WEBHOOK_DB_RETRY_TIMEOUT=2s",
			"SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
			"DATABASE_MAX_OPEN_CONNS=4",
			"API_RATE_LIMIT=10000", "API_RATE_BURST=10000", "WEBHOOK_MAX_PER_USER=1000",
		},
	}
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	s.c = c
	stopStack = func() {
		c.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Temporal.DropDatabases(ctx)
		_ = dropDatabase(ctx, opts.AppDatabase)
		_ = os.RemoveAll(dir)
	}
	testinfra.AtExit(func() {
		if s.db != nil {
			_ = s.db.Close()
		}
		if s.tc != nil {
			s.tc.Close()
		}
		stopStack()
	})
	if s.tc, err = client.DialContext(ctx, client.Options{HostPort: frontend, Logger: testinfra.QuietLogger()}); err != nil {
		return nil, err
	}
	appURL := strings.Replace(testinfra.AdminURL(), "/postgres?", "/"+opts.AppDatabase+"?", 1)
	if s.db, err = models.Open(ctx, appURL, 4); err != nil {
		return nil, err
	}
	s.dispatch = dispatch.NewWebhookDispatchService(s.tc, s.tq)
	return s, nil
}

func dropDatabase(ctx context.Context, name string) error {
	admin, err := models.Open(ctx, testinfra.AdminURL(), 1)
	if err != nil {
		return err
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return err
}

// logsOnFailure prints the tail of every process's log when t fails.
func (s *stack) logsOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		files, _ := filepath.Glob(filepath.Join(s.c.LogDir(), "*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("--- %s ---\n%s", filepath.Base(f), b)
		}
	})
}

// call sends one request through the balancer as user.
func (s *stack) call(t *testing.T, user, method, path string, body any) (int, []byte, error) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.c.APIURL()+path, rd)
	require.NoError(t, err)
	tok, err := api.IssueToken(s.jwt, user, time.Hour, time.Now())
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type hook struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

func (s *stack) createHook(t *testing.T, user, url string, evs ...string) hook {
	t.Helper()
	code, body, err := s.call(t, user, http.MethodPost, "/webhooks", map[string]any{"name": "cluster", "url": url, "events": evs})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var h hook
	require.NoError(t, json.Unmarshal(body, &h))
	return h
}

// sink is a receiver that keeps each request open for latency, verifies signatures,
// and counts requests per delivery id, with the ids in flight at any moment.
type sink struct {
	srv      *httptest.Server
	secret   string
	latency  time.Duration
	mu       sync.Mutex
	got      map[string][]time.Time // delivery id → arrival of each request
	answered map[string]bool
	inFlight map[string]int
	remote   map[string]string // delivery id → client address of its request in flight
	bad      []string
}

func newSink(t *testing.T, latency time.Duration) *sink {
	s := &sink{latency: latency, got: map[string][]time.Time{}, answered: map[string]bool{}, inFlight: map[string]int{}, remote: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("X-AssetsUp-Delivery")
	mac := hmac.New(sha256.New, []byte(s.secret))
	mac.Write(body)
	s.mu.Lock()
	if r.Header.Get("X-AssetsUp-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		s.bad = append(s.bad, id)
	}
	s.got[id] = append(s.got[id], time.Now())
	s.inFlight[id]++
	s.remote[id] = r.RemoteAddr
	s.mu.Unlock()
	time.Sleep(s.latency)
	s.mu.Lock()
	s.inFlight[id]--
	s.answered[id] = true
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *sink) inFlightIDs() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[string]bool{}
	for id, n := range s.inFlight {
		if n > 0 {
			ids[id] = true
		}
	}
	return ids
}

// inFlightFrom maps each request in flight to the client port it came from.
func (s *sink) inFlightFrom() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for id, n := range s.inFlight {
		if n > 0 {
			_, port, _ := net.SplitHostPort(s.remote[id])
			out[id], _ = strconv.Atoi(port)
		}
	}
	return out
}

func (s *sink) answeredIDs() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[string]bool{}
	for id := range s.answered {
		ids[id] = true
	}
	return ids
}

func (s *sink) arrivals() map[string][]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]time.Time, len(s.got))
	for id, ts := range s.got {
		out[id] = append([]time.Time(nil), ts...)
	}
	return out
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// load hands over n events to user's webhook at the given interval, as the backend
// does, and returns the event ids.
func (s *stack) load(t *testing.T, user string, n int, every time.Duration) []string {
	t.Helper()
	ids, err := s.trigger(user, n, every)
	require.NoError(t, err)
	return ids
}

// loadInBackground is load on another goroutine; wait returns when it is done.
func (s *stack) loadInBackground(t *testing.T, user string, n int, every time.Duration) (wait func()) {
	done := make(chan error, 1)
	go func() {
		_, err := s.trigger(user, n, every)
		done <- err
	}()
	return func() {
		t.Helper()
		require.NoError(t, <-done, "handing over events")
	}
}

func (s *stack) trigger(user string, n int, every time.Duration) ([]string, error) {
	ids := make([]string, 0, n)
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		id, err := s.dispatch.Trigger(ctx, events.LowStock, dispatch.Event{ID: fmt.Sprintf("evt_%s_%d", uuid.NewString()[:8], i), UserID: user, Data: map[string]any{"n": i}})
		cancel()
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
		time.Sleep(every)
	}
	return ids, nil
}

// deliveryRow is one row of the delivery log.
type deliveryRow struct {
	ID       string `bun:"id"`
	EventID  string `bun:"event_id"`
	Status   string `bun:"status"`
	Attempts int    `bun:"attempts"`
}

func (s *stack) rows(t *testing.T, webhookID string) map[string]deliveryRow {
	t.Helper()
	var rows []deliveryRow
	err := s.db.NewRaw("SELECT id, event_id, status, attempts FROM webhook_deliveries WHERE webhook_id = ?", webhookID).Scan(context.Background(), &rows)
	require.NoError(t, err)
	out := map[string]deliveryRow{}
	for _, r := range rows {
		out[r.ID] = r
	}
	return out
}

// waitDelivered waits until webhookID has n deliveries, all succeeded.
func (s *stack) waitDelivered(t *testing.T, webhookID string, n int, within time.Duration) map[string]deliveryRow {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rows := s.rows(t, webhookID)
		done := 0
		for _, r := range rows {
			if r.Status == "succeeded" {
				done++
			}
		}
		if done == n {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries succeeded within %s", done, n, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (s *stack) failureCount(t *testing.T, webhookID string) int {
	t.Helper()
	var n int
	require.NoError(t, s.db.NewRaw("SELECT failure_count FROM webhooks WHERE id = ?", webhookID).Scan(context.Background(), &n))
	return n
}

func TestVisibilityIsPostgres(t *testing.T) {
	s := startStack(t)
	s.logsOnFailure(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := s.tc.WorkflowService().GetClusterInfo(ctx, &workflowservice.GetClusterInfoRequest{})
	require.NoError(t, err)
	assert.Contains(t, info.GetPersistenceStore(), "postgres", "persistence store")
	assert.Contains(t, info.GetVisibilityStore(), "postgres", "visibility store")

	rcv := newSink(t, 0)
	user := "user-" + uuid.NewString()
	h := s.createHook(t, user, rcv.srv.URL+"/hook", string(events.LowStock))
	rcv.secret = h.Secret
	other := s.createHook(t, user, rcv.srv.URL+"/other", string(events.LowStock))
	ids := s.load(t, user, 3, 0)
	s.waitDelivered(t, h.ID, len(ids), time.Minute)
	s.waitDelivered(t, other.ID, len(ids), time.Minute)

	// Three events to two webhooks: each webhook's search finds its three delivery runs
	// and none of the other's (advanced visibility on PostgreSQL is eventually
	// consistent, so the count is polled).
	query := fmt.Sprintf("WebhookId = '%s'", h.ID)
	var found []string
	require.Eventually(t, func() bool {
		resp, err := s.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			return false
		}
		found = found[:0]
		for _, ex := range resp.GetExecutions() {
			found = append(found, ex.GetExecution().GetWorkflowId())
		}
		return len(found) == len(ids)
	}, 30*time.Second, 250*time.Millisecond, "search %s", query)
	for _, id := range found {
		assert.Contains(t, id, h.ID, "delivery workflow of the searched webhook")
		assert.NotContains(t, id, other.ID)
	}
	count, err := s.tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query + " AND ExecutionStatus = 'Completed'"})
	require.NoError(t, err)
	assert.EqualValues(t, len(ids), count.GetCount())
}

func TestWebUIServes(t *testing.T) {
	s := startStack(t)
	resp, err := http.Get("http://" + s.c.UIAddr() + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(b), "<html", "the UI's page")
}

// TestWorkerReplicaKilled SIGKILLs one of three worker replicas under load, with
// requests in flight at the receiver: every event arrives, what the dead replica had
// in flight is sent again by the others, and nothing else arrives twice.
func TestWorkerReplicaKilled(t *testing.T) {
	s := startStack(t)
	s.logsOnFailure(t)
	const n = 150
	rcv, h, waitLoaded := s.underLoad(t, n)
	vi, own := busiestWorker(t, s, rcv)
	victim := s.c.Workers[vi]
	victim.Kill()
	killed := time.Now()
	// What the dead replica may have sent without recording: still at the receiver, or
	// answered but not recorded (the log is read after the kill, so nobody else will).
	inFlight := rcv.inFlightIDs()
	rows := s.rows(t, h.ID)
	mayRepeat := map[string]bool{}
	for id := range inFlight {
		mayRepeat[id] = true
	}
	for id := range rcv.answeredIDs() {
		if rows[id].Status != "succeeded" {
			mayRepeat[id] = true
		}
	}
	t.Logf("worker %s killed with %d of its requests in flight at the receiver (%d in all)", victim.Name, len(own), len(inFlight))
	waitLoaded()
	final := s.waitDelivered(t, h.ID, n, 2*time.Minute)

	got := rcv.arrivals()
	assert.Len(t, got, n, "every event arrived")
	assert.Empty(t, rcv.bad, "every request verifiably signed")
	for id, at := range got {
		assert.Equal(t, "succeeded", final[id].Status, "delivery %s", id)
		if len(at) > 1 {
			assert.True(t, mayRepeat[id], "delivery %s arrived %d times outside the killed replica's crash window", id, len(at))
		}
	}
	// Each request the dead replica had in flight is sent again, after the kill, by a
	// live replica.
	for id := range own {
		at := got[id]
		if assert.GreaterOrEqual(t, len(at), 2, "delivery %s, in flight at the killed replica, sent again", id) {
			assert.True(t, at[len(at)-1].After(killed), "delivery %s sent again after the kill", id)
		}
	}
	assert.Zero(t, s.failureCount(t, h.ID), "a crash of ours is not the receiver's failure")
	require.NoError(t, s.c.StartWorker(context.Background(), vi))
}

// underLoad hands over n events to a new webhook whose receiver holds each request
// 400 ms, in the background, and returns once several requests are in flight.
func (s *stack) underLoad(t *testing.T, n int) (*sink, hook, func()) {
	t.Helper()
	rcv := newSink(t, 400*time.Millisecond)
	user := "user-" + uuid.NewString()
	h := s.createHook(t, user, rcv.srv.URL+"/hook", string(events.LowStock))
	rcv.secret = h.Secret
	waitLoaded := s.loadInBackground(t, user, n, 40*time.Millisecond)
	require.Eventually(t, func() bool { return len(rcv.inFlightIDs()) >= 6 && rcv.count() >= 30 }, time.Minute, 20*time.Millisecond, "requests in flight")
	return rcv, h, waitLoaded
}

// busiestWorker is the worker replica with the most requests in flight at rcv (told by
// the local port each request came from), and those requests' delivery ids: a fault
// injected into it is sure to find work in flight.
func busiestWorker(t *testing.T, s *stack, rcv *sink) (int, map[string]bool) {
	t.Helper()
	owners := portOwners(t, s.c.Workers)
	perWorker := map[int]map[string]bool{}
	for id, port := range rcv.inFlightFrom() {
		if i, ok := owners[port]; ok {
			if perWorker[i] == nil {
				perWorker[i] = map[string]bool{}
			}
			perWorker[i][id] = true
		}
	}
	vi := -1
	for i, ids := range perWorker {
		if vi < 0 || len(ids) > len(perWorker[vi]) {
			vi = i
		}
	}
	require.GreaterOrEqual(t, vi, 0, "in-flight requests traced to a worker replica")
	return vi, perWorker[vi]
}

// portOwners maps the local port of each TCP connection a worker replica holds to the
// replica's index, from /proc (the socket inodes among its file descriptors).
func portOwners(t *testing.T, workers []*cluster.Process) map[int]int {
	t.Helper()
	inodes := map[string]int{}
	for i, w := range workers {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", w.Pid()))
		for _, fd := range fds {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", w.Pid(), fd.Name()))
			if err == nil && strings.HasPrefix(link, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = i
			}
		}
	}
	b, err := os.ReadFile("/proc/net/tcp")
	require.NoError(t, err)
	owners := map[int]int{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		i, ok := inodes[f[9]]
		if !ok {
			continue
		}
		_, portHex, _ := strings.Cut(f[1], ":")
		port, err := strconv.ParseInt(portHex, 16, 32)
		require.NoError(t, err)
		owners[int(port)] = i
	}
	return owners
}

// TestWorkerReplicaTerminated sends SIGTERM to a worker replica under load, as a
// rolling deploy does: it exits within SHUTDOWN_TIMEOUT after finishing what it sent,
// and nothing is lost or arrives twice.
func TestWorkerReplicaTerminated(t *testing.T) {
	s := startStack(t)
	s.logsOnFailure(t)
	const n = 150
	rcv, h, waitLoaded := s.underLoad(t, n)
	vi, own := busiestWorker(t, s, rcv)
	victim := s.c.Workers[vi]
	began := time.Now()
	clean := victim.Terminate(shutdownTimeout + 5*time.Second)
	took := time.Since(began)
	t.Logf("worker %s stopped on SIGTERM in %s with %d of its requests in flight", victim.Name, took.Round(time.Millisecond), len(own))
	answered := rcv.answeredIDs()
	for id := range own {
		assert.True(t, answered[id], "delivery %s, in flight at SIGTERM, answered before the replica exited", id)
	}
	assert.True(t, clean, "the replica exits on its own, with status 0")
	assert.Less(t, took, shutdownTimeout+2*time.Second, "within SHUTDOWN_TIMEOUT")
	waitLoaded()
	s.waitDelivered(t, h.ID, n, 2*time.Minute)
	got := rcv.arrivals()
	assert.Len(t, got, n)
	for id, at := range got {
		assert.Len(t, at, 1, "delivery %s arrived once: a graceful stop repeats nothing", id)
	}
	assert.Empty(t, rcv.bad)
	assert.Zero(t, s.failureCount(t, h.ID))
	require.NoError(t, s.c.StartWorker(context.Background(), vi))
}

// TestTemporalServerRestartMidRetry restarts the Temporal server (its state in
// PostgreSQL) while deliveries wait for their next attempt: each one is retried after
// the restart and succeeds once, with exactly the attempts the receiver failed plus one.
func TestTemporalServerRestartMidRetry(t *testing.T) {
	s := startStack(t)
	s.logsOnFailure(t)
	rcv := newSink(t, 0)
	user := "user-" + uuid.NewString()
	h := s.createHook(t, user, rcv.srv.URL+"/hook", string(events.LowStock))
	rcv.secret = h.Secret
	failing := testfixture.NewReceiver(t, testfixture.Status(http.StatusServiceUnavailable))
	user2 := "user-" + uuid.NewString()
	h2 := s.createHook(t, user2, failing.URL+"/hook", string(events.LowStock))

	ids := s.load(t, user2, 10, 0)
	failing.WaitFor(t, len(ids), time.Minute) // every first attempt failed; retries pending
	s.c.Temporal.Stop(30 * time.Second)
	down := time.Now()
	time.Sleep(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, s.c.Temporal.Start(ctx))
	t.Logf("temporal server restarted in %s", time.Since(down).Round(time.Millisecond))
	failing.SetStatus(http.StatusOK)
	final := s.waitDelivered(t, h2.ID, len(ids), 2*time.Minute)
	perDelivery := map[string]int{}
	for _, r := range failing.Requests() {
		perDelivery[r.Header.Get("X-AssetsUp-Delivery")]++
	}
	for id, row := range final {
		assert.Equal(t, perDelivery[id], row.Attempts, "attempts recorded for %s = requests the receiver saw", id)
		assert.GreaterOrEqual(t, row.Attempts, 2, "%s: failed before the restart, succeeded after", id)
	}
	// And the cluster takes new work after the restart.
	s.load(t, user, 3, 0)
	s.waitDelivered(t, h.ID, 3, time.Minute)
}

// TestAPIReplicaKilled kills one API replica while clients keep calling through the
// balancer: no request fails after the kill, and the replica serves again once started.
func TestAPIReplicaKilled(t *testing.T) {
	s := startStack(t)
	s.logsOnFailure(t)
	user := "user-" + uuid.NewString()
	rcv := newSink(t, 0)
	h := s.createHook(t, user, rcv.srv.URL+"/hook", string(events.LowStock))

	var mu sync.Mutex
	var failures []string
	var calls int
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for range 4 {
		clients.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := s.call(t, user, http.MethodGet, "/webhooks/"+h.ID, nil)
				mu.Lock()
				calls++
				if err != nil || code != http.StatusOK {
					failures = append(failures, fmt.Sprintf("%d %v %s", code, err, body))
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	s.c.APIs[0].Kill()
	mu.Lock()
	atKill := len(failures)
	mu.Unlock()
	time.Sleep(3 * time.Second)
	// Writes too, while one replica is down.
	created := s.createHook(t, user, rcv.srv.URL+"/second", string(events.LowStock))
	require.NoError(t, s.c.StartAPI(context.Background(), 0))
	time.Sleep(time.Second)
	close(stop)
	clients.Wait()
	t.Logf("%d calls, %d failed (%d of them by the time the kill returned)", calls, len(failures), atKill)
	// A request the killed replica was answering when it died may fail (one per client
	// at most); every request after that went to the live replica.
	assert.LessOrEqual(t, len(failures), 4, "failures: %v", failures)
	assert.Greater(t, calls, 100)
	code, _, err := s.call(t, user, http.MethodGet, "/webhooks/"+created.ID, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
}
