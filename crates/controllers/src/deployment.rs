//! The Deployment controller, as kube-controller-manager v1.33 runs it.
//!
//! A deployment owns one ReplicaSet per distinct pod template, named
//! `NAME-<pod-template-hash>` with the hash label added to its selector, template and labels
//! ([`revision`]). Each sync, from the caches:
//! - ReplicaSets are claimed (adopted / released like pods by a ReplicaSet);
//! - the ReplicaSet whose template equals the deployment's is the new one; it gets the next
//!   revision number (`deployment.kubernetes.io/revision`, the deployment gets it too), so
//!   rolling back to an old template revives its ReplicaSet under a new number;
//! - paused deployments and pure resizes only scale, proportionally over the ReplicaSets
//!   still running ([`rollout::proportional_scale`]);
//! - RollingUpdate grows the new ReplicaSet within maxSurge and shrinks old ones within
//!   maxUnavailable ([`rollout`]); Recreate scales old ones to zero, waits for their pods to
//!   go, then scales the new one up;
//! - the status (counts, Available, Progressing with its deadline, ReplicaFailure) is written
//!   through the status subresource ([`status`]); old ReplicaSets beyond
//!   revisionHistoryLimit are deleted once empty.
//!
//! Every resize is a `ScalingReplicaSet` event on the deployment.
//!
//! One difference from kube: kube-apiserver lets a deployment's status update also change its
//! annotations, and kube's controller sets the revision annotation that way; rkube's status
//! subresource only writes status, so the controller patches the annotation separately.

pub mod revision;
pub mod rollout;
pub mod status;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::batchutil::{
    controlled_by, controller_of, controller_ref, is_already_exists, is_not_found, phase,
    selector_is_empty, selector_matches,
};
use crate::controllerref::{self, Claim};
use crate::events::{Recorder, Type};
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::replicaset::{api_message, now};
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

use revision::{DESIRED_REPLICAS, POD_TEMPLATE_HASH, REVISION};
use rollout::{actual, replicas, rs_replicas};
use status::{PROGRESSING, get_condition, has_progress_deadline, set_condition};

struct Controller {
    client: Client,
    recorder: Recorder,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
}

pub fn start(ctx: &Context, options: &Options) {
    let deployments = ctx.informer::<Deployment>();
    let replica_sets = ctx.informer::<ReplicaSet>();
    let pods = ctx.informer::<Pod>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&deployments, ctx.stop.clone(), move |change| {
        q.add(key_of(change.object().as_ref()));
    });
    let (q, ds) = (queue.clone(), deployments.clone());
    on_change(&replica_sets, ctx.stop.clone(), move |change| {
        observe_replica_set(change, &ds, &q);
    });
    let (q, ds, rss) = (queue.clone(), deployments.clone(), replica_sets.clone());
    on_change(&pods, ctx.stop.clone(), move |change| {
        if let Change::Deleted(pod) = change {
            observe_pod_deletion(pod, &rss, &ds, &q);
        }
    });
    let controller = Arc::new(Controller {
        client: ctx.client.clone(),
        recorder: Recorder::new(ctx.client.clone(), "deployment-controller"),
        deployments,
        replica_sets,
        pods,
    });
    run_workers(controller, queue, options.workers, ctx.stop.clone());
}

/// The deployment a controller reference names, if it is still the same object.
fn resolve(
    deployments: &Informer<Deployment>,
    namespace: Option<&str>,
    reference: &OwnerReference,
) -> Option<Arc<Deployment>> {
    if reference.kind != "Deployment" {
        return None;
    }
    deployments
        .get_in(namespace, &reference.name)
        .filter(|d| d.metadata.uid.as_deref() == Some(reference.uid.as_str()))
}

fn selector_of(d: &Deployment) -> LabelSelector {
    d.spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default()
}

/// The deployments in the object's namespace whose selector matches its labels.
fn selecting(deployments: &Informer<Deployment>, meta: &ObjectMeta) -> Vec<String> {
    let labels = meta.labels.clone().unwrap_or_default();
    deployments
        .list_in(meta.namespace.as_deref().unwrap_or(""))
        .iter()
        .filter(|d| {
            let selector = selector_of(d);
            !selector_is_empty(&selector) && selector_matches(&selector, &labels)
        })
        .map(|d| key_of(d.as_ref()))
        .collect()
}

