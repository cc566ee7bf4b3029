//! What the proxy programs, read from Services and EndpointSlices: kube-proxy's service ports
//! and endpoints, and its rules for which endpoints a service port uses
//! (`proxy.CategorizeEndpoints`, with KEP-1669's serving-terminating fallback).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// kube's default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10_800;

/// One port of a Service, as the proxy sees it (IPv4 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// The port's name (may be empty for a single-port service).
    pub port_name: String,
    /// `tcp`, `udp` or `sctp`: nft's spelling.
    pub protocol: &'static str,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// 0 when the service has no NodePort.
    pub node_port: u16,
    pub external_ips: Vec<Ipv4Addr>,
    /// `status.loadBalancer.ingress[].ip`, except ingresses with `ipMode: Proxy`.
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// `Some(timeout seconds)` for `sessionAffinity: ClientIP`.
    pub affinity_timeout: Option<u32>,
    /// `externalTrafficPolicy: Local` (only meaningful when externally accessible).
    pub external_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
}

impl ServicePort {
    /// `namespace/name:port` as kube names a service port in logs.
    pub fn display_name(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.name, self.port_name)
    }

    /// Reachable through a NodePort, a load balancer or an external IP.
    pub fn externally_accessible(&self) -> bool {
        self.node_port != 0 || !self.load_balancer_ips.is_empty() || !self.external_ips.is_empty()
    }

    /// External traffic goes to this node's endpoints only.
    pub fn external_policy_local(&self) -> bool {
        self.externally_accessible() && self.external_local
    }

    /// Some traffic uses endpoints on any node.
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_local || (self.externally_accessible() && !self.external_policy_local())
    }

    /// Some traffic uses this node's endpoints only.
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_local || self.external_policy_local()
    }
}

/// One endpoint of a service port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// On this node (`nodeName` is the proxy's hostname).
    pub local: bool,
}

impl Endpoint {
    fn serving_terminating(&self) -> bool {
        self.serving && self.terminating
    }
}

/// The service ports of a Service, or none when the proxy has nothing to do with it
/// (headless, ExternalName, no IPv4 cluster IP yet).
pub fn service_ports(service: &Service) -> Vec<ServicePort> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let cluster_ip = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .find_map(|ip| ip.parse::<Ipv4Addr>().ok());
    let Some(cluster_ip) = cluster_ip else {
        return Vec::new();
    };
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let load_balancer_ips: Vec<Ipv4Addr> = if spec.type_.as_deref() == Some("LoadBalancer") {
        service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter(|ingress| ingress.ip_mode.as_deref() != Some("Proxy"))
            .filter_map(|ingress| ingress.ip.as_deref()?.parse().ok())
            .collect()
    } else {
        Vec::new()
    };
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
    });
    let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    spec.ports
        .iter()
        .flatten()
        .filter_map(|port| {
            Some(ServicePort {
                namespace: namespace.clone(),
                name: name.clone(),
                port_name: port.name.clone().unwrap_or_default(),
                protocol: protocol(port.protocol.as_deref())?,
                cluster_ip,
                port: u16::try_from(port.port).ok().filter(|p| *p != 0)?,
                node_port: port
                    .node_port
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                external_ips: external_ips.clone(),
                load_balancer_ips: load_balancer_ips.clone(),
                affinity_timeout,
                external_local,
                internal_local,
            })
        })
        .collect()
}

/// A Kubernetes protocol in nft's spelling (TCP when unset).
fn protocol(p: Option<&str>) -> Option<&'static str> {
    match p.unwrap_or("TCP") {
        "TCP" => Some("tcp"),
        "UDP" => Some("udp"),
        "SCTP" => Some("sctp"),
        _ => None,
    }
}

