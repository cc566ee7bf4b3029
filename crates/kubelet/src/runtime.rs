//! The container runtime seam: what the kubelet asks of a runtime, in CRI v1's terms
//! (`RuntimeService` and `ImageService`), reduced to what the pod workers use. The
//! simulated runtime of hollow nodes ([`crate::simulated`]) and the containerd runtime of
//! real nodes ([`crate::cri_runtime`]) implement it.
//!
//! One runtime serves one node. Ids are the runtime's own (no `type://` prefix); the kubelet
//! writes container ids into pod status as `<runtime name>://<id>`, as kube's kubelet does.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::chrono::{DateTime, Utc};

/// The runtime's name and version (CRI `Version`); the node shows them as
/// `nodeInfo.containerRuntimeVersion` = `NAME://VERSION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub name: String,
    pub version: String,
}

/// What a pod sandbox is made from (CRI `PodSandboxConfig`).
#[derive(Clone, Debug, Default)]
pub struct SandboxConfig {
    /// The pod's resolv.conf (CRI `DNSConfig`); `None`: the runtime's default.
    pub dns: Option<crate::dns::DnsConfig>,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The pod shares the node's network: no address from the pod CIDR.
    pub host_network: bool,
    /// The address the pod had before the kubelet restarted, which the runtime keeps if it
    /// can (a real runtime finds its sandbox still running instead).
    pub previous_ip: Option<IpAddr>,
    /// The pod's hostname (`spec.hostname`, else its name).
    pub hostname: String,
    /// The containers' host ports (CNI's portmap plugin).
    pub ports: Vec<PortMapping>,
    /// The pod's labels and annotations, passed on as the kubelet does.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A container port published on the node (`hostPort`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapping {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub container_port: i32,
    pub host_port: i32,
    pub host_ip: String,
}

/// A directory or file of the node bound into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub container_path: String,
    pub host_path: String,
    pub readonly: bool,
    pub propagation: crate::volumes::Propagation,
}

/// A container's cgroup limits (CRI `LinuxContainerResources`), from its requests and
/// limits as kube's kubelet computes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU shares from the CPU request (2 without one).
    pub cpu_shares: i64,
    /// CFS quota from the CPU limit, per `cpu_period`; 0 without a limit.
    pub cpu_quota: i64,
    pub cpu_period: i64,
    /// 0 without a memory limit.
    pub memory_limit_bytes: i64,
    /// The kernel's OOM score adjustment by the pod's QoS class.
    pub oom_score_adj: i64,
}

/// A container's `securityContext`, the parts the runtime applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub read_only_root_filesystem: bool,
    pub privileged: bool,
    pub capabilities_add: Vec<String>,
    pub capabilities_drop: Vec<String>,
}

/// `imagePullPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The policy a container gets: its own, else kube's default (`Always` for `:latest` or
    /// no tag, `IfNotPresent` otherwise).
    pub fn of(policy: Option<&str>, image: &str) -> Self {
        match policy {
            Some("Always") => PullPolicy::Always,
            Some("Never") => PullPolicy::Never,
            Some("IfNotPresent") => PullPolicy::IfNotPresent,
            _ => {
                let name = image.split('@').next().unwrap_or(image);
                let last = name.rsplit('/').next().unwrap_or(name);
                let tag = last.split_once(':').map(|(_, t)| t);
                if image.contains('@') || tag.is_some_and(|t| t != "latest") {
                    PullPolicy::IfNotPresent
                } else {
                    PullPolicy::Always
                }
            }
        }
    }
}

/// A running pod sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    pub id: String,
    /// The pod's address; `None` for host-network pods, which use the node's.
    pub ip: Option<IpAddr>,
}

/// What a container is made from (CRI `ContainerConfig`).
#[derive(Clone, Debug, Default)]
pub struct ContainerConfig {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// How many times this container was started before in this pod (CRI `attempt`).
    pub attempt: u32,
    /// The environment, resolved by the kubelet, in order.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub working_dir: Option<String>,
    pub resources: Resources,
    pub security: Security,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    /// Where the container writes its termination message (`terminationMessagePath`).
    pub termination_message_path: Option<String>,
    /// Whether it is an init container (a label on the container, for adoption).
    pub init: bool,
}

/// How a container ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    /// `Completed` (code 0), `Error`, `OOMKilled`, `StartError`...
    pub reason: String,
    /// The runtime's words about it (why it could not start, say).
    pub message: Option<String>,
    pub finished_at: DateTime<Utc>,
}

impl Exit {
    /// An exit with kube's reason for the code: `Completed` for 0, `Error` otherwise.
    pub fn with_code(code: i32, finished_at: DateTime<Utc>) -> Self {
        Self {
            code,
            reason: if code == 0 { "Completed" } else { "Error" }.to_owned(),
            message: None,
            finished_at,
        }
    }
}

/// A container as the runtime reports it (CRI `ContainerStatus`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    /// The image reference the runtime resolved (`docker.io/library/busybox:latest`).
    pub image: String,
    /// The image's digest reference (`docker.io/library/busybox@sha256:...`).
    pub image_id: String,
    pub started_at: DateTime<Utc>,
    /// `None` while it runs.
    pub exit: Option<Exit>,
}

/// A sandbox the runtime still runs for a pod, found after the kubelet restarted.
#[derive(Clone, Debug)]
pub struct FoundSandbox {
    pub sandbox: Sandbox,
    /// Its containers, newest attempt last for each name.
    pub containers: Vec<FoundContainer>,
}

