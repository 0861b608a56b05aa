//! Envelope encryption for Custos, as a thin layer over `ring`.
//!
//! - The [`MasterKey`] never encrypts personal values itself. Keys derived from
//!   it with HKDF-SHA256 wrap per-subject data keys ([`Keyring::wrap`]),
//!   pseudonymise subject ids for the audit log ([`Keyring::pseudonym`]).
//! - Each subject has a random 256-bit [`DataKey`]; values are sealed with
//!   AES-256-GCM under it, with associated data binding the ciphertext to its
//!   subject and category, so a sealed value moved to another row fails to open.
//! - Nonces are 96 random bits drawn from a per-thread buffer filled by the
//!   OS CSPRNG (one system call per 341 nonces), because a system call per seal
//!   costs more than the cipher (see `reference/limits.md`).
//!
//! No primitive is implemented here; everything is `ring`.

pub mod signing;

use std::cell::RefCell;
use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

mod wrap;
pub use wrap::{KEY_ID_LEN, KeyId, new_data_key_v1_for_tests, wrap_v1_for_tests, wrapped_key_id};

/// Length of every key, in bytes.
pub const KEY_LEN: usize = 32;
const FORMAT_V1: u8 = 1;
const TAG_LEN: usize = 16;

/// What can go wrong. Messages never contain key material or values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The master key text is not 64 hexadecimal characters.
    #[error("the master key must be 64 hexadecimal characters (32 bytes)")]
    BadMasterKey,
    /// A ciphertext failed authentication: wrong key, wrong row, or tampering.
    #[error("a sealed value failed authentication (wrong key, moved, or tampered with)")]
    Unauthentic,
    /// A ciphertext is malformed or of an unknown format version.
    #[error("a sealed value is malformed or of an unknown format")]
    Malformed,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A wrapped key names a master key this keyring does not hold.
    #[error("a wrapped key was made with another master key (its key id is not this keyring's)")]
    UnknownKey,
    /// The previous master key given is the current one.
    #[error("the previous master key is the same as the current one")]
    SameKey,
    /// A public key is not a 32-byte Ed25519 key (in base64url, for a JWK).
    #[error("a public key is not a 32-byte Ed25519 key")]
    BadPublicKey,
}

/// The master key: 32 secret bytes, zeroed on drop, never printed.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> Result<MasterKey, CryptoError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut k[..])?;
        Ok(MasterKey(k))
    }

    /// Parses 64 hexadecimal characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<MasterKey, CryptoError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text.trim(), &mut k[..]).map_err(|_| CryptoError::BadMasterKey)?;
        Ok(MasterKey(k))
    }

    /// The key as 64 hexadecimal characters, for writing a key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&self.0[..]))
    }
}

