package phases

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/stats"
)

// FloorResult is the Temporal server running a minimal workflow with one no-op activity.
type FloorResult struct {
	Count           int           `json:"count"`
	Concurrency     int           `json:"concurrency"`
	Seconds         float64       `json:"seconds"`
	PerSecond       float64       `json:"workflowsPerSecond"`
	Latency         stats.Summary `json:"startToCompletion"`
	ActivityLatency stats.Summary `json:"startToActivity"`
	Errors          int64         `json:"errors"`
	Usage           meter.Usage   `json:"usage"`
	// LongestGapSeconds is the longest time without a workflow completing: ~60 s
	// means the worker's pollers sat on an empty sticky queue (see bench/README.md).
	LongestGapSeconds float64 `json:"longestGapWithoutCompletionSeconds"`
	StalledRuns       int     `json:"stalledRunsDiscarded,omitempty"`
}

const floorQueue = "bench-floor"

func floorWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	return workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil)
}

// FloorStall is a gap without completions that only a stuck poller explains.
const FloorStall = 10 * time.Second

func (b *Bench) floor(ctx context.Context, attempt int) (FloorResult, error) {
	n, conc := b.spec.FloorN, b.cfg.Concurrency
	var mu sync.Mutex
	ran := make(map[string]time.Time, n)
	opts, err := b.cfg.FloorWorkerOptions()
	if err != nil {
		return FloorResult{}, err
	}
	w := worker.New(b.env.Temporal, floorQueue, opts)
	w.RegisterWorkflowWithOptions(floorWorkflow, workflow.RegisterOptions{Name: "BenchFloor"})
	w.RegisterActivityWithOptions(func(ctx context.Context) error {
		id := activity.GetInfo(ctx).WorkflowExecution.ID
		mu.Lock()
		ran[id] = time.Now()
		mu.Unlock()
		return nil
	}, activity.RegisterOptions{Name: "BenchNoop"})
	if err := w.Start(); err != nil {
		return FloorResult{}, err
	}
	defer w.Stop()

	runOne := func(id string) (time.Time, time.Duration, error) {
		t0 := time.Now()
		run, err := b.env.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: floorQueue}, "BenchFloor")
		if err == nil {
			err = run.Get(ctx, nil)
		}
		return t0, time.Since(t0), err
	}
	// Warm-up: the queue's first tasks, not measured.
	for i := 0; i < min(conc, 16); i++ {
		_, _, _ = runOne(fmt.Sprintf("floor-warm-%s-%d", b.runID, i))
	}

	lat := make([]time.Duration, n)
	starts := make([]time.Time, n)
	ends := make([]time.Time, n)
	var errs atomic.Int64
	m := b.measure(ctx)
	start := time.Now()
	runPool(ctx, n, conc, func(i int) {
		t0, d, err := runOne(fmt.Sprintf("floor-%s-%d-%06d", b.runID, attempt, i))
		starts[i], lat[i], ends[i] = t0, d, t0.Add(d)
		if err != nil {
			errs.Add(1)
		}
	})
	secs := time.Since(start).Seconds()
	usage := m.done(ctx, n)
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	prev := start
	for _, e := range ends {
		gap = max(gap, e.Sub(prev))
		prev = e
	}
	var toActivity []time.Duration
	b.floorIDs = b.floorIDs[:0]
	mu.Lock()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("floor-%s-%d-%06d", b.runID, attempt, i)
		b.floorIDs = append(b.floorIDs, id)
		if at, ok := ran[id]; ok {
			toActivity = append(toActivity, at.Sub(starts[i]))
		}
	}
	mu.Unlock()
	if e := errs.Load(); e > 0 {
		return FloorResult{}, fmt.Errorf("floor: %d of %d workflows failed", e, n)
	}
	return FloorResult{
		Count: n, Concurrency: conc, Seconds: stats.Round(secs, 3), PerSecond: stats.Round(float64(n)/secs, 1),
		Latency: stats.Summarize(lat), ActivityLatency: stats.Summarize(toActivity), Usage: usage,
		LongestGapSeconds: stats.Round(gap.Seconds(), 1),
	}, nil
}
