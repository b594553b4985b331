//! Hostile endpoints: servers on loopback that stall, flood, lie, reset, redirect, speak the
//! wrong protocol or present bad certificates. Every attempt must end by its deadline with
//! the right kind, the server's memory must stay bounded, and the server must keep serving.
//!
//! Webhooks here retry only after an hour unless a test says otherwise, so each endpoint
//! sees exactly the attempts a test reasons about.

mod certificates;
mod endpoint;

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::contract::wait_attempts;
use crate::support::TestApp;
use endpoint::{Endpoint, Misbehaviour};

/// The deadline the hostile webhooks get, in seconds.
const DEADLINE: i64 = 2;

/// Creates a webhook for `url` with `extra` settings, runs a release, and returns the first
/// attempt of its delivery once it is recorded.
async fn first_attempt(app: &TestApp, url: &str, extra: Value) -> Value {
    let mut settings = json!({"timeout_seconds": DEADLINE, "retry_schedule": "1h"});
    settings
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    app.instance("shop", json!([])).await;
    app.webhook(url, json!([{"event": "before_release"}]), settings)
        .await;

    let release = app.start_release("shop", "v1").await;
    let deliveries = wait_attempts(app, release["id"].as_str().unwrap(), 1).await;
    deliveries[0]["attempt_log"][0].clone()
}

/// The attempt ended by its deadline, with a second's grace for the bookkeeping.
fn assert_within_deadline(attempt: &Value) {
    let ms = attempt["duration_ms"].as_i64().unwrap();
    assert!(
        ms < DEADLINE * 1000 + 1000,
        "the attempt took {ms} ms: {attempt}"
    );
}

/// The attempt failed quickly, without waiting for the deadline at all.
fn assert_failed_fast(attempt: &Value) {
    let ms = attempt["duration_ms"].as_i64().unwrap();
    assert!(
        ms < DEADLINE * 1000 - 500,
        "the attempt took {ms} ms: {attempt}"
    );
}

async fn assert_still_serving(app: &TestApp) {
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200, "log:\n{}", app.server_log());
}

/// The server process's peak resident memory so far, in KiB, read from `/proc`.
fn peak_memory_kib(app: &TestApp) -> u64 {
    let marker = format!("LOCKSTEP_DATABASE_URL={}", app.db.url);
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            environ
                .split(|b| *b == 0)
                .any(|var| var == marker.as_bytes())
        })
        .expect("the server process");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits until the endpoint has ended `n` answers, which it does when the sender hangs up.
async fn wait_finished(endpoint: &Endpoint, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while endpoint.finished() < n {
        assert!(Instant::now() < deadline, "the sender never hung up");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn headers_then_a_byte_every_few_seconds_times_out_on_the_deadline() {
    let app = TestApp::spawn().await;
    let trickle = Endpoint::start(Misbehaviour::Trickle(Duration::from_millis(1500))).await;

    let attempt = first_attempt(&app, &trickle.url("/"), json!({})).await;

    assert_eq!(attempt["error_kind"], "timeout", "{attempt}");
    assert_eq!(attempt["status_code"], 200, "the status that came is kept");
    assert!(attempt["duration_ms"].as_i64().unwrap() >= DEADLINE * 1000);
    assert_within_deadline(&attempt);
    assert_still_serving(&app).await;
}

pub async fn headers_then_silence_times_out_on_the_deadline() {
    let app = TestApp::spawn().await;
    let silent = Endpoint::start(Misbehaviour::Silence).await;

    let attempt = first_attempt(&app, &silent.url("/"), json!({})).await;

    assert_eq!(attempt["error_kind"], "timeout", "{attempt}");
    assert!(attempt["duration_ms"].as_i64().unwrap() >= DEADLINE * 1000);
    assert_within_deadline(&attempt);
    assert_still_serving(&app).await;
}

pub async fn a_50_mib_body_is_cut_at_64_kib_without_reading_the_rest_or_growing_memory() {
    let app = TestApp::spawn().await;
    let huge = Endpoint::start(Misbehaviour::Huge(50 * 1024 * 1024)).await;
    let before = peak_memory_kib(&app);

    let attempt = first_attempt(&app, &huge.url("/"), json!({})).await;
    wait_finished(&huge, 1).await;
    let growth = peak_memory_kib(&app).saturating_sub(before);

    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["error_kind"], Value::Null, "{attempt}");
    assert_eq!(attempt["response_truncated"], true);
    assert_eq!(attempt["response_body"].as_str().unwrap().len(), 64 * 1024);
    assert!(
        huge.written() < 40 * 1024 * 1024,
        "the sender read {} bytes of the body",
        huge.written()
    );
    assert!(growth < 24 * 1024, "peak memory grew by {growth} KiB");
    assert_within_deadline(&attempt);
    assert_still_serving(&app).await;
}

pub async fn an_endless_chunked_body_is_cut_at_64_kib_and_the_connection_dropped() {
    let app = TestApp::spawn().await;
    let endless = Endpoint::start(Misbehaviour::EndlessChunks).await;
    let before = peak_memory_kib(&app);

    let attempt = first_attempt(&app, &endless.url("/"), json!({})).await;
    wait_finished(&endless, 1).await;
    let growth = peak_memory_kib(&app).saturating_sub(before);

    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["error_kind"], Value::Null, "{attempt}");
    assert_eq!(attempt["response_truncated"], true);
    assert_eq!(attempt["response_body"].as_str().unwrap().len(), 64 * 1024);
    assert!(growth < 24 * 1024, "peak memory grew by {growth} KiB");
    assert_within_deadline(&attempt);
    assert_still_serving(&app).await;
}

