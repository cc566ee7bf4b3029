//! InterPodAffinity: required pod affinity and anti-affinity between the pod and the pods
//! already placed, by topology domain (the nodes sharing a value of `topologyKey`),
//! including existing pods' anti-affinity against the incoming pod; preferred terms (both
//! ways) and existing pods' required affinity score the domains.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fast_hash::FxHashMap;
use crate::framework::{
    CycleContext, FilterPlugin, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin,
    ScorePlugin,
};
use crate::node_info::NodeInfo;
use crate::node_memo::SharedIncremental;
use crate::plugins::{MAX_NODE_SCORE, PluginName};
use crate::pod_info::{AffinityTerm, PodInfo};
use crate::status::Status;

/// kube's `ErrReasonAffinityRulesNotMatch`.
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// kube's `ErrReasonAntiAffinityRulesNotMatch`.
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// kube's `ErrReasonExistingAntiAffinityRulesNotMatch`.
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// kube-scheduler's default weight.
pub const WEIGHT: i64 = 2;
/// kube's default `hardPodAffinityWeight`: what an existing pod's required affinity to the
/// incoming pod adds to its domain's score.
pub const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// The plugin, with the cluster-wide PreFilter counts kept between cycles (see
/// [`crate::node_memo`]).
#[derive(Default)]
pub struct InterPodAffinity {
    sums: SharedIncremental<SumsKey, FilterCounts, FilterCounts>,
}

/// What the counts depend on besides the nodes: the incoming pod's namespace, labels and
/// terms, and the namespaces' labels.
#[derive(Debug, PartialEq)]
struct SumsKey {
    namespace: String,
    labels: BTreeMap<String, String>,
    affinity: Vec<AffinityTerm>,
    anti_affinity: Vec<AffinityTerm>,
    namespace_generation: u64,
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> PluginName {
        PluginName::InterPodAffinity
    }
}

/// Counts per topology domain: topology key, then value.
#[derive(Debug, Clone, Default)]
pub struct TopologyCounts(FxHashMap<Arc<str>, FxHashMap<Arc<str>, i64>>);

impl TopologyCounts {
    /// Adds `delta` to the domain of `node` for `key`, if the node has that label.
    fn update(&mut self, node: &NodeInfo, key: &str, delta: i64) {
        if let Some((k, v)) = node.labels.get_key_value(key) {
            self.add(k, v, delta);
        }
    }

    /// Adds `delta` to a domain.
    fn add(&mut self, key: &Arc<str>, value: &Arc<str>, delta: i64) {
        let values = self.0.entry(key.clone()).or_default();
        let count = values.entry(value.clone()).or_default();
        *count += delta;
        if *count == 0 {
            values.remove(&**value);
            if values.is_empty() {
                self.0.remove(&**key);
            }
        }
    }

    fn merge(&mut self, other: &TopologyCounts, sign: i64) {
        for (key, values) in &other.0 {
            for (value, n) in values {
                self.add(key, value, sign * n);
            }
        }
    }

    fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|values| values.get(value))
            .copied()
            .unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The node's total over every topology key counted.
    fn node_total(&self, node: &NodeInfo) -> i64 {
        self.0
            .iter()
            .filter_map(|(key, values)| {
                let value = node.labels.get(&**key)?;
                values.get(&**value).copied()
            })
            .sum()
    }

    /// Whether any domain the node belongs to has a positive count.
    fn any_positive_on(&self, node: &NodeInfo) -> bool {
        self.0.iter().any(|(key, values)| {
            node.labels
                .get(&**key)
                .and_then(|value| values.get(&**value))
                .is_some_and(|c| *c > 0)
        })
    }
}

/// Domains counted over the whole cluster for one incoming pod.
#[derive(Debug, Clone, Default)]
pub struct FilterCounts {
    /// Domains with existing pods whose required anti-affinity matches the incoming pod.
    existing_anti_affinity: TopologyCounts,
    /// Domains with pods matching all the incoming pod's required affinity terms.
    affinity: TopologyCounts,
    /// Domains with pods matching the incoming pod's required anti-affinity terms.
    anti_affinity: TopologyCounts,
}

impl FilterCounts {
    /// Counts `other` on `node` in (delta 1) or out (delta -1).
    fn count(
        &mut self,
        ctx: &CycleContext<'_>,
        pod: &PodInfo,
        other: &PodInfo,
        node: &NodeInfo,
        delta: i64,
    ) {
        if other.has_required_anti_affinity() {
            let pod_ns = ctx.cache.namespace_labels(&pod.namespace);
            for t in &other.required_anti_affinity {
                if t.matches(pod, pod_ns) {
                    self.existing_anti_affinity
                        .update(node, &t.topology_key, delta);
                }
            }
        }
        if matches_all(&pod.required_affinity, other, ctx) {
            for t in &pod.required_affinity {
                self.affinity.update(node, &t.topology_key, delta);
            }
        }
        if !pod.required_anti_affinity.is_empty() {
            let other_ns = ctx.cache.namespace_labels(&other.namespace);
            for t in &pod.required_anti_affinity {
                if t.matches(other, other_ns) {
                    self.anti_affinity.update(node, &t.topology_key, delta);
                }
            }
        }
    }

