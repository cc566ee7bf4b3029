//! The three PATCH types of the Kubernetes API, over `serde_json::Value`, with kube-apiserver's
//! semantics and error messages:
//!
//! - [`PatchType::Json`]: RFC 6902 JSON patch as implemented by `gopkg.in/evanphx/json-patch.v4`
//!   (which kube-apiserver uses), including its quirks: negative array indices count from the
//!   end, `replace` of a missing object member adds it, `copy` from a missing member copies
//!   `null`, at most 10 000 operations and 3 MiB of accumulated `copy` output.
//! - [`PatchType::Merge`]: RFC 7386 JSON merge patch (evanphx `MergePatch`).
//! - [`PatchType::StrategicMerge`]: Kubernetes strategic merge patch, a port of the server side
//!   of `k8s.io/apimachinery/pkg/util/strategicpatch` (`StrategicMergeMapPatch`), with the
//!   `$patch`, `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`
//!   directives. The `patchStrategy`/`patchMergeKey` struct tags of the Go types are supplied
//!   by a callback; [`builtin_list_strategy`] knows those of the built-in types.
//!
//! Element order of merged lists follows Go exactly: items named in the patch take the patch's
//! order and are interleaved with the server-only items by the live order. In particular an item
//! that is new (not in the live list) is placed *before* the server-only items that follow it in
//! the comparison, e.g. adding container `c` to `[a, b]` without `$setElementOrder` gives
//! `[c, a, b]`, as kube-apiserver does (kubectl sends `$setElementOrder` to avoid this).
//!
//! Unlike Go (which relies on decoding into typed structs afterwards to drop them), no `$`
//! directive and no `null` coming from a strategic merge patch ever reaches the result.
//!
//! Every error is a [`PatchError`], whose `code` is the HTTP status kube-apiserver answers with.

use serde_json::{Map, Number, Value};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// The deepest nesting (objects and arrays) accepted in a patch document; deeper documents are
/// refused with an error instead of risking the stack. A JSON patch may not nest the object it
/// produces deeper than this either (or than the original object already was).
pub const MAX_DEPTH: usize = 100;

/// kube-apiserver's limit on the number of operations in one JSON patch
/// (`maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// kube-apiserver's default limit on the bytes a JSON patch may add through `copy`
/// operations (`--json-patch-max-copy-bytes`, `jsonpatch.AccumulatedCopySizeLimit`).
pub const JSON_PATCH_MAX_COPY_BYTES: usize = 3 * 1024 * 1024;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

const ERR_BAD_JSON_DOC: &str = "invalid JSON document";
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";
const ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER_LIST: &str =
    "invalid patch format of setElementOrder list";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// The kind of a PATCH request, chosen by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value; parameters such as `; charset=utf-8`
    /// are ignored. `None` for anything else (kube answers 415 Unsupported Media Type).
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media_type = ct.split(';').next().unwrap_or_default().trim();
        [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge]
            .into_iter()
            .find(|t| media_type.eq_ignore_ascii_case(t.content_type()))
    }

    /// The media type of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// How a strategic merge patch treats a list field (Go's `patchStrategy`/`patchMergeKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListStrategy {
    /// `patchStrategy:"merge" patchMergeKey:"<key>"`: a list of objects identified by `key`;
    /// patch elements are merged into the live element with the same key, or added.
    Merge { key: &'static str },
    /// `patchStrategy:"merge"` without a key: a list of scalars with set semantics
    /// (e.g. `metadata.finalizers`).
    MergePrimitives,
    /// The patch's list replaces the live one (same as no strategy). Returned for a field that
    /// holds an object, it means `patchStrategy:"replace"` on that object: the patch's object
    /// replaces the live one instead of being merged into it.
    Replace,
}

/// A patch that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    /// The error text, as kube-apiserver's Go code words it where known.
    pub message: String,
    /// The HTTP status kube-apiserver answers with: 400 (malformed patch), 413 (too many JSON
    /// patch operations), 422 (a JSON patch that does not apply; kube's `Status.message` is then
    /// the generic "the server rejected our request due to an error in our request") or 500
    /// (strategic merge patch errors kube does not classify, reason `InternalError`).
    pub code: u16,
}

impl PatchError {
    fn new(code: u16, message: impl Into<String>) -> Self {
        PatchError {
            message: message.into(),
            code,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatchError {}

/// Applies `patch` (the raw request body) of type `kind` to `original` and returns the patched
/// document. `original` is not modified.
///
/// `merge_keys` is consulted by strategic merge patches only: it receives the object field names
/// from the root to a field (array indices left out; inside an element of a merged list the path
/// continues from the list field, e.g. `["spec", "containers", "ports"]`) and returns the
/// field's [`ListStrategy`]; `None` means "replace". Pass [`builtin_list_strategy`] for the
/// built-in types.
pub fn apply_patch(
    original: &Value,
    patch: &[u8],
    kind: PatchType,
    merge_keys: &dyn Fn(&[&str]) -> Option<ListStrategy>,
) -> Result<Value, PatchError> {
    let patch = parse_patch(patch)?;
    if value_depth(&patch) > MAX_DEPTH {
        return Err(too_deep());
    }
    match kind {
        PatchType::Json => json_patch(original, patch),
        PatchType::Merge => merge_patch(original, patch),
        PatchType::StrategicMerge => strategic_merge_patch(original, patch, merge_keys),
    }
}

/// The `patchStrategy`/`patchMergeKey` of the built-in Kubernetes types (k8s.io/api), matched
/// on the end of `path` so that pod specs are recognized wherever they are embedded (pods, pod
/// templates of deployments, replica sets, stateful sets, daemon sets, jobs, cron jobs, ...).
///
/// Not expressible by path alone (so not returned): `patchStrategy:"replace"` of
/// `PodDisruptionBudget.spec.selector`, and CustomResourceDefinition `status.conditions`, which
/// has no strategy although every other built-in `status.conditions` merges by `type`.
pub fn builtin_list_strategy(path: &[&str]) -> Option<ListStrategy> {
    use ListStrategy::{Merge, MergePrimitives};
    let merge = |key: &'static str| Some(Merge { key });
    match path {
        // ServiceAccount.secrets
        ["secrets"] => merge("name"),
        // ComponentStatus.conditions
        ["conditions"] => merge("type"),
        // {Validating,Mutating}WebhookConfiguration.webhooks[].matchConditions
        ["webhooks"] => merge("name"),
        ["webhooks", "matchConditions"] => merge("name"),
        [.., parent, field] => match (*parent, *field) {
            // ObjectMeta (objects and templates)
            ("metadata", "finalizers") => Some(MergePrimitives),
            ("metadata", "ownerReferences") => merge("uid"),
            // PodSpec
            ("spec", "containers" | "initContainers" | "ephemeralContainers") => merge("name"),
            ("spec", "volumes") => merge("name"),
            ("spec", "imagePullSecrets") => merge("name"),
            ("spec", "hostAliases") => merge("ip"),
            ("spec", "topologySpreadConstraints") => merge("topologyKey"),
            ("spec", "schedulingGates") => merge("name"),
            ("spec", "resourceClaims") => merge("name"),
            // Container / EphemeralContainer
            ("containers" | "initContainers" | "ephemeralContainers", "ports") => {
                merge("containerPort")
            }
            ("containers" | "initContainers" | "ephemeralContainers", "env") => merge("name"),
            ("containers" | "initContainers" | "ephemeralContainers", "volumeMounts") => {
                merge("mountPath")
            }
            ("containers" | "initContainers" | "ephemeralContainers", "volumeDevices") => {
                merge("devicePath")
            }
            // ServiceSpec.ports
            ("spec", "ports") => merge("port"),
            // NodeSpec.podCIDRs
            ("spec", "podCIDRs") => Some(MergePrimitives),
            // CSINodeSpec.drivers
            ("spec", "drivers") => merge("name"),
            // {Validating,Mutating}AdmissionPolicySpec
            ("spec", "matchConditions" | "variables") => merge("name"),
            // Status of pods, nodes, deployments, jobs, services, PVCs, namespaces, ...
            ("status", "conditions") => merge("type"),
            // NodeStatus.addresses
            ("status", "addresses") => merge("type"),
            // PodStatus
            ("status", "podIPs" | "hostIPs") => merge("ip"),
            ("status", "resourceClaimStatuses") => merge("name"),
            // ResourceClaimStatus.reservedFor
            ("status", "reservedFor") => merge("uid"),
            _ => None,
        },
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn parse_patch(patch: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(patch).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            too_deep()
        } else {
            // validateAndTranscodePatch: `json.Valid` failed.
            PatchError::bad_request("invalid JSON patch")
        }
    })
}

fn too_deep() -> PatchError {
    PatchError::bad_request(format!(
        "patch nesting exceeds the maximum depth of {MAX_DEPTH}"
    ))
}

fn check_depth(depth: usize) -> Result<(), PatchError> {
    if depth > MAX_DEPTH {
        Err(too_deep())
    } else {
        Ok(())
    }
}

/// How deeply objects and arrays nest in `v` (a scalar is 0, `{}` is 1), computed without
/// recursion.
fn value_depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Object(m) => {
                max = max.max(depth);
                stack.extend(m.values().map(|c| (c, depth + 1)));
            }
            Value::Array(a) => {
                max = max.max(depth);
                stack.extend(a.iter().map(|c| (c, depth + 1)));
            }
            _ => {}
        }
    }
    max
}

/// The JSON type name Go's `encoding/json` uses in `UnmarshalTypeError`s.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The Go type (`reflect.TypeOf(...).String()`) a decoded JSON value has.
fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `fmt` `%v` rendering of a decoded JSON value (`map[a:1 b:[x y]]`).
fn go_fmt(v: &Value) -> String {
    let mut out = String::new();
    go_fmt_into(v, &mut out, 0);
    out
}

fn go_fmt_into(v: &Value, out: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_fmt_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_fmt_into(e, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                go_fmt_into(e, out, depth + 1);
            }
            out.push(']');
        }
    }
}

