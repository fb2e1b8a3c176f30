package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/assetsup/webhooks/deliveryworker"
	"github.com/assetsup/webhooks/models"
)

// TemporalOptions describe one Temporal server process with PostgreSQL persistence and
// advanced visibility, every service (frontend, history, matching, worker) in one
// process, as the compose stack's temporalio/auto-setup container runs it.
type TemporalOptions struct {
	// ServerBin and SQLToolBin are `go.temporal.io/server` cmd/server and
	// cmd/tools/sql, built by `make temporal-server`.
	ServerBin, SQLToolBin string
	// DynamicConfig is the file compose mounts too (deploy/temporal/dynamicconfig.yaml).
	DynamicConfig string
	// AdminURL reaches the PostgreSQL server as a role that may create databases.
	AdminURL string
	// Database and VisibilityDatabase are created (if missing) and given the server's
	// schemas on that PostgreSQL server.
	Database, VisibilityDatabase string
	// FrontendAddr is the gRPC frontend clients dial (127.0.0.1:7233); the other
	// services listen on free loopback ports unless Ports says otherwise.
	FrontendAddr string
	Ports        Ports
	// HistoryShards is fixed when the cluster's database is first set up.
	HistoryShards int
	Namespace     string
	// Retention of closed workflows in the namespace.
	Retention time.Duration
	// MaxConns and VisibilityMaxConns cap each service's connection pool to the
	// persistence and visibility databases (one process runs four services, each with
	// its pools); zero means 20 and 10, the server's development defaults.
	MaxConns, VisibilityMaxConns int
	// StateDir holds the generated server configuration.
	StateDir string
	LogLevel string
	// Out receives the server's and the schema tool's output.
	Out io.Writer
}

// Ports are the server's internal ports (gRPC and membership of each service, the
// frontend's HTTP API, Prometheus metrics); zero picks a free one.
type Ports struct {
	FrontendMembership, FrontendHTTP  int
	History, HistoryMembership        int
	Matching, MatchingMembership      int
	Worker, WorkerMembership, Metrics int
}

// Temporal is a Temporal server on PostgreSQL that can be stopped, killed and started
// again on the same databases and ports, as a node restart or a deploy does.
type Temporal struct {
	opts TemporalOptions
	proc *Process
	pg   pgTarget
}

type pgTarget struct{ host, port, user, password string }

