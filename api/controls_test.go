package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/headers"
	"github.com/assetsup/webhooks/models"
)

// withControls is a valid create body with the given endpoint controls added.
func withControls(controls map[string]any) string {
	body := map[string]any{"name": "n", "url": "https://hooks.example.com/h", "events": []string{"LOW_STOCK"}}
	for k, v := range controls {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestCreateWithEndpointControls(t *testing.T) {
	s := newServer(t)
	user := newUser()
	const apiKey, bearer = "key-5b1f0c2e-value", "Bearer token-9a8b7c"
	w := s.create(t, user, withControls(map[string]any{
		"headers":     map[string]string{"x-api-key": apiKey, "Authorization": bearer},
		"rateLimit":   map[string]any{"perSecond": 2.5, "burst": 3},
		"maxInFlight": 4,
		"filter":      `  event == "LOW_STOCK" && data.qty < 5  `,
	}))

	// Names (canonical, sorted) and fingerprints, never the values.
	assert.Equal(t, []api.HeaderView{
		{Name: "Authorization", Fingerprint: headers.Fingerprint(bearer)},
		{Name: "X-Api-Key", Fingerprint: headers.Fingerprint(apiKey)},
	}, w.Headers)
	assert.Equal(t, &api.RateLimit{PerSecond: 2.5, Burst: 3}, w.RateLimit)
	assert.Equal(t, 4, *w.MaxInFlight)
	assert.Equal(t, `event == "LOW_STOCK" && data.qty < 5`, *w.Filter, "stored trimmed")

	for _, path := range []string{"/webhooks", "/webhooks/" + w.ID} {
		rec := s.do(t, http.MethodGet, path, user, "")
		require.Equal(t, http.StatusOK, rec.Code)
		assert.NotContains(t, rec.Body.String(), apiKey, "GET %s shows a header value", path)
		assert.NotContains(t, rec.Body.String(), "token-9a8b7c", "GET %s shows a header value", path)
		assert.Contains(t, rec.Body.String(), `"X-Api-Key"`)
	}

	// At rest the values are sealed, bound to this webhook, and open with the box.
	row, err := models.GetWebhook(context.Background(), s.db, user, w.ID)
	require.NoError(t, err)
	assert.NotContains(t, string(row.HeadersSealed), apiKey)
	opened, err := headers.Open(s.box, w.ID, row.HeadersSealed, row.HeadersKeyVersion)
	require.NoError(t, err)
	assert.Equal(t, []headers.Header{{Name: "Authorization", Value: bearer}, {Name: "X-Api-Key", Value: apiKey}}, opened)
	_, err = headers.Open(s.box, "another-webhook", row.HeadersSealed, row.HeadersKeyVersion)
	require.Error(t, err, "sealed headers copied to another webhook do not open")

	// Without controls: none shown, none stored.
	plain := s.create(t, user, validHook("plain"))
	assert.Equal(t, []api.HeaderView{}, plain.Headers)
	assert.Nil(t, plain.RateLimit)
	assert.Nil(t, plain.MaxInFlight)
	assert.Nil(t, plain.Filter)
}

func TestCreateRefusesBadEndpointControls(t *testing.T) {
	s := newServer(t)
	user := newUser()
	tooMany := map[string]string{}
	for i := range 11 {
		tooMany["X-H"+strings.Repeat("h", i)] = "v"
	}
	tests := []struct {
		name        string
		give        map[string]any
		wantCode    string
		wantMessage string
	}{
		{name: "header Host", give: map[string]any{"headers": map[string]string{"host": "x"}}, wantCode: "invalid_headers", wantMessage: "Host is reserved"},
		{name: "header Content-Type", give: map[string]any{"headers": map[string]string{"Content-Type": "text/plain"}}, wantCode: "invalid_headers", wantMessage: "reserved"},
		{name: "header Content-Length", give: map[string]any{"headers": map[string]string{"content-length": "1"}}, wantCode: "invalid_headers", wantMessage: "reserved"},
		{name: "header Transfer-Encoding", give: map[string]any{"headers": map[string]string{"Transfer-Encoding": "chunked"}}, wantCode: "invalid_headers", wantMessage: "reserved"},
		{name: "header Connection", give: map[string]any{"headers": map[string]string{"Connection": "close"}}, wantCode: "invalid_headers", wantMessage: "reserved"},
		{name: "header User-Agent", give: map[string]any{"headers": map[string]string{"User-Agent": "me"}}, wantCode: "invalid_headers", wantMessage: "reserved"},
		{name: "header X-AssetsUp-Signature", give: map[string]any{"headers": map[string]string{"X-AssetsUp-Signature": "sha256=00"}}, wantCode: "invalid_headers", wantMessage: "reserved"},
		{name: "header any x-assetsup-", give: map[string]any{"headers": map[string]string{"x-assetsup-anything": "v"}}, wantCode: "invalid_headers", wantMessage: "X-AssetsUp-*"},
		{name: "header webhook-signature", give: map[string]any{"headers": map[string]string{"webhook-signature": "v1,x"}}, wantCode: "invalid_headers", wantMessage: "webhook-*"},
		{name: "header Webhook-Id", give: map[string]any{"headers": map[string]string{"Webhook-Id": "x"}}, wantCode: "invalid_headers", wantMessage: "reserved"},
		{name: "header name with space", give: map[string]any{"headers": map[string]string{"X Key": "v"}}, wantCode: "invalid_headers", wantMessage: "not a valid HTTP header name"},
		{name: "header name with colon", give: map[string]any{"headers": map[string]string{"X-Key:": "v"}}, wantCode: "invalid_headers"},
		{name: "header name empty", give: map[string]any{"headers": map[string]string{"": "v"}}, wantCode: "invalid_headers"},
		{name: "header value CRLF", give: map[string]any{"headers": map[string]string{"X-Key": "a\r\nX-Evil: 1"}}, wantCode: "invalid_headers", wantMessage: "control character"},
		{name: "header value NUL", give: map[string]any{"headers": map[string]string{"X-Key": "a\u0000b"}}, wantCode: "invalid_headers"},
		{name: "header value empty", give: map[string]any{"headers": map[string]string{"X-Key": " "}}, wantCode: "invalid_headers", wantMessage: "empty"},
		{name: "header twice by case", give: map[string]any{"headers": map[string]string{"X-Key": "a", "x-key": "b"}}, wantCode: "invalid_headers", wantMessage: "twice"},
		{name: "too many headers", give: map[string]any{"headers": tooMany}, wantCode: "invalid_headers", wantMessage: "at most 10"},
		{name: "headers too large", give: map[string]any{"headers": map[string]string{"X-Key": strings.Repeat("v", 4096)}}, wantCode: "invalid_headers", wantMessage: "4096"},
		{name: "headers a list", give: map[string]any{"headers": []string{"X-Key: v"}}, wantCode: "invalid_field", wantMessage: "headers"},
		{name: "header value a number", give: map[string]any{"headers": map[string]any{"X-Key": 1}}, wantCode: "invalid_field", wantMessage: "headers"},
		{name: "rate zero", give: map[string]any{"rateLimit": map[string]any{"perSecond": 0}}, wantCode: "invalid_rate_limit", wantMessage: "perSecond"},
		{name: "rate negative", give: map[string]any{"rateLimit": map[string]any{"perSecond": -1}}, wantCode: "invalid_rate_limit"},
		{name: "rate huge", give: map[string]any{"rateLimit": map[string]any{"perSecond": 1e9}}, wantCode: "invalid_rate_limit", wantMessage: "10000"},
		{name: "rate missing perSecond", give: map[string]any{"rateLimit": map[string]any{"burst": 2}}, wantCode: "invalid_rate_limit"},
		{name: "rate burst zero", give: map[string]any{"rateLimit": map[string]any{"perSecond": 1, "burst": 0}}, wantCode: "invalid_rate_limit", wantMessage: "burst"},
		{name: "rate burst fractional", give: map[string]any{"rateLimit": map[string]any{"perSecond": 1, "burst": 1.5}}, wantCode: "invalid_field", wantMessage: "rateLimit.burst"},
		{name: "rate a string", give: map[string]any{"rateLimit": "10/s"}, wantCode: "invalid_field", wantMessage: "rateLimit"},
		{name: "rate unknown field", give: map[string]any{"rateLimit": map[string]any{"perSecond": 1, "perMinute": 60}}, wantCode: "unknown_field", wantMessage: "perMinute"},
		{name: "maxInFlight zero", give: map[string]any{"maxInFlight": 0}, wantCode: "invalid_max_in_flight"},
		{name: "maxInFlight huge", give: map[string]any{"maxInFlight": 100000}, wantCode: "invalid_max_in_flight", wantMessage: "1000"},
		{name: "maxInFlight fractional", give: map[string]any{"maxInFlight": 2.5}, wantCode: "invalid_field", wantMessage: "maxInFlight"},
		{name: "filter syntax", give: map[string]any{"filter": "data.qty <"}, wantCode: "invalid_filter", wantMessage: "line 1, column 11"},
		{name: "filter unknown variable", give: map[string]any{"filter": "payload.qty < 5"}, wantCode: "invalid_filter", wantMessage: "undeclared reference to 'payload'"},
		{name: "filter on line 2", give: map[string]any{"filter": "event == \"LOW_STOCK\" &&\n  data.qty <> 5"}, wantCode: "invalid_filter", wantMessage: "line 2"},
		{name: "filter not a bool", give: map[string]any{"filter": "data.qty"}, wantCode: "invalid_filter", wantMessage: "true or false"},
		{name: "filter a string literal", give: map[string]any{"filter": `"yes"`}, wantCode: "invalid_filter", wantMessage: "true or false"},
		{name: "filter bad regex", give: map[string]any{"filter": `data.sku.matches("(")`}, wantCode: "invalid_filter"},
		{name: "filter too long", give: map[string]any{"filter": "true || " + strings.Repeat("a", 2048)}, wantCode: "invalid_filter", wantMessage: "2048"},
		{name: "filter a number", give: map[string]any{"filter": 5}, wantCode: "invalid_field", wantMessage: "filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(t, http.MethodPost, "/webhooks", user, withControls(tt.give))
			msg := requireError(t, rec, http.StatusBadRequest, tt.wantCode)
			assert.Contains(t, msg, tt.wantMessage)
		})
	}
	assert.Zero(t, s.count(t, user), "a refused body must store nothing")
}

// Hostile filters are refused with a 400 that says why, never a 500, and at once: deep
// nesting, huge literals, and comprehensions too costly on any event. What compiling
// cannot know (the size of an event's data) is bounded by the cost limit at delivery
// (see the filter package's tests).
func TestHostileFiltersAreRefused(t *testing.T) {
	s := newServer(t)
	user := newUser()
	list := "[" + strings.TrimSuffix(strings.Repeat("1,", 300), ",") + "]"
	tests := []struct {
		name        string
		give        string
		wantMessage string
	}{
		{name: "deep parentheses", give: strings.Repeat("(", 500) + "true" + strings.Repeat(")", 500), wantMessage: "recursion"},
		{name: "deep lists", give: "size(" + strings.Repeat("[", 300) + strings.Repeat("]", 300) + ") > 0"},
		{name: "deep member chain", give: "has(data" + strings.Repeat(".a", 600) + ")"},
		{name: "huge string literal", give: `data.s == "` + strings.Repeat("x", 10000) + `"`, wantMessage: "at most 2048"},
		{name: "huge list literal", give: "data.qty in [" + strings.TrimSuffix(strings.Repeat("1,", 3000), ",") + "]", wantMessage: "at most 2048"},
		{name: "comprehensions three deep", give: "data.a.all(x, data.b.all(y, data.c.all(z, x == y && y == z)))", wantMessage: "nesting"},
		{name: "costly on every event", give: list + ".all(x, " + list + ".all(y, x == y || true))", wantMessage: "cost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			rec := s.do(t, http.MethodPost, "/webhooks", user, withControls(map[string]any{"filter": tt.give}))
			msg := requireError(t, rec, http.StatusBadRequest, "invalid_filter")
			assert.Contains(t, msg, tt.wantMessage)
			assert.Less(t, time.Since(start), time.Second, "refused at once")
		})
	}
	assert.Zero(t, s.count(t, user))
}

