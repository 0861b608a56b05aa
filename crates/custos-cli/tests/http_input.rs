//! End-to-end tests of what the HTTP API does with requests that are not
//! simple: bad input (a problem, and nothing written), oversized bodies,
//! retries with an idempotency key, NDJSON batches with bad lines, and a
//! request in flight when the server is told to stop. The real `custos serve`
//! binary (the harness and its suite-wide checks are in `support/mod.rs`); on
//! PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use reqwest::blocking::Body;
use serde_json::{Value, json};
use support::{JSON, NDJSON, R, Server, Who, put_body, unique};

#[test]
fn bad_input_is_a_problem_and_writes_nothing() -> R<()> {
    let server = Server::start(&["--max-body-bytes", "1024", "--max-ingest-bytes", "4096"])?;
    server.create_subject("bob", "eea")?;
    let email = server.personal();
    server.put("bob", "contact.email", &email, "provide_offerings")?;
    let card = server.card();
    server.put("bob", "payment.card_number", &card, "provide_offerings")?;
    let before = server.audit_count()?;
    let item = "/v1/subjects/bob/data/contact.email";
    let v = server.personal();
    let good = put_body(&v, "provided", "provide_offerings").to_string();

    // Malformed JSON, unknown fields, wrong types, empty or invalid bodies.
    let truncated = &good[..good.len() - 5];
    server.raw("PUT", item, Who::Admin, Some(JSON), truncated.as_bytes())?.problem(400, "invalid_request")?;
    let unknown = json!({ "value": v, "source": "provided", "purpose": "provide_offerings", "colour": "red" });
    let p = server.json("PUT", item, Who::Admin, &unknown)?.problem(400, "invalid_request")?;
    // The unknown field is not named (a key may be a personal value); the expected ones are.
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(!detail.contains("colour") && detail.contains("`purpose`"), "{p}");
    let wrong_type = json!({ "value": 42, "source": "provided", "purpose": "provide_offerings" });
    server.json("PUT", item, Who::Admin, &wrong_type)?.problem(400, "invalid_request")?;
    let wrong_type = json!({ "value": v, "source": ["provided"], "purpose": "provide_offerings" });
    server.json("PUT", item, Who::Admin, &wrong_type)?.problem(400, "invalid_request")?;
    let value_in_wrong_field = json!({ "value": v, "source": "provided", "purpose": { "id": v } });
    server.json("PUT", item, Who::Admin, &value_in_wrong_field)?.problem(400, "invalid_request")?;
    let missing_field = json!({ "value": v, "source": "provided" });
    server.json("PUT", item, Who::Admin, &missing_field)?.problem(400, "invalid_request")?;
    server.raw("PUT", item, Who::Admin, Some(JSON), b"")?.problem(400, "invalid_request")?;
    server.raw("PUT", item, Who::Admin, Some(JSON), b"[1, 2]")?.problem(400, "invalid_request")?;
    server.raw("PUT", item, Who::Admin, Some(JSON), b"{\"value\": \"\xff\xfe\"}")?.problem(400, "invalid_request")?;
    // Oversized bodies (the server runs with --max-body-bytes 1024).
    let big = put_body(&format!("{v}{}", "x".repeat(2048)), "provided", "provide_offerings");
    server.json("PUT", item, Who::Admin, &big)?.problem(413, "payload_too_large")?;
    // Missing or wrong content type.
    server.raw("PUT", item, Who::Admin, None, good.as_bytes())?.problem(415, "unsupported_media_type")?;
    server.raw("PUT", item, Who::Admin, Some("text/plain"), good.as_bytes())?.problem(415, "unsupported_media_type")?;
    // Unknown categories, purposes and sources; invalid values.
    let p = server
        .json("PUT", "/v1/subjects/bob/data/contact.fax", Who::Admin, &put_body(&v, "provided", "provide_offerings"))?
        .problem(400, "invalid_request")?;
    // The unknown id is not echoed; the known ones are listed.
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(!detail.contains("contact.fax") && detail.contains("unknown category"), "{p}");
    server
        .json("PUT", item, Who::Admin, &put_body(&v, "provided", "world_domination"))?
        .problem(400, "invalid_request")?;
    server
        .json("PUT", item, Who::Admin, &put_body(&v, "telepathy", "provide_offerings"))?
        .problem(400, "invalid_request")?;
    server
        .json("PUT", item, Who::Admin, &put_body("", "provided", "provide_offerings"))?
        .problem(400, "invalid_request")?;
    let bad_card = format!("{}{}", &card[..15], (card.as_bytes()[15] - b'0' + 1) % 10);
    server.remember(&bad_card);
    server
        .json(
            "PUT",
            "/v1/subjects/bob/data/payment.card_number",
            Who::Admin,
            &put_body(&bad_card, "provided", "provide_offerings"),
        )?
        .problem(400, "invalid_request")?;
    // Unknown or invalid subjects.
    server
        .json(
            "PUT",
            "/v1/subjects/nobody/data/contact.email",
            Who::Admin,
            &put_body(&v, "provided", "provide_offerings"),
        )?
        .problem(404, "not_found")?;
    let long_id = "a".repeat(200);
    server
        .json(
            "PUT",
            &format!("/v1/subjects/{long_id}/data/contact.email"),
            Who::Admin,
            &put_body(&v, "provided", "provide_offerings"),
        )?
        .problem(400, "invalid_request")?;
    server.get("/v1/subjects/nobody?purpose=provide_offerings", Who::Admin)?.problem(404, "not_found")?;
    // Subjects: unknown jurisdiction, unknown field, bad date, duplicate id.
    let subjects = "/v1/subjects";
    server
        .json("POST", subjects, Who::Admin, &json!({ "id": "carl", "jurisdiction": "atlantis" }))?
        .problem(400, "invalid_request")?;
    server
        .json("POST", subjects, Who::Admin, &json!({ "id": "carl", "jurisdiction": "eea", "email": v }))?
        .problem(400, "invalid_request")?;
    server
        .json(
            "POST",
            subjects,
            Who::Admin,
            &json!({ "id": "carl", "jurisdiction": "eea", "birth_date": "01/02/2003" }),
        )?
        .problem(400, "invalid_request")?;
    server
        .json("POST", subjects, Who::Admin, &json!({ "id": "bob", "jurisdiction": "eea" }))?
        .problem(409, "conflict")?;
    server
        .raw("POST", subjects, Who::Admin, None, b"{\"id\": \"carl\", \"jurisdiction\": \"eea\"}")?
        .problem(415, "unsupported_media_type")?;
    // Reads: missing, unknown or extra query parameters; unknown categories.
    server.get(item, Who::Admin)?.problem(400, "invalid_request")?;
    server.get(&format!("{item}?purpose=world_domination"), Who::Admin)?.problem(400, "invalid_request")?;
    server.get(&format!("{item}?purpose=provide_offerings&extra=1"), Who::Admin)?.problem(400, "invalid_request")?;
    server
        .get("/v1/subjects/bob/data/contact.fax?purpose=provide_offerings", Who::Admin)?
        .problem(400, "invalid_request")?;
    server
        .get("/v1/subjects/bob/data/contact.phone?purpose=provide_offerings", Who::Admin)?
        .problem(404, "not_found")?;
    server.get("/v1/audit?limit=0", Who::Auditor)?.problem(400, "invalid_request")?;
    server.get("/v1/audit?after=minus-one", Who::Auditor)?.problem(400, "invalid_request")?;
    // Choices: unknown purposes and subjects, bad optional bodies.
    server
        .request("PUT", "/v1/subjects/bob/consents/world_domination", Who::Admin, None, &[])?
        .problem(400, "invalid_request")?;
    server
        .request("PUT", "/v1/subjects/nobody/consents/marketing", Who::Admin, None, &[])?
        .problem(404, "not_found")?;
    server
        .raw("PUT", "/v1/subjects/bob/consents/marketing", Who::Admin, None, b"{}")?
        .problem(415, "unsupported_media_type")?;
    server
        .raw("PUT", "/v1/subjects/bob/consents/marketing", Who::Admin, Some(JSON), b"{\"by_guardian\": ")?
        .problem(400, "invalid_request")?;
    server
        .json("PUT", "/v1/subjects/bob/consents/marketing", Who::Admin, &json!({ "guardian": v }))?
        .problem(400, "invalid_request")?;
    server
        .request("PUT", "/v1/subjects/bob/objections/world_domination", Who::Admin, None, &[])?
        .problem(400, "invalid_request")?;
    // Detokenization: malformed and unknown tokens, unknown purposes.
    let detok = "/v1/detokenize";
    server
        .json("POST", detok, Who::Admin, &json!({ "token": v, "purpose": "provide_offerings" }))?
        .problem(400, "invalid_request")?;
    let unknown_token = format!("tok_{}", "0".repeat(32));
    server
        .json("POST", detok, Who::Admin, &json!({ "token": unknown_token, "purpose": "provide_offerings" }))?
        .problem(404, "not_found")?;
    server
        .json("POST", detok, Who::Admin, &json!({ "token": unknown_token, "purpose": "world_domination" }))?
        .problem(400, "invalid_request")?;
    // Ingestion: wrong content type, oversized batch (--max-ingest-bytes 4096).
    let line = json!({ "subject": "bob", "category": "contact.email", "value": v, "source": "provided", "purpose": "provide_offerings" });
    server
        .raw("POST", "/v1/ingest", Who::Admin, Some(JSON), format!("{line}\n").as_bytes())?
        .problem(415, "unsupported_media_type")?;
    server
        .raw("POST", "/v1/ingest", Who::Admin, None, format!("{line}\n").as_bytes())?
        .problem(415, "unsupported_media_type")?;
    // Over the ingestion limit (--max-ingest-bytes 4096), sent with an Idempotency-Key.
    let batch = format!("{line}\n").repeat(4096 / line.to_string().len() + 2);
    let key = format!("big-{}", unique());
    let body = Some((Some(NDJSON), Body::from(batch.clone())));
    server
        .request("POST", "/v1/ingest", Who::Admin, body, &[("idempotency-key", &key)])?
        .problem(413, "payload_too_large")?;
    // No such route, no such method.
    server.get("/v1/nothing-here", Who::Admin)?.problem(404, "no_route")?;
    server.request("DELETE", "/v1/subjects", Who::Admin, None, &[])?.problem(405, "method_not_allowed")?;

    // Nothing was written: no audit entry, still one version.
    assert_eq!(server.audit_count()?, before, "bad input wrote audit entries: {:?}", server.audit_since(before)?);
    let h = server.get(&format!("{item}/history?purpose=provide_offerings"), Who::Admin)?.want_json(200)?;
    let versions = h["versions"].as_array().ok_or("no versions")?;
    assert_eq!(versions.len(), 1, "{h}");
    assert_eq!(versions[0]["value"], email.as_str());
    server.get("/v1/subjects/carl?purpose=provide_offerings", Who::Admin)?.problem(404, "not_found")?;
    let bob = server.get("/v1/subjects/bob?purpose=provide_offerings", Who::Admin)?.want_json(200)?;
    assert_eq!(bob["consents"], json!([]), "{bob}");
    assert_eq!(bob["objections"], json!([]), "{bob}");
    server.finish()
}

