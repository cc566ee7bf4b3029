//! The scheduling framework: one small trait per extension point (PreFilter, Filter,
//! PostFilter, PreScore, Score with NormalizeScore, Reserve, Permit, Bind) and the
//! [`Framework`] that runs the default plugins through them in kube-scheduler's order.
//!
//! kube passes plugin state through a string-keyed `CycleState` map. Here each PreFilter
//! and PreScore plugin names its state as an associated type, and [`CycleState`] has one
//! typed slot per plugin: no downcasts, and cloning it for a preemption simulation is a
//! plain `Clone`.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::parallel;
use crate::plugins::balanced_allocation::BalancedAllocation;
use crate::plugins::default_preemption::DefaultPreemption;
use crate::plugins::inter_pod_affinity::InterPodAffinity;
use crate::plugins::node_affinity::NodeAffinity;
use crate::plugins::node_name::NodeName;
use crate::plugins::node_ports::NodePorts;
use crate::plugins::node_resources_fit::NodeResourcesFit;
use crate::plugins::node_unschedulable::NodeUnschedulable;
use crate::plugins::pod_topology_spread::PodTopologySpread;
use crate::plugins::taint_toleration::TaintToleration;
use crate::plugins::{PluginName, PluginSet};
use crate::pod_info::PodInfo;
use crate::status::{Code, Status};

/// What plugins may read during one scheduling cycle: the cluster as the cache has it.
pub struct CycleContext<'a> {
    pub cache: &'a Cache,
    /// Threads the plugins may use for per-node work.
    pub parallelism: usize,
}

impl CycleContext<'_> {
    /// Every node entry (plugins skip those whose Node object does not exist).
    pub fn nodes(&self) -> &[NodeInfo] {
        self.cache.node_infos()
    }
}

/// Every plugin has a name.
pub trait Plugin: Send + Sync {
    fn name(&self) -> PluginName;
}

/// What a PreFilter plugin decided.
pub enum PreFilterResult<S> {
    /// Its Filter has nothing to check for this pod.
    Skip,
    /// Filter with this state.
    Run(S),
    /// Filter with this state, and only these nodes can pass at all (kube's
    /// `PreFilterResult.NodeNames`).
    RunOn(S, BTreeSet<String>),
    /// The pod cannot be scheduled anywhere.
    Reject(Status),
}

/// PreFilter: computes once per pod what Filter checks per node, and keeps it up to date
/// when a simulation adds or removes pods (preemption, nominated pods).
pub trait PreFilterPlugin: Plugin {
    type State: Clone + Send + Sync;

    fn pre_filter(&self, ctx: &CycleContext<'_>, pod: &PodInfo) -> PreFilterResult<Self::State>;

    /// `added` now counts on `node` (kube's `PreFilterExtensions.AddPod`).
    fn add_pod(
        &self,
        _ctx: &CycleContext<'_>,
        _state: &mut Self::State,
        _pod: &PodInfo,
        _added: &PodInfo,
        _node: &NodeInfo,
    ) {
    }

    /// `removed` no longer counts on `node` (kube's `PreFilterExtensions.RemovePod`).
    fn remove_pod(
        &self,
        _ctx: &CycleContext<'_>,
        _state: &mut Self::State,
        _pod: &PodInfo,
        _removed: &PodInfo,
        _node: &NodeInfo,
    ) {
    }
}

/// Filter: can the pod run on this node? Must be cheap: it runs for up to every node.
pub trait FilterPlugin: PreFilterPlugin {
    fn filter(&self, state: &Self::State, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status>;
}

/// PreScore: computes once per pod what Score reads per node. `None` skips the plugin's
/// scoring for this pod.
pub trait PreScorePlugin: Plugin {
    type ScoreState: Send + Sync;

    fn pre_score(
        &self,
        ctx: &CycleContext<'_>,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
    ) -> Option<Self::ScoreState>;
}

/// Score: ranks feasible nodes; NormalizeScore brings the plugin's scores to 0..=100.
pub trait ScorePlugin: PreScorePlugin {
    /// How much this plugin's normalized score counts.
    fn weight(&self) -> i64;

    fn score(&self, state: &Self::ScoreState, pod: &PodInfo, node: &NodeInfo) -> i64;

