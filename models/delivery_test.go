package models_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

// deliveryHook inserts an active webhook for userID subscribed to events (LOW_STOCK
// when none are given) and reads it back, sealed secret included.
func deliveryHook(t *testing.T, db bun.IDB, userID string, events ...string) *models.Webhook {
	t.Helper()
	if len(events) == 0 {
		events = []string{"LOW_STOCK"}
	}
	h := testfixture.CreateWebhook(t, db, testfixture.Box(t), testfixture.Webhook{
		UserID: userID, URL: "http://127.0.0.1:9/in", Events: events, Name: "delivery test",
	})
	w, err := models.GetWebhook(context.Background(), db, userID, h.ID)
	require.NoError(t, err)
	return w
}

// deliveryOf is the identity of a fresh event delivery to webhookID.
func deliveryOf(webhookID string) models.Delivery {
	return models.Delivery{
		ID:         uuid.NewString(),
		WebhookID:  webhookID,
		EventID:    "evt_" + uuid.NewString(),
		Event:      "LOW_STOCK",
		Kind:       delivery.KindEvent,
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
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	d := deliveryOf(w.ID)
	d.RequestBody = []byte(`{"id":"evt","event":"LOW_STOCK"}`)

	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{
		Delivery: d, Number: 1, StatusCode: 500, Error: "receiver answered HTTP 500", ResponseExcerpt: "oops", Duration: 42 * time.Millisecond,
	}))
	got, err := models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomePending, got.Status)
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
	assert.Equal(t, delivery.OutcomeSucceeded, got.Status)
	assert.Equal(t, 2, got.Attempts)
	assert.Nil(t, got.LastError)
	assert.Nil(t, got.ResponseExcerpt)

	// A stale report of an earlier attempt neither lowers the count nor undoes the success.
	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 1, StatusCode: 502, Error: "late"}))
	got, err = models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomeSucceeded, got.Status)
	assert.Equal(t, 2, got.Attempts)

	// Each attempt keeps its own answer, first to last; a repeated report of attempt 1
	// (a retried record step) leaves the first one as it was.
	log, err := models.ListAttempts(ctx, db, d.ID)
	require.NoError(t, err)
	require.Len(t, log, 2)
	tests := []struct {
		got                       models.DeliveryAttempt
		attempt, status, duration int
		succeeded                 bool
		error, excerpt            string
	}{
		{got: log[0], attempt: 1, status: 500, duration: 42, error: "receiver answered HTTP 500", excerpt: "oops"},
		{got: log[1], attempt: 2, status: 200, succeeded: true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.attempt, tt.got.Attempt)
		assert.Equal(t, tt.succeeded, tt.got.Succeeded, "attempt %d", tt.attempt)
		require.NotNil(t, tt.got.StatusCode)
		assert.Equal(t, tt.status, *tt.got.StatusCode, "attempt %d", tt.attempt)
		assert.Equal(t, tt.duration, tt.got.DurationMS, "attempt %d", tt.attempt)
		assert.Equal(t, tt.error, deref(tt.got.Error), "attempt %d", tt.attempt)
		assert.Equal(t, tt.excerpt, deref(tt.got.ResponseExcerpt), "attempt %d", tt.attempt)
		assert.False(t, tt.got.RecordedAt.IsZero())
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestListDeliveriesByEvent(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	byEvent := map[string][]string{}
	for i, ev := range []string{"LOW_STOCK", "ASSET_TRANSFERRED", "LOW_STOCK", "webhook.test"} {
		d := deliveryOf(w.ID)
		d.Event = ev
		require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 1, Succeeded: i != 2, StatusCode: 200}))
		byEvent[ev] = append(byEvent[ev], d.ID)
	}
	tests := []struct {
		event  string
		status delivery.Outcome
		want   int
	}{
		{event: "LOW_STOCK", want: 2},
		{event: "LOW_STOCK", status: delivery.OutcomePending, want: 1},
		{event: "ASSET_TRANSFERRED", want: 1},
		{event: "BOOKING_CANCELLED", want: 0},
		{event: "", want: 4},
	}
	for _, tt := range tests {
		got, err := models.ListDeliveries(ctx, db, w.ID, tt.status, tt.event, 10, nil)
		require.NoError(t, err)
		assert.Len(t, got, tt.want, "event %q status %q", tt.event, tt.status)
		for _, d := range got {
			if tt.event != "" {
				assert.Equal(t, tt.event, d.Event)
				assert.Contains(t, byEvent[tt.event], d.ID)
			}
		}
	}
}