// A PATCH leaves a control it does not name alone, replaces it when given, and removes
// it with null; headers are replaced as a whole.
func TestUpdateEndpointControls(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, withControls(map[string]any{
		"headers":     map[string]string{"X-Api-Key": "first-value"},
		"rateLimit":   map[string]any{"perSecond": 10},
		"maxInFlight": 2,
		"filter":      "data.qty < 5",
	}))
	require.Equal(t, &api.RateLimit{PerSecond: 10, Burst: 1}, w.RateLimit, "burst defaults to 1")
	path := "/webhooks/" + w.ID

	patch := func(body string) api.Webhook {
		t.Helper()
		rec := s.do(t, http.MethodPatch, path, user, body)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var got api.Webhook
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		return got
	}
	got := patch(`{"name":"renamed"}`)
	assert.Equal(t, w.Headers, got.Headers, "not named: unchanged")
	assert.Equal(t, w.RateLimit, got.RateLimit)
	assert.Equal(t, w.MaxInFlight, got.MaxInFlight)
	assert.Equal(t, w.Filter, got.Filter)

	got = patch(`{"headers":{"Authorization":"Basic abc"},"rateLimit":{"perSecond":0.5,"burst":2},"maxInFlight":1,"filter":"event == \"LOW_STOCK\""}`)
	assert.Equal(t, []api.HeaderView{{Name: "Authorization", Fingerprint: headers.Fingerprint("Basic abc")}}, got.Headers, "the set is replaced")
	assert.Equal(t, &api.RateLimit{PerSecond: 0.5, Burst: 2}, got.RateLimit)
	assert.Equal(t, 1, *got.MaxInFlight)
	assert.Equal(t, `event == "LOW_STOCK"`, *got.Filter)
	row, err := models.GetWebhook(context.Background(), s.db, user, w.ID)
	require.NoError(t, err)
	opened, err := headers.Open(s.box, w.ID, row.HeadersSealed, row.HeadersKeyVersion)
	require.NoError(t, err)
	assert.Equal(t, []headers.Header{{Name: "Authorization", Value: "Basic abc"}}, opened)

	// A refused patch changes nothing, the valid controls beside it included.
	rec := s.do(t, http.MethodPatch, path, user, `{"maxInFlight":5,"filter":"data."}`)
	requireError(t, rec, http.StatusBadRequest, "invalid_filter")
	assert.Equal(t, 1, *s.get(t, user, w.ID).MaxInFlight)

	got = patch(`{"headers":{},"rateLimit":null,"maxInFlight":null,"filter":null}`)
	assert.Equal(t, []api.HeaderView{}, got.Headers)
	assert.Nil(t, got.RateLimit)
	assert.Nil(t, got.MaxInFlight)
	assert.Nil(t, got.Filter)
	row, err = models.GetWebhook(context.Background(), s.db, user, w.ID)
	require.NoError(t, err)
	assert.Nil(t, row.HeadersSealed, "removed headers leave nothing sealed behind")

	got = patch(`{"headers":{"X-Api-Key":"again"},"filter":"   "}`)
	assert.Len(t, got.Headers, 1)
	assert.Nil(t, got.Filter, "a blank filter is no filter")
	got = patch(`{"headers":null}`)
	assert.Equal(t, []api.HeaderView{}, got.Headers, "null removes the headers too")
}

// get reads one webhook through the API.
func (s *testServer) get(t *testing.T, user, id string) api.Webhook {
	t.Helper()
	rec := s.do(t, http.MethodGet, "/webhooks/"+id, user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var w api.Webhook
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &w))
	return w
}
