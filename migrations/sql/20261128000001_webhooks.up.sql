CREATE TABLE webhooks (
    id                          uuid        PRIMARY KEY,
    user_id                     text        NOT NULL,
    name                        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    url                         text        NOT NULL CHECK (char_length(url) <= 2048),
    -- SHA-256 hex of the secret: a fingerprint that proves issue and cannot sign.
    secret_hash                 text        NOT NULL,
    -- The secret sealed with AES-256-GCM under the master key named by secret_key_version.
    secret_sealed               bytea       NOT NULL,
    secret_key_version          integer     NOT NULL,
    -- The secret replaced by the last rotation, still signing until previous_secret_expires_at.
    previous_secret_sealed      bytea,
    previous_secret_key_version integer,
    previous_secret_expires_at  timestamptz,
    events                      text[]      NOT NULL CHECK (cardinality(events) > 0),
    is_active                   boolean     NOT NULL DEFAULT true,
    last_triggered_at           timestamptz,
    failure_count               integer     NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    disabled_reason             text,
    disabled_at                 timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at                  timestamptz NOT NULL DEFAULT current_timestamp
);

--bun:split

-- The portal's list: one user's webhooks, newest first.
CREATE INDEX webhooks_user_created_idx ON webhooks (user_id, created_at DESC, id DESC);

--bun:split

-- The subscriber lookup: one user's active webhooks, walked in id order so a large
-- fan-out pages with a keyset cursor. A user has at most WEBHOOK_MAX_PER_USER rows,
-- so the events @> ARRAY[event] test runs over that small, already-narrowed set.
CREATE INDEX webhooks_subscribers_idx ON webhooks (user_id, id) WHERE is_active;

--bun:split

CREATE TABLE webhook_deliveries (
    id               uuid        PRIMARY KEY,
    webhook_id       uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         text        NOT NULL,
    event            text        NOT NULL,
    kind             text        NOT NULL DEFAULT 'event' CHECK (kind IN ('event', 'test', 'redelivery')),
    redelivery_of    uuid,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    response_excerpt text,
    duration_ms      integer,
    -- The exact body sent, so a redelivery sends the same bytes after Temporal's retention.
    request_body     bytea,
    workflow_id      text        NOT NULL,
    run_id           text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT current_timestamp,
    updated_at       timestamptz NOT NULL DEFAULT current_timestamp,
    completed_at     timestamptz
);

--bun:split

CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);

--bun:split

CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries (created_at);
