//! The body of a request under an `Idempotency-Key`, watched as it streams to
//! the handler: fed to the request's fingerprint and scanned for the subjects
//! it names, piece by piece, never held whole ([`Tap`], [`Names`]).

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use custos_vault::FingerprintContext;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::ingest::{MAX_LINE_BYTES, wipe_used};

/// What a [`Tap`] saw of the body, handed back when the handler drops it.
pub(super) struct Seen {
    fingerprint: FingerprintContext,
    names: Names,
    /// The unread rest of the body, if the handler stopped before its end.
    rest: Option<Body>,
    /// Whether reading the body failed.
    failed: bool,
}

impl Seen {
    fn feed(&mut self, bytes: &[u8]) {
        self.fingerprint.update(bytes);
        self.names.feed(bytes);
    }

    /// The fingerprint of the whole body and the subjects it names, reading
    /// what the handler left unread (a handler that refused the request
    /// before reading its body: the whole body still fingerprints the
    /// request). `None` if the body could not be read to its announced end.
    pub(super) async fn finish(mut self) -> Option<([u8; 32], BTreeSet<String>)> {
        if self.failed {
            return None;
        }
        if let Some(mut rest) = self.rest.take() {
            while let Some(frame) = rest.frame().await {
                let Ok(data) = frame.ok()?.into_data() else { continue };
                self.feed(&data);
                crate::secret::wipe_bytes(data);
                if self.fingerprint.is_overfed() {
                    return None;
                }
            }
        }
        let names = self.names.finish();
        Some((self.fingerprint.finish()?, names))
    }
}

/// Where a dropped [`Tap`] leaves what it saw.
pub(super) type SeenSlot = Arc<Mutex<Option<Seen>>>;

/// Takes what the tap saw, once it is dropped (`None` while a handler still
/// holds the body).
pub(super) fn take(slot: &SeenSlot) -> Option<Seen> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// A body that passes every frame on unchanged, feeding its bytes to a
/// fingerprint and a [`Names`] scanner as they go.
pub(super) struct Tap {
    inner: Option<Body>,
    seen: Option<Seen>,
    slot: SeenSlot,
}

impl Tap {
    /// `body`, tapped; what it saw is in the slot once the handler drops it.
    pub(super) fn wrap(body: Body, fingerprint: FingerprintContext, names: Names) -> (Body, SeenSlot) {
        let slot = SeenSlot::default();
        let seen = Seen { fingerprint, names, rest: None, failed: false };
        (Body::new(Tap { inner: Some(body), seen: Some(seen), slot: slot.clone() }), slot)
    }
}

impl HttpBody for Tap {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(seen)) = (frame.data_ref(), this.seen.as_mut()) {
                    seen.feed(data);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(seen) = this.seen.as_mut() {
                    seen.failed = true;
                }
                this.inner = None;
            }
            Poll::Ready(None) => this.inner = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if let Some(mut seen) = self.seen.take() {
            seen.rest = self.inner.take();
            *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(seen);
        }
    }
}

/// Finds the subject ids a write request names as its body passes: the
/// `{id}` of a `/v1/subjects/{id}/…` path, the `id` of a created subject (its
/// body parsed whole at the end: it is small), the `subject` of each ingested
/// line (each line parsed as it completes, across chunk boundaries). A body
/// that does not parse names nothing (the handler will refuse it), nor does
/// an ingested line longer than [`MAX_LINE_BYTES`] (the handler refuses it
/// unread, and holding it would double what a batch costs).
pub(super) enum Names {
    /// Named by the path, or nothing to find.
    Known(BTreeSet<String>),
    /// `POST /v1/subjects`: the body so far.
    Created(Zeroizing<Vec<u8>>),
    /// `POST /v1/ingest`: the line in progress and the subjects found.
    Lines { pending: Zeroizing<Vec<u8>>, too_long: bool, found: BTreeSet<String> },
}

impl Names {
    /// The scanner for a request to `path` (with or without its query) with a
    /// body of about `body_len` bytes.
    pub(super) fn for_request(path: &str, body_len: usize) -> Names {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(rest) = path.strip_prefix("/v1/subjects/") {
            let segment = rest.split('/').next().unwrap_or(rest);
            Names::Known(percent_decode(segment).into_iter().collect())
        } else if path == "/v1/subjects" {
            // Reserved whole, so it never reallocates (which would leave unwiped copies).
            Names::Created(Zeroizing::new(Vec::with_capacity(body_len)))
        } else if path == "/v1/ingest" {
            Names::Lines { pending: Zeroizing::new(Vec::new()), too_long: false, found: BTreeSet::new() }
        } else {
            Names::Known(BTreeSet::new())
        }
    }