fn go_fmt_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    let abs = f.abs();
    if f != 0.0 && !(1e-4..1e21).contains(&abs) {
        // %v switches to %e notation, with a sign and at least two exponent digits.
        let s = format!("{f:e}");
        if let Some((mantissa, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{f}")
}

/// Go's `%s` of an `interface{}` holding a decoded JSON value.
fn go_fmt_s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        Value::Array(_) | Value::Object(_) => go_fmt(v),
        other => format!("%!s({}={})", go_type_name(other), go_fmt(other)),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON patch (RFC 6902, evanphx/json-patch v4)
// ---------------------------------------------------------------------------------------------

fn json_patch(original: &Value, patch: Value) -> Result<Value, PatchError> {
    let ops = match patch {
        // `null` decodes to an empty patch.
        Value::Null => return Ok(original.clone()),
        Value::Array(ops) => ops,
        other => {
            return Err(PatchError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                json_kind(&other)
            )));
        }
    };
    if let Some(bad) = ops.iter().find(|op| !(op.is_object() || op.is_null())) {
        return Err(PatchError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            json_kind(bad)
        )));
    }
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::new(
            413,
            format!(
                "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                ops.len()
            ),
        ));
    }
    if !(original.is_object() || original.is_array()) {
        return Err(PatchError::unprocessable(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.partialDoc",
            json_kind(original)
        )));
    }
    let mut doc = original.clone();
    let limit = MAX_DEPTH.max(value_depth(original));
    let mut copied = 0usize;
    let no_fields = Map::new();
    for op in &ops {
        let op = op.as_object().unwrap_or(&no_fields);
        let kind = match op.get("op") {
            Some(Value::String(s)) => s.as_str(),
            _ => "unknown",
        };
        let result = match kind {
            "add" => jp_add(&mut doc, op, limit),
            "remove" => jp_remove(&mut doc, op),
            "replace" => jp_replace(&mut doc, op, limit),
            "move" => jp_move(&mut doc, op, limit),
            "test" => jp_test(&doc, op),
            "copy" => jp_copy(&mut doc, op, limit, &mut copied),
            other => Err(format!("Unexpected kind: {other}")),
        };
        result.map_err(PatchError::unprocessable)?;
    }
    Ok(doc)
}

enum OpFieldError {
    Missing,
    NotString(&'static str),
}

fn op_field<'a>(op: &'a Map<String, Value>, field: &str) -> Result<&'a str, OpFieldError> {
    match op.get(field) {
        None | Some(Value::Null) => Err(OpFieldError::Missing),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(OpFieldError::NotString(json_kind(other))),
    }
}

/// `Operation.Path()`'s error text.
fn path_error(e: OpFieldError) -> String {
    match e {
        OpFieldError::Missing => "operation missing path field: missing value".to_string(),
        OpFieldError::NotString(k) => {
            format!("json: cannot unmarshal {k} into Go value of type string")
        }
    }
}

/// `Operation.From()`'s error text.
fn from_error(e: OpFieldError) -> String {
    match e {
        OpFieldError::Missing => "operation, missing from field: missing value".to_string(),
        OpFieldError::NotString(k) => {
            format!("json: cannot unmarshal {k} into Go value of type string")
        }
    }
}

/// Splits a JSON pointer into the decoded tokens leading to the container and the decoded last
/// token, as evanphx's `findObject` does (the part before the first `/` is ignored; a pointer
/// without `/`, including `""`, addresses nothing).
fn split_pointer(path: &str) -> Option<(Vec<String>, String)> {
    let segments: Vec<&str> = path.split('/').collect();
    let (last, rest) = segments.split_last()?;
    if rest.is_empty() {
        return None;
    }
    let parts = rest[1..].iter().map(|s| decode_token(s)).collect();
    Some((parts, decode_token(last)))
}

/// RFC 6901 unescaping: `~1` is `/`, `~0` is `~`, left to right.
fn decode_token(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.peek() {
                Some('1') => {
                    out.push('/');
                    chars.next();
                }
                Some('0') => {
                    out.push('~');
                    chars.next();
                }
                _ => out.push('~'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The object or array the tokens lead to; `None` if some token is missing, `null`, a scalar,
/// or not a valid index.
fn find_container<'a>(doc: &'a mut Value, parts: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for part in parts {
        let next = match cur {
            Value::Object(m) => m.get_mut(part)?,
            Value::Array(a) => {
                let idx = array_index(a.len(), part).ok()?;
                a.get_mut(idx)?
            }
            _ => return None,
        };
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        cur = next;
    }
    Some(cur)
}

/// Go's `strconv.Atoi`, with its error text.
fn go_atoi(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {s:?}: {why}")
    })
}

fn invalid_index(idx: i64) -> String {
    format!("Unable to access invalid index: {idx}: invalid index referenced")
}

/// The index of an existing element (negative indices count from the end).
fn array_index(len: usize, key: &str) -> Result<usize, String> {
    let idx = go_atoi(key)?;
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut adjusted = idx;
    if adjusted < 0 {
        if adjusted < -len {
            return Err(invalid_index(idx));
        }
        adjusted += len;
    }
    if adjusted >= len {
        return Err(invalid_index(adjusted));
    }
    usize::try_from(adjusted).map_err(|_| invalid_index(idx))
}

/// The value at `key` in a container; `None` for a missing member or a `null`.
fn container_get<'a>(con: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match con {
        Value::Object(m) => Ok(m.get(key).filter(|v| !v.is_null())),
        Value::Array(a) => {
            let idx = array_index(a.len(), key)?;
            Ok(a.get(idx).filter(|v| !v.is_null()))
        }
        _ => Err("invalid state detected".to_string()),
    }
}

fn container_add(con: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(value);
                return Ok(());
            }
            let idx = go_atoi(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = i64::try_from(a.len()).unwrap_or(i64::MAX).saturating_add(1);
            let mut adjusted = idx;
            if adjusted >= size {
                return Err(invalid_index(idx));
            }
            if adjusted < 0 {
                if adjusted < -size {
                    return Err(invalid_index(idx));
                }
                adjusted += size;
            }
            let at = usize::try_from(adjusted).map_err(|_| invalid_index(idx))?;
            a.insert(at, value);
            Ok(())
        }
        _ => Err("invalid state detected".to_string()),
    }
}

fn container_remove(con: &mut Value, key: &str) -> Result<Value, String> {
    match con {
        Value::Object(m) => m
            .remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: missing value")),
        Value::Array(a) => {
            let idx = array_index(a.len(), key)?;
            Ok(a.remove(idx))
        }
        _ => Err("invalid state detected".to_string()),
    }
}

fn check_insert_depth(tokens: usize, value: &Value, limit: usize) -> Result<(), String> {
    if tokens.saturating_add(value_depth(value)) > limit {
        return Err(format!(
            "the patched object would be nested deeper than {limit} levels"
        ));
    }
    Ok(())
}

fn jp_add(doc: &mut Value, op: &Map<String, Value>, limit: usize) -> Result<(), String> {
    let path = op_field(op, "path")
        .map_err(|_| "add operation failed to decode path: missing value".to_string())?;
    let missing =
        || format!("add operation does not apply: doc is missing path: \"{path}\": missing value");
    let (parts, key) = split_pointer(path).ok_or_else(missing)?;
    let con = find_container(doc, &parts).ok_or_else(missing)?;
    let value = op.get("value").cloned().unwrap_or(Value::Null);
    check_insert_depth(parts.len() + 1, &value, limit)?;
    container_add(con, &key, value).map_err(|e| format!("error in add for path: '{path}': {e}"))
}

