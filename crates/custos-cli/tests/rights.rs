//! A right the subject's jurisdiction does not grant is refused over HTTP
//! with `right_not_available`, the refusal audited, and nothing changes
//! (issue 9, item 2: today's direct routes accepted anything). The real
//! binary; on PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

mod support;

use support::{R, Server};

#[test]
fn objecting_or_restricting_where_the_jurisdiction_grants_neither_is_refused_and_audited() -> R<()> {
    let server = Server::start(&[])?;
    // The example's California section grants access, correction, deletion
    // and non-discrimination (and, by law, opt-outs); no objection, no restriction.
    server.create_subject("cal", "california")?;
    server.create_subject("eve", "eea")?;
    server.put("cal", "contact.email", "cal.r@example.org", "provide_offerings")?;
    let admin = server.admin.clone();
    for path in ["/v1/subjects/cal/objections/marketing", "/v1/subjects/cal/restriction"] {
        let before = server.audit_count()?;
        let refused = server.send("PUT", path, Some(&admin), None)?.want_json(403)?;
        assert_eq!(refused["reason"], "right_not_available", "{path}: {refused}");
        assert_eq!(refused["type"], "urn:custos:problem:right_not_available", "{path}: {refused}");
        assert!(refused["detail"].as_str().is_some_and(|d| d.contains("california")), "{path}: {refused}");
        let audited = server.audit_since(before)?;
        assert_eq!(audited.len(), 1, "{path}: one audited refusal, got {audited:?}");
        assert_eq!(audited[0]["event"]["action"], "access_denied", "{path}");
        assert_eq!(audited[0]["event"]["reason"], "right_not_available", "{path}");
    }
    // Nothing changed: the subject's reads go on as before.
    let read =
        server.send("GET", "/v1/subjects/cal/data/contact.email?purpose=provide_offerings", Some(&admin), None)?;
    read.want(200)?;
    // Lifting a restriction is always possible; in the EEA both rights are granted.
    server.send("DELETE", "/v1/subjects/cal/restriction", Some(&admin), None)?.want(200)?;
    server.send("PUT", "/v1/subjects/eve/objections/marketing", Some(&admin), None)?.want(200)?;
    server.send("PUT", "/v1/subjects/eve/restriction", Some(&admin), None)?.want(200)?;
    server.finish()
}
