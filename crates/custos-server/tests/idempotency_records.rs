//! What an `Idempotency-Key` leaves in the store (issue 8, defect 2): a keyed
//! fingerprint, a sealed body, an expiry, and nothing after the subject's
//! erasure. On SQLite, or PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Fixture, fixture, fixture_with};
use custos_core::time::{FixedClock, Timestamp};
use custos_crypto::{Keyring, MasterKey};
use custos_server::Config;
use custos_store::IdempotentResponse;

const NAME: &str = r#"{"value":"Alice Liddell","source":"provided","purpose":"provide_offerings"}"#;
const OTHER_NAME: &str = r#"{"value":"Alice Pleasance","source":"provided","purpose":"provide_offerings"}"#;
const EMAIL: &str = r#"{"value":"alice@example.org","source":"provided","purpose":"provide_offerings"}"#;

/// The scoped key a client key is recorded under for the fixture's admin key.
fn scoped(f: &Fixture, client_key: &str) -> String {
    let key_id = f.admin.split('_').nth(1).expect("cst_<id>_<secret>");
    format!("{key_id}:{client_key}")
}

/// The record for a client key, however old.
fn record(f: &Fixture, client_key: &str) -> Option<IdempotentResponse> {
    let key = scoped(f, client_key);
    f.with_vault(|v| v.store().idempotent_response(&key, Timestamp(i64::MIN))).expect("lookup")
}

