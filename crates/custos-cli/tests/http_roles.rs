//! Who may change a subject's choices over HTTP, what the audit log says
//! about who did, and that choices change later reads. The real binary; on
//! PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

mod support;

use serde_json::{Value, json};
use support::{Key, R, Server};

/// A read's status and, for a denial, its reason.
fn read(server: &Server, key: &Key, id: &str, purpose: &str) -> R<(u16, Option<String>)> {
    let r = server.send("GET", &format!("/v1/subjects/{id}/data/contact.email?purpose={purpose}"), Some(key), None)?;
    let reason = if r.status == 200 { None } else { r.json()?["reason"].as_str().map(str::to_string) };
    Ok((r.status, reason))
}

fn events(entries: &[Value]) -> Vec<&Value> {
    entries.iter().map(|e| &e["event"]).collect()
}

#[test]
fn regression_service_key_cannot_change_consent() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("eve", "eea")?;
    server.put("eve", "contact.email", "eve.h@example.org", "provide_offerings")?;
    let marketer = server.marketer.clone();
    assert_eq!(read(&server, &marketer, "eve", "marketing")?, (403, Some("consent_missing".into())));
    let before = server.audit_count()?;

    // A recipient bound to `marketing` cannot grant itself consent to it, nor
    // touch any other choice of the subject's, nor create subjects.
    for (method, path) in [
        ("PUT", "/v1/subjects/eve/consents/marketing"),
        ("DELETE", "/v1/subjects/eve/consents/marketing"),
        ("PUT", "/v1/subjects/eve/objections/marketing"),
        ("PUT", "/v1/subjects/eve/restriction"),
        ("DELETE", "/v1/subjects/eve/restriction"),
    ] {
        for key in [&server.marketer, &server.service, &server.auditor] {
            let r = server.send(method, path, Some(key), None)?.want(403)?;
            let p = r.json()?;
            assert_eq!(p["code"], "forbidden", "{method} {path}: {p}");
            assert!(r.content_type.starts_with("application/problem+json"), "{}", r.content_type);
        }
    }
    let subject = json!({ "id": "mallory", "jurisdiction": "eea" });
    for key in [&server.marketer, &server.service] {
        server.json("POST", "/v1/subjects", key, &subject)?.want(403)?;
    }
    server.send("GET", "/v1/subjects/mallory?purpose=provide_offerings", Some(&server.admin), None)?.want(404)?;

    // Nothing changed: the marketer still may not read for marketing.
    assert_eq!(read(&server, &marketer, "eve", "marketing")?, (403, Some("consent_missing".into())));

    // Each refusal is audited, naming the key by id; no choice was recorded.
    let entries = server.audit_since(before)?;
    let evs = events(&entries);
    assert!(
        !evs.iter().any(|e| {
            matches!(
                e["action"].as_str(),
                Some("consent_granted" | "consent_withdrawn" | "objection_recorded" | "restriction_set")
            )
        }),
        "{entries:?}"
    );
    let refusals: Vec<&&Value> = evs
        .iter()
        .filter(|e| e["action"] == "access_denied" && e["reason"] == "role_not_allowed" && e["key"] == marketer.id)
        .collect();
    // Five changes of choices and one subject creation.
    assert_eq!(refusals.len(), 6, "one audited refusal per call of the marketer: {entries:?}");
    for e in &refusals {
        assert_eq!(e["by"], format!("key:{}", marketer.id), "{e}");
        assert_eq!(e["actor"], "marketo", "{e}");
        assert!(e["subject"].as_str().is_some_and(|s| s != "eve"), "the subject by pseudonym: {e}");
    }
    let consent_refusal = refusals.iter().find(|e| e["purpose"] == "marketing");
    assert!(consent_refusal.is_some(), "{refusals:?}");
    server.finish()
}

