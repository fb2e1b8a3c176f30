package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/deliveryworker"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/workflows"
)

type testAnswer struct {
	DeliveryID string  `json:"deliveryId"`
	Delivered  *bool   `json:"delivered"`
	StatusCode *int    `json:"statusCode"`
	DurationMS *int64  `json:"durationMs"`
	Error      *string `json:"error"`
}

func TestTestEndpoint(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	ok := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	failing := testfixture.NewReceiver(t, testfixture.Status(http.StatusServiceUnavailable))
	user := newUser()
	good := s.createWebhook(user, ok.URL, "LOW_STOCK")
	bad := s.createWebhook(user, failing.URL, "LOW_STOCK")

	var ans testAnswer
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPost, "/webhooks/"+good.ID+"/test", nil, &ans))
	require.NotNil(t, ans.Delivered)
	assert.True(t, *ans.Delivered)
	assert.Equal(t, 200, *ans.StatusCode)
	assert.NotEmpty(t, ans.DeliveryID)
	req := ok.Requests()[0]
	verify(t, good.Secret, req)
	assert.Regexp(t, `^\{"event":"webhook\.test","timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"\}$`, string(req.Body))
	assert.Equal(t, ans.DeliveryID, req.Header.Get("X-AssetsUp-Delivery"))

	// A failing receiver: one attempt, the status reported, the streak untouched.
	ans = testAnswer{}
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPost, "/webhooks/"+bad.ID+"/test", nil, &ans))
	assert.False(t, *ans.Delivered)
	assert.Equal(t, 503, *ans.StatusCode)
	assert.Contains(t, *ans.Error, "503")
	assert.Len(t, failing.Requests(), 1)
	failures, _ := webhookState(t, bad.ID)
	assert.Equal(t, 0, failures)

	// Works on a paused webhook; another user's is a 404.
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPatch, "/webhooks/"+good.ID, map[string]any{"isActive": false}, nil))
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPost, "/webhooks/"+good.ID+"/test", nil, &ans))
	assert.True(t, *ans.Delivered)
	assert.Equal(t, http.StatusNotFound, s.call(newUser(), http.MethodPost, "/webhooks/"+good.ID+"/test", nil, nil))
}

func TestTemporalDownAnswers503AndRegistryWorks(t *testing.T) {
	// A lazy client to a port nothing listens on: Temporal is down.
	tc, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Logger: testinfra.QuietLogger()})
	require.NoError(t, err)
	defer tc.Close()
	router := api.NewRouter(api.Deps{
		DB: testinfra.DB(t), Temporal: tc, Box: testfixture.Box(t), Policy: netguard.NewPolicy(true, nil), Logger: logs.Logger(),
		Config: api.Config{JWTSecret: jwtSecret, MaxBodyBytes: 64 << 10, MaxWebhooksPerUser: 10, TaskQueue: "none",
			TestTimeout: 5 * time.Second, TemporalTimeout: 2 * time.Second, RateLimit: 100, RateBurst: 100},
	})
	s := &stack{t: t, router: router}
	user := newUser()
	hook := s.createWebhook(user, "http://127.0.0.1:9/x", "LOW_STOCK")

	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	assert.Equal(t, http.StatusServiceUnavailable, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/test", nil, &body))
	assert.Equal(t, "temporal_unavailable", body.Error.Code)
	assert.Equal(t, http.StatusOK, s.call(user, http.MethodGet, "/webhooks/"+hook.ID, nil, nil))
	assert.Equal(t, http.StatusNoContent, s.call(user, http.MethodDelete, "/webhooks/"+hook.ID, nil, nil))

	rec := newRecorder(router, http.MethodGet, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), `"temporal":"unreachable"`)
	assert.Contains(t, rec.Body.String(), `"database":"ok"`)
}

