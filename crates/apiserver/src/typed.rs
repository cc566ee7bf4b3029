//! Decoding built-in objects against their Go types (via k8s-openapi's v1.33 types), as
//! kube-apiserver's decoder does: a value of the wrong type is a 400, and fields the type
//! does not have are unknown fields, handled per `fieldValidation` (Strict: 400; Warn: a
//! `Warning` header; Ignore: silently dropped). Unknown fields are never stored.

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling,
    batch::v1 as batch, certificates::v1 as certificates, coordination::v1 as coordination,
    core::v1 as core, discovery::v1 as discovery, events::v1 as events,
    networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use serde_json::Value;

use crate::errors::ApiError;

/// What to do about unknown fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// Refuse the request.
    Strict,
    /// Drop them and warn.
    Warn,
    /// Drop them.
    Ignore,
}

impl FieldValidation {
    /// Parses the `fieldValidation` query parameter (default Warn, as kube-apiserver).
    pub fn from_query(value: Option<&str>) -> Result<Self, ApiError> {
        match value.unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Strict" => Ok(Self::Strict),
            "Ignore" => Ok(Self::Ignore),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }
}

macro_rules! roundtrip_table {
    ($($group:literal $version:literal $kind:literal => $ty:ty;)*) => {
        /// Decodes `object` as the built-in type and encodes it again; `None` for kinds
        /// without a built-in type.
        fn roundtrip(group: &str, version: &str, kind: &str, object: &Value) -> Option<Result<Value, serde_json::Error>> {
            match (group, version, kind) {
                $(($group, $version, $kind) => Some(
                    serde_json::from_value::<$ty>(object.clone()).and_then(|typed| serde_json::to_value(&typed)),
                ),)*
                _ => None,
            }
        }
    };
}

roundtrip_table! {
    "" "v1" "ConfigMap" => core::ConfigMap;
    "" "v1" "Endpoints" => core::Endpoints;
    "" "v1" "Event" => core::Event;
    "" "v1" "LimitRange" => core::LimitRange;
    "" "v1" "Namespace" => core::Namespace;
    "" "v1" "Node" => core::Node;
    "" "v1" "PersistentVolumeClaim" => core::PersistentVolumeClaim;
    "" "v1" "PersistentVolume" => core::PersistentVolume;
    "" "v1" "Pod" => core::Pod;
    "" "v1" "PodTemplate" => core::PodTemplate;
    "" "v1" "ReplicationController" => core::ReplicationController;
    "" "v1" "ResourceQuota" => core::ResourceQuota;
    "" "v1" "Secret" => core::Secret;
    "" "v1" "ServiceAccount" => core::ServiceAccount;
    "" "v1" "Service" => core::Service;
    "" "v1" "Binding" => core::Binding;
    "apps" "v1" "ControllerRevision" => apps::ControllerRevision;
    "apps" "v1" "DaemonSet" => apps::DaemonSet;
    "apps" "v1" "Deployment" => apps::Deployment;
    "apps" "v1" "ReplicaSet" => apps::ReplicaSet;
    "apps" "v1" "StatefulSet" => apps::StatefulSet;
    "autoscaling" "v1" "HorizontalPodAutoscaler" => autoscaling_v1::HorizontalPodAutoscaler;
    "autoscaling" "v2" "HorizontalPodAutoscaler" => autoscaling::HorizontalPodAutoscaler;
    "batch" "v1" "CronJob" => batch::CronJob;
    "batch" "v1" "Job" => batch::Job;
    "networking.k8s.io" "v1" "IngressClass" => networking::IngressClass;
    "networking.k8s.io" "v1" "Ingress" => networking::Ingress;
    "networking.k8s.io" "v1" "NetworkPolicy" => networking::NetworkPolicy;
    "discovery.k8s.io" "v1" "EndpointSlice" => discovery::EndpointSlice;
    "coordination.k8s.io" "v1" "Lease" => coordination::Lease;
    "events.k8s.io" "v1" "Event" => events::Event;
    "policy" "v1" "PodDisruptionBudget" => policy::PodDisruptionBudget;
    "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => rbac::ClusterRoleBinding;
    "rbac.authorization.k8s.io" "v1" "ClusterRole" => rbac::ClusterRole;
    "rbac.authorization.k8s.io" "v1" "RoleBinding" => rbac::RoleBinding;
    "rbac.authorization.k8s.io" "v1" "Role" => rbac::Role;
    "certificates.k8s.io" "v1" "CertificateSigningRequest" => certificates::CertificateSigningRequest;
    "storage.k8s.io" "v1" "StorageClass" => storage::StorageClass;
    "scheduling.k8s.io" "v1" "PriorityClass" => scheduling::PriorityClass;
    "apiextensions.k8s.io" "v1" "CustomResourceDefinition" => apiextensions::CustomResourceDefinition;
}

