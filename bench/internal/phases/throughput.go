package phases

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/perf"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/stats"
	"github.com/assetsup/webhooks/workflows"
)

// ThroughputResult is N single-subscriber events pushed through DispatchEvent.
type ThroughputResult struct {
	Events             int                          `json:"events"`
	Concurrency        int                          `json:"concurrency"`
	TriggerSeconds     float64                      `json:"triggerSeconds"`
	TriggersPerSecond  float64                      `json:"triggersPerSecond"`
	TriggerCall        stats.Summary                `json:"triggerCall"`
	Seconds            float64                      `json:"firstTriggerToLastReceiptSeconds"`
	DeliveredPerSecond float64                      `json:"deliveredPerSecond"`
	RatioToFloor       float64                      `json:"ratioToFloor"`
	LongestGapSeconds  float64                      `json:"longestGapWithoutReceiptSeconds"`
	Latency            stats.Summary                `json:"triggerToReceipt"`
	Usage              meter.Usage                  `json:"usage"`
	WorkerMetrics      map[string]stats.MetricDelta `json:"workerMetrics,omitempty"`
	// TemporalCPUSplit is the Temporal server's CPU by service, from perf (-perf).
	TemporalCPUSplit map[string]float64 `json:"temporalCpuSplit,omitempty"`
	WorkerPeakRSS    int64              `json:"workerPeakRssBytes"`
	APIPeakRSS       int64              `json:"apiPeakRssBytes"`
	RSSResetWorked   bool               `json:"rssPeakResetAtPhaseStart"`
}

// warmup sends a few events through the whole path before anything is measured.
func (b *Bench) warmup(ctx context.Context) error {
	phase := b.phase("warmup")
	n := min(len(b.tpHooks), 2*b.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		u := b.tpHooks[i]
		eventID := fmt.Sprintf("warm-%s-%06d", b.runID, i)
		b.ledger.Expect(phase, receiver.Key{EventID: eventID, WebhookID: u.hookID}, time.Now())
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.trigger(ctx, eventID, u.user, i) }()
	}
	wg.Wait()
	return b.waitPhase(ctx, phase, b.cfg.DrainTimeout)
}

// throughput triggers the spec's events as fast as they are accepted and returns what
// it measured and the dispatch workflow ids, for the history sample.
func (b *Bench) throughput(ctx context.Context, floor FloorResult) (ThroughputResult, []string, error) {
	phase := b.phase("throughput")
	n, conc := b.spec.Events, b.cfg.Concurrency
	res := ThroughputResult{Events: n, Concurrency: conc}
	res.RSSResetWorked = resetPeakRSS(b.env.WorkerPIDs()) && resetPeakRSS(b.env.APIPIDs())
	before := scrapeAll(b.env.WorkerMetricsURLs())
	perfs := []*perf.Recording{perf.Start(b.cfg.PerfDir, b.spec.Label+"-temporal-3", b.env.TemporalPID())}
	for i, pid := range b.env.WorkerPIDs() {
		perfs = append(perfs, perf.Start(b.cfg.PerfDir, fmt.Sprintf("%s-worker%d-3", b.spec.Label, i+1), pid))
	}
	defer func() {
		for _, p := range perfs {
			p.Stop() // on an early return; a no-op once stopped
		}
	}()
	m := b.measure(ctx)

	callLat := make([]time.Duration, n)
	ids := make([]string, n)
	start := time.Now()
	runPool(ctx, n, conc, func(i int) {
		u := b.tpHooks[i%len(b.tpHooks)]
		eventID := fmt.Sprintf("tp-%s-%06d", b.runID, i)
		ids[i] = workflows.DispatchWorkflowID(eventID)
		t0 := time.Now()
		b.ledger.Expect(phase, receiver.Key{EventID: eventID, WebhookID: u.hookID}, t0)
		_ = b.trigger(ctx, eventID, u.user, i)
		callLat[i] = time.Since(t0)
	})
	triggerSecs := time.Since(start).Seconds()
	res.TriggerSeconds = stats.Round(triggerSecs, 3)
	res.TriggersPerSecond = stats.Round(float64(n)/triggerSecs, 1)
	res.TriggerCall = stats.Summarize(callLat)
	b.logf("  throughput: %d events accepted in %.1f s (%.0f/s); waiting for deliveries", n, triggerSecs, float64(n)/triggerSecs)
	waitErr := b.waitPhase(ctx, phase, b.cfg.DrainTimeout)
	for _, p := range perfs {
		if out := p.Stop(); out != "" {
			b.logf("  profile: %s", out)
		}
	}
	res.TemporalCPUSplit = perfs[0].ServiceSplit()

	res.WorkerPeakRSS = peakRSS(b.env.WorkerPIDs())
	res.APIPeakRSS = peakRSS(b.env.APIPIDs())
	res.Usage = m.done(ctx, n)
	res.WorkerMetrics = workerMetricDeltas(before, scrapeAll(b.env.WorkerMetricsURLs()))
	s := b.ledger.Stats(phase)
	if s.Received > 0 {
		secs := s.LastReceipt.Sub(s.FirstTrigger).Seconds()
		res.Seconds = stats.Round(secs, 3)
		res.DeliveredPerSecond = stats.Round(float64(s.Received)/secs, 1)
		if floor.PerSecond > 0 {
			res.RatioToFloor = stats.Round(res.DeliveredPerSecond/floor.PerSecond, 3)
		}
		res.Latency = stats.Summarize(s.Latencies)
		res.LongestGapSeconds = stats.Round(s.LongestGap.Seconds(), 1)
	}
	return res, ids, waitErr
}

// workerMetricDeltas picks the SDK and delivery timings that say where a delivery's
// time goes: queue waits (schedule-to-start), task and activity execution, end to end.
func workerMetricDeltas(before, after map[string]float64) map[string]stats.MetricDelta {
	out := map[string]stats.MetricDelta{}
	for _, name := range []string{
		"temporal_workflow_task_schedule_to_start_latency_seconds",
		"temporal_workflow_task_execution_latency_seconds",
		"temporal_workflow_task_replay_latency_seconds",
		"temporal_workflow_endtoend_latency_seconds",
		"temporal_activity_schedule_to_start_latency_seconds",
		"temporal_activity_execution_latency_seconds",
		"temporal_activity_succeed_endtoend_latency_seconds",
		"temporal_local_activity_execution_latency_seconds",
		"temporal_local_activity_succeeded_endtoend_latency_seconds",
		"temporal_request_latency_seconds",
		"temporal_long_request_latency_seconds",
		"webhooks_send_duration_seconds",
	} {
		if d, ok := stats.HistogramDelta(before, after, name); ok {
			out[name] = d
		}
	}
	return out
}

// scrape reads a Prometheus endpoint; an unreachable one reads as empty.
func scrape(u string) map[string]float64 {
	resp, err := http.Get(u) //nolint:noctx // loopback, bounded by the default transport
	if err != nil {
		return map[string]float64{}
	}
	defer resp.Body.Close()
	m, _ := stats.PromSums(resp.Body)
	return m
}

// scrapeAll adds up the scrapes of several replicas' endpoints: histogram sums and
// counts add, so means over the sum are means over every replica.
func scrapeAll(urls []string) map[string]float64 {
	out := map[string]float64{}
	for _, u := range urls {
		for k, v := range scrape(u) {
			out[k] += v
		}
	}
	return out
}
