//! PodTopologySpread: `whenUnsatisfiable: DoNotSchedule` constraints filter nodes whose
//! domain would exceed `maxSkew` over the least loaded domain (with `minDomains`);
//! `ScheduleAnyway` constraints score nodes by how many matching pods their domain holds.
//! Domains count nodes that pass the pod's node affinity (`nodeAffinityPolicy: Honor`,
//! the default) and, with `nodeTaintsPolicy: Honor`, whose taints it tolerates.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fast_hash::{FxHashMap, FxHashSet};
use crate::framework::{
    CycleContext, FilterPlugin, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin,
    ScorePlugin,
};
use crate::labels::RequiredNodeAffinity;
use crate::labels::Selector;
use crate::node_info::NodeInfo;
use crate::node_memo::SharedIncremental;
use crate::plugins::{MAX_NODE_SCORE, PluginName};
use crate::pod_info::{PodInfo, SpreadConstraint};
use crate::status::Status;
use crate::taints::Toleration;
use crate::taints::{do_not_schedule, find_untolerated};

/// kube's `ErrReasonConstraintsNotMatch`.
pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
/// kube's `ErrReasonNodeLabelNotMatch`.
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// kube-scheduler's default weight.
pub const WEIGHT: i64 = 2;
/// The per-node topology key, counted at Score time.
pub const HOSTNAME: &str = "kubernetes.io/hostname";

/// Per constraint: each domain's eligible nodes and matching pods.
type Domains = Vec<FxHashMap<Arc<str>, (i64, i64)>>;
/// One node's part: per constraint, its domain and matching pods, when it counts.
type NodePart = Vec<Option<(Arc<str>, i64)>>;

/// The plugin, with the cluster-wide domain counts kept between cycles (see
/// [`crate::node_memo`]).
#[derive(Default)]
pub struct PodTopologySpread {
    filter_sums: SharedIncremental<SumsKey, NodePart, Domains>,
    score_sums: SharedIncremental<SumsKey, NodePart, Domains>,
}

/// What the counts depend on besides the nodes: the pod's namespace, its constraints,
/// and what the inclusion policies read of it.
#[derive(Debug, PartialEq)]
struct SumsKey {
    namespace: String,
    constraints: Vec<SpreadConstraint>,
    node_affinity: Option<RequiredNodeAffinity>,
    tolerations: Option<Vec<Toleration>>,
}

impl SumsKey {
    fn new(pod: &PodInfo, constraints: &[SpreadConstraint]) -> SumsKey {
        SumsKey {
            namespace: pod.namespace.clone(),
            constraints: constraints.to_vec(),
            node_affinity: constraints
                .iter()
                .any(|c| c.honor_node_affinity)
                .then(|| pod.required_node_affinity.clone()),
            tolerations: constraints
                .iter()
                .any(|c| c.honor_node_taints)
                .then(|| pod.tolerations.clone()),
        }
    }
}

/// A node's domain and matching pods per constraint; `None` for a node missing a
/// topology key.
fn node_part(pod: &PodInfo, constraints: &[SpreadConstraint], node: &NodeInfo) -> Option<NodePart> {
    if !node.exists || !has_all_keys(node, constraints) {
        return None;
    }
    Some(
        constraints
            .iter()
            .map(|c| {
                if !includes(c, pod, node) {
                    return None;
                }
                let value = node.labels.get(c.topology_key.as_str())?;
                Some((
                    value.clone(),
                    count_matching(node, &c.selector, &pod.namespace),
                ))
            })
            .collect(),
    )
}

