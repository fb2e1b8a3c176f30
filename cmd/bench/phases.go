package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/signing"
	"github.com/assetsup/webhooks/workflows"
)

// benchEvent is the event every phase sends.
const benchEvent = events.AssetTransferred

// Bench runs the phases against one Env.
type Bench struct {
	cfg    Settings
	env    *Env
	ledger *Ledger
	recv   *Receiver
	svc    *dispatch.WebhookDispatchService
	logf   func(string, ...any)
	runID  string
	// tpHooks are the single-subscriber users of the throughput and latency phases.
	tpHooks []userHook
	// triggerErrors counts DispatchEvent starts that failed; any fails the run.
	triggerErrors atomic.Int64
	firstErr      atomic.Value
}

type userHook struct {
	user, hookID string
}

// seedHooks creates n webhooks for user through models.CreateWebhook, each with a
// freshly generated, sealed secret that the receiver also learns.
func (b *Bench) seedHooks(ctx context.Context, user string, n int) ([]string, error) {
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		id := uuid.NewString()
		secret, err := secrets.Generate()
		if err != nil {
			return nil, err
		}
		sealed, version, err := b.env.Box.Seal(id, secret)
		if err != nil {
			return nil, err
		}
		w := &models.Webhook{
			ID: id, UserID: user, Name: fmt.Sprintf("bench %d", i), URL: b.recv.HookURL(id),
			SecretHash: secrets.Fingerprint(secret), SecretSealed: sealed, SecretKeyVersion: version,
			Events: []string{string(benchEvent)}, IsActive: true,
		}
		b.recv.AddSecret(id, secret)
		if err := models.CreateWebhook(ctx, b.env.DB, w, n); err != nil {
			return nil, fmt.Errorf("create webhook for %s: %w", user, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// seedUsers creates users (named prefix-N) with perUser webhooks each, 8 users at a time.
func (b *Bench) seedUsers(ctx context.Context, prefix string, users, perUser int) (map[string][]string, error) {
	out := make(map[string][]string, users)
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var firstErr error
	for u := 0; u < users; u++ {
		user := fmt.Sprintf("%s-%s-%04d", prefix, b.runID, u)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ids, err := b.seedHooks(ctx, user, perUser)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[user] = ids
		}()
	}
	wg.Wait()
	return out, firstErr
}

// trigger hands one event to DispatchEvent, as the backend does.
func (b *Bench) trigger(ctx context.Context, eventID, user string, n int) error {
	_, err := b.svc.Trigger(ctx, benchEvent, dispatch.Payload{ID: eventID, UserID: user, Data: map[string]any{"n": n, "bench": true}})
	if err != nil {
		if b.triggerErrors.Add(1) == 1 {
			b.firstErr.Store(err.Error())
		}
	}
	return err
}

// waitPhase waits for phase's deliveries, logging progress every 5 s.
func (b *Bench) waitPhase(ctx context.Context, phase string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				got, want := b.ledger.Progress(phase)
				b.logf("  %s: %d/%d delivered", phase, got, want)
			}
		}
	}()
	return b.ledger.Wait(ctx, phase)
}

// ---- (1) ceiling ----------------------------------------------------------------

// CeilingResult is a sign + POST loop straight to the receiver.
type CeilingResult struct {
	Count       int     `json:"count"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"deliveriesPerSecond"`
	Latency     Summary `json:"requestLatency"`
	Errors      int64   `json:"errors"`
}

