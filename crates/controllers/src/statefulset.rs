//! The StatefulSet controller, as kube-controller-manager v1.33 runs it.
//!
//! - Pods have stable names `SET-0 .. SET-(N-1)` (from `spec.ordinals.start`), the labels
//!   `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, the hostname of
//!   their name and the subdomain `spec.serviceName`; each volumeClaimTemplate gives pod `i`
//!   the claim `TEMPLATE-SET-i`, created before the pod and kept (or owned by the set or the
//!   pod, per `persistentVolumeClaimRetentionPolicy`).
//! - OrderedReady: pods are created one at a time in ordinal order, each waiting for the one
//!   before to be Running and Ready, and removed in reverse order, one at a time; Parallel
//!   creates and removes them all at once.
//! - RollingUpdate replaces pods from the highest ordinal down to `partition`, one at a time,
//!   each waiting for the previous to be healthy; OnDelete only uses the new template for
//!   pods it recreates. Templates are kept as ControllerRevisions; pods carry their
//!   revision's name as `controller-revision-hash`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::chrono::Utc;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::batchutil::{
    Expectations, adopt, controlled_by, controller_key, controller_of, controller_ref,
    is_already_exists, is_available, is_not_found, is_ready, json_patch, phase, selector_matches,
};
use crate::events::{Recorder, Type};
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::revisionhistory::{self, REVISION_HASH_LABEL, template_of};
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

struct Controller {
    ctx: Context,
    /// Events come from this controller, as kube-controller-manager names it.
    recorder: Recorder,
    sets: Informer<StatefulSet>,
    pods: Informer<Pod>,
    claims: Informer<PersistentVolumeClaim>,
    revisions: Informer<ControllerRevision>,
    expectations: Arc<Expectations>,
}

pub fn start(ctx: &Context, options: &Options) {
    let sets = ctx.informer::<StatefulSet>();
    let pods = ctx.informer::<Pod>();
    let claims = ctx.informer::<PersistentVolumeClaim>();
    let revisions = ctx.informer::<ControllerRevision>();
    let queue = WorkQueue::default();
    let expectations = Arc::new(Expectations::default());
    let q = queue.clone();
    on_change(&sets, ctx.stop.clone(), move |change| {
        q.add(key_of(change.object().as_ref()));
    });
    let (q, e, set_cache) = (queue.clone(), expectations.clone(), sets.clone());
    on_change(&pods, ctx.stop.clone(), move |change| {
        let pod = change.object();
        match controller_key(&pod.metadata, "StatefulSet") {
            Some(key) => {
                match change {
                    Change::Added(_) => e.creation_observed(&key),
                    Change::Updated(old, new) => {
                        if new.metadata.deletion_timestamp.is_some()
                            && old.metadata.deletion_timestamp.is_none()
                        {
                            e.deletion_observed(&key);
                        }
                    }
                    Change::Deleted(p) => {
                        if p.metadata.deletion_timestamp.is_none() {
                            e.deletion_observed(&key);
                        }
                    }
                }
                q.add(key);
            }
            None if controller_of(&pod.metadata).is_none()
                && !matches!(change, Change::Deleted(_)) =>
            {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                for set in set_cache.list_in(&ns) {
                    if is_member(&set, pod) {
                        q.add(key_of(set.as_ref()));
                    }
                }
            }
            None => {}
        }
    });
    let q = queue.clone();
    on_change(&revisions, ctx.stop.clone(), move |change| {
        if let Some(key) = controller_key(&change.object().metadata, "StatefulSet") {
            q.add(key);
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        recorder: Recorder::new(ctx.client.clone(), "statefulset-controller"),
        sets,
        pods,
        claims,
        revisions,
        expectations,
    });
    run_workers(controller, queue, options.workers.min(2), ctx.stop.clone());
}

/// The parent name and ordinal in a pod name `PARENT-ORDINAL`.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, ordinal) = name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse().ok()?))
}

/// A pod whose name and labels make it one of the set's (kube's isMemberOf plus selector).
fn is_member(set: &StatefulSet, pod: &Pod) -> bool {
    let named = parent_and_ordinal(&pod.name_any()).is_some_and(|(p, _)| p == set.name_any());
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    named
        && set
            .spec
            .as_ref()
            .is_some_and(|s| selector_matches(&s.selector, &labels))
}

