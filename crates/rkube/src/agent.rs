//! `rkube agent`: the node side of the cluster. By default one real node: the kubelet on
//! containerd (its own, supervised, unless `--containerd-socket` names one), with the
//! machine's capacity and address. `--simulate N` runs N simulated ("hollow") nodes
//! instead, for scale tests. `rkube server` runs the same real node in-process.
//!
//! Credentials: `--kubeconfig F`, or `--server URL` with the join token (`--token` or
//! `--token-file`, the server's `DATA_DIR/node-token`) and the cluster CA the server's
//! certificate is checked against: `--ca-file`, by default `DATA_DIR/tls/ca.crt` (where
//! `rkube server` writes it, so an agent beside the server needs no flag). The CA is never
//! fetched without verification.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use kube::Client;
use rkube_controllers::Stop;
use rkube_kubelet::containerd::{self, Layout};
use rkube_kubelet::cri::CriClient;
use rkube_kubelet::cri_streams::CriStreams;
use rkube_kubelet::{
    Agent, Capacity, CriRuntime, NodeConfig, NodeSetup, Options, Runtime, SystemInfo, hollow_nodes,
    machine,
};
use rkube_kubelet::{certificate, server};
use serde_json::json;

use crate::controller_manager::{config_from, parse_duration};

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The API server, e.g. https://10.0.0.1:6443.
    #[arg(long, required_unless_present = "kubeconfig")]
    pub server: Option<String>,
    /// The node join token (the server's DATA_DIR/node-token).
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// A file holding the node join token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The cluster CA (PEM) to verify the server with [default: DATA_DIR/tls/ca.crt].
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// A kubeconfig to reach the API server with, instead of --server and a token.
    #[arg(long, conflicts_with_all = ["server", "token", "token_file", "ca_file"])]
    pub kubeconfig: Option<PathBuf>,
    /// Where the agent keeps its state (and finds the CA by default).
    #[arg(long, default_value_os_t = crate::default_data_dir())]
    pub data_dir: PathBuf,
    /// This node's name [default: the host's name].
    #[arg(long, conflicts_with = "simulate")]
    pub node_name: Option<String>,
    /// A running containerd's socket (CRI v1) to use instead of starting one.
    #[arg(long, conflicts_with = "simulate")]
    pub containerd_socket: Option<PathBuf>,
    /// The bridge pods attach to.
    #[arg(long, default_value = rkube_kubelet::cni::DEFAULT_BRIDGE, conflicts_with = "simulate")]
    pub cni_bridge: String,
    /// Run no service proxy (nftables rules, host-gw routes) on this node.
    #[arg(long, conflicts_with = "simulate")]
    pub disable_proxy: bool,
    /// Run no ingress controller (ports 80 and 443) on this node.
    #[arg(long, conflicts_with = "simulate")]
    pub disable_ingress: bool,
    /// The cluster's pod addresses (the server's --cluster-cidr): the proxy masquerades pod
    /// traffic leaving it and traffic from outside it to ClusterIPs.
    #[arg(long, default_value = "10.42.0.0/16", value_parser = parse_cidr)]
    pub cluster_cidr: String,
    /// Cluster DNS's Service address, for pods' resolv.conf.
    #[arg(long, default_value = "10.43.0.10")]
    pub cluster_dns: std::net::IpAddr,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The port of the kubelet's HTTPS server (logs, exec, attach, port-forward).
    #[arg(long, default_value_t = rkube_kubelet::node::KUBELET_PORT, conflicts_with = "simulate")]
    pub kubelet_port: u16,
    /// Run N simulated (hollow) nodes instead of a real one.
    #[arg(long, value_name = "N")]
    pub simulate: Option<usize>,
    /// Hollow nodes are named PREFIX-0 .. PREFIX-(N-1).
    #[arg(long, default_value = "hollow")]
    pub node_name_prefix: String,
    /// The InternalIP of the first hollow node; the others count up from it.
    #[arg(long, default_value = "10.200.0.1")]
    pub simulate_first_ip: Ipv4Addr,
    /// The longest a simulated container takes to stop, whatever its grace period.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub simulate_stop_delay: Duration,
    /// Each node's CPU capacity.
    #[arg(long, default_value = "4", value_parser = parse_quantity)]
    pub node_cpu: String,
    /// Each node's memory capacity.
    #[arg(long, default_value = "16Gi", value_parser = parse_quantity)]
    pub node_memory: String,
    /// How many pods each node takes.
    #[arg(long, default_value_t = 110)]
    pub node_pods: u32,
    /// Each node's ephemeral storage capacity.
    #[arg(long, default_value = "100Gi", value_parser = parse_quantity)]
    pub node_ephemeral_storage: String,
    /// The nodes' Lease duration in seconds; they renew it every quarter of it.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: u64,
    /// How often each node's status is checked and posted if it changed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub node_status_update_frequency: Duration,
    /// How often an unchanged node status is posted anyway.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub node_status_report_frequency: Duration,
    /// How often pods' configMap, secret, downwardAPI and projected volumes are brought up
    /// to date.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub sync_frequency: Duration,
    /// Hard eviction thresholds: the node reports pressure past them, e.g.
    /// `memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%` (the default).
    #[arg(long, conflicts_with = "simulate")]
    pub eviction_hard: Option<String>,
    /// The directory of static pod manifests [default: DATA_DIR/agent/pod-manifests].
    #[arg(long, conflicts_with = "simulate")]
    pub pod_manifest_path: Option<PathBuf>,
    /// How often the static pod manifests are read.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub file_check_frequency: Duration,
    /// Concurrent API writes of the whole agent (all nodes and pods).
    #[arg(long, default_value_t = 64)]
    pub max_concurrent_writes: usize,
    /// Record kubelet's events about pods (false saves writes in scale tests).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub record_events: bool,
}

