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

// finishDelivery writes a delivery as the service does: claimed (created pending), then
// completed with status, attempts and the last attempt's duration.
func finishDelivery(t testing.TB, db bun.IDB, webhookID string, kind delivery.Kind, status delivery.Outcome, attempts, durationMS int, lastError string) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	_, err := db.NewRaw(`INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, kind, status, attempts, workflow_id, run_id)
		VALUES (?, ?, ?, 'LOW_STOCK', ?, 'pending', 1, 'w', 'r')`, id, webhookID, "evt_"+id, kind).Exec(ctx)
	require.NoError(t, err)
	if status == delivery.OutcomePending {
		return id
	}
	var errMsg any
	if lastError != "" {
		errMsg = lastError
	}
	_, err = db.NewRaw(`UPDATE webhook_deliveries SET attempts = ?, duration_ms = ?, status = ?, last_error = ?,
		completed_at = current_timestamp WHERE id = ?`, attempts, durationMS, status, errMsg, id).Exec(ctx)
	require.NoError(t, err)
	return id
}

func TestWebhookStats(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	for i := range 8 {
		finishDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeSucceeded, 1, 100+i*10, "") // 100..170 ms
	}
	finishDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeFailed, 3, 2000, "receiver answered HTTP 500")
	finishDelivery(t, db, w.ID, delivery.KindRedelivery, delivery.OutcomeFailed, 3, 2500, "receiver answered HTTP 503")
	finishDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomePending, 0, 0, "")
	_, err := db.NewRaw(`INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, kind, status, attempts, workflow_id, run_id, completed_at)
		VALUES (?, ?, 'evt_m', 'LOW_STOCK', 'event', 'missed', 0, 'w', 'r', current_timestamp)`, uuid.NewString(), w.ID).Exec(ctx)
	require.NoError(t, err)
	// A test delivery is a probe, not traffic: not counted.
	finishDelivery(t, db, w.ID, delivery.KindTest, delivery.OutcomeFailed, 1, 9000, "test failure")

	st, err := models.GetWebhookStats(ctx, db, w.ID, 24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, models.OutcomeCounts{Pending: 1, Succeeded: 8, Failed: 2, Missed: 1}, st.Outcomes)
	assert.Equal(t, 12, st.Outcomes.Total())
	assert.Equal(t, 10, st.Sent)
	assert.Equal(t, int64(8+3+3), st.Attempts)
	require.NotNil(t, st.LastError)
	assert.Equal(t, "receiver answered HTTP 503", *st.LastError, "the latest failure, not the test's")
	assert.WithinDuration(t, time.Now(), st.Until, time.Minute)
	assert.Equal(t, 24*time.Hour, st.Until.Sub(st.Since).Round(time.Second))

	p50, p95 := st.Percentile(0.5), st.Percentile(0.95)
	require.NotNil(t, p50)
	require.NotNil(t, p95)
	assert.InDelta(t, 135, *p50, 50, "the median of 100..170 ms and two slow failures, within its bucket [100, 150)")
	assert.GreaterOrEqual(t, *p95, 2000, "the slow failures are the top 20 %%")
	assert.Less(t, *p95, 3000)
	assert.Nil(t, st.FailingSince, "the failure count is 0: no streak")

	// Another webhook's deliveries are not counted.
	other := deliveryHook(t, db, w.UserID)
	st, err = models.GetWebhookStats(ctx, db, other.ID, time.Hour)
	require.NoError(t, err)
	assert.Zero(t, st.Outcomes.Total())
	assert.Nil(t, st.Percentile(0.5))
	assert.Nil(t, st.LastError)
}

// The window's first, partial hour is read from the log itself, so a delivery just
// outside the window is not counted although its hour is.
func TestWebhookStatsWindowEdge(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	now := time.Now()
	for _, ago := range []time.Duration{30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 7 * time.Hour} {
		logDelivery(t, db, w.ID, delivery.KindEvent, delivery.OutcomeSucceeded, now.Add(-ago), `{}`)
	}
	tests := []struct {
		window time.Duration
		want   int
	}{
		{window: 10 * time.Minute, want: 0},
		{window: time.Hour, want: 1},
		{window: 3 * time.Hour, want: 2},
		{window: 6 * time.Hour, want: 3},
		{window: 24 * time.Hour, want: 4},
	}
	for _, tt := range tests {
		st, err := models.GetWebhookStats(ctx, db, w.ID, tt.window)
		require.NoError(t, err)
		assert.Equal(t, tt.want, st.Outcomes.Succeeded, "window %s", tt.window)
	}
}

func TestFailureStreakFollowsFailureCount(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	w := deliveryHook(t, db, "user-"+uuid.NewString())
	complete := func(succeeded bool) {
		t.Helper()
		d := deliveryOf(w.ID)
		c := failure(d, 0)
		c.Succeeded = succeeded
		_, err := models.CompleteDelivery(ctx, db, c)
		require.NoError(t, err)
	}
	streak := func() *time.Time {
		t.Helper()
		st, err := models.GetWebhookStats(ctx, db, w.ID, time.Hour)
		require.NoError(t, err)
		return st.FailingSince
	}

	complete(false)
	first := streak()
	require.NotNil(t, first, "the first failure starts a streak")
	complete(false)
	require.NotNil(t, streak())
	assert.Equal(t, *first, *streak(), "a second failure continues it")
	complete(true)
	assert.Nil(t, streak(), "a success ends it")
	complete(false)
	require.NotNil(t, streak())
	assert.True(t, streak().After(*first), "a new streak")

	// Re-enabling resets the count, and so the streak.
	on := true
	_, err := models.UpdateWebhook(ctx, db, w.UserID, w.ID, models.WebhookPatch{IsActive: &on})
	require.NoError(t, err)
	assert.Nil(t, streak())
}

func TestStatsBucketBoundsMatchTheDatabase(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	for i, bound := range models.StatsBucketBounds {
		var below, at int
		require.NoError(t, db.NewRaw(`SELECT webhook_stats_bucket(?), webhook_stats_bucket(?)`, bound-1, bound).Scan(ctx, &below, &at))
		assert.Equal(t, i+1, below, "%d ms", bound-1)
		assert.Equal(t, i+2, at, "%d ms", bound)
	}
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name      string
		durations map[int]int // bucket index (0-based) to count
		q         float64
		want      int
	}{
		{name: "one bucket, middle", durations: map[int]int{8: 10}, q: 0.5, want: 125},       // [100, 150)
		{name: "lowest bucket", durations: map[int]int{0: 4}, q: 1, want: 5},                 // [0, 5)
		{name: "beyond the last bound", durations: map[int]int{26: 3}, q: 0.95, want: 60000}, // [60000, ∞)
		{name: "upper of two", durations: map[int]int{1: 50, 16: 50}, q: 0.95, want: 1450},   // [1000, 1500)
		{name: "lower of two", durations: map[int]int{1: 50, 16: 50}, q: 0.5, want: 10},      // [5, 10) full
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &models.WebhookStats{Durations: make([]int, len(models.StatsBucketBounds)+1)}
			for i, n := range tt.durations {
				st.Durations[i] = n
			}
			got := st.Percentile(tt.q)
			require.NotNil(t, got)
			assert.Equal(t, tt.want, *got)
		})
	}
}
