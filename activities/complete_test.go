package activities_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/testsuite"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/secrets"
)

// outcome is the final outcome of a fresh delivery of LOW_STOCK to h.
func outcome(h hook, kind delivery.Kind, succeeded bool) activities.CompleteInput {
	in := activities.CompleteInput{
		Identity:   delivery.Identity{DeliveryID: uuid.NewString(), WebhookID: h.ID, Kind: kind},
		EventID:    "evt_" + uuid.NewString(),
		Event:      events.LowStock,
		Succeeded:  succeeded,
		Attempts:   3,
		StatusCode: 200,
	}
	if kind == delivery.KindTest {
		in.EventID, in.Event = "", events.Test
	}
	if !succeeded {
		in.StatusCode, in.Error = 500, "receiver answered HTTP 500"
	}
	return in
}

func complete(t *testing.T, env *testsuite.TestActivityEnvironment, s *activities.Delivery, in activities.CompleteInput) activities.CompleteResult {
	t.Helper()
	val, err := env.ExecuteActivity(s.Complete, in)
	require.NoError(t, err)
	var res activities.CompleteResult
	require.NoError(t, val.Get(&res))
	return res
}

// completeActivities builds the activities for recording outcomes; they never send.
func completeActivities(t *testing.T, db bun.IDB, box *secrets.Box, disableAfter int) *activities.Delivery {
	t.Helper()
	cfg := testConfig()
	cfg.DisableAfterFailures = disableAfter
	return newActivities(t, db, box, cfg, time.Second)
}

func TestCompleteTracksFailureStreak(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	s := completeActivities(t, db, box, 0)
	env := newEnv(t, s)
	h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")

	for i := 1; i <= 3; i++ {
		res := complete(t, env, s, outcome(h, delivery.KindEvent, false))
		assert.Equal(t, i, res.FailureCount)
		assert.False(t, res.Disabled)
	}
	w := webhook(t, db, h)
	assert.Equal(t, 3, w.FailureCount)
	require.NotNil(t, w.LastTriggeredAt)
	assert.True(t, w.IsActive, "DisableAfterFailures 0 never switches a webhook off")

	in := outcome(h, delivery.KindEvent, true)
	res := complete(t, env, s, in)
	assert.Equal(t, 0, res.FailureCount)
	assert.False(t, res.Disabled)
	w2 := webhook(t, db, h)
	assert.Equal(t, 0, w2.FailureCount)
	require.NotNil(t, w2.LastTriggeredAt)
	assert.False(t, w2.LastTriggeredAt.Before(*w.LastTriggeredAt))

	d := logRow(t, db, h.ID, in.DeliveryID)
	assert.Equal(t, delivery.OutcomeSucceeded, d.Status)
	assert.Equal(t, 3, d.Attempts)
	assert.NotNil(t, d.CompletedAt)
	assert.Equal(t, in.EventID, d.EventID)
}

func TestCompleteIsIdempotent(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	s := completeActivities(t, db, box, 0)
	env := newEnv(t, s)
	h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")

	in := outcome(h, delivery.KindEvent, false)
	complete(t, env, s, in)
	complete(t, env, s, in) // the local activity retried after its first run committed
	assert.Equal(t, 1, webhook(t, db, h).FailureCount, "a retried Complete counted the failure twice")

	// A late success report for the same, already failed delivery changes nothing.
	late := in
	late.Succeeded, late.StatusCode, late.Error = true, 200, ""
	complete(t, env, s, late)
	assert.Equal(t, 1, webhook(t, db, h).FailureCount)
	d := logRow(t, db, h.ID, in.DeliveryID)
	assert.Equal(t, delivery.OutcomeFailed, d.Status)
	require.NotNil(t, d.LastError)
	assert.Equal(t, in.Error, *d.LastError)
}