fn parse_cidr(s: &str) -> Result<String, String> {
    rkube_proxy::parse_ipv4_cidr(s).map_err(|e| e.to_string())
}

/// A resource quantity: a decimal number with an optional SI or binary suffix.
fn parse_quantity(s: &str) -> Result<String, String> {
    const SUFFIXES: &[&str] = &[
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.parse::<f64>().is_ok_and(|n| n > 0.0) && SUFFIXES.contains(&suffix) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "invalid quantity {s:?}: expected e.g. 4, 500m, 16Gi"
        ))
    }
}

/// A client from the flags: a real node's over HTTP/2, hollow nodes' over HTTP/1.1 (see
/// `http2_client`).
async fn client(args: &AgentArgs) -> anyhow::Result<Client> {
    let transport = if args.simulate.is_some() {
        Transport::Http1
    } else {
        Transport::Http2
    };
    if let Some(path) = &args.kubeconfig {
        return transport.client(config_from(path).await?);
    }
    let Some(server) = &args.server else {
        bail!("pass --server URL with --token, or --kubeconfig");
    };
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => token.trim().to_owned(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?
            .trim()
            .to_owned(),
        (None, None) => bail!(
            "--server needs the node join token: --token or --token-file (the server's DATA_DIR/node-token)"
        ),
    };
    let ca = ca_file(args.ca_file.as_deref(), &args.data_dir)?;
    token_client(server, &token, &ca, transport).await
}

/// How a client talks to the API server.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    /// kube-rs's own client: a connection per request in flight.
    Http1,
    /// One connection for all (`http2_client`).
    Http2,
}

impl Transport {
    fn client(self, config: kube::Config) -> anyhow::Result<Client> {
        match self {
            Transport::Http1 => Ok(Client::try_from(config)?),
            Transport::Http2 => crate::http2_client::client(config),
        }
    }
}

/// A client that joins with the node token, checking the server against the CA file.
pub async fn token_client(
    server: &str,
    token: &str,
    ca: &str,
    transport: Transport,
) -> anyhow::Result<Client> {
    if token.is_empty() {
        bail!("the node join token is empty");
    }
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "rkube", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "node", "user": {"token": token}}],
        "contexts": [{"name": "rkube", "context": {"cluster": "rkube", "user": "node"}}],
        "current-context": "rkube",
    });
    let kubeconfig: kube::config::Kubeconfig =
        serde_json::from_value(kubeconfig).context("building the client configuration")?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("cannot use the server {server} with the CA {ca}"))?;
    transport.client(config)
}

