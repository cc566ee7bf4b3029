//! What the workload controllers (Job, CronJob, DaemonSet, StatefulSet, disruption) share:
//! expectations, controller references, pod health, label and node selectors, and the
//! slow-start batches kube-controller-manager creates pods in.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::chrono::{DateTime, Utc};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

/// How long an expectation is trusted before the controller acts anyway (kube: 5 minutes),
/// so a lost watch event cannot wedge a controller forever.
const EXPECTATIONS_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy)]
struct Expected {
    adds: i64,
    dels: i64,
    set_at: Instant,
}

/// kube's ControllerExpectations: the creates and deletes a controller issued and has not yet
/// seen in its caches. While some are outstanding, it must not act on the cache again.
#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Expected>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expected>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `adds` creations and `dels` deletions are about to be issued.
    pub fn expect(&self, key: &str, adds: usize, dels: usize) {
        self.lock().insert(
            key.to_owned(),
            Expected {
                adds: i64::try_from(adds).unwrap_or(i64::MAX),
                dels: i64::try_from(dels).unwrap_or(i64::MAX),
                set_at: Instant::now(),
            },
        );
    }

    /// Adds creations and deletions to those already awaited (for controllers that issue
    /// them one at a time).
    pub fn raise(&self, key: &str, adds: usize, dels: usize) {
        let mut inner = self.lock();
        let e = inner.entry(key.to_owned()).or_insert(Expected {
            adds: 0,
            dels: 0,
            set_at: Instant::now(),
        });
        e.adds = e.adds.max(0) + i64::try_from(adds).unwrap_or(i64::MAX);
        e.dels = e.dels.max(0) + i64::try_from(dels).unwrap_or(i64::MAX);
        e.set_at = Instant::now();
    }

    /// One creation was seen (or will never happen because it failed).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// One deletion was seen (or will never happen because it failed).
    pub fn deletion_observed(&self, key: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.dels -= 1;
        }
    }

    /// Whether the cache has seen everything this controller did for `key`.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.dels <= 0) || e.set_at.elapsed() > EXPECTATIONS_TTL,
        }
    }

    /// Drops the record of an object that is gone.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// kube's UIDTrackingExpectations for one kind of change: the uids a controller changed and
/// waits to see changed in its cache (the Job controller's finalizer removals).
#[derive(Default)]
pub struct UidExpectations {
    inner: Mutex<HashMap<String, HashSet<String>>>,
}

impl UidExpectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn expect(&self, key: &str, uid: &str) {
        self.lock()
            .entry(key.to_owned())
            .or_default()
            .insert(uid.to_owned());
    }

    pub fn observed(&self, key: &str, uid: &str) {
        let mut inner = self.lock();
        if let Some(set) = inner.get_mut(key) {
            set.remove(uid);
            if set.is_empty() {
                inner.remove(key);
            }
        }
    }

    /// The uids still awaited.
    pub fn pending(&self, key: &str) -> HashSet<String> {
        self.lock().get(key).cloned().unwrap_or_default()
    }

    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// A controller reference to `owner` (controller and blockOwnerDeletion true).
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The owner reference marked controller, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether the object's controller is the object with this uid.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// The queue key of the controller of an object, if that controller is of `kind`.
pub fn controller_key(meta: &ObjectMeta, kind: &str) -> Option<String> {
    let owner = controller_of(meta)?;
    (owner.kind == kind)
        .then(|| format!("{}/{}", meta.namespace.as_deref().unwrap_or(""), owner.name))
}

/// Adds a controller reference to an orphan that matches an owner's selector (kube's
/// ControllerRefManager adoption). The patch fails if the object changed meanwhile.
pub async fn adopt<K>(api: &Api<K>, object: &K, owner: OwnerReference) -> Result<(), kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let meta = object.meta();
    let mut ops = vec![json!({"op": "test", "path": "/metadata/uid", "value": meta.uid})];
    if meta
        .owner_references
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        ops.push(json!({"op": "add", "path": "/metadata/ownerReferences/-", "value": owner}));
    } else {
        ops.push(json!({"op": "add", "path": "/metadata/ownerReferences", "value": [owner]}));
    }
    let patch = json_patch(ops).map_err(kube::Error::SerdeError)?;
    api.patch(&object.name_any(), &PatchParams::default(), &patch)
        .await
        .map(drop)
}

/// A JSON patch (RFC 6902) from raw operations. kube-rs wants `json_patch::Patch`, which
/// serde builds from the values without this crate naming that dependency.
pub fn json_patch(ops: Vec<serde_json::Value>) -> Result<Patch<()>, serde_json::Error> {
    Ok(Patch::Json(serde_json::from_value(
        serde_json::Value::Array(ops),
    )?))
}

/// Whether a label selector matches labels (policy/v1 and apps/v1 semantics: an empty
/// selector matches everything).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(match_labels) = &selector.match_labels {
        for (k, v) in match_labels {
            if labels.get(k) != Some(v) {
                return false;
            }
        }
    }
    selector
        .match_expressions
        .iter()
        .flatten()
        .all(|req| expression_matches(req, labels))
}