func TestFanOutToManySubscribers(t *testing.T) {
	const n = 1000
	cfg := testfixture.WorkerConfig()
	cfg.DispatchChildrenPerRun = 300 // continues as new three times
	s := newStack(t, testfixture.WorkerSettings{Config: cfg})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := newUser()
	for range n {
		s.createWebhook(user, rcv.URL, "CHECKOUT_OVERDUE")
	}
	eventID, err := dispatcher(t, s).Trigger(context.Background(), events.CheckoutOverdue, dispatch.Event{UserID: user})
	require.NoError(t, err)
	assert.Equal(t, workflows.DispatchEventResult{Started: n}, dispatchResult(t, eventID))
	reqs := rcv.WaitFor(t, n, 3*time.Minute)
	seen := map[string]bool{}
	for _, r := range reqs {
		seen[r.Header.Get("X-AssetsUp-Delivery")] = true
	}
	assert.Len(t, seen, n, "one delivery per subscriber, each with its own id")
}

func TestNoWorkflowHistoryContainsASecret(t *testing.T) {
	s := newStack(t, testfixture.WorkerSettings{})
	ok := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	failing := testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError))
	user := newUser()
	hooks := []created{s.createWebhook(user, ok.URL+"/in?token=query-secret", "LOW_STOCK"), s.createWebhook(user, failing.URL, "LOW_STOCK")}
	eventID, err := dispatcher(t, s).Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user})
	require.NoError(t, err)
	for _, h := range hooks {
		deliveryResult(t, eventID, h.ID)
	}
	var rot struct{ Secret string }
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPost, "/webhooks/"+hooks[0].ID+"/rotate-secret", nil, &rot))
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPost, "/webhooks/"+hooks[0].ID+"/test", nil, nil))

	forbidden := []string{rot.Secret, strings.TrimPrefix(rot.Secret, "whsec_"), "query-secret"}
	for _, h := range hooks {
		forbidden = append(forbidden, h.Secret, strings.TrimPrefix(h.Secret, "whsec_"))
	}
	assertNoHistoryHolds(t, "a secret", forbidden)
	for _, secret := range forbidden {
		assert.NotContains(t, logs.String(), secret, "logs hold a secret")
	}
}

func TestDeliveryLogPruning(t *testing.T) {
	cfg := testfixture.WorkerConfig()
	cfg.DeliveryRetention = time.Hour
	s := newStack(t, testfixture.WorkerSettings{Config: cfg})
	ctx := context.Background()
	c := testinfra.Temporal(t)

	// The Schedule is created once and converges on the configured interval.
	require.NoError(t, deliveryworker.EnsurePruneSchedule(ctx, c, s.taskQueue, 2*time.Hour))
	require.NoError(t, deliveryworker.EnsurePruneSchedule(ctx, c, s.taskQueue, 3*time.Hour))
	desc, err := c.ScheduleClient().GetHandle(ctx, deliveryworker.PruneScheduleID).Describe(ctx)
	require.NoError(t, err)
	require.Len(t, desc.Schedule.Spec.Intervals, 1)
	assert.Equal(t, 3*time.Hour, desc.Schedule.Spec.Intervals[0].Every)

	user := newUser()
	hook := s.createWebhook(user, "http://127.0.0.1:9/", "LOW_STOCK")
	db := testinfra.DB(t)
	for i, age := range []time.Duration{3 * time.Hour, 2 * time.Hour, 10 * time.Minute} {
		_, err := db.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, workflow_id, run_id, created_at)
VALUES (gen_random_uuid(), ?, ?, 'LOW_STOCK', 'w', 'r', now() - ?::interval)`, hook.ID, fmt.Sprint("evt-", i), fmt.Sprintf("%d seconds", int(age.Seconds())))
		require.NoError(t, err)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "prune-" + user, TaskQueue: s.taskQueue}, workflows.PruneDeliveriesName)
	require.NoError(t, err)
	var res struct{ Deleted int }
	require.NoError(t, run.Get(ctx, &res))
	var left int
	require.NoError(t, db.NewRaw("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = ?", hook.ID).Scan(ctx, &left))
	assert.Equal(t, 1, left, "only the delivery younger than the retention stays")
	assert.GreaterOrEqual(t, res.Deleted, 2)
}
