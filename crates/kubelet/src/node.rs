//! The Node object as kube's kubelet registers and reports it (`kubelet_node_status.go`,
//! `pkg/kubelet/nodestatus`): default labels, capacity and allocatable, addresses, daemon
//! endpoints, node info, and the MemoryPressure, DiskPressure, PIDPressure and Ready
//! conditions with kube's reasons and messages.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::chrono::{DateTime, Utc};

/// The version the kubelet reports, the same as the API server's `/version`.
pub const KUBELET_VERSION: &str = "v1.33.0+rkube";

/// The kubelet's default port, as published in `status.daemonEndpoints`.
pub const KUBELET_PORT: u16 = 10250;

/// Why a node is not ready yet: its runtime has no pod network (kube's message).
pub const NETWORK_NOT_READY: &str = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";

/// The node's resources, as quantities (`4`, `16Gi`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "100Gi".into(),
        }
    }
}

impl Capacity {
    pub fn quantities(&self) -> BTreeMap<String, Quantity> {
        [
            ("cpu", &self.cpu),
            ("ephemeral-storage", &self.ephemeral_storage),
            ("hugepages-1Gi", &"0".to_owned()),
            ("hugepages-2Mi", &"0".to_owned()),
            ("memory", &self.memory),
            ("pods", &self.pods),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v.clone())))
        .collect()
    }
}

/// What the node is: name, address, resources and the system it reports.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    pub name: String,
    pub internal_ip: IpAddr,
    pub capacity: Capacity,
    pub system: SystemInfo,
    /// `NAME://VERSION` of the container runtime.
    pub container_runtime_version: String,
    /// The port of the kubelet's HTTPS server, published in `status.daemonEndpoints`.
    pub kubelet_port: u16,
    /// What the pressure conditions are measured from (real nodes); hollow nodes have none.
    pub eviction: Option<crate::machine::Eviction>,
}

/// `status.nodeInfo` without the versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemInfo {
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
    /// Go's name: `amd64`, `arm64`.
    pub architecture: String,
}

impl SystemInfo {
    /// The host's kernel and OS (what a kubelet on this machine would show), with ids made
    /// from `seed` so every hollow node has its own.
    pub fn of_host(seed: &str, boot: &str) -> Self {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| "Linux".to_owned());
        let uuid = |s: &str| {
            let hex = crate::simulated::stable_hex(s, 32);
            format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            )
        };
        Self {
            machine_id: crate::simulated::stable_hex(&format!("machine/{seed}"), 32),
            system_uuid: uuid(&format!("system/{seed}")),
            boot_id: uuid(&format!("boot/{seed}/{boot}")),
            kernel_version: kernel,
            os_image,
            architecture: go_arch().to_owned(),
        }
    }
}

impl SystemInfo {
    /// This machine's own ids (`/etc/machine-id`, the kernel's boot id and product uuid),
    /// kernel and OS, for a real node.
    pub fn of_this_machine(name: &str) -> Self {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .ok()
                .filter(|s| !s.is_empty())
        };
        let fallback = Self::of_host(name, "boot");
        Self {
            machine_id: read("/etc/machine-id").unwrap_or(fallback.machine_id.clone()),
            system_uuid: read("/sys/class/dmi/id/product_uuid")
                .map(|u| u.to_lowercase())
                .unwrap_or(fallback.system_uuid.clone()),
            boot_id: read("/proc/sys/kernel/random/boot_id").unwrap_or(fallback.boot_id.clone()),
            ..fallback
        }
    }
}

