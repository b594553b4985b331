//! The client against a small fake of the API on loopback: what it sends, how it reads
//! errors, when it retries, and how it follows a release's event stream.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use lockstep_client::{Client, Error, LogStatus, Outcome, Retry};

/// What the fake was sent: each request's path and query, authorization and body.
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn quick_retry(attempts: u32) -> Retry {
    Retry {
        attempts,
        first_pause: Duration::from_millis(20),
    }
}

async fn record(seen: &Seen, path: &str, headers: &HeaderMap, body: Value) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    seen.lock().unwrap().push((path.to_owned(), auth, body));
}

#[tokio::test]
async fn releasing_a_lock_sends_the_token_outcome_and_message_with_the_bearer_token() {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/api/v1/locks/release",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| async move {
                    record(&seen, "/locks/release", &headers, body).await;
                    Json(json!({"id": "lck_1", "status": "released", "outcome": "abort"}))
                },
            ),
        )
        .with_state(seen.clone());
    let client = Client::new(&serve(app).await, "lsk_hook").unwrap();

    let lock = client
        .release_lock("lsl_abc", Outcome::Abort, "tests failed")
        .await
        .unwrap();

    assert_eq!(lock.id, "lck_1");
    assert_eq!(lock.outcome.as_deref(), Some("abort"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, "Bearer lsk_hook");
    assert_eq!(
        seen[0].2,
        json!({"lock": "lsl_abc", "outcome": "abort", "message": "tests failed"})
    );
}

#[tokio::test]
async fn a_4xx_answer_is_returned_at_once_with_its_code_message_and_field() {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/api/v1/logs/{id}/entries",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| async move {
                    record(&seen, "/logs/entries", &headers, body).await;
                    let error = json!({"error": {"code": "invalid_field",
                    "message": "status: must be one of info, success", "field": "status"}});
                    (StatusCode::UNPROCESSABLE_ENTITY, Json(error))
                },
            ),
        )
        .with_state(seen.clone());
    let client = Client::new(&serve(app).await, "t")
        .unwrap()
        .with_retry(quick_retry(5));

    let err = client
        .append_log(12, "hello", LogStatus::Warning)
        .await
        .unwrap_err();

    let api = err.api().expect("an API error");
    assert_eq!((api.status, api.code.as_str()), (422, "invalid_field"));
    assert_eq!(api.field.as_deref(), Some("status"));
    assert_eq!(seen.lock().unwrap().len(), 1, "a 4xx must not be retried");
    assert_eq!(seen.lock().unwrap()[0].2["status"], "warning");
}

#[tokio::test]
async fn a_server_that_comes_up_while_the_client_retries_is_reached() {
    let port = free_port();
    let server = format!("http://127.0.0.1:{port}");
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let app = Router::new().route(
            "/api/v1/logs/{id}",
            get(|| async { Json(json!({"entries": [{"id": 9, "message": "root"}]})) }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        axum::serve(listener, app).await
    });
    let client = Client::new(&server, "t")
        .unwrap()
        .with_retry(quick_retry(30));

    let entries = client.log(9).await.unwrap();

    assert_eq!(entries[0].message, "root");
}

#[tokio::test]
async fn a_server_that_never_answers_is_reported_unreachable_after_the_last_try() {
    let server = format!("http://127.0.0.1:{}", free_port());
    let client = Client::new(&server, "t")
        .unwrap()
        .with_retry(quick_retry(3));
    let started = std::time::Instant::now();

    let err = client.release("rel_1").await.unwrap_err();

    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "it did not wait between tries"
    );
}

/// Serves one `update` and then closes the stream; opened again, it serves the `end`.
async fn flaky_events(
    State(seen): State<Seen>,
    Query(query): Query<Vec<(String, String)>>,
) -> String {
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let first = seen.lock().unwrap().is_empty();
    seen.lock()
        .unwrap()
        .push((query.join("&"), String::new(), Value::Null));
    let release = |stage: &str| json!({"id": "rel_1", "stage": stage, "parent_log": 1});
    if first {
        let data = json!({"release": release("steps"), "entries": [{"id": 1}, {"id": 4}]});
        format!(": hi\n\nevent: update\nid: 4\ndata: {data}\n\n")
    } else {
        let data = json!({"release": release("closed"), "entries": [{"id": 5}]});
        format!("event: end\nid: 5\ndata: {data}\n\n")
    }
}

#[tokio::test]
async fn a_broken_event_stream_is_opened_again_after_the_last_entry_it_carried() {
    let seen = Seen::default();
    let app = Router::new()
        .route("/api/v1/releases/rel_1/events", get(flaky_events))
        .with_state(seen.clone());
    let client = Client::new(&serve(app).await, "t").unwrap();
    let mut events = client.release_events("rel_1");

    let first = events.next().await.unwrap().unwrap();
    let last = events.next().await.unwrap().unwrap();

    assert!(!first.last && first.entries.len() == 2);
    assert!(last.last && last.release.succeeded());
    assert!(events.next().await.is_none());
    let opened: Vec<_> = seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
    assert_eq!(opened, ["", "after=4"]);
}
