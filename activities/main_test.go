package activities_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/deliveryworker"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
)

// TestMain runs the package on its own database and, once every test has logged what
// it logs, fails the run if any secret a test issued reached the log.
func TestMain(m *testing.M) {
	code := testinfra.Main(m)
	if leaked := leakedSecrets(logs.String()); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d issued secret(s) appear in the log\n", len(leaked))
		code = 1
	}
	os.Exit(code)
}

// logs is everything the package's activities and test environments log, across all
// tests: TestMain checks it for secrets once they have all run.
var logs testinfra.LogBuffer

// issued remembers every secret the tests created, so the log and every error can be
// checked against all of them, not just the current test's.
var issued struct {
	mu      sync.Mutex
	secrets []string
}

func remember(secret string) {
	issued.mu.Lock()
	defer issued.mu.Unlock()
	issued.secrets = append(issued.secrets, secret)
}

// leakedSecrets returns the issued secrets, whole or as their base64 key part, found in s.
func leakedSecrets(s string) []string {
	issued.mu.Lock()
	defer issued.mu.Unlock()
	var leaked []string
	for _, sec := range issued.secrets {
		if strings.Contains(s, sec) || strings.Contains(s, strings.TrimPrefix(sec, secrets.Prefix)) {
			leaked = append(leaked, sec)
		}
	}
	return leaked
}

// hook is a webhook row the tests created, with the secret the receiver holds.
type hook = testfixture.Hook

// createHook inserts an active webhook subscribed to LOW_STOCK, pointing at url, with
// a fresh secret sealed by box, and remembers the secret for the leak checks.
func createHook(t *testing.T, db bun.IDB, box *secrets.Box, userID, url string) hook {
	t.Helper()
	h := testfixture.CreateWebhook(t, db, box, testfixture.Webhook{
		UserID: userID, URL: url, Events: []string{string(events.LowStock)},
	})
	remember(h.Secret)
	return h
}

// testConfig is the activities' configuration the tests start from.
func testConfig() activities.Config {
	cfg := deliveryworker.ActivitiesConfig(testfixture.WorkerConfig(), "test")
	cfg.RetryAfterMax = time.Minute
	cfg.DBRetryTimeout = 2 * time.Second
	return cfg
}

// newActivities builds the activities with a client that may reach 127.0.0.0/8 only
// (the test receivers). The client's per-host cap is the activities', as the worker builds them.
func newActivities(t *testing.T, db bun.IDB, box *secrets.Box, cfg activities.Config, timeout time.Duration) *activities.Delivery {
	t.Helper()
	cidrs, err := netguard.ParseCIDRs("127.0.0.0/8")
	require.NoError(t, err)
	client := activities.NewHTTPClient(timeout, cfg.MaxConnsPerHost, netguard.NewPolicy(false, cidrs))
	return activities.NewDelivery(db, client, box, cfg)
}

// newEnv returns an activity test environment with s registered. Its logger, which
// activity.GetLogger returns to the activities, writes into logs, so what the
// activities log can be asserted and the secret checks cover the SDK's lines too.
func newEnv(t *testing.T, s *activities.Delivery) *testsuite.TestActivityEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(tlog.NewStructuredLogger(logs.Logger()))
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(s)
	return env
}

// send runs the Send activity once. Every error it returns is checked for secrets and
// for the receiver's query-string token.
func send(t *testing.T, env *testsuite.TestActivityEnvironment, s *activities.Delivery, in activities.SendInput) (activities.SendResult, error) {
	t.Helper()
	val, err := env.ExecuteActivity(s.Send, in)
	if err != nil {
		assertClean(t, err.Error())
		return activities.SendResult{}, err
	}
	var res activities.SendResult
	require.NoError(t, val.Get(&res))
	return res, nil
}

