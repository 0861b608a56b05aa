//! An `Idempotency-Key` on a streamed ingestion batch (issue 8, defect 9):
//! the idempotency layer fingerprints the body as it streams to the handler
//! instead of buffering it, and a retry is still answered from the record:
//! the same body, however it is cut into frames or sent (with a length or
//! chunked), is a replay; another body is a 409. On SQLite, or PostgreSQL
//! with `CUSTOS_TEST_BACKEND=postgres`.

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use common::{Fixture, Reply, fixture};
use custos_core::time::Timestamp;
use custos_server::idempotency;
use http_body::{Body as _, Frame, SizeHint};

const SUBJECTS: usize = 5;
const LINES: usize = 40;

/// A body of known length delivered in frames of `frame` bytes, as a slow
/// connection delivers a batch: lines are cut across frames.
struct Framed {
    frames: VecDeque<Bytes>,
    len: u64,
}

impl Framed {
    fn new(bytes: &[u8], frame: usize) -> Framed {
        Framed { frames: bytes.chunks(frame).map(Bytes::copy_from_slice).collect(), len: bytes.len() as u64 }
    }
}

impl http_body::Body for Framed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.frames.pop_front();
        if let Some(f) = &next {
            self.len -= f.len() as u64;
        }
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// How a test sends the batch.
enum Sent {
    /// With its length, in frames of this many bytes.
    Framed(usize),
    /// Chunked: frames of unannounced total length.
    Chunked(usize),
}

