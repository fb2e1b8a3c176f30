package main

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/assetsup/webhooks/signing"
	"github.com/assetsup/webhooks/workflows"
)

// key names one expected delivery: an event to one webhook.
type key struct {
	EventID   string
	WebhookID string
}

type entry struct {
	phase     string
	triggered time.Time
	received  time.Time // zero until a verified receipt
}

type phaseState struct {
	expected, received int
	done               chan struct{} // closed when received reaches expected
	closed             bool
}

// Ledger is the verification bookkeeping: every delivery the harness expects, and
// every one the receiver got. A delivery nobody expected, one received twice, or one
// badly signed makes the run fail, so a fast wrong run cannot pass.
type Ledger struct {
	mu         sync.Mutex
	entries    map[key]*entry
	phases     map[string]*phaseState
	duplicates int
	badSig     int
	unexpected int
	samples    []string
	broken     chan struct{} // closed at the first bad signature or unexpected delivery
	brokenOnce sync.Once
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{entries: map[key]*entry{}, phases: map[string]*phaseState{}, broken: make(chan struct{})}
}

func (l *Ledger) phase(name string) *phaseState {
	p := l.phases[name]
	if p == nil {
		p = &phaseState{done: make(chan struct{})}
		l.phases[name] = p
	}
	return p
}

// Expect registers a delivery before it is triggered; at is its trigger time.
// Expecting the same delivery twice is a harness bug and panics.
func (l *Ledger) Expect(phase string, k key, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.entries[k]; dup {
		panic(fmt.Sprintf("bench: delivery %v expected twice", k))
	}
	l.entries[k] = &entry{phase: phase, triggered: at}
	p := l.phase(phase)
	p.expected++
}

// Verdict is what the receiver answers a delivery with.
type Verdict int

// Verdicts.
const (
	Accepted Verdict = iota
	Duplicate
	BadSignature
	Unexpected
)

// Receive records a delivery that reached the receiver at at. sigOK says whether every
// signature on it verified.
func (l *Ledger) Receive(k key, sigOK bool, at time.Time) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !sigOK {
		l.badSig++
		l.sample("bad signature: event %s webhook %s", k.EventID, k.WebhookID)
		l.breakRun()
		return BadSignature
	}
	e := l.entries[k]
	if e == nil {
		l.unexpected++
		l.sample("unexpected delivery: event %s webhook %s", k.EventID, k.WebhookID)
		l.breakRun()
		return Unexpected
	}
	if !e.received.IsZero() {
		l.duplicates++
		l.sample("duplicate delivery: event %s webhook %s", k.EventID, k.WebhookID)
		return Duplicate
	}
	e.received = at
	p := l.phase(e.phase)
	p.received++
	if p.received >= p.expected && !p.closed {
		p.closed = true
		close(p.done)
	}
	return Accepted
}

func (l *Ledger) sample(format string, args ...any) {
	if len(l.samples) < 20 {
		l.samples = append(l.samples, fmt.Sprintf(format, args...))
	}
}

func (l *Ledger) breakRun() { l.brokenOnce.Do(func() { close(l.broken) }) }

// errBroken means the run saw a delivery that can never be right.
var errBroken = errors.New("a badly signed or unexpected delivery arrived")

// Wait returns once every delivery expected in phase has arrived, ctx ends, or the run
// is broken.
func (l *Ledger) Wait(ctx context.Context, phase string) error {
	l.mu.Lock()
	p := l.phase(phase)
	if p.received >= p.expected && !p.closed {
		p.closed = true
		close(p.done)
	}
	done := p.done
	l.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-l.broken:
		return errBroken
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		return fmt.Errorf("%s: %d of %d deliveries arrived before the deadline", phase, p.received, p.expected)
	}
}

// Progress returns how many of phase's deliveries have arrived.
func (l *Ledger) Progress(phase string) (received, expected int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.phase(phase)
	return p.received, p.expected
}

// PhaseStats are the timings of one phase's verified deliveries.
type PhaseStats struct {
	Expected     int
	Received     int
	FirstTrigger time.Time
	LastTrigger  time.Time
	FirstReceipt time.Time
	LastReceipt  time.Time
	Latencies    []time.Duration // trigger → receipt, one per received delivery
	LongestGap   time.Duration   // longest time between two receipts (or first trigger and first receipt)
}

// Stats returns phase's timings.
func (l *Ledger) Stats(phase string) PhaseStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s PhaseStats
	var receipts []time.Time
	for _, e := range l.entries {
		if e.phase != phase {
			continue
		}
		s.Expected++
		if s.FirstTrigger.IsZero() || e.triggered.Before(s.FirstTrigger) {
			s.FirstTrigger = e.triggered
		}
		if e.triggered.After(s.LastTrigger) {
			s.LastTrigger = e.triggered
		}
		if e.received.IsZero() {
			continue
		}
		s.Received++
		receipts = append(receipts, e.received)
		s.Latencies = append(s.Latencies, e.received.Sub(e.triggered))
		if s.FirstReceipt.IsZero() || e.received.Before(s.FirstReceipt) {
			s.FirstReceipt = e.received
		}
		if e.received.After(s.LastReceipt) {
			s.LastReceipt = e.received
		}
	}
	slices.SortFunc(receipts, func(a, b time.Time) int { return a.Compare(b) })
	prev := s.FirstTrigger
	for _, r := range receipts {
		s.LongestGap = max(s.LongestGap, r.Sub(prev))
		prev = r
	}
	return s
}

// Verification is the run's verdict on correctness.
type Verification struct {
	Expected      int      `json:"expected"`
	Received      int      `json:"received"`
	Missing       int      `json:"missing"`
	Duplicates    int      `json:"duplicates"`
	BadSignatures int      `json:"badSignatures"`
	Unexpected    int      `json:"unexpected"`
	OK            bool     `json:"ok"`
	Problems      []string `json:"problems,omitempty"`
}

// Verify checks every expected delivery arrived exactly once, well signed.
func (l *Ledger) Verify() Verification {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := Verification{Duplicates: l.duplicates, BadSignatures: l.badSig, Unexpected: l.unexpected}
	v.Problems = append(v.Problems, l.samples...)
	for k, e := range l.entries {
		v.Expected++
		if e.received.IsZero() {
			v.Missing++
			if len(v.Problems) < 40 {
				v.Problems = append(v.Problems, fmt.Sprintf("missing (%s): event %s webhook %s", e.phase, k.EventID, k.WebhookID))
			}
			continue
		}
		v.Received++
	}
	v.OK = v.Missing == 0 && v.Duplicates == 0 && v.BadSignatures == 0 && v.Unexpected == 0
	return v
}

// Receiver is the local webhook endpoint: POST /hook/<webhook id>. It verifies both
// signatures every delivery carries (X-AssetsUp-Signature and Standard Webhooks'
// webhook-signature) with the webhook's secret, checks the delivery id matches the
// (event, webhook) pair, and records the delivery in the ledger.
type Receiver struct {
	ledger  *Ledger
	mu      sync.RWMutex
	secrets map[string]string // webhook id → whsec_ secret
	srv     *http.Server
	URL     string // http://127.0.0.1:port
}

// NewReceiver returns a receiver recording into ledger; Start serves it.
func NewReceiver(ledger *Ledger) *Receiver {
	return &Receiver{ledger: ledger, secrets: map[string]string{}}
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
	k := key{EventID: msg.ID, WebhookID: webhookID}
	sigOK := known && msg.ID != "" && verifyDelivery(secret, webhookID, msg.ID, req.Header, body)
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
