//! The response a person receives to a request, in JSON, HTML or CSV: what
//! was decided, by whom, where to reach the controller and the supervisory
//! authority, and, for a verified access or portability request, the report
//! (`report.rs`). Personal data goes into a response only once the
//! requester's identity was verified and the request is being or was
//! carried out; a response is assembled on demand and never stored.

use std::fmt::Write as _;

use custos_core::policy::render::escape;
use custos_core::request::RequestStatus;
use custos_store::Store;
use serde::Serialize;

use super::record::Details;
use super::report::{AccessReport, Complaint};
use super::*;

/// The schema name and version of the JSON response.
pub const RESPONSE_FORMAT: &str = "custos-request-response/1";

/// A response, ready to be written out.
#[derive(Debug, Clone, Serialize)]
pub struct RequestResponse {
    /// [`RESPONSE_FORMAT`].
    pub format: &'static str,
    /// The request's id.
    pub request: String,
    /// Its kind.
    pub kind: String,
    /// Where it stands.
    pub status: RequestStatus,
    /// The day it was received.
    pub received: String,
    /// The due date in force.
    pub due: String,
    /// The day it closed.
    pub closed_on: Option<String>,
    /// What the person is told, in one paragraph.
    pub message: String,
    /// Who answers.
    pub controller: ControllerView,
    /// Why it was refused.
    pub denial: Option<DenialView>,
    /// The extension and its reason.
    pub extension: Option<ExtensionView>,
    /// What carrying it out did.
    pub outcome: Option<serde_json::Value>,
    /// Where the person may complain (always stated: GDPR Art. 12(4)).
    pub complaint: Complaint,
    /// The access or portability report.
    pub report: Option<AccessReport>,
}

/// The formats a response is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// The documented JSON (`custos-request-response/1`).
    Json,
    /// A page a person reads.
    Html,
    /// One row per value (or per fact, without a report).
    Csv,
}

impl ResponseFormat {
    /// The format named `s` (`json`, `html`, `csv`).
    pub fn parse(s: &str) -> Option<ResponseFormat> {
        match s {
            "json" => Some(ResponseFormat::Json),
            "html" => Some(ResponseFormat::Html),
            "csv" => Some(ResponseFormat::Csv),
            _ => None,
        }
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            ResponseFormat::Json => "application/json",
            ResponseFormat::Html => "text/html; charset=utf-8",
            ResponseFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

impl<S: Store> Vault<S> {
    /// The response to a request, as the person receives it. An access or
    /// portability request carries its report once verified and being or
    /// having been carried out (each production audited); before that, and
    /// for every other kind, the response states where the request stands.
    pub fn request_response(&self, id: &str, by: &By) -> Result<RequestResponse, VaultError> {
        let record = self.request_record(id)?;
        let details = Details::open(&self.keys, &record)?;
        let view = self.view(&record, Some(&details))?;
        let with_report = matches!(view.status, RequestStatus::InProgress | RequestStatus::Completed)
            && matches!(view.kind.as_str(), "access" | "portability");
        let report = if with_report {
            Some(self.access_report(&details.subject, view.kind == "portability", &record, by)?)
        } else {
            None
        };
        Ok(RequestResponse {
            format: RESPONSE_FORMAT,
            message: message(&view),
            request: view.id,
            kind: view.kind,
            status: view.status,
            received: view.received,
            due: view.due,
            closed_on: view.closed_on,
            complaint: self.complaint_in(&record.jurisdiction),
            controller: view.controller,
            denial: view.denial,
            extension: view.extension,
            outcome: view.outcome,
            report,
        })
    }
}

/// What the person is told, by status.
fn message(view: &RequestView) -> String {
    let kind = view.kind.replace('_', " ");
    match view.status {
        RequestStatus::Received | RequestStatus::IdentityUnverified => format!(
            "We received your {kind} request on {}. Before we act on it we need to verify your identity; we will \
             answer by {}.",
            view.received, view.due
        ),
        RequestStatus::Verified | RequestStatus::InProgress | RequestStatus::AwaitingSubject => {
            format!(
                "We are working on your {kind} request received on {}; we will answer by {}.",
                view.received, view.due
            )
        }
        RequestStatus::Completed => format!("We completed your {kind} request received on {}.", view.received),
        RequestStatus::Denied => format!("We could not act on your {kind} request received on {}.", view.received),
        RequestStatus::Withdrawn => format!("Your {kind} request received on {} was withdrawn.", view.received),
    }
}

impl RequestResponse {
    /// The response written in `format`.
    pub fn render(&self, format: ResponseFormat) -> String {
        match format {
            // A struct of strings, numbers, options and enums always serializes.
            ResponseFormat::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            ResponseFormat::Html => self.html(),
            ResponseFormat::Csv => self.csv(),
        }
    }

    fn html(&self) -> String {
        let mut h = String::new();
        let e = |s: &str| escape(s);
        let _ = writeln!(
            h,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Your {} request</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
             table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}}</style>\
             </head><body>\n<h1>Your {} request</h1>\n<p>{}</p>",
            e(&self.kind),
            e(&self.kind.replace('_', " ")),
            e(&self.message)
        );
        let _ = writeln!(
            h,
            "<dl><dt>Request</dt><dd>{}</dd><dt>Received</dt><dd>{}</dd><dt>Due</dt><dd>{}</dd><dt>Status</dt><dd>{}</dd></dl>",
            e(&self.request),
            e(&self.received),
            e(&self.due),
            e(self.status.as_str())
        );
        if let Some(d) = &self.denial {
            let _ = writeln!(h, "<h2>Why</h2>\n<p>{}</p>", e(d.text.as_deref().unwrap_or(d.code.as_str())));
        }
        if let Some(x) = &self.extension {
            let _ = writeln!(h, "<h2>Extension</h2>\n<p>{}</p>", e(x.reason.as_deref().unwrap_or("")));
        }
        if let Some(r) = &self.report {
            report_html(&mut h, r);
        }
        let c = &self.controller;
        let _ = write!(h, "<h2>Contact</h2>\n<p>{}<br>{}", e(&c.name), e(&c.address));
        if let Some(contact) = &c.contact {
            let _ = write!(h, "<br>{}", e(contact));
        }
        h.push_str("</p>\n");
        if let Some(a) = &self.complaint.supervisory_authority {
            let _ = writeln!(h, "<p>You may complain to the supervisory authority: {}.</p>", e(a));
        }
        h.push_str("</body></html>\n");
        h
    }

