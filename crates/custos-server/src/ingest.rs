//! `POST /v1/ingest`: newline-delimited JSON batches, streamed, in bounded memory.
//!
//! A batch is read from the connection frame by frame and split into lines as
//! it arrives; it is never buffered whole. Lines are copied into an arena of
//! 1 MiB blocks (wiped when dropped), so a batch costs about its own size once,
//! with no reallocation copies. A line longer than [`MAX_LINE_BYTES`] is
//! rejected alone, without being buffered. A batch larger than the configured
//! limit is refused with 413 before anything is written: either at once, from
//! its `Content-Length`, or as soon as the stream passes the limit.
//!
//! The lines are then parsed, validated, decided and written on the blocking
//! pool in chunks of at most [`CHUNK_LINES`] lines or [`CHUNK_BYTES`] bytes,
//! each chunk in one transaction; the arena's blocks are released as their
//! lines are parsed. Each line stands alone: a bad line is
//! reported and neither stops nor changes the others.
//!
//! At most [`crate::Config::max_concurrent_ingestions`] batches are read and
//! written at once ([`gate`]); others wait, unread, before their first byte is
//! taken from the connection. Peak memory is therefore about
//! `max_concurrent_ingestions × (max_ingest_bytes + one chunk)` above the
//! server's baseline (see `tests/ingest_memory.rs` in `custos-cli`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use custos_vault::{By, KeyScope, Put};
use http_body_util::BodyExt;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::AppState;
use crate::api::WRITERS;
use crate::auth::Auth;
use crate::extract::parse_json;
use crate::problem::{ApiError, Problem, ProblemKind};
use crate::secret::SecretString;

/// Longest line accepted, in bytes (a value is at most 64 KiB; JSON escapes may take up to six bytes per byte).
pub const MAX_LINE_BYTES: usize = 512 * 1024;
/// Most lines written in one transaction. Every transaction rewrites the
/// pages it touches (WAL frames, checksums), so small ones cost throughput:
/// 1,000-line chunks halved ingestion against whole 10,000-line batches.
pub const CHUNK_LINES: usize = 10_000;
/// Most line bytes written in one transaction: the parsed and sealed copies of
/// a chunk are what ingestion holds beyond the body (8 MiB chunks took four
/// concurrent 60 MB batches on PostgreSQL past the memory bound; 2 MiB keeps
/// a batch of small lines whole).
pub const CHUNK_BYTES: usize = 2 * 1024 * 1024;
const BLOCK_BYTES: usize = 1024 * 1024;

/// One line of an ingestion batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestLine {
    /// Subject id.
    pub subject: String,
    /// Category id.
    pub category: String,
    /// The value (1 byte to 64 KiB).
    #[schema(value_type = String, min_length = 1, max_length = 65536)]
    pub value: SecretString,
    /// Source id.
    pub source: String,
    /// Purpose it is collected for.
    pub purpose: String,
}

/// The outcome of one line.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResult {
    /// 1-based line number.
    pub line: usize,
    /// `ok` or `error`.
    pub status: String,
    /// Version written, for `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Problem code, for `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Denial reason, for denied lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was wrong, for `error` (never the line's values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The outcome of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestSummary {
    /// Lines read (blank lines are skipped).
    pub lines: usize,
    /// Lines written.
    pub written: usize,
    /// Lines rejected.
    pub rejected: usize,
    /// Per-line outcomes, in line order.
    pub results: Vec<IngestResult>,
}

/// Holds one of the ingestion permits while a `/v1/ingest` request is read
/// and written, around every other layer (the idempotency layer's lookup and
/// fingerprint run under the permit too). Other routes pass through.
pub async fn gate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let is_ingest = req.extensions().get::<MatchedPath>().is_some_and(|m| m.as_str() == "/v1/ingest");
    if !is_ingest {
        return next.run(req).await;
    }
    let Ok(_permit) = state.ingestion.clone().acquire_owned().await else {
        return ApiError::new(ProblemKind::Unavailable, "the server is shutting down").into_response();
    };
    next.run(req).await
}

