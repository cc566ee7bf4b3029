//! TaintToleration: NoSchedule and NoExecute taints keep out pods that do not tolerate
//! them; PreferNoSchedule taints a pod does not tolerate lower a node's score.

use crate::framework::{
    CycleContext, FilterPlugin, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin,
    ScorePlugin,
};
use crate::node_info::NodeInfo;
use crate::plugins::{MAX_NODE_SCORE, PluginName, default_normalize};
use crate::pod_info::PodInfo;
use crate::status::Status;
use crate::taints::{TaintEffect, Toleration, do_not_schedule, find_untolerated};

/// kube-scheduler's default weight.
pub const WEIGHT: i64 = 3;

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> PluginName {
        PluginName::TaintToleration
    }
}

impl PreFilterPlugin for TaintToleration {
    type State = ();

    fn pre_filter(&self, _ctx: &CycleContext<'_>, _pod: &PodInfo) -> PreFilterResult<()> {
        PreFilterResult::Run(())
    }
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &(), pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        match find_untolerated(&node.taints, &pod.tolerations, do_not_schedule) {
            None => Ok(()),
            Some(taint) => Err(Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key, taint.value
            ))),
        }
    }
}

impl PreScorePlugin for TaintToleration {
    /// The pod's tolerations that can tolerate PreferNoSchedule taints.
    type ScoreState = Vec<Toleration>;

    fn pre_score(
        &self,
        _ctx: &CycleContext<'_>,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
    ) -> Option<Vec<Toleration>> {
        Some(
            pod.tolerations
                .iter()
                .filter(|t| t.has_effect(TaintEffect::PreferNoSchedule))
                .cloned()
                .collect(),
        )
    }
}

impl ScorePlugin for TaintToleration {
    fn weight(&self) -> i64 {
        WEIGHT
    }

    /// The number of PreferNoSchedule taints not tolerated (fewer is better).
    fn score(&self, tolerations: &Vec<Toleration>, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        node.taints
            .iter()
            .filter(|t| t.effect == TaintEffect::PreferNoSchedule)
            .filter(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
            .count() as i64
    }

    fn normalize_score(
        &self,
        _state: &Vec<Toleration>,
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        scores: &mut [i64],
    ) {
        default_normalize(MAX_NODE_SCORE, true, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;
    use crate::status::Code;

    #[test]
    fn filter_golden() {
        let tainted = node("n", "1", "1Gi")
            .taint("node-role.kubernetes.io/control-plane", "", "NoSchedule")
            .info();
        let err = TaintToleration
            .filter(&(), &pod("p").info(), &tainted)
            .unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            err.message(),
            "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
        );
        let tolerant = pod("p")
            .toleration(
                "node-role.kubernetes.io/control-plane",
                "Exists",
                "",
                "NoSchedule",
            )
            .info();
        assert!(TaintToleration.filter(&(), &tolerant, &tainted).is_ok());
        let soft = node("n", "1", "1Gi")
            .taint("a", "b", "PreferNoSchedule")
            .info();
        assert!(TaintToleration.filter(&(), &pod("p").info(), &soft).is_ok());
        let exec = node("n", "1", "1Gi")
            .taint("dedicated", "gpu", "NoExecute")
            .info();
        let err = TaintToleration
            .filter(&(), &pod("p").info(), &exec)
            .unwrap_err();
        assert_eq!(
            err.message(),
            "node(s) had untolerated taint {dedicated: gpu}"
        );
    }

    #[test]
    fn score_golden() {
        let n0 = node("n0", "1", "1Gi").info();
        let n1 = node("n1", "1", "1Gi")
            .taint("a", "", "PreferNoSchedule")
            .info();
        let n2 = node("n2", "1", "1Gi")
            .taint("a", "", "PreferNoSchedule")
            .taint("b", "", "PreferNoSchedule")
            .info();
        let nodes = [&n0, &n1, &n2];
        let p = pod("p")
            .toleration("b", "Exists", "", "PreferNoSchedule")
            .info();
        let cache = crate::cache::Cache::new();
        let ctx = CycleContext {
            cache: &cache,
            parallelism: 1,
        };
        let state = TaintToleration.pre_score(&ctx, &p, &nodes).unwrap();
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| TaintToleration.score(&state, &p, n))
            .collect();
        assert_eq!(scores, [0, 1, 1]);
        TaintToleration.normalize_score(&state, &p, &nodes, &mut scores);
        assert_eq!(scores, [100, 0, 0]);
    }
}
