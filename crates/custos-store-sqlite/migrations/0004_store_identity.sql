-- Custos SQLite schema, version 4: what the store remembers about its creation.
--
-- One row: the id and key-check value of the master key the store is keyed
-- by (an HMAC under a key derived from the master key, never the key), the
-- derivation root sealed under it after a rotation, and the notice (id and
-- version) of the policy it was created with. A store that predates this
-- migration gets its row on first open, from the key that opens its data.

CREATE TABLE store_identity (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    key_id         BLOB    NOT NULL,
    key_check      BLOB    NOT NULL,
    sealed_root    BLOB,
    notice_id      TEXT    NOT NULL,
    notice_version TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
