//! NodeAffinity: `spec.nodeSelector` and required node affinity filter nodes; preferred
//! node affinity terms add their weights to the nodes they match.

use std::collections::BTreeSet;

use crate::framework::{
    CycleContext, FilterPlugin, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin,
    ScorePlugin,
};
use crate::node_info::NodeInfo;
use crate::plugins::{MAX_NODE_SCORE, PluginName, default_normalize};
use crate::pod_info::PodInfo;
use crate::status::Status;

/// kube's `ErrReasonPod`.
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";
/// kube's `errReasonConflict`: the terms name node sets with nothing in common.
pub const REASON_CONFLICT: &str = "pod affinity terms conflict";
/// kube-scheduler's default weight.
pub const WEIGHT: i64 = 2;

pub struct NodeAffinity;

impl Plugin for NodeAffinity {
    fn name(&self) -> PluginName {
        PluginName::NodeAffinity
    }
}

/// The node names a pod's required terms pin it to, when every term has a
/// `metadata.name In` field expression (DaemonSet pods do): `None` when any node may do.
fn pinned_node_names(pod: &PodInfo) -> Option<BTreeSet<String>> {
    let required = pod
        .pod
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    if required.node_selector_terms.is_empty() {
        return None;
    }
    let mut all: BTreeSet<String> = BTreeSet::new();
    for term in &required.node_selector_terms {
        let mut names: Option<BTreeSet<String>> = None;
        for r in term.match_fields.iter().flatten() {
            if r.key == "metadata.name" && r.operator == "In" {
                let set: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
                names = Some(match names {
                    None => set,
                    Some(prev) => prev.intersection(&set).cloned().collect(),
                });
            }
        }
        // A term without a name requirement lets every node through.
        all.extend(names?);
    }
    Some(all)
}

impl PreFilterPlugin for NodeAffinity {
    type State = ();

    fn pre_filter(&self, _ctx: &CycleContext<'_>, pod: &PodInfo) -> PreFilterResult<()> {
        if pod.required_node_affinity.is_empty() {
            return PreFilterResult::Skip;
        }
        match pinned_node_names(pod) {
            None => PreFilterResult::Run(()),
            Some(names) if names.is_empty() => {
                PreFilterResult::Reject(Status::unresolvable(REASON_CONFLICT))
            }
            Some(names) => PreFilterResult::RunOn((), names),
        }
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, _state: &(), pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        if pod.required_node_affinity.matches(&node.name, &node.labels) {
            Ok(())
        } else {
            Err(Status::unresolvable(REASON))
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    type ScoreState = ();

    fn pre_score(
        &self,
        _ctx: &CycleContext<'_>,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
    ) -> Option<()> {
        (!pod.preferred_node_affinity.is_empty()).then_some(())
    }
}

impl ScorePlugin for NodeAffinity {
    fn weight(&self) -> i64 {
        WEIGHT
    }

    /// The sum of the weights of the preferred terms the node matches.
    fn score(&self, _state: &(), pod: &PodInfo, node: &NodeInfo) -> i64 {
        pod.preferred_node_affinity
            .iter()
            .filter(|(_, term)| term.matches(&node.name, &node.labels))
            .map(|(w, _)| *w)
            .sum()
    }

    fn normalize_score(
        &self,
        _state: &(),
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        scores: &mut [i64],
    ) {
        default_normalize(MAX_NODE_SCORE, false, scores);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;
    use crate::status::Code;

    #[test]
    fn filter_golden() {
        let ssd = node("n1", "1", "1Gi")
            .label("disk", "ssd")
            .label("cores", "16")
            .info();
        let hdd = node("n2", "1", "1Gi").label("disk", "hdd").info();
        let p = pod("p").node_selector("disk", "ssd").info();
        assert!(NodeAffinity.filter(&(), &p, &ssd).is_ok());
        let err = NodeAffinity.filter(&(), &p, &hdd).unwrap_err();
        assert_eq!(
            (err.code, err.message().as_str()),
            (Code::UnschedulableAndUnresolvable, REASON)
        );

        let cases = [
            ("disk", "In", vec!["ssd", "nvme"], true, false),
            ("disk", "NotIn", vec!["ssd"], false, true),
            ("disk", "Exists", vec![], true, true),
            ("gpu", "DoesNotExist", vec![], true, true),
            ("cores", "Gt", vec!["8"], true, false),
            ("cores", "Lt", vec!["8"], false, false),
        ];
        for (key, op, values, on_ssd, on_hdd) in cases {
            let p = pod("p").require_node(key, op, &values).info();
            assert_eq!(
                NodeAffinity.filter(&(), &p, &ssd).is_ok(),
                on_ssd,
                "{key} {op} on ssd"
            );
            assert_eq!(
                NodeAffinity.filter(&(), &p, &hdd).is_ok(),
                on_hdd,
                "{key} {op} on hdd"
            );
        }
    }

    #[test]
    fn pre_filter_pins_match_fields_and_skips_unconstrained_pods() {
        let cache = Cache::new();
        let ctx = CycleContext {
            cache: &cache,
            parallelism: 1,
        };
        assert!(matches!(
            NodeAffinity.pre_filter(&ctx, &pod("p").info()),
            PreFilterResult::Skip
        ));
        let mut p = pod("ds");
        let term = k8s_openapi::api::core::v1::NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![k8s_openapi::api::core::v1::NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec!["n7".into()]),
            }]),
        };
        p = p.require_node("x", "DoesNotExist", &[]);
        if let Some(terms) =
            p.0.spec
                .as_mut()
                .and_then(|s| s.affinity.as_mut())
                .and_then(|a| a.node_affinity.as_mut())
                .and_then(|n| {
                    n.required_during_scheduling_ignored_during_execution
                        .as_mut()
                })
        {
            terms.node_selector_terms = vec![term];
        }
        match NodeAffinity.pre_filter(&ctx, &p.info()) {
            PreFilterResult::RunOn((), names) => {
                assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["n7"])
            }
            _ => panic!("expected the node names"),
        }
    }

    #[test]
    fn score_golden() {
        let a = node("a", "1", "1Gi").label("zone", "a").info();
        let b = node("b", "1", "1Gi")
            .label("zone", "b")
            .label("ssd", "yes")
            .info();
        let c = node("c", "1", "1Gi").info();
        let nodes = [&a, &b, &c];
        let p = pod("p")
            .prefer_node(20, "zone", "In", &["a"])
            .prefer_node(80, "ssd", "Exists", &[])
            .prefer_node(10, "zone", "In", &["b"])
            .info();
        let cache = Cache::new();
        let ctx = CycleContext {
            cache: &cache,
            parallelism: 1,
        };
        assert!(NodeAffinity.pre_score(&ctx, &p, &nodes).is_some());
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| NodeAffinity.score(&(), &p, n))
            .collect();
        assert_eq!(scores, [20, 90, 0]);
        NodeAffinity.normalize_score(&(), &p, &nodes, &mut scores);
        assert_eq!(scores, [22, 100, 0]);
        assert!(
            NodeAffinity
                .pre_score(&ctx, &pod("q").info(), &nodes)
                .is_none()
        );
    }
}
