-- A reading's identity is (gateway, store incarnation, seq): a gateway
-- whose store starts over (a new card, a re-flash) sends its seqs from 1
-- again under a new incarnation, and its readings must not collide with
-- the old store's. Stores made before incarnations send none: ''.
-- A column with a constant default rewrites nothing (PostgreSQL 11+).
ALTER TABLE batches ADD COLUMN incarnation text NOT NULL DEFAULT '';
ALTER TABLE readings ADD COLUMN incarnation text NOT NULL DEFAULT '';
