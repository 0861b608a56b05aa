//! Keeping the cached chain head true when other processes write, and the
//! readiness check of the write path.
//!
//! The write connection caches the audit chain head, so that an append does
//! not read it back first. Another process on the same file (a CLI command
//! beside `custos serve`) appends too, and a head cached before its commit
//! would number the next entry on top of entries that exist already. Inside
//! each write transaction, which holds SQLite's write lock, `PRAGMA
//! data_version` tells whether any other connection committed since this one
//! last looked; only then is the head read again from `audit_head` (one
//! indexed row), and the schema version checked again (another process may
//! have migrated the file to a newer schema since this one opened it).
//!
//! The store's other state needs no such check: prepared statements are
//! re-prepared by SQLite itself when the schema changes, read connections
//! keep no snapshot between reads (each read is its own transaction), and the
//! group-commit queue holds only this process's pending appends, which its
//! leader appends after the head checked here. The check costs one pragma per transaction and the group
//! commit of audit appends is unchanged.

use custos_core::audit::ChainHead;
use custos_store::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Context, OpenError, corrupt};
use crate::migrations::SCHEMA_VERSION;
use crate::store::{hash32, load_head};
use crate::{SqliteStore, Writer};

const DATA_VERSION: &str = "PRAGMA data_version";
const USER_VERSION: &str = "PRAGMA user_version";
const LAST_ENTRY: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";

/// Brings `head` up to date inside a write transaction on `tx`: read again
/// from `audit_head` when another connection has committed since `seen`.
/// The cached identity key is forgotten then too (read again when needed).
pub(crate) fn sync_head(
    tx: &Connection,
    head: &mut ChainHead,
    seen: &mut Option<i64>,
    identity_key: &mut Option<Option<crate::IdentityKey>>,
) -> Result<(), StoreError> {
    let version: i64 = tx
        .prepare_cached(DATA_VERSION)
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
        .during("checking for writes by other connections")?;
    if *seen != Some(version) {
        // The schema version was checked at open; another process may have
        // migrated the file since (a newer build): its schema is not ours to write.
        let schema: i64 = tx
            .prepare_cached(USER_VERSION)
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .during("reading the schema version")?;
        if schema > SCHEMA_VERSION {
            return Err(OpenError::SchemaTooNew { found: schema, supported: SCHEMA_VERSION }.into());
        }
        *head = load_head(tx)?;
        *identity_key = None;
        *seen = Some(version);
    }
    Ok(())
}

impl SqliteStore {
    /// Takes the write lock (waiting as long as a write would), brings the
    /// cached head up to date, checks that the recorded head is the last
    /// entry of the chain, and rolls back.
    pub(crate) fn check_writable_now(&self) -> Result<(), StoreError> {
        const OP: &str = "checking that the store can write";
        let mut writer = self.writer();
        let Writer { conn, head, seen_version, identity_key } = &mut *writer;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).during(OP)?;
        sync_head(&tx, head, seen_version, identity_key)?;
        let stored = load_head(&tx)?;
        if stored != *head {
            // Cannot happen while data_version works as documented; the
            // stored head is the truth, and the next write appends after it.
            *head = stored;
        }
        let last: Option<(i64, Vec<u8>)> = tx
            .prepare_cached(LAST_ENTRY)
            .and_then(|mut stmt| stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .during(OP)?;
        let last = match last {
            None => ChainHead::EMPTY,
            Some((seq, hash)) => ChainHead {
                seq: u64::try_from(seq).map_err(|_| corrupt("an audit sequence number is negative"))?,
                hash: hash32(hash)?,
            },
        };
        if last != stored {
            return Err(corrupt("the recorded audit head is not the last audit entry; the next append would fail"));
        }
        tx.rollback().during(OP)
    }
}
