//! rkube's ingress controller: serves networking.k8s.io/v1 Ingresses of the IngressClass
//! `rkube` (made at start, the default class) as an HTTP and HTTPS reverse proxy.
//!
//! Informers follow Ingresses, IngressClasses, Services, EndpointSlices, TLS Secrets (and the
//! Node, with a node name). After any change the route table ([`table`]) is rebuilt whole and
//! swapped in at once, so a request sees either the old or the new table, never half of one.
//! The proxy ([`proxy`]) routes by host and path ([`matching`]) to the ready endpoints of the
//! backend Service, with certificates chosen by SNI ([`tls`]). A second loop keeps
//! `status.loadBalancer.ingress` of the Ingresses it serves at the node's addresses ([`status`]).

pub mod class;
pub mod matching;
pub mod proxy;
pub mod status;
pub mod table;
pub mod tls;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Client;
use kube::api::Api;
use kube::runtime::watcher;
use rkube_controllers::Stop;
use rkube_controllers::informer::Informer;
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::table::{ClusterView, RouteTable};
use crate::tls::CertCache;

/// The IngressClass this controller makes and serves by default.
pub const DEFAULT_CLASS: &str = "rkube";
/// The `spec.controller` of the IngressClasses this controller serves.
pub const CONTROLLER_NAME: &str = "rkube.io/ingress-controller";

/// How long to wait before retrying a failed status write or IngressClass creation.
const RETRY_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct IngressOptions {
    /// Where plain HTTP is served.
    pub http: SocketAddr,
    /// Where HTTPS is served.
    pub https: SocketAddr,
    /// The IngressClass made at start (as default) when absent.
    pub class_name: String,
    /// The `spec.controller` of the classes served.
    pub controller: String,
    /// The Node this instance runs on: its InternalIPs go into the Ingresses' status.
    pub node_name: Option<String>,
    /// Addresses for the Ingresses' status, instead of the Node's.
    pub node_ips: Vec<IpAddr>,
    /// Serve on whichever of the two ports can be bound, with a warning for the other (a
    /// node whose port 80 or 443 is taken); only both failing is an error. Off: either
    /// failing is an error.
    pub either_port: bool,
}

impl Default for IngressOptions {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 80)),
            https: SocketAddr::from(([0, 0, 0, 0], 443)),
            class_name: DEFAULT_CLASS.to_owned(),
            controller: CONTROLLER_NAME.to_owned(),
            node_name: None,
            node_ips: Vec::new(),
            either_port: false,
        }
    }
}

/// What the proxy reads: the current route table and the default certificate.
pub struct Shared {
    table: RwLock<Arc<RouteTable>>,
    default_cert: Arc<CertifiedKey>,
}

impl Shared {
    /// The route table as it is now; it never changes after this.
    pub fn table(&self) -> Arc<RouteTable> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn swap(&self, table: RouteTable) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
    }
}

struct Informers {
    ingresses: Informer<Ingress>,
    classes: Informer<IngressClass>,
    services: Informer<Service>,
    slices: Informer<EndpointSlice>,
    secrets: Informer<Secret>,
    node: Option<Informer<Node>>,
}

impl ClusterView for Informers {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get_in(Some(namespace), name)
    }

    fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .list_in(namespace)
            .into_iter()
            .filter(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    .is_some_and(|n| n == service)
            })
            .collect()
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.secrets.get_in(Some(namespace), name)
    }
}

impl Informers {
    fn served(&self, controller: &str) -> Vec<(Arc<Ingress>, bool)> {
        let classes = self.classes.list();
        self.ingresses
            .list()
            .into_iter()
            .map(|i| {
                let served = class::served(&i, controller, classes.iter().map(|c| c.as_ref()));
                (i, served)
            })
            .collect()
    }

    async fn synced(&self) {
        self.ingresses.synced().await;
        self.classes.synced().await;
        self.services.synced().await;
        self.slices.synced().await;
        self.secrets.synced().await;
        if let Some(node) = &self.node {
            node.synced().await;
        }
    }
}

/// Wakes `notify` on every change of an informer.
fn forward_changes<K>(informer: &Informer<K>, notify: &[Arc<Notify>], stop: &Stop)
where
    K: kube::Resource + Clone + Send + Sync + 'static,
{
    let mut changes = informer.subscribe();
    let notify = notify.to_vec();
    let stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                change = changes.recv() => {
                    if change.is_none() {
                        return;
                    }
                    notify.iter().for_each(|n| n.notify_one());
                }
                () = stop.stopped() => return,
            }
        }
    });
}

