package api_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/internal/testinfra"
)

func withDB(db *bun.DB) serverOption {
	return func(d *api.Deps) { d.DB = db }
}

// TestDatabaseOutage stops PostgreSQL under a running API: every route that needs it
// answers 503 database_unavailable with Retry-After, never a 500, a refused write
// stores nothing, and the first request after the database is back succeeds.
func TestDatabaseOutage(t *testing.T) {
	pg := testinfra.StartPrivatePostgres(t)
	s := newServer(t, withDB(pg.Open()))
	user := newUser()
	w := s.create(t, user, validHook("before the outage"))
	// The pool now holds used connections, as a running API's does.
	rec := s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/deliveries", user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	pg.Stop()
	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		giveBody   string
	}{
		{name: "list webhooks", giveMethod: http.MethodGet, givePath: "/webhooks"},
		{name: "create a webhook", giveMethod: http.MethodPost, givePath: "/webhooks", giveBody: validHook("during the outage")},
		{name: "list deliveries", giveMethod: http.MethodGet, givePath: "/webhooks/" + w.ID + "/deliveries"},
		{name: "get a webhook", giveMethod: http.MethodGet, givePath: "/webhooks/" + w.ID},
		{name: "change a webhook", giveMethod: http.MethodPatch, givePath: "/webhooks/" + w.ID, giveBody: `{"name":"during the outage"}`},
		{name: "rotate the secret", giveMethod: http.MethodPost, givePath: "/webhooks/" + w.ID + "/rotate-secret"},
		{name: "get a delivery", giveMethod: http.MethodGet, givePath: "/webhooks/" + w.ID + "/deliveries/" + uuid.NewString()},
		{name: "redeliver", giveMethod: http.MethodPost, givePath: "/webhooks/" + w.ID + "/deliveries/" + uuid.NewString() + "/redeliver"},
		{name: "send a test delivery", giveMethod: http.MethodPost, givePath: "/webhooks/" + w.ID + "/test"},
		{name: "delete a webhook", giveMethod: http.MethodDelete, givePath: "/webhooks/" + w.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(t, tt.giveMethod, tt.givePath, user, tt.giveBody)
			requireError(t, rec, http.StatusServiceUnavailable, "database_unavailable")
			retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
			require.NoError(t, err, "Retry-After must be whole seconds, got %q", rec.Header().Get("Retry-After"))
			assert.GreaterOrEqual(t, retry, 1)
			assert.LessOrEqual(t, retry, 30)
		})
	}

	pg.Start()
	rec = s.do(t, http.MethodGet, "/webhooks", user, "")
	require.Equal(t, http.StatusOK, rec.Code, "first request after the database is back: %s", rec.Body.String())
	var hooks []api.Webhook
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &hooks))
	require.Len(t, hooks, 1, "the create refused during the outage stored nothing")
	assert.Equal(t, "before the outage", hooks[0].Name, "the change refused during the outage changed nothing")
	assert.Equal(t, 1, s.count(t, user))

	s.create(t, user, validHook("after the outage"))
	rec = s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/deliveries", user, "")
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}
