//! The kubelet's HTTPS server (port 10250): what the API server proxies `pods/log`,
//! `pods/exec`, `pods/attach` and `pods/portforward` to.
//!
//! - TLS with the node's serving certificate; client certificates are checked against the
//!   cluster CA. Only the API server's kubelet-client certificate
//!   (`CN=kube-apiserver-kubelet-client`) and admins (`O=system:masters`) may use it: no
//!   certificate is 401, another user 403, as kube's kubelet answers with x509
//!   authentication and an authorizer that allows only those.
//! - `GET /containerLogs/NS/POD/CONTAINER`: the container's log file ([`container_logs`]).
//! - `/exec/NS/POD/CONTAINER?command=..&input=1&output=1&error=1&tty=1`,
//!   `/attach/NS/POD/CONTAINER?...` and `/portForward/NS/POD`: the runtime's streaming
//!   server does the protocol work (SPDY or WebSocket, channel.k8s.io v1-v4,
//!   portforward.k8s.io); the kubelet asks CRI `Exec`/`Attach`/`PortForward` for a URL on it and
//!   proxies the upgrade there (kube's kubelet proxies rather than redirects by default). A
//!   backend answer that is not `101 Switching Protocols` is passed back as a plain answer
//!   and its connection closed; it never becomes a tunnel.
//! - `/healthz`.
//!
//! The runtime side is the [`Streams`] trait; [`crate::cri_streams`] implements it on CRI.
//!
//! [`container_logs`]: crate::container_logs

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rkube_controllers::Stop;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::container_logs::{self, LogOptions};

/// The kubelet's port.
pub const DEFAULT_PORT: u16 = 10250;
/// The user of the API server's kubelet-client certificate.
pub const API_SERVER_USER: &str = "kube-apiserver-kubelet-client";

type Body = BoxBody<Bytes, Infallible>;

/// What the server can fail to start with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the kubelet's TLS configuration: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// An answer other than a stream: the status and kube's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StreamError {
    pub status: StatusCode,
    pub message: String,
}

impl StreamError {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

/// Which streams an exec or attach wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A container's log file, and how to tell whether it is still being written.
pub struct LogSource {
    pub path: std::path::PathBuf,
    /// Resolves to whether the container still runs (for `follow`).
    pub running: Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, bool> + Send + Sync>,
}

/// The runtime side of the server.
#[async_trait::async_trait]
pub trait Streams: Send + Sync + 'static {
    /// The log of a container of a pod on this node (the previous run's with `previous`).
    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<LogSource, StreamError>;

    /// A URL on the runtime's streaming server running `command` in the container.
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: Vec<String>,
        options: &StreamOptions,
    ) -> Result<String, StreamError>;

    /// A URL on the runtime's streaming server attached to the container's process.
    async fn attach(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        options: &StreamOptions,
    ) -> Result<String, StreamError>;

    /// A URL on the runtime's streaming server forwarding to the pod's ports.
    async fn port_forward(
        &self,
        namespace: &str,
        pod: &str,
        ports: Vec<i32>,
    ) -> Result<String, StreamError>;
}

/// What the server is started with.
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// The serving certificate (PEM chain) and its key.
    pub cert_pem: String,
    pub key_pem: String,
    /// The CA client certificates must chain to (the cluster CA).
    pub client_ca_pem: String,
}

/// Binds the port and serves until `stop`.
pub async fn start(
    config: ServerConfig,
    streams: Arc<dyn Streams>,
    stop: Stop,
) -> Result<SocketAddr, ServerError> {
    let tls = tls_config(&config).map_err(ServerError::Tls)?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.addr,
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: config.addr,
            source,
        })?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop.stopped() => return,
            };
            let Ok((tcp, peer)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let acceptor = acceptor.clone();
            let streams = streams.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(Ok(tls)) =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                else {
                    return;
                };
                let user = client_user(tls.get_ref().1);
                let service = hyper::service::service_fn(move |req| {
                    let streams = streams.clone();
                    let user = user.clone();
                    async move { Ok::<_, Infallible>(handle(streams, user, req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(err) = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await
                {
                    tracing::debug!(%peer, "kubelet connection ended: {err}");
                }
            });
        }
    });
    Ok(local)
}