/// Keys derived from the master key, ready to use.
pub struct Keyring {
    wrap: LessSafeKey,
    pseudonym: hmac::Key,
    /// The HKDF pseudorandom key extracted from the master key, from which
    /// every other purpose's key is derived by its own label.
    root: hkdf::Prk,
    /// Key id, key-check value, previous master key (see `wrap.rs`).
    ext: wrap::Ext,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

fn root_of(master: &MasterKey) -> hkdf::Prk {
    hkdf::Salt::new(hkdf::HKDF_SHA256, b"custos-master-v1").extract(&master.0[..])
}

fn derive(master: &MasterKey, label: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    expand(&root_of(master), label)
}

fn expand(prk: &hkdf::Prk, label: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let info = [label];
    let okm = prk.expand(&info, Len32).map_err(|_| CryptoError::Malformed)?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    okm.fill(&mut out[..]).map_err(|_| CryptoError::Malformed)?;
    Ok(out)
}

impl Keyring {
    /// Derives the working keys from the master key.
    pub fn new(master: &MasterKey) -> Result<Keyring, CryptoError> {
        let wrap = derive(master, b"custos wrap data keys v1")?;
        let pseudo = derive(master, b"custos audit pseudonyms v1")?;
        let wrap = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &wrap[..]).map_err(|_| CryptoError::Malformed)?);
        let pseudonym = hmac::Key::new(hmac::HMAC_SHA256, &pseudo[..]);
        Ok(Keyring { wrap, pseudonym, root: root_of(master), ext: wrap::Ext::of(master)? })
    }

    /// A 256-bit key for one purpose, derived from the master key with
    /// HKDF-SHA256 under `label` (e.g. `b"custos idempotency fingerprints v1"`).
    /// Distinct labels give independent keys; the same label always gives the
    /// same key for the same master key.
    pub fn derive_subkey(&self, label: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
        expand(&self.root, label)
    }

    /// A new random data key for `subject`, and the same key wrapped for storage.
    pub fn new_data_key(&self, subject: &str) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut raw[..])?;
        let wrapped = self.wrap_raw(subject, &raw[..])?;
        Ok((DataKey::from_raw(&raw[..])?, wrapped))
    }

    /// Unwraps a stored data key of `subject`.
    pub fn unwrap_data_key(&self, subject: &str, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let raw = self.unwrap_raw(subject, wrapped)?;
        if raw.len() != KEY_LEN {
            return Err(CryptoError::Malformed);
        }
        DataKey::from_raw(&raw)
    }

    /// A stable pseudonym for a subject id (HMAC-SHA256, 128 bits, hex), for
    /// the audit log: the same subject always maps to the same pseudonym, and
    /// it cannot be reversed without the master key.
    pub fn pseudonym(&self, subject: &str) -> String {
        let tag = hmac::sign(&self.pseudonym, subject.as_bytes());
        hex::encode(&tag.as_ref()[..16])
    }
}

/// A subject's data key.
pub struct DataKey(LessSafeKey);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    fn from_raw(raw: &[u8]) -> Result<DataKey, CryptoError> {
        Ok(DataKey(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, raw).map_err(|_| CryptoError::Malformed)?)))
    }

    /// Seals `plaintext`; `context` (subject and category) is authenticated, not stored.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.0, context, plaintext)
    }

    /// Opens a sealed value under the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.0, context, sealed).map(Zeroizing::new)
    }

    /// Seals an item value as `version` of (subject, category): format
    /// [`ITEM_FORMAT_BOUND`], associated data [`bound_item_context`]. A copy
    /// moved to another subject, category or version does not open.
    pub fn seal_item(
        &self,
        subject: &str,
        category: &str,
        version: u32,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        seal_as(&self.0, ITEM_FORMAT_BOUND, &bound_item_context(subject, category, version), plaintext)
    }

    /// Opens an item value sealed by [`DataKey::seal_item`] for exactly this
    /// subject, category and version. A legacy (unbound) ciphertext is
    /// refused ([`CryptoError::Unauthentic`]): it could be any version's.
    pub fn open_item(
        &self,
        subject: &str,
        category: &str,
        version: u32,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match sealed.first() {
            Some(&ITEM_FORMAT_BOUND) => {
                open_as(&self.0, ITEM_FORMAT_BOUND, &bound_item_context(subject, category, version), sealed)
                    .map(Zeroizing::new)
            }
            Some(&FORMAT_V1) => Err(CryptoError::Unauthentic),
            _ => Err(CryptoError::Malformed),
        }
    }

    /// Opens a legacy item value (format 1, bound to subject and category
    /// only). For re-sealing a store's legacy items, nothing else.
    pub fn open_legacy_item(
        &self,
        subject: &str,
        category: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(&item_context(subject, category), sealed)
    }
}

/// The leading byte of an item value bound to its version ([`DataKey::seal_item`]).
pub const ITEM_FORMAT_BOUND: u8 = 2;

/// Whether a sealed item value is in the legacy format (bound to subject and
/// category, not version). Reads refuse it; a store's legacy items are re-sealed.
pub fn is_legacy_item(sealed: &[u8]) -> bool {
    sealed.first() == Some(&FORMAT_V1)
}

