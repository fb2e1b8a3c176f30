package phases

import (
	"context"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/assetsup/webhooks/bench/internal/meter"
)

// measurement is one phase's metering: the counters at its start, and the connection
// peaks sampled while it runs.
type measurement struct {
	b        *Bench
	start    meter.Snapshot
	stopPeak func() map[string]int
}

// measure starts metering a phase.
func (b *Bench) measure(ctx context.Context) *measurement {
	return &measurement{b: b, start: b.env.Meter.Take(ctx), stopPeak: b.env.Meter.PeakConnections(ctx, 500*time.Millisecond)}
}

// done waits until the stack has finished the phase's work (settle), then returns what
// the phase cost, for items deliveries or workflows.
func (m *measurement) done(ctx context.Context, items int) meter.Usage {
	peak := m.stopPeak()
	m.b.settle(ctx)
	u := meter.Between(m.start, m.b.env.Meter.Take(ctx), items)
	u.PeakConnections = peak
	return u
}

// statsFlush covers PostgreSQL's statistics delay: a backend publishes its counters at
// most once a second, so a snapshot taken at once would miss the last second's rows.
const statsFlush = 1200 * time.Millisecond

// settle waits until no workflow is open any more (the last receipt comes before its
// workflow records the outcome and closes, and visibility records the close after
// that), so the phase's counters include that work, then for statsFlush.
func (b *Bench) settle(ctx context.Context) {
	deadline := time.Now().Add(60 * time.Second)
	for ctx.Err() == nil {
		resp, err := b.env.Temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: "default", Query: "ExecutionStatus = 'Running'",
		})
		if err == nil && resp.GetCount() == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.logf("  still %d workflows open after 60 s; counting what was done so far", resp.GetCount())
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	select {
	case <-ctx.Done():
	case <-time.After(statsFlush):
	}
}

// idle measures the stack doing nothing for d: the price of the history shards,
// queues and pollers alone.
func (b *Bench) idle(ctx context.Context, d time.Duration) meter.Usage {
	if d <= 0 {
		return meter.Usage{}
	}
	b.settle(ctx)
	start := b.env.Meter.Take(ctx)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	return meter.Between(start, b.env.Meter.Take(ctx), 0)
}
