package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is one long-running program of the stack: started, killed, stopped and
// started again with the same command line and environment, as an orchestrator does.
type Process struct {
	Name string
	path string
	args []string
	env  []string
	out  io.Writer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func newProcess(name string, out io.Writer, env []string, path string, args ...string) *Process {
	return &Process{Name: name, path: path, args: args, env: env, out: out}
}

// Start runs the program; it is an error to start one that still runs.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exitedLocked() {
		return fmt.Errorf("%s is already running", p.Name)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Its own process group, so Ctrl-C at `make prod-local` reaches the supervisor only
	// and the supervisor stops each program in order.
	// Pdeathsig: a supervisor (or test) that dies takes its programs with it instead of
	// leaving them holding ports and database connections.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	return nil
}

func (p *Process) exitedLocked() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Running says whether the program is alive.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exitedLocked()
}

// Pid is the program's process id (0 before the first start).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Kill sends SIGKILL, as a crashed node or an OOM kill does, and waits for the exit.
func (p *Process) Kill() {
	p.signal(syscall.SIGKILL, 0)
}

// Terminate sends SIGTERM, as a rolling deploy does, and waits up to grace for the
// program to exit on its own before killing it. It reports whether the exit was clean.
func (p *Process) Terminate(grace time.Duration) bool {
	return p.signal(syscall.SIGTERM, grace)
}

func (p *Process) signal(sig syscall.Signal, grace time.Duration) bool {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-exited
		return false
	}
	select {
	case <-exited:
		return cmd.ProcessState != nil && cmd.ProcessState.Success()
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return false
	}
}

// waitHTTP polls url until it answers 2xx or ctx ends; it fails at once when the
// program exits, with what it printed being in its log.
func (p *Process) waitHTTP(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if !p.Running() {
			return fmt.Errorf("%s exited while starting", p.Name)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w", p.Name, url, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logFile opens (appending) the log file of one program.
func logFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	return f, nil
}

// runOnce runs a one-shot program (schema tool, migrations) to completion.
func runOnce(ctx context.Context, out io.Writer, env []string, path string, args ...string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var buf limitedBuffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(out, &buf), io.MultiWriter(out, &buf)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", path, args, err, buf.String())
	}
	return nil
}

// limitedBuffer keeps the last few KB of a program's output for an error message.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if len(l.b) > 8<<10 {
		l.b = l.b[len(l.b)-8<<10:]
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

var errStopped = errors.New("cluster stopped")
