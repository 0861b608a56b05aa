//! Request metrics for a calendar year (CCPA 11 CCR §7102): per kind, how
//! many requests were received, complied with in whole or in part, denied,
//! withdrawn and still open, and the median and mean days to respond
//! (from receipt to the day a response closed it, calendar days), read
//! from the request records (kept 24 months, §7101).

use custos_core::policy::document::Right;
use custos_core::request::RequestStatus;
use custos_store::{RequestFilter, Store};
use serde::Serialize;
use time::{Date, Month};

use super::record::Body;
use super::*;

/// Requests listed per page while counting.
const PAGE: usize = 1_000;

/// A year's metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestMetrics {
    /// The calendar year of receipt.
    pub year: i32,
    /// One row per request kind, in the API's order.
    pub kinds: Vec<KindMetrics>,
}

/// One kind's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindMetrics {
    /// The request kind.
    pub kind: &'static str,
    /// Received in the year.
    pub received: u64,
    /// Complied with in whole or in part (completed).
    pub complied: u64,
    /// Denied (every reason, `duplicate` and `right_not_available` included).
    pub denied: u64,
    /// Withdrawn by the person.
    pub withdrawn: u64,
    /// Not closed yet.
    pub open: u64,
    /// Median calendar days from receipt to the response (completed or denied), if any.
    pub median_days: Option<f64>,
    /// Mean calendar days from receipt to the response, if any.
    pub mean_days: Option<f64>,
}

impl<S: Store> Vault<S> {
    /// The metrics of requests received in `year`.
    pub fn request_metrics(&self, year: i32) -> Result<RequestMetrics, VaultError> {
        let first = Date::from_calendar_date(year, Month::January, 1).map_err(|_| InputError::Year)?;
        let next = Date::from_calendar_date(year + 1, Month::January, 1).map_err(|_| InputError::Year)?;
        let mut rows: Vec<(KindMetrics, Vec<i64>)> = Right::REQUEST_KINDS
            .iter()
            .map(|k| {
                let m = KindMetrics {
                    kind: k.as_str(),
                    received: 0,
                    complied: 0,
                    denied: 0,
                    withdrawn: 0,
                    open: 0,
                    median_days: None,
                    mean_days: None,
                };
                (m, Vec::new())
            })
            .collect();
        let mut after: Option<(Date, String)> = None;
        loop {
            let filter = RequestFilter {
                received_from: Some(first),
                received_before: Some(next),
                after: after.as_ref().map(|(d, id)| (*d, id.as_str())),
                limit: PAGE,
                ..RequestFilter::default()
            };
            let page = self.store.requests(&filter)?;
            for record in &page {
                let Some((row, days)) = rows.iter_mut().find(|(m, _)| m.kind == record.kind) else { continue };
                let body = Body::decode(record)?;
                row.received += 1;
                match body.status {
                    RequestStatus::Completed => row.complied += 1,
                    RequestStatus::Denied => row.denied += 1,
                    RequestStatus::Withdrawn => row.withdrawn += 1,
                    _ => row.open += 1,
                }
                if matches!(body.status, RequestStatus::Completed | RequestStatus::Denied)
                    && let Some(closed) = body.closed_on
                {
                    days.push((closed - record.received).whole_days());
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some((last.due, last.id.clone())),
                _ => break,
            }
        }
        let kinds = rows
            .into_iter()
            .map(|(mut m, mut days)| {
                if !days.is_empty() {
                    days.sort_unstable();
                    let n = days.len();
                    let median =
                        if n % 2 == 1 { days[n / 2] as f64 } else { (days[n / 2 - 1] + days[n / 2]) as f64 / 2.0 };
                    m.median_days = Some(median);
                    m.mean_days = Some(days.iter().sum::<i64>() as f64 / n as f64);
                }
                m
            })
            .collect();
        Ok(RequestMetrics { year, kinds })
    }
}
