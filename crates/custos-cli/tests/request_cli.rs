//! `custos request …` end to end through the real binary: the JSON a
//! submission prints (with the due and confirm-by dates of regulations.md
//! §1), a right the jurisdiction does not grant refused with exit 3, the
//! workflow from verification to completion, and the audit chain verifying
//! afterwards. On PostgreSQL with `CUSTOS_TEST_BACKEND=postgres`.

mod support;

use std::path::PathBuf;
use std::process::Output;

use custos_test_support::TestDatabase;
use serde_json::Value;
use support::custos;

type R<T> = Result<T, Box<dyn std::error::Error>>;

struct Env {
    dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

impl Env {
    fn new() -> R<Env> {
        let dir = tempfile::tempdir()?;
        let db = TestDatabase::create_if_asked("custos_request_cli")?;
        if let Some(db) = &db {
            // `support::custos` finds the database beside the data directory.
            std::fs::write(dir.path().join("database_url"), db.url())?;
        }
        Ok(Env { dir, _db: db })
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str]) -> R<Output> {
        Ok(custos(&self.data()).args(args).output()?)
    }

    fn ok(&self, args: &[&str]) -> R<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(format!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    fn json(&self, args: &[&str]) -> R<Value> {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        Ok(serde_json::from_str(&self.ok(&args)?)?)
    }
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[test]
fn submit_prints_the_legal_dates_of_each_jurisdiction() -> R<()> {
    let env = Env::new()?;
    env.ok(&["subject", "add", "cal-1", "--jurisdiction", "california"])?;
    env.ok(&["subject", "add", "eu-1", "--jurisdiction", "eea"])?;
    env.ok(&["subject", "add", "ca-1", "--jurisdiction", "canada"])?;
    // CCPA: 45 days, receipt confirmed within 10 business days (Veterans Day off).
    let r = env.json(&["request", "submit", "--subject", "cal-1", "--kind", "access", "--received", "2026-11-02"])?;
    for field in ["id", "kind", "jurisdiction", "status", "received", "due", "confirm_by", "verification"] {
        assert!(r.get(field).is_some(), "`{field}` is printed: {r}");
    }
    assert_eq!(
        (&r["kind"], &r["jurisdiction"], &r["status"]),
        (&"access".into(), &"california".into(), &"received".into())
    );
    assert_eq!(
        (&r["received"], &r["due"], &r["confirm_by"]),
        (&"2026-11-02".into(), &"2026-12-17".into(), &"2026-11-17".into())
    );
    assert_eq!(r["verification"], "two_data_points");
    assert!(r["id"].as_str().is_some_and(|id| id.starts_with("rq_")), "{r}");
    // GDPR: one month, month-end clamped; no confirmation deadline.
    let r = env.json(&["request", "submit", "--subject", "eu-1", "--kind", "erasure", "--received", "2026-01-31"])?;
    assert_eq!((&r["due"], &r["confirm_by"]), (&"2026-02-28".into(), &Value::Null));
    // PIPEDA: 30 days (s. 8(3)).
    let r = env.json(&["request", "submit", "--subject", "ca-1", "--kind", "access", "--received", "2026-03-01"])?;
    assert_eq!(r["due"], "2026-03-31", "{r}");
    // The listing is by due date and carries the same fields.
    let listed = env.json(&["request", "list"])?;
    let dues: Vec<&str> = listed.as_array().ok_or("a JSON array")?.iter().filter_map(|r| r["due"].as_str()).collect();
    assert_eq!(dues, ["2026-02-28", "2026-03-31", "2026-12-17"]);
    Ok(())
}

#[test]
fn a_right_the_jurisdiction_does_not_grant_is_recorded_and_refused_with_exit_3() -> R<()> {
    let env = Env::new()?;
    env.ok(&["subject", "add", "eu-2", "--jurisdiction", "eea"])?;
    let out = env.run(&["request", "submit", "--subject", "eu-2", "--kind", "opt_out", "--format", "json"])?;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("denied: right_not_available: "));
    let printed: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!((&printed["status"], &printed["denial"]["code"]), (&"denied".into(), &"right_not_available".into()));
    let bad = env.run(&["request", "submit", "--subject", "eu-2", "--kind", "sell_my_data"])?;
    assert_eq!(bad.status.code(), Some(1), "an unknown kind is an error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown request kind"));
    let missing = env.run(&["request", "show", "rq_0123456789abcdef0123456789abcdef"])?;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no request with this id"));
    Ok(())
}

