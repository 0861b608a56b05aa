//! Wrapped data keys that name the master key they are wrapped under, the
//! key-check value a store keeps of its master key, and the previous master
//! key a keyring holds during a rotation.
//!
//! **Wrapped-key formats.** Format 1 (`0x01 ‖ nonce ‖ ciphertext ‖ tag`,
//! associated data `custos-dk-v1\0 ‖ subject`) names no key. Format 2, written
//! since key rotation exists, is `0x02 ‖ key id (8 bytes) ‖ nonce ‖ ciphertext
//! ‖ tag` with associated data `custos-dk-v2\0 ‖ key id ‖ subject`. Both
//! unwrap; new keys are always wrapped in format 2 under the current master key.
//!
//! **Key id and key-check value.** Both are derived from the master key with
//! HKDF under their own labels: the key id (8 bytes, public) tells which
//! master key wrapped a data key; the key-check value (HMAC-SHA256 of a fixed
//! label under a derived key, 32 bytes) lets a store refuse any other master
//! key before anything is read or written. Neither reveals the key.
//!
//! **Rotation.** A keyring built with [`Keyring::with_previous`] wraps with
//! the current master key and unwraps under either (by key id; format-1 keys
//! by trying both), so that a server holding both keys reads every data key
//! while `custos key rotate-master` re-wraps them.
//!
//! **Derivation root.** Pseudonyms and every [`Keyring::derive_subkey`] key
//! come from the HKDF root of the master key the store was created with. A
//! rotation must not change them (the audit log names subjects by pseudonym),
//! so the rotated store keeps that root sealed under the new master key
//! ([`Keyring::seal_root`]) and a keyring adopts it ([`Keyring::adopt_root`]).

use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::{CryptoError, DataKey, FORMAT_V1, KEY_LEN, Keyring, MasterKey, expand, open_with, seal_with};

/// Length of a master key id, in bytes.
pub const KEY_ID_LEN: usize = 8;

/// Which master key wrapped a data key: derived from the master key, public.
pub type KeyId = [u8; KEY_ID_LEN];

const FORMAT_V2: u8 = 2;
const ROOT_AAD: &[u8] = b"custos-derivation-root-v1\0";

/// What a keyring knows about its master key beyond the working keys.
pub(crate) struct Ext {
    id: KeyId,
    check: [u8; 32],
    /// The HKDF root (PRK) in force, as bytes, so it can be sealed for a rotated store.
    root_secret: Zeroizing<[u8; KEY_LEN]>,
    previous: Option<Box<Keyring>>,
}

impl Ext {
    pub(crate) fn of(master: &MasterKey) -> Result<Ext, CryptoError> {
        let id_key = derive_own(master, b"custos master key id v1")?;
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&id_key[..KEY_ID_LEN]);
        let check_key = derive_own(master, b"custos master key check v1")?;
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &check_key[..]), b"custos key-check value");
        let mut check = [0u8; 32];
        check.copy_from_slice(tag.as_ref());
        Ok(Ext { id, check, root_secret: root_secret(master), previous: None })
    }
}

/// HKDF-Extract is HMAC(salt, key): the same pseudorandom key as `root_of`, as bytes.
fn root_secret(master: &MasterKey) -> Zeroizing<[u8; KEY_LEN]> {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"custos-master-v1"), &master.0[..]);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(tag.as_ref());
    out
}

/// A key tied to the master key itself (not to an adopted root): key ids and checks.
fn derive_own(master: &MasterKey, label: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &root_secret(master)[..]);
    expand(&prk, label)
}

fn aad_v2(id: &KeyId, subject: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(14 + KEY_ID_LEN + subject.len());
    aad.extend_from_slice(b"custos-dk-v2\0");
    aad.extend_from_slice(id);
    aad.extend_from_slice(subject);
    aad
}

fn aad_v1(subject: &[u8]) -> Vec<u8> {
    let mut aad = b"custos-dk-v1\0".to_vec();
    aad.extend_from_slice(subject);
    aad
}

