package api_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/api"

	"github.com/assetsup/webhooks/secrets"
)

// secretPattern is "whsec_" and the standard base64 of 32 bytes.
var secretPattern = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`)

// webhookKeys are the fields of the API's webhook view, in camelCase as the portal reads them.
var webhookKeys = []string{
	"id", "userId", "name", "url", "events", "isActive", "lastTriggeredAt", "failureCount",
	"disabledReason", "disabledAt", "createdAt", "updatedAt", "headers", "rateLimit", "maxInFlight", "filter",
}

func decodeObject(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m), string(body))
	return m
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "want an RFC 3339 string, got %v", v)
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return ts
}

func TestWebhookLifecycle(t *testing.T) {
	s := newServer(t)
	user := newUser()
	ctx := context.Background()

	start := time.Now()
	rec := s.do(t, http.MethodPost, "/webhooks", user,
		hookJSON("  Slack relay  ", "https://hooks.example.com/assetsup", "LOW_STOCK", "ASSET_TRANSFERRED"))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	created := decodeObject(t, rec.Body.Bytes())
	assert.ElementsMatch(t, append(slices.Clone(webhookKeys), "secret"), sortedKeys(created))

	id, _ := created["id"].(string)
	_, err := uuid.Parse(id)
	require.NoError(t, err, "id must be a UUID")
	assert.Equal(t, user, created["userId"])
	assert.Equal(t, "Slack relay", created["name"], "the name is stored trimmed")
	assert.Equal(t, "https://hooks.example.com/assetsup", created["url"])
	assert.Equal(t, []any{"LOW_STOCK", "ASSET_TRANSFERRED"}, created["events"])
	assert.Equal(t, true, created["isActive"])
	assert.Nil(t, created["lastTriggeredAt"])
	assert.Equal(t, float64(0), created["failureCount"])
	assert.Nil(t, created["disabledReason"])
	assert.Nil(t, created["disabledAt"])
	assert.WithinDuration(t, start, parseTime(t, created["createdAt"]), time.Minute)
	assert.WithinDuration(t, start, parseTime(t, created["updatedAt"]), time.Minute)
	assert.Regexp(t, secretPattern, created["secret"])

	// GET shows the same webhook, minus the secret.
	rec = s.do(t, http.MethodGet, "/webhooks/"+id, user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	state := decodeObject(t, rec.Body.Bytes())
	want := maps.Clone(created)
	delete(want, "secret")
	assert.Equal(t, want, state)

	// Each PATCH changes exactly the fields it names; every other field keeps its value.
	tests := []struct {
		name           string
		give           string
		want           map[string]any
		wantDisabledAt bool // disabledAt is newly set to the pause time
	}{
		{name: "rename", give: `{"name":"  Renamed  "}`, want: map[string]any{"name": "Renamed"}},
		{name: "new url", give: `{"url":"https://hooks.example.org/v2"}`, want: map[string]any{"url": "https://hooks.example.org/v2"}},
		{name: "new events", give: `{"events":["WORK_ORDER_ASSIGNED","BOOKING_CANCELLED"]}`, want: map[string]any{"events": []any{"WORK_ORDER_ASSIGNED", "BOOKING_CANCELLED"}}},
		{name: "pause", give: `{"isActive":false}`, want: map[string]any{"isActive": false, "disabledReason": "paused by user"}, wantDisabledAt: true},
		// Pausing a paused webhook must not move disabledAt: it says when it stopped.
		{name: "pause again", give: `{"isActive":false}`, want: map[string]any{}},
		{name: "empty patch", give: `{}`, want: map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(t, http.MethodPatch, "/webhooks/"+id, user, tt.give)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			got := decodeObject(t, rec.Body.Bytes())
			assert.ElementsMatch(t, webhookKeys, sortedKeys(got))

			want := maps.Clone(state)
			maps.Copy(want, tt.want)
			if tt.wantDisabledAt {
				assert.WithinDuration(t, time.Now(), parseTime(t, got["disabledAt"]), time.Minute)
				want["disabledAt"] = got["disabledAt"]
			}
			assert.False(t, parseTime(t, got["updatedAt"]).Before(parseTime(t, state["updatedAt"])), "updatedAt went back")
			want["updatedAt"] = got["updatedAt"]
			assert.Equal(t, want, got)

			// The PATCH response is what is stored.
			rec = s.do(t, http.MethodGet, "/webhooks/"+id, user, "")
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, got, decodeObject(t, rec.Body.Bytes()))
			state = got
		})
	}

	// The delivery workflow disables a webhook after repeated failures; turning it back
	// on must start a new streak, not resume the old one.
	_, err = s.db.ExecContext(ctx,
		"UPDATE webhooks SET failure_count = 5, disabled_reason = 'too many failures' WHERE id = ?", id)
	require.NoError(t, err)
	rec = s.do(t, http.MethodPatch, "/webhooks/"+id, user, `{"isActive":true}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	got := decodeObject(t, rec.Body.Bytes())
	assert.Equal(t, true, got["isActive"])
	assert.Equal(t, float64(0), got["failureCount"])
	assert.Nil(t, got["disabledReason"])
	assert.Nil(t, got["disabledAt"])
	assert.Equal(t, "Renamed", got["name"])
	var failures int
	require.NoError(t, s.db.QueryRowContext(ctx, "SELECT failure_count FROM webhooks WHERE id = ?", id).Scan(&failures))
	assert.Zero(t, failures)

	rec = s.do(t, http.MethodDelete, "/webhooks/"+id, user, "")
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	assert.Empty(t, rec.Body.String())

	rec = s.do(t, http.MethodGet, "/webhooks/"+id, user, "")
	requireError(t, rec, http.StatusNotFound, "not_found")
	rec = s.do(t, http.MethodDelete, "/webhooks/"+id, user, "")
	requireError(t, rec, http.StatusNotFound, "not_found")
	rec = s.do(t, http.MethodGet, "/webhooks", user, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `[]`, rec.Body.String())
	assert.Zero(t, s.count(t, user))
}

