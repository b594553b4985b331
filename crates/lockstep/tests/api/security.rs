//! Secrets stay secret: sealed at rest, and never in logs, API answers or the action log.

use std::time::Duration;

use serde_json::json;
use sqlx::{Connection, Row};

use crate::support::{Answer, Receiver, TestApp};

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const SECRET: &str = "s3cret-that-must-not-leak";

/// Every stored webhook secret and delivery body, read straight from the database.
async fn stored_bytes(url: &str) -> Vec<u8> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .expect("opening the database");
    let mut all = Vec::new();
    for row in sqlx::query("SELECT secret FROM webhooks")
        .fetch_all(&mut conn)
        .await
        .unwrap()
    {
        let secret: Option<String> = row.try_get(0).unwrap();
        all.extend(secret.unwrap_or_default().into_bytes());
    }
    for row in sqlx::query("SELECT body FROM deliveries")
        .fetch_all(&mut conn)
        .await
        .unwrap()
    {
        all.extend(row.try_get::<Vec<u8>, _>(0).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

pub async fn secrets_and_bodies_are_sealed_at_rest_and_need_their_key() {
    let mut app = TestApp::spawn_with(&[("LOCKSTEP_ENCRYPTION_KEY", KEY)]).await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}]);
    app.webhook(&receiver.url("/"), events, json!({"secret": SECRET}))
        .await;
    let release = app.start_release("shop", "v1").await;
    let body = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    let lock = body["lock"].as_str().unwrap().to_owned();

    app.kill();
    let stored = stored_bytes(&app.db.url).await;
    app.extra_env
        .retain(|(k, _)| k != "LOCKSTEP_ENCRYPTION_KEY");
    let (no_key, no_key_log) = app.start_refused();
    app.extra_env
        .push(("LOCKSTEP_ENCRYPTION_KEY".into(), OTHER_KEY.into()));
    let (wrong_key, wrong_key_log) = app.start_refused();
    app.extra_env.pop();
    app.extra_env
        .push(("LOCKSTEP_ENCRYPTION_KEY".into(), KEY.into()));
    app.start();
    let hook = app.token(&["hook"]).await;
    let (status, _) = app.release_lock(&hook, &lock, "continue").await;

    assert_eq!(body["secret"], SECRET);
    assert!(!stored.is_empty());
    assert!(
        !contains(&stored, SECRET),
        "the secret is stored in the clear"
    );
    assert!(
        !contains(&stored, &lock),
        "the lock token is stored in the clear"
    );
    assert_ne!(no_key, Some(0));
    assert!(
        no_key_log.contains("LOCKSTEP_ENCRYPTION_KEY"),
        "{no_key_log}"
    );
    assert_ne!(wrong_key, Some(0));
    assert!(wrong_key_log.contains("does not match"), "{wrong_key_log}");
    assert_eq!(status, 200);
    app.wait_stage(release["id"].as_str().unwrap(), "closed")
        .await;
}

pub async fn no_secret_or_token_appears_in_logs_answers_or_the_action_log() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([{"name": "deploy", "run": "echo deployed"}]))
        .await;
    let events = json!([{"event": "before_release", "locking": true}, {"event": "after_release"}]);
    let webhook = app
        .webhook(&receiver.url("/"), events, json!({"secret": SECRET}))
        .await;
    let created = app
        .post(
            "/api/v1/tokens",
            json!({"name": "hook", "scopes": ["hook"]}),
        )
        .await;
    let hook = created["token"].as_str().unwrap().to_owned();

    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    let lock = receiver.wait_for(1, Duration::from_secs(10)).await[0].json()["lock"].clone();
    let lock = lock.as_str().unwrap().to_owned();
    app.release_lock(&hook, &lock, "continue").await;
    let closed = app.wait_stage(id, "closed").await;
    let mut seen = String::new();
    for path in [
        format!("/api/v1/releases/{id}"),
        format!("/api/v1/releases/{id}/deliveries"),
        format!("/api/v1/webhooks/{}", webhook["id"].as_str().unwrap()),
        "/api/v1/webhooks".to_owned(),
        "/api/v1/locks".to_owned(),
        "/api/v1/tokens".to_owned(),
        "/api/v1/deliveries".to_owned(),
        format!("/api/v1/logs/{}", closed["parent_log"]),
    ] {
        seen.push_str(&app.get(&path).await.to_string());
    }
    let (_, repeat) = app.release_lock(&hook, &lock, "continue").await;
    let (_, conflict) = app.release_lock(&hook, &lock, "abort").await;
    seen.push_str(&repeat.to_string());
    seen.push_str(&conflict.to_string());
    seen.push_str(&app.server_log());

    for secret in [SECRET, hook.as_str(), lock.as_str(), app.admin.as_str()] {
        assert!(!seen.contains(secret), "{secret} leaked");
    }
    assert!(seen.contains("[redacted]"), "payloads are shown redacted");
}

