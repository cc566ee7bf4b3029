//! The runtime of real nodes: containerd (any CRI v1 runtime) through [`CriClient`].
//!
//! Sandboxes and containers carry kube's labels (`io.kubernetes.pod.uid`,
//! `io.kubernetes.container.name`...), so a restarted agent finds what the runtime still
//! runs for a pod ([`Runtime::find_pod_sandbox`]) and adopts it. Container logs are written
//! by the runtime in kube's layout, `LOGS/NAMESPACE_NAME_UID/CONTAINER/ATTEMPT.log`. The
//! pod network is CNI's ([`crate::cni`]): the conflist is written when the node gets its
//! pod CIDR, and the runtime reports `NetworkReady` once it has loaded it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use crate::containerd::Layout;
use crate::cri::{CriClient, CriError, api};
use crate::runtime::{
    ContainerConfig, ContainerStatus, Exit, FoundContainer, FoundSandbox, Runtime, RuntimeError,
    RuntimeVersion, Sandbox, SandboxConfig,
};
use crate::volumes::Propagation;

/// kube's labels on sandboxes and containers.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Marks what this kubelet made (kube's `io.kubernetes.container.logpath` aside, the
/// kubelet labels its sandboxes with their type).
pub const LABEL_MANAGED: &str = "io.kubernetes.rkube.managed";

/// The paths kube hides from unprivileged containers (`defaultMaskedPaths`).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// ... and makes read-only (`defaultReadonlyPaths`).
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// How often the node's containers are relisted while some are waited on (containerd 1.6
/// has no `GetContainerEvents`; kube's generic PLEG relists every second).
const POLL: Duration = Duration::from_millis(500);

type ExitSender = oneshot::Sender<Result<Exit, RuntimeError>>;

/// The containers waited on, and whether the relist that watches them runs. One relist
/// (`ListContainers`) serves every waiter, as kube's PLEG does: a request per container
/// per poll would keep containerd busy in proportion to the pods.
#[derive(Default)]
struct Waiters {
    waiting: HashMap<String, Vec<ExitSender>>,
    relisting: bool,
}

impl Waiters {
    /// The containers still waited on (dropping abandoned waits); none ends the relist.
    fn waited(&mut self) -> Vec<String> {
        self.waiting.retain(|_, senders| {
            senders.retain(|tx| !tx.is_closed());
            !senders.is_empty()
        });
        if self.waiting.is_empty() {
            self.relisting = false;
        }
        self.waiting.keys().cloned().collect()
    }
}

/// Relists the node's containers every [`POLL`] while any is waited on, and answers the
/// waiters of those that exited (or went away).
async fn relist(cri: CriClient, waiters: Arc<Mutex<Waiters>>) {
    let lock = || waiters.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        tokio::time::sleep(POLL).await;
        let waited = lock().waited();
        if waited.is_empty() {
            return;
        }
        let listed = match cri.list_containers(None).await {
            Ok(listed) => listed,
            Err(err) => {
                tracing::debug!("relisting containers: {err}");
                continue;
            }
        };
        let running: HashSet<&str> = listed
            .iter()
            .filter(|c| c.state != api::ContainerState::ContainerExited as i32)
            .map(|c| c.id.as_str())
            .collect();
        for id in waited.iter().filter(|id| !running.contains(id.as_str())) {
            let result = match cri.container_status(id).await {
                Ok(status) => match status_of(&status).exit {
                    Some(exit) => Ok(exit),
                    None => continue,
                },
                Err(e) if e.is_not_found() => {
                    Err(RuntimeError::ContainerNotFound { id: id.clone() })
                }
                Err(err) => {
                    tracing::debug!("status of exited container {id}: {err}");
                    continue;
                }
            };
            for tx in lock().waiting.remove(id).unwrap_or_default() {
                let _ = tx.send(result.clone());
            }
        }
    }
}

fn runtime_error(err: CriError) -> RuntimeError {
    RuntimeError::Runtime(err.to_string())
}

fn time_of(nanos: i64) -> Option<DateTime<Utc>> {
    (nanos > 0).then(|| DateTime::from_timestamp_nanos(nanos))
}

/// A pod's log directory: `NAMESPACE_NAME_UID`.
pub fn pod_log_dir_name(namespace: &str, name: &str, uid: &str) -> String {
    format!("{namespace}_{name}_{uid}")
}

