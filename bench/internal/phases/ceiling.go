package phases

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/stats"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/signing"
	"github.com/assetsup/webhooks/workflows"
)

// CeilingResult is a sign + POST loop straight to the receiver.
type CeilingResult struct {
	Count       int           `json:"count"`
	Concurrency int           `json:"concurrency"`
	Seconds     float64       `json:"seconds"`
	PerSecond   float64       `json:"deliveriesPerSecond"`
	Latency     stats.Summary `json:"requestLatency"`
	Errors      int64         `json:"errors"`
}

func (b *Bench) ceiling(ctx context.Context) (CeilingResult, error) {
	phase := b.phase("ceiling")
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
		b.ledger.Expect(phase, receiver.Key{EventID: eventID, WebhookID: hookID}, t0)
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
		Count: s.Received, Concurrency: conc, Seconds: stats.Round(secs, 3), PerSecond: stats.Round(float64(s.Received)/secs, 1),
		Latency: stats.Summarize(lat), Errors: errs.Load(),
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