func (b *Bench) ceiling(ctx context.Context) (CeilingResult, error) {
	const phase = "ceiling"
	n, conc := b.cfg.CeilingN, b.cfg.Concurrency
	hookID := uuid.NewString()
	secret, err := secrets.Generate()
	if err != nil {
		return CeilingResult{}, err
	}
	b.recv.AddSecret(hookID, secret)
	target := b.recv.HookURL(hookID)
	// The worker's own client: same transport, address guard and connection cap style.
	hc := activities.NewHTTPClient(10*time.Second, conc, netguard.NewPolicy(true, nil))
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	start := time.Now()
	runPool(ctx, n, conc, func(i int) {
		eventID := fmt.Sprintf("ceil-%s-%06d", b.runID, i)
		t0 := time.Now()
		b.ledger.Expect(phase, key{eventID, hookID}, t0)
		if err := directSend(ctx, hc, target, hookID, secret, eventID, i); err != nil {
			errs.Add(1)
		}
		lat[i] = time.Since(t0)
	})
	if err := b.waitPhase(ctx, phase, 30*time.Second); err != nil {
		return CeilingResult{}, err
	}
	s := b.ledger.Stats(phase)
	secs := s.LastReceipt.Sub(start).Seconds()
	return CeilingResult{
		Count: s.Received, Concurrency: conc, Seconds: round(secs, 3), PerSecond: round(float64(s.Received)/secs, 1),
		Latency: Summarize(lat), Errors: errs.Load(),
	}, nil
}

// directSend does what the Send activity does for one attempt, minus Temporal and the
// database: render the body, sign it both ways, POST it, read the answer.
func directSend(ctx context.Context, hc *http.Client, target, hookID, secret, eventID string, n int) error {
	p := events.Payload{
		ID: eventID, Event: benchEvent, Timestamp: time.Now().UTC().Format(time.RFC3339),
		Data: json.RawMessage(`{"bench":true,"n":` + strconv.Itoa(n) + `}`),
	}
	body, err := p.Marshal()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "AssetsUp-Webhooks/bench")
	err = signing.SetHeaders(req.Header, []string{secret}, signing.Delivery{
		Event: string(benchEvent), DeliveryID: workflows.DeliveryID(eventID, hookID), MsgID: eventID,
		Timestamp: time.Now().Unix(), Body: body,
	})
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return nil
}

// ---- (2) floor --------------------------------------------------------------------

// FloorResult is the dev server running a minimal workflow with one no-op activity.
type FloorResult struct {
	Count           int     `json:"count"`
	Concurrency     int     `json:"concurrency"`
	Seconds         float64 `json:"seconds"`
	PerSecond       float64 `json:"workflowsPerSecond"`
	Latency         Summary `json:"startToCompletion"`
	ActivityLatency Summary `json:"startToActivity"`
	Errors          int64   `json:"errors"`
	CPU             CPUUse  `json:"cpu"`
	// LongestGapSeconds is the longest time without a workflow completing: ~60 s
	// means the worker's pollers sat on an empty sticky queue (see bench/README.md).
	LongestGapSeconds float64 `json:"longestGapWithoutCompletionSeconds"`
	StalledRuns       int     `json:"stalledRunsDiscarded,omitempty"`
}

const floorQueue = "bench-floor"

func floorWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	return workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil)
}

// floorStall is a gap without completions that only a stuck poller explains.
const floorStall = 10 * time.Second

