// Package testenv gives each test package real infrastructure: its own fresh,
// migrated PostgreSQL database and, when asked, a real Temporal dev server started
// from the locally built CLI. Missing infrastructure fails the test loudly; nothing
// here skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
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

var (
	dbOnce  sync.Once
	db      *bun.DB
	dbURL   string
	dbName  string
	dbErr   error
	tmpOnce sync.Once
	dev     *testsuite.DevServer
	devErr  error
)

// Main runs the package's tests, then drops the database and stops the dev server
// they used. Call it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if dev != nil {
		_ = dev.Stop()
	}
	if db != nil {
		_ = db.Close()
		if err := dropDatabase(dbName); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
		}
	}
	return code
}

// AdminURL is the server-level connection used to create and drop test databases.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// DB returns the package's database: created and migrated on first use.
func DB(t testing.TB) *bun.DB {
	t.Helper()
	dbOnce.Do(func() {
		var b [6]byte
		_, _ = rand.Read(b[:])
		dbName = "webhooks_test_" + hex.EncodeToString(b[:])
		dbURL, dbErr = createDatabase(dbName)
		if dbErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, dbErr = models.Open(ctx, dbURL, 20)
		if dbErr != nil {
			return
		}
		_, dbErr = migrations.Up(ctx, db)
	})
	if dbErr != nil {
		t.Fatalf("PostgreSQL is required (TEST_DATABASE_URL=%s; start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`): %v", AdminURL(), dbErr)
	}
	return db
}

// DatabaseURL is the URL of the package's database, for subprocesses under test.
func DatabaseURL(t testing.TB) string {
	DB(t)
	return dbURL
}

func createDatabase(name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin, err := models.Open(ctx, AdminURL(), 1)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(AdminURL())
	if err != nil {
		return "", fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin, err := models.Open(ctx, AdminURL(), 1)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// TemporalCLI finds the locally built Temporal CLI: $TEMPORAL_CLI, else bin/temporal
// at the repository root.
func TemporalCLI() (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/assetsup/webhooks\n") {
			p := filepath.Join(dir, "bin", "temporal")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%s is missing: run `make temporal` (it builds the CLI from source)", p)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("repository root not found from the working directory")
		}
		dir = parent
	}
}

// Temporal returns a client of the package's dev server, started on first use from
// the locally built CLI, in memory, with the delivery search attributes registered.
func Temporal(t testing.TB) client.Client {
	t.Helper()
	tmpOnce.Do(func() {
		var path string
		path, devErr = TemporalCLI()
		if devErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		dev, devErr = testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
			ExistingPath:     path,
			LogLevel:         "error",
			SearchAttributes: searchAttributes(),
			ClientOptions:    &client.Options{Namespace: "default", Logger: QuietLogger()},
		})
	})
	if devErr != nil {
		t.Fatalf("the Temporal dev server is required: %v", devErr)
	}
	return dev.Client()
}

// TemporalAddress is the package's dev server frontend address.
func TemporalAddress(t testing.TB) string {
	Temporal(t)
	return dev.FrontendHostPort()
}

// searchAttributes registers the delivery search attributes on the dev server.
func searchAttributes() temporal.SearchAttributes {
	var updates []temporal.SearchAttributeUpdate
	for _, k := range workflows.SearchAttributeKeys() {
		updates = append(updates, k.ValueSet(""))
	}
	return temporal.NewSearchAttributes(updates...)
}

// QuietLogger keeps the SDK's warnings and errors out of passing test output.
func QuietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Logs collects every log line the package's tests produce, so a test can assert
// what was, and was not, logged (secrets, tokens, query strings).
var Logs = &LogBuffer{}

// LogBuffer is a concurrency-safe log sink.
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

// Logger is a debug-level JSON logger writing into Logs. It outlives single tests on
// purpose: worker goroutines may log after the test that started them has finished.
func Logger(testing.TB) *slog.Logger {
	return slog.New(slog.NewJSONHandler(Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Binary returns the path of a binary `make build` wrote into bin/, failing the test
// loudly when it is missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	cli, err := TemporalCLI()
	if err != nil {
		t.Fatalf("locate bin/: %v", err)
	}
	p := filepath.Join(filepath.Dir(cli), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run `make build` (make test does)", p)
	}
	return p
}
