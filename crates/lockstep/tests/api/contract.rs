//! What receivers see: the headers and bytes of the vendor contract, exactly.

use std::time::Duration;

use serde_json::json;

use crate::support::{Answer, Receiver, TestApp};

pub async fn deliveries_carry_exactly_the_contract_headers_and_body() {
    let app = TestApp::spawn().await;
    let plain = Receiver::start(Answer::Status(200)).await;
    let locking = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release"}]);
    app.webhook(
        &plain.url("/hook"),
        events,
        json!({"secret": "s3cret-value"}),
    )
    .await;
    let events = json!([{"event": "before_release", "locking": true}]);
    app.webhook(&locking.url("/lock"), events, json!({})).await;

    let release = app.start_release("shop", "v2.4.1").await;
    let with_secret = &plain.wait_for(1, Duration::from_secs(10)).await[0];
    let with_lock = &locking.wait_for(1, Duration::from_secs(10)).await[0];

    assert_eq!(with_secret.request_line, "POST /hook HTTP/1.1");
    assert_eq!(with_secret.header("content-type"), Some("application/json"));
    assert_eq!(
        with_secret.header("user-agent"),
        Some("MDOQ Webhook (https://www.mdoq.io)")
    );
    assert_eq!(with_secret.header("accept"), Some("application/json"));
    assert_eq!(with_secret.header("x-mdoq-secret"), Some("s3cret-value"));
    assert_eq!(with_secret.header("x-mdoq-event"), Some("before_release"));
    assert!(with_secret
        .header("x-mdoq-delivery")
        .unwrap()
        .starts_with("dlv_"));
    assert_eq!(
        with_secret.header("content-length"),
        Some(with_secret.body.len().to_string().as_str())
    );
    assert_eq!(with_secret.header("transfer-encoding"), None);
    assert_eq!(with_lock.header("x-mdoq-secret"), None);

    let body = with_secret.json();
    assert_eq!(body["secret"], "s3cret-value");
    assert_eq!(body["parent_log"], release["parent_log"]);
    assert!(body["parent_log"].is_i64());
    assert_eq!(
        body["release"],
        json!({"tag": "v2.4.1", "zero_downtime": true})
    );
    assert_eq!(body["event"], "before_release");
    assert_eq!(body["instance"]["id"], "shop");
    assert_eq!(body["instance"]["attributes"], json!({"php": "8.3"}));
    assert!(
        body.get("lock").is_none(),
        "a plain delivery carries no lock"
    );

    let body = with_lock.json();
    assert!(
        body.get("secret").is_none(),
        "no secret configured, none sent"
    );
    assert!(body["lock"].as_str().unwrap().len() >= 43);
}

pub async fn every_attempt_of_a_delivery_sends_the_same_bytes_and_id() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(500)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "after_release"}]);
    app.webhook(&receiver.url("/"), events, json!({"secret": "k"}))
        .await;

    app.start_release("shop", "v1").await;
    let seen = receiver.wait_for(3, Duration::from_secs(15)).await;

    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(seen[1].body, seen[2].body);
    assert_eq!(
        seen[0].header("x-mdoq-delivery"),
        seen[2].header("x-mdoq-delivery")
    );
}

pub async fn the_instance_is_sent_as_it_was_when_the_event_fired() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}, {"event": "after_release"}]);
    app.webhook(&receiver.url("/"), events, json!({})).await;

    let release = app.start_release("shop", "v1").await;
    let first = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    let patch = json!({"attributes": {"php": "8.4"}});
    let (status, _) = app
        .call("PATCH", "/api/v1/instances/shop", &app.admin, Some(patch))
        .await;
    assert!(status.is_success());
    let hook = app.token(&["hook"]).await;
    app.release_lock(&hook, first["lock"].as_str().unwrap(), "continue")
        .await;
    app.wait_stage(release["id"].as_str().unwrap(), "closed")
        .await;

    let last = receiver.of_event("after_release")[0].json();
    assert_eq!(first["instance"]["attributes"]["php"], "8.3");
    assert_eq!(last["instance"]["attributes"]["php"], "8.4");
}

pub async fn a_trickling_endpoint_times_out_on_the_webhooks_deadline() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Trickle(Duration::from_millis(300))).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release"}]);
    app.webhook(&receiver.url("/"), events, json!({"timeout_seconds": 2}))
        .await;

    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    let deliveries = wait_attempts(&app, id, 1).await;
    let attempt = &deliveries[0]["attempt_log"][0];

    assert_eq!(attempt["error_kind"], "timeout");
    let ms = attempt["duration_ms"].as_i64().unwrap();
    assert!((2000..3500).contains(&ms), "timed out after {ms} ms");
}

pub async fn a_redirect_is_a_failed_attempt_that_keeps_its_location_and_is_not_followed() {
    let app = TestApp::spawn().await;
    let receiver =
        Receiver::start(Answer::Redirect(302, "http://127.0.0.1:9/elsewhere".into())).await;
    app.instance("shop", json!([])).await;
    app.webhook(
        &receiver.url("/"),
        json!([{"event": "before_release"}]),
        json!({}),
    )
    .await;

    let release = app.start_release("shop", "v1").await;
    let deliveries = wait_attempts(&app, release["id"].as_str().unwrap(), 1).await;
    let attempt = &deliveries[0]["attempt_log"][0];

    assert_eq!(attempt["error_kind"], "redirect");
    assert_eq!(attempt["status_code"], 302);
    assert_eq!(attempt["location"], "http://127.0.0.1:9/elsewhere");
    assert_eq!(receiver.requests().len(), 1);
}

pub async fn at_most_64_kib_of_a_response_is_read_and_kept() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Big(1024 * 1024)).await;
    app.instance("shop", json!([])).await;
    app.webhook(
        &receiver.url("/"),
        json!([{"event": "before_release"}]),
        json!({}),
    )
    .await;

    let release = app.start_release("shop", "v1").await;
    let deliveries = wait_attempts(&app, release["id"].as_str().unwrap(), 1).await;
    let attempt = &deliveries[0]["attempt_log"][0];

    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["error_kind"], serde_json::Value::Null);
    assert_eq!(attempt["response_body"].as_str().unwrap().len(), 64 * 1024);
    assert_eq!(attempt["response_truncated"], true);
}

/// Waits until the release's first delivery has `n` attempts, and returns its deliveries.
pub async fn wait_attempts(app: &TestApp, release: &str, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..400 {
        let list = app
            .get(&format!("/api/v1/releases/{release}/deliveries"))
            .await;
        let items = list["items"].as_array().unwrap().clone();
        let done = items
            .first()
            .and_then(|d| d["attempt_log"].as_array())
            .map_or(0, Vec::len);
        if done >= n {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the delivery never had {n} attempts");
}