fn jp_remove(doc: &mut Value, op: &Map<String, Value>) -> Result<(), String> {
    let path = op_field(op, "path")
        .map_err(|_| "remove operation failed to decode path: missing value".to_string())?;
    let missing = || {
        format!("remove operation does not apply: doc is missing path: \"{path}\": missing value")
    };
    let (parts, key) = split_pointer(path).ok_or_else(missing)?;
    let con = find_container(doc, &parts).ok_or_else(missing)?;
    container_remove(con, &key)
        .map(|_| ())
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn jp_replace(doc: &mut Value, op: &Map<String, Value>, limit: usize) -> Result<(), String> {
    let path = op_field(op, "path")
        .map_err(|e| format!("replace operation failed to decode path: {}", path_error(e)))?;
    if path.is_empty() {
        return match op.get("value") {
            Some(v @ (Value::Object(_) | Value::Array(_))) => {
                check_insert_depth(0, v, limit)?;
                *doc = v.clone();
                Ok(())
            }
            _ => Err("replace operation value must be object or array".to_string()),
        };
    }
    let missing =
        || format!("replace operation does not apply: doc is missing path: {path}: missing value");
    let (parts, key) = split_pointer(path).ok_or_else(missing)?;
    let con = find_container(doc, &parts).ok_or_else(missing)?;
    let value = op.get("value").cloned().unwrap_or(Value::Null);
    check_insert_depth(parts.len() + 1, &value, limit)?;
    match con {
        // evanphx v4 does not check that the member exists: replace adds it.
        Value::Object(m) => {
            m.insert(key, value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = array_index(a.len(), &key).map_err(|_| {
                format!(
                    "replace operation does not apply: doc is missing key: {path}: missing value"
                )
            })?;
            if let Some(slot) = a.get_mut(idx) {
                *slot = value;
            }
            Ok(())
        }
        _ => Err("invalid state detected".to_string()),
    }
}

fn jp_move(doc: &mut Value, op: &Map<String, Value>, limit: usize) -> Result<(), String> {
    let from = op_field(op, "from")
        .map_err(|e| format!("move operation failed to decode from: {}", from_error(e)))?;
    let missing_from = || {
        format!("move operation does not apply: doc is missing from path: {from}: missing value")
    };
    let (parts, key) = split_pointer(from).ok_or_else(missing_from)?;
    let con = find_container(doc, &parts).ok_or_else(missing_from)?;
    container_get(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let value =
        container_remove(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;

    let path = op_field(op, "path")
        .map_err(|e| format!("move operation failed to decode path: {}", path_error(e)))?;
    let missing_path = || {
        format!(
            "move operation does not apply: doc is missing destination path: {path}: missing value"
        )
    };
    let (parts, key) = split_pointer(path).ok_or_else(missing_path)?;
    let con = find_container(doc, &parts).ok_or_else(missing_path)?;
    check_insert_depth(parts.len() + 1, &value, limit)?;
    container_add(con, &key, value).map_err(|e| format!("error in move for path: '{path}': {e}"))
}

fn jp_test(doc: &Value, op: &Map<String, Value>) -> Result<(), String> {
    let path = op_field(op, "path")
        .map_err(|e| format!("test operation failed to decode path: {}", path_error(e)))?;
    let failed = || format!("testing value {path} failed: test failed");
    let expected = op.get("value").filter(|v| !v.is_null());
    if path.is_empty() {
        return if expected == Some(doc) {
            Ok(())
        } else {
            Err(failed())
        };
    }
    let missing =
        || format!("test operation does not apply: is missing path: {path}: missing value");
    let (parts, key) = split_pointer(path).ok_or_else(missing)?;
    // find_container needs `&mut`; tests only read, so walk a shared reference instead.
    let con = find_container_ref(doc, &parts).ok_or_else(missing)?;
    let actual =
        container_get(con, &key).map_err(|e| format!("error in test for path: '{path}': {e}"))?;
    if actual == expected {
        Ok(())
    } else {
        Err(failed())
    }
}

fn find_container_ref<'a>(doc: &'a Value, parts: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for part in parts {
        let next = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(array_index(a.len(), part).ok()?)?,
            _ => return None,
        };
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        cur = next;
    }
    Some(cur)
}

fn jp_copy(
    doc: &mut Value,
    op: &Map<String, Value>,
    limit: usize,
    copied: &mut usize,
) -> Result<(), String> {
    let from = op_field(op, "from")
        .map_err(|e| format!("copy operation failed to decode from: {}", from_error(e)))?;
    let missing_from = || {
        format!("copy operation does not apply: doc is missing from path: {from}: missing value")
    };
    let (parts, key) = split_pointer(from).ok_or_else(missing_from)?;
    let con = find_container_ref(doc, &parts).ok_or_else(missing_from)?;
    // A missing member copies as `null` (evanphx v4).
    let value = container_get(con, &key)
        .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
        .cloned()
        .unwrap_or(Value::Null);

    let path = op_field(op, "path")
        .map_err(|_| "copy operation failed to decode path: missing value".to_string())?;
    let missing_path = || {
        format!(
            "copy operation does not apply: doc is missing destination path: {path}: missing value"
        )
    };
    let (parts, key) = split_pointer(path).ok_or_else(missing_path)?;
    let con = find_container(doc, &parts).ok_or_else(missing_path)?;

    let size = if value.is_null() {
        0
    } else {
        serde_json::to_vec(&value)
            .map(|v| v.len())
            .unwrap_or_default()
    };
    *copied = copied.saturating_add(size);
    if *copied > JSON_PATCH_MAX_COPY_BYTES {
        return Err(format!(
            "Unable to complete the copy, the accumulated size increase of copy is {}, exceeding the limit {JSON_PATCH_MAX_COPY_BYTES}",
            *copied
        ));
    }
    check_insert_depth(parts.len() + 1, &value, limit)?;
    container_add(con, &key, value)
        .map_err(|e| format!("error while adding value during copy: {e}"))
}

// ---------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7386, evanphx/json-patch v4 MergePatch)
// ---------------------------------------------------------------------------------------------

fn merge_patch(original: &Value, patch: Value) -> Result<Value, PatchError> {
    match patch {
        Value::Object(patch) => match original {
            Value::Object(doc) => {
                let mut doc = doc.clone();
                merge_docs(&mut doc, patch, 1)?;
                Ok(Value::Object(doc))
            }
            Value::Null => Err(PatchError::internal("Invalid JSON Document")),
            _ => {
                let mut patch = Value::Object(patch);
                prune_nulls(&mut patch, 1)?;
                Ok(patch)
            }
        },
        Value::Array(_) => {
            let mut patch = patch;
            prune_nulls(&mut patch, 1)?;
            Ok(patch)
        }
        _ => Err(PatchError::bad_request("Invalid JSON Patch")),
    }
}

fn merge_docs(
    doc: &mut Map<String, Value>,
    patch: Map<String, Value>,
    depth: usize,
) -> Result<(), PatchError> {
    check_depth(depth)?;
    for (k, mut v) in patch {
        if v.is_null() {
            doc.remove(&k);
            continue;
        }
        match doc.remove(&k) {
            None | Some(Value::Null) => {
                prune_nulls(&mut v, depth + 1)?;
                doc.insert(k, v);
            }
            Some(Value::Object(mut cur)) => match v {
                Value::Object(p) => {
                    merge_docs(&mut cur, p, depth + 1)?;
                    doc.insert(k, Value::Object(cur));
                }
                // A non-object patch value replaces an object as is.
                other => {
                    doc.insert(k, other);
                }
            },
            Some(_) => {
                prune_nulls(&mut v, depth + 1)?;
                doc.insert(k, v);
            }
        }
    }
    Ok(())
}

/// Drops `null` members of objects, recursively (through arrays too; `null` array elements
/// stay).
fn prune_nulls(v: &mut Value, depth: usize) -> Result<(), PatchError> {
    match v {
        Value::Object(m) => {
            check_depth(depth)?;
            m.retain(|_, c| !c.is_null());
            for c in m.values_mut() {
                prune_nulls(c, depth + 1)?;
            }
        }
        Value::Array(a) => {
            check_depth(depth)?;
            for c in a.iter_mut() {
                prune_nulls(c, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch, server side)
// ---------------------------------------------------------------------------------------------

fn strategic_merge_patch(
    original: &Value,
    patch: Value,
    merge_keys: &dyn Fn(&[&str]) -> Option<ListStrategy>,
) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Object(m) => m,
        // `null` decodes to a nil map: nothing to merge.
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )));
        }
    };
    let Value::Object(original) = original else {
        return Err(PatchError::bad_request(ERR_BAD_JSON_DOC));
    };
    let smp = Smp { merge_keys };
    let mut path = Vec::new();
    let merged = smp.merge_map(original.clone(), patch, &mut path, 1)?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

/// The JSON type of a value as Go's `reflect.TypeOf` tells decoded values apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Array,
    Object,
}

fn ty(v: &Value) -> Ty {
    match v {
        Value::Null => Ty::Null,
        Value::Bool(_) => Ty::Bool,
        Value::Number(n) if n.is_f64() => Ty::Float,
        Value::Number(_) => Ty::Int,
        Value::String(_) => Ty::Str,
        Value::Array(_) => Ty::Array,
        Value::Object(_) => Ty::Object,
    }
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE_MARKER
        || k == RETAIN_KEYS_DIRECTIVE
        || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// Go's `extractKey`: the list field named by a `$prefix/<field>` directive key.
fn extract_key(s: &str, prefix: &str) -> Result<String, PatchError> {
    match s.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field.to_string()),
        _ => Err(PatchError::bad_request(
            if prefix == SET_ELEMENT_ORDER_PREFIX {
                ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER_LIST
            } else {
                ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST
            },
        )),
    }
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    PatchError::internal(format!(
        "expected a {expected}, but received a {}",
        go_type_name(actual)
    ))
}

const GO_MAP: &str = "map[string]interface {}";
const GO_SLICE: &str = "[]interface {}";

fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(&Value::Object(m.clone()))
    ))
}

fn bad_patch_type(directive: &Value, m: &Map<String, Value>) -> PatchError {
    PatchError::internal(format!(
        "unknown patch type: {} in map: {}",
        go_fmt_s(directive),
        go_fmt(&Value::Object(m.clone()))
    ))
}

/// Removes what must not reach the result from a patch value that is stored as is: `null`
/// members (Go's `discardNullValuesFromPatch`), objects carrying `$patch` (Go's
/// `removeDirectives`; except that `$patch: replace` on an object keeps the object's other
/// members) and other directive keys. `None`: drop the value.
fn sanitize_value(v: Value, depth: usize) -> Result<Option<Value>, PatchError> {
    match v {
        Value::Object(mut m) => {
            check_depth(depth)?;
            if let Some(directive) = m.remove(DIRECTIVE_MARKER)
                && directive.as_str() != Some(REPLACE_DIRECTIVE)
            {
                return Ok(None);
            }
            Ok(Some(Value::Object(sanitize_map(m, depth)?)))
        }
        Value::Array(a) => {
            check_depth(depth)?;
            Ok(Some(Value::Array(sanitize_list(a, depth)?)))
        }
        other => Ok(Some(other)),
    }
}

