//! The privacy notice as code: loading, validating and indexing a policy file.
//!
//! Loading has three stages, as in Cedar: the YAML is parsed into a
//! [`document::PolicyDocument`] (syntax, types and unknown keys are errors with a
//! position), the document is validated (every reference must name something
//! declared, every period must parse), and it is compiled into a [`Policy`]
//! with dense ids and bitsets so that [`crate::decision`] runs without
//! allocating or hashing strings. [`lint`] then reports warnings.

pub mod document;
mod holds;
mod lint;
pub mod render;
mod requests;

use std::collections::HashMap;
use std::fmt;

use serde_saphyr::{Location, Spanned};
use time::Date;

use crate::deadline::{Calendar, DeadlineRule};
use crate::time::{Period, parse_date};
use document::*;
pub use requests::{CalendarDoc, RequestRule, RequestRuleDoc, Verification, WeekdayDoc};

pub use holds::LegalHold;
pub use lint::lint;

// Dense ids. Their field is private to this module: an id exists only because
// the policy made it (by resolving a declared name or listing its own ids), so
// no caller can forge one, and every table lookup by id is in bounds.

/// Dense index of a category in its policy; obtained only from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategoryId(u16);
/// Dense index of a purpose in its policy; obtained only from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PurposeId(u16);
/// Dense index of a recipient in its policy; obtained only from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecipientId(u16);
/// Dense index of a jurisdiction in its policy; obtained only from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JurisdictionId(u16);

/// The most entries a policy table (sources, categories, purposes, recipients,
/// jurisdictions, controllers, transfers) may hold: ids are `u16`, and a
/// longer table is refused when the policy is compiled, never wrapped.
pub const MAX_TABLE_LEN: usize = u16::MAX as usize;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The policy cannot be used.
    Error,
    /// The policy can be used, but something deserves a look.
    Warning,
}

/// A problem found in a policy file, with its position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong, as a sentence.
    pub message: String,
}

impl Diagnostic {
    fn at(severity: Severity, loc: Location, message: impl Into<String>) -> Self {
        Diagnostic { severity, line: loc.line(), column: loc.column(), message: message.into() }
    }

    /// Formats as `file:line:col: severity: message`.
    pub fn display_in(&self, file: &str) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            format!("{file}: {sev}: {}", self.message)
        } else {
            format!("{file}:{}:{}: {sev}: {}", self.line, self.column, self.message)
        }
    }
}

/// A policy that failed to load: every error found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The errors.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", d.display_in("policy"))?;
        }
        Ok(())
    }
}

impl PolicyError {
    /// All errors formatted against a file name, one per line.
    pub fn display_in(&self, file: &str) -> String {
        self.diagnostics.iter().map(|d| d.display_in(file)).collect::<Vec<_>>().join("\n")
    }
}

/// A compiled purpose: what the decision engine needs, by dense id.
#[derive(Debug, Clone)]
pub struct PurposeRules {
    /// Categories this purpose may use, as a bitset over [`CategoryId`].
    categories: Bitset,
    /// Legal basis per jurisdiction (index = [`JurisdictionId`]); `None` = no basis.
    basis: Vec<Option<LegalBasis>>,
    /// Objection is absolute (direct marketing).
    pub direct_marketing: bool,
    /// May continue while processing is restricted.
    pub allowed_when_restricted: bool,
    /// Sells or shares, or targets advertising: stops after an opt-out.
    pub sale_or_sharing: bool,
    /// May go on using sensitive information after a limit request.
    pub sensitive_use_permitted: bool,
}

impl PurposeRules {
    /// Whether this purpose may use `category`.
    pub fn allows(&self, category: CategoryId) -> bool {
        self.categories.contains(category.0)
    }

    /// The legal basis in `jurisdiction`, if the policy gives one.
    pub fn basis_in(&self, jurisdiction: JurisdictionId) -> Option<LegalBasis> {
        self.basis.get(usize::from(jurisdiction.0)).copied().flatten()
    }
}

/// A compiled recipient.
#[derive(Debug, Clone)]
pub struct RecipientRules {
    purposes: Bitset,
    /// `None` = any category its purposes allow.
    categories: Option<Bitset>,
}