/// The containerd runtime of one node.
pub struct CriRuntime {
    cri: CriClient,
    version: RuntimeVersion,
    network: AtomicBool,
    layout: Layout,
    bridge: String,
    waiters: Arc<Mutex<Waiters>>,
    /// The pods (by uid) that may have sandboxes: those the runtime had when first asked,
    /// and those made since. A pod outside it has none, so looking for its sandbox or
    /// numbering its first one asks containerd nothing (under a burst of pods, each request
    /// waits its turn in a busy containerd).
    known_pods: tokio::sync::OnceCell<Mutex<HashSet<String>>>,
}

impl CriRuntime {
    /// A runtime over `cri`, its state under `layout`, pods on the bridge `bridge`.
    pub async fn new(cri: CriClient, layout: Layout, bridge: &str) -> Result<Self, CriError> {
        let version = cri.version().await?;
        let network = cri.condition("NetworkReady").await.unwrap_or(false);
        Ok(Self {
            cri,
            version: RuntimeVersion {
                name: version.runtime_name,
                version: version.runtime_version,
            },
            network: AtomicBool::new(network),
            layout,
            bridge: bridge.to_owned(),
            waiters: Arc::default(),
            known_pods: tokio::sync::OnceCell::new(),
        })
    }

    /// The pods that may have sandboxes (see `known_pods`); the first call lists the
    /// runtime's sandboxes.
    async fn known_pods(&self) -> Result<MutexGuard<'_, HashSet<String>>, RuntimeError> {
        let known = self
            .known_pods
            .get_or_try_init(|| async {
                let listed = self.list_pod_uids().await?;
                Ok::<_, RuntimeError>(Mutex::new(listed.into_iter().map(|(_, uid)| uid).collect()))
            })
            .await?;
        Ok(known.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The CRI client, for probes (`ExecSync`) and streaming (`Exec`, `Attach`,
    /// `PortForward`).
    pub fn cri(&self) -> &CriClient {
        &self.cri
    }

    /// Where the pod's container logs are.
    pub fn pod_log_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.layout
            .pod_logs_dir()
            .join(pod_log_dir_name(namespace, name, uid))
    }

    fn sandbox_config(&self, config: &SandboxConfig, attempt: u32) -> api::PodSandboxConfig {
        let mut labels: HashMap<String, String> = config
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.extend(pod_labels(config));
        labels.insert(LABEL_MANAGED.to_owned(), "true".to_owned());
        let network = if config.host_network {
            api::NamespaceMode::Node
        } else {
            api::NamespaceMode::Pod
        };
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: config.name.clone(),
                uid: config.uid.clone(),
                namespace: config.namespace.clone(),
                attempt,
            }),
            hostname: if config.host_network {
                String::new()
            } else {
                config.hostname.clone()
            },
            log_directory: self
                .pod_log_dir(&config.namespace, &config.name, &config.uid)
                .to_string_lossy()
                .into_owned(),
            dns_config: config.dns.as_ref().map(|d| api::DnsConfig {
                servers: d.servers.clone(),
                searches: d.searches.clone(),
                options: d.options.clone(),
            }),
            port_mappings: config
                .ports
                .iter()
                .map(|p| api::PortMapping {
                    protocol: match p.protocol.as_str() {
                        "UDP" => api::Protocol::Udp,
                        "SCTP" => api::Protocol::Sctp,
                        _ => api::Protocol::Tcp,
                    } as i32,
                    container_port: p.container_port,
                    host_port: p.host_port,
                    host_ip: p.host_ip.clone(),
                })
                .collect(),
            labels,
            annotations: config
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            linux: Some(api::LinuxPodSandboxConfig {
                security_context: Some(api::LinuxSandboxSecurityContext {
                    namespace_options: Some(api::NamespaceOption {
                        network: network as i32,
                        pid: api::NamespaceMode::Container as i32,
                        ipc: api::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            windows: None,
        }
    }
}

fn pod_labels(config: &SandboxConfig) -> [(String, String); 3] {
    [
        (LABEL_POD_NAME.to_owned(), config.name.clone()),
        (LABEL_POD_NAMESPACE.to_owned(), config.namespace.clone()),
        (LABEL_POD_UID.to_owned(), config.uid.clone()),
    ]
}

/// CRI's container status in the kubelet's terms.
fn status_of(status: &api::ContainerStatus) -> ContainerStatus {
    let exited = status.state == api::ContainerState::ContainerExited as i32;
    let started_at = match time_of(status.started_at) {
        Some(at) => at,
        // Exited without starting (StartError): kube shows the zero Unix time.
        None if exited => DateTime::UNIX_EPOCH,
        None => time_of(status.created_at).unwrap_or_else(Utc::now),
    };
    let exit = exited.then(|| {
        let reason = match status.reason.as_str() {
            "" if status.exit_code == 0 => "Completed".to_owned(),
            "" => "Error".to_owned(),
            other => other.to_owned(),
        };
        Exit {
            code: status.exit_code,
            reason,
            message: Some(status.message.clone()).filter(|m| !m.is_empty()),
            finished_at: time_of(status.finished_at).unwrap_or_else(Utc::now),
        }
    });
    ContainerStatus {
        id: status.id.clone(),
        image: status
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default(),
        image_id: status.image_ref.clone(),
        started_at,
        exit,
    }
}

/// A container's CRI config from the kubelet's.
fn container_config(config: &ContainerConfig, sandbox: &SandboxConfig) -> api::ContainerConfig {
    let mut labels: HashMap<String, String> = pod_labels(sandbox).into_iter().collect();
    labels.insert(LABEL_CONTAINER_NAME.to_owned(), config.name.clone());
    labels.insert(LABEL_MANAGED.to_owned(), "true".to_owned());
    if config.init {
        labels.insert("io.kubernetes.rkube.init".to_owned(), "true".to_owned());
    }
    let annotations: HashMap<String, String> = [
        (
            "io.kubernetes.container.restartCount".to_owned(),
            config.attempt.to_string(),
        ),
        (
            "io.kubernetes.container.terminationMessagePath".to_owned(),
            config.termination_message_path.clone().unwrap_or_default(),
        ),
    ]
    .into();
    let security = &config.security;
    let network = if sandbox.host_network {
        api::NamespaceMode::Node
    } else {
        api::NamespaceMode::Pod
    };
    let (masked, readonly) = if security.privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            MASKED_PATHS.iter().map(|p| (*p).to_owned()).collect(),
            READONLY_PATHS.iter().map(|p| (*p).to_owned()).collect(),
        )
    };
    let resources = &config.resources;
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: config.name.clone(),
            attempt: config.attempt,
        }),
        image: Some(api::ImageSpec {
            image: config.image.clone(),
            ..Default::default()
        }),
        command: config.command.clone(),
        args: config.args.clone(),
        working_dir: config.working_dir.clone().unwrap_or_default(),
        envs: config
            .env
            .iter()
            .map(|(key, value)| api::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        mounts: config
            .mounts
            .iter()
            .map(|m| api::Mount {
                container_path: m.container_path.clone(),
                host_path: m.host_path.clone(),
                readonly: m.readonly,
                propagation: match m.propagation {
                    Propagation::Private => api::MountPropagation::PropagationPrivate,
                    Propagation::HostToContainer => {
                        api::MountPropagation::PropagationHostToContainer
                    }
                    Propagation::Bidirectional => api::MountPropagation::PropagationBidirectional,
                } as i32,
                ..Default::default()
            })
            .collect(),
        labels,
        annotations,
        log_path: format!("{}/{}.log", config.name, config.attempt),
        stdin: config.stdin,
        stdin_once: config.stdin_once,
        tty: config.tty,
        linux: Some(api::LinuxContainerConfig {
            resources: Some(api::LinuxContainerResources {
                cpu_period: resources.cpu_period,
                cpu_quota: resources.cpu_quota,
                cpu_shares: resources.cpu_shares,
                memory_limit_in_bytes: resources.memory_limit_bytes,
                oom_score_adj: resources.oom_score_adj,
                ..Default::default()
            }),
            security_context: Some(api::LinuxContainerSecurityContext {
                capabilities: Some(api::Capability {
                    add_capabilities: security.capabilities_add.clone(),
                    drop_capabilities: security.capabilities_drop.clone(),
                    ..Default::default()
                }),
                privileged: security.privileged,
                namespace_options: Some(api::NamespaceOption {
                    network: network as i32,
                    pid: api::NamespaceMode::Container as i32,
                    ipc: api::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                run_as_user: security.run_as_user.map(|value| api::Int64Value { value }),
                run_as_group: security.run_as_group.map(|value| api::Int64Value { value }),
                readonly_rootfs: security.read_only_root_filesystem,
                masked_paths: masked,
                readonly_paths: readonly,
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[async_trait::async_trait]
impl Runtime for CriRuntime {
    fn version(&self) -> RuntimeVersion {
        self.version.clone()
    }

    async fn update_pod_cidr(&self, cidr: &str) -> Result<(), RuntimeError> {
        crate::cni::write(
            &self.layout.cni_conf_dir(),
            cidr,
            &self.bridge,
            &self.layout.cni_ipam_dir(),
        )
        .map_err(|e| RuntimeError::Runtime(format!("cannot write the CNI configuration: {e}")))?;
        self.cri
            .update_pod_cidr(cidr)
            .await
            .map_err(runtime_error)?;
        // containerd reloads the conf dir on change; wait for it to say so.
        for _ in 0..100 {
            if self.cri.condition("NetworkReady").await.unwrap_or(false) {
                self.network.store(true, Ordering::Release);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!("containerd does not report its network ready yet");
        Ok(())
    }

    fn network_ready(&self) -> bool {
        self.network.load(Ordering::Acquire)
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<Sandbox, RuntimeError> {
        if !config.host_network && !self.network_ready() {
            return Err(RuntimeError::NetworkNotReady);
        }
        // Each try needs a name of its own: a failed sandbox keeps its name reserved.
        let made_before = !self.known_pods().await?.insert(config.uid.clone());
        let attempt = if made_before {
            self.cri
                .list_pod_sandboxes(&[(LABEL_POD_UID, &config.uid)])
                .await
                .map_err(runtime_error)?
                .len()
        } else {
            0
        };
        let cri_config = self.sandbox_config(config, u32::try_from(attempt).unwrap_or(0));
        std::fs::create_dir_all(&cri_config.log_directory).map_err(|e| {
            RuntimeError::Runtime(format!(
                "cannot create the pod log directory {}: {e}",
                cri_config.log_directory
            ))
        })?;
        let id = self
            .cri
            .run_pod_sandbox(cri_config)
            .await
            .map_err(runtime_error)?;
        let ip = if config.host_network {
            None
        } else {
            let status = self
                .cri
                .pod_sandbox_status(&id)
                .await
                .map_err(runtime_error)?;
            status.network.and_then(|n| n.ip.parse().ok())
        };
        Ok(Sandbox { id, ip })
    }

    async fn image_present(&self, image: &str) -> Result<bool, RuntimeError> {
        Ok(self
            .cri
            .image_status(image)
            .await
            .map_err(runtime_error)?
            .is_some())
    }

    async fn pull_image(&self, image: &str, sandbox: &SandboxConfig) -> Result<u64, RuntimeError> {
        let config = self.sandbox_config(sandbox, 0);
        self.cri
            .pull_image(image, Some(config))
            .await
            .map_err(|e| RuntimeError::ImagePull {
                message: e.to_string(),
            })?;
        Ok(self
            .cri
            .image_status(image)
            .await
            .ok()
            .flatten()
            .map_or(0, |i| i.size))
    }

    async fn start_container(
        &self,
        sandbox_id: &str,
        sandbox: &SandboxConfig,
        config: &ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let sandbox_config = self.sandbox_config(sandbox, 0);
        let id = self
            .cri
            .create_container(
                sandbox_id,
                container_config(config, sandbox),
                sandbox_config,
            )
            .await
            .map_err(runtime_error)?;
        if let Err(err) = self.cri.start_container(&id).await {
            // containerd records a failed start in the container's status (exited, code
            // 128, reason StartError, its message): the restart policy takes it from there,
            // as kube's kubelet does.
            let recorded = self
                .cri
                .container_status(&id)
                .await
                .is_ok_and(|s| s.state == api::ContainerState::ContainerExited as i32);
            if recorded {
                return Ok(id);
            }
            let _ = self.cri.remove_container(&id).await;
            return Err(runtime_error(err));
        }
        Ok(id)
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        match self.cri.container_status(id).await {
            Ok(status) => Ok(status_of(&status)),
            Err(e) if e.is_not_found() => {
                Err(RuntimeError::ContainerNotFound { id: id.to_owned() })
            }
            Err(e) => Err(runtime_error(e)),
        }
    }

    async fn wait_container(&self, id: &str) -> Result<Exit, RuntimeError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            waiters.waiting.entry(id.to_owned()).or_default().push(tx);
            if !waiters.relisting {
                waiters.relisting = true;
                tokio::spawn(relist(self.cri.clone(), self.waiters.clone()));
            }
        }
        rx.await
            .map_err(|_| RuntimeError::Runtime("the container relist stopped".into()))?
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        match self.cri.stop_container(id, grace).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(runtime_error(e)),
        }
    }

    async fn stop_pod_sandbox(
        &self,
        sandbox_id: &str,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        // The containers first, each with the grace period, together (as kube's
        // killContainersWithSyncResult), then the sandbox and its network.
        let containers = self
            .cri
            .list_containers(Some(sandbox_id))
            .await
            .map_err(runtime_error)?;
        let running = containers
            .iter()
            .filter(|c| c.state == api::ContainerState::ContainerRunning as i32)
            .map(|c| self.stop_container(&c.id, grace));
        for result in futures_util::future::join_all(running).await {
            if let Err(err) = result {
                tracing::debug!("stopping a container: {err}");
            }
        }
        match self.cri.stop_pod_sandbox(sandbox_id).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(runtime_error(e)),
        }
    }

    async fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<(), RuntimeError> {
        match self.cri.remove_pod_sandbox(sandbox_id).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(runtime_error(e)),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        match self.cri.remove_container(id).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(runtime_error(e)),
        }
    }

    fn runs_probes(&self) -> bool {
        true
    }

    async fn exec_sync(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<(i32, String), RuntimeError> {
        let response = self
            .cri
            .exec_sync(id, command, timeout)
            .await
            .map_err(runtime_error)?;
        let mut output = String::from_utf8_lossy(&response.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&response.stderr));
        Ok((response.exit_code, output.trim_end().to_owned()))
    }

    async fn forget_pod(&self, sandbox: &SandboxConfig) {
        if let Some(known) = self.known_pods.get() {
            known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&sandbox.uid);
        }
        let dir = self.pod_log_dir(&sandbox.namespace, &sandbox.name, &sandbox.uid);
        if let Err(err) = tokio::fs::remove_dir_all(&dir).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), "cannot remove the pod's logs: {err}");
        }
    }

    async fn find_pod_sandbox(&self, uid: &str) -> Result<Option<FoundSandbox>, RuntimeError> {
        if !self.known_pods().await?.contains(uid) {
            return Ok(None);
        }
        let sandboxes = self
            .cri
            .list_pod_sandboxes(&[(LABEL_POD_UID, uid)])
            .await
            .map_err(runtime_error)?;
        // Sandboxes no longer ready (the machine rebooted, the pause process died) are of
        // no use: a new one is made.
        for stale in sandboxes
            .iter()
            .filter(|s| s.state != api::PodSandboxState::SandboxReady as i32)
        {
            tracing::info!(pod_uid = uid, sandbox = %stale.id, "removing a sandbox no longer ready");
            let _ = self.cri.stop_pod_sandbox(&stale.id).await;
            if let Err(err) = self.cri.remove_pod_sandbox(&stale.id).await {
                tracing::debug!(sandbox = %stale.id, "removing a sandbox no longer ready: {err}");
            }
        }
        let Some(newest) = sandboxes
            .iter()
            .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
            .max_by_key(|s| s.created_at)
        else {
            return Ok(None);
        };
        let status = self
            .cri
            .pod_sandbox_status(&newest.id)
            .await
            .map_err(runtime_error)?;
        let host_network = status
            .linux
            .as_ref()
            .and_then(|l| l.namespaces.as_ref())
            .and_then(|n| n.options.as_ref())
            .is_some_and(|o| o.network == api::NamespaceMode::Node as i32);
        let ip = if host_network {
            None
        } else {
            status.network.and_then(|n| n.ip.parse().ok())
        };
        let mut containers = Vec::new();
        for container in self
            .cri
            .list_containers(Some(&newest.id))
            .await
            .map_err(runtime_error)?
        {
            let Some(metadata) = container.metadata.as_ref() else {
                continue;
            };
            let Ok(status) = self.cri.container_status(&container.id).await else {
                continue;
            };
            // Created but never started: nothing to adopt.
            if status.state == api::ContainerState::ContainerCreated as i32 {
                continue;
            }
            containers.push(FoundContainer {
                name: metadata.name.clone(),
                attempt: metadata.attempt,
                status: status_of(&status),
            });
        }
        containers.sort_by_key(|c| (c.name.clone(), c.attempt));
        Ok(Some(FoundSandbox {
            sandbox: Sandbox {
                id: newest.id.clone(),
                ip,
            },
            containers,
        }))
    }

    async fn list_pod_uids(&self) -> Result<Vec<(String, String)>, RuntimeError> {
        let sandboxes = self
            .cri
            .list_pod_sandboxes(&[(LABEL_MANAGED, "true")])
            .await
            .map_err(runtime_error)?;
        Ok(sandboxes
            .into_iter()
            .filter_map(|s| {
                let uid = s.labels.get(LABEL_POD_UID)?.clone();
                Some((s.id, uid))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Mount, Resources, Security};

    #[test]
    fn exits_read_as_the_kubelet_reports_them() {
        let mut status = api::ContainerStatus {
            id: "abc".into(),
            state: api::ContainerState::ContainerExited as i32,
            started_at: 1_700_000_000_000_000_000,
            finished_at: 1_700_000_005_000_000_000,
            exit_code: 137,
            reason: "OOMKilled".into(),
            image_ref: "docker.io/library/busybox@sha256:00".into(),
            ..Default::default()
        };
        let s = status_of(&status);
        let exit = s.exit.expect("exited");
        assert_eq!((exit.code, exit.reason.as_str()), (137, "OOMKilled"));
        assert_eq!(exit.finished_at.timestamp(), 1_700_000_005);
        assert_eq!(s.image_id, "docker.io/library/busybox@sha256:00");
        status.reason.clear();
        status.exit_code = 0;
        assert_eq!(status_of(&status).exit.expect("exit").reason, "Completed");
        status.exit_code = 2;
        assert_eq!(status_of(&status).exit.expect("exit").reason, "Error");
        status.state = api::ContainerState::ContainerRunning as i32;
        assert_eq!(status_of(&status).exit, None);
    }

    #[test]
    fn containers_carry_kubes_labels_limits_and_security() {
        let sandbox = SandboxConfig {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u1".into(),
            ..SandboxConfig::default()
        };
        let config = ContainerConfig {
            name: "c".into(),
            image: "busybox".into(),
            attempt: 2,
            env: vec![("A".into(), "1".into())],
            mounts: vec![Mount {
                container_path: "/data".into(),
                host_path: "/tmp/d".into(),
                readonly: true,
                propagation: Propagation::HostToContainer,
            }],
            resources: Resources {
                cpu_shares: 512,
                cpu_quota: 50_000,
                cpu_period: 100_000,
                memory_limit_bytes: 64 << 20,
                oom_score_adj: 0,
            },
            security: Security {
                run_as_user: Some(1000),
                capabilities_drop: vec!["ALL".into()],
                read_only_root_filesystem: true,
                ..Security::default()
            },
            ..ContainerConfig::default()
        };
        let cri = container_config(&config, &sandbox);
        assert_eq!(cri.labels[LABEL_POD_UID], "u1");
        assert_eq!(cri.labels[LABEL_CONTAINER_NAME], "c");
        assert_eq!(cri.log_path, "c/2.log");
        assert_eq!(cri.envs[0].key, "A");
        assert!(cri.mounts[0].readonly);
        assert_eq!(
            cri.mounts[0].propagation,
            api::MountPropagation::PropagationHostToContainer as i32
        );
        let linux = cri.linux.expect("linux");
        let resources = linux.resources.expect("resources");
        assert_eq!(resources.memory_limit_in_bytes, 64 << 20);
        assert_eq!(resources.cpu_quota, 50_000);
        let security = linux.security_context.expect("security");
        assert_eq!(security.run_as_user.map(|u| u.value), Some(1000));
        assert!(security.readonly_rootfs);
        assert!(security.masked_paths.iter().any(|p| p == "/proc/kcore"));
        assert_eq!(pod_log_dir_name("ns", "p", "u1"), "ns_p_u1");
    }

    #[test]
    fn abandoned_waits_are_dropped_and_the_relist_ends_with_the_last() {
        let mut waiters = Waiters {
            relisting: true,
            ..Waiters::default()
        };
        let (kept, kept_rx) = oneshot::channel();
        let (dropped, dropped_rx) = oneshot::channel();
        waiters.waiting.insert("a".into(), vec![kept]);
        waiters.waiting.insert("b".into(), vec![dropped]);
        drop(dropped_rx);
        assert_eq!(waiters.waited(), vec!["a".to_owned()]);
        assert!(waiters.relisting);
        drop(kept_rx);
        assert!(waiters.waited().is_empty());
        assert!(!waiters.relisting, "nothing waited on: the relist stops");
    }
}
