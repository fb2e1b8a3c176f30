// Command bench is the delivery benchmark behind `make bench`. It starts what it needs
// on loopback, one target after the other — "dev": a fresh PostgreSQL database, the
// Temporal dev server in memory, the worker and the API as subprocesses (bin/webhooks);
// "prod": the production topology (internal/cluster: the real Temporal server on
// PostgreSQL persistence and visibility, API replicas behind a balancer, worker
// replicas, measured at 1, 2 and 3 worker replicas) — and a receiver that verifies
// every signature. On each it measures the floor (a no-op workflow on the same server),
// our throughput, latency at half load, a fan-out, a delivery that needs one retry, and
// the API under a fixed request rate, with what every delivery cost: Temporal server
// CPU, persistence requests, history events, worker CPU, PostgreSQL transactions and
// row writes. Every delivery is checked (count, signature, no duplicates): the run
// exits non-zero if any is missing, duplicated or badly signed.
//
// It writes bench/results/latest.json, latest.md and latency.png. BENCH_QUICK=1 makes
// a small, fast run for smoke tests. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/assetsup/webhooks/bench/internal/env"
	"github.com/assetsup/webhooks/bench/internal/pgserver"
	"github.com/assetsup/webhooks/bench/internal/phases"
	"github.com/assetsup/webhooks/bench/internal/procfs"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/report"
	"github.com/assetsup/webhooks/bench/internal/settings"
	"github.com/assetsup/webhooks/bench/internal/stats"
	"github.com/assetsup/webhooks/internal/testinfra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	quick := os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0"
	cfg, err := settings.Parse(args, quick)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	began := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	res := &phases.Results{
		Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		MemTotalBytes: procfs.MemTotal(), Settings: cfg, Commit: gitCommit(),
	}
	mode := "full"
	if quick {
		mode = "quick (BENCH_QUICK)"
	}
	logf("%s run on %d CPUs, commit %s", mode, res.NumCPU, res.Commit)

	ledger := receiver.NewLedger()
	recv := receiver.New(ledger)
	if err := recv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: receiver:", err)
		return 1
	}
	defer recv.Close()

	var pg *pgserver.Server
	if cfg.Postgres == "private" {
		logf("postgres: starting a private PostgreSQL server (fsync on, pg_stat_statements)")
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		pg, err = pgserver.Start(sctx)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: private PostgreSQL:", err, "(-postgres shared uses the machine's server)")
			return 1
		}
		defer pg.Stop()
		logf("postgres: 127.0.0.1:%d", pg.Port)
	}
	for i, target := range cfg.Targets {
		if ctx.Err() != nil || len(res.Failures) > 0 {
			break
		}
		runTarget(ctx, cfg, target, i == 0, pg, res, ledger, recv, logf)
	}
	phases.Verify(res, ledger, logf)

	res.Seconds = stats.Round(time.Since(began).Seconds(), 1)
	if len(res.Runs) > 1 {
		fmt.Println()
		fmt.Print(report.Compare(res))
	}
	if primary, ok := report.Primary(res); ok {
		fmt.Println()
		fmt.Print(report.RenderTable(report.Rows(res, primary)))
	}
	if err := report.Write(root(), cfg.Out, res); err != nil {
		msg := fmt.Sprintf("results: %v", err)
		res.Failures = append(res.Failures, msg)
		logf("FAILED %s", msg)
	}
	if len(res.Failures) > 0 {
		fmt.Fprintf(os.Stderr, "bench: FAILED:\n  %s\n", strings.Join(res.Failures, "\n  "))
		return 1
	}
	logf("done in %.0f s; results in %s", res.Seconds, cfg.Out)
	return 0
}

// runTarget starts target's stack and measures it: the dev server once, the
// production stack once per worker replica count, adding replicas between runs. The
// stack is stopped before the next target starts, so the two never share the cores.
func runTarget(ctx context.Context, cfg settings.Settings, target string, first bool, pg *pgserver.Server,
	res *phases.Results, ledger *receiver.Ledger, recv *receiver.Receiver, logf func(string, ...any)) {
	e, err := env.Start(ctx, target, cfg, pg, logf)
	if err != nil {
		res.Failures = append(res.Failures, fmt.Sprintf("%s: %v", target, err))
		logf("FAILED %s: %v", target, err)
		return
	}
	defer e.Close()
	if cfg.KeepLogs {
		logf("%s logs in %s", target, e.LogDir)
	}
	if target == env.Dev {
		spec := phases.Spec{
			Label: "dev", Target: target, Ceiling: first, Shapes: true, API: true,
			FloorN: cfg.FloorN, Events: cfg.Events, Fanout: cfg.Fanout, LatencyDuration: cfg.LatencyDuration,
		}
		res.Runs = append(res.Runs, phases.New(cfg, spec, e, ledger, recv, logf).Run(ctx, res))
		return
	}
	for i, n := range cfg.Replicas {
		if ctx.Err() != nil || len(res.Failures) > 0 {
			return
		}
		if err := e.ScaleWorkers(ctx, n); err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("prod: %v", err))
			logf("FAILED prod: %v", err)
			return
		}
		spec := phases.Spec{
			Label: fmt.Sprintf("prod ×%d", n), Target: target, Ceiling: first && i == 0,
			API:    cfg.ProdAPI && i == len(cfg.Replicas)-1,
			FloorN: cfg.ProdFloorN, Events: cfg.ProdEvents, Fanout: cfg.ProdFanout, LatencyDuration: cfg.ProdLatencyDuration,
		}
		res.Runs = append(res.Runs, phases.New(cfg, spec, e, ledger, recv, logf).Run(ctx, res))
	}
}

// root is the repository root, where results are written.
func root() string {
	r, err := testinfra.RepoRoot()
	if err != nil {
		return "."
	}
	return r
}

// gitCommit is HEAD's short hash, with -dirty when tracked files have changed.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		commit += "-dirty"
	}
	return commit
}
