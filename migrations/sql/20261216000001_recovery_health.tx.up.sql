-- Nothing silently missed: deliveries missed while a webhook was off, bulk recoveries,
-- endpoint health, and the operational events the AssetsUp backend is told about.
-- One transaction: the statistics start from a backfill that no completion may slip
-- past (the triggers below exist before it reads, and hold writers until it commits).

-- An event for which a webhook was subscribed but inactive (paused, auto-disabled,
-- 410) is logged as missed: the body it would have carried, nothing sent or counted.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;

--bun:split

ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped', 'filtered', 'missed'));

--bun:split

-- A recovery: the RecoverDeliveries workflow redelivering a webhook's failed or missed
-- deliveries created in [window_start, window_end). Its id is a UUIDv5 of the webhook,
-- the window and the statuses, so the same request names the same recovery. The counts
-- are the workflow's, written as it goes; its redeliveries are in the delivery log
-- under its workflow id.
CREATE TABLE webhook_recoveries (
    id                  uuid        PRIMARY KEY,
    webhook_id          uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    user_id             text        NOT NULL,
    window_start        timestamptz NOT NULL,
    window_end          timestamptz NOT NULL CHECK (window_end > window_start),
    statuses            text[]      NOT NULL CHECK (cardinality(statuses) > 0),
    reason              text        NOT NULL CHECK (reason IN ('requested', 'missed')),
    state               text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'completed', 'canceled', 'failed')),
    matched             integer     NOT NULL DEFAULT 0,
    skipped             integer     NOT NULL DEFAULT 0,
    redelivered         integer     NOT NULL DEFAULT 0,
    succeeded           integer     NOT NULL DEFAULT 0,
    failed              integer     NOT NULL DEFAULT 0,
    -- Why a recovery stopped before its end (state failed).
    error               text,
    workflow_id         text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at          timestamptz NOT NULL DEFAULT current_timestamp,
    cancel_requested_at timestamptz,
    completed_at        timestamptz
);

--bun:split

-- One running recovery per webhook: a second start is a unique violation (409).
CREATE UNIQUE INDEX webhook_recoveries_running_idx ON webhook_recoveries (webhook_id) WHERE state = 'running';

--bun:split

-- Operational events for the AssetsUp backend, written in the same transaction as what
-- caused them. The id is a UUIDv5 of the cause, so a cause retried records one event;
-- the SendOperationalEvent workflow of that id sends it once. No foreign key: the
-- event about a webhook deleted meanwhile is still told.
CREATE TABLE operational_events (
    id               uuid        PRIMARY KEY,
    type             text        NOT NULL,
    user_id          text        NOT NULL,
    webhook_id       uuid        NOT NULL,
    data             jsonb       NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT current_timestamp,
    sent_at          timestamptz
);

--bun:split

-- Endpoint health, per webhook and hour of creation, kept by the trigger below as each
-- delivery is created and completed: GET /webhooks/:id/stats adds up at most one row
-- per hour of its window instead of reading every delivery in it. Test deliveries are
-- left out (they are probes, not traffic). durations is a histogram of the deliveries'
-- last response times over the buckets of webhook_stats_bucket; attempts and sent
-- cover succeeded and failed deliveries.
CREATE TABLE webhook_delivery_stats (
    webhook_id    uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    hour          timestamptz NOT NULL,
    created       integer     NOT NULL DEFAULT 0,
    succeeded     integer     NOT NULL DEFAULT 0,
    failed        integer     NOT NULL DEFAULT 0,
    skipped       integer     NOT NULL DEFAULT 0,
    filtered      integer     NOT NULL DEFAULT 0,
    missed        integer     NOT NULL DEFAULT 0,
    sent          integer     NOT NULL DEFAULT 0,
    attempts      bigint      NOT NULL DEFAULT 0,
    durations     integer[]   NOT NULL DEFAULT '{}',
    last_error    text,
    last_error_at timestamptz,
    PRIMARY KEY (webhook_id, hour)
);

--bun:split