/// kube's add/update/deleteReplicaSet handlers: the owning deployment, or for an orphan every
/// deployment that might adopt it.
fn observe_replica_set(
    change: &Change<ReplicaSet>,
    deployments: &Informer<Deployment>,
    queue: &WorkQueue,
) {
    let enqueue_owner = |rs: &ReplicaSet| {
        if let Some(reference) = controller_of(&rs.metadata)
            && let Some(d) = resolve(deployments, rs.metadata.namespace.as_deref(), reference)
        {
            queue.add(key_of(d.as_ref()));
        }
    };
    match change {
        Change::Added(rs) => {
            if controller_of(&rs.metadata).is_some() {
                enqueue_owner(rs);
            } else if rs.metadata.deletion_timestamp.is_none() {
                for key in selecting(deployments, &rs.metadata) {
                    queue.add(key);
                }
            }
        }
        Change::Updated(old, cur) => {
            if old.metadata.resource_version == cur.metadata.resource_version {
                return;
            }
            let (old_ref, cur_ref) = (controller_of(&old.metadata), controller_of(&cur.metadata));
            let ref_changed = old_ref != cur_ref;
            if ref_changed && old_ref.is_some() {
                enqueue_owner(old);
            }
            if cur_ref.is_some() {
                enqueue_owner(cur);
                return;
            }
            if ref_changed || old.metadata.labels != cur.metadata.labels {
                for key in selecting(deployments, &cur.metadata) {
                    queue.add(key);
                }
            }
        }
        Change::Deleted(rs) => enqueue_owner(rs),
    }
}

/// A Recreate deployment waits for its old pods to be gone: each deletion is a reason to
/// look again.
fn observe_pod_deletion(
    pod: &Pod,
    replica_sets: &Informer<ReplicaSet>,
    deployments: &Informer<Deployment>,
    queue: &WorkQueue,
) {
    let namespace = pod.metadata.namespace.as_deref();
    let Some(reference) = controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") else {
        return;
    };
    let Some(rs) = replica_sets
        .get_in(namespace, &reference.name)
        .filter(|rs| rs.metadata.uid.as_deref() == Some(reference.uid.as_str()))
    else {
        return;
    };
    if let Some(owner) = controller_of(&rs.metadata)
        && let Some(d) = resolve(deployments, namespace, owner)
        && !rollout::is_rolling(&d)
    {
        queue.add(key_of(d.as_ref()));
    }
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "deployment"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        if !(self.deployments.has_synced()
            && self.replica_sets.has_synced()
            && self.pods.has_synced())
        {
            return Ok(Next::After(Duration::from_millis(200)));
        }
        let Some(d) = self.deployments.get(&key) else {
            return Ok(Next::Done);
        };
        let mut sync = Syncing::new(self, (*d).clone());
        sync.run().await?;
        Ok(sync.requeue.map_or(Next::Done, Next::After))
    }
}

/// A deployment's ReplicaSets during one sync, kept current as the sync writes them.
struct Family {
    /// Oldest first.
    rss: Vec<ReplicaSet>,
    /// The uid of the ReplicaSet of the deployment's current template, once known.
    new_uid: Option<String>,
}

fn uid_of(rs: &ReplicaSet) -> &str {
    rs.metadata.uid.as_deref().unwrap_or("")
}

impl Family {
    fn new_rs(&self) -> Option<&ReplicaSet> {
        let uid = self.new_uid.as_deref()?;
        self.rss.iter().find(|rs| uid_of(rs) == uid)
    }

    fn old(&self) -> Vec<&ReplicaSet> {
        self.rss
            .iter()
            .filter(|rs| Some(uid_of(rs)) != self.new_uid.as_deref())
            .collect()
    }

    /// The old ones, then the new one (kube's `append(oldRSs, newRS)`).
    fn all(&self) -> Vec<&ReplicaSet> {
        let mut all = self.old();
        all.extend(self.new_rs());
        all
    }

    fn get(&self, uid: &str) -> Option<&ReplicaSet> {
        self.rss.iter().find(|rs| uid_of(rs) == uid)
    }

    /// Replaces a ReplicaSet with its written version (or adds a new one).
    fn put(&mut self, rs: ReplicaSet) {
        match self.rss.iter_mut().find(|r| uid_of(r) == uid_of(&rs)) {
            Some(slot) => *slot = rs,
            None => self.rss.push(rs),
        }
    }
}

