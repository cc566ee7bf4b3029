//! The ReplicaSet controller (apps/v1) and the ReplicationController manager (core/v1), as
//! kube-controller-manager v1.33 runs them; one implementation serves both kinds, which
//! differ only in how their selector is written.
//!
//! - Active pods (not terminal, not being deleted) are claimed: matching orphans are adopted,
//!   owned pods that stopped matching are released (never while the owner is being deleted).
//! - Too few: pods are created from the template (`NAME-xxxxx`, controller reference), at most
//!   500 per sync, in slow-start batches of 1, 2, 4, ...; too many: the pods kube ranks first
//!   are deleted (unassigned, pending, not ready, low deletion cost, doubled up on a node,
//!   ready for less time, more restarts, newer).
//! - Expectations: the creations and deletions issued are remembered per owner, and the owner
//!   is not managed again until the pod cache has seen them all (or 5 minutes passed), so a
//!   lagging cache never makes extra pods.
//! - Status through the status subresource: replicas, fullyLabeledReplicas, readyReplicas,
//!   availableReplicas (ready for minReadySeconds), observedGeneration, and the
//!   ReplicaFailure condition while creating or deleting fails.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    Pod, PodTemplateSpec, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::chrono::{DateTime, SubsecRound, Utc};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batchutil::{
    SLOW_START_INITIAL_BATCH, controller_of, controller_ref, is_active, is_available, is_not_found,
    is_ready, selector_is_empty, selector_matches, slow_start,
};
use crate::controllerref::{self, Claim};
use crate::events::{Recorder, Type};
use crate::informer::{Change, Informer, key_of};
use crate::podutil::{pod_from_template, pods_to_delete};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

/// kube's BurstReplicas: the most pods created or deleted in one sync.
const BURST_REPLICAS: usize = 500;
/// How long expectations are trusted (kube's ExpectationsTimeout).
const EXPECTATIONS_TTL: Duration = Duration::from_secs(5 * 60);
/// The condition set while pods cannot be created or deleted.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// What the controller needs of the kinds it manages.
pub trait ReplicaOwner:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The controller's name, the source of its events.
    const CONTROLLER: &'static str;
    /// Whether the owner has a usable (non-empty) selector.
    fn has_selector(&self) -> bool;
    /// Whether the owner's selector selects these labels.
    fn selects(&self, labels: &BTreeMap<String, String>) -> bool;
    /// `spec.replicas` (defaulted to 1).
    fn desired(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn pod_template(&self) -> Option<&PodTemplateSpec>;
    /// The status, in apps/v1 terms.
    fn replica_status(&self) -> ReplicaSetStatus;
    fn set_replica_status(&mut self, status: ReplicaSetStatus);
}

impl ReplicaOwner for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";

    fn has_selector(&self) -> bool {
        self.spec
            .as_ref()
            .is_some_and(|s| !selector_is_empty(&s.selector))
    }

    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.spec.as_ref().is_some_and(|s| {
            !selector_is_empty(&s.selector) && selector_matches(&s.selector, labels)
        })
    }

    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn replica_status(&self) -> ReplicaSetStatus {
        self.status.clone().unwrap_or_default()
    }

    fn set_replica_status(&mut self, status: ReplicaSetStatus) {
        self.status = Some(status);
    }
}

impl ReplicaOwner for ReplicationController {
    const CONTROLLER: &'static str = "replication-controller";

    fn has_selector(&self) -> bool {
        self.spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_some_and(|s| !s.is_empty())
    }

    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        let Some(selector) = self.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            return false;
        };
        !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }

    fn replica_status(&self) -> ReplicaSetStatus {
        let s = self.status.clone().unwrap_or_default();
        ReplicaSetStatus {
            available_replicas: s.available_replicas,
            conditions: s.conditions.map(|cs| {
                cs.into_iter()
                    .map(|c| ReplicaSetCondition {
                        last_transition_time: c.last_transition_time,
                        message: c.message,
                        reason: c.reason,
                        status: c.status,
                        type_: c.type_,
                    })
                    .collect()
            }),
            fully_labeled_replicas: s.fully_labeled_replicas,
            observed_generation: s.observed_generation,
            ready_replicas: s.ready_replicas,
            replicas: s.replicas,
            terminating_replicas: None,
        }
    }

    fn set_replica_status(&mut self, s: ReplicaSetStatus) {
        self.status = Some(ReplicationControllerStatus {
            available_replicas: s.available_replicas,
            conditions: s.conditions.map(|cs| {
                cs.into_iter()
                    .map(|c| ReplicationControllerCondition {
                        last_transition_time: c.last_transition_time,
                        message: c.message,
                        reason: c.reason,
                        status: c.status,
                        type_: c.type_,
                    })
                    .collect()
            }),
            fully_labeled_replicas: s.fully_labeled_replicas,
            observed_generation: s.observed_generation,
            ready_replicas: s.ready_replicas,
            replicas: s.replicas,
        });
    }
}

