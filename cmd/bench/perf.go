package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// perfRecording is `perf record` sampling one process, for -perf.
type perfRecording struct {
	cmd  *exec.Cmd
	data string
	out  string
}

// startPerf samples pid's on-CPU stacks (cpu-clock: works without hardware counters)
// until stop. Nothing happens when dir is empty, perf is missing or pid is 0.
func startPerf(dir, name string, pid int) *perfRecording {
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
	return &perfRecording{cmd: cmd, data: data, out: filepath.Join(dir, "perf-"+name+".txt")}
}

// stop ends the recording and writes the flat profile (self time by symbol) beside it.
func (p *perfRecording) stop() string {
	if p == nil {
		return ""
	}
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
	return p.out
}