fn tls_config(config: &ServerConfig) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(config.client_ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| e.to_string())?;
    let chain = CertificateDer::pem_slice_iter(config.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let key =
        PrivateKeyDer::from_pem_slice(config.key_pem.as_bytes()).map_err(|e| e.to_string())?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// The user of a verified client certificate: (CN, O values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

fn client_user(conn: &rustls::ServerConnection) -> Option<User> {
    let cert = conn.peer_certificates()?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    Some(User { name, groups })
}

/// Whether the user may use the kubelet's API: the API server and admins only.
pub fn authorized(user: &User) -> bool {
    user.name == API_SERVER_USER || user.groups.iter().any(|g| g == "system:masters")
}

fn text(status: StatusCode, message: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(message.into()).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn error(err: &StreamError) -> Response<Body> {
    text(err.status, format!("{}\n", err.message))
}

/// The query's parameters in order, decoded (repeated ones kept: `command`).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn flag(pairs: &[(String, String)], names: &[&str]) -> bool {
    pairs
        .iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .any(|(_, v)| matches!(v.as_str(), "1" | "true" | "True" | "TRUE" | ""))
}

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn handle(
    streams: Arc<dyn Streams>,
    user: Option<User>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.first() == Some(&"healthz") {
        return text(StatusCode::OK, "ok");
    }
    let Some(user) = user else {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    if !authorized(&user) {
        return text(
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden (user={}, verb={}, resource=nodes, subresource=proxy)",
                user.name,
                if req.method() == Method::GET {
                    "get"
                } else {
                    "create"
                }
            ),
        );
    }
    let pairs = query_pairs(req.uri().query());
    let result = match segments.as_slice() {
        ["containerLogs", ns, pod, container] if req.method() == Method::GET => {
            logs(&*streams, ns, pod, container, &pairs).await
        }
        [verb @ ("exec" | "attach"), ns, pod, container, ..] => {
            let options = StreamOptions {
                stdin: flag(&pairs, &["input", "stdin"]),
                stdout: flag(&pairs, &["output", "stdout"]),
                stderr: flag(&pairs, &["error", "stderr"]),
                tty: flag(&pairs, &["tty"]),
            };
            let url = if *verb == "exec" {
                let command: Vec<String> = pairs
                    .iter()
                    .filter(|(k, _)| k == "command")
                    .map(|(_, v)| v.clone())
                    .collect();
                if command.is_empty() {
                    Err(StreamError::bad_request(
                        "you must specify at least 1 command",
                    ))
                } else {
                    streams.exec(ns, pod, container, command, &options).await
                }
            } else {
                streams.attach(ns, pod, container, &options).await
            };
            match url {
                Ok(url) => Ok(proxy_upgrade(&url, req).await),
                Err(err) => Err(err),
            }
        }
        ["portForward", ns, pod, ..] => {
            let mut ports = Vec::new();
            for (_, v) in pairs.iter().filter(|(k, _)| k == "port" || k == "ports") {
                for p in v.split(',').filter(|p| !p.is_empty()) {
                    match p.parse::<u16>() {
                        Ok(port) if port > 0 => ports.push(i32::from(port)),
                        _ => {
                            return error(&StreamError::bad_request(format!(
                                "invalid port: {p:?}"
                            )));
                        }
                    }
                }
            }
            match streams.port_forward(ns, pod, ports).await {
                Ok(url) => Ok(proxy_upgrade(&url, req).await),
                Err(err) => Err(err),
            }
        }
        _ => Err(StreamError::not_found("404 page not found")),
    };
    result.unwrap_or_else(|err| error(&err))
}

/// The log options of a query, as the kubelet validates them.
fn log_options(pairs: &[(String, String)]) -> Result<(LogOptions, bool), StreamError> {
    let number = |name: &str| -> Result<Option<i64>, StreamError> {
        value(pairs, name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| StreamError::bad_request(format!("invalid {name}: {v:?}")))
            })
            .transpose()
    };
    let since_seconds = number("sinceSeconds")?;
    let since_time = value(pairs, "sinceTime")
        .map(|v| {
            k8s_openapi::chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&k8s_openapi::chrono::Utc))
                .map_err(|_| StreamError::bad_request(format!("invalid sinceTime: {v:?}")))
        })
        .transpose()?;
    let since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => {
            return Err(StreamError::bad_request(
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
        (Some(s), None) => {
            Some(k8s_openapi::chrono::Utc::now() - k8s_openapi::chrono::Duration::seconds(s))
        }
        (None, t) => t,
    };
    let nonnegative = |v: Option<i64>| v.map(|v| u64::try_from(v).unwrap_or(0));
    Ok((
        LogOptions {
            follow: flag(pairs, &["follow"]) && value(pairs, "follow") != Some("false"),
            timestamps: flag(pairs, &["timestamps"]) && value(pairs, "timestamps") != Some("false"),
            tail_lines: nonnegative(number("tailLines")?),
            since,
            limit_bytes: nonnegative(number("limitBytes")?),
        },
        flag(pairs, &["previous"]) && value(pairs, "previous") != Some("false"),
    ))
}

async fn logs(
    streams: &dyn Streams,
    namespace: &str,
    pod: &str,
    container: &str,
    pairs: &[(String, String)],
) -> Result<Response<Body>, StreamError> {
    let (options, previous) = log_options(pairs)?;
    let source = streams.logs(namespace, pod, container, previous).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let running = source.running.clone();
    let path = source.path.clone();
    tokio::spawn(async move {
        if let Err(err) = container_logs::stream(path, options, move || running(), tx).await {
            tracing::debug!("reading a container log: {err}");
        }
    });
    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    }));
    let mut response = Response::new(BodyExt::boxed(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// Headers that belong to one hop or to our own authentication, never forwarded.
fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        match name.as_str() {
            "host" | "authorization" | "content-length" | "transfer-encoding" | "keep-alive"
            | "proxy-connection" | "te" | "trailer" => {}
            _ => {
                out.append(name.clone(), value.clone());
            }
        }
    }
    out
}

