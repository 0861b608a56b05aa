//! Metrics in the Prometheus text format: requests by route, method and
//! status, decisions by reason, latency histograms by route.
//!
//! Labels are route templates, method names and reason codes, never ids or
//! values. Every series exists in advance, in fixed tables of atomic counters
//! indexed by route ([`crate::ROUTES`] and one `(unmatched)`), method (the
//! standard ones and one `other`) and status (the codes the API answers and
//! one slot per class): a request costs a few relaxed atomic increments, takes
//! no lock and allocates nothing, and no client, authenticated or not, can add
//! a series (a made-up method counts as `other`, an unknown path as
//! `(unmatched)`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::Method;
use custos_core::decision::DenyReason;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "(unmatched)";

/// Method labels; the last one, `other`, counts every method not listed before it.
pub const METHODS: [&str; 8] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other"];

/// Status codes counted one by one; any other status counts in its class (`1xx` … `5xx`).
const STATUSES: [u16; 14] = [200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 413, 415, 500, 503];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const STATUS_SLOTS: usize = STATUSES.len() + CLASSES.len();

/// The distinct route templates of [`crate::ROUTES`], then [`UNMATCHED`].
fn route_labels() -> Vec<&'static str> {
    let mut labels: Vec<&'static str> = Vec::new();
    for (_, path) in crate::ROUTES {
        if !labels.contains(path) {
            labels.push(path);
        }
    }
    labels.push(UNMATCHED);
    labels
}

/// The decision outcomes counted: `allow`, every denial reason (a key's scope
/// refusal is one), and `other` for anything else.
fn outcome_labels() -> Vec<&'static str> {
    let mut labels = vec!["allow"];
    labels.extend(DenyReason::ALL.iter().map(|r| r.code()));
    labels.push("other");
    labels
}

fn counters(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// A route's latency histogram: one counter per bucket (not cumulative; the
/// exposition adds them up), the overflow, and the sum in nanoseconds.
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)), sum_nanos: AtomicU64::new(0) }
    }
}

/// The server's metrics.
pub struct Metrics {
    routes: Vec<&'static str>,
    outcomes: Vec<&'static str>,
    /// `[route][method][status slot]`, flattened.
    requests: Box<[AtomicU64]>,
    latency: Box<[Histogram]>,
    decisions: Box<[AtomicU64]>,
}

impl Default for Metrics {
    fn default() -> Self {
        let routes = route_labels();
        let outcomes = outcome_labels();
        Metrics {
            requests: counters(routes.len() * METHODS.len() * STATUS_SLOTS),
            latency: (0..routes.len()).map(|_| Histogram::new()).collect(),
            decisions: counters(outcomes.len()),
            routes,
            outcomes,
        }
    }
}

/// The slot of a method in [`METHODS`].
pub fn method_slot(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => METHODS.len() - 1,
    }
}

fn status_slot(status: u16) -> usize {
    match STATUSES.iter().position(|s| *s == status) {
        Some(i) => i,
        None => STATUSES.len() + usize::from((status / 100).clamp(1, 5) - 1),
    }
}

fn status_label(slot: usize, buf: &mut String) -> &str {
    buf.clear();
    match STATUSES.get(slot) {
        Some(s) => {
            let _ = write!(buf, "{s}");
        }
        None => buf.push_str(CLASSES[slot - STATUSES.len()]),
    }
    buf
}

impl Metrics {
    /// The slot of a route template (`None`: a request that matched no route).
    pub fn route_slot(&self, template: Option<&str>) -> usize {
        let unmatched = self.routes.len() - 1;
        template.and_then(|t| self.routes.iter().position(|r| *r == t)).unwrap_or(unmatched)
    }