#[derive(Debug)]
struct Expected {
    adds: i64,
    deletes: HashSet<String>,
    set_at: Instant,
}

/// kube's UIDTrackingControllerExpectations: per owner, how many creations are still to be
/// seen and which pods (`namespace/name`) are still to be seen going away.
#[derive(Default)]
pub struct PodExpectations {
    inner: Mutex<HashMap<String, Expected>>,
}

impl PodExpectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expected>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `count` creations are about to be issued.
    pub fn expect_creations(&self, key: &str, count: usize) {
        self.lock().insert(
            key.to_owned(),
            Expected {
                adds: i64::try_from(count).unwrap_or(i64::MAX),
                deletes: HashSet::new(),
                set_at: Instant::now(),
            },
        );
    }

    /// These pods are about to be deleted.
    pub fn expect_deletions(&self, key: &str, pods: HashSet<String>) {
        self.lock().insert(
            key.to_owned(),
            Expected {
                adds: 0,
                deletes: pods,
                set_at: Instant::now(),
            },
        );
    }

    /// A pod of this owner appeared (or a creation will never happen).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// A pod of this owner is going away (or its deletion failed).
    pub fn deletion_observed(&self, key: &str, pod_key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.deletes.remove(pod_key);
        }
    }

    /// Whether the owner may be managed: all that was issued has been seen, or it is too old
    /// to wait for.
    pub fn satisfied(&self, key: &str) -> bool {
        self.remaining(key).is_none()
    }

    /// How much longer the owner's pending expectations are waited for, if any are pending.
    pub fn remaining(&self, key: &str) -> Option<Duration> {
        let inner = self.lock();
        let e = inner.get(key)?;
        if e.adds <= 0 && e.deletes.is_empty() {
            return None;
        }
        EXPECTATIONS_TTL
            .checked_sub(e.set_at.elapsed())
            .filter(|d| !d.is_zero())
    }

    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// Why managing an owner's pods failed (the ReplicaFailure condition's message).
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Create(String),
    #[error("unable to delete pods: {0}")]
    Delete(String),
}

/// The API's message for an error, as Go's `err.Error()` prints a Status error.
pub fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(e) => e.message.clone(),
        other => other.to_string(),
    }
}

fn namespace_terminating(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(e) if e.code == 403 && e.message.contains("because it is being terminated"))
}

fn pod_key(pod: &Pod) -> String {
    key_of(pod)
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// Now, to the second (what survives a round trip through the API).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// kube's calculateStatus: the counts of the claimed active pods, and the ReplicaFailure
/// condition set on a failure (kept while it lasts) and removed once managing succeeds.
pub fn calculate_status<P: std::borrow::Borrow<Pod>>(
    current: &ReplicaSetStatus,
    desired: i32,
    template_labels: &BTreeMap<String, String>,
    min_ready_seconds: i32,
    pods: &[P],
    failure: Option<&ManageError>,
    now: DateTime<Utc>,
) -> ReplicaSetStatus {
    let mut status = current.clone();
    let (mut fully_labeled, mut ready, mut available) = (0, 0, 0);
    for pod in pods.iter().map(std::borrow::Borrow::borrow) {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            fully_labeled += 1;
        }
        if is_ready(pod) {
            ready += 1;
            if is_available(pod, min_ready_seconds, now) {
                available += 1;
            }
        }
    }
    let has_failure = current
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == REPLICA_FAILURE);
    match failure {
        Some(err) if !has_failure => {
            let count = i64::try_from(pods.len()).unwrap_or(i64::MAX);
            let reason = match count.cmp(&i64::from(desired)) {
                std::cmp::Ordering::Less => "FailedCreate",
                std::cmp::Ordering::Greater => "FailedDelete",
                std::cmp::Ordering::Equal => "",
            };
            let mut conditions = status.conditions.take().unwrap_or_default();
            conditions.push(ReplicaSetCondition {
                type_: REPLICA_FAILURE.to_owned(),
                status: "True".to_owned(),
                reason: Some(reason.to_owned()).filter(|r| !r.is_empty()),
                message: Some(err.to_string()),
                last_transition_time: Some(Time(now)),
            });
            status.conditions = Some(conditions);
        }
        None if has_failure => {
            let conditions: Vec<ReplicaSetCondition> = status
                .conditions
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.type_ != REPLICA_FAILURE)
                .collect();
            status.conditions = (!conditions.is_empty()).then_some(conditions);
        }
        _ => {}
    }
    status.replicas = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    status.fully_labeled_replicas = nonzero(fully_labeled);
    status.ready_replicas = nonzero(ready);
    status.available_replicas = nonzero(available);
    status
}

