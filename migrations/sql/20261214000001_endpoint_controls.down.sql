DROP TABLE IF EXISTS throttle_leases;

--bun:split

DROP TABLE IF EXISTS throttle_rates;

--bun:split

UPDATE webhook_deliveries SET status = 'skipped' WHERE status = 'filtered';

--bun:split

ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;

--bun:split

ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped'));

--bun:split

ALTER TABLE webhooks
    DROP COLUMN IF EXISTS filter,
    DROP COLUMN IF EXISTS max_in_flight,
    DROP COLUMN IF EXISTS rate_limit_burst,
    DROP COLUMN IF EXISTS rate_limit_per_second,
    DROP COLUMN IF EXISTS headers_key_version,
    DROP COLUMN IF EXISTS headers_sealed,
    DROP COLUMN IF EXISTS headers;
