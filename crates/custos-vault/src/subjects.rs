//! Creating subjects, sealing and opening their metadata, finding tombstones,
//! and the decided, audited read of a subject's metadata.
//!
//! Region, birth date and guardian are personal data: they are sealed
//! together under the subject's data key ([`metadata_context`] binds them to
//! the id) into one stored column, and opened only inside the vault, when a
//! decision needs them (the guardian rule) or when
//! [`Vault::subject_metadata`] releases them for a purpose. Erasure destroys
//! the key and the row; what stays is a tombstone under the pseudonym of the
//! id, so lookups of an erased id find it by pseudonym.

use custos_core::audit::AuditAction;
use custos_core::decision::{DenyReason, Operation};
use custos_core::subject::{Subject, SubjectId, SubjectState};
use custos_core::time::{Timestamp, format_date, parse_date};
use custos_crypto::{CryptoError, DataKey, metadata_context};
use custos_store::{HeldKeys, Store, StoreError, StoredItem, SubjectRecord};
use time::Date;

use crate::identity::hex;
use crate::*;

/// A subject to create.
#[derive(Clone)]
pub struct NewSubject<'a> {
    /// Identifier.
    pub id: &'a str,
    /// Jurisdiction id from the policy.
    pub jurisdiction: &'a str,
    /// Home region.
    pub region: Option<&'a str>,
    /// Birth date.
    pub birth_date: Option<Date>,
    /// Linked guardian's subject id.
    pub guardian: Option<&'a str>,
}

/// The metadata is shown only as present or absent.
impl std::fmt::Debug for NewSubject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubject")
            .field("id", &self.id)
            .field("jurisdiction", &self.jurisdiction)
            .field("region", &self.region.map(|_| "<redacted>"))
            .field("birth_date", &self.birth_date.map(|_| "<redacted>"))
            .field("guardian", &self.guardian.map(|_| "<redacted>"))
            .finish()
    }
}

/// Format version of sealed metadata.
const METADATA_V1: &str = "1";

/// The plaintext of a subject's metadata: a version line, then region, birth
/// date and guardian, one per line (empty when absent). None of them can hold
/// a newline: regions are letters, digits, `-` and `_`, ids are printable ASCII.
fn encode_metadata(subject: &Subject) -> String {
    let region = subject.region.as_deref().unwrap_or("");
    let birth = subject.birth_date.map(format_date).unwrap_or_default();
    let guardian = subject.guardian.as_ref().map_or("", SubjectId::as_str);
    format!("{METADATA_V1}\n{region}\n{birth}\n{guardian}")
}

fn decode_metadata(text: &[u8], subject: &mut Subject) -> Result<(), VaultError> {
    let malformed = || VaultError::Crypto(CryptoError::Malformed);
    let text = std::str::from_utf8(text).map_err(|_| malformed())?;
    let mut lines = text.split('\n');
    let (Some(METADATA_V1), Some(region), Some(birth), Some(guardian), None) =
        (lines.next(), lines.next(), lines.next(), lines.next(), lines.next())
    else {
        return Err(malformed());
    };
    subject.region = (!region.is_empty()).then(|| region.to_string());
    subject.birth_date = if birth.is_empty() { None } else { Some(parse_date(birth).map_err(|_| malformed())?) };
    subject.guardian =
        if guardian.is_empty() { None } else { Some(SubjectId::parse(guardian).map_err(|_| malformed())?) };
    Ok(())
}

