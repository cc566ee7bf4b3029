//! The scheduler's filters a kubelet runs again on a pod bound to its node before running
//! it (kube's `scheduler.AdmissionCheck`, which kube's kubelet calls from its predicate
//! admit handler): the node's free resources, the pod's required node affinity, its node
//! name and its host ports. A pod bound past the scheduler (`spec.nodeName` set at
//! creation), or one the scheduler placed on an older view of the node, meets them here.

use crate::node_info::NodeInfo;
use crate::plugins::node_resources_fit::{InsufficientResource, insufficient_resources};
use crate::plugins::{PluginName, node_affinity, node_name, node_ports};
use crate::pod_info::PodInfo;

/// Why a node cannot run a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmissionFailure {
    /// A resource the node has too little of.
    Insufficient(InsufficientResource),
    /// A filter the pod fails, with the filter's reason.
    Predicate {
        plugin: PluginName,
        reason: &'static str,
    },
}

/// Every reason the node cannot run the pod, resources first, in kube's order; empty when
/// it can. `node` holds the pods the node runs already, not `pod`.
pub fn admission_check(pod: &PodInfo, node: &NodeInfo) -> Vec<AdmissionFailure> {
    let mut failures: Vec<AdmissionFailure> = insufficient_resources(&pod.requests, node)
        .into_iter()
        .map(AdmissionFailure::Insufficient)
        .collect();
    let mut predicate = |fits: bool, plugin: PluginName, reason: &'static str| {
        if !fits {
            failures.push(AdmissionFailure::Predicate { plugin, reason });
        }
    };
    predicate(
        pod.required_node_affinity.matches(&node.name, &node.labels),
        PluginName::NodeAffinity,
        node_affinity::REASON,
    );
    predicate(
        pod.node_name.as_deref().is_none_or(|n| n == node.name),
        PluginName::NodeName,
        node_name::REASON,
    );
    predicate(
        node_ports::fits(pod, node),
        PluginName::NodePorts,
        node_ports::REASON,
    );
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;

    #[test]
    fn a_pod_that_fits_passes() {
        let mut n = node("n", "2", "4Gi").label("disk", "ssd").info();
        n.add_pod(pod("a").req("1", "1Gi").host_port(80).info());
        let p = pod("p")
            .req("1", "3Gi")
            .node("n")
            .node_selector("disk", "ssd")
            .host_port(8080)
            .info();
        assert_eq!(admission_check(&p, &n), Vec::new());
    }

    #[test]
    fn every_failure_is_told_resources_first() {
        let mut n = node("n", "2", "4Gi").pods("1").info();
        n.add_pod(pod("a").req("1500m", "1Gi").host_port(80).info());
        let p = pod("p")
            .req("1", "1Gi")
            .node("m")
            .node_selector("disk", "ssd")
            .host_port(80)
            .info();
        let failures = admission_check(&p, &n);
        let insufficient = |name: &'static str, requested, used, capacity| {
            AdmissionFailure::Insufficient(InsufficientResource {
                name: name.into(),
                requested,
                used,
                capacity,
            })
        };
        assert_eq!(
            failures,
            vec![
                insufficient("pods", 1, 1, 1),
                insufficient("cpu", 1000, 1500, 2000),
                AdmissionFailure::Predicate {
                    plugin: PluginName::NodeAffinity,
                    reason: node_affinity::REASON,
                },
                AdmissionFailure::Predicate {
                    plugin: PluginName::NodeName,
                    reason: node_name::REASON,
                },
                AdmissionFailure::Predicate {
                    plugin: PluginName::NodePorts,
                    reason: node_ports::REASON,
                },
            ]
        );
    }
}
