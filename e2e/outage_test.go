package e2e_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/workflows"
)

// The outage suite runs the service as deployed (the worker binary as a child process,
// the API's real router) on infrastructure of each case's own: a PostgreSQL server and a
// Temporal dev server on a SQLite file, so a case can take either away and bring it
// back with its state. Each case has events in flight for several users, delivered
// inline (one subscriber) and by children (several), to receivers that always answer
// 200, always 500, or 500 once per delivery and then 200. Whatever the outage, every
// event must reach every healthy receiver exactly once, a failing receiver must get
// exactly the attempts its delivery started with, and nothing may be left open.

// outageSettings is the worker's configuration in every case: fast retries, and failing
// receivers never switched off (WEBHOOK_DISABLE_AFTER_FAILURES=0), so each of their
// deliveries makes all its attempts and the failure count can be checked exactly.
var outageSettings = []string{
	"WEBHOOK_RETRY_MAX_ATTEMPTS=3",
	"WEBHOOK_RETRY_INITIAL_INTERVAL=2s",
	"WEBHOOK_RETRY_MAX_INTERVAL=1m",
	"WEBHOOK_RETRY_BACKOFF_COEFFICIENT=2",
	"WEBHOOK_HTTP_TIMEOUT=2s",
	"WEBHOOK_CONN_WAIT_TIMEOUT=2s",
	"WEBHOOK_DB_RETRY_TIMEOUT=2s",
	"WEBHOOK_RECORD_RETRY_MAX_INTERVAL=5s",
	"WEBHOOK_MAX_EVENT_DATA_BYTES=262144",
	"WEBHOOK_DISPATCH_CHILDREN_PER_RUN=500",
	"WEBHOOK_DISPATCH_INLINE_SINGLE=true",
	"WEBHOOK_FIRST_ATTEMPT_LOCAL=true",
	"WEBHOOK_DISABLE_AFTER_FAILURES=0",
	"WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8",
}

// rolledSettings changes every setting workflow code reads, for the rolling restart.
var rolledSettings = []string{
	"WEBHOOK_RETRY_MAX_ATTEMPTS=4",
	"WEBHOOK_RETRY_INITIAL_INTERVAL=1s",
	"WEBHOOK_RETRY_MAX_INTERVAL=3s",
	"WEBHOOK_RETRY_BACKOFF_COEFFICIENT=1.5",
	"WEBHOOK_HTTP_TIMEOUT=3s",
	"WEBHOOK_CONN_WAIT_TIMEOUT=3s",
	"WEBHOOK_DB_RETRY_TIMEOUT=3s",
	"WEBHOOK_RECORD_RETRY_MAX_INTERVAL=4s",
	"WEBHOOK_MAX_EVENT_DATA_BYTES=4096", // the events carry well under 200 bytes
	"WEBHOOK_DISPATCH_CHILDREN_PER_RUN=200",
	"WEBHOOK_DISPATCH_INLINE_SINGLE=false",
	"WEBHOOK_FIRST_ATTEMPT_LOCAL=false",
}

// receiverLatency keeps each request open at the receiver for a while, as real
// receivers do, so the kills and the SIGTERM find requests in flight.
const receiverLatency = 200 * time.Millisecond

const fanOutSubscribers = 1000

func TestOutage(t *testing.T) {
	tests := []struct {
		name string
		give func(oc *outageCase)
	}{
		{name: "postgres-down", give: postgresDown},
		{name: "temporal-down", give: temporalDown},
		{name: "worker-killed-3x", give: workerKilledThrice},
		{name: "rolling-restart", give: rollingRestart},
	}
	var table outageTable
	started := time.Now()
	// All at once, whatever -parallel says: each case has servers of its own, and most of
	// a case is waiting out its outage.
	var cases sync.WaitGroup
	for _, tt := range tests {
		cases.Go(func() {
			t.Run(tt.name, func(t *testing.T) {
				oc := newOutageCase(t, tt.name)
				tt.give(oc)
				table.add(oc.finish())
			})
		})
	}
	cases.Wait()
	table.print(os.Stdout, time.Since(started))
}

// postgresDown stops PostgreSQL for E2E_PG_OUTAGE while deliveries wait between attempts
// and events keep being handed over.
func postgresDown(oc *outageCase) {
	outage := envDuration(oc.t, "E2E_PG_OUTAGE", 120*time.Second)
	oc.startWorker("A")
	before := oc.round("before")
	// Stopped while failing and flaky deliveries wait for their next attempt.
	midRetry := oc.waitMidRetry(before, true)
	oc.pg.Stop()
	down := time.Now()
	oc.logf("postgres stopped with %d deliveries between attempts", midRetry)
	oc.round("down-early")
	sleepUntil(down.Add(outage / 2))
	oc.round("down-late")
	sleepUntil(down.Add(outage))
	oc.pg.Start()
	oc.logf("postgres started after %s", time.Since(down).Round(time.Second))

	oc.firstRequestsSucceed("after the outage")
	oc.round("after")

	// A short restart with no request in between, so the API's pool still holds
	// connections that died with the server when the next request comes.
	oc.poller.pause()
	oc.warmAPIPool()
	oc.pg.Restart()
	oc.firstRequestsSucceed("after a restart")
	oc.poller.resume()
	oc.round("after-restart")
}

// firstRequestsSucceed asserts that the API's first requests after PostgreSQL came back
// are answered: a connection that died with the server must not reach a caller.
func (oc *outageCase) firstRequestsSucceed(when string) {
	user, hook := oc.targets[0].user, oc.targets[0].hook
	for _, path := range []string{"/webhooks", "/webhooks/" + hook + "/deliveries"} {
		code, body := apiDo(oc.api, user, http.MethodGet, path)
		assert.Less(oc.t, code, 500, "first GET %s %s: %s", path, when, body)
	}
}

// warmAPIPool leaves several idle connections in the API's pool.
func (oc *outageCase) warmAPIPool() {
	var wg sync.WaitGroup
	for _, tg := range oc.targets[:4] {
		wg.Go(func() {
			code, body := apiDo(oc.api, tg.user, http.MethodGet, "/webhooks/"+tg.hook+"/deliveries")
			assert.Equal(oc.t, http.StatusOK, code, "%s", body)
		})
	}
	wg.Wait()
}

