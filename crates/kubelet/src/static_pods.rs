//! Static pods: pods a node runs from manifest files in its `--pod-manifest-path`
//! directory (kube's file pod source), each shown in the API as a mirror pod (kube's mirror
//! client), which carries the `kubernetes.io/config.mirror` annotation and is owned by the
//! Node.
//!
//! The directory is read every `--file-check-frequency`. Each manifest (YAML or JSON, one
//! Pod; files starting with `.` are ignored) gets kube's defaults for file pods: the name
//! `NAME-NODENAME`, the namespace `default` if none, the node's name, a toleration of every
//! NoExecute taint, and a uid hashed from the manifest, the file and the node, also its
//! `kubernetes.io/config.hash`. A new manifest creates its mirror pod; a changed one replaces
//! it (its pod is stopped and started anew); a removed one deletes it.
//!
//! Unlike kube's kubelet, rkube's runs a static pod through its mirror pod like any other
//! pod bound to the node: a static pod starts once the API server has its mirror, and a
//! mirror pod deleted through the API stops its pod until the mirror is made again (at the
//! next check).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::chrono::{SecondsFormat, Utc};
use kube::api::{Api, DeleteParams, PostParams};
use rkube_controllers::informer::Informer;

use crate::agent::{NodeHandle, Shared};

pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
pub const HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
pub const SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
pub const SEEN_ANNOTATION: &str = "kubernetes.io/config.seen";

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a Pod manifest: {reason}")]
    Parse { path: PathBuf, reason: String },
}

/// The static pod a manifest describes, with kube's defaults for file pods on `node`.
pub fn from_manifest(path: &Path, content: &[u8], node: &str) -> Result<Pod, ManifestError> {
    let parse_error = |reason: String| ManifestError::Parse {
        path: path.to_owned(),
        reason,
    };
    let value: serde_json::Value =
        serde_yaml::from_slice(content).map_err(|e| parse_error(e.to_string()))?;
    if value["kind"] != "Pod" || value["apiVersion"] != "v1" {
        return Err(parse_error(format!(
            "kind {} apiVersion {}, want Pod v1",
            value["kind"], value["apiVersion"]
        )));
    }
    let mut pod: Pod = serde_json::from_value(value).map_err(|e| parse_error(e.to_string()))?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(parse_error("metadata.name is required".into()));
    }
    // kube's uid for file pods: a hash of the manifest, the node and the file.
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(content);
    digest.update(node.as_bytes());
    digest.update(path.as_os_str().as_encoded_bytes());
    let hash: String = digest.finish().as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    pod.metadata.name = Some(format!("{name}-{}", node.to_lowercase()));
    if pod.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        pod.metadata.namespace = Some("default".into());
    }
    pod.metadata.uid = Some(hash.clone());
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(HASH_ANNOTATION.into(), hash);
    annotations.insert(SOURCE_ANNOTATION.into(), "file".into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_owned());
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    tolerations.push(Toleration {
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        ..Toleration::default()
    });
    pod.status = None;
    Ok(pod)
}

/// The mirror pod the API gets for a static pod: its uid moves to the mirror annotation,
/// and the Node owns it.
pub fn mirror_of(pod: &Pod, node: &str, node_uid: &str) -> Pod {
    let mut mirror = pod.clone();
    let hash = mirror.metadata.uid.take().unwrap_or_default();
    let annotations = mirror
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    annotations.insert(MIRROR_ANNOTATION.into(), hash);
    annotations.insert(
        SEEN_ANNOTATION.into(),
        Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
    );
    mirror.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.to_owned(),
        uid: node_uid.to_owned(),
        controller: Some(true),
        ..OwnerReference::default()
    }]);
    mirror
}

/// The static pods of `dir`, by namespace and name; unusable manifests are logged once.
fn read_manifests(dir: &Path, node: &str, told: &mut BTreeMap<PathBuf, String>) -> Vec<Pod> {
    let mut pods = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return pods;
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    let mut seen = BTreeMap::new();
    for path in paths {
        let parsed = std::fs::read(&path)
            .map_err(|source| ManifestError::Read {
                path: path.clone(),
                source,
            })
            .and_then(|content| from_manifest(&path, &content, node));
        match parsed {
            Ok(pod) => pods.push(pod),
            Err(err) => {
                let message = err.to_string();
                if told.get(&path) != Some(&message) {
                    tracing::warn!("static pod manifest skipped: {message}");
                }
                seen.insert(path, message);
            }
        }
    }
    *told = seen;
    pods
}

fn key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

fn mirror_hash(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(MIRROR_ANNOTATION)
        .map(String::as_str)
}

