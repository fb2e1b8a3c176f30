package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/assetsup/webhooks/bench/internal/phases"
)

// Write writes latest.json (res and its table rows), latest.md (the table, failures and
// breakdowns) and latency.png (phase 4's latencies) into out, which is relative to the
// repository root unless absolute.
func Write(root, out string, res *phases.Results, rows []Row, table string) error {
	dir := out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// latest.json is the Results with the table last.
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
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(markdownReport(res, table)), 0o644); err != nil {
		return err
	}
	if len(res.Latency.Latencies) > 0 {
		title := fmt.Sprintf("DispatchEvent trigger → verified receipt at %.1f events/s for %s (%d events), commit %s",
			res.Latency.RatePerSecond, res.Settings.LatencyDuration, res.Latency.Latency.Count, res.Commit)
		if err := writeChart(filepath.Join(dir, "latency.png"), res.Latency.Latencies, title); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
	}
	return nil
}

func markdownReport(res *phases.Results, table string) string {
	var b strings.Builder
	mode := "full run"
	if res.Settings.Quick {
		mode = "quick run (BENCH_QUICK=1): small counts, not comparable with full runs"
	}
	fmt.Fprintf(&b, "# Benchmark results\n\n%s, commit `%s`, %s, %d CPUs, %.0f GiB, %s; took %.0f s.\n\n",
		res.Date, res.Commit, mode, res.NumCPU, float64(res.MemTotalBytes)/(1<<30), res.GoVersion, res.Seconds)
	b.WriteString(table)
	b.WriteString("\n")
	if len(res.Failures) > 0 {
		b.WriteString("**Run FAILED:**\n\n")
		for _, f := range res.Failures {
			fmt.Fprintf(&b, "- %s\n", cell(f))
		}
		b.WriteString("\n")
	}
	c := res.Throughput.CPU
	if c.Seconds > 0 {
		fmt.Fprintf(&b, "CPU seconds used during (3) (%.1f s wall, machine %.0f%% busy): Temporal dev server %.1f, worker %.1f, PostgreSQL %.1f, harness (triggers + receiver) %.1f, API %.1f.\n\n",
			c.Seconds, c.MachineBusyPct, c.Temporal, c.Worker, c.Postgres, c.Harness, c.API)
	}
	if len(res.Throughput.WorkerMetrics) > 0 {
		b.WriteString("Worker SDK timings during (3) (mean over the phase):\n\n| metric | count | mean ms |\n|---|---|---|\n")
		for _, name := range sortedKeys(res.Throughput.WorkerMetrics) {
			d := res.Throughput.WorkerMetrics[name]
			fmt.Fprintf(&b, "| %s | %.0f | %.2f |\n", name, d.Count, d.MeanMs)
		}
		b.WriteString("\n")
	}
	b.WriteString("![latency](latency.png)\n")
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
