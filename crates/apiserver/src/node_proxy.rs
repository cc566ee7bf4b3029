//! `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`: proxied to the kubelet of
//! the pod's node (its InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port`) over
//! TLS, the kubelet's certificate checked against the cluster CA, this server showing its
//! kubelet-client certificate.
//!
//! The location rules and errors are kube-apiserver's (`pkg/registry/core/pod/strategy.go`):
//! a pod with one container needs no `container`; otherwise 400 `a container name must be
//! specified for pod X, choose one of: [a b]`; an unknown container is 400 `container c is
//! not valid for pod X`; exec, attach and port-forward of an unscheduled pod are 400 `pod X
//! does not have a host assigned`, its logs are empty.
//!
//! Upgrades, as kube-apiserver 1.33 handles them:
//! - WebSocket `v5.channel.k8s.io` (kubectl's default for exec and attach): translated to
//!   SPDY `v4.channel.k8s.io` toward the kubelet (the StreamTranslatorProxy), because v5's
//!   half-close of stdin has no WebSocket equivalent in older protocols;
//! - WebSocket `SPDY/3.1+portforward.k8s.io` (port-forward, PortForwardWebsockets): the
//!   WebSocket is unwrapped and its bytes sent over a plain SPDY upgrade (the tunneling
//!   handler);
//! - anything else (SPDY, older WebSocket protocols): the upgrade is proxied as is.
//!
//! Only a `101 Switching Protocols` from the kubelet becomes a tunnel; any other answer is
//! relayed as a plain answer and the kubelet connection closed (the CVE-2018-1002105 class).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::State;
use crate::errors::ApiError;
use crate::http_util::{self, Body};
use crate::routes::ResourcePath;
use crate::spdy;

/// The WebSocket subprotocol of remote command v5.
const V5: &str = "v5.channel.k8s.io";
/// The SPDY protocol spoken to the kubelet when translating v5.
const V4: &str = "v4.channel.k8s.io";
/// The prefix of port-forward protocols tunnelled in WebSockets.
const TUNNEL_PREFIX: &str = "SPDY/3.1+";

/// The TLS configurations for reaching kubelets: verified against the cluster CA, and
/// without verification for `insecureSkipTLSVerifyBackend` on logs.
pub struct KubeletTls {
    pub verified: Arc<rustls::ClientConfig>,
    pub unverified: Arc<rustls::ClientConfig>,
}

impl KubeletTls {
    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let chain =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
        let verified = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain.clone(), key.clone_key())?;
        let unverified = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_client_auth_cert(chain, key)?;
        Ok(Self {
            verified: Arc::new(verified),
            unverified: Arc::new(unverified),
        })
    }
}

/// Accepts any kubelet certificate: only for `insecureSkipTLSVerifyBackend=true`.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The query's parameters in order, decoded (repeated ones kept: `command`).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (http_util::percent_decode(k), http_util::percent_decode(v))
        })
        .collect()
}

fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A boolean query parameter as Go's `strconv.ParseBool` reads it.
fn boolean(pairs: &[(String, String)], name: &str) -> Result<bool, ApiError> {
    match last(pairs, name) {
        None => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False" | "") => Ok(false),
        Some(v) => Err(ApiError::bad_request(format!(
            "strconv.ParseBool: parsing {v:?}: invalid syntax"
        ))),
    }
}

