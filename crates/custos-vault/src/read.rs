//! Reading values for a purpose: the decision, opening, auditing; history and detokenization.

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::decision::{Denial, Operation, readable};
use custos_core::policy::document::LegalBasis;
use custos_core::subject::Subject;
use custos_core::time::Timestamp;
use custos_crypto::DataKey;
use custos_store::{Store, StoredItem, SubjectRecord};
use time::Date;
use zeroize::Zeroizing;

use crate::*;

/// A read request.
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    /// Whose.
    pub subject: &'a str,
    /// Why.
    pub purpose: &'a str,
    /// Who: [`CONTROLLER`] or a declared recipient id.
    pub actor: &'a str,
    /// The purposes the caller's key is bound to (a service key's
    /// [`crate::access::Principal::scope`]); `None` for callers a key does not
    /// limit (admin keys, the CLI). A purpose outside it is denied with
    /// `purpose_not_bound` before anything about the subject is looked up.
    pub scope: Option<&'a KeyScope>,
    /// The acting principal, recorded on the read's audit entries.
    pub by: &'a By,
}

impl<'a> Read<'a> {
    pub(crate) fn access(&self, operation: Operation) -> Access<'a> {
        Access { actor: self.actor, scope: self.scope, operation }
    }
}

/// A one-category read the decision allowed: the subject, their current item
/// (when asked for), the basis, the time of the decision, and the data key if
/// it was unwrapped already (for the subject's metadata).
pub(crate) struct Authorized {
    pub record: SubjectRecord,
    pub items: Vec<StoredItem>,
    pub basis: LegalBasis,
    pub now: Timestamp,
    pub key: Option<DataKey>,
}

/// A value released by the vault, with its metadata.
pub struct Revealed {
    /// Category id.
    pub category: String,
    /// The value; for tokenized cards, the token and last four digits.
    pub value: Zeroizing<String>,
    /// Version.
    pub version: u32,
    /// Source id.
    pub source: String,
    /// Purpose it was collected for.
    pub collected_for: String,
    /// When it was collected.
    pub collected_at: Timestamp,
    /// Notice version in force at collection.
    pub notice_version: String,
    /// When it was superseded, for prior versions.
    pub superseded_at: Option<Timestamp>,
    /// When a prior version is due for deletion under the policy's prior-version retention.
    pub delete_after: Option<Date>,
    /// The legal basis the read rests on.
    pub basis: LegalBasis,
}

/// Never shows the value.
impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revealed")
            .field("category", &self.category)
            .field("value", &"<redacted>")
            .field("version", &self.version)
            .field("source", &self.source)
            .field("collected_for", &self.collected_for)
            .field("collected_at", &self.collected_at)
            .field("notice_version", &self.notice_version)
            .field("superseded_at", &self.superseded_at)
            .field("delete_after", &self.delete_after)
            .field("basis", &self.basis)
            .finish()
    }
}

/// What a read of every category of a purpose returns: the values released,
/// and the categories denied with their reasons.
pub type ReadAll = (Vec<Revealed>, Vec<(String, Denied)>);

impl<S: Store> Vault<S> {
    /// Resolves a one-category read, loads the subject and decides; a denial
    /// is audited before it is returned.
    pub(crate) fn authorize_read(
        &self,
        read: &Read<'_>,
        category: &str,
        with_current: bool,
    ) -> Result<Authorized, VaultError> {
        let (purpose, cat) = self.resolve(read.purpose, Some(category))?;
        let cat = cat.ok_or_else(|| VaultError::from(InputError::CategoryMissing))?;
        let access = read.access(Operation::Read);
        self.admit_caller(access, purpose, Some(read.subject), Some(cat), read.by)?;
        let (record, items, key) = if with_current {
            self.record_with_items(read.subject, &[category])?
        } else {
            (self.record(read.subject)?, Vec::new(), None)
        };
        let now = self.clock.now();
        let mut denials = Vec::new();
        match self.check(&record.subject, purpose, cat, access, now, &mut denials, read.by) {
            Ok(basis) => Ok(Authorized { record, items, basis, now, key }),
            Err(d) => {
                self.store.append_audit(&denials)?;
                Err(VaultError::Denied(d))
            }
        }
    }