/// Associated data for an item value bound to its version:
/// `custos-item-v2 \0 subject \0 category \0 version (4 bytes, big-endian)`.
/// Subject ids and category ids hold no NUL, so the encoding is unambiguous.
pub fn bound_item_context(subject: &str, category: &str, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(21 + subject.len() + category.len());
    aad.extend_from_slice(b"custos-item-v2\0");
    aad.extend_from_slice(subject.as_bytes());
    aad.push(0);
    aad.extend_from_slice(category.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// Associated data for a legacy sealed item value (format 1): binds it to
/// subject and category only. New values use [`DataKey::seal_item`].
pub fn item_context(subject: &str, category: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + subject.len() + category.len());
    aad.extend_from_slice(b"custos-item-v1\0");
    aad.extend_from_slice(subject.as_bytes());
    aad.push(0);
    aad.extend_from_slice(category.as_bytes());
    aad
}

fn seal_with(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    seal_as(key, FORMAT_V1, aad, plaintext)
}

fn seal_as(key: &LessSafeKey, format: u8, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce = next_nonce()?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(format);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let (head, body) = out.split_at_mut(1 + NONCE_LEN);
    let _ = head;
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
        .map_err(|_| CryptoError::Malformed)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

fn open_with(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    open_as(key, FORMAT_V1, aad, sealed)
}

fn open_as(key: &LessSafeKey, format: u8, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let Some((&found, rest)) = sealed.split_first() else {
        return Err(CryptoError::Malformed);
    };
    if found != format {
        return Err(CryptoError::Malformed);
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
    let mut buf = ct.to_vec();
    let len = match key.open_in_place(nonce, Aad::from(aad), &mut buf) {
        Ok(plain) => plain.len(),
        Err(_) => {
            buf.zeroize();
            return Err(CryptoError::Unauthentic);
        }
    };
    buf.truncate(len);
    Ok(buf)
}

/// SHA-256 of `bytes` (for hashing high-entropy secrets such as API keys).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Random bytes from the per-thread buffer (refilled from the OS CSPRNG).
pub fn random_bytes(out: &mut [u8]) -> Result<(), CryptoError> {
    if out.len() > RANDOM_BUF / 4 {
        return fill_random(out);
    }
    RANDOM.with(|cell| {
        let mut pool = cell.borrow_mut();
        if pool.pos + out.len() > RANDOM_BUF {
            fill_random(&mut pool.buf[..])?;
            pool.pos = 0;
        }
        let start = pool.pos;
        out.copy_from_slice(&pool.buf[start..start + out.len()]);
        // Bytes handed out are wiped from the pool so they are never reused or left behind.
        pool.buf[start..start + out.len()].zeroize();
        pool.pos += out.len();
        Ok(())
    })
}

/// A random token naming a tokenized value: `tok_` and 32 hexadecimal characters.
pub fn new_token() -> Result<String, CryptoError> {
    let mut b = [0u8; 16];
    random_bytes(&mut b)?;
    Ok(format!("tok_{}", hex::encode(b)))
}

const RANDOM_BUF: usize = 4096;

struct Pool {
    buf: Box<[u8; RANDOM_BUF]>,
    pos: usize,
}

thread_local! {
    static RANDOM: RefCell<Pool> = RefCell::new(Pool { buf: Box::new([0; RANDOM_BUF]), pos: RANDOM_BUF });
}

fn next_nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    let mut n = [0u8; NONCE_LEN];
    random_bytes(&mut n)?;
    Ok(n)
}

fn fill_random(out: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(out).map_err(|_| CryptoError::Random)
}

// Keys for records that belong to the deployment rather than to one subject
// (idempotency records): a keyed hash and a sealing key, both derived from the
// master key under a label.

impl Keyring {
    /// HMAC-SHA256 of `parts` (each length-prefixed, so no two part lists share
    /// an encoding) under the subkey derived for `label`. Without the master
    /// key the tag cannot be computed, so it cannot be brute-forced from a guess.
    pub fn keyed_hash(&self, label: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], CryptoError> {
        let mut hash = self.keyed_hasher(label)?;
        for part in parts {
            hash.part(part);
        }
        Ok(hash.finish())
    }

    /// The [`Keyring::keyed_hash`] under `label`, computed part by part, so a
    /// part can be fed in pieces as it arrives ([`KeyedHasher::part_len`]).
    pub fn keyed_hasher(&self, label: &[u8]) -> Result<KeyedHasher, CryptoError> {
        let raw = self.derive_subkey(label)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &raw[..]);
        Ok(KeyedHasher(hmac::Context::with_key(&key)))
    }

    /// The key of [`Keyring::keyed_hash`] under `label`, derived once, for
    /// hashing many values: `key.hash(parts)` equals `keyed_hash(label, parts)`.
    pub fn keyed_hash_key(&self, label: &[u8]) -> Result<KeyedHashKey, CryptoError> {
        let raw = self.derive_subkey(label)?;
        Ok(KeyedHashKey(hmac::Key::new(hmac::HMAC_SHA256, &raw[..])))
    }

    /// An AES-256-GCM key derived for `label`, for sealing records that are
    /// not any one subject's (they are erased by deleting their rows).
    pub fn derived_data_key(&self, label: &[u8]) -> Result<DataKey, CryptoError> {
        let raw = self.derive_subkey(label)?;
        DataKey::from_raw(&raw[..])
    }
}

/// A [`Keyring::keyed_hash`] key derived once ([`Keyring::keyed_hash_key`]).
pub struct KeyedHashKey(hmac::Key);

impl fmt::Debug for KeyedHashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedHashKey(..)")
    }
}