/// One sync of one deployment; `d` is the working copy, its resourceVersion kept current
/// with the controller's own writes.
struct Syncing<'a> {
    c: &'a Controller,
    d: Deployment,
    deployments: Api<Deployment>,
    replica_sets: Api<ReplicaSet>,
    requeue: Option<Duration>,
}

impl<'a> Syncing<'a> {
    fn new(c: &'a Controller, d: Deployment) -> Self {
        let namespace = d.namespace().unwrap_or_default();
        Self {
            deployments: Api::namespaced(c.client.clone(), &namespace),
            replica_sets: Api::namespaced(c.client.clone(), &namespace),
            c,
            d,
            requeue: None,
        }
    }

    fn namespace(&self) -> String {
        self.d.namespace().unwrap_or_default()
    }

    fn template(&self) -> PodTemplateSpec {
        self.d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default()
    }

    fn min_ready_seconds(&self) -> i32 {
        self.d
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn paused(&self) -> bool {
        self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
    }

    fn status_mut(&mut self) -> &mut DeploymentStatus {
        self.d.status.get_or_insert_with(DeploymentStatus::default)
    }

    fn record(&self, kind: Type, reason: &str, message: String) {
        self.c.recorder.record(&self.d, kind, reason, message);
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let selector = selector_of(&self.d);
        if selector_is_empty(&selector) {
            self.record(
                Type::Warning,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required."
                    .to_owned(),
            );
            let generation = self.d.metadata.generation.unwrap_or(0);
            if self.status_mut().observed_generation.unwrap_or(0) < generation {
                self.status_mut().observed_generation = Some(generation);
                self.write_status().await?;
            }
            return Ok(());
        }
        let mut rss = self.claim_replica_sets(&selector).await?;
        rss.sort_by(rollout::by_creation);
        let mut family = Family { rss, new_uid: None };
        let pods = self.pods_by_replica_set(&selector, &family);

        if self.d.metadata.deletion_timestamp.is_some() {
            self.sync_revision(&mut family, false).await?;
            return self.sync_status(&family).await;
        }
        self.check_paused_conditions().await?;
        if self.paused() {
            return self.sync(&mut family).await;
        }
        if self.is_scaling_event(&mut family).await? {
            return self.sync(&mut family).await;
        }
        if rollout::is_rolling(&self.d) {
            self.rollout_rolling(&mut family).await
        } else {
            self.rollout_recreate(&mut family, &pods).await
        }
    }

    /// kube's RecheckDeletionTimestamp for the deployment before adopting anything.
    async fn can_adopt(&self) -> Result<(), String> {
        let name = self.d.name_any();
        let fresh = self
            .deployments
            .get(&name)
            .await
            .map_err(|e| api_message(&e))?;
        if fresh.metadata.uid != self.d.metadata.uid {
            return Err(format!(
                "original Deployment {}/{name} is gone: got uid {}, wanted {}",
                self.namespace(),
                fresh.metadata.uid.as_deref().unwrap_or(""),
                self.d.metadata.uid.as_deref().unwrap_or("")
            ));
        }
        if let Some(ts) = &fresh.metadata.deletion_timestamp {
            return Err(format!(
                "{}/{name} has just been deleted at {}",
                self.namespace(),
                ts.0.to_rfc3339()
            ));
        }
        Ok(())
    }

    /// The ReplicaSets this deployment controls, after adopting matching orphans and
    /// releasing those that stopped matching.
    async fn claim_replica_sets(
        &self,
        selector: &LabelSelector,
    ) -> anyhow::Result<Vec<ReplicaSet>> {
        let owner_uid = self.d.metadata.uid.clone().unwrap_or_default();
        let mut claimed = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let mut adoptable: Option<Result<(), String>> = None;
        for rs in self.c.replica_sets.list_in(&self.namespace()) {
            let labels = rs.metadata.labels.clone().unwrap_or_default();
            let rs_uid = uid_of(&rs).to_owned();
            match controllerref::decide(
                &rs.metadata,
                &self.d.metadata,
                selector_matches(selector, &labels),
            ) {
                Claim::Owned => claimed.push((*rs).clone()),
                Claim::Ignore => {}
                Claim::Release => {
                    let patch = controllerref::release_patch(&owner_uid, &rs_uid);
                    match self
                        .replica_sets
                        .patch(
                            &rs.name_any(),
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
                        adoptable = Some(self.can_adopt().await);
                    }
                    if let Some(Err(why)) = &adoptable {
                        errors.push(format!(
                            "can't adopt ReplicaSet {}/{} ({rs_uid}): {why}",
                            self.namespace(),
                            rs.name_any()
                        ));
                        continue;
                    }
                    let patch = controllerref::adopt_patch(&controller_ref(&self.d), &rs_uid);
                    match self
                        .replica_sets
                        .patch(
                            &rs.name_any(),
                            &PatchParams::default(),
                            &Patch::Strategic(&patch),
                        )
                        .await
                    {
                        Ok(adopted) => claimed.push(adopted),
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

    /// The deployment's pods by the uid of the ReplicaSet controlling them.
    fn pods_by_replica_set(
        &self,
        selector: &LabelSelector,
        family: &Family,
    ) -> HashMap<String, Vec<Arc<Pod>>> {
        let uids: HashSet<&str> = family.rss.iter().map(uid_of).collect();
        let mut map: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for pod in self.c.pods.list_in(&self.namespace()) {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            if !selector_matches(selector, &labels) {
                continue;
            }
            if let Some(r) = controller_of(&pod.metadata)
                && uids.contains(r.uid.as_str())
            {
                map.entry(r.uid.clone()).or_default().push(pod.clone());
            }
        }
        map
    }

    async fn write_status(&mut self) -> anyhow::Result<()> {
        let updated = self
            .deployments
            .replace_status(
                &self.d.name_any(),
                &PostParams::default(),
                serde_json::to_vec(&self.d)?,
            )
            .await?;
        self.d.metadata.resource_version = updated.metadata.resource_version;
        Ok(())
    }

    /// Persists the revision annotation and/or the status changed in the working copy.
    async fn save(&mut self, annotation: bool, status: bool) -> anyhow::Result<()> {
        if annotation {
            let revision = self
                .d
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
            let updated = self
                .deployments
                .patch(
                    &self.d.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            self.d.metadata.resource_version = updated.metadata.resource_version;
        }
        if status {
            self.write_status().await?;
        }
        Ok(())
    }

    /// Sets the deployment's revision annotation; whether it changed.
    fn set_revision(&mut self, revision: &str) -> bool {
        let annotations = self
            .d
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        if annotations.get(REVISION).map(String::as_str) == Some(revision) {
            return false;
        }
        annotations.insert(REVISION.to_owned(), revision.to_owned());
        true
    }

    fn max_replicas(&self) -> i32 {
        replicas(&self.d) + rollout::max_surge(&self.d)
    }

    /// kube's getAllReplicaSetsAndSyncRevision: finds the new ReplicaSet (creating it when
    /// asked), brings its revision and annotations up to date, and the deployment's revision.
    async fn sync_revision(&mut self, family: &mut Family, create: bool) -> anyhow::Result<()> {
        let template = self.template();
        family.new_uid = family
            .rss
            .iter()
            .find(|rs| {
                rs.spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| revision::equal_ignore_hash(t, &template))
            })
            .map(|rs| uid_of(rs).to_owned());
        let new_revision = revision::max_revision(family.old()) + 1;

        if let Some(existing) = family.new_rs().cloned() {
            let mut copy = existing;
            let annotations_changed = revision::set_new_rs_annotations(
                &self.d,
                &mut copy,
                new_revision,
                true,
                self.max_replicas(),
            );
            let min_ready = self.min_ready_seconds();
            let spec = copy.spec.get_or_insert_with(ReplicaSetSpec::default);
            if annotations_changed || spec.min_ready_seconds.unwrap_or(0) != min_ready {
                spec.min_ready_seconds = (min_ready != 0).then_some(min_ready);
                let updated = self
                    .replica_sets
                    .replace(&copy.name_any(), &PostParams::default(), &copy)
                    .await?;
                family.put(updated);
                return Ok(());
            }
            let revision = copy
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            let annotation_changed = self.set_revision(&revision);
            let mut status_changed = false;
            if has_progress_deadline(&self.d)
                && get_condition(self.status_mut(), PROGRESSING).is_none()
            {
                let message = format!("Found new replica set \"{}\"", copy.name_any());
                let cond =
                    status::condition(PROGRESSING, "True", status::FOUND_NEW_RS, message, now());
                set_condition(self.status_mut(), cond);
                status_changed = true;
            }
            return self.save(annotation_changed, status_changed).await;
        }
        if !create {
            return Ok(());
        }
        self.create_new_replica_set(family, new_revision).await
    }

    async fn create_new_replica_set(
        &mut self,
        family: &mut Family,
        new_revision: i64,
    ) -> anyhow::Result<()> {
        let template = self.template();
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = revision::template_hash(&template, collision_count);
        let mut rs_template = template.clone();
        rs_template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.to_owned(), hash.clone());
        let mut selector = selector_of(&self.d);
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.to_owned(), hash.clone());
        let name = format!("{}-{hash}", self.d.name_any());
        let min_ready = self.min_ready_seconds();
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace()),
                owner_references: Some(vec![controller_ref(&self.d)]),
                labels: rs_template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: (min_ready != 0).then_some(min_ready),
                selector,
                template: Some(rs_template),
            }),
            status: None,
        };
        let new_replicas = {
            let mut all = family.old();
            all.push(&new_rs);
            rollout::new_rs_new_replicas(&self.d, &all, &new_rs).map_err(anyhow::Error::msg)?
        };
        if let Some(spec) = new_rs.spec.as_mut() {
            spec.replicas = Some(new_replicas);
        }
        revision::set_new_rs_annotations(
            &self.d,
            &mut new_rs,
            new_revision,
            false,
            self.max_replicas(),
        );

        let (created, already_existed) = match self
            .replica_sets
            .create(&PostParams::default(), &new_rs)
            .await
        {
            Ok(created) => (created, false),
            Err(e) if is_already_exists(&e) => {
                let existing = self.replica_sets.get(&name).await?;
                let owner_uid = self.d.metadata.uid.clone().unwrap_or_default();
                let same_template = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| revision::equal_ignore_hash(t, &template));
                if controlled_by(&existing.metadata, &owner_uid) && same_template {
                    (existing, true)
                } else {
                    // A hash collision: the next name comes from a bumped collision count.
                    let status = self.status_mut();
                    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                    if self.write_status().await.is_ok() {
                        tracing::debug!(deployment = %self.d.name_any(), "hash collision: collisionCount bumped");
                    }
                    return Err(e.into());
                }
            }
            Err(e) if matches!(&e, kube::Error::Api(r) if r.code == 403 && r.message.contains("being terminated")) =>
            {
                return Err(e.into());
            }
            Err(e) => {
                let message = format!(
                    "Failed to create new replica set \"{name}\": {}",
                    api_message(&e)
                );
                if has_progress_deadline(&self.d) {
                    let cond = status::condition(
                        PROGRESSING,
                        "False",
                        status::FAILED_RS_CREATE,
                        message.clone(),
                        now(),
                    );
                    set_condition(self.status_mut(), cond);
                    let _ = self.write_status().await;
                }
                self.record(Type::Warning, status::FAILED_RS_CREATE, message);
                return Err(e.into());
            }
        };
        if !already_existed && new_replicas > 0 {
            self.record(
                Type::Normal,
                "ScalingReplicaSet",
                format!(
                    "Scaled up replica set {} from 0 to {new_replicas}",
                    created.name_any()
                ),
            );
        }
        let annotation_changed = self.set_revision(&new_revision.to_string());
        let mut status_changed = false;
        if !already_existed && has_progress_deadline(&self.d) {
            let message = format!("Created new replica set \"{}\"", created.name_any());
            let cond =
                status::condition(PROGRESSING, "True", status::NEW_RS_CREATED, message, now());
            set_condition(self.status_mut(), cond);
            status_changed = true;
        }
        family.new_uid = Some(uid_of(&created).to_owned());
        family.put(created);
        self.save(annotation_changed, status_changed).await
    }

    /// kube's scaleReplicaSet: the new size and the deployment's replica annotations.
    async fn scale_replica_set(
        &self,
        rs: &ReplicaSet,
        to: i32,
    ) -> anyhow::Result<(bool, ReplicaSet)> {
        let from = rs_replicas(rs);
        let resized = from != to;
        let desired = replicas(&self.d);
        let max = self.max_replicas();
        if !resized && !revision::replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let mut copy = rs.clone();
        copy.spec
            .get_or_insert_with(ReplicaSetSpec::default)
            .replicas = Some(to);
        revision::set_replicas_annotations(&mut copy, desired, max);
        let updated = self
            .replica_sets
            .replace(&copy.name_any(), &PostParams::default(), &copy)
            .await?;
        if resized {
            let direction = if from < to { "up" } else { "down" };
            self.record(
                Type::Normal,
                "ScalingReplicaSet",
                format!(
                    "Scaled {direction} replica set {} from {from} to {to}",
                    updated.name_any()
                ),
            );
        }
        Ok((resized, updated))
    }

    /// kube's scaleReplicaSetAndRecordEvent: only when the size changes.
    async fn resize(&self, family: &mut Family, uid: &str, to: i32) -> anyhow::Result<bool> {
        let Some(rs) = family.get(uid).cloned() else {
            return Ok(false);
        };
        if rs_replicas(&rs) == to {
            return Ok(false);
        }
        let (resized, updated) = self.scale_replica_set(&rs, to).await?;
        family.put(updated);
        Ok(resized)
    }

    /// kube's checkPausedConditions: Progressing says Paused / Resumed (never over a timeout).
    async fn check_paused_conditions(&mut self) -> anyhow::Result<()> {
        if !has_progress_deadline(&self.d) {
            return Ok(());
        }
        let reason = get_condition(self.status_mut(), PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(status::TIMED_OUT) {
            return Ok(());
        }
        let paused_set = reason.as_deref() == Some(status::PAUSED);
        let cond = match (self.paused(), paused_set) {
            (true, false) => status::condition(
                PROGRESSING,
                "Unknown",
                status::PAUSED,
                "Deployment is paused".to_owned(),
                now(),
            ),
            (false, true) => status::condition(
                PROGRESSING,
                "Unknown",
                status::RESUMED,
                "Deployment is resumed".to_owned(),
                now(),
            ),
            _ => return Ok(()),
        };
        set_condition(self.status_mut(), cond);
        self.write_status().await
    }

    /// kube's isScalingEvent: an active ReplicaSet was sized for another replica count.
    async fn is_scaling_event(&mut self, family: &mut Family) -> anyhow::Result<bool> {
        self.sync_revision(family, false).await?;
        let want = replicas(&self.d);
        Ok(rollout::active(&family.all()).iter().any(|rs| {
            revision::replicas_annotation(&rs.metadata, DESIRED_REPLICAS).is_some_and(|n| n != want)
        }))
    }

    /// kube's sync: scaling only (paused deployments and resizes).
    async fn sync(&mut self, family: &mut Family) -> anyhow::Result<()> {
        self.sync_revision(family, false).await?;
        self.scale(family).await?;
        if self.paused() {
            self.cleanup(family).await?;
        }
        self.sync_status(family).await
    }

    /// kube's scale: the one running ReplicaSet takes the new size; a saturated new one
    /// empties the old ones; otherwise the change is spread proportionally.
    async fn scale(&self, family: &mut Family) -> anyhow::Result<()> {
        let want = replicas(&self.d);
        let target = {
            let old = family.old();
            rollout::find_active_or_latest(family.new_rs(), &old).map(|rs| uid_of(rs).to_owned())
        };
        if let Some(uid) = target {
            self.resize(family, &uid, want).await?;
            return Ok(());
        }
        if rollout::is_saturated(&self.d, family.new_rs()) {
            let olds: Vec<String> = rollout::active(&family.old())
                .iter()
                .map(|rs| uid_of(rs).to_owned())
                .collect();
            for uid in olds {
                self.resize(family, &uid, 0).await?;
            }
            return Ok(());
        }
        if rollout::is_rolling(&self.d) {
            let plan = rollout::proportional_scale(&self.d, &rollout::active(&family.all()));
            for step in plan {
                if let Some(rs) = family.get(&step.uid).cloned() {
                    let (_, updated) = self.scale_replica_set(&rs, step.replicas).await?;
                    family.put(updated);
                }
            }
        }
        Ok(())
    }

    /// kube's rolloutRolling: one step of growing the new ReplicaSet or shrinking old ones.
    async fn rollout_rolling(&mut self, family: &mut Family) -> anyhow::Result<()> {
        self.sync_revision(family, true).await?;
        let Some(new) = family.new_rs().cloned() else {
            return self.sync_rollout_status(family).await;
        };
        let grow =
            rollout::reconcile_new(&self.d, &family.all(), &new).map_err(anyhow::Error::msg)?;
        if let Some(to) = grow
            && self.resize(family, uid_of(&new), to).await?
        {
            return self.sync_rollout_status(family).await;
        }
        let plan = {
            let old = family.old();
            let new = family.new_rs().unwrap_or(&new);
            rollout::reconcile_old(&self.d, &family.all(), &rollout::active(&old), new)
        };
        if !plan.is_empty() {
            for step in plan {
                self.resize(family, &step.uid, step.replicas).await?;
            }
            return self.sync_rollout_status(family).await;
        }
        if status::complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(family).await?;
        }
        self.sync_rollout_status(family).await
    }

    /// kube's rolloutRecreate: old ReplicaSets to zero, wait for their pods to go, then the
    /// new one to full size.
    async fn rollout_recreate(
        &mut self,
        family: &mut Family,
        pods: &HashMap<String, Vec<Arc<Pod>>>,
    ) -> anyhow::Result<()> {
        self.sync_revision(family, false).await?;
        let olds: Vec<String> = rollout::active(&family.old())
            .iter()
            .map(|rs| uid_of(rs).to_owned())
            .collect();
        let mut scaled_down = false;
        for uid in olds {
            scaled_down |= self.resize(family, &uid, 0).await?;
        }
        if scaled_down || old_pods_running(family, pods) {
            return self.sync_rollout_status(family).await;
        }
        if family.new_rs().is_none() {
            self.sync_revision(family, true).await?;
        }
        if let Some(uid) = family.new_rs().map(|rs| uid_of(rs).to_owned()) {
            self.resize(family, &uid, replicas(&self.d)).await?;
        }
        if status::complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(family).await?;
        }
        self.sync_rollout_status(family).await
    }

    /// kube's cleanupDeployment: the oldest empty ReplicaSets beyond revisionHistoryLimit go.
    async fn cleanup(&self, family: &Family) -> anyhow::Result<()> {
        let Some(limit) = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .filter(|l| *l != i32::MAX)
        else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = family
            .old()
            .into_iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = i64::try_from(cleanable.len()).unwrap_or(i64::MAX) - i64::from(limit);
        if excess <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| rollout::by_revision(a, b));
        for rs in cleanable.iter().take(usize::try_from(excess).unwrap_or(0)) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if actual(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
                || rs.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            match self
                .replica_sets
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// kube's syncDeploymentStatus: counts and Available only.
    async fn sync_status(&mut self, family: &Family) -> anyhow::Result<()> {
        let new_status = status::calculate(&family.all(), family.new_rs(), &self.d, now());
        if status::same(&self.d.status.clone().unwrap_or_default(), &new_status) {
            return Ok(());
        }
        self.d.status = Some(new_status);
        self.write_status().await
    }

    /// kube's syncRolloutStatus: counts, Available, Progressing and ReplicaFailure; with
    /// nothing new, a look again when the progress deadline would pass.
    async fn sync_rollout_status(&mut self, family: &Family) -> anyhow::Result<()> {
        let now = now();
        let new_status = status::rollout(&family.all(), family.new_rs(), &self.d, now);
        if status::same(&self.d.status.clone().unwrap_or_default(), &new_status) {
            self.requeue = status::recheck_after(&self.d, &new_status, now);
            return Ok(());
        }
        self.d.status = Some(new_status);
        self.write_status().await
    }
}

/// kube's oldPodsRunning: old ReplicaSets still report pods, or pods of theirs that have not
/// finished are still there.
fn old_pods_running(family: &Family, pods: &HashMap<String, Vec<Arc<Pod>>>) -> bool {
    if family.old().iter().map(|rs| actual(rs)).sum::<i32>() > 0 {
        return true;
    }
    pods.iter()
        .filter(|(uid, _)| Some(uid.as_str()) != family.new_uid.as_deref())
        .flat_map(|(_, pods)| pods.iter())
        .any(|pod| !matches!(phase(pod), "Failed" | "Succeeded"))
}
