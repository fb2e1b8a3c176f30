-- Every attempt of a delivery, as the receiver answered it: the delivery's row keeps only
-- the last answer, and Temporal keeps only the last failure of a retried activity.
CREATE TABLE webhook_delivery_attempts (
    delivery_id      uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt          integer     NOT NULL CHECK (attempt > 0),
    succeeded        boolean     NOT NULL,
    status_code      integer,
    error            text,
    response_excerpt text,
    duration_ms      integer     NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (delivery_id, attempt)
);

--bun:split

-- The delivery log is listed by event too.
CREATE INDEX webhook_deliveries_webhook_event_idx ON webhook_deliveries (webhook_id, event, created_at DESC, id DESC);
