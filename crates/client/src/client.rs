//! The API client: one method per call, typed answers, and retries where they are safe.
//!
//! A call is retried only when the connection could not be made, so the request never
//! reached the server and repeating it cannot do anything twice. An answer of any status is
//! final: a 4xx says the request was wrong, and a 5xx may have done part of the work.

use std::time::Duration;

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::error::{api_error, Error};
use crate::events::ReleaseEvents;
use crate::resources::{
    CreatedToken, Delivery, Instance, Lock, LogEntry, LogStatus, NewInstance, NewWebhook, Outcome,
    Page, PageRequest, Release, Token, Webhook, WebhookTest,
};

/// How long one call may take, answer included. Event streams have no such limit.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// When to try a connection again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The pause before the second try; each later pause doubles, up to 5 seconds.
    pub first_pause: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        // Eleven tries wait about 36 s in all: long enough to ride out a restart.
        Retry {
            attempts: 11,
            first_pause: Duration::from_millis(200),
        }
    }
}

impl Retry {
    fn pause_before(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(2));
        (self.first_pause * factor).min(Duration::from_secs(5))
    }
}

/// A client for one Lockstep server, acting with one API token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
    retry: Retry,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.base.as_str())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the server at `server` (such as `http://127.0.0.1:8080`), sending
    /// `token` as its bearer token.
    pub fn new(server: &str, token: impl Into<String>) -> Result<Client, Error> {
        let base = Url::parse(server.trim()).map_err(|_| Error::ServerUrl(server.into()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::ServerUrl(server.into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("lockstep-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::from_transport(server, e))?;
        Ok(Client {
            http,
            base,
            token: token.into(),
            retry: Retry::default(),
        })
    }

    /// Sets when a failed connection is tried again.
    pub fn with_retry(mut self, retry: Retry) -> Client {
        self.retry = retry;
        self
    }

    /// The server this client talks to.
    pub fn server(&self) -> &Url {
        &self.base
    }

    /// The URL of an API path, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, Option<String>)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        let pairs: Vec<_> = query
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(pairs);
        }
        url
    }

    /// Sends a request, trying again while the connection cannot be made.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, Error> {
        let mut attempt = 1;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(&self.token)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }

            match request.send().await {
                Ok(response) => return Ok(response),
                Err(err) if err.is_connect() && attempt < self.retry.attempts => {
                    attempt += 1;
                    tokio::time::sleep(self.retry.pause_before(attempt)).await;
                }
                Err(err) => return Err(Error::from_transport(self.base.as_str(), err)),
            }
        }
    }

    /// One call whose answer is JSON of type `T`, or the server's error.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<T, Error> {
        let bytes = self.answer(method, url, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()))
    }

    /// One call's answer body, once its status says it succeeded.
    async fn answer(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, Error> {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap_or_default());
        let response = self.send(method, url, body, Some(CALL_TIMEOUT)).await?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::from_transport(self.base.as_str(), e))?;
        if !status.is_success() {
            return Err(Error::Api(api_error(status.as_u16(), &bytes)));
        }
        Ok(bytes.to_vec())
    }

    async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, Error> {
        self.call(Method::GET, url, None).await
    }

    async fn post<T: DeserializeOwned>(&self, url: Url, body: impl Serialize) -> Result<T, Error> {
        let body = serde_json::to_value(body).map_err(|e| Error::Decode(e.to_string()))?;
        self.call(Method::POST, url, Some(body)).await
    }

    async fn delete(&self, url: Url) -> Result<(), Error> {
        self.answer(Method::DELETE, url, None).await.map(drop)
    }
}

