//! Keys for idempotency records, so that the server's records hold nothing
//! personal: a keyed fingerprint of each request, and its response sealed.
//!
//! Both keys are derived from the master key and never leave the vault. The
//! fingerprint is HMAC-SHA256 under `custos idempotency fingerprints v1`: a
//! request cannot be guessed and checked against it (the unkeyed SHA-256 it
//! replaces gave up a card number from its first six and last four digits in
//! a second). The body is sealed with AES-256-GCM under `custos idempotency
//! records v1`, bound to the scoped idempotency key, so a body moved to
//! another record does not open.

use custos_crypto::{CryptoError, KeyedHasher, Keyring};
use custos_store::Store;
use zeroize::Zeroizing;

use crate::*;

const FINGERPRINT_KEY: &[u8] = b"custos idempotency fingerprints v1";
const RECORD_KEY: &[u8] = b"custos idempotency records v1";

fn record_context(scope: &str) -> Vec<u8> {
    let mut aad = b"custos-idempotency-v1\0".to_vec();
    aad.extend_from_slice(scope.as_bytes());
    aad
}

/// A request's fingerprint computed as its body streams in
/// ([`Vault::idempotency_fingerprint_context`]): the same HMAC as
/// [`Vault::idempotency_fingerprint`] over the whole body. The body's length
/// is part of the HMAC before its bytes, so it must be known at the start
/// (a request's `Content-Length`).
#[derive(Debug)]
pub struct FingerprintContext {
    hash: KeyedHasher,
    /// Body bytes announced and not yet fed; negative once more were fed.
    remaining: i128,
}

impl FingerprintContext {
    /// Feeds the next bytes of the body.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.remaining -= bytes.len() as i128;
    }

    /// Whether exactly the announced number of body bytes has been fed.
    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }

    /// Whether more body bytes than announced have been fed.
    pub fn is_overfed(&self) -> bool {
        self.remaining < 0
    }

    /// The fingerprint, if exactly the announced number of body bytes was fed
    /// (otherwise it would fingerprint no request).
    pub fn finish(self) -> Option<[u8; 32]> {
        self.is_complete().then(|| self.hash.finish())
    }
}

fn fingerprint_context(
    keys: &Keyring,
    scope: &str,
    method: &str,
    path: &str,
    body_len: u64,
) -> Result<FingerprintContext, VaultError> {
    let mut hash = keys.keyed_hasher(FINGERPRINT_KEY)?;
    hash.part(scope.as_bytes());
    hash.part(method.as_bytes());
    hash.part(path.as_bytes());
    hash.part_len(body_len);
    Ok(FingerprintContext { hash, remaining: i128::from(body_len) })
}

impl<S: Store> Vault<S> {
    /// The keyed fingerprint of a request under an idempotency key: HMAC of
    /// the scoped key, the method, the path (with query) and the body.
    pub fn idempotency_fingerprint(
        &self,
        scope: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<[u8; 32], VaultError> {
        Ok(self.keys.keyed_hash(FINGERPRINT_KEY, &[scope.as_bytes(), method.as_bytes(), path.as_bytes(), body])?)
    }

    /// [`Vault::idempotency_fingerprint`] of a request whose body, of
    /// `body_len` bytes, is fed piece by piece to the returned context.
    pub fn idempotency_fingerprint_context(
        &self,
        scope: &str,
        method: &str,
        path: &str,
        body_len: u64,
    ) -> Result<FingerprintContext, VaultError> {
        fingerprint_context(&self.keys, scope, method, path, body_len)
    }

    /// Seals a response body to record under the scoped idempotency key.
    pub fn seal_idempotent_body(&self, scope: &str, body: &[u8]) -> Result<Vec<u8>, VaultError> {
        Ok(self.keys.derived_data_key(RECORD_KEY)?.seal(&record_context(scope), body)?)
    }

    /// Opens a body sealed by [`Vault::seal_idempotent_body`] for the same scoped key.
    pub fn open_idempotent_body(&self, scope: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let key = self.keys.derived_data_key(RECORD_KEY)?;
        key.open(&record_context(scope), sealed).map_err(|e: CryptoError| VaultError::Crypto(e))
    }
}

#[cfg(test)]
mod tests {
    use custos_crypto::MasterKey;

    use super::*;

    #[test]
    fn a_fingerprint_fed_in_pieces_is_the_fingerprint_of_the_whole_body() -> Result<(), VaultError> {
        let keys = Keyring::new(&MasterKey::generate()?)?;
        let body = b"{\"subject\":\"a\",\"value\":\"4111111111111111\"}\n{\"subject\":\"b\"}\n";
        let (scope, method, path) = ("0a1b2c3d:batch-1", "POST", "/v1/ingest?x=1");
        let whole = keys.keyed_hash(FINGERPRINT_KEY, &[scope.as_bytes(), method.as_bytes(), path.as_bytes(), body])?;
        for split in 0..=body.len() {
            for second in split..=body.len() {
                let mut ctx = fingerprint_context(&keys, scope, method, path, body.len() as u64)?;
                ctx.update(&body[..split]);
                ctx.update(&body[split..second]);
                ctx.update(&body[second..]);
                assert_eq!(ctx.finish(), Some(whole), "split at {split} and {second}");
            }
        }
        // The empty body, and every part counted: another path or method is another fingerprint.
        let empty = keys.keyed_hash(FINGERPRINT_KEY, &[scope.as_bytes(), b"PUT", b"/v1/x", b""])?;
        assert_eq!(fingerprint_context(&keys, scope, "PUT", "/v1/x", 0)?.finish(), Some(empty));
        let mut other = fingerprint_context(&keys, scope, method, "/v1/ingest", body.len() as u64)?;
        other.update(body);
        assert_ne!(other.finish(), Some(whole));
        Ok(())
    }

    #[test]
    fn a_body_shorter_or_longer_than_announced_has_no_fingerprint() -> Result<(), VaultError> {
        let keys = Keyring::new(&MasterKey::generate()?)?;
        let mut short = fingerprint_context(&keys, "k:1", "POST", "/v1/ingest", 4)?;
        short.update(b"abc");
        assert!(!short.is_complete());
        assert_eq!(short.finish(), None);
        let mut long = fingerprint_context(&keys, "k:1", "POST", "/v1/ingest", 2)?;
        long.update(b"abc");
        assert!(long.is_overfed());
        assert_eq!(long.finish(), None);
        Ok(())
    }
}
