//! One HTTP attempt of a delivery.
//!
//! The whole attempt — connect, send, response headers and the body read — runs under one
//! deadline, so an endpoint that trickles its body still times out on time. Redirects are
//! never followed, and at most [`MAX_RESPONSE`] bytes of a response are read: reading stops
//! there, which is not an error. Memory per attempt is bounded by that cap, whatever the
//! endpoint sends.
//!
//! - [`failure`]: the kinds of failed attempts, told apart by the types in an error's causes.
//! - [`lookup`]: name lookups through the outbound address policy, with typed failures.
//! - [`trust`]: the public roots or a webhook's own CA certificate, and a client for each.

mod failure;
mod lookup;
mod trust;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER, USER_AGENT,
};
use tokio::time::{timeout_at, Instant};

use crate::guard::Guard;
use failure::{classify, describe};
use trust::Clients;

pub use failure::Failure;
pub use trust::{CaCertificate, CaError, MAX_CA_PEM};

/// The most of a response body that is read and kept.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status the endpoint answered with, even when the attempt failed after it.
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
    /// The webhook's own CA certificate (PEM), trusted instead of the public roots.
    pub ca_certificate: Option<&'a str>,
    /// The signing keys' bytes: each adds a Standard Webhooks signature.
    pub signing_keys: Vec<Vec<u8>>,
    /// The webhook's own extra headers; their names never collide with the contract's.
    pub headers: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct Sender {
    clients: Arc<Clients>,
    user_agent: HeaderValue,
    guard: Guard,
}

impl Sender {
    pub fn new(user_agent: &str, guard: Guard) -> anyhow::Result<Sender> {
        let resolver = Arc::new(lookup::Lookup(guard.clone()));
        let clients = Clients::new(move || {
            reqwest::Client::builder()
                .dns_resolver(resolver.clone())
                .redirect(reqwest::redirect::Policy::none())
                // A proxy would connect on our behalf to addresses we never checked.
                .no_proxy()
                // Every attempt opens its own connection. A pooled one may have been closed by
                // the endpoint (keep-alive ran out) just as it is reused, and the attempt would
                // fail for nothing; a handshake per attempt is cheap at webhook volumes.
                .pool_max_idle_per_host(0)
        })?;
        Ok(Sender {
            clients: Arc::new(clients),
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
        let client = match self.clients.for_ca(out.ca_certificate) {
            Ok(client) => client,
            Err(message) => return failed(Failure::Tls, message, started),
        };

        let request = client.post(out.url).headers(headers).body(out.body);
        let mut answer = exchange(request, started, out.deadline).await;
        answer.duration = started.elapsed();
        answer
    }

    fn headers(&self, out: &Outgoing<'_>) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        for (name, value) in &out.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| "a custom header name is invalid".to_owned())?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| "a custom header value is invalid".to_owned())?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
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
        headers.insert("x-mdoq-delivery", id.clone());
        sign(&mut headers, out, id)?;
        Ok(headers)
    }
}

/// Adds the Standard Webhooks headers, signing the exact bytes sent at this attempt's time.
fn sign(headers: &mut HeaderMap, out: &Outgoing<'_>, id: HeaderValue) -> Result<(), String> {
    if out.signing_keys.is_empty() {
        return Ok(());
    }
    let timestamp = lockstep_core::time::now_ms() / 1000;
    let signature =
        lockstep_core::signature::header(&out.signing_keys, out.delivery_id, timestamp, &out.body);
    headers.insert("webhook-id", id);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    let signature = HeaderValue::from_str(&signature).map_err(|e| e.to_string())?;
    headers.insert("webhook-signature", signature);
    Ok(())
}

/// Sends the request and reads at most [`MAX_RESPONSE`] bytes of the answer, all before
/// `deadline` after `started`.
async fn exchange(request: reqwest::RequestBuilder, started: Instant, limit: Duration) -> Answer {
    let deadline = started + limit;
    let mut response = match timeout_at(deadline, request.send()).await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => return failed(classify(&err), describe(&err), started),
        Err(_) => {
            let message = format!("no answer within {}s", limit.as_secs());
            return failed(Failure::Timeout, message, started);
        }
    };

    let mut answer = head(&response);
    let mut body = Vec::new();
    let read = timeout_at(deadline, read_capped(&mut response, &mut body)).await;
    let status = response.status();
    match read {
        Ok(Ok(truncated)) => answer.truncated = truncated,
        Ok(Err(err)) => {
            let why = format!(
                "answered {status}, then the body broke off: {}",
                describe(&err)
            );
            body_failed(&mut answer, classify(&err), why);
        }
        Err(_) => {
            let why = format!(
                "answered {status}, but the body did not end within {}s",
                limit.as_secs()
            );
            body_failed(&mut answer, Failure::Timeout, why);
        }
    }
    answer.body = String::from_utf8_lossy(&body).into_owned();
    answer
}

/// What the status line and headers alone say about the attempt.
fn head(response: &reqwest::Response) -> Answer {
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(|v| lockstep_store::logs::cap(v, 2048))
    };
    let failure = if status.is_success() {
        None
    } else if status.is_redirection() {
        Some(Failure::Redirect)
    } else {
        Some(Failure::Status)
    };
    Answer {
        status: Some(status.as_u16()),
        failure,
        error: failure.map(|_| format!("answered {status}")),
        location: header(LOCATION),
        retry_after: header(RETRY_AFTER),
        body: String::new(),
        truncated: false,
        duration: Duration::ZERO,
    }
}