fn apply_part(domains: &mut Domains, part: &NodePart, sign: i64) {
    if domains.len() < part.len() {
        domains.resize_with(part.len(), FxHashMap::default);
    }
    for (i, p) in part.iter().enumerate() {
        if let Some((value, pods)) = p {
            let e = domains[i].entry(value.clone()).or_insert((0, 0));
            e.0 += sign;
            e.1 += sign * pods;
            if e.0 == 0 {
                domains[i].remove(&**value);
            }
        }
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> PluginName {
        PluginName::PodTopologySpread
    }
}

fn has_all_keys(node: &NodeInfo, constraints: &[SpreadConstraint]) -> bool {
    constraints
        .iter()
        .all(|c| node.labels.contains_key(c.topology_key.as_str()))
}

/// Whether the node's domain counts for this constraint (kube's
/// `matchNodeInclusionPolicies`).
fn includes(c: &SpreadConstraint, pod: &PodInfo, node: &NodeInfo) -> bool {
    if c.honor_node_affinity && !pod.required_node_affinity.matches(&node.name, &node.labels) {
        return false;
    }
    if c.honor_node_taints
        && find_untolerated(&node.taints, &pod.tolerations, do_not_schedule).is_some()
    {
        return false;
    }
    true
}

/// Pods on the node in the namespace matching the selector, terminating ones aside (kube's
/// `countPodsMatchSelector`; an empty selector counts nothing).
fn count_matching(node: &NodeInfo, selector: &Selector, namespace: &str) -> i64 {
    if selector.is_empty() {
        return 0;
    }
    node.pods
        .iter()
        .filter(|p| !p.terminating && p.namespace == namespace && selector.matches(p.labels()))
        .count() as i64
}

/// Matching pods per domain for each DoNotSchedule constraint.
#[derive(Debug, Clone)]
pub struct FilterState {
    constraints: Vec<SpreadConstraint>,
    domains: Arc<Domains>,
    /// The least count over each constraint's domains (kube's critical path).
    min: Vec<i64>,
}

impl FilterState {
    fn recompute_min(&mut self, i: usize) {
        self.min[i] = self
            .domains
            .get(i)
            .and_then(|d| d.values().map(|(_, pods)| *pods).min())
            .unwrap_or(i64::MAX);
    }

    fn domain_count(&self, i: usize) -> i64 {
        self.domains.get(i).map_or(0, |d| d.len() as i64)
    }

    fn matching(&self, i: usize, value: &str) -> i64 {
        self.domains
            .get(i)
            .and_then(|d| d.get(value))
            .map_or(0, |(_, pods)| *pods)
    }

    /// The global minimum, 0 while fewer than `minDomains` domains exist.
    fn min_match(&self, i: usize) -> i64 {
        if self.domain_count(i) < self.constraints[i].min_domains {
            0
        } else {
            self.min[i]
        }
    }

    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, delta: i64) {
        if other.namespace != pod.namespace || !has_all_keys(node, &self.constraints) {
            return;
        }
        for i in 0..self.constraints.len() {
            let c = &self.constraints[i];
            if !c.selector.matches(other.labels()) || !includes(c, pod, node) {
                continue;
            }
            let Some(value) = node.labels.get(c.topology_key.as_str()) else {
                continue;
            };
            let domains = Arc::make_mut(&mut self.domains);
            if domains.len() <= i {
                domains.resize_with(i + 1, FxHashMap::default);
            }
            domains[i].entry(value.clone()).or_insert((1, 0)).1 += delta;
            self.recompute_min(i);
        }
    }
}

impl PreFilterPlugin for PodTopologySpread {
    type State = FilterState;

    fn pre_filter(&self, ctx: &CycleContext<'_>, pod: &PodInfo) -> PreFilterResult<FilterState> {
        let constraints: Vec<SpreadConstraint> = pod
            .spread_constraints
            .iter()
            .filter(|c| c.hard)
            .cloned()
            .collect();
        if constraints.is_empty() {
            return PreFilterResult::Skip;
        }
        let domains = self
            .filter_sums
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .refresh(
                SumsKey::new(pod, &constraints),
                ctx.nodes(),
                |node| node_part(pod, &constraints, node),
                apply_part,
            );
        let mut state = FilterState {
            min: vec![i64::MAX; constraints.len()],
            constraints,
            domains,
        };
        for i in 0..state.constraints.len() {
            state.recompute_min(i);
        }
        PreFilterResult::Run(state)
    }

    fn add_pod(
        &self,
        _ctx: &CycleContext<'_>,
        state: &mut FilterState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
    ) {
        state.update(pod, added, node, 1);
    }

    fn remove_pod(
        &self,
        _ctx: &CycleContext<'_>,
        state: &mut FilterState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
    ) {
        state.update(pod, removed, node, -1);
    }
}

impl FilterPlugin for PodTopologySpread {
    /// `matching pods in the node's domain + (1 if the pod matches itself) - global
    /// minimum <= maxSkew`, for every constraint.
    fn filter(&self, state: &FilterState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        for (i, c) in state.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(c.topology_key.as_str()) else {
                return Err(Status::unresolvable(REASON_MISSING_LABEL));
            };
            let self_match = i64::from(c.selector.matches(pod.labels()));
            let matching = state.matching(i, value);
            if matching + self_match - state.min_match(i) > c.max_skew {
                return Err(Status::unschedulable(REASON));
            }
        }
        Ok(())
    }
}

/// What Score needs for the ScheduleAnyway constraints.
pub struct ScoreState {
    constraints: Vec<SpreadConstraint>,
    /// Feasible nodes missing a topology key: not scored.
    ignored: FxHashSet<String>,
    /// Matching pods per domain of the feasible nodes (hostname domains are counted at
    /// Score time).
    counts: Vec<FxHashMap<Arc<str>, i64>>,
    /// `ln(domains + 2)`: smaller topologies weigh more.
    weights: Vec<f64>,
}

