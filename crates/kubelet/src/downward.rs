//! The downward API: a pod's own fields (kube's `fieldpath` package) and its containers'
//! resources (kube's `ExtractContainerResourceValue`), as environment variables and as
//! downwardAPI volume files render them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rkube_api::validate_types::Quantity as Amount;

/// A field or resource the downward API cannot give, with kube's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("unsupported fieldPath: {0}")]
    Unsupported(String),
    #[error("fieldPath {0:?} does not support subscript")]
    NoSubscript(String),
    #[error("invalid key subscript in {path}: {reason}")]
    InvalidSubscript { path: String, reason: String },
    #[error("unsupported pod version: {0}")]
    Version(String),
    #[error("unsupported container resource : {0}")]
    UnsupportedResource(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {0}"
    )]
    Quantity(String),
}

/// Splits `metadata.labels['key']` into (`metadata.labels`, `key`) (kube's
/// `SplitMaybeSubscriptedPath`).
pub fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (base, key) = inner.split_once("['")?;
    (!base.is_empty()).then_some((base, key))
}

/// A pod's metadata field as text (kube's `ExtractFieldPathAsString`): name, namespace,
/// uid, labels and annotations (the whole map in [`format_map`]'s form, or one key).
pub fn metadata_field(pod: &Pod, path: &str) -> Result<String, FieldError> {
    let meta = &pod.metadata;
    if let Some((base, key)) = split_subscript(path) {
        let map = match base {
            "metadata.annotations" => {
                check_qualified_name(path, &key.to_lowercase())?;
                &meta.annotations
            }
            "metadata.labels" => {
                check_qualified_name(path, key)?;
                &meta.labels
            }
            _ => return Err(FieldError::NoSubscript(path.to_owned())),
        };
        return Ok(map
            .as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default());
    }
    let empty = BTreeMap::new();
    Ok(match path {
        "metadata.annotations" => format_map(meta.annotations.as_ref().unwrap_or(&empty)),
        "metadata.labels" => format_map(meta.labels.as_ref().unwrap_or(&empty)),
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        _ => return Err(FieldError::Unsupported(path.to_owned())),
    })
}

/// kube's qualified-name check on a label or annotation key subscript.
fn check_qualified_name(path: &str, key: &str) -> Result<(), FieldError> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    if name_ok && prefix_ok {
        return Ok(());
    }
    let reason = if !prefix_ok {
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    } else {
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    };
    Err(FieldError::InvalidSubscript {
        path: path.to_owned(),
        reason: reason.to_owned(),
    })
}

