//! Mutated and random JSON bodies against every writing endpoint: the answer is a 2xx or a
//! 4xx in the API's error shape, never a 5xx, and the server stays up.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::support::TestApp;

const CASES_PER_BODY: usize = 60;

fn random_string(rng: &mut StdRng) -> String {
    let pool = [
        "",
        "a",
        "v1.0",
        "Shop",
        "é🚀\u{2028}</script>",
        "\0",
        "../../etc",
        "x y",
    ];
    match rng.random_range(0..4) {
        0 => pool[rng.random_range(0..pool.len())].to_owned(),
        1 => "x".repeat(rng.random_range(0..20_000)),
        2 => (0..rng.random_range(0..40))
            .map(|_| rng.random::<char>())
            .collect(),
        _ => format!(
            "https://{}.example/{}",
            rng.random::<u32>(),
            rng.random::<u16>()
        ),
    }
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..9) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e300),
        4 | 5 => json!(random_string(rng)),
        6 if depth < 4 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        7 if depth < 4 => {
            let mut map = Map::new();
            for _ in 0..rng.random_range(0..4) {
                map.insert(random_string(rng), random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
        _ => nested(rng.random_range(1..300)),
    }
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

/// One mutation of a valid body, as the bytes to send.
fn mutate(rng: &mut StdRng, valid: &Value) -> Vec<u8> {
    let mut body = valid.clone();
    if let Some(map) = body.as_object_mut() {
        let keys: Vec<String> = map.keys().cloned().collect();
        match rng.random_range(0..4) {
            0 if !keys.is_empty() => {
                map.remove(&keys[rng.random_range(0..keys.len())]);
            }
            1 if !keys.is_empty() => {
                let key = keys[rng.random_range(0..keys.len())].clone();
                map.insert(key, random_value(rng, 0));
            }
            2 => {
                map.insert(random_string(rng), random_value(rng, 0));
            }
            _ => body = random_value(rng, 0),
        }
    }
    let mut bytes = serde_json::to_vec(&body).unwrap();
    match rng.random_range(0..6) {
        0 if !bytes.is_empty() => bytes.truncate(rng.random_range(0..bytes.len())),
        1 if !bytes.is_empty() => {
            let at = rng.random_range(0..bytes.len());
            bytes[at] = rng.random();
        }
        2 => bytes
            .splice(
                0..0,
                (0..rng.random_range(1..8)).map(|_| rng.random::<u8>()),
            )
            .for_each(drop),
        _ => {}
    }
    bytes
}

pub async fn mutated_bodies_never_get_a_5xx_on_any_writing_endpoint() {
    let app = TestApp::spawn().await;
    app.instance("shop", json!([])).await;
    let release = app.start_release("shop", "v1").await;
    let webhook = app
        .webhook(
            "https://hooks.example.com/",
            json!([{"event": "after_release"}]),
            json!({}),
        )
        .await;
    let seed: u64 = std::env::var("LOCKSTEP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let targets = [
        (
            "POST",
            "/api/v1/instances".to_owned(),
            json!({"id": "blog", "name": "Blog", "url": "https://b.example",
                "attributes": {"a": 1}, "steps": [{"name": "s", "run": "true"}]}),
        ),
        (
            "PATCH",
            "/api/v1/instances/shop".to_owned(),
            json!({"name": "Shop 2", "attributes": {}}),
        ),
        (
            "POST",
            "/api/v1/webhooks".to_owned(),
            json!({"url": "https://h.example/", "secret": "abc",
                "events": [{"event": "before_release", "locking": true}], "instances": ["shop"],
                "timeout_seconds": 30, "retry_schedule": "5s,1m", "lock_timeout_seconds": 60,
                "lock_default_outcome": "abort"}),
        ),
        (
            "PATCH",
            format!("/api/v1/webhooks/{}", webhook["id"].as_str().unwrap()),
            json!({"secret": null, "enabled": false, "instances": null}),
        ),
        (
            "POST",
            "/api/v1/releases".to_owned(),
            json!({"instance": "shop", "tag": "v2", "zero_downtime": true}),
        ),
        (
            "POST",
            "/api/v1/locks/release".to_owned(),
            json!({"lock": "lsl_x", "outcome": "continue", "message": "m"}),
        ),
        (
            "POST",
            "/api/v1/locks/extend".to_owned(),
            json!({"lock": "lsl_x", "seconds": 60}),
        ),
        (
            "POST",
            format!("/api/v1/logs/{}/entries", release["parent_log"]),
            json!({"message": "hello", "status": "info"}),
        ),
        (
            "POST",
            "/api/v1/tokens".to_owned(),
            json!({"name": "t", "scopes": ["read"]}),
        ),
        (
            "POST",
            format!(
                "/api/v1/releases/{}/cancel",
                release["id"].as_str().unwrap()
            ),
            json!({"message": "m"}),
        ),
    ];
    for (method, path, valid) in &targets {
        for _ in 0..CASES_PER_BODY {
            let body = mutate(&mut rng, valid);
            let response = app
                .http
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(path),
                )
                .bearer_auth(&app.admin)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: {method} {path} failed: {e}"));
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                status.as_u16() < 500,
                "seed {seed}: {method} {path} answered {status} to {:?}",
                String::from_utf8_lossy(&body)
            );
            if status.is_client_error() {
                assert!(
                    answer["error"]["code"].is_string(),
                    "seed {seed}: {method} {path}: {answer}"
                );
            }
        }
    }
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

pub async fn repeated_bad_tokens_from_one_address_are_held_back_but_valid_ones_pass() {
    let app = TestApp::spawn().await;
    let mut statuses = Vec::new();
    for n in 0..25 {
        let (status, _) = app
            .call("GET", "/api/v1/releases", &format!("lsk_guess_{n}"), None)
            .await;
        statuses.push(status.as_u16());
    }
    let response = app
        .http
        .get(app.url("/api/v1/releases"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();

    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(response.status(), 200, "a valid token is never held back");
    let (status, _) = app
        .call("GET", "/api/v1/releases", "lsk_one_more_guess", None)
        .await;
    assert_eq!(status, 429);
}

pub async fn json_nested_too_deep_is_refused_with_a_400() {
    let app = TestApp::spawn().await;
    let body = json!({"id": "deep", "name": "Deep", "url": "https://d.example",
        "attributes": {"x": nested(200)}});

    let (status, answer) = app
        .call("POST", "/api/v1/instances", &app.admin, Some(body))
        .await;

    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "malformed_request");
}

pub async fn a_nul_character_in_any_text_is_a_422_naming_the_field() {
    let app = TestApp::spawn().await;

    let body = json!({"name": "a\u{0}b", "scopes": ["read"]});
    let (status, answer) = app
        .call("POST", "/api/v1/tokens", &app.admin, Some(body))
        .await;
    let path = "/api/v1/instances/a%00b";
    let (lookup, _) = app.call("GET", path, &app.admin, None).await;

    assert_eq!(status, 422);
    assert_eq!(answer["error"]["field"], "name");
    assert!(lookup.is_client_error(), "{lookup}");
}
