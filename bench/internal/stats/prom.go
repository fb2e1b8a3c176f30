package stats

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"strings"
)

// PromSums reads Prometheus text exposition and returns, per metric name, the sum of
// every sample of that name across label sets. Histograms and summaries appear as
// name_sum and name_count; counters as their own name.
func PromSums(r io.Reader) (map[string]float64, error) {
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

// HistogramDelta returns the change of name's count and the mean of what was observed
// between before and after (values in seconds, reported in milliseconds).
func HistogramDelta(before, after map[string]float64, name string) (MetricDelta, bool) {
	count := after[name+"_count"] - before[name+"_count"]
	if count <= 0 {
		return MetricDelta{}, false
	}
	sum := after[name+"_sum"] - before[name+"_sum"]
	return MetricDelta{Count: count, MeanMs: math.Round(sum/count*1e6) / 1000}, true
}

// PromByLabel reads Prometheus text exposition and returns, for every sample of the
// metric called name, the sum per value of label (a sample without that label counts
// under ""). It reads Temporal's persistence_requests by operation, for example.
func PromByLabel(r io.Reader, name, label string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // another metric, or one whose name only starts with name
		}
		var labels map[string]string
		if rest[0] == '{' {
			var n int
			if labels, n, ok = parseLabels(rest); !ok {
				continue
			}
			rest = rest[n:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		out[labels[label]] += v
	}
	return out, sc.Err()
}

// parseLabels parses `{k="v",...}` at the start of s, with the exposition format's
// escapes in values, and returns the labels and how many bytes they took.
func parseLabels(s string) (map[string]string, int, bool) {
	labels := map[string]string{}
	i := 1 // past '{'
	for {
		for i < len(s) && (s[i] == ',' || s[i] == ' ') {
			i++
		}
		if i >= len(s) {
			return nil, 0, false
		}
		if s[i] == '}' {
			return labels, i + 1, true
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
			return nil, 0, false
		}
		key := strings.TrimSpace(s[i : i+eq])
		i += eq + 2
		var val strings.Builder
		for {
			if i >= len(s) {
				return nil, 0, false
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
			} else {
				val.WriteByte(c)
			}
			i++
		}
		labels[key] = val.String()
	}
}
