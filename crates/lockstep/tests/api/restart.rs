//! Nothing is lost: kills and restarts while releases wait and requests are in flight.

use std::time::Duration;

use serde_json::json;

use crate::support::{Answer, Receiver, TestApp};

pub async fn a_release_parked_on_a_lock_survives_a_kill_and_resumes_when_released() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([{"name": "deploy", "run": "echo deployed"}]))
        .await;
    let events = json!([{"event": "before_release_complete", "locking": true},
        {"event": "after_release"}]);
    app.webhook(&receiver.url("/"), events, json!({})).await;
    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    let body = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    app.wait_release(id, Duration::from_secs(10), |r| {
        r["waiting_on"][0]["attempts"] == 1
    })
    .await;

    app.kill();
    app.start();
    let waiting = app.release(id).await;
    let hook = app.token(&["hook"]).await;
    let (status, _) = app
        .release_lock(&hook, body["lock"].as_str().unwrap(), "continue")
        .await;
    let closed = app.wait_stage(id, "closed").await;

    assert_eq!(waiting["state"], "waiting");
    assert_eq!(waiting["stage"], "before_release_complete");
    assert_eq!(status, 200);
    assert_eq!(closed["state"], "succeeded");
    assert_eq!(
        receiver.of_event("before_release_complete").len(),
        1,
        "no second lock request"
    );
    assert_eq!(receiver.of_event("after_release").len(), 1);
}

pub async fn a_lock_released_just_before_a_kill_is_honoured_after_the_restart() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}]);
    app.webhook(&receiver.url("/"), events, json!({})).await;
    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    let body = receiver.wait_for(1, Duration::from_secs(10)).await[0].json();
    let hook = app.token(&["hook"]).await;

    let (status, _) = app
        .release_lock(&hook, body["lock"].as_str().unwrap(), "continue")
        .await;
    app.kill();
    app.start();
    let closed = app.wait_stage(id, "closed").await;

    assert_eq!(status, 200);
    assert_eq!(closed["state"], "succeeded");
}

pub async fn a_request_in_flight_at_a_kill_is_sent_again_with_the_same_delivery_id() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::After(Duration::from_secs(30))).await;
    app.instance("shop", json!([])).await;
    app.webhook(
        &receiver.url("/"),
        json!([{"event": "before_release"}]),
        json!({}),
    )
    .await;
    let release = app.start_release("shop", "v1").await;
    let first = receiver.wait_for(1, Duration::from_secs(10)).await[0].clone();

    app.kill();
    receiver.answer(Answer::Status(200));
    app.start();
    let seen = receiver.wait_for(2, Duration::from_secs(10)).await;
    let closed = app
        .wait_stage(release["id"].as_str().unwrap(), "closed")
        .await;

    assert_eq!(
        seen[1].header("x-mdoq-delivery"),
        first.header("x-mdoq-delivery")
    );
    assert_eq!(seen[1].body, first.body);
    assert_eq!(closed["state"], "succeeded");
}

pub async fn sigterm_lets_the_attempt_in_flight_finish_and_exits_cleanly() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::After(Duration::from_secs(1))).await;
    app.instance("shop", json!([])).await;
    app.webhook(
        &receiver.url("/"),
        json!([{"event": "before_release"}]),
        json!({}),
    )
    .await;
    let release = app.start_release("shop", "v1").await;
    receiver.wait_for(1, Duration::from_secs(10)).await;

    let code = app.terminate().await;
    app.start();
    let closed = app
        .wait_stage(release["id"].as_str().unwrap(), "closed")
        .await;
    let deliveries = app
        .get(&format!(
            "/api/v1/releases/{}/deliveries",
            closed["id"].as_str().unwrap()
        ))
        .await;

    assert_eq!(code, Some(0));
    assert_eq!(
        receiver.requests().len(),
        1,
        "no repeat; log: {}",
        app.server_log()
    );
    assert_eq!(deliveries["items"][0]["attempt_log"][0]["status_code"], 200);
}

/// A step that notes its start and end in `file`, with a pause between.
fn noting_step(file: &std::path::Path) -> serde_json::Value {
    let run = format!(
        "echo start >> {0}; sleep 2; echo end >> {0}",
        file.display()
    );
    json!([{"name": "slow", "run": run}])
}

fn notes(file: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines().map(str::to_owned).collect()
}

/// Waits until the step has noted its start, so a kill lands while it runs.
async fn wait_for_a_note(file: &std::path::Path) {
    for _ in 0..200 {
        if !notes(file).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn a_step_cut_short_by_a_kill_is_stopped_before_it_runs_again() {
    let mut app = TestApp::spawn().await;
    let file = std::env::temp_dir().join(format!("lockstep-notes-{}", rand::random::<u64>()));
    app.instance("shop", noting_step(&file)).await;
    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    wait_for_a_note(&file).await;

    app.kill();
    app.start();
    let closed = app.wait_stage(id, "closed").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let seen = notes(&file);
    let _ = std::fs::remove_file(&file);

    assert_eq!(
        seen,
        ["start", "start", "end"],
        "the first run went on beside the second"
    );
    let log = crate::support::messages(&app.log(&closed).await);
    crate::support::position(&log, "its leftover processes were killed");
}

pub async fn sigterm_stops_a_running_step_and_the_restart_runs_it_again() {
    let mut app = TestApp::spawn().await;
    let file = std::env::temp_dir().join(format!("lockstep-notes-{}", rand::random::<u64>()));
    app.instance("shop", noting_step(&file)).await;
    let release = app.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    wait_for_a_note(&file).await;

    let code = app.terminate().await;
    app.start();
    let closed = app.wait_stage(id, "closed").await;
    let seen = notes(&file);
    let _ = std::fs::remove_file(&file);

    assert_eq!(code, Some(0));
    assert_eq!(seen, ["start", "start", "end"]);
    let log = crate::support::messages(&app.log(&closed).await);
    crate::support::position(&log, "step stopped: the service is shutting down");
}
