package testfixture

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Request is one request a Receiver got.
type Request struct {
	Body     []byte
	Header   http.Header
	RawQuery string
	At       time.Time
}

// Respond answers the nth request a Receiver got, n counting from 0. It may block, to
// hold a request open.
type Respond func(n int, w http.ResponseWriter, r *http.Request)

// Status answers every request with code.
func Status(code int) Respond {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// Receiver is a local webhook endpoint on 127.0.0.1 that records every request (body,
// headers, query, arrival time) and answers it as told, so a test can change the answer
// mid-test and wait for deliveries.
type Receiver struct {
	*httptest.Server
	mu        sync.Mutex
	requests  []Request
	respond   Respond
	failFirst int // answer 500 to this many requests before respond
	got       chan struct{}
}

// NewReceiver starts a receiver answering with respond, closed when the test ends.
func NewReceiver(t testing.TB, respond Respond) *Receiver {
	t.Helper()
	r := &Receiver{respond: respond, got: make(chan struct{}, 1)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.requests)
		r.requests = append(r.requests, Request{Body: body, Header: req.Header.Clone(), RawQuery: req.URL.RawQuery, At: time.Now()})
		respond := r.respond
		if r.failFirst > 0 {
			r.failFirst--
			respond = Status(http.StatusInternalServerError)
		}
		r.mu.Unlock()
		select {
		case r.got <- struct{}{}:
		default: // a wake-up is already pending
		}
		respond(n, w, req)
	}))
	t.Cleanup(r.Close)
	require.True(t, strings.HasPrefix(r.URL, "http://127.0.0.1:"), "receiver must listen on 127.0.0.1, got %s", r.URL)
	return r
}

// SetStatus makes the receiver answer every further request with code.
func (r *Receiver) SetStatus(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = Status(code)
}

// FailFirst makes the receiver answer the next n requests with 500.
func (r *Receiver) FailFirst(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failFirst = n
}

// Requests returns every request so far, in arrival order.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// WaitFor blocks until the receiver has n requests in all, or fails the test.
func (r *Receiver) WaitFor(t testing.TB, n int, within time.Duration) []Request {
	t.Helper()
	deadline := time.After(within)
	for len(r.Requests()) < n {
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("receiver got %d requests, want %d within %s", len(r.Requests()), n, within)
		}
	}
	return r.Requests()
}