#[test]
fn an_erasure_request_runs_from_verification_to_completion_and_the_chain_verifies() -> R<()> {
    let env = Env::new()?;
    env.ok(&["subject", "add", "eu-3", "--jurisdiction", "eea"])?;
    env.ok(&[
        "data",
        "put",
        "eu-3",
        "contact.email",
        "eu3@example.org",
        "--source",
        "provided",
        "--purpose",
        "provide_offerings",
    ])?;
    let submitted =
        env.json(&["request", "submit", "--subject", "eu-3", "--kind", "erasure", "--contact", "eu3@example.org"])?;
    assert_eq!(submitted["received"], today().as_str());
    let id = submitted["id"].as_str().ok_or("an id")?.to_string();
    let early = env.run(&["request", "execute", &id])?;
    assert!(!early.status.success(), "an unverified request is not carried out");
    let verified = env.json(&["request", "verify", &id, "--method", "session"])?;
    assert_eq!((&verified["status"], &verified["verified_by"]), (&"verified".into(), &"session".into()));
    let extended = env.json(&["request", "extend", &id, "--reason", "Backups take time"])?;
    assert_eq!(extended["due"], submitted["extended_due"], "extend moves `due` to the extended date");
    assert_eq!(extended["extension"]["reason"], "Backups take time");
    let done = env.json(&["request", "execute", &id])?;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["outcome"]["item_versions_erased"], 1);
    let read = env.run(&["data", "get", "eu-3", "contact.email", "--purpose", "provide_offerings"])?;
    assert_eq!(read.status.code(), Some(3), "the subject is erased");
    let shown = env.ok(&["request", "show", &id])?;
    assert!(shown.contains("status: completed"), "{shown}");
    let steps: Vec<&str> =
        done["timeline"].as_array().ok_or("a timeline")?.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(steps, ["received", "verified", "extended", "started", "completed"]);
    env.ok(&["audit", "verify"])?;
    let audit = env.ok(&["audit", "list", "--limit", "1000"])?;
    assert!(!audit.contains("eu3@example.org") && !audit.contains("Backups take time"), "no contact or text audited");
    assert!(audit.contains("request_completed"));
    Ok(())
}

#[test]
fn an_access_response_and_the_years_metrics_are_printed_in_every_format() -> R<()> {
    let env = Env::new()?;
    env.ok(&["subject", "add", "eu-4", "--jurisdiction", "eea"])?;
    env.ok(&[
        "data",
        "put",
        "eu-4",
        "contact.name",
        "Eve Example",
        "--source",
        "provided",
        "--purpose",
        "provide_offerings",
    ])?;
    let id = env.json(&["request", "submit", "--subject", "eu-4", "--kind", "access"])?["id"]
        .as_str()
        .ok_or("an id")?
        .to_string();
    let before = env.ok(&["request", "response", &id, "--format", "json"])?;
    assert!(!before.contains("Eve Example"), "nothing personal before verification");
    env.ok(&["request", "verify", &id, "--method", "session"])?;
    env.ok(&["request", "execute", &id])?;
    let json: Value = serde_json::from_str(&env.ok(&["request", "response", &id, "--format", "json"])?)?;
    assert_eq!(json["format"], "custos-request-response/1");
    assert_eq!(json["report"]["data"][0]["items"][0]["value"], "Eve Example", "{json}");
    let html = env.ok(&["request", "response", &id, "--format", "html"])?;
    assert!(html.starts_with("<!doctype html>") && html.contains("Eve Example"));
    let csv = env.ok(&["request", "response", &id, "--format", "csv"])?;
    assert!(csv.lines().any(|l| l.contains("\"contact.name\"") && l.contains("\"Eve Example\"")), "{csv}");
    let bad = env.run(&["request", "response", &id, "--format", "pdf"])?;
    assert_eq!(bad.status.code(), Some(2), "an unknown format is a usage error");
    // A rectification from the command line.
    let fix = env.json(&[
        "request",
        "submit",
        "--subject",
        "eu-4",
        "--kind",
        "rectification",
        "--correct",
        "contact.name=Eve Sample",
    ])?;
    let fix_id = fix["id"].as_str().ok_or("an id")?.to_string();
    env.ok(&["request", "verify", &fix_id, "--method", "session"])?;
    let fixed = env.json(&["request", "execute", &fix_id])?;
    assert_eq!(fixed["outcome"]["corrected"][0]["version"], 2, "{fixed}");
    let year = &today()[..4];
    let report: Value = serde_json::from_str(&env.ok(&["request", "report", "--year", year, "--format", "json"])?)?;
    let access =
        report["kinds"].as_array().ok_or("kinds")?.iter().find(|k| k["kind"] == "access").ok_or("access")?.clone();
    assert_eq!((&access["received"], &access["complied"]), (&Value::from(1), &Value::from(1)), "{report}");
    let text = env.ok(&["request", "report", "--year", year])?;
    assert!(text.lines().any(|l| l.starts_with("rectification\t1\t1\t0")), "{text}");
    Ok(())
}
