//! rkube's service proxy, kube-proxy's nftables mode: Services and EndpointSlices become
//! nftables rules in a table of our own ([`rules`]), applied with `nft` one atomic
//! transaction at a time ([`proxier`]). Changes are batched over a short window and touch
//! only the services that changed; a full rewrite runs periodically. On a clean exit the
//! table is removed. Host-gw pod routes to the other nodes are kept by [`routes`].

pub mod model;
pub mod netlink;
pub mod nft;
pub mod proxier;
pub mod routes;
pub mod rules;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use rkube_controllers::informer::{Change, Informer, key_of};
use rkube_controllers::{Stop, on_change};
use tokio::sync::Notify;

use crate::model::SERVICE_NAME_LABEL;
use crate::proxier::Proxier;
use crate::rules::{Rendered, RuleConfig};

/// The default table.
pub const DEFAULT_TABLE: &str = "rkube-proxy";

/// The proxy's settings (kube-proxy's flags of similar names).
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    /// This node's name: endpoints with this `nodeName` are local.
    pub hostname: String,
    /// The pods' addresses (`--cluster-cidr`), for masquerading; `None`: no local-traffic
    /// detection.
    pub cluster_cidr: Option<String>,
    /// The nftables table (family ip).
    pub table: String,
    /// The least time between two syncs: a change this soon after the last one waits, and
    /// the changes that arrive meanwhile are applied together.
    pub min_sync_period: Duration,
    /// How often the whole table is rewritten.
    pub sync_period: Duration,
    /// Remove the table when stopped.
    pub cleanup_on_exit: bool,
    /// Keep host-gw routes to the other nodes' pod CIDRs, with this route protocol number.
    pub route_protocol: Option<u8>,
    /// Masquerade pod traffic leaving the cluster CIDR (the pods' CNI bridge does not).
    pub pod_egress_masquerade: bool,
    /// Told of each sync that reached the kernel (benchmarks and tests).
    pub on_sync: Option<tokio::sync::mpsc::UnboundedSender<Synced>>,
}

/// A sync whose rules are in the kernel.
#[derive(Clone, Debug)]
pub enum Synced {
    /// The whole table was written.
    Full,
    /// These services (`namespace/name`) were rewritten.
    Partial(Vec<String>),
}

impl ProxyOptions {
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            cluster_cidr: Some("10.42.0.0/16".to_owned()),
            table: DEFAULT_TABLE.to_owned(),
            min_sync_period: Duration::from_millis(50),
            sync_period: Duration::from_secs(300),
            cleanup_on_exit: true,
            route_protocol: Some(routes::DEFAULT_ROUTE_PROTOCOL),
            pod_egress_masquerade: true,
            on_sync: None,
        }
    }

    fn report(&self, synced: Synced) {
        if let Some(tx) = &self.on_sync {
            let _ = tx.send(synced);
        }
    }
}

