//! Checking Lockstep's Standard Webhooks signatures.
//!
//! Every delivery carries `webhook-id`, `webhook-timestamp` and `webhook-signature`; the last
//! holds one `v1,<base64 HMAC-SHA256>` per signing key, over `id.timestamp.body`. A
//! [`Verifier`] holds one or more `whsec_…` keys (several while a rotated key overlaps its
//! successor) and accepts a request whose timestamp is within five minutes of now, either
//! way, and one of whose signatures matches one of its keys.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from now, in either direction.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signing key is not a whsec_ key with base64 after the prefix")]
    BadKey,
    #[error("the request has no {0} header")]
    MissingHeader(&'static str),
    #[error("the webhook-timestamp header is not a number of seconds")]
    BadTimestamp,
    #[error(
        "the request is {0} seconds older than the 5 minutes allowed: a replay, or a slow queue"
    )]
    TooOld(u64),
    #[error(
        "the request is {0} seconds further in the future than the 5 minutes allowed: \
         check the clocks"
    )]
    TooNew(u64),
    #[error("no signature matches: wrong key, or the body was changed")]
    NoMatch,
}

/// Checks signatures with one or more keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Verifier({} keys)", self.keys.len())
    }
}

impl Verifier {
    /// A verifier for one `whsec_…` key, as `GET /api/v1/webhooks/{id}/signing-key` shows it.
    pub fn new(key: &str) -> Result<Verifier, SignatureError> {
        Verifier::with_keys(&[key])
    }

    /// A verifier that accepts any of several keys, for a rotation's overlap.
    pub fn with_keys(keys: &[&str]) -> Result<Verifier, SignatureError> {
        let decode = |key: &&str| {
            let encoded = key.strip_prefix("whsec_").unwrap_or(key);
            STANDARD.decode(encoded).map_err(|_| SignatureError::BadKey)
        };
        let keys = keys.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() || keys.iter().any(Vec::is_empty) {
            return Err(SignatureError::BadKey);
        }
        Ok(Verifier { keys })
    }

    /// Checks a request's headers and exact body bytes against the clock now.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.verify_at(headers, body, now.as_secs() as i64)
    }

    /// Checks a request as if the time were `now` (Unix seconds).
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let id = header(headers, "webhook-id")?;
        let timestamp: i64 = header(headers, "webhook-timestamp")?
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        check_window(timestamp, now)?;
        let signatures = header(headers, "webhook-signature")?;
        let expected: Vec<Vec<u8>> = self
            .keys
            .iter()
            .map(|k| mac(k, id, timestamp, body))
            .collect();
        let matches = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|given| expected.iter().any(|e| bool::from(e.ct_eq(&given))));
        if matches {
            Ok(())
        } else {
            Err(SignatureError::NoMatch)
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, SignatureError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(SignatureError::MissingHeader(name))
}

fn check_window(timestamp: i64, now: i64) -> Result<(), SignatureError> {
    let tolerance = TOLERANCE.as_secs() as i64;
    if timestamp < now - tolerance {
        return Err(SignatureError::TooOld((now - tolerance - timestamp) as u64));
    }
    if timestamp > now + tolerance {
        return Err(SignatureError::TooNew((timestamp - now - tolerance) as u64));
    }
    Ok(())
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OTHER: &str = "whsec_dGhpcyBpcyBhbm90aGVyIGtleSBvZiBieXRlcw==";
    const BODY: &[u8] =
        "{\"instance\":{\"name\":\"Größe 🚀 \u{2028} </script>\"},\"parent_log\":7}".as_bytes();

    /// Headers signed by the independent `standardwebhooks` implementation.
    fn signed(key: &str, id: &str, timestamp: i64, body: &[u8]) -> HeaderMap {
        let signer = standardwebhooks::Webhook::new(key).unwrap();
        let signature = signer.sign(id, timestamp, body).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&signature).unwrap(),
        );
        headers
    }

    #[test]
    fn a_request_signed_by_the_reference_implementation_verifies() {
        let now = 1_780_000_000;
        let headers = signed(KEY, "dlv_1", now, BODY);
        assert_eq!(
            Verifier::new(KEY).unwrap().verify_at(&headers, BODY, now),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_or_another_key_does_not_match() {
        let now = 1_780_000_000;
        let headers = signed(KEY, "dlv_1", now, BODY);
        let verifier = Verifier::new(KEY).unwrap();
        assert_eq!(
            verifier.verify_at(&headers, b"{}", now),
            Err(SignatureError::NoMatch)
        );
        let other = Verifier::new(OTHER).unwrap();
        assert_eq!(
            other.verify_at(&headers, BODY, now),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn the_window_is_five_minutes_either_way_and_says_which_way_it_failed() {
        let now = 1_780_000_000;
        let verifier = Verifier::new(KEY).unwrap();
        for skew in [-300, 0, 300] {
            let headers = signed(KEY, "dlv_1", now + skew, BODY);
            assert_eq!(
                verifier.verify_at(&headers, BODY, now),
                Ok(()),
                "skew {skew}"
            );
        }
        let old = signed(KEY, "dlv_1", now - 301, BODY);
        assert_eq!(
            verifier.verify_at(&old, BODY, now),
            Err(SignatureError::TooOld(1))
        );
        let new = signed(KEY, "dlv_1", now + 360, BODY);
        assert_eq!(
            verifier.verify_at(&new, BODY, now),
            Err(SignatureError::TooNew(60))
        );
    }

    #[test]
    fn during_a_rotation_either_signature_is_enough() {
        let now = 1_780_000_000;
        let mut headers = signed(KEY, "dlv_1", now, BODY);
        let second = signed(OTHER, "dlv_1", now, BODY);
        let both = format!(
            "{} {}",
            headers["webhook-signature"].to_str().unwrap(),
            second["webhook-signature"].to_str().unwrap()
        );
        headers.insert("webhook-signature", HeaderValue::from_str(&both).unwrap());
        assert_eq!(
            Verifier::new(OTHER).unwrap().verify_at(&headers, BODY, now),
            Ok(())
        );
        let either = Verifier::with_keys(&[OTHER, KEY]).unwrap();
        assert_eq!(
            either.verify_at(&signed(KEY, "dlv_1", now, BODY), BODY, now),
            Ok(())
        );
    }

    #[test]
    fn missing_headers_and_bad_keys_are_named() {
        let verifier = Verifier::new(KEY).unwrap();
        let err = verifier.verify_at(&HeaderMap::new(), BODY, 0).unwrap_err();
        assert_eq!(err, SignatureError::MissingHeader("webhook-id"));
        assert_eq!(
            Verifier::new("whsec_!!!").unwrap_err(),
            SignatureError::BadKey
        );
    }
}
