//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory would be used in
//! similar proportions once the pod is there (score = (1 - standard deviation) * 100).

use crate::framework::{CycleContext, Plugin, PreScorePlugin, ScorePlugin};
use crate::node_info::NodeInfo;
use crate::plugins::{MAX_NODE_SCORE, PluginName};
use crate::pod_info::PodInfo;

/// kube-scheduler's default weight.
pub const WEIGHT: i64 = 1;

pub struct BalancedAllocation;

impl Plugin for BalancedAllocation {
    fn name(&self) -> PluginName {
        PluginName::NodeResourcesBalancedAllocation
    }
}

/// kube's `balancedResourceScorer` over (requested, allocatable) pairs.
pub fn balanced_score(resources: &[(i64, i64)]) -> i64 {
    let fractions: Vec<f64> = resources
        .iter()
        .filter(|(_, alloc)| *alloc != 0)
        .map(|(req, alloc)| (*req as f64 / *alloc as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n if n > 2 => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl PreScorePlugin for BalancedAllocation {
    /// The pod's cpu and memory requests as they are (no defaults).
    type ScoreState = (i64, i64);

    fn pre_score(
        &self,
        _ctx: &CycleContext<'_>,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
    ) -> Option<(i64, i64)> {
        let r = (pod.requests.milli_cpu, pod.requests.memory);
        // Best-effort pods are not scored, or they would all pile onto one node
        // (kubernetes/kubernetes#129138).
        (r != (0, 0)).then_some(r)
    }
}

impl ScorePlugin for BalancedAllocation {
    fn weight(&self) -> i64 {
        WEIGHT
    }

    fn score(&self, &(cpu, memory): &(i64, i64), _pod: &PodInfo, node: &NodeInfo) -> i64 {
        balanced_score(&[
            (node.requested.milli_cpu + cpu, node.allocatable.milli_cpu),
            (node.requested.memory + memory, node.allocatable.memory),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;

    #[test]
    fn golden() {
        // kube's test: node 4000m/10000, pod 3000m/5000: fractions 0.75 and 0.5,
        // std 0.125, score 87.
        let n = node("n", "4", "10000").info();
        let p = pod("p").req("3", "5000").info();
        let cache = Cache::new();
        let ctx = CycleContext {
            cache: &cache,
            parallelism: 1,
        };
        let s = BalancedAllocation.pre_score(&ctx, &p, &[&n]).unwrap();
        assert_eq!(BalancedAllocation.score(&s, &p, &n), 87);
        assert_eq!(balanced_score(&[(1, 2), (1, 2)]), 100);
        assert_eq!(
            balanced_score(&[(3, 2), (0, 2)]),
            50,
            "fractions are capped at 1"
        );
        assert!(
            BalancedAllocation
                .pre_score(&ctx, &pod("be").info(), &[&n])
                .is_none()
        );
    }
}
