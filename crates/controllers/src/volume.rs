//! Persistent volumes: kube-controller-manager's PV binder and a built-in dynamic provisioner
//! (the storage half of the cloud controller manager's role, as k3s's local-path does it).
//!
//! Binding follows kube's persistentvolume controller: a Pending claim is bound to the
//! smallest Available volume of its class whose access modes, volume mode, capacity and the
//! claim's selector fit (a volume pre-bound to the claim through `claimRef`, or named by the
//! claim's `volumeName`, first). The volume's `claimRef` and phase Bound are written first,
//! then the claim's `volumeName`, annotations and status (phase Bound, capacity, access
//! modes). A volume whose claim is gone is Released, and deleted if its reclaim policy is
//! Delete; a Bound claim whose volume is gone is Lost.
//!
//! Claims of a class whose provisioner is [`PROVISIONER`] get a hostPath volume made for
//! them under the configured directory on the node (`DirectoryOrCreate`, so the kubelet makes
//! it); the class `local-path` with that provisioner is created, as the default class, when
//! no default class exists.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rkube_api::validate_types::Quantity;
use serde_json::json;

use crate::batchutil::is_not_found;
use crate::events::Type;
use crate::informer::{Informer, key_of, split_key};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

/// The built-in provisioner's name.
pub const PROVISIONER: &str = "rkube.io/local-path";
/// The class made for it.
pub const CLASS: &str = "local-path";
const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";

struct Controller {
    ctx: Context,
    claims: Informer<PersistentVolumeClaim>,
    volumes: Informer<PersistentVolume>,
    classes: Informer<StorageClass>,
    /// Where provisioned volumes live on the nodes.
    local_path: String,
}

/// Queue keys: claims and volumes share one queue.
fn claim_key(key: &str) -> String {
    format!("claim:{key}")
}
fn volume_key(name: &str) -> String {
    format!("volume:{name}")
}

pub fn start(ctx: &Context, options: &Options) {
    let claims = ctx.informer::<PersistentVolumeClaim>();
    let volumes = ctx.informer::<PersistentVolume>();
    let classes = ctx.informer::<StorageClass>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&claims, ctx.stop.clone(), move |change| {
        let claim = change.object();
        q.add(claim_key(&key_of(claim.as_ref())));
        // The claim's volume is Released when the claim goes.
        if let Some(volume) = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) {
            q.add(volume_key(volume));
        }
    });
    let q = queue.clone();
    let all_claims = claims.clone();
    on_change(&volumes, ctx.stop.clone(), move |change| {
        let pv = change.object();
        q.add(volume_key(&pv.name_any()));
        // A volume that appears or frees up may fit a pending claim.
        for claim in all_claims.list() {
            if phase_of_claim(&claim) == "Pending" {
                q.add(claim_key(&key_of(claim.as_ref())));
            }
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        claims,
        volumes,
        classes,
        local_path: options.local_path_dir.clone(),
    });
    let setup = controller.clone();
    tokio::spawn(async move {
        setup.classes.synced().await;
        if let Err(err) = setup.ensure_default_class().await {
            tracing::warn!("cannot create the {CLASS} StorageClass: {err:#}");
        }
    });
    // One worker: binding takes a volume from a shared pool.
    run_workers(controller, queue, 1, ctx.stop.clone());
}

