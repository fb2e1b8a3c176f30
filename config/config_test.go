package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
