//! The naive reference model of the decision engine, and its comparison
//! with [`decide`]: exhaustively over a grid of subject states, and by
//! proptest over random states, scopes, operations and instants.

use proptest::prelude::*;
use time::macros::date;
use time::{Date, Month};

use super::*;

const JURISDICTIONS: [&str; 4] = ["eea", "us", "kr", "mars"];
const PURPOSES: [&str; 7] = ["orders", "fraud", "tax", "analytics", "marketing", "newsletter", "profiling"];
const DIRECT_MARKETING: [&str; 2] = ["marketing", "newsletter"];
const CATEGORIES: [&str; 4] = ["contact.email", "purchase.history", "payment.card", "device.id"];
const ACTORS: [&str; 5] = ["controller", "carrier", "psp", "adnet", STRANGER];
/// Key scopes for the property test (`None` = unlimited).
const SCOPES: [Option<&[&str]>; 6] =
    [None, None, Some(&[]), Some(&["orders"]), Some(&["orders", "fraud"]), Some(&["marketing", "newsletter", "tax"])];
/// The ways of asking the grid goes through.
const HOWS: [How; 3] = [R, key(&["orders", "fraud"]), DETOK];

/// The policy above, restated by hand.
fn guardian_age(j: &str) -> Option<i32> {
    match j {
        "eea" => Some(16),
        "us" => Some(18),
        "kr" => Some(14),
        _ => None,
    }
}

fn purpose_categories(p: &str) -> &'static [&'static str] {
    match p {
        "orders" | "tax" => &["contact.email", "purchase.history", "payment.card"],
        "fraud" => &["contact.email", "payment.card", "device.id"],
        "analytics" | "profiling" => &["purchase.history", "device.id"],
        "marketing" => &["contact.email", "purchase.history", "device.id"],
        "newsletter" => &["contact.email"],
        _ => &[],
    }
}

fn purpose_basis(p: &str, j: &str) -> Option<&'static str> {
    match (p, j) {
        ("orders", _) => Some("contract"),
        ("fraud", _) => Some("legitimate_interest"),
        ("tax", _) => Some("legal_obligation"),
        ("analytics", _) => Some("consent"),
        ("marketing", "eea") => Some("consent"),
        ("marketing", _) => Some("legitimate_interest"),
        ("newsletter", _) => Some("legitimate_interest"),
        ("profiling", "eea") => Some("consent"),
        ("profiling", "us") => Some("legitimate_interest"),
        _ => None,
    }
}

/// (purposes, categories; empty = any).
fn recipient(r: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match r {
        "carrier" => (&["orders"], &["contact.email"]),
        "psp" => (&["orders", "fraud"], &[]),
        "adnet" => (&["marketing"], &["contact.email", "device.id"]),
        _ => (&[], &[]),
    }
}

/// The day a person born on `birth` turns `years`; 29 February births
/// The purposes that sell, share or target advertising (stop after an opt-out).
const SALE_OR_SHARING: [&str; 2] = ["marketing", "profiling"];
/// The purposes CCPA §7027(m) still permits on sensitive data after a limit request.
const SENSITIVE_USE_PERMITTED: [&str; 3] = ["orders", "fraud", "tax"];
/// The sensitive categories.
const SENSITIVE: [&str; 2] = ["payment.card", "device.id"];

/// have their birthday on 1 March in common years.
fn birthday(birth: Date, years: i32) -> Date {
    let y = birth.year() + years;
    Date::from_calendar_date(y, birth.month(), birth.day())
        .or_else(|_| Date::from_calendar_date(y, Month::March, 1))
        .unwrap_or(Date::MAX)
}

