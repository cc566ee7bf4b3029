//! `rkube bench scheduler`: scheduling throughput in the shapes of kube's scheduler_perf
//! (SchedulingBasic, SchedulingPodAntiAffinity, TopologySpreading): an in-process API
//! server with the embedded store, thousands of Node objects, pods already placed, then
//! pods created by many concurrent clients. The figure is pods/s from the first create to
//! the last binding seen in a watch.

use std::collections::{BTreeMap, HashSet};
use std::pin::pin;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::bench::{ScratchServer, concurrently};

#[derive(clap::Args, Debug)]
pub struct SchedulerBenchArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// Pods placed before the measurement.
    #[arg(long, default_value_t = 1000)]
    pub existing_pods: usize,
    /// Pods measured (basic and topology spread).
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Pods measured with required anti-affinity: one per node, so the existing and the
    /// measured pods together must not outnumber the nodes (scheduler_perf: 1,000 and
    /// 1,000 on 5,000 nodes).
    #[arg(long, default_value_t = 1000)]
    pub anti_affinity_pods: usize,
    /// Concurrent clients creating pods.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Workloads to run: basic, anti-affinity, topology-spread.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "basic,anti-affinity,topology-spread"
    )]
    pub workloads: Vec<String>,
    /// The scheduler's percentageOfNodesToScore (adaptive when unset).
    #[arg(long)]
    pub percentage_of_nodes_to_score: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// scheduler_perf's pod-default.yaml.
    Basic,
    /// pod-with-pod-anti-affinity.yaml: every pod repels every other by hostname.
    AntiAffinity,
    /// pod-with-topology-spreading.yaml: maxSkew 5 over three zones.
    Spread,
}

impl Shape {
    fn name(&self) -> &'static str {
        match self {
            Shape::Basic => "basic",
            Shape::AntiAffinity => "anti_affinity",
            Shape::Spread => "topology_spread",
        }
    }
}

const ZONE: &str = "topology.kubernetes.io/zone";

fn node(name: &str, zones: bool) -> Node {
    let mut labels = BTreeMap::from([("kubernetes.io/hostname".to_owned(), name.to_owned())]);
    if zones {
        let n: usize = name.trim_start_matches("node-").parse().unwrap_or(0);
        labels.insert(ZONE.to_owned(), format!("moon-{}", n % 3 + 1));
    }
    Node {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn node_status() -> serde_json::Value {
    let resources = json!({"pods": "110", "cpu": "4", "memory": "32Gi"});
    json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True"}],
        "phase": "Running",
    }})
}

fn pod(name: &str, shape: Shape) -> anyhow::Result<Pod> {
    let resources = json!({"limits": {"cpu": "100m", "memory": "500Mi"},
                           "requests": {"cpu": "100m", "memory": "500Mi"}});
    let container = json!({"name": "pause", "image": "registry.k8s.io/pause:3.10",
                           "ports": [{"containerPort": 80}], "resources": resources});
    let value = match shape {
        Shape::Basic => json!({
            "metadata": {"name": name},
            "spec": {"containers": [container]},
        }),
        Shape::AntiAffinity => json!({
            "metadata": {"name": name, "labels": {"color": "green"}},
            "spec": {
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"color": "green"}},
                    "topologyKey": "kubernetes.io/hostname",
                    "namespaces": ["sched-1", "sched-0"],
                }]}},
                "containers": [container],
            },
        }),
        Shape::Spread => json!({
            "metadata": {"name": name, "labels": {"color": "blue"}},
            "spec": {
                "topologySpreadConstraints": [{
                    "maxSkew": 5,
                    "topologyKey": ZONE,
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"color": "blue"}},
                }],
                "containers": [container],
            },
        }),
    };
    Ok(serde_json::from_value(value)?)
}

