//! gostint's own accept loop (hyper-util), so that nothing about a client connection is
//! silent: a failed accept (out of file descriptors, …) is counted in
//! `gostint_http_accept_errors_total` and logged at most once every 10 s, open connections
//! are counted in `gostint_http_connections_open`, the TLS handshake and request headers
//! must arrive within `GOSTINT_HEADER_TIMEOUT` (idle keep-alive connections end after it
//! too), and at shutdown each connection finishes its request within 5 s.
//!
//! The header timeout also covers a client that sends nothing at all: hyper-util's protocol
//! detection (HTTP/1 or HTTP/2 preface) reads the first bytes before hyper's own header
//! timer starts, with no limit of its own, so [`FirstBytes`] ends the connection when the
//! first [`PREFACE`] bytes do not arrive within the header timeout (issue 16: found by the
//! reliability suite's `slow-clients` scenario, silent connections held for good).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
                None => connection(&builder, TokioIo::new(FirstBytes::new(tcp, ht)), svc, stop).await,
                Some(config) => {
                    match tokio::time::timeout(ht, tokio_rustls::TlsAcceptor::from(config.get_inner()).accept(tcp))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            connection(&builder, TokioIo::new(FirstBytes::new(stream, ht)), svc, stop).await
                        }
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

/// The bytes hyper-util reads to tell HTTP/1 from HTTP/2 (the HTTP/2 connection preface).
pub(crate) const PREFACE: usize = 24;

/// A connection whose first [`PREFACE`] bytes must arrive before a deadline: a read still
/// waiting for them then fails with `TimedOut`, which ends the connection. After them (or
/// at end of stream) it is the plain stream; hyper's header timer takes over.
pub(crate) struct FirstBytes<I> {
    inner: I,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    seen: usize,
}

impl<I> FirstBytes<I> {
    pub(crate) fn new(inner: I, limit: Duration) -> Self {
        Self { inner, deadline: Some(Box::pin(tokio::time::sleep(limit))), seen: 0 }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstBytes<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.deadline.is_none() {
            return r;
        }
        match &r {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len() - before;
                this.seen += got;
                if got == 0 || this.seen >= PREFACE {
                    this.deadline = None;
                }
                r
            }
            Poll::Ready(Err(_)) => r,
            Poll::Pending => match this.deadline.as_mut().map(|d| std::future::Future::poll(d.as_mut(), cx)) {
                Some(Poll::Ready(())) => {
                    debug!("no request bytes within the header timeout");
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no request bytes within the header timeout",
                    )))
                }
                _ => Poll::Pending,
            },
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstBytes<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_silent_stream_fails_its_read_at_the_deadline() {
        let (a, _b) = tokio::io::duplex(64);
        let mut s = FirstBytes::new(a, Duration::from_millis(200));
        let t = Instant::now();
        let mut buf = [0u8; 8];
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(190) && t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn a_short_prefix_then_silence_also_fails_but_a_full_one_disarms_the_deadline() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut s = FirstBytes::new(a, Duration::from_millis(200));
        b.write_all(b"PRI").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(s.read(&mut buf).await.unwrap(), 3);
        assert_eq!(s.read(&mut buf).await.unwrap_err().kind(), std::io::ErrorKind::TimedOut);

        let (a, mut b) = tokio::io::duplex(64);
        let mut s = FirstBytes::new(a, Duration::from_millis(200));
        b.write_all(&[b'G'; PREFACE]).await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), PREFACE);
        // Past the deadline, a read still waits for data rather than failing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.write_all(b"more").await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 4);
    }
}
