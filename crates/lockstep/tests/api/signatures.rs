//! Standard Webhooks signatures over the exact bytes sent, checked by an independent
//! implementation (the `standardwebhooks` crate).

use std::time::Duration;

use serde_json::json;

use crate::support::receiver::Recorded;
use crate::support::{Answer, Receiver, TestApp};

fn verify(key: &str, request: &Recorded) -> bool {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &request.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        headers.append(name, http::HeaderValue::from_str(value).unwrap());
    }
    let verifier = standardwebhooks::Webhook::new(key).expect("a valid signing key");
    verifier.verify(&request.body, &headers).is_ok()
}

pub async fn deliveries_are_signed_over_the_exact_bytes_including_awkward_text() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    let awkward = json!({"id": "shop", "name": "Größe 🚀 \u{2028} </script>", "url": "https://a.b",
        "attributes": {"note": "line\u{2028}separator <b>&amp;</b> ünïcödé"}});
    app.post("/api/v1/instances", awkward).await;
    let webhook = app
        .webhook(
            &receiver.url("/"),
            json!([{"event": "before_release"}]),
            json!({}),
        )
        .await;
    let path = format!(
        "/api/v1/webhooks/{}/signing-key",
        webhook["id"].as_str().unwrap()
    );
    let key = app.get(&path).await["key"].as_str().unwrap().to_owned();

    app.start_release("shop", "v1").await;
    let request = &receiver.wait_for(1, Duration::from_secs(10)).await[0];

    assert!(key.starts_with("whsec_"));
    assert_eq!(
        request.header("webhook-id"),
        request.header("x-mdoq-delivery")
    );
    assert!(request
        .header("webhook-timestamp")
        .unwrap()
        .parse::<i64>()
        .is_ok());
    assert!(std::str::from_utf8(&request.body).unwrap().contains('🚀'));
    assert!(verify(&key, request), "the signature does not verify");
    assert!(!verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", request));
}

/// A service with one instance and one webhook to `receiver`, with the webhook's id and its
/// first signing key.
async fn shop_with_a_signed_webhook() -> (TestApp, Receiver, String, serde_json::Value) {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Answer::Status(200)).await;
    app.instance("shop", json!([])).await;
    let events = json!([{"event": "before_release"}]);
    let webhook = app.webhook(&receiver.url("/"), events, json!({})).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    let key = app.get(&format!("/api/v1/webhooks/{id}/signing-key")).await["key"].clone();
    (app, receiver, id, key)
}

pub async fn a_rotated_key_keeps_signing_beside_the_new_one_during_its_overlap() {
    let (app, receiver, id, old) = shop_with_a_signed_webhook().await;
    let id = id.as_str();

    let path = format!("/api/v1/webhooks/{id}/signing-key/rotate");
    let rotated = app.post(&path, json!({"overlap_seconds": 3600})).await;
    let read = app.token(&["read"]).await;
    let (forbidden, _) = app
        .call(
            "GET",
            &format!("/api/v1/webhooks/{id}/signing-key"),
            &read,
            None,
        )
        .await;
    app.start_release("shop", "v1").await;
    let request = &receiver.wait_for(1, Duration::from_secs(10)).await[0];

    let new = rotated["key"].as_str().unwrap();
    assert_ne!(new, old.as_str().unwrap());
    assert_eq!(rotated["previous_key"], old);
    assert_eq!(
        request
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    assert!(verify(new, request));
    assert!(verify(old.as_str().unwrap(), request));
    assert_eq!(forbidden, 403);
}

pub async fn a_rotation_without_overlap_signs_with_the_new_key_alone() {
    let (app, receiver, id, old) = shop_with_a_signed_webhook().await;
    let id = id.as_str();

    let path = format!("/api/v1/webhooks/{id}/signing-key/rotate");
    let rotated = app.post(&path, json!({"overlap_seconds": 0})).await;
    let (bad, error) = app
        .call(
            "POST",
            &path,
            &app.admin,
            Some(json!({"overlap_seconds": -1})),
        )
        .await;
    app.start_release("shop", "v1").await;
    let request = &receiver.wait_for(1, Duration::from_secs(10)).await[0];

    assert!(verify(rotated["key"].as_str().unwrap(), request));
    assert!(!verify(old.as_str().unwrap(), request));
    assert_eq!(bad, 422);
    assert_eq!(error["error"]["field"], "overlap_seconds");
}
