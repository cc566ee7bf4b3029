//! PATCH: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes' strategic
//! merge patch, over JSON values.

use serde_json::{Map, Value};

/// The patch formats of the Kubernetes API, by Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
}

impl PatchType {
    /// The patch type of a Content-Type header, parameters ignored.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            _ => None,
        }
    }
}

/// A patch that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatchError {}

fn err<T>(message: impl Into<String>) -> Result<T, PatchError> {
    Err(PatchError {
        message: message.into(),
    })
}

/// How a strategic merge patch treats a list field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// Elements are objects matched by this key and merged.
    Merge {
        /// The merge key.
        key: &'static str,
    },
    /// A list of scalars treated as a set (finalizers).
    MergePrimitives,
    /// The patch's list replaces the original.
    Replace,
}

/// The deepest nesting accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 100;

/// Applies `patch` to `original`.
pub fn apply_patch(
    original: &Value,
    patch: &[u8],
    kind: PatchType,
    strategy: &dyn Fn(&[&str]) -> Option<ListStrategy>,
) -> Result<Value, PatchError> {
    let patch: Value =
        serde_json::from_slice(patch).or_else(|e| err(format!("invalid patch: {e}")))?;
    match kind {
        PatchType::Json => json_patch(original, &patch),
        PatchType::Merge => {
            check_depth(&patch, 0)?;
            Ok(merge_patch(original, &patch))
        }
        PatchType::StrategicMerge => {
            check_depth(&patch, 0)?;
            let Value::Object(p) = &patch else {
                return err("a strategic merge patch must be a JSON object");
            };
            let mut path = Vec::new();
            strategic_map(original, p, &mut path, strategy)
        }
    }
}

fn check_depth(v: &Value, depth: usize) -> Result<(), PatchError> {
    if depth > MAX_DEPTH {
        return err(format!("patch is nested deeper than {MAX_DEPTH} levels"));
    }
    match v {
        Value::Array(a) => a.iter().try_for_each(|x| check_depth(x, depth + 1)),
        Value::Object(o) => o.values().try_for_each(|x| check_depth(x, depth + 1)),
        _ => Ok(()),
    }
}

/// RFC 7386.
pub fn merge_patch(original: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match original {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

fn pointer_tokens(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(vec![]);
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return err(format!("invalid JSON pointer {pointer:?}"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, PatchError> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    match token.parse::<usize>() {
        Ok(i) if i < len || (allow_end && i == len) => Ok(i),
        _ => err(format!("array index {token:?} is out of bounds")),
    }
}

fn get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, PatchError> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(o) => match o.get_mut(t) {
                Some(v) => v,
                None => return err(format!("doc is missing path: /{}", tokens.join("/"))),
            },
            Value::Array(a) => {
                let i = index(t, a.len(), false)?;
                &mut a[i]
            }
            _ => return err(format!("doc is missing path: /{}", tokens.join("/"))),
        };
    }
    Ok(cur)
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<Value, PatchError> {
    let Some((last, parent)) = tokens.split_last() else {
        return err("cannot remove the whole document");
    };
    match get_mut(doc, parent)? {
        Value::Object(o) => o.remove(last).map_or_else(
            || err(format!("unable to remove nonexistent key: {last}")),
            Ok,
        ),
        Value::Array(a) => {
            let i = index(last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => err("cannot remove from a scalar"),
    }
}

fn add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), PatchError> {
    let Some((last, parent)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent)? {
        Value::Object(o) => {
            o.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = index(last, a.len(), true)?;
            a.insert(i, value);
            Ok(())
        }
        _ => err("cannot add to a scalar"),
    }
}

/// RFC 6902.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return err("a JSON patch must be an array of operations");
    };
    let mut doc = original.clone();
    for op in ops {
        check_depth(op, 0)?;
        let name = op["op"].as_str().unwrap_or("");
        let path = pointer_tokens(op["path"].as_str().unwrap_or(""))?;
        let value = || {
            op.get("value")
                .cloned()
                .map_or_else(|| err(format!("operation {name} needs a value")), Ok)
        };
        let from = || pointer_tokens(op["from"].as_str().unwrap_or(""));
        match name {
            "add" => add(&mut doc, &path, value()?)?,
            "remove" => {
                remove(&mut doc, &path)?;
            }
            "replace" => {
                let target = get_mut(&mut doc, &path)?;
                *target = value()?;
            }
            "move" => {
                let moved = remove(&mut doc, &from()?)?;
                add(&mut doc, &path, moved)?;
            }
            "copy" => {
                let copied = get_mut(&mut doc, &from()?)?.clone();
                add(&mut doc, &path, copied)?;
            }
            "test" => {
                let actual = get_mut(&mut doc, &path)?;
                if *actual != value()? {
                    return err(format!(
                        "testing value /{} failed: test failed",
                        path.join("/")
                    ));
                }
            }
            other => return err(format!("unexpected kind: {other:?}")),
        }
    }
    Ok(doc)
}

const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";

fn strategic_map(
    original: &Value,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
    strategy: &dyn Fn(&[&str]) -> Option<ListStrategy>,
) -> Result<Value, PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch.clone();
            replaced.remove("$patch");
            return Ok(strip_directives(Value::Object(replaced)));
        }
        Some("delete") => return Ok(Value::Null),
        Some(other) => return err(format!("unknown patch directive {other:?}")),
        None => {}
    }
    let mut out = match original {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        path.push(k.clone());
        let merged = {
            let current = out.get(k).unwrap_or(&Value::Null);
            match v {
                Value::Object(p) => strategic_map(current, p, path, strategy)?,
                Value::Array(items) => {
                    let names: Vec<&str> = path.iter().map(String::as_str).collect();
                    strategic_list(current, items, patch, k, strategy(&names), path, strategy)?
                }
                scalar => scalar.clone(),
            }
        };
        path.pop();
        if merged.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), merged);
        }
    }
    // Deletions from primitive lists that the patch does not otherwise mention.
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM)
            && let (Some(Value::Array(list)), Some(gone)) = (out.get_mut(field), v.as_array())
        {
            list.retain(|x| !gone.contains(x));
        }
    }
    for (k, order) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER)
            && let (Some(Value::Array(list)), Some(order)) = (out.get_mut(field), order.as_array())
        {
            let names: Vec<String> = path.iter().cloned().chain([field.to_owned()]).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let key = match strategy(&names) {
                Some(ListStrategy::Merge { key }) => Some(key),
                _ => None,
            };
            reorder(list, order, key);
        }
    }
    Ok(Value::Object(out))
}