/// Proxies an upgrade request to the runtime's streaming server at `url` (plain HTTP on
/// the loopback, as containerd serves it). A `101` is relayed and both connections joined;
/// any other answer is relayed as a plain answer and the backend connection closed.
pub async fn proxy_upgrade(url: &str, req: Request<Incoming>) -> Response<Body> {
    let Ok(target) = url.parse::<http::Uri>() else {
        return error(&StreamError::internal(format!(
            "the runtime gave an unusable streaming URL {url:?}"
        )));
    };
    let (Some(host), Some(path)) = (target.host(), target.path_and_query()) else {
        return error(&StreamError::internal(format!(
            "the runtime gave an unusable streaming URL {url:?}"
        )));
    };
    let port = target.port_u16().unwrap_or(80);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = match TcpStream::connect((host.as_str(), port)).await {
        Ok(tcp) => tcp,
        Err(err) => {
            return error(&StreamError::internal(format!(
                "cannot reach the runtime's streaming server at {url}: {err}"
            )));
        }
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
        Ok(pair) => pair,
        Err(err) => return error(&StreamError::internal(err.to_string())),
    };
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut backend_req = Request::new(Empty::<Bytes>::new());
    *backend_req.method_mut() = req.method().clone();
    *backend_req.uri_mut() = path.as_str().parse().unwrap_or_default();
    *backend_req.headers_mut() = forwardable(req.headers());
    if let Ok(h) = HeaderValue::from_str(&format!("{host}:{port}")) {
        backend_req.headers_mut().insert(header::HOST, h);
    }
    let response = match sender.send_request(backend_req).await {
        Ok(response) => response,
        Err(err) => {
            return error(&StreamError::internal(format!(
                "the runtime's streaming server: {err}"
            )));
        }
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Not an upgrade: relay it as a plain answer; the backend connection is dropped
        // with `sender` once the body is read.
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut out = Response::new(Full::new(bytes).boxed());
        *out.status_mut() = parts.status;
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
            out.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
        }
        return out;
    }
    let mut out = Response::new(Empty::<Bytes>::new().boxed());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in response.headers() {
        out.headers_mut().append(name.clone(), value.clone());
    }
    let client_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let backend = match hyper::upgrade::on(response).await {
            Ok(backend) => backend,
            Err(err) => {
                tracing::debug!("the runtime's upgrade failed: {err}");
                return;
            }
        };
        let client = match client_upgrade.await {
            Ok(client) => client,
            Err(err) => {
                tracing::debug!("the client's upgrade failed: {err}");
                return;
            }
        };
        let mut backend = TokioIo::new(backend);
        let mut client = TokioIo::new(client);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    });
    out
}

