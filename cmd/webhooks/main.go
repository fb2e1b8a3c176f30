// Command webhooks is the AssetsUp Webhooks service: one binary whose subcommands
// migrate the database, serve the REST API, run the delivery worker, and issue
// development tokens.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/deliveryworker"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/migrations"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/payloadcodec"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/temporalclient"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

const usage = `usage: webhooks <command> [flags]

commands:
  migrate                         apply database migrations (idempotent)
  api                             serve the REST API on HTTP_ADDR
  worker                          run the Temporal delivery worker
  token --user ID [--ttl 1h]      print a JWT for local use, signed with JWT_SECRET
  dispatch --user ID --event E [--id ID] [--data JSON]
                                  hand one event to delivery, as the backend does
  codec-server                    decrypt payloads for the Temporal Web UI and CLI on
                                  CODEC_SERVER_ADDR (Temporal's codec server protocol)
  version                         print the version

Configuration comes from the environment; see the README.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "webhooks:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "migrate":
		return runMigrate(ctx, stdout)
	case "api":
		return runAPI(ctx)
	case "worker":
		return runWorker(ctx)
	case "token":
		return runToken(args[1:], stdout)
	case "dispatch":
		return runDispatch(ctx, args[1:], stdout)
	case "codec-server":
		return runCodecServer(ctx)
	case "version":
		_, err := fmt.Fprintln(stdout, version)
		return err
	case "help", "-h", "--help":
		_, err := fmt.Fprintln(stdout, usage)
		return err
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}

// deps are what the long-running subcommands build from the configuration.
type deps struct {
	logger *slog.Logger
	box    *secrets.Box
	policy *netguard.Policy
	db     *bun.DB
}

// setup loads and validates the configuration for role and opens the database.
func setup(ctx context.Context, role config.Role) (config.Config, deps, error) {
	cfg, err := config.Load(role)
	if err != nil {
		return cfg, deps{}, err
	}
	d := deps{logger: newLogger(cfg)}
	d.box, _ = cfg.SecretBox()        // validated by config.Load
	d.policy, _ = cfg.AddressPolicy() // validated by config.Load
	d.db, err = models.Open(ctx, cfg.DatabaseURL, cfg.DatabaseMaxOpenConns)
	return cfg, d, err
}

// newRegistry is a Prometheus registry with the Go runtime and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func newLogger(cfg config.Config) *slog.Logger {
	level, _ := cfg.SlogLevel() // validated by config.Load
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func runMigrate(ctx context.Context, stdout io.Writer) error {
	cfg, err := config.Load(config.RoleMigrate)
	if err != nil {
		return err
	}
	db, err := models.Open(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := migrations.Up(ctx, db)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "migrations applied: %d\n", n)
	return err
}

func runToken(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	user := fs.String("user", "", "user id to put in sub (required)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *ttl <= 0 {
		return errors.New("token: --user is required and --ttl must be positive")
	}
	cfg, err := config.Load(config.RoleToken)
	if err != nil {
		return err
	}
	tok, err := api.IssueToken([]byte(cfg.JWTSecret), *user, *ttl, time.Now())
	if err != nil {
		return fmt.Errorf("sign token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func runAPI(ctx context.Context) error {
	cfg, d, err := setup(ctx, config.RoleAPI)
	if err != nil {
		return err
	}
	defer d.db.Close()
	logger, box, policy, db := d.logger, d.box, d.policy, d.db
	tc, err := temporalclient.NewLazy(cfg, logger)
	if err != nil {
		return err
	}
	defer tc.Close()

	reg := newRegistry()
	router := api.NewRouter(api.Deps{
		DB: db, Temporal: tc, Box: box, Policy: policy, Logger: logger, Registry: reg,
		Config: api.Config{
			JWTSecret:          []byte(cfg.JWTSecret),
			MaxBodyBytes:       cfg.HTTPMaxBodyBytes,
			MaxWebhooksPerUser: cfg.MaxWebhooksPerUser,
			TaskQueue:          cfg.TemporalTaskQueue,
			TestTimeout:        cfg.TestTimeout,
			TemporalTimeout:    cfg.TemporalTimeout,
			SecretGrace:        cfg.SecretGrace,
			RateLimit:          cfg.APIRateLimit,
			RateBurst:          cfg.APIRateBurst,
			ListCacheBytes:     cfg.APIListCacheBytes,

			PortalSessionTTL:     cfg.PortalSessionTTL,
			PortalLinkTTL:        cfg.PortalLinkTTL,
			PortalFrameAncestors: cfg.PortalFrameAncestors,
			PortalPublicURL:      cfg.PortalPublicURL,
			PortalTemporalUIURL:  cfg.PortalTemporalUIURL,
			TemporalNamespace:    cfg.TemporalNamespace,
			RecoverMaxWindow:     cfg.RecoverWindow(),
		},
	})
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           router,
		ReadHeaderTimeout: cfg.HTTPReadTimeout,
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    32 << 10,
	}
	logger.Info("api listening", "addr", cfg.HTTPAddr, "version", version)
	return serve(ctx, srv, cfg.ShutdownTimeout)
}

// serve runs srv until ctx ends, then drains in-flight requests for up to grace.
func serve(ctx context.Context, srv *http.Server, grace time.Duration) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("listen on %s: %w", srv.Addr, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
	return g.Wait()
}

func runWorker(ctx context.Context) error {
	cfg, d, err := setup(ctx, config.RoleWorker)
	if err != nil {
		return err
	}
	defer d.db.Close()
	logger, box, db := d.logger, d.box, d.db
	reg := newRegistry()
	tc, err := temporalclient.Dial(ctx, cfg, logger, deliveryworker.MetricsHandler(reg))
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := deliveryworker.EnsureSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
		return err
	}
	if err := deliveryworker.EnsurePruneSchedule(ctx, tc, cfg.TemporalTaskQueue, cfg.PruneInterval); err != nil {
		return err
	}

	w, err := deliveryworker.Build(tc, cfg, deliveryworker.Deps{DB: db, Box: box, Registry: reg, Version: version})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Probes for an orchestrator, beside the metrics: the worker holds no listener of
	// its own to probe.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { writeProbe(w, http.StatusOK, "ok") })
	mux.HandleFunc("/readyz", workerReady(db, tc, cfg.TemporalTimeout))
	metricsSrv := &http.Server{Addr: cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	logger.Info("worker starting", "task_queue", cfg.TemporalTaskQueue, "metrics_addr", cfg.MetricsAddr, "version", version)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve(gctx, metricsSrv, cfg.ShutdownTimeout) })
	g.Go(func() error {
		// Run stops when the channel closes and waits for in-flight tasks to finish.
		stop := make(chan any)
		go func() { <-gctx.Done(); close(stop) }()
		return w.Run(stop)
	})
	return g.Wait()
}

// workerReady answers 200 while the worker can do its work (database and Temporal
// reachable), 503 otherwise. A failing readiness probe takes a replica out of a
// rollout's count without restarting it: an outage of ours is waited out, not
// restarted into a crash loop.
func workerReady(db *bun.DB, tc client.Client, timeout time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			writeProbe(w, http.StatusServiceUnavailable, "database unreachable")
			return
		}
		if _, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			writeProbe(w, http.StatusServiceUnavailable, "temporal unreachable")
			return
		}
		writeProbe(w, http.StatusOK, "ok")
	}
}

func writeProbe(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": status})
}

func runDispatch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dispatch", flag.ContinueOnError)
	user := fs.String("user", "", "recipient user id (required)")
	event := fs.String("event", "", "NotificationEvent (required)")
	id := fs.String("id", "", "event id (idempotency key); generated when empty")
	data := fs.String("data", "{}", "event data: a JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(*data), &payload); err != nil {
		return fmt.Errorf("dispatch: --data must be a JSON object: %w", err)
	}
	cfg, err := config.Load(config.RoleDispatch)
	if err != nil {
		return err
	}
	tc, err := temporalclient.Dial(ctx, cfg, newLogger(cfg), nil)
	if err != nil {
		return err
	}
	defer tc.Close()
	svc := dispatch.NewWebhookDispatchService(tc, cfg.TemporalTaskQueue)
	eventID, err := svc.Trigger(ctx, events.NotificationEvent(*event), dispatch.Event{ID: *id, UserID: *user, Data: payload})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, eventID)
	return err
}

// runCodecServer serves /encode and /decode for operators: the Web UI (its codec
// endpoint setting) and the temporal CLI (--codec-endpoint) show decrypted payloads to
// whoever holds CODEC_SERVER_TOKEN.
func runCodecServer(ctx context.Context) error {
	cfg, err := config.Load(config.RoleCodec)
	if err != nil {
		return err
	}
	logger := newLogger(cfg)
	codec, _ := cfg.PayloadCodec()            // validated by config.Load
	origins, _ := cfg.CodecServerOriginList() // validated by config.Load
	srv := &http.Server{
		Addr: cfg.CodecServerAddr,
		Handler: payloadcodec.NewHandler(codec, payloadcodec.HandlerOptions{
			Token: cfg.CodecServerToken, AllowedOrigins: origins, MaxBodyBytes: cfg.CodecServerMaxBodyBytes, Logger: logger,
		}),
		ReadHeaderTimeout: cfg.HTTPReadTimeout,
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    32 << 10,
	}
	logger.Info("codec server listening", "addr", cfg.CodecServerAddr, "allowed_origins", origins,
		"key_id", codec.CurrentKeyID(), "version", version)
	return serve(ctx, srv, cfg.ShutdownTimeout)
}
