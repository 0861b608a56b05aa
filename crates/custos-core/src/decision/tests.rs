//! Tests of the decision engine.
//!
//! Three layers:
//! - a table of hand-written cases, one line per rule and per precedence pair,
//!   covering every [`DenyReason`] and every [`LegalBasis`];
//! - a naive reference model (`model.rs`) that reads the test policy from plain
//!   tables (not from the compiled [`Policy`]), lists *every* reason that
//!   applies and picks the first by the documented check order; it is compared
//!   with [`decide`] exhaustively over a grid of subject states and by proptest
//!   over random states and instants;
//! - [`Denial::sentence`]: names policy ids, never a subject id.

use std::sync::OnceLock;

use time::Date;
use time::macros::{date, datetime};

use super::*;
use crate::subject::{ConsentRecord, SubjectId, SubjectState};

// ---------------------------------------------------------------------------
// The test policy
// ---------------------------------------------------------------------------

/// Three jurisdictions (guardian age 16, 18 and 14), four categories (the card
/// tokenized, detokenized only for `orders`), seven purposes covering every
/// basis (two of them direct marketing), three recipients (two with a category list).
const POLICY: &str = r#"
notice:
  id: test-notice
  title: Test Notice
  version: "2026-01"
  effective: "2026-01-01"
sources:
  - id: provided
    kind: provided
    name: Information you give us
categories:
  - id: contact.email
    name: E-mail address
    ccpa: A
    group: Contact
    sources: [provided]
  - id: purchase.history
    name: Purchase history
    ccpa: D
    group: Orders
    sources: [provided]
  - id: payment.card
    name: Payment card
    ccpa: B
    sensitive: true
    group: Payment
    sources: [provided]
    protection: { tokenize: payment_card, detokenize_purposes: [orders] }
  - id: device.id
    name: Device identifier
    ccpa: F
    sensitive: true
    group: Device
    sources: [provided]
purposes:
  - id: orders
    name: Orders
    description: Fulfil orders.
    categories: [contact.email, purchase.history, payment.card]
    legal_basis:
      - { jurisdiction: default, basis: contract }
    sensitive_use_permitted: true
    retention: { period: "3 years", from: account_closure }
  - id: fraud
    name: Fraud prevention
    description: Detect fraud.
    categories: [contact.email, payment.card, device.id]
    legal_basis:
      - { jurisdiction: default, basis: legitimate_interest }
    sensitive_use_permitted: true
    retention: { period: "1 year", from: collection }
  - id: tax
    name: Tax records
    description: Keep the records tax law requires.
    categories: [contact.email, purchase.history, payment.card]
    legal_basis:
      - { jurisdiction: default, basis: legal_obligation }
    allowed_when_restricted: true
    sensitive_use_permitted: true
    retention: { period: "7 years", from: collection }
  - id: analytics
    name: Analytics
    description: Measure use of the site.
    categories: [purchase.history, device.id]
    legal_basis:
      - { jurisdiction: default, basis: consent }
    retention: { period: "13 months", from: collection }
  - id: marketing
    name: Marketing
    description: Send offers.
    categories: [contact.email, purchase.history, device.id]
    legal_basis:
      - { jurisdiction: eea, basis: consent }
      - { jurisdiction: default, basis: legitimate_interest }
    direct_marketing: true
    sale_or_sharing: true
    retention: { period: "2 years", from: last_use }
  - id: newsletter
    name: Newsletter
    description: Send the newsletter.
    categories: [contact.email]
    legal_basis:
      - { jurisdiction: default, basis: legitimate_interest }
    direct_marketing: true
    retention: { period: "1 year", from: last_use }
  - id: profiling
    name: Profiling
    description: Build interest profiles.
    categories: [purchase.history, device.id]
    legal_basis:
      - { jurisdiction: eea, basis: consent }
      - { jurisdiction: us, basis: legitimate_interest }
    sale_or_sharing: true
    retention: { period: "1 year", from: collection }
recipients:
  - id: carrier
    name: Carrier
    kind: transaction_party
    purposes: [orders]
    categories: [contact.email]
  - id: psp
    name: Payment service provider
    kind: service_provider
    purposes: [orders, fraud]
  - id: adnet
    name: Ad network
    kind: service_provider
    purposes: [marketing]
    categories: [contact.email, device.id]
controllers:
  - id: eu-co
    name: Example Europe SARL
    address: 1 Rue Exemple, Luxembourg
    country: LU
  - id: us-co
    name: Example Inc.
    address: 1 Example Way, Seattle
    country: US
jurisdictions:
  - id: eea
    name: European Economic Area
    law: GDPR
    rights: [access, rectification, erasure, restriction, objection, portability, withdraw_consent]
    response: { deadline: "1 month", extension: "2 months", source: "GDPR Art 12(3)" }
    guardian_required_under: 16
    controller: eu-co
  - id: us
    name: United States
    law: CCPA
    rights: [access, erasure, opt_out_of_sale, non_discrimination]
    response: { deadline: "45 days", extension: "45 days", source: "CCPA 1798.130" }
    guardian_required_under: 18
    controller: us-co
  - id: kr
    name: Korea
    law: PIPA
    rights: [access, rectification, erasure, withdraw_consent]
    response: { deadline: "10 days", source: "PIPA Art 35" }
    guardian_required_under: 14
    controller: us-co
