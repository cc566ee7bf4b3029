//! `rkube bench pods`: pod startup on one real node (containerd), side by side with the
//! containerd floor, the agent's memory, and the memory of hollow nodes.
//!
//! The bench starts `rkube server --disable-agent` and `rkube agent` (a real node with its own
//! containerd, on the bridge `rkbench0` and the cluster CIDR 10.128.0.0/12, so it does not
//! meet the test suites' `cni0`), both in a scratch directory. It prints:
//! - `pods.startup.bN.p50|p99`: from a pod's create until a watch sees it Running, for a
//!   burst of N pods created at once;
//! - `pods.floor.bN.p50|p99`: the same sandbox and container made directly through CRI
//!   (the kubelet's own CRI requests, `CriRuntime`, the cgroup limits and security settings
//!   the kubelet computes from the bench pod, and the kubelet's two mounts: the service
//!   account's volume, a tmpfs of its own for each pod as the kubelet mounts it, and
//!   /etc/hosts), from RunPodSandbox until the container started, N at once. The tmpfs
//!   matter: every runc call reads the node's mount table, which each pod's volume lengthens;
//! - `pods.floor.paced.bN.p50|p99`: the same again, but the pods take turns as the kubelet
//!   paces a node's new pods (`rkube_kubelet::start_gate`: a few at a time, in order), so the
//!   first are up while the last wait: what the kubelet's pacing alone gains;
//! - `pods.overhead.bN.p50`: the startup p50 minus the floor's p50, the median over
//!   `--rounds` runs of both; `pods.overhead.paced.bN.p50` the same over the paced floor,
//!   what the kubelet and the control plane cost a pod beyond its sandbox and container.
//!   A round runs the floor, then the paced floor and the kubelet, those two going first in
//!   turn (ABBA), so what a run leaves the next weighs on both alike;
//! - `pods.cpu.bN.*`, `pods.cpu.floor.bN.*` and `pods.cpu.floor.paced.bN.*`: CPU seconds
//!   the server, the agent, its containerd and the whole machine (shims, runc, CNI plugins
//!   and the kernel too) used during each burst (the floor's requests come from the bench
//!   itself);
//! - `pods.agent_rss.idle`, `pods.agent_rss.with_N_pods` (as soon as they run) and
//!   `pods.agent_rss.with_N_pods_settled` (15 s later): the agent's resident memory
//!   (containerd and the shims are other processes), each followed by its two parts:
//!   `pods.agent_rss_anon.*`, the agent's own (heap, stacks), and `pods.agent_rss_file.*`,
//!   pages of files, mostly of the rkube binary, shared through the page cache;
//! - `pods.stage.bN.STAGE`, `pods.stage.floor.bN.STAGE` and
//!   `pods.stage.floor.paced.bN.STAGE`: the p50 over all rounds of when each step of a
//!   pod's start was done, from its create (from RunPodSandbox for the floor): `bound`
//!   (the scheduler's binding answered), `seen` (the agent has the pod), `turn` (the node
//!   gave the pod its turn to start), `volumes` (set up), `sandbox` (made, with its
//!   network), `started` (the first container started), `reported` (the API server took
//!   the Running status), `running` (the bench's watch saw it). The server and the agent
//!   write these as `rkube::stage` debug lines;
//! - `pods.in_turn.bN.p50` and `pods.in_turn.floor.paced.bN.p50`: how long a pod had its
//!   turn until its container started (the sandbox and the container through CRI). The
//!   p50 of a paced burst is about this times the turns before the middle pod, so the two
//!   figures show how much of the paced overhead is each turn taking longer (the node's
//!   CPU shared with the server and the agent) and how much is before and after the turns;
//!   a `# turns given` line per run says when one pod in every `width` got its turn, the
//!   kubelet's beside the paced floor's, so a gap that grows turn by turn shows from one
//!   that opens at the start;
//! - `pods.requests.bN.VERB.RESOURCE`: the API requests of each kind over the kubelet's
//!   bursts (the bench's creates and watch, the scheduler's, the controllers' and the
//!   agent's), per pod, from the server's `apiserver_request_total`;
//! - `pods.hollow_rss_per_node`: `rkube agent --simulate N` once its N nodes registered,
//!   divided by N.
//!
//! The scratch directory (the server's store, the node's containerd, its pods' directories
//! and the floor's) is made under `TMPDIR`: pointed at a tmpfs or another filesystem, the
//! bench shows what the disk costs the kubelet and the floor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use rkube_kubelet::CriRuntime;
use rkube_kubelet::container_spec;
use rkube_kubelet::containerd::Layout;
use rkube_kubelet::cri::CriClient;
use rkube_kubelet::oci::{self, Entry, RunConfig};
use rkube_kubelet::runtime::{ContainerConfig, Mount, Runtime, SandboxConfig};
use rkube_kubelet::start_gate::StartGate;
use rkube_kubelet::volumes::{Propagation, tmpfs};
use serde_json::json;
use tokio::sync::Mutex;

use crate::bench::{ms, percentile, print_latencies};

#[derive(clap::Args, Debug)]
pub struct PodsBenchArgs {
    /// Burst sizes: that many pods created at once.
    #[arg(long, value_delimiter = ',', default_value = "30,100")]
    pub bursts: Vec<usize>,
    /// Runs of each burst (the floor, then the paced floor and the kubelet, taking turns to
    /// go first): the overhead figure is their median, as runs on a busy two-core machine
    /// differ by far more than the target. An even number balances the order.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Hollow nodes for the memory-per-node figure (0: skip).
    #[arg(long, default_value_t = 1000)]
    pub hollow_nodes: usize,
}

const IMAGE: &str = "docker.io/library/busybox:bench";
const BRIDGE: &str = "rkbench0";
const CLUSTER_CIDR: &str = "10.128.0.0/12";
const NODE: &str = "bench-node";
const WAIT: Duration = Duration::from_secs(180);
/// The longest wait for the machine to settle between runs.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// Settled: busy under a tenth of the two cores over half a second (CPU-s).
const SETTLED_BUSY: f64 = 0.1;

