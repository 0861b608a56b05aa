-- Legal holds. A hold names its subject by pseudonym (the audit log's keyed
-- hash), never by id, so it outlives the subject's erasure. `categories` is
-- a JSON array of the held data categories, `until_day` the review day (a
-- Julian day number), `sealed` the details the vault seals (the citation,
-- who placed it). Times are microseconds since the Unix epoch.
--
-- Under Citus both tables are distributed by the pseudonym (`subject`) like
-- `requests`, and co-located: a hold and what it keeps live on one shard.
-- (Citus wants a unique constraint to include the distribution column:
-- distributing them means keying them by (subject, id) and (subject, hold,
-- category, version); ids are random.)
CREATE TABLE legal_holds (
    id          text   NOT NULL PRIMARY KEY,   -- random, never derived from the person
    subject     text   NOT NULL,               -- the pseudonym: the distribution column
    kind        text   NOT NULL,               -- the policy's legal hold id
    categories  text   NOT NULL,               -- JSON array of category names
    placed_at   bigint NOT NULL,
    until_day   bigint,                        -- Julian day; NULL when not set
    released_at bigint,                        -- NULL while active
    sealed      bytea
);

CREATE INDEX legal_holds_by_subject ON legal_holds (subject, placed_at, id);

-- The item versions a hold keeps through its subject's erasure, sealed by
-- the vault under the holds' key (not the erased subject's).
CREATE TABLE held_items (
    hold           text    NOT NULL,
    subject        text    NOT NULL,           -- the hold's pseudonym: the distribution column
    category       text    NOT NULL,
    version        integer NOT NULL,
    source         text    NOT NULL,
    purpose        text    NOT NULL,
    collected_at   bigint  NOT NULL,
    notice_version text    NOT NULL,
    sealed         bytea   NOT NULL,
    PRIMARY KEY (hold, category, version)
);