/// The key id a format-2 wrapped key names; `None` for format 1 (or garbage).
pub fn wrapped_key_id(wrapped: &[u8]) -> Option<KeyId> {
    match wrapped.split_first() {
        Some((&FORMAT_V2, rest)) if rest.len() >= KEY_ID_LEN => {
            let mut id = [0u8; KEY_ID_LEN];
            id.copy_from_slice(&rest[..KEY_ID_LEN]);
            Some(id)
        }
        _ => None,
    }
}

impl Keyring {
    /// This keyring's (current) master key id.
    pub fn key_id(&self) -> KeyId {
        self.ext.id
    }

    /// The key-check value of the current master key (32 bytes).
    pub fn key_check(&self) -> [u8; 32] {
        self.ext.check
    }

    /// The previous master key's id and key-check value, during a rotation.
    pub fn previous_key(&self) -> Option<(KeyId, [u8; 32])> {
        self.ext.previous.as_ref().map(|p| (p.ext.id, p.ext.check))
    }

    /// This keyring, also able to unwrap data keys wrapped under `previous`.
    /// Wrapping always uses the current master key. Fails if both are the same key.
    pub fn with_previous(mut self, previous: &MasterKey) -> Result<Keyring, CryptoError> {
        let previous = Keyring::new(previous)?;
        if previous.ext.id == self.ext.id {
            return Err(CryptoError::SameKey);
        }
        self.ext.previous = Some(Box::new(previous));
        Ok(self)
    }

    /// Whether `wrapped` is wrapped (format 2) under the current master key.
    pub fn is_current(&self, wrapped: &[u8]) -> bool {
        wrapped_key_id(wrapped) == Some(self.ext.id)
    }

    /// Which of this keyring's master keys opens `wrapped` for `subject`
    /// (trying both for a format-1 key), or `None`.
    pub fn opening_key(&self, subject: &str, wrapped: &[u8]) -> Option<KeyId> {
        if self.open_own(subject.as_bytes(), wrapped).is_ok() {
            return Some(self.ext.id);
        }
        let previous = self.ext.previous.as_ref()?;
        previous.open_own(subject.as_bytes(), wrapped).ok().map(|_| previous.ext.id)
    }

    /// `wrapped` re-wrapped under the current master key, or `None` if it already is.
    pub fn rewrap_data_key(&self, subject: &str, wrapped: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
        if self.is_current(wrapped) {
            return Ok(None);
        }
        let raw = self.unwrap_raw(subject, wrapped)?;
        self.wrap_raw(subject, &raw[..]).map(Some)
    }

    /// The derivation root in force, sealed under the current master key,
    /// for a store whose master key is being rotated.
    pub fn seal_root(&self) -> Result<Vec<u8>, CryptoError> {
        let root = Zeroizing::new(self.ext.root_secret.to_vec());
        self.wrap_with_aad(ROOT_AAD, &root)
    }

    /// Adopts the derivation root `sealed` (from [`Keyring::seal_root`],
    /// under the current or the previous master key): pseudonyms and derived
    /// keys become those of the store's original master key.
    pub fn adopt_root(&mut self, sealed: &[u8]) -> Result<(), CryptoError> {
        let raw = self.unwrap_with_aad(ROOT_AAD, sealed)?;
        let mut secret = Zeroizing::new([0u8; KEY_LEN]);
        if raw.len() != KEY_LEN {
            return Err(CryptoError::Malformed);
        }
        secret.copy_from_slice(&raw);
        self.install_root(secret)
    }

    /// Adopts the previous master key's derivation root (a store still keyed
    /// by the previous key, before its root was ever sealed).
    pub fn adopt_previous_root(&mut self) -> Result<(), CryptoError> {
        let Some(previous) = self.ext.previous.as_ref() else {
            return Err(CryptoError::UnknownKey);
        };
        let secret = Zeroizing::new(*previous.ext.root_secret);
        self.install_root(secret)
    }

