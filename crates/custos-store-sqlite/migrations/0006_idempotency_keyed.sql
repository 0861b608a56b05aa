-- Custos SQLite schema: idempotency records that hold nothing personal, expire,
-- and are erased with the subjects they name (issue 8, defect 2).
--
-- The old table held an unkeyed SHA-256 of each request (a card number was
-- recovered from it by brute force from its first six and last four digits)
-- and response bodies in clear. Its rows are dropped, not converted: they
-- cannot be re-keyed without the requests, and they were only ever good for
-- replaying a retry, which after an upgrade runs again as a new request. With
-- secure_delete on, the freed pages are zeroed.
--
-- Now `fingerprint` is an HMAC-SHA256 under a key derived from the master key,
-- `body` is sealed (AES-256-GCM under a key derived from the master key, bound
-- to the scoped idempotency key), and `idempotency_subjects` lists the
-- pseudonyms of the subjects each request named, so that erasing a subject
-- deletes its records in the erasure's transaction. Records older than the
-- configured time to live (24 hours by default) are treated as absent and
-- deleted whenever a record is written.

DROP TABLE idempotency;

CREATE TABLE idempotency (
    key         TEXT    NOT NULL PRIMARY KEY,  -- scoped by the caller, e.g. key-id:client-key
    fingerprint BLOB    NOT NULL,              -- HMAC-SHA256 of the request (method, path, body)
    status      INTEGER NOT NULL,              -- HTTP status of the first response
    body        BLOB    NOT NULL,              -- the first response's body, sealed
    created_at  INTEGER NOT NULL
);

CREATE INDEX idempotency_by_age ON idempotency (created_at);

CREATE TABLE idempotency_subjects (
    subject TEXT NOT NULL,                     -- pseudonym of a subject id the request named
    key     TEXT NOT NULL,                     -- idempotency.key
    PRIMARY KEY (subject, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_subjects_by_key ON idempotency_subjects (key);
