//! `rkube bench proxy`: how long the proxy takes to program the kernel, through real `nft`
//! on a scratch table (root and nftables needed): a full sync of many services, and single
//! EndpointSlice changes (partial syncs) with all of them present. Then the whole path, as
//! a change reaches a node: the proxy runs against an API server holding the services and
//! their EndpointSlices, and each change is timed from its write through the API until its
//! rules are in the kernel.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rkube_controllers::Stop;
use rkube_proxy::Synced;
use rkube_proxy::model::{Endpoint, ServicePort};
use rkube_proxy::proxier::Proxier;
use rkube_proxy::rules::{Rendered, RuleConfig, render_service};
use serde_json::json;

use crate::bench::{ScratchServer, concurrently, ms, print_latencies};

#[derive(clap::Args, Debug)]
pub struct ProxyBenchArgs {
    /// Service counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub services: Vec<usize>,
    /// Endpoints per service (the shape: 2).
    #[arg(long, default_value_t = 2)]
    pub endpoints: usize,
    /// Single-service changes measured per size.
    #[arg(long, default_value_t = 100)]
    pub changes: usize,
    /// Skip the measurement through the API server (EndpointSlice write to kernel).
    #[arg(long)]
    pub no_api: bool,
}

fn service(cfg: &RuleConfig, i: usize, endpoints: usize, ready_mask: u64) -> (String, Rendered) {
    let port = ServicePort {
        namespace: "bench".into(),
        name: format!("svc-{i}"),
        port_name: "http".into(),
        protocol: "tcp",
        cluster_ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i as u32 + 1),
        port: 80,
        node_port: 0,
        external_ips: vec![],
        load_balancer_ips: vec![],
        affinity_timeout: None,
        external_local: false,
        internal_local: false,
    };
    let eps = (0..endpoints)
        .map(|e| {
            let n = (i * endpoints + e) as u32;
            let ready = ready_mask & (1 << (e % 64)) != 0;
            Endpoint {
                ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 100, 0, 0)) + n),
                port: 8080,
                ready,
                serving: ready,
                terminating: false,
                local: false,
            }
        })
        .collect();
    (
        format!("bench/svc-{i}"),
        render_service(cfg, &[(port, eps)]),
    )
}

pub async fn proxy(args: ProxyBenchArgs) -> anyhow::Result<()> {
    let cfg = RuleConfig {
        table: format!("rkube-proxy-bench-{}", std::process::id()),
        cluster_cidr: Some("10.100.0.0/16".into()),
        pod_egress_masquerade: true,
    };
    let mut result = run(&cfg, &args).await;
    let _ = rkube_proxy::nft::delete_table("ip", &cfg.table).await;
    if result.is_ok() && !args.no_api {
        result = through_the_api(&cfg, &args).await;
        let _ = rkube_proxy::nft::delete_table("ip", &cfg.table).await;
    }
    result
}

async fn run(cfg: &RuleConfig, args: &ProxyBenchArgs) -> anyhow::Result<()> {
    for &count in &args.services {
        let _ = rkube_proxy::nft::delete_table("ip", &cfg.table).await;
        let eps = args.endpoints;
        let all_ready = u64::MAX;
        let desired: HashMap<String, Rendered> = (0..count)
            .map(|i| service(cfg, i, eps, all_ready))
            .collect();
        let mut proxier = Proxier::new(cfg.clone());
        let started = Instant::now();
        proxier
            .sync_all(desired.clone())
            .await
            .context("first full sync (root and nftables needed)")?;
        let first = started.elapsed();
        let started = Instant::now();
        proxier.sync_all(desired).await.context("full resync")?;
        let resync = started.elapsed();
        println!("proxy.full_sync.s{count}.e{eps}: {:.1} ms", ms(first));
        println!("proxy.full_resync.s{count}.e{eps}: {:.1} ms", ms(resync));

        let mut latencies = Vec::with_capacity(args.changes);
        let mut flipped: HashMap<usize, bool> = HashMap::new();
        for n in 0..args.changes {
            let i = (n * 7919) % count.max(1);
            // Flip one endpoint's readiness, as an EndpointSlice update does.
            let state = flipped.entry(i).or_insert(false);
            *state = !*state;
            let mask = if *state { all_ready & !1 } else { all_ready };
            // Timed from the change: rendering the service is part of it.
            let started = Instant::now();
            let change = service(cfg, i, eps, mask);
            proxier.sync_changed(vec![change]).await?;
            latencies.push(started.elapsed());
            if proxier.has_emptied() {
                proxier.delete_emptied().await;
            }
        }
        print_latencies(&format!("proxy.partial_sync.s{count}.e{eps}"), latencies);
    }
    Ok(())
}