retention:
  statement: We keep information as long as the purposes need it.
  prior_versions: "1 year"
"#;

fn policy() -> &'static Policy {
    static POLICY_CELL: OnceLock<Policy> = OnceLock::new();
    POLICY_CELL.get_or_init(|| match Policy::from_yaml(POLICY) {
        Ok(p) => p,
        Err(e) => panic!("test policy does not load:\n{e}"),
    })
}

// ---------------------------------------------------------------------------
// Subjects
// ---------------------------------------------------------------------------

/// The instant of most table cases: 2026-06-15 12:00 UTC.
fn now() -> Timestamp {
    Timestamp::from_datetime(datetime!(2026-06-15 12:00 UTC))
}

const SUBJECT_ID: &str = "subj-7Q4XK9";
const GUARDIAN_ID: &str = "guard-3M8ZP1";
const OTHER_GUARDIAN_ID: &str = "guard-9R2WV5";

fn sid(s: &str) -> SubjectId {
    match SubjectId::parse(s) {
        Ok(id) => id,
        Err(e) => panic!("bad test subject id {s}: {e}"),
    }
}

/// A subject in `jurisdiction` born on `birth`, with no choices recorded.
fn born(jurisdiction: &str, birth: Option<Date>) -> Subject {
    Subject {
        id: sid(SUBJECT_ID),
        jurisdiction: jurisdiction.to_string(),
        region: None,
        birth_date: birth,
        guardian: None,
        created_at: Timestamp::from_datetime(datetime!(2020-01-01 00:00 UTC)),
        erased_at: None,
        state: SubjectState::default(),
    }
}

/// 36 on `now()`.
fn adult(j: &str) -> Subject {
    born(j, Some(date!(1990 - 01 - 01)))
}
/// 15 on `now()`: a minor in `eea` (16) and `us` (18), an adult in `kr` (14).
fn child15(j: &str) -> Subject {
    born(j, Some(date!(2011 - 03 - 01)))
}
/// 17 on `now()`: a minor only in `us` (18).
fn teen17(j: &str) -> Subject {
    born(j, Some(date!(2009 - 01 - 01)))
}
/// 10 on `now()`: a minor everywhere.
fn child10(j: &str) -> Subject {
    born(j, Some(date!(2016 - 01 - 01)))
}
/// No birth date known.
fn ageless(j: &str) -> Subject {
    born(j, None)
}

/// Builder steps for the table.
trait Setup: Sized {
    fn with_guardian(self) -> Self;
    fn record(self, purpose: &str, status: ConsentStatus, by: Option<&str>) -> Self;
    fn objected(self, purpose: &str) -> Self;
    fn restricted(self) -> Self;
    fn opted_out(self) -> Self;
    fn limited(self) -> Self;
    fn erased(self) -> Self;

    fn consent(self, purpose: &str) -> Self {
        self.record(purpose, ConsentStatus::Granted, None)
    }
    fn withdrawn(self, purpose: &str) -> Self {
        self.record(purpose, ConsentStatus::Withdrawn, None)
    }
    fn guardian_consent(self, purpose: &str) -> Self {
        self.record(purpose, ConsentStatus::Granted, Some(GUARDIAN_ID))
    }
    fn guardian_withdrew(self, purpose: &str) -> Self {
        self.record(purpose, ConsentStatus::Withdrawn, Some(GUARDIAN_ID))
    }
}

impl Setup for Subject {
    fn with_guardian(mut self) -> Self {
        self.guardian = Some(sid(GUARDIAN_ID));
        self
    }
    fn record(mut self, purpose: &str, status: ConsentStatus, by: Option<&str>) -> Self {
        let at = Timestamp::from_datetime(datetime!(2025-01-01 00:00 UTC));
        self.state.consents.insert(purpose.to_string(), ConsentRecord { status, at, by_guardian: by.is_some() });
        self
    }
    fn objected(mut self, purpose: &str) -> Self {
        let at = Timestamp::from_datetime(datetime!(2025-02-01 00:00 UTC));
        self.state.objections.insert(purpose.to_string(), at);
        self
    }
    fn restricted(mut self) -> Self {
        self.state.restricted_since = Some(Timestamp::from_datetime(datetime!(2025-03-01 00:00 UTC)));
        self
    }
    fn opted_out(mut self) -> Self {
        self.state.opted_out_since = Some(Timestamp::from_datetime(datetime!(2025-03-02 00:00 UTC)));
        self
    }
    fn limited(mut self) -> Self {
        self.state.sensitive_limited_since = Some(Timestamp::from_datetime(datetime!(2025-03-03 00:00 UTC)));
        self
    }
    fn erased(mut self) -> Self {
        self.erased_at = Some(Timestamp::from_datetime(datetime!(2025-04-01 00:00 UTC)));
        self
    }
}

// ---------------------------------------------------------------------------
// The check helper
// ---------------------------------------------------------------------------

/// The name of an actor the policy does not declare.
const STRANGER: &str = "stranger";

fn actor(policy: &Policy, name: &str) -> Actor {
    if name == "controller" {
        Actor::Controller
    } else if name == STRANGER {
        Actor::Undeclared
    } else {
        match policy.recipient(name) {
            Some(r) => Actor::Recipient(r),
            None => panic!("unknown recipient `{name}` in test"),
        }
    }
}