/// A child process killed when dropped.
struct Process(Child);

impl Process {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, then waits (SIGKILL after 20 s).
    fn stop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

fn spawn(args: &[&str], log: &Path) -> anyhow::Result<Process> {
    let exe = std::env::current_exe().context("finding the rkube binary")?;
    let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = Command::new(exe)
        .args(args)
        // The steps of each pod's start (`stage_marks`), in lines without colours.
        .env(
            "RKUBE_LOG",
            format!("{},{STAGE_TARGET}=debug", crate::DEFAULT_LOG),
        )
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting rkube {}", args.first().unwrap_or(&"")))?;
    Ok(Process(child))
}

/// A figure of a process's `/proc/PID/status` (`VmRSS`, `RssAnon`, `RssFile`), in MiB.
fn memory_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading the memory of process {pid}"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} for process {pid}"))?;
    Ok(kib / 1024.0)
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    memory_mib(pid, "VmRSS")
}

/// The agent's resident memory, then its two parts: its own (heap, stacks; `RssAnon`) and
/// pages of files, mostly the rkube binary's, which the page cache shares (`RssFile`).
fn print_agent_rss(when: &str, pid: u32) -> anyhow::Result<()> {
    println!("pods.agent_rss.{when}: {:.1} MiB", rss_mib(pid)?);
    println!(
        "pods.agent_rss_anon.{when}: {:.1} MiB",
        memory_mib(pid, "RssAnon")?
    );
    println!(
        "pods.agent_rss_file.{when}: {:.1} MiB",
        memory_mib(pid, "RssFile")?
    );
    Ok(())
}

/// CPU time a process has used (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading the CPU time of process {pid}"))?;
    // After the command in parentheses: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
    let (Some(user), Some(system)) = (ticks(14), ticks(15)) else {
        bail!("/proc/{pid}/stat has no CPU times");
    };
    // /proc counts in USER_HZ, 100 on every Linux ABI.
    Ok((user + system) / 100.0)
}

/// The agent's containerd: its child process of that name.
fn containerd_of(agent: u32) -> anyhow::Result<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{agent}/task"))?;
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            if comm.trim() == "containerd" {
                return Ok(child);
            }
        }
    }
    bail!("the agent (process {agent}) has no containerd child")
}

/// CPU seconds the whole machine was busy (all cores; /proc/stat's first line, less idle
/// and iowait).
fn machine_busy_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if ticks.len() < 5 {
        bail!("/proc/stat has no CPU line");
    }
    Ok((ticks.iter().sum::<f64>() - ticks[3] - ticks[4]) / 100.0)
}

/// Writes back what the last run left in the page cache, then waits, at most
/// [`SETTLE_LIMIT`], until the machine was nearly idle over half a second: what the last
/// run left for the background (shims exiting, network namespaces the kernel frees later,
/// the disk writing back its files) is done, and the next run does not pay for it. (On an
/// ext4 without a journal, each new inode passes over the inodes deleted while their table
/// block waits to be written back: without the sync, whichever of the paced floor and the
/// kubelet ran second was ~100 ms slower at the p50.)
async fn machine_settled() -> anyhow::Result<()> {
    tokio::task::spawn_blocking(rustix::fs::sync).await?;
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let before = machine_busy_seconds()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = machine_busy_seconds()? - before;
        if busy < SETTLED_BUSY {
            return Ok(());
        }
        if Instant::now() > deadline {
            println!(
                "# the machine is still busy ({busy:.2} CPU-s in 0.5 s); the run starts anyway"
            );
            return Ok(());
        }
    }
}

/// CPU seconds each process and the whole machine used over `work`, one line each
/// (`name.PROCESS` and `name.machine`).
async fn cpu_during<T>(
    name: &str,
    processes: &[(&str, u32)],
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let mut before = Vec::new();
    for (_, pid) in processes {
        before.push(cpu_seconds(*pid)?);
    }
    let machine = machine_busy_seconds()?;
    let result = work.await?;
    for ((process, pid), before) in processes.iter().zip(before) {
        println!("{name}.{process}: {:.2} s", cpu_seconds(*pid)? - before);
    }
    println!("{name}.machine: {:.2} s", machine_busy_seconds()? - machine);
    Ok(result)
}

