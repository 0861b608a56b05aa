//! Rights requests per jurisdiction (issue 9, item 1): which kinds are
//! available, each kind's rule, the calendar, and the errors a bad table gets.

use super::*;
use crate::deadline::Deadlines;
use crate::policy::document::Right;

fn rule(policy: &Policy, jurisdiction: &str, kind: Right) -> Option<RequestRule> {
    policy.request_rule(policy.jurisdiction(jurisdiction).expect("jurisdiction"), kind).cloned()
}

/// The minimal policy with a `requests` table (and more) added to its jurisdiction.
fn with_requests(table: &str) -> String {
    minimal_with("    guardian_required_under: 16\n", &format!("{table}    guardian_required_under: 16\n"))
}

#[test]
fn california_declares_its_statutory_rights_and_the_deadlines_of_the_ccpa_regulations() {
    let p = example();
    let access = rule(&p, "california", Right::Access).expect("access");
    assert_eq!(access.deadline.deadline, Period::Days(45));
    assert_eq!(access.deadline.extension, Some(Period::Days(45)));
    assert_eq!(access.deadline.confirm_receipt, Some(Period::BusinessDays(10)));
    assert!(!access.deadline.clock_pauses, "verification time counts toward the 45 days (§7021(b))");
    assert_eq!(access.verification, Verification::TwoDataPoints);
    assert!(!access.statutory && access.source.contains("7021"));
    for kind in [Right::Erasure, Right::Rectification] {
        assert_eq!(rule(&p, "california", kind).expect("granted").deadline, access.deadline, "{kind:?}");
    }
    for kind in [Right::OptOut, Right::LimitSensitive] {
        let r = rule(&p, "california", kind).expect("granted by law");
        assert!(r.statutory, "{kind:?} is the law's, not the notice's");
        assert_eq!((r.deadline.deadline, r.deadline.extension), (Period::BusinessDays(15), None), "{kind:?}");
        assert_eq!(r.verification, Verification::None, "{kind:?}: no verification for opt-outs (§7060(b))");
    }
    for kind in [Right::Portability, Right::Restriction, Right::Objection, Right::Complaint] {
        assert_eq!(rule(&p, "california", kind), None, "{kind:?} is not available in California");
    }
    let calendar = &p.jurisdiction_rules(p.jurisdiction("california").expect("ca")).calendar;
    assert!(!calendar.is_business_day(date!(2026 - 11 - 26)), "Thanksgiving");
    assert!(calendar.is_business_day(date!(2026 - 11 - 25)));
}

#[test]
fn the_example_gives_regulations_section_1_dates() {
    let p = example();
    let ca = p.jurisdiction("california").expect("ca");
    let access = rule(&p, "california", Right::Access).expect("access");
    let received = date!(2026 - 01 - 15);
    let dates = Deadlines::compute(&access.deadline, &p.jurisdiction_rules(ca).calendar, received, &[], received);
    assert_eq!(dates.due, date!(2026 - 03 - 01), "45 calendar days");
    assert_eq!(dates.confirm_by, Some(date!(2026 - 01 - 30)), "10 business days, Martin Luther King Jr. Day off");
    assert_eq!(dates.extended_due, Some(date!(2026 - 04 - 15)), "90 days in all");
    let eea = p.jurisdiction("eea").expect("eea");
    let erasure = rule(&p, "eea", Right::Erasure).expect("erasure");
    let dates = Deadlines::compute(
        &erasure.deadline,
        &p.jurisdiction_rules(eea).calendar,
        date!(2026 - 01 - 31),
        &[],
        received,
    );
    assert_eq!(
        (dates.due, dates.confirm_by),
        (date!(2026 - 02 - 28), None),
        "one month, month-end clamped; no confirm-by"
    );
    assert_eq!(dates.extended_due, Some(date!(2026 - 04 - 28)));
    let canada = p.jurisdiction("canada").expect("canada");
    let access = rule(&p, "canada", Right::Access).expect("access");
    let dates = Deadlines::compute(
        &access.deadline,
        &p.jurisdiction_rules(canada).calendar,
        date!(2026 - 06 - 10),
        &[],
        received,
    );
    assert_eq!((dates.due, dates.extended_due), (date!(2026 - 07 - 10), Some(date!(2026 - 08 - 09))));
}

