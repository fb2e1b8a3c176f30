package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

func TestListSubscribersLogsMissedForInactiveSubscribers(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	ctx := context.Background()
	user := "user-" + uuid.NewString()
	const url = "http://127.0.0.1:9/hooks/in?token=supersecret"
	active := createHook(t, db, box, user, url)
	paused := createHook(t, db, box, user, url)
	disabled := createHook(t, db, box, user, url)
	filtered := createHook(t, db, box, user, url) // off, and its filter would have turned the event down
	off := false
	for _, h := range []hook{paused, filtered} {
		_, err := models.UpdateWebhook(ctx, db, user, h.ID, models.WebhookPatch{IsActive: &off})
		require.NoError(t, err)
	}
	require.NoError(t, models.DeactivateWebhook(ctx, db, disabled.ID, "disabled after 10 consecutive failed deliveries"))
	nope := `data.qty > 100`
	_, err := models.UpdateWebhook(ctx, db, user, filtered.ID, models.WebhookPatch{SetFilter: true, Filter: &nope})
	require.NoError(t, err)

	s := newActivities(t, db, box, testConfig(), time.Second)
	env := newEnv(t, s)
	in := eventInput(active.ID)
	list := activities.ListSubscribersInput{UserID: user, Event: events.LowStock, Payload: &in.Payload}
	for range 2 { // a retried listing logs nothing twice
		val, err := env.ExecuteActivity(s.ListSubscribers, list)
		require.NoError(t, err)
		var res activities.ListSubscribersResult
		require.NoError(t, val.Get(&res))
		require.Len(t, res.Subscribers, 1)
		assert.Equal(t, active.ID, res.Subscribers[0].ID, "only active webhooks are delivered to")
	}

	body, err := in.Payload.Marshal()
	require.NoError(t, err)
	tests := []struct {
		hook   hook
		reason string
	}{
		{hook: paused, reason: "webhook inactive: paused by user"},
		{hook: disabled, reason: "webhook inactive: disabled after 10 consecutive failed deliveries"},
	}
	for _, tt := range tests {
		row := logRow(t, db, tt.hook.ID, delivery.ID(in.Payload.ID, tt.hook.ID))
		assert.Equal(t, delivery.OutcomeMissed, row.Status)
		assert.Equal(t, body, row.RequestBody, "the body it would have carried")
		assert.Equal(t, tt.reason, *row.LastError)
		assert.Zero(t, row.Attempts)
		assert.NotNil(t, row.CompletedAt)
		assert.Zero(t, webhook(t, db, tt.hook).FailureCount, "nothing counted")
	}
	noLogRow(t, db, filtered.ID, delivery.ID(in.Payload.ID, filtered.ID))
	noLogRow(t, db, active.ID, delivery.ID(in.Payload.ID, active.ID))

	// A later page, or a run without the event (started before missed deliveries were
	// logged), logs nothing.
	other := eventInput(active.ID)
	for _, l := range []activities.ListSubscribersInput{
		{UserID: user, Event: events.LowStock, Payload: &other.Payload, After: active.ID},
		{UserID: user, Event: events.LowStock},
	} {
		_, err := env.ExecuteActivity(s.ListSubscribers, l)
		require.NoError(t, err)
	}
	noLogRow(t, db, paused.ID, delivery.ID(other.Payload.ID, paused.ID))

	// Switched on again, the same event dispatched again sends nothing: it was missed, and
	// only a recovery sends it.
	on := true
	_, err = models.UpdateWebhook(ctx, db, user, paused.ID, models.WebhookPatch{IsActive: &on})
	require.NoError(t, err)
	again := in
	again.Identity = delivery.Identity{DeliveryID: delivery.ID(in.Payload.ID, paused.ID), WebhookID: paused.ID, Kind: delivery.KindEvent}
	res, err := send(t, env, s, again)
	require.NoError(t, err)
	assert.True(t, res.Skipped)
	assert.Contains(t, res.Reason, "missed")
}

