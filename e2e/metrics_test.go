package e2e_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/netguard"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestWorkerExportsDeliveryAndSDKMetrics(t *testing.T) {
	masterKey, box := newMasterKey(t)
	tq := "metrics-" + uuid.NewString()
	metricsAddr := freeAddr(t)
	startWorkerProcess(t, masterKey, tq, "METRICS_ADDR="+metricsAddr)
	s := newAPIStack(t, box, testinfra.Temporal(t), tq)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")

	id, err := dispatch.NewWebhookDispatchService(testinfra.Temporal(t), tq).Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user})
	require.NoError(t, err)
	require.Equal(t, delivery.OutcomeSucceeded, deliveryResult(t, id, hook.ID).Outcome)

	var body string
	eventually(t, 10*time.Second, func() bool {
		body = scrape(t, "http://"+metricsAddr+"/metrics")
		return strings.Contains(body, `webhooks_deliveries_total{kind="event",outcome="succeeded"} 1`)
	}, "delivery counted")
	assert.Contains(t, body, `webhooks_delivery_attempts_total{result="success"} 1`)
	assert.Contains(t, body, "webhooks_send_duration_seconds_count 1")
	assert.Contains(t, body, "temporal_", "the SDK's own metrics are exported too")
	// The first attempt runs as a local activity (WEBHOOK_FIRST_ATTEMPT_LOCAL).
	assert.Regexp(t, `temporal_local_activity_execution_latency_seconds_count\{activity_type="Send"[^}]*\} 1`, body)
}

func TestAPIExportsRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	router := api.NewRouter(api.Deps{
		DB: testinfra.DB(t), Box: testfixture.Box(t), Policy: netguard.NewPolicy(false, nil), Logger: logs.Logger(), Registry: reg,
		Config: api.Config{JWTSecret: jwtSecret, MaxBodyBytes: 64 << 10, MaxWebhooksPerUser: 10, TaskQueue: "x",
			TestTimeout: time.Second, TemporalTimeout: time.Second, RateLimit: 100, RateBurst: 100},
	})
	s := &stack{t: t, router: router}
	user := newUser()
	require.Equal(t, http.StatusOK, s.call(user, http.MethodGet, "/webhooks", nil, nil))
	require.Equal(t, http.StatusNotFound, s.call(user, http.MethodGet, "/webhooks/nope", nil, nil))
	rec := newRecorder(router, http.MethodGet, "/metrics")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `webhooks_api_requests_total{method="GET",route="/webhooks",status="200"} 1`)
	assert.Contains(t, rec.Body.String(), `webhooks_api_requests_total{method="GET",route="/webhooks/:id",status="404"} 1`)
	assert.Contains(t, rec.Body.String(), `webhooks_api_request_duration_seconds_count{method="GET",route="/webhooks"} 1`)
}
