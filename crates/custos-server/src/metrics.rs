//! Metrics in the Prometheus text format: requests by route and status,
//! decisions by reason, latency histograms by route.
//!
//! Labels are route templates and reason codes, never ids or values.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    decisions: BTreeMap<String, u64>,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let secs = latency.as_secs_f64();
        let mut inner = self.lock();
        *inner.requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        let h = inner.latency.entry(route.to_string()).or_default();
        h.count += 1;
        h.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
    }

    /// Records decisions: `allow`, or a denial reason code.
    pub fn observe_decision(&self, outcome: &str, n: u64) {
        *self.lock().decisions.entry(outcome.to_string()).or_default() += n;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let _ = writeln!(out, "# HELP custos_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE custos_http_requests_total counter");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "custos_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(out, "# HELP custos_http_request_duration_seconds Request latency by route.");
        let _ = writeln!(out, "# TYPE custos_http_request_duration_seconds histogram");
        for (route, h) in &inner.latency {
            let route = escape(route);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "custos_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "custos_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "custos_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "custos_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        let _ =
            writeln!(out, "# HELP custos_decisions_total Access decisions by outcome (allow or the denial reason).");
        let _ = writeln!(out, "# TYPE custos_decisions_total counter");
        for (outcome, n) in &inner.decisions {
            let _ = writeln!(out, "custos_decisions_total{{outcome=\"{outcome}\"}} {n}");
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A new request id: a per-process random prefix and a counter.
pub fn next_request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        let _ = custos_crypto::random_bytes(&mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    });
    format!("{prefix}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_requests_latency_and_decisions() {
        let m = Metrics::default();
        m.observe_request("GET", "/v1/subjects/{id}", 200, Duration::from_micros(300));
        m.observe_request("GET", "/v1/subjects/{id}", 200, Duration::from_millis(2));
        m.observe_decision("consent_missing", 1);
        let text = m.render();
        assert!(
            text.contains("custos_http_requests_total{method=\"GET\",route=\"/v1/subjects/{id}\",status=\"200\"} 2")
        );
        assert!(
            text.contains("custos_http_request_duration_seconds_bucket{route=\"/v1/subjects/{id}\",le=\"0.0005\"} 1")
        );
        assert!(text.contains("custos_http_request_duration_seconds_count{route=\"/v1/subjects/{id}\"} 2"));
        assert!(text.contains("custos_decisions_total{outcome=\"consent_missing\"} 1"));
    }
}
