//! ControllerRevisions, the rollout history of DaemonSets and StatefulSets (kube's
//! pkg/controller/history): each distinct pod template is kept as a revision whose data is
//! the strategic merge patch that puts it back (`{"spec":{"template":{..., "$patch":
//! "replace"}}}`), which is what `kubectl rollout history` prints and `kubectl rollout undo`
//! applies.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::batchutil::{controlled_by, is_already_exists, is_not_found};

/// The label on revisions (and DaemonSet/StatefulSet pods) naming the revision's hash.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// The patch that restores a template, as kube's controllers and kubectl compute it (object
/// keys sorted).
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".to_owned(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The template a revision's data restores.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision
        .data
        .as_ref()?
        .0
        .get("spec")?
        .get("template")?
        .clone();
    if let Some(t) = template.as_object_mut() {
        t.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

/// kube's rand.SafeEncodeString alphabet: no vowels, no confusable characters.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The hash naming a revision: FNV-1a (32 bit) of the data and the collision count, written
/// in kube's safe alphabet.
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(data.to_string().as_bytes());
    if let Some(c) = collision_count {
        feed(&c.to_le_bytes());
    }
    h.to_string()
        .bytes()
        .map(|d| char::from(SAFE_ALPHABET[usize::from(d) % SAFE_ALPHABET.len()]))
        .collect()
}

/// The revisions an owner controls, oldest revision number first.
pub fn owned(
    revisions: &[Arc<ControllerRevision>],
    owner_uid: &str,
) -> Vec<Arc<ControllerRevision>> {
    let mut out: Vec<Arc<ControllerRevision>> = revisions
        .iter()
        .filter(|r| controlled_by(&r.metadata, owner_uid))
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    out
}

/// What an owner's history looks like after [`ensure`].
pub struct History {
    /// The revision of the owner's current template.
    pub update: ControllerRevision,
    /// Every revision the owner controls, the update revision included.
    pub all: Vec<ControllerRevision>,
    /// A raised collision count the owner's status must record.
    pub collision_count: Option<i32>,
}

/// The revision for `data`: an existing one with the same data (renumbered to be the newest
/// if it is an old one, as after a rollback), or a new one named `PARENT-HASH`. A name taken by
/// different data raises the collision count and tries again.
pub async fn ensure(
    api: &Api<ControllerRevision>,
    owner: OwnerReference,
    labels: BTreeMap<String, String>,
    annotations: Option<BTreeMap<String, String>>,
    data: Value,
    existing: Vec<Arc<ControllerRevision>>,
    mut collision_count: Option<i32>,
) -> Result<History, kube::Error> {
    let mut all: Vec<ControllerRevision> = existing.iter().map(|r| (**r).clone()).collect();
    let max = all.iter().map(|r| r.revision).max().unwrap_or(0);
    let mut bumped = false;
    if let Some(pos) = all
        .iter()
        .rposition(|r| r.data.as_ref().is_some_and(|d| d.0 == data))
    {
        if all[pos].revision < max {
            let patch = json!({"revision": max + 1});
            let updated = api
                .patch(
                    &all[pos].name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            all[pos] = updated;
        }
        return Ok(History {
            update: all[pos].clone(),
            all,
            collision_count: None,
        });
    }
    for _ in 0..8 {
        let h = hash(&data, collision_count);
        let mut rev_labels = labels.clone();
        rev_labels.insert(REVISION_HASH_LABEL.to_owned(), h.clone());
        let revision = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(format!("{}-{h}", owner.name)),
                labels: Some(rev_labels),
                annotations: annotations.clone(),
                owner_references: Some(vec![owner.clone()]),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(data.clone())),
            revision: max + 1,
        };
        match api.create(&PostParams::default(), &revision).await {
            Ok(created) => {
                all.push(created.clone());
                return Ok(History {
                    update: created,
                    all,
                    collision_count: bumped.then_some(collision_count.unwrap_or(0)),
                });
            }
            Err(err) if is_already_exists(&err) => {
                let name = revision.name_any();
                let taken = api.get(&name).await?;
                let ours = controlled_by(&taken.metadata, &owner.uid);
                if ours && taken.data.as_ref().is_some_and(|d| d.0 == data) {
                    all.retain(|r| r.name_any() != name);
                    all.push(taken.clone());
                    return Ok(History {
                        update: taken,
                        all,
                        collision_count: bumped.then_some(collision_count.unwrap_or(0)),
                    });
                }
                collision_count = Some(collision_count.unwrap_or(0) + 1);
                bumped = true;
            }
            Err(err) => return Err(err),
        }
    }
    Err(kube::Error::Api(kube::core::ErrorResponse {
        status: "Failure".to_owned(),
        message: "too many ControllerRevision hash collisions".to_owned(),
        reason: "Conflict".to_owned(),
        code: 409,
    }))
}

/// Deletes the oldest revisions beyond `limit` that no live pod uses and that are neither the
/// current nor the update revision.
pub async fn truncate(
    api: &Api<ControllerRevision>,
    all: &[ControllerRevision],
    in_use: &HashSet<String>,
    limit: i32,
) -> Result<(), kube::Error> {
    let mut candidates: Vec<&ControllerRevision> = all
        .iter()
        .filter(|r| !in_use.contains(&r.name_any()))
        .collect();
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    if candidates.len() <= limit {
        return Ok(());
    }
    candidates.sort_by_key(|r| r.revision);
    let excess = candidates.len() - limit;
    for revision in candidates.into_iter().take(excess) {
        match api
            .delete(&revision.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    #[test]
    fn the_patch_replaces_the_template_and_round_trips() {
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("nginx".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        };
        let patch = template_patch(&template);
        assert_eq!(patch["spec"]["template"]["$patch"], "replace");
        let revision = ControllerRevision {
            data: Some(RawExtension(patch.clone())),
            ..ControllerRevision::default()
        };
        assert_eq!(template_of(&revision), Some(template));
        let h = hash(&patch, None);
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_ne!(h, hash(&patch, Some(1)));
        assert_eq!(h, hash(&patch, None));
    }
}
