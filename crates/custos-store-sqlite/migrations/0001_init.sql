-- Custos SQLite schema, version 1.
--
-- Every table with per-subject rows leads its key with the subject id, so
-- that the same schema can later be distributed by subject. Times are
-- microseconds since the Unix epoch (UTC). No column holds a personal value
-- in clear: items hold sealed bytes, subjects hold the wrapped data key, and
-- audit bodies hold pseudonyms only.

CREATE TABLE subjects (
    id           TEXT    NOT NULL PRIMARY KEY,
    jurisdiction TEXT    NOT NULL,
    region       TEXT,
    birth_date   TEXT,             -- YYYY-MM-DD
    guardian     TEXT,             -- another subject's id
    created_at   INTEGER NOT NULL,
    erased_at    INTEGER,          -- set once crypto-shredded; the row stays as a tombstone
    wrapped_key  BLOB,             -- NULL once erased
    state        TEXT    NOT NULL  -- JSON of SubjectState
) WITHOUT ROWID;

CREATE TABLE items (
    subject        TEXT    NOT NULL REFERENCES subjects (id),
    category       TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    source         TEXT    NOT NULL,
    purpose        TEXT    NOT NULL,
    collected_at   INTEGER NOT NULL,
    notice_version TEXT    NOT NULL,
    superseded_at  INTEGER,        -- NULL for the current version
    sealed         BLOB    NOT NULL,
    token          TEXT,
    PRIMARY KEY (subject, category, version)
) WITHOUT ROWID;

CREATE UNIQUE INDEX items_by_token ON items (token) WHERE token IS NOT NULL;

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    prev_hash BLOB NOT NULL,
    body      TEXT NOT NULL,
    hash      BLOB NOT NULL
);

-- The recorded head of the audit chain, updated in the same transaction as
-- every append, so that removing the last entries is detected.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB    NOT NULL
);

INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
