//! The service load-balancer controller: the cloud controller manager's `service` loop with a
//! built-in provider. A Service of type LoadBalancer without a `loadBalancerClass` gets the
//! `service.kubernetes.io/load-balancer-cleanup` finalizer, then an address in
//! `status.loadBalancer.ingress`: one from the configured pool (`--loadbalancer-ip-pool`;
//! `spec.loadBalancerIP` honoured when free in it), or else the addresses of the Ready nodes
//! (ExternalIP, else InternalIP), as k3s's ServiceLB gives them. Every node's proxy sends
//! traffic for those addresses to the service. When the service stops being a load
//! balancer, or is deleted, its status is cleared and the finalizer removed. Events follow
//! the cloud controller manager's: EnsuringLoadBalancer, EnsuredLoadBalancer,
//! DeletingLoadBalancer, DeletedLoadBalancer, SyncLoadBalancerFailed.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::events::Type;
use crate::informer::{Informer, key_of, split_key};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

pub const FINALIZER: &str = "service.kubernetes.io/load-balancer-cleanup";

/// Where load-balancer addresses come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Addresses {
    /// The Ready nodes' addresses, shared by every load balancer.
    #[default]
    Nodes,
    /// One address per service from this IPv4 CIDR (network and broadcast excluded).
    Pool(Ipv4Addr, u8),
}

struct Controller {
    ctx: Context,
    services: Informer<Service>,
    nodes: Informer<Node>,
    addresses: Addresses,
    /// Pool addresses handed out, by service key: ahead of the cache, so two services
    /// reconciled back to back never get the same one.
    assigned: Mutex<HashMap<String, IpAddr>>,
    queue: WorkQueue,
}

pub fn start(ctx: &Context, options: &Options) {
    let services = ctx.informer::<Service>();
    let nodes = ctx.informer::<Node>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&services, ctx.stop.clone(), move |change| {
        let svc = change.object();
        if wants_load_balancer(svc) || has_finalizer(svc) || has_ingress(svc) {
            q.add(key_of(svc.as_ref()));
        }
    });
    // Node addresses are what node-mode load balancers publish.
    if options.load_balancer_addresses == Addresses::Nodes {
        let q = queue.clone();
        let svcs = services.clone();
        on_change(&nodes, ctx.stop.clone(), move |_| {
            for svc in svcs.list() {
                if wants_load_balancer(&svc) {
                    q.add(key_of(svc.as_ref()));
                }
            }
        });
    }
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        services,
        nodes,
        addresses: options.load_balancer_addresses.clone(),
        assigned: Mutex::default(),
        queue: queue.clone(),
    });
    // One worker: pool addresses are handed out one at a time.
    run_workers(controller, queue, 1, ctx.stop.clone());
}

/// A LoadBalancer service this provider serves (no other class asked for).
pub fn wants_load_balancer(svc: &Service) -> bool {
    svc.metadata.deletion_timestamp.is_none()
        && svc.spec.as_ref().is_some_and(|s| {
            s.type_.as_deref() == Some("LoadBalancer") && s.load_balancer_class.is_none()
        })
}

fn has_finalizer(svc: &Service) -> bool {
    svc.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

fn has_ingress(svc: &Service) -> bool {
    !ingress_ips(svc).is_empty()
}

fn ingress_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ingress| {
            ingress
                .iter()
                .filter_map(|i| i.ip.as_deref()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A Ready node's published address: ExternalIP, else InternalIP.
fn node_address(node: &Node) -> Option<IpAddr> {
    let status = node.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return None;
    }
    let addresses = status.addresses.as_ref()?;
    ["ExternalIP", "InternalIP"].iter().find_map(|kind| {
        addresses
            .iter()
            .find(|a| a.type_ == *kind)
            .and_then(|a| a.address.parse().ok())
    })
}

/// The `n`th usable address of an IPv4 CIDR (network and broadcast excluded).
fn pool_address(base: Ipv4Addr, bits: u8, n: u32) -> Option<Ipv4Addr> {
    let size = 1u64 << (32 - u32::from(bits));
    let usable = if size > 2 { size - 2 } else { size };
    if u64::from(n) >= usable {
        return None;
    }
    let offset = if size > 2 { n + 1 } else { n };
    Some(Ipv4Addr::from(u32::from(base).checked_add(offset)?))
}

fn in_pool(ip: Ipv4Addr, base: Ipv4Addr, bits: u8) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(bits))
    };
    u32::from(ip) & mask == u32::from(base)
}