/// A body that broke off or stalled fails a successful answer; an answer that had already
/// failed keeps its status as the reason, with the body's trouble added to its error.
fn body_failed(answer: &mut Answer, failure: Failure, why: String) {
    if answer.failure.is_none() {
        answer.failure = Some(failure);
    }
    answer.error = Some(why);
}

/// Reads the body into `into` until it ends or holds [`MAX_RESPONSE`] bytes; answers whether
/// there was more than that.
async fn read_capped(
    response: &mut reqwest::Response,
    into: &mut Vec<u8>,
) -> Result<bool, reqwest::Error> {
    let declared = response.content_length();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE - into.len();
        if chunk.len() >= room {
            into.extend_from_slice(&chunk[..room]);
            let more = chunk.len() > room || declared.is_none_or(|n| n > MAX_RESPONSE as u64);
            return Ok(more);
        }
        into.extend_from_slice(&chunk);
    }
    Ok(false)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn sender() -> Sender {
        let loopback = crate::guard::parse_network("127.0.0.0/8").unwrap();
        Sender::new("test", Guard::new(vec![loopback])).unwrap()
    }

    fn outgoing(url: &str) -> Outgoing<'_> {
        Outgoing {
            url,
            body: b"{}".to_vec(),
            event: "before_release",
            delivery_id: "dlv_test",
            secret: None,
            deadline: Duration::from_secs(2),
            ca_certificate: None,
            signing_keys: Vec::new(),
            headers: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_port_nobody_listens_on_is_a_connect_failure() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);

        let answer = sender().send(outgoing(&url)).await;

        assert_eq!(answer.failure, Some(Failure::Connect), "{:?}", answer.error);
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_a_dns_failure() {
        let answer = sender()
            .send(outgoing("http://lockstep-test.invalid/"))
            .await;

        assert_eq!(answer.failure, Some(Failure::Dns), "{:?}", answer.error);
    }

    #[tokio::test]
    async fn an_address_the_policy_refuses_is_blocked_before_any_connection() {
        let strict = Sender::new("test", Guard::default()).unwrap();

        let answer = strict.send(outgoing("http://10.0.0.1/")).await;

        assert_eq!(answer.failure, Some(Failure::Blocked));
        assert!(answer.duration < Duration::from_millis(500));
    }

    #[tokio::test]
    async fn plain_http_where_tls_was_expected_is_a_tls_failure() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let plain = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
            let _ = stream.write_all(plain).await;
        });

        let answer = sender().send(outgoing(&url)).await;

        assert_eq!(answer.failure, Some(Failure::Tls), "{:?}", answer.error);
    }

    #[tokio::test]
    async fn a_ca_certificate_that_cannot_be_read_fails_the_attempt_as_tls() {
        let mut out = outgoing("https://127.0.0.1:9/");
        out.ca_certificate = Some("not a certificate");

        let answer = sender().send(out).await;

        assert_eq!(answer.failure, Some(Failure::Tls));
        assert!(answer.error.unwrap().contains("CA certificate"));
    }
}