// temporalDown stops the Temporal server for E2E_TEMPORAL_OUTAGE with retries pending and
// events handed over just before and during, then starts it on the same file.
func temporalDown(oc *outageCase) {
	outage := envDuration(oc.t, "E2E_TEMPORAL_OUTAGE", 60*time.Second)
	oc.startWorker("A")
	before := oc.round("before")
	oc.round("just-before")
	midRetry := oc.waitMidRetry(before, true)
	oc.temporal.stop()
	down := time.Now()
	oc.logf("temporal stopped with %d deliveries between attempts", midRetry)
	var during sync.WaitGroup
	during.Go(func() { oc.round("down-early") })
	sleepUntil(down.Add(outage / 2))
	during.Go(func() { oc.round("down-late") })
	sleepUntil(down.Add(outage))
	oc.temporal.start()
	oc.logf("temporal started after %s", time.Since(down).Round(time.Second))
	during.Wait() // the callers' retries get through now
	oc.round("after")
}

// workerKilledThrice SIGKILLs the worker three times in a row under load, restarting it
// after each kill.
func workerKilledThrice(oc *outageCase) {
	w := oc.startWorker("A")
	stopLoad := oc.load(1500 * time.Millisecond)
	time.Sleep(4 * time.Second)
	for range 3 {
		oc.kill(w)
		time.Sleep(1500 * time.Millisecond)
		w.start()
		time.Sleep(4 * time.Second)
	}
	stopLoad()
}

// rollingRestart replaces worker A by worker B, started with every workflow-read setting
// changed, while deliveries are mid-retry and a fan-out to 1,000 subscribers is mid-run.
func rollingRestart(oc *outageCase) {
	a := oc.startWorker("A")
	before := oc.round("before")
	oc.waitFirstAttempts(before, modeHealthy, modeFailing, modeFlaky)
	fanEvent := oc.fanOut("fan")
	eventually(oc.t, 2*time.Minute, func() bool { return oc.fan.okCount() >= 50 }, "fan-out under way")
	// Handed over behind the fan-out's children, so their retries are still to come when
	// A goes; their first attempts ran under A, whose attempts (3) their runs recorded.
	before = append(before, oc.round("before-fan")...)
	oc.waitFirstAttempts(before, modeHealthy, modeFailing, modeFlaky)
	midRetry := oc.waitMidRetry(before, false)
	fanned := oc.fan.okCount()
	assert.Less(oc.t, fanned, fanOutSubscribers, "the fan-out is mid-run at the rollover")
	oc.logf("rolling over with %d deliveries between attempts and the fan-out at %d of %d", midRetry, fanned, fanOutSubscribers)
	b := oc.startWorker("B", rolledSettings...)
	oc.waitPolling(b)
	oc.round("overlap")
	// SIGTERM while A still has requests out: B has only just begun to take tasks.
	eventually(oc.t, time.Minute, func() bool { return oc.fan.inFlightCount() >= 4 }, "fan-out requests in flight")
	oc.terminate(a)
	after := oc.round("after")

	// The rollover really changed what runs record: before it A's attempts, after it B's.
	oc.settle()
	recorded := oc.recordedConfigs()
	for _, ev := range before {
		for _, d := range ev.deliveries {
			if cfg, ok := recorded[d.id]; assert.True(oc.t, ok, "configuration recorded for %s", d.id) {
				assert.Equal(oc.t, 3, cfg.Retry.MaxAttempts, "delivery %s started under A", d.id)
				assert.True(oc.t, cfg.InlineSingleDelivery && cfg.FirstAttemptLocal, "delivery %s started under A", d.id)
			}
		}
	}
	for _, ev := range after {
		for _, d := range ev.deliveries {
			if cfg, ok := recorded[d.id]; assert.True(oc.t, ok, "configuration recorded for %s", d.id) {
				assert.Equal(oc.t, 4, cfg.Retry.MaxAttempts, "delivery %s started under B", d.id)
				assert.False(oc.t, cfg.InlineSingleDelivery || cfg.FirstAttemptLocal, "delivery %s started under B", d.id)
			}
		}
	}

	// The fan-out's runs: the one under way at the rollover kept A's 500 children per
	// run when B replayed it, and the runs B started took B's 200.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.DispatchEventResult
	if assert.NoError(oc.t, oc.c.GetWorkflow(ctx, workflows.DispatchWorkflowID(fanEvent.id), "").Get(ctx, &res)) {
		assert.Equal(oc.t, fanOutSubscribers, res.Started+res.Duplicates, "every subscriber's delivery started once: %+v", res)
	}
	perRun := map[int]int{}
	for _, r := range oc.scan(oc.workflows(fmt.Sprintf("WorkflowId = %q", workflows.DispatchWorkflowID(fanEvent.id)))) {
		if assert.NotNil(oc.t, r.config, "fan-out run %s recorded its configuration", r.ex.runID) {
			perRun[r.config.ChildrenPerRun]++
		}
	}
	assert.Positive(oc.t, perRun[500], "fan-out runs under A's setting: %v", perRun)
	assert.Positive(oc.t, perRun[200], "fan-out runs under B's setting: %v", perRun)
	oc.logf("fan-out runs by children per run: %v", perRun)
}

// sinkMode is how a receiver answers.
type sinkMode int

const (
	modeHealthy sinkMode = iota // always 200
	modeFailing                 // always 500
	modeFlaky                   // 500 to the first request of each delivery, then 200
)

func (m sinkMode) String() string {
	return [...]string{"healthy", "failing", "flaky"}[m]
}

// sink is a receiver that counts what it gets per delivery id (X-AssetsUp-Delivery) and
// checks every signature. Webhooks point at /h/<token>, the token naming their secret.
type sink struct {
	srv     *httptest.Server
	mode    sinkMode
	latency time.Duration

	mu       sync.Mutex
	secrets  map[string]string // token → signing secret
	posts    map[string]int    // delivery id → whole requests received
	oks      map[string]int    // delivery id → requests answered 2xx
	inFlight map[string]int    // delivery id → requests received and not yet answered
	signed   int
	badSig   []string
	torn     int // requests whose body never arrived whole
	// watched collects, while not nil, the delivery ids in flight at any moment: while a
	// worker stops.
	watched map[string]bool
}

