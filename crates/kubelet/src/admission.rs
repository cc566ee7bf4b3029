//! The kubelet's admission of a pod bound to its node, before anything of it runs, in
//! kube's order of admit handlers:
//!
//! - Node pressure (kube's eviction manager's `Admit`): a node past an eviction threshold
//!   takes no more pods that would add to the pressure. Under memory pressure alone, only
//!   BestEffort pods are refused (unless they tolerate the
//!   `node.kubernetes.io/memory-pressure` taint); under disk or PID pressure, every pod is.
//!   Critical pods (static and mirror pods, and priority 2,000,000,000 and up) always pass.
//!   A refused pod fails with reason `Evicted` and the message
//!   `Pod was rejected: The node had condition: [DiskPressure]. `.
//! - Predicates (kube's predicate admit handler): the pod's OS, then the scheduler's
//!   admission check (free resources beside the pods the node runs, required node
//!   affinity, node name, host ports), then the node's NoExecute taints (not for static
//!   pods). Only the first failure is told: `OutOfcpu` with `Node didn't have enough
//!   resource: cpu, requested: 1000, used: 1500, capacity: 2000`, or the filter's name
//!   with `Predicate NodeAffinity failed: node(s) didn't match Pod's node
//!   affinity/selector`.
//!
//! A refused pod's status says `Pod was rejected: ` and the message; a warning event with
//! the same reason says the message alone.

use k8s_openapi::api::core::v1::Pod;
use rkube_scheduler::admission::{AdmissionFailure, admission_check};
use rkube_scheduler::node_info::NodeInfo;
use rkube_scheduler::plugins::PluginName;
use rkube_scheduler::pod_info::PodInfo;
use rkube_scheduler::taints::{Taint, TaintEffect, find_untolerated};

use crate::node::Pressure;
use crate::pod_status::qos_class;
use crate::static_pods::{MIRROR_ANNOTATION, SOURCE_ANNOTATION};

/// kube's `SystemCriticalPriority`.
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// Why a pod was not admitted: the reason and message of its event (its status's message
/// starts `Pod was rejected: `).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: String,
    pub message: String,
}

/// The OS label of nodes and pods.
const OS_LABEL: &str = "kubernetes.io/os";

/// kube's `tainttoleration.ErrReasonNotMatch`.
const UNTOLERATED_TAINT: &str = "node(s) had taints that the pod didn't tolerate";

/// A pod the predicates refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub rejection: Rejection,
    /// Node affinity is the only filter it failed: a fresher copy of the Node may admit
    /// it (kube's kubelet reads the Node from the API then and checks again).
    pub node_affinity_only: bool,
}

/// Whether a linux node can run `pod` (parsed as `info`) beside the pods `node` holds.
pub fn predicates(pod: &Pod, info: &PodInfo, node: &NodeInfo) -> Result<(), Refusal> {
    let refuse = |reason: &str, message: String| Refusal {
        rejection: Rejection {
            reason: reason.to_owned(),
            message,
        },
        node_affinity_only: false,
    };
    // Checks that no eviction could help come first.
    let pod_os = pod.metadata.labels.as_ref().and_then(|l| l.get(OS_LABEL));
    if pod_os.is_some_and(|os| os != "linux") {
        return Err(refuse(
            "PodOSSelectorNodeLabelDoesNotMatch",
            "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label".into(),
        ));
    }
    let os_field = pod.spec.as_ref().and_then(|s| s.os.as_ref());
    if os_field.is_some_and(|os| os.name != "linux") {
        return Err(refuse(
            "PodOSNotSupported",
            "Failed to admit pod as the OS field doesn't match node OS".into(),
        ));
    }
    let mut failures = admission_check(info, node);
    if !is_static(pod) {
        let no_execute = |t: &Taint| t.effect == TaintEffect::NoExecute;
        if find_untolerated(&node.taints, &info.tolerations, no_execute).is_some() {
            failures.push(AdmissionFailure::Predicate {
                plugin: PluginName::TaintToleration,
                reason: UNTOLERATED_TAINT,
            });
        }
    }
    let node_affinity_only = failures.iter().all(|f| {
        matches!(
            f,
            AdmissionFailure::Predicate {
                plugin: PluginName::NodeAffinity,
                ..
            }
        )
    });
    let Some(first) = failures.into_iter().next() else {
        return Ok(());
    };
    let rejection = match first {
        AdmissionFailure::Insufficient(lack) => Rejection {
            reason: format!("OutOf{}", lack.name),
            message: format!(
                "Node didn't have enough resource: {}, requested: {}, used: {}, capacity: {}",
                lack.name, lack.requested, lack.used, lack.capacity
            ),
        },
        AdmissionFailure::Predicate { plugin, reason } => Rejection {
            reason: plugin.as_str().to_owned(),
            message: format!("Predicate {} failed: {reason}", plugin.as_str()),
        },
    };
    Err(Refusal {
        rejection,
        node_affinity_only,
    })
}