#[test]
fn a_retry_with_the_same_idempotency_key_returns_the_first_result_and_writes_nothing() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("ida", "california")?;
    let path = "/v1/subjects/ida/data/contact.email";
    let value = server.personal();
    let body = put_body(&value, "provided", "provide_offerings").to_string();
    let key = format!("retry-{}", unique());
    let put = |body: &str, key: &str| {
        server.request(
            "PUT",
            path,
            Who::Admin,
            Some((Some(JSON), Body::from(body.to_string()))),
            &[("idempotency-key", key)],
        )
    };
    let first = put(&body, &key)?.want_json(200)?;
    assert_eq!(first["version"], 1, "{first}");
    let count = server.audit_count()?;
    let retry = put(&body, &key)?.want_json(200)?;
    assert_eq!(retry, first, "a retry returns the first result");
    assert_eq!(server.audit_count()?, count, "a retry writes no audit entry");
    // The same key with another request is a conflict and writes nothing.
    let other = put_body(&server.personal(), "provided", "provide_offerings").to_string();
    put(&other, &key)?.problem(409, "conflict")?;
    assert_eq!(server.audit_count()?, count, "a conflicting reuse writes nothing");
    let h = server.get(&format!("{path}/history?purpose=provide_offerings"), Who::Admin)?.want_json(200)?;
    assert_eq!(h["versions"].as_array().map(Vec::len), Some(1), "{h}");
    assert_eq!(h["versions"][0]["value"], value.as_str());
    // A new key is a new write.
    let second = put(&other, &format!("retry-{}", unique()))?.want_json(200)?;
    assert_eq!(second["version"], 2, "{second}");
    server.finish()
}