/// What a real node needs, as one line saying what to install.
fn prerequisites() -> anyhow::Result<()> {
    let missing: Vec<&str> = [
        ("/usr/bin/containerd", "containerd"),
        ("/usr/sbin/runc", "runc"),
        ("/usr/lib/cni/bridge", "containernetworking-plugins"),
        ("/bin/busybox", "busybox-static"),
    ]
    .into_iter()
    .filter(|(path, _)| !Path::new(path).exists())
    .map(|(_, package)| package)
    .collect();
    if !missing.is_empty() {
        bail!(
            "rkube bench pods needs a real node: install {} (scripts/setup-debian does)",
            missing.join(", ")
        );
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")));
    if !root {
        bail!("rkube bench pods runs a node agent: run it as root");
    }
    Ok(())
}

/// A one-layer image of Debian's static busybox with `sleep`.
fn image_archive() -> anyhow::Result<Vec<u8>> {
    let busybox = std::fs::read("/bin/busybox").context("reading /bin/busybox")?;
    let entries = vec![
        Entry::Dir { path: "bin".into() },
        Entry::File {
            path: "bin/busybox".into(),
            mode: 0o755,
            data: busybox,
        },
        Entry::Symlink {
            path: "bin/sleep".into(),
            target: "busybox".into(),
        },
        Entry::Symlink {
            path: "bin/sh".into(),
            target: "busybox".into(),
        },
    ];
    let run = RunConfig {
        cmd: vec!["sh".into()],
        env: vec!["PATH=/bin".into()],
        ..RunConfig::default()
    };
    Ok(oci::archive(IMAGE, &entries, &run)?)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

async fn until<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn pods(args: PodsBenchArgs) -> anyhow::Result<()> {
    prerequisites()?;
    let scratch = tempfile::tempdir().context("creating a scratch dir")?;
    match run(&args, scratch.path()).await {
        Ok(()) => Ok(()),
        Err(err) => {
            let kept = scratch.keep();
            Err(err.context(format!(
                "the server's and the agent's logs are kept in {}",
                kept.display()
            )))
        }
    }
}

async fn run(args: &PodsBenchArgs, dir: &Path) -> anyhow::Result<()> {
    let server_dir = dir.join("server");
    let port = free_port()?;
    let port_text = port.to_string();
    let server_dir_text = server_dir.to_string_lossy().into_owned();
    let server = spawn(
        &[
            "server",
            "--data-dir",
            &server_dir_text,
            "--https-port",
            &port_text,
            "--bind-address",
            "127.0.0.1",
            "--disable-agent",
            "--cluster-dns-port",
            "0",
            "--cluster-cidr",
            CLUSTER_CIDR,
        ],
        &dir.join("server.log"),
    )?;
    let kubeconfig = server_dir.join("admin.kubeconfig");
    let client = until("the API server", || async {
        // Over HTTP/2, as client-go's and kubectl's: the burst's creates share a connection.
        let client = crate::controller_manager::http2_client_from(&kubeconfig)
            .await
            .ok()?;
        client.apiserver_version().await.ok()?;
        Some(client)
    })
    .await?;

    let node_dir = dir.join("node");
    let images = Layout::new(&node_dir).images_dir();
    std::fs::create_dir_all(&images)?;
    std::fs::write(images.join("busybox.tar"), image_archive()?)?;
    let token = std::fs::read_to_string(server_dir.join("node-token"))?;
    let url = format!("https://127.0.0.1:{port}");
    let ca = server_dir.join("tls/ca.crt").to_string_lossy().into_owned();
    let node_dir_text = node_dir.to_string_lossy().into_owned();
    let mut agent = spawn(
        &[
            "agent",
            "--server",
            &url,
            "--token",
            token.trim(),
            "--ca-file",
            &ca,
            "--data-dir",
            &node_dir_text,
            "--node-name",
            NODE,
            "--kubelet-port",
            "0",
            "--cni-bridge",
            BRIDGE,
            "--cluster-cidr",
            CLUSTER_CIDR,
            "--disable-proxy",
            "--disable-ingress",
        ],
        &dir.join("agent.log"),
    )?;
    let nodes: Api<Node> = Api::all(client.clone());
    until("the node to be Ready", || async {
        let node = nodes.get(NODE).await.ok()?;
        let ready = node
            .status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A node under pressure is tainted, and the bench's pods would wait unscheduled.
    let node = nodes.get(NODE).await?;
    let node_memory = node
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("memory"))
        .map_or(0, container_spec::value);
    let template = floor_container(node_memory)?;
    let pressure: Vec<String> = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_.ends_with("Pressure") && c.status == "True")
        .map(|c| format!("{} ({})", c.type_, c.message.unwrap_or_default()))
        .collect();
    if !pressure.is_empty() {
        bail!(
            "the bench node reports {}: free disk space or memory first",
            pressure.join(", ")
        );
    }
    print_agent_rss("idle", agent.pid())?;

    let containerd = containerd_of(agent.pid())?;
    let cri = CriClient::connect(&Layout::new(&node_dir).socket()).await?;
    let runtime = Arc::new(CriRuntime::new(cri.clone(), Layout::new(&node_dir), BRIDGE).await?);
    let processes = [
        ("server", server.pid()),
        ("agent", agent.pid()),
        ("containerd", containerd),
    ];
    let floor_dir = dir.join("floor");
    let largest = args.bursts.iter().copied().max().unwrap_or(0);
    // Each burst size: the floor, then the kubelet, each starting on an idle containerd
    // (the previous run's sandboxes all gone).
    let rounds = args.rounds.max(1);
    let logs = [dir.join("server.log"), dir.join("agent.log")];
    let floor = Floor {
        runtime: &runtime,
        cri: &cri,
        template: &template,
        dir: &floor_dir,
        processes: &processes,
    };
    let kubelet = Kubelet {
        client: &client,
        cri: &cri,
        processes: &processes,
    };
    for &burst in &args.bursts {
        let (mut overheads, mut paced_overheads) = (Vec::new(), Vec::new());
        let mut pod_times = Vec::new();
        let (mut floor_stages, mut paced_stages) = (Stages::default(), Stages::default());
        let mut requests: HashMap<String, f64> = HashMap::new();
        for round in 1..=rounds {
            if rounds > 1 {
                println!("# burst of {burst}, round {round} of {rounds}");
            }
            let (all_at_once, _, _) = floor.run(burst, round, None, &mut floor_stages).await?;
            // The paced floor and the kubelet take turns going first (ABBA over the
            // rounds): what one run leaves the next (the disk writing back its files, the
            // kernel freeing its network namespaces) counts against both alike.
            let gate = Arc::new(StartGate::for_this_machine());
            let kubelet_first = round % 2 == 0;
            let paced_before = if kubelet_first {
                None
            } else {
                Some(
                    floor
                        .run(burst, round, Some(&gate), &mut paced_stages)
                        .await?,
                )
            };
            let rss_after = burst == largest && round == rounds;
            let (latencies, times) = kubelet
                .run(burst, &mut requests, rss_after.then_some(agent.pid()))
                .await?;
            let (paced, paced_in_turn, paced_turns) = match paced_before {
                Some(run) => run,
                None => {
                    floor
                        .run(burst, round, Some(&gate), &mut paced_stages)
                        .await?
                }
            };
            // Each run's steps on one line: what made a run slow is seen there.
            let marks = read_stage_marks(&logs)?;
            let steps: Vec<String> = stage_p50s(&times, &marks)?
                .into_iter()
                .map(|(stage, at)| format!("{stage} {:.0}", ms(at)))
                .collect();
            let held = in_turn(&times, &marks);
            println!(
                "# turns given, ms from the start, to one pod in {}: kubelet {}; paced floor {}",
                gate.width(),
                every_nth(turns_given(&times, &marks), gate.width()),
                every_nth(paced_turns, gate.width()),
            );
            println!(
                "# steps of this run, p50 ms: {}, in turn {:.0}; floor: started {:.0}; paced floor: started {:.0}, in turn {:.0}{}",
                steps.join(", "),
                ms(p50(&held)),
                ms(all_at_once),
                ms(paced),
                ms(paced_in_turn.unwrap_or_default()),
                if kubelet_first {
                    " (the kubelet first)"
                } else {
                    ""
                },
            );
            pod_times.extend(times);
            overheads.push(ms(p50(&latencies)) - ms(all_at_once));
            paced_overheads.push(ms(p50(&latencies)) - ms(paced));
            print_latencies(&format!("pods.startup.b{burst}"), latencies);
        }
        print_overheads(&format!("b{burst}"), "floor's", overheads);
        print_overheads(&format!("paced.b{burst}"), "paced floor's", paced_overheads);
        print_requests(burst, rounds, requests);
        let marks = read_stage_marks(&logs)?;
        for (stage, at) in stage_p50s(&pod_times, &marks)? {
            println!("pods.stage.b{burst}.{stage}: {:.1} ms", ms(at));
        }
        println!(
            "pods.in_turn.b{burst}.p50: {:.1} ms",
            ms(p50(&in_turn(&pod_times, &marks)))
        );
        floor_stages.print(&format!("floor.b{burst}"));
        paced_stages.print(&format!("floor.paced.b{burst}"));
    }
    println!(
        "# targets: p50 startup within 100 ms of the floor; agent RSS under 30 MiB with 100 pods"
    );
    agent.stop();

    if args.hollow_nodes > 0 {
        hollow(&client, &url, token.trim(), &ca, dir, args.hollow_nodes).await?;
    }
    Ok(())
}

/// Prints the median and the mean of the runs' overheads over one floor.
fn print_overheads(name: &str, floor: &str, mut overheads: Vec<f64>) {
    let runs: Vec<String> = overheads.iter().map(|ms| format!("{ms:+.0}")).collect();
    println!("# overhead of each run, {name}: {} ms", runs.join(", "));
    let rounds = overheads.len();
    if let Some(median) = median(&mut overheads) {
        println!(
            "pods.overhead.{name}.p50: {median:.1} ms (median of {rounds} run(s); each the kubelet's p50 minus the {floor})"
        );
    }
    if let Some((mean, half)) = mean_and_interval(&overheads) {
        println!(
            "pods.overhead.{name}.mean: {mean:.1} ms (95% interval ±{half:.1} ms over {rounds} runs: how far the figures can be trusted)"
        );
    }
}

/// The median of `runs`: the middle one, or the mean of the middle two of an even number.
fn median(runs: &mut [f64]) -> Option<f64> {
    runs.sort_by(f64::total_cmp);
    let upper = *runs.get(runs.len() / 2)?;
    Some(match runs.len() % 2 {
        0 => (runs[runs.len() / 2 - 1] + upper) / 2.0,
        _ => upper,
    })
}

/// The mean of `runs` and the half-width of its 95% confidence interval (Student's t), for
/// two runs or more.
fn mean_and_interval(runs: &[f64]) -> Option<(f64, f64)> {
    // t(0.975) for 1..=30 degrees of freedom; past that, the normal's 1.96 is near enough.
    const T975: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    let n = runs.len();
    if n < 2 {
        return None;
    }
    let mean = runs.iter().sum::<f64>() / n as f64;
    let variance = runs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = T975.get(n - 2).copied().unwrap_or(1.96);
    Some((mean, t * (variance / n as f64).sqrt()))
}

fn p50(latencies: &[Duration]) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, 0.5)
}

