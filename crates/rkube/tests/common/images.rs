//! What real nodes need in the tests: the packages a node runs on, and a busybox image
//! built from Debian's static busybox (no registry is reachable).

use std::path::Path;

use rkube_kubelet::oci::{self, Entry, RunConfig};

/// The applets the test image links to busybox.
pub const APPLETS: &[&str] = &[
    "sh", "ash", "httpd", "sleep", "echo", "nc", "cat", "wget", "ls", "true", "false", "env", "id",
    "hostname", "ps", "kill", "seq", "head", "tail", "tr", "grep", "mkdir", "date", "touch", "rm",
    "test", "tar",
];

/// What a real node needs: `Err` names what is missing.
pub fn node_prerequisites() -> Result<(), String> {
    let installed = |p: &str| Path::new(p).exists();
    let missing: Vec<&str> = [
        ("/usr/bin/containerd", "containerd"),
        ("/usr/bin/ctr", "containerd (ctr)"),
        ("/usr/sbin/runc", "runc"),
        ("/usr/lib/cni/bridge", "containernetworking-plugins"),
        ("/bin/busybox", "busybox-static"),
    ]
    .into_iter()
    .filter(|(path, _)| !installed(path))
    .map(|(_, package)| package)
    .collect();
    if !missing.is_empty() {
        return Err(format!("not installed: {}", missing.join(", ")));
    }
    let root = std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::read_to_string("/proc/self/status")
            .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")));
    if !root {
        return Err("the node agent needs root".into());
    }
    Ok(())
}

/// An image name as containerd stores it.
pub fn full(image: &str) -> String {
    format!("docker.io/library/{image}")
}

/// A one-layer image of Debian's static busybox: its applets as symlinks, a page to serve.
pub fn busybox_archive(reference: &str) -> Vec<u8> {
    busybox_archive_with(reference, &[])
}

/// [`busybox_archive`] with more applets linked.
pub fn busybox_archive_with(reference: &str, extra_applets: &[&str]) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let mut entries = vec![
        Entry::Dir { path: "bin".into() },
        Entry::Dir { path: "tmp".into() },
        Entry::Dir { path: "www".into() },
        Entry::File {
            path: "bin/busybox".into(),
            mode: 0o755,
            data: busybox,
        },
        Entry::File {
            path: "www/index.html".into(),
            mode: 0o644,
            data: b"hello from rkube\n".to_vec(),
        },
    ];
    entries.extend(
        APPLETS
            .iter()
            .chain(extra_applets)
            .map(|applet| Entry::Symlink {
                path: format!("bin/{applet}"),
                target: "busybox".into(),
            }),
    );
    oci::archive(
        reference,
        &entries,
        &RunConfig {
            cmd: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            ..RunConfig::default()
        },
    )
    .unwrap()
}