pub async fn a_content_length_far_larger_than_the_body_that_comes_fails_when_it_ends() {
    let app = TestApp::spawn().await;
    let short = Misbehaviour::ShortBody {
        promised: 10 * 1024 * 1024,
        sent: 100,
    };
    let liar = Endpoint::start(short).await;

    let attempt = first_attempt(&app, &liar.url("/"), json!({})).await;

    assert_eq!(attempt["error_kind"], "connect", "{attempt}");
    assert_eq!(attempt["status_code"], 200, "the status that came is kept");
    assert_eq!(attempt["response_body"].as_str().unwrap().len(), 100);
    assert_failed_fast(&attempt);
    assert_still_serving(&app).await;
}

pub async fn a_connection_reset_mid_response_is_a_connect_failure() {
    let app = TestApp::spawn().await;
    let resetting = Endpoint::start(Misbehaviour::ResetMidBody).await;

    let attempt = first_attempt(&app, &resetting.url("/"), json!({})).await;

    assert_eq!(attempt["error_kind"], "connect", "{attempt}");
    assert!(
        attempt["error"].as_str().unwrap().contains("reset"),
        "{attempt}"
    );
    assert_failed_fast(&attempt);
    assert_still_serving(&app).await;
}

pub async fn a_refused_connection_is_a_connect_failure() {
    let app = TestApp::spawn().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);

    let attempt = first_attempt(&app, &url, json!({})).await;

    assert_eq!(attempt["error_kind"], "connect", "{attempt}");
    assert_eq!(attempt["status_code"], Value::Null);
    assert_failed_fast(&attempt);
    assert_still_serving(&app).await;
}

pub async fn a_name_that_does_not_resolve_is_a_dns_failure() {
    let app = TestApp::spawn().await;

    // `.invalid` never resolves (RFC 6761), and the address policy has nothing to refuse.
    let attempt = first_attempt(&app, "http://lockstep-hostile.invalid/hook", json!({})).await;

    assert_eq!(attempt["error_kind"], "dns", "{attempt}");
    assert!(
        !attempt["error"].as_str().unwrap().contains("blocked"),
        "{attempt}"
    );
    assert_within_deadline(&attempt);
    assert_still_serving(&app).await;
}

pub async fn header_lines_that_never_end_fail_without_growing_memory() {
    let app = TestApp::spawn().await;
    let endless = Endpoint::start(Misbehaviour::EndlessHeaders).await;
    let before = peak_memory_kib(&app);

    let attempt = first_attempt(&app, &endless.url("/"), json!({})).await;
    let growth = peak_memory_kib(&app).saturating_sub(before);

    assert_eq!(attempt["error_kind"], "connect", "{attempt}");
    assert!(growth < 24 * 1024, "peak memory grew by {growth} KiB");
    assert_failed_fast(&attempt);
    assert_still_serving(&app).await;
}