func TestListWebhooks(t *testing.T) {
	s := newServer(t)
	user := newUser()

	rec := s.do(t, http.MethodGet, "/webhooks", user, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `[]`, rec.Body.String(), "no webhooks is an empty array, not null")

	var made []api.CreatedWebhook
	for _, name := range []string{"first", "second", "third"} {
		made = append(made, s.create(t, user, validHook(name)))
	}
	// Another user's webhook must not show up.
	s.create(t, newUser(), validHook("someone else's"))

	rec = s.do(t, http.MethodGet, "/webhooks", user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list []map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Len(t, list, 3)
	var names []any
	for _, w := range list {
		names = append(names, w["name"])
		assert.ElementsMatch(t, webhookKeys, sortedKeys(w))
		assert.Equal(t, user, w["userId"])
	}
	assert.Equal(t, []any{"third", "second", "first"}, names, "newest first")
	for _, w := range made {
		assert.NotContains(t, rec.Body.String(), w.Secret)
	}
	assert.NotContains(t, rec.Body.String(), `"secret"`)
}

// dumpDatabase returns every row of every table as JSON text, and every bytea value
// both as escaped text and as raw bytes: whatever a database dump or a curious DBA sees.
func dumpDatabase(t *testing.T, db *bun.DB) []string {
	t.Helper()
	ctx := context.Background()
	var tables []string
	require.NoError(t, db.NewRaw(`SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`).Scan(ctx, &tables))
	require.Contains(t, tables, "webhooks")

	var out []string
	for _, table := range tables {
		var rows []string
		require.NoError(t, db.NewRaw("SELECT row_to_json(t)::text FROM ? AS t", bun.Ident(table)).Scan(ctx, &rows))
		out = append(out, rows...)
	}

	var cols []struct {
		Table  string `bun:"table_name"`
		Column string `bun:"column_name"`
	}
	require.NoError(t, db.NewRaw(`SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type = 'bytea'`).Scan(ctx, &cols))
	require.NotEmpty(t, cols)
	for _, c := range cols {
		var escaped []string
		require.NoError(t, db.NewRaw("SELECT encode(?, 'escape') FROM ? WHERE ? IS NOT NULL",
			bun.Ident(c.Column), bun.Ident(c.Table), bun.Ident(c.Column)).Scan(ctx, &escaped))
		out = append(out, escaped...)
		var raw [][]byte
		require.NoError(t, db.NewRaw("SELECT ? FROM ? WHERE ? IS NOT NULL",
			bun.Ident(c.Column), bun.Ident(c.Table), bun.Ident(c.Column)).Scan(ctx, &raw))
		for _, b := range raw {
			out = append(out, string(b))
		}
	}
	return out
}

// requireNotInDatabase fails if any of secret's recognisable forms is stored anywhere.
func requireNotInDatabase(t *testing.T, db *bun.DB, secret string) {
	t.Helper()
	b64 := strings.TrimPrefix(secret, secrets.Prefix)
	require.NotEqual(t, secret, b64)
	for _, v := range dumpDatabase(t, db) {
		require.NotContains(t, v, secret)
		require.NotContains(t, v, b64)
	}
}

type storedSecret struct {
	Hash            string     `bun:"secret_hash"`
	Sealed          []byte     `bun:"secret_sealed"`
	KeyVersion      int        `bun:"secret_key_version"`
	PreviousSealed  []byte     `bun:"previous_secret_sealed"`
	PreviousVersion *int       `bun:"previous_secret_key_version"`
	PreviousExpires *time.Time `bun:"previous_secret_expires_at"`
}

func loadSecret(t *testing.T, db *bun.DB, id string) storedSecret {
	t.Helper()
	var s storedSecret
	require.NoError(t, db.NewRaw(`SELECT secret_hash, secret_sealed, secret_key_version, previous_secret_sealed,
		previous_secret_key_version, previous_secret_expires_at FROM webhooks WHERE id = ?`, id).Scan(context.Background(), &s))
	return s
}

func TestSecretShownOnlyOnCreate(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("secretive"))
	require.Regexp(t, secretPattern, w.Secret)
	b64 := strings.TrimPrefix(w.Secret, secrets.Prefix)

	// Every later response about this webhook, successful or not, must not carry it.
	responses := map[string]string{}
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/webhooks/" + w.ID, ""},
		{http.MethodGet, "/webhooks", ""},
		{http.MethodPatch, "/webhooks/" + w.ID, `{"name":"renamed"}`},
		{http.MethodPatch, "/webhooks/" + w.ID, `{"isActive":false}`},
		{http.MethodPatch, "/webhooks/" + w.ID, `{"url":"ftp://refused"}`},
		{http.MethodPost, "/webhooks/" + w.ID + "/test", ""},
	} {
		rec := s.do(t, r.method, r.path, user, r.body)
		require.NotEqual(t, http.StatusInternalServerError, rec.Code, rec.Body.String())
		responses[r.method+" "+r.path+" "+r.body] = rec.Body.String()
	}
	for req, body := range responses {
		assert.NotContains(t, body, b64, req)
		assert.NotContains(t, body, `"secret"`, req)
	}

	requireNotInDatabase(t, s.db, w.Secret)

	// What is stored instead: a fingerprint that proves issue, and the sealed secret
	// that only the master key opens, for this webhook id only.
	st := loadSecret(t, s.db, w.ID)
	assert.Equal(t, secrets.Fingerprint(w.Secret), st.Hash)
	assert.Equal(t, 1, st.KeyVersion)
	opened, err := s.box.Open(w.ID, st.Sealed, st.KeyVersion)
	require.NoError(t, err)
	assert.Equal(t, w.Secret, opened)
	_, err = s.box.Open(uuid.NewString(), st.Sealed, st.KeyVersion)
	assert.ErrorIs(t, err, secrets.ErrOpen, "the seal is bound to the webhook id")
	assert.Nil(t, st.PreviousSealed)
	assert.Nil(t, st.PreviousExpires)

	// Nor does the request log, which sees every route, nor any bearer token ("eyJhbGci"
	// opens every JWT header).
	logged := logs.String()
	require.Contains(t, logged, `"msg":"request"`, "the request log must be captured for this check to mean anything")
	assert.NotContains(t, logged, b64)
	assert.NotContains(t, logged, "eyJhbGci")
}

