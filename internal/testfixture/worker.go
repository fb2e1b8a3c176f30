package testfixture

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/deliveryworker"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/temporalclient"
)

// WorkerConfig is the service's configuration for test workers: three attempts 1 s then
// 2 s apart (the dev server rounds sub-second intervals up), short timeouts, receivers
// on 127.0.0.0/8 allowed, and no wait for running activities when the test stops it.
func WorkerConfig() config.Config {
	return config.Config{
		TemporalNamespace:       "default",
		AllowedCIDRs:            "127.0.0.0/8",
		RetryMaxAttempts:        3,
		RetryInitialInterval:    time.Second,
		RetryMaxInterval:        time.Minute,
		RetryBackoffCoefficient: 2,
		RetryAfterMax:           10 * time.Minute,
		HTTPTimeout:             5 * time.Second,
		MaxResponseBytes:        64 << 10,
		MaxConnsPerHost:         16,
		ConnWaitTimeout:         5 * time.Second,
		MaxEventDataBytes:       256 << 10,
		DisableAfterFailures:    10,
		DBRetryTimeout:          5 * time.Second,
		RecordRetryMaxInterval:  2 * time.Second,
		DispatchPageSize:        100,
		DispatchChildrenPerRun:  500,
		DispatchInlineSingle:    true,
		FirstAttemptLocal:       true,
		DeliveryRetention:       30 * 24 * time.Hour,
		PruneInterval:           time.Hour,
		MaxHeaders:              10,
		MaxHeaderBytes:          4096,
		FilterMaxBytes:          2048,
		FilterCostLimit:         10000,
		DefaultRateBurst:        1,
		RateLimitHold:           time.Second,

		WorkerActivitySlots:      100,
		WorkerWorkflowTaskSlots:  100,
		WorkerLocalActivitySlots: 100,
		WorkerPollers:            2,
		WorkerPollerAutoscale:    true,
		WorkerMaxPollers:         8,
	}
}

// WorkerSettings are what a test chooses about its worker; zero values take defaults.
type WorkerSettings struct {
	Box    *secrets.Box  // required: the box that sealed the webhooks' secrets
	Config config.Config // default WorkerConfig(); TemporalTaskQueue default a fresh queue
	DB     *bun.DB       // default: the package's database
	// Logger receives the worker's log, activities' lines included; default: nowhere.
	Logger *slog.Logger
}

// StartWorker runs the service's worker (deliveryworker.Build) in this process against
// the package's dev server, on its own task queue (returned), stopped when the test ends.
// Payload keys in the settings' Config (PayloadKey, PayloadOldKeys) make it encrypt, as
// TEMPORAL_PAYLOAD_KEY makes the deployed worker.
func StartWorker(t testing.TB, s WorkerSettings) string {
	t.Helper()
	return StartWorkerOn(t, testinfra.Temporal(t), s)
}

// StartWorkerOn is StartWorker against another Temporal server, for tests that restart it.
func StartWorkerOn(t testing.TB, c client.Client, s WorkerSettings) string {
	t.Helper()
	if s.Box == nil {
		t.Fatal("testfixture.StartWorker: Box is required (the same box that sealed the webhooks' secrets)")
	}
	db := s.DB
	if db == nil {
		db = testinfra.DB(t)
	}
	cfg := s.Config
	if cfg == (config.Config{}) {
		cfg = WorkerConfig()
	}
	if cfg.TemporalTaskQueue == "" {
		cfg.TemporalTaskQueue = "test-" + uuid.NewString()
	}
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Activities log through the worker's client: one that shares c's connection and
	// writes into logger, as the deployed worker's writes into the service's log.
	opts := client.Options{Namespace: cfg.TemporalNamespace, Logger: tlog.NewStructuredLogger(logger)}
	// Payload keys in cfg (TEMPORAL_PAYLOAD_KEY) encrypt as they do in the deployed worker.
	codec, err := cfg.PayloadCodec()
	require.NoError(t, err)
	if codec != nil {
		temporalclient.UseCodec(&opts, codec)
	}
	wc, err := client.NewClientFromExisting(c, opts)
	require.NoError(t, err)
	t.Cleanup(wc.Close)
	w, err := deliveryworker.Build(wc, cfg, deliveryworker.Deps{DB: db, Box: s.Box, Version: "test"})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return cfg.TemporalTaskQueue
}
