// Package cluster runs the production topology of docker-compose.yml as processes on
// loopback: the real Temporal server (built from source) on PostgreSQL persistence and
// advanced visibility, its Web UI, the migrations, several API replicas behind a
// round-robin balancer, and several worker replicas. `make prod-local` runs it
// (cmd/prodlocal); the cluster tests and the production-stack benchmark start it to
// kill, restart and measure its parts.
package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// Options describe the stack.
type Options struct {
	// Root is the repository root: bin/webhooks, bin/temporal-server,
	// bin/temporal-sql-tool, bin/temporal-ui and deploy/temporal/dynamicconfig.yaml.
	Root string
	// StateDir keeps the generated server configuration and one log file per process.
	StateDir string
	// AdminURL reaches the PostgreSQL server that holds all three databases.
	AdminURL string
	// Temporal's databases, frontend address, shards, namespace and internal ports.
	TemporalDatabase, VisibilityDatabase string
	FrontendAddr                         string
	TemporalPorts                        Ports
	HistoryShards                        int
	Namespace                            string
	TemporalLogLevel                     string
	// TemporalMaxConns and TemporalVisibilityMaxConns cap each Temporal service's pools
	// (see TemporalOptions); zero keeps the server's defaults.
	TemporalMaxConns, TemporalVisibilityMaxConns int
	// UIAddr is where the Temporal Web UI listens; empty runs none.
	UIAddr string
	// CodecAddr runs `webhooks codec-server` there (Env must hold the payload keys and
	// CODEC_SERVER_TOKEN), and points the Web UI at it; empty runs none.
	CodecAddr string
	// AppDatabase is the service's own database.
	AppDatabase string
	// APIAddr is the balancer in front of the API replicas.
	APIAddr        string
	APIReplicas    int
	WorkerReplicas int
	// Env is the service's settings for every API and worker replica (keys, limits);
	// the replica's own addresses are added after it.
	Env []string
	// Logger receives the supervisor's progress.
	Logger *slog.Logger
}

// Cluster is the running stack.
type Cluster struct {
	opts     Options
	logs     string
	Temporal *Temporal
	UI       *Process
	Codec    *Process
	APIs     []*Process
	Workers  []*Process
	apiAddrs []string
	metrics  []string
	lb       *http.Server
	lbErr    chan error
	files    []*os.File
}

// Start brings the stack up in dependency order and returns once every part answers.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Logger == nil {
		opts.Logger = discardLogger
	}
	c := &Cluster{opts: opts, logs: filepath.Join(opts.StateDir, "logs")}
	if err := c.start(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	opts := c.opts
	if err := os.MkdirAll(c.logs, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", c.logs, err)
	}
	if err := c.startTemporal(ctx); err != nil {
		return err
	}
	if opts.CodecAddr != "" {
		if err := c.startCodec(ctx); err != nil {
			return err
		}
	}
	if opts.UIAddr != "" {
		if err := c.startUI(ctx); err != nil {
			return err
		}
	}
	if err := createDatabase(ctx, opts.AdminURL, opts.AppDatabase); err != nil {
		return err
	}
	out, err := c.logFile("migrate")
	if err != nil {
		return err
	}
	if err := runOnce(ctx, out, c.appEnv(), c.bin("webhooks"), "migrate"); err != nil {
		return err
	}
	opts.Logger.Info("migrations applied", "database", opts.AppDatabase)
	for range opts.WorkerReplicas {
		if _, err := c.AddWorker(ctx); err != nil {
			return err
		}
	}
	for range opts.APIReplicas {
		if _, err := c.addAPI(ctx); err != nil {
			return err
		}
	}
	if err := c.startBalancer(); err != nil {
		return err
	}
	return nil
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.opts.Root, "bin", name) }

func (c *Cluster) logFile(name string) (io.Writer, error) {
	f, err := logFile(filepath.Join(c.logs, name+".log"))
	if err != nil {
		return nil, err
	}
	c.files = append(c.files, f)
	return f, nil
}

