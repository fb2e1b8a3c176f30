// Command receiver is an example webhook receiver for local development: it verifies
// X-AssetsUp-Signature over the raw body, in constant time, before trusting anything,
// and prints each verified event. It is the Go snippet of docs/integration.md, runnable.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9999", "listen address")
	secret := flag.String("secret", os.Getenv("WEBHOOK_SECRET"), "the whsec_ secret shown when the webhook was created (or WEBHOOK_SECRET)")
	flag.Parse()
	if !strings.HasPrefix(*secret, "whsec_") {
		fmt.Fprintln(os.Stderr, "receiver: --secret (or WEBHOOK_SECRET) must be the whsec_ secret of the webhook")
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil))
	srv := &http.Server{Addr: *addr, Handler: handler(*secret, logger), ReadHeaderTimeout: 5 * time.Second}
	logger.Info("receiver listening", "addr", *addr)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

func handler(secret string, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if !validSignature(secret, body, r.Header.Get("X-AssetsUp-Signature")) {
			logger.Warn("signature mismatch: rejected", "delivery", r.Header.Get("X-AssetsUp-Delivery"))
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		logger.Info("verified delivery",
			"event", r.Header.Get("X-AssetsUp-Event"),
			"delivery", r.Header.Get("X-AssetsUp-Delivery"),
			"body", string(body))
		w.WriteHeader(http.StatusNoContent)
	})
}

// validSignature accepts the header if any of its comma-separated signatures (two
// during a secret rotation) is the HMAC-SHA256 of the raw body under secret.
func validSignature(secret string, body []byte, header string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := []byte("sha256=" + hex.EncodeToString(mac.Sum(nil)))
	ok := false
	for _, sig := range strings.Split(header, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(sig)), want) {
			ok = true
		}
	}
	return ok
}
