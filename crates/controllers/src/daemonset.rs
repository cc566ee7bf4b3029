//! The DaemonSet controller, as kube-controller-manager v1.33 runs it.
//!
//! - A node is eligible when the pod template's nodeName, nodeSelector and required node
//!   affinity allow it and every NoSchedule/NoExecute taint is tolerated, counting the
//!   tolerations kube adds to daemon pods (not-ready and unreachable NoExecute; disk-, memory-
//!   and pid-pressure and unschedulable NoSchedule; network-unavailable for host-network
//!   pods). A pod stays on a node that became ineligible unless a NoExecute taint or the
//!   selectors say otherwise.
//! - Each eligible node gets one pod, pinned by a required node affinity on the
//!   `metadata.name` field (the scheduler binds it); failed pods are deleted (with a back-off)
//!   and replaced; extra pods are deleted, the oldest running one kept.
//! - Updates: RollingUpdate replaces old pods node by node within `maxUnavailable`, or with
//!   `maxSurge` starts the new pod first and deletes the old one once the new one is
//!   available; OnDelete only uses the new template for pods it creates.
//! - Every template is kept as a ControllerRevision (`kubectl rollout history/undo`); pods
//!   carry its hash as `controller-revision-hash`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::chrono::Utc;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};

use crate::batchutil::{
    Expectations, SLOW_START_INITIAL_BATCH, adopt, controlled_by, controller_key, controller_of,
    controller_ref, is_available, is_not_found, is_ready, node_term_matches, phase, scaled_value,
    selector_is_empty, selector_matches, slow_start,
};
use crate::events::{Recorder, Type};
use crate::informer::{Change, Informer, key_of};
use crate::nodelifecycle::tolerates;
use crate::queue::WorkQueue;
use crate::revisionhistory::{self, REVISION_HASH_LABEL};
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

/// The deprecated label with the DaemonSet generation a pod was made from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// kube's failedPodsBackoff: 1 s doubling to 15 min per DaemonSet and node.
const FAILED_BACKOFF_BASE: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

struct Controller {
    ctx: Context,
    /// Events come from this controller, as kube-controller-manager names it.
    recorder: Recorder,
    dsets: Informer<DaemonSet>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    revisions: Informer<ControllerRevision>,
    expectations: Arc<Expectations>,
    /// (daemonset key, node) -> (delay, when it was last raised).
    failed_backoff: Mutex<HashMap<(String, String), (Duration, Instant)>>,
}

