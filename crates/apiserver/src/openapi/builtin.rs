//! The schemas of the built-in kinds, generated once: k8s-openapi's JSON schemas (its
//! `schemars` impls carry kube's definition names, types and descriptions), completed with
//! what kube-apiserver's published spec has and they lack (`overlay.json`, generated from the
//! Go types by `gen-overlay.py`): the patch and list-type extensions kubectl's strategic merge
//! patches are computed from, enums, the `...List` kinds and each kind's GVK.
//!
//! The definitions are kept in swagger 2.0 form (`#/definitions/NAME` refs, with siblings);
//! [`super::schema`] turns them into each document's flavor.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authentication, authorization::v1 as authorization,
    autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling, batch::v1 as batch,
    certificates::v1 as certificates, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::schema::{DEFINITIONS, Gvk, add_gvk};

/// Definition names of the meta types every document's paths refer to.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
pub const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
pub const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// What `gen-overlay.py` read from the Go types.
const OVERLAY: &str = include_str!("overlay.json");

/// One query parameter of a verb (from metav1.ListOptions, CreateOptions, ...).
#[derive(Debug)]
pub struct QueryParam {
    pub name: String,
    pub kind: String,
    pub description: String,
}

/// The built-in schemas.
#[derive(Debug)]
pub struct Builtin {
    /// Every definition, in swagger 2.0 form.
    pub definitions: BTreeMap<String, Value>,
    /// The definition of each kind (and `...List` kind) by group, version and kind.
    pub kinds: HashMap<Gvk, String>,
    /// Query parameters by options type (`ListOptions`, `PatchOptions`, ...).
    pub params: HashMap<String, Vec<QueryParam>>,
}

impl Builtin {
    /// The schemas, generated on first use.
    pub fn get() -> &'static Builtin {
        static BUILTIN: OnceLock<Builtin> = OnceLock::new();
        BUILTIN.get_or_init(generate)
    }

    /// The definition name of a built-in kind.
    pub fn definition_of(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))
            .map(String::as_str)
    }

    /// The query parameters of an options type.
    pub fn params(&self, options: &str) -> &[QueryParam] {
        self.params.get(options).map(Vec::as_slice).unwrap_or(&[])
    }
}

macro_rules! kinds {
    ($($group:literal $version:literal $kind:literal => $ty:ty;)*) => {
        /// Registers every built-in kind's schema; returns (group, version, kind, definition).
        fn register_kinds(generator: &mut SchemaGenerator) -> Vec<(Gvk, String)> {
            vec![$({
                generator.subschema_for::<$ty>();
                (
                    ($group.to_owned(), $version.to_owned(), $kind.to_owned()),
                    <$ty as JsonSchema>::schema_name().into_owned(),
                )
            },)*]
        }
    };
}

// Every kind the registry serves, and the kinds its subresources speak.
kinds! {
    "" "v1" "Binding" => core::Binding;
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
    "apps" "v1" "ControllerRevision" => apps::ControllerRevision;
    "apps" "v1" "DaemonSet" => apps::DaemonSet;
    "apps" "v1" "Deployment" => apps::Deployment;
    "apps" "v1" "ReplicaSet" => apps::ReplicaSet;
    "apps" "v1" "StatefulSet" => apps::StatefulSet;
    "autoscaling" "v1" "HorizontalPodAutoscaler" => autoscaling_v1::HorizontalPodAutoscaler;
    "autoscaling" "v1" "Scale" => autoscaling_v1::Scale;
    "autoscaling" "v2" "HorizontalPodAutoscaler" => autoscaling::HorizontalPodAutoscaler;
    "batch" "v1" "CronJob" => batch::CronJob;
    "batch" "v1" "Job" => batch::Job;
    "networking.k8s.io" "v1" "IngressClass" => networking::IngressClass;
    "networking.k8s.io" "v1" "Ingress" => networking::Ingress;
    "networking.k8s.io" "v1" "NetworkPolicy" => networking::NetworkPolicy;
    "discovery.k8s.io" "v1" "EndpointSlice" => discovery::EndpointSlice;
    "coordination.k8s.io" "v1" "Lease" => coordination::Lease;
    "events.k8s.io" "v1" "Event" => events::Event;
    "policy" "v1" "Eviction" => policy::Eviction;
    "policy" "v1" "PodDisruptionBudget" => policy::PodDisruptionBudget;
    "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => rbac::ClusterRoleBinding;
    "rbac.authorization.k8s.io" "v1" "ClusterRole" => rbac::ClusterRole;
    "rbac.authorization.k8s.io" "v1" "RoleBinding" => rbac::RoleBinding;
    "rbac.authorization.k8s.io" "v1" "Role" => rbac::Role;
    "certificates.k8s.io" "v1" "CertificateSigningRequest" => certificates::CertificateSigningRequest;
    "storage.k8s.io" "v1" "StorageClass" => storage::StorageClass;
    "scheduling.k8s.io" "v1" "PriorityClass" => scheduling::PriorityClass;
    "apiextensions.k8s.io" "v1" "CustomResourceDefinition" => apiextensions::CustomResourceDefinition;
    "authentication.k8s.io" "v1" "SelfSubjectReview" => authentication::SelfSubjectReview;
    "authentication.k8s.io" "v1" "TokenRequest" => authentication::TokenRequest;
    "authentication.k8s.io" "v1" "TokenReview" => authentication::TokenReview;
    "authorization.k8s.io" "v1" "LocalSubjectAccessReview" => authorization::LocalSubjectAccessReview;
    "authorization.k8s.io" "v1" "SelfSubjectAccessReview" => authorization::SelfSubjectAccessReview;
    "authorization.k8s.io" "v1" "SelfSubjectRulesReview" => authorization::SelfSubjectRulesReview;
    "authorization.k8s.io" "v1" "SubjectAccessReview" => authorization::SubjectAccessReview;
}

