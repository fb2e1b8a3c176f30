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
	"github.com/assetsup/webhooks/operational"
)

func withRecoverWindow(d time.Duration) serverOption {
	return func(deps *api.Deps) { deps.Config.RecoverMaxWindow = d }
}

// recoveryRows counts a webhook's recoveries in the database.
func recoveryRows(t *testing.T, s *testServer, webhookID string) int {
	t.Helper()
	n, err := s.db.NewSelect().Model((*models.Recovery)(nil)).Where("webhook_id = ?", webhookID).Count(context.Background())
	require.NoError(t, err)
	return n
}

func TestRecoverRefusesBadInputAndChangesNothing(t *testing.T) {
	s := newServer(t, withRecoverWindow(48*time.Hour))
	user := newUser()
	w := s.create(t, user, validHook("recovered"))
	path := "/webhooks/" + w.ID + "/recover"
	now := time.Now().UTC()
	tests := []struct {
		name   string
		give   string
		status int
		code   string
	}{
		{name: "no since", give: `{}`, status: 400, code: "invalid_since"},
		{name: "since not a time", give: `{"since":"yesterday"}`, status: 400, code: "invalid_since"},
		{name: "until not a time", give: `{"since":"2026-12-01T00:00:00Z","until":"soon"}`, status: 400, code: "invalid_until"},
		{name: "since after until", give: `{"since":"2026-12-02T00:00:00Z","until":"2026-12-01T00:00:00Z"}`, status: 400, code: "invalid_window"},
		{name: "window too long", give: `{"since":"2026-11-01T00:00:00Z","until":"2026-12-01T00:00:00Z"}`, status: 400, code: "invalid_window"},
		{name: "since older than the window allows", give: `{"since":"` + now.Add(-72*time.Hour).Format(time.RFC3339) + `"}`, status: 400, code: "invalid_window"},
		{name: "unknown status", give: `{"since":"2026-12-01T00:00:00Z","until":"2026-12-01T01:00:00Z","status":["succeeded"]}`, status: 400, code: "invalid_status"},
		{name: "empty status", give: `{"since":"2026-12-01T00:00:00Z","until":"2026-12-01T01:00:00Z","status":[]}`, status: 400, code: "invalid_status"},
		{name: "status not a list", give: `{"since":"2026-12-01T00:00:00Z","until":"2026-12-01T01:00:00Z","status":"failed"}`, status: 400, code: "invalid_status"},
		{name: "unknown field", give: `{"since":"2026-12-01T00:00:00Z","from":"x"}`, status: 400, code: "unknown_field"},
		{name: "not an object", give: `[]`, status: 400, code: "invalid_json"},
		// Valid, but Temporal is not there: a 503, and no recovery is left holding the slot.
		{name: "no temporal", give: `{"since":"2026-12-01T00:00:00Z","until":"2026-12-01T01:00:00Z","status":["missed","failed"]}`, status: 503, code: "temporal_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireError(t, s.do(t, http.MethodPost, path, user, tt.give), tt.status, tt.code)
			assert.Zero(t, recoveryRows(t, s, w.ID))
		})
	}
}

