//! `custos`: the command-line front of the Custos vault.
//!
//! Exit codes: 0 success, 1 error, 2 usage error, 3 denied by the policy.
//! Values are printed only by the commands that read them (`data get`,
//! `data all`, `data history`, `data detokenize`); no error message contains one.

mod audit;
mod bench;
mod cli;
mod env;
mod mail;
mod master_key;
mod output;
mod request;
mod serve;

use std::io::{Read as _, Write};
use std::process::ExitCode;

use clap::Parser;
use custos_core::policy::{self, render};
use custos_core::time::{Clock, SystemClock, format_date, parse_date};
use custos_vault::{By, NewSubject, Put, Read, VaultError};

use cli::*;
use output::outln;

/// mimalloc returns freed memory to the system promptly and keeps no large
/// per-thread arenas, which keeps the server's resident set small after bursts
/// of ingestion.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Freed memory goes back to the system at once instead of after a delay
/// that idle worker threads never reach, so the server's resident set follows
/// its working set after a burst of ingestion (see README, benchmarks).
///
/// And no transparent huge pages: mimalloc advises the kernel to back its
/// arenas with 2 MiB pages, so every arena region touched became resident
/// whole. During PostgreSQL ingestion that made the peak resident set
/// 150–200 MiB for a live heap of about 42 MiB; without them it is about
/// 80 MiB, at the same throughput. mimalloc's own option cannot do this from
/// `main` (its first arena is reserved and advised before `main` runs); the
/// per-process switch of the kernel applies to every later page fault.
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: `mi_option_set` stores an integer option and touches no Rust
    // memory; it runs first thing in `main`, before any other thread exists,
    // as mimalloc requires of option changes.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes how
    // the kernel backs this process's future page faults; no memory is read
    // or written. A kernel without it returns EINVAL, which changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// `mi_option_purge_delay` in mimalloc v2's `mi_option_t` (the -sys crate names
