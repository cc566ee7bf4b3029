//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods that tolerate
//! the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use crate::framework::{CycleContext, FilterPlugin, Plugin, PreFilterPlugin, PreFilterResult};
use crate::node_info::NodeInfo;
use crate::plugins::PluginName;
use crate::pod_info::PodInfo;
use crate::status::Status;
use crate::taints::{Taint, TaintEffect};

/// kube's `ErrReasonUnschedulable`.
pub const REASON: &str = "node(s) were unschedulable";

/// The taint key for cordoned nodes.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> PluginName {
        PluginName::NodeUnschedulable
    }
}

impl PreFilterPlugin for NodeUnschedulable {
    type State = ();

    fn pre_filter(&self, _ctx: &CycleContext<'_>, _pod: &PodInfo) -> PreFilterResult<()> {
        PreFilterResult::Run(())
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _state: &(), pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        if !node.unschedulable {
            return Ok(());
        }
        let taint = Taint {
            key: TAINT_UNSCHEDULABLE.to_owned(),
            value: String::new(),
            effect: TaintEffect::NoSchedule,
        };
        if pod.tolerations.iter().any(|t| t.tolerates(&taint)) {
            Ok(())
        } else {
            Err(Status::unresolvable(REASON))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;
    use crate::status::Code;

    #[test]
    fn cordoned_nodes() {
        let cordoned = node("n", "1", "1Gi").unschedulable().info();
        let plain = pod("p").info();
        let err = NodeUnschedulable
            .filter(&(), &plain, &cordoned)
            .unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(err.message(), "node(s) were unschedulable");
        assert!(
            NodeUnschedulable
                .filter(&(), &plain, &node("n", "1", "1Gi").info())
                .is_ok()
        );
        let tolerant = pod("p")
            .toleration(TAINT_UNSCHEDULABLE, "Exists", "", "NoSchedule")
            .info();
        assert!(NodeUnschedulable.filter(&(), &tolerant, &cordoned).is_ok());
        let wrong_effect = pod("p")
            .toleration(TAINT_UNSCHEDULABLE, "Exists", "", "NoExecute")
            .info();
        assert!(
            NodeUnschedulable
                .filter(&(), &wrong_effect, &cordoned)
                .is_err()
        );
    }
}
