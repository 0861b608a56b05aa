//! The command line, as clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Custos keeps the promises of a privacy notice: purpose-checked, encrypted,
/// audited storage of personal data.
#[derive(Debug, Parser)]
#[command(name = "custos", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Data directory (database and master key file).
    #[arg(long, global = true, env = "CUSTOS_DATA_DIR", default_value = "./custos-data")]
    pub data_dir: PathBuf,
    /// Policy file (YAML); the bundled AWS Privacy Notice (2020-01-24) when absent.
    #[arg(long, global = true, env = "CUSTOS_POLICY")]
    pub policy: Option<PathBuf>,
    /// PostgreSQL database (postgres://…); embedded SQLite in the data directory when absent.
    #[arg(long, global = true, env = "CUSTOS_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// Master key file (64 hex characters, mode 0600), when CUSTOS_MASTER_KEY is not set; defaults to
    /// <data-dir>/master.key for SQLite. PostgreSQL needs one of the two.
    #[arg(long, global = true, env = "CUSTOS_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// During a master-key rotation, the previous key's file (or CUSTOS_MASTER_KEY_PREVIOUS).
    #[arg(long, global = true, env = "CUSTOS_MASTER_KEY_PREVIOUS_FILE")]
    pub previous_master_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check or render the policy (the privacy notice as code).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Create, show or erase data subjects.
    Subject {
        #[command(subcommand)]
        command: SubjectCommand,
    },
    /// Write and read personal data (every read names a purpose).
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Record or withdraw consent to a purpose.
    Consent {
        #[command(subcommand)]
        command: ConsentCommand,
    },
    /// Record a subject's objection to a purpose.
    Object {
        /// Subject id.
        id: String,
        /// Purpose id.
        purpose: String,
    },
    /// Restrict processing of a subject's data (storage and legal claims only).
    Restrict {
        /// Subject id.
        id: String,
        /// Lift the restriction instead.
        #[arg(long)]
        lift: bool,
    },
    /// Opt a subject out of the sale and sharing of their personal information
    /// and of targeted advertising (CCPA §1798.120).
    OptOut {
        /// Subject id.
        id: String,
        /// Opt back in instead.
        #[arg(long)]
        lift: bool,
    },
    /// Limit the use of a subject's sensitive personal information to what
    /// CCPA §7027(m) permits (CCPA §1798.121).
    LimitSensitive {
        /// Subject id.
        id: String,
        /// Lift the limit instead.
        #[arg(long)]
        lift: bool,
    },
    /// Rights requests: submit, verify, extend, deny, withdraw, carry out, list.
    Request {
        #[command(subcommand)]
        command: crate::request::RequestCommand,
    },
    /// Verify or list the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Apply the database migrations and exit (every command also applies them on start).
    Migrate,
    /// Measure the hot paths (in a temporary data directory).
    Bench(BenchArgs),
    /// Run the HTTP API.
    Serve(ServeArgs),
    /// Create, list or revoke API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CUSTOS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Largest JSON body accepted, in bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// Largest ingestion batch accepted, in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_ingest_bytes: usize,
    /// How long a response recorded for an `Idempotency-Key` is replayed, in
    /// hours (1 to 8760); older records are pruned and a retry runs anew.
    #[arg(long, env = "CUSTOS_IDEMPOTENCY_TTL_HOURS", default_value_t = 24,
        value_parser = clap::value_parser!(u64).range(1..=8760))]
    pub idempotency_ttl_hours: u64,
    /// Most ingestion batches read and written at once (others wait, unread);
    /// peak memory is about this many times --max-ingest-bytes above the baseline.
    #[arg(long, env = "CUSTOS_MAX_CONCURRENT_INGESTIONS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_ingestions: u16,
    /// Seconds a client may take to send a request line and its headers
    /// (1 to 3600); a connection that takes longer is closed.
    #[arg(long, env = "CUSTOS_HEADER_READ_TIMEOUT_SECS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// TLS certificate chain (PEM); serves HTTPS together with --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Sign an audit checkpoint once the chain is this many entries past the last one (0: off).
    #[arg(long, env = "CUSTOS_CHECKPOINT_EVERY_ENTRIES", default_value_t = 100_000)]
    pub checkpoint_every_entries: u64,
    /// Sign an audit checkpoint this many seconds after the last one if the chain moved (0: off).
    #[arg(long, env = "CUSTOS_CHECKPOINT_EVERY_SECONDS", default_value_t = 10)]
    pub checkpoint_every_seconds: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; prints it once (only its hash is stored).
    Create {
        /// admin, service or auditor.
        #[arg(long)]
        role: String,
        /// For a service key: the declared recipient it acts as.
        #[arg(long)]
        actor: Option<String>,
        /// For a service key: the purposes it may read for (comma-separated).
        #[arg(long, value_delimiter = ',')]
        purposes: Vec<String>,
    },
    /// List keys (ids, roles, actors, purposes; never secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key id (the 8 characters after `cst_`).
        id: String,
    },
    /// Re-wrap every data key under a new master key, online: run with the new key as the master key
    /// and the old one as the previous key (CUSTOS_MASTER_KEY_PREVIOUS or --previous-master-key-file).
    RotateMaster {
        /// Data keys re-wrapped per audited transaction.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Print a new random master key (64 hex characters) and exit; opens no store.
    GenerateMaster,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy: exit 0 when valid (warnings printed), 1 with `file:line:col:` errors.
    Check {
        /// Policy file; defaults to --policy or the bundled example.
        file: Option<PathBuf>,
    },
    /// Render the human-readable privacy notice.
    Render {
        /// Policy file; defaults to --policy or the bundled example.
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = RenderFormat::Markdown)]
        format: RenderFormat,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RenderFormat {
    Markdown,
    Html,
}

