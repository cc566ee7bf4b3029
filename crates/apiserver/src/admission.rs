//! Mutating admission for new pods, as kube-apiserver's default plugins do it:
//! - Priority: `spec.priorityClassName` resolves to `spec.priority` and
//!   `spec.preemptionPolicy` (403 when the class does not exist); without a class, the
//!   global default class or 0;
//! - DefaultTolerationSeconds: pods that do not tolerate node.kubernetes.io/not-ready and
//!   unreachable NoExecute taints get tolerations for them, 300 s unless configured;
//! - ServiceAccount: `serviceAccountName` defaults to `default`, and unless automounting is
//!   off, a projected `kube-api-access-*` volume (token, kube-root-ca.crt, namespace) is
//!   mounted in every container at /var/run/secrets/kubernetes.io/serviceaccount.
//!
//! - DefaultStorageClass: a PersistentVolumeClaim without `storageClassName` gets the
//!   default StorageClass (annotation `storageclass.kubernetes.io/is-default-class: "true"`;
//!   the newest when several are), if there is one.
//!
//! Also the built-in PriorityClasses every cluster has.

use rkube_store::{RangeRequest, StoreError};
use serde_json::{Value, json};

use crate::State;
use crate::errors::ApiError;
use crate::objects::{from_kv, to_bytes};

/// Admission settings (kube-apiserver's flags of the same names).
#[derive(Clone, Debug)]
pub struct AdmissionConfig {
    /// --default-not-ready-toleration-seconds
    pub not_ready_toleration_seconds: i64,
    /// --default-unreachable-toleration-seconds
    pub unreachable_toleration_seconds: i64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            not_ready_toleration_seconds: 300,
            unreachable_toleration_seconds: 300,
        }
    }
}

const SERVICE_ACCOUNT_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The PriorityClasses kube-apiserver creates at start.
pub(crate) async fn ensure_system_priority_classes(state: &State) -> Result<(), ApiError> {
    let Some(resource) = state.resource("scheduling.k8s.io", "v1", "priorityclasses") else {
        return Ok(());
    };
    for (name, value, description) in [
        (
            "system-node-critical",
            2_000_001_000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            "system-cluster-critical",
            2_000_000_000,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ] {
        let mut object = json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
            "preemptionPolicy": "PreemptLowerPriority",
        });
        crate::objects::prepare_new(&resource, &mut object);
        match state
            .store
            .create(&resource.storage_key(None, name), to_bytes(&object))
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Applies the mutating admission plugins to a pod being created.
pub(crate) async fn admit_pod(
    state: &State,
    config: &AdmissionConfig,
    pod: &mut Value,
) -> Result<(), ApiError> {
    if !pod["spec"].is_object() {
        return Ok(());
    }
    resolve_priority(state, pod).await?;
    default_tolerations(config, pod);
    if pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
        // A kubelet's mirror of a static pod: it runs from the node's manifest, which can
        // name no account (kube's ServiceAccount plugin refuses one and adds nothing).
        let account = &pod["spec"]["serviceAccountName"];
        if account.as_str().is_some_and(|a| !a.is_empty()) {
            let name = pod["metadata"]["name"].as_str().unwrap_or("");
            return Err(ApiError::forbidden(
                "",
                "pods",
                name,
                format!(
                    "pods {name:?} is forbidden: a mirror pod may not reference service accounts"
                ),
            ));
        }
        return Ok(());
    }
    service_account(pod);
    Ok(())
}

/// Every stored object of a (cluster-scoped) resource.
async fn list_all(
    state: &State,
    resource: &rkube_api::registry::Resource,
) -> Result<Vec<Value>, ApiError> {
    let listed = state
        .store
        .range(RangeRequest {
            prefix: resource.storage_prefix(),
            ..RangeRequest::default()
        })
        .await?;
    listed.kvs.iter().map(from_kv).collect()
}

