//! Test helpers: the live OpenBao environment and a fake HTTP(S) server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gostint_vault::{VaultClient, VaultConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The dev OpenBao server, as `scripts/services up` describes it in `.dev/env`.
pub(crate) struct Live {
    pub(crate) client: VaultClient,
    pub(crate) root: String,
    pub(crate) role_id: String,
    pub(crate) role_name: String,
}

/// The live server, or `None` (after printing `skipped: no vault`) when the environment
/// does not name one; panics instead when `GOSTINT_TEST_REQUIRE` contains `vault`.
pub(crate) fn live() -> Option<Live> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("VAULT_ADDR"), var("GOSTINT_DEV_VAULT_ROOT_TOKEN"), var("GOSTINT_ROLEID")) {
        (Some(addr), Some(root), Some(role_id)) => {
            let mut config = VaultConfig::new(addr);
            config.timeout = Duration::from_secs(10);
            Some(Live {
                client: VaultClient::new(&config).expect("client for VAULT_ADDR"),
                root,
                role_id,
                role_name: var("GOSTINT_ROLENAME").unwrap_or_else(|| "gostint-role".to_owned()),
            })
        }
        _ => {
            if var("GOSTINT_TEST_REQUIRE").is_some_and(|r| r.contains("vault")) {
                panic!("GOSTINT_TEST_REQUIRE names vault, but VAULT_ADDR, GOSTINT_DEV_VAULT_ROOT_TOKEN or GOSTINT_ROLEID is unset");
            }
            println!("skipped: no vault");
            None
        }
    }
}

/// What the fake server does with each request.
#[derive(Clone)]
pub(crate) enum Behaviour {
    /// Answers with this status and body.
    Answer { status: u16, body: String },
    /// Reads the request and never answers.
    Hang,
}

impl Behaviour {
    pub(crate) fn answer(status: u16, body: &str) -> Self {
        Self::Answer { status, body: body.to_owned() }
    }
}

/// A one-behaviour HTTP/1.1 server on a loopback port that records every request
/// (head and body, as text).
pub(crate) struct Fake {
    pub(crate) addr: String,
    pub(crate) requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Fake {
    pub(crate) async fn start(behaviour: Behaviour) -> Self {
        Self::start_with(behaviour, None).await
    }

    /// Like `start`, speaking TLS with `tls` when given.
    pub(crate) async fn start_with(behaviour: Behaviour, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let behaviour = behaviour.clone();
                let seen = seen.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, behaviour, seen).await;
                            }
                        }
                        None => serve(stream, behaviour, seen).await,
                    }
                });
            }
        });
        Self { addr: format!("{scheme}://127.0.0.1:{port}"), requests, task }
    }

    pub(crate) fn client(&self) -> VaultClient {
        let mut config = VaultConfig::new(&self.addr);
        config.timeout = Duration::from_secs(5);
        VaultClient::new(&config).unwrap()
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, behaviour: Behaviour, seen: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    seen.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
    match behaviour {
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Behaviour::Answer { status, body } => {
            let reply = format!(
                "HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// A loopback address where nothing listens.
pub(crate) async fn closed_port_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
