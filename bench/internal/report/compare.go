package report

import (
	"fmt"
	"strings"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/phases"
)

// comparison is one line of the side-by-side table: a label and its value in a run.
type comparison struct {
	measure string
	value   func(phases.RunResult) string
}

// per formats v per item of u with the given decimals, or "–" when nothing was measured.
func per(u meter.Usage, v float64, decimals int) string {
	if u.Items == 0 {
		return "–"
	}
	return fmt.Sprintf("%.*f", decimals, u.Per(v))
}

func perMs(u meter.Usage, cpuSeconds float64) string { return per(u, 1000*cpuSeconds, 1) }

func dbPer(u meter.Usage, role string, f func(meter.DBUsage) int64) string {
	d, ok := u.Database(role)
	if !ok || u.Items == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", u.Per(float64(f(d))))
}

func historyPer(kind string) func(phases.RunResult) string {
	return func(r phases.RunResult) string {
		h, ok := r.History(kind)
		if !ok {
			return "–"
		}
		return fmt.Sprintf("%.1f (%.1f KB)", h.EventsPerDelivery, h.BytesPerDelivery/1000)
	}
}

func stmtPer(u meter.Usage, role string, f func(meter.StatementUsage) float64) string {
	st, ok := u.Statement(role)
	if !ok || u.Items == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", u.Per(f(st)))
}

func stmtRow(u meter.Usage, f func(meter.StatementUsage) float64) string {
	return stmtPer(u, "app", f) + " / " + stmtPer(u, "temporal", f) + " / " + stmtPer(u, "visibility", f)
}

func allStatements(s meter.StatementUsage) float64   { return s.Total }
func writeStatements(s meter.StatementUsage) float64 { return s.Writes }

// shardIO is the time a delivery holds its history shard's one I/O slot, and how many
// such deliveries one shard could therefore carry each second.
func shardIO(u meter.Usage) string {
	if u.Items == 0 || u.Persistence.ShardIOSeconds <= 0 {
		return "–"
	}
	each := u.Per(u.Persistence.ShardIOSeconds)
	return fmt.Sprintf("%.2f; %.0f", 1000*each, 1/each)
}

func commits(d meter.DBUsage) int64   { return d.Commits }
func rowWrites(d meter.DBUsage) int64 { return d.RowWrites() }

