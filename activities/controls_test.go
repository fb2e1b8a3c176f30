package activities_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/headers"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/secrets"
)

// setControls changes a webhook's endpoint controls as the API's PATCH does.
func setControls(t *testing.T, db bun.IDB, h hook, p models.WebhookPatch) {
	t.Helper()
	_, err := models.UpdateWebhook(context.Background(), db, h.UserID, h.ID, p)
	require.NoError(t, err)
}

// setHeaders seals hs onto the webhook, and remembers every value for the leak checks.
func setHeaders(t *testing.T, db bun.IDB, box *secrets.Box, h hook, hs ...headers.Header) {
	t.Helper()
	sealed, version, err := headers.Seal(box, h.ID, hs)
	require.NoError(t, err)
	info := make([]models.HeaderInfo, len(hs))
	for i, x := range hs {
		info[i] = models.HeaderInfo{Name: x.Name, Fingerprint: headers.Fingerprint(x.Value)}
		remember(x.Value)
	}
	setControls(t, db, h, models.WebhookPatch{Headers: &models.SealedHeaders{Info: info, Sealed: sealed, KeyVersion: version}})
}

func ptr[T any](v T) *T { return &v }

// Custom headers go with every attempt of every kind of delivery, beside the service's
// own; their values appear in no error, log line or delivery log row.
func TestSendCarriesCustomHeaders(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL+"/in")
	const apiKey, auth = "api-key-3f9d1c7e", "Bearer gateway-token-51e0"
	setHeaders(t, db, box, h, headers.Header{Name: "X-Api-Key", Value: apiKey}, headers.Header{Name: "Authorization", Value: auth})
	s := newActivities(t, db, box, testConfig(), 5*time.Second)
	env := newEnv(t, s)

	event := eventInput(h.ID)
	rcv.FailFirst(1)
	_, err := send(t, env, s, event)
	require.Error(t, err, "the first attempt fails at the receiver")
	_, err = send(t, env, s, event)
	require.NoError(t, err)
	test := eventInput(h.ID)
	test.Kind, test.Payload = delivery.KindTest, events.Payload{Event: events.Test, Timestamp: "2026-11-28T12:00:00Z"}
	_, err = send(t, env, s, test)
	require.NoError(t, err)
	redo := eventInput(h.ID)
	redo.Kind, redo.RedeliveryOf = delivery.KindRedelivery, event.DeliveryID
	_, err = send(t, env, s, redo)
	require.NoError(t, err)

	reqs := rcv.Requests()
	require.Len(t, reqs, 4)
	for i, r := range reqs {
		assert.Equal(t, apiKey, r.Header.Get("X-Api-Key"), "request %d", i)
		assert.Equal(t, auth, r.Header.Get("Authorization"), "request %d", i)
		assert.NotEmpty(t, r.Header.Get("X-AssetsUp-Signature"), "request %d keeps the service's headers", i)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"), "request %d", i)
	}
	var rows []map[string]any
	require.NoError(t, db.NewRaw("SELECT * FROM webhook_deliveries WHERE webhook_id = ?", h.ID).Scan(context.Background(), &rows))
	require.Len(t, rows, 3)
	for _, row := range rows {
		for col, v := range row {
			assert.NotContains(t, fmt.Sprint(v), apiKey, "delivery log column %s", col)
			assert.NotContains(t, fmt.Sprint(v), "gateway-token", "delivery log column %s", col)
		}
	}
}

// Sealed headers that the configured keys cannot open stop the delivery as our failure:
// nothing is sent without them, and nothing is counted.
func TestSendWaitsWhenHeadersCannotBeOpened(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL+"/in")
	setHeaders(t, db, testfixture.Box(t), h, headers.Header{Name: "X-Api-Key", Value: "sealed-under-another-key"})
	s := newActivities(t, db, box, testConfig(), 5*time.Second)

	in := eventInput(h.ID)
	_, err := send(t, newEnv(t, s), s, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.ErrTypeSecret, appErr.Type())
	assert.Empty(t, rcv.Requests())
	noLogRow(t, db, h.ID, in.DeliveryID)
}

