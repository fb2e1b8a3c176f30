package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/config"
)

const goodKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func TestLoadDefaults(t *testing.T) {
	for _, role := range []config.Role{config.RoleMigrate, config.RoleToken, config.RoleAPI, config.RoleWorker, config.RoleDispatch} {
		// Load unsets the secrets it read, so child processes never inherit them.
		t.Setenv("JWT_SECRET", strings.Repeat("j", 32))
		t.Setenv("WEBHOOK_SECRET_KEY", goodKey)
		cfg, err := config.Load(role)
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1:8080", cfg.HTTPAddr)
		assert.Equal(t, "webhooks", cfg.TemporalTaskQueue)
		assert.Equal(t, 3, cfg.RetryMaxAttempts)
		assert.False(t, cfg.AllowPrivateTargets)
		_, stillSet := os.LookupEnv("JWT_SECRET")
		assert.False(t, stillSet)
	}
}

func TestLoadNamesWhatIsWrong(t *testing.T) {
	tests := []struct {
		name string
		role config.Role
		env  map[string]string
		want string
	}{
		{name: "no jwt secret", role: config.RoleAPI, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey}, want: "JWT_SECRET is required"},
		{name: "short jwt secret", role: config.RoleToken, env: map[string]string{"JWT_SECRET": "short"}, want: "JWT_SECRET"},
		{name: "no master key", role: config.RoleWorker, env: map[string]string{}, want: "WEBHOOK_SECRET_KEY is required"},
		{name: "short master key", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": "AAEC"}, want: "want 32 bytes"},
		{name: "bad duration", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_HTTP_TIMEOUT": "soon"}, want: "WEBHOOK_HTTP_TIMEOUT"},
		{name: "zero attempts", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_RETRY_MAX_ATTEMPTS": "0"}, want: "WEBHOOK_RETRY_MAX_ATTEMPTS"},
		{name: "shutdown shorter than an attempt", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "SHUTDOWN_TIMEOUT": "5s"}, want: "SHUTDOWN_TIMEOUT"},
		{name: "no connection wait", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_CONN_WAIT_TIMEOUT": "0s"}, want: "WEBHOOK_CONN_WAIT_TIMEOUT"},
		{name: "bad cidr", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_ALLOWED_CIDRS": "10.0.0.0/99"}, want: "WEBHOOK_ALLOWED_CIDRS"},
		{name: "dispatch needs a dial timeout", role: config.RoleDispatch, env: map[string]string{"TEMPORAL_DIAL_TIMEOUT": "0s"}, want: "TEMPORAL_DIAL_TIMEOUT"},
		{name: "bad database url", role: config.RoleMigrate, env: map[string]string{"DATABASE_URL": "mysql://x"}, want: "DATABASE_URL"},
		{name: "test timeout beyond write timeout", role: config.RoleAPI, env: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_TEST_TIMEOUT": "40s"}, want: "HTTP_WRITE_TIMEOUT"},
		{name: "bad log level", role: config.RoleMigrate, env: map[string]string{"LOG_LEVEL": "loud"}, want: "LOG_LEVEL"},
		{name: "bad old key", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_SECRET_OLD_KEYS": "x"}, want: "WEBHOOK_SECRET_OLD_KEYS"},
		{name: "negative header cap", role: config.RoleAPI, env: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_MAX_HEADERS": "-1"}, want: "WEBHOOK_MAX_HEADERS"},
		{name: "portal session not positive", role: config.RoleAPI, env: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey, "PORTAL_SESSION_TTL": "0s"}, want: "PORTAL_SESSION_TTL"},
		{name: "portal link outlives its session", role: config.RoleAPI, env: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey, "PORTAL_SESSION_TTL": "1m", "PORTAL_LINK_TTL": "2m"}, want: "PORTAL_LINK_TTL"},
		{name: "portal frame ancestors with a directive", role: config.RoleAPI, env: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey, "PORTAL_FRAME_ANCESTORS": "https://a.example; script-src *"}, want: "PORTAL_FRAME_ANCESTORS"},
		{name: "portal frame ancestors none with others", role: config.RoleAPI, env: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey, "PORTAL_FRAME_ANCESTORS": "'none' 'self'"}, want: "PORTAL_FRAME_ANCESTORS"},
		{name: "portal public url with a query", role: config.RoleAPI, env: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey, "PORTAL_PUBLIC_URL": "https://w.example?x=1"}, want: "PORTAL_PUBLIC_URL"},
		{name: "portal temporal ui not a url", role: config.RoleAPI, env: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey, "PORTAL_TEMPORAL_UI_URL": "temporal-ui:8080"}, want: "PORTAL_TEMPORAL_UI_URL"},
		{name: "no filter cost", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_FILTER_COST_LIMIT": "0"}, want: "WEBHOOK_FILTER_COST_LIMIT"},
		{name: "negative default rate", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_DEFAULT_RATE_LIMIT": "-1"}, want: "WEBHOOK_DEFAULT_RATE_LIMIT"},
		{name: "rate hold beyond the attempt's margin", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_RATE_LIMIT_HOLD": "30s"}, want: "WEBHOOK_RATE_LIMIT_HOLD"},
		{name: "no recovery rate", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_RECOVER_RATE": "0"}, want: "WEBHOOK_RECOVER_RATE"},
		{name: "negative alert threshold", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_ALERT_AFTER_FAILURES": "-1"}, want: "WEBHOOK_ALERT_AFTER_FAILURES"},
		{name: "negative recovery window", role: config.RoleAPI, env: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey, "WEBHOOK_RECOVER_MAX_WINDOW": "-1h"}, want: "WEBHOOK_RECOVER_MAX_WINDOW"},
		{name: "operational url without a secret", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "OPERATIONAL_WEBHOOK_URL": "https://backend.internal/ops"}, want: "OPERATIONAL_WEBHOOK_SECRET is required"},
		{name: "operational secret without a url", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "OPERATIONAL_WEBHOOK_SECRET": "whsec_" + goodKey}, want: "without OPERATIONAL_WEBHOOK_URL"},
		{name: "operational secret not whsec", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "OPERATIONAL_WEBHOOK_URL": "https://backend.internal/ops", "OPERATIONAL_WEBHOOK_SECRET": goodKey}, want: "OPERATIONAL_WEBHOOK_SECRET"},
		{name: "operational secret too short", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "OPERATIONAL_WEBHOOK_URL": "https://backend.internal/ops", "OPERATIONAL_WEBHOOK_SECRET": "whsec_AAECAwQF"}, want: "OPERATIONAL_WEBHOOK_SECRET"},
		{name: "operational url not http", role: config.RoleWorker, env: map[string]string{"WEBHOOK_SECRET_KEY": goodKey, "OPERATIONAL_WEBHOOK_URL": "ftp://backend.internal/ops", "OPERATIONAL_WEBHOOK_SECRET": "whsec_" + goodKey}, want: "OPERATIONAL_WEBHOOK_URL must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("JWT_SECRET", "")
			t.Setenv("WEBHOOK_SECRET_KEY", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := config.Load(tt.role)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestOldKeysOpenOldRows(t *testing.T) {
	t.Setenv("WEBHOOK_SECRET_KEY", goodKey)
	old, err := config.Config{SecretKey: goodKey, SecretKeyVersion: 1}.SecretBox()
	require.NoError(t, err)
	sealed, v, err := old.Seal("wh", "whsec_x")
	require.NoError(t, err)

	rotated, err := config.Config{
		SecretKey: "HyAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=", SecretKeyVersion: 2, SecretOldKeys: "1:" + goodKey,
	}.SecretBox()
	require.NoError(t, err)
	got, err := rotated.Open("wh", sealed, v)
	require.NoError(t, err)
	assert.Equal(t, "whsec_x", got)
}

// Every variable the service reads is documented in the README's configuration table.
func TestEveryVariableIsDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	names := config.EnvNames()
	require.Greater(t, len(names), 30)
	for _, name := range names {
		assert.Contains(t, string(readme), "| `"+name+"` |", "README configuration table lacks %s", name)
	}
}

// Encryption and the secured connection are checked at start-up like every setting, by
// every role that talks to Temporal, and the codec server's own role.
func TestLoadRefusesBadTemporalSecurity(t *testing.T) {
	worker := map[string]string{"WEBHOOK_SECRET_KEY": goodKey}
	codecServer := map[string]string{"TEMPORAL_PAYLOAD_KEY": goodKey, "CODEC_SERVER_TOKEN": strings.Repeat("t", 32)}
	tests := []struct {
		name string
		role config.Role
		base map[string]string
		env  map[string]string
		want string
	}{
		{name: "short payload key", role: config.RoleWorker, base: worker, env: map[string]string{"TEMPORAL_PAYLOAD_KEY": "AAEC"}, want: "TEMPORAL_PAYLOAD_KEY"},
		{name: "payload key id with a colon", role: config.RoleDispatch, env: map[string]string{"TEMPORAL_PAYLOAD_KEY": goodKey, "TEMPORAL_PAYLOAD_KEY_ID": "a:b"}, want: "TEMPORAL_PAYLOAD_KEY_ID"},
		{name: "old payload keys without ids", role: config.RoleAPI, base: map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey}, env: map[string]string{"TEMPORAL_PAYLOAD_OLD_KEYS": goodKey}, want: "TEMPORAL_PAYLOAD_OLD_KEYS"},
		{name: "current key id repeated in the old keys", role: config.RoleWorker, base: worker, env: map[string]string{"TEMPORAL_PAYLOAD_KEY": goodKey, "TEMPORAL_PAYLOAD_OLD_KEYS": "1:" + goodKey}, want: "given twice"},
		{name: "TEMPORAL_TLS not a boolean", role: config.RoleDispatch, env: map[string]string{"TEMPORAL_TLS": "on"}, want: "TEMPORAL_TLS must be true or false"},
		{name: "missing CA file", role: config.RoleWorker, base: worker, env: map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": filepath.Join(t.TempDir(), "ca.pem")}, want: "TEMPORAL_TLS_*"},
		{name: "client key without certificate", role: config.RoleDispatch, env: map[string]string{"TEMPORAL_TLS_CLIENT_KEY_PATH": "client.key"}, want: "TEMPORAL_TLS_*"},
		{name: "codec server without keys", role: config.RoleCodec, env: map[string]string{"CODEC_SERVER_TOKEN": strings.Repeat("t", 32)}, want: "TEMPORAL_PAYLOAD_KEY (or TEMPORAL_PAYLOAD_OLD_KEYS) is required"},
		{name: "codec server without token", role: config.RoleCodec, env: map[string]string{"TEMPORAL_PAYLOAD_KEY": goodKey}, want: "CODEC_SERVER_TOKEN is required"},
		{name: "codec server short token", role: config.RoleCodec, base: codecServer, env: map[string]string{"CODEC_SERVER_TOKEN": "short"}, want: "CODEC_SERVER_TOKEN"},
		{name: "codec server origin with a path", role: config.RoleCodec, base: codecServer, env: map[string]string{"CODEC_SERVER_ALLOWED_ORIGINS": "http://127.0.0.1:8233/namespaces"}, want: "CODEC_SERVER_ALLOWED_ORIGINS"},
		{name: "codec server origin without scheme", role: config.RoleCodec, base: codecServer, env: map[string]string{"CODEC_SERVER_ALLOWED_ORIGINS": "temporal-ui:8080"}, want: "CODEC_SERVER_ALLOWED_ORIGINS"},
		{name: "codec server body cap", role: config.RoleCodec, base: codecServer, env: map[string]string{"CODEC_SERVER_MAX_BODY_BYTES": "0"}, want: "CODEC_SERVER_MAX_BODY_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := config.LoadFrom(tt.role, env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), goodKey, "an error never repeats a key")
		})
	}
}

func TestPayloadCodec(t *testing.T) {
	const newKey = "HyAeHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE="
	tests := []struct {
		name        string
		env         map[string]string
		wantOff     bool
		wantCurrent string
	}{
		{name: "off by default", env: map[string]string{}, wantOff: true},
		{name: "on", env: map[string]string{"TEMPORAL_PAYLOAD_KEY": goodKey}, wantCurrent: "1"},
		{name: "rotated", env: map[string]string{"TEMPORAL_PAYLOAD_KEY": newKey, "TEMPORAL_PAYLOAD_KEY_ID": "2025-06", "TEMPORAL_PAYLOAD_OLD_KEYS": "1:" + goodKey}, wantCurrent: "2025-06"},
		{name: "switched off, still reading old histories", env: map[string]string{"TEMPORAL_PAYLOAD_OLD_KEYS": "1:" + goodKey}, wantCurrent: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.LoadFrom(config.RoleDispatch, tt.env)
			require.NoError(t, err)
			codec, err := cfg.PayloadCodec()
			require.NoError(t, err)
			if tt.wantOff {
				assert.Nil(t, codec)
				return
			}
			require.NotNil(t, codec)
			assert.Equal(t, tt.wantCurrent, codec.CurrentKeyID())
		})
	}
}

func TestCodecServerRole(t *testing.T) {
	cfg, err := config.LoadFrom(config.RoleCodec, map[string]string{
		"TEMPORAL_PAYLOAD_KEY": goodKey, "CODEC_SERVER_TOKEN": strings.Repeat("t", 32),
		"CODEC_SERVER_ALLOWED_ORIGINS": "https://temporal.example.com, http://127.0.0.1:8233/",
	})
	require.NoError(t, err, "the codec server needs neither the database nor JWT_SECRET")
	origins, err := cfg.CodecServerOriginList()
	require.NoError(t, err)
	assert.Equal(t, []string{"https://temporal.example.com", "http://127.0.0.1:8233"}, origins)
	assert.Equal(t, "127.0.0.1:8234", cfg.CodecServerAddr)
}

func TestPortalSettings(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		wantAncestors string
		wantUI        string
	}{
		{name: "defaults", env: map[string]string{}, wantAncestors: "'self'"},
		{name: "host app origins", env: map[string]string{"PORTAL_FRAME_ANCESTORS": "'self' https://app.assetsup.example https://*.assetsup.example:8443"}, wantAncestors: "'self' https://app.assetsup.example https://*.assetsup.example:8443"},
		{name: "temporal ui with a path", env: map[string]string{"PORTAL_TEMPORAL_UI_URL": "https://ops.example/temporal"}, wantAncestors: "'self'", wantUI: "https://ops.example/temporal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := config.LoadFrom(config.RoleAPI, env)
			require.NoError(t, err)
			assert.Equal(t, tt.wantAncestors, cfg.PortalFrameAncestors)
			assert.Equal(t, tt.wantUI, cfg.PortalTemporalUIURL)
			assert.Equal(t, time.Hour, cfg.PortalSessionTTL)
			assert.Equal(t, 2*time.Minute, cfg.PortalLinkTTL)
		})
	}
}

