-- Blind index of lookup identifiers (issue 9): for each subject and lookup
-- category (email, phone, customer id as the policy marks them), the keyed
-- hash of the latest value, normalised (HMAC-SHA256 under a key derived from
-- the master key, computed by the vault). No value in clear: without the
-- master key a hash cannot be computed from a guess. A request made with an
-- email address finds its subject by hash, decrypting nothing. The rows go
-- with the subject at erasure.
CREATE TABLE lookups (
    subject  TEXT NOT NULL,
    category TEXT NOT NULL,
    hash     BLOB NOT NULL,
    PRIMARY KEY (subject, category)
) WITHOUT ROWID;

CREATE INDEX lookups_by_hash ON lookups (hash);
