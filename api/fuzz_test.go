package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/assetsup/webhooks/netguard"
)

// fuzzBody runs one body through the request decoder and both validators, as the
// create and patch handlers do, and fails on anything but success or a 400/413.
func fuzzBody(t *testing.T, body []byte) {
	h := &WebhookHandler{policy: netguard.NewPolicy(false, nil)}
	for _, patch := range []bool{false, true} {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest(http.MethodPost, "/webhooks", bytes.NewReader(body))
		c.Request.Body = http.MaxBytesReader(rec, c.Request.Body, 64<<10)
		var err error
		if patch {
			var req updateRequest
			if err = decodeJSON(c, &req); err == nil {
				_, err = h.validateUpdate(req)
			}
		} else {
			var req createRequest
			if err = decodeJSON(c, &req); err == nil {
				_, err = h.validateCreate(req)
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
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(fuzzBody)
}
