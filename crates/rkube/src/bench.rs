//! `rkube bench`: figures for the performance goals, one `name: value unit` line each.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use rkube_store::local_etcd::{LocalEtcd, etcd_installed};
use rkube_store::{EmbeddedStore, EtcdStore, Store};

#[derive(clap::Args, Debug)]
pub struct StoreBenchArgs {
    /// Seconds to run each write and read phase.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// Keys for the reopen measurement (embedded store).
    #[arg(long, default_value_t = 150_000)]
    pub reopen_keys: usize,
    /// Skip etcd even when it is installed.
    #[arg(long)]
    pub no_etcd: bool,
}

const WRITER_COUNTS: [usize; 3] = [1, 16, 64];
const WATCHERS: usize = 100;

pub async fn store(args: StoreBenchArgs) -> anyhow::Result<()> {
    let phase = Duration::from_secs(args.seconds.max(1));
    let dir = tempfile::tempdir().context("creating a scratch dir for the benchmark")?;

    let embedded: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("embedded"))?);
    let embedded_64 = run_backend("embedded", embedded, phase).await?;
    reopen("embedded", &dir.path().join("reopen"), args.reopen_keys).await?;

    if args.no_etcd {
        return Ok(());
    }
    if !etcd_installed() {
        println!("# etcd is not installed (apt-get install etcd-server): etcd figures skipped");
        return Ok(());
    }
    let etcd = LocalEtcd::start(&dir.path().join("etcd"))?;
    let client: Arc<dyn Store> = Arc::new(EtcdStore::connect(&[etcd.endpoint()]).await?);
    let etcd_64 = run_backend("etcd", client, phase).await?;
    println!(
        "store.create.w64.embedded_over_etcd: {:.2} ratio",
        embedded_64.throughput / etcd_64.throughput
    );
    println!(
        "store.create.w64.p99_embedded_over_etcd: {:.2} ratio",
        embedded_64.p99.as_secs_f64() / etcd_64.p99.as_secs_f64()
    );
    Ok(())
}

struct WriteFigures {
    throughput: f64,
    p99: Duration,
}

async fn run_backend(
    name: &str,
    store: Arc<dyn Store>,
    phase: Duration,
) -> anyhow::Result<WriteFigures> {
    let mut at_64 = None;
    for writers in WRITER_COUNTS {
        let (ops, mut latencies) = write_phase(&store, name, writers, phase).await?;
        latencies.sort_unstable();
        let throughput = ops as f64 / phase.as_secs_f64();
        let p50 = percentile(&latencies, 0.50);
        let p99 = percentile(&latencies, 0.99);
        println!("store.{name}.create.w{writers}.throughput: {throughput:.0} ops/s");
        println!("store.{name}.create.w{writers}.p50: {:.3} ms", ms(p50));
        println!("store.{name}.create.w{writers}.p99: {:.3} ms", ms(p99));
        if writers == 64 {
            at_64 = Some(WriteFigures { throughput, p99 });
        }
    }
    get_phase(&store, name, phase).await?;
    watch_phase(&store, name).await?;
    at_64.context("the 64-writer phase did not run")
}

async fn write_phase(
    store: &Arc<dyn Store>,
    name: &str,
    writers: usize,
    phase: Duration,
) -> anyhow::Result<(usize, Vec<Duration>)> {
    let value = Bytes::from(vec![b'v'; 1024]);
    let deadline = Instant::now() + phase;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let value = value.clone();
            let prefix = format!("/bench/{name}/w{writers}/{w}/");
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    store.create(&format!("{prefix}{i}"), value.clone()).await?;
                    latencies.push(started.elapsed());
                    i += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((all.len(), all))
}