/// The endpoints of one service port from its service's EndpointSlices: the slice port with
/// the same name and protocol, the first address of each IPv4 endpoint, conditions defaulted
/// as kube does (ready unless false, serving as ready, terminating only if true). The same
/// address and port in two slices counts once. Sorted by address and port.
pub fn endpoints_for(
    port: &ServicePort,
    slices: &[&EndpointSlice],
    hostname: &str,
) -> Vec<Endpoint> {
    let mut found: BTreeMap<(Ipv4Addr, u16), Endpoint> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let slice_port = slice.ports.iter().flatten().find(|p| {
            p.name.clone().unwrap_or_default() == port.port_name
                && protocol(p.protocol.as_deref()) == Some(port.protocol)
        });
        let Some(number) = slice_port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let Some(ip) = endpoint
                .addresses
                .first()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let local = endpoint.node_name.as_deref() == Some(hostname);
            found.entry((ip, number)).or_insert(Endpoint {
                ip,
                port: number,
                ready,
                serving,
                terminating,
                local,
            });
        }
    }
    found.into_values().collect()
}

/// Which endpoints a service port's traffic may use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Categorized {
    /// For `Cluster` policy traffic: ready endpoints anywhere, or else the serving and
    /// terminating ones.
    pub cluster: Vec<Endpoint>,
    /// For `Local` policy traffic: this node's ready endpoints, or else its serving and
    /// terminating ones.
    pub local: Vec<Endpoint>,
    /// Every endpoint some chain of this service port may jump to.
    pub reachable: Vec<Endpoint>,
    /// Whether the service port has usable endpoints on any node.
    pub has_any: bool,
}

