// Command bench is the delivery benchmark behind `make bench`. It starts what it needs
// on loopback — a fresh PostgreSQL database, the Temporal dev server in memory, the
// worker and the API as subprocesses (bin/webhooks), and a receiver that verifies every
// signature — then measures, in one run and side by side: the ceiling (sign + POST with
// no Temporal), the floor (a no-op workflow on the same dev server), our throughput,
// latency at half load, a 1,000-subscriber fan-out, the API under a fixed request rate,
// and the worker's and API's peak memory. Every delivery is checked (count, signature,
// no duplicates): the run exits non-zero if any is missing, duplicated or badly signed.
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
	"github.com/assetsup/webhooks/bench/internal/phases"
	"github.com/assetsup/webhooks/bench/internal/procfs"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/report"
	"github.com/assetsup/webhooks/bench/internal/settings"
	"github.com/assetsup/webhooks/bench/internal/stats"
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

	e, err := env.Start(ctx, cfg, logf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer e.Close()
	if cfg.KeepLogs {
		logf("subprocess logs in %s", e.LogDir)
	}
	phases.New(cfg, e, ledger, recv, logf).Run(ctx, res)

	res.Seconds = stats.Round(time.Since(began).Seconds(), 1)
	rows := report.Rows(res)
	table := report.RenderTable(rows)
	fmt.Println()
	fmt.Print(table)
	if err := report.Write(e.Root, cfg.Out, res, rows, table); err != nil {
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