/// kube's `FormatMap`: `key="value"` lines in key order, values quoted as Go's `%q` does,
/// without a final newline.
pub fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote` for valid UTF-8 text.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // Go prints only the ASCII space among spaces, and no other control characters.
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn amount(q: &Quantity) -> Result<Amount, FieldError> {
    Amount::parse(&q.0).map_err(|_| FieldError::Quantity(q.0.clone()))
}

/// A container resource through a `resourceFieldRef` (kube's
/// `ExtractResourceValueByContainerNameAndNodeAllocatable`): the named container of the pod,
/// or `container` when the selector names none; limits that are not set are the node's
/// allocatable; the value divided by the divisor (1 when unset) and rounded up.
pub fn resource_value(
    selector: &ResourceFieldSelector,
    pod: &Pod,
    container: Option<&Container>,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, FieldError> {
    let named = selector.container_name.as_deref().unwrap_or("");
    let container = if named.is_empty() {
        container.ok_or_else(|| FieldError::ContainerNotFound(String::new()))?
    } else {
        find_container(pod, named).ok_or_else(|| FieldError::ContainerNotFound(named.to_owned()))?
    };
    let divisor = match &selector.divisor {
        Some(d) if amount(d)?.milli_value() != 0 => amount(d)?,
        _ => Amount::parse("1").map_err(|_| FieldError::Quantity("1".to_owned()))?,
    };
    let resources = container.resources.as_ref();
    let (kind, name) = selector
        .resource
        .split_once('.')
        .ok_or_else(|| FieldError::UnsupportedResource(selector.resource.clone()))?;
    let supported =
        matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    if !supported {
        return Err(FieldError::UnsupportedResource(selector.resource.clone()));
    }
    let value = match kind {
        "limits" => resources
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get(name))
            .or_else(|| allocatable.get(name)),
        "requests" => resources
            .and_then(|r| r.requests.as_ref())
            .and_then(|l| l.get(name)),
        _ => return Err(FieldError::UnsupportedResource(selector.resource.clone())),
    };
    let value = match value {
        Some(q) => amount(q)?,
        None => Amount::zero(),
    };
    let result = if name == "cpu" {
        ceil_div(value.milli_value(), divisor.milli_value())
    } else {
        ceil_div(value.int_value(), divisor.int_value())
    };
    Ok(result.to_string())
}

/// `ceil(a / b)`, as kube computes it with `math.Ceil` (exact here).
fn ceil_div(a: i64, b: i64) -> i64 {
    if b == 0 {
        return 0;
    }
    let (q, r) = (a / b, a % b);
    if r != 0 && ((r > 0) == (b > 0)) {
        q + 1
    } else {
        q
    }
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    fn q(s: &str) -> Quantity {
        Quantity(s.to_owned())
    }

    fn pod_with(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Pod {
        let list = |l: &[(&str, &str)]| {
            (!l.is_empty()).then(|| l.iter().map(|(k, v)| ((*k).to_owned(), q(v))).collect())
        };
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    resources: Some(ResourceRequirements {
                        limits: list(limits),
                        requests: list(requests),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn value(pod: &Pod, resource: &str, divisor: Option<&str>) -> Result<String, FieldError> {
        let allocatable: BTreeMap<String, Quantity> = [
            ("cpu".to_owned(), q("4")),
            ("memory".to_owned(), q("8Gi")),
            ("ephemeral-storage".to_owned(), q("100Gi")),
        ]
        .into();
        let sel = ResourceFieldSelector {
            container_name: Some("app".into()),
            resource: resource.into(),
            divisor: divisor.map(q),
        };
        resource_value(&sel, pod, None, &allocatable)
    }

    #[test]
    fn cpu_rounds_up_and_memory_divides_by_the_divisor() {
        let pod = pod_with(&[("cpu", "250m"), ("memory", "64Mi")], &[("cpu", "100m")]);
        assert_eq!(value(&pod, "limits.cpu", None).as_deref(), Ok("1"));
        assert_eq!(value(&pod, "limits.cpu", Some("1m")).as_deref(), Ok("250"));
        assert_eq!(value(&pod, "limits.cpu", Some("100m")).as_deref(), Ok("3"));
        assert_eq!(
            value(&pod, "requests.cpu", Some("1m")).as_deref(),
            Ok("100")
        );
        assert_eq!(
            value(&pod, "limits.memory", None).as_deref(),
            Ok("67108864")
        );
        assert_eq!(
            value(&pod, "limits.memory", Some("1Mi")).as_deref(),
            Ok("64")
        );
        // 64Mi in units of 1G rounds up to 1.
        assert_eq!(value(&pod, "limits.memory", Some("1G")).as_deref(), Ok("1"));
        // A divisor of 0 means 1.
        assert_eq!(
            value(&pod, "limits.memory", Some("0")).as_deref(),
            Ok("67108864")
        );
    }

    #[test]
    fn unset_limits_are_the_node_allocatable_and_unset_requests_zero() {
        let pod = pod_with(&[], &[]);
        assert_eq!(value(&pod, "limits.cpu", None).as_deref(), Ok("4"));
        assert_eq!(
            value(&pod, "limits.memory", Some("1Gi")).as_deref(),
            Ok("8")
        );
        assert_eq!(
            value(&pod, "limits.ephemeral-storage", Some("1Gi")).as_deref(),
            Ok("100")
        );
        assert_eq!(value(&pod, "requests.memory", None).as_deref(), Ok("0"));
        assert_eq!(
            value(&pod, "limits.pods", None),
            Err(FieldError::UnsupportedResource("limits.pods".into()))
        );
        let sel = ResourceFieldSelector {
            container_name: Some("nope".into()),
            resource: "limits.cpu".into(),
            divisor: None,
        };
        assert_eq!(
            resource_value(&sel, &pod, None, &BTreeMap::new())
                .unwrap_err()
                .to_string(),
            "container nope not found"
        );
    }

    #[test]
    fn metadata_fields_and_maps_in_kube_format() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.labels = Some(
            [
                ("tier".to_owned(), "front".to_owned()),
                ("app".to_owned(), "a \"b\"\n".to_owned()),
            ]
            .into(),
        );
        assert_eq!(metadata_field(&pod, "metadata.name").as_deref(), Ok("web"));
        assert_eq!(
            metadata_field(&pod, "metadata.labels").as_deref(),
            Ok("app=\"a \\\"b\\\"\\n\"\ntier=\"front\"")
        );
        assert_eq!(
            metadata_field(&pod, "metadata.labels['tier']").as_deref(),
            Ok("front")
        );
        assert_eq!(
            metadata_field(&pod, "metadata.labels['absent']").as_deref(),
            Ok("")
        );
        assert_eq!(
            metadata_field(&pod, "metadata.annotations").as_deref(),
            Ok("")
        );
        assert_eq!(
            metadata_field(&pod, "spec.nodeName")
                .unwrap_err()
                .to_string(),
            "unsupported fieldPath: spec.nodeName"
        );
        assert_eq!(
            metadata_field(&pod, "metadata.name['x']")
                .unwrap_err()
                .to_string(),
            "fieldPath \"metadata.name['x']\" does not support subscript"
        );
        assert!(metadata_field(&pod, "metadata.labels['-bad-']").is_err());
    }

    #[test]
    fn go_quote_escapes_like_strconv() {
        assert_eq!(go_quote("plain"), "\"plain\"");
        assert_eq!(go_quote("tab\there"), "\"tab\\there\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
        assert_eq!(go_quote("é ü"), "\"é ü\"");
        assert_eq!(go_quote("\u{a0}"), "\"\\u00a0\"");
    }
}