func TestRecoveryRoutesAreTheOwnersOnly(t *testing.T) {
	s := newServer(t)
	owner, other := newUser(), newUser()
	w := s.create(t, owner, validHook("mine"))
	rec := &models.Recovery{ID: uuid.NewString(), WebhookID: w.ID, UserID: owner,
		WindowStart: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), WindowEnd: time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC),
		Statuses: []string{"failed"}, Reason: models.RecoveryRequested, WorkflowID: "recovery:" + w.ID + ":x"}
	_, _, err := models.CreateRecovery(context.Background(), s.db, rec)
	require.NoError(t, err)
	body := `{"since":"2026-12-01T00:00:00Z","until":"2026-12-01T01:00:00Z"}`

	tests := []struct {
		method, path, body string
	}{
		{http.MethodPost, "/webhooks/" + w.ID + "/recover", body},
		{http.MethodGet, "/webhooks/" + w.ID + "/recoveries/" + rec.ID, ""},
		{http.MethodDelete, "/webhooks/" + w.ID + "/recoveries/" + rec.ID, ""},
		{http.MethodGet, "/webhooks/" + w.ID + "/stats", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			requireError(t, s.do(t, tt.method, tt.path, other, tt.body), http.StatusNotFound, "not_found")
		})
	}
	// Another webhook's recovery, and ids that cannot name one, are 404s too.
	w2 := s.create(t, owner, validHook("also mine"))
	requireError(t, s.do(t, http.MethodGet, "/webhooks/"+w2.ID+"/recoveries/"+rec.ID, owner, ""), http.StatusNotFound, "not_found")
	requireError(t, s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/recoveries/not-a-uuid", owner, ""), http.StatusNotFound, "not_found")

	got := s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/recoveries/"+rec.ID, owner, "")
	require.Equal(t, http.StatusOK, got.Code, got.Body.String())
	var view api.Recovery
	require.NoError(t, json.Unmarshal(got.Body.Bytes(), &view))
	assert.Equal(t, rec.ID, view.ID)
	assert.Equal(t, "running", view.State)
	assert.Equal(t, []string{"failed"}, view.Status)
	assert.True(t, view.Since.Equal(rec.WindowStart))

	// Cancelling needs Temporal; without it nothing changes.
	requireError(t, s.do(t, http.MethodDelete, "/webhooks/"+w.ID+"/recoveries/"+rec.ID, owner, ""), http.StatusServiceUnavailable, "temporal_unavailable")
	_, _, err = models.FinishRecovery(context.Background(), s.db, rec.ID, models.RecoveryCompleted, models.RecoveryProgress{}, "")
	require.NoError(t, err)
	requireError(t, s.do(t, http.MethodDelete, "/webhooks/"+w.ID+"/recoveries/"+rec.ID, owner, ""), http.StatusConflict, "recovery_finished")
}

func TestRecoverAnInactiveWebhookIsRefused(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("off"))
	require.Equal(t, http.StatusOK, s.do(t, http.MethodPatch, "/webhooks/"+w.ID, user, `{"isActive":false}`).Code)
	requireError(t, s.do(t, http.MethodPost, "/webhooks/"+w.ID+"/recover", user, `{"since":"2026-12-01T00:00:00Z","until":"2026-12-01T01:00:00Z"}`),
		http.StatusConflict, "webhook_inactive")
}

func TestPatchRecoverMissed(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("paused"))
	path := "/webhooks/" + w.ID
	tests := []struct {
		name, give, code string
		status           int
	}{
		{name: "not a boolean", give: `{"isActive":true,"recoverMissed":"yes"}`, status: 400, code: "invalid_field"},
		{name: "without isActive", give: `{"recoverMissed":true}`, status: 400, code: "invalid_recover_missed"},
		{name: "while pausing", give: `{"isActive":false,"recoverMissed":true}`, status: 400, code: "invalid_recover_missed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireError(t, s.do(t, http.MethodPatch, path, user, tt.give), tt.status, tt.code)
		})
	}

	// Already on: nothing was missed, so nothing starts (Temporal is not needed).
	rec := s.do(t, http.MethodPatch, path, user, `{"isActive":true,"recoverMissed":true}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got api.RecoveredWebhook
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.True(t, got.IsActive)
	assert.Nil(t, got.Recovery)
	assert.Contains(t, rec.Body.String(), `"recovery":null`)

	// Off, and Temporal unreachable: refused before anything changes.
	require.Equal(t, http.StatusOK, s.do(t, http.MethodPatch, path, user, `{"isActive":false}`).Code)
	requireError(t, s.do(t, http.MethodPatch, path, user, `{"isActive":true,"recoverMissed":true,"name":"renamed"}`),
		http.StatusServiceUnavailable, "temporal_unavailable")
	after, err := models.GetWebhook(context.Background(), s.db, user, w.ID)
	require.NoError(t, err)
	assert.False(t, after.IsActive, "still off")
	assert.Equal(t, "paused", after.Name, "nothing changed")

	// recoverMissed false is an ordinary switch-on.
	rec = s.do(t, http.MethodPatch, path, user, `{"isActive":true,"recoverMissed":false}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.NotContains(t, rec.Body.String(), `"recovery"`)
}

func TestListOperationalEvents(t *testing.T) {
	s := newServer(t)
	rec := s.do(t, http.MethodGet, "/events/operational", newUser(), "")
	require.Equal(t, http.StatusOK, rec.Code)
	var got []operational.Descriptor
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, operational.Catalogue(), got)
	assert.Len(t, got, 4)
}
