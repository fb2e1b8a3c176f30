package testinfra

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/migrations"
	"github.com/assetsup/webhooks/models"
)

// PrivatePostgres is a PostgreSQL server of one test's own, so the test can restart it
// without disturbing other packages that share the machine's server.
type PrivatePostgres struct {
	t    testing.TB
	bin  string
	dir  string
	Port int
}

// StartPrivatePostgres initialises and starts a throwaway cluster on a free loopback
// port, run as the postgres system user (the server refuses to run as root).
func StartPrivatePostgres(t testing.TB) *PrivatePostgres {
	t.Helper()
	NeedsFullSuite(t, "a private PostgreSQL server")
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatal("initdb not found under /usr/lib/postgresql: the PostgreSQL server package is required")
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "webhooks-pg-")
	if err != nil {
		t.Fatal(err)
	}
	// The postgres user must reach and own its data directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	p := &PrivatePostgres{t: t, bin: bin, dir: dir, Port: port}
	p.run("chown", "-R", "postgres:postgres", dir)
	p.asPostgres(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
	p.Start()
	t.Cleanup(func() {
		_ = exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"), "-D", filepath.Join(dir, "data"), "-m", "immediate", "stop").Run()
		_ = os.RemoveAll(dir)
	})
	return p
}

// Start starts the server and waits until it accepts connections.
func (p *PrivatePostgres) Start() {
	p.t.Helper()
	p.asPostgres(filepath.Join(p.bin, "pg_ctl"), "-D", filepath.Join(p.dir, "data"), "-w", "-l", filepath.Join(p.dir, "log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.Port, p.dir), "start")
}

// Stop stops the server (fast: open connections are cut), as a failover or a
// maintenance window does.
func (p *PrivatePostgres) Stop() {
	p.t.Helper()
	p.asPostgres(filepath.Join(p.bin, "pg_ctl"), "-D", filepath.Join(p.dir, "data"), "-m", "fast", "-w", "stop")
}

// Restart stops the server and starts it again.
func (p *PrivatePostgres) Restart() {
	p.t.Helper()
	p.Stop()
	time.Sleep(500 * time.Millisecond)
	p.Start()
}

// URL is the connection URL of database name on the private server.
func (p *PrivatePostgres) URL(name string) string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(p.Port) + "/" + name + "?sslmode=disable"
}

// Open returns a migrated database on the private server.
func (p *PrivatePostgres) Open() *bun.DB {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := models.Open(ctx, p.URL("postgres"), 10)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { _ = db.Close() })
	if _, err := migrations.Up(ctx, db); err != nil {
		p.t.Fatal(err)
	}
	return db
}

func (p *PrivatePostgres) asPostgres(args ...string) {
	p.t.Helper()
	p.run(append([]string{"runuser", "-u", "postgres", "--"}, args...)...)
}

func (p *PrivatePostgres) run(args ...string) {
	p.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("%v: %v\n%s", args, err, out)
	}
}