/// Whether the node takes `pod` while under `pressure`.
pub fn admit(pod: &Pod, pressure: Pressure) -> Result<(), Rejection> {
    let conditions: Vec<&str> = [
        (pressure.memory, "MemoryPressure"),
        (pressure.disk, "DiskPressure"),
        (pressure.pid, "PIDPressure"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if conditions.is_empty() || is_critical(pod) {
        return Ok(());
    }
    if conditions == ["MemoryPressure"] && (!is_best_effort(pod) || tolerates_memory_pressure(pod))
    {
        return Ok(());
    }
    Err(Rejection {
        reason: "Evicted".to_owned(),
        message: format!("The node had condition: [{}]. ", conditions.join(" ")),
    })
}

/// kube's `IsStaticPod`: the pod came from a manifest, not the API (its mirror pod says so).
fn is_static(pod: &Pod) -> bool {
    let annotations = pod.metadata.annotations.as_ref();
    annotations
        .and_then(|a| a.get(SOURCE_ANNOTATION))
        .is_some_and(|source| source != "api")
}

/// kube's `IsCriticalPod`: a static or mirror pod, or one of system-critical priority.
fn is_critical(pod: &Pod) -> bool {
    let annotations = pod.metadata.annotations.as_ref();
    is_static(pod)
        || annotations.is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
        || pod
            .spec
            .as_ref()
            .and_then(|s| s.priority)
            .is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY)
}

/// Whether the pod's QoS class is BestEffort: as the API server set it at creation, else
/// as kube's `GetPodQOS` makes it.
fn is_best_effort(pod: &Pod) -> bool {
    let class = pod.status.as_ref().and_then(|s| s.qos_class.as_deref());
    match class {
        Some(class) => class == "BestEffort",
        None => qos_class(&pod.spec.clone().unwrap_or_default()) == "BestEffort",
    }
}

/// Whether the pod tolerates the memory-pressure taint (`NoSchedule`).
fn tolerates_memory_pressure(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .into_iter()
        .flatten()
        .any(|t| {
            // kube's `ToleratesTaint`.
            let effect = t.effect.as_deref().unwrap_or_default();
            let key = t.key.as_deref().unwrap_or_default();
            (effect.is_empty() || effect == "NoSchedule")
                && (key.is_empty() || key == "node.kubernetes.io/memory-pressure")
                && match t.operator.as_deref().unwrap_or_default() {
                    "" | "Equal" => t.value.as_deref().unwrap_or_default().is_empty(),
                    "Exists" => true,
                    _ => false,
                }
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": spec,
        }))
        .unwrap()
    }

    const MEMORY: Pressure = Pressure {
        memory: true,
        disk: false,
        pid: false,
    };
    const DISK: Pressure = Pressure {
        memory: false,
        disk: true,
        pid: false,
    };

    #[test]
    fn without_pressure_every_pod_is_admitted() {
        let best_effort = pod(serde_json::json!({"containers": [{"name": "c"}]}));
        assert_eq!(admit(&best_effort, Pressure::default()), Ok(()));
    }

    #[test]
    fn memory_pressure_refuses_best_effort_pods_alone() {
        let best_effort = pod(serde_json::json!({"containers": [{"name": "c"}]}));
        let refused = admit(&best_effort, MEMORY).unwrap_err();
        assert_eq!(refused.reason, "Evicted");
        assert_eq!(
            refused.message,
            "The node had condition: [MemoryPressure]. "
        );
        let burstable = pod(serde_json::json!({"containers": [
            {"name": "c", "resources": {"requests": {"memory": "10Mi"}}},
        ]}));
        assert_eq!(admit(&burstable, MEMORY), Ok(()));
        let tolerating = pod(serde_json::json!({
            "containers": [{"name": "c"}],
            "tolerations": [{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}],
        }));
        assert_eq!(admit(&tolerating, MEMORY), Ok(()));
        let other = pod(serde_json::json!({
            "containers": [{"name": "c"}],
            "tolerations": [{"key": "node.kubernetes.io/disk-pressure", "operator": "Exists"}],
        }));
        assert!(admit(&other, MEMORY).is_err());
    }

    #[test]
    fn disk_pressure_refuses_all_but_critical_pods() {
        let burstable = pod(serde_json::json!({"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1"}}},
        ]}));
        assert_eq!(
            admit(&burstable, DISK).unwrap_err().message,
            "The node had condition: [DiskPressure]. "
        );
        let both = Pressure {
            memory: true,
            disk: true,
            pid: false,
        };
        assert_eq!(
            admit(&burstable, both).unwrap_err().message,
            "The node had condition: [MemoryPressure DiskPressure]. "
        );
        let critical =
            pod(serde_json::json!({"containers": [{"name": "c"}], "priority": 2_000_001_000}));
        assert_eq!(admit(&critical, DISK), Ok(()));
        let mut mirror = burstable.clone();
        mirror.metadata.annotations = Some(
            [(MIRROR_ANNOTATION.to_owned(), "x".to_owned())]
                .into_iter()
                .collect(),
        );
        assert_eq!(admit(&mirror, DISK), Ok(()));
    }

    fn node(labels: serde_json::Value, taints: serde_json::Value) -> NodeInfo {
        let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n", "labels": labels},
            "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "3"}},
        }))
        .unwrap();
        NodeInfo::from_node(&node)
    }

    fn refusal(pod: &Pod, node: &NodeInfo) -> Option<Refusal> {
        let info = PodInfo::new(Arc::new(pod.clone()));
        predicates(pod, &info, node).err()
    }

    #[test]
    fn resources_tell_the_first_lacking_one_with_its_figures() {
        let mut n = node(serde_json::json!({}), serde_json::json!([]));
        let holder = pod(serde_json::json!({"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1500m", "memory": "512Mi"}}},
        ]}));
        n.add_pod(Arc::new(PodInfo::new(Arc::new(holder))));
        let wants = |cpu: &str, memory: &str| {
            pod(serde_json::json!({"containers": [
                {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}},
            ]}))
        };
        assert_eq!(refusal(&wants("500m", "512Mi"), &n), None);
        let refused = refusal(&wants("1", "1Gi"), &n).unwrap();
        assert_eq!(refused.rejection.reason, "OutOfcpu");
        assert_eq!(
            refused.rejection.message,
            "Node didn't have enough resource: cpu, requested: 1000, used: 1500, capacity: 2000"
        );
        assert!(!refused.node_affinity_only);
        let refused = refusal(&wants("100m", "1Gi"), &n).unwrap();
        assert_eq!(refused.rejection.reason, "OutOfmemory");
        assert_eq!(
            refused.rejection.message,
            "Node didn't have enough resource: memory, requested: 1073741824, used: 536870912, capacity: 1073741824"
        );
        // The pods capacity is checked first.
        for _ in 0..2 {
            let empty = pod(serde_json::json!({"containers": [{"name": "c"}]}));
            n.add_pod(Arc::new(PodInfo::new(Arc::new(empty))));
        }
        let refused = refusal(&wants("1", "1Gi"), &n).unwrap();
        assert_eq!(refused.rejection.reason, "OutOfpods");
        assert_eq!(
            refused.rejection.message,
            "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3"
        );
    }

    #[test]
    fn node_affinity_alone_may_be_checked_again() {
        let n = node(serde_json::json!({"disk": "hdd"}), serde_json::json!([]));
        let selecting = pod(serde_json::json!({
            "containers": [{"name": "c"}],
            "nodeSelector": {"disk": "ssd"},
        }));
        let refused = refusal(&selecting, &n).unwrap();
        assert_eq!(refused.rejection.reason, "NodeAffinity");
        assert_eq!(
            refused.rejection.message,
            "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
        );
        assert!(refused.node_affinity_only);
        let n = node(serde_json::json!({"disk": "ssd"}), serde_json::json!([]));
        assert_eq!(refusal(&selecting, &n), None);
    }

    #[test]
    fn only_no_execute_taints_refuse_and_not_static_pods() {
        let n = node(
            serde_json::json!({}),
            serde_json::json!([
                {"key": "a", "value": "x", "effect": "NoSchedule"},
                {"key": "b", "effect": "NoExecute"},
            ]),
        );
        let plain = pod(serde_json::json!({"containers": [{"name": "c"}]}));
        let refused = refusal(&plain, &n).unwrap();
        assert_eq!(refused.rejection.reason, "TaintToleration");
        assert_eq!(
            refused.rejection.message,
            "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate"
        );
        let tolerating = pod(serde_json::json!({
            "containers": [{"name": "c"}],
            "tolerations": [{"key": "b", "operator": "Exists"}],
        }));
        assert_eq!(refusal(&tolerating, &n), None);
        let mut mirror = plain.clone();
        mirror.metadata.annotations = Some(
            [(SOURCE_ANNOTATION.to_owned(), "file".to_owned())]
                .into_iter()
                .collect(),
        );
        assert_eq!(refusal(&mirror, &n), None);
    }

    #[test]
    fn a_pod_for_another_os_is_refused_first() {
        let n = node(serde_json::json!({}), serde_json::json!([]));
        let mut labelled = pod(serde_json::json!({
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "8"}}}],
        }));
        labelled.metadata.labels = Some(
            [("kubernetes.io/os".to_owned(), "windows".to_owned())]
                .into_iter()
                .collect(),
        );
        let refused = refusal(&labelled, &n).unwrap();
        assert_eq!(
            refused.rejection.reason,
            "PodOSSelectorNodeLabelDoesNotMatch"
        );
        let field = pod(serde_json::json!({
            "containers": [{"name": "c"}],
            "os": {"name": "windows"},
        }));
        assert_eq!(
            refusal(&field, &n).unwrap().rejection.message,
            "Failed to admit pod as the OS field doesn't match node OS"
        );
    }
}
