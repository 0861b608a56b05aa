//! `custos request …`: rights requests from the command line, each printed
//! as text (one `key: value` per line) or, with `--format json`, as the
//! same JSON object the HTTP API returns.

use clap::{Subcommand, ValueEnum};
use custos_core::request::{DenialCode, RequestStatus};
use custos_core::time::parse_date;
use custos_vault::{By, RequestQuery, RequestView, Submission, VerifyMethod};

use crate::cli::Global;
use crate::output::outln;
use crate::{Failure, env};

/// How a command prints requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// `key: value` lines.
    #[default]
    Text,
    /// One JSON object per request (a JSON array for `list`).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Record a rights request of a subject; prints it with its due and confirm-by dates.
    Submit {
        /// Subject id.
        #[arg(long)]
        subject: String,
        /// Request kind: access, portability, rectification, erasure, restriction, objection, opt_out,
        /// limit_sensitive, withdraw_consent, complaint.
        #[arg(long)]
        kind: String,
        /// The day it was received, YYYY-MM-DD, when not today (never in the future).
        #[arg(long)]
        received: Option<String>,
        /// Where the person is answered (an email address); stored sealed.
        #[arg(long)]
        contact: Option<String>,
        /// What the person wrote; stored sealed.
        #[arg(long)]
        note: Option<String>,
        /// A purpose the objection or consent withdrawal names (repeatable).
        #[arg(long = "purpose")]
        purposes: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Record that the requester's identity was verified.
    Verify {
        /// Request id.
        id: String,
        /// How: session (the company's application attests a signed-in person), two_data_points,
        /// three_data_points_and_declaration.
        #[arg(long)]
        method: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// List requests by due date.
    List {
        /// Only this status.
        #[arg(long)]
        status: Option<String>,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Only this subject's.
        #[arg(long)]
        subject: Option<String>,
        /// Only those due before this day, YYYY-MM-DD.
        #[arg(long)]
        due_before: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show one request with its timeline.
    Show {
        /// Request id.
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Extend a request's deadline (once, where the law allows, by the unextended due date).
    Extend {
        /// Request id.
        id: String,
        /// Why, as the person is told.
        #[arg(long)]
        reason: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Refuse a request.
    Deny {
        /// Request id.
        id: String,
        /// unverifiable, manifestly_unfounded, excessive, exempt, right_not_available, duplicate.
        #[arg(long)]
        code: String,
        /// The explanation the person is told (cite the exception or hold for `exempt`).
        #[arg(long)]
        text: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Record that the person withdrew a request.
    Withdraw {
        /// Request id.
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Carry out a verified request and complete it.
    Execute {
        /// Request id.
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Delete the records of requests closed more than 24 months ago (CCPA §7101).
    Prune,
}

fn usage(flag: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Usage(format!("{flag}: {e}"))
}

pub fn run(global: &Global, command: RequestCommand) -> Result<(), Failure> {
    let vault = env::open_vault(global)?;
    let by = By::Cli;
    match command {
        RequestCommand::Submit { subject, kind, received, contact, note, purposes, format } => {
            let received = received.as_deref().map(parse_date).transpose().map_err(|e| usage("--received", e))?;
            let view = vault.submit_request(
                &Submission {
                    subject: &subject,
                    kind: &kind,
                    received,
                    contact: contact.as_deref(),
                    note: note.as_deref(),
                    purposes,
                },
                &by,
            )?;
            print(&view, format)?;
            refused(&view)
        }
        RequestCommand::Verify { id, method, format } => {
            let method = VerifyMethod::parse(&method).ok_or_else(|| {
                usage("--method", "one of session, two_data_points, three_data_points_and_declaration")
            })?;
            print(&vault.verify_request(&id, method, &by)?, format)
        }
        RequestCommand::List { status, kind, subject, due_before, limit, format } => {
            let status = status
                .as_deref()
                .map(|s| RequestStatus::parse(s).ok_or_else(|| usage("--status", "not a request status")))
                .transpose()?;
            let due_before = due_before.as_deref().map(parse_date).transpose().map_err(|e| usage("--due-before", e))?;
            let query = RequestQuery { subject: subject.as_deref(), kind: kind.as_deref(), status, due_before, limit };
            let views = vault.requests(&query)?;
            match format {
                Format::Json => outln!("{}", serde_json::to_string_pretty(&views).map_err(anyhow::Error::from)?),
                Format::Text => {
                    for v in &views {
                        let flag = if v.overdue { "\toverdue" } else { "" };
                        outln!("{}\t{}\t{}\t{}\tdue {}{flag}", v.id, v.kind, v.jurisdiction, v.status.as_str(), v.due);
                    }
                }
            }
            Ok(())
        }
        RequestCommand::Show { id, format } => print(&vault.request(&id)?, format),
        RequestCommand::Extend { id, reason, format } => print(&vault.extend_request(&id, &reason, &by)?, format),
        RequestCommand::Deny { id, code, text, format } => {
            let code = DenialCode::parse(&code).ok_or_else(|| {
                usage(
                    "--code",
                    "one of unverifiable, manifestly_unfounded, excessive, exempt, right_not_available, duplicate",
                )
            })?;
            print(&vault.deny_request(&id, code, &text, &by)?, format)
        }
        RequestCommand::Withdraw { id, format } => print(&vault.withdraw_request(&id, &by)?, format),
        RequestCommand::Execute { id, format } => print(&vault.execute_request(&id, &by)?, format),
        RequestCommand::Prune => {
            let n = vault.prune_request_records(&by)?;
            outln!("deleted {n} request record(s) past their retention");
            Ok(())
        }
    }
}

/// A request recorded but refused at once exits like a denial (3), after it is printed.
fn refused(view: &RequestView) -> Result<(), Failure> {
    match &view.denial {
        Some(d) if d.code == DenialCode::RightNotAvailable => Err(Failure::Refused(
            "right_not_available",
            format!(
                "the right `{}` is not available in jurisdiction `{}` under the policy",
                view.kind, view.jurisdiction
            ),
        )),
        Some(d) if d.code == DenialCode::Duplicate => Err(Failure::Refused(
            "duplicate",
            format!("the subject has an open `{}` request: {}", view.kind, view.duplicate_of.as_deref().unwrap_or("")),
        )),
        _ => Ok(()),
    }
}

fn print(view: &RequestView, format: Format) -> Result<(), Failure> {
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(view).map_err(anyhow::Error::from)?),
        Format::Text => {
            outln!("id: {}", view.id);
            outln!("kind: {}", view.kind);
            outln!("jurisdiction: {}", view.jurisdiction);
            outln!("status: {}", view.status.as_str());
            outln!("received: {}", view.received);
            outln!("due: {}{}", view.due, if view.overdue { " (overdue)" } else { "" });
            if let Some(c) = &view.confirm_by {
                outln!("confirm_by: {c}");
            }
            if let Some(e) = &view.extended_due
                && view.extension.is_none()
            {
                outln!("extendable_to: {e}");
            }
            outln!("verification: {}", view.verification);
            if let Some(v) = &view.verified_by {
                outln!("verified_by: {v}");
            }
            if let Some(e) = &view.extension {
                outln!("extended: told on {}: {}", e.noticed_on, e.reason.as_deref().unwrap_or(""));
            }
            if let Some(d) = &view.denial {
                outln!("denied: {}: {}", d.code.as_str(), d.text.as_deref().unwrap_or(""));
            }
            if let Some(d) = &view.duplicate_of {
                outln!("duplicate_of: {d}");
            }
            outln!("controller: {} ({})", view.controller.name, view.controller.id);
            if let Some(c) = &view.controller.contact {
                outln!("contact: {c}");
            }
            if let Some(o) = &view.outcome {
                outln!("outcome: {o}");
            }
            for step in &view.timeline {
                outln!("step: {} {} -> {} by {}", step.at, step.step, step.status.as_str(), step.by);
            }
        }
    }
    Ok(())
}