    /// One node's part.
    fn of_node(ctx: &CycleContext<'_>, pod: &PodInfo, node: &NodeInfo) -> Option<FilterCounts> {
        if !node.exists || node.pods.is_empty() {
            return None;
        }
        let mut part = FilterCounts::default();
        for other in &node.pods {
            part.count(ctx, pod, other, node, 1);
        }
        (!part.is_empty()).then_some(part)
    }

    fn is_empty(&self) -> bool {
        self.existing_anti_affinity.is_empty()
            && self.affinity.is_empty()
            && self.anti_affinity.is_empty()
    }

    fn merge(&mut self, part: &FilterCounts, sign: i64) {
        self.existing_anti_affinity
            .merge(&part.existing_anti_affinity, sign);
        self.affinity.merge(&part.affinity, sign);
        self.anti_affinity.merge(&part.anti_affinity, sign);
    }
}

/// What Filter needs for one pod.
#[derive(Debug, Clone, Default)]
pub struct FilterState {
    counts: Arc<FilterCounts>,
    /// The incoming pod matches all its own affinity terms (the first of a group that
    /// wants to be together may go anywhere).
    matches_own_affinity: bool,
}

fn matches_all(terms: &[AffinityTerm], pod: &PodInfo, ctx: &CycleContext<'_>) -> bool {
    !terms.is_empty() && {
        let ns = ctx.cache.namespace_labels(&pod.namespace);
        terms.iter().all(|t| t.matches(pod, ns))
    }
}

impl FilterState {
    fn update(
        &mut self,
        ctx: &CycleContext<'_>,
        pod: &PodInfo,
        other: &PodInfo,
        node: &NodeInfo,
        delta: i64,
    ) {
        Arc::make_mut(&mut self.counts).count(ctx, pod, other, node, delta);
    }
}

impl PreFilterPlugin for InterPodAffinity {
    type State = FilterState;

    fn pre_filter(&self, ctx: &CycleContext<'_>, pod: &PodInfo) -> PreFilterResult<FilterState> {
        let own_terms = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        let nodes = ctx.nodes();
        let existing_anti = nodes
            .iter()
            .any(|n| n.exists && n.pods_with_required_anti_affinity > 0);
        if !own_terms && !existing_anti {
            return PreFilterResult::Skip;
        }
        let key = SumsKey {
            namespace: pod.namespace.clone(),
            labels: pod.labels().clone(),
            affinity: pod.required_affinity.clone(),
            anti_affinity: pod.required_anti_affinity.clone(),
            namespace_generation: ctx.cache.namespace_generation(),
        };
        let counts = self
            .sums
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .refresh(
                key,
                nodes,
                |node| FilterCounts::of_node(ctx, pod, node),
                |totals, part, sign| totals.merge(part, sign),
            );
        PreFilterResult::Run(FilterState {
            counts,
            matches_own_affinity: matches_all(&pod.required_affinity, pod, ctx),
        })
    }

    fn add_pod(
        &self,
        ctx: &CycleContext<'_>,
        state: &mut FilterState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
    ) {
        state.update(ctx, pod, added, node, 1);
    }

    fn remove_pod(
        &self,
        ctx: &CycleContext<'_>,
        state: &mut FilterState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
    ) {
        state.update(ctx, pod, removed, node, -1);
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &FilterState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        // The pod's affinity: every term's domain on this node must hold a matching pod,
        // and the node must have every term's topology label.
        if !pod.required_affinity.is_empty() {
            let mut pods_exist = true;
            for t in &pod.required_affinity {
                match node.labels.get(t.topology_key.as_str()) {
                    Some(value) => {
                        if state.counts.affinity.get(&t.topology_key, value) <= 0 {
                            pods_exist = false;
                        }
                    }
                    None => return Err(Status::unresolvable(REASON_AFFINITY)),
                }
            }
            // The first pod of a group that wants to be together may go anywhere.
            let first_of_group = state.counts.affinity.is_empty() && state.matches_own_affinity;
            if !pods_exist && !first_of_group {
                return Err(Status::unresolvable(REASON_AFFINITY));
            }
        }
        // The pod's anti-affinity: no matching pod in any term's domain of this node.
        if !state.counts.anti_affinity.is_empty() {
            for t in &pod.required_anti_affinity {
                if let Some(value) = node.labels.get(t.topology_key.as_str())
                    && state.counts.anti_affinity.get(&t.topology_key, value) > 0
                {
                    return Err(Status::unschedulable(REASON_ANTI_AFFINITY));
                }
            }
        }
        // Existing pods' anti-affinity against this pod.
        if state.counts.existing_anti_affinity.any_positive_on(node) {
            return Err(Status::unschedulable(REASON_EXISTING_ANTI_AFFINITY));
        }
        Ok(())
    }
}

