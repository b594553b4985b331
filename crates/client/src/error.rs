//! What can go wrong talking to Lockstep, with the server's own words when it answered.

use std::fmt;

/// An error answer from the server: `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status, such as 404 or 422.
    pub status: u16,
    /// A stable code to match on: `not_found`, `invalid_field`, `conflict`, …
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// The request field that was wrong, when one was.
    pub field: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {} {}", self.message, self.status, self.code)?;
        if let Some(field) = &self.field {
            write!(f, ", field {field:?}")?;
        }
        f.write_str(")")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error; nothing was changed if it is a 4xx.
    #[error("{0}")]
    Api(ApiError),
    /// The server could not be reached, even after the retries.
    #[error("cannot reach the server at {server}: {reason}")]
    Unreachable {
        server: String,
        reason: String,
        #[source]
        source: reqwest::Error,
    },
    /// The request or its answer broke off, or timed out, after reaching the server.
    #[error("the request to {server} failed: {reason}")]
    Transport {
        server: String,
        reason: String,
        #[source]
        source: reqwest::Error,
    },
    /// A release's event stream kept breaking and could not be opened again.
    #[error("the event stream from {server} broke off: {reason}")]
    Interrupted { server: String, reason: String },
    /// The server answered with something this client cannot read.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
    /// The server address is not a usable http(s) URL.
    #[error("the server address {0:?} is not an http or https URL")]
    ServerUrl(String),
}

impl Error {
    /// The server's error answer, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            _ => None,
        }
    }

    /// Whether the server said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(|api| api.status == 404)
    }

    pub(crate) fn from_transport(server: &str, source: reqwest::Error) -> Error {
        let reason = root_cause(&source);
        let server = server.to_owned();
        if source.is_connect() {
            Error::Unreachable {
                server,
                reason,
                source,
            }
        } else {
            Error::Transport {
                server,
                reason,
                source,
            }
        }
    }
}

/// The innermost cause, which is the one a person can act on ("Connection refused");
/// reqwest's own message only says that sending failed.
fn root_cause(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".into();
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Reads an error answer: the API's shape when it is one, else the bare status.
pub(crate) fn api_error(status: u16, body: &[u8]) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
        message: String,
        #[serde(default)]
        field: Option<String>,
    }

    match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => ApiError {
            status,
            code: envelope.error.code,
            message: envelope.error.message,
            field: envelope.error.field,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(200).collect();
            ApiError {
                status,
                code: format!("http_{status}"),
                message: if text.is_empty() {
                    format!("the server answered {status}")
                } else {
                    text
                },
                field: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_error_answer_keeps_code_message_and_field() {
        let body = br#"{"error": {"code": "invalid_field", "message": "tag: not a ref",
            "field": "tag"}}"#;
        let err = api_error(422, body);
        assert_eq!(err.code, "invalid_field");
        assert_eq!(err.field.as_deref(), Some("tag"));
        assert_eq!(
            err.to_string(),
            "tag: not a ref (HTTP 422 invalid_field, field \"tag\")"
        );
    }

    #[test]
    fn an_answer_in_another_shape_still_gives_one_readable_line() {
        let err = api_error(502, b"<html>Bad Gateway</html>\n");
        assert_eq!(err.code, "http_502");
        assert_eq!(err.message, "<html>Bad Gateway</html>");
        assert_eq!(api_error(500, b"").message, "the server answered 500");
    }
}
