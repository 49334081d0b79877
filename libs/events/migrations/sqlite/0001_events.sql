-- The schema stores created before migrations existed; IF NOT EXISTS lets those files adopt version 1.
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,  -- seconds since the epoch (UTC)
    quantity INTEGER NOT NULL,
    attribution_token TEXT NOT NULL,
    variant TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user_ts ON events(user_id, ts);