fn expression_matches(req: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let value = labels.get(&req.key);
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// Whether a selector selects nothing at all (kube treats an empty selector on a workload as
/// an error rather than "everything").
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// Whether a node matches one node selector term (labels by matchExpressions, fields by
/// matchFields; only metadata.name is a field).
pub fn node_term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        // An empty term matches nothing.
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name_field: BTreeMap<String, String> =
        [("metadata.name".to_owned(), node.name_any())].into();
    expressions
        .iter()
        .all(|r| node_requirement_matches(r, &labels))
        && fields
            .iter()
            .all(|r| node_requirement_matches(r, &name_field))
}

fn node_requirement_matches(
    req: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let value = labels.get(&req.key);
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// The pod's phase, or "" when none is set.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Succeeded or Failed.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Neither terminal nor being deleted (kube's IsPodActive).
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// The time the pod's Ready condition became True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<Option<DateTime<Utc>>> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// The Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` (kube's IsPodAvailable).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => {
            since + k8s_openapi::chrono::Duration::seconds(i64::from(min_ready_seconds)) <= now
        }
    }
}

/// When a pod that is Ready but not yet available becomes available.
pub fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<DateTime<Utc>> {
    let since = ready_since(pod)??;
    Some(since + k8s_openapi::chrono::Duration::seconds(i64::from(min_ready_seconds)))
}

/// kube's GetScaledValueFromIntOrPercent: an int, or a percent of `total` rounded up or down.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match value {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let product = percent * i64::from(total);
            let scaled = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(scaled).map_err(|_| format!("value {s} out of range"))
        }
    }
}

/// kube's slowStartBatch: runs `count` calls in batches of 1, 2, 4, ... (starting at
/// `initial`), stopping after the first batch with a failure, so a quota or a broken
/// template costs one failed call rather than hundreds. Returns the successes and the first
/// error.
pub async fn slow_start<F, Fut, E>(count: usize, initial: usize, mut call: F) -> (usize, Option<E>)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut done = 0;
    let mut batch = initial.max(1).min(count);
    while done < count {
        let calls: Vec<Fut> = (done..done + batch).map(&mut call).collect();
        let results = join_all(calls).await;
        let mut first_error = None;
        let mut successes = 0;
        for r in results {
            match r {
                Ok(()) => successes += 1,
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        done += batch;
        if let Some(e) = first_error {
            return (done - batch + successes, Some(e));
        }
        batch = (batch * 2).min(count - done);
    }
    (done, None)
}

/// kube's initial batch size for slow start.
pub const SLOW_START_INITIAL_BATCH: usize = 1;

/// Whether a kube error is the API's 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(e) if e.code == 404)
}

/// Whether a kube error is the API's 409 (AlreadyExists or Conflict).
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(e) if e.code == 409)
}

/// Whether a kube error is AlreadyExists.
pub fn is_already_exists(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(e) if e.code == 409 && e.reason == "AlreadyExists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_kube_does() {
        let p = |s: &str| IntOrString::String(s.to_owned());
        assert_eq!(scaled_value(&p("50%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&p("50%"), 3, false), Ok(1));
        assert_eq!(scaled_value(&IntOrString::Int(4), 3, true), Ok(4));
        assert!(scaled_value(&p("half"), 3, true).is_err());
    }

    #[test]
    fn expectations_wait_for_every_observation() {
        let e = Expectations::default();
        assert!(e.satisfied("a"));
        e.expect("a", 2, 1);
        assert!(!e.satisfied("a"));
        e.creation_observed("a");
        e.creation_observed("a");
        assert!(!e.satisfied("a"));
        e.deletion_observed("a");
        assert!(e.satisfied("a"));
        e.raise("a", 1, 0);
        e.raise("a", 1, 0);
        e.creation_observed("a");
        assert!(!e.satisfied("a"));
        e.creation_observed("a");
        assert!(e.satisfied("a"));
    }

    #[tokio::test]
    async fn slow_start_doubles_and_stops_at_the_first_failing_batch() {
        let calls = std::sync::Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let (ok, err) = slow_start(10, 1, move |i| {
            c.lock().unwrap_or_else(|e| e.into_inner()).push(i);
            async move { if i == 4 { Err("boom") } else { Ok(()) } }
        })
        .await;
        // Batches 1, 2, 4: the third batch (3..7) has the failure.
        assert_eq!(ok, 6);
        assert_eq!(err, Some("boom"));
        assert_eq!(calls.lock().unwrap_or_else(|e| e.into_inner()).len(), 7);
    }

    #[test]
    fn node_terms_match_labels_and_the_name_field() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                labels: Some([("disk".to_owned(), "ssd".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        let req = |key: &str, op: &str, values: &[&str]| NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        };
        let term = NodeSelectorTerm {
            match_expressions: Some(vec![req("disk", "In", &["ssd"])]),
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
        };
        assert!(node_term_matches(&term, &node));
        let other = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "In", &["n2"])]),
        };
        assert!(!node_term_matches(&other, &node));
        assert!(!node_term_matches(&NodeSelectorTerm::default(), &node));
    }
}
