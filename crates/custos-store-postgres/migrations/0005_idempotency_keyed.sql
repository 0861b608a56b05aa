-- Custos PostgreSQL schema: idempotency records that hold nothing personal,
-- expire, and are erased with the subjects they name (issue 8, defect 2).
--
-- The old table held an unkeyed SHA-256 of each request (a card number was
-- recovered from it by brute force from its first six and last four digits)
-- and response bodies in clear. Its rows are dropped, not converted: they
-- cannot be re-keyed without the requests, and they were only ever good for
-- replaying a retry, which after an upgrade runs again as a new request.
-- (Dropped rows stay in old WAL segments and backups until those are
-- recycled; the table's files are unlinked at once.)
--
-- Now `fingerprint` is an HMAC-SHA256 under a key derived from the master key,
-- `body` is sealed (AES-256-GCM under a key derived from the master key, bound
-- to the scoped idempotency key), and `idempotency_subjects` lists the
-- pseudonyms of the subjects each request named, so that erasing a subject
-- deletes its records in the erasure's transaction. Records older than the
-- configured time to live (24 hours by default) are treated as absent and
-- deleted whenever a record is written. Both tables are global (reference
-- tables under Citus).

DROP TABLE idempotency;

CREATE TABLE idempotency (
    key         text    COLLATE "C" NOT NULL PRIMARY KEY,  -- scoped by the caller, e.g. key-id:client-key
    fingerprint bytea   NOT NULL,               -- HMAC-SHA256 of the request (method, path, body)
    status      integer NOT NULL,               -- HTTP status of the first response
    body        bytea   NOT NULL,               -- the first response's body, sealed
    created_at  bigint  NOT NULL
);

CREATE INDEX idempotency_by_age ON idempotency (created_at);

CREATE TABLE idempotency_subjects (
    subject text COLLATE "C" NOT NULL,          -- pseudonym of a subject id the request named
    key     text COLLATE "C" NOT NULL,          -- idempotency.key
    PRIMARY KEY (subject, key)
);

CREATE INDEX idempotency_subjects_by_key ON idempotency_subjects (key);
