// Package report turns a run's Results into what `make bench` leaves behind: the
// Markdown tables it prints (one run's measurements against their targets, and every
// run side by side with what each delivery cost), and latest.json, latest.md and
// latency.png in the results directory.
package report

import (
	"fmt"
	"strings"

	"github.com/assetsup/webhooks/bench/internal/phases"
)

// Row is one line of the results table.
type Row struct {
	ID      string `json:"id"`
	Measure string `json:"measure"`
	Result  string `json:"result"`
	Target  string `json:"target,omitempty"`
	Status  string `json:"status,omitempty"` // pass, miss, or empty when there is no target
}

// status renders a target check.
func status(ok bool) string {
	if ok {
		return "pass"
	}
	return "miss"
}

// RenderTable renders rows as a Markdown table.
func RenderTable(rows []Row) string {
	var b strings.Builder
	b.WriteString("| # | Measure | Result | Target | Status |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n",
			cell(r.ID), cell(r.Measure), cell(r.Result), cell(orDash(r.Target)), cell(orDash(r.Status)))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// cell keeps a value from breaking the table: pipes are escaped, newlines flattened.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// Targets for this machine: reported, never failed on.
const (
	targetRatio       = 0.90
	targetP99Ms       = 250.0
	targetFanoutSecs  = 30.0
	targetAPIP99Ms    = 5.0
	targetWorkerRSSMB = 150.0
)

func floorNote(f phases.FloorResult) string {
	switch {
	case f.LongestGapSeconds > phases.FloorStall.Seconds():
		return fmt.Sprintf("; STALLED %.0f s", f.LongestGapSeconds)
	case f.StalledRuns > 0:
		return "; first measurement stalled ~60 s and was repeated"
	}
	return ""
}

func perItemMs(cpuSeconds float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return 1000 * cpuSeconds / float64(n)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// Rows are the results table of one run: a row per measurement, with its target and
// whether it was met, and the verdict on every delivery of the whole benchmark.
func Rows(r *phases.Results, run phases.RunResult) []Row {
	s := r.Settings
	var rows []Row
	add := func(row Row) { rows = append(rows, row) }
	if run.Ceiling {
		c := r.Ceiling
		add(Row{ID: "1", Measure: fmt.Sprintf("Ceiling: direct sign + POST to the receiver (%d requests, %d in flight)", s.CeilingN, s.Concurrency),
			Result: fmt.Sprintf("%.0f deliveries/s (request p50 %.2f ms, p99 %.2f ms)", c.PerSecond, c.Latency.P50, c.Latency.P99)})
	}
	f := run.Floor
	add(Row{ID: "2", Measure: fmt.Sprintf("Floor: no-op workflow + 1 activity on the same server (%d workflows, %d in flight)", run.FloorN, s.Concurrency),
		Result: fmt.Sprintf("%.1f workflows/s (start → completion p50 %.0f ms, p99 %.0f ms; start → activity p50 %.0f ms; Temporal CPU %.1f ms each%s)",
			f.PerSecond, f.Latency.P50, f.Latency.P99, f.ActivityLatency.P50, perItemMs(f.Usage.CPU.Temporal, f.Count), floorNote(f))})
	for i, sh := range run.Shapes {
		add(Row{ID: "2" + string(rune('b'+i)), Measure: fmt.Sprintf("Floor, shaped: %s (%d, started as fast as accepted)", sh.Name, sh.Count),
			Result: fmt.Sprintf("%.1f/s (start → send activity p50 %.0f ms; Temporal CPU %.1f ms each)", sh.PerSecond, sh.Latency.P50, perItemMs(sh.Usage.CPU.Temporal, sh.Count))})
	}
	t := run.Throughput
	add(Row{ID: "3", Measure: fmt.Sprintf("Ours, throughput: %d events × 1 subscriber via DispatchEvent (%d triggers in flight)", run.Events, s.Concurrency),
		Result: fmt.Sprintf("%.1f delivered/s (first trigger → last receipt %.1f s, longest gap without a receipt %.1f s; triggers accepted at %.0f/s; Temporal CPU %.1f ms, worker %.1f ms, PostgreSQL %.1f ms each)",
			t.DeliveredPerSecond, t.Seconds, t.LongestGapSeconds, t.TriggersPerSecond, perItemMs(t.Usage.CPU.Temporal, t.Events), perItemMs(t.Usage.CPU.Worker, t.Events), perItemMs(t.Usage.CPU.Postgres, t.Events))})
	ratioStatus := status(t.RatioToFloor >= targetRatio && t.DeliveredPerSecond > 0)
	if f.LongestGapSeconds > phases.FloorStall.Seconds() {
		ratioStatus = "n/a (floor stalled)"
	}
	add(Row{ID: "3/2", Measure: "Ours ÷ floor throughput", Result: fmt.Sprintf("%.0f%%", 100*t.RatioToFloor),
		Target: fmt.Sprintf("≥ %.0f%%", 100*targetRatio), Status: ratioStatus})
	l := run.Latency
	add(Row{ID: "4", Measure: fmt.Sprintf("Ours, latency: trigger → verified receipt at %.1f events/s (half of 3) for %s", l.RatePerSecond, run.LatencyDuration),
		Result: fmt.Sprintf("p50 %.0f ms, p95 %.0f ms, p99 %.0f ms (%d events)", l.Latency.P50, l.Latency.P95, l.Latency.P99, l.Latency.Count),
		Target: fmt.Sprintf("p99 ≤ %.0f ms", targetP99Ms), Status: status(l.Latency.Count > 0 && l.Latency.P99 <= targetP99Ms)})
	fo := run.Fanout
	fanTarget, fanStatus := "", ""
	if run.Fanout.Subscribers >= 1000 {
		fanTarget, fanStatus = fmt.Sprintf("≤ %.0f s for 1,000", targetFanoutSecs), status(fo.LastReceiptSeconds > 0 && fo.LastReceiptSeconds <= targetFanoutSecs)
	}
	add(Row{ID: "5", Measure: fmt.Sprintf("Fan-out: 1 event to %d subscribers of one user", run.Fanout.Subscribers),
		Result: fmt.Sprintf("last receipt %.1f s (first %.2f s; %.0f deliveries/s)", fo.LastReceiptSeconds, fo.FirstReceiptSeconds, fo.PerSecond),
		Target: fanTarget, Status: fanStatus})
	rt := run.Retry
	add(Row{ID: "R", Measure: fmt.Sprintf("Retry: %d events whose first attempt is answered 503 + Retry-After: 1", rt.Events),
		Result: fmt.Sprintf("%d retried, trigger → receipt p50 %.0f ms, p99 %.0f ms (Temporal CPU %.1f ms each)", rt.Refused, rt.Latency.P50, rt.Latency.P99, perItemMs(rt.Usage.CPU.Temporal, rt.Events))})
	if a := run.API; a != nil {
		add(Row{ID: "6", Measure: fmt.Sprintf("API: GET /webhooks (%d per user) at %.0f req/s for %s, open loop, %d replica(s)", s.APIWebhooksPerUser, s.APIRate, s.APIDuration, a.Replicas),
			Result: fmt.Sprintf("p50 %.2f ms, p99 %.2f ms (max %.1f ms; server mean %.2f ms; %d errors)", a.Latency.P50, a.Latency.P99, a.Latency.Max, a.ServerMeanMs, a.Errors),
			Target: fmt.Sprintf("p99 ≤ %.0f ms", targetAPIP99Ms), Status: status(a.Latency.Count > 0 && a.Latency.P99 <= targetAPIP99Ms)})
	}
	peakNote := "peak during (3)"
	if !t.RSSResetWorked {
		peakNote = "peak since start (reset unsupported)"
	}
	add(Row{ID: "7", Measure: "Worker peak RSS (VmHWM, largest replica), " + peakNote,
		Result: fmt.Sprintf("%.0f MB (%.0f MB over the run)", mb(t.WorkerPeakRSS), mb(run.WorkerPeakRSS)),
		Target: fmt.Sprintf("≤ %.0f MB", targetWorkerRSSMB), Status: status(t.WorkerPeakRSS > 0 && mb(t.WorkerPeakRSS) <= targetWorkerRSSMB)})
	apiPeak := ""
	if run.API != nil {
		apiPeak = fmt.Sprintf(" (%.0f MB during (6))", mb(run.API.APIPeakRSS))
	}
	add(Row{ID: "7", Measure: "API peak RSS (VmHWM, largest replica), " + peakNote, Result: fmt.Sprintf("%.0f MB%s", mb(t.APIPeakRSS), apiPeak)})
	v := r.Verification
	vs := "pass"
	if !v.OK || r.TriggerErrors > 0 {
		vs = "FAIL"
	}
	add(Row{ID: "✓", Measure: "Verification (whole benchmark): every delivery arrived once, both signatures valid",
		Result: fmt.Sprintf("%d/%d received; %d missing, %d duplicated, %d badly signed, %d unexpected; %d trigger errors",
			v.Received, v.Expected, v.Missing, v.Duplicates, v.BadSignatures, v.Unexpected, r.TriggerErrors),
		Target: "all, exactly once", Status: vs})
	return rows
}
