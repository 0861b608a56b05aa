//! `custos bench` and `custos bench http` through the real binary, at tiny
//! sizes: on the bundled policy and on another company's policy (a lending
//! library whose ids share nothing with the AWS example). On the PostgreSQL
//! run (`CUSTOS_TEST_BACKEND=postgres`) each benchmark gets a database of its own.

use std::path::PathBuf;
use std::process::{Command, Output};

use custos_test_support::TestDatabase;

const POSTGRES_MASTER_KEY: &str = "5a4b3c2d1e0f5a4b3c2d1e0f5a4b3c2d1e0f5a4b3c2d1e0f5a4b3c2d1e0f5a4b";

/// The fictional library's policy (crates/custos-bench/tests/policies).
fn library_policy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../custos-bench/tests/policies/millbrook-library.yaml")
}

/// Runs `custos [--policy P] [--database URL] ARGS` in a scratch directory.
fn bench(policy: Option<&PathBuf>, args: &[&str]) -> Output {
    let db = TestDatabase::create_if_asked("custos_bench").unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custos"));
    cmd.current_dir(dir.path()).arg("--data-dir").arg(dir.path().join("data"));
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    cmd.args(args)
        .env_remove("CUSTOS_MASTER_KEY")
        .env_remove("CUSTOS_MASTER_KEY_FILE")
        .env_remove("CUSTOS_POLICY")
        .env_remove("CUSTOS_DATA_DIR")
        .env_remove("CUSTOS_DATABASE_URL");
    if let Some(db) = &db {
        // PostgreSQL needs its master key named explicitly (the server the
        // HTTP benchmark starts inherits it).
        cmd.arg("--database").arg(db.url()).env("CUSTOS_MASTER_KEY", POSTGRES_MASTER_KEY);
    }
    cmd.output().expect("run custos")
}

/// Runs a benchmark that must succeed; returns its output.
fn ok(policy: Option<&PathBuf>, args: &[&str]) -> String {
    let out = bench(policy, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "custos {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const IN_PROCESS: &[&str] = &["bench", "--subjects", "40", "--audit-entries", "600", "--decisions", "2000"];
const HTTP: &[&str] = &[
    "bench",
    "http",
    "--seconds",
    "1",
    "--subjects",
    "20",
    "--ingest-items",
    "200",
    "--batch",
    "50",
    "--connections",
    "2",
];

/// Every figure line of `custos bench`, in order.
fn assert_in_process_figures(out: &str, fields: usize) {
    let expected = [
        format!("custos bench: 40 subjects x {fields} fields, "),
        "subjects created: ".to_string(),
        "encrypted writes, key order, 10000-item batches: ".to_string(),
        "encrypted writes, random order, 10000-item batches: ".to_string(),
        "decisions: ".to_string(),
        format!("read one subject's {fields} fields (decide, fetch, decrypt, audit): mean "),
        "read one field (decide, fetch, decrypt, audit): mean ".to_string(),
        "erase a subject with 1,000 item versions: median ".to_string(),
        "audit verification: ".to_string(),
    ];
    let mut lines = out.lines();
    for prefix in &expected {
        assert!(lines.any(|l| l.starts_with(prefix.as_str())), "no line `{prefix}…` (in order) in:\n{out}");
    }
    let store = if custos_test_support::postgres_asked() { "PostgreSQL" } else { "SQLite in " };
    assert!(out.starts_with(&format!("{}{store}", expected[0])), "benchmarked the wrong store:\n{out}");
}

/// Every figure line of `custos bench http`, in order.
fn assert_http_figures(out: &str, categories: usize) {
    let expected = [
        "custos bench http: server pid ".to_string(),
        "setup: 20 subjects in ".to_string(),
        "http reads (GET one value: auth, decide, decrypt, audit; 2 connections, ".to_string(),
        format!("http ingestion (200 items in 50-line NDJSON batches, 3 in flight, {categories} categories): "),
        "server memory after ingesting 200 items: RSS ".to_string(),
    ];
    let mut lines = out.lines();
    for prefix in &expected {
        assert!(lines.any(|l| l.starts_with(prefix.as_str())), "no line `{prefix}…` (in order) in:\n{out}");
    }
    assert!(!out.contains("responses by status"), "every read must be 200:\n{out}");
    // The ingestion target differs by store: 50,000 items/s on PostgreSQL.
    let target = if custos_test_support::postgres_asked() { "(target 50,000)" } else { "(target 100,000)" };
    assert!(out.lines().any(|l| l.starts_with("http ingestion (") && l.ends_with(target)), "{out}");
}

#[test]
fn regression_bench_runs_on_another_companys_policy() {
    let policy = library_policy();
    // The old benchmark named `provide_offerings`, `provided`, `california`
    // and `contact.*` and failed on this policy; the workload now comes from
    // the policy: its consent-based purpose with the most categories (consent
    // recorded first), the tokenized card left out.
    let out = ok(Some(&policy), IN_PROCESS);
    assert!(
        out.contains(
            "workload from the policy: jurisdiction ontario, purpose reading_suggestions (consent; each subject's consent is recorded first), 6 categories: member.full_name from membership_form,"
        ),
        "{out}"
    );
    assert_in_process_figures(&out, 6);
    assert!(!out.contains("contact.") && !out.contains("billing.fine_card"), "{out}");

    let out = ok(Some(&policy), HTTP);
    assert!(out.contains("jurisdiction ontario, purpose reading_suggestions (consent;"), "{out}");
    assert_http_figures(&out, 4);
}

#[test]
fn regression_bench_fields_beyond_the_policy_are_a_clear_error() {
    let out = bench(Some(&library_policy()), &["bench", "--subjects", "4", "--fields", "7"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("use --fields 6 or fewer"), "{err}");
}

#[test]
fn bench_runs_on_the_bundled_policy() {
    let out = ok(None, IN_PROCESS);
    assert!(
        out.contains("workload from the policy: jurisdiction california, purpose provide_offerings (contract), 8 categories: contact.name from provided, contact.email from provided,"),
        "{out}"
    );
    assert_in_process_figures(&out, 8);

    let out = ok(None, HTTP);
    assert!(
        out.contains("purpose provide_offerings (contract), 4 categories: contact.name from provided, contact.email from provided, contact.phone from provided, contact.address from provided"),
        "{out}"
    );
    assert_http_figures(&out, 4);
}
