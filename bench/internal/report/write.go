package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/phases"
)

// Primary is the run whose table `make bench` prints against the targets: the dev
// server's when it ran, else the first.
func Primary(res *phases.Results) (phases.RunResult, bool) {
	for _, run := range res.Runs {
		if run.Target == "dev" {
			return run, true
		}
	}
	if len(res.Runs) == 0 {
		return phases.RunResult{}, false
	}
	return res.Runs[0], true
}

// Write writes latest.json (res and its tables), latest.md (the tables, failures and
// breakdowns) and latency.png (the primary run's phase 4) into out, which is relative to
// the repository root unless absolute.
func Write(root, out string, res *phases.Results) error {
	dir := out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	primary, ok := Primary(res)
	var rows []Row
	if ok {
		rows = Rows(res, primary)
	}
	// latest.json is the Results with the primary run's table last.
	doc := struct {
		*phases.Results
		Rows []Row `json:"table"`
	}{res, rows}
	j, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(Markdown(res)), 0o644); err != nil {
		return err
	}
	if ok && len(primary.Latency.Latencies) > 0 {
		title := fmt.Sprintf("%s: DispatchEvent trigger → verified receipt at %.1f events/s for %s (%d events), commit %s", primary.Label,
			primary.Latency.RatePerSecond, primary.LatencyDuration, primary.Latency.Latency.Count, res.Commit)
		if err := writeChart(filepath.Join(dir, "latency.png"), primary.Latency.Latencies, title); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
	}
	return nil
}

