-- The primary keys move to the identities' indexes: a moment's lock, no
-- scan (the columns are NOT NULL and the indexes built).
ALTER TABLE batches DROP CONSTRAINT batches_pkey, ADD CONSTRAINT batches_pkey PRIMARY KEY USING INDEX batches_identity;
ALTER TABLE readings DROP CONSTRAINT readings_pkey, ADD CONSTRAINT readings_pkey PRIMARY KEY USING INDEX readings_identity;
