package api_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signToken signs claims with a real library, as a (possibly misbehaving) issuer would.
func signToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(t, err)
	return tok
}

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

// handmadeToken builds a token the library refuses to make: any header, and an
// HMAC-SHA256 signature under key (or no signature when key is nil).
func handmadeToken(t *testing.T, header map[string]any, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	signing := segment(t, header) + "." + segment(t, claims)
	if key == nil {
		return signing + "."
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestAuthRejectsBadTokens(t *testing.T) {
	s := newServer(t)
	user := newUser()
	// The user owns a webhook, so a token that got through would show data.
	s.create(t, user, validHook("guarded"))

	now := time.Now()
	claims := func(drop string, extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": user, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		delete(c, drop)
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	valid := s.token(t, user)
	parts := strings.Split(valid, ".")
	require.Len(t, parts, 3)
	otherSub := segment(t, claims("", jwt.MapClaims{"sub": newUser()}))

	tests := []struct {
		name        string
		give        string // the Authorization header; "" sends none
		wantMessage string
	}{
		{name: "no header", give: "", wantMessage: "missing bearer token"},
		{name: "empty bearer", give: "Bearer ", wantMessage: "missing bearer token"},
		{name: "blank bearer", give: "Bearer    ", wantMessage: "missing bearer token"},
		{name: "basic auth", give: "Basic dXNlcjpwYXNz", wantMessage: "missing bearer token"},
		{name: "token without scheme", give: valid, wantMessage: "missing bearer token"},
		{name: "not a JWT", give: "Bearer abc", wantMessage: "not a JWT"},
		{name: "expired beyond leeway", give: "Bearer " + signToken(t, jwt.SigningMethodHS256, s.jwtSecret,
			claims("", jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), wantMessage: "expired"},
		{name: "not valid yet", give: "Bearer " + signToken(t, jwt.SigningMethodHS256, s.jwtSecret,
			claims("", jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}))},
		{name: "wrong key", give: "Bearer " + signToken(t, jwt.SigningMethodHS256, []byte("not-the-key-not-the-key-not-the-k"),
			claims("", nil)), wantMessage: "signature"},
		{name: "claims swapped under a valid signature", give: "Bearer " + parts[0] + "." + otherSub + "." + parts[2],
			wantMessage: "signature"},
		{name: "alg none", give: "Bearer " + handmadeToken(t, map[string]any{"alg": "none", "typ": "JWT"}, claims("", nil), nil),
			wantMessage: "HS256"},
		{name: "alg none, capitalised", give: "Bearer " + handmadeToken(t, map[string]any{"alg": "None", "typ": "JWT"}, claims("", nil), nil),
			wantMessage: "HS256"},
		{name: "HS512 with the right key", give: "Bearer " + signToken(t, jwt.SigningMethodHS512, s.jwtSecret, claims("", nil)),
			wantMessage: "HS256"},
		// Key confusion: an RS256 header over an HMAC made with the shared secret.
		{name: "RS256 header", give: "Bearer " + handmadeToken(t, map[string]any{"alg": "RS256", "typ": "JWT"}, claims("", nil), s.jwtSecret),
			wantMessage: "HS256"},
		{name: "missing sub", give: "Bearer " + signToken(t, jwt.SigningMethodHS256, s.jwtSecret, claims("sub", nil)),
			wantMessage: "sub"},
		{name: "sub over 255 bytes", give: "Bearer " + signToken(t, jwt.SigningMethodHS256, s.jwtSecret,
			claims("", jwt.MapClaims{"sub": strings.Repeat("u", 256)})), wantMessage: "sub"},
		// The driver drops NUL, so this token would act as user "ab".
		{name: "sub with NUL", give: "Bearer " + signToken(t, jwt.SigningMethodHS256, s.jwtSecret,
			claims("", jwt.MapClaims{"sub": "ab\x00"})), wantMessage: "sub"},
		{name: "missing exp", give: "Bearer " + signToken(t, jwt.SigningMethodHS256, s.jwtSecret, claims("exp", nil)),
			wantMessage: "exp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.doAuth(t, http.MethodGet, "/webhooks", tt.give, "")
			msg := requireError(t, rec, http.StatusUnauthorized, "unauthorized")
			assert.Contains(t, msg, tt.wantMessage)
			assert.True(t, strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer "),
				"WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
			assert.NotContains(t, rec.Body.String(), "guarded")
		})
	}
}

func TestAuthAcceptsValidTokens(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("mine"))
	now := time.Now()

	tests := []struct {
		name string
		give string
	}{
		{name: "issued by IssueToken", give: s.token(t, user)},
		// The issuer's clock may run ahead of ours: 30 s of leeway.
		{name: "expired within leeway", give: signToken(t, jwt.SigningMethodHS256, s.jwtSecret,
			jwt.MapClaims{"sub": user, "exp": now.Add(-10 * time.Second).Unix()})},
		{name: "extra claims", give: signToken(t, jwt.SigningMethodHS256, s.jwtSecret,
			jwt.MapClaims{"sub": user, "exp": now.Add(time.Minute).Unix(), "email": "a@example.com", "role": "admin"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.doAuth(t, http.MethodGet, "/webhooks/"+w.ID, "Bearer "+tt.give, "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), `"name":"mine"`)
		})
	}
}

// TestAuthGuardsEveryWebhookRoute checks that no registry route skips authentication.
func TestAuthGuardsEveryWebhookRoute(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("guarded"))

	tests := []struct {
		name       string
		giveMethod string
		givePath   string
	}{
		{name: "events", giveMethod: http.MethodGet, givePath: "/events"},
		{name: "create", giveMethod: http.MethodPost, givePath: "/webhooks"},
		{name: "list", giveMethod: http.MethodGet, givePath: "/webhooks"},
		{name: "get", giveMethod: http.MethodGet, givePath: "/webhooks/" + w.ID},
		{name: "patch", giveMethod: http.MethodPatch, givePath: "/webhooks/" + w.ID},
		{name: "delete", giveMethod: http.MethodDelete, givePath: "/webhooks/" + w.ID},
		{name: "rotate secret", giveMethod: http.MethodPost, givePath: "/webhooks/" + w.ID + "/rotate-secret"},
		{name: "test", giveMethod: http.MethodPost, givePath: "/webhooks/" + w.ID + "/test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.count(t, user)
			rec := s.doAuth(t, tt.giveMethod, tt.givePath, "", validHook("sneaky"))
			requireError(t, rec, http.StatusUnauthorized, "unauthorized")
			assert.Equal(t, before, s.count(t, user))
		})
	}
	rec := s.do(t, http.MethodGet, "/webhooks/"+w.ID, user, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `"name":"guarded"`)
}
