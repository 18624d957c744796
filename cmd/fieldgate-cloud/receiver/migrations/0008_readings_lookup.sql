-- fieldgate: no transaction
-- The partitioned table's identity index cannot be unique (a unique index
-- must hold the partition key). The first partition gets a plain one,
-- built beside ingest, for the partitioned index to adopt.
CREATE INDEX CONCURRENTLY IF NOT EXISTS readings_lookup ON readings (gateway_id, incarnation, seq);
