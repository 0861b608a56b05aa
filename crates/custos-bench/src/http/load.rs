//! The load: subjects created over several connections, consents, a timed
//! read loop, and NDJSON ingestion with a few batches in flight. Every
//! request's category, source and purpose come from the [`Workload`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};

use super::client::{Conn, Errors, Target, shown};
use crate::figures::XorShift;
use crate::workload::Workload;

/// Ingestion requests in flight.
pub const INGEST_IN_FLIGHT: usize = 3;
/// Connections used to create the subjects.
pub const SETUP_CONNECTIONS: usize = 8;

pub fn subject_id(i: usize) -> String {
    format!("bench-{i:07}")
}

/// The value setup stores in the read category for subject `i`.
fn initial_value(i: usize) -> String {
    format!("bench-{i:07}@example.com")
}

/// Subject `i`'s setup request: method, path and query, content type, body.
type RequestFn = Arc<dyn Fn(usize) -> (Method, String, Option<&'static str>, String) + Send + Sync>;

/// Sends one request per subject (`request(i)`: method, path, body) over
/// several connections; each must answer `expect`.
async fn per_subject(target: &Arc<Target>, n: usize, expect: StatusCode, request: RequestFn) -> anyhow::Result<Errors> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SETUP_CONNECTIONS.min(n) {
        let mut conn = Conn::open(target).await?;
        let next = next.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = Errors::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (method, path, content_type, body) = request(i);
                let what = format!("{method} {}", path.split('?').next().unwrap_or_default());
                match conn.send(method, &path, content_type, Bytes::from(body)).await {
                    Ok((status, _)) if status == expect => {}
                    Ok((status, body)) => errors.add(|| format!("{what}: {status}: {}", shown(&body))),
                    Err(e) => {
                        errors.add(|| format!("{what}: {e:#}"));
                        break;
                    }
                }
            }
            errors
        }));
    }
    let mut errors = Errors::default();
    for task in tasks {
        errors.merge(task.await.context("a setup task failed")?);
    }
    Ok(errors)
}

/// Creates the subjects in the workload's jurisdiction (and region).
pub async fn create_subjects(target: &Arc<Target>, work: &Arc<Workload>, n: usize) -> anyhow::Result<Errors> {
    let work = work.clone();
    let request = Arc::new(move |i: usize| {
        let mut body = serde_json::json!({ "id": subject_id(i), "jurisdiction": work.jurisdiction });
        if let Some(region) = &work.region {
            body["region"] = region.as_str().into();
        }
        (Method::POST, "/v1/subjects".to_string(), Some("application/json"), body.to_string())
    });
    per_subject(target, n, StatusCode::CREATED, request).await
}

/// Records every subject's consent to the workload's purpose.
pub async fn grant_consents(target: &Arc<Target>, work: &Arc<Workload>, n: usize) -> anyhow::Result<Errors> {
    let work = work.clone();
    let request = Arc::new(move |i: usize| {
        let path = format!("/v1/subjects/{}/consents/{}", subject_id(i), work.purpose);
        (Method::PUT, path, None, String::new())
    });
    per_subject(target, n, StatusCode::OK, request).await
}

/// What the read load saw.
pub struct ReadTally {
    pub lat_ns: Vec<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: Errors,
    pub elapsed: Duration,
}

impl ReadTally {
    fn new(capacity: usize) -> ReadTally {
        ReadTally {
            lat_ns: Vec::with_capacity(capacity),
            statuses: BTreeMap::new(),
            errors: Errors::default(),
            elapsed: Duration::ZERO,
        }
    }
}

