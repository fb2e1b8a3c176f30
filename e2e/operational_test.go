package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/operational"
	"github.com/assetsup/webhooks/secrets"
)

// operationalBody is an operational event as the AssetsUp backend receives it.
type operationalBody struct {
	ID        string           `json:"id"`
	Type      operational.Type `json:"type"`
	Timestamp time.Time        `json:"timestamp"`
	Data      operational.Data `json:"data"`
}

// The AssetsUp backend is told once that a webhook is failing (at the alert threshold)
// and once that it was switched off, each POST verifiably signed with the operational
// secret; switched on again with recoverMissed, it is told the recovery completed.
func TestOperationalEventsReachTheBackendOnce(t *testing.T) {
	opsSecret, err := secrets.Generate()
	require.NoError(t, err)
	backend := testfixture.NewReceiver(t, testfixture.Status(http.StatusNoContent))
	backend.FailFirst(1) // the backend's own hiccup is retried, as a delivery's is

	cfg := testfixture.WorkerConfig()
	cfg.RetryMaxAttempts, cfg.DisableAfterFailures, cfg.AlertAfterFailures, cfg.RecoverRate = 2, 4, 2, 50
	cfg.OperationalWebhookURL, cfg.OperationalWebhookSecret = backend.URL+"/webhooks/operational", opsSecret
	s := newStack(t, testfixture.WorkerSettings{Config: cfg})
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")

	// Four failed deliveries switch the webhook off; the fifth event is missed.
	for i := range 5 {
		id, err := dispatcher(t, s).Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user, Data: map[string]any{"n": i}})
		require.NoError(t, err)
		if i < 4 {
			deliveryResult(t, id, hook.ID)
		} else {
			dispatchResult(t, id) // missed: nothing was delivered
		}
	}
	_, active := webhookState(t, hook.ID)
	require.False(t, active)

	got := waitForOperational(t, backend, 2)
	assert.Equal(t, []operational.Type{operational.WebhookFailing, operational.WebhookDisabled}, typesOf(got))
	failing, disabled := got[0], got[1]
	assert.Equal(t, operational.Data{UserID: user, WebhookID: hook.ID, WebhookName: "hook", Reason: "2 consecutive failed deliveries",
		FailureCount: 2, LastError: "receiver answered HTTP 500"}, failing.Data)
	assert.Equal(t, operational.Data{UserID: user, WebhookID: hook.ID, WebhookName: "hook", Reason: "disabled after 4 consecutive failed deliveries",
		FailureCount: 4}, disabled.Data)

	// Switched on with recoverMissed: the missed event is sent, and the backend told.
	rcv.SetStatus(http.StatusOK)
	var on api.RecoveredWebhook
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPatch, "/webhooks/"+hook.ID, map[string]any{"isActive": true, "recoverMissed": true}, &on))
	require.NotNil(t, on.Recovery)
	r := recoveryOf(t, s, user, hook.ID, on.Recovery.ID, time.Minute)
	require.Equal(t, "completed", r.State)
	got = waitForOperational(t, backend, 3)
	done := got[2]
	assert.Equal(t, operational.RecoveryCompleted, done.Type)
	require.NotNil(t, done.Data.Recovery)
	assert.Equal(t, operational.RecoverySummary{RecoveryID: r.ID, State: "completed", Matched: 1, Redelivered: 1, Succeeded: 1}, *done.Data.Recovery)

	// Nothing more, and nothing twice, however long one waits.
	time.Sleep(3 * time.Second)
	reqs := backend.Requests()
	ids := map[string]int{}
	for i, req := range reqs {
		verify(t, opsSecret, req) // the X-AssetsUp-Signature of the raw body, recomputed here
		assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
		var b operationalBody
		require.NoError(t, json.Unmarshal(req.Body, &b))
		assert.Equal(t, string(b.Type), req.Header.Get("X-AssetsUp-Event"))
		assert.Equal(t, b.ID, req.Header.Get("X-AssetsUp-Delivery"))
		if i > 0 { // the first was the backend's failed attempt, sent again
			ids[b.ID]++
		}
	}
	assert.Len(t, reqs, 4, "three events, one of them twice because the backend failed it once")
	assert.Len(t, ids, 3)
	for id, n := range ids {
		assert.Equal(t, 1, n, "event %s answered more than once", id)
	}
	assertNoHistoryHolds(t, "the operational secret", []string{opsSecret})
}