/// Every reason that applies, tagged with its step in the documented order;
/// the answer is the one with the lowest step.
fn model(
    s: &Subject,
    purpose: &str,
    category: &str,
    actor: &str,
    how: How,
    at: Date,
) -> Result<&'static str, &'static str> {
    let mut reasons: Vec<(u8, &'static str)> = Vec::new();
    if actor == STRANGER {
        reasons.push((10, "actor_not_declared"));
    }
    if how.scope.is_some_and(|bound| !bound.contains(&purpose)) {
        reasons.push((20, "purpose_not_bound"));
    }
    if s.erased_at.is_some() {
        reasons.push((30, "erased"));
    }
    if !purpose_categories(purpose).contains(&category) {
        reasons.push((40, "purpose_not_declared_for_category"));
    }
    if how.op == Operation::Detokenize && !(purpose == "orders" && category == "payment.card") {
        reasons.push((50, "detokenize_not_allowed"));
    }
    if actor != "controller" {
        let (ps, cs) = recipient(actor);
        if !ps.contains(&purpose) || !(cs.is_empty() || cs.contains(&category)) {
            reasons.push((60, "recipient_not_allowed"));
        }
    }
    if s.state.restricted_since.is_some() && purpose != "tax" {
        reasons.push((70, "restricted"));
    }
    if s.state.opted_out_since.is_some() && SALE_OR_SHARING.contains(&purpose) {
        reasons.push((71, "opted_out"));
    }
    if s.state.sensitive_limited_since.is_some()
        && SENSITIVE.contains(&category)
        && !SENSITIVE_USE_PERMITTED.contains(&purpose)
    {
        reasons.push((72, "sensitive_use_limited"));
    }
    let age = guardian_age(&s.jurisdiction);
    let basis = age.and_then(|_| purpose_basis(purpose, &s.jurisdiction));
    match (basis, age) {
        (Some(basis), Some(age)) => {
            let record = s.state.consents.get(purpose);
            let objected = s.state.objections.contains_key(purpose);
            let minor = s.birth_date.is_some_and(|b| at < birthday(b, age));
            if minor && basis != "legal_obligation" {
                let by_linked = record.filter(|r| s.guardian.is_some() && r.by_guardian);
                match by_linked.map(|r| r.status) {
                    Some(ConsentStatus::Granted) => {}
                    Some(ConsentStatus::Withdrawn) => reasons.push((90, "consent_withdrawn")),
                    None => reasons.push((90, "guardian_consent_missing")),
                }
            }
            let objected_to_direct_marketing = DIRECT_MARKETING.iter().any(|p| s.state.objections.contains_key(*p));
            if DIRECT_MARKETING.contains(&purpose) && objected_to_direct_marketing {
                reasons.push((100, "objected"));
            }
            if basis == "consent" {
                match record.map(|r| r.status) {
                    None => reasons.push((110, "consent_missing")),
                    Some(ConsentStatus::Withdrawn) => reasons.push((110, "consent_withdrawn")),
                    Some(ConsentStatus::Granted) => {}
                }
            }
            if basis == "legitimate_interest" && objected {
                reasons.push((110, "objected"));
            }
        }
        _ => reasons.push((80, "no_legal_basis")),
    }
    // The documented order: the lowest step wins.
    match reasons.iter().min_by_key(|(step, _)| *step) {
        Some((_, code)) => Err(code),
        None => Ok(basis.unwrap_or("unreachable: no basis always yields a reason")),
    }
}

fn decide_str(
    s: &Subject,
    purpose: &str,
    category: &str,
    who: &str,
    how: How,
    t: Timestamp,
) -> Result<&'static str, &'static str> {
    decide_how(s, purpose, category, who, how, t).map(LegalBasis::as_str).map_err(|d| d.reason.code())
}

/// The five consent records a purpose can have (index 0 = none). A consent
/// marked as a guardian's was given by the subject's linked guardian: the
/// vault refuses anyone else's, and the state keeps only the flag.
fn consent_option(i: u8) -> Option<(ConsentStatus, Option<&'static str>)> {
    use ConsentStatus::{Granted, Withdrawn};
    match i {
        1 => Some((Granted, None)),
        2 => Some((Withdrawn, None)),
        3 => Some((Granted, Some(GUARDIAN_ID))),
        4 => Some((Withdrawn, Some(GUARDIAN_ID))),
        _ => None,
    }
}

/// A subject state for the model comparisons.
#[derive(Debug, Clone)]
struct State {
    erased: bool,
    restricted: bool,
    opted_out: bool,
    limited: bool,
    jurisdiction: usize,
    birth: Option<Date>,
    guardian: bool,
    consents: [u8; 7],
    objections: [bool; 7],
}

impl State {
    fn subject(&self) -> Subject {
        let mut s = born(JURISDICTIONS[self.jurisdiction], self.birth);
        if self.guardian {
            s = s.with_guardian();
        }
        for (i, p) in PURPOSES.iter().enumerate() {
            if let Some((status, by)) = consent_option(self.consents[i]) {
                s = s.record(p, status, by);
            }
            if self.objections[i] {
                s = s.objected(p);
            }
        }
        if self.restricted {
            s = s.restricted();
        }
        if self.opted_out {
            s = s.opted_out();
        }
        if self.limited {
            s = s.limited();
        }
        if self.erased {
            s = s.erased();
        }
        s
    }
}

/// Exhaustive grid: every state of the requested purpose, with the other
/// purposes either empty or full of choices (they must not leak across).
#[test]
fn decide_matches_the_model_on_a_grid() {
    let births = [
        None,
        Some(date!(1990 - 01 - 01)),
        Some(date!(2009 - 01 - 01)),
        Some(date!(2011 - 03 - 01)),
        Some(date!(2016 - 01 - 01)),
    ];
    let t = now();
    let mut outcomes = std::collections::BTreeSet::new();
    let mut mismatches = Vec::new();
    let mut n = 0u32;
    for jurisdiction in 0..JURISDICTIONS.len() {
        for flags in 0..32u8 {
            let (erased, restricted, guardian) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
            let (opted_out, limited) = (flags & 8 != 0, flags & 16 != 0);
            for birth in births {
                for (pi, purpose) in PURPOSES.iter().enumerate() {
                    for consent in 0..7u8 {
                        for objected in [false, true] {
                            for noise in [false, true] {
                                let mut consents = if noise { [3u8; 7] } else { [0u8; 7] };
                                let mut objections = [noise; 7];
                                consents[pi] = consent;
                                objections[pi] = objected;
                                let st = State {
                                    erased,
                                    restricted,
                                    opted_out,
                                    limited,
                                    jurisdiction,
                                    birth,
                                    guardian,
                                    consents,
                                    objections,
                                };
                                let s = st.subject();
                                for category in CATEGORIES {
                                    for (who, how) in ACTORS.iter().flat_map(|w| HOWS.map(|h| (*w, h))) {
                                        n += 1;
                                        let want = model(&s, purpose, category, who, how, t.date());
                                        let got = decide_str(&s, purpose, category, who, how, t);
                                        outcomes.insert(format!("{want:?}"));
                                        if got != want && mismatches.len() < 20 {
                                            mismatches.push(format!(
                                                "{st:?} {purpose} {category} {who} {how:?}: decide {got:?}, model {want:?}"
                                            ));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "decide differs from the model:\n{}", mismatches.join("\n"));
    for r in DenyReason::ALL {
        assert!(outcomes.contains(&format!("{:?}", Err::<&str, &str>(r.code()))), "grid never yields {}", r.code());
    }
    for b in ["contract", "legitimate_interest", "legal_obligation", "consent"] {
        assert!(outcomes.contains(&format!("{:?}", Ok::<&str, &str>(b))), "grid never allows on {b}");
    }
    assert!(n > 400_000, "grid too small: {n}");
}

#[derive(Debug, Clone)]
enum Birth {
    Unknown,
    DaysBefore(i64),
    /// Around the `years`th birthday of the request date, `delta` days off.
    Boundary(i32, i64),
}

fn birth_date(b: &Birth, at: Date) -> Option<Date> {
    match *b {
        Birth::Unknown => None,
        Birth::DaysBefore(d) => Some(at.saturating_sub(time::Duration::days(d))),
        Birth::Boundary(years, delta) => {
            let y = at.year() - years;
            let base = Date::from_calendar_date(y, at.month(), at.day())
                .or_else(|_| Date::from_calendar_date(y, Month::February, 28))
                .unwrap_or(at);
            Some(base.saturating_add(time::Duration::days(delta)))
        }
    }
}

fn birth_strategy() -> impl Strategy<Value = Birth> {
    prop_oneof![
        1 => Just(Birth::Unknown),
        2 => (0i64..=30 * 366).prop_map(Birth::DaysBefore),
        2 => (prop::sample::select(vec![14, 16, 18]), -2i64..=2).prop_map(|(y, d)| Birth::Boundary(y, d)),
    ]
}

#[allow(clippy::type_complexity)]
fn state_strategy() -> impl Strategy<Value = (State, Birth)> {
    (
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.2),
        (prop::bool::weighted(0.2), prop::bool::weighted(0.2)),
        0..JURISDICTIONS.len(),
        birth_strategy(),
        any::<bool>(),
        prop::array::uniform7(0u8..7),
        prop::array::uniform7(prop::bool::weighted(0.25)),
    )
        .prop_map(
            |(erased, restricted, (opted_out, limited), jurisdiction, birth, guardian, consents, objections)| {
                let state = State {
                    erased,
                    restricted,
                    opted_out,
                    limited,
                    jurisdiction,
                    birth: None,
                    guardian,
                    consents,
                    objections,
                };
                (state, birth)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decide_matches_the_naive_model(
        (mut state, birth) in state_strategy(),
        purpose in prop::sample::select(PURPOSES.to_vec()),
        category in prop::sample::select(CATEGORIES.to_vec()),
        who in prop::sample::select(ACTORS.to_vec()),
        scope in prop::sample::select(SCOPES.to_vec()),
        op in prop::sample::select(vec![Operation::Read, Operation::Write, Operation::Detokenize]),
        offset_micros in -400i64 * 86_400_000_000..=400 * 86_400_000_000,
    ) {
        let t = Timestamp(now().0 + offset_micros);
        state.birth = birth_date(&birth, t.date());
        let s = state.subject();
        let how = How { scope, op };
        let want = model(&s, purpose, category, who, how, t.date());
        let got = decide_str(&s, purpose, category, who, how, t);
        prop_assert_eq!(got, want, "state {:?}, birth {:?}, {:?}, at {}", state, birth, how, t);
    }
}

#[test]
fn the_model_agrees_with_the_table() {
    // Guards the model itself: it must give the hand-written answers.
    for (name, subject, purpose, category, who, how, expected) in cases() {
        let got = match model(&subject, purpose, category, who, how, now().date()) {
            Ok(b) => format!("allow:{b}"),
            Err(r) => r.to_string(),
        };
        assert_eq!(got, expected, "model disagrees with the table on: {name}");
    }
}
