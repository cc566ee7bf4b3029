//! Node lifecycle, as kube-controller-manager's nodelifecycle, taint-eviction and node IPAM
//! controllers do it:
//! - a node is alive while its kubelet renews its Lease in kube-node-lease or posts status;
//!   one silent past the grace period has its conditions set to Unknown
//!   ("Kubelet stopped posting node status.") and its pods marked not ready;
//! - conditions become taints: Ready False or Unknown give node.kubernetes.io/not-ready or
//!   unreachable with both NoSchedule and NoExecute, pressure conditions and
//!   spec.unschedulable their NoSchedule taints;
//! - a pod on a node with a NoExecute taint it does not tolerate is deleted at once, one that
//!   tolerates it for tolerationSeconds is deleted when they are up;
//! - a node without spec.podCIDR gets the next free block of the cluster CIDR.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use crate::events::Type;
use crate::informer::Informer;
use crate::{Context, Options};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const PRESSURE_TAINTS: &[(&str, &str)] = &[
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
    (
        "NetworkUnavailable",
        "node.kubernetes.io/network-unavailable",
    ),
];
/// The taint keys this controller owns.
const OWNED: &[&str] = &[
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/network-unavailable",
];

/// Settings, with kube-controller-manager's flag names and defaults.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// --node-monitor-period
    pub monitor_period: Duration,
    /// --node-monitor-grace-period
    pub grace_period: Duration,
    /// --allocate-node-cidrs with --cluster-cidr
    pub cluster_cidr: Option<(Ipv4Addr, u8)>,
    /// --node-cidr-mask-size
    pub node_cidr_mask: u8,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(50),
            cluster_cidr: Some((Ipv4Addr::new(10, 42, 0, 0), 16)),
            node_cidr_mask: 24,
        }
    }
}

/// Parses `10.42.0.0/16`.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, bits) = s
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR {s:?}: expected ADDRESS/BITS"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("invalid CIDR {s:?}: {ip:?} is not an IPv4 address"))?;
    let bits: u8 = bits
        .parse()
        .ok()
        .filter(|b| *b <= 32)
        .ok_or_else(|| format!("invalid CIDR {s:?}: bits must be 0..32"))?;
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Ok((Ipv4Addr::from(u32::from(ip) & mask), bits))
}

/// The `index`th block of `mask` bits in the cluster CIDR, if it fits.
pub fn nth_block(cluster: (Ipv4Addr, u8), mask: u8, index: u32) -> Option<String> {
    let (base, bits) = cluster;
    if mask < bits || mask > 32 {
        return None;
    }
    let blocks = 1u64 << (mask - bits);
    if u64::from(index) >= blocks {
        return None;
    }
    let size = 1u64 << (32 - mask);
    let start = u64::from(u32::from(base)) + u64::from(index) * size;
    let start = u32::try_from(start).ok()?;
    Some(format!("{}/{mask}", Ipv4Addr::from(start)))
}

struct Health {
    /// When this controller last saw the node's heartbeat change (its own clock, as kube).
    probe: Instant,
    heartbeat: Option<DateTime<Utc>>,
    lease_renew: Option<DateTime<Utc>>,
}

/// The node's taints this controller wants, from its conditions and spec.
pub fn desired_taints(node: &Node, now: &Time) -> Vec<Taint> {
    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let status = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.status.clone())
    };
    let taint = |key: &str, effect: &str| Taint {
        key: key.to_owned(),
        effect: effect.to_owned(),
        value: None,
        time_added: (effect == "NoExecute").then(|| now.clone()),
    };
    let mut out = Vec::new();
    match status("Ready").as_deref() {
        Some("True") => {}
        Some("False") => {
            out.push(taint(NOT_READY, "NoSchedule"));
            out.push(taint(NOT_READY, "NoExecute"));
        }
        // Unknown, or never reported.
        _ => {
            out.push(taint(UNREACHABLE, "NoSchedule"));
            out.push(taint(UNREACHABLE, "NoExecute"));
        }
    }
    for (condition, key) in PRESSURE_TAINTS {
        if status(condition).as_deref() == Some("True") {
            out.push(taint(key, "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push(taint(UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

/// The node's taints with ours replaced by `wanted`, keeping the time a NoExecute taint was
/// first added.
fn merged_taints(current: &[Taint], wanted: &[Taint]) -> Vec<Taint> {
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !OWNED.contains(&t.key.as_str()))
        .cloned()
        .collect();
    for w in wanted {
        let existing = current
            .iter()
            .find(|t| t.key == w.key && t.effect == w.effect);
        out.push(existing.cloned().unwrap_or_else(|| w.clone()));
    }
    out
}

/// Whether a toleration tolerates a taint (kube's ToleratesTaint).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        _ => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
                && !key.is_empty()
        }
    }
}

