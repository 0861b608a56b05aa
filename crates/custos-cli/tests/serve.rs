//! `custos serve` on a fresh data directory: it starts with nothing else
//! installed, creates an admin key, and the README's put-then-get works.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn a_fresh_data_directory_serves_with_a_bootstrapped_admin_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_custos"))
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("CUSTOS_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn custos serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
    let base = line.trim().strip_prefix("listening on ").expect("a listening line").to_string();

    let key_file = data.join("admin.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).expect("admin.key exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    let key = std::fs::read_to_string(&key_file).expect("read admin.key");
    let client = reqwest::blocking::Client::new();
    let auth = format!("Bearer {}", key.trim());
    let created = client
        .post(format!("{base}/v1/subjects"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"id":"alice","jurisdiction":"eea"}"#)
        .send()
        .expect("create");
    assert_eq!(created.status(), 201);
    let put = client
        .put(format!("{base}/v1/subjects/alice/data/contact.email"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(r#"{"value":"alice@example.org","source":"provided","purpose":"provide_offerings"}"#)
        .send()
        .expect("put");
    assert_eq!(put.status(), 200);
    let got = client
        .get(format!("{base}/v1/subjects/alice/data/contact.email?purpose=provide_offerings"))
        .header("authorization", &auth)
        .send()
        .expect("get");
    assert_eq!(got.status(), 200);
    assert!(got.text().expect("body").contains("\"value\":\"alice@example.org\""));
    let denied = client
        .get(format!("{base}/v1/subjects/alice/data/contact.email?purpose=marketing"))
        .header("authorization", &auth)
        .send()
        .expect("get");
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.headers()["content-type"], "application/problem+json");
    assert!(denied.text().expect("body").contains("\"reason\":\"consent_missing\""));

    let status = Command::new("kill").arg(child.id().to_string()).status().expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert_eq!(exit.code(), Some(0), "SIGTERM is a clean shutdown");
}
