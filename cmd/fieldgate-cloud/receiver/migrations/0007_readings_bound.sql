-- Readings move to monthly partitions by the time the receiver stored them
-- (received): a month past retention is dropped whole, and inserts touch
-- only the current month's indexes however large the table grows.
-- PostgreSQL cannot turn a table into a partitioned one, so this table
-- becomes the first partition, holding what is received before a bound
-- drawn here: the start of the month after next, time enough for the next
-- steps. A CHECK constraint NOT VALID holds new rows to it at once (a
-- moment's lock); the next steps build the index a partition needs and
-- validate the constraint beside ingest, so that attaching the table
-- scans nothing.
-- legacy_until: the bound, or NULL once the old table was found empty.
CREATE TABLE readings_partitioning (legacy_until timestamptz);
INSERT INTO readings_partitioning
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months') AT TIME ZONE 'UTC';
DO $$ BEGIN
    EXECUTE format('ALTER TABLE readings ADD CONSTRAINT readings_received_bound CHECK (received < %L) NOT VALID',
        (SELECT legacy_until FROM readings_partitioning));
END $$;
