//! The kubelet's serving certificate through the certificates API (kube's
//! `--rotate-server-certificates` bootstrap): the kubelet makes a key, asks for a
//! certificate with a CertificateSigningRequest for the `kubernetes.io/kubelet-serving`
//! signer (subject `O=system:nodes, CN=system:node:NAME`, the node's names and addresses),
//! and waits for the controller manager to approve and sign it. The pair is kept in
//! `DIR/kubelet-server-current.pem` and used again while it is valid for a while yet.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use rcgen::KeyPair;

const SIGNER: &str = "kubernetes.io/kubelet-serving";
const FILE: &str = "kubelet-server-current.pem";
/// A kept certificate is requested again when less than this is left of it.
const RENEW_BEFORE: i64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("making the certificate request: {0}")]
    Request(#[from] rcgen::Error),
    #[error("the API server: {0}")]
    Api(#[from] kube::Error),
    #[error("certificate signing request {name} was {condition}: {message}")]
    Refused {
        name: String,
        condition: String,
        message: String,
    },
    #[error(
        "certificate signing request {name} was not signed within {seconds}s (is it approved? `kubectl certificate approve {name}`)"
    )]
    Timeout { name: String, seconds: u64 },
}

/// The serving certificate and key (PEM) for the node: the kept one if it is still good
/// for these names, else a new one from the API.
pub async fn serving_certificate(
    client: Client,
    dir: &Path,
    node_name: &str,
    ips: &[IpAddr],
    wait: Duration,
) -> Result<(String, String), CertificateError> {
    let file = dir.join(FILE);
    if let Ok(kept) = std::fs::read_to_string(&file)
        && let Some((cert, key)) = still_good(&kept, ips)
    {
        return Ok((cert, key));
    }
    let key = KeyPair::generate()?;
    let params = crate::server::node_certificate_params(node_name, ips)?;
    let request = params.serialize_request(&key)?.pem()?;
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("csr-".into()),
            ..ObjectMeta::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: SIGNER.into(),
            // An ECDSA key: no key encipherment, as kube's kubelet asks.
            usages: Some(vec!["digital signature".into(), "server auth".into()]),
            ..CertificateSigningRequestSpec::default()
        },
        status: None,
    };
    let created = api.create(&PostParams::default(), &csr).await?;
    let name = created.metadata.name.unwrap_or_default();
    tracing::info!(csr = %name, "asked for the kubelet's serving certificate");
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let current = api.get(&name).await?;
        let status = current.status.unwrap_or_default();
        if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
            let cert = String::from_utf8_lossy(&cert.0).into_owned();
            let key = key.serialize_pem();
            keep(dir, &cert, &key);
            return Ok((cert, key));
        }
        let refused = status
            .conditions
            .into_iter()
            .flatten()
            .find(|c| (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True");
        if let Some(c) = refused {
            return Err(CertificateError::Refused {
                name,
                condition: c.type_.to_lowercase(),
                message: c.message.unwrap_or_default(),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CertificateError::Timeout {
                name,
                seconds: wait.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes the pair, readable by root only.
fn keep(dir: &Path, cert: &str, key: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(FILE))?;
        file.write_all(format!("{cert}{key}").as_bytes())
    });
    if let Err(err) = written {
        tracing::warn!(
            "keeping the kubelet's serving certificate in {}: {err}",
            dir.display()
        );
    }
}

/// The certificate and key of a kept file, if the certificate names these addresses and
/// has more than [`RENEW_BEFORE`] left.
fn still_good(kept: &str, ips: &[IpAddr]) -> Option<(String, String)> {
    let end = "-----END CERTIFICATE-----";
    let split = kept.find(end)? + end.len();
    let (cert, key) = kept.split_at(split);
    let key = key.trim_start();
    KeyPair::from_pem(key).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).ok()?;
    let parsed = pem.parse_x509().ok()?;
    let left =
        parsed.validity().not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    if left < RENEW_BEFORE {
        return None;
    }
    let names: Vec<IpAddr> = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    ips.iter()
        .all(|ip| names.contains(ip))
        .then(|| (format!("{cert}\n"), key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_certificates_are_used_while_valid_for_the_addresses() {
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let (cert, key) = crate::server::serving_certificate("n1", &[ip], None).unwrap();
        let kept = format!("{cert}{key}");
        let (c, k) = still_good(&kept, &[ip]).unwrap();
        assert!(c.contains("BEGIN CERTIFICATE") && k.contains("PRIVATE KEY"));
        // Another address: asked for again.
        assert!(still_good(&kept, &["10.0.0.8".parse().unwrap()]).is_none());
        assert!(still_good("garbage", &[ip]).is_none());
    }
}
