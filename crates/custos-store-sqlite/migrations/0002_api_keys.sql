-- Custos SQLite schema, version 2: API keys and idempotent responses.
--
-- Both tables are reference (global) tables, not per subject: their rows
-- belong to the deployment, not to a data subject, so their keys do not lead
-- with a subject id and they are not split when subjects are distributed.
-- Neither holds a personal value or a secret: a key is stored only as the
-- SHA-256 of its secret, and a recorded response is the body of a write
-- response, which carries no personal value. Times are microseconds since the
-- Unix epoch (UTC).

CREATE TABLE api_keys (
    id          TEXT    NOT NULL PRIMARY KEY,  -- public identifier, shown in listings
    secret_hash BLOB    NOT NULL UNIQUE,       -- SHA-256 of the secret (32 bytes); the secret is never stored
    role        TEXT    NOT NULL,              -- admin, service or auditor
    actor       TEXT,                          -- for a service key: the recipient it acts as
    purposes    TEXT    NOT NULL,              -- JSON array of purpose ids (empty unless a service key)
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER                        -- NULL while the key is valid
) WITHOUT ROWID;

-- The first response to a write sent with an Idempotency-Key, replayed on
-- retries. A rowid table: bodies can be larger than suits a WITHOUT ROWID row.
CREATE TABLE idempotency (
    key         TEXT    NOT NULL PRIMARY KEY,  -- scoped by the caller, e.g. key-id:client-key
    fingerprint BLOB    NOT NULL,              -- SHA-256 of the request (method, path, body)
    status      INTEGER NOT NULL,              -- HTTP status of the first response
    body        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);