/// no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(2),
            };
        }
    };
    match run(cli) {
        Ok(()) | Err(Failure::OutputClosed) => ExitCode::SUCCESS,
        Err(Failure::Denied(d)) => {
            eprintln!("denied: {}: {}", d.reason.code(), d.sentence);
            ExitCode::from(3)
        }
        Err(Failure::Refused(code, sentence)) => {
            eprintln!("denied: {code}: {sentence}");
            ExitCode::from(3)
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Error(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// How a command failed, mapped to an exit code in `main`.
enum Failure {
    /// The reader of standard output went away: stop quietly.
    OutputClosed,
    Denied(custos_vault::Denied),
    /// Refused by the policy outside the decision engine (a right the
    /// subject's jurisdiction does not grant): a code and its sentence.
    Refused(&'static str, String),
    Usage(String),
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Error(e)
    }
}

impl From<VaultError> for Failure {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Denied(d) => Failure::Denied(d),
            e @ VaultError::RightNotAvailable { .. } => Failure::Refused("right_not_available", e.to_string()),
            // A locked verification is a refusal (exit 3), like a denial: no
            // code is sent or checked any more. A wrong, expired or missing
            // code is an error (exit 1) the person can fix by trying again.
            e @ VaultError::VerificationLocked => Failure::Refused("verification_locked", e.to_string()),
            other => Failure::Error(other.into()),
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let global = &cli.global;
    match cli.command {
        Command::Policy { command } => policy_command(global, command),
        Command::Bench(args) => match &args.target {
            None => Ok(bench::run(global, &args)?),
            Some(BenchTarget::Http(http)) => Ok(bench::run_http(global, http)?),
        },
        Command::Serve(args) => Ok(serve::run(global, &args)?),
        Command::Migrate => {
            env::open_vault(global)?;
            let backend = if global.database.is_some() { "PostgreSQL" } else { "SQLite" };
            outln!("{backend} database is up to date");
            Ok(())
        }
        Command::Key { command: KeyCommand::GenerateMaster } => {
            let key = custos_crypto::MasterKey::generate().map_err(anyhow::Error::from)?;
            outln!("{}", key.to_hex().as_str());
            Ok(())
        }
        Command::Key { command } => {
            let vault = env::open_vault(global)?;
            match command {
                KeyCommand::Create { role, actor, purposes } => {
                    let role = custos_vault::access::Role::parse(&role)
                        .ok_or_else(|| Failure::Usage(format!("--role: `{role}` is not admin, service or auditor")))?;
                    let key = vault.create_api_key(role, actor.as_deref(), &purposes, &By::Cli)?;
                    if let Err(e) = output::secret(key.secret.as_str()) {
                        // A key nobody holds must not stay active: revoke it (audited) and fail.
                        let id = &key.id;
                        return Err(Failure::Error(match vault.revoke_api_key(id, &By::Cli) {
                            Ok(_) => anyhow::anyhow!(
                                "cannot write the new key to standard output ({e}); key {id} was revoked, so no \
                                 unseen key is active: run the command again with standard output going somewhere"
                            ),
                            Err(r) => anyhow::anyhow!(
                                "cannot write the new key to standard output ({e}), and revoking key {id} failed \
                                 ({r}): run `custos key revoke {id}`"
                            ),
                        }));
                    }
                    eprintln!("created {} key {}; this is the only time the key is shown", role.as_str(), key.id);
                }
                KeyCommand::List => {
                    for k in vault.api_keys()? {
                        let state = k.revoked_at.map_or_else(|| "active".to_string(), |t| format!("revoked {t}"));
                        outln!(
                            "{}\t{}\t{}\t{}\tcreated {}\t{state}",
                            k.id,
                            k.role,
                            k.actor.as_deref().unwrap_or(custos_vault::CONTROLLER),
                            if k.purposes.is_empty() { "-".to_string() } else { k.purposes.join(",") },
                            k.created_at
                        );
                    }
                }
                KeyCommand::Revoke { id } => {
                    if vault.revoke_api_key(&id, &By::Cli)? {
                        outln!("revoked key {id}");
                    } else {
                        return Err(Failure::Error(anyhow::anyhow!("no active key with id `{id}`")));
                    }
                }
                KeyCommand::RotateMaster { batch } => {
                    let done = vault.rotate_master_key(batch)?;
                    outln!(
                        "re-wrapped {} data key(s) in {} batch(es); the store is keyed by the new master key{}",
                        done.rewrapped,
                        done.batches,
                        if done.key_check_moved { " now" } else { " (it already was)" }
                    );
                }
                KeyCommand::GenerateMaster => {}
            }
            Ok(())
        }
        Command::Subject { command } => {
            let vault = env::open_vault(global)?;
            match command {
                SubjectCommand::Add { id, jurisdiction, region, birth_date, guardian } => {
                    let birth_date = birth_date
                        .as_deref()
                        .map(parse_date)
                        .transpose()
                        .map_err(|e| Failure::Usage(format!("--birth-date: {e}")))?;
                    let s = vault.add_subject(
                        &NewSubject {
                            id: &id,
                            jurisdiction: &jurisdiction,
                            region: region.as_deref(),
                            birth_date,
                            guardian: guardian.as_deref(),
                        },
                        &By::Cli,
                    )?;
                    for warning in s.id.warnings() {
                        eprintln!("warning: {warning}");
                    }
                    outln!("added subject {} ({})", s.id, s.jurisdiction);
                }
                SubjectCommand::Show { id, purpose } => {
                    let s = match &purpose {
                        Some(p) => vault.subject_metadata(&Read {
                            subject: &id,
                            purpose: p,
                            actor: custos_vault::CONTROLLER,
                            scope: None,
                            by: &By::Cli,
                        })?,
                        None => vault.subject(&id)?,
                    };
                    outln!("id: {}", s.id);
                    outln!("jurisdiction: {}", s.jurisdiction);
                    if let Some(r) = &s.region {
                        outln!("region: {r}");
                    }
                    if let Some(b) = s.birth_date {
                        outln!("birth_date: {}", format_date(b));
                    }
                    if let Some(g) = &s.guardian {
                        outln!("guardian: {g}");
                    }
                    outln!("created_at: {}", s.created_at);
                    if let Some(e) = s.erased_at {
                        outln!("erased_at: {e}");
                    }
                    for (p, c) in &s.state.consents {
                        let by = if c.by_guardian { " by their guardian" } else { "" };
                        outln!("consent: {p} {:?} at {}{by}", c.status, c.at);
                    }
                    for (p, at) in &s.state.objections {
                        outln!("objection: {p} at {at}");
                    }
                    if let Some(r) = s.state.restricted_since {
                        outln!("restricted_since: {r}");
                    }
                }
                SubjectCommand::Erase { id } => {
                    let n = vault.erase(&id, &By::Cli)?;
                    outln!("erased subject {id}: data key destroyed, {n} item versions unreadable");
                }
            }
            Ok(())
        }
        Command::Data { command } => {
            let vault = env::open_vault(global)?;
            match command {
                DataCommand::Put { id, category, value, source, purpose } => {
                    let value = if value == "-" { read_stdin_value()? } else { value };
                    let v = vault.put(
                        &Put { subject: &id, category: &category, value: &value, source: &source, purpose: &purpose },
                        &By::Cli,
                    )?;
                    outln!("stored {category} version {v}");
                }
                DataCommand::Get { id, category, purpose, actor } => {
                    let r = vault.get(
                        &Read { subject: &id, purpose: &purpose, actor: &actor, scope: None, by: &By::Cli },
                        &category,
                    )?;
                    outln!("{}", r.value.as_str());
                }
                DataCommand::All { id, purpose, actor } => {
                    let (values, denied) = vault.get_all(&Read {
                        subject: &id,
                        purpose: &purpose,
                        actor: &actor,
                        scope: None,
                        by: &By::Cli,
                    })?;
                    for r in values {
                        outln!("{}\t{}", r.category, r.value.as_str());
                    }
                    for (c, d) in denied {
                        eprintln!("{c}: denied: {}: {}", d.reason.code(), d.sentence);
                    }
                }
                DataCommand::History { id, category, purpose, actor } => {
                    let versions = vault.history(
                        &Read { subject: &id, purpose: &purpose, actor: &actor, scope: None, by: &By::Cli },
                        &category,
                    )?;
                    for r in versions {
                        let state = match (r.superseded_at, r.delete_after) {
                            (None, _) => "current".to_string(),
                            (Some(s), Some(d)) => format!("superseded {s}, kept until {}", format_date(d)),
                            (Some(s), None) => format!("superseded {s}"),
                        };
                        outln!(
                            "v{}\t{}\tcollected {} from {} for {} (notice {})\t{}",
                            r.version,
                            state,
                            r.collected_at,
                            r.source,
                            r.collected_for,
                            r.notice_version,
                            r.value.as_str()
                        );
                    }
                }
                DataCommand::Detokenize { token, purpose, actor } => {
                    let pan = vault.detokenize(&token, &purpose, &actor, None, &By::Cli)?;
                    outln!("{}", pan.as_str());
                }
            }
            Ok(())
        }
        Command::Consent { command } => {
            let vault = env::open_vault(global)?;
            match command {
                ConsentCommand::Grant { id, purpose, by_guardian } => {
                    vault.grant_consent(&id, &purpose, by_guardian.as_deref(), &By::Cli)?;
                    outln!("consent to {purpose} granted for {id}");
                }
                ConsentCommand::Withdraw { id, purpose, by_guardian } => {
                    vault.withdraw_consent(&id, &purpose, by_guardian.as_deref(), &By::Cli)?;
                    outln!("consent to {purpose} withdrawn for {id}");
                }
            }
            Ok(())
        }
        Command::Object { id, purpose } => {
            let vault = env::open_vault(global)?;
            vault.object(&id, &purpose, &By::Cli)?;
            outln!("objection to {purpose} recorded for {id}");
            Ok(())
        }
        Command::Restrict { id, lift } => {
            let vault = env::open_vault(global)?;
            vault.set_restricted(&id, !lift, &By::Cli)?;
            outln!("processing for {id} {}", if lift { "no longer restricted" } else { "restricted" });
            Ok(())
        }
        Command::OptOut { id, lift } => {
            let vault = env::open_vault(global)?;
            vault.set_opted_out(&id, !lift, &By::Cli)?;
            outln!("{id} {}", if lift { "opted back in to sale and sharing" } else { "opted out of sale and sharing" });
            Ok(())
        }
        Command::LimitSensitive { id, lift } => {
            let vault = env::open_vault(global)?;
            vault.set_sensitive_limited(&id, !lift, &By::Cli)?;
            outln!(
                "use of sensitive information {} for {id}",
                if lift { "no longer limited" } else { "limited to what CCPA §7027(m) permits" }
            );
            Ok(())
        }
        Command::Request { command } => request::run(global, command),
        Command::Audit { command } => {
            let vault = env::open_vault(global)?;
            match command {
                AuditCommand::Verify { trusted_keys, anchor } => {
                    audit::verify(&vault, trusted_keys.as_deref(), anchor.as_deref())
                }
                AuditCommand::Checkpoint { export } => audit::checkpoint(&vault, export),
                AuditCommand::List { after, limit } => {
                    let entries = vault.store().audit_entries(after, limit).map_err(VaultError::from)?;
                    for e in entries {
                        outln!("{}\t{}", e.seq, e.body);
                    }
                    Ok(())
                }
                AuditCommand::Pseudonym { id } => {
                    outln!("{}", vault.pseudonym(&id));
                    Ok(())
                }
            }
        }
    }
}

fn policy_command(global: &Global, command: PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::Check { file } => {
            let (name, text) = env::policy_text(file.as_deref().or(global.policy.as_deref()))?;
            match policy::Policy::from_yaml(&text) {
                Ok(p) => {
                    let today = SystemClock.now().date();
                    let warnings = policy::lint(&p, today);
                    let mut out = std::io::stdout().lock();
                    for w in &warnings {
                        let _ = writeln!(out, "{}", w.display_in(&name));
                    }
                    let doc = p.document();
                    let _ = writeln!(
                        out,
                        "{name}: ok: notice {} version {}: {} categories, {} purposes, {} recipients, {} jurisdictions; {} warning(s)",
                        doc.notice.id.value,
                        p.version(),
                        doc.categories.len(),
                        doc.purposes.len(),
                        doc.recipients.len(),
                        doc.jurisdictions.len(),
                        warnings.len()
                    );
                    Ok(())
                }
                Err(e) => {
                    for d in &e.diagnostics {
                        eprintln!("{}", d.display_in(&name));
                    }
                    Err(Failure::Error(anyhow::anyhow!("{name}: {} error(s)", e.diagnostics.len())))
                }
            }
        }
        PolicyCommand::Render { file, format } => {
            let (name, text) = env::policy_text(file.as_deref().or(global.policy.as_deref()))?;
            let p = policy::Policy::from_yaml(&text)
                .map_err(|e| Failure::Error(anyhow::anyhow!("{}", e.display_in(&name))))?;
            let format = match format {
                RenderFormat::Markdown => render::Format::Markdown,
                RenderFormat::Html => render::Format::Html,
            };
            output::text(&render::render(&p, format))?;
            Ok(())
        }
    }
}

fn read_stdin_value() -> Result<String, Failure> {
    let mut s = String::new();
    std::io::stdin()
        .take(custos_vault::MAX_VALUE_BYTES as u64 + 2)
        .read_to_string(&mut s)
        .map_err(|e| Failure::Error(anyhow::anyhow!("cannot read the value from standard input: {e}")))?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
