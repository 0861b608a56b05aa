//! `custos request …`: rights requests from the command line, each printed
//! as text (one `key: value` per line) or, with `--format json`, as the
//! same JSON object the HTTP API returns.

use clap::{Subcommand, ValueEnum};
use custos_core::request::{DenialCode, RequestStatus};
use custos_core::time::parse_date;
use custos_vault::{By, CODE_VALID_MINUTES, RequestQuery, RequestView, Submission, VerifyMethod};
use zeroize::Zeroizing;

use crate::cli::Global;
use crate::mail::SmtpSender;
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
        /// A rectification's correction, CATEGORY=VALUE (repeatable); stored sealed, cleared once written.
        #[arg(long = "correct", value_name = "CATEGORY=VALUE")]
        corrections: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Record that the requester's identity was verified, or verify it by an email code.
    ///
    /// `--method email_code` without `--code` sends a new code to the request's contact address
    /// (valid 10 minutes; 5 wrong codes lock the verification); with `--code` it checks the code
    /// the person received.
    Verify {
        /// Request id.
        id: String,
        /// How: session (the company's application attests a signed-in person), two_data_points,
        /// three_data_points_and_declaration, or email_code (a code sent to the contact address).
        #[arg(long)]
        method: String,
        /// With `--method email_code`: the code the person received (`-` reads it from standard input).
        #[arg(long)]
        code: Option<String>,
        /// The SMTP server codes are sent through: smtp://HOST:PORT (a relay on this machine),
        /// smtp://HOST:PORT?tls=starttls or smtps://HOST:PORT; `user:password@` before the host logs in.
        #[arg(long, env = "CUSTOS_SMTP_URL", hide_env_values = true)]
        smtp_url: Option<String>,
        /// The sender of the codes' mail: `address` or `Name <address>`.
        #[arg(long, env = "CUSTOS_SMTP_FROM")]
        smtp_from: Option<String>,
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
    /// Print the response the person receives (with the access report once carried out).
    Response {
        /// Request id.
        id: String,
        /// json (schema custos-request-response/1), html or csv.
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Request metrics of a year (CCPA §7102): per kind received, complied, denied, days to respond.
    Report {
        /// The calendar year of receipt.
        #[arg(long)]
        year: i32,
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
        RequestCommand::Submit { subject, kind, received, contact, note, purposes, corrections, format } => {
            let corrections = corrections
                .iter()
                .map(|c| {
                    c.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| usage("--correct", "expected CATEGORY=VALUE"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let received = received.as_deref().map(parse_date).transpose().map_err(|e| usage("--received", e))?;
            let view = vault.submit_request(
                &Submission {
                    subject: &subject,
                    kind: &kind,
                    received,
                    contact: contact.as_deref(),
                    note: note.as_deref(),
                    purposes,
                    corrections,
                },
                &by,
            )?;
            print(&view, format)?;
            refused(&view)
        }
        RequestCommand::Verify { id, method, code, smtp_url, smtp_from, format } if method == "email_code" => {
            let view = match code {
                Some(code) => {
                    let code = if code == "-" { read_code()? } else { Zeroizing::new(code) };
                    vault.check_verification_code(&id, &code, &by)?
                }
                None => {
                    let (Some(url), Some(from)) = (smtp_url, smtp_from) else {
                        return Err(Failure::Usage(
                            "--method email_code without --code sends a code: it needs --smtp-url and --smtp-from \
                             (or CUSTOS_SMTP_URL and CUSTOS_SMTP_FROM)"
                                .into(),
                        ));
                    };
                    let sender = SmtpSender::new(&url, &from)?;
                    let view = vault.send_verification_code(&id, &sender, &by)?;
                    eprintln!(
                        "sent a verification code to the request's contact address; it expires in {CODE_VALID_MINUTES} minutes"
                    );
                    view
                }
            };
            print(&view, format)
        }
        RequestCommand::Verify { id, method, code, format, .. } => {
            let method = VerifyMethod::parse(&method).ok_or_else(|| {
                usage("--method", "one of session, two_data_points, three_data_points_and_declaration, email_code")
            })?;
            if code.is_some() {
                return Err(usage("--code", "only with --method email_code"));
            }
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
        RequestCommand::Response { id, format } => {
            let format = custos_vault::ResponseFormat::parse(&format)
                .ok_or_else(|| usage("--format", "one of json, html, csv"))?;
            let text = zeroize::Zeroizing::new(vault.request_response(&id, &by)?.render(format));
            crate::output::text(&text)
        }
        RequestCommand::Report { year, format } => {
            if !(1970..=9998).contains(&year) {
                return Err(usage("--year", "between 1970 and 9998"));
            }
            let m = vault.request_metrics(year)?;
            match format {
                Format::Json => outln!("{}", serde_json::to_string_pretty(&m).map_err(anyhow::Error::from)?),
                Format::Text => {
                    outln!("kind\treceived\tcomplied\tdenied\twithdrawn\topen\tmedian_days\tmean_days");
                    let days = |d: Option<f64>| d.map_or_else(|| "-".to_string(), |d| format!("{d:.1}"));
                    for k in &m.kinds {
                        outln!(
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            k.kind,
                            k.received,
                            k.complied,
                            k.denied,
                            k.withdrawn,
                            k.open,
                            days(k.median_days),
                            days(k.mean_days)
                        );
                    }
                }
            }
            Ok(())
        }
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

/// A code from standard input (one line), so that it stays out of the process list.
fn read_code() -> Result<Zeroizing<String>, Failure> {
    use std::io::Read as _;
    let mut code = Zeroizing::new(String::new());
    std::io::stdin()
        .take(256)
        .read_to_string(&mut code)
        .map_err(|e| Failure::Error(anyhow::anyhow!("cannot read the code from standard input: {e}")))?;
    Ok(Zeroizing::new(code.trim().to_string()))
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
            if view.verification_locked {
                outln!("verification_locked: true (too many wrong codes; deny it as unverifiable)");
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
