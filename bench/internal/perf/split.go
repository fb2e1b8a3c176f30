package perf

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
)

// ServiceSplit attributes the Temporal server's sampled CPU (a Recording of a
// temporal-server process) to its services: each sample goes to the outermost
// go.temporal.io/server/service/<name> frame on its stack (frontend, history,
// matching, worker), else to what it ran in (stackParts: gc, grpc, persistence,
// membership, runtime) or "other".
// With every service in one process, this is how the capacity model splits the
// measured CPU between frontend, history and matching replicas. It returns each
// share of the samples (summing to 1), or nil when there is no recording.
func (p *Recording) ServiceSplit() map[string]float64 {
	if p == nil {
		return nil
	}
	out, err := exec.Command("perf", "script", "-i", p.data).Output()
	if err != nil {
		return nil
	}
	return splitSamples(strings.NewReader(string(out)))
}

// splitSamples reads `perf script` output: one header line per sample, then its
// callchain innermost frame first, one frame per indented line, then a blank line.
func splitSamples(r io.Reader) map[string]float64 {
	counts := map[string]float64{}
	var total float64
	var frames []string
	flush := func() {
		if len(frames) > 0 {
			counts[classifyStack(frames)]++
			total++
		}
		frames = frames[:0]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	inSample := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
			inSample = false
		case line[0] != ' ' && line[0] != '\t':
			flush()
			inSample = true
		case inSample:
			if f := strings.Fields(line); len(f) >= 2 {
				frames = append(frames, f[1])
			}
		}
	}
	flush()
	if total == 0 {
		return nil
	}
	for k := range counts {
		counts[k] /= total
	}
	return counts
}

// stackParts name, in order of precedence, what a sample without a service frame
// ran in: prefixes of any frame on its stack.
var stackParts = []struct{ name, prefixes string }{
	{"gc", "runtime.gcBgMarkWorker runtime.gcBgMarkStartWorkers runtime.bgsweep runtime.bgscavenge runtime.gcenable runtime.gcStart"},
	{"grpc", "google.golang.org/grpc golang.org/x/net/http2"},
	{"persistence", "go.temporal.io/server/common/persistence database/sql github.com/lib/pq github.com/jackc/pgx"},
	{"membership", "github.com/temporalio/ringpop-go github.com/temporalio/tchannel-go"},
	{"runtime", "runtime."},
}

// classifyStack names the part of the server a sample's frames (innermost first) ran
// in: the outermost service frame's service, else gc, grpc (transport shared by every
// service), persistence, membership, runtime (scheduler) or other.
func classifyStack(frames []string) string {
	for i := len(frames) - 1; i >= 0; i-- {
		if rest, ok := strings.CutPrefix(frames[i], "go.temporal.io/server/service/"); ok {
			name, _, _ := strings.Cut(rest, ".")
			name, _, _ = strings.Cut(name, "/")
			return name
		}
	}
	for _, part := range stackParts {
		for _, prefix := range strings.Fields(part.prefixes) {
			for _, f := range frames {
				if strings.HasPrefix(f, prefix) {
					return part.name
				}
			}
		}
	}
	return "other"
}
