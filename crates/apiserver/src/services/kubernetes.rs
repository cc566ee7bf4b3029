//! The `default/kubernetes` Service and its endpoints, as kube-apiserver's bootstrap
//! controller and lease endpoint reconciler keep them (`pkg/controlplane/controller/
//! kubernetesservice`, `pkg/controlplane/reconcilers/lease.go`).
//!
//! The Service (ClusterIP the first address of the service CIDR, port 443 `https` to the
//! server's port, labels `component=apiserver`, `provider=kubernetes`, no selector, so the
//! endpoints controller leaves it alone) is created through the Service registry like any
//! other. Every server holds a lease under `/registry/masterleases/<advertise address>` and
//! renews it every two thirds of the lease duration; the Endpoints and the EndpointSlice of
//! the Service list the addresses whose lease is live. kube gives these keys an etcd TTL; the
//! store contract has no TTLs, so a lease is live while its revision keeps changing, judged
//! on each server's own clock (as leader election judges a Lease), and an expired one is
//! deleted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_store::{RangeRequest, Revision, StoreError};
use serde_json::{Value, json};

use crate::State;
use crate::errors::ApiError;
use crate::objects;

/// Where the servers' leases live.
pub const LEASES_PREFIX: &str = "/registry/masterleases/";

/// The host's primary IPv4 address: the source address of its default route, found by
/// connecting a UDP socket (nothing is sent). `None` without a default route.
pub fn primary_ipv4() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The address this server advertises: `--advertise-address`; else the bind address when
/// it is a specific, non-loopback one; else the host's primary IPv4 address; else loopback.
pub fn advertise_address(configured: Option<IpAddr>, bind: IpAddr) -> IpAddr {
    if let Some(ip) = configured.filter(|ip| !ip.is_unspecified()) {
        return ip;
    }
    if !bind.is_unspecified() && !bind.is_loopback() {
        return bind;
    }
    primary_ipv4().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The reconciler of one server.
pub struct Reconciler {
    state: Weak<State>,
    ip: IpAddr,
    port: u16,
    lease_duration: Duration,
    /// For each lease seen: its revision and when this server saw it change.
    observed: HashMap<String, (Revision, Instant)>,
    /// Set on a clean shutdown: no more renewals.
    stopped: bool,
}

impl Reconciler {
    pub fn new(state: &Arc<State>, ip: IpAddr, port: u16) -> Self {
        Self {
            state: Arc::downgrade(state),
            ip,
            port,
            lease_duration: state.services.config.endpoint_lease_duration,
            observed: HashMap::new(),
            stopped: false,
        }
    }

    fn lease_key(&self) -> String {
        format!("{LEASES_PREFIX}{}", self.ip)
    }

    /// Runs until the server is gone or [`Reconciler::remove_own`] ran: the Service, the
    /// lease and the endpoints, every two thirds of the lease duration.
    pub fn spawn(reconciler: Arc<tokio::sync::Mutex<Self>>) {
        tokio::spawn(async move {
            loop {
                let interval = {
                    let mut this = reconciler.lock().await;
                    if this.stopped {
                        return;
                    }
                    let Some(state) = this.state.upgrade() else {
                        return;
                    };
                    if let Err(err) = this.reconcile_once(&state).await {
                        tracing::warn!(error = %err.message, "reconciling the kubernetes service");
                    }
                    (this.lease_duration * 2 / 3).max(Duration::from_millis(200))
                };
                tokio::time::sleep(interval).await;
            }
        });
    }

    /// One round.
    pub async fn reconcile_once(&mut self, state: &State) -> Result<(), ApiError> {
        let services = self.services(state);
        for svc in &services {
            ensure_service(state, svc).await?;
        }
        self.renew_lease(state).await?;
        let ips = self.live_ips(state).await?;
        if ips.is_empty() {
            // Our own lease was just written; seeing none means something is wrong: keep
            // the endpoints rather than erase them (as kube does).
            return Ok(());
        }
        for svc in &services {
            reconcile_endpoints(state, svc, &ips).await?;
        }
        Ok(())
    }

    /// The services whose endpoints are the API servers: `default/kubernetes`, and
    /// `kube-system/kube-dns` when the servers run cluster DNS.
    fn services(&self, state: &State) -> Vec<SystemService> {
        let mut all = vec![SystemService::kubernetes(state, self.port)];
        if let Some(dns_port) = state.services.config.cluster_dns_port {
            all.push(SystemService::dns(state, dns_port));
        }
        all
    }

    async fn renew_lease(&self, state: &State) -> Result<(), ApiError> {
        let key = self.lease_key();
        let current = state.store.get(&key).await?;
        let generation = current
            .as_ref()
            .and_then(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
            .and_then(|v| v["metadata"]["generation"].as_i64())
            .unwrap_or(0)
            + 1;
        let value = json!({
            "kind": "Endpoints",
            "apiVersion": "v1",
            "metadata": {"name": self.ip.to_string(), "generation": generation},
            "subsets": [{"addresses": [{"ip": self.ip.to_string()}], "ports": [{"port": self.port}]}],
        });
        let bytes = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        let written = match current {
            Some(kv) => state.store.update(&key, bytes, kv.mod_revision).await,
            None => state.store.create(&key, bytes).await,
        };
        match written {
            // Another server with the same address renewed it first: it is live either way.
            Ok(_) | Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The advertised addresses whose lease is live, sorted; expired leases are deleted.
    async fn live_ips(&mut self, state: &State) -> Result<Vec<String>, ApiError> {
        let page = state
            .store
            .range(RangeRequest {
                prefix: LEASES_PREFIX.to_owned(),
                ..RangeRequest::default()
            })
            .await?;
        let now = Instant::now();
        let own = self.lease_key();
        let mut live = Vec::new();
        let mut seen = HashMap::new();
        for kv in page.kvs {
            let changed_at = match self.observed.get(&kv.key) {
                Some((revision, at)) if *revision == kv.mod_revision => *at,
                _ => now,
            };
            seen.insert(kv.key.clone(), (kv.mod_revision, changed_at));
            let ip = kv.key.trim_start_matches(LEASES_PREFIX).to_owned();
            if kv.key == own || now.duration_since(changed_at) < self.lease_duration {
                live.push(ip);
            } else {
                tracing::info!(%ip, "API server lease expired; removing it from the kubernetes endpoints");
                let _ = state.store.delete(&kv.key, Some(kv.mod_revision)).await;
            }
        }
        self.observed = seen;
        live.sort();
        Ok(live)
    }

    /// Removes this server's lease and its address from the endpoints (a clean shutdown).
    pub async fn remove_own(&mut self, state: &State) {
        self.stopped = true;
        let _ = state.store.delete(&self.lease_key(), None).await;
        self.observed.clear();
        if let Ok(ips) = self.live_ips(state).await
            && !ips.is_empty()
        {
            for svc in self.services(state) {
                let _ = reconcile_endpoints(state, &svc, &ips).await;
            }
        }
    }
}

/// A service the API servers keep, whose endpoints are the live API servers.
pub struct SystemService {
    namespace: &'static str,
    name: &'static str,
    labels: Value,
    cluster_ip: String,
    /// The Service's ports.
    ports: Value,
    /// The same ports as the endpoints list them (the servers' ports).
    endpoint_ports: Value,
}

impl SystemService {
    /// `default/kubernetes` at the first service IP, 443 to the servers' HTTPS port.
    fn kubernetes(state: &State, port: u16) -> Self {
        Self {
            namespace: "default",
            name: "kubernetes",
            labels: json!({"component": "apiserver", "provider": "kubernetes"}),
            cluster_ip: state.services.kubernetes_ip().to_string(),
            ports: json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]),
            endpoint_ports: json!([{"name": "https", "port": port, "protocol": "TCP"}]),
        }
    }

    /// `kube-system/kube-dns` at the tenth service IP (k3s's and kubeadm's convention),
    /// 53 over UDP and TCP to the servers' cluster DNS port.
    fn dns(state: &State, port: u16) -> Self {
        Self {
            namespace: "kube-system",
            name: "kube-dns",
            labels: json!({
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "rkube-dns",
            }),
            cluster_ip: state.services.dns_ip().to_string(),
            ports: json!([
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": port},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": port},
            ]),
            endpoint_ports: json!([
                {"name": "dns", "port": port, "protocol": "UDP"},
                {"name": "dns-tcp", "port": port, "protocol": "TCP"},
            ]),
        }
    }
}

/// `CreateOrUpdateMasterServiceIfNeeded`: creates the Service, or resets its ports and type
/// when they are not what this server serves.
pub async fn ensure_service(state: &State, want: &SystemService) -> Result<(), ApiError> {
    let (ns, name) = (Some(want.namespace), want.name);
    if let Some(mut svc) = objects::get_internal(state, "services", ns, name).await? {
        let fields = ["name", "port", "protocol", "targetPort"];
        let same_ports = match (svc["spec"]["ports"].as_array(), want.ports.as_array()) {
            (Some(have), Some(wanted)) => {
                have.len() == wanted.len()
                    && have
                        .iter()
                        .zip(wanted)
                        .all(|(h, w)| fields.iter().all(|f| h[*f] == w[*f]))
            }
            _ => false,
        };
        if same_ports && svc["spec"]["type"] == "ClusterIP" {
            return Ok(());
        }
        tracing::warn!("resetting the ports of service {}/{name}", want.namespace);
        svc["spec"]["ports"] = want.ports.clone();
        svc["spec"]["type"] = json!("ClusterIP");
        objects::update_internal(state, "services", ns, name, svc).await?;
        return Ok(());
    }
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": want.namespace, "labels": want.labels},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": want.cluster_ip,
            "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None",
            "ports": want.ports,
        },
    });
    match objects::create_internal(state, "services", ns, svc).await {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes the Endpoints and the EndpointSlice of a system service when they differ from
/// `ips` on its ports.
async fn reconcile_endpoints(
    state: &State,
    svc: &SystemService,
    ips: &[String],
) -> Result<(), ApiError> {
    let (ns, name) = (Some(svc.namespace), svc.name);
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    let ports = svc.endpoint_ports.clone();
    let subsets = json!([{"addresses": addresses, "ports": ports}]);
    let skip_mirror = "endpointslice.kubernetes.io/skip-mirror";
    match objects::get_internal(state, "endpoints", ns, name).await? {
        Some(mut ep) => {
            if ep["subsets"] != subsets || ep["metadata"]["labels"][skip_mirror] != "true" {
                ep["subsets"] = subsets;
                ep["metadata"]["labels"][skip_mirror] = json!("true");
                objects::update_internal(state, "endpoints", ns, name, ep).await?;
            }
        }
        None => {
            let ep = json!({
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": svc.namespace, "labels": {skip_mirror: "true"}},
                "subsets": subsets,
            });
            match objects::create_internal(state, "endpoints", ns, ep).await {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
    }
    // EnsureEndpointSliceFromEndpoints.
    let all_v6 = ips.iter().all(|ip| ip.contains(':'));
    let address_type = if all_v6 { "IPv6" } else { "IPv4" };
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    let service_name = "kubernetes.io/service-name";
    match objects::get_internal_in(state, "discovery.k8s.io", "v1", "endpointslices", ns, name)
        .await?
    {
        Some(mut slice) => {
            let same = slice["addressType"] == address_type
                && slice["endpoints"] == json!(endpoints)
                && slice["ports"] == ports
                && slice["metadata"]["labels"][service_name] == name;
            if !same {
                slice["addressType"] = json!(address_type);
                slice["endpoints"] = json!(endpoints);
                slice["ports"] = ports;
                slice["metadata"]["labels"][service_name] = json!(name);
                objects::update_internal_in(
                    state,
                    "discovery.k8s.io",
                    "v1",
                    "endpointslices",
                    ns,
                    name,
                    slice,
                )
                .await?;
            }
        }
        None => {
            let slice = json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": name, "namespace": svc.namespace, "labels": {service_name: name}},
                "addressType": address_type,
                "endpoints": endpoints,
                "ports": ports,
            });
            match objects::create_internal_in(
                state,
                "discovery.k8s.io",
                "v1",
                "endpointslices",
                ns,
                slice,
            )
            .await
            {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
