// Package config reads the service's settings from the environment, once, at start-up.
//
// Every limit, timeout and retry setting lives here with a development-friendly
// default, so operators and tests change behaviour without a rebuild.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/payloadcodec"
	"github.com/assetsup/webhooks/portal"
	"github.com/assetsup/webhooks/secrets"
)

// Config is every setting of every subcommand. Field tags name the environment variable.
type Config struct {
	DatabaseURL          string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/webhooks?sslmode=disable"`
	DatabaseMaxOpenConns int    `env:"DATABASE_MAX_OPEN_CONNS" envDefault:"20"`

	HTTPAddr          string        `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	HTTPMaxBodyBytes  int64         `env:"HTTP_MAX_BODY_BYTES" envDefault:"65536"`
	HTTPReadTimeout   time.Duration `env:"HTTP_READ_TIMEOUT" envDefault:"10s"`
	HTTPWriteTimeout  time.Duration `env:"HTTP_WRITE_TIMEOUT" envDefault:"30s"`
	HTTPIdleTimeout   time.Duration `env:"HTTP_IDLE_TIMEOUT" envDefault:"60s"`
	ShutdownTimeout   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	APIRateLimit      float64       `env:"API_RATE_LIMIT" envDefault:"20"`
	APIRateBurst      int           `env:"API_RATE_BURST" envDefault:"40"`
	APIListCacheBytes int           `env:"API_LIST_CACHE_BYTES" envDefault:"33554432"`
	MetricsAddr       string        `env:"METRICS_ADDR" envDefault:"127.0.0.1:9090"`
	LogLevel          string        `env:"LOG_LEVEL" envDefault:"info"`

	JWTSecret string `env:"JWT_SECRET,unset"`

	// The webhook portal the API serves under /portal (docs/portal.md).
	PortalSessionTTL     time.Duration `env:"PORTAL_SESSION_TTL" envDefault:"1h"`
	PortalLinkTTL        time.Duration `env:"PORTAL_LINK_TTL" envDefault:"2m"`
	PortalFrameAncestors string        `env:"PORTAL_FRAME_ANCESTORS" envDefault:"'self'"`
	PortalPublicURL      string        `env:"PORTAL_PUBLIC_URL"`
	PortalTemporalUIURL  string        `env:"PORTAL_TEMPORAL_UI_URL"`

	SecretKey        string        `env:"WEBHOOK_SECRET_KEY,unset"`
	SecretKeyVersion int           `env:"WEBHOOK_SECRET_KEY_VERSION" envDefault:"1"`
	SecretOldKeys    string        `env:"WEBHOOK_SECRET_OLD_KEYS,unset"`
	SecretGrace      time.Duration `env:"WEBHOOK_SECRET_GRACE" envDefault:"24h"`

	AllowPrivateTargets bool   `env:"WEBHOOK_ALLOW_PRIVATE_TARGETS" envDefault:"false"`
	AllowedCIDRs        string `env:"WEBHOOK_ALLOWED_CIDRS"`
	MaxWebhooksPerUser  int    `env:"WEBHOOK_MAX_PER_USER" envDefault:"100"`

	TemporalAddress   string `env:"TEMPORAL_ADDRESS" envDefault:"127.0.0.1:7233"`
	TemporalNamespace string `env:"TEMPORAL_NAMESPACE" envDefault:"default"`
	TemporalTaskQueue string `env:"TEMPORAL_TASK_QUEUE" envDefault:"webhooks"`
	// TemporalTimeout bounds one API call to Temporal (start, health check).
	TemporalTimeout time.Duration `env:"TEMPORAL_RPC_TIMEOUT" envDefault:"5s"`
	// TemporalDialTimeout is how long the worker waits for Temporal at start-up.
	TemporalDialTimeout time.Duration `env:"TEMPORAL_DIAL_TIMEOUT" envDefault:"60s"`
	// The secured connection, under the names (and meanings) of Temporal's own clients,
	// the temporal CLI and go.temporal.io/sdk/contrib/envconfig included.
	TemporalAPIKey            string `env:"TEMPORAL_API_KEY,unset"`
	TemporalTLS               string `env:"TEMPORAL_TLS"`
	TemporalTLSServerCAPath   string `env:"TEMPORAL_TLS_SERVER_CA_CERT_PATH"`
	TemporalTLSClientCertPath string `env:"TEMPORAL_TLS_CLIENT_CERT_PATH"`
	TemporalTLSClientCertData string `env:"TEMPORAL_TLS_CLIENT_CERT_DATA"`
	TemporalTLSClientKeyPath  string `env:"TEMPORAL_TLS_CLIENT_KEY_PATH"`
	TemporalTLSClientKeyData  string `env:"TEMPORAL_TLS_CLIENT_KEY_DATA,unset"`
	TemporalTLSServerName     string `env:"TEMPORAL_TLS_SERVER_NAME"`

	// Encryption of workflow and activity payloads (payloadcodec): off while neither key is set.
	PayloadKey     string `env:"TEMPORAL_PAYLOAD_KEY,unset"`
	PayloadKeyID   string `env:"TEMPORAL_PAYLOAD_KEY_ID" envDefault:"1"`
	PayloadOldKeys string `env:"TEMPORAL_PAYLOAD_OLD_KEYS,unset"`

	CodecServerAddr         string `env:"CODEC_SERVER_ADDR" envDefault:"127.0.0.1:8234"`
	CodecServerToken        string `env:"CODEC_SERVER_TOKEN,unset"`
	CodecServerOrigins      string `env:"CODEC_SERVER_ALLOWED_ORIGINS" envDefault:"http://127.0.0.1:8233,http://localhost:8233"`
	CodecServerMaxBodyBytes int64  `env:"CODEC_SERVER_MAX_BODY_BYTES" envDefault:"4194304"`

	RetryMaxAttempts        int           `env:"WEBHOOK_RETRY_MAX_ATTEMPTS" envDefault:"3"`
	RetryInitialInterval    time.Duration `env:"WEBHOOK_RETRY_INITIAL_INTERVAL" envDefault:"5s"`
	RetryMaxInterval        time.Duration `env:"WEBHOOK_RETRY_MAX_INTERVAL" envDefault:"5m"`
	RetryBackoffCoefficient float64       `env:"WEBHOOK_RETRY_BACKOFF_COEFFICIENT" envDefault:"2"`
	RetryAfterMax           time.Duration `env:"WEBHOOK_RETRY_AFTER_MAX" envDefault:"10m"`
	HTTPTimeout             time.Duration `env:"WEBHOOK_HTTP_TIMEOUT" envDefault:"10s"`
	MaxResponseBytes        int64         `env:"WEBHOOK_MAX_RESPONSE_BYTES" envDefault:"65536"`
	MaxConnsPerHost         int           `env:"WEBHOOK_MAX_CONNS_PER_HOST" envDefault:"16"`
	ConnWaitTimeout         time.Duration `env:"WEBHOOK_CONN_WAIT_TIMEOUT" envDefault:"10s"`
	MaxEventDataBytes       int           `env:"WEBHOOK_MAX_EVENT_DATA_BYTES" envDefault:"262144"`
	TestTimeout             time.Duration `env:"WEBHOOK_TEST_TIMEOUT" envDefault:"15s"`
	DisableAfterFailures    int           `env:"WEBHOOK_DISABLE_AFTER_FAILURES" envDefault:"10"`
	DBRetryTimeout          time.Duration `env:"WEBHOOK_DB_RETRY_TIMEOUT" envDefault:"30s"`
	RecordRetryMaxInterval  time.Duration `env:"WEBHOOK_RECORD_RETRY_MAX_INTERVAL" envDefault:"30s"`
	DispatchPageSize        int           `env:"WEBHOOK_DISPATCH_PAGE_SIZE" envDefault:"100"`
	DispatchChildrenPerRun  int           `env:"WEBHOOK_DISPATCH_CHILDREN_PER_RUN" envDefault:"500"`
	DispatchInlineSingle    bool          `env:"WEBHOOK_DISPATCH_INLINE_SINGLE" envDefault:"true"`
	FirstAttemptLocal       bool          `env:"WEBHOOK_FIRST_ATTEMPT_LOCAL" envDefault:"true"`
	DeliveryRetention       time.Duration `env:"WEBHOOK_DELIVERY_RETENTION" envDefault:"720h"`
	PruneInterval           time.Duration `env:"WEBHOOK_DELIVERY_PRUNE_INTERVAL" envDefault:"1h"`

	// Endpoint controls: custom headers, payload filters, and the delivery rate applied
	// to webhooks that set none (0: unlimited).
	MaxHeaders       int           `env:"WEBHOOK_MAX_HEADERS" envDefault:"10"`
	MaxHeaderBytes   int           `env:"WEBHOOK_MAX_HEADER_BYTES" envDefault:"4096"`
	FilterMaxBytes   int           `env:"WEBHOOK_FILTER_MAX_BYTES" envDefault:"2048"`
	FilterCostLimit  uint64        `env:"WEBHOOK_FILTER_COST_LIMIT" envDefault:"10000"`
	DefaultRateLimit float64       `env:"WEBHOOK_DEFAULT_RATE_LIMIT" envDefault:"0"`
	DefaultRateBurst int           `env:"WEBHOOK_DEFAULT_RATE_BURST" envDefault:"1"`
	RateLimitHold    time.Duration `env:"WEBHOOK_RATE_LIMIT_HOLD" envDefault:"1s"`

	// Recovery, endpoint health and operational events (README "Nothing silently missed").
	// RecoverMaxWindow unset (0) is WEBHOOK_DELIVERY_RETENTION: see RecoverWindow.
	RecoverRate              float64       `env:"WEBHOOK_RECOVER_RATE" envDefault:"10"`
	RecoverMaxWindow         time.Duration `env:"WEBHOOK_RECOVER_MAX_WINDOW"`
	AlertAfterFailures       int           `env:"WEBHOOK_ALERT_AFTER_FAILURES" envDefault:"3"`
	OperationalWebhookURL    string        `env:"OPERATIONAL_WEBHOOK_URL"`
	OperationalWebhookSecret string        `env:"OPERATIONAL_WEBHOOK_SECRET,unset"`

	WorkerActivitySlots      int  `env:"WORKER_MAX_CONCURRENT_ACTIVITIES" envDefault:"200"`
	WorkerWorkflowTaskSlots  int  `env:"WORKER_MAX_CONCURRENT_WORKFLOW_TASKS" envDefault:"200"`
	WorkerLocalActivitySlots int  `env:"WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES" envDefault:"200"`
	WorkerPollers            int  `env:"WORKER_POLLERS" envDefault:"4"`
	WorkerPollerAutoscale    bool `env:"WORKER_POLLER_AUTOSCALE" envDefault:"true"`
	WorkerMaxPollers         int  `env:"WORKER_MAX_POLLERS" envDefault:"16"`
}

// Role is what a subcommand needs from the configuration.
type Role int

// The roles, one per subcommand that reads configuration.
const (
	RoleMigrate  Role = iota // the database
	RoleToken                // the JWT key
	RoleAPI                  // the API: database, JWT, secrets, Temporal, HTTP limits
	RoleWorker               // the worker: database, secrets, Temporal, delivery and worker settings
	RoleDispatch             // handing over an event: Temporal only
	RoleCodec                // the codec server: the payload keys and its HTTP settings
)

// Load parses the environment and validates what role needs, returning one error that
// names every problem found.
func Load(role Role) (Config, error) {
	return LoadFrom(role, env.ToMap(os.Environ()))
}

// LoadFrom is Load with the variables taken from environ instead of the process
// environment, for a tool that configures a service it runs (the benchmark).
func LoadFrom(role Role, environ map[string]string) (Config, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return Config{}, fmt.Errorf("invalid configuration: %w", nameVariables(err))
	}
	if err := c.Validate(role); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks the settings role uses.
func (c Config) Validate(role Role) error {
	var errs []error
	need := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	usesDB := role == RoleMigrate || role == RoleAPI || role == RoleWorker
	if usesDB {
		need(strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://"),
			"DATABASE_URL must be a postgres:// URL")
		need(c.DatabaseMaxOpenConns > 0, "DATABASE_MAX_OPEN_CONNS must be positive")
	}
	if role == RoleToken || role == RoleAPI {
		need(len(c.JWTSecret) >= 32, "JWT_SECRET is required and must be at least 32 characters (HS256 wants a 256-bit key)")
	}
	if role == RoleAPI || role == RoleWorker || role == RoleDispatch {
		if _, err := c.TemporalConnection(); err != nil {
			errs = append(errs, err)
		}
		if _, err := c.PayloadCodec(); err != nil {
			errs = append(errs, err)
		}
	}
	if role == RoleCodec {
		codec, err := c.PayloadCodec()
		if err != nil {
			errs = append(errs, err)
		}
		need(err != nil || codec != nil, "TEMPORAL_PAYLOAD_KEY (or TEMPORAL_PAYLOAD_OLD_KEYS) is required: the codec server decrypts with them")
		need(len(c.CodecServerToken) >= 32, "CODEC_SERVER_TOKEN is required and must be at least 32 characters (openssl rand -base64 32)")
		need(c.CodecServerAddr != "", "CODEC_SERVER_ADDR must not be empty")
		need(c.CodecServerMaxBodyBytes > 0, "CODEC_SERVER_MAX_BODY_BYTES must be positive")
		need(c.HTTPReadTimeout > 0 && c.HTTPWriteTimeout > 0 && c.HTTPIdleTimeout > 0, "HTTP_READ_TIMEOUT, HTTP_WRITE_TIMEOUT and HTTP_IDLE_TIMEOUT must be positive")
		if _, err := c.CodecServerOriginList(); err != nil {
			errs = append(errs, err)
		}
	}
	if role == RoleAPI || role == RoleWorker || role == RoleDispatch {
		need(c.TemporalAddress != "", "TEMPORAL_ADDRESS must not be empty")
		need(c.TemporalNamespace != "", "TEMPORAL_NAMESPACE must not be empty")
		need(c.TemporalTaskQueue != "", "TEMPORAL_TASK_QUEUE must not be empty")
		need(c.TemporalTimeout > 0 && c.TemporalDialTimeout > 0, "TEMPORAL_RPC_TIMEOUT and TEMPORAL_DIAL_TIMEOUT must be positive")
	}
	if role == RoleAPI || role == RoleWorker {
		if _, err := c.SecretBox(); err != nil {
			errs = append(errs, err)
		}
		if _, err := c.AddressPolicy(); err != nil {
			errs = append(errs, err)
		}
		need(c.HTTPTimeout > 0, "WEBHOOK_HTTP_TIMEOUT must be positive")
		need(c.TestTimeout > 0, "WEBHOOK_TEST_TIMEOUT must be positive")
		need(c.SecretGrace >= 0, "WEBHOOK_SECRET_GRACE must not be negative")
		need(c.RetryMaxAttempts >= 1, "WEBHOOK_RETRY_MAX_ATTEMPTS must be 1 or more")
		need(c.RetryInitialInterval > 0, "WEBHOOK_RETRY_INITIAL_INTERVAL must be positive")
		need(c.RetryMaxInterval >= c.RetryInitialInterval, "WEBHOOK_RETRY_MAX_INTERVAL must be at least WEBHOOK_RETRY_INITIAL_INTERVAL")
		need(c.RetryBackoffCoefficient >= 1, "WEBHOOK_RETRY_BACKOFF_COEFFICIENT must be 1 or more")
		need(c.FilterCostLimit > 0, "WEBHOOK_FILTER_COST_LIMIT must be positive")
	}
	if role == RoleAPI {
		need(c.HTTPAddr != "", "HTTP_ADDR must not be empty")
		need(c.HTTPMaxBodyBytes > 0, "HTTP_MAX_BODY_BYTES must be positive")
		need(c.MaxWebhooksPerUser > 0, "WEBHOOK_MAX_PER_USER must be positive")
		need(c.HTTPReadTimeout > 0 && c.HTTPWriteTimeout > 0 && c.HTTPIdleTimeout > 0, "HTTP_READ_TIMEOUT, HTTP_WRITE_TIMEOUT and HTTP_IDLE_TIMEOUT must be positive")
		need(c.HTTPWriteTimeout > c.TestTimeout, "HTTP_WRITE_TIMEOUT must exceed WEBHOOK_TEST_TIMEOUT, or test answers are cut off")
		need(c.APIRateLimit > 0 && c.APIRateBurst > 0, "API_RATE_LIMIT and API_RATE_BURST must be positive")
		need(c.APIListCacheBytes >= 0, "API_LIST_CACHE_BYTES must not be negative (0 disables the cache)")
		need(c.MaxHeaders >= 0 && c.MaxHeaderBytes > 0, "WEBHOOK_MAX_HEADERS must not be negative (0 refuses custom headers) and WEBHOOK_MAX_HEADER_BYTES must be positive")
		need(c.FilterMaxBytes >= 0, "WEBHOOK_FILTER_MAX_BYTES must not be negative (0 refuses filters)")
		need(c.PortalSessionTTL > 0 && c.PortalLinkTTL > 0 && c.PortalLinkTTL <= c.PortalSessionTTL,
			"PORTAL_SESSION_TTL and PORTAL_LINK_TTL must be positive, the link's no longer than the session's")
		if _, err := portal.ParseFrameAncestors(c.PortalFrameAncestors); err != nil {
			errs = append(errs, err)
		}
		for name, v := range map[string]string{"PORTAL_PUBLIC_URL": c.PortalPublicURL, "PORTAL_TEMPORAL_UI_URL": c.PortalTemporalUIURL} {
			need(v == "" || isBaseURL(v), "%s must be empty or an http(s) URL with a host and no query or fragment, like https://webhooks.example.com", name)
		}
		need(c.RecoverMaxWindow >= 0, "WEBHOOK_RECOVER_MAX_WINDOW must not be negative (unset: WEBHOOK_DELIVERY_RETENTION)")
		need(c.RecoverWindow() > 0, "WEBHOOK_RECOVER_MAX_WINDOW, or WEBHOOK_DELIVERY_RETENTION when it is unset, must be positive")
	}
	if role == RoleWorker {
		need(c.RetryAfterMax > 0, "WEBHOOK_RETRY_AFTER_MAX must be positive")
		need(c.MaxResponseBytes > 0, "WEBHOOK_MAX_RESPONSE_BYTES must be positive")
		need(c.ShutdownTimeout > c.HTTPTimeout, "SHUTDOWN_TIMEOUT must exceed WEBHOOK_HTTP_TIMEOUT, so a stopping worker lets the attempts it sent finish")
		need(c.MaxConnsPerHost > 0, "WEBHOOK_MAX_CONNS_PER_HOST must be positive")
		need(c.ConnWaitTimeout > 0, "WEBHOOK_CONN_WAIT_TIMEOUT must be positive")
		need(c.MaxEventDataBytes > 0, "WEBHOOK_MAX_EVENT_DATA_BYTES must be positive")
		need(c.DisableAfterFailures >= 0, "WEBHOOK_DISABLE_AFTER_FAILURES must not be negative (0 never disables)")
		need(c.DBRetryTimeout > 0, "WEBHOOK_DB_RETRY_TIMEOUT must be positive")
		need(c.RecordRetryMaxInterval > 0, "WEBHOOK_RECORD_RETRY_MAX_INTERVAL must be positive")
		need(c.DispatchPageSize > 0 && c.DispatchPageSize <= 1000, "WEBHOOK_DISPATCH_PAGE_SIZE must be between 1 and 1000")
		need(c.DispatchChildrenPerRun >= c.DispatchPageSize && c.DispatchChildrenPerRun <= 1000,
			"WEBHOOK_DISPATCH_CHILDREN_PER_RUN must be between WEBHOOK_DISPATCH_PAGE_SIZE and 1000")
		need(c.DeliveryRetention > 0, "WEBHOOK_DELIVERY_RETENTION must be positive")
		need(c.PruneInterval >= time.Minute, "WEBHOOK_DELIVERY_PRUNE_INTERVAL must be at least 1m")
		need(c.DefaultRateLimit >= 0 && c.DefaultRateBurst >= 1, "WEBHOOK_DEFAULT_RATE_LIMIT must not be negative (0: unlimited) and WEBHOOK_DEFAULT_RATE_BURST must be 1 or more")
		need(c.RateLimitHold >= 100*time.Millisecond && c.RateLimitHold <= 5*time.Second,
			"WEBHOOK_RATE_LIMIT_HOLD must be between 100ms and 5s: an attempt waits that long for its slot inside its own timeout")
		need(c.RecoverRate > 0 && c.RecoverRate <= 10000, "WEBHOOK_RECOVER_RATE must be above 0 and at most 10000 (redeliveries per second)")
		need(c.AlertAfterFailures >= 0, "WEBHOOK_ALERT_AFTER_FAILURES must not be negative (0 never alerts)")
		if err := c.validateOperational(); err != nil {
			errs = append(errs, err)
		}
		need(c.WorkerActivitySlots > 0 && c.WorkerWorkflowTaskSlots > 0 && c.WorkerLocalActivitySlots > 0 && c.WorkerPollers > 0 && c.WorkerMaxPollers > 0,
			"WORKER_MAX_CONCURRENT_*, WORKER_POLLERS and WORKER_MAX_POLLERS must be positive")
	}
	if _, err := c.SlogLevel(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return nil
}

// RecoverWindow is the longest window a recovery may cover: WEBHOOK_RECOVER_MAX_WINDOW,
// or the delivery log's retention when it is unset (nothing older is in the log).
func (c Config) RecoverWindow() time.Duration {
	if c.RecoverMaxWindow > 0 {
		return c.RecoverMaxWindow
	}
	return c.DeliveryRetention
}

// operationalSecretBytes is the least key material an operational secret may carry.
const operationalSecretBytes = 24

// validateOperational checks OPERATIONAL_WEBHOOK_URL and its secret: both or neither,
// an http(s) URL, and a secret of the form the service issues to webhooks (whsec_ and
// base64), which both signature schemes can use.
func (c Config) validateOperational() error {
	switch {
	case c.OperationalWebhookURL == "" && c.OperationalWebhookSecret == "":
		return nil
	case c.OperationalWebhookURL == "":
		return errors.New("OPERATIONAL_WEBHOOK_SECRET is set without OPERATIONAL_WEBHOOK_URL: set both, or neither to send no operational events")
	}
	u, err := url.Parse(c.OperationalWebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("OPERATIONAL_WEBHOOK_URL must be an http(s) URL, like https://assetsup-backend.internal/webhooks/operational")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(c.OperationalWebhookSecret, secrets.Prefix))
	if !strings.HasPrefix(c.OperationalWebhookSecret, secrets.Prefix) || err != nil || len(key) < operationalSecretBytes {
		return fmt.Errorf("OPERATIONAL_WEBHOOK_SECRET is required with OPERATIONAL_WEBHOOK_URL: %s followed by base64 of at least %d random bytes (echo %s$(openssl rand -base64 32))",
			secrets.Prefix, operationalSecretBytes, secrets.Prefix)
	}
	return nil
}

// SecretBox builds the box that seals webhook secrets from WEBHOOK_SECRET_KEY and
// WEBHOOK_SECRET_OLD_KEYS ("version:base64,..."), the keys kept only to open old rows.
func (c Config) SecretBox() (*secrets.Box, error) {
	if c.SecretKey == "" {
		return nil, errors.New("WEBHOOK_SECRET_KEY is required: base64 of 32 random bytes (openssl rand -base64 32)")
	}
	current, err := secrets.ParseKey(c.SecretKeyVersion, c.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("WEBHOOK_SECRET_KEY: %w", err)
	}
	var older []secrets.Key
	for _, entry := range strings.Split(c.SecretOldKeys, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		v, b64, ok := strings.Cut(entry, ":")
		version, err := strconv.Atoi(v)
		if !ok || err != nil {
			return nil, errors.New("WEBHOOK_SECRET_OLD_KEYS: entries must be version:base64")
		}
		k, err := secrets.ParseKey(version, b64)
		if err != nil {
			return nil, fmt.Errorf("WEBHOOK_SECRET_OLD_KEYS: %w", err)
		}
		older = append(older, k)
	}
	box, err := secrets.NewBox(current, older...)
	if err != nil {
		return nil, fmt.Errorf("WEBHOOK_SECRET_KEY: %w", err)
	}
	return box, nil
}

// PayloadCodec is the codec encrypting Temporal payloads: sealing with
// TEMPORAL_PAYLOAD_KEY under TEMPORAL_PAYLOAD_KEY_ID, opening also with
// TEMPORAL_PAYLOAD_OLD_KEYS ("id:base64,..."). With only old keys it seals nothing and
// still opens (encryption switched off without stranding running workflows); with
// neither it is nil: encryption off.
func (c Config) PayloadCodec() (*payloadcodec.Codec, error) {
	older, err := payloadcodec.ParseKeys(c.PayloadOldKeys)
	if err != nil {
		return nil, fmt.Errorf("TEMPORAL_PAYLOAD_OLD_KEYS: %w", err)
	}
	if c.PayloadKey == "" {
		if len(older) == 0 {
			return nil, nil
		}
		codec, err := payloadcodec.NewDecryptOnly(older...)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_PAYLOAD_OLD_KEYS: %w", err)
		}
		return codec, nil
	}
	current, err := payloadcodec.ParseKey(c.PayloadKeyID, c.PayloadKey)
	if err != nil {
		return nil, fmt.Errorf("TEMPORAL_PAYLOAD_KEY, TEMPORAL_PAYLOAD_KEY_ID: %w (openssl rand -base64 32 makes a key)", err)
	}
	codec, err := payloadcodec.New(current, older...)
	if err != nil {
		return nil, fmt.Errorf("TEMPORAL_PAYLOAD_KEY, TEMPORAL_PAYLOAD_OLD_KEYS: %w", err)
	}
	return codec, nil
}

// TemporalConnection is the client's address, namespace, TLS and API key, turned into
// client options by Temporal's own envconfig from the TEMPORAL_* settings: an API key
// switches TLS on unless TEMPORAL_TLS=false, a CA replaces the system roots, a client
// certificate and key make it mutual TLS. The files are read here, so a missing or
// unreadable one is a start-up error.
func (c Config) TemporalConnection() (client.Options, error) {
	switch strings.ToLower(c.TemporalTLS) {
	case "", "true", "false", "1", "0":
	default:
		return client.Options{}, errors.New("TEMPORAL_TLS must be true or false (or unset: on when TEMPORAL_API_KEY or a TEMPORAL_TLS_* setting is given)")
	}
	env := envLookup{}
	for name, v := range map[string]string{
		"TEMPORAL_ADDRESS":                 c.TemporalAddress,
		"TEMPORAL_NAMESPACE":               c.TemporalNamespace,
		"TEMPORAL_API_KEY":                 c.TemporalAPIKey,
		"TEMPORAL_TLS":                     c.TemporalTLS,
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH": c.TemporalTLSServerCAPath,
		"TEMPORAL_TLS_CLIENT_CERT_PATH":    c.TemporalTLSClientCertPath,
		"TEMPORAL_TLS_CLIENT_CERT_DATA":    c.TemporalTLSClientCertData,
		"TEMPORAL_TLS_CLIENT_KEY_PATH":     c.TemporalTLSClientKeyPath,
		"TEMPORAL_TLS_CLIENT_KEY_DATA":     c.TemporalTLSClientKeyData,
		"TEMPORAL_TLS_SERVER_NAME":         c.TemporalTLSServerName,
	} {
		if v != "" {
			env[name] = v
		}
	}
	// Only these settings: no TOML profile file, nothing else from the process environment.
	opts, err := envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{DisableFile: true, EnvLookup: env})
	if err != nil {
		return client.Options{}, fmt.Errorf("TEMPORAL_TLS_*, TEMPORAL_API_KEY: %w", err)
	}
	return opts, nil
}

// envLookup hands envconfig the configuration's values as if they were the environment.
type envLookup map[string]string

func (e envLookup) Environ() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func (e envLookup) LookupEnv(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// CodecServerOriginList is CODEC_SERVER_ALLOWED_ORIGINS: the Web UI origins (scheme,
// host and port, nothing more) allowed to call the codec server from a browser.
func (c Config) CodecServerOriginList() ([]string, error) {
	var out []string
	for _, o := range strings.Split(c.CodecServerOrigins, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("CODEC_SERVER_ALLOWED_ORIGINS: %q is not an origin like https://temporal-ui.example.com", o)
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return out, nil
}

// isBaseURL says whether s is an absolute http(s) URL that a path can be appended to.
func isBaseURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && u.Fragment == "" && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "#")
}

// AddressPolicy is the SSRF policy for webhook URLs from WEBHOOK_ALLOW_PRIVATE_TARGETS
// and WEBHOOK_ALLOWED_CIDRS.
func (c Config) AddressPolicy() (*netguard.Policy, error) {
	cidrs, err := netguard.ParseCIDRs(c.AllowedCIDRs)
	if err != nil {
		return nil, fmt.Errorf("WEBHOOK_ALLOWED_CIDRS: %w", err)
	}
	return netguard.NewPolicy(c.AllowPrivateTargets, cidrs), nil
}

// SlogLevel maps LOG_LEVEL to a slog level.
func (c Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error")
	}
	return l, nil
}

// EnvNames lists every environment variable Config reads, for documentation checks.
func EnvNames() []string {
	params, err := env.GetFieldParams(&Config{})
	if err != nil {
		panic(fmt.Sprintf("config tags: %v", err)) // a programming error, caught by the tests
	}
	names := make([]string, len(params))
	for i, p := range params {
		names[i] = p.Key
	}
	return names
}

// nameVariables rewrites the parser's errors to name the environment variable, not the
// Go field, since the variable is what an operator sets.
func nameVariables(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
				key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
				e = fmt.Errorf("%s: cannot parse as %s: %w", key, pe.Type, pe.Err)
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}