// Send applies the webhook's filter to an event not yet attempted: a miss is closed as
// filtered with its body, never sent, never counted; tests and redeliveries ignore it.
func TestSendFiltersEvents(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	s := newActivities(t, db, box, testConfig(), 5*time.Second)
	env := newEnv(t, s)
	// eventInput's data: {"sku":"A-1","qty":3,...}
	tests := []struct {
		name       string
		filter     string
		kind       delivery.Kind
		wantSent   bool
		wantReason string
	}{
		{name: "match", filter: `data.qty < 5 && data.sku == "A-1"`, kind: delivery.KindEvent, wantSent: true},
		{name: "miss", filter: `data.qty < 2`, kind: delivery.KindEvent, wantReason: "filtered: filter did not match the event"},
		{name: "failed evaluation", filter: `data.price > 10.0`, kind: delivery.KindEvent, wantReason: "filtered: filter failed on this event: "},
		{name: "test delivery ignores it", filter: `false`, kind: delivery.KindTest, wantSent: true},
		{name: "redelivery ignores it", filter: `false`, kind: delivery.KindRedelivery, wantSent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL+"/"+uuid.NewString())
			setControls(t, db, h, models.WebhookPatch{SetFilter: true, Filter: ptr(tt.filter)})
			in := eventInput(h.ID)
			in.Kind = tt.kind
			before := len(rcv.Requests())
			res, err := send(t, env, s, in)
			require.NoError(t, err)
			if tt.wantSent {
				assert.False(t, res.Skipped)
				assert.Len(t, rcv.Requests(), before+1)
				return
			}
			assert.True(t, res.Skipped)
			assert.Contains(t, res.Reason, tt.wantReason)
			assert.Len(t, rcv.Requests(), before, "nothing sent")
			row := logRow(t, db, h.ID, in.DeliveryID)
			assert.Equal(t, delivery.OutcomeFiltered, row.Status)
			assert.Zero(t, row.Attempts)
			assert.NotNil(t, row.CompletedAt)
			assert.Contains(t, "filtered: "+*row.LastError, tt.wantReason)
			assert.JSONEq(t, mustMarshal(t, in.Payload), string(row.RequestBody), "the body it would have carried")
			assert.Zero(t, webhook(t, db, h).FailureCount)

			// The workflow's retry of the step, or a later dispatch, finds it filtered.
			again, err := send(t, env, s, in)
			require.NoError(t, err)
			assert.Equal(t, res, again)
			assert.Len(t, rcv.Requests(), before)
		})
	}
}

func mustMarshal(t *testing.T, p events.Payload) string {
	t.Helper()
	b, err := p.Marshal()
	require.NoError(t, err)
	return string(b)
}

// The listing applies filters: only matching subscribers start deliveries, the others
// are logged as filtered under the delivery id the dispatch would have used, once,
// however often the step runs. A listing without the payload (a run started before
// filters) leaves filtering to Send.
func TestListSubscribersAppliesFilters(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	user := "user-" + uuid.NewString()
	const url = "http://127.0.0.1:9/in"
	plain := createHook(t, db, box, user, url)
	match := createHook(t, db, box, user, url)
	setControls(t, db, match, models.WebhookPatch{SetFilter: true, Filter: ptr(`data.qty < 5`)})
	miss := createHook(t, db, box, user, url)
	setControls(t, db, miss, models.WebhookPatch{SetFilter: true, Filter: ptr(`data.qty > 5`)})
	broken := createHook(t, db, box, user, url)
	setControls(t, db, broken, models.WebhookPatch{SetFilter: true, Filter: ptr(`data.missing == "x"`)})

	s := newActivities(t, db, box, testConfig(), time.Second)
	env := newEnv(t, s)
	payload := eventInput(plain.ID).Payload
	list := func(in activities.ListSubscribersInput) []string {
		t.Helper()
		val, err := env.ExecuteActivity(s.ListSubscribers, in)
		require.NoError(t, err)
		var res activities.ListSubscribersResult
		require.NoError(t, val.Get(&res))
		var ids []string
		for _, sub := range res.Subscribers {
			ids = append(ids, sub.ID)
		}
		return ids
	}
	in := activities.ListSubscribersInput{UserID: user, Event: events.LowStock, Payload: &payload}
	for range 2 {
		assert.ElementsMatch(t, []string{plain.ID, match.ID}, list(in))
	}
	for _, h := range []hook{miss, broken} {
		row := logRow(t, db, h.ID, delivery.ID(payload.ID, h.ID))
		assert.Equal(t, delivery.OutcomeFiltered, row.Status)
		assert.Equal(t, delivery.KindEvent, row.Kind)
		assert.Equal(t, payload.ID, row.EventID)
		assert.Zero(t, row.Attempts)
		assert.JSONEq(t, mustMarshal(t, payload), string(row.RequestBody))
	}
	assert.Contains(t, *logRow(t, db, broken.ID, delivery.ID(payload.ID, broken.ID)).LastError, "no such key")
	for _, h := range []hook{plain, match} {
		noLogRow(t, db, h.ID, delivery.ID(payload.ID, h.ID))
	}
	var rows int
	require.NoError(t, db.NewRaw("SELECT count(*) FROM webhook_deliveries WHERE event_id = ?", payload.ID).Scan(context.Background(), &rows))
	assert.Equal(t, 2, rows, "listing twice logs each filtered delivery once")

	legacy := activities.ListSubscribersInput{UserID: user, Event: events.LowStock}
	assert.ElementsMatch(t, []string{plain.ID, match.ID, miss.ID, broken.ID}, list(legacy))
}

