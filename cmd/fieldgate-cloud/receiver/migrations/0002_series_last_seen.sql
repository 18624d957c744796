-- When each gateway last sent, and an index for one source's quantity over
-- a time range (what a dashboard asks).
ALTER TABLE gateways ADD COLUMN last_seen timestamptz;

CREATE INDEX readings_series ON readings (gateway_id, source, quantity, time);
