//! The scheduler's core, with no I/O: cluster changes go in ([`Input`]), decisions come
//! out ([`Action`]). It owns the cache, the queue and the nominations, and schedules one
//! pod per [`Scheduler::schedule_one`] call, assuming each placement at once so the next
//! pod sees it before the binding persists. The async shell in [`crate::run`] feeds it
//! from watches and carries out its actions through the API; tests drive it directly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;

use crate::cache::{Cache, Pdb, PodChange};
use crate::default_spread::{Owner, OwnerKind};
use crate::fast_hash::{FxHashMap, FxHashSet};
use crate::framework::Framework;
use crate::labels::NodeLabels;
use crate::nominator::Nominator;
use crate::plugins::PluginSet;
use crate::pod_info::{PodInfo, PodKey};
use crate::queue::{ClusterEvent, SchedulingQueue};
use crate::resource::Resource;
use crate::schedule_one::{CycleOutcome, Nomination, Rng, SearchOptions, schedule_pod};
use crate::taints::Taint;

/// How often the same failure message is repeated as an event for one pod.
const EVENT_REPEAT: Duration = Duration::from_secs(60);

/// The core's settings.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<u32>,
    pub parallelism: usize,
}

/// The kinds of objects the scheduler watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Node,
    Pod,
    Namespace,
    PodDisruptionBudget,
    /// Services and controllers: what the default topology spread selects by.
    Owner(OwnerKind),
}

/// A change the core learns of.
#[derive(Debug)]
pub enum Input {
    Node(Box<Node>),
    NodeDeleted(String),
    Pod(Arc<PodInfo>),
    PodDeleted(PodKey),
    Namespace {
        name: String,
        labels: BTreeMap<String, String>,
    },
    NamespaceDeleted(String),
    Pdb {
        key: String,
        pdb: Pdb,
    },
    PdbDeleted(String),
    Owner {
        kind: OwnerKind,
        key: String,
        owner: Owner,
    },
    OwnerDeleted(OwnerKind, String),
    /// A (re)list finished with exactly these keys: anything else of the kind is gone.
    Listed(Kind, Vec<String>),
    /// A binding persisted.
    Bound(PodKey),
    /// A binding failed.
    BindFailed {
        key: PodKey,
        error: String,
    },
}

/// Why a pod's PodScheduled condition is False.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// `Unschedulable`: no node fits.
    Unschedulable,
    /// `SchedulerError`: something broke.
    SchedulerError,
}

impl FailureReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            FailureReason::Unschedulable => "Unschedulable",
            FailureReason::SchedulerError => "SchedulerError",
        }
    }
}

/// What the shell must do through the API.
#[derive(Debug)]
pub enum Action {
    /// POST `pods/NAME/binding`; report back with [`Input::Bound`] or
    /// [`Input::BindFailed`].
    Bind { pod: Arc<PodInfo>, node: String },
    /// A scheduling attempt failed.
    Failed {
        pod: Arc<PodInfo>,
        reason: FailureReason,
        message: String,
        nomination: Nomination,
        /// Patch PodScheduled=False (and the nomination): it differs from the pod's.
        update_status: bool,
        /// Record a FailedScheduling event.
        record_event: bool,
    },
    /// Evict a pod to make room for a higher-priority one.
    Preempt {
        victim: Arc<PodInfo>,
        preemptor: Arc<PodInfo>,
        node: String,
    },
    /// Clear a pod's `status.nominatedNodeName`.
    ClearNomination { pod: Arc<PodInfo> },
}

/// Counts for logs and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub attempts: u64,
    pub scheduled: u64,
    pub unschedulable: u64,
    pub errors: u64,
    pub preemptions: u64,
}