func TestRecordAttemptLeavesCompletedDelivery(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	d := deliveryOf(w.ID)

	res, err := models.CompleteDelivery(ctx, db, failure(d, 0))
	require.NoError(t, err)
	require.True(t, res.Completed)
	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 4, Succeeded: true, StatusCode: 200}))

	got, err := models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomeFailed, got.Status)
	assert.Equal(t, 3, got.Attempts)
	require.NotNil(t, got.LastError)
	assert.Equal(t, "receiver answered HTTP 500", *got.LastError)
}

func TestLoadDeliveryTarget(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
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
	assert.Equal(t, delivery.OutcomeSucceeded, target.PriorStatus)
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
	assert.Equal(t, w.SecretSealed, target.PreviousSecretSealed)
	assert.Equal(t, 1, target.PreviousSecretKeyVersion)
	require.NotNil(t, target.PreviousSecretExpiresAt)
	assert.True(t, expires.Equal(*target.PreviousSecretExpiresAt))
	assert.False(t, target.PriorCompleted, "a success not yet reported is not completed")
	assert.Empty(t, target.PriorError)

	failed := deliveryOf(w.ID)
	_, err = models.CompleteDelivery(ctx, db, failure(failed, 0))
	require.NoError(t, err)
	target, err = models.LoadDeliveryTarget(ctx, db, w.ID, failed.ID)
	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomeFailed, target.PriorStatus)
	assert.True(t, target.PriorCompleted)
	assert.Equal(t, "receiver answered HTTP 500", target.PriorError)
	assert.Equal(t, 3, target.PriorAttempts)
	assert.Equal(t, 500, target.PriorStatusCode)
}

func TestClaimAttempt(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	d := deliveryOf(w.ID)
	d.RequestBody = []byte(`{"id":"evt","event":"LOW_STOCK"}`)

	n, err := models.ClaimAttempt(ctx, db, d, 3)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err := models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomePending, got.Status)
	assert.Equal(t, 1, got.Attempts)
	assert.Equal(t, d.RequestBody, got.RequestBody, "the first claim stores the body a redelivery resends")
	assert.Equal(t, d.EventID, got.EventID)
	assert.Equal(t, d.Event, got.Event)
	assert.Equal(t, delivery.KindEvent, got.Kind)
	assert.Equal(t, d.WorkflowID, got.WorkflowID)
	assert.Equal(t, d.RunID, got.RunID)
	assert.Nil(t, got.CompletedAt)
	assert.Nil(t, got.LastError)

	// The attempt's outcome, recorded after the request, keeps the claimed count.
	require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 1, StatusCode: 500, Error: "receiver answered HTTP 500"}))
	next := d
	next.RunID = uuid.NewString()
	n, err = models.ClaimAttempt(ctx, db, next, 3)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	got, err = models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, got.Attempts)
	assert.Equal(t, next.RunID, got.RunID, "the row names the run that made the latest attempt")
	require.NotNil(t, got.LastError, "a claim leaves the last attempt's outcome in place")
	assert.Equal(t, "receiver answered HTTP 500", *got.LastError)
}

