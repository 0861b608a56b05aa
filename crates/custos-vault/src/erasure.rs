//! Erasure by crypto-shredding.

use custos_core::audit::AuditAction;
use custos_core::subject::SubjectId;
use custos_store::Store;

use crate::*;

impl<S: Store> Vault<S> {
    /// Erases a subject by destroying their data key (crypto-shredding), their
    /// sealed metadata and row, and every idempotency record that names them;
    /// leaves a tombstone under the pseudonym of the id (never the id itself).
    /// Returns how many item versions became unreadable.
    pub fn erase(&self, subject: &str, by: &By) -> Result<u64, VaultError> {
        let sid = SubjectId::parse(subject).map_err(InputError::SubjectId)?;
        let now = self.clock.now();
        let ev = self.event(now, AuditAction::SubjectErased, CONTROLLER, subject, by);
        let pseudonym = self.keys.pseudonym(subject);
        self.store.erase_subject(&sid, &pseudonym, now, &custos_store::HeldCopy::none(), &[ev]).map_err(|e| match e {
            custos_store::StoreError::SubjectErased => self.erased_refusal(CONTROLLER, subject, None, by),
            other => other.into(),
        })
    }
}