impl<S: Store> Vault<S> {
    /// Creates a subject with a fresh data key; region, birth date and
    /// guardian are sealed under it. Warnings about the id (one that looks
    /// like an email address or a phone number) are in
    /// [`SubjectId::warnings`]; the caller shows them. An erased id cannot be
    /// created again ([`VaultError::SubjectExists`]).
    pub fn add_subject(&self, new: &NewSubject<'_>, by: &By) -> Result<Subject, VaultError> {
        let id = SubjectId::parse(new.id).map_err(InputError::SubjectId)?;
        if self.policy.jurisdiction(new.jurisdiction).is_none() {
            return Err(invalid_ref(
                PolicyIdKind::Jurisdiction,
                new.jurisdiction,
                self.policy.jurisdiction_ids().map(|j| &self.policy.jurisdiction_doc(j).id.value),
            ));
        }
        if let Some(region) = new.region
            && (region.is_empty()
                || region.len() > 64
                || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(InputError::Region.into());
        }
        let now = self.clock.now();
        if new.birth_date.is_some_and(|b| b > now.date()) {
            return Err(InputError::BirthDateInFuture.into());
        }
        let guardian = match new.guardian {
            None => None,
            Some(g) => {
                let gid = SubjectId::parse(g).map_err(InputError::GuardianId)?;
                if gid == id {
                    return Err(InputError::OwnGuardian.into());
                }
                match self.store.subject(&gid)? {
                    Some(r) if r.subject.erased_at.is_none() => Some(gid),
                    Some(_) => return Err(InputError::GuardianErased.into()),
                    None if self.store.tombstone(&self.keys.pseudonym(gid.as_str()))?.is_some() => {
                        return Err(InputError::GuardianErased.into());
                    }
                    None => {
                        return Err(InputError::GuardianUnknown.into());
                    }
                }
            }
        };
        let subject = Subject {
            id: id.clone(),
            jurisdiction: new.jurisdiction.to_string(),
            region: new.region.map(str::to_string),
            birth_date: new.birth_date,
            guardian,
            created_at: now,
            erased_at: None,
            state: SubjectState::default(),
        };
        let (key, wrapped) = self.keys.new_data_key(id.as_str())?;
        let sealed = if subject.has_metadata() {
            Some(key.seal(&metadata_context(id.as_str()), encode_metadata(&subject).as_bytes())?)
        } else {
            None
        };
        // The store is handed the subject without the clear metadata.
        let stored = Subject::new(id.clone(), subject.jurisdiction.clone(), now);
        let event = self.event(now, AuditAction::SubjectCreated, CONTROLLER, id.as_str(), by);
        let pseudonym = self.keys.pseudonym(id.as_str());
        // The store checks, inside its write transaction, that it is still
        // keyed by a master key this process holds (another process may have
        // rotated it): a data key wrapped under a key rotated away would be
        // lost with it.
        let (key_id, check) = (self.keys.key_id(), self.keys.key_check());
        let previous = self.keys.previous_key();
        let held = HeldKeys { current: (&key_id, &check), previous: previous.as_ref().map(|(i, c)| (&i[..], &c[..])) };
        self.store.create_subject(&stored, &wrapped, sealed.as_deref(), &pseudonym, &[event], &held).map_err(|e| {
            match e {
                // An erased id stays erased: re-creating it is refused like a taken id.
                StoreError::SubjectErased => VaultError::SubjectExists,
                StoreError::KeyNotHeld { recorded } => {
                    IdentityError::RotatedAway { recorded: hex(&recorded), held: hex(&key_id) }.into()
                }
                other => other.into(),
            }
        })?;
        Ok(subject)
    }

    /// A subject's jurisdiction, creation or erasure time, consents,
    /// objections and restriction, without the sealed metadata (region,
    /// birth date, guardian are empty): nothing is opened, so nothing is
    /// decided or audited. [`Vault::subject_metadata`] releases the metadata.
    pub fn subject(&self, id: &str) -> Result<Subject, VaultError> {
        let sid = SubjectId::parse(id).map_err(InputError::SubjectId)?;
        match self.store.subject(&sid)? {
            Some(r) => Ok(r.subject),
            None => Ok(self.tombstone_record(&sid)?.ok_or(VaultError::SubjectNotFound)?.subject),
        }
    }

