//! `status.loadBalancer.ingress` of the Ingresses: this instance's node addresses on every
//! Ingress it serves, taken off those it no longer serves.
//!
//! Several instances (one per node) may serve the same Ingress, so each one only adds and
//! removes its own addresses and leaves the others' entries alone; the patch carries the
//! resourceVersion it was computed from, so two instances never overwrite each other.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The addresses an Ingress should list, from what it lists now.
///
/// `mine` are this instance's addresses now, `stale` its addresses from before that are no
/// longer its own (a node address that changed).
pub fn desired(
    current: &[IngressLoadBalancerIngress],
    served: bool,
    mine: &BTreeSet<IpAddr>,
    stale: &BTreeSet<IpAddr>,
) -> Vec<IngressLoadBalancerIngress> {
    let ip_of = |e: &IngressLoadBalancerIngress| e.ip.as_deref().and_then(|ip| ip.parse().ok());
    let mut out: Vec<IngressLoadBalancerIngress> = current
        .iter()
        .filter(|e| match ip_of(e) {
            Some(ip) => !stale.contains(&ip) && (served || !mine.contains(&ip)),
            None => true,
        })
        .cloned()
        .collect();
    if served {
        for ip in mine {
            if !out.iter().any(|e| ip_of(e) == Some(*ip)) {
                out.push(IngressLoadBalancerIngress {
                    ip: Some(ip.to_string()),
                    ..Default::default()
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.ip, &a.hostname).cmp(&(&b.ip, &b.hostname)));
    out
}

/// The addresses an Ingress lists now.
pub fn current(ingress: &Ingress) -> Vec<IngressLoadBalancerIngress> {
    ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default()
}

/// Writes an Ingress's addresses through `ingresses/status`, guarded by the resourceVersion
/// they were computed from (409 when it changed meanwhile).
pub async fn write(
    client: kube::Client,
    ingress: &Ingress,
    addresses: &[IngressLoadBalancerIngress],
) -> kube::Result<()> {
    let ns = ingress.metadata.namespace.as_deref().unwrap_or("default");
    let name = ingress.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Ingress> = Api::namespaced(client, ns);
    let list = if addresses.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(addresses).unwrap_or(serde_json::Value::Null)
    };
    let patch = json!({
        "metadata": {"resourceVersion": ingress.metadata.resource_version},
        "status": {"loadBalancer": {"ingress": list}},
    });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ip: &str) -> IngressLoadBalancerIngress {
        IngressLoadBalancerIngress {
            ip: Some(ip.into()),
            ..Default::default()
        }
    }

    fn ips(v: &[&str]) -> BTreeSet<IpAddr> {
        v.iter().filter_map(|s| s.parse().ok()).collect()
    }

    #[test]
    fn adds_and_removes_only_its_own_addresses() {
        let mine = ips(&["10.0.0.1"]);
        let none = BTreeSet::new();
        let other = [entry("10.0.0.2")];
        assert_eq!(
            desired(&other, true, &mine, &none),
            vec![entry("10.0.0.1"), entry("10.0.0.2")]
        );
        let both = [entry("10.0.0.1"), entry("10.0.0.2")];
        assert_eq!(desired(&both, true, &mine, &none), both.to_vec());
        assert_eq!(desired(&both, false, &mine, &none), vec![entry("10.0.0.2")]);
        // A changed node address: the old one goes.
        let moved = ips(&["10.0.0.9"]);
        assert_eq!(
            desired(&[entry("10.0.0.9")], true, &mine, &moved),
            vec![entry("10.0.0.1")]
        );
        assert!(desired(&[], false, &mine, &none).is_empty());
    }
}
