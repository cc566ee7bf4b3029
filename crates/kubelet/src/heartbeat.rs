//! Node heartbeats, as kube's kubelet sends them: the node's Lease in kube-node-lease renewed
//! every quarter of its duration (10 s of 40 s), and the node's status checked as often and
//! posted when it changed or when the report period (5 min) is up.
//!
//! One task serves all the nodes of the agent: the renew interval is cut into ten slots and
//! each node has its slot, so renewals are spread evenly instead of arriving in bursts; a
//! node whose status changed (its pod CIDR arrived) is served at the next slot whatever its
//! own. A node still busy with its last heartbeat is skipped, so a slow API server never
//! piles work up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::chrono::Utc;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rkube_controllers::informer::Informer;
use serde_json::json;

use crate::agent::{NodeHandle, Shared, lock};
use crate::events::{self, NORMAL};
use crate::node;

/// The namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Slots per renew interval.
const SLOTS: usize = 10;

/// The Lease of a node, renewed now (kube's `newLease`).
pub fn renewed_lease(
    base: Option<Lease>,
    node: &str,
    node_uid: Option<&str>,
    duration: Duration,
) -> Lease {
    let mut lease = base.unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(node.to_owned()),
            namespace: Some(NODE_LEASE_NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    let mut spec = lease.spec.take().unwrap_or_default();
    spec.holder_identity = Some(node.to_owned());
    spec.lease_duration_seconds = Some(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX));
    spec.renew_time = Some(MicroTime(Utc::now()));
    lease.spec = Some(spec);
    // Owned by the Node, so it goes with it.
    if let Some(uid) = node_uid
        && lease
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(|refs| refs.is_empty())
    {
        lease.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".to_owned(),
            kind: "Node".to_owned(),
            name: node.to_owned(),
            uid: uid.to_owned(),
            ..OwnerReference::default()
        }]);
    }
    lease
}

/// Runs the heartbeats of all nodes until the agent stops.
pub(crate) async fn run(
    shared: Arc<Shared>,
    nodes: Arc<Vec<Arc<NodeHandle>>>,
    cache: Informer<Node>,
) {
    let renew = shared.options.lease_duration / 4;
    let slot = shared
        .options
        .status_update_frequency
        .min(renew)
        .div_f64(SLOTS as f64)
        .max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval(slot);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round = 0usize;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shared.stop.stopped() => return,
        }
        let current = round % SLOTS;
        round = round.wrapping_add(1);
        for (i, node) in nodes.iter().enumerate() {
            let due = i % SLOTS == current;
            if !due && !node.dirty.load(Ordering::Acquire) {
                continue;
            }
            if node.uid().is_none() || node.busy.swap(true, Ordering::AcqRel) {
                continue;
            }
            node.dirty.store(false, Ordering::Release);
            let shared = shared.clone();
            let node = node.clone();
            let cache = cache.clone();
            tokio::spawn(async move {
                // A node without a Lease yet (just registered) gets one at once.
                if due || lock(&node.lease).is_none() {
                    renew_lease(&shared, &node).await;
                }
                post_status(&shared, &node, &cache).await;
                node.busy.store(false, Ordering::Release);
            });
        }
    }
}

/// Renews the node's Lease from the copy last written; a conflict or a missing Lease is
/// resolved by reading it again (kube's lease controller).
async fn renew_lease(shared: &Shared, node: &NodeHandle) {
    let api: Api<Lease> = Api::namespaced(shared.client.clone(), NODE_LEASE_NAMESPACE);
    let uid = node.uid();
    let duration = shared.options.lease_duration;
    let cached = lock(&node.lease).clone();
    let _permit = shared.writes.acquire().await;
    let first = match cached {
        Some(lease) => {
            let lease = renewed_lease(Some(lease), node.name(), uid.as_deref(), duration);
            Some(
                api.replace(node.name(), &PostParams::default(), &lease)
                    .await,
            )
        }
        None => None,
    };
    let result = match first {
        Some(Err(kube::Error::Api(e))) if e.code == 404 || e.code == 409 => {
            read_and_renew(&api, node.name(), uid.as_deref(), duration).await
        }
        Some(result) => result,
        None => read_and_renew(&api, node.name(), uid.as_deref(), duration).await,
    };
    match result {
        Ok(lease) => *lock(&node.lease) = Some(lease),
        Err(err) => {
            *lock(&node.lease) = None;
            tracing::debug!(node = node.name(), "failed to renew lease: {err}");
        }
    }
}