/// The group-versions kube lists in the GVK of the meta kinds every group uses
/// (DeleteOptions, WatchEvent): the built-in ones rkube serves.
const META_GROUP_VERSIONS: &[(&str, &str)] = &[
    ("", "v1"),
    ("apiextensions.k8s.io", "v1"),
    ("apps", "v1"),
    ("authentication.k8s.io", "v1"),
    ("authorization.k8s.io", "v1"),
    ("autoscaling", "v1"),
    ("autoscaling", "v2"),
    ("batch", "v1"),
    ("coordination.k8s.io", "v1"),
    ("discovery.k8s.io", "v1"),
    ("events.k8s.io", "v1"),
    ("networking.k8s.io", "v1"),
    ("policy", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("scheduling.k8s.io", "v1"),
    ("storage.k8s.io", "v1"),
];

fn generate() -> Builtin {
    let started = std::time::Instant::now();
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = DEFINITIONS
                .trim_start_matches('#')
                .trim_end_matches('/')
                .into();
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    let kinds = register_kinds(&mut generator);
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::WatchEvent<RawExtension>>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::APIResourceList>();
    generator.subschema_for::<meta::APIGroup>();
    generator.subschema_for::<meta::APIGroupList>();
    generator.subschema_for::<meta::APIVersions>();
    generator.subschema_for::<meta::ListMeta>();
    let mut definitions: BTreeMap<String, Value> =
        generator.take_definitions(false).into_iter().collect();

    let overlay: Value = serde_json::from_str(OVERLAY).unwrap_or_default();
    for (name, schema) in definitions.iter_mut() {
        if overlay["definitions"][name]["metadataRequired"] != true {
            metadata_is_optional(schema);
        }
    }
    apply_overlay(&mut definitions, &overlay["definitions"]);

    let mut by_gvk = HashMap::new();
    for ((group, version, kind), name) in kinds {
        if let Some(schema) = definitions.get_mut(&name) {
            add_gvk(schema, &group, &version, &kind);
        }
        let list_kind = format!("{kind}List");
        let list_name = format!("{name}List");
        // Subresource kinds (Scale, Eviction, ...) and reviews have no lists.
        if let Some(list) = overlay["lists"].get(&list_name) {
            let mut schema = list_schema(&name, list);
            add_gvk(&mut schema, &group, &version, &list_kind);
            definitions.insert(list_name.clone(), schema);
            by_gvk.insert((group.clone(), version.clone(), list_kind), list_name);
        }
        by_gvk.insert((group, version, kind), name);
    }
    for name in [
        STATUS,
        API_RESOURCE_LIST,
        API_GROUP,
        API_GROUP_LIST,
        API_VERSIONS,
    ] {
        if let Some(schema) = definitions.get_mut(name) {
            let kind = name.rsplit('.').next().unwrap_or_default();
            add_gvk(schema, "", "v1", kind);
        }
    }
    for name in [DELETE_OPTIONS, WATCH_EVENT] {
        if let Some(schema) = definitions.get_mut(name) {
            let kind = name.rsplit('.').next().unwrap_or_default();
            for (group, version) in META_GROUP_VERSIONS {
                add_gvk(schema, group, version, kind);
            }
        }
    }
    // kube's own schemas of the two scalar unions (v3 documents get `oneOf` instead).
    if let Some(schema) = definitions.get_mut(INT_OR_STRING) {
        *schema = json!({"description": schema["description"], "type": "string", "format": "int-or-string"});
    }
    if let Some(schema) = definitions.get_mut(QUANTITY) {
        *schema = json!({"description": schema["description"], "type": "string"});
    }

    let params = overlay["parameters"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(options, list)| {
            let list = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| QueryParam {
                    name: p["name"].as_str().unwrap_or_default().to_owned(),
                    kind: p["type"].as_str().unwrap_or("string").to_owned(),
                    description: p["description"].as_str().unwrap_or_default().to_owned(),
                })
                .collect();
            (options.clone(), list)
        })
        .collect();
    tracing::debug!(
        definitions = definitions.len(),
        elapsed = ?started.elapsed(),
        "generated the built-in OpenAPI schemas"
    );
    Builtin {
        definitions,
        kinds: by_gvk,
        params,
    }
}

