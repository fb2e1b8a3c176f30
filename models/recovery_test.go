package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

func newRecovery(webhookID, userID string) *models.Recovery {
	id := uuid.NewString()
	return &models.Recovery{
		ID: id, WebhookID: webhookID, UserID: userID,
		WindowStart: time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond), WindowEnd: time.Now().UTC().Truncate(time.Microsecond),
		Statuses: []string{"failed"}, Reason: models.RecoveryRequested, WorkflowID: "recovery:" + webhookID + ":" + id,
	}
}

func TestCreateRecoveryIsOnePerWebhookAndIdempotent(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	user := "user-" + uuid.NewString()
	w := deliveryHook(t, db, user)

	first := newRecovery(w.ID, user)
	got, created, err := models.CreateRecovery(ctx, db, first)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, models.RecoveryRunning, got.State)

	// The same recovery again: the stored one, not a second.
	again := *first
	got, created, err = models.CreateRecovery(ctx, db, &again)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first.ID, got.ID)

	// Another one while it runs: refused, naming the running one.
	other := newRecovery(w.ID, user)
	running, created, err := models.CreateRecovery(ctx, db, other)
	require.ErrorIs(t, err, models.ErrRecoveryRunning)
	assert.False(t, created)
	require.NotNil(t, running)
	assert.Equal(t, first.ID, running.ID)

	// Once it has ended, another may start, and the ended one answers as itself.
	p := models.RecoveryProgress{Matched: 4, Skipped: 1, Redelivered: 3, Succeeded: 2, Failed: 1}
	ended, now, err := models.FinishRecovery(ctx, db, first.ID, models.RecoveryCompleted, p, "")
	require.NoError(t, err)
	assert.True(t, now)
	assert.Equal(t, models.RecoveryCompleted, ended.State)
	assert.Equal(t, 3, ended.Redelivered)
	require.NotNil(t, ended.CompletedAt)

	_, created, err = models.CreateRecovery(ctx, db, other)
	require.NoError(t, err)
	assert.True(t, created)
	again = *first
	got, created, err = models.CreateRecovery(ctx, db, &again)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, models.RecoveryCompleted, got.State, "a finished recovery is not run again")
}

func TestFinishRecoveryOnce(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	user := "user-" + uuid.NewString()
	w := deliveryHook(t, db, user)
	r := newRecovery(w.ID, user)
	_, _, err := models.CreateRecovery(ctx, db, r)
	require.NoError(t, err)

	require.NoError(t, models.RecordRecoveryProgress(ctx, db, r.ID, models.RecoveryProgress{Matched: 20, Redelivered: 5}))
	got, err := models.GetRecovery(ctx, db, w.ID, r.ID)
	require.NoError(t, err)
	assert.Equal(t, 20, got.Matched)
	assert.Equal(t, 5, got.Redelivered)

	canceled, err := models.RequestRecoveryCancel(ctx, db, w.ID, r.ID)
	require.NoError(t, err)
	require.NotNil(t, canceled.CancelRequestedAt)

	_, now, err := models.FinishRecovery(ctx, db, r.ID, models.RecoveryCanceled, models.RecoveryProgress{Matched: 20, Redelivered: 6}, "")
	require.NoError(t, err)
	assert.True(t, now)
	// A second end (a retried step, a late writer) changes nothing.
	got, now, err = models.FinishRecovery(ctx, db, r.ID, models.RecoveryCompleted, models.RecoveryProgress{Matched: 99}, "late")
	require.NoError(t, err)
	assert.False(t, now)
	assert.Equal(t, models.RecoveryCanceled, got.State)
	assert.Equal(t, 6, got.Redelivered)
	assert.Nil(t, got.Error)
	require.NoError(t, models.RecordRecoveryProgress(ctx, db, r.ID, models.RecoveryProgress{Matched: 1}))
	got, err = models.GetRecovery(ctx, db, w.ID, r.ID)
	require.NoError(t, err)
	assert.Equal(t, 20, got.Matched, "progress after the end is not written")

	// Another webhook's id does not find it.
	_, err = models.GetRecovery(ctx, db, deliveryHook(t, db, user).ID, r.ID)
	require.ErrorIs(t, err, models.ErrNotFound)
}

