//! The Custos vault: stores personal values encrypted per subject, releases
//! them only for declared purposes, and audits every step.
//!
//! The vault is where the invariants meet: it validates input against the
//! [`Policy`], asks [`custos_core::decision::decide`] about every read and
//! write, seals and opens values with the subject's data key, and hands the
//! store the audit events of each operation so they commit with it. It is
//! generic over [`Store`], so every backend gets the same behaviour.

pub mod access;
mod card;
mod error;
pub mod master_key;

use std::collections::HashMap;
use std::sync::Arc;

use custos_core::audit::{AuditAction, AuditEvent, ChainBreak, ChainHead, ChainVerifier};
use custos_core::decision::{AccessRequest, Actor, DenyReason, decide};
use custos_core::policy::document::LegalBasis;
use custos_core::policy::{CategoryId, Policy, PurposeId};
use custos_core::subject::{ConsentRecord, ConsentStatus, Subject, SubjectId, SubjectState};
use custos_core::time::{Clock, Timestamp};
use custos_crypto::{DataKey, Keyring, item_context, new_token};
use custos_store::{NewItem, StateChange, Store, StoredItem, SubjectRecord};
use time::Date;
use zeroize::Zeroizing;

pub use error::{Denied, VaultError};

/// The actor name for the controller's own systems.
pub const CONTROLLER: &str = "controller";
/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

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

/// One value to write.
#[derive(Debug, Clone, Copy)]
pub struct Put<'a> {
    /// Whose.
    pub subject: &'a str,
    /// Category id.
    pub category: &'a str,
    /// The value (never logged, never in errors).
    pub value: &'a str,
    /// Source id.
    pub source: &'a str,
    /// Purpose it is collected for.
    pub purpose: &'a str,
}

/// A read request.
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    /// Whose.
    pub subject: &'a str,
    /// Why.
    pub purpose: &'a str,
    /// Who: [`CONTROLLER`] or a declared recipient id.
    pub actor: &'a str,
}

/// A value released by the vault, with its metadata.
#[derive(Debug)]
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

/// What a read of every category of a purpose returns: the values released,
/// and the categories denied with their reasons.
pub type ReadAll = (Vec<Revealed>, Vec<(String, Denied)>);

/// The vault.
pub struct Vault<S> {
    policy: Arc<Policy>,
    store: S,
    keys: Keyring,
    clock: Arc<dyn Clock>,
}

