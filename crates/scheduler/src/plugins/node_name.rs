//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use crate::framework::{CycleContext, FilterPlugin, Plugin, PreFilterPlugin, PreFilterResult};
use crate::node_info::NodeInfo;
use crate::plugins::PluginName;
use crate::pod_info::PodInfo;
use crate::status::Status;

/// kube's `ErrReason`.
pub const REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> PluginName {
        PluginName::NodeName
    }
}

impl PreFilterPlugin for NodeName {
    type State = ();

    fn pre_filter(&self, _ctx: &CycleContext<'_>, pod: &PodInfo) -> PreFilterResult<()> {
        if pod.node_name.is_some() {
            PreFilterResult::Run(())
        } else {
            PreFilterResult::Skip
        }
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &(), pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        match &pod.node_name {
            Some(name) if *name != node.name => Err(Status::unresolvable(REASON)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;

    #[test]
    fn named_node_only() {
        let p = pod("p").node("n1").info();
        assert!(
            NodeName
                .filter(&(), &p, &node("n1", "1", "1Gi").info())
                .is_ok()
        );
        let err = NodeName
            .filter(&(), &p, &node("n2", "1", "1Gi").info())
            .unwrap_err();
        assert_eq!(err.message(), REASON);
        assert!(
            NodeName
                .filter(&(), &pod("q").info(), &node("n2", "1", "1Gi").info())
                .is_ok()
        );
    }
}