// NewTemporal prepares the databases, their schemas and the configuration; Start runs
// the server.
func NewTemporal(ctx context.Context, opts TemporalOptions) (*Temporal, error) {
	if opts.HistoryShards == 0 {
		opts.HistoryShards = 4
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Retention == 0 {
		opts.Retention = 72 * time.Hour
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 20
	}
	if opts.VisibilityMaxConns == 0 {
		opts.VisibilityMaxConns = 10
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	pg, err := parsePG(opts.AdminURL)
	if err != nil {
		return nil, err
	}
	if err := opts.Ports.fill(); err != nil {
		return nil, err
	}
	t := &Temporal{opts: opts, pg: pg}
	for _, db := range []struct{ name, schema string }{
		{opts.Database, "postgresql/v12/temporal"},
		{opts.VisibilityDatabase, "postgresql/v12/visibility"},
	} {
		if err := t.setupSchema(ctx, db.name, db.schema); err != nil {
			return nil, err
		}
	}
	configDir := filepath.Join(opts.StateDir, "config")
	if err := os.MkdirAll(configDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", configDir, err)
	}
	if err := t.writeConfig(filepath.Join(configDir, "production.yaml")); err != nil {
		return nil, err
	}
	t.proc = newProcess("temporal-server", opts.Out, os.Environ(), opts.ServerBin,
		"--root", opts.StateDir, "--config", "config", "--env", "production", "--allow-no-auth", "start")
	return t, nil
}

func parsePG(adminURL string) (pgTarget, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return pgTarget{}, fmt.Errorf("parse the PostgreSQL admin URL: %w", err)
	}
	pw, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return pgTarget{host: u.Hostname(), port: port, user: u.User.Username(), password: pw}, nil
}

func (p *Ports) fill() error {
	for _, port := range []*int{&p.FrontendMembership, &p.FrontendHTTP, &p.History, &p.HistoryMembership,
		&p.Matching, &p.MatchingMembership, &p.Worker, &p.WorkerMembership, &p.Metrics} {
		if *port != 0 {
			continue
		}
		n, err := freeLowPort()
		if err != nil {
			return err
		}
		*port = n
	}
	return nil
}

// freeLowPort is a free port below 32768: the server stores its membership ports in a
// smallint column, and the kernel's ephemeral ports lie above that.
func freeLowPort() (int, error) {
	for range 100 {
		port := 20000 + mathrand.IntN(12000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		_ = ln.Close()
		return port, nil
	}
	return 0, errors.New("no free port below 32768")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// setupSchema creates db when missing and brings it to the server's schema with the
// server's own tool, as temporalio/auto-setup does; all three steps are idempotent.
func (t *Temporal) setupSchema(ctx context.Context, db, schema string) error {
	if err := createDatabase(ctx, t.opts.AdminURL, db); err != nil {
		return err
	}
	base := []string{"--plugin", "postgres12", "--ep", t.pg.host, "-p", t.pg.port, "-u", t.pg.user, "--db", db}
	if t.pg.password != "" {
		base = append(base, "--pw", t.pg.password)
	}
	for _, step := range [][]string{
		{"setup-schema", "-v", "0.0"},
		{"update-schema", "--schema-name", schema},
	} {
		if err := runOnce(ctx, t.opts.Out, os.Environ(), t.opts.SQLToolBin, append(base, step...)...); err != nil {
			return fmt.Errorf("schema of %s: %w", db, err)
		}
	}
	return nil
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	admin, err := models.Open(ctx, adminURL, 1)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close()
	var exists bool
	if err := admin.NewRaw("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ?)", name).Scan(ctx, &exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name)); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DropDatabases removes the server's databases (for tests; the server must be stopped).
func (t *Temporal) DropDatabases(ctx context.Context) error {
	admin, err := models.Open(ctx, t.opts.AdminURL, 1)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer admin.Close()
	var errs []error
	for _, db := range []string{t.opts.Database, t.opts.VisibilityDatabase} {
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(db)+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", db, err))
		}
	}
	return errors.Join(errs...)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// serverConfig is the shape of the server's development-postgres12.yaml, with every
// service on loopback and the dynamic configuration compose mounts.
var serverConfig = template.Must(template.New("server").Parse(`# Generated by internal/cluster: do not edit.
log:
  stdout: true
  level: {{.LogLevel}}
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: {{.HistoryShards}}
  datastores:
    postgres-default:
      sql:
        pluginName: postgres12
        databaseName: {{.Database}}
        connectAddr: "{{.PGAddr}}"
        connectProtocol: tcp
        user: "{{.PGUser}}"
        password: "{{.PGPassword}}"
        maxConns: {{.MaxConns}}
        maxIdleConns: {{.MaxConns}}
        maxConnLifetime: 1h
    postgres-visibility:
      sql:
        pluginName: postgres12
        databaseName: {{.VisibilityDatabase}}
        connectAddr: "{{.PGAddr}}"
        connectProtocol: tcp
        user: "{{.PGUser}}"
        password: "{{.PGPassword}}"
        maxConns: {{.VisibilityMaxConns}}
        maxIdleConns: {{.VisibilityMaxConns}}
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:{{.Ports.Metrics}}"
services:
  frontend:
    rpc:
      grpcPort: {{.FrontendPort}}
      membershipPort: {{.Ports.FrontendMembership}}
      httpPort: {{.Ports.FrontendHTTP}}
      bindOnIP: 127.0.0.1
  history:
    rpc:
      grpcPort: {{.Ports.History}}
      membershipPort: {{.Ports.HistoryMembership}}
      bindOnIP: 127.0.0.1
  matching:
    rpc:
      grpcPort: {{.Ports.Matching}}
      membershipPort: {{.Ports.MatchingMembership}}
      bindOnIP: 127.0.0.1
  worker:
    rpc:
      grpcPort: {{.Ports.Worker}}
      membershipPort: {{.Ports.WorkerMembership}}
      bindOnIP: 127.0.0.1
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:{{.FrontendPort}}"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: "{{.DynamicConfig}}"
  pollInterval: 10s
`))

func (t *Temporal) writeConfig(path string) error {
	_, port, err := net.SplitHostPort(t.opts.FrontendAddr)
	if err != nil {
		return fmt.Errorf("frontend address %q: %w", t.opts.FrontendAddr, err)
	}
	dc, err := filepath.Abs(t.opts.DynamicConfig)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write server config: %w", err)
	}
	defer f.Close()
	return serverConfig.Execute(f, map[string]any{
		"LogLevel": t.opts.LogLevel, "HistoryShards": t.opts.HistoryShards,
		"Database": t.opts.Database, "VisibilityDatabase": t.opts.VisibilityDatabase,
		"PGAddr": net.JoinHostPort(t.pg.host, t.pg.port), "PGUser": t.pg.user, "PGPassword": t.pg.password,
		"Ports": t.opts.Ports, "FrontendPort": port, "DynamicConfig": dc,
		"MaxConns": t.opts.MaxConns, "VisibilityMaxConns": t.opts.VisibilityMaxConns,
	})
}

// Address is the frontend's gRPC address.
func (t *Temporal) Address() string { return t.opts.FrontendAddr }

// MetricsURL is the server's Prometheus endpoint.
func (t *Temporal) MetricsURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(t.opts.Ports.Metrics) + "/metrics"
}

// Process is the server's process, for faults (Kill, Terminate) and CPU accounting.
func (t *Temporal) Process() *Process { return t.proc }

// Start runs the server and returns once its namespace takes workflows, with the
// delivery search attributes registered in its visibility store.
func (t *Temporal) Start(ctx context.Context) error {
	if err := t.proc.Start(); err != nil {
		return err
	}
	c, err := t.waitServing(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := t.ensureNamespace(ctx, c); err != nil {
		return err
	}
	return t.waitNamespace(ctx)
}

// Stop terminates the server gracefully (within grace), as a node drain does.
func (t *Temporal) Stop(grace time.Duration) { t.proc.Terminate(grace) }

func (t *Temporal) waitServing(ctx context.Context) (client.Client, error) {
	for {
		if !t.proc.Running() {
			return nil, errors.New("temporal server exited while starting (see its log)")
		}
		c, err := client.DialContext(ctx, client.Options{HostPort: t.opts.FrontendAddr, Namespace: "temporal-system", Logger: quiet()})
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("temporal server at %s not serving: %w", t.opts.FrontendAddr, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (t *Temporal) ensureNamespace(ctx context.Context, c client.Client) error {
	_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        t.opts.Namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(t.opts.Retention),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register namespace %s: %w", t.opts.Namespace, err)
	}
	return nil
}

// waitNamespace waits until a new namespace has reached every service's cache (a
// workflow starts and visibility answers), registering the search attributes on the way.
func (t *Temporal) waitNamespace(ctx context.Context) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: t.opts.FrontendAddr, Namespace: t.opts.Namespace, Logger: quiet()})
	if err != nil {
		return fmt.Errorf("dial temporal: %w", err)
	}
	defer c.Close()
	var last error
	for {
		if last = t.probe(ctx, c); last == nil {
			return nil
		}
		if !t.proc.Running() {
			return errors.New("temporal server exited while starting (see its log)")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s not ready: %w", t.opts.Namespace, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (t *Temporal) probe(ctx context.Context, c client.Client) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := deliveryworker.EnsureSearchAttributes(pctx, c, t.opts.Namespace); err != nil {
		return err
	}
	id := "cluster-probe-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	run, err := c.ExecuteWorkflow(pctx, client.StartWorkflowOptions{ID: id, TaskQueue: "cluster-probe"}, "ClusterProbe")
	if err != nil {
		return err
	}
	if err := c.TerminateWorkflow(pctx, id, run.GetRunID(), "start-up probe"); err != nil {
		return err
	}
	_, err = c.CountWorkflow(pctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: t.opts.Namespace, Query: "WebhookId = 'probe'"})
	return err
}

func quiet() tlog.Logger {
	return tlog.NewStructuredLogger(discardLogger)
}
