-- The new products' popularity and co-purchase signals (libs/fresh_signals.py): purchases of given products (what
-- was recorded since a follower's last read is a rowid range).
CREATE INDEX IF NOT EXISTS events_product ON events(product_id);