/// When one of a burst's pods was created and seen Running, in µs since the Unix epoch
/// (the clock of the server's and the agent's stage marks).
struct PodTimes {
    uid: String,
    created_us: u128,
    running_us: u128,
}

/// The bench's pod `i` of a burst labelled `label`.
fn bench_pod(label: &str, i: usize) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": format!("{label}-{i}"), "labels": {"rkube-bench": label}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "sleep",
                "image": IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}},
            }],
        },
    }))?)
}

/// The floor's container: the bench pod's, with the cgroup limits and security settings the
/// kubelet gives it (its 1m CPU request is 2 CPU shares, so under a burst its processes
/// wait behind everything else, as the kubelet's do).
fn floor_container(node_memory: i64) -> anyhow::Result<ContainerConfig> {
    let pod = bench_pod("floor", 0)?;
    let spec = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .context("the bench pod has no container")?;
    Ok(ContainerConfig {
        name: spec.name.clone(),
        image: IMAGE.into(),
        command: spec.command.clone().unwrap_or_default(),
        resources: container_spec::resources(&pod, spec, node_memory),
        security: container_spec::security(&pod, spec),
        ..ContainerConfig::default()
    })
}

/// Creates `n` pods at once: each one's time from its create to a watch seeing it Running,
/// and the same on the wall clock.
async fn burst_of_pods(
    client: &Client,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<PodTimes>)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let label = format!("burst-{n}");
    let running: Arc<Mutex<HashMap<String, (Instant, u128)>>> = Arc::default();
    let seen = running.clone();
    let config = watcher::Config::default().labels(&format!("rkube-bench={label}"));
    let watched = pods.clone();
    let watch = tokio::spawn(async move {
        let mut stream = watcher::watcher(watched, config).boxed();
        while let Some(event) = stream.next().await {
            let pods: Vec<Pod> = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => vec![pod],
                _ => continue,
            };
            for pod in pods {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if phase == Some("Running")
                    && let Some(name) = pod.metadata.name
                {
                    seen.lock()
                        .await
                        .entry(name)
                        .or_insert_with(|| (Instant::now(), rkube_kubelet::unix_micros()));
                }
            }
        }
    });
    // The watch is established before the first create.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut creates = Vec::new();
    for i in 0..n {
        let pods = pods.clone();
        let body = bench_pod(&label, i)?;
        creates.push(tokio::spawn(async move {
            let started = Instant::now();
            let created_us = rkube_kubelet::unix_micros();
            let made = pods.create(&PostParams::default(), &body).await?;
            let uid = made.metadata.uid.unwrap_or_default();
            anyhow::Ok((
                body.metadata.name.unwrap_or_default(),
                (started, uid, created_us),
            ))
        }));
    }
    let mut started = HashMap::new();
    for create in creates {
        let (name, at) = create.await??;
        started.insert(name, at);
    }
    let all_running = until(&format!("{n} pods Running"), || async {
        (running.lock().await.len() >= n).then_some(())
    })
    .await;
    watch.abort();
    all_running?;
    let running = running.lock().await;
    let mut latencies = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    for (name, (at, uid, created_us)) in started {
        if let Some((seen, seen_us)) = running.get(&name) {
            latencies.push(seen.saturating_duration_since(at));
            times.push(PodTimes {
                uid,
                created_us,
                running_us: *seen_us,
            });
        }
    }
    Ok((latencies, times))
}

