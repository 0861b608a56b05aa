//! Time: the one injectable clock, timestamps, and calendar periods.
//!
//! Every deadline, retention and age computation reads time through a
//! [`Clock`], so tests can fix it (invariant 6 in ARCHITECTURE.md).

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime};

/// A point in time, microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From a [`time::OffsetDateTime`].
    pub fn from_datetime(t: OffsetDateTime) -> Self {
        Timestamp((t.unix_timestamp_nanos() / 1_000) as i64)
    }

    /// As a [`time::OffsetDateTime`] in UTC.
    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The UTC calendar date of this instant.
    pub fn date(self) -> Date {
        self.to_datetime().date()
    }

    /// Midnight UTC at the start of `date`.
    pub fn start_of(date: Date) -> Self {
        Self::from_datetime(date.midnight().assume_utc())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_datetime();
        let fmt =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
        match t.format(&fmt) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "@{}", self.0),
        }
    }
}

/// Where time comes from.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(OffsetDateTime::now_utc())
    }
}

/// A clock that stands still until moved; for tests and reproducible runs.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock fixed at `at`.
    pub fn new(at: Timestamp) -> Self {
        FixedClock(AtomicI64::new(at.0))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }

    /// Moves the clock forward by `micros`.
    pub fn advance_micros(&self, micros: i64) {
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// Parses a `YYYY-MM-DD` date.
///
/// The error never quotes the input: a date given for a person (a birth date)
/// is personal data, and policy diagnostics point at the line and column instead.
pub fn parse_date(s: &str) -> Result<Date, DateError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).map_err(|_| DateError)
}

/// A text that is not a `YYYY-MM-DD` date (the text is not kept: it may be a birth date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the value is not a date of the form YYYY-MM-DD")]
pub struct DateError;

/// A text that is not a [`Period`]. Policy text, not personal data: the text is quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// Not a whole number followed by a known unit.
    #[error(
        "`{0}` is not a period: write a whole number and a unit (days, business days, months, years), e.g. \"45 days\""
    )]
    Malformed(String),
    /// Zero of a unit.
    #[error("`{0}` is an empty period: it must be at least 1")]
    Empty(String),
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Whole years between `birth` and `on` (the person's age on that day).
pub fn age_on(birth: Date, on: Date) -> i32 {
    let mut years = on.year() - birth.year();
    if (u8::from(on.month()), on.day()) < (u8::from(birth.month()), birth.day()) {
        years -= 1;
    }
    years
}

/// A calendar period as policies and laws state them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// Calendar days.
    Days(u32),
    /// Business days (Monday to Friday; public holidays are not modelled).
    BusinessDays(u32),
    /// Calendar months ("one month" ends on the same date next month, or month-end).
    Months(u32),
    /// Calendar years.
    Years(u32),
}

impl Period {
    /// Parses `"30 days"`, `"10 business days"`, `"1 month"`, `"7 years"`.
    pub fn parse(s: &str) -> Result<Period, PeriodError> {
        let err = || PeriodError::Malformed(s.to_string());
        let mut words = s.split_whitespace();
        let n: u32 = words.next().ok_or_else(err)?.parse().map_err(|_| err())?;
        let unit: Vec<&str> = words.collect();
        let period = match unit.as_slice() {
            ["day" | "days"] => Period::Days(n),
            ["business", "day" | "days"] => Period::BusinessDays(n),
            ["month" | "months"] => Period::Months(n),
            ["year" | "years"] => Period::Years(n),
            _ => return Err(err()),
        };
        if n == 0 {
            return Err(PeriodError::Empty(s.to_string()));
        }
        Ok(period)
    }

    /// The date this period after `start` ends on.
    pub fn after(self, start: Date) -> Date {
        match self {
            Period::Days(n) => start.saturating_add(time::Duration::days(i64::from(n))),
            Period::BusinessDays(n) => {
                let mut d = start;
                let mut left = n;
                while left > 0 {
                    d = d.saturating_add(time::Duration::days(1));
                    if !matches!(d.weekday(), time::Weekday::Saturday | time::Weekday::Sunday) {
                        left -= 1;
                    }
                }
                d
            }
            Period::Months(n) => add_months(start, n),
            Period::Years(n) => add_months(start, n.saturating_mul(12)),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, unit) = match *self {
            Period::Days(n) => (n, "day"),
            Period::BusinessDays(n) => (n, "business day"),
            Period::Months(n) => (n, "month"),
            Period::Years(n) => (n, "year"),
        };
        write!(f, "{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

fn add_months(start: Date, n: u32) -> Date {
    let total = i64::from(start.year()) * 12 + i64::from(u8::from(start.month()) - 1) + i64::from(n);
    let year = i32::try_from(total.div_euclid(12)).unwrap_or(i32::MAX).min(9999);
    let month = Month::try_from((total.rem_euclid(12) + 1) as u8).unwrap_or(Month::December);
    let last = month.length(year);
    Date::from_calendar_date(year, month, start.day().min(last)).unwrap_or(start)
}

#[cfg(test)]
mod tests {
    #[test]
    fn regression_a_bad_date_is_not_quoted_in_the_error() {
        let e = super::parse_date("1984-13-77").unwrap_err().to_string();
        assert!(!e.contains("1984") && e.contains("YYYY-MM-DD"), "{e}");
    }

    use super::*;
    use time::macros::date;

    #[test]
    fn one_month_ends_on_the_same_date_or_month_end() {
        assert_eq!(Period::Months(1).after(date!(2026 - 01 - 15)), date!(2026 - 02 - 15));
        assert_eq!(Period::Months(1).after(date!(2026 - 01 - 31)), date!(2026 - 02 - 28));
        assert_eq!(Period::Years(1).after(date!(2024 - 02 - 29)), date!(2025 - 02 - 28));
    }

    #[test]
    fn business_days_skip_weekends() {
        // 2026-11-27 is a Friday.
        assert_eq!(Period::BusinessDays(1).after(date!(2026 - 11 - 27)), date!(2026 - 11 - 30));
        assert_eq!(Period::BusinessDays(10).after(date!(2026 - 11 - 27)), date!(2026 - 12 - 11));
    }

    #[test]
    fn periods_parse_and_print_back() {
        for s in ["1 day", "45 days", "10 business days", "1 month", "7 years"] {
            assert_eq!(Period::parse(s).map(|p| p.to_string()), Ok(s.to_string()));
        }
        assert!(Period::parse("as long as required").is_err());
        assert!(Period::parse("0 days").is_err());
        assert!(Period::parse("3 fortnights").is_err());
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age_on(date!(2010 - 06 - 15), date!(2028 - 06 - 14)), 17);
        assert_eq!(age_on(date!(2010 - 06 - 15), date!(2028 - 06 - 15)), 18);
    }

    #[test]
    fn timestamps_print_as_rfc3339_utc() {
        let t = Timestamp::start_of(date!(2020 - 01 - 24));
        assert_eq!(t.to_string(), "2020-01-24T00:00:00.000000Z");
    }
}
