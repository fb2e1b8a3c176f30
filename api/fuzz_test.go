package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
)

// fuzzBox seals the custom headers of the bodies that pass.
var fuzzBox = func() *secrets.Box {
	box, _, err := testfixture.NewBox()
	if err != nil {
		panic(err)
	}
	return box
}()

// fuzzBody runs one body through the request decoder and both validators, as the
// create and patch handlers do, and fails on anything but success or a 400/413.
func fuzzBody(t *testing.T, body []byte) {
	h := &WebhookHandler{policy: netguard.NewPolicy(false, nil), box: fuzzBox, cfg: Config{
		MaxHeaders: 10, MaxHeaderBytes: 4096, FilterMaxBytes: 2048, FilterCostLimit: 10000,
	}}
	for _, patch := range []bool{false, true} {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest(http.MethodPost, "/webhooks", bytes.NewReader(body))
		c.Request.Body = http.MaxBytesReader(rec, c.Request.Body, 64<<10)
		var err error
		if patch {
			var req updateRequest
			if err = decodeJSON(c, &req); err == nil {
				_, err = h.validateUpdate(uuid.NewString(), req)
			}
		} else {
			var req createRequest
			if err = decodeJSON(c, &req); err == nil {
				_, _, err = h.validateCreate(req)
			}
		}
		if err == nil {
			continue
		}
		var apiErr *Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("body %q: error %v is not an API error (would be a 500)", body, err)
		}
		if apiErr.Status != http.StatusBadRequest && apiErr.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("body %q: status %d, want 400 or 413", body, apiErr.Status)
		}
		if apiErr.Message == "" || apiErr.Code == "" {
			t.Fatalf("body %q: error without code or message", body)
		}
	}
}

func FuzzWebhookBody(f *testing.F) {
	seeds := []string{
		`{"name":"n","url":"https://example.com/h","events":["LOW_STOCK"]}`,
		`{"name":"n","url":"http://2130706433/","events":["LOW_STOCK"]}`,
		`{"name":" ","url":"ftp://x","events":[]}`,
		`{"name":"n","url":"https://u:p@example.com","events":["LOW_STOCK","LOW_STOCK"]}`,
		`{"events":"LOW_STOCK"}`,
		`{"isActive":"yes"}`,
		`{"foo":1}`,
		`{"name":"n"}{"name":"m"}`,
		`[]`, `null`, `{`, ``, `{"events":[1,{}]}`,
		`{"name":"\u0000","url":"http://[::ffff:127.0.0.1]/","events":["ASSET_TRANSFERRED"]}`,
		`{"headers":{"X-Api-Key":"k","authorization":"Bearer t"},"rateLimit":{"perSecond":10,"burst":2},"maxInFlight":2,"filter":"data.qty < 5"}`,
		`{"headers":{"Host":"x","x-key":"a\r\nb"},"rateLimit":{"perSecond":-1},"maxInFlight":0,"filter":"data."}`,
		`{"headers":null,"rateLimit":null,"maxInFlight":null,"filter":null}`,
		`{"headers":[],"rateLimit":"10/s","maxInFlight":1.5,"filter":{"x":1}}`,
		`{"filter":"[1,2,3].all(x, [1,2,3].all(y, x != y))"}`,
		`{"filter":"((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))) == 1"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(fuzzBody)
}

// FuzzDeliveryCursor holds decodeCursor to its promise: every cursor it accepts is one
// PostgreSQL accepts in the list query, and through the API any cursor at all is a
// page or a 400 invalid_cursor, never a 500.
func FuzzDeliveryCursor(f *testing.F) {
	db := testinfra.DB(f)
	ctx := context.Background()
	jwtSecret := []byte("fuzz-delivery-cursor-secret-fuzz-delivery-cursor")
	router := NewRouter(Deps{
		DB:     db,
		Box:    testfixture.Box(f),
		Policy: netguard.NewPolicy(false, nil),
		Config: Config{
			JWTSecret: jwtSecret, MaxBodyBytes: 65536, MaxWebhooksPerUser: 10, TaskQueue: "webhooks",
			TestTimeout: time.Second, TemporalTimeout: time.Second, SecretGrace: time.Hour,
			RateLimit: math.MaxFloat64, RateBurst: 1, // no limit: every input must reach the handler
		},
		Logger: slog.New(slog.DiscardHandler), // a log line per input would only pile up
	})
	user := "fuzz-" + uuid.NewString()
	hook := &models.Webhook{
		ID: uuid.NewString(), UserID: user, Name: "fuzz", URL: "https://hooks.example.com/in",
		SecretHash: "fingerprint", SecretSealed: []byte("sealed"), SecretKeyVersion: 1,
		Events: []string{"LOW_STOCK"}, IsActive: true,
	}
	require.NoError(f, models.CreateWebhook(ctx, db, hook, 10))

	// The seeds are also committed under testdata/fuzz/FuzzDeliveryCursor.
	const id = "7d3c9a52-1b1e-4c3f-8f0a-0a6f1d2e3b4c"
	b64 := base64.RawURLEncoding.EncodeToString
	seeds := []string{
		encodeCursor(models.DeliveryCursor{CreatedAt: time.Date(2026, 11, 28, 12, 0, 0, 123456000, time.UTC), ID: id}),
		b64([]byte("0000-01-01T00:00:00Z|" + id)),                // PostgreSQL has no year 0
		b64([]byte("0001-01-01T00:00:00+01:00|" + id)),           // year 0 in UTC
		b64([]byte("9999-12-31T23:59:59.999999999-23:59|" + id)), // year 10000 in UTC
		b64([]byte("2026-11-28T12:00:00Z|urn:uuid:" + id)),       // an id form PostgreSQL does not parse
		b64([]byte("2026-11-28T12:00:00Z")),                      // no separator
		"", "!!!", "bm90IGEgY3Vyc29y",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		if cur, err := decodeCursor(cursor); err == nil {
			if _, err := models.ListDeliveries(ctx, db, hook.ID, "", "", 1, cur); err != nil {
				t.Fatalf("cursor %q decodes to %v %q, which PostgreSQL refuses: %v", cursor, cur.CreatedAt, cur.ID, err)
			}
		}

		token, err := IssueToken(jwtSecret, user, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/webhooks/"+hook.ID+"/deliveries?cursor="+url.QueryEscape(cursor), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
		case http.StatusBadRequest:
			var body errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != "invalid_cursor" {
				t.Fatalf("cursor %q: 400 %s, want invalid_cursor", cursor, rec.Body.String())
			}
		default:
			t.Fatalf("cursor %q: status %d %s, want 200 or 400", cursor, rec.Code, rec.Body.String())
		}
	})
}