    fn normalize_score(
        &self,
        _state: &Self::ScoreState,
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _scores: &mut [i64],
    ) {
    }
}

/// Reserve: claims what the pod needs on its node before binding; `unreserve` undoes it
/// when a later phase fails.
pub trait ReservePlugin: Plugin {
    fn reserve(&self, pod: &PodInfo, node: &str) -> Result<(), Status>;
    fn unreserve(&self, pod: &PodInfo, node: &str);
}

/// Permit: the last word before binding. (kube's "wait" answer is not supported: a permit
/// plugin allows or rejects.)
pub trait PermitPlugin: Plugin {
    fn permit(&self, pod: &PodInfo, node: &str) -> Result<(), Status>;
}

/// A boxed future, for object-safe async traits.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Bind: makes the placement persistent (kube's DefaultBinder POSTs `pods/binding`).
pub trait BindPlugin: Send + Sync {
    fn bind(&self, pod: Arc<PodInfo>, node: String) -> BoxFuture<Result<(), BindError>>;
}

/// Why a binding failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("binding {pod} to {node}: {message}")]
pub struct BindError {
    pub pod: String,
    pub node: String,
    pub message: String,
}

/// Each Filter plugin's PreFilter state for the pod of this cycle; `None` where the plugin
/// skipped.
#[derive(Clone, Default)]
pub struct CycleState {
    pub node_unschedulable: Option<<NodeUnschedulable as PreFilterPlugin>::State>,
    pub node_name: Option<<NodeName as PreFilterPlugin>::State>,
    pub taint_toleration: Option<<TaintToleration as PreFilterPlugin>::State>,
    pub node_affinity: Option<<NodeAffinity as PreFilterPlugin>::State>,
    pub node_ports: Option<<NodePorts as PreFilterPlugin>::State>,
    pub fit: Option<<NodeResourcesFit as PreFilterPlugin>::State>,
    pub spread: Option<<PodTopologySpread as PreFilterPlugin>::State>,
    pub inter_pod_affinity: Option<<InterPodAffinity as PreFilterPlugin>::State>,
    /// The only nodes that can pass, when a PreFilter plugin narrowed them.
    pub node_names: Option<BTreeSet<String>>,
    /// The plugins that narrowed `node_names`.
    pub narrowed_by: Vec<PluginName>,
}

/// The plugins of one scheduler profile, in kube-scheduler v1.33's default order.
pub struct Framework {
    pub node_unschedulable: NodeUnschedulable,
    pub node_name: NodeName,
    pub taint_toleration: TaintToleration,
    pub node_affinity: NodeAffinity,
    pub node_ports: NodePorts,
    pub fit: NodeResourcesFit,
    pub spread: PodTopologySpread,
    pub inter_pod_affinity: InterPodAffinity,
    pub balanced_allocation: BalancedAllocation,
    pub preemption: DefaultPreemption,
    pub reserve: Vec<Box<dyn ReservePlugin>>,
    pub permit: Vec<Box<dyn PermitPlugin>>,
    pub disabled: PluginSet,
}

impl Default for Framework {
    fn default() -> Self {
        Framework::new()
    }
}

fn pre_filter_one<P: PreFilterPlugin>(
    plugin: &P,
    disabled: PluginSet,
    ctx: &CycleContext<'_>,
    pod: &PodInfo,
    slot: &mut Option<P::State>,
    node_names: &mut Option<BTreeSet<String>>,
    narrowed_by: &mut Vec<PluginName>,
) -> Result<(), Status> {
    if disabled.contains(plugin.name()) {
        return Ok(());
    }
    match plugin.pre_filter(ctx, pod) {
        PreFilterResult::Skip => {}
        PreFilterResult::Run(s) => *slot = Some(s),
        PreFilterResult::RunOn(s, names) => {
            *slot = Some(s);
            narrowed_by.push(plugin.name());
            *node_names = Some(match node_names.take() {
                None => names,
                Some(prev) => prev.intersection(&names).cloned().collect(),
            });
        }
        PreFilterResult::Reject(status) => return Err(status.with_plugin(plugin.name())),
    }
    Ok(())
}

fn filter_one<P: FilterPlugin>(
    plugin: &P,
    state: &Option<P::State>,
    pod: &PodInfo,
    node: &NodeInfo,
) -> Result<(), Status> {
    match state {
        Some(s) => plugin
            .filter(s, pod, node)
            .map_err(|e| e.with_plugin(plugin.name())),
        None => Ok(()),
    }
}

fn add_one<P: PreFilterPlugin>(
    plugin: &P,
    ctx: &CycleContext<'_>,
    state: &mut Option<P::State>,
    pod: &PodInfo,
    other: &PodInfo,
    node: &NodeInfo,
    add: bool,
) {
    if let Some(s) = state {
        if add {
            plugin.add_pod(ctx, s, pod, other, node);
        } else {
            plugin.remove_pod(ctx, s, pod, other, node);
        }
    }
}

fn score_one<P: ScorePlugin>(
    plugin: &P,
    disabled: PluginSet,
    ctx: &CycleContext<'_>,
    pod: &PodInfo,
    nodes: &[&NodeInfo],
    totals: &mut [i64],
) {
    if disabled.contains(plugin.name()) {
        return;
    }
    let Some(state) = plugin.pre_score(ctx, pod, nodes) else {
        return;
    };
    let mut scores = parallel::map(nodes.len(), ctx.parallelism, |i| {
        plugin.score(&state, pod, nodes[i])
    });
    plugin.normalize_score(&state, pod, nodes, &mut scores);
    let weight = plugin.weight();
    for (total, score) in totals.iter_mut().zip(scores) {
        *total += score * weight;
    }
}

impl Framework {
    pub fn new() -> Framework {
        Framework {
            node_unschedulable: NodeUnschedulable,
            node_name: NodeName,
            taint_toleration: TaintToleration,
            node_affinity: NodeAffinity,
            node_ports: NodePorts,
            fit: NodeResourcesFit,
            spread: PodTopologySpread::default(),
            inter_pod_affinity: InterPodAffinity::default(),
            balanced_allocation: BalancedAllocation,
            preemption: DefaultPreemption::default(),
            reserve: Vec::new(),
            permit: Vec::new(),
            disabled: PluginSet::default(),
        }
    }