/// The CA file: the one given, or the one `rkube server` writes in the data dir.
fn ca_file(given: Option<&Path>, data_dir: &Path) -> anyhow::Result<String> {
    let path = match given {
        Some(path) => path.to_owned(),
        None => data_dir.join("tls").join("ca.crt"),
    };
    if !path.is_file() {
        bail!(
            "no cluster CA at {}: pass --ca-file with a copy of the server's DATA_DIR/tls/ca.crt",
            path.display()
        );
    }
    Ok(path.to_string_lossy().into_owned())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listening for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// What a real node is run from, by `rkube agent` or inside `rkube server`.
pub struct RealNode {
    pub data_dir: PathBuf,
    pub node_name: Option<String>,
    pub containerd_socket: Option<PathBuf>,
    pub cni_bridge: String,
    pub options: Options,
    /// Run the service proxy (kube-proxy's role) beside the kubelet.
    pub proxy: bool,
    /// Run the ingress controller on the node's ports 80 and 443.
    pub ingress: bool,
    /// The cluster CIDR (`a.b.c.d/n`), for the proxy.
    pub cluster_cidr: String,
    /// Cluster DNS (the kube-dns Service address) and the cluster domain, for pods.
    pub cluster_dns: std::net::IpAddr,
    pub cluster_domain: String,
    /// The kubelet's HTTPS port (0: any free one).
    pub kubelet_port: u16,
    /// The CA the kubelet checks client certificates against (the cluster CA).
    pub client_ca_pem: String,
    /// `--eviction-hard`: when the node reports memory, disk or PID pressure.
    pub eviction: machine::Eviction,
}

/// A real node running: its kubelet and its containerd.
pub struct RunningNode {
    task: tokio::task::JoinHandle<()>,
}

impl RunningNode {
    /// Waits until the node has stopped (after the stop signal): the kubelet, then the
    /// containerd it started (its containers keep running for the next start to adopt).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Starts containerd (unless a socket is given), imports the pause image and the archives
/// of `DATA_DIR/agent/images`, and runs the kubelet of one real node until `stop`.
pub async fn start_real_node(
    client: Client,
    node: RealNode,
    stop: Stop,
) -> anyhow::Result<RunningNode> {
    let layout = Layout::new(&node.data_dir);
    let (socket, supervised) = match &node.containerd_socket {
        Some(socket) => (socket.clone(), None),
        None => {
            let supervised = containerd::start(&layout, stop.clone()).await?;
            (supervised.socket.clone(), Some(supervised))
        }
    };
    let cri = CriClient::connect(&socket).await?;
    let imported = containerd::import_pause(&socket, &layout.agent).await;
    match (imported, &supervised) {
        (Ok(()), _) => {}
        // Our containerd's sandbox image is this one: nothing runs without it.
        (Err(err), Some(_)) => return Err(err.into()),
        (Err(err), None) => tracing::warn!("the pause image was not imported: {err}"),
    }
    containerd::import_dir(&socket, &layout.images_dir()).await;
    let pods_dir = layout.agent.join("pods");
    let runtime = CriRuntime::new(cri, layout, &node.cni_bridge)
        .await
        .with_context(|| format!("containerd at {}", socket.display()))?;
    let version = runtime.version();
    let name = node.node_name.clone().unwrap_or_else(machine::hostname);
    let internal_ip = machine::primary_ip();
    let kubelet_port = start_kubelet_server(
        client.clone(),
        &node,
        &name,
        internal_ip,
        CriStreams::new(runtime.cri().clone(), client.clone(), &name),
        stop.clone(),
    )
    .await?;
    let config = NodeConfig {
        system: SystemInfo::of_this_machine(&name),
        internal_ip,
        capacity: machine::capacity(&node.data_dir),
        container_runtime_version: format!("{}://{}", version.name, version.version),
        kubelet_port,
        name,
        eviction: Some(node.eviction.clone()),
    };
    tracing::info!(node = %config.name, ip = %config.internal_ip, runtime = %config.container_runtime_version, "starting the node");
    // kube-proxy's role on this node: service rules and routes to the other nodes' pods.
    let proxy = node.proxy.then(|| {
        let mut options = rkube_proxy::ProxyOptions::new(config.name.clone());
        options.cluster_cidr = Some(node.cluster_cidr.clone());
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(err) = rkube_proxy::run(client, options, stop).await {
                tracing::error!("the service proxy stopped: {err:#}");
            }
        })
    });
    // The ingress controller on this node's ports 80 and 443. A port taken by something
    // else is one warning and the other port is served; both taken cost only the ingress
    // controller, never the kubelet.
    let ingress = node.ingress.then(|| {
        let options = rkube_ingress::IngressOptions {
            node_name: Some(config.name.clone()),
            either_port: true,
            ..rkube_ingress::IngressOptions::default()
        };
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(err) = rkube_ingress::run(client, options, stop).await {
                tracing::warn!(
                    "the ingress controller is not running on this node: {err:#} (pass --disable-ingress to run none)"
                );
            }
        })
    });
    // Pods' resolv.conf: cluster DNS first (ClusterFirst), the host's for dnsPolicy Default.
    let mut options = node.options;
    options.pods_dir = Some(pods_dir);
    if options.static_pod_path.is_none() {
        options.static_pod_path = Some(node.data_dir.join("agent/pod-manifests"));
    }
    options.dns = Some(rkube_kubelet::dns::DnsSettings {
        cluster_dns: vec![node.cluster_dns],
        cluster_domain: node.cluster_domain.clone(),
        host: rkube_kubelet::dns::parse_resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
    });
    let agent = Agent::new(
        client,
        vec![NodeSetup {
            config,
            runtime: Arc::new(runtime),
        }],
        options,
        stop,
    );
    let task = tokio::spawn(async move {
        agent.run().await;
        if let Some(proxy) = proxy {
            // It removes its rules on the way out.
            let _ = proxy.await;
        }
        if let Some(ingress) = ingress {
            let _ = ingress.await;
        }
        if let Some(supervised) = supervised {
            supervised.stopped().await;
        }
    });
    Ok(RunningNode { task })
}

