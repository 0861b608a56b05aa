//! HTTPS: rustls (on `ring`) in front of the same router.
//!
//! [`TlsConfig::load`] reads a PEM certificate chain and private key and
//! fails with one clear sentence if they are missing, malformed or do not
//! match. [`serve_tls`] accepts TCP connections, runs each TLS handshake in a
//! task of its own (a slow or silent client holds up no one, and gives up
//! after [`HANDSHAKE_TIMEOUT`]), and hands finished connections to
//! `axum::serve`, which provides HTTP/1.1 and the graceful shutdown: on the
//! signal it stops accepting and lets in-flight requests finish.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::AppState;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes finished but not yet taken by the server.
const PENDING_CONNECTIONS: usize = 64;

/// A certificate and key that failed to load: one sentence naming the file.
#[derive(Debug)]
pub struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// A loaded certificate chain and key, ready to serve.
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<TlsConfig, TlsError> {
        let cert_pem = read(cert_path, "certificate")?;
        // The key's PEM is wiped once parsed (rustls keeps its own copy).
        let key_pem = zeroize::Zeroizing::new(read(key_path, "private key")?);
        Self::from_pem(&cert_pem, &cert_path.display().to_string(), &key_pem, &key_path.display().to_string())
    }

    /// Builds from PEM text; errors name the files `cert` and `key`.
    fn from_pem(cert_pem: &[u8], cert: &str, key_pem: &[u8], key: &str) -> Result<TlsConfig, TlsError> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError(format!("the TLS certificate {cert} is not valid PEM: {}", pem_error(&e))))?;
        if certs.is_empty() {
            return Err(TlsError(format!(
                "the TLS certificate file {cert} holds no certificate (expected PEM `BEGIN CERTIFICATE`)"
            )));
        }
        let private_key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            pem::Error::NoItemsFound => TlsError(format!(
                "the TLS key file {key} holds no private key (expected PEM `BEGIN PRIVATE KEY`, \
                 `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`)"
            )),
            e => TlsError(format!("the TLS key {key} is not valid PEM: {}", pem_error(&e))),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("cannot set up TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, private_key)
            .map_err(|e| TlsError(format!("the TLS certificate {cert} and key {key} cannot be used together: {e}")))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig { server: Arc::new(server) })
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("cannot read the TLS {what} {}: {e}", path.display())))
}

fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a section is not valid base64".into(),
        other => other.to_string(),
    }
}

/// Serves the API over TLS on `listener` until `shutdown` resolves;
/// in-flight requests finish.
pub async fn serve_tls(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: TlsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TlsListener::new(listener, TlsAcceptor::from(tls.server))?;
    let timeout = state.config.header_read_timeout;
    crate::conn::serve(listener, crate::app(state), timeout, shutdown).await
}

/// A listener that yields connections whose TLS handshake has completed.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    fn new(tcp: TcpListener, tls: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(PENDING_CONNECTIONS);
        let acceptor = tokio::spawn(accept_loop(tcp, tls, tx));
        Ok(TlsListener { ready, local, acceptor })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Stops accepting TCP connections once the server lets go of the listener.
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended (it only does when aborted): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(tcp: TcpListener, tls: TlsAcceptor, ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>) {
    loop {
        let (stream, addr) = match tcp.accept().await {
            Ok(conn) => conn,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::error!(cause = %e, "accept failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(conn)) => {
                    let _ = ready.send((conn, addr)).await;
                }
                Ok(Err(e)) => tracing::debug!(peer = %addr, cause = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(peer = %addr, "TLS handshake timed out"),
            }
        });
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbled_files_are_refused_with_a_sentence() {
        let e = TlsConfig::from_pem(b"", "c.pem", b"", "k.pem").unwrap_err().to_string();
        assert!(e.contains("c.pem holds no certificate"), "{e}");
        let e =
            TlsConfig::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n", "c.pem", b"", "k.pem").unwrap_err().to_string();
        assert!(e.contains("no END line"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
}
