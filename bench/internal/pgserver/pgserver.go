// Package pgserver runs a PostgreSQL server of the benchmark's own: a fresh cluster in
// a temporary directory on a free loopback port, with production's durability
// defaults (fsync and synchronous commit on), room for every pool of the production
// stack (max_connections), and pg_stat_statements loaded so that every statement the
// stack runs can be counted. Nobody else's databases or connections share it, so what
// it counts and spends is the benchmark's alone.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/assetsup/webhooks/models"
)

// Server is a running private PostgreSQL server.
type Server struct {
	bin  string // directory of initdb, pg_ctl, postgres
	dir  string
	Port int
}

// Settings are the server settings that differ from a fresh initdb's.
func Settings(port int, socketDir string) []string {
	return []string{
		"-p", strconv.Itoa(port), "-k", socketDir,
		"-c", "listen_addresses=127.0.0.1",
		// The production stack at 3 worker and 2 API replicas opens ~150 connections
		// (the Temporal server's pools alone ~60); a fresh server allows 100.
		"-c", "max_connections=400",
		"-c", "shared_preload_libraries=pg_stat_statements",
		"-c", "pg_stat_statements.max=10000",
		"-c", "pg_stat_statements.track_utility=on",
	}
}

// Start initialises a cluster in a temporary directory and starts it, as the postgres
// system user when run as root (the server refuses to run as root).
func Start(ctx context.Context) (_ *Server, err error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "webhooks-bench-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if os.Geteuid() == 0 {
		if err := chownToPostgres(dir); err != nil {
			return nil, err
		}
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	if err := s.run(ctx, "initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
		return nil, err
	}
	opts := strings.Join(Settings(s.Port, dir), " ")
	if err := s.run(ctx, "pg_ctl", "-D", s.data(), "-w", "-t", "60", "-l", filepath.Join(dir, "log"), "-o", opts, "start"); err != nil {
		return nil, err
	}
	db, err := models.Open(ctx, s.URL("postgres"), 1)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return nil, fmt.Errorf("create pg_stat_statements: %w", err)
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// URL is the connection URL of database name on the server.
func (s *Server) URL(name string) string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(s.Port) + "/" + name + "?sslmode=disable"
}

// PID is the postmaster's process id (its backends are its children), 0 if unknown.
func (s *Server) PID() int {
	b, err := os.ReadFile(filepath.Join(s.data(), "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// Stop stops the server at once and removes its directory.
func (s *Server) Stop() {
	if _, err := os.Stat(filepath.Join(s.data(), "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = s.run(ctx, "pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop")
		cancel()
	}
	_ = os.RemoveAll(s.dir)
}

func (s *Server) run(ctx context.Context, tool string, args ...string) error {
	path := filepath.Join(s.bin, tool)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", tool, err, out)
	}
	return nil
}

// findBin is the newest PostgreSQL's bin directory under /usr/lib/postgresql.
func findBin() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", errors.New("initdb not found under /usr/lib/postgresql: install the PostgreSQL server, or use -postgres shared")
	}
	slices.SortFunc(found, func(a, b string) int { return versionOf(a) - versionOf(b) })
	return filepath.Dir(found[len(found)-1]), nil
}

// versionOf reads the major version from /usr/lib/postgresql/<major>/bin/initdb.
func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the postgres system user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
