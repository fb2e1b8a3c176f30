package phases

import (
	"context"
	"fmt"
	"time"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/procfs"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/settings"
	"github.com/assetsup/webhooks/workflows"
)

// Results is everything one `make bench` measured; latest.json holds it, with the tables.
type Results struct {
	Date          string            `json:"date"`
	Commit        string            `json:"commit"`
	GoVersion     string            `json:"goVersion"`
	NumCPU        int               `json:"nproc"`
	MemTotalBytes int64             `json:"memTotalBytes"`
	Settings      settings.Settings `json:"settings"`
	Ceiling       CeilingResult     `json:"ceiling"`
	// Runs are the stacks measured: the dev server, then the production stack at each
	// worker replica count.
	Runs          []RunResult           `json:"runs"`
	Verification  receiver.Verification `json:"verification"`
	TriggerErrors int64                 `json:"triggerErrors"`
	Failures      []string              `json:"failures,omitempty"`
	Seconds       float64               `json:"runSeconds"`
}

// Spec is one run: a stack, and the phases and counts it is measured with.
type Spec struct {
	Label           string        `json:"label"`
	Target          string        `json:"target"`
	Ceiling         bool          `json:"ceiling"`
	Shapes          bool          `json:"shapes"`
	API             bool          `json:"api"`
	FloorN          int           `json:"floorWorkflows"`
	Events          int           `json:"events"`
	Fanout          int           `json:"fanout"`
	LatencyDuration time.Duration `json:"latencyDuration"`
}

// RunResult is what one run measured.
type RunResult struct {
	Spec
	WorkerReplicas int            `json:"workerReplicas"`
	APIReplicas    int            `json:"apiReplicas"`
	HistoryShards  int            `json:"historyShards"`
	LoadAvgStart   procfs.LoadAvg `json:"loadAverageAtStart"`
	LoadAvgEnd     procfs.LoadAvg `json:"loadAverageAtEnd"`
	// Idle is the stack doing nothing for a few seconds before the run.
	Idle       meter.Usage      `json:"idle"`
	Floor      FloorResult      `json:"floor"`
	Shapes     []ShapeResult    `json:"shapes,omitempty"`
	Throughput ThroughputResult `json:"throughput"`
	Latency    LatencyResult    `json:"latency"`
	Fanout     FanoutResult     `json:"fanout"`
	Retry      RetryResult      `json:"retry"`
	API        *APIResult       `json:"api,omitempty"`
	// Histories are the event counts and sizes of sampled workflows of each kind.
	Histories     []HistorySample `json:"histories"`
	WorkerPeakRSS int64           `json:"workerPeakRssBytes"`
	Failed        bool            `json:"failed,omitempty"`
}

// History returns the sample of kind, if one was taken.
func (r RunResult) History(kind string) (HistorySample, bool) {
	for _, h := range r.Histories {
		if h.Kind == kind {
			return h, true
		}
	}
	return HistorySample{}, false
}

