-- Files written before event times were bounded may hold times past 9999-12-31T23:59:59Z (a protobuf
-- Timestamp's maximum) or before the epoch; they could never be sent back, and broke that user's Recommend.
DELETE FROM events WHERE ts < 0 OR ts > 253402300799;