fn integer(pairs: &[(String, String)], name: &str) -> Result<Option<i64>, ApiError> {
    last(pairs, name)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
            })
        })
        .transpose()
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn encode_query(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn get_json(state: &State, key: &str) -> Result<Option<Value>, ApiError> {
    let Some(kv) = state.store.get(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&kv.value)
        .map(Some)
        .map_err(|e| ApiError::internal(format!("decoding {key}: {e}")))
}

fn names(containers: &Value) -> Vec<String> {
    containers
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

/// kube's choice of container: the given one if the pod has it, else the only one.
pub fn pick_container(pod: &Value, name: &str, given: Option<&str>) -> Result<String, ApiError> {
    let containers = names(&pod["spec"]["containers"]);
    let init = names(&pod["spec"]["initContainers"]);
    match given.filter(|c| !c.is_empty()) {
        Some(c) if containers.iter().chain(&init).any(|n| n == c) => Ok(c.to_owned()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => match containers.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            many => {
                let mut message = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    many.join(" ")
                );
                if !init.is_empty() {
                    message.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                Err(ApiError::bad_request(message))
            }
        },
    }
}

/// Where a node's kubelet listens: its InternalIP (else its first address) and port.
async fn kubelet_address(state: &State, node: &str) -> Result<(IpAddr, u16), ApiError> {
    let Some(object) = get_json(state, &format!("/registry/core/nodes/{node}")).await? else {
        return Err(ApiError::not_found("", "nodes", node));
    };
    let addresses = object["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pick = |kind: Option<&str>| {
        addresses
            .iter()
            .filter(|a| kind.is_none_or(|k| a["type"] == k))
            .find_map(|a| a["address"].as_str()?.parse::<IpAddr>().ok())
    };
    let ip = pick(Some("InternalIP"))
        .or_else(|| pick(Some("ExternalIP")))
        .or_else(|| pick(None))
        .ok_or_else(|| {
            ApiError::internal(format!(
                "node {node:?} has no address to reach its kubelet at"
            ))
        })?;
    let port = object["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(10250);
    Ok((ip, port))
}

/// An HTTP/1.1 connection to a kubelet, upgrades allowed.
async fn connect(
    config: Arc<rustls::ClientConfig>,
    ip: IpAddr,
    port: u16,
) -> Result<SendRequest<Empty<Bytes>>, ApiError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!(
            "error dialing backend: dial tcp {}: {e}",
            std::net::SocketAddr::new(ip, port)
        ))
    };
    let tcp = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect((ip, port)))
        .await
        .map_err(|_| unreachable(&"i/o timeout"))?
        .map_err(|e| unreachable(&e))?;
    let _ = tcp.set_nodelay(true);
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::IpAddress(ip.into()), tcp)
        .await
        .map_err(|e| ApiError::internal(format!("error dialing backend: {e}")))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| ApiError::internal(format!("error dialing backend: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// Serves one of the proxied pod subresources.
pub async fn serve(
    state: Arc<State>,
    path: ResourcePath,
    req: Request<Incoming>,
) -> Response<Body> {
    match serve_inner(&state, path, req).await {
        Ok(response) => response,
        Err(err) => http_util::error(&err),
    }
}

async fn serve_inner(
    state: &State,
    path: ResourcePath,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (Some(namespace), Some(name), Some(sub)) = (&path.namespace, &path.name, &path.subresource)
    else {
        return Err(ApiError::no_route());
    };
    let allowed: &[Method] = if sub == "log" {
        &[Method::GET]
    } else {
        &[Method::GET, Method::POST]
    };
    if !allowed.contains(req.method()) {
        return Err(ApiError::method_not_allowed(req.method().as_str()));
    }
    let Some(pod) = get_json(state, &format!("/registry/core/pods/{namespace}/{name}")).await?
    else {
        return Err(ApiError::not_found("", "pods", name));
    };
    let pairs = query_pairs(req.uri().query());
    let node = pod["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    match sub.as_str() {
        "log" => logs(state, &pod, namespace, name, &node, &pairs).await,
        "exec" | "attach" | "portforward" => {
            let (location, kind) = stream_location(&pod, namespace, name, &node, sub, &pairs)?;
            let (ip, port) = kubelet_address(state, &node).await?;
            let backend = || connect(state.kubelet_tls.verified.clone(), ip, port);
            match upgrade_kind(req.headers(), kind) {
                Upgrade::TranslateV5 => {
                    translate_v5(backend().await?, &location, &pairs, req).await
                }
                Upgrade::TunnelPortForward(protocols) => {
                    tunnel_port_forward(backend().await?, &location, protocols, req).await
                }
                Upgrade::Proxy => Ok(proxy_upgrade(backend().await?, &location, req).await),
                Upgrade::None => Err(ApiError::bad_request("Upgrade request required")),
            }
        }
        _ => Err(ApiError::no_route()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamKind {
    RemoteCommand,
    PortForward,
}

/// The kubelet path and query of an exec, attach or port-forward.
fn stream_location(
    pod: &Value,
    namespace: &str,
    name: &str,
    node: &str,
    sub: &str,
    pairs: &[(String, String)],
) -> Result<(String, StreamKind), ApiError> {
    if sub == "portforward" {
        let mut ports = Vec::new();
        for (_, v) in pairs.iter().filter(|(k, _)| k == "ports") {
            for p in v.split(',').filter(|p| !p.is_empty()) {
                match p.trim().parse::<u16>() {
                    Ok(port) if port > 0 => ports.push(port.to_string()),
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid port {p:?}: ports must be between 1 and 65535"
                        )));
                    }
                }
            }
        }
        if node.is_empty() {
            return Err(ApiError::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let mut location = format!("/portForward/{namespace}/{name}");
        if !ports.is_empty() {
            location.push('?');
            location.push_str(&encode_query(&[("port", ports.join(","))]));
        }
        return Ok((location, StreamKind::PortForward));
    }
    let container = pick_container(pod, name, last(pairs, "container"))?;
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let mut params: Vec<(&str, String)> = Vec::new();
    for (flag, param) in [
        ("stdin", "input"),
        ("stdout", "output"),
        ("stderr", "error"),
        ("tty", "tty"),
    ] {
        if boolean(pairs, flag)? {
            params.push((param, "1".to_owned()));
        }
    }
    if sub == "exec" {
        let commands: Vec<&(String, String)> =
            pairs.iter().filter(|(k, _)| k == "command").collect();
        if commands.is_empty() {
            return Err(ApiError::bad_request("you must specify at least 1 command"));
        }
        for (_, c) in commands {
            params.push(("command", c.clone()));
        }
    }
    Ok((
        format!(
            "/{sub}/{namespace}/{name}/{container}?{}",
            encode_query(&params)
        ),
        StreamKind::RemoteCommand,
    ))
}

enum Upgrade {
    TranslateV5,
    TunnelPortForward(Vec<String>),
    Proxy,
    None,
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn websocket_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

fn upgrade_kind(headers: &HeaderMap, kind: StreamKind) -> Upgrade {
    if !header_has(headers, header::CONNECTION, "upgrade") || !headers.contains_key(header::UPGRADE)
    {
        return Upgrade::None;
    }
    if !header_has(headers, header::UPGRADE, "websocket") {
        return Upgrade::Proxy;
    }
    let protocols = websocket_protocols(headers);
    match kind {
        StreamKind::RemoteCommand if protocols.iter().any(|p| p == V5) => Upgrade::TranslateV5,
        StreamKind::PortForward => {
            let spdy: Vec<String> = protocols
                .iter()
                .filter_map(|p| p.strip_prefix(TUNNEL_PREFIX))
                .filter(|p| p.ends_with(".k8s.io"))
                .map(str::to_owned)
                .collect();
            if spdy.is_empty() {
                Upgrade::Proxy
            } else {
                Upgrade::TunnelPortForward(spdy)
            }
        }
        StreamKind::RemoteCommand => Upgrade::Proxy,
    }
}

/// A kubelet's answer that is not an upgrade, as a plain answer: its status, content type
/// and body. The kubelet connection is dropped with it.
async fn relay_plain(response: Response<Incoming>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = Response::new(http_util::full(bytes));
    *out.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        out.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
    }
    out
}

/// The request headers passed to the kubelet: not our credentials, not hop-by-hop ones
/// other than the upgrade's own.
fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        match name.as_str() {
            "host"
            | "authorization"
            | "content-length"
            | "transfer-encoding"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "te"
            | "trailer" => {}
            n if n.starts_with("impersonate-") => {}
            _ => {
                out.append(name.clone(), value.clone());
            }
        }
    }
    out
}

fn backend_request(method: Method, location: &str, headers: HeaderMap) -> Request<Empty<Bytes>> {
    let mut req = Request::new(Empty::new());
    *req.method_mut() = method;
    *req.uri_mut() = location.parse().unwrap_or_default();
    *req.headers_mut() = headers;
    req
}

/// Proxies an upgrade to the kubelet as it is (SPDY, or WebSocket of older protocols).
/// Only a 101 joins the two connections.
pub async fn proxy_upgrade(
    mut backend: SendRequest<Empty<Bytes>>,
    location: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let backend_req = backend_request(req.method().clone(), location, forwardable(req.headers()));
    let response = match backend.send_request(backend_req).await {
        Ok(response) => response,
        Err(err) => {
            return http_util::error(&ApiError::internal(format!(
                "error proxying to the kubelet: {err}"
            )));
        }
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return relay_plain(response).await;
    }
    let mut out = Response::new(http_util::full(Bytes::new()));
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in response.headers() {
        out.headers_mut().append(name.clone(), value.clone());
    }
    let client = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(backend) = hyper::upgrade::on(response).await else {
            return;
        };
        let Ok(client) = client.await else { return };
        let mut backend = TokioIo::new(backend);
        let mut client = TokioIo::new(client);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    });
    out
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455).
fn accept_key(key: &[u8]) -> String {
    use base64::Engine;
    let mut input = key.to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The 101 that accepts the client's WebSocket with `protocol`, or why it cannot.
fn websocket_accept(req: &Request<Incoming>, protocol: &str) -> Result<Response<Body>, ApiError> {
    if req.method() != Method::GET {
        return Err(ApiError::bad_request(
            "websocket: the client is not using the websocket protocol: request method is not GET",
        ));
    }
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(ApiError::bad_request(
            "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header",
        ));
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return Err(ApiError::bad_request(
            "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header is missing or blank",
        ));
    };
    let mut out = Response::new(http_util::full(Bytes::new()));
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = out.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Ok(v) = HeaderValue::from_str(protocol) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    Ok(out)
}

