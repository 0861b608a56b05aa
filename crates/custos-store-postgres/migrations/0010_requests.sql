-- Rights requests (issue 9). A request names its subject by pseudonym (the
-- audit log's keyed hash), never by id, so its record outlives the subject's
-- erasure for as long as the law keeps request records (CCPA §7101: 24
-- months after it closed, `retain_until`). `body` is the workflow the vault
-- encodes (states, dates, steps; no personal value), `sealed` the
-- requester's contact and free texts, sealed by the vault. Days are Julian
-- day numbers; times are microseconds since the Unix epoch.
--
-- Under Citus it is distributed by subject (the pseudonym) like every
-- per-person table: a subject's requests live on one shard, and a lookup by
-- id or a listing across subjects asks every shard. (Citus wants a unique
-- constraint to include the distribution column: distributing it means
-- keying it by (subject, id); ids are random.)
CREATE TABLE requests (
    id           text   NOT NULL PRIMARY KEY,   -- random, never derived from the person
    subject      text   NOT NULL,               -- the pseudonym: the distribution column
    kind         text   NOT NULL,
    jurisdiction text   NOT NULL,
    status       text   NOT NULL,
    received     bigint NOT NULL,               -- Julian day
    due          bigint NOT NULL,               -- Julian day
    created_at   bigint NOT NULL,
    retain_until bigint,                        -- NULL while open
    body         text   NOT NULL,
    sealed       bytea
);

CREATE INDEX requests_by_subject ON requests (subject, kind);
CREATE INDEX requests_by_due ON requests (due, id);
CREATE INDEX requests_by_received ON requests (received);
CREATE INDEX requests_by_retention ON requests (retain_until) WHERE retain_until IS NOT NULL;