// execute runs Send once like send, but asserts nothing, so it may run off the test's
// goroutine: for attempts made side by side, each in an environment of its own.
func execute(env *testsuite.TestActivityEnvironment, s *activities.Delivery, in activities.SendInput) (activities.SendResult, error) {
	val, err := env.ExecuteActivity(s.Send, in)
	if err != nil {
		return activities.SendResult{}, err
	}
	var res activities.SendResult
	err = val.Get(&res)
	return res, err
}

// assertClean fails when s holds an issued secret, a URL, or the receivers' query token.
func assertClean(t *testing.T, s string) {
	t.Helper()
	assert.Empty(t, leakedSecrets(s), "a secret leaked into %q", s)
	assert.NotContains(t, s, "supersecret")
	assert.NotContains(t, s, "http://")
	assert.NotContains(t, s, "?token=")
}

// testBackoff is the waits between a receiver's attempts in the tests; distinct values
// per attempt, so a delay taken from the wrong attempt number shows.
var testBackoff = activities.Backoff{Initial: 3 * time.Second, Coefficient: 2, Max: time.Minute}

// testMaxAttempts is the receiver's budget in the tests.
const testMaxAttempts = 3

// eventInput is an event delivery of LOW_STOCK to webhookID, with the tests' budget.
func eventInput(webhookID string) activities.SendInput {
	return activities.SendInput{
		Identity:    delivery.Identity{DeliveryID: uuid.NewString(), WebhookID: webhookID, Kind: delivery.KindEvent},
		MaxAttempts: testMaxAttempts,
		Backoff:     testBackoff,
		Payload: events.Payload{
			ID:        "evt_" + uuid.NewString(),
			Event:     events.LowStock,
			Timestamp: "2026-11-28T12:00:00Z",
			Data:      json.RawMessage(`{"sku":"A-1","qty":3,"note":"h\u00e9llo \u2713"}`),
		},
	}
}

// appError unwraps the ApplicationError an activity failed with.
func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	return appErr
}

// failureOf decodes the SendFailure details of a failed attempt.
func failureOf(t *testing.T, appErr *temporal.ApplicationError) activities.SendFailure {
	t.Helper()
	require.True(t, appErr.HasDetails(), "error %q has no details", appErr.Error())
	var f activities.SendFailure
	require.NoError(t, appErr.Details(&f))
	return f
}

// logRow reads a delivery log row back.
func logRow(t *testing.T, db bun.IDB, webhookID, deliveryID string) *models.Delivery {
	t.Helper()
	d, err := models.GetDelivery(context.Background(), db, webhookID, deliveryID)
	require.NoError(t, err)
	return d
}

// noLogRow asserts that deliveryID has no row: nothing was claimed or recorded.
func noLogRow(t *testing.T, db bun.IDB, webhookID, deliveryID string) {
	t.Helper()
	_, err := models.GetDelivery(context.Background(), db, webhookID, deliveryID)
	assert.ErrorIs(t, err, models.ErrNotFound, "a delivery row exists")
}

// webhook reads a webhook row back.
func webhook(t *testing.T, db bun.IDB, h hook) *models.Webhook {
	t.Helper()
	w, err := models.GetWebhook(context.Background(), db, h.UserID, h.ID)
	require.NoError(t, err)
	return w
}

// logged says whether one line of the package's log holds every one of parts.
func logged(parts ...string) bool {
	for line := range strings.SplitSeq(logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// holdingReceiver answers 200 but holds each request for which hold(n) is true (n counts
// requests from 0) until release is called, so a test can act while an attempt is in
// flight; entered receives once per held request. Release runs before the receiver's
// Close at cleanup, which would otherwise wait for the held handler forever.
func holdingReceiver(t *testing.T, hold func(n int) bool) (rcv *testfixture.Receiver, entered <-chan struct{}, release func()) {
	in, proceed := make(chan struct{}, 1), make(chan struct{})
	release = sync.OnceFunc(func() { close(proceed) })
	rcv = testfixture.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if hold(n) {
			in <- struct{}{}
			<-proceed
		}
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(release)
	return rcv, in, release
}
