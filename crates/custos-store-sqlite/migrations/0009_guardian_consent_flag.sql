-- Custos SQLite schema, version 9: a consent given by a guardian keeps only
-- that fact, not the guardian's subject id.
--
-- `subjects.state` is stored in clear (the decision reads it on every
-- request), and a consent given by a linked guardian held the guardian's
-- subject id (`"by_guardian": "<id>"`), which is personal data and may be an
-- email address. The link itself lives sealed in the subject's metadata and
-- never changes, so the decision needs only the fact; the audit entry names
-- the guardian by pseudonym. Every stored id becomes `true`.

UPDATE subjects
SET state = json_set(
    state,
    '$.consents',
    json((SELECT json_group_object(
                key,
                CASE WHEN json_type(value, '$.by_guardian') = 'text'
                     THEN json_set(value, '$.by_guardian', json('true'))
                     ELSE json(value) END)
     FROM json_each(subjects.state, '$.consents'))))
WHERE json_type(state, '$.consents') = 'object'
  AND EXISTS (SELECT 1 FROM json_each(subjects.state, '$.consents')
              WHERE json_type(value, '$.by_guardian') = 'text');
