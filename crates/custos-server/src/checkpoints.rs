//! Signed checkpoints of the audit chain, from the server's side: the public
//! keys at `GET /.well-known/custos/audit-keys` (a JWK set, no
//! authentication), and the background task that signs the chain head every
//! N entries or S seconds while it moves ([`spawn`]), plus once at shutdown
//! ([`sign_now`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiError;
use crate::{AppState, SharedVault};

/// One Ed25519 public key as a JWK (RFC 8037).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditKey {
    /// Key type: `OKP`.
    pub kty: &'static str,
    /// Curve: `Ed25519`.
    pub crv: &'static str,
    /// Key id: the RFC 7638 thumbprint, as named by each checkpoint.
    pub kid: String,
    /// The public key (base64url, no padding).
    pub x: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub usage: &'static str,
    /// `EdDSA`.
    pub alg: &'static str,
}

/// The keys audit checkpoints are signed with.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditKeySet {
    /// The keys.
    pub keys: Vec<AuditKey>,
}

/// The public keys that sign audit checkpoints, as a JWK set (public): anyone
/// holding an exported checkpoint can check its signature with them.
#[utoipa::path(get, path = "/.well-known/custos/audit-keys", tag = "audit",
    responses((status = 200, body = AuditKeySet, description = "JWK set (RFC 7517) of Ed25519 keys (RFC 8037)")))]
pub async fn audit_keys(State(state): State<Arc<AppState>>) -> Result<axum::Json<AuditKeySet>, ApiError> {
    let keys = state.run(|v| v.audit_public_keys().map_err(ApiError::from)).await?;
    let keys = keys
        .iter()
        .map(|k| AuditKey {
            kty: "OKP",
            crv: "Ed25519",
            kid: k.id().to_string(),
            x: k.jwk_x(),
            usage: "sig",
            alg: "EdDSA",
        })
        .collect();
    Ok(axum::Json(AuditKeySet { keys }))
}

/// When the server signs the chain head.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointSchedule {
    /// Sign once the head is this many entries past the last checkpoint (0: never for this reason).
    pub every_entries: u64,
    /// Sign when this much time passed since the last checkpoint and the head moved (zero: never for this reason).
    pub every: Duration,
}

impl Default for CheckpointSchedule {
    fn default() -> Self {
        CheckpointSchedule { every_entries: 100_000, every: Duration::from_secs(10) }
    }
}

/// How often the task looks at the head (a key lookup).
const POLL: Duration = Duration::from_millis(100);

/// Starts the background task that signs checkpoints on `schedule`. It runs
/// until the runtime stops; each signature runs on the blocking pool.
pub fn spawn(state: Arc<AppState>, schedule: CheckpointSchedule) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut signed_at = Instant::now();
        let mut signed_seq: Option<u64> = None;
        let mut ticker = tokio::time::interval(POLL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let head = state.run(|v| v.store().audit_head().map_err(|e| ApiError::internal(&e))).await;
            let Ok(head) = head else { continue };
            let last = match signed_seq {
                Some(seq) => seq,
                None => {
                    let latest = state.run(|v| v.store().latest_checkpoint().map_err(|e| ApiError::internal(&e))).await;
                    match latest {
                        Ok(latest) => *signed_seq.insert(latest.map_or(0, |c| c.seq)),
                        Err(_) => continue,
                    }
                }
            };
            if head.seq <= last {
                continue;
            }
            let by_count = schedule.every_entries > 0 && head.seq - last >= schedule.every_entries;
            let by_time = !schedule.every.is_zero() && signed_at.elapsed() >= schedule.every;
            if !(by_count || by_time) {
                continue;
            }
            let vault = state.vault.clone();
            if let Ok(Some(seq)) = tokio::task::spawn_blocking(move || sign_now(&vault)).await {
                signed_seq = Some(seq);
            }
            signed_at = Instant::now();
        }
    })
}

/// Signs the current head now (blocking; the shutdown path calls it outside
/// the runtime). Returns the signed sequence number; a failure is logged, and
/// a chain that does not verify is never signed.
pub fn sign_now(vault: &SharedVault) -> Option<u64> {
    match vault.sign_checkpoint() {
        Ok(Ok(cp)) => {
            tracing::debug!(seq = cp.seq, key_id = %cp.key_id, "signed an audit checkpoint");
            Some(cp.seq)
        }
        Ok(Err(broken)) => {
            tracing::error!(error = %broken, "the audit chain does not verify: no checkpoint signed");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "signing an audit checkpoint failed (will retry)");
            None
        }
    }
}
