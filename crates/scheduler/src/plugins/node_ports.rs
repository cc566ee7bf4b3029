//! NodePorts: a pod's host ports must be free on the node (same protocol and port on the
//! same address, or either side on 0.0.0.0, collide).

use crate::framework::{CycleContext, FilterPlugin, Plugin, PreFilterPlugin, PreFilterResult};
use crate::node_info::NodeInfo;
use crate::plugins::PluginName;
use crate::pod_info::PodInfo;
use crate::status::Status;

/// kube's `ErrReason`.
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> PluginName {
        PluginName::NodePorts
    }
}

impl PreFilterPlugin for NodePorts {
    type State = ();

    fn pre_filter(&self, _ctx: &CycleContext<'_>, pod: &PodInfo) -> PreFilterResult<()> {
        if pod.host_ports.is_empty() {
            PreFilterResult::Skip
        } else {
            PreFilterResult::Run(())
        }
    }
}

/// Whether every host port the pod asks for is free on the node (kube's `nodeports.Fits`).
pub fn fits(pod: &PodInfo, node: &NodeInfo) -> bool {
    !pod.host_ports
        .iter()
        .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)))
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _state: &(), pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        if fits(pod, node) {
            Ok(())
        } else {
            Err(Status::unschedulable(REASON))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::HostPort;
    use crate::pod_info::test_pods::pod;
    use crate::status::Code;

    #[test]
    fn host_ports() {
        let mut n = node("n", "1", "1Gi").info();
        n.add_pod(pod("a").host_port(8080).info());
        let err = NodePorts
            .filter(&(), &pod("b").host_port(8080).info(), &n)
            .unwrap_err();
        assert_eq!(
            (err.code, err.message().as_str()),
            (Code::Unschedulable, REASON)
        );
        assert!(
            NodePorts
                .filter(&(), &pod("b").host_port(8081).info(), &n)
                .is_ok()
        );

        let on = |ip: &str, protocol: &str| HostPort {
            ip: ip.into(),
            protocol: protocol.into(),
            port: 53,
        };
        assert!(on("0.0.0.0", "UDP").conflicts(&on("10.0.0.1", "UDP")));
        assert!(on("10.0.0.1", "UDP").conflicts(&on("0.0.0.0", "UDP")));
        assert!(!on("10.0.0.1", "UDP").conflicts(&on("10.0.0.2", "UDP")));
        assert!(!on("0.0.0.0", "TCP").conflicts(&on("0.0.0.0", "UDP")));
    }
}
