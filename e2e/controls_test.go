package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"golang.org/x/sync/errgroup"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/workflows"
)

// controlsStack is a stack whose API accepts the endpoint controls with cfg's limits,
// over one worker replica per logger (all on cfg's task queue, a fresh one when unset),
// in this process; no logger is one replica logging into logs.
func controlsStack(t *testing.T, cfg config.Config, loggers ...*slog.Logger) *stack {
	t.Helper()
	box := testfixture.Box(t)
	if cfg.TemporalTaskQueue == "" {
		cfg.TemporalTaskQueue = "controls-" + newUser()
	}
	if len(loggers) == 0 {
		loggers = []*slog.Logger{logs.Logger()}
	}
	for _, l := range loggers {
		testfixture.StartWorker(t, testfixture.WorkerSettings{Box: box, Config: cfg, Logger: l})
	}
	router := api.NewRouter(api.Deps{
		DB: testinfra.DB(t), Temporal: testinfra.Temporal(t), Box: box,
		Policy: netguard.NewPolicy(true, nil), Logger: logs.Logger(),
		Config: api.Config{
			JWTSecret: jwtSecret, MaxBodyBytes: 64 << 10, MaxWebhooksPerUser: 100, TaskQueue: cfg.TemporalTaskQueue,
			TestTimeout: 15 * time.Second, TemporalTimeout: 5 * time.Second, SecretGrace: time.Hour,
			RateLimit: 10000, RateBurst: 10000,
			MaxHeaders: cfg.MaxHeaders, MaxHeaderBytes: cfg.MaxHeaderBytes,
			FilterMaxBytes: cfg.FilterMaxBytes, FilterCostLimit: cfg.FilterCostLimit,
		},
	})
	return &stack{t: t, box: box, taskQueue: cfg.TemporalTaskQueue, router: router}
}

// throttleLog keeps only the workers' "throttled" lines, which show that a replica was
// held back: the timing tests run two workers whose every debug line would otherwise be
// encoded, and that load shows up as jitter at the receiver.
func throttleLog(buf *testinfra.LogBuffer) *slog.Logger {
	return slog.New(onlyThrottled{buf.Logger().Handler()})
}

type onlyThrottled struct{ slog.Handler }

func (h onlyThrottled) Handle(ctx context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "throttled") {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h onlyThrottled) WithAttrs(attrs []slog.Attr) slog.Handler {
	return onlyThrottled{h.Handler.WithAttrs(attrs)}
}

func (h onlyThrottled) WithGroup(name string) slog.Handler {
	return onlyThrottled{h.Handler.WithGroup(name)}
}

// raw sends one API request and returns the status and the body as received.
func (s *stack) raw(user, method, path string, body any) (int, string) {
	s.t.Helper()
	var out json.RawMessage
	code := s.call(user, method, path, body, &out)
	return code, string(out)
}

