//! Rights requests over HTTP (`/v1/requests`), end to end through the real
//! binary, as `custos request …` makes them (`request_cli.rs`): the legal
//! dates of a submission, a right the jurisdiction does not grant recorded
//! denied and audited, the erasure workflow from verification to a subject
//! that reads as erased, who may do what, bad input answered 4xx (never
//! 5xx), and the requester's contact and words kept out of every log. On
//! PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::{JSON, R, Resp, Server, Who};

/// Submits a request as `who`.
fn submit(server: &Server, who: Who, body: &Value) -> R<Resp> {
    server.json("POST", "/v1/requests", who, body)
}

/// Submits a request as the admin; expects 201 and returns the request.
fn submitted(server: &Server, body: &Value) -> R<Value> {
    submit(server, Who::Admin, body)?.want_json(201)
}

/// The id of a request.
fn id_of(request: &Value) -> R<String> {
    request["id"].as_str().map(str::to_string).ok_or_else(|| format!("no id in {request}"))
}

/// A `POST /v1/requests/{id}/{step}` with a JSON body (none: no body).
fn step(server: &Server, who: Who, id: &str, step: &str, body: Option<Value>) -> R<Resp> {
    let path = format!("/v1/requests/{id}/{step}");
    match body {
        Some(b) => server.json("POST", &path, who, &b),
        None => server.request("POST", &path, who, None, &[]),
    }
}

/// Expects a problem with this status and specific type (`urn:custos:problem:<ty>`).
fn problem_type(resp: Resp, status: u16, ty: &str) -> R<Value> {
    let what = resp.what.clone();
    let p = resp.want_json(status)?;
    if p["type"] != format!("urn:custos:problem:{ty}") {
        return Err(format!("{what}: expected problem type `{ty}`, got {p}"));
    }
    Ok(p)
}

/// The ids of a listing.
fn listed(server: &Server, query: &str) -> R<Vec<String>> {
    let page = server.get(&format!("/v1/requests{query}"), Who::Auditor)?.want_json(200)?;
    let requests = page["requests"].as_array().ok_or_else(|| format!("no `requests` in {page}"))?;
    requests.iter().map(id_of).collect()
}

