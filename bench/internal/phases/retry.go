package phases

import (
	"context"
	"fmt"
	"time"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/stats"
	"github.com/assetsup/webhooks/workflows"
)

// RetryResult is single-subscriber events whose first attempt the receiver refuses
// with 503 and Retry-After: 1: what a delivery that needs one retry costs (the local
// first attempt, a timer, then a normal activity).
type RetryResult struct {
	Events  int           `json:"events"`
	Refused int           `json:"refusedFirstAttempts"`
	Latency stats.Summary `json:"triggerToReceipt"`
	Usage   meter.Usage   `json:"usage"`
}

// retry seeds its own users, one flaky webhook each, triggers every event at once and
// waits for the retries; it returns the dispatch workflow ids for the history sample.
func (b *Bench) retry(ctx context.Context) (RetryResult, []string, error) {
	phase := b.phase("retry")
	n := b.cfg.RetryN
	res := RetryResult{Events: n}
	users, err := b.seedUsers(ctx, "retry", n, 1)
	if err != nil {
		return res, nil, err
	}
	var hooks []userHook
	for user, ids := range users {
		b.recv.FailFirstAttempt(ids[0])
		hooks = append(hooks, userHook{user: user, hookID: ids[0]})
	}
	refused0 := b.recv.Refused()
	m := b.measure(ctx)
	ids := make([]string, n)
	runPool(ctx, n, b.cfg.Concurrency, func(i int) {
		u := hooks[i]
		eventID := fmt.Sprintf("retry-%s-%06d", b.runID, i)
		ids[i] = workflows.DispatchWorkflowID(eventID)
		b.ledger.Expect(phase, receiver.Key{EventID: eventID, WebhookID: u.hookID}, time.Now())
		_ = b.trigger(ctx, eventID, u.user, i)
	})
	waitErr := b.waitPhase(ctx, phase, b.cfg.DrainTimeout)
	res.Usage = m.done(ctx, n)
	res.Refused = b.recv.Refused() - refused0
	res.Latency = stats.Summarize(b.ledger.Stats(phase).Latencies)
	if waitErr != nil {
		return res, ids, waitErr
	}
	if res.Refused != n {
		return res, ids, fmt.Errorf("retry: %d first attempts refused, want %d (one per event)", res.Refused, n)
	}
	return res, ids, nil
}
