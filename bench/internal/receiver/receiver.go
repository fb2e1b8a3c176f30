package receiver

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/assetsup/webhooks/signing"
	"github.com/assetsup/webhooks/workflows"
)

// Receiver is the local webhook endpoint: POST /hook/<webhook id>. It verifies both
// signatures every delivery carries (X-AssetsUp-Signature and Standard Webhooks'
// webhook-signature) with the webhook's secret, checks the delivery id matches the
// (event, webhook) pair, and records the delivery in the ledger.
//
// It is deliberately not the tests' testfixture.Receiver: that one keeps every request
// (body, headers) under one lock for a test to inspect afterwards, which at the
// benchmark's hundreds of thousands of deliveries would cost memory and contention on
// the hot path being measured; this one keeps one ledger entry per delivery, routes by
// webhook id and verifies as it goes.
type Receiver struct {
	ledger  *Ledger
	mu      sync.RWMutex
	secrets map[string]string // webhook id → whsec_ secret
	// flaky webhooks get 503 + Retry-After: 1 for each event's first attempt, so the
	// benchmark can measure what one retry costs.
	flaky   map[string]bool
	refused map[Key]bool
	srv     *http.Server
	URL     string // http://127.0.0.1:port
}

// New returns a receiver recording into ledger; Start serves it.
func New(ledger *Ledger) *Receiver {
	return &Receiver{ledger: ledger, secrets: map[string]string{}, flaky: map[string]bool{}, refused: map[Key]bool{}}
}

// FailFirstAttempt makes the receiver answer the first well-signed attempt of every
// event to webhook id with 503 and Retry-After: 1; the retry is then recorded as usual.
func (r *Receiver) FailFirstAttempt(webhookID string) {
	r.mu.Lock()
	r.flaky[webhookID] = true
	r.mu.Unlock()
}

// Refused is how many attempts FailFirstAttempt has turned away.
func (r *Receiver) Refused() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.refused)
}

// refuse says whether k's attempt is the first to a flaky webhook, and remembers it.
func (r *Receiver) refuse(k Key) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.flaky[k.WebhookID] || r.refused[k] {
		return false
	}
	r.refused[k] = true
	return true
}

// AddSecret tells the receiver webhook id's secret.
func (r *Receiver) AddSecret(webhookID, secret string) {
	r.mu.Lock()
	r.secrets[webhookID] = secret
	r.mu.Unlock()
}

// HookURL is the URL to register for webhook id.
func (r *Receiver) HookURL(webhookID string) string { return r.URL + "/hook/" + webhookID }

// Start listens on a loopback port.
func (r *Receiver) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.URL = "http://" + ln.Addr().String()
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = r.srv.Serve(ln) }()
	return nil
}

// Close stops the server.
func (r *Receiver) Close() {
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(ctx)
	}
}

// ServeHTTP records a POST /hook/<webhook id> in the ledger: 401 when a signature does
// not verify, 503 for the first attempt to a FailFirstAttempt webhook, 204 otherwise.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	webhookID, ok := strings.CutPrefix(req.URL.Path, "/hook/")
	if !ok || req.Method != http.MethodPost {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	at := time.Now()
	r.mu.RLock()
	secret, known := r.secrets[webhookID]
	r.mu.RUnlock()
	var msg struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &msg)
	k := Key{EventID: msg.ID, WebhookID: webhookID}
	sigOK := known && msg.ID != "" && verifyDelivery(secret, webhookID, msg.ID, req.Header, body)
	if sigOK && r.refuse(k) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	switch r.ledger.Receive(k, sigOK, at) {
	case BadSignature:
		http.Error(w, "invalid signature", http.StatusUnauthorized)
	default:
		// Duplicates and strays are answered 2xx so they are not retried into a storm;
		// the ledger already failed the run.
		w.WriteHeader(http.StatusNoContent)
	}
}

// verifyDelivery checks everything a careful receiver would: the GitHub-style
// signature over the raw body, the Standard Webhooks signature over id.timestamp.body,
// that the Standard Webhooks id is the event id, and that the delivery id header is the
// one derived from (event, webhook).
func verifyDelivery(secret, webhookID, eventID string, h http.Header, body []byte) bool {
	if !signing.Verify(secret, body, h.Get(signing.HeaderSignature)) {
		return false
	}
	if h.Get(signing.HeaderDelivery) != workflows.DeliveryID(eventID, webhookID) {
		return false
	}
	if h.Get(signing.HeaderWebhookID) != eventID {
		return false
	}
	ts, err := strconv.ParseInt(h.Get(signing.HeaderWebhookTimestamp), 10, 64)
	if err != nil {
		return false
	}
	want, err := signing.StandardSign(secret, eventID, ts, body)
	if err != nil {
		return false
	}
	for _, sig := range strings.Fields(h.Get(signing.HeaderWebhookSignature)) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}