fn phase_of_claim(claim: &PersistentVolumeClaim) -> &str {
    claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn phase_of_volume(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn class_of_claim(claim: &PersistentVolumeClaim) -> String {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

fn class_of_volume(pv: &PersistentVolume) -> String {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

fn request_of(claim: &PersistentVolumeClaim) -> Option<Quantity> {
    let q = claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")?;
    Quantity::parse(&q.0).ok()
}

fn capacity_of(pv: &PersistentVolume) -> Option<Quantity> {
    let q = pv.spec.as_ref()?.capacity.as_ref()?.get("storage")?;
    Quantity::parse(&q.0).ok()
}

/// Whether `pv` can hold `claim` (kube's checkVolumeSatisfyClaim plus the selector).
pub fn fits(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let (Some(spec), Some(claim_spec)) = (pv.spec.as_ref(), claim.spec.as_ref()) else {
        return false;
    };
    if pv.metadata.deletion_timestamp.is_some() || class_of_volume(pv) != class_of_claim(claim) {
        return false;
    }
    let mode = |m: &Option<String>| m.clone().unwrap_or_else(|| "Filesystem".to_owned());
    if mode(&spec.volume_mode) != mode(&claim_spec.volume_mode) {
        return false;
    }
    let modes = spec.access_modes.clone().unwrap_or_default();
    if !claim_spec
        .access_modes
        .iter()
        .flatten()
        .all(|m| modes.contains(m))
    {
        return false;
    }
    match (capacity_of(pv), request_of(claim)) {
        (Some(cap), Some(req)) if req.greater_than(&cap) => return false,
        (None, Some(_)) => return false,
        _ => {}
    }
    if let Some(selector) = &claim_spec.selector {
        let labels = pv.metadata.labels.clone().unwrap_or_default();
        if !crate::batchutil::selector_matches(selector, &labels) {
            return false;
        }
    }
    true
}

/// Whether the volume is free for this claim: unclaimed and Available, or pre-bound to it.
fn free_for(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
        None => phase_of_volume(pv) != "Released" && phase_of_volume(pv) != "Failed",
        Some(r) => {
            r.namespace == claim.metadata.namespace
                && r.name == claim.metadata.name
                && r.uid
                    .as_ref()
                    .is_none_or(|u| Some(u) == claim.metadata.uid.as_ref())
        }
    }
}

impl Controller {
    async fn ensure_default_class(&self) -> anyhow::Result<()> {
        let has_default = self.classes.list().iter().any(|c| {
            c.metadata.annotations.as_ref().is_some_and(|a| {
                a.get("storageclass.kubernetes.io/is-default-class")
                    .is_some_and(|v| v == "true")
            })
        });
        if has_default || self.classes.get(CLASS).is_some() {
            return Ok(());
        }
        let class: StorageClass = serde_json::from_value(json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }))?;
        let api: Api<StorageClass> = Api::all(self.ctx.client.clone());
        match api.create(&PostParams::default(), &class).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn sync_claim(&self, key: &str) -> anyhow::Result<Next> {
        let Some(claim) = self.claims.get(key) else {
            return Ok(Next::Done);
        };
        if claim.metadata.deletion_timestamp.is_some() {
            return Ok(Next::Done);
        }
        let volume_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
        let bind_completed = claim
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(BIND_COMPLETED));
        if phase_of_claim(&claim) == "Bound" || (bind_completed && volume_name.is_some()) {
            let bound = volume_name
                .as_deref()
                .and_then(|v| self.volumes.get(v))
                .is_some();
            if !bound && self.volumes.has_synced() {
                self.claim_status(&claim, json!({"phase": "Lost"})).await?;
                self.ctx.recorder.record(
                    claim.as_ref(),
                    Type::Warning,
                    "ClaimLost",
                    "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                );
            }
            return Ok(Next::Done);
        }
        // Named volume first, then pre-bound volumes, then the smallest that fits.
        let volumes = self.volumes.list();
        let candidate = match &volume_name {
            Some(name) => volumes
                .iter()
                .find(|pv| pv.name_any() == *name && fits(pv, &claim) && free_for(pv, &claim))
                .cloned(),
            None => {
                let mut fitting: Vec<_> = volumes
                    .iter()
                    .filter(|pv| fits(pv, &claim) && free_for(pv, &claim))
                    .cloned()
                    .collect();
                fitting.sort_by(|a, b| {
                    let pre = |pv: &PersistentVolume| {
                        pv.spec
                            .as_ref()
                            .and_then(|s| s.claim_ref.as_ref())
                            .is_none()
                    };
                    pre(a)
                        .cmp(&pre(b))
                        .then_with(|| match (capacity_of(a), capacity_of(b)) {
                            (Some(x), Some(y)) if x.greater_than(&y) => std::cmp::Ordering::Greater,
                            (Some(x), Some(y)) if y.greater_than(&x) => std::cmp::Ordering::Less,
                            _ => a.name_any().cmp(&b.name_any()),
                        })
                });
                fitting.into_iter().next()
            }
        };
        if let Some(pv) = candidate {
            self.bind(&pv, &claim).await?;
            return Ok(Next::Done);
        }
        if volume_name.is_some() {
            return Ok(Next::Done);
        }
        self.provision_or_wait(&claim).await
    }

    async fn provision_or_wait(&self, claim: &PersistentVolumeClaim) -> anyhow::Result<Next> {
        let class_name = class_of_claim(claim);
        let rec = &self.ctx.recorder;
        if class_name.is_empty() {
            rec.record(
                claim,
                Type::Normal,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            );
            return Ok(Next::Done);
        }
        let Some(class) = self.classes.get(&class_name) else {
            rec.record(
                claim,
                Type::Warning,
                "ProvisioningFailed",
                format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
            );
            return Ok(Next::After(Duration::from_secs(15)));
        };
        if class.provisioner != PROVISIONER {
            rec.record(
                claim,
                Type::Normal,
                "ExternalProvisioning",
                format!(
                    "Waiting for a volume to be created either by the external provisioner '{}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
                    class.provisioner
                ),
            );
            return Ok(Next::Done);
        }
        let uid = claim.metadata.uid.clone().unwrap_or_default();
        let namespace = claim.namespace().unwrap_or_default();
        let name = format!("pvc-{uid}");
        let path = format!(
            "{}/{name}_{namespace}_{}",
            self.local_path.trim_end_matches('/'),
            claim.name_any()
        );
        let request = claim
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.clone())
            .unwrap_or_else(|| "1Gi".to_owned());
        let pv: PersistentVolume = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": name,
                "annotations": {PROVISIONED_BY: PROVISIONER},
            },
            "spec": {
                "capacity": {"storage": request},
                "accessModes": claim.spec.as_ref().and_then(|s| s.access_modes.clone()).unwrap_or_default(),
                "volumeMode": claim.spec.as_ref().and_then(|s| s.volume_mode.clone()).unwrap_or_else(|| "Filesystem".to_owned()),
                "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".to_owned()),
                "storageClassName": class_name,
                "hostPath": {"path": path, "type": "DirectoryOrCreate"},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": namespace,
                    "name": claim.name_any(),
                    "uid": uid,
                },
            },
        }))?;
        let api: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
        match api.create(&PostParams::default(), &pv).await {
            Ok(_) => rec.record(
                claim,
                Type::Normal,
                "ProvisioningSucceeded",
                format!("Successfully provisioned volume {name} using {PROVISIONER}"),
            ),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
        // The new volume comes back through the informer and is bound then.
        Ok(Next::Done)
    }

    async fn bind(
        &self,
        pv: &PersistentVolume,
        claim: &PersistentVolumeClaim,
    ) -> anyhow::Result<()> {
        let pv_name = pv.name_any();
        let volumes: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
        let pre_bound = pv
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_some();
        let mut annotations = BTreeMap::new();
        if !pre_bound {
            annotations.insert(BOUND_BY_CONTROLLER, "yes");
        }
        let patch = json!({
            "metadata": {"annotations": annotations, "resourceVersion": pv.metadata.resource_version},
            "spec": {"claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": claim.namespace(),
                "name": claim.name_any(),
                "uid": claim.metadata.uid,
                "resourceVersion": claim.metadata.resource_version,
            }},
        });
        volumes
            .patch(&pv_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        volumes
            .patch_status(
                &pv_name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Bound"}})),
            )
            .await?;
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(
            self.ctx.client.clone(),
            &claim.namespace().unwrap_or_default(),
        );
        let mut claim_annotations = BTreeMap::from([(BIND_COMPLETED, "yes")]);
        if claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_ref())
            .is_none()
        {
            claim_annotations.insert(BOUND_BY_CONTROLLER, "yes");
        }
        let patch = json!({
            "metadata": {"annotations": claim_annotations},
            "spec": {"volumeName": pv_name},
        });
        claims
            .patch(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        let spec = pv.spec.clone().unwrap_or_default();
        self.claim_status(
            claim,
            json!({
                "phase": "Bound",
                "accessModes": spec.access_modes,
                "capacity": spec.capacity,
            }),
        )
        .await?;
        tracing::info!(claim = %key_of(claim), volume = %pv_name, "bound");
        Ok(())
    }

    async fn claim_status(
        &self,
        claim: &PersistentVolumeClaim,
        status: serde_json::Value,
    ) -> anyhow::Result<()> {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(
            self.ctx.client.clone(),
            &claim.namespace().unwrap_or_default(),
        );
        claims
            .patch_status(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await?;
        Ok(())
    }

    /// A volume whose claim is gone: Released, then deleted when its policy says Delete.
    async fn sync_volume(&self, name: &str) -> anyhow::Result<Next> {
        let Some(pv) = self.volumes.get(name) else {
            return Ok(Next::Done);
        };
        let Some(claim_ref) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
            if phase_of_volume(&pv) != "Available" {
                self.volume_phase(name, "Available").await?;
            }
            return Ok(Next::Done);
        };
        if !self.claims.has_synced() || claim_ref.uid.is_none() {
            return Ok(Next::Done);
        }
        let key = format!(
            "{}/{}",
            claim_ref.namespace.clone().unwrap_or_default(),
            claim_ref.name.clone().unwrap_or_default()
        );
        let claim_alive = self
            .claims
            .get(&key)
            .is_some_and(|c| c.metadata.uid == claim_ref.uid);
        if claim_alive {
            return Ok(Next::Done);
        }
        // Confirm with the API server before acting on a stale cache.
        let (ns, claim_name) = split_key(&key);
        let claims: Api<PersistentVolumeClaim> =
            Api::namespaced(self.ctx.client.clone(), ns.unwrap_or_default());
        if let Some(fresh) = claims.get_opt(claim_name).await?
            && fresh.metadata.uid == claim_ref.uid
        {
            return Ok(Next::Done);
        }
        if phase_of_volume(&pv) != "Released" {
            self.volume_phase(name, "Released").await?;
        }
        let policy = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.clone())
            .unwrap_or_else(|| "Retain".to_owned());
        if policy == "Delete" {
            let api: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(volume = %name, "deleted the released volume"),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(Next::Done)
    }

    async fn volume_phase(&self, name: &str, phase: &str) -> anyhow::Result<()> {
        let api: Api<PersistentVolume> = Api::all(self.ctx.client.clone());
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await?;
        Ok(())
    }
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "persistentvolume-binder"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        if !self.volumes.has_synced() || !self.claims.has_synced() {
            return Ok(Next::After(Duration::from_millis(200)));
        }
        match key.split_once(':') {
            Some(("claim", k)) => self.sync_claim(k).await,
            Some(("volume", k)) => self.sync_volume(k).await,
            _ => Ok(Next::Done),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pv(cap: &str, modes: &[&str], class: &str) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": "pv", "labels": {"tier": "fast"}},
            "spec": {"capacity": {"storage": cap}, "accessModes": modes, "storageClassName": class},
        }))
        .unwrap()
    }

    fn claim(req: &str, modes: &[&str], class: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": "c", "namespace": "default", "uid": "u1"},
            "spec": {"resources": {"requests": {"storage": req}}, "accessModes": modes, "storageClassName": class},
        }))
        .unwrap()
    }

    #[test]
    fn a_volume_fits_by_class_modes_capacity_and_selector() {
        let rwo = ["ReadWriteOnce"];
        assert!(fits(&pv("1Gi", &rwo, ""), &claim("500Mi", &rwo, "")));
        assert!(fits(&pv("1Gi", &rwo, ""), &claim("1Gi", &rwo, "")));
        assert!(!fits(&pv("1Gi", &rwo, ""), &claim("2Gi", &rwo, "")));
        assert!(!fits(&pv("1Gi", &rwo, "fast"), &claim("1Gi", &rwo, "")));
        assert!(!fits(
            &pv("1Gi", &rwo, ""),
            &claim("1Gi", &["ReadWriteMany"], "")
        ));
        let mut selective = claim("1Gi", &rwo, "");
        selective.spec.as_mut().unwrap().selector =
            serde_json::from_value(json!({"matchLabels": {"tier": "slow"}})).unwrap();
        assert!(!fits(&pv("1Gi", &rwo, ""), &selective));
    }

    #[test]
    fn a_volume_claimed_by_another_is_not_free() {
        let rwo = ["ReadWriteOnce"];
        let mut taken = pv("1Gi", &rwo, "");
        taken.spec.as_mut().unwrap().claim_ref =
            serde_json::from_value(json!({"namespace": "default", "name": "other", "uid": "u2"}))
                .unwrap();
        assert!(!free_for(&taken, &claim("1Gi", &rwo, "")));
        taken.spec.as_mut().unwrap().claim_ref =
            serde_json::from_value(json!({"namespace": "default", "name": "c"})).unwrap();
        assert!(free_for(&taken, &claim("1Gi", &rwo, "")));
    }
}