// LogDir is where each process writes its log (<name>.log).
func (c *Cluster) LogDir() string { return c.logs }

func (c *Cluster) startTemporal(ctx context.Context) error {
	out, err := c.logFile("temporal-server")
	if err != nil {
		return err
	}
	c.Temporal, err = NewTemporal(ctx, TemporalOptions{
		ServerBin: c.bin("temporal-server"), SQLToolBin: c.bin("temporal-sql-tool"),
		DynamicConfig: filepath.Join(c.opts.Root, "deploy", "temporal", "dynamicconfig.yaml"),
		AdminURL:      c.opts.AdminURL, Database: c.opts.TemporalDatabase, VisibilityDatabase: c.opts.VisibilityDatabase,
		FrontendAddr: c.opts.FrontendAddr, Ports: c.opts.TemporalPorts, HistoryShards: c.opts.HistoryShards,
		Namespace: c.opts.Namespace, StateDir: filepath.Join(c.opts.StateDir, "temporal"), LogLevel: c.opts.TemporalLogLevel, Out: out,
		MaxConns: c.opts.TemporalMaxConns, VisibilityMaxConns: c.opts.TemporalVisibilityMaxConns,
	})
	if err != nil {
		return err
	}
	started := time.Now()
	if err := c.Temporal.Start(ctx); err != nil {
		return err
	}
	c.opts.Logger.Info("temporal server serving", "address", c.opts.FrontendAddr, "took", time.Since(started).Round(time.Millisecond))
	return nil
}

func (c *Cluster) startUI(ctx context.Context) error {
	host, port, err := net.SplitHostPort(c.opts.UIAddr)
	if err != nil {
		return fmt.Errorf("UI address %q: %w", c.opts.UIAddr, err)
	}
	out, err := c.logFile("temporal-ui")
	if err != nil {
		return err
	}
	args := []string{"--address", c.opts.FrontendAddr, "--ip", host, "--port", port, "--namespace", c.namespace()}
	if c.opts.CodecAddr != "" {
		args = append(args, "--codec-endpoint", "http://"+c.opts.CodecAddr)
	}
	c.UI = newProcess("temporal-ui", out, os.Environ(), c.bin("temporal-ui"), args...)
	if err := c.UI.Start(); err != nil {
		return err
	}
	return c.UI.waitHTTP(ctx, "http://"+c.opts.UIAddr+"/")
}

// startCodec runs the codec server the Web UI decrypts payloads through.
func (c *Cluster) startCodec(ctx context.Context) error {
	out, err := c.logFile("codec-server")
	if err != nil {
		return err
	}
	origins := "http://" + c.opts.UIAddr
	if host, port, err := net.SplitHostPort(c.opts.UIAddr); err == nil && host == "127.0.0.1" {
		origins += ",http://localhost:" + port
	}
	c.Codec = newProcess("codec-server", out, c.appEnv("CODEC_SERVER_ADDR="+c.opts.CodecAddr, "CODEC_SERVER_ALLOWED_ORIGINS="+origins),
		c.bin("webhooks"), "codec-server")
	if err := c.Codec.Start(); err != nil {
		return err
	}
	return c.Codec.waitHTTP(ctx, "http://"+c.opts.CodecAddr+"/healthz")
}

func (c *Cluster) namespace() string {
	if c.opts.Namespace == "" {
		return "default"
	}
	return c.opts.Namespace
}

// appEnv is the environment of the service's processes: the stack's addresses, then
// the caller's settings (which win).
func (c *Cluster) appEnv(extra ...string) []string {
	u, _ := url.Parse(c.opts.AdminURL)
	u.Path = "/" + c.opts.AppDatabase
	env := append(os.Environ(),
		"DATABASE_URL="+u.String(),
		"TEMPORAL_ADDRESS="+c.opts.FrontendAddr,
		"TEMPORAL_NAMESPACE="+c.namespace(),
	)
	env = append(env, c.opts.Env...)
	return append(env, extra...)
}