fn identity<'a>(item: &'a Value, key: Option<&str>) -> &'a Value {
    match key {
        Some(key) => item.get(key).unwrap_or(&Value::Null),
        None => item,
    }
}

fn reorder(list: &mut [Value], order: &[Value], key: Option<&str>) {
    let position = |item: &Value| {
        let id = match key {
            Some(k) => order
                .iter()
                .position(|o| o.get(k) == item.get(k) || *o == *identity(item, Some(k))),
            None => order.iter().position(|o| o == item),
        };
        id.unwrap_or(usize::MAX)
    };
    list.sort_by_key(|item| position(item));
}

fn strategic_list(
    original: &Value,
    items: &[Value],
    parent_patch: &Map<String, Value>,
    field: &str,
    list_strategy: Option<ListStrategy>,
    path: &mut Vec<String>,
    strategy: &dyn Fn(&[&str]) -> Option<ListStrategy>,
) -> Result<Value, PatchError> {
    let current: Vec<Value> = original.as_array().cloned().unwrap_or_default();
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        let kept = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .map(strip_directives)
            .collect();
        return Ok(Value::Array(kept));
    }
    match list_strategy {
        None | Some(ListStrategy::Replace) => Ok(strip_directives(Value::Array(items.to_vec()))),
        Some(ListStrategy::MergePrimitives) => {
            let gone = parent_patch
                .get(&format!("{DELETE_FROM}{field}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut out: Vec<Value> = current.into_iter().filter(|v| !gone.contains(v)).collect();
            for item in items {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(Value::Array(out))
        }
        Some(ListStrategy::Merge { key }) => {
            let mut out = current;
            for item in items {
                let Value::Object(p) = item else {
                    return err(format!(
                        "list {field} is merged by {key}; its elements must be objects"
                    ));
                };
                let Some(id) = p.get(key) else {
                    return err(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    ));
                };
                let existing = out.iter().position(|o| o.get(key) == Some(id));
                if p.get("$patch").and_then(Value::as_str) == Some("delete") {
                    if let Some(i) = existing {
                        out.remove(i);
                    }
                    continue;
                }
                match existing {
                    Some(i) => {
                        let merged = strategic_map(&out[i], p, path, strategy)?;
                        out[i] = merged;
                    }
                    None => out.push(strategic_map(&Value::Null, p, path, strategy)?),
                }
            }
            Ok(Value::Array(out))
        }
    }
}

fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k, strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_directives).collect()),
        other => other,
    }
}

