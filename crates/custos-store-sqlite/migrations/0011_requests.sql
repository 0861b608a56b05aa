-- Rights requests (issue 9). A request names its subject by pseudonym (the
-- audit log's keyed hash), never by id, so its record outlives the subject's
-- erasure for as long as the law keeps request records (CCPA §7101: 24
-- months after it closed, `retain_until`). `body` is the workflow the vault
-- encodes (states, dates, steps; no personal value), `sealed` the
-- requester's contact and free texts, sealed by the vault. Days are Julian
-- day numbers.
CREATE TABLE requests (
    id           TEXT PRIMARY KEY,
    subject      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    status       TEXT NOT NULL,
    received     INTEGER NOT NULL,
    due          INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    retain_until INTEGER,
    body         TEXT NOT NULL,
    sealed       BLOB
) WITHOUT ROWID;

CREATE INDEX requests_by_subject ON requests (subject, kind);
CREATE INDEX requests_by_due ON requests (due, id);
CREATE INDEX requests_by_received ON requests (received);
CREATE INDEX requests_by_retention ON requests (retain_until) WHERE retain_until IS NOT NULL;
