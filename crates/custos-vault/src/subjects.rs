//! Creating subjects and reading their metadata.

use custos_core::audit::AuditAction;
use custos_core::subject::{Subject, SubjectId, SubjectState};
use custos_store::{Store, StoredItem, SubjectRecord};
use time::Date;

use crate::*;

/// A subject to create.
#[derive(Debug, Clone)]
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

impl<S: Store> Vault<S> {
    /// Creates a subject with a fresh data key.
    pub fn add_subject(&self, new: &NewSubject<'_>, by: &By) -> Result<Subject, VaultError> {
        let id = SubjectId::parse(new.id).map_err(VaultError::Invalid)?;
        if self.policy.jurisdiction(new.jurisdiction).is_none() {
            return Err(invalid_ref(
                "jurisdiction",
                new.jurisdiction,
                self.policy.jurisdiction_ids().map(|j| &self.policy.jurisdiction_doc(j).id.value),
            ));
        }
        if let Some(region) = new.region
            && (region.is_empty()
                || region.len() > 64
                || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(VaultError::Invalid("a region is 1 to 64 letters, digits, `-` or `_`".into()));
        }
        let now = self.clock.now();
        if new.birth_date.is_some_and(|b| b > now.date()) {
            return Err(VaultError::Invalid("the birth date is in the future".into()));
        }
        let guardian = match new.guardian {
            None => None,
            Some(g) => {
                let gid = SubjectId::parse(g).map_err(|e| VaultError::Invalid(format!("guardian: {e}")))?;
                if gid == id {
                    return Err(VaultError::Invalid("a subject cannot be their own guardian".into()));
                }
                match self.store.subject(&gid)? {
                    Some(r) if r.subject.erased_at.is_none() => Some(gid),
                    Some(_) => return Err(VaultError::Invalid("the guardian's data was erased".into())),
                    None => {
                        return Err(VaultError::Invalid("the guardian is not a known subject; add them first".into()));
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
        let (_key, wrapped) = self.keys.new_data_key(id.as_str())?;
        let event = self.event(now, AuditAction::SubjectCreated, CONTROLLER, id.as_str(), by);
        self.store.create_subject(&subject, &wrapped, &[event])?;
        Ok(subject)
    }

    /// A subject's metadata (no values).
    pub fn subject(&self, id: &str) -> Result<Subject, VaultError> {
        Ok(self.record(id)?.subject)
    }

    pub(crate) fn record(&self, id: &str) -> Result<SubjectRecord, VaultError> {
        let sid = SubjectId::parse(id).map_err(VaultError::Invalid)?;
        self.store.subject(&sid)?.ok_or(VaultError::SubjectNotFound)
    }

    pub(crate) fn record_with_items(
        &self,
        id: &str,
        categories: &[&str],
    ) -> Result<(SubjectRecord, Vec<StoredItem>), VaultError> {
        let sid = SubjectId::parse(id).map_err(VaultError::Invalid)?;
        self.store.subject_with_items(&sid, categories)?.ok_or(VaultError::SubjectNotFound)
    }
}