/// The scheduling state machine.
pub struct Scheduler {
    config: CoreConfig,
    pub cache: Cache,
    pub queue: SchedulingQueue,
    pub nominator: Nominator,
    pub framework: Framework,
    next_start: usize,
    rng: Rng,
    /// Pods assumed and not yet reported bound, as they were before assuming, and where.
    binding: FxHashMap<PodKey, (Arc<PodInfo>, String)>,
    /// The last failure event per pod.
    last_event: FxHashMap<PodKey, (String, Instant)>,
    listed: FxHashSet<Kind>,
    pub stats: Stats,
}

/// The node properties scheduling reads: a change to any may help a waiting pod.
fn node_properties(cache: &Cache, name: &str) -> Option<(NodeLabels, Vec<Taint>, bool, Resource)> {
    cache.node(name).filter(|n| n.exists).map(|n| {
        (
            n.labels.clone(),
            n.taints.clone(),
            n.unschedulable,
            n.allocatable.clone(),
        )
    })
}

impl Scheduler {
    pub fn new(config: CoreConfig) -> Scheduler {
        Scheduler {
            config,
            cache: Cache::new(),
            queue: SchedulingQueue::new(),
            nominator: Nominator::default(),
            framework: Framework::new(),
            next_start: 0,
            rng: Rng::from_time(),
            binding: FxHashMap::default(),
            last_event: FxHashMap::default(),
            listed: FxHashSet::default(),
            stats: Stats::default(),
        }
    }

    /// A fixed random seed (tests).
    pub fn with_seed(mut self, seed: u64) -> Scheduler {
        self.rng = Rng::new(seed);
        self
    }

    /// Whether nodes, pods and namespaces have been listed once: scheduling on a partial
    /// picture of the cluster would misplace pods.
    pub fn synced(&self) -> bool {
        [Kind::Node, Kind::Pod, Kind::Namespace]
            .iter()
            .all(|k| self.listed.contains(k))
    }

