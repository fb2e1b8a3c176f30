// Package proc supervises the benchmark's subprocesses (the worker and the API): each
// runs with a given environment, logs to its own file, dies with the harness, and is
// stopped with SIGTERM and, if it will not drain, SIGKILL.
package proc

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a subprocess of the benchmark.
type Proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Start runs `bin sub` with exactly env as its environment, its output going to logPath.
func Start(bin, sub string, env []string, logPath string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, sub)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	// Killed with the harness, whatever way it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s %s: %w", bin, sub, err)
	}
	p := &Proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	return p, nil
}

// PID is the subprocess's process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the subprocess has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop asks the subprocess to drain and end, and kills it after 15 s.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Tail returns the end of the subprocess's log.
func (p *Proc) Tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