func newSink(t *testing.T, mode sinkMode, latency time.Duration) *sink {
	s := &sink{mode: mode, latency: latency, secrets: map[string]string{}, posts: map[string]int{},
		oks: map[string]int{}, inFlight: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// url registers secret under a fresh token and returns the webhook URL naming it.
func (s *sink) url(token, secret string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[token] = secret
	return s.srv.URL + "/h/" + token
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.mu.Lock()
		s.torn++
		s.mu.Unlock()
		return
	}
	id := r.Header.Get("X-AssetsUp-Delivery")
	s.mu.Lock()
	s.posts[id]++
	status := http.StatusOK
	if s.mode == modeFailing || (s.mode == modeFlaky && s.posts[id] == 1) {
		status = http.StatusInternalServerError
	}
	if status < 300 {
		s.oks[id]++
	}
	secret, known := s.secrets[strings.TrimPrefix(r.URL.Path, "/h/")]
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if known && r.Header.Get("X-AssetsUp-Signature") == "sha256="+hex.EncodeToString(mac.Sum(nil)) {
		s.signed++
	} else {
		s.badSig = append(s.badSig, id)
	}
	s.inFlight[id]++
	if s.watched != nil {
		s.watched[id] = true
	}
	s.mu.Unlock()

	time.Sleep(s.latency)
	w.WriteHeader(status)
	s.mu.Lock()
	s.inFlight[id]--
	s.mu.Unlock()
}

// watch starts collecting the delivery ids in flight, those now and those to come.
func (s *sink) watch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watched = map[string]bool{}
	for id, n := range s.inFlight {
		if n > 0 {
			s.watched[id] = true
		}
	}
}

// unwatch stops collecting and returns what was in flight meanwhile.
func (s *sink) unwatch() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watched
	s.watched = nil
	return w
}

func (s *sink) inFlightCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.inFlight {
		n += c
	}
	return n
}

func (s *sink) okCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.oks)
}

// sinkCounts is what one delivery id got at its receiver.
type sinkCounts struct{ posts, oks, inFlight int }

func (s *sink) counts() map[string]sinkCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]sinkCounts, len(s.posts))
	for id, n := range s.posts {
		out[id] = sinkCounts{posts: n, oks: s.oks[id], inFlight: s.inFlight[id]}
	}
	return out
}

// outageHook is one webhook of the plan: whose it is, how its receiver answers, and
// the events it subscribes to.
type outageHook struct {
	user   int
	mode   sinkMode
	events []events.NotificationEvent
}

// outagePlan gives three users single-subscriber events (delivered inline) and
// multi-subscriber ones (children), to healthy, failing and flaky receivers. One round
// hands over one event of each (user, event) pair: 9 events, 13 deliveries.
var outagePlan = []outageHook{
	{user: 0, mode: modeHealthy, events: []events.NotificationEvent{events.LowStock, events.AssetTransferred}},
	{user: 0, mode: modeFailing, events: []events.NotificationEvent{events.AssetTransferred, events.WarrantyExpiring}},
	{user: 0, mode: modeFlaky, events: []events.NotificationEvent{events.MaintenanceDue}},
	{user: 1, mode: modeHealthy, events: []events.NotificationEvent{events.BookingConfirmed}},
	{user: 1, mode: modeFlaky, events: []events.NotificationEvent{events.BookingConfirmed, events.LowStock}},
	{user: 1, mode: modeFailing, events: []events.NotificationEvent{events.WorkOrderAssigned}},
	{user: 2, mode: modeHealthy, events: []events.NotificationEvent{events.CheckoutOverdue}},
	{user: 2, mode: modeHealthy, events: []events.NotificationEvent{events.CheckoutOverdue}},
	{user: 2, mode: modeFailing, events: []events.NotificationEvent{events.CheckoutOverdue}},
	{user: 2, mode: modeFlaky, events: []events.NotificationEvent{events.ContractExpiring}},
}

// hook is a created webhook.
type hook struct {
	id   string
	user string
	sink *sink
}

// expectedDelivery is one (event, webhook) pair the service owes a delivery.
type expectedDelivery struct {
	id   string
	hook *hook
	mode sinkMode
}

// sentEvent is an event the test handed over (or was handing over) and what it owes.
type sentEvent struct {
	id         string
	event      events.NotificationEvent
	user       string
	deliveries []expectedDelivery
}

type pollTarget struct{ user, hook string }

// outageCase is one case's service, infrastructure and bookkeeping.
type outageCase struct {
	t            *testing.T
	name         string
	started      time.Time
	pg           *testinfra.PrivatePostgres
	db           *bun.DB       // the test's own view of the case's database
	temporal     *fileTemporal // nil when the case does not restart Temporal (server target)
	temporalAddr string
	c            client.Client
	tq           string
	masterKey    string
	api          *stack
	dispatch     *dispatch.WebhookDispatchService

	sinks   map[sinkMode]*sink
	fan     *sink // the fan-out user's 1,000 webhooks
	probe   *sink // test deliveries from the API poller, kept out of the counts
	users   []string
	pairs   []sentEvent // one per (user, event) of the plan, without an id
	targets []pollTarget
	poller  *apiPoller
	workers []*workerProcess
	stopped map[*workerProcess]bool // terminated on purpose

	mu             sync.Mutex
	events         []sentEvent
	triggerRetries int
	allowDup       map[string]int  // delivery id → duplicates a kill's crash window explains
	allowLost      map[string]int  // delivery id → attempts claimed by a killed worker, never sent
	testWindow     map[string]bool // test deliveries caught in a kill's crash window
	inFlightAtTerm map[string]bool // delivery ids in flight at a receiver while a worker stopped on SIGTERM
	inFlightAtKill map[string]bool // sent, unrecorded and still at a receiver when a worker was killed
}