func TestCompleteTestDeliveryLeavesStreak(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	s := completeActivities(t, db, box, 2)
	env := newEnv(t, s)
	h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")

	complete(t, env, s, outcome(h, delivery.KindEvent, false))
	for range 3 {
		complete(t, env, s, outcome(h, delivery.KindTest, false))
	}
	complete(t, env, s, outcome(h, delivery.KindTest, true))
	w := webhook(t, db, h)
	assert.Equal(t, 1, w.FailureCount, "test deliveries must not touch the streak")
	assert.True(t, w.IsActive, "failed tests must not switch the webhook off")

	in := outcome(h, delivery.KindTest, false)
	complete(t, env, s, in)
	d := logRow(t, db, h.ID, in.DeliveryID)
	assert.Equal(t, delivery.OutcomeFailed, d.Status)
	assert.Equal(t, delivery.KindTest, d.Kind)
}

func TestCompleteCountsConcurrentFailuresExactly(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	s := completeActivities(t, db, box, 0)
	h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")

	const n = 50
	envs := make([]*testsuite.TestActivityEnvironment, n)
	for i := range envs {
		envs[i] = newEnv(t, s)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = envs[i].ExecuteActivity(s.Complete, outcome(h, delivery.KindEvent, false))
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, n, webhook(t, db, h).FailureCount)

	ds, err := models.ListDeliveries(context.Background(), db, h.ID, delivery.OutcomeFailed, "", 100, nil)
	require.NoError(t, err)
	assert.Len(t, ds, n)
}

func TestCompleteDisablesAfterConsecutiveFailures(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	s := completeActivities(t, db, box, 10)
	env := newEnv(t, s)
	h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")

	// A success in the middle restarts the streak.
	for range 9 {
		complete(t, env, s, outcome(h, delivery.KindEvent, false))
	}
	complete(t, env, s, outcome(h, delivery.KindEvent, true))

	for i := 1; i <= 10; i++ {
		res := complete(t, env, s, outcome(h, delivery.KindEvent, false))
		assert.Equal(t, i, res.FailureCount)
		assert.Equal(t, i == 10, res.Disabled, "failure %d", i)
	}
	w := webhook(t, db, h)
	assert.False(t, w.IsActive)
	assert.Equal(t, 10, w.FailureCount)
	require.NotNil(t, w.DisabledReason)
	assert.Contains(t, *w.DisabledReason, "10 consecutive failed deliveries")
	assert.NotNil(t, w.DisabledAt)
	// Through the activity's logger, which names the activity and the run.
	assert.True(t, logged(`"msg":"webhook disabled"`, `"ActivityType":"Complete"`, `"WorkflowID":`, `"webhook_id":"`+h.ID+`"`),
		"switching a webhook off is logged")
}

func TestCompleteKeepsTheFirstDisabledReason(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	s := completeActivities(t, db, box, 1)
	env := newEnv(t, s)
	h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")
	off := false
	_, err := models.UpdateWebhook(context.Background(), db, h.UserID, h.ID, models.WebhookPatch{IsActive: &off})
	require.NoError(t, err)

	// A delivery already in flight when the user paused the webhook fails afterwards.
	complete(t, env, s, outcome(h, delivery.KindEvent, false))
	w := webhook(t, db, h)
	assert.False(t, w.IsActive)
	require.NotNil(t, w.DisabledReason)
	assert.Equal(t, "paused by user", *w.DisabledReason)
}

func TestCompleteForDeletedWebhook(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	s := completeActivities(t, db, box, 10)
	env := newEnv(t, s)
	h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")
	require.NoError(t, models.DeleteWebhook(context.Background(), db, h.UserID, h.ID))

	res := complete(t, env, s, outcome(h, delivery.KindEvent, false))
	assert.Equal(t, activities.CompleteResult{}, res)
}