// logDelivery writes a finished delivery of webhookID with status at createdAt.
func logDelivery(t testing.TB, db bun.IDB, webhookID string, kind delivery.Kind, status delivery.Outcome, createdAt time.Time, body string) string {
	t.Helper()
	id := uuid.NewString()
	var b any
	if body != "" {
		b = []byte(body)
	}
	_, err := db.NewRaw(`INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, kind, status, attempts, request_body,
		workflow_id, run_id, created_at, completed_at) VALUES (?, ?, ?, 'LOW_STOCK', ?, ?, 1, ?, 'w', 'r', ?, ?)`,
		id, webhookID, "evt_"+id, kind, status, b, createdAt, createdAt.Add(time.Second)).Exec(context.Background())
	require.NoError(t, err)
	return id
}

func TestListRecoverablePagesOldestFirstInTheWindow(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	var want []string
	for i := range 5 {
		want = append(want, logDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeFailed, base.Add(time.Duration(i)*time.Minute), `{}`))
	}
	missed := logDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeMissed, base.Add(90*time.Second), `{}`)
	// Not recovered: outside the window, succeeded, a test, a redelivery.
	logDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeFailed, base.Add(-time.Minute), `{}`)
	logDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeFailed, base.Add(10*time.Minute), `{}`)
	logDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeSucceeded, base.Add(30*time.Second), `{}`)
	logDelivery(t, db, w.ID, delivery.KindTest, delivery.OutcomeFailed, base.Add(30*time.Second), `{}`)
	logDelivery(t, db, w.ID, delivery.KindRedelivery, delivery.OutcomeFailed, base.Add(30*time.Second), `{}`)

	since, until := base, base.Add(10*time.Minute)
	var got []string
	var after *models.RecoverableCursor
	for {
		page, err := models.ListRecoverable(ctx, db, w.ID, since, until, []delivery.Outcome{delivery.OutcomeFailed}, after, 2)
		require.NoError(t, err)
		for _, r := range page {
			got = append(got, r.ID)
			assert.Equal(t, []byte(`{}`), r.RequestBody)
		}
		if len(page) < 2 {
			break
		}
		after = &models.RecoverableCursor{CreatedAt: page[len(page)-1].CreatedAt, ID: page[len(page)-1].ID}
	}
	assert.Equal(t, want, got, "the failed event deliveries of [since, until), oldest first, across pages")

	both, err := models.ListRecoverable(ctx, db, w.ID, since, until, []delivery.Outcome{delivery.OutcomeFailed, delivery.OutcomeMissed}, nil, 100)
	require.NoError(t, err)
	require.Len(t, both, 6)
	assert.Equal(t, missed, both[2].ID, "missed in its place in time")

	found, err := models.ExistingDeliveries(ctx, db, []string{want[0], uuid.NewString()})
	require.NoError(t, err)
	assert.Equal(t, []string{want[0]}, found)
}

func TestListSubscribersAndInactive(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	user := "user-" + uuid.NewString()
	var active []string
	for range 3 {
		active = append(active, deliveryHook(t, db, user).ID)
	}
	paused := deliveryHook(t, db, user)
	inactive := false
	_, err := models.UpdateWebhook(ctx, db, user, paused.ID, models.WebhookPatch{IsActive: &inactive})
	require.NoError(t, err)
	deliveryHook(t, db, user, "ASSET_TRANSFERRED") // another event
	other := deliveryHook(t, db, "user-"+uuid.NewString())
	_, err = models.UpdateWebhook(ctx, db, other.UserID, other.ID, models.WebhookPatch{IsActive: &inactive})
	require.NoError(t, err)

	subs, off, err := models.ListSubscribersAndInactive(ctx, db, user, "LOW_STOCK", "", 2, true)
	require.NoError(t, err)
	assert.Len(t, subs, 2, "the active page keeps its limit")
	require.Len(t, off, 1, "the user's inactive subscriber, and no one else's")
	assert.Equal(t, paused.ID, off[0].ID)
	require.NotNil(t, off[0].DisabledReason)
	assert.Equal(t, "paused by user", *off[0].DisabledReason)

	subs2, off, err := models.ListSubscribersAndInactive(ctx, db, user, "LOW_STOCK", subs[1].ID, 2, false)
	require.NoError(t, err)
	assert.Empty(t, off, "later pages do not look")
	var all []string
	for _, s := range append(subs, subs2...) {
		all = append(all, s.ID)
	}
	assert.ElementsMatch(t, active, all)
}