/// When a pod on a node with these NoExecute taints must go: `None` if it tolerates them
/// all forever, `Some(deadline)` otherwise (in the past when it tolerates one not at all).
pub fn eviction_deadline(pod: &Pod, taints: &[Taint], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut deadline: Option<DateTime<Utc>> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        // The shortest tolerationSeconds of the tolerations that match; none means forever.
        let seconds = matching.iter().filter_map(|t| t.toleration_seconds).min();
        if let Some(seconds) = seconds {
            let added = taint.time_added.as_ref().map_or(now, |t| t.0);
            let at = added + k8s_openapi::chrono::Duration::seconds(seconds.max(0));
            deadline = Some(deadline.map_or(at, |d| d.min(at)));
        }
    }
    deadline
}

struct Controller {
    ctx: Context,
    options: NodeOptions,
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<Pod>,
    health: Mutex<HashMap<String, Health>>,
    /// Blocks this controller handed out (its cache may not show them yet).
    allocated: Mutex<HashSet<String>>,
}

pub fn start(ctx: &Context, options: &Options) {
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        nodes: ctx.informer::<Node>(),
        leases: ctx.informer::<Lease>(),
        pods: ctx.informer::<Pod>(),
        options: options.nodes.clone(),
        health: Mutex::default(),
        allocated: Mutex::default(),
    });
    let stop = ctx.stop.clone();
    tokio::spawn(async move {
        controller.nodes.synced().await;
        controller.leases.synced().await;
        controller.pods.synced().await;
        let mut ticker = tokio::time::interval(controller.options.monitor_period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.stopped() => break,
            }
            if let Err(err) = controller.monitor().await {
                tracing::debug!("node lifecycle: {err:#}");
            }
        }
    });
}

