//! `rkube`: Kubernetes in one binary. `rkube server` runs the control plane; `rkube bench`
//! measures it.

mod agent;
mod bench;
mod bench_api;
mod bench_scheduler;
mod controller_manager;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "rkube", version, about = "Kubernetes in one small binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the control plane: the store, the API server and the control loops.
    Server(server::ServerArgs),
    /// Runs the control loops against an API server (they run inside `rkube server` too).
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Runs a node: the kubelet on containerd; or simulated (hollow) nodes, `--simulate N`.
    Agent(agent::AgentArgs),
    /// Manages the node's images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Runs the scheduler against an API server, while it holds the kube-scheduler Lease.
    Scheduler(SchedulerArgs),
    /// Measures rkube's parts and prints one `name: value unit` line per figure.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Loads docker or OCI image archives into the node's containerd.
    Import(agent::ImageImportArgs),
}

#[derive(Subcommand, Debug)]
enum BenchTarget {
    /// The store: embedded and etcd side by side (etcd when it is installed).
    Store(bench::StoreBenchArgs),
    /// The API server over HTTPS: creates, gets, LIST of many pods, watch fan-out.
    Api(bench_api::ApiBenchArgs),
    /// The scheduler: pods/s on thousands of nodes, in scheduler_perf's shapes.
    Scheduler(bench_scheduler::SchedulerBenchArgs),
}

#[derive(clap::Args, Debug)]
struct SchedulerArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The spec.schedulerName of the pods to place.
    #[arg(long, default_value = "default-scheduler")]
    scheduler_name: String,
    /// How many nodes to score, in percent (adaptive when unset).
    #[arg(long)]
    percentage_of_nodes_to_score: Option<u32>,
    /// Elect a leader through the kube-system/kube-scheduler Lease, so only one schedules.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
}

/// `rkube scheduler`: kube-scheduler until Ctrl-C, acting only while it leads.
async fn run_scheduler(args: SchedulerArgs) -> anyhow::Result<()> {
    let client = controller_manager::client_from(&args.kubeconfig).await?;
    let opts = rkube_scheduler::SchedulerOptions {
        scheduler_name: args.scheduler_name,
        percentage_of_nodes_to_score: args.percentage_of_nodes_to_score,
        ..Default::default()
    };
    if !args.leader_elect {
        return rkube_scheduler::run(client, opts, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    }
    let (handle, stop) = rkube_controllers::Stop::new();
    let config = rkube_controllers::leader::Config::new(
        "kube-scheduler",
        &rkube_controllers::leader::identity(),
    );
    let election_client = client.clone();
    let lead = move |leading: rkube_controllers::Stop| {
        let client = client.clone();
        let opts = opts.clone();
        async move {
            let shutdown = leading.clone();
            if let Err(err) =
                rkube_scheduler::run(client, opts, async move { shutdown.stopped().await }).await
            {
                tracing::error!("scheduler stopped: {err:#}");
            }
        }
    };
    let election = tokio::spawn(rkube_controllers::leader::run(
        election_client,
        config,
        stop,
        lead,
    ));
    let _ = tokio::signal::ctrl_c().await;
    handle.stop();
    let _ = election.await;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RKUBE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rkube: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::ControllerManager(args) => controller_manager::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Image {
                command: ImageCommand::Import(args),
            } => agent::import_images(args).await,
            Command::Bench {
                target: BenchTarget::Store(args),
            } => bench::store(args).await,
            Command::Bench {
                target: BenchTarget::Api(args),
            } => bench_api::api(args).await,
            Command::Scheduler(args) => run_scheduler(args).await,
            Command::Bench {
                target: BenchTarget::Scheduler(args),
            } => bench_scheduler::scheduler(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line an operator can act on.
            eprintln!("rkube: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The default data dir: /var/lib/rkube for root, ~/.rkube otherwise.
fn default_data_dir() -> PathBuf {
    let is_root = std::env::var("USER").is_ok_and(|u| u == "root")
        || std::env::var("HOME").is_ok_and(|h| h == "/root");
    if is_root {
        PathBuf::from("/var/lib/rkube")
    } else {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".rkube"))
            .unwrap_or_else(|| PathBuf::from(".rkube"))
    }
}
