//! The Custos vault: stores personal values encrypted per subject, releases
//! them only for declared purposes, and audits every step.
//!
//! The vault is where the invariants meet: it validates input against the
//! [`Policy`], asks [`custos_core::decision::decide`] about every read and
//! write, seals and opens values with the subject's data key, and hands the
//! store the audit events of each operation so they commit with it. It is
//! generic over [`Store`], so every backend gets the same behaviour.

pub mod access;
mod acting;
mod audit;
mod card;
mod choices;
mod erasure;
mod error;
mod idempotency;
pub mod identity;
mod lookup;
mod read;
pub mod requests;
mod reseal;
mod subjects;
mod write;

use std::sync::Arc;

use custos_core::audit::{AuditAction, AuditEvent};
use custos_core::decision::{AccessRequest, Actor, Denial, DenyReason, Operation, Scope, admit, decide};
use custos_core::policy::document::LegalBasis;
use custos_core::policy::{CategoryId, Policy, PurposeId};
use custos_core::subject::Subject;
use custos_core::time::{Clock, Timestamp};
use custos_crypto::Keyring;
use custos_store::Store;

pub use access::KeyScope;
pub use acting::By;
pub use audit::{AuditVerification, verify_chain};
pub use choices::ROLE_NOT_ALLOWED;
pub use error::{CardError, Denied, InputError, PolicyIdKind, VaultError};
pub use idempotency::FingerprintContext;
pub use identity::{Binding, IdentityError, Rotation, bind_store};
pub use read::{Read, ReadAll, Revealed};
pub use requests::email_code::{CODE_DIGITS, CODE_VALID_MINUTES, CodeMessage, CodeSender, MAX_CODE_TRIES, SendError};
pub use requests::response::{RequestResponse, ResponseFormat};
pub use requests::steps::VerifyMethod;
pub use requests::{RequestQuery, RequestView, Submission};
pub use reseal::{RESEAL_BATCH, Resealing};
pub use subjects::NewSubject;
pub use write::Put;

/// The actor name for the controller's own systems.
pub const CONTROLLER: &str = "controller";
/// How the audit log names an actor the policy does not declare.
pub const UNDECLARED_ACTOR: &str = "(undeclared)";
/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The vault.
pub struct Vault<S> {
    policy: Arc<Policy>,
    store: S,
    keys: Keyring,
    clock: Arc<dyn Clock>,
    /// The blind index's key, derived on first use (see `lookup.rs`).
    lookup_key: std::sync::OnceLock<custos_crypto::KeyedHashKey>,
}

