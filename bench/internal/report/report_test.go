package report

import (
	"strings"
	"testing"
	"time"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/phases"
	"github.com/assetsup/webhooks/bench/internal/procfs"
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
	r := &phases.Results{Settings: settings.Settings{CeilingN: 10, APIRate: 1000, APIWebhooksPerUser: 100, APIDuration: time.Second, Concurrency: 4}}
	run := phases.RunResult{Spec: phases.Spec{Label: "dev", Target: "dev", Ceiling: true, FloorN: 10, Events: 10, Fanout: 1000, LatencyDuration: time.Second}}
	run.Throughput = phases.ThroughputResult{DeliveredPerSecond: 45, RatioToFloor: 0.95, WorkerPeakRSS: 200 << 20, RSSResetWorked: true}
	run.Latency = phases.LatencyResult{Latency: stats.Summary{Count: 10, P99: 300}}
	run.Fanout = phases.FanoutResult{Subscribers: 1000, LastReceiptSeconds: 12}
	run.API = &phases.APIResult{Latency: stats.Summary{Count: 10, P99: 4}, Replicas: 1}
	r.Verification = receiver.Verification{OK: true, Expected: 5, Received: 5}
	statuses := func(rows []Row) map[string]string {
		byID := map[string]string{}
		for _, row := range rows {
			if row.Status != "" {
				byID[row.ID+" "+row.Measure[:8]] = row.Status
			}
		}
		return byID
	}
	byID := statuses(Rows(r, run))
	want := map[string]string{
		"3/2 Ours ÷ ": "pass", "4 Ours, la": "miss", "5 Fan-out:": "pass", "6 API: GET": "pass",
		"7 Worker p": "miss", "✓ Verifica": "pass",
	}
	for k, v := range want {
		if byID[k] != v {
			t.Errorf("%q: status %q, want %q (all: %v)", k, byID[k], v, byID)
		}
	}
	// A smaller fan-out has no target; a run without the API phase has no API row.
	run.Fanout.Subscribers, run.API = 500, nil
	byID = statuses(Rows(r, run))
	if _, ok := byID["5 Fan-out:"]; ok {
		t.Error("a fan-out under 1,000 was judged against the 1,000 target")
	}
	if _, ok := byID["6 API: GET"]; ok {
		t.Error("an API row without an API phase")
	}
	r.Verification.OK = false
	rows := Rows(r, run)
	if last := rows[len(rows)-1]; last.Status != "FAIL" {
		t.Errorf("a failed verification must show FAIL, got %q", last.Status)
	}
}

func TestCompareDividesByDeliveries(t *testing.T) {
	usage := func(items int, temporalCPU, writes float64, appCommits int64) meter.Usage {
		return meter.Usage{
			Items: items, CPU: procfs.CPUUse{Temporal: temporalCPU, Worker: 1},
			Persistence: meter.Persistence{Writes: writes, Reads: writes / 2, ShardIOSeconds: float64(items) * 0.004},
			Databases:   []meter.DBUsage{{Role: "app", Commits: appCommits}},
		}
	}
	dev := phases.RunResult{Spec: phases.Spec{Label: "dev", Target: "dev"}, WorkerReplicas: 1, APIReplicas: 1, HistoryShards: 1}
	dev.Throughput = phases.ThroughputResult{Events: 1000, DeliveredPerSecond: 120, Usage: usage(1000, 10, 8000, 3000)}
	dev.Histories = []phases.HistorySample{{Kind: phases.HistorySingle, EventsPerDelivery: 11, BytesPerDelivery: 3500}}
	prod := phases.RunResult{Spec: phases.Spec{Label: "prod ×2", Target: "prod"}, WorkerReplicas: 2, APIReplicas: 2, HistoryShards: 4, Failed: true}
	prod.Throughput = phases.ThroughputResult{Events: 500, DeliveredPerSecond: 30, Usage: usage(500, 15, 6000, 1500)}
	out := Compare(&phases.Results{Runs: []phases.RunResult{dev, prod}})

	lines := strings.Split(out, "\n")
	if lines[0] != "| measure | dev | prod ×2 (FAILED: partial) |" {
		t.Fatalf("header %q", lines[0])
	}
	rowOf := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, "| "+prefix) {
				return l
			}
		}
		t.Fatalf("no row %q in\n%s", prefix, out)
		return ""
	}
	tests := []struct {
		row  string
		want string
	}{
		{"worker replicas / API replicas / history shards", "| 1 / 1 / 1 | 2 / 2 / 4 |"},
		{"(3) Temporal server CPU per delivery (ms)", "| 10.0 | 30.0 |"},
		{"(3) worker CPU per delivery, all replicas (ms)", "| 1.0 | 2.0 |"},
		{"(3) persistence writes / reads per delivery", "| 8.0 / 4.0 | 12.0 / 6.0 |"},
		{"(3) PostgreSQL transactions per delivery: app / temporal / visibility", "| 3.0 / – / – | 3.0 / – / – |"},
		{"history events per delivery: single subscriber", "| 11.0 (3.5 KB) | – |"},
		{"(5) Temporal server CPU per fan-out delivery (ms)", "| – | – |"},
		{"(3) history-shard I/O per delivery (ms); one shard's ceiling at that (deliveries/s)", "| 4.00; 250 | 4.00; 250 |"},
	}
	for _, tt := range tests {
		if got := rowOf(tt.row); !strings.HasSuffix(got, tt.want) {
			t.Errorf("%s: %q, want it to end %q", tt.row, got, tt.want)
		}
	}
}

func TestMarkdownListsEveryRun(t *testing.T) {
	r := &phases.Results{Settings: settings.Settings{Concurrency: 4}, Runs: []phases.RunResult{
		{Spec: phases.Spec{Label: "dev", Target: "dev"}},
		{Spec: phases.Spec{Label: "prod ×1", Target: "prod"}, Throughput: phases.ThroughputResult{Usage: meter.Usage{
			Items: 10, Persistence: meter.Persistence{
				ByOperation:   map[string]float64{"UpdateWorkflowExecution": 40, "GetTasks": 5},
				MeanLatencyMs: map[string]float64{"UpdateWorkflowExecution": 2.5},
			},
		}}},
	}}
	md := Markdown(r)
	for _, want := range []string{
		"## Every stack side by side", "## dev against the targets", "## dev: where it went", "## prod ×1: where it went",
		"| UpdateWorkflowExecution | write | 4.00 | 2.50 |", "| GetTasks | read | 0.50 | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("latest.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Index(md, "UpdateWorkflowExecution") > strings.Index(md, "GetTasks") {
		t.Error("operations must be listed largest first")
	}
}