    fn install_root(&mut self, secret: Zeroizing<[u8; KEY_LEN]>) -> Result<(), CryptoError> {
        let root = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret[..]);
        let pseudo = expand(&root, b"custos audit pseudonyms v1")?;
        self.pseudonym = hmac::Key::new(hmac::HMAC_SHA256, &pseudo[..]);
        self.root = root;
        self.ext.root_secret = secret;
        Ok(())
    }

    /// Wraps raw data-key bytes in format 2 under the current master key.
    pub(crate) fn wrap_raw(&self, subject: &str, raw: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.wrap_with_aad(subject.as_bytes(), raw)
    }

    /// Unwraps a format-1 or format-2 key under the current or the previous master key.
    pub(crate) fn unwrap_raw(&self, subject: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.unwrap_with_aad(subject.as_bytes(), wrapped)
    }

    fn wrap_with_aad(&self, label: &[u8], raw: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let inner = seal_with(&self.wrap, &aad_v2(&self.ext.id, label), raw)?;
        let mut out = Vec::with_capacity(inner.len() + KEY_ID_LEN);
        out.push(FORMAT_V2);
        out.extend_from_slice(&self.ext.id);
        out.extend_from_slice(inner.get(1..).ok_or(CryptoError::Malformed)?);
        Ok(out)
    }

    fn unwrap_with_aad(&self, label: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match self.open_own(label, wrapped) {
            Err(CryptoError::UnknownKey) | Err(CryptoError::Unauthentic) if self.ext.previous.is_some() => {
                let previous = self.ext.previous.as_ref().ok_or(CryptoError::UnknownKey)?;
                previous.open_own(label, wrapped)
            }
            other => other,
        }
    }

    /// Opens under this keyring's own master key only.
    fn open_own(&self, label: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match wrapped.first() {
            Some(&FORMAT_V1) => open_with(&self.wrap, &aad_v1(label), wrapped).map(Zeroizing::new),
            Some(&FORMAT_V2) => {
                let id = wrapped_key_id(wrapped).ok_or(CryptoError::Malformed)?;
                if id != self.ext.id {
                    return Err(CryptoError::UnknownKey);
                }
                let mut inner = Vec::with_capacity(wrapped.len() - KEY_ID_LEN);
                inner.push(FORMAT_V1);
                inner.extend_from_slice(&wrapped[1 + KEY_ID_LEN..]);
                open_with(&self.wrap, &aad_v2(&id, label), &inner).map(Zeroizing::new)
            }
            _ => Err(CryptoError::Malformed),
        }
    }
}

/// A data key for `subject` wrapped in format 1, as earlier builds wrapped
/// them: for tests of data written before key ids existed.
#[doc(hidden)]
pub fn new_data_key_v1_for_tests(master: &MasterKey, subject: &str) -> Result<(DataKey, Vec<u8>), CryptoError> {
    let mut raw = Zeroizing::new([0u8; KEY_LEN]);
    crate::fill_random(&mut raw[..])?;
    Ok((DataKey::from_raw(&raw[..])?, wrap_v1_for_tests(master, subject, &raw)?))
}

