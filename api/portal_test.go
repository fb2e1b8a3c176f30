package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/portal"
)

var portalJWTSecret = []byte("portal-test-secret-portal-test-secret!!")

// portalRouter is the router without a database: enough for the portal's page, its
// headers and every refusal that comes before a handler reads a row.
func portalRouter(t *testing.T, cfg func(*api.Config)) http.Handler {
	t.Helper()
	c := api.Config{
		JWTSecret: portalJWTSecret, MaxBodyBytes: 65536, MaxWebhooksPerUser: 10, TaskQueue: "webhooks",
		TestTimeout: 5 * time.Second, TemporalTimeout: 2 * time.Second, SecretGrace: time.Hour,
		RateLimit: 1000, RateBurst: 1000,
	}
	if cfg != nil {
		cfg(&c)
	}
	return api.NewRouter(api.Deps{
		Box: testfixture.Box(t), Policy: netguard.NewPolicy(false, nil),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: c,
	})
}

func serveReq(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func bearer(method, path, token string) *http.Request {
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// openPortal does what the host application and the page do: a session for user with
// the backend's JWT, then the exchange of its link. It returns both tokens.
func (s *testServer) openPortal(t *testing.T, user string) (api.PortalSession, api.PortalExchange, string) {
	t.Helper()
	rec := s.do(t, http.MethodPost, "/portal/sessions", user, "")
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	var sess api.PortalSession
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &sess))
	_, link, ok := strings.Cut(sess.URL, "#link=")
	require.True(t, ok, "the link token is in the URL's fragment: %s", sess.URL)
	rec = s.serve(s.newRequest(http.MethodPost, "/portal/exchange", "Bearer "+link))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	var ex api.PortalExchange
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ex))
	return sess, ex, link
}

func TestPortalSessionGrantsTheUsersWebhooks(t *testing.T) {
	s := newServer(t)
	user, other := newUser(), newUser()
	theirs := s.create(t, other, validHook("someone else's"))

	before := time.Now()
	sess, ex, link := s.openPortal(t, user)
	assert.True(t, strings.HasPrefix(sess.URL, "http://example.com/portal/#link="+portal.LinkPrefix), sess.URL)
	assert.Equal(t, strings.TrimPrefix(sess.URL, "http://example.com"), sess.Path)
	assert.WithinDuration(t, before.Add(time.Hour), sess.ExpiresAt, 5*time.Second, "PORTAL_SESSION_TTL's default")
	assert.WithinDuration(t, before.Add(2*time.Minute), sess.LinkExpiresAt, 5*time.Second, "PORTAL_LINK_TTL's default")
	assert.True(t, strings.HasPrefix(ex.Token, portal.SessionPrefix))
	assert.WithinDuration(t, sess.ExpiresAt, ex.ExpiresAt, time.Second, "the session ends when the link said")
	assert.Nil(t, ex.WorkflowURL, "no Temporal Web UI configured")

	auth := "Bearer " + ex.Token
	rec := s.doAuth(t, http.MethodPost, "/webhooks", auth, validHook("mine"))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var mine api.CreatedWebhook
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &mine))
	assert.Equal(t, user, mine.UserID, "the session acts as the user who opened it")
	rec = s.doAuth(t, http.MethodGet, "/webhooks", auth, "")
	require.Equal(t, http.StatusOK, rec.Code)
	var list []api.Webhook
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Len(t, list, 1)
	assert.Equal(t, mine.ID, list[0].ID)
	assert.Equal(t, http.StatusOK, s.doAuth(t, http.MethodGet, "/events", auth, "").Code)

	tests := []struct {
		name     string
		method   string
		path     string
		auth     string
		wantCode int
	}{
		{name: "another user's webhook", method: http.MethodGet, path: "/webhooks/" + theirs.ID, auth: auth, wantCode: http.StatusNotFound},
		{name: "deleting another user's webhook", method: http.MethodDelete, path: "/webhooks/" + theirs.ID, auth: auth, wantCode: http.StatusNotFound},
		{name: "a session cannot open sessions", method: http.MethodPost, path: "/portal/sessions", auth: auth, wantCode: http.StatusUnauthorized},
		{name: "a session is not a link", method: http.MethodPost, path: "/portal/exchange", auth: auth, wantCode: http.StatusUnauthorized},
		{name: "the backend's JWT is not a link", method: http.MethodPost, path: "/portal/exchange", auth: "Bearer " + s.token(t, user), wantCode: http.StatusUnauthorized},
		{name: "a link is not a bearer token", method: http.MethodGet, path: "/webhooks", auth: "Bearer " + link, wantCode: http.StatusUnauthorized},
		{name: "a link cannot open sessions", method: http.MethodPost, path: "/portal/sessions", auth: "Bearer " + link, wantCode: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.doAuth(t, tt.method, tt.path, tt.auth, "")
			assert.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
		})
	}
	assert.Equal(t, 1, s.count(t, other), "the other user's webhook is untouched")

	// Neither token ever reaches a log line.
	assert.NotContains(t, logs.String(), link)
	assert.NotContains(t, logs.String(), ex.Token)
	assert.NotContains(t, logs.String(), strings.TrimPrefix(link, portal.LinkPrefix))
}

