DROP TRIGGER IF EXISTS webhook_failure_streak ON webhooks;

--bun:split

DROP FUNCTION IF EXISTS webhook_failure_streak_record();

--bun:split

DROP TABLE IF EXISTS webhook_failure_streaks;

--bun:split

DROP TRIGGER IF EXISTS webhook_delivery_stats_complete ON webhook_deliveries;

--bun:split

DROP TRIGGER IF EXISTS webhook_delivery_stats_insert ON webhook_deliveries;

--bun:split

DROP FUNCTION IF EXISTS webhook_delivery_stats_record();

--bun:split

DROP FUNCTION IF EXISTS webhook_stats_bucket(integer);

--bun:split

DROP TABLE IF EXISTS webhook_delivery_stats;

--bun:split

DROP TABLE IF EXISTS operational_events;

--bun:split

DROP TABLE IF EXISTS webhook_recoveries;

--bun:split

-- Nothing was sent for a missed delivery, as for a skipped one.
UPDATE webhook_deliveries SET status = 'skipped' WHERE status = 'missed';

--bun:split

ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;

--bun:split

ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped', 'filtered'));
