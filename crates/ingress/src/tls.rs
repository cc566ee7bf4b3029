//! TLS: certificates from `kubernetes.io/tls` Secrets (`tls.crt`, `tls.key`), chosen by SNI
//! from the current route table, and a self-signed default certificate for everything else
//! (no SNI, or a name no Ingress has a certificate for), as ingress-nginx's fake certificate.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::Shared;

/// The common name of the default certificate.
pub const DEFAULT_CERT_NAME: &str = "rkube ingress default certificate";

/// Why a Secret gives no certificate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CertError {
    #[error("secret has no {0}")]
    MissingKey(&'static str),
    #[error("tls.crt holds no PEM certificate")]
    NoCertificate,
    #[error("tls.key holds no PEM private key")]
    NoKey,
    #[error("certificate and key do not go together: {0}")]
    Invalid(String),
}

/// The certificate of a TLS Secret.
pub fn certified_key(
    secret: &Secret,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, CertError> {
    let data = secret.data.as_ref();
    let field = |name: &'static str| {
        data.and_then(|d| d.get(name))
            .map(|b| b.0.as_slice())
            .ok_or(CertError::MissingKey(name))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(field("tls.crt")?)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(CertError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(field("tls.key")?).map_err(|_| CertError::NoKey)?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| CertError::Invalid(e.to_string()))
}

/// A Secret's certificate as parsed at one resourceVersion.
type Parsed = (Option<String>, Result<Arc<CertifiedKey>, CertError>);

/// Parsed Secrets, kept between rebuilds of the route table while their resourceVersion
/// stays the same, so an endpoint change does not re-parse every certificate.
#[derive(Default)]
pub struct CertCache {
    entries: HashMap<String, Parsed>,
    used: std::collections::HashSet<String>,
}

impl CertCache {
    /// The certificate of a Secret (`namespace/name` is its key).
    pub fn get(
        &mut self,
        key: &str,
        secret: &Secret,
        provider: &CryptoProvider,
    ) -> Result<Arc<CertifiedKey>, CertError> {
        self.used.insert(key.to_owned());
        let version = secret.metadata.resource_version.clone();
        if let Some((v, parsed)) = self.entries.get(key)
            && *v == version
            && version.is_some()
        {
            return parsed.clone();
        }
        let parsed = certified_key(secret, provider).map(Arc::new);
        self.entries
            .insert(key.to_owned(), (version, parsed.clone()));
        parsed
    }

    /// Forgets the Secrets not asked for since the last call.
    pub fn sweep(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.entries.retain(|k, _| used.contains(k));
    }
}

/// A self-signed certificate for `ingress.local`, made at start.
pub fn default_certificate(provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    let mut params = rcgen::CertificateParams::new(vec!["ingress.local".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, DEFAULT_CERT_NAME);
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "rkube ingress default certificate",
    );
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Ok(Arc::new(CertifiedKey::from_der(
        vec![cert.der().clone()],
        key,
        provider,
    )?))
}

/// Chooses the certificate for each TLS handshake from the current route table.
pub struct Resolver {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ingress certificate resolver")
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.shared.table();
        client_hello
            .server_name()
            .and_then(|name| table.certificate(&crate::matching::request_host(name)))
            .or_else(|| Some(self.shared.default_cert.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(cert: &str, key: &str) -> Secret {
        Secret {
            data: Some(
                [
                    ("tls.crt".to_owned(), ByteString(cert.as_bytes().to_vec())),
                    ("tls.key".to_owned(), ByteString(key.as_bytes().to_vec())),
                ]
                .into(),
            ),
            type_: Some("kubernetes.io/tls".into()),
            ..Default::default()
        }
    }

    #[test]
    fn parses_a_tls_secret_and_refuses_bad_ones() {
        let provider = rustls::crypto::ring::default_provider();
        let made = rcgen::generate_simple_self_signed(vec!["a.example.com".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let good = secret(&made.cert.pem(), &made.signing_key.serialize_pem());
        assert!(certified_key(&good, &provider).is_ok());

        let other = rcgen::generate_simple_self_signed(vec!["b.example.com".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let mismatched = secret(&made.cert.pem(), &other.signing_key.serialize_pem());
        assert!(matches!(
            certified_key(&mismatched, &provider),
            Err(CertError::Invalid(_))
        ));
        assert!(matches!(
            certified_key(&secret("junk", "junk"), &provider),
            Err(CertError::NoCertificate)
        ));
        assert!(matches!(
            certified_key(&Secret::default(), &provider),
            Err(CertError::MissingKey("tls.crt"))
        ));
    }
}
