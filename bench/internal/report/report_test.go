package report

import (
	"testing"
	"time"

	"github.com/assetsup/webhooks/bench/internal/phases"
	"github.com/assetsup/webhooks/bench/internal/receiver"
	"github.com/assetsup/webhooks/bench/internal/settings"
	"github.com/assetsup/webhooks/bench/internal/stats"
)

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
	r := &phases.Results{Settings: settings.Settings{CeilingN: 10, FloorN: 10, Events: 10, Fanout: 1000, APIRate: 1000, APIWebhooksPerUser: 100,
		LatencyDuration: time.Second, APIDuration: time.Second, Concurrency: 4}}
	r.Throughput = phases.ThroughputResult{DeliveredPerSecond: 45, RatioToFloor: 0.95, WorkerPeakRSS: 200 << 20, RSSResetWorked: true}
	r.Latency = phases.LatencyResult{Latency: stats.Summary{Count: 10, P99: 300}}
	r.Fanout = phases.FanoutResult{LastReceiptSeconds: 12}
	r.API = phases.APIResult{Latency: stats.Summary{Count: 10, P99: 4}}
	r.Verification = receiver.Verification{OK: true, Expected: 5, Received: 5}
	byID := map[string]string{}
	for _, row := range Rows(r) {
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
	rows := Rows(r)
	if last := rows[len(rows)-1]; last.Status != "FAIL" {
		t.Errorf("a failed verification must show FAIL, got %q", last.Status)
	}
}
