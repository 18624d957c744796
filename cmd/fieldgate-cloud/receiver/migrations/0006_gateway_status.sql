-- Each gateway's last reported status, for the fleet view: how far behind
-- it is and how it is doing. Nullable columns: no rewrite, a moment's lock.
ALTER TABLE gateways
    ADD COLUMN status_at        timestamptz,
    ADD COLUMN incarnation      text,
    ADD COLUMN backlog          bigint,
    ADD COLUMN oldest_unsent    timestamptz,
    ADD COLUMN clock            text,
    ADD COLUMN health           text,
    ADD COLUMN autonomy_seconds double precision,
    ADD COLUMN version          text;
