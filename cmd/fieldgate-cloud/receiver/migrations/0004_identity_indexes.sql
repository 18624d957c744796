-- fieldgate: no transaction
-- The identities' unique indexes, built beside ingest: CONCURRENTLY takes
-- no lock that stops inserts, however large the tables are.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS batches_identity ON batches (gateway_id, incarnation, first_seq, last_seq);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS readings_identity ON readings (gateway_id, incarnation, seq);