// Run runs the spec's phases in order, stopping at the first that fails, and checks the
// stack's processes are alive. Every failure is added to res.Failures. The verdict on
// the deliveries is the caller's, once every run has ended (the ledger is shared).
func (b *Bench) Run(ctx context.Context, res *Results) RunResult {
	cfg, spec, logf := b.cfg, b.spec, b.logf
	run := RunResult{
		Spec: spec, WorkerReplicas: b.env.Workers(), APIReplicas: b.env.APIs(), HistoryShards: b.env.HistoryShards(),
		LoadAvgStart: procfs.ReadLoadAvg(),
	}
	var err error
	failed := func(phase string, err error) {
		msg := fmt.Sprintf("%s %s: %v", spec.Label, phase, err)
		res.Failures = append(res.Failures, msg)
		run.Failed = true
		logf("FAILED %s: %v", phase, err)
	}
	logf("load average %.2f %.2f %.2f; %d worker and %d API replicas", run.LoadAvgStart[0], run.LoadAvgStart[1], run.LoadAvgStart[2], run.WorkerReplicas, run.APIReplicas)
	history := func(kind string, ids []string, perWorkflow float64) error {
		h, err := b.histories(ctx, kind, sample(ids, cfg.HistorySample), perWorkflow)
		if err == nil {
			run.Histories = append(run.Histories, h)
			logf("    history, %s: %.1f events (%.0f bytes) per workflow, %.1f per delivery", kind, h.EventsPerWorkflow, h.BytesPerWorkflow, h.EventsPerDelivery)
		}
		return err
	}
	phases := []struct {
		name string
		fn   func() error
	}{
		{"idle", func() error {
			run.Idle = b.idle(ctx, cfg.IdleWindow)
			logf("idle %.0f s: Temporal %.1f%% of a core, %.0f persistence requests/s", run.Idle.CPU.Seconds,
				100*perSecond(run.Idle.CPU.Temporal, run.Idle), perSecond(run.Idle.Persistence.Writes+run.Idle.Persistence.Reads+run.Idle.Persistence.Other, run.Idle))
			return nil
		}},
		{"seed", func() error {
			logf("seeding webhooks: %d single-subscriber users, %d retry users", cfg.ThroughputUsers, cfg.RetryN)
			tp, err := b.seedUsers(ctx, "tp", cfg.ThroughputUsers, 1)
			if err != nil {
				return err
			}
			for user, ids := range tp {
				b.tpHooks = append(b.tpHooks, userHook{user: user, hookID: ids[0]})
			}
			return nil
		}},
		{"(1) ceiling", func() error {
			if !spec.Ceiling {
				return nil
			}
			logf("(1) ceiling: %d direct sign + POST, %d in flight", cfg.CeilingN, cfg.Concurrency)
			res.Ceiling, err = b.ceiling(ctx)
			logf("    %.0f deliveries/s", res.Ceiling.PerSecond)
			return err
		}},
		{"(2) floor", func() error {
			logf("(2) floor: %d no-op workflows, %d in flight", spec.FloorN, cfg.Concurrency)
			run.Floor, err = b.floor(ctx, 1)
			logf("    %.1f workflows/s, p50 %.0f ms", run.Floor.PerSecond, run.Floor.Latency.P50)
			if err == nil && run.Floor.LongestGapSeconds > FloorStall.Seconds() {
				// A reference that stalled is no reference: measure it once more.
				logf("    stalled %.0f s with nothing completing (pollers parked on the sticky queue); measuring the floor again", run.Floor.LongestGapSeconds)
				var again FloorResult
				if again, err = b.floor(ctx, 2); err == nil {
					again.StalledRuns = 1
					run.Floor = again
					logf("    %.1f workflows/s, p50 %.0f ms", run.Floor.PerSecond, run.Floor.Latency.P50)
				}
			}
			if err != nil {
				return err
			}
			return history(HistoryFloor, b.floorIDs, 0)
		}},
		{"(2b) shapes", func() error {
			if !spec.Shapes || cfg.ShapeN == 0 {
				return nil
			}
			logf("(2b) delivery shapes with no-op bodies: %d each, started as fast as accepted", cfg.ShapeN)
			run.Shapes, err = b.shapes(ctx, cfg.ShapeN)
			return err
		}},
		{"warm-up", func() error {
			logf("warm-up: %d events through DispatchEvent (not measured)", min(len(b.tpHooks), 2*cfg.Concurrency))
			return b.warmup(ctx)
		}},
		{"(3) throughput", func() error {
			logf("(3) throughput: %d events, one subscriber each, %d triggers in flight", spec.Events, cfg.Concurrency)
			var ids []string
			run.Throughput, ids, err = b.throughput(ctx, run.Floor)
			logf("    %.1f delivered/s (%.0f%% of the floor); Temporal %.1f CPU-ms, %.1f persistence writes per delivery",
				run.Throughput.DeliveredPerSecond, 100*run.Throughput.RatioToFloor,
				1000*run.Throughput.Usage.Per(run.Throughput.Usage.CPU.Temporal), run.Throughput.Usage.Per(run.Throughput.Usage.Persistence.Writes))
			if err != nil {
				return err
			}
			return history(HistorySingle, ids, 1)
		}},
		{"(4) latency", func() error {
			rate := cfg.LatencyRate
			if rate == 0 {
				rate = max(1, run.Throughput.DeliveredPerSecond/2)
			}
			logf("(4) latency: %.1f events/s for %s", rate, spec.LatencyDuration)
			run.Latency, err = b.latency(ctx, rate)
			logf("    p50 %.0f ms, p95 %.0f ms, p99 %.0f ms", run.Latency.Latency.P50, run.Latency.Latency.P95, run.Latency.Latency.P99)
			return err
		}},
		{"(5) fan-out", func() error {
			user := fmt.Sprintf("fan-%s", b.runID)
			hooks, err := b.seedHooks(ctx, user, spec.Fanout)
			if err != nil {
				return err
			}
			logf("(5) fan-out: one event to %d subscribers", spec.Fanout)
			run.Fanout, err = b.fanout(ctx, user, hooks)
			logf("    last receipt after %.1f s", run.Fanout.LastReceiptSeconds)
			if err != nil {
				return err
			}
			eventID := "fan-" + b.runID
			children := make([]string, len(hooks))
			for i, h := range hooks {
				children[i] = workflows.DeliveryWorkflowID(eventID, h)
			}
			if err := history(HistoryFanoutChild, children, 1); err != nil {
				return err
			}
			return history(HistoryFanoutParent, []string{workflows.DispatchWorkflowID(eventID)}, float64(len(hooks)))
		}},
		{"(R) retry", func() error {
			logf("(R) retry: %d events whose first attempt is answered 503 + Retry-After: 1", cfg.RetryN)
			var ids []string
			run.Retry, ids, err = b.retry(ctx)
			logf("    %d retried; Temporal %.1f CPU-ms, %.1f persistence writes per delivery",
				run.Retry.Refused, 1000*run.Retry.Usage.Per(run.Retry.Usage.CPU.Temporal), run.Retry.Usage.Per(run.Retry.Usage.Persistence.Writes))
			if err != nil {
				return err
			}
			return history(HistoryRetry, ids, 1)
		}},
		{"(6) api", func() error {
			if !spec.API {
				return nil
			}
			users, err := b.seedUsers(ctx, "api", cfg.APIUsers, cfg.APIWebhooksPerUser)
			if err != nil {
				return err
			}
			logf("(6) api: GET /webhooks (%d each) at %.0f req/s for %s over %d replica(s)", cfg.APIWebhooksPerUser, cfg.APIRate, cfg.APIDuration, b.env.APIs())
			a, err := b.apiPhase(ctx, users)
			run.API = &a
			logf("    p50 %.2f ms, p99 %.2f ms", a.Latency.P50, a.Latency.P99)
			return err
		}},
	}
	for _, p := range phases {
		if err := p.fn(); err != nil {
			failed(p.name, err)
			break // a backlog left behind would distort every later phase
		}
		if ctx.Err() != nil {
			failed(p.name, ctx.Err())
			break
		}
		if err := b.env.Dead(); err != nil {
			failed(p.name, err)
			break
		}
	}
	run.WorkerPeakRSS = peakRSS(b.env.WorkerPIDs())
	run.LoadAvgEnd = procfs.ReadLoadAvg()
	res.TriggerErrors += b.triggerErrors.Load()
	if n := b.triggerErrors.Load(); n > 0 {
		first, _ := b.firstErr.Load().(string)
		failed("trigger", fmt.Errorf("%d DispatchEvent starts failed; first: %s", n, first))
	}
	return run
}

