package testinfra

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/assetsup/webhooks/internal/cluster"
)

// The Temporal that tests run against, chosen by TEST_TEMPORAL_TARGET: "dev" (the
// default) is the CLI's dev server; "server" is the real Temporal server built from
// source (`make temporal-server`) on PostgreSQL persistence and advanced visibility, as
// production runs it. `make test` runs the end-to-end suite on both.
const (
	TargetDev    = "dev"
	TargetServer = "server"
)

// Target is the Temporal the tests of this run use.
func Target() string {
	if os.Getenv("TEST_TEMPORAL_TARGET") == TargetServer {
		return TargetServer
	}
	return TargetDev
}

// temporalServer is what the package's tests share: a dev server or a real server.
type temporalServer interface {
	Client() client.Client
	FrontendHostPort() string
	Stop() error
}

func startPackageTemporal(ctx context.Context) (temporalServer, error) {
	if Target() == TargetServer {
		s, err := newRealServer(ctx, "")
		if err != nil {
			return nil, err
		}
		if err := s.srv.Start(ctx); err != nil {
			return nil, s.failed(ctx, err)
		}
		return s, s.dial(ctx)
	}
	srv, err := StartDevServer(ctx, testsuite.DevServerOptions{LogLevel: "error"})
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// realServer is a Temporal server of the tests' own, on databases of its own that
// Stop drops.
type realServer struct {
	srv    *cluster.Temporal
	dir    string
	logs   *LogBuffer
	client client.Client
}

// newRealServer prepares a real server on fresh databases; stateDir "" makes a
// temporary one.
func newRealServer(ctx context.Context, stateDir string) (*realServer, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	serverBin, err := binPath("temporal-server", "temporal-server")
	if err != nil {
		return nil, err
	}
	if stateDir == "" {
		if stateDir, err = os.MkdirTemp("", "webhooks-temporal-"); err != nil {
			return nil, err
		}
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	s := &realServer{dir: stateDir, logs: &LogBuffer{}}
	suffix := RandomHex(6)
	s.srv, err = cluster.NewTemporal(ctx, cluster.TemporalOptions{
		ServerBin: serverBin, SQLToolBin: filepath.Join(filepath.Dir(serverBin), "temporal-sql-tool"),
		DynamicConfig: filepath.Join(root, "deploy", "temporal", "dynamicconfig.yaml"),
		AdminURL:      AdminURL(), Database: "temporal_test_" + suffix, VisibilityDatabase: "temporal_vis_test_" + suffix,
		FrontendAddr: addr, StateDir: stateDir, LogLevel: "error", Out: s.logs,
		// Modest pools: test servers share the machine's PostgreSQL and its default 100
		// connections (each server runs four services, each with pools; a package runs
		// at most two servers at once). Visibility needs a few: a list behind a queue of
		// visibility writes on one connection waits past its deadline.
		MaxConns: 6, VisibilityMaxConns: 4,
	})
	if err != nil {
		return nil, fmt.Errorf("the real Temporal server (TEST_TEMPORAL_TARGET=server) on PostgreSQL at %s: %w", AdminURL(), err)
	}
	return s, nil
}

func (s *realServer) failed(ctx context.Context, err error) error {
	_ = s.Stop()
	return fmt.Errorf("start the real Temporal server: %w\nserver output:\n%s", err, tail(s.logs.String(), 4000))
}

func (s *realServer) dial(ctx context.Context) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: s.srv.Address(), Namespace: "default", Logger: QuietLogger()})
	if err != nil {
		return fmt.Errorf("dial the real Temporal server: %w", err)
	}
	s.client = c
	return nil
}

func (s *realServer) Client() client.Client    { return s.client }
func (s *realServer) FrontendHostPort() string { return s.srv.Address() }

// Stop stops the server and drops its databases.
func (s *realServer) Stop() error {
	if s.client != nil {
		s.client.Close()
	}
	s.srv.Process().Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.srv.DropDatabases(ctx)
	_ = os.RemoveAll(s.dir)
	return err
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// RestartableTemporal is a Temporal server of one test's own that the test stops and
// starts again on the same persistence and port, as a restarted Temporal cluster comes
// back with its state: in the dev target a dev server on a SQLite file, in the server
// target the real server on its PostgreSQL databases.
type RestartableTemporal struct {
	t        testing.TB
	hostPort string
	// dev target
	cli    string
	dbFile string
	dev    *testsuite.DevServer // nil while stopped
	// server target
	real *realServer
	logs *LogBuffer
}

// StartRestartableTemporal starts one; it is stopped (and its state removed) when the
// test ends.
func StartRestartableTemporal(t testing.TB) *RestartableTemporal {
	t.Helper()
	NeedsFullSuite(t, "a Temporal server")
	r := &RestartableTemporal{t: t, logs: &LogBuffer{}}
	if Target() == TargetServer {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, err := newRealServer(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		r.real, r.logs, r.hostPort = s, s.logs, s.srv.Address()
		t.Cleanup(func() { _ = s.Stop() })
	} else {
		r.cli = TemporalCLI(t)
		hostPort, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		r.hostPort, r.dbFile = hostPort, filepath.Join(t.TempDir(), "temporal.db")
		t.Cleanup(func() {
			if r.dev != nil {
				_ = r.dev.Stop()
			}
		})
	}
	r.Start()
	return r
}

// HostPort is the frontend address, the same across restarts.
func (r *RestartableTemporal) HostPort() string { return r.hostPort }

// Start starts the server (again) and waits until it serves.
func (r *RestartableTemporal) Start() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r.real != nil {
		if err := r.real.srv.Start(ctx); err != nil {
			r.t.Fatalf("start the real Temporal server: %v\nserver output:\n%s", err, tail(r.logs.String(), 4000))
		}
		return
	}
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: r.cli, DBFilename: r.dbFile, LogLevel: "error", Stdout: r.logs, Stderr: r.logs,
		// Write-ahead log without an fsync per commit: ten times the throughput of the
		// default journal here (about 2 workflows/s otherwise), and still every commit
		// survives the server's own stop and restart, which is all these tests do to it.
		ExtraArgs:     []string{"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"},
		ClientOptions: &client.Options{HostPort: r.hostPort, Namespace: "default", Logger: QuietLogger()},
	})
	if err != nil {
		r.t.Fatalf("start the Temporal dev server: %v\nserver output:\n%s", err, r.logs.String())
	}
	r.dev = srv
}

// Stop stops the server: the real one with SIGTERM (a node drain), the dev server as
// testsuite does.
func (r *RestartableTemporal) Stop() {
	r.t.Helper()
	if r.real != nil {
		r.real.srv.Stop(30 * time.Second)
		return
	}
	if err := r.dev.Stop(); err != nil {
		r.t.Fatal(err)
	}
	r.dev = nil
}