#[test]
fn regression_consent_audit_entry_names_acting_key() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("ann", "eea")?;
    server.put("ann", "contact.email", "ann.k@example.org", "provide_offerings")?;
    let before = server.audit_count()?;
    let admin = server.admin.clone();
    for (method, path) in [
        ("PUT", "/v1/subjects/ann/consents/marketing"),
        ("DELETE", "/v1/subjects/ann/consents/marketing"),
        ("PUT", "/v1/subjects/ann/objections/recommendations"),
        ("PUT", "/v1/subjects/ann/restriction"),
        ("DELETE", "/v1/subjects/ann/restriction"),
    ] {
        server.send(method, path, Some(&admin), None)?.want(200)?;
    }
    read(&server, &server.service, "ann", "provide_offerings")?;
    let entries = server.audit_since(before)?;
    let evs = events(&entries);
    let want = ["consent_granted", "consent_withdrawn", "objection_recorded", "restriction_set", "restriction_lifted"];
    for (e, action) in evs.iter().zip(want) {
        assert_eq!(e["action"], action, "{entries:?}");
        // The acting key, by id; the controller recorded it; never "subject".
        assert_eq!(e["by"], format!("key:{}", admin.id), "{e}");
        assert_eq!(e["actor"], "controller", "{e}");
    }
    // The service key's read (allowed or denied) names that key.
    let service_read = evs.get(want.len()).ok_or("no read audited")?;
    assert!(matches!(service_read["action"].as_str(), Some("data_read" | "access_denied")), "{service_read}");
    assert_eq!(service_read["by"], format!("key:{}", server.service.id), "{service_read}");
    // Every entry of the session names who acted.
    for e in &evs {
        assert!(e["by"].as_str().is_some_and(|b| b.starts_with("key:")), "an entry without its acting key: {e}");
    }
    // The CLI operator is named as such.
    let out = support::custos(&server.data)
        .args(["consent", "grant", "ann", "marketing"])
        .output()
        .map_err(|e| format!("custos consent grant: {e}"))?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = server.audit_since(before)?;
    let granted = last.iter().rev().find(|e| e["event"]["action"] == "consent_granted").ok_or("no CLI grant")?;
    assert_eq!(granted["event"]["by"], "cli", "{granted}");
    server.finish()
}

#[test]
fn withdrawing_objecting_and_restricting_change_a_later_read() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("eve", "eea")?;
    server.put("eve", "contact.email", "eve.w@example.org", "provide_offerings")?;
    let (admin, marketer) = (server.admin.clone(), server.marketer.clone());
    let consent = "/v1/subjects/eve/consents/marketing";
    server.send("PUT", consent, Some(&admin), None)?.want(200)?;
    assert_eq!(read(&server, &marketer, "eve", "marketing")?, (200, None));
    // Withdrawing consent stops the read at once.
    server.send("DELETE", consent, Some(&admin), None)?.want(200)?;
    assert_eq!(read(&server, &marketer, "eve", "marketing")?, (403, Some("consent_withdrawn".into())));
    // An objection stops it even with consent given again.
    server.send("PUT", consent, Some(&admin), None)?.want(200)?;
    assert_eq!(read(&server, &marketer, "eve", "marketing")?, (200, None));
    server.send("PUT", "/v1/subjects/eve/objections/marketing", Some(&admin), None)?.want(200)?;
    assert_eq!(read(&server, &marketer, "eve", "marketing")?, (403, Some("objected".into())));
    // A restriction stops ordinary processing; lifting it lets it go on.
    assert_eq!(read(&server, &admin, "eve", "provide_offerings")?, (200, None));
    server.send("PUT", "/v1/subjects/eve/restriction", Some(&admin), None)?.want(200)?;
    assert_eq!(read(&server, &admin, "eve", "provide_offerings")?, (403, Some("restricted".into())));
    server.send("DELETE", "/v1/subjects/eve/restriction", Some(&admin), None)?.want(200)?;
    assert_eq!(read(&server, &admin, "eve", "provide_offerings")?, (200, None));
    server.finish()
}
