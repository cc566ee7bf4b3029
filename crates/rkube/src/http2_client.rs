//! An API client that speaks HTTP/2: one TLS connection carries every request and watch
//! of the process, as client-go's does for kube's kubelet and kube-scheduler. kube-rs's own
//! client speaks HTTP/1.1, where each request in flight needs a connection of its own: a
//! node agent starting a burst of 100 pods opened ~70 TLS connections to the API server (a
//! handshake each, and buffers on both sides for each), and the scheduler one per binding
//! in flight.
//!
//! HTTP/2 carries at most the server's `max_concurrent_streams` (200 in hyper) at once, and
//! a watch holds its stream while it lasts: a real node's few watches and bounded writes fit,
//! hundreds of hollow nodes' watches would not, so those keep the HTTP/1.1 client.

use std::time::Duration;

use anyhow::Context as _;
use hyper_rustls::FixedServerNameResolver;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::Client;
use kube::client::{Body, ConfigExt as _};
use rustls::pki_types::ServerName;
use tower::{BoxError, ServiceBuilder};

/// Pings on an idle connection, and how long an answer may take before the connection is
/// given up (client-go's `ReadIdleTimeout` and `PingTimeout`): a server that went away
/// is noticed even while only watches are open.
const PING_EVERY: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// A client for `config` over HTTP/2 (TLS with ALPN `h2` only). A kubeconfig's
/// `proxy-url` is kube-rs's to handle (HTTP CONNECT, SOCKS5), so such a config gets kube-rs's
/// own client.
pub fn client(config: kube::Config) -> anyhow::Result<Client> {
    if config.proxy_url.is_some() {
        return Ok(Client::try_from(config)?);
    }
    // The connector offers ALPN `h2` alone (from `enable_http2`).
    let tls = config.rustls_client_config()?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    http.set_nodelay(true);
    let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    // The kubeconfig's `tls-server-name`: the name the server's certificate is checked for.
    if let Some(name) = &config.tls_server_name {
        let name = ServerName::try_from(name.clone())
            .with_context(|| format!("invalid tls-server-name {name:?}"))?;
        builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name));
    }
    let https = builder.enable_http2().wrap_connector(http);
    let http2: hyper_util::client::legacy::Client<_, Body> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .http2_keep_alive_interval(PING_EVERY)
            .http2_keep_alive_timeout(PING_TIMEOUT)
            .http2_keep_alive_while_idle(true)
            .build(https);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http2);
    Ok(Client::new(service, config.default_namespace))
}
