package models_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/internal/testenv"
	"github.com/assetsup/webhooks/models"
)

// deliveryHook inserts an active webhook for userID subscribed to events (LOW_STOCK
// when none are given). The sealed secret is opaque bytes: models never open it.
func deliveryHook(t *testing.T, db bun.IDB, userID string, events ...string) *models.Webhook {
	t.Helper()
	if len(events) == 0 {
		events = []string{"LOW_STOCK"}
	}
	w := &models.Webhook{
		ID:               uuid.NewString(),
		UserID:           userID,
		Name:             "delivery test",
		URL:              "http://127.0.0.1:9/in",
		SecretHash:       "fingerprint",
		SecretSealed:     []byte("sealed-current"),
		SecretKeyVersion: 1,
		Events:           events,
		IsActive:         true,
	}
	require.NoError(t, models.CreateWebhook(context.Background(), db, w, 1000))
	return w
}

// deliveryOf is the identity of a fresh event delivery to webhookID.
func deliveryOf(webhookID string) models.Delivery {
	return models.Delivery{
		ID:         uuid.NewString(),
		WebhookID:  webhookID,
		EventID:    "evt_" + uuid.NewString(),
		Event:      "LOW_STOCK",
		Kind:       models.KindEvent,
		WorkflowID: "deliver-" + uuid.NewString(),
		RunID:      uuid.NewString(),
	}
}

func failure(d models.Delivery, disableAfter int) models.Completion {
	return models.Completion{
		Delivery: d, Attempts: 3, StatusCode: 500, Error: "receiver answered HTTP 500",
		DisableAfter: disableAfter, DisabledReason: "too many failures",
	}
}

func reloadHook(t *testing.T, db bun.IDB, w *models.Webhook) *models.Webhook {
	t.Helper()
	got, err := models.GetWebhook(context.Background(), db, w.UserID, w.ID)
	require.NoError(t, err)
	return got
}

func TestRecordAttempt(t *testing.T) {
	db, ctx := testenv.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	d := deliveryOf(w.ID)
	d.RequestBody = []byte(`{"id":"evt","event":"LOW_STOCK"}`)

	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{
		Delivery: d, Number: 1, StatusCode: 500, Error: "receiver answered HTTP 500", ResponseExcerpt: "oops", Duration: 42 * time.Millisecond,
	}))
	got, err := models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, models.StatusPending, got.Status)
	assert.Equal(t, 1, got.Attempts)
	assert.Equal(t, d.RequestBody, got.RequestBody)
	require.NotNil(t, got.LastStatusCode)
	assert.Equal(t, 500, *got.LastStatusCode)
	require.NotNil(t, got.DurationMS)
	assert.Equal(t, 42, *got.DurationMS)
	assert.Nil(t, got.CompletedAt)

	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 2, Succeeded: true, StatusCode: 200}))
	got, err = models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, models.StatusSucceeded, got.Status)
	assert.Equal(t, 2, got.Attempts)
	assert.Nil(t, got.LastError)
	assert.Nil(t, got.ResponseExcerpt)

	// A stale report of an earlier attempt neither lowers the count nor undoes the success.
	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 1, StatusCode: 502, Error: "late"}))
	got, err = models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, models.StatusSucceeded, got.Status)
	assert.Equal(t, 2, got.Attempts)
}

func TestRecordAttemptLeavesCompletedDelivery(t *testing.T) {
	db, ctx := testenv.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	d := deliveryOf(w.ID)

	res, err := models.CompleteDelivery(ctx, db, failure(d, 0))
	require.NoError(t, err)
	require.True(t, res.Completed)
	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 4, Succeeded: true, StatusCode: 200}))

	got, err := models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, models.StatusFailed, got.Status)
	assert.Equal(t, 3, got.Attempts)
	require.NotNil(t, got.LastError)
	assert.Equal(t, "receiver answered HTTP 500", *got.LastError)
}