/// Ingests newline-delimited JSON items (`application/x-ndjson`).
///
/// Each line is validated and decided on its own; a bad line is reported and
/// neither stops nor corrupts the rest. The body is streamed; the good lines
/// are written in transactions of at most 10,000 lines (2 MiB) each.
#[utoipa::path(post, path = "/v1/ingest", tag = "data",
    request_body(content = IngestLine, content_type = "application/x-ndjson",
        description = "One JSON object per line; at most the server's `--max-ingest-bytes` (default 64 MiB) in all, 512 KiB a line"),
    responses((status = 200, body = IngestSummary), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem)),
    security(("bearer" = [])))]
pub async fn ingest(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = auth.require(WRITERS, "ingest personal data")?;
    let (actor, scope, by) = (p.actor.clone(), p.scope.clone(), p.by());
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson") || v.starts_with("application/jsonl"));
    if !ndjson {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "send the batch as `Content-Type: application/x-ndjson`, one JSON object per line",
        ));
    }
    let limit = state.config.max_ingest_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let arena = read_lines(body, limit).await?;
    let outcomes = state.run(move |v| Ok(write_lines(v, arena, &actor, scope.as_deref(), &by))).await?;
    let mut out = Vec::with_capacity(64 + outcomes.results.len() * 44);
    if let Err(e) = serde_json::to_writer(&mut out, &outcomes) {
        return Err(ApiError::internal(&e));
    }
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], out).into_response())
}

fn too_large() -> ApiError {
    ApiError::new(ProblemKind::PayloadTooLarge, "the batch is larger than the configured limit (--max-ingest-bytes)")
}

/// Where a line sits in the arena, or why it was not kept.
enum Slot {
    /// Block, start and end of the line's bytes.
    Kept(u32, u32, u32),
    /// Longer than [`MAX_LINE_BYTES`].
    TooLong,
}

/// The non-blank lines of a batch, in blocks wiped on drop.
#[derive(Default)]
struct Arena {
    blocks: Vec<Zeroizing<Vec<u8>>>,
    /// 1-based line number and slot, in line order.
    lines: Vec<(u32, Slot)>,
}

impl Arena {
    fn push(&mut self, line: u32, bytes: &[u8]) {
        let fits = self.blocks.last().is_some_and(|b| b.capacity() - b.len() >= bytes.len());
        if !fits {
            self.blocks.push(Zeroizing::new(Vec::with_capacity(BLOCK_BYTES.max(bytes.len()))));
        }
        let index = self.blocks.len().saturating_sub(1);
        let Some(block) = self.blocks.last_mut() else { return };
        let start = block.len();
        block.extend_from_slice(bytes);
        let end = block.len();
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.lines.push((line, Slot::Kept(at(index), at(start), at(end))));
    }

    fn bytes(&self, block: u32, start: u32, end: u32) -> &[u8] {
        self.blocks.get(block as usize).and_then(|b| b.get(start as usize..end as usize)).unwrap_or_default()
    }
}

/// Wipes the bytes in use and empties the buffer. Only the used part is
/// zeroed: the spare capacity never held a line that was not wiped like
/// this, and `Zeroize` on the `Vec` itself would zero the whole 512 KiB
/// capacity for every line (it did: half of ingestion's CPU time).
pub(crate) fn wipe_used(buffer: &mut Vec<u8>) {
    zeroize::Zeroize::zeroize(buffer.as_mut_slice());
    buffer.clear();
}

