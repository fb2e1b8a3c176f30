package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/assetsup/webhooks/api"
)

// BenchmarkListWebhooks is GET /webhooks for a user with 100 webhooks, through the real
// router (auth, rate limit, logging, errors) and database: the API's share of the
// bench's API row, per request, with the list cache as deployed and without it.
// Targets live in bench/README.md, not here.
func BenchmarkListWebhooks(b *testing.B) {
	for _, tc := range []struct {
		name  string
		cache int
	}{{"cached", 32 << 20}, {"uncached", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 100
			s := newServer(b, withCap(n), withRateLimit(1e9, 1e9), func(d *api.Deps) { d.Config.ListCacheBytes = tc.cache })
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
			want := rec.Body.Len()

			b.ReportAllocs()
			for b.Loop() {
				rec := s.serve(s.newRequest(http.MethodGet, "/webhooks", auth))
				if rec.Code != http.StatusOK || rec.Body.Len() != want {
					b.Fatalf("GET /webhooks answered %d with %d bytes, want 200 with %d", rec.Code, rec.Body.Len(), want)
				}
			}
		})
	}
}