impl Controller {
    async fn monitor(&self) -> anyhow::Result<()> {
        let nodes = self.nodes.list();
        let now = Utc::now();
        let names: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| names.contains(name));
        for node in &nodes {
            let name = node.name_any();
            self.allocate_cidr(node, &nodes).await;
            let node = self.check_health(node, now).await.unwrap_or_else(|err| {
                tracing::debug!(node = %name, "cannot update node status: {err:#}");
                (**node).clone()
            });
            let wanted = desired_taints(&node, &Time(now));
            let current = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            let merged = merged_taints(&current, &wanted);
            if merged != current {
                let api: Api<Node> = Api::all(self.ctx.client.clone());
                let patch = json!({
                    "metadata": {"resourceVersion": node.metadata.resource_version},
                    // null removes the field, as an empty list is never stored by kube.
                    "spec": {"taints": if merged.is_empty() { serde_json::Value::Null } else { json!(merged) }},
                });
                if let Err(err) = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::debug!(node = %name, "cannot update taints: {err}");
                }
            }
            self.evict(&name, &merged, now).await;
        }
        Ok(())
    }

    /// Sets the conditions to Unknown when the kubelet has been silent past the grace period;
    /// returns the node as it now is.
    async fn check_health(&self, node: &Node, now: DateTime<Utc>) -> anyhow::Result<Node> {
        let name = node.name_any();
        let conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let ready = conditions.iter().find(|c| c.type_ == "Ready");
        let heartbeat = ready
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0);
        let lease_renew = self
            .leases
            .get_in(Some("kube-node-lease"), &name)
            .and_then(|l| l.spec.as_ref().and_then(|s| s.renew_time.clone()))
            .map(|MicroTime(t)| t);
        let silent = {
            let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
            let entry = health.entry(name.clone()).or_insert_with(|| Health {
                probe: Instant::now(),
                heartbeat,
                lease_renew,
            });
            if entry.heartbeat != heartbeat || entry.lease_renew != lease_renew {
                entry.probe = Instant::now();
                entry.heartbeat = heartbeat;
                entry.lease_renew = lease_renew;
            }
            entry.probe.elapsed() > self.options.grace_period
        };
        let all_unknown = !conditions.is_empty()
            && ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
                .iter()
                .all(|t| {
                    conditions
                        .iter()
                        .any(|c| &c.type_ == t && c.status == "Unknown")
                });
        if !silent || all_unknown {
            return Ok(node.clone());
        }
        // Kubelet stopped posting node status: every condition becomes Unknown.
        let never = ready.is_none();
        let mut updated: Vec<NodeCondition> = Vec::new();
        for kind in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
            let previous = conditions.iter().find(|c| c.type_ == kind);
            let (reason, message) = if never || previous.is_none() {
                (
                    "NodeStatusNeverUpdated",
                    "Kubelet never posted node status.",
                )
            } else {
                ("NodeStatusUnknown", "Kubelet stopped posting node status.")
            };
            updated.push(NodeCondition {
                type_: kind.to_owned(),
                status: "Unknown".to_owned(),
                reason: Some(reason.to_owned()),
                message: Some(message.to_owned()),
                last_heartbeat_time: previous.and_then(|p| p.last_heartbeat_time.clone()),
                last_transition_time: Some(Time(now)),
            });
        }
        for other in conditions.iter().filter(|c| {
            !["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"].contains(&c.type_.as_str())
        }) {
            updated.push(other.clone());
        }
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        // Guarded by the version we judged: a kubelet that just posted status wins.
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "status": {"conditions": updated},
        });
        let node = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.ctx.recorder.record(
            &node,
            Type::Normal,
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
        self.mark_pods_not_ready(&name).await;
        Ok(node)
    }

    /// kube's MarkPodsNotReady: the pods of an unreachable node stop being Ready.
    async fn mark_pods_not_ready(&self, node: &str) {
        for pod in self.pods.list() {
            if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
                continue;
            }
            let conditions = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            if !conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
            {
                continue;
            }
            let updated: Vec<_> = conditions
                .into_iter()
                .map(|mut c| {
                    if c.type_ == "Ready" {
                        c.status = "False".to_owned();
                        c.last_transition_time = Some(Time(Utc::now()));
                    }
                    c
                })
                .collect();
            let api: Api<Pod> = Api::namespaced(
                self.ctx.client.clone(),
                &pod.namespace().unwrap_or_default(),
            );
            let patch = json!({"status": {"conditions": updated}});
            let _ = api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await;
        }
    }

    /// Deletes the pods a node's NoExecute taints no longer let stay.
    async fn evict(&self, node: &str, taints: &[Taint], now: DateTime<Utc>) {
        if !taints.iter().any(|t| t.effect == "NoExecute") {
            return;
        }
        for pod in self.pods.list() {
            if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node)
                || pod.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            let Some(deadline) = eviction_deadline(&pod, taints, now) else {
                continue;
            };
            if deadline > now {
                continue;
            }
            let namespace = pod.namespace().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &namespace);
            match api.delete(&pod.name_any(), &DeleteParams::default()).await {
                Ok(_) => self.ctx.recorder.record(
                    pod.as_ref(),
                    Type::Normal,
                    "TaintManagerEviction",
                    format!("Marking for deletion Pod {namespace}/{}", pod.name_any()),
                ),
                Err(err) => tracing::debug!(pod = %pod.name_any(), "cannot evict: {err}"),
            }
        }
    }

    /// Gives a node without a pod CIDR the first free block of the cluster CIDR.
    async fn allocate_cidr(&self, node: &Node, nodes: &[Arc<Node>]) {
        let Some(cluster) = self.options.cluster_cidr else {
            return;
        };
        if node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_ref())
            .is_some()
        {
            return;
        }
        let mut used: HashSet<String> = nodes
            .iter()
            .filter_map(|n| n.spec.as_ref().and_then(|s| s.pod_cidr.clone()))
            .collect();
        used.extend(
            self.allocated
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        let Some(block) = (0..u32::MAX)
            .map_while(|i| nth_block(cluster, self.options.node_cidr_mask, i))
            .find(|b| !used.contains(b))
        else {
            self.ctx.recorder.record(
                node,
                Type::Warning,
                "CIDRNotAvailable",
                "Node has no CIDR available: the cluster CIDR is full",
            );
            return;
        };
        self.allocated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(block.clone());
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        let patch = json!({"spec": {"podCIDR": block, "podCIDRs": [block]}});
        match api
            .patch(
                &node.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(n) => self.ctx.recorder.record(
                &n,
                Type::Normal,
                "CIDRAssignmentSucceeded",
                format!("Node {} got CIDR {block}", n.name_any()),
            ),
            Err(err) => tracing::debug!(node = %node.name_any(), "cannot assign a pod CIDR: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec};

    fn node(ready: Option<&str>, unschedulable: bool) -> Node {
        Node {
            spec: Some(NodeSpec {
                unschedulable: Some(unschedulable),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                conditions: ready.map(|r| {
                    vec![NodeCondition {
                        type_: "Ready".into(),
                        status: r.into(),
                        ..NodeCondition::default()
                    }]
                }),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn conditions_become_taints() {
        let now = Time(Utc::now());
        let keys = |n: &Node| {
            desired_taints(n, &now)
                .iter()
                .map(|t| format!("{}:{}", t.key, t.effect))
                .collect::<Vec<_>>()
        };
        assert!(keys(&node(Some("True"), false)).is_empty());
        assert_eq!(
            keys(&node(Some("False"), false)),
            [
                format!("{NOT_READY}:NoSchedule"),
                format!("{NOT_READY}:NoExecute")
            ]
        );
        assert_eq!(
            keys(&node(Some("Unknown"), true)),
            [
                format!("{UNREACHABLE}:NoSchedule"),
                format!("{UNREACHABLE}:NoExecute"),
                format!("{UNSCHEDULABLE}:NoSchedule")
            ]
        );
    }

    #[test]
    fn other_taints_and_first_added_times_are_kept() {
        let old = Time(Utc::now() - k8s_openapi::chrono::Duration::seconds(100));
        let current = vec![
            Taint {
                key: "dedicated".into(),
                effect: "NoSchedule".into(),
                value: Some("gpu".into()),
                time_added: None,
            },
            Taint {
                key: UNREACHABLE.into(),
                effect: "NoExecute".into(),
                value: None,
                time_added: Some(old.clone()),
            },
        ];
        let wanted = desired_taints(&node(Some("Unknown"), false), &Time(Utc::now()));
        let merged = merged_taints(&current, &wanted);
        assert_eq!(merged[0].key, "dedicated");
        let noexec = merged.iter().find(|t| t.effect == "NoExecute").unwrap();
        assert_eq!(noexec.time_added, Some(old));
    }

    #[test]
    fn eviction_waits_for_toleration_seconds() {
        let now = Utc::now();
        let taint = Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            value: None,
            time_added: Some(Time(now)),
        };
        let pod = |tolerations: Vec<Toleration>| Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(
            eviction_deadline(&pod(vec![]), std::slice::from_ref(&taint), now),
            Some(now)
        );
        let forever = Toleration {
            key: Some(UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Toleration::default()
        };
        assert_eq!(
            eviction_deadline(&pod(vec![forever]), std::slice::from_ref(&taint), now),
            None
        );
        let five = Toleration {
            key: Some(UNREACHABLE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(5),
            value: None,
        };
        assert_eq!(
            eviction_deadline(&pod(vec![five]), &[taint], now),
            Some(now + k8s_openapi::chrono::Duration::seconds(5))
        );
    }

    #[test]
    fn cidr_blocks() {
        let cluster = parse_cidr("10.42.0.0/16").unwrap();
        assert_eq!(nth_block(cluster, 24, 0).as_deref(), Some("10.42.0.0/24"));
        assert_eq!(
            nth_block(cluster, 24, 255).as_deref(),
            Some("10.42.255.0/24")
        );
        assert_eq!(nth_block(cluster, 24, 256), None);
        assert!(parse_cidr("10.42.0.0").is_err());
        assert!(parse_cidr("10.42.0.0/33").is_err());
        assert_eq!(
            parse_cidr("10.42.7.9/16").unwrap(),
            (Ipv4Addr::new(10, 42, 0, 0), 16)
        );
    }
}
