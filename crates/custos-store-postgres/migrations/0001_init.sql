-- Custos PostgreSQL schema, version 1.
--
-- Designed to be distributed by subject (Citus) when one machine is outgrown:
-- every per-subject table (subjects, items) leads its key with the subject id
-- and no foreign key or unique constraint spans subjects, so each table can be
-- distributed on that column (subjects.id, items.subject) and co-located.
-- `tokens`, `audit`, `audit_head`, `api_keys` and `idempotency` are global:
-- their rows are not looked up by subject.
--
-- Times are microseconds since the Unix epoch (UTC), as bigint. No column holds
-- a personal value in clear: items hold sealed bytes, subjects hold the wrapped
-- data key, and audit bodies hold pseudonyms only.

CREATE TABLE subjects (
    id           text   NOT NULL PRIMARY KEY,   -- the subject id: the distribution column
    jurisdiction text   NOT NULL,
    region       text,
    birth_date   text,                          -- YYYY-MM-DD
    guardian     text,                          -- another subject's id (no foreign key: may live on another shard)
    created_at   bigint NOT NULL,
    erased_at    bigint,                        -- set once crypto-shredded; the row stays as a tombstone
    wrapped_key  bytea,                         -- NULL once erased
    state        jsonb  NOT NULL                -- SubjectState
);

-- No foreign key to subjects: the store checks (and locks) the subject row in
-- the transaction that writes its items.
CREATE TABLE items (
    subject        text    NOT NULL,            -- the distribution column
    category       text    NOT NULL,
    version        integer NOT NULL,
    source         text    NOT NULL,
    purpose        text    NOT NULL,
    collected_at   bigint  NOT NULL,
    notice_version text    NOT NULL,
    superseded_at  bigint,                      -- NULL for the current version
    sealed         bytea   NOT NULL,
    token          text,
    PRIMARY KEY (subject, category, version)
);

-- The current version of each item, which is what reads ask for.
CREATE INDEX items_current ON items (subject, category) WHERE superseded_at IS NULL;

-- Tokens: a separate global table keyed by the token alone, NOT a
-- (subject, token)-scoped index on items. A token must be unique across all
-- subjects and is looked up without knowing its subject, which a per-subject
-- index cannot serve without asking every shard. Under Citus this is a
-- reference table (joinable with the distributed items) or a table
-- distributed by token. Rows are written in the transaction that writes their
-- item and deleted in the one that erases it.
CREATE TABLE tokens (
    token    text    NOT NULL PRIMARY KEY,
    subject  text    NOT NULL,
    category text    NOT NULL,
    version  integer NOT NULL
);

CREATE TABLE audit (
    seq       bigint NOT NULL PRIMARY KEY,
    prev_hash bytea  NOT NULL,
    body      text   NOT NULL,                  -- canonical JSON, kept byte for byte (not jsonb)
    hash      bytea  NOT NULL
);

-- The recorded head of the audit chain, updated in the same transaction as
-- every append, so that removing the last entries is detected. Every append
-- locks this row (SELECT ... FOR UPDATE), which serialises appends from any
-- number of processes sharing the database.
CREATE TABLE audit_head (
    id   integer NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  bigint  NOT NULL,
    hash bytea   NOT NULL
);

INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- API keys: global. A key is stored only as the SHA-256 of its secret.
CREATE TABLE api_keys (
    id          text   NOT NULL PRIMARY KEY,    -- public identifier, shown in listings
    secret_hash bytea  NOT NULL UNIQUE,         -- SHA-256 of the secret (32 bytes)
    role        text   NOT NULL,                -- admin, service or auditor
    actor       text,                           -- for a service key: the recipient it acts as
    purposes    text[] NOT NULL,                -- purpose ids (empty unless a service key)
    created_at  bigint NOT NULL,
    revoked_at  bigint                          -- NULL while the key is valid
);

-- The first response to a write sent with an Idempotency-Key: global.
CREATE TABLE idempotency (
    key         text    NOT NULL PRIMARY KEY,   -- scoped by the caller, e.g. key-id:client-key
    fingerprint bytea   NOT NULL,               -- SHA-256 of the request (method, path, body)
    status      integer NOT NULL,               -- HTTP status of the first response
    body        bytea   NOT NULL,
    created_at  bigint  NOT NULL
);