    /// Scans the next bytes of the body.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        match self {
            Names::Known(_) => {}
            Names::Created(body) => body.extend_from_slice(bytes),
            Names::Lines { pending, too_long, found } => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    let (segment, ended) = match rest.iter().position(|b| *b == b'\n') {
                        Some(i) => (&rest[..i], Some(i + 1)),
                        None => (rest, None),
                    };
                    match ended {
                        // A whole line within this chunk: scanned where it lies.
                        Some(n) if pending.is_empty() && !*too_long => {
                            if segment.len() <= MAX_LINE_BYTES {
                                scan_line(segment, found);
                            }
                            rest = &rest[n..];
                        }
                        Some(n) => {
                            keep(pending, too_long, segment);
                            if !*too_long {
                                scan_line(pending, found);
                            }
                            wipe_used(pending);
                            *too_long = false;
                            rest = &rest[n..];
                        }
                        None => {
                            keep(pending, too_long, segment);
                            rest = &[];
                        }
                    }
                }
            }
        }
    }

    /// The subjects named.
    pub(super) fn finish(self) -> BTreeSet<String> {
        #[derive(Deserialize)]
        struct Created {
            id: Option<String>,
        }
        match self {
            Names::Known(found) => found,
            Names::Created(body) => match serde_json::from_slice::<Created>(&body) {
                Ok(Created { id: Some(id) }) => BTreeSet::from([id]),
                _ => BTreeSet::new(),
            },
            Names::Lines { pending, too_long, mut found } => {
                if !too_long {
                    scan_line(&pending, &mut found);
                }
                found
            }
        }
    }
}

/// Adds `segment` to the line in progress, unless the line is too long
/// already or would be with it (then the line is dropped and wiped).
fn keep(pending: &mut Zeroizing<Vec<u8>>, too_long: &mut bool, segment: &[u8]) {
    if *too_long {
        return;
    }
    if pending.len() + segment.len() > MAX_LINE_BYTES {
        *too_long = true;
        wipe_used(pending);
    } else {
        if pending.capacity() == 0 && !segment.is_empty() {
            // Reserved whole, so it never reallocates (which would leave unwiped copies).
            pending.reserve_exact(MAX_LINE_BYTES);
        }
        pending.extend_from_slice(segment);
    }
}

/// Adds the `subject` of one ingested line, if it has one.
fn scan_line(line: &[u8], found: &mut BTreeSet<String>) {
    #[derive(Deserialize)]
    struct Line {
        subject: Option<String>,
    }
    if let Ok(Line { subject: Some(id) }) = serde_json::from_slice::<Line>(line) {
        found.insert(id);
    }
}

/// A path segment with `%XX` escapes decoded, if it is valid UTF-8 after.
pub(super) fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(hex) = segment.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the one-shot scan finds (the form the middleware used before it
    /// streamed): the reference for the incremental one.
    fn whole(path: &str, body: &[u8]) -> BTreeSet<String> {
        let mut names = Names::for_request(path, body.len());
        names.feed(body);
        names.finish()
    }

    fn in_pieces(path: &str, body: &[u8], cuts: &[usize]) -> BTreeSet<String> {
        let mut names = Names::for_request(path, body.len());
        let mut at = 0;
        for &cut in cuts {
            names.feed(&body[at..cut]);
            at = cut;
        }
        names.feed(&body[at..]);
        names.finish()
    }

    #[test]
    fn subjects_are_found_the_same_however_the_body_is_cut() {
        let batch: &[u8] =
            b"{\"subject\":\"b\",\"value\":\"x\\ny\"}\r\n\n not json\n{\"subject\":\"a\"}\n{\"subject\":\"c\\u00e9\"}";
        let created: &[u8] = br#"{"id":"carol","jurisdiction":"eea"}"#;
        for (path, body) in [("/v1/ingest", batch), ("/v1/subjects", created), ("/v1/subjects/x%40y/erasure", b"{}")] {
            let expected = whole(path, body);
            assert!(!expected.is_empty(), "{path}");
            for first in 0..=body.len() {
                assert_eq!(in_pieces(path, body, &[first]), expected, "{path} cut at {first}");
                for second in first..=body.len() {
                    assert_eq!(in_pieces(path, body, &[first, second]), expected, "{path} cut at {first}, {second}");
                }
            }
            let bytes: Vec<usize> = (1..body.len()).collect();
            assert_eq!(in_pieces(path, body, &bytes), expected, "{path} byte by byte");
        }
        assert_eq!(whole("/v1/ingest", batch).into_iter().collect::<Vec<_>>(), ["a", "b", "cé"]);
    }

    #[test]
    fn an_ingested_line_past_the_line_limit_names_nothing_and_the_next_lines_still_do() {
        let long = format!("{{\"subject\":\"long\",\"value\":\"{}\"}}", "v".repeat(MAX_LINE_BYTES));
        let body = format!("{{\"subject\":\"a\"}}\n{long}\n{{\"subject\":\"b\"}}\n{long}");
        let expected: BTreeSet<String> = ["a", "b"].map(String::from).into();
        assert_eq!(whole("/v1/ingest", body.as_bytes()), expected);
        let cuts = [5, 20, 1000, MAX_LINE_BYTES, MAX_LINE_BYTES + 30, body.len() - 10];
        assert_eq!(in_pieces("/v1/ingest", body.as_bytes(), &cuts), expected);
        // Exactly at the limit is still a line.
        let fill = MAX_LINE_BYTES - "{\"subject\":\"edge\",\"v\":\"\"}".len();
        let edge = format!("{{\"subject\":\"edge\",\"v\":\"{}\"}}", "v".repeat(fill));
        assert_eq!(edge.len(), MAX_LINE_BYTES);
        assert_eq!(in_pieces("/v1/ingest", edge.as_bytes(), &[7]), BTreeSet::from(["edge".to_string()]));
    }
}