/// Whether a status write would change nothing (kube's steady-state check).
fn status_unchanged(current: &ReplicaSetStatus, new: &ReplicaSetStatus, generation: i64) -> bool {
    let n = |v: Option<i32>| v.unwrap_or(0);
    current.replicas == new.replicas
        && n(current.fully_labeled_replicas) == n(new.fully_labeled_replicas)
        && n(current.ready_replicas) == n(new.ready_replicas)
        && n(current.available_replicas) == n(new.available_replicas)
        && current.observed_generation.unwrap_or(0) == generation
        && current.conditions.as_deref().unwrap_or_default()
            == new.conditions.as_deref().unwrap_or_default()
}

struct Controller<K: ReplicaOwner> {
    client: Client,
    recorder: Recorder,
    owners: Informer<K>,
    pods: Informer<Pod>,
    expectations: Arc<PodExpectations>,
}

/// Starts the ReplicaSet controller and the ReplicationController manager.
pub fn start(ctx: &Context, options: &Options) {
    start_for::<ReplicaSet>(ctx, options);
    start_for::<ReplicationController>(ctx, options);
}

fn start_for<K: ReplicaOwner>(ctx: &Context, options: &Options) {
    let owners = ctx.informer::<K>();
    let pods = ctx.informer::<Pod>();
    let queue = WorkQueue::default();
    let expectations = Arc::new(PodExpectations::default());
    let (q, e) = (queue.clone(), expectations.clone());
    on_change(&owners, ctx.stop.clone(), move |change| {
        let key = key_of(change.object().as_ref());
        if let Change::Deleted(_) = change {
            e.forget(&key);
        }
        q.add(key);
    });
    let (q, e, o) = (queue.clone(), expectations.clone(), owners.clone());
    on_change(&pods, ctx.stop.clone(), move |change| {
        observe_pod(change, &o, &q, &e);
    });
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        recorder: Recorder::new(ctx.client.clone(), K::CONTROLLER),
        owners,
        pods,
        expectations,
    });
    run_workers(controller, queue, options.workers, ctx.stop.clone());
}

/// The owner a controller reference names, if it is of kind `K` and still the same object.
fn resolve<K: ReplicaOwner>(
    owners: &Informer<K>,
    namespace: Option<&str>,
    reference: &OwnerReference,
) -> Option<Arc<K>> {
    if reference.kind != K::kind(&()) {
        return None;
    }
    owners
        .get_in(namespace, &reference.name)
        .filter(|o| o.meta().uid.as_deref() == Some(reference.uid.as_str()))
}

/// The owners in the pod's namespace whose selector matches it.
fn matching_owners<K: ReplicaOwner>(owners: &Informer<K>, pod: &Pod) -> Vec<String> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    owners
        .list_in(pod.metadata.namespace.as_deref().unwrap_or(""))
        .iter()
        .filter(|o| o.selects(&labels))
        .map(|o| key_of(o.as_ref()))
        .collect()
}

/// A pod is being deleted or is gone: its owner has seen the deletion.
fn pod_gone<K: ReplicaOwner>(
    pod: &Pod,
    owners: &Informer<K>,
    queue: &WorkQueue,
    exp: &PodExpectations,
) {
    let Some(reference) = controller_of(&pod.metadata) else {
        return;
    };
    if let Some(owner) = resolve(owners, pod.metadata.namespace.as_deref(), reference) {
        let key = key_of(owner.as_ref());
        exp.deletion_observed(&key, &pod_key(pod));
        queue.add(key);
    }
}

