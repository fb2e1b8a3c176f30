package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/netguard"
)

// withURL is a create body that is valid except, perhaps, for its url.
func withURL(url string) string { return hookJSON("n", url, "LOW_STOCK") }

// withEvents is a create body that is valid except, perhaps, for its raw events value.
func withEvents(raw string) string {
	return `{"name":"n","url":"https://hooks.example.com/h","events":` + raw + `}`
}

func TestCreateRejectsInvalidBody(t *testing.T) {
	s := newServer(t)
	user := newUser()

	tests := []struct {
		name        string
		give        string
		wantStatus  int
		wantCode    string
		wantMessage string // a part of the message, so the portal can show why
	}{
		{name: "name missing", give: `{"url":"https://hooks.example.com/h","events":["LOW_STOCK"]}`, wantCode: "invalid_name", wantMessage: "name"},
		{name: "name blank", give: validHook("   "), wantCode: "invalid_name", wantMessage: "name"},
		{name: "name only unicode spaces", give: validHook("\u00a0\u2003\t\n"), wantCode: "invalid_name"},
		{name: "name 101 chars", give: validHook(strings.Repeat("a", 101)), wantCode: "invalid_name", wantMessage: "100"},
		{name: "name 101 runes", give: validHook(strings.Repeat("é", 101)), wantCode: "invalid_name", wantMessage: "100"},
		// The driver drops NUL, so it would store a different name, or none at all.
		{name: "name with NUL", give: validHook("a\u0000b"), wantCode: "invalid_name", wantMessage: "NUL"},
		{name: "name only NUL", give: validHook("\u0000"), wantCode: "invalid_name"},
		{name: "name a number", give: `{"name":5,"url":"https://hooks.example.com/h","events":["LOW_STOCK"]}`, wantCode: "invalid_field", wantMessage: "name"},
		{name: "name null", give: `{"name":null,"url":"https://hooks.example.com/h","events":["LOW_STOCK"]}`, wantCode: "invalid_name"},
		{name: "url missing", give: `{"name":"n","events":["LOW_STOCK"]}`, wantCode: "invalid_url", wantMessage: "url"},
		{name: "url empty", give: withURL(""), wantCode: "invalid_url"},
		{name: "url ftp", give: withURL("ftp://x"), wantCode: "invalid_url", wantMessage: "http"},
		{name: "url relative", give: withURL("/relative"), wantCode: "invalid_url"},
		{name: "url no scheme", give: withURL("hooks.example.com/h"), wantCode: "invalid_url"},
		{name: "url no host", give: withURL("http://"), wantCode: "invalid_url", wantMessage: "host"},
		{name: "url javascript", give: withURL("javascript:alert(1)"), wantCode: "invalid_url"},
		{name: "url 2049 chars", give: withURL("https://hooks.example.com/" + strings.Repeat("a", 2049-26)), wantCode: "invalid_url", wantMessage: "2048"},
		{name: "url with credentials", give: withURL("https://user:pw@example.com/h"), wantCode: "invalid_url", wantMessage: "password"},
		{name: "url with user only", give: withURL("https://user@example.com/h"), wantCode: "invalid_url"},
		{name: "url port 0", give: withURL("https://example.com:0/h"), wantCode: "invalid_url", wantMessage: "port"},
		{name: "url port 65536", give: withURL("https://example.com:65536/h"), wantCode: "invalid_url", wantMessage: "port"},
		{name: "url unparsable", give: withURL("http://exa mple.com/%zz"), wantCode: "invalid_url"},
		{name: "url loopback", give: withURL("http://127.0.0.1/x"), wantCode: "forbidden_url"},
		{name: "url private", give: withURL("http://10.0.0.5/"), wantCode: "forbidden_url"},
		{name: "url cloud metadata", give: withURL("http://169.254.169.254/"), wantCode: "forbidden_url"},
		{name: "url v6 loopback", give: withURL("http://[::1]/"), wantCode: "forbidden_url"},
		{name: "url localhost", give: withURL("http://localhost/"), wantCode: "forbidden_url"},
		{name: "url localhost uppercase with port", give: withURL("http://LOCALHOST:8080/"), wantCode: "forbidden_url"},
		{name: "url decimal loopback", give: withURL("http://2130706433/"), wantCode: "forbidden_url"},
		{name: "url mapped v6 loopback", give: withURL("http://[::ffff:127.0.0.1]/"), wantCode: "forbidden_url"},
		{name: "events missing", give: `{"name":"n","url":"https://hooks.example.com/h"}`, wantCode: "invalid_events", wantMessage: "ASSET_TRANSFERRED"},
		{name: "events empty", give: withEvents(`[]`), wantCode: "invalid_events"},
		{name: "events null", give: withEvents(`null`), wantCode: "invalid_events"},
		{name: "events repeated", give: withEvents(`["LOW_STOCK","LOW_STOCK"]`), wantCode: "invalid_events", wantMessage: "LOW_STOCK"},
		{name: "events not a list", give: withEvents(`"LOW_STOCK"`), wantCode: "invalid_field", wantMessage: "events"},
		{name: "events unknown", give: withEvents(`["NOPE"]`), wantCode: "invalid_events", wantMessage: "ASSET_TRANSFERRED"},
		{name: "events a number", give: withEvents(`[1]`), wantCode: "invalid_field", wantMessage: "events"},
		{name: "events wrong case", give: withEvents(`["low_stock"]`), wantCode: "invalid_events"},
		{name: "events test event", give: withEvents(`["webhook.test"]`), wantCode: "invalid_events"},
		{name: "events one bad among good", give: withEvents(`["LOW_STOCK","NOPE"]`), wantCode: "invalid_events", wantMessage: "NOPE"},
		{name: "unknown field", give: `{"foo":1}`, wantCode: "unknown_field", wantMessage: "foo"},
		{name: "unknown field beside valid ones", give: `{"name":"n","url":"https://hooks.example.com/h","events":["LOW_STOCK"],"secret":"whsec_mine"}`, wantCode: "unknown_field", wantMessage: "secret"},
		{name: "isActive on create", give: `{"name":"n","url":"https://hooks.example.com/h","events":["LOW_STOCK"],"isActive":false}`, wantCode: "unknown_field"},
		{name: "malformed", give: `{`, wantCode: "invalid_json"},
		{name: "malformed mid-way", give: `{"name":"n",`, wantCode: "invalid_json"},
		{name: "trailing object", give: validHook("a") + validHook("b"), wantCode: "invalid_json"},
		{name: "trailing garbage", give: validHook("a") + "x", wantCode: "invalid_json"},
		{name: "empty body", give: ``, wantCode: "invalid_json"},
		{name: "whitespace body", give: " \n\t ", wantCode: "invalid_json"},
		{name: "array", give: `[]`, wantCode: "invalid_json"},
		{name: "null", give: `null`, wantCode: "invalid_json"},
		{name: "string", give: `"webhook"`, wantCode: "invalid_json"},
		{name: "number", give: `42`, wantCode: "invalid_json"},
		{name: "over 64 KiB", give: validHook(strings.Repeat("n", 65<<10)), wantStatus: http.StatusRequestEntityTooLarge, wantCode: "payload_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus := tt.wantStatus
			if wantStatus == 0 {
				wantStatus = http.StatusBadRequest
			}
			before := s.count(t, user)
			rec := s.do(t, http.MethodPost, "/webhooks", user, tt.give)
			msg := requireError(t, rec, wantStatus, tt.wantCode)
			assert.Contains(t, msg, tt.wantMessage)
			assert.Equal(t, before, s.count(t, user), "a refused body must store nothing")
		})
	}
	assert.Zero(t, s.count(t, user))
}

