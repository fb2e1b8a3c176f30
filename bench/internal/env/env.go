// Package env starts what the benchmark runs against, all on loopback: a fresh
// PostgreSQL database, the Temporal dev server in memory, and the worker and the API as
// subprocesses of bin/webhooks configured only through their environment.
package env

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/uptrace/bun"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/assetsup/webhooks/bench/internal/proc"
	"github.com/assetsup/webhooks/bench/internal/procfs"
	"github.com/assetsup/webhooks/bench/internal/settings"
	"github.com/assetsup/webhooks/migrations"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/workflows"
)

// TaskQueue is the delivery worker's queue on the benchmark's own dev server.
const TaskQueue = "webhooks-bench"

// Env is everything the benchmark starts on loopback, torn down by Close.
type Env struct {
	cfg      settings.Settings
	Root     string // repository root
	LogDir   string // logs of the subprocesses
	adminURL string
	dbName   string
	dbURL    string
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

// repoRoot walks up from the working directory to this module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/assetsup/webhooks\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark inside the repository (go.mod of github.com/assetsup/webhooks not found)")
		}
		dir = parent
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// quietLogger drops the SDK's log lines.
func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// Start brings up PostgreSQL's fresh database, the dev server, and the worker and
// API subprocesses. On error, what was started is already stopped.
func Start(ctx context.Context, cfg settings.Settings, logf func(string, ...any)) (_ *Env, err error) {
	e := &Env{cfg: cfg, adminURL: cfg.AdminURL}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Root, err = repoRoot(); err != nil {
		return nil, err
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
	keyBytes := make([]byte, 32)
	_, _ = rand.Read(keyBytes)
	e.keyB64 = base64.StdEncoding.EncodeToString(keyBytes)
	k, err := secrets.ParseKey(1, e.keyB64)
	if err != nil {
		return nil, err
	}
	if e.Box, err = secrets.NewBox(k); err != nil {
		return nil, err
	}
	e.JWT = randomHex(32)

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
	admin, err := models.Open(cctx, e.adminURL, 1)
	if err != nil {
		return fmt.Errorf("PostgreSQL is required at %s (scripts/ensure-postgres.sh starts it): %w", redactURL(e.adminURL), err)
	}
	defer admin.Close()
	e.dbName = "webhooks_bench_" + randomHex(6)
	if _, err := admin.ExecContext(cctx, "CREATE DATABASE "+e.dbName); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	e.closers = append(e.closers, e.dropDatabase)
	u, err := url.Parse(e.adminURL)
	if err != nil {
		return err
	}
	u.Path = "/" + e.dbName
	e.dbURL = u.String()
	if e.DB, err = models.Open(cctx, e.dbURL, 32); err != nil {
		return err
	}
	if _, err := migrations.Up(cctx, e.DB); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func (e *Env) dropDatabase() {
	if e.DB != nil {
		_ = e.DB.Close()
	}
	if e.cfg.KeepDB {
		fmt.Fprintf(os.Stderr, "bench: database %s kept (-keep-db)\n", e.dbName)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := models.Open(ctx, e.adminURL, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: drop database:", err)
		return
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+e.dbName+" WITH (FORCE)"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: drop database:", err)
	}
}

func (e *Env) startTemporal(ctx context.Context) error {
	var updates []temporal.SearchAttributeUpdate
	for _, k := range workflows.SearchAttributeKeys() {
		updates = append(updates, k.ValueSet(""))
	}
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
	e.dev, err = testsuite.StartDevServer(sctx, testsuite.DevServerOptions{
		ExistingPath:     e.abs(e.cfg.TemporalBin),
		LogLevel:         e.cfg.TemporalLogLevel,
		SearchAttributes: temporal.NewSearchAttributes(updates...),
		ExtraArgs:        extra,
		Stdout:           logFile,
		Stderr:           logFile,
		ClientOptions:    &client.Options{Namespace: "default", Logger: quietLogger()},
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
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + e.dbURL,
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