// failedDelivery logs a failed event delivery of h with a body, created at.
func failedDelivery(t *testing.T, db bun.IDB, h hook, at time.Time) string {
	t.Helper()
	id := uuid.NewString()
	body := `{"id":"evt_` + id + `","event":"LOW_STOCK","timestamp":"2026-12-01T00:00:00Z","data":{"n":1}}`
	_, err := db.NewRaw(`INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, kind, status, attempts, request_body,
		workflow_id, run_id, created_at, completed_at) VALUES (?, ?, ?, 'LOW_STOCK', 'event', 'failed', 3, ?, 'w', 'r', ?, ?)`,
		id, h.ID, "evt_"+id, []byte(body), at, at).Exec(context.Background())
	require.NoError(t, err)
	return id
}

func TestListRecoverablePagesRecordsProgressAndSkipsWhatWasRedelivered(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	ctx := context.Background()
	user := "user-" + uuid.NewString()
	h := createHook(t, db, box, user, "http://127.0.0.1:9/in")
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	var originals []string
	for i := range 25 {
		originals = append(originals, failedDelivery(t, db, h, base.Add(time.Duration(i)*time.Second)))
	}
	// The third was redelivered by a recovery already; the fifth has no body.
	_, err := db.NewRaw(`INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, kind, redelivery_of, status, attempts,
		workflow_id, run_id) VALUES (?, ?, 'e', 'LOW_STOCK', 'redelivery', ?, 'succeeded', 1, 'w', 'r')`,
		activities.RecoveryRedeliveryID(originals[2]), h.ID, originals[2]).Exec(ctx)
	require.NoError(t, err)
	_, err = db.NewRaw(`UPDATE webhook_deliveries SET request_body = NULL WHERE id = ?`, originals[4]).Exec(ctx)
	require.NoError(t, err)

	rec := &models.Recovery{ID: uuid.NewString(), WebhookID: h.ID, UserID: user, WindowStart: base, WindowEnd: base.Add(time.Hour),
		Statuses: []string{"failed"}, Reason: models.RecoveryRequested, WorkflowID: "recovery:x"}
	_, _, err = models.CreateRecovery(ctx, db, rec)
	require.NoError(t, err)

	s := newActivities(t, db, box, testConfig(), time.Second)
	env := newEnv(t, s)
	in := activities.ListRecoverableInput{RecoveryID: rec.ID, WebhookID: h.ID, Since: base, Until: base.Add(time.Hour),
		Statuses: []delivery.Outcome{delivery.OutcomeFailed}}
	var sent []string
	for page := 0; ; page++ {
		require.Less(t, page, 5)
		val, err := env.ExecuteActivity(s.ListRecoverable, in)
		require.NoError(t, err)
		var res activities.ListRecoverableResult
		require.NoError(t, val.Get(&res))
		in.Progress.Matched += res.Matched
		in.Progress.Skipped += res.Skipped
		for _, d := range res.Deliveries {
			sent = append(sent, d.OriginalID)
			assert.Equal(t, activities.RecoveryRedeliveryID(d.OriginalID), d.RedeliveryID)
			assert.Equal(t, "evt_"+d.OriginalID, d.Payload.ID, "the original's body")
			assert.JSONEq(t, `{"n":1}`, string(d.Payload.Data))
		}
		in.Progress.Redelivered += len(res.Deliveries)
		if res.Next == nil {
			break
		}
		in.After = res.Next
	}
	want := append(append([]string{}, originals[:2]...), originals[3])
	want = append(want, originals[5:]...)
	assert.Equal(t, want, sent, "oldest first, each once, without what was already redelivered or has no body")
	assert.Equal(t, 25, in.Progress.Matched)
	assert.Equal(t, 2, in.Progress.Skipped)

	// Each page recorded the progress it was given.
	got, err := models.GetRecovery(ctx, db, h.ID, rec.ID)
	require.NoError(t, err)
	assert.Equal(t, 20, got.Matched, "the progress before the last page")
	assert.Equal(t, models.RecoveryRunning, got.State)

	val, err := env.ExecuteActivity(s.FinishRecovery, activities.FinishRecoveryInput{
		RecoveryID: rec.ID, State: activities.RecoveryCompleted, Progress: in.Progress,
	})
	require.NoError(t, err)
	var fin activities.FinishRecoveryResult
	require.NoError(t, val.Get(&fin))
	assert.Equal(t, activities.RecoveryCompleted, fin.State)
	got, err = models.GetRecovery(ctx, db, h.ID, rec.ID)
	require.NoError(t, err)
	assert.Equal(t, models.RecoveryCompleted, got.State)
	assert.Equal(t, 23, got.Redelivered)
}
