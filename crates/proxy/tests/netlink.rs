//! The netlink path against the kernel and `nft` itself: the same transactions applied
//! with `nft -f` to one table and over netlink to another must leave identical tables, as
//! `nft list table` prints them. Needs root and nft: skipped without them, a failure under
//! CI=true.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use rkube_proxy::model::{Endpoint, ServicePort};
use rkube_proxy::rules::{HairpinChange, Mode, Rendered, RuleConfig, render_service, transaction};
use rkube_proxy::{netlink, nft};

/// One test at a time: `nft list` dumps the whole ruleset, and a batch another test commits
/// during the dump interrupts it; nft 1.0 then lists some chains twice.
static KERNEL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn prerequisites() -> bool {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let has_nft = Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if is_root && has_nft {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the netlink tests need root and nft, but CI=true"
    );
    eprintln!("SKIPPED: the netlink tests need root and nft");
    false
}

fn cfg(table: &str) -> RuleConfig {
    RuleConfig {
        table: table.into(),
        cluster_cidr: Some("10.244.0.0/16".into()),
        pod_egress_masquerade: true,
    }
}

fn port(name: &str, protocol: &'static str, last: u8) -> ServicePort {
    ServicePort {
        namespace: "ns".into(),
        name: name.into(),
        port_name: "p".into(),
        protocol,
        cluster_ip: Ipv4Addr::new(10, 96, 7, last),
        port: 80,
        node_port: 0,
        external_ips: vec![],
        load_balancer_ips: vec![],
        affinity_timeout: None,
        external_local: false,
        internal_local: false,
    }
}

fn ep(last: u8, ready: bool, local: bool) -> Endpoint {
    Endpoint {
        ip: Ipv4Addr::new(10, 244, 7, last),
        port: 8080,
        ready,
        serving: ready,
        terminating: false,
        local,
    }
}

/// Services using every kind of rule the renderer writes.
fn services(cfg: &RuleConfig, generation: u8) -> Vec<Rendered> {
    let mut plain = port("plain", "tcp", 1);
    plain.node_port = 30071;
    let mut affinity = port("affinity", "udp", 2);
    affinity.affinity_timeout = Some(600 + u32::from(generation));
    let mut local = port("local", "tcp", 3);
    local.external_local = true;
    local.internal_local = true;
    local.node_port = 30073;
    local.external_ips = vec![Ipv4Addr::new(192, 0, 2, 73)];
    local.load_balancer_ips = vec![Ipv4Addr::new(192, 0, 2, 74)];
    let empty = port("empty", "sctp", 4);
    vec![
        render_service(
            cfg,
            &[(
                plain,
                (1..=2 + generation).map(|i| ep(i, true, false)).collect(),
            )],
        ),
        render_service(
            cfg,
            &[(affinity, vec![ep(1, true, false), ep(5, true, true)])],
        ),
        render_service(
            cfg,
            &[(
                local,
                vec![ep(6, true, true), ep(7, true, false), ep(8, false, true)],
            )],
        ),
        render_service(cfg, &[(empty, vec![ep(9, false, false)])]),
    ]
}

fn hairpin(rendered: &[Rendered]) -> HairpinChange {
    let mut add: Vec<Ipv4Addr> = rendered
        .iter()
        .flat_map(|r| r.hairpin.iter().copied())
        .collect();
    add.sort_unstable();
    add.dedup();
    HairpinChange {
        add,
        delete: vec![],
    }
}

fn list(table: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace(table, "TABLE")
}

fn delete(table: &str) {
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", table])
        .stderr(Stdio::null())
        .status();
}

