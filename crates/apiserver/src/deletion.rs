//! What a DELETE does to an object, as kube-apiserver's generic registry decides it: graceful
//! deletion for pods, the garbage collector's finalizers for the propagation policy, and
//! whether the object goes now or is only marked (`deletionTimestamp`) until its finalizers
//! are removed.

use std::collections::HashMap;

use bytes::Bytes;
use rkube_api::registry::Resource;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::time_util;

/// The garbage collector removes dependents' owner references, then this finalizer.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The garbage collector deletes the dependents first, then this finalizer.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// `metav1.DeleteOptions`, from the body and the query (the query wins, as in kube).
#[derive(Default, Debug)]
pub struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
    pub grace_period_seconds: Option<i64>,
    pub propagation: Option<Propagation>,
}

impl DeleteOptions {
    pub fn parse(bytes: &Bytes, query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(bytes)
                .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
        };
        let grace = match query.get("gracePeriodSeconds") {
            Some(g) => Some(g.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}: not an integer"))
            })?),
            None => body["gracePeriodSeconds"].as_i64(),
        };
        let policy = query
            .get("propagationPolicy")
            .map(String::as_str)
            .or_else(|| body["propagationPolicy"].as_str());
        let orphan = query
            .get("orphanDependents")
            .map(|v| v == "true")
            .or_else(|| body["orphanDependents"].as_bool());
        let propagation = match (policy, orphan) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_simple(
                    "DeleteOptions",
                    "propagationPolicy",
                    "orphanDependents and deletionPropagation cannot be both set",
                ));
            }
            (Some("Orphan"), None) => Some(Propagation::Orphan),
            (Some("Background"), None) => Some(Propagation::Background),
            (Some("Foreground"), None) => Some(Propagation::Foreground),
            (Some(other), None) => {
                return Err(ApiError::invalid_simple(
                    "DeleteOptions",
                    "propagationPolicy",
                    &format!(
                        "Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                ));
            }
            (None, Some(true)) => Some(Propagation::Orphan),
            (None, Some(false)) => Some(Propagation::Background),
            (None, None) => None,
        };
        if grace.is_some_and(|g| g < 0) {
            return Err(ApiError::invalid_simple(
                "DeleteOptions",
                "gracePeriodSeconds",
                "must be greater than or equal to 0",
            ));
        }
        let dry_run = query.get("dryRun").is_some_and(|d| d == "All")
            || body["dryRun"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == "All"));
        Ok(DeleteOptions {
            uid: body["preconditions"]["uid"].as_str().map(str::to_owned),
            resource_version: body["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_owned),
            dry_run,
            grace_period_seconds: grace,
            propagation,
        })
    }
}

/// What the DELETE does to the object.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Remove it from the store now.
    Delete,
    /// Write the (changed) object back: it is marked for deletion and waits for its
    /// finalizers or its grace period.
    Mark,
    /// It is already marked and nothing changed.
    Unchanged,
}

fn is_pod(resource: &Resource) -> bool {
    resource.group.is_empty() && resource.plural == "pods"
}

