//! Certificates made at test time, and TLS acceptors that present them for `127.0.0.1`.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{crypto, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// What a TLS endpoint presents, and the PEM of the certificate that vouches for it.
pub struct Presented {
    pub acceptor: TlsAcceptor,
    pub authority_pem: String,
}

/// A certificate for `127.0.0.1` that signs itself: its own PEM is its authority.
pub fn self_signed() -> Presented {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params().self_signed(&key).unwrap();
    Presented {
        acceptor: acceptor(vec![cert.der().clone()], &key),
        authority_pem: cert.pem(),
    }
}

/// A certificate for `127.0.0.1` from a test CA, valid only in the year 2000.
pub fn expired_from_authority() -> Presented {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut params = leaf_params();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2000, 12, 31);
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();

    Presented {
        acceptor: acceptor(vec![cert.der().clone()], &key),
        authority_pem: ca.pem(),
    }
}

fn leaf_params() -> CertificateParams {
    CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap()
}

fn acceptor(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> TlsAcceptor {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}
