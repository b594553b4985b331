//! Delivery you can trust: retries, endpoint health, lock expiry, redelivery, operator
//! control.

use std::time::Duration;

use serde_json::json;

use crate::contract::wait_attempts;
use crate::support::{messages, position, Answer, Receiver, TestApp};

pub async fn a_failing_endpoint_gets_exactly_the_scheduled_attempts_then_the_delivery_fails() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(500)).await;
    app.instance("shop", json!([])).await;
    let hook = app
        .webhook(
            &receiver.url("/"),
            json!([{"event": "after_release"}]),
            json!({}),
        )
        .await;

    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    let deliveries = wait_attempts(&app, id, 3).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let path = format!(
        "/api/v1/deliveries?status=failed&webhook={}",
        hook["id"].as_str().unwrap()
    );
    let failed = app.get(&path).await;

    assert_eq!(receiver.requests().len(), 3, "one attempt and two retries");
    let delivery = &failed["items"][0];
    assert_eq!(delivery["id"], deliveries[0]["id"]);
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempts"], 3);
    let log = messages(&app.log(&app.release(id).await).await);
    position(&log, "attempt 3 failed (status): 500");
    position(&log, "no more tries");
    let none = app
        .get("/api/v1/deliveries?status=failed&since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
}

pub async fn a_410_disables_the_webhook_and_no_gate_waits_on_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(410)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}]);
    let hook = app.webhook(&receiver.url("/"), events, json!({})).await;
    let hook_path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());

    let first = app.start_release("shop", "v1").await;
    let closed = app
        .wait_stage(first["id"].as_str().unwrap(), "closed")
        .await;
    let webhook = app.get(&hook_path).await;
    let second = app.start_release("shop", "v2").await;
    let second = app
        .wait_stage(second["id"].as_str().unwrap(), "closed")
        .await;

    assert_eq!(webhook["enabled"], false);
    assert!(webhook["disabled_reason"].as_str().unwrap().contains("410"));
    assert!(webhook["disabled_at"].is_string());
    assert_eq!(
        receiver.requests().len(),
        1,
        "a disabled webhook gets nothing"
    );
    position(
        &messages(&app.log(&closed).await),
        "no longer waits on lock",
    );
    position(&messages(&app.log(&second).await), "is disabled");

    receiver.answer(Answer::Status(200));
    let (status, enabled) = app
        .call(
            "PATCH",
            &hook_path,
            &app.admin,
            Some(json!({"enabled": true})),
        )
        .await;
    let third = app.start_release("shop", "v3").await;
    receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(status, 200);
    assert_eq!(enabled["disabled_reason"], serde_json::Value::Null);
    assert_eq!(
        app.release(third["id"].as_str().unwrap()).await["state"],
        "waiting"
    );
}

pub async fn a_webhook_that_only_fails_for_long_enough_is_disabled() {
    let app = TestApp::spawn_with(&[("LOCKSTEP_DISABLE_AFTER", "1s")]).await;
    let receiver = Receiver::start(Answer::Status(503)).await;
    app.instance("shop", json!([])).await;
    let hook = app
        .webhook(
            &receiver.url("/"),
            json!([{"event": "after_release"}]),
            json!({}),
        )
        .await;

    app.start_release("shop", "v1").await;
    let path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());
    let mut webhook = app.get(&path).await;
    for _ in 0..200 {
        if webhook["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        webhook = app.get(&path).await;
    }
    let sent = receiver.requests().len();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_eq!(webhook["enabled"], false, "{webhook}");
    assert!(webhook["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("every attempt failed"));
    assert!(sent >= 2, "it failed for a second before it was disabled");
    assert_eq!(
        receiver.requests().len(),
        sent,
        "a disabled webhook's retries stop"
    );
}

pub async fn an_expired_lock_applies_its_default_outcome_and_a_late_release_is_409() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}]);
    let limits = json!({"lock_timeout_seconds": 1, "lock_default_outcome": "abort"});
    app.webhook(&receiver.url("/"), events, limits).await;

    let release = app.start_release("shop", "v1").await;
    let body = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    let failed = app
        .wait_stage(release["id"].as_str().unwrap(), "failed")
        .await;
    let hook = app.token(&["hook"]).await;
    let (late, error) = app
        .release_lock(&hook, body["lock"].as_str().unwrap(), "continue")
        .await;

    assert!(failed["failure_reason"]
        .as_str()
        .unwrap()
        .contains("aborted"));
    position(
        &messages(&app.log(&failed).await),
        "expired; default outcome abort applied",
    );
    assert_eq!(late, 409);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

pub async fn a_receiver_extends_the_lock_it_holds_and_then_releases_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}]);
    app.webhook(
        &receiver.url("/"),
        events,
        json!({"lock_timeout_seconds": 2}),
    )
    .await;

    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    let lock = receiver.wait_for(1, Duration::from_secs(10)).await[0].json()["lock"].clone();
    let hook = app.token(&["hook"]).await;
    let extend = json!({"lock": lock, "seconds": 60});
    let (status, extended) = app
        .call("POST", "/api/v1/locks/extend", &hook, Some(extend))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = app.release(id).await;
    app.release_lock(&hook, lock.as_str().unwrap(), "continue")
        .await;
    let closed = app.wait_stage(id, "closed").await;

    assert_eq!(status, 200, "{extended}");
    assert!(extended["expires_at"].is_string());
    assert_eq!(still["state"], "waiting");
    assert_eq!(closed["state"], "succeeded");
    position(
        &messages(&app.log(&closed).await),
        "now expires 60s from now",
    );
}

pub async fn a_redelivery_sends_the_same_id_and_bytes_again() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    app.webhook(
        &receiver.url("/"),
        json!([{"event": "after_release"}]),
        json!({}),
    )
    .await;
    let release = app.start_release("shop", "v1").await;
    let deliveries = wait_attempts(&app, release["id"].as_str().unwrap(), 1).await;
    let delivery = deliveries[0]["id"].as_str().unwrap();

    let path = format!("/api/v1/deliveries/{delivery}/redeliver");
    let (status, _) = app.call("POST", &path, &app.admin, Some(json!({}))).await;
    let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
    wait_attempts(&app, release["id"].as_str().unwrap(), 2).await;
    let after = app.get(&format!("/api/v1/deliveries/{delivery}")).await;

    assert_eq!(status, 202);
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(seen[1].header("x-mdoq-delivery"), Some(delivery));
    assert_eq!(after["attempts"], 2);
    assert_eq!(after["attempt_log"].as_array().unwrap().len(), 2);
}

pub async fn cancelling_a_release_stops_its_running_step() {
    let app = TestApp::spawn().await;
    let marker = std::env::temp_dir().join(format!("lockstep-step-{}", rand_suffix()));
    let run = format!("echo started; sleep 3; touch {}", marker.display());
    app.instance("shop", json!([{"name": "slow", "run": run}]))
        .await;

    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    app.wait_release(id, Duration::from_secs(10), |r| r["stage"] == "steps")
        .await;
    let path = format!("/api/v1/releases/{id}/cancel");
    let cancelled = app.post(&path, json!({"message": "stop"})).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    assert_eq!(cancelled["state"], "cancelled");
    assert!(!marker.exists(), "the step was not stopped");
}

fn rand_suffix() -> u64 {
    use rand::Rng;
    rand::rng().random()
}
