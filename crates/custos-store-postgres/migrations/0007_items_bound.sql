-- Custos PostgreSQL schema: item values bound to their versions (issue 8,
-- defect 10).
--
-- Values were sealed with associated data naming the subject and category
-- only, so an old version's ciphertext copied into the current row opened as
-- the current value. New values are sealed for their version too (a format
-- byte tells them apart); the vault re-seals the legacy ones when it opens
-- the store, and then records here that every value is bound. From then on
-- a legacy value is refused. A binary from before this version refuses this
-- database (it is newer), so nothing writes legacy values into it again.
-- A reference (or local) table under Citus, like `store_identity`.

CREATE TABLE items_bound (
    id       integer PRIMARY KEY CHECK (id = 1),
    bound_at bigint  NOT NULL
);
