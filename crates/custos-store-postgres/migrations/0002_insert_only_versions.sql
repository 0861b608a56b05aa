-- Custos PostgreSQL schema, version 2: insert-only item versions, byte-order keys.
--
-- 1. A new version of an item no longer rewrites the previous one. Version 1
--    stored `superseded_at` on the row it replaced, which cost an UPDATE (a
--    new heap tuple and index entries, then a dead tuple to vacuum) for every
--    write of an existing item. A version is superseded exactly when the next
--    version of the same item was collected (the old column always held the
--    next version's `collected_at`), so reads derive it from that row and the
--    column goes: nothing is lost. The current version of an item is its
--    highest version, found by a backward scan of the primary key; the
--    partial index on current versions goes with the column.
--
-- 2. Keys compare bytewise (COLLATE "C"). Subject ids and category ids are
--    identifiers, not text to sort for people: "C" makes every key comparison
--    a memcmp instead of a locale-aware one, and makes the indexes immune to
--    collation changes in the C library (which can silently corrupt a text
--    index after an operating-system upgrade).

DROP INDEX items_current;
ALTER TABLE items DROP COLUMN superseded_at;

ALTER TABLE subjects ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE items
    ALTER COLUMN subject TYPE text COLLATE "C",
    ALTER COLUMN category TYPE text COLLATE "C";
ALTER TABLE tokens
    ALTER COLUMN token TYPE text COLLATE "C",
    ALTER COLUMN subject TYPE text COLLATE "C",
    ALTER COLUMN category TYPE text COLLATE "C";