func (b *Bench) floor(ctx context.Context, attempt int) (FloorResult, error) {
	n, conc := b.cfg.FloorN, b.cfg.Concurrency
	var mu sync.Mutex
	ran := make(map[string]time.Time, n)
	opts, err := b.cfg.floorWorkerOptions()
	if err != nil {
		return FloorResult{}, err
	}
	w := sdkworker.New(b.env.Temporal, floorQueue, opts)
	w.RegisterWorkflowWithOptions(floorWorkflow, workflow.RegisterOptions{Name: "BenchFloor"})
	w.RegisterActivityWithOptions(func(ctx context.Context) error {
		id := activity.GetInfo(ctx).WorkflowExecution.ID
		mu.Lock()
		ran[id] = time.Now()
		mu.Unlock()
		return nil
	}, activity.RegisterOptions{Name: "BenchNoop"})
	if err := w.Start(); err != nil {
		return FloorResult{}, err
	}
	defer w.Stop()

	runOne := func(id string) (time.Time, time.Duration, error) {
		t0 := time.Now()
		run, err := b.env.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: floorQueue}, "BenchFloor")
		if err == nil {
			err = run.Get(ctx, nil)
		}
		return t0, time.Since(t0), err
	}
	// Warm-up: the queue's first tasks, not measured.
	for i := 0; i < min(conc, 16); i++ {
		_, _, _ = runOne(fmt.Sprintf("floor-warm-%s-%d", b.runID, i))
	}

	lat := make([]time.Duration, n)
	starts := make([]time.Time, n)
	ends := make([]time.Time, n)
	var errs atomic.Int64
	cpu0 := b.env.sampleCPU()
	start := time.Now()
	runPool(ctx, n, conc, func(i int) {
		t0, d, err := runOne(fmt.Sprintf("floor-%s-%d-%06d", b.runID, attempt, i))
		starts[i], lat[i], ends[i] = t0, d, t0.Add(d)
		if err != nil {
			errs.Add(1)
		}
	})
	secs := time.Since(start).Seconds()
	cpu := cpuBetween(cpu0, b.env.sampleCPU())
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	prev := start
	for _, e := range ends {
		gap = max(gap, e.Sub(prev))
		prev = e
	}
	var toActivity []time.Duration
	mu.Lock()
	for i := 0; i < n; i++ {
		if at, ok := ran[fmt.Sprintf("floor-%s-%d-%06d", b.runID, attempt, i)]; ok {
			toActivity = append(toActivity, at.Sub(starts[i]))
		}
	}
	mu.Unlock()
	if e := errs.Load(); e > 0 {
		return FloorResult{}, fmt.Errorf("floor: %d of %d workflows failed", e, n)
	}
	return FloorResult{
		Count: n, Concurrency: conc, Seconds: round(secs, 3), PerSecond: round(float64(n)/secs, 1),
		Latency: Summarize(lat), ActivityLatency: Summarize(toActivity), CPU: cpu,
		LongestGapSeconds: round(gap.Seconds(), 1),
	}, nil
}

// ---- (3) throughput -----------------------------------------------------------------

// ThroughputResult is N single-subscriber events pushed through DispatchEvent.
type ThroughputResult struct {
	Events             int                    `json:"events"`
	Concurrency        int                    `json:"concurrency"`
	TriggerSeconds     float64                `json:"triggerSeconds"`
	TriggersPerSecond  float64                `json:"triggersPerSecond"`
	TriggerCall        Summary                `json:"triggerCall"`
	Seconds            float64                `json:"firstTriggerToLastReceiptSeconds"`
	DeliveredPerSecond float64                `json:"deliveredPerSecond"`
	RatioToFloor       float64                `json:"ratioToFloor"`
	LongestGapSeconds  float64                `json:"longestGapWithoutReceiptSeconds"`
	Latency            Summary                `json:"triggerToReceipt"`
	CPU                CPUUse                 `json:"cpu"`
	WorkerMetrics      map[string]MetricDelta `json:"workerMetrics,omitempty"`
	WorkerPeakRSS      int64                  `json:"workerPeakRssBytes"`
	APIPeakRSS         int64                  `json:"apiPeakRssBytes"`
	RSSResetWorked     bool                   `json:"rssPeakResetAtPhaseStart"`
}

// warmup sends a few events through the whole path before anything is measured.
func (b *Bench) warmup(ctx context.Context) error {
	const phase = "warmup"
	n := min(len(b.tpHooks), 2*b.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		u := b.tpHooks[i]
		eventID := fmt.Sprintf("warm-%s-%06d", b.runID, i)
		b.ledger.Expect(phase, key{eventID, u.hookID}, time.Now())
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.trigger(ctx, eventID, u.user, i) }()
	}
	wg.Wait()
	return b.waitPhase(ctx, phase, b.cfg.DrainTimeout)
}