impl RecipientRules {
    /// Whether this recipient may receive `category` for `purpose`.
    pub fn may_receive(&self, purpose: PurposeId, category: CategoryId) -> bool {
        self.purposes.contains(purpose.0) && self.categories.as_ref().is_none_or(|c| c.contains(category.0))
    }
}

/// A compiled jurisdiction.
#[derive(Debug, Clone)]
pub struct JurisdictionRules {
    /// People under this age need a linked guardian who consents.
    pub guardian_required_under: u8,
    /// Deadline for rights requests (the `response` every kind without a rule of its own follows).
    pub deadline: Period,
    /// Extension of the deadline.
    pub extension: Option<Period>,
    /// Which days are business days.
    pub calendar: Calendar,
    /// Every request kind available here, with its rule, in kind order.
    pub requests: Vec<RequestRule>,
}

/// A set of purposes of one policy, made by [`Policy::purpose_set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeSet(Bitset);

impl PurposeSet {
    /// Whether the set holds `purpose`.
    pub fn contains(&self, purpose: PurposeId) -> bool {
        self.0.contains(purpose.0)
    }
}

/// A small fixed-size set of dense ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bitset(Vec<u64>);

impl Bitset {
    fn with_len(n: usize) -> Self {
        Bitset(vec![0; n.div_ceil(64).max(1)])
    }
    fn insert(&mut self, i: u16) {
        let i = usize::from(i);
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    fn contains(&self, i: u16) -> bool {
        let i = usize::from(i);
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// A validated, compiled policy.
#[derive(Debug)]
pub struct Policy {
    doc: PolicyDocument,
    effective: Date,
    prior_versions: Period,
    categories: HashMap<String, CategoryId>,
    purposes: HashMap<String, PurposeId>,
    recipients: HashMap<String, RecipientId>,
    jurisdictions: HashMap<String, JurisdictionId>,
    sources: HashMap<String, u16>,
    purpose_rules: Vec<PurposeRules>,
    direct_marketing: Vec<PurposeId>,
    /// Per category: `None` if it is not tokenized, else the purposes that may detokenize it.
    detokenize: Vec<Option<Bitset>>,
    recipient_rules: Vec<RecipientRules>,
    jurisdiction_rules: Vec<JurisdictionRules>,
    legal_holds: Vec<LegalHold>,
}

/// The id under which a purpose's basis applies to every other jurisdiction.
pub const DEFAULT_JURISDICTION_KEY: &str = "default";

impl Policy {
    /// Parses, validates and compiles a policy from YAML text.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let doc: PolicyDocument =
            serde_saphyr::from_str(text).map_err(|e| PolicyError { diagnostics: vec![yaml_diagnostic(&e)] })?;
        Self::compile(doc)
    }

    /// Validates and compiles a parsed document.
    pub fn compile(doc: PolicyDocument) -> Result<Policy, PolicyError> {
        let mut errs = Errors::default();

        let sources = index(&mut errs, ("source", "sources"), doc.sources.iter().map(|s| &s.id), |i| i);
        let categories = index(&mut errs, ("category", "categories"), doc.categories.iter().map(|c| &c.id), CategoryId);
        let purposes = index(&mut errs, ("purpose", "purposes"), doc.purposes.iter().map(|p| &p.id), PurposeId);
        let recipients =
            index(&mut errs, ("recipient", "recipients"), doc.recipients.iter().map(|r| &r.id), RecipientId);
        let jurisdictions = index(
            &mut errs,
            ("jurisdiction", "jurisdictions"),
            doc.jurisdictions.iter().map(|j| &j.id),
            JurisdictionId,
        );
        let controllers = index(&mut errs, ("controller", "controllers"), doc.controllers.iter().map(|c| &c.id), |i| i);
        index(&mut errs, ("transfer", "transfers"), doc.transfers.iter().map(|t| &t.id), |i| i);
        if let Some(j) = doc.jurisdictions.iter().find(|j| j.id.value == DEFAULT_JURISDICTION_KEY) {
            errs.push(&j.id, "`default` is reserved for purposes' legal bases; choose another jurisdiction id");
        }

        let effective = errs.date(&doc.notice.effective);
        if doc.notice.version.value.trim().is_empty() {
            errs.push(&doc.notice.version, "notice version must not be empty");
        }
        for id in doc.categories.iter().map(|c| &c.id).chain(doc.purposes.iter().map(|p| &p.id)) {
            if !is_identifier(&id.value) {
                errs.push(
                    id,
                    format!(
                        "`{}` is not a valid identifier: use lower-case letters, digits, `_`, `-` and `.`",
                        id.value
                    ),
                );
            }
        }

        let mut detokenize = Vec::with_capacity(doc.categories.len());
        for c in &doc.categories {
            if !matches!(c.ccpa.value.as_str(), "A" | "B" | "C" | "D" | "E" | "F" | "G" | "H" | "I" | "J" | "K" | "L") {
                errs.push(
                    &c.ccpa,
                    format!("`{}` is not a CCPA category: use a letter from A to L (§1798.140(v)(1))", c.ccpa.value),
                );
            }
            for s in &c.sources {
                errs.known(&sources, s, "source");
            }
            if c.sources.is_empty() {
                errs.push(&c.id, format!("category `{}` names no source", c.id.value));
            }
            detokenize.push(c.protection.as_ref().map(|p| {
                let mut may = Bitset::with_len(doc.purposes.len());
                for pur in &p.detokenize_purposes {
                    if let Some(id) = errs.known(&purposes, pur, "purpose") {
                        may.insert(id.0);
                    }
                }
                may
            }));
        }

        let mut purpose_rules = Vec::with_capacity(doc.purposes.len());
        for p in &doc.purposes {
            let mut cats = Bitset::with_len(doc.categories.len());
            for c in &p.categories {
                if let Some(id) = errs.known(&categories, c, "category") {
                    cats.insert(id.0);
                }
            }
            let mut default = None;
            let mut basis = vec![None; doc.jurisdictions.len()];
            let mut seen = std::collections::HashSet::new();
            for b in &p.legal_basis {
                if !seen.insert(b.jurisdiction.value.as_str()) {
                    errs.push(
                        &b.jurisdiction,
                        format!("purpose `{}` gives a legal basis for `{}` twice", p.id.value, b.jurisdiction.value),
                    );
                }
                if b.jurisdiction.value == DEFAULT_JURISDICTION_KEY {
                    default = Some(b.basis);
                } else if let Some(j) = errs.known(&jurisdictions, &b.jurisdiction, "jurisdiction") {
                    basis[usize::from(j.0)] = Some(b.basis);
                }
            }
            for slot in &mut basis {
                if slot.is_none() {
                    *slot = default;
                }
            }
            errs.retention(&p.id, &p.retention);
            purpose_rules.push(PurposeRules {
                categories: cats,
                basis,
                direct_marketing: p.direct_marketing,
                allowed_when_restricted: p.allowed_when_restricted.continues(),
                sale_or_sharing: p.sale_or_sharing,
                sensitive_use_permitted: p.sensitive_use_permitted,
            });
        }

        let mut recipient_rules = Vec::with_capacity(doc.recipients.len());
        for r in &doc.recipients {
            let mut ps = Bitset::with_len(doc.purposes.len());
            for p in &r.purposes {
                if let Some(id) = errs.known(&purposes, p, "purpose") {
                    ps.insert(id.0);
                }
            }
            let cats = if r.categories.is_empty() {
                None
            } else {
                let mut cs = Bitset::with_len(doc.categories.len());
                for c in &r.categories {
                    if let Some(id) = errs.known(&categories, c, "category") {
                        cs.insert(id.0);
                    }
                }
                Some(cs)
            };
            for c in &r.countries {
                if !is_country_code(&c.value) {
                    errs.push(c, format!("`{}` is not an ISO 3166 alpha-2 country code", c.value));
                }
            }
            for j in &r.named_in {
                errs.known(&jurisdictions, j, "jurisdiction");
            }
            recipient_rules.push(RecipientRules { purposes: ps, categories: cats });
        }

        let mut jurisdiction_rules = Vec::with_capacity(doc.jurisdictions.len());
        for j in &doc.jurisdictions {
            errs.known(&controllers, &j.controller, "controller");
            let deadline = errs.period(&j.response.deadline).unwrap_or(Period::Days(30));
            let extension = j.response.extension.as_ref().and_then(|e| errs.period(e));
            let default_rule = DeadlineRule { extension, ..DeadlineRule::new(deadline) };
            let (calendar, requests) = requests::compile(j, default_rule, &mut errs);
            jurisdiction_rules.push(JurisdictionRules {
                guardian_required_under: j.guardian_required_under,
                deadline,
                extension,
                calendar,
                requests,
            });
        }

        for t in &doc.transfers {
            for f in &t.from {
                errs.known(&jurisdictions, f, "jurisdiction");
            }
            let from = errs.date(&t.valid_from);
            let until = t.valid_until.as_ref().map(|u| (u, errs.date(u)));
            if let (Some(from), Some((span, Some(until)))) = (from, until)
                && until <= from
            {
                errs.push(span, "valid_until must be after valid_from");
            }
        }

        let prior_versions = errs.period(&doc.retention.prior_versions).unwrap_or(Period::Years(1));
        let legal_holds = holds::compile(&doc.retention.legal_holds, &categories, &purposes, &mut errs);
        if let Some(ju) = &doc.joint_use {
            errs.known(&jurisdictions, &ju.jurisdiction, "jurisdiction");
            errs.known(&controllers, &ju.responsible, "controller");
            for c in &ju.categories {
                errs.known(&categories, c, "category");
            }
            for p in &ju.purposes {
                errs.known(&purposes, p, "purpose");
            }
        }
        if let Some(de) = &doc.deidentification {
            errs.known(&jurisdictions, &de.jurisdiction, "jurisdiction");
            for c in &de.categories {
                errs.known(&categories, c, "category");
            }
        }

        if !errs.0.is_empty() {
            errs.0.sort_by_key(|d| (d.line, d.column));
            return Err(PolicyError { diagnostics: errs.0 });
        }
        let direct_marketing = (0..dense_len(purpose_rules.len()))
            .map(PurposeId)
            .zip(&purpose_rules)
            .filter_map(|(id, rules)| rules.direct_marketing.then_some(id))
            .collect();
        Ok(Policy {
            direct_marketing,
            detokenize,
            effective: effective.unwrap_or(Date::MIN),
            prior_versions,
            legal_holds,
            doc,
            categories,
            purposes,
            recipients,
            jurisdictions,
            sources,
            purpose_rules,
            recipient_rules,
            jurisdiction_rules,
        })
    }

    /// The document as written (for rendering and reports).
    pub fn document(&self) -> &PolicyDocument {
        &self.doc
    }

    /// The notice version stamped on items collected under this policy.
    pub fn version(&self) -> &str {
        &self.doc.notice.version.value
    }

    /// The date the notice applies from.
    pub fn effective(&self) -> Date {
        self.effective
    }

    /// How long prior versions of an item are kept after an update.
    pub fn prior_versions_retention(&self) -> Period {
        self.prior_versions
    }

    /// The legal holds the policy declares, in file order.
    pub fn legal_holds(&self) -> &[LegalHold] {
        &self.legal_holds
    }

    /// The legal hold declared as `id`.
    pub fn legal_hold(&self, id: &str) -> Option<&LegalHold> {
        self.legal_holds.iter().find(|h| h.id == id)
    }

    /// Resolves a category id.
    pub fn category(&self, id: &str) -> Option<CategoryId> {
        self.categories.get(id).copied()
    }
    /// Resolves a purpose id.
    pub fn purpose(&self, id: &str) -> Option<PurposeId> {
        self.purposes.get(id).copied()
    }
    /// Resolves a recipient id.
    pub fn recipient(&self, id: &str) -> Option<RecipientId> {
        self.recipients.get(id).copied()
    }
    /// Resolves a jurisdiction id.
    pub fn jurisdiction(&self, id: &str) -> Option<JurisdictionId> {
        self.jurisdictions.get(id).copied()
    }
    /// Whether a source id is declared.
    pub fn has_source(&self, id: &str) -> bool {
        self.sources.contains_key(id)
    }

    /// The declaration of a category.
    pub fn category_doc(&self, id: CategoryId) -> &CategoryDoc {
        &self.doc.categories[usize::from(id.0)]
    }
    /// The declaration of a purpose.
    pub fn purpose_doc(&self, id: PurposeId) -> &PurposeDoc {
        &self.doc.purposes[usize::from(id.0)]
    }
    /// The declaration of a recipient.
    pub fn recipient_doc(&self, id: RecipientId) -> &RecipientDoc {
        &self.doc.recipients[usize::from(id.0)]
    }
    /// The declaration of a jurisdiction.
    pub fn jurisdiction_doc(&self, id: JurisdictionId) -> &JurisdictionDoc {
        &self.doc.jurisdictions[usize::from(id.0)]
    }

    /// Compiled rules of a purpose.
    pub fn purpose_rules(&self, id: PurposeId) -> &PurposeRules {
        &self.purpose_rules[usize::from(id.0)]
    }
    /// Compiled rules of a recipient.
    pub fn recipient_rules(&self, id: RecipientId) -> &RecipientRules {
        &self.recipient_rules[usize::from(id.0)]
    }
    /// Compiled rules of a jurisdiction.
    pub fn jurisdiction_rules(&self, id: JurisdictionId) -> &JurisdictionRules {
        &self.jurisdiction_rules[usize::from(id.0)]
    }

    /// The rule of a request of `kind` in `jurisdiction`, or `None` where
    /// that kind is not available (`right_not_available`).
    pub fn request_rule(&self, jurisdiction: JurisdictionId, kind: Right) -> Option<&RequestRule> {
        self.jurisdiction_rules(jurisdiction).requests.iter().find(|r| r.kind == kind)
    }

    /// All category ids, in declaration order.
    pub fn category_ids(&self) -> impl Iterator<Item = CategoryId> + '_ {
        (0..dense_len(self.doc.categories.len())).map(CategoryId)
    }
    /// All purpose ids, in declaration order.
    pub fn purpose_ids(&self) -> impl Iterator<Item = PurposeId> + '_ {
        (0..dense_len(self.doc.purposes.len())).map(PurposeId)
    }
    /// All jurisdiction ids, in declaration order.
    pub fn jurisdiction_ids(&self) -> impl Iterator<Item = JurisdictionId> + '_ {
        (0..dense_len(self.doc.jurisdictions.len())).map(JurisdictionId)
    }
    /// All recipient ids, in declaration order.
    pub fn recipient_ids(&self) -> impl Iterator<Item = RecipientId> + '_ {
        (0..dense_len(self.doc.recipients.len())).map(RecipientId)
    }

    /// The purposes declared as direct marketing, in declaration order: an
    /// objection to any of them is an objection to all (GDPR Art. 21(3)).
    pub fn direct_marketing_purposes(&self) -> &[PurposeId] {
        &self.direct_marketing
    }

    /// Whether the policy lists `purpose` as one that may recover the full
    /// value of the tokenized `category` (false for a category that is not tokenized).
    pub fn may_detokenize(&self, purpose: PurposeId, category: CategoryId) -> bool {
        self.detokenize.get(usize::from(category.0)).and_then(Option::as_ref).is_some_and(|may| may.contains(purpose.0))
    }

    /// The set of the purposes in `ids` (for example those an API key is bound to).
    pub fn purpose_set(&self, ids: impl IntoIterator<Item = PurposeId>) -> PurposeSet {
        let mut set = Bitset::with_len(self.doc.purposes.len());
        for p in ids {
            set.insert(p.0);
        }
        PurposeSet(set)
    }

    /// Categories a purpose may read, in declaration order.
    pub fn categories_for(&self, purpose: PurposeId) -> impl Iterator<Item = CategoryId> + '_ {
        let rules = self.purpose_rules(purpose);
        self.category_ids().filter(move |c| rules.allows(*c))
    }

    /// The tokenization a category needs, if any.
    pub fn tokenization(&self, category: CategoryId) -> Option<&ProtectionDoc> {
        self.category_doc(category).protection.as_ref()
    }

    /// How a lookup identifier category is normalised for the blind index;
    /// `None` for a category that is not a lookup identifier.
    pub fn lookup(&self, category: CategoryId) -> Option<LookupKind> {
        self.category_doc(category).lookup
    }
}