    /// The label of a route slot.
    pub fn route_label(&self, slot: usize) -> &'static str {
        self.routes.get(slot).copied().unwrap_or(UNMATCHED)
    }

    /// Records one request.
    pub fn observe_request(&self, method: &Method, route_slot: usize, status: u16, latency: Duration) {
        let route = route_slot.min(self.routes.len() - 1);
        let i = (route * METHODS.len() + method_slot(method)) * STATUS_SLOTS + status_slot(status);
        if let Some(c) = self.requests.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let h = &self.latency[route];
        let secs = latency.as_secs_f64();
        let bucket = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        h.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        h.sum_nanos.fetch_add(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Records decisions: `allow`, or a denial reason code (anything else counts as `other`).
    pub fn observe_decision(&self, outcome: &str, n: u64) {
        let other = self.outcomes.len() - 1;
        let i = self.outcomes.iter().position(|o| *o == outcome).unwrap_or(other);
        self.decisions[i].fetch_add(n, Ordering::Relaxed);
    }

    /// How many request series have been seen (non-zero counters).
    pub fn request_series(&self) -> usize {
        self.requests.iter().filter(|c| c.load(Ordering::Relaxed) > 0).count()
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut status = String::new();
        let _ = writeln!(out, "# HELP custos_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE custos_http_requests_total counter");
        for (r, route) in self.routes.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                for s in 0..STATUS_SLOTS {
                    let n = self.requests[(r * METHODS.len() + m) * STATUS_SLOTS + s].load(Ordering::Relaxed);
                    if n > 0 {
                        let status = status_label(s, &mut status);
                        let _ = writeln!(
                            out,
                            "custos_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                        );
                    }
                }
            }
        }
        let _ = writeln!(out, "# HELP custos_http_request_duration_seconds Request latency by route.");
        let _ = writeln!(out, "# TYPE custos_http_request_duration_seconds histogram");
        for (route, h) in self.routes.iter().zip(self.latency.iter()) {
            let counts: Vec<u64> = h.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
            let count: u64 = counts.iter().sum();
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(&counts) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "custos_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ =
                writeln!(out, "custos_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}");
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "custos_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(out, "custos_http_request_duration_seconds_count{{route=\"{route}\"}} {count}");
        }
        let _ =
            writeln!(out, "# HELP custos_decisions_total Access decisions by outcome (allow or the denial reason).");
        let _ = writeln!(out, "# TYPE custos_decisions_total counter");
        for (outcome, n) in self.outcomes.iter().zip(self.decisions.iter()) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "custos_decisions_total{{outcome=\"{outcome}\"}} {n}");
            }
        }
        out
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A request id made here: a per-process random prefix and a counter,
/// formatted on the stack (`Display`), so making one allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestId {
    prefix: u32,
    n: u64,
}

impl RequestId {
    /// The next id of this process.
    pub fn next() -> RequestId {
        static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        let prefix = *PREFIX.get_or_init(|| {
            let mut b = [0u8; 4];
            let _ = custos_crypto::random_bytes(&mut b);
            u32::from_be_bytes(b)
        });
        RequestId { prefix, n: NEXT_ID.fetch_add(1, Ordering::Relaxed) }
    }

    /// The id as header bytes, written into `buf` (8 + 1 + up to 20 characters).
    pub fn write<'a>(&self, buf: &'a mut [u8; 32]) -> &'a [u8] {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{self}"));
        let n = usize::try_from(cursor.position()).unwrap_or(0);
        &buf[..n]
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{}", self.prefix, self.n)
    }
}

/// A new request id as text.
pub fn next_request_id() -> String {
    RequestId::next().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_requests_latency_and_decisions() {
        let m = Metrics::default();
        let route = m.route_slot(Some("/v1/subjects/{id}"));
        m.observe_request(&Method::GET, route, 200, Duration::from_micros(300));
        m.observe_request(&Method::GET, route, 200, Duration::from_millis(2));
        m.observe_decision("consent_missing", 1);
        let text = m.render();
        assert!(
            text.contains("custos_http_requests_total{method=\"GET\",route=\"/v1/subjects/{id}\",status=\"200\"} 2")
        );
        assert!(
            text.contains("custos_http_request_duration_seconds_bucket{route=\"/v1/subjects/{id}\",le=\"0.0005\"} 1")
        );
        assert!(
            text.contains("custos_http_request_duration_seconds_bucket{route=\"/v1/subjects/{id}\",le=\"0.0025\"} 2")
        );
        assert!(text.contains("custos_http_request_duration_seconds_count{route=\"/v1/subjects/{id}\"} 2"));
        assert!(text.contains("custos_decisions_total{outcome=\"consent_missing\"} 1"));
    }

    #[test]
    fn made_up_methods_routes_statuses_and_outcomes_share_fixed_series() {
        let m = Metrics::default();
        for i in 0..100u16 {
            let method = Method::from_bytes(format!("M{i}").as_bytes()).unwrap_or(Method::GET);
            m.observe_request(&method, m.route_slot(Some(&format!("/nope/{i}"))), 400 + i % 100, Duration::ZERO);
            m.observe_decision(&format!("made_up_{i}"), 1);
        }
        let text = m.render();
        assert!(text.contains("method=\"other\",route=\"(unmatched)\",status=\"400\"} 1"), "{text}");
        assert!(text.contains("method=\"other\",route=\"(unmatched)\",status=\"4xx\"} 92"), "{text}");
        assert!(text.contains("custos_decisions_total{outcome=\"other\"} 100"), "{text}");
        assert!(m.request_series() <= STATUS_SLOTS, "{text}");
        assert!(!text.contains("M7") && !text.contains("made_up") && !text.contains("/nope"), "{text}");
    }

    #[test]
    fn request_ids_are_formatted_without_allocating() {
        let id = RequestId::next();
        let mut buf = [0u8; 32];
        let bytes = id.write(&mut buf).to_vec();
        assert_eq!(bytes, id.to_string().into_bytes());
        assert!(bytes.len() >= 10);
    }
}
