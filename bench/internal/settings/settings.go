// Package settings holds the benchmark's knobs: one Settings value parsed from the
// command line (BENCH_QUICK picks the small defaults), recorded in latest.json.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/deliveryworker"
)

// Settings are the benchmark's knobs; every count, rate and duration has a flag.
type Settings struct {
	Quick bool `json:"quick"`
	// Targets are the stacks measured, in order: "dev" (the dev server in memory, one
	// worker) and "prod" (the real Temporal server on PostgreSQL, internal/cluster).
	Targets []string `json:"targets"`
	// Replicas are the prod target's worker replica counts, ascending: the stack starts
	// with the first and gains replicas between runs.
	Replicas            []int         `json:"workerReplicas"`
	ProdAPIReplicas     int           `json:"prodApiReplicas"`
	HistoryShards       int           `json:"historyShards"`
	ProdEvents          int           `json:"prodEvents"`
	ProdFloorN          int           `json:"prodFloorWorkflows"`
	ProdFanout          int           `json:"prodFanout"`
	ProdLatencyDuration time.Duration `json:"prodLatencyDuration"`
	ProdAPI             bool          `json:"prodApi"`
	ProdDBConns         int           `json:"prodDatabaseMaxOpenConns"`
	ProdDynamicConfig   string        `json:"prodDynamicConfig,omitempty"`
	RetryN              int           `json:"retryEvents"`
	HistorySample       int           `json:"historySample"`
	IdleWindow          time.Duration `json:"idleWindow"`
	Concurrency         int           `json:"concurrency"`
	CeilingN            int           `json:"ceilingRequests"`
	FloorN              int           `json:"floorWorkflows"`
	ShapeN              int           `json:"shapeWorkflows"`
	Events              int           `json:"events"`
	ThroughputUsers     int           `json:"throughputUsers"`
	LatencyDuration     time.Duration `json:"latencyDuration"`
	LatencyRate         float64       `json:"latencyRate"`
	Fanout              int           `json:"fanout"`
	APIRate             float64       `json:"apiRate"`
	APIDuration         time.Duration `json:"apiDuration"`
	APIUsers            int           `json:"apiUsers"`
	APIWebhooksPerUser  int           `json:"apiWebhooksPerUser"`
	DrainTimeout        time.Duration `json:"drainTimeout"`
	TemporalBin         string        `json:"temporalBin"`
	WebhooksBin         string        `json:"webhooksBin"`
	AdminURL            string        `json:"-"`
	// Postgres is "private" (a server of the benchmark's own, internal/pgserver) or
	// "shared" (the server AdminURL reaches).
	Postgres         string   `json:"postgres"`
	Out              string   `json:"-"`
	DynamicConfig    []string `json:"dynamicConfig"`
	ServiceEnv       []string `json:"serviceEnv,omitempty"`
	LogLevel         string   `json:"logLevel"`
	TemporalLogLevel string   `json:"-"`
	KeepDB           bool     `json:"-"`
	KeepLogs         bool     `json:"-"`
	CPUProfile       string   `json:"-"`
	PerfDir          string   `json:"-"`
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
	target := fs.String("target", envOr("BENCH_TARGET", "dev,prod"), "stacks to measure, in order: dev (dev server in memory, one worker), prod (real Temporal server on PostgreSQL, API and worker replicas); or BENCH_TARGET")
	replicas := fs.String("replicas", envOr("BENCH_REPLICAS", "1,2,3"), "prod: worker replica counts to measure, ascending (replicas are added between runs); or BENCH_REPLICAS")
	fs.IntVar(&s.ProdAPIReplicas, "api-replicas", 2, "prod: API replicas behind the balancer (compose runs 2)")
	fs.IntVar(&s.HistoryShards, "history-shards", 4, "prod: Temporal history shards")
	fs.IntVar(&s.ProdEvents, "prod-n", pick(2000, 200), "prod: (3) events per replica count (smaller keeps a run short)")
	fs.IntVar(&s.ProdFloorN, "prod-floor-n", pick(1000, 150), "prod: (2) no-op workflows per replica count")
	fs.IntVar(&s.ProdFanout, "prod-fanout", pick(1000, 100), "prod: (5) subscribers of the fan-out event")
	fs.DurationVar(&s.ProdLatencyDuration, "prod-latency-duration", pickD(20*time.Second, 5*time.Second), "prod: (4) how long events are sent at the fixed rate")
	fs.BoolVar(&s.ProdAPI, "prod-api", true, "prod: run (6) once, through the balancer, at the last replica count")
	fs.IntVar(&s.ProdDBConns, "prod-db-conns", 0, "prod: DATABASE_MAX_OPEN_CONNS of each API and worker replica; 0 keeps the production default (20), except on -postgres shared, where it is 10: the stack's pools would otherwise exceed a stock server's 100 connections")
	fs.StringVar(&s.ProdDynamicConfig, "prod-dynamic-config", "", "prod: the Temporal server's dynamic config file instead of deploy/temporal/dynamicconfig.yaml")
	fs.IntVar(&s.RetryN, "retry-n", pick(100, 20), "(R) events whose first attempt the receiver answers 503 + Retry-After: 1")
	fs.IntVar(&s.HistorySample, "history-sample", pick(20, 5), "workflow histories read per delivery kind")
	fs.DurationVar(&s.IdleWindow, "idle", pickD(5*time.Second, 2*time.Second), "how long the idle stack is measured before each run")
	fs.DurationVar(&s.DrainTimeout, "drain-timeout", pickD(4*time.Minute, 90*time.Second), "longest wait for one phase's deliveries")
	fs.StringVar(&s.TemporalBin, "temporal-bin", "bin/temporal", "Temporal CLI (make temporal), relative to the repository root")
	fs.StringVar(&s.WebhooksBin, "webhooks-bin", "bin/webhooks", "service binary (make build), relative to the repository root")
	fs.StringVar(&s.Postgres, "postgres", envOr("BENCH_POSTGRES", "private"), "private: start a PostgreSQL server of the benchmark's own (nobody else's connections or load, pg_stat_statements loaded); shared: use the server -admin-url reaches; or BENCH_POSTGRES")
	fs.StringVar(&s.AdminURL, "admin-url", envOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "with -postgres shared: PostgreSQL server-level URL used to create and drop the benchmark databases (or BENCH_DATABASE_URL)")
	fs.StringVar(&s.Out, "out", "bench/results", "results directory, relative to the repository root")
	dyn := listFlag{}
	fs.Var(&dyn, "dynamic-config", "extra dev server --dynamic-config-value KEY=JSON (repeatable)")
	noTuning := fs.Bool("no-server-tuning", false, "start the dev server without the default dynamic config (eager execution, one task queue partition)")
	svcEnv := listFlag{}
	fs.Var(&svcEnv, "env", "extra KEY=VALUE for the worker and API subprocesses, e.g. WORKER_POLLERS=8 (repeatable)")
	fs.StringVar(&s.LogLevel, "log-level", "info", "LOG_LEVEL of the worker and API (info is the production default)")
	fs.StringVar(&s.TemporalLogLevel, "temporal-log-level", "error", "the Temporal server's log level, dev or real (its log is kept with -keep-logs)")
	fs.BoolVar(&s.KeepDB, "keep-db", false, "keep the benchmark databases instead of dropping them (on -postgres shared; a private server goes with the run)")
	fs.BoolVar(&s.KeepLogs, "keep-logs", false, "keep the subprocess logs (their directory is printed)")
	fs.StringVar(&s.CPUProfile, "cpuprofile", "", "write a CPU profile of the harness process (receiver, floor worker, triggers) to this file")
	fs.StringVar(&s.PerfDir, "perf", "", "sample the Temporal server and the workers during (3) and the API during (6) with perf, writing perf-*.txt flat profiles into this directory and splitting the server's CPU by service (frontend, history, matching)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if s.ProdDBConns == 0 && s.Postgres == "shared" {
		s.ProdDBConns = 10
	}
	var err error
	if s.Targets, err = ParseTargets(*target); err != nil {
		return s, err
	}
	if s.Replicas, err = ParseReplicas(*replicas); err != nil {
		return s, err
	}
	if !*noTuning {
		s.DynamicConfig = append(s.DynamicConfig, defaultDynamicConfig...)
	}
	s.DynamicConfig = append(s.DynamicConfig, dyn...)
	s.ServiceEnv = svcEnv
	switch {
	case s.Postgres != "private" && s.Postgres != "shared":
		return s, fmt.Errorf("-postgres: %q is neither private nor shared", s.Postgres)
	case s.ShapeN < 0:
		return s, errors.New("-shape-n must not be negative")
	case s.Concurrency < 1, s.CeilingN < 1, s.FloorN < 1, s.Events < 1, s.ThroughputUsers < 1, s.Fanout < 1,
		s.APIUsers < 1, s.APIWebhooksPerUser < 1, s.ProdEvents < 1, s.ProdFloorN < 1, s.ProdFanout < 1,
		s.RetryN < 1, s.HistorySample < 1, s.ProdAPIReplicas < 1, s.HistoryShards < 1, s.ProdDBConns < 0:
		return s, errors.New("counts and -concurrency must be positive")
	case s.APIRate <= 0, s.LatencyRate < 0, s.LatencyDuration <= 0, s.APIDuration <= 0, s.DrainTimeout <= 0,
		s.ProdLatencyDuration <= 0, s.IdleWindow < 0:
		return s, errors.New("rates and durations must be positive")
	case s.Fanout > 2000, s.ProdFanout > 2000:
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

// ParseTargets reads -target: a comma-separated list of dev and prod, each once.
func ParseTargets(v string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == "":
			continue
		case t != "dev" && t != "prod":
			return nil, fmt.Errorf("-target: unknown target %q (dev, prod)", t)
		case slices.Contains(out, t):
			return nil, fmt.Errorf("-target: %s named twice", t)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, errors.New("-target: name dev, prod or both")
	}
	return out, nil
}

// ParseReplicas reads -replicas: positive worker replica counts in ascending order,
// because the prod target adds replicas between runs and never removes one.
func ParseReplicas(v string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-replicas: %q is not a positive count", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("-replicas: counts must ascend (replicas are only added), got %d after %d", n, out[len(out)-1])
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("-replicas: name at least one count")
	}
	return out, nil
}

// Has says whether target is measured.
func (s Settings) Has(target string) bool { return slices.Contains(s.Targets, target) }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