    /// A subject with their metadata, for a purpose: decided, audited, then opened.
    ///
    /// The policy has no category for region, birth date or guardian (they are
    /// what the decisions about the subject's data are made from), so the
    /// metadata goes with the data it governs: it is released to an actor for
    /// a purpose when the decision engine allows that actor to read at least
    /// one category of the subject's data for that purpose (erasure,
    /// restriction, legal basis, guardian consent, objection and consent all
    /// apply). Otherwise the first category's denial is audited and returned;
    /// a purpose that may use no category at all is denied as
    /// `purpose_not_declared_for_category`. A release is audited as
    /// `metadata_read` with the purpose and basis.
    pub fn subject_metadata(&self, read: &Read<'_>) -> Result<Subject, VaultError> {
        let (purpose, _) = self.resolve(read.purpose, None)?;
        let access = read.access(Operation::Read);
        self.admit_caller(access, purpose, Some(read.subject), None, read.by)?;
        let record = self.record(read.subject)?;
        let now = self.clock.now();
        let mut first_denial = None;
        let rules = self.policy.purpose_rules(purpose);
        for category in self.policy.category_ids().filter(|c| rules.allows(*c)) {
            let mut denials = Vec::new();
            match self.check(&record.subject, purpose, category, access, now, &mut denials, read.by) {
                Ok(basis) => {
                    let mut ev = self.event(now, AuditAction::MetadataRead, read.actor, read.subject, read.by);
                    ev.purpose = Some(read.purpose.to_string());
                    ev.basis = Some(basis.as_str().to_string());
                    self.store.append_audit(&[ev])?;
                    return Ok(record.subject);
                }
                Err(d) => {
                    if first_denial.is_none() {
                        first_denial = Some((d, denials));
                    }
                }
            }
        }
        let (denied, events) = match first_denial {
            Some((d, mut events)) => {
                // The denial is about the metadata, not about that one category.
                for e in &mut events {
                    e.categories.clear();
                }
                (d, events)
            }
            None => {
                let mut e = self.event(now, AuditAction::AccessDenied, read.actor, read.subject, read.by);
                e.purpose = Some(read.purpose.to_string());
                e.reason = Some(DenyReason::PurposeNotDeclaredForCategory.code().to_string());
                let sentence =
                    format!("purpose `{}` may use no category, so no metadata is released for it", read.purpose);
                (Denied { reason: DenyReason::PurposeNotDeclaredForCategory, sentence }, vec![e])
            }
        };
        self.store.append_audit(&events)?;
        Err(VaultError::Denied(denied))
    }

    /// A subject as the decisions see them: metadata opened; an erased id
    /// (found by its tombstone) comes back as an erased subject with nothing else.
    pub(crate) fn record(&self, id: &str) -> Result<SubjectRecord, VaultError> {
        let sid = SubjectId::parse(id).map_err(InputError::SubjectId)?;
        match self.store.subject(&sid)? {
            Some(mut r) => {
                self.open_metadata(&mut r, None)?;
                Ok(r)
            }
            None => self.tombstone_record(&sid)?.ok_or(VaultError::SubjectNotFound),
        }
    }

    pub(crate) fn record_with_items(
        &self,
        id: &str,
        categories: &[&str],
    ) -> Result<(SubjectRecord, Vec<StoredItem>, Option<DataKey>), VaultError> {
        let sid = SubjectId::parse(id).map_err(InputError::SubjectId)?;
        match self.store.subject_with_items(&sid, categories)? {
            Some((mut r, items)) => {
                let key = self.open_metadata_keeping_key(&mut r)?;
                Ok((r, items, key))
            }
            None => Ok((self.tombstone_record(&sid)?.ok_or(VaultError::SubjectNotFound)?, Vec::new(), None)),
        }
    }

    /// Opens a record's sealed metadata, if it has any, and hands back the data
    /// key unwrapped for it, so a read that goes on to open values does not
    /// unwrap it a second time.
    pub(crate) fn open_metadata_keeping_key(&self, record: &mut SubjectRecord) -> Result<Option<DataKey>, VaultError> {
        let (Some(_), Some(wrapped)) = (record.sealed_metadata.as_deref(), record.wrapped_key.as_deref()) else {
            return Ok(None);
        };
        let key = self.keys.unwrap_data_key(record.subject.id.as_str(), wrapped)?;
        self.open_metadata(record, Some(&key))?;
        Ok(Some(key))
    }

    /// Several subjects as the decisions see them (see [`Vault::record`]);
    /// ids neither stored nor erased are left out.
    pub(crate) fn records(&self, ids: &[SubjectId]) -> Result<Vec<(SubjectRecord, Option<DataKey>)>, VaultError> {
        let mut found = Vec::with_capacity(ids.len());
        for mut r in self.store.subjects(ids)? {
            let key = self.open_metadata_keeping_key(&mut r)?;
            found.push((r, key));
        }
        if found.len() < ids.len() {
            for sid in ids {
                if !found.iter().any(|(r, _)| &r.subject.id == sid)
                    && let Some(r) = self.tombstone_record(sid)?
                {
                    found.push((r, None));
                }
            }
        }
        Ok(found)
    }

