//! The schemas of custom resources, built from their CustomResourceDefinition version's
//! `openAPIV3Schema` as apiextensions-apiserver's OpenAPI builder does (v1.33,
//! `pkg/controller/openapi/builder`): `apiVersion`, `kind` and `metadata` are added, embedded
//! resources get them too, and the swagger 2.0 flavor drops what v2 cannot express.
//!
//! Like the built-in ones, the definitions are returned with swagger 2.0 references.

use rkube_api::registry::{CustomInfo, Resource};
use serde_json::{Map, Value, json};

use super::builtin::{LIST_META, OBJECT_META, type_meta};
use super::schema::{DEFINITIONS, Flavor, add_gvk};

const OBJECT_META_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_META_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// kube's definition name of a custom kind: the group reversed (`com.example.stable.v1.CronTab`).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let group: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", group.join("."))
}

/// The definitions of a custom resource version for a `flavor` document: its kind and its
/// list kind.
pub fn definitions(resource: &Resource, info: &CustomInfo, flavor: Flavor) -> [(String, Value); 2] {
    let (group, version, kind) = (&resource.group, &resource.version, &resource.kind);
    let name = definition_name(group, version, kind);
    let list_kind = format!("{kind}List");
    let mut object = object_schema(info.schema.as_ref(), flavor);
    add_gvk(&mut object, group, version, kind);
    let mut list = json!({
        "type": "object",
        "description": format!("{list_kind} is a list of {kind}"),
        "required": ["items"],
        "properties": {
            "apiVersion": type_meta("apiVersion"),
            "kind": type_meta("kind"),
            "items": {
                "type": "array",
                "description": format!(
                    "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                    resource.plural
                ),
                "items": {"$ref": format!("{DEFINITIONS}{name}")},
            },
            "metadata": {"$ref": format!("{DEFINITIONS}{LIST_META}"), "description": LIST_META_DESCRIPTION},
        },
    });
    add_gvk(&mut list, group, version, &list_kind);
    let list_name = definition_name(group, version, &list_kind);
    [(name, object), (list_name, list)]
}

fn object_meta_ref(description: &str) -> Value {
    json!({"$ref": format!("{DEFINITIONS}{OBJECT_META}"), "description": description})
}

/// The kind's schema (without its GVK).
fn object_schema(schema: Option<&Value>, flavor: Flavor) -> Value {
    let preserves = |s: &Value| s["x-kubernetes-preserve-unknown-fields"] == true;
    let Some(schema) = schema.filter(|s| s.is_object()) else {
        // Without properties kubectl would assume nothing else is allowed.
        return json!({"type": "object"});
    };
    if flavor == Flavor::V2 && preserves(schema) {
        return json!({"type": "object"});
    }
    let mut out = schema.clone();
    if flavor == Flavor::V2 {
        to_structural_v2(&mut out);
        prune_defaults(&mut out);
    }
    let Value::Object(map) = &mut out else {
        return out;
    };
    let properties = map
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(properties) = properties {
        properties.insert("metadata".into(), object_meta_ref(OBJECT_META_DESCRIPTION));
        properties.insert("apiVersion".into(), type_meta("apiVersion"));
        properties.insert("kind".into(), type_meta("kind"));
    }
    add_embedded_properties(&mut out, flavor);
    out
}

/// apiextensions' `addEmbeddedProperties`: objects marked `x-kubernetes-embedded-resource`
/// get `apiVersion`, `kind` and `metadata`.
fn add_embedded_properties(schema: &mut Value, flavor: Flavor) {
    let Value::Object(map) = schema else {
        return;
    };
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        for child in properties.values_mut() {
            add_embedded_properties(child, flavor);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key) {
            add_embedded_properties(child, flavor);
        }
    }
    if flavor == Flavor::V2 && map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true))
    {
        return;
    }
    if map.get("x-kubernetes-embedded-resource") != Some(&json!(true)) {
        return;
    }
    let properties = map
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(properties) = properties {
        properties.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": "apiVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}),
        );
        properties.insert(
            "kind".into(),
            json!({"type": "string", "description": "kind is a string value representing the type of this object. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}),
        );
        properties.insert("metadata".into(), object_meta_ref(OBJECT_META_DESCRIPTION));
    }
    let required = map.entry("required").or_insert_with(|| json!([]));
    if let Value::Array(required) = required {
        for field in ["kind", "apiVersion"] {
            if !required.iter().any(|r| r == field) {
                required.push(json!(field));
            }
        }
    }
}

/// apiextensions' `ToStructuralOpenAPIV2`: what swagger 2.0 cannot say is dropped.
fn to_structural_v2(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    for key in ["allOf", "oneOf", "anyOf", "not"] {
        map.remove(key);
    }
    if map.remove("nullable") == Some(json!(true)) {
        map.remove("type");
        map.remove("items");
        map.remove("properties");
    }
    if map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true)) {
        map.remove("items");
        map.remove("properties");
        if map.get("type") == Some(&json!("object")) {
            map.remove("type");
        }
    }
    if map.get("type") == Some(&json!("array")) && !map.contains_key("items") {
        map.remove("type");
    }
    let nullable: Vec<String> = map
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, p)| p["nullable"] == true)
        .map(|(name, _)| name.clone())
        .collect();
    if let Some(Value::Array(required)) = map.get_mut("required") {
        required.retain(|r| !nullable.iter().any(|n| r == n));
    }
    if map
        .get("additionalProperties")
        .is_some_and(|a| a["nullable"] == true)
    {
        map.remove("required");
    }
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        properties.values_mut().for_each(to_structural_v2);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key) {
            to_structural_v2(child);
        }
    }
}

/// kube-openapi's `PruneDefaults`, applied to the swagger 2.0 document.
fn prune_defaults(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    map.remove("default");
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        properties.values_mut().for_each(prune_defaults);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key) {
            prune_defaults(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reverse_the_group() {
        assert_eq!(
            definition_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
        assert_eq!(definition_name("foo", "v1", "Bar"), "foo.v1.Bar");
    }

    #[test]
    fn adds_type_and_object_meta_and_strips_for_v2() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer", "default": 1},
                        "maybe": {"type": "string", "nullable": true},
                        "anything": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                     "properties": {"a": {"type": "string"}}},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true},
                    },
                    "required": ["maybe", "replicas"],
                },
            },
        });
        let v3 = object_schema(Some(&schema), Flavor::V3);
        assert_eq!(
            v3["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(v3["properties"]["kind"]["type"], "string");
        assert_eq!(
            v3["properties"]["spec"]["properties"]["replicas"]["default"],
            1
        );
        let template = &v3["properties"]["spec"]["properties"]["template"];
        assert_eq!(template["required"], json!(["kind", "apiVersion"]));
        assert!(template["properties"]["metadata"].is_object());

        let v2 = object_schema(Some(&schema), Flavor::V2);
        let spec = &v2["properties"]["spec"];
        assert!(spec["properties"]["replicas"].get("default").is_none());
        assert!(spec["properties"]["maybe"].get("type").is_none());
        assert_eq!(spec["required"], json!(["replicas"]));
        assert!(spec["properties"]["anything"].get("properties").is_none());
        assert!(spec["properties"]["anything"].get("type").is_none());

        let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        assert_eq!(
            object_schema(Some(&open), Flavor::V2),
            json!({"type": "object"})
        );
        assert_eq!(object_schema(None, Flavor::V3), json!({"type": "object"}));
    }
}
