package payloadcodec_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/assetsup/webhooks/payloadcodec"
)

const (
	testToken = "codec-token-0123456789-0123456789-abcdef"
	uiOrigin  = "http://127.0.0.1:8233"
)

type codecServer struct {
	handler http.Handler
	codec   *payloadcodec.Codec
	now     time.Time
}

func newCodecServer(t *testing.T) *codecServer {
	t.Helper()
	s := &codecServer{codec: newCodec(t, newKey(t, "k1")), now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	s.handler = payloadcodec.NewHandler(s.codec, payloadcodec.HandlerOptions{
		Token: testToken, AllowedOrigins: []string{uiOrigin}, MaxBodyBytes: 64 << 10,
		Now: func() time.Time { return s.now },
	})
	return s
}

// sealed is a /decode request body: one payload sealed by the server's codec.
func (s *codecServer) sealed(t *testing.T, v any) []byte {
	t.Helper()
	enc, err := s.codec.Encode([]*commonpb.Payload{jsonPayload(t, v)})
	require.NoError(t, err)
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	require.NoError(t, err)
	return b
}

func (s *codecServer) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec
}

// login signs in through the form and returns the session cookie.
func (s *codecServer) login(t *testing.T) *http.Cookie {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"token": {testToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := s.do(req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	for _, c := range rec.Result().Cookies() {
		if c.Name == payloadcodec.SessionCookie {
			assert.True(t, c.HttpOnly, "scripts never read the session")
			assert.NotContains(t, c.Value, testToken)
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

func TestHandlerDecodes(t *testing.T) {
	s := newCodecServer(t)
	give := map[string]any{"title": "Generator G-2 moved"}
	body := s.sealed(t, give)

	req := httptest.NewRequest(http.MethodPost, "/decode", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	rec := s.do(req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	var got commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.GetPayloads(), 1)
	assert.True(t, proto.Equal(jsonPayload(t, give), got.GetPayloads()[0]))

	// Mounted under a prefix (one server per namespace, say): only the last segment counts.
	req = httptest.NewRequest(http.MethodPost, "/default/decode", bytes.NewReader(body))
	req.Header.Set("Authorization", "bearer "+testToken)
	assert.Equal(t, http.StatusOK, s.do(req).Code)
}

func TestHandlerEncodes(t *testing.T) {
	s := newCodecServer(t)
	plain, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{jsonPayload(t, "signal input")}})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, "/encode", bytes.NewReader(plain))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := s.do(req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.GetPayloads(), 1)
	assert.Equal(t, payloadcodec.EncodingEncrypted, string(got.GetPayloads()[0].GetMetadata()[converter.MetadataEncoding]))
	assert.NotContains(t, rec.Body.String(), "c2lnbmFsIGlucHV0", "the plaintext's base64 is not in the answer")
}

func TestHandlerRefuses(t *testing.T) {
	s := newCodecServer(t)
	session := s.login(t)
	tests := []struct {
		name        string
		method      string
		path        string
		header      map[string]string
		cookie      *http.Cookie
		afterExpiry bool
		body        []byte
		want        int
	}{
		{name: "no credentials", want: http.StatusUnauthorized},
		{name: "wrong token", header: map[string]string{"Authorization": "Bearer " + testToken + "x"}, want: http.StatusUnauthorized},
		{name: "token prefix", header: map[string]string{"Authorization": "Bearer " + testToken[:10]}, want: http.StatusUnauthorized},
		{name: "token as basic auth", header: map[string]string{"Authorization": "Basic " + testToken}, want: http.StatusUnauthorized},
		{name: "empty bearer", header: map[string]string{"Authorization": "Bearer "}, want: http.StatusUnauthorized},
		{name: "forged session", cookie: &http.Cookie{Name: payloadcodec.SessionCookie, Value: "99999999999.abc"},
			header: map[string]string{"Content-Type": "application/json"}, want: http.StatusUnauthorized},
		{name: "session on a form post", cookie: session,
			header: map[string]string{"Content-Type": "text/plain"}, want: http.StatusUnauthorized},
		{name: "expired session", cookie: session, afterExpiry: true,
			header: map[string]string{"Content-Type": "application/json"}, want: http.StatusUnauthorized},
		{name: "other origin, right token", header: map[string]string{"Authorization": "Bearer " + testToken, "Origin": "https://evil.example"}, want: http.StatusForbidden},
		{name: "too large", header: map[string]string{"Authorization": "Bearer " + testToken}, body: bytes.Repeat([]byte("x"), 65<<10), want: http.StatusBadRequest},
		{name: "not a codec path", path: "/other", header: map[string]string{"Authorization": "Bearer " + testToken}, want: http.StatusNotFound},
		{name: "GET decode", method: http.MethodGet, header: map[string]string{"Authorization": "Bearer " + testToken}, want: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path, body := tt.method, tt.path, tt.body
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/decode"
			}
			if body == nil {
				body = s.sealed(t, "secret")
			}
			req := httptest.NewRequest(method, path, bytes.NewReader(body))
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.cookie != nil {
				req.AddCookie(tt.cookie)
			}
			s.now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
			if tt.afterExpiry {
				s.now = s.now.Add(13 * time.Hour)
			}
			rec := s.do(req)
			assert.Equal(t, tt.want, rec.Code, rec.Body.String())
			assert.NotContains(t, rec.Body.String(), "secret", "nothing decrypted leaks into a refusal")
		})
	}
}

// The Web UI's way in: the login form sets a session cookie, and the UI's requests
// (JSON, "Include cross-origin credentials" on) carry it.
func TestHandlerSessionFromLogin(t *testing.T) {
	s := newCodecServer(t)
	rec := s.do(httptest.NewRequest(http.MethodGet, "/login", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `name="token"`)

	bad := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("token=wrong"))
	bad.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = s.do(bad)
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Empty(t, rec.Result().Cookies())

	req := httptest.NewRequest(http.MethodPost, "/decode", bytes.NewReader(s.sealed(t, "from the UI")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", uiOrigin)
	req.AddCookie(s.login(t))
	rec = s.do(req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, uiOrigin, rec.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", rec.Header().Get("Access-Control-Allow-Credentials"))
	assert.Contains(t, rec.Body.String(), `"ImZyb20gdGhlIFVJIg=="`, `the answer carries "from the UI" in plaintext JSON`)
}

func TestHandlerPreflight(t *testing.T) {
	tests := []struct {
		name       string
		origin     string
		want       int
		wantAllow  string
		wantHeader string
	}{
		{name: "the Web UI", origin: uiOrigin, want: http.StatusNoContent, wantAllow: uiOrigin, wantHeader: "Authorization, Content-Type, X-Namespace"},
		{name: "another site", origin: "https://evil.example", want: http.StatusForbidden},
		{name: "the UI's host on another port", origin: "http://127.0.0.1:9999", want: http.StatusForbidden},
	}
	s := newCodecServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodOptions, "/decode", nil)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
			rec := s.do(req)
			assert.Equal(t, tt.want, rec.Code)
			assert.Equal(t, tt.wantAllow, rec.Header().Get("Access-Control-Allow-Origin"))
			assert.Equal(t, tt.wantHeader, rec.Header().Get("Access-Control-Allow-Headers"))
		})
	}
}

func TestHandlerHealth(t *testing.T) {
	s := newCodecServer(t)
	assert.Equal(t, http.StatusNoContent, s.do(httptest.NewRequest(http.MethodGet, "/healthz", nil)).Code)
}
