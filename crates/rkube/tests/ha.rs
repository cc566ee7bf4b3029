//! A highly available control plane: two `rkube server`s on one etcd. The second joins with
//! the first's token and takes the cluster's CA and signing key from the store's bootstrap
//! data. Both serve the same objects; their controller managers and schedulers elect one
//! leader; when the leader's server dies, the other takes over.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::time::Duration;

use rkube_store::local_etcd::{LocalEtcd, etcd_installed};

fn became_leader(log: &str, lease: &str) -> bool {
    log.lines()
        .any(|l| l.contains("became leader") && l.contains(lease))
}

#[test]
fn two_servers_on_one_etcd_survive_losing_the_leader() {
    if !etcd_installed() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "etcd is not installed but CI=true: apt-get install etcd-server"
        );
        eprintln!("SKIPPED: etcd is not installed");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let etcd = LocalEtcd::start(&scratch.path().join("etcd")).unwrap();
    let endpoint = etcd.endpoint();
    let args = [
        &["--datastore-endpoint", &endpoint][..],
        &common::SHORT_LEASES[..],
    ]
    .concat();
    let Some(mut first) = common::start_with(&args) else {
        return;
    };
    first.eventually("the first server leads", Duration::from_secs(20), || {
        let log = first.log();
        (became_leader(&log, "kube-controller-manager") && became_leader(&log, "kube-scheduler"))
            .then_some(())
            .ok_or_default()
    });
    // Without the token, a new server refuses to join the cluster it finds in the store.
    let stranger = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args([
            "server",
            "--disable-agent",
            "--bind-address",
            "127.0.0.1",
            "--https-port",
            "0",
        ])
        .arg("--data-dir")
        .arg(stranger.path())
        .args(["--datastore-endpoint", &endpoint])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains(
                "rkube: the datastore already holds a cluster: start this server with --token"
            ),
        "{stderr}"
    );
    let token = std::fs::read_to_string(first.data_dir().join("node-token")).unwrap();
    let mut joined = args.clone();
    joined.extend(["--token", token.trim()]);
    let Some(second) = common::start_with(&joined) else {
        return;
    };
    // The same CA, taken from the store.
    assert_eq!(
        std::fs::read_to_string(second.data_dir().join("tls/ca.crt")).unwrap(),
        std::fs::read_to_string(first.data_dir().join("tls/ca.crt")).unwrap()
    );

    // One store: what is written through one server is read through the other.
    first.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {k: v}\n"),
    );
    second.eventually("the second server sees it", Duration::from_secs(10), || {
        let got = second.kubectl(&["get", "cm", "shared", "-o", "jsonpath={.data.k}"]);
        (got == "v").then_some(()).ok_or(got)
    });
    // The second server does not lead while the first renews.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !became_leader(&second.log(), "kube-controller-manager"),
        "{}",
        second.log()
    );

    // A service-account token issued by the first server...
    let token = first.kubectl(&["-n", "default", "create", "token", "default"]);

    // The first server dies: the second's control loops take over and act.
    first.kill();
    second.eventually("the second server leads", Duration::from_secs(30), || {
        let log = second.log();
        (became_leader(&log, "kube-controller-manager") && became_leader(&log, "kube-scheduler"))
            .then_some(())
            .ok_or_default()
    });
    second.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: after}\n"),
    );
    second.eventually("the new leader acts", Duration::from_secs(20), || {
        let out = second.kubectl_raw(&["-n", "after", "get", "serviceaccount", "default"], None);
        out.status
            .success()
            .then_some(())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    // ...is valid on the second (shared keys).
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(second.data_dir().join("tls/ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .arg(format!("{}/apis", second.server_url()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    drop(etcd);
}

trait OkOrDefault {
    fn ok_or_default(self) -> Result<(), String>;
}

impl OkOrDefault for Option<()> {
    fn ok_or_default(self) -> Result<(), String> {
        self.ok_or_else(String::new)
    }
}