func TestClaimAttemptRefuses(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	tests := []struct {
		name         string
		give         delivery.Outcome // the delivery's state before the claim: its status, or another named here
		max          int
		wantStatus   delivery.Outcome // "" for no row
		wantAttempts int
	}{
		{name: "succeeded", give: delivery.OutcomeSucceeded, max: 3, wantStatus: delivery.OutcomeSucceeded, wantAttempts: 1},
		{name: "completed as failed", give: delivery.OutcomeFailed, max: 5, wantStatus: delivery.OutcomeFailed, wantAttempts: 3},
		{name: "closed as skipped", give: delivery.OutcomeSkipped, max: 3, wantStatus: delivery.OutcomeSkipped, wantAttempts: 1},
		{name: "attempts used up", give: "exhausted", max: 3, wantStatus: delivery.OutcomePending, wantAttempts: 3},
		{name: "webhook does not exist", give: "no webhook", max: 3},
		{name: "no budget", give: "", max: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := deliveryHook(t, db, "user-"+uuid.NewString())
			d := deliveryOf(w.ID)
			switch tt.give {
			case delivery.OutcomeSucceeded:
				require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 1, Succeeded: true, StatusCode: 200}))
			case delivery.OutcomeFailed:
				_, err := models.CompleteDelivery(ctx, db, failure(d, 0))
				require.NoError(t, err)
			case delivery.OutcomeSkipped:
				first, err := models.ClaimAttempt(ctx, db, d, tt.max)
				require.NoError(t, err)
				require.Equal(t, 1, first)
				closed, err := models.SkipDelivery(ctx, db, d.ID, "webhook inactive")
				require.NoError(t, err)
				require.True(t, closed)
			case "exhausted":
				for range tt.max {
					_, err := models.ClaimAttempt(ctx, db, d, tt.max)
					require.NoError(t, err)
				}
			case "no webhook":
				d.WebhookID = uuid.NewString()
			}

			n, err := models.ClaimAttempt(ctx, db, d, tt.max)
			require.NoError(t, err)
			assert.Zero(t, n)

			got, err := models.GetDelivery(ctx, db, d.WebhookID, d.ID)
			if tt.wantStatus == "" {
				assert.ErrorIs(t, err, models.ErrNotFound, "a refused claim created a row")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, got.Status)
			assert.Equal(t, tt.wantAttempts, got.Attempts, "a refused claim counted an attempt")
		})
	}
}

// Two runs of one delivery's step can overlap (a worker thought dead still sending):
// the claims still hand out each number once and never more than the budget.
func TestClaimAttemptConcurrently(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	d := deliveryOf(w.ID)

	const n, budget = 10, 3
	claimed := make([]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			claimed[i], errs[i] = models.ClaimAttempt(ctx, db, d, budget)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	var won []int
	for _, c := range claimed {
		if c != 0 {
			won = append(won, c)
		}
	}
	slices.Sort(won)
	assert.Equal(t, []int{1, 2, 3}, won)
	got, err := models.GetDelivery(ctx, db, w.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, budget, got.Attempts)
}

func TestSkipDelivery(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	tests := []struct {
		name       string
		give       delivery.Outcome // the delivery's state before: "" no row
		want       bool
		wantStatus delivery.Outcome // "" for no row
		wantError  string
	}{
		{name: "pending", give: delivery.OutcomePending, want: true, wantStatus: delivery.OutcomeSkipped, wantError: "webhook deleted"},
		{name: "no attempt made", give: "", want: false},
		{name: "already completed", give: delivery.OutcomeFailed, want: false, wantStatus: delivery.OutcomeFailed, wantError: "receiver answered HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := deliveryHook(t, db, "user-"+uuid.NewString())
			d := deliveryOf(w.ID)
			switch tt.give {
			case delivery.OutcomePending:
				require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: d, Number: 2, StatusCode: 503, Error: "receiver answered HTTP 503"}))
			case delivery.OutcomeFailed:
				_, err := models.CompleteDelivery(ctx, db, failure(d, 0))
				require.NoError(t, err)
			}
			before := reloadHook(t, db, w)

			closed, err := models.SkipDelivery(ctx, db, d.ID, "webhook deleted")
			require.NoError(t, err)
			assert.Equal(t, tt.want, closed)
			again, err := models.SkipDelivery(ctx, db, d.ID, "webhook deleted")
			require.NoError(t, err)
			assert.False(t, again, "a closed delivery was closed again")

			got, err := models.GetDelivery(ctx, db, w.ID, d.ID)
			if tt.wantStatus == "" {
				assert.ErrorIs(t, err, models.ErrNotFound, "a skip created a row")
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.wantStatus, got.Status)
				require.NotNil(t, got.LastError)
				assert.Equal(t, tt.wantError, *got.LastError)
				assert.NotNil(t, got.CompletedAt)
			}
			if tt.give == delivery.OutcomePending {
				assert.Equal(t, 2, got.Attempts)
				require.NotNil(t, got.LastStatusCode, "the last attempt's answer stays on the row")
				assert.Equal(t, 503, *got.LastStatusCode)
			}
			after := reloadHook(t, db, w)
			assert.Equal(t, before.FailureCount, after.FailureCount, "the receiver did not fail")
			assert.Equal(t, before.LastTriggeredAt, after.LastTriggeredAt)
			assert.True(t, after.IsActive)
		})
	}
}