fn page_query(page: &PageRequest) -> [(&'static str, Option<String>); 2] {
    [
        ("limit", page.limit.map(|n| n.to_string())),
        ("cursor", page.cursor.clone()),
    ]
}

/// What middleware calls: locks and the action log.
impl Client {
    /// Releases the lock a locking delivery carried; `abort` fails the release. Sending the
    /// same release again is answered as the first was, so it is safe to repeat.
    pub async fn release_lock(
        &self,
        lock_token: &str,
        outcome: Outcome,
        message: &str,
    ) -> Result<Lock, Error> {
        let body = json!({"lock": lock_token, "outcome": outcome, "message": message});
        self.post(self.url(&["locks", "release"], &[]), body).await
    }

    /// Appends an entry under `parent` (a payload's `parent_log`) in the release's log.
    pub async fn append_log(
        &self,
        parent: i64,
        message: &str,
        status: LogStatus,
    ) -> Result<LogEntry, Error> {
        let url = self.url(&["logs", &parent.to_string(), "entries"], &[]);
        let body = json!({"message": message, "status": status});
        self.post(url, body).await
    }

    /// The entry `id` and everything under it, in the order it was written.
    pub async fn log(&self, id: i64) -> Result<Vec<LogEntry>, Error> {
        #[derive(serde::Deserialize)]
        struct Entries {
            entries: Vec<LogEntry>,
        }
        let url = self.url(&["logs", &id.to_string()], &[]);
        Ok(self.get::<Entries>(url).await?.entries)
    }
}

/// Releases and their deliveries.
impl Client {
    pub async fn start_release(
        &self,
        instance: &str,
        tag: &str,
        zero_downtime: bool,
    ) -> Result<Release, Error> {
        let body = json!({"instance": instance, "tag": tag, "zero_downtime": zero_downtime});
        self.post(self.url(&["releases"], &[]), body).await
    }

    pub async fn release(&self, id: &str) -> Result<Release, Error> {
        self.get(self.url(&["releases", id], &[])).await
    }

    /// Releases, newest first, of one instance or of all.
    pub async fn releases(
        &self,
        instance: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Release>, Error> {
        let [limit, cursor] = page_query(page);
        let query = [limit, cursor, ("instance", instance.map(str::to_owned))];
        self.get(self.url(&["releases"], &query)).await
    }

    /// Stops a release; its open locks are settled as cancelled.
    pub async fn cancel_release(&self, id: &str, message: &str) -> Result<Release, Error> {
        let url = self.url(&["releases", id, "cancel"], &[]);
        self.post(url, json!({"message": message})).await
    }

    pub async fn release_deliveries(&self, id: &str) -> Result<Vec<Delivery>, Error> {
        let url = self.url(&["releases", id, "deliveries"], &[]);
        Ok(self.get::<Page<Delivery>>(url).await?.items)
    }

    /// The release's progress as the server pushes it, until it ends.
    pub fn release_events(&self, id: &str) -> ReleaseEvents {
        ReleaseEvents::new(self.clone(), id)
    }
}

/// Locks, as operators see them.
impl Client {
    /// Locks, filtered by status (`open`, `released`, `cancelled`) and release.
    pub async fn locks(
        &self,
        status: Option<&str>,
        release: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Lock>, Error> {
        let [limit, cursor] = page_query(page);
        let query = [
            limit,
            cursor,
            ("status", status.map(str::to_owned)),
            ("release", release.map(str::to_owned)),
        ];
        self.get(self.url(&["locks"], &query)).await
    }

    pub async fn lock(&self, id: &str) -> Result<Lock, Error> {
        self.get(self.url(&["locks", id], &[])).await
    }

    /// An operator settles a lock by its public id; the message says why.
    pub async fn force_lock(
        &self,
        id: &str,
        outcome: Outcome,
        message: &str,
    ) -> Result<Lock, Error> {
        let url = self.url(&["locks", id, "release"], &[]);
        self.post(url, json!({"outcome": outcome, "message": message}))
            .await
    }
}

/// Instances, webhooks and tokens: what operators configure.
impl Client {
    pub async fn instances(&self, page: &PageRequest) -> Result<Page<Instance>, Error> {
        self.get(self.url(&["instances"], &page_query(page))).await
    }

    pub async fn instance(&self, id: &str) -> Result<Instance, Error> {
        self.get(self.url(&["instances", id], &[])).await
    }

    pub async fn create_instance(&self, instance: &NewInstance) -> Result<Instance, Error> {
        self.post(self.url(&["instances"], &[]), instance).await
    }

    pub async fn delete_instance(&self, id: &str) -> Result<(), Error> {
        self.delete(self.url(&["instances", id], &[])).await
    }

    pub async fn webhooks(&self, page: &PageRequest) -> Result<Page<Webhook>, Error> {
        self.get(self.url(&["webhooks"], &page_query(page))).await
    }

    pub async fn webhook(&self, id: &str) -> Result<Webhook, Error> {
        self.get(self.url(&["webhooks", id], &[])).await
    }

    pub async fn create_webhook(&self, webhook: &NewWebhook) -> Result<Webhook, Error> {
        self.post(self.url(&["webhooks"], &[]), webhook).await
    }

    /// Turns a webhook on or off; a disabled webhook gets no deliveries.
    pub async fn set_webhook_enabled(&self, id: &str, enabled: bool) -> Result<Webhook, Error> {
        let url = self.url(&["webhooks", id], &[]);
        self.call(Method::PATCH, url, Some(json!({"enabled": enabled})))
            .await
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<(), Error> {
        self.delete(self.url(&["webhooks", id], &[])).await
    }

    /// Sends a sample delivery now and tells what the endpoint did.
    pub async fn test_webhook(&self, id: &str) -> Result<WebhookTest, Error> {
        let url = self.url(&["webhooks", id, "test"], &[]);
        self.post(url, json!({})).await
    }

    pub async fn tokens(&self, page: &PageRequest) -> Result<Page<Token>, Error> {
        self.get(self.url(&["tokens"], &page_query(page))).await
    }

    /// Creates a token; its secret is in the answer and never shown again.
    pub async fn create_token(&self, name: &str, scopes: &[String]) -> Result<CreatedToken, Error> {
        let body = json!({"name": name, "scopes": scopes});
        self.post(self.url(&["tokens"], &[]), body).await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), Error> {
        self.delete(self.url(&["tokens", id], &[])).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_and_keep_a_prefix_of_the_server_address() {
        let client = Client::new("https://ops.example.com/lockstep/", "t").unwrap();
        let url = client.url(&["instances", "a/b c"], &[("limit", Some("5".into()))]);
        assert_eq!(
            url.as_str(),
            "https://ops.example.com/lockstep/api/v1/instances/a%2Fb%20c?limit=5"
        );
        let plain = Client::new("http://127.0.0.1:8080", "t").unwrap();
        let url = plain.url(&["locks"], &[("status", None)]);
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/api/v1/locks");
    }

    #[test]
    fn a_server_address_that_is_not_http_is_refused() {
        for bad in ["127.0.0.1:8080", "ftp://x", "not a url", "mailto:a@b"] {
            assert!(
                matches!(Client::new(bad, "t"), Err(Error::ServerUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn pauses_between_tries_double_and_stop_growing_at_five_seconds() {
        let retry = Retry {
            attempts: 10,
            first_pause: Duration::from_millis(200),
        };
        let pauses: Vec<_> = (2..=8).map(|n| retry.pause_before(n).as_millis()).collect();
        assert_eq!(pauses, [200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn the_token_never_appears_in_debug_output() {
        let client = Client::new("http://127.0.0.1:1", "lsk_secret").unwrap();
        assert!(!format!("{client:?}").contains("lsk_secret"));
    }
}
