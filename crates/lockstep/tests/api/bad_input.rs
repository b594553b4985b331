//! Bad input gets a clear 4xx naming the field, and nothing is written.

use serde_json::{json, Value};

use crate::support::TestApp;

async fn raw(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    // A fresh client: the server may close a connection whose body it refused to read.
    let response = reqwest::Client::new()
        .post(app.url(path))
        .bearer_auth(&app.admin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn count(app: &TestApp, path: &str) -> usize {
    app.get(path).await["items"].as_array().unwrap().len()
}

fn assert_error(answer: &(reqwest::StatusCode, Value), status: u16, field: Option<&str>) {
    assert_eq!(answer.0.as_u16(), status, "{}", answer.1);
    let error = &answer.1["error"];
    assert!(
        error["code"].is_string() && error["message"].is_string(),
        "{}",
        answer.1
    );
    if let Some(field) = field {
        assert_eq!(error["field"], field, "{}", answer.1);
    }
}

pub async fn malformed_bodies_wrong_types_and_unknown_fields_are_400s() {
    let app = TestApp::spawn().await;

    let (broken, error) = raw(
        &app,
        "/api/v1/instances",
        "application/json",
        b"{\"id\":".to_vec(),
    )
    .await;
    let wrong_type = app
        .call(
            "POST",
            "/api/v1/instances",
            &app.admin,
            Some(json!({"id": 5, "name": "x", "url": "https://a.b"})),
        )
        .await;
    let unknown = app
        .call(
            "POST",
            "/api/v1/instances",
            &app.admin,
            Some(json!({"id": "a", "name": "x", "url": "https://a.b", "colour": "red"})),
        )
        .await;

    assert_eq!(broken, 400);
    assert_eq!(error["error"]["code"], "malformed_request");
    assert_error(&wrong_type, 400, Some("id"));
    assert_error(&unknown, 400, None);
    assert!(unknown.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("colour"));
    assert_eq!(count(&app, "/api/v1/instances").await, 0);
}

pub async fn content_types_other_than_json_are_415_but_a_charset_is_fine() {
    let app = TestApp::spawn().await;
    let body = br#"{"id": "shop", "name": "Shop", "url": "https://shop.example.com"}"#.to_vec();

    let (plain, error) = raw(&app, "/api/v1/instances", "text/plain", body.clone()).await;
    let (charset, _) = raw(
        &app,
        "/api/v1/instances",
        "application/json; charset=utf-8",
        body,
    )
    .await;

    assert_eq!(plain, 415);
    assert_eq!(error["error"]["code"], "unsupported_media_type");
    assert_eq!(charset, 201);
}

pub async fn an_oversized_body_is_413_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let attributes = json!({"blob": "x".repeat(2 * 1024 * 1024)});
    let body =
        json!({"id": "shop", "name": "Shop", "url": "https://a.b", "attributes": attributes});

    let (status, error) = raw(
        &app,
        "/api/v1/instances",
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;

    assert_eq!(status, 413);
    assert_eq!(error["error"]["code"], "body_too_large");
    assert_eq!(count(&app, "/api/v1/instances").await, 0);
}

pub async fn webhook_inputs_that_break_a_rule_are_422s_naming_the_field() {
    let app = TestApp::spawn().await;
    let ok_events = json!([{"event": "before_release"}]);
    let long_url = format!("https://example.com/{}", "a".repeat(8200));
    let cases = [
        (
            json!({"url": "https://e.com/", "events": [{"event": "before_deploy"}]}),
            "events[0].event",
        ),
        (
            json!({"url": "https://e.com/",
                "events": [{"event": "release_failed", "locking": true}]}),
            "events[0].locking",
        ),
        (json!({"url": "https://e.com/", "events": []}), "events"),
        (json!({"url": "not a url", "events": ok_events}), "url"),
        (json!({"url": "ftp://e.com/", "events": ok_events}), "url"),
        (json!({"url": long_url, "events": ok_events}), "url"),
        (
            json!({"url": "https://e.com/", "events": ok_events, "timeout_seconds": 0}),
            "timeout_seconds",
        ),
        (
            json!({"url": "https://e.com/", "events": ok_events, "timeout_seconds": 301}),
            "timeout_seconds",
        ),
        (
            json!({"url": "https://e.com/", "events": ok_events, "secret": "has space"}),
            "secret",
        ),
        (
            json!({"url": "https://e.com/", "events": ok_events, "instances": ["Not A Slug"]}),
            "instances[0]",
        ),
        (
            json!({"url": "https://e.com/", "events": ok_events, "retry_schedule": "0s"}),
            "retry_schedule",
        ),
    ];
    for (body, field) in cases {
        let answer = app
            .call("POST", "/api/v1/webhooks", &app.admin, Some(body.clone()))
            .await;
        assert_error(&answer, 422, Some(field));
    }
    assert_eq!(count(&app, "/api/v1/webhooks").await, 0);
}

pub async fn a_tag_that_is_not_a_git_ref_never_reaches_a_step_and_is_not_stored() {
    let app = TestApp::spawn().await;
    let marker = std::env::temp_dir().join(format!("lockstep-injected-{}", std::process::id()));
    app.instance(
        "shop",
        json!([{"name": "deploy", "run": "echo $LOCKSTEP_TAG"}]),
    )
    .await;

    let hostile = format!("v1; touch {}", marker.display());
    let body = json!({"instance": "shop", "tag": hostile});
    let refused = app
        .call("POST", "/api/v1/releases", &app.admin, Some(body))
        .await;
    let unknown = app
        .call(
            "POST",
            "/api/v1/releases",
            &app.admin,
            Some(json!({"instance": "nope", "tag": "v1"})),
        )
        .await;

    assert_error(&refused, 422, Some("tag"));
    assert_error(&unknown, 422, Some("instance"));
    assert_eq!(count(&app, "/api/v1/releases").await, 0);
    assert!(!marker.exists());
}

pub async fn a_tag_with_shell_characters_in_an_allowed_form_runs_harmlessly() {
    let app = TestApp::spawn().await;
    let marker = std::env::temp_dir().join(format!("lockstep-subst-{}", std::process::id()));
    app.instance(
        "shop",
        json!([{"name": "deploy", "run": "echo \"tag is $LOCKSTEP_TAG\""}]),
    )
    .await;
    let tag = format!(
        "v1;$(touch{})`id`",
        marker.display().to_string().replace('/', "_")
    );

    let release = app.start_release("shop", &tag).await;
    let closed = app
        .wait_stage(release["id"].as_str().unwrap(), "closed")
        .await;

    let log = crate::support::messages(&app.log(&closed).await);
    assert!(log.contains(&format!("tag is {tag}")), "{log:?}");
    assert!(!marker.exists());
}

pub async fn duplicate_instance_ids_are_409_and_bad_slugs_422() {
    let app = TestApp::spawn().await;
    app.instance("shop", json!([])).await;

    let again = app
        .call(
            "POST",
            "/api/v1/instances",
            &app.admin,
            Some(json!({"id": "shop", "name": "Other", "url": "https://o.example.com"})),
        )
        .await;
    let bad = app
        .call(
            "POST",
            "/api/v1/instances",
            &app.admin,
            Some(json!({"id": "Shop Prod", "name": "x", "url": "https://o.example.com"})),
        )
        .await;

    assert_error(&again, 409, None);
    assert_error(&bad, 422, Some("id"));
    assert_eq!(
        app.get("/api/v1/instances/shop").await["name"],
        "Instance shop"
    );
}

pub async fn no_token_is_401_and_the_wrong_scope_is_403() {
    let app = TestApp::spawn().await;
    let read = app.token(&["read"]).await;
    let deploy = app.token(&["deploy"]).await;
    let hook = app.token(&["hook"]).await;

    let anonymous = app
        .http
        .get(app.url("/api/v1/releases"))
        .send()
        .await
        .unwrap();
    let bogus = app.call("GET", "/api/v1/releases", "lsk_nope", None).await;
    let read_writes = app
        .call(
            "POST",
            "/api/v1/instances",
            &read,
            Some(json!({"id": "a", "name": "a", "url": "https://a.b"})),
        )
        .await;
    let deploy_steps = app
        .call(
            "POST",
            "/api/v1/instances",
            &deploy,
            Some(json!({"id": "a", "name": "a", "url": "https://a.b",
                "steps": [{"name": "x", "run": "id"}]})),
        )
        .await;
    let deploy_plain = app
        .call(
            "POST",
            "/api/v1/instances",
            &deploy,
            Some(json!({"id": "b", "name": "b", "url": "https://a.b"})),
        )
        .await;
    let hook_reads_releases = app.call("GET", "/api/v1/releases", &hook, None).await;
    let deploy_tokens = app.call("GET", "/api/v1/tokens", &deploy, None).await;

    assert_eq!(anonymous.status(), 401);
    assert_error(&bogus, 401, None);
    assert_error(&read_writes, 403, None);
    assert_error(&deploy_steps, 403, None);
    assert_eq!(deploy_plain.0, 201);
    assert_error(&hook_reads_releases, 403, None);
    assert_error(&deploy_tokens, 403, None);
}

pub async fn tokens_are_shown_once_listed_without_secrets_and_stop_working_when_revoked() {
    let app = TestApp::spawn().await;
    let created = app
        .post("/api/v1/tokens", json!({"name": "ci", "scopes": ["read"]}))
        .await;
    let secret = created["token"].as_str().unwrap().to_owned();

    let (before, _) = app.call("GET", "/api/v1/releases", &secret, None).await;
    let listed = app.get("/api/v1/tokens").await;
    let path = format!("/api/v1/tokens/{}", created["id"].as_str().unwrap());
    let (revoked, _) = app.call("DELETE", &path, &app.admin, None).await;
    let (after, _) = app.call("GET", "/api/v1/releases", &secret, None).await;
    let bad_scope = app
        .call(
            "POST",
            "/api/v1/tokens",
            &app.admin,
            Some(json!({"name": "x", "scopes": ["root"]})),
        )
        .await;

    assert_eq!(before, 200);
    assert!(!listed.to_string().contains(&secret));
    assert!(!listed.to_string().contains(&app.admin));
    assert_eq!(revoked, 204);
    assert_eq!(after, 401);
    assert_error(&bad_scope, 422, Some("scopes[0]"));
}

pub async fn health_and_metrics_are_served_without_a_token() {
    let app = TestApp::spawn().await;
    app.instance("shop", json!([])).await;
    app.start_release("shop", "v1").await;

    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(health.status(), 200);
    assert!(metrics.contains("lockstep_releases{stage="), "{metrics}");
    assert!(metrics.contains("lockstep_open_locks"));
    assert!(metrics.contains("lockstep_attempt_duration_seconds"));
}

pub async fn webhook_secrets_are_write_only() {
    let app = TestApp::spawn().await;
    let created = app
        .webhook(
            "https://hooks.example.com/",
            json!([{"event": "after_release"}]),
            json!({"secret": "very-secret-value"}),
        )
        .await;
    let listed = app.get("/api/v1/webhooks").await;

    assert_eq!(created["has_secret"], true);
    assert!(!created.to_string().contains("very-secret-value"));
    assert!(!listed.to_string().contains("very-secret-value"));
}
