package models_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

// A patch sets, keeps or removes each endpoint control as it says; the list never reads
// the sealed headers.
func TestUpdateWebhookControls(t *testing.T) {
	db := testinfra.DB(t)
	ctx := context.Background()
	user := "user-" + uuid.NewString()
	w := deliveryHook(t, db, user)
	assert.Empty(t, w.Headers)
	assert.Nil(t, w.RateLimitPerSecond)

	filter, inFlight := "data.qty < 5", 3
	sealed := models.SealedHeaders{Info: []models.HeaderInfo{{Name: "X-Api-Key", Fingerprint: "0123456789abcdef"}}, Sealed: []byte("ciphertext"), KeyVersion: 2}
	got, err := models.UpdateWebhook(ctx, db, user, w.ID, models.WebhookPatch{
		Headers: &sealed, SetRateLimit: true, RateLimit: &models.RateLimit{PerSecond: 2.5, Burst: 4},
		SetMaxInFlight: true, MaxInFlight: &inFlight, SetFilter: true, Filter: &filter,
	})
	require.NoError(t, err)
	assert.Equal(t, sealed.Info, got.Headers)
	assert.Equal(t, []byte("ciphertext"), got.HeadersSealed)
	assert.Equal(t, 2, got.HeadersKeyVersion)
	assert.Equal(t, 2.5, *got.RateLimitPerSecond)
	assert.Equal(t, 4, *got.RateLimitBurst)
	assert.Equal(t, 3, *got.MaxInFlight)
	assert.Equal(t, filter, *got.Filter)

	name := "renamed"
	got, err = models.UpdateWebhook(ctx, db, user, w.ID, models.WebhookPatch{Name: &name})
	require.NoError(t, err)
	assert.Equal(t, sealed.Info, got.Headers, "a patch that does not name a control keeps it")
	assert.Equal(t, 2.5, *got.RateLimitPerSecond)
	assert.Equal(t, filter, *got.Filter)

	list, err := models.ListWebhooks(ctx, db, user)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Nil(t, list[0].HeadersSealed, "the list never reads sealed values")
	assert.Equal(t, sealed.Info, list[0].Headers)

	got, err = models.UpdateWebhook(ctx, db, user, w.ID, models.WebhookPatch{
		Headers: &models.SealedHeaders{}, SetRateLimit: true, SetMaxInFlight: true, SetFilter: true,
	})
	require.NoError(t, err)
	assert.Empty(t, got.Headers)
	assert.Nil(t, got.HeadersSealed)
	assert.Zero(t, got.HeadersKeyVersion)
	assert.Nil(t, got.RateLimitPerSecond)
	assert.Nil(t, got.RateLimitBurst)
	assert.Nil(t, got.MaxInFlight)
	assert.Nil(t, got.Filter)

	_, err = models.UpdateWebhook(ctx, db, "someone-else", w.ID, models.WebhookPatch{SetFilter: true, Filter: &filter})
	assert.ErrorIs(t, err, models.ErrNotFound)
}

// A new rate starts afresh; another user's patch does not reset anything.
func TestUpdateWebhookRateResetsItsState(t *testing.T) {
	db := testinfra.DB(t)
	ctx := context.Background()
	user := "user-" + uuid.NewString()
	w := deliveryHook(t, db, user)
	states := func() int {
		var n int
		require.NoError(t, db.NewRaw("SELECT count(*) FROM throttle_rates WHERE webhook_id = ?", w.ID).Scan(ctx, &n))
		return n
	}
	_, err := models.ReserveRate(ctx, db, w.ID, models.RatePlan{Interval: 1e9, Burst: 1, Horizon: 1e9})
	require.NoError(t, err)
	require.Equal(t, 1, states())
	_, err = models.UpdateWebhook(ctx, db, "someone-else", w.ID, models.WebhookPatch{SetRateLimit: true})
	require.ErrorIs(t, err, models.ErrNotFound)
	assert.Equal(t, 1, states())
	_, err = models.UpdateWebhook(ctx, db, user, w.ID, models.WebhookPatch{SetRateLimit: true, RateLimit: &models.RateLimit{PerSecond: 5, Burst: 1}})
	require.NoError(t, err)
	assert.Zero(t, states())
}

// Filtered deliveries are logged closed, once, with their body; a webhook deleted in
// between is skipped; an attempt is never claimed on a filtered delivery.
func TestRecordFiltered(t *testing.T) {
	db := testinfra.DB(t)
	ctx := context.Background()
	user := "user-" + uuid.NewString()
	a, b := deliveryHook(t, db, user), deliveryHook(t, db, user)
	row := deliveryOf(a.ID)
	row.RequestBody = []byte(`{"id":"evt","event":"LOW_STOCK"}`)
	rows := []models.Filtered{
		{DeliveryID: delivery.ID(row.EventID, a.ID), WebhookID: a.ID, Reason: "filter did not match the event"},
		{DeliveryID: delivery.ID(row.EventID, b.ID), WebhookID: b.ID, Reason: "filter failed on this event: no such key: qty"},
		{DeliveryID: delivery.ID(row.EventID, "9c5b94b1-35ad-4ca6-b125-9ab7ad9d0f4b"), WebhookID: "9c5b94b1-35ad-4ca6-b125-9ab7ad9d0f4b", Reason: "gone"},
	}
	for range 2 {
		require.NoError(t, models.RecordFiltered(ctx, db, row, rows))
	}
	for i, h := range []*models.Webhook{a, b} {
		d, err := models.GetDelivery(ctx, db, h.ID, rows[i].DeliveryID)
		require.NoError(t, err)
		assert.Equal(t, delivery.OutcomeFiltered, d.Status)
		assert.Equal(t, rows[i].Reason, *d.LastError)
		assert.Zero(t, d.Attempts)
		assert.NotNil(t, d.CompletedAt)
		assert.Equal(t, row.RequestBody, d.RequestBody)
		assert.Equal(t, row.EventID, d.EventID)
		assert.Equal(t, row.WorkflowID, d.WorkflowID)

		claim := row
		claim.ID, claim.WebhookID = rows[i].DeliveryID, h.ID
		n, err := models.ClaimAttempt(ctx, db, claim, 3)
		require.NoError(t, err)
		assert.Zero(t, n, "a filtered delivery is never attempted")
		assert.Zero(t, reloadHook(t, db, h).FailureCount)
	}
	var count int
	require.NoError(t, db.NewRaw("SELECT count(*) FROM webhook_deliveries WHERE event_id = ?", row.EventID).Scan(ctx, &count))
	assert.Equal(t, 2, count, "once each, and none for a missing webhook")
	require.NoError(t, models.RecordFiltered(ctx, db, row, nil))
}