func (b *Bench) throughput(ctx context.Context, floor FloorResult) (ThroughputResult, error) {
	const phase = "throughput"
	n, conc := b.cfg.Events, b.cfg.Concurrency
	res := ThroughputResult{Events: n, Concurrency: conc}
	res.RSSResetWorked = resetHWM(b.env.Worker.PID()) && resetHWM(b.env.API.PID())
	before := scrape(b.env.Metrics)
	perfs := []*perfRecording{
		startPerf(b.cfg.PerfDir, "temporal-3", b.env.devPID),
		startPerf(b.cfg.PerfDir, "worker-3", b.env.Worker.PID()),
	}
	defer func() {
		for _, p := range perfs {
			if out := p.stop(); out != "" {
				b.logf("  profile: %s", out)
			}
		}
	}()
	cpu0 := b.env.sampleCPU()

	callLat := make([]time.Duration, n)
	start := time.Now()
	runPool(ctx, n, conc, func(i int) {
		u := b.tpHooks[i%len(b.tpHooks)]
		eventID := fmt.Sprintf("tp-%s-%06d", b.runID, i)
		t0 := time.Now()
		b.ledger.Expect(phase, key{eventID, u.hookID}, t0)
		_ = b.trigger(ctx, eventID, u.user, i)
		callLat[i] = time.Since(t0)
	})
	triggerSecs := time.Since(start).Seconds()
	res.TriggerSeconds = round(triggerSecs, 3)
	res.TriggersPerSecond = round(float64(n)/triggerSecs, 1)
	res.TriggerCall = Summarize(callLat)
	b.logf("  throughput: %d events accepted in %.1f s (%.0f/s); waiting for deliveries", n, triggerSecs, float64(n)/triggerSecs)
	waitErr := b.waitPhase(ctx, phase, b.cfg.DrainTimeout)

	res.CPU = cpuBetween(cpu0, b.env.sampleCPU())
	res.WorkerMetrics = workerMetricDeltas(before, scrape(b.env.Metrics))
	res.WorkerPeakRSS = vmHWM(b.env.Worker.PID())
	res.APIPeakRSS = vmHWM(b.env.API.PID())
	s := b.ledger.Stats(phase)
	if s.Received > 0 {
		secs := s.LastReceipt.Sub(s.FirstTrigger).Seconds()
		res.Seconds = round(secs, 3)
		res.DeliveredPerSecond = round(float64(s.Received)/secs, 1)
		if floor.PerSecond > 0 {
			res.RatioToFloor = round(res.DeliveredPerSecond/floor.PerSecond, 3)
		}
		res.Latency = Summarize(s.Latencies)
		res.LongestGapSeconds = round(s.LongestGap.Seconds(), 1)
	}
	return res, waitErr
}

// workerMetricDeltas picks the SDK and delivery timings that say where a delivery's
// time goes: queue waits (schedule-to-start), task and activity execution, end to end.
func workerMetricDeltas(before, after map[string]float64) map[string]MetricDelta {
	out := map[string]MetricDelta{}
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
		if d, ok := histogramDelta(before, after, name); ok {
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
	m, _ := promSums(resp.Body)
	return m
}

// ---- (4) latency at half load ---------------------------------------------------------

// LatencyResult is trigger → receipt at a fixed rate.
type LatencyResult struct {
	RatePerSecond float64 `json:"ratePerSecond"`
	Seconds       float64 `json:"seconds"`
	Events        int     `json:"events"`
	Latency       Summary `json:"triggerToReceipt"`
	CPU           CPUUse  `json:"cpu"`
	latencies     []time.Duration
}

func (b *Bench) latency(ctx context.Context, rate float64) (LatencyResult, error) {
	const phase = "latency"
	total := max(1, int(rate*b.cfg.LatencyDuration.Seconds()))
	interval := time.Duration(float64(time.Second) / rate)
	res := LatencyResult{RatePerSecond: round(rate, 1), Seconds: b.cfg.LatencyDuration.Seconds(), Events: total}
	cpu0 := b.env.sampleCPU()
	var wg sync.WaitGroup
	start := time.Now().Add(10 * time.Millisecond)
	for i := 0; i < total && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		u := b.tpHooks[i%len(b.tpHooks)]
		eventID := fmt.Sprintf("lat-%s-%06d", b.runID, i)
		// Open loop: the latency counts from the scheduled time, so a slow trigger
		// cannot hide behind the one before it.
		b.ledger.Expect(phase, key{eventID, u.hookID}, at)
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.trigger(ctx, eventID, u.user, i) }()
	}
	wg.Wait()
	err := b.waitPhase(ctx, phase, b.cfg.DrainTimeout)
	res.CPU = cpuBetween(cpu0, b.env.sampleCPU())
	s := b.ledger.Stats(phase)
	res.Latency = Summarize(s.Latencies)
	res.latencies = s.Latencies
	return res, err
}

