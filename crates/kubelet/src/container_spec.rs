//! From the pod's spec to what the runtime is asked for: the sandbox's config (hostname,
//! host ports, labels), and each container's cgroup limits and security settings, computed
//! as kube's kubelet does (`kuberuntime_container_linux.go`, `qos/policy.go`).

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::pod_status::qos_class;
use crate::runtime::{PortMapping, Resources, SandboxConfig, Security};

/// A quantity's value, rounded up (Go's `Quantity.Value()`); 0 when malformed.
pub fn value(q: &Quantity) -> i64 {
    rkube_api::validate_types::Quantity::parse(&q.0).map_or(0, |q| q.int_value())
}

/// A quantity in thousandths, rounded up (Go's `Quantity.MilliValue()`); 0 when malformed.
pub(crate) fn milli_value(q: &Quantity) -> i64 {
    rkube_api::validate_types::Quantity::parse(&q.0).map_or(0, |q| q.milli_value())
}

/// cgroup v1's bounds on CPU shares.
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
/// The CFS period kube uses (100 ms) and the smallest quota it sets (1 ms).
const CPU_PERIOD: i64 = 100_000;
const MIN_QUOTA: i64 = 1_000;

/// The sandbox config of a pod.
pub fn sandbox_config(pod: &Pod) -> SandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut hostname = spec.hostname.clone().unwrap_or_else(|| name.clone());
    hostname.truncate(63);
    let ports = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.is_some_and(|h| h > 0))
        .map(|p| PortMapping {
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or_default(),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    SandboxConfig {
        dns: None,
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        host_network: spec.host_network == Some(true),
        previous_ip: None,
        hostname: hostname.trim_end_matches(['-', '.']).to_owned(),
        ports,
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        annotations: pod.metadata.annotations.clone().unwrap_or_default(),
    }
}

/// The environment from plain `value` entries, in order (`valueFrom` and `envFrom` are
/// resolved elsewhere).
pub fn plain_env(container: &Container) -> Vec<(String, String)> {
    container
        .env
        .iter()
        .flatten()
        .filter(|e| e.value_from.is_none())
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

/// kube's `MilliCPUToShares`.
fn shares(milli_cpu: i64) -> i64 {
    if milli_cpu <= 0 {
        return MIN_SHARES;
    }
    (milli_cpu * 1024 / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// kube's `MilliCPUToQuota` for the default period.
fn quota(milli_cpu: i64) -> i64 {
    if milli_cpu <= 0 {
        return 0;
    }
    (milli_cpu * CPU_PERIOD / 1000).max(MIN_QUOTA)
}

/// kube's `GetContainerOOMScoreAdjust`: -997 for Guaranteed pods, 1000 for BestEffort,
/// and between for Burstable by the share of the node's memory the container requests.
fn oom_score_adj(qos: &str, memory_request: i64, memory_capacity: i64) -> i64 {
    match qos {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            if memory_capacity <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * memory_request) / memory_capacity;
            adj.clamp(3, 999)
        }
    }
}

/// A container's cgroup limits from its requests and limits.
pub fn resources(pod: &Pod, container: &Container, node_memory_bytes: i64) -> Resources {
    let requirements = container.resources.clone().unwrap_or_default();
    let requests = requirements.requests.unwrap_or_default();
    let limits = requirements.limits.unwrap_or_default();
    // A limit without a request requests as much (the API defaults it; kube's kubelet
    // does the same for pods made before).
    let cpu_request = requests.get("cpu").or(limits.get("cpu")).map(milli_value);
    let memory_request = requests.get("memory").or(limits.get("memory")).map(value);
    let qos = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.clone())
        .unwrap_or_else(|| qos_class(&pod.spec.clone().unwrap_or_default()).to_owned());
    Resources {
        cpu_shares: shares(cpu_request.unwrap_or(0)),
        cpu_quota: limits.get("cpu").map_or(0, |q| quota(milli_value(q))),
        cpu_period: CPU_PERIOD,
        memory_limit_bytes: limits.get("memory").map_or(0, value),
        oom_score_adj: oom_score_adj(&qos, memory_request.unwrap_or(0), node_memory_bytes),
    }
}

/// A container's security settings: its own `securityContext`, the pod's for the user and
/// group it lacks.
pub fn security(pod: &Pod, container: &Container) -> Security {
    let pod_context = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let context = container.security_context.clone().unwrap_or_default();
    let capabilities = context.capabilities.clone().unwrap_or_default();
    Security {
        run_as_user: context.run_as_user.or(pod_context.run_as_user),
        run_as_group: context.run_as_group.or(pod_context.run_as_group),
        read_only_root_filesystem: context.read_only_root_filesystem == Some(true),
        privileged: context.privileged == Some(true),
        capabilities_add: capabilities.add.unwrap_or_default(),
        capabilities_drop: capabilities.drop.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Capabilities, ContainerPort, EnvVar, EnvVarSource, PodSecurityContext, PodSpec,
        ResourceRequirements, SecurityContext,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn pod(container: Container) -> Pod {
        Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![container],
                security_context: Some(PodSecurityContext {
                    run_as_user: Some(1000),
                    run_as_group: Some(3000),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn quantities(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect()
    }

    #[test]
    fn requests_and_limits_become_cgroup_limits() {
        let c = Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(&[("cpu", "250m"), ("memory", "32Mi")])),
                limits: Some(quantities(&[("cpu", "500m"), ("memory", "64Mi")])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = resources(&pod(c.clone()), &c, 1 << 30);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!(r.cpu_quota, 50_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_bytes, 64 << 20);
        // Burstable: 1000 - 1000 * 32Mi / 1Gi.
        assert_eq!(r.oom_score_adj, 969);
        let best_effort = Container {
            name: "b".into(),
            ..Default::default()
        };
        let r = resources(&pod(best_effort.clone()), &best_effort, 1 << 30);
        assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit_bytes), (2, 0, 0));
        assert_eq!(r.oom_score_adj, 1000);
    }

    #[test]
    fn security_context_falls_back_to_the_pods() {
        let c = Container {
            name: "c".into(),
            security_context: Some(SecurityContext {
                run_as_user: Some(5),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    add: Some(vec!["NET_ADMIN".into()]),
                    drop: Some(vec!["ALL".into()]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = security(&pod(c.clone()), &c);
        assert_eq!((s.run_as_user, s.run_as_group), (Some(5), Some(3000)));
        assert!(s.read_only_root_filesystem && !s.privileged);
        assert_eq!(s.capabilities_add, ["NET_ADMIN"]);
        assert_eq!(s.capabilities_drop, ["ALL"]);
    }

    #[test]
    fn sandboxes_get_host_ports_and_plain_env_is_kept_in_order() {
        let c = Container {
            name: "c".into(),
            ports: Some(vec![
                ContainerPort {
                    container_port: 80,
                    host_port: Some(8080),
                    ..Default::default()
                },
                ContainerPort {
                    container_port: 81,
                    ..Default::default()
                },
            ]),
            env: Some(vec![
                EnvVar {
                    name: "B".into(),
                    value: Some("2".into()),
                    ..Default::default()
                },
                EnvVar {
                    name: "FROM".into(),
                    value_from: Some(EnvVarSource::default()),
                    ..Default::default()
                },
                EnvVar {
                    name: "A".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let config = sandbox_config(&pod(c.clone()));
        assert_eq!(config.hostname, "web");
        assert_eq!(config.ports.len(), 1);
        assert_eq!(
            (config.ports[0].protocol.as_str(), config.ports[0].host_port),
            ("TCP", 8080)
        );
        assert_eq!(
            plain_env(&c),
            [
                ("B".to_owned(), "2".to_owned()),
                ("A".to_owned(), String::new())
            ]
        );
    }
}