fn slice_json(i: usize, endpoints: usize, first_ready: bool) -> serde_json::Value {
    let endpoints: Vec<_> = (0..endpoints)
        .map(|e| {
            let n = (i * endpoints + e) as u32;
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 100, 0, 0)) + n);
            let ready = e != 0 || first_ready;
            json!({"addresses": [ip.to_string()], "conditions": {"ready": ready, "serving": ready}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("svc-{i}-abc"),
            "labels": {"kubernetes.io/service-name": format!("svc-{i}")},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

/// Services and EndpointSlices in an API server, the proxy watching them; each change is
/// an EndpointSlice written through the API, timed until the proxy reports its rules in the
/// kernel.
async fn through_the_api(cfg: &RuleConfig, args: &ProxyBenchArgs) -> anyhow::Result<()> {
    let eps = args.endpoints;
    for &count in &args.services {
        let scratch = ScratchServer::start().await?;
        let client = scratch.client.clone();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "bench"}}))?;
        namespaces.create(&PostParams::default(), &ns).await?;
        let created = Instant::now();
        let services: Api<Service> = Api::namespaced(client.clone(), "bench");
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "bench");
        concurrently(count, 16, move |i| {
            let (services, slices) = (services.clone(), slices.clone());
            async move {
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": format!("svc-{i}")},
                    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
                }))?;
                services.create(&PostParams::default(), &svc).await?;
                let slice: EndpointSlice = serde_json::from_value(slice_json(i, eps, true))?;
                slices.create(&PostParams::default(), &slice).await?;
                Ok(())
            }
        })
        .await
        .context("creating services and EndpointSlices")?;
        tracing::info!(count, elapsed = ?created.elapsed(), "services created");

        let (tx, mut synced) = tokio::sync::mpsc::unbounded_channel();
        let mut options = rkube_proxy::ProxyOptions::new("bench-node");
        options.table = cfg.table.clone();
        options.cluster_cidr = cfg.cluster_cidr.clone();
        options.route_protocol = None;
        options.on_sync = Some(tx);
        let (stop_handle, stop) = Stop::new();
        let started = Instant::now();
        let mut proxy = tokio::spawn(rkube_proxy::run(client.clone(), options, stop));
        loop {
            tokio::select! {
                report = synced.recv() => match report {
                    Some(Synced::Full) => break,
                    Some(Synced::Partial(_)) => {}
                    None => anyhow::bail!("the proxy stopped before its first sync"),
                },
                result = &mut proxy => {
                    result.context("the proxy panicked")??;
                    anyhow::bail!("the proxy stopped before its first sync");
                }
            }
        }
        println!(
            "proxy.api.first_sync.s{count}.e{eps}: {:.1} ms",
            ms(started.elapsed())
        );

        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "bench");
        let mut latencies = Vec::with_capacity(args.changes);
        let mut writes = Vec::with_capacity(args.changes);
        let mut flipped: HashMap<usize, bool> = HashMap::new();
        for n in 0..args.changes {
            // Single changes, not a burst: past the proxy's min-sync-period (50 ms), which
            // holds a change that follows a sync closely so that a burst is applied at once.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let i = (n * 7919) % count.max(1);
            let state = flipped.entry(i).or_insert(false);
            *state = !*state;
            let key = format!("bench/svc-{i}");
            let patch = json!({"endpoints": slice_json(i, eps, !*state)["endpoints"]});
            let started = Instant::now();
            slices
                .patch(
                    &format!("svc-{i}-abc"),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await?;
            writes.push(started.elapsed());
            let wait = async {
                while let Some(report) = synced.recv().await {
                    if let Synced::Partial(keys) = report
                        && keys.contains(&key)
                    {
                        return Ok(());
                    }
                }
                anyhow::bail!("the proxy stopped")
            };
            tokio::time::timeout(Duration::from_secs(30), wait)
                .await
                .with_context(|| {
                    format!("{key}: no sync 30 s after its EndpointSlice changed")
                })??;
            latencies.push(started.elapsed());
        }
        drop(stop_handle);
        let _ = tokio::time::timeout(Duration::from_secs(10), proxy).await;
        print_latencies(&format!("proxy.api.slice_write.s{count}.e{eps}"), writes);
        print_latencies(
            &format!("proxy.api.slice_to_kernel.s{count}.e{eps}"),
            latencies,
        );
    }
    Ok(())
}