    /// When the queue next needs attention without any input.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.queue.next_wakeup()
    }

    fn is_ours(&self, pod: &PodInfo) -> bool {
        pod.scheduler_name == self.config.scheduler_name
    }

    /// Applies one change.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Node(node) => {
                let name = node.metadata.name.clone().unwrap_or_default();
                let before = node_properties(&self.cache, &name);
                self.cache.apply_node(&node);
                if before.is_none() {
                    self.queue.move_for(ClusterEvent::NodeAdd, now);
                } else if before != node_properties(&self.cache, &name) {
                    self.queue.move_for(ClusterEvent::NodeUpdate, now);
                }
            }
            Input::NodeDeleted(name) => self.cache.delete_node(&name),
            Input::Pod(pod) => self.handle_pod(pod, now),
            Input::PodDeleted(key) => self.pod_gone(&key, now),
            Input::Namespace { name, labels } => {
                let changed = *self.cache.namespace_labels(&name) != labels;
                self.cache.apply_namespace(&name, labels);
                if changed {
                    self.queue.move_for(ClusterEvent::NamespaceChange, now);
                }
            }
            Input::NamespaceDeleted(name) => self.cache.delete_namespace(&name),
            Input::Pdb { key, pdb } => self.cache.apply_pdb(&key, pdb),
            Input::PdbDeleted(key) => self.cache.delete_pdb(&key),
            Input::Owner { kind, key, owner } => self.cache.owners.apply(kind, key, owner),
            Input::OwnerDeleted(kind, key) => self.cache.owners.delete(kind, &key),
            Input::Listed(kind, keys) => self.relisted(kind, keys, now),
            Input::Bound(key) => {
                self.binding.remove(&key);
            }
            Input::BindFailed { key, error } => {
                tracing::warn!(pod = %key, "binding failed: {error}");
                if let Some((original, node)) = self.binding.remove(&key) {
                    if self.cache.is_assumed(&key) {
                        self.framework.run_unreserve(&original, &node);
                    }
                    self.cache.forget(&key);
                    self.queue.requeue_after_bind_failure(original, now);
                }
            }
        }
    }

    fn handle_pod(&mut self, pod: Arc<PodInfo>, now: Instant) {
        if pod.terminal {
            self.pod_gone(&pod.key, now);
            return;
        }
        if pod.node_name.is_some() {
            self.queue.delete(&pod.key);
            self.nominator.remove(&pod.key);
            self.last_event.remove(&pod.key);
            match self.cache.apply_pod(pod) {
                PodChange::Added => self.queue.move_for(ClusterEvent::AssignedPodAdd, now),
                PodChange::Updated => self.queue.move_for(ClusterEvent::AssignedPodUpdate, now),
                PodChange::Confirmed => {}
            }
            return;
        }
        if !self.is_ours(&pod) || pod.terminating {
            self.queue.delete(&pod.key);
            self.nominator.remove(&pod.key);
            return;
        }
        // Updates to a pod already placed are the scheduler's own status writes.
        if self.cache.is_assumed(&pod.key) {
            return;
        }
        match &pod.nominated_node {
            Some(node) => self.nominator.add(pod.clone(), node),
            None => self.nominator.remove(&pod.key),
        }
        self.queue.add(pod, now);
    }

    fn pod_gone(&mut self, key: &str, now: Instant) {
        self.queue.delete(key);
        self.nominator.remove(key);
        self.binding.remove(key);
        self.last_event.remove(key);
        if self.cache.delete_pod(key).is_some() {
            self.queue.move_for(ClusterEvent::AssignedPodDelete, now);
        }
    }

    fn relisted(&mut self, kind: Kind, keys: Vec<String>, now: Instant) {
        self.listed.insert(kind);
        let present: FxHashSet<String> = keys.into_iter().collect();
        match kind {
            Kind::Node => {
                for name in self.cache.node_names() {
                    if !present.contains(&name) {
                        self.cache.delete_node(&name);
                    }
                }
            }
            Kind::Pod => {
                let mut known = self.cache.bound_pod_keys();
                known.extend(self.queue.keys());
                known.extend(self.binding.keys().cloned());
                for key in known {
                    if !present.contains(&key) {
                        self.pod_gone(&key, now);
                    }
                }
            }
            Kind::Namespace => {
                for name in self.cache.namespace_names() {
                    if !present.contains(&name) {
                        self.cache.delete_namespace(&name);
                    }
                }
            }
            Kind::PodDisruptionBudget => {
                for key in self.cache.pdb_keys() {
                    if !present.contains(&key) {
                        self.cache.delete_pdb(&key);
                    }
                }
            }
            Kind::Owner(owner) => {
                for key in self.cache.owners.keys(owner) {
                    if !present.contains(&key) {
                        self.cache.owners.delete(owner, &key);
                    }
                }
            }
        }
    }

    /// Moves pods whose back-off ended to the active queue.
    pub fn flush(&mut self, now: Instant) {
        self.queue.flush(now);
    }

    /// Schedules the next pod: `None` when no pod is ready.
    pub fn schedule_one(&mut self, now: Instant) -> Option<Vec<Action>> {
        let pod = self.queue.pop()?;
        if pod.node_name.is_some() || pod.terminating || self.cache.contains_pod(&pod.key) {
            self.queue.done(&pod.key);
            return Some(Vec::new());
        }
        self.stats.attempts += 1;
        let opts = SearchOptions {
            percentage_of_nodes_to_score: self.config.percentage_of_nodes_to_score,
            parallelism: self.config.parallelism,
        };
        let outcome = schedule_pod(
            &self.framework,
            &self.cache,
            &pod,
            &self.nominator,
            &opts,
            &mut self.next_start,
            &mut self.rng,
        );
        Some(match outcome {
            CycleOutcome::Fits { node, .. } => self.place(pod, node, now),
            CycleOutcome::Unschedulable {
                message,
                plugins,
                nomination,
                victims,
                victims_node,
                lower_nominated,
            } => {
                self.stats.unschedulable += 1;
                let mut actions = Vec::new();
                if let (Some(node), false) = (&victims_node, victims.is_empty()) {
                    self.stats.preemptions += 1;
                    for victim in victims.into_iter().filter(|v| !v.terminating) {
                        actions.push(Action::Preempt {
                            victim,
                            preemptor: pod.clone(),
                            node: node.clone(),
                        });
                    }
                }
                for p in lower_nominated {
                    self.nominator.remove(&p.key);
                    actions.push(Action::ClearNomination { pod: p });
                }
                match &nomination {
                    Nomination::Set(node) => self.nominator.add(pod.clone(), node),
                    Nomination::Clear => self.nominator.remove(&pod.key),
                    Nomination::Keep => {}
                }
                self.queue.unschedulable(&pod.key, plugins, now);
                actions.push(self.failed(
                    pod,
                    FailureReason::Unschedulable,
                    message,
                    nomination,
                    now,
                ));
                actions
            }
            CycleOutcome::Error(message) => {
                self.stats.errors += 1;
                self.queue.backoff(&pod.key, now);
                vec![self.failed(
                    pod,
                    FailureReason::SchedulerError,
                    message,
                    Nomination::Keep,
                    now,
                )]
            }
        })
    }

    /// Reserve, assume, permit, then bind.
    fn place(&mut self, pod: Arc<PodInfo>, node: String, now: Instant) -> Vec<Action> {
        if let Err(status) = self.framework.run_reserve(&pod, &node) {
            self.stats.errors += 1;
            self.queue.backoff(&pod.key, now);
            return vec![self.failed(
                pod,
                FailureReason::SchedulerError,
                status.message(),
                Nomination::Keep,
                now,
            )];
        }
        let assumed = Arc::new(pod.assumed_on(&node));
        self.cache.assume(assumed.clone());
        if let Err(status) = self.framework.run_permit(&pod, &node) {
            self.cache.forget(&pod.key);
            self.framework.run_unreserve(&pod, &node);
            let mut plugins = PluginSet::default();
            if let Some(p) = status.plugin {
                plugins.insert(p);
            }
            self.queue.unschedulable(&pod.key, plugins, now);
            let reason = if status.is_rejected() {
                FailureReason::Unschedulable
            } else {
                FailureReason::SchedulerError
            };
            return vec![self.failed(pod, reason, status.message(), Nomination::Keep, now)];
        }
        self.stats.scheduled += 1;
        self.queue.done(&pod.key);
        self.nominator.remove(&pod.key);
        self.last_event.remove(&pod.key);
        self.binding.insert(pod.key.clone(), (pod, node.clone()));
        vec![Action::Bind { pod: assumed, node }]
    }

    fn failed(
        &mut self,
        pod: Arc<PodInfo>,
        reason: FailureReason,
        message: String,
        nomination: Nomination,
        now: Instant,
    ) -> Action {
        let condition = pod.pod.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "PodScheduled")
        });
        let same_condition = condition.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason.as_str())
                && c.message.as_deref() == Some(message.as_str())
        });
        let nomination = match nomination {
            Nomination::Set(n) if pod.nominated_node.as_deref() == Some(n.as_str()) => {
                Nomination::Keep
            }
            Nomination::Clear if pod.nominated_node.is_none() => Nomination::Keep,
            other => other,
        };
        let record_event = match self.last_event.get(&pod.key) {
            Some((last, at)) => *last != message || now.duration_since(*at) >= EVENT_REPEAT,
            None => true,
        };
        if record_event {
            self.last_event
                .insert(pod.key.clone(), (message.clone(), now));
        }
        tracing::debug!(pod = %pod.key, "{}: {message}", reason.as_str());
        Action::Failed {
            update_status: !same_condition || nomination != Nomination::Keep,
            pod,
            reason,
            message,
            nomination,
            record_event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;

    fn scheduler(nodes: &[Node]) -> Scheduler {
        let mut s = Scheduler::new(CoreConfig {
            scheduler_name: "default-scheduler".into(),
            percentage_of_nodes_to_score: None,
            parallelism: 2,
        })
        .with_seed(42);
        let now = Instant::now();
        for n in nodes {
            s.handle(Input::Node(Box::new(n.clone())), now);
        }
        s.handle(
            Input::Listed(
                Kind::Node,
                nodes
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .collect(),
            ),
            now,
        );
        s.handle(Input::Listed(Kind::Pod, vec![]), now);
        s.handle(
            Input::Namespace {
                name: "default".into(),
                labels: BTreeMap::new(),
            },
            now,
        );
        s.handle(Input::Listed(Kind::Namespace, vec!["default".into()]), now);
        assert!(s.synced());
        s
    }

    /// Schedules everything ready; binds succeed at once. Returns (pod, node or message).
    fn run(s: &mut Scheduler) -> Vec<(String, String)> {
        let now = Instant::now();
        let mut out = Vec::new();
        while let Some(actions) = s.schedule_one(now) {
            for a in actions {
                match a {
                    Action::Bind { pod, node } => {
                        s.handle(Input::Bound(pod.key.clone()), now);
                        let mut bound = (*pod.pod).clone();
                        if let Some(spec) = bound.spec.as_mut() {
                            spec.node_name = Some(node.clone());
                        }
                        s.handle(Input::Pod(Arc::new(PodInfo::new(Arc::new(bound)))), now);
                        out.push((pod.name.clone(), node));
                    }
                    Action::Failed { pod, message, .. } => out.push((pod.name.clone(), message)),
                    _ => {}
                }
            }
        }
        out
    }

    fn add(s: &mut Scheduler, p: Arc<PodInfo>) {
        s.handle(Input::Pod(p), Instant::now());
    }

    #[test]
    fn places_pods_where_they_fit_and_reports_those_that_do_not() {
        let mut s = scheduler(&[
            node("small", "1", "1Gi").0,
            node("big", "4", "8Gi").0,
            node("cp", "8", "8Gi")
                .taint("node-role.kubernetes.io/control-plane", "", "NoSchedule")
                .0,
        ]);
        add(&mut s, pod("a").req("2", "1Gi").info());
        add(&mut s, pod("b").req("2", "1Gi").info());
        add(&mut s, pod("c").req("2", "1Gi").info());
        let out = run(&mut s);
        assert_eq!(out[0], ("a".to_owned(), "big".to_owned()));
        assert_eq!(
            out[1],
            ("b".to_owned(), "big".to_owned()),
            "the assumed pod counts"
        );
        assert_eq!(out[2].0, "c");
        assert_eq!(
            out[2].1,
            "0/3 nodes are available: 1 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 \
             nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption \
             victims found for incoming pod.."
        );
        assert_eq!(s.stats.scheduled, 2);
        // A new node helps the waiting pod.
        s.handle(
            Input::Node(Box::new(node("new", "4", "8Gi").0)),
            Instant::now(),
        );
        s.flush(Instant::now() + Duration::from_secs(2));
        let out = run(&mut s);
        assert_eq!(out, vec![("c".to_owned(), "new".to_owned())]);
    }

    #[test]
    fn anti_affinity_spreads_pods_one_per_node() {
        let mut s = scheduler(&[
            node("n1", "4", "8Gi").0,
            node("n2", "4", "8Gi").0,
            node("n3", "4", "8Gi").0,
        ]);
        for i in 0..4 {
            add(
                &mut s,
                pod(&format!("web-{i}"))
                    .label("app", "web")
                    .anti_affinity("app", "web", "kubernetes.io/hostname")
                    .info(),
            );
        }
        let out = run(&mut s);
        let mut nodes: Vec<&str> = out[..3].iter().map(|(_, n)| n.as_str()).collect();
        nodes.sort();
        assert_eq!(nodes, ["n1", "n2", "n3"]);
        assert_eq!(
            out[3].1,
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
             preemption: 0/3 nodes are available: 3 No preemption victims found for incoming \
             pod.."
        );
    }

    #[test]
    fn preemption_nominates_and_evicts_the_lowest_priority_pod() {
        let mut s = scheduler(&[node("n1", "2", "4Gi").0, node("n2", "2", "4Gi").0]);
        add(
            &mut s,
            pod("low").req("2", "").priority(1).node("n1").info(),
        );
        add(
            &mut s,
            pod("mid").req("2", "").priority(5).node("n2").info(),
        );
        add(&mut s, pod("high").req("2", "").priority(10).info());
        let actions = s.schedule_one(Instant::now()).unwrap();
        let victims: Vec<(String, String)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Preempt { victim, node, .. } => Some((victim.name.clone(), node.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(victims, vec![("low".to_owned(), "n1".to_owned())]);
        let failed = actions.iter().find_map(|a| match a {
            Action::Failed {
                message,
                nomination,
                ..
            } => Some((message.clone(), nomination.clone())),
            _ => None,
        });
        assert_eq!(
            failed,
            Some((
                "0/2 nodes are available: 2 Insufficient cpu.".to_owned(),
                Nomination::Set("n1".to_owned())
            ))
        );
        assert_eq!(s.nominator.node_of("default/high"), Some("n1"));
        // A lower-priority pod may not take the room made for the nominated one.
        add(&mut s, pod("sneaky").req("1", "").priority(2).info());
        s.handle(Input::PodDeleted("default/low".into()), Instant::now());
        let out = run(&mut s);
        assert!(
            out.iter()
                .any(|(p, m)| p == "sneaky" && m.starts_with("0/2 nodes")),
            "{out:?}"
        );
        // The victim is gone: the preemptor is tried again after its back-off.
        s.flush(Instant::now() + Duration::from_secs(2));
        let out = run(&mut s);
        assert!(
            out.contains(&("high".to_owned(), "n1".to_owned())),
            "{out:?}"
        );
    }

    #[test]
    fn preemption_policy_never() {
        let mut s = scheduler(&[node("n1", "1", "1Gi").0]);
        add(
            &mut s,
            pod("low").req("1", "").priority(1).node("n1").info(),
        );
        let mut p = pod("high").req("1", "").priority(10);
        if let Some(spec) = p.0.spec.as_mut() {
            spec.preemption_policy = Some("Never".into());
        }
        add(&mut s, p.info());
        let out = run(&mut s);
        assert_eq!(
            out,
            vec![(
                "high".to_owned(),
                "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to \
                 preemptionPolicy=Never.."
                    .to_owned()
            )]
        );
    }

    #[test]
    fn pods_of_a_service_are_spread_by_the_system_defaults() {
        let place = |with_service: bool| {
            let mut s = scheduler(&[node("n0", "8", "8Gi").0, node("n1", "8", "8Gi").0]);
            if with_service {
                s.handle(
                    Input::Owner {
                        kind: OwnerKind::Service,
                        key: "default/web".into(),
                        owner: Owner {
                            namespace: "default".into(),
                            name: "web".into(),
                            labels: [("app".to_owned(), "web".to_owned())].into(),
                            selector: None,
                        },
                    },
                    Instant::now(),
                );
            }
            for i in 0..3 {
                let p = pod(&format!("old{i}")).label("app", "web").req("100m", "");
                add(&mut s, p.node("n0").info());
            }
            // n1 is busier with something else: without spreading, n0 scores higher.
            add(&mut s, pod("busy").req("2", "").node("n1").info());
            add(
                &mut s,
                pod("new").label("app", "web").req("100m", "").info(),
            );
            run(&mut s)
        };
        assert_eq!(place(false), vec![("new".to_owned(), "n0".to_owned())]);
        assert_eq!(place(true), vec![("new".to_owned(), "n1".to_owned())]);
    }

    #[test]
    fn topology_spread_over_zones() {
        let mut nodes = Vec::new();
        for (i, zone) in ["a", "a", "b", "b", "c", "c"].iter().enumerate() {
            nodes.push(node(&format!("n{i}"), "8", "8Gi").label("zone", zone).0);
        }
        let mut s = scheduler(&nodes);
        for i in 0..9 {
            add(
                &mut s,
                pod(&format!("p{i}"))
                    .label("app", "x")
                    .spread(1, "zone", true, "app", "x")
                    .info(),
            );
        }
        let out = run(&mut s);
        let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
        for (_, node) in &out {
            let zone = s
                .cache
                .node(node)
                .unwrap()
                .labels
                .get("zone")
                .unwrap()
                .to_string();
            *per_zone.entry(zone).or_default() += 1;
        }
        assert_eq!(per_zone.into_values().collect::<Vec<_>>(), [3, 3, 3]);

        // The counts kept between cycles equal counts made from scratch, after deletions
        // too.
        s.handle(Input::PodDeleted("default/p0".into()), Instant::now());
        s.handle(Input::NodeDeleted("n5".into()), Instant::now());
        let probe = pod("probe")
            .label("app", "x")
            .spread(1, "zone", true, "app", "x")
            .info();
        let ctx = crate::framework::CycleContext {
            cache: &s.cache,
            parallelism: 1,
        };
        use crate::framework::{PreFilterPlugin, PreFilterResult};
        use crate::plugins::pod_topology_spread::{PodTopologySpread, domain_counts};
        let kept = match s.framework.spread.pre_filter(&ctx, &probe) {
            PreFilterResult::Run(state) => domain_counts(&state, 0),
            _ => panic!("expected a state"),
        };
        let fresh = match PodTopologySpread::default().pre_filter(&ctx, &probe) {
            PreFilterResult::Run(state) => domain_counts(&state, 0),
            _ => panic!("expected a state"),
        };
        assert_eq!(kept, fresh);
        assert!(
            fresh.values().sum::<i64>() < 9,
            "p0 and n5's pods are not counted"
        );
    }

    #[test]
    fn failed_bindings_are_forgotten_and_retried() {
        let mut s = scheduler(&[node("n1", "1", "1Gi").0]);
        add(&mut s, pod("p").req("1", "").info());
        let actions = s.schedule_one(Instant::now()).unwrap();
        assert!(matches!(&actions[0], Action::Bind { node, .. } if node == "n1"));
        assert_eq!(s.cache.node("n1").unwrap().requested.milli_cpu, 1000);
        s.handle(
            Input::BindFailed {
                key: "default/p".into(),
                error: "boom".into(),
            },
            Instant::now(),
        );
        assert_eq!(s.cache.node("n1").unwrap().requested.milli_cpu, 0);
        s.flush(Instant::now() + Duration::from_secs(2));
        let out = run(&mut s);
        assert_eq!(out, vec![("p".to_owned(), "n1".to_owned())]);
    }

    #[test]
    fn a_relist_forgets_pods_deleted_meanwhile() {
        let mut s = scheduler(&[node("n1", "1", "1Gi").0]);
        add(&mut s, pod("queued").req("2", "").info());
        add(&mut s, pod("bound").req("100m", "").node("n1").info());
        assert_eq!(s.cache.node("n1").unwrap().requested.milli_cpu, 100);
        s.handle(Input::Listed(Kind::Pod, vec![]), Instant::now());
        assert!(s.queue.is_empty());
        assert_eq!(s.cache.node("n1").unwrap().requested.milli_cpu, 0);
    }

    #[test]
    fn waits_for_the_first_lists() {
        let s = Scheduler::new(CoreConfig {
            scheduler_name: "default-scheduler".into(),
            percentage_of_nodes_to_score: None,
            parallelism: 1,
        });
        assert!(!s.synced());
    }

    #[test]
    fn other_schedulers_pods_are_left_alone() {
        let mut s = scheduler(&[node("n1", "1", "1Gi").0]);
        let mut p = pod("p");
        if let Some(spec) = p.0.spec.as_mut() {
            spec.scheduler_name = Some("other".into());
        }
        add(&mut s, p.info());
        assert!(s.schedule_one(Instant::now()).is_none());
    }
}