/// Binds the HTTP and HTTPS ports: both, or with `either_port` at least one (the other
/// warned about).
async fn bind_ports(
    options: &IngressOptions,
) -> anyhow::Result<(Option<TcpListener>, Option<TcpListener>)> {
    let http = TcpListener::bind(options.http)
        .await
        .with_context(|| format!("ingress cannot listen on {} (HTTP)", options.http));
    let https = TcpListener::bind(options.https)
        .await
        .with_context(|| format!("ingress cannot listen on {} (HTTPS)", options.https));
    match (http, https) {
        (Ok(http), Ok(https)) => Ok((Some(http), Some(https))),
        (Err(err), _) | (_, Err(err)) if !options.either_port => Err(err),
        (Err(err), Err(_)) => Err(err.context(format!(
            "and cannot listen on {} (HTTPS) either",
            options.https
        ))),
        (Ok(http), Err(err)) => {
            tracing::warn!("{err:#}: serving HTTP on {} only", options.http);
            Ok((Some(http), None))
        }
        (Err(err), Ok(https)) => {
            tracing::warn!("{err:#}: serving HTTPS on {} only", options.https);
            Ok((None, Some(https)))
        }
    }
}

/// Runs the ingress controller until `stop`: binds the ports first (failing when either is
/// taken, or with `either_port` both), then serves while keeping routes and status current.
pub async fn run(client: Client, options: IngressOptions, stop: Stop) -> anyhow::Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (http, https) = bind_ports(&options).await?;
    let shared = Arc::new(Shared {
        table: RwLock::new(Arc::new(RouteTable::default())),
        default_cert: tls::default_certificate(&provider)?,
    });
    let mut tls_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(tls::Resolver {
            shared: shared.clone(),
        }));
    tls_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));

    let node = options.node_name.as_ref().map(|name| {
        Informer::start_with(
            Api::<Node>::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
            stop.clone(),
        )
    });
    let informers = Arc::new(Informers {
        ingresses: Informer::start(client.clone(), stop.clone()),
        classes: Informer::start(client.clone(), stop.clone()),
        services: Informer::start(client.clone(), stop.clone()),
        slices: Informer::start(client.clone(), stop.clone()),
        secrets: Informer::start_with(
            Api::all(client.clone()),
            watcher::Config::default().fields("type=kubernetes.io/tls"),
            stop.clone(),
        ),
        node,
    });

    let class_task = tokio::spawn(keep_trying_class(
        client.clone(),
        options.clone(),
        stop.clone(),
    ));
    let mut tasks = Vec::new();
    let mut listening = Vec::new();
    if let Some(http) = http {
        listening.push(format!("{} (HTTP)", options.http));
        tasks.push(tokio::spawn(proxy::serve(
            http,
            None,
            shared.clone(),
            stop.clone(),
        )));
    }
    if let Some(https) = https {
        listening.push(format!("{} (HTTPS)", options.https));
        tasks.push(tokio::spawn(proxy::serve(
            https,
            Some(acceptor),
            shared.clone(),
            stop.clone(),
        )));
    }
    tracing::info!(on = %listening.join(", "), "ingress controller listening");

    tokio::select! {
        () = informers.synced() => {}
        () = stop.stopped() => return Ok(()),
    }
    let routes_changed = Arc::new(Notify::new());
    let status_changed = Arc::new(Notify::new());
    let both = [routes_changed.clone(), status_changed.clone()];
    forward_changes(&informers.ingresses, &both, &stop);
    forward_changes(&informers.classes, &both, &stop);
    forward_changes(&informers.services, &both[..1], &stop);
    forward_changes(&informers.slices, &both[..1], &stop);
    forward_changes(&informers.secrets, &both[..1], &stop);
    if let Some(node) = &informers.node {
        forward_changes(node, &both[1..], &stop);
    }
    routes_changed.notify_one();
    status_changed.notify_one();

    let status_task = tokio::spawn(status_loop(
        client,
        informers.clone(),
        options.clone(),
        status_changed.clone(),
        stop.clone(),
    ));

    let mut certs = CertCache::default();
    loop {
        tokio::select! {
            () = routes_changed.notified() => {}
            () = stop.stopped() => break,
        }
        let served: Vec<Arc<Ingress>> = informers
            .served(&options.controller)
            .into_iter()
            .filter_map(|(i, served)| served.then_some(i))
            .collect();
        let table = RouteTable::build(&served, informers.as_ref(), &mut certs, &provider);
        shared.swap(table);
        tracing::debug!(ingresses = served.len(), "ingress routes rebuilt");
    }
    tasks.extend([status_task, class_task]);
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

