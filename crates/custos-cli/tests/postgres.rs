//! Two `custos serve` processes on one PostgreSQL database, written to at the
//! same time: no write is lost, no item has two current versions, and
//! `custos audit verify` holds afterwards.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use custos_test_support::TestDatabase;

const MASTER_KEY: &str = "5f2b8c1d9e0a4b3c6d7e8f901a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";

fn custos(data: &Path, db: &TestDatabase) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custos"));
    c.arg("--data-dir").arg(data).arg("--database").arg(db.url()).env("CUSTOS_MASTER_KEY", MASTER_KEY);
    c
}

fn start(data: &Path, db: &TestDatabase) -> (Child, String) {
    std::fs::create_dir_all(data).expect("data dir");
    let log = std::fs::File::create(data.join("server.log")).expect("log file");
    let mut child = custos(data, db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn custos serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    let base = line.trim().strip_prefix("listening on ").expect("a listening line").to_string();
    (child, base)
}

fn stop(mut child: Child, data: &Path) {
    let status = Command::new("kill").arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    let log = std::fs::read_to_string(data.join("server.log")).unwrap_or_default();
    assert_eq!(exit.code(), Some(0), "a server exits cleanly on SIGTERM ({exit}); its log:\n{log}");
}

#[test]
fn two_servers_on_one_database_lose_no_write_and_keep_one_audit_chain() {
    const SUBJECTS: usize = 4;
    const WRITES: usize = 25;
    let db = TestDatabase::create("custos_two_servers").unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    // Each server has its own data directory; they share the database and the master key.
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let key_out = custos(&data_a, &db).args(["key", "create", "--role", "admin"]).output().expect("key create");
    assert!(key_out.status.success(), "{}", String::from_utf8_lossy(&key_out.stderr));
    let key = String::from_utf8(key_out.stdout).expect("utf-8").trim().to_string();
    let (server_a, base_a) = start(&data_a, &db);
    let (server_b, base_b) = start(&data_b, &db);
    let client = reqwest::blocking::Client::new();
    let auth = format!("Bearer {key}");
    for s in 0..SUBJECTS {
        let r = client
            .post(format!("{base_a}/v1/subjects"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(format!(r#"{{"id":"shared-{s}","jurisdiction":"california"}}"#))
            .send()
            .expect("create");
        assert_eq!(r.status(), 201);
    }
    // Four writers, two per server, all writing the same subjects' items.
    std::thread::scope(|scope| {
        for (w, base) in [&base_a, &base_b, &base_a, &base_b].into_iter().enumerate() {
            let (client, auth) = (&client, &auth);
            scope.spawn(move || {
                for i in 0..WRITES {
                    let s = (w + i) % SUBJECTS;
                    let r = client
                        .put(format!("{base}/v1/subjects/shared-{s}/data/contact.email"))
                        .header("authorization", auth)
                        .header("content-type", "application/json")
                        .body(format!(
                            r#"{{"value":"writer{w}-n{i}@example.org","source":"provided","purpose":"provide_offerings"}}"#
                        ))
                        .send()
                        .expect("put");
                    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
                }
            });
        }
    });
    let mut versions = 0;
    for s in 0..SUBJECTS {
        let r = client
            .get(format!("{base_b}/v1/subjects/shared-{s}/data/contact.email/history?purpose=provide_offerings"))
            .header("authorization", &auth)
            .send()
            .expect("history");
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = serde_json::from_str(&r.text().expect("body")).expect("json");
        let list = body["versions"].as_array().expect("versions");
        let numbers: Vec<u64> = list.iter().filter_map(|v| v["version"].as_u64()).collect();
        let expected: Vec<u64> = (1..=list.len() as u64).rev().collect();
        assert_eq!(numbers, expected, "versions of shared-{s} are numbered without gaps, newest first");
        let current = list.iter().filter(|v| v.get("superseded_at").is_none()).count();
        assert_eq!(current, 1, "shared-{s} has exactly one current version");
        versions += list.len();
    }
    assert_eq!(versions, 4 * WRITES, "no write was lost");
    stop(server_a, &data_a);
    stop(server_b, &data_b);
    let verify = custos(&data_a, &db).args(["audit", "verify"]).output().expect("audit verify");
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{out}{}", String::from_utf8_lossy(&verify.stderr));
    // The store's identity + 1 key + 4 subjects + 100 writes + 4 history reads.
    assert!(out.starts_with(&format!("ok: {} entries", 1 + 1 + SUBJECTS + 4 * WRITES + SUBJECTS)), "{out}");
}
