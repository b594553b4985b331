//! Several nodes on one PostgreSQL: shared work, wake-ups across nodes, takeover after a
//! node dies. These run on PostgreSQL only.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::support::{Answer, Receiver, TestApp};

pub async fn a_lock_released_through_any_node_wakes_the_release_wherever_it_runs() {
    let first = TestApp::spawn().await;
    let second = first.join("node-b");
    let third = first.join("node-c");
    let receiver = Receiver::start(Answer::Status(200)).await;
    first.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release", "locking": true}, {"event": "after_release"}]);
    first.webhook(&receiver.url("/"), events, json!({})).await;
    let hook = first.token(&["hook"]).await;

    let mut ids = Vec::new();
    for (n, node) in [&first, &second, &third].into_iter().enumerate() {
        let release = node.start_release("shop", &format!("v{n}")).await;
        ids.push(release["id"].as_str().unwrap().to_owned());
    }
    for (n, id) in ids.iter().enumerate() {
        let sent = receiver.wait_for(2 * n + 1, Duration::from_secs(20)).await;
        let lock = sent[2 * n].json()["lock"].as_str().unwrap().to_owned();
        let through = [&third, &first, &second][n];
        let (status, _) = through.release_lock(&hook, &lock, "continue").await;
        assert_eq!(status, 200);
        let closed = second.wait_stage(id, "closed").await;
        assert_eq!(closed["state"], "succeeded");
    }

    let mut by_delivery: HashMap<String, usize> = HashMap::new();
    for request in receiver.wait_for(6, Duration::from_secs(10)).await {
        *by_delivery
            .entry(request.header("x-mdoq-delivery").unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(by_delivery.len(), 6);
    assert!(
        by_delivery.values().all(|n| *n == 1),
        "a delivery went out twice: {by_delivery:?}"
    );
}

pub async fn a_release_whose_node_is_killed_is_finished_by_another_node() {
    let mut first = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    first.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release_complete", "locking": true},
        {"event": "after_release"}]);
    first.webhook(&receiver.url("/"), events, json!({})).await;
    let hook = first.token(&["hook"]).await;

    let release = first.start_release("shop", "v1").await;
    let id = release["id"].as_str().unwrap();
    let lock = receiver.wait_for(1, Duration::from_secs(10)).await[0].json()["lock"].clone();
    first
        .wait_release(id, Duration::from_secs(10), |r| {
            r["waiting_on"][0]["attempts"] == 1
        })
        .await;
    // The second node joins only now, so the release is surely the first node's.
    let second = first.join("node-b");
    first.kill();
    let (status, _) = second
        .release_lock(&hook, lock.as_str().unwrap(), "continue")
        .await;
    let closed = second
        .wait_release(id, Duration::from_secs(30), |r| r["stage"] == "closed")
        .await;

    assert_eq!(status, 200);
    assert_eq!(closed["state"], "succeeded");
    assert_eq!(receiver.of_event("before_release_complete").len(), 1);
    assert_eq!(receiver.of_event("after_release").len(), 1);
    assert!(second.server_log().contains("taking over a release"));
}