/// Scores per topology domain, from preferred terms and existing pods' required affinity.
pub struct ScoreState {
    scores: TopologyCounts,
}

impl ScoreState {
    fn add(&mut self, node: &NodeInfo, term: &AffinityTerm, weight: i64) {
        if weight != 0 {
            self.scores.update(node, &term.topology_key, weight);
        }
    }
}

impl PreScorePlugin for InterPodAffinity {
    type ScoreState = ScoreState;

    fn pre_score(
        &self,
        ctx: &CycleContext<'_>,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
    ) -> Option<ScoreState> {
        let has_preferences =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        let pod_ns = ctx.cache.namespace_labels(&pod.namespace);
        let mut state = ScoreState {
            scores: TopologyCounts::default(),
        };
        for node in ctx
            .nodes()
            .iter()
            .filter(|n| n.exists && !n.labels.is_empty())
        {
            // Without preferences of its own, only pods with affinity can move a score.
            if !has_preferences && node.pods_with_affinity == 0 {
                continue;
            }
            for existing in &node.pods {
                if !has_preferences && !existing.has_affinity() {
                    continue;
                }
                if has_preferences {
                    let ns = ctx.cache.namespace_labels(&existing.namespace);
                    for w in &pod.preferred_affinity {
                        if w.term.matches(existing, ns) {
                            state.add(node, &w.term, w.weight);
                        }
                    }
                    for w in &pod.preferred_anti_affinity {
                        if w.term.matches(existing, ns) {
                            state.add(node, &w.term, -w.weight);
                        }
                    }
                }
                for t in &existing.required_affinity {
                    if t.matches(pod, pod_ns) {
                        state.add(node, t, HARD_POD_AFFINITY_WEIGHT);
                    }
                }
                for w in &existing.preferred_affinity {
                    if w.term.matches(pod, pod_ns) {
                        state.add(node, &w.term, w.weight);
                    }
                }
                for w in &existing.preferred_anti_affinity {
                    if w.term.matches(pod, pod_ns) {
                        state.add(node, &w.term, -w.weight);
                    }
                }
            }
        }
        (!state.scores.is_empty()).then_some(state)
    }
}

impl ScorePlugin for InterPodAffinity {
    fn weight(&self) -> i64 {
        WEIGHT
    }

    fn score(&self, state: &ScoreState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        state.scores.node_total(node)
    }

