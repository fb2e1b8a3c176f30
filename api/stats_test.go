package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/models"
)

func TestStats(t *testing.T) {
	s := newServer(t, withRecoverWindow(72*time.Hour))
	ctx := context.Background()
	user := newUser()
	w := s.create(t, user, validHook("health"))
	// Three delivered at 120 ms, one failed after 3 attempts; then the failure is counted
	// on the webhook, as the outcome step does.
	for i := range 4 {
		status, attempts, errMsg := "succeeded", 1, any(nil)
		if i == 3 {
			status, attempts, errMsg = "failed", 3, "receiver answered HTTP 502"
		}
		_, err := s.db.NewRaw(`INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, kind, status, attempts, duration_ms,
			last_error, workflow_id, run_id, completed_at) VALUES (?, ?, ?, 'LOW_STOCK', 'event', ?, ?, 120, ?, 'w', 'r', current_timestamp)`,
			uuid.NewString(), w.ID, "evt_"+uuid.NewString(), status, attempts, errMsg).Exec(ctx)
		require.NoError(t, err)
	}
	_, err := models.CompleteDelivery(ctx, s.db, models.Completion{
		Delivery: models.Delivery{ID: uuid.NewString(), WebhookID: w.ID, EventID: "e", Event: "LOW_STOCK", Kind: "test", WorkflowID: "w", RunID: "r"},
	})
	require.NoError(t, err)
	_, err = s.db.NewRaw(`UPDATE webhooks SET failure_count = 1 WHERE id = ?`, w.ID).Exec(ctx)
	require.NoError(t, err)

	rec := s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/stats?window=1h", user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got api.Stats
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, "1h0m0s", got.Window)
	assert.Equal(t, 4, got.Deliveries.Total, "the test delivery is not counted")
	assert.Equal(t, 3, got.Deliveries.Succeeded)
	assert.Equal(t, 1, got.Deliveries.Failed)
	require.NotNil(t, got.SuccessRate)
	assert.InDelta(t, 0.75, *got.SuccessRate, 1e-9)
	require.NotNil(t, got.AttemptsPerDelivery)
	assert.InDelta(t, 1.5, *got.AttemptsPerDelivery, 1e-9)
	require.NotNil(t, got.ResponseTimeMS.P50)
	assert.InDelta(t, 120, *got.ResponseTimeMS.P50, 30, "within its bucket [100, 150)")
	require.NotNil(t, got.LastError)
	assert.Equal(t, "receiver answered HTTP 502", *got.LastError.Message)
	require.NotNil(t, got.FailureStreak)
	assert.Equal(t, 1, got.FailureStreak.Failures)
	assert.WithinDuration(t, time.Now(), got.FailureStreak.Since, time.Minute)
	assert.True(t, got.IsActive)
	assert.WithinDuration(t, got.Until.Add(-time.Hour), got.Since, time.Second)

	// Every field is in the answer, null or not.
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	for _, k := range []string{"webhookId", "window", "since", "until", "deliveries", "successRate", "attemptsPerDelivery",
		"responseTimeMs", "lastError", "failureStreak", "isActive", "disabledAt", "disabledReason"} {
		assert.Contains(t, raw, k)
	}

	empty := s.create(t, user, validHook("quiet"))
	rec = s.do(t, http.MethodGet, "/webhooks/"+empty.ID+"/stats", user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"window":"24h0m0s"`)
	assert.Contains(t, rec.Body.String(), `"successRate":null`)
	assert.Contains(t, rec.Body.String(), `"p50":null`)
	assert.Contains(t, rec.Body.String(), `"failureStreak":null`)
}

func TestStatsWindowIsChecked(t *testing.T) {
	s := newServer(t, withRecoverWindow(72*time.Hour))
	user := newUser()
	w := s.create(t, user, validHook("health"))
	for _, give := range []string{"soon", "30s", "-1h", "73h", "1d"} {
		t.Run(give, func(t *testing.T) {
			requireError(t, s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/stats?window="+give, user, ""), http.StatusBadRequest, "invalid_window")
		})
	}
	require.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/stats?window=72h", user, "").Code)
}