func TestCompleteDeliveryGone(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	tests := []struct {
		name       string
		give       string // who switched the webhook off before: "" nobody, "send", "user"
		wantReason string
	}{
		{name: "still active", give: "", wantReason: models.GoneReason},
		{name: "switched off by send", give: "send", wantReason: models.GoneReason},
		{name: "paused by the user first", give: "user", wantReason: "paused by user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := deliveryHook(t, db, "user-"+uuid.NewString())
			switch tt.give {
			case "send":
				require.NoError(t, models.DeactivateWebhook(ctx, db, w.ID, models.GoneReason))
			case "user":
				off := false
				_, err := models.UpdateWebhook(ctx, db, w.UserID, w.ID, models.WebhookPatch{IsActive: &off})
				require.NoError(t, err)
			}
			before := reloadHook(t, db, w)

			c := failure(deliveryOf(w.ID), 0) // a streak alone would never switch it off
			c.Attempts, c.StatusCode, c.Error, c.Gone = 1, 410, "receiver answered HTTP 410", true
			res, err := models.CompleteDelivery(ctx, db, c)
			require.NoError(t, err)
			assert.Equal(t, models.CompletionResult{Completed: true, FailureCount: 1, Disabled: true}, res)

			hook := reloadHook(t, db, w)
			assert.False(t, hook.IsActive)
			require.NotNil(t, hook.DisabledReason)
			assert.Equal(t, tt.wantReason, *hook.DisabledReason)
			require.NotNil(t, hook.DisabledAt)
			if before.DisabledAt != nil {
				assert.True(t, before.DisabledAt.Equal(*hook.DisabledAt), "the first switch-off keeps its time")
			}
		})
	}

	// Without Gone, one failure leaves the webhook on.
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	res, err := models.CompleteDelivery(ctx, db, failure(deliveryOf(w.ID), 0))
	require.NoError(t, err)
	assert.False(t, res.Disabled)
	assert.True(t, reloadHook(t, db, w).IsActive)
}

func TestCompleteDelivery(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())

	// Completing a delivery no attempt recorded (nothing was sent) creates its row.
	first := deliveryOf(w.ID)
	original := uuid.NewString()
	first.Kind, first.RedeliveryOf = delivery.KindRedelivery, &original
	res, err := models.CompleteDelivery(ctx, db, failure(first, 0))
	require.NoError(t, err)
	assert.Equal(t, models.CompletionResult{Completed: true, FailureCount: 1}, res)
	got, err := models.GetDelivery(ctx, db, w.ID, first.ID)
	require.NoError(t, err)
	assert.Equal(t, delivery.OutcomeFailed, got.Status)
	assert.Equal(t, delivery.KindRedelivery, got.Kind)
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
	db, ctx := testinfra.DB(t), context.Background()
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
			db, ctx := testinfra.DB(t), context.Background()
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
	db, ctx := testinfra.DB(t), context.Background()
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
	test.Delivery.Kind, test.Delivery.EventID, test.Delivery.Event = delivery.KindTest, "", "webhook.test"
	res, err := models.CompleteDelivery(ctx, db, test)
	require.NoError(t, err)
	assert.True(t, res.Completed)
	assert.Equal(t, 4, reloadHook(t, db, w).FailureCount)
}

func TestListSubscribers(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
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
	db, ctx := testinfra.DB(t), context.Background()
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
			page, err := models.ListDeliveries(ctx, tx, w.ID, "", "", 2, cursor)
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

	pending, err := models.ListDeliveries(ctx, db, w.ID, delivery.OutcomePending, "", 10, nil)
	require.NoError(t, err)
	assert.Len(t, pending, 2)
}

func TestPruneDeliveries(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
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
