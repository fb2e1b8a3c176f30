package stats

import (
	"strings"
	"testing"
	"time"
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

func TestPromSumsAndHistogramDelta(t *testing.T) {
	before, err := PromSums(strings.NewReader(`# HELP x y
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
	d, ok := HistogramDelta(before, after, "temporal_request_latency_seconds")
	if !ok || d.Count != 10 || d.MeanMs != 200 {
		t.Fatalf("delta %+v %v", d, ok)
	}
	if _, ok := HistogramDelta(after, after, "temporal_request_latency_seconds"); ok {
		t.Fatal("no observations must report nothing")
	}
}

func TestPromByLabel(t *testing.T) {
	const scrape = `# HELP persistence_requests persistence_requests counter
# TYPE persistence_requests counter
persistence_requests{namespace="default",operation="UpdateWorkflowExecution",service_name="history"} 7
persistence_requests{namespace="other",operation="UpdateWorkflowExecution",service_name="history"} 3
persistence_requests{operation="GetTasks",service_name="matching",note="a \"quoted\", {odd} value"} 2
persistence_requests{service_name="frontend"} 1
persistence_requests_total{operation="UpdateWorkflowExecution"} 100
persistence_requests_other 5
visibility_persistence_requests{operation="RecordWorkflowExecutionStarted"} 4
persistence_requests{operation="Broken" 9
persistence_requests{operation="NaN"} NaN
`
	tests := []struct {
		name, metric, label string
		want                map[string]float64
	}{
		{
			name: "by operation, summed over other labels", metric: "persistence_requests", label: "operation",
			want: map[string]float64{"UpdateWorkflowExecution": 10, "GetTasks": 2, "": 1, "NaN": 0},
		},
		{
			name: "another metric in the same scrape", metric: "visibility_persistence_requests", label: "operation",
			want: map[string]float64{"RecordWorkflowExecutionStarted": 4},
		},
		{
			name: "escaped quotes and commas in a value do not end it", metric: "persistence_requests", label: "note",
			want: map[string]float64{"": 11, `a "quoted", {odd} value`: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PromByLabel(strings.NewReader(scrape), tt.metric, tt.label)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if v == 0 {
					if _, ok := got[k]; ok {
						t.Errorf("%q: NaN sample counted", k)
					}
					continue
				}
				if got[k] != v {
					t.Errorf("%q = %v, want %v (all %v)", k, got[k], v, got)
				}
			}
			if _, ok := got["Broken"]; ok {
				t.Error("a sample with unterminated labels was counted")
			}
		})
	}
}
