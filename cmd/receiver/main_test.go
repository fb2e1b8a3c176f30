package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The example receiver must accept exactly what the independent signature vectors in the
// repository's testdata sign.
func TestReceiverVerifiesVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "signatures.json"))
	require.NoError(t, err)
	var doc struct {
		Vectors []struct {
			Secret    string `json:"secret"`
			Body      string `json:"body"`
			Signature string `json:"x_assetsup_signature"`
		} `json:"vectors"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.NotEmpty(t, doc.Vectors)
	for _, v := range doc.Vectors {
		h := handler(v.Secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
		tests := []struct {
			name string
			sig  string
			body string
			want int
		}{
			{name: "valid", sig: v.Signature, body: v.Body, want: http.StatusNoContent},
			{name: "valid beside an old one", sig: "sha256=00," + v.Signature, body: v.Body, want: http.StatusNoContent},
			{name: "body changed", sig: v.Signature, body: v.Body + " ", want: http.StatusUnauthorized},
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
