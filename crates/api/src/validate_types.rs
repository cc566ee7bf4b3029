//! kube-apiserver's type-specific validation (Kubernetes v1.33) of built-in objects given as
//! JSON: `pkg/apis/core/validation`, `apps/validation`, `batch/validation`,
//! `networking/validation`, `rbac/validation`, `scheduling/validation`,
//! `autoscaling/validation` and `coordination/validation`, with kube's field paths and
//! messages, so that a create or update can be answered with the same 422 `Invalid` causes.
//!
//! The object is expected to be *defaulted* (as kube validates after defaulting): fields kube
//! defaults (`restartPolicy`, `dnsPolicy`, `imagePullPolicy`, `terminationMessagePolicy`,
//! port `protocol`s, `sessionAffinity`, a Service's `type`, a Deployment's `strategy`, ...)
//! are reported as `Required value` when absent, exactly as kube would. Object metadata is
//! validated by [`crate::validation::validate_object_meta`] and is not checked here; a few
//! strategy steps that kube runs before validation are applied internally (a Service's
//! `clusterIP` is mirrored into `clusterIPs`, a Secret's `stringData` is merged into `data`).
//!
//! Differences from kube that cannot be avoided or were chosen deliberately:
//!
//! - kube's `Not found` error type is missing from [`ErrorKind`]; such errors (a volume mount
//!   naming an unknown volume, ...) are reported as `Invalid value: "x": not found` (see
//!   `not_found` below, the one place to change once the kind exists).
//! - Go renders struct values with `%#v` (`core.PodTemplateSpec{...}`) and spec differences
//!   with `cmp.Diff`; for big structs these are rendered as compact JSON and a simplified
//!   diff. Small structs kube prints in messages (label selectors, label maps, `IntOrString`,
//!   `ServicePort`, `Taint`, `RoleRef`) are rendered exactly as Go does.
//! - Maps are iterated in sorted key order (Go's order is random).
//! - Time zones are checked for syntax only (no tz database), `privileged` containers are
//!   allowed (`--allow-privileged=true`), and feature gates are as defaulted in v1.33.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::selector::LabelSelector;
use crate::validation::{
    ErrorKind, FieldError, go_quote, go_string_slice, inclusive_range_error, is_config_map_key,
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value, max_len_error, regex_error, render_bad_value, validate_annotations,
    validate_labels,
};

type Errs = Vec<FieldError>;

const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";
const IS_NOT_POSITIVE_ERROR_MSG: &str = "must be greater than zero";
const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";
const FILE_MODE_ERROR_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const MAX_INT32: i64 = i32::MAX as i64;
/// `core.MaxSecretSize`: the most bytes of data a ConfigMap or Secret may hold.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const SUPPORTED_PORT_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const INVALID_IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const INVALID_CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Validation of a new object (create): kube's `ValidateX` for the kind, without the object
/// metadata checks. Unknown kinds have no type-specific rules and yield no errors.
pub fn validate_create(group: &str, version: &str, kind: &str, object: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !object.is_object() {
        errs.push(FieldError::invalid_value("", object, "must be an object"));
        return errs;
    }
    let o = object;
    let e = &mut errs;
    match (group, kind) {
        ("", "Pod") => pod_create(o, e),
        ("", "PodTemplate") => pod_template(o, e),
        ("", "ReplicationController") => replication_controller(o, e),
        ("", "Service") => service(o, None, e),
        ("", "ConfigMap") => config_map(o, e),
        ("", "Secret") => secret(o, e),
        ("", "Namespace") => namespace(o, e),
        ("", "Node") => node(o, e),
        ("", "PersistentVolume") => persistent_volume(o, e),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(o, e),
        ("apps", "Deployment") => deployment_spec(o, e),
        ("apps", "ReplicaSet") => replica_set_spec(o, e),
        ("apps", "StatefulSet") => stateful_set_spec(o, e),
        ("apps", "DaemonSet") => daemon_set_spec(o, e),
        ("batch", "Job") => job(o, None, e),
        ("batch", "CronJob") => cron_job(o, None, e),
        ("networking.k8s.io", "Ingress") => ingress(o, None, e),
        (RBAC_GROUP, "Role") => role_rules(o, true, e),
        (RBAC_GROUP, "ClusterRole") => cluster_role(o, e),
        (RBAC_GROUP, "RoleBinding") => role_binding(o, true, e),
        (RBAC_GROUP, "ClusterRoleBinding") => role_binding(o, false, e),
        ("scheduling.k8s.io", "PriorityClass") => priority_class(o, e),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(o, version, e),
        ("coordination.k8s.io", "Lease") => lease(o, e),
        _ => {}
    }
    errs
}

/// Validation of an update: what kube's strategy runs on update for the kind — the checks of
/// [`validate_create`] on the new object plus the rules comparing it with `old` (immutable
/// fields, allowed transitions). As in kube, a few kinds only check the update rules
/// (PriorityClass) or report some spec errors twice (Job, ReplicaSet, DaemonSet, Node).
pub fn validate_update(
    group: &str,
    version: &str,
    kind: &str,
    object: &Value,
    old: &Value,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !object.is_object() {
        errs.push(FieldError::invalid_value("", object, "must be an object"));
        return errs;
    }
    let null = Value::Null;
    let old = if old.is_object() { old } else { &null };
    let (o, e) = (object, &mut errs);
    match (group, kind) {
        ("", "Pod") => pod_update(o, old, e),
        ("", "PodTemplate") => pod_template(o, e),
        ("", "ReplicationController") => replication_controller(o, e),
        ("", "Service") => service(o, Some(old), e),
        ("", "ConfigMap") => {
            config_map_update(o, old, e);
            config_map(o, e);
        }
        ("", "Secret") => {
            secret_update(o, old, e);
            secret(o, e);
        }
        ("", "Namespace") => namespace(o, e),
        ("", "Node") => {
            node(o, e);
            node_update(o, old, e);
        }
        ("", "PersistentVolume") => {
            persistent_volume(o, e);
            persistent_volume_update(o, old, e);
        }
        ("", "PersistentVolumeClaim") => {
            persistent_volume_claim(o, e);
            persistent_volume_claim_update(o, old, e);
        }
        ("apps", "Deployment") => {
            deployment_spec(o, e);
            selector_immutable(o, old, e);
        }
        ("apps", "ReplicaSet") => {
            replica_set_spec(o, e);
            replica_set_spec(o, e);
            selector_immutable(o, old, e);
        }
        ("apps", "StatefulSet") => {
            stateful_set_spec(o, e);
            stateful_set_update(o, old, e);
        }
        ("apps", "DaemonSet") => {
            daemon_set_spec(o, e);
            daemon_set_spec(o, e);
            selector_immutable(o, old, e);
        }
        ("batch", "Job") => job(o, Some(old), e),
        ("batch", "CronJob") => cron_job(o, Some(old), e),
        ("networking.k8s.io", "Ingress") => ingress(o, Some(old), e),
        (RBAC_GROUP, "Role") => role_rules(o, true, e),
        (RBAC_GROUP, "ClusterRole") => cluster_role(o, e),
        (RBAC_GROUP, "RoleBinding") => {
            role_binding(o, true, e);
            role_ref_immutable(o, old, e);
        }
        (RBAC_GROUP, "ClusterRoleBinding") => {
            role_binding(o, false, e);
            role_ref_immutable(o, old, e);
        }
        ("scheduling.k8s.io", "PriorityClass") => priority_class_update(o, old, e),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(o, version, e),
        ("coordination.k8s.io", "Lease") => lease(o, e),
        _ => {}
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Field paths (Go's field.Path)
// ---------------------------------------------------------------------------------------------

/// A field path as Go's `field.Path` prints it: `spec.containers[0].ports[1].name`,
/// `spec.resources.limits[cpu]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Path(String);

impl Path {
    fn new(name: &str) -> Path {
        Path(name.to_string())
    }

    fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    fn key(&self, k: &str) -> Path {
        Path(format!("{}[{k}]", self.0))
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Error constructors
// ---------------------------------------------------------------------------------------------

fn required(p: &Path, detail: &str) -> FieldError {
    FieldError::required(p, detail)
}

fn forbidden(p: &Path, detail: impl Into<String>) -> FieldError {
    FieldError::forbidden(p, detail)
}

fn invalid(p: &Path, value: &str, detail: impl Into<String>) -> FieldError {
    FieldError::invalid(p, value, detail)
}

fn invalid_int(p: &Path, value: i64, detail: impl Into<String>) -> FieldError {
    FieldError::invalid_rendered(p, Some(value.to_string()), detail)
}

fn invalid_raw(p: &Path, rendered: String, detail: impl Into<String>) -> FieldError {
    FieldError::invalid_rendered(p, Some(rendered), detail)
}

fn invalid_json(p: &Path, value: &Value, detail: impl Into<String>) -> FieldError {
    FieldError::invalid_value(p, value, detail)
}

fn not_supported(p: &Path, value: &str, valid: &[&str]) -> FieldError {
    FieldError::not_supported(p, &Value::String(value.to_string()), valid)
}

fn not_supported_raw(p: &Path, rendered: String, valid: &[&str]) -> FieldError {
    let mut e = FieldError::not_supported(p, &Value::Null, valid);
    e.bad_value = Some(rendered);
    e
}

fn duplicate(p: &Path, value: &str) -> FieldError {
    FieldError::duplicate(p, &Value::String(value.to_string()))
}

fn duplicate_raw(p: &Path, rendered: String) -> FieldError {
    FieldError {
        field: p.0.clone(),
        kind: ErrorKind::Duplicate,
        bad_value: Some(rendered),
        message: String::new(),
    }
}

/// Go's `field.NotFound`. [`ErrorKind`] has no `NotFound` variant yet, so this is reported as
/// an invalid value with the detail "not found" (or kube's detail when it sets one).
fn not_found(p: &Path, value: &str, detail: &str) -> FieldError {
    let message = if detail.is_empty() {
        "not found".to_string()
    } else {
        detail.to_string()
    };
    FieldError {
        field: p.0.clone(),
        kind: ErrorKind::Invalid,
        bad_value: Some(go_quote(value)),
        message,
    }
}

fn non_negative(p: &Path, value: i64, errs: &mut Errs) {
    if value < 0 {
        errs.push(invalid_int(p, value, IS_NEGATIVE_ERROR_MSG));
    }
}

// ---------------------------------------------------------------------------------------------
// JSON access: never panics; absent and null are the same
// ---------------------------------------------------------------------------------------------

fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    match v.get(k) {
        None | Some(Value::Null) => None,
        Some(x) => Some(x),
    }
}

fn st<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn opt_str<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn boolean(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map<'a>(v: &'a Value, k: &str) -> Option<&'a Map<String, Value>> {
    v.get(k).and_then(Value::as_object)
}

fn str_list(v: &Value, k: &str) -> Vec<String> {
    arr(v, k)
        .iter()
        .map(|x| x.as_str().unwrap_or("").to_string())
        .collect()
}

/// An integer field: `None` when absent; a value of another type is reported.
fn int_field(v: &Value, k: &str, parent: &Path, errs: &mut Errs) -> Option<i64> {
    match v.get(k) {
        None | Some(Value::Null) => None,
        Some(x) => match x.as_i64() {
            Some(n) => Some(n),
            None => {
                errs.push(invalid_json(&parent.child(k), x, "must be an integer"));
                None
            }
        },
    }
}

/// A string field: `""` when absent; a value of another type is reported.
fn str_field<'a>(v: &'a Value, k: &str, parent: &Path, errs: &mut Errs) -> &'a str {
    match v.get(k) {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s,
        Some(x) => {
            errs.push(invalid_json(&parent.child(k), x, "must be a string"));
            ""
        }
    }
}

/// An array field: empty when absent; a value of another type is reported.
fn arr_field<'a>(v: &'a Value, k: &str, parent: &Path, errs: &mut Errs) -> &'a [Value] {
    match v.get(k) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(a)) => a,
        Some(x) => {
            errs.push(invalid_json(&parent.child(k), x, "must be an array"));
            &[]
        }
    }
}

/// An object field: `None` when absent; a value of another type is reported.
fn obj_field<'a>(v: &'a Value, k: &str, parent: &Path, errs: &mut Errs) -> Option<&'a Value> {
    match v.get(k) {
        None | Some(Value::Null) => None,
        Some(x @ Value::Object(_)) => Some(x),
        Some(x) => {
            errs.push(invalid_json(&parent.child(k), x, "must be an object"));
            None
        }
    }
}

fn required_str(v: &Value, k: &str, parent: &Path, errs: &mut Errs) {
    if st(v, k).is_empty() {
        errs.push(required(&parent.child(k), ""));
    }
}

// ---------------------------------------------------------------------------------------------
// Semantic comparison and diffs
// ---------------------------------------------------------------------------------------------

/// Drops nulls, empty arrays and empty objects (Go's semantic equality treats nil and empty
/// slices and maps alike, and JSON omits empty fields).
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let n = normalize(x);
                let empty = match &n {
                    Value::Null => true,
                    Value::Array(a) => a.is_empty(),
                    Value::Object(o) => o.is_empty(),
                    _ => false,
                };
                if !empty {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn sem_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    let null = Value::Null;
    normalize(a.unwrap_or(&null)) == normalize(b.unwrap_or(&null))
}

fn diff_rec(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<String>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_rec(&p, a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                diff_rec(&format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => {
            if let Some(a) = a {
                out.push(format!("- \t{path}: {}", render_json(a)));
            }
            if let Some(b) = b {
                out.push(format!("+ \t{path}: {}", render_json(b)));
            }
        }
    }
}

/// A simplified rendering of Go's `cmp.Diff(old, new)` (kube appends it to some messages).
fn json_diff(type_name: &str, old: &Value, new: &Value) -> String {
    let (a, b) = (normalize(old), normalize(new));
    let mut lines = Vec::new();
    diff_rec("", Some(&a), Some(&b), &mut lines);
    let mut out = format!("  {type_name}{{\n");
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str("  }\n");
    out
}

fn render_json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Go value rendering (%#v of the small structs kube puts in messages)
// ---------------------------------------------------------------------------------------------

fn go_value_str(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        other => render_json(other),
    }
}

/// `%#v` of a `map[string]string` (keys sorted, as fmt prints maps).
fn go_map(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "map[string]string(nil)".to_string(),
        Some(Value::Object(m)) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = pairs
                .iter()
                .map(|(k, x)| format!("{}:{}", go_quote(k), go_value_str(x)))
                .collect();
            format!("map[string]string{{{}}}", parts.join(", "))
        }
        Some(other) => render_bad_value(other),
    }
}

fn go_strings(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => go_string_slice(None),
        Some(Value::Array(a)) => {
            let strs: Vec<String> = a
                .iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect();
            go_string_slice(Some(&strs))
        }
        Some(other) => render_bad_value(other),
    }
}

/// What a `*metav1.LabelSelector` looks like in a field error (`null` when nil).
fn go_label_selector(v: Option<&Value>) -> String {
    let Some(sel) = v.filter(|s| s.is_object()) else {
        return "null".to_string();
    };
    let exprs = match field(sel, "matchExpressions") {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(st(e, "key")),
                        go_quote(st(e, "operator")),
                        go_strings(e.get("values"))
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", parts.join(", "))
        }
        Some(other) => render_bad_value(other),
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_map(sel.get("matchLabels")),
        exprs
    )
}

/// `%#v` of an `intstr.IntOrString`.
fn go_int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
        Some(Value::Number(n)) => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            n.as_i64().unwrap_or(0)
        ),
        _ => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Value validators (apimachinery util/validation and core helpers)
// ---------------------------------------------------------------------------------------------

/// `IsValidPortNum`.
fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// `IsValidPortName` (an IANA_SVC_NAME).
fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// `IsRelaxedEnvVarName` (the RelaxedEnvironmentVariableValidation gate is on in v1.33).
fn is_relaxed_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .to_string(),
        );
    }
    errs
}

/// `IsHTTPHeaderName`.
fn is_http_header_name(value: &str) -> Vec<String> {
    if !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
    {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid HTTP header must consist of alphanumeric characters or '-'",
            "[-A-Za-z0-9]+",
            &["X-Header-Name"],
        )]
    }
}

/// `IsValidPercent`.
fn is_valid_percent(value: &str) -> Vec<String> {
    let ok = value
        .strip_suffix('%')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            "[0-9]+%",
            &["1%", "93%"],
        )]
    }
}

/// `^_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?$` (one label of a subdomain with underscores).
fn matches_label_with_underscore(s: &str) -> bool {
    let s = s.strip_prefix('_').unwrap_or(s);
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            alnum(f) && alnum(l) && b.iter().all(|&c| alnum(c) || c == b'-' || c == b'_')
        }
        _ => false,
    }
}

/// `IsDNS1123SubdomainWithUnderscore`.
fn is_dns1123_subdomain_with_underscore(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !value.split('.').all(matches_label_with_underscore) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character",
            "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*",
            &["example.com"],
        ));
    }
    errs
}

/// `IsWildcardDNS1123Subdomain`.
fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    let ok = value.strip_prefix("*.").is_some_and(|rest| {
        is_dns1123_subdomain(rest)
            .iter()
            .all(|m| m.starts_with("must be no more"))
    });
    if !ok {
        errs.push(regex_error(
            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
            "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            &["*.example.com"],
        ));
    }
    errs
}

/// `path.IsValidPathSegmentName` (RBAC names, HPA target kinds and names).
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    let mut errs = Vec::new();
    for illegal in ["/", "%"] {
        if name.contains(illegal) {
            errs.push(format!("may not contain '{illegal}'"));
        }
    }
    errs
}

/// `NameIsDNSSubdomain(name, prefix)`: with `prefix`, a trailing dash is allowed.
fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix && name.len() > 1 && name.ends_with('-') {
        let cut = name.len() - 2;
        let masked = match name.get(..cut) {
            Some(h) => format!("{h}a"),
            None => name.to_string(),
        };
        return is_dns1123_subdomain(&masked);
    }
    is_dns1123_subdomain(name)
}

/// Go's `netutils.ParseIPSloppy`: IPv4 octets may have leading zeros.
fn parse_ip_sloppy(s: &str) -> Option<std::net::IpAddr> {
    if s.contains(':') {
        if s.contains('%') {
            return None;
        }
        return s
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(std::net::IpAddr::V6);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let trimmed = p.trim_start_matches('0');
        if trimmed.len() > 3 {
            return None;
        }
        let n: u32 = if trimmed.is_empty() {
            0
        } else {
            trimmed.parse().ok()?
        };
        octets[i] = u8::try_from(n).ok()?;
    }
    Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(octets)))
}

/// Whether an address is IPv6 in Go's sense (`To4() == nil`): IPv4-mapped addresses are IPv4.
fn ip_is_v6(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(_) => false,
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_none(),
    }
}

/// `validation.IsValidIP`.
fn is_valid_ip(p: &Path, value: &str, errs: &mut Errs) -> bool {
    if parse_ip_sloppy(value).is_none() {
        errs.push(invalid(p, value, INVALID_IP_MSG));
        return false;
    }
    true
}

