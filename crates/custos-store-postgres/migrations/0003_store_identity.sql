-- Custos PostgreSQL schema, migration 0004: what the store remembers about its creation.
--
-- One row: the id and key-check value of the master key the store is keyed
-- by (an HMAC under a key derived from the master key, never the key), the
-- derivation root sealed under it after a rotation, and the notice (id and
-- version) of the policy it was created with. A store that predates this
-- migration gets its row on first open, from the key that opens its data.

CREATE TABLE store_identity (
    id             integer PRIMARY KEY CHECK (id = 1),
    key_id         bytea  NOT NULL,
    key_check      bytea  NOT NULL,
    sealed_root    bytea,
    notice_id      text   NOT NULL,
    notice_version text   NOT NULL,
    created_at     bigint NOT NULL
);

-- On Citus, a reference table (one row, read at every start).