    /// Opens a record's sealed metadata into its subject, with `key` if the
    /// caller has unwrapped it already (else it is unwrapped here).
    pub(crate) fn open_metadata(&self, record: &mut SubjectRecord, key: Option<&DataKey>) -> Result<(), VaultError> {
        let (Some(sealed), Some(wrapped)) = (record.sealed_metadata.as_deref(), record.wrapped_key.as_deref()) else {
            return Ok(());
        };
        let id = record.subject.id.as_str();
        let unwrapped;
        let key = match key {
            Some(k) => k,
            None => {
                unwrapped = self.keys.unwrap_data_key(id, wrapped)?;
                &unwrapped
            }
        };
        let opened = key.open(&metadata_context(id), sealed)?;
        decode_metadata(&opened, &mut record.subject)
    }

    /// The erased subject behind a tombstone, if the id has one: erased, with
    /// no key, metadata, jurisdiction or state (denial needs nothing else).
    pub(crate) fn tombstone_record(&self, sid: &SubjectId) -> Result<Option<SubjectRecord>, VaultError> {
        let Some(t) = self.store.tombstone(&self.keys.pseudonym(sid.as_str()))? else {
            return Ok(None);
        };
        let mut subject = Subject::new(sid.clone(), String::new(), t.erased_at);
        subject.erased_at = Some(t.erased_at);
        Ok(Some(SubjectRecord { subject, wrapped_key: None, sealed_metadata: None }))
    }

    /// Seals the metadata of subjects written before it was sealed, and moves
    /// subjects erased before tombstones were kept by pseudonym to tombstones.
    /// Idempotent; run at startup, before serving. Returns how many rows it upgraded.
    pub fn seal_legacy_subjects(&self) -> Result<u64, VaultError> {
        let mut upgraded = 0;
        loop {
            let batch = self.store.legacy_subjects(500)?;
            if batch.is_empty() {
                return Ok(upgraded);
            }
            for legacy in batch {
                let id = legacy.id.as_str();
                let pseudonym = self.keys.pseudonym(id);
                let sealed = match (&legacy.erased_at, &legacy.wrapped_key) {
                    (None, Some(wrapped)) => {
                        let key = self.keys.unwrap_data_key(id, wrapped)?;
                        let mut subject = Subject::new(legacy.id.clone(), String::new(), Timestamp(0));
                        subject.region = legacy.region.clone();
                        subject.birth_date = legacy.birth_date;
                        subject.guardian = legacy.guardian.clone();
                        subject
                            .has_metadata()
                            .then(|| key.seal(&metadata_context(id), encode_metadata(&subject).as_bytes()))
                            .transpose()?
                    }
                    _ => None,
                };
                self.store.upgrade_legacy_subject(&legacy.id, sealed.as_deref(), &pseudonym)?;
                upgraded += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_its_encoding() {
        let mut s = Subject::new(SubjectId::parse("kid").unwrap_or_else(|e| panic!("{e}")), "eea", Timestamp(0));
        s.region = Some("eu-central-1".into());
        s.birth_date = Some(time::macros::date!(2012 - 05 - 05));
        s.guardian = SubjectId::parse("parent").ok();
        let mut back = Subject::new(s.id.clone(), "eea", Timestamp(0));
        decode_metadata(encode_metadata(&s).as_bytes(), &mut back).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, s);
        let mut none = Subject::new(s.id.clone(), "eea", Timestamp(0));
        decode_metadata(b"1\n\n\n", &mut none).unwrap_or_else(|e| panic!("{e}"));
        assert!(!none.has_metadata());
        for bad in [&b"2\n\n\n"[..], b"1\n\n\n\n", b"1\nx\nnot-a-date\n", b"1\n\n"] {
            assert!(decode_metadata(bad, &mut none).is_err(), "{bad:?}");
        }
    }
}
