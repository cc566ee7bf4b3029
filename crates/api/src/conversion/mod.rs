//! Conversion between the version a request speaks and the version an object is stored in,
//! as kube-apiserver converts through its internal types.
//!
//! A resource served in several versions keeps one stored form (`Resource::storage_group`
//! and `storage_version`): autoscaling/v1 HorizontalPodAutoscalers are stored as
//! autoscaling/v2, events.k8s.io/v1 Events as core/v1 Events. The API server converts a
//! request's object to the stored form before it validates and writes it, and every object
//! it answers with (get, list, watch events, write results) back to the request's version.
//! Conversions never fail: like kube's, they ignore round-trip annotations they cannot read.
//!
//! Pairs without a conversion of their own (custom resources, kube's `None` strategy) only
//! change `apiVersion`.

mod event;
mod hpa;

use serde_json::{Value, json};

use crate::registry::group_version;

/// `object` (which names its own `apiVersion` and `kind`) in `group`/`version`.
pub fn convert(object: &Value, group: &str, version: &str) -> Value {
    let to = group_version(group, version);
    let from = object["apiVersion"].as_str().unwrap_or("");
    if from == to {
        return object.clone();
    }
    let kind = object["kind"].as_str().unwrap_or("");
    match (kind, from, to.as_str()) {
        ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1") => hpa::v2_to_v1(object),
        ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2") => hpa::v1_to_v2(object),
        ("Event", "v1", "events.k8s.io/v1") => event::core_to_events(object),
        ("Event", "events.k8s.io/v1", "v1") => event::events_to_core(object),
        _ => {
            let mut out = object.clone();
            if out.is_object() {
                out["apiVersion"] = json!(to);
            }
            out
        }
    }
}

/// JSON with its object keys in a given order, as Go's encoder writes structs (the
/// round-trip annotations are compared as strings by clients, so their order is kube's).
pub(crate) enum Ordered {
    /// A leaf, written as serde_json writes it.
    Leaf(Value),
    /// An object whose fields are written in this order.
    Object(Vec<(&'static str, Ordered)>),
    /// An array.
    Array(Vec<Ordered>),
}

impl Ordered {
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Ordered::Leaf(v) => out.push_str(&v.to_string()),
            Ordered::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(*k).to_string());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
            Ordered::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrelated_versions_only_change_api_version() {
        let cr = json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "spec": {"a": 1}});
        assert_eq!(
            convert(&cr, "example.com", "v1"),
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"a": 1}})
        );
        assert_eq!(convert(&cr, "example.com", "v1beta1"), cr);
    }

    #[test]
    fn ordered_json_keeps_field_order() {
        let o = Ordered::Object(vec![
            ("b", Ordered::Leaf(json!(1))),
            ("a", Ordered::Array(vec![Ordered::Leaf(json!("x"))])),
        ]);
        assert_eq!(o.render(), r#"{"b":1,"a":["x"]}"#);
    }
}
