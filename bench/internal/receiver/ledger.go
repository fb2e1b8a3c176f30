// Package receiver is the benchmark's webhook endpoint and its bookkeeping: the
// Receiver verifies both signatures on every delivery, and the Ledger knows every
// delivery the harness expects, so a missing, duplicated, badly signed or unexpected
// one fails the run.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Key names one expected delivery: an event to one webhook.
type Key struct {
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
	entries    map[Key]*entry
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
	return &Ledger{entries: map[Key]*entry{}, phases: map[string]*phaseState{}, broken: make(chan struct{})}
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
func (l *Ledger) Expect(phase string, k Key, at time.Time) {
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
func (l *Ledger) Receive(k Key, sigOK bool, at time.Time) Verdict {
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
