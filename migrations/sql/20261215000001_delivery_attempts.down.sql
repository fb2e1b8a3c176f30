DROP INDEX IF EXISTS webhook_deliveries_webhook_event_idx;

--bun:split

DROP TABLE IF EXISTS webhook_delivery_attempts;