/// Reads the body frame by frame into an [`Arena`] of lines.
async fn read_lines(mut body: Body, limit: usize) -> Result<Arena, ApiError> {
    let mut arena = Arena::default();
    // Reserved whole, so it never reallocates (which would leave unwiped copies).
    let mut pending: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(MAX_LINE_BYTES));
    let mut too_long = false;
    let mut line: u32 = 1;
    let mut total = 0usize;
    let finish = |arena: &mut Arena, pending: &mut Vec<u8>, too_long: &mut bool, line: u32| {
        if *too_long {
            arena.lines.push((line, Slot::TooLong));
        } else {
            let raw = pending.strip_suffix(b"\r").unwrap_or(pending);
            if !raw.iter().all(u8::is_ascii_whitespace) {
                arena.push(line, raw);
            }
        }
        wipe_used(pending);
        *too_long = false;
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::new(ProblemKind::UnreadableBody, "cannot read the body"))?;
        let Ok(data) = frame.into_data() else { continue };
        total += data.len();
        if total > limit {
            return Err(too_large());
        }
        let mut rest = &data[..];
        while !rest.is_empty() {
            let (segment, ended) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], Some(i + 1)),
                None => (rest, None),
            };
            if !too_long {
                if pending.len() + segment.len() > MAX_LINE_BYTES {
                    too_long = true;
                    wipe_used(&mut pending);
                } else {
                    pending.extend_from_slice(segment);
                }
            }
            match ended {
                Some(n) => {
                    finish(&mut arena, &mut pending, &mut too_long, line);
                    line = line.saturating_add(1);
                    rest = &rest[n..];
                }
                None => rest = &[],
            }
        }
        crate::secret::wipe_bytes(data);
    }
    finish(&mut arena, &mut pending, &mut too_long, line);
    Ok(arena)
}

/// What became of one line.
enum Outcome {
    Written(u32),
    Failed(Box<LineError>),
}

struct LineError {
    code: &'static str,
    reason: Option<String>,
    detail: String,
}

impl LineError {
    fn of(e: ApiError) -> Box<LineError> {
        let p = e.problem();
        Box::new(LineError { code: e.kind().describe().1, reason: p.reason, detail: p.detail })
    }
}

/// Per-line outcomes, compact in memory, serialized as an [`IngestSummary`].
struct Outcomes {
    lines: usize,
    written: usize,
    results: Vec<(u32, Outcome)>,
}

impl Serialize for Outcomes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Summary<'a> {
            lines: usize,
            written: usize,
            rejected: usize,
            results: Results<'a>,
        }
        struct Results<'a>(&'a [(u32, Outcome)]);
        #[derive(Serialize)]
        struct One<'a> {
            line: u32,
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            version: Option<u32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            code: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            detail: Option<&'a str>,
        }
        impl Serialize for Results<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for (line, outcome) in self.0 {
                    let one = match outcome {
                        Outcome::Written(v) => {
                            One { line: *line, status: "ok", version: Some(*v), code: None, reason: None, detail: None }
                        }
                        Outcome::Failed(e) => One {
                            line: *line,
                            status: "error",
                            version: None,
                            code: Some(e.code),
                            reason: e.reason.as_deref(),
                            detail: Some(&e.detail),
                        },
                    };
                    seq.serialize_element(&one)?;
                }
                seq.end()
            }
        }
        Summary {
            lines: self.lines,
            written: self.written,
            rejected: self.lines - self.written,
            results: Results(&self.results),
        }
        .serialize(s)
    }
}

/// Parses, validates, decides and writes the lines, chunk by chunk, releasing
/// the arena's blocks once their lines are parsed.
fn write_lines(
    vault: &crate::SharedVault,
    mut arena: Arena,
    actor: &str,
    scope: Option<&KeyScope>,
    by: &By,
) -> Outcomes {
    let lines = std::mem::take(&mut arena.lines);
    let mut results: Vec<(u32, Outcome)> = Vec::with_capacity(lines.len());
    let mut chunk: Vec<(u32, IngestLine)> = Vec::new();
    let mut chunk_bytes = 0;
    let mut live = 0usize;
    for (line, slot) in &lines {
        if let Slot::Kept(block, _, _) = slot {
            // Lines come in block order: every block before this one is done with.
            for b in arena.blocks.iter_mut().take(*block as usize).skip(live) {
                *b = Zeroizing::new(Vec::new());
            }
            live = live.max(*block as usize);
        }
        match slot {
            Slot::TooLong => results.push((
                *line,
                Outcome::Failed(LineError::of(ApiError::new(
                    ProblemKind::LineTooLong,
                    format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                ))),
            )),
            Slot::Kept(block, start, end) => {
                let raw = arena.bytes(*block, *start, *end);
                match parse_json::<IngestLine>(raw, "line") {
                    Ok(l) => {
                        chunk_bytes += raw.len();
                        chunk.push((*line, l));
                    }
                    Err(e) => results.push((*line, Outcome::Failed(LineError::of(e)))),
                }
            }
        }
        if chunk.len() >= CHUNK_LINES || chunk_bytes >= CHUNK_BYTES {
            write_chunk(vault, &mut chunk, actor, scope, by, &mut results);
            chunk_bytes = 0;
        }
    }
    drop(arena);
    write_chunk(vault, &mut chunk, actor, scope, by, &mut results);
    results.sort_by_key(|(line, _)| *line);
    let written = results.iter().filter(|(_, o)| matches!(o, Outcome::Written(_))).count();
    Outcomes { lines: lines.len(), written, results }
}