func newOutageCase(t *testing.T, name string) *outageCase {
	oc := &outageCase{t: t, name: name, started: time.Now(), allowDup: map[string]int{}, allowLost: map[string]int{},
		testWindow: map[string]bool{}, inFlightAtTerm: map[string]bool{}, inFlightAtKill: map[string]bool{},
		stopped: map[*workerProcess]bool{}}
	oc.pg = testinfra.StartPrivatePostgres(t)
	oc.db = oc.pg.Open()
	if name == "temporal-down" || testinfra.Target() == testinfra.TargetDev {
		oc.temporal = startFileTemporal(t)
		oc.c, oc.temporalAddr = oc.temporal.dial(), oc.temporal.hostPort
	} else {
		// The real server holds a few dozen PostgreSQL connections: the cases that do
		// not restart it share the package's, on task queues of their own.
		oc.c, oc.temporalAddr = testinfra.Temporal(t), testinfra.TemporalAddress(t)
	}
	var box *secrets.Box
	oc.masterKey, box = newMasterKey(t)
	oc.tq = "outage-" + name + "-" + uuid.NewString()
	oc.dispatch = dispatch.NewWebhookDispatchService(oc.c, oc.tq)

	// The API's own pool, as `webhooks api` opens it, so it meets the outages too.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	apiDB, err := models.Open(ctx, oc.pg.URL("postgres"), 10)
	require.NoError(t, err)
	t.Cleanup(func() { _ = apiDB.Close() })
	oc.api = &stack{t: t, box: box, taskQueue: oc.tq, router: api.NewRouter(api.Deps{
		DB: apiDB, Temporal: oc.c, Box: box, Policy: netguard.NewPolicy(true, nil), Logger: logs.Logger(),
		Config: api.Config{
			JWTSecret: jwtSecret, MaxBodyBytes: 64 << 10, MaxWebhooksPerUser: 2000, TaskQueue: oc.tq,
			TestTimeout: 5 * time.Second, TemporalTimeout: 2 * time.Second, SecretGrace: time.Hour,
			RateLimit: 10000, RateBurst: 10000,
		},
	})}

	oc.sinks = map[sinkMode]*sink{}
	for _, m := range []sinkMode{modeHealthy, modeFailing, modeFlaky} {
		oc.sinks[m] = newSink(t, m, receiverLatency)
	}
	// Slow enough that the fan-out keeps requests in flight on every worker, so the
	// rolling restart's SIGTERM finds some on the worker it stops.
	oc.fan = newSink(t, modeHealthy, time.Second)
	oc.probe = newSink(t, modeHealthy, 0)
	for range 3 {
		oc.users = append(oc.users, newUser())
	}
	type pair struct {
		user  string
		event events.NotificationEvent
	}
	subscribers := map[pair][]expectedDelivery{}
	var order []pair
	for _, p := range outagePlan {
		h := oc.createHook(oc.users[p.user], oc.sinks[p.mode], p.events...)
		oc.targets = append(oc.targets, pollTarget{user: h.user, hook: h.id})
		for _, ev := range p.events {
			k := pair{user: h.user, event: ev}
			if _, ok := subscribers[k]; !ok {
				order = append(order, k)
			}
			subscribers[k] = append(subscribers[k], expectedDelivery{hook: h, mode: p.mode})
		}
	}
	for _, k := range order {
		oc.pairs = append(oc.pairs, sentEvent{event: k.event, user: k.user, deliveries: subscribers[k]})
	}
	probeUser := newUser()
	probe := oc.createHook(probeUser, oc.probe, events.BookingCancelled)
	oc.poller = startAPIPoller(oc.api, oc.targets, pollTarget{user: probeUser, hook: probe.id})
	t.Cleanup(oc.poller.stop)
	return oc
}

func (oc *outageCase) createHook(user string, s *sink, evs ...events.NotificationEvent) *hook {
	names := make([]string, len(evs))
	for i, e := range evs {
		names[i] = string(e)
	}
	token := uuid.NewString()
	created := oc.api.createWebhook(user, s.srv.URL+"/h/"+token, names...)
	s.url(token, created.Secret)
	return &hook{id: created.ID, user: user, sink: s}
}

func (oc *outageCase) logf(format string, args ...any) {
	oc.t.Logf("%s +%s: %s", oc.name, time.Since(oc.started).Round(time.Second), fmt.Sprintf(format, args...))
}

// startWorker runs a worker process with the case's settings, then settings over them.
func (oc *outageCase) startWorker(name string, settings ...string) *workerProcess {
	env := append(append([]string{"LOG_LEVEL=warn"}, outageSettings...), settings...)
	w := startWorkerProcessOn(oc.t, oc.pg.URL("postgres"), oc.temporalAddr, oc.masterKey, oc.tq, env...)
	oc.workers = append(oc.workers, w)
	oc.logf("worker %s started", name)
	return w
}

// waitPolling waits until w polls the case's task queue for activities, which it does
// once it has connected and registered everything.
func (oc *outageCase) waitPolling(w *workerProcess) {
	identity := strconv.Itoa(w.cmd.Process.Pid) + "@"
	eventually(oc.t, time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := oc.c.DescribeTaskQueue(ctx, oc.tq, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		if err != nil {
			return false
		}
		for _, p := range resp.GetPollers() {
			if strings.HasPrefix(p.GetIdentity(), identity) {
				return true
			}
		}
		return false
	}, "the new worker polls")
	oc.logf("worker %s polls", identity)
}

// round hands over one event of each (user, event) pair of the plan, concurrently, each
// retried with its id until Temporal takes it, as a real caller does.
func (oc *outageCase) round(label string) []sentEvent {
	evs := make([]sentEvent, len(oc.pairs))
	var wg sync.WaitGroup
	for i, p := range oc.pairs {
		ev := p
		ev.id = fmt.Sprintf("%s-%s-%d", oc.name, label, i)
		ev.deliveries = make([]expectedDelivery, len(p.deliveries))
		for j, d := range p.deliveries {
			d.id = workflows.DeliveryID(ev.id, d.hook.id)
			ev.deliveries[j] = d
		}
		evs[i] = ev
		wg.Go(func() { oc.handOver(ev, map[string]any{"case": oc.name, "round": label, "n": i}) })
	}
	wg.Wait()
	return evs
}

// handOver records the event as owed, then triggers it until Temporal has it.
func (oc *outageCase) handOver(ev sentEvent, data map[string]any) {
	oc.mu.Lock()
	oc.events = append(oc.events, ev)
	oc.mu.Unlock()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := oc.dispatch.Trigger(ctx, ev.event, dispatch.Event{ID: ev.id, UserID: ev.user, Data: data})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			oc.t.Errorf("event %s never handed over: %v", ev.id, err)
			return
		}
		oc.mu.Lock()
		oc.triggerRetries++
		oc.mu.Unlock()
		time.Sleep(500 * time.Millisecond)
	}
}