func TestUpdateRejectsInvalidBody(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("unchanged"))
	path := "/webhooks/" + w.ID
	rec := s.do(t, http.MethodGet, path, user, "")
	require.Equal(t, http.StatusOK, rec.Code)
	before := rec.Body.String()

	tests := []struct {
		name       string
		give       string
		wantStatus int
		wantCode   string
	}{
		{name: "name blank", give: `{"name":"   "}`, wantCode: "invalid_name"},
		{name: "name 101 chars", give: `{"name":"` + strings.Repeat("a", 101) + `"}`, wantCode: "invalid_name"},
		{name: "name with NUL", give: `{"name":"a\u0000b"}`, wantCode: "invalid_name"},
		{name: "url ftp", give: `{"url":"ftp://x"}`, wantCode: "invalid_url"},
		{name: "url empty", give: `{"url":""}`, wantCode: "invalid_url"},
		{name: "url with credentials", give: `{"url":"https://user:pw@example.com/h"}`, wantCode: "invalid_url"},
		{name: "url loopback", give: `{"url":"http://127.0.0.1/x"}`, wantCode: "forbidden_url"},
		{name: "url cloud metadata", give: `{"url":"http://169.254.169.254/"}`, wantCode: "forbidden_url"},
		{name: "events empty", give: `{"events":[]}`, wantCode: "invalid_events"},
		{name: "events repeated", give: `{"events":["LOW_STOCK","LOW_STOCK"]}`, wantCode: "invalid_events"},
		{name: "events unknown", give: `{"events":["NOPE"]}`, wantCode: "invalid_events"},
		{name: "events not a list", give: `{"events":"LOW_STOCK"}`, wantCode: "invalid_field"},
		{name: "isActive a string", give: `{"isActive":"yes"}`, wantCode: "invalid_field"},
		{name: "isActive a number", give: `{"isActive":1}`, wantCode: "invalid_field"},
		// A patch applies whole or not at all.
		{name: "valid name beside a bad url", give: `{"name":"changed","url":"ftp://x"}`, wantCode: "invalid_url"},
		{name: "pause beside bad events", give: `{"isActive":false,"events":["NOPE"]}`, wantCode: "invalid_events"},
		{name: "unknown field", give: `{"foo":1}`, wantCode: "unknown_field"},
		{name: "read-only field", give: `{"failureCount":0}`, wantCode: "unknown_field"},
		{name: "malformed", give: `{`, wantCode: "invalid_json"},
		{name: "trailing object", give: `{"name":"a"}{"name":"b"}`, wantCode: "invalid_json"},
		{name: "empty body", give: ``, wantCode: "invalid_json"},
		{name: "array", give: `[]`, wantCode: "invalid_json"},
		{name: "null", give: `null`, wantCode: "invalid_json"},
		{name: "over 64 KiB", give: `{"name":"` + strings.Repeat("n", 65<<10) + `"}`, wantStatus: http.StatusRequestEntityTooLarge, wantCode: "payload_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus := tt.wantStatus
			if wantStatus == 0 {
				wantStatus = http.StatusBadRequest
			}
			rec := s.do(t, http.MethodPatch, path, user, tt.give)
			requireError(t, rec, wantStatus, tt.wantCode)

			rec = s.do(t, http.MethodGet, path, user, "")
			require.Equal(t, http.StatusOK, rec.Code)
			assert.JSONEq(t, before, rec.Body.String(), "a refused patch must change nothing")
		})
	}
}