/// DefaultStorageClass admission for a claim being created.
pub(crate) async fn default_storage_class(
    state: &State,
    claim: &mut Value,
) -> Result<(), ApiError> {
    // Only an absent class is defaulted: "" asks for no class.
    if !claim["spec"].is_object() || !claim["spec"]["storageClassName"].is_null() {
        return Ok(());
    }
    let Some(resource) = state.resource("storage.k8s.io", "v1", "storageclasses") else {
        return Ok(());
    };
    let mut newest: Option<(String, String)> = None;
    for class in list_all(state, &resource).await? {
        let annotations = &class["metadata"]["annotations"];
        let is_default = [
            "storageclass.kubernetes.io/is-default-class",
            "storageclass.beta.kubernetes.io/is-default-class",
        ]
        .iter()
        .any(|a| annotations[*a] == "true");
        if !is_default {
            continue;
        }
        let created = class["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let name = class["metadata"]["name"].as_str().unwrap_or("").to_owned();
        // Newest first; between equals, the name that sorts first (kube's tie-break).
        let better = match &newest {
            None => true,
            Some((c, n)) => created > *c || (created == *c && name < *n),
        };
        if better {
            newest = Some((created, name));
        }
    }
    if let Some((_, name)) = newest {
        claim["spec"]["storageClassName"] = json!(name);
    }
    Ok(())
}

async fn resolve_priority(state: &State, pod: &mut Value) -> Result<(), ApiError> {
    let Some(resource) = state.resource("scheduling.k8s.io", "v1", "priorityclasses") else {
        return Ok(());
    };
    let class_name = pod["spec"]["priorityClassName"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let class = if class_name.is_empty() {
        // The global default class, if any.
        let mut default = None;
        for class in list_all(state, &resource).await? {
            if class["globalDefault"] == true {
                default = Some(class);
            }
        }
        default
    } else {
        match state
            .store
            .get(&resource.storage_key(None, &class_name))
            .await?
        {
            Some(kv) => Some(from_kv(&kv)?),
            None => {
                let name = pod["metadata"]["name"]
                    .as_str()
                    .or_else(|| pod["metadata"]["generateName"].as_str())
                    .unwrap_or("")
                    .to_owned();
                return Err(ApiError::forbidden(
                    "",
                    "pods",
                    &name,
                    format!(
                        "pods \"{name}\" is forbidden: no PriorityClass with name {class_name} was found"
                    ),
                ));
            }
        }
    };
    let (value, policy) = match &class {
        Some(c) => (
            c["value"].as_i64().unwrap_or(0),
            c["preemptionPolicy"]
                .as_str()
                .unwrap_or("PreemptLowerPriority")
                .to_owned(),
        ),
        None => (0, "PreemptLowerPriority".to_owned()),
    };
    if let Some(given) = pod["spec"]["priority"].as_i64()
        && given != value
    {
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_owned();
        return Err(ApiError::forbidden(
            "",
            "pods",
            &name,
            format!(
                "pods \"{name}\" is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            ),
        ));
    }
    pod["spec"]["priority"] = json!(value);
    if pod["spec"]
        .get("preemptionPolicy")
        .is_none_or(Value::is_null)
    {
        pod["spec"]["preemptionPolicy"] = json!(policy);
    }
    if let Some(c) = &class
        && pod["spec"]["priorityClassName"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    {
        pod["spec"]["priorityClassName"] = c["metadata"]["name"].clone();
    }
    Ok(())
}

fn tolerates_all(tolerations: &[Value], key: &str) -> bool {
    tolerations.iter().any(|t| {
        let effect = t["effect"].as_str().unwrap_or("");
        let t_key = t["key"].as_str().unwrap_or("");
        let exists = t["operator"].as_str() == Some("Exists");
        (effect.is_empty() || effect == "NoExecute")
            && (t_key == key || (t_key.is_empty() && exists))
    })
}

fn default_tolerations(config: &AdmissionConfig, pod: &mut Value) {
    let mut tolerations: Vec<Value> = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let before = tolerations.len();
    for (key, seconds) in [
        (
            "node.kubernetes.io/not-ready",
            config.not_ready_toleration_seconds,
        ),
        (
            "node.kubernetes.io/unreachable",
            config.unreachable_toleration_seconds,
        ),
    ] {
        if !tolerates_all(&tolerations, key) {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}));
        }
    }
    if tolerations.len() != before {
        pod["spec"]["tolerations"] = json!(tolerations);
    }
}

fn service_account(pod: &mut Value) {
    let spec = &mut pod["spec"];
    let account = spec["serviceAccountName"]
        .as_str()
        .or_else(|| spec["serviceAccount"].as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_owned();
    spec["serviceAccountName"] = json!(account);
    spec["serviceAccount"] = json!(account);
    if spec["automountServiceAccountToken"] == false {
        return;
    }
    let already_mounted = |containers: &Value| {
        containers.as_array().into_iter().flatten().any(|c| {
            c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["mountPath"] == SERVICE_ACCOUNT_MOUNT)
        })
    };
    if already_mounted(&spec["containers"]) {
        return;
    }
    let volume_name = format!("kube-api-access-{}", crate::objects::random_suffix(5));
    let volume = json!({
        "name": volume_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    });
    let mut volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
    volumes.push(volume);
    spec["volumes"] = json!(volumes);
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(containers) = spec[list].as_array_mut() {
            for container in containers {
                let mut mounts = container["volumeMounts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                mounts.push(json!({"name": volume_name, "readOnly": true, "mountPath": SERVICE_ACCOUNT_MOUNT}));
                container["volumeMounts"] = json!(mounts);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_are_added_unless_present() {
        let mut pod = json!({"spec": {"containers": [{"name": "c"}], "tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
        ]}});
        default_tolerations(&AdmissionConfig::default(), &mut pod);
        let t = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1]["key"], "node.kubernetes.io/not-ready");
        assert_eq!(t[1]["tolerationSeconds"], 300);
        // Tolerating everything needs nothing more.
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        default_tolerations(&AdmissionConfig::default(), &mut all);
        assert_eq!(all["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn service_account_token_is_projected_into_every_container() {
        let mut pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        service_account(&mut pod);
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        let volume = &pod["spec"]["volumes"][0];
        assert!(
            volume["name"]
                .as_str()
                .unwrap()
                .starts_with("kube-api-access-")
        );
        for c in ["containers", "initContainers"] {
            for container in pod["spec"][c].as_array().unwrap() {
                assert_eq!(
                    container["volumeMounts"][0]["mountPath"],
                    SERVICE_ACCOUNT_MOUNT
                );
                assert_eq!(container["volumeMounts"][0]["name"], volume["name"]);
            }
        }
        let mut off = json!({"spec": {"automountServiceAccountToken": false, "serviceAccountName": "robot", "containers": [{"name": "a"}]}});
        service_account(&mut off);
        assert!(off["spec"].get("volumes").is_none());
        assert_eq!(off["spec"]["serviceAccount"], "robot");
    }
}