/// The tracing target of the marks the server and the agent write at each step of a pod's
/// start (`rkube_kubelet::stage`).
const STAGE_TARGET: &str = "rkube::stage";

/// The steps marked, in the order a pod goes through them.
const STAGES: [&str; 7] = [
    "bound", "seen", "turn", "volumes", "sandbox", "started", "reported",
];

/// The stage marks in a log: pod uid -> stage -> when (µs since the Unix epoch), the first
/// mark of each.
fn stage_marks(log: &str) -> HashMap<String, HashMap<String, u128>> {
    let target = format!(" {STAGE_TARGET}: ");
    let mut marks: HashMap<String, HashMap<String, u128>> = HashMap::new();
    for line in log.lines() {
        let line = without_colours(line);
        let Some((_, fields)) = line.split_once(&target) else {
            continue;
        };
        let (mut uid, mut stage, mut at) = (None, None, None);
        for field in fields.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let value = value.trim_matches('"');
            match key {
                "uid" => uid = Some(value),
                "stage" => stage = Some(value),
                "at_us" => at = value.parse::<u128>().ok(),
                _ => {}
            }
        }
        if let (Some(uid), Some(stage), Some(at)) = (uid, stage, at) {
            marks
                .entry(uid.to_owned())
                .or_default()
                .entry(stage.to_owned())
                .or_insert(at);
        }
    }
    marks
}

/// A log line without its ANSI colour sequences (`ESC [ ... m`), which the logger writes
/// around levels, targets and field names when it thinks it writes to a terminal.
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Up to and including the sequence's final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The stage marks of the server's and the agent's logs: pod uid -> stage -> when.
fn read_stage_marks(logs: &[PathBuf]) -> anyhow::Result<HashMap<String, HashMap<String, u128>>> {
    let mut marks: HashMap<String, HashMap<String, u128>> = HashMap::new();
    for log in logs {
        let text = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
        for (uid, stages) in stage_marks(&String::from_utf8_lossy(&text)) {
            marks.entry(uid).or_default().extend(stages);
        }
    }
    Ok(marks)
}

/// When each step of the pods' start was done, p50 over `pods`: (stage, p50) in the order
/// of [`STAGES`], then `running`.
fn stage_p50s(
    pods: &[PodTimes],
    marks: &HashMap<String, HashMap<String, u128>>,
) -> anyhow::Result<Vec<(&'static str, Duration)>> {
    let since_create = |pod: &PodTimes, at: u128| {
        Duration::from_micros(u64::try_from(at.saturating_sub(pod.created_us)).unwrap_or(0))
    };
    let mut p50s = Vec::with_capacity(STAGES.len() + 1);
    for stage in STAGES {
        let done: Vec<Duration> = pods
            .iter()
            .filter_map(|pod| Some(since_create(pod, *marks.get(&pod.uid)?.get(stage)?)))
            .collect();
        if done.is_empty() {
            bail!("no pod's {stage:?} step is marked in the server's or the agent's log");
        }
        p50s.push((stage, p50(&done)));
    }
    let running: Vec<Duration> = pods
        .iter()
        .map(|pod| since_create(pod, pod.running_us))
        .collect();
    p50s.push(("running", p50(&running)));
    Ok(p50s)
}

/// How long each pod of `pods` had its turn before its container started (the sandbox and
/// the container through CRI, with the volumes beside them): the part of a start that the
/// node's CPU paces, to set beside the paced floor's.
fn in_turn(pods: &[PodTimes], marks: &HashMap<String, HashMap<String, u128>>) -> Vec<Duration> {
    pods.iter()
        .filter_map(|pod| {
            let stages = marks.get(&pod.uid)?;
            let held = stages.get("started")?.checked_sub(*stages.get("turn")?)?;
            Some(Duration::from_micros(u64::try_from(held).ok()?))
        })
        .collect()
}

/// When each of `pods` was given its turn, from its create.
fn turns_given(pods: &[PodTimes], marks: &HashMap<String, HashMap<String, u128>>) -> Vec<Duration> {
    pods.iter()
        .filter_map(|pod| {
            let given = marks
                .get(&pod.uid)?
                .get("turn")?
                .checked_sub(pod.created_us)?;
            Some(Duration::from_micros(u64::try_from(given).ok()?))
        })
        .collect()
}