#[test]
fn a_path_segment_that_is_not_utf8_is_a_problem() -> R<()> {
    let server = Server::start(&[])?;
    server.get("/v1/subjects/%FF%FE", Who::Admin)?.problem(400, "invalid_request")?;
    server
        .get("/v1/subjects/%FF/data/contact.email?purpose=provide_offerings", Who::Admin)?
        .problem(400, "invalid_request")?;
    server
        .request("PUT", "/v1/subjects/bob/consents/%C3%28", Who::Admin, None, &[])?
        .problem(400, "invalid_request")?;
    server.finish()
}

#[test]
fn oversized_raw_bodies_are_problems() -> R<()> {
    let server = Server::start(&["--max-body-bytes", "1024", "--max-ingest-bytes", "4096"])?;
    server.create_subject("olga", "eea")?;
    let before = server.audit_count()?;
    let v = server.personal();
    let line = json!({ "subject": "olga", "category": "contact.email", "value": v, "source": "provided",
        "purpose": "provide_offerings" });
    let batch = format!("{line}\n").repeat(4096 / line.to_string().len() + 2);
    server.raw("POST", "/v1/ingest", Who::Admin, Some(NDJSON), batch.as_bytes())?.problem(413, "payload_too_large")?;
    let consent = json!({ "by_guardian": "x".repeat(2048) });
    server
        .json("PUT", "/v1/subjects/olga/consents/marketing", Who::Admin, &consent)?
        .problem(413, "payload_too_large")?;
    server
        .json("DELETE", "/v1/subjects/olga/consents/marketing", Who::Admin, &consent)?
        .problem(413, "payload_too_large")?;
    assert_eq!(server.audit_count()?, before, "oversized bodies wrote audit entries");
    server.finish()
}

