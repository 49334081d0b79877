CREATE TABLE events (
    event_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- Event time in whole microseconds since the epoch (UTC): exact, and every accepted value reads back.
    ts_us BIGINT NOT NULL,
    quantity INTEGER NOT NULL,
    attribution_token TEXT NOT NULL,
    variant TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX events_user_ts ON events (user_id, ts_us);
CREATE INDEX events_ts ON events (ts_us);
