//! The webhook endpoint of every figure: answers 200 at once to any POST, and passes on what
//! arrived and when. Its arrival time is taken when the request's head has been read, before
//! its body is.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Larger than any webhook body; the sink is no place to test limits.
const MAX_BODY: usize = 1 << 20;

/// One request as the sink saw it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: Instant,
    /// The same moment on the wall clock, to set against times the server reports.
    pub unix_micros: i64,
    /// The `X-MDOQ-Event` header, if it had one.
    pub event: Option<String>,
    pub body: Bytes,
}

impl Arrival {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).context("a request body that is not JSON")
    }
}

pub struct Sink {
    pub base: String,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    server: JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> anyhow::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the sink")?;
        let base = format!("http://{}", listener.local_addr()?);
        let (sender, arrivals) = mpsc::unbounded_channel();
        let app = Router::new().fallback(arrive).with_state(sender);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink {
            base,
            arrivals,
            server,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next request, failing if none comes within `limit`.
    pub async fn next(&mut self, limit: Duration) -> anyhow::Result<Arrival> {
        match tokio::time::timeout(limit, self.arrivals.recv()).await {
            Ok(Some(arrival)) => Ok(arrival),
            Ok(None) => bail!("the sink stopped"),
            Err(_) => bail!("the sink got no request within {limit:?}"),
        }
    }

    /// The next `n` requests, failing if they do not all come within `limit`.
    pub async fn collect(&mut self, n: usize, limit: Duration) -> anyhow::Result<Vec<Arrival>> {
        let arrived = self.take(n, limit).await?;
        ensure!(
            arrived.len() == n,
            "the sink got {} of {n} requests within {limit:?}",
            arrived.len()
        );
        Ok(arrived)
    }

    /// Up to `n` requests, as many as come within `within`.
    pub async fn take(&mut self, n: usize, within: Duration) -> anyhow::Result<Vec<Arrival>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut arrived = Vec::with_capacity(n);
        while arrived.len() < n {
            match tokio::time::timeout_at(deadline, self.arrivals.recv()).await {
                Ok(Some(arrival)) => arrived.push(arrival),
                Ok(None) => bail!("the sink stopped"),
                Err(_) => break,
            }
        }
        Ok(arrived)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn arrive(
    State(arrivals): State<mpsc::UnboundedSender<Arrival>>,
    request: Request,
) -> StatusCode {
    let at = Instant::now();
    let unix_micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let (head, body) = request.into_parts();
    let event = head
        .headers
        .get("x-mdoq-event")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let _ = arrivals.send(Arrival {
        at,
        unix_micros,
        event,
        body,
    });
    StatusCode::OK
}