// A delivery that stopped without a final attempt (its webhook went off while it waited
// to retry) is closed as skipped. The receiver did not fail, so its streak is left alone.
func TestCompleteSkipped(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	ctx := context.Background()
	s := completeActivities(t, db, box, 10)
	env := newEnv(t, s)
	tests := []struct {
		name       string
		give       delivery.Outcome // the delivery's row before: "" none, or its status
		wantStatus delivery.Outcome // "" for no row
		wantError  string
	}{
		{name: "pending row", give: delivery.OutcomePending, wantStatus: delivery.OutcomeSkipped, wantError: "webhook inactive"},
		{name: "no attempt made", give: "", wantStatus: ""},
		{name: "already completed", give: delivery.OutcomeFailed, wantStatus: delivery.OutcomeFailed, wantError: "receiver answered HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")
			// One earlier failure, so a counter the skip touched would show.
			complete(t, env, s, outcome(h, delivery.KindEvent, false))
			before := webhook(t, db, h)
			require.Equal(t, 1, before.FailureCount)

			in := outcome(h, delivery.KindEvent, false)
			in.Attempts = 1
			row := models.Delivery{ID: in.DeliveryID, WebhookID: h.ID, EventID: in.EventID, Event: string(in.Event), Kind: in.Kind}
			switch tt.give {
			case delivery.OutcomePending:
				require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: row, Number: 1, StatusCode: 500, Error: "receiver answered HTTP 500"}))
			case delivery.OutcomeFailed:
				complete(t, env, s, in)
				before = webhook(t, db, h)
			}

			skip := in
			skip.Skipped, skip.Succeeded, skip.Attempts, skip.StatusCode, skip.Error = true, false, 1, 0, "webhook inactive"
			assert.Equal(t, activities.CompleteResult{}, complete(t, env, s, skip))
			complete(t, env, s, skip) // retried after its first run committed

			if tt.wantStatus == "" {
				noLogRow(t, db, h.ID, in.DeliveryID)
			} else {
				d := logRow(t, db, h.ID, in.DeliveryID)
				assert.Equal(t, tt.wantStatus, d.Status)
				require.NotNil(t, d.LastError)
				assert.Equal(t, tt.wantError, *d.LastError)
				assert.NotNil(t, d.CompletedAt)
				assert.Equal(t, 1, d.Attempts, "a skip is no attempt")
			}
			after := webhook(t, db, h)
			assert.Equal(t, before.FailureCount, after.FailureCount, "a skip touched the failure streak")
			assert.Equal(t, before.LastTriggeredAt, after.LastTriggeredAt)
			assert.True(t, after.IsActive)
		})
	}
}

// A 410 switches the webhook off in the outcome step too, the copy that survives a
// database outage during Send's own attempt to do it.
func TestCompleteGoneSwitchesTheWebhookOff(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	ctx := context.Background()
	s := completeActivities(t, db, box, 10)
	env := newEnv(t, s)
	tests := []struct {
		name       string
		give       string // who switched it off before: "" nobody, "send", "user"
		wantReason string
	}{
		{name: "send could not", give: "", wantReason: models.GoneReason},
		{name: "send already did", give: "send", wantReason: models.GoneReason},
		{name: "the user paused it first", give: "user", wantReason: "paused by user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")
			switch tt.give {
			case "send":
				require.NoError(t, models.DeactivateWebhook(ctx, db, h.ID, models.GoneReason))
			case "user":
				off := false
				_, err := models.UpdateWebhook(ctx, db, h.UserID, h.ID, models.WebhookPatch{IsActive: &off})
				require.NoError(t, err)
			}
			before := webhook(t, db, h)

			in := outcome(h, delivery.KindEvent, false)
			in.Attempts, in.StatusCode, in.Error, in.Gone = 1, 410, "receiver answered HTTP 410", true
			res := complete(t, env, s, in)
			assert.True(t, res.Disabled, "one 410 is enough, whatever DisableAfterFailures says")
			assert.Equal(t, 1, res.FailureCount)

			w := webhook(t, db, h)
			assert.False(t, w.IsActive)
			require.NotNil(t, w.DisabledReason)
			assert.Equal(t, tt.wantReason, *w.DisabledReason)
			require.NotNil(t, w.DisabledAt)
			if before.DisabledAt != nil {
				assert.True(t, before.DisabledAt.Equal(*w.DisabledAt), "the first switch-off keeps its time")
			}
			d := logRow(t, db, h.ID, in.DeliveryID)
			assert.Equal(t, delivery.OutcomeFailed, d.Status)
		})
	}
}
