//! `rkube bench proxy`: how long the proxy takes to program the kernel, through real `nft`
//! on a scratch table (root and nftables needed): a full sync of many services, and single
//! EndpointSlice changes (partial syncs) with all of them present.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rkube_proxy::model::{Endpoint, ServicePort};
use rkube_proxy::proxier::Proxier;
use rkube_proxy::rules::{Rendered, RuleConfig, render_service};

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
    let result = run(&cfg, &args).await;
    let _ = rkube_proxy::nft::delete_table("ip", &cfg.table).await;
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
        latencies.sort_unstable();
        println!(
            "proxy.partial_sync.s{count}.e{eps}.p50: {:.1} ms",
            ms(percentile(&latencies, 0.5))
        );
        println!(
            "proxy.partial_sync.s{count}.e{eps}.p99: {:.1} ms",
            ms(percentile(&latencies, 0.99))
        );
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
