//! What a plugin says about a pod and a node (kube's `framework.Status`), and the message a
//! pod that fits nowhere gets (kube's `FitError.Error()`), word for word.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use crate::plugins::PluginName;

/// A plugin's verdict, and what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success,
    /// Something broke: the pod is retried after a back-off.
    Error,
    /// Not here, but preemption might make room.
    Unschedulable,
    /// Not here, and preemption cannot change that.
    UnschedulableAndUnresolvable,
    /// The plugin has nothing to say about this pod; its later phases are skipped.
    Skip,
}

/// A verdict with its reasons and the plugin that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<Cow<'static, str>>,
    pub plugin: Option<PluginName>,
}

impl Status {
    pub fn new(code: Code, reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: None,
        }
    }

    pub fn unschedulable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Unschedulable, reason)
    }

    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }

    pub fn error(reason: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Error, reason)
    }

    pub fn with_plugin(mut self, plugin: PluginName) -> Status {
        self.plugin = Some(plugin);
        self
    }

    /// Unschedulable or UnschedulableAndUnresolvable.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }

    /// The reasons joined, as `Status.Message()`.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// kube's `NoNodeAvailableMsg`.
pub const NO_NODE_AVAILABLE: &str = "nodes are available";

/// Why a pod fits on no node: `0/N nodes are available: <PreFilterMsg>. <Filter reasons>.
/// <PostFilterMsg>.`, the Filter reasons counted per reason over the nodes and sorted as
/// strings ("1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// Set when a PreFilter plugin rejected the pod; node reasons are then left out.
    pub pre_filter_msg: Option<String>,
    /// How many nodes gave each reason.
    pub reasons: BTreeMap<String, usize>,
    /// What preemption said, when it did not help.
    pub post_filter_msg: Option<String>,
}

impl FitError {
    pub fn new(num_all_nodes: usize) -> FitError {
        FitError {
            num_all_nodes,
            ..Default::default()
        }
    }

    /// Counts one node's status.
    pub fn add_node_status(&mut self, status: &Status) {
        self.add_node_status_times(status, 1);
    }

    /// Counts a status shared by `times` nodes.
    pub fn add_node_status_times(&mut self, status: &Status, times: usize) {
        if times == 0 {
            return;
        }
        for r in &status.reasons {
            *self.reasons.entry(r.to_string()).or_default() += times;
        }
    }
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} {NO_NODE_AVAILABLE}:", self.num_all_nodes)?;
        if let Some(msg) = &self.pre_filter_msg {
            write!(f, " {msg}.")?;
        } else {
            let mut histogram: Vec<String> = self
                .reasons
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            histogram.sort();
            if !histogram.is_empty() {
                write!(f, " {}.", histogram.join(", "))?;
            }
        }
        if let Some(msg) = &self.post_filter_msg {
            write!(f, " {msg}.")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_message_format() {
        let mut e = FitError::new(3);
        e.add_node_status(&Status::unschedulable("Insufficient cpu"));
        e.add_node_status_times(
            &Status::unresolvable(
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
            ),
            2,
        );
        let mut p = FitError::new(3);
        p.add_node_status_times(
            &Status::unresolvable("Preemption is not helpful for scheduling"),
            3,
        );
        e.post_filter_msg = Some(format!("preemption: {p}"));
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: \
             3 Preemption is not helpful for scheduling.."
        );
    }

    #[test]
    fn reasons_sort_as_strings_and_count_every_reason() {
        let mut e = FitError::new(12);
        let mut both = Status::unschedulable("Insufficient cpu");
        both.reasons.push("Insufficient memory".into());
        e.add_node_status_times(&both, 2);
        e.add_node_status_times(&Status::unresolvable("node(s) were unschedulable"), 10);
        // "10 ..." sorts before "2 ..." as Go's sort.Strings does.
        assert_eq!(
            e.to_string(),
            "0/12 nodes are available: 10 node(s) were unschedulable, 2 Insufficient cpu, \
             2 Insufficient memory."
        );
        let pre = FitError {
            num_all_nodes: 2,
            pre_filter_msg: Some("node(s) didn't match Pod's node affinity/selector".into()),
            reasons: BTreeMap::from([("ignored".to_owned(), 2)]),
            post_filter_msg: Some("preemption: not eligible due to preemptionPolicy=Never.".into()),
        };
        assert_eq!(
            pre.to_string(),
            "0/2 nodes are available: node(s) didn't match Pod's node affinity/selector. \
             preemption: not eligible due to preemptionPolicy=Never.."
        );
    }
}
