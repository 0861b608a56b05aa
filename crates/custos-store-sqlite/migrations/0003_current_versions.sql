-- Custos SQLite schema, version 3: an index of current versions.
--
-- Items are clustered by (subject, category, version), so finding the current
-- versions of a subject used to read every version it ever had: a write or a
-- whole-subject read cost more the longer its history. This partial index
-- holds one small entry per item (its key and current version, nothing
-- sealed), so those lookups cost the number of items, not of versions.

CREATE INDEX items_current ON items (subject, category) WHERE superseded_at IS NULL;