impl<S: Store> Vault<S> {
    /// A vault over `store`, deciding by `policy`, keyed by `keys`, timed by `clock`.
    pub fn new(policy: Arc<Policy>, store: S, keys: Keyring, clock: Arc<dyn Clock>) -> Self {
        Vault { policy, store, keys, clock, lookup_key: std::sync::OnceLock::new() }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The current time from the vault's clock.
    pub fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The pseudonym of a subject id in the audit log.
    pub fn pseudonym(&self, subject: &str) -> String {
        self.keys.pseudonym(subject)
    }

    pub(crate) fn event(&self, at: Timestamp, action: AuditAction, actor: &str, subject: &str, by: &By) -> AuditEvent {
        let mut e = AuditEvent::new(at, action, actor);
        e.by = Some(by.audit_label());
        e.subject = Some(self.keys.pseudonym(subject));
        e.notice_version = Some(self.policy.version().to_string());
        e
    }

    pub(crate) fn resolve(
        &self,
        purpose: &str,
        category: Option<&str>,
    ) -> Result<(PurposeId, Option<CategoryId>), VaultError> {
        let p = self.policy.purpose(purpose).ok_or_else(|| {
            invalid_ref(
                PolicyIdKind::Purpose,
                purpose,
                self.policy.purpose_ids().map(|p| &self.policy.purpose_doc(p).id.value),
            )
        })?;
        let c = match category {
            None => None,
            Some(c) => Some(self.policy.category(c).ok_or_else(|| {
                invalid_ref(
                    PolicyIdKind::Category,
                    c,
                    self.policy.category_ids().map(|c| &self.policy.category_doc(c).id.value),
                )
            })?),
        };
        Ok((p, c))
    }

    /// The decision's actor for a name: the controller, a declared recipient,
    /// or [`Actor::Undeclared`] (which the decision refuses).
    pub(crate) fn actor(&self, actor: &str) -> Actor {
        if actor == CONTROLLER {
            Actor::Controller
        } else {
            self.policy.recipient(actor).map_or(Actor::Undeclared, Actor::Recipient)
        }
    }

    /// The actor as the audit log records it: a declared one by its id, any
    /// other name as [`UNDECLARED_ACTOR`] (a name typed by a caller may be
    /// anything, a person's email address included).
    pub(crate) fn audited_actor<'n>(&self, name: &'n str) -> &'n str {
        match self.actor(name) {
            Actor::Undeclared => UNDECLARED_ACTOR,
            _ => name,
        }
    }

    /// Refuses, before anything about the subject is looked up, a caller the
    /// decision refuses whatever the subject ([`admit`]: an undeclared actor,
    /// a purpose outside the key's scope). The refusal is audited once, with
    /// its reason code and the key's id.
    pub(crate) fn admit_caller(
        &self,
        access: Access<'_>,
        purpose: PurposeId,
        subject: Option<&str>,
        category: Option<CategoryId>,
        by: &By,
    ) -> Result<(), VaultError> {
        let actor = self.actor(access.actor);
        let Err(reason) = admit(actor, access.decision_scope(), purpose) else {
            return Ok(());
        };
        let now = self.clock.now();
        let mut ev = match subject {
            Some(s) => self.event(now, AuditAction::AccessDenied, self.audited_actor(access.actor), s, by),
            None => {
                let mut ev = AuditEvent::new(now, AuditAction::AccessDenied, self.audited_actor(access.actor));
                ev.by = Some(by.audit_label());
                ev
            }
        };
        ev.purpose = Some(self.policy.purpose_doc(purpose).id.value.clone());
        ev.categories = category.map(|c| self.policy.category_doc(c).id.value.clone()).into_iter().collect();
        ev.reason = Some(reason.code().to_string());
        ev.key = access.scope.map(|s| s.key_id.clone());
        self.store.append_audit(&[ev])?;
        let sentence = Denial { reason, purpose, category, actor }.sentence(&self.policy);
        Err(VaultError::Denied(Denied { reason, sentence }))
    }

    /// Decides one request and turns a denial into an audited error.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check(
        &self,
        subject: &Subject,
        purpose: PurposeId,
        category: CategoryId,
        access: Access<'_>,
        at: Timestamp,
        denials: &mut Vec<AuditEvent>,
        by: &By,
    ) -> Result<LegalBasis, Denied> {
        let req = AccessRequest {
            purpose,
            category,
            actor: self.actor(access.actor),
            scope: access.decision_scope(),
            operation: access.operation,
            at,
        };
        decide(&self.policy, subject, &req).map_err(|d| {
            let mut e =
                self.event(at, AuditAction::AccessDenied, self.audited_actor(access.actor), subject.id.as_str(), by);
            e.purpose = Some(self.policy.purpose_doc(purpose).id.value.clone());
            e.categories = vec![self.policy.category_doc(category).id.value.clone()];
            e.reason = Some(d.reason.code().to_string());
            denials.push(e);
            Denied { reason: d.reason, sentence: d.sentence(&self.policy) }
        })
    }
}

/// Who accesses a value, within which scope, and how: what the vault passes
/// the decision engine besides the purpose, the category and the time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Access<'a> {
    /// The actor's name: [`CONTROLLER`] or a recipient id.
    pub actor: &'a str,
    /// The purposes the caller's key is bound to; `None` = not limited by a key.
    pub scope: Option<&'a KeyScope>,
    /// Read, write or detokenize.
    pub operation: Operation,
}

impl Access<'_> {
    fn decision_scope(&self) -> Scope<'_> {
        self.scope.map_or(Scope::Unlimited, KeyScope::scope)
    }
}

pub(crate) fn erased_denial() -> VaultError {
    VaultError::Denied(Denied {
        reason: DenyReason::Erased,
        sentence: "the subject's data was erased and can no longer be read".into(),
    })
}

/// An unknown policy id: names the kind and the known ids, never the id given
/// (it may be a personal value sent in the wrong place; `_given` is kept so
/// callers need not change).
pub(crate) fn invalid_ref<'a>(what: PolicyIdKind, _given: &str, known: impl Iterator<Item = &'a String>) -> VaultError {
    error::unknown_id(what, known).into()
}