#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Add a subject (creates their data key).
    Add {
        /// Subject id (1-128 printable ASCII characters, no spaces).
        id: String,
        /// Jurisdiction id from the policy, e.g. eea, california.
        #[arg(long)]
        jurisdiction: String,
        /// Home region of their data.
        #[arg(long)]
        region: Option<String>,
        /// Birth date, YYYY-MM-DD (drives the guardian rule).
        #[arg(long)]
        birth_date: Option<String>,
        /// Subject id of the linked parent or guardian.
        #[arg(long)]
        guardian: Option<String>,
    },
    /// Show a subject's consents, objections and restriction (no values);
    /// with --purpose, also their region, birth date and guardian (decided
    /// and audited like a read).
    Show {
        /// Subject id.
        id: String,
        /// Purpose of reading the metadata (region, birth date, guardian).
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Erase a subject: destroy their data key, making every value unreadable.
    Erase {
        /// Subject id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Store a value (a new version if one exists).
    Put {
        /// Subject id.
        id: String,
        /// Category id, e.g. contact.email.
        category: String,
        /// The value; `-` reads it from standard input (keeps it out of shell history), without one
        /// trailing newline (`\n` or `\r\n`), as `echo` adds; any other whitespace is kept.
        value: String,
        /// Source id: provided, automatic, or a declared third-party source.
        #[arg(long)]
        source: String,
        /// Purpose it is collected for.
        #[arg(long)]
        purpose: String,
    },
    /// Read the current value for a purpose; exit 3 when denied.
    Get {
        /// Subject id.
        id: String,
        /// Category id.
        category: String,
        /// Purpose of the read.
        #[arg(long)]
        purpose: String,
        /// Who reads: `controller` or a declared recipient id.
        #[arg(long, default_value = custos_vault::CONTROLLER)]
        actor: String,
    },
    /// Read every value a purpose may use, one `category<TAB>value` per line.
    All {
        /// Subject id.
        id: String,
        /// Purpose of the read.
        #[arg(long)]
        purpose: String,
        /// Who reads.
        #[arg(long, default_value = custos_vault::CONTROLLER)]
        actor: String,
    },
    /// Every version of a value, newest first.
    History {
        /// Subject id.
        id: String,
        /// Category id.
        category: String,
        /// Purpose of the read.
        #[arg(long)]
        purpose: String,
        /// Who reads.
        #[arg(long, default_value = custos_vault::CONTROLLER)]
        actor: String,
    },
    /// Recover the full card number behind a token (only for a detokenizing purpose).
    Detokenize {
        /// The token, `tok_…`.
        token: String,
        /// Purpose of the read.
        #[arg(long)]
        purpose: String,
        /// Who reads.
        #[arg(long, default_value = custos_vault::CONTROLLER)]
        actor: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Record consent to a purpose.
    Grant {
        /// Subject id.
        id: String,
        /// Purpose id.
        purpose: String,
        /// Given by this linked guardian on the subject's behalf.
        #[arg(long)]
        by_guardian: Option<String>,
    },
    /// Withdraw consent: processing for that purpose stops at once.
    Withdraw {
        /// Subject id.
        id: String,
        /// Purpose id.
        purpose: String,
        /// Withdrawn by this linked guardian.
        #[arg(long)]
        by_guardian: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain and every signed checkpoint: exit 0 with `ok: N entries, …` (and the
    /// number of entries after the last checkpoint, unsigned), or 1 naming the first bad checkpoint or entry.
    Verify {
        /// A JWK set (JSON) of further trusted checkpoint keys, e.g. a previous master key's
        /// (`GET /.well-known/custos/audit-keys` of that deployment).
        #[arg(long, value_name = "FILE")]
        trusted_keys: Option<PathBuf>,
        /// A checkpoint exported earlier (`custos audit checkpoint --export`) and kept elsewhere:
        /// the chain must still hold it.
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
    },
    /// Print entries (sequence number and JSON body).
    List {
        /// Start after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Print the pseudonym a subject id has in the audit log.
    Pseudonym {
        /// Subject id.
        id: String,
    },
    /// Sign the chain head now (after checking the entries since the last checkpoint).
    Checkpoint {
        /// Print the signed head as JSON (seq, head hash, time, key id, public key, signature),
        /// to anchor it outside the database; check it later with `audit verify --anchor FILE`.
        #[arg(long)]
        export: bool,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Benchmark the HTTP server instead of the in-process paths.
    #[command(subcommand)]
    pub target: Option<BenchTarget>,
    /// Subjects to create for the write and read benchmarks.
    #[arg(long, default_value_t = 25_000)]
    pub subjects: usize,
    /// Fields per subject [default: 8, or as many as one purpose of the policy may use].
    #[arg(long)]
    pub fields: Option<usize>,
    /// Audit entries to verify (the chain is topped up to this size).
    #[arg(long, default_value_t = 1_000_000)]
    pub audit_entries: u64,
    /// Decisions to time.
    #[arg(long, default_value_t = 5_000_000)]
    pub decisions: u64,
}

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Load the real HTTP server over loopback: purpose-checked reads, batch ingestion, memory.
    Http(HttpBenchArgs),
}

#[derive(Debug, Args)]
pub struct HttpBenchArgs {
    /// Concurrent connections for the read load (16 keeps 2 cores busy without queueing).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Seconds of read load.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Subjects to create before the read load.
    #[arg(long, default_value_t = 10_000)]
    pub subjects: usize,
    /// Items to ingest for the ingestion figure (and the memory figure).
    #[arg(long, default_value_t = 1_000_000)]
    pub ingest_items: usize,
    /// Items per ingestion request.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
}
