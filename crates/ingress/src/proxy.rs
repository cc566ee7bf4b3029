//! The reverse proxy: HTTP/1.1 and HTTP/2 from clients (plain and TLS), HTTP/1.1 to the
//! endpoints, bodies streamed both ways, upgrades (WebSocket) passed through.
//!
//! Every request reads the route table current when it arrives; it goes to the next ready
//! endpoint of its backend in round-robin order, and to the following ones when that one
//! refuses the connection. The headers a backend sees are the client's, minus hop-by-hop
//! headers, plus `X-Forwarded-For` (appended), `X-Forwarded-Proto`, `X-Forwarded-Host`,
//! `X-Forwarded-Port` and `X-Real-IP`; `Host` is kept.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rkube_controllers::Stop;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::Shared;
use crate::matching::request_host;

type Body = BoxBody<Bytes, hyper::Error>;

/// How long connecting to an endpoint may take before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has for its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish after a stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The listener's scheme, for `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// One accepted connection's facts.
struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    local_port: u16,
    scheme: Scheme,
}

/// Accepts connections on `listener` until `stop`; with `tls`, each is a TLS connection.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    stop: Stop,
) {
    let scheme = if tls.is_some() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.stopped() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("ingress cannot accept a connection: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local_port = stream.local_addr().map(|a| a.port()).unwrap_or_default();
        let conn = Arc::new(Conn {
            shared: shared.clone(),
            peer,
            local_port,
            scheme,
        });
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, conn, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => serve_connection(stream, conn, stop).await,
                        Ok(Err(err)) => tracing::debug!(%peer, "TLS handshake failed: {err}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn serve_connection<S>(stream: S, conn: Arc<Conn>, stop: Stop)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(handle(req, &conn).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::debug!("ingress connection ended: {err}");
            }
        }
        () = stop.stopped() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, connection).await;
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).map_err(|e| match e {}).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Headers that belong to one hop (RFC 9110 7.6.1), plus those the Connection header names.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(&name);
        }
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Whether a request asks to switch protocols (HTTP/1.1 Upgrade).
fn upgrade_of(req: &Request<Incoming>) -> Option<HeaderValue> {
    let asks = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        req.headers().get(header::UPGRADE).cloned()
    } else {
        None
    }
}

async fn handle(mut req: Request<Incoming>, conn: &Conn) -> Response<Body> {
    let authority = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let host = request_host(&authority);
    let table = conn.shared.table();
    let Some(backend) = table.route(&host, req.uri().path()).cloned() else {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    drop(table);
    if backend.endpoints.is_empty() {
        let why = backend.problem.as_deref().unwrap_or("no ready endpoints");
        tracing::debug!(backend = %backend.name, "503: {why}");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("503 service unavailable: {}: {why}\n", backend.name),
        );
    }

    // Connect first, so a refused endpoint can be skipped before the body is spent.
    let mut stream = None;
    for endpoint in backend.pick() {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(err)) => tracing::debug!(%endpoint, backend = %backend.name, "connect: {err}"),
            Err(_) => tracing::debug!(%endpoint, backend = %backend.name, "connect timed out"),
        }
    }
    let Some(stream) = stream else {
        return text(
            StatusCode::BAD_GATEWAY,
            format!("502 bad gateway: no endpoint of {} answers\n", backend.name),
        );
    };
    let _ = stream.set_nodelay(true);

    let upgrade = upgrade_of(&req);
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    if let Some(protocol) = upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol);
    }
    if !parts.headers.contains_key(header::HOST)
        && let Ok(value) = HeaderValue::from_str(&authority)
    {
        parts.headers.insert(header::HOST, value);
    }
    forwarded_headers(&mut parts.headers, conn, &authority);
    parts.uri = match parts.uri.path_and_query() {
        Some(pq) => pq.as_str().parse().unwrap_or_default(),
        None => http::Uri::from_static("/"),
    };
    parts.version = Version::HTTP_11;
    let outbound = Request::from_parts(parts, body);

    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(handshake) => handshake,
            Err(err) => return bad_gateway(&backend.name, &err),
        };
    tokio::spawn(async move {
        if let Err(err) = connection.with_upgrades().await {
            tracing::debug!("backend connection ended: {err}");
        }
    });
    let mut response = match sender.send_request(outbound).await {
        Ok(response) => response,
        Err(err) => return bad_gateway(&backend.name, &err),
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let backend_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (client, backend) = match tokio::join!(client_upgrade, backend_upgrade) {
                (Ok(client), Ok(backend)) => (client, backend),
                (Err(err), _) | (_, Err(err)) => {
                    tracing::debug!("upgrade failed: {err}");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut backend = TokioIo::new(backend);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
        });
        let (parts, _) = response.into_parts();
        return Response::from_parts(
            parts,
            http_body_util::Empty::new().map_err(|e| match e {}).boxed(),
        );
    }

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    Response::from_parts(parts, body.boxed())
}

fn bad_gateway(backend: &str, err: &hyper::Error) -> Response<Body> {
    tracing::debug!(backend, "proxying failed: {err}");
    text(
        StatusCode::BAD_GATEWAY,
        format!("502 bad gateway: {backend}: {err}\n"),
    )
}

fn forwarded_headers(headers: &mut HeaderMap, conn: &Conn, authority: &str) {
    let client_ip = conn.peer.ip().to_canonical().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) if !earlier.trim().is_empty() => format!("{earlier}, {client_ip}"),
        _ => client_ip.clone(),
    };
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-forwarded-for", &forwarded_for);
    set("x-real-ip", &client_ip);
    set("x-forwarded-proto", conn.scheme.as_str());
    set("x-forwarded-host", authority);
    set("x-forwarded-port", &conn.local_port.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers, false);
        let names: Vec<_> = headers.keys().map(|k| k.as_str().to_owned()).collect();
        assert_eq!(names, vec!["x-kept".to_owned()]);
    }
}