/// Pods are deleted gracefully: a pod on a node gets `terminationGracePeriodSeconds` for the
/// kubelet to stop it, which then deletes it with a grace period of 0. Unscheduled and
/// finished pods go at once (`pkg/registry/core/pod/strategy.go` CheckGracefulDelete).
fn grace_period(resource: &Resource, object: &Value, options: &DeleteOptions) -> i64 {
    if !is_pod(resource) {
        return 0;
    }
    let requested = options.grace_period_seconds.unwrap_or_else(|| {
        object["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30)
    });
    let unscheduled = object["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
    let finished = matches!(
        object["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if unscheduled || finished {
        0
    } else {
        requested.max(0)
    }
}

fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn set_finalizers(object: &mut Value, list: Vec<String>) {
    if let Some(meta) = object["metadata"].as_object_mut() {
        if list.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert("finalizers".into(), json!(list));
        }
    }
}

/// Whether an object still waits for something before it may leave the store.
pub fn has_pending_finalizers(resource: &Resource, object: &Value) -> bool {
    let is_namespace = resource.group.is_empty() && resource.plural == "namespaces";
    !finalizers(object).is_empty()
        || (is_namespace
            && object["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty()))
}

/// kube's ShouldDeleteDuringUpdate: an object marked for deletion with no grace period left
/// goes when an update removes its last finalizer.
pub fn should_delete_during_update(resource: &Resource, object: &Value) -> bool {
    let meta = &object["metadata"];
    meta.get("deletionTimestamp").is_some()
        && meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
        && !has_pending_finalizers(resource, object)
}

/// Decides the DELETE and applies its changes to `object`.
pub fn plan(resource: &Resource, object: &mut Value, options: &DeleteOptions) -> Plan {
    let before = object.clone();
    // The propagation policy becomes the garbage collector's finalizers.
    if let Some(policy) = options.propagation {
        let mut list = finalizers(object);
        list.retain(|f| f != ORPHAN_FINALIZER && f != FOREGROUND_FINALIZER);
        match policy {
            Propagation::Orphan => list.push(ORPHAN_FINALIZER.to_owned()),
            Propagation::Foreground => list.push(FOREGROUND_FINALIZER.to_owned()),
            Propagation::Background => {}
        }
        // An object already being deleted keeps the policy it was deleted with.
        if object["metadata"].get("deletionTimestamp").is_none() {
            set_finalizers(object, list);
        }
    }
    let grace = grace_period(resource, object, options);
    let already = object["metadata"].get("deletionTimestamp").is_some();
    if already && is_pod(resource) {
        // A second DELETE may only shorten the grace period.
        let current = object["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0);
        if grace < current {
            let meta = &mut object["metadata"];
            meta["deletionGracePeriodSeconds"] = json!(grace);
            meta["deletionTimestamp"] = json!(time_util::after_seconds(grace));
        }
    }
    let pending_grace = object["metadata"]["deletionGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(if already { 0 } else { grace });
    if !has_pending_finalizers(resource, object) && pending_grace == 0 {
        return Plan::Delete;
    }
    if !already {
        let meta = &mut object["metadata"];
        meta["deletionTimestamp"] = json!(time_util::after_seconds(grace));
        meta["deletionGracePeriodSeconds"] = json!(grace);
        if resource.group.is_empty() && resource.plural == "namespaces" {
            object["status"]["phase"] = json!("Terminating");
        }
    }
    if *object == before {
        Plan::Unchanged
    } else {
        Plan::Mark
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::registry::builtin_resources;

    fn resource(plural: &str) -> Resource {
        builtin_resources()
            .into_iter()
            .find(|r| r.plural == plural)
            .expect("a built-in resource")
    }

    fn opts(grace: Option<i64>, propagation: Option<Propagation>) -> DeleteOptions {
        DeleteOptions {
            grace_period_seconds: grace,
            propagation,
            ..DeleteOptions::default()
        }
    }

    #[test]
    fn plain_objects_go_at_once() {
        let mut cm = json!({"metadata": {"name": "a"}});
        assert_eq!(
            plan(&resource("configmaps"), &mut cm, &opts(None, None)),
            Plan::Delete
        );
        let mut cm = json!({"metadata": {"name": "a"}});
        let background = opts(None, Some(Propagation::Background));
        assert_eq!(
            plan(&resource("configmaps"), &mut cm, &background),
            Plan::Delete
        );
    }

    #[test]
    fn propagation_adds_the_collector_finalizers() {
        let mut rs = json!({"metadata": {"name": "a", "finalizers": ["x"]}});
        let r = resource("replicasets");
        assert_eq!(
            plan(&r, &mut rs, &opts(None, Some(Propagation::Foreground))),
            Plan::Mark
        );
        assert_eq!(
            rs["metadata"]["finalizers"],
            json!(["x", "foregroundDeletion"])
        );
        assert_eq!(rs["metadata"]["deletionGracePeriodSeconds"], 0);
        assert!(rs["metadata"]["deletionTimestamp"].is_string());
        let mut rs = json!({"metadata": {"name": "a"}});
        assert_eq!(
            plan(&r, &mut rs, &opts(None, Some(Propagation::Orphan))),
            Plan::Mark
        );
        assert_eq!(rs["metadata"]["finalizers"], json!(["orphan"]));
        // Deleting it again changes nothing.
        assert_eq!(
            plan(&r, &mut rs, &opts(None, Some(Propagation::Orphan))),
            Plan::Unchanged
        );
    }

    #[test]
    fn pods_on_nodes_get_their_grace_period() {
        let r = resource("pods");
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 20}, "status": {"phase": "Running"}});
        assert_eq!(plan(&r, &mut pod, &opts(None, None)), Plan::Mark);
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 20);
        // A shorter grace period shortens it; a longer one does not.
        assert_eq!(plan(&r, &mut pod, &opts(Some(60), None)), Plan::Unchanged);
        assert_eq!(plan(&r, &mut pod, &opts(Some(5), None)), Plan::Mark);
        assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 5);
        // The kubelet's final DELETE with 0 removes it.
        assert_eq!(plan(&r, &mut pod, &opts(Some(0), None)), Plan::Delete);
    }

    #[test]
    fn unscheduled_and_finished_pods_go_at_once() {
        let r = resource("pods");
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {}});
        assert_eq!(plan(&r, &mut pod, &opts(None, None)), Plan::Delete);
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n"}, "status": {"phase": "Succeeded"}});
        assert_eq!(plan(&r, &mut pod, &opts(None, None)), Plan::Delete);
    }

    #[test]
    fn namespaces_wait_for_their_spec_finalizers() {
        let r = resource("namespaces");
        let mut ns = json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        assert_eq!(plan(&r, &mut ns, &opts(None, None)), Plan::Mark);
        assert_eq!(ns["status"]["phase"], "Terminating");
        assert!(!should_delete_during_update(&r, &ns));
        ns["spec"]["finalizers"] = json!([]);
        assert!(should_delete_during_update(&r, &ns));
    }

    #[test]
    fn options_come_from_the_query_and_the_body() {
        let q: HashMap<String, String> =
            [("propagationPolicy".to_owned(), "Foreground".to_owned())].into();
        let o = DeleteOptions::parse(&Bytes::from_static(b"{\"gracePeriodSeconds\": 3}"), &q)
            .expect("valid options");
        assert_eq!(o.propagation, Some(Propagation::Foreground));
        assert_eq!(o.grace_period_seconds, Some(3));
        let q: HashMap<String, String> =
            [("propagationPolicy".to_owned(), "Sideways".to_owned())].into();
        let e = DeleteOptions::parse(&Bytes::new(), &q).expect_err("bad policy");
        assert_eq!(e.code, 422);
        let o = DeleteOptions::parse(
            &Bytes::from_static(b"{\"orphanDependents\": true}"),
            &HashMap::new(),
        )
        .expect("valid options");
        assert_eq!(o.propagation, Some(Propagation::Orphan));
    }
}
