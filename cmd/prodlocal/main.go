// Command prodlocal runs the production topology of docker-compose.yml as processes on
// loopback, for `make prod-local`: the real Temporal server on PostgreSQL persistence
// and visibility, its Web UI, the migrations, API replicas behind a balancer and worker
// replicas. The service's settings come from the environment, as in compose; Ctrl-C
// stops everything. A replica that exits on its own is started again, as compose's
// `restart: unless-stopped` does.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/assetsup/webhooks/internal/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "prodlocal:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	root, _ := os.Getwd()
	opts := cluster.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	flag.StringVar(&opts.Root, "root", root, "repository root (bin/ and deploy/)")
	flag.StringVar(&opts.StateDir, "state", filepath.Join(root, ".prod-local"), "configuration and logs")
	flag.StringVar(&opts.AdminURL, "postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server for all three databases")
	flag.StringVar(&opts.TemporalDatabase, "temporal-db", "temporal_prodlocal", "Temporal persistence database")
	flag.StringVar(&opts.VisibilityDatabase, "visibility-db", "temporal_visibility_prodlocal", "Temporal visibility database")
	flag.StringVar(&opts.AppDatabase, "app-db", "webhooks_prodlocal", "the service's database")
	flag.StringVar(&opts.FrontendAddr, "temporal", "127.0.0.1:7233", "Temporal frontend address")
	flag.StringVar(&opts.UIAddr, "ui", "127.0.0.1:8233", "Temporal Web UI address")
	flag.StringVar(&opts.APIAddr, "api", "127.0.0.1:8080", "API balancer address")
	flag.StringVar(&opts.CodecAddr, "codec", "127.0.0.1:8234", "codec server for the Web UI when TEMPORAL_PAYLOAD_KEY is set (empty: none)")
	flag.IntVar(&opts.HistoryShards, "history-shards", 4, "Temporal history shards (fixed when its database is created)")
	flag.IntVar(&opts.APIReplicas, "api-replicas", 2, "API replicas")
	flag.IntVar(&opts.WorkerReplicas, "worker-replicas", 3, "worker replicas")
	flag.StringVar(&opts.TemporalLogLevel, "temporal-log-level", "warn", "Temporal server log level")
	// One PostgreSQL serves everything here, with its default 100 connections: the
	// server's four services and five replicas share them.
	flag.IntVar(&opts.TemporalMaxConns, "temporal-max-conns", 10, "connections per Temporal service to its persistence database")
	flag.IntVar(&opts.TemporalVisibilityMaxConns, "temporal-visibility-max-conns", 4, "connections per Temporal service to its visibility database")
	flag.Parse()
	opts.Namespace = envOr("TEMPORAL_NAMESPACE", "default")
	if os.Getenv("TEMPORAL_PAYLOAD_KEY") == "" {
		opts.CodecAddr = ""
	}
	if os.Getenv("DATABASE_MAX_OPEN_CONNS") == "" {
		opts.Env = append(opts.Env, "DATABASE_MAX_OPEN_CONNS=8")
	}

	c, err := cluster.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Stop()
	fmt.Printf(`
AssetsUp Webhooks runs on the production topology:
  API (balancer)   %s   (%d replicas)
  Temporal UI      http://%s%s
  Temporal         %s   (server on PostgreSQL: %s, %s)
  workers          %d replicas, metrics and probes at %s ... %s
  logs             %s
Get a token:       set -a; source .dev/env; set +a; bin/webhooks token --user user-1
Ctrl-C stops everything.

`, c.APIURL(), len(c.APIs), opts.UIAddr, codecNote(opts.CodecAddr), opts.FrontendAddr, opts.TemporalDatabase, opts.VisibilityDatabase,
		len(c.Workers), c.WorkerURL(0), c.WorkerURL(len(c.Workers)-1), c.LogDir())
	return supervise(ctx, c)
}

// supervise starts again any replica that exited on its own until ctx ends.
func supervise(ctx context.Context, c *cluster.Cluster) error {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-c.BalancerErr():
			return fmt.Errorf("api balancer: %w", err)
		case <-tick.C:
		}
		if !c.Temporal.Process().Running() {
			slog.Warn("temporal server exited: starting it again")
			if err := c.Temporal.Start(ctx); err != nil {
				return err
			}
		}
		for i, w := range c.Workers {
			if !w.Running() {
				slog.Warn("worker exited: starting it again", "replica", w.Name)
				if err := c.StartWorker(ctx, i); err != nil {
					return err
				}
			}
		}
		for i, a := range c.APIs {
			if !a.Running() {
				slog.Warn("api exited: starting it again", "replica", a.Name)
				if err := c.StartAPI(ctx, i); err != nil {
					return err
				}
			}
		}
	}
}

// codecNote tells how to see encrypted payloads in the Web UI.
func codecNote(addr string) string {
	if addr == "" {
		return "   (payloads in plaintext: TEMPORAL_PAYLOAD_KEY is not set)"
	}
	return fmt.Sprintf("\n                   payloads encrypted; to read them there, sign in once at http://%s/login\n                   with CODEC_SERVER_TOKEN from .dev/prod-local.env", addr)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