func TestLoadDeliveryTarget(t *testing.T) {
	db, ctx := testenv.DB(t), context.Background()
	user := "user-" + uuid.NewString()
	w := deliveryHook(t, db, user)
	other := deliveryHook(t, db, user)
	d := deliveryOf(w.ID)

	_, err := models.LoadDeliveryTarget(ctx, db, uuid.NewString(), d.ID)
	assert.ErrorIs(t, err, models.ErrNotFound)

	target, err := models.LoadDeliveryTarget(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, w.URL, target.URL)
	assert.True(t, target.IsActive)
	assert.Equal(t, w.SecretSealed, target.SecretSealed)
	assert.Empty(t, target.PriorStatus)
	assert.Empty(t, target.PreviousSecretSealed)
	assert.Nil(t, target.PreviousSecretExpiresAt)

	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 2, Succeeded: true, StatusCode: 204}))
	target, err = models.LoadDeliveryTarget(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, models.StatusSucceeded, target.PriorStatus)
	assert.Equal(t, 2, target.PriorAttempts)
	assert.Equal(t, 204, target.PriorStatusCode)

	// The delivery belongs to w: another webhook never sees it as its own.
	target, err = models.LoadDeliveryTarget(ctx, db, other.ID, d.ID)
	require.NoError(t, err)
	assert.Empty(t, target.PriorStatus)

	expires, err := models.RotateSecret(ctx, db, user, w.ID, models.SecretRotation{
		Hash: "fingerprint-2", Sealed: []byte("sealed-next"), KeyVersion: 2, Grace: time.Hour,
	})
	require.NoError(t, err)
	target, err = models.LoadDeliveryTarget(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, []byte("sealed-next"), target.SecretSealed)
	assert.Equal(t, 2, target.SecretKeyVersion)
	assert.Equal(t, []byte("sealed-current"), target.PreviousSecretSealed)
	assert.Equal(t, 1, target.PreviousSecretKeyVersion)
	require.NotNil(t, target.PreviousSecretExpiresAt)
	assert.True(t, expires.Equal(*target.PreviousSecretExpiresAt))
}

func TestCompleteDelivery(t *testing.T) {
	db, ctx := testenv.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())

	// Completing a delivery no attempt recorded (nothing was sent) creates its row.
	first := deliveryOf(w.ID)
	original := uuid.NewString()
	first.Kind, first.RedeliveryOf = models.KindRedelivery, &original
	res, err := models.CompleteDelivery(ctx, db, failure(first, 0))
	require.NoError(t, err)
	assert.Equal(t, models.CompletionResult{Completed: true, FailureCount: 1}, res)
	got, err := models.GetDelivery(ctx, db, w.ID, first.ID)
	require.NoError(t, err)
	assert.Equal(t, models.StatusFailed, got.Status)
	assert.Equal(t, models.KindRedelivery, got.Kind)
	require.NotNil(t, got.RedeliveryOf)
	assert.Equal(t, original, *got.RedeliveryOf)
	assert.NotNil(t, got.CompletedAt)

	again, err := models.CompleteDelivery(ctx, db, failure(first, 0))
	require.NoError(t, err)
	assert.False(t, again.Completed, "a second completion of one delivery must change nothing")
	assert.Equal(t, 1, reloadHook(t, db, w).FailureCount)

	ok := deliveryOf(w.ID)
	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: ok, Number: 1, Succeeded: true, StatusCode: 200}))
	res, err = models.CompleteDelivery(ctx, db, models.Completion{Delivery: ok, Succeeded: true, Attempts: 1, StatusCode: 200})
	require.NoError(t, err)
	assert.Equal(t, models.CompletionResult{Completed: true, FailureCount: 0}, res)
	hook := reloadHook(t, db, w)
	assert.Equal(t, 0, hook.FailureCount)
	assert.NotNil(t, hook.LastTriggeredAt)
}

func TestCompleteDeliveryForDeletedWebhook(t *testing.T) {
	db, ctx := testenv.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	require.NoError(t, models.DeleteWebhook(ctx, db, w.UserID, w.ID))

	res, err := models.CompleteDelivery(ctx, db, failure(deliveryOf(w.ID), 10))
	require.NoError(t, err)
	assert.Equal(t, models.CompletionResult{}, res)
}

func TestCompleteDeliveryCountsConcurrentFailures(t *testing.T) {
	tests := []struct {
		name         string
		disableAfter int
		wantActive   bool
	}{
		{name: "never disabled", disableAfter: 0, wantActive: true},
		{name: "disabled on the way", disableAfter: 10, wantActive: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, ctx := testenv.DB(t), context.Background()
			w := deliveryHook(t, db, "user-"+uuid.NewString())
			const n = 50
			errs := make([]error, n)
			disabled := make([]bool, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					res, err := models.CompleteDelivery(ctx, db, failure(deliveryOf(w.ID), tt.disableAfter))
					errs[i], disabled[i] = err, res.Disabled
				})
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			hook := reloadHook(t, db, w)
			assert.Equal(t, n, hook.FailureCount)
			assert.Equal(t, tt.wantActive, hook.IsActive)
			if !tt.wantActive {
				require.NotNil(t, hook.DisabledReason)
				assert.Equal(t, "too many failures", *hook.DisabledReason)
				assert.NotNil(t, hook.DisabledAt)
				assert.Contains(t, disabled, true)
			}
		})
	}
}

