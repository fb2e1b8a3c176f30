package phases

import (
	"context"
	"fmt"
	"time"

	"github.com/assetsup/webhooks/bench/internal/procfs"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/settings"
)

// Results is everything one run measured; latest.json holds it, with the table.
type Results struct {
	Date          string                `json:"date"`
	Commit        string                `json:"commit"`
	GoVersion     string                `json:"goVersion"`
	NumCPU        int                   `json:"nproc"`
	MemTotalBytes int64                 `json:"memTotalBytes"`
	Settings      settings.Settings     `json:"settings"`
	Ceiling       CeilingResult         `json:"ceiling"`
	Floor         FloorResult           `json:"floor"`
	Shapes        []ShapeResult         `json:"shapes,omitempty"`
	Throughput    ThroughputResult      `json:"throughput"`
	Latency       LatencyResult         `json:"latency"`
	Fanout        FanoutResult          `json:"fanout"`
	API           APIResult             `json:"api"`
	WorkerPeakRSS int64                 `json:"workerPeakRssBytesPhases3to6"`
	Verification  receiver.Verification `json:"verification"`
	TriggerErrors int64                 `json:"triggerErrors"`
	Failures      []string              `json:"failures,omitempty"`
	Seconds       float64               `json:"runSeconds"`
}

// Run runs the phases in order into res, stopping at the first that fails, then checks
// that the subprocesses are alive and that every delivery arrived exactly once. Every
// failure is added to res.Failures; the run passed when there is none.
func (b *Bench) Run(ctx context.Context, res *Results) {
	cfg, logf := b.cfg, b.logf
	var err error
	failed := func(phase string, err error) {
		msg := fmt.Sprintf("%s: %v", phase, err)
		res.Failures = append(res.Failures, msg)
		logf("FAILED %s", msg)
	}
	phases := []struct {
		name string
		fn   func() error
	}{
		{"seed", func() error {
			logf("seeding webhooks: %d single-subscriber users, 1 user × %d, %d users × %d", cfg.ThroughputUsers, cfg.Fanout, cfg.APIUsers, cfg.APIWebhooksPerUser)
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
			logf("(1) ceiling: %d direct sign + POST, %d in flight", cfg.CeilingN, cfg.Concurrency)
			res.Ceiling, err = b.ceiling(ctx)
			logf("    %.0f deliveries/s", res.Ceiling.PerSecond)
			return err
		}},
		{"(2) floor", func() error {
			logf("(2) floor: %d no-op workflows, %d in flight", cfg.FloorN, cfg.Concurrency)
			res.Floor, err = b.floor(ctx, 1)
			logf("    %.1f workflows/s, p50 %.0f ms", res.Floor.PerSecond, res.Floor.Latency.P50)
			if err == nil && res.Floor.LongestGapSeconds > FloorStall.Seconds() {
				// A reference that stalled is no reference: measure it once more.
				logf("    stalled %.0f s with nothing completing (pollers parked on the sticky queue); measuring the floor again", res.Floor.LongestGapSeconds)
				var again FloorResult
				if again, err = b.floor(ctx, 2); err == nil {
					again.StalledRuns = 1
					res.Floor = again
					logf("    %.1f workflows/s, p50 %.0f ms", res.Floor.PerSecond, res.Floor.Latency.P50)
				}
			}
			return err
		}},
		{"(2b) shapes", func() error {
			if cfg.ShapeN == 0 {
				return nil
			}
			logf("(2b) delivery shapes with no-op bodies: %d each, started as fast as accepted", cfg.ShapeN)
			res.Shapes, err = b.shapes(ctx, cfg.ShapeN)
			return err
		}},
		{"warm-up", func() error {
			logf("warm-up: %d events through DispatchEvent (not measured)", min(len(b.tpHooks), 2*cfg.Concurrency))
			return b.warmup(ctx)
		}},
		{"(3) throughput", func() error {
			logf("(3) throughput: %d events, one subscriber each, %d triggers in flight", cfg.Events, cfg.Concurrency)
			res.Throughput, err = b.throughput(ctx, res.Floor)
			logf("    %.1f delivered/s (%.0f%% of the floor)", res.Throughput.DeliveredPerSecond, 100*res.Throughput.RatioToFloor)
			return err
		}},
		{"(4) latency", func() error {
			rate := cfg.LatencyRate
			if rate == 0 {
				rate = max(1, res.Throughput.DeliveredPerSecond/2)
			}
			logf("(4) latency: %.1f events/s for %s", rate, cfg.LatencyDuration)
			res.Latency, err = b.latency(ctx, rate)
			logf("    p50 %.0f ms, p95 %.0f ms, p99 %.0f ms", res.Latency.Latency.P50, res.Latency.Latency.P95, res.Latency.Latency.P99)
			return err
		}},
		{"(5) fan-out", func() error {
			user := fmt.Sprintf("fan-%s", b.runID)
			hooks, err := b.seedHooks(ctx, user, cfg.Fanout)
			if err != nil {
				return err
			}
			logf("(5) fan-out: one event to %d subscribers", cfg.Fanout)
			res.Fanout, err = b.fanout(ctx, user, hooks)
			logf("    last receipt after %.1f s", res.Fanout.LastReceiptSeconds)
			return err
		}},
		{"(6) api", func() error {
			users, err := b.seedUsers(ctx, "api", cfg.APIUsers, cfg.APIWebhooksPerUser)
			if err != nil {
				return err
			}
			logf("(6) api: GET /webhooks (%d each) at %.0f req/s for %s", cfg.APIWebhooksPerUser, cfg.APIRate, cfg.APIDuration)
			res.API, err = b.apiPhase(ctx, users)
			logf("    p50 %.2f ms, p99 %.2f ms", res.API.Latency.P50, res.API.Latency.P99)
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
	}
	res.WorkerPeakRSS = procfs.PeakRSS(b.env.Worker.PID())
	if b.env.Worker.Exited() || b.env.API.Exited() {
		failed("services", fmt.Errorf("a subprocess died\nworker:\n%s\napi:\n%s", b.env.Worker.Tail(), b.env.API.Tail()))
	}

	// Late duplicates get a moment to show up before the verdict.
	time.Sleep(time.Second)
	res.Verification = b.ledger.Verify()
	res.TriggerErrors = b.triggerErrors.Load()
	if res.TriggerErrors > 0 {
		first, _ := b.firstErr.Load().(string)
		failed("trigger", fmt.Errorf("%d DispatchEvent starts failed; first: %s", res.TriggerErrors, first))
	}
	if !res.Verification.OK {
		failed("verification", fmt.Errorf("%d missing, %d duplicated, %d badly signed, %d unexpected deliveries",
			res.Verification.Missing, res.Verification.Duplicates, res.Verification.BadSignatures, res.Verification.Unexpected))
		for _, p := range res.Verification.Problems {
			logf("  %s", p)
		}
	}
}