/// The format-1 wrapping of earlier builds, for tests of their data.
#[doc(hidden)]
pub fn wrap_v1_for_tests(master: &MasterKey, subject: &str, raw: &[u8; KEY_LEN]) -> Result<Vec<u8>, CryptoError> {
    let wrap = crate::derive(master, b"custos wrap data keys v1")?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &wrap[..]).map_err(|_| CryptoError::Malformed)?);
    seal_with(&key, &aad_v1(subject.as_bytes()), raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_context;

    fn master() -> MasterKey {
        MasterKey::generate().unwrap()
    }

    #[test]
    fn new_keys_name_their_master_key_and_old_format_keys_still_open() {
        let m = master();
        let kr = Keyring::new(&m).unwrap();
        let (dk, wrapped) = kr.new_data_key("s1").unwrap();
        assert_eq!(wrapped[0], FORMAT_V2);
        assert_eq!(wrapped_key_id(&wrapped), Some(kr.key_id()));
        assert!(kr.is_current(&wrapped));
        let ctx = item_context("s1", "c");
        let sealed = dk.seal(&ctx, b"v").unwrap();
        assert_eq!(&kr.unwrap_data_key("s1", &wrapped).unwrap().open(&ctx, &sealed).unwrap()[..], b"v");
        assert!(kr.unwrap_data_key("s2", &wrapped).is_err(), "bound to the subject");

        let old = wrap_v1_for_tests(&m, "s1", &[7; KEY_LEN]).unwrap();
        assert_eq!(old[0], FORMAT_V1);
        assert!(kr.unwrap_data_key("s1", &old).is_ok(), "a format-1 key still opens");
        assert!(!kr.is_current(&old));
        let rewrapped = kr.rewrap_data_key("s1", &old).unwrap().unwrap();
        assert!(kr.is_current(&rewrapped));
        assert_eq!(kr.unwrap_raw("s1", &rewrapped).unwrap()[..], [7; KEY_LEN]);
        assert!(kr.rewrap_data_key("s1", &rewrapped).unwrap().is_none());
    }

    #[test]
    fn key_ids_and_checks_differ_per_master_key_and_are_stable() {
        let m = master();
        let a = Keyring::new(&m).unwrap();
        let a2 = Keyring::new(&MasterKey::from_hex(&m.to_hex()).unwrap()).unwrap();
        let b = Keyring::new(&master()).unwrap();
        assert_eq!((a.key_id(), a.key_check()), (a2.key_id(), a2.key_check()));
        assert_ne!(a.key_id(), b.key_id());
        assert_ne!(a.key_check(), b.key_check());
    }

    #[test]
    fn a_rotating_keyring_unwraps_under_both_keys_and_wraps_under_the_new_one() {
        let (old, new) = (master(), master());
        let before = Keyring::new(&old).unwrap();
        let (_, w_old) = before.new_data_key("s1").unwrap();
        let v1 = wrap_v1_for_tests(&old, "s2", &[9; KEY_LEN]).unwrap();
        let both = Keyring::new(&new).unwrap().with_previous(&old).unwrap();
        assert!(both.unwrap_data_key("s1", &w_old).is_ok());
        assert!(both.unwrap_data_key("s2", &v1).is_ok());
        assert_eq!(both.opening_key("s1", &w_old), Some(before.key_id()));
        let re = both.rewrap_data_key("s1", &w_old).unwrap().unwrap();
        let only_new = Keyring::new(&new).unwrap();
        assert!(only_new.unwrap_data_key("s1", &re).is_ok());
        assert_eq!(only_new.unwrap_data_key("s1", &w_old).unwrap_err(), CryptoError::UnknownKey);
        assert!(before.unwrap_data_key("s1", &re).is_err(), "the old key alone cannot open a re-wrapped key");
        assert!(Keyring::new(&new).unwrap().with_previous(&new).is_err());
    }

    #[test]
    fn an_adopted_root_keeps_pseudonyms_and_derived_keys_across_a_rotation() {
        let (old, new) = (master(), master());
        let before = Keyring::new(&old).unwrap();
        let mut both = Keyring::new(&new).unwrap().with_previous(&old).unwrap();
        assert_ne!(both.pseudonym("alice"), before.pseudonym("alice"));
        both.adopt_previous_root().unwrap();
        assert_eq!(both.pseudonym("alice"), before.pseudonym("alice"));
        assert_eq!(*both.derive_subkey(b"x").unwrap(), *before.derive_subkey(b"x").unwrap());
        let sealed = both.seal_root().unwrap();
        let mut after = Keyring::new(&new).unwrap();
        after.adopt_root(&sealed).unwrap();
        assert_eq!(after.pseudonym("alice"), before.pseudonym("alice"));
        assert_eq!(*after.derive_subkey(b"x").unwrap(), *before.derive_subkey(b"x").unwrap());
        assert!(Keyring::new(&master()).unwrap().adopt_root(&sealed).is_err());
        // Adopting one's own root changes nothing: the byte root is the extracted PRK.
        let mut own = Keyring::new(&old).unwrap();
        let own_sealed = own.seal_root().unwrap();
        own.adopt_root(&own_sealed).unwrap();
        assert_eq!(own.pseudonym("bob"), before.pseudonym("bob"));
        assert_eq!(*own.derive_subkey(b"y").unwrap(), *before.derive_subkey(b"y").unwrap());
    }
}
