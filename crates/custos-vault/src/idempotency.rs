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

use custos_crypto::CryptoError;
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