func TestRecoverWindowDefaultsToRetention(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want time.Duration
	}{
		{name: "default", env: map[string]string{}, want: 720 * time.Hour},
		{name: "retention", env: map[string]string{"WEBHOOK_DELIVERY_RETENTION": "48h"}, want: 48 * time.Hour},
		{name: "own window", env: map[string]string{"WEBHOOK_DELIVERY_RETENTION": "48h", "WEBHOOK_RECOVER_MAX_WINDOW": "6h"}, want: 6 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"JWT_SECRET": strings.Repeat("j", 32), "WEBHOOK_SECRET_KEY": goodKey}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := config.LoadFrom(config.RoleAPI, env)
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.RecoverWindow())
		})
	}
}

func TestOperationalEventsConfigured(t *testing.T) {
	cfg, err := config.LoadFrom(config.RoleWorker, map[string]string{
		"WEBHOOK_SECRET_KEY":         goodKey,
		"OPERATIONAL_WEBHOOK_URL":    "http://backend.internal:3000/webhooks/operational",
		"OPERATIONAL_WEBHOOK_SECRET": "whsec_" + goodKey,
	})
	require.NoError(t, err)
	assert.Equal(t, 3, cfg.AlertAfterFailures)
	assert.InDelta(t, 10.0, cfg.RecoverRate, 0)
	assert.Equal(t, "whsec_"+goodKey, cfg.OperationalWebhookSecret)
}
