// Package stats summarizes what the benchmark samples: latency percentiles, and the
// movement of Prometheus histograms scraped before and after a phase.
package stats

import (
	"math"
	"slices"
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
		Min:   Millis(s[0]),
		Mean:  Millis(total / time.Duration(len(s))),
		P50:   Millis(Percentile(s, 50)),
		P95:   Millis(Percentile(s, 95)),
		P99:   Millis(Percentile(s, 99)),
		Max:   Millis(s[len(s)-1]),
	}
}

// Millis is d in milliseconds, to the microsecond.
func Millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// Round rounds v half up to digits decimal places.
func Round(v float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
