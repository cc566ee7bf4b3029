//! `rkube ingress`: the ingress controller alone, against any API server (the agent runs
//! the same controller on each node).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context as _;
use rkube_controllers::Stop;
use rkube_ingress::IngressOptions;

use crate::controller_manager::client_from;

#[derive(clap::Args, Debug)]
pub struct IngressArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The port plain HTTP is served on.
    #[arg(long, default_value_t = 80)]
    pub http_port: u16,
    /// The port HTTPS is served on.
    #[arg(long, default_value_t = 443)]
    pub https_port: u16,
    /// The address both ports listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The Node this runs on: its InternalIPs go into the Ingresses' status.loadBalancer.
    #[arg(long)]
    pub node_name: Option<String>,
    /// Addresses for the Ingresses' status.loadBalancer instead of the Node's (repeatable,
    /// or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub node_ip: Vec<IpAddr>,
    /// The IngressClass made (as the default class) when absent.
    #[arg(long, default_value = rkube_ingress::DEFAULT_CLASS)]
    pub ingress_class: String,
}

impl IngressArgs {
    pub fn options(&self) -> IngressOptions {
        IngressOptions {
            http: SocketAddr::new(self.bind_address, self.http_port),
            https: SocketAddr::new(self.bind_address, self.https_port),
            class_name: self.ingress_class.clone(),
            node_name: self.node_name.clone(),
            node_ips: self.node_ip.clone(),
            ..IngressOptions::default()
        }
    }
}

/// `rkube ingress`: until Ctrl-C or SIGTERM.
pub async fn run(args: IngressArgs) -> anyhow::Result<()> {
    let client = client_from(&args.kubeconfig).await?;
    let (handle, stop) = Stop::new();
    let mut work = tokio::spawn(rkube_ingress::run(client, args.options(), stop));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    tokio::select! {
        result = &mut work => return result.context("the ingress controller failed")?,
        signal = tokio::signal::ctrl_c() => signal.context("waiting for a shutdown signal")?,
        _ = terminate.recv() => {}
    }
    handle.stop();
    work.await.context("the ingress controller failed")?
}
