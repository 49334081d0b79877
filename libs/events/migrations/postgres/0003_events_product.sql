-- The new products' popularity and co-purchase signals (libs/fresh_signals.py): purchases of given products, and
-- what was recorded since a follower's last read.
CREATE INDEX events_product ON events (product_id);
CREATE INDEX events_recorded ON events (recorded_at);
