//! `rkube controller-manager`: the control loops, alone or inside `rkube server`, each time
//! this process holds the `kube-controller-manager` Lease.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use rkube_controllers::{Options, Stop, leader};

#[derive(clap::Args, Debug, Clone)]
pub struct ControllerManagerArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// A PEM file with the cluster CA, published in each namespace as kube-root-ca.crt
    /// (default: the kubeconfig's certificate-authority-data).
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Leader election through a Lease in kube-system, with kube's flags and defaults.
#[derive(clap::Args, Debug, Clone)]
pub struct LeaderElectArgs {
    /// Elect a leader through a Lease, so only one instance acts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// How long a leader's lease lasts without renewal, in seconds.
    #[arg(long, default_value_t = 15)]
    pub leader_elect_lease_duration: u64,
    /// How long a leader keeps trying to renew before it gives up, in seconds.
    #[arg(long, default_value_t = 10)]
    pub leader_elect_renew_deadline: u64,
    /// How often candidates try and leaders renew, in seconds.
    #[arg(long, default_value_t = 2)]
    pub leader_elect_retry_period: u64,
}

impl LeaderElectArgs {
    /// The election for the Lease `kube-system/NAME`, or `None` when election is off.
    pub fn config(&self, name: &str) -> Option<leader::Config> {
        if !self.leader_elect {
            return None;
        }
        let mut config = leader::Config::new(name, &leader::identity());
        config.lease_duration = Duration::from_secs(self.leader_elect_lease_duration);
        config.renew_deadline = Duration::from_secs(self.leader_elect_renew_deadline);
        config.retry_period = Duration::from_secs(self.leader_elect_retry_period);
        Some(config)
    }
}

/// The flags `rkube server` shares with `rkube controller-manager`.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Workers per controller.
    #[arg(long, default_value_t = 4)]
    pub concurrent_workers: usize,
    #[command(flatten)]
    pub leader: LeaderElectArgs,
    /// How often node health is checked (e.g. 5s).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// How long a node may be silent before it is marked Unknown (e.g. 50s).
    #[arg(long, default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// Give each node a pod CIDR from --cluster-cidr.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub allocate_node_cidrs: bool,
    /// The pods' address range.
    #[arg(long, default_value = "10.42.0.0/16", value_parser = rkube_controllers::nodelifecycle::parse_cidr)]
    pub cluster_cidr: (std::net::Ipv4Addr, u8),
    /// The size of each node's pod CIDR.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// LoadBalancer services get an address each from this IPv4 CIDR; without it they
    /// publish the Ready nodes' addresses.
    #[arg(long, value_parser = rkube_controllers::nodelifecycle::parse_cidr)]
    pub loadbalancer_ip_pool: Option<(std::net::Ipv4Addr, u8)>,
    /// Where the local-path provisioner makes volumes, on the node that uses them.
    #[arg(long, default_value = "/var/lib/rkube/storage")]
    pub local_path_dir: String,
    /// Terminated pods kept before the oldest are deleted (0: never).
    #[arg(long, default_value_t = 12_500)]
    pub terminated_pod_gc_threshold: usize,
    /// The CA certificate (PEM) that signs approved CertificateSigningRequests (in `rkube
    /// server`: DATA_DIR/tls/ca.crt).
    #[arg(long, requires = "cluster_signing_key_file")]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// Its private key (in `rkube server`: DATA_DIR/tls/ca.key).
    #[arg(long, requires = "cluster_signing_cert_file")]
    pub cluster_signing_key_file: Option<PathBuf>,
    /// How often pod garbage collection runs (kube: 20s, not a flag there).
    #[arg(long, default_value = "20s", value_parser = parse_duration, hide = true)]
    pub pod_gc_period: Duration,
}

/// A duration as kube's flags take it: `50s`, `5m`, `1h30m`, `500ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: expected e.g. 50s, 5m, 1h30m"))?;
        let seconds = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
        };
        total += Duration::from_secs_f64(seconds);
        rest = tail;
    }
    Ok(total)
}

/// A client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> anyhow::Result<Client> {
    Ok(Client::try_from(config_from(kubeconfig).await?)?)
}

