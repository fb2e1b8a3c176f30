package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
)

// testServer is the real router over the package's database, with what a test needs
// to look behind the API: the database, the Box that seals secrets and the JWT key.
type testServer struct {
	router    http.Handler
	db        *bun.DB
	box       *secrets.Box
	jwtSecret []byte
}

// serverOption changes the router's dependencies before it is built.
type serverOption func(*api.Deps)

func withCap(n int) serverOption {
	return func(d *api.Deps) { d.Config.MaxWebhooksPerUser = n }
}

func withPolicy(p *netguard.Policy) serverOption {
	return func(d *api.Deps) { d.Policy = p }
}

func withRateLimit(perSecond float64, burst int) serverOption {
	return func(d *api.Deps) { d.Config.RateLimit, d.Config.RateBurst = perSecond, burst }
}

// newServer builds the router as production does, without Temporal: the registry
// must work while Temporal is down.
func newServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	box := testfixture.Box(t)
	jwtSecret := make([]byte, 32)
	_, err := rand.Read(jwtSecret)
	require.NoError(t, err)

	d := api.Deps{
		DB:       testinfra.DB(t),
		Temporal: nil,
		Box:      box,
		Policy:   netguard.NewPolicy(false, nil),
		Config: api.Config{
			JWTSecret:          jwtSecret,
			MaxBodyBytes:       65536,
			MaxWebhooksPerUser: 50,
			TaskQueue:          "webhooks",
			TestTimeout:        5 * time.Second,
			TemporalTimeout:    2 * time.Second,
			SecretGrace:        24 * time.Hour,
			RateLimit:          1000,
			RateBurst:          1000,
			ListCacheBytes:     1 << 20, // on, as in production: every list test also checks it is never stale
			MaxHeaders:         10,
			MaxHeaderBytes:     4096,
			FilterMaxBytes:     2048,
			FilterCostLimit:    10000,
		},
		Logger: logs.Logger(),
	}
	for _, o := range opts {
		o(&d)
	}
	return &testServer{router: api.NewRouter(d), db: d.DB, box: box, jwtSecret: jwtSecret}
}

// newUser is a fresh owner, so a test sees only the rows it made.
func newUser() string { return uuid.NewString() }

func (s *testServer) token(t testing.TB, user string) string {
	t.Helper()
	tok, err := api.IssueToken(s.jwtSecret, user, time.Hour, time.Now())
	require.NoError(t, err)
	return tok
}

// do sends a request as user; an empty user sends no Authorization header.
func (s *testServer) do(t testing.TB, method, path, user, body string) *httptest.ResponseRecorder {
	t.Helper()
	auth := ""
	if user != "" {
		auth = "Bearer " + s.token(t, user)
	}
	return s.doAuth(t, method, path, auth, body)
}

// doAuth sends a request with the Authorization header as given ("" sends none).
func (s *testServer) doAuth(t testing.TB, method, path, authorization, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return s.serve(req)
}

// newRequest is a bodiless request with the Authorization header as given, for a test
// that sets more headers before serve.
func (s *testServer) newRequest(method, path, authorization string) *http.Request {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", authorization)
	return req
}

func (s *testServer) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.router.ServeHTTP(rec, req)
	return rec
}

// create registers a webhook for user and fails the test unless it is a 201.
func (s *testServer) create(t testing.TB, user, body string) api.CreatedWebhook {
	t.Helper()
	rec := s.do(t, http.MethodPost, "/webhooks", user, body)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var w api.CreatedWebhook
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &w))
	return w
}

// count reads the database, not the API, so a refused request is proven to store nothing.
func (s *testServer) count(t *testing.T, user string) int {
	t.Helper()
	var n int
	err := s.db.QueryRowContext(context.Background(), "SELECT count(*) FROM webhooks WHERE user_id = ?", user).Scan(&n)
	require.NoError(t, err)
	return n
}

// hookJSON is a create body; name, url and events are JSON-encoded as given.
func hookJSON(name, url string, evs ...string) string {
	b, err := json.Marshal(map[string]any{"name": name, "url": url, "events": evs})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// validHook is a body every policy accepts.
func validHook(name string) string {
	return hookJSON(name, "https://hooks.example.com/assetsup", "LOW_STOCK")
}

// apiError is the one error shape; decoding it strictly proves nothing else is in the body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// requireError checks status and code and that the body is exactly the error shape,
// and returns the message.
func requireError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	require.Equal(t, status, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Header().Get("Content-Type"), "application/json")
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	var body apiError
	require.NoError(t, dec.Decode(&body), rec.Body.String())
	assert.Equal(t, code, body.Error.Code, rec.Body.String())
	assert.NotEmpty(t, body.Error.Message)
	return body.Error.Message
}