    /// Runs every PreFilter plugin; the first rejection ends the cycle for the pod.
    pub fn run_pre_filter(
        &self,
        ctx: &CycleContext<'_>,
        pod: &PodInfo,
    ) -> Result<CycleState, Status> {
        let mut s = CycleState::default();
        let d = self.disabled;
        let (names, by) = (&mut s.node_names, &mut s.narrowed_by);
        pre_filter_one(
            &self.node_unschedulable,
            d,
            ctx,
            pod,
            &mut s.node_unschedulable,
            names,
            by,
        )?;
        pre_filter_one(&self.node_name, d, ctx, pod, &mut s.node_name, names, by)?;
        pre_filter_one(
            &self.taint_toleration,
            d,
            ctx,
            pod,
            &mut s.taint_toleration,
            names,
            by,
        )?;
        pre_filter_one(
            &self.node_affinity,
            d,
            ctx,
            pod,
            &mut s.node_affinity,
            names,
            by,
        )?;
        pre_filter_one(&self.node_ports, d, ctx, pod, &mut s.node_ports, names, by)?;
        pre_filter_one(&self.fit, d, ctx, pod, &mut s.fit, names, by)?;
        pre_filter_one(&self.spread, d, ctx, pod, &mut s.spread, names, by)?;
        pre_filter_one(
            &self.inter_pod_affinity,
            d,
            ctx,
            pod,
            &mut s.inter_pod_affinity,
            names,
            by,
        )?;
        Ok(s)
    }

    /// Runs every Filter plugin on one node; the first rejection is the node's status.
    pub fn run_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<(), Status> {
        filter_one(
            &self.node_unschedulable,
            &state.node_unschedulable,
            pod,
            node,
        )?;
        filter_one(&self.node_name, &state.node_name, pod, node)?;
        filter_one(&self.taint_toleration, &state.taint_toleration, pod, node)?;
        filter_one(&self.node_affinity, &state.node_affinity, pod, node)?;
        filter_one(&self.node_ports, &state.node_ports, pod, node)?;
        filter_one(&self.fit, &state.fit, pod, node)?;
        filter_one(&self.spread, &state.spread, pod, node)?;
        filter_one(
            &self.inter_pod_affinity,
            &state.inter_pod_affinity,
            pod,
            node,
        )?;
        Ok(())
    }