// load hands over a round every interval until the returned func is called.
func (oc *outageCase) load(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			oc.round("load" + strconv.Itoa(i))
			select {
			case <-done:
				return
			case <-time.After(interval):
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// fanOut gives a fourth user fanOutSubscribers webhooks, inserted straight into the
// database for speed, and hands over one event they all subscribe to.
func (oc *outageCase) fanOut(label string) sentEvent {
	user := newUser()
	ev := sentEvent{id: oc.name + "-" + label, event: events.AssetStatusChanged, user: user}
	hooks := make([]models.Webhook, fanOutSubscribers)
	for i := range hooks {
		secret, err := secrets.Generate()
		require.NoError(oc.t, err)
		w := models.Webhook{ID: uuid.NewString(), UserID: user, Name: "fan", Events: []string{string(ev.event)},
			IsActive: true, SecretHash: secrets.Fingerprint(secret)}
		w.URL = oc.fan.url(w.ID, secret)
		w.SecretSealed, w.SecretKeyVersion, err = oc.api.box.Seal(w.ID, secret)
		require.NoError(oc.t, err)
		hooks[i] = w
		h := &hook{id: w.ID, user: user, sink: oc.fan}
		ev.deliveries = append(ev.deliveries, expectedDelivery{id: workflows.DeliveryID(ev.id, w.ID), hook: h, mode: modeHealthy})
	}
	_, err := oc.db.NewInsert().Model(&hooks).Exec(context.Background())
	require.NoError(oc.t, err)
	oc.handOver(ev, map[string]any{"case": oc.name, "fanOut": fanOutSubscribers})
	oc.logf("fan-out event handed over")
	return ev
}

// waitFirstAttempts waits until every delivery of evs to a receiver of the given modes
// has had its first request.
func (oc *outageCase) waitFirstAttempts(evs []sentEvent, modes ...sinkMode) {
	want := map[sinkMode]bool{}
	for _, m := range modes {
		want[m] = true
	}
	eventually(oc.t, time.Minute, func() bool {
		for _, ev := range evs {
			for _, d := range ev.deliveries {
				if want[d.mode] && d.hook.sink.counts()[d.id].posts == 0 {
					return false
				}
			}
		}
		return true
	}, "first attempts of the failing and flaky deliveries")
	oc.logf("first attempts in")
}

// waitMidRetry waits until deliveries of evs to a failing receiver (and, with flaky, to a
// flaky one) have had a first attempt and are owed another, so the outage that follows
// finds deliveries between attempts, and returns how many there are.
func (oc *outageCase) waitMidRetry(evs []sentEvent, flaky bool) int {
	var failing, retrying int
	eventually(oc.t, time.Minute, func() bool {
		failing, retrying = 0, 0
		for _, ev := range evs {
			for _, d := range ev.deliveries {
				c := d.hook.sink.counts()[d.id]
				switch {
				case d.mode == modeFailing && c.posts > 0 && c.posts < 3:
					failing++
				case d.mode == modeFlaky && c.posts > 0 && c.oks == 0:
					retrying++
				}
			}
		}
		return failing > 0 && (retrying > 0 || !flaky)
	}, "deliveries between attempts")
	return failing + retrying
}

// kill SIGKILLs the worker and notes its crash window: the deliveries a dead worker
// leaves behind may legitimately differ from exactly-once in two documented ways, and
// only for the delivery ids caught at that moment. A request it sent whose success it
// had not recorded (in flight at the receiver, or answered but not yet written down) is
// sent again; an attempt it claimed but never sent costs the receiver that attempt.
func (oc *outageCase) kill(w *workerProcess) {
	sinks := oc.eventSinks()
	for _, s := range sinks {
		s.watch()
	}
	w.kill()
	// A request the worker wrote just before dying is still read by the receiver.
	time.Sleep(300 * time.Millisecond)
	inFlight := map[string]bool{}
	for _, s := range sinks {
		for id := range s.unwatch() {
			inFlight[id] = true
		}
	}
	unrecorded, lost := oc.crashWindow(inFlight)
	oc.logf("worker killed: %d requests in flight at receivers, %d more answered but not recorded, %d claimed but not sent",
		len(inFlight), unrecorded, lost)
}

// terminate stops the worker as an orchestrator does (SIGTERM) and notes what it left,
// granting nothing: a graceful stop has no crash window.
func (oc *outageCase) terminate(w *workerProcess) {
	oc.stopped[w] = true
	sinks := oc.eventSinks()
	for _, s := range sinks {
		s.watch()
	}
	exited := w.terminate(45 * time.Second)
	assert.True(oc.t, exited, "worker exits within 45s of SIGTERM")
	oc.mu.Lock()
	for _, s := range sinks {
		for id := range s.unwatch() {
			oc.inFlightAtTerm[id] = true
		}
	}
	n := len(oc.inFlightAtTerm)
	oc.mu.Unlock()
	oc.logf("worker terminated; %d requests were in flight at receivers while it stopped (its own and the other worker's)", n)
}

// crashWindow notes, right after a kill, which deliveries the dead worker sent without
// recording their success (inFlight: those still at a receiver when it died), and
// which attempts it claimed without sending; it counts those not noted at earlier kills.
func (oc *outageCase) crashWindow(inFlight map[string]bool) (unrecorded, lost int) {
	got := oc.receiverCounts()
	rows := oc.deliveryRows(delivery.KindEvent)
	oc.mu.Lock()
	defer oc.mu.Unlock()
	for id, n := range got {
		if r := rows[id]; n.oks > 0 && r.status != delivery.OutcomeSucceeded && n.oks > oc.allowDup[id] {
			oc.allowDup[id] = n.oks
			if inFlight[id] {
				oc.inFlightAtKill[id] = true
			} else {
				unrecorded++
			}
		}
	}
	for id, r := range rows {
		if extra := r.attempts - got[id].posts; extra > oc.allowLost[id] {
			lost++
			oc.allowLost[id] = extra
		}
	}
	// A test delivery has one attempt: caught in the window, it fails as exhausted
	// instead of being sent again.
	probe := oc.probe.counts()
	for id, r := range oc.deliveryRows(delivery.KindTest) {
		if n := probe[id]; r.status != delivery.OutcomeSucceeded && (n.oks > 0 || r.attempts > n.posts) {
			oc.testWindow[id] = true
		}
	}
	return unrecorded, lost
}

// eventSinks are the receivers of events: the plan's and the fan-out's.
func (oc *outageCase) eventSinks() []*sink {
	return []*sink{oc.sinks[modeHealthy], oc.sinks[modeFailing], oc.sinks[modeFlaky], oc.fan}
}

// receiverCounts merges what every receiver of events got.
func (oc *outageCase) receiverCounts() map[string]sinkCounts {
	out := map[string]sinkCounts{}
	for _, s := range oc.eventSinks() {
		for id, n := range s.counts() {
			out[id] = n
		}
	}
	return out
}

// deliveryRow is what the delivery log says of one delivery.
type deliveryRow struct {
	status    delivery.Outcome
	attempts  int
	completed bool
}

// deliveryRows reads the delivery log of one kind of delivery.
func (oc *outageCase) deliveryRows(kind delivery.Kind) map[string]deliveryRow {
	var rows []struct {
		ID        string           `bun:"id"`
		Status    delivery.Outcome `bun:"status"`
		Attempts  int              `bun:"attempts"`
		Completed bool             `bun:"completed"`
	}
	err := oc.db.NewRaw("SELECT id, status, attempts, completed_at IS NOT NULL AS completed FROM webhook_deliveries WHERE kind = ?", kind).
		Scan(context.Background(), &rows)
	require.NoError(oc.t, err)
	out := make(map[string]deliveryRow, len(rows))
	for _, r := range rows {
		out[r.ID] = deliveryRow{status: r.Status, attempts: r.Attempts, completed: r.Completed}
	}
	return out
}

func (oc *outageCase) expected() map[string]expectedDelivery {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	out := map[string]expectedDelivery{}
	for _, ev := range oc.events {
		for _, d := range ev.deliveries {
			out[d.id] = d
		}
	}
	return out
}

// settle waits until every owed delivery is closed in the log and no workflow on the
// case's task queue is still running; on timeout it says what is still open.
func (oc *outageCase) settle() {
	within := envDuration(oc.t, "E2E_OUTAGE_SETTLE", 5*time.Minute)
	deadline := time.Now().Add(within)
	want := oc.expected()
	for {
		rows := oc.deliveryRows(delivery.KindEvent)
		closed := 0
		for id := range want {
			if r, ok := rows[id]; ok && r.completed {
				closed++
			}
		}
		running := oc.workflows(`ExecutionStatus = "Running"`)
		if closed == len(want) && len(running) == 0 {
			oc.logf("settled: %d deliveries closed", closed)
			return
		}
		if time.Now().After(deadline) {
			oc.t.Errorf("not settled within %s: %d of %d deliveries closed, %d workflows running", within, closed, len(want), len(running))
			oc.describe(running)
			return
		}
		time.Sleep(time.Second)
	}
}

// describe logs why running workflows are not finishing: a workflow task failing again
// and again (non-determinism), or an activity retrying with its last failure.
func (oc *outageCase) describe(running []*workflowExecution) {
	for i, ex := range running {
		if i == 10 {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := oc.c.DescribeWorkflowExecution(ctx, ex.id, ex.runID)
		cancel()
		if err != nil {
			oc.t.Logf("describe %s: %v", ex.id, err)
			continue
		}
		line := fmt.Sprintf("running %s (%s)", ex.id, ex.typ)
		if wt := d.GetPendingWorkflowTask(); wt != nil {
			line += fmt.Sprintf("; workflow task attempt %d", wt.GetAttempt())
		}
		for _, a := range d.GetPendingActivities() {
			line += fmt.Sprintf("; %s attempt %d, last failure: %s", a.GetActivityType().GetName(), a.GetAttempt(), a.GetLastFailure().GetMessage())
		}
		oc.t.Log(line)
	}
	for i, w := range oc.workers {
		logs := w.logs.String()
		oc.t.Logf("worker %d logs (last 4 KiB):\n%s", i, logs[max(0, len(logs)-4096):])
	}
}

type workflowExecution struct {
	id, runID, typ string
	status         enumspb.WorkflowExecutionStatus
}

// workflows lists the executions on the case's task queue matching query ("" for all).
func (oc *outageCase) workflows(query string) []*workflowExecution {
	q := fmt.Sprintf("TaskQueue = %q", oc.tq)
	if query != "" {
		q += " AND " + query
	}
	var out []*workflowExecution
	var token []byte
	for {
		// On PostgreSQL visibility (the server target) a page listed while the other
		// cases write theirs can run past the server's deadline: smaller pages, and a few
		// tries, each of which reads the same page again.
		var resp *workflowservice.ListWorkflowExecutionsResponse
		var err error
		for try := 0; try < 5; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			resp, err = oc.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: 200, NextPageToken: token})
			cancel()
			if err == nil {
				break
			}
			oc.logf("listing workflows: %v (try %d)", err, try+1)
			time.Sleep(time.Second)
		}
		require.NoError(oc.t, err)
		for _, e := range resp.GetExecutions() {
			out = append(out, &workflowExecution{id: e.GetExecution().GetWorkflowId(), runID: e.GetExecution().GetRunId(),
				typ: e.GetType().GetName(), status: e.GetStatus()})
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out
		}
	}
}

