package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/internal/testinfra"
)

func TestMain(m *testing.M) { os.Exit(testinfra.Main(m)) }

func TestMigrateIsIdempotent(t *testing.T) {
	t.Setenv("DATABASE_URL", testinfra.DatabaseURL(t)) // already migrated by testinfra
	for range 2 {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"migrate"}, &out))
		assert.Equal(t, "migrations applied: 0\n", out.String())
	}
}

func TestTokenIsAValidJWT(t *testing.T) {
	secret := strings.Repeat("s", 32)
	t.Setenv("JWT_SECRET", secret)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"token", "--user", "user-7", "--ttl", "2h"}, &out))

	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(strings.TrimSpace(out.String()), &claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	require.NoError(t, err)
	assert.Equal(t, "user-7", claims.Subject)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), claims.ExpiresAt.Time, time.Minute)
}

func TestCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "no command", args: nil, want: "usage"},
		{name: "unknown command", args: []string{"serve"}, want: `unknown command "serve"`},
		{name: "token without user", args: []string{"token"}, want: "--user is required"},
		{name: "token without secret", args: []string{"token", "--user", "u"}, env: map[string]string{"JWT_SECRET": ""}, want: "JWT_SECRET"},
		{name: "api without master key", args: []string{"api"}, env: map[string]string{"JWT_SECRET": strings.Repeat("s", 32), "WEBHOOK_SECRET_KEY": ""}, want: "WEBHOOK_SECRET_KEY is required"},
		{name: "dispatch with bad data", args: []string{"dispatch", "--user", "u", "--event", "LOW_STOCK", "--data", "[1]"}, want: "JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			err := run(context.Background(), tt.args, &bytes.Buffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
