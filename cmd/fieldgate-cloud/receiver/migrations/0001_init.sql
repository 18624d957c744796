-- Gateways, the batches they sent and the readings in them.
CREATE TABLE gateways (
    id         text PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    token_hash bytea NOT NULL UNIQUE,
    created    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE batches (
    gateway_id text NOT NULL,
    first_seq  bigint NOT NULL,
    last_seq   bigint NOT NULL,
    readings   integer NOT NULL,
    digest     bytea NOT NULL,
    received   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, first_seq, last_seq)
);

CREATE TABLE readings (
    gateway_id text NOT NULL,
    seq        bigint NOT NULL,
    source     text NOT NULL,
    quantity   text NOT NULL,
    value      double precision NOT NULL,
    unit       text NOT NULL,
    time       timestamptz NOT NULL,
    clock      text NOT NULL CHECK (clock IN ('synced', 'unsynced')),
    received   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, seq)
);
