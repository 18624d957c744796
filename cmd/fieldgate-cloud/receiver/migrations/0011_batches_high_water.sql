-- fieldgate: no transaction
-- A gateway's highest stored seq, one index descent: a batch above it
-- holds no stored reading, so storing it looks in no partition of readings.
CREATE INDEX CONCURRENTLY IF NOT EXISTS batches_high_water ON batches (gateway_id, incarnation, last_seq);