fn sanitize_map(m: Map<String, Value>, depth: usize) -> Result<Map<String, Value>, PatchError> {
    let mut out = Map::new();
    for (k, v) in m {
        if v.is_null() || is_directive_key(&k) {
            continue;
        }
        if let Some(v) = sanitize_value(v, depth + 1)? {
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn sanitize_list(a: Vec<Value>, depth: usize) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(a.len());
    for v in a {
        if v.as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            continue;
        }
        if let Some(v) = sanitize_value(v, depth + 1)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// Go's `sliceElementType`: the common type of the elements of the lists.
fn slice_element_type(slices: &[&[Value]]) -> Result<Ty, PatchError> {
    let mut prev: Option<Ty> = None;
    for s in slices {
        for v in s.iter() {
            let t = ty(v);
            match prev {
                None => {
                    if t == Ty::Array {
                        return Err(PatchError::unprocessable(ERR_NO_LIST_OF_LISTS));
                    }
                    prev = Some(t);
                }
                Some(p) if p != t => {
                    let all =
                        Value::Array(slices.iter().map(|s| Value::Array(s.to_vec())).collect());
                    return Err(PatchError::internal(format!(
                        "list element types are not identical: {}",
                        go_fmt(&all)
                    )));
                }
                Some(_) => {}
            }
        }
    }
    prev.ok_or_else(|| PatchError::internal("no elements in any of the given slices"))
}

/// A canonical text of a value, to compare and hash values (Go compares them with `==`).
fn canon(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// What identifies a list element for ordering: its merge key's value for objects (`null` when
/// absent, as Go's lookup yields `nil`), the value itself for scalars.
fn identity(item: &Value, key: &str, kind: Ty) -> String {
    if kind == Ty::Object {
        match item.as_object().and_then(|m| m.get(key)) {
            Some(v) => canon(v),
            None => "null".to_string(),
        }
    } else {
        canon(item)
    }
}

/// First position of each identity in `list` (Go's `index`).
fn positions(list: &[Value], key: &str, kind: Ty) -> HashMap<String, usize> {
    let mut out = HashMap::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        out.entry(identity(item, key, kind)).or_insert(i);
    }
    out
}

fn validate_merge_key_in_lists(key: &str, lists: &[&[Value]]) -> Result<(), PatchError> {
    for list in lists {
        for item in list.iter() {
            let Some(m) = item.as_object() else {
                return Err(bad_arg_type(GO_MAP, item));
            };
            if !m.contains_key(key) {
                return Err(no_merge_key(m, key));
            }
        }
    }
    Ok(())
}

/// Go's `extractToDeleteItems`: (items to keep, `$patch: delete` items).
fn extract_to_delete_items(l: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut keep = Vec::with_capacity(l.len());
    let mut delete = Vec::new();
    for v in l {
        let Some(m) = v.as_object() else {
            return Err(bad_arg_type(GO_MAP, &v));
        };
        if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
            delete.push(v);
        } else {
            keep.push(v);
        }
    }
    Ok((keep, delete))
}

/// Go's `normalizeSliceOrder`: sorts `to_sort` by the positions of its items in `order`.
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    key: &str,
    kind: Ty,
) -> Result<Vec<Value>, PatchError> {
    let (to_sort, to_delete) = if kind == Ty::Object {
        validate_merge_key_in_lists(key, &[&to_sort, order])?;
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    let pos = positions(order, key, kind);
    let mut items: Vec<(Option<usize>, Value)> = to_sort
        .into_iter()
        .map(|v| (pos.get(&identity(&v, key, kind)).copied(), v))
        .collect();
    go_stable_sort(&mut items, &|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x < y,
        _ => true,
    });
    let mut out: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
    out.extend(to_delete);
    Ok(out)
}

/// Go's `mergeSortedSlice`: interleaves the sorted server-only items (`left`) into the sorted
/// patch items (`right`) using the positions in the live list.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    key: &str,
    kind: Ty,
) -> Vec<Value> {
    let pos = positions(server_order, key, kind);
    let with_pos = |v: Value| (pos.get(&identity(&v, key, kind)).copied(), v);
    let mut left = left.into_iter().map(with_pos).peekable();
    let mut right = right.into_iter().map(with_pos).peekable();
    let mut out = Vec::with_capacity(left.len() + right.len());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((l, _)), Some((r, _))) => matches!((l, r), (Some(l), Some(r)) if l < r),
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, v)) = next {
            out.push(v);
        }
    }
    out
}

/// Go's `normalizeElementOrder`.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    kind: Ty,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = normalize_slice_order(patch_items, patch_order, key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch_items,
        server_order,
        key,
        kind,
    ))
}

/// Go's `partitionPrimitivesByPresentInList` / `partitionMapsByPresentInList`: (items present
/// in `by`, the others).
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::with_capacity(merged.len());
    let mut absent = Vec::with_capacity(merged.len());
    if key.is_empty() {
        let set: HashSet<String> = by.iter().map(canon).collect();
        for v in merged {
            if set.contains(&canon(&v)) {
                present.push(v);
            } else {
                absent.push(v);
            }
        }
        return Ok((present, absent));
    }
    if merged.is_empty() {
        return Ok((present, absent));
    }
    let mut set = HashSet::with_capacity(by.len());
    for (i, b) in by.iter().enumerate() {
        let Some(m) = b.as_object() else {
            return Err(PatchError::internal(format!(
                "value for key {i} is not a map"
            )));
        };
        if let Some(k) = m.get(key) {
            set.insert(canon(k));
        }
    }
    for v in merged {
        let Some(m) = v.as_object() else {
            return Err(bad_arg_type(GO_MAP, &v));
        };
        let Some(k) = m.get(key) else {
            return Err(no_merge_key(m, key));
        };
        if set.contains(&canon(k)) {
            present.push(v);
        } else {
            absent.push(v);
        }
    }
    Ok((present, absent))
}

/// Go's `mergeKeyValueEqual`.
fn merge_key_value_equal(left: &Value, right: &Value, key: &str) -> Result<bool, PatchError> {
    if key.is_empty() {
        return Ok(left == right);
    }
    let Some(l) = left.as_object() else {
        return Err(bad_arg_type(GO_MAP, left));
    };
    let Some(r) = right.as_object() else {
        return Err(bad_arg_type(GO_MAP, right));
    };
    let Some(lv) = l.get(key) else {
        return Err(no_merge_key(l, key));
    };
    let Some(rv) = r.get(key) else {
        return Err(no_merge_key(r, key));
    };
    Ok(lv == rv)
}