-- The histogram bucket (1-based) of a response time in milliseconds; models/stats.go
-- holds the same bounds (StatsBucketBounds) to read the histogram back.
CREATE FUNCTION webhook_stats_bucket(ms integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT width_bucket(ms, ARRAY[5, 10, 20, 30, 40, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750,
        1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000]) + 1
$$;

--bun:split

CREATE FUNCTION webhook_delivery_stats_record() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    is_new   integer := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE 0 END;
    finished boolean := NEW.completed_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.completed_at IS NULL);
    bucket   integer;
    hist     integer[] := '{}';
BEGIN
    IF NEW.kind = 'test' OR (is_new = 0 AND NOT finished) THEN
        RETURN NULL;
    END IF;
    IF finished AND NEW.duration_ms IS NOT NULL THEN
        bucket := webhook_stats_bucket(NEW.duration_ms);
        hist := array_fill(0, ARRAY[bucket - 1]) || 1;
    END IF;
    INSERT INTO webhook_delivery_stats AS s
        (webhook_id, hour, created, succeeded, failed, skipped, filtered, missed, sent, attempts, durations, last_error, last_error_at)
    VALUES (
        NEW.webhook_id, date_trunc('hour', NEW.created_at), is_new,
        CASE WHEN finished AND NEW.status = 'succeeded' THEN 1 ELSE 0 END,
        CASE WHEN finished AND NEW.status = 'failed' THEN 1 ELSE 0 END,
        CASE WHEN finished AND NEW.status = 'skipped' THEN 1 ELSE 0 END,
        CASE WHEN finished AND NEW.status = 'filtered' THEN 1 ELSE 0 END,
        CASE WHEN finished AND NEW.status = 'missed' THEN 1 ELSE 0 END,
        CASE WHEN finished AND NEW.status IN ('succeeded', 'failed') THEN 1 ELSE 0 END,
        CASE WHEN finished AND NEW.status IN ('succeeded', 'failed') THEN NEW.attempts ELSE 0 END,
        hist,
        CASE WHEN finished AND NEW.status = 'failed' THEN NEW.last_error END,
        CASE WHEN finished AND NEW.status = 'failed' THEN NEW.completed_at END)
    ON CONFLICT (webhook_id, hour) DO UPDATE SET
        created = s.created + EXCLUDED.created,
        succeeded = s.succeeded + EXCLUDED.succeeded,
        failed = s.failed + EXCLUDED.failed,
        skipped = s.skipped + EXCLUDED.skipped,
        filtered = s.filtered + EXCLUDED.filtered,
        missed = s.missed + EXCLUDED.missed,
        sent = s.sent + EXCLUDED.sent,
        attempts = s.attempts + EXCLUDED.attempts,
        durations = CASE WHEN bucket IS NULL THEN s.durations
                         ELSE s.durations[1:bucket - 1]
                              || array_fill(0, ARRAY[GREATEST(bucket - 1 - coalesce(array_length(s.durations, 1), 0), 0)])
                              || (coalesce(s.durations[bucket], 0) + 1)
                              || s.durations[bucket + 1:] END,
        last_error = CASE WHEN EXCLUDED.last_error_at >= s.last_error_at OR s.last_error_at IS NULL
                          THEN coalesce(EXCLUDED.last_error, s.last_error) ELSE s.last_error END,
        last_error_at = GREATEST(s.last_error_at, EXCLUDED.last_error_at);
    RETURN NULL;
END
$$;

--bun:split

CREATE TRIGGER webhook_delivery_stats_insert AFTER INSERT ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION webhook_delivery_stats_record();

--bun:split

-- Most updates (attempts claimed and recorded) are filtered out here, without a call.
CREATE TRIGGER webhook_delivery_stats_complete AFTER UPDATE OF completed_at ON webhook_deliveries
    FOR EACH ROW WHEN (OLD.completed_at IS NULL AND NEW.completed_at IS NOT NULL)
    EXECUTE FUNCTION webhook_delivery_stats_record();

--bun:split

-- When a webhook's current failure streak began: set as failure_count leaves 0, cleared
-- as it returns to 0 (a success, or re-enabling). Written only at those two moments.
CREATE TABLE webhook_failure_streaks (
    webhook_id uuid        PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    started_at timestamptz
);

--bun:split