/// A serving certificate for the node: signed by the cluster CA when its key is at hand
/// (an agent beside the server), else self-signed, as kube's kubelet makes one when given
/// none. Returns (certificate PEM, key PEM).
pub fn serving_certificate(
    node_name: &str,
    ips: &[std::net::IpAddr],
    ca: Option<(&str, &str)>,
) -> Result<(String, String), rcgen::Error> {
    use rcgen::{ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType};
    let mut params = node_certificate_params(node_name, ips)?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = time_now() - time::Duration::hours(1);
    params.not_after = time_now() + time::Duration::days(365);
    if let Ok(name) = "localhost".to_owned().try_into() {
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    let key = KeyPair::generate()?;
    let cert = match ca {
        Some((ca_pem, ca_key_pem)) => {
            params.use_authority_key_identifier_extension = true;
            let issuer = Issuer::from_ca_cert_pem(ca_pem, KeyPair::from_pem(ca_key_pem)?)?;
            params.signed_by(&key, &issuer)?
        }
        None => params.self_signed(&key)?,
    };
    Ok((cert.pem(), key.serialize_pem()))
}

/// What a node's serving certificate names: `O=system:nodes, CN=system:node:NAME`, the
/// node's name and its addresses.
pub fn node_certificate_params(
    node_name: &str,
    ips: &[std::net::IpAddr],
) -> Result<rcgen::CertificateParams, rcgen::Error> {
    use rcgen::{CertificateParams, DnType, SanType};
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("system:node:{node_name}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    if let Ok(name) = node_name.to_owned().try_into() {
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    Ok(params)
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_repeated_commands() {
        let pairs = query_pairs(Some("command=sh&command=-c&command=echo+a%20b&input=1&tty"));
        let commands: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(commands, ["sh", "-c", "echo a b"]);
        assert!(flag(&pairs, &["input", "stdin"]));
        assert!(flag(&pairs, &["tty"]));
        assert!(!flag(&pairs, &["output"]));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn only_the_api_server_and_admins_are_allowed() {
        let api = User {
            name: API_SERVER_USER.into(),
            groups: vec![],
        };
        let admin = User {
            name: "admin".into(),
            groups: vec!["system:masters".into()],
        };
        let node = User {
            name: "system:node:n1".into(),
            groups: vec!["system:nodes".into()],
        };
        assert!(authorized(&api));
        assert!(authorized(&admin));
        assert!(!authorized(&node));
    }

    #[test]
    fn log_options_are_validated() {
        let pairs = query_pairs(Some("follow=true&tailLines=3&timestamps=1&previous=false"));
        let (options, previous) = log_options(&pairs).expect("valid");
        assert!(options.follow && options.timestamps && !previous);
        assert_eq!(options.tail_lines, Some(3));
        let both = query_pairs(Some("sinceSeconds=3&sinceTime=2024-01-01T00:00:00Z"));
        assert_eq!(
            log_options(&both).expect_err("both").status,
            StatusCode::BAD_REQUEST
        );
        let bad = query_pairs(Some("tailLines=x"));
        assert!(log_options(&bad).is_err());
    }
}
