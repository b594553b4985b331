//! Calls to Lockstep's API that outlast the server's deaths: each is sent again until it is
//! answered, and the answer says how many sends it took, so a caller can tell when an
//! earlier send may have been acted on without an answer coming back.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

/// How long a call keeps trying while the server is down before the harness gives up.
const PATIENCE: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// An answer, with how many sends it took.
pub struct Answered {
    pub status: u16,
    pub body: Value,
    pub sends: u32,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // A pooled connection to a killed process would fail on first use.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        Api {
            base: base.to_owned(),
            token: token.to_owned(),
            http,
        }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    /// Sends until an answer below 500 comes back.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Answered {
        let started = Instant::now();
        let mut sends = 0;
        loop {
            sends += 1;
            if let Some(mut answer) = self.once(method.clone(), path, body).await {
                answer.sends = sends;
                return answer;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{method} {path} got no answer for {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends once; `None` when no answer below 500 came, so the call may or may not have
    /// been acted on.
    pub async fn send_once(&self, method: Method, path: &str, body: &Value) -> Option<Answered> {
        let answer = self.once(method, path, Some(body)).await;
        if answer.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        answer
    }

    async fn once(&self, method: Method, path: &str, body: Option<&Value>) -> Option<Answered> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let text = response.text().await.ok()?;
        if status >= 500 {
            return None;
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Some(Answered {
            status,
            body,
            sends: 1,
        })
    }

    /// A read that must succeed.
    pub async fn get(&self, path: &str) -> Value {
        let answer = self.call(Method::GET, path, None).await;
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        answer.body
    }

    /// A write made while no kill can interrupt it, so one send is all it takes.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let answer = self.call(Method::POST, path, Some(&body)).await;
        assert!(
            (200..300).contains(&answer.status) && answer.sends == 1,
            "POST {path}: {} {}",
            answer.status,
            answer.body
        );
        answer.body
    }
}