impl KeyedHashKey {
    /// The keyed hash of `parts`, as [`Keyring::keyed_hash`] computes it.
    pub fn hash(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = KeyedHasher(hmac::Context::with_key(&self.0));
        for part in parts {
            h.part(part);
        }
        h.finish()
    }

    /// Whether `tag` is the keyed hash of `parts` ([`KeyedHashKey::hash`]),
    /// compared in constant time by `ring::hmac::verify`: for checking a
    /// secret the caller typed (a verification code) against its stored hash.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut message = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| 8 + p.len()).sum()));
        for part in parts {
            message.extend_from_slice(&(part.len() as u64).to_be_bytes());
            message.extend_from_slice(part);
        }
        hmac::verify(&self.0, &message, tag).is_ok()
    }
}

/// A [`Keyring::keyed_hash`] in progress. Each part is its length (8 bytes,
/// big-endian) then its bytes: [`KeyedHasher::part`] feeds both at once;
/// [`KeyedHasher::part_len`] then [`KeyedHasher::update`] feed a part whose
/// length is known before its bytes arrive. Feeding a different number of
/// bytes than announced gives a tag no `keyed_hash` call gives: the caller
/// counts.
pub struct KeyedHasher(hmac::Context);

impl fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedHasher(..)")
    }
}

impl KeyedHasher {
    /// Feeds one whole part.
    pub fn part(&mut self, part: &[u8]) {
        self.part_len(part.len() as u64);
        self.update(part);
    }

    /// Starts a part of `len` bytes, to be fed by [`KeyedHasher::update`].
    pub fn part_len(&mut self, len: u64) {
        self.0.update(&len.to_be_bytes());
    }

    /// Feeds bytes of the current part.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The tag.
    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.sign().as_ref());
        out
    }
}

