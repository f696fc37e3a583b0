//! gostint's own accept loop (hyper-util), so that nothing about a client connection is
//! silent: a failed accept (out of file descriptors, …) is counted in
//! `gostint_http_accept_errors_total` and logged at most once every 10 s, open connections
//! are counted in `gostint_http_connections_open`, the TLS handshake and request headers
//! must arrive within `GOSTINT_HEADER_TIMEOUT` (idle keep-alive connections end after it
//! too), and at shutdown each connection finishes its request within 5 s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// What [`serve`] needs.
pub(crate) struct Listen {
    pub(crate) listener: std::net::TcpListener,
    /// The TLS configuration; read afresh for each connection, so a certificate reloaded on
    /// SIGHUP serves the next handshake.
    pub(crate) tls: Option<axum_server::tls_rustls::RustlsConfig>,
    pub(crate) header_timeout: Duration,
    pub(crate) metrics: gostint_metrics::Metrics,
}

/// Accepts until `stop`, each connection on `tracker`.
pub(crate) async fn serve(l: Listen, app: axum::Router, stop: CancellationToken, tracker: TaskTracker) {
    let listener = match tokio::net::TcpListener::from_std(l.listener) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "the listener cannot be used: HTTP server stopped");
            return;
        }
    };
    let tls = l.tls;
    let ht = l.header_timeout;
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(ht);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(ht).keep_alive_timeout(ht);
    let builder = Arc::new(builder);
    let gauge = l.metrics.connections_open.clone();
    let mut last_log: Option<Instant> = None;
    let mut suppressed = 0u64;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.cancelled() => return,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                l.metrics.accept_errors.inc();
                if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    warn!(
                        error = %e,
                        suppressed,
                        open_connections = gauge.get(),
                        "accepting a client connection failed (out of file descriptors?); new clients wait"
                    );
                    last_log = Some(Instant::now());
                    suppressed = 0;
                } else {
                    suppressed += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let guard = crate::hardening::ConnGuard::new(gauge.clone());
        let (builder, app, stop, tls) = (builder.clone(), app.clone(), stop.clone(), tls.clone());
        tracker.spawn(async move {
            let _guard = guard;
            let svc = TowerToHyperService::new(app);
            match tls {
                None => connection(&builder, TokioIo::new(tcp), svc, stop).await,
                Some(config) => {
                    match tokio::time::timeout(ht, tokio_rustls::TlsAcceptor::from(config.get_inner()).accept(tcp))
                        .await
                    {
                        Ok(Ok(stream)) => connection(&builder, TokioIo::new(stream), svc, stop).await,
                        Ok(Err(e)) => debug!(error = %e, "TLS handshake failed"),
                        Err(_) => debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn connection<I>(
    builder: &Builder<TokioExecutor>,
    io: TokioIo<I>,
    svc: TowerToHyperService<axum::Router>,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r { debug!(error = %e, "connection ended with an error") },
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
