//! Deadline arithmetic for rights requests: pure, driven by the policy's
//! rules and an injected "today".
//!
//! A [`DeadlineRule`] is what a law sets for one kind of request: the response
//! period, an optional extension, an optional confirmation-of-receipt period,
//! whether the clock stops while the controller waits for the person, and
//! whether a period ending on a day that is not a business day runs on to
//! the next business day. A [`Calendar`] says which days are business days
//! (the jurisdiction's weekend and public holidays).
//!
//! Counting, as the laws and regulators state it:
//! - every period starts the day after receipt (the day of receipt is not
//!   counted; GDPR via Regulation 1182/71 Art. 3(1), ICO practice; CCPA
//!   11 CCR §7021 "calendar days" from receipt);
//! - calendar days: receipt + n;
//! - business days: the n-th business day after receipt, skipping the
//!   calendar's weekend days and holidays;
//! - months: the same date n months on, or the last day of that month when
//!   the date does not exist there (31 January + 1 month = 28/29 February);
//! - with `roll_to_business_day`, a period whose last day is not a business
//!   day ends on the next business day (Regulation 1182/71 Art. 3(4));
//! - a pause (the controller waiting for the person's answer, where the law
//!   stops the clock) moves the due date on by the pause's length: calendar
//!   days for day and month periods, business days for business-day periods.
//!   A pause that begins after the due date moves nothing;
//! - an extension runs from the due date it extends, and the person must be
//!   told of it by that due date (GDPR Art. 12(3), CCPA §7021(b), PIPEDA
//!   s.8(4)).

use time::{Date, Duration, Weekday};

use crate::time::Period;

/// Which days are business days in a jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Weekend days, one bit per weekday (Monday = bit 0).
    weekend: u8,
    /// Public holidays, sorted, without duplicates.
    holidays: Vec<Date>,
}

impl Default for Calendar {
    /// Saturday and Sunday off, no public holidays.
    fn default() -> Self {
        Calendar::new(&[Weekday::Saturday, Weekday::Sunday], Vec::new())
    }
}

impl Calendar {
    /// A calendar with these weekend days and public holidays (in any order).
    pub fn new(weekend: &[Weekday], mut holidays: Vec<Date>) -> Calendar {
        holidays.sort_unstable();
        holidays.dedup();
        Calendar { weekend: weekend.iter().fold(0, |bits, d| bits | bit(*d)), holidays }
    }

    /// Whether `day` is a business day: not a weekend day, not a holiday.
    pub fn is_business_day(&self, day: Date) -> bool {
        self.weekend & bit(day.weekday()) == 0 && self.holidays.binary_search(&day).is_err()
    }

    /// Whether every day of the week is a weekend day (then no day is a
    /// business day, and business-day periods cannot be counted).
    pub fn has_no_business_days(&self) -> bool {
        self.weekend == 0b111_1111
    }

    /// The day `period` after `start` ends on, counting business days on
    /// this calendar. A calendar without business days leaves business-day
    /// periods at `start`.
    pub fn add(&self, start: Date, period: Period) -> Date {
        match period {
            Period::BusinessDays(n) => self.add_business_days(start, n),
            other => other.after(start),
        }
    }

