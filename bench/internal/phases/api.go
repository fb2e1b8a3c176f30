package phases

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/perf"
	"github.com/assetsup/webhooks/bench/internal/stats"
)

// APIResult is GET /webhooks at a fixed request rate over loopback HTTP.
type APIResult struct {
	RatePerSecond     float64       `json:"ratePerSecond"`
	Seconds           float64       `json:"seconds"`
	Requests          int           `json:"requests"`
	AchievedPerSecond float64       `json:"achievedPerSecond"`
	WebhooksPerUser   int           `json:"webhooksPerUser"`
	Users             int           `json:"users"`
	Errors            int64         `json:"errors"`
	Latency           stats.Summary `json:"latency"`
	ServerMeanMs      float64       `json:"serverMeanMs"`
	Usage             meter.Usage   `json:"usage"`
	Replicas          int           `json:"replicas"`
	APIPeakRSS        int64         `json:"apiPeakRssBytes"`
	firstError        string
}

func (b *Bench) apiPhase(ctx context.Context, users map[string][]string) (APIResult, error) {
	cfg := b.cfg
	res := APIResult{RatePerSecond: cfg.APIRate, Seconds: cfg.APIDuration.Seconds(), WebhooksPerUser: cfg.APIWebhooksPerUser, Users: len(users)}
	var tokens []string
	for user := range users {
		tok, err := api.IssueToken([]byte(b.env.JWT), user, time.Hour, time.Now())
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
	apis := b.env.APIPIDs()
	res.Replicas = len(apis)
	resetPeakRSS(apis)
	before := b.scrapeAPIs()
	perf := perf.Start(b.cfg.PerfDir, b.spec.Label+"-api-6", apis[0])
	m := b.measure(ctx)
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
	res.Usage = m.done(ctx, res.Requests)
	if out := perf.Stop(); out != "" {
		b.logf("  profile: %s", out)
	}
	res.APIPeakRSS = peakRSS(apis)
	if d, ok := stats.HistogramDelta(before, b.scrapeAPIs(), "webhooks_api_request_duration_seconds"); ok {
		res.ServerMeanMs = d.MeanMs
	}
	res.AchievedPerSecond = stats.Round(float64(res.Requests)/elapsed, 1)
	res.Latency = stats.Summarize(lat)
	res.Errors = errs.Load()
	if res.Errors > 0 {
		res.firstError, _ = firstErr.Load().(string)
		return res, fmt.Errorf("api: %d of %d requests failed; first: %s", res.Errors, res.Requests, res.firstError)
	}
	return res, nil
}

// scrapeAPIs adds up every API replica's /metrics. The replicas sit behind a
// round-robin balancer and nothing else calls them between phases, so as many scrapes
// in a row as there are replicas reach each replica once.
func (b *Bench) scrapeAPIs() map[string]float64 {
	urls := make([]string, b.env.APIs())
	for i := range urls {
		urls[i] = b.env.APIURL + "/metrics"
	}
	return scrapeAll(urls)
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