func TestRecordMissed(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	user := "user-" + uuid.NewString()
	w := deliveryHook(t, db, user)
	gone := uuid.NewString() // deleted meanwhile: skipped
	row := models.Delivery{EventID: "evt_" + uuid.NewString(), Event: "LOW_STOCK", Kind: delivery.KindEvent,
		RequestBody: []byte(`{"id":"x"}`), WorkflowID: "dispatch:x", RunID: "r"}
	rows := []models.Missed{
		{DeliveryID: delivery.ID(row.EventID, w.ID), WebhookID: w.ID, Reason: "webhook inactive: paused by user"},
		{DeliveryID: delivery.ID(row.EventID, gone), WebhookID: gone, Reason: "webhook inactive"},
	}
	require.NoError(t, models.RecordMissed(ctx, db, row, rows))
	require.NoError(t, models.RecordMissed(ctx, db, row, rows), "repeating it is safe")

	got, err := models.GetDelivery(ctx, db, w.ID, rows[0].DeliveryID)
	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomeMissed, got.Status)
	assert.Zero(t, got.Attempts)
	assert.Equal(t, row.RequestBody, got.RequestBody)
	require.NotNil(t, got.CompletedAt)
	assert.Equal(t, "webhook inactive: paused by user", *got.LastError)
	_, err = models.GetDelivery(ctx, db, gone, rows[1].DeliveryID)
	require.ErrorIs(t, err, models.ErrNotFound)

	after := reloadHook(t, db, w)
	assert.Zero(t, after.FailureCount, "nothing counted")
	assert.Nil(t, after.LastTriggeredAt)
}

func TestPruneRecoveryHealth(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	user := "user-" + uuid.NewString()
	w := deliveryHook(t, db, user)
	old := time.Now().Add(-72 * time.Hour)
	logDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeSucceeded, old, `{}`)
	logDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeSucceeded, time.Now(), `{}`)
	finished, running := newRecovery(w.ID, user), newRecovery(w.ID, user)
	_, _, err := models.CreateRecovery(ctx, db, finished)
	require.NoError(t, err)
	_, _, err = models.FinishRecovery(ctx, db, finished.ID, models.RecoveryCompleted, models.RecoveryProgress{}, "")
	require.NoError(t, err)
	_, _, err = models.CreateRecovery(ctx, db, running)
	require.NoError(t, err)
	_, err = db.NewRaw(`UPDATE webhook_recoveries SET created_at = ? WHERE webhook_id = ?`, old, w.ID).Exec(ctx)
	require.NoError(t, err)

	_, err = models.PruneRecoveryHealth(ctx, db, time.Now().Add(-24*time.Hour))
	require.NoError(t, err)
	var hours, recoveries int
	require.NoError(t, db.NewRaw(`SELECT count(*) FROM webhook_delivery_stats WHERE webhook_id = ?`, w.ID).Scan(ctx, &hours))
	require.NoError(t, db.NewRaw(`SELECT count(*) FROM webhook_recoveries WHERE webhook_id = ?`, w.ID).Scan(ctx, &recoveries))
	assert.Equal(t, 1, hours, "the old hour went, the current one stayed")
	assert.Equal(t, 1, recoveries, "a running recovery stays")
	_, err = models.GetRecovery(ctx, db, w.ID, running.ID)
	require.NoError(t, err)
}