impl Controller {
    fn assigned(&self) -> std::sync::MutexGuard<'_, HashMap<String, IpAddr>> {
        self.assigned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The addresses this service should publish, or why it cannot have one.
    fn desired(&self, key: &str, svc: &Service) -> Result<Vec<IpAddr>, String> {
        match self.addresses {
            Addresses::Nodes => {
                let ips: BTreeSet<IpAddr> = self
                    .nodes
                    .list()
                    .iter()
                    .filter_map(|n| node_address(n))
                    .collect();
                Ok(ips.into_iter().collect())
            }
            Addresses::Pool(base, bits) => {
                let mut assigned = self.assigned();
                // What the cache shows other services hold, plus what we handed out.
                let mut taken: HashMap<IpAddr, String> = HashMap::new();
                for other in self.services.list() {
                    let other_key = key_of(other.as_ref());
                    if other_key != key && wants_load_balancer(&other) {
                        for ip in ingress_ips(&other) {
                            taken.insert(ip, other_key.clone());
                        }
                    }
                }
                assigned.retain(|k, _| {
                    self.services
                        .get(k)
                        .is_some_and(|s| wants_load_balancer(&s))
                        || k == key
                });
                for (k, ip) in assigned.iter() {
                    if k != key {
                        taken.insert(*ip, k.clone());
                    }
                }
                let requested = svc
                    .spec
                    .as_ref()
                    .and_then(|s| s.load_balancer_ip.as_deref())
                    .filter(|ip| !ip.is_empty());
                let pick = if let Some(requested) = requested {
                    let ip: Ipv4Addr = requested.parse().map_err(|_| {
                        format!("loadBalancerIP {requested:?} is not an IPv4 address")
                    })?;
                    if !in_pool(ip, base, bits) {
                        return Err(format!(
                            "loadBalancerIP {ip} is not in the load balancer pool {base}/{bits}"
                        ));
                    }
                    if let Some(holder) = taken.get(&IpAddr::V4(ip)) {
                        return Err(format!(
                            "loadBalancerIP {ip} is already used by service {holder}"
                        ));
                    }
                    IpAddr::V4(ip)
                } else if let Some(current) = ingress_ips(svc)
                    .into_iter()
                    .chain(assigned.get(key).copied())
                    .find(|ip| match ip {
                        IpAddr::V4(v4) => in_pool(*v4, base, bits) && !taken.contains_key(ip),
                        IpAddr::V6(_) => false,
                    })
                {
                    current
                } else {
                    (0..)
                        .map_while(|n| pool_address(base, bits, n))
                        .map(IpAddr::V4)
                        .find(|ip| !taken.contains_key(ip))
                        .ok_or_else(|| {
                            format!("no free address in the load balancer pool {base}/{bits}")
                        })?
                };
                assigned.insert(key.to_owned(), pick);
                Ok(vec![pick])
            }
        }
    }

    /// Forgets a service's pool address; the services still waiting for one try again.
    fn release(&self, key: &str) {
        self.assigned().remove(key);
        if self.addresses == Addresses::Nodes {
            return;
        }
        for svc in self.services.list() {
            if wants_load_balancer(&svc) && !has_ingress(&svc) {
                self.queue.add(key_of(svc.as_ref()));
            }
        }
    }

    fn api(&self, key: &str) -> Api<Service> {
        let (ns, _) = split_key(key);
        Api::namespaced(self.ctx.client.clone(), ns.unwrap_or("default"))
    }

    async fn set_finalizers(&self, svc: &Service, finalizers: Vec<String>) -> anyhow::Result<()> {
        let name = svc.metadata.name.clone().unwrap_or_default();
        let patch = json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": svc.metadata.resource_version,
            }
        });
        self.api(&key_of(svc))
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn set_ingress(&self, svc: &Service, ips: &[IpAddr]) -> anyhow::Result<()> {
        let name = svc.metadata.name.clone().unwrap_or_default();
        let ingress: Vec<_> = ips
            .iter()
            .map(|ip| json!({"ip": ip.to_string(), "ipMode": "VIP"}))
            .collect();
        let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
        self.api(&key_of(svc))
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "service-lb"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        let Some(svc) = self.services.get(&key) else {
            self.release(&key);
            return Ok(Next::Done);
        };
        if !wants_load_balancer(&svc) {
            self.release(&key);
            if !has_finalizer(&svc) && !has_ingress(&svc) {
                return Ok(Next::Done);
            }
            let rec = &self.ctx.recorder;
            rec.record(
                svc.as_ref(),
                Type::Normal,
                "DeletingLoadBalancer",
                "Deleting load balancer",
            );
            if has_ingress(&svc) && svc.metadata.deletion_timestamp.is_none() {
                self.set_ingress(&svc, &[]).await?;
            }
            if has_finalizer(&svc) {
                let rest = svc
                    .metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .filter(|f| *f != FINALIZER)
                    .cloned()
                    .collect();
                self.set_finalizers(&svc, rest).await?;
            }
            rec.record(
                svc.as_ref(),
                Type::Normal,
                "DeletedLoadBalancer",
                "Deleted load balancer",
            );
            return Ok(Next::Done);
        }
        if !has_finalizer(&svc) {
            let mut finalizers = svc.metadata.finalizers.clone().unwrap_or_default();
            finalizers.push(FINALIZER.to_owned());
            // The update brings the service back through the informer.
            self.set_finalizers(&svc, finalizers).await?;
            return Ok(Next::Done);
        }
        let desired = match self.desired(&key, &svc) {
            Ok(ips) => ips,
            Err(message) => {
                self.ctx.recorder.record(
                    svc.as_ref(),
                    Type::Warning,
                    "SyncLoadBalancerFailed",
                    format!("Error syncing load balancer: {message}"),
                );
                return Ok(Next::After(Duration::from_secs(30)));
            }
        };
        if ingress_ips(&svc) != desired {
            let rec = &self.ctx.recorder;
            rec.record(
                svc.as_ref(),
                Type::Normal,
                "EnsuringLoadBalancer",
                "Ensuring load balancer",
            );
            self.set_ingress(&svc, &desired).await?;
            rec.record(
                svc.as_ref(),
                Type::Normal,
                "EnsuredLoadBalancer",
                "Ensured load balancer",
            );
        }
        Ok(Next::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_addresses_skip_network_and_broadcast() {
        let base = Ipv4Addr::new(10, 44, 0, 0);
        assert_eq!(pool_address(base, 30, 0), Some(Ipv4Addr::new(10, 44, 0, 1)));
        assert_eq!(pool_address(base, 30, 1), Some(Ipv4Addr::new(10, 44, 0, 2)));
        assert_eq!(pool_address(base, 30, 2), None);
        assert_eq!(pool_address(base, 32, 0), Some(base));
        assert!(in_pool(Ipv4Addr::new(10, 44, 0, 3), base, 30));
        assert!(!in_pool(Ipv4Addr::new(10, 44, 0, 4), base, 30));
    }
}
