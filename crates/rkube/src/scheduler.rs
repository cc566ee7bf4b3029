//! `rkube scheduler`: kube-scheduler, alone or inside `rkube server`, placing pods while this
//! process holds the `kube-system/kube-scheduler` Lease.

use std::path::PathBuf;

use anyhow::Context as _;
use kube::Client;
use rkube_controllers::{Stop, leader};
use rkube_scheduler::SchedulerOptions;

use crate::controller_manager::{LeaderElectArgs, http2_client_from};

#[derive(clap::Args, Debug)]
pub struct SchedulerArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    #[command(flatten)]
    pub scheduling: SchedulingArgs,
    #[command(flatten)]
    pub leader: LeaderElectArgs,
}

/// The flags `rkube server` shares with `rkube scheduler`.
#[derive(clap::Args, Debug, Clone)]
pub struct SchedulingArgs {
    /// The spec.schedulerName of the pods to place.
    #[arg(long, default_value = "default-scheduler")]
    pub scheduler_name: String,
    /// How many nodes to score, in percent (adaptive when unset).
    #[arg(long)]
    pub percentage_of_nodes_to_score: Option<u32>,
}

impl SchedulingArgs {
    pub fn options(&self) -> SchedulerOptions {
        SchedulerOptions {
            scheduler_name: self.scheduler_name.clone(),
            percentage_of_nodes_to_score: self.percentage_of_nodes_to_score,
            ..Default::default()
        }
    }
}

/// `rkube scheduler`: until Ctrl-C.
pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    // Over HTTP/2, as client-go's: a burst of bindings shares one connection instead of
    // opening (and handshaking) one each.
    let client = http2_client_from(&args.kubeconfig).await?;
    let (handle, stop) = Stop::new();
    let election = args.leader.config("kube-scheduler");
    let work = tokio::spawn(run_elected(
        client,
        args.scheduling.options(),
        election,
        stop,
    ));
    tokio::signal::ctrl_c()
        .await
        .context("waiting for a shutdown signal")?;
    handle.stop();
    let _ = work.await;
    Ok(())
}

/// Runs the scheduler until `stop`, only while leading when `election` is given.
pub async fn run_elected(
    client: Client,
    options: SchedulerOptions,
    election: Option<leader::Config>,
    stop: Stop,
) {
    let election_client = client.clone();
    let lead = move |leading: Stop| {
        let client = client.clone();
        let options = options.clone();
        async move {
            let shutdown = leading.clone();
            if let Err(err) =
                rkube_scheduler::run(client, options, async move { shutdown.stopped().await }).await
            {
                tracing::error!("scheduler stopped: {err:#}");
            }
        }
    };
    match election {
        Some(config) => leader::run(election_client, config, stop, lead).await,
        None => lead(stop).await,
    }
}
