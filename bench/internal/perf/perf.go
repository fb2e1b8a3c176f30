// Package perf samples a process's on-CPU stacks with Linux perf for the benchmark's
// -perf flag and writes a flat profile (self time by symbol) of each recording.
package perf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Recording is `perf record` sampling one process, for -perf.
type Recording struct {
	cmd     *exec.Cmd
	data    string
	out     string
	stopped bool
	report  string // the flat profile written by the first Stop
}

// Start samples pid's on-CPU stacks (cpu-clock: works without hardware counters)
// until stop. Nothing happens when dir is empty, perf is missing or pid is 0.
func Start(dir, name string, pid int) *Recording {
	if dir == "" || pid == 0 {
		return nil
	}
	if _, err := exec.LookPath("perf"); err != nil {
		return nil
	}
	data := filepath.Join(dir, "perf-"+name+".data")
	cmd := exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-F", "499", "-g", "-p", fmt.Sprint(pid), "-o", data)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return nil
	}
	return &Recording{cmd: cmd, data: data, out: filepath.Join(dir, "perf-"+name+".txt")}
}

// Stop ends the recording and writes the flat profile (self time by symbol) beside it,
// returning its path, or "" when there is none (a nil Recording does nothing).
func (p *Recording) Stop() string {
	if p == nil {
		return ""
	}
	if p.stopped {
		return p.report
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	out, err := exec.Command("perf", "report", "-i", p.data, "--stdio", "--no-children", "-g", "none",
		"--sort", "dso,symbol", "--percent-limit", "0.7").Output()
	if err != nil {
		return ""
	}
	if os.WriteFile(p.out, out, 0o644) != nil {
		return ""
	}
	p.report = p.out
	return p.out
}
