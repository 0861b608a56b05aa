//! The load generator's client: keep-alive HTTP/1.1 connections (hyper's
//! client connections on the tokio runtime), and how failures are counted.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Where requests go, and as whom.
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: HeaderValue,
    /// The `Authorization` header.
    pub bearer: HeaderValue,
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    /// Where it is connected.
    pub target: Arc<Target>,
}

impl Conn {
    /// Connects (TCP_NODELAY) and shakes hands.
    pub async fn open(target: &Arc<Target>) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(target.addr)
            .await
            .with_context(|| format!("cannot connect to {}", target.addr))?;
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.context("HTTP handshake failed")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, target: target.clone() })
    }

    /// Sends one request and reads the whole response.
    pub async fn send(
        &mut self,
        method: Method,
        uri: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, self.target.host.clone())
            .header(AUTHORIZATION, self.target.bearer.clone());
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        let req = req.body(Full::new(body)).context("cannot build a request")?;
        self.sender.ready().await.context("the connection closed")?;
        let resp = self.sender.send_request(req).await.context("the request failed")?;
        let status = resp.status();
        let body = resp.into_body().collect().await.context("cannot read a response body")?.to_bytes();
        Ok((status, body))
    }
}

/// A count of failures and the first one's description.
#[derive(Debug, Default)]
pub struct Errors {
    /// How many.
    pub count: u64,
    /// The first one's description.
    pub first: Option<String>,
}

impl Errors {
    /// Counts one failure, described (only if it is the first) by `describe`.
    pub fn add(&mut self, describe: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(describe());
        }
    }

    /// Adds another count.
    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// A response body for an error message (problem+json never carries values).
pub fn shown(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 300 { format!("{}…", text.chars().take(300).collect::<String>()) } else { text.into() }
}