async fn get_phase(store: &Arc<dyn Store>, name: &str, phase: Duration) -> anyhow::Result<()> {
    const READERS: usize = 16;
    let deadline = Instant::now() + phase;
    let tasks: Vec<_> = (0..READERS)
        .map(|r| {
            let store = store.clone();
            let key_prefix = format!("/bench/{name}/w16/{r}/");
            tokio::spawn(async move {
                let mut count = 0usize;
                while Instant::now() < deadline {
                    let key = format!("{key_prefix}{}", count % 100);
                    store.get(&key).await?;
                    count += 1;
                }
                anyhow::Ok(count)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    println!(
        "store.{name}.get.r{READERS}.throughput: {:.0} ops/s",
        total as f64 / phase.as_secs_f64()
    );
    Ok(())
}

/// Time from the start of a write to its event arriving at each of 100 watchers.
async fn watch_phase(store: &Arc<dyn Store>, name: &str) -> anyhow::Result<()> {
    const EVENTS: usize = 200;
    let prefix = format!("/bench/{name}/watch/");
    let start = store.current_revision().await?;
    let origin = Instant::now();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let mut stream = store.watch(&prefix, start).await?;
        watchers.push(tokio::spawn(async move {
            let mut arrivals = Vec::with_capacity(EVENTS);
            while arrivals.len() < EVENTS {
                let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
                    .await
                    .context("a watcher waited 30s for an event")?
                    .context("a watch ended early")??;
                let sent_nanos: u64 = std::str::from_utf8(&event.kv.value)?.parse()?;
                let arrived = origin.elapsed().as_nanos() as u64;
                arrivals.push(Duration::from_nanos(arrived.saturating_sub(sent_nanos)));
            }
            anyhow::Ok(arrivals)
        }));
    }
    for i in 0..EVENTS {
        let sent = origin.elapsed().as_nanos() as u64;
        store
            .create(&format!("{prefix}{i}"), Bytes::from(sent.to_string()))
            .await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut latencies = Vec::new();
    for watcher in watchers {
        latencies.extend(watcher.await??);
    }
    latencies.sort_unstable();
    println!(
        "store.{name}.watch.w{WATCHERS}.p99: {:.3} ms",
        ms(percentile(&latencies, 0.99))
    );
    Ok(())
}

/// Fills a fresh embedded store with `keys` keys, closes it, and times opening it and
/// serving the first read.
async fn reopen(name: &str, dir: &Path, keys: usize) -> anyhow::Result<()> {
    {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir)?);
        let writers = 64;
        let value = Bytes::from(vec![b'v'; 512]);
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let store = store.clone();
                let value = value.clone();
                tokio::spawn(async move {
                    for i in (w..keys).step_by(writers) {
                        store
                            .create(&format!("/registry/bench/{i:08}"), value.clone())
                            .await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
    }
    let started = Instant::now();
    let store = EmbeddedStore::open(dir)?;
    store
        .get("/registry/bench/00000000")
        .await?
        .context("a key was lost on reopen")?;
    println!(
        "store.{name}.reopen.k{keys}: {:.1} ms",
        ms(started.elapsed())
    );
    Ok(())
}

pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints `name.p50` and `name.p99` of `all`, in milliseconds.
pub fn print_latencies(name: &str, mut all: Vec<Duration>) {
    all.sort_unstable();
    println!("{name}.p50: {:.1} ms", ms(percentile(&all, 0.5)));
    println!("{name}.p99: {:.1} ms", ms(percentile(&all, 0.99)));
}

/// An API server on an embedded store in a scratch directory, for benchmarks that need the
/// API; both go away when it is dropped.
pub struct ScratchServer {
    pub client: kube::Client,
    /// What `client` was made from (for clients of other kinds).
    pub config: kube::Config,
    pub server: rkube_apiserver::ApiServer,
    pub dir: tempfile::TempDir,
}

impl ScratchServer {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a scratch dir")?;
        let store = rkube_store::Backend::Embedded(dir.path().to_owned())
            .open()
            .await?;
        let server = rkube_apiserver::ApiServer::start(rkube_apiserver::Config {
            token: None,
            data_dir: dir.path().to_owned(),
            https_port: 0,
            bind_address: std::net::Ipv4Addr::LOCALHOST.into(),
            store,
            admission: rkube_apiserver::admission::AdmissionConfig::default(),
            service_network: rkube_apiserver::services::ServiceNetworkConfig::default(),
        })
        .await?;
        // The kubeconfig names the configured port; the server took a free one.
        let kubeconfig = kube::config::Kubeconfig::read_from(&server.admin_kubeconfig)?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        config.cluster_url = format!("https://{}", server.local_addr).parse()?;
        Ok(Self {
            client: kube::Client::try_from(config.clone())?,
            config,
            server,
            dir,
        })
    }
}

/// Runs `count` jobs on `clients` concurrent tasks.
pub async fn concurrently<F, Fut>(count: usize, clients: usize, job: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let job = Arc::new(job);
    let clients = clients.max(1);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            for i in (c..count).step_by(clients) {
                job(i).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}