/// `netutils.ParseCIDRSloppy`.
fn parse_cidr_sloppy(s: &str) -> Option<(std::net::IpAddr, u32)> {
    let (ip, bits) = s.split_once('/')?;
    let ip = parse_ip_sloppy(ip)?;
    if bits.is_empty() || !bits.bytes().all(|c| c.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let bits: u32 = bits.parse().ok()?;
    let max = if matches!(ip, std::net::IpAddr::V4(_)) {
        32
    } else {
        128
    };
    (bits <= max).then_some((ip, bits))
}

/// `validation.IsValidCIDR`.
fn is_valid_cidr(p: &Path, value: &str, errs: &mut Errs) {
    if parse_cidr_sloppy(value).is_none() {
        errs.push(invalid(p, value, INVALID_CIDR_MSG));
    }
}

/// `ValidateNonSpecialIP`.
fn validate_non_special_ip(value: &str, p: &Path, errs: &mut Errs) {
    let Some(ip) = parse_ip_sloppy(value) else {
        errs.push(invalid(p, value, "must be a valid IP address"));
        return;
    };
    let ip = match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    };
    if ip.is_unspecified() {
        errs.push(invalid(
            p,
            value,
            format!("may not be unspecified ({value})"),
        ));
    }
    if ip.is_loopback() {
        errs.push(invalid(
            p,
            value,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let (link_local_unicast, link_local_multicast) = match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            (
                o[0] == 169 && o[1] == 254,
                o[0] == 224 && o[1] == 0 && o[2] == 0,
            )
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            (s[0] & 0xffc0 == 0xfe80, s[0] & 0xff0f == 0xff02)
        }
    };
    if link_local_unicast {
        errs.push(invalid(
            p,
            value,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        errs.push(invalid(
            p,
            value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

fn dns1123_label(value: &str, p: &Path, errs: &mut Errs) {
    for msg in is_dns1123_label(value) {
        errs.push(invalid(p, value, msg));
    }
}

fn dns1123_subdomain(value: &str, p: &Path, errs: &mut Errs) {
    for msg in is_dns1123_subdomain(value) {
        errs.push(invalid(p, value, msg));
    }
}

fn qualified_name(value: &str, p: &Path, errs: &mut Errs) {
    for msg in is_qualified_name(value) {
        errs.push(invalid(p, value, msg));
    }
}

/// `validateLocalDescendingPath`: relative, without `..` elements.
fn local_descending_path(target: &str, p: &Path, errs: &mut Errs) {
    if target.starts_with('/') {
        errs.push(invalid(p, target, "must be a relative path"));
    }
    path_no_backsteps(target, p, errs);
}

fn path_no_backsteps(target: &str, p: &Path, errs: &mut Errs) {
    if target.split('/').any(|s| s == "..") {
        errs.push(invalid(p, target, "must not contain '..'"));
    }
}

/// `ValidateLocalNonReservedPath`.
fn local_non_reserved_path(target: &str, p: &Path, errs: &mut Errs) {
    local_descending_path(target, p, errs);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(invalid(p, target, "must not start with '..'"));
    }
}

/// `ValidatePortNumOrName` for an `IntOrString` port (absent is the integer 0).
fn port_num_or_name(v: Option<&Value>, p: &Path, errs: &mut Errs) {
    match v {
        Some(Value::String(s)) => {
            for msg in is_valid_port_name(s) {
                errs.push(invalid(p, s, msg));
            }
        }
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for msg in is_valid_port_num(n) {
                errs.push(invalid_int(p, n, msg));
            }
        }
        None | Some(Value::Null) => {
            for msg in is_valid_port_num(0) {
                errs.push(invalid_int(p, 0, msg));
            }
        }
        Some(other) => errs.push(invalid_json(p, other, "must be an integer or a string")),
    }
}

/// `unversionedvalidation.ValidateLabels` for an optional JSON map.
fn label_map(v: Option<&Value>, p: &Path, errs: &mut Errs) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => errs.extend(validate_labels(m, &p.0)),
        Some(other) => errs.push(invalid_json(p, other, "must be an object")),
    }
}

fn annotation_map(v: Option<&Value>, p: &Path, errs: &mut Errs) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => errs.extend(validate_annotations(m, &p.0)),
        Some(other) => errs.push(invalid_json(p, other, "must be an object")),
    }
}

/// `ValidateLabelName`.
fn label_name(name: &str, p: &Path, errs: &mut Errs) {
    qualified_name(name, p, errs);
}

/// `unversionedvalidation.ValidateLabelSelector` for a `*metav1.LabelSelector` (JSON).
fn validate_label_selector(sel: &Value, allow_invalid_values: bool, p: &Path, errs: &mut Errs) {
    match sel {
        Value::Null => return,
        Value::Object(_) => {}
        other => {
            errs.push(invalid_json(p, other, "must be an object"));
            return;
        }
    }
    label_map(sel.get("matchLabels"), &p.child("matchLabels"), errs);
    let exprs_path = p.child("matchExpressions");
    for (i, expr) in arr_field(sel, "matchExpressions", p, errs)
        .iter()
        .enumerate()
    {
        let ip = exprs_path.index(i);
        let op = st(expr, "operator");
        let values = arr(expr, "values");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &ip.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &ip.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(invalid(
                &ip.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        label_name(st(expr, "key"), &ip.child("key"), errs);
        if !allow_invalid_values {
            for (vi, v) in values.iter().enumerate() {
                let vs = v.as_str().unwrap_or("");
                for msg in is_valid_label_value(vs) {
                    errs.push(invalid(&ip.child("values").index(vi), vs, msg));
                }
            }
        }
    }
}

/// The label map of an object (`{}` when absent).
fn labels_of(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Resource quantities (k8s.io/apimachinery/pkg/api/resource)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantityFormat {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// A parsed `resource.Quantity`: `mantissa * 10^exponent`, with its format and, when Go keeps
/// the original text (already canonical), that text.
#[derive(Clone, Debug)]
pub struct Quantity {
    mantissa: i128,
    exponent: i32,
    format: QuantityFormat,
    cached: Option<String>,
}

const QUANTITY_FORMAT_ERR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const QUANTITY_NUMERIC_ERR: &str = "unable to parse numeric part of quantity";
const QUANTITY_SUFFIX_ERR: &str = "unable to parse quantity's suffix";

struct QuantityParts<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// Go's `parseQuantityString`.
fn parse_quantity_string(s: &str) -> Result<QuantityParts<'_>, &'static str> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    let zero = QuantityParts {
        positive,
        num: "0",
        denom: "",
        suffix: "",
    };
    if pos >= end {
        return Ok(zero);
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = s.get(num_start..pos).unwrap_or("");
    if pos >= end {
        return Ok(QuantityParts {
            positive,
            num,
            denom: "",
            suffix: "",
        });
    }
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let d_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = s.get(d_start..pos).unwrap_or("");
        if pos >= end {
            return Ok(QuantityParts {
                positive,
                num,
                denom,
                suffix: "",
            });
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QUANTITY_FORMAT_ERR);
    }
    Ok(QuantityParts {
        positive,
        num,
        denom,
        suffix: s.get(suffix_start..).unwrap_or(""),
    })
}

/// Go's `suffixHandler.interpret`: (base, exponent, format).
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, QuantityFormat)> {
    let dec = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = dec {
        return Some((10, e, QuantityFormat::DecimalSI));
    }
    let bin = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = bin {
        return Some((2, e, QuantityFormat::BinarySI));
    }
    if suffix.len() > 1 && (suffix.starts_with('e') || suffix.starts_with('E')) {
        let parsed: i64 = suffix.get(1..)?.parse().ok()?;
        return Some((10, parsed as i32, QuantityFormat::DecimalExponent));
    }
    None
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Compares `a * 10^ea` with `b * 10^eb`.
fn cmp_scaled(a: i128, ea: i32, b: i128, eb: i32) -> Ordering {
    let (lo, hi) = if ea <= eb { (ea, eb) } else { (eb, ea) };
    let shift = u32::try_from(hi - lo).unwrap_or(u32::MAX);
    let scaled = pow10(shift);
    let (x, y) = if ea >= eb {
        (scaled.and_then(|p| a.checked_mul(p)), Some(b))
    } else {
        (Some(a), scaled.and_then(|p| b.checked_mul(p)))
    };
    match (x, y) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let fa = a as f64 * 10f64.powi(ea);
            let fb = b as f64 * 10f64.powi(eb);
            fa.partial_cmp(&fb).unwrap_or(Ordering::Equal)
        }
    }
}

impl Quantity {
    pub fn zero() -> Quantity {
        Quantity {
            mantissa: 0,
            exponent: 0,
            format: QuantityFormat::DecimalSI,
            cached: None,
        }
    }

    /// `resource.ParseQuantity`.
    pub fn parse(s: &str) -> Result<Quantity, &'static str> {
        if s.is_empty() {
            return Err(QUANTITY_FORMAT_ERR);
        }
        if s == "0" {
            let mut q = Quantity::zero();
            q.cached = Some("0".to_string());
            return Ok(q);
        }
        let parts = parse_quantity_string(s)?;
        let (base, exponent, format) = interpret_suffix(parts.suffix).ok_or(QUANTITY_SUFFIX_ERR)?;
        // Absurd exponents (`1e-2147483648`) are clamped so the arithmetic below cannot overflow.
        let exponent = exponent.clamp(-100_000, 100_000);
        let sign: i128 = if parts.positive { 1 } else { -1 };
        let nl = parts.num.len() as i32;
        let dl = parts.denom.len() as i32;
        let shifted = format!("{}{}", parts.num, parts.denom);

        // Go's int64 fast path (exact, not capped), which keeps canonical text as is.
        match format {
            QuantityFormat::DecimalSI | QuantityFormat::DecimalExponent => {
                let scale = exponent - dl;
                if 18 - (nl + dl) >= 0
                    && scale >= -9
                    && let Ok(v) = shifted.parse::<i64>()
                {
                    let canonical =
                        scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0');
                    return Ok(Quantity {
                        mantissa: sign * i128::from(v),
                        exponent: scale,
                        format,
                        cached: canonical.then(|| s.to_string()),
                    });
                }
            }
            QuantityFormat::BinarySI => {
                let precision = 15 - nl - ((exponent as f32) * 3.0 / 10.0) as i32 - 1;
                if exponent >= 0 && dl == 0 && precision >= 0 {
                    let mult = 1i64.checked_shl(exponent as u32);
                    if let (Ok(v), Some(m)) = (shifted.parse::<i64>(), mult)
                        && let Some(r) = v.checked_mul(m)
                    {
                        let canonical = exponent % 10 == 0 && (v & 0x07) != 0;
                        return Ok(Quantity {
                            mantissa: sign * i128::from(r),
                            exponent: 0,
                            format,
                            cached: canonical.then(|| s.to_string()),
                        });
                    }
                }
            }
        }

        // The slow path: exact decimal, rounded up to nano precision, capped at 2^63-1.
        let digits = shifted.trim_start_matches('0');
        let mut exp10 = -dl;
        let mut sticky = false;
        let kept = if digits.len() > 38 {
            let (head, tail) = digits.split_at(38);
            sticky = tail.bytes().any(|c| c != b'0');
            exp10 += (digits.len() - 38) as i32;
            head
        } else {
            digits
        };
        let mut mant: i128 = if kept.is_empty() {
            0
        } else {
            kept.parse().map_err(|_| QUANTITY_NUMERIC_ERR)?
        };
        let cap = i128::from(i64::MAX);
        let mut capped = false;
        if base == 10 {
            exp10 += exponent;
        } else {
            match 1i128
                .checked_shl(exponent.max(0) as u32)
                .and_then(|m| mant.checked_mul(m))
            {
                Some(v) => mant = v,
                None => capped = true,
            }
        }
        if !capped && (mant != 0 || sticky) && exp10 < -9 {
            let k = u32::try_from(-9 - exp10).unwrap_or(u32::MAX);
            match pow10(k) {
                Some(p) => {
                    let (q, r) = (mant / p, mant % p);
                    mant = if r != 0 || sticky { q + 1 } else { q };
                }
                None => mant = 1,
            }
            exp10 = -9;
        } else if sticky {
            capped = true;
        }
        if capped || cmp_scaled(mant, exp10, cap, 0) == Ordering::Greater {
            mant = cap;
            exp10 = 0;
        }
        let mut format = format;
        if format == QuantityFormat::BinarySI
            && mant > 0
            && cmp_scaled(mant, exp10, 1, 0) == Ordering::Less
        {
            format = QuantityFormat::DecimalSI;
        }
        Ok(Quantity {
            mantissa: sign * mant,
            exponent: exp10,
            format,
            cached: None,
        })
    }

    fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    fn cmp(&self, other: &Quantity) -> Ordering {
        cmp_scaled(self.mantissa, self.exponent, other.mantissa, other.exponent)
    }

    /// Whether this quantity is larger than `other`.
    pub fn greater_than(&self, other: &Quantity) -> bool {
        self.cmp(other) == Ordering::Greater
    }

    /// The integer value when the quantity has no fractional part.
    fn as_integer(&self) -> Option<i128> {
        if self.mantissa == 0 {
            return Some(0);
        }
        if self.exponent >= 0 {
            pow10(self.exponent as u32).and_then(|p| self.mantissa.checked_mul(p))
        } else {
            let p = pow10((-self.exponent) as u32)?;
            (self.mantissa % p == 0).then(|| self.mantissa / p)
        }
    }

    /// Go's `Value()`: rounded up to an integer.
    fn value(&self) -> i128 {
        if self.exponent >= 0 {
            return self.as_integer().unwrap_or(i128::MAX);
        }
        match pow10((-self.exponent) as u32) {
            Some(p) => {
                let (q, r) = (self.mantissa / p, self.mantissa % p);
                if r > 0 { q + 1 } else { q }
            }
            None => i128::from(self.mantissa > 0),
        }
    }

    fn is_whole(&self) -> bool {
        self.as_integer().is_some() || self.exponent >= 0
    }

    /// Go's `Quantity.Value()`: the value rounded up to an integer, saturating at i64.
    pub fn int_value(&self) -> i64 {
        let v = self.value();
        v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Go's `Quantity.MilliValue()`: the value in thousandths, rounded up, saturating at i64.
    pub fn milli_value(&self) -> i64 {
        let milli = Quantity {
            mantissa: self.mantissa,
            exponent: self.exponent.saturating_add(3),
            format: self.format,
            cached: None,
        };
        milli.int_value()
    }

    /// `Quantity.Add`: the sum, in the receiver's format (the other's when this is zero).
    pub fn add(&self, other: &Quantity) -> Quantity {
        let exponent = self.exponent.min(other.exponent);
        let scale = |q: &Quantity| {
            u32::try_from(q.exponent - exponent)
                .ok()
                .and_then(pow10)
                .and_then(|p| q.mantissa.checked_mul(p))
        };
        let mantissa = match (scale(self), scale(other)) {
            (Some(a), Some(b)) => a.saturating_add(b),
            _ => i128::MAX,
        };
        Quantity {
            mantissa,
            exponent,
            format: if self.is_zero() {
                other.format
            } else {
                self.format
            },
            cached: None,
        }
    }

    /// Go's `Quantity.String()`: the canonical form (`1000m` is `1`, `1024Mi` is `1Gi`).
    pub fn to_go_string(&self) -> String {
        if let Some(c) = &self.cached {
            return c.clone();
        }
        if self.is_zero() {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == QuantityFormat::BinarySI {
            let small = cmp_scaled(self.mantissa, self.exponent, -1024, 0) == Ordering::Greater
                && cmp_scaled(self.mantissa, self.exponent, 1024, 0) == Ordering::Less;
            match self.as_integer() {
                Some(mut v) if !small => {
                    let mut times = 0;
                    while v.abs() >= 1024 && v % 1024 == 0 {
                        v /= 1024;
                        times += 1;
                    }
                    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
                        .get(times)
                        .copied()
                        .unwrap_or("");
                    return format!("{v}{suffix}");
                }
                _ => format = QuantityFormat::DecimalSI,
            }
        }
        let mut m = self.mantissa;
        let mut e = self.exponent;
        while m.abs() >= 10 && m % 10 == 0 {
            m /= 10;
            e += 1;
        }
        while e % 3 != 0 {
            m = m.saturating_mul(10);
            e -= 1;
        }
        let suffix = match format {
            QuantityFormat::DecimalExponent => {
                if e == 0 {
                    String::new()
                } else {
                    format!("e{e}")
                }
            }
            _ => match e {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                18 => "E",
                _ => "",
            }
            .to_string(),
        };
        format!("{m}{suffix}")
    }
}

/// A quantity given in JSON (a string, or a number as its literal text).
fn parse_quantity_json(v: &Value) -> Result<Quantity, String> {
    match v {
        Value::String(s) => Quantity::parse(s.trim()).map_err(str::to_string),
        Value::Number(n) => Quantity::parse(&n.to_string()).map_err(str::to_string),
        _ => Err(QUANTITY_FORMAT_ERR.to_string()),
    }
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_huge_page_resource(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_extended_resource_name(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_huge_page_resource(name)
}

fn is_integer_resource_name(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "resourcequotas"
            | "services"
            | "replicationcontrollers"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_extended_resource_name(name)
}

fn is_standard_resource_name(name: &str) -> bool {
    matches!(
        name,
        "cpu"
            | "memory"
            | "ephemeral-storage"
            | "requests.cpu"
            | "requests.memory"
            | "requests.ephemeral-storage"
            | "limits.cpu"
            | "limits.memory"
            | "limits.ephemeral-storage"
            | "pods"
            | "resourcequotas"
            | "services"
            | "replicationcontrollers"
            | "secrets"
            | "persistentvolumeclaims"
            | "configmaps"
            | "storage"
            | "requests.storage"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_huge_page_resource(name)
        || name.starts_with("requests.hugepages-")
        || name.starts_with("limits.hugepages-")
}

/// `validateContainerResourceName`.
fn container_resource_name(name: &str, p: &Path, errs: &mut Errs) {
    let before = errs.len();
    qualified_name(name, p, errs);
    if errs.len() == before && !name.contains('/') && !is_standard_resource_name(name) {
        errs.push(invalid(
            p,
            name,
            "must be a standard resource type or fully qualified",
        ));
    }
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_huge_page_resource(name) {
            errs.push(invalid(
                p,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource_name(name) {
        errs.push(invalid(
            p,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// `ValidateResourceQuantityValue`: not negative, whole for integer resources.
fn resource_quantity_value(name: &str, q: &Quantity, p: &Path, errs: &mut Errs) {
    if q.is_negative() {
        errs.push(invalid(p, &q.to_go_string(), IS_NEGATIVE_ERROR_MSG));
    }
    if is_integer_resource_name(name) && !q.is_whole() {
        errs.push(invalid(p, &q.to_go_string(), "must be an integer"));
    }
}

/// `validateResourceQuantityHugePageValue`.
fn huge_page_value(name: &str, q: &Quantity, p: &Path, errs: &mut Errs) {
    let page = name.strip_prefix("hugepages-").map(Quantity::parse);
    let divisible = match page {
        Some(Ok(page)) if page.mantissa > 0 && page.is_whole() => {
            let size = page.value();
            size != 0 && q.value() % size == 0
        }
        _ => false,
    };
    if !divisible {
        let s = q.to_go_string();
        errs.push(invalid(
            p,
            &s,
            format!("{s} is not positive integer multiple of {name}"),
        ));
    }
}

/// Parses the quantities of a resource list (`limits`, `requests`, `capacity`), reporting the
/// ones that do not parse.
fn quantities(list: Option<&Value>, p: &Path, errs: &mut Errs) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    match list {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match parse_quantity_json(v) {
                    Ok(q) => {
                        out.insert(k.clone(), q);
                    }
                    Err(msg) => errs.push(invalid_json(&p.key(k), v, msg)),
                }
            }
        }
        Some(other) => errs.push(invalid_json(p, other, "must be an object")),
    }
    out
}

/// `validateResourceRequirements` for containers (and the pod overhead).
fn resource_requirements(res: &Value, claim_names: &BTreeSet<String>, p: &Path, errs: &mut Errs) {
    let lim_path = p.child("limits");
    let req_path = p.child("requests");
    let limits = quantities(res.get("limits"), &lim_path, errs);
    let requests = quantities(res.get("requests"), &req_path, errs);
    let (mut lim_cpu_mem, mut req_cpu_mem, mut lim_huge, mut req_huge) =
        (false, false, false, false);
    for (name, q) in &limits {
        let fp = lim_path.key(name);
        container_resource_name(name, &fp, errs);
        resource_quantity_value(name, q, &fp, errs);
        if is_huge_page_resource(name) {
            lim_huge = true;
            huge_page_value(name, q, &fp, errs);
        }
        if name == "cpu" || name == "memory" {
            lim_cpu_mem = true;
        }
    }
    for (name, q) in &requests {
        let fp = req_path.key(name);
        container_resource_name(name, &fp, errs);
        resource_quantity_value(name, q, &fp, errs);
        match limits.get(name) {
            Some(limit) => {
                let ord = q.cmp(limit);
                if ord != Ordering::Equal && !is_overcommit_allowed(name) {
                    errs.push(invalid(
                        &req_path,
                        &q.to_go_string(),
                        format!("must be equal to {name} limit of {}", limit.to_go_string()),
                    ));
                } else if ord == Ordering::Greater {
                    errs.push(invalid(
                        &req_path,
                        &q.to_go_string(),
                        format!(
                            "must be less than or equal to {name} limit of {}",
                            limit.to_go_string()
                        ),
                    ));
                }
            }
            None => {
                if !is_overcommit_allowed(name) {
                    errs.push(required(
                        &lim_path,
                        "Limit must be set for non overcommitable resources",
                    ));
                }
            }
        }
        if is_huge_page_resource(name) {
            req_huge = true;
            huge_page_value(name, q, &fp, errs);
        }
        if name == "cpu" || name == "memory" {
            req_cpu_mem = true;
        }
    }
    if !lim_cpu_mem && !req_cpu_mem && (req_huge || lim_huge) {
        errs.push(forbidden(p, "HugePages require cpu or memory"));
    }
    // validateResourceClaimNames
    let claims_path = p.child("claims");
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (i, claim) in arr_field(res, "claims", p, errs).iter().enumerate() {
        let ip = claims_path.index(i);
        let name = st(claim, "name");
        if name.is_empty() {
            errs.push(required(&ip, ""));
            continue;
        }
        let request = st(claim, "request");
        if names.contains(name) {
            errs.push(duplicate(&ip, name));
        } else {
            let mut key = name.to_string();
            if !request.is_empty() {
                dns1123_label(request, &ip.child("request"), errs);
                key = format!("{name}/{request}");
            }
            if names.contains(&key) {
                errs.push(duplicate(&ip, &key));
            } else if request.is_empty() {
                for existing in &names {
                    if existing.split_once('/').is_some_and(|(n, _)| n == name) {
                        errs.push(duplicate(&ip, name));
                    }
                }
            }
            names.insert(key);
        }
        if !claim_names.contains(name) {
            let mut detail = "must be one of the names in pod.spec.resourceClaims".to_string();
            if claim_names.is_empty() {
                detail.push_str(" which is empty");
            } else {
                let list: Vec<&str> = claim_names.iter().map(String::as_str).collect();
                detail.push_str(&format!(": {}", list.join(", ")));
            }
            errs.push(not_found(&ip, name, &detail));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pod spec (core/validation: ValidatePodSpec and friends)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct PodOpts {
    /// The spec is a Pod's, not a template's (`opts.ResourceIsPod`).
    resource_is_pod: bool,
}

/// What container validation needs to know about the pod spec.
struct SpecCtx<'a> {
    volumes: BTreeMap<String, &'a Value>,
    claim_names: BTreeSet<String>,
    grace: Option<i64>,
    restart_policy: &'a str,
    host_users: bool,
}

/// (JSON key, the name kube uses in the "more than 1 volume type" path) in kube's order.
const VOLUME_SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

fn file_mode(v: &Value, k: &str, parent: &Path, errs: &mut Errs) {
    if let Some(m) = int_field(v, k, parent, errs)
        && !(0..=0o777).contains(&m)
    {
        errs.push(invalid_int(&parent.child(k), m, FILE_MODE_ERROR_MSG));
    }
}

/// `validateKeyToPath`.
fn key_to_path(kp: &Value, p: &Path, errs: &mut Errs) {
    required_str(kp, "key", p, errs);
    required_str(kp, "path", p, errs);
    local_non_reserved_path(st(kp, "path"), &p.child("path"), errs);
    file_mode(kp, "mode", p, errs);
}

const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const CONTAINER_RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// `fieldpath.SplitMaybeSubscriptedPath`.
fn split_subscripted(path: &str) -> Option<(&str, &str)> {
    let s = path.strip_suffix("']")?;
    let (head, sub) = s.split_once("['")?;
    (!head.is_empty()).then_some((head, sub))
}

/// `validateObjectFieldSelector`.
fn object_field_selector(fs: &Value, expressions: &[&str], p: &Path, errs: &mut Errs) {
    let api_version = st(fs, "apiVersion");
    let field_path = st(fs, "fieldPath");
    if api_version.is_empty() {
        errs.push(required(&p.child("apiVersion"), ""));
        return;
    }
    if field_path.is_empty() {
        errs.push(required(&p.child("fieldPath"), ""));
        return;
    }
    // podshelper.ConvertDownwardAPIFieldLabel
    let converted = if api_version != "v1" {
        Err(format!("unsupported pod version: {api_version}"))
    } else if let Some((head, _)) = split_subscripted(field_path) {
        if head == "metadata.annotations" || head == "metadata.labels" {
            Ok(field_path.to_string())
        } else {
            Err(format!(
                "field label does not support subscript: {field_path}"
            ))
        }
    } else {
        match field_path {
            "metadata.annotations"
            | "metadata.labels"
            | "metadata.name"
            | "metadata.namespace"
            | "metadata.uid"
            | "spec.nodeName"
            | "spec.restartPolicy"
            | "spec.serviceAccountName"
            | "spec.schedulerName"
            | "status.phase"
            | "status.hostIP"
            | "status.hostIPs"
            | "status.podIP"
            | "status.podIPs" => Ok(field_path.to_string()),
            "spec.host" => Ok("spec.nodeName".to_string()),
            _ => Err(format!("field label not supported: {field_path}")),
        }
    };
    let internal = match converted {
        Ok(c) => c,
        Err(e) => {
            errs.push(invalid(
                &p.child("fieldPath"),
                field_path,
                format!("error converting fieldPath: {e}"),
            ));
            return;
        }
    };
    if let Some((head, sub)) = split_subscripted(&internal) {
        match head {
            "metadata.annotations" => qualified_name(&sub.to_lowercase(), p, errs),
            "metadata.labels" => qualified_name(sub, p, errs),
            _ => errs.push(invalid(p, head, "does not support subscript")),
        }
    } else if !expressions.contains(&internal.as_str()) {
        errs.push(not_supported(&p.child("fieldPath"), &internal, expressions));
    }
}

/// `validateContainerResourceFieldSelector`.
fn resource_field_selector(fs: &Value, volume: bool, p: &Path, errs: &mut Errs) {
    let resource = st(fs, "resource");
    if volume && st(fs, "containerName").is_empty() {
        errs.push(required(&p.child("containerName"), ""));
    } else if resource.is_empty() {
        errs.push(required(&p.child("resource"), ""));
    } else if !CONTAINER_RESOURCE_FIELDS.contains(&resource)
        && !resource.starts_with("requests.hugepages-")
        && !resource.starts_with("limits.hugepages-")
    {
        errs.push(not_supported(
            &p.child("resource"),
            resource,
            CONTAINER_RESOURCE_FIELDS,
        ));
    }
}

/// `validateDownwardAPIVolumeFile`.
fn downward_api_file(file: &Value, p: &Path, errs: &mut Errs) {
    required_str(file, "path", p, errs);
    local_non_reserved_path(st(file, "path"), &p.child("path"), errs);
    match (field(file, "fieldRef"), field(file, "resourceFieldRef")) {
        (Some(fr), rfr) => {
            object_field_selector(fr, VOLUME_FIELD_PATHS, &p.child("fieldRef"), errs);
            if rfr.is_some() {
                errs.push(invalid(
                    p,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                ));
            }
        }
        (None, Some(rfr)) => resource_field_selector(rfr, true, &p.child("resourceFieldRef"), errs),
        (None, None) => errs.push(required(
            p,
            "one of fieldRef and resourceFieldRef is required",
        )),
    }
    file_mode(file, "mode", p, errs);
}

/// `validateProjectionSources`.
fn projection_sources(projected: &Value, p: &Path, errs: &mut Errs) {
    let mut all_paths: BTreeSet<String> = BTreeSet::new();
    let sources_path = p.child("sources");
    for (i, source) in arr(projected, "sources").iter().enumerate() {
        let sp = sources_path.index(i);
        let mut num = 0;
        for kind in ["secret", "configMap"] {
            if let Some(src) = field(source, kind) {
                num += 1;
                let pp = sp.child(kind);
                required_str(src, "name", &pp, errs);
                for (j, kp) in arr(src, "items").iter().enumerate() {
                    key_to_path(kp, &pp.child("items").index(j), errs);
                    let path = st(kp, "path");
                    if !path.is_empty() && !all_paths.insert(path.to_string()) {
                        errs.push(invalid(p, st(src, "name"), "conflicting duplicate paths"));
                    }
                }
            }
        }
        if let Some(src) = field(source, "downwardAPI") {
            num += 1;
            let pp = sp.child("downwardAPI");
            for file in arr(src, "items") {
                downward_api_file(file, &pp, errs);
                let path = st(file, "path");
                if !path.is_empty() && !all_paths.insert(path.to_string()) {
                    errs.push(invalid(p, path, "conflicting duplicate paths"));
                }
            }
        }
        if let Some(src) = field(source, "serviceAccountToken") {
            num += 1;
            let pp = sp.child("serviceAccountToken");
            let exp = src
                .get("expirationSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if exp < 600 {
                errs.push(invalid_int(
                    &pp.child("expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(invalid_int(
                    &pp.child("expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            let path = st(src, "path");
            if path.is_empty() {
                errs.push(required(&p.child("path"), ""));
            } else {
                local_non_reserved_path(path, &p.child("path"), errs);
            }
        }
        if let Some(src) = field(source, "clusterTrustBundle") {
            num += 1;
            let pp = sp.child("clusterTrustBundle");
            let has_name = field(src, "name").is_some();
            let has_signer = field(src, "signerName").is_some();
            match (has_name, has_signer) {
                (true, true) => errs.push(invalid_json(
                    &pp,
                    src,
                    "only one of name and signerName may be used",
                )),
                (true, false) => {
                    if st(src, "name").is_empty() {
                        errs.push(required(&pp.child("name"), "must be a valid object name"));
                    }
                }
                (false, true) => {
                    if st(src, "signerName").is_empty() {
                        errs.push(required(
                            &pp.child("signerName"),
                            "must be a valid signer name",
                        ));
                    }
                }
                (false, false) => {
                    errs.push(required(&pp, "either name or signerName must be specified"))
                }
            }
            let path = st(src, "path");
            if path.is_empty() {
                errs.push(required(&pp.child("path"), ""));
            }
            local_non_reserved_path(path, &pp.child("path"), errs);
            if !all_paths.insert(path.to_string()) {
                errs.push(invalid(p, path, "conflicting duplicate paths"));
            }
        }
        if num > 1 {
            errs.push(forbidden(
                &sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
}

/// `validateVolumeSource`: exactly one source, and the source's own rules.
fn volume_source(
    vol: &Value,
    name: &str,
    pod_name: Option<&str>,
    opts: PodOpts,
    p: &Path,
    errs: &mut Errs,
) {
    let mut num = 0;
    for (key, forbidden_name) in VOLUME_SOURCES {
        let Some(src) = field(vol, key) else {
            continue;
        };
        if num > 0 {
            errs.push(forbidden(
                &p.child(forbidden_name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        num += 1;
        let sp = p.child(key);
        match *key {
            "emptyDir" => {
                if let Some(limit) = field(src, "sizeLimit") {
                    match parse_quantity_json(limit) {
                        Ok(q) if q.is_negative() => errs.push(forbidden(
                            &sp.child("sizeLimit"),
                            "SizeLimit field must be a valid resource quantity",
                        )),
                        Ok(_) => {}
                        Err(msg) => errs.push(invalid_json(&sp.child("sizeLimit"), limit, msg)),
                    }
                }
            }
            "hostPath" => host_path_source(src, &sp, errs),
            "gitRepo" => {
                required_str(src, "repository", &sp, errs);
                local_descending_path(st(src, "directory"), &sp.child("directory"), errs);
            }
            "gcePersistentDisk" => {
                let pp = p.child("persistentDisk");
                required_str(src, "pdName", &pp, errs);
                partition(src, &pp, errs);
            }
            "awsElasticBlockStore" => {
                required_str(src, "volumeID", &sp, errs);
                partition(src, &sp, errs);
            }
            "secret" => {
                required_str(src, "secretName", &sp, errs);
                file_mode(src, "defaultMode", &sp, errs);
                for (i, kp) in arr(src, "items").iter().enumerate() {
                    key_to_path(kp, &sp.child("items").index(i), errs);
                }
            }
            "configMap" => {
                required_str(src, "name", &sp, errs);
                file_mode(src, "defaultMode", &sp, errs);
                for (i, kp) in arr(src, "items").iter().enumerate() {
                    key_to_path(kp, &sp.child("items").index(i), errs);
                }
            }
            "nfs" => {
                required_str(src, "server", &sp, errs);
                required_str(src, "path", &sp, errs);
                let path = st(src, "path");
                if !path.starts_with('/') {
                    errs.push(invalid(&sp.child("path"), path, "must be an absolute path"));
                }
            }
            "iscsi" => {
                required_str(src, "targetPortal", &sp, errs);
                let iqn = st(src, "iqn");
                if iqn.is_empty() {
                    errs.push(required(&sp.child("iqn"), ""));
                } else if !["iqn", "eui", "naa"].iter().any(|pre| iqn.starts_with(pre)) {
                    errs.push(invalid(
                        &sp.child("iqn"),
                        iqn,
                        "must be valid format starting with iqn, eui, or naa",
                    ));
                }
                let lun = src.get("lun").and_then(Value::as_i64).unwrap_or(0);
                if !(0..=255).contains(&lun) {
                    errs.push(invalid_int(
                        &sp.child("lun"),
                        lun,
                        inclusive_range_error(0, 255),
                    ));
                }
            }
            "glusterfs" => {
                required_str(src, "endpoints", &sp, errs);
                required_str(src, "path", &sp, errs);
            }
            "flocker" => {
                let (name, uuid) = (st(src, "datasetName"), st(src, "datasetUUID"));
                if name.is_empty() && uuid.is_empty() {
                    errs.push(required(
                        &sp,
                        "one of datasetName and datasetUUID is required",
                    ));
                }
                if !name.is_empty() && !uuid.is_empty() {
                    errs.push(invalid(
                        &sp,
                        "resource",
                        "datasetName and datasetUUID can not be specified simultaneously",
                    ));
                }
                if name.contains('/') {
                    errs.push(invalid(
                        &sp.child("datasetName"),
                        name,
                        "must not contain '/'",
                    ));
                }
            }
            "persistentVolumeClaim" => required_str(src, "claimName", &sp, errs),
            "rbd" => {
                if arr(src, "monitors").is_empty() {
                    errs.push(required(&sp.child("monitors"), ""));
                }
                required_str(src, "image", &sp, errs);
            }
            "cinder" => {
                required_str(src, "volumeID", &sp, errs);
                if let Some(sr) = field(src, "secretRef")
                    && st(sr, "name").is_empty()
                {
                    errs.push(required(&sp.child("secretRef").child("name"), ""));
                }
            }
            "cephfs" if arr(src, "monitors").is_empty() => {
                errs.push(required(&p.child("cephfs").child("monitors"), ""));
            }
            "quobyte" => {
                if st(src, "registry").is_empty() {
                    errs.push(required(
                        &sp.child("registry"),
                        "must be a host:port pair or multiple pairs separated by commas",
                    ));
                }
                required_str(src, "volume", &sp, errs);
            }
            "downwardAPI" => {
                file_mode(src, "defaultMode", &sp, errs);
                for file in arr(src, "items") {
                    downward_api_file(file, &sp, errs);
                }
            }
            "fc" => {
                let wwns = arr(src, "targetWWNs");
                let wwids = arr(src, "wwids");
                if wwns.is_empty() && wwids.is_empty() {
                    errs.push(required(
                        &sp.child("targetWWNs"),
                        "must specify either targetWWNs or wwids, but not both",
                    ));
                }
                if !wwns.is_empty() && !wwids.is_empty() {
                    errs.push(invalid_raw(
                        &sp.child("targetWWNs"),
                        go_strings(src.get("targetWWNs")),
                        "targetWWNs and wwids can not be specified simultaneously",
                    ));
                }
                if !wwns.is_empty() {
                    match src.get("lun").and_then(Value::as_i64) {
                        None => errs.push(required(
                            &sp.child("lun"),
                            "lun is required if targetWWNs is specified",
                        )),
                        Some(lun) if !(0..=255).contains(&lun) => errs.push(invalid_int(
                            &sp.child("lun"),
                            lun,
                            inclusive_range_error(0, 255),
                        )),
                        Some(_) => {}
                    }
                }
            }
            "flexVolume" => {
                required_str(src, "driver", &sp, errs);
                if let Some(options) = map(src, "options") {
                    for k in options.keys() {
                        let ns = k.split_once('/').map_or(k.as_str(), |(a, _)| a);
                        let normalized = format!(".{}", ns.to_lowercase());
                        if normalized.ends_with(".kubernetes.io") || normalized.ends_with(".k8s.io")
                        {
                            errs.push(invalid(
                                &sp.child("options").key(k),
                                k,
                                "kubernetes.io and k8s.io namespaces are reserved",
                            ));
                        }
                    }
                }
            }
            "azureFile" => {
                required_str(src, "secretName", &sp, errs);
                required_str(src, "shareName", &sp, errs);
            }
            "vsphereVolume" => required_str(src, "volumePath", &sp, errs),
            "photonPersistentDisk" => required_str(src, "pdID", &sp, errs),
            "portworxVolume" => required_str(src, "volumeID", &sp, errs),
            "azureDisk" => {
                required_str(src, "diskName", &sp, errs);
                required_str(src, "diskURI", &sp, errs);
            }
            "storageos" => {
                let vn = st(src, "volumeName");
                if vn.is_empty() {
                    errs.push(required(&sp.child("volumeName"), ""));
                } else {
                    dns1123_label(vn, &sp.child("volumeName"), errs);
                }
                let ns = st(src, "volumeNamespace");
                if !ns.is_empty() {
                    dns1123_label(ns, &sp.child("volumeNamespace"), errs);
                }
            }
            "projected" => {
                file_mode(src, "defaultMode", &sp, errs);
                projection_sources(src, &sp, errs);
            }
            "scaleIO" => {
                for k in ["gateway", "system", "volumeName"] {
                    required_str(src, k, &sp, errs);
                }
            }
            "csi" => {
                csi_driver_name(st(src, "driver"), &sp.child("driver"), errs);
                if let Some(sr) = field(src, "nodePublishSecretRef") {
                    let n = st(sr, "name");
                    if n.is_empty() {
                        errs.push(required(
                            &sp.child("nodePublishSecretRef").child("name"),
                            "",
                        ));
                    } else {
                        for msg in is_dns1123_subdomain(n) {
                            errs.push(invalid(&sp.child("name"), n, msg));
                        }
                    }
                }
            }
            "ephemeral" => {
                match field(src, "volumeClaimTemplate") {
                    None => errs.push(required(&sp.child("volumeClaimTemplate"), "")),
                    Some(t) => pvc_template(t, &sp.child("volumeClaimTemplate"), errs),
                }
                if let Some(pod) = pod_name.filter(|n| !n.is_empty())
                    && !name.is_empty()
                {
                    let pvc = format!("{pod}-{name}");
                    for msg in is_dns1123_subdomain(&pvc) {
                        errs.push(invalid(
                            &sp.child("name"),
                            name,
                            format!("PVC name {}: {msg}", go_quote(&pvc)),
                        ));
                    }
                }
            }
            "image" => {
                if opts.resource_is_pod && st(src, "reference").is_empty() {
                    errs.push(required(&sp.child("reference"), ""));
                }
                pull_policy(st(src, "pullPolicy"), &sp.child("pullPolicy"), errs);
            }
            _ => {}
        }
    }
    if num == 0 {
        errs.push(required(p, "must specify a volume type"));
    }
}

fn partition(src: &Value, p: &Path, errs: &mut Errs) {
    let part = src.get("partition").and_then(Value::as_i64).unwrap_or(0);
    if !(0..=255).contains(&part) {
        errs.push(invalid_int(
            &p.child("partition"),
            part,
            inclusive_range_error(1, 255),
        ));
    }
}

fn host_path_source(src: &Value, p: &Path, errs: &mut Errs) {
    let path = st(src, "path");
    if path.is_empty() {
        errs.push(required(&p.child("path"), ""));
        return;
    }
    path_no_backsteps(path, &p.child("path"), errs);
    if let Some(t) = opt_str(src, "type") {
        const TYPES: &[&str] = &[
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ];
        if !TYPES.contains(&t) {
            errs.push(not_supported(&p.child("type"), t, TYPES));
        }
    }
}

/// `ValidateCSIDriverName`.
fn csi_driver_name(driver: &str, p: &Path, errs: &mut Errs) {
    if driver.is_empty() {
        errs.push(required(p, ""));
    }
    if driver.len() > 63 {
        errs.push(FieldError::too_long(p, Some(63)));
    }
    for msg in is_dns1123_subdomain(&driver.to_lowercase()) {
        errs.push(invalid(p, driver, msg));
    }
}

/// `ValidateVolumes`: returns the valid volumes by name.
fn validate_volumes<'a>(
    volumes: &'a [Value],
    pod_name: Option<&str>,
    opts: PodOpts,
    p: &Path,
    errs: &mut Errs,
) -> BTreeMap<String, &'a Value> {
    let mut created_pvcs: BTreeSet<String> = BTreeSet::new();
    if let Some(pod) = pod_name.filter(|n| !n.is_empty()) {
        for vol in volumes {
            if field(vol, "ephemeral").is_some() {
                created_pvcs.insert(format!("{pod}-{}", st(vol, "name")));
            }
        }
    }
    let mut out: BTreeMap<String, &Value> = BTreeMap::new();
    for (i, vol) in volumes.iter().enumerate() {
        let ip = p.index(i);
        let name_path = ip.child("name");
        let name = st(vol, "name");
        let mut el = Vec::new();
        if !vol.is_object() {
            el.push(invalid_json(&ip, vol, "must be an object"));
        } else {
            volume_source(vol, name, pod_name, opts, &ip, &mut el);
        }
        if name.is_empty() {
            el.push(required(&name_path, ""));
        } else {
            dns1123_label(name, &name_path, &mut el);
        }
        if out.contains_key(name) {
            el.push(duplicate(&name_path, name));
        }
        if el.is_empty() {
            out.insert(name.to_string(), vol);
        } else {
            errs.extend(el);
        }
        if let Some(pvc) = field(vol, "persistentVolumeClaim") {
            let claim = st(pvc, "claimName");
            if created_pvcs.contains(claim) {
                errs.push(invalid(
                    &ip.child("persistentVolumeClaim").child("claimName"),
                    claim,
                    "must not reference a PVC that gets created for an ephemeral volume",
                ));
            }
        }
    }
    out
}

/// `validatePullPolicy`.
fn pull_policy(policy: &str, p: &Path, errs: &mut Errs) {
    match policy {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(required(p, "")),
        other => errs.push(not_supported(
            p,
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
}

/// `validateContainerPorts`.
fn container_ports(ports: &[Value], p: &Path, errs: &mut Errs) {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let ip = p.index(i);
        let name = st(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(invalid(&ip.child("name"), name, msg));
                }
            } else if !names.insert(name) {
                errs.push(duplicate(&ip.child("name"), name));
            }
        }
        match int_field(port, "containerPort", &ip, errs).unwrap_or(0) {
            0 => errs.push(required(&ip.child("containerPort"), "")),
            cp => {
                for msg in is_valid_port_num(cp) {
                    errs.push(invalid_int(&ip.child("containerPort"), cp, msg));
                }
            }
        }
        let hp = int_field(port, "hostPort", &ip, errs).unwrap_or(0);
        if hp != 0 {
            for msg in is_valid_port_num(hp) {
                errs.push(invalid_int(&ip.child("hostPort"), hp, msg));
            }
        }
        let protocol = st(port, "protocol");
        if protocol.is_empty() {
            errs.push(required(&ip.child("protocol"), ""));
        } else if !SUPPORTED_PORT_PROTOCOLS.contains(&protocol) {
            errs.push(not_supported(
                &ip.child("protocol"),
                protocol,
                SUPPORTED_PORT_PROTOCOLS,
            ));
        }
    }
}

/// `ValidateEnv` (with the relaxed names of v1.33).
fn validate_env(vars: &[Value], p: &Path, errs: &mut Errs) {
    for (i, ev) in vars.iter().enumerate() {
        let ip = p.index(i);
        let name = st(ev, "name");
        if name.is_empty() {
            errs.push(required(&ip.child("name"), ""));
        } else {
            for msg in is_relaxed_env_var_name(name) {
                errs.push(invalid(&ip.child("name"), name, msg));
            }
        }
        let Some(from) = field(ev, "valueFrom") else {
            continue;
        };
        let fp = ip.child("valueFrom");
        let mut num = 0;
        if let Some(fr) = field(from, "fieldRef") {
            num += 1;
            object_field_selector(fr, ENV_FIELD_PATHS, &fp.child("fieldRef"), errs);
        }
        if let Some(rfr) = field(from, "resourceFieldRef") {
            num += 1;
            resource_field_selector(rfr, false, &fp.child("resourceFieldRef"), errs);
        }
        for kind in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(sel) = field(from, kind) {
                num += 1;
                let sp = fp.child(kind);
                let n = st(sel, "name");
                for msg in is_dns1123_subdomain(n) {
                    errs.push(invalid(&sp.child("name"), n, msg));
                }
                let key = st(sel, "key");
                if key.is_empty() {
                    errs.push(required(&sp.child("key"), ""));
                } else {
                    for msg in is_config_map_key(key) {
                        errs.push(invalid(&sp.child("key"), key, msg));
                    }
                }
            }
        }
        if num == 0 {
            errs.push(invalid(
                &fp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !st(ev, "value").is_empty() {
            errs.push(invalid(
                &fp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if num > 1 {
            errs.push(invalid(
                &fp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

/// `ValidateEnvFrom`.
fn validate_env_from(vars: &[Value], p: &Path, errs: &mut Errs) {
    for (i, ev) in vars.iter().enumerate() {
        let ip = p.index(i);
        let prefix = st(ev, "prefix");
        if !prefix.is_empty() {
            for msg in is_relaxed_env_var_name(prefix) {
                errs.push(invalid(&ip.child("prefix"), prefix, msg));
            }
        }
        let mut num = 0;
        for kind in ["configMapRef", "secretRef"] {
            if let Some(r) = field(ev, kind) {
                num += 1;
                let np = ip.child(kind).child("name");
                let n = st(r, "name");
                if n.is_empty() {
                    errs.push(required(&np, ""));
                } else {
                    for msg in name_is_dns_subdomain(n, true) {
                        errs.push(invalid(&np, n, msg));
                    }
                }
            }
        }
        if num == 0 {
            errs.push(invalid(
                p,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if num > 1 {
            errs.push(invalid(
                p,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

/// `ValidateVolumeMounts`.
fn volume_mounts(ctr: &Value, ctx: &SpecCtx<'_>, p: &Path, errs: &mut Errs) {
    let devices: BTreeMap<&str, &str> = arr(ctr, "volumeDevices")
        .iter()
        .map(|d| (st(d, "name"), st(d, "devicePath")))
        .collect();
    let privileged = ctr
        .get("securityContext")
        .and_then(|sc| sc.get("privileged"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut mount_points: BTreeSet<&str> = BTreeSet::new();
    for (i, mnt) in arr(ctr, "volumeMounts").iter().enumerate() {
        let ip = p.index(i);
        let name = st(mnt, "name");
        let mount_path = st(mnt, "mountPath");
        if name.is_empty() {
            errs.push(required(&ip.child("name"), ""));
        }
        if !ctx.volumes.contains_key(name) {
            errs.push(not_found(&ip.child("name"), name, ""));
        }
        if mount_path.is_empty() {
            errs.push(required(&ip.child("mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(invalid(
                &ip.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        if devices.contains_key(name) {
            errs.push(invalid(
                &ip.child("name"),
                name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == mount_path) {
            errs.push(invalid(
                &ip.child("mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = st(mnt, "subPath");
        let sub_path_expr = st(mnt, "subPathExpr");
        if ctx
            .volumes
            .get(name)
            .is_some_and(|v| field(v, "image").is_some())
        {
            if !sub_path.is_empty() {
                errs.push(invalid(
                    &ip.child("subPath"),
                    sub_path,
                    "not allowed in image volume sources",
                ));
            }
            if !sub_path_expr.is_empty() {
                errs.push(invalid(
                    &ip.child("subPathExpr"),
                    sub_path_expr,
                    "not allowed in image volume sources",
                ));
            }
        }
        if !sub_path.is_empty() {
            local_descending_path(sub_path, &p.child("subPath"), errs);
        }
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(invalid(
                    &ip.child("subPathExpr"),
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            local_descending_path(sub_path_expr, &p.child("subPathExpr"), errs);
        }
        let propagation = opt_str(mnt, "mountPropagation");
        if let Some(mp) = propagation {
            let pp = p.child("mountPropagation");
            const MODES: &[&str] = &["Bidirectional", "HostToContainer", "None"];
            if !MODES.contains(&mp) {
                errs.push(not_supported(&pp, mp, MODES));
            }
            if mp == "Bidirectional" && !privileged {
                errs.push(forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        if let Some(rro) = opt_str(mnt, "recursiveReadOnly") {
            let rp = p.child("recursiveReadOnly");
            match rro {
                "Disabled" => {}
                "Enabled" | "IfPossible" => {
                    if !boolean(mnt, "readOnly") {
                        errs.push(forbidden(
                            &rp,
                            "may only be specified when readOnly is true",
                        ));
                    }
                    if propagation.is_some_and(|m| m != "None") {
                        errs.push(forbidden(
                            &rp,
                            "may only be specified when mountPropagation is None or not specified",
                        ));
                    }
                }
                other => errs.push(not_supported(
                    &rp,
                    other,
                    &["Disabled", "Enabled", "IfPossible"],
                )),
            }
        }
    }
}

/// `ValidateVolumeDevices`.
fn volume_devices(ctr: &Value, ctx: &SpecCtx<'_>, p: &Path, errs: &mut Errs) {
    let mounts: BTreeMap<&str, &str> = arr(ctr, "volumeMounts")
        .iter()
        .map(|m| (st(m, "name"), st(m, "mountPath")))
        .collect();
    let mut paths: BTreeSet<&str> = BTreeSet::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, dev) in arr(ctr, "volumeDevices").iter().enumerate() {
        let ip = p.index(i);
        let name = st(dev, "name");
        let path = st(dev, "devicePath");
        let vol = ctx.volumes.get(name);
        let is_pvc = vol.is_some_and(|v| {
            field(v, "persistentVolumeClaim").is_some() || field(v, "ephemeral").is_some()
        });
        if name.is_empty() {
            errs.push(required(&ip.child("name"), ""));
        }
        if names.contains(name) {
            errs.push(invalid(&ip.child("name"), name, "must be unique"));
        }
        if vol.is_some() && !is_pvc {
            errs.push(invalid(
                &ip.child("name"),
                name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            ));
        }
        if vol.is_none() {
            errs.push(not_found(&ip.child("name"), name, ""));
        }
        if path.is_empty() {
            errs.push(required(&ip.child("devicePath"), ""));
        }
        if paths.contains(path) {
            errs.push(invalid(&ip.child("devicePath"), path, "must be unique"));
        }
        if !path.is_empty() && path.split('/').any(|s| s == "..") {
            errs.push(invalid(
                &ip.child("devicePath"),
                path,
                "can not contain backsteps ('..')",
            ));
        } else {
            paths.insert(path);
        }
        if mounts.contains_key(name) {
            errs.push(invalid(
                &ip.child("name"),
                name,
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|m| *m == path) {
            errs.push(invalid(
                &ip.child("devicePath"),
                path,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !name.is_empty() {
            names.insert(name);
        }
    }
}

/// `validateResizePolicy`.
fn resize_policy(policies: &[Value], restart_policy: &str, p: &Path, errs: &mut Errs) {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (i, pol) in policies.iter().enumerate() {
        let name = st(pol, "resourceName");
        if !seen.insert(name) {
            errs.push(duplicate(&p.index(i), name));
        }
        match name {
            "cpu" | "memory" => {}
            "" => errs.push(required(p, "")),
            other => errs.push(not_supported(p, other, &["cpu", "memory"])),
        }
        let rp = st(pol, "restartPolicy");
        match rp {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(required(p, "")),
            other => errs.push(not_supported(
                p,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if restart_policy == "Never" && rp != "NotRequired" {
            errs.push(invalid(
                p,
                rp,
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
}

fn seccomp_profile(sp: Option<&Value>, p: &Path, errs: &mut Errs) {
    let Some(sp) = sp else {
        return;
    };
    let t = st(sp, "type");
    const TYPES: &[&str] = &["Localhost", "RuntimeDefault", "Unconfined"];
    match t {
        "" => errs.push(required(
            &p.child("type"),
            "type is required when seccompProfile is set",
        )),
        t if !TYPES.contains(&t) => errs.push(not_supported(&p.child("type"), t, TYPES)),
        _ => {}
    }
    let profile = opt_str(sp, "localhostProfile");
    if t == "Localhost" {
        match profile {
            None => errs.push(required(
                &p.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(lp) => local_descending_path(lp, &p.child("localhostProfile"), errs),
        }
    } else if profile.is_some() {
        errs.push(invalid_json(
            &p.child("localhostProfile"),
            sp,
            "can only be set when seccomp type is Localhost",
        ));
    }
}

fn app_armor_profile(ap: Option<&Value>, p: &Path, errs: &mut Errs) {
    let Some(ap) = ap else {
        return;
    };
    let profile = opt_str(ap, "localhostProfile");
    match st(ap, "type") {
        "Localhost" => match profile {
            None => errs.push(required(
                &p.child("localhostProfile"),
                "must be set when AppArmor type is Localhost",
            )),
            Some(lp) => {
                if lp.trim() != lp {
                    errs.push(invalid(
                        &p.child("localhostProfile"),
                        lp,
                        "must not be padded with whitespace",
                    ));
                } else if lp.is_empty() {
                    errs.push(required(
                        &p.child("localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if lp.len() > 4095 {
                    errs.push(FieldError::too_long(
                        &p.child("localhostProfile"),
                        Some(4095),
                    ));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(lp) = profile {
                errs.push(invalid(
                    &p.child("localhostProfile"),
                    lp,
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(required(
            &p.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(not_supported(
            &p.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
}

fn id_range(v: &Value, k: &str, p: &Path, errs: &mut Errs) {
    if let Some(id) = int_field(v, k, p, errs)
        && !(0..=4_294_967_295).contains(&id)
    {
        errs.push(invalid_int(
            &p.child(k),
            id,
            inclusive_range_error(0, 4_294_967_295),
        ));
    }
}

/// `ValidateSecurityContext` (a container's).
fn container_security_context(sc: &Value, host_users: bool, p: &Path, errs: &mut Errs) {
    id_range(sc, "runAsUser", p, errs);
    id_range(sc, "runAsGroup", p, errs);
    if let Some(pm) = opt_str(sc, "procMount") {
        if pm != "Default" && pm != "Unmasked" {
            errs.push(not_supported(
                &p.child("procMount"),
                pm,
                &["Default", "Unmasked"],
            ));
        }
        if host_users && pm == "Unmasked" {
            errs.push(invalid(
                &p.child("procMount"),
                pm,
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    seccomp_profile(
        field(sc, "seccompProfile"),
        &p.child("seccompProfile"),
        errs,
    );
    if sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false) {
        if sc.get("privileged").and_then(Value::as_bool) == Some(true) {
            errs.push(invalid_json(
                p,
                sc,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let caps = sc
            .get("capabilities")
            .map(|c| str_list(c, "add"))
            .unwrap_or_default();
        for cap in caps {
            if cap == "CAP_SYS_ADMIN" {
                errs.push(invalid_json(
                    p,
                    sc,
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                ));
            }
        }
    }
    app_armor_profile(
        field(sc, "appArmorProfile"),
        &p.child("appArmorProfile"),
        errs,
    );
}

/// `validateContainerCommon`.
fn container_common(ctr: &Value, ctx: &SpecCtx<'_>, p: &Path, errs: &mut Errs) {
    if !ctr.is_object() {
        errs.push(invalid_json(p, ctr, "must be an object"));
        return;
    }
    let name = str_field(ctr, "name", p, errs);
    if name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else {
        dns1123_label(name, &p.child("name"), errs);
    }
    if str_field(ctr, "image", p, errs).is_empty() {
        errs.push(required(&p.child("image"), ""));
    }
    match st(ctr, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(required(&p.child("terminationMessagePolicy"), "")),
        other => errs.push(not_supported(
            &p.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    container_ports(arr_field(ctr, "ports", p, errs), &p.child("ports"), errs);
    validate_env(arr_field(ctr, "env", p, errs), &p.child("env"), errs);
    validate_env_from(
        arr_field(ctr, "envFrom", p, errs),
        &p.child("envFrom"),
        errs,
    );
    volume_mounts(ctr, ctx, &p.child("volumeMounts"), errs);
    volume_devices(ctr, ctx, &p.child("volumeDevices"), errs);
    pull_policy(
        st(ctr, "imagePullPolicy"),
        &p.child("imagePullPolicy"),
        errs,
    );
    if let Some(res) = obj_field(ctr, "resources", p, errs) {
        resource_requirements(res, &ctx.claim_names, &p.child("resources"), errs);
    }
    resize_policy(
        arr(ctr, "resizePolicy"),
        ctx.restart_policy,
        &p.child("resizePolicy"),
        errs,
    );
    if let Some(sc) = obj_field(ctr, "securityContext", p, errs) {
        container_security_context(sc, ctx.host_users, &p.child("securityContext"), errs);
    }
}

/// `validateHandler`: exactly one handler type.
fn handler(h: &Value, grace: Option<i64>, lifecycle: bool, p: &Path, errs: &mut Errs) {
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    let mut num = 0;
    for kind in kinds {
        let Some(action) = field(h, kind) else {
            continue;
        };
        let kp = p.child(kind);
        if num > 0 {
            errs.push(forbidden(&kp, "may not specify more than 1 handler type"));
            continue;
        }
        num += 1;
        match *kind {
            "exec" if arr(action, "command").is_empty() => {
                errs.push(required(&kp.child("command"), ""));
            }
            "httpGet" => {
                if st(action, "path").is_empty() {
                    errs.push(required(&kp.child("path"), ""));
                }
                port_num_or_name(field(action, "port"), &kp.child("port"), errs);
                let scheme = st(action, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(not_supported(
                        &kp.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
                for header in arr(action, "httpHeaders") {
                    let hn = st(header, "name");
                    for msg in is_http_header_name(hn) {
                        errs.push(invalid(&kp.child("httpHeaders"), hn, msg));
                    }
                }
            }
            "tcpSocket" => port_num_or_name(field(action, "port"), &kp.child("port"), errs),
            "grpc" => {
                let port = action.get("port").and_then(Value::as_i64).unwrap_or(0);
                for msg in is_valid_port_num(port) {
                    errs.push(invalid_int(&kp.child("port"), port, msg));
                }
            }
            "sleep" => {
                let secs = action.get("seconds").and_then(Value::as_i64).unwrap_or(0);
                if let Some(g) = grace
                    && (secs < 0 || secs > g)
                {
                    errs.push(invalid_int(
                        &kp,
                        secs,
                        format!(
                            "must be non-negative and less than terminationGracePeriodSeconds ({g})"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    if num == 0 {
        errs.push(required(p, "must specify a handler type"));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

/// `validateLivenessProbe` / `validateReadinessProbe` / `validateStartupProbe`.
fn probe(pr: Option<&Value>, kind: ProbeKind, grace: Option<i64>, p: &Path, errs: &mut Errs) {
    let Some(pr) = pr else {
        return;
    };
    handler(pr, grace, false, p, errs);
    for k in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        non_negative(&p.child(k), int_field(pr, k, p, errs).unwrap_or(0), errs);
    }
    let tgps = int_field(pr, "terminationGracePeriodSeconds", p, errs);
    if let Some(t) = tgps.filter(|t| *t <= 0) {
        errs.push(invalid_int(
            &p.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let st = pr
                .get("successThreshold")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if st != 1 {
                errs.push(invalid_int(&p.child("successThreshold"), st, "must be 1"));
            }
        }
        ProbeKind::Readiness => {
            if let Some(t) = tgps {
                errs.push(invalid_int(
                    &p.child("terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
}

fn lifecycle(ctr: &Value, grace: Option<i64>, p: &Path, errs: &mut Errs) {
    if let Some(lc) = field(ctr, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = field(lc, hook) {
                handler(h, grace, true, &p.child(hook), errs);
            }
        }
    }
}

fn probes(ctr: &Value, grace: Option<i64>, p: &Path, errs: &mut Errs) {
    probe(
        field(ctr, "livenessProbe"),
        ProbeKind::Liveness,
        grace,
        &p.child("livenessProbe"),
        errs,
    );
    probe(
        field(ctr, "readinessProbe"),
        ProbeKind::Readiness,
        grace,
        &p.child("readinessProbe"),
        errs,
    );
    probe(
        field(ctr, "startupProbe"),
        ProbeKind::Startup,
        grace,
        &p.child("startupProbe"),
        errs,
    );
}

/// `checkHostPortConflicts`.
fn host_port_conflicts(containers: &[&Value], paths: &[Path], errs: &mut Errs) {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (ctr, cp) in containers.iter().zip(paths) {
        for (i, port) in arr(ctr, "ports").iter().enumerate() {
            let hp = port.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{hp}", st(port, "protocol"), st(port, "hostIP"));
            if !seen.insert(key.clone()) {
                errs.push(duplicate(
                    &cp.child("ports").index(i).child("hostPort"),
                    &key,
                ));
            }
        }
    }
}

/// `validateContainers`.
fn validate_containers(containers: &[Value], ctx: &SpecCtx<'_>, p: &Path, errs: &mut Errs) {
    if containers.is_empty() {
        errs.push(required(p, ""));
        return;
    }
    let mut names: BTreeSet<&str> = BTreeSet::new();
    let mut paths = Vec::new();
    for (i, ctr) in containers.iter().enumerate() {
        let cp = p.index(i);
        container_common(ctr, ctx, &cp, errs);
        let name = st(ctr, "name");
        if !names.insert(name) {
            errs.push(duplicate(&cp.child("name"), name));
        }
        lifecycle(ctr, ctx.grace, &cp.child("lifecycle"), errs);
        probes(ctr, ctx.grace, &cp, errs);
        if field(ctr, "restartPolicy").is_some() {
            errs.push(forbidden(
                &cp.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
        paths.push(cp);
    }
    let refs: Vec<&Value> = containers.iter().collect();
    host_port_conflicts(&refs, &paths, errs);
}

/// `validateInitContainers`.
fn validate_init_containers(
    inits: &[Value],
    regular: &[Value],
    ctx: &SpecCtx<'_>,
    p: &Path,
    errs: &mut Errs,
) {
    let mut names: BTreeSet<&str> = regular.iter().map(|c| st(c, "name")).collect();
    for (i, ctr) in inits.iter().enumerate() {
        let cp = p.index(i);
        container_common(ctr, ctx, &cp, errs);
        let mut restart_always = false;
        if let Some(rp) = opt_str(ctr, "restartPolicy") {
            if rp != "Always" {
                errs.push(not_supported(&cp.child("restartPolicy"), rp, &["Always"]));
            }
            restart_always = rp == "Always";
        }
        let name = st(ctr, "name");
        if names.contains(name) {
            errs.push(duplicate(&cp.child("name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        // kube checks each init container alone, under the path of the first one.
        host_port_conflicts(&[ctr], &[p.index(0)], errs);
        if restart_always {
            lifecycle(ctr, ctx.grace, &cp.child("lifecycle"), errs);
            probes(ctr, ctx.grace, &cp, errs);
        } else {
            for k in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if field(ctr, k).is_some() {
                    errs.push(forbidden(
                        &cp.child(k),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
}

/// `ValidateTolerations`.
fn validate_tolerations(tolerations: &[Value], p: &Path, errs: &mut Errs) {
    for (i, t) in tolerations.iter().enumerate() {
        let ip = p.index(i);
        let key = st(t, "key");
        let op = st(t, "operator");
        let value = st(t, "value");
        let effect = st(t, "effect");
        if !key.is_empty() {
            label_name(key, &ip.child("key"), errs);
        }
        if key.is_empty() && op != "Exists" {
            errs.push(invalid(
                &ip.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if field(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(invalid(
                &ip.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid(&ip.child("operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(
                        &ip.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &ip.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            taint_effect(effect, true, &ip.child("effect"), errs);
        }
    }
}

/// `validateTaintEffect`.
fn taint_effect(effect: &str, allow_empty: bool, p: &Path, errs: &mut Errs) {
    if !allow_empty && effect.is_empty() {
        errs.push(required(p, ""));
        return;
    }
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        errs.push(not_supported(
            p,
            effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        ));
    }
}

/// `ValidateNodeSelectorRequirement` / `ValidateNodeFieldSelectorRequirement` via a term.
fn node_selector_term(term: &Value, allow_invalid_values: bool, p: &Path, errs: &mut Errs) {
    for (j, rq) in arr(term, "matchExpressions").iter().enumerate() {
        let rp = p.child("matchExpressions").index(j);
        let values = arr(rq, "values");
        match st(rq, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &rp.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &rp.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            "Gt" | "Lt" => {
                if values.len() != 1 {
                    errs.push(required(
                        &rp.child("values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    ));
                }
            }
            other => errs.push(invalid(
                &rp.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        label_name(st(rq, "key"), &rp.child("key"), errs);
        if !allow_invalid_values {
            for (vi, v) in values.iter().enumerate() {
                let vs = v.as_str().unwrap_or("");
                for msg in is_valid_label_value(vs) {
                    errs.push(invalid(&rp.child("values").index(vi), vs, msg));
                }
            }
        }
    }
    for (j, rq) in arr(term, "matchFields").iter().enumerate() {
        let rp = p.child("matchFields").index(j);
        let values = arr(rq, "values");
        match st(rq, "operator") {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    errs.push(required(
                        &rp.child("values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            other => errs.push(invalid(
                &rp.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = st(rq, "key");
        if key != "metadata.name" {
            errs.push(invalid(
                &rp.child("key"),
                key,
                "not a valid field selector key",
            ));
        } else {
            for (vi, v) in values.iter().enumerate() {
                let vs = v.as_str().unwrap_or("");
                for msg in is_dns1123_subdomain(vs) {
                    errs.push(invalid(&rp.child("values").index(vi), vs, msg));
                }
            }
        }
    }
}

/// `ValidateNodeSelector`.
fn node_selector(ns: &Value, allow_invalid_values: bool, p: &Path, errs: &mut Errs) {
    let tp = p.child("nodeSelectorTerms");
    let terms = arr(ns, "nodeSelectorTerms");
    if terms.is_empty() {
        errs.push(required(&tp, "must have at least one node selector term"));
        return;
    }
    for (i, term) in terms.iter().enumerate() {
        node_selector_term(term, allow_invalid_values, &tp.index(i), errs);
    }
}

/// `validatePodAffinityTerm`.
fn pod_affinity_term(term: &Value, p: &Path, errs: &mut Errs) {
    let sel = term.get("labelSelector").unwrap_or(&Value::Null);
    validate_label_selector(sel, false, &p.child("labelSelector"), errs);
    validate_label_selector(
        term.get("namespaceSelector").unwrap_or(&Value::Null),
        false,
        &p.child("namespaceSelector"),
        errs,
    );
    for ns in str_list(term, "namespaces") {
        dns1123_label(&ns, &p.child("namespace"), errs);
    }
    for k in ["matchLabelKeys", "mismatchLabelKeys"] {
        let keys = str_list(term, k);
        if keys.is_empty() {
            continue;
        }
        if sel.is_null() {
            errs.push(forbidden(
                &p.child(k),
                "must not be specified when labelSelector is not set",
            ));
            continue;
        }
        for (i, key) in keys.iter().enumerate() {
            label_name(key, &p.child(k).index(i), errs);
        }
    }
    let mismatch = str_list(term, "mismatchLabelKeys");
    for (i, k) in str_list(term, "matchLabelKeys").iter().enumerate() {
        if mismatch.contains(k) {
            errs.push(invalid(
                &p.child("matchLabelKeys").index(i),
                k,
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
    let topology_key = st(term, "topologyKey");
    if topology_key.is_empty() {
        errs.push(required(&p.child("topologyKey"), "can not be empty"));
    }
    label_name(topology_key, &p.child("topologyKey"), errs);
}

fn weighted_terms(terms: &[Value], pod: bool, p: &Path, errs: &mut Errs) {
    for (i, t) in terms.iter().enumerate() {
        let ip = p.index(i);
        let w = t.get("weight").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=100).contains(&w) {
            errs.push(invalid_int(
                &ip.child("weight"),
                w,
                "must be in the range 1-100",
            ));
        }
        if pod {
            let term = t.get("podAffinityTerm").unwrap_or(&Value::Null);
            pod_affinity_term(term, &ip.child("podAffinityTerm"), errs);
        } else {
            let term = t.get("preference").unwrap_or(&Value::Null);
            node_selector_term(term, true, &ip.child("preference"), errs);
        }
    }
}

/// `validateAffinity`.
fn affinity(aff: &Value, p: &Path, errs: &mut Errs) {
    if let Some(na) = field(aff, "nodeAffinity") {
        let np = p.child("nodeAffinity");
        if let Some(req) = field(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            node_selector(
                req,
                false,
                &np.child("requiredDuringSchedulingIgnoredDuringExecution"),
                errs,
            );
        }
        weighted_terms(
            arr(na, "preferredDuringSchedulingIgnoredDuringExecution"),
            false,
            &np.child("preferredDuringSchedulingIgnoredDuringExecution"),
            errs,
        );
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        if let Some(pa) = field(aff, kind) {
            let pp = p.child(kind);
            let rp = pp.child("requiredDuringSchedulingIgnoredDuringExecution");
            for (i, term) in arr(pa, "requiredDuringSchedulingIgnoredDuringExecution")
                .iter()
                .enumerate()
            {
                pod_affinity_term(term, &rp.index(i), errs);
            }
            weighted_terms(
                arr(pa, "preferredDuringSchedulingIgnoredDuringExecution"),
                true,
                &pp.child("preferredDuringSchedulingIgnoredDuringExecution"),
                errs,
            );
        }
    }
}

/// `IsValidSysctlName`.
fn is_valid_sysctl_name(name: &str) -> bool {
    let seg = |s: &str| {
        let b = s.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(&f), Some(&l)) => {
                alnum(f) && alnum(l) && b.iter().all(|&c| alnum(c) || c == b'-' || c == b'_')
            }
            _ => false,
        }
    };
    name.len() <= 253 && name.split(['.', '/']).all(seg)
}

/// `validatePodSpecSecurityContext`.
fn pod_security_context(spec: &Value, p: &Path, errs: &mut Errs) {
    let null = Value::Null;
    let sc = field(spec, "securityContext").unwrap_or(&null);
    let sp = p.child("securityContext");
    id_range(sc, "fsGroup", &sp, errs);
    id_range(sc, "runAsUser", &sp, errs);
    id_range(sc, "runAsGroup", &sp, errs);
    for (g, gid) in arr(sc, "supplementalGroups").iter().enumerate() {
        let n = gid.as_i64().unwrap_or(-1);
        if !(0..=4_294_967_295).contains(&n) {
            errs.push(invalid_json(
                &sp.child("supplementalGroups").index(g),
                gid,
                inclusive_range_error(0, 4_294_967_295),
            ));
        }
    }
    if boolean(spec, "hostPID") && boolean(spec, "shareProcessNamespace") {
        errs.push(FieldError::invalid_rendered(
            &sp.child("shareProcessNamespace"),
            Some("true".to_string()),
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, s) in arr(sc, "sysctls").iter().enumerate() {
        let np = sp.child("sysctls").index(i).child("name");
        let name = st(s, "name");
        if name.is_empty() {
            errs.push(required(&np, ""));
        } else if !is_valid_sysctl_name(name) {
            errs.push(invalid(
                &np,
                name,
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if names.contains(name) {
            errs.push(duplicate(&np, name));
        }
        let normalized = name.replace('/', ".");
        let net = normalized.starts_with("net.");
        let ipc = normalized.starts_with("kernel.shm")
            || normalized.starts_with("kernel.msg")
            || normalized == "kernel.sem"
            || normalized.starts_with("fs.mqueue.");
        if boolean(spec, "hostNetwork") && net {
            errs.push(invalid(
                &np,
                name,
                "may not be specified when 'hostNetwork' is true",
            ));
        } else if boolean(spec, "hostIPC") && ipc {
            errs.push(invalid(
                &np,
                name,
                "may not be specified when 'hostIPC' is true",
            ));
        }
        names.insert(name);
    }
    if let Some(policy) = opt_str(sc, "fsGroupChangePolicy")
        && policy != "Always"
        && policy != "OnRootMismatch"
    {
        errs.push(not_supported(
            &sp.child("fsGroupChangePolicy"),
            policy,
            &["Always", "OnRootMismatch"],
        ));
    }
    seccomp_profile(
        field(sc, "seccompProfile"),
        &sp.child("seccompProfile"),
        errs,
    );
    app_armor_profile(
        field(sc, "appArmorProfile"),
        &sp.child("appArmorProfile"),
        errs,
    );
    if let Some(policy) = opt_str(sc, "supplementalGroupsPolicy")
        && policy != "Merge"
        && policy != "Strict"
    {
        errs.push(not_supported(
            &sp.child("supplementalGroupsPolicy"),
            policy,
            &["Merge", "Strict"],
        ));
    }
    if let Some(policy) = opt_str(sc, "seLinuxChangePolicy")
        && policy != "MountOption"
        && policy != "Recursive"
    {
        errs.push(not_supported(
            &sp.child("seLinuxChangePolicy"),
            policy,
            &["MountOption", "Recursive"],
        ));
    }
}

/// `validatePodDNSConfig`.
fn dns_config(spec: &Value, p: &Path, errs: &mut Errs) {
    let cfg = field(spec, "dnsConfig");
    if st(spec, "dnsPolicy") == "None" {
        match cfg {
            None => {
                errs.push(required(
                    p,
                    "must provide `dnsConfig` when `dnsPolicy` is None",
                ));
                return;
            }
            Some(c) if arr(c, "nameservers").is_empty() => {
                errs.push(required(
                    &p.child("nameservers"),
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                ));
                return;
            }
            _ => {}
        }
    }
    let Some(cfg) = cfg else {
        return;
    };
    let nameservers = arr(cfg, "nameservers");
    if nameservers.len() > 3 {
        errs.push(invalid_raw(
            &p.child("nameservers"),
            go_strings(cfg.get("nameservers")),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        is_valid_ip(
            &p.child("nameservers").index(i),
            ns.as_str().unwrap_or(""),
            errs,
        );
    }
    let searches = str_list(cfg, "searches");
    if searches.len() > 32 {
        errs.push(invalid_raw(
            &p.child("searches"),
            go_strings(cfg.get("searches")),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(invalid_raw(
            &p.child("searches"),
            go_strings(cfg.get("searches")),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        if search != "." {
            let s = search.strip_suffix('.').unwrap_or(search);
            for msg in is_dns1123_subdomain_with_underscore(s) {
                errs.push(invalid(&p.child("searches").index(i), s, msg));
            }
        }
    }
    for (i, opt) in arr(cfg, "options").iter().enumerate() {
        if st(opt, "name").is_empty() {
            errs.push(required(&p.child("options").index(i), "must not be empty"));
        }
    }
}

/// `validateTopologySpreadConstraints`.
fn topology_spread_constraints(constraints: &[Value], p: &Path, errs: &mut Errs) {
    for (i, c) in constraints.iter().enumerate() {
        let cp = p.index(i);
        let max_skew = c.get("maxSkew").and_then(Value::as_i64).unwrap_or(0);
        if max_skew <= 0 {
            errs.push(invalid_int(
                &cp.child("maxSkew"),
                max_skew,
                IS_NOT_POSITIVE_ERROR_MSG,
            ));
        }
        let key = st(c, "topologyKey");
        if key.is_empty() {
            errs.push(required(&cp.child("topologyKey"), "can not be empty"));
        }
        let action = st(c, "whenUnsatisfiable");
        if action != "DoNotSchedule" && action != "ScheduleAnyway" {
            errs.push(not_supported(
                &cp.child("whenUnsatisfiable"),
                action,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        let repeated = constraints
            .iter()
            .skip(i + 1)
            .any(|o| st(o, "topologyKey") == key && st(o, "whenUnsatisfiable") == action);
        if repeated {
            errs.push(duplicate(
                &cp.child("{topologyKey, whenUnsatisfiable}"),
                &format!("{{{key}, {action}}}"),
            ));
        }
        if let Some(md) = c.get("minDomains").and_then(Value::as_i64) {
            if md <= 0 {
                errs.push(invalid_int(
                    &cp.child("minDomains"),
                    md,
                    IS_NOT_POSITIVE_ERROR_MSG,
                ));
            }
            if action != "DoNotSchedule" {
                errs.push(invalid_int(
                    &cp.child("minDomains"),
                    md,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                    ),
                ));
            }
        }
        for k in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(policy) = opt_str(c, k)
                && policy != "Honor"
                && policy != "Ignore"
            {
                errs.push(not_supported(&cp.child(k), policy, &["Honor", "Ignore"]));
            }
        }
        let sel = c.get("labelSelector").unwrap_or(&Value::Null);
        let keys = str_list(c, "matchLabelKeys");
        if !keys.is_empty() {
            let kp = cp.child("matchLabelKeys");
            let mut sel_keys: BTreeSet<String> = BTreeSet::new();
            if sel.is_object() {
                if let Some(ml) = map(sel, "matchLabels") {
                    sel_keys.extend(ml.keys().cloned());
                }
                for e in arr(sel, "matchExpressions") {
                    sel_keys.insert(st(e, "key").to_string());
                }
            } else {
                errs.push(forbidden(
                    &kp,
                    "must not be specified when labelSelector is not set",
                ));
            }
            for (j, k) in keys.iter().enumerate() {
                label_name(k, &kp.index(j), errs);
                if sel_keys.contains(k) {
                    errs.push(invalid(
                        &kp.index(j),
                        k,
                        "exists in both matchLabelKeys and labelSelector",
                    ));
                }
            }
        }
        validate_label_selector(sel, false, &cp.child("labelSelector"), errs);
    }
}

/// `ValidatePodSpec`.
fn validate_pod_spec(
    spec: &Value,
    pod_name: Option<&str>,
    opts: PodOpts,
    p: &Path,
    errs: &mut Errs,
) {
    let empty = Value::Object(Map::new());
    let spec = match spec {
        Value::Null => &empty,
        Value::Object(_) => spec,
        other => {
            errs.push(invalid_json(p, other, "must be an object"));
            return;
        }
    };
    let grace = int_field(spec, "terminationGracePeriodSeconds", p, errs);
    if field(spec, "terminationGracePeriodSeconds").is_none() {
        errs.push(required(&p.child("terminationGracePeriodSeconds"), ""));
    }
    let host_users = spec
        .get("hostUsers")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let volumes = validate_volumes(
        arr_field(spec, "volumes", p, errs),
        pod_name,
        opts,
        &p.child("volumes"),
        errs,
    );
    // validatePodResourceClaims
    let mut claim_names: BTreeSet<String> = BTreeSet::new();
    let claims_path = p.child("resourceClaims");
    for (i, claim) in arr_field(spec, "resourceClaims", p, errs)
        .iter()
        .enumerate()
    {
        let cp = claims_path.index(i);
        let name = st(claim, "name");
        if name.is_empty() {
            errs.push(required(&cp.child("name"), ""));
        } else if claim_names.contains(name) {
            errs.push(duplicate(&cp.child("name"), name));
        } else {
            dns1123_label(name, &cp.child("name"), errs);
            claim_names.insert(name.to_string());
        }
        let rcn = opt_str(claim, "resourceClaimName");
        let rctn = opt_str(claim, "resourceClaimTemplateName");
        match (rcn, rctn) {
            (Some(_), Some(_)) => errs.push(invalid_json(
                &cp,
                claim,
                "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified",
            )),
            (None, None) => errs.push(invalid_json(
                &cp,
                claim,
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            )),
            _ => {}
        }
        if let Some(n) = rcn {
            dns1123_subdomain(n, &cp.child("resourceClaimName"), errs);
        }
        if let Some(n) = rctn {
            dns1123_subdomain(n, &cp.child("resourceClaimTemplateName"), errs);
        }
    }
    let restart_policy = st(spec, "restartPolicy");
    let ctx = SpecCtx {
        volumes,
        claim_names,
        grace,
        restart_policy,
        host_users,
    };
    let containers = arr_field(spec, "containers", p, errs);
    validate_containers(containers, &ctx, &p.child("containers"), errs);
    validate_init_containers(
        arr_field(spec, "initContainers", p, errs),
        containers,
        &ctx,
        &p.child("initContainers"),
        errs,
    );
    // validatePodHostNetworkDeps
    if boolean(spec, "hostNetwork") {
        let cp = p.child("containers");
        for (i, ctr) in containers.iter().enumerate() {
            for (j, port) in arr(ctr, "ports").iter().enumerate() {
                let hp = port.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                let cport = port
                    .get("containerPort")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if (opts.resource_is_pod || hp != 0) && hp != cport {
                    errs.push(invalid_int(
                        &cp.index(i).child("ports").index(j).child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    match restart_policy {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(required(&p.child("restartPolicy"), "")),
        other => errs.push(not_supported(
            &p.child("restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    match st(spec, "dnsPolicy") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(required(&p.child("dnsPolicy"), "")),
        other => errs.push(not_supported(
            &p.child("dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    label_map(spec.get("nodeSelector"), &p.child("nodeSelector"), errs);
    pod_security_context(spec, p, errs);
    for (i, secret) in arr(spec, "imagePullSecrets").iter().enumerate() {
        let extra = secret
            .as_object()
            .is_some_and(|o| o.keys().any(|k| k != "name"));
        if extra {
            errs.push(invalid_raw(
                &p.child("imagePullSecrets").index(i),
                format!(
                    "core.LocalObjectReference{{Name:{}}}",
                    go_quote(st(secret, "name"))
                ),
                "only name may be set",
            ));
        }
    }
    if let Some(aff) = field(spec, "affinity") {
        affinity(aff, &p.child("affinity"), errs);
    }
    dns_config(spec, &p.child("dnsConfig"), errs);
    for (i, gate) in arr(spec, "readinessGates").iter().enumerate() {
        let ct = st(gate, "conditionType");
        qualified_name(
            ct,
            &p.child("readinessGates").index(i).child("conditionType"),
            errs,
        );
    }
    let mut gates: BTreeSet<&str> = BTreeSet::new();
    for (i, gate) in arr(spec, "schedulingGates").iter().enumerate() {
        let gp = p.child("schedulingGates").index(i);
        let name = st(gate, "name");
        qualified_name(name, &gp, errs);
        if !gates.insert(name) {
            errs.push(duplicate(&gp, name));
        }
    }
    topology_spread_constraints(
        arr(spec, "topologySpreadConstraints"),
        &p.child("topologySpreadConstraints"),
        errs,
    );
    if !host_users {
        for (k, path) in [
            ("hostNetwork", "hostNetwork"),
            ("hostPID", "HostPID"),
            ("hostIPC", "HostIPC"),
        ] {
            if boolean(spec, k) {
                errs.push(forbidden(
                    &p.child(path),
                    "when `pod.Spec.HostUsers` is false",
                ));
            }
        }
    }
    for (k, prefix_ok) in [("serviceAccountName", false), ("nodeName", false)] {
        let v = st(spec, k);
        if !v.is_empty() {
            for msg in name_is_dns_subdomain(v, prefix_ok) {
                errs.push(invalid(&p.child(k), v, msg));
            }
        }
    }
    if let Some(ads) = int_field(spec, "activeDeadlineSeconds", p, errs)
        && !(1..=MAX_INT32).contains(&ads)
    {
        errs.push(invalid_int(
            &p.child("activeDeadlineSeconds"),
            ads,
            inclusive_range_error(1, MAX_INT32),
        ));
    }
    for k in ["hostname", "subdomain"] {
        let v = st(spec, k);
        if !v.is_empty() {
            dns1123_label(v, &p.child(k), errs);
        }
    }
    let tolerations = arr_field(spec, "tolerations", p, errs);
    if !tolerations.is_empty() {
        validate_tolerations(tolerations, &p.child("tolerations"), errs);
    }
    for (i, alias) in arr(spec, "hostAliases").iter().enumerate() {
        let ap = p.child("hostAliases").index(i);
        is_valid_ip(&ap.child("ip"), st(alias, "ip"), errs);
        for (j, h) in str_list(alias, "hostnames").iter().enumerate() {
            dns1123_subdomain(h, &ap.child("hostnames").index(j), errs);
        }
    }
    let pcn = st(spec, "priorityClassName");
    if !pcn.is_empty() {
        dns1123_subdomain(pcn, &p.child("priorityClassName"), errs);
    }
    if let Some(rcn) = opt_str(spec, "runtimeClassName") {
        dns1123_subdomain(rcn, &p.child("runtimeClassName"), errs);
    }
    if let Some(pp) = opt_str(spec, "preemptionPolicy") {
        preemption_policy(pp, &p.child("preemptionPolicy"), errs);
    }
    if let Some(overhead) = field(spec, "overhead") {
        let res = serde_json::json!({ "limits": overhead });
        resource_requirements(&res, &BTreeSet::new(), &p.child("overhead"), errs);
    }
    if let Some(os) = field(spec, "os") {
        let name = st(os, "name");
        if name.is_empty() {
            errs.push(required(&p.child("os").child("name"), "cannot be empty"));
        } else if name != "linux" && name != "windows" {
            errs.push(not_supported(&p.child("os"), name, &["linux", "windows"]));
        } else if name == "linux" {
            if field(spec, "securityContext")
                .and_then(|sc| field(sc, "windowsOptions"))
                .is_some()
            {
                errs.push(forbidden(
                    &p.child("securityContext").child("windowsOptions"),
                    "windows options cannot be set for a linux pod",
                ));
            }
            for (kind, list) in [
                ("initContainers", arr(spec, "initContainers")),
                ("containers", containers),
            ] {
                for (i, ctr) in list.iter().enumerate() {
                    let has = field(ctr, "securityContext")
                        .and_then(|sc| field(sc, "windowsOptions"))
                        .is_some();
                    if has {
                        errs.push(forbidden(
                            &p.child(kind)
                                .index(i)
                                .child("securityContext")
                                .child("windowsOptions"),
                            "windows options cannot be set for a linux pod",
                        ));
                    }
                }
            }
        }
    }
}

fn preemption_policy(pp: &str, p: &Path, errs: &mut Errs) {
    match pp {
        "PreemptLowerPriority" | "Never" => {}
        "" => errs.push(required(p, "")),
        other => errs.push(not_supported(p, other, &["PreemptLowerPriority", "Never"])),
    }
}

/// `ValidatePodSpecificAnnotations` (the parts that do not depend on feature history).
fn pod_specific_annotations(annotations: Option<&Value>, spec: &Value, p: &Path, errs: &mut Errs) {
    let Some(a) = annotations.and_then(Value::as_object) else {
        return;
    };
    if let Some(v) = a.get("kubernetes.io/config.mirror")
        && st(spec, "nodeName").is_empty()
    {
        errs.push(invalid(
            &p.key("kubernetes.io/config.mirror"),
            v.as_str().unwrap_or(""),
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = a.get("controller.kubernetes.io/pod-deletion-cost") {
        let s = v.as_str().unwrap_or("");
        if s.parse::<i32>().is_err() {
            errs.push(invalid(
                &p.key("controller.kubernetes.io/pod-deletion-cost"),
                s,
                "must be a 32bit integer",
            ));
        }
    }
}

/// `ValidatePodTemplateSpec` (a template embedded in another object, at `p`).
fn pod_template_spec(template: &Value, p: &Path, errs: &mut Errs) {
    let null = Value::Null;
    let meta = template.get("metadata").unwrap_or(&null);
    let spec = template.get("spec").unwrap_or(&null);
    label_map(meta.get("labels"), &p.child("labels"), errs);
    annotation_map(meta.get("annotations"), &p.child("annotations"), errs);
    pod_specific_annotations(meta.get("annotations"), spec, &p.child("annotations"), errs);
    validate_pod_spec(
        spec,
        None,
        PodOpts {
            resource_is_pod: false,
        },
        &p.child("spec"),
        errs,
    );
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &p.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// `validatePodMetadataAndSpec` without the metadata (validated elsewhere).
fn pod_metadata_and_spec(pod: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = pod.get("spec").unwrap_or(&null);
    let meta = pod.get("metadata").unwrap_or(&null);
    let spec_path = Path::new("spec");
    pod_specific_annotations(
        meta.get("annotations"),
        spec,
        &Path::new("metadata").child("annotations"),
        errs,
    );
    validate_pod_spec(
        spec,
        opt_str(meta, "name"),
        PodOpts {
            resource_is_pod: true,
        },
        &spec_path,
        errs,
    );
    if st(spec, "serviceAccountName").is_empty() {
        for (vi, vol) in arr(spec, "volumes").iter().enumerate() {
            if let Some(projected) = field(vol, "projected") {
                for (si, source) in arr(projected, "sources").iter().enumerate() {
                    if field(source, "serviceAccountToken").is_some() {
                        errs.push(forbidden(
                            &spec_path
                                .child("volumes")
                                .index(vi)
                                .child("projected")
                                .child("sources")
                                .index(si)
                                .child("serviceAccountToken"),
                            "must not be specified when serviceAccountName is not set",
                        ));
                    }
                }
            }
        }
    }
    for kind in ["containers", "initContainers"] {
        for (i, ctr) in arr(spec, kind).iter().enumerate() {
            let image = st(ctr, "image");
            if image.len() != image.trim().len() {
                errs.push(invalid(
                    &spec_path.child(kind).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
}

/// `ValidatePodCreate`.
fn pod_create(pod: &Value, errs: &mut Errs) {
    pod_metadata_and_spec(pod, errs);
    let null = Value::Null;
    let spec = pod.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &sp.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !st(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        errs.push(forbidden(
            &sp.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
}

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidateContainerUpdates`: returns true when validation must stop.
fn container_updates(new: &[Value], old: &[Value], p: &Path, errs: &mut Errs) -> bool {
    if new.len() != old.len() {
        errs.push(forbidden(p, "pod updates may not add or remove containers"));
        return true;
    }
    for (i, ctr) in new.iter().enumerate() {
        let image = st(ctr, "image");
        if image.is_empty() {
            errs.push(required(&p.index(i).child("image"), ""));
        }
        if image.trim().len() != image.len() {
            errs.push(invalid(
                &p.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    false
}

fn toleration_eq_ignoring_seconds(a: &Value, b: &Value) -> bool {
    ["key", "operator", "value", "effect"]
        .iter()
        .all(|k| st(a, k) == st(b, k))
}

/// `ValidatePodUpdate` (metadata excepted).
fn pod_update(pod: &Value, old: &Value, errs: &mut Errs) {
    pod_metadata_and_spec(pod, errs);
    let null = Value::Null;
    let spec = pod.get("spec").unwrap_or(&null);
    let old_spec = old.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    for kind in ["containers", "initContainers"] {
        if container_updates(arr(spec, kind), arr(old_spec, kind), &sp.child(kind), errs) {
            return;
        }
    }
    let new_ads = spec.get("activeDeadlineSeconds").and_then(Value::as_i64);
    let old_ads = old_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    match (new_ads, old_ads) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(invalid_int(
                &sp.child("activeDeadlineSeconds"),
                n,
                inclusive_range_error(0, MAX_INT32),
            ));
            return;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(invalid_int(
                &sp.child("activeDeadlineSeconds"),
                n,
                "must be less than or equal to previous value",
            ));
            return;
        }
        (None, Some(_)) => errs.push(invalid_raw(
            &sp.child("activeDeadlineSeconds"),
            "null".to_string(),
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // validateOnlyAddedTolerations
    let new_tols = arr(spec, "tolerations");
    let all_kept = arr(old_spec, "tolerations").iter().all(|o| {
        new_tols
            .iter()
            .any(|n| toleration_eq_ignoring_seconds(o, n))
    });
    if !all_kept {
        errs.push(forbidden(
            &sp.child("tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    } else {
        validate_tolerations(new_tols, &sp.child("tolerations"), errs);
    }
    // validateOnlyDeletedSchedulingGates
    let old_gates: BTreeSet<&str> = arr(old_spec, "schedulingGates")
        .iter()
        .map(|g| st(g, "name"))
        .collect();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let name = st(g, "name");
        if !old_gates.contains(name) {
            errs.push(forbidden(
                &sp.child("schedulingGates").index(i).child("name"),
                format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }
    if sem_eq(Some(spec), Some(old_spec)) {
        return;
    }
    // Munge the updatable fields, then compare.
    let mut munged = spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for kind in ["containers", "initContainers"] {
            if let Some(Value::Array(list)) = m.get_mut(kind) {
                for (i, ctr) in list.iter_mut().enumerate() {
                    let old_image = arr(old_spec, kind)
                        .get(i)
                        .and_then(|c| c.get("image"))
                        .cloned();
                    if let Some(c) = ctr.as_object_mut() {
                        match old_image {
                            Some(img) => c.insert("image".to_string(), img),
                            None => c.remove("image"),
                        };
                    }
                }
            }
        }
        for k in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old_spec.get(k) {
                Some(v) => m.insert(k.to_string(), v.clone()),
                None => m.remove(k),
            };
        }
        let old_grace = old_spec
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        let new_grace = m
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        if old_grace.is_some_and(|g| g < 0)
            && new_grace == Some(1)
            && let Some(g) = old_spec.get("terminationGracePeriodSeconds")
        {
            m.insert("terminationGracePeriodSeconds".to_string(), g.clone());
        }
        // Gated pods may gain node selector entries.
        if !arr(old_spec, "schedulingGates").is_empty()
            && !sem_eq(m.get("nodeSelector"), old_spec.get("nodeSelector"))
        {
            let new_sel = labels_of(m.get("nodeSelector"));
            let old_sel = labels_of(old_spec.get("nodeSelector"));
            if old_sel.iter().any(|(k, v)| new_sel.get(k) != Some(v)) {
                errs.push(invalid_raw(
                    &sp.child("nodeSelector"),
                    go_map(m.get("nodeSelector")),
                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                ));
            }
            match old_spec.get("nodeSelector") {
                Some(v) => m.insert("nodeSelector".to_string(), v.clone()),
                None => m.remove("nodeSelector"),
            };
        }
    }
    if !sem_eq(Some(&munged), Some(old_spec)) {
        errs.push(forbidden(
            &sp,
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}",
                json_diff("core.PodSpec", old_spec, &munged)
            ),
        ));
    }
}

/// `ValidatePodTemplate` (the core/v1 PodTemplate object).
fn pod_template(obj: &Value, errs: &mut Errs) {
    let null = Value::Null;
    pod_template_spec(
        obj.get("template").unwrap_or(&null),
        &Path::new("template"),
        errs,
    );
}

// ---------------------------------------------------------------------------------------------
// Workloads: ReplicationController, Deployment, ReplicaSet, StatefulSet, DaemonSet
// ---------------------------------------------------------------------------------------------

/// `ValidateReplicationControllerSpec`.
fn replication_controller(rc: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = rc.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    non_negative(
        &sp.child("minReadySeconds"),
        int_field(spec, "minReadySeconds", &sp, errs).unwrap_or(0),
        errs,
    );
    let selector = labels_of(spec.get("selector"));
    if selector.is_empty() {
        errs.push(required(&sp.child("selector"), ""));
    }
    non_negative(
        &sp.child("replicas"),
        int_field(spec, "replicas", &sp, errs).unwrap_or(0),
        errs,
    );
    let tp = sp.child("template");
    match field(spec, "template") {
        None => errs.push(required(&tp, "")),
        Some(template) => {
            let null = Value::Null;
            let meta = template.get("metadata").unwrap_or(&null);
            if !selector.is_empty() {
                let labels = labels_of(meta.get("labels"));
                if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
                    errs.push(invalid_raw(
                        &tp.child("metadata").child("labels"),
                        go_map(meta.get("labels")),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            pod_template_spec(template, &tp, errs);
            let tspec = template.get("spec").unwrap_or(&null);
            let rp = st(tspec, "restartPolicy");
            if rp != "Always" {
                errs.push(not_supported(
                    &tp.child("spec").child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            if field(tspec, "activeDeadlineSeconds").is_some() {
                errs.push(forbidden(
                    &tp.child("spec").child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
}

/// Validates a workload's `spec.selector` (a `*metav1.LabelSelector`): required, valid and
/// non-empty. Returns the selector when it converts (`LabelSelectorAsSelector`).
fn workload_selector(
    spec: &Value,
    kind: &str,
    p: &Path,
    errs: &mut Errs,
) -> Result<LabelSelector, ()> {
    let sel = spec.get("selector").unwrap_or(&Value::Null);
    let selp = p.child("selector");
    if sel.is_null() {
        errs.push(required(&selp, ""));
    } else {
        validate_label_selector(sel, false, &selp, errs);
        let n = map(sel, "matchLabels").map_or(0, Map::len) + arr(sel, "matchExpressions").len();
        if n == 0 {
            errs.push(invalid_raw(
                &selp,
                go_label_selector(Some(sel)),
                format!("empty selector is invalid for {kind}"),
            ));
        }
    }
    LabelSelector::from_label_selector_json(sel).map_err(|_| ())
}

/// `ValidatePodTemplateSpecForReplicaSet` (also Deployments).
fn template_for_replica_set(
    spec: &Value,
    selector: &LabelSelector,
    kind: &str,
    p: &Path,
    errs: &mut Errs,
) {
    let tp = p.child("template");
    let null = Value::Null;
    let template = spec.get("template").unwrap_or(&null);
    let meta = template.get("metadata").unwrap_or(&null);
    if !selector.is_empty() && !selector.matches(&labels_of(meta.get("labels"))) {
        errs.push(invalid_raw(
            &tp.child("metadata").child("labels"),
            go_map(meta.get("labels")),
            "`selector` does not match template `labels`",
        ));
    }
    pod_template_spec(template, &tp, errs);
    let tspec = template.get("spec").unwrap_or(&null);
    let rp = st(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if field(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            if is_valid_percent(s).is_empty() {
                s.trim_end_matches('%').parse().unwrap_or(0)
            } else {
                s.parse().unwrap_or(0)
            }
        }
        _ => 0,
    }
}

/// `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(v: Option<&Value>, p: &Path, errs: &mut Errs) {
    match v {
        Some(Value::String(s)) => {
            for msg in is_valid_percent(s) {
                errs.push(invalid_raw(p, go_int_or_string(v), msg));
            }
        }
        Some(Value::Number(n)) => non_negative(p, n.as_i64().unwrap_or(0), errs),
        None | Some(Value::Null) => {}
        Some(other) => errs.push(invalid_json(
            p,
            other,
            "must be an integer or percentage (e.g '5%%')",
        )),
    }
}

/// `IsNotMoreThan100Percent`.
fn not_more_than_100_percent(v: Option<&Value>, p: &Path, errs: &mut Errs) {
    if let Some(Value::String(s)) = v
        && is_valid_percent(s).is_empty()
        && int_or_percent_value(v) > 100
    {
        errs.push(invalid_raw(
            p,
            go_int_or_string(v),
            "must not be greater than 100%",
        ));
    }
}

/// `ValidateDeploymentSpec`.
fn deployment_spec(obj: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    non_negative(
        &sp.child("replicas"),
        int_field(spec, "replicas", &sp, errs).unwrap_or(0),
        errs,
    );
    match workload_selector(spec, "deployment", &sp, errs) {
        Ok(selector) => template_for_replica_set(spec, &selector, "ReplicaSet", &sp, errs),
        Err(()) => errs.push(invalid_raw(
            &sp.child("selector"),
            go_label_selector(spec.get("selector")),
            "invalid label selector",
        )),
    }
    // ValidateDeploymentStrategy
    let stp = sp.child("strategy");
    let strategy = spec.get("strategy").unwrap_or(&null);
    let ru = field(strategy, "rollingUpdate");
    match st(strategy, "type") {
        "Recreate" => {
            if ru.is_some() {
                errs.push(forbidden(
                    &stp.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match ru {
            None => errs.push(required(
                &stp.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = stp.child("rollingUpdate");
                let mu = ru.get("maxUnavailable");
                let ms = ru.get("maxSurge");
                positive_int_or_percent(mu, &rp.child("maxUnavailable"), errs);
                positive_int_or_percent(ms, &rp.child("maxSurge"), errs);
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(invalid_raw(
                        &rp.child("maxUnavailable"),
                        go_int_or_string(mu),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100_percent(mu, &rp.child("maxUnavailable"), errs);
            }
        },
        other => errs.push(not_supported_raw(
            &stp,
            format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:{}}}",
                go_quote(other),
                if ru.is_some() {
                    "(*apps.RollingUpdateDeployment)(0xc000000000)"
                } else {
                    "(*apps.RollingUpdateDeployment)(nil)"
                }
            ),
            &["Recreate", "RollingUpdate"],
        )),
    }
    let min_ready = int_field(spec, "minReadySeconds", &sp, errs).unwrap_or(0);
    non_negative(&sp.child("minReadySeconds"), min_ready, errs);
    if let Some(rhl) = int_field(spec, "revisionHistoryLimit", &sp, errs) {
        non_negative(&sp.child("revisionHistoryLimit"), rhl, errs);
    }
    if let Some(pds) = int_field(spec, "progressDeadlineSeconds", &sp, errs) {
        non_negative(&sp.child("progressDeadlineSeconds"), pds, errs);
        if pds <= min_ready {
            errs.push(invalid_int(
                &sp.child("progressDeadlineSeconds"),
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

/// `ValidateReplicaSetSpec`.
fn replica_set_spec(obj: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    non_negative(
        &sp.child("replicas"),
        int_field(spec, "replicas", &sp, errs).unwrap_or(0),
        errs,
    );
    non_negative(
        &sp.child("minReadySeconds"),
        int_field(spec, "minReadySeconds", &sp, errs).unwrap_or(0),
        errs,
    );
    match workload_selector(spec, "deployment", &sp, errs) {
        Ok(selector) => template_for_replica_set(spec, &selector, "ReplicaSet", &sp, errs),
        Err(()) => errs.push(invalid_raw(
            &sp.child("selector"),
            go_label_selector(spec.get("selector")),
            "invalid label selector",
        )),
    }
}

/// `ValidateStatefulSetSpec` (the pod spec of the template is not validated by kube v1.33).
fn stateful_set_spec(obj: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    match st(spec, "podManagementPolicy") {
        "" => errs.push(required(&sp.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid(
            &sp.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = spec.get("updateStrategy").unwrap_or(&null);
    let usp = sp.child("updateStrategy");
    match st(us, "type") {
        "" => errs.push(required(&usp, "")),
        "OnDelete" => {
            if let Some(ru) = field(us, "rollingUpdate") {
                errs.push(invalid_json(
                    &usp.child("rollingUpdate"),
                    ru,
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = field(us, "rollingUpdate") {
                let rp = usp.child("rollingUpdate");
                non_negative(
                    &rp.child("partition"),
                    int_field(ru, "partition", &rp, errs).unwrap_or(0),
                    errs,
                );
            }
        }
        _ => errs.push(invalid_json(
            &usp,
            us,
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = field(spec, "persistentVolumeClaimRetentionPolicy") {
        let pp = sp.child("persistentVolumeClaimRetentionPolicy");
        for k in ["whenDeleted", "whenScaled"] {
            let v = st(policy, k);
            if v != "Retain" && v != "Delete" {
                errs.push(not_supported(&pp.child(k), v, &["Retain", "Delete"]));
            }
        }
    }
    non_negative(
        &sp.child("replicas"),
        int_field(spec, "replicas", &sp, errs).unwrap_or(0),
        errs,
    );
    non_negative(
        &sp.child("minReadySeconds"),
        int_field(spec, "minReadySeconds", &sp, errs).unwrap_or(0),
        errs,
    );
    if let Some(ordinals) = field(spec, "ordinals") {
        let start = ordinals.get("start").and_then(Value::as_i64).unwrap_or(0);
        non_negative(&sp.child("ordinals.start"), start, errs);
    }
    let sel = spec.get("selector").unwrap_or(&null);
    let selp = sp.child("selector");
    if sel.is_null() {
        errs.push(required(&selp, ""));
    } else {
        validate_label_selector(sel, false, &selp, errs);
        let n = map(sel, "matchLabels").map_or(0, Map::len) + arr(sel, "matchExpressions").len();
        if n == 0 {
            errs.push(invalid_raw(
                &selp,
                go_label_selector(Some(sel)),
                "empty selector is invalid for statefulset",
            ));
        }
    }
    let template = spec.get("template").unwrap_or(&null);
    let tp = sp.child("template");
    let meta = template.get("metadata").unwrap_or(&null);
    let tspec = template.get("spec").unwrap_or(&null);
    match LabelSelector::from_label_selector_json(sel) {
        Err(_) => errs.push(invalid_raw(&selp, go_label_selector(Some(sel)), "")),
        Ok(selector) => {
            if !selector.is_empty() && !selector.matches(&labels_of(meta.get("labels"))) {
                errs.push(invalid_raw(
                    &tp.child("metadata").child("labels"),
                    go_map(meta.get("labels")),
                    "`selector` does not match template `labels`",
                ));
            }
            label_map(meta.get("labels"), &tp.child("labels"), errs);
            annotation_map(meta.get("annotations"), &tp.child("annotations"), errs);
            pod_specific_annotations(
                meta.get("annotations"),
                tspec,
                &tp.child("annotations"),
                errs,
            );
        }
    }
    let rp = st(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if field(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
}

/// `ValidateStatefulSetUpdate`: only some spec fields may change.
fn stateful_set_update(obj: &Value, old: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let old_spec = old.get("spec").unwrap_or(&null);
    let mut a = normalize(spec);
    let mut b = normalize(old_spec);
    for k in [
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ] {
        if let Some(m) = a.as_object_mut() {
            m.remove(k);
        }
        if let Some(m) = b.as_object_mut() {
            m.remove(k);
        }
    }
    if a != b {
        errs.push(forbidden(
            &Path::new("spec"),
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

/// `ValidateDaemonSetSpec`.
fn daemon_set_spec(obj: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    let sel = spec.get("selector").unwrap_or(&null);
    validate_label_selector(sel, false, &sp.child("selector"), errs);
    let template = spec.get("template").unwrap_or(&null);
    let meta = template.get("metadata").unwrap_or(&null);
    if let Ok(selector) = LabelSelector::from_label_selector_json(sel)
        && !selector.matches(&labels_of(meta.get("labels")))
    {
        errs.push(invalid_raw(
            &sp.child("template").child("metadata").child("labels"),
            go_map(meta.get("labels")),
            "`selector` does not match template `labels`",
        ));
    }
    if sel.is_object() {
        let n = map(sel, "matchLabels").map_or(0, Map::len) + arr(sel, "matchExpressions").len();
        if n == 0 {
            errs.push(invalid_raw(
                &sp.child("selector"),
                go_label_selector(Some(sel)),
                "empty selector is invalid for daemonset",
            ));
        }
    }
    let tp = sp.child("template");
    pod_template_spec(template, &tp, errs);
    let tspec = template.get("spec").unwrap_or(&null);
    let rp = st(tspec, "restartPolicy");
    if rp != "Always" {
        errs.push(not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
    if field(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    non_negative(
        &sp.child("minReadySeconds"),
        int_field(spec, "minReadySeconds", &sp, errs).unwrap_or(0),
        errs,
    );
    // ValidateDaemonSetUpdateStrategy
    let us = spec.get("updateStrategy").unwrap_or(&null);
    let usp = sp.child("updateStrategy");
    match st(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match field(us, "rollingUpdate") {
            None => errs.push(required(&usp.child("rollingUpdate"), "")),
            Some(ru) => {
                let rp = usp.child("rollingUpdate");
                let mu = ru.get("maxUnavailable");
                let ms = ru.get("maxSurge");
                positive_int_or_percent(mu, &rp.child("maxUnavailable"), errs);
                positive_int_or_percent(ms, &rp.child("maxSurge"), errs);
                not_more_than_100_percent(mu, &rp.child("maxUnavailable"), errs);
                not_more_than_100_percent(ms, &rp.child("maxSurge"), errs);
                let has_unavailable = int_or_percent_value(mu) != 0;
                let has_surge = int_or_percent_value(ms) != 0;
                if has_unavailable && has_surge {
                    errs.push(invalid_raw(
                        &rp.child("maxSurge"),
                        go_int_or_string(ms),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_unavailable && !has_surge {
                    errs.push(required(
                        &rp.child("maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        other => errs.push(not_supported_raw(
            &usp,
            format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:{}}}",
                go_quote(other),
                if field(us, "rollingUpdate").is_some() {
                    "(*apps.RollingUpdateDaemonSet)(0xc000000000)"
                } else {
                    "(*apps.RollingUpdateDaemonSet)(nil)"
                }
            ),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let Some(rhl) = int_field(spec, "revisionHistoryLimit", &sp, errs) {
        non_negative(&sp.child("revisionHistoryLimit"), rhl, errs);
    }
}

/// apps/v1 strategies forbid changing `spec.selector`.
fn selector_immutable(obj: &Value, old: &Value, errs: &mut Errs) {
    let new_sel = obj.get("spec").and_then(|s| s.get("selector"));
    let old_sel = old.get("spec").and_then(|s| s.get("selector"));
    if !sem_eq(new_sel, old_sel) {
        errs.push(invalid_raw(
            &Path::new("spec").child("selector"),
            go_label_selector(new_sel),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// batch: Job and CronJob
// ---------------------------------------------------------------------------------------------

const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";
const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// `ValidateHasLabel`.
fn has_label(labels: Option<&Value>, p: &Path, key: &str, expected: &str, errs: &mut Errs) {
    let lp = p.child("labels").key(key);
    match labels.and_then(|l| l.get(key)) {
        None => errs.push(required(&lp, &format!("must be '{expected}'"))),
        Some(v) if v.as_str() != Some(expected) => errs.push(invalid_raw(
            &lp,
            go_map(labels),
            format!("must be '{expected}'"),
        )),
        Some(_) => {}
    }
}

/// `validateGeneratedSelector`. Skipped when the object has no uid yet (kube sets it before
/// validating).
fn job_generated_selector(job: &Value, require_prefixed: bool, errs: &mut Errs) {
    let null = Value::Null;
    let spec = job.get("spec").unwrap_or(&null);
    if boolean(spec, "manualSelector") || field(spec, "selector").is_none() {
        return;
    }
    let meta = job.get("metadata").unwrap_or(&null);
    let uid = st(meta, "uid");
    let name = st(meta, "name");
    if uid.is_empty() {
        return;
    }
    let tmeta = Path::new("spec").child("template").child("metadata");
    let labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| field(m, "labels"));
    has_label(labels, &tmeta, LEGACY_CONTROLLER_UID_LABEL, uid, errs);
    has_label(labels, &tmeta, LEGACY_JOB_NAME_LABEL, name, errs);
    let mut expected = Map::new();
    if require_prefixed {
        has_label(labels, &tmeta, CONTROLLER_UID_LABEL, uid, errs);
        has_label(labels, &tmeta, JOB_NAME_LABEL, name, errs);
        expected.insert(CONTROLLER_UID_LABEL.into(), Value::String(uid.into()));
        expected.insert(JOB_NAME_LABEL.into(), Value::String(name.into()));
    }
    expected.insert(
        LEGACY_CONTROLLER_UID_LABEL.into(),
        Value::String(uid.into()),
    );
    expected.insert(LEGACY_JOB_NAME_LABEL.into(), Value::String(name.into()));
    let sel = spec.get("selector").unwrap_or(&null);
    if let Ok(selector) = LabelSelector::from_label_selector_json(sel)
        && !selector.matches(&expected)
    {
        errs.push(invalid_raw(
            &Path::new("spec").child("selector"),
            go_label_selector(Some(sel)),
            "`selector` not auto-generated",
        ));
    }
}

/// `validateJobSpec` (shared by Jobs and CronJob job templates).
fn job_spec_common(spec: &Value, p: &Path, errs: &mut Errs) {
    for k in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
    ] {
        if let Some(n) = int_field(spec, k, p, errs) {
            non_negative(&p.child(k), n, errs);
        }
    }
    let max_failed = int_field(spec, "maxFailedIndexes", p, errs);
    let backoff_per_index = spec.get("backoffLimitPerIndex").and_then(Value::as_i64);
    if let Some(n) = max_failed {
        non_negative(&p.child("maxFailedIndexes"), n, errs);
        if backoff_per_index.is_none() {
            errs.push(required(
                &p.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(mb) = opt_str(spec, "managedBy") {
        let mp = p.child("managedBy");
        // IsDomainPrefixedPath
        match mb.split_once('/') {
            _ if mb.is_empty() => errs.push(required(&mp, "")),
            Some((host, path)) if !host.is_empty() && !path.is_empty() => {
                for msg in is_dns1123_subdomain(host) {
                    errs.push(invalid(&mp, host, msg));
                }
                let ok = path
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c));
                if !ok {
                    errs.push(invalid(
                        &mp,
                        path,
                        regex_error("Invalid path", "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+", &[]),
                    ));
                }
            }
            _ => errs.push(invalid(
                &mp,
                mb,
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            )),
        }
        if mb.len() > 63 {
            errs.push(FieldError::too_long(&mp, Some(63)));
        }
    }
    let completions = spec.get("completions").and_then(Value::as_i64);
    let parallelism = spec.get("parallelism").and_then(Value::as_i64);
    let mode = opt_str(spec, "completionMode");
    if let Some(m) = mode {
        if m != "NonIndexed" && m != "Indexed" {
            errs.push(not_supported(
                &p.child("completionMode"),
                m,
                &["NonIndexed", "Indexed"],
            ));
        }
        if m == "Indexed" {
            if completions.is_none() {
                errs.push(required(
                    &p.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(par) = parallelism.filter(|n| *n > 100_000) {
                errs.push(invalid_int(
                    &p.child("parallelism"),
                    par,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
            if let (Some(c), Some(mf)) = (completions, max_failed)
                && mf > c
            {
                errs.push(invalid_int(
                    &p.child("maxFailedIndexes"),
                    mf,
                    "must be less than or equal to completions",
                ));
            }
            if let Some(mf) = max_failed.filter(|n| *n > 100_000) {
                errs.push(invalid_int(
                    &p.child("maxFailedIndexes"),
                    mf,
                    "must be less than or equal to 100000",
                ));
            }
        }
    }
    if mode.is_none() || mode == Some("NonIndexed") {
        if let Some(b) = backoff_per_index {
            errs.push(invalid_int(
                &p.child("backoffLimitPerIndex"),
                b,
                "requires indexed completion mode",
            ));
        }
        if let Some(mf) = max_failed {
            errs.push(invalid_int(
                &p.child("maxFailedIndexes"),
                mf,
                "requires indexed completion mode",
            ));
        }
    }
    if let Some(sp) = field(spec, "successPolicy")
        && mode != Some("Indexed")
    {
        errs.push(invalid_json(
            &p.child("successPolicy"),
            sp,
            "requires indexed completion mode",
        ));
    }
    if let Some(prp) = opt_str(spec, "podReplacementPolicy") {
        let pp = p.child("podReplacementPolicy");
        if field(spec, "podFailurePolicy").is_some() {
            if prp != "Failed" {
                errs.push(not_supported(&pp, prp, &["Failed"]));
            }
        } else if prp != "Failed" && prp != "TerminatingOrFailed" {
            errs.push(not_supported(&pp, prp, &["Failed", "TerminatingOrFailed"]));
        }
    }
    let null = Value::Null;
    let template = spec.get("template").unwrap_or(&null);
    let tp = p.child("template");
    pod_template_spec(template, &tp, errs);
    let rpp = tp.child("spec").child("restartPolicy");
    let rp = template
        .get("spec")
        .map(|s| st(s, "restartPolicy"))
        .unwrap_or("");
    if rp == "Always" || rp.is_empty() {
        errs.push(required(&rpp, "valid values: \"OnFailure\", \"Never\""));
    } else if rp != "OnFailure" && rp != "Never" {
        errs.push(not_supported(&rpp, rp, &["OnFailure", "Never"]));
    } else if field(spec, "podFailurePolicy").is_some() && rp != "Never" {
        errs.push(invalid(
            &rpp,
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
}

/// `ValidateJobSpec`.
fn job_spec(spec: &Value, p: &Path, errs: &mut Errs) {
    job_spec_common(spec, p, errs);
    let sel = spec.get("selector").unwrap_or(&Value::Null);
    if sel.is_null() {
        errs.push(required(&p.child("selector"), ""));
    } else {
        validate_label_selector(sel, false, &p.child("selector"), errs);
    }
    if let Ok(selector) = LabelSelector::from_label_selector_json(sel) {
        let labels = spec
            .get("template")
            .and_then(|t| t.get("metadata"))
            .and_then(|m| m.get("labels"));
        if !selector.matches(&labels_of(labels)) {
            errs.push(invalid_raw(
                &p.child("template").child("metadata").child("labels"),
                go_map(labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
}

/// `ValidateJob` and, on update, `ValidateJobUpdate` (as the Job strategy runs both).
fn job(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    let require_prefixed = match old {
        None => true,
        Some(o) => o
            .get("spec")
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("metadata"))
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.get(CONTROLLER_UID_LABEL))
            .is_some(),
    };
    job_generated_selector(obj, require_prefixed, errs);
    job_spec(spec, &sp, errs);
    let meta = obj.get("metadata").unwrap_or(&null);
    if st(spec, "completionMode") == "Indexed"
        && let Some(c) = spec
            .get("completions")
            .and_then(Value::as_i64)
            .filter(|c| *c > 0)
    {
        let name = st(meta, "name");
        let hostname = format!("{name}-{}", c - 1);
        if !is_dns1123_label(&hostname).is_empty() {
            errs.push(invalid(
                &Path::new("metadata").child("name"),
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    let Some(old) = old else {
        return;
    };
    // ValidateJobSpecUpdate
    let old_spec = old.get("spec").unwrap_or(&null);
    job_spec(spec, &sp, errs);
    let indexed = st(spec, "completionMode") == "Indexed";
    if !sem_eq(spec.get("completions"), old_spec.get("completions")) {
        let completions = spec.get("completions").and_then(Value::as_i64);
        if !indexed {
            errs.push(invalid_json(
                &sp.child("completions"),
                spec.get("completions").unwrap_or(&null),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        } else if let Some(c) = completions
            && Some(c) != spec.get("parallelism").and_then(Value::as_i64)
        {
            errs.push(invalid_int(
                &sp.child("completions"),
                c,
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    if !sem_eq(spec.get("selector"), old_spec.get("selector")) {
        errs.push(invalid_raw(
            &sp.child("selector"),
            go_label_selector(spec.get("selector")),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    // validatePodTemplateUpdate: scheduling directives may change while suspended and unstarted.
    let mut template = spec.get("template").cloned().unwrap_or(Value::Null);
    let mut old_template = old_spec.get("template").cloned().unwrap_or(Value::Null);
    let suspended = boolean(old_spec, "suspend");
    let not_started = old
        .get("status")
        .and_then(|s| field(s, "startTime"))
        .is_none();
    if suspended && not_started {
        for t in [&mut template, &mut old_template] {
            if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("labels");
                m.remove("annotations");
            }
            if let Some(s) = t.get_mut("spec").and_then(Value::as_object_mut) {
                for k in ["nodeSelector", "tolerations", "schedulingGates"] {
                    s.remove(k);
                }
                if let Some(a) = s.get_mut("affinity").and_then(Value::as_object_mut) {
                    a.remove("nodeAffinity");
                }
            }
        }
    }
    if !sem_eq(Some(&template), Some(&old_template)) {
        errs.push(invalid_json(
            &sp.child("template"),
            spec.get("template").unwrap_or(&null),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    for k in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        if !sem_eq(spec.get(k), old_spec.get(k)) {
            errs.push(invalid_json(
                &sp.child(k),
                spec.get(k).unwrap_or(&null),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
    }
}

/// Go's `time.ParseDuration` (only whether it parses, and its error).
fn go_parse_duration(orig: &str) -> Result<(), String> {
    let quoted = format!("\"{orig}\"");
    let mut s = orig;
    if let Some(rest) = s.strip_prefix(['-', '+']) {
        s = rest;
    }
    if s == "0" {
        return Ok(());
    }
    if s.is_empty() {
        return Err(format!("time: invalid duration {quoted}"));
    }
    while !s.is_empty() {
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (int_part, rest) = s.split_at(digits_end);
        let mut rest = rest;
        let mut frac = "";
        if let Some(r) = rest.strip_prefix('.') {
            let e = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            frac = &r[..e];
            rest = &r[e..];
        }
        if int_part.is_empty() && frac.is_empty() {
            return Err(format!("time: invalid duration {quoted}"));
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, tail) = rest.split_at(unit_end);
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {quoted}"));
        }
        if !matches!(unit, "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return Err(format!(
                "time: unknown unit \"{unit}\" in duration {quoted}"
            ));
        }
        s = tail;
    }
    Ok(())
}

/// Go's `strconv.Atoi` error text, as robfig/cron wraps it.
fn cron_parse_int(expr: &str) -> Result<u64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    let syntax = || {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            go_quote(expr)
        )
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(syntax());
    }
    let n: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: value out of range",
            go_quote(expr)
        )
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n as u64)
}

const CRON_MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const CRON_DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// robfig/cron's `getRange`.
fn cron_range(
    expr: &str,
    min: u64,
    max: u64,
    names: &[&str],
    names_start: u64,
) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step
        .first()
        .copied()
        .unwrap_or("")
        .split('-')
        .collect();
    let single = low_high.len() == 1;
    let parse = |s: &str| -> Result<u64, String> {
        let lower = s.to_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(i as u64 + names_start);
        }
        cron_parse_int(s)
    };
    let (start, mut end);
    let first = low_high.first().copied().unwrap_or("");
    if first == "*" || first == "?" {
        start = min;
        end = max;
    } else {
        start = parse(first)?;
        end = match low_high.len() {
            1 => start,
            2 => parse(low_high.get(1).copied().unwrap_or(""))?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = cron_parse_int(range_and_step.get(1).copied().unwrap_or(""))?;
            if single {
                end = max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// robfig/cron v3 `ParseStandard`: the error kube reports for an invalid schedule.
fn parse_cron_standard(schedule: &str) -> Result<(), String> {
    if schedule.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = schedule;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let (Some(i), Some(eq)) = (spec.find(' '), spec.find('=')) else {
            return Err(format!(
                "provided bad location {spec}: unknown time zone {spec}"
            ));
        };
        let loc = spec.get(eq + 1..i).unwrap_or("");
        if !loc.is_empty() && !is_plausible_time_zone(loc) {
            return Err(format!(
                "provided bad location {loc}: unknown time zone {loc}"
            ));
        }
        spec = spec.get(i..).unwrap_or("").trim();
    }
    if spec.starts_with('@') {
        return match spec {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            _ => match spec.strip_prefix("@every ") {
                Some(d) => go_parse_duration(d)
                    .map_err(|e| format!("failed to parse duration {spec}: {e}")),
                None => Err(format!("unrecognized descriptor: {spec}")),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let bounds: [(u64, u64, &[&str], u64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, CRON_MONTHS, 1),
        (0, 6, CRON_DAYS, 0),
    ];
    for (f, (min, max, names, start)) in fields.iter().zip(bounds) {
        for expr in f.split(',').filter(|e| !e.is_empty()) {
            cron_range(expr, min, max, names, start)?;
        }
    }
    Ok(())
}

/// A time zone name that `time.LoadLocation` might know (syntax only: no tz database here).
fn is_plausible_time_zone(tz: &str) -> bool {
    tz.split('/').all(|part| {
        part != "."
            && part != ".."
            && !part.starts_with('-')
            && (1..=14).contains(&part.len())
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c))
    })
}

/// `ValidateJobTemplateSpec`.
fn job_template_spec(template: &Value, p: &Path, errs: &mut Errs) {
    let null = Value::Null;
    let spec = template.get("spec").unwrap_or(&null);
    let sp = p.child("spec");
    job_spec_common(spec, &sp, errs);
    if let Some(sel) = field(spec, "selector") {
        errs.push(invalid_raw(
            &sp.child("selector"),
            go_label_selector(Some(sel)),
            "`selector` will be auto-generated",
        ));
    }
    if boolean(spec, "manualSelector") {
        errs.push(not_supported_raw(
            &sp.child("manualSelector"),
            "true".to_string(),
            &["nil", "false"],
        ));
    }
}

/// `ValidateCronJobCreate` / `ValidateCronJobUpdate`.
fn cron_job(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let old_spec = old.and_then(|o| o.get("spec"));
    let sp = Path::new("spec");
    let schedule = str_field(spec, "schedule", &sp, errs);
    let schp = sp.child("schedule");
    if schedule.is_empty() {
        errs.push(required(&schp, ""));
    } else {
        let allow_tz = old_spec.is_some_and(|o| st(o, "schedule").contains("TZ"));
        if let Err(e) = parse_cron_standard(schedule) {
            errs.push(invalid(&schp, schedule, e));
        }
        if allow_tz && schedule.contains("TZ") && field(spec, "timeZone").is_some() {
            errs.push(invalid(
                &schp,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(invalid(
                &schp,
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(sds) = int_field(spec, "startingDeadlineSeconds", &sp, errs) {
        non_negative(&sp.child("startingDeadlineSeconds"), sds, errs);
    }
    let tz = opt_str(spec, "timeZone");
    if old_spec.is_none_or(|o| opt_str(o, "timeZone") != tz)
        && let Some(tz) = tz
    {
        let tzp = sp.child("timeZone");
        if tz.is_empty() {
            errs.push(invalid(
                &tzp,
                tz,
                "timeZone must be nil or non-empty string",
            ));
        } else if !is_plausible_time_zone(tz) {
            errs.push(invalid(&tzp, tz, format!("unknown time zone {tz}")));
        } else if tz.eq_ignore_ascii_case("local") {
            errs.push(invalid(
                    &tzp,
                    tz,
                    "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
                ));
        }
    }
    match st(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(required(&sp.child("concurrencyPolicy"), "")),
        other => errs.push(not_supported(
            &sp.child("concurrencyPolicy"),
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    job_template_spec(
        spec.get("jobTemplate").unwrap_or(&null),
        &sp.child("jobTemplate"),
        errs,
    );
    for k in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        if let Some(n) = int_field(spec, k, &sp, errs) {
            non_negative(&sp.child(k), n, errs);
        }
    }
    if old.is_none() {
        let name = obj.get("metadata").map(|m| st(m, "name")).unwrap_or("");
        if name.len() > 52 {
            errs.push(invalid(
                &Path::new("metadata").child("name"),
                name,
                "must be no more than 52 characters",
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/// The spec's `clusterIPs` after kube's strategy synced it with `clusterIP`
/// (`normalizeClusterIPs`).
fn normalized_cluster_ips(spec: &Value, old_spec: Option<&Value>) -> Vec<String> {
    let cluster_ip = st(spec, "clusterIP");
    let mut ips = str_list(spec, "clusterIPs");
    match old_spec {
        None => {
            if !cluster_ip.is_empty() && ips.is_empty() {
                ips = vec![cluster_ip.to_string()];
            }
        }
        Some(old) => {
            let old_ip = st(old, "clusterIP");
            let old_ips = str_list(old, "clusterIPs");
            if !old_ips.is_empty() && ips.is_empty() && old_ip == cluster_ip {
                ips = old_ips.clone();
            }
            if old_ip != cluster_ip {
                let same = ips == old_ips;
                if !old_ip.is_empty() && cluster_ip.is_empty() && same {
                    ips = Vec::new();
                }
                if !cluster_ip.is_empty() && same {
                    ips = vec![cluster_ip.to_string()];
                }
            }
        }
    }
    ips
}

fn ips_value(ips: &[String]) -> String {
    go_string_slice(Some(ips))
}

/// `ValidateService` and, with `old`, `ValidateServiceUpdate`.
fn service(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let old_spec = old.map(|o| o.get("spec").unwrap_or(&Value::Null));
    let sp = Path::new("spec");
    let cluster_ips = normalized_cluster_ips(spec, old_spec);
    let svc_type = str_field(spec, "type", &sp, errs);
    let headless = cluster_ips.len() == 1 && cluster_ips.first().is_some_and(|ip| ip == "None");
    let cips_path = sp.child("clusterIPs");

    if let Some(old_spec) = old_spec {
        service_update(spec, old_spec, &cluster_ips, headless, errs);
    }

    let meta = obj.get("metadata").unwrap_or(&null);
    let annotations = meta.get("annotations").unwrap_or(&null);
    let hints = opt_str(annotations, "service.kubernetes.io/topology-aware-hints");
    let mode = opt_str(annotations, "service.kubernetes.io/topology-mode");
    if let (Some(h), Some(m)) = (hints, mode)
        && h != m
    {
        errs.push(invalid(
                &Path::new("metadata")
                    .child("annotations")
                    .key("service.kubernetes.io/topology-mode"),
                m,
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
            ));
    }

    let ports = arr_field(spec, "ports", &sp, errs);
    if ports.is_empty() && !headless && svc_type != "ExternalName" {
        errs.push(required(&sp.child("ports"), ""));
    }
    match svc_type {
        "LoadBalancer" | "NodePort" if headless => errs.push(invalid(
            &cips_path.index(0),
            "None",
            format!("may not be set to 'None' for {svc_type} services"),
        )),
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(forbidden(
                    &cips_path,
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(forbidden(
                    &sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if field(spec, "ipFamilyPolicy").is_some() {
                errs.push(forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let ext = st(spec, "externalName");
            let cname = ext.strip_suffix('.').unwrap_or(ext);
            if cname.is_empty() {
                errs.push(required(&sp.child("externalName"), ""));
            } else {
                dns1123_subdomain(cname, &sp.child("externalName"), errs);
            }
        }
        _ => {}
    }
    let ports_path = sp.child("ports");
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let pp = ports_path.index(i);
        let name = st(port, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(required(&pp.child("name"), ""));
        } else if !name.is_empty() {
            dns1123_label(name, &pp.child("name"), errs);
            if !names.insert(name) {
                errs.push(duplicate(&pp.child("name"), name));
            }
        }
        let num = int_field(port, "port", &pp, errs).unwrap_or(0);
        for msg in is_valid_port_num(num) {
            errs.push(invalid_int(&pp.child("port"), num, msg));
        }
        let protocol = st(port, "protocol");
        if protocol.is_empty() {
            errs.push(required(&pp.child("protocol"), ""));
        } else if !SUPPORTED_PORT_PROTOCOLS.contains(&protocol) {
            errs.push(not_supported(
                &pp.child("protocol"),
                protocol,
                SUPPORTED_PORT_PROTOCOLS,
            ));
        }
        port_num_or_name(field(port, "targetPort"), &pp.child("targetPort"), errs);
        if let Some(ap) = opt_str(port, "appProtocol") {
            qualified_name(ap, &pp.child("appProtocol"), errs);
        }
    }
    if let Some(sel) = field(spec, "selector") {
        label_map(Some(sel), &sp.child("selector"), errs);
    }
    let affinity = st(spec, "sessionAffinity");
    match affinity {
        "" => errs.push(required(&sp.child("sessionAffinity"), "")),
        "ClientIP" | "None" => {}
        other => errs.push(not_supported(
            &sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    let sac_path = sp.child("sessionAffinityConfig");
    let sac = field(spec, "sessionAffinityConfig");
    if affinity == "ClientIP" {
        let client_ip = sac.and_then(|c| field(c, "clientIP"));
        let timeout = client_ip.and_then(|c| field(c, "timeoutSeconds"));
        let detail = "when session affinity type is ClientIP";
        if sac.is_none() {
            errs.push(required(&sac_path, detail));
        } else if client_ip.is_none() {
            errs.push(required(&sac_path.child("clientIP"), detail));
        } else if let Some(t) = timeout {
            let n = t.as_i64().unwrap_or(0);
            if n <= 0 || n > 86400 {
                errs.push(invalid_int(
                    &sac_path.child("clientIP").child("timeoutSeconds"),
                    n,
                    "must be greater than 0 and less than 86400",
                ));
            }
        } else {
            errs.push(required(
                &sac_path.child("clientIP").child("timeoutSeconds"),
                detail,
            ));
        }
    } else if affinity == "None" && sac.is_some() {
        errs.push(forbidden(
            &sac_path,
            "must not be set when session affinity is None",
        ));
    }
    cluster_ips_related(spec, svc_type, &cluster_ips, headless, errs);
    for (i, ip) in str_list(spec, "externalIPs").iter().enumerate() {
        let ipp = sp.child("externalIPs").index(i);
        if is_valid_ip(&ipp, ip, errs) {
            validate_non_special_ip(ip, &ipp, errs);
        }
    }
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if svc_type.is_empty() {
        errs.push(required(&sp.child("type"), ""));
    } else if !TYPES.contains(&svc_type) {
        errs.push(not_supported(&sp.child("type"), svc_type, TYPES));
    }
    if svc_type == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                errs.push(forbidden(
                    &ports_path.index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports: BTreeSet<(String, i64)> = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        if np == 0 {
            continue;
        }
        if !node_ports.insert((st(port, "protocol").to_string(), np)) {
            errs.push(FieldError {
                field: ports_path.index(i).child("nodePort").0,
                kind: ErrorKind::Duplicate,
                bad_value: Some(np.to_string()),
                message: String::new(),
            });
        }
    }
    let mut port_keys: BTreeSet<(String, i64)> = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = st(port, "protocol");
        let num = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !port_keys.insert((protocol.to_string(), num)) {
            errs.push(duplicate_raw(
                &ports_path.index(i),
                format!(
                    "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{num}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    go_quote(protocol)
                ),
            ));
        }
    }
    let ranges = str_list(spec, "loadBalancerSourceRanges");
    let lb_annotation = "service.beta.kubernetes.io/load-balancer-source-ranges";
    if !ranges.is_empty() {
        let rp = sp.child("LoadBalancerSourceRanges");
        if svc_type != "LoadBalancer" {
            errs.push(forbidden(
                &rp,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            is_valid_cidr(&rp.index(i), r.trim(), errs);
        }
    } else if let Some(val) = opt_str(annotations, lb_annotation) {
        let ap = Path::new("metadata")
            .child("annotations")
            .key(lb_annotation);
        if svc_type != "LoadBalancer" {
            errs.push(forbidden(
                &ap,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for r in val.split(',') {
                is_valid_cidr(&ap, r.trim(), errs);
            }
        }
    }
    if field(spec, "allocateLoadBalancerNodePorts").is_some() && svc_type != "LoadBalancer" {
        errs.push(forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if svc_type == "LoadBalancer" && field(spec, "allocateLoadBalancerNodePorts").is_none() {
        errs.push(required(&Path::new("allocateLoadBalancerNodePorts"), ""));
    }
    let lbc = opt_str(spec, "loadBalancerClass");
    if svc_type == "LoadBalancer" {
        if let Some(c) = lbc {
            qualified_name(c, &sp.child("loadBalancerClass"), errs);
        }
    } else if lbc.is_some() {
        errs.push(forbidden(
            &sp.child("loadBalancerClass"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    // validateServiceExternalTrafficPolicy
    let externally_accessible = svc_type == "LoadBalancer"
        || svc_type == "NodePort"
        || (svc_type == "ClusterIP" && !arr(spec, "externalIPs").is_empty());
    let etp = st(spec, "externalTrafficPolicy");
    if !externally_accessible {
        if !etp.is_empty() {
            errs.push(invalid(
                &sp.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(required(&sp.child("externalTrafficPolicy"), ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(not_supported(
            &sp.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hcnp = spec
        .get("healthCheckNodePort")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let needs_health_check = svc_type == "LoadBalancer" && etp == "Local";
    if !needs_health_check {
        if hcnp != 0 {
            errs.push(invalid_int(
                &sp.child("healthCheckNodePort"),
                hcnp,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hcnp == 0 {
        errs.push(required(&sp.child("healthCheckNodePort"), ""));
    } else {
        for msg in is_valid_port_num(hcnp) {
            errs.push(invalid_int(&sp.child("healthCheckNodePort"), hcnp, msg));
        }
    }
    match opt_str(spec, "internalTrafficPolicy") {
        None => {
            if matches!(svc_type, "NodePort" | "LoadBalancer" | "ClusterIP") {
                errs.push(required(&sp.child("internalTrafficPolicy"), ""));
            }
        }
        Some(itp) if itp != "Cluster" && itp != "Local" => errs.push(not_supported(
            &sp.child("internalTrafficPolicy"),
            itp,
            &["Cluster", "Local"],
        )),
        Some(_) => {}
    }
    if let Some(td) = opt_str(spec, "trafficDistribution")
        && td != "PreferClose"
    {
        errs.push(not_supported(
            &sp.child("trafficDistribution"),
            td,
            &["PreferClose"],
        ));
    }
}

/// `ValidateServiceClusterIPsRelatedFields` on a whole Service, which the Service registry
/// runs before it allocates (`initIPFamilyFields`).
pub fn validate_service_cluster_ips_related(service: &Value) -> Vec<FieldError> {
    let null = Value::Null;
    let spec = service.get("spec").unwrap_or(&null);
    let ips = normalized_cluster_ips(spec, None);
    let headless = ips.len() == 1 && ips.first().is_some_and(|ip| ip == "None");
    let svc_type = spec.get("type").and_then(Value::as_str).unwrap_or("");
    let mut errs = Errs::new();
    cluster_ips_related(spec, svc_type, &ips, headless, &mut errs);
    errs
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ips_related(
    spec: &Value,
    svc_type: &str,
    ips: &[String],
    headless: bool,
    errs: &mut Errs,
) {
    if svc_type == "ExternalName" {
        return;
    }
    let sp = Path::new("spec");
    let cips_path = sp.child("clusterIPs");
    let cluster_ip = st(spec, "clusterIP");
    if !cluster_ip.is_empty() {
        match ips.first() {
            None => errs.push(required(&cips_path, "")),
            Some(first) if first != cluster_ip => errs.push(invalid_raw(
                &cips_path,
                ips_value(ips),
                "first value must match `clusterIP`",
            )),
            Some(_) => {}
        }
    } else if !ips.is_empty() {
        errs.push(invalid_raw(
            &cips_path,
            ips_value(ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let families = str_list(spec, "ipFamilies");
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (i, f) in families.iter().enumerate() {
        let fp = sp.child("ipFamilies").index(i);
        if f != "IPv4" && f != "IPv6" {
            errs.push(not_supported(&fp, f, &["IPv4", "IPv6"]));
        }
        if !seen.insert(f) {
            errs.push(duplicate(&fp, f));
        }
    }
    if let Some(policy) = opt_str(spec, "ipFamilyPolicy") {
        const POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !POLICIES.contains(&policy) {
            errs.push(not_supported(&sp.child("ipFamilyPolicy"), policy, POLICIES));
        }
    }
    let mut has_invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                has_invalid = true;
                errs.push(invalid_raw(
                    &cips_path,
                    ips_value(ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        if !is_valid_ip(&cips_path.index(i), ip, errs) {
            has_invalid = true;
        }
    }
    if ips.len() > 2 {
        errs.push(invalid_raw(
            &cips_path,
            ips_value(ips),
            "may only hold up to 2 values",
        ));
    }
    if has_invalid {
        return;
    }
    if ips.len() > 1 {
        let parsed: Vec<std::net::IpAddr> =
            ips.iter().filter_map(|ip| parse_ip_sloppy(ip)).collect();
        let v6 = parsed.iter().any(ip_is_v6);
        let v4 = parsed.iter().any(|ip| !ip_is_v6(ip));
        if !(v4 && v6) {
            errs.push(invalid_raw(
                &cips_path,
                ips_value(ips),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !headless && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate() {
            let Some(family) = families.get(i) else {
                break;
            };
            let is_v6 = parse_ip_sloppy(ip).is_some_and(|a| ip_is_v6(&a));
            if family == "IPv4" && is_v6 {
                errs.push(invalid(
                    &cips_path.index(i),
                    ip,
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if family == "IPv6" && !is_v6 {
                errs.push(invalid(
                    &cips_path.index(i),
                    ip,
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
}

/// The update-only rules of `ValidateServiceUpdate`.
fn service_update(spec: &Value, old_spec: &Value, ips: &[String], headless: bool, errs: &mut Errs) {
    let sp = Path::new("spec");
    let new_type = st(spec, "type");
    let old_type = st(old_spec, "type");
    let old_ips = normalized_cluster_ips(old_spec, None);
    let old_headless = old_ips.len() == 1 && old_ips.first().is_some_and(|ip| ip == "None");
    let single_stack = opt_str(spec, "ipFamilyPolicy") == Some("SingleStack");
    let policy_value = match opt_str(spec, "ipFamilyPolicy") {
        Some(p) => go_quote(p),
        None => "null".to_string(),
    };
    if new_type != "ExternalName" && old_type != "ExternalName" && !(old_headless && headless) {
        let cp = sp.child("clusterIPs");
        let value = ips_value(ips);
        if old_ips.len() == ips.len() {
            for (i, ip) in old_ips.iter().enumerate() {
                if ips.get(i) != Some(ip) {
                    errs.push(invalid_raw(
                        &cp.index(i),
                        value.clone(),
                        "may not change once set",
                    ));
                }
            }
        } else if old_ips.len() > ips.len() {
            if ips.is_empty() {
                errs.push(invalid_raw(
                    &cp.index(0),
                    value.clone(),
                    "primary clusterIP can not be unset",
                ));
            }
            if !old_ips.is_empty() && !ips.is_empty() && ips.first() != old_ips.first() {
                errs.push(invalid_raw(
                    &cp.index(0),
                    value.clone(),
                    "may not change once set",
                ));
            }
            if ips.len() == 1 && !single_stack {
                errs.push(invalid_raw(
                    &sp.child("ipFamilyPolicy"),
                    policy_value.clone(),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !old_ips.is_empty() && ips.first() != old_ips.first() {
            errs.push(invalid_raw(&cp.index(0), value, "may not change once set"));
        }
    }
    // validateUpgradeDowngradeIPFamilies
    if new_type != "ExternalName"
        && old_type != "ExternalName"
        && old_headless == headless
        && !headless
    {
        let fams = str_list(spec, "ipFamilies");
        let old_fams = str_list(old_spec, "ipFamilies");
        let fp = sp.child("ipFamilies").index(0);
        if old_fams.len() == fams.len() {
            for (i, f) in old_fams.iter().enumerate() {
                if fams.get(i) != Some(f) {
                    errs.push(invalid_raw(
                        &fp,
                        ips_value(&fams),
                        "may not change once set",
                    ));
                }
            }
        } else if old_fams.len() > fams.len() {
            if ips.is_empty() {
                errs.push(invalid_raw(
                    &fp,
                    ips_value(&fams),
                    "primary ipFamily can not be unset",
                ));
            }
            if !fams.is_empty() && fams.first() != old_fams.first() {
                errs.push(invalid_raw(&fp, ips_value(ips), "may not change once set"));
            }
            if fams.len() == 1 && !single_stack {
                errs.push(invalid_raw(
                    &sp.child("ipFamilyPolicy"),
                    policy_value,
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                ));
            }
        } else if !old_fams.is_empty() && !fams.is_empty() && fams.first() != old_fams.first() {
            errs.push(invalid_raw(&fp, ips_value(ips), "may not change once set"));
        }
    }
    if new_type == "LoadBalancer"
        && old_type == "LoadBalancer"
        && opt_str(spec, "loadBalancerClass") != opt_str(old_spec, "loadBalancerClass")
    {
        let value = match opt_str(spec, "loadBalancerClass") {
            Some(c) => go_quote(c),
            None => "null".to_string(),
        };
        errs.push(invalid_raw(
            &sp.child("loadBalancerClass"),
            value,
            "may not change once set",
        ));
    }
    let needs_hc =
        |s: &Value| st(s, "type") == "LoadBalancer" && st(s, "externalTrafficPolicy") == "Local";
    if needs_hc(spec)
        && needs_hc(old_spec)
        && spec.get("healthCheckNodePort").and_then(Value::as_i64)
            != old_spec.get("healthCheckNodePort").and_then(Value::as_i64)
    {
        errs.push(forbidden(
            &sp.child("healthCheckNodePort"),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// ConfigMap, Secret, Namespace, Node
// ---------------------------------------------------------------------------------------------

/// `ValidateConfigMap`.
fn config_map(obj: &Value, errs: &mut Errs) {
    let mut total = 0usize;
    let data = map(obj, "data");
    let binary = map(obj, "binaryData");
    if let Some(data) = data {
        for (k, v) in data {
            let kp = Path::new("data").key(k);
            for msg in is_config_map_key(k) {
                errs.push(invalid(&kp, k, msg));
            }
            if binary.is_some_and(|b| b.contains_key(k)) {
                errs.push(invalid(&kp, k, "duplicate of key present in binaryData"));
            }
            match v {
                Value::String(s) => total = total.saturating_add(s.len()),
                other => errs.push(invalid_json(&kp, other, "must be a string")),
            }
        }
    }
    if let Some(binary) = binary {
        for (k, v) in binary {
            let kp = Path::new("binaryData").key(k);
            for msg in is_config_map_key(k) {
                errs.push(invalid(&kp, k, msg));
            }
            match v {
                Value::String(s) => total = total.saturating_add(base64_decoded_len(s)),
                other => errs.push(invalid_json(&kp, other, "must be a string")),
            }
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("", Some(MAX_SECRET_SIZE)));
    }
}

/// The decoded length of standard base64 text.
fn base64_decoded_len(s: &str) -> usize {
    let s = s.trim_end();
    let pad = s.bytes().rev().take_while(|c| *c == b'=').count();
    let chars = s.len() - pad;
    chars * 3 / 4
}

/// Decodes standard base64 (for the few Secret types whose content kube parses).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn immutable_data(obj: &Value, old: &Value, keys: &[&str], errs: &mut Errs) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    let msg = "field is immutable when `immutable` is set";
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(forbidden(&Path::new("immutable"), msg));
    }
    for k in keys {
        if !sem_eq(obj.get(*k), old.get(*k)) {
            errs.push(forbidden(&Path::new(k), msg));
        }
    }
}

fn config_map_update(obj: &Value, old: &Value, errs: &mut Errs) {
    immutable_data(obj, old, &["data", "binaryData"], errs);
}

/// A Secret's data after conversion: `stringData` merged into `data` (decoded lengths).
fn secret_data(obj: &Value) -> BTreeMap<String, Result<Vec<u8>, usize>> {
    let mut out = BTreeMap::new();
    if let Some(data) = map(obj, "data") {
        for (k, v) in data {
            let s = v.as_str().unwrap_or("");
            let decoded = base64_decode(s).ok_or_else(|| base64_decoded_len(s));
            out.insert(k.clone(), decoded);
        }
    }
    if let Some(data) = map(obj, "stringData") {
        for (k, v) in data {
            out.insert(k.clone(), Ok(v.as_str().unwrap_or("").as_bytes().to_vec()));
        }
    }
    out
}

/// Go's `json.Unmarshal` into `map[string]interface{}`: the error text when it fails.
fn json_object_error(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Some("unexpected end of JSON input".to_string());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_)) | Ok(Value::Null) => None,
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            Some(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(e) if e.is_eof() => Some("unexpected end of JSON input".to_string()),
        Err(_) => {
            let c = bytes
                .iter()
                .find(|c| !c.is_ascii_whitespace())
                .map(|c| char::from(*c))
                .unwrap_or(' ');
            Some(format!(
                "invalid character '{c}' looking for beginning of value"
            ))
        }
    }
}

/// `ValidateSecret`.
fn secret(obj: &Value, errs: &mut Errs) {
    let data = secret_data(obj);
    let dp = Path::new("data");
    let mut total = 0usize;
    for (k, v) in &data {
        for msg in is_config_map_key(k) {
            errs.push(invalid(&dp.key(k), k, msg));
        }
        total = total.saturating_add(match v {
            Ok(b) => b.len(),
            Err(n) => *n,
        });
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&dp, Some(MAX_SECRET_SIZE)));
    }
    let null = Value::Null;
    let annotations = obj
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .unwrap_or(&null);
    let get = |k: &str| data.get(k).and_then(|v| v.as_ref().ok());
    match st(obj, "type") {
        "kubernetes.io/service-account-token"
            if st(annotations, "kubernetes.io/service-account.name").is_empty() =>
        {
            errs.push(required(
                &Path::new("metadata")
                    .child("annotations")
                    .key("kubernetes.io/service-account.name"),
                "",
            ));
        }
        "kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson" => {
            let key = if st(obj, "type") == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data.get(key) {
                None => errs.push(required(&dp.key(key), "")),
                Some(v) => {
                    let bytes = v.as_ref().map(Vec::as_slice).unwrap_or(&[]);
                    if let Some(e) = json_object_error(bytes) {
                        errs.push(invalid(&dp.key(key), "<secret contents redacted>", e));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.push(required(&dp.key("username"), ""));
            errs.push(required(&dp.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if get("ssh-privatekey").is_none_or(Vec::is_empty) => {
            errs.push(required(&dp.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !data.contains_key(k) {
                    errs.push(required(&dp.key(k), ""));
                }
            }
        }
        _ => {}
    }
}

/// The update-only rules of `ValidateSecretUpdate`.
fn secret_update(obj: &Value, old: &Value, errs: &mut Errs) {
    let new_type = st(obj, "type");
    if new_type != st(old, "type") {
        errs.push(invalid(
            &Path::new("type"),
            new_type,
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    if old.get("immutable").and_then(Value::as_bool) == Some(true) {
        let msg = "field is immutable when `immutable` is set";
        if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
            errs.push(forbidden(&Path::new("immutable"), msg));
        }
        if secret_data(obj) != secret_data(old) {
            errs.push(forbidden(&Path::new("data"), msg));
        }
    }
}

/// `ValidateNamespace`: spec finalizers are qualified or standard names.
fn namespace(obj: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let fp = Path::new("spec").child("finalizers");
    for f in str_list(spec, "finalizers") {
        qualified_name(&f, &fp, errs);
        if !f.contains('/') && !matches!(f.as_str(), "kubernetes" | "orphan" | "foregroundDeletion")
        {
            errs.push(invalid(
                &fp,
                &f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// `validateNodeTaints`.
fn node_taints(taints: &[Value], p: &Path, errs: &mut Errs) {
    let mut unique: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, t) in taints.iter().enumerate() {
        let ip = p.index(i);
        let key = st(t, "key");
        let value = st(t, "value");
        let effect = st(t, "effect");
        label_name(key, &ip.child("key"), errs);
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(invalid(&ip.child("value"), value, msgs.join(";")));
        }
        taint_effect(effect, false, &ip.child("effect"), errs);
        if !unique.insert((effect.to_string(), key.to_string())) {
            let time = if field(t, "timeAdded").is_some() {
                "(*v1.Time)(0xc000000000)"
            } else {
                "(*v1.Time)(nil)"
            };
            let mut e = duplicate_raw(
                &ip,
                format!(
                    "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:{time}}}",
                    go_quote(key),
                    go_quote(value),
                    go_quote(effect)
                ),
            );
            e.message = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
}

/// A node's `podCIDRs` (internal form: `podCIDR` when `podCIDRs` is empty).
fn node_pod_cidrs(spec: &Value) -> Vec<String> {
    let cidrs = str_list(spec, "podCIDRs");
    if cidrs.is_empty() {
        let single = st(spec, "podCIDR");
        if !single.is_empty() {
            return vec![single.to_string()];
        }
    }
    cidrs
}

/// `ValidateNode` (metadata excepted).
fn node(obj: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let taints = arr(spec, "taints");
    if !taints.is_empty() {
        // kube reports spec taints under "metadata.taints".
        node_taints(taints, &Path::new("metadata").child("taints"), errs);
    }
    let status = obj.get("status").unwrap_or(&null);
    for k in ["capacity", "allocatable"] {
        let base = Path::new("status").child(k);
        let list = quantities(status.get(k), &base, errs);
        for (name, q) in &list {
            resource_quantity_value(name, q, &base.child(name), errs);
        }
    }
    let cidrs = node_pod_cidrs(spec);
    let cp = Path::new("spec").child("podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        is_valid_cidr(&cp.index(i), c, errs);
    }
    if cidrs.len() > 1 {
        let parsed: Vec<std::net::IpAddr> = cidrs
            .iter()
            .filter_map(|c| parse_cidr_sloppy(c).map(|(ip, _)| ip))
            .collect();
        let v6 = parsed.iter().any(ip_is_v6);
        let v4 = parsed.iter().any(|ip| !ip_is_v6(ip));
        if !(v4 && v6) || cidrs.len() > 2 {
            errs.push(invalid_raw(
                &cp,
                go_string_slice(Some(&cidrs)),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c) {
                errs.push(duplicate(&cp.index(i), c));
            }
        }
    }
}

/// The update-only rules of `ValidateNodeUpdate`.
fn node_update(obj: &Value, old: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let old_spec = old.get("spec").unwrap_or(&null);
    let old_cidrs = node_pod_cidrs(old_spec);
    let cidrs = node_pod_cidrs(spec);
    let msg = "node updates may not change podCIDR except from \"\" to valid";
    if !old_cidrs.is_empty() {
        if old_cidrs.len() != cidrs.len() {
            errs.push(forbidden(&Path::new("spec").child("podCIDRs"), msg));
        } else {
            for (a, b) in old_cidrs.iter().zip(&cidrs) {
                if a != b {
                    errs.push(forbidden(&Path::new("spec").child("podCIDRs"), msg));
                }
            }
        }
    }
    let old_provider = st(old_spec, "providerID");
    if !old_provider.is_empty() && old_provider != st(spec, "providerID") {
        errs.push(forbidden(
            &Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    let taints = arr(spec, "taints");
    if !taints.is_empty() {
        node_taints(taints, &Path::new("metadata").child("taints"), errs);
    }
    if st(spec, "externalID") != st(old_spec, "externalID") {
        errs.push(forbidden(
            &Path::new("spec").child("externalID"),
            "may not be updated",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// PersistentVolume and PersistentVolumeClaim
// ---------------------------------------------------------------------------------------------

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn access_modes(spec: &Value, detail: &str, p: &Path, errs: &mut Errs) {
    let modes = str_list(spec, "accessModes");
    let ap = p.child("accessModes");
    if modes.is_empty() {
        errs.push(required(&ap, detail));
    }
    let (mut rwop, mut other) = (false, false);
    for m in &modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(not_supported(&ap, m, ACCESS_MODES));
        }
        if m == "ReadWriteOncePod" {
            rwop = true;
        } else if ACCESS_MODES.contains(&m.as_str()) {
            other = true;
        }
    }
    if rwop && other {
        errs.push(forbidden(
            &ap,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

/// `ValidatePersistentVolumeClaimSpec`.
fn pvc_spec(spec: &Value, p: &Path, errs: &mut Errs) {
    access_modes(spec, "at least 1 access mode is required", p, errs);
    if let Some(sel) = field(spec, "selector") {
        validate_label_selector(sel, false, &p.child("selector"), errs);
    }
    let storage_path = p.child("resources").key("storage");
    let storage = spec
        .get("resources")
        .and_then(|r| r.get("requests"))
        .and_then(|r| field(r, "storage"));
    match storage.map(parse_quantity_json) {
        None => errs.push(required(&storage_path, "")),
        Some(Err(msg)) => errs.push(invalid_json(
            &storage_path,
            storage.unwrap_or(&Value::Null),
            msg,
        )),
        Some(Ok(q)) => {
            if q.cmp(&Quantity::zero()) != Ordering::Greater {
                errs.push(invalid(
                    &storage_path,
                    &q.to_go_string(),
                    IS_NOT_POSITIVE_ERROR_MSG,
                ));
            }
        }
    }
    if let Some(sc) = opt_str(spec, "storageClassName").filter(|s| !s.is_empty()) {
        dns1123_subdomain(sc, &p.child("storageClassName"), errs);
    }
    if let Some(vm) = opt_str(spec, "volumeMode")
        && vm != "Block"
        && vm != "Filesystem"
    {
        errs.push(not_supported(
            &p.child("volumeMode"),
            vm,
            &["Block", "Filesystem"],
        ));
    }
    for k in ["dataSource", "dataSourceRef"] {
        let Some(ds) = field(spec, k) else {
            continue;
        };
        let dp = p.child(k);
        required_str(ds, "name", &dp, errs);
        required_str(ds, "kind", &dp, errs);
        let group = st(ds, "apiGroup");
        if group.is_empty() && st(ds, "kind") != "PersistentVolumeClaim" {
            errs.push(invalid(
                &dp,
                st(ds, "kind"),
                "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            ));
        }
        if !group.is_empty() {
            dns1123_subdomain(group, &dp.child("apiGroup"), errs);
        }
        if k == "dataSourceRef"
            && let Some(ns) = opt_str(ds, "namespace").filter(|n| !n.is_empty())
        {
            dns1123_label(ns, &dp.child("namespace"), errs);
        }
    }
    let ds = field(spec, "dataSource");
    let dsr = field(spec, "dataSourceRef");
    if let Some(dsr) = dsr.filter(|r| !st(r, "namespace").is_empty()) {
        let _ = dsr;
        if ds.is_some() {
            errs.push(invalid(
                p,
                &p.child("dataSource").0,
                "may not be specified when dataSourceRef.namespace is specified",
            ));
        }
    } else if let (Some(a), Some(b)) = (ds, dsr) {
        let same = opt_str(a, "apiGroup") == opt_str(b, "apiGroup")
            && st(a, "kind") == st(b, "kind")
            && st(a, "name") == st(b, "name");
        if !same {
            errs.push(invalid(
                p,
                &p.child("dataSource").0,
                "must match dataSourceRef",
            ));
        }
    }
    if let Some(vac) = opt_str(spec, "volumeAttributesClassName").filter(|s| !s.is_empty()) {
        dns1123_subdomain(vac, &p.child("volumeAttributesClassName"), errs);
    }
}

/// `ValidatePersistentVolumeClaimTemplate` (ephemeral volumes).
fn pvc_template(template: &Value, p: &Path, errs: &mut Errs) {
    let mp = p.child("metadata");
    if let Some(meta) = field(template, "metadata") {
        annotation_map(meta.get("annotations"), &mp.child("annotations"), errs);
        label_map(meta.get("labels"), &mp.child("labels"), errs);
        if let Some(m) = meta.as_object() {
            for (k, v) in m {
                if k != "labels" && k != "annotations" && !v.is_null() {
                    errs.push(forbidden(&mp.child(k), "cannot be set"));
                }
            }
        }
    }
    pvc_spec(
        template.get("spec").unwrap_or(&Value::Null),
        &p.child("spec"),
        errs,
    );
}

fn persistent_volume_claim(obj: &Value, errs: &mut Errs) {
    pvc_spec(
        obj.get("spec").unwrap_or(&Value::Null),
        &Path::new("spec"),
        errs,
    );
}

/// The update-only rules of `ValidatePersistentVolumeClaimUpdate`.
fn persistent_volume_claim_update(obj: &Value, old: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let old_spec = old.get("spec").unwrap_or(&null);
    let mut new_clone = normalize(spec);
    let mut old_clone = normalize(old_spec);
    let bound = obj.get("status").map(|s| st(s, "phase")) == Some("Bound");
    if st(old_spec, "volumeName").is_empty()
        && let (Some(o), Some(n)) = (old_clone.as_object_mut(), spec.get("volumeName"))
    {
        o.insert("volumeName".into(), n.clone());
    }
    if field(old_spec, "storageClassName").is_none()
        && let (Some(n), Some(o)) = (new_clone.as_object_mut(), old_clone.as_object())
    {
        match o.get("storageClassName") {
            Some(v) => n.insert("storageClassName".into(), v.clone()),
            None => n.remove("storageClassName"),
        };
    }
    if bound {
        let old_storage = old_spec
            .get("resources")
            .and_then(|r| r.get("requests"))
            .and_then(|r| r.get("storage"))
            .cloned();
        if let Some(reqs) = new_clone
            .get_mut("resources")
            .and_then(|r| r.get_mut("requests"))
            .and_then(Value::as_object_mut)
        {
            match old_storage {
                Some(v) => reqs.insert("storage".into(), v),
                None => reqs.remove("storage"),
            };
        }
        if let (Some(n), Some(o)) = (new_clone.as_object_mut(), old_clone.as_object())
            && n.contains_key("volumeAttributesClassName")
        {
            match o.get("volumeAttributesClassName") {
                Some(v) => n.insert("volumeAttributesClassName".into(), v.clone()),
                None => n.remove("volumeAttributesClassName"),
            };
        }
    }
    if normalize(&new_clone) != normalize(&old_clone) {
        errs.push(forbidden(
            &Path::new("spec"),
            format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                json_diff("core.PersistentVolumeClaimSpec", &old_clone, &new_clone)
            ),
        ));
    }
    let size = |s: &Value| {
        s.get("resources")
            .and_then(|r| r.get("requests"))
            .and_then(|r| r.get("storage"))
            .and_then(|q| parse_quantity_json(q).ok())
            .unwrap_or_else(Quantity::zero)
    };
    let (new_size, old_size) = (size(spec), size(old_spec));
    if new_size.cmp(&old_size) == Ordering::Less {
        let status_size = old
            .get("status")
            .and_then(|s| s.get("capacity"))
            .and_then(|c| c.get("storage"))
            .and_then(|q| parse_quantity_json(q).ok())
            .unwrap_or_else(Quantity::zero);
        if new_size.cmp(&status_size) != Ordering::Greater {
            errs.push(forbidden(
                &Path::new("spec")
                    .child("resources")
                    .child("requests")
                    .child("storage"),
                "field can not be less than status.capacity",
            ));
        }
    }
    volume_mode_immutable(spec, old_spec, errs);
    let vac = opt_str(spec, "volumeAttributesClassName");
    if opt_str(old_spec, "volumeAttributesClassName").is_some() {
        let vp = Path::new("spec").child("volumeAttributesClassName");
        match vac {
            None => errs.push(forbidden(
                &vp,
                "update from non-nil value to nil is forbidden",
            )),
            Some("") => errs.push(forbidden(
                &vp,
                "update from non-nil value to an empty string is forbidden",
            )),
            Some(_) => {}
        }
    }
}

fn volume_mode_immutable(spec: &Value, old_spec: &Value, errs: &mut Errs) {
    let new = opt_str(spec, "volumeMode");
    if new != opt_str(old_spec, "volumeMode") {
        let value = new.map_or_else(|| "null".to_string(), go_quote);
        errs.push(invalid_raw(
            &Path::new("volumeMode"),
            value,
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
}

/// The PersistentVolume sources in kube's order (JSON key, validation path name).
const PV_SOURCES: &[(&str, &str)] = &[
    ("hostPath", "hostPath"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("nfs", "nfs"),
    ("rbd", "rbd"),
    ("quobyte", "quobyte"),
    ("cephfs", "cephFS"),
    ("iscsi", "iscsi"),
    ("cinder", "cinder"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("scaleIO", "scaleIO"),
    ("local", "local"),
    ("storageos", "storageos"),
    ("csi", "csi"),
];

/// `ValidatePersistentVolumeSpec` (not inline).
fn persistent_volume(obj: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    access_modes(spec, "", &sp, errs);
    let cp = sp.child("capacity");
    let capacity = map(spec, "capacity");
    if capacity.is_none_or(Map::is_empty) {
        errs.push(required(&cp, ""));
    }
    let cap_len = capacity.map_or(0, Map::len);
    if !capacity.is_some_and(|c| c.contains_key("storage")) || cap_len > 1 {
        let rendered = match capacity {
            None => "core.ResourceList(nil)".to_string(),
            Some(c) => {
                let parts: Vec<String> = c
                    .iter()
                    .map(|(k, v)| format!("{}:{}", go_quote(k), go_value_str(v)))
                    .collect();
                format!("core.ResourceList{{{}}}", parts.join(", "))
            }
        };
        errs.push(not_supported_raw(&cp, rendered, &["storage"]));
    }
    for (name, q) in &quantities(spec.get("capacity"), &cp, errs) {
        let qp = cp.key(name);
        if q.value() < 0 {
            errs.push(invalid_raw(
                &qp,
                q.value().to_string(),
                "must be a valid resource quantity",
            ));
        }
        if q.cmp(&Quantity::zero()) != Ordering::Greater {
            errs.push(invalid(&qp, &q.to_go_string(), IS_NOT_POSITIVE_ERROR_MSG));
        }
    }
    let reclaim = st(spec, "persistentVolumeReclaimPolicy");
    if !reclaim.is_empty() && !matches!(reclaim, "Delete" | "Recycle" | "Retain") {
        errs.push(not_supported(
            &sp.child("persistentVolumeReclaimPolicy"),
            reclaim,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let mut node_affinity = false;
    if let Some(na) = field(spec, "nodeAffinity") {
        node_affinity = true;
        let np = sp.child("nodeAffinity");
        match field(na, "required") {
            Some(req) => node_selector(req, false, &np.child("required"), errs),
            None => errs.push(required(
                &np.child("required"),
                "must specify required node constraints",
            )),
        }
    }
    let mut num = 0;
    for (key, name) in PV_SOURCES {
        let Some(src) = field(spec, key) else {
            continue;
        };
        if num > 0 && *key != "flexVolume" {
            errs.push(forbidden(
                &sp.child(name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        num += 1;
        let vp = sp.child(key);
        match *key {
            "hostPath" => host_path_source(src, &vp, errs),
            "local" => {
                let path = st(src, "path");
                if path.is_empty() {
                    errs.push(required(&vp.child("path"), ""));
                } else {
                    path_no_backsteps(path, &vp.child("path"), errs);
                }
                if !node_affinity {
                    errs.push(required(
                        &sp.child("nodeAffinity"),
                        "Local volume requires node affinity",
                    ));
                }
            }
            "nfs" => {
                required_str(src, "server", &vp, errs);
                required_str(src, "path", &vp, errs);
                let path = st(src, "path");
                if !path.starts_with('/') {
                    errs.push(invalid(&vp.child("path"), path, "must be an absolute path"));
                }
            }
            "csi" => {
                csi_driver_name(st(src, "driver"), &vp.child("driver"), errs);
                required_str(src, "volumeHandle", &vp, errs);
            }
            "gcePersistentDisk" => required_str(src, "pdName", &sp.child("persistentDisk"), errs),
            "awsElasticBlockStore" | "cinder" | "portworxVolume" => {
                required_str(src, "volumeID", &vp, errs)
            }
            "glusterfs" => {
                required_str(src, "endpoints", &vp, errs);
                required_str(src, "path", &vp, errs);
            }
            "iscsi" => {
                required_str(src, "targetPortal", &vp, errs);
                required_str(src, "iqn", &vp, errs);
            }
            "rbd" | "cephfs" if arr(src, "monitors").is_empty() => {
                let base = if *key == "cephfs" {
                    sp.child("cephfs")
                } else {
                    vp.clone()
                };
                errs.push(required(&base.child("monitors"), ""));
            }
            "flexVolume" => required_str(src, "driver", &vp, errs),
            "azureFile" => {
                required_str(src, "secretName", &vp, errs);
                required_str(src, "shareName", &vp, errs);
            }
            "azureDisk" => {
                required_str(src, "diskName", &vp, errs);
                required_str(src, "diskURI", &vp, errs);
            }
            "vsphereVolume" => required_str(src, "volumePath", &vp, errs),
            "photonPersistentDisk" => required_str(src, "pdID", &vp, errs),
            _ => {}
        }
    }
    if num == 0 {
        errs.push(required(&sp, "must specify a volume type"));
    }
    if let Some(hp) = field(spec, "hostPath") {
        let path = st(hp, "path");
        if !path.is_empty() && path.trim_end_matches('/').is_empty() && reclaim == "Recycle" {
            errs.push(forbidden(
                &sp.child("persistentVolumeReclaimPolicy"),
                "may not be 'recycle' for a hostPath mount of '/'",
            ));
        }
    }
    if let Some(sc) = opt_str(spec, "storageClassName").filter(|s| !s.is_empty()) {
        dns1123_subdomain(sc, &sp.child("storageClassName"), errs);
    }
    if let Some(vm) = opt_str(spec, "volumeMode")
        && vm != "Block"
        && vm != "Filesystem"
    {
        errs.push(not_supported(
            &sp.child("volumeMode"),
            vm,
            &["Block", "Filesystem"],
        ));
    }
    if let Some(vac) = opt_str(spec, "volumeAttributesClassName") {
        if vac.is_empty() {
            errs.push(required(
                &sp.child("volumeAttributesClassName"),
                "an empty string is disallowed",
            ));
        } else {
            dns1123_subdomain(vac, &sp.child("volumeAttributesClassName"), errs);
        }
        if field(spec, "csi").is_none() {
            errs.push(required(
                &sp.child("csi"),
                "has to be specified when using volumeAttributesClassName",
            ));
        }
    }
}

/// The update-only rules of `ValidatePersistentVolumeUpdate`.
fn persistent_volume_update(obj: &Value, old: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let old_spec = old.get("spec").unwrap_or(&null);
    let source = |s: &Value, allow_expand_secret: bool| {
        let mut m = Map::new();
        for (k, _) in PV_SOURCES {
            if let Some(v) = field(s, k) {
                m.insert((*k).to_string(), v.clone());
            }
        }
        if allow_expand_secret && let Some(csi) = m.get_mut("csi").and_then(Value::as_object_mut) {
            csi.remove("controllerExpandSecretRef");
        }
        Value::Object(m)
    };
    let old_csi_lacks_secret =
        field(old_spec, "csi").is_some_and(|c| field(c, "controllerExpandSecretRef").is_none());
    let new_source = source(spec, old_csi_lacks_secret);
    let old_source = source(old_spec, false);
    if !sem_eq(Some(&new_source), Some(&old_source)) {
        errs.push(forbidden(
            &Path::new("spec").child("persistentvolumesource"),
            format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                json_diff("core.PersistentVolumeSource", &old_source, &new_source)
            ),
        ));
    }
    volume_mode_immutable(spec, old_spec, errs);
    if let Some(old_na) = field(old_spec, "nodeAffinity")
        && !sem_eq(spec.get("nodeAffinity"), Some(old_na))
    {
        errs.push(invalid_json(
            &Path::new("nodeAffinity"),
            spec.get("nodeAffinity").unwrap_or(&null),
            "field is immutable, except for updating from beta label to GA",
        ));
    }
    if opt_str(old_spec, "volumeAttributesClassName").is_some()
        && opt_str(spec, "volumeAttributesClassName").is_none()
    {
        errs.push(forbidden(
            &Path::new("spec").child("volumeAttributesClassName"),
            "update from non-nil value to nil is forbidden",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// networking: Ingress
// ---------------------------------------------------------------------------------------------

const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];

/// `validateIngressBackend`.
fn ingress_backend(backend: &Value, p: &Path, errs: &mut Errs) {
    let resource = field(backend, "resource");
    let service = field(backend, "service");
    match (resource, service) {
        (Some(_), Some(_)) => errs.push(invalid(
            p,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            let rp = p.child("resource");
            if let Some(g) = opt_str(r, "apiGroup") {
                dns1123_subdomain(g, &rp.child("apiGroup"), errs);
            }
            for k in ["kind", "name"] {
                let v = st(r, k);
                if v.is_empty() {
                    errs.push(required(&rp.child(k), &format!("{k} is required")));
                } else {
                    for msg in is_valid_path_segment_name(v) {
                        errs.push(invalid(&rp.child(k), v, msg));
                    }
                }
            }
        }
        (None, Some(s)) => {
            let sp = p.child("service");
            let name = st(s, "name");
            if name.is_empty() {
                errs.push(required(&sp.child("name"), ""));
            } else {
                for msg in is_dns1035_label(name) {
                    errs.push(invalid(&sp.child("name"), name, msg));
                }
            }
            let null = Value::Null;
            let port = s.get("port").unwrap_or(&null);
            let port_name = st(port, "name");
            let number = port.get("number").and_then(Value::as_i64).unwrap_or(0);
            if !port_name.is_empty() && number != 0 {
                errs.push(invalid(p, "", "cannot set both port name & port number"));
            } else if !port_name.is_empty() {
                for msg in is_valid_port_name(port_name) {
                    errs.push(invalid(&sp.child("port").child("name"), port_name, msg));
                }
            } else if number != 0 {
                for msg in is_valid_port_num(number) {
                    errs.push(invalid_int(&sp.child("port").child("number"), number, msg));
                }
            } else {
                errs.push(required(p, "port name or number is required"));
            }
        }
        (None, None) => errs.push(invalid(p, "", "resource or service backend is required")),
    }
}

fn is_invalid_tls_secret_name(name: &str) -> bool {
    !name.is_empty() && !is_dns1123_subdomain(name).is_empty()
}

/// `ValidateIngressCreate` / `ValidateIngressUpdate`.
fn ingress(obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    let old_spec = old.and_then(|o| o.get("spec"));
    let allow_invalid_secret = old_spec.is_some_and(|s| {
        arr(s, "tls")
            .iter()
            .any(|t| is_invalid_tls_secret_name(st(t, "secretName")))
    });
    let allow_invalid_wildcard = old_spec.is_some_and(|s| {
        arr(s, "rules").iter().any(|r| {
            if !st(r, "host").contains('*') {
                return false;
            }
            let mut e = Vec::new();
            if let Some(http) = field(r, "http") {
                http_rule(http, &Path::new(""), &mut e);
            }
            !e.is_empty()
        })
    });
    let rules = arr_field(spec, "rules", &sp, errs);
    let default_backend = field(spec, "defaultBackend");
    if rules.is_empty() && default_backend.is_none() {
        let rendered = if spec.get("rules").is_some_and(Value::is_array) {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        errs.push(invalid_raw(
            &sp,
            rendered.to_string(),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        ingress_backend(b, &sp.child("defaultBackend"), errs);
    }
    let rp = sp.child("rules");
    for (i, rule) in rules.iter().enumerate() {
        let ip = rp.index(i);
        let host = st(rule, "host");
        let mut wildcard = false;
        if !host.is_empty() {
            if parse_ip_sloppy(host).is_some() {
                errs.push(invalid(
                    &ip.child("host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            if host.contains('*') {
                for msg in is_wildcard_dns1123_subdomain(host) {
                    errs.push(invalid(&ip.child("host"), host, msg));
                }
                wildcard = true;
            } else {
                dns1123_subdomain(host, &ip.child("host"), errs);
            }
        }
        if (!wildcard || !allow_invalid_wildcard)
            && let Some(http) = field(rule, "http")
        {
            http_rule(http, &ip.child("http"), errs);
        }
    }
    let tp = sp.child("tls");
    for (ti, tls) in arr(spec, "tls").iter().enumerate() {
        for (i, host) in str_list(tls, "hosts").iter().enumerate() {
            let hp = tp.index(ti).child("hosts").index(i);
            if host.contains('*') {
                for msg in is_wildcard_dns1123_subdomain(host) {
                    errs.push(invalid(&hp, host, msg));
                }
            } else {
                dns1123_subdomain(host, &hp, errs);
            }
        }
        if !allow_invalid_secret {
            let name = st(tls, "secretName");
            if !name.is_empty() {
                dns1123_subdomain(name, &tp.index(ti).child("secretName"), errs);
            }
        }
    }
    if let Some(class) = opt_str(spec, "ingressClassName") {
        dns1123_subdomain(class, &sp.child("ingressClassName"), errs);
    }
    if old.is_none() {
        let annotation = obj
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| opt_str(a, "kubernetes.io/ingress.class"));
        if let (Some(a), Some(c)) = (annotation, opt_str(spec, "ingressClassName"))
            && a != c
        {
            errs.push(invalid(
                &Path::new("annotations").child("kubernetes.io/ingress.class"),
                a,
                "must match `ingressClassName` when both are specified",
            ));
        }
    }
}

/// `validateHTTPIngressRuleValue`.
fn http_rule(http: &Value, p: &Path, errs: &mut Errs) {
    let paths = arr(http, "paths");
    if paths.is_empty() {
        errs.push(required(&p.child("paths"), ""));
    }
    for (i, path) in paths.iter().enumerate() {
        let pp = p.child("paths").index(i);
        let Some(path_type) = opt_str(path, "pathType") else {
            errs.push(required(
                &pp.child("pathType"),
                "pathType must be specified",
            ));
            continue;
        };
        let value = st(path, "path");
        match path_type {
            "Exact" | "Prefix" => {
                if !value.starts_with('/') {
                    errs.push(invalid(
                        &pp.child("path"),
                        value,
                        "must be an absolute path",
                    ));
                }
                if !value.is_empty() {
                    for seq in INVALID_PATH_SEQUENCES {
                        if value.contains(seq) {
                            errs.push(invalid(
                                &pp.child("path"),
                                value,
                                format!("must not contain '{seq}'"),
                            ));
                        }
                    }
                    for suffix in INVALID_PATH_SUFFIXES {
                        if value.ends_with(suffix) {
                            errs.push(invalid(
                                &pp.child("path"),
                                value,
                                format!("cannot end with '{suffix}'"),
                            ));
                        }
                    }
                }
            }
            "ImplementationSpecific" => {
                if !value.is_empty() && !value.starts_with('/') {
                    errs.push(invalid(
                        &pp.child("path"),
                        value,
                        "must be an absolute path",
                    ));
                }
            }
            other => errs.push(not_supported(
                &pp.child("pathType"),
                other,
                &["Exact", "ImplementationSpecific", "Prefix"],
            )),
        }
        ingress_backend(
            path.get("backend").unwrap_or(&Value::Null),
            &pp.child("backend"),
            errs,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RBAC
// ---------------------------------------------------------------------------------------------

/// `ValidatePolicyRule` for each rule.
fn role_rules(obj: &Value, namespaced: bool, errs: &mut Errs) {
    let rp = Path::new("rules");
    for (i, rule) in arr_field(obj, "rules", &Path::new(""), errs)
        .iter()
        .enumerate()
    {
        let ip = rp.index(i);
        if arr(rule, "verbs").is_empty() {
            errs.push(required(
                &ip.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        if !arr(rule, "nonResourceURLs").is_empty() {
            let urls = go_strings(rule.get("nonResourceURLs"));
            if namespaced {
                errs.push(invalid_raw(
                    &ip.child("nonResourceURLs"),
                    urls.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !arr(rule, "apiGroups").is_empty()
                || !arr(rule, "resources").is_empty()
                || !arr(rule, "resourceNames").is_empty()
            {
                errs.push(invalid_raw(
                    &ip.child("nonResourceURLs"),
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(rule, "apiGroups").is_empty() {
            errs.push(required(
                &ip.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr(rule, "resources").is_empty() {
            errs.push(required(
                &ip.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

/// `ValidateClusterRole`.
fn cluster_role(obj: &Value, errs: &mut Errs) {
    role_rules(obj, false, errs);
    if let Some(agg) = field(obj, "aggregationRule") {
        let ap = Path::new("aggregationRule").child("clusterRoleSelectors");
        let selectors = arr(agg, "clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(required(
                &ap,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            validate_label_selector(sel, false, &ap.index(i), errs);
        }
    }
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding` (metadata excepted).
fn role_binding(obj: &Value, namespaced: bool, errs: &mut Errs) {
    let null = Value::Null;
    let role_ref = obj.get("roleRef").unwrap_or(&null);
    let rp = Path::new("roleRef");
    let group = st(role_ref, "apiGroup");
    if group != RBAC_GROUP {
        errs.push(not_supported(&rp.child("apiGroup"), group, &[RBAC_GROUP]));
    }
    let kind = st(role_ref, "kind");
    if namespaced {
        if kind != "Role" && kind != "ClusterRole" {
            errs.push(not_supported(
                &rp.child("kind"),
                kind,
                &["Role", "ClusterRole"],
            ));
        }
    } else if kind != "ClusterRole" {
        errs.push(not_supported(&rp.child("kind"), kind, &["ClusterRole"]));
    }
    let name = st(role_ref, "name");
    if name.is_empty() {
        errs.push(required(&rp.child("name"), ""));
    } else {
        for msg in is_valid_path_segment_name(name) {
            errs.push(invalid(&rp.child("name"), name, msg));
        }
    }
    let subjects_path = Path::new("subjects");
    for (i, subject) in arr(obj, "subjects").iter().enumerate() {
        let sp = subjects_path.index(i);
        let name = st(subject, "name");
        if name.is_empty() {
            errs.push(required(&sp.child("name"), ""));
        }
        let group = st(subject, "apiGroup");
        match st(subject, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    dns1123_subdomain(name, &sp.child("name"), errs);
                }
                if !group.is_empty() {
                    errs.push(not_supported(&sp.child("apiGroup"), group, &[""]));
                }
                if !namespaced && st(subject, "namespace").is_empty() {
                    errs.push(required(&sp.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    errs.push(not_supported(&sp.child("apiGroup"), group, &[RBAC_GROUP]));
                }
            }
            other => errs.push(not_supported(
                &sp.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

fn role_ref_immutable(obj: &Value, old: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let new = obj.get("roleRef").unwrap_or(&null);
    let prev = old.get("roleRef").unwrap_or(&null);
    let changed = ["apiGroup", "kind", "name"]
        .iter()
        .any(|k| st(new, k) != st(prev, k));
    if changed {
        errs.push(invalid_raw(
            &Path::new("roleRef"),
            format!(
                "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                go_quote(st(new, "apiGroup")),
                go_quote(st(new, "kind")),
                go_quote(st(new, "name"))
            ),
            "cannot change roleRef",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// scheduling, autoscaling, coordination
// ---------------------------------------------------------------------------------------------

const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;

/// `ValidatePriorityClass`.
fn priority_class(obj: &Value, errs: &mut Errs) {
    let name = obj.get("metadata").map(|m| st(m, "name")).unwrap_or("");
    let value = int_field(obj, "value", &Path::new(""), errs).unwrap_or(0);
    let global_default = boolean(obj, "globalDefault");
    if name.starts_with("system-") {
        let known = match name {
            "system-node-critical" => Some(2_000_001_000),
            "system-cluster-critical" => Some(2_000_000_000),
            _ => None,
        };
        let problem = match known {
            None => Some(format!("{name} is not a known system priority class")),
            Some(v) if v != value => Some(format!("value of {name} PriorityClass must be {v}")),
            Some(_) if global_default => Some(format!(
                "globalDefault of {name} PriorityClass must be false"
            )),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            errs.push(forbidden(
                &Path::new("metadata").child("name"),
                format!(
                    "priority class names with 'system-' prefix are reserved for system use only. error: {problem}"
                ),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(forbidden(
            &Path::new("value"),
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    if let Some(pp) = opt_str(obj, "preemptionPolicy") {
        preemption_policy(pp, &Path::new("preemptionPolicy"), errs);
    }
}

/// `ValidatePriorityClassUpdate`.
fn priority_class_update(obj: &Value, old: &Value, errs: &mut Errs) {
    if obj.get("value").and_then(Value::as_i64) != old.get("value").and_then(Value::as_i64) {
        errs.push(forbidden(
            &Path::new("value"),
            "may not be changed in an update.",
        ));
    }
    let pp = opt_str(obj, "preemptionPolicy");
    if pp != opt_str(old, "preemptionPolicy") {
        let value = pp.map_or_else(|| "null".to_string(), go_quote);
        errs.push(invalid_raw(
            &Path::new("preemptionPolicy"),
            value,
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------------------------

/// `ValidateEventCreate` / `ValidateEventUpdate` (kube's `core/validation/events.go`): an
/// Event in its stored (core/v1) form, judged by the group-version of the request. Writes
/// through core/v1 get the legacy checks only; writes through events.k8s.io/v1 must also
/// be well-formed new-style events (eventTime, Normal/Warning, no deprecated fields).
/// Field paths are the core names, as kube validates the internal type.
pub fn validate_event(
    event: &Value,
    old: Option<&Value>,
    request_group: &str,
    request_version: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let core_request = request_group.is_empty() && request_version == "v1";
    legacy_event(event, core_request, &mut errs);
    if core_request {
        return errs;
    }
    let set = |v: &Value, k: &str| v.get(k).is_some_and(|x| !x.is_null());
    match old {
        None => {
            event_series(event, &mut errs);
            if !set(event, "eventTime") {
                errs.push(required(&Path::new("eventTime"), ""));
            }
            let kind = st(event, "type");
            if kind != "Normal" && kind != "Warning" {
                errs.push(invalid(
                    &Path::new("type"),
                    "",
                    format!("has invalid value: {kind}"),
                ));
            }
            for k in ["firstTimestamp", "lastTimestamp"] {
                if set(event, k) {
                    errs.push(invalid(&Path::new(k), "", "needs to be unset"));
                }
            }
            if event.get("count").and_then(Value::as_i64).unwrap_or(0) != 0 {
                errs.push(invalid(&Path::new("count"), "", "needs to be unset"));
            }
            let source = event.get("source").unwrap_or(&Value::Null);
            if !st(source, "component").is_empty() || !st(source, "host").is_empty() {
                errs.push(invalid(&Path::new("source"), "", "needs to be unset"));
            }
        }
        Some(old) => {
            if !sem_eq(event.get("series"), old.get("series")) {
                event_series(event, &mut errs);
            }
            for k in [
                "involvedObject",
                "reason",
                "message",
                "source",
                "firstTimestamp",
                "lastTimestamp",
                "count",
                "reason",
                "type",
                "eventTime",
                "action",
                "related",
                "reportingComponent",
                "reportingInstance",
            ] {
                if !sem_eq(event.get(k), old.get(k)) {
                    // kube names the internal field: reportingController.
                    let path = if k == "reportingComponent" {
                        "reportingController"
                    } else {
                        k
                    };
                    errs.push(invalid_json(
                        &Path::new(path),
                        event.get(k).unwrap_or(&Value::Null),
                        FIELD_IMMUTABLE_ERROR_MSG,
                    ));
                }
            }
        }
    }
    errs
}

fn event_series(event: &Value, errs: &mut Errs) {
    let Some(series) = event.get("series").filter(|s| s.is_object()) else {
        return;
    };
    if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        errs.push(invalid(
            &Path::new("series.count"),
            "",
            "should be at least 2",
        ));
    }
    if series.get("lastObservedTime").is_none_or(Value::is_null) {
        errs.push(required(&Path::new("series.lastObservedTime"), ""));
    }
}

/// `legacyValidateEvent`.
fn legacy_event(event: &Value, core_request: bool, errs: &mut Errs) {
    let null = Value::Null;
    let namespace = event
        .get("metadata")
        .map(|m| st(m, "namespace"))
        .unwrap_or("");
    let involved = event.get("involvedObject").unwrap_or(&null);
    let involved_ns = st(involved, "namespace");
    let ns_path = Path::new("involvedObject").child("namespace");
    let mismatch = |errs: &mut Errs| {
        errs.push(invalid(
            &ns_path,
            involved_ns,
            "does not match event.namespace",
        ));
    };
    if event.get("eventTime").is_none_or(Value::is_null) {
        if involved_ns.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                mismatch(errs);
            }
        } else if namespace != involved_ns {
            mismatch(errs);
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            mismatch(errs);
        }
        let controller_path = Path::new(if core_request {
            "reportingComponent"
        } else {
            "reportingController"
        });
        let controller = st(event, "reportingComponent");
        if controller.is_empty() {
            errs.push(required(&controller_path, ""));
        }
        qualified_name(controller, &controller_path, errs);
        let limited = |k: &str, limit: usize, required_too: bool, errs: &mut Errs| {
            let v = st(event, k);
            if required_too && v.is_empty() {
                errs.push(required(&Path::new(k), ""));
            }
            if v.len() > limit {
                errs.push(invalid(
                    &Path::new(k),
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        };
        limited("reportingInstance", 128, true, errs);
        limited("action", 128, true, errs);
        limited("reason", 128, true, errs);
        limited("message", 1024, false, errs);
    }
    for msg in is_dns1123_subdomain(namespace) {
        errs.push(invalid(&Path::new("namespace"), namespace, msg));
    }
}

/// `ValidateHorizontalPodAutoscalerSpec` (the metrics' inner targets are not checked).
fn hpa(obj: &Value, version: &str, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    let min = int_field(spec, "minReplicas", &sp, errs);
    let max = int_field(spec, "maxReplicas", &sp, errs).unwrap_or(0);
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(invalid_int(
            &sp.child("minReplicas"),
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(invalid_int(
            &sp.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(invalid_int(
            &sp.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = spec.get("scaleTargetRef").unwrap_or(&null);
    let tp = sp.child("scaleTargetRef");
    for k in ["kind", "name"] {
        let v = st(target, k);
        if v.is_empty() {
            errs.push(required(&tp.child(k), ""));
        } else {
            for msg in is_valid_path_segment_name(v) {
                errs.push(invalid(&tp.child(k), v, msg));
            }
        }
    }
    if version == "v1" {
        if let Some(t) = int_field(spec, "targetCPUUtilizationPercentage", &sp, errs)
            && t < 1
        {
            errs.push(invalid_int(
                &sp.child("targetCPUUtilizationPercentage"),
                t,
                "must be greater than 0",
            ));
        }
        return;
    }
    const TYPES: &[&str] = &[
        "Object",
        "Pods",
        "Resource",
        "External",
        "ContainerResource",
    ];
    let mp = sp.child("metrics");
    for (i, metric) in arr(spec, "metrics").iter().enumerate() {
        let ip = mp.index(i);
        let t = st(metric, "type");
        if t.is_empty() {
            errs.push(required(
                &ip.child("type"),
                "must specify a metric source type",
            ));
        }
        let source = match t {
            "Object" => Some("object"),
            "Pods" => Some("pods"),
            "Resource" => Some("resource"),
            "External" => Some("external"),
            "ContainerResource" => Some("containerResource"),
            _ => None,
        };
        match source {
            None => errs.push(not_supported(&ip.child("type"), t, TYPES)),
            Some(s) => {
                if field(metric, s).is_none() {
                    errs.push(required(
                        &ip.child(s),
                        "must populate information for the given metric source",
                    ));
                }
            }
        }
    }
}

/// `ValidateLeaseSpec`.
fn lease(obj: &Value, errs: &mut Errs) {
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = Path::new("spec");
    if let Some(d) = int_field(spec, "leaseDurationSeconds", &sp, errs).filter(|d| *d <= 0) {
        errs.push(invalid_int(
            &sp.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = int_field(spec, "leaseTransitions", &sp, errs).filter(|t| *t < 0) {
        errs.push(invalid_int(
            &sp.child("leaseTransitions"),
            t,
            IS_NEGATIVE_ERROR_MSG,
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

    fn strs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn create(group: &str, kind: &str, obj: &Value) -> Vec<String> {
        strs(&validate_create(group, "v1", kind, obj))
    }

    fn update(group: &str, kind: &str, obj: &Value, old: &Value) -> Vec<String> {
        strs(&validate_update(group, "v1", kind, obj, old))
    }

    #[track_caller]
    fn assert_has(errs: &[String], want: &str) {
        assert!(
            errs.iter().any(|e| e == want),
            "missing {want:?} in {errs:#?}"
        );
    }

    #[track_caller]
    fn assert_prefix(errs: &[String], want: &str) {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing prefix {want:?} in {errs:#?}"
        );
    }

    fn container() -> Value {
        json!({
            "name": "nginx",
            "image": "nginx:1.25",
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
            "env": [{"name": "MODE", "value": "prod"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "livenessProbe": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
                              "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            "readinessProbe": {"tcpSocket": {"port": "http"},
                               "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
        })
    }

    fn pod_spec() -> Value {
        json!({
            "containers": [container()],
            "volumes": [{"name": "data", "emptyDir": {}},
                        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "terminationGracePeriodSeconds": 30,
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccountName": "default",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0
        })
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web", "namespace": "default"}, "spec": pod_spec()})
    }

    fn pod_with(f: impl FnOnce(&mut Value)) -> Value {
        let mut p = pod();
        f(&mut p["spec"]);
        p
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600
            }
        })
    }

    fn service() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
                          {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090}],
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack"
            }
        })
    }

    fn job() -> Value {
        let mut spec = pod_spec();
        spec["restartPolicy"] = json!("Never");
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "1234"},
            "spec": {
                "parallelism": 1, "completions": 1, "backoffLimit": 6,
                "completionMode": "NonIndexed", "suspend": false, "manualSelector": false,
                "podReplacementPolicy": "TerminatingOrFailed",
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}},
                "template": {
                    "metadata": {"labels": {
                        "batch.kubernetes.io/controller-uid": "1234",
                        "batch.kubernetes.io/job-name": "pi",
                        "controller-uid": "1234",
                        "job-name": "pi"
                    }},
                    "spec": spec
                }
            }
        })
    }

    fn cron_job() -> Value {
        let mut spec = pod_spec();
        spec["restartPolicy"] = json!("OnFailure");
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {
                "schedule": "*/5 * * * *",
                "concurrencyPolicy": "Allow",
                "suspend": false,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"backoffLimit": 6, "template": {"spec": spec}}}
            }
        })
    }

    // -----------------------------------------------------------------------------------------
    // Valid objects
    // -----------------------------------------------------------------------------------------

    #[test]
    fn valid_objects_have_no_errors() {
        let cases: Vec<(&str, &str, Value)> = vec![
            ("", "Pod", pod()),
            ("apps", "Deployment", deployment()),
            ("", "Service", service()),
            ("batch", "Job", job()),
            ("batch", "CronJob", cron_job()),
            (
                "",
                "ConfigMap",
                json!({"metadata": {"name": "c"}, "data": {"a.conf": "x", "B_KEY": "y"},
                                       "binaryData": {"bin": "aGVsbG8="}}),
            ),
            (
                "",
                "Secret",
                json!({"metadata": {"name": "s"}, "type": "Opaque",
                                    "data": {"password": "c2VjcmV0"}, "stringData": {"user": "me"}}),
            ),
            (
                "",
                "Secret",
                json!({"metadata": {"name": "t"}, "type": "kubernetes.io/tls",
                                    "data": {"tls.crt": "YQ==", "tls.key": "Yg=="}}),
            ),
            (
                "",
                "Secret",
                json!({"metadata": {"name": "d"}, "type": "kubernetes.io/dockerconfigjson",
                                    "data": {".dockerconfigjson": "eyJhdXRocyI6e319"}}),
            ),
            (
                "",
                "Namespace",
                json!({"metadata": {"name": "ns"}, "spec": {"finalizers": ["kubernetes"]}}),
            ),
            (
                "",
                "Node",
                json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.244.0.0/24",
                                  "podCIDRs": ["10.244.0.0/24", "fd00::/64"],
                                  "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
                                  "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}),
            ),
            (
                "",
                "PersistentVolumeClaim",
                json!({"metadata": {"name": "p"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                "volumeMode": "Filesystem", "storageClassName": "standard"}}),
            ),
            (
                "",
                "PersistentVolume",
                json!({"metadata": {"name": "pv"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"},
                "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem",
                "hostPath": {"path": "/mnt/data", "type": ""}}}),
            ),
            (
                "",
                "PodTemplate",
                json!({"metadata": {"name": "t"}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod_spec()}}),
            ),
            (
                "networking.k8s.io",
                "Ingress",
                json!({"metadata": {"name": "i"}, "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["example.com"], "secretName": "tls"}],
                "rules": [{"host": "*.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                    {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}}]}}),
            ),
            (
                "rbac.authorization.k8s.io",
                "Role",
                json!({"metadata": {"name": "r"}, "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
            ),
            (
                "rbac.authorization.k8s.io",
                "ClusterRole",
                json!({"metadata": {"name": "r"}, "rules": [
                {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}),
            ),
            (
                "rbac.authorization.k8s.io",
                "RoleBinding",
                json!({"metadata": {"name": "b"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"},
                             {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]}),
            ),
            (
                "scheduling.k8s.io",
                "PriorityClass",
                json!({"metadata": {"name": "high"}, "value": 1000000,
                "preemptionPolicy": "PreemptLowerPriority"}),
            ),
            (
                "scheduling.k8s.io",
                "PriorityClass",
                json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000}),
            ),
            (
                "autoscaling",
                "HorizontalPodAutoscaler",
                json!({"metadata": {"name": "h"}, "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}),
            ),
            (
                "coordination.k8s.io",
                "Lease",
                json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
            ),
            ("example.com", "Widget", json!({"spec": {"anything": true}})),
        ];
        for (group, kind, obj) in cases {
            let errs = create(group, kind, &obj);
            assert!(errs.is_empty(), "{kind}: {errs:#?}");
            let errs = update(group, kind, &obj, &obj);
            assert!(errs.is_empty(), "{kind} update: {errs:#?}");
        }
        let mut ds = deployment();
        ds["kind"] = json!("DaemonSet");
        let spec = ds["spec"].as_object_mut().unwrap();
        spec.remove("replicas");
        spec.remove("strategy");
        spec.remove("progressDeadlineSeconds");
        spec.insert(
            "updateStrategy".into(),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
        );
        assert!(
            create("apps", "DaemonSet", &ds).is_empty(),
            "{:#?}",
            create("apps", "DaemonSet", &ds)
        );
        let mut rs = deployment();
        let spec = rs["spec"].as_object_mut().unwrap();
        spec.remove("strategy");
        spec.remove("progressDeadlineSeconds");
        assert!(create("apps", "ReplicaSet", &rs).is_empty());
        let sts = json!({"metadata": {"name": "db"}, "spec": {
            "replicas": 1, "serviceName": "db", "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod_spec()},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}}});
        assert!(create("apps", "StatefulSet", &sts).is_empty());
    }

    #[test]
    fn not_an_object() {
        let errs = create("", "Pod", &json!("nope"));
        assert_eq!(errs, vec![": Invalid value: \"nope\": must be an object"]);
        let errs = create("", "Pod", &json!({"metadata": {"name": "p"}}));
        assert_eq!(
            errs,
            vec![
                "spec.terminationGracePeriodSeconds: Required value",
                "spec.containers: Required value",
                "spec.restartPolicy: Required value",
                "spec.dnsPolicy: Required value",
            ]
        );
    }

    // -----------------------------------------------------------------------------------------
    // Pods
    // -----------------------------------------------------------------------------------------

    #[test]
    fn pod_containers_required() {
        let p = pod_with(|s| s["containers"] = json!([]));
        assert_eq!(
            create("", "Pod", &p),
            vec!["spec.containers: Required value"]
        );
        let p = pod_with(|s| {
            s.as_object_mut().unwrap().remove("containers");
        });
        assert_eq!(
            create("", "Pod", &p),
            vec!["spec.containers: Required value"]
        );
    }

    #[test]
    fn pod_container_name_image_and_duplicates() {
        let p = pod_with(|s| {
            s["containers"][0]["name"] = json!("Bad_Name");
            s["containers"][0].as_object_mut().unwrap().remove("image");
        });
        let errs = create("", "Pod", &p);
        assert_has(
            &errs,
            &format!("spec.containers[0].name: Invalid value: \"Bad_Name\": {LABEL_MSG}"),
        );
        assert_has(&errs, "spec.containers[0].image: Required value");

        let p = pod_with(|s| {
            let c = s["containers"][0].clone();
            s["containers"].as_array_mut().unwrap().push(c);
        });
        let errs = create("", "Pod", &p);
        assert_eq!(
            errs,
            vec!["spec.containers[1].name: Duplicate value: \"nginx\""]
        );

        let p = pod_with(|s| {
            let mut c = s["containers"][0].clone();
            c["ports"] = json!([]);
            s["initContainers"] = json!([c]);
        });
        let errs = create("", "Pod", &p);
        assert_has(
            &errs,
            "spec.initContainers[0].name: Duplicate value: \"nginx\"",
        );
        assert_has(
            &errs,
            "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
        );
    }

    #[test]
    fn pod_ports() {
        let p = pod_with(|s| {
            s["containers"][0]["ports"] = json!([
                {"name": "http_1", "containerPort": 70000, "protocol": "HTTP"},
                {"containerPort": 0, "protocol": "TCP"},
                {"name": "web", "containerPort": 8080, "protocol": "TCP", "hostPort": 8080},
                {"name": "web", "containerPort": 8081, "protocol": "TCP", "hostPort": 8080}
            ]);
        });
        let errs = create("", "Pod", &p);
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].ports[0].name: Invalid value: \"http_1\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].ports[1].containerPort: Required value",
                "spec.containers[0].ports[3].name: Duplicate value: \"web\"",
                "spec.containers[0].ports[3].hostPort: Duplicate value: \"TCP//8080\"",
            ]
        );
    }

    #[test]
    fn pod_policies() {
        let p = pod_with(|s| {
            s["restartPolicy"] = json!("Sometimes");
            s["dnsPolicy"] = json!("Google");
            s["containers"][0]["imagePullPolicy"] = json!("Maybe");
            s["containers"][0]
                .as_object_mut()
                .unwrap()
                .remove("terminationMessagePolicy");
        });
        let errs = create("", "Pod", &p);
        assert_has(
            &errs,
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        );
        assert_has(
            &errs,
            "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        );
        assert_has(
            &errs,
            "spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
        );
        assert_has(
            &errs,
            "spec.containers[0].terminationMessagePolicy: Required value",
        );
        let p = pod_with(|s| {
            s.as_object_mut().unwrap().remove("restartPolicy");
            s.as_object_mut()
                .unwrap()
                .remove("terminationGracePeriodSeconds");
        });
        let errs = create("", "Pod", &p);
        assert_eq!(
            errs,
            vec![
                "spec.terminationGracePeriodSeconds: Required value",
                "spec.restartPolicy: Required value"
            ]
        );
    }

    #[test]
    fn pod_resources() {
        let p = pod_with(|s| {
            s["containers"][0]["resources"] = json!({
                "requests": {"cpu": "2", "memory": "1Gi"},
                "limits": {"cpu": "1000m", "memory": "512Mi"}
            });
        });
        let errs = create("", "Pod", &p);
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
                "spec.containers[0].resources.requests: Invalid value: \"1Gi\": must be less than or equal to memory limit of 512Mi",
            ]
        );
        let p = pod_with(|s| {
            s["containers"][0]["resources"] = json!({
                "requests": {"cpu": "abc", "foo": "1", "example.com/gpu": "1"},
                "limits": {"memory": "-1", "example.com/gpu": "2"}
            });
        });
        let errs = create("", "Pod", &p);
        assert_has(
            &errs,
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"abc\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        );
        assert_has(
            &errs,
            "spec.containers[0].resources.limits[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
        );
        assert_has(
            &errs,
            "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
        );
        assert_has(
            &errs,
            "spec.containers[0].resources.requests[foo]: Invalid value: \"foo\": must be a standard resource for containers",
        );
        assert_has(
            &errs,
            "spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2",
        );
        let p = pod_with(|s| {
            s["containers"][0]["resources"] = json!({"requests": {"example.com/gpu": "1"}});
        });
        assert_eq!(
            create("", "Pod", &p),
            vec![
                "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"
            ]
        );
        let p = pod_with(|s| {
            s["containers"][0]["resources"] = json!({"limits": {"hugepages-2Mi": "3Mi"}});
        });
        let errs = create("", "Pod", &p);
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].resources.limits[hugepages-2Mi]: Invalid value: \"3Mi\": 3Mi is not positive integer multiple of hugepages-2Mi",
                "spec.containers[0].resources: Forbidden: HugePages require cpu or memory",
            ]
        );
    }

    #[test]
    fn pod_volumes() {
        let p = pod_with(|s| {
            s["volumes"] = json!([
                {"name": "data", "emptyDir": {}, "hostPath": {"path": "/tmp"}},
                {"name": "empty"},
                {"name": "data", "emptyDir": {}},
                {"name": "Bad", "secret": {"defaultMode": 1000}},
            ]);
        });
        let errs = create("", "Pod", &p);
        assert_eq!(
            errs,
            vec![
                "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
                "spec.volumes[1]: Required value: must specify a volume type",
                "spec.volumes[3].secret.secretName: Required value",
                "spec.volumes[3].secret.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
                &format!("spec.volumes[3].name: Invalid value: \"Bad\": {LABEL_MSG}"),
            ]
        );
        let p = pod_with(|s| {
            s["volumes"] =
                json!([{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]);
        });
        assert_eq!(
            create("", "Pod", &p),
            vec!["spec.volumes[1].name: Duplicate value: \"data\""]
        );
    }

    #[test]
    fn pod_volume_mounts() {
        let p = pod_with(|s| {
            s["containers"][0]["volumeMounts"] = json!([
                {"name": "x", "mountPath": "/x"},
                {"name": "data", "mountPath": "/x", "subPath": "../etc"},
                {"name": "data", "mountPath": "/y", "mountPropagation": "Bidirectional"},
            ]);
        });
        let errs = validate_create("", "v1", "Pod", &p);
        let e = &errs[0];
        assert_eq!(e.field, "spec.containers[0].volumeMounts[0].name");
        assert_eq!(e.bad_value.as_deref(), Some("\"x\""));
        let errs = strs(&errs);
        assert_has(
            &errs,
            "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/x\": must be unique",
        );
        assert_has(
            &errs,
            "spec.containers[0].volumeMounts.subPath: Invalid value: \"../etc\": must not contain '..'",
        );
        assert_has(
            &errs,
            "spec.containers[0].volumeMounts.mountPropagation: Forbidden: Bidirectional mount propagation is available only to privileged containers",
        );
    }

    #[test]
    fn pod_env() {
        let p = pod_with(|s| {
            s["containers"][0]["env"] = json!([
                {"name": "A=B", "value": "x"},
                {"name": "", "value": "x"},
                {"name": "weird.name-ok", "value": "x"},
                {"name": "C", "valueFrom": {}},
                {"name": "D", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.foo"}}},
                {"name": "E", "valueFrom": {"secretKeyRef": {"name": "s", "key": ""}}},
                {"name": "F", "value": "x", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            ]);
        });
        let errs = create("", "Pod", &p);
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                "spec.containers[0].env[1].name: Required value",
                "spec.containers[0].env[3].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                "spec.containers[0].env[4].valueFrom.fieldRef.fieldPath: Invalid value: \"spec.foo\": error converting fieldPath: field label not supported: spec.foo",
                "spec.containers[0].env[5].valueFrom.secretKeyRef.key: Required value",
                "spec.containers[0].env[6].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
            ]
        );
        let p = pod_with(|s| {
            s["containers"][0]["env"] = json!([{"name": "P", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.phase"}}}]);
        });
        assert_has(
            &create("", "Pod", &p),
            "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"status.phase\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"",
        );
    }

    #[test]
    fn pod_probes() {
        let p = pod_with(|s| {
            let probe = &mut s["containers"][0]["livenessProbe"];
            probe["periodSeconds"] = json!(-1);
            probe["initialDelaySeconds"] = json!(-5);
            probe["successThreshold"] = json!(2);
            s["containers"][0]["readinessProbe"] = json!({"timeoutSeconds": 1, "periodSeconds": 1, "successThreshold": 1, "failureThreshold": 1});
            s["containers"][0]["startupProbe"] = json!({"exec": {"command": ["true"]}, "httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
                "successThreshold": 1, "terminationGracePeriodSeconds": 0});
        });
        let errs = create("", "Pod", &p);
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].livenessProbe.initialDelaySeconds: Invalid value: -5: must be greater than or equal to 0",
                "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.containers[0].readinessProbe: Required value: must specify a handler type",
                "spec.containers[0].startupProbe.httpGet: Forbidden: may not specify more than 1 handler type",
                "spec.containers[0].startupProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0",
            ]
        );
    }

    #[test]
    fn pod_misc_spec_fields() {
        let p = pod_with(|s| {
            s["activeDeadlineSeconds"] = json!(0);
            s["hostname"] = json!("a.b");
            s["nodeSelector"] = json!({"bad key": "v"});
            s["tolerations"] =
                json!([{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "In"}]);
            s["priorityClassName"] = json!("Bad");
            s["imagePullSecrets"] = json!([{"name": "r", "extra": 1}]);
            s["os"] = json!({"name": "plan9"});
        });
        let errs = create("", "Pod", &p);
        assert_has(
            &errs,
            "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
        );
        assert_has(
            &errs,
            "spec.hostname: Invalid value: \"a.b\": must not contain dots",
        );
        assert_prefix(
            &errs,
            "spec.nodeSelector: Invalid value: \"bad key\": name part must consist of",
        );
        assert_has(
            &errs,
            "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        );
        assert_has(
            &errs,
            "spec.tolerations[1].operator: Unsupported value: \"In\": supported values: \"Equal\", \"Exists\"",
        );
        assert_prefix(
            &errs,
            "spec.priorityClassName: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain",
        );
        assert_has(
            &errs,
            "spec.imagePullSecrets[0]: Invalid value: core.LocalObjectReference{Name:\"r\"}: only name may be set",
        );
        assert_has(
            &errs,
            "spec.os: Unsupported value: \"plan9\": supported values: \"linux\", \"windows\"",
        );
    }

    #[test]
    fn pod_affinity_and_spread() {
        let p = pod_with(|s| {
            s["affinity"] = json!({
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}},
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 0, "podAffinityTerm": {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}}
                ]}
            });
            s["topologySpreadConstraints"] = json!([
                {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
            ]);
        });
        let errs = create("", "Pod", &p);
        assert_has(
            &errs,
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term",
        );
        assert_has(
            &errs,
            "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100",
        );
        assert_has(
            &errs,
            "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        );
        assert_has(
            &errs,
            "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: Required value: can not be empty",
        );
        assert_has(
            &errs,
            "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
        );
        assert_has(
            &errs,
            "spec.topologySpreadConstraints[0].{topologyKey, whenUnsatisfiable}: Duplicate value: \"{zone, DoNotSchedule}\"",
        );
    }

    #[test]
    fn pod_create_only_rules() {
        let p = pod_with(|s| {
            s["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox"}]);
            s["nodeName"] = json!("node-1");
            s["schedulingGates"] = json!([{"name": "example.com/gate"}]);
            s["containers"][0]["image"] = json!(" nginx");
        });
        let errs = create("", "Pod", &p);
        assert_eq!(
            errs,
            vec![
                "spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace",
                "spec.ephemeralContainers: Forbidden: cannot be set on create",
                "spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared",
            ]
        );
    }

    #[test]
    fn pod_update_rules() {
        let old = pod();
        // Allowed: image, additional toleration, tolerationSeconds, lower activeDeadlineSeconds.
        let new = pod_with(|s| {
            s["containers"][0]["image"] = json!("nginx:1.26");
            s["tolerations"][0]["tolerationSeconds"] = json!(60);
            s["tolerations"]
                .as_array_mut()
                .unwrap()
                .push(json!({"key": "k", "operator": "Exists"}));
            s["activeDeadlineSeconds"] = json!(100);
        });
        assert!(
            update("", "Pod", &new, &old).is_empty(),
            "{:#?}",
            update("", "Pod", &new, &old)
        );

        // Forbidden: anything else.
        let new = pod_with(|s| s["containers"][0]["ports"][0]["containerPort"] = json!(81));
        let errs = update("", "Pod", &new, &old);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with(
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
        ), "{errs:?}");
        assert!(
            errs[0].contains("containers[0].ports[0].containerPort"),
            "{errs:?}"
        );

        let new = pod_with(|s| {
            let c = s["containers"][0].clone();
            s["containers"].as_array_mut().unwrap().push(c);
        });
        let errs = update("", "Pod", &new, &old);
        assert_has(
            &errs,
            "spec.containers: Forbidden: pod updates may not add or remove containers",
        );

        let new = pod_with(|s| s["tolerations"] = json!([]));
        assert_has(
            &update("", "Pod", &new, &old),
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
        );

        let old = pod_with(|s| s["activeDeadlineSeconds"] = json!(10));
        let new = pod_with(|s| s["activeDeadlineSeconds"] = json!(20));
        assert_eq!(
            update("", "Pod", &new, &old),
            vec![
                "spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous value"
            ]
        );
        assert_eq!(
            update("", "Pod", &pod(), &old),
            vec![
                "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
            ]
        );

        let old = pod_with(|s| s["terminationGracePeriodSeconds"] = json!(-1));
        let new = pod_with(|s| s["terminationGracePeriodSeconds"] = json!(1));
        assert!(update("", "Pod", &new, &old).is_empty());

        let old = pod_with(|s| s["schedulingGates"] = json!([{"name": "a"}]));
        let new = pod_with(|s| s["schedulingGates"] = json!([{"name": "a"}, {"name": "b"}]));
        assert_has(
            &update("", "Pod", &new, &old),
            "spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling gate 'b'",
        );
    }

    // -----------------------------------------------------------------------------------------
    // Services
    // -----------------------------------------------------------------------------------------

    #[test]
    fn service_ports() {
        let mut s = service();
        s["spec"]["ports"] = json!([]);
        assert_eq!(
            create("", "Service", &s),
            vec!["spec.ports: Required value"]
        );
        s["spec"]["ports"] = json!([
            {"name": "http", "port": 0, "protocol": "TCP", "targetPort": "Bad_Name"},
            {"name": "http", "port": 80, "protocol": "HTTP", "targetPort": 70000},
            {"port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080},
            {"name": "dup", "port": 80, "protocol": "TCP", "targetPort": 80},
        ]);
        let errs = create("", "Service", &s);
        assert_eq!(
            errs,
            vec![
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].targetPort: Invalid value: \"Bad_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "spec.ports[1].name: Duplicate value: \"http\"",
                "spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.ports[2].name: Required value",
                "spec.ports[2].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
                "spec.ports[3]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
            ]
        );
    }

    #[test]
    fn service_types_and_ips() {
        let mut s = service();
        s["spec"]["type"] = json!("Magic");
        assert_has(
            &create("", "Service", &s),
            "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
        );
        let ext = json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "example.com.", "sessionAffinity": "None"}});
        assert!(
            create("", "Service", &ext).is_empty(),
            "{:?}",
            create("", "Service", &ext)
        );
        let headless = json!({"metadata": {"name": "h"}, "spec": {"type": "ClusterIP", "clusterIP": "None",
            "sessionAffinity": "None", "internalTrafficPolicy": "Cluster", "selector": {"app": "db"}}});
        assert!(
            create("", "Service", &headless).is_empty(),
            "{:?}",
            create("", "Service", &headless)
        );
        let mut s = service();
        s["spec"]["clusterIP"] = json!("10.0.0.300");
        s["spec"]["clusterIPs"] = json!(["10.0.0.300"]);
        assert_has(
            &create("", "Service", &s),
            "spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        );
        let mut s = service();
        s["spec"]["type"] = json!("NodePort");
        assert_has(
            &create("", "Service", &s),
            "spec.externalTrafficPolicy: Required value",
        );
        s["spec"]["externalTrafficPolicy"] = json!("Cluster");
        assert!(create("", "Service", &s).is_empty());
        s["spec"]["type"] = json!("LoadBalancer");
        assert_has(
            &create("", "Service", &s),
            "allocateLoadBalancerNodePorts: Required value",
        );
    }

    #[test]
    fn service_cluster_ip_immutable() {
        let old = service();
        let mut new = service();
        new["spec"]["clusterIP"] = json!("10.96.0.11");
        let errs = update("", "Service", &new, &old);
        assert_eq!(
            errs,
            vec![
                "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.11\"}: may not change once set"
            ]
        );
        // An old client dropping clusterIPs keeps them.
        let mut new = service();
        new["spec"].as_object_mut().unwrap().remove("clusterIPs");
        assert!(update("", "Service", &new, &old).is_empty());
        // clusterIP without clusterIPs on create is mirrored.
        let mut s = service();
        s["spec"].as_object_mut().unwrap().remove("clusterIPs");
        assert!(create("", "Service", &s).is_empty());
    }

    // -----------------------------------------------------------------------------------------
    // Workloads
    // -----------------------------------------------------------------------------------------

    #[test]
    fn deployment_selector_rules() {
        let mut d = deployment();
        d["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(
            create("apps", "Deployment", &d),
            vec![
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        let mut d = deployment();
        d["spec"]["selector"] = json!({"matchLabels": {}});
        assert_eq!(
            create("apps", "Deployment", &d),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
            ]
        );
        let mut d = deployment();
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other", "tier": "fe"});
        assert_eq!(
            create("apps", "Deployment", &d),
            vec![
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\", \"tier\":\"fe\"}: `selector` does not match template `labels`"
            ]
        );
        let mut d = deployment();
        d["spec"]["selector"] =
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]});
        assert!(create("apps", "Deployment", &d).is_empty());
    }

    #[test]
    fn deployment_spec_rules() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        d["spec"]["template"]["spec"]["containers"][0]["name"] = json!("Bad_Name");
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}});
        let errs = create("apps", "Deployment", &d);
        assert_eq!(
            errs,
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0".to_string(),
                format!("spec.template.spec.containers[0].name: Invalid value: \"Bad_Name\": {LABEL_MSG}"),
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"".to_string(),
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0".to_string(),
            ]
        );
        let mut d = deployment();
        d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}});
        assert_eq!(
            create("apps", "Deployment", &d),
            vec![
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
            ]
        );
        d["spec"]["strategy"] = json!({"type": "BlueGreen"});
        assert_eq!(
            create("apps", "Deployment", &d),
            vec![
                "spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"BlueGreen\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\""
            ]
        );
        let mut d = deployment();
        d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = json!("150%");
        d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!("x");
        d["spec"]["progressDeadlineSeconds"] = json!(5);
        d["spec"]["minReadySeconds"] = json!(10);
        let errs = create("apps", "Deployment", &d);
        assert_eq!(
            errs,
            vec![
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%",
                "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
            ]
        );
    }

    #[test]
    fn deployment_selector_immutable() {
        let old = deployment();
        let mut new = deployment();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "v": "2"});
        assert_eq!(
            update("apps", "Deployment", &new, &old),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
        let mut new = deployment();
        new["spec"]["replicas"] = json!(5);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(update("apps", "Deployment", &new, &old).is_empty());
    }

    #[test]
    fn stateful_set_rules() {
        let sts = json!({"metadata": {"name": "db"}, "spec": {
            "replicas": 1, "serviceName": "db", "podManagementPolicy": "Sometimes",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "x"}], "restartPolicy": "OnFailure"}}}});
        let errs = create("apps", "StatefulSet", &sts);
        // kube v1.33 does not validate a StatefulSet's pod spec (the image is missing here).
        assert_eq!(
            errs,
            vec![
                "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
                "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
            ]
        );
        let old = json!({"metadata": {"name": "db"}, "spec": {
            "replicas": 1, "serviceName": "db", "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"restartPolicy": "Always"}}}});
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        assert!(update("apps", "StatefulSet", &new, &old).is_empty());
        new["spec"]["serviceName"] = json!("other");
        assert_eq!(
            update("apps", "StatefulSet", &new, &old),
            vec![
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
            ]
        );
    }

    #[test]
    fn daemon_set_rules() {
        let ds = json!({"metadata": {"name": "agent"}, "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": pod_spec()},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
            "revisionHistoryLimit": -1}});
        assert_eq!(
            create("apps", "DaemonSet", &ds),
            vec![
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
                "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn replication_controller_rules() {
        let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 1, "selector": {"app": "x"},
            "template": {"metadata": {"labels": {"app": "y"}}, "spec": pod_spec()}}});
        assert_eq!(
            create("", "ReplicationController", &rc),
            vec![
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"y\"}: `selector` does not match template `labels`"
            ]
        );
    }

    // -----------------------------------------------------------------------------------------
    // Jobs and CronJobs
    // -----------------------------------------------------------------------------------------

    #[test]
    fn job_rules() {
        let mut j = job();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        j["spec"]["completions"] = json!(-1);
        j["spec"]["backoffLimit"] = json!(-2);
        let errs = create("batch", "Job", &j);
        assert_eq!(
            errs,
            vec![
                "spec.completions: Invalid value: -1: must be greater than or equal to 0",
                "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0",
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
            ]
        );
        let mut j = job();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Sometimes");
        assert_has(
            &create("batch", "Job", &j),
            "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"OnFailure\", \"Never\"",
        );
        let mut j = job();
        j["spec"].as_object_mut().unwrap().remove("selector");
        assert_has(&create("batch", "Job", &j), "spec.selector: Required value");
        let mut j = job();
        j["spec"]["template"]["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("job-name");
        assert_eq!(
            create("batch", "Job", &j),
            vec!["spec.template.metadata.labels[job-name]: Required value: must be 'pi'"]
        );
    }

    #[test]
    fn job_update_rules() {
        let old = job();
        let mut new = job();
        new["spec"]["parallelism"] = json!(3);
        assert!(update("batch", "Job", &new, &old).is_empty());
        let mut new = job();
        new["spec"]["completions"] = json!(5);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:2");
        let errs = update("batch", "Job", &new, &old);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert_eq!(
            errs[0],
            "spec.completions: Invalid value: 5: field is immutable"
        );
        assert!(
            errs[1].starts_with("spec.template: Invalid value: {"),
            "{errs:?}"
        );
        assert!(errs[1].ends_with(": field is immutable"), "{errs:?}");
        let mut new = job();
        new["spec"]["selector"] =
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "1234", "x": "y"}});
        assert_has(
            &update("batch", "Job", &new, &old),
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"batch.kubernetes.io/controller-uid\":\"1234\", \"x\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        );
        // A suspended, unstarted job may change its scheduling directives.
        let mut old = job();
        old["spec"]["suspend"] = json!(true);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert!(update("batch", "Job", &new, &old).is_empty());
    }

    #[test]
    fn cron_job_rules() {
        let mut c = cron_job();
        c["spec"]["schedule"] = json!("* * *");
        c["spec"]["concurrencyPolicy"] = json!("Sometimes");
        let errs = create("batch", "CronJob", &c);
        assert_eq!(
            errs,
            vec![
                "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]",
                "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
            ]
        );
        let mut c = cron_job();
        c["spec"].as_object_mut().unwrap().remove("schedule");
        assert_has(
            &create("batch", "CronJob", &c),
            "spec.schedule: Required value",
        );
        let mut c = cron_job();
        c["spec"]["schedule"] = json!("TZ=UTC 0 * * * *");
        assert_eq!(
            create("batch", "CronJob", &c),
            vec![
                "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
        let mut c = cron_job();
        c["spec"]["timeZone"] = json!("Local");
        assert_eq!(
            create("batch", "CronJob", &c),
            vec![
                "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
            ]
        );
        c["spec"]["timeZone"] = json!("Europe/Paris");
        assert!(create("batch", "CronJob", &c).is_empty());
        let mut c = cron_job();
        c["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
        c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        c["metadata"]["name"] = json!("a".repeat(53));
        assert_eq!(
            create("batch", "CronJob", &c),
            vec![
                "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".to_string(),
                "spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"b\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated".to_string(),
                format!("metadata.name: Invalid value: \"{}\": must be no more than 52 characters", "a".repeat(53)),
            ]
        );
    }

    #[test]
    fn cron_schedules() {
        for ok in [
            "* * * * *",
            "*/15 0-6,22 1 jan-mar MON-fri",
            "0 0 29 2 *",
            "5 4 * * sun",
            "0 */2 * * ?",
            "@hourly",
            "@daily",
            "@midnight",
            "@weekly",
            "@monthly",
            "@yearly",
            "@annually",
            "@every 1h30m",
            "@every 1.5s",
        ] {
            assert_eq!(parse_cron_standard(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", "empty spec string"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("* 24 * * *", "end of range (24) above maximum (23): 24"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("* * * 13 *", "end of range (13) above maximum (12): 13"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("1/2/3 * * * *", "too many slashes: 1/2/3"),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                "* * * * * *",
                "expected exactly 5 fields, found 6: [* * * * * *]",
            ),
            ("@often", "unrecognized descriptor: @often"),
            (
                "@every 5x",
                "failed to parse duration @every 5x: time: unknown unit \"x\" in duration \"5x\"",
            ),
            (
                "@every 5",
                "failed to parse duration @every 5: time: missing unit in duration \"5\"",
            ),
        ];
        for (schedule, want) in cases {
            assert_eq!(
                parse_cron_standard(schedule),
                Err(want.to_string()),
                "{schedule}"
            );
        }
    }

    // -----------------------------------------------------------------------------------------
    // ConfigMaps, Secrets, Namespaces, Nodes
    // -----------------------------------------------------------------------------------------

    #[test]
    fn config_map_rules() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a/b": "x", "..a": "y", "k": "1"}, "binaryData": {"k": "AA=="}});
        let errs = create("", "ConfigMap", &cm);
        assert_eq!(
            errs,
            vec![
                "data[..a]: Invalid value: \"..a\": must not start with '..'",
                "data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[k]: Invalid value: \"k\": duplicate of key present in binaryData",
            ]
        );
        let big = "x".repeat(MAX_SECRET_SIZE);
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": big, "b": "y"}});
        let errs = validate_create("", "v1", "ConfigMap", &cm);
        assert_eq!(
            strs(&errs),
            vec![": Too long: may not be more than 1048576 bytes"]
        );
        assert_eq!(errs[0].kind, ErrorKind::TooLong);
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "x".repeat(MAX_SECRET_SIZE)}});
        assert!(create("", "ConfigMap", &cm).is_empty());
    }

    #[test]
    fn config_map_immutable() {
        let old = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": true});
        let new = json!({"metadata": {"name": "c"}, "data": {"a": "2"}, "immutable": true});
        assert_eq!(
            update("", "ConfigMap", &new, &old),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let new = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": false});
        assert_eq!(
            update("", "ConfigMap", &new, &old),
            vec!["immutable: Forbidden: field is immutable when `immutable` is set"]
        );
        let mutable = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        assert!(update("", "ConfigMap", &new, &mutable).is_empty());
    }

    #[test]
    fn secret_rules() {
        let s = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ==", "bad key": "YQ=="}});
        assert_eq!(
            create("", "Secret", &s),
            vec![
                "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[tls.key]: Required value",
            ]
        );
        let s = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "W10="}});
        assert_eq!(
            create("", "Secret", &s),
            vec![
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array into Go value of type map[string]interface {}"
            ]
        );
        let s = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/service-account-token"});
        assert_eq!(
            create("", "Secret", &s),
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
        let big = "x".repeat(MAX_SECRET_SIZE + 1);
        let s = json!({"metadata": {"name": "s"}, "type": "Opaque", "stringData": {"big": big}});
        assert_eq!(
            create("", "Secret", &s),
            vec!["data: Too long: may not be more than 1048576 bytes"]
        );

        let old = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "YQ=="}, "immutable": true});
        let new = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth", "data": {"a": "Yg=="}, "immutable": true});
        assert_eq!(
            update("", "Secret", &new, &old),
            vec![
                "type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable",
                "data: Forbidden: field is immutable when `immutable` is set",
                "data[username]: Required value",
                "data[password]: Required value",
            ]
        );
    }

    #[test]
    fn namespace_and_node_rules() {
        let ns = json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["custom"]}});
        assert_eq!(
            create("", "Namespace", &ns),
            vec![
                "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
        let node = json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0/33",
            "taints": [{"key": "k", "effect": "Sometimes"}, {"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}]}});
        assert_eq!(
            create("", "Node", &node),
            vec![
                "metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                "metadata.taints[2]: Duplicate value: core.Taint{Key:\"a\", Value:\"\", Effect:\"NoSchedule\", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair",
                "spec.podCIDRs[0]: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ]
        );
        let old = json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0/24", "providerID": "aws://1"}});
        let new = json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.1.0/24", "providerID": "aws://2"}});
        assert_eq!(
            update("", "Node", &new, &old),
            vec![
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
                "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid",
            ]
        );
        let unset = json!({"metadata": {"name": "n"}, "spec": {}});
        assert!(update("", "Node", &old, &unset).is_empty());
    }

    // -----------------------------------------------------------------------------------------
    // Storage
    // -----------------------------------------------------------------------------------------

    #[test]
    fn pvc_rules() {
        let pvc = json!({"metadata": {"name": "p"}, "spec": {"resources": {}}});
        assert_eq!(
            create("", "PersistentVolumeClaim", &pvc),
            vec![
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ]
        );
        let pvc = json!({"metadata": {"name": "p"}, "spec": {"accessModes": ["ReadWriteOncePod", "ReadWriteOnce", "Sometimes"],
            "resources": {"requests": {"storage": "0"}}, "volumeMode": "Raw"}});
        assert_eq!(
            create("", "PersistentVolumeClaim", &pvc),
            vec![
                "spec.accessModes: Unsupported value: \"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
                "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
                "spec.resources[storage]: Invalid value: \"0\": must be greater than zero",
                "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"",
            ]
        );
    }

    #[test]
    fn pvc_update_rules() {
        let old = json!({"metadata": {"name": "p"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "standard"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}});
        let mut grown = old.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(update("", "PersistentVolumeClaim", &grown, &old).is_empty());
        let mut bound = old.clone();
        bound["spec"]["volumeName"] = json!("pv-1");
        assert!(update("", "PersistentVolumeClaim", &bound, &old).is_empty());
        let mut changed = old.clone();
        changed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let errs = update("", "PersistentVolumeClaim", &changed, &old);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"), "{errs:?}");
        let mut shrunk = old.clone();
        shrunk["spec"]["resources"]["requests"]["storage"] = json!("512Mi");
        assert_eq!(
            update("", "PersistentVolumeClaim", &shrunk, &old),
            vec![
                "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
            ]
        );
    }

    #[test]
    fn pv_rules() {
        let pv = json!({"metadata": {"name": "pv"}, "spec": {"accessModes": ["ReadWriteOnce"]}});
        assert_eq!(
            create("", "PersistentVolume", &pv),
            vec![
                "spec.capacity: Required value",
                "spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\"",
                "spec: Required value: must specify a volume type",
            ]
        );
        let pv = json!({"metadata": {"name": "pv"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/a"}, "nfs": {"server": "s", "path": "/x"}}});
        assert_eq!(
            create("", "PersistentVolume", &pv),
            vec!["spec.nfs: Forbidden: may not specify more than 1 volume type"]
        );
        let old = json!({"metadata": {"name": "pv"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/a"}}});
        let mut new = old.clone();
        new["spec"]["hostPath"]["path"] = json!("/b");
        let errs = update("", "PersistentVolume", &new, &old);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n"));
        let mut new = old.clone();
        new["spec"]["capacity"]["storage"] = json!("2Gi");
        new["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
        assert!(update("", "PersistentVolume", &new, &old).is_empty());
    }

    // -----------------------------------------------------------------------------------------
    // Networking, RBAC, scheduling, autoscaling, coordination
    // -----------------------------------------------------------------------------------------

    #[test]
    fn ingress_rules() {
        let ing = json!({"metadata": {"name": "i"}, "spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [
            {"path": "foo", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            {"path": "/a//b", "pathType": "Exact", "backend": {"service": {"name": "Web", "port": {}}}},
            {"path": "/", "pathType": "Regex", "backend": {}},
            {"path": "/"}
        ]}}]}});
        assert_eq!(
            create("networking.k8s.io", "Ingress", &ing),
            vec![
                "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
                "spec.rules[0].http.paths[0].path: Invalid value: \"foo\": must be an absolute path",
                "spec.rules[0].http.paths[1].path: Invalid value: \"/a//b\": must not contain '//'",
                "spec.rules[0].http.paths[1].backend.service.name: Invalid value: \"Web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                "spec.rules[0].http.paths[1].backend: Required value: port name or number is required",
                "spec.rules[0].http.paths[2].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
                "spec.rules[0].http.paths[2].backend: Invalid value: \"\": resource or service backend is required",
                "spec.rules[0].http.paths[3].pathType: Required value: pathType must be specified",
            ]
        );
        let ing = json!({"metadata": {"name": "i"}, "spec": {}});
        assert_eq!(
            create("networking.k8s.io", "Ingress", &ing),
            vec![
                "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
            ]
        );
    }

    #[test]
    fn rbac_rules() {
        let role = json!({"metadata": {"name": "r"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"]},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]});
        assert_eq!(
            create("rbac.authorization.k8s.io", "Role", &role),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resources: Required value: resource rules must supply at least one resource",
                "rules[2].nonResourceURLs: Invalid value: []string{\"/metrics\"}: namespaced rules cannot apply to non-resource URLs",
            ]
        );
        let crb = json!({"metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "x"}]});
        assert_eq!(
            create("rbac.authorization.k8s.io", "ClusterRoleBinding", &crb),
            vec![
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[0].namespace: Required value",
                "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
        let old = json!({"metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}});
        let mut new = old.clone();
        new["roleRef"]["name"] = json!("other");
        assert_eq!(
            update("rbac.authorization.k8s.io", "RoleBinding", &new, &old),
            vec![
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef"
            ]
        );
    }

    #[test]
    fn priority_class_rules() {
        let pc = json!({"metadata": {"name": "huge"}, "value": 2000000000});
        assert_eq!(
            create("scheduling.k8s.io", "PriorityClass", &pc),
            vec![
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
            ]
        );
        let pc = json!({"metadata": {"name": "system-mine"}, "value": 5});
        assert_eq!(
            create("scheduling.k8s.io", "PriorityClass", &pc),
            vec![
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"
            ]
        );
        let old = json!({"metadata": {"name": "p"}, "value": 5});
        let new = json!({"metadata": {"name": "p"}, "value": 6, "preemptionPolicy": "Never"});
        assert_eq!(
            update("scheduling.k8s.io", "PriorityClass", &new, &old),
            vec![
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"Never\": field is immutable",
            ]
        );
    }

    #[test]
    fn events_are_judged_by_the_request_version() {
        let bodies = |errs: Vec<FieldError>| -> Vec<String> {
            errs.iter()
                .map(|e| format!("{}: {}", e.field, e.body()))
                .collect()
        };
        // A new-style event without its required fields, through events.k8s.io/v1.
        let bare = json!({"metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}});
        assert_eq!(
            bodies(validate_event(&bare, None, "events.k8s.io", "v1")),
            [
                "eventTime: Required value",
                "type: Invalid value: \"\": has invalid value: ",
            ]
        );
        let mut new = bare.clone();
        new["eventTime"] = json!("2025-01-01T00:00:00.000000Z");
        new["type"] = json!("Normal");
        new["count"] = json!(3);
        assert_eq!(
            bodies(validate_event(&new, None, "events.k8s.io", "v1"))
                .into_iter()
                .filter(|e| !e.contains("name part must consist"))
                .collect::<Vec<_>>(),
            [
                // As kube: the empty name is also judged as a qualified name.
                "reportingController: Required value",
                "reportingController: Invalid value: \"\": name part must be non-empty",
                "reportingInstance: Required value",
                "action: Required value",
                "reason: Required value",
                "count: Invalid value: \"\": needs to be unset",
            ]
        );
        // The same through core/v1 names its field reportingComponent and stops there.
        assert_eq!(
            bodies(validate_event(&new, None, "", "v1"))[0],
            "reportingComponent: Required value"
        );
        // Old-style core events only need matching namespaces.
        assert!(validate_event(&bare, None, "", "v1").is_empty());
        let mut elsewhere = bare.clone();
        elsewhere["involvedObject"]["namespace"] = json!("other");
        assert_eq!(
            bodies(validate_event(&elsewhere, None, "", "v1")),
            ["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]
        );
        // Updates through events.k8s.io/v1 may not change what happened.
        let mut changed = bare.clone();
        changed["message"] = json!("new");
        assert_eq!(
            bodies(validate_event(&changed, Some(&bare), "", "v1")),
            Vec::<String>::new()
        );
        assert_eq!(
            validate_event(&changed, Some(&bare), "events.k8s.io", "v1")
                .iter()
                .map(|e| e.field.as_str())
                .collect::<Vec<_>>(),
            ["message"]
        );
    }

    #[test]
    fn hpa_and_lease_rules() {
        let hpa = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"name": "a/b"},
            "minReplicas": 0, "maxReplicas": 0, "metrics": [{"type": "Resource"}, {"type": "Cpu"}]}});
        assert_eq!(
            strs(&validate_create(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                &hpa
            )),
            vec![
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
                "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                "spec.scaleTargetRef.kind: Required value",
                "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
                "spec.metrics[0].resource: Required value: must populate information for the given metric source",
                "spec.metrics[1].type: Unsupported value: \"Cpu\": supported values: \"Object\", \"Pods\", \"Resource\", \"External\", \"ContainerResource\"",
            ]
        );
        let hpa = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"},
            "minReplicas": 3, "maxReplicas": 2}});
        assert_eq!(
            strs(&validate_create(
                "autoscaling",
                "v1",
                "HorizontalPodAutoscaler",
                &hpa
            )),
            vec![
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"
            ]
        );
        let lease = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}});
        assert_eq!(
            create("coordination.k8s.io", "Lease", &lease),
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
    }

    // -----------------------------------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------------------------------

    #[test]
    fn quantity_values_round_up_like_go() {
        let v = |s: &str| Quantity::parse(s).map(|q| (q.int_value(), q.milli_value()));
        assert_eq!(v("100m"), Ok((1, 100)));
        assert_eq!(v("1.5"), Ok((2, 1500)));
        assert_eq!(v("1Mi"), Ok((1_048_576, 1_048_576_000)));
        assert_eq!(v("1n"), Ok((1, 1)));
        assert_eq!(v("0"), Ok((0, 0)));
        assert_eq!(v("2"), Ok((2, 2000)));
    }

    #[test]
    fn quantity_canonical_forms() {
        let cases = [
            ("0", "0"),
            ("1000m", "1"),
            ("100m", "100m"),
            ("1.5", "1500m"),
            ("0.5Gi", "512Mi"),
            ("1024Mi", "1Gi"),
            ("1536Ki", "1536Ki"),
            ("2048Ki", "2Mi"),
            ("1k", "1k"),
            ("1000", "1k"),
            ("1e3", "1e3"),
            ("12e-1", "1200e-3"),
            ("0.0000000001", "1n"),
            ("-1", "-1"),
            ("+1", "+1"),
            ("1M", "1M"),
            ("1Ki", "1Ki"),
            ("512", "512"),
            ("100Ki", "100Ki"),
            ("3Mi", "3Mi"),
            (".5", "500m"),
            ("00010", "00010"),
            ("1E", "1E"),
            ("100E", "100E"),
        ];
        for (input, want) in cases {
            let q = Quantity::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(q.to_go_string(), want, "{input}");
        }
        for (bad, want) in [
            ("", QUANTITY_FORMAT_ERR),
            ("abc", QUANTITY_FORMAT_ERR),
            ("1x", QUANTITY_FORMAT_ERR),
            ("1Qi", QUANTITY_FORMAT_ERR),
            ("1Mb", QUANTITY_FORMAT_ERR),
            ("1ki", QUANTITY_SUFFIX_ERR),
            ("1e", QUANTITY_SUFFIX_ERR),
        ] {
            assert_eq!(Quantity::parse(bad).err(), Some(want), "{bad}");
        }
        let q = |s: &str| Quantity::parse(s).unwrap();
        assert_eq!(q("1").cmp(&q("1000m")), Ordering::Equal);
        assert_eq!(q("1Gi").cmp(&q("1G")), Ordering::Greater);
        assert_eq!(q("999m").cmp(&q("1")), Ordering::Less);
        assert_eq!(q("1e1000").cmp(&q("1")), Ordering::Greater);
        assert!(!q("1.5").is_whole());
        assert!(q("0.000").is_whole());
    }

    #[test]
    fn value_helpers() {
        assert!(is_valid_port_name("http").is_empty());
        assert_eq!(
            is_valid_port_name("-a--b-12345678901"),
            vec![
                "must be no more than 15 characters",
                "must not contain consecutive hyphens",
                "must not begin or end with a hyphen"
            ]
        );
        assert_eq!(
            is_valid_port_name("123"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert!(parse_ip_sloppy("010.001.1.1").is_some());
        assert!(parse_ip_sloppy("1.2.3").is_none());
        assert!(parse_ip_sloppy("::1").is_some());
        assert!(parse_ip_sloppy("fe80::1%eth0").is_none());
        assert!(parse_cidr_sloppy("10.0.0.0/8").is_some());
        assert!(parse_cidr_sloppy("10.0.0.0/33").is_none());
        assert!(parse_cidr_sloppy("2001:db8::/129").is_none());
        let mut errs = Vec::new();
        validate_non_special_ip("127.0.0.1", &Path::new("ip"), &mut errs);
        validate_non_special_ip("169.254.1.1", &Path::new("ip"), &mut errs);
        assert_eq!(
            strs(&errs),
            vec![
                "ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "ip: Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
            ]
        );
        assert_eq!(go_map(None), "map[string]string(nil)");
        assert_eq!(
            go_label_selector(Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "y"]}]})
            )),
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"a\", Operator:\"In\", Values:[]string{\"x\", \"y\"}}}}"
        );
        assert_eq!(go_label_selector(None), "null");
        assert_eq!(
            Path::new("").child("a").index(1).key("b").child("c").0,
            "a[1][b].c"
        );
        assert!(is_valid_sysctl_name("net.ipv4.ip_forward"));
        assert!(is_valid_sysctl_name("kernel/shm_rmid_forced"));
        assert!(!is_valid_sysctl_name("net..a"));
        assert_eq!(go_parse_duration("1h2m3.5s"), Ok(()));
        assert_eq!(
            go_parse_duration(""),
            Err("time: invalid duration \"\"".to_string())
        );
        assert_eq!(base64_decode("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decoded_len("aGVsbG8="), 5);
    }

    #[test]
    fn never_panics_on_odd_input() {
        let kinds = [
            ("", "Pod"),
            ("", "PodTemplate"),
            ("", "ReplicationController"),
            ("", "Service"),
            ("", "ConfigMap"),
            ("", "Secret"),
            ("", "Namespace"),
            ("", "Node"),
            ("", "PersistentVolume"),
            ("", "PersistentVolumeClaim"),
            ("apps", "Deployment"),
            ("apps", "ReplicaSet"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("networking.k8s.io", "Ingress"),
            ("rbac.authorization.k8s.io", "Role"),
            ("rbac.authorization.k8s.io", "ClusterRole"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            ("scheduling.k8s.io", "PriorityClass"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("coordination.k8s.io", "Lease"),
        ];
        let garbage = json!([1, "x", null, true, 1.5, -7, [], {}, [null], {"a": null}]);
        let odd_containers = json!([1, "x", null, {"name": 5, "image": [], "ports": "a", "env": [1, {"name": 1, "valueFrom": "x"}],
            "resources": {"limits": {"cpu": [1], "memory": {"a": 1}}, "requests": "x", "claims": [1]},
            "volumeMounts": [1, {"name": null}], "livenessProbe": {"httpGet": {"port": [1]}, "periodSeconds": "1"},
            "securityContext": {"runAsUser": "x", "capabilities": {"add": [1]}}}]);
        let mut objects = vec![
            json!({}),
            json!({"spec": "x", "metadata": 5, "data": [1], "rules": "x"}),
            json!({"spec": {"containers": "x", "template": 5, "selector": [1], "ports": {"a": 1},
                            "volumes": [1, {"name": 1, "secret": "x"}], "type": 5, "schedule": 7,
                            "jobTemplate": "x", "accessModes": "x", "capacity": [1], "rules": [1, {"http": "x"}],
                            "scaleTargetRef": 1, "metrics": [1], "taints": [1], "podCIDRs": [1]}}),
            json!({"spec": {"template": {"metadata": {"labels": [1]}, "spec": {"containers": odd_containers.clone(),
                            "initContainers": odd_containers.clone(), "affinity": {"nodeAffinity": "x", "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [1]}},
                            "topologySpreadConstraints": [1, {"labelSelector": "x"}], "dnsConfig": {"nameservers": [1]},
                            "tolerations": [1], "securityContext": {"sysctls": [1]}}}}}),
            json!({"spec": {"containers": odd_containers, "selector": {"matchExpressions": [1, {"operator": 5}]},
                            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": [1], "maxUnavailable": {"a": 1}}},
                            "resources": {"requests": {"storage": [1]}}, "clusterIPs": [1, 2, 3], "ipFamilies": [1]}}),
            json!({"data": {"a": 1}, "binaryData": {"b": "!!!"}, "stringData": {"c": 1}, "type": "kubernetes.io/dockercfg"}),
            json!({"spec": {"resources": {"limits": {"cpu": "1e-2147483648", "memory": "99999999999999999999999999999999999999999Ei"}}}}),
        ];
        for g in garbage.as_array().unwrap() {
            objects.push(json!({"spec": g}));
            objects.push(json!({"spec": {"template": {"spec": g}}}));
        }
        for (group, kind) in kinds {
            for obj in &objects {
                let _ = validate_create(group, "v1", kind, obj);
                for old in &objects {
                    let _ = validate_update(group, "v1", kind, obj, old);
                }
                let _ = validate_update(group, "v1", kind, obj, &json!("not an object"));
            }
        }
        for s in [
            "",
            "-",
            "+",
            ".",
            "e",
            "1e",
            "0x1",
            "1..2",
            "1e99999999999",
            "1e-99999999999",
            "1Ei",
            "8Ei",
            "9999999999999999999999999999999999999999999",
            "0.00000000000000000000000000000000000000000000001",
            "123456789012345678901234567890.123456789",
        ] {
            if let Ok(q) = Quantity::parse(s) {
                let _ = q.to_go_string();
                let _ = q.value();
                let _ = q.is_whole();
            }
        }
        for s in [
            "TZ=",
            "TZ=UTC",
            "CRON_TZ=x *",
            "@every",
            "@every -",
            "1-,",
            ",,,",
            "*/",
            "-1 * * * *",
            "99999999999999999999 * * * *",
        ] {
            let _ = parse_cron_standard(s);
        }
    }
}