// scan reads every execution's history: its workflow task failures, and the
// configuration the run recorded as its first step (see workflows.Workflows.runConfig).
type scanned struct {
	ex           *workflowExecution
	config       *workflows.Config
	taskFailures []string
	stuck        []string // non-determinism or a panic: the workflow cannot progress
}

func (oc *outageCase) scan(all []*workflowExecution) []scanned {
	out := make([]scanned, len(all))
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				out[i] = oc.scanOne(all[i])
			}
		})
	}
	for i := range all {
		work <- i
	}
	close(work)
	wg.Wait()
	return out
}

func (oc *outageCase) scanOne(ex *workflowExecution) scanned {
	s := scanned{ex: ex}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := oc.c.GetWorkflowHistory(ctx, ex.id, ex.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			s.stuck = append(s.stuck, "history unreadable: "+err.Error())
			return s
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			m := e.GetMarkerRecordedEventAttributes()
			if s.config == nil && m.GetMarkerName() == "SideEffect" {
				var cfg workflows.Config
				if err := converter.GetDefaultDataConverter().FromPayloads(m.GetDetails()["data"], &cfg); err == nil {
					s.config = &cfg
				}
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			f := e.GetWorkflowTaskFailedEventAttributes()
			msg := f.GetCause().String() + ": " + f.GetFailure().GetMessage()
			s.taskFailures = append(s.taskFailures, msg)
			if f.GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR ||
				f.GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE ||
				strings.Contains(msg, "nondeterministic") || strings.Contains(msg, "TMPRL1100") {
				s.stuck = append(s.stuck, msg)
			}
		}
	}
	return s
}

// recordedConfigs maps each owed delivery to the configuration recorded by the run that
// made it: its DeliverWebhook child, or, when it ran inline, its event's dispatch.
func (oc *outageCase) recordedConfigs() map[string]workflows.Config {
	all := oc.workflows("")
	// A delivery's workflow has one run: DeliverWebhook never continues as new, nor does
	// a dispatch that delivers inline.
	firstRun := map[string]*workflowExecution{}
	for _, ex := range all {
		if _, ok := firstRun[ex.id]; !ok {
			firstRun[ex.id] = ex
		}
	}
	oc.mu.Lock()
	evs := append([]sentEvent(nil), oc.events...)
	oc.mu.Unlock()
	var runs []*workflowExecution
	owner := map[string]*workflowExecution{}
	for _, ev := range evs {
		for _, d := range ev.deliveries {
			ex, ok := firstRun[workflows.DeliveryWorkflowID(ev.id, d.hook.id)]
			if !ok {
				ex, ok = firstRun[workflows.DispatchWorkflowID(ev.id)]
			}
			if ok {
				owner[d.id] = ex
				runs = append(runs, ex)
			}
		}
	}
	configs := map[string]*workflows.Config{}
	for _, s := range oc.scan(dedupe(runs)) {
		configs[s.ex.runID] = s.config
	}
	out := map[string]workflows.Config{}
	for id, ex := range owner {
		if cfg := configs[ex.runID]; cfg != nil {
			out[id] = *cfg
		}
	}
	return out
}

