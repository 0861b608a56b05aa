//! Writing values: validation, the decision, sealing, one transaction per batch.

use std::collections::HashMap;

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::policy::{CategoryId, PurposeId};
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;
use custos_crypto::{DataKey, new_token};
use custos_store::{NewItem, Store, SubjectRecord};
use zeroize::Zeroizing;

use crate::*;

/// One value to write.
#[derive(Clone, Copy)]
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

/// Never shows the value.
impl std::fmt::Debug for Put<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Put")
            .field("subject", &self.subject)
            .field("category", &self.category)
            .field("value", &"<redacted>")
            .field("source", &self.source)
            .field("purpose", &self.purpose)
            .finish()
    }
}

/// The bytes of one value to seal: the input itself, or (for a card) its
/// payload, wiped when dropped.
pub(crate) enum Plain<'a> {
    Borrowed(&'a [u8]),
    Owned(Zeroizing<Vec<u8>>),
}

impl Plain<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Plain::Borrowed(b) => b,
            Plain::Owned(b) => b,
        }
    }
}

/// The source of a value the person corrected through a rectification
/// request (GDPR Art. 16, CCPA §1798.106): accepted for every category, and
/// only from that request's execution (never from a caller's write).
pub const SUBJECT_CORRECTION: &str = "subject_correction";

/// How a batch is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// The whole batch or nothing.
    AllOrNothing,
    /// Each value on its own.
    Each,
    /// A rectification's corrections: all or nothing, source [`SUBJECT_CORRECTION`].
    Correction,
}

impl<S: Store> Vault<S> {
    /// Writes one value as the controller.
    pub fn put(&self, put: &Put<'_>, by: &By) -> Result<u32, VaultError> {
        Ok(self.put_batch(std::slice::from_ref(put), CONTROLLER, None, by)?.first().copied().unwrap_or(0))
    }

