//! [`KeyStore`] for [`PostgresStore`]: API keys, stored by the hash of their secret.

use custos_core::audit::AuditEvent;
use custos_core::time::Timestamp;
use custos_store::{ApiKeyRecord, KeyStore, StoreError};
use postgres::Row;

use super::append_if_any;
use crate::PostgresStore;
use crate::error::{Context, corrupt};

/// The columns of `api_keys`, in the order [`api_key_from_row`] reads them.
macro_rules! api_key_columns {
    () => {
        "id, secret_hash, role, actor, purposes, created_at, revoked_at"
    };
}

/// The statements of this capability.
pub(super) mod sql {
    pub(super) const INSERT_API_KEY: &str = concat!(
        "INSERT INTO api_keys (",
        api_key_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
    );
    pub(super) const API_KEY_BY_HASH: &str =
        concat!("SELECT ", api_key_columns!(), " FROM api_keys WHERE secret_hash = $1");
    pub(super) const API_KEYS: &str = concat!("SELECT ", api_key_columns!(), " FROM api_keys ORDER BY created_at, id");
    pub(super) const REVOKE_API_KEY: &str = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
}

fn api_key_from_row(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    const OP: &str = "reading an API key";
    Ok(ApiKeyRecord {
        id: row.try_get(0).during(OP)?,
        secret_hash: row
            .try_get::<_, Vec<u8>>(1)
            .during(OP)?
            .try_into()
            .map_err(|_| corrupt("an API key hash is not 32 bytes"))?,
        role: row.try_get(2).during(OP)?,
        actor: row.try_get(3).during(OP)?,
        purposes: row.try_get(4).during(OP)?,
        created_at: Timestamp(row.try_get(5).during(OP)?),
        revoked_at: row.try_get::<_, Option<i64>>(6).during(OP)?.map(Timestamp),
    })
}

impl KeyStore for PostgresStore {
    fn create_api_key(&self, key: &ApiKeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        const OP: &str = "creating an API key";
        let revoked_at = key.revoked_at.map(|t| t.0);
        self.write(OP, |tx| {
            let inserted = tx
                .execute(
                    sql::INSERT_API_KEY,
                    &[
                        &key.id,
                        &&key.secret_hash[..],
                        &key.role,
                        &key.actor,
                        &key.purposes,
                        &key.created_at.0,
                        &revoked_at,
                    ],
                )
                .or_exists(StoreError::KeyExists, OP)?;
            if inserted == 0 {
                return Err(StoreError::KeyExists);
            }
            append_if_any(tx, audit)
        })
    }

    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.read(|conn| {
            let row = conn.query_opt(sql::API_KEY_BY_HASH, &[&&hash[..]]).during("looking up an API key")?;
            row.as_ref().map(api_key_from_row).transpose()
        })
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(|conn| {
            let rows = conn.query(sql::API_KEYS, &[]).during("listing API keys")?;
            rows.iter().map(api_key_from_row).collect()
        })
    }

    fn revoke_api_key(&self, id: &str, at: Timestamp, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        self.write("revoking an API key", |tx| {
            let revoked = tx.execute(sql::REVOKE_API_KEY, &[&id, &at.0]).during("revoking an API key")?;
            if revoked == 0 {
                // Unknown or revoked already: nothing changes and nothing is audited.
                return Ok(false);
            }
            append_if_any(tx, audit)?;
            Ok(true)
        })
    }
}
