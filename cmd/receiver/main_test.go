package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/assetsup/webhooks/internal/testfixture"
)

// The example receiver must accept exactly what the independent signature vectors in the
// repository's testdata sign.
func TestReceiverVerifiesVectors(t *testing.T) {
	for _, v := range testfixture.SignatureVectors(t) {
		h := handler(v.Secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
		tests := []struct {
			name string
			sig  string
			body string
			want int
		}{
			{name: "valid", sig: v.AssetsUp, body: v.Body, want: http.StatusNoContent},
			{name: "valid beside an old one", sig: "sha256=00," + v.AssetsUp, body: v.Body, want: http.StatusNoContent},
			{name: "body changed", sig: v.AssetsUp, body: v.Body + " ", want: http.StatusUnauthorized},
			{name: "missing", sig: "", body: v.Body, want: http.StatusUnauthorized},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
				req.Header.Set("X-AssetsUp-Signature", tt.sig)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				assert.Equal(t, tt.want, rec.Code)
			})
		}
	}
}
