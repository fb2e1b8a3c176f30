package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
)

const userIDKey = "user_id"

// jwtLeeway tolerates small clock differences with the token issuer.
const jwtLeeway = 30 * time.Second

// authenticate accepts an HS256 JWT signed with secret, as the AssetsUp backend issues
// it, and puts its subject (the user id) on the context. Any other algorithm, a missing
// or past exp, or a missing sub is a 401.
func authenticate(secret []byte) gin.HandlerFunc {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(jwtLeeway),
	)
	keyFunc := func(*jwt.Token) (any, error) { return secret, nil }
	return func(c *gin.Context) {
		raw, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(raw) == "" {
			unauthorized(c, "missing bearer token: send Authorization: Bearer <JWT>")
			return
		}
		var claims jwt.RegisteredClaims
		if tok, err := parser.ParseWithClaims(strings.TrimSpace(raw), &claims, keyFunc); err != nil {
			unauthorized(c, tokenProblem(tok, err))
			return
		}
		// A NUL never reaches PostgreSQL (the driver drops it), so "a\x00b" would act as "ab".
		if claims.Subject == "" || len(claims.Subject) > 255 || strings.ContainsRune(claims.Subject, 0) {
			unauthorized(c, "token has no usable sub (user id)")
			return
		}
		c.Set(userIDKey, claims.Subject)
		c.Next()
	}
}

func tokenProblem(tok *jwt.Token, err error) string {
	// The parser reports a refused algorithm as an invalid signature; say which it is.
	wrongAlg := tok != nil && tok.Method != nil && tok.Method.Alg() != jwt.SigningMethodHS256.Alg()
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no exp"
	case wrongAlg, errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token must be signed with HS256"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature invalid"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is not a JWT"
	default:
		return "token invalid"
	}
}

func unauthorized(c *gin.Context, msg string) {
	c.Header("WWW-Authenticate", `Bearer realm="assetsup-webhooks"`)
	writeError(c, http.StatusUnauthorized, "unauthorized", msg)
}

func userID(c *gin.Context) string {
	return c.GetString(userIDKey)
}

// IssueToken signs a token for userID, for local use (`webhooks token`) and tests.
func IssueToken(secret []byte, userID string, ttl time.Duration, now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
