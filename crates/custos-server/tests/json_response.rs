//! `json_response` serializes a response once, into a buffer it grows by hand
//! (wiping what it outgrows): the body must be exactly the JSON of the value,
//! whether it fits the first buffer or needs it grown several times.

use axum::http::StatusCode;
use custos_server::secret::{SecretString, json_response};
use serde::Serialize;

#[derive(Serialize)]
struct View {
    value: SecretString,
    note: String,
    list: Vec<u32>,
}

async fn body_of(view: &View) -> (StatusCode, String, Vec<u8>) {
    let resp = json_response(StatusCode::CREATED, view);
    let status = resp.status();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.map(|b| b.to_vec()).unwrap_or_default();
    (status, ct, body)
}

#[tokio::test]
async fn the_body_is_the_json_of_the_value_small_or_large() {
    // From a few bytes to well past several doublings of the first buffer,
    // with escapes (each a write of its own) in the strings.
    for size in [0usize, 1, 100, 1_000, 1_023, 1_024, 1_025, 5_000, 70_000, 300_000] {
        let view = View {
            value: SecretString::new("v\"\\\n".repeat(size / 4 + 1)),
            note: "é".repeat(size % 97),
            list: (0..u32::try_from(size / 50).unwrap_or(0)).collect(),
        };
        let want = serde_json::to_vec(&view).unwrap_or_default();
        let (status, ct, body) = body_of(&view).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(ct, "application/json");
        assert_eq!(body.len(), want.len(), "size {size}");
        assert!(body == want, "size {size}: the body differs from the value's JSON");
    }
}
