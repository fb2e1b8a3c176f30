package env

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/internal/cluster"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

// startProd brings up the production topology (internal/cluster, as `make prod-local`
// does) with the first worker replica count, on databases of its own.
func (e *Env) startProd(ctx context.Context, logf func(string, ...any)) error {
	cfg := e.cfg
	suffix := testinfra.RandomHex(6)
	frontend, err := testinfra.FreeAddr()
	if err != nil {
		return err
	}
	apiAddr, err := testinfra.FreeAddr()
	if err != nil {
		return err
	}
	root, err := e.prodRoot()
	if err != nil {
		return err
	}
	opts := cluster.Options{
		Root: root, StateDir: filepath.Join(e.LogDir, "cluster"), AdminURL: cfg.AdminURL,
		TemporalDatabase: "temporal_bench_" + suffix, VisibilityDatabase: "temporal_vis_bench_" + suffix,
		AppDatabase: "webhooks_bench_prod_" + suffix, FrontendAddr: frontend, APIAddr: apiAddr,
		HistoryShards: cfg.HistoryShards, Namespace: "default", TemporalLogLevel: cfg.TemporalLogLevel,
		APIReplicas: cfg.ProdAPIReplicas, WorkerReplicas: cfg.Replicas[0],
		Env:    e.serviceEnv(prodConns(cfg.ProdDBConns)...),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	e.shards = cfg.HistoryShards
	// Registered before the start, so a stack that fails half-way leaves no database.
	e.closers = append(e.closers, func() { e.dropProdDatabases(opts) })
	logf("prod: starting the production stack (Temporal server on PostgreSQL, %d history shards, %d API replicas, %d worker replicas; logs in %s)",
		opts.HistoryShards, opts.APIReplicas, opts.WorkerReplicas, opts.StateDir)
	sctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	started := time.Now()
	c, err := cluster.Start(sctx, opts)
	if err != nil {
		return fmt.Errorf("start the production stack: %w (logs in %s; -keep-logs keeps them)", err, opts.StateDir)
	}
	e.cluster = c
	e.closers = append(e.closers, c.Stop)
	logf("prod: up in %.1f s", time.Since(started).Seconds())

	if e.Temporal, err = client.DialContext(sctx, client.Options{HostPort: frontend, Namespace: "default", Logger: testinfra.QuietLogger()}); err != nil {
		return fmt.Errorf("dial the Temporal server: %w", err)
	}
	e.closers = append(e.closers, e.Temporal.Close)
	dbURL := func(name string) string {
		u, _ := url.Parse(cfg.AdminURL)
		u.Path = "/" + name
		return u.String()
	}
	// The harness seeds 8 users at a time; the server's connections are scarce.
	if e.DB, err = models.Open(sctx, dbURL(opts.AppDatabase), 8); err != nil {
		return err
	}
	e.closers = append(e.closers, func() { _ = e.DB.Close() })
	dbs := []meter.Database{{Role: "app", Name: opts.AppDatabase, DB: e.DB}}
	for _, d := range []struct{ role, name string }{{"temporal", opts.TemporalDatabase}, {"visibility", opts.VisibilityDatabase}} {
		conn, err := models.Open(sctx, dbURL(d.name), 1)
		if err != nil {
			return err
		}
		e.closers = append(e.closers, func() { _ = conn.Close() })
		dbs = append(dbs, meter.Database{Role: d.role, Name: d.name, DB: conn})
	}
	e.Meter = meter.New(e, c.Temporal.MetricsURL(), e.admin, dbs)
	e.APIURL = c.APIURL()
	if err := waitPollers(sctx, e.Temporal, TaskQueue); err != nil {
		return fmt.Errorf("no worker is polling %s: %w", TaskQueue, err)
	}
	return nil
}

// prodRoot is the root the cluster takes its binaries and dynamic config from: the
// repository, or with -prod-dynamic-config a directory of its own whose bin/ is the
// repository's and whose deploy/temporal/dynamicconfig.yaml is that file.
func (e *Env) prodRoot() (string, error) {
	if e.cfg.ProdDynamicConfig == "" {
		return e.Root, nil
	}
	b, err := os.ReadFile(e.abs(e.cfg.ProdDynamicConfig))
	if err != nil {
		return "", fmt.Errorf("-prod-dynamic-config: %w", err)
	}
	root := filepath.Join(e.LogDir, "root")
	if err := os.MkdirAll(filepath.Join(root, "deploy", "temporal"), 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink(filepath.Join(e.Root, "bin"), filepath.Join(root, "bin")); err != nil {
		return "", err
	}
	return root, os.WriteFile(filepath.Join(root, "deploy", "temporal", "dynamicconfig.yaml"), b, 0o644)
}

// prodConns is the replicas' pool size setting, when the benchmark sets one.
func prodConns(n int) []string {
	if n <= 0 {
		return nil
	}
	return []string{"DATABASE_MAX_OPEN_CONNS=" + strconv.Itoa(n)}
}

func (e *Env) dropProdDatabases(opts cluster.Options) {
	if e.cfg.KeepDB {
		fmt.Fprintf(os.Stderr, "bench: databases %s, %s and %s kept (-keep-db)\n", opts.AppDatabase, opts.TemporalDatabase, opts.VisibilityDatabase)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, name := range []string{opts.AppDatabase, opts.TemporalDatabase, opts.VisibilityDatabase} {
		if _, err := e.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}

// ScaleWorkers adds worker replicas until there are n, each waited for until ready, as
// `docker compose up --scale worker=n` or a Deployment's replica count does. Only the
// production target scales.
func (e *Env) ScaleWorkers(ctx context.Context, n int) error {
	if e.cluster == nil {
		return errors.New("only the prod target has worker replicas to scale")
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for len(e.cluster.Workers) < n {
		if _, err := e.cluster.AddWorker(sctx); err != nil {
			return fmt.Errorf("add worker replica %d: %w", len(e.cluster.Workers), err)
		}
	}
	return nil
}