/// Associated data for a subject's sealed metadata (birth date, guardian,
/// region): binds it to the subject, so it fails to open in another row.
pub fn metadata_context(subject: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(20 + subject.len());
    aad.extend_from_slice(b"custos-metadata-v1\0");
    aad.extend_from_slice(subject.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::new(&MasterKey::generate().unwrap()).unwrap()
    }

    #[test]
    fn a_derived_hash_key_gives_the_keyed_hash_and_differs_per_label_and_master_key() {
        let kr = keyring();
        let parts: [&[u8]; 2] = [b"contact.email", b"a@example.org"];
        let key = kr.keyed_hash_key(b"label").unwrap();
        assert_eq!(key.hash(&parts), kr.keyed_hash(b"label", &parts).unwrap());
        assert_ne!(key.hash(&parts), kr.keyed_hash_key(b"other label").unwrap().hash(&parts));
        assert_ne!(key.hash(&parts), keyring().keyed_hash_key(b"label").unwrap().hash(&parts));
    }

    #[test]
    fn a_keyed_hash_verifies_only_for_its_own_parts_and_key() {
        let kr = keyring();
        let key = kr.keyed_hash_key(b"label").unwrap();
        let parts: [&[u8]; 2] = [b"rq_1", b"12345678"];
        let tag = key.hash(&parts);
        assert!(key.verify(&parts, &tag));
        assert!(!key.verify(&[b"rq_1", b"12345679"], &tag));
        assert!(!key.verify(&[b"rq_11", b"2345678"], &tag), "parts are length-prefixed");
        assert!(!key.verify(&parts, &tag[..31]));
        assert!(!kr.keyed_hash_key(b"other label").unwrap().verify(&parts, &tag));
    }

    #[test]
    fn a_keyed_hash_fed_in_pieces_is_the_keyed_hash_of_the_whole() {
        let kr = keyring();
        let parts: [&[u8]; 3] = [b"scope", b"POST", b"{\"subject\":\"a\"}\n{\"subject\":\"b\"}"];
        let whole = kr.keyed_hash(b"label", &parts).unwrap();
        // The encoding it has always had: each part length-prefixed, under the derived subkey.
        let key = hmac::Key::new(hmac::HMAC_SHA256, &kr.derive_subkey(b"label").unwrap()[..]);
        let mut ctx = hmac::Context::with_key(&key);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        assert_eq!(whole[..], *ctx.sign().as_ref());
        let last = parts[2];
        for split in 0..=last.len() {
            let mut h = kr.keyed_hasher(b"label").unwrap();
            h.part(parts[0]);
            h.part(parts[1]);
            h.part_len(last.len() as u64);
            h.update(&last[..split]);
            h.update(&last[split..]);
            assert_eq!(h.finish(), whole, "split at {split}");
        }
        let mut other = kr.keyed_hasher(b"other label").unwrap();
        parts.iter().for_each(|p| other.part(p));
        assert_ne!(other.finish(), whole);
    }

    #[test]
    fn a_sealed_value_opens_under_the_same_key_and_context() {
        let kr = keyring();
        let (dk, _) = kr.new_data_key("s1").unwrap();
        let ctx = item_context("s1", "contact.email");
        let sealed = dk.seal(&ctx, b"ada@example.com").unwrap();
        assert!(!sealed.windows(15).any(|w| w == b"ada@example.com"));
        assert_eq!(&dk.open(&ctx, &sealed).unwrap()[..], b"ada@example.com");
    }

    #[test]
    fn a_sealed_value_moved_to_another_subject_or_category_does_not_open() {
        let kr = keyring();
        let (dk, _) = kr.new_data_key("s1").unwrap();
        let sealed = dk.seal(&item_context("s1", "contact.email"), b"v").unwrap();
        assert_eq!(dk.open(&item_context("s2", "contact.email"), &sealed).unwrap_err(), CryptoError::Unauthentic);
        assert_eq!(dk.open(&item_context("s1", "contact.phone"), &sealed).unwrap_err(), CryptoError::Unauthentic);
    }

    #[test]
    fn an_item_sealed_for_one_version_opens_only_as_that_version() {
        let k = keyring();
        let (dk, _) = k.new_data_key("s1").unwrap();
        let sealed = dk.seal_item("s1", "contact.email", 2, b"v").unwrap();
        assert_eq!(sealed[0], ITEM_FORMAT_BOUND);
        assert!(!is_legacy_item(&sealed));
        assert_eq!(&*dk.open_item("s1", "contact.email", 2, &sealed).unwrap(), b"v");
        for (s, c, v) in [
            ("s1", "contact.email", 1),
            ("s1", "contact.email", 3),
            ("s2", "contact.email", 2),
            ("s1", "contact.phone", 2),
        ] {
            assert_eq!(dk.open_item(s, c, v, &sealed).unwrap_err(), CryptoError::Unauthentic, "{s} {c} {v}");
        }
    }

    #[test]
    fn a_legacy_item_opens_only_as_legacy_and_is_refused_as_an_item() {
        let k = keyring();
        let (dk, _) = k.new_data_key("s1").unwrap();
        let legacy = dk.seal(&item_context("s1", "c"), b"v").unwrap();
        assert!(is_legacy_item(&legacy));
        assert_eq!(&*dk.open_legacy_item("s1", "c", &legacy).unwrap(), b"v");
        assert_eq!(dk.open_item("s1", "c", 1, &legacy).unwrap_err(), CryptoError::Unauthentic);
        let bound = dk.seal_item("s1", "c", 1, b"v").unwrap();
        assert!(dk.open_legacy_item("s1", "c", &bound).is_err());
    }

    #[test]
    fn a_flipped_bit_is_detected() {
        let kr = keyring();
        let (dk, _) = kr.new_data_key("s1").unwrap();
        let ctx = item_context("s1", "c");
        let mut sealed = dk.seal(&ctx, b"value").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(dk.open(&ctx, &sealed).unwrap_err(), CryptoError::Unauthentic);
        assert_eq!(dk.open(&ctx, &[]).unwrap_err(), CryptoError::Malformed);
        assert_eq!(dk.open(&ctx, &[9, 9, 9]).unwrap_err(), CryptoError::Malformed);
    }

    #[test]
    fn a_wrapped_key_unwraps_only_for_its_subject_and_master_key() {
        let master = MasterKey::generate().unwrap();
        let kr = Keyring::new(&master).unwrap();
        let (dk, wrapped) = kr.new_data_key("s1").unwrap();
        let ctx = item_context("s1", "c");
        let sealed = dk.seal(&ctx, b"value").unwrap();
        let again = kr.unwrap_data_key("s1", &wrapped).unwrap();
        assert_eq!(&again.open(&ctx, &sealed).unwrap()[..], b"value");
        assert!(kr.unwrap_data_key("s2", &wrapped).is_err());
        assert!(keyring().unwrap_data_key("s1", &wrapped).is_err());
        // The same master key, reloaded from hex, derives the same keyring.
        let kr2 = Keyring::new(&MasterKey::from_hex(&master.to_hex()).unwrap()).unwrap();
        assert!(kr2.unwrap_data_key("s1", &wrapped).is_ok());
    }

    #[test]
    fn pseudonyms_are_stable_per_master_key_and_hide_the_id() {
        let kr = keyring();
        assert_eq!(kr.pseudonym("alice"), kr.pseudonym("alice"));
        assert_ne!(kr.pseudonym("alice"), kr.pseudonym("bob"));
        assert_ne!(kr.pseudonym("alice"), keyring().pseudonym("alice"));
        assert!(!kr.pseudonym("alice").contains("alice"));
        assert_eq!(kr.pseudonym("alice").len(), 32);
    }

    #[test]
    fn nonces_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(next_nonce().unwrap()));
        }
    }

    #[test]
    fn bad_master_keys_are_refused_without_echoing_them() {
        let e = MasterKey::from_hex("not-hex-secret").unwrap_err();
        assert!(!e.to_string().contains("secret"));
        assert!(MasterKey::from_hex(&"ab".repeat(31)).is_err());
        assert!(format!("{:?}", MasterKey::generate().unwrap()).contains("redacted"));
    }
}
