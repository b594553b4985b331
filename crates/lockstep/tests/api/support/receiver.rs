//! A webhook receiver on loopback that records the raw requests it gets and answers as the
//! test tells it, including in ways no well-behaved endpoint would.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// One request as it came over the wire.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The value of a header, matched without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A status with a short body.
    Status(u16),
    /// Waits, then answers 200: a slow endpoint.
    After(Duration),
    /// Sends headers promising 1000 bytes, then one byte every interval.
    Trickle(Duration),
    /// A redirect to the given place.
    Redirect(u16, String),
    /// 200 with a body of this many bytes.
    Big(usize),
}

#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    answer: Arc<Mutex<Answer>>,
    arrived: Arc<Notify>,
}

impl Receiver {
    pub async fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a receiver");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let receiver = Receiver {
            base,
            requests: Arc::default(),
            answer: Arc::new(Mutex::new(answer)),
            arrived: Arc::new(Notify::new()),
        };
        let accepting = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(accepting.clone().serve(stream));
            }
        });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Changes how later requests are answered.
    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived, returning them all.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.arrived.notified();
            let seen = self.requests();
            if seen.len() >= n {
                return seen;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("expected {n} requests, got {}: {seen:#?}", seen.len());
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// The requests whose body has `event` set to `name`.
    pub fn of_event(&self, name: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.json()["event"] == name)
            .collect()
    }

    async fn serve(self, mut stream: TcpStream) {
        let Some(recorded) = read_request(&mut stream).await else {
            return;
        };
        self.requests.lock().unwrap().push(recorded);
        self.arrived.notify_waiters();
        let answer = self.answer.lock().unwrap().clone();
        let _ = respond(&mut stream, answer).await;
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        request_line,
        headers,
        body,
    })
}

async fn respond(stream: &mut TcpStream, answer: Answer) -> std::io::Result<()> {
    match answer {
        Answer::Status(code) => write_simple(stream, code, "", b"ok").await,
        Answer::After(wait) => {
            tokio::time::sleep(wait).await;
            write_simple(stream, 200, "", b"ok").await
        }
        Answer::Redirect(code, location) => {
            let extra = format!("Location: {location}\r\n");
            write_simple(stream, code, &extra, b"").await
        }
        Answer::Big(size) => write_simple(stream, 200, "", &vec![b'x'; size]).await,
        Answer::Trickle(every) => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            for _ in 0..1000 {
                tokio::time::sleep(every).await;
                stream.write_all(b"x").await?;
            }
            Ok(())
        }
    }
}

async fn write_simple(
    stream: &mut TcpStream,
    code: u16,
    extra: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} Answer\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}