// The custom headers a receiver set arrive with every attempt (a failed one and its
// retry), with test deliveries and redeliveries, and appear in no API answer, log line,
// delivery log row or workflow history. Reserved names are refused.
func TestCustomHeadersReachTheReceiverAndNothingElse(t *testing.T) {
	s := controlsStack(t, testfixture.WorkerConfig())
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	rcv.FailFirst(1)
	user := newUser()
	apiKey := "e2e-api-key-" + newUser()
	bearer := "Bearer e2e-gateway-" + newUser()
	values := []string{apiKey, bearer, strings.TrimPrefix(bearer, "Bearer ")}
	var answers []string

	code, body := s.raw(user, http.MethodPost, "/webhooks", map[string]any{
		"name": "gateway", "url": rcv.URL + "/in", "events": []string{"LOW_STOCK"},
		"headers": map[string]string{"X-Api-Key": apiKey, "authorization": bearer},
	})
	require.Equal(t, http.StatusCreated, code, body)
	answers = append(answers, body)
	var hook struct {
		ID      string           `json:"id"`
		Secret  string           `json:"secret"`
		Headers []api.HeaderView `json:"headers"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &hook))
	require.Equal(t, []string{"Authorization", "X-Api-Key"}, []string{hook.Headers[0].Name, hook.Headers[1].Name})

	for _, name := range []string{"Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "User-Agent",
		"X-AssetsUp-Signature", "x-assetsup-event", "webhook-id", "Webhook-Signature"} {
		code, body := s.raw(user, http.MethodPatch, "/webhooks/"+hook.ID, map[string]any{"headers": map[string]string{name: "x"}})
		assert.Equal(t, http.StatusBadRequest, code, "%s: %s", name, body)
		assert.Contains(t, body, "invalid_headers", name)
	}

	eventID, err := dispatcher(t, s).Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user, Data: map[string]any{"sku": "X-1"}})
	require.NoError(t, err)
	require.Equal(t, 2, deliveryResult(t, eventID, hook.ID).Attempts, "the first attempt failed and was retried")
	code, body = s.raw(user, http.MethodPost, "/webhooks/"+hook.ID+"/test", nil)
	require.Equal(t, http.StatusOK, code, body)
	answers = append(answers, body)
	code, body = s.raw(user, http.MethodGet, "/webhooks/"+hook.ID+"/deliveries", nil)
	require.Equal(t, http.StatusOK, code, body)
	answers = append(answers, body)
	var page struct {
		Deliveries []loggedDelivery `json:"deliveries"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	i := slices.IndexFunc(page.Deliveries, func(d loggedDelivery) bool { return d.Event == "LOW_STOCK" })
	require.GreaterOrEqual(t, i, 0, body)
	first := page.Deliveries[i]
	code, body = s.raw(user, http.MethodPost, "/webhooks/"+hook.ID+"/deliveries/"+first.ID+"/redeliver", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	answers = append(answers, body)

	reqs := rcv.WaitFor(t, 4, 30*time.Second)
	for i, r := range reqs {
		assert.Equal(t, apiKey, r.Header.Get("X-Api-Key"), "request %d", i)
		assert.Equal(t, bearer, r.Header.Get("Authorization"), "request %d", i)
		verify(t, hook.Secret, r)
	}
	for _, path := range []string{"/webhooks", "/webhooks/" + hook.ID, "/webhooks/" + hook.ID + "/deliveries", "/webhooks/" + hook.ID + "/deliveries/" + first.ID} {
		code, body := s.raw(user, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, code, body)
		answers = append(answers, body)
	}

	for _, v := range values {
		for _, a := range answers {
			assert.NotContains(t, a, v, "an API answer holds a header value")
		}
		assert.NotContains(t, logs.String(), v, "the log holds a header value")
	}
	assertNoRowHolds(t, values)
	assertNoHistoryHolds(t, "a header value", values)
}

// loggedDelivery is what these tests read of a delivery log entry.
type loggedDelivery struct {
	ID    string `json:"id"`
	Event string `json:"event"`
}

// assertNoRowHolds reads every column of every webhook_deliveries and webhooks row as
// text and fails if one holds a value (the sealed columns are ciphertext).
func assertNoRowHolds(t *testing.T, values []string) {
	t.Helper()
	for _, table := range []string{"webhook_deliveries", "webhooks"} {
		var rows []string
		require.NoError(t, testinfra.DB(t).NewRaw("SELECT t::text FROM "+table+" AS t").Scan(context.Background(), &rows))
		require.NotEmpty(t, rows, table)
		for _, row := range rows {
			for _, v := range values {
				require.NotContains(t, row, v, "a %s row holds a header value", table)
				require.NotContains(t, row, fmt.Sprintf("%x", v), "a %s row holds a header value in hex", table)
			}
		}
	}
}

// arrivalsPerWindow is the largest number of requests that arrived within any window
// of length w, sliding over every arrival.
func arrivalsPerWindow(reqs []testfixture.Request, w time.Duration) (most int, busiest []time.Duration) {
	at := make([]time.Time, len(reqs))
	for i, r := range reqs {
		at[i] = r.At
	}
	slices.SortFunc(at, time.Time.Compare)
	j := 0
	for i := range at {
		for at[i].Sub(at[j]) >= w {
			j++
		}
		if i-j+1 > most {
			most, busiest = i-j+1, nil
			for _, a := range at[j : i+1] {
				busiest = append(busiest, a.Sub(at[j]).Round(time.Millisecond))
			}
		}
	}
	return most, busiest
}

// createWith registers a webhook for user with the endpoint controls in extra.
func (s *stack) createWith(user, url string, evs []string, extra map[string]any) created {
	s.t.Helper()
	body := map[string]any{"name": "controlled", "url": url, "events": evs}
	for k, v := range extra {
		body[k] = v
	}
	var c created
	code, raw := s.raw(user, http.MethodPost, "/webhooks", body)
	require.Equal(s.t, http.StatusCreated, code, raw)
	require.NoError(s.t, json.Unmarshal([]byte(raw), &c))
	return c
}

// triggerMany hands over n events of event for user, a few at a time as a busy backend
// would, and returns their ids.
func triggerMany(t *testing.T, s *stack, n int, event events.NotificationEvent, user string, data func(i int) any) []string {
	t.Helper()
	ids := make([]string, n)
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			id, err := dispatcher(t, s).Trigger(context.Background(), event, dispatch.Event{UserID: user, Data: data(i)})
			ids[i] = id
			return err
		})
	}
	require.NoError(t, g.Wait())
	return ids
}