// comparisons are the rows of Compare: what each stack did and what a delivery cost it.
var comparisons = []comparison{
	{"worker replicas / API replicas / history shards", func(r phases.RunResult) string {
		return fmt.Sprintf("%d / %d / %d", r.WorkerReplicas, r.APIReplicas, r.HistoryShards)
	}},
	{"load average at start (1 min)", func(r phases.RunResult) string { return fmt.Sprintf("%.2f", r.LoadAvgStart[0]) }},
	{"(2) floor: no-op workflows/s", func(r phases.RunResult) string {
		return fmt.Sprintf("%.1f (n=%d%s)", r.Floor.PerSecond, r.Floor.Count, floorNote(r.Floor))
	}},
	{"(3) ours: delivered/s", func(r phases.RunResult) string {
		return fmt.Sprintf("%.1f (n=%d)", r.Throughput.DeliveredPerSecond, r.Throughput.Events)
	}},
	{"(3)/(2) ours ÷ floor", func(r phases.RunResult) string { return fmt.Sprintf("%.0f%%", 100*r.Throughput.RatioToFloor) }},
	{"(4) latency p50 / p99 (ms)", func(r phases.RunResult) string {
		return fmt.Sprintf("%.0f / %.0f at %.1f/s", r.Latency.Latency.P50, r.Latency.Latency.P99, r.Latency.RatePerSecond)
	}},
	{"(5) fan-out: last receipt (s)", func(r phases.RunResult) string {
		return fmt.Sprintf("%.1f for %d (%.0f/s)", r.Fanout.LastReceiptSeconds, r.Fanout.Subscribers, r.Fanout.PerSecond)
	}},
	{"(R) one retry: trigger → receipt p50 (ms)", func(r phases.RunResult) string {
		return fmt.Sprintf("%.0f (n=%d)", r.Retry.Latency.P50, r.Retry.Events)
	}},
	{"(3) Temporal server CPU per delivery (ms)", func(r phases.RunResult) string { return perMs(r.Throughput.Usage, r.Throughput.Usage.CPU.Temporal) }},
	{"(5) Temporal server CPU per fan-out delivery (ms)", func(r phases.RunResult) string { return perMs(r.Fanout.Usage, r.Fanout.Usage.CPU.Temporal) }},
	{"(R) Temporal server CPU per retried delivery (ms)", func(r phases.RunResult) string { return perMs(r.Retry.Usage, r.Retry.Usage.CPU.Temporal) }},
	{"(2) Temporal server CPU per floor workflow (ms)", func(r phases.RunResult) string { return perMs(r.Floor.Usage, r.Floor.Usage.CPU.Temporal) }},
	{"(3) worker CPU per delivery, all replicas (ms)", func(r phases.RunResult) string { return perMs(r.Throughput.Usage, r.Throughput.Usage.CPU.Worker) }},
	{"(5) worker CPU per fan-out delivery (ms)", func(r phases.RunResult) string { return perMs(r.Fanout.Usage, r.Fanout.Usage.CPU.Worker) }},
	{"(R) worker CPU per retried delivery (ms)", func(r phases.RunResult) string { return perMs(r.Retry.Usage, r.Retry.Usage.CPU.Worker) }},
	{"(3) PostgreSQL CPU per delivery, this stack's backends (ms)", func(r phases.RunResult) string {
		return perMs(r.Throughput.Usage, r.Throughput.Usage.PostgresCPU())
	}},
	{"(5) PostgreSQL CPU per fan-out delivery, this stack's backends (ms)", func(r phases.RunResult) string {
		return perMs(r.Fanout.Usage, r.Fanout.Usage.PostgresCPU())
	}},
	{"(R) PostgreSQL CPU per retried delivery, this stack's backends (ms)", func(r phases.RunResult) string {
		return perMs(r.Retry.Usage, r.Retry.Usage.PostgresCPU())
	}},
	{"(3) PostgreSQL CPU per delivery, all server processes (ms; on -postgres shared, everyone's)", func(r phases.RunResult) string {
		return perMs(r.Throughput.Usage, r.Throughput.Usage.CPU.Postgres)
	}},
	{"(3) API CPU per delivery, all replicas (ms; not on the delivery path)", func(r phases.RunResult) string { return perMs(r.Throughput.Usage, r.Throughput.Usage.CPU.API) }},
	{"(3) persistence writes / reads per delivery", func(r phases.RunResult) string {
		u := r.Throughput.Usage
		return per(u, u.Persistence.Writes, 1) + " / " + per(u, u.Persistence.Reads, 1)
	}},
	{"(3) history-shard I/O per delivery (ms); one shard's ceiling at that (deliveries/s)", func(r phases.RunResult) string {
		return shardIO(r.Throughput.Usage)
	}},
	{"(5) history-shard I/O per fan-out delivery (ms); one shard's ceiling", func(r phases.RunResult) string {
		return shardIO(r.Fanout.Usage)
	}},
	{"(3) visibility writes per delivery", func(r phases.RunResult) string {
		return per(r.Throughput.Usage, r.Throughput.Usage.Persistence.VisibilityWrites, 1)
	}},
	{"(5) persistence writes / reads per fan-out delivery", func(r phases.RunResult) string {
		u := r.Fanout.Usage
		return per(u, u.Persistence.Writes, 1) + " / " + per(u, u.Persistence.Reads, 1)
	}},
	{"(R) persistence writes / reads per retried delivery", func(r phases.RunResult) string {
		u := r.Retry.Usage
		return per(u, u.Persistence.Writes, 1) + " / " + per(u, u.Persistence.Reads, 1)
	}},
	{"(2) persistence writes per floor workflow", func(r phases.RunResult) string {
		return per(r.Floor.Usage, r.Floor.Usage.Persistence.Writes, 1)
	}},
	{"history events per delivery: single subscriber", historyPer(phases.HistorySingle)},
	{"history events per delivery: fan-out child", historyPer(phases.HistoryFanoutChild)},
	{"history events per delivery: fan-out parent's share", historyPer(phases.HistoryFanoutParent)},
	{"history events per delivery: one retry", historyPer(phases.HistoryRetry)},
	{"history events per floor workflow", func(r phases.RunResult) string {
		h, ok := r.History(phases.HistoryFloor)
		if !ok {
			return "–"
		}
		return fmt.Sprintf("%.1f (%.1f KB)", h.EventsPerWorkflow, h.BytesPerWorkflow/1000)
	}},
	{"(3) PostgreSQL statements per delivery: app / temporal / visibility", func(r phases.RunResult) string {
		return stmtRow(r.Throughput.Usage, allStatements)
	}},
	{"(3) of which INSERT/UPDATE/DELETE: app / temporal / visibility", func(r phases.RunResult) string {
		return stmtRow(r.Throughput.Usage, writeStatements)
	}},
	{"(3) PostgreSQL execution time per delivery (ms): app / temporal / visibility", func(r phases.RunResult) string {
		u := r.Throughput.Usage
		f := func(role string) string {
			st, ok := u.Statement(role)
			if !ok || u.Items == 0 {
				return "–"
			}
			return fmt.Sprintf("%.2f", u.Per(st.ExecMs))
		}
		return f("app") + " / " + f("temporal") + " / " + f("visibility")
	}},
	{"(5) PostgreSQL statements per fan-out delivery: app / temporal / visibility", func(r phases.RunResult) string {
		return stmtRow(r.Fanout.Usage, allStatements)
	}},
	{"(R) PostgreSQL statements per retried delivery: app / temporal / visibility", func(r phases.RunResult) string {
		return stmtRow(r.Retry.Usage, allStatements)
	}},
	{"(3) PostgreSQL transactions per delivery: app / temporal / visibility", func(r phases.RunResult) string {
		u := r.Throughput.Usage
		return dbPer(u, "app", commits) + " / " + dbPer(u, "temporal", commits) + " / " + dbPer(u, "visibility", commits)
	}},
	{"(3) PostgreSQL rows written per delivery: app / temporal / visibility", func(r phases.RunResult) string {
		u := r.Throughput.Usage
		return dbPer(u, "app", rowWrites) + " / " + dbPer(u, "temporal", rowWrites) + " / " + dbPer(u, "visibility", rowWrites)
	}},
	{"(5) PostgreSQL transactions per fan-out delivery: app / temporal / visibility", func(r phases.RunResult) string {
		u := r.Fanout.Usage
		return dbPer(u, "app", commits) + " / " + dbPer(u, "temporal", commits) + " / " + dbPer(u, "visibility", commits)
	}},
	{"(R) PostgreSQL transactions per retried delivery: app / temporal / visibility", func(r phases.RunResult) string {
		u := r.Retry.Usage
		return dbPer(u, "app", commits) + " / " + dbPer(u, "temporal", commits) + " / " + dbPer(u, "visibility", commits)
	}},
	{"PostgreSQL WAL per delivery (KB): (3) / (5) / (R)", func(r phases.RunResult) string {
		w := func(u meter.Usage) string {
			if u.WALBytes == 0 {
				return "–"
			}
			return per(u, float64(u.WALBytes)/1000, 1)
		}
		return w(r.Throughput.Usage) + " / " + w(r.Fanout.Usage) + " / " + w(r.Retry.Usage)
	}},
	{"(3) peak PostgreSQL connections: app / temporal / visibility", func(r phases.RunResult) string {
		p := r.Throughput.Usage.PeakConnections
		if len(p) == 0 {
			return "–"
		}
		v := func(role string) string {
			if n, ok := p[role]; ok {
				return fmt.Sprint(n)
			}
			return "–"
		}
		return v("app") + " / " + v("temporal") + " / " + v("visibility")
	}},
	{"(3) machine busy; others' CPU (s)", func(r phases.RunResult) string {
		c := r.Throughput.Usage.CPU
		return fmt.Sprintf("%.0f%%; %.1f", c.MachineBusyPct, c.Others)
	}},
	{"idle: Temporal CPU (% of a core); persistence requests/s", func(r phases.RunResult) string {
		u := r.Idle
		if u.CPU.Seconds <= 0 {
			return "–"
		}
		p := u.Persistence
		return fmt.Sprintf("%.1f%%; %.1f", 100*u.CPU.Temporal/u.CPU.Seconds, (p.Writes+p.Reads+p.Other)/u.CPU.Seconds)
	}},
	{"(6) API at 1,000 req/s: p99 (ms); API CPU per request (ms)", func(r phases.RunResult) string {
		a := r.API
		if a == nil {
			return "–"
		}
		return fmt.Sprintf("%.2f; %s over %d replica(s)", a.Latency.P99, perMs(a.Usage, a.Usage.CPU.API), a.Replicas)
	}},
	{"(3) worker peak RSS, largest replica (MB)", func(r phases.RunResult) string { return fmt.Sprintf("%.0f", mb(r.Throughput.WorkerPeakRSS)) }},
}

// Compare renders every run side by side, one column per run.
func Compare(r *phases.Results) string {
	if len(r.Runs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| measure |")
	for _, run := range r.Runs {
		label := run.Label
		if run.Failed {
			label += " (FAILED: partial)"
		}
		fmt.Fprintf(&b, " %s |", cell(label))
	}
	b.WriteString("\n|---|")
	for range r.Runs {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, c := range comparisons {
		fmt.Fprintf(&b, "| %s |", cell(c.measure))
		for _, run := range r.Runs {
			fmt.Fprintf(&b, " %s |", cell(c.value(run)))
		}
		b.WriteString("\n")
	}
	return b.String()
}
