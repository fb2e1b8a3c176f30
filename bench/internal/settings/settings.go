// Package settings holds the benchmark's knobs: one Settings value parsed from the
// command line (BENCH_QUICK picks the small defaults), recorded in latest.json.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/deliveryworker"
)

// Settings are the benchmark's knobs; every count, rate and duration has a flag.
type Settings struct {
	Quick              bool          `json:"quick"`
	Concurrency        int           `json:"concurrency"`
	CeilingN           int           `json:"ceilingRequests"`
	FloorN             int           `json:"floorWorkflows"`
	ShapeN             int           `json:"shapeWorkflows"`
	Events             int           `json:"events"`
	ThroughputUsers    int           `json:"throughputUsers"`
	LatencyDuration    time.Duration `json:"latencyDuration"`
	LatencyRate        float64       `json:"latencyRate"`
	Fanout             int           `json:"fanout"`
	APIRate            float64       `json:"apiRate"`
	APIDuration        time.Duration `json:"apiDuration"`
	APIUsers           int           `json:"apiUsers"`
	APIWebhooksPerUser int           `json:"apiWebhooksPerUser"`
	DrainTimeout       time.Duration `json:"drainTimeout"`
	TemporalBin        string        `json:"temporalBin"`
	WebhooksBin        string        `json:"webhooksBin"`
	AdminURL           string        `json:"-"`
	Out                string        `json:"-"`
	DynamicConfig      []string      `json:"dynamicConfig"`
	ServiceEnv         []string      `json:"serviceEnv,omitempty"`
	LogLevel           string        `json:"logLevel"`
	TemporalLogLevel   string        `json:"-"`
	KeepDB             bool          `json:"-"`
	KeepLogs           bool          `json:"-"`
	CPUProfile         string        `json:"-"`
	PerfDir            string        `json:"-"`
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// defaultDynamicConfig tunes the dev server for one small worker, the same for the
// floor and for ours: the server-side eager paths the SDK uses when it can (an activity
// scheduled by a workflow task completion comes back in the same response), and one
// task queue partition instead of four, so a task never waits in a partition that no
// poller is on (with four, a few tasks sat ~60 s until a poll reached them).
var defaultDynamicConfig = []string{
	"system.enableActivityEagerExecution=true",
	"system.enableEagerWorkflowStart=true",
	"matching.numTaskqueueReadPartitions=1",
	"matching.numTaskqueueWritePartitions=1",
}

// Parse reads the flags in args; quick (BENCH_QUICK) picks small counts and short
// phases as the defaults. -h returns flag.ErrHelp.
func Parse(args []string, quick bool) (Settings, error) {
	s := Settings{Quick: quick}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	pick := func(full, small int) int {
		if quick {
			return small
		}
		return full
	}
	pickD := func(full, small time.Duration) time.Duration {
		if quick {
			return small
		}
		return full
	}
	fs.IntVar(&s.Concurrency, "concurrency", 64, "requests, workflows or triggers in flight in (1)–(3)")
	fs.IntVar(&s.CeilingN, "ceiling-n", pick(20000, 2000), "(1) direct sign + POST requests")
	fs.IntVar(&s.FloorN, "floor-n", pick(1000, 150), "(2) no-op workflows")
	fs.IntVar(&s.ShapeN, "shape-n", pick(200, 100), "(2b) no-op workflows of each delivery shape; 0 skips them")
	fs.IntVar(&s.Events, "n", pick(2000, 200), "(3) events, one subscriber each")
	fs.IntVar(&s.ThroughputUsers, "users", pick(500, 100), "(3)/(4) users, one webhook each; events go round-robin over them")
	fs.DurationVar(&s.LatencyDuration, "latency-duration", pickD(20*time.Second, 5*time.Second), "(4) how long events are sent at the fixed rate")
	fs.Float64Var(&s.LatencyRate, "latency-rate", 0, "(4) events per second; 0 is half of what (3) delivered")
	fs.IntVar(&s.Fanout, "fanout", pick(1000, 100), "(5) subscribers of the one fan-out event")
	fs.Float64Var(&s.APIRate, "api-rate", 1000, "(6) GET /webhooks requests per second")
	fs.DurationVar(&s.APIDuration, "api-duration", pickD(10*time.Second, 5*time.Second), "(6) how long the API is driven")
	fs.IntVar(&s.APIUsers, "api-users", 10, "(6) users the requests rotate over")
	fs.IntVar(&s.APIWebhooksPerUser, "api-webhooks", 100, "(6) webhooks each API user has")
	fs.DurationVar(&s.DrainTimeout, "drain-timeout", pickD(4*time.Minute, 90*time.Second), "longest wait for one phase's deliveries")
	fs.StringVar(&s.TemporalBin, "temporal-bin", "bin/temporal", "Temporal CLI (make temporal), relative to the repository root")
	fs.StringVar(&s.WebhooksBin, "webhooks-bin", "bin/webhooks", "service binary (make build), relative to the repository root")
	fs.StringVar(&s.AdminURL, "admin-url", envOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL server-level URL used to create and drop the benchmark database (or BENCH_DATABASE_URL)")
	fs.StringVar(&s.Out, "out", "bench/results", "results directory, relative to the repository root")
	dyn := listFlag{}
	fs.Var(&dyn, "dynamic-config", "extra dev server --dynamic-config-value KEY=JSON (repeatable)")
	noTuning := fs.Bool("no-server-tuning", false, "start the dev server without the default dynamic config (eager execution, one task queue partition)")
	svcEnv := listFlag{}
	fs.Var(&svcEnv, "env", "extra KEY=VALUE for the worker and API subprocesses, e.g. WORKER_POLLERS=8 (repeatable)")
	fs.StringVar(&s.LogLevel, "log-level", "info", "LOG_LEVEL of the worker and API (info is the production default)")
	fs.StringVar(&s.TemporalLogLevel, "temporal-log-level", "error", "the dev server's --log-level (its log is kept with -keep-logs)")
	fs.BoolVar(&s.KeepDB, "keep-db", false, "keep the benchmark database instead of dropping it")
	fs.BoolVar(&s.KeepLogs, "keep-logs", false, "keep the subprocess logs (their directory is printed)")
	fs.StringVar(&s.CPUProfile, "cpuprofile", "", "write a CPU profile of the harness process (receiver, floor worker, triggers) to this file")
	fs.StringVar(&s.PerfDir, "perf", "", "sample the dev server and worker during (3) and the API during (6) with perf, writing perf-*.txt flat profiles into this directory")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if !*noTuning {
		s.DynamicConfig = append(s.DynamicConfig, defaultDynamicConfig...)
	}
	s.DynamicConfig = append(s.DynamicConfig, dyn...)
	s.ServiceEnv = svcEnv
	switch {
	case s.ShapeN < 0:
		return s, errors.New("-shape-n must not be negative")
	case s.Concurrency < 1, s.CeilingN < 1, s.FloorN < 1, s.Events < 1, s.ThroughputUsers < 1, s.Fanout < 1,
		s.APIUsers < 1, s.APIWebhooksPerUser < 1:
		return s, errors.New("counts and -concurrency must be positive")
	case s.APIRate <= 0, s.LatencyRate < 0, s.LatencyDuration <= 0, s.APIDuration <= 0, s.DrainTimeout <= 0:
		return s, errors.New("rates and durations must be positive")
	case s.Fanout > 2000:
		return s, errors.New("-fanout is capped at 2000 (Temporal's pending-children limit per run)")
	}
	return s, nil
}

// FloorWorkerOptions are the production worker's, from the same configuration the
// worker subprocess gets (defaults plus -env overrides), so the floor and shape workers
// differ from ours only in what they run.
func (s Settings) FloorWorkerOptions() (worker.Options, error) {
	environ := map[string]string{}
	for _, kv := range s.ServiceEnv {
		k, v, _ := strings.Cut(kv, "=")
		environ[k] = v
	}
	// The floor worker is a Temporal worker without the database or secrets (generated
	// later for the real one): the dispatch role validates just the Temporal settings.
	cfg, err := config.LoadFrom(config.RoleDispatch, environ)
	if err != nil {
		return worker.Options{}, fmt.Errorf("floor worker options: %w", err)
	}
	return deliveryworker.OptionsFrom(cfg).SDK(), nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
