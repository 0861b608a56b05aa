//! The rights-request workflow (issue 9, item 5): every move the workflow
//! has and none it has not, the waits that stop the clock, and extensions.

use custos_core::deadline::{Calendar, DeadlineRule, Pause};
use custos_core::request::{DenialCode, RequestState, RequestStatus, Step, StepError, next};
use custos_core::time::{Period, parse_date};
use time::Date;

use RequestStatus::*;

fn d(s: &str) -> Date {
    parse_date(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

const STEPS: [Step; 8] = [
    Step::AwaitVerification,
    Step::Verify,
    Step::Start,
    Step::AskSubject,
    Step::SubjectAnswered,
    Step::Complete,
    Step::Deny(DenialCode::Excessive),
    Step::Withdraw,
];

/// Every move the workflow has, written out: (from, step, to).
fn moves() -> Vec<(RequestStatus, Step, RequestStatus)> {
    let mut m = vec![
        (Received, Step::AwaitVerification, IdentityUnverified),
        (Received, Step::Verify, Verified),
        (IdentityUnverified, Step::Verify, Verified),
        (Verified, Step::Start, InProgress),
        (InProgress, Step::AskSubject, AwaitingSubject),
        (AwaitingSubject, Step::SubjectAnswered, InProgress),
        (InProgress, Step::Complete, Completed),
    ];
    for open in [Received, IdentityUnverified, Verified, InProgress, AwaitingSubject] {
        m.push((open, Step::Deny(DenialCode::Excessive), Denied));
        m.push((open, Step::Withdraw, Withdrawn));
    }
    m
}

#[test]
fn the_workflow_has_exactly_the_documented_moves() {
    let allowed = moves();
    for from in RequestStatus::ALL {
        for step in STEPS {
            let want = allowed.iter().find(|(f, s, _)| *f == from && *s == step).map(|(_, _, to)| *to);
            match (next(from, step), want) {
                (Ok(to), Some(expected)) => assert_eq!(to, expected, "{from:?} + {step:?}"),
                (Err(StepError::NotFrom { from: f, .. }), None) => assert_eq!(f, from),
                (got, want) => panic!("{from:?} + {step:?}: got {got:?}, want {want:?}"),
            }
        }
    }
    for closed in [Completed, Denied, Withdrawn] {
        assert!(closed.is_closed());
        assert!(STEPS.iter().all(|s| next(closed, *s).is_err()), "{closed:?} is final");
    }
    let e = next(Completed, Step::Withdraw).expect_err("final").to_string();
    assert_eq!(e, "a request that is completed cannot be withdrawn");
}

fn gdpr() -> DeadlineRule {
    DeadlineRule { extension: Some(Period::Months(2)), clock_pauses: true, ..DeadlineRule::new(Period::Months(1)) }
}

#[test]
fn waiting_for_the_person_stops_the_clock_where_the_rule_says_so() {
    let cal = Calendar::default();
    let mut r = RequestState::received(d("2026-01-15"), true);
    r.apply(Step::AwaitVerification, d("2026-01-15")).expect("await");
    r.apply(Step::Verify, d("2026-01-16")).expect("verify");
    r.apply(Step::Start, d("2026-01-17")).expect("start");
    r.apply(Step::AskSubject, d("2026-01-20")).expect("ask");
    // Still waiting on 25 January: five days so far.
    assert_eq!(r.due(&gdpr(), &cal, d("2026-01-25")), d("2026-02-20"));
    r.apply(Step::SubjectAnswered, d("2026-01-30")).expect("answered");
    assert_eq!(r.pauses, vec![Pause { from: d("2026-01-20"), until: Some(d("2026-01-30")) }]);
    assert_eq!(r.due(&gdpr(), &cal, d("2026-02-10")), d("2026-02-25"), "ten days of waiting");
    let no_pause = DeadlineRule { clock_pauses: false, ..gdpr() };
    assert_eq!(r.due(&no_pause, &cal, d("2026-02-10")), d("2026-02-15"), "a rule that does not stop the clock");
    r.apply(Step::Complete, d("2026-02-12")).expect("complete");
    assert_eq!((r.status, r.closed_on), (Completed, Some(d("2026-02-12"))));
}

#[test]
fn a_kind_that_needs_no_verification_starts_verified() {
    let r = RequestState::received(d("2026-02-10"), false);
    assert_eq!(r.status, Verified);
    let mut r = r;
    r.apply(Step::Start, d("2026-02-10")).expect("start");
    assert_eq!(r.status, InProgress);
}

#[test]
fn an_extension_is_once_while_open_and_no_later_than_the_unextended_due_date() {
    let cal = Calendar::default();
    let rule = gdpr();
    let mut r = RequestState::received(d("2026-01-15"), false);
    r.apply(Step::Start, d("2026-01-16")).expect("start");
    let before = r.clone();
    assert_eq!(r.extend(&rule, &cal, d("2026-02-16")), Err(StepError::TooLateToExtend(d("2026-02-15"))));
    assert_eq!(r, before, "a refused extension changes nothing");
    r.extend(&rule, &cal, d("2026-02-15")).expect("on the last day");
    assert_eq!(r.due(&rule, &cal, d("2026-02-20")), d("2026-04-15"), "two further months");
    assert_eq!(r.extend(&rule, &cal, d("2026-02-15")), Err(StepError::ExtendedAlready));
    let fixed = DeadlineRule::new(Period::Days(10));
    let mut korea = RequestState::received(d("2026-03-25"), false);
    assert_eq!(korea.extend(&fixed, &cal, d("2026-03-26")), Err(StepError::NoExtension));
    korea.apply(Step::Withdraw, d("2026-03-27")).expect("withdraw");
    assert_eq!(korea.extend(&rule, &cal, d("2026-03-28")), Err(StepError::Closed));
}

#[test]
fn a_step_dated_before_the_latest_one_is_refused_and_changes_nothing() {
    let mut r = RequestState::received(d("2026-01-15"), true);
    r.apply(Step::Verify, d("2026-01-20")).expect("verify");
    let before = r.clone();
    assert_eq!(r.apply(Step::Start, d("2026-01-19")), Err(StepError::BeforeLatest));
    assert_eq!(r.apply(Step::Complete, d("2026-01-21")).map_err(|e| matches!(e, StepError::NotFrom { .. })), Err(true));
    assert_eq!(r, before);
}

#[test]
fn a_closed_request_stops_counting_an_open_wait_when_it_closes() {
    let cal = Calendar::default();
    let mut r = RequestState::received(d("2026-01-15"), false);
    r.apply(Step::Start, d("2026-01-15")).expect("start");
    r.apply(Step::AskSubject, d("2026-02-01")).expect("ask");
    r.apply(Step::Deny(DenialCode::Unverifiable), d("2026-02-05")).expect("deny");
    // The wait ended with the denial: four days, however late one looks.
    assert_eq!(r.due(&gdpr(), &cal, d("2026-06-01")), d("2026-02-19"));
}