    /// The `n`-th business day after `start`.
    fn add_business_days(&self, start: Date, n: u32) -> Date {
        if self.has_no_business_days() {
            return start;
        }
        let mut day = start;
        let mut left = n;
        while left > 0 {
            day = next_day(day);
            if self.is_business_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// `day`, or the first business day after it.
    pub fn roll_forward(&self, day: Date) -> Date {
        if self.has_no_business_days() {
            return day;
        }
        let mut d = day;
        while !self.is_business_day(d) {
            d = next_day(d);
        }
        d
    }

    /// Business days in `[from, to)`.
    fn business_days_in(&self, from: Date, to: Date) -> u32 {
        let mut n = 0;
        let mut d = from;
        while d < to {
            if self.is_business_day(d) {
                n += 1;
            }
            d = next_day(d);
        }
        n
    }
}

fn bit(day: Weekday) -> u8 {
    1 << day.number_days_from_monday()
}

fn next_day(d: Date) -> Date {
    d.saturating_add(Duration::DAY)
}

/// What a law sets for one kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineRule {
    /// Time to respond, from receipt.
    pub deadline: Period,
    /// Further time the controller may take, with notice to the person.
    pub extension: Option<Period>,
    /// Time to confirm receipt, where the law sets one (CCPA: 10 business days).
    pub confirm_receipt: Option<Period>,
    /// Whether the clock stops while the controller waits for the person's answer.
    pub clock_pauses: bool,
    /// Whether a period ending on a day that is not a business day runs on
    /// to the next business day.
    pub roll_to_business_day: bool,
}

impl DeadlineRule {
    /// A rule with only a response period.
    pub fn new(deadline: Period) -> DeadlineRule {
        DeadlineRule {
            deadline,
            extension: None,
            confirm_receipt: None,
            clock_pauses: false,
            roll_to_business_day: false,
        }
    }
}

/// A stretch of time the controller waited for the person: from the day the
/// request was put on hold to the day the answer came (`until`, exclusive;
/// `None` while still waiting, then counted up to "today").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// First day of waiting.
    pub from: Date,
    /// Day the answer came (not itself a day of waiting).
    pub until: Option<Date>,
}

/// The dates of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Response due, before any extension (pauses counted in).
    pub due: Date,
    /// Receipt must be confirmed by, where the law requires it.
    pub confirm_by: Option<Date>,
    /// Response due once extended, where the rule allows an extension.
    pub extended_due: Option<Date>,
    /// The person must be told of an extension by this day (the unextended due date).
    pub extension_notice_by: Option<Date>,
}

impl Deadlines {
    /// The dates of a request received on `received` under `rule`, with the
    /// pauses so far (ignored unless the rule stops the clock; an open pause
    /// counts up to `today`).
    pub fn compute(
        rule: &DeadlineRule,
        calendar: &Calendar,
        received: Date,
        pauses: &[Pause],
        today: Date,
    ) -> Deadlines {
        let finish = |d: Date| if rule.roll_to_business_day { calendar.roll_forward(d) } else { d };
        let mut due = calendar.add(received, rule.deadline);
        if rule.clock_pauses && !pauses.is_empty() {
            let mut sorted: Vec<Pause> = pauses.to_vec();
            sorted.sort_by_key(|p| p.from);
            for p in sorted {
                // Waiting can only start after receipt; a pause that begins
                // once the response is due (or overdue) moves nothing.
                let from = p.from.max(next_day(received));
                if from > due {
                    continue;
                }
                let until = p.until.unwrap_or(today).max(from);
                due = match rule.deadline {
                    Period::BusinessDays(_) => {
                        calendar.add(due, Period::BusinessDays(calendar.business_days_in(from, until)))
                    }
                    _ => due.saturating_add(Duration::days((until - from).whole_days())),
                };
            }
        }
        let due = finish(due);
        let extended_due = rule.extension.map(|ext| finish(calendar.add(due, ext)));
        Deadlines {
            due,
            confirm_by: rule.confirm_receipt.map(|p| finish(calendar.add(received, p))),
            extended_due,
            extension_notice_by: extended_due.map(|_| due),
        }
    }

    /// The due date in force: the extended one once the request was extended.
    pub fn due_in_force(&self, extended: bool) -> Date {
        match (extended, self.extended_due) {
            (true, Some(d)) => d,
            _ => self.due,
        }
    }
}

/// Days from `today` to `due`: positive while time is left, 0 on the due
/// day, negative once overdue.
pub fn days_left(due: Date, today: Date) -> i64 {
    (due - today).whole_days()
}

/// Whether a response due on `due` is late on `today` (the whole due day is allowed).
pub fn overdue(due: Date, today: Date) -> bool {
    today > due
}
