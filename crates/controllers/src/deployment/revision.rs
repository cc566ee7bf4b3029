//! A deployment's revisions: the name of each template's ReplicaSet (`NAME-<pod-template-hash>`),
//! when two templates are the same revision, and the annotations that number revisions and
//! carry the replica counts a ReplicaSet was sized for.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

/// The label that tells the ReplicaSets (and pods) of one deployment's templates apart.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// A ReplicaSet's revision number (and the deployment's current one).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revision numbers of a ReplicaSet that was rolled back to.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The deployment's replicas when the ReplicaSet was last sized.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// The deployment's replicas plus its surge when the ReplicaSet was last sized.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The user's own note on why a revision was made, shown by `kubectl rollout history`.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// kube's limit on the length of the revision-history annotation.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// The deployment annotations never copied to its ReplicaSets.
fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | DEPRECATED_ROLLBACK_TO
    )
}

/// A template as JSON with what Go's semantic equality ignores removed: nulls, and empty
/// maps and lists (nil and empty are the same to kube), so a template that went through
/// kubectl's Go serialization (`resources: {}`, `creationTimestamp: null`) is still the
/// same template.
fn normalized(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let out: serde_json::Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| normalized(v).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let out: Vec<Value> = items
                .iter()
                .map(|v| normalized(v).unwrap_or(Value::Null))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// JSON with object keys sorted, whatever map the JSON library uses.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(*k) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn template_without_hash(template: &PodTemplateSpec) -> Value {
    let mut template = template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    serde_json::to_value(&template)
        .ok()
        .and_then(|v| normalized(&v))
        .unwrap_or(Value::Null)
}

/// kube's rand.SafeEncodeString alphabet: no vowels, no look-alikes.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// kube's ComputeHash: FNV-1a (32 bit) over the template, then the collision count as eight
/// little-endian bytes, the decimal sum written in the safe alphabet. (kube feeds the hash
/// Go's dump of the struct; rkube feeds it the canonical JSON of the template, so names are
/// stable but not byte-identical to kube's.)
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut text = String::new();
    let value = serde_json::to_value(template)
        .ok()
        .and_then(|v| normalized(&v))
        .unwrap_or(Value::Null);
    canonical(&value, &mut text);
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(text.as_bytes());
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&count.to_le_bytes());
        feed(&bytes);
    }
    h.to_string()
        .bytes()
        .map(|d| char::from(SAFE_ALPHABET[usize::from(d) % SAFE_ALPHABET.len()]))
        .collect()
}

/// kube's EqualIgnoreHash: the same template once the pod-template-hash label is ignored.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    template_without_hash(a) == template_without_hash(b)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// A ReplicaSet's revision: 0 when unannotated, `None` when the annotation is not a number.
pub fn revision(meta: &ObjectMeta) -> Option<i64> {
    match annotation(meta, REVISION) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

/// The highest revision among replica sets (invalid ones are skipped).
pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter()
        .filter_map(|rs| revision(&rs.metadata))
        .max()
        .unwrap_or(0)
        .max(0)
}

/// A replica-count annotation, if present and a number.
pub fn replicas_annotation(meta: &ObjectMeta, key: &str) -> Option<i32> {
    annotation(meta, key)?.parse().ok()
}

/// Whether the desired/max replica annotations differ from these counts.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// Sets the desired/max replica annotations; whether anything changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.to_owned(), value);
            changed = true;
        }
    }
    changed
}

