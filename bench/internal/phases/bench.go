// Package phases is the benchmark itself: the measurements (ceiling, floor and shapes,
// throughput, latency, fan-out, retry, API, memory), run in order against one env.Env
// per run (the dev server, or the production stack at one worker replica count), every
// delivery checked through the receiver's ledger, every phase metered (CPU per process,
// Temporal persistence requests, PostgreSQL transactions and row writes), into one
// RunResult per run.
package phases

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/assetsup/webhooks/bench/internal/env"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/settings"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
)

// benchEvent is the event every phase sends.
const benchEvent = events.AssetTransferred

// Bench runs the phases of one run against one Env.
type Bench struct {
	cfg    settings.Settings
	spec   Spec
	env    *env.Env
	ledger *receiver.Ledger
	recv   *receiver.Receiver
	svc    *dispatch.WebhookDispatchService
	logf   func(string, ...any)
	runID  string
	// tpHooks are the single-subscriber users of the throughput and latency phases.
	tpHooks []userHook
	// floorIDs are the workflow ids of the floor's measured workflows.
	floorIDs []string
	// triggerErrors counts DispatchEvent starts that failed; any fails the run.
	triggerErrors atomic.Int64
	firstErr      atomic.Value
}

// New returns a Bench for the run spec against e; it registers every webhook it creates
// at recv, and expects every delivery in ledger, which recv records into.
func New(cfg settings.Settings, spec Spec, e *env.Env, ledger *receiver.Ledger, recv *receiver.Receiver, logf func(string, ...any)) *Bench {
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	return &Bench{
		cfg: cfg, spec: spec, env: e, ledger: ledger, recv: recv, runID: hex.EncodeToString(id),
		svc:  dispatch.NewWebhookDispatchService(e.Temporal, env.TaskQueue),
		logf: func(format string, a ...any) { logf("[%s] "+format, append([]any{spec.Label}, a...)...) },
	}
}

// phase is the ledger's name for a phase of this run: runs share the ledger.
func (b *Bench) phase(name string) string { return b.spec.Label + "/" + name }

type userHook struct {
	user, hookID string
}

// seedHooks creates n webhooks for user with the shared webhook factory, each with a
// freshly generated, sealed secret that the receiver also learns.
func (b *Bench) seedHooks(ctx context.Context, user string, n int) ([]string, error) {
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		id := uuid.NewString() // the URL names the webhook
		h, err := testfixture.NewWebhook(ctx, b.env.DB, b.env.Box, testfixture.Webhook{
			ID: id, UserID: user, Name: fmt.Sprintf("bench %d", i), URL: b.recv.HookURL(id), Events: []string{string(benchEvent)},
		})
		if err != nil {
			return nil, fmt.Errorf("create webhook for %s: %w", user, err)
		}
		b.recv.AddSecret(h.ID, h.Secret)
		ids = append(ids, h.ID)
	}
	return ids, nil
}

// seedUsers creates users (named prefix-N) with perUser webhooks each, 8 users at a time.
func (b *Bench) seedUsers(ctx context.Context, prefix string, users, perUser int) (map[string][]string, error) {
	out := make(map[string][]string, users)
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var firstErr error
	for u := 0; u < users; u++ {
		user := fmt.Sprintf("%s-%s-%04d", prefix, b.runID, u)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ids, err := b.seedHooks(ctx, user, perUser)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[user] = ids
		}()
	}
	wg.Wait()
	return out, firstErr
}

// trigger hands one event to DispatchEvent, as the backend does.
func (b *Bench) trigger(ctx context.Context, eventID, user string, n int) error {
	_, err := b.svc.Trigger(ctx, benchEvent, dispatch.Event{ID: eventID, UserID: user, Data: map[string]any{"n": n, "bench": true}})
	if err != nil {
		if b.triggerErrors.Add(1) == 1 {
			b.firstErr.Store(err.Error())
		}
	}
	return err
}

// waitPhase waits for phase's deliveries, logging progress every 5 s.
func (b *Bench) waitPhase(ctx context.Context, phase string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				got, want := b.ledger.Progress(phase)
				b.logf("  %s: %d/%d delivered", phase, got, want)
			}
		}
	}()
	return b.ledger.Wait(ctx, phase)
}

// runPool calls fn(i) for i in [0, n) from conc goroutines, stopping early when ctx
// ends, and returns when every call has returned.
func runPool(ctx context.Context, n, conc int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
