package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

// statsBenchDeliveries is the webhook's deliveries in the window the target is set for:
// GET /webhooks/:id/stats must answer in under 20 ms with this many.
const statsBenchDeliveries = 100_000

// BenchmarkWebhookStats measures GetWebhookStats (GET /webhooks/:id/stats?window=24h) for
// a webhook with 100,000 deliveries spread over the last 24 hours, 10 % of them failed,
// beside another webhook's 100,000, all written through the triggers as the service
// writes them (created, then completed). The target is under 20 ms per call.
//
//	go test -run '^$' -bench BenchmarkWebhookStats ./models/
func BenchmarkWebhookStats(b *testing.B) {
	db, ctx := testinfra.DB(b), context.Background()
	box := testfixture.Box(b)
	newHook := func() string {
		return testfixture.CreateWebhook(b, db, box, testfixture.Webhook{
			UserID: "user-" + uuid.NewString(), URL: "http://127.0.0.1:9/in", Events: []string{"LOW_STOCK"},
		}).ID
	}
	hook, noise := newHook(), newHook()
	seed := func(webhookID string) {
		// Created pending (as a claim does), then completed (as the outcome step does), in
		// batches so each statement stays short.
		const batch = 20_000
		for from := 0; from < statsBenchDeliveries; from += batch {
			_, err := db.NewRaw(`
WITH ins AS (
    INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, kind, status, attempts, request_body, workflow_id, run_id, created_at)
    SELECT gen_random_uuid(), ?, 'evt_' || g, 'LOW_STOCK', 'event', 'pending', 1, '{"id":"x"}', 'w', 'r',
           current_timestamp - (g * interval '1 second') * (86000.0 / ?)
    FROM generate_series(?, ?) AS g
    RETURNING id
)
SELECT count(*) FROM ins`, webhookID, statsBenchDeliveries, from, from+batch-1).Exec(ctx)
			require.NoError(b, err)
		}
		_, err := db.NewRaw(`
UPDATE webhook_deliveries SET
    status = CASE WHEN hashtext(event_id) % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
    attempts = CASE WHEN hashtext(event_id) % 10 = 0 THEN 3 ELSE 1 END,
    duration_ms = abs(hashtext(event_id)) % 800,
    last_error = CASE WHEN hashtext(event_id) % 10 = 0 THEN 'receiver answered HTTP 500' END,
    completed_at = created_at + interval '1 second'
WHERE webhook_id = ?`, webhookID).Exec(ctx)
		require.NoError(b, err)
	}
	seed(hook)
	seed(noise)
	_, err := db.ExecContext(ctx, "VACUUM ANALYZE webhook_deliveries, webhook_delivery_stats")
	require.NoError(b, err)

	st, err := models.GetWebhookStats(ctx, db, hook, 24*time.Hour)
	require.NoError(b, err)
	if got := st.Outcomes.Total(); got < statsBenchDeliveries*99/100 {
		b.Fatalf("the window holds %d deliveries, want about %d", got, statsBenchDeliveries)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := models.GetWebhookStats(ctx, db, hook, 24*time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/op")
}