pub async fn an_http2_answer_with_a_stream_reset_fails_fast_as_connect() {
    let app = TestApp::spawn().await;
    let h2 = Endpoint::start(Misbehaviour::Http2Frames).await;

    let attempt = first_attempt(&app, &h2.url("/"), json!({})).await;

    assert_eq!(attempt["error_kind"], "connect", "{attempt}");
    assert_failed_fast(&attempt);
    assert_still_serving(&app).await;
}

pub async fn redirects_301_302_and_307_are_never_followed() {
    let app = TestApp::spawn().await;
    let target = Endpoint::start(Misbehaviour::Fine).await;
    let mut redirecting = Vec::new();
    for code in [301, 302, 307] {
        let to = target.url(&format!("/moved-{code}"));
        redirecting.push(Endpoint::start(Misbehaviour::Redirect(code, to)).await);
    }
    app.instance("shop", json!([])).await;
    for endpoint in &redirecting {
        let settings = json!({"timeout_seconds": DEADLINE, "retry_schedule": "1h"});
        let events = json!([{"event": "before_release"}]);
        app.webhook(&endpoint.url("/"), events, settings).await;
    }

    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    app.wait_stage(id, "closed").await;
    let deliveries = app.get(&format!("/api/v1/releases/{id}/deliveries")).await;

    let mut codes = Vec::new();
    for delivery in deliveries["items"].as_array().unwrap() {
        let attempt = &delivery["attempt_log"][0];
        assert_eq!(attempt["error_kind"], "redirect", "{attempt}");
        let code = attempt["status_code"].as_i64().unwrap();
        assert_eq!(attempt["location"], target.url(&format!("/moved-{code}")));
        codes.push(code);
    }
    codes.sort();
    assert_eq!(codes, [301, 302, 307]);
    for endpoint in &redirecting {
        assert_eq!(endpoint.arrivals().len(), 1, "one request per redirect");
    }
    assert!(target.arrivals().is_empty(), "a redirect was followed");
}

pub async fn a_connection_the_endpoint_stopped_keeping_alive_never_fails_the_next_attempt() {
    let app = TestApp::spawn().await;
    let endpoint = Endpoint::start(Misbehaviour::OneAnswerPerConnection).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release"}, {"event": "before_release_complete"},
        {"event": "after_release"}]);
    let settings = json!({"timeout_seconds": DEADLINE, "retry_schedule": "1h"});
    app.webhook(&endpoint.url("/"), events, settings).await;

    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    app.wait_stage(id, "closed").await;
    let deliveries = app.get(&format!("/api/v1/releases/{id}/deliveries")).await;

    for delivery in deliveries["items"].as_array().unwrap() {
        let attempt = &delivery["attempt_log"][0];
        assert_eq!(attempt["status_code"], 200, "{attempt}");
    }
    assert_eq!(endpoint.arrivals().len(), 3);
    assert_eq!(
        endpoint.refused_on_reuse(),
        0,
        "an attempt reused a spent connection"
    );
}

pub async fn a_self_signed_certificate_fails_as_tls() {
    let app = TestApp::spawn().await;
    let presented = certificates::self_signed();
    let endpoint = Endpoint::start_tls(Misbehaviour::Fine, presented.acceptor).await;

    let attempt = first_attempt(&app, &endpoint.url("/"), json!({})).await;

    assert_eq!(attempt["error_kind"], "tls", "{attempt}");
    assert!(
        endpoint.arrivals().is_empty(),
        "no request after a failed handshake"
    );
    assert_failed_fast(&attempt);
}