/// Sends a SPDY upgrade for `protocols` to the kubelet; the upgraded connection and the
/// protocol the kubelet chose, or the kubelet's plain answer.
async fn spdy_upgrade(
    mut backend: SendRequest<Empty<Bytes>>,
    location: &str,
    protocols: &[String],
) -> Result<Result<(hyper::upgrade::Upgraded, String), Response<Body>>, ApiError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    for p in protocols {
        if let Ok(v) = HeaderValue::from_str(p) {
            headers.append("X-Stream-Protocol-Version", v);
        }
    }
    let response = backend
        .send_request(backend_request(Method::POST, location, headers))
        .await
        .map_err(|e| ApiError::internal(format!("error proxying to the kubelet: {e}")))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(Err(relay_plain(response).await));
    }
    let spdy = header_has(response.headers(), header::UPGRADE, "SPDY/3.1")
        && header_has(response.headers(), header::CONNECTION, "upgrade");
    if !spdy {
        return Err(ApiError::internal(
            "unable to upgrade: missing upgrade headers in response",
        ));
    }
    let chosen = response
        .headers()
        .get("X-Stream-Protocol-Version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_owned();
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| ApiError::internal(format!("unable to upgrade: {e}")))?;
    Ok(Ok((upgraded, chosen)))
}