func TestPortalRefusesBadTokens(t *testing.T) {
	r := portalRouter(t, nil)
	tokens := portal.NewTokens(portalJWTSecret)
	stranger := portal.NewTokens([]byte("another-deployment's-secret-0123456789"))
	now := time.Now()
	issue := func(tk *portal.Tokens, kind portal.Kind, at time.Time, ttl time.Duration) string {
		tok, err := tk.Issue(kind, "user-1", at, at.Add(ttl), at.Add(time.Hour))
		require.NoError(t, err)
		return tok
	}
	good := issue(tokens, portal.Link, now, time.Minute)
	backendJWT, err := api.IssueToken(portalJWTSecret, "user-1", time.Hour, now)
	require.NoError(t, err)

	tests := []struct {
		name        string
		path        string
		token       string
		wantMessage string
	}{
		{name: "no link", path: "/portal/exchange", token: "", wantMessage: "missing portal link"},
		{name: "expired link", path: "/portal/exchange", token: issue(tokens, portal.Link, now.Add(-time.Hour), time.Minute), wantMessage: "expired"},
		{name: "link of another deployment", path: "/portal/exchange", token: issue(stranger, portal.Link, now, time.Minute), wantMessage: "not valid"},
		{name: "tampered link", path: "/portal/exchange", token: good[:len(good)-3] + "AAA", wantMessage: "not valid"},
		{name: "made-up link", path: "/portal/exchange", token: portal.LinkPrefix + "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEifQ.", wantMessage: "not valid"},
		{name: "backend JWT with a link prefix", path: "/portal/exchange", token: portal.LinkPrefix + backendJWT, wantMessage: "not valid"},
		{name: "expired session", path: "/webhooks", token: issue(tokens, portal.Session, now.Add(-2*time.Hour), time.Hour), wantMessage: "portal session expired"},
		{name: "session of another deployment", path: "/webhooks", token: issue(stranger, portal.Session, now, time.Hour), wantMessage: "portal session not valid"},
		{name: "backend JWT with a session prefix", path: "/webhooks", token: portal.SessionPrefix + backendJWT, wantMessage: "portal session not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if tt.path == "/portal/exchange" {
				method = http.MethodPost
			}
			rec := serveReq(r, bearer(method, tt.path, tt.token))
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
			assert.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.Equal(t, "unauthorized", body.Error.Code)
			assert.Contains(t, body.Error.Message, tt.wantMessage)
			assert.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
		})
	}
}

func TestPortalSessionURLs(t *testing.T) {
	tests := []struct {
		name            string
		cfg             func(*api.Config)
		header          map[string]string
		wantURLPrefix   string
		wantWorkflowURL string
	}{
		{name: "the request's host", wantURLPrefix: "http://example.com/portal/#link="},
		{name: "behind a TLS proxy", header: map[string]string{"X-Forwarded-Proto": "https"}, wantURLPrefix: "https://example.com/portal/#link="},
		{name: "public url", cfg: func(c *api.Config) { c.PortalPublicURL = "https://webhooks.assetsup.example/api/" }, wantURLPrefix: "https://webhooks.assetsup.example/api/portal/#link="},
		{name: "temporal ui", cfg: func(c *api.Config) { c.PortalTemporalUIURL, c.TemporalNamespace = "http://127.0.0.1:8233/", "team a" },
			wantURLPrefix: "http://example.com/portal/#link=", wantWorkflowURL: "http://127.0.0.1:8233/namespaces/team%20a/workflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := portalRouter(t, tt.cfg)
			jwt, err := api.IssueToken(portalJWTSecret, "user-1", time.Hour, time.Now())
			require.NoError(t, err)
			req := bearer(http.MethodPost, "/portal/sessions", jwt)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := serveReq(r, req)
			require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
			var sess api.PortalSession
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &sess))
			assert.True(t, strings.HasPrefix(sess.URL, tt.wantURLPrefix), sess.URL)
			_, link, _ := strings.Cut(sess.URL, "#link=")
			rec = serveReq(r, bearer(http.MethodPost, "/portal/exchange", link))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			var ex api.PortalExchange
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ex))
			if tt.wantWorkflowURL == "" {
				assert.Nil(t, ex.WorkflowURL)
			} else if assert.NotNil(t, ex.WorkflowURL) {
				assert.Equal(t, tt.wantWorkflowURL, *ex.WorkflowURL)
			}
		})
	}
}