/// A container found in a sandbox.
#[derive(Clone, Debug)]
pub struct FoundContainer {
    pub name: String,
    pub attempt: u32,
    pub status: ContainerStatus,
}

/// What a runtime can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// No pod network yet (CRI `NetworkReady=false`): the node has no pod CIDR.
    #[error(
        "network is not ready: container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
    )]
    NetworkNotReady,
    /// The pod CIDR has no free address (host-local's message).
    #[error("failed to allocate for range 0: no IP addresses available in range set: {range}")]
    AddressesExhausted { range: String },
    /// The pod CIDR given to the runtime is not usable.
    #[error(transparent)]
    PodCidr(#[from] crate::ipam::IpamError),
    #[error("sandbox {id} not found")]
    SandboxNotFound { id: String },
    #[error("container {id} not found")]
    ContainerNotFound { id: String },
    /// `imagePullPolicy: Never` and the image is absent (kube's `ErrImageNeverPull`).
    #[error("Container image {image:?} is not present with pull policy of Never")]
    ImageNeverPull { image: String },
    /// The pull failed; the message is the runtime's (kube's `ErrImagePull`).
    #[error("{message}")]
    ImagePull { message: String },
    /// Any other error of the runtime, with its message.
    #[error("{0}")]
    Runtime(String),
}

/// A container runtime serving one node.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// CRI `Version`.
    fn version(&self) -> RuntimeVersion;

    /// CRI `UpdateRuntimeConfig`: the node's pod CIDR, once the controller manager gave one.
    async fn update_pod_cidr(&self, cidr: &str) -> Result<(), RuntimeError>;

    /// CRI `Status`' `NetworkReady`: pods that need the pod network can start.
    fn network_ready(&self) -> bool;

    /// CRI `RunPodSandbox` (the CNI plugin gives the address).
    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<Sandbox, RuntimeError>;

    /// CRI `ImageStatus`: whether the runtime has the image.
    async fn image_present(&self, image: &str) -> Result<bool, RuntimeError>;

    /// CRI `PullImage`; returns the image's size in bytes.
    async fn pull_image(&self, image: &str, sandbox: &SandboxConfig) -> Result<u64, RuntimeError>;

    /// CRI `CreateContainer` then `StartContainer`; returns the container's id.
    async fn start_container(
        &self,
        sandbox_id: &str,
        sandbox: &SandboxConfig,
        config: &ContainerConfig,
    ) -> Result<String, RuntimeError>;

    /// CRI `ContainerStatus`.
    async fn container_status(&self, id: &str) -> Result<ContainerStatus, RuntimeError>;

    /// Resolves when the container exits (CRI container events, as kube's evented PLEG
    /// follows them); pending forever for one that never does.
    async fn wait_container(&self, id: &str) -> Result<Exit, RuntimeError>;

    /// CRI `StopContainer` with a grace period: SIGTERM, then SIGKILL when it is up.
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError>;

    /// CRI `StopPodSandbox`: stops every container of the sandbox with the grace period,
    /// then its network.
    async fn stop_pod_sandbox(&self, sandbox_id: &str, grace: Duration)
    -> Result<(), RuntimeError>;

    /// CRI `RemovePodSandbox`: forgets the sandbox and its containers, gives the address back.
    async fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<(), RuntimeError>;

    /// CRI `RemoveContainer`: an exited container the pod no longer needs (an older
    /// attempt).
    async fn remove_container(&self, _id: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// The ready sandbox the runtime still runs for the pod with this uid, with its
    /// containers, so a restarted kubelet adopts them instead of starting anew.
    async fn find_pod_sandbox(&self, _uid: &str) -> Result<Option<FoundSandbox>, RuntimeError> {
        Ok(None)
    }

    /// Whether the kubelet runs probes for real against this runtime's containers (the
    /// simulated runtime's containers pass them after their initial delays).
    fn runs_probes(&self) -> bool {
        false
    }

    /// CRI `ExecSync`: runs a command in the container; its exit code and output.
    async fn exec_sync(
        &self,
        id: &str,
        _command: &[String],
        _timeout: Duration,
    ) -> Result<(i32, String), RuntimeError> {
        Err(RuntimeError::ContainerNotFound { id: id.to_owned() })
    }

    /// Forgets what the runtime keeps of a pod the API no longer has, its sandbox removed
    /// (its log directory).
    async fn forget_pod(&self, _sandbox: &SandboxConfig) {}

    /// Every sandbox the runtime has, as (sandbox id, pod uid): a restarted kubelet removes
    /// those of pods no longer bound to it.
    async fn list_pod_uids(&self) -> Result<Vec<(String, String)>, RuntimeError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_default_as_kubes_do() {
        assert_eq!(PullPolicy::of(None, "busybox"), PullPolicy::Always);
        assert_eq!(PullPolicy::of(None, "busybox:latest"), PullPolicy::Always);
        assert_eq!(
            PullPolicy::of(None, "busybox:1.36"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            PullPolicy::of(None, "localhost:5000/app"),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::of(None, "localhost:5000/app:v1"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            PullPolicy::of(None, "busybox@sha256:0123"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(PullPolicy::of(Some("Never"), "busybox"), PullPolicy::Never);
        assert_eq!(
            PullPolicy::of(Some("Always"), "busybox:1"),
            PullPolicy::Always
        );
    }
}
