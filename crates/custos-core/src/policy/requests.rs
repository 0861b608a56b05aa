//! Rights requests as a jurisdiction declares them: which kinds are
//! available, and per kind the response deadline, extension, confirmation of
//! receipt, the identity verification it needs, whether the clock pauses
//! while the controller waits for the person, and the legal source; and the
//! jurisdiction's business-day calendar.
//!
//! A jurisdiction's `rights` list is what its section of the notice grants;
//! its `requests` table gives the rule of a kind where it differs from the
//! jurisdiction's `response` (the default for every kind it grants), and may
//! add a right the law grants where the notice is silent (`statutory: true`,
//! rendered as granted by law). Any other kind is not available there:
//! [`super::Policy::request_rule`] returns `None`, and a request of it is
//! refused (`right_not_available`).

use serde::Deserialize;
use serde_saphyr::Spanned;
use time::Weekday;

use super::Errors;
use super::document::{JurisdictionDoc, Right, SpannedStr};
use crate::deadline::{Calendar, DeadlineRule};

/// The identity verification a request needs before it is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// None: the request is acted on as received (CCPA opt-outs, §7060(b)).
    None,
    /// A code sent to the person's email address on file.
    EmailCode,
    /// Two data points matched against data already held (CCPA categories, §7062 ◐).
    TwoDataPoints,
    /// Three data points and a signed declaration (CCPA specific pieces, §7062 ◐).
    ThreeDataPointsAndDeclaration,
    /// The company's own application attests a signed-in person.
    Session,
}

impl Verification {
    /// The snake_case name used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::None => "none",
            Verification::EmailCode => "email_code",
            Verification::TwoDataPoints => "two_data_points",
            Verification::ThreeDataPointsAndDeclaration => "three_data_points_and_declaration",
            Verification::Session => "session",
        }
    }
}

/// The verification of a kind the jurisdiction grants without a rule of its own.
pub const DEFAULT_VERIFICATION: Verification = Verification::EmailCode;

/// Days of the week, as the policy file names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeekdayDoc {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl From<WeekdayDoc> for Weekday {
    fn from(d: WeekdayDoc) -> Weekday {
        match d {
            WeekdayDoc::Monday => Weekday::Monday,
            WeekdayDoc::Tuesday => Weekday::Tuesday,
            WeekdayDoc::Wednesday => Weekday::Wednesday,
            WeekdayDoc::Thursday => Weekday::Thursday,
            WeekdayDoc::Friday => Weekday::Friday,
            WeekdayDoc::Saturday => Weekday::Saturday,
            WeekdayDoc::Sunday => Weekday::Sunday,
        }
    }
}

/// A jurisdiction's business-day calendar as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDoc {
    /// Days that are never business days; Saturday and Sunday when absent.
    #[serde(default)]
    pub weekend: Option<Vec<WeekdayDoc>>,
    /// Public holidays (`YYYY-MM-DD`).
    #[serde(default)]
    pub holidays: Vec<SpannedStr>,
}

/// One kind's rule in a jurisdiction, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRuleDoc {
    /// The request kind.
    pub kind: Spanned<Right>,
    /// Time to respond; the jurisdiction's `response.deadline` when absent
    /// (and then its extension too). A rule that states a deadline states
    /// its extension, if any.
    #[serde(default)]
    pub deadline: Option<SpannedStr>,
    /// Further time allowed, with notice to the person.
    #[serde(default)]
    pub extension: Option<SpannedStr>,
    /// Time to confirm receipt, where the law sets one.
    #[serde(default)]
    pub confirm_receipt: Option<SpannedStr>,
    /// Identity verification needed; `email_code` when absent.
    #[serde(default)]
    pub verification: Option<Verification>,
    /// Whether the clock stops while waiting for the person's answer.
    #[serde(default)]
    pub clock_pauses: bool,
    /// Whether a period ending on a day that is not a business day runs on to the next one.
    #[serde(default)]
    pub roll_to_business_day: bool,
    /// A right the law grants though the notice does not state it.
    #[serde(default)]
    pub statutory: bool,
    /// Where the rule comes from.
    pub source: String,
}

