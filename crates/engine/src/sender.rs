//! One HTTP attempt of a delivery.
//!
//! The whole attempt — connect, send, response headers and the body read — runs under one
//! deadline, so an endpoint that trickles its body still times out on time. Redirects are
//! never followed, and at most [`MAX_RESPONSE`] bytes of a response are read: reading stops
//! there, which is not an error.

use std::time::{Duration, Instant};

use crate::guard::Guard;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER, USER_AGENT,
};

/// The most of a response body that is read and kept.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// Why an attempt failed, as the API, the action log and metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Connect,
    Dns,
    Tls,
    Redirect,
    Status,
    Blocked,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connect",
            Failure::Dns => "dns",
            Failure::Tls => "tls",
            Failure::Redirect => "redirect",
            Failure::Status => "status",
            Failure::Blocked => "blocked",
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: Option<u16>,
    pub failure: Option<Failure>,
    pub error: Option<String>,
    pub location: Option<String>,
    pub retry_after: Option<String>,
    pub body: String,
    pub truncated: bool,
    pub duration: Duration,
}

/// What to send: the stored body and the headers that go with it.
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub body: Vec<u8>,
    pub event: &'a str,
    pub delivery_id: &'a str,
    pub secret: Option<&'a str>,
    pub deadline: Duration,
}

#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    user_agent: HeaderValue,
    guard: Guard,
}

impl Sender {
    pub fn new(user_agent: &str, guard: Guard) -> anyhow::Result<Sender> {
        let client = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(guard.clone()))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect on our behalf to addresses we never checked.
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Sender {
            client,
            user_agent: HeaderValue::from_str(user_agent)?,
            guard,
        })
    }

    /// Makes one attempt; never takes longer than `deadline` and never fails outright.
    pub async fn send(&self, out: Outgoing<'_>) -> Answer {
        let started = Instant::now();
        let checked = url::Url::parse(out.url)
            .map_err(|e| format!("invalid URL: {e}"))
            .and_then(|url| self.guard.check_url(&url));
        if let Err(refusal) = checked {
            return failed(Failure::Blocked, refusal, started);
        }
        let headers = match self.headers(&out) {
            Ok(headers) => headers,
            Err(message) => return failed(Failure::Connect, message, started),
        };
        let request = self.client.post(out.url).headers(headers).body(out.body);
        match tokio::time::timeout(out.deadline, exchange(request)).await {
            Ok(Ok(mut answer)) => {
                answer.duration = started.elapsed();
                answer
            }
            Ok(Err(err)) => failed(classify(&err), describe(&err), started),
            Err(_) => failed(
                Failure::Timeout,
                format!("no complete answer within {}s", out.deadline.as_secs()),
                started,
            ),
        }
    }

    fn headers(&self, out: &Outgoing<'_>) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, self.user_agent.clone());
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(secret) = out.secret {
            let mut value = HeaderValue::from_str(secret)
                .map_err(|_| "the webhook's secret cannot be sent as a header".to_owned())?;
            value.set_sensitive(true);
            headers.insert("x-mdoq-secret", value);
        }
        let event = HeaderValue::from_str(out.event).map_err(|e| e.to_string())?;
        headers.insert("x-mdoq-event", event);
        let id = HeaderValue::from_str(out.delivery_id).map_err(|e| e.to_string())?;
        headers.insert("x-mdoq-delivery", id);
        Ok(headers)
    }
}

/// Sends the request and reads at most [`MAX_RESPONSE`] bytes of the answer.
async fn exchange(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let mut response = request.send().await?;
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| lockstep_store::logs::cap(v, 2048))
    };
    let location = header(LOCATION);
    let retry_after = header(RETRY_AFTER);
    let declared = response.content_length();
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            truncated = chunk.len() > room || declared.is_none_or(|n| n > MAX_RESPONSE as u64);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let failure = if status.is_success() {
        None
    } else if status.is_redirection() {
        Some(Failure::Redirect)
    } else {
        Some(Failure::Status)
    };
    Ok(Answer {
        status: Some(status.as_u16()),
        failure,
        error: failure.map(|_| format!("answered {status}")),
        location,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
        truncated,
        duration: Duration::ZERO,
    })
}

fn failed(failure: Failure, error: String, started: Instant) -> Answer {
    Answer {
        status: None,
        failure: Some(failure),
        error: Some(error),
        location: None,
        retry_after: None,
        body: String::new(),
        truncated: false,
        duration: started.elapsed(),
    }
}

/// Names the kind of a transport failure from the error and its causes.
fn classify(err: &reqwest::Error) -> Failure {
    let chain = describe(err).to_ascii_lowercase();
    if chain.contains(crate::guard::BLOCKED) {
        Failure::Blocked
    } else if chain.contains("dns error") || chain.contains("failed to lookup") {
        Failure::Dns
    } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("handshake")
    {
        Failure::Tls
    } else if err.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Connect
    }
}

/// The error with its causes, one after another, without the URL (it may hold a token).
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let text = match e.downcast_ref::<reqwest::Error>() {
            Some(r) => {
                let mut plain = r.to_string();
                if let Some(url) = r.url() {
                    plain = plain.replace(&format!(" ({url})"), "");
                }
                plain
            }
            None => e.to_string(),
        };
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}
