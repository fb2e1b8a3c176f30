package portal_test

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/portal"
)

var jwtSecret = []byte("portal-package-test-secret-0123456789!")

func TestTokensRoundTrip(t *testing.T) {
	tk := portal.NewTokens(jwtSecret)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	link, err := tk.Issue(portal.Link, "user-1", now, now.Add(2*time.Minute), now.Add(time.Hour))
	require.NoError(t, err)
	claims, err := tk.Verify(portal.Link, link, now.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, "user-1", claims.Subject)
	assert.Equal(t, now.Add(time.Hour), claims.SessionExpiresAt.Time.UTC())

	session, err := tk.Issue(portal.Session, "user-1", now, now.Add(time.Hour), time.Time{})
	require.NoError(t, err)
	claims, err = tk.Verify(portal.Session, session, now.Add(59*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, "user-1", claims.Subject)

	again, err := tk.Issue(portal.Session, "user-1", now, now.Add(time.Hour), time.Time{})
	require.NoError(t, err)
	assert.NotEqual(t, session, again, "every token has its own id")
}

func TestTokensRefused(t *testing.T) {
	tk := portal.NewTokens(jwtSecret)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	issue := func(tk *portal.Tokens, kind portal.Kind, user string) string {
		tok, err := tk.Issue(kind, user, now, now.Add(time.Hour), now.Add(time.Hour))
		require.NoError(t, err)
		return tok
	}
	// The backend's own JWT, signed with JWT_SECRET itself: never a portal token.
	backend, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "user-1", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		Audience: jwt.ClaimStrings{"assetsup-webhooks-portal-session"},
	}).SignedString(jwtSecret)
	require.NoError(t, err)
	unsigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{
		Subject: "user-1", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)

	tests := []struct {
		name string
		kind portal.Kind
		raw  string
		at   time.Time
		want error
	}{
		{name: "a link is not a session", kind: portal.Session, raw: issue(tk, portal.Link, "user-1"), at: now, want: portal.ErrInvalid},
		{name: "a session is not a link", kind: portal.Link, raw: issue(tk, portal.Session, "user-1"), at: now, want: portal.ErrInvalid},
		{name: "a session without its prefix", kind: portal.Session, raw: issue(tk, portal.Session, "user-1")[len(portal.SessionPrefix):], at: now, want: portal.ErrInvalid},
		{name: "a link given the session prefix", kind: portal.Session, raw: portal.SessionPrefix + issue(tk, portal.Link, "user-1")[len(portal.LinkPrefix):], at: now, want: portal.ErrInvalid},
		{name: "another key", kind: portal.Session, raw: issue(portal.NewTokens([]byte("other-secret-other-secret-other-secret")), portal.Session, "user-1"), at: now, want: portal.ErrInvalid},
		{name: "the backend's JWT", kind: portal.Session, raw: portal.SessionPrefix + backend, at: now, want: portal.ErrInvalid},
		{name: "alg none", kind: portal.Session, raw: portal.SessionPrefix + unsigned, at: now, want: portal.ErrInvalid},
		{name: "no user", kind: portal.Session, raw: issue(tk, portal.Session, ""), at: now, want: portal.ErrInvalid},
		{name: "expired", kind: portal.Session, raw: issue(tk, portal.Session, "user-1"), at: now.Add(time.Hour + 10*time.Second), want: portal.ErrExpired},
		{name: "expired link", kind: portal.Link, raw: issue(tk, portal.Link, "user-1"), at: now.Add(2 * time.Hour), want: portal.ErrExpired},
		{name: "garbage", kind: portal.Link, raw: portal.LinkPrefix + "not.a.token", at: now, want: portal.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tk.Verify(tt.kind, tt.raw, tt.at)
			require.Error(t, err)
			assert.True(t, errors.Is(err, tt.want), "got %v, want %v", err, tt.want)
		})
	}
}