pub fn start(ctx: &Context, options: &Options) {
    let dsets = ctx.informer::<DaemonSet>();
    let pods = ctx.informer::<Pod>();
    let nodes = ctx.informer::<Node>();
    let revisions = ctx.informer::<ControllerRevision>();
    let queue = WorkQueue::default();
    let expectations = Arc::new(Expectations::default());
    let q = queue.clone();
    on_change(&dsets, ctx.stop.clone(), move |change| {
        q.add(key_of(change.object().as_ref()));
    });
    let (q, e, ds_cache) = (queue.clone(), expectations.clone(), dsets.clone());
    on_change(&pods, ctx.stop.clone(), move |change| {
        observe_pod(change, &q, &e, &ds_cache);
    });
    let (q, ds_cache) = (queue.clone(), dsets.clone());
    on_change(&nodes, ctx.stop.clone(), move |change| {
        if let Change::Updated(old, new) = change {
            let same = old.metadata.labels == new.metadata.labels
                && old.spec.as_ref().map(|s| (&s.taints, &s.unschedulable))
                    == new.spec.as_ref().map(|s| (&s.taints, &s.unschedulable));
            if same {
                return;
            }
        }
        for ds in ds_cache.list() {
            q.add(key_of(ds.as_ref()));
        }
    });
    let q = queue.clone();
    on_change(&revisions, ctx.stop.clone(), move |change| {
        if let Some(key) = controller_key(&change.object().metadata, "DaemonSet") {
            q.add(key);
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        recorder: Recorder::new(ctx.client.clone(), "daemonset-controller"),
        dsets,
        pods,
        nodes,
        revisions,
        expectations,
        failed_backoff: Mutex::default(),
    });
    run_workers(controller, queue, options.workers.min(2), ctx.stop.clone());
}

fn observe_pod(
    change: &Change<Pod>,
    queue: &WorkQueue,
    exp: &Expectations,
    dsets: &Informer<DaemonSet>,
) {
    let pod = change.object();
    match controller_key(&pod.metadata, "DaemonSet") {
        Some(key) => {
            match change {
                Change::Added(_) => exp.creation_observed(&key),
                Change::Updated(old, new) => {
                    if new.metadata.deletion_timestamp.is_some()
                        && old.metadata.deletion_timestamp.is_none()
                    {
                        exp.deletion_observed(&key);
                    }
                }
                Change::Deleted(p) => {
                    if p.metadata.deletion_timestamp.is_none() {
                        exp.deletion_observed(&key);
                    }
                }
            }
            queue.add(key);
        }
        None if controller_of(&pod.metadata).is_none() && !matches!(change, Change::Deleted(_)) => {
            // An orphan: the DaemonSets that select it may adopt it.
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            for ds in dsets.list_in(&ns) {
                let Some(selector) = ds.spec.as_ref().map(|s| &s.selector) else {
                    continue;
                };
                if !selector_is_empty(selector) && selector_matches(selector, &labels) {
                    queue.add(key_of(ds.as_ref()));
                }
            }
        }
        None => {}
    }
}

/// The tolerations kube adds to every daemon pod (AddOrUpdateDaemonPodTolerations).
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(effect.to_owned()),
        value: None,
        toleration_seconds: None,
    };
    let mut out = vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(t("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    out
}

/// The template's pod spec with the daemon tolerations added (kube's NewPod).
fn daemon_pod_spec(ds: &DaemonSet) -> PodSpec {
    let mut spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    let mut tolerations = spec.tolerations.take().unwrap_or_default();
    for extra in daemon_tolerations(spec.host_network == Some(true)) {
        let present = tolerations.iter().any(|t| {
            t.key == extra.key
                && t.effect == extra.effect
                && t.operator.as_deref().unwrap_or("Equal") == "Exists"
        });
        if !present {
            tolerations.push(extra);
        }
    }
    spec.tolerations = Some(tolerations);
    spec
}

/// kube's NodeShouldRunDaemonPod: (should run a pod there, may keep a pod running there).
pub fn node_should_run(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let spec = daemon_pod_spec(ds);
    let name = node.name_any();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return (false, false);
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(selector) = &spec.node_selector
        && selector.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return (false, false);
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(required) = required
        && !required
            .node_selector_terms
            .iter()
            .any(|t| node_term_matches(t, node))
    {
        return (false, false);
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let tolerations = spec.tolerations.unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        taints.iter().any(|taint| {
            effects.contains(&taint.effect.as_str())
                && !tolerations.iter().any(|t| tolerates(t, taint))
        })
    };
    if untolerated(&["NoSchedule", "NoExecute"]) {
        return (false, !untolerated(&["NoExecute"]));
    }
    (true, true)
}

/// The node a daemon pod is on or pinned to (kube's GetTargetNodeName).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_ref()?.iter().find_map(|r| {
            (r.key == "metadata.name" && r.operator == "In" && r.values.as_ref()?.len() == 1)
                .then(|| r.values.as_ref().and_then(|v| v.first().cloned()))
                .flatten()
        })
    })
}

/// Replaces the required node affinity with `metadata.name In [node]` (kube's
/// ReplaceDaemonSetPodNodeNameNodeAffinity).
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".to_owned(),
                operator: "In".to_owned(),
                values: Some(vec![node.to_owned()]),
            }]),
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let mut node_affinity = affinity.node_affinity.take().unwrap_or_default();
    node_affinity.required_during_scheduling_ignored_during_execution = Some(selector);
    affinity.node_affinity = Some(NodeAffinity { ..node_affinity });
    affinity
}

/// Running pods first, then oldest, then by name (kube's podByCreationTimestampAndPhase).
fn sort_pods(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        let running = |p: &Pod| phase(p) != "Running";
        running(a)
            .cmp(&running(b))
            .then_with(|| {
                a.metadata
                    .creation_timestamp
                    .cmp(&b.metadata.creation_timestamp)
            })
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

fn pod_hash(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_HASH_LABEL)
        .map(String::as_str)
}