impl PreScorePlugin for PodTopologySpread {
    type ScoreState = ScoreState;

    fn pre_score(
        &self,
        ctx: &CycleContext<'_>,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
    ) -> Option<ScoreState> {
        if nodes.is_empty() {
            return None;
        }
        // Without constraints of its own, a pod gets the system defaults (if a service or
        // controller selects it), which do not require nodes to carry every key.
        let system_defaulted = pod.spread_constraints.is_empty();
        let constraints: Vec<SpreadConstraint> = if system_defaulted {
            ctx.cache.owners.default_constraints(pod)
        } else {
            pod.spread_constraints
                .iter()
                .filter(|c| !c.hard)
                .cloned()
                .collect()
        };
        if constraints.is_empty() {
            return None;
        }
        let mut state = ScoreState {
            ignored: FxHashSet::default(),
            counts: vec![FxHashMap::default(); constraints.len()],
            weights: Vec::with_capacity(constraints.len()),
            constraints,
        };
        for node in nodes {
            if !system_defaulted && !has_all_keys(node, &state.constraints) {
                state.ignored.insert(node.name.clone());
                continue;
            }
            for (i, c) in state.constraints.iter().enumerate() {
                if c.topology_key == HOSTNAME {
                    continue;
                }
                if let Some(value) = node.labels.get(c.topology_key.as_str()) {
                    state.counts[i].entry(value.clone()).or_default();
                }
            }
        }
        for (i, c) in state.constraints.iter().enumerate() {
            let size = if c.topology_key == HOSTNAME {
                nodes.len() - state.ignored.len()
            } else {
                state.counts[i].len()
            };
            state.weights.push(((size + 2) as f64).ln());
        }
        let totals = self
            .score_sums
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .refresh(
                SumsKey::new(pod, &state.constraints),
                ctx.nodes(),
                |node| node_part(pod, &state.constraints, node),
                apply_part,
            );
        for (i, counts) in state.counts.iter_mut().enumerate() {
            for (value, count) in counts.iter_mut() {
                *count += totals
                    .get(i)
                    .and_then(|d| d.get(value))
                    .map_or(0, |(_, pods)| *pods);
            }
        }
        Some(state)
    }
}

impl ScorePlugin for PodTopologySpread {
    fn weight(&self) -> i64 {
        WEIGHT
    }