/// kube's addPod/updatePod/deletePod: which owners to sync, and what they have now seen.
fn observe_pod<K: ReplicaOwner>(
    change: &Change<Pod>,
    owners: &Informer<K>,
    queue: &WorkQueue,
    exp: &PodExpectations,
) {
    match change {
        Change::Added(pod) => {
            if pod.metadata.deletion_timestamp.is_some() {
                pod_gone(pod, owners, queue, exp);
                return;
            }
            if let Some(reference) = controller_of(&pod.metadata) {
                if let Some(owner) = resolve(owners, pod.metadata.namespace.as_deref(), reference) {
                    let key = key_of(owner.as_ref());
                    exp.creation_observed(&key);
                    queue.add(key);
                }
                return;
            }
            // An orphan: whoever matches may want to adopt it.
            for key in matching_owners(owners, pod) {
                queue.add(key);
            }
        }
        Change::Updated(old, cur) => {
            if old.metadata.resource_version == cur.metadata.resource_version {
                return;
            }
            let labels_changed = old.metadata.labels != cur.metadata.labels;
            if cur.metadata.deletion_timestamp.is_some() {
                // A graceful deletion: replace the pod now rather than when it is gone.
                pod_gone(cur, owners, queue, exp);
                if labels_changed {
                    pod_gone(old, owners, queue, exp);
                }
                return;
            }
            let (old_ref, cur_ref) = (controller_of(&old.metadata), controller_of(&cur.metadata));
            let ref_changed = old_ref != cur_ref;
            if ref_changed
                && let Some(reference) = old_ref
                && let Some(owner) = resolve(owners, old.metadata.namespace.as_deref(), reference)
            {
                queue.add(key_of(owner.as_ref()));
            }
            if let Some(reference) = cur_ref {
                if let Some(owner) = resolve(owners, cur.metadata.namespace.as_deref(), reference) {
                    let key = key_of(owner.as_ref());
                    queue.add(key.clone());
                    let min_ready = owner.min_ready_seconds();
                    if !is_ready(old) && is_ready(cur) && min_ready > 0 {
                        // Look again once the pod counts as available (plus a second of
                        // slack, as kube does).
                        let secs = u64::try_from(min_ready).unwrap_or(0) + 1;
                        queue.add_after(key, Duration::from_secs(secs));
                    }
                }
                return;
            }
            if labels_changed || ref_changed {
                for key in matching_owners(owners, cur) {
                    queue.add(key);
                }
            }
        }
        Change::Deleted(pod) => pod_gone(pod, owners, queue, exp),
    }
}

impl<K: ReplicaOwner> Reconcile for Controller<K> {
    fn name(&self) -> &'static str {
        K::CONTROLLER
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        if !(self.owners.has_synced() && self.pods.has_synced()) {
            return Ok(Next::After(Duration::from_millis(200)));
        }
        let Some(owner) = self.owners.get(&key) else {
            self.expectations.forget(&key);
            return Ok(Next::Done);
        };
        if !owner.has_selector() {
            tracing::debug!(controller = K::CONTROLLER, %key, "empty selector: not managed");
            return Ok(Next::Done);
        }
        let needs_sync = self.expectations.satisfied(&key);
        let namespace = owner.namespace().unwrap_or_default();
        let active: Vec<Arc<Pod>> = self
            .pods
            .list_in(&namespace)
            .into_iter()
            .filter(|p| is_active(p))
            .collect();
        let pods = self.claim_pods(&owner, active).await?;
        let desired = usize::try_from(owner.desired().max(0)).unwrap_or(0);
        let acts = needs_sync && owner.meta().deletion_timestamp.is_none() && pods.len() != desired;
        let managed = if acts {
            self.manage_replicas(&key, &owner, &pods).await
        } else {
            Ok(())
        };
        let template_labels = owner
            .pod_template()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let status = calculate_status(
            &owner.replica_status(),
            owner.desired(),
            &template_labels,
            owner.min_ready_seconds(),
            &pods,
            managed.as_ref().err(),
            now(),
        );
        let updated = self.update_status(&owner, status).await?;
        managed?;
        let status = updated.replica_status();
        let min_ready = updated.min_ready_seconds();
        if min_ready > 0
            && status.ready_replicas.unwrap_or(0) == updated.desired()
            && status.available_replicas.unwrap_or(0) != updated.desired()
        {
            return Ok(Next::After(Duration::from_secs(
                u64::try_from(min_ready).unwrap_or(0),
            )));
        }
        // A pod created and deleted before the cache saw it would leave the owner waiting
        // for some other change; whoever issued writes looks again when they expire.
        Ok(match self.expectations.remaining(&key).filter(|_| acts) {
            Some(left) => Next::After(left),
            None => Next::Done,
        })
    }
}