/// Starts the kubelet's HTTPS server (logs, exec, attach, port-forward) on
/// `--kubelet-port`; returns the port it listens on. Its serving certificate is signed by
/// the cluster CA: directly when the CA's key is in the data dir (an agent beside its
/// server), else through a CertificateSigningRequest the controller manager approves and
/// signs. Failing both, it is self-signed (kube's kubelet's default), and the API server,
/// which checks kubelets against the cluster CA, refuses it (no logs, exec, port-forward).
async fn start_kubelet_server(
    client: Client,
    node: &RealNode,
    name: &str,
    internal_ip: IpAddr,
    streams: CriStreams,
    stop: Stop,
) -> anyhow::Result<u16> {
    let tls = node.data_dir.join("tls");
    let ca_key = std::fs::read_to_string(tls.join("ca.key")).ok();
    let ca_cert = std::fs::read_to_string(tls.join("ca.crt")).ok();
    let mut ips = vec![internal_ip];
    ips.extend("127.0.0.1".parse::<IpAddr>().ok());
    let (cert_pem, key_pem) = match (&ca_cert, &ca_key) {
        (Some(cert), Some(key)) => {
            server::serving_certificate(name, &ips, Some((cert.as_str(), key.as_str())))
                .context("making the kubelet's serving certificate")?
        }
        _ => {
            let pki = node.data_dir.join("agent/pki");
            let wait = Duration::from_secs(30);
            match certificate::serving_certificate(client, &pki, name, &ips, wait).await {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(
                        "no CA-signed serving certificate for the kubelet ({err}): it is self-signed, and the API server will refuse it (logs, exec, port-forward)"
                    );
                    server::serving_certificate(name, &ips, None)
                        .context("making the kubelet's serving certificate")?
                }
            }
        }
    };
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), node.kubelet_port);
    let local = server::start(
        server::ServerConfig {
            addr,
            cert_pem,
            key_pem,
            client_ca_pem: node.client_ca_pem.clone(),
        },
        Arc::new(streams),
        stop,
    )
    .await?;
    tracing::info!(address = %local, "kubelet server listening");
    Ok(local.port())
}

/// The cluster CA (PEM) client certificates to the kubelet are checked against: the
/// `--ca-file`, else the kubeconfig's CA, else `DATA_DIR/tls/ca.crt`.
async fn cluster_ca_pem(args: &AgentArgs) -> anyhow::Result<String> {
    if let Some(path) = &args.kubeconfig {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .with_context(|| format!("reading {}", path.display()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .with_context(|| format!("using {}", path.display()))?;
        let certs = config.root_cert.unwrap_or_default();
        if certs.is_empty() {
            bail!("{} names no certificate authority", path.display());
        }
        return Ok(certs.iter().map(|der| der_to_pem(der)).collect());
    }
    let path = ca_file(args.ca_file.as_deref(), &args.data_dir)?;
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))
}

fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// `--eviction-hard`, or kube's defaults, measured on the data dir's file system.
fn eviction(args: &AgentArgs) -> anyhow::Result<machine::Eviction> {
    let data_dir = args.data_dir.clone();
    match &args.eviction_hard {
        None => Ok(machine::Eviction::defaults(data_dir)),
        Some(text) => machine::Eviction::parse(data_dir, text)
            .map_err(|e| anyhow::anyhow!("--eviction-hard: {e}")),
    }
}

/// The kubelet's options from the flags.
fn options(args: &AgentArgs) -> Options {
    Options {
        lease_duration: Duration::from_secs(args.node_lease_duration_seconds.max(4)),
        status_update_frequency: args.node_status_update_frequency,
        status_report_frequency: args.node_status_report_frequency,
        max_concurrent_writes: args.max_concurrent_writes,
        record_events: args.record_events,
        sync_frequency: args.sync_frequency,
        static_pod_path: args.pod_manifest_path.clone(),
        file_check_frequency: args.file_check_frequency,
        ..Options::default()
    }
}