#[test]
fn batch_ingestion_reports_bad_lines_and_writes_the_good_ones() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("ivy", "california")?;
    server.create_subject("jon", "eea")?;
    let (e1, n2, n3, bad) = (server.personal(), server.personal(), server.personal(), server.personal());
    let bad_card = {
        let c = server.card();
        let wrong = format!("{}{}", &c[..15], (c.as_bytes()[15] - b'0' + 1) % 10);
        server.remember(&wrong);
        wrong
    };
    let line = |subject: &str, category: &str, value: &str, purpose: &str| {
        json!({ "subject": subject, "category": category, "value": value, "source": "provided", "purpose": purpose })
            .to_string()
    };
    let lines = [
        line("ivy", "contact.email", &e1, "provide_offerings"), // 1 ok
        format!("{{\"subject\": \"ivy\", \"category\": \"contact.phone\", \"value\": \"{bad}\""), // 2 malformed
        json!({ "subject": "ivy", "category": "contact.phone", "value": bad, "source": "provided",
            "purpose": "provide_offerings", "colour": "red" })
        .to_string(), // 3 unknown field
        String::new(),                                          // 4 blank: skipped
        line("ivy", "contact.fax", &bad, "provide_offerings"),  // 5 unknown category
        line("nobody", "contact.email", &bad, "provide_offerings"), // 6 unknown subject
        line("jon", "contact.name", &n2, "provide_offerings"),  // 7 ok
        line("jon", "contact.phone", &bad, "world_domination"), // 8 unknown purpose
        line("ivy", "contact.phone", "", "provide_offerings"),  // 9 empty value
        format!("{}\r", line("ivy", "contact.name", &n3, "provide_offerings")), // 10 ok (CRLF)
        line("ivy", "payment.card_number", &bad_card, "provide_offerings"), // 11 fails Luhn
        json!({ "subject": "ivy", "category": "contact.phone", "value": 7, "source": "provided",
            "purpose": "provide_offerings" })
        .to_string(), // 12 wrong type
    ];
    let body = lines.join("\n");
    let before = server.audit_count()?;
    let summary = server.raw("POST", "/v1/ingest", Who::Admin, Some(NDJSON), body.as_bytes())?.want_json(200)?;
    assert_eq!(summary["lines"], 11, "{summary}");
    assert_eq!(summary["written"], 3, "{summary}");
    assert_eq!(summary["rejected"], 8, "{summary}");
    let results = summary["results"].as_array().ok_or("no results")?;
    let by_line: Vec<(u64, &str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["status"].as_str().unwrap_or_default(),
                r["code"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        by_line,
        vec![
            (1, "ok", ""),
            (2, "error", "invalid_request"),
            (3, "error", "invalid_request"),
            (5, "error", "invalid_request"),
            (6, "error", "not_found"),
            (7, "ok", ""),
            (8, "error", "invalid_request"),
            (9, "error", "invalid_request"),
            (10, "ok", ""),
            (11, "error", "invalid_request"),
            (12, "error", "invalid_request"),
        ],
        "{summary}"
    );
    for r in results {
        if r["status"] == "ok" {
            assert_eq!(r["version"], 1, "{r}");
        } else {
            assert!(r["detail"].as_str().is_some_and(|d| !d.is_empty()), "a bad line says why: {r}");
        }
    }
    let detail = results[2]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("unknown field") && !detail.contains("colour"), "{summary}");
    for v in server.stored() {
        assert!(!summary.to_string().contains(&v), "the summary echoes a value: {summary}");
    }
    // The good lines are readable; the bad ones wrote nothing.
    let read = |id: &str, category: &str| {
        server.get(&format!("/v1/subjects/{id}/data/{category}?purpose=provide_offerings"), Who::Admin)
    };
    assert_eq!(read("ivy", "contact.email")?.want_json(200)?["value"], e1.as_str());
    assert_eq!(read("jon", "contact.name")?.want_json(200)?["value"], n2.as_str());
    assert_eq!(read("ivy", "contact.name")?.want_json(200)?["value"], n3.as_str());
    read("ivy", "contact.phone")?.problem(404, "not_found")?;
    read("jon", "contact.phone")?.problem(404, "not_found")?;
    read("ivy", "payment.card_number")?.problem(404, "not_found")?;
    let entries = server.audit_since(before)?;
    let actions: BTreeSet<&str> = entries.iter().filter_map(|e| e["event"]["action"].as_str()).collect();
    assert!(actions.contains("data_written"), "{entries:?}");
    let written: Vec<&Value> = entries.iter().filter(|e| e["event"]["action"] == "data_written").collect();
    let categories: BTreeSet<&str> = written
        .iter()
        .flat_map(|e| e["event"]["categories"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(categories, BTreeSet::from(["contact.email", "contact.name"]), "{entries:?}");

    // A batch of only bad lines writes nothing at all.
    let count = server.audit_count()?;
    let only_bad = [lines[1].clone(), lines[4].clone(), lines[7].clone()].join("\n");
    let summary = server.raw("POST", "/v1/ingest", Who::Admin, Some(NDJSON), only_bad.as_bytes())?.want_json(200)?;
    assert_eq!((summary["lines"].as_u64(), summary["written"].as_u64()), (Some(3), Some(0)), "{summary}");
    assert_eq!(server.audit_count()?, count, "a batch of bad lines wrote audit entries");
    // An empty batch is fine.
    let summary = server.raw("POST", "/v1/ingest", Who::Admin, Some(NDJSON), b"\n\n")?.want_json(200)?;
    assert_eq!(summary["lines"], 0, "{summary}");
    server.finish()
}

/// A request body that sends its first part, then waits for a go-ahead.
struct Gated {
    data: Vec<u8>,
    pos: usize,
    split: usize,
    started: Option<mpsc::Sender<()>>,
    go: mpsc::Receiver<()>,
}

impl Read for Gated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.split
            && let Some(started) = self.started.take()
        {
            let _ = started.send(());
            let _ = self.go.recv_timeout(Duration::from_secs(20));
        }
        let end = if self.pos < self.split { self.split } else { self.data.len() };
        let n = buf.len().min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn sigterm_lets_the_in_flight_request_finish_and_exits_0() -> R<()> {
    let server = Server::start(&["--log-format", "text"])?;
    server.create_subject("tia", "california")?;
    let values: Vec<String> = (0..50).map(|_| server.personal()).collect();
    let body: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let category = ["contact.email", "contact.name", "contact.address", "contact.phone"][i % 4];
            format!("{}\n", json!({ "subject": "tia", "category": category, "value": v, "source": "provided", "purpose": "provide_offerings" }))
        })
        .collect();
    let data = body.into_bytes();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let len = data.len() as u64;
    let gated = Gated { split: data.len() / 2, data, pos: 0, started: Some(started_tx), go: go_rx };
    let summary = std::thread::scope(|scope| {
        let srv = &server;
        let in_flight = scope.spawn(move || {
            srv.request("POST", "/v1/ingest", Who::Admin, Some((Some(NDJSON), Body::sized(gated, len))), &[])
        });
        // Half the body is on its way: the request is in flight.
        let waited = started_rx.recv_timeout(Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(500));
        let term = server.terminate();
        std::thread::sleep(Duration::from_millis(500));
        let _ = go_tx.send(());
        let resp = in_flight.join().map_err(|_| "the in-flight request panicked".to_string())?;
        waited.map_err(|e| format!("the request body was never read: {e}"))?;
        term?;
        resp?.want_json(200)
    })?;
    assert_eq!(summary["written"], 50, "{summary}");
    // The server stopped with exit code 0 after the request completed.
    let log = {
        let mut server = server;
        let status = server.wait_for_exit(Duration::from_secs(20))?;
        let log = server.log_text();
        assert_eq!(status.code(), Some(0), "exit status {status}: {log}");
        server.check_log(&log)?;
        log
    };
    assert!(log.contains("shutdown signal received"), "{log}");
    let signal = log.find("shutdown signal received").unwrap_or(0);
    let served = log.rfind("/v1/ingest").unwrap_or(0);
    assert!(served > signal, "the in-flight request was served after the signal: {log}");
    Ok(())
}