/// Keeps the node's mirror pods in step with its manifest directory until the agent stops.
pub(crate) async fn run(
    shared: Arc<Shared>,
    node: Arc<NodeHandle>,
    dir: PathBuf,
    every: Duration,
    pods: Informer<Pod>,
) {
    if let Err(err) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), "no static pods: {err}");
        return;
    }
    tracing::info!(dir = %dir.display(), "watching for static pod manifests");
    pods.synced().await;
    let mut told = BTreeMap::new();
    loop {
        if let Some(node_uid) = node.uid() {
            let desired = read_manifests(&dir, node.name(), &mut told);
            sync(&shared, &node, &node_uid, &desired, &pods).await;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shared.stop.stopped() => return,
        }
    }
}

/// One pass: create missing mirrors, replace outdated ones, delete those of removed
/// manifests.
async fn sync(
    shared: &Shared,
    node: &NodeHandle,
    node_uid: &str,
    desired: &[Pod],
    pods: &Informer<Pod>,
) {
    let mirrors: BTreeMap<(String, String), Arc<Pod>> = pods
        .list()
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.name()))
        .filter(|p| mirror_hash(p).is_some())
        .map(|p| (key(&p), p))
        .collect();
    for pod in desired {
        let (namespace, name) = key(pod);
        let api: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
        match mirrors.get(&(namespace.clone(), name.clone())) {
            Some(mirror) if mirror_hash(mirror) == pod.metadata.uid.as_deref() => {}
            // Being deleted: made again once it is gone.
            Some(mirror) if mirror.metadata.deletion_timestamp.is_some() => {}
            Some(_) => {
                tracing::info!(pod = %format!("{namespace}/{name}"), "static pod manifest changed: replacing its pod");
                if let Err(err) = api.delete(&name, &DeleteParams::default()).await {
                    tracing::warn!("deleting an outdated mirror pod {namespace}/{name}: {err}");
                }
            }
            None => {
                let mirror = mirror_of(pod, node.name(), node_uid);
                match api.create(&PostParams::default(), &mirror).await {
                    Ok(_) => {
                        tracing::info!(pod = %format!("{namespace}/{name}"), "created the mirror of a static pod")
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(err) => {
                        tracing::warn!("creating the mirror pod {namespace}/{name}: {err}")
                    }
                }
            }
        }
    }
    for ((namespace, name), mirror) in &mirrors {
        let wanted = desired
            .iter()
            .any(|p| key(p) == (namespace.clone(), name.clone()));
        if wanted || mirror.metadata.deletion_timestamp.is_some() {
            continue;
        }
        tracing::info!(pod = %format!("{namespace}/{name}"), "static pod manifest removed: deleting its pod");
        let api: Api<Pod> = Api::namespaced(shared.client.clone(), namespace);
        if let Err(err) = api.delete(name, &DeleteParams::default()).await {
            tracing::warn!("deleting the mirror pod {namespace}/{name}: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: httpd
    image: busybox
"#;

    #[test]
    fn manifests_get_kubes_defaults_for_file_pods() {
        let path = Path::new("/etc/manifests/web.yaml");
        let pod = from_manifest(path, MANIFEST.as_bytes(), "Node-1").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node-1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("Node-1"));
        let toleration = spec.tolerations.as_ref().unwrap().last().unwrap();
        assert_eq!(toleration.operator.as_deref(), Some("Exists"));
        assert_eq!(toleration.effect.as_deref(), Some("NoExecute"));
        let annotations = pod.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[SOURCE_ANNOTATION], "file");
        assert_eq!(
            pod.metadata.uid.as_deref(),
            Some(annotations[HASH_ANNOTATION].as_str())
        );
        // The same manifest hashes the same; another node or content does not.
        let again = from_manifest(path, MANIFEST.as_bytes(), "Node-1").unwrap();
        assert_eq!(again.metadata.uid, pod.metadata.uid);
        let other = from_manifest(path, MANIFEST.as_bytes(), "node-2").unwrap();
        assert_ne!(other.metadata.uid, pod.metadata.uid);
        let changed = MANIFEST.replace("busybox", "busybox:2");
        let changed = from_manifest(path, changed.as_bytes(), "Node-1").unwrap();
        assert_ne!(changed.metadata.uid, pod.metadata.uid);

        let mirror = mirror_of(&pod, "Node-1", "node-uid");
        assert_eq!(mirror.metadata.uid, None);
        assert_eq!(mirror_hash(&mirror), pod.metadata.uid.as_deref());
        let owner = &mirror.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Node", "node-uid")
        );
    }

    #[test]
    fn manifests_that_are_not_pods_are_refused() {
        let path = Path::new("x.yaml");
        for bad in [
            "kind: Service\napiVersion: v1\nmetadata: {name: s}\n",
            "apiVersion: v1\nkind: Pod\nmetadata: {}\n",
            "{not yaml",
        ] {
            assert!(from_manifest(path, bad.as_bytes(), "n").is_err(), "{bad}");
        }
    }
}