/// Writes one chunk's lines in one transaction and records their outcomes.
fn write_chunk(
    vault: &crate::SharedVault,
    chunk: &mut Vec<(u32, IngestLine)>,
    actor: &str,
    scope: Option<&KeyScope>,
    by: &By,
    results: &mut Vec<(u32, Outcome)>,
) {
    if chunk.is_empty() {
        return;
    }
    let puts: Vec<Put<'_>> = chunk
        .iter()
        .map(|(_, l)| Put {
            subject: &l.subject,
            category: &l.category,
            value: l.value.expose(),
            source: &l.source,
            purpose: &l.purpose,
        })
        .collect();
    match vault.put_each(&puts, actor, scope, by) {
        Ok(outcomes) => {
            for ((line, _), outcome) in chunk.iter().zip(outcomes) {
                results.push((
                    *line,
                    match outcome {
                        Ok(v) => Outcome::Written(v),
                        Err(e) => Outcome::Failed(LineError::of(e.into())),
                    },
                ));
            }
        }
        Err(e) => {
            let e = ApiError::from(e);
            for (line, _) in chunk.iter() {
                let p = e.problem();
                let one = LineError { code: e.kind().describe().1, reason: p.reason, detail: p.detail };
                results.push((*line, Outcome::Failed(Box::new(one))));
            }
        }
    }
    drop(puts);
    chunk.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(frames: &[&[u8]], limit: usize) -> Result<Vec<(u32, Vec<u8>)>, ApiError> {
        let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> =
            frames.iter().map(|f| Ok(axum::body::Bytes::copy_from_slice(f))).collect();
        let body = Body::from_stream(futures_stream(chunks));
        let arena = read_lines(body, limit).await?;
        Ok(arena
            .lines
            .iter()
            .map(|(n, slot)| match slot {
                Slot::Kept(b, s, e) => (*n, arena.bytes(*b, *s, *e).to_vec()),
                Slot::TooLong => (*n, b"<too long>".to_vec()),
            })
            .collect())
    }

    fn futures_stream<T: Send + Unpin + 'static>(
        items: Vec<T>,
    ) -> impl futures_core::Stream<Item = T> + Send + 'static {
        struct Iter<T>(std::vec::IntoIter<T>);
        impl<T> futures_core::Stream for Iter<T>
        where
            T: Unpin,
        {
            type Item = T;
            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<T>> {
                std::task::Poll::Ready(self.0.next())
            }
        }
        Iter(items.into_iter())
    }

    #[tokio::test]
    async fn lines_split_across_frames_are_joined_and_blank_lines_skipped() {
        let got = lines_of(&[b"{\"a\"", b":1}\r\n\n  \n{\"b\":2}"], 1000).await.map_err(|e| e.problem().detail);
        let got = got.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, vec![(1, b"{\"a\":1}".to_vec()), (4, b"{\"b\":2}".to_vec())]);
    }

    #[tokio::test]
    async fn an_overlong_line_is_rejected_alone_and_a_batch_over_the_limit_is_413() {
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        let got = lines_of(&[b"{}\n", &long, b"\n{}"], usize::MAX).await.map_err(|e| e.problem().detail);
        let got = got.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, vec![(1, b"{}".to_vec()), (2, b"<too long>".to_vec()), (3, b"{}".to_vec())]);
        let over = lines_of(&[b"{}\n", b"{}\n"], 5).await;
        assert_eq!(over.err().map(|e| e.problem().status), Some(413));
    }
}
