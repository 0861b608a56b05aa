//! Finding a person by a lookup identifier (an email address, a phone
//! number, a customer id) without decrypting anything: the blind index.
//!
//! Each value of a category the policy marks `lookup` is normalised (see
//! [`LookupKind::normalise`]) and hashed with HMAC-SHA256 under a key derived
//! from the master key, bound to the category; the store keeps the hash of
//! each subject's latest value and deletes it at erasure. Without the master
//! key a hash cannot be computed from a guess, so the table does not give
//! the values away; it shows only which subjects share one.

use custos_core::policy::CategoryId;
use custos_store::Store;
use zeroize::Zeroizing;

use crate::*;

/// The label of the key the blind index is computed under.
const LOOKUP_INDEX: &[u8] = b"custos lookup index v1";

impl<S: Store> Vault<S> {
    /// The blind index of `value` for `category`; `None` when the category is
    /// not a lookup identifier or nothing is left of the value once normalised.
    pub(crate) fn lookup_hash(&self, category: CategoryId, value: &str) -> Result<Option<[u8; 32]>, VaultError> {
        let Some(kind) = self.policy.lookup(category) else { return Ok(None) };
        Ok(match kind.normalise(value).map(Zeroizing::new) {
            None => None,
            Some(normalised) => Some(self.index_hash(category, &normalised)?),
        })
    }

    fn index_hash(&self, category: CategoryId, normalised: &str) -> Result<[u8; 32], VaultError> {
        let key = match self.lookup_key.get() {
            Some(key) => key,
            None => {
                let derived = self.keys.keyed_hash_key(LOOKUP_INDEX)?;
                self.lookup_key.get_or_init(|| derived)
            }
        };
        let id = &self.policy.category_doc(category).id.value;
        Ok(key.hash(&[id.as_bytes(), normalised.as_bytes()]))
    }

    /// The live subjects whose latest value of the lookup category
    /// `category` is `value` (both normalised the category's way), in id
    /// order; none for an erased person. Nothing is decrypted, and the value
    /// is neither stored nor logged.
    pub fn find_subjects(&self, category: &str, value: &str) -> Result<Vec<String>, VaultError> {
        let cat = self.policy.category(category).ok_or_else(|| {
            invalid_ref(
                PolicyIdKind::Category,
                category,
                self.policy.category_ids().map(|c| &self.policy.category_doc(c).id.value),
            )
        })?;
        let kind =
            self.policy.lookup(cat).ok_or_else(|| InputError::NotALookupCategory { category: category.to_string() })?;
        let normalised = kind.normalise(value).map(Zeroizing::new).ok_or(InputError::EmptyLookupValue)?;
        let hash = self.index_hash(cat, &normalised)?;
        Ok(self.store.subjects_by_lookup(&hash)?.into_iter().map(|s| s.as_str().to_string()).collect())
    }
}