// Verify waits a moment for late duplicates, then records the ledger's verdict on every
// delivery of every run in res.
func Verify(res *Results, ledger *receiver.Ledger, logf func(string, ...any)) {
	time.Sleep(time.Second)
	res.Verification = ledger.Verify()
	if !res.Verification.OK {
		v := res.Verification
		msg := fmt.Sprintf("verification: %d missing, %d duplicated, %d badly signed, %d unexpected deliveries",
			v.Missing, v.Duplicates, v.BadSignatures, v.Unexpected)
		res.Failures = append(res.Failures, msg)
		logf("FAILED %s", msg)
		for _, p := range v.Problems {
			logf("  %s", p)
		}
	}
}

func perSecond(v float64, u meter.Usage) float64 {
	if u.CPU.Seconds <= 0 {
		return 0
	}
	return v / u.CPU.Seconds
}

// peakRSS is the largest peak resident set among pids.
func peakRSS(pids []int) int64 {
	var peak int64
	for _, pid := range pids {
		peak = max(peak, procfs.PeakRSS(pid))
	}
	return peak
}

// resetPeakRSS resets the peak resident set of every pid, reporting whether all worked.
func resetPeakRSS(pids []int) bool {
	ok := len(pids) > 0
	for _, pid := range pids {
		ok = procfs.ResetPeakRSS(pid) && ok
	}
	return ok
}