/// kube-proxy's `CategorizeEndpoints` without topology hints.
pub fn categorize(port: &ServicePort, endpoints: &[Endpoint]) -> Categorized {
    let mut out = Categorized::default();
    if port.uses_cluster_endpoints() {
        out.cluster = endpoints.iter().filter(|e| e.ready).cloned().collect();
        if out.cluster.is_empty() {
            out.cluster = endpoints
                .iter()
                .filter(|e| e.serving_terminating())
                .cloned()
                .collect();
        }
        out.has_any = !out.cluster.is_empty();
    }
    if !port.uses_local_endpoints() {
        out.reachable = out.cluster.clone();
        return out;
    }
    let mut local_ready = false;
    let mut local_serving_terminating = false;
    for e in endpoints {
        if e.ready {
            out.has_any = true;
            local_ready |= e.local;
        } else if e.serving_terminating() {
            out.has_any = true;
            local_serving_terminating |= e.local;
        }
    }
    if local_ready {
        out.local = endpoints
            .iter()
            .filter(|e| e.local && e.ready)
            .cloned()
            .collect();
    } else if local_serving_terminating {
        out.local = endpoints
            .iter()
            .filter(|e| e.local && e.serving_terminating())
            .cloned()
            .collect();
    }
    if !port.uses_cluster_endpoints() {
        out.reachable = out.local.clone();
        return out;
    }
    let mut all = out.cluster.clone();
    for e in &out.local {
        if !all.contains(e) {
            all.push(e.clone());
        }
    }
    all.sort();
    out.reachable = all;
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn port() -> ServicePort {
        ServicePort {
            namespace: "ns".into(),
            name: "svc".into(),
            port_name: "http".into(),
            protocol: "tcp",
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 80,
            node_port: 0,
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_timeout: None,
            external_local: false,
            internal_local: false,
        }
    }

    fn ep(last: u8, ready: bool, serving: bool, terminating: bool, local: bool) -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::new(10, 244, 0, last),
            port: 8080,
            ready,
            serving,
            terminating,
            local,
        }
    }

    #[test]
    fn ready_endpoints_win_over_terminating_ones() {
        let eps = vec![
            ep(1, true, true, false, false),
            ep(2, false, true, true, false),
            ep(3, false, false, false, false),
        ];
        let c = categorize(&port(), &eps);
        assert_eq!(c.cluster, vec![eps[0].clone()]);
        assert!(c.has_any);
        assert_eq!(c.reachable, c.cluster);
    }

    #[test]
    fn serving_terminating_endpoints_are_used_when_none_is_ready() {
        let eps = vec![
            ep(2, false, true, true, false),
            ep(3, false, false, true, false),
        ];
        let c = categorize(&port(), &eps);
        assert_eq!(c.cluster, vec![eps[0].clone()]);
        let none = categorize(&port(), &[ep(3, false, false, false, false)]);
        assert!(!none.has_any);
        assert!(none.reachable.is_empty());
    }

    #[test]
    fn internal_local_uses_only_this_nodes_endpoints() {
        let mut p = port();
        p.internal_local = true;
        let eps = vec![
            ep(1, true, true, false, false),
            ep(2, true, true, false, true),
        ];
        let c = categorize(&p, &eps);
        assert!(c.cluster.is_empty());
        assert_eq!(c.local, vec![eps[1].clone()]);
        assert_eq!(c.reachable, vec![eps[1].clone()]);
        assert!(c.has_any);
        // No local endpoint: the service still has endpoints (elsewhere), none usable here.
        let c = categorize(&p, &eps[..1]);
        assert!(c.local.is_empty() && c.has_any);
    }

    #[test]
    fn external_local_with_nodeport_keeps_cluster_endpoints_for_internal_traffic() {
        let mut p = port();
        p.node_port = 30080;
        p.external_local = true;
        let eps = vec![
            ep(1, true, true, false, false),
            ep(2, true, true, false, true),
        ];
        let c = categorize(&p, &eps);
        assert_eq!(c.cluster.len(), 2);
        assert_eq!(c.local, vec![eps[1].clone()]);
        assert_eq!(c.reachable.len(), 2);
        // Without an external way in, Local external policy means nothing.
        let mut q = port();
        q.external_local = true;
        assert!(!q.uses_local_endpoints());
    }

    fn service(json: serde_json::Value) -> Service {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn reads_service_ports() {
        let svc = service(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "type": "LoadBalancer", "clusterIP": "10.96.1.2", "clusterIPs": ["10.96.1.2"],
                "sessionAffinity": "ClientIP",
                "externalTrafficPolicy": "Local",
                "ports": [
                    {"name": "http", "port": 80, "nodePort": 30080},
                    {"name": "dns", "port": 53, "protocol": "UDP"}
                ]
            },
            "status": {"loadBalancer": {"ingress": [
                {"ip": "192.0.2.10"}, {"ip": "192.0.2.11", "ipMode": "Proxy"}, {"hostname": "lb.example"}
            ]}}
        }));
        let ports = service_ports(&svc);
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].protocol, "tcp");
        assert_eq!(ports[0].node_port, 30080);
        assert_eq!(ports[0].affinity_timeout, Some(DEFAULT_AFFINITY_TIMEOUT));
        assert_eq!(
            ports[0].load_balancer_ips,
            vec![Ipv4Addr::new(192, 0, 2, 10)]
        );
        assert!(ports[0].external_policy_local());
        assert_eq!(ports[1].protocol, "udp");
        let headless = service(serde_json::json!({
            "metadata": {"name": "h", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }));
        assert!(service_ports(&headless).is_empty());
        let external = service(serde_json::json!({
            "metadata": {"name": "e", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}
        }));
        assert!(service_ports(&external).is_empty());
    }

    #[test]
    fn reads_endpoints_from_slices() {
        let slice = |name: &str, eps: serde_json::Value| -> EndpointSlice {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "ns"},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "other", "port": 9}],
                "endpoints": eps
            }))
            .unwrap()
        };
        let a = slice(
            "a",
            serde_json::json!([
                {"addresses": ["10.244.0.2"], "nodeName": "me"},
                {"addresses": ["10.244.0.1"], "conditions": {"ready": false, "serving": true, "terminating": true}}
            ]),
        );
        let b = slice(
            "b",
            serde_json::json!([{"addresses": ["10.244.0.2"], "conditions": {"ready": false}}]),
        );
        let eps = endpoints_for(&port(), &[&a, &b], "me");
        assert_eq!(
            eps,
            vec![
                ep(1, false, true, true, false),
                ep(2, true, true, false, true)
            ]
        );
    }
}
