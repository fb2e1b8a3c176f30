// Package env starts what the benchmark runs against, all on loopback, in one of two
// targets: "dev" — a fresh PostgreSQL database, the Temporal dev server in memory, and
// one worker and one API as subprocesses of bin/webhooks — or "prod" — the production
// topology of docker-compose.yml from internal/cluster: the real Temporal server on
// PostgreSQL persistence and visibility, API replicas behind a balancer and worker
// replicas, whose number the benchmark raises between runs.
package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/uptrace/bun"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/pgserver"
	"github.com/assetsup/webhooks/bench/internal/proc"
	"github.com/assetsup/webhooks/bench/internal/procfs"
	"github.com/assetsup/webhooks/bench/internal/settings"
	"github.com/assetsup/webhooks/internal/cluster"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/secrets"
)

// TaskQueue is the delivery worker's queue in the benchmark's stacks.
const TaskQueue = "webhooks-bench"

// Targets.
const (
	Dev  = "dev"
	Prod = "prod"
)

// Env is everything the benchmark starts on loopback for one target, torn down by Close.
type Env struct {
	Target   string
	cfg      settings.Settings
	Root     string // repository root
	LogDir   string // logs of the subprocesses
	DB       *bun.DB
	Temporal client.Client
	keyB64   string
	Box      *secrets.Box
	JWT      string // the API's JWT_SECRET
	APIURL   string
	// Meter measures CPU, persistence requests and PostgreSQL counters of this stack.
	Meter   *meter.Meter
	admin   *bun.DB
	pg      *pgserver.Server // nil on the shared server
	closers []func()

	// dev
	database   *testinfra.Database
	dev        *testsuite.DevServer
	devPID     int
	devMetrics string
	worker     *proc.Proc
	api        *proc.Proc
	metrics    string

	// prod
	cluster *cluster.Cluster
	shards  int
}

