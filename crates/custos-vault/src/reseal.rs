//! Binding every stored item value to its version (issue 8, defect 10).
//!
//! Values are sealed with associated data naming subject, category and
//! version ([`custos_crypto::DataKey::seal_item`]), so an old version's
//! ciphertext copied into the current row does not open. Values written
//! before were bound to subject and category only; reads refuse them.
//! [`Vault::bind_item_versions`] re-seals them, run when a process opens the
//! store (before serving, like [`Vault::seal_legacy_subjects`]): it pages
//! through every stored version in key order, opens each legacy value with
//! the legacy associated data and seals it again for its version, in
//! audited compare-and-swap batches (an entry per batch with the count, no
//! value), then records in the store that every value is bound. It is safe
//! to interrupt and run again: values already bound are recognised by their
//! format byte and skipped, and a swap only replaces the bytes it read. Once
//! recorded, the store is not scanned again (one read of the mark per open).

use std::collections::HashMap;

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::subject::SubjectId;
use custos_crypto::{DataKey, is_legacy_item};
use custos_store::{ItemKey, Reseal, Store};

use crate::{By, CONTROLLER, Vault, VaultError};

/// Item versions re-sealed per audited transaction.
pub const RESEAL_BATCH: usize = 500;

/// What [`Vault::bind_item_versions`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resealing {
    /// The store was already recorded as bound: nothing was scanned.
    pub already_bound: bool,
    /// Legacy values re-sealed bound to their versions.
    pub resealed: u64,
    /// Batches committed (each with one audit entry).
    pub batches: u64,
    /// Legacy values that did not open (damaged, or tampered with before):
    /// left as they are, and refused like any value that does not open.
    pub unreadable: u64,
}

impl<S: Store> Vault<S> {
    /// Re-seals every legacy item value bound to its version, `batch` per
    /// audited transaction, then records that the store's values are bound
    /// (audited). Idempotent and resumable; a no-op once recorded.
    pub fn bind_item_versions(&self, batch: usize, by: &By) -> Result<Resealing, VaultError> {
        let mut done = Resealing::default();
        if self.store.items_bound()? {
            done.already_bound = true;
            return Ok(done);
        }
        let batch = batch.clamp(1, 10_000);
        let mut after: Option<ItemKey> = None;
        let mut any_items = false;
        loop {
            let page = self.store.sealed_items(after.as_ref(), batch)?;
            let Some(last) = page.last() else { break };
            any_items = true;
            after = Some(last.key.clone());
            let legacy: Vec<_> = page.into_iter().filter(|i| is_legacy_item(&i.sealed)).collect();
            if legacy.is_empty() {
                continue;
            }
            let mut ids: Vec<SubjectId> = legacy.iter().map(|i| i.key.subject.clone()).collect();
            ids.dedup();
            let mut keys: HashMap<SubjectId, DataKey> = HashMap::with_capacity(ids.len());
            for record in self.store.subjects(&ids)? {
                if let Some(wrapped) = record.wrapped_key.as_deref() {
                    let key = self.keys.unwrap_data_key(record.subject.id.as_str(), wrapped)?;
                    keys.insert(record.subject.id, key);
                }
            }
            let mut reseals = Vec::with_capacity(legacy.len());
            for item in legacy {
                let k = &item.key;
                // No key: the subject was erased meanwhile, and its items with it.
                let Some(key) = keys.get(&k.subject) else { continue };
                let Ok(plain) = key.open_legacy_item(k.subject.as_str(), &k.category, &item.sealed) else {
                    done.unreadable += 1;
                    continue;
                };
                let new = key.seal_item(k.subject.as_str(), &k.category, k.version, &plain)?;
                reseals.push(Reseal { key: item.key, old: item.sealed, new });
            }
            if reseals.is_empty() {
                continue;
            }
            let ev = self.maintenance_event(AuditAction::ItemsResealed, reseals.len() as u64, by);
            done.resealed += self.store.reseal_items(&reseals, &[ev])?;
            done.batches += 1;
        }
        // A store that holds no item (a new one) had nothing unbound: it is
        // marked without an audit entry, as nothing about its data changed.
        let events =
            if any_items { vec![self.maintenance_event(AuditAction::ItemsBound, done.resealed, by)] } else { vec![] };
        self.store.mark_items_bound(&events)?;
        Ok(done)
    }

    fn maintenance_event(&self, action: AuditAction, count: u64, by: &By) -> AuditEvent {
        let mut ev = AuditEvent::new(self.clock.now(), action, CONTROLLER);
        ev.by = Some(by.audit_label());
        ev.notice_version = Some(self.policy.version().to_string());
        ev.count = Some(count);
        ev
    }
}