/// `rkube agent`.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let client = client(&args).await?;
    // Wrong credentials are an operator's mistake to report now; an unreachable server is
    // waited for (nodes register as soon as it answers).
    match client.apiserver_version().await {
        Ok(version) => tracing::info!(server = %version.git_version, "connected"),
        Err(kube::Error::Api(e)) if e.code == 401 || e.code == 403 => {
            bail!("the API server refused the credentials: {}", e.message)
        }
        // With its causes (a TLS refusal says why only there).
        Err(err) => tracing::warn!(
            "API server not reachable yet: {:#}",
            anyhow::Error::from(err)
        ),
    }
    let Some(count) = args.simulate else {
        let (handle, stop) = Stop::new();
        let node = RealNode {
            data_dir: args.data_dir.clone(),
            node_name: args.node_name.clone(),
            containerd_socket: args.containerd_socket.clone(),
            cni_bridge: args.cni_bridge.clone(),
            options: options(&args),
            proxy: !args.disable_proxy,
            ingress: !args.disable_ingress,
            cluster_cidr: args.cluster_cidr.clone(),
            cluster_dns: args.cluster_dns,
            cluster_domain: args.cluster_domain.clone(),
            kubelet_port: args.kubelet_port,
            client_ca_pem: cluster_ca_pem(&args).await?,
            eviction: eviction(&args)?,
        };
        let running = start_real_node(client, node, stop).await?;
        shutdown_signal().await?;
        tracing::info!("shutting down");
        handle.stop();
        let _ = tokio::time::timeout(Duration::from_secs(20), running.stopped()).await;
        return Ok(());
    };
    let capacity = Capacity {
        cpu: args.node_cpu.clone(),
        memory: args.node_memory.clone(),
        pods: args.node_pods.to_string(),
        ephemeral_storage: args.node_ephemeral_storage.clone(),
    };
    let nodes = hollow_nodes(
        &args.node_name_prefix,
        count,
        &capacity,
        args.simulate_first_ip,
        args.simulate_stop_delay,
    );
    let options = options(&args);
    tracing::info!(nodes = count, prefix = %args.node_name_prefix, "starting hollow nodes");
    let (handle, stop) = Stop::new();
    let agent = tokio::spawn(Agent::new(client, nodes, options, stop).run());
    shutdown_signal().await?;
    tracing::info!("shutting down");
    handle.stop();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert!(parse_quantity("4").is_ok());
        assert!(parse_quantity("500m").is_ok());
        assert!(parse_quantity("16Gi").is_ok());
        assert!(parse_quantity("1.5").is_ok());
        assert!(parse_quantity("").is_err());
        assert!(parse_quantity("16GB").is_err());
        assert!(parse_quantity("-1").is_err());
    }

    #[test]
    fn the_ca_defaults_to_the_data_dir() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let err = ca_file(None, dir.path()).expect_err("no CA yet");
        assert!(err.to_string().contains("--ca-file"), "{err}");
        std::fs::create_dir_all(dir.path().join("tls")).expect("mkdir");
        std::fs::write(dir.path().join("tls/ca.crt"), "pem").expect("write");
        assert!(
            ca_file(None, dir.path())
                .expect("found")
                .ends_with("tls/ca.crt")
        );
    }
}

/// `rkube image import`: image archives into a node's containerd.
#[derive(clap::Args, Debug)]
pub struct ImageImportArgs {
    /// The agent's data dir, whose containerd gets the images.
    #[arg(long, default_value_os_t = crate::default_data_dir())]
    pub data_dir: PathBuf,
    /// A containerd socket instead (the agent's --containerd-socket).
    #[arg(long)]
    pub containerd_socket: Option<PathBuf>,
    /// Docker (`docker save`) or OCI archives.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Imports each archive into the node's containerd (CRI namespace `k8s.io`).
pub async fn import_images(args: ImageImportArgs) -> anyhow::Result<()> {
    let socket = args
        .containerd_socket
        .clone()
        .unwrap_or_else(|| Layout::new(&args.data_dir).socket());
    if !socket.exists() {
        bail!(
            "no containerd socket at {}: start the agent (rkube agent / rkube server) with this --data-dir, or pass --containerd-socket",
            socket.display()
        );
    }
    for file in &args.files {
        if !file.is_file() {
            bail!("{}: no such file", file.display());
        }
        containerd::import_archive(&socket, file).await?;
        println!("imported {}", file.display());
    }
    Ok(())
}