    fn csv(&self) -> String {
        let mut out = String::new();
        match &self.report {
            Some(r) => {
                row(
                    &mut out,
                    &[
                        "group",
                        "category",
                        "category_name",
                        "value",
                        "version",
                        "current",
                        "collected_at",
                        "source",
                        "collected_for",
                    ],
                );
                for g in &r.data {
                    for p in &g.items {
                        let value = p.value.as_deref().or(p.withheld.as_deref()).unwrap_or("");
                        let (version, current) = (p.version.to_string(), p.current.to_string());
                        row(
                            &mut out,
                            &[
                                &g.group,
                                &p.category,
                                &p.category_name,
                                value,
                                &version,
                                &current,
                                &p.collected_at,
                                &p.source,
                                &p.collected_for,
                            ],
                        );
                    }
                }
            }
            None => {
                row(&mut out, &["field", "value"]);
                let denial = self.denial.as_ref().map(|d| d.code.as_str()).unwrap_or("");
                for (k, v) in [
                    ("request", self.request.as_str()),
                    ("kind", &self.kind),
                    ("status", self.status.as_str()),
                    ("received", &self.received),
                    ("due", &self.due),
                    ("message", &self.message),
                    ("denial", denial),
                    ("controller", &self.controller.name),
                ] {
                    row(&mut out, &[k, v]);
                }
            }
        }
        out
    }
}

fn report_html(h: &mut String, r: &AccessReport) {
    let e = |s: &str| escape(s);
    h.push_str("<h2>The information we hold about you</h2>\n");
    for g in &r.data {
        let _ = writeln!(
            h,
            "<h3>{}</h3>\n<table><tr><th>What</th><th>Value</th><th>Since</th><th>From</th><th>Collected for</th></tr>",
            e(&g.group)
        );
        for p in &g.items {
            let value = match (&p.value, &p.withheld) {
                (Some(v), _) => e(v),
                (None, Some(w)) => format!("<em>{}</em>", e(w)),
                _ => String::new(),
            };
            let version = if p.current { String::new() } else { format!(" (earlier version {})", p.version) };
            let _ = writeln!(
                h,
                "<tr><td>{}{}</td><td>{value}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&p.category_name),
                e(&version),
                e(&p.collected_at),
                e(&p.source),
                e(&p.collected_for)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>Why we use it</h2>\n<ul>\n");
    for p in &r.purposes {
        let basis = p.legal_basis.map_or("not processed for this purpose here", |b| b.as_str());
        let _ = writeln!(h, "<li><strong>{}</strong> ({}): {}</li>", e(&p.name), e(basis), e(&p.description));
    }
    h.push_str("</ul>\n<h2>Who may receive it</h2>\n<ul>\n");
    for x in &r.recipients {
        let _ = writeln!(h, "<li>{} ({})</li>", e(&x.name), e(&x.countries.join(", ")));
    }
    h.push_str("</ul>\n<h2>Where it came from</h2>\n<ul>\n");
    for s in &r.sources {
        let _ = writeln!(h, "<li>{}: {}</li>", e(&s.name), e(&s.description));
    }
    let _ = writeln!(h, "</ul>\n<h2>How long we keep it</h2>\n<p>{}</p>\n<ul>", e(&r.retention.statement));
    for k in &r.retention.per_purpose {
        let text = k.period.clone().or_else(|| k.criteria.clone()).unwrap_or_default();
        let _ = writeln!(h, "<li>{}: {}</li>", e(&k.purpose), e(&text));
    }
    h.push_str("</ul>\n<h2>Transfers abroad</h2>\n<ul>\n");
    for t in &r.transfers {
        let _ = writeln!(h, "<li>{} (to {})</li>", e(&t.name), e(&t.to.join(", ")));
    }
    h.push_str("</ul>\n<h2>Automated decisions</h2>\n");
    if r.automated_decisions.statements.is_empty() {
        h.push_str("<p>The notice states no decisions based solely on automated processing.</p>\n");
    }
    for s in &r.automated_decisions.statements {
        let _ = writeln!(h, "<p>{}</p>", e(s));
    }
    h.push_str("<h2>Your rights</h2>\n<ul>\n");
    for x in &r.rights {
        let _ = writeln!(h, "<li>{} (answered within {})</li>", e(&x.right.replace('_', " ")), e(&x.deadline));
    }
    h.push_str("</ul>\n");
}

/// One CSV row (RFC 4180): every field quoted, quotes doubled, and a field
/// a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) led by `'`.
fn row(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            out.push('\'');
        }
        out.push_str(&f.replace('"', "\"\""));
        out.push('"');
    }
    out.push_str("\r\n");
}