    /// Writes many values in one transaction: all or nothing. Items are
    /// grouped by subject (one key unwrap and one audit entry per subject).
    /// Returns each item's version, in input order. A service key's `scope`
    /// limits the purposes it may collect for, as it limits its reads (a
    /// value collected for another purpose is denied `purpose_not_bound`).
    pub fn put_batch(
        &self,
        puts: &[Put<'_>],
        actor: &str,
        scope: Option<&KeyScope>,
        by: &By,
    ) -> Result<Vec<u32>, VaultError> {
        self.write_items(puts, Access { actor, scope, operation: Operation::Write }, WriteMode::AllOrNothing, by)?
            .into_iter()
            .collect()
    }

    /// Writes every value that passes validation and the decision on its own,
    /// in one transaction, and reports each item's outcome in input order: a
    /// bad item neither stops nor changes the others. Denials are audited.
    pub fn put_each(
        &self,
        puts: &[Put<'_>],
        actor: &str,
        scope: Option<&KeyScope>,
        by: &By,
    ) -> Result<Vec<Result<u32, VaultError>>, VaultError> {
        self.write_items(puts, Access { actor, scope, operation: Operation::Write }, WriteMode::Each, by)
    }

    /// Checks one value's input against the policy (no store access).
    pub(crate) fn validate_put(
        &self,
        p: &Put<'_>,
        mode: WriteMode,
    ) -> Result<(SubjectId, PurposeId, CategoryId), VaultError> {
        let (purpose, category) = self.resolve(p.purpose, Some(p.category))?;
        let category = category.ok_or_else(|| VaultError::from(InputError::CategoryMissing))?;
        let cdoc = self.policy.category_doc(category);
        let correction = mode == WriteMode::Correction && p.source == SUBJECT_CORRECTION;
        if !correction && !cdoc.sources.iter().any(|s| s.value == p.source) {
            return Err(if self.policy.has_source(p.source) {
                InputError::SourceNotForCategory { source_id: p.source.into(), category: p.category.into() }.into()
            } else {
                invalid_ref(PolicyIdKind::Source, p.source, self.policy.document().sources.iter().map(|s| &s.id.value))
            });
        }
        if p.value.is_empty() {
            return Err(InputError::EmptyValue { category: p.category.into() }.into());
        }
        if p.value.len() > MAX_VALUE_BYTES {
            return Err(InputError::ValueTooLarge { category: p.category.into(), max: MAX_VALUE_BYTES }.into());
        }
        let sid = SubjectId::parse(p.subject).map_err(InputError::SubjectId)?;
        Ok((sid, purpose, category))
    }

    /// Prepares one validated, allowed value: the item to write and the bytes
    /// to seal once the store has numbered its version.
    pub(crate) fn prepare_item<'p>(
        &self,
        sid: &SubjectId,
        category: CategoryId,
        p: &Put<'p>,
        now: Timestamp,
    ) -> Result<(NewItem, Plain<'p>), VaultError> {
        let (plain, token) = match self.policy.tokenization(category) {
            Some(_) => {
                let pan = card::normalise_pan(p.value)
                    .map_err(|reason| InputError::CardNumber { category: p.category.into(), reason })?;
                (Plain::Owned(card::payload(&pan)), Some(new_token()?))
            }
            None => (Plain::Borrowed(p.value.as_bytes()), None),
        };
        let item = NewItem {
            subject: sid.clone(),
            category: p.category.to_string(),
            source: p.source.to_string(),
            purpose: p.purpose.to_string(),
            collected_at: now,
            notice_version: self.policy.version().to_string(),
            token,
            lookup: self.lookup_hash(category, p.value)?,
        };
        Ok((item, plain))
    }

    pub(crate) fn write_items(
        &self,
        puts: &[Put<'_>],
        access: Access<'_>,
        mode: WriteMode,
        by: &By,
    ) -> Result<Vec<Result<u32, VaultError>>, VaultError> {
        let actor = access.actor;
        let now = self.clock.now();
        let mut outcome: Vec<Option<Result<u32, VaultError>>> = (0..puts.len()).map(|_| None).collect();
        // Validate everything before touching the store: bad input changes nothing.
        let mut valid = Vec::with_capacity(puts.len());
        for (i, p) in puts.iter().enumerate() {
            match self.validate_put(p, mode) {
                Ok(r) => valid.push((i, r)),
                Err(e) if mode != WriteMode::Each => return Err(e),
                Err(e) => outcome[i] = Some(Err(e)),
            }
        }
        // Subjects in key order: faster inserts, one key unwrap per subject.
        valid.sort_by(|a, b| a.1.0.cmp(&b.1.0));
        let mut ids: Vec<SubjectId> = valid.iter().map(|(_, r)| r.0.clone()).collect();
        ids.dedup();
        // With the data key of each subject whose metadata was opened, so it is unwrapped once.
        let mut records: HashMap<SubjectId, (SubjectRecord, Option<DataKey>)> =
            self.records(&ids)?.into_iter().map(|(r, k)| (r.subject.id.clone(), (r, k))).collect();

        let mut items = Vec::with_capacity(valid.len());
        let mut positions = Vec::with_capacity(valid.len());
        let mut writes: Vec<AuditEvent> = Vec::with_capacity(ids.len());
        let mut denials = Vec::new();
        // The data key of each subject written, and per item its key and bytes to seal.
        let mut keys: Vec<DataKey> = Vec::with_capacity(ids.len());
        let mut plains: Vec<(usize, Plain<'_>)> = Vec::with_capacity(valid.len());
        let mut current: Option<(&SubjectId, Result<usize, VaultError>)> = None;
        let mut last_written: Option<&SubjectId> = None;
        for (i, (sid, purpose, category)) in &valid {
            let p = &puts[*i];
            let attempt = (|| {
                let (record, opened) = records.get_mut(sid).ok_or(VaultError::SubjectNotFound)?;
                self.check(&record.subject, *purpose, *category, access, now, &mut denials, by)
                    .map_err(VaultError::Denied)?;
                if current.as_ref().is_none_or(|(s, _)| *s != sid) {
                    let key = match (opened.take(), record.wrapped_key.as_deref()) {
                        (_, None) => Err(erased_denial()),
                        (Some(k), Some(_)) => Ok(k),
                        (None, Some(w)) => self.keys.unwrap_data_key(sid.as_str(), w).map_err(VaultError::from),
                    }
                    .map(|k| {
                        keys.push(k);
                        keys.len() - 1
                    });
                    current = Some((sid, key));
                }
                let key = match current.as_ref().map(|(_, k)| k) {
                    Some(Ok(k)) => *k,
                    Some(Err(VaultError::Crypto(e))) => return Err(VaultError::Crypto(e.clone())),
                    Some(Err(_)) | None => return Err(erased_denial()),
                };
                self.prepare_item(sid, *category, p, now).map(|(item, plain)| (item, key, plain))
            })();
            match attempt {
                Ok((item, key, plain)) => {
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
                            let mut ev = self.event(now, AuditAction::DataWritten, actor, sid.as_str(), by);
                            ev.purpose = Some(p.purpose.to_string());
                            ev.categories = vec![p.category.to_string()];
                            writes.push(ev);
                            last_written = Some(sid);
                        }
                    }
                    items.push(item);
                    plains.push((key, plain));
                    positions.push(*i);
                }
                Err(e) if mode != WriteMode::Each => {
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
            // Sealed inside the store's transaction, once it has numbered the
            // version, so each ciphertext is bound to its version.
            let seal = |index: usize, version: u32| {
                let (item, (key, plain)) = items.get(index).zip(plains.get(index)).ok_or_else(|| {
                    custos_store::StoreError::Backend("the store asked to seal an item it was not given".into())
                })?;
                let key = keys.get(*key).ok_or_else(|| custos_store::StoreError::Backend("no data key".into()))?;
                key.seal_item(item.subject.as_str(), &item.category, version, plain.bytes())
                    .map_err(|_| custos_store::StoreError::Backend("sealing an item value failed".into()))
            };
            let versions = self.store.put_items(&items, &seal, &writes).map_err(|e| match e {
                // Only reachable if a subject was erased between the decision and the write.
                custos_store::StoreError::SubjectErased | custos_store::StoreError::SubjectNotFound => erased_denial(),
                other => other.into(),
            })?;
            for (pos, v) in positions.into_iter().zip(versions) {
                outcome[pos] = Some(Ok(v));
            }
        }
        Ok(outcome.into_iter().map(|o| o.unwrap_or(Ok(0))).collect())
    }
}
