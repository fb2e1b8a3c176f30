package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkListWebhooks is GET /webhooks for a user with 100 webhooks, through the real
// router (auth, rate limit, logging, errors) and database: the API's share of the
// bench's API row, per request. Targets live in bench/README.md, not here.
func BenchmarkListWebhooks(b *testing.B) {
	const n = 100
	s := newServer(b, withCap(n), withRateLimit(1e9, 1e9))
	user := newUser()
	for i := range n {
		s.create(b, user, hookJSON(fmt.Sprintf("hook %03d", i), "https://hooks.example.com/in/"+fmt.Sprint(i), "LOW_STOCK", "ASSET_TRANSFERRED"))
	}
	auth := "Bearer " + s.token(b, user)

	// A fast wrong answer must not pass: the list has to hold every webhook.
	rec := s.doAuth(b, http.MethodGet, "/webhooks", auth, "")
	var list []json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != n {
		b.Fatalf("GET /webhooks: %d webhooks, %v", len(list), err)
	}

	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/webhooks", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		s.router.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /webhooks answered %d", rec.Code)
		}
	}
}