func dedupe(runs []*workflowExecution) []*workflowExecution {
	seen := map[string]bool{}
	var out []*workflowExecution
	for _, r := range runs {
		if !seen[r.runID] {
			seen[r.runID] = true
			out = append(out, r)
		}
	}
	return out
}

// outageRow is one case's line of the table.
type outageRow struct {
	name                                     string
	events, expected, delivered              int
	duplicates, crashDuplicates, lost, wrong int
	api5xx, api503, apiRequests              int
	inFlightDuplicates                       int // of crashDuplicates, those in flight at the kill
	triggerRetries                           int
	took                                     time.Duration
}

// finish waits for the case to settle and checks everything it promised.
func (oc *outageCase) finish() outageRow {
	t := oc.t
	oc.settle()
	oc.poller.stop()
	for i, w := range oc.workers {
		if !oc.stopped[w] {
			assert.True(t, w.running(), "worker %d still running after the outage (it exited on its own)", i)
		}
	}

	want := oc.expected()
	got := oc.receiverCounts()
	rows := oc.deliveryRows(delivery.KindEvent)
	recorded := oc.recordedConfigs()
	row := outageRow{name: oc.name, expected: len(want)}
	oc.mu.Lock()
	row.events, row.triggerRetries = len(oc.events), oc.triggerRetries
	oc.mu.Unlock()

	failuresPerHook := map[string]int{}
	for id, d := range want {
		n, r := got[id], rows[id]
		lostAttempts := r.attempts - n.posts
		if n.posts == 0 {
			row.lost++
			t.Errorf("lost: %s delivery %s never reached its receiver (log row: %+v)", d.mode, id, r)
			continue
		}
		row.delivered++
		if lostAttempts < 0 || lostAttempts > oc.allowLost[id] {
			row.wrong++
			t.Errorf("%s delivery %s: %d attempts recorded, %d requests received", d.mode, id, r.attempts, n.posts)
		}
		if !r.completed {
			t.Errorf("%s delivery %s: log row not closed: %+v", d.mode, id, r)
		}
		switch d.mode {
		case modeFailing:
			failuresPerHook[d.hook.id]++
			cfg, ok := recorded[id]
			if !assert.True(t, ok, "configuration recorded by the run of delivery %s", id) {
				continue
			}
			if r.attempts != cfg.Retry.MaxAttempts || n.oks != 0 {
				row.wrong++
				t.Errorf("failing delivery %s: %d attempts (%d requests), want the %d its run started with",
					id, r.attempts, n.posts, cfg.Retry.MaxAttempts)
			}
			assert.Equal(t, delivery.OutcomeFailed, r.status, "failing delivery %s", id)
		default:
			if n.oks == 0 {
				row.lost++
				row.delivered--
				t.Errorf("lost: %s delivery %s never answered 2xx (%d requests)", d.mode, id, n.posts)
				continue
			}
			if extra := n.oks - 1; extra > 0 {
				row.duplicates += extra
				switch {
				case extra <= oc.allowDup[id]:
					row.crashDuplicates += extra
					if oc.inFlightAtKill[id] {
						row.inFlightDuplicates += extra
					}
				case oc.inFlightAtTerm[id]:
					t.Errorf("duplicate: %s delivery %s answered 2xx %d times; it was in flight while a worker stopped on SIGTERM (a graceful stop)",
						d.mode, id, n.oks)
				default:
					t.Errorf("duplicate: %s delivery %s answered 2xx %d times, outside any crash window", d.mode, id, n.oks)
				}
			}
			wantPosts := n.oks
			if d.mode == modeFlaky {
				wantPosts++ // its first request is answered 500
			}
			if n.posts != wantPosts {
				row.wrong++
				t.Errorf("%s delivery %s: %d requests, %d answered 2xx", d.mode, id, n.posts, n.oks)
			}
			assert.Equal(t, delivery.OutcomeSucceeded, r.status, "%s delivery %s", d.mode, id)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("unexpected delivery %s at a receiver: %+v", id, got[id])
		}
	}
	for id, r := range rows {
		if _, ok := want[id]; !ok {
			t.Errorf("unexpected delivery log row %s: %+v", id, r)
		}
	}
	var open int
	require.NoError(t, oc.db.NewRaw("SELECT count(*) FROM webhook_deliveries WHERE completed_at IS NULL OR status = 'pending'").
		Scan(context.Background(), &open))
	assert.Zero(t, open, "every delivery log row is closed, test deliveries included")
	for _, s := range []*sink{oc.sinks[modeHealthy], oc.sinks[modeFailing], oc.sinks[modeFlaky], oc.fan, oc.probe} {
		s.mu.Lock()
		assert.Empty(t, s.badSig, "%s receiver: requests with a wrong signature", s.mode)
		assert.Equal(t, sumPosts(s.posts), s.signed, "%s receiver: every request's signature checked", s.mode)
		s.mu.Unlock()
	}
	oc.checkWebhooks(failuresPerHook)
	oc.checkWorkflows(want)

	p := oc.poller.report()
	row.api5xx, row.api503, row.apiRequests = len(p.bad), p.allowed503, p.requests
	assert.Empty(t, p.bad, "API answers other than 503 database_unavailable/temporal_unavailable among 5xx")
	assert.Positive(t, p.requests, "the API was polled")
	row.took = time.Since(oc.started)
	torn := 0
	for _, s := range oc.eventSinks() {
		s.mu.Lock()
		torn += s.torn
		s.mu.Unlock()
	}
	oc.logf("%d events, %d deliveries, %d delivered, %d duplicates (%d in a crash window), %d lost, %d wrong attempt counts; "+
		"of the crash window's, %d in flight at the receiver and %d answered but not yet recorded; %d requests cut off mid-way; "+
		"API: %d requests, %d 5xx, %d 503; Trigger retried %d times",
		row.events, row.expected, row.delivered, row.duplicates, row.crashDuplicates, row.lost, row.wrong,
		row.inFlightDuplicates, row.crashDuplicates-row.inFlightDuplicates, torn,
		row.apiRequests, row.api5xx, row.api503, row.triggerRetries)
	if t.Failed() {
		oc.describe(nil)
	}
	return row
}

