-- readings becomes partitioned by received. The old table is attached as
-- the first partition, up to the bound its validated constraint proves
-- (no scan), or dropped if it is empty; the months after it are created
-- by the receiver ahead of time (receiver.EnsurePartitions), and a default
-- partition takes whatever falls outside them, so an insert never fails
-- for want of a partition. A reading's identity (gateway, incarnation,
-- seq) is kept unique by StoreBatch, which stores a gateway's batches one
-- at a time (an advisory lock) and inserts only the seqs not stored yet.
ALTER TABLE readings RENAME TO readings_legacy;
CREATE TABLE readings (
    gateway_id  text NOT NULL,
    seq         bigint NOT NULL,
    source      text NOT NULL,
    quantity    text NOT NULL,
    value       double precision NOT NULL,
    unit        text NOT NULL,
    time        timestamptz NOT NULL,
    clock       text NOT NULL CONSTRAINT readings_clock_check CHECK (clock IN ('synced', 'unsynced')),
    received    timestamptz NOT NULL DEFAULT now(),
    incarnation text NOT NULL DEFAULT ''
) PARTITION BY RANGE (received);
CREATE INDEX readings_by_identity ON readings (gateway_id, incarnation, seq);
CREATE INDEX readings_by_series ON readings (gateway_id, source, quantity, time);
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM readings_legacy) THEN
        EXECUTE format('ALTER TABLE readings ATTACH PARTITION readings_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
            (SELECT legacy_until FROM readings_partitioning));
        ALTER TABLE readings_legacy DROP CONSTRAINT readings_pkey;
    ELSE
        DROP TABLE readings_legacy;
        UPDATE readings_partitioning SET legacy_until = NULL;
    END IF;
END $$;
CREATE TABLE readings_default PARTITION OF readings DEFAULT;
