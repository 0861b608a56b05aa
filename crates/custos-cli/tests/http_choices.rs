//! The CCPA standing choices over HTTP: opting out of sale and sharing
//! (§1798.120) and limiting the use of sensitive personal information
//! (§1798.121). Who may set them, what the subject's view shows, what a
//! later read is allowed, and the refusal where the law grants no such
//! right. The real binary; on PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

mod support;

use serde_json::Value;
use support::{R, Server};

fn subject(server: &Server, id: &str) -> R<Value> {
    server
        .send("GET", &format!("/v1/subjects/{id}?purpose=provide_offerings"), Some(&server.admin), None)?
        .want_json(200)
}

#[test]
fn an_opt_out_and_a_sensitive_limit_are_set_shown_and_lifted_and_change_what_may_be_read() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("cara", "california")?;
    let view = subject(&server, "cara")?;
    assert_eq!((view["opted_out_since"].clone(), view["sensitive_limited_since"].clone()), (Value::Null, Value::Null));

    // Only an admin key sets a choice; every other role is refused, and audited.
    let before = server.audit_count()?;
    for path in ["/v1/subjects/cara/opt-out", "/v1/subjects/cara/sensitive-limit"] {
        for method in ["PUT", "DELETE"] {
            for key in [&server.marketer, &server.service, &server.auditor] {
                server.send(method, path, Some(key), None)?.problem(403, "forbidden")?;
            }
        }
    }
    let refusals = server.audit_since(before)?;
    assert_eq!(refusals.len(), 12, "{refusals:?}");
    assert!(refusals.iter().all(|e| e["event"]["reason"] == "role_not_allowed"), "{refusals:?}");
    assert_eq!(subject(&server, "cara")?["opted_out_since"], Value::Null, "a refused call changes nothing");

    // The sensitive limit stops a consent-based purpose from using a sensitive category.
    server.put("cara", "biometric.image_voice", "a voice sample", "provide_offerings")?;
    server.send("PUT", "/v1/subjects/cara/consents/consented_purposes", Some(&server.admin), None)?.want(200)?;
    let voice = "/v1/subjects/cara/data/biometric.image_voice?purpose=consented_purposes";
    server.send("GET", voice, Some(&server.admin), None)?.want(200)?;

    let before = server.audit_count()?;
    server.send("PUT", "/v1/subjects/cara/opt-out", Some(&server.admin), None)?.want(200)?;
    server.send("PUT", "/v1/subjects/cara/sensitive-limit", Some(&server.admin), None)?.want(200)?;
    let view = subject(&server, "cara")?;
    assert!(view["opted_out_since"].as_str().is_some_and(|t| t.len() >= 20), "{view}");
    assert!(view["sensitive_limited_since"].as_str().is_some(), "{view}");
    let denied = server.send("GET", voice, Some(&server.admin), None)?.want_json(403)?;
    assert_eq!(denied["reason"], "sensitive_use_limited", "{denied}");
    // Setting it again keeps the first date.
    server.send("PUT", "/v1/subjects/cara/opt-out", Some(&server.admin), None)?.want(200)?;
    assert_eq!(subject(&server, "cara")?["opted_out_since"], view["opted_out_since"]);

    server.send("DELETE", "/v1/subjects/cara/opt-out", Some(&server.admin), None)?.want(200)?;
    server.send("DELETE", "/v1/subjects/cara/sensitive-limit", Some(&server.admin), None)?.want(200)?;
    let view = subject(&server, "cara")?;
    assert_eq!((view["opted_out_since"].clone(), view["sensitive_limited_since"].clone()), (Value::Null, Value::Null));
    server.send("GET", voice, Some(&server.admin), None)?.want(200)?;

    let entries = server.audit_since(before)?;
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["event"]["action"].as_str()).collect();
    for want in ["opt_out_recorded", "sensitive_use_limited", "opt_out_lifted", "sensitive_limit_lifted"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let admin = format!("key:{}", server.admin.id);
    assert!(entries.iter().all(|e| e["event"]["by"] == admin.as_str()), "{entries:?}");
    assert!(!Value::from(entries.clone()).to_string().contains("cara"), "the subject only by pseudonym");
    server.finish()
}

#[test]
fn an_opt_out_where_the_law_grants_none_is_refused_and_changes_nothing() -> R<()> {
    let server = Server::start(&[])?;
    server.create_subject("erik", "eea")?;
    for path in ["/v1/subjects/erik/opt-out", "/v1/subjects/erik/sensitive-limit"] {
        let p = server.send("PUT", path, Some(&server.admin), None)?.want_json(403)?;
        assert_eq!(p["reason"], "right_not_available", "{path}: {p}");
        // Lifting what was never set is allowed and changes nothing.
        server.send("DELETE", path, Some(&server.admin), None)?.want(200)?;
    }
    let view = subject(&server, "erik")?;
    assert_eq!((view["opted_out_since"].clone(), view["sensitive_limited_since"].clone()), (Value::Null, Value::Null));
    // An unknown subject is a 404, not a 500.
    server.send("PUT", "/v1/subjects/nobody/opt-out", Some(&server.admin), None)?.want(404)?;
    server.finish()
}