async fn keep_trying_class(client: Client, options: IngressOptions, stop: Stop) {
    loop {
        match class::ensure_class(client.clone(), &options.class_name, &options.controller).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(class = %options.class_name, "cannot create the IngressClass: {err}")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY_DELAY) => {}
            () = stop.stopped() => return,
        }
    }
}

/// This instance's addresses: the flag's, else the Node's InternalIPs, else the HTTP
/// listener's address when it is a specific one.
fn own_addresses(options: &IngressOptions, node: Option<&Informer<Node>>) -> BTreeSet<IpAddr> {
    if !options.node_ips.is_empty() {
        return options.node_ips.iter().copied().collect();
    }
    if let (Some(node), Some(name)) = (node, options.node_name.as_deref()) {
        return node
            .get(name)
            .and_then(|n| n.status.clone())
            .and_then(|s| s.addresses)
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == "InternalIP")
            .filter_map(|a| a.address.parse().ok())
            .collect();
    }
    let ip = options.http.ip();
    if ip.is_unspecified() {
        BTreeSet::new()
    } else {
        BTreeSet::from([ip])
    }
}

async fn status_loop(
    client: Client,
    informers: Arc<Informers>,
    options: IngressOptions,
    changed: Arc<Notify>,
    stop: Stop,
) {
    // Addresses this process has published; those no longer its own are taken off.
    let mut published: BTreeSet<IpAddr> = BTreeSet::new();
    let mut warned = false;
    loop {
        tokio::select! {
            () = changed.notified() => {}
            () = stop.stopped() => return,
        }
        let mine = own_addresses(&options, informers.node.as_ref());
        // With a node name the addresses come with the Node (not registered yet at start).
        if mine.is_empty() && !warned && options.node_name.is_none() {
            tracing::warn!(
                "no node address known: Ingress status is not set (use --node-ip or --node-name)"
            );
            warned = true;
        }
        let stale: BTreeSet<IpAddr> = published.difference(&mine).copied().collect();
        let mut failed = false;
        for (ingress, served) in informers.served(&options.controller) {
            let current = status::current(&ingress);
            let desired = status::desired(&current, served, &mine, &stale);
            if desired == current {
                continue;
            }
            if let Err(err) = status::write(client.clone(), &ingress, &desired).await {
                // A conflict means a newer version is on its way through the informer.
                tracing::debug!(ingress = ?ingress.metadata.name, "status update failed: {err}");
                failed = true;
            }
        }
        if failed {
            let changed = changed.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RETRY_DELAY).await;
                changed.notify_one();
            });
        } else {
            published = mine;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(http: SocketAddr, https: SocketAddr, either_port: bool) -> IngressOptions {
        IngressOptions {
            http,
            https,
            either_port,
            ..IngressOptions::default()
        }
    }

    #[tokio::test]
    async fn a_taken_port_fails_or_leaves_the_other_one_served() -> anyhow::Result<()> {
        let holder = TcpListener::bind("127.0.0.1:0").await?;
        let taken = holder.local_addr()?;
        let free = SocketAddr::from(([127, 0, 0, 1], 0));
        let err = bind_ports(&options(free, taken, false))
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("bound a taken port"))?;
        assert!(
            format!("{err:#}").contains(&format!("ingress cannot listen on {taken} (HTTPS)")),
            "{err:#}"
        );
        let (http, https) = bind_ports(&options(free, taken, true)).await?;
        assert!(http.is_some() && https.is_none());
        let (http, https) = bind_ports(&options(taken, free, true)).await?;
        assert!(http.is_none() && https.is_some());
        let err = bind_ports(&options(taken, taken, true))
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("bound a taken port"))?;
        assert!(format!("{err:#}").contains("either"), "{err:#}");
        drop(holder);
        Ok(())
    }
}
