//! [`KeyStore`] for [`SqliteStore`]: API keys, stored by the hash of their secret.

use custos_core::audit::AuditEvent;
use custos_core::time::Timestamp;
use custos_store::{ApiKeyRecord, KeyStore, StoreError};
use rusqlite::{Row, params};

use super::{append, or_exists};
use crate::SqliteStore;
use crate::error::{Context, corrupt};

/// The columns of `api_keys`, in the order [`api_key_from_row`] reads them.
macro_rules! api_key_columns {
    () => {
        "id, secret_hash, role, actor, purposes, created_at, revoked_at"
    };
}

/// The statements of this capability, each prepared once per connection and cached.
pub(super) mod sql {
    pub(super) const INSERT_API_KEY: &str =
        concat!("INSERT INTO api_keys (", api_key_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    pub(super) const API_KEY_BY_HASH: &str =
        concat!("SELECT ", api_key_columns!(), " FROM api_keys WHERE secret_hash = ?1");
    pub(super) const API_KEYS: &str = concat!("SELECT ", api_key_columns!(), " FROM api_keys ORDER BY created_at, id");
    pub(super) const REVOKE_API_KEY: &str = "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";

    /// All of them, for tests.
    #[cfg(test)]
    pub(in crate::store) const ALL: &[&str] = &[INSERT_API_KEY, API_KEY_BY_HASH, API_KEYS, REVOKE_API_KEY];
}

fn api_key_from_row(row: &Row<'_>) -> Result<ApiKeyRecord, StoreError> {
    let read = |e: rusqlite::Error| crate::error::backend("reading an API key", &e);
    let purposes: String = row.get(4).map_err(read)?;
    let purposes: Vec<String> = serde_json::from_str(&purposes).map_err(|e| {
        corrupt(&format!("an API key's purposes are not a JSON list (line {}, column {})", e.line(), e.column()))
    })?;
    Ok(ApiKeyRecord {
        id: row.get(0).map_err(read)?,
        secret_hash: row
            .get::<_, Vec<u8>>(1)
            .map_err(read)?
            .try_into()
            .map_err(|_| corrupt("an API key hash is not 32 bytes"))?,
        role: row.get(2).map_err(read)?,
        actor: row.get(3).map_err(read)?,
        purposes,
        created_at: Timestamp(row.get(5).map_err(read)?),
        revoked_at: row.get::<_, Option<i64>>(6).map_err(read)?.map(Timestamp),
    })
}

impl KeyStore for SqliteStore {
    fn create_api_key(&self, key: &ApiKeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        let purposes = serde_json::to_string(&key.purposes)
            .map_err(|_| StoreError::Backend("encoding an API key's purposes failed".into()))?;
        self.write("creating an API key", |tx, head| {
            let mut insert = tx.prepare_cached(sql::INSERT_API_KEY).during("creating an API key")?;
            or_exists(
                insert.execute(params![
                    key.id,
                    &key.secret_hash[..],
                    key.role,
                    key.actor,
                    purposes,
                    key.created_at.0,
                    key.revoked_at.map(|t| t.0),
                ]),
                StoreError::KeyExists,
                "creating an API key",
            )?;
            append(tx, head, audit)
        })
    }

    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::API_KEY_BY_HASH).during("looking up an API key")?;
            let mut rows = stmt.query([&hash[..]]).during("looking up an API key")?;
            match rows.next().during("looking up an API key")? {
                Some(row) => api_key_from_row(row).map(Some),
                None => Ok(None),
            }
        })
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(sql::API_KEYS).during("listing API keys")?;
            let mut rows = stmt.query([]).during("listing API keys")?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().during("listing API keys")? {
                out.push(api_key_from_row(row)?);
            }
            Ok(out)
        })
    }

    fn revoke_api_key(&self, id: &str, at: Timestamp, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        self.write("revoking an API key", |tx, head| {
            let revoked = tx
                .prepare_cached(sql::REVOKE_API_KEY)
                .and_then(|mut stmt| stmt.execute(params![id, at.0]))
                .during("revoking an API key")?;
            if revoked == 0 {
                // Unknown or revoked already: nothing changes and nothing is audited.
                return Ok(false);
            }
            append(tx, head, audit)?;
            Ok(true)
        })
    }
}
