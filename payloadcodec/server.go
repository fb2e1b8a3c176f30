package payloadcodec

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
)

// SessionCookie is the cookie the login form sets, for the Web UI: it cannot send a
// static bearer token (it forwards only its own OIDC access token, and only to an https
// endpoint), but it sends cookies with "Include cross-origin credentials" on.
const SessionCookie = "codec_session"

// sessionTTL is how long one login lasts.
const sessionTTL = 12 * time.Hour

// HandlerOptions configure the codec server.
type HandlerOptions struct {
	// Token is the bearer token an operator presents (CODEC_SERVER_TOKEN): as
	// "Authorization: Bearer <token>" (temporal CLI --codec-auth, scripts), or once in the
	// login form, which sets a session cookie for the Web UI.
	Token string
	// AllowedOrigins may call from a browser (CORS): the Web UI's origin, e.g.
	// "http://127.0.0.1:8233". Requests from any other origin are refused.
	AllowedOrigins []string
	// MaxBodyBytes caps a request body.
	MaxBodyBytes int64
	// Logger receives one line per refused request (never a header or a payload).
	Logger *slog.Logger
	// Now is the clock of session expiry; default time.Now.
	Now func() time.Time
}

// NewHandler serves Temporal's codec server protocol for codec: POST .../encode and
// .../decode with {"payloads":[...]} as protobuf JSON, answered in kind, each request
// authenticated by the bearer token or a session cookie; GET/POST /login is the form
// that sets the cookie, GET /healthz a liveness probe.
func NewHandler(codec *Codec, opts HandlerOptions) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{opts: opts, codec: converter.NewPayloadCodecHTTPHandler(codec), tokenHash: sha256.Sum256([]byte(opts.Token))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("OPTIONS /", s.preflight)
	mux.HandleFunc("POST /", s.convert)
	return mux
}

type server struct {
	opts      HandlerOptions
	codec     http.Handler
	tokenHash [sha256.Size]byte
}

// preflight answers the browser's CORS check before the Web UI's POST (it sends JSON
// with X-Namespace, and Authorization when it passes its access token).
func (s *server) preflight(w http.ResponseWriter, r *http.Request) {
	if !s.allowOrigin(w, r) {
		s.refuse(w, r, http.StatusForbidden, "origin not allowed")
		return
	}
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
	w.Header().Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// convert authenticates and hands /encode and /decode to the SDK's protocol handler.
func (s *server) convert(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/encode") && !strings.HasSuffix(r.URL.Path, "/decode") {
		http.NotFound(w, r)
		return
	}
	if !s.allowOrigin(w, r) {
		s.refuse(w, r, http.StatusForbidden, "origin not allowed")
		return
	}
	if !s.authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="codec"`)
		s.refuse(w, r, http.StatusUnauthorized, "not authenticated")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	s.codec.ServeHTTP(w, r)
}

// allowOrigin sets the CORS answer for a browser request from an allowed origin and
// reports whether the request may go on; requests without an Origin (CLI, scripts) may.
func (s *server) allowOrigin(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !slices.Contains(s.opts.AllowedOrigins, origin) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Allow-Credentials", "true")
	return true
}

// authenticated accepts the bearer token, or a session cookie on a JSON request (a form
// post from another site cannot send JSON without the CORS check above).
func (s *server) authenticated(r *http.Request) bool {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if s.tokenMatches(strings.TrimSpace(tok)) {
			return true
		}
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return false
	}
	mediaType, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(mediaType), "application/json") && s.sessionValid(c.Value)
}

// tokenMatches compares digests, so the comparison takes the same time whatever the
// length or content of the guess.
func (s *server) tokenMatches(tok string) bool {
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

// session is "<unix expiry>.<HMAC of it under the token>": proof of a login that ends,
// and that every restart with a new token revokes.
func (s *server) session(expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "." + s.sessionMAC(exp)
}

func (s *server) sessionMAC(exp string) string {
	mac := hmac.New(sha256.New, []byte(s.opts.Token))
	mac.Write([]byte("assetsup-webhooks codec session " + exp))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (s *server) sessionValid(v string) bool {
	exp, mac, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !s.opts.Now().Before(time.Unix(unix, 0)) {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(s.sessionMAC(exp)))
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>AssetsUp Webhooks codec server</title></head>
<body style="font-family:sans-serif;max-width:36em;margin:3em auto">
<h1>Codec server</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
<form method="post" action="login">
<label>Token (CODEC_SERVER_TOKEN) <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
<p>Signed in, this browser sends a session cookie with the Web UI's requests when its codec
settings have "Include cross-origin credentials" on.</p>
</body></html>
`))

func (s *server) loginForm(w http.ResponseWriter, _ *http.Request) {
	renderLogin(w, http.StatusOK, "")
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil || !s.tokenMatches(r.PostForm.Get("token")) {
		s.opts.Logger.WarnContext(r.Context(), "codec server login refused", "remote_addr", r.RemoteAddr)
		renderLogin(w, http.StatusUnauthorized, "Wrong token.")
		return
	}
	expires := s.opts.Now().Add(sessionTTL)
	cookie := &http.Cookie{
		Name: SessionCookie, Value: s.session(expires), Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
	if r.TLS != nil {
		// Over https the cookie may travel cross-site (a Web UI on another domain).
		cookie.Secure, cookie.SameSite = true, http.SameSiteNoneMode
	}
	http.SetCookie(w, cookie)
	s.opts.Logger.InfoContext(r.Context(), "codec server login", "remote_addr", r.RemoteAddr, "expires", expires.UTC())
	renderLogin(w, http.StatusOK, fmt.Sprintf("Signed in until %s.", expires.UTC().Format(time.RFC1123)))
}

func renderLogin(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, struct{ Message string }{message})
}

func (s *server) refuse(w http.ResponseWriter, r *http.Request, status int, reason string) {
	s.opts.Logger.WarnContext(r.Context(), "codec server request refused",
		"path", r.URL.Path, "status", status, "reason", reason, "remote_addr", r.RemoteAddr)
	http.Error(w, http.StatusText(status), status)
}
