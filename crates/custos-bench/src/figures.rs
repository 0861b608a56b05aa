//! Arithmetic and formatting of the printed figures, and the ids' generator.

use std::time::Duration;

/// Items per second.
pub fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// The mean of durations, in microseconds.
pub fn mean_us(v: &[Duration]) -> f64 {
    v.iter().map(|d| d.as_secs_f64()).sum::<f64>() / v.len().max(1) as f64 * 1e6
}

/// Percentile `p` of durations (sorted in place), in microseconds.
pub fn pct_us(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    if v.is_empty() {
        return 0.0;
    }
    let i = (((p / 100.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e6
}

/// Percentile `p` of sorted nanosecond latencies, in milliseconds.
pub fn pct_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // The nearest rank; the epsilon keeps 99.9 % of 1,000 at rank 999 despite rounding.
    let i = (((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1e6
}

/// KiB as MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A tiny deterministic generator for benchmark ids (not for anything secret).
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn percentiles_pick_the_rank() {
        let v: Vec<u64> = (1..=1000).map(|x| x * 1_000_000).collect();
        assert_eq!(pct_ms(&v, 50.0), 500.0);
        assert_eq!(pct_ms(&v, 99.0), 990.0);
        assert_eq!(pct_ms(&v, 99.9), 999.0);
        assert_eq!(pct_ms(&v, 100.0), 1000.0);
        assert_eq!(pct_ms(&[], 99.0), 0.0);
        let mut d: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        assert_eq!(pct_us(&mut d, 50.0), 50.0);
        assert_eq!(pct_us(&mut d, 100.0), 100.0);
    }
}