func TestCompleteDeliveryDisablesAtThreshold(t *testing.T) {
	db, ctx := testenv.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	for i := 1; i <= 3; i++ {
		res, err := models.CompleteDelivery(ctx, db, failure(deliveryOf(w.ID), 3))
		require.NoError(t, err)
		assert.Equal(t, i, res.FailureCount)
		assert.Equal(t, i == 3, res.Disabled, "failure %d", i)
	}
	hook := reloadHook(t, db, w)
	assert.False(t, hook.IsActive)
	require.NotNil(t, hook.DisabledReason)
	assert.Equal(t, "too many failures", *hook.DisabledReason)
	disabledAt := hook.DisabledAt
	require.NotNil(t, disabledAt)

	// Failures still in flight when it was switched off keep the first reason and time.
	d := failure(deliveryOf(w.ID), 3)
	d.DisabledReason = "another reason"
	_, err := models.CompleteDelivery(ctx, db, d)
	require.NoError(t, err)
	hook = reloadHook(t, db, w)
	assert.Equal(t, "too many failures", *hook.DisabledReason)
	assert.True(t, disabledAt.Equal(*hook.DisabledAt))

	// Test deliveries never count, whatever their outcome.
	test := failure(deliveryOf(w.ID), 3)
	test.Delivery.Kind, test.Delivery.EventID, test.Delivery.Event = models.KindTest, "", "webhook.test"
	res, err := models.CompleteDelivery(ctx, db, test)
	require.NoError(t, err)
	assert.True(t, res.Completed)
	assert.Equal(t, 4, reloadHook(t, db, w).FailureCount)
}

func TestListSubscribers(t *testing.T) {
	db, ctx := testenv.DB(t), context.Background()
	user := "user-" + uuid.NewString()
	var want []string
	for range 3 {
		want = append(want, deliveryHook(t, db, user, "LOW_STOCK", "MAINTENANCE_DUE").ID)
	}
	deliveryHook(t, db, user, "MAINTENANCE_DUE")
	deliveryHook(t, db, "user-"+uuid.NewString(), "LOW_STOCK")
	paused := deliveryHook(t, db, user, "LOW_STOCK")
	off := false
	_, err := models.UpdateWebhook(ctx, db, user, paused.ID, models.WebhookPatch{IsActive: &off})
	require.NoError(t, err)

	var got []string
	after := ""
	for {
		page, err := models.ListSubscribers(ctx, db, user, "LOW_STOCK", after, 2)
		require.NoError(t, err)
		for _, s := range page {
			got = append(got, s.ID)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	assert.ElementsMatch(t, want, got)
	assert.IsIncreasing(t, got)
}

func TestListDeliveriesPagesNewestFirst(t *testing.T) {
	db, ctx := testenv.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	var ids []string
	for i := range 5 {
		d := deliveryOf(w.ID)
		d.RequestBody = []byte(`{"big":"body"}`)
		require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 1, Succeeded: i%2 == 0, StatusCode: 200}))
		ids = append(ids, d.ID)
	}
	// Rows written in one instant share created_at: the id must break the tie, or
	// paging skips and repeats rows.
	_, err := db.NewUpdate().Model((*models.Delivery)(nil)).
		Set("created_at = '2026-11-28T12:00:00Z'").
		Where("webhook_id = ?", w.ID).
		Exec(ctx)
	require.NoError(t, err)

	var got []string
	// Without the index the order comes from the query alone, not from the index's.
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off"); err != nil {
			return err
		}
		var cursor *models.DeliveryCursor
		for {
			page, err := models.ListDeliveries(ctx, tx, w.ID, "", 2, cursor)
			if err != nil {
				return err
			}
			for _, d := range page {
				assert.Nil(t, d.RequestBody, "the list leaves bodies out")
				got = append(got, d.ID)
			}
			if len(page) < 2 || len(got) > 10 {
				return nil
			}
			last := page[len(page)-1]
			cursor = &models.DeliveryCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
	})
	require.NoError(t, err)
	assert.ElementsMatch(t, ids, got)
	assert.Len(t, got, 5, "no delivery listed twice")
	assert.IsDecreasing(t, got, "newest first, then by id descending")

	pending, err := models.ListDeliveries(ctx, db, w.ID, models.StatusPending, 10, nil)
	require.NoError(t, err)
	assert.Len(t, pending, 2)
}

func TestPruneDeliveries(t *testing.T) {
	db, ctx := testenv.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	var old []string
	for range 5 {
		d := deliveryOf(w.ID)
		require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 1, StatusCode: 500}))
		old = append(old, d.ID)
	}
	fresh := deliveryOf(w.ID)
	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: fresh, Number: 1, StatusCode: 500}))
	_, err := db.NewUpdate().Model((*models.Delivery)(nil)).
		Set("created_at = current_timestamp - interval '40 days'").
		Where("id IN (?)", bun.In(old)).
		Exec(ctx)
	require.NoError(t, err)

	n, err := models.PruneDeliveries(ctx, db, time.Now().Add(-30*24*time.Hour), 2)
	require.NoError(t, err)
	assert.Equal(t, 5, n, "every batch is deleted, not just the first")
	_, err = models.GetDelivery(ctx, db, w.ID, fresh.ID)
	require.NoError(t, err)
	_, err = models.GetDelivery(ctx, db, w.ID, old[0])
	assert.ErrorIs(t, err, models.ErrNotFound)
}