func TestCreateAcceptsBoundaryValues(t *testing.T) {
	s := newServer(t)
	user := newUser()
	var all []string
	for _, d := range events.Catalogue() {
		all = append(all, string(d.Name))
	}
	long := "https://hooks.example.com/" + strings.Repeat("a", 2048-26)
	require.Len(t, long, 2048)

	tests := []struct {
		name       string
		give       string
		wantName   string
		wantURL    string
		wantEvents []string
	}{
		{name: "name of 100 chars", give: validHook(strings.Repeat("a", 100)), wantName: strings.Repeat("a", 100)},
		// 100 characters of four bytes each: the cap counts characters, as the column check does.
		{name: "name of 100 emoji", give: validHook(strings.Repeat("🚀", 100)), wantName: strings.Repeat("🚀", 100)},
		{name: "name trimmed to 100", give: validHook("  " + strings.Repeat("b", 100) + "  "), wantName: strings.Repeat("b", 100)},
		{name: "url of 2048 chars", give: withURL(long), wantURL: long},
		{name: "url trimmed", give: withURL("  https://hooks.example.com/t  "), wantURL: "https://hooks.example.com/t"},
		{name: "url with port, query and fragment", give: withURL("https://hooks.example.com:8443/h?x=1#f"), wantURL: "https://hooks.example.com:8443/h?x=1#f"},
		{name: "url uppercase scheme", give: withURL("HTTPS://hooks.example.com/h"), wantURL: "HTTPS://hooks.example.com/h"},
		{name: "url public IP", give: withURL("http://93.184.216.34/h"), wantURL: "http://93.184.216.34/h"},
		{name: "every event", give: hookJSON("all", "https://hooks.example.com/h", all...), wantEvents: all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := s.create(t, user, tt.give)
			if tt.wantName != "" {
				assert.Equal(t, tt.wantName, w.Name)
			}
			if tt.wantURL != "" {
				assert.Equal(t, tt.wantURL, w.URL)
			}
			if tt.wantEvents != nil {
				assert.Equal(t, tt.wantEvents, w.Events)
			}
			// What was created reads back the same.
			rec := s.do(t, http.MethodGet, "/webhooks/"+w.ID, user, "")
			require.Equal(t, http.StatusOK, rec.Code)
			var got map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
			assert.Equal(t, w.Name, got["name"])
			assert.Equal(t, w.URL, got["url"])
		})
	}
}

