//! Binding a keyring and a policy to a store, and rotating the master key.
//!
//! A store remembers the master key it is keyed by (key id and key-check
//! value) and the notice it was created with. [`bind_store`] runs before
//! anything else touches the store: it refuses a master key that does not
//! match (so a wrong or new key can neither read nor write), refuses a policy
//! of another notice, adopts a newer version of the same notice (audited) and
//! refuses an older one. A store from before identities were recorded gets
//! its identity on first bind, from the key that opens its data — after
//! checking that the key does open one of its wrapped data keys.
//!
//! **Notice versions.** The same notice at a newer version (compared segment
//! by segment, numbers as numbers: `2020-01-24` < `2021-03-01`, `1.9` <
//! `1.10`) is adopted: recorded by compare-and-swap with a
//! `notice_version_adopted` audit entry, after which the older version is
//! refused. Items keep the version they were collected under; keeping every
//! version of a notice (for rights and governance) is left to those features.
//!
//! **Rotation** ([`Vault::rotate_master_key`]): with the new key as the master
//! key and the old one as the previous key, every data key still wrapped under
//! the old key is re-wrapped under the new one, in audited compare-and-swap
//! batches; then the key check moves to the new key, together with the
//! derivation root sealed under it (so pseudonyms and derived keys do not
//! change). Servers running with both keys read every data key throughout.

use custos_core::Policy;
use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::subject::SubjectId;
use custos_core::time::Timestamp;
use custos_crypto::Keyring;
use custos_store::{KeyCheck, Rewrap, Store, StoreIdentity};

use crate::{CONTROLLER, Vault, VaultError};

/// Why a store refuses a master key or a policy, or a rotation cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The master key is not the one the store is keyed by.
    #[error(
        "the master key does not match this store: the store is keyed by master key {recorded}, this is key \
         {given}; use the master key the data was written with (CUSTOS_MASTER_KEY or the key file), or, during a \
         rotation, pass the old key as the previous key"
    )]
    WrongMasterKey {
        /// The recorded key id, hex.
        recorded: String,
        /// The given key id, hex.
        given: String,
    },
    /// The store predates key checks, and the key does not open its data.
    #[error(
        "the master key does not open the data already in this store (a stored data key failed to unwrap); use the \
         master key the data was written with"
    )]
    KeyDoesNotOpenData,
    /// The policy's notice is another one than the store was created with.
    #[error(
        "this data directory or database was created with notice `{recorded}` (version {version}), but the policy \
         in force is notice `{given}`; pass --policy <file> with the policy of notice `{recorded}`"
    )]
    OtherNotice {
        /// The recorded notice id.
        recorded: String,
        /// Its version in force.
        version: String,
        /// The policy's notice id.
        given: String,
    },
    /// The policy's notice version is older than the one in force.
    #[error(
        "this data directory or database uses notice `{notice}` version {recorded}, and the policy in force has \
         version {given}, which is not newer; pass --policy <file> with version {recorded} or a newer one"
    )]
    OlderNotice {
        /// The notice id.
        notice: String,
        /// The version in force.
        recorded: String,
        /// The policy's version.
        given: String,
    },
    /// A rotation was asked for without a previous key.
    #[error(
        "a rotation needs the new key as the master key and the old one as the previous key \
         (CUSTOS_MASTER_KEY_PREVIOUS or --previous-master-key-file)"
    )]
    NoPreviousKey,
    /// Data keys under the old key kept appearing while rotating.
    #[error(
        "{0} data key(s) are still wrapped under the previous master key after re-wrapping; is a process running \
         with only the old key? Restart every server with both keys and run the rotation again"
    )]
    Stragglers(u64),
    /// Another process rotated the store to a master key this one does not hold.
    #[error(
        "the store's master key was rotated (to key {recorded}) by another process; this process holds only key \
         {held}: restart it with the new master key (CUSTOS_MASTER_KEY) and the old one as the previous key"
    )]
    RotatedAway {
        /// The key id the store is keyed by now, hex.
        recorded: String,
        /// The key id this process wraps with, hex.
        held: String,
    },
}

impl From<IdentityError> for VaultError {
    fn from(e: IdentityError) -> Self {
        VaultError::Identity(e)
    }
}

/// What [`bind_store`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    /// The identity was recorded now (a new store, or one from before identities).
    pub recorded: bool,
    /// The store is still keyed by the previous key: a rotation is under way.
    pub rotation_pending: bool,
    /// A newer notice version adopted now: (from, to).
    pub adopted_notice: Option<(String, String)>,
}

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Data keys re-wrapped under the new master key.
    pub rewrapped: u64,
    /// Batches committed (each with one audit entry).
    pub batches: u64,
    /// The key check moved to the new key now (false if it had already).
    pub key_check_moved: bool,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn current_check(keys: &Keyring) -> KeyCheck {
    KeyCheck { key_id: keys.key_id().to_vec(), check: keys.key_check().to_vec(), sealed_root: None }
}

