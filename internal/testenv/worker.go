package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/deliveryworker"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/workflows"
)

// Box returns a secrets box with a fresh random master key.
func Box(t testing.TB) *secrets.Box {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	key, err := secrets.ParseKey(1, base64.StdEncoding.EncodeToString(b))
	require.NoError(t, err)
	box, err := secrets.NewBox(key)
	require.NoError(t, err)
	return box
}

// WorkerSettings are the knobs end-to-end tests turn; zero values take fast test defaults.
type WorkerSettings struct {
	TaskQueue    string
	Box          *secrets.Box
	Workflows    workflows.Config
	Activities   activities.Config
	HTTPTimeout  time.Duration
	AllowedCIDRs string  // default 127.0.0.0/8: test receivers are local
	DB           *bun.DB // default: the package's database
}

// DefaultWorkflowConfig is a delivery policy fast enough for tests: three attempts,
// 1 s then 2 s apart (the dev server rounds sub-second intervals up).
func DefaultWorkflowConfig() workflows.Config {
	return workflows.Config{
		Retry:                  workflows.RetryConfig{MaxAttempts: 3, InitialInterval: time.Second, MaxInterval: time.Minute, BackoffCoefficient: 2},
		HTTPTimeout:            5 * time.Second,
		ConnWaitTimeout:        5 * time.Second,
		DBRetryTimeout:         5 * time.Second,
		RecordRetryMaxInterval: 2 * time.Second,
		MaxEventDataBytes:      256 << 10,
		ChildrenPerRun:         500,
		InlineSingleDelivery:   true,
		FirstAttemptLocal:      true,
	}
}

// DefaultActivitiesConfig is the delivery activities' configuration matching DefaultWorkflowConfig.
func DefaultActivitiesConfig() activities.Config {
	return activities.Config{
		MaxResponseBytes:      64 << 10,
		RetryAfterMax:         10 * time.Minute,
		DisableAfterFailures:  10,
		DBRetryTimeout:        5 * time.Second,
		InfraRetryMaxInterval: 2 * time.Second,
		ConnWaitTimeout:       5 * time.Second,
		MaxConnsPerHost:       16,
		DispatchPageSize:      100,
		DeliveryRetention:     30 * 24 * time.Hour,
		UserAgent:             "AssetsUp-Webhooks/test",
	}
}

// StartWorker runs a real worker in this process against the package's dev server and
// database, on its own task queue (returned), stopped when the test ends.
func StartWorker(t testing.TB, s WorkerSettings) string {
	t.Helper()
	return StartWorkerOn(t, Temporal(t), s)
}

// StartWorkerOn is StartWorker against another Temporal server, for tests that restart it.
func StartWorkerOn(t testing.TB, c client.Client, s WorkerSettings) string {
	t.Helper()
	db := s.DB
	if db == nil {
		db = DB(t)
	}
	if s.TaskQueue == "" {
		s.TaskQueue = "test-" + uuid.NewString()
	}
	if s.Box == nil {
		t.Fatal("testenv.StartWorker: Box is required (the same box that sealed the webhooks' secrets)")
	}
	if s.Workflows.Retry.MaxAttempts == 0 {
		s.Workflows = DefaultWorkflowConfig()
	}
	if s.Activities.DispatchPageSize == 0 {
		s.Activities = DefaultActivitiesConfig()
	}
	if s.HTTPTimeout == 0 {
		s.HTTPTimeout = s.Workflows.HTTPTimeout
	}
	if s.AllowedCIDRs == "" {
		s.AllowedCIDRs = "127.0.0.0/8"
	}
	cidrs, err := netguard.ParseCIDRs(s.AllowedCIDRs)
	require.NoError(t, err)
	// Activities log through the worker's client: one that shares c's connection and
	// writes into Logs, as the deployed worker's writes into the service's log.
	wc, err := client.NewClientFromExisting(c, client.Options{Namespace: "default", Logger: tlog.NewStructuredLogger(Logger(t))})
	require.NoError(t, err)
	t.Cleanup(wc.Close)
	acts := activities.NewDelivery(db, activities.NewHTTPClient(s.HTTPTimeout, 16, netguard.NewPolicy(false, cidrs)), s.Box, s.Activities)
	w := deliveryworker.New(wc, deliveryworker.Options{
		TaskQueue: s.TaskQueue, MaxConcurrentActivities: 100, MaxConcurrentWorkflowTasks: 100,
		MaxConcurrentLocalActivities: 100, Pollers: 2, AutoscalePollers: true, MaxPollers: 8,
	}, workflows.New(s.Workflows), acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return s.TaskQueue
}