// Start brings up the given target, its databases on pg (a private server), or on
// cfg.AdminURL's when pg is nil. On error, what was started is already stopped.
func Start(ctx context.Context, target string, cfg settings.Settings, pg *pgserver.Server, logf func(string, ...any)) (_ *Env, err error) {
	if pg != nil {
		cfg.AdminURL = pg.URL("postgres")
	}
	e := &Env{Target: target, cfg: cfg, pg: pg}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Root, err = testinfra.RepoRoot(); err != nil {
		return nil, fmt.Errorf("run the benchmark inside the repository: %w", err)
	}
	if e.LogDir, err = os.MkdirTemp("", "webhooks-bench-"+target+"-"); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() {
		if !cfg.KeepLogs {
			_ = os.RemoveAll(e.LogDir)
		}
	})
	bins := []string{cfg.WebhooksBin, cfg.TemporalBin}
	if target == Prod {
		bins = []string{cfg.WebhooksBin, "bin/temporal-server", "bin/temporal-sql-tool"}
	}
	for _, bin := range bins {
		if _, err := os.Stat(e.abs(bin)); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make build temporal temporal-server` first", bin)
		}
	}
	// Secrets: the master key the worker opens secrets with, and the box the harness seals with.
	if e.Box, e.keyB64, err = testfixture.NewBox(); err != nil {
		return nil, err
	}
	e.JWT = testinfra.RandomHex(32)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	e.admin, err = models.Open(cctx, cfg.AdminURL, 2)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL is required at %s (scripts/ensure-postgres.sh starts it): %w", redactURL(cfg.AdminURL), err)
	}
	e.closers = append(e.closers, func() { _ = e.admin.Close() })
	if target == Prod {
		err = e.startProd(ctx, logf)
	} else {
		err = e.startDev(ctx, logf)
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Env) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(e.Root, p)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// serviceEnv is the worker's and the API's configuration in both targets: the
// production defaults except what lets them reach the harness on loopback, and the
// given settings, which -env overrides.
func (e *Env) serviceEnv(extra ...string) []string {
	env := []string{
		"TEMPORAL_NAMESPACE=default",
		"TEMPORAL_TASK_QUEUE=" + TaskQueue,
		"WEBHOOK_SECRET_KEY=" + e.keyB64,
		"WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
		"JWT_SECRET=" + e.JWT,
		"API_RATE_LIMIT=1000000",
		"API_RATE_BURST=1000000",
		"LOG_LEVEL=" + e.cfg.LogLevel,
	}
	env = append(env, extra...)
	return append(env, e.cfg.ServiceEnv...)
}

func (e *Env) startDev(ctx context.Context, logf func(string, ...any)) error {
	logf("database: creating a fresh one on %s", redactURL(e.cfg.AdminURL))
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	d, err := testinfra.NewDatabase(cctx, e.cfg.AdminURL, "webhooks_bench_", 32)
	cancel()
	if err != nil {
		return fmt.Errorf("create the benchmark database: %w", err)
	}
	e.database, e.DB = d, d.DB
	e.closers = append(e.closers, e.dropDevDatabase)

	logf("temporal: starting the dev server (in memory) from %s", e.cfg.TemporalBin)
	if err := e.startDevServer(ctx); err != nil {
		return err
	}
	logf("worker and api: starting %s as subprocesses", e.cfg.WebhooksBin)
	if err := e.startDevServices(ctx); err != nil {
		return err
	}
	e.Meter = meter.New(e, e.devMetrics, e.admin, []meter.Database{{Role: "app", Name: d.Name, DB: d.DB}})
	return nil
}

func (e *Env) dropDevDatabase() {
	if e.cfg.KeepDB {
		_ = e.DB.Close()
		fmt.Fprintf(os.Stderr, "bench: database %s kept (-keep-db)\n", e.database.Name)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.database.Drop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}

func (e *Env) startDevServer(ctx context.Context) error {
	logFile, err := os.Create(filepath.Join(e.LogDir, "temporal.log"))
	if err != nil {
		return err
	}
	metricsAddr, err := testinfra.FreeAddr()
	if err != nil {
		return err
	}
	_, metricsPort, _ := net.SplitHostPort(metricsAddr)
	extra := []string{"--metrics-port", metricsPort}
	for _, kv := range e.cfg.DynamicConfig {
		extra = append(extra, "--dynamic-config-value", kv)
	}
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	e.dev, err = testinfra.StartDevServer(sctx, testsuite.DevServerOptions{
		ExistingPath: e.abs(e.cfg.TemporalBin),
		LogLevel:     e.cfg.TemporalLogLevel,
		ExtraArgs:    extra,
		Stdout:       logFile,
		Stderr:       logFile,
	})
	if err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start the Temporal dev server: %w", err)
	}
	e.closers = append(e.closers, func() { _ = e.dev.Stop(); _ = logFile.Close() })
	e.Temporal = e.dev.Client()
	e.devPID = procfs.ChildPID(filepath.Base(e.cfg.TemporalBin))
	e.devMetrics = "http://" + metricsAddr + "/metrics"
	return nil
}

// startDevServices runs `webhooks worker` and `webhooks api` with the benchmark's configuration.
func (e *Env) startDevServices(ctx context.Context) error {
	metricsAddr, err := testinfra.FreeAddr()
	if err != nil {
		return err
	}
	httpAddr, err := testinfra.FreeAddr()
	if err != nil {
		return err
	}
	env := append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + e.database.URL,
		"TEMPORAL_ADDRESS=" + e.dev.FrontendHostPort(),
		"METRICS_ADDR=" + metricsAddr,
		"HTTP_ADDR=" + httpAddr,
	}, e.serviceEnv()...)
	bin := e.abs(e.cfg.WebhooksBin)
	if e.worker, err = proc.Start(bin, "worker", env, filepath.Join(e.LogDir, "worker.log")); err != nil {
		return err
	}
	e.closers = append(e.closers, e.worker.Stop)
	if e.api, err = proc.Start(bin, "api", env, filepath.Join(e.LogDir, "api.log")); err != nil {
		return err
	}
	e.closers = append(e.closers, e.api.Stop)
	e.APIURL = "http://" + httpAddr
	e.metrics = "http://" + metricsAddr + "/metrics"

	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitHTTP(rctx, e.APIURL+"/healthz", e.api.Exited); err != nil {
		return fmt.Errorf("api did not come up: %w\n%s", err, e.api.Tail())
	}
	if err := waitHTTP(rctx, e.metrics, e.worker.Exited); err != nil {
		return fmt.Errorf("worker did not come up: %w\n%s", err, e.worker.Tail())
	}
	if err := waitPollers(rctx, e.Temporal, TaskQueue); err != nil {
		return fmt.Errorf("worker is not polling %s: %w\n%s", TaskQueue, err, e.worker.Tail())
	}
	return nil
}

func waitHTTP(ctx context.Context, u string, exited func() bool) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if exited() {
			return errors.New("the process exited")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitPollers waits until queue has at least want pollers of each kind; the server
// lists each worker process once per kind.
func waitPollers(ctx context.Context, c client.Client, queue string) error {
	return waitPollerCount(ctx, c, queue, 1)
}

func waitPollerCount(ctx context.Context, c client.Client, queue string, want int) error {
	for {
		ok := true
		for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			resp, err := c.DescribeTaskQueue(ctx, queue, typ)
			if err != nil || len(resp.GetPollers()) < want {
				ok = false
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Close stops everything, newest first, and drops the databases.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// TemporalPID is the Temporal server's process (the dev server or the real one).
func (e *Env) TemporalPID() int {
	if e.cluster != nil {
		return e.cluster.Temporal.Process().Pid()
	}
	return e.devPID
}

// WorkerPIDs are the worker replicas' processes.
func (e *Env) WorkerPIDs() []int {
	if e.cluster != nil {
		pids := make([]int, 0, len(e.cluster.Workers))
		for _, w := range e.cluster.Workers {
			pids = append(pids, w.Pid())
		}
		return pids
	}
	if e.worker == nil {
		return nil
	}
	return []int{e.worker.PID()}
}

// APIPIDs are the API replicas' processes.
func (e *Env) APIPIDs() []int {
	if e.cluster != nil {
		pids := make([]int, 0, len(e.cluster.APIs))
		for _, a := range e.cluster.APIs {
			pids = append(pids, a.Pid())
		}
		return pids
	}
	if e.api == nil {
		return nil
	}
	return []int{e.api.PID()}
}

// WorkerMetricsURLs are the worker replicas' Prometheus endpoints.
func (e *Env) WorkerMetricsURLs() []string {
	if e.cluster != nil {
		out := make([]string, len(e.cluster.Workers))
		for i := range e.cluster.Workers {
			out[i] = e.cluster.WorkerURL(i) + "/metrics"
		}
		return out
	}
	return []string{e.metrics}
}

// Workers is the number of worker replicas.
func (e *Env) Workers() int { return len(e.WorkerPIDs()) }

// APIs is the number of API replicas.
func (e *Env) APIs() int { return len(e.APIPIDs()) }

// HistoryShards is the Temporal server's shard count (the dev server has one).
func (e *Env) HistoryShards() int {
	if e.cluster != nil {
		return e.shards
	}
	return 1
}

// Dead describes the stack's processes that have exited, or returns nil.
func (e *Env) Dead() error {
	var errs []error
	if e.cluster != nil {
		if !e.cluster.Temporal.Process().Running() {
			errs = append(errs, errors.New("the Temporal server exited"))
		}
		for _, p := range append(append([]*cluster.Process{}, e.cluster.Workers...), e.cluster.APIs...) {
			if !p.Running() {
				errs = append(errs, fmt.Errorf("%s exited (log in %s)", p.Name, e.cluster.LogDir()))
			}
		}
		return errors.Join(errs...)
	}
	if e.worker != nil && e.worker.Exited() {
		errs = append(errs, fmt.Errorf("worker exited:\n%s", e.worker.Tail()))
	}
	if e.api != nil && e.api.Exited() {
		errs = append(errs, fmt.Errorf("api exited:\n%s", e.api.Tail()))
	}
	return errors.Join(errs...)
}

// PostgresPID is the private PostgreSQL server's postmaster, 0 on the shared server.
func (e *Env) PostgresPID() int {
	if e.pg == nil {
		return 0
	}
	return e.pg.PID()
}
