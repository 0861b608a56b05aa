//! Ed25519 signatures of audit checkpoints (`ring`).
//!
//! The signing key is derived from the master key ([`Keyring::derive_subkey`]
//! under [`AUDIT_CHECKPOINT_KEY_LABEL`], used as the Ed25519 seed), so it is
//! never stored anywhere, least of all in the database whose chain it signs;
//! the same master key always gives the same key. A public key is named by
//! its RFC 7638 JWK thumbprint (SHA-256 of the canonical JWK, base64url), the
//! `kid` under which `/.well-known/custos/audit-keys` publishes it.

use std::fmt;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::{CryptoError, KEY_LEN, Keyring};

/// The HKDF label of the audit checkpoint signing seed.
pub const AUDIT_CHECKPOINT_KEY_LABEL: &[u8] = b"custos audit checkpoints v1";

/// Length of an Ed25519 public key, in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Length of an Ed25519 signature, in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// The key that signs audit checkpoints. Never printed.
pub struct AuditSigner {
    pair: Ed25519KeyPair,
    public: AuditPublicKey,
}

impl fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSigner").field("key_id", &self.public.id).finish_non_exhaustive()
    }
}

impl AuditSigner {
    /// The checkpoint signing key of a master key.
    pub fn from_keyring(keys: &Keyring) -> Result<AuditSigner, CryptoError> {
        let seed = keys.derive_subkey(AUDIT_CHECKPOINT_KEY_LABEL)?;
        AuditSigner::from_seed(&seed)
    }

    /// The signing key with this Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; KEY_LEN]) -> Result<AuditSigner, CryptoError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| CryptoError::Malformed)?;
        let public = AuditPublicKey::from_bytes(pair.public_key().as_ref())?;
        Ok(AuditSigner { pair, public })
    }

    /// The public half, to publish and to verify with.
    pub fn public_key(&self) -> &AuditPublicKey {
        &self.public
    }

    /// Signs `message` (64 bytes).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// An Ed25519 public key that audit checkpoints are verified with, and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPublicKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    id: String,
}

impl AuditPublicKey {
    /// A public key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<AuditPublicKey, CryptoError> {
        let bytes: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::BadPublicKey)?;
        let x = base64url_encode(&bytes);
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let id = base64url_encode(&crate::sha256(canonical.as_bytes()));
        Ok(AuditPublicKey { bytes, id })
    }

    /// A public key from a JWK's `x` member (base64url, no padding).
    pub fn from_jwk_x(x: &str) -> Result<AuditPublicKey, CryptoError> {
        let bytes = base64url_decode(x).ok_or(CryptoError::BadPublicKey)?;
        AuditPublicKey::from_bytes(&bytes)
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// The key id: its RFC 7638 JWK thumbprint (43 base64url characters).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as a JWK's `x` member (base64url, no padding).
    pub fn jwk_x(&self) -> String {
        base64url_encode(&self.bytes)
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        signature.len() == SIGNATURE_LEN
            && UnparsedPublicKey::new(&ED25519, &self.bytes).verify(message, signature).is_ok()
    }
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5), as JWKs and JWSs use it.
pub fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(BASE64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Decodes base64url without padding; `None` for any other character, a
/// length no encoding has, or non-zero trailing bits (so every byte string
/// has exactly one accepted text).
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| BASE64URL.iter().position(|&a| a == c).map(|v| v as u32);
    let text = text.as_bytes();
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = chunk.len() - 1;
        if bytes[keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    /// RFC 8032 §7.1, test 1 (also the key of RFC 8037 Appendix A).
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const SIGNATURE_OF_EMPTY: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn rfc_signer() -> AuditSigner {
        let mut seed = [0u8; KEY_LEN];
        hex::decode_to_slice(SEED, &mut seed).unwrap();
        AuditSigner::from_seed(&seed).unwrap()
    }

    #[test]
    fn signing_matches_the_rfc_8032_test_vector() {
        let signer = rfc_signer();
        assert_eq!(hex::encode(signer.public_key().as_bytes()), PUBLIC);
        assert_eq!(hex::encode(signer.sign(b"")), SIGNATURE_OF_EMPTY);
    }

    #[test]
    fn the_key_id_is_the_rfc_8037_jwk_thumbprint() {
        let signer = rfc_signer();
        assert_eq!(signer.public_key().jwk_x(), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(signer.public_key().id(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let parsed = AuditPublicKey::from_jwk_x("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(&parsed, signer.public_key());
    }

    #[test]
    fn a_signature_verifies_and_one_flipped_byte_of_message_or_signature_fails() {
        let signer = rfc_signer();
        let message = b"custos-audit-checkpoint-v1\0 some checkpoint".to_vec();
        let signature = signer.sign(&message);
        assert!(signer.public_key().verify(&message, &signature));
        for i in 0..message.len() {
            let mut m = message.clone();
            m[i] ^= 0x01;
            assert!(!signer.public_key().verify(&m, &signature), "flipped message byte {i}");
        }
        for i in 0..signature.len() {
            let mut s = signature.clone();
            s[i] ^= 0x80;
            assert!(!signer.public_key().verify(&message, &s), "flipped signature byte {i}");
        }
        assert!(!signer.public_key().verify(&message, &signature[..63]));
        assert!(!signer.public_key().verify(&message, &[]));
    }

    #[test]
    fn the_signing_key_follows_the_master_key_and_no_other_key_verifies() {
        let a = Keyring::new(&MasterKey::from_hex(&"11".repeat(32)).unwrap()).unwrap();
        let b = Keyring::new(&MasterKey::from_hex(&"22".repeat(32)).unwrap()).unwrap();
        let (sa, sa2, sb) = (
            AuditSigner::from_keyring(&a).unwrap(),
            AuditSigner::from_keyring(&a).unwrap(),
            AuditSigner::from_keyring(&b).unwrap(),
        );
        assert_eq!(sa.public_key(), sa2.public_key(), "the same master key gives the same signing key");
        assert_ne!(sa.public_key().id(), sb.public_key().id());
        let signature = sa.sign(b"head");
        assert!(sa2.public_key().verify(b"head", &signature));
        assert!(!sb.public_key().verify(b"head", &signature));
        // The seed is not a key used for anything else.
        let wrap_seed = a.derive_subkey(b"custos wrap data keys v1").unwrap();
        assert_ne!(AuditSigner::from_seed(&wrap_seed).unwrap().public_key(), sa.public_key());
        assert!(!format!("{sa:?}").contains(&hex::encode(&a.derive_subkey(AUDIT_CHECKPOINT_KEY_LABEL).unwrap()[..])));
    }

    #[test]
    fn base64url_round_trips_and_refuses_what_is_not_canonical() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64url_encode(&bytes);
            assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'), "{text}");
            assert_eq!(base64url_decode(&text), Some(bytes), "{text}");
        }
        assert_eq!(base64url_encode(b"\xfb\xff"), "-_8");
        assert_eq!(base64url_decode("A"), None, "no encoding is 1 mod 4 long");
        assert_eq!(base64url_decode("AB"), None, "non-zero trailing bits");
        assert_eq!(base64url_decode("AA=="), None, "no padding");
        assert_eq!(base64url_decode("a+b/"), None, "standard alphabet refused");
        assert_eq!(AuditPublicKey::from_jwk_x("AAAA"), Err(CryptoError::BadPublicKey));
        assert_eq!(AuditPublicKey::from_bytes(&[0; 31]), Err(CryptoError::BadPublicKey));
    }
}