/// The patch strategies of the built-in types' list fields (their `patchMergeKey` and
/// `patchStrategy` tags), matched by the end of the field path so that they apply to pods
/// and to pod templates inside workloads alike.
pub fn builtin_list_strategy(path: &[&str]) -> Option<ListStrategy> {
    let merge = |key| Some(ListStrategy::Merge { key });
    let last = *path.last()?;
    let parent = path.len().checked_sub(2).map(|i| path[i]);
    match (parent, last) {
        (_, "containers" | "initContainers" | "ephemeralContainers") => merge("name"),
        (Some("containers" | "initContainers" | "ephemeralContainers"), "ports") => {
            merge("containerPort")
        }
        (Some("spec"), "ports") => merge("port"),
        (_, "env") => merge("name"),
        (_, "volumeMounts") => merge("mountPath"),
        (_, "volumeDevices") => merge("devicePath"),
        (Some("spec"), "volumes") => merge("name"),
        (_, "imagePullSecrets") => merge("name"),
        (_, "hostAliases") => merge("ip"),
        (_, "topologySpreadConstraints") => merge("topologyKey"),
        (_, "resourceClaims") => merge("name"),
        (Some("metadata"), "finalizers") => Some(ListStrategy::MergePrimitives),
        (Some("metadata"), "ownerReferences") => merge("uid"),
        (Some("status"), "conditions") => merge("type"),
        (Some("status"), "addresses") => merge("type"),
        (Some("spec"), "podCIDRs") => Some(ListStrategy::MergePrimitives),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(original: Value, patch: Value) -> Value {
        apply_patch(
            &original,
            patch.to_string().as_bytes(),
            PatchType::StrategicMerge,
            &builtin_list_strategy,
        )
        .unwrap()
    }

    #[test]
    fn merge_patch_removes_nulls_and_replaces_lists() {
        let out = merge_patch(
            &json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}),
            &json!({"a": null, "b": {"c": 9}, "l": [3]}),
        );
        assert_eq!(out, json!({"b": {"c": 9, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_operations() {
        let doc = json!({"a/b": {"x": [1, 2]}, "t": "v"});
        let out = json_patch(
            &doc,
            &json!([
                {"op": "add", "path": "/a~1b/x/-", "value": 3},
                {"op": "replace", "path": "/t", "value": "w"},
                {"op": "copy", "from": "/t", "path": "/u"},
                {"op": "move", "from": "/u", "path": "/m"},
                {"op": "remove", "path": "/a~1b/x/0"},
                {"op": "test", "path": "/m", "value": "w"},
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"a/b": {"x": [2, 3]}, "t": "w", "m": "w"}));
        assert!(json_patch(&doc, &json!([{"op": "test", "path": "/t", "value": "no"}])).is_err());
        assert!(json_patch(&doc, &json!({"op": "add"})).is_err());
        assert!(json_patch(&doc, &json!([{"op": "remove", "path": "/missing"}])).is_err());
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let out = smp(
            pod.clone(),
            json!({"spec": {"containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["image"], "a:2");
        assert_eq!(
            out["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(out["spec"]["containers"][1]["name"], "b");
        let out = smp(
            pod.clone(),
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "b:1"}])
        );
        let out = smp(
            pod.clone(),
            json!({"spec": {"containers": [{"name": "c", "image": "c"}, {"$patch": "replace"}]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "image": "c"}])
        );
        let out = smp(
            pod,
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "containers": [{"name": "a", "image": "a:3"}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["name"], "b");
        assert_eq!(out["spec"]["containers"][1]["image"], "a:3");
    }

    #[test]
    fn strategic_merge_directives() {
        let obj = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}}, "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let out = smp(
            obj.clone(),
            json!({"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
        let out = smp(
            obj.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let out = smp(
            obj.clone(),
            json!({"metadata": {"labels": {"$patch": "replace", "z": "3"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"z": "3"}));
        let out = smp(
            obj,
            json!({"metadata": {"labels": {"x": null}}, "spec": {"strategy": {"$patch": "delete"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
        assert!(out["spec"].get("strategy").is_none());
    }

    #[test]
    fn hostile_patches_are_refused() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        let deep = format!("{{\"a\":{deep}}}");
        assert!(
            apply_patch(
                &json!({}),
                deep.as_bytes(),
                PatchType::Merge,
                &builtin_list_strategy
            )
            .is_err()
        );
        assert!(
            apply_patch(
                &json!({}),
                b"not json",
                PatchType::StrategicMerge,
                &builtin_list_strategy
            )
            .is_err()
        );
    }
}