/// Go's name of this machine's architecture.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The labels every kubelet puts on its node.
pub fn default_labels(name: &str) -> BTreeMap<String, String> {
    let arch = go_arch().to_owned();
    [
        ("beta.kubernetes.io/arch", arch.clone()),
        ("beta.kubernetes.io/os", "linux".to_owned()),
        ("kubernetes.io/arch", arch),
        ("kubernetes.io/hostname", name.to_owned()),
        ("kubernetes.io/os", "linux".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The Node the kubelet registers (kube's `initialNode`), status included.
pub fn registration(config: &NodeConfig, network_ready: bool, now: DateTime<Utc>) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(default_labels(&config.name)),
            annotations: Some(
                [(
                    "volumes.kubernetes.io/controller-managed-attach-detach".to_owned(),
                    "true".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(desired_status(
            config,
            network_ready,
            Pressure::default(),
            None,
            now,
        )),
    }
}

/// Which of the eviction signals are past their thresholds (kube's eviction manager).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

type Condition = (&'static str, &'static str, &'static str, &'static str);

/// The node's conditions: the pressures, and Ready once the runtime's network is.
fn conditions(network_ready: bool, pressure: Pressure) -> Vec<Condition> {
    let ready = if network_ready {
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        )
    } else {
        ("Ready", "False", "KubeletNotReady", NETWORK_NOT_READY)
    };
    let memory = if pressure.memory {
        (
            "MemoryPressure",
            "True",
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        )
    } else {
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        )
    };
    let disk = if pressure.disk {
        (
            "DiskPressure",
            "True",
            "KubeletHasDiskPressure",
            "kubelet has disk pressure",
        )
    } else {
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        )
    };
    let pid = if pressure.pid {
        (
            "PIDPressure",
            "True",
            "KubeletHasInsufficientPID",
            "kubelet has insufficient PID available",
        )
    } else {
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        )
    };
    vec![memory, disk, pid, ready]
}

/// The status the kubelet posts: heartbeats now, each condition's transition time kept from
/// `current` while its status stays the same.
pub fn desired_status(
    config: &NodeConfig,
    network_ready: bool,
    pressure: Pressure,
    current: Option<&NodeStatus>,
    now: DateTime<Utc>,
) -> NodeStatus {
    let existing = current
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let conditions = conditions(network_ready, pressure)
        .into_iter()
        .map(|(kind, status, reason, message)| {
            let transition = existing
                .iter()
                .find(|c| c.type_ == kind && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            NodeCondition {
                type_: kind.to_owned(),
                status: status.to_owned(),
                reason: Some(reason.to_owned()),
                message: Some(message.to_owned()),
                last_heartbeat_time: Some(Time(now)),
                last_transition_time: Some(transition),
            }
        })
        .collect();
    let resources = config.capacity.quantities();
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(conditions),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_owned(),
                address: config.internal_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".to_owned(),
                address: config.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(config.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            machine_id: config.system.machine_id.clone(),
            system_uuid: config.system.system_uuid.clone(),
            boot_id: config.system.boot_id.clone(),
            kernel_version: config.system.kernel_version.clone(),
            os_image: config.system.os_image.clone(),
            container_runtime_version: config.container_runtime_version.clone(),
            kubelet_version: KUBELET_VERSION.to_owned(),
            kube_proxy_version: String::new(),
            operating_system: "linux".to_owned(),
            architecture: config.system.architecture.clone(),
            swap: None,
        }),
        ..NodeStatus::default()
    }
}

/// The events kube's kubelet records for conditions whose status changes from `current` to
/// `desired` (`NodeReady`, `NodeHasSufficientMemory`...).
pub fn condition_changes(current: Option<&NodeStatus>, desired: &NodeStatus) -> Vec<&'static str> {
    let before = |kind: &str| {
        current
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
            .map(|c| c.status.as_str())
    };
    desired
        .conditions
        .iter()
        .flatten()
        .filter(|c| before(&c.type_) != Some(c.status.as_str()))
        .filter_map(|c| match (c.type_.as_str(), c.status.as_str()) {
            ("Ready", "True") => Some("NodeReady"),
            ("Ready", _) => Some("NodeNotReady"),
            ("MemoryPressure", "True") => Some("NodeHasInsufficientMemory"),
            ("MemoryPressure", _) => Some("NodeHasSufficientMemory"),
            ("DiskPressure", "True") => Some("NodeHasDiskPressure"),
            ("DiskPressure", _) => Some("NodeHasNoDiskPressure"),
            ("PIDPressure", "True") => Some("NodeHasInsufficientPID"),
            ("PIDPressure", _) => Some("NodeHasSufficientPID"),
            _ => None,
        })
        .collect()
}