// TestOddBodiesNeverFail500 sends bodies a fuzzer or a hostile client would: whatever
// they are, the answer is a success or a 4xx in the error shape, never a 500.
func TestOddBodiesNeverFail500(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("target"))
	nestedArrays := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	nestedObjects := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	manyEvents := `[` + strings.Repeat(`"LOW_STOCK",`, 4000) + `"LOW_STOCK"]`

	tests := []struct {
		name string
		give string
	}{
		{name: "huge number as name", give: `{"name":1e999999,"url":"https://hooks.example.com/h","events":["LOW_STOCK"]}`},
		{name: "huge integer in events", give: withEvents(`[123456789012345678901234567890]`)},
		{name: "huge number as isActive", give: `{"isActive":-1e400}`},
		{name: "NUL in name", give: validHook("a\u0000b")},
		{name: "only NUL as name", give: validHook("\u0000")},
		{name: "NUL in url", give: withURL("https://hooks.example.com/\u0000")},
		{name: "NUL in event", give: withEvents(`["LOW_STOCK\u0000"]`)},
		{name: "NUL in unknown key", give: `{"\u0000":1}`},
		{name: "control characters in name", give: validHook("tab\there\x1b[31mred\u007f")},
		{name: "emoji and RTL override in name", give: validHook("名前 🚀 \u202eevil")},
		{name: "lone surrogate in name", give: `{"name":"\ud800","url":"https://hooks.example.com/h","events":["LOW_STOCK"]}`},
		{name: "invalid UTF-8 in name", give: "{\"name\":\"\xff\xfe\xfd\",\"url\":\"https://hooks.example.com/h\",\"events\":[\"LOW_STOCK\"]}"},
		{name: "invalid UTF-8 in url", give: "{\"name\":\"n\",\"url\":\"https://hooks.example.com/\xff\",\"events\":[\"LOW_STOCK\"]}"},
		{name: "IDN host", give: withURL("https://bücher.example/h")},
		{name: "full-width loopback", give: withURL("http://１２７.０.０.１/")},
		{name: "hex loopback", give: withURL("http://0x7f.1/")},
		{name: "huge port", give: withURL("http://example.com:99999999999999999999999/")},
		{name: "v6 zone", give: withURL("http://[fe80::1%25eth0]/")},
		{name: "only a scheme", give: withURL("https:")},
		{name: "deeply nested arrays as events", give: withEvents(nestedArrays)},
		{name: "deeply nested arrays as body", give: nestedArrays},
		{name: "deeply nested objects in unknown field", give: `{"foo":` + nestedObjects + `}`},
		{name: "4001 events", give: withEvents(manyEvents)},
		{name: "duplicate keys", give: `{"name":"a","name":"b","url":"https://hooks.example.com/h","events":["LOW_STOCK"]}`},
		{name: "keys in other case", give: `{"NAME":"n","Url":"https://hooks.example.com/h","EVENTS":["LOW_STOCK"]}`},
		{name: "BOM before the body", give: "\ufeff" + validHook("bom")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct{ method, path string }{
				{http.MethodPost, "/webhooks"},
				{http.MethodPatch, "/webhooks/" + w.ID},
			} {
				rec := s.do(t, r.method, r.path, user, tt.give)
				require.Less(t, rec.Code, http.StatusInternalServerError, "%s: %s", r.method, rec.Body.String())
				if rec.Code >= http.StatusBadRequest {
					requireError(t, rec, rec.Code, errorCode(t, rec.Body.Bytes()))
				}
			}
		})
	}
}

// errorCode reads the code out of an error body, for checks that accept any 4xx.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e apiError
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.NotEmpty(t, e.Error.Code, string(body))
	return e.Error.Code
}

// TestPrivateTargetsAllowedByPolicy runs with WEBHOOK_ALLOW_PRIVATE_TARGETS on, as in
// local development where the receiver runs on the same machine.
func TestPrivateTargetsAllowedByPolicy(t *testing.T) {
	s := newServer(t, withPolicy(netguard.NewPolicy(true, nil)))
	user := newUser()

	w := s.create(t, user, withURL("http://127.0.0.1/x"))
	assert.Equal(t, "http://127.0.0.1/x", w.URL)
	w = s.create(t, user, withURL("http://localhost:8080/hook"))
	assert.Equal(t, "http://localhost:8080/hook", w.URL)

	rec := s.do(t, http.MethodPatch, "/webhooks/"+w.ID, user, `{"url":"http://10.0.0.5/"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"url":"http://10.0.0.5/"`)

	// The policy opens private addresses, not the other URL rules.
	rec = s.do(t, http.MethodPost, "/webhooks", user, withURL("http://user:pw@127.0.0.1/x"))
	requireError(t, rec, http.StatusBadRequest, "invalid_url")
	rec = s.do(t, http.MethodPost, "/webhooks", user, withURL("ftp://127.0.0.1/x"))
	requireError(t, rec, http.StatusBadRequest, "invalid_url")
	assert.Equal(t, 2, s.count(t, user))
}