// A webhook limited to 10 deliveries per second gets 300 events, delivered by two
// worker replicas that share the limit through PostgreSQL: the receiver never sees more
// than 10 in any one-second window, all 300 arrive, none twice, both replicas took part,
// and the waits cost the webhook nothing.
func TestRateLimitHoldsAcrossReplicas(t *testing.T) {
	const n, perSecond = 300, 10
	var replicaLogs [2]testinfra.LogBuffer
	s := controlsStack(t, testfixture.WorkerConfig(), throttleLog(&replicaLogs[0]), throttleLog(&replicaLogs[1]))
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := newUser()
	hook := s.createWith(user, rcv.URL+"/limited", []string{"LOW_STOCK"}, map[string]any{"rateLimit": map[string]any{"perSecond": perSecond}})

	start := time.Now()
	triggerMany(t, s, n, events.LowStock, user, func(i int) any { return map[string]any{"n": i} })
	reqs := rcv.WaitFor(t, n, 3*time.Minute)
	took := time.Since(start)

	seen := map[string]bool{}
	for _, r := range reqs {
		seen[r.Header.Get("X-AssetsUp-Delivery")] = true
	}
	assert.Len(t, seen, n, "every event arrived once")
	most, busiest := arrivalsPerWindow(reqs, time.Second)
	assert.LessOrEqual(t, most, perSecond, "at most %d requests in any one-second window; the busiest: %v", perSecond, busiest)
	assert.GreaterOrEqual(t, most, perSecond-2, "the limit is used, not undershot by much")
	assert.GreaterOrEqual(t, took, time.Duration(n/perSecond-1)*time.Second, "300 events at 10/s take about 30 s")
	t.Logf("%d events in %s; at most %d in any second", n, took.Round(time.Millisecond), most)
	for i := range replicaLogs {
		assert.Contains(t, replicaLogs[i].String(), "throttled, nothing sent", "replica %d was held back by the shared limit too", i)
	}
	failures, active := webhookState(t, hook.ID)
	assert.Zero(t, failures, "throttled attempts are not failures")
	assert.True(t, active)
	time.Sleep(time.Second) // the last deliveries' outcome steps
	var notSucceeded int
	require.NoError(t, testinfra.DB(t).NewRaw("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = ? AND (status <> 'succeeded' OR attempts <> 1)", hook.ID).
		Scan(context.Background(), &notSucceeded))
	assert.Zero(t, notSucceeded, "every delivery succeeded on its first attempt: waiting was never an attempt")
}