/// The first, the `n`th, the `2n`th... of `times` in order, in whole milliseconds: when
/// each wave of turns began.
fn every_nth(mut times: Vec<Duration>, n: usize) -> String {
    times.sort();
    times
        .iter()
        .step_by(n.max(1))
        .map(|t| format!("{:.0}", ms(*t)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The server's request counters, `VERB.RESOURCE[/SUBRESOURCE]` -> requests so far (all
/// groups and codes together).
async fn request_counts(client: &Client) -> anyhow::Result<HashMap<String, f64>> {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    Ok(parse_request_counts(&text))
}

/// `apiserver_request_total` of a /metrics text by `VERB.RESOURCE[/SUBRESOURCE]`.
fn parse_request_counts(text: &str) -> HashMap<String, f64> {
    let mut counts = HashMap::new();
    for line in text.lines() {
        let Some(labels) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = labels.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(name)?.strip_prefix("=\""))
                .map(|v| v.trim_end_matches('"'))
                .unwrap_or("")
        };
        let (verb, resource, sub) = (label("verb"), label("resource"), label("subresource"));
        let kind = match sub {
            "" => format!("{verb}.{resource}"),
            sub => format!("{verb}.{resource}/{sub}"),
        };
        *counts.entry(kind).or_default() += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    counts
}

/// Prints the requests of each kind per pod over a burst size's kubelet runs, most first
/// (kinds under 0.05 a pod only in the total).
fn print_requests(burst: usize, rounds: usize, requests: HashMap<String, f64>) {
    let pods = (burst * rounds) as f64;
    let total = requests.values().sum::<f64>() / pods;
    let mut per_pod: Vec<(String, f64)> = requests
        .into_iter()
        .map(|(kind, n)| (kind, n / pods))
        .filter(|(_, n)| *n >= 0.05)
        .collect();
    per_pod.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (kind, n) in per_pod {
        println!("pods.requests.b{burst}.{kind}: {n:.2} per pod");
    }
    println!("pods.requests.b{burst}.all: {total:.2} per pod");
}

/// Waits until containerd runs no sandbox: the last run's teardown is over.
async fn no_sandboxes_left(cri: &CriClient) -> anyhow::Result<()> {
    until("containerd to have no sandboxes left", || async {
        let left = cri.list_pod_sandboxes(&[]).await.ok()?;
        left.is_empty().then_some(())
    })
    .await
}

/// Deletes a burst's pods and waits until they are gone.
async fn delete_pods(client: &Client, n: usize) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let selector = format!("rkube-bench=burst-{n}");
    let params = ListParams::default().labels(&selector);
    pods.delete_collection(&DeleteParams::default().grace_period(0), &params)
        .await?;
    until("the pods to be gone", || async {
        let left = pods.list(&params).await.ok()?;
        left.items.is_empty().then_some(())
    })
    .await
}

/// The mounts the kubelet gives each of the bench's containers: the service account's
/// projected volume, on a tmpfs of the pod's own, and the managed /etc/hosts.
struct FloorVolumes {
    /// Each pod's service-account directory and its container's mounts.
    pods: Vec<(PathBuf, Vec<Mount>)>,
    /// The tmpfs mounted so far.
    tmpfs: std::sync::Mutex<Vec<PathBuf>>,
}

impl FloorVolumes {
    /// The directories of `pods` pods, none mounted yet.
    fn new(dir: &Path, pods: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, "127.0.0.1\tlocalhost\n")?;
        let mut volumes = FloorVolumes {
            pods: Vec::with_capacity(pods),
            tmpfs: std::sync::Mutex::default(),
        };
        for i in 0..pods {
            let account = dir.join(format!("pod-{i}")).join("serviceaccount");
            std::fs::create_dir_all(&account)?;
            let mounts = vec![
                Mount {
                    container_path: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
                    host_path: account.to_string_lossy().into_owned(),
                    readonly: true,
                    propagation: Propagation::Private,
                },
                Mount {
                    container_path: "/etc/hosts".into(),
                    host_path: hosts.to_string_lossy().into_owned(),
                    readonly: false,
                    propagation: Propagation::Private,
                },
            ];
            volumes.pods.push((account, mounts));
        }
        Ok(volumes)
    }

    /// Mounts pod `i`'s service-account volume, a tmpfs as the kubelet's; its mounts.
    fn mount(&self, i: usize) -> anyhow::Result<Vec<Mount>> {
        let (account, mounts) = self.pods.get(i).context("no such floor pod")?;
        tmpfs::mount(account, None)
            .with_context(|| format!("mounting a tmpfs on {}", account.display()))?;
        self.mounted().push(account.clone());
        for (file, content) in [
            ("token", "t"),
            ("ca.crt", "c"),
            ("namespace", "rkube-bench"),
        ] {
            std::fs::write(account.join(file), content)?;
        }
        Ok(mounts.clone())
    }

    fn mounted(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.tmpfs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Unmounts the tmpfs (their pods are gone).
    fn unmount(self) -> anyhow::Result<()> {
        let mounted = std::mem::take(&mut *self.mounted());
        for dir in mounted {
            tmpfs::unmount(&dir).with_context(|| format!("unmounting {}", dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for FloorVolumes {
    /// A failed run leaves no mounts behind.
    fn drop(&mut self) {
        for dir in self.mounted().iter() {
            let _ = tmpfs::unmount(dir);
        }
    }
}

/// The same sandboxes and containers through CRI alone (with the kubelet's mounts, one set
/// a pod), all at once or `paced`: each one's time, the sandboxes, left running, each one's
/// time until its sandbox was made and, paced, how long it had its turn until its container
/// started. Each round's pods are new to the runtime, as the kubelet's are (a pod it made
/// sandboxes for before would cost it a `ListPodSandbox` to number the next).
async fn containerd_floor(
    runtime: &Arc<CriRuntime>,
    template: &ContainerConfig,
    volumes: &Arc<FloorVolumes>,
    round: usize,
    paced: Option<&Arc<StartGate>>,
) -> anyhow::Result<FloorRun> {
    let n = volumes.pods.len();
    let mut tasks = Vec::new();
    for i in 0..n {
        let runtime = runtime.clone();
        let gate = paced.cloned();
        let volumes = volumes.clone();
        let template = template.clone();
        tasks.push(tokio::spawn(async move {
            let sandbox = SandboxConfig {
                namespace: "rkube-bench".into(),
                name: format!("floor-{n}-{i}"),
                uid: format!("rkube-bench-floor-{n}-{round}-{i}"),
                hostname: format!("floor-{n}-{i}"),
                ..SandboxConfig::default()
            };
            let started = Instant::now();
            // Paced, a pod mounts its volume in its turn, as the kubelet's do.
            // The turn is timed from when it is given, before the mount, as the kubelet's.
            let (turn, turn_at, mounts) = match &gate {
                Some(gate) => {
                    let turn = gate.turn().await;
                    let turn_at = started.elapsed();
                    (Some(turn), turn_at, volumes.mount(i)?)
                }
                None => (None, Duration::ZERO, volumes.pods[i].1.clone()),
            };
            let container = ContainerConfig { mounts, ..template };
            let made = runtime.run_pod_sandbox(&sandbox).await?;
            let sandbox_made = started.elapsed();
            runtime
                .start_container(&made.id, &sandbox, &container)
                .await?;
            let took = started.elapsed();
            let in_turn = turn.map(|turn| {
                drop(turn);
                (turn_at, took.saturating_sub(turn_at))
            });
            anyhow::Ok((took, made.id, sandbox_made, in_turn))
        }));
    }
    let mut run = FloorRun::default();
    for task in tasks {
        let (took, id, sandbox_made, in_turn) = task.await??;
        run.latencies.push(took);
        run.sandboxes.push(id);
        run.made.push(sandbox_made);
        if let Some((given, held)) = in_turn {
            run.turns_given.push(given);
            run.in_turn.push(held);
        }
    }
    Ok(run)
}

/// One run of the floor: each pod's time until its container started, the sandboxes (left
/// running), each pod's time until its sandbox was made, and, paced, how long each had its
/// turn until its container started.
#[derive(Default)]
struct FloorRun {
    latencies: Vec<Duration>,
    sandboxes: Vec<String>,
    made: Vec<Duration>,
    in_turn: Vec<Duration>,
    /// Paced, when each pod was given its turn, from the start.
    turns_given: Vec<Duration>,
}

/// What the floor's runs need.
struct Floor<'a> {
    runtime: &'a Arc<CriRuntime>,
    cri: &'a CriClient,
    template: &'a ContainerConfig,
    dir: &'a Path,
    processes: &'a [(&'static str, u32)],
}

/// What the kubelet's runs need.
struct Kubelet<'a> {
    client: &'a Client,
    cri: &'a CriClient,
    processes: &'a [(&'static str, u32)],
}