/// k8s-openapi marks `metadata` required (its Rust field is not an `Option`); kube's Go field
/// is `omitempty`, so kube's schemas do not.
fn metadata_is_optional(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(Value::Array(required)) = map.get_mut("required") {
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            map.remove("required");
        }
    }
}

/// Adds the overlay's extensions, enums and enum descriptions to the definitions.
fn apply_overlay(definitions: &mut BTreeMap<String, Value>, overlay: &Value) {
    for (name, entry) in overlay.as_object().into_iter().flatten() {
        let Some(Value::Object(schema)) = definitions.get_mut(name) else {
            continue;
        };
        for (key, value) in entry.as_object().into_iter().flatten() {
            if key.starts_with("x-kubernetes-") {
                schema.insert(key.clone(), value.clone());
            }
        }
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for (field, extra) in entry["properties"].as_object().into_iter().flatten() {
            let Some(Value::Object(property)) = properties.get_mut(field) else {
                continue;
            };
            apply_property_overlay(property, extra);
        }
    }
}

fn apply_property_overlay(property: &mut Map<String, Value>, extra: &Value) {
    for (key, value) in extra.as_object().into_iter().flatten() {
        match key.as_str() {
            "enum" => {
                property.insert("enum".into(), value.clone());
            }
            "enumDescription" => {
                let old = property
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let text = value.as_str().unwrap_or_default();
                let description = if old.is_empty() {
                    text.trim_start().to_owned()
                } else {
                    format!("{old}{text}")
                };
                property.insert("description".into(), Value::String(description));
            }
            "itemsEnum" => {
                if let Some(Value::Object(items)) = property.get_mut("items") {
                    items.insert("enum".into(), value.clone());
                }
            }
            "valuesEnum" => {
                if let Some(Value::Object(values)) = property.get_mut("additionalProperties") {
                    values.insert("enum".into(), value.clone());
                }
            }
            x if x.starts_with("x-kubernetes-") => {
                property.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
}

/// A `...List` kind as kube's openapi-gen writes it for the Go list type.
fn list_schema(item: &str, docs: &Value) -> Value {
    let text = |key: &str| docs[key].as_str().unwrap_or_default().to_owned();
    let mut metadata = json!({"$ref": format!("{DEFINITIONS}{LIST_META}")});
    if !text("metadata").is_empty() {
        metadata["description"] = json!(text("metadata"));
    }
    json!({
        "description": text("description"),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": type_meta("apiVersion"),
            "kind": type_meta("kind"),
            "items": {
                "description": text("items"),
                "type": "array",
                "items": {"$ref": format!("{DEFINITIONS}{item}")},
            },
            "metadata": metadata,
        },
    })
}

/// The schema of `apiVersion` or `kind`, as kube's TypeMeta has it.
pub fn type_meta(field: &str) -> Value {
    let description = match field {
        "apiVersion" => {
            "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
        }
        _ => {
            "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
        }
    };
    json!({"type": "string", "description": description})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_carry_kubes_names_extensions_and_gvks() {
        let b = Builtin::get();
        let deployment = &b.definitions["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        let list = &b.definitions["io.k8s.api.apps.v1.DeploymentList"];
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            "DeploymentList"
        );
        assert_eq!(
            list["description"],
            "DeploymentList is a list of Deployments."
        );
        let containers = &b.definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let ports = &b.definitions["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        let restart = &b.definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["restartPolicy"];
        assert_eq!(restart["enum"], json!(["Always", "Never", "OnFailure"]));
        assert!(restart["description"].as_str().unwrap().ends_with(
            "Possible enum values:\n - `\"Always\"`\n - `\"Never\"`\n - `\"OnFailure\"`"
        ));
        assert_eq!(
            b.definitions[INT_OR_STRING]["format"], "int-or-string",
            "{:?}",
            b.definitions[INT_OR_STRING]
        );
        assert!(b.definitions.contains_key(OBJECT_META));
        assert!(b.definitions.contains_key(WATCH_EVENT));
        let delete = &b.definitions[DELETE_OPTIONS]["x-kubernetes-group-version-kind"];
        assert!(delete.as_array().unwrap().len() > 5);
        assert_eq!(b.params("PatchOptions")[1].name, "force");
        assert!(deployment.get("required").is_none());
        let event = &b.definitions["io.k8s.api.core.v1.Event"]["required"];
        assert_eq!(event, &json!(["involvedObject", "metadata"]));
    }
}