/// Port-forward over a WebSocket tunnelling SPDY: the WebSocket's binary messages carry
/// the SPDY bytes, which go to the kubelet over a plain SPDY upgrade.
async fn tunnel_port_forward(
    backend: SendRequest<Empty<Bytes>>,
    location: &str,
    protocols: Vec<String>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (upgraded, chosen) = match spdy_upgrade(backend, location, &protocols).await? {
        Ok(pair) => pair,
        Err(plain) => return Ok(plain),
    };
    let protocol = if chosen.is_empty() {
        String::new()
    } else {
        format!("{TUNNEL_PREFIX}{chosen}")
    };
    let response = websocket_accept(&req, &protocol)?;
    let client = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(client) = client.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        tunnel(ws, TokioIo::new(upgraded)).await;
    });
    Ok(response)
}

async fn tunnel<C, B>(mut ws: WebSocketStream<C>, backend: B)
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut read, mut write) = tokio::io::split(backend);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    if write.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            n = read.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = write.shutdown().await;
    let _ = ws
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await;
}

/// The SPDY stream ids of a v4 remote command session, as client-go creates them.
#[derive(Clone, Copy, Debug, Default)]
struct StreamIds {
    error: u32,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

/// Exec or attach asked for as WebSocket v5: run as SPDY v4 toward the kubelet.
async fn translate_v5(
    backend: SendRequest<Empty<Bytes>>,
    location: &str,
    pairs: &[(String, String)],
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    // Refuse a bad handshake before anything reaches the kubelet.
    websocket_accept(&req, V5)?;
    let stdin = boolean(pairs, "stdin")?;
    let stdout = boolean(pairs, "stdout")?;
    let stderr = boolean(pairs, "stderr")?;
    let tty = boolean(pairs, "tty")?;
    let (upgraded, chosen) = match spdy_upgrade(backend, location, &[V4.to_owned()]).await? {
        Ok(pair) => pair,
        Err(plain) => return Ok(plain),
    };
    if chosen != V4 {
        return Err(ApiError::internal(format!(
            "unable to upgrade: the kubelet chose the stream protocol {chosen:?}, not {V4}"
        )));
    }
    let mut io = TokioIo::new(upgraded);
    let mut headers = spdy::HeaderWriter::default();
    let mut next = 1u32;
    let mut open = |kind: &str, frames: &mut Vec<u8>| {
        let id = next;
        next += 2;
        frames.extend(headers.syn_stream(id, &[("streamType", kind)], false));
        id
    };
    let mut frames = Vec::new();
    let ids = StreamIds {
        error: open("error", &mut frames),
        stdin: stdin.then(|| open("stdin", &mut frames)),
        stdout: stdout.then(|| open("stdout", &mut frames)),
        stderr: (stderr && !tty).then(|| open("stderr", &mut frames)),
        resize: tty.then(|| open("resize", &mut frames)),
    };
    io.write_all(&frames)
        .await
        .map_err(|e| ApiError::internal(format!("error creating streams: {e}")))?;
    // Data may be sent on a stream only once the kubelet has replied to it.
    let mut waiting: Vec<u32> = [
        Some(ids.error),
        ids.stdin,
        ids.stdout,
        ids.stderr,
        ids.resize,
    ]
    .into_iter()
    .flatten()
    .collect();
    let replies = async {
        while !waiting.is_empty() {
            match spdy::read_frame(&mut io).await {
                Ok(Some(spdy::Frame::Control { kind, payload, .. })) => match kind {
                    spdy::SYN_REPLY => {
                        let id = spdy::Frame::control_id(&payload);
                        waiting.retain(|w| Some(*w) != id);
                    }
                    spdy::PING => io.write_all(&spdy::ping(&payload)).await?,
                    spdy::RST_STREAM | spdy::GOAWAY => {
                        return Err(std::io::Error::other("the kubelet refused a stream"));
                    }
                    _ => {}
                },
                Ok(Some(spdy::Frame::Data { .. })) => {}
                Ok(None) => return Err(std::io::Error::other("the kubelet closed the connection")),
                Err(err) => return Err(err),
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), replies)
        .await
        .map_err(|_| ApiError::internal("timed out waiting for the kubelet's stream replies"))?
        .map_err(|e| ApiError::internal(format!("error creating streams: {e}")))?;
    let response = websocket_accept(&req, V5)?;
    let client = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(client) = client.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        pump_v5(ws, io, ids).await;
    });
    Ok(response)
}

