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

	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

// Many replicas reserving at once for one webhook get slots at least one interval apart
// (beyond the burst), never the same slot, and only within the horizon; the others are
// queued with turns one interval apart, after the reserved slots.
func TestReserveRateSpacesSlotsAcrossReplicas(t *testing.T) {
	tests := []struct {
		name  string
		burst int
	}{{name: "no burst", burst: 1}, {name: "burst of 3", burst: 3}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := testinfra.DB(t)
			hook := deliveryHook(t, db, "user-"+uuid.NewString())
			plan := models.RatePlan{Interval: 100 * time.Millisecond, Burst: tt.burst, Horizon: 500 * time.Millisecond}
			const callers = 40
			answers := make([]struct{ res models.RateReservation }, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					res, err := models.ReserveRate(context.Background(), db, hook.ID, plan)
					assert.NoError(t, err)
					answers[i].res = res
				})
			}
			wg.Wait()

			var slots, turns []time.Time
			for _, a := range answers {
				// On the database's clock: the caller's own, read after the answer came
				// back, is late by however long the goroutine waited to run.
				at := a.res.At
				if a.res.Reserved {
					assert.LessOrEqual(t, a.res.Wait, plan.Horizon+50*time.Millisecond, "a reserved slot lies within the horizon")
					slots = append(slots, at)
				} else {
					assert.Greater(t, a.res.Wait, plan.Horizon-50*time.Millisecond, "only slots beyond the horizon are queued")
					turns = append(turns, at)
				}
			}
			slices.SortFunc(slots, time.Time.Compare)
			slices.SortFunc(turns, time.Time.Compare)
			// Within the horizon of 5 intervals: the burst plus about 5 more slots.
			require.GreaterOrEqual(t, len(slots), tt.burst+3)
			require.LessOrEqual(t, len(slots), tt.burst+6)
			require.Len(t, turns, callers-len(slots))
			// Slot times come from one clock (the database's): a millisecond of rounding.
			const slack = time.Millisecond
			// GCRA's bound: j-i slots after slot i come no sooner than the interval times
			// their number beyond the burst.
			for i := range slots {
				for j := i + tt.burst; j < len(slots); j++ {
					want := time.Duration(j-i-(tt.burst-1)) * plan.Interval
					assert.GreaterOrEqual(t, slots[j].Sub(slots[i]), want-slack, "slots %d and %d", i, j)
				}
			}
			for i := 1; i < len(turns); i++ {
				assert.InDelta(t, plan.Interval.Seconds(), turns[i].Sub(turns[i-1]).Seconds(), slack.Seconds(), "turns are one interval apart")
			}
			assert.GreaterOrEqual(t, turns[0].Sub(slots[len(slots)-1]), plan.Interval-slack, "the queue starts after the last reserved slot")
		})
	}
}

// An attempt that comes back at its turn finds its slot within the horizon; a quiet
// webhook reserves at once; a deleted one never holds a caller back.
func TestReserveRateTurnLeadsToSlot(t *testing.T) {
	db := testinfra.DB(t)
	ctx := context.Background()
	hook := deliveryHook(t, db, "user-"+uuid.NewString())
	plan := models.RatePlan{Interval: 200 * time.Millisecond, Burst: 1, Horizon: 300 * time.Millisecond}

	first, err := models.ReserveRate(ctx, db, hook.ID, plan)
	require.NoError(t, err)
	assert.True(t, first.Reserved)
	assert.LessOrEqual(t, first.Wait, time.Duration(0), "a quiet webhook sends at once")

	var queued models.RateReservation
	for range 5 {
		queued, err = models.ReserveRate(ctx, db, hook.ID, plan)
		require.NoError(t, err)
	}
	require.False(t, queued.Reserved, "the fifth in a row is beyond the horizon")
	time.Sleep(queued.Wait - plan.Horizon/2)
	back, err := models.ReserveRate(ctx, db, hook.ID, plan)
	require.NoError(t, err)
	assert.True(t, back.Reserved, "back at its turn, the attempt gets a slot")

	// A slot is never sooner than the lead, so the caller is ready on it.
	led := deliveryHook(t, db, "user-"+uuid.NewString())
	res, err := models.ReserveRate(ctx, db, led.ID, models.RatePlan{Interval: time.Second, Burst: 5, Lead: 80 * time.Millisecond, Horizon: time.Second})
	require.NoError(t, err)
	assert.True(t, res.Reserved)
	assert.InDelta(t, 0.08, res.Wait.Seconds(), 0.02, "the first slot is one lead away")

	_, err = db.NewDelete().Model((*models.Webhook)(nil)).Where("id = ?", hook.ID).Exec(ctx)
	require.NoError(t, err)
	gone, err := models.ReserveRate(ctx, db, hook.ID, plan)
	require.NoError(t, err)
	assert.Equal(t, models.RateReservation{Reserved: true}, gone)
}