/// A client from a kubeconfig file that carries all its requests and watches on one
/// HTTP/2 connection (`http2_client`), for a component with a few watches and bursts of
/// writes.
pub async fn http2_client_from(kubeconfig: &Path) -> anyhow::Result<Client> {
    crate::http2_client::client(config_from(kubeconfig).await?)
}

/// The client configuration a kubeconfig file gives.
pub async fn config_from(kubeconfig: &Path) -> anyhow::Result<kube::Config> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read the kubeconfig {}", kubeconfig.display()))?;
    kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .with_context(|| format!("the kubeconfig {} is not usable", kubeconfig.display()))
}

/// The CA that signs CertificateSigningRequests: the flags' files, else those of
/// `default_dir` (the server's TLS directory) when both are there.
pub fn signing_ca(
    common: &CommonArgs,
    default_dir: Option<&Path>,
) -> anyhow::Result<Option<rkube_controllers::certificates::SigningCa>> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    if let (Some(cert), Some(key)) = (
        &common.cluster_signing_cert_file,
        &common.cluster_signing_key_file,
    ) {
        return Ok(Some(rkube_controllers::certificates::SigningCa {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        }));
    }
    let Some(dir) = default_dir else {
        return Ok(None);
    };
    match (read(&dir.join("ca.crt")), read(&dir.join("ca.key"))) {
        (Ok(cert_pem), Ok(key_pem)) => Ok(Some(rkube_controllers::certificates::SigningCa {
            cert_pem,
            key_pem,
        })),
        _ => Ok(None),
    }
}

/// Runs the controllers under leader election until `stop`.
pub async fn run_elected(
    client: Client,
    common: &CommonArgs,
    root_ca_pem: Option<String>,
    signing_ca: Option<rkube_controllers::certificates::SigningCa>,
    stop: Stop,
) {
    let options = Options {
        signing_ca,
        workers: common.concurrent_workers,
        root_ca_pem,
        nodes: rkube_controllers::nodelifecycle::NodeOptions {
            monitor_period: common.node_monitor_period,
            grace_period: common.node_monitor_grace_period,
            cluster_cidr: common.allocate_node_cidrs.then_some(common.cluster_cidr),
            node_cidr_mask: common.node_cidr_mask_size,
        },
        terminated_pod_gc_threshold: common.terminated_pod_gc_threshold,
        pod_gc_period: common.pod_gc_period,
        local_path_dir: common.local_path_dir.clone(),
        load_balancer_addresses: match common.loadbalancer_ip_pool {
            Some((base, bits)) => rkube_controllers::servicelb::Addresses::Pool(base, bits),
            None => rkube_controllers::servicelb::Addresses::Nodes,
        },
    };
    let election_client = client.clone();
    let lead = move |leading: Stop| {
        let client = client.clone();
        let options = options.clone();
        async move {
            match rkube_controllers::start(client, options, leading.clone()).await {
                Ok(_ctx) => leading.stopped().await,
                Err(err) => tracing::error!("controller manager failed to start: {err:#}"),
            }
        }
    };
    let Some(config) = common.leader.config("kube-controller-manager") else {
        lead(stop).await;
        return;
    };
    leader::run(election_client, config, stop, lead).await;
}

/// `rkube controller-manager`.
pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let client = client_from(&args.kubeconfig).await?;
    let root_ca_pem = match &args.root_ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?,
        ),
        None => kubeconfig_ca(&args.kubeconfig),
    };
    let signing = signing_ca(&args.common, None)?;
    let (handle, stop) = Stop::new();
    let work = tokio::spawn({
        let common = args.common.clone();
        async move { run_elected(client, &common, root_ca_pem, signing, stop).await }
    });
    tokio::signal::ctrl_c()
        .await
        .context("waiting for a shutdown signal")?;
    handle.stop();
    let _ = work.await;
    Ok(())
}

/// The CA of a kubeconfig's current cluster, as PEM.
pub fn kubeconfig_ca(path: &Path) -> Option<String> {
    use base64::Engine as _;
    let config = kube::config::Kubeconfig::read_from(path).ok()?;
    let context = config.current_context.clone()?;
    let cluster = config
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    let data = config
        .clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .certificate_authority_data
        .clone()?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    String::from_utf8(pem).ok()
}
