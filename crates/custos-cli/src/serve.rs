//! `custos serve`: the HTTP API on the data directory's store, over HTTPS
//! with `--tls-cert` and `--tls-key`.

use anyhow::Context;
use custos_server::{AppState, Config};

use crate::cli::{Global, LogFormat, ServeArgs};
use crate::env;

/// Runs the server until SIGINT or SIGTERM.
pub fn run(global: &Global, args: &ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    // Load the certificate first, so a bad file fails at once, in one line, before anything opens.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(custos_server::tls::TlsConfig::load(cert, key)?),
        _ => None,
    };
    let vault = env::open_plain_vault(global)?;
    bootstrap_admin_key(&vault, &global.data_dir)?;
    let config = Config {
        max_body_bytes: args.max_body_bytes,
        max_ingest_bytes: args.max_ingest_bytes,
        idempotency_ttl: std::time::Duration::from_secs(args.idempotency_ttl_hours.saturating_mul(3600)),
        max_concurrent_ingestions: usize::from(args.max_concurrent_ingestions),
        header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout_secs),
    };
    let state = AppState::new(vault, config);
    // Vault calls block (SQLite); a few threads per core keep the cores busy
    // without the context switches and per-thread allocator arenas of tokio's
    // default 512.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(cores * 4)
        .build()
        .context("cannot start the runtime")?;
    // The last reference to the state (and so to the store) is dropped below,
    // outside the async runtime: closing a PostgreSQL connection blocks.
    let keep = state.clone();
    let schedule = custos_server::checkpoints::CheckpointSchedule {
        every_entries: args.checkpoint_every_entries,
        every: std::time::Duration::from_secs(args.checkpoint_every_seconds),
    };
    let served = runtime.block_on(async {
        let checkpointer = custos_server::checkpoints::spawn(state.clone(), schedule);
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr().context("cannot read the listening address")?;
        tracing::info!(%addr, data_dir = %global.data_dir.display(), "custos listening");
        // A line on stdout for scripts and tests to wait on.
        match tls {
            Some(tls) => {
                println!("listening on https://{addr}");
                custos_server::tls::serve_tls(listener, state, tls, custos_server::shutdown_signal())
                    .await
                    .context("server error")?;
            }
            None => {
                println!("listening on http://{addr}");
                custos_server::serve(listener, state, custos_server::shutdown_signal())
                    .await
                    .context("server error")?;
            }
        }
        checkpointer.abort();
        tracing::info!("stopped");
        Ok(())
    });
    // Stop the runtime first: its tasks (open connections) still hold the
    // state, and must let go of it inside the runtime. Only then may the last
    // reference go, outside any runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    // The last entries are signed on the way out (blocking, outside the runtime).
    if let Some(seq) = custos_server::checkpoints::sign_now(&keep.vault) {
        tracing::info!(seq, "signed the audit chain head");
    }
    drop(keep);
    served
}

/// On a data directory without any API key, creates an admin key and writes
/// it to `<data-dir>/admin.key` (mode 0600), so a fresh install can be used at
/// once. The key itself is never logged.
fn bootstrap_admin_key(vault: &custos_server::SharedVault, data_dir: &std::path::Path) -> anyhow::Result<()> {
    if !vault.api_keys()?.is_empty() {
        return Ok(());
    }
    let path = data_dir.join("admin.key");
    let key = vault.create_api_key(custos_vault::access::Role::Admin, None, &[], &custos_vault::By::Cli)?;
    write_private(&path, key.secret.as_bytes())
        .with_context(|| format!("cannot write the initial admin key to {}", path.display()))?;
    tracing::info!(key_id = %key.id, file = %path.display(), "no API key existed: created an admin key");
    eprintln!(
        "created an admin API key in {} (use it as `Authorization: Bearer $(cat {})`)",
        path.display(),
        path.display()
    );
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(content)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, content: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, content)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUSTOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}
