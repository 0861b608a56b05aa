//! The deadline table: each row is one request under one law's rule, with
//! the dates the law gives, and the source the rule comes from
//! (../shared/reference/regulations.md §1 where it is listed there).
//!
//! Dates were worked out by hand from the rule as the source states it
//! (weekdays checked against a calendar); a row that fails means the
//! arithmetic changed, not the law.

use custos_core::deadline::{Calendar, DeadlineRule, Deadlines, Pause, days_left, overdue};
use custos_core::time::{Period, parse_date};
use time::{Date, Weekday};

fn d(s: &str) -> Date {
    parse_date(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn p(s: &str) -> Period {
    Period::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Saturday and Sunday off, California's 2026 state holidays.
fn california() -> Calendar {
    let holidays = [
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-03-31",
        "2026-05-25",
        "2026-07-03",
        "2026-09-07",
        "2026-11-11",
        "2026-11-26",
        "2026-11-27",
        "2026-12-25",
    ];
    Calendar::new(&[Weekday::Saturday, Weekday::Sunday], holidays.iter().map(|h| d(h)).collect())
}

/// Saturday and Sunday off, Christmas and New Year.
fn eu() -> Calendar {
    Calendar::new(&[Weekday::Saturday, Weekday::Sunday], vec![d("2026-12-25"), d("2026-12-26"), d("2027-01-01")])
}

/// A Friday–Saturday weekend, no holidays.
fn friday_saturday() -> Calendar {
    Calendar::new(&[Weekday::Friday, Weekday::Saturday], Vec::new())
}

fn gdpr() -> DeadlineRule {
    DeadlineRule { extension: Some(p("2 months")), ..DeadlineRule::new(p("1 month")) }
}

fn gdpr_rolling() -> DeadlineRule {
    DeadlineRule { roll_to_business_day: true, ..gdpr() }
}

fn gdpr_pausing() -> DeadlineRule {
    DeadlineRule { clock_pauses: true, ..gdpr() }
}

fn ccpa_know() -> DeadlineRule {
    DeadlineRule {
        extension: Some(p("45 days")),
        confirm_receipt: Some(p("10 business days")),
        ..DeadlineRule::new(p("45 days"))
    }
}

fn ccpa_opt_out() -> DeadlineRule {
    DeadlineRule::new(p("15 business days"))
}

fn pipeda() -> DeadlineRule {
    DeadlineRule { extension: Some(p("30 days")), ..DeadlineRule::new(p("30 days")) }
}

struct Row {
    name: &'static str,
    source: &'static str,
    rule: DeadlineRule,
    calendar: Calendar,
    received: &'static str,
    pauses: &'static [(&'static str, Option<&'static str>)],
    today: &'static str,
    due: &'static str,
    confirm_by: Option<&'static str>,
    extended_due: Option<&'static str>,
}

fn row(name: &'static str, source: &'static str, rule: DeadlineRule, received: &'static str, due: &'static str) -> Row {
    Row {
        name,
        source,
        rule,
        calendar: Calendar::default(),
        received,
        pauses: &[],
        today: received,
        due,
        confirm_by: None,
        extended_due: None,
    }
}

fn table() -> Vec<Row> {
    vec![
        Row {
            extended_due: Some("2026-04-15"),
            ..row("one month to the same date", "GDPR Art 12(3)", gdpr(), "2026-01-15", "2026-02-15")
        },
        Row {
            extended_due: Some("2026-04-28"),
            ..row(
                "31 January: month-end clamped, common year",
                "GDPR Art 12(3); ICO: month-end where the date does not exist",
                gdpr(),
                "2026-01-31",
                "2026-02-28",
            )
        },
        Row {
            extended_due: Some("2028-04-29"),
            ..row(
                "31 January: month-end clamped, leap year",
                "GDPR Art 12(3); ICO month rule",
                gdpr(),
                "2028-01-31",
                "2028-02-29",
            )
        },
        Row {
            extended_due: Some("2026-06-30"),
            ..row("31 March: April has 30 days", "GDPR Art 12(3); ICO month rule", gdpr(), "2026-03-31", "2026-04-30")
        },
        Row {
            extended_due: Some("2027-03-15"),
            ..row("across the year end", "GDPR Art 12(3)", gdpr(), "2026-12-15", "2027-01-15")
        },
        row(
            "two months from 31 December clamp to February",
            "GDPR Art 12(3) (the extension's length)",
            DeadlineRule::new(p("2 months")),
            "2026-12-31",
            "2027-02-28",
        ),
        Row {
            calendar: eu(),
            extended_due: Some("2026-05-11"),
            ..row(
                "due on a Saturday runs on to Monday, and so does the extension",
                "Regulation 1182/71 Art 3(4) (periods ending on a non-working day)",
                gdpr_rolling(),
                "2026-02-07",
                "2026-03-09",
            )
        },
        Row {
            calendar: eu(),
            extended_due: Some("2027-03-01"),
            ..row(
                "due on Christmas Day runs past the weekend",
                "Regulation 1182/71 Art 3(4)",
                gdpr_rolling(),
                "2026-11-25",
                "2026-12-28",
            )
        },
        Row {
            extended_due: Some("2026-07-30"),
            ..row(
                "a month ending on a Saturday, no roll-forward",
                "GDPR Art 12(3) as the rule is declared",
                gdpr(),
                "2026-04-30",
                "2026-05-30",
            )
        },
        Row {
            calendar: eu(),
            extended_due: Some("2026-08-03"),
            ..row(
                "a month ending on a Saturday rolls to Monday 1 June",
                "Regulation 1182/71 Art 3(4)",
                gdpr_rolling(),
                "2026-04-30",
                "2026-06-01",
            )
        },
        Row {
            pauses: &[("2026-01-20", Some("2026-01-30"))],
            extended_due: Some("2026-04-25"),
            ..row(
                "clock stopped ten days waiting for the person",
                "ICO right of access guidance: stopping the clock",
                gdpr_pausing(),
                "2026-01-15",
                "2026-02-25",
            )
        },
        Row {
            pauses: &[("2026-02-01", None)],
            today: "2026-02-10",
            extended_due: Some("2026-04-24"),
            ..row(
                "clock still stopped: counts up to today",
                "ICO right of access guidance: stopping the clock",
                gdpr_pausing(),
                "2026-01-15",
                "2026-02-24",
            )
        },
        Row {
            pauses: &[("2026-02-20", Some("2026-02-25"))],
            extended_due: Some("2026-04-15"),
            ..row(
                "a pause after the due date moves nothing",
                "ICO: the clock stops only while time is running",
                gdpr_pausing(),
                "2026-01-15",
                "2026-02-15",
            )
        },
        Row {
            pauses: &[("2026-01-20", Some("2026-01-25")), ("2026-02-01", Some("2026-02-03"))],
            extended_due: Some("2026-04-22"),
            ..row(
                "two pauses add up",
                "ICO right of access guidance: stopping the clock",
                gdpr_pausing(),
                "2026-01-15",
                "2026-02-22",
            )
        },
        Row {
            pauses: &[("2026-01-15", Some("2026-01-18"))],
            extended_due: Some("2026-04-17"),
            ..row(
                "a pause from the day of receipt counts from the next day",
                "Regulation 1182/71 Art 3(1) (the day of the event is not counted)",
                gdpr_pausing(),
                "2026-01-15",
                "2026-02-17",
            )
        },
        Row {
            pauses: &[("2026-01-20", Some("2026-01-30"))],
            calendar: california(),
            confirm_by: Some("2026-01-30"),
            extended_due: Some("2026-04-15"),
            ..row(
                "CCPA does not stop the clock (verification time counts)",
                "11 CCR §7021(b)",
                ccpa_know(),
                "2026-01-15",
                "2026-03-01",
            )
        },
        Row {
            calendar: california(),
            confirm_by: Some("2026-01-30"),
            extended_due: Some("2026-04-15"),
            ..row(
                "45 calendar days, due on a Sunday; extension of 45 more",
                "11 CCR §7021(a),(b)",
                ccpa_know(),
                "2026-01-15",
                "2026-03-01",
            )
        },
        Row {
            calendar: Calendar::default(),
            confirm_by: Some("2026-01-29"),
            extended_due: Some("2026-04-15"),
            ..row(
                "confirm within 10 business days, no holidays declared",
                "11 CCR §7021(a)",
                ccpa_know(),
                "2026-01-15",
                "2026-03-01",
            )
        },
        Row {
            calendar: california(),
            confirm_by: Some("2026-12-08"),
            extended_due: Some("2027-02-18"),
            ..row(
                "confirm across Thanksgiving and the day after",
                "11 CCR §7021(a); Cal. Gov. Code §6700",
                ccpa_know(),
                "2026-11-20",
                "2027-01-04",
            )
        },
        Row {
            calendar: california(),
            confirm_by: Some("2026-02-02"),
            extended_due: Some("2026-04-17"),
            ..row(
                "received on a Saturday before Martin Luther King Jr. Day",
                "11 CCR §7021(a)",
                ccpa_know(),
                "2026-01-17",
                "2026-03-03",
            )
        },
        Row {
            calendar: california(),
            ..row(
                "opt-out within 15 business days across Presidents' Day",
                "11 CCR §7026(f)",
                ccpa_opt_out(),
                "2026-02-10",
                "2026-03-04",
            )
        },
        Row {
            confirm_by: Some("2028-02-03"),
            extended_due: Some("2028-04-19"),
            ..row("45 days across a leap day", "11 CCR §7021(b)", ccpa_know(), "2028-01-20", "2028-03-05")
        },
        Row {
            confirm_by: Some("2027-02-03"),
            extended_due: Some("2027-04-20"),
            ..row("45 days in a common year", "11 CCR §7021(b)", ccpa_know(), "2027-01-20", "2027-03-06")
        },
        Row {
            extended_due: Some("2026-08-09"),
            ..row("30 days, extension of 30 more", "PIPEDA s.8(3),(4)", pipeda(), "2026-06-10", "2026-07-10")
        },
        Row {
            extended_due: Some("2027-02-18"),
            ..row("30 days across the year end", "PIPEDA s.8(3)", pipeda(), "2026-12-20", "2027-01-19")
        },
        row(
            "correction result within 10 days",
            "PIPA Act 36(2); Decree 43(3)",
            DeadlineRule::new(p("10 days")),
            "2026-03-25",
            "2026-04-04",
        ),
        row(
            "access within 10 days",
            "PIPA Act 35(3); Decree 42(2) (10 days, unverified)",
            DeadlineRule::new(p("10 days")),
            "2026-09-25",
            "2026-10-05",
        ),
        row(
            "disclosure within the example's 14 days",
            "APPI Art 33 (without delay; the policy's period)",
            DeadlineRule::new(p("14 days")),
            "2026-05-01",
            "2026-05-15",
        ),
        Row {
            calendar: friday_saturday(),
            ..row(
                "one business day after a Thursday, Friday-Saturday weekend",
                "a jurisdiction's declared calendar",
                DeadlineRule::new(p("1 business day")),
                "2026-01-15",
                "2026-01-18",
            )
        },
        Row {
            calendar: Calendar::default(),
            ..row(
                "one business day after a Thursday, Saturday-Sunday weekend",
                "a jurisdiction's declared calendar",
                DeadlineRule::new(p("1 business day")),
                "2026-01-15",
                "2026-01-16",
            )
        },
        Row {
            pauses: &[("2026-01-20", Some("2026-01-23"))],
            ..row(
                "a business-day clock stopped three business days",
                "a business-day rule that stops the clock",
                DeadlineRule { clock_pauses: true, ..DeadlineRule::new(p("10 business days")) },
                "2026-01-15",
                "2026-02-03",
            )
        },
        Row {
            calendar: california(),
            ..row(
                "received on a holiday: counting starts the next day",
                "11 CCR §7021(a)",
                DeadlineRule::new(p("10 business days")),
                "2026-01-01",
                "2026-01-15",
            )
        },
    ]
}

#[test]
fn every_scenario_gives_the_dates_of_its_law() {
    let rows = table();
    assert!(rows.len() >= 30, "the table has {} scenarios", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        assert!(!r.source.is_empty(), "{}: cites no source", r.name);
        let pauses: Vec<Pause> =
            r.pauses.iter().map(|(from, until)| Pause { from: d(from), until: until.map(d) }).collect();
        let got = Deadlines::compute(&r.rule, &r.calendar, d(r.received), &pauses, d(r.today));
        assert_eq!(
            r.rule.extension.is_some(),
            r.extended_due.is_some(),
            "{}: states an extended date iff the rule has one",
            r.name
        );
        let want = Deadlines {
            due: d(r.due),
            confirm_by: r.confirm_by.map(d),
            extended_due: r.extended_due.map(d),
            extension_notice_by: r.extended_due.map(|_| d(r.due)),
        };
        if got != want {
            failures.push(format!("{} ({}): got {got:?}, want {want:?}", r.name, r.source));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_extended_due_date_is_the_one_in_force_once_extended() {
    let dates = Deadlines::compute(&gdpr(), &Calendar::default(), d("2026-01-15"), &[], d("2026-01-15"));
    assert_eq!(dates.due_in_force(false), d("2026-02-15"));
    assert_eq!(dates.due_in_force(true), d("2026-04-15"));
    let none = Deadlines::compute(
        &DeadlineRule::new(p("10 days")),
        &Calendar::default(),
        d("2026-03-25"),
        &[],
        d("2026-03-25"),
    );
    assert_eq!((none.extended_due, none.extension_notice_by, none.due_in_force(true)), (None, None, d("2026-04-04")));
}

#[test]
fn days_left_counts_down_to_zero_on_the_due_day_and_below_once_overdue() {
    let due = d("2026-02-15");
    assert_eq!((days_left(due, d("2026-02-10")), overdue(due, d("2026-02-10"))), (5, false));
    assert_eq!((days_left(due, due), overdue(due, due)), (0, false));
    assert_eq!((days_left(due, d("2026-02-16")), overdue(due, d("2026-02-16"))), (-1, true));
}

#[test]
fn a_calendar_takes_holidays_in_any_order_and_a_rule_without_pauses_ignores_them() {
    let unsorted =
        Calendar::new(&[Weekday::Saturday, Weekday::Sunday], vec![d("2026-11-27"), d("2026-11-26"), d("2026-11-26")]);
    assert!(!unsorted.is_business_day(d("2026-11-26")) && !unsorted.is_business_day(d("2026-11-27")));
    assert!(unsorted.is_business_day(d("2026-11-25")));
    let paused = [Pause { from: d("2026-01-20"), until: Some(d("2026-01-30")) }];
    let dates = Deadlines::compute(&gdpr(), &Calendar::default(), d("2026-01-15"), &paused, d("2026-02-01"));
    assert_eq!(dates.due, d("2026-02-15"), "GDPR as declared here does not stop the clock");
}

#[test]
fn a_calendar_with_no_business_days_never_loops() {
    let all = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
    let cal = Calendar::new(&all, Vec::new());
    assert!(cal.has_no_business_days());
    let rule = DeadlineRule { roll_to_business_day: true, ..DeadlineRule::new(p("10 business days")) };
    assert_eq!(Deadlines::compute(&rule, &cal, d("2026-01-15"), &[], d("2026-01-15")).due, d("2026-01-15"));
}
