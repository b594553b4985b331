//! Receivers on loopback that behave like real middleware: each answers after a random
//! pause (on `/flaky`, sometimes with a 500), releases every lock it is sent after a random
//! delay, and writes one line into the release's action log for every delivery it sees.
//! Everything they saw and every answer the API gave them is kept for the audit.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::api::Api;
use crate::server::generation_of;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Seen {
    pub delivery: String,
    pub body: Vec<u8>,
    /// Which start of the server sent it.
    pub generation: u32,
    /// The status the receiver chose to answer with (it may never have been read).
    pub answered: u16,
}

/// A lock release the receiver asked for, and how the API answered it in the end.
#[derive(Debug, Clone)]
pub struct LockCall {
    pub delivery: String,
    pub outcome: &'static str,
    pub status: u16,
}

/// A line the receiver wrote into an action log.
#[derive(Debug, Clone)]
pub struct LogCall {
    pub parent_log: i64,
    pub message: String,
    pub status: u16,
    /// More than one send means an earlier one may have been written without an answer.
    pub sends: u32,
}

#[derive(Clone)]
pub struct Receivers {
    pub base: String,
    inner: Arc<Shared>,
}

struct Shared {
    api: Api,
    seed: u64,
    connections: AtomicU64,
    /// Lock releases and log lines still being sent.
    busy: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    known: Mutex<HashSet<String>>,
    locks: Mutex<Vec<LockCall>>,
    logs: Mutex<Vec<LogCall>>,
}

impl Receivers {
    /// Starts the receivers; `api` carries a token with the `hook` scope.
    pub async fn start(api: Api, seed: u64) -> Receivers {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receivers = Receivers {
            base: format!("http://{}", listener.local_addr().unwrap()),
            inner: Arc::new(Shared {
                api,
                seed,
                connections: AtomicU64::new(0),
                busy: AtomicUsize::new(0),
                seen: Mutex::default(),
                known: Mutex::default(),
                locks: Mutex::default(),
                logs: Mutex::default(),
            }),
        };
        let accepting = receivers.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(accepting.clone().serve(stream));
            }
        });
        receivers
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    pub fn lock_calls(&self) -> Vec<LockCall> {
        self.inner.locks.lock().unwrap().clone()
    }

    pub fn log_calls(&self) -> Vec<LogCall> {
        self.inner.logs.lock().unwrap().clone()
    }

    /// Whether every lock release and log line has been answered.
    pub fn is_settled(&self) -> bool {
        self.inner.busy.load(Ordering::SeqCst) == 0
    }

    async fn serve(self, mut stream: TcpStream) {
        let n = self.inner.connections.fetch_add(1, Ordering::SeqCst);
        let mut rng = StdRng::seed_from_u64(self.inner.seed ^ n.wrapping_mul(0x9E37_79B9));
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        let Request {
            path,
            delivery,
            generation,
            body,
        } = request;
        let flaky = path == "/flaky" && rng.random_bool(0.3);
        let answered = if flaky { 500 } else { 200 };
        let seen = Seen {
            delivery: delivery.clone(),
            body: body.clone(),
            generation,
            answered,
        };
        self.inner.seen.lock().unwrap().push(seen);

        let first = self.inner.known.lock().unwrap().insert(delivery.clone());
        if first {
            self.follow_up(&delivery, &body, &mut rng);
        }
        // A pause widens the window in which a kill finds the attempt in flight.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        let head = format!("HTTP/1.1 {answered} Answer\r\nContent-Length: 2\r\n\r\nok");
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    /// What middleware does with a delivery besides answering: a line in the action log,
    /// and for a locking delivery, the release of its lock a little later.
    fn follow_up(&self, delivery: &str, body: &[u8], rng: &mut StdRng) {
        let payload: Value = serde_json::from_slice(body).expect("a JSON payload");
        let parent_log = payload["parent_log"].as_i64().expect("parent_log");
        let message = format!("crash harness receiver saw delivery {delivery}");
        self.spawn_busy(self.clone().append(parent_log, message));

        if let Some(token) = payload["lock"].as_str() {
            let outcome = if rng.random_bool(0.05) {
                "abort"
            } else {
                "continue"
            };
            let delay = Duration::from_millis(rng.random_range(0..1500));
            let call = self
                .clone()
                .release(delivery.to_owned(), token.to_owned(), outcome, delay);
            self.spawn_busy(call);
        }
    }

    fn spawn_busy(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let shared = self.inner.clone();
        shared.busy.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            work.await;
            shared.busy.fetch_sub(1, Ordering::SeqCst);
        });
    }

    async fn append(self, parent_log: i64, message: String) {
        let body = json!({"message": message, "status": "info"});
        let path = format!("/api/v1/logs/{parent_log}/entries");
        let answer = self.inner.api.call(Method::POST, &path, Some(&body)).await;
        self.inner.logs.lock().unwrap().push(LogCall {
            parent_log,
            message,
            status: answer.status,
            sends: answer.sends,
        });
    }

    async fn release(self, delivery: String, token: String, outcome: &'static str, wait: Duration) {
        tokio::time::sleep(wait).await;
        let body = json!({"lock": token, "outcome": outcome, "message": "crash harness"});
        let answer = self
            .inner
            .api
            .call(Method::POST, "/api/v1/locks/release", Some(&body))
            .await;
        self.inner.locks.lock().unwrap().push(LockCall {
            delivery,
            outcome,
            status: answer.status,
        });
    }
}

/// What the receivers need of a request.
struct Request {
    path: String,
    delivery: String,
    generation: u32,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: usize = header("content-length")?.parse().ok()?;
    let delivery = header("x-mdoq-delivery")?;
    let generation = generation_of(&header("user-agent")?)?;
    let path = head.split_whitespace().nth(1)?.to_owned();

    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        path,
        delivery,
        generation,
        body,
    })
}