pub async fn an_expired_certificate_fails_as_tls_even_from_a_trusted_ca() {
    let app = TestApp::spawn().await;
    let presented = certificates::expired_from_authority();
    let endpoint = Endpoint::start_tls(Misbehaviour::Fine, presented.acceptor).await;
    let trust = json!({"ca_certificate": presented.authority_pem});

    let attempt = first_attempt(&app, &endpoint.url("/"), trust).await;

    assert_eq!(attempt["error_kind"], "tls", "{attempt}");
    let error = attempt["error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("expired"), "{attempt}");
    assert!(endpoint.arrivals().is_empty());
}

pub async fn a_webhooks_own_ca_certificate_lets_a_self_signed_endpoint_pass() {
    let app = TestApp::spawn().await;
    let presented = certificates::self_signed();
    let endpoint = Endpoint::start_tls(Misbehaviour::Fine, presented.acceptor).await;
    let trust = json!({"ca_certificate": presented.authority_pem});

    let attempt = first_attempt(&app, &endpoint.url("/"), trust).await;

    assert_eq!(attempt["status_code"], 200, "{attempt}");
    assert_eq!(attempt["error_kind"], Value::Null);
    assert_eq!(endpoint.arrivals().len(), 1);
}

pub async fn a_ca_certificate_that_does_not_parse_is_a_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let presented = certificates::self_signed();
    let key_only = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let events = json!([{"event": "before_release"}]);

    for bad in ["not a certificate", key_only] {
        let body = json!({"url": "https://example.com/", "events": events, "ca_certificate": bad});
        let (status, answer) = app
            .call("POST", "/api/v1/webhooks", &app.admin, Some(body))
            .await;
        assert_eq!(status, 422, "{bad}: {answer}");
        assert_eq!(answer["error"]["field"], "ca_certificate", "{answer}");
    }
    let body = json!({"url": "https://example.com/", "events": events,
        "ca_certificate": presented.authority_pem});
    let webhook = app.post("/api/v1/webhooks", body).await;
    let path = format!("/api/v1/webhooks/{}", webhook["id"].as_str().unwrap());
    let patch = json!({"ca_certificate": "garbage"});
    let (status, _) = app.call("PATCH", &path, &app.admin, Some(patch)).await;
    let kept = app.get(&path).await;
    let patch = json!({"ca_certificate": null});
    let (_, cleared) = app.call("PATCH", &path, &app.admin, Some(patch)).await;

    assert_eq!(status, 422);
    assert_eq!(kept["ca_certificate"], presented.authority_pem);
    assert_eq!(cleared["ca_certificate"], Value::Null);
}

/// When the first two attempts reached an endpoint that answers 429 with
/// `Retry-After: value`, on a webhook whose own schedule would retry after about a second.
async fn attempts_after_429(value: &str) -> [Instant; 2] {
    let app = TestApp::spawn().await;
    let extra = format!("Retry-After: {value}\r\n");
    let busy = Endpoint::start(Misbehaviour::Status(429, extra)).await;
    app.instance("shop", json!([])).await;
    let settings = json!({"timeout_seconds": DEADLINE, "retry_schedule": "1s,8s"});
    let events = json!([{"event": "before_release"}]);
    app.webhook(&busy.url("/"), events, settings).await;

    app.start_release("shop", "v1").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while busy.arrivals().len() < 2 {
        assert!(Instant::now() < deadline, "no second attempt came");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_still_serving(&app).await;
    let arrivals = busy.arrivals();
    [arrivals[0], arrivals[1]]
}

pub async fn a_429_with_retry_after_in_seconds_delays_the_next_attempt_at_least_as_asked() {
    let [first, second] = attempts_after_429("3").await;

    let gap = second - first;
    assert!(gap >= Duration::from_millis(2950), "retried after {gap:?}");
}

pub async fn a_429_with_retry_after_as_an_http_date_delays_the_next_attempt_until_then() {
    let (wall, clock) = (SystemTime::now(), Instant::now());
    let asked = wall + Duration::from_secs(6);

    let [_, second] = attempts_after_429(&httpdate::fmt_http_date(asked)).await;

    // The date holds whole seconds, so it may name up to a second before `asked`.
    let came = wall + (second - clock);
    let early = asked.duration_since(came).unwrap_or_default();
    assert!(
        early <= Duration::from_secs(1),
        "retried {early:?} before the date"
    );
}

pub async fn a_429_with_a_malformed_retry_after_falls_back_to_the_schedule() {
    let [first, second] = attempts_after_429("after lunch").await;

    let gap = second - first;
    assert!(gap < Duration::from_secs(6), "retried after {gap:?}");
}
