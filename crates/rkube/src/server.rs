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
    /// The cluster's join token: a new cluster uses it as its node token; a server started
    /// on a datastore that already holds a cluster needs it to join (the first server's
    /// DATA_DIR/node-token).
    #[arg(long)]
    pub token: Option<String>,
    /// Run only the control plane, no node agent in this process.
    #[arg(long)]
    pub disable_agent: bool,
    /// The name of this server's node [default: the host's name].
    #[arg(long, conflicts_with = "disable_agent")]
    pub node_name: Option<String>,
    /// A running containerd's socket for the node, instead of starting one.
    #[arg(long, conflicts_with = "disable_agent")]
    pub containerd_socket: Option<PathBuf>,
    /// The port of this server's kubelet (logs, exec, attach, port-forward; 0: any free one).
    #[arg(long, default_value_t = rkube_kubelet::node::KUBELET_PORT, conflicts_with = "disable_agent")]
    pub kubelet_port: u16,
    /// The bridge the node's pods attach to.
    #[arg(long, default_value = rkube_kubelet::cni::DEFAULT_BRIDGE)]
    pub cni_bridge: String,
    /// Run no service proxy (nftables rules, host-gw routes) for this server's node.
    #[arg(long)]
    pub disable_proxy: bool,
    /// Run no ingress controller (ports 80 and 443) on this server's node.
    #[arg(long)]
    pub disable_ingress: bool,
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
    /// The range ClusterIPs are allocated from (IPv4). The `kubernetes` Service takes its
    /// first address; cluster DNS takes the tenth.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: rkube_apiserver::services::IpRange,
    /// The range NodePorts are allocated from, both ends included.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: rkube_apiserver::services::PortRange,
    /// The address the `default/kubernetes` endpoints list for this server (default: the
    /// bind address when specific, else the host's primary IPv4 address).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// Seconds an API server stays in the `kubernetes` endpoints without renewing its lease.
    #[arg(long, default_value_t = 15)]
    pub endpoint_lease_duration_secs: u64,
    /// Run the API server only: no controller manager in this process.
    #[arg(long)]
    pub disable_controller_manager: bool,
    /// Run no scheduler in this process.
    #[arg(long)]
    pub disable_scheduler: bool,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The port cluster DNS listens on (UDP and TCP) on --bind-address; pods reach it through
    /// the kube-dns Service. 0 picks a free port.
    #[arg(long, default_value_t = 10053)]
    pub cluster_dns_port: u16,
    /// Where cluster DNS sends names outside the cluster domain (repeatable)
    /// [default: the nameservers of /etc/resolv.conf].
    #[arg(long = "cluster-dns-upstream", value_name = "ADDR:PORT")]
    pub cluster_dns_upstreams: Vec<std::net::SocketAddr>,
    /// Run no cluster DNS in this process.
    #[arg(long)]
    pub disable_dns: bool,
    #[command(flatten)]
    pub controllers: crate::controller_manager::CommonArgs,
    #[command(flatten)]
    pub scheduling: crate::scheduler::SchedulingArgs,
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
    // Cluster DNS's port is bound first: the kube-dns Service points at it.
    let dns_sockets = if args.disable_dns {
        None
    } else {
        // Where the kube-dns endpoints point (the API server advertises the same address).
        let advertise =
            rkube_apiserver::services::advertise_address(args.advertise_address, args.bind_address);
        let addresses = rkube_dns::listen_addresses(args.bind_address, advertise);
        Some(rkube_dns::bind(&addresses, args.cluster_dns_port).await?)
    };
    let api = rkube_apiserver::ApiServer::start(rkube_apiserver::Config {
        token: args.token.clone(),
        data_dir: args.data_dir.clone(),
        https_port: args.https_port,
        bind_address: args.bind_address,
        store,
        admission: rkube_apiserver::admission::AdmissionConfig {
            not_ready_toleration_seconds: args.default_not_ready_toleration_seconds,
            unreachable_toleration_seconds: args.default_unreachable_toleration_seconds,
        },
        service_network: rkube_apiserver::services::ServiceNetworkConfig {
            service_cidr: args.service_cidr,
            node_port_range: args.service_node_port_range,
            advertise_address: args.advertise_address,
            endpoint_lease_duration: Duration::from_secs(args.endpoint_lease_duration_secs.max(1)),
            cluster_dns_port: match &dns_sockets {
                Some(sockets) => Some(sockets.local_addr()?.port()),
                None => None,
            },
        },
    })
    .await?;
    tracing::info!(
        address = %api.local_addr,
        advertise = %api.advertise_address,
        kubeconfig = %api.admin_kubeconfig.display(),
        "API server ready"
    );
    let (stop_handle, stop) = rkube_controllers::Stop::new();
    let mut control_loops = Vec::new();
    if !args.disable_controller_manager {
        let client = local_client(&api, "system:kube-controller-manager");
        let root_ca = std::fs::read_to_string(args.data_dir.join("tls").join("ca.crt")).ok();
        let signing = crate::controller_manager::signing_ca(
            &args.controllers,
            Some(&args.data_dir.join("tls")),
        )?;
        let common = args.controllers.clone();
        let stop = stop.clone();
        control_loops.push(tokio::spawn(async move {
            crate::controller_manager::run_elected(client, &common, root_ca, signing, stop).await;
        }));
    }
    if !args.disable_scheduler {
        let client = local_client(&api, "system:kube-scheduler");
        let election = args.controllers.leader.config("kube-scheduler");
        let options = args.scheduling.options();
        control_loops.push(tokio::spawn(crate::scheduler::run_elected(
            client,
            options,
            election,
            stop.clone(),
        )));
    }
    if let Some(sockets) = dns_sockets {
        let client = local_client(&api, "system:kube-dns");
        let upstreams = if args.cluster_dns_upstreams.is_empty() {
            rkube_dns::upstreams_from(std::path::Path::new("/etc/resolv.conf"))
        } else {
            args.cluster_dns_upstreams.clone()
        };
        let options = rkube_dns::Options {
            domain: args.cluster_domain.clone(),
            upstreams,
            ttl: 5,
        };
        rkube_dns::serve(client, sockets, options, stop.clone()).await?;
    }
    let mut node = None;
    if !args.disable_agent {
        let ca = args.data_dir.join("tls").join("ca.crt");
        // The node acts as one that joined with the token.
        let client = crate::local_client::client(
            api.local_door(rkube_apiserver::auth::User::node_bootstrap()),
        );
        let real = crate::agent::RealNode {
            data_dir: args.data_dir.clone(),
            node_name: args.node_name.clone(),
            containerd_socket: args.containerd_socket.clone(),
            cni_bridge: args.cni_bridge.clone(),
            options: rkube_kubelet::Options::default(),
            proxy: !args.disable_proxy,
            ingress: !args.disable_ingress,
            cluster_cidr: format!(
                "{}/{}",
                args.controllers.cluster_cidr.0, args.controllers.cluster_cidr.1
            ),
            cluster_dns: std::net::IpAddr::V4(args.service_cidr.ip(9)),
            cluster_domain: args.cluster_domain.clone(),
            kubelet_port: args.kubelet_port,
            client_ca_pem: std::fs::read_to_string(&ca).context("reading the cluster CA")?,
            eviction: rkube_kubelet::machine::Eviction::defaults(args.data_dir.clone()),
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
    // One line telling the operator how to reach the cluster.
    eprintln!(
        "rkube: the cluster is up; use it with: kubectl --kubeconfig {} get nodes",
        api.admin_kubeconfig.display()
    );
    crate::agent::shutdown_signal().await?;
    tracing::info!("shutting down");
    api.shutdown().await;
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

/// A client for a component of this process, acting as `user` (kube's name for it).
fn local_client(api: &rkube_apiserver::ApiServer, user: &str) -> kube::Client {
    crate::local_client::client(api.local_door(rkube_apiserver::auth::User::component(user)))
}
