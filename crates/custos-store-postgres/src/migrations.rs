//! Schema migrations, embedded in the binary and applied in order at connect.
//!
//! Applied versions are rows of `custos_schema_migrations(version)`. All
//! pending migrations and their version rows run in one transaction, under a
//! transaction-scoped advisory lock, so two processes starting together do not
//! race (the second waits, then finds nothing left to do) and a failed
//! migration leaves the database as it was. A database at a version newer than
//! [`SCHEMA_VERSION`] is refused untouched.

use postgres::Client;

use crate::error::{Describe, OpenError};

/// The migrations, in order; the `n`th brings the schema to version `n`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_insert_only_versions.sql"),
    include_str!("../migrations/0003_store_identity.sql"),
    include_str!("../migrations/0004_audit_checkpoints.sql"),
    include_str!("../migrations/0005_idempotency_keyed.sql"),
    include_str!("../migrations/0006_sealed_subject_metadata.sql"),
    include_str!("../migrations/0007_items_bound.sql"),
    include_str!("../migrations/0008_guardian_consent_flag.sql"),
    include_str!("../migrations/0009_lookups.sql"),
    include_str!("../migrations/0010_requests.sql"),
    include_str!("../migrations/0011_legal_holds.sql"),
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock taken while migrating ("custos" in ASCII).
const MIGRATION_LOCK: i64 = 0x0000_6375_7374_6f73;

/// Brings the schema to [`SCHEMA_VERSION`].
pub(crate) fn migrate(client: &mut Client) -> Result<(), OpenError> {
    let fail = |step: &str, e: &postgres::Error| OpenError::Postgres(format!("{step}: {}", Describe(e)));
    let mut tx = client.transaction().map_err(|e| fail("starting the migration", &e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| fail("taking the migration lock", &e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS custos_schema_migrations (
             version    bigint      NOT NULL PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(|e| fail("creating the migrations table", &e))?;
    let found: i64 = tx
        .query_one("SELECT coalesce(max(version), 0)::bigint FROM custos_schema_migrations", &[])
        .and_then(|row| row.try_get(0))
        .map_err(|e| fail("reading the schema version", &e))?;
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew { found, supported: SCHEMA_VERSION });
    }
    let from =
        usize::try_from(found).map_err(|_| OpenError::Postgres(format!("the schema version {found} is not valid")))?;
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        let version = i64::try_from(done + 1).unwrap_or(i64::MAX);
        tx.batch_execute(sql)
            .map_err(|e| OpenError::Postgres(format!("applying migration {version}: {}", Describe(&e))))?;
        tx.execute("INSERT INTO custos_schema_migrations (version) VALUES ($1)", &[&version])
            .map_err(|e| fail("recording the schema version", &e))?;
    }
    tx.commit().map_err(|e| fail("committing the migration", &e))
}