/// How a request is made: the caller's scope (`None` = unlimited, else the
/// purposes its key is bound to) and the operation.
#[derive(Debug, Clone, Copy)]
struct How {
    scope: Option<&'static [&'static str]>,
    op: Operation,
}

/// A read with no key scope.
const R: How = How { scope: None, op: Operation::Read };
/// A write with no key scope.
const W: How = How { scope: None, op: Operation::Write };
/// A detokenization with no key scope.
const DETOK: How = How { scope: None, op: Operation::Detokenize };
/// A read by a key bound to `purposes`.
const fn key(purposes: &'static [&'static str]) -> How {
    How { scope: Some(purposes), op: Operation::Read }
}

fn resolve_purpose(policy: &Policy, name: &str) -> PurposeId {
    match policy.purpose(name) {
        Some(p) => p,
        None => panic!("unknown purpose `{name}` in test"),
    }
}

/// Builds the request and decides it; a denial must echo the request.
fn decide_how(subject: &Subject, purpose: &str, category: &str, who: &str, how: How, at: Timestamp) -> Decision {
    let policy = policy();
    let purpose = resolve_purpose(policy, purpose);
    let Some(category) = policy.category(category) else { panic!("unknown category `{category}` in test") };
    let set = how.scope.map(|ps| policy.purpose_set(ps.iter().map(|p| resolve_purpose(policy, p))));
    let scope = set.as_ref().map_or(Scope::Unlimited, Scope::Bound);
    let req = AccessRequest { purpose, category, actor: actor(policy, who), scope, operation: how.op, at };
    let decision = decide(policy, subject, &req);
    if let Err(d) = &decision {
        assert_eq!((d.purpose, d.category, d.actor), (req.purpose, Some(req.category), req.actor));
    }
    decision
}

/// `allow:<basis>` or the reason code.
fn check_how(subject: &Subject, purpose: &str, category: &str, who: &str, how: How, at: Timestamp) -> String {
    match decide_how(subject, purpose, category, who, how, at) {
        Ok(basis) => format!("allow:{}", basis.as_str()),
        Err(d) => d.reason.code().to_string(),
    }
}

