-- Blind index of lookup identifiers (issue 9): for each subject and lookup
-- category, the keyed hash of the latest value, normalised (HMAC-SHA256 under
-- a key derived from the master key, computed by the vault); no value in
-- clear. Deleted with the subject at erasure. Distributed by subject like
-- every per-person table; a lookup by hash then asks every shard.
CREATE TABLE lookups (
    subject  TEXT  NOT NULL,
    category TEXT  NOT NULL,
    hash     BYTEA NOT NULL,
    PRIMARY KEY (subject, category)
);

CREATE INDEX lookups_by_hash ON lookups (hash);
