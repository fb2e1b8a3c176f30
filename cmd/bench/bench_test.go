package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/signing"
	"github.com/assetsup/webhooks/workflows"
)

func durations(msList ...int) []time.Duration {
	out := make([]time.Duration, len(msList))
	for i, v := range msList {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {95, 95 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := Percentile(s, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("empty sample: %v", got)
	}
	if got := Percentile(durations(7), 99); got != 7*time.Millisecond {
		t.Errorf("one value: %v", got)
	}
	// Nearest rank never interpolates: p50 of {1, 2} is 1.
	if got := Percentile(durations(1, 2), 50); got != time.Millisecond {
		t.Errorf("p50 of two: %v", got)
	}
}

func TestSummarizeSortsACopy(t *testing.T) {
	in := durations(30, 10, 20, 40)
	s := Summarize(in)
	if s.Count != 4 || s.Min != 10 || s.Max != 40 || s.P50 != 20 || s.P99 != 40 || s.Mean != 25 {
		t.Fatalf("summary %+v", s)
	}
	if in[0] != 30*time.Millisecond {
		t.Fatal("Summarize reordered its input")
	}
	if (Summarize(nil) != Summary{}) {
		t.Fatal("empty sample should summarize to zero")
	}
}

func TestRenderTable(t *testing.T) {
	got := RenderTable([]Row{
		{ID: "1", Measure: "Ceiling", Result: "16000 deliveries/s"},
		{ID: "4", Measure: "Latency", Result: "p99 120 ms", Target: "p99 ≤ 250 ms", Status: status(true)},
		{ID: "6", Measure: "a | b", Result: "two\nlines", Target: "x", Status: status(false)},
	})
	want := "| # | Measure | Result | Target | Status |\n" +
		"|---|---|---|---|---|\n" +
		"| 1 | Ceiling | 16000 deliveries/s | – | – |\n" +
		"| 4 | Latency | p99 120 ms | p99 ≤ 250 ms | pass |\n" +
		"| 6 | a \\| b | two lines | x | miss |\n"
	if got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestTableRowsReportTargets(t *testing.T) {
	r := &Results{Settings: Settings{CeilingN: 10, FloorN: 10, Events: 10, Fanout: 1000, APIRate: 1000, APIWebhooksPerUser: 100,
		LatencyDuration: time.Second, APIDuration: time.Second, Concurrency: 4}}
	r.Throughput = ThroughputResult{DeliveredPerSecond: 45, RatioToFloor: 0.95, WorkerPeakRSS: 200 << 20, RSSResetWorked: true}
	r.Latency = LatencyResult{Latency: Summary{Count: 10, P99: 300}}
	r.Fanout = FanoutResult{LastReceiptSeconds: 12}
	r.API = APIResult{Latency: Summary{Count: 10, P99: 4}}
	r.Verification = Verification{OK: true, Expected: 5, Received: 5}
	byID := map[string]string{}
	for _, row := range tableRows(r) {
		if row.Status != "" {
			byID[row.ID+" "+row.Measure[:8]] = row.Status
		}
	}
	want := map[string]string{
		"3/2 Ours ÷ ": "pass", "4 Ours, la": "miss", "5 Fan-out:": "pass", "6 API: GET": "pass",
		"7 Worker p": "miss", "✓ Verifica": "pass",
	}
	for k, v := range want {
		if byID[k] != v {
			t.Errorf("%q: status %q, want %q (all: %v)", k, byID[k], v, byID)
		}
	}
	r.Verification.OK = false
	rows := tableRows(r)
	if last := rows[len(rows)-1]; last.Status != "FAIL" {
		t.Errorf("a failed verification must show FAIL, got %q", last.Status)
	}
}

func TestLedgerCountsEveryDeliveryOnce(t *testing.T) {
	l := NewLedger()
	t0 := time.Now()
	a, b := key{"e1", "w1"}, key{"e2", "w1"}
	l.Expect("p", a, t0)
	l.Expect("p", b, t0)
	if v := l.Receive(a, true, t0.Add(10*time.Millisecond)); v != Accepted {
		t.Fatalf("first receipt: %v", v)
	}
	if got, want := l.Progress("p"); got != 1 || want != 2 {
		t.Fatalf("progress %d/%d", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx, "p"); err == nil {
		t.Fatal("Wait returned with a delivery missing")
	}
	if v := l.Verify(); v.OK || v.Missing != 1 {
		t.Fatalf("a missing delivery must fail the run: %+v", v)
	}
	l.Receive(b, true, t0.Add(30*time.Millisecond))
	if err := l.Wait(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	v := l.Verify()
	if !v.OK || v.Received != 2 {
		t.Fatalf("verification %+v", v)
	}
	s := l.Stats("p")
	if s.Received != 2 || s.LastReceipt.Sub(s.FirstTrigger) != 30*time.Millisecond {
		t.Fatalf("stats %+v", s)
	}
	if s.LongestGap != 20*time.Millisecond {
		t.Fatalf("longest gap %v, want 20ms (10 ms to the first receipt, then 20 ms)", s.LongestGap)
	}
	if sum := Summarize(s.Latencies); sum.Min != 10 || sum.Max != 30 {
		t.Fatalf("latencies %+v", sum)
	}
}

func TestLedgerDuplicateFailsTheRun(t *testing.T) {
	l := NewLedger()
	k := key{"e1", "w1"}
	l.Expect("p", k, time.Now())
	l.Receive(k, true, time.Now())
	if v := l.Receive(k, true, time.Now()); v != Duplicate {
		t.Fatalf("second receipt: %v", v)
	}
	v := l.Verify()
	if v.OK || v.Duplicates != 1 || v.Missing != 0 {
		t.Fatalf("a duplicated delivery must fail the run: %+v", v)
	}
}

func TestLedgerBadSignatureAndStraysFailTheRun(t *testing.T) {
	l := NewLedger()
	k := key{"e1", "w1"}
	l.Expect("p", k, time.Now())
	if v := l.Receive(k, false, time.Now()); v != BadSignature {
		t.Fatalf("bad signature: %v", v)
	}
	// A bad signature breaks the run at once: Wait does not sit out its deadline.
	if err := l.Wait(context.Background(), "p"); err != errBroken {
		t.Fatalf("Wait after a bad signature: %v", err)
	}
	v := l.Verify()
	if v.OK || v.BadSignatures != 1 || v.Missing != 1 {
		t.Fatalf("a badly signed delivery must fail the run (and not count as received): %+v", v)
	}

	l2 := NewLedger()
	if got := l2.Receive(key{"nobody", "asked"}, true, time.Now()); got != Unexpected {
		t.Fatalf("stray: %v", got)
	}
	if v := l2.Verify(); v.OK || v.Unexpected != 1 {
		t.Fatalf("an unexpected delivery must fail the run: %+v", v)
	}
}

// signedRequest builds a delivery as the worker's Send activity does.
func signedRequest(t *testing.T, url, hookID, secret, eventID string, tamper bool) *http.Request {
	t.Helper()
	body, err := events.Payload{ID: eventID, Event: benchEvent, Timestamp: "2026-01-01T00:00:00Z", Data: []byte(`{"n":1}`)}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Unix()
	std, err := signing.StandardSign(secret, eventID, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	sig := signing.Sign(secret, body)
	if tamper {
		body = bytes.Replace(body, []byte(`"n":1`), []byte(`"n":2`), 1)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/hook/"+hookID, bytes.NewReader(body))
	req.Header.Set(signing.HeaderSignature, sig)
	req.Header.Set(signing.HeaderDelivery, workflows.DeliveryID(eventID, hookID))
	req.Header.Set(signing.HeaderWebhookID, eventID)
	req.Header.Set(signing.HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(signing.HeaderWebhookSignature, std)
	return req
}

func TestReceiverVerifiesEveryDelivery(t *testing.T) {
	l := NewLedger()
	r := NewReceiver(l)
	srv := httptest.NewServer(r)
	defer srv.Close()
	secret, _ := secrets.Generate()
	r.AddSecret("w1", secret)
	l.Expect("p", key{"e1", "w1"}, time.Now())
	l.Expect("p", key{"e2", "w1"}, time.Now())

	do := func(req *http.Request) int {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(signedRequest(t, srv.URL, "w1", secret, "e1", false)); code != http.StatusNoContent {
		t.Fatalf("valid delivery answered %d", code)
	}
	if code := do(signedRequest(t, srv.URL, "w1", secret, "e2", true)); code != http.StatusUnauthorized {
		t.Fatalf("tampered body answered %d", code)
	}
	other, _ := secrets.Generate()
	if code := do(signedRequest(t, srv.URL, "w1", other, "e2", false)); code != http.StatusUnauthorized {
		t.Fatalf("wrong secret answered %d", code)
	}
	// Right signature, but the delivery id header names another webhook.
	req := signedRequest(t, srv.URL, "w1", secret, "e2", false)
	req.Header.Set(signing.HeaderDelivery, workflows.DeliveryID("e2", "w2"))
	if code := do(req); code != http.StatusUnauthorized {
		t.Fatalf("wrong delivery id answered %d", code)
	}
	v := l.Verify()
	if v.OK || v.BadSignatures != 3 || v.Received != 1 || v.Missing != 1 {
		t.Fatalf("verification %+v", v)
	}
	do(signedRequest(t, srv.URL, "w1", secret, "e1", false))
	if v := l.Verify(); v.Duplicates != 1 {
		t.Fatalf("duplicate not counted: %+v", v)
	}
}

func TestPromSumsAndHistogramDelta(t *testing.T) {
	before, err := promSums(strings.NewReader(`# HELP x y
# TYPE temporal_request_latency_seconds histogram
temporal_request_latency_seconds_bucket{le="0.1",op="A"} 1
temporal_request_latency_seconds_sum{op="A"} 0.5
temporal_request_latency_seconds_count{op="A"} 10
temporal_request_latency_seconds_sum{op="B",x="a}b"} 0.5
temporal_request_latency_seconds_count{op="B",x="a}b"} 10
webhooks_deliveries_total 3
`))
	if err != nil {
		t.Fatal(err)
	}
	if before["temporal_request_latency_seconds_count"] != 20 || before["webhooks_deliveries_total"] != 3 {
		t.Fatalf("sums %v", before)
	}
	after := map[string]float64{"temporal_request_latency_seconds_sum": 3, "temporal_request_latency_seconds_count": 30}
	d, ok := histogramDelta(before, after, "temporal_request_latency_seconds")
	if !ok || d.Count != 10 || d.MeanMs != 200 {
		t.Fatalf("delta %+v %v", d, ok)
	}
	if _, ok := histogramDelta(after, after, "temporal_request_latency_seconds"); ok {
		t.Fatal("no observations must report nothing")
	}
}

func TestParseStat(t *testing.T) {
	st, err := parseStat("1234 (temporal server) S 99 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 30 0")
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "temporal server" || st.ppid != 99 || st.utime != 250 || st.stime != 50 || st.cutime != 7 || st.cstime != 3 {
		t.Fatalf("%+v", st)
	}
}

func TestQuickDefaultsAndFlags(t *testing.T) {
	full, err := parseFlags(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if full.Events != 2000 || full.CeilingN != 20000 || full.Fanout != 1000 || full.APIRate != 1000 ||
		full.LatencyDuration != 20*time.Second || full.APIDuration != 10*time.Second || full.Concurrency != 64 {
		t.Fatalf("full defaults %+v", full)
	}
	quick, err := parseFlags([]string{"-n", "50", "-env", "WORKER_POLLERS=8"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if quick.Events != 50 || quick.LatencyDuration != 5*time.Second || quick.Fanout >= full.Fanout {
		t.Fatalf("quick %+v", quick)
	}
	if o, err := quick.floorWorkerOptions(); err != nil || o.WorkflowTaskPollerBehavior == nil || o.MaxConcurrentActivityExecutionSize != 200 {
		t.Fatalf("floor options must be the worker's defaults (autoscaling pollers, 200 slots): %+v %v", o, err)
	}
	fixed, err := parseFlags([]string{"-env", "WORKER_POLLER_AUTOSCALE=false", "-env", "WORKER_POLLERS=8"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := fixed.floorWorkerOptions(); err != nil || o.MaxConcurrentWorkflowTaskPollers != 8 || o.WorkflowTaskPollerBehavior != nil {
		t.Fatalf("floor options must follow the services' WORKER_* overrides: %+v %v", o, err)
	}
	if _, err := parseFlags([]string{"-n", "0"}, false); err == nil {
		t.Fatal("a zero count must be refused")
	}
}
