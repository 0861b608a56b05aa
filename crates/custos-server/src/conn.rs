//! The HTTP/1.1 connection loop under [`crate::serve`] and
//! [`crate::tls::serve_tls`]: axum's own `serve`, plus a header-read timeout
//! (axum's gives hyper no timer, so a client that sends half a request line or
//! half its headers held the connection open for as long as it liked).

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;

/// How long a client has, by default, to send a request's line and headers
/// once it starts one (or after the previous response on a kept-alive connection).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting
/// and waits for in-flight requests to finish.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (io, _peer) = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut conn = pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(());
    // Every connection task holds a receiver until it ends.
    stop_tx.closed().await;
    Ok(())
}
