//! `rkube`: Kubernetes in one binary. `rkube server` runs the control plane, `rkube agent`
//! and `rkube proxy` a node's parts; `rkube bench` measures them.

mod agent;
mod bench;
mod bench_api;
mod bench_pods;
mod bench_proxy;
mod bench_scheduler;
mod controller_manager;
mod http2_client;
mod ingress;
mod local_client;
mod memory;
mod proxy;
mod scheduler;
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
    Scheduler(scheduler::SchedulerArgs),
    /// Runs the ingress controller (IngressClass `rkube`) against an API server.
    Ingress(ingress::IngressArgs),
    /// Runs the service proxy (kube-proxy's nftables mode) and host-gw pod routes.
    Proxy(proxy::ProxyArgs),
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
    /// The service proxy: full and partial nftables syncs (root and nftables needed).
    Proxy(bench_proxy::ProxyBenchArgs),
    /// Pod startup on a real node beside the containerd floor, agent and hollow-node memory
    /// (root, containerd, runc and the CNI plugins needed).
    Pods(bench_pods::PodsBenchArgs),
}

/// What is logged unless `RKUBE_LOG` says otherwise. hickory's server logs every DNS query
/// at info: two lines per pod lookup.
pub const DEFAULT_LOG: &str = "info,hickory_server=warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RKUBE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    let agent = matches!(cli.command, Command::Agent(_));
    if agent {
        // A node agent's blocking work is short file and process calls; a burst of pods
        // needs no hundreds of threads (tokio's default cap is 512), each with its heap.
        memory::limit_arenas();
        builder.max_blocking_threads(16);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rkube: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        if agent {
            memory::spawn_trimmer();
        }
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
            Command::Scheduler(args) => scheduler::run(args).await,
            Command::Ingress(args) => ingress::run(args).await,
            Command::Proxy(args) => proxy::run(args).await,
            Command::Bench {
                target: BenchTarget::Proxy(args),
            } => bench_proxy::proxy(args).await,
            Command::Bench {
                target: BenchTarget::Pods(args),
            } => bench_pods::pods(args).await,
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
