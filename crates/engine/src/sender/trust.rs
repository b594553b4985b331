//! Whom a delivery's TLS connection trusts: the public roots, or, for a webhook that names
//! its own CA certificate, that certificate alone.
//!
//! A webhook's CA replaces the public roots rather than adding to them: an operator who
//! names the CA of a private endpoint means that endpoint's certificate must come from it.
//! Each distinct CA gets its own HTTP client, built once and kept, so its connections are
//! pooled like the public client's.

use std::collections::HashMap;
use std::sync::Mutex;

use rustls::pki_types::pem::{self, SectionKind};
use rustls::pki_types::CertificateDer;

/// The longest CA certificate text a webhook may hold.
pub const MAX_CA_PEM: usize = 64 * 1024;

/// How many per-CA clients are kept; past this the cache starts again, which costs only
/// fresh connections.
const MAX_CLIENTS: usize = 256;

/// Why a webhook's CA certificate text cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("must be at most {MAX_CA_PEM} bytes of PEM")]
    TooLong,
    #[error("holds no certificate; expected PEM starting with -----BEGIN CERTIFICATE-----")]
    Empty,
    #[error("is not valid PEM: {0}")]
    NotPem(String),
    #[error("may hold only certificates, not a {0}")]
    NotCertificate(&'static str),
    #[error("certificate {number} is not a usable X.509 CA certificate: {reason}")]
    Unusable {
        number: usize,
        reason: rustls::Error,
    },
}

/// One or more CA certificates a webhook's endpoint must chain to.
#[derive(Debug, Clone)]
pub struct CaCertificate {
    certificates: Vec<CertificateDer<'static>>,
}

impl CaCertificate {
    /// Reads PEM text holding one or more certificates, each of which must parse as X.509
    /// and be usable as a trust anchor.
    pub fn parse(text: &str) -> Result<CaCertificate, CaError> {
        if text.len() > MAX_CA_PEM {
            return Err(CaError::TooLong);
        }
        let mut reader = text.as_bytes();
        let mut certificates = Vec::new();
        while let Some((kind, der)) =
            pem::from_buf(&mut reader).map_err(|e| CaError::NotPem(e.to_string()))?
        {
            if kind != SectionKind::Certificate {
                return Err(CaError::NotCertificate(section_name(kind)));
            }
            certificates.push(CertificateDer::from(der));
        }
        if certificates.is_empty() {
            return Err(CaError::Empty);
        }

        let mut roots = rustls::RootCertStore::empty();
        for (i, certificate) in certificates.iter().enumerate() {
            roots
                .add(certificate.clone())
                .map_err(|reason| CaError::Unusable {
                    number: i + 1,
                    reason,
                })?;
        }
        Ok(CaCertificate { certificates })
    }

    fn client(&self, builder: reqwest::ClientBuilder) -> reqwest::Result<reqwest::Client> {
        let builder = self
            .certificates
            .iter()
            .try_fold(builder.tls_built_in_root_certs(false), |b, der| {
                reqwest::Certificate::from_der(der).map(|c| b.add_root_certificate(c))
            })?;
        builder.build()
    }
}

fn section_name(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::PublicKey => "public key",
        SectionKind::RsaPrivateKey | SectionKind::PrivateKey | SectionKind::EcPrivateKey => {
            "private key"
        }
        SectionKind::Crl => "certificate revocation list",
        SectionKind::Csr => "certificate request",
        _ => "non-certificate section",
    }
}

/// The HTTP clients of a sender: one trusting the public roots, and one per CA certificate
/// that a webhook named, keyed by the certificate's text.
pub(super) struct Clients {
    public: reqwest::Client,
    by_ca: Mutex<HashMap<String, reqwest::Client>>,
    builder: Box<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
}

impl Clients {
    /// `builder` gives the settings every client shares, such as the resolver and the
    /// redirect policy.
    pub(super) fn new(
        builder: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> reqwest::Result<Clients> {
        Ok(Clients {
            public: builder().build()?,
            by_ca: Mutex::new(HashMap::new()),
            builder: Box::new(builder),
        })
    }

    /// The client for a delivery whose webhook names `ca` (PEM), or the public one.
    pub(super) fn for_ca(&self, ca: Option<&str>) -> Result<reqwest::Client, String> {
        let Some(pem) = ca else {
            return Ok(self.public.clone());
        };
        if let Some(client) = self.cached(pem) {
            return Ok(client);
        }

        let unusable = |e: &dyn std::fmt::Display| format!("the webhook's CA certificate {e}");
        let ca = CaCertificate::parse(pem).map_err(|e| unusable(&e))?;
        let client = ca.client((self.builder)()).map_err(|e| unusable(&e))?;

        let mut cache = self.by_ca.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CLIENTS {
            cache.clear();
        }
        cache.insert(pem.to_owned(), client.clone());
        Ok(client)
    }

    fn cached(&self, pem: &str) -> Option<reqwest::Client> {
        let cache = self.by_ca.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(pem).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_pem_certificate_and_a_bundle_of_them_parse() {
        let (one, _) = self_signed();
        let (two, _) = self_signed();

        assert_eq!(CaCertificate::parse(&one).unwrap().certificates.len(), 1);
        let bundle = format!("{one}\n{two}");
        assert_eq!(CaCertificate::parse(&bundle).unwrap().certificates.len(), 2);
    }

    #[test]
    fn text_that_is_no_certificate_is_refused_with_the_reason() {
        let (cert, key) = self_signed();
        let garbled = cert.replace("MII", "M!I");
        let broken = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";

        assert!(matches!(CaCertificate::parse(""), Err(CaError::Empty)));
        assert!(matches!(
            CaCertificate::parse("not pem at all"),
            Err(CaError::Empty)
        ));
        assert!(matches!(
            CaCertificate::parse(&garbled),
            Err(CaError::NotPem(_))
        ));
        assert!(matches!(
            CaCertificate::parse(broken),
            Err(CaError::Unusable { number: 1, .. })
        ));
        let with_key = format!("{cert}{key}");
        let refused = CaCertificate::parse(&with_key).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "may hold only certificates, not a private key"
        );
    }

    #[test]
    fn certificate_text_past_the_limit_is_refused_before_it_is_read() {
        let (cert, _) = self_signed();
        let huge = cert.repeat(MAX_CA_PEM / cert.len() + 1);

        assert!(matches!(CaCertificate::parse(&huge), Err(CaError::TooLong)));
    }

    #[test]
    fn one_client_is_built_per_distinct_ca_and_kept() {
        let clients = Clients::new(reqwest::Client::builder).unwrap();
        let (first, _) = self_signed();
        let (second, _) = self_signed();

        clients.for_ca(Some(&first)).unwrap();
        clients.for_ca(Some(&first)).unwrap();
        clients.for_ca(Some(&second)).unwrap();
        clients.for_ca(None).unwrap();

        assert_eq!(clients.by_ca.lock().unwrap().len(), 2);
        assert!(clients.for_ca(Some("garbage")).is_err());
    }
}
