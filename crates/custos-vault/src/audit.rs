//! Verifying the audit chain.

use custos_core::audit::{ChainBreak, ChainHead, ChainVerifier};
use custos_store::Store;

use crate::*;

impl<S: Store> Vault<S> {
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
