//! Checking that a request comes from the sender that knows the webhook's shared secret.
//!
//! The secret arrives twice: in the `X-MDOQ-Secret` header and in the body's `secret`.
//! Either may be missing (a proxy may strip headers; an older sender may send no body
//! field), but every copy that is present must match, and at least one must be.

use subtle::ConstantTimeEq;

/// The header that carries the shared secret.
pub const SECRET_HEADER: &str = "X-MDOQ-Secret";
/// The header that names the event (a Lockstep addition).
pub const EVENT_HEADER: &str = "X-MDOQ-Event";
/// The header that carries the delivery id, the same on every attempt (a Lockstep addition).
pub const DELIVERY_HEADER: &str = "X-MDOQ-Delivery";

/// Why a request's secret was not accepted. The variants say nothing of the secret itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the request carries no secret")]
    Missing,
    #[error("the request's secret does not match the webhook's")]
    Mismatch,
}

/// Checks the secrets a request carries, from its `X-MDOQ-Secret` header and its body,
/// against the one configured for the webhook.
///
/// The comparison takes the same time wherever two secrets of one length first differ, so
/// timing does not reveal the secret byte by byte; only its length may show.
pub fn verify_secret(
    expected: &str,
    header: Option<&str>,
    body: Option<&str>,
) -> Result<(), SecretError> {
    if header.is_none() && body.is_none() {
        return Err(SecretError::Missing);
    }
    let matches = |given: Option<&str>| {
        given.is_none_or(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
    };

    // Both copies are compared even when the first fails, so the time taken does not
    // tell which one was wrong.
    let header_ok = matches(header);
    let body_ok = matches(body);
    if header_ok & body_ok {
        Ok(())
    } else {
        Err(SecretError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_secret_in_the_header_or_the_body_or_both_is_accepted() {
        assert_eq!(verify_secret("s3cret", Some("s3cret"), None), Ok(()));
        assert_eq!(verify_secret("s3cret", None, Some("s3cret")), Ok(()));
        assert_eq!(
            verify_secret("s3cret", Some("s3cret"), Some("s3cret")),
            Ok(())
        );
    }

    #[test]
    fn a_request_without_any_secret_is_refused_as_missing() {
        assert_eq!(
            verify_secret("s3cret", None, None),
            Err(SecretError::Missing)
        );
    }

    #[test]
    fn one_wrong_copy_is_enough_to_refuse_the_request() {
        let wrong = Err(SecretError::Mismatch);
        assert_eq!(
            verify_secret("s3cret", Some("s3cret"), Some("other")),
            wrong
        );
        assert_eq!(
            verify_secret("s3cret", Some("s3creT"), Some("s3cret")),
            wrong
        );
        assert_eq!(verify_secret("s3cret", Some("s3cret2"), None), wrong);
        assert_eq!(verify_secret("s3cret", None, Some("")), wrong);
    }
}