func TestRotateSecret(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("rotating"))

	before := time.Now()
	rec := s.do(t, http.MethodPost, "/webhooks/"+w.ID+"/rotate-secret", user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	got := decodeObject(t, rec.Body.Bytes())
	assert.ElementsMatch(t, []string{"secret", "previousSecretExpiresAt"}, sortedKeys(got))
	rotated, _ := got["secret"].(string)
	assert.Regexp(t, secretPattern, rotated)
	assert.NotEqual(t, w.Secret, rotated)
	expires := parseTime(t, got["previousSecretExpiresAt"])
	assert.WithinDuration(t, before.Add(24*time.Hour), expires, time.Minute)

	rec = s.do(t, http.MethodGet, "/webhooks/"+w.ID, user, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.NotContains(t, rec.Body.String(), `"secret"`)
	assert.NotContains(t, rec.Body.String(), strings.TrimPrefix(rotated, secrets.Prefix))
	assert.NotContains(t, rec.Body.String(), strings.TrimPrefix(w.Secret, secrets.Prefix))

	// The new secret signs from now on; the original keeps signing through the grace
	// period, so receivers can switch without dropping deliveries.
	st := loadSecret(t, s.db, w.ID)
	assert.Equal(t, secrets.Fingerprint(rotated), st.Hash)
	current, err := s.box.Open(w.ID, st.Sealed, st.KeyVersion)
	require.NoError(t, err)
	assert.Equal(t, rotated, current)
	require.NotNil(t, st.PreviousVersion)
	previous, err := s.box.Open(w.ID, st.PreviousSealed, *st.PreviousVersion)
	require.NoError(t, err)
	assert.Equal(t, w.Secret, previous)
	require.NotNil(t, st.PreviousExpires)
	assert.WithinDuration(t, before.Add(24*time.Hour), *st.PreviousExpires, time.Minute)
	assert.WithinDuration(t, expires, *st.PreviousExpires, time.Millisecond, "the response tells the stored expiry")

	requireNotInDatabase(t, s.db, w.Secret)
	requireNotInDatabase(t, s.db, rotated)

	// A second rotation retires the original for good: only the last two secrets sign.
	rec = s.do(t, http.MethodPost, "/webhooks/"+w.ID+"/rotate-secret", user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	st = loadSecret(t, s.db, w.ID)
	previous, err = s.box.Open(w.ID, st.PreviousSealed, *st.PreviousVersion)
	require.NoError(t, err)
	assert.Equal(t, rotated, previous)
}

func TestWebhookCap(t *testing.T) {
	s := newServer(t, withCap(3))
	user, other := newUser(), newUser()

	var ids []string
	for i := range 3 {
		ids = append(ids, s.create(t, user, validHook("hook "+string(rune('a'+i)))).ID)
	}
	rec := s.do(t, http.MethodPost, "/webhooks", user, validHook("one too many"))
	requireError(t, rec, http.StatusConflict, "limit_reached")
	assert.Equal(t, 3, s.count(t, user))

	// The cap is per user.
	s.create(t, other, validHook("other user"))

	// Deleting one frees its slot.
	rec = s.do(t, http.MethodDelete, "/webhooks/"+ids[0], user, "")
	require.Equal(t, http.StatusNoContent, rec.Code)
	s.create(t, user, validHook("replacement"))
	assert.Equal(t, 3, s.count(t, user))
}

// TestWebhookCapConcurrent fires creates at once, as a double-clicking portal does:
// the count and the insert must be one decision, or several slip under the cap.
func TestWebhookCapConcurrent(t *testing.T) {
	s := newServer(t, withCap(3))

	// A lost race shows only sometimes, so race a few fresh users.
	for round := range 5 {
		user := newUser()
		tok := "Bearer " + s.token(t, user)
		const n = 10
		statuses := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				statuses[i] = s.doAuth(t, http.MethodPost, "/webhooks", tok, validHook("racer")).Code
			})
		}
		close(start)
		wg.Wait()

		var created, refused int
		for _, st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
				refused++
			}
		}
		require.Equal(t, 3, created, "round %d: statuses %v", round, statuses)
		require.Equal(t, n-3, refused, "round %d: statuses %v", round, statuses)
		require.Equal(t, 3, s.count(t, user), "round %d", round)
	}
}

