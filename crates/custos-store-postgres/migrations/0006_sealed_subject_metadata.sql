-- Custos PostgreSQL schema: sealed subject metadata and pseudonymous
-- tombstones (issue 8, defect 5).
--
-- Region, birth date and guardian are personal data. They now live in one
-- column, `metadata`, sealed by the vault under the subject's data key (with
-- the subject id as associated data), so erasure, which destroys the key,
-- destroys them too. The clear columns stay for rows written before this
-- version: the vault seals them into `metadata` and empties the clear columns
-- when it opens the store (`Vault::seal_legacy_subjects`), before serving.
--
-- Erasure no longer keeps the subject row: it deletes it and leaves a row in
-- `tombstones`, keyed by the pseudonym of the id (the audit log's HMAC), so a
-- tombstone of `alice@example.org` does not hold the email address. It holds
-- only what denying later requests needs: that the id was erased, and when.
-- Under Citus, `tombstones` is distributed by pseudonym (or a reference
-- table). Rows erased before this version lose their clear metadata here;
-- their ids are moved to tombstones by the same vault step. As with every
-- deleted row, the old versions stay until vacuum (and in WAL and backups).

ALTER TABLE subjects ADD COLUMN metadata bytea;

UPDATE subjects SET region = NULL, birth_date = NULL, guardian = NULL WHERE erased_at IS NOT NULL;

CREATE TABLE tombstones (
    pseudonym  text   COLLATE "C" NOT NULL PRIMARY KEY,  -- HMAC of the erased subject id (never the id)
    erased_at  bigint NOT NULL
);

-- The rows the vault still has to upgrade; empty once it has, and kept empty
-- (new rows never fill the clear columns, and erasure deletes the row), so
-- the check at every open costs one probe.
CREATE INDEX subjects_legacy ON subjects (id)
    WHERE erased_at IS NOT NULL OR region IS NOT NULL OR birth_date IS NOT NULL OR guardian IS NOT NULL;