/// Paths in `input` that are absent from `decoded` (fields the type does not have).
fn unknown_fields(input: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    match (input, decoded) {
        (Value::Object(i), Value::Object(d)) => {
            for (key, value) in i {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match d.get(key) {
                    None if !value.is_null() => out.push(child),
                    None => {}
                    Some(inner) => unknown_fields(value, inner, &child, out),
                }
            }
        }
        (Value::Array(i), Value::Array(d)) => {
            for (n, (a, b)) in i.iter().zip(d).enumerate() {
                unknown_fields(a, b, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn remove_path(object: &mut Value, path: &str) {
    // Paths are dotted keys with [n] indexes; keys with dots (labels) never reach here
    // because maps of strings decode completely.
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut cur = object;
    for part in parts {
        let (key, indexes) = split_indexes(part);
        let Some(next) = cur.get_mut(key) else { return };
        cur = next;
        for i in indexes {
            let Some(next) = cur.get_mut(i) else { return };
            cur = next;
        }
    }
    let (key, indexes) = split_indexes(last);
    if indexes.is_empty()
        && let Some(map) = cur.as_object_mut()
    {
        map.remove(key);
    }
}

fn split_indexes(part: &str) -> (&str, Vec<usize>) {
    let mut pieces = part.split('[');
    let key = pieces.next().unwrap_or("");
    let indexes = pieces
        .filter_map(|p| p.trim_end_matches(']').parse().ok())
        .collect();
    (key, indexes)
}

/// Checks a built-in object against its type. Returns the warnings to send; unknown fields
/// are removed from `object` unless refused.
pub fn check(
    group: &str,
    version: &str,
    kind: &str,
    object: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let Some(decoded) = roundtrip(group, version, kind, object) else {
        return Ok(Vec::new());
    };
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {why}"
        ))
    };
    let decoded = decoded.map_err(|e| cannot(e.to_string()))?;
    let mut unknown = Vec::new();
    unknown_fields(object, &decoded, "", &mut unknown);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let described: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if validation == FieldValidation::Strict {
        return Err(cannot(format!(
            "strict decoding error: {}",
            described.join(", ")
        )));
    }
    for path in &unknown {
        remove_path(object, path);
    }
    Ok(if validation == FieldValidation::Warn {
        described
    } else {
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_refused_or_dropped() {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "bogus": 1}, "data": {"k": "v"}, "extra": true});
        let err = check(
            "",
            "v1",
            "ConfigMap",
            &mut cm.clone(),
            FieldValidation::Strict,
        )
        .unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message.contains(
                r#"strict decoding error: unknown field "extra", unknown field "metadata.bogus""#
            ) || err
                .message
                .contains(r#"unknown field "metadata.bogus", unknown field "extra""#),
            "{}",
            err.message
        );
        let warnings = check("", "v1", "ConfigMap", &mut cm, FieldValidation::Warn).unwrap();
        assert_eq!(warnings.len(), 2);
        assert_eq!(
            cm,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}})
        );

        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}]}});
        let warnings = check("", "v1", "Pod", &mut pod, FieldValidation::Warn).unwrap();
        assert_eq!(
            warnings,
            [r#"unknown field "spec.containers[0].imagePolicy""#]
        );
        assert!(pod["spec"]["containers"][0].get("imagePolicy").is_none());

        let mut bad = json!({"metadata": {"name": "a"}, "data": {"k": 5}});
        let err = check("", "v1", "ConfigMap", &mut bad, FieldValidation::Ignore).unwrap_err();
        assert!(
            err.message
                .starts_with(r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: "#),
            "{}",
            err.message
        );
    }
}