    /// The (weighted) matching pods in the node's domains: fewer is better.
    fn score(&self, state: &ScoreState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        if state.ignored.contains(&node.name) {
            return 0;
        }
        let mut score = 0.0;
        for (i, c) in state.constraints.iter().enumerate() {
            let Some(value) = node.labels.get(c.topology_key.as_str()) else {
                continue;
            };
            let count = if c.topology_key == HOSTNAME {
                count_matching(node, &c.selector, &pod.namespace)
            } else {
                state.counts[i].get(&**value).copied().unwrap_or(0)
            };
            score += count as f64 * state.weights[i] + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    /// The fewest matching pods get 100; ignored nodes 0.
    fn normalize_score(
        &self,
        state: &ScoreState,
        _pod: &PodInfo,
        nodes: &[&NodeInfo],
        scores: &mut [i64],
    ) {
        let mut min = i64::MAX;
        let mut max = 0;
        for (node, score) in nodes.iter().zip(scores.iter()) {
            if state.ignored.contains(&node.name) {
                continue;
            }
            min = min.min(*score);
            max = max.max(*score);
        }
        for (node, score) in nodes.iter().zip(scores.iter_mut()) {
            if state.ignored.contains(&node.name) {
                *score = 0;
            } else if max == 0 {
                *score = MAX_NODE_SCORE;
            } else {
                *score = MAX_NODE_SCORE * (max + min - *score) / max;
            }
        }
    }
}

/// Domains and their counts, for tests and debugging.
pub fn domain_counts(state: &FilterState, i: usize) -> BTreeMap<String, i64> {
    state
        .domains
        .get(i)
        .into_iter()
        .flatten()
        .map(|(k, (_, pods))| (k.to_string(), *pods))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;

    const ZONE: &str = "zone";

    fn cluster() -> Cache {
        let mut c = Cache::new();
        for (name, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")] {
            c.apply_node(&node(name, "4", "8Gi").label(ZONE, zone).0);
        }
        c.apply_node(&node("nozone", "4", "8Gi").0);
        c
    }

    fn results(c: &Cache, p: &PodInfo) -> Vec<(String, Result<(), String>)> {
        let ctx = CycleContext {
            cache: c,
            parallelism: 1,
        };
        let PreFilterResult::Run(state) = PodTopologySpread::default().pre_filter(&ctx, p) else {
            panic!("expected constraints");
        };
        let mut out: Vec<_> = c
            .node_infos()
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    PodTopologySpread::default()
                        .filter(&state, p, n)
                        .map_err(|e| e.message()),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn max_skew_golden() {
        let mut c = cluster();
        for (i, n) in ["a1", "a2", "b1"].iter().enumerate() {
            c.apply_pod(pod(&format!("x{i}")).label("app", "x").node(n).info());
        }
        // Zones: a=2, b=1, c=0. maxSkew 1: only zone c (0+1-0 <= 1).
        let p = pod("p")
            .label("app", "x")
            .spread(1, ZONE, true, "app", "x")
            .info();
        let no = Err(REASON.to_owned());
        assert_eq!(
            results(&c, &p),
            vec![
                ("a1".into(), no.clone()),
                ("a2".into(), no.clone()),
                ("b1".into(), no),
                ("c1".into(), Ok(())),
                ("nozone".into(), Err(REASON_MISSING_LABEL.to_owned())),
            ]
        );
        // maxSkew 2: zones b and c.
        let p = pod("p")
            .label("app", "x")
            .spread(2, ZONE, true, "app", "x")
            .info();
        let ok: Vec<_> = results(&c, &p)
            .into_iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(ok, ["b1", "c1"]);
        // A pod that does not match its own selector adds nothing to its domain.
        let p = pod("p").spread(1, ZONE, true, "app", "x").info();
        let ok: Vec<_> = results(&c, &p)
            .into_iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(ok, ["b1", "c1"]);
    }

    #[test]
    fn min_domains_and_node_affinity_policy() {
        let mut c = cluster();
        c.apply_pod(pod("x").label("app", "x").node("a1").info());
        // Only zones a and b are eligible by node affinity: c does not count as a domain,
        // so the minimum is b's 0.
        let p = pod("p")
            .label("app", "x")
            .require_node(ZONE, "In", &["a", "b"])
            .spread(1, ZONE, true, "app", "x")
            .info();
        let ctx = CycleContext {
            cache: &c,
            parallelism: 1,
        };
        let PreFilterResult::Run(state) = PodTopologySpread::default().pre_filter(&ctx, &p) else {
            panic!()
        };
        assert_eq!(
            domain_counts(&state, 0),
            BTreeMap::from([("a".to_owned(), 1), ("b".to_owned(), 0)])
        );
        // minDomains 4 > 3 domains: the global minimum is taken as 0, so a zone with one
        // matching pod is full at maxSkew 1.
        c.apply_pod(pod("y").label("app", "x").node("b1").info());
        c.apply_pod(pod("z").label("app", "x").node("c1").info());
        let p = pod("p")
            .label("app", "x")
            .spread(1, ZONE, true, "app", "x")
            .min_domains(4)
            .info();
        assert!(results(&c, &p).iter().all(|(_, r)| r.is_err()));
        let p = pod("p")
            .label("app", "x")
            .spread(1, ZONE, true, "app", "x")
            .info();
        assert_eq!(results(&c, &p).iter().filter(|(_, r)| r.is_ok()).count(), 4);
    }

    #[test]
    fn score_golden() {
        let mut c = cluster();
        for (i, n) in ["a1", "a2", "a2", "b1"].iter().enumerate() {
            c.apply_pod(pod(&format!("x{i}")).label("app", "x").node(n).info());
        }
        let ctx = CycleContext {
            cache: &c,
            parallelism: 1,
        };
        let p = pod("p")
            .label("app", "x")
            .spread(1, ZONE, false, "app", "x")
            .info();
        let nodes: Vec<&NodeInfo> = ["a1", "b1", "c1", "nozone"]
            .iter()
            .map(|n| c.node(n).unwrap())
            .collect();
        let state = PodTopologySpread::default()
            .pre_score(&ctx, &p, &nodes)
            .unwrap();
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| PodTopologySpread::default().score(&state, &p, n))
            .collect();
        // 3 zones: weight ln(5) = 1.609; a: 3 pods -> 4.83 -> 5, b: 1 -> 2, c: 0.
        assert_eq!(scores, [5, 2, 0, 0]);
        PodTopologySpread::default().normalize_score(&state, &p, &nodes, &mut scores);
        // 100 * (max + min - s) / max with max 5, min 0.
        assert_eq!(scores, [0, 60, 100, 0]);
    }
}