async fn create(f: &Fixture, body: &str) {
    let r = f.send(Method::POST, "/v1/subjects", Some(body), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The fingerprint the old code stored: SHA-256 of the method, path and body,
/// length-prefixed, with no key. From it and the first six and last four
/// digits of a card, the card is found by trying the 10^6 middles.
fn unkeyed_fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut buf = b"custos-idempotency-v1".to_vec();
    for part in [method.as_bytes(), path.as_bytes(), body] {
        buf.extend_from_slice(&(part.len() as u64).to_be_bytes());
        buf.extend_from_slice(part);
    }
    custos_crypto::sha256(&buf)
}

#[tokio::test]
async fn regression_idempotency_fingerprint_is_keyed() {
    let f = fixture();
    create(&f, r#"{"id":"alice","jurisdiction":"eea"}"#).await;
    let path = "/v1/subjects/alice/data/payment.card_number";
    let body = r#"{"value":"4111 1111 1111 1111","source":"provided","purpose":"provide_offerings"}"#;
    let first = f.send(Method::PUT, path, Some(body), Some("card-1")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());

    let stored = record(&f, "card-1").expect("the write was recorded").fingerprint;
    assert_ne!(
        stored,
        unkeyed_fingerprint("PUT", path, body.as_bytes()),
        "the stored fingerprint is the unkeyed SHA-256 of the request: the card can be brute-forced from it"
    );
    // It is the vault's keyed hash: computing it takes the master key.
    let scope = scoped(&f, "card-1");
    let keyed = f.with_vault(|v| v.idempotency_fingerprint(&scope, "PUT", path, body.as_bytes())).expect("keyed hash");
    assert_eq!(stored, keyed);
    let other = Keyring::new(&MasterKey::generate().expect("a key")).expect("a keyring");
    let guessed = other
        .keyed_hash(
            b"custos idempotency fingerprints v1",
            &[scope.as_bytes(), b"PUT", path.as_bytes(), body.as_bytes()],
        )
        .expect("a hash");
    assert_ne!(stored, guessed, "another master key gives another fingerprint");

    // And it still does its job: the retry replays, another body conflicts.
    let retry = f.send(Method::PUT, path, Some(body), Some("card-1")).await;
    assert!(retry.replayed());
    assert_eq!(retry.body, first.body);
    let other_card = r#"{"value":"4111 1111 1111 1129","source":"provided","purpose":"provide_offerings"}"#;
    assert_eq!(f.send(Method::PUT, path, Some(other_card), Some("card-1")).await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn regression_idempotency_stores_no_clear_body() {
    let f = fixture();
    let created_body =
        r#"{"id":"alice@example.org","jurisdiction":"eea","region":"xq-region-9","birth_date":"1990-03-04"}"#;
    let created = f.send(Method::POST, "/v1/subjects", Some(created_body), Some("create-1")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert!(contains(&created.body, "alice@example.org"), "the response names the subject: {}", created.text());

    // A client error whose detail describes the input.
    let bad_body = r#"{"value":"Alice","source":"provided","purpose":"secret-purpose-Zq9"}"#;
    let path = "/v1/subjects/alice@example.org/data/contact.name";
    let bad = f.send(Method::PUT, path, Some(bad_body), Some("bad-1")).await;
    assert!(bad.status.is_client_error(), "{} {}", bad.status, bad.text());

    for (client_key, first) in [("create-1", &created), ("bad-1", &bad)] {
        let stored = record(&f, client_key).expect("recorded");
        assert_eq!(stored.status, first.status.as_u16());
        // Markers long enough that random ciphertext cannot hold them by chance
        // (a two-byte one such as `{"` turns up in about one sealed body in 200).
        let markers = [
            "alice@example.org",
            "xq-region-9",
            "1990-03-04",
            "secret-purpose-Zq9",
            "\"jurisdiction\"",
            "urn:custos:problem",
        ];
        for clear in markers {
            assert!(!contains(&stored.body, clear), "{client_key}: the stored body holds `{clear}` in clear");
        }
        assert_ne!(stored.body, first.body, "{client_key}: the body is stored as sent");
    }
    // Sealed, not lost: the retries replay the first responses byte for byte.
    let retry = f.send(Method::POST, "/v1/subjects", Some(created_body), Some("create-1")).await;
    assert!(retry.replayed());
    assert_eq!((retry.status, &retry.body), (created.status, &created.body));
    let retry = f.send(Method::PUT, path, Some(bad_body), Some("bad-1")).await;
    assert!(retry.replayed());
    assert_eq!((retry.status, &retry.body), (bad.status, &bad.body));
}

#[tokio::test]
async fn regression_idempotency_entries_expire() {
    let clock = Arc::new(FixedClock::new(Timestamp(1_717_243_200_000_000)));
    let config = Config { idempotency_ttl: Duration::from_secs(3600), ..Config::default() };
    let f = fixture_with(config, clock.clone());
    create(&f, r#"{"id":"alice","jurisdiction":"eea"}"#).await;
    let path = "/v1/subjects/alice/data/contact.name";
    let first = f.send(Method::PUT, path, Some(NAME), Some("k")).await;
    assert_eq!(first.json()["version"], 1, "{}", first.text());
    let other = f.send(Method::PUT, "/v1/subjects/alice/data/contact.email", Some(EMAIL), Some("other")).await;
    assert!(other.status.is_success(), "{}", other.text());

    clock.advance_micros(30 * 60 * 1_000_000);
    let within = f.send(Method::PUT, path, Some(NAME), Some("k")).await;
    assert!(within.replayed(), "within the time to live the retry replays");

    // Past the time to live the record is gone: the same request is a new one...
    clock.advance_micros(60 * 60 * 1_000_000);
    let after = f.send(Method::PUT, path, Some(NAME), Some("k")).await;
    assert!(!after.replayed(), "an expired record was replayed");
    assert_eq!(after.json()["version"], 2, "{}", after.text());
    // ...recording it pruned every expired record...
    assert_eq!(record(&f, "other"), None, "an expired record was kept");
    let renewed = record(&f, "k").expect("the new request was recorded");
    assert_eq!(renewed.created_at, Timestamp(1_717_243_200_000_000 + 90 * 60 * 1_000_000));
    // ...and once that one expires too, another request with the key is no conflict.
    clock.advance_micros(2 * 60 * 60 * 1_000_000);
    let changed = f.send(Method::PUT, path, Some(OTHER_NAME), Some("k")).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(changed.json()["version"], 3);

    // The store prunes on its own too.
    clock.advance_micros(2 * 60 * 60 * 1_000_000);
    let pruned = f.with_vault(|v| v.store().prune_idempotent_responses(v.clock_now())).expect("pruning");
    assert_eq!(pruned, 1);
    assert_eq!(record(&f, "k"), None);
}

#[tokio::test]
async fn regression_erasure_deletes_idempotency_entries() {
    let f = fixture();
    create(&f, r#"{"id":"alice","jurisdiction":"eea"}"#).await;
    create(&f, r#"{"id":"bob","jurisdiction":"eea"}"#).await;
    let alice_name = "/v1/subjects/alice/data/contact.name";
    assert!(f.send(Method::PUT, alice_name, Some(NAME), Some("a1")).await.status.is_success());
    let consent = f.send(Method::PUT, "/v1/subjects/alice/consents/marketing", None, Some("a2")).await;
    assert!(consent.status.is_success(), "{}", consent.text());
    let batch = concat!(
        r#"{"subject":"alice","category":"contact.email","value":"alice@example.org","source":"provided","purpose":"provide_offerings"}"#,
        "\n",
        r#"{"subject":"bob","category":"contact.email","value":"bob@example.org","source":"provided","purpose":"provide_offerings"}"#,
        "\n"
    );
    assert_eq!(f.ingest(batch, Some("batch")).await.json()["written"], 2);
    assert!(
        f.send(Method::PUT, "/v1/subjects/bob/data/contact.name", Some(NAME), Some("b1")).await.status.is_success()
    );
    for k in ["a1", "a2", "batch", "b1"] {
        assert!(record(&f, k).is_some(), "{k} was recorded");
    }

    let erased = f.send(Method::POST, "/v1/subjects/alice/erasure", None, None).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text());
    for k in ["a1", "a2", "batch"] {
        assert_eq!(record(&f, k), None, "{k}: a record naming the erased subject survived the erasure");
    }
    assert!(record(&f, "b1").is_some(), "another subject's record stays");
    // A retry is a new request now, and it is refused: the subject was erased.
    let retry = f.send(Method::PUT, alice_name, Some(NAME), Some("a1")).await;
    assert!(!retry.replayed());
    assert_eq!(retry.status, StatusCode::FORBIDDEN, "{}", retry.text());
    assert_eq!(retry.json()["reason"], "erased");
}