impl<K: ReplicaOwner> Controller<K> {
    fn owner_api(&self, namespace: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// kube's RecheckDeletionTimestamp: adoption only if a fresh read shows the owner is the
    /// same object and not being deleted.
    async fn can_adopt(&self, owner: &K) -> Result<(), String> {
        let namespace = owner.namespace().unwrap_or_default();
        let name = owner.name_any();
        let fresh = self
            .owner_api(&namespace)
            .get(&name)
            .await
            .map_err(|e| api_message(&e))?;
        if fresh.meta().uid != owner.meta().uid {
            return Err(format!(
                "original {} {namespace}/{name} is gone: got uid {}, wanted {}",
                K::kind(&()),
                fresh.meta().uid.as_deref().unwrap_or(""),
                owner.meta().uid.as_deref().unwrap_or("")
            ));
        }
        if let Some(ts) = &fresh.meta().deletion_timestamp {
            return Err(format!(
                "{namespace}/{name} has just been deleted at {}",
                ts.0.to_rfc3339()
            ));
        }
        Ok(())
    }

    /// Adopts matching orphans, releases owned pods that stopped matching, and returns the
    /// pods the owner now has.
    async fn claim_pods(&self, owner: &K, pods: Vec<Arc<Pod>>) -> anyhow::Result<Vec<Arc<Pod>>> {
        let api: Api<Pod> = self.pods_api(owner);
        let owner_uid = owner.meta().uid.clone().unwrap_or_default();
        let mut claimed = Vec::with_capacity(pods.len());
        let mut errors: Vec<String> = Vec::new();
        let mut adoptable: Option<Result<(), String>> = None;
        for pod in pods {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
            match controllerref::decide(&pod.metadata, owner.meta(), owner.selects(&labels)) {
                Claim::Owned => claimed.push(pod),
                Claim::Ignore => {}
                Claim::Release => {
                    let patch = controllerref::release_patch(&owner_uid, &pod_uid);
                    match api
                        .patch(
                            &pod.name_any(),
                            &PatchParams::default(),
                            &Patch::Strategic(&patch),
                        )
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => errors.push(api_message(&e)),
                    }
                }
                Claim::Adopt => {
                    if adoptable.is_none() {
                        adoptable = Some(self.can_adopt(owner).await);
                    }
                    if let Some(Err(why)) = &adoptable {
                        errors.push(format!(
                            "can't adopt Pod {}/{} ({pod_uid}): {why}",
                            pod.namespace().unwrap_or_default(),
                            pod.name_any()
                        ));
                        continue;
                    }
                    let patch = controllerref::adopt_patch(&controller_ref(owner), &pod_uid);
                    match api
                        .patch(
                            &pod.name_any(),
                            &PatchParams::default(),
                            &Patch::Strategic(&patch),
                        )
                        .await
                    {
                        Ok(_) => claimed.push(pod),
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => errors.push(api_message(&e)),
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(claimed)
        } else {
            Err(anyhow::anyhow!(errors.join(", ")))
        }
    }

    fn pods_api(&self, owner: &K) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &owner.namespace().unwrap_or_default())
    }

    /// The active pods of every owner that shares this owner's controller (the replica sets
    /// of one deployment), for spreading deletions over nodes.
    fn related_pods(&self, owner: &K) -> Vec<Arc<Pod>> {
        let Some(controller) = controller_of(owner.meta()) else {
            return Vec::new();
        };
        let namespace = owner.namespace().unwrap_or_default();
        let siblings: Vec<Arc<K>> = self
            .owners
            .list_in(&namespace)
            .into_iter()
            .filter(|o| controller_of(o.meta()).is_some_and(|c| c.uid == controller.uid))
            .collect();
        let mut seen = HashSet::new();
        let mut related = Vec::new();
        for pod in self.pods.list_in(&namespace) {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            if siblings.iter().any(|s| s.selects(&labels))
                && seen.insert(pod.metadata.uid.clone().unwrap_or_default())
            {
                related.push(pod);
            }
        }
        related
    }

    async fn create_pod(&self, api: &Api<Pod>, owner: &K, pod: &Pod) -> Result<(), ManageError> {
        match api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                self.recorder.record(
                    owner,
                    Type::Normal,
                    "SuccessfulCreate",
                    format!("Created pod: {}", created.name_any()),
                );
                Ok(())
            }
            // The namespace is going away, and every pod with it: nothing more to do.
            Err(e) if namespace_terminating(&e) => Ok(()),
            Err(e) => {
                let message = api_message(&e);
                self.recorder.record(
                    owner,
                    Type::Warning,
                    "FailedCreate",
                    format!("Error creating: {message}"),
                );
                Err(ManageError::Create(message))
            }
        }
    }

    async fn delete_pod(&self, api: &Api<Pod>, owner: &K, pod: &Pod) -> Result<(), kube::Error> {
        let name = pod.name_any();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder.record(
                    owner,
                    Type::Normal,
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                );
                Ok(())
            }
            Err(e) if is_not_found(&e) => Err(e),
            Err(e) => {
                self.recorder.record(
                    owner,
                    Type::Warning,
                    "FailedDelete",
                    format!("Error deleting: {}", api_message(&e)),
                );
                Err(e)
            }
        }
    }

    /// Creates or deletes pods until the owner has `spec.replicas`, at most 500 at a time.
    async fn manage_replicas(
        &self,
        key: &str,
        owner: &K,
        pods: &[Arc<Pod>],
    ) -> Result<(), ManageError> {
        let desired = usize::try_from(owner.desired().max(0)).unwrap_or(0);
        let api = self.pods_api(owner);
        if pods.len() < desired {
            let count = (desired - pods.len()).min(BURST_REPLICAS);
            self.expectations.expect_creations(key, count);
            tracing::debug!(controller = K::CONTROLLER, %key, count, "too few replicas");
            let template = owner.pod_template().cloned().unwrap_or_default();
            let pod = match pod_from_template(&template, &owner.name_any(), controller_ref(owner)) {
                Ok(pod) => pod,
                Err(e) => {
                    for _ in 0..count {
                        self.expectations.creation_observed(key);
                    }
                    let message = e.to_string();
                    self.recorder.record(
                        owner,
                        Type::Warning,
                        "FailedCreate",
                        format!("Error creating: {message}"),
                    );
                    return Err(ManageError::Create(message));
                }
            };
            let (api, pod) = (&api, &pod);
            let (created, error) = slow_start(count, SLOW_START_INITIAL_BATCH, |_| {
                self.create_pod(api, owner, pod)
            })
            .await;
            // The pods never attempted (or refused) will not show up: stop waiting for them.
            for _ in created..count {
                self.expectations.creation_observed(key);
            }
            return error.map_or(Ok(()), Err);
        }
        if pods.len() > desired {
            let count = (pods.len() - desired).min(BURST_REPLICAS);
            let related = self.related_pods(owner);
            let doomed = pods_to_delete(pods, &related, count, Utc::now());
            self.expectations
                .expect_deletions(key, doomed.iter().map(|p| pod_key(p)).collect());
            tracing::debug!(controller = K::CONTROLLER, %key, count, "too many replicas");
            let results = join_all(doomed.iter().map(|p| self.delete_pod(&api, owner, p))).await;
            let mut first_error = None;
            for (pod, result) in doomed.iter().zip(results) {
                if let Err(e) = result {
                    // The informer will never see this deletion.
                    self.expectations.deletion_observed(key, &pod_key(pod));
                    if !is_not_found(&e) && first_error.is_none() {
                        first_error = Some(ManageError::Delete(api_message(&e)));
                    }
                }
            }
            return first_error.map_or(Ok(()), Err);
        }
        Ok(())
    }

    /// Writes the status if it changed, with the generation it describes; one retry on a
    /// fresh read, as kube does.
    async fn update_status(&self, owner: &K, mut status: ReplicaSetStatus) -> anyhow::Result<K> {
        let generation = owner.meta().generation.unwrap_or(0);
        if status_unchanged(&owner.replica_status(), &status, generation) {
            return Ok(owner.clone());
        }
        status.observed_generation = Some(generation).filter(|g| *g != 0);
        let api = self.owner_api(&owner.namespace().unwrap_or_default());
        let name = owner.name_any();
        let mut object = owner.clone();
        let mut attempt = 0;
        loop {
            object.set_replica_status(status.clone());
            match api
                .replace_status(&name, &PostParams::default(), serde_json::to_vec(&object)?)
                .await
            {
                Ok(updated) => return Ok(updated),
                Err(e) if attempt == 0 && !is_not_found(&e) => {
                    attempt += 1;
                    object = api.get(&name).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(labels: &[(&str, &str)], ready_secs: Option<i64>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: ready_secs.map(|s| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(
                            now() - k8s_openapi::chrono::Duration::seconds(s),
                        )),
                        ..PodCondition::default()
                    }]
                }),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn status_counts_labelled_ready_and_available_pods() {
        let template: BTreeMap<String, String> = [
            ("app".to_owned(), "web".to_owned()),
            ("tier".to_owned(), "f".to_owned()),
        ]
        .into();
        let pods = vec![
            pod(&[("app", "web"), ("tier", "f")], Some(100)),
            pod(&[("app", "web"), ("tier", "f")], Some(1)),
            pod(&[("app", "web")], None),
        ];
        let status = calculate_status(
            &ReplicaSetStatus::default(),
            3,
            &template,
            10,
            &pods,
            None,
            now(),
        );
        assert_eq!(status.replicas, 3);
        assert_eq!(status.fully_labeled_replicas, Some(2));
        assert_eq!(status.ready_replicas, Some(2));
        assert_eq!(status.available_replicas, Some(1));
        assert!(status.conditions.is_none());
    }

    #[test]
    fn failures_set_and_clear_the_replica_failure_condition() {
        let err = ManageError::Create("pods \"x\" is forbidden: quota".into());
        let failed = calculate_status(
            &ReplicaSetStatus::default(),
            3,
            &BTreeMap::new(),
            0,
            &Vec::<Pod>::new(),
            Some(&err),
            now(),
        );
        let cond = failed.conditions.clone().unwrap_or_default();
        assert_eq!(cond.len(), 1);
        assert_eq!(cond[0].reason.as_deref(), Some("FailedCreate"));
        assert_eq!(
            cond[0].message.as_deref(),
            Some("pods \"x\" is forbidden: quota")
        );
        // Kept (not re-stamped) while failing, removed on success.
        let again = calculate_status(
            &failed,
            3,
            &BTreeMap::new(),
            0,
            &Vec::<Pod>::new(),
            Some(&err),
            now(),
        );
        assert_eq!(again.conditions, failed.conditions);
        let ok = calculate_status(
            &failed,
            3,
            &BTreeMap::new(),
            0,
            &Vec::<Pod>::new(),
            None,
            now(),
        );
        assert!(ok.conditions.is_none());
        assert_eq!(
            ManageError::Delete("boom".into()).to_string(),
            "unable to delete pods: boom"
        );
    }

    #[test]
    fn expectations_track_creations_and_named_deletions() {
        let e = PodExpectations::default();
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 2);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));
        e.expect_deletions("ns/rs", ["ns/a".to_owned(), "ns/b".to_owned()].into());
        // Someone else's deletion does not count.
        e.deletion_observed("ns/rs", "ns/c");
        e.deletion_observed("ns/rs", "ns/a");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 1);
        e.forget("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }

    #[test]
    fn replication_controllers_select_by_map_and_convert_status() {
        let mut rc = ReplicationController {
            spec: Some(k8s_openapi::api::core::v1::ReplicationControllerSpec {
                selector: Some([("app".to_owned(), "web".to_owned())].into()),
                ..Default::default()
            }),
            ..ReplicationController::default()
        };
        let labels: BTreeMap<String, String> = [
            ("app".to_owned(), "web".to_owned()),
            ("x".to_owned(), "y".to_owned()),
        ]
        .into();
        assert!(rc.selects(&labels));
        assert!(!rc.selects(&BTreeMap::new()));
        assert_eq!(rc.desired(), 1);
        let status = ReplicaSetStatus {
            replicas: 2,
            ready_replicas: Some(1),
            observed_generation: Some(3),
            ..ReplicaSetStatus::default()
        };
        rc.set_replica_status(status.clone());
        assert_eq!(rc.replica_status(), status);
    }
}
