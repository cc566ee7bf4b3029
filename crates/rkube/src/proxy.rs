//! `rkube proxy`: the service proxy alone (kube-proxy's nftables mode, `crates/proxy`),
//! until SIGINT or SIGTERM, then its table is removed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use rkube_controllers::Stop;
use rkube_proxy::ProxyOptions;

use crate::controller_manager::client_from;

#[derive(clap::Args, Debug)]
pub struct ProxyArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// This node's name (endpoints with this nodeName are local); the host name by default.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The pods' addresses: traffic from elsewhere to a ClusterIP is masqueraded ("" for
    /// none).
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// The nftables table (family ip) holding the rules.
    #[arg(long, default_value = rkube_proxy::DEFAULT_TABLE)]
    pub nft_table: String,
    /// Changes within this many milliseconds are applied in one transaction.
    #[arg(long, default_value_t = 50)]
    pub min_sync_period_ms: u64,
    /// Seconds between full rewrites of the table.
    #[arg(long, default_value_t = 300)]
    pub sync_period: u64,
    /// Keep the table on exit.
    #[arg(long)]
    pub keep_rules_on_exit: bool,
    /// The route protocol number marking the host-gw routes to other nodes' pod CIDRs.
    #[arg(long, default_value_t = rkube_proxy::routes::DEFAULT_ROUTE_PROTOCOL)]
    pub route_protocol: u8,
    /// Do not install host-gw routes.
    #[arg(long)]
    pub disable_host_routes: bool,
    /// Do not masquerade pod traffic leaving the cluster CIDR (pods then reach nothing
    /// outside it unless something else NATs their traffic).
    #[arg(long)]
    pub disable_pod_masquerade: bool,
}

impl ProxyArgs {
    pub fn options(&self) -> anyhow::Result<ProxyOptions> {
        let hostname = self
            .hostname_override
            .clone()
            .map(|h| h.trim().to_lowercase())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(rkube_proxy::default_hostname);
        let mut options = ProxyOptions::new(hostname);
        options.cluster_cidr = if self.cluster_cidr.trim().is_empty() {
            None
        } else {
            Some(rkube_proxy::parse_ipv4_cidr(self.cluster_cidr.trim()).context("--cluster-cidr")?)
        };
        anyhow::ensure!(
            !self.nft_table.is_empty()
                && self
                    .nft_table
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && self
                    .nft_table
                    .starts_with(|c: char| c.is_ascii_alphabetic()),
            "--nft-table: {:?} is not a usable table name (letters, digits, - and _)",
            self.nft_table
        );
        options.table = self.nft_table.clone();
        options.min_sync_period = Duration::from_millis(self.min_sync_period_ms);
        options.sync_period = Duration::from_secs(self.sync_period.max(1));
        options.cleanup_on_exit = !self.keep_rules_on_exit;
        options.route_protocol = (!self.disable_host_routes).then_some(self.route_protocol);
        options.pod_egress_masquerade = !self.disable_pod_masquerade;
        Ok(options)
    }
}

/// `rkube proxy`: until SIGINT or SIGTERM.
pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let options = args.options()?;
    let client = client_from(&args.kubeconfig).await?;
    let (handle, stop) = Stop::new();
    tracing::info!(hostname = %options.hostname, table = %options.table, "starting the service proxy");
    let mut work = tokio::spawn(rkube_proxy::run(client, options, stop));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for a shutdown signal")?,
        _ = terminate.recv() => {}
        result = &mut work => {
            // Stopped by itself: only when the rules could not be installed.
            return result.context("the proxy task failed")?;
        }
    }
    handle.stop();
    work.await.context("the proxy task failed")?
}
