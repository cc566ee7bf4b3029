//! The kubelet's admission of a new pod under node pressure (kube's eviction manager's
//! `Admit`): a node past an eviction threshold takes no more pods that would add to the
//! pressure. Under memory pressure alone, only BestEffort pods are refused (unless they
//! tolerate the `node.kubernetes.io/memory-pressure` taint); under disk or PID pressure,
//! every pod is. Critical pods (static and mirror pods, and priority 2,000,000,000 and up)
//! are always admitted. A refused pod fails with reason `Evicted` and the message
//! `Pod was rejected: The node had condition: [DiskPressure]. `, as kube's, and a
//! warning event says the same without its first three words.

use k8s_openapi::api::core::v1::Pod;

use crate::node::Pressure;
use crate::pod_status::qos_class;
use crate::static_pods::{MIRROR_ANNOTATION, SOURCE_ANNOTATION};

/// kube's `SystemCriticalPriority`.
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// Why a pod was not admitted: the reason and message of its event (its status's message
/// starts `Pod was rejected: `).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: &'static str,
    pub message: String,
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
        reason: "Evicted",
        message: format!("The node had condition: [{}]. ", conditions.join(" ")),
    })
}

/// kube's `IsCriticalPod`: a static or mirror pod, or one of system-critical priority.
fn is_critical(pod: &Pod) -> bool {
    let annotations = pod.metadata.annotations.as_ref();
    let annotation = |key: &str| annotations.and_then(|a| a.get(key));
    annotation(SOURCE_ANNOTATION).is_some_and(|source| source != "api")
        || annotation(MIRROR_ANNOTATION).is_some()
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
}