/// The length of a compiled table as a dense id bound. Compilation refuses a
/// table longer than [`MAX_TABLE_LEN`], so this never saturates.
fn dense_len(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// Formats a serde-saphyr error as a diagnostic with its position.
fn yaml_diagnostic(e: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let full = e.to_string();
    // serde-saphyr appends the position and sometimes a source snippet; keep the first line.
    let first = full.lines().next().unwrap_or("invalid YAML").trim();
    let message = strip_position_suffix(first);
    Diagnostic { severity: Severity::Error, line, column, message }
}

fn strip_position_suffix(s: &str) -> String {
    let s = s.strip_prefix("error: ").unwrap_or(s);
    // serde-saphyr 2.2 puts the position first: "line 15 column 5: unknown field ...".
    let s = s
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(pos, _)| {
            let w: Vec<&str> = pos.split(' ').collect();
            matches!(w.as_slice(), [l, "column", c] if l.parse::<u64>().is_ok() && c.parse::<u64>().is_ok())
        })
        .map_or(s, |(_, msg)| msg);
    for marker in [" at line ", " (line "] {
        if let Some(i) = s.find(marker) {
            return s[..i].trim_end_matches([',', ':']).to_string();
        }
    }
    s.to_string()
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
}

fn is_country_code(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

#[derive(Default)]
struct Errors(Vec<Diagnostic>);

impl Errors {
    fn push(&mut self, at: &Spanned<String>, message: impl Into<String>) {
        self.0.push(Diagnostic::at(Severity::Error, at.referenced, message));
    }

    fn push_at<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.0.push(Diagnostic::at(Severity::Error, at.referenced, message));
    }

    fn known<T: Copy>(&mut self, table: &HashMap<String, T>, r: &Spanned<String>, what: &str) -> Option<T> {
        let found = table.get(&r.value).copied();
        if found.is_none() {
            let mut names: Vec<&String> = table.keys().collect();
            names.sort();
            let hint = closest(&r.value, &names).map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default();
            self.push(r, format!("unknown {what} `{}`{hint}", r.value));
        }
        found
    }

    fn period(&mut self, s: &Spanned<String>) -> Option<Period> {
        Period::parse(&s.value).map_err(|e| self.push(s, e.to_string())).ok()
    }

    fn date(&mut self, s: &Spanned<String>) -> Option<Date> {
        parse_date(&s.value).map_err(|e| self.push(s, e.to_string())).ok()
    }

    fn retention(&mut self, owner: &Spanned<String>, r: &RetentionRuleDoc) {
        match (&r.period, r.as_long_as_required) {
            (Some(p), true) => {
                self.push(p, "give either a retention period or `as_long_as_required`, not both");
            }
            (Some(p), false) => {
                self.period(p);
            }
            (None, true) => {}
            (None, false) => {
                self.push(
                    owner,
                    format!("purpose `{}` needs a retention `period` or `as_long_as_required: true`", owner.value),
                );
            }
        }
    }
}

/// Indexes one table of declarations by id. A table longer than
/// [`MAX_TABLE_LEN`] is an error at its first entry beyond the limit, and
/// entries beyond it get no id: a dense id never wraps onto another entry.
fn index<'a, T: Copy>(
    errs: &mut Errors,
    (what, plural): (&str, &str),
    ids: impl Iterator<Item = &'a Spanned<String>>,
    make: impl Fn(u16) -> T,
) -> HashMap<String, T> {
    let mut map = HashMap::new();
    for (i, id) in ids.enumerate() {
        let Some(dense) = u16::try_from(i).ok().filter(|_| i < MAX_TABLE_LEN) else {
            errs.push(
                id,
                format!(
                    "{what} `{}` is beyond the limit: a policy may declare at most {MAX_TABLE_LEN} {plural}",
                    id.value
                ),
            );
            break;
        };
        if map.insert(id.value.clone(), make(dense)).is_some() {
            errs.push(id, format!("{what} `{}` is declared twice", id.value));
        }
    }
    map
}

/// The declared name closest to a misspelt one, if any is close.
fn closest<'a>(wrong: &str, names: &[&'a String]) -> Option<&'a String> {
    names
        .iter()
        .map(|n| (edit_distance(wrong, n), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