/// The audit events of one request after sequence number `after`.
fn request_events(server: &Server, after: u64, id: &str) -> R<Vec<Value>> {
    let entries = server.audit_since(after)?;
    Ok(entries.into_iter().map(|e| e["event"].clone()).filter(|e| e["request"] == id).collect())
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// The OpenAPI document describes the objects the server sends: each
/// documented schema names exactly the fields of the response object.
fn documented_as(server: &Server, pairs: &[(&str, &Value)]) -> R<()> {
    let doc = server.get("/openapi.json", Who::Anonymous)?.want_json(200)?;
    for (schema, object) in pairs {
        let props = &doc["components"]["schemas"][*schema]["properties"];
        if keys(props).is_empty() || keys(props) != keys(object) {
            return Err(format!("schema {schema} documents {:?}, the server sent {:?}", keys(props), keys(object)));
        }
    }
    Ok(())
}

fn date_in(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[test]
fn a_california_access_request_carries_its_legal_dates_and_is_listed() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("cal-1", "california")?;
    // CCPA: 45 days, receipt confirmed within 10 business days (Veterans Day off).
    let r = submitted(&server, &json!({ "subject": "cal-1", "kind": "access", "received": "2026-11-02" }))?;
    let id = id_of(&r)?;
    assert!(id.starts_with("rq_") && id.len() == 35, "{r}");
    assert_eq!(
        (&r["kind"], &r["jurisdiction"], &r["status"]),
        (&json!("access"), &json!("california"), &json!("received"))
    );
    assert_eq!(
        (&r["received"], &r["due"], &r["confirm_by"]),
        (&json!("2026-11-02"), &json!("2026-12-17"), &json!("2026-11-17"))
    );
    assert_eq!(r["verification"], "two_data_points", "{r}");
    assert_eq!(r["controller"]["id"], "aws_inc", "{r}");
    assert_eq!(r["timeline"][0]["by"], format!("key:{}", server.admin.id), "{r}");
    // Shown as it was returned, to an admin and to an auditor.
    for who in [Who::Admin, Who::Auditor] {
        let shown = server.get(&format!("/v1/requests/{id}"), who)?.want_json(200)?;
        assert_eq!(shown, r, "{who:?}");
    }
    // Listed by the filters that select it, and only by them.
    for query in ["", "?kind=access", "?status=received", "?subject=cal-1", "?due_before=2026-12-18", "?limit=1"] {
        assert_eq!(listed(&server, query)?, std::slice::from_ref(&id), "{query}");
    }
    for query in ["?kind=erasure", "?status=verified", "?subject=cal-2", "?due_before=2026-12-17"] {
        assert!(listed(&server, query)?.is_empty(), "{query}");
    }
    documented_as(
        &server,
        &[("RequestView", &r), ("ControllerView", &r["controller"]), ("TimelineEntry", &r["timeline"][0])],
    )?;
    server.finish()
}

#[test]
fn a_right_the_jurisdiction_does_not_grant_is_recorded_denied_and_audited() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("eve", "eea")?;
    let before = server.audit_count()?;
    let r = submitted(&server, &json!({ "subject": "eve", "kind": "opt_out" }))?;
    let id = id_of(&r)?;
    assert_eq!((&r["status"], &r["denial"]["code"]), (&json!("denied"), &json!("right_not_available")), "{r}");
    assert_eq!(r["closed_on"], date_in(0), "{r}");
    let events = request_events(&server, before, &id)?;
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["request_received", "request_denied"], "{events:?}");
    assert_eq!(events[1]["reason"], "right_not_available", "{events:?}");
    for e in &events {
        assert_eq!((&e["kind"], &e["by"]), (&json!("opt_out"), &json!(format!("key:{}", server.admin.id))), "{e}");
        assert!(e["subject"].as_str().is_some_and(|s| s != "eve"), "the subject by pseudonym: {e}");
    }
    // A second open request of a kind is recorded too, denied as a duplicate of the first.
    let first = submitted(&server, &json!({ "subject": "eve", "kind": "erasure" }))?;
    let second = submitted(&server, &json!({ "subject": "eve", "kind": "erasure" }))?;
    assert_eq!((&second["status"], &second["denial"]["code"]), (&json!("denied"), &json!("duplicate")), "{second}");
    assert_eq!(second["duplicate_of"], first["id"], "{second}");
    documented_as(&server, &[("DenialView", &r["denial"])])?;
    server.finish()
}

#[test]
fn an_erasure_request_runs_from_verification_to_an_erased_subject() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("eu-3", "eea")?;
    let email = server.personal();
    server.put("eu-3", "contact.email", &email, "provide_offerings")?;
    let contact = server.personal();
    let submitted = submitted(&server, &json!({ "subject": "eu-3", "kind": "erasure", "contact": contact }))?;
    assert_eq!((&submitted["received"], &submitted["status"]), (&json!(date_in(0)), &json!("received")));
    let id = id_of(&submitted)?;
    let early = step(&server, Who::Admin, &id, "execute", None)?;
    problem_type(early, 409, "request_step_not_allowed")?;
    let verified = step(&server, Who::Admin, &id, "verify", Some(json!({ "method": "session" })))?.want_json(200)?;
    assert_eq!((&verified["status"], &verified["verified_by"]), (&json!("verified"), &json!("session")));
    let reason = "Backups take time";
    let extended = step(&server, Who::Admin, &id, "extend", Some(json!({ "reason": reason })))?.want_json(200)?;
    assert_eq!(extended["due"], submitted["extended_due"], "extend moves `due` to the extended date: {extended}");
    assert_ne!(extended["due"], submitted["due"], "{extended}");
    assert_eq!(
        (&extended["extension"]["reason"], &extended["extension"]["noticed_on"]),
        (&json!(reason), &json!(date_in(0)))
    );
    let done = step(&server, Who::Admin, &id, "execute", Some(json!({})))?.want_json(200)?;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["outcome"]["item_versions_erased"].as_u64().is_some_and(|n| n >= 1), "{done}");
    let steps: Vec<&str> =
        done["timeline"].as_array().ok_or("a timeline")?.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(steps, ["received", "verified", "extended", "started", "completed"]);
    // The subject's data now reads as erased; the request stays on record.
    let read = server.get("/v1/subjects/eu-3/data/contact.email?purpose=provide_offerings", Who::Admin)?;
    assert_eq!(read.problem(403, "denied")?["reason"], "erased");
    assert_eq!(server.get(&format!("/v1/requests/{id}"), Who::Auditor)?.want_json(200)?, done);
    // A request about an erased subject is refused, and the chain verifies.
    submit(&server, Who::Admin, &json!({ "subject": "eu-3", "kind": "access" }))?.problem(403, "denied")?;
    server.audit_count()?;
    documented_as(&server, &[("RequestView", &done), ("ExtensionView", &done["extension"])])?;
    server.finish()
}