/// A read with no key scope: `allow:<basis>` or the reason code.
fn check(subject: &Subject, purpose: &str, category: &str, who: &str, at: Timestamp) -> String {
    check_how(subject, purpose, category, who, R, at)
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

type Case = (&'static str, Subject, &'static str, &'static str, &'static str, How, &'static str);

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    const EMAIL: &str = "contact.email";
    const HIST: &str = "purchase.history";
    const CARD: &str = "payment.card";
    const DEV: &str = "device.id";
    const C: &str = "controller";
    vec![
        // --- allowed, one per basis and per jurisdictional variant ---
        ("eea adult, orders (contract)", adult("eea"), "orders", EMAIL, C, R, "allow:contract"),
        ("eea adult, fraud (legitimate interest)", adult("eea"), "fraud", CARD, C, R, "allow:legitimate_interest"),
        ("eea adult, tax (legal obligation)", adult("eea"), "tax", HIST, C, R, "allow:legal_obligation"),
        ("eea adult, analytics, consent granted", adult("eea").consent("analytics"), "analytics", DEV, C, R, "allow:consent"),
        ("eea adult, marketing, consent granted", adult("eea").consent("marketing"), "marketing", EMAIL, C, R, "allow:consent"),
        ("us adult, marketing falls back to default LI, no consent needed", adult("us"), "marketing", EMAIL, C, R, "allow:legitimate_interest"),
        ("kr adult, marketing default LI", adult("kr"), "marketing", HIST, C, R, "allow:legitimate_interest"),
        ("us adult, profiling has a us basis", adult("us"), "profiling", DEV, C, R, "allow:legitimate_interest"),
        ("eea adult, profiling, consent granted", adult("eea").consent("profiling"), "profiling", HIST, C, R, "allow:consent"),
        ("unknown birth date is treated as an adult", ageless("us"), "marketing", EMAIL, C, R, "allow:legitimate_interest"),
        ("carrier receives email for orders", adult("eea"), "orders", EMAIL, "carrier", R, "allow:contract"),
        ("psp has no category list: any category its purposes allow", adult("eea"), "fraud", DEV, "psp", R, "allow:legitimate_interest"),
        ("adnet receives device id for marketing (us)", adult("us"), "marketing", DEV, "adnet", R, "allow:legitimate_interest"),
        ("adnet, eea, marketing with consent", adult("eea").consent("marketing"), "marketing", EMAIL, "adnet", R, "allow:consent"),
        ("adult with a consent recorded by a guardian earlier: still live", adult("eea").guardian_consent("analytics"), "analytics", DEV, C, R, "allow:consent"),

        // --- 1. actor_not_declared: who asks comes first ---
        ("an undeclared actor is denied", adult("eea"), "orders", EMAIL, STRANGER, R, "actor_not_declared"),
        ("an undeclared actor, even for a legal obligation", adult("eea"), "tax", CARD, STRANGER, R, "actor_not_declared"),
        ("an undeclared actor learns nothing of an erasure", adult("eea").erased(), "orders", EMAIL, STRANGER, R, "actor_not_declared"),
        ("undeclared actor beats purpose_not_bound", adult("eea"), "orders", EMAIL, STRANGER, key(&["fraud"]), "actor_not_declared"),
        ("undeclared actor beats purpose_not_declared_for_category", adult("eea"), "marketing", CARD, STRANGER, R, "actor_not_declared"),
        ("undeclared actor may not write", adult("eea"), "orders", EMAIL, STRANGER, W, "actor_not_declared"),
        ("undeclared actor may not detokenize", adult("eea"), "orders", CARD, STRANGER, DETOK, "actor_not_declared"),

        // --- 2. purpose_not_bound: the key's scope ---
        ("psp key bound to orders reads for orders", adult("eea"), "orders", CARD, "psp", key(&["orders"]), "allow:contract"),
        ("psp key bound to fraud reads for orders", adult("eea"), "orders", CARD, "psp", key(&["fraud"]), "purpose_not_bound"),
        ("a key bound to several purposes, one of them", adult("eea"), "fraud", DEV, "psp", key(&["orders", "fraud"]), "allow:legitimate_interest"),
        ("a key bound to no purpose reads nothing", adult("eea"), "orders", EMAIL, "carrier", key(&[]), "purpose_not_bound"),
        ("not bound beats erased", adult("eea").erased(), "orders", EMAIL, "carrier", key(&["fraud"]), "purpose_not_bound"),
        ("not bound beats purpose_not_declared_for_category", adult("eea"), "orders", DEV, "psp", key(&["fraud"]), "purpose_not_bound"),
        ("not bound beats recipient_not_allowed", adult("eea"), "fraud", EMAIL, "carrier", key(&["orders"]), "purpose_not_bound"),
        ("not bound beats a live consent", adult("eea").consent("marketing"), "marketing", EMAIL, "adnet", key(&["orders"]), "purpose_not_bound"),
        ("a bound key still meets the policy (consent)", adult("eea"), "marketing", EMAIL, "adnet", key(&["marketing"]), "consent_missing"),
        ("a bound key still meets the policy (recipient)", adult("us"), "marketing", HIST, "adnet", key(&["marketing"]), "recipient_not_allowed"),
        ("a controller scope is a scope too", adult("us"), "marketing", EMAIL, C, key(&["orders"]), "purpose_not_bound"),

        // --- 5. detokenize_not_allowed ---
        ("orders may detokenize the card", adult("eea"), "orders", CARD, C, DETOK, "allow:contract"),
        ("psp detokenizes the card for orders", adult("eea"), "orders", CARD, "psp", DETOK, "allow:contract"),
        ("fraud may use the card but not detokenize it", adult("eea"), "fraud", CARD, C, DETOK, "detokenize_not_allowed"),
        ("tax may not detokenize the card", adult("eea"), "tax", CARD, C, DETOK, "detokenize_not_allowed"),
        ("a category that is not tokenized cannot be detokenized", adult("eea"), "orders", EMAIL, C, DETOK, "detokenize_not_allowed"),
        ("purpose/category beats detokenize", adult("eea"), "marketing", CARD, C, DETOK, "purpose_not_declared_for_category"),
        ("erased beats detokenize", adult("eea").erased(), "fraud", CARD, C, DETOK, "erased"),
        ("detokenize beats recipient_not_allowed", adult("eea"), "fraud", CARD, "carrier", DETOK, "detokenize_not_allowed"),
        ("detokenize beats restricted", adult("eea").restricted(), "fraud", CARD, C, DETOK, "detokenize_not_allowed"),
        ("restricted still stops a detokenization", adult("eea").restricted(), "orders", CARD, C, DETOK, "restricted"),
        ("the guardian rule still applies to a detokenization", child15("eea"), "orders", CARD, C, DETOK, "guardian_consent_missing"),
        ("a read of the card for fraud is still allowed", adult("eea"), "fraud", CARD, C, R, "allow:legitimate_interest"),

        // --- writes are decided like reads ---
        ("a write for orders", adult("eea"), "orders", EMAIL, "carrier", W, "allow:contract"),
        ("a write while restricted", adult("eea").restricted(), "orders", EMAIL, C, W, "restricted"),
        ("a write for a consent purpose without consent", adult("eea"), "analytics", DEV, C, W, "consent_missing"),

        // --- 3. erased beats everything after the caller checks ---
        ("erased, otherwise allowed", adult("eea").erased(), "orders", EMAIL, C, R, "erased"),
        ("erased beats purpose_not_declared_for_category", adult("eea").erased(), "marketing", CARD, C, R, "erased"),
        ("erased beats recipient_not_allowed", adult("eea").erased(), "fraud", EMAIL, "carrier", R, "erased"),
        ("erased beats restricted", adult("eea").erased().restricted(), "orders", EMAIL, C, R, "erased"),
        ("erased beats no_legal_basis", adult("mars").erased(), "orders", EMAIL, C, R, "erased"),
        ("erased beats guardian_consent_missing", child10("eea").erased(), "orders", EMAIL, C, R, "erased"),
        ("erased beats objected", adult("eea").erased().objected("fraud"), "fraud", EMAIL, C, R, "erased"),
        ("erased beats consent_missing", adult("eea").erased(), "analytics", DEV, C, R, "erased"),
        ("erased even for a legal obligation while restricted", adult("eea").erased().restricted(), "tax", CARD, C, R, "erased"),
        ("erased beats all at once", child10("mars").erased().restricted().withdrawn("marketing").objected("marketing"), "marketing", CARD, "adnet", R, "erased"),

        // --- 4. purpose_not_declared_for_category ---
        ("marketing may not use payment card", adult("eea").consent("marketing"), "marketing", CARD, C, R, "purpose_not_declared_for_category"),
        ("tax may not use device id", adult("eea"), "tax", DEV, C, R, "purpose_not_declared_for_category"),
        ("purpose/category beats recipient_not_allowed", adult("eea"), "marketing", CARD, "adnet", R, "purpose_not_declared_for_category"),
        ("purpose/category beats recipient purpose mismatch", adult("eea"), "analytics", EMAIL, "carrier", R, "purpose_not_declared_for_category"),
        ("purpose/category beats restricted", adult("eea").restricted(), "orders", DEV, C, R, "purpose_not_declared_for_category"),
        ("purpose/category beats no_legal_basis", adult("kr"), "profiling", CARD, C, R, "purpose_not_declared_for_category"),
        ("purpose/category beats guardian", child10("us"), "analytics", CARD, C, R, "purpose_not_declared_for_category"),

        // --- 6. recipient_not_allowed ---
        ("carrier is not declared for fraud", adult("eea"), "fraud", EMAIL, "carrier", R, "recipient_not_allowed"),
        ("carrier is declared for orders but not for purchase history", adult("eea"), "orders", HIST, "carrier", R, "recipient_not_allowed"),
        ("adnet: marketing may use purchase history, adnet may not", adult("us"), "marketing", HIST, "adnet", R, "recipient_not_allowed"),
        ("psp is not declared for tax", adult("eea"), "tax", CARD, "psp", R, "recipient_not_allowed"),
        ("recipient beats restricted", adult("eea").restricted(), "fraud", EMAIL, "carrier", R, "recipient_not_allowed"),
        ("recipient beats no_legal_basis", adult("mars"), "orders", HIST, "carrier", R, "recipient_not_allowed"),
        ("recipient beats guardian", child10("eea"), "orders", CARD, "carrier", R, "recipient_not_allowed"),
        ("recipient beats objected", adult("us").objected("fraud"), "fraud", CARD, "carrier", R, "recipient_not_allowed"),
        ("recipient beats consent_missing", adult("eea"), "analytics", DEV, "adnet", R, "recipient_not_allowed"),

        // --- 7. restricted ---
        ("restricted, orders", adult("eea").restricted(), "orders", EMAIL, C, R, "restricted"),
        ("restricted, tax is allowed while restricted", adult("eea").restricted(), "tax", CARD, C, R, "allow:legal_obligation"),
        ("restricted beats consent_missing", adult("eea").restricted(), "analytics", DEV, C, R, "restricted"),
        ("restricted beats a live consent", adult("eea").restricted().consent("analytics"), "analytics", DEV, C, R, "restricted"),
        ("restricted beats no_legal_basis (unknown jurisdiction)", adult("mars").restricted(), "orders", EMAIL, C, R, "restricted"),
        ("restricted beats no_legal_basis (no basis here)", adult("kr").restricted(), "profiling", DEV, C, R, "restricted"),
        ("restricted beats guardian_consent_missing", child15("eea").restricted(), "orders", EMAIL, C, R, "restricted"),
        ("restricted beats objected", adult("us").restricted().objected("marketing"), "marketing", EMAIL, C, R, "restricted"),
        ("restricted beats opted_out", adult("us").restricted().opted_out(), "marketing", EMAIL, C, R, "restricted"),
        // --- 7a. opted out of sale and sharing (CCPA §1798.120) ---
        ("opted out, marketing", adult("us").opted_out(), "marketing", EMAIL, C, R, "opted_out"),
        ("opted out, profiling", adult("us").opted_out(), "profiling", DEV, C, R, "opted_out"),
        ("opted out stops the ad network too", adult("us").opted_out(), "marketing", EMAIL, "adnet", R, "opted_out"),
        ("opted out, orders go on", adult("us").opted_out(), "orders", EMAIL, C, R, "allow:contract"),
        ("opted out beats no_legal_basis", adult("kr").opted_out(), "profiling", DEV, C, R, "opted_out"),
        ("opted out beats a live consent", adult("eea").opted_out().consent("marketing"), "marketing", EMAIL, C, R, "opted_out"),
        ("opted out beats objected", adult("us").opted_out().objected("marketing"), "marketing", EMAIL, C, R, "opted_out"),
        ("opted out beats sensitive_use_limited", adult("us").opted_out().limited(), "marketing", EMAIL, C, R, "opted_out"),
        // --- 7b. use of sensitive information limited (CCPA §1798.121) ---
        ("limited, fraud may use the card (§7027(m))", adult("us").limited(), "fraud", CARD, C, R, "allow:legitimate_interest"),
        ("limited, orders may use the card (§7027(m))", adult("us").limited(), "orders", CARD, C, R, "allow:contract"),
        ("limited, tax keeps the card (a legal obligation, §1798.145(a))", adult("us").limited(), "tax", CARD, C, R, "allow:legal_obligation"),
        ("limited, analytics may not use the device id", adult("us").limited().consent("analytics"), "analytics", DEV, C, R, "sensitive_use_limited"),
        ("limited, analytics may use what is not sensitive", adult("us").limited().consent("analytics"), "analytics", HIST, C, R, "allow:consent"),
        ("limited beats consent_missing", adult("us").limited(), "analytics", DEV, C, R, "sensitive_use_limited"),
        ("limited beats no_legal_basis", adult("mars").limited(), "analytics", DEV, C, R, "sensitive_use_limited"),
        ("limited beats guardian_consent_missing", child15("eea").limited(), "analytics", DEV, C, R, "sensitive_use_limited"),
        ("restricted, tax via psp? psp not declared for tax", adult("eea").restricted(), "tax", CARD, "psp", R, "recipient_not_allowed"),

        // --- 8. no_legal_basis ---
        ("kr adult, profiling has no basis in kr", adult("kr"), "profiling", DEV, C, R, "no_legal_basis"),
        ("unknown jurisdiction, orders", adult("mars"), "orders", EMAIL, C, R, "no_legal_basis"),
        ("unknown jurisdiction, even a legal obligation", adult("mars"), "tax", CARD, C, R, "no_legal_basis"),
        ("unknown jurisdiction with consent granted", adult("mars").consent("analytics"), "analytics", DEV, C, R, "no_legal_basis"),
        ("no_legal_basis beats guardian_consent_missing", child10("kr"), "profiling", DEV, C, R, "no_legal_basis"),
        ("unknown jurisdiction, minor: no_legal_basis", child10("mars"), "orders", EMAIL, C, R, "no_legal_basis"),
        ("no_legal_basis beats objected", adult("mars").objected("marketing"), "marketing", EMAIL, C, R, "no_legal_basis"),
        ("jurisdiction ids are case-sensitive", adult("EEA"), "orders", EMAIL, C, R, "no_legal_basis"),

        // --- 9. guardian rule ---
        ("eea 15, no guardian linked, orders", child15("eea"), "orders", EMAIL, C, R, "guardian_consent_missing"),
        ("eea 15, guardian linked but silent", child15("eea").with_guardian(), "orders", EMAIL, C, R, "guardian_consent_missing"),
        ("eea 15, guardian consented to orders", child15("eea").with_guardian().guardian_consent("orders"), "orders", EMAIL, C, R, "allow:contract"),
        ("eea 15, guardian consented to analytics", child15("eea").with_guardian().guardian_consent("analytics"), "analytics", DEV, C, R, "allow:consent"),
        ("eea 15, child's own consent does not count", child15("eea").with_guardian().consent("analytics"), "analytics", DEV, C, R, "guardian_consent_missing"),
        ("eea 15, child's own withdrawal: still no guardian consent", child15("eea").with_guardian().withdrawn("analytics"), "analytics", DEV, C, R, "guardian_consent_missing"),
        ("eea 15, guardian withdrew", child15("eea").with_guardian().guardian_withdrew("analytics"), "analytics", DEV, C, R, "consent_withdrawn"),
        ("eea 15, guardian withdrew a contract purpose", child15("eea").with_guardian().guardian_withdrew("orders"), "orders", EMAIL, C, R, "consent_withdrawn"),
        ("eea 15, guardian consent but no guardian linked any more", child15("eea").guardian_consent("orders"), "orders", EMAIL, C, R, "guardian_consent_missing"),
        ("eea 15, guardian consent for another purpose", child15("eea").with_guardian().guardian_consent("orders"), "fraud", EMAIL, C, R, "guardian_consent_missing"),
        ("eea 15, legal obligation needs no guardian", child15("eea"), "tax", HIST, C, R, "allow:legal_obligation"),
        ("us 10, legal obligation needs no guardian", child10("us"), "tax", CARD, C, R, "allow:legal_obligation"),
        ("minor, legal obligation ignores an objection too", child10("us").objected("tax"), "tax", CARD, C, R, "allow:legal_obligation"),
        ("us 17: guardian age 18", teen17("us"), "marketing", EMAIL, C, R, "guardian_consent_missing"),
        ("eea 17: guardian age 16, own consent counts", teen17("eea").consent("marketing"), "marketing", EMAIL, C, R, "allow:consent"),
        ("kr 15: guardian age 14", child15("kr"), "orders", EMAIL, C, R, "allow:contract"),
        ("kr 10: minor in kr", child10("kr"), "orders", EMAIL, C, R, "guardian_consent_missing"),
        ("guardian rule beats objected (direct marketing)", child15("eea").with_guardian().objected("marketing"), "marketing", EMAIL, C, R, "guardian_consent_missing"),
        ("guardian rule beats objected (legitimate interest)", child15("us").objected("fraud"), "fraud", EMAIL, C, R, "guardian_consent_missing"),
        ("guardian rule beats consent_missing", child15("eea").with_guardian(), "analytics", DEV, C, R, "guardian_consent_missing"),
        ("guardian rule for a recipient read", child15("us").with_guardian(), "orders", EMAIL, "carrier", R, "guardian_consent_missing"),
        ("guardian consent lets a recipient read", child15("us").with_guardian().guardian_consent("orders"), "orders", EMAIL, "carrier", R, "allow:contract"),
        ("minor with guardian consent, then objected to marketing", child15("us").with_guardian().guardian_consent("marketing").objected("marketing"), "marketing", EMAIL, C, R, "objected"),
        ("minor with guardian consent, objected to LI purpose", child15("us").with_guardian().guardian_consent("fraud").objected("fraud"), "fraud", EMAIL, C, R, "objected"),

        // --- 10. direct marketing objection is absolute ---
        ("eea adult, marketing, consent granted but objected", adult("eea").consent("marketing").objected("marketing"), "marketing", EMAIL, C, R, "objected"),
        ("us adult, marketing (LI), objected", adult("us").objected("marketing"), "marketing", EMAIL, C, R, "objected"),
        ("direct marketing objection beats consent_missing", adult("eea").objected("marketing"), "marketing", EMAIL, C, R, "objected"),
        ("direct marketing objection beats consent_withdrawn", adult("eea").withdrawn("marketing").objected("marketing"), "marketing", EMAIL, C, R, "objected"),
        ("objection to marketing via adnet", adult("us").objected("marketing"), "marketing", DEV, "adnet", R, "objected"),
        ("objection to another purpose does not stop marketing", adult("us").objected("fraud"), "marketing", EMAIL, C, R, "allow:legitimate_interest"),
        ("us adult, newsletter (LI, direct marketing)", adult("us"), "newsletter", EMAIL, C, R, "allow:legitimate_interest"),
        ("objection to marketing covers the newsletter", adult("us").objected("marketing"), "newsletter", EMAIL, C, R, "objected"),
        ("objection to the newsletter covers marketing, even with consent", adult("eea").consent("marketing").objected("newsletter"), "marketing", EMAIL, C, R, "objected"),
        ("objection to the newsletter covers marketing via adnet", adult("us").objected("newsletter"), "marketing", DEV, "adnet", R, "objected"),
        ("objection to another purpose does not stop the newsletter", adult("us").objected("fraud"), "newsletter", EMAIL, C, R, "allow:legitimate_interest"),
        ("objection to direct marketing leaves other LI purposes alone", adult("us").objected("marketing"), "fraud", CARD, C, R, "allow:legitimate_interest"),
        ("guardian rule beats a covering direct-marketing objection", child15("us").objected("marketing"), "newsletter", EMAIL, C, R, "guardian_consent_missing"),
        ("no_legal_basis beats a covering direct-marketing objection", adult("mars").objected("marketing"), "newsletter", EMAIL, C, R, "no_legal_basis"),

        // --- 11. consent / legitimate-interest objection ---
        ("eea adult, analytics, no consent", adult("eea"), "analytics", DEV, C, R, "consent_missing"),
        ("eea adult, analytics, consent withdrawn", adult("eea").withdrawn("analytics"), "analytics", DEV, C, R, "consent_withdrawn"),
        ("eea adult, marketing, consent withdrawn", adult("eea").withdrawn("marketing"), "marketing", EMAIL, C, R, "consent_withdrawn"),
        ("eea adult, marketing, consent for another purpose only", adult("eea").consent("analytics"), "marketing", EMAIL, C, R, "consent_missing"),
        ("eea adult, profiling, no consent", adult("eea"), "profiling", DEV, C, R, "consent_missing"),
        ("legitimate interest objection denies", adult("eea").objected("fraud"), "fraud", CARD, C, R, "objected"),
        ("us profiling (LI) objection denies", adult("us").objected("profiling"), "profiling", DEV, C, R, "objected"),
        ("contract purpose ignores objection", adult("eea").objected("orders"), "orders", EMAIL, C, R, "allow:contract"),
        ("legal obligation ignores objection", adult("eea").objected("tax"), "tax", EMAIL, C, R, "allow:legal_obligation"),
        ("consent purpose (not direct marketing): objection is not the mechanism", adult("eea").consent("analytics").objected("analytics"), "analytics", DEV, C, R, "allow:consent"),
        ("consent purpose, objected and no consent", adult("eea").objected("analytics"), "analytics", DEV, C, R, "consent_missing"),
    ]
}

#[test]
fn table_of_cases() {
    let mut failures = Vec::new();
    let cases = cases();
    for (name, subject, purpose, category, who, how, expected) in &cases {
        let got = check_how(subject, purpose, category, who, *how, now());
        if got != *expected {
            failures.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn table_covers_every_reason_and_basis() {
    let expected: Vec<&str> = cases().iter().map(|c| c.6).collect();
    for r in DenyReason::ALL {
        assert!(expected.contains(&r.code()), "no table case expects `{}`", r.code());
    }
    for b in [LegalBasis::Contract, LegalBasis::LegitimateInterest, LegalBasis::LegalObligation, LegalBasis::Consent] {
        let want = format!("allow:{}", b.as_str());
        assert!(expected.contains(&want.as_str()), "no table case expects `{want}`");
    }
}

#[test]
fn reason_codes_are_distinct_and_match_serde() {
    let mut seen = std::collections::HashSet::new();
    for r in DenyReason::ALL {
        assert!(seen.insert(r.code()), "duplicate code {}", r.code());
        assert_eq!(serde_json::to_string(&r).ok(), Some(format!("\"{}\"", r.code())));
    }
}

// ---------------------------------------------------------------------------
// Age: the request's `at` decides, birthdays inclusive
// ---------------------------------------------------------------------------

fn at(t: time::OffsetDateTime) -> Timestamp {
    Timestamp::from_datetime(t)
}

#[test]
fn a_minor_becomes_an_adult_on_the_birthday_of_the_request() {
    // (jurisdiction, birth, instant, expected) for marketing/email by the controller.
    #[rustfmt::skip]
    let rows: [(&str, Date, Timestamp, &str); 8] = [
        ("us", date!(2008 - 06 - 15), at(datetime!(2026-06-14 23:59:59.999999 UTC)), "guardian_consent_missing"),
        ("us", date!(2008 - 06 - 15), at(datetime!(2026-06-15 00:00 UTC)), "allow:legitimate_interest"),
        ("us", date!(2008 - 06 - 15), at(datetime!(2030-01-01 00:00 UTC)), "allow:legitimate_interest"),
        // the same person is 17 in 2025: the request's instant counts, not a wall clock
        ("us", date!(2008 - 06 - 15), at(datetime!(2025-12-31 12:00 UTC)), "guardian_consent_missing"),
        ("kr", date!(2012 - 06 - 15), at(datetime!(2026-06-14 12:00 UTC)), "guardian_consent_missing"),
        ("kr", date!(2012 - 06 - 15), at(datetime!(2026-06-15 12:00 UTC)), "allow:legitimate_interest"),
        // leap-day birth: 18 on 1 March in a non-leap year
        ("us", date!(2008 - 02 - 29), at(datetime!(2026-02-28 12:00 UTC)), "guardian_consent_missing"),
        ("us", date!(2008 - 02 - 29), at(datetime!(2026-03-01 00:00 UTC)), "allow:legitimate_interest"),
    ];
    for (j, birth, t, expected) in rows {
        let got = check(&born(j, Some(birth)), "marketing", "contact.email", "controller", t);
        assert_eq!(got, expected, "{j}, born {birth}, at {t}");
    }
    // eea consent-based marketing: 16th birthday, own consent starts to count.
    let s = born("eea", Some(date!(2010 - 06 - 15))).consent("marketing");
    assert_eq!(
        check(&s, "marketing", "contact.email", "controller", at(datetime!(2026-06-14 23:00 UTC))),
        "guardian_consent_missing"
    );
    assert_eq!(
        check(&s, "marketing", "contact.email", "controller", at(datetime!(2026-06-15 00:00 UTC))),
        "allow:consent"
    );
    // leap-day birth whose 16th birthday falls in a leap year: 29 February.
    let s = born("eea", Some(date!(2008 - 02 - 29))).consent("marketing");
    assert_eq!(
        check(&s, "marketing", "contact.email", "controller", at(datetime!(2024-02-28 23:59 UTC))),
        "guardian_consent_missing"
    );
    assert_eq!(
        check(&s, "marketing", "contact.email", "controller", at(datetime!(2024-02-29 00:00 UTC))),
        "allow:consent"
    );
}

// ---------------------------------------------------------------------------
// Denial::sentence
// ---------------------------------------------------------------------------

/// Every denial of the table (each reason at least once).
fn table_denials() -> Vec<(Denial, Subject)> {
    let mut out: Vec<(Denial, Subject)> = Vec::new();
    for (_, subject, purpose, category, who, how, _) in cases() {
        if let Err(d) = decide_how(&subject, purpose, category, who, how, now()) {
            out.push((d, subject));
        }
    }
    for r in DenyReason::ALL {
        assert!(out.iter().any(|(d, _)| d.reason == r), "the table must yield `{}`", r.code());
    }
    out
}

#[test]
fn sentences_never_contain_subject_ids() {
    let policy = policy();
    for (d, subject) in table_denials() {
        let s = d.sentence(policy);
        assert!(!s.trim().is_empty(), "{:?}: empty sentence", d.reason);
        assert!(!s.contains('\n'), "{:?}: more than one line: {s}", d.reason);
        for id in [SUBJECT_ID, GUARDIAN_ID, OTHER_GUARDIAN_ID, subject.id.as_str()] {
            assert!(!s.contains(id), "{:?}: sentence names `{id}`: {s}", d.reason);
        }
    }
}

#[test]
fn sentences_name_the_policy_ids_they_speak_of() {
    let policy = policy();
    for (d, _) in table_denials() {
        let s = d.sentence(policy);
        let p = format!("`{}`", policy.purpose_doc(d.purpose).id.value);
        let c = d.category.map(|c| format!("`{}`", policy.category_doc(c).id.value)).unwrap_or_default();
        if d.reason != DenyReason::Erased {
            assert!(s.contains(&p), "{:?}: purpose {p} missing from: {s}", d.reason);
        }
        if matches!(d.reason, DenyReason::PurposeNotDeclaredForCategory | DenyReason::RecipientNotAllowed) {
            assert!(s.contains(&c), "{:?}: category {c} missing from: {s}", d.reason);
        }
        if let Actor::Recipient(r) = d.actor
            && d.reason == DenyReason::RecipientNotAllowed
        {
            let r = format!("`{}`", policy.recipient_doc(r).id.value);
            assert!(s.contains(&r), "{:?}: recipient {r} missing from: {s}", d.reason);
        }
    }
}

/// Every sentence names both the purpose and the category ids (and never a subject id).
#[test]
fn every_sentence_names_purpose_and_category() {
    let policy = policy();
    let mut missing = Vec::new();
    for (d, _) in table_denials() {
        let s = d.sentence(policy);
        let p = format!("`{}`", policy.purpose_doc(d.purpose).id.value);
        let c = d.category.map(|c| format!("`{}`", policy.category_doc(c).id.value)).unwrap_or_default();
        if !(s.contains(&p) && s.contains(&c)) {
            missing.push(format!("{}: {s}", d.reason.code()));
        }
    }
    assert!(missing.is_empty(), "sentences without both ids:\n{}", missing.join("\n"));
}

mod model;
mod regression;