/// The claim name for a template and ordinal.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The pods of a rollout step, by what the controller does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Create the pod with this ordinal.
    Create(i32),
    /// Delete the pod with this ordinal (failed, condemned or out of date).
    Delete(i32),
    /// Wait for a pod to become healthy or to go away.
    Wait,
    /// Nothing to do.
    Idle,
}

/// What one pod slot looks like to the ordering logic.
#[derive(Clone, Debug, Default)]
pub struct Slot {
    pub ordinal: i32,
    pub exists: bool,
    pub terminating: bool,
    pub terminal: bool,
    pub healthy: bool,
    pub updated: bool,
}

/// The actions of one pass over the slots, in order (kube's updateStatefulSet): the wanted
/// slots in ordinal order, then the condemned in reverse, then the rolling update from the
/// top down to `partition`. OrderedReady stops at the first action or unhealthy pod;
/// Parallel acts on every slot. `update` is None for OnDelete.
pub fn plan(
    wanted: &[Slot],
    condemned: &[Slot],
    monotonic: bool,
    update: Option<i32>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for s in wanted {
        if !s.exists {
            steps.push(Step::Create(s.ordinal));
            if monotonic {
                return steps;
            }
            continue;
        }
        if s.terminal && !s.terminating {
            steps.push(Step::Delete(s.ordinal));
            if monotonic {
                return steps;
            }
            continue;
        }
        if monotonic && (s.terminating || !s.healthy) {
            steps.push(Step::Wait);
            return steps;
        }
    }
    // Condemned pods go highest ordinal first; OrderedReady one at a time, and only while
    // every other pod is healthy.
    let first_unhealthy = wanted
        .iter()
        .chain(condemned.iter())
        .find(|s| !s.healthy || s.terminating)
        .map(|s| s.ordinal);
    for s in condemned {
        if s.terminating {
            if monotonic {
                steps.push(Step::Wait);
                return steps;
            }
            continue;
        }
        if monotonic && !s.healthy && first_unhealthy != Some(s.ordinal) {
            steps.push(Step::Wait);
            return steps;
        }
        steps.push(Step::Delete(s.ordinal));
        if monotonic {
            return steps;
        }
    }
    if !steps.is_empty() && !monotonic {
        return steps;
    }
    let Some(partition) = update else {
        return if steps.is_empty() {
            vec![Step::Idle]
        } else {
            steps
        };
    };
    for s in wanted.iter().rev() {
        if s.ordinal < partition {
            break;
        }
        if !s.updated && !s.terminating {
            steps.push(Step::Delete(s.ordinal));
            return steps;
        }
        if !s.healthy || s.terminating {
            steps.push(Step::Wait);
            return steps;
        }
    }
    if steps.is_empty() {
        steps.push(Step::Idle);
    }
    steps
}

fn pod_revision(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_HASH_LABEL)
        .map(String::as_str)
}

fn healthy(pod: &Pod, min_ready: i32) -> bool {
    phase(pod) == "Running" && is_ready(pod) && is_available(pod, min_ready, Utc::now())
}