#[test]
fn admin_auditor_service_and_anonymous_callers_get_what_their_role_allows() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("cal-4", "california")?;
    server.create_subject("eu-4", "eea")?;
    let access = id_of(&submitted(&server, &json!({ "subject": "cal-4", "kind": "access" }))?)?;
    let before = server.audit_count()?;
    // An auditor reads, and nothing else.
    server.get("/v1/requests", Who::Auditor)?.want(200)?;
    server.get(&format!("/v1/requests/{access}"), Who::Auditor)?.want(200)?;
    submit(&server, Who::Auditor, &json!({ "subject": "cal-4", "kind": "erasure" }))?.problem(403, "forbidden")?;
    let officer_steps = [
        ("verify", Some(json!({ "method": "two_data_points" }))),
        ("extend", Some(json!({ "reason": "Busy season" }))),
        ("deny", Some(json!({ "code": "excessive", "text": "Asked weekly" }))),
        ("execute", None),
        ("withdraw", None),
    ];
    for (name, body) in &officer_steps {
        step(&server, Who::Auditor, &access, name, body.clone())?.problem(403, "forbidden")?;
    }
    // The refused submission is audited against its subject, with the auditor's key.
    let refusals: Vec<Value> = server.audit_since(before)?.into_iter().map(|e| e["event"].clone()).collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!((&refusals[0]["action"], &refusals[0]["reason"]), (&json!("access_denied"), &json!("role_not_allowed")));
    assert_eq!(refusals[0]["key"], server.auditor.id.as_str(), "{refusals:?}");
    // A service key records requests and attests a session, and nothing else.
    let erasure = submit(&server, Who::Service, &json!({ "subject": "eu-4", "kind": "erasure" }))?.want_json(201)?;
    let erasure_id = id_of(&erasure)?;
    assert_eq!(erasure["timeline"][0]["by"], format!("key:{}", server.service.id), "{erasure}");
    step(&server, Who::Service, &erasure_id, "verify", Some(json!({ "method": "two_data_points" })))?
        .problem(403, "forbidden")?;
    // It attests only requests it recorded itself: not the admin's.
    step(&server, Who::Service, &access, "verify", Some(json!({ "method": "session" })))?.problem(403, "forbidden")?;
    let verified = step(&server, Who::Service, &erasure_id, "verify", Some(json!({ "method": "session" })))?;
    assert_eq!(verified.want_json(200)?["verified_by"], "session");
    for (name, body) in officer_steps.iter().skip(1) {
        step(&server, Who::Service, &erasure_id, name, body.clone())?.problem(403, "forbidden")?;
    }
    server.get("/v1/requests", Who::Service)?.problem(403, "forbidden")?;
    server.get(&format!("/v1/requests/{erasure_id}"), Who::Service)?.problem(403, "forbidden")?;
    // No key, or a key never issued: 401 everywhere.
    for who in [Who::Anonymous, Who::BadKey] {
        server.get("/v1/requests", who)?.problem(401, "unauthorized")?;
        server.get(&format!("/v1/requests/{access}"), who)?.problem(401, "unauthorized")?;
        submit(&server, who, &json!({ "subject": "eu-4", "kind": "access" }))?.problem(401, "unauthorized")?;
        step(&server, who, &erasure_id, "execute", None)?.problem(401, "unauthorized")?;
    }
    // Nothing the refused calls asked for happened; the admin carries the request out.
    let shown = server.get(&format!("/v1/requests/{erasure_id}"), Who::Admin)?.want_json(200)?;
    assert_eq!((&shown["status"], &shown["extension"]), (&json!("verified"), &Value::Null), "{shown}");
    let access_now = server.get(&format!("/v1/requests/{access}"), Who::Admin)?.want_json(200)?;
    assert_eq!(access_now["status"], "received", "{access_now}");
    let done = step(&server, Who::Admin, &erasure_id, "execute", None)?.want_json(200)?;
    assert_eq!(done["status"], "completed", "{done}");
    server.finish()
}