fn event(at: Timestamp, action: AuditAction, key_id: &[u8], notice_version: &str) -> AuditEvent {
    let mut ev = AuditEvent::new(at, action, CONTROLLER);
    ev.key = Some(format!("master-{}", hex(key_id)));
    ev.notice_version = Some(notice_version.to_string());
    ev
}

/// Checks `keys` and `policy` against what `store` remembers (recording it
/// on a store that has none), and adopts the store's derivation root into
/// `keys`. Call it before building the vault; nothing else may touch the
/// store before it succeeds.
pub fn bind_store<S: Store + ?Sized>(
    store: &S,
    keys: &mut Keyring,
    policy: &Policy,
    now: Timestamp,
) -> Result<Binding, VaultError> {
    let notice_id = policy.document().notice.id.value.clone();
    let version = policy.version().to_string();
    let mut binding = Binding::default();
    let identity = match store.store_identity()? {
        Some(identity) => identity,
        None => {
            let mut key = current_check(keys);
            if let Some(sample) = store.wrapped_keys(None, 1)?.into_iter().next() {
                match keys.opening_key(sample.subject.as_str(), &sample.wrapped) {
                    Some(id) if id == keys.key_id() => {}
                    Some(_) => {
                        if let Some((id, check)) = keys.previous_key() {
                            key = KeyCheck { key_id: id.to_vec(), check: check.to_vec(), sealed_root: None };
                        }
                    }
                    None => return Err(IdentityError::KeyDoesNotOpenData.into()),
                }
            }
            let mine =
                StoreIdentity { key, notice_id: notice_id.clone(), notice_version: version.clone(), created_at: now };
            let ev = event(now, AuditAction::StoreIdentityRecorded, &mine.key.key_id, &version);
            let in_force = store.record_store_identity(&mine, &[ev])?;
            binding.recorded = in_force == mine;
            in_force
        }
    };
    binding.rotation_pending = adopt_key(keys, &identity.key)?;
    binding.adopted_notice = check_notice(store, &identity, &notice_id, &version, now)?;
    Ok(binding)
}

/// Accepts the store's key check if it is the current key's (or the previous
/// key's, during a rotation: returns true), adopting the derivation root.
fn adopt_key(keys: &mut Keyring, recorded: &KeyCheck) -> Result<bool, VaultError> {
    if recorded.key_id == keys.key_id() && recorded.check == keys.key_check() {
        if let Some(root) = &recorded.sealed_root {
            keys.adopt_root(root)?;
        }
        return Ok(false);
    }
    if let Some((id, check)) = keys.previous_key()
        && recorded.key_id == id
        && recorded.check == check
    {
        match &recorded.sealed_root {
            Some(root) => keys.adopt_root(root)?,
            None => keys.adopt_previous_root()?,
        }
        return Ok(true);
    }
    Err(IdentityError::WrongMasterKey { recorded: hex(&recorded.key_id), given: hex(&keys.key_id()) }.into())
}

fn check_notice<S: Store + ?Sized>(
    store: &S,
    identity: &StoreIdentity,
    notice_id: &str,
    version: &str,
    now: Timestamp,
) -> Result<Option<(String, String)>, VaultError> {
    if identity.notice_id != notice_id {
        return Err(IdentityError::OtherNotice {
            recorded: identity.notice_id.clone(),
            version: identity.notice_version.clone(),
            given: notice_id.to_string(),
        }
        .into());
    }
    if identity.notice_version == version {
        return Ok(None);
    }
    let older = || IdentityError::OlderNotice {
        notice: notice_id.to_string(),
        recorded: identity.notice_version.clone(),
        given: version.to_string(),
    };
    if compare_versions(version, &identity.notice_version) != std::cmp::Ordering::Greater {
        return Err(older().into());
    }
    let ev = event(now, AuditAction::NoticeVersionAdopted, &identity.key.key_id, version);
    if store.adopt_notice_version(notice_id, &identity.notice_version, version, &[ev])? {
        return Ok(Some((identity.notice_version.clone(), version.to_string())));
    }
    // Another process adopted a version meanwhile: judge against that one.
    match store.store_identity()? {
        Some(now_in_force) if now_in_force.notice_id == notice_id && now_in_force.notice_version == version => Ok(None),
        _ => Err(older().into()),
    }
}

/// Orders notice versions segment by segment (split at anything not a letter
/// or digit), numbers as numbers, text as text; a longer version with an
/// equal prefix is newer.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let segments = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()).map(str::to_string).collect()
    };
    let (a, b) = (segments(a), segments(b));
    for (x, y) in a.iter().zip(&b) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// How many passes over the data keys a rotation makes at most.
const ROTATION_PASSES: usize = 3;

