-- A delivery whose webhook was paused, disabled or deleted while it waited to retry is
-- closed as skipped instead of staying pending.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;

--bun:split

ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped'));