impl<S: Store> Vault<S> {
    /// A vault over `store`, deciding by `policy`, keyed by `keys`, timed by `clock`.
    pub fn new(policy: Arc<Policy>, store: S, keys: Keyring, clock: Arc<dyn Clock>) -> Self {
        Vault { policy, store, keys, clock }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The current time from the vault's clock.
    pub fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The pseudonym of a subject id in the audit log.
    pub fn pseudonym(&self, subject: &str) -> String {
        self.keys.pseudonym(subject)
    }

    fn event(&self, at: Timestamp, action: AuditAction, actor: &str, subject: &str) -> AuditEvent {
        let mut e = AuditEvent::new(at, action, actor);
        e.subject = Some(self.keys.pseudonym(subject));
        e.notice_version = Some(self.policy.version().to_string());
        e
    }

    /// Creates a subject with a fresh data key.
    pub fn add_subject(&self, new: &NewSubject<'_>) -> Result<Subject, VaultError> {
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
        let event = self.event(now, AuditAction::SubjectCreated, CONTROLLER, id.as_str());
        self.store.create_subject(&subject, &wrapped, &[event])?;
        Ok(subject)
    }

    /// A subject's metadata (no values).
    pub fn subject(&self, id: &str) -> Result<Subject, VaultError> {
        Ok(self.record(id)?.subject)
    }

    fn record(&self, id: &str) -> Result<SubjectRecord, VaultError> {
        let sid = SubjectId::parse(id).map_err(VaultError::Invalid)?;
        self.store.subject(&sid)?.ok_or(VaultError::SubjectNotFound)
    }

    fn resolve(&self, purpose: &str, category: Option<&str>) -> Result<(PurposeId, Option<CategoryId>), VaultError> {
        let p = self.policy.purpose(purpose).ok_or_else(|| {
            invalid_ref("purpose", purpose, self.policy.purpose_ids().map(|p| &self.policy.purpose_doc(p).id.value))
        })?;
        let c = match category {
            None => None,
            Some(c) => Some(self.policy.category(c).ok_or_else(|| {
                invalid_ref("category", c, self.policy.category_ids().map(|c| &self.policy.category_doc(c).id.value))
            })?),
        };
        Ok((p, c))
    }

    fn actor(&self, actor: &str) -> Option<Actor> {
        if actor == CONTROLLER { Some(Actor::Controller) } else { self.policy.recipient(actor).map(Actor::Recipient) }
    }

    /// Decides one request and turns a denial into an audited error.
    fn check(
        &self,
        subject: &Subject,
        purpose: PurposeId,
        category: CategoryId,
        actor: &str,
        at: Timestamp,
        denials: &mut Vec<AuditEvent>,
    ) -> Result<LegalBasis, Denied> {
        let denied = |reason: DenyReason, sentence: String, denials: &mut Vec<AuditEvent>| {
            let mut e = self.event(at, AuditAction::AccessDenied, actor, subject.id.as_str());
            e.purpose = Some(self.policy.purpose_doc(purpose).id.value.clone());
            e.categories = vec![self.policy.category_doc(category).id.value.clone()];
            e.reason = Some(reason.code().to_string());
            denials.push(e);
            Denied { reason, sentence }
        };
        let Some(a) = self.actor(actor) else {
            let sentence = format!("actor `{actor}` is not a declared recipient");
            return Err(denied(DenyReason::RecipientNotAllowed, sentence, denials));
        };
        let req = AccessRequest { purpose, category, actor: a, at };
        decide(&self.policy, subject, &req).map_err(|d| {
            let sentence = d.sentence(&self.policy);
            denied(d.reason, sentence, denials)
        })
    }

    /// Writes one value.
    pub fn put(&self, put: &Put<'_>) -> Result<u32, VaultError> {
        Ok(self.put_batch(std::slice::from_ref(put), CONTROLLER)?.first().copied().unwrap_or(0))
    }

    /// Writes many values in one transaction: all or nothing. Items are
    /// grouped by subject (one key unwrap and one audit entry per subject).
    /// Returns each item's version, in input order.
    pub fn put_batch(&self, puts: &[Put<'_>], actor: &str) -> Result<Vec<u32>, VaultError> {
        self.write_items(puts, actor, true)?.into_iter().collect()
    }

    /// Writes every value that passes validation and the decision on its own,
    /// in one transaction, and reports each item's outcome in input order: a
    /// bad item neither stops nor changes the others. Denials are audited.
    pub fn put_each(&self, puts: &[Put<'_>], actor: &str) -> Result<Vec<Result<u32, VaultError>>, VaultError> {
        self.write_items(puts, actor, false)
    }

    /// Checks one value's input against the policy (no store access).
    fn validate_put(&self, p: &Put<'_>) -> Result<(SubjectId, PurposeId, CategoryId), VaultError> {
        let (purpose, category) = self.resolve(p.purpose, Some(p.category))?;
        let category = category.ok_or_else(|| VaultError::Invalid("category missing".into()))?;
        let cdoc = self.policy.category_doc(category);
        if !cdoc.sources.iter().any(|s| s.value == p.source) {
            return Err(if self.policy.has_source(p.source) {
                VaultError::Invalid(format!("source `{}` is not declared for category `{}`", p.source, p.category))
            } else {
                invalid_ref("source", p.source, self.policy.document().sources.iter().map(|s| &s.id.value))
            });
        }
        if p.value.is_empty() {
            return Err(VaultError::Invalid(format!("the value for `{}` is empty", p.category)));
        }
        if p.value.len() > MAX_VALUE_BYTES {
            return Err(VaultError::Invalid(format!(
                "the value for `{}` is larger than {MAX_VALUE_BYTES} bytes",
                p.category
            )));
        }
        let sid = SubjectId::parse(p.subject).map_err(VaultError::Invalid)?;
        Ok((sid, purpose, category))
    }

    /// Seals one validated, allowed value.
    fn seal_item(
        &self,
        key: &DataKey,
        sid: &SubjectId,
        category: CategoryId,
        p: &Put<'_>,
        now: Timestamp,
    ) -> Result<NewItem, VaultError> {
        let ctx = item_context(sid.as_str(), p.category);
        let (sealed, token) = match self.policy.tokenization(category) {
            Some(_) => {
                let pan = card::normalise_pan(p.value)
                    .map_err(|e| VaultError::Invalid(format!("category `{}`: {e}", p.category)))?;
                (key.seal(&ctx, &card::payload(&pan))?, Some(new_token()?))
            }
            None => (key.seal(&ctx, p.value.as_bytes())?, None),
        };
        Ok(NewItem {
            subject: sid.clone(),
            category: p.category.to_string(),
            source: p.source.to_string(),
            purpose: p.purpose.to_string(),
            collected_at: now,
            notice_version: self.policy.version().to_string(),
            sealed,
            token,
        })
    }

    fn write_items(
        &self,
        puts: &[Put<'_>],
        actor: &str,
        all_or_nothing: bool,
    ) -> Result<Vec<Result<u32, VaultError>>, VaultError> {
        let now = self.clock.now();
        let mut outcome: Vec<Option<Result<u32, VaultError>>> = (0..puts.len()).map(|_| None).collect();
        // Validate everything before touching the store: bad input changes nothing.
        let mut valid = Vec::with_capacity(puts.len());
        for (i, p) in puts.iter().enumerate() {
            match self.validate_put(p) {
                Ok(r) => valid.push((i, r)),
                Err(e) if all_or_nothing => return Err(e),
                Err(e) => outcome[i] = Some(Err(e)),
            }
        }
        // Subjects in key order: faster inserts, one key unwrap per subject.
        valid.sort_by(|a, b| a.1.0.cmp(&b.1.0));
        let mut ids: Vec<SubjectId> = valid.iter().map(|(_, r)| r.0.clone()).collect();
        ids.dedup();
        let records: HashMap<SubjectId, SubjectRecord> =
            self.store.subjects(&ids)?.into_iter().map(|r| (r.subject.id.clone(), r)).collect();

        let mut items = Vec::with_capacity(valid.len());
        let mut positions = Vec::with_capacity(valid.len());
        let mut writes: Vec<AuditEvent> = Vec::with_capacity(ids.len());
        let mut denials = Vec::new();
        let mut current: Option<(&SubjectId, Result<DataKey, VaultError>)> = None;
        let mut last_written: Option<&SubjectId> = None;
        for (i, (sid, purpose, category)) in &valid {
            let p = &puts[*i];
            let attempt = (|| {
                let record = records.get(sid).ok_or(VaultError::SubjectNotFound)?;
                self.check(&record.subject, *purpose, *category, actor, now, &mut denials)
                    .map_err(VaultError::Denied)?;
                if current.as_ref().is_none_or(|(s, _)| *s != sid) {
                    let key = record
                        .wrapped_key
                        .as_deref()
                        .ok_or_else(erased_denial)
                        .and_then(|w| Ok(self.keys.unwrap_data_key(sid.as_str(), w)?));
                    current = Some((sid, key));
                }
                let key = match current.as_ref().map(|(_, k)| k) {
                    Some(Ok(k)) => k,
                    Some(Err(VaultError::Crypto(e))) => return Err(VaultError::Crypto(e.clone())),
                    Some(Err(_)) | None => return Err(erased_denial()),
                };
                self.seal_item(key, sid, *category, p, now)
            })();
            match attempt {
                Ok(item) => {
                    match writes.last_mut() {
                        Some(ev) if last_written == Some(sid) => {
                            if !ev.categories.iter().any(|c| c == p.category) {
                                ev.categories.push(p.category.to_string());
                            }
                            if ev.purpose.as_deref() != Some(p.purpose) {
                                ev.purpose = Some("(several)".to_string());
                            }
                        }
                        _ => {
                            let mut ev = self.event(now, AuditAction::DataWritten, actor, sid.as_str());
                            ev.purpose = Some(p.purpose.to_string());
                            ev.categories = vec![p.category.to_string()];
                            writes.push(ev);
                            last_written = Some(sid);
                        }
                    }
                    items.push(item);
                    positions.push(*i);
                }
                Err(e) if all_or_nothing => {
                    if !denials.is_empty() {
                        self.store.append_audit(&denials)?;
                    }
                    return Err(e);
                }
                Err(e) => outcome[*i] = Some(Err(e)),
            }
        }
        if items.is_empty() {
            if !denials.is_empty() {
                self.store.append_audit(&denials)?;
            }
        } else {
            writes.extend(denials);
            let versions = self.store.put_items(&items, &writes).map_err(|e| match e {
                // Only reachable if a subject was erased between the decision and the write.
                custos_store::StoreError::SubjectErased => erased_denial(),
                other => other.into(),
            })?;
            for (pos, v) in positions.into_iter().zip(versions) {
                outcome[pos] = Some(Ok(v));
            }
        }
        Ok(outcome.into_iter().map(|o| o.unwrap_or(Ok(0))).collect())
    }

    /// Resolves a one-category read, loads the subject and decides; a denial
    /// is audited before it is returned.
    fn authorize_read(
        &self,
        read: &Read<'_>,
        category: &str,
        with_current: bool,
    ) -> Result<(SubjectRecord, Vec<StoredItem>, LegalBasis, Timestamp), VaultError> {
        let (purpose, cat) = self.resolve(read.purpose, Some(category))?;
        let cat = cat.ok_or_else(|| VaultError::Invalid("category missing".into()))?;
        let (record, items) = if with_current {
            self.record_with_items(read.subject, &[category])?
        } else {
            (self.record(read.subject)?, Vec::new())
        };
        let now = self.clock.now();
        let mut denials = Vec::new();
        match self.check(&record.subject, purpose, cat, read.actor, now, &mut denials) {
            Ok(basis) => Ok((record, items, basis, now)),
            Err(d) => {
                self.store.append_audit(&denials)?;
                Err(VaultError::Denied(d))
            }
        }
    }

    fn record_with_items(&self, id: &str, categories: &[&str]) -> Result<(SubjectRecord, Vec<StoredItem>), VaultError> {
        let sid = SubjectId::parse(id).map_err(VaultError::Invalid)?;
        self.store.subject_with_items(&sid, categories)?.ok_or(VaultError::SubjectNotFound)
    }

    fn read_event(
        &self,
        at: Timestamp,
        action: AuditAction,
        read: &Read<'_>,
        category: &str,
        basis: LegalBasis,
    ) -> AuditEvent {
        let mut ev = self.event(at, action, read.actor, read.subject);
        ev.purpose = Some(read.purpose.to_string());
        ev.categories = vec![category.to_string()];
        ev.basis = Some(basis.as_str().to_string());
        ev
    }

    /// Reads the current value of one category for a purpose.
    pub fn get(&self, read: &Read<'_>, category: &str) -> Result<Revealed, VaultError> {
        let (record, items, basis, now) = self.authorize_read(read, category, true)?;
        let item = items.into_iter().next().ok_or_else(|| VaultError::ItemNotFound(category.to_string()))?;
        let key = self.key_of(&record)?;
        let revealed = self.reveal(&key, &record.subject, item, basis)?;
        self.store.append_audit(&[self.read_event(now, AuditAction::DataRead, read, category, basis)])?;
        Ok(revealed)
    }

    /// Reads every current value the purpose may use. Categories the decision
    /// denies are left out and listed with their reason; nothing is returned
    /// only if every category is denied, in which case the first denial is the error.
    pub fn get_all(&self, read: &Read<'_>) -> Result<ReadAll, VaultError> {
        let (purpose, _) = self.resolve(read.purpose, None)?;
        let (record, items) = self.record_with_items(read.subject, &[])?;
        let now = self.clock.now();
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        let mut denials = Vec::new();
        for item in items {
            let Some(cat) = self.policy.category(&item.category) else { continue };
            if !self.policy.purpose_rules(purpose).allows(cat) {
                continue;
            }
            match self.check(&record.subject, purpose, cat, read.actor, now, &mut denials) {
                Ok(basis) => allowed.push((item, basis)),
                Err(d) => denied.push((item.category.clone(), d)),
            }
        }
        if allowed.is_empty() {
            if let Some((_, d)) = denied.into_iter().next() {
                self.store.append_audit(&denials)?;
                return Err(VaultError::Denied(d));
            }
            if record.subject.erased_at.is_some() {
                let mut ev = self.event(now, AuditAction::AccessDenied, read.actor, read.subject);
                ev.purpose = Some(read.purpose.to_string());
                ev.reason = Some(DenyReason::Erased.code().to_string());
                self.store.append_audit(&[ev])?;
                return Err(erased_denial());
            }
            return Ok((Vec::new(), Vec::new()));
        }
        let key = self.key_of(&record)?;
        let mut ev = self.event(now, AuditAction::DataRead, read.actor, read.subject);
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
        let (record, _, basis, now) = self.authorize_read(read, category, false)?;
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
    /// to detokenize that category (and the decision engine allows).
    pub fn detokenize(&self, token: &str, purpose: &str, actor: &str) -> Result<Zeroizing<String>, VaultError> {
        let (pid, _) = self.resolve(purpose, None)?;
        if !token.starts_with("tok_") || token.len() != 36 || !token[4..].bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(VaultError::Invalid("a token is `tok_` followed by 32 hexadecimal characters".into()));
        }
        let item = self.store.item_by_token(token)?.ok_or(VaultError::TokenNotFound)?;
        let record = self.store.subject(&item.subject)?.ok_or(VaultError::TokenNotFound)?;
        let cat = self.policy.category(&item.category).ok_or(VaultError::TokenNotFound)?;
        let now = self.clock.now();
        let mut denials = Vec::new();
        let may_detokenize =
            self.policy.tokenization(cat).is_some_and(|t| t.detokenize_purposes.iter().any(|p| p.value == purpose));
        if !may_detokenize {
            let mut e = self.event(now, AuditAction::AccessDenied, actor, item.subject.as_str());
            e.purpose = Some(purpose.to_string());
            e.categories = vec![item.category.clone()];
            e.reason = Some(DenyReason::PurposeNotDeclaredForCategory.code().to_string());
            self.store.append_audit(&[e])?;
            return Err(VaultError::Denied(Denied {
                reason: DenyReason::PurposeNotDeclaredForCategory,
                sentence: format!("the policy does not allow purpose `{purpose}` to detokenize `{}`", item.category),
            }));
        }
        let basis = match self.check(&record.subject, pid, cat, actor, now, &mut denials) {
            Ok(b) => b,
            Err(d) => {
                self.store.append_audit(&denials)?;
                return Err(VaultError::Denied(d));
            }
        };
        let key = self.key_of(&record)?;
        let opened = key.open(&item_context(item.subject.as_str(), &item.category), &item.sealed)?;
        let (_, pan) = card::split(&opened).ok_or(VaultError::Crypto(custos_crypto::CryptoError::Malformed))?;
        let pan = Zeroizing::new(pan.to_string());
        let mut ev = self.event(now, AuditAction::Detokenized, actor, item.subject.as_str());
        ev.purpose = Some(purpose.to_string());
        ev.categories = vec![item.category.clone()];
        ev.basis = Some(basis.as_str().to_string());
        self.store.append_audit(&[ev])?;
        Ok(pan)
    }

    fn key_of(&self, record: &SubjectRecord) -> Result<DataKey, VaultError> {
        let wrapped = record.wrapped_key.as_deref().ok_or_else(erased_denial)?;
        Ok(self.keys.unwrap_data_key(record.subject.id.as_str(), wrapped)?)
    }

    fn reveal(
        &self,
        key: &DataKey,
        subject: &Subject,
        item: StoredItem,
        basis: LegalBasis,
    ) -> Result<Revealed, VaultError> {
        let opened = key.open(&item_context(subject.id.as_str(), &item.category), &item.sealed)?;
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

    /// Records a consent (granted), by the subject or by their linked guardian.
    pub fn grant_consent(&self, subject: &str, purpose: &str, by_guardian: Option<&str>) -> Result<(), VaultError> {
        self.consent(subject, purpose, by_guardian, ConsentStatus::Granted)
    }

    /// Withdraws a consent; processing for that purpose stops at once.
    pub fn withdraw_consent(&self, subject: &str, purpose: &str, by_guardian: Option<&str>) -> Result<(), VaultError> {
        self.consent(subject, purpose, by_guardian, ConsentStatus::Withdrawn)
    }

    fn consent(
        &self,
        subject: &str,
        purpose: &str,
        by_guardian: Option<&str>,
        status: ConsentStatus,
    ) -> Result<(), VaultError> {
        self.resolve(purpose, None)?;
        let sid = SubjectId::parse(subject).map_err(VaultError::Invalid)?;
        let guardian = by_guardian
            .map(|g| SubjectId::parse(g).map_err(|e| VaultError::Invalid(format!("guardian: {e}"))))
            .transpose()?;
        let action = match status {
            ConsentStatus::Granted => AuditAction::ConsentGranted,
            ConsentStatus::Withdrawn => AuditAction::ConsentWithdrawn,
        };
        let actor = if guardian.is_some() { "guardian" } else { "subject" };
        self.update_choices(&sid, actor, Some(purpose), |s, state, now| {
            if guardian.is_some() && s.guardian != guardian {
                return Err(VaultError::Invalid("that guardian is not linked to this subject".into()));
            }
            // A subject's own grant adds nothing to a live grant by their linked
            // guardian, and must not replace it (a minor would lose the service).
            let guardian_granted = state.consents.get(purpose).is_some_and(|c| {
                c.status == ConsentStatus::Granted && c.by_guardian.is_some() && c.by_guardian == s.guardian
            });
            if !(status == ConsentStatus::Granted && guardian.is_none() && guardian_granted) {
                state
                    .consents
                    .insert(purpose.to_string(), ConsentRecord { status, at: now, by_guardian: guardian.clone() });
            }
            Ok(action)
        })
    }

    /// Records an objection to a purpose (GDPR Art. 21).
    pub fn object(&self, subject: &str, purpose: &str) -> Result<(), VaultError> {
        self.resolve(purpose, None)?;
        let sid = SubjectId::parse(subject).map_err(VaultError::Invalid)?;
        self.update_choices(&sid, "subject", Some(purpose), |_, state, now| {
            state.objections.entry(purpose.to_string()).or_insert(now);
            Ok(AuditAction::ObjectionRecorded)
        })
    }

    /// Restricts processing (GDPR Art. 18), or lifts the restriction.
    pub fn set_restricted(&self, subject: &str, restricted: bool) -> Result<(), VaultError> {
        let sid = SubjectId::parse(subject).map_err(VaultError::Invalid)?;
        self.update_choices(&sid, CONTROLLER, None, |_, state, now| {
            Ok(if restricted {
                state.restricted_since.get_or_insert(now);
                AuditAction::RestrictionSet
            } else {
                state.restricted_since = None;
                AuditAction::RestrictionLifted
            })
        })
    }

    /// Changes a subject's choices atomically and audits the change. `change`
    /// edits the state and names the audited action, or refuses; an erased
    /// subject is refused (and the refusal audited) before `change` runs.
    fn update_choices(
        &self,
        sid: &SubjectId,
        actor: &str,
        purpose: Option<&str>,
        mut change: impl FnMut(&Subject, &mut SubjectState, Timestamp) -> Result<AuditAction, VaultError>,
    ) -> Result<(), VaultError> {
        let now = self.clock.now();
        let mut problem = None;
        self.store.update_state(sid, &mut |s| {
            if s.erased_at.is_some() {
                problem = Some(erased_denial());
                return None;
            }
            let mut state = s.state.clone();
            match change(s, &mut state, now) {
                Ok(action) => {
                    let mut ev = self.event(now, action, actor, sid.as_str());
                    ev.purpose = purpose.map(str::to_string);
                    Some(StateChange { state, audit: vec![ev] })
                }
                Err(e) => {
                    problem = Some(e);
                    None
                }
            }
        })?;
        self.refused(problem, actor, sid.as_str(), purpose)
    }

    /// The outcome of a state change; a refusal because the subject was erased
    /// is audited like every other denial.
    fn refused(
        &self,
        problem: Option<VaultError>,
        actor: &str,
        subject: &str,
        purpose: Option<&str>,
    ) -> Result<(), VaultError> {
        match problem {
            None => Ok(()),
            Some(VaultError::Denied(d)) if d.reason == DenyReason::Erased => {
                Err(self.erased_refusal(actor, subject, purpose))
            }
            Some(other) => Err(other),
        }
    }

    /// Audits a request refused because the subject was erased, and returns the denial.
    fn erased_refusal(&self, actor: &str, subject: &str, purpose: Option<&str>) -> VaultError {
        let mut ev = self.event(self.clock.now(), AuditAction::AccessDenied, actor, subject);
        ev.purpose = purpose.map(str::to_string);
        ev.reason = Some(DenyReason::Erased.code().to_string());
        match self.store.append_audit(&[ev]) {
            Ok(_) => erased_denial(),
            Err(e) => e.into(),
        }
    }

    /// Erases a subject by destroying their data key (crypto-shredding).
    /// Returns how many item versions became unreadable.
    pub fn erase(&self, subject: &str) -> Result<u64, VaultError> {
        let sid = SubjectId::parse(subject).map_err(VaultError::Invalid)?;
        let now = self.clock.now();
        let ev = self.event(now, AuditAction::SubjectErased, CONTROLLER, subject);
        self.store.erase_subject(&sid, now, &[ev]).map_err(|e| match e {
            custos_store::StoreError::SubjectErased => self.erased_refusal(CONTROLLER, subject, None),
            other => other.into(),
        })
    }

    /// Verifies the audit chain end to end.
    pub fn verify_audit(&self) -> Result<Result<ChainHead, ChainBreak>, VaultError> {
        verify_chain(&self.store)
    }
}

/// Verifies a store's audit chain against its recorded head.
pub fn verify_chain(store: &dyn Store) -> Result<Result<ChainHead, ChainBreak>, VaultError> {
    let mut v = ChainVerifier::default();
    match store.scan_audit(&mut |seq, prev, body, hash| v.check(seq, prev, body, hash))? {
        Ok(head) => Ok(v.finish(head)),
        Err(broken) => Ok(Err(broken)),
    }
}

fn erased_denial() -> VaultError {
    VaultError::Denied(Denied {
        reason: DenyReason::Erased,
        sentence: "the subject's data was erased and can no longer be read".into(),
    })
}

fn invalid_ref<'a>(what: &str, given: &str, known: impl Iterator<Item = &'a String>) -> VaultError {
    let known: Vec<&String> = known.collect();
    let list = if known.len() <= 12 {
        known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    } else {
        format!("{} declared; see `custos policy render`", known.len())
    };
    let shown: String = given.chars().take(64).filter(|c| !c.is_control()).collect();
    VaultError::Invalid(format!("unknown {what} `{shown}` (known: {list})"))
}
