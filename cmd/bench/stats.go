package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Summary describes a latency sample in milliseconds.
type Summary struct {
	Count int     `json:"count"`
	Min   float64 `json:"minMs"`
	Mean  float64 `json:"meanMs"`
	P50   float64 `json:"p50Ms"`
	P95   float64 `json:"p95Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted, which
// must be in ascending order; zero for an empty sample.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// Summarize sorts a copy of sample and describes it.
func Summarize(sample []time.Duration) Summary {
	if len(sample) == 0 {
		return Summary{}
	}
	s := slices.Clone(sample)
	slices.Sort(s)
	var total time.Duration
	for _, d := range s {
		total += d
	}
	return Summary{
		Count: len(s),
		Min:   ms(s[0]),
		Mean:  ms(total / time.Duration(len(s))),
		P50:   ms(Percentile(s, 50)),
		P95:   ms(Percentile(s, 95)),
		P99:   ms(Percentile(s, 99)),
		Max:   ms(s[len(s)-1]),
	}
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

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

// promSums reads Prometheus text exposition and returns, per metric name, the sum of
// every sample of that name across label sets. Histograms and summaries appear as
// name_sum and name_count; counters as their own name.
func promSums(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}

// MetricDelta is how a histogram or summary moved over a phase.
type MetricDelta struct {
	Count  float64 `json:"count"`
	MeanMs float64 `json:"meanMs"`
}

// histogramDelta returns the change of name's count and the mean of what was observed
// between before and after (values in seconds, reported in milliseconds).
func histogramDelta(before, after map[string]float64, name string) (MetricDelta, bool) {
	count := after[name+"_count"] - before[name+"_count"]
	if count <= 0 {
		return MetricDelta{}, false
	}
	sum := after[name+"_sum"] - before[name+"_sum"]
	return MetricDelta{Count: count, MeanMs: math.Round(sum/count*1e6) / 1000}, true
}
