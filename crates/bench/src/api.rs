//! The calls the bench makes to Lockstep's HTTP API. Each fails with the server's answer when
//! it is not a success, so a broken server stops the run instead of skewing a figure.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Value};

/// A client of one server with one token; cheap to clone, connections are shared.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A release as its start call answered.
#[derive(Debug, Clone)]
pub struct Started {
    pub id: String,
    pub parent_log: i64,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    /// The same server, as another token.
    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {path} was answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn create_instance(&self, id: &str) -> anyhow::Result<()> {
        let body = json!({"id": id, "name": format!("Bench {id}"),
            "url": "https://shop.example.com", "attributes": {"php": "8.3"}});
        self.call(Method::POST, "/api/v1/instances", Some(&body))
            .await
            .map(drop)
    }

    /// A webhook on `url` subscribed to each `(event, locking)`.
    pub async fn create_webhook(&self, url: &str, events: &[(&str, bool)]) -> anyhow::Result<()> {
        let events: Vec<Value> = events
            .iter()
            .map(|(event, locking)| json!({"event": event, "locking": locking}))
            .collect();
        let body = json!({"url": url, "events": events, "secret": "bench-secret"});
        self.call(Method::POST, "/api/v1/webhooks", Some(&body))
            .await
            .map(drop)
    }

    pub async fn create_token(&self, scopes: &[&str]) -> anyhow::Result<String> {
        let body = json!({"name": "lockstep-bench", "scopes": scopes});
        let answer = self
            .call(Method::POST, "/api/v1/tokens", Some(&body))
            .await?;
        let token = answer["token"].as_str().context("a token in the answer")?;
        Ok(token.to_owned())
    }

    pub async fn start_release(&self, instance: &str) -> anyhow::Result<Started> {
        let body = json!({"instance": instance, "tag": "v1.0.0", "zero_downtime": true});
        let answer = self
            .call(Method::POST, "/api/v1/releases", Some(&body))
            .await?;
        Ok(Started {
            id: answer["id"].as_str().context("a release id")?.to_owned(),
            parent_log: answer["parent_log"].as_i64().context("a parent_log")?,
        })
    }

    pub async fn release(&self, id: &str) -> anyhow::Result<Value> {
        let path = format!("/api/v1/releases/{id}");
        self.call(Method::GET, &path, None).await
    }

    /// Polls the release until `check` holds, failing after `limit`.
    pub async fn wait_release(
        &self,
        id: &str,
        limit: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let release = self.release(id).await?;
            if check(&release) {
                return Ok(release);
            }
            if Instant::now() > deadline {
                bail!("release {id} did not get there within {limit:?}; last seen: {release}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub async fn release_lock(&self, lock: &str) -> anyhow::Result<()> {
        let body = json!({"lock": lock, "outcome": "continue", "message": "lockstep-bench"});
        self.call(Method::POST, "/api/v1/locks/release", Some(&body))
            .await
            .map(drop)
    }

    pub async fn append_log(&self, parent_log: i64) -> anyhow::Result<()> {
        let path = format!("/api/v1/logs/{parent_log}/entries");
        let body = json!({"message": "cache warmed by lockstep-bench", "status": "success"});
        self.call(Method::POST, &path, Some(&body)).await.map(drop)
    }

    pub async fn healthz(&self) -> anyhow::Result<()> {
        self.call(Method::GET, "/healthz", None).await.map(drop)
    }

    /// The sum of a metric's samples whose name and labels are `series`, e.g.
    /// `lockstep_releases_ended_total{state="closed"}`; zero when there are none yet.
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .context("GET /metrics")?;
        let text = response.error_for_status()?.text().await?;
        Ok(text
            .lines()
            .filter_map(|line| line.strip_prefix(series))
            .filter_map(|rest| rest.strip_prefix(' '))
            .filter_map(|value| value.trim().parse::<f64>().ok())
            .sum())
    }

    /// Polls a metric every `every` until it reaches `target`, failing after `limit`.
    pub async fn wait_metric(
        &self,
        series: &str,
        target: usize,
        every: Duration,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.metric(series).await?;
            if value >= target as f64 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{series} reached {value} of {target} within {limit:?}");
            }
            tokio::time::sleep(every).await;
        }
    }
}
