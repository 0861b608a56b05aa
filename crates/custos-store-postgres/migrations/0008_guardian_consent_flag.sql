-- Custos PostgreSQL schema: a consent given by a guardian keeps only that
-- fact, not the guardian's subject id.
--
-- `subjects.state` is stored in clear (the decision reads it on every
-- request), and a consent given by a linked guardian held the guardian's
-- subject id (`"by_guardian": "<id>"`), which is personal data and may be an
-- email address. The link itself lives sealed in the subject's metadata and
-- never changes, so the decision needs only the fact; the audit entry names
-- the guardian by pseudonym. Every stored id becomes `true`. (The old values
-- remain in dead tuples until vacuumed: see the README on PostgreSQL.)

UPDATE subjects
SET state = jsonb_set(
    state,
    '{consents}',
    (SELECT jsonb_object_agg(
                c.key,
                CASE WHEN jsonb_typeof(c.value -> 'by_guardian') = 'string'
                     THEN jsonb_set(c.value, '{by_guardian}', 'true'::jsonb)
                     ELSE c.value END)
     FROM jsonb_each(subjects.state -> 'consents') AS c))
WHERE jsonb_typeof(state -> 'consents') = 'object'
  AND EXISTS (SELECT 1 FROM jsonb_each(subjects.state -> 'consents') AS c
              WHERE jsonb_typeof(c.value -> 'by_guardian') = 'string');