#[test]
fn a_kind_without_a_rule_of_its_own_follows_the_jurisdiction_response() {
    let p = example();
    for kind in [Right::Access, Right::Erasure, Right::Objection, Right::WithdrawConsent, Right::Complaint] {
        let r = rule(&p, "eea", kind).expect("granted in the EEA");
        assert_eq!(
            (r.deadline.deadline, r.deadline.extension),
            (Period::Months(1), Some(Period::Months(2))),
            "{kind:?}"
        );
        assert_eq!((r.verification, r.statutory, r.deadline.confirm_receipt), (Verification::EmailCode, false, None));
    }
    assert_eq!(rule(&p, "eea", Right::OptOut), None);
    assert_eq!(rule(&p, "eea", Right::NonDiscrimination), None, "not a kind of request anywhere");
}

#[test]
fn another_law_with_fifteen_day_access_and_a_friday_saturday_weekend_needs_no_code() {
    let text = with_requests(
        "    requests:\n      - kind: access\n        deadline: 15 days\n        verification: session\n        source: another law, art. 9\n    calendar:\n      weekend: [friday, saturday]\n      holidays: [\"2026-04-01\"]\n",
    );
    let p = load(&text);
    let access = rule(&p, "eea", Right::Access).expect("access");
    assert_eq!((access.deadline.deadline, access.deadline.extension), (Period::Days(15), None));
    assert_eq!(access.verification, Verification::Session);
    let cal = &p.jurisdiction_rules(p.jurisdiction("eea").expect("j")).calendar;
    assert!(
        !cal.is_business_day(date!(2026 - 01 - 16)) && cal.is_business_day(date!(2026 - 01 - 18)),
        "Friday off, Sunday on"
    );
    assert!(!cal.is_business_day(date!(2026 - 04 - 01)));
}

#[test]
fn the_old_name_of_the_opt_out_right_still_loads() {
    let p = load(&minimal_with("    rights: [access]", "    rights: [access, opt_out_of_sale]"));
    assert!(rule(&p, "eea", Right::OptOut).is_some());
}

#[test]
fn bad_request_tables_are_refused_with_a_pointed_message() {
    let cases: &[(&str, &str)] = &[
        ("    requests:\n      - kind: non_discrimination\n        source: x\n", "a right, not a kind of request"),
        (
            "    requests:\n      - kind: access\n        source: x\n      - kind: access\n        source: y\n",
            "two rules",
        ),
        ("    requests:\n      - kind: erasure\n        source: x\n", "not in this jurisdiction's `rights`"),
        ("    requests:\n      - kind: access\n        statutory: true\n        source: x\n", "granted by the notice"),
        (
            "    requests:\n      - kind: access\n        extension: 2 months\n        source: x\n",
            "needs the rule's own `deadline`",
        ),
        ("    requests:\n      - kind: access\n        deadline: soon\n        source: x\n", "is not a period"),
        (
            "    requests:\n      - kind: access\n        confirm_receipt: 0 business days\n        source: x\n",
            "empty period",
        ),
        ("    calendar:\n      holidays: [\"2026-02-30\"]\n", "YYYY-MM-DD"),
        (
            "    calendar:\n      weekend: [monday, tuesday, wednesday, thursday, friday, saturday, sunday]\n",
            "no business day",
        ),
    ];
    for (table, expected) in cases {
        let e = the_error(&with_requests(table));
        assert!(e.message.contains(expected), "{table}: got `{}`, expected `{expected}`", e.message);
    }
    let unknown = errors(&with_requests("    requests:\n      - kind: sell_my_data\n        source: x\n"));
    assert!(!unknown.is_empty());
}

#[test]
fn lookup_identifiers_are_normalised_the_way_people_write_them() {
    use crate::policy::document::LookupKind::*;
    assert_eq!(Email.normalise("  Ada.Lovelace@Example.ORG\n").as_deref(), Some("ada.lovelace@example.org"));
    assert_eq!(Phone.normalise("+1 (206) 555-0100").as_deref(), Some("+12065550100"));
    assert_eq!(Phone.normalise("206.555.0100").as_deref(), Some("2065550100"));
    assert_eq!(Phone.normalise(" ( ) - "), None);
    assert_eq!(Exact.normalise(" CUST-0042 ").as_deref(), Some("CUST-0042"));
    assert_eq!(Email.normalise("   "), None);
    let p = example();
    let kind = |c: &str| p.lookup(p.category(c).expect("category"));
    assert_eq!(
        (kind("contact.email"), kind("contact.phone"), kind("account.customer_id")),
        (Some(Email), Some(Phone), Some(Exact))
    );
    assert_eq!(kind("contact.name"), None);
}