/// One available request kind in a jurisdiction, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRule {
    /// The kind.
    pub kind: Right,
    /// Its deadlines.
    pub deadline: DeadlineRule,
    /// The verification it needs.
    pub verification: Verification,
    /// Granted by law where the notice is silent.
    pub statutory: bool,
    /// Where the rule comes from.
    pub source: String,
}

/// The calendar and every available kind's rule of `j`. `default_rule` is
/// the jurisdiction's `response`, compiled.
pub(super) fn compile(
    j: &JurisdictionDoc,
    default_rule: DeadlineRule,
    errs: &mut Errors,
) -> (Calendar, Vec<RequestRule>) {
    let calendar = match &j.calendar {
        None => Calendar::default(),
        Some(c) => {
            let weekend: Vec<Weekday> = match &c.weekend {
                None => vec![Weekday::Saturday, Weekday::Sunday],
                Some(days) => days.iter().map(|d| Weekday::from(*d)).collect(),
            };
            let holidays = c.holidays.iter().filter_map(|h| errs.date(h)).collect();
            let calendar = Calendar::new(&weekend, holidays);
            if calendar.has_no_business_days() {
                errs.push_at(&j.id, format!("jurisdiction `{}`: its calendar has no business day", j.id.value));
            }
            calendar
        }
    };
    let mut rules: Vec<RequestRule> = Vec::new();
    for r in &j.requests {
        let kind = r.kind.value;
        if !kind.is_request_kind() {
            errs.push_at(&r.kind, format!("`{}` is a right, not a kind of request", kind.as_str()));
            continue;
        }
        if rules.iter().any(|x| x.kind == kind) {
            errs.push_at(&r.kind, format!("request kind `{}` has two rules in this jurisdiction", kind.as_str()));
            continue;
        }
        if r.statutory && j.rights.contains(&kind) {
            errs.push_at(
                &r.kind,
                format!(
                    "`{}` is granted by the notice (`rights`); `statutory` marks a right the notice does not state",
                    kind.as_str()
                ),
            );
        }
        if !r.statutory && !j.rights.contains(&kind) {
            errs.push_at(
                &r.kind,
                format!(
                    "`{}` is not in this jurisdiction's `rights`: add it there, or mark the rule `statutory: true` if the law grants it where the notice is silent",
                    kind.as_str()
                ),
            );
        }
        let base = match &r.deadline {
            Some(d) => DeadlineRule {
                extension: r.extension.as_ref().and_then(|e| errs.period(e)),
                ..DeadlineRule::new(errs.period(d).unwrap_or(default_rule.deadline))
            },
            None => {
                if let Some(e) = &r.extension {
                    errs.push_at(e, "an extension needs the rule's own `deadline`".to_string());
                }
                default_rule
            }
        };
        rules.push(RequestRule {
            kind,
            deadline: DeadlineRule {
                confirm_receipt: r.confirm_receipt.as_ref().and_then(|c| errs.period(c)),
                clock_pauses: r.clock_pauses,
                roll_to_business_day: r.roll_to_business_day,
                ..base
            },
            verification: r.verification.unwrap_or(DEFAULT_VERIFICATION),
            statutory: r.statutory,
            source: r.source.clone(),
        });
    }
    for kind in j.rights.iter().copied().filter(|k| k.is_request_kind()) {
        if !rules.iter().any(|r| r.kind == kind) {
            rules.push(RequestRule {
                kind,
                deadline: default_rule,
                verification: DEFAULT_VERIFICATION,
                statutory: false,
                source: j.response.source.clone(),
            });
        }
    }
    rules.sort_by_key(|r| r.kind);
    (calendar, rules)
}
