//! The server's certificates: made on first start under `DATA_DIR/tls`, reused afterwards.
//! A CA, a serving certificate for every name the API is reached by, an admin client
//! certificate (O=system:masters) written into `DATA_DIR/admin.kubeconfig`, and the node
//! join token in `DATA_DIR/node-token`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Everything the server needs to speak TLS and authenticate.
pub struct Pki {
    /// The CA certificate (PEM), which signs serving and client certificates.
    pub ca_pem: String,
    /// The serving certificate chain (PEM) and key (PEM).
    pub serving_pem: String,
    /// The serving key (PEM).
    pub serving_key_pem: String,
    /// The node join token.
    pub node_token: String,
    /// The admin kubeconfig path.
    pub admin_kubeconfig: PathBuf,
    /// The client certificate (PEM) and key the server shows kubelets
    /// (kube-apiserver's `--kubelet-client-certificate`): `CN=kube-apiserver-kubelet-client`,
    /// `O=system:masters`.
    pub kubelet_client_pem: String,
    pub kubelet_client_key_pem: String,
}

fn read(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    write_private_bytes(path, contents.as_bytes())
}

/// Writes a file only its owner can read.
pub(crate) fn write_private_bytes(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Hostnames and addresses of this machine, for the serving certificate.
fn host_names() -> (Vec<String>, Vec<IpAddr>) {
    let mut names = Vec::new();
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_owned());
        }
    }
    let mut ips = Vec::new();
    // Local addresses are the "/32 host LOCAL" leaves of the FIB trie.
    if let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") {
        let mut last_ip: Option<IpAddr> = None;
        for line in trie.lines() {
            let line = line.trim();
            if let Some(ip) = line
                .strip_prefix("|-- ")
                .or_else(|| line.strip_prefix("+-- "))
            {
                last_ip = ip.split('/').next().and_then(|ip| ip.parse().ok());
            } else if line.contains("/32 host LOCAL")
                && let Some(ip) = last_ip
                && !ips.contains(&ip)
            {
                ips.push(ip);
            }
        }
    }
    (names, ips)
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "rkube-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    Ok(params)
}

fn leaf_params(common_name: &str, organization: Option<&str>) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        params.distinguished_name.push(DnType::OrganizationName, o);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    Ok(params)
}

/// A fresh client certificate signed by the CA in `tls_dir`: (cert PEM, key PEM).
pub fn issue_client_cert(
    tls_dir: &Path,
    common_name: &str,
    organization: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let ca_pem = std::fs::read_to_string(tls_dir.join("ca.crt"))?;
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(tls_dir.join("ca.key"))?)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
    let mut params = leaf_params(common_name, organization)?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl Pki {
    /// Loads the certificates under `data_dir`, making whatever is missing.
    /// `extra_ips` (the `kubernetes` Service's ClusterIP, the advertised address) go into a
    /// new serving certificate's names.
    pub fn load_or_create(
        data_dir: &Path,
        https_port: u16,
        bind: IpAddr,
        extra_ips: &[IpAddr],
    ) -> anyhow::Result<Self> {
        let tls = data_dir.join("tls");
        std::fs::create_dir_all(&tls)
            .with_context(|| format!("cannot create {}", tls.display()))?;

        let (ca_pem, ca_key_pem) = match (read(&tls.join("ca.crt"))?, read(&tls.join("ca.key"))?) {
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params()?.self_signed(&key)?;
                write_private(&tls.join("ca.key"), &key.serialize_pem())?;
                write_private(&tls.join("ca.crt"), &cert.pem())?;
                (cert.pem(), key.serialize_pem())
            }
        };
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&ca_key_pem)?)
            .with_context(|| format!("{} is not a usable CA", tls.join("ca.crt").display()))?;

        let (serving_pem, serving_key_pem) = match (
            read(&tls.join("serving.crt"))?,
            read(&tls.join("serving.key"))?,
        ) {
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                let mut params = leaf_params("kube-apiserver", None)?;
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                let (names, mut ips) = host_names();
                for ip in ["127.0.0.1", "::1"] {
                    ips.extend(ip.parse::<IpAddr>().ok());
                }
                ips.extend_from_slice(extra_ips);
                if !bind.is_unspecified() {
                    ips.push(bind);
                }
                ips.sort();
                ips.dedup();
                let mut dns = vec![
                    "localhost".to_owned(),
                    "kubernetes".into(),
                    "kubernetes.default".into(),
                    "kubernetes.default.svc".into(),
                    "kubernetes.default.svc.cluster.local".into(),
                ];
                dns.extend(names);
                for name in dns {
                    params
                        .subject_alt_names
                        .push(SanType::DnsName(name.try_into()?));
                }
                for ip in ips {
                    params.subject_alt_names.push(SanType::IpAddress(ip));
                }
                let key = KeyPair::generate()?;
                let cert = params.signed_by(&key, &issuer)?;
                write_private(&tls.join("serving.key"), &key.serialize_pem())?;
                write_private(&tls.join("serving.crt"), &cert.pem())?;
                (cert.pem(), key.serialize_pem())
            }
        };

        let token_path = data_dir.join("node-token");
        let node_token = match read(&token_path)? {
            Some(token) if !token.trim().is_empty() => token.trim().to_owned(),
            _ => {
                let token = random_token();
                write_private(&token_path, &format!("{token}\n"))?;
                token
            }
        };

        let admin_kubeconfig = data_dir.join("admin.kubeconfig");
        let (admin_pem, admin_key_pem) =
            match (read(&tls.join("admin.crt"))?, read(&tls.join("admin.key"))?) {
                (Some(cert), Some(key)) => (cert, key),
                _ => {
                    let (cert, key) = issue_client_cert(&tls, "admin", Some("system:masters"))?;
                    write_private(&tls.join("admin.key"), &key)?;
                    write_private(&tls.join("admin.crt"), &cert)?;
                    (cert, key)
                }
            };
        let (kubelet_client_pem, kubelet_client_key_pem) = match (
            read(&tls.join("kubelet-client.crt"))?,
            read(&tls.join("kubelet-client.key"))?,
        ) {
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                let (cert, key) = issue_client_cert(
                    &tls,
                    "kube-apiserver-kubelet-client",
                    Some("system:masters"),
                )?;
                write_private(&tls.join("kubelet-client.key"), &key)?;
                write_private(&tls.join("kubelet-client.crt"), &cert)?;
                (cert, key)
            }
        };
        let host = if bind.is_unspecified() {
            "127.0.0.1".to_owned()
        } else if bind.is_ipv6() {
            format!("[{bind}]")
        } else {
            bind.to_string()
        };
        write_private(
            &admin_kubeconfig,
            &kubeconfig(
                &format!("https://{host}:{https_port}"),
                &ca_pem,
                &admin_pem,
                &admin_key_pem,
            ),
        )?;
        Ok(Self {
            ca_pem,
            serving_pem,
            serving_key_pem,
            node_token,
            admin_kubeconfig,
            kubelet_client_pem,
            kubelet_client_key_pem,
        })
    }
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    hex(&bytes)
}

/// `bytes` in lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random (version 4) UUID, as kube gives objects and tokens.
pub(crate) fn new_uuid() -> String {
    use rand::Rng;
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A kubeconfig with one cluster, one user (client certificate) and one context.
pub fn kubeconfig(server: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: rkube
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: rkube
  context:
    cluster: rkube
    user: admin
current-context: rkube
",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}
