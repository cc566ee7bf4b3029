//! Schema plumbing shared by the documents: the two flavors (swagger 2.0 and OpenAPI 3.0),
//! references, and the `x-kubernetes-group-version-kind` extension.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// Where swagger 2.0 definitions live; every schema is built with these references.
pub const DEFINITIONS: &str = "#/definitions/";
/// Where OpenAPI 3.0 schemas live.
pub const COMPONENTS: &str = "#/components/schemas/";

/// Group, version, kind.
pub type Gvk = (String, String, String);

/// Which document a schema goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `/openapi/v2`: swagger 2.0.
    V2,
    /// `/openapi/v3/...`: OpenAPI 3.0.
    V3,
}

impl Flavor {
    /// A reference to a definition.
    pub fn reference(self, name: &str) -> Value {
        match self {
            Flavor::V2 => json!({"$ref": format!("{DEFINITIONS}{name}")}),
            Flavor::V3 => json!({"$ref": format!("{COMPONENTS}{name}")}),
        }
    }
}

/// Appends a group-version-kind to a kind's `x-kubernetes-group-version-kind` list.
pub fn add_gvk(schema: &mut Value, group: &str, version: &str, kind: &str) {
    let Value::Object(map) = schema else {
        return;
    };
    let entry = json!({"group": group, "kind": kind, "version": version});
    let list = map
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| json!([]));
    if let Value::Array(list) = list
        && !list.contains(&entry)
    {
        list.push(entry);
    }
}

/// Every definition the `roots` refer to, directly or not (the roots included), as found by
/// `lookup`.
pub fn reachable<'a>(
    roots: impl IntoIterator<Item = String>,
    lookup: impl Fn(&str) -> Option<&'a Value>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.into_iter().collect();
    while let Some(name) = stack.pop() {
        if seen.contains(&name) {
            continue;
        }
        let Some(schema) = lookup(&name) else {
            continue;
        };
        seen.insert(name);
        collect_refs(schema, &mut |r| {
            if !seen.contains(r) {
                stack.push(r.to_owned());
            }
        });
    }
    seen
}

/// Calls `found` with the definition name of every reference in `value` (either flavor).
pub fn collect_refs(value: &Value, found: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r
                            .strip_prefix(DEFINITIONS)
                            .or_else(|| r.strip_prefix(COMPONENTS))
                        {
                            found(name);
                        }
                    }
                    _ => collect_refs(child, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, found)),
        _ => {}
    }
}

/// The OpenAPI 3.0 form of a swagger 2.0 definition, as kube-openapi's builder3 writes it:
/// references point into `components/schemas`, and a reference with siblings (a field's
/// description, its patch strategy) is wrapped in `allOf` (kube-openapi `WrapRefs`).
/// The scalar unions get the `oneOf` kube publishes in v3.
pub fn to_v3(name: &str, schema: &Value) -> Value {
    match name {
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => json!({
            "description": schema["description"],
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        }),
        "io.k8s.apimachinery.pkg.api.resource.Quantity" => json!({
            "description": schema["description"],
            "oneOf": [{"type": "string"}, {"type": "number"}],
        }),
        _ => convert_v3(schema),
    }
}

/// [`to_v3`] for a schema that is not a definition of its own.
pub fn convert_v3(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            let mut reference = None;
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => {
                        let r = match r.strip_prefix(DEFINITIONS) {
                            Some(name) => format!("{COMPONENTS}{name}"),
                            None => r.clone(),
                        };
                        reference = Some(r);
                    }
                    // Maps of schemas: keys are names, not keywords.
                    ("properties" | "definitions" | "patternProperties", Value::Object(m)) => {
                        let converted = m
                            .iter()
                            .map(|(k, v)| (k.clone(), convert_v3(v)))
                            .collect::<Map<_, _>>();
                        out.insert(key.clone(), Value::Object(converted));
                    }
                    // Extension values and examples are data, not schemas.
                    (k, v)
                        if k.starts_with("x-")
                            || k == "enum"
                            || k == "default"
                            || k == "example" =>
                    {
                        out.insert(key.clone(), v.clone());
                    }
                    _ => {
                        out.insert(key.clone(), convert_v3(value));
                    }
                }
            }
            match reference {
                Some(r) if out.is_empty() => json!({"$ref": r}),
                Some(r) => {
                    out.insert("allOf".into(), json!([{"$ref": r}]));
                    Value::Object(out)
                }
                None => Value::Object(out),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(convert_v3).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_wraps_references_with_siblings() {
        let v2 = json!({
            "type": "object",
            "properties": {
                "spec": {"$ref": "#/definitions/a.Spec", "description": "the spec"},
                "items": {"type": "array", "items": {"$ref": "#/definitions/a.Item"}},
                "$ref": {"type": "string"},
            },
            "x-kubernetes-group-version-kind": [{"group": "", "kind": "A", "version": "v1"}],
        });
        let v3 = convert_v3(&v2);
        assert_eq!(
            v3["properties"]["spec"],
            json!({"allOf": [{"$ref": "#/components/schemas/a.Spec"}], "description": "the spec"})
        );
        assert_eq!(
            v3["properties"]["items"]["items"],
            json!({"$ref": "#/components/schemas/a.Item"})
        );
        assert_eq!(v3["properties"]["$ref"], json!({"type": "string"}));
        assert_eq!(
            v3["x-kubernetes-group-version-kind"],
            v2["x-kubernetes-group-version-kind"]
        );
    }

    #[test]
    fn reachable_follows_references() {
        let mut defs = std::collections::BTreeMap::new();
        defs.insert(
            "a".to_owned(),
            json!({"properties": {"b": {"$ref": "#/definitions/b"}}}),
        );
        defs.insert(
            "b".to_owned(),
            json!({"items": {"$ref": "#/definitions/c"}}),
        );
        defs.insert(
            "c".to_owned(),
            json!({"properties": {"a": {"$ref": "#/definitions/a"}}}),
        );
        defs.insert("d".to_owned(), json!({}));
        let names: Vec<String> = reachable(["a".to_owned()], |n| defs.get(n))
            .into_iter()
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