/// Creates pods in a namespace and waits for all of them to be bound: (seconds creating,
/// seconds from the first create to the last binding).
async fn create_and_wait(
    client: &Client,
    namespace: &str,
    count: usize,
    shape: Shape,
    clients: usize,
) -> anyhow::Result<(f64, f64)> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut events = pin!(watcher(api.clone(), watcher::Config::default()));
    // The watch is in place before the first create.
    loop {
        match events.next().await {
            Some(Ok(Event::InitDone)) => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("watching pods"),
            None => anyhow::bail!("the pod watch ended"),
        }
    }
    let started = Instant::now();
    let creator = tokio::spawn({
        let api = api.clone();
        let namespace = namespace.to_owned();
        async move {
            concurrently(count, clients, move |i| {
                let api = api.clone();
                let name = format!("{namespace}-pod-{i:06}");
                async move {
                    api.create(&PostParams::default(), &pod(&name, shape)?)
                        .await
                        .with_context(|| format!("creating {name}"))?;
                    Ok(())
                }
            })
            .await?;
            anyhow::Ok(started.elapsed())
        }
    });
    let mut bound = HashSet::new();
    let deadline = Duration::from_secs(600);
    while bound.len() < count {
        let event = tokio::time::timeout(deadline, events.next())
            .await
            .with_context(|| format!("{} of {count} pods bound after {deadline:?}", bound.len()))?;
        match event {
            Some(Ok(Event::Apply(p) | Event::InitApply(p))) => {
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    bound.insert(p.name_any());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => tracing::warn!("pod watch: {e}"),
            None => anyhow::bail!("the pod watch ended"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let created = creator.await??.as_secs_f64();
    Ok((created, elapsed))
}

async fn run_workload(args: &SchedulerBenchArgs, shape: Shape) -> anyhow::Result<()> {
    let (existing, measured) = match shape {
        Shape::AntiAffinity => {
            let existing = args.existing_pods.min(args.nodes / 2);
            (existing, args.anti_affinity_pods.min(args.nodes - existing))
        }
        _ => (args.existing_pods, args.pods),
    };
    let scratch = ScratchServer::start().await?;
    let client = scratch.client.clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in ["sched-0", "sched-1"] {
        let object: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
        namespaces.create(&PostParams::default(), &object).await?;
    }

    let nodes_started = Instant::now();
    let zones = shape == Shape::Spread;
    let nodes: Api<Node> = Api::all(client.clone());
    concurrently(args.nodes, args.clients, move |i| {
        let nodes = nodes.clone();
        async move {
            let name = format!("node-{i:05}");
            nodes
                .create(&PostParams::default(), &node(&name, zones))
                .await?;
            nodes
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(node_status()))
                .await?;
            Ok(())
        }
    })
    .await
    .context("creating nodes")?;
    tracing::info!(nodes = args.nodes, elapsed = ?nodes_started.elapsed(), "nodes created");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = rkube_scheduler::SchedulerOptions {
        percentage_of_nodes_to_score: args.percentage_of_nodes_to_score,
        ..Default::default()
    };
    // The scheduler's client is `rkube server`'s: one HTTP/2 connection.
    let scheduler_client = crate::http2_client::client(scratch.config.clone())?;
    let scheduler = tokio::spawn(rkube_scheduler::run(scheduler_client, opts, async move {
        let _ = stop_rx.await;
    }));

    let existing_shape = if shape == Shape::AntiAffinity {
        Shape::AntiAffinity
    } else {
        Shape::Basic
    };
    if existing > 0 {
        let (_, secs) =
            create_and_wait(&client, "sched-0", existing, existing_shape, args.clients).await?;
        tracing::info!(pods = existing, seconds = secs, "existing pods placed");
    }
    let (created, elapsed) =
        create_and_wait(&client, "sched-1", measured, shape, args.clients).await?;
    let name = shape.name();
    println!(
        "scheduler.{name}.nodes{}.pods{measured}.throughput: {:.0} pods/s",
        args.nodes,
        measured as f64 / elapsed
    );
    println!(
        "scheduler.{name}.nodes{}.pods{measured}.create_rate: {:.0} pods/s",
        args.nodes,
        measured as f64 / created
    );
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(5), scheduler).await {
        Ok(Ok(Err(e))) => return Err(e).context("the scheduler failed"),
        Ok(Err(e)) => return Err(e).context("the scheduler panicked"),
        _ => {}
    }
    drop(scratch);
    Ok(())
}

pub async fn scheduler(args: SchedulerBenchArgs) -> anyhow::Result<()> {
    for w in &args.workloads {
        let shape = match w.as_str() {
            "basic" => Shape::Basic,
            "anti-affinity" => Shape::AntiAffinity,
            "topology-spread" => Shape::Spread,
            other => anyhow::bail!(
                "unknown workload {other:?}: expected basic, anti-affinity or topology-spread"
            ),
        };
        run_workload(&args, shape).await?;
    }
    Ok(())
}