// An attempt whose rate-limit slot is further off than the hold is not made: it fails
// as Throttled with the wait, claims nothing and counts nothing. Within the hold it
// waits in the worker and is sent on its slot.
func TestSendWaitsForTheRateLimit(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL+"/in")
	setControls(t, db, h, models.WebhookPatch{SetRateLimit: true, RateLimit: &models.RateLimit{PerSecond: 2, Burst: 1}})
	cfg := testConfig()
	cfg.RateLimitHold = 200 * time.Millisecond
	s := newActivities(t, db, box, cfg, 5*time.Second)
	env := newEnv(t, s)

	_, err := send(t, env, s, eventInput(h.ID))
	require.NoError(t, err, "a quiet webhook sends at once")
	second := eventInput(h.ID)
	_, err = send(t, env, s, second)
	appErr := appError(t, err)
	assert.Equal(t, activities.ErrTypeThrottled, appErr.Type())
	assert.False(t, appErr.NonRetryable())
	// The next slot is 1.10/2 s after the first; back half the hold before it.
	assert.InDelta(t, (550*time.Millisecond - 100*time.Millisecond).Seconds(), appErr.NextRetryDelay().Seconds(), 0.1)
	assert.False(t, appErr.HasDetails(), "no attempt was made")
	assert.True(t, activities.IsOurs(activities.ErrTypeThrottled))
	assert.Len(t, rcv.Requests(), 1)
	noLogRow(t, db, h.ID, second.DeliveryID)
	assert.Zero(t, webhook(t, db, h).FailureCount)

	time.Sleep(appErr.NextRetryDelay())
	_, err = send(t, env, s, second)
	require.NoError(t, err, "back at its turn, it waits out the rest in the worker and is sent")
	reqs := rcv.Requests()
	require.Len(t, reqs, 2)
	assert.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), 500*time.Millisecond, "on its slot, not before")
	assert.Equal(t, 1, logRow(t, db, h.ID, second.DeliveryID).Attempts)
}

// A webhook's service-wide default rate applies when it sets none of its own.
func TestSendAppliesTheDefaultRateLimit(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL+"/in")
	cfg := testConfig()
	cfg.DefaultRateLimit, cfg.DefaultRateBurst, cfg.RateLimitHold = 0.5, 1, 100*time.Millisecond
	s := newActivities(t, db, box, cfg, 5*time.Second)
	env := newEnv(t, s)
	_, err := send(t, env, s, eventInput(h.ID))
	require.NoError(t, err)
	_, err = send(t, env, s, eventInput(h.ID))
	assert.Equal(t, activities.ErrTypeThrottled, appError(t, err).Type())

	// Its own limit wins over the default.
	setControls(t, db, h, models.WebhookPatch{SetRateLimit: true, RateLimit: &models.RateLimit{PerSecond: 1000, Burst: 10}})
	_, err = send(t, env, s, eventInput(h.ID))
	require.NoError(t, err)
}

// With every in-flight slot held, an attempt is Throttled, uncounted, until one is given
// back at the end of an exchange.
func TestSendRespectsMaxInFlight(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv, entered, release := holdingReceiver(t, func(n int) bool { return n == 0 })
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL+"/in")
	setControls(t, db, h, models.WebhookPatch{SetMaxInFlight: true, MaxInFlight: ptr(1)})
	s := newActivities(t, db, box, testConfig(), 5*time.Second)

	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := execute(newEnv(t, s), s, eventInput(h.ID))
		assert.NoError(t, err)
	})
	<-entered
	blocked := eventInput(h.ID)
	_, err := send(t, newEnv(t, s), s, blocked)
	appErr := appError(t, err)
	assert.Equal(t, activities.ErrTypeThrottled, appErr.Type())
	assert.Contains(t, appErr.Message(), "maxInFlight")
	assert.Positive(t, appErr.NextRetryDelay())
	noLogRow(t, db, h.ID, blocked.DeliveryID)

	release()
	wg.Wait()
	_, err = send(t, newEnv(t, s), s, blocked)
	require.NoError(t, err, "the slot was given back")
	assert.Len(t, rcv.Requests(), 2)
	var leases int
	require.NoError(t, db.NewRaw("SELECT count(*) FROM throttle_leases WHERE webhook_id = ?", h.ID).Scan(context.Background(), &leases))
	assert.Zero(t, leases, "every slot given back")
	assert.Zero(t, webhook(t, db, h).FailureCount)
}