// Markdown is latest.md: the side-by-side table, the primary run's table, and per run
// where the CPU, the persistence requests and the row writes went.
func Markdown(res *phases.Results) string {
	var b strings.Builder
	mode := "full run"
	if res.Settings.Quick {
		mode = "quick run (BENCH_QUICK=1): small counts, not comparable with full runs"
	}
	fmt.Fprintf(&b, "# Benchmark results\n\n%s, commit `%s`, %s, %d CPUs, %.0f GiB, %s; took %.0f s.\n\n",
		res.Date, res.Commit, mode, res.NumCPU, float64(res.MemTotalBytes)/(1<<30), res.GoVersion, res.Seconds)
	if len(res.Failures) > 0 {
		b.WriteString("**Run FAILED:**\n\n")
		for _, f := range res.Failures {
			fmt.Fprintf(&b, "- %s\n", cell(f))
		}
		b.WriteString("\n")
	}
	if len(res.Runs) > 1 {
		b.WriteString("## Every stack side by side\n\nPer-delivery figures divide what the phase used (from its start until every workflow closed) by its deliveries.\n\n")
		b.WriteString(Compare(res))
		b.WriteString("\n")
	}
	if primary, ok := Primary(res); ok {
		fmt.Fprintf(&b, "## %s against the targets\n\n", primary.Label)
		b.WriteString(RenderTable(Rows(res, primary)))
		b.WriteString("\n")
	}
	for _, run := range res.Runs {
		fmt.Fprintf(&b, "## %s: where it went\n\n", run.Label)
		fmt.Fprintf(&b, "Load average %.2f %.2f %.2f at the start, %.2f %.2f %.2f at the end.\n\n",
			run.LoadAvgStart[0], run.LoadAvgStart[1], run.LoadAvgStart[2], run.LoadAvgEnd[0], run.LoadAvgEnd[1], run.LoadAvgEnd[2])
		if c := run.Throughput.Usage.CPU; c.Seconds > 0 {
			fmt.Fprintf(&b, "CPU seconds during (3) (%.1f s wall, machine %.0f%% busy): Temporal server %.1f, workers %.1f, PostgreSQL %.1f (of which this stack's backends %.1f: %s), harness (triggers + receiver) %.1f, API %.1f, other processes %.1f.\n\n",
				c.Seconds, c.MachineBusyPct, c.Temporal, c.Worker, c.Postgres, run.Throughput.Usage.PostgresCPU(), backendList(run.Throughput.Usage), c.Harness, c.API, c.Others)
		}
		if split := run.Throughput.TemporalCPUSplit; len(split) > 0 {
			var parts []string
			for _, k := range byValue(split) {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*split[k]))
			}
			fmt.Fprintf(&b, "Temporal server CPU during (3) by service (perf samples, outermost service frame): %s.\n\n", strings.Join(parts, ", "))
		}
		for _, p := range []struct {
			name string
			u    meter.Usage
		}{{"(3) throughput", run.Throughput.Usage}, {"(5) fan-out", run.Fanout.Usage}, {"(R) retry", run.Retry.Usage}} {
			writeBreakdown(&b, p.name, p.u)
		}
		writeHistories(&b, run.Histories)
		if m := run.Throughput.WorkerMetrics; len(m) > 0 {
			b.WriteString("Worker SDK timings during (3) (mean over the phase and every replica):\n\n| metric | count | mean ms |\n|---|---|---|\n")
			for _, name := range sortedKeys(m) {
				fmt.Fprintf(&b, "| %s | %.0f | %.2f |\n", name, m[name].Count, m[name].MeanMs)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("![latency](latency.png)\n")
	return b.String()
}

// writeBreakdown lists a phase's persistence requests and row writes per delivery.
func writeBreakdown(b *strings.Builder, name string, u meter.Usage) {
	if u.Items == 0 || (len(u.Persistence.ByOperation) == 0 && len(u.Databases) == 0 && len(u.Statements) == 0) {
		return
	}
	fmt.Fprintf(b, "%s, per delivery (%d deliveries):\n\n", name, u.Items)
	if len(u.Persistence.ByOperation) > 0 {
		b.WriteString("| persistence operation | kind | per delivery | mean latency ms |\n|---|---|---|---|\n")
		for _, op := range byValue(u.Persistence.ByOperation) {
			lat := "–"
			if ms, ok := u.Persistence.MeanLatencyMs[op]; ok {
				lat = fmt.Sprintf("%.2f", ms)
			}
			fmt.Fprintf(b, "| %s | %s | %.2f | %s |\n", op, kindName(meter.Classify(op)), u.Per(u.Persistence.ByOperation[op]), lat)
		}
		for _, op := range byValue(u.Persistence.Visibility) {
			fmt.Fprintf(b, "| visibility: %s | %s | %.2f | – |\n", op, kindName(meter.Classify(op)), u.Per(u.Persistence.Visibility[op]))
		}
		b.WriteString("\n")
	}
	if len(u.Databases) > 0 {
		b.WriteString("| database | transactions | rows inserted | updated | deleted | fetched | rows written by table |\n|---|---|---|---|---|---|---|\n")
		for _, d := range u.Databases {
			var tables []string
			for _, t := range byValueInt(d.TableWrites) {
				tables = append(tables, fmt.Sprintf("%s %.2f", t, u.Per(float64(d.TableWrites[t]))))
			}
			fmt.Fprintf(b, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s |\n", d.Role, u.Per(float64(d.Commits)),
				u.Per(float64(d.Inserted)), u.Per(float64(d.Updated)), u.Per(float64(d.Deleted)), u.Per(float64(d.Fetched)), strings.Join(tables, ", "))
		}
		b.WriteString("\n")
	}
	if len(u.Statements) > 0 {
		b.WriteString("| database | statements | reads | writes | BEGIN/COMMIT | other | execution ms | most run, per delivery |\n|---|---|---|---|---|---|---|---|\n")
		for _, st := range u.Statements {
			var top []string
			for _, q := range st.Top {
				top = append(top, fmt.Sprintf("%.2f `%s`", u.Per(q.Calls), shorten(q.Query, 70)))
			}
			fmt.Fprintf(b, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.3f | %s |\n", st.Role, u.Per(st.Total), u.Per(st.Reads),
				u.Per(st.Writes), u.Per(st.Transaction), u.Per(st.Other), u.Per(st.ExecMs), strings.Join(top, "; "))
		}
		b.WriteString("\n")
	}
}

// shorten flattens a statement's whitespace and cuts it to n characters.
func shorten(q string, n int) string {
	q = strings.Join(strings.Fields(q), " ")
	q = strings.ReplaceAll(q, "`", "'")
	if r := []rune(q); len(r) > n {
		return string(r[:n]) + "…"
	}
	return q
}

func writeHistories(b *strings.Builder, hs []phases.HistorySample) {
	if len(hs) == 0 {
		return
	}
	b.WriteString("| workflow history | read | events per workflow | bytes per workflow | events per delivery | event types per workflow |\n|---|---|---|---|---|---|\n")
	for _, h := range hs {
		var types []string
		for _, t := range byValue(h.EventTypes) {
			types = append(types, fmt.Sprintf("%s %.1f", t, h.EventTypes[t]))
		}
		fmt.Fprintf(b, "| %s | %d | %.1f | %.0f | %.2f | %s |\n", h.Kind, h.Workflows, h.EventsPerWorkflow, h.BytesPerWorkflow, h.EventsPerDelivery, strings.Join(types, ", "))
	}
	b.WriteString("\n")
}

func backendList(u meter.Usage) string {
	var parts []string
	for _, role := range byValue(u.PostgresBackendCPU) {
		parts = append(parts, fmt.Sprintf("%s %.1f", role, u.PostgresBackendCPU[role]))
	}
	if len(parts) == 0 {
		return "none measured"
	}
	return strings.Join(parts, ", ")
}

func kindName(k meter.Kind) string {
	switch k {
	case meter.Write:
		return "write"
	case meter.Read:
		return "read"
	}
	return "other"
}

// byValue sorts m's keys by value, largest first, then by name.
func byValue(m map[string]float64) []string {
	keys := sortedKeys(m)
	slices.SortStableFunc(keys, func(a, b string) int {
		switch {
		case m[a] > m[b]:
			return -1
		case m[a] < m[b]:
			return 1
		}
		return 0
	})
	return keys
}

func byValueInt(m map[string]int64) []string {
	f := make(map[string]float64, len(m))
	for k, v := range m {
		f[k] = float64(v)
	}
	return byValue(f)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
