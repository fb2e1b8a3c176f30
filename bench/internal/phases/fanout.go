package phases

import (
	"context"
	"time"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/stats"
)

// FanoutResult is one event to many subscribers of one user.
type FanoutResult struct {
	Subscribers         int         `json:"subscribers"`
	FirstReceiptSeconds float64     `json:"firstReceiptSeconds"`
	LastReceiptSeconds  float64     `json:"lastReceiptSeconds"`
	PerSecond           float64     `json:"deliveriesPerSecond"`
	Usage               meter.Usage `json:"usage"`
}

func (b *Bench) fanout(ctx context.Context, user string, hooks []string) (FanoutResult, error) {
	phase := b.phase("fanout")
	res := FanoutResult{Subscribers: len(hooks)}
	eventID := "fan-" + b.runID
	m := b.measure(ctx)
	t0 := time.Now()
	for _, h := range hooks {
		b.ledger.Expect(phase, receiver.Key{EventID: eventID, WebhookID: h}, t0)
	}
	if err := b.trigger(ctx, eventID, user, 0); err != nil {
		return res, err
	}
	err := b.waitPhase(ctx, phase, b.cfg.DrainTimeout)
	s := b.ledger.Stats(phase)
	res.Usage = m.done(ctx, len(hooks))
	if s.Received > 0 {
		res.FirstReceiptSeconds = stats.Round(s.FirstReceipt.Sub(t0).Seconds(), 3)
		res.LastReceiptSeconds = stats.Round(s.LastReceipt.Sub(t0).Seconds(), 3)
		res.PerSecond = stats.Round(float64(s.Received)/s.LastReceipt.Sub(t0).Seconds(), 1)
	}
	return res, err
}
