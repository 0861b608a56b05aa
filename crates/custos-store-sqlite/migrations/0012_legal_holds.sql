-- Legal holds. A hold names its subject by pseudonym (the audit log's keyed
-- hash), never by id, so it outlives the subject's erasure. `categories` is
-- a JSON array of the held data categories, `until_day` the review day (a
-- Julian day number), `sealed` the details the vault seals (the citation,
-- who placed it).
CREATE TABLE legal_holds (
    id          TEXT    PRIMARY KEY,
    subject     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    categories  TEXT    NOT NULL,
    placed_at   INTEGER NOT NULL,
    until_day   INTEGER,
    released_at INTEGER,
    sealed      BLOB
) WITHOUT ROWID;

CREATE INDEX legal_holds_by_subject ON legal_holds (subject, placed_at, id);

-- The item versions a hold keeps through its subject's erasure, sealed by
-- the vault under the holds' key (not the erased subject's). `subject` is
-- the hold's pseudonym, kept for a distribution by person.
CREATE TABLE held_items (
    hold           TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    source         TEXT    NOT NULL,
    purpose        TEXT    NOT NULL,
    collected_at   INTEGER NOT NULL,
    notice_version TEXT    NOT NULL,
    sealed         BLOB    NOT NULL,
    PRIMARY KEY (hold, category, version)
) WITHOUT ROWID;
