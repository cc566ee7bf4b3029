//! The container runtime seam: what the kubelet asks of a runtime, in CRI v1's terms
//! (`RuntimeService`), reduced to what the pod workers use. The simulated runtime of hollow
//! nodes ([`crate::simulated`]) implements it; the containerd (CRI gRPC) runtime will too.
//!
//! One runtime serves one node. Ids are the runtime's own (no `type://` prefix); the kubelet
//! writes container ids into pod status as `<runtime name>://<id>`, as kube's kubelet does.

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
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The pod shares the node's network: no address from the pod CIDR.
    pub host_network: bool,
    /// The address the pod had before the kubelet restarted, which the runtime keeps if it
    /// can (a real runtime finds its sandbox still running instead).
    pub previous_ip: Option<IpAddr>,
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
}

/// How a container ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    /// `Completed` (code 0), `Error`, `OOMKilled`...
    pub reason: String,
    pub finished_at: DateTime<Utc>,
}

impl Exit {
    /// An exit with kube's reason for the code: `Completed` for 0, `Error` otherwise.
    pub fn with_code(code: i32, finished_at: DateTime<Utc>) -> Self {
        Self {
            code,
            reason: if code == 0 { "Completed" } else { "Error" }.to_owned(),
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

    /// CRI `CreateContainer` then `StartContainer`; returns the container's id.
    async fn start_container(
        &self,
        sandbox_id: &str,
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
}