    /// Min-max scaling to 0..=100 (all 0 when every node scored the same).
    fn normalize_score(
        &self,
        _state: &ScoreState,
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        scores: &mut [i64],
    ) {
        let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else {
            return;
        };
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::framework::Framework;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;
    use crate::status::Code;

    const HOST: &str = "kubernetes.io/hostname";
    const ZONE: &str = "topology.kubernetes.io/zone";

    fn cluster() -> Cache {
        let mut c = Cache::new();
        for (name, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
            c.apply_node(&node(name, "4", "8Gi").label(ZONE, zone).0);
        }
        c
    }

    fn filter(c: &Cache, p: &PodInfo) -> Vec<Result<(), (Code, String)>> {
        let ctx = CycleContext {
            cache: c,
            parallelism: 1,
        };
        let state = match InterPodAffinity::default().pre_filter(&ctx, p) {
            PreFilterResult::Run(s) => s,
            PreFilterResult::Skip => return vec![Ok(()); 3],
            _ => panic!("unexpected pre-filter result"),
        };
        ["n1", "n2", "n3"]
            .iter()
            .map(|n| {
                InterPodAffinity::default()
                    .filter(&state, p, c.node(n).unwrap())
                    .map_err(|e| (e.code, e.message()))
            })
            .collect()
    }

    #[test]
    fn required_anti_affinity_by_hostname_and_zone() {
        let mut c = cluster();
        c.apply_pod(pod("web-1").label("app", "web").node("n1").info());
        let host = pod("web-2")
            .label("app", "web")
            .anti_affinity("app", "web", HOST)
            .info();
        let anti = Err((Code::Unschedulable, REASON_ANTI_AFFINITY.to_owned()));
        assert_eq!(filter(&c, &host), vec![anti.clone(), Ok(()), Ok(())]);
        let zone = pod("web-2")
            .label("app", "web")
            .anti_affinity("app", "web", ZONE)
            .info();
        assert_eq!(filter(&c, &zone), vec![anti.clone(), anti, Ok(())]);
        // Other namespaces are not matched unless the term names them.
        let other = pod("web-2")
            .ns("other")
            .anti_affinity("app", "web", HOST)
            .info();
        assert_eq!(filter(&c, &other), vec![Ok(()); 3]);
    }

    #[test]
    fn existing_pods_anti_affinity_keeps_the_incoming_pod_out() {
        let mut c = cluster();
        c.apply_pod(
            pod("db")
                .anti_affinity("app", "web", ZONE)
                .node("n3")
                .info(),
        );
        let web = pod("web").label("app", "web").info();
        let existing = Err((
            Code::Unschedulable,
            REASON_EXISTING_ANTI_AFFINITY.to_owned(),
        ));
        assert_eq!(filter(&c, &web), vec![Ok(()), Ok(()), existing]);
        assert_eq!(filter(&c, &pod("other").info()), vec![Ok(()); 3]);
    }

    #[test]
    fn required_affinity_and_the_first_pod_of_a_group() {
        let mut c = cluster();
        let follower = pod("f").affinity("app", "cache", ZONE).info();
        let no = Err((
            Code::UnschedulableAndUnresolvable,
            REASON_AFFINITY.to_owned(),
        ));
        assert_eq!(
            filter(&c, &follower),
            vec![no.clone(), no.clone(), no.clone()]
        );
        // A pod matching its own affinity may start the group anywhere.
        let first = pod("c1")
            .label("app", "cache")
            .affinity("app", "cache", ZONE)
            .info();
        assert_eq!(filter(&c, &first), vec![Ok(()); 3]);
        c.apply_pod(pod("c1").label("app", "cache").node("n2").info());
        assert_eq!(filter(&c, &follower), vec![Ok(()), Ok(()), no.clone()]);
        assert_eq!(filter(&c, &first), vec![Ok(()), Ok(()), no]);
    }

    #[test]
    fn pre_filter_extensions_track_simulated_pods() {
        let c = cluster();
        let ctx = CycleContext {
            cache: &c,
            parallelism: 1,
        };
        let fw = Framework::new();
        let p = pod("p")
            .label("app", "web")
            .anti_affinity("app", "web", HOST)
            .info();
        let mut state = fw.run_pre_filter(&ctx, &p).unwrap();
        let mut n1 = c.node("n1").unwrap().clone();
        let other = pod("o").label("app", "web").node("n1").info();
        n1.add_pod(other.clone());
        fw.run_pre_filter_extension(&ctx, &mut state, &p, &other, &n1, true);
        assert!(fw.run_filter(&state, &p, &n1).is_err());
        n1.remove_pod(&other.key);
        fw.run_pre_filter_extension(&ctx, &mut state, &p, &other, &n1, false);
        assert!(fw.run_filter(&state, &p, &n1).is_ok());
    }

    #[test]
    fn score_golden() {
        let mut c = cluster();
        c.apply_pod(pod("a").label("app", "a").node("n1").info());
        c.apply_pod(pod("b").label("app", "b").node("n3").info());
        let ctx = CycleContext {
            cache: &c,
            parallelism: 1,
        };
        let p = pod("p")
            .preferred_affinity(false, 10, "app", "a", ZONE)
            .preferred_affinity(true, 5, "app", "b", ZONE)
            .info();
        let nodes: Vec<&NodeInfo> = ["n1", "n2", "n3"]
            .iter()
            .map(|n| c.node(n).unwrap())
            .collect();
        let state = InterPodAffinity::default()
            .pre_score(&ctx, &p, &nodes)
            .unwrap();
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| InterPodAffinity::default().score(&state, &p, n))
            .collect();
        assert_eq!(scores, [10, 10, -5]);
        InterPodAffinity::default().normalize_score(&state, &p, &nodes, &mut scores);
        assert_eq!(scores, [100, 100, 0]);
        // An existing pod's required affinity to the incoming pod attracts it.
        c.apply_pod(pod("lover").affinity("role", "x", HOST).node("n2").info());
        let ctx = CycleContext {
            cache: &c,
            parallelism: 1,
        };
        let x = pod("x").label("role", "x").info();
        let nodes: Vec<&NodeInfo> = ["n1", "n2", "n3"]
            .iter()
            .map(|n| c.node(n).unwrap())
            .collect();
        let state = InterPodAffinity::default()
            .pre_score(&ctx, &x, &nodes)
            .unwrap();
        let scores: Vec<i64> = nodes
            .iter()
            .map(|n| InterPodAffinity::default().score(&state, &x, n))
            .collect();
        assert_eq!(scores, [0, 1, 0]);
        assert!(
            InterPodAffinity::default()
                .pre_score(&ctx, &pod("plain").info(), &nodes)
                .is_none()
        );
    }
}