// waitForOperational waits until the backend has answered n events with a 2xx and
// returns them in order of arrival, decoded.
func waitForOperational(t *testing.T, backend *testfixture.Receiver, n int) []operationalBody {
	t.Helper()
	var out []operationalBody
	eventually(t, time.Minute, func() bool {
		out = nil
		seen := map[string]bool{}
		for i, req := range backend.Requests() {
			if i == 0 {
				continue // answered 500 (FailFirst)
			}
			var b operationalBody
			require.NoError(t, json.Unmarshal(req.Body, &b))
			if !seen[b.ID] {
				seen[b.ID] = true
				out = append(out, b)
			}
		}
		return len(out) >= n
	}, "the backend is told")
	return out
}

func typesOf(bs []operationalBody) []operational.Type {
	var out []operational.Type
	for _, b := range bs {
		out = append(out, b.Type)
	}
	return out
}

// When a rotated secret's grace period ends, the backend is told once, for the latest
// rotation only: one replaced again meanwhile has nothing to tell.
func TestOperationalRotationEnded(t *testing.T) {
	opsSecret, err := secrets.Generate()
	require.NoError(t, err)
	backend := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	cfg := testfixture.WorkerConfig()
	cfg.OperationalWebhookURL, cfg.OperationalWebhookSecret = backend.URL, opsSecret
	settings := testfixture.WorkerSettings{Config: cfg, Box: testfixture.Box(t), Logger: logs.Logger()}
	tq := testfixture.StartWorker(t, settings)
	s := &stack{t: t, box: settings.Box, taskQueue: tq, router: api.NewRouter(api.Deps{
		DB: testinfra.DB(t), Temporal: testinfra.Temporal(t), Box: settings.Box,
		Policy: netguard.NewPolicy(true, nil), Logger: logs.Logger(),
		Config: api.Config{
			JWTSecret: jwtSecret, MaxBodyBytes: 64 << 10, MaxWebhooksPerUser: 10, TaskQueue: tq,
			TestTimeout: 15 * time.Second, TemporalTimeout: 5 * time.Second, SecretGrace: 2 * time.Second,
			RateLimit: 10000, RateBurst: 10000,
		},
	})}
	user := newUser()
	hook := s.createWebhook(user, "http://127.0.0.1:9/in", "LOW_STOCK")

	var first, second api.RotatedSecret
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/rotate-secret", nil, &first))
	require.Equal(t, http.StatusOK, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/rotate-secret", nil, &second))
	backend.WaitFor(t, 1, 30*time.Second)
	time.Sleep(3 * time.Second) // past both graces: the first has nothing more to tell
	reqs := backend.Requests()
	require.Len(t, reqs, 1)
	verify(t, opsSecret, reqs[0])
	var b operationalBody
	require.NoError(t, json.Unmarshal(reqs[0].Body, &b))
	assert.Equal(t, operational.SecretRotationEnded, b.Type)
	assert.Equal(t, hook.ID, b.Data.WebhookID)
	assert.Equal(t, user, b.Data.UserID)
	require.NotNil(t, b.Data.PreviousSecretExpiredAt)
	assert.True(t, second.PreviousSecretExpiresAt.Equal(*b.Data.PreviousSecretExpiredAt), "the latest rotation's end")
	assert.False(t, b.Timestamp.Before(second.PreviousSecretExpiresAt), "recorded once the grace was over, not before")
}