pub async fn custom_headers_are_sent_collisions_refused_and_credentials_shown_redacted() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let headers = json!({"X-Env": "production", "Authorization": "Bearer abc123-credential"});
    let webhook = app
        .webhook(
            &receiver.url("/"),
            json!([{"event": "before_release"}]),
            json!({"headers": headers}),
        )
        .await;

    app.start_release("shop", "v1").await;
    let request = &receiver.wait_for(1, Duration::from_secs(10)).await[0];
    let mut refused = Vec::new();
    for name in [
        "Content-Type",
        "X-MDOQ-Secret",
        "webhook-signature",
        "Host",
        "bad name",
    ] {
        let body = json!({"url": "https://h.example/", "events": [{"event": "after_release"}],
            "headers": {name: "x"}});
        let (status, error) = app
            .call("POST", "/api/v1/webhooks", &app.admin, Some(body))
            .await;
        refused.push((status.as_u16(), error["error"]["field"].clone()));
    }

    assert_eq!(request.header("x-env"), Some("production"));
    assert_eq!(
        request.header("authorization"),
        Some("Bearer abc123-credential")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(webhook["headers"]["X-Env"], "production");
    assert_eq!(webhook["headers"]["Authorization"], "[redacted]");
    assert!(!app
        .get("/api/v1/webhooks")
        .await
        .to_string()
        .contains("abc123-credential"));
    assert!(
        refused.iter().all(|(status, _)| *status == 422),
        "{refused:?}"
    );
    assert_eq!(refused[0].1, "headers.Content-Type");
}

pub async fn a_patch_with_null_removes_a_setting_and_an_absent_field_keeps_it() {
    let app = TestApp::spawn().await;
    let extra = json!({"secret": "keep-me", "retry_schedule": "5s", "instances": ["shop"]});
    let webhook = app
        .webhook(
            "https://h.example/",
            json!([{"event": "after_release"}]),
            extra,
        )
        .await;
    let path = format!("/api/v1/webhooks/{}", webhook["id"].as_str().unwrap());

    let (_, kept) = app
        .call(
            "PATCH",
            &path,
            &app.admin,
            Some(json!({"description": "d"})),
        )
        .await;
    let cleared = json!({"secret": null, "retry_schedule": null, "instances": null});
    let (status, removed) = app.call("PATCH", &path, &app.admin, Some(cleared)).await;

    assert_eq!(kept["has_secret"], true);
    assert_eq!(kept["retry_schedule"], "5s");
    assert_eq!(status, 200);
    assert_eq!(removed["has_secret"], false);
    assert_eq!(removed["retry_schedule"], serde_json::Value::Null);
    assert_eq!(removed["instances"], serde_json::Value::Null);
}

pub async fn a_loopback_target_is_refused_when_saved_and_again_when_sent() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release"}]);
    app.webhook(&receiver.url("/"), events.clone(), json!({}))
        .await;

    app.kill();
    app.extra_env
        .push(("LOCKSTEP_ALLOW_NETWORKS".into(), String::new()));
    app.start();
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    let mut refused = Vec::new();
    for url in [
        receiver.url("/"),
        format!("http://localhost:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let body = json!({"url": url, "events": events});
        let (status, error) = app
            .call("POST", "/api/v1/webhooks", &app.admin, Some(body))
            .await;
        refused.push((status.as_u16(), error["error"]["field"].clone()));
    }
    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    let deliveries = crate::contract::wait_attempts(&app, id, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(
        refused.iter().all(|(s, f)| *s == 422 && f == "url"),
        "{refused:?}"
    );
    assert_eq!(deliveries[0]["attempt_log"][0]["error_kind"], "blocked");
    assert!(
        receiver.requests().is_empty(),
        "a connection reached the loopback listener"
    );
}

pub async fn an_operator_cancels_a_waiting_release_right_after_a_restart() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}]);
    app.webhook(&receiver.url("/"), events, json!({})).await;
    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    receiver.wait_for(1, Duration::from_secs(10)).await;

    app.kill();
    app.start();
    let path = format!("/api/v1/releases/{id}/cancel");
    let cancelled = app
        .post(&path, json!({"message": "rolled back by hand"}))
        .await;
    let locks = app.get(&format!("/api/v1/locks?release={id}")).await;

    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(locks["items"][0]["status"], "cancelled");
}