// ---- (5) fan-out -------------------------------------------------------------------

// FanoutResult is one event to many subscribers of one user.
type FanoutResult struct {
	Subscribers         int     `json:"subscribers"`
	FirstReceiptSeconds float64 `json:"firstReceiptSeconds"`
	LastReceiptSeconds  float64 `json:"lastReceiptSeconds"`
	PerSecond           float64 `json:"deliveriesPerSecond"`
	CPU                 CPUUse  `json:"cpu"`
}

func (b *Bench) fanout(ctx context.Context, user string, hooks []string) (FanoutResult, error) {
	const phase = "fanout"
	res := FanoutResult{Subscribers: len(hooks)}
	eventID := "fan-" + b.runID
	cpu0 := b.env.sampleCPU()
	t0 := time.Now()
	for _, h := range hooks {
		b.ledger.Expect(phase, key{eventID, h}, t0)
	}
	if err := b.trigger(ctx, eventID, user, 0); err != nil {
		return res, err
	}
	err := b.waitPhase(ctx, phase, b.cfg.DrainTimeout)
	res.CPU = cpuBetween(cpu0, b.env.sampleCPU())
	s := b.ledger.Stats(phase)
	if s.Received > 0 {
		res.FirstReceiptSeconds = round(s.FirstReceipt.Sub(t0).Seconds(), 3)
		res.LastReceiptSeconds = round(s.LastReceipt.Sub(t0).Seconds(), 3)
		res.PerSecond = round(float64(s.Received)/s.LastReceipt.Sub(t0).Seconds(), 1)
	}
	return res, err
}

// ---- (6) API ------------------------------------------------------------------------

// APIResult is GET /webhooks at a fixed request rate over loopback HTTP.
type APIResult struct {
	RatePerSecond     float64 `json:"ratePerSecond"`
	Seconds           float64 `json:"seconds"`
	Requests          int     `json:"requests"`
	AchievedPerSecond float64 `json:"achievedPerSecond"`
	WebhooksPerUser   int     `json:"webhooksPerUser"`
	Users             int     `json:"users"`
	Errors            int64   `json:"errors"`
	Latency           Summary `json:"latency"`
	ServerMeanMs      float64 `json:"serverMeanMs"`
	CPU               CPUUse  `json:"cpu"`
	APIPeakRSS        int64   `json:"apiPeakRssBytes"`
	firstError        string
}