func TestPortalPage(t *testing.T) {
	r := portalRouter(t, func(c *api.Config) { c.PortalFrameAncestors = "'self' https://app.assetsup.example" })
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantType   string
	}{
		{name: "the page", method: http.MethodGet, path: "/portal/", wantStatus: http.StatusOK, wantType: "text/html; charset=utf-8"},
		{name: "without the slash", method: http.MethodGet, path: "/portal", wantStatus: http.StatusMovedPermanently},
		{name: "a module", method: http.MethodGet, path: "/portal/app.js", wantStatus: http.StatusOK, wantType: "text/javascript; charset=utf-8"},
		{name: "compressed", method: http.MethodGet, path: "/portal/lib.js", header: map[string]string{"Accept-Encoding": "gzip, br"}, wantStatus: http.StatusOK, wantType: "text/javascript; charset=utf-8"},
		{name: "a snippet is text", method: http.MethodGet, path: "/portal/snippets/verify.mjs.txt", wantStatus: http.StatusOK, wantType: "text/plain; charset=utf-8"},
		{name: "head", method: http.MethodHead, path: "/portal/app.css", wantStatus: http.StatusOK, wantType: "text/css; charset=utf-8"},
		{name: "no such file", method: http.MethodGet, path: "/portal/secret.txt", wantStatus: http.StatusNotFound, wantType: "application/json; charset=utf-8"},
		{name: "no climbing out", method: http.MethodGet, path: "/portal/../go.mod", wantStatus: http.StatusNotFound, wantType: "application/json; charset=utf-8"},
		{name: "not a form target", method: http.MethodPost, path: "/portal/", wantStatus: http.StatusNotFound, wantType: "application/json; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := serveReq(r, req)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Empty(t, rec.Header().Values("Set-Cookie"), "the portal never sets a cookie")
			if tt.wantType != "" {
				assert.Equal(t, tt.wantType, rec.Header().Get("Content-Type"))
			}
			if tt.wantStatus == http.StatusNotFound {
				return
			}
			csp := rec.Header().Get("Content-Security-Policy")
			assert.Contains(t, csp, "script-src 'self';")
			assert.Contains(t, csp, "frame-ancestors 'self' https://app.assetsup.example;")
			assert.Contains(t, csp, "connect-src 'self';")
			assert.Contains(t, csp, "require-trusted-types-for 'script'")
			assert.NotContains(t, csp, "unsafe-inline")
			assert.NotContains(t, csp, "unsafe-eval")
			assert.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
			assert.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			if tt.wantStatus == http.StatusMovedPermanently {
				assert.Equal(t, "/portal/", rec.Header().Get("Location"))
				return
			}
			if tt.header["Accept-Encoding"] != "" {
				assert.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
			}
			// A second request with the ETag is answered from the browser's cache.
			again := httptest.NewRequest(http.MethodGet, tt.path, nil)
			again.Header.Set("If-None-Match", rec.Header().Get("ETag"))
			assert.Equal(t, http.StatusNotModified, serveReq(r, again).Code)
		})
	}
}

func TestPortalFrameAncestorsDefaultToSelf(t *testing.T) {
	rec := serveReq(portalRouter(t, nil), httptest.NewRequest(http.MethodGet, "/portal/", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'self';")
}

func TestDeliveryBody(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("body"))
	// Bytes as a delivery stores them, spacing and a number JSON cannot round-trip included.
	sent := `{"id":"evt_1","event":"LOW_STOCK","timestamp":"2026-11-28T12:00:00Z","data":{"qty": 12345678901234567890}}`
	withBody, withoutBody := uuid.NewString(), uuid.NewString()
	for id, body := range map[string]any{withBody: []byte(sent), withoutBody: nil} {
		_, err := s.db.ExecContext(context.Background(), `INSERT INTO webhook_deliveries
			(id, webhook_id, event_id, event, status, workflow_id, run_id, request_body)
			VALUES (?, ?, 'evt_1', 'LOW_STOCK', 'succeeded', 'delivery:x', 'run', ?)`, id, w.ID, body)
		require.NoError(t, err)
	}
	base := "/webhooks/" + w.ID + "/deliveries/"

	rec := s.do(t, http.MethodGet, base+withBody+"/body", user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, sent, rec.Body.String(), "byte for byte")
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))

	requireError(t, s.do(t, http.MethodGet, base+withoutBody+"/body", user, ""), http.StatusNotFound, "body_unavailable")
	requireError(t, s.do(t, http.MethodGet, base+uuid.NewString()+"/body", user, ""), http.StatusNotFound, "not_found")
	requireError(t, s.do(t, http.MethodGet, base+withBody+"/body", newUser(), ""), http.StatusNotFound, "not_found")
}
