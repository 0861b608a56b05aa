//! API keys and the principals they authenticate.
//!
//! A key is `cst_<id>_<secret>`: 8 hexadecimal characters of public id and 64
//! of secret. Only the SHA-256 of the whole key is stored (a key has 256 bits
//! of entropy, so a fast hash is enough); the key itself is shown once, at
//! creation. A service key is bound to one declared recipient (its actor) and
//! a set of purposes the policy lets that recipient receive data for.

use std::sync::Arc;

use custos_core::audit::AuditAction;
use custos_core::decision::Scope;
use custos_core::policy::PurposeSet;
use custos_crypto::{random_bytes, sha256};
use custos_store::{ApiKeyRecord, Store, StoreError};
use zeroize::Zeroizing;

use crate::error::unknown_id;
use crate::{By, CONTROLLER, InputError, PolicyIdKind, Vault, VaultError};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Writes data and reads it for its purposes, as its declared recipient.
    Service,
    /// The audit log, reports and the policy; never personal values.
    Auditor,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Service => "service",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "service" => Some(Role::Service),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's public id.
    pub key_id: String,
    /// Its role.
    pub role: Role,
    /// The actor it reads as: [`CONTROLLER`] for admin and auditor keys, the recipient for a service key.
    pub actor: String,
    /// For a service key, the purposes it may read for.
    pub purposes: Vec<String>,
    /// For a service key, the same purposes compiled against the policy: the
    /// scope its reads pass to the decision. `None` for admin and auditor keys.
    pub scope: Option<Arc<KeyScope>>,
}

impl Principal {
    /// The acting principal this key's requests are audited as.
    pub fn by(&self) -> By {
        By::Key(self.key_id.clone())
    }
}

/// The purposes a service key is bound to, as the decision engine takes them.
/// Its reads are decided with [`Scope::Bound`]: a purpose outside it is
/// denied with `purpose_not_bound`, like any other reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    /// The key's public id, named in the audit entry of a refusal.
    pub key_id: String,
    /// The purposes (those the policy no longer declares are left out).
    pub purposes: PurposeSet,
}

impl KeyScope {
    /// The decision input.
    pub fn scope(&self) -> Scope<'_> {
        Scope::Bound(&self.purposes)
    }
}

/// A key just created: its id and the secret, shown once.
pub struct NewKey {
    /// Public id.
    pub id: String,
    /// The whole key, to give to the caller once.
    pub secret: Zeroizing<String>,
}

/// Never shows the secret.
impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey").field("id", &self.id).field("secret", &"<redacted>").finish()
    }
}

impl<S: Store> Vault<S> {
    /// Creates an API key. A service key needs a declared recipient as actor
    /// and at least one purpose that recipient is declared for.
    pub fn create_api_key(
        &self,
        role: Role,
        actor: Option<&str>,
        purposes: &[String],
        by: &By,
    ) -> Result<NewKey, VaultError> {
        let policy = self.policy();
        match role {
            Role::Service => {
                let actor = actor.ok_or_else(|| VaultError::from(InputError::ServiceKeyWithoutActor))?;
                let rid = policy.recipient(actor).ok_or_else(|| {
                    unknown_id(PolicyIdKind::Recipient, policy.document().recipients.iter().map(|r| &r.id.value))
                })?;
                if purposes.is_empty() {
                    return Err(InputError::ServiceKeyWithoutPurposes.into());
                }
                let declared = &policy.recipient_doc(rid).purposes;
                for p in purposes {
                    if policy.purpose(p).is_none() {
                        let known = policy.purpose_ids().map(|p| &policy.purpose_doc(p).id.value);
                        return Err(unknown_id(PolicyIdKind::Purpose, known).into());
                    }
                    if !declared.iter().any(|d| d.value == *p) {
                        let (recipient, purpose) = (actor.to_string(), p.clone());
                        return Err(InputError::RecipientNotForPurpose { recipient, purpose }.into());
                    }
                }
            }
            Role::Admin | Role::Auditor => {
                if actor.is_some() || !purposes.is_empty() {
                    return Err(InputError::ControllerKeyWithScope { role: role.as_str() }.into());
                }
            }
        }
        let mut raw = [0u8; 36];
        random_bytes(&mut raw)?;
        let id = hex(&raw[..4]);
        let secret = Zeroizing::new(format!("cst_{id}_{}", hex(&raw[4..])));
        let now = self.clock_now();
        let record = ApiKeyRecord {
            id: id.clone(),
            secret_hash: sha256(secret.as_bytes()),
            role: role.as_str().to_string(),
            actor: actor.map(str::to_string),
            purposes: purposes.to_vec(),
            created_at: now,
            revoked_at: None,
        };
        let mut ev = custos_core::audit::AuditEvent::new(now, AuditAction::ApiKeyCreated, CONTROLLER);
        ev.key = Some(id.clone());
        ev.by = Some(by.audit_label());
        self.store().create_api_key(&record, &[ev]).map_err(|e| match e {
            StoreError::KeyExists => VaultError::KeyIdCollision,
            other => other.into(),
        })?;
        Ok(NewKey { id, secret })
    }

    /// The principal a bearer key stands for; `None` if it is unknown or revoked.
    pub fn authenticate(&self, key: &str) -> Result<Option<Principal>, VaultError> {
        if !key.starts_with("cst_") || key.len() != 77 {
            return Ok(None);
        }
        let Some(record) = self.store().api_key_by_hash(&sha256(key.as_bytes()))? else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            return Ok(None);
        }
        let Some(role) = Role::parse(&record.role) else {
            return Ok(None);
        };
        let actor = record.actor.clone().unwrap_or_else(|| CONTROLLER.to_string());
        let scope = (role == Role::Service).then(|| {
            let policy = self.policy();
            let purposes = policy.purpose_set(record.purposes.iter().filter_map(|p| policy.purpose(p)));
            Arc::new(KeyScope { key_id: record.id.clone(), purposes })
        });
        Ok(Some(Principal { key_id: record.id, role, actor, purposes: record.purposes, scope }))
    }

    /// Every API key (hashes only), oldest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, VaultError> {
        Ok(self.store().api_keys()?)
    }

    /// Revokes a key; false if there is no such live key.
    pub fn revoke_api_key(&self, id: &str, by: &By) -> Result<bool, VaultError> {
        let now = self.clock_now();
        let mut ev = custos_core::audit::AuditEvent::new(now, AuditAction::ApiKeyRevoked, CONTROLLER);
        ev.key = Some(id.to_string());
        ev.by = Some(by.audit_label());
        Ok(self.store().revoke_api_key(id, now, &[ev])?)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