    pub(crate) fn read_event(
        &self,
        at: Timestamp,
        action: AuditAction,
        read: &Read<'_>,
        category: &str,
        basis: LegalBasis,
    ) -> AuditEvent {
        let mut ev = self.event(at, action, read.actor, read.subject, read.by);
        ev.purpose = Some(read.purpose.to_string());
        ev.categories = vec![category.to_string()];
        ev.basis = Some(basis.as_str().to_string());
        ev
    }

    /// Reads the current value of one category for a purpose.
    pub fn get(&self, read: &Read<'_>, category: &str) -> Result<Revealed, VaultError> {
        let Authorized { record, items, basis, now, key } = self.authorize_read(read, category, true)?;
        let item = items.into_iter().next().ok_or_else(|| VaultError::ItemNotFound(category.to_string()))?;
        let key = self.key_from(&record, key)?;
        let revealed = self.reveal(&key, &record.subject, item, basis)?;
        self.store.append_audit(&[self.read_event(now, AuditAction::DataRead, read, category, basis)])?;
        Ok(revealed)
    }

    /// Reads every current value the purpose may use. Categories the decision
    /// denies are left out and listed with their reason; nothing is returned
    /// only if every category is denied, in which case the first denial is the error.
    pub fn get_all(&self, read: &Read<'_>) -> Result<ReadAll, VaultError> {
        let (purpose, _) = self.resolve(read.purpose, None)?;
        let access = read.access(Operation::Read);
        self.admit_caller(access, purpose, Some(read.subject), None, read.by)?;
        let (record, items, key) = self.record_with_items(read.subject, &[])?;
        let now = self.clock.now();
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        let mut denials = Vec::new();
        for item in items {
            let Some(cat) = self.policy.category(&item.category) else { continue };
            if !self.policy.purpose_rules(purpose).allows(cat) {
                continue;
            }
            match self.check(&record.subject, purpose, cat, access, now, &mut denials, read.by) {
                Ok(basis) => allowed.push((item, basis)),
                Err(d) => denied.push((item.category.clone(), d)),
            }
        }
        if allowed.is_empty() {
            if let Some((_, d)) = denied.into_iter().next() {
                self.store.append_audit(&denials)?;
                return Err(VaultError::Denied(d));
            }
            if let Err(reason) = readable(&record.subject) {
                let mut ev = self.event(now, AuditAction::AccessDenied, read.actor, read.subject, read.by);
                ev.purpose = Some(read.purpose.to_string());
                ev.reason = Some(reason.code().to_string());
                self.store.append_audit(&[ev])?;
                let denial = Denial { reason, purpose, category: None, actor: self.actor(read.actor) };
                return Err(VaultError::Denied(Denied { reason, sentence: denial.sentence(&self.policy) }));
            }
            return Ok((Vec::new(), Vec::new()));
        }
        let key = self.key_from(&record, key)?;
        let mut ev = self.event(now, AuditAction::DataRead, read.actor, read.subject, read.by);
        ev.purpose = Some(read.purpose.to_string());
        ev.categories = allowed.iter().map(|(i, _)| i.category.clone()).collect();
        ev.basis = allowed.first().map(|(_, basis)| basis.as_str().to_string());
        let revealed = allowed
            .into_iter()
            .map(|(item, basis)| self.reveal(&key, &record.subject, item, basis))
            .collect::<Result<Vec<_>, _>>()?;
        denials.push(ev);
        self.store.append_audit(&denials)?;
        Ok((revealed, denied))
    }

    /// Every version of one item, newest first, for a purpose that may use it.
    pub fn history(&self, read: &Read<'_>, category: &str) -> Result<Vec<Revealed>, VaultError> {
        let Authorized { record, basis, now, .. } = self.authorize_read(read, category, false)?;
        let items = self.store.history(&record.subject.id, category)?;
        if items.is_empty() {
            return Err(VaultError::ItemNotFound(category.to_string()));
        }
        let key = self.key_of(&record)?;
        let revealed =
            items.into_iter().map(|i| self.reveal(&key, &record.subject, i, basis)).collect::<Result<Vec<_>, _>>()?;
        self.store.append_audit(&[self.read_event(now, AuditAction::HistoryRead, read, category, basis)])?;
        Ok(revealed)
    }