func TestHealthz(t *testing.T) {
	s := newServer(t)
	rec := s.do(t, http.MethodGet, "/healthz", "", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"status":"ok"}`, rec.Body.String())
}

func TestListEvents(t *testing.T) {
	s := newServer(t)
	rec := s.do(t, http.MethodGet, "/events", newUser(), "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	var got []events.Descriptor
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	// The portal renders this list as the subscription picker: all 11 events, in
	// catalogue order, each with something to show next to it; never the test event.
	require.Len(t, got, 11)
	assert.Equal(t, events.Catalogue(), got)
	for _, d := range got {
		assert.True(t, d.Name.Valid(), d.Name)
		assert.NotEmpty(t, d.Description, d.Name)
		assert.NotEqual(t, events.Test, d.Name)
	}
}

// TestTemporalUnavailable runs with Temporal: nil, as when Temporal is down at start:
// test deliveries say so with a 503 while the registry keeps working.
func TestTemporalUnavailable(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("no temporal"))

	rec := s.do(t, http.MethodPost, "/webhooks/"+w.ID+"/test", user, "")
	requireError(t, rec, http.StatusServiceUnavailable, "temporal_unavailable")

	rec = s.do(t, http.MethodGet, "/webhooks/"+w.ID, user, "")
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = s.do(t, http.MethodPatch, "/webhooks/"+w.ID, user, `{"name":"still editable"}`)
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = s.do(t, http.MethodGet, "/webhooks", user, "")
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	// Readiness, unlike liveness, reports the missing dependency.
	rec = s.do(t, http.MethodGet, "/readyz", "", "")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"status":"unavailable","checks":{"database":"ok","temporal":"not configured"}}`, rec.Body.String())

	rec = s.do(t, http.MethodDelete, "/webhooks/"+w.ID, user, "")
	assert.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
}

func TestRoutingErrors(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("routing"))

	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		wantStatus int
		wantCode   string
	}{
		{name: "unknown route", giveMethod: http.MethodGet, givePath: "/nope", wantStatus: http.StatusNotFound, wantCode: "not_found"},
		{name: "PUT is not PATCH", giveMethod: http.MethodPut, givePath: "/webhooks/" + w.ID, wantStatus: http.StatusMethodNotAllowed, wantCode: "method_not_allowed"},
		{name: "GET rotate-secret", giveMethod: http.MethodGet, givePath: "/webhooks/" + w.ID + "/rotate-secret", wantStatus: http.StatusMethodNotAllowed, wantCode: "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(t, tt.giveMethod, tt.givePath, user, `{"name":"x"}`)
			requireError(t, rec, tt.wantStatus, tt.wantCode)
		})
	}
	// None of those may have touched the webhook.
	rec := s.do(t, http.MethodGet, "/webhooks/"+w.ID, user, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `"name":"routing"`)
}

func TestRateLimit(t *testing.T) {
	s := newServer(t, withRateLimit(1, 2))
	user, other := newUser(), newUser()

	// The burst lets two requests through at once; the third must wait a second.
	for i := range 2 {
		rec := s.do(t, http.MethodGet, "/webhooks", user, "")
		require.Equal(t, http.StatusOK, rec.Code, "request %d", i+1)
	}
	rec := s.do(t, http.MethodGet, "/webhooks", user, "")
	requireError(t, rec, http.StatusTooManyRequests, "rate_limited")
	retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After must be whole seconds, got %q", rec.Header().Get("Retry-After"))
	assert.GreaterOrEqual(t, retry, 1)
	assert.LessOrEqual(t, retry, 2)

	// Buckets are per user: one busy portal user does not lock out another.
	rec = s.do(t, http.MethodGet, "/webhooks", other, "")
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	// A refused request spends no token, so after the advertised wait the user is served.
	time.Sleep(time.Duration(retry) * time.Second)
	rec = s.do(t, http.MethodGet, "/webhooks", user, "")
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

// padded returns a valid create body of exactly size bytes: whitespace between tokens
// is legal JSON, so only the size decides.
func padded(size int) string {
	body := validHook("padded")
	return body[:1] + strings.Repeat(" ", size-len(body)) + body[1:]
}

func TestBodyLimit(t *testing.T) {
	s := newServer(t)
	user := newUser()
	existing := s.create(t, user, validHook("existing"))
	const limit = 65536

	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		give       string
		wantStatus int
	}{
		{name: "create at the limit", giveMethod: http.MethodPost, givePath: "/webhooks", give: padded(limit), wantStatus: http.StatusCreated},
		{name: "create one byte over", giveMethod: http.MethodPost, givePath: "/webhooks", give: padded(limit + 1), wantStatus: http.StatusRequestEntityTooLarge},
		{name: "create with a huge name", giveMethod: http.MethodPost, givePath: "/webhooks", give: validHook(strings.Repeat("n", 100<<10)), wantStatus: http.StatusRequestEntityTooLarge},
		{name: "create with a megabyte of whitespace", giveMethod: http.MethodPost, givePath: "/webhooks", give: "{" + strings.Repeat(" ", 1<<20) + "}", wantStatus: http.StatusRequestEntityTooLarge},
		{name: "patch over", giveMethod: http.MethodPatch, givePath: "/webhooks/" + existing.ID, give: `{"name":"` + strings.Repeat("n", 70<<10) + `"}`, wantStatus: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.count(t, user)
			rec := s.do(t, tt.giveMethod, tt.givePath, user, tt.give)
			if tt.wantStatus == http.StatusCreated {
				require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
				assert.Equal(t, before+1, s.count(t, user))
				return
			}
			msg := requireError(t, rec, tt.wantStatus, "payload_too_large")
			assert.Contains(t, msg, "65536")
			assert.Equal(t, before, s.count(t, user), "a refused body must store nothing")
		})
	}
	rec := s.do(t, http.MethodGet, "/webhooks/"+existing.ID, user, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `"name":"existing"`, "an oversized PATCH must change nothing")
}