impl<S: Store> Vault<S> {
    /// Re-wraps every data key under the current master key, `batch` keys per
    /// audited transaction, then moves the store's key check to the current
    /// key. The vault must hold the previous key (the store's) too. Safe to
    /// run again after an interruption; online: a process holding both keys
    /// reads every data key before, during and after.
    pub fn rotate_master_key(&self, batch: usize) -> Result<Rotation, VaultError> {
        if self.keys.previous_key().is_none() {
            return Err(IdentityError::NoPreviousKey.into());
        }
        let batch = batch.clamp(1, 10_000);
        let version = self.policy.version().to_string();
        let mut done = Rotation::default();
        for _ in 0..ROTATION_PASSES {
            self.rewrap_pass(batch, &version, &mut done)?;
            if self.count_old_keys(batch)? == 0 {
                break;
            }
        }
        let stragglers = self.count_old_keys(batch)?;
        if stragglers > 0 {
            return Err(IdentityError::Stragglers(stragglers).into());
        }
        let Some(identity) = self.store.store_identity()? else {
            return Err(VaultError::Store(custos_store::corrupt("the store identity is missing")));
        };
        let mut new = current_check(&self.keys);
        if identity.key.key_id == new.key_id && identity.key.check == new.check {
            return Ok(done);
        }
        new.sealed_root = Some(self.keys.seal_root()?);
        let ev = event(self.clock.now(), AuditAction::MasterKeyRotated, &new.key_id, &version);
        done.key_check_moved = self.store.replace_key_check(&identity.key, &new, &[ev])?;
        // A process holding only the old key checks the key check before it
        // wraps a new data key ([`Vault::check_master_key`]), so once the
        // check has moved no new key is wrapped under the old one; one more
        // pass re-wraps any such process wrapped between the last pass and the move.
        self.rewrap_pass(batch, &version, &mut done)?;
        let stragglers = self.count_old_keys(batch)?;
        if stragglers > 0 {
            return Err(IdentityError::Stragglers(stragglers).into());
        }
        Ok(done)
    }

    /// Re-wraps, in audited batches, every live data key not under the current master key.
    fn rewrap_pass(&self, batch: usize, version: &str, done: &mut Rotation) -> Result<(), VaultError> {
        let mut after: Option<SubjectId> = None;
        loop {
            let page = self.store.wrapped_keys(after.as_ref(), batch)?;
            let Some(last) = page.last() else { return Ok(()) };
            after = Some(last.subject.clone());
            let mut rewraps = Vec::with_capacity(page.len());
            for k in page {
                if let Some(new) = self.keys.rewrap_data_key(k.subject.as_str(), &k.wrapped)? {
                    rewraps.push(Rewrap { subject: k.subject, old: k.wrapped, new });
                }
            }
            if rewraps.is_empty() {
                continue;
            }
            let now = self.clock.now();
            let ev = event(now, AuditAction::DataKeysRewrapped, &self.keys.key_id(), version);
            let replaced = self.store.rewrap_keys(&rewraps, &[ev])?;
            // A key that did not swap was erased meanwhile (or re-wrapped by another rotation).
            done.rewrapped += replaced;
            done.batches += 1;
        }
    }

    /// Refuses when the store is keyed by a master key this process does not
    /// wrap with or hold as the previous key: another process rotated the
    /// store while this one kept running with the old key. Checked before a
    /// new data key is wrapped (a key wrapped under the old master key after a
    /// rotation would become unreadable once the old key is destroyed) and by
    /// the server's readiness check. One read of the store identity.
    pub fn check_master_key(&self) -> Result<(), VaultError> {
        // A store no process has bound yet has nothing to compare against
        // ([`bind_store`] records the identity before any other use).
        let Some(identity) = self.store.store_identity()? else {
            return Ok(());
        };
        let recorded = &identity.key;
        let current = recorded.key_id == self.keys.key_id() && recorded.check == self.keys.key_check();
        let previous =
            self.keys.previous_key().is_some_and(|(id, check)| recorded.key_id == id && recorded.check == check);
        if current || previous {
            return Ok(());
        }
        Err(IdentityError::RotatedAway { recorded: hex(&recorded.key_id), held: hex(&self.keys.key_id()) }.into())
    }

    /// Live data keys not wrapped under the current master key.
    fn count_old_keys(&self, batch: usize) -> Result<u64, VaultError> {
        let mut after: Option<SubjectId> = None;
        let mut old = 0;
        loop {
            let page = self.store.wrapped_keys(after.as_ref(), batch)?;
            let Some(last) = page.last() else { return Ok(old) };
            after = Some(last.subject.clone());
            old += page.iter().filter(|k| !self.keys.is_current(&k.wrapped)).count() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::compare_versions;
    use std::cmp::Ordering::*;

    #[test]
    fn notice_versions_compare_by_segments_numbers_as_numbers() {
        assert_eq!(compare_versions("2021-03-01", "2020-01-24"), Greater);
        assert_eq!(compare_versions("2020-01-24", "2020-01-24"), Equal);
        assert_eq!(compare_versions("1.10", "1.9"), Greater);
        assert_eq!(compare_versions("v2", "v1"), Greater);
        assert_eq!(compare_versions("2020-01-24", "2020-01-24.1"), Less);
    }
}
