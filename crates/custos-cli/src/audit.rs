//! `custos audit verify` and `custos audit checkpoint`: the chain with its
//! signed checkpoints, exported checkpoints (anchors) and trusted key files.
//!
//! An exported checkpoint is one JSON object: `format`
//! (`custos-audit-checkpoint-v1`), `seq`, `head` (hex), `at` (RFC 3339) and
//! `at_us` (µs since the epoch, what is signed), `key_id`, `alg` (`EdDSA`),
//! `public_key` and `signature` (base64url). A trusted key file is a JWK set
//! (`{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": …}]}`), as
//! `GET /.well-known/custos/audit-keys` serves it.

use std::path::Path;

use anyhow::Context;
use custos_core::audit_checkpoint::AuditCheckpoint;
use custos_core::time::Timestamp;
use custos_crypto::signing::{AuditPublicKey, base64url_decode, base64url_encode};
use custos_vault::Vault;
use serde_json::{Value, json};

use crate::env::AnyStore;
use crate::output::outln;
use crate::{Failure, hex};

/// The `format` of an exported checkpoint.
const EXPORT_FORMAT: &str = "custos-audit-checkpoint-v1";

/// Largest key or anchor file read, in bytes.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// `custos audit verify [--trusted-keys FILE] [--anchor FILE]`.
pub fn verify(vault: &Vault<AnyStore>, trusted_keys: Option<&Path>, anchor: Option<&Path>) -> Result<(), Failure> {
    let trusted = match trusted_keys {
        Some(file) => read_jwk_set(file)?,
        None => Vec::new(),
    };
    let anchors = match anchor {
        Some(file) => vec![read_anchor(file)?],
        None => Vec::new(),
    };
    match vault.verify_audit_with(&trusted, &anchors)? {
        Ok(found) => {
            let tail = match &found.latest {
                Some(_) => format!("{} unsigned entries after the last checkpoint", found.unsigned),
                None => format!("{} unsigned entries (no checkpoint yet)", found.unsigned),
            };
            outln!("ok: {} entries, {} signed checkpoints checked, {tail}", found.head.seq, found.checkpoints);
            outln!("head: {}", hex(&found.head.hash));
            if let Some(last) = &found.latest {
                outln!("last checkpoint: entry {}, signed {} by key {}", last.seq, last.at, last.key_id);
            }
            for a in &anchors {
                outln!("anchor: entry {} (signed {} by key {}) is in the chain", a.seq, a.at, a.key_id);
            }
            Ok(())
        }
        Err(broken) if broken.is_checkpoint() => {
            Err(Failure::Error(anyhow::anyhow!("audit signature check failed: {broken}")))
        }
        Err(broken) => Err(Failure::Error(anyhow::anyhow!("audit chain broken at {broken}"))),
    }
}

/// `custos audit checkpoint [--export]`.
pub fn checkpoint(vault: &Vault<AnyStore>, export: bool) -> Result<(), Failure> {
    let cp = vault.sign_checkpoint()?.map_err(|broken| {
        Failure::Error(anyhow::anyhow!("the audit chain does not verify, so it was not signed: {broken}"))
    })?;
    if export {
        let signer = vault.audit_signer()?;
        let key = signer.public_key();
        let exported = json!({
            "format": EXPORT_FORMAT,
            "seq": cp.seq,
            "head": hex(&cp.head),
            "at": cp.at.to_string(),
            "at_us": cp.at.0,
            "key_id": cp.key_id,
            "alg": "EdDSA",
            "public_key": key.jwk_x(),
            "signature": base64url_encode(&cp.signature),
        });
        outln!("{exported}");
    } else {
        outln!("signed: entry {} (head {}) by key {} at {}", cp.seq, hex(&cp.head), cp.key_id, cp.at);
    }
    Ok(())
}

fn read_json(file: &Path, what: &str) -> anyhow::Result<Value> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES).read_to_string(&mut text))
        .with_context(|| format!("cannot read the {what} file {}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("the {what} file {} is not JSON (line {}, column {})", file.display(), e.line(), e.column())
    })
}

/// An exported checkpoint, checked for shape (its signature is checked by the vault).
fn read_anchor(file: &Path) -> anyhow::Result<AuditCheckpoint> {
    let v = read_json(file, "anchor")?;
    let bad = |field: &str| {
        anyhow::anyhow!(
            "the anchor file {} is not an exported checkpoint (`custos audit checkpoint --export`): `{field}` is missing or malformed",
            file.display()
        )
    };
    if v["format"].as_str() != Some(EXPORT_FORMAT) {
        return Err(bad("format"));
    }
    let seq = v["seq"].as_u64().ok_or_else(|| bad("seq"))?;
    let head = v["head"].as_str().and_then(hash_from_hex).ok_or_else(|| bad("head"))?;
    let at = Timestamp(v["at_us"].as_i64().ok_or_else(|| bad("at_us"))?);
    let key_id = v["key_id"].as_str().filter(|k| k.len() <= 128).ok_or_else(|| bad("key_id"))?.to_string();
    let signature = v["signature"].as_str().and_then(base64url_decode).ok_or_else(|| bad("signature"))?;
    Ok(AuditCheckpoint { seq, head, at, key_id, signature })
}

/// 64 hexadecimal digits as 32 bytes.
fn hash_from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The Ed25519 keys of a JWK set (or of a single JWK).
fn read_jwk_set(file: &Path) -> anyhow::Result<Vec<AuditPublicKey>> {
    let v = read_json(file, "trusted keys")?;
    let jwks: Vec<&Value> = match v.get("keys") {
        Some(Value::Array(keys)) => keys.iter().collect(),
        Some(_) => anyhow::bail!("the trusted keys file {}: `keys` is not an array", file.display()),
        None => vec![&v],
    };
    let mut out = Vec::with_capacity(jwks.len());
    for (i, jwk) in jwks.into_iter().enumerate() {
        let bad = |why: &str| anyhow::anyhow!("the trusted keys file {}: key {}: {why}", file.display(), i + 1);
        if jwk["kty"].as_str() != Some("OKP") || jwk["crv"].as_str() != Some("Ed25519") {
            return Err(bad("not an Ed25519 key (`kty` must be `OKP` and `crv` `Ed25519`)"));
        }
        let x = jwk["x"].as_str().ok_or_else(|| bad("`x` is missing"))?;
        let key = AuditPublicKey::from_jwk_x(x).map_err(|e| bad(&e.to_string()))?;
        if let Some(kid) = jwk.get("kid")
            && kid.as_str() != Some(key.id())
        {
            return Err(bad("its `kid` is not the key's thumbprint"));
        }
        out.push(key);
    }
    Ok(out)
}