/// Copies the deployment's annotations (but the deployment-only ones) to the ReplicaSet;
/// whether anything changed.
fn copy_deployment_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// kube's SetNewReplicaSetAnnotations: the deployment's annotations, the revision (raised to
/// `new_revision` if lower, the old number going to the revision history when this is a
/// roll back to an existing ReplicaSet) and, for a ReplicaSet about to be created, the
/// replica annotations. Whether anything changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
    max_replicas: i32,
) -> bool {
    let mut changed = copy_deployment_annotations(d, rs);
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = annotations.get(REVISION).cloned();
    let old_number = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_number < new_revision {
        annotations.insert(REVISION.to_owned(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = annotations
                .get(REVISION_HISTORY)
                .cloned()
                .unwrap_or_default();
            if history.is_empty() {
                annotations.insert(REVISION_HISTORY.to_owned(), old);
            } else {
                let mut entries: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < entries.len() {
                    total -= entries[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    entries = entries.split_off(start);
                    entries.push(&old);
                    annotations.insert(REVISION_HISTORY.to_owned(), entries.join(","));
                }
            }
        }
    }
    if !exists {
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        if set_replicas_annotations(rs, desired, max_replicas) {
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use serde_json::json;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        }
    }

    #[test]
    fn the_hash_is_fnv32a_in_the_safe_alphabet_and_moves_with_collisions() {
        let t = template("nginx:1");
        let h = template_hash(&t, None);
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_eq!(h, template_hash(&t.clone(), None));
        assert_ne!(h, template_hash(&template("nginx:2"), None));
        assert_ne!(h, template_hash(&t, Some(1)));
        assert_ne!(template_hash(&t, Some(1)), template_hash(&t, Some(2)));
        // Go's nil and empty are the same template.
        let mut empty_resources = t.clone();
        if let Some(spec) = empty_resources.spec.as_mut() {
            spec.containers[0].resources = Some(Default::default());
            spec.containers[0].command = Some(vec![]);
        }
        assert_eq!(h, template_hash(&empty_resources, None));
    }

    #[test]
    fn fnv32a_matches_the_reference_vectors() {
        // FNV-1a 32 of "" and "a" are 0x811c9dc5 and 0xe40c292c; JSON null hashes as "null".
        let encode = |n: u32| -> String {
            n.to_string()
                .bytes()
                .map(|d| char::from(SAFE_ALPHABET[usize::from(d) % SAFE_ALPHABET.len()]))
                .collect()
        };
        // "null" is FNV-1a 0x77074ba4.
        let t: PodTemplateSpec = serde_json::from_value(json!({})).unwrap_or_default();
        assert_eq!(template_hash(&t, None), encode(0x7707_4ba4));
    }

    #[test]
    fn templates_are_equal_ignoring_the_hash_label_and_go_empties() {
        let a = template("nginx:1");
        let mut b = a.clone();
        if let Some(labels) = b.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert(POD_TEMPLATE_HASH.into(), "abc".into());
        }
        assert!(equal_ignore_hash(&a, &b));
        let from_kubectl: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1", "resources": {}}]}
        }))
        .unwrap_or_default();
        assert!(equal_ignore_hash(&a, &from_kubectl));
        assert!(!equal_ignore_hash(&a, &template("nginx:2")));
    }

    fn deployment(annotations: &[(&str, &str)]) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn new_replica_sets_get_revision_copied_annotations_and_sizes() {
        let d = deployment(&[
            (CHANGE_CAUSE, "bump"),
            (LAST_APPLIED, "{}"),
            (REVISION, "7"),
        ]);
        let mut rs = ReplicaSet::default();
        assert!(set_new_rs_annotations(&d, &mut rs, 2, false, 4));
        let a = rs.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("2"));
        assert_eq!(a.get(CHANGE_CAUSE).map(String::as_str), Some("bump"));
        assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
        assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("4"));
        assert!(!a.contains_key(LAST_APPLIED));
        assert!(!a.contains_key(REVISION_HISTORY));
        // Nothing new: nothing changes.
        assert!(!set_new_rs_annotations(&d, &mut rs, 2, true, 4));
        // Rolled back to: the old number goes to the history.
        assert!(set_new_rs_annotations(&d, &mut rs, 5, true, 4));
        assert!(set_new_rs_annotations(&d, &mut rs, 9, true, 4));
        let a = rs.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(a.get(REVISION).map(String::as_str), Some("9"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("2,5"));
    }

    #[test]
    fn revisions_parse_and_the_maximum_skips_garbage() {
        let rs = |rev: Option<&str>| ReplicaSet {
            metadata: ObjectMeta {
                annotations: rev.map(|r| [(REVISION.to_owned(), r.to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..ReplicaSet::default()
        };
        let list = [rs(Some("3")), rs(None), rs(Some("x")), rs(Some("11"))];
        assert_eq!(revision(&list[1].metadata), Some(0));
        assert_eq!(revision(&list[2].metadata), None);
        assert_eq!(max_revision(&list), 11);
    }
}