    /// Tells the PreFilter states that `other` was added to (or removed from) `node`.
    pub fn run_pre_filter_extension(
        &self,
        ctx: &CycleContext<'_>,
        state: &mut CycleState,
        pod: &PodInfo,
        other: &PodInfo,
        node: &NodeInfo,
        add: bool,
    ) {
        add_one(
            &self.node_unschedulable,
            ctx,
            &mut state.node_unschedulable,
            pod,
            other,
            node,
            add,
        );
        add_one(
            &self.node_name,
            ctx,
            &mut state.node_name,
            pod,
            other,
            node,
            add,
        );
        add_one(
            &self.taint_toleration,
            ctx,
            &mut state.taint_toleration,
            pod,
            other,
            node,
            add,
        );
        add_one(
            &self.node_affinity,
            ctx,
            &mut state.node_affinity,
            pod,
            other,
            node,
            add,
        );
        add_one(
            &self.node_ports,
            ctx,
            &mut state.node_ports,
            pod,
            other,
            node,
            add,
        );
        add_one(&self.fit, ctx, &mut state.fit, pod, other, node, add);
        add_one(&self.spread, ctx, &mut state.spread, pod, other, node, add);
        add_one(
            &self.inter_pod_affinity,
            ctx,
            &mut state.inter_pod_affinity,
            pod,
            other,
            node,
            add,
        );
    }

    /// Filters a node as if the pods nominated to it with at least the pod's priority were
    /// already there (kube's `RunFilterPluginsWithNominatedPods`): they would otherwise
    /// lose the room preemption made for them. The node must pass both with and without
    /// them, since a nominated pod may still go elsewhere.
    pub fn run_filter_with_nominated(
        &self,
        ctx: &CycleContext<'_>,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: &[Arc<PodInfo>],
    ) -> Result<(), Status> {
        let relevant: Vec<&Arc<PodInfo>> = nominated
            .iter()
            .filter(|p| p.key != pod.key && p.priority >= pod.priority)
            .collect();
        if !relevant.is_empty() {
            let mut state = state.clone();
            let mut node = node.clone();
            for p in relevant {
                let placed = Arc::new(p.assumed_on(&node.name));
                node.add_pod(placed.clone());
                self.run_pre_filter_extension(ctx, &mut state, pod, &placed, &node, true);
            }
            self.run_filter(&state, pod, &node)?;
        }
        self.run_filter(state, pod, node)
    }

    /// Runs every Score plugin over the feasible nodes: the weighted sum per node.
    pub fn run_score(
        &self,
        ctx: &CycleContext<'_>,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
    ) -> Vec<i64> {
        let mut totals = vec![0i64; nodes.len()];
        let d = self.disabled;
        score_one(&self.taint_toleration, d, ctx, pod, nodes, &mut totals);
        score_one(&self.node_affinity, d, ctx, pod, nodes, &mut totals);
        score_one(&self.fit, d, ctx, pod, nodes, &mut totals);
        score_one(&self.spread, d, ctx, pod, nodes, &mut totals);
        score_one(&self.inter_pod_affinity, d, ctx, pod, nodes, &mut totals);
        score_one(&self.balanced_allocation, d, ctx, pod, nodes, &mut totals);
        totals
    }

    /// Runs the Reserve plugins; on a failure, un-reserves those that succeeded.
    pub fn run_reserve(&self, pod: &PodInfo, node: &str) -> Result<(), Status> {
        for (i, p) in self.reserve.iter().enumerate() {
            if let Err(e) = p.reserve(pod, node) {
                for done in self.reserve[..i].iter().rev() {
                    done.unreserve(pod, node);
                }
                return Err(e.with_plugin(p.name()));
            }
        }
        Ok(())
    }

    pub fn run_unreserve(&self, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            p.unreserve(pod, node);
        }
    }

    pub fn run_permit(&self, pod: &PodInfo, node: &str) -> Result<(), Status> {
        for p in &self.permit {
            p.permit(pod, node).map_err(|e| e.with_plugin(p.name()))?;
        }
        Ok(())
    }
}

/// A Status for a cycle that broke rather than rejected.
pub fn internal_error(message: impl Into<String>) -> Status {
    Status::new(Code::Error, message.into())
}
