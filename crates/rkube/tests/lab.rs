//! The multi-node lab itself: nodes in their own network namespaces reach the server on the
//! bridge and each other, and the server's certificate is valid for its bridge address.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::lab::Lab;

#[test]
fn lab_nodes_reach_the_server_and_each_other() {
    let Some(lab) = Lab::start(2, &[]) else {
        return;
    };
    // Verified against the cluster CA: the serving certificate names the bridge address.
    let ca = lab.cluster.data_dir().join("tls/ca.crt");
    let url = format!("{}/readyz", lab.server_url());
    let out = lab.exec(
        0,
        &[
            "curl",
            "-s",
            "--max-time",
            "5",
            "--cacert",
            ca.to_str().unwrap(),
            &url,
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ping = lab.exec(1, &["ping", "-c", "1", "-W", "2", &lab.nodes[0].ip]);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    // Each node has its own address, not the host's.
    let addr = lab.exec(1, &["ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(String::from_utf8_lossy(&addr.stdout).contains(&lab.nodes[1].ip));
}