/// Go's `validatePatchWithSetOrderList`: the patch list's items must appear in the
/// `$setElementOrder` list, in the same relative order.
fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    order: &[Value],
    key: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if key.is_empty() {
        patch_list.iter().collect()
    } else {
        let mut out = Vec::with_capacity(patch_list.len());
        for v in patch_list {
            let Some(m) = v.as_object() else {
                return Err(bad_arg_type(GO_MAP, v));
            };
            if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE) {
                out.push(v);
            }
        }
        out
    };
    let (mut pi, mut si) = (0, 0);
    while pi < non_delete.len() && si < order.len() {
        let item = non_delete[pi];
        if item
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(item, &order[si], key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < non_delete.len() && si >= order.len() {
        return Err(PatchError::internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_fmt(&Value::Array(patch_list.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

/// Go's `deleteMatchingEntries`: drops every element whose merge key equals `value`.
fn delete_matching_entries(
    original: Vec<Value>,
    key: &str,
    value: &Value,
) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(original.len());
    for (i, v) in original.into_iter().enumerate() {
        let Some(m) = v.as_object() else {
            return Err(PatchError::internal(format!(
                "value for key {i} is not a map"
            )));
        };
        if m.get(key) != Some(value) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Go's `mergeSliceWithSpecialElements`: applies the `$patch` elements of a list of objects;
/// returns the (possibly replaced) original and the patch's other elements.
fn merge_slice_with_special_elements(
    original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    depth: usize,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut original = original;
    let mut without = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Some(m) = v.as_object() else {
            return Err(bad_arg_type(GO_MAP, &v));
        };
        let Some(directive) = m.get(DIRECTIVE_MARKER) else {
            without.push(v);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let Some(value) = m.get(key) else {
                    return Err(no_merge_key(m, key));
                };
                original = delete_matching_entries(original, key, value)?;
            }
            // Keep looking at the other elements to prune any other `$patch` elements.
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(PatchError::internal(
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            _ => return Err(bad_patch_type(directive, m)),
        }
    }
    if replace {
        return Ok((sanitize_list(without, depth)?, Vec::new()));
    }
    Ok((original, without))
}

/// Splits a strategy into Go's (strategy is "merge", merge key).
fn list_meta(strategy: Option<ListStrategy>) -> (bool, &'static str) {
    match strategy {
        Some(ListStrategy::Merge { key }) => (true, key),
        Some(ListStrategy::MergePrimitives) => (true, ""),
        Some(ListStrategy::Replace) | None => (false, ""),
    }
}

struct Smp<'a> {
    merge_keys: &'a dyn Fn(&[&str]) -> Option<ListStrategy>,
}

impl Smp<'_> {
    fn strategy(&self, path: &[String]) -> Option<ListStrategy> {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        (self.merge_keys)(&path)
    }

    /// Go's `mergeMap`. `None`: the map is deleted (`$patch: delete`).
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        check_depth(depth)?;
        if let Some(directive) = patch.remove(DIRECTIVE_MARKER) {
            return match directive.as_str() {
                Some(REPLACE_DIRECTIVE) => Ok(Some(sanitize_map(patch, depth)?)),
                Some(DELETE_DIRECTIVE) => Ok(None),
                _ => {
                    patch.insert(DIRECTIVE_MARKER.to_string(), directive.clone());
                    Err(bad_patch_type(&directive, &patch))
                }
            };
        }

        // $retainKeys: clear the live fields missing from the list.
        if let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) {
            let Value::Array(list) = retain else {
                return Err(PatchError::bad_request(
                    ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS,
                ));
            };
            let keep: HashSet<&str> = list.iter().filter_map(Value::as_str).collect();
            for (k, v) in &patch {
                if v.is_null()
                    || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
                    || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
                {
                    continue;
                }
                if !keep.contains(k.as_str()) {
                    return Err(PatchError::bad_request(
                        ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS,
                    ));
                }
            }
            original.retain(|k, _| keep.contains(k.as_str()));
        }

        // $setElementOrder/<list>: merge the list now and order it.
        let order_keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        for order_key in order_keys {
            let order = patch.remove(&order_key).unwrap_or_default();
            let Value::Array(order) = order else {
                return Err(bad_arg_type(GO_SLICE, &order));
            };
            let field = extract_key(&order_key, SET_ELEMENT_ORDER_PREFIX)?;
            let original_list = match original.get(&field) {
                None => None,
                Some(Value::Array(a)) => Some(a.clone()),
                Some(other) => return Err(bad_arg_type(GO_SLICE, other)),
            };
            let patch_list = match patch.remove(&field) {
                None => None,
                Some(Value::Array(a)) => Some(a),
                Some(other) => return Err(bad_arg_type(GO_SLICE, &other)),
            };
            path.push(field.clone());
            let result = self.apply_element_order(original_list, patch_list, &order, path, depth);
            path.pop();
            if let Some(list) = result? {
                original.insert(field, Value::Array(list));
            }
        }

        // Everything else; the deletion lists first so that the result does not depend on the
        // order of the patch's keys.
        let mut entries: Vec<(String, Value)> = patch.into_iter().collect();
        entries.sort_by_key(|(k, _)| !k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX));
        for (k, v) in entries {
            let (k, is_delete_list) = if k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                (extract_key(&k, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
            } else {
                (k, false)
            };
            if v.is_null() {
                original.remove(&k);
                continue;
            }
            let Some(live) = original.remove(&k) else {
                if !is_delete_list && let Some(v) = sanitize_value(v, depth + 1)? {
                    original.insert(k, v);
                }
                continue;
            };
            if ty(&live) != ty(&v) {
                if is_delete_list {
                    original.insert(k, live);
                } else if let Some(v) = sanitize_value(v, depth + 1)? {
                    original.insert(k, v);
                }
                continue;
            }
            let merged = match (live, v) {
                (Value::Object(live), Value::Object(p)) => {
                    path.push(k.clone());
                    let result = if self.strategy(path) == Some(ListStrategy::Replace) {
                        sanitize_map(p, depth + 1).map(Some)
                    } else {
                        self.merge_map(live, p, path, depth + 1)
                    };
                    path.pop();
                    result?.map(Value::Object)
                }
                (Value::Array(live), Value::Array(p)) => {
                    path.push(k.clone());
                    let (is_merge, key) = list_meta(self.strategy(path));
                    let result = if is_merge || is_delete_list {
                        self.merge_slice(live, p, key, is_delete_list, path, depth + 1)
                    } else {
                        sanitize_list(p, depth + 1)
                    };
                    path.pop();
                    Some(Value::Array(result?))
                }
                (_, v) => Some(v),
            };
            if let Some(merged) = merged {
                original.insert(k, merged);
            }
        }
        Ok(Some(original))
    }

    /// The part of Go's `mergePatchIntoOriginal` that handles one `$setElementOrder` list;
    /// `path` ends with the list field. `None`: neither side has the list.
    fn apply_element_order(
        &self,
        original_list: Option<Vec<Value>>,
        patch_list: Option<Vec<Value>>,
        order: &[Value],
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<Option<Vec<Value>>, PatchError> {
        let (is_merge, key) = list_meta(self.strategy(path));
        validate_patch_with_set_order_list(patch_list.as_deref().unwrap_or_default(), order, key)?;
        if original_list.is_none() && patch_list.is_none() {
            return Ok(None);
        }
        let server_order = original_list.clone().unwrap_or_default();
        let kind = slice_element_type(&[&server_order, patch_list.as_deref().unwrap_or_default()])?;
        let merged = match (original_list, patch_list) {
            (Some(live), None) => live,
            (None, Some(p)) => sanitize_list(p, depth + 1)?,
            (Some(live), Some(p)) => {
                if is_merge {
                    self.merge_slice(live, p, key, false, path, depth + 1)?
                } else {
                    sanitize_list(p, depth + 1)?
                }
            }
            (None, None) => return Ok(None),
        };
        let (patch_items, server_only) = partition(merged, order, key)?;
        normalize_element_order(patch_items, server_only, order, &server_order, key, kind).map(Some)
    }

    /// Go's `mergeSlice`; `path` ends with the list field.
    fn merge_slice(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        is_delete_list: bool,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<Vec<Value>, PatchError> {
        check_depth(depth)?;
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let kind = slice_element_type(&[&original, &patch])?;
        let (merged, patch_order, server_order) = if kind != Ty::Object {
            if is_delete_list {
                let delete: HashSet<String> = patch.iter().map(canon).collect();
                return Ok(original
                    .into_iter()
                    .filter(|v| !delete.contains(&canon(v)))
                    .collect());
            }
            // Union; the order is settled by normalize_element_order below.
            let mut seen = HashSet::with_capacity(original.len() + patch.len());
            let merged: Vec<Value> = original
                .iter()
                .chain(patch.iter())
                .filter(|v| seen.insert(canon(v)))
                .cloned()
                .collect();
            (merged, patch, original)
        } else {
            if key.is_empty() {
                return Err(PatchError::internal(format!(
                    "cannot merge lists without merge key for {}",
                    path.join(".")
                )));
            }
            let (original, patch) = merge_slice_with_special_elements(original, patch, key, depth)?;
            let merged = self.merge_slice_without_special_elements(
                original.clone(),
                patch.clone(),
                key,
                path,
                depth,
            )?;
            (merged, patch, original)
        };
        let (patch_items, server_only) = partition(merged, &patch_order, key)?;
        normalize_element_order(
            patch_items,
            server_only,
            &patch_order,
            &server_order,
            key,
            kind,
        )
    }

    /// Go's `mergeSliceWithoutSpecialElements`: merges each patch element into the live element
    /// with the same merge key, or appends it.
    fn merge_slice_without_special_elements(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<Vec<Value>, PatchError> {
        let mut original = original;
        let mut index: HashMap<String, usize> = HashMap::with_capacity(original.len());
        for (i, v) in original.iter().enumerate() {
            if let Some(k) = v.as_object().and_then(|m| m.get(key)) {
                index.entry(canon(k)).or_insert(i);
            }
        }
        for v in patch {
            let Value::Object(p) = v else {
                return Err(bad_arg_type(GO_MAP, &v));
            };
            let Some(k) = p.get(key) else {
                return Err(no_merge_key(&p, key));
            };
            let id = canon(k);
            match index.get(&id) {
                Some(&i) => {
                    let live = match original.get_mut(i).map(Value::take) {
                        Some(Value::Object(m)) => m,
                        Some(other) => return Err(bad_arg_type(GO_MAP, &other)),
                        None => Map::new(),
                    };
                    let merged = self.merge_map(live, p, path, depth + 1)?;
                    if let Some(slot) = original.get_mut(i) {
                        *slot = Value::Object(merged.unwrap_or_default());
                    }
                }
                None => {
                    if let Some(v) = sanitize_value(Value::Object(p), depth + 1)? {
                        original.push(v);
                        index.insert(id, original.len() - 1);
                    }
                }
            }
        }
        Ok(original)
    }
}

// ---------------------------------------------------------------------------------------------
// Go's sort.SliceStable (insertion sort of blocks of 20, then SymMerge), ported so that lists
// come out in the same order as kube's even where the comparison is not a strict order.
// ---------------------------------------------------------------------------------------------

fn go_stable_sort<T>(data: &mut [T], less: &dyn Fn(&T, &T) -> bool) {
    let n = data.len();
    let mut block = 20usize;
    let (mut a, mut b) = (0usize, block);
    while b <= n {
        go_insertion_sort(data, a, b, less);
        a = b;
        b += block;
    }
    go_insertion_sort(data, a, n, less);
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            go_sym_merge(data, a, a + block, b, less);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            go_sym_merge(data, a, m, n, less);
        }
        block *= 2;
    }
}

fn go_insertion_sort<T>(data: &mut [T], a: usize, b: usize, less: &dyn Fn(&T, &T) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&data[j], &data[j - 1]) {
            data.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn go_sym_merge<T>(data: &mut [T], a: usize, m: usize, b: usize, less: &dyn Fn(&T, &T) -> bool) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&data[h], &data[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = a;
        while k + 1 < i {
            data.swap(k, k + 1);
            k += 1;
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&data[m], &data[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            data.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&data[p - c], &data[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        go_rotate(data, start, m, end);
    }
    if a < start && start < mid {
        go_sym_merge(data, a, start, mid, less);
    }
    if mid < end && end < b {
        go_sym_merge(data, mid, end, b, less);
    }
}

fn go_rotate<T>(data: &mut [T], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            go_swap_range(data, m - i, m, j);
            i -= j;
        } else {
            go_swap_range(data, m - i, m + j - i, i);
            j -= i;
        }
    }
    go_swap_range(data, m - i, m, i);
}

fn go_swap_range<T>(data: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        data.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    fn smp(original: Value, patch: Value) -> Value {
        apply_patch(
            &original,
            patch.to_string().as_bytes(),
            PatchType::StrategicMerge,
            &builtin_list_strategy,
        )
        .expect("strategic merge patch applies")
    }

    fn smp_err(original: Value, patch: Value) -> PatchError {
        apply_patch(
            &original,
            patch.to_string().as_bytes(),
            PatchType::StrategicMerge,
            &builtin_list_strategy,
        )
        .expect_err("strategic merge patch fails")
    }

    /// The schema of apimachinery's strategicpatch tests (`MergeItem`).
    fn merge_item_strategy(path: &[&str]) -> Option<ListStrategy> {
        match path.last().copied() {
            Some("mergingList" | "retainKeysMergingList") => {
                Some(ListStrategy::Merge { key: "name" })
            }
            Some("mergingIntList") => Some(ListStrategy::MergePrimitives),
            _ => None,
        }
    }

    fn smp_item(original: Value, patch: Value) -> Value {
        apply_patch(
            &original,
            patch.to_string().as_bytes(),
            PatchType::StrategicMerge,
            &merge_item_strategy,
        )
        .expect("strategic merge patch applies")
    }

    fn json_patch(original: Value, patch: Value) -> Result<Value, PatchError> {
        apply_patch(
            &original,
            patch.to_string().as_bytes(),
            PatchType::Json,
            &|_| None,
        )
    }

    fn merge(original: Value, patch: Value) -> Result<Value, PatchError> {
        apply_patch(
            &original,
            patch.to_string().as_bytes(),
            PatchType::Merge,
            &|_| None,
        )
    }

    fn assert_no_directives(v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    assert!(!is_directive_key(k), "directive {k} in output: {v}");
                    assert!(!c.is_null(), "null {k} in output: {v}");
                    assert_no_directives(c);
                }
            }
            Value::Array(a) => a.iter().for_each(assert_no_directives),
            _ => {}
        }
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|c| c["name"].as_str().expect("a name"))
            .collect()
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "web", "tier": "front"},
                         "finalizers": ["a", "b"]},
            "spec": {
                "containers": [
                    {"name": "app", "image": "app:1",
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                    {"name": "sidecar", "image": "sidecar:1"}
                ],
                "tolerations": [{"key": "k1", "operator": "Exists"}],
                "nodeSelector": {"disk": "ssd", "zone": "a"}
            }
        })
    }

    // --- content types ------------------------------------------------------------------------

    #[test]
    fn patch_type_from_content_type() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json;charset=UTF-8"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            None
        );
        assert_eq!(PatchType::from_content_type(""), None);
        for t in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
        }
    }

    #[test]
    fn patch_error_displays_message() {
        let e = smp_err(json!({}), json!([1]));
        assert_eq!(e.code, 400);
        assert_eq!(
            e.to_string(),
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().contains("cannot unmarshal"));
    }

    #[test]
    fn invalid_json_is_a_bad_request() {
        for kind in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            let e = apply_patch(&json!({}), b"{not json", kind, &|_| None).expect_err("invalid");
            assert_eq!((e.code, e.message.as_str()), (400, "invalid JSON patch"));
            let e = apply_patch(&json!({}), b"", kind, &|_| None).expect_err("empty");
            assert_eq!(e.code, 400);
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        for kind in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            // Deeper than serde_json's own limit, and deeper than ours.
            for n in [101, 120, 1000, 100_000] {
                let e = apply_patch(&json!({}), deep(n).as_bytes(), kind, &|_| None)
                    .expect_err("too deep");
                assert_eq!(e.code, 400, "{kind:?} {n}");
                assert!(e.message.contains("maximum depth"), "{}", e.message);
            }
        }
        // 100 levels are fine.
        let v = apply_patch(&json!({}), deep(100).as_bytes(), PatchType::Merge, &|_| {
            None
        })
        .expect("100 levels");
        assert_eq!(value_depth(&v), 100);
        let v = apply_patch(
            &json!({}),
            deep(100).as_bytes(),
            PatchType::StrategicMerge,
            &|_| None,
        )
        .expect("100 levels");
        assert_eq!(value_depth(&v), 100);
    }

    // --- JSON patch ---------------------------------------------------------------------------

    #[test]
    fn json_patch_operations() {
        let doc = json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "list": [1, 2, 3]});
        let out = json_patch(
            doc,
            json!([
                {"op": "test", "path": "/metadata/name", "value": "x"},
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "replace", "path": "/metadata/labels/a", "value": "one"},
                {"op": "remove", "path": "/list/0"},
                {"op": "add", "path": "/list/-", "value": 4},
                {"op": "add", "path": "/list/1", "value": 9},
                {"op": "copy", "from": "/metadata/labels", "path": "/copied"},
                {"op": "move", "from": "/metadata/name", "path": "/name"},
            ]),
        )
        .expect("applies");
        assert_eq!(
            out,
            json!({
                "metadata": {"labels": {"a": "one", "b": "2"}},
                "list": [2, 9, 3, 4],
                "copied": {"a": "one", "b": "2"},
                "name": "x"
            })
        );
    }

    #[test]
    fn json_patch_escaped_pointers() {
        let doc =
            json!({"metadata": {"annotations": {"example.com/a": "1", "m~n": "2", "~1": "3"}}});
        let out = json_patch(
            doc,
            json!([
                {"op": "test", "path": "/metadata/annotations/example.com~1a", "value": "1"},
                {"op": "replace", "path": "/metadata/annotations/example.com~1a", "value": "x"},
                {"op": "remove", "path": "/metadata/annotations/m~0n"},
                {"op": "replace", "path": "/metadata/annotations/~01", "value": "y"},
                {"op": "add", "path": "/metadata/annotations/a~1b~0c", "value": "z"},
            ]),
        )
        .expect("applies");
        assert_eq!(
            out,
            json!({"metadata": {"annotations": {"example.com/a": "x", "~1": "y", "a/b~c": "z"}}})
        );
        // "/" addresses the member named "".
        let out = json_patch(json!({}), json!([{"op": "add", "path": "/", "value": 1}]))
            .expect("applies");
        assert_eq!(out, json!({"": 1}));
    }

    #[test]
    fn json_patch_array_indices() {
        let doc = json!({"l": ["a", "b", "c"]});
        let out = json_patch(
            doc.clone(),
            json!([
                {"op": "remove", "path": "/l/-1"},
                {"op": "add", "path": "/l/-1", "value": "z"},
                {"op": "replace", "path": "/l/0", "value": "A"},
            ]),
        )
        .expect("negative indices count from the end");
        assert_eq!(out, json!({"l": ["A", "b", "z"]}));

        let e = json_patch(
            doc.clone(),
            json!([{"op": "add", "path": "/l/5", "value": 1}]),
        )
        .expect_err("out of range");
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "error in add for path: '/l/5': Unable to access invalid index: 5: invalid index referenced"
        );
        let e = json_patch(
            doc.clone(),
            json!([{"op": "add", "path": "/l/x", "value": 1}]),
        )
        .expect_err("not an index");
        assert_eq!(
            e.message,
            "error in add for path: '/l/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        let e = json_patch(doc.clone(), json!([{"op": "remove", "path": "/l/3"}]))
            .expect_err("out of range");
        assert_eq!(
            e.message,
            "error in remove for path: '/l/3': Unable to access invalid index: 3: invalid index referenced"
        );
        let e = json_patch(doc, json!([{"op": "replace", "path": "/l/3", "value": 1}]))
            .expect_err("out of range");
        assert_eq!(
            e.message,
            "replace operation does not apply: doc is missing key: /l/3: missing value"
        );
    }

    #[test]
    fn json_patch_failed_test_is_an_error() {
        let doc = json!({"metadata": {"name": "x", "labels": {"a": "1"}}});
        let e = json_patch(
            doc.clone(),
            json!([
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "test", "path": "/metadata/name", "value": "y"},
            ]),
        )
        .expect_err("test fails");
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "testing value /metadata/name failed: test failed"
        );

        // Objects compare structurally; null matches a missing member.
        json_patch(
            doc.clone(),
            json!([
                {"op": "test", "path": "/metadata/labels", "value": {"a": "1"}},
                {"op": "test", "path": "/metadata/missing", "value": null},
                {"op": "test", "path": "", "value": doc.clone()},
            ]),
        )
        .expect("tests pass");
        let e = json_patch(
            doc.clone(),
            json!([{"op": "test", "path": "/metadata/missing", "value": 1}]),
        )
        .expect_err("missing is not 1");
        assert_eq!(
            e.message,
            "testing value /metadata/missing failed: test failed"
        );
        let e = json_patch(doc, json!([{"op": "test", "path": "/nope/x", "value": 1}]))
            .expect_err("missing parent");
        assert_eq!(
            e.message,
            "test operation does not apply: is missing path: /nope/x: missing value"
        );
    }

    #[test]
    fn json_patch_errors() {
        let doc = json!({"a": {"b": 1}, "s": "str"});
        let cases = [
            (
                json!([{"op": "remove", "path": "/a/c"}]),
                "error in remove for path: '/a/c': Unable to remove nonexistent key: c: missing value",
            ),
            (
                json!([{"op": "add", "path": "/x/y/z", "value": 1}]),
                "add operation does not apply: doc is missing path: \"/x/y/z\": missing value",
            ),
            (
                json!([{"op": "add", "path": "/s/y", "value": 1}]),
                "add operation does not apply: doc is missing path: \"/s/y\": missing value",
            ),
            (
                json!([{"op": "add", "value": 1}]),
                "add operation failed to decode path: missing value",
            ),
            (
                json!([{"op": "replace", "path": 5, "value": 1}]),
                "replace operation failed to decode path: json: cannot unmarshal number into Go value of type string",
            ),
            (
                json!([{"op": "move", "path": "/b"}]),
                "move operation failed to decode from: operation, missing from field: missing value",
            ),
            (
                json!([{"op": "move", "from": "/a/zz", "path": "/b"}]),
                "error in move for path: 'zz': Unable to remove nonexistent key: zz: missing value",
            ),
            (
                json!([{"op": "copy", "from": "/a", "path": "/q/r"}]),
                "copy operation does not apply: doc is missing destination path: /q/r: missing value",
            ),
            (
                json!([{"op": "frob", "path": "/a"}]),
                "Unexpected kind: frob",
            ),
            (json!([{"path": "/a"}]), "Unexpected kind: unknown"),
            (json!([null]), "Unexpected kind: unknown"),
            (
                json!([{"op": "replace", "path": "", "value": 3}]),
                "replace operation value must be object or array",
            ),
        ];
        for (patch, message) in cases {
            let e = json_patch(doc.clone(), patch.clone()).expect_err("fails");
            assert_eq!(e.message, message, "{patch}");
            assert_eq!(e.code, 422, "{patch}");
        }
    }

    #[test]
    fn json_patch_body_must_be_an_array() {
        let e = json_patch(json!({}), json!({"op": "add", "path": "/a", "value": 1}))
            .expect_err("object body");
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        let e = json_patch(json!({}), json!(["add"])).expect_err("string operation");
        assert_eq!(
            e.message,
            "json: cannot unmarshal string into Go value of type jsonpatch.Operation"
        );
        // `null` is an empty patch.
        assert_eq!(
            json_patch(json!({"a": 1}), Value::Null),
            Ok(json!({"a": 1}))
        );
        assert_eq!(json_patch(json!({"a": 1}), json!([])), Ok(json!({"a": 1})));
    }

    #[test]
    fn json_patch_v4_quirks() {
        // replace of a missing member adds it; copy of a missing member copies null; a missing
        // value is null; replace of the root.
        let out = json_patch(
            json!({"a": 1}),
            json!([
                {"op": "replace", "path": "/b", "value": 2},
                {"op": "copy", "from": "/nope", "path": "/c"},
                {"op": "add", "path": "/d"},
            ]),
        )
        .expect("applies");
        assert_eq!(out, json!({"a": 1, "b": 2, "c": null, "d": null}));
        let out = json_patch(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": {"z": 0}}]),
        )
        .expect("root replace");
        assert_eq!(out, json!({"z": 0}));
    }

    #[test]
    fn json_patch_limits() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let e = json_patch(json!({"a": 1}), Value::Array(ops)).expect_err("too many");
        assert_eq!(e.code, 413);
        assert_eq!(
            e.message,
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        );

        let big = "x".repeat(1024 * 1024);
        let ops: Vec<Value> = (0..4)
            .map(|i| json!({"op": "copy", "from": "/big", "path": format!("/c{i}")}))
            .collect();
        let e = json_patch(json!({"big": big}), Value::Array(ops)).expect_err("copy limit");
        assert_eq!(e.code, 422);
        assert!(
            e.message.starts_with(
                "Unable to complete the copy, the accumulated size increase of copy is "
            ),
            "{}",
            e.message
        );

        // Growing the object deeper than the limit, one level at a time.
        let mut ops = Vec::new();
        let mut path = String::new();
        for _ in 0..MAX_DEPTH {
            path.push_str("/a");
            ops.push(json!({"op": "add", "path": path, "value": {}}));
        }
        let e = json_patch(json!({}), Value::Array(ops)).expect_err("too deep");
        assert_eq!(e.code, 422);
        assert!(
            e.message.contains("nested deeper than 100"),
            "{}",
            e.message
        );
    }

    #[test]
    fn json_patch_on_a_root_array() {
        let out = json_patch(
            json!([1, 2]),
            json!([{"op": "add", "path": "/0", "value": 0}]),
        )
        .expect("applies");
        assert_eq!(out, json!([0, 1, 2]));
        let e = json_patch(json!("str"), json!([])).expect_err("scalar document");
        assert_eq!(e.code, 422);
    }

    // --- merge patch --------------------------------------------------------------------------

    #[test]
    fn merge_patch_null_removes() {
        let out = merge(
            pod(),
            json!({"metadata": {"labels": {"tier": null, "new": "x"}}, "spec": {"nodeSelector": null}}),
        )
        .expect("applies");
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "x"}));
        assert!(out["spec"].get("nodeSelector").is_none());
        assert_eq!(out["spec"]["containers"], pod()["spec"]["containers"]);
    }

    #[test]
    fn merge_patch_rfc7386() {
        let original = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2], "s": "x"});
        let out = merge(
            original,
            json!({"a": "z", "c": {"f": null, "h": {"i": null, "j": 1}}, "l": [{"k": null}],
                   "s": {"t": null, "u": 1}, "n": {"o": null}}),
        )
        .expect("applies");
        assert_eq!(
            out,
            json!({"a": "z", "c": {"d": "e", "h": {"j": 1}}, "l": [{}], "s": {"u": 1}, "n": {}})
        );
        // An array replaces an object as is (evanphx does not prune it).
        let out = merge(json!({"a": {"b": 1}}), json!({"a": [{"x": null}]})).expect("applies");
        assert_eq!(out, json!({"a": [{"x": null}]}));
    }

    #[test]
    fn merge_patch_non_object_patches() {
        // An array patch replaces the document (with nulls pruned from its objects).
        assert_eq!(
            merge(json!({"a": 1}), json!([{"b": null}, 2])),
            Ok(json!([{}, 2]))
        );
        for patch in [json!(null), json!(5), json!("s"), json!(true)] {
            let e = merge(json!({"a": 1}), patch).expect_err("scalar patch");
            assert_eq!((e.code, e.message.as_str()), (400, "Invalid JSON Patch"));
        }
    }

    // --- strategic merge patch ----------------------------------------------------------------

    #[test]
    fn smp_merges_containers_by_name_keeping_others() {
        let out = smp(
            pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "image": "sidecar:2"}]}}),
        );
        let containers = &out["spec"]["containers"];
        assert_eq!(names(containers), ["app", "sidecar"]);
        assert_eq!(containers[0], pod()["spec"]["containers"][0]);
        assert_eq!(
            containers[1],
            json!({"name": "sidecar", "image": "sidecar:2"})
        );
        // The rest of the object is untouched.
        assert_eq!(out["metadata"], pod()["metadata"]);
        assert_eq!(out["spec"]["tolerations"], pod()["spec"]["tolerations"]);
    }

    #[test]
    fn smp_new_list_items_order_like_kube() {
        // Without $setElementOrder, kube places a new item before the server-only items.
        let out = smp(
            pod(),
            json!({"spec": {"containers": [{"name": "extra", "image": "extra:1"}]}}),
        );
        assert_eq!(
            names(&out["spec"]["containers"]),
            ["extra", "app", "sidecar"]
        );
        // After a patched live item, it stays after it.
        let out = smp(
            pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "image": "s:2"}, {"name": "extra"}]}}),
        );
        assert_eq!(
            names(&out["spec"]["containers"]),
            ["app", "sidecar", "extra"]
        );
    }

    #[test]
    fn smp_merges_env_and_ports_inside_containers() {
        let out = smp(
            pod(),
            json!({"spec": {"containers": [{
                "name": "app",
                "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]
            }]}}),
        );
        let app = &out["spec"]["containers"][0];
        assert_eq!(
            app["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(
            app["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}])
        );
        assert_eq!(app["image"], "app:1");
    }

    #[test]
    fn smp_delete_directive_in_list() {
        let out = smp(
            pod(),
            json!({"spec": {"containers": [
                {"name": "sidecar", "$patch": "delete"},
                {"name": "app", "env": [{"name": "A", "$patch": "delete"}]}
            ]}}),
        );
        assert_eq!(names(&out["spec"]["containers"]), ["app"]);
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "B", "value": "2"}])
        );
        assert_no_directives(&out);

        let e = smp_err(
            pod(),
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
        );
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            "map: map[$patch:delete] does not contain declared merge key: name"
        );
    }

    #[test]
    fn smp_replace_directive_in_list() {
        let out = smp(
            pod(),
            json!({"spec": {"containers": [
                {"$patch": "replace"},
                {"name": "only", "image": "only:1", "env": null}
            ]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "only", "image": "only:1"}])
        );
        assert_no_directives(&out);
    }

    #[test]
    fn smp_replace_directive_in_map() {
        let out = smp(
            pod(),
            json!({"spec": {"nodeSelector": {"$patch": "replace", "gpu": "yes"}}}),
        );
        assert_eq!(out["spec"]["nodeSelector"], json!({"gpu": "yes"}));
        let out = smp(
            pod(),
            json!({"metadata": {"labels": {"$patch": "replace"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({}));
        // On a map the original does not have, the content is set.
        let out = smp(
            json!({"spec": {}}),
            json!({"spec": {"nodeSelector": {"$patch": "replace", "a": "b"}}}),
        );
        assert_eq!(out, json!({"spec": {"nodeSelector": {"a": "b"}}}));
        assert_no_directives(&out);
    }

    #[test]
    fn smp_delete_directive_in_map() {
        let out = smp(
            pod(),
            json!({"spec": {"nodeSelector": {"$patch": "delete"}}}),
        );
        assert!(out["spec"].get("nodeSelector").is_none());
        let out = smp(
            json!({"spec": {}}),
            json!({"spec": {"affinity": {"$patch": "delete"}}}),
        );
        assert_eq!(out, json!({"spec": {}}));
        // At the root, the whole object.
        assert_eq!(smp(pod(), json!({"$patch": "delete"})), json!({}));
        // Unknown directives.
        let e = smp_err(
            pod(),
            json!({"spec": {"nodeSelector": {"$patch": "merge"}}}),
        );
        assert_eq!(
            e.message,
            "unknown patch type: merge in map: map[$patch:merge]"
        );
        let e = smp_err(
            pod(),
            json!({"spec": {"containers": [{"$patch": "merge"}]}}),
        );
        assert_eq!(
            e.message,
            "merging lists cannot yet be specified in the patch"
        );
        let e = smp_err(
            pod(),
            json!({"spec": {"containers": [{"name": "x", "$patch": 1}]}}),
        );
        assert_eq!(
            e.message,
            "unknown patch type: %!s(int64=1) in map: map[$patch:1 name:x]"
        );
    }

    #[test]
    fn smp_retain_keys() {
        let deployment = json!({"spec": {"replicas": 1, "strategy": {
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}});
        let out = smp(
            deployment.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}})
        );
        // Retained keys keep their live values; nulls and list directives may be outside the list.
        let out = smp(
            deployment.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type", "rollingUpdate"],
                                         "rollingUpdate": {"maxSurge": 2}, "other": null}}}),
        );
        assert_eq!(
            out["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}})
        );
        // Volumes: merge by name, each volume retaining only the listed keys.
        let out = smp(
            json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "secret": {"secretName": "s"}}]}}),
            json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "secret": {"secretName": "s"}}])
        );
        assert_no_directives(&out);

        let e = smp_err(
            deployment.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "invalid patch format of retainKeys")
        );
        let e = smp_err(
            deployment,
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
        );
        assert_eq!(e.message, "invalid patch format of retainKeys");
    }

    #[test]
    fn smp_set_element_order() {
        let out = smp(
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "new"}, {"name": "app"}],
                "containers": [{"name": "new", "image": "new:1"}]
            }}),
        );
        assert_eq!(names(&out["spec"]["containers"]), ["sidecar", "new", "app"]);
        assert_eq!(out["spec"]["containers"][0], pod()["spec"]["containers"][1]);
        assert_no_directives(&out);

        // Without the list itself in the patch: reorder only.
        let out = smp(
            pod(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}}),
        );
        assert_eq!(names(&out["spec"]["containers"]), ["sidecar", "app"]);

        // What kubectl sends to remove a container.
        let out = smp(
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [{"name": "sidecar", "$patch": "delete"}]
            }}),
        );
        assert_eq!(names(&out["spec"]["containers"]), ["app"]);

        // Primitives, together with a deletion list (kubectl replacing finalizer b with c).
        let out = smp(
            pod(),
            json!({"metadata": {
                "$setElementOrder/finalizers": ["a", "c"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
                "finalizers": ["c"]
            }}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
        assert_no_directives(&out);

        let e = smp_err(
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "sidecar"}, {"name": "app"}]
            }}),
        );
        assert!(
            e.message.contains("doesn't match $setElementOrder list"),
            "{}",
            e.message
        );
        let e = smp_err(pod(), json!({"spec": {"$setElementOrderX": []}}));
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "invalid patch format of setElementOrder list")
        );
    }

    #[test]
    fn smp_set_element_order_with_server_only_items() {
        // apimachinery's "set elements order in a list with server-only items 2" and "... 3".
        let out = smp_item(
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2}, {"name": 9},
                                   {"name": 3, "value": 3}, {"name": 4, "value": 4}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]}),
        );
        assert_eq!(
            out,
            json!({"mergingList": [{"name": 2, "value": 2}, {"name": 1, "other": "a"}, {"name": 9},
                                   {"name": 4, "value": 4}, {"name": 3, "value": 3}]})
        );
        let out = smp_item(
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2}, {"name": 7},
                                   {"name": 9}, {"name": 8}, {"name": 3, "value": 3}, {"name": 4, "value": 4}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]}),
        );
        let order: Vec<i64> = out["mergingList"]
            .as_array()
            .expect("list")
            .iter()
            .map(|e| e["name"].as_i64().expect("name"))
            .collect();
        assert_eq!(order, [2, 1, 7, 9, 8, 4, 3]);
        // "merge lists of maps" (three-way patch applied to the live object).
        let out = smp_item(
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
        );
        assert_eq!(
            out,
            json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"},
                                   {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]})
        );
        // "$setElementOrder contains item that is not present in the int list to be merged".
        let out = smp_item(
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
        );
        assert_eq!(out, json!({"mergingIntList": [3, 1]}));
    }

    #[test]
    fn smp_delete_from_primitive_list() {
        let out = smp(
            pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zzz"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert_no_directives(&out);
        // Works on lists without a merge strategy too, never adds the list.
        let out = smp_item(
            json!({"nonMergingIntList": [1, 2, 3], "foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2],
                   "$deleteFromPrimitiveList/mergingIntList": [3]}),
        );
        assert_eq!(out, json!({"nonMergingIntList": [1, 3], "foo": ["bar"]}));
        let e = smp_err(
            pod(),
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "invalid patch format of primitive list")
        );
    }

    #[test]
    fn smp_finalizers_union() {
        let out = smp(pod(), json!({"metadata": {"finalizers": ["b", "c", "c"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        // A new value alone goes first, as in kube.
        let out = smp(pod(), json!({"metadata": {"finalizers": ["c"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        // Into an object without finalizers.
        let out = smp(
            json!({"metadata": {"name": "x"}}),
            json!({"metadata": {"finalizers": ["f"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["f"]));
        // null removes the whole list.
        let out = smp(pod(), json!({"metadata": {"finalizers": null}}));
        assert!(out["metadata"].get("finalizers").is_none());
    }

    #[test]
    fn smp_replaces_lists_without_strategy() {
        let out = smp(
            pod(),
            json!({"spec": {"tolerations": [{"key": "k2", "operator": "Exists", "value": null}]}}),
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "k2", "operator": "Exists"}])
        );
        // Explicit Replace strategy behaves the same, and on a map replaces the map.
        let strategy = |path: &[&str]| match path {
            ["spec", "tolerations" | "nodeSelector"] => Some(ListStrategy::Replace),
            _ => None,
        };
        let out = apply_patch(
            &pod(),
            json!({"spec": {"tolerations": [], "nodeSelector": {"gpu": "yes"}}})
                .to_string()
                .as_bytes(),
            PatchType::StrategicMerge,
            &strategy,
        )
        .expect("applies");
        assert_eq!(out["spec"]["tolerations"], json!([]));
        assert_eq!(out["spec"]["nodeSelector"], json!({"gpu": "yes"}));
    }

    #[test]
    fn smp_maps_and_scalars() {
        let out = smp(
            pod(),
            json!({"metadata": {"labels": {"tier": null, "new": "x"}, "annotations": {"a": "b", "c": null}},
                   "spec": {"nodeSelector": "not-a-map", "restartPolicy": "Never"},
                   "status": {"phase": "Running", "nested": {"x": null, "y": {"$patch": "delete"}}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "x"}));
        assert_eq!(out["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(out["spec"]["nodeSelector"], "not-a-map");
        assert_eq!(out["spec"]["restartPolicy"], "Never");
        assert_eq!(out["status"], json!({"phase": "Running", "nested": {}}));
        assert_no_directives(&out);
        // An empty or null patch changes nothing.
        assert_eq!(smp(pod(), json!({})), pod());
        assert_eq!(smp(pod(), Value::Null), pod());
    }

    #[test]
    fn smp_no_directives_in_added_content() {
        let out = smp(
            json!({"spec": {}}),
            json!({"spec": {"containers": [
                {"name": "a", "$setElementOrder/env": [{"name": "X"}], "env": [{"name": "X", "value": null}],
                 "$retainKeys": ["name"], "$deleteFromPrimitiveList/args": ["x"]},
                {"name": "b", "$patch": "delete"}
            ], "template": {"$patch": "delete"}}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X"}]}]}})
        );
        let out = smp(
            pod(),
            json!({"spec": {"containers": [{"name": "new", "ports": [{"containerPort": 1, "$patch": "replace"}]}]}}),
        );
        assert_no_directives(&out);
    }

    #[test]
    fn smp_errors() {
        let e = smp_err(pod(), json!({"spec": {"containers": [{"image": "x"}]}}));
        assert_eq!(e.code, 500);
        assert_eq!(
            e.message,
            "map: map[image:x] does not contain declared merge key: name"
        );
        let e = smp_item_err(json!({"mergingList": [[1]]}), json!({"mergingList": [[2]]}));
        assert_eq!(
            (e.code, e.message.as_str()),
            (422, "lists of lists are not supported")
        );
        let e = smp_item_err(
            json!({"mergingIntList": [1]}),
            json!({"mergingIntList": ["a"]}),
        );
        assert_eq!(e.message, "list element types are not identical: [[1] [a]]");
        let e = smp_err(pod(), json!({"metadata": {"finalizers": [{"a": 1}]}}));
        assert_eq!(
            e.message,
            "list element types are not identical: [[a b] [map[a:1]]]"
        );
        let e = smp_item_err(
            json!({"mergingIntList": [{"a": 1}]}),
            json!({"mergingIntList": [{"a": 2}]}),
        );
        assert_eq!(
            e.message,
            "cannot merge lists without merge key for mergingIntList"
        );
        let e = smp_err(json!([1]), json!({}));
        assert_eq!((e.code, e.message.as_str()), (400, "invalid JSON document"));
        let e = smp_err(pod(), json!("x"));
        assert_eq!(
            e.message,
            "json: cannot unmarshal string into Go value of type map[string]interface {}"
        );
    }

    fn smp_item_err(original: Value, patch: Value) -> PatchError {
        apply_patch(
            &original,
            patch.to_string().as_bytes(),
            PatchType::StrategicMerge,
            &merge_item_strategy,
        )
        .expect_err("strategic merge patch fails")
    }

    #[test]
    fn smp_paths_given_to_merge_keys() {
        let seen = RefCell::new(Vec::<String>::new());
        let strategy = |path: &[&str]| {
            seen.borrow_mut().push(path.join("."));
            builtin_list_strategy(path)
        };
        let deployment = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "A", "value": "1"}]}]}}}});
        let out = apply_patch(
            &deployment,
            json!({"spec": {"template": {"metadata": {"labels": {"x": "y"}},
                   "spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "2"}]}]}}}})
                .to_string()
                .as_bytes(),
            PatchType::StrategicMerge,
            &strategy,
        )
        .expect("applies");
        // The new variable goes first, as in kube (no $setElementOrder).
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
        );
        let seen = seen.into_inner();
        for expected in [
            "spec",
            "spec.template",
            "spec.template.spec",
            "spec.template.spec.containers",
            "spec.template.spec.containers.env",
        ] {
            assert!(
                seen.iter().any(|p| p == expected),
                "{expected} not in {seen:?}"
            );
        }
    }

    #[test]
    fn builtin_strategies() {
        use ListStrategy::{Merge, MergePrimitives};
        let cases: &[(&[&str], Option<ListStrategy>)] = &[
            (&["spec", "containers"], Some(Merge { key: "name" })),
            (
                &["spec", "template", "spec", "initContainers"],
                Some(Merge { key: "name" }),
            ),
            (
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers",
                ],
                Some(Merge { key: "name" }),
            ),
            (
                &["spec", "ephemeralContainers"],
                Some(Merge { key: "name" }),
            ),
            (
                &["spec", "containers", "ports"],
                Some(Merge {
                    key: "containerPort",
                }),
            ),
            (
                &["spec", "template", "spec", "containers", "env"],
                Some(Merge { key: "name" }),
            ),
            (
                &["spec", "initContainers", "volumeMounts"],
                Some(Merge { key: "mountPath" }),
            ),
            (
                &["spec", "containers", "volumeDevices"],
                Some(Merge { key: "devicePath" }),
            ),
            (&["spec", "volumes"], Some(Merge { key: "name" })),
            (&["spec", "imagePullSecrets"], Some(Merge { key: "name" })),
            (&["spec", "hostAliases"], Some(Merge { key: "ip" })),
            (
                &["spec", "topologySpreadConstraints"],
                Some(Merge { key: "topologyKey" }),
            ),
            (&["spec", "resourceClaims"], Some(Merge { key: "name" })),
            (&["spec", "tolerations"], None),
            (&["spec", "readinessGates"], None),
            (&["spec", "containers", "args"], None),
            (&["spec", "ports"], Some(Merge { key: "port" })),
            (&["spec", "podCIDRs"], Some(MergePrimitives)),
            (&["metadata", "finalizers"], Some(MergePrimitives)),
            (
                &["spec", "template", "metadata", "finalizers"],
                Some(MergePrimitives),
            ),
            (&["metadata", "ownerReferences"], Some(Merge { key: "uid" })),
            (&["status", "conditions"], Some(Merge { key: "type" })),
            (&["status", "addresses"], Some(Merge { key: "type" })),
            (&["status", "podIPs"], Some(Merge { key: "ip" })),
            (&["status", "containerStatuses"], None),
            (&["secrets"], Some(Merge { key: "name" })),
            (&["webhooks"], Some(Merge { key: "name" })),
            (
                &["webhooks", "matchConditions"],
                Some(Merge { key: "name" }),
            ),
            (&["containers"], None),
            (&[], None),
        ];
        for (path, expected) in cases {
            assert_eq!(builtin_list_strategy(path), *expected, "{path:?}");
        }
    }

    // --- helpers ------------------------------------------------------------------------------

    #[test]
    fn go_stable_sort_matches_a_stable_sort() {
        let mut seed = 12345u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for n in [0, 1, 2, 19, 20, 21, 39, 40, 41, 100, 257, 1000] {
            let data: Vec<(usize, usize)> = (0..n).map(|i| (next() % 17, i)).collect();
            let mut ours = data.clone();
            go_stable_sort(&mut ours, &|a, b| a.0 < b.0);
            let mut std = data;
            std.sort_by_key(|e| e.0);
            assert_eq!(ours, std, "n = {n}");
        }
    }

    #[test]
    fn go_stable_sort_with_unknown_items_like_go() {
        // Go's insertion sort with an always-true comparison reverses the block.
        let mut items = vec![(None::<usize>, 0), (None, 1), (None, 2)];
        go_stable_sort(&mut items, &|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => x < y,
            _ => true,
        });
        let order: Vec<i32> = items.iter().map(|e| e.1).collect();
        assert_eq!(order, [2, 1, 0]);
    }

    #[test]
    fn go_formatting() {
        assert_eq!(
            go_fmt(&json!({"b": [1, 2.5, "x", null, true], "a": {"c": 1e21}})),
            "map[a:map[c:1e+21] b:[1 2.5 x <nil> true]]"
        );
        assert_eq!(go_fmt(&json!(0.00001)), "1e-05");
        assert_eq!(go_fmt(&json!(100.0)), "100");
        assert_eq!(go_fmt_s(&json!(true)), "%!s(bool=true)");
    }
}
