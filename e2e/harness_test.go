package e2e_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
)

func TestMain(m *testing.M) { os.Exit(testinfra.Main(m)) }

// logs is every log line of the package's workers and API routers, which tests assert on.
var logs testinfra.LogBuffer

var jwtSecret = []byte("e2e-jwt-secret-that-is-long-enough-000")

// stack is one test's service: a real worker on its own task queue, the real API
// router, the package's dev server and database.
type stack struct {
	t         *testing.T
	box       *secrets.Box
	taskQueue string
	router    http.Handler
}

func newStack(t *testing.T, settings testfixture.WorkerSettings) *stack {
	t.Helper()
	settings.Box = testfixture.Box(t)
	settings.Logger = logs.Logger()
	tq := testfixture.StartWorker(t, settings)
	return newAPIStack(t, settings.Box, testinfra.Temporal(t), tq)
}

// newAPIStack is the API alone, for tests that run the worker some other way.
func newAPIStack(t *testing.T, box *secrets.Box, tc client.Client, tq string) *stack {
	t.Helper()
	router := api.NewRouter(api.Deps{
		DB: testinfra.DB(t), Temporal: tc, Box: box,
		Policy: netguard.NewPolicy(true, nil), Logger: logs.Logger(),
		Config: api.Config{
			JWTSecret: jwtSecret, MaxBodyBytes: 64 << 10, MaxWebhooksPerUser: 2000, TaskQueue: tq,
			TestTimeout: 15 * time.Second, TemporalTimeout: 5 * time.Second, SecretGrace: time.Hour,
			RateLimit: 10000, RateBurst: 10000,
		},
	})
	return &stack{t: t, box: box, taskQueue: tq, router: router}
}

// call sends one API request as user and decodes the JSON answer into out (if non-nil).
func (s *stack) call(user, method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(s.t, err)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	tok, err := api.IssueToken(jwtSecret, user, time.Hour, time.Now())
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.router.ServeHTTP(rec, req)
	if out != nil {
		require.NoError(s.t, json.Unmarshal(rec.Body.Bytes(), out), rec.Body.String())
	}
	return rec.Code
}

type created struct {
	ID           string `json:"id"`
	Secret       string `json:"secret"`
	FailureCount int    `json:"failureCount"`
	IsActive     bool   `json:"isActive"`
}

func (s *stack) createWebhook(user, url string, events ...string) created {
	s.t.Helper()
	var c created
	code := s.call(user, http.MethodPost, "/webhooks", map[string]any{"name": "hook", "url": url, "events": events}, &c)
	require.Equal(s.t, http.StatusCreated, code)
	require.NotEmpty(s.t, c.Secret)
	return c
}

// verify recomputes the signature independently of the signing package.
func verify(t *testing.T, secret string, req testfixture.Request) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(req.Body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	require.Equal(t, want, req.Header.Get("X-AssetsUp-Signature"), "signature over the received bytes")
}

func newUser() string { return "user-" + uuid.NewString() }

// eventually polls cond until it holds or within passes.
func eventually(t *testing.T, within time.Duration, cond func() bool, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out: %s", msg)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func newRecorder(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// insertWebhook stores a webhook directly, for tests whose database the API does not use.
func insertWebhook(t *testing.T, db *bun.DB, box *secrets.Box, user, url string, events ...string) string {
	t.Helper()
	return testfixture.CreateWebhook(t, db, box, testfixture.Webhook{UserID: user, URL: url, Events: events}).ID
}

// assertNoHistoryHolds reads every event of every workflow history of the package's
// Temporal and fails if one of values (what names them) is in it, as bytes (binary
// protobuf carries every payload's bytes as they are: inputs, results, memos and
// failures alike) or base64-encoded (as the JSON history shows payloads).
func assertNoHistoryHolds(t *testing.T, what string, values []string) {
	t.Helper()
	c := testinfra.Temporal(t)
	ctx := context.Background()
	checked := 0
	var next []byte
	for {
		// Every workflow of the package, other tests' included: on PostgreSQL visibility
		// (the server target) a page of them takes longer than the client's default.
		lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		page, err := c.ListWorkflow(lctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: next, PageSize: 1000})
		cancel()
		require.NoError(t, err)
		for _, ex := range page.Executions {
			it := c.GetWorkflowHistory(ctx, ex.Execution.WorkflowId, ex.Execution.RunId, false, 0)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				raw, err := proto.Marshal(ev)
				require.NoError(t, err)
				for _, v := range values {
					require.False(t, bytes.Contains(raw, []byte(v)), "history of %s holds %s in %s", ex.Execution.WorkflowId, what, ev.EventType)
					require.False(t, bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString([]byte(v)))), "history of %s holds %s, base64", ex.Execution.WorkflowId, what)
				}
				checked++
			}
		}
		if next = page.NextPageToken; len(next) == 0 {
			break
		}
	}
	assert.Greater(t, checked, 10, "histories were read")
}