func (b *Bench) apiPhase(ctx context.Context, users map[string][]string) (APIResult, error) {
	cfg := b.cfg
	res := APIResult{RatePerSecond: cfg.APIRate, Seconds: cfg.APIDuration.Seconds(), WebhooksPerUser: cfg.APIWebhooksPerUser, Users: len(users)}
	var tokens []string
	for user := range users {
		tok, err := api.IssueToken([]byte(b.env.jwt), user, time.Hour, time.Now())
		if err != nil {
			return res, err
		}
		tokens = append(tokens, tok)
	}
	hc := &http.Client{
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute, DisableCompression: true},
		Timeout:   10 * time.Second,
	}
	var errs atomic.Int64
	var firstErr atomic.Value
	get := func(tok string, check bool) {
		err := getWebhooks(ctx, hc, b.env.APIURL, tok, check, cfg.APIWebhooksPerUser)
		if err != nil && errs.Add(1) == 1 {
			firstErr.Store(err.Error())
		}
	}
	// Warm-up, checked in full: every user's list has every webhook.
	for _, tok := range tokens {
		get(tok, true)
	}
	if errs.Load() > 0 {
		return res, fmt.Errorf("api warm-up: %v", firstErr.Load())
	}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); get(tokens[i%len(tokens)], false) }()
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	errs.Store(0)

	res.Requests = max(1, int(cfg.APIRate*cfg.APIDuration.Seconds()))
	interval := time.Duration(float64(time.Second) / cfg.APIRate)
	lat := make([]time.Duration, res.Requests)
	resetHWM(b.env.API.PID())
	before := scrape(b.env.APIURL + "/metrics")
	perf := startPerf(b.cfg.PerfDir, "api-6", b.env.API.PID())
	cpu0 := b.env.sampleCPU()
	start := time.Now().Add(10 * time.Millisecond)
	for i := 0; i < res.Requests && ctx.Err() == nil; {
		now := time.Now()
		// Open loop: fire everything whose time has come, then sleep to the next one.
		for ; i < res.Requests; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.After(now) {
				break
			}
			wg.Add(1)
			go func(i int, at time.Time) {
				defer wg.Done()
				get(tokens[i%len(tokens)], i%100 == 0)
				lat[i] = time.Since(at) // from the scheduled time: no coordinated omission
			}(i, at)
		}
		if i < res.Requests {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	res.CPU = cpuBetween(cpu0, b.env.sampleCPU())
	if out := perf.stop(); out != "" {
		b.logf("  profile: %s", out)
	}
	res.APIPeakRSS = vmHWM(b.env.API.PID())
	if d, ok := histogramDelta(before, scrape(b.env.APIURL+"/metrics"), "webhooks_api_request_duration_seconds"); ok {
		res.ServerMeanMs = d.MeanMs
	}
	res.AchievedPerSecond = round(float64(res.Requests)/elapsed, 1)
	res.Latency = Summarize(lat)
	res.Errors = errs.Load()
	if res.Errors > 0 {
		res.firstError, _ = firstErr.Load().(string)
		return res, fmt.Errorf("api: %d of %d requests failed; first: %s", res.Errors, res.Requests, res.firstError)
	}
	return res, nil
}

func getWebhooks(ctx context.Context, hc *http.Client, base, token string, check bool, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/webhooks", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /webhooks answered %d", resp.StatusCode)
	}
	if !check {
		// Drained, not kept: the load generator shares the cores with the API, and
		// buffering every 40 KB body made it the phase's largest CPU user.
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var list []json.RawMessage
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("GET /webhooks: %w", err)
	}
	if len(list) != want {
		return fmt.Errorf("GET /webhooks listed %d webhooks, want %d", len(list), want)
	}
	return nil
}

func round(v float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// ---- (2b) shapes: ours without our code ----------------------------------------------

// ShapeResult is a no-op workflow shaped like a delivery path, driven like (3): starts
// as fast as they are accepted, timed from the first start to the last "send" activity.
type ShapeResult struct {
	Name      string  `json:"name"`
	Count     int     `json:"count"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"perSecond"`
	Latency   Summary `json:"startToSend"`
	CPU       CPUUse  `json:"cpu"`
}

const shapeQueue = "bench-shapes"

const (
	enumsParentAbandon   = enumspb.PARENT_CLOSE_POLICY_ABANDON
	enumsRejectDuplicate = enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
)

func shapeNoop(context.Context) error { return nil }

func shapeLocal(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
}

func shapeRemote(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
}

// shapeDispatch is DispatchEvent without its body: a local activity (list subscribers),
// one abandoned child with the delivery's search attributes and memo, waited on until
// it has started.
func shapeDispatch(ctx workflow.Context, id string) error {
	if err := workflow.ExecuteLocalActivity(shapeLocal(ctx), shapeNoop).Get(ctx, nil); err != nil {
		return err
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            "shape-child:" + id,
		ParentClosePolicy:     enumsParentAbandon,
		TypedSearchAttributes: workflows.DeliverySearchAttributes("00000000-0000-0000-0000-000000000000", benchEvent, "shape"),
		Memo:                  workflows.DeliveryMemo("shape", "127.0.0.1"),
	})
	return workflow.ExecuteChildWorkflow(cctx, "ShapeDeliver", id).GetChildWorkflowExecution().Get(ctx, nil)
}