// With maxInFlight 2 and two worker replicas, a slow receiver never has a third request
// open, every event arrives, and the waits cost the webhook nothing.
func TestMaxInFlightHoldsAcrossReplicas(t *testing.T) {
	const n, maxInFlight = 24, 2
	var replicaLogs [2]testinfra.LogBuffer
	s := controlsStack(t, testfixture.WorkerConfig(), throttleLog(&replicaLogs[0]), throttleLog(&replicaLogs[1]))
	var open, most atomic.Int32
	rcv := testfixture.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		now := open.Add(1)
		defer open.Add(-1)
		for {
			m := most.Load()
			if now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		time.Sleep(250 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	user := newUser()
	hook := s.createWith(user, rcv.URL+"/slow", []string{"LOW_STOCK"}, map[string]any{"maxInFlight": maxInFlight})

	triggerMany(t, s, n, events.LowStock, user, func(i int) any { return map[string]any{"n": i} })
	reqs := rcv.WaitFor(t, n, 2*time.Minute)
	seen := map[string]bool{}
	for _, r := range reqs {
		seen[r.Header.Get("X-AssetsUp-Delivery")] = true
	}
	assert.Len(t, seen, n, "every event arrived once")
	assert.LessOrEqual(t, most.Load(), int32(maxInFlight), "never more than maxInFlight requests open")
	assert.Equal(t, int32(maxInFlight), most.Load(), "both slots were used")
	for i := range replicaLogs {
		assert.Contains(t, replicaLogs[i].String(), "maxInFlight slots is in use", "replica %d waited for a slot", i)
	}
	failures, active := webhookState(t, hook.ID)
	assert.Zero(t, failures)
	assert.True(t, active)
}

// Every filter of a table decides every event of a table: a match is delivered, a
// miss is logged as filtered (listed by the API, never sent, no workflow started for
// it), and a filter too costly for an event's data is stopped at the cost limit
// without holding the other deliveries back.
func TestFiltersDecideEveryDelivery(t *testing.T) {
	s := controlsStack(t, testfixture.WorkerConfig())
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := newUser()
	big := make([]string, 3000)
	for i := range big {
		big[i] = fmt.Sprintf("item-%d", i)
	}
	filters := []struct {
		name   string
		filter any
	}{
		{name: "no filter", filter: nil},
		{name: "low stock under 5", filter: `event == "LOW_STOCK" && data.qty < 5`},
		{name: "warehouse", filter: `has(data.location) && data.location.startsWith("WH-")`},
		{name: "critical", filter: `has(data.tags) && "critical" in data.tags`},
		{name: "unguarded qty", filter: `data.qty > 1`},
		{name: "hostile", filter: `has(data.items) && data.items.exists(x, data.items.exists(y, x != y && x + y == "never"))`},
	}
	evs := []struct {
		name  string
		event events.NotificationEvent
		data  map[string]any
		want  []string // the filters that deliver it
	}{
		{name: "low in warehouse", event: events.LowStock, data: map[string]any{"qty": 3, "location": "WH-1", "tags": []string{"critical"}},
			want: []string{"no filter", "low stock under 5", "warehouse", "critical", "unguarded qty"}},
		{name: "plenty in shop", event: events.LowStock, data: map[string]any{"qty": 40, "location": "Shop"},
			want: []string{"no filter", "unguarded qty"}},
		{name: "transfer to warehouse", event: events.AssetTransferred, data: map[string]any{"location": "WH-9"},
			want: []string{"no filter", "warehouse"}},
		{name: "no data", event: events.LowStock, data: nil,
			want: []string{"no filter"}},
		{name: "huge list", event: events.LowStock, data: map[string]any{"qty": 0, "items": big},
			want: []string{"no filter", "low stock under 5"}},
	}
	hooks := map[string]string{}
	for _, f := range filters {
		hooks[f.name] = s.createWith(user, rcv.URL+"/"+strings.ReplaceAll(f.name, " ", "-"), []string{"LOW_STOCK", "ASSET_TRANSFERRED"},
			map[string]any{"filter": f.filter}).ID
	}

	ids := map[string]string{}
	total := 0
	for _, e := range evs {
		id, err := dispatcher(t, s).Trigger(context.Background(), e.event, dispatch.Event{UserID: user, Data: e.data})
		require.NoError(t, err)
		ids[e.name] = id
		total += len(e.want)
		assert.Equal(t, len(e.want), dispatchResult(t, id).Started, "%s: deliveries started", e.name)
	}
	reqs := rcv.WaitFor(t, total, time.Minute)
	time.Sleep(500 * time.Millisecond) // nothing more may arrive
	require.Len(t, rcv.Requests(), total, "exactly the matching deliveries arrived")
	got := map[string]bool{}
	for _, r := range reqs {
		got[r.Header.Get("X-AssetsUp-Delivery")] = true
	}

	c := testinfra.Temporal(t)
	for _, e := range evs {
		for _, f := range filters {
			delivered := slices.Contains(e.want, f.name)
			deliveryID := workflows.DeliveryID(ids[e.name], hooks[f.name])
			assert.Equal(t, delivered, got[deliveryID], "%s × %s: delivered", e.name, f.name)
			code, body := s.raw(user, http.MethodGet, "/webhooks/"+hooks[f.name]+"/deliveries/"+deliveryID, nil)
			if delivered {
				continue
			}
			require.Equal(t, http.StatusOK, code, "%s × %s: logged: %s", e.name, f.name, body)
			var d struct {
				Status    string `json:"status"`
				Attempts  int    `json:"attempts"`
				LastError string `json:"lastError"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &d))
			assert.Equal(t, "filtered", d.Status, "%s × %s", e.name, f.name)
			assert.Zero(t, d.Attempts)
			if f.name == "hostile" && e.name == "huge list" {
				assert.Contains(t, d.LastError, "cost limit", "%s × %s", e.name, f.name)
			}
			_, err := c.DescribeWorkflowExecution(context.Background(), workflows.DeliveryWorkflowID(ids[e.name], hooks[f.name]), "")
			var notFound *serviceerror.NotFound
			assert.ErrorAs(t, err, &notFound, "%s × %s: no workflow for a filtered delivery", e.name, f.name)
		}
	}
	for _, f := range filters {
		var listed struct {
			Deliveries []json.RawMessage `json:"deliveries"`
		}
		require.Equal(t, http.StatusOK, s.call(user, http.MethodGet, "/webhooks/"+hooks[f.name]+"/deliveries?status=filtered", nil, &listed))
		want := 0
		for _, e := range evs {
			if !slices.Contains(e.want, f.name) {
				want++
			}
		}
		assert.Len(t, listed.Deliveries, want, "%s: the filtered deliveries are listed", f.name)
		failures, active := webhookState(t, hooks[f.name])
		assert.Zero(t, failures, "%s: filtering is not failing", f.name)
		assert.True(t, active)
	}
}

// A rate-limited webhook's waiting deliveries hold no worker slot: deliveries to an
// unlimited webhook on the same worker go on at full speed meanwhile.
func TestThrottledWebhookHoldsNoOneElseBack(t *testing.T) {
	s := controlsStack(t, testfixture.WorkerConfig())
	slow, fast := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK)), testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	limitedUser, freeUser := newUser(), newUser()
	s.createWith(limitedUser, slow.URL+"/limited", []string{"LOW_STOCK"}, map[string]any{"rateLimit": map[string]any{"perSecond": 1}})
	s.createWith(freeUser, fast.URL+"/free", []string{"LOW_STOCK"}, nil)

	triggerMany(t, s, 20, events.LowStock, limitedUser, func(int) any { return nil })
	start := time.Now()
	triggerMany(t, s, 20, events.LowStock, freeUser, func(int) any { return nil })
	fast.WaitFor(t, 20, 30*time.Second)
	assert.Less(t, time.Since(start), 15*time.Second, "the unlimited webhook is not queued behind the limited one")
	assert.Less(t, len(slow.Requests()), 20, "the limited one is still being paced")
}