/// Moves a v5 session: client channels to SPDY streams and back, until the kubelet ends
/// the session (GOAWAY or end of connection) or the client goes.
async fn pump_v5<C, B>(mut ws: WebSocketStream<C>, backend: B, ids: StreamIds)
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut read, mut write) = tokio::io::split(backend);
    let (tx, mut frames) = mpsc::channel::<spdy::Frame>(64);
    let reader = tokio::spawn(async move {
        while let Ok(Some(frame)) = spdy::read_frame(&mut read).await {
            if tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    let channel_of = |stream: u32| {
        if stream == ids.error {
            Some(3u8)
        } else if Some(stream) == ids.stdout {
            Some(1)
        } else if Some(stream) == ids.stderr {
            Some(2)
        } else {
            None
        }
    };
    let mut stdin_open = ids.stdin.is_some();
    loop {
        tokio::select! {
            message = ws.next() => {
                let data = match message {
                    Some(Ok(Message::Binary(data))) => data,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Some((&channel, payload)) = data.split_first() else { continue };
                let out = match channel {
                    0 if stdin_open => ids.stdin.map(|id| {
                        payload
                            .chunks(spdy::MAX_DATA)
                            .flat_map(|chunk| spdy::data(id, chunk, false))
                            .collect::<Vec<u8>>()
                    }),
                    4 => ids.resize.map(|id| spdy::data(id, payload, false)),
                    // v5's CLOSE signal: [255, channel]; only stdin can be closed.
                    255 if payload.first() == Some(&0) && stdin_open => {
                        stdin_open = false;
                        ids.stdin.map(|id| spdy::data(id, &[], true))
                    }
                    _ => None,
                };
                if let Some(out) = out
                    && write.write_all(&out).await.is_err()
                {
                    break;
                }
            }
            frame = frames.recv() => match frame {
                Some(spdy::Frame::Data { stream, data, .. }) => {
                    if let Some(channel) = channel_of(stream)
                        && !data.is_empty()
                    {
                        let mut message = Vec::with_capacity(data.len() + 1);
                        message.push(channel);
                        message.extend_from_slice(&data);
                        if ws.send(Message::binary(message)).await.is_err() {
                            break;
                        }
                    }
                }
                Some(spdy::Frame::Control { kind: spdy::PING, payload, .. }) => {
                    if write.write_all(&spdy::ping(&payload)).await.is_err() {
                        break;
                    }
                }
                Some(spdy::Frame::Control { kind: spdy::GOAWAY, .. }) | None => break,
                Some(spdy::Frame::Control { .. }) => {}
            },
        }
    }
    reader.abort();
    let _ = write.write_all(&spdy::goaway(0)).await;
    let _ = write.shutdown().await;
    let _ = ws
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await;
}

/// kube's `ValidatePodLogOptions`.
fn validate_log_options(name: &str, pairs: &[(String, String)]) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let mut check = |field: &str, value: Option<i64>, min: i64, detail: &str| {
        if let Some(v) = value
            && v < min
        {
            causes.push((field.to_owned(), v.to_string(), detail.to_owned()));
        }
    };
    check(
        "tailLines",
        integer(pairs, "tailLines")?,
        0,
        "must be greater than or equal to 0",
    );
    check(
        "limitBytes",
        integer(pairs, "limitBytes")?,
        1,
        "must be greater than 0",
    );
    check(
        "sinceSeconds",
        integer(pairs, "sinceSeconds")?,
        1,
        "must be greater than 0",
    );
    if last(pairs, "sinceSeconds").is_some() && last(pairs, "sinceTime").is_some() {
        causes.push((
            String::new(),
            String::new(),
            "at most one of `sinceTime` or `sinceSeconds` may be specified".to_owned(),
        ));
    }
    if let Some(t) = last(pairs, "sinceTime")
        && time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_err()
    {
        return Err(ApiError::bad_request(format!(
            "parsing time {t:?} as RFC3339 failed"
        )));
    }
    if causes.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = causes
        .iter()
        .map(|(field, value, detail)| {
            if field.is_empty() {
                detail.clone()
            } else {
                format!("{field}: Invalid value: {value}: {detail}")
            }
        })
        .collect();
    let message = match texts.as_slice() {
        [one] => format!("PodLogOptions {name:?} is invalid: {one}"),
        many => format!("PodLogOptions {name:?} is invalid: [{}]", many.join(", ")),
    };
    Err(ApiError::invalid(
        "",
        "PodLogOptions",
        name,
        message,
        causes
            .into_iter()
            .map(|(field, _, detail)| {
                let reason = if field.is_empty() {
                    "FieldValueForbidden"
                } else {
                    "FieldValueInvalid"
                };
                serde_json::json!({"reason": reason, "message": detail, "field": field})
            })
            .collect(),
    ))
}

async fn logs(
    state: &State,
    pod: &Value,
    namespace: &str,
    name: &str,
    node: &str,
    pairs: &[(String, String)],
) -> Result<Response<Body>, ApiError> {
    validate_log_options(name, pairs)?;
    let container = pick_container(pod, name, last(pairs, "container"))?;
    if node.is_empty() {
        // No node yet: an empty log, as kube-apiserver answers.
        return Ok(http_util::text(200, Bytes::new()));
    }
    let mut params: Vec<(&str, String)> = Vec::new();
    for flag in ["follow", "previous", "timestamps"] {
        if boolean(pairs, flag)? {
            params.push((flag, "true".to_owned()));
        }
    }
    for key in ["sinceSeconds", "tailLines", "limitBytes"] {
        if let Some(v) = integer(pairs, key)? {
            params.push((key, v.to_string()));
        }
    }
    if let Some(t) = last(pairs, "sinceTime") {
        params.push(("sinceTime", t.to_owned()));
    }
    let mut location = format!("/containerLogs/{namespace}/{name}/{container}");
    if !params.is_empty() {
        location.push('?');
        location.push_str(&encode_query(&params));
    }
    let (ip, port) = kubelet_address(state, node).await?;
    let tls = if boolean(pairs, "insecureSkipTLSVerifyBackend")? {
        state.kubelet_tls.unverified.clone()
    } else {
        state.kubelet_tls.verified.clone()
    };
    let mut backend = connect(tls, ip, port).await?;
    let response = backend
        .send_request(backend_request(Method::GET, &location, HeaderMap::new()))
        .await
        .map_err(|e| ApiError::internal(format!("error reading the log from the kubelet: {e}")))?;
    if !response.status().is_success() {
        let code = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).into_owned();
        return Err(ApiError::from_backend(code, &text));
    }
    // Streamed as it comes (logs -f), through a channel: the kubelet's body errors end it.
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let _keep = backend;
        let mut body = response.into_body();
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data()
                && tx.send(data).await.is_err()
            {
                break;
            }
        }
    });
    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(Frame::data(chunk)), rx))
    }));
    let mut out = Response::new(BodyExt::boxed(body));
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let list = |names: &[&str]| names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>();
        json!({"spec": {"containers": list(containers), "initContainers": list(init)}})
    }

    #[test]
    fn containers_are_picked_as_kube_apiserver_does() {
        assert_eq!(
            pick_container(&pod(&["a"], &[]), "p", None).expect("one"),
            "a"
        );
        let err = pick_container(&pod(&["a", "b"], &[]), "p", None).expect_err("two");
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        let err = pick_container(&pod(&["a", "b"], &["i"]), "p", None).expect_err("two");
        assert_eq!(
            err.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(
            pick_container(&pod(&["a"], &["i"]), "p", Some("i")).expect("init"),
            "i"
        );
        let err = pick_container(&pod(&["a"], &[]), "p", Some("x")).expect_err("unknown");
        assert_eq!(err.message, "container x is not valid for pod p");
    }

    #[test]
    fn exec_locations_carry_kubes_parameters() {
        let pairs = query_pairs(Some(
            "command=sh&command=-c&command=echo+hi%26there&stdin=true&stdout=true&tty=false&container=a",
        ));
        let (location, kind) =
            stream_location(&pod(&["a"], &[]), "ns", "p", "n1", "exec", &pairs).expect("ok");
        assert!(kind == StreamKind::RemoteCommand);
        assert_eq!(
            location,
            "/exec/ns/p/a?input=1&output=1&command=sh&command=-c&command=echo+hi%26there"
        );
        let err =
            stream_location(&pod(&["a"], &[]), "ns", "p", "", "exec", &pairs).expect_err("no node");
        assert_eq!(err.message, "pod p does not have a host assigned");
        let none = query_pairs(Some("stdout=true"));
        let err =
            stream_location(&pod(&["a"], &[]), "ns", "p", "n1", "exec", &none).expect_err("cmd");
        assert_eq!(err.code, 400);
        let ports = query_pairs(Some("ports=80,8080"));
        let (location, _) =
            stream_location(&pod(&["a"], &[]), "ns", "p", "n1", "portforward", &ports).expect("pf");
        assert_eq!(location, "/portForward/ns/p?port=80%2C8080");
    }

    #[test]
    fn log_options_are_validated_as_kube_does() {
        assert!(validate_log_options("p", &query_pairs(Some("tailLines=0"))).is_ok());
        let err = validate_log_options("p", &query_pairs(Some("tailLines=-1"))).expect_err("bad");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        let both = query_pairs(Some("sinceSeconds=1&sinceTime=2024-01-01T00:00:00Z"));
        assert_eq!(
            validate_log_options("p", &both).expect_err("both").code,
            422
        );
        let bad = query_pairs(Some("limitBytes=x"));
        assert_eq!(validate_log_options("p", &bad).expect_err("nan").code, 400);
    }

    /// A kubelet stand-in that answers an upgrade with a plain 200 carrying upgrade
    /// headers, then records whatever else reaches it on that connection.
    async fn fake_kubelet() -> (
        std::net::SocketAddr,
        tokio::sync::oneshot::Receiver<Vec<u8>>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(
                b"HTTP/1.1 200 OK\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 14\r\n\r\nnot an upgrade",
            )
            .await
            .expect("write");
            // Everything after the answer, until the proxy closes the connection.
            let mut after = Vec::new();
            while let Ok(n) = conn.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                after.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(after);
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn a_backend_answer_other_than_101_never_becomes_a_tunnel() {
        let (kubelet, after) = fake_kubelet().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let proxy = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (conn, _) = listener.accept().await.expect("accept");
            let service = hyper::service::service_fn(move |req| async move {
                let tcp = TcpStream::connect(kubelet).await.expect("connect");
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .expect("handshake");
                tokio::spawn(async move {
                    let _ = conn.with_upgrades().await;
                });
                Ok::<_, std::convert::Infallible>(
                    proxy_upgrade(sender, "/exec/ns/p/c?command=sh", req).await,
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(conn), service)
                .with_upgrades()
                .await;
        });
        let mut client = TcpStream::connect(proxy).await.expect("connect");
        client
            .write_all(b"POST /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.ends_with(b"not an upgrade") {
            let n = client.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "the proxy closed early: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        // Bytes the client sends now are not tunnelled to the kubelet: the proxy reads them
        // as HTTP (a bad request) and the kubelet's connection is closed.
        let _ = client.write_all(b"SMUGGLED BYTES\r\n\r\n").await;
        let seen = tokio::time::timeout(Duration::from_secs(10), after)
            .await
            .expect("the kubelet connection was closed")
            .expect("the fake kubelet reported");
        assert!(
            seen.is_empty(),
            "the kubelet received {:?}",
            String::from_utf8_lossy(&seen)
        );
    }

    #[test]
    fn websocket_accept_keys_follow_rfc_6455() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