#[test]
fn a_submission_retried_with_its_idempotency_key_records_one_request() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("cal-7", "california")?;
    let body = json!({ "subject": "cal-7", "kind": "opt_out" }).to_string();
    let send = || {
        server.request(
            "POST",
            "/v1/requests",
            Who::Service,
            Some((Some(JSON), body.clone().into())),
            &[("idempotency-key", "opt-out-cal-7")],
        )
    };
    let first = send()?.want_json(201)?;
    // A CCPA opt-out needs no verification: verified as received.
    assert_eq!((&first["status"], &first["verification"]), (&json!("verified"), &json!("none")), "{first}");
    assert_eq!(send()?.want_json(201)?, first, "the retry replays the first answer");
    assert_eq!(listed(&server, "?subject=cal-7")?, [id_of(&first)?], "one request recorded");
    server.finish()
}

#[test]
fn bad_input_is_answered_with_a_problem_never_a_server_error() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("cal-5", "california")?;
    server.create_subject("eu-5", "eea")?;
    let note = server.personal();
    let body = |kind: &str| json!({ "subject": "eu-5", "kind": kind, "note": note });
    problem_type(submit(&server, Who::Admin, &body("sell_my_data"))?, 400, "unknown_request_kind")?;
    problem_type(submit(&server, Who::Admin, &body("objection"))?, 400, "purposes_missing")?;
    let future = json!({ "subject": "eu-5", "kind": "access", "received": date_in(1), "note": note });
    problem_type(submit(&server, Who::Admin, &future)?, 400, "received_in_future")?;
    let not_a_date = json!({ "subject": "eu-5", "kind": "access", "received": "02/11/2026" });
    let p = problem_type(submit(&server, Who::Admin, &not_a_date)?, 400, "invalid_body")?;
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("`received`")), "{p}");
    let unknown_field = json!({ "subject": "eu-5", "kind": "access", "colour": note });
    problem_type(submit(&server, Who::Admin, &unknown_field)?, 400, "invalid_body")?;
    let wrong_type = json!({ "subject": "eu-5", "kind": "access", "purposes": "marketing" });
    let p = problem_type(submit(&server, Who::Admin, &wrong_type)?, 400, "invalid_body")?;
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("`purposes`")), "{p}");
    let malformed = server.raw("POST", "/v1/requests", Who::Admin, Some(JSON), b"{\"subject\": \"eu-5\", \"kind\"")?;
    problem_type(malformed, 400, "invalid_body")?;
    let unknown_purpose = json!({ "subject": "eu-5", "kind": "objection", "purposes": ["telepathy"] });
    problem_type(submit(&server, Who::Admin, &unknown_purpose)?, 400, "unknown_purpose")?;
    let nobody = json!({ "subject": "nobody", "kind": "access" });
    problem_type(submit(&server, Who::Admin, &nobody)?, 404, "subject_not_found")?;
    // Ids that are not a request's, malformed or unknown: 404 on every route.
    for id in ["not-an-id", "rq_0123456789abcdef0123456789abcdef", "rq_%20"] {
        problem_type(server.get(&format!("/v1/requests/{id}"), Who::Admin)?, 404, "request_not_found")?;
        problem_type(step(&server, Who::Admin, id, "withdraw", None)?, 404, "request_not_found")?;
    }
    // Steps: an unknown code or method, an empty text, a second extension, a closed request.
    let id = id_of(&submitted(&server, &json!({ "subject": "eu-5", "kind": "erasure" }))?)?;
    let deny = |b: Value| step(&server, Who::Admin, &id, "deny", Some(b));
    problem_type(deny(json!({ "code": "because", "text": "No" }))?, 400, "invalid_body")?;
    problem_type(deny(json!({ "code": "excessive", "text": "  " }))?, 400, "invalid_text")?;
    problem_type(deny(json!({ "code": "excessive" }))?, 400, "invalid_body")?;
    let verify = |m: &str| step(&server, Who::Admin, &id, "verify", Some(json!({ "method": m })));
    let p = problem_type(verify("email_code")?, 400, "invalid_body")?;
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("email_code")), "{p}");
    problem_type(verify("telepathy")?, 400, "invalid_body")?;
    let extend = || step(&server, Who::Admin, &id, "extend", Some(json!({ "reason": "Backups take time" })));
    extend()?.want(200)?;
    problem_type(extend()?, 409, "request_step_not_allowed")?;
    problem_type(step(&server, Who::Admin, &id, "withdraw", Some(json!({ "why": 1 })))?, 400, "invalid_body")?;
    let plain = server.raw("POST", &format!("/v1/requests/{id}/withdraw"), Who::Admin, Some("text/plain"), b"x")?;
    problem_type(plain, 415, "unsupported_media_type")?;
    step(&server, Who::Admin, &id, "withdraw", None)?.want(200)?;
    problem_type(deny(json!({ "code": "excessive", "text": "Asked weekly" }))?, 409, "request_step_not_allowed")?;
    // An access request is not carried out unverified: a 409 (`not_executable`
    // while Custos does not assemble access reports, `request_step_not_allowed`
    // once it does), and nothing moves.
    let access = id_of(&submitted(&server, &json!({ "subject": "cal-5", "kind": "access" }))?)?;
    let refused = step(&server, Who::Admin, &access, "execute", None)?.problem(409, "conflict")?;
    assert!(
        ["urn:custos:problem:not_executable", "urn:custos:problem:request_step_not_allowed"]
            .contains(&refused["type"].as_str().unwrap_or_default()),
        "{refused}"
    );
    let after = server.get(&format!("/v1/requests/{access}"), Who::Admin)?.want_json(200)?;
    assert_eq!(
        (&after["status"], after["timeline"].as_array().map(Vec::len)),
        (&json!("received"), Some(1)),
        "{after}"
    );
    // Listing: bad values are 400 `invalid_query`; a limit over 1000 is refused, not clamped.
    for query in [
        "due_before=garbage",
        "due_before=2026-13-01",
        "limit=100000",
        "limit=0",
        "limit=ten",
        "status=lost",
        "colour=red",
    ] {
        problem_type(server.get(&format!("/v1/requests?{query}"), Who::Admin)?, 400, "invalid_query")?;
    }
    problem_type(server.get("/v1/requests?kind=sell_my_data", Who::Admin)?, 400, "unknown_request_kind")?;
    problem_type(server.get("/v1/requests?subject=a%20b", Who::Admin)?, 400, "invalid_subject_id")?;
    assert_eq!(listed(&server, "?limit=1000")?.len(), 2);
    server.finish()
}

