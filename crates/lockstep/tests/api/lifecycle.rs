//! A release's whole life: gates, steps, locks, failure, cancel, and the queue.

use std::time::Duration;

use serde_json::json;

use crate::support::{messages, position, Answer, Receiver, TestApp};

const ALL_EVENTS: &str = r#"[{"event": "before_release"},
    {"event": "before_release_complete", "locking": true}, {"event": "after_release"}]"#;

pub async fn a_release_runs_its_events_steps_and_lock_in_order_and_closes() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let step = "echo tag=$LOCKSTEP_TAG zd=$LOCKSTEP_ZERO_DOWNTIME instance=$LOCKSTEP_INSTANCE \
                log=$LOCKSTEP_PARENT_LOG id=$LOCKSTEP_RELEASE_ID";
    app.instance("shop", json!([{"name": "deploy", "run": step}]))
        .await;
    let events: serde_json::Value = serde_json::from_str(ALL_EVENTS).unwrap();
    app.webhook(&receiver.url("/"), events, json!({})).await;

    let release = app.start_release("shop", "v2.4.1").await;
    let id = release["id"].as_str().unwrap();
    let waiting = app
        .wait_release(id, Duration::from_secs(20), |r| {
            r["state"] == "waiting" && r["stage"] == "before_release_complete"
        })
        .await;
    let lock_id = waiting["waiting_on"][0]["lock"]
        .as_str()
        .unwrap()
        .to_owned();
    receiver.wait_for(2, Duration::from_secs(10)).await;
    let body = receiver.of_event("before_release_complete")[0].json();
    let hook = app.token(&["hook"]).await;
    let (status, lock) = app
        .release_lock(&hook, body["lock"].as_str().unwrap(), "continue")
        .await;
    let closed = app.wait_stage(id, "closed").await;

    assert_eq!(status, 200);
    assert_eq!(lock["id"], lock_id);
    assert_eq!(closed["state"], "succeeded");
    let order: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["event"].to_string())
        .collect();
    assert_eq!(
        order,
        [
            "\"before_release\"",
            "\"before_release_complete\"",
            "\"after_release\""
        ]
    );
    let log = messages(&app.log(&closed).await);
    let expected = format!(
        "tag=v2.4.1 zd=true instance=shop log={} id={id}",
        release["parent_log"]
    );
    assert!(position(&log, "before_release:") < position(&log, "step 1/1"));
    assert!(position(&log, "step 1/1") < position(&log, &expected));
    assert!(position(&log, &expected) < position(&log, "before_release_complete:"));
    assert!(position(&log, "released: continue") < position(&log, "after_release:"));
    assert!(position(&log, "after_release gate passed") > position(&log, "after_release:"));
}

pub async fn a_failing_step_fails_the_release_and_release_failed_subscribers_hear_why() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let steps = json!([{"name": "build", "run": "echo building; exit 3"},
        {"name": "never", "run": "echo should not run"}]);
    app.instance("shop", steps).await;
    let events = json!([{"event": "before_release_complete"}, {"event": "release_failed"}]);
    app.webhook(&receiver.url("/"), events, json!({})).await;

    let release = app.start_release("shop", "v1").await;
    let failed = app
        .wait_stage(release["id"].as_str().unwrap(), "failed")
        .await;
    let notice = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();

    assert_eq!(failed["state"], "failed");
    assert!(failed["failure_reason"]
        .as_str()
        .unwrap()
        .contains("\"build\" exited with code 3"));
    assert_eq!(notice["event"], "release_failed");
    assert!(notice["reason"]
        .as_str()
        .unwrap()
        .contains("exited with code 3"));
    assert!(notice.get("lock").is_none());
    let log = messages(&app.log(&failed).await);
    assert!(log.iter().any(|m| m == "building"));
    assert!(!log.iter().any(|m| m.contains("should not run")));
    assert!(receiver.of_event("before_release_complete").is_empty());
}

pub async fn an_abort_fails_the_release_with_the_receivers_message_logged() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}, {"event": "after_release"}]);
    app.webhook(&receiver.url("/"), events, json!({})).await;

    let release = app.start_release("shop", "v1").await;
    let body = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    let hook = app.token(&["hook"]).await;
    let answer = json!({"lock": body["lock"], "outcome": "abort", "message": "QA said no"});
    let (status, _) = app
        .call("POST", "/api/v1/locks/release", &hook, Some(answer))
        .await;
    let failed = app
        .wait_stage(release["id"].as_str().unwrap(), "failed")
        .await;

    assert_eq!(status, 200);
    assert!(failed["failure_reason"]
        .as_str()
        .unwrap()
        .contains("QA said no"));
    let log = messages(&app.log(&failed).await);
    position(&log, "released: abort: QA said no");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.of_event("after_release").is_empty());
}

pub async fn releases_of_one_instance_queue_while_other_instances_run_alongside() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    app.instance("blog", json!([])).await;
    app.webhook(
        &receiver.url("/"),
        json!([{"event": "before_release", "locking": true}]),
        json!({}),
    )
    .await;

    let first = app.start_release("shop", "v1").await;
    let second = app.start_release("shop", "v2").await;
    let other = app.start_release("blog", "v1").await;
    receiver.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let tags: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["instance"]["id"].clone())
        .collect();
    assert_eq!(
        receiver.requests().len(),
        2,
        "the second shop release must wait: {tags:?}"
    );
    assert_eq!(
        app.release(second["id"].as_str().unwrap()).await["stage"],
        "queued"
    );
    assert_eq!(
        app.release(other["id"].as_str().unwrap()).await["state"],
        "waiting"
    );

    let hook = app.token(&["hook"]).await;
    let shop_lock = receiver
        .requests()
        .iter()
        .map(|r| r.json())
        .find(|b| b["release"]["tag"] == "v1" && b["instance"]["id"] == "shop")
        .unwrap();
    app.release_lock(&hook, shop_lock["lock"].as_str().unwrap(), "continue")
        .await;
    app.wait_stage(first["id"].as_str().unwrap(), "closed")
        .await;
    let seen = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(seen[2].json()["release"]["tag"], "v2");
}

pub async fn an_operator_cancel_ends_a_waiting_release_and_its_lock_then_refuses_a_second_cancel() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    app.webhook(
        &receiver.url("/"),
        json!([{"event": "before_release", "locking": true}]),
        json!({}),
    )
    .await;

    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    let body = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    let deploy = app.token(&["deploy"]).await;
    let path = format!("/api/v1/releases/{id}/cancel");
    let (status, cancelled) = app
        .call(
            "POST",
            &path,
            &deploy,
            Some(json!({"message": "wrong tag"})),
        )
        .await;
    let hook = app.token(&["hook"]).await;
    let (late, error) = app
        .release_lock(&hook, body["lock"].as_str().unwrap(), "continue")
        .await;
    let (again, _) = app
        .call("POST", &path, &deploy, Some(json!({"message": "again"})))
        .await;

    assert_eq!(status, 200);
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(late, 409, "{error}");
    assert_eq!(again, 409);
    let log = app.log(&cancelled).await;
    let entry = log
        .iter()
        .find(|e| e["message"].as_str().unwrap().contains("wrong tag"))
        .unwrap();
    assert!(entry["actor"].as_str().unwrap().contains("tok_"));
}