// Leases never let more than maxInFlight attempts hold a slot at once, however many
// replicas race for them; a released slot is free again, and an expired one (its worker
// died) is taken over without being released.
func TestLeasesCapInFlight(t *testing.T) {
	db := testinfra.DB(t)
	ctx := context.Background()
	hook := deliveryHook(t, db, "user-"+uuid.NewString())
	const maxInFlight = 3

	var mu sync.Mutex
	var held []models.Lease
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			l, ok, err := models.AcquireLease(ctx, db, hook.ID, uuid.NewString(), maxInFlight, time.Minute, 3)
			assert.NoError(t, err)
			if ok {
				mu.Lock()
				held = append(held, l)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, held, maxInFlight, "every slot taken, none twice")
	slots := []int{}
	for _, l := range held {
		slots = append(slots, l.Slot)
	}
	assert.ElementsMatch(t, []int{1, 2, 3}, slots)

	_, ok, err := models.AcquireLease(ctx, db, hook.ID, uuid.NewString(), maxInFlight, time.Minute, 3)
	require.NoError(t, err)
	assert.False(t, ok, "all slots held")

	require.NoError(t, models.ReleaseLease(ctx, db, held[0]))
	again, ok, err := models.AcquireLease(ctx, db, hook.ID, uuid.NewString(), maxInFlight, time.Minute, 3)
	require.NoError(t, err)
	require.True(t, ok, "a released slot is free")
	assert.Equal(t, held[0].Slot, again.Slot)

	// A lease whose attempt died: it expires by itself and is taken over.
	_, err = db.NewRaw("UPDATE throttle_leases SET expires_at = clock_timestamp() - interval '1 second' WHERE webhook_id = ? AND slot = ?",
		hook.ID, held[1].Slot).Exec(ctx)
	require.NoError(t, err)
	taken, ok, err := models.AcquireLease(ctx, db, hook.ID, uuid.NewString(), maxInFlight, time.Minute, 3)
	require.NoError(t, err)
	require.True(t, ok, "an expired lease is taken over")
	assert.Equal(t, held[1].Slot, taken.Slot)
	// The dead attempt's late release does not free the slot its successor holds.
	require.NoError(t, models.ReleaseLease(ctx, db, held[1]))
	_, ok, err = models.AcquireLease(ctx, db, hook.ID, uuid.NewString(), maxInFlight, time.Minute, 3)
	require.NoError(t, err)
	assert.False(t, ok, "the successor still holds the slot")
}

// BenchmarkReserveRate is the rate-limit check one delivery to a rate-limited webhook
// costs: one statement. Run with make bench (see bench/README.md).
func BenchmarkReserveRate(b *testing.B) {
	db := testinfra.DB(b)
	hook := testHook(b, db)
	// An interval short enough that every call reserves: the common case, a webhook
	// under its limit.
	plan := models.RatePlan{Interval: time.Microsecond, Burst: 1, Horizon: time.Second}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := models.ReserveRate(ctx, db, hook, plan)
		if err != nil || !res.Reserved {
			b.Fatalf("reserve: %+v, %v", res, err)
		}
	}
}

// BenchmarkLease is taking and giving back an in-flight slot: the two statements one
// delivery to a webhook with maxInFlight costs.
func BenchmarkLease(b *testing.B) {
	db := testinfra.DB(b)
	hook := testHook(b, db)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, ok, err := models.AcquireLease(ctx, db, hook, uuid.NewString(), 4, time.Minute, 3)
		if err != nil || !ok {
			b.Fatalf("acquire: %v, %v", ok, err)
		}
		if err := models.ReleaseLease(ctx, db, l); err != nil {
			b.Fatal(err)
		}
	}
}

// testHook inserts a webhook and returns its id, for benchmarks as well as tests.
func testHook(tb testing.TB, db bun.IDB) string {
	tb.Helper()
	return testfixture.CreateWebhook(tb, db, testfixture.Box(tb), testfixture.Webhook{
		UserID: "user-" + uuid.NewString(), URL: "http://127.0.0.1:9/in", Events: []string{"LOW_STOCK"},
	}).ID
}
