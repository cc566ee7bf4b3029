//! `rkube server`: opens the store and runs the control plane on it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rkube_store::{Backend, CompactionPolicy, Store, StoreError, spawn_compactor};

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where the server keeps its state (store file, certificates, kubeconfig).
    #[arg(long, default_value_os_t = crate::default_data_dir())]
    pub data_dir: PathBuf,
    /// The HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_port: u16,
    /// The address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Run only the control plane, no node agent in this process.
    #[arg(long)]
    pub disable_agent: bool,
    /// The name of this server's node [default: the host's name].
    #[arg(long, conflicts_with = "disable_agent")]
    pub node_name: Option<String>,
    /// A running containerd's socket for the node, instead of starting one.
    #[arg(long, conflicts_with = "disable_agent")]
    pub containerd_socket: Option<PathBuf>,
    /// The bridge the node's pods attach to.
    #[arg(long, default_value = rkube_kubelet::cni::DEFAULT_BRIDGE)]
    pub cni_bridge: String,
    /// Use etcd instead of the embedded store: http://HOST:2379[,http://HOST2:2379...].
    #[arg(long)]
    pub datastore_endpoint: Option<String>,
    /// How many seconds of store history to keep before compacting (kube-apiserver keeps 5 minutes).
    #[arg(long, default_value_t = 300)]
    pub compaction_retention_secs: u64,
    /// Toleration seconds added to pods for node.kubernetes.io/not-ready:NoExecute.
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// Toleration seconds added to pods for node.kubernetes.io/unreachable:NoExecute.
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
    /// Run the API server only: no controller manager in this process.
    #[arg(long)]
    pub disable_controller_manager: bool,
    #[command(flatten)]
    pub controllers: crate::controller_manager::CommonArgs,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let backend =
        Backend::from_endpoint(args.datastore_endpoint.as_deref(), args.data_dir.clone())?;
    let store = open_store(&backend).await?;
    let policy = CompactionPolicy {
        retention: Duration::from_secs(args.compaction_retention_secs),
        interval: Duration::from_secs(args.compaction_retention_secs.clamp(1, 60)),
    };
    let _compactor = spawn_compactor(store.clone(), policy);
    tracing::info!(revision = store.current_revision().await?, "store ready");
    let api = rkube_apiserver::ApiServer::start(rkube_apiserver::Config {
        data_dir: args.data_dir.clone(),
        https_port: args.https_port,
        bind_address: args.bind_address,
        store,
        admission: rkube_apiserver::admission::AdmissionConfig {
            not_ready_toleration_seconds: args.default_not_ready_toleration_seconds,
            unreachable_toleration_seconds: args.default_unreachable_toleration_seconds,
        },
    })
    .await?;
    tracing::info!(
        address = %api.local_addr,
        kubeconfig = %api.admin_kubeconfig.display(),
        "API server ready"
    );
    let (stop_handle, stop) = rkube_controllers::Stop::new();
    let mut control_loops = Vec::new();
    if !args.disable_controller_manager {
        let client = crate::controller_manager::client_from(&api.admin_kubeconfig).await?;
        let root_ca = std::fs::read_to_string(args.data_dir.join("tls").join("ca.crt")).ok();
        let common = args.controllers.clone();
        let stop = stop.clone();
        control_loops.push(tokio::spawn(async move {
            crate::controller_manager::run_elected(client, &common, root_ca, stop).await;
        }));
    }
    let mut node = None;
    if !args.disable_agent {
        let host = if args.bind_address.is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            match args.bind_address {
                IpAddr::V6(ip) => format!("[{ip}]"),
                IpAddr::V4(ip) => ip.to_string(),
            }
        };
        let url = format!("https://{host}:{}", api.local_addr.port());
        let token = std::fs::read_to_string(args.data_dir.join("node-token"))
            .context("reading the node join token")?;
        let ca = args.data_dir.join("tls").join("ca.crt");
        let client = crate::agent::token_client(&url, token.trim(), &ca.to_string_lossy()).await?;
        let real = crate::agent::RealNode {
            data_dir: args.data_dir.clone(),
            node_name: args.node_name.clone(),
            containerd_socket: args.containerd_socket.clone(),
            cni_bridge: args.cni_bridge.clone(),
            options: rkube_kubelet::Options::default(),
        };
        match crate::agent::start_real_node(client, real, stop.clone()).await {
            Ok(running) => node = Some(running),
            Err(err) => {
                stop_handle.stop();
                return Err(err.context(
                    "starting this server's node (pass --disable-agent to run without one)",
                ));
            }
        }
    }
    crate::agent::shutdown_signal().await?;
    tracing::info!("shutting down");
    stop_handle.stop();
    if let Some(node) = node {
        let _ = tokio::time::timeout(Duration::from_secs(20), node.stopped()).await;
    }
    for task in control_loops {
        // Leaders give their leases up, so another server takes over at once.
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    Ok(())
}

/// Opens the store. An unreachable etcd is retried with a message each time, never a silent
/// crash loop; a damaged file or a bad endpoint is an error at once.
pub async fn open_store(backend: &Backend) -> anyhow::Result<Arc<dyn Store>> {
    let mut delay = Duration::from_millis(500);
    loop {
        match backend.open().await {
            Ok(store) => return Ok(store),
            Err(StoreError::Unavailable { reason }) if matches!(backend, Backend::Etcd(_)) => {
                tracing::warn!("{reason}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(err) => return Err(err.into()),
        }
    }
}