impl Kubelet<'_> {
    /// One burst of `burst` pods through the API on an idle machine, its CPU printed and its
    /// API requests added to `requests`; each pod's latency and times. The agent's memory
    /// with the pods running is printed when `rss_of` names it. The pods are gone after.
    async fn run(
        &self,
        burst: usize,
        requests: &mut HashMap<String, f64>,
        rss_of: Option<u32>,
    ) -> anyhow::Result<(Vec<Duration>, Vec<PodTimes>)> {
        machine_settled().await?;
        let before = request_counts(self.client).await?;
        let run = cpu_during(
            &format!("pods.cpu.b{burst}"),
            self.processes,
            burst_of_pods(self.client, burst),
        )
        .await?;
        for (kind, n) in request_counts(self.client).await? {
            *requests.entry(kind.clone()).or_default() +=
                n - before.get(&kind).copied().unwrap_or(0.0);
        }
        if let Some(agent) = rss_of {
            print_agent_rss(&format!("with_{burst}_pods"), agent)?;
            // As a node runs them: past the burst, once the agent trimmed its heap.
            tokio::time::sleep(Duration::from_secs(15)).await;
            print_agent_rss(&format!("with_{burst}_pods_settled"), agent)?;
        }
        delete_pods(self.client, burst).await?;
        no_sandboxes_left(self.cri).await?;
        Ok(run)
    }
}

/// When the floor's sandboxes were made and their containers started, and, paced, how long
/// the pods had their turns, over all rounds.
#[derive(Default)]
struct Stages {
    sandbox: Vec<Duration>,
    started: Vec<Duration>,
    in_turn: Vec<Duration>,
}

impl Stages {
    fn print(&self, name: &str) {
        println!(
            "pods.stage.{name}.sandbox: {:.1} ms",
            ms(p50(&self.sandbox))
        );
        println!(
            "pods.stage.{name}.started: {:.1} ms",
            ms(p50(&self.started))
        );
        if !self.in_turn.is_empty() {
            println!("pods.in_turn.{name}.p50: {:.1} ms", ms(p50(&self.in_turn)));
        }
    }
}

impl Floor<'_> {
    /// One run of the floor on an idle machine, all at once or `paced` as the kubelet
    /// paces its pods; prints its figures, returns its p50 and, paced, the p50 of its pods'
    /// time in their turns.
    async fn run(
        &self,
        burst: usize,
        round: usize,
        paced: Option<&Arc<StartGate>>,
        stages: &mut Stages,
    ) -> anyhow::Result<(Duration, Option<Duration>, Vec<Duration>)> {
        let name = match paced {
            Some(_) => format!("floor.paced.b{burst}"),
            None => format!("floor.b{burst}"),
        };
        let volumes = Arc::new(FloorVolumes::new(self.dir, burst)?);
        if paced.is_none() {
            // All at once: mounted before, as the pods all have theirs at the start.
            for i in 0..burst {
                volumes.mount(i)?;
            }
        }
        machine_settled().await?;
        let run = cpu_during(
            &format!("pods.cpu.{name}"),
            self.processes,
            containerd_floor(self.runtime, self.template, &volumes, round, paced),
        )
        .await?;
        stages.sandbox.extend(run.made);
        stages.started.extend(run.latencies.iter().copied());
        stages.in_turn.extend(run.in_turn.iter().copied());
        let floor = p50(&run.latencies);
        let in_turn = (!run.in_turn.is_empty()).then(|| p50(&run.in_turn));
        let turns_given = run.turns_given;
        print_latencies(&format!("pods.{name}"), run.latencies);
        remove_sandboxes(self.runtime, run.sandboxes).await?;
        no_sandboxes_left(self.cri).await?;
        Arc::into_inner(volumes)
            .context("a floor pod still holds its volumes")?
            .unmount()?;
        Ok((floor, in_turn, turns_given))
    }
}

