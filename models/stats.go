package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// StatsBucketBounds are the upper bounds, in milliseconds, of the response-time
// histogram the delivery log's statistics keep (webhook_stats_bucket in the migrations):
// bucket 1 holds [0, 5), bucket i [bounds[i-2], bounds[i-1]), the last [60000, ∞).
var StatsBucketBounds = []int{5, 10, 20, 30, 40, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750,
	1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000}

// WebhookStats is a webhook's health over a window of its delivery log. Test deliveries
// are left out.
type WebhookStats struct {
	Since    time.Time
	Until    time.Time
	Outcomes OutcomeCounts
	// Sent counts the succeeded and failed deliveries, which made attempts; Attempts
	// their attempts.
	Sent     int
	Attempts int64
	// Durations is the histogram of the finished deliveries' last response times over
	// StatsBucketBounds.
	Durations   []int
	LastError   *string
	LastErrorAt *time.Time
	// FailingSince is when the webhook's current run of failed deliveries began; nil
	// when its last delivery succeeded.
	FailingSince *time.Time
}

// OutcomeCounts counts deliveries by where they stand.
type OutcomeCounts struct {
	Pending   int `json:"pending"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Skipped   int `json:"skipped"`
	Filtered  int `json:"filtered"`
	Missed    int `json:"missed"`
}

// Total is every delivery counted.
func (c OutcomeCounts) Total() int {
	return c.Pending + c.Succeeded + c.Failed + c.Skipped + c.Filtered + c.Missed
}

// statsRow is an hour of webhook_delivery_stats, or the part-hour at the window's start
// computed from the delivery log itself.
type statsRow struct {
	Since       time.Time  `bun:"since"`
	Until       time.Time  `bun:"until"`
	Created     int        `bun:"created"`
	Succeeded   int        `bun:"succeeded"`
	Failed      int        `bun:"failed"`
	Skipped     int        `bun:"skipped"`
	Filtered    int        `bun:"filtered"`
	Missed      int        `bun:"missed"`
	Sent        int        `bun:"sent"`
	Attempts    int64      `bun:"attempts"`
	Durations   []int      `bun:"durations,array"`
	LastError   *string    `bun:"last_error"`
	LastErrorAt *time.Time `bun:"last_error_at"`
}

// GetWebhookStats computes a webhook's health over the window before now. Whole hours
// come from webhook_delivery_stats, which triggers keep as deliveries are created and
// finished (one row per hour); the part-hour at the window's start comes from the
// delivery log through its (webhook_id, created_at) index. So the cost grows with the
// window's hours, not with its deliveries.
func GetWebhookStats(ctx context.Context, db bun.IDB, webhookID string, window time.Duration) (*WebhookStats, error) {
	var rows []statsRow
	err := db.NewRaw(`
WITH b AS (
    SELECT current_timestamp - ?::interval AS since, current_timestamp AS until,
           date_trunc('hour', current_timestamp - ?::interval) + interval '1 hour' AS whole
), edge AS (
    SELECT d.status, d.attempts, d.duration_ms, d.last_error, d.completed_at
    FROM webhook_deliveries AS d, b
    WHERE d.webhook_id = ? AND d.kind <> 'test' AND d.created_at >= b.since AND d.created_at < b.whole
)
SELECT (SELECT since FROM b) AS since, (SELECT until FROM b) AS until, x.*
FROM (
    SELECT s.created, s.succeeded, s.failed, s.skipped, s.filtered, s.missed, s.sent, s.attempts,
           s.durations, s.last_error, s.last_error_at
    FROM webhook_delivery_stats AS s, b
    WHERE s.webhook_id = ? AND s.hour >= b.whole
    UNION ALL
    SELECT count(*)::integer,
           (count(*) FILTER (WHERE completed_at IS NOT NULL AND status = 'succeeded'))::integer,
           (count(*) FILTER (WHERE completed_at IS NOT NULL AND status = 'failed'))::integer,
           (count(*) FILTER (WHERE completed_at IS NOT NULL AND status = 'skipped'))::integer,
           (count(*) FILTER (WHERE completed_at IS NOT NULL AND status = 'filtered'))::integer,
           (count(*) FILTER (WHERE completed_at IS NOT NULL AND status = 'missed'))::integer,
           (count(*) FILTER (WHERE completed_at IS NOT NULL AND status IN ('succeeded', 'failed')))::integer,
           coalesce(sum(attempts) FILTER (WHERE completed_at IS NOT NULL AND status IN ('succeeded', 'failed')), 0)::bigint,
           (SELECT coalesce(array_agg(coalesce(h.n, 0) ORDER BY g.i), '{}')
            FROM generate_series(1, ?) AS g (i)
            LEFT JOIN (SELECT webhook_stats_bucket(duration_ms) AS bucket, count(*)::integer AS n FROM edge
                       WHERE completed_at IS NOT NULL AND duration_ms IS NOT NULL GROUP BY 1) AS h
                   ON h.bucket = g.i),
           (SELECT last_error FROM edge WHERE status = 'failed' AND completed_at IS NOT NULL ORDER BY completed_at DESC LIMIT 1),
           (SELECT max(completed_at) FROM edge WHERE status = 'failed')
    FROM edge
) AS x`,
		intervalOf(window), intervalOf(window), webhookID, webhookID, len(StatsBucketBounds)+1,
	).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("webhook stats: %w", err)
	}
	st := &WebhookStats{Durations: make([]int, len(StatsBucketBounds)+1)}
	if len(rows) > 0 { // the part-hour's aggregate always gives one
		st.Since, st.Until = rows[0].Since, rows[0].Until
	}
	done := 0
	for _, r := range rows {
		o := &st.Outcomes
		o.Succeeded += r.Succeeded
		o.Failed += r.Failed
		o.Skipped += r.Skipped
		o.Filtered += r.Filtered
		o.Missed += r.Missed
		done += r.Succeeded + r.Failed + r.Skipped + r.Filtered + r.Missed
		o.Pending += r.Created
		st.Sent += r.Sent
		st.Attempts += r.Attempts
		for i, n := range r.Durations {
			if i < len(st.Durations) {
				st.Durations[i] += n
			}
		}
		if r.LastErrorAt != nil && (st.LastErrorAt == nil || r.LastErrorAt.After(*st.LastErrorAt)) {
			st.LastError, st.LastErrorAt = r.LastError, r.LastErrorAt
		}
	}
	st.Outcomes.Pending = max(st.Outcomes.Pending-done, 0)

	var started sql.NullTime
	err = db.NewRaw(`SELECT s.started_at FROM webhook_failure_streaks AS s
JOIN webhooks AS w ON w.id = s.webhook_id AND w.failure_count > 0 WHERE s.webhook_id = ?`, webhookID).Scan(ctx, &started)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("webhook failure streak: %w", err)
	}
	if started.Valid {
		st.FailingSince = &started.Time
	}
	return st, nil
}

// Percentile estimates the q-th quantile (0 < q ≤ 1) of the response times, in
// milliseconds, by linear interpolation within the histogram bucket it falls in; nil
// without any response time. Its error is at most the width of that bucket.
func (s *WebhookStats) Percentile(q float64) *int {
	total := 0
	for _, n := range s.Durations {
		total += n
	}
	if total == 0 {
		return nil
	}
	rank := q * float64(total)
	seen := 0
	for i, n := range s.Durations {
		if n == 0 || float64(seen+n) < rank {
			seen += n
			continue
		}
		lower, upper := 0, 0
		if i > 0 {
			lower = StatsBucketBounds[i-1]
		}
		if i < len(StatsBucketBounds) {
			upper = StatsBucketBounds[i]
		} else {
			upper = lower // beyond the last bound nothing is known but the bound
		}
		v := lower + int(float64(upper-lower)*(rank-float64(seen))/float64(n))
		return &v
	}
	v := StatsBucketBounds[len(StatsBucketBounds)-1]
	return &v
}

// intervalOf renders d as a PostgreSQL interval.
func intervalOf(d time.Duration) string {
	return fmt.Sprintf("%d microseconds", d.Microseconds())
}