/// Checks an IPv4 CIDR (`a.b.c.d/n`) and returns it with host bits cleared.
pub fn parse_ipv4_cidr(cidr: &str) -> anyhow::Result<String> {
    let (ip, len) = cidr
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("{cidr:?} is not a CIDR (a.b.c.d/n)"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| anyhow::anyhow!("{cidr:?}: {ip:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| anyhow::anyhow!("{cidr:?}: bad prefix length"))?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok(format!("{}/{len}", Ipv4Addr::from(u32::from(ip) & mask)))
}

/// The node's host name, lower-cased, as kube-proxy takes it without --hostname-override.
pub fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// The rules of one Service from its object (if it still exists) and its EndpointSlices.
pub fn render(
    cfg: &RuleConfig,
    hostname: &str,
    service: Option<&Service>,
    slices: &[&EndpointSlice],
) -> Rendered {
    let Some(service) = service else {
        return Rendered::default();
    };
    let ports: Vec<_> = model::service_ports(service)
        .into_iter()
        .map(|sp| {
            let eps = model::endpoints_for(&sp, slices, hostname);
            (sp, eps)
        })
        .collect();
    rules::render_service(cfg, &ports)
}

/// The service key (`namespace/name`) an EndpointSlice belongs to.
fn slice_service(slice: &EndpointSlice) -> Option<String> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(format!(
        "{}/{name}",
        slice.metadata.namespace.as_deref().unwrap_or_default()
    ))
}

/// Changed service keys waiting for a sync.
#[derive(Default)]
struct Dirty {
    keys: Mutex<HashSet<String>>,
    notify: Notify,
}

impl Dirty {
    fn mark(&self, key: String) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        self.notify.notify_one();
    }

    fn take(&self) -> HashSet<String> {
        std::mem::take(&mut *self.keys.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct Caches {
    services: Informer<Service>,
    slices: Informer<EndpointSlice>,
}

impl Caches {
    /// Renders the given services (all of them when `keys` is `None`).
    fn render(
        &self,
        cfg: &RuleConfig,
        hostname: &str,
        keys: Option<&HashSet<String>>,
    ) -> HashMap<String, Rendered> {
        let slices = self.slices.list();
        let mut by_service: HashMap<String, Vec<&EndpointSlice>> = HashMap::new();
        for slice in &slices {
            if let Some(key) = slice_service(slice)
                && keys.is_none_or(|k| k.contains(&key))
            {
                by_service.entry(key).or_default().push(slice.as_ref());
            }
        }
        for list in by_service.values_mut() {
            list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        }
        let keys: Vec<String> = match keys {
            Some(keys) => keys.iter().cloned().collect(),
            None => self
                .services
                .list()
                .iter()
                .map(|s| key_of(s.as_ref()))
                .collect(),
        };
        keys.into_iter()
            .map(|key| {
                let service = self.services.get(&key);
                let slices = by_service.get(&key).map(Vec::as_slice).unwrap_or_default();
                let rendered = render(cfg, hostname, service.as_deref(), slices);
                (key, rendered)
            })
            .collect()
    }
}

/// Runs the proxy until `stop`, then removes its table (unless told to keep it). Fails only
/// when the rules cannot be installed at all at start.
pub async fn run(client: Client, options: ProxyOptions, stop: Stop) -> anyhow::Result<()> {
    let cfg = RuleConfig {
        table: options.table.clone(),
        cluster_cidr: options.cluster_cidr.clone(),
        pod_egress_masquerade: options.pod_egress_masquerade,
    };
    let caches = Caches {
        services: Informer::start(client.clone(), stop.clone()),
        slices: Informer::start(client.clone(), stop.clone()),
    };
    let dirty = Arc::new(Dirty::default());
    {
        let dirty = dirty.clone();
        on_change(&caches.services, stop.clone(), move |change| {
            dirty.mark(key_of(change.object().as_ref()));
        });
    }
    {
        let dirty = dirty.clone();
        on_change(&caches.slices, stop.clone(), move |change| {
            if let Change::Updated(old, _) = change
                && let Some(key) = slice_service(old)
            {
                dirty.mark(key);
            }
            if let Some(key) = slice_service(change.object()) {
                dirty.mark(key);
            }
        });
    }
    if let Some(protocol) = options.route_protocol {
        let nodes: Informer<Node> = Informer::start(client.clone(), stop.clone());
        tokio::spawn(routes::run(
            nodes,
            options.hostname.clone(),
            protocol,
            stop.clone(),
        ));
    }
    tokio::select! {
        () = async { caches.services.synced().await; caches.slices.synced().await } => {}
        () = stop.stopped() => return Ok(()),
    }

    let mut proxier = Proxier::new(cfg.clone());
    // The first sync replaces whatever an earlier run left, in one transaction.
    dirty.take();
    let started = Instant::now();
    let desired = caches.render(&cfg, &options.hostname, None);
    let stats = proxier.sync_all(desired).await?;
    tracing::info!(
        table = %cfg.table,
        services = stats.services,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "proxy rules synced (full, table replaced)"
    );

    options.report(Synced::Full);

    let mut resync = tokio::time::interval(options.sync_period.max(Duration::from_secs(1)));
    resync.reset();
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    let mut full_due: Option<Instant> = None;
    // As kube-proxy's bounded-frequency runner: a change after a quiet spell is applied at
    // once; changes closer than `min_sync_period` to the last sync wait for it, together.
    let mut last_sync = Instant::now();
    loop {
        let full_wait = async {
            match full_due {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = dirty.notify.notified() => {
                let next = last_sync + options.min_sync_period;
                tokio::select! {
                    () = tokio::time::sleep_until(next.into()) => {}
                    () = stop.stopped() => break,
                }
                if full_due.is_some() {
                    continue; // a full sync is coming and will include these
                }
                let keys = dirty.take();
                if keys.is_empty() {
                    continue;
                }
                let started = Instant::now();
                let changed: Vec<(String, Rendered)> =
                    caches.render(&cfg, &options.hostname, Some(&keys)).into_iter().collect();
                let synced: Option<Vec<String>> = options
                    .on_sync
                    .is_some()
                    .then(|| changed.iter().map(|(k, _)| k.clone()).collect());
                match proxier.sync_changed(changed).await {
                    Ok(stats) => {
                        tracing::debug!(
                            services = stats.services,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "proxy rules synced (partial)"
                        );
                        if let Some(keys) = synced {
                            options.report(Synced::Partial(keys));
                        }
                    }
                    Err(err) => {
                        tracing::warn!("partial sync failed, a full sync follows: {err:#}");
                        full_due = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
                last_sync = Instant::now();
            }
            () = full_wait => {
                full_due = None;
                full_sync(&mut proxier, &caches, &cfg, &options, &dirty, &mut full_due).await;
                last_sync = Instant::now();
            }
            _ = resync.tick() => {
                full_sync(&mut proxier, &caches, &cfg, &options, &dirty, &mut full_due).await;
                last_sync = Instant::now();
            }
            _ = housekeeping.tick() => {
                if proxier.has_emptied() {
                    proxier.delete_emptied().await;
                }
            }
            () = stop.stopped() => break,
        }
    }
    if options.cleanup_on_exit {
        match proxier.cleanup().await {
            Ok(()) => tracing::info!(table = %cfg.table, "proxy rules removed"),
            Err(err) => tracing::warn!("removing the proxy's table failed: {err:#}"),
        }
    }
    Ok(())
}

async fn full_sync(
    proxier: &mut Proxier,
    caches: &Caches,
    cfg: &RuleConfig,
    options: &ProxyOptions,
    dirty: &Dirty,
    full_due: &mut Option<Instant>,
) {
    dirty.take();
    let started = Instant::now();
    let desired = caches.render(cfg, &options.hostname, None);
    match proxier.sync_all(desired).await {
        Ok(stats) => {
            tracing::info!(
                services = stats.services,
                recreated = stats.recreated,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "proxy rules synced (full)"
            );
            options.report(Synced::Full);
        }
        Err(err) => {
            tracing::warn!("full sync failed, retrying: {err:#}");
            *full_due = Some(Instant::now() + Duration::from_secs(2));
        }
    }
}
