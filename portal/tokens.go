package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Kind is what a portal token is for. Each kind has its own prefix and audience, so
// one is never accepted where the other is expected.
type Kind int

const (
	// Link is the token in the portal URL's fragment: good only for exchanging, once the
	// page has loaded, for a Session, and only for PORTAL_LINK_TTL.
	Link Kind = iota
	// Session is what the page keeps in memory and sends as its bearer token: good only
	// for the user's /webhooks routes and the event catalogue, until the session ends.
	Session
)

// Prefixes that tell portal tokens from the backend's JWTs at a glance (and to secret
// scanners).
const (
	LinkPrefix    = "wpl_"
	SessionPrefix = "wps_"
)

func (k Kind) prefix() string {
	if k == Link {
		return LinkPrefix
	}
	return SessionPrefix
}

func (k Kind) audience() string {
	if k == Link {
		return "assetsup-webhooks-portal-link"
	}
	return "assetsup-webhooks-portal-session"
}

func (k Kind) String() string {
	if k == Link {
		return "portal link"
	}
	return "portal session"
}

// Token verification errors.
var (
	ErrExpired = errors.New("expired")
	ErrInvalid = errors.New("invalid")
)

// leeway tolerates clock differences between API replicas, which issue and check
// these tokens.
const leeway = 5 * time.Second

// Claims are what a portal token says: whose it is and when the session ends.
type Claims struct {
	jwt.RegisteredClaims
	// SessionExpiresAt is when the session a link opens ends: a link carries it, so the
	// session lasts PORTAL_SESSION_TTL from when the host application asked for it,
	// however late within PORTAL_LINK_TTL the page exchanged the link.
	SessionExpiresAt *jwt.NumericDate `json:"sx,omitempty"`
}

// Tokens issues and checks portal tokens.
type Tokens struct {
	key []byte
}

// NewTokens derives the portal tokens' key from the JWT key, so operators manage one
// secret, while a portal token can never pass as the backend's JWT or one as the other.
func NewTokens(jwtSecret []byte) *Tokens {
	mac := hmac.New(sha256.New, jwtSecret)
	mac.Write([]byte("assetsup-webhooks portal tokens v1"))
	return &Tokens{key: mac.Sum(nil)}
}

// Issue signs a token of kind for userID, good from now until expires. A link also
// carries sessionExpires, the end of the session it opens (ignored for a Session).
func (t *Tokens) Issue(kind Kind, userID string, now, expires, sessionExpires time.Time) (string, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	claims := Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   userID,
		Audience:  jwt.ClaimStrings{kind.audience()},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(expires),
		ID:        hex.EncodeToString(id),
	}}
	if kind == Link {
		claims.SessionExpiresAt = jwt.NewNumericDate(sessionExpires)
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.key)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", kind, err)
	}
	return kind.prefix() + signed, nil
}

// Verify checks raw as a token of kind at now: ErrExpired when it was good once,
// ErrInvalid for anything else (another kind, a forged or damaged token, no user).
func (t *Tokens) Verify(kind Kind, raw string, now time.Time) (Claims, error) {
	body, ok := strings.CutPrefix(raw, kind.prefix())
	if !ok {
		return Claims{}, fmt.Errorf("not a %s: %w", kind, ErrInvalid)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(kind.audience()),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	var claims Claims
	_, err := parser.ParseWithClaims(body, &claims, func(*jwt.Token) (any, error) { return t.key, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, fmt.Errorf("%s: %w", kind, ErrExpired)
	case err != nil:
		return Claims{}, fmt.Errorf("%s: %w", kind, ErrInvalid)
	}
	if claims.Subject == "" || len(claims.Subject) > 255 || strings.ContainsRune(claims.Subject, 0) {
		return Claims{}, fmt.Errorf("%s has no user: %w", kind, ErrInvalid)
	}
	if kind == Link && claims.SessionExpiresAt == nil {
		return Claims{}, fmt.Errorf("%s has no session end: %w", kind, ErrInvalid)
	}
	return claims, nil
}