/// The script of each step: recreate with every service, then a partial change of all of
/// them (endpoints added, an affinity timeout changed), then a full rewrite in place.
fn steps(cfg: &RuleConfig) -> Vec<String> {
    let first = services(cfg, 0);
    let second = services(cfg, 1);
    let none = Rendered::default();
    let created: Vec<(&Rendered, &Rendered)> = first.iter().map(|r| (&none, r)).collect();
    let changed: Vec<(&Rendered, &Rendered)> = first.iter().zip(&second).collect();
    let kept: Vec<(&Rendered, &Rendered)> = second.iter().map(|r| (r, r)).collect();
    vec![
        transaction(cfg, Mode::Recreate, &created, &hairpin(&first)).text,
        transaction(cfg, Mode::Partial, &changed, &HairpinChange::default()).text,
        transaction(cfg, Mode::Full, &kept, &hairpin(&second)).text,
    ]
}

#[tokio::test]
async fn netlink_batches_build_the_tables_nft_builds() {
    if !prerequisites() {
        return;
    }
    let _one_at_a_time = KERNEL.lock().await;
    let suffix = std::process::id();
    let (by_nft, by_netlink) = (format!("rkn-nft-{suffix}"), format!("rkn-nl-{suffix}"));
    let nft_steps = steps(&cfg(&by_nft));
    let netlink_steps = steps(&cfg(&by_netlink));
    for (i, (a, b)) in nft_steps.iter().zip(&netlink_steps).enumerate() {
        nft::apply_with_nft(a).await.unwrap();
        let batch = netlink::encode(b).unwrap();
        if let Err(failures) = netlink::send(&batch) {
            delete(&by_nft);
            delete(&by_netlink);
            panic!("step {i}: {failures:?}\n{b}");
        }
        let (want, got) = (list(&by_nft), list(&by_netlink));
        if want != got {
            delete(&by_nft);
            delete(&by_netlink);
        }
        assert_eq!(want, got, "step {i} differs");
        assert!(want.contains("dnat to 10.244.7.1:8080"), "{want}");
    }
    delete(&by_nft);
    delete(&by_netlink);
}

#[tokio::test]
async fn a_refused_command_fails_the_whole_batch_and_is_named() {
    if !prerequisites() {
        return;
    }
    let _one_at_a_time = KERNEL.lock().await;
    let table = format!("rkn-err-{}", std::process::id());
    let script = format!(
        "add table ip {table}\nadd chain ip {table} a\nadd rule ip {table} a goto missing\n"
    );
    let err = nft::apply(&script).await.unwrap_err().to_string();
    assert!(err.contains("goto missing"), "{err}");
    // Nothing of the batch was applied: not even the table.
    let listed = Command::new("nft")
        .args(["list", "table", "ip", &table])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!listed.success(), "the table exists after a failed batch");
}

#[tokio::test]
async fn element_lists_longer_than_an_attribute_are_split() {
    if !prerequisites() {
        return;
    }
    let _one_at_a_time = KERNEL.lock().await;
    let table = format!("rkn-long-{}", std::process::id());
    let cfg = cfg(&table);
    // 1,500 services: one `add element` command of 1,000 map elements is ~100 KiB.
    let rendered: Vec<Rendered> = (0..1500u32)
        .map(|i| {
            let mut sp = port(&format!("a-rather-long-service-name-{i}"), "tcp", 0);
            sp.cluster_ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 97, 0, 0)) + i);
            render_service(&cfg, &[(sp, vec![ep(1, true, false)])])
        })
        .collect();
    let none = Rendered::default();
    let created: Vec<(&Rendered, &Rendered)> = rendered.iter().map(|r| (&none, r)).collect();
    let text = transaction(&cfg, Mode::Recreate, &created, &hairpin(&rendered)).text;
    // Straight to netlink: `nft::apply` would fall back to nft.
    let result = netlink::send(&netlink::encode(&text).unwrap());
    let listed = Command::new("nft")
        .args(["list", "map", "ip", &table, "service-ips"])
        .output()
        .unwrap();
    delete(&table);
    assert!(result.is_ok(), "{result:?}");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.matches(": goto service-").count(), 1500, "{listed}");
}