    /// Recovers the full value behind a token, for a purpose the policy allows
    /// to detokenize that category (and the decision engine allows). `scope`
    /// is the caller's key scope, as in [`Read::scope`].
    pub fn detokenize(
        &self,
        token: &str,
        purpose: &str,
        actor: &str,
        scope: Option<&KeyScope>,
        by: &By,
    ) -> Result<Zeroizing<String>, VaultError> {
        let (pid, _) = self.resolve(purpose, None)?;
        if !token.starts_with("tok_") || token.len() != 36 || !token[4..].bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InputError::Token.into());
        }
        let access = Access { actor, scope, operation: Operation::Detokenize };
        self.admit_caller(access, pid, None, None, by)?;
        let item = self.store.item_by_token(token)?.ok_or(VaultError::TokenNotFound)?;
        let record = self.record(item.subject.as_str()).map_err(|e| match e {
            VaultError::SubjectNotFound => VaultError::TokenNotFound,
            other => other,
        })?;
        let cat = self.policy.category(&item.category).ok_or(VaultError::TokenNotFound)?;
        let now = self.clock.now();
        let mut denials = Vec::new();
        let basis = match self.check(&record.subject, pid, cat, access, now, &mut denials, by) {
            Ok(b) => b,
            Err(d) => {
                self.store.append_audit(&denials)?;
                return Err(VaultError::Denied(d));
            }
        };
        let key = self.key_of(&record)?;
        let opened = key.open_item(item.subject.as_str(), &item.category, item.version, &item.sealed)?;
        let (_, pan) = card::split(&opened).ok_or(VaultError::Crypto(custos_crypto::CryptoError::Malformed))?;
        let pan = Zeroizing::new(pan.to_string());
        let mut ev = self.event(now, AuditAction::Detokenized, actor, item.subject.as_str(), by);
        ev.purpose = Some(purpose.to_string());
        ev.categories = vec![item.category.clone()];
        ev.basis = Some(basis.as_str().to_string());
        self.store.append_audit(&[ev])?;
        Ok(pan)
    }

    /// The record's data key: `unwrapped` if the caller has it already (see
    /// [`Vault::open_metadata_keeping_key`]), else unwrapped now.
    pub(crate) fn key_from(&self, record: &SubjectRecord, unwrapped: Option<DataKey>) -> Result<DataKey, VaultError> {
        match unwrapped {
            Some(key) => Ok(key),
            None => self.key_of(record),
        }
    }

    pub(crate) fn key_of(&self, record: &SubjectRecord) -> Result<DataKey, VaultError> {
        let wrapped = record.wrapped_key.as_deref().ok_or_else(erased_denial)?;
        Ok(self.keys.unwrap_data_key(record.subject.id.as_str(), wrapped)?)
    }

    pub(crate) fn reveal(
        &self,
        key: &DataKey,
        subject: &Subject,
        item: StoredItem,
        basis: LegalBasis,
    ) -> Result<Revealed, VaultError> {
        let opened = key.open_item(subject.id.as_str(), &item.category, item.version, &item.sealed)?;
        let value = match (&item.token, self.policy.category(&item.category).and_then(|c| self.policy.tokenization(c)))
        {
            (Some(token), Some(_)) => {
                let (last4, _) =
                    card::split(&opened).ok_or(VaultError::Crypto(custos_crypto::CryptoError::Malformed))?;
                Zeroizing::new(format!("{token} (card ending {last4})"))
            }
            _ => Zeroizing::new(
                String::from_utf8(opened.to_vec())
                    .map_err(|_| VaultError::Crypto(custos_crypto::CryptoError::Malformed))?,
            ),
        };
        let delete_after = item.superseded_at.map(|s| self.policy.prior_versions_retention().after(s.date()));
        Ok(Revealed {
            category: item.category,
            value,
            version: item.version,
            source: item.source,
            collected_for: item.purpose,
            collected_at: item.collected_at,
            notice_version: item.notice_version,
            superseded_at: item.superseded_at,
            delete_after,
            basis,
        })
    }
}
