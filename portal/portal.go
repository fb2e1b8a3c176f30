// Package portal is the webhook portal: a page the API serves under /portal, where one
// user manages their webhooks, reads their deliveries, sends tests and redelivers. Its
// files are embedded in the binary and need nothing beyond the API itself; this package
// also issues and checks the portal's tokens (tokens.go).
//
// The page holds no credentials of its own: the host application's backend asks the API
// for a portal session (POST /portal/sessions) and hands the user a URL whose fragment
// carries a short-lived link token, which the page exchanges at once for a session token
// kept in memory and sent as a bearer token. No cookie is ever set, so no request can be
// forged from another site.
package portal

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is where the portal is served.
const Prefix = "/portal"

// Options are the operator's choices.
type Options struct {
	// FrameAncestors is the CSP frame-ancestors source list (PORTAL_FRAME_ANCESTORS):
	// who may show the portal in a frame. Empty means 'self'.
	FrameAncestors string
}

// Handler serves the portal's files with their security headers.
type Handler struct {
	files   map[string]*file
	headers http.Header
}

type file struct {
	body, gzipped []byte
	contentType   string
	etag          string
}

// NewHandler builds the handler, refusing a FrameAncestors that is not a source list.
func NewHandler(o Options) (*Handler, error) {
	ancestors, err := ParseFrameAncestors(o.FrameAncestors)
	if err != nil {
		return nil, err
	}
	files, err := loadFiles()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Security-Policy", CSP(ancestors))
	// The URL that opened the page carried a token in its fragment: browsers never send
	// fragments, and no-referrer keeps even the path out of other sites' logs.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	return &Handler{files: files, headers: h}, nil
}

// CSP is the portal's Content-Security-Policy: its own scripts and styles only, no
// inline code, network only to its own origin, and Trusted Types so that no script can
// write markup into the page (the page builds every element with the DOM API).
func CSP(frameAncestors string) string {
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self'",
		"connect-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors " + frameAncestors,
		"require-trusted-types-for 'script'",
		"trusted-types 'none'",
	}, "; ")
}

// ParseFrameAncestors checks a frame-ancestors source list: 'self', 'none', or origins
// such as https://app.example.com or https://*.example.com, separated by spaces. Empty
// is 'self'. It is checked strictly because it goes into a header verbatim.
func ParseFrameAncestors(s string) (string, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return "'self'", nil
	}
	for _, f := range fields {
		if f == "'self'" || f == "'none'" {
			if f == "'none'" && len(fields) > 1 {
				return "", fmt.Errorf("PORTAL_FRAME_ANCESTORS: 'none' cannot be combined with other sources")
			}
			continue
		}
		if !validOriginSource(f) {
			return "", fmt.Errorf("PORTAL_FRAME_ANCESTORS: %q is not 'self', 'none' or an origin like https://app.example.com", f)
		}
	}
	return strings.Join(fields, " "), nil
}

func validOriginSource(s string) bool {
	scheme, host, ok := strings.Cut(s, "://")
	if !ok || (scheme != "https" && scheme != "http") || host == "" {
		return false
	}
	host = strings.TrimPrefix(host, "*.")
	name, port, hasPort := strings.Cut(host, ":")
	if hasPort && (port == "" || strings.Trim(port, "0123456789") != "") {
		return false
	}
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func loadFiles() (map[string]*file, error) {
	files := map[string]*file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &file{body: body, contentType: contentType(p), etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		if f.gzipped, err = gzipBytes(body); err != nil {
			return fmt.Errorf("compress %s: %w", p, err)
		}
		files[strings.TrimPrefix(p, "assets/")] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load portal assets: %w", err)
	}
	return files, nil
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".js", ".mjs":
		if strings.HasPrefix(p, "assets/snippets/") {
			break // shown as text, never run
		}
		return "text/javascript; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	if t := mime.TypeByExtension(path.Ext(p)); t != "" && !strings.HasPrefix(p, "assets/snippets/") {
		return t
	}
	return "text/plain; charset=utf-8"
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Serves says whether the handler answers a request for urlPath with method.
func (h *Handler) Serves(method, urlPath string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	if urlPath == Prefix {
		return true
	}
	_, ok := h.lookup(urlPath)
	return ok
}

func (h *Handler) lookup(urlPath string) (*file, bool) {
	name, ok := strings.CutPrefix(urlPath, Prefix+"/")
	if !ok {
		return nil, false
	}
	if name == "" {
		name = "index.html"
	}
	f, ok := h.files[name]
	return f, ok
}

// ServeHTTP answers a request Serves accepted; anything else is a plain 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.Serves(r.Method, r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	for k, v := range h.headers {
		w.Header()[k] = v
	}
	if r.URL.Path == Prefix {
		// The page's files are relative to /portal/, so it must be opened there; the
		// browser keeps the fragment (the link token) across the redirect.
		http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
		return
	}
	f, _ := h.lookup(r.URL.Path)
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("ETag", f.etag)
	if etagMatches(r.Header.Get("If-None-Match"), f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body = f.gzipped
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func etagMatches(header, etag string) bool {
	for c := range strings.SplitSeq(header, ",") {
		if c = strings.TrimPrefix(strings.TrimSpace(c), "W/"); c == etag || c == "*" {
			return true
		}
	}
	return false
}

func acceptsGzip(header string) bool {
	for c := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(c, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}

// Size is the weight of the portal's files: as stored, and gzip-compressed as served.
type Size struct {
	Files     int
	Raw, Gzip int
}

// AssetSize measures the embedded files, for the size budget's test and benchmark.
func AssetSize() (Size, error) {
	files, err := loadFiles()
	if err != nil {
		return Size{}, err
	}
	var s Size
	for _, f := range files {
		s.Files++
		s.Raw += len(f.body)
		s.Gzip += len(f.gzipped)
	}
	return s, nil
}
