package deliveryworker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/workflows"
)

// Deps are what Build needs besides the configuration.
type Deps struct {
	DB  bun.IDB
	Box *secrets.Box // opens the webhooks' secrets
	// Registry receives the activities' metrics; nil leaves them unmeasured.
	Registry prometheus.Registerer
	// Version goes into the deliveries' User-Agent.
	Version string
}

// Build is the worker the service runs: the delivery activities (an HTTP client held to
// cfg's address policy and per-host cap) and the workflows, both configured from cfg, on
// cfg.TemporalTaskQueue. The service and the tests' in-process workers both use it, so
// tests run the production wiring. Payloads are converted by c's data and failure
// converters: a client from temporalclient encrypts them when TEMPORAL_PAYLOAD_KEY is set.
func Build(c client.Client, cfg config.Config, d Deps) (worker.Worker, error) {
	policy, err := cfg.AddressPolicy()
	if err != nil {
		return nil, err
	}
	actsCfg := ActivitiesConfig(cfg, d.Version)
	if d.Registry != nil {
		actsCfg.Metrics = activities.NewMetrics(d.Registry)
		actsCfg.OpsMetrics = activities.NewOpsMetrics(d.Registry)
	}
	actsCfg.Operational.Start = OperationalStarter(c, cfg.TemporalTaskQueue)
	acts := activities.NewDelivery(d.DB, activities.NewHTTPClient(cfg.HTTPTimeout, cfg.MaxConnsPerHost, policy), d.Box, actsCfg)
	return New(c, OptionsFrom(cfg), workflows.New(WorkflowConfig(cfg)), acts), nil
}

// ActivitiesConfig maps the configuration to the delivery activities' settings;
// version goes into the User-Agent.
func ActivitiesConfig(cfg config.Config, version string) activities.Config {
	return activities.Config{
		MaxResponseBytes:      cfg.MaxResponseBytes,
		RetryAfterMax:         cfg.RetryAfterMax,
		DisableAfterFailures:  cfg.DisableAfterFailures,
		DBRetryTimeout:        cfg.DBRetryTimeout,
		InfraRetryMaxInterval: cfg.RecordRetryMaxInterval,
		ConnWaitTimeout:       cfg.ConnWaitTimeout,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		DispatchPageSize:      cfg.DispatchPageSize,
		DeliveryRetention:     cfg.DeliveryRetention,
		UserAgent:             "AssetsUp-Webhooks/" + version,
		FilterCostLimit:       cfg.FilterCostLimit,
		DefaultRateLimit:      cfg.DefaultRateLimit,
		DefaultRateBurst:      cfg.DefaultRateBurst,
		RateLimitHold:         cfg.RateLimitHold,
		Operational:           operationalConfig(cfg),
	}
}

// operationalConfig is where the worker sends operational events: nowhere unless
// OPERATIONAL_WEBHOOK_URL is set.
func operationalConfig(cfg config.Config) activities.OperationalConfig {
	if cfg.OperationalWebhookURL == "" {
		return activities.OperationalConfig{}
	}
	return activities.OperationalConfig{
		URL:    cfg.OperationalWebhookURL,
		Secret: cfg.OperationalWebhookSecret,
		// The backend's URL is the operator's own, often in-cluster: not held to the
		// guard on receivers' URLs.
		Client:             activities.NewHTTPClient(cfg.HTTPTimeout, cfg.MaxConnsPerHost, netguard.NewPolicy(true, nil)),
		AlertAfterFailures: cfg.AlertAfterFailures,
	}
}

// WorkflowConfig maps the configuration to the workflows' settings.
func WorkflowConfig(cfg config.Config) workflows.Config {
	return workflows.Config{
		Retry: workflows.RetryConfig{
			MaxAttempts:        cfg.RetryMaxAttempts,
			InitialInterval:    cfg.RetryInitialInterval,
			MaxInterval:        cfg.RetryMaxInterval,
			BackoffCoefficient: cfg.RetryBackoffCoefficient,
		},
		HTTPTimeout:            cfg.HTTPTimeout,
		ConnWaitTimeout:        cfg.ConnWaitTimeout,
		DBRetryTimeout:         cfg.DBRetryTimeout,
		RecordRetryMaxInterval: cfg.RecordRetryMaxInterval,
		MaxEventDataBytes:      cfg.MaxEventDataBytes,
		ChildrenPerRun:         cfg.DispatchChildrenPerRun,
		InlineSingleDelivery:   cfg.DispatchInlineSingle,
		FirstAttemptLocal:      cfg.FirstAttemptLocal,
		RecoverRate:            cfg.RecoverRate,
	}
}