/// `connections` connections looping purpose-checked reads of the workload's
/// first category for `seconds`.
pub async fn read_load(
    target: &Arc<Target>,
    work: &Arc<Workload>,
    connections: usize,
    seconds: u64,
    subjects: usize,
) -> anyhow::Result<ReadTally> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(Conn::open(target).await?);
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(conns.len());
    for (w, mut conn) in conns.into_iter().enumerate() {
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let (category, purpose) = (&work.fields[0].category, &work.purpose);
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let mut tally = ReadTally::new(1 << 14);
            let mut uri = String::with_capacity(96);
            while Instant::now() < deadline {
                let i = (rng.next_u64() % subjects as u64) as usize;
                uri.clear();
                let _ = write!(uri, "/v1/subjects/{}/data/{category}?purpose={purpose}", subject_id(i));
                let t = Instant::now();
                match conn.send(Method::GET, &uri, None, Bytes::new()).await {
                    Ok((status, body)) => {
                        tally.lat_ns.push(t.elapsed().as_nanos() as u64);
                        *tally.statuses.entry(status.as_u16()).or_default() += 1;
                        if status != StatusCode::OK {
                            tally.errors.add(|| format!("GET {uri}: {status}: {}", shown(&body)));
                        } else if !contains(&body, initial_value(i).as_bytes()) {
                            tally
                                .errors
                                .add(|| format!("GET {uri}: 200 without the subject's value: {}", shown(&body)));
                        }
                    }
                    Err(e) => {
                        tally.errors.add(|| format!("GET {uri}: {e:#}"));
                        match Conn::open(&conn.target).await {
                            Ok(c) => conn = c,
                            Err(e) => {
                                tally.errors.add(|| format!("reconnect: {e:#}"));
                                break;
                            }
                        }
                    }
                }
            }
            tally
        }));
    }
    let mut all = ReadTally::new(0);
    for task in tasks {
        let t = task.await.context("a read task failed")?;
        all.lat_ns.extend_from_slice(&t.lat_ns);
        for (s, n) in t.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
        all.errors.merge(t.errors);
    }
    all.elapsed = start.elapsed();
    Ok(all)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Writes one NDJSON line of the workload's purpose.
fn line(out: &mut String, work: &Workload, subject: usize, field: usize, value: &str) {
    let f = &work.fields[field];
    // Policy ids are lower-case letters, digits, `_`, `-` and `.`; the values
    // made here need no escaping either.
    let _ = writeln!(
        out,
        r#"{{"subject":"{}","category":"{}","value":"{value}","source":"{}","purpose":"{}"}}"#,
        subject_id(subject),
        f.category,
        f.source,
        work.purpose
    );
}

/// Setup line `k`: subject `k`'s first value of the read category.
pub fn initial_line(work: &Workload, k: usize, out: &mut String) {
    line(out, work, k, 0, &initial_value(k));
}

/// Ingestion line `k`: a new value for subject `k % subjects`, cycling through the fields.
pub fn ingest_line(work: &Workload, k: usize, subjects: usize, out: &mut String) {
    let field = (k / subjects) % work.fields.len();
    // Values of the shapes people give (a name, an email address, a phone
    // number, a postal address), whatever the category is called.
    let value = match field % 4 {
        0 => format!("Bench Person {k}"),
        1 => format!("person{k}@example.com"),
        2 => format!("+1 555 {:07}", k % 10_000_000),
        _ => format!("{} Main Street, Springfield", k % 100_000 + 1),
    };
    line(out, work, k % subjects, field, &value);
}

/// What an ingestion run saw.
pub struct IngestTally {
    pub written: u64,
    pub errors: Errors,
    pub elapsed: Duration,
}

pub type LineFn = Arc<dyn Fn(usize, &mut String) + Send + Sync>;

