// Package temporalclient builds the service's one kind of Temporal client from the
// configuration, so the API, the worker and the dispatch command connect alike.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/assetsup/webhooks/config"
)

// Options are the client options for cfg: address, namespace, and the service's logger
// (and metrics, when given) handed to the SDK.
func Options(cfg config.Config, logger *slog.Logger, metrics client.MetricsHandler) client.Options {
	return client.Options{
		HostPort:       cfg.TemporalAddress,
		Namespace:      cfg.TemporalNamespace,
		Logger:         tlog.NewStructuredLogger(logger),
		MetricsHandler: metrics,
	}
}

// NewLazy returns a client that connects on first use: the API keeps serving the
// registry while Temporal is down, and answers 503 where it needs Temporal.
func NewLazy(cfg config.Config, logger *slog.Logger) (client.Client, error) {
	c, err := client.NewLazyClient(Options(cfg, logger, nil))
	if err != nil {
		return nil, fmt.Errorf("temporal client: %w", err)
	}
	return c, nil
}

// Dial connects, retrying for TEMPORAL_DIAL_TIMEOUT while the server starts (make dev
// starts both at once, and a rolling deploy may restart both).
func Dial(ctx context.Context, cfg config.Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	deadline := time.Now().Add(cfg.TemporalDialTimeout)
	for {
		c, err := client.DialContext(ctx, Options(cfg, logger, metrics))
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("connect to temporal at %s: %w", cfg.TemporalAddress, err)
		}
		logger.WarnContext(ctx, "temporal not reachable yet, retrying", "address", cfg.TemporalAddress, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