/// A node's pod of the current template and pod of an older one, either possibly absent.
type NewAndOld = (Option<Arc<Pod>>, Option<Arc<Pod>>);

/// The new and old pod on a node; `None` when there are two of either (kube's
/// findUpdatedPodsOnNode).
fn updated_pods_on_node(pods: &[Arc<Pod>], hash: &str) -> Option<NewAndOld> {
    let (mut new, mut old) = (None, None);
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let slot = if pod_hash(pod) == Some(hash) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod.clone());
    }
    Some((new, old))
}

/// A daemon pod for a node.
fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_owned(), hash.to_owned());
    if let Some(generation) = ds.metadata.generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.to_owned(), generation.to_string());
    }
    let mut spec = daemon_pod_spec(ds);
    spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.name_any())),
            namespace: ds.namespace(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_ref(ds)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn rolling_params(ds: &DaemonSet) -> Option<(IntOrString, IntOrString)> {
    let strategy = ds.spec.as_ref()?.update_strategy.as_ref()?;
    if strategy.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return None;
    }
    let rolling = strategy.rolling_update.clone().unwrap_or_default();
    Some((
        rolling.max_unavailable.unwrap_or(IntOrString::Int(1)),
        rolling.max_surge.unwrap_or(IntOrString::Int(0)),
    ))
}

/// (maxSurge, maxUnavailable) for `desired` nodes (kube's updatedDesiredNodeCounts).
fn surge_and_unavailable(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    let Some((unavailable, surge)) = rolling_params(ds) else {
        return (0, 1);
    };
    let max_unavailable = scaled_value(&unavailable, desired, true)
        .unwrap_or(1)
        .max(0);
    let max_surge = scaled_value(&surge, desired, true).unwrap_or(0).max(0);
    if desired > 0 && max_unavailable == 0 && max_surge == 0 {
        return (0, 1);
    }
    (max_surge, max_unavailable)
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "daemonset"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        if !(self.dsets.has_synced()
            && self.pods.has_synced()
            && self.nodes.has_synced()
            && self.revisions.has_synced())
        {
            return Ok(Next::After(Duration::from_millis(200)));
        }
        let Some(ds) = self.dsets.get(&key) else {
            self.expectations.forget(&key);
            return Ok(Next::Done);
        };
        let Some(spec) = ds.spec.as_ref() else {
            return Ok(Next::Done);
        };
        if selector_is_empty(&spec.selector) {
            self.recorder.record(
                ds.as_ref(),
                Type::Warning,
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.",
            );
            return Ok(Next::Done);
        }
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(Next::Done);
        }
        self.adopt_orphans(&ds).await;
        let history = self.history(&ds).await?;
        let hash = history
            .update
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_HASH_LABEL))
            .cloned()
            .unwrap_or_default();
        let nodes = self.nodes.list();
        let mut requeue: Option<Duration> = None;
        if self.expectations.satisfied(&key) {
            requeue = self.manage(&key, &ds, &nodes, &hash).await?;
            if self.expectations.satisfied(&key)
                && let Some((_, _)) = rolling_params(&ds)
            {
                self.rolling_update(&key, &ds, &nodes, &hash).await?;
            }
            let in_use: HashSet<String> = self
                .pods_by_node(&ds)
                .values()
                .flatten()
                .filter_map(|p| pod_hash(p).map(|h| format!("{}-{h}", ds.name_any())))
                .chain([history.update.name_any()])
                .collect();
            revisionhistory::truncate(
                &Api::namespaced(self.ctx.client.clone(), &ds.namespace().unwrap_or_default()),
                &history.all,
                &in_use,
                spec.revision_history_limit.unwrap_or(10),
            )
            .await?;
        }
        let status_wait = self
            .update_status(&ds, &nodes, &hash, history.collision_count)
            .await?;
        Ok(match (requeue, status_wait) {
            (Some(a), Some(b)) => Next::After(a.min(b)),
            (Some(a), None) | (None, Some(a)) => Next::After(a),
            (None, None) => Next::Done,
        })
    }
}