async fn ingest(f: &Fixture, batch: &[u8], key: &str, sent: Sent, content_type: &str) -> Reply {
    let body = match sent {
        Sent::Framed(n) => Body::new(Framed::new(batch, n)),
        Sent::Chunked(n) => {
            let frames: Vec<Result<Bytes, Infallible>> =
                batch.chunks(n).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            Body::from_stream(tokio_stream_of(frames))
        }
    };
    assert_eq!(
        body.size_hint().exact().is_some(),
        matches!(sent, Sent::Framed(_)),
        "the body announces its length or not"
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/ingest")
        .header("authorization", format!("Bearer {}", f.admin))
        .header("content-type", content_type)
        .header("idempotency-key", key)
        .body(body)
        .expect("a request");
    f.call(req).await
}

/// A stream over `items`, without a dependency on a stream crate.
fn tokio_stream_of<T: Unpin + Send + 'static>(items: Vec<T>) -> impl futures_core::Stream<Item = T> + Send + 'static {
    struct Iter<T>(std::vec::IntoIter<T>);
    impl<T: Unpin> futures_core::Stream for Iter<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
            Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

fn batch(tag: &str) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..LINES {
        out.push_str(&format!(
            "{{\"subject\":\"s-{}\",\"category\":\"contact.address\",\"value\":\"{tag} {i} {}\",\"source\":\"provided\",\"purpose\":\"provide_offerings\"}}\n",
            i % SUBJECTS,
            "x".repeat(i * 13 % 200)
        ));
    }
    out.into_bytes()
}

async fn with_subjects() -> Fixture {
    let f = fixture();
    for i in 0..SUBJECTS {
        let body = format!(r#"{{"id":"s-{i}","jurisdiction":"california"}}"#);
        let r = f.send(Method::POST, "/v1/subjects", Some(&body), None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    f
}

/// The record for a client key of the fixture's admin key.
fn record(f: &Fixture, client_key: &str) -> Option<custos_store::IdempotentResponse> {
    let key_id = f.admin.split('_').nth(1).expect("cst_<id>_<secret>");
    let key = format!("{key_id}:{client_key}");
    f.with_vault(|v| v.store().idempotent_response(&key, Timestamp(i64::MIN))).expect("lookup")
}

#[tokio::test]
async fn a_streamed_batch_is_replayed_by_its_key_and_another_body_is_a_conflict() {
    let f = with_subjects().await;
    let first_batch = batch("first");
    let first = ingest(&f, &first_batch, "streamed", Sent::Framed(7), "application/x-ndjson").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert!(!first.replayed());
    assert_eq!(first.json()["written"], LINES);

    // The record names every subject of the batch, found across frame cuts.
    let recorded = record(&f, "streamed").expect("the batch was recorded");
    let expected: BTreeSet<String> = (0..SUBJECTS).map(|i| f.state.vault.pseudonym(&format!("s-{i}"))).collect();
    assert_eq!(recorded.subjects.iter().cloned().collect::<BTreeSet<_>>(), expected);
    // The fingerprint is the one of the whole body, as before it streamed.
    let key_id = f.admin.split('_').nth(1).expect("cst_<id>_<secret>");
    let whole = f
        .with_vault(|v| v.idempotency_fingerprint(&format!("{key_id}:streamed"), "POST", "/v1/ingest", &first_batch))
        .expect("a fingerprint");
    assert_eq!(recorded.fingerprint, whole);

    // The same body, cut otherwise or chunked: a replay, and nothing written.
    let audit = f.audit_len();
    for sent in [Sent::Framed(first_batch.len()), Sent::Framed(1000), Sent::Chunked(333)] {
        let retry = ingest(&f, &first_batch, "streamed", sent, "application/x-ndjson").await;
        assert!(retry.replayed(), "{}", retry.text());
        assert_eq!(retry.status, StatusCode::OK);
        assert_eq!(retry.body, first.body);
    }
    assert_eq!(f.audit_len(), audit, "a replay writes nothing");

    // Another body under the key: a 409, however sent, and nothing written.
    let mut other = first_batch.clone();
    let at = other.len() / 2;
    other[at] = if other[at] == b'x' { b'y' } else { b'x' };
    for sent in [Sent::Framed(7), Sent::Chunked(4096)] {
        let conflict = ingest(&f, &other, "streamed", sent, "application/x-ndjson").await;
        assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text());
        assert_eq!(conflict.json()["detail"], idempotency::REUSED);
    }
    let shorter = &first_batch[..first_batch.len() - 1];
    let conflict = ingest(&f, shorter, "streamed", Sent::Framed(64), "application/x-ndjson").await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text());
    assert_eq!(f.audit_len(), audit, "a refused retry writes nothing");
    assert!(f.state.idempotency.is_empty(), "every key was released");
}

#[tokio::test]
async fn a_chunked_batch_is_recorded_like_a_streamed_one() {
    let f = with_subjects().await;
    let body = batch("chunked");
    let first = ingest(&f, &body, "chunked", Sent::Chunked(100), "application/x-ndjson").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert!(!first.replayed());
    let retry = ingest(&f, &body, "chunked", Sent::Framed(5), "application/x-ndjson").await;
    assert!(retry.replayed(), "{}", retry.text());
    assert_eq!(retry.body, first.body);
    assert_eq!(record(&f, "chunked").expect("recorded").subjects.len(), SUBJECTS);
}

#[tokio::test]
async fn a_batch_refused_before_its_body_is_read_is_recorded_for_its_whole_body() {
    let f = with_subjects().await;
    let body = batch("refused");
    // The handler refuses the content type without reading the body; the
    // layer reads the rest to fingerprint the whole request.
    let first = ingest(&f, &body, "refused", Sent::Framed(50), "text/plain").await;
    assert_eq!(first.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", first.text());
    let retry = ingest(&f, &body, "refused", Sent::Framed(body.len()), "text/plain").await;
    assert!(retry.replayed(), "{}", retry.text());
    assert_eq!(retry.body, first.body);
    let other = ingest(&f, &batch("other"), "refused", Sent::Framed(50), "text/plain").await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text());
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_and_not_recorded() {
    let config = custos_server::Config { max_ingest_bytes: 1024, ..custos_server::Config::default() };
    let f = common::fixture_with(config, std::sync::Arc::new(custos_core::time::SystemClock));
    let body = batch("big");
    assert!(body.len() > 1024);
    for sent in [Sent::Framed(100), Sent::Chunked(100)] {
        let r = ingest(&f, &body, "big", sent, "application/x-ndjson").await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
        assert_eq!(r.json()["code"], "payload_too_large");
    }
    assert_eq!(record(&f, "big"), None);
}
