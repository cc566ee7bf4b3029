//! Host-gw pod routes: for every other Node with a pod CIDR and an InternalIP, a route
//! `podCIDR via InternalIP` in the main table, kept in step with the Node objects (flannel's
//! host-gw backend). Routes are installed with iproute2's `ip` under a protocol number of
//! our own, so only routes carrying it are ever removed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Node;
use rkube_controllers::Stop;
use rkube_controllers::informer::Informer;
use tokio::process::Command;

/// The route protocol rkube's routes carry (not assigned in /etc/iproute2/rt_protos).
pub const DEFAULT_ROUTE_PROTOCOL: u8 = 82;

/// How often routes are checked even without Node changes (someone may delete one).
const RESYNC: Duration = Duration::from_secs(30);

/// The routes other nodes need: pod CIDR → the node's InternalIP of the same family.
pub fn desired_routes<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    hostname: &str,
) -> BTreeMap<String, IpAddr> {
    let mut out = BTreeMap::new();
    for node in nodes {
        if node.metadata.name.as_deref() == Some(hostname)
            || node.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let Some(spec) = node.spec.as_ref() else {
            continue;
        };
        let addresses: Vec<IpAddr> = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == "InternalIP")
            .filter_map(|a| a.address.parse().ok())
            .collect();
        let cidrs = spec
            .pod_cidrs
            .clone()
            .filter(|c| !c.is_empty())
            .or_else(|| spec.pod_cidr.clone().map(|c| vec![c]))
            .unwrap_or_default();
        for cidr in cidrs {
            let Some(net) = normalize_cidr(&cidr) else {
                continue;
            };
            let v4 = net.0.is_ipv4();
            if let Some(via) = addresses.iter().find(|a| a.is_ipv4() == v4) {
                out.insert(format!("{}/{}", net.0, net.1), *via);
            }
        }
    }
    out
}

/// `a.b.c.d/n` with host bits cleared, as `ip route` prints it.
fn normalize_cidr(cidr: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    match ip {
        IpAddr::V4(v4) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some((IpAddr::V4((u32::from(v4) & mask).into()), len))
        }
        IpAddr::V6(v6) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Some((IpAddr::V6((u128::from(v6) & mask).into()), len))
        }
        _ => None,
    }
}

async fn ip(args: &[String]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .context("cannot run ip (is iproute2 installed?)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The routes carrying our protocol: destination → gateway.
async fn installed_routes(protocol: u8) -> anyhow::Result<BTreeMap<String, Option<IpAddr>>> {
    let mut out = BTreeMap::new();
    for family in ["-4", "-6"] {
        let text = ip(&[
            "-j".into(),
            family.into(),
            "route".into(),
            "show".into(),
            "proto".into(),
            protocol.to_string(),
        ])
        .await?;
        let routes: serde_json::Value =
            serde_json::from_str(text.trim()).unwrap_or(serde_json::Value::Null);
        for route in routes.as_array().into_iter().flatten() {
            let Some(dst) = route["dst"].as_str() else {
                continue;
            };
            let gateway = route["gateway"].as_str().and_then(|g| g.parse().ok());
            // A single address is printed without its /32 or /128.
            let dst = if dst.contains('/') {
                dst.to_owned()
            } else if family == "-4" {
                format!("{dst}/32")
            } else {
                format!("{dst}/128")
            };
            out.insert(dst, gateway);
        }
    }
    Ok(out)
}

/// Makes the routes carrying `protocol` exactly `desired`.
pub async fn reconcile(desired: &BTreeMap<String, IpAddr>, protocol: u8) -> anyhow::Result<()> {
    let installed = installed_routes(protocol).await?;
    let mut failures = Vec::new();
    for (dst, via) in desired {
        if installed.get(dst) == Some(&Some(*via)) {
            continue;
        }
        let args: Vec<String> = [
            "route",
            "replace",
            dst,
            "via",
            &via.to_string(),
            "proto",
            &protocol.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        match ip(&args).await {
            Ok(_) => tracing::info!(%dst, %via, "pod route installed"),
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    for dst in installed.keys() {
        if desired.contains_key(dst) {
            continue;
        }
        let args: Vec<String> = ["route", "del", dst, "proto", &protocol.to_string()]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        match ip(&args).await {
            Ok(_) => tracing::info!(%dst, "pod route removed"),
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("{}", failures.join("; "))
    }
}

/// Keeps the routes in step with the Nodes until `stop`. Routes stay on exit: traffic to
/// other nodes' pods does not depend on this process running.
pub async fn run(nodes: Informer<Node>, hostname: String, protocol: u8, stop: Stop) {
    let mut changes = nodes.subscribe();
    tokio::select! {
        () = nodes.synced() => {}
        () = stop.stopped() => return,
    }
    let mut last_error: Option<String> = None;
    loop {
        let list: Vec<Arc<Node>> = nodes.list();
        let desired = desired_routes(list.iter().map(|n| n.as_ref()), &hostname);
        let retry = match reconcile(&desired, protocol).await {
            Ok(()) => {
                last_error = None;
                RESYNC
            }
            Err(err) => {
                let text = format!("{err:#}");
                if last_error.as_ref() != Some(&text) {
                    tracing::warn!("pod routes: {text}");
                }
                last_error = Some(text);
                Duration::from_secs(2)
            }
        };
        tokio::select! {
            change = changes.recv() => {
                if change.is_none() {
                    return;
                }
                // Take the rest of a burst at once.
                tokio::time::sleep(Duration::from_millis(50)).await;
                while changes.try_recv().is_ok() {}
            }
            () = tokio::time::sleep(retry) => {}
            () = stop.stopped() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn node(name: &str, cidr: Option<&str>, ip: Option<&str>) -> Node {
        let mut json = serde_json::json!({"metadata": {"name": name}, "spec": {}, "status": {}});
        if let Some(c) = cidr {
            json["spec"]["podCIDR"] = c.into();
            json["spec"]["podCIDRs"] = serde_json::json!([c]);
        }
        if let Some(ip) = ip {
            json["status"]["addresses"] = serde_json::json!([
                {"type": "Hostname", "address": name},
                {"type": "InternalIP", "address": ip}
            ]);
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn routes_to_other_nodes_with_cidr_and_address() {
        let nodes = [
            node("me", Some("10.42.0.0/24"), Some("192.168.1.1")),
            node("a", Some("10.42.1.0/24"), Some("192.168.1.2")),
            node("b", Some("10.42.2.7/24"), Some("192.168.1.3")),
            node("no-cidr", None, Some("192.168.1.4")),
            node("no-ip", Some("10.42.4.0/24"), None),
            node("v6", Some("fd00:1::/64"), Some("192.168.1.5")),
        ];
        let routes = desired_routes(nodes.iter(), "me");
        let got: Vec<(String, String)> = routes
            .iter()
            .map(|(d, v)| (d.clone(), v.to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("10.42.1.0/24".to_owned(), "192.168.1.2".to_owned()),
                ("10.42.2.0/24".to_owned(), "192.168.1.3".to_owned()),
            ]
        );
    }
}
