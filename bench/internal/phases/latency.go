package phases

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/stats"
)

// LatencyResult is trigger → receipt at a fixed rate.
type LatencyResult struct {
	RatePerSecond float64       `json:"ratePerSecond"`
	Seconds       float64       `json:"seconds"`
	Events        int           `json:"events"`
	Latency       stats.Summary `json:"triggerToReceipt"`
	Usage         meter.Usage   `json:"usage"`
	// Latencies are the samples behind Latency, for the chart.
	Latencies []time.Duration `json:"-"`
}

func (b *Bench) latency(ctx context.Context, rate float64) (LatencyResult, error) {
	phase := b.phase("latency")
	total := max(1, int(rate*b.spec.LatencyDuration.Seconds()))
	interval := time.Duration(float64(time.Second) / rate)
	res := LatencyResult{RatePerSecond: stats.Round(rate, 1), Seconds: b.spec.LatencyDuration.Seconds(), Events: total}
	m := b.measure(ctx)
	var wg sync.WaitGroup
	start := time.Now().Add(10 * time.Millisecond)
	for i := 0; i < total && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		u := b.tpHooks[i%len(b.tpHooks)]
		eventID := fmt.Sprintf("lat-%s-%06d", b.runID, i)
		// Open loop: the latency counts from the scheduled time, so a slow trigger
		// cannot hide behind the one before it.
		b.ledger.Expect(phase, receiver.Key{EventID: eventID, WebhookID: u.hookID}, at)
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.trigger(ctx, eventID, u.user, i) }()
	}
	wg.Wait()
	err := b.waitPhase(ctx, phase, b.cfg.DrainTimeout)
	res.Usage = m.done(ctx, total)
	s := b.ledger.Stats(phase)
	res.Latency = stats.Summarize(s.Latencies)
	res.Latencies = s.Latencies
	return res, err
}
