-- Custos SQLite schema: signed checkpoints of the audit chain (migration 0005).
--
-- A checkpoint pins the chain at one entry: its sequence number and chain
-- hash, the time of signing and the signing key's id, signed with Ed25519
-- under a key derived from the master key. Neither that key nor any secret is
-- stored here: whoever can write this table can delete checkpoints, but
-- cannot make one that verifies. A global table, like `audit`. One key signs
-- one sequence number once. Times are microseconds since the Unix epoch (UTC).

CREATE TABLE audit_checkpoints (
    seq       INTEGER NOT NULL,  -- the entry signed (0: the empty chain)
    key_id    TEXT    NOT NULL,  -- RFC 7638 thumbprint of the signing public key
    head      BLOB    NOT NULL,  -- chain hash of entry `seq` (32 bytes)
    at        INTEGER NOT NULL,  -- when it was signed
    signature BLOB    NOT NULL,  -- Ed25519 signature (64 bytes) of the canonical checkpoint message
    PRIMARY KEY (seq, key_id)
) WITHOUT ROWID;
