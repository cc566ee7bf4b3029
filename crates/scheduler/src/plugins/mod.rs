//! The default plugins of kube-scheduler v1.33, one module each, and their names.

pub mod balanced_allocation;
pub mod default_preemption;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

use std::fmt;

/// The highest score a Score plugin gives (kube's `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// A plugin's name, as kube-scheduler's configuration and messages spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginName {
    NodeUnschedulable,
    NodeName,
    TaintToleration,
    NodeAffinity,
    NodePorts,
    NodeResourcesFit,
    PodTopologySpread,
    InterPodAffinity,
    DefaultPreemption,
    NodeResourcesBalancedAllocation,
    DefaultBinder,
    /// A plugin from outside this crate.
    Other(&'static str),
}

impl PluginName {
    pub fn as_str(&self) -> &'static str {
        match self {
            PluginName::NodeUnschedulable => "NodeUnschedulable",
            PluginName::NodeName => "NodeName",
            PluginName::TaintToleration => "TaintToleration",
            PluginName::NodeAffinity => "NodeAffinity",
            PluginName::NodePorts => "NodePorts",
            PluginName::NodeResourcesFit => "NodeResourcesFit",
            PluginName::PodTopologySpread => "PodTopologySpread",
            PluginName::InterPodAffinity => "InterPodAffinity",
            PluginName::DefaultPreemption => "DefaultPreemption",
            PluginName::NodeResourcesBalancedAllocation => "NodeResourcesBalancedAllocation",
            PluginName::DefaultBinder => "DefaultBinder",
            PluginName::Other(name) => name,
        }
    }

    fn bit(&self) -> u16 {
        1 << match self {
            PluginName::NodeUnschedulable => 0,
            PluginName::NodeName => 1,
            PluginName::TaintToleration => 2,
            PluginName::NodeAffinity => 3,
            PluginName::NodePorts => 4,
            PluginName::NodeResourcesFit => 5,
            PluginName::PodTopologySpread => 6,
            PluginName::InterPodAffinity => 7,
            PluginName::DefaultPreemption => 8,
            PluginName::NodeResourcesBalancedAllocation => 9,
            PluginName::DefaultBinder => 10,
            PluginName::Other(_) => 15,
        }
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of plugins (which rejected a pod; which are disabled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginSet(u16);

impl PluginSet {
    pub fn insert(&mut self, p: PluginName) {
        self.0 |= p.bit();
    }

    pub fn contains(&self, p: PluginName) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn intersects(&self, other: PluginSet) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn of(plugins: &[PluginName]) -> PluginSet {
        let mut s = PluginSet::default();
        for p in plugins {
            s.insert(*p);
        }
        s
    }
}

/// kube's `helper.DefaultNormalizeScore`: scales scores to 0..=max by the highest one;
/// `reverse` turns the most into the least.
pub fn default_normalize(max_priority: i64, reverse: bool, scores: &mut [i64]) {
    let max_count = scores.iter().copied().max().unwrap_or(0).max(0);
    if max_count == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max_priority);
        }
        return;
    }
    for s in scores.iter_mut() {
        let mut v = max_priority * *s / max_count;
        if reverse {
            v = max_priority - v;
        }
        *s = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize() {
        let mut s = [0, 5, 10];
        default_normalize(100, false, &mut s);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [0, 5, 10];
        default_normalize(100, true, &mut s);
        assert_eq!(s, [100, 50, 0]);
        let mut s = [0, 0];
        default_normalize(100, true, &mut s);
        assert_eq!(s, [100, 100]);
    }
}