/// A pod for an ordinal from a template (kube's newVersionedStatefulSetPod).
fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ordinal: i32) -> Pod {
    let set_name = set.name_any();
    let name = format!("{set_name}-{ordinal}");
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.to_owned(), name.clone());
    labels.insert(POD_INDEX_LABEL.to_owned(), ordinal.to_string());
    labels.insert(REVISION_HASH_LABEL.to_owned(), revision.to_owned());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    let set_spec = set.spec.clone().unwrap_or_default();
    if let Some(service) = set_spec.service_name.filter(|s| !s.is_empty()) {
        spec.subdomain = Some(service);
    }
    let mut volumes: Vec<Volume> = spec.volumes.take().unwrap_or_default();
    for claim in set_spec.volume_claim_templates.iter().flatten() {
        let template_name = claim.name_any();
        volumes.retain(|v| v.name != template_name);
        volumes.push(Volume {
            name: template_name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&template_name, &set_name, ordinal),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.namespace(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_ref(set)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn retention(set: &StatefulSet) -> (String, String) {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.clone())
        .unwrap_or_default();
    (
        policy.when_deleted.unwrap_or_else(|| "Retain".to_owned()),
        policy.when_scaled.unwrap_or_else(|| "Retain".to_owned()),
    )
}

fn plain_owner(owner: &OwnerReference) -> OwnerReference {
    OwnerReference {
        controller: None,
        block_owner_deletion: None,
        ..owner.clone()
    }
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "statefulset"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        if !(self.sets.has_synced()
            && self.pods.has_synced()
            && self.claims.has_synced()
            && self.revisions.has_synced())
        {
            return Ok(Next::After(Duration::from_millis(200)));
        }
        let Some(set) = self.sets.get(&key) else {
            self.expectations.forget(&key);
            return Ok(Next::Done);
        };
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(Next::Done);
        }
        self.adopt_orphans(&set).await;
        let ns = set.namespace().unwrap_or_default();
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let spec = set.spec.clone().unwrap_or_default();
        let api_rev: Api<ControllerRevision> = Api::namespaced(self.ctx.client.clone(), &ns);
        let history = revisionhistory::ensure(
            &api_rev,
            controller_ref(set.as_ref()),
            spec.template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            None,
            revisionhistory::template_patch(&spec.template),
            revisionhistory::owned(&self.revisions.list_in(&ns), &uid),
            set.status.as_ref().and_then(|s| s.collision_count),
        )
        .await?;
        let update_name = history.update.name_any();
        let current = set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.clone())
            .and_then(|name| history.all.iter().find(|r| r.name_any() == name).cloned())
            .unwrap_or_else(|| history.update.clone());
        let current_name = current.name_any();
        let current_template = template_of(&current).unwrap_or_else(|| spec.template.clone());

        let pods: BTreeMap<i32, Arc<Pod>> = self
            .pods
            .list_in(&ns)
            .into_iter()
            .filter(|p| controlled_by(&p.metadata, &uid))
            .filter_map(|p| {
                let name = p.name_any();
                let (parent, ord) = parent_and_ordinal(&name)?;
                (parent == set.name_any()).then_some((ord, p))
            })
            .collect();
        let start = spec
            .ordinals
            .as_ref()
            .and_then(|o| o.start)
            .unwrap_or(0)
            .max(0);
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let slot = |ord: i32| -> Slot {
            match pods.get(&ord) {
                None => Slot {
                    ordinal: ord,
                    ..Slot::default()
                },
                Some(p) => Slot {
                    ordinal: ord,
                    exists: true,
                    terminating: p.metadata.deletion_timestamp.is_some(),
                    terminal: crate::batchutil::is_terminal(p),
                    healthy: healthy(p, min_ready),
                    updated: pod_revision(p) == Some(update_name.as_str()),
                },
            }
        };
        let wanted: Vec<Slot> = (start..start + replicas).map(slot).collect();
        let mut condemned: Vec<Slot> = pods
            .keys()
            .filter(|o| **o < start || **o >= start + replicas)
            .map(|o| slot(*o))
            .collect();
        condemned.reverse();
        let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let rolling = strategy.type_.as_deref().unwrap_or("RollingUpdate") == "RollingUpdate";
        let partition = strategy
            .rolling_update
            .as_ref()
            .and_then(|r| r.partition)
            .unwrap_or(0);
        let mut requeue = None;
        if self.expectations.satisfied(&key) {
            // Claims of existing pods are made good first (kube's identity/storage repair).
            for ord in pods
                .keys()
                .filter(|o| **o >= start && **o < start + replicas)
            {
                self.ensure_claims(&set, *ord).await?;
            }
            let steps = plan(
                &wanted,
                &condemned,
                monotonic,
                rolling.then_some(partition + start),
            );
            for step in steps {
                match step {
                    Step::Create(ord) => {
                        let use_current = rolling && ord < start + partition;
                        let (template, revision) = if use_current {
                            (&current_template, current_name.as_str())
                        } else {
                            (&spec.template, update_name.as_str())
                        };
                        self.create(&key, &set, template, revision, ord).await?;
                    }
                    Step::Delete(ord) => {
                        if let Some(pod) = pods.get(&ord) {
                            let scaled_away = ord < start || ord >= start + replicas;
                            if scaled_away {
                                self.release_claims_on_scale_down(&set, pod).await?;
                            }
                            self.delete(&key, &set, pod).await?;
                        }
                    }
                    Step::Wait => {
                        if min_ready > 0 {
                            requeue = Some(Duration::from_secs(1));
                        }
                    }
                    Step::Idle => {}
                }
            }
            let in_use: HashSet<String> = pods
                .values()
                .filter_map(|p| pod_revision(p).map(str::to_owned))
                .chain([update_name.clone(), current_name.clone()])
                .collect();
            revisionhistory::truncate(
                &api_rev,
                &history.all,
                &in_use,
                spec.revision_history_limit.unwrap_or(10),
            )
            .await?;
        }
        let status_wait = self
            .update_status(
                &set,
                &pods,
                &current_name,
                &update_name,
                history.collision_count,
                rolling,
            )
            .await?;
        Ok(match (requeue, status_wait) {
            (Some(a), Some(b)) => Next::After(a.min(b)),
            (Some(a), None) | (None, Some(a)) => Next::After(a),
            (None, None) => Next::Done,
        })
    }
}