// checkWebhooks: nothing is charged to a healthy receiver, and a failing one is charged
// once per failed delivery, never for our outages.
func (oc *outageCase) checkWebhooks(failuresPerHook map[string]int) {
	var hooks []struct {
		ID           string `bun:"id"`
		FailureCount int    `bun:"failure_count"`
		IsActive     bool   `bun:"is_active"`
	}
	require.NoError(oc.t, oc.db.NewRaw("SELECT id, failure_count, is_active FROM webhooks").Scan(context.Background(), &hooks))
	for _, h := range hooks {
		assert.True(oc.t, h.IsActive, "webhook %s stays active", h.ID)
		assert.Equal(oc.t, failuresPerHook[h.ID], h.FailureCount, "webhook %s failure_count", h.ID)
	}
}

// checkWorkflows: everything on the task queue finished; the only failures are failing
// receivers' deliveries, failed as DeliveryFailed; no history has a workflow task that
// failed for non-determinism or a panic.
func (oc *outageCase) checkWorkflows(want map[string]expectedDelivery) {
	all := oc.workflows("")
	failed, testsLost := 0, 0
	for _, ex := range all {
		switch ex.status {
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
			failed++
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var value workflows.DeliverWebhookResult
			res, err := workflows.DeliveryResultOf(oc.c.GetWorkflow(ctx, ex.id, ex.runID).Get(ctx, &value), value)
			cancel()
			if !assert.NoError(oc.t, err, "%s %s failed other than DeliveryFailed", ex.typ, ex.id) {
				continue
			}
			if d, ok := want[res.DeliveryID]; ok {
				assert.Equal(oc.t, modeFailing, d.mode, "%s %s failed delivering %s", ex.typ, ex.id, res.DeliveryID)
				continue
			}
			failed--
			if oc.testWindow[res.DeliveryID] {
				testsLost++
				continue
			}
			oc.t.Errorf("%s %s failed outside any crash window: %+v", ex.typ, ex.id, res)
		default:
			oc.t.Errorf("%s %s ended %s", ex.typ, ex.id, ex.status)
		}
	}
	failing := 0
	for _, d := range want {
		if d.mode == modeFailing {
			failing++
		}
	}
	assert.Equal(oc.t, failing, failed, "one failed workflow per failing delivery")
	taskFailures := map[string]int{}
	for _, s := range oc.scan(all) {
		for _, f := range s.taskFailures {
			taskFailures[f]++
		}
		assert.Empty(oc.t, s.stuck, "%s %s: workflow task failures", s.ex.typ, s.ex.id)
	}
	oc.logf("%d workflows checked, %d deliveries failed as DeliveryFailed, %d test deliveries failed in a crash window; "+
		"workflow task failures (none stuck): %v", len(all), failed, testsLost, taskFailures)
}

// apiPoller calls the API every ~250 ms as the portal would, and keeps every 5xx other
// than the two 503s that say which dependency is away.
type apiPoller struct {
	s       *stack
	targets []pollTarget
	probe   pollTarget
	halt    chan struct{}
	done    chan struct{}
	once    sync.Once
	gate    sync.Mutex // held by each round of calls, and by pause

	mu         sync.Mutex
	requests   int
	allowed503 int
	bad        []string
}

func startAPIPoller(s *stack, targets []pollTarget, probe pollTarget) *apiPoller {
	p := &apiPoller{s: s, targets: targets, probe: probe, halt: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *apiPoller) run() {
	defer close(p.done)
	for i := 0; ; i++ {
		tg := p.targets[i%len(p.targets)]
		p.gate.Lock()
		p.call(tg.user, http.MethodGet, "/webhooks")
		p.call(tg.user, http.MethodGet, "/webhooks/"+tg.hook+"/deliveries")
		if i%4 == 0 {
			p.call(p.probe.user, http.MethodPost, "/webhooks/"+p.probe.hook+"/test")
		}
		p.gate.Unlock()
		select {
		case <-p.halt:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (p *apiPoller) call(user, method, path string) {
	code, body := apiDo(p.s, user, method, path)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if code < 500 {
		return
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if code == http.StatusServiceUnavailable && (e.Error.Code == "database_unavailable" || e.Error.Code == "temporal_unavailable") {
		p.allowed503++
		return
	}
	p.bad = append(p.bad, fmt.Sprintf("%s %s: %d %s", method, path, code, bytes.TrimSpace(body)))
}

// pause waits for the calls under way and holds the next ones until resume.
func (p *apiPoller) pause()  { p.gate.Lock() }
func (p *apiPoller) resume() { p.gate.Unlock() }

func (p *apiPoller) stop() {
	p.once.Do(func() { close(p.halt) })
	<-p.done
}

type pollReport struct {
	requests, allowed503 int
	bad                  []string
}

func (p *apiPoller) report() pollReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return pollReport{requests: p.requests, allowed503: p.allowed503, bad: append([]string(nil), p.bad...)}
}

// apiDo is one API request as user; unlike stack.call it may run off the test's goroutine.
func apiDo(s *stack, user, method, path string) (int, []byte) {
	tok, err := api.IssueToken(jwtSecret, user, time.Hour, time.Now())
	if err != nil {
		return 0, []byte(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, method, path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	s.router.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// outageTable collects the cases' rows, printed as the table the README quotes.
type outageTable struct {
	mu   sync.Mutex
	rows []outageRow
}

func (tb *outageTable) add(r outageRow) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rows = append(tb.rows, r)
}

func (tb *outageTable) print(w io.Writer, took time.Duration) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	order := map[string]int{"postgres-down": 0, "temporal-down": 1, "worker-killed-3x": 2, "rolling-restart": 3}
	sort.Slice(tb.rows, func(i, j int) bool { return order[tb.rows[i].name] < order[tb.rows[j].name] })
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| case | events | deliveries expected | delivered | duplicates (crash window) | lost | wrong attempt counts | 5xx answers | 503 answers / API requests | took |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range tb.rows {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d (%d) | %d | %d | %d | %d / %d | %s |\n", r.name, r.events, r.expected, r.delivered,
			r.duplicates, r.crashDuplicates, r.lost, r.wrong, r.api5xx, r.api503, r.apiRequests, r.took.Round(time.Second))
	}
	fmt.Fprintf(w, "\nsuite took %s\n", took.Round(time.Second))
}

func sumPosts(posts map[string]int) int {
	n := 0
	for _, c := range posts {
		n += c
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "%s must be a duration", name)
	return d
}

func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }
