//! HTTPS with rustls: a self-signed certificate made at test time, one
//! request from a client that trusts only that certificate.

mod common;

use std::path::Path;
use std::sync::Arc;

use custos_server::tls::{TlsConfig, serve_tls};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

struct SelfSigned {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn self_signed() -> SelfSigned {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    SelfSigned { cert_pem: ck.cert.pem(), key_pem: ck.key_pair.serialize_pem(), der: ck.cert.der().to_vec() }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn client(trusted: &[u8]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.to_vec().into()).expect("a root");
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let cert = self_signed();
    let tls =
        TlsConfig::load(&write(dir.path(), "cert.pem", &cert.cert_pem), &write(dir.path(), "key.pem", &cert.key_pem))
            .expect("the certificate loads");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Kept until the server has stopped: the store is then released off the
    // runtime (closing a PostgreSQL store blocks, which panics inside it).
    let fixture = common::fixture();
    let server = tokio::spawn(serve_tls(listener, fixture.state.clone(), tls, async {
        let _ = stopped.await;
    }));

    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut conn =
        client(&cert.der).connect(ServerName::try_from("localhost").expect("a name"), tcp).await.expect("handshake");
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.expect("send");
    let mut reply = Vec::new();
    // A peer that closes without close_notify ends in an error; what was read counts.
    let _ = conn.read_to_end(&mut reply).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#"{"status":"ok"}"#), "{reply}");

    // A client that does not trust the certificate cannot connect.
    let other = self_signed();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    assert!(client(&other.der).connect(ServerName::try_from("localhost").expect("a name"), tcp).await.is_err());

    stop.send(()).expect("the server is running");
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server stops on the signal")
        .expect("no panic")
        .expect("no error");
    drop(fixture);
}

#[test]
fn bad_files_fail_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let a = self_signed();
    let b = self_signed();
    let cert = write(dir.path(), "cert.pem", &a.cert_pem);
    let key = write(dir.path(), "key.pem", &a.key_pem);
    let other_key = write(dir.path(), "other-key.pem", &b.key_pem);
    let garbage = write(dir.path(), "garbage.pem", "not a pem file\n");
    let missing = dir.path().join("missing.pem");
    let cases = [
        (&missing, &key, "cannot read the TLS certificate"),
        (&cert, &missing, "cannot read the TLS private key"),
        (&garbage, &key, "holds no certificate"),
        (&cert, &garbage, "holds no private key"),
        (&key, &key, "holds no certificate"),
        (&cert, &cert, "holds no private key"),
        (&cert, &other_key, "cannot be used together"),
    ];
    for (c, k, expected) in cases {
        let e = TlsConfig::load(c, k).expect_err("refused").to_string();
        assert!(e.contains(expected), "{c:?} {k:?}: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
}