impl Controller {
    async fn history(&self, ds: &DaemonSet) -> anyhow::Result<revisionhistory::History> {
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let ns = ds.namespace().unwrap_or_default();
        let existing = revisionhistory::owned(&self.revisions.list_in(&ns), &uid);
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.ctx.client.clone(), &ns);
        let history = revisionhistory::ensure(
            &api,
            controller_ref(ds),
            labels,
            ds.metadata.annotations.clone(),
            revisionhistory::template_patch(&template),
            existing,
            ds.status.as_ref().and_then(|s| s.collision_count),
        )
        .await?;
        Ok(history)
    }

    /// Orphan pods the DaemonSet selects become its own.
    async fn adopt_orphans(&self, ds: &DaemonSet) {
        let Some(selector) = ds.spec.as_ref().map(|s| &s.selector) else {
            return;
        };
        let ns = ds.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        for pod in self.pods.list_in(&ns) {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            if controller_of(&pod.metadata).is_none()
                && pod.metadata.deletion_timestamp.is_none()
                && selector_matches(selector, &labels)
                && let Err(err) = adopt(&api, pod.as_ref(), controller_ref(ds)).await
            {
                tracing::debug!(pod = %pod.name_any(), "cannot adopt: {err}");
            }
        }
    }

    /// The DaemonSet's pods by the node they are on or pinned to.
    fn pods_by_node(&self, ds: &DaemonSet) -> BTreeMap<String, Vec<Arc<Pod>>> {
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let mut out: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
        for pod in self.pods.list_in(&ds.namespace().unwrap_or_default()) {
            if !controlled_by(&pod.metadata, &uid) {
                continue;
            }
            // Finished pods being deleted are as good as gone.
            if pod.metadata.deletion_timestamp.is_some() && crate::batchutil::is_terminal(&pod) {
                continue;
            }
            if let Some(node) = target_node(&pod) {
                out.entry(node).or_default().push(pod);
            }
        }
        out
    }

    fn in_failed_backoff(&self, key: &str, node: &str) -> Option<Duration> {
        let map = self
            .failed_backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (delay, at) = map.get(&(key.to_owned(), node.to_owned()))?;
        let elapsed = at.elapsed();
        (elapsed < *delay).then(|| *delay - elapsed)
    }

    fn raise_failed_backoff(&self, key: &str, node: &str) {
        let mut map = self
            .failed_backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry((key.to_owned(), node.to_owned()))
            .or_insert((Duration::ZERO, Instant::now()));
        // Back-off entries reset after twice the maximum without failures, as client-go's do.
        entry.0 = if entry.1.elapsed() > FAILED_BACKOFF_MAX * 2 || entry.0.is_zero() {
            FAILED_BACKOFF_BASE
        } else {
            (entry.0 * 2).min(FAILED_BACKOFF_MAX)
        };
        entry.1 = Instant::now();
    }

    /// Creates missing daemon pods and deletes the ones that must go; returns when to look
    /// again for pods held back by the failed-pod back-off.
    async fn manage(
        &self,
        key: &str,
        ds: &Arc<DaemonSet>,
        nodes: &[Arc<Node>],
        hash: &str,
    ) -> anyhow::Result<Option<Duration>> {
        let by_node = self.pods_by_node(ds);
        let surge =
            rolling_params(ds).is_some_and(|(_, s)| scaled_value(&s, 1, true).unwrap_or(0) > 0);
        let mut to_create: Vec<String> = Vec::new();
        let mut to_delete: Vec<Arc<Pod>> = Vec::new();
        let mut wait: Option<Duration> = None;
        let min_ready = ds
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let now = Utc::now();
        let known: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        for node in nodes {
            let name = node.name_any();
            let (should_run, should_continue) = node_should_run(node, ds);
            let pods = by_node.get(&name).cloned().unwrap_or_default();
            if should_run && pods.is_empty() {
                to_create.push(name);
            } else if should_continue {
                let mut running = Vec::new();
                for pod in pods {
                    if pod.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    match phase(&pod) {
                        "Failed" => {
                            if let Some(left) = self.in_failed_backoff(key, &name) {
                                wait = Some(wait.map_or(left, |w| w.min(left)));
                                continue;
                            }
                            self.raise_failed_backoff(key, &name);
                            self.recorder.record(
                                ds.as_ref(),
                                Type::Warning,
                                "FailedDaemonPod",
                                format!(
                                    "Found failed daemon pod {}/{} on node {name}, will try to kill it",
                                    pod.namespace().unwrap_or_default(),
                                    pod.name_any()
                                ),
                            );
                            to_delete.push(pod);
                        }
                        "Succeeded" => to_delete.push(pod),
                        _ => running.push(pod),
                    }
                }
                if running.len() <= 1 {
                    continue;
                }
                sort_pods(&mut running);
                if !surge {
                    to_delete.extend(running.into_iter().skip(1));
                    continue;
                }
                // Surging: keep the oldest new pod and, while it is not available yet, the
                // oldest ready old pod.
                let (mut oldest_new, mut oldest_old) = (None, None);
                for pod in running {
                    let slot = if pod_hash(&pod) == Some(hash) {
                        &mut oldest_new
                    } else {
                        &mut oldest_old
                    };
                    if slot.is_none() {
                        *slot = Some(pod);
                    } else {
                        to_delete.push(pod);
                    }
                }
                if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                    && (!is_ready(&old) || is_available(&new, min_ready, now))
                {
                    to_delete.push(old);
                }
            } else {
                to_delete.extend(
                    pods.into_iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none()),
                );
            }
        }
        // Unscheduled pods pinned to nodes that no longer exist.
        for (node, pods) in &by_node {
            if !known.contains(node) {
                to_delete.extend(
                    pods.iter()
                        .filter(|p| {
                            p.metadata.deletion_timestamp.is_none()
                                && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none()
                        })
                        .cloned(),
                );
            }
        }
        self.sync_nodes(key, ds, to_delete, to_create, hash).await?;
        Ok(wait)
    }

    /// Deletes and creates pods (kube's syncNodes).
    async fn sync_nodes(
        &self,
        key: &str,
        ds: &Arc<DaemonSet>,
        to_delete: Vec<Arc<Pod>>,
        to_create: Vec<String>,
        hash: &str,
    ) -> anyhow::Result<()> {
        if to_delete.is_empty() && to_create.is_empty() {
            return Ok(());
        }
        self.expectations
            .expect(key, to_create.len(), to_delete.len());
        let api: Api<Pod> =
            Api::namespaced(self.ctx.client.clone(), &ds.namespace().unwrap_or_default());
        let (created, create_err) = slow_start(to_create.len(), SLOW_START_INITIAL_BATCH, |i| {
            let pod = new_pod(ds, &to_create[i], hash);
            let api = api.clone();
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        self.recorder.record(
                            ds.as_ref(),
                            Type::Normal,
                            "SuccessfulCreate",
                            format!("Created pod: {}", p.name_any()),
                        );
                        Ok(())
                    }
                    Err(e) => {
                        self.recorder.record(
                            ds.as_ref(),
                            Type::Warning,
                            "FailedCreate",
                            format!("Error creating: {e}"),
                        );
                        Err(e)
                    }
                }
            }
        })
        .await;
        for _ in created..to_create.len() {
            self.expectations.creation_observed(key);
        }
        let mut delete_err = None;
        for pod in &to_delete {
            match api.delete(&pod.name_any(), &DeleteParams::default()).await {
                Ok(_) => self.recorder.record(
                    ds.as_ref(),
                    Type::Normal,
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", pod.name_any()),
                ),
                Err(err) => {
                    self.expectations.deletion_observed(key);
                    if !is_not_found(&err) {
                        delete_err.get_or_insert(err);
                    }
                }
            }
        }
        if let Some(err) = create_err.or(delete_err) {
            return Err(err.into());
        }
        Ok(())
    }

    /// Replaces old pods within maxUnavailable (or surges within maxSurge).
    async fn rolling_update(
        &self,
        key: &str,
        ds: &Arc<DaemonSet>,
        nodes: &[Arc<Node>],
        hash: &str,
    ) -> anyhow::Result<()> {
        let by_node = self.pods_by_node(ds);
        let desired = i32::try_from(nodes.iter().filter(|n| node_should_run(n, ds).0).count())
            .unwrap_or(i32::MAX);
        let (max_surge, max_unavailable) = surge_and_unavailable(ds, desired);
        let min_ready = ds
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let now = Utc::now();
        let available = |p: &Pod| is_available(p, min_ready, now);
        let node_of = |name: &str| nodes.iter().find(|n| n.name_any() == name);
        if max_surge == 0 {
            let mut unavailable = 0;
            let mut replace: Vec<Arc<Pod>> = Vec::new();
            let mut candidates: Vec<Arc<Pod>> = Vec::new();
            for pods in by_node.values() {
                match updated_pods_on_node(pods, hash) {
                    None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                    Some((Some(new), None)) => {
                        if !available(&new) {
                            unavailable += 1;
                        }
                    }
                    Some((None, Some(old))) => {
                        if !available(&old) {
                            replace.push(old);
                        } else if unavailable < max_unavailable {
                            candidates.push(old);
                        }
                    }
                }
            }
            let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0);
            replace.extend(candidates.into_iter().take(room));
            return self.sync_nodes(key, ds, replace, Vec::new(), hash).await;
        }
        let mut to_delete: Vec<Arc<Pod>> = Vec::new();
        let mut should_not_run: Vec<Arc<Pod>> = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        let mut allowed: Vec<String> = Vec::new();
        let (mut surging, mut num_available) = (0, 0);
        for (node, pods) in &by_node {
            let Some((new, old)) = updated_pods_on_node(pods, hash) else {
                surging += 1;
                continue;
            };
            if let Some(p) = old.as_ref().or(new.as_ref())
                && available(p)
            {
                num_available += 1;
            }
            let should_run = node_of(node).is_some_and(|n| node_should_run(n, ds).0);
            match (new, old) {
                (_, None) => {}
                (None, Some(old)) => {
                    if !available(&old) {
                        if should_run {
                            allowed.push(node.clone());
                        } else {
                            to_delete.push(old);
                        }
                    } else if !should_run {
                        should_not_run.push(old);
                    } else if surging < max_surge {
                        candidates.push(node.clone());
                    }
                }
                (Some(new), Some(old)) => {
                    if available(&new) {
                        to_delete.push(old);
                    } else {
                        surging += 1;
                    }
                }
            }
        }
        let deletable = usize::try_from((num_available - desired).max(0)).unwrap_or(0);
        to_delete.extend(should_not_run.into_iter().take(deletable));
        let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0);
        allowed.extend(candidates.into_iter().take(room));
        self.sync_nodes(key, ds, to_delete, allowed, hash).await
    }

    /// Writes the status; returns when to look again for pods becoming available.
    async fn update_status(
        &self,
        ds: &Arc<DaemonSet>,
        nodes: &[Arc<Node>],
        hash: &str,
        collision: Option<i32>,
    ) -> anyhow::Result<Option<Duration>> {
        let by_node = self.pods_by_node(ds);
        let min_ready = ds
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0);
        let now = Utc::now();
        let mut s = DaemonSetStatus {
            collision_count: collision
                .or_else(|| ds.status.as_ref().and_then(|s| s.collision_count)),
            conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
            observed_generation: ds.metadata.generation,
            ..DaemonSetStatus::default()
        };
        let mut requeue = None;
        for node in nodes {
            let (should_run, _) = node_should_run(node, ds);
            let mut pods = by_node.get(&node.name_any()).cloned().unwrap_or_default();
            let scheduled = !pods.is_empty();
            if !should_run {
                if scheduled {
                    s.number_misscheduled += 1;
                }
                continue;
            }
            s.desired_number_scheduled += 1;
            if !scheduled {
                continue;
            }
            s.current_number_scheduled += 1;
            sort_pods(&mut pods);
            let pod = &pods[0];
            if is_ready(pod) {
                s.number_ready += 1;
                if is_available(pod, min_ready, now) {
                    s.number_available = Some(s.number_available.unwrap_or(0) + 1);
                } else if min_ready > 0 {
                    requeue = Some(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1)));
                }
            }
            if pod_hash(pod) == Some(hash) {
                s.updated_number_scheduled = Some(s.updated_number_scheduled.unwrap_or(0) + 1);
            }
        }
        let unavailable = s.desired_number_scheduled - s.number_available.unwrap_or(0);
        s.number_unavailable = (unavailable > 0).then_some(unavailable);
        if ds.status.as_ref() == Some(&s) {
            return Ok(requeue);
        }
        let mut updated = (**ds).clone();
        updated.status = Some(s);
        let api: Api<DaemonSet> =
            Api::namespaced(self.ctx.client.clone(), &ds.namespace().unwrap_or_default());
        api.replace_status(
            &ds.name_any(),
            &PostParams::default(),
            serde_json::to_vec(&updated)?,
        )
        .await?;
        Ok(requeue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetSpec;
    use k8s_openapi::api::core::v1::{NodeSpec, PodTemplateSpec, Taint};

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(k, e)| Taint {
                            key: (*k).into(),
                            effect: (*e).into(),
                            ..Taint::default()
                        })
                        .collect(),
                ),
                ..NodeSpec::default()
            }),
            status: None,
        }
    }

    fn ds(spec: PodSpec) -> DaemonSet {
        DaemonSet {
            spec: Some(DaemonSetSpec {
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(spec),
                },
                ..DaemonSetSpec::default()
            }),
            ..DaemonSet::default()
        }
    }

    #[test]
    fn eligibility_follows_selectors_and_taints() {
        let plain = ds(PodSpec::default());
        assert_eq!(node_should_run(&node("a", &[], &[]), &plain), (true, true));
        // An untolerated NoSchedule taint: no new pod, but a running one may stay.
        let tainted = node("b", &[], &[("dedicated", "NoSchedule")]);
        assert_eq!(node_should_run(&tainted, &plain), (false, true));
        // NoExecute: the pod must go too.
        let evicting = node("c", &[], &[("dedicated", "NoExecute")]);
        assert_eq!(node_should_run(&evicting, &plain), (false, false));
        // The automatic tolerations cover not-ready, unreachable, pressure and unschedulable.
        let sick = node(
            "d",
            &[],
            &[
                ("node.kubernetes.io/not-ready", "NoExecute"),
                ("node.kubernetes.io/unreachable", "NoExecute"),
                ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ],
        );
        assert_eq!(node_should_run(&sick, &plain), (true, true));
        // network-unavailable only for host-network pods.
        let no_net = node(
            "e",
            &[],
            &[("node.kubernetes.io/network-unavailable", "NoSchedule")],
        );
        assert!(!node_should_run(&no_net, &plain).0);
        let host = ds(PodSpec {
            host_network: Some(true),
            ..PodSpec::default()
        });
        assert!(node_should_run(&no_net, &host).0);
        // A toleration lets the tainted node in.
        let tolerant = ds(PodSpec {
            tolerations: Some(vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Toleration::default()
            }]),
            ..PodSpec::default()
        });
        assert_eq!(node_should_run(&tainted, &tolerant), (true, true));
        // nodeSelector.
        let picky = ds(PodSpec {
            node_selector: Some([("disk".to_owned(), "ssd".to_owned())].into()),
            ..PodSpec::default()
        });
        assert_eq!(
            node_should_run(&node("f", &[("disk", "ssd")], &[]), &picky),
            (true, true)
        );
        assert_eq!(
            node_should_run(&node("g", &[], &[]), &picky),
            (false, false)
        );
    }

    #[test]
    fn pods_are_pinned_by_node_name_affinity() {
        let mut d = ds(PodSpec::default());
        d.metadata.name = Some("agent".into());
        d.metadata.generation = Some(3);
        let pod = new_pod(&d, "node-1", "abc");
        assert_eq!(target_node(&pod).as_deref(), Some("node-1"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(REVISION_HASH_LABEL).map(String::as_str),
            Some("abc")
        );
        assert_eq!(
            labels.get(TEMPLATE_GENERATION_LABEL).map(String::as_str),
            Some("3")
        );
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        let tolerations = pod.spec.and_then(|s| s.tolerations).unwrap_or_default();
        assert_eq!(tolerations.len(), 6);
    }

    #[test]
    fn surge_and_unavailable_counts_round_up() {
        let mut d = ds(PodSpec::default());
        if let Some(spec) = d.spec.as_mut() {
            spec.update_strategy = Some(k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(k8s_openapi::api::apps::v1::RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::String("10%".into())),
                    max_surge: Some(IntOrString::Int(0)),
                }),
            });
        }
        assert_eq!(surge_and_unavailable(&d, 15), (0, 2));
        assert_eq!(surge_and_unavailable(&d, 0), (0, 0));
    }
}