// AddWorker starts one more worker replica and waits until it is ready.
func (c *Cluster) AddWorker(ctx context.Context) (*Process, error) {
	i := len(c.Workers)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	name := "worker-" + strconv.Itoa(i+1)
	out, err := c.logFile(name)
	if err != nil {
		return nil, err
	}
	p := newProcess(name, out, c.appEnv("METRICS_ADDR="+addr), c.bin("webhooks"), "worker")
	c.Workers, c.metrics = append(c.Workers, p), append(c.metrics, addr)
	if err := c.StartWorker(ctx, i); err != nil {
		return nil, err
	}
	return p, nil
}

// StartWorker starts worker replica i again (after Kill or Terminate) and waits until
// it is ready.
func (c *Cluster) StartWorker(ctx context.Context, i int) error {
	p := c.Workers[i]
	if err := p.Start(); err != nil {
		return err
	}
	if err := p.waitHTTP(ctx, c.WorkerURL(i)+"/readyz"); err != nil {
		return err
	}
	c.opts.Logger.Info("worker ready", "replica", p.Name, "pid", p.Pid(), "metrics", c.WorkerURL(i)+"/metrics")
	return nil
}

// WorkerURL is the base URL of worker replica i's metrics and probe server.
func (c *Cluster) WorkerURL(i int) string { return "http://" + c.metrics[i] }

func (c *Cluster) addAPI(ctx context.Context) (*Process, error) {
	i := len(c.APIs)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	name := "api-" + strconv.Itoa(i+1)
	out, err := c.logFile(name)
	if err != nil {
		return nil, err
	}
	p := newProcess(name, out, c.appEnv("HTTP_ADDR="+addr), c.bin("webhooks"), "api")
	c.APIs, c.apiAddrs = append(c.APIs, p), append(c.apiAddrs, addr)
	if err := c.StartAPI(ctx, i); err != nil {
		return nil, err
	}
	return p, nil
}

// StartAPI starts API replica i again and waits until it is ready.
func (c *Cluster) StartAPI(ctx context.Context, i int) error {
	p := c.APIs[i]
	if err := p.Start(); err != nil {
		return err
	}
	if err := p.waitHTTP(ctx, "http://"+c.apiAddrs[i]+"/readyz"); err != nil {
		return err
	}
	c.opts.Logger.Info("api ready", "replica", p.Name, "pid", p.Pid(), "addr", c.apiAddrs[i])
	return nil
}

func (c *Cluster) startBalancer() error {
	backends := make([]string, len(c.apiAddrs))
	for i, a := range c.apiAddrs {
		backends[i] = "http://" + a
	}
	b, err := NewBalancer(backends)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.opts.APIAddr)
	if err != nil {
		return fmt.Errorf("balancer: %w", err)
	}
	c.lb = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	c.lbErr = make(chan error, 1)
	go func() { c.lbErr <- c.lb.Serve(ln) }()
	c.opts.Logger.Info("api balancer listening", "addr", ln.Addr().String(), "replicas", len(backends))
	return nil
}

// UIAddr is where the Temporal Web UI listens.
func (c *Cluster) UIAddr() string { return c.opts.UIAddr }

// APIURL is the base URL of the balancer in front of the API replicas.
func (c *Cluster) APIURL() string { return "http://" + c.opts.APIAddr }

// BalancerErr reports the balancer's end, for a supervisor that waits on it.
func (c *Cluster) BalancerErr() <-chan error { return c.lbErr }

// Stop stops everything in reverse order: the balancer, the APIs, the workers (each
// given its shutdown grace), the UI and the server.
func (c *Cluster) Stop() {
	if c.lb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.lb.Shutdown(ctx)
		cancel()
	}
	for _, p := range append(append([]*Process{}, c.APIs...), c.Workers...) {
		p.Terminate(30 * time.Second)
	}
	for _, p := range []*Process{c.UI, c.Codec} {
		if p != nil {
			p.Terminate(5 * time.Second)
		}
	}
	if c.Temporal != nil {
		c.Temporal.Stop(30 * time.Second)
	}
	for _, f := range c.files {
		_ = f.Close()
	}
}

func freeAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(port), nil
}
