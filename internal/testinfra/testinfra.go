// Package testinfra is the real infrastructure tests run against: each test package's
// own fresh, migrated PostgreSQL database (dropped by Main), a private PostgreSQL server
// for tests that stop it, the Temporal dev server started from the locally built CLI with
// the delivery search attributes, and the binaries `make build` writes into bin/.
//
// Under `go test -short` whatever needs that infrastructure skips, so the short run
// needs neither PostgreSQL nor Temporal; in the full run (`make test`) missing
// infrastructure fails the test loudly and never skips. Fixtures (webhooks, receivers,
// workers) live in testfixture.
package testinfra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/assetsup/webhooks/migrations"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/workflows"
)

// The package's shared infrastructure, created on first use so that a package (or a
// -short run) that uses none of it never connects to anything.
var (
	dbOnce  sync.Once
	db      *Database
	dbErr   error
	tmpOnce sync.Once
	dev     temporalServer
	devErr  error
)

// Main runs the package's tests, then drops the database and stops the dev server
// they used, if they used any. Call it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	for i := len(atExit) - 1; i >= 0; i-- {
		atExit[i]()
	}
	if dev != nil {
		_ = dev.Stop()
	}
	if db != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "testinfra:", err)
		}
	}
	return code
}

// atExit are the package's own shared resources to release after its tests.
var atExit []func()

// AtExit runs f after the package's tests, before Main releases its database and
// Temporal: for what a package starts once and shares between its tests.
func AtExit(f func()) { atExit = append(atExit, f) }

// NeedsFullSuite skips t under -short, saying what it needs; tests that need something
// this package does not start (npm) call it themselves.
func NeedsFullSuite(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s: skipped under -short; the full suite (make test) runs it", what)
	}
}

// AdminURL is the server-level connection used to create and drop test databases.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Database is a fresh, migrated database created on a server for one user: a test
// package, or one benchmark run.
type Database struct {
	Name     string
	URL      string
	DB       *bun.DB
	adminURL string
}

// NewDatabase creates a database named prefix plus random hex on the server adminURL
// reaches, and opens it migrated with up to maxConns connections.
func NewDatabase(ctx context.Context, adminURL, prefix string, maxConns int) (*Database, error) {
	d := &Database{Name: prefix + RandomHex(6), adminURL: adminURL}
	if err := d.admin(ctx, "CREATE DATABASE "+d.Name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", d.Name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("parse the admin URL: %w", err), d.Drop(ctx))
	}
	u.Path = "/" + d.Name
	d.URL = u.String()
	if d.DB, err = models.Open(ctx, d.URL, maxConns); err != nil {
		return nil, errors.Join(err, d.Drop(ctx))
	}
	if _, err := migrations.Up(ctx, d.DB); err != nil {
		return nil, errors.Join(fmt.Errorf("migrate: %w", err), d.Drop(ctx))
	}
	return d, nil
}

// Drop closes the database and drops it, cutting any connection still open.
func (d *Database) Drop(ctx context.Context) error {
	if d.DB != nil {
		_ = d.DB.Close()
	}
	if err := d.admin(ctx, "DROP DATABASE IF EXISTS "+d.Name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	return nil
}

func (d *Database) admin(ctx context.Context, stmt string) error {
	admin, err := models.Open(ctx, d.adminURL, 1)
	if err != nil {
		return err
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, stmt)
	return err
}

// DB returns the package's database: created and migrated on first use.
func DB(t testing.TB) *bun.DB {
	t.Helper()
	NeedsFullSuite(t, "PostgreSQL")
	dbOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, dbErr = NewDatabase(ctx, AdminURL(), "webhooks_test_", 20)
	})
	if dbErr != nil {
		t.Fatalf("PostgreSQL is required (TEST_DATABASE_URL=%s; start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`): %v", AdminURL(), dbErr)
	}
	return db.DB
}

// DatabaseURL is the URL of the package's database, for subprocesses under test.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	DB(t)
	return db.URL
}

// RepoRoot walks up from the working directory to the root module's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/assetsup/webhooks\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found from the working directory (no go.mod of github.com/assetsup/webhooks above it)")
		}
		dir = parent
	}
}

// binPath is bin/name at the repository root, with the make target that builds it.
func binPath(name, target string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is missing: run `make %s` (make test does)", p, target)
	}
	return p, nil
}

// TemporalCLI returns the locally built Temporal CLI (see temporalCLI), failing the
// test loudly when it is missing.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	NeedsFullSuite(t, "the Temporal CLI")
	p, err := temporalCLI()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// temporalCLI finds the locally built Temporal CLI: $TEMPORAL_CLI, else bin/temporal
// at the repository root.
func temporalCLI() (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	return binPath("temporal", "temporal")
}

// TemporalServer returns the locally built real Temporal server (bin/temporal-server,
// with bin/temporal-sql-tool and bin/temporal-ui beside it), failing the test loudly
// when it is missing.
func TemporalServer(t testing.TB) string {
	t.Helper()
	NeedsFullSuite(t, "the Temporal server")
	p, err := binPath("temporal-server", "temporal-server")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Binary returns the path of a binary `make build` wrote into bin/, failing the test
// loudly when it is missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	NeedsFullSuite(t, "bin/"+name)
	p, err := binPath(name, "build")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SearchAttributes are the delivery search attributes, for registering on a dev server.
func SearchAttributes() temporal.SearchAttributes {
	var updates []temporal.SearchAttributeUpdate
	for _, k := range workflows.SearchAttributeKeys() {
		updates = append(updates, k.ValueSet(""))
	}
	return temporal.NewSearchAttributes(updates...)
}

// StartDevServer starts a Temporal dev server with the delivery search attributes
// registered: from opts.ExistingPath, else the locally built CLI; its client logs
// nowhere unless opts.ClientOptions says otherwise.
func StartDevServer(ctx context.Context, opts testsuite.DevServerOptions) (*testsuite.DevServer, error) {
	if opts.ExistingPath == "" {
		p, err := temporalCLI()
		if err != nil {
			return nil, err
		}
		opts.ExistingPath = p
	}
	opts.SearchAttributes = SearchAttributes()
	if opts.ClientOptions == nil {
		opts.ClientOptions = &client.Options{Namespace: "default", Logger: QuietLogger()}
	}
	return testsuite.StartDevServer(ctx, opts)
}

// Temporal returns a client of the package's Temporal, started on first use with the
// delivery search attributes registered: the dev server from the locally built CLI, in
// memory, or in the server target (Target) the real server on PostgreSQL.
func Temporal(t testing.TB) client.Client {
	t.Helper()
	NeedsFullSuite(t, "Temporal")
	tmpOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		dev, devErr = startPackageTemporal(ctx)
	})
	if devErr != nil {
		t.Fatalf("Temporal (target %s) is required: %v", Target(), devErr)
	}
	return dev.Client()
}

// TemporalAddress is the package's Temporal frontend address.
func TemporalAddress(t testing.TB) string {
	t.Helper()
	Temporal(t)
	return dev.FrontendHostPort()
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// QuietLogger keeps the SDK's warnings and errors out of passing test output.
func QuietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// LogBuffer is a concurrency-safe log sink, so a test can assert what was, and was
// not, logged (secrets, tokens, query strings). A package that asserts on logs keeps
// one for all its tests: worker goroutines may log after the test that started them
// has finished.
type LogBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger is a debug-level JSON logger writing into b.
func (b *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// RandomHex is n random bytes in hex, for names and throwaway secrets.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
