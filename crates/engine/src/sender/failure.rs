//! The kinds of failed attempts, and how a transport error is told apart.
//!
//! An error from the HTTP client is a chain of causes: reqwest's, hyper's, an I/O error, and
//! at the bottom the one that decides — a rustls error, a refused connection, a lookup that
//! failed. [`classify`] walks the chain and recognises those by type, not by their wording.

use std::error::Error;
use std::io;

use super::lookup::LookupError;

/// Why an attempt failed, as the API, the action log and metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No complete answer within the webhook's deadline.
    Timeout,
    /// The connection could not be made, or broke before the answer was complete.
    Connect,
    /// The endpoint's name does not resolve.
    Dns,
    /// The TLS handshake failed: an untrusted, expired or mismatched certificate, or no TLS.
    Tls,
    /// A 3xx answer, which is never followed.
    Redirect,
    /// An answer other than 2xx or 3xx; its code is the attempt's status.
    Status,
    /// The outbound address policy refused the target.
    Blocked,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connect",
            Failure::Dns => "dns",
            Failure::Tls => "tls",
            Failure::Redirect => "redirect",
            Failure::Status => "status",
            Failure::Blocked => "blocked",
        }
    }
}

/// Names the kind of a transport failure from the first cause in the chain that tells it;
/// a failure no cause explains is the connection's.
pub fn classify(err: &(dyn Error + 'static)) -> Failure {
    causes(err).find_map(kind_of).unwrap_or(Failure::Connect)
}

fn kind_of(cause: &(dyn Error + 'static)) -> Option<Failure> {
    if let Some(lookup) = cause.downcast_ref::<LookupError>() {
        return Some(match lookup {
            LookupError::Unresolved(_) => Failure::Dns,
            LookupError::Refused(_) => Failure::Blocked,
        });
    }
    if cause.is::<rustls::Error>() {
        return Some(Failure::Tls);
    }
    let io = cause.downcast_ref::<io::Error>()?;
    match io.kind() {
        io::ErrorKind::TimedOut => Some(Failure::Timeout),
        // tokio-rustls reports a peer that hangs up mid-handshake only in these words.
        io::ErrorKind::UnexpectedEof if io.to_string() == "tls handshake eof" => Some(Failure::Tls),
        _ => None,
    }
}

/// The error and its causes, outermost first. An I/O error's own `source` skips the error
/// it wraps, so the walk steps into that one instead.
fn causes<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |&current| {
        let wrapped = current
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn Error + 'static));
        wrapped.or_else(|| current.source())
    })
}

/// The error with its causes, one after another, without the URL (it may hold a token).
pub fn describe(err: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(err) {
        let text = match cause.downcast_ref::<reqwest::Error>() {
            Some(r) => {
                let plain = r.to_string();
                match r.url() {
                    Some(url) => plain.replace(&format!(" ({url})"), ""),
                    None => plain,
                }
            }
            None => cause.to_string(),
        };
        // Wrappers often repeat their cause's words; say them once.
        if !parts.last().is_some_and(|last| last.ends_with(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wrapper like those of hyper and reqwest: its own words and a cause.
    #[derive(Debug)]
    struct Wrapped(&'static str, Box<dyn Error + Send + Sync>);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.1)
        }
    }

    fn chain(bottom: impl Error + Send + Sync + 'static) -> Wrapped {
        let connect = Wrapped("tcp connect error", Box::new(bottom));
        Wrapped("client error (Connect)", Box::new(connect))
    }

    #[test]
    fn a_rustls_error_inside_an_io_error_is_a_tls_failure() {
        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let io = io::Error::new(io::ErrorKind::InvalidData, bad);

        assert_eq!(classify(&chain(io)), Failure::Tls);
    }

    #[test]
    fn an_alert_from_the_server_during_the_handshake_is_a_tls_failure() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);

        assert_eq!(classify(&chain(alert)), Failure::Tls);
    }

    #[test]
    fn a_peer_hanging_up_mid_handshake_is_a_tls_failure_but_other_eofs_are_not() {
        let handshake = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        let body = io::Error::new(io::ErrorKind::UnexpectedEof, "early eof");

        assert_eq!(classify(&chain(handshake)), Failure::Tls);
        assert_eq!(classify(&chain(body)), Failure::Connect);
    }

    #[test]
    fn lookup_failures_are_dns_and_policy_refusals_are_blocked() {
        let unresolved = LookupError::Unresolved("no such host".into());
        let refused = LookupError::Refused("10.0.0.1 is a private address".into());

        assert_eq!(classify(&chain(unresolved)), Failure::Dns);
        assert_eq!(classify(&chain(refused)), Failure::Blocked);
    }

    #[test]
    fn refused_and_reset_connections_are_connect_failures_and_timed_out_ones_timeouts() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);

        assert_eq!(classify(&chain(refused)), Failure::Connect);
        assert_eq!(classify(&chain(reset)), Failure::Connect);
        assert_eq!(classify(&chain(timed_out)), Failure::Timeout);
    }

    #[test]
    fn words_alone_never_decide_the_kind() {
        let misleading = io::Error::other("certificate tls handshake dns error");

        assert_eq!(classify(&chain(misleading)), Failure::Connect);
    }

    #[test]
    fn the_description_names_every_cause_once_including_the_one_inside_an_io_error() {
        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let io = io::Error::new(io::ErrorKind::InvalidData, bad);

        let text = describe(&chain(io));

        assert_eq!(
            text,
            "client error (Connect): tcp connect error: invalid peer certificate: Expired"
        );
    }
}