/// Whether the node's status differs from what the kubelet would post, heartbeat times
/// aside (kube posts a changed status at once, an unchanged one every report period).
pub fn status_changed(current: Option<&NodeStatus>, desired: &NodeStatus) -> bool {
    let Some(current) = current else {
        return true;
    };
    let strip = |conditions: Option<&Vec<NodeCondition>>| -> Vec<NodeCondition> {
        conditions
            .into_iter()
            .flatten()
            .filter(|c| {
                desired
                    .conditions
                    .iter()
                    .flatten()
                    .any(|d| d.type_ == c.type_)
            })
            .map(|c| NodeCondition {
                last_heartbeat_time: None,
                ..c.clone()
            })
            .collect()
    };
    let mut wanted = strip(desired.conditions.as_ref());
    let mut have = strip(current.conditions.as_ref());
    wanted.sort_by(|a, b| a.type_.cmp(&b.type_));
    have.sort_by(|a, b| a.type_.cmp(&b.type_));
    wanted != have
        || current.capacity != desired.capacity
        || current.allocatable != desired.allocatable
        || current.addresses != desired.addresses
        || current.node_info != desired.node_info
        || current.daemon_endpoints != desired.daemon_endpoints
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NodeConfig {
        NodeConfig {
            eviction: None,
            name: "hollow-0".into(),
            internal_ip: "10.200.0.1".parse().expect("ip"),
            capacity: Capacity::default(),
            system: SystemInfo::of_host("hollow-0", "boot"),
            container_runtime_version: "rkube-simulated://1.0".into(),
            kubelet_port: 10250,
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("a valid time")
    }

    fn ready(status: &NodeStatus) -> NodeCondition {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .cloned()
            .expect("a Ready condition")
    }

    #[test]
    fn registration_has_kubelets_labels_and_status() {
        let node = registration(&config(), true, t(0));
        let labels = node.metadata.labels.clone().expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], "hollow-0");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], go_arch());
        let status = node.status.expect("status");
        let capacity = status.capacity.clone().expect("capacity");
        assert_eq!(capacity["cpu"].0, "4");
        assert_eq!(capacity["memory"].0, "16Gi");
        assert_eq!(capacity["pods"].0, "110");
        assert_eq!(capacity["ephemeral-storage"].0, "100Gi");
        assert_eq!(status.allocatable, status.capacity);
        let info = status.node_info.clone().expect("node info");
        assert_eq!(info.kubelet_version, KUBELET_VERSION);
        assert_eq!(info.container_runtime_version, "rkube-simulated://1.0");
        assert_eq!(info.operating_system, "linux");
        assert_eq!(info.machine_id.len(), 32);
        let types: Vec<_> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()))
            .collect();
        assert_eq!(
            types,
            [
                (
                    "MemoryPressure",
                    "False",
                    Some("KubeletHasSufficientMemory")
                ),
                ("DiskPressure", "False", Some("KubeletHasNoDiskPressure")),
                ("PIDPressure", "False", Some("KubeletHasSufficientPID")),
                ("Ready", "True", Some("KubeletReady")),
            ]
        );
        let addresses = status.addresses.expect("addresses");
        assert_eq!(addresses[0].type_, "InternalIP");
        assert_eq!(addresses[0].address, "10.200.0.1");
        assert_eq!(addresses[1].type_, "Hostname");
    }

    #[test]
    fn not_ready_until_the_pod_network_is() {
        let status = desired_status(&config(), false, Pressure::default(), None, t(0));
        let c = ready(&status);
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some("KubeletNotReady"))
        );
        assert_eq!(c.message.as_deref(), Some(NETWORK_NOT_READY));
    }

    #[test]
    fn heartbeats_alone_are_no_change_and_transitions_are_kept() {
        let config = config();
        let first = desired_status(&config, true, Pressure::default(), None, t(0));
        let later = desired_status(&config, true, Pressure::default(), Some(&first), t(10));
        assert!(!status_changed(Some(&first), &later));
        assert_eq!(ready(&later).last_heartbeat_time, Some(Time(t(10))));
        assert_eq!(ready(&later).last_transition_time, Some(Time(t(0))));
        // The controller manager marked it Unknown: a change, posted at once.
        let mut unknown = first.clone();
        if let Some(conditions) = unknown.conditions.as_mut() {
            for c in conditions.iter_mut() {
                c.status = "Unknown".into();
            }
        }
        let back = desired_status(&config, true, Pressure::default(), Some(&unknown), t(20));
        assert!(status_changed(Some(&unknown), &back));
        assert_eq!(ready(&back).last_transition_time, Some(Time(t(20))));
        assert!(status_changed(None, &back));
        assert_eq!(
            condition_changes(Some(&unknown), &back),
            [
                "NodeHasSufficientMemory",
                "NodeHasNoDiskPressure",
                "NodeHasSufficientPID",
                "NodeReady"
            ]
        );
        assert!(condition_changes(Some(&first), &later).is_empty());
        let not_ready = desired_status(&config, false, Pressure::default(), Some(&first), t(30));
        assert_eq!(
            condition_changes(Some(&first), &not_ready),
            ["NodeNotReady"]
        );
    }
}
