//! Lock settlement under races: early calls, repeated calls, conflicting calls.

use std::time::Duration;

use serde_json::json;

use crate::support::{messages, Answer, Receiver, TestApp};

async fn parked_release(app: &TestApp, receiver: &Receiver) -> (String, String) {
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}, {"event": "after_release"}]);
    app.webhook(&receiver.url("/"), events, json!({})).await;
    let release = app.start_release("shop", "v1").await;
    let body = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    (
        release["id"].as_str().unwrap().to_owned(),
        body["lock"].as_str().unwrap().to_owned(),
    )
}

pub async fn a_release_call_that_arrives_before_the_webhooks_response_counts() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::After(Duration::from_secs(2))).await;
    let (id, lock) = parked_release(&app, &receiver).await;
    let hook = app.token(&["hook"]).await;

    let (status, _) = app.release_lock(&hook, &lock, "continue").await;
    let closed = app.wait_stage(&id, "closed").await;

    assert_eq!(status, 200);
    assert_eq!(closed["state"], "succeeded");
}

pub async fn fifty_identical_concurrent_calls_get_one_answer_and_resume_the_release_once() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let (id, lock) = parked_release(&app, &receiver).await;
    let hook = app.token(&["hook"]).await;

    let mut calls = Vec::new();
    for _ in 0..50 {
        let (http, url) = (app.http.clone(), app.url("/api/v1/locks/release"));
        let body = json!({"lock": lock, "outcome": "continue", "message": "done"});
        let hook = hook.clone();
        calls.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(hook)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }));
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    let closed = app.wait_stage(&id, "closed").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    assert!(answers.iter().all(|(_, body)| *body == answers[0].1));
    assert_eq!(receiver.of_event("after_release").len(), 1);
    let log = messages(&app.log(&closed).await);
    assert_eq!(
        log.iter()
            .filter(|m| m.contains("released: continue"))
            .count(),
        1
    );
    assert_eq!(
        log.iter()
            .filter(|m| m.contains("before_release gate passed"))
            .count(),
        1
    );
}

pub async fn a_conflicting_outcome_is_409_and_an_unknown_token_is_404() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let (id, lock) = parked_release(&app, &receiver).await;
    let hook = app.token(&["hook"]).await;

    let (first, _) = app.release_lock(&hook, &lock, "continue").await;
    let (conflict, error) = app.release_lock(&hook, &lock, "abort").await;
    let (unknown, missing) = app
        .release_lock(&hook, "lsl_not-a-real-lock-token", "continue")
        .await;

    assert_eq!(first, 200);
    assert_eq!(conflict, 409);
    assert_eq!(error["error"]["code"], "conflict");
    assert_eq!(unknown, 404);
    assert_eq!(missing["error"]["code"], "not_found");
    assert_eq!(app.wait_stage(&id, "closed").await["state"], "succeeded");
}

pub async fn an_operator_force_releases_a_lock_by_public_id_and_is_named_in_the_log() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let (id, _) = parked_release(&app, &receiver).await;
    let locks = app
        .get(&format!("/api/v1/locks?status=open&release={id}"))
        .await;
    let lock_id = locks["items"][0]["id"].as_str().unwrap().to_owned();

    let read = app.token(&["read"]).await;
    let path = format!("/api/v1/locks/{lock_id}/release");
    let (refused, _) = app
        .call("POST", &path, &read, Some(json!({"message": "x"})))
        .await;
    let (missing, _) = app.call("POST", &path, &app.admin, Some(json!({}))).await;
    let body = json!({"outcome": "continue", "message": "receiver is down, going ahead"});
    let lock = app.post(&path, body).await;
    let closed = app.wait_stage(&id, "closed").await;

    assert_eq!(refused, 403);
    assert_eq!(missing, 400);
    assert_eq!(lock["status"], "released");
    assert!(lock["released_by"]
        .as_str()
        .unwrap()
        .starts_with("operator admin"));
    let log = app.log(&closed).await;
    let entry = log
        .iter()
        .find(|e| e["message"].as_str().unwrap().contains("going ahead"))
        .unwrap();
    assert!(entry["actor"]
        .as_str()
        .unwrap()
        .starts_with("operator admin"));
}

pub async fn receivers_append_to_the_action_log_and_read_it_back_in_order() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let (_, _) = parked_release(&app, &receiver).await;
    let body = receiver.requests()[0].json();
    let parent = body["parent_log"].as_i64().unwrap();
    let hook = app.token(&["hook"]).await;

    let path = format!("/api/v1/logs/{parent}/entries");
    for (message, status) in [("purging CDN", "info"), ("CDN purged", "success")] {
        let entry = json!({"message": message, "status": status});
        let (code, _) = app.call("POST", &path, &hook, Some(entry)).await;
        assert_eq!(code, 201);
    }
    let (bad_status, error) = app
        .call(
            "POST",
            &path,
            &hook,
            Some(json!({"message": "x", "status": "great"})),
        )
        .await;
    let (too_long, _) = app
        .call(
            "POST",
            &path,
            &hook,
            Some(json!({"message": "x".repeat(5000)})),
        )
        .await;
    let (no_entry, _) = app
        .call(
            "POST",
            "/api/v1/logs/999999/entries",
            &hook,
            Some(json!({"message": "x"})),
        )
        .await;
    let (_, log) = app
        .call("GET", &format!("/api/v1/logs/{parent}"), &hook, None)
        .await;

    assert_eq!(bad_status, 422);
    assert_eq!(error["error"]["field"], "status");
    assert_eq!(too_long, 422);
    assert_eq!(no_entry, 404);
    let all = messages(log["entries"].as_array().unwrap());
    let purging = all.iter().position(|m| m == "purging CDN").unwrap();
    assert_eq!(all[purging + 1], "CDN purged");
    assert_eq!(log["entries"][0]["id"], parent);
}
