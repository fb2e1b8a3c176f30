// Package env starts what the benchmark runs against, all on loopback: a fresh
// PostgreSQL database, the Temporal dev server in memory, and the worker and the API as
// subprocesses of bin/webhooks configured only through their environment.
package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/uptrace/bun"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/assetsup/webhooks/bench/internal/proc"
	"github.com/assetsup/webhooks/bench/internal/procfs"
	"github.com/assetsup/webhooks/bench/internal/settings"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/secrets"
)

// TaskQueue is the delivery worker's queue on the benchmark's own dev server.
const TaskQueue = "webhooks-bench"

// Env is everything the benchmark starts on loopback, torn down by Close.
type Env struct {
	cfg      settings.Settings
	Root     string // repository root
	LogDir   string // logs of the subprocesses
	database *testinfra.Database
	DB       *bun.DB
	dev      *testsuite.DevServer
	DevPID   int // the dev server's process, 0 when it was not found
	Temporal client.Client
	keyB64   string
	Box      *secrets.Box
	JWT      string // the API's JWT_SECRET
	Worker   *proc.Proc
	API      *proc.Proc
	APIURL   string
	Metrics  string // the worker's /metrics URL
	closers  []func()
}

// Start brings up PostgreSQL's fresh database, the dev server, and the worker and
// API subprocesses. On error, what was started is already stopped.
func Start(ctx context.Context, cfg settings.Settings, logf func(string, ...any)) (_ *Env, err error) {
	e := &Env{cfg: cfg}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Root, err = testinfra.RepoRoot(); err != nil {
		return nil, fmt.Errorf("run the benchmark inside the repository: %w", err)
	}
	if e.LogDir, err = os.MkdirTemp("", "webhooks-bench-"); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() {
		if !cfg.KeepLogs {
			_ = os.RemoveAll(e.LogDir)
		}
	})
	for _, bin := range []string{cfg.TemporalBin, cfg.WebhooksBin} {
		if _, err := os.Stat(e.abs(bin)); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make build temporal` first (make bench does)", bin)
		}
	}

	// Secrets: the master key the worker opens secrets with, and the box the harness seals with.
	if e.Box, e.keyB64, err = testfixture.NewBox(); err != nil {
		return nil, err
	}
	e.JWT = testinfra.RandomHex(32)

	logf("database: creating a fresh one on %s", redactURL(cfg.AdminURL))
	if err := e.createDatabase(ctx); err != nil {
		return nil, err
	}

	logf("temporal: starting the dev server (in memory) from %s", cfg.TemporalBin)
	if err := e.startTemporal(ctx); err != nil {
		return nil, err
	}

	logf("worker and api: starting %s as subprocesses", cfg.WebhooksBin)
	if err := e.startServices(ctx); err != nil {
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

func (e *Env) createDatabase(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := testinfra.NewDatabase(cctx, e.cfg.AdminURL, "webhooks_bench_", 32)
	if err != nil {
		return fmt.Errorf("PostgreSQL is required at %s (scripts/ensure-postgres.sh starts it): %w", redactURL(e.cfg.AdminURL), err)
	}
	e.database, e.DB = d, d.DB
	e.closers = append(e.closers, e.dropDatabase)
	return nil
}

func (e *Env) dropDatabase() {
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

func (e *Env) startTemporal(ctx context.Context) error {
	logFile, err := os.Create(filepath.Join(e.LogDir, "temporal.log"))
	if err != nil {
		return err
	}
	var extra []string
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
	e.DevPID = procfs.ChildPID(filepath.Base(e.cfg.TemporalBin))
	return nil
}

// startServices runs `webhooks worker` and `webhooks api` with the benchmark's configuration.
func (e *Env) startServices(ctx context.Context) error {
	metricsAddr, err := testinfra.FreeAddr()
	if err != nil {
		return err
	}
	httpAddr, err := testinfra.FreeAddr()
	if err != nil {
		return err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + e.database.URL,
		"TEMPORAL_ADDRESS=" + e.dev.FrontendHostPort(),
		"TEMPORAL_NAMESPACE=default",
		"TEMPORAL_TASK_QUEUE=" + TaskQueue,
		"WEBHOOK_SECRET_KEY=" + e.keyB64,
		"WEBHOOK_ALLOW_PRIVATE_TARGETS=true",
		"JWT_SECRET=" + e.JWT,
		"METRICS_ADDR=" + metricsAddr,
		"HTTP_ADDR=" + httpAddr,
		"API_RATE_LIMIT=1000000",
		"API_RATE_BURST=1000000",
		"LOG_LEVEL=" + e.cfg.LogLevel,
	}
	env = append(env, e.cfg.ServiceEnv...)
	bin := e.abs(e.cfg.WebhooksBin)
	if e.Worker, err = proc.Start(bin, "worker", env, filepath.Join(e.LogDir, "worker.log")); err != nil {
		return err
	}
	e.closers = append(e.closers, e.Worker.Stop)
	if e.API, err = proc.Start(bin, "api", env, filepath.Join(e.LogDir, "api.log")); err != nil {
		return err
	}
	e.closers = append(e.closers, e.API.Stop)
	e.APIURL = "http://" + httpAddr
	e.Metrics = "http://" + metricsAddr + "/metrics"

	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitHTTP(rctx, e.APIURL+"/healthz", e.API); err != nil {
		return fmt.Errorf("api did not come up: %w\n%s", err, e.API.Tail())
	}
	if err := waitHTTP(rctx, e.Metrics, e.Worker); err != nil {
		return fmt.Errorf("worker did not come up: %w\n%s", err, e.Worker.Tail())
	}
	if err := waitPollers(rctx, e.Temporal, TaskQueue); err != nil {
		return fmt.Errorf("worker is not polling %s: %w\n%s", TaskQueue, err, e.Worker.Tail())
	}
	return nil
}

func waitHTTP(ctx context.Context, u string, p *proc.Proc) error {
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
		if p.Exited() {
			return errors.New("the process exited")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitPollers(ctx context.Context, c client.Client, queue string) error {
	for {
		ok := true
		for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			resp, err := c.DescribeTaskQueue(ctx, queue, typ)
			if err != nil || len(resp.GetPollers()) == 0 {
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

// Close stops everything, newest first, and drops the database.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// SampleCPU reads the CPU time used so far by each component: the harness, the dev
// server, the worker, the API, PostgreSQL, and the machine as a whole.
func (e *Env) SampleCPU() procfs.CPUSample {
	var workerPID, apiPID int
	if e.Worker != nil {
		workerPID = e.Worker.PID()
	}
	if e.API != nil {
		apiPID = e.API.PID()
	}
	return procfs.SampleCPU(e.DevPID, workerPID, apiPID)
}