CREATE FUNCTION webhook_failure_streak_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_failure_streaks AS s (webhook_id, started_at)
    VALUES (NEW.id, CASE WHEN NEW.failure_count > 0 THEN current_timestamp END)
    ON CONFLICT (webhook_id) DO UPDATE SET started_at = EXCLUDED.started_at;
    RETURN NULL;
END
$$;

--bun:split

CREATE TRIGGER webhook_failure_streak AFTER UPDATE OF failure_count ON webhooks
    FOR EACH ROW WHEN ((OLD.failure_count = 0) IS DISTINCT FROM (NEW.failure_count = 0))
    EXECUTE FUNCTION webhook_failure_streak_record();

--bun:split

-- The statistics of the deliveries logged before this migration.
INSERT INTO webhook_delivery_stats
    (webhook_id, hour, created, succeeded, failed, skipped, filtered, missed, sent, attempts, durations, last_error_at)
SELECT webhook_id, hour, sum(n)::integer,
       coalesce(sum(n) FILTER (WHERE status = 'succeeded'), 0)::integer,
       coalesce(sum(n) FILTER (WHERE status = 'failed'), 0)::integer,
       coalesce(sum(n) FILTER (WHERE status = 'skipped'), 0)::integer,
       coalesce(sum(n) FILTER (WHERE status = 'filtered'), 0)::integer,
       coalesce(sum(n) FILTER (WHERE status = 'missed'), 0)::integer,
       coalesce(sum(n) FILTER (WHERE status IN ('succeeded', 'failed')), 0)::integer,
       coalesce(sum(attempts) FILTER (WHERE status IN ('succeeded', 'failed')), 0),
       '{}', max(last_failed)
FROM (SELECT webhook_id, date_trunc('hour', created_at) AS hour,
             CASE WHEN completed_at IS NULL THEN 'pending' ELSE status END AS status,
             count(*) AS n, sum(attempts) AS attempts,
             max(completed_at) FILTER (WHERE status = 'failed') AS last_failed
      FROM webhook_deliveries WHERE kind <> 'test'
      GROUP BY 1, 2, 3) AS g
GROUP BY webhook_id, hour;

--bun:split

UPDATE webhook_delivery_stats AS s SET
    durations = h.durations,
    last_error = (SELECT d.last_error FROM webhook_deliveries AS d
                  WHERE d.webhook_id = s.webhook_id AND d.status = 'failed' AND d.kind <> 'test'
                    AND d.completed_at = s.last_error_at LIMIT 1)
FROM (SELECT webhook_id, hour, array_agg(coalesce(n, 0) ORDER BY b) AS durations
      FROM (SELECT k.webhook_id, k.hour, b, c.n
            FROM (SELECT DISTINCT webhook_id, date_trunc('hour', created_at) AS hour FROM webhook_deliveries
                  WHERE kind <> 'test' AND completed_at IS NOT NULL AND duration_ms IS NOT NULL) AS k
            CROSS JOIN generate_series(1, 27) AS b
            LEFT JOIN (SELECT webhook_id, date_trunc('hour', created_at) AS hour,
                              webhook_stats_bucket(duration_ms) AS bucket, count(*)::integer AS n
                       FROM webhook_deliveries
                       WHERE kind <> 'test' AND completed_at IS NOT NULL AND duration_ms IS NOT NULL
                       GROUP BY 1, 2, 3) AS c
                   ON c.webhook_id = k.webhook_id AND c.hour = k.hour AND c.bucket = b) AS x
      GROUP BY webhook_id, hour) AS h
WHERE h.webhook_id = s.webhook_id AND h.hour = s.hour;

--bun:split

INSERT INTO webhook_failure_streaks (webhook_id, started_at)
SELECT w.id, coalesce(
    (SELECT d.completed_at FROM webhook_deliveries AS d
     WHERE d.webhook_id = w.id AND d.status = 'failed' AND d.kind <> 'test'
     ORDER BY d.completed_at DESC OFFSET w.failure_count - 1 LIMIT 1),
    (SELECT min(d.completed_at) FROM webhook_deliveries AS d
     WHERE d.webhook_id = w.id AND d.status = 'failed' AND d.kind <> 'test'),
    w.updated_at)
FROM webhooks AS w WHERE w.failure_count > 0;