/// POSTs `total` lines (made by `line`) in `batch`-line NDJSON requests, a few in flight.
pub async fn ingest(target: &Arc<Target>, total: usize, batch: usize, line: LineFn) -> anyhow::Result<IngestTally> {
    let batches = total.div_ceil(batch);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..INGEST_IN_FLIGHT.min(batches) {
        let mut conn = Conn::open(target).await?;
        let next = next.clone();
        let line = line.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = 0u64;
            let mut errors = Errors::default();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let (from, to) = (b * batch, ((b + 1) * batch).min(total));
                let mut body = String::with_capacity((to - from) * 150);
                for k in from..to {
                    line(k, &mut body);
                }
                let sent = (to - from) as u64;
                match conn.send(Method::POST, "/v1/ingest", Some("application/x-ndjson"), Bytes::from(body)).await {
                    Ok((StatusCode::OK, body)) => match check_summary(&body, sent) {
                        Ok(n) => written += n,
                        Err((n, e)) => {
                            written += n;
                            errors.add(|| format!("POST /v1/ingest (lines {}-{}): {e}", from + 1, to));
                        }
                    },
                    Ok((status, body)) => errors.add(|| format!("POST /v1/ingest: {status}: {}", shown(&body))),
                    Err(e) => {
                        errors.add(|| format!("POST /v1/ingest: {e:#}"));
                        match Conn::open(&conn.target).await {
                            Ok(c) => conn = c,
                            Err(e) => {
                                errors.add(|| format!("reconnect: {e:#}"));
                                break;
                            }
                        }
                    }
                }
            }
            (written, errors)
        }));
    }
    let mut tally = IngestTally { written: 0, errors: Errors::default(), elapsed: Duration::ZERO };
    for task in tasks {
        let (written, errors) = task.await.context("an ingestion task failed")?;
        tally.written += written;
        tally.errors.merge(errors);
    }
    tally.elapsed = start.elapsed();
    Ok(tally)
}

/// Checks an ingestion summary: `written` must equal the lines sent. Returns
/// the lines written, or them with what went wrong.
pub fn check_summary(body: &[u8], sent: u64) -> Result<u64, (u64, String)> {
    let summary: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| (0, format!("the summary is not JSON: {e}")))?;
    let written = summary.get("written").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if written == sent {
        return Ok(written);
    }
    let first = summary
        .get("results")
        .and_then(serde_json::Value::as_array)
        .and_then(|r| r.iter().find(|x| x.get("status").and_then(serde_json::Value::as_str) != Some("ok")))
        .map_or_else(|| "no line error given".to_string(), |x| shown(x.to_string().as_bytes()));
    Err((written, format!("written {written} of {sent} lines; first rejected: {first}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_must_write_every_line() {
        assert_eq!(check_summary(br#"{"lines":2,"written":2,"rejected":0,"results":[]}"#, 2), Ok(2));
        let bad = br#"{"lines":2,"written":1,"rejected":1,"results":[{"line":1,"status":"ok"},{"line":2,"status":"error","code":"denied"}]}"#;
        let Err((1, msg)) = check_summary(bad, 2) else { panic!("a short summary must fail") };
        assert!(msg.contains("denied"), "{msg}");
    }

    #[test]
    fn lines_name_the_workloads_ids() {
        let text = include_str!("../../tests/policies/millbrook-library.yaml");
        let policy = custos_core::Policy::from_yaml(text).expect("policy");
        let work = Workload::from_policy(&policy, 4).expect("workload");
        let mut out = String::new();
        initial_line(&work, 3, &mut out);
        for k in 0..8 {
            ingest_line(&work, k, 2, &mut out);
        }
        let lines: Vec<serde_json::Value> =
            out.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
        assert_eq!(lines.len(), 9);
        assert_eq!(lines[0]["subject"], "bench-0000003");
        assert_eq!(lines[0]["category"], work.fields[0].category.as_str());
        assert_eq!(lines[0]["value"], "bench-0000003@example.com");
        for (l, k) in lines[1..].iter().zip(0usize..) {
            let f = &work.fields[(k / 2) % 4];
            assert_eq!(l["subject"], subject_id(k % 2).as_str());
            assert_eq!(
                (l["category"].as_str(), l["source"].as_str()),
                (Some(f.category.as_str()), Some(f.source.as_str()))
            );
            assert_eq!(l["purpose"], "reading_suggestions");
        }
    }
}