#[test]
fn the_requesters_contact_and_words_appear_in_no_log() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("eu-6", "eea")?;
    let (contact, note) = (server.personal(), server.personal());
    let (reason, text) = (server.personal(), server.personal());
    let r = submitted(
        &server,
        &json!({ "subject": "eu-6", "kind": "objection", "purposes": ["marketing"], "contact": contact, "note": note }),
    )?;
    let id = id_of(&r)?;
    step(&server, Who::Admin, &id, "extend", Some(json!({ "reason": reason })))?.want(200)?;
    step(&server, Who::Admin, &id, "deny", Some(json!({ "code": "manifestly_unfounded", "text": text })))?.want(200)?;
    // A refused submission carrying them too.
    submit(&server, Who::Auditor, &json!({ "subject": "eu-6", "kind": "access", "contact": contact, "note": note }))?
        .problem(403, "forbidden")?;
    // Contact and note are sealed and never returned; the texts are the person's answer.
    let shown = server.get(&format!("/v1/requests/{id}"), Who::Auditor)?.want(200)?;
    assert!(!shown.text.contains(&contact) && !shown.text.contains(&note), "{}", shown.text);
    let audit = serde_json::to_string(&server.audit_since(0)?).map_err(|e| e.to_string())?;
    assert!(audit.contains("request_denied"), "the steps are audited");
    let log = server.log_text();
    for value in [&contact, &note, &reason, &text] {
        assert!(!audit.contains(value.as_str()), "the audit log holds a personal value");
        assert!(!log.contains(value.as_str()), "the server log holds a personal value");
    }
    // `finish` scans the log once more for every remembered value.
    server.finish()
}