// shapeDeliver is DeliverWebhook without its body: one activity (send), one local
// activity (complete).
func shapeDeliver(ctx workflow.Context, id string) error {
	if err := workflow.ExecuteActivity(shapeRemote(ctx), "ShapeSend", id).Get(ctx, nil); err != nil {
		return err
	}
	return workflow.ExecuteLocalActivity(shapeLocal(ctx), shapeNoop).Get(ctx, nil)
}

// shapeInline is the one-workflow alternative: list, send and complete in the event's
// own workflow, no child.
func shapeInline(ctx workflow.Context, id string) error {
	if err := workflow.ExecuteLocalActivity(shapeLocal(ctx), shapeNoop).Get(ctx, nil); err != nil {
		return err
	}
	return shapeDeliver(ctx, id)
}

// shapes runs each shape n times on an in-process worker with the production settings.
func (b *Bench) shapes(ctx context.Context, n int) ([]ShapeResult, error) {
	var mu sync.Mutex
	sent := make(map[string]time.Time, 3*n)
	opts, err := b.cfg.floorWorkerOptions()
	if err != nil {
		return nil, err
	}
	w := sdkworker.New(b.env.Temporal, shapeQueue, opts)
	w.RegisterWorkflowWithOptions(shapeDispatch, workflow.RegisterOptions{Name: "ShapeDispatch"})
	w.RegisterWorkflowWithOptions(shapeDeliver, workflow.RegisterOptions{Name: "ShapeDeliver"})
	w.RegisterWorkflowWithOptions(shapeInline, workflow.RegisterOptions{Name: "ShapeInline"})
	w.RegisterActivityWithOptions(func(_ context.Context, id string) error {
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		return nil
	}, activity.RegisterOptions{Name: "ShapeSend"})
	if err := w.Start(); err != nil {
		return nil, err
	}
	defer w.Stop()

	var out []ShapeResult
	for _, shape := range []struct{ name, workflow string }{
		{"dispatch + child delivery (ours for 2+ subscribers, no-op bodies)", "ShapeDispatch"},
		{"one workflow per event (LA + activity + LA)", "ShapeInline"},
	} {
		prefix := fmt.Sprintf("%s-%s", shape.workflow, b.runID)
		starts := make([]time.Time, n)
		var errs atomic.Int64
		cpu0 := b.env.sampleCPU()
		begin := time.Now()
		runPool(ctx, n, b.cfg.Concurrency, func(i int) {
			id := fmt.Sprintf("%s-%06d", prefix, i)
			starts[i] = time.Now()
			_, err := b.env.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: "shape:" + id, TaskQueue: shapeQueue, WorkflowIDReusePolicy: enumsRejectDuplicate,
			}, shape.workflow, id)
			if err != nil {
				errs.Add(1)
			}
		})
		deadline := time.Now().Add(b.cfg.DrainTimeout)
		var lat []time.Duration
		var last time.Time
		for {
			mu.Lock()
			lat, last = lat[:0], time.Time{}
			for i := 0; i < n; i++ {
				if at, ok := sent[fmt.Sprintf("%s-%06d", prefix, i)]; ok {
					lat = append(lat, at.Sub(starts[i]))
					if at.After(last) {
						last = at
					}
				}
			}
			mu.Unlock()
			if len(lat) == n || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(lat) < n || errs.Load() > 0 {
			return out, fmt.Errorf("shape %s: %d of %d sent, %d start errors", shape.workflow, len(lat), n, errs.Load())
		}
		secs := last.Sub(begin).Seconds()
		out = append(out, ShapeResult{
			Name: shape.name, Count: n, Seconds: round(secs, 3), PerSecond: round(float64(n)/secs, 1),
			Latency: Summarize(lat), CPU: cpuBetween(cpu0, b.env.sampleCPU()),
		})
		b.logf("    %s: %.1f/s", shape.name, float64(n)/secs)
	}
	return out, nil
}

// runPool calls fn(i) for i in [0, n) from conc goroutines, stopping early when ctx
// ends, and returns when every call has returned.
func runPool(ctx context.Context, n, conc int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