/// Reads the Lease and renews it, or creates it (kube's `ensureLease`).
async fn read_and_renew(
    api: &Api<Lease>,
    node: &str,
    uid: Option<&str>,
    duration: Duration,
) -> Result<Lease, kube::Error> {
    match api.get_opt(node).await? {
        Some(existing) => {
            let lease = renewed_lease(Some(existing), node, uid, duration);
            api.replace(node, &PostParams::default(), &lease).await
        }
        None => {
            let lease = renewed_lease(None, node, uid, duration);
            api.create(&PostParams::default(), &lease).await
        }
    }
}

/// Posts the node's status if it differs from what the API has, or the report period is up.
async fn post_status(shared: &Arc<Shared>, node: &NodeHandle, cache: &Informer<Node>) {
    let current = cache.get(node.name());
    let current_status = current.as_ref().and_then(|n| n.status.as_ref());
    let network_ready = *node.network.borrow();
    let pressure = node
        .config
        .eviction
        .as_ref()
        .map(crate::machine::Eviction::pressure)
        .unwrap_or_default();
    *lock(&node.pressure) = pressure;
    let desired = node::desired_status(
        &node.config,
        network_ready,
        pressure,
        current_status,
        Utc::now(),
    );
    let stale = lock(&node.last_report)
        .is_none_or(|at| at.elapsed() >= shared.options.status_report_frequency);
    if !stale && !node::status_changed(current_status, &desired) {
        return;
    }
    let api: Api<Node> = Api::all(shared.client.clone());
    let patch = json!({"status": desired});
    let result = {
        let _permit = shared.writes.acquire().await;
        api.patch_status(
            node.name(),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    };
    match result {
        Ok(_) => {
            *lock(&node.last_report) = Some(Instant::now());
            if !node.announced.swap(true, Ordering::AcqRel) {
                record_node_event(
                    shared,
                    node.name(),
                    "Starting",
                    "Starting kubelet.".to_owned(),
                );
            }
            for reason in node::condition_changes(current_status, &desired) {
                let message = format!("Node {} status is now: {reason}", node.name());
                record_node_event(shared, node.name(), reason, message);
            }
        }
        Err(err) => {
            // Try again at the next slot rather than a whole interval later.
            node.dirty.store(true, Ordering::Release);
            tracing::debug!(node = node.name(), "error updating node status: {err}");
        }
    }
}

fn record_node_event(shared: &Arc<Shared>, node: &str, reason: &str, message: String) {
    events::record(
        shared,
        node,
        events::node_reference(node),
        NORMAL,
        reason,
        message,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_held_by_and_owned_by_their_node() {
        let lease = renewed_lease(None, "hollow-1", Some("u-1"), Duration::from_secs(40));
        assert_eq!(lease.metadata.name.as_deref(), Some("hollow-1"));
        assert_eq!(
            lease.metadata.namespace.as_deref(),
            Some(NODE_LEASE_NAMESPACE)
        );
        let spec = lease.spec.clone().expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("hollow-1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert!(spec.renew_time.is_some());
        let owner = &lease.metadata.owner_references.clone().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Node", "hollow-1", "u-1")
        );
        // Renewing keeps what the server set (resourceVersion) and moves renewTime.
        let mut stored = lease.clone();
        stored.metadata.resource_version = Some("7".into());
        let before = spec.renew_time.clone();
        std::thread::sleep(Duration::from_millis(2));
        let again = renewed_lease(
            Some(stored),
            "hollow-1",
            Some("u-1"),
            Duration::from_secs(40),
        );
        assert_eq!(again.metadata.resource_version.as_deref(), Some("7"));
        assert_ne!(again.spec.and_then(|s| s.renew_time), before);
        // Without a node uid yet, no owner.
        let orphan = renewed_lease(None, "hollow-2", None, Duration::from_secs(40));
        assert_eq!(orphan.metadata.owner_references, None);
    }
}