/// Stops and removes the floor's sandboxes.
async fn remove_sandboxes(runtime: &CriRuntime, sandboxes: Vec<String>) -> anyhow::Result<()> {
    for id in sandboxes {
        runtime.stop_pod_sandbox(&id, Duration::ZERO).await?;
        runtime.remove_pod_sandbox(&id).await?;
    }
    Ok(())
}

/// `rkube agent --simulate N`: its resident memory per node once all registered.
async fn hollow(
    client: &Client,
    url: &str,
    token: &str,
    ca: &str,
    dir: &Path,
    n: usize,
) -> anyhow::Result<()> {
    let hollow_dir: PathBuf = dir.join("hollow");
    let count = n.to_string();
    let hollow_dir_text = hollow_dir.to_string_lossy().into_owned();
    let mut agent = spawn(
        &[
            "agent",
            "--server",
            url,
            "--token",
            token,
            "--ca-file",
            ca,
            "--data-dir",
            &hollow_dir_text,
            "--simulate",
            &count,
            "--node-name-prefix",
            "bench-hollow",
            "--record-events",
            "false",
        ],
        &dir.join("hollow.log"),
    )?;
    let nodes: Api<Node> = Api::all(client.clone());
    until(&format!("{n} hollow nodes"), || async {
        let listed = nodes.list_metadata(&ListParams::default()).await.ok()?;
        let registered = listed
            .items
            .iter()
            .filter(|node| {
                node.metadata
                    .name
                    .as_deref()
                    .is_some_and(|name| name.starts_with("bench-hollow-"))
            })
            .count();
        (registered >= n).then_some(())
    })
    .await?;
    // Past the first heartbeats.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let rss = rss_mib(agent.pid())?;
    println!("pods.hollow_rss.n{n}: {rss:.1} MiB");
    println!(
        "pods.hollow_rss_per_node: {:.1} KiB",
        rss * 1024.0 / n as f64
    );
    println!("# target: under 1 MiB per hollow node");
    agent.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_number_of_runs_is_between_the_middle_two() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [144.0, -88.0, 90.0]), Some(90.0));
        assert_eq!(
            median(&mut [188.0, 171.0, -88.0, 88.0, 90.0, 144.0]),
            Some(117.0)
        );
    }

    #[test]
    fn the_interval_of_the_mean_narrows_with_more_runs() {
        assert_eq!(mean_and_interval(&[5.0]), None);
        let (mean, half) = mean_and_interval(&[100.0, 300.0]).unwrap();
        assert_eq!(mean, 200.0);
        // s = 141.42, n = 2, t = 12.706: 12.706 * 141.42 / sqrt(2) = 1270.6
        assert!((half - 1270.6).abs() < 0.1, "{half}");
        let many: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 100.0 } else { 300.0 })
            .collect();
        let (mean, narrower) = mean_and_interval(&many).unwrap();
        assert_eq!(mean, 200.0);
        assert!(narrower < 60.0, "{narrower}");
    }

    #[test]
    fn request_counts_sum_the_codes_of_each_verb_and_resource() {
        let text = r#"# TYPE apiserver_request_total counter
apiserver_request_total{verb="POST",group="",version="v1",resource="pods",subresource="",code="201"} 30
apiserver_request_total{verb="POST",group="",version="v1",resource="pods",subresource="",code="409"} 2
apiserver_request_total{verb="PATCH",group="",version="v1",resource="pods",subresource="status",code="200"} 31
apiserver_request_duration_seconds_count{verb="POST",resource="pods"} 99
"#;
        let counts = parse_request_counts(text);
        assert_eq!(counts.len(), 2, "{counts:?}");
        assert_eq!(counts["POST.pods"], 32.0);
        assert_eq!(counts["PATCH.pods/status"], 31.0);
    }

    #[test]
    fn stage_marks_are_read_from_the_lines_the_logger_writes() {
        let buffer = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
                "{},{STAGE_TARGET}=debug",
                crate::DEFAULT_LOG
            )))
            .with_writer(move || Writer(writer.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("agent started");
            tracing::debug!(target: "rkube::stage", uid = "u-1", stage = "sandbox", at_us = 1_500u128);
            tracing::debug!(target: "rkube::stage", uid = "u-1", stage = "sandbox", at_us = 9_000u128);
            tracing::debug!(target: "rkube::stage", uid = "u-2", stage = "started", at_us = 2_000u128);
            tracing::debug!(target: "rkube::other", uid = "u-3", stage = "started", at_us = 1u128);
        });
        let log = String::from_utf8(buffer.lock().expect("log").clone()).expect("utf-8");
        let marks = stage_marks(&log);
        assert_eq!(marks.len(), 2, "{log}");
        // The first mark of a stage counts.
        assert_eq!(marks["u-1"]["sandbox"], 1_500);
        assert_eq!(marks["u-2"]["started"], 2_000);
    }

    #[test]
    fn a_pods_time_in_its_turn_runs_from_its_turn_to_its_container_started() {
        let pod = |uid: &str| PodTimes {
            uid: uid.to_owned(),
            created_us: 0,
            running_us: 0,
        };
        let marks: HashMap<String, HashMap<String, u128>> = [
            ("a", vec![("turn", 1_000), ("started", 251_000)]),
            // No turn marked (a pod adopted, or the log cut short): not counted.
            ("b", vec![("started", 90_000)]),
            // Marks out of order cannot make a time.
            ("c", vec![("turn", 5_000), ("started", 4_000)]),
        ]
        .into_iter()
        .map(|(uid, stages)| {
            let stages = stages.into_iter().map(|(s, at)| (s.to_owned(), at));
            (uid.to_owned(), stages.collect())
        })
        .collect();
        let held = in_turn(&[pod("a"), pod("b"), pod("c"), pod("d")], &marks);
        assert_eq!(held, vec![Duration::from_millis(250)]);
    }

    struct Writer(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
