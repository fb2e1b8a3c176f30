-- Endpoint controls a receiver sets on its webhook: custom headers, a delivery rate,
-- a cap on attempts in flight, and a payload filter. NULL (or no headers) is no control.
--
-- headers lists the custom headers' names with a fingerprint of each value (what the
-- API shows); headers_sealed holds the names and values sealed with AES-256-GCM under
-- the master key named by headers_key_version, like the signing secret.
ALTER TABLE webhooks
    ADD COLUMN headers               jsonb            NOT NULL DEFAULT '[]',
    ADD COLUMN headers_sealed        bytea,
    ADD COLUMN headers_key_version   integer,
    ADD COLUMN rate_limit_per_second double precision CHECK (rate_limit_per_second > 0),
    ADD COLUMN rate_limit_burst      integer          CHECK (rate_limit_burst >= 1),
    ADD COLUMN max_in_flight         integer          CHECK (max_in_flight >= 1),
    ADD COLUMN filter                text;

--bun:split

-- A delivery whose event the webhook's filter did not match is logged as filtered.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;

--bun:split

ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped', 'filtered'));

--bun:split

-- The throttle tables are UNLOGGED: every delivery to a limited webhook writes them, and
-- without WAL that costs half as much. A crash or a failover empties them, which forgets
-- only who waits and who is in flight at that moment: a limit restarts from a quiet
-- webhook and a lease ends early, never a delivery lost or counted.
--
-- One row per rate-limited webhook, shared by every worker replica: the GCRA's
-- theoretical arrival time (tat) and the end of the queue of attempts told to come
-- back later (queue_at). last_slot and last_reserved hold the answer of the statement
-- that last changed the row, which it returns.
CREATE UNLOGGED TABLE throttle_rates (
    webhook_id    uuid        PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    tat           timestamptz NOT NULL,
    queue_at      timestamptz NOT NULL,
    last_slot     timestamptz NOT NULL,
    last_reserved boolean     NOT NULL
);

--bun:split

-- Attempts in flight to a webhook with max_in_flight: slot n of a webhook is held by one
-- attempt until it ends or expires_at passes, so a worker killed mid-attempt frees its
-- slot by itself.
CREATE UNLOGGED TABLE throttle_leases (
    webhook_id uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    slot       integer     NOT NULL CHECK (slot >= 1),
    holder     uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (webhook_id, slot)
);