impl Controller {
    async fn adopt_orphans(&self, set: &StatefulSet) {
        let ns = set.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        for pod in self.pods.list_in(&ns) {
            if controller_of(&pod.metadata).is_none()
                && pod.metadata.deletion_timestamp.is_none()
                && is_member(set, &pod)
                && let Err(err) = adopt(&api, pod.as_ref(), controller_ref(set)).await
            {
                tracing::debug!(pod = %pod.name_any(), "cannot adopt: {err}");
            }
        }
    }

    /// Creates the pod's missing claims (owned by the set with `whenDeleted: Delete`).
    async fn ensure_claims(&self, set: &StatefulSet, ordinal: i32) -> anyhow::Result<()> {
        let spec = set.spec.clone().unwrap_or_default();
        let ns = set.namespace().unwrap_or_default();
        let set_name = set.name_any();
        let (when_deleted, _) = retention(set);
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &ns);
        for template in spec.volume_claim_templates.iter().flatten() {
            let name = claim_name(&template.name_any(), &set_name, ordinal);
            if let Some(existing) = self.claims.get_in(Some(&ns), &name) {
                if existing.metadata.deletion_timestamp.is_some() {
                    anyhow::bail!("pvc {name} is being deleted");
                }
                continue;
            }
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            for (k, v) in spec.selector.match_labels.iter().flatten() {
                labels.insert(k.clone(), v.clone());
            }
            let mut owners = Vec::new();
            if when_deleted == "Delete" {
                owners.push(plain_owner(&controller_ref(set)));
            }
            let claim = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    owner_references: (!owners.is_empty()).then_some(owners),
                    ..ObjectMeta::default()
                },
                spec: template.spec.clone(),
                status: None,
            };
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => self.recorder.record(
                    set,
                    Type::Normal,
                    "SuccessfulCreate",
                    format!("create Claim {name} Pod {set_name}-{ordinal} in StatefulSet {set_name} success"),
                ),
                Err(err) if is_already_exists(&err) => {}
                Err(err) => {
                    self.recorder.record(
                        set,
                        Type::Warning,
                        "FailedCreate",
                        format!("create Claim {name} for Pod {set_name}-{ordinal} in StatefulSet {set_name} failed error: {err}"),
                    );
                    return Err(err.into());
                }
            }
        }
        Ok(())
    }

    /// With `whenScaled: Delete`, a condemned pod becomes the owner of its claims, so they
    /// are collected with it.
    async fn release_claims_on_scale_down(
        &self,
        set: &StatefulSet,
        pod: &Pod,
    ) -> anyhow::Result<()> {
        let (_, when_scaled) = retention(set);
        if when_scaled != "Delete" {
            return Ok(());
        }
        let Some((_, ordinal)) = parent_and_ordinal(&pod.name_any()) else {
            return Ok(());
        };
        let ns = set.namespace().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.ctx.client.clone(), &ns);
        let owner = OwnerReference {
            api_version: "v1".to_owned(),
            kind: "Pod".to_owned(),
            name: pod.name_any(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            controller: None,
            block_owner_deletion: None,
        };
        for template in set
            .spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.clone())
            .unwrap_or_default()
        {
            let name = claim_name(&template.name_any(), &set.name_any(), ordinal);
            let Some(claim) = self.claims.get_in(Some(&ns), &name) else {
                continue;
            };
            let refs = claim.metadata.owner_references.clone().unwrap_or_default();
            if refs.iter().any(|r| r.uid == owner.uid) {
                continue;
            }
            let op = if refs.is_empty() {
                json!({"op": "add", "path": "/metadata/ownerReferences", "value": [owner]})
            } else {
                json!({"op": "add", "path": "/metadata/ownerReferences/-", "value": owner})
            };
            match api
                .patch(
                    &name,
                    &kube::api::PatchParams::default(),
                    &json_patch(vec![op])?,
                )
                .await
            {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    async fn create(
        &self,
        key: &str,
        set: &StatefulSet,
        template: &PodTemplateSpec,
        revision: &str,
        ordinal: i32,
    ) -> anyhow::Result<()> {
        self.ensure_claims(set, ordinal).await?;
        let pod = new_pod(set, template, revision, ordinal);
        let name = pod.name_any();
        let set_name = set.name_any();
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &set.namespace().unwrap_or_default(),
        );
        self.expectations.raise(key, 1, 0);
        match api.create(&PostParams::default(), &pod).await {
            Ok(_) => {
                self.recorder.record(
                    set,
                    Type::Normal,
                    "SuccessfulCreate",
                    format!("create Pod {name} in StatefulSet {set_name} successful"),
                );
                Ok(())
            }
            Err(err) if is_already_exists(&err) => {
                self.expectations.creation_observed(key);
                Ok(())
            }
            Err(err) => {
                self.expectations.creation_observed(key);
                self.recorder.record(
                    set,
                    Type::Warning,
                    "FailedCreate",
                    format!("create Pod {name} in StatefulSet {set_name} failed error: {err}"),
                );
                Err(err.into())
            }
        }
    }

    async fn delete(&self, key: &str, set: &StatefulSet, pod: &Pod) -> anyhow::Result<()> {
        let name = pod.name_any();
        let set_name = set.name_any();
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &set.namespace().unwrap_or_default(),
        );
        self.expectations.raise(key, 0, 1);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder.record(
                    set,
                    Type::Normal,
                    "SuccessfulDelete",
                    format!("delete Pod {name} in StatefulSet {set_name} successful"),
                );
                Ok(())
            }
            Err(err) if is_not_found(&err) => {
                self.expectations.deletion_observed(key);
                Ok(())
            }
            Err(err) => {
                self.expectations.deletion_observed(key);
                self.recorder.record(
                    set,
                    Type::Warning,
                    "FailedDelete",
                    format!("delete Pod {name} in StatefulSet {set_name} failed error: {err}"),
                );
                Err(err.into())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_status(
        &self,
        set: &Arc<StatefulSet>,
        pods: &BTreeMap<i32, Arc<Pod>>,
        current: &str,
        update: &str,
        collision: Option<i32>,
        rolling: bool,
    ) -> anyhow::Result<Option<Duration>> {
        let min_ready = set
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let now = Utc::now();
        let mut s = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            collision_count: collision
                .or_else(|| set.status.as_ref().and_then(|s| s.collision_count)),
            conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
            current_revision: Some(current.to_owned()),
            update_revision: Some(update.to_owned()),
            ..StatefulSetStatus::default()
        };
        let (mut ready, mut available, mut cur, mut upd) = (0, 0, 0, 0);
        let mut requeue = None;
        for pod in pods.values() {
            s.replicas += 1;
            if phase(pod) == "Running" && is_ready(pod) {
                ready += 1;
                if is_available(pod, min_ready, now) {
                    available += 1;
                } else {
                    requeue = Some(Duration::from_secs(1));
                }
            }
            if pod.metadata.deletion_timestamp.is_none() {
                match pod_revision(pod) {
                    Some(r) if r == current => cur += 1,
                    _ => {}
                }
                if pod_revision(pod) == Some(update) {
                    upd += 1;
                }
            }
        }
        if current == update {
            cur = upd;
        }
        s.ready_replicas = Some(ready);
        s.available_replicas = Some(available);
        s.current_replicas = Some(cur);
        s.updated_replicas = Some(upd);
        // A finished rolling update makes the update revision current.
        if rolling && upd == s.replicas && ready == s.replicas {
            s.current_replicas = Some(upd);
            s.current_revision = Some(update.to_owned());
        }
        if set.status.as_ref() == Some(&s) {
            return Ok(requeue);
        }
        let mut updated = (**set).clone();
        updated.status = Some(s);
        let api: Api<StatefulSet> = Api::namespaced(
            self.ctx.client.clone(),
            &set.namespace().unwrap_or_default(),
        );
        api.replace_status(
            &set.name_any(),
            &PostParams::default(),
            serde_json::to_vec(&updated)?,
        )
        .await?;
        Ok(requeue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(spec: &[(i32, &str)]) -> Vec<Slot> {
        // "-" missing, "p" pending, "r" ready, "t" terminating, "f" failed, "o" ready but old.
        spec.iter()
            .map(|(ord, s)| Slot {
                ordinal: *ord,
                exists: *s != "-",
                terminating: *s == "t",
                terminal: *s == "f",
                healthy: *s == "r" || *s == "o",
                updated: *s != "o",
            })
            .collect()
    }

    #[test]
    fn ordered_ready_creates_one_pod_at_a_time_in_order() {
        let none = slots(&[(0, "-"), (1, "-"), (2, "-")]);
        assert_eq!(plan(&none, &[], true, Some(0)), vec![Step::Create(0)]);
        // web-0 exists but is not ready: wait.
        let pending = slots(&[(0, "p"), (1, "-"), (2, "-")]);
        assert_eq!(plan(&pending, &[], true, Some(0)), vec![Step::Wait]);
        let ready = slots(&[(0, "r"), (1, "-"), (2, "-")]);
        assert_eq!(plan(&ready, &[], true, Some(0)), vec![Step::Create(1)]);
        // Parallel creates them all.
        assert_eq!(
            plan(&none, &[], false, Some(0)),
            vec![Step::Create(0), Step::Create(1), Step::Create(2)]
        );
    }

    #[test]
    fn scale_down_goes_in_reverse_one_at_a_time() {
        let wanted = slots(&[(0, "r")]);
        let condemned = slots(&[(2, "r"), (1, "r")]);
        assert_eq!(
            plan(&wanted, &condemned, true, Some(0)),
            vec![Step::Delete(2)]
        );
        let condemned = slots(&[(2, "t"), (1, "r")]);
        assert_eq!(plan(&wanted, &condemned, true, Some(0)), vec![Step::Wait]);
        let condemned = slots(&[(2, "r"), (1, "r")]);
        assert_eq!(
            plan(&wanted, &condemned, false, Some(0)),
            vec![Step::Delete(2), Step::Delete(1)]
        );
    }

    #[test]
    fn rolling_updates_go_from_the_top_down_to_the_partition() {
        let all_old = slots(&[(0, "o"), (1, "o"), (2, "o")]);
        assert_eq!(plan(&all_old, &[], true, Some(0)), vec![Step::Delete(2)]);
        let top_new = slots(&[(0, "o"), (1, "o"), (2, "r")]);
        assert_eq!(plan(&top_new, &[], true, Some(0)), vec![Step::Delete(1)]);
        // The recreated pod must be healthy before the next.
        let top_pending = slots(&[(0, "o"), (1, "o"), (2, "p")]);
        assert_eq!(plan(&top_pending, &[], true, Some(0)), vec![Step::Wait]);
        // Partition 2: ordinals below 2 stay old.
        assert_eq!(plan(&top_new, &[], true, Some(2)), vec![Step::Idle]);
        // OnDelete: nothing.
        assert_eq!(plan(&all_old, &[], true, None), vec![Step::Idle]);
        // Failed pods are deleted to be recreated.
        let failed = slots(&[(0, "r"), (1, "f")]);
        assert_eq!(plan(&failed, &[], true, Some(0)), vec![Step::Delete(1)]);
    }

    #[test]
    fn pods_carry_their_identity_and_claims() {
        let set = StatefulSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: Some(k8s_openapi::api::apps::v1::StatefulSetSpec {
                service_name: Some("nginx".into()),
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("www".into()),
                        ..ObjectMeta::default()
                    },
                    ..PersistentVolumeClaim::default()
                }]),
                ..Default::default()
            }),
            status: None,
        };
        let pod = new_pod(&set, &PodTemplateSpec::default(), "web-abc", 1);
        assert_eq!(pod.metadata.name.as_deref(), Some("web-1"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(POD_NAME_LABEL).map(String::as_str),
            Some("web-1")
        );
        assert_eq!(labels.get(POD_INDEX_LABEL).map(String::as_str), Some("1"));
        assert_eq!(
            labels.get(REVISION_HASH_LABEL).map(String::as_str),
            Some("web-abc")
        );
        let spec = pod.spec.unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("web-1"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let volumes = spec.volumes.unwrap_or_default();
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("www-web-1")
        );
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web-x"), None);
    }
}