func TestOtherUsersWebhookIsNotFound(t *testing.T) {
	s := newServer(t)
	owner, intruder := newUser(), newUser()
	w := s.create(t, owner, validHook("private"))
	rec := s.do(t, http.MethodGet, "/webhooks/"+w.ID, owner, "")
	require.Equal(t, http.StatusOK, rec.Code)
	before := rec.Body.String()
	stBefore := loadSecret(t, s.db, w.ID)

	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		give       string
	}{
		{name: "get", giveMethod: http.MethodGet, givePath: "/webhooks/" + w.ID},
		{name: "patch", giveMethod: http.MethodPatch, givePath: "/webhooks/" + w.ID, give: `{"name":"taken","url":"https://evil.example/","isActive":false}`},
		{name: "delete", giveMethod: http.MethodDelete, givePath: "/webhooks/" + w.ID},
		{name: "rotate secret", giveMethod: http.MethodPost, givePath: "/webhooks/" + w.ID + "/rotate-secret"},
		{name: "test delivery", giveMethod: http.MethodPost, givePath: "/webhooks/" + w.ID + "/test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(t, tt.giveMethod, tt.givePath, intruder, tt.give)
			// 404, not 403: another user's ids must be indistinguishable from unused ones.
			requireError(t, rec, http.StatusNotFound, "not_found")
			assert.NotContains(t, rec.Body.String(), "private")
			assert.NotContains(t, rec.Body.String(), "hooks.example.com")
		})
	}

	rec = s.do(t, http.MethodGet, "/webhooks", intruder, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `[]`, rec.Body.String())

	rec = s.do(t, http.MethodGet, "/webhooks/"+w.ID, owner, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, before, rec.Body.String(), "the owner's webhook must be untouched")
	assert.Equal(t, stBefore, loadSecret(t, s.db, w.ID), "the secret must not have rotated")
}

func TestMalformedIDIsNotFound(t *testing.T) {
	s := newServer(t)
	user := newUser()

	tests := []struct {
		name       string
		giveMethod string
		givePath   string
	}{
		{name: "get", giveMethod: http.MethodGet, givePath: "/webhooks/not-a-uuid"},
		{name: "patch", giveMethod: http.MethodPatch, givePath: "/webhooks/not-a-uuid"},
		{name: "delete", giveMethod: http.MethodDelete, givePath: "/webhooks/not-a-uuid"},
		{name: "rotate secret", giveMethod: http.MethodPost, givePath: "/webhooks/not-a-uuid/rotate-secret"},
		{name: "sql in the id", giveMethod: http.MethodGet, givePath: "/webhooks/'%20OR%201=1--"},
		{name: "unused uuid", giveMethod: http.MethodGet, givePath: "/webhooks/" + uuid.NewString()},
		{name: "unused uuid patch", giveMethod: http.MethodPatch, givePath: "/webhooks/" + uuid.NewString()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(t, tt.giveMethod, tt.givePath, user, `{"name":"x"}`)
			requireError(t, rec, http.StatusNotFound, "not_found")
		})
	}
}
