// Package temporalclient builds the service's one kind of Temporal client from the
// configuration, so the API, the worker and the dispatch command connect alike: address,
// namespace, TLS (mutual or not) and API key from the TEMPORAL_* settings, and payloads
// encrypted with the configured keys (TEMPORAL_PAYLOAD_KEY).
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/assetsup/webhooks/config"
)

// Options are the client options for cfg: the connection (config.TemporalConnection),
// the payload codec, and the service's logger (and metrics, when given) handed to the SDK.
func Options(cfg config.Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Options, error) {
	opts, err := cfg.TemporalConnection()
	if err != nil {
		return client.Options{}, err
	}
	codec, err := cfg.PayloadCodec()
	if err != nil {
		return client.Options{}, err
	}
	opts.Logger = tlog.NewStructuredLogger(logger)
	opts.MetricsHandler = metrics
	if codec != nil {
		UseCodec(&opts, codec)
	}
	return opts, nil
}

// UseCodec makes a client (and the workers built on it) pass every payload through
// codec: workflow and activity inputs and results, markers, memos, and failures, whose
// messages and stack traces move into their encoded attributes so they are encrypted
// too. Search attributes never pass through a codec: the server must index them.
func UseCodec(opts *client.Options, codec converter.PayloadCodec) {
	opts.DataConverter = DataConverter(codec)
	opts.FailureConverter = FailureConverter(opts.DataConverter)
}

// FailureConverter is the SDK's default failure converter with messages and stack
// traces moved into the failure's encoded attributes, encoded by dc.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return readsCopy{temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})}
}

// readsCopy works around the SDK (v1.51) writing the decoded message and stack trace
// back into the failure it turns into an error: a local activity's failure is then
// recorded in the history's marker in plaintext. It hands the SDK a copy.
type readsCopy struct{ converter.FailureConverter }

func (r readsCopy) FailureToError(f *failurepb.Failure) error {
	if f == nil {
		return nil
	}
	return r.FailureConverter.FailureToError(proto.Clone(f).(*failurepb.Failure))
}

// DataConverter is the SDK's default data converter with codec applied to its
// payloads: what a client, a worker or a replayer of encrypted histories uses.
func DataConverter(codec converter.PayloadCodec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), codec)
}

// NewLazy returns a client that connects on first use: the API keeps serving the
// registry while Temporal is down, and answers 503 where it needs Temporal.
func NewLazy(cfg config.Config, logger *slog.Logger) (client.Client, error) {
	opts, err := Options(cfg, logger, nil)
	if err != nil {
		return nil, err
	}
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal client: %w", err)
	}
	return c, nil
}

// Dial connects, retrying for TEMPORAL_DIAL_TIMEOUT while the server starts (make dev
// starts both at once, and a rolling deploy may restart both).
func Dial(ctx context.Context, cfg config.Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts, err := Options(cfg, logger, metrics)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(cfg.TemporalDialTimeout)
	for {
		c, err := client.DialContext(ctx, opts)
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
