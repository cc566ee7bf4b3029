//! Starts a real `rkube server` for end-to-end tests and drives it with real kubectl.

#![allow(dead_code, clippy::unwrap_used)] // shared by several test binaries; tests fail by panicking

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod images;
pub mod lab;

/// kubectl 1.33, from `KUBECTL` or the machine's google-cloud-sdk install.
pub fn kubectl_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KUBECTL") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from("/usr/lib/google-cloud-sdk/bin/kubectl.1.33");
    p.exists().then_some(p)
}

/// Polls `check` every 100 ms until it holds, or fails the test with what it last saw.
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let started = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if started.elapsed() > timeout => {
                panic!("{what}: still not true after {timeout:?}: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Leader-election flags with short leases, so failover tests take seconds.
pub const SHORT_LEASES: [&str; 6] = [
    "--leader-elect-lease-duration",
    "3",
    "--leader-elect-renew-deadline",
    "2",
    "--leader-elect-retry-period",
    "1",
];

/// The rkube binary under test: `RKUBE_BIN` if set (a copy other builds cannot replace
/// mid-run), else the one cargo built for this test.
pub fn rkube_bin() -> PathBuf {
    std::env::var_os("RKUBE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rkube")))
}

/// A running server in a scratch data dir. Killed when dropped.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    kubectl: PathBuf,
    extra_args: Vec<String>,
    /// The address the server binds (127.0.0.1 unless [`start_at`] says otherwise).
    pub bind: String,
    /// Runs its own node (containerd); the other suites run `--disable-agent`.
    agent: bool,
}

/// Starts a server, or returns `None` (after saying so) when kubectl is absent outside CI.
pub fn start() -> Option<Cluster> {
    start_with(&[])
}

/// Starts a server with extra `rkube server` arguments, without its node agent.
pub fn start_with(extra_args: &[&str]) -> Option<Cluster> {
    let port = free_port();
    start_cluster("127.0.0.1", port, extra_args, false, |_| {})
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a server bound to `bind:port` (any 127.x.y.z address works on Linux, so several
/// servers can share one port on different loopback addresses).
pub fn start_at(bind: &str, port: u16, extra_args: &[&str]) -> Option<Cluster> {
    start_cluster(bind, port, extra_args, false, |_| {})
}

/// Starts a server that runs its node agent (on containerd), with extra arguments, after
/// `prepare` has had the fresh data dir.
pub fn start_with_agent(extra_args: &[&str], prepare: impl FnOnce(&Path)) -> Option<Cluster> {
    start_cluster("127.0.0.1", free_port(), extra_args, true, prepare)
}

fn start_cluster(
    bind: &str,
    port: u16,
    extra_args: &[&str],
    agent: bool,
    prepare: impl FnOnce(&Path),
) -> Option<Cluster> {
    let Some(kubectl) = kubectl_path() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kubectl 1.33 is missing but CI=true: set KUBECTL or install google-cloud-sdk's kubectl"
        );
        eprintln!("SKIPPED: kubectl 1.33 not found (set KUBECTL)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster {
        dir,
        port,
        child: None,
        kubectl,
        extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
        bind: bind.to_owned(),
        agent,
    };
    prepare(cluster.dir.path());
    cluster.boot();
    Some(cluster)
}

impl Cluster {
    /// Like [`eventually`], with the end of the server's log in the failure.
    pub fn eventually(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Result<(), String>,
    ) {
        let started = Instant::now();
        loop {
            match check() {
                Ok(()) => return,
                Err(last) if started.elapsed() > timeout => {
                    let log = self.log();
                    let lines: Vec<&str> = log.lines().collect();
                    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                    panic!("{what}: still not true after {timeout:?}: {last}\nserver log:\n{tail}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }

    pub fn server_url(&self) -> String {
        format!("https://{}:{}", self.bind, self.port)
    }

    /// Starts the server process and waits until it is ready.
    pub fn boot(&mut self) {
        // Appended: a restarted server's log follows the first one's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(rkube_bin())
            .arg("server")
            .args(if self.agent {
                None
            } else {
                Some("--disable-agent")
            })
            .args(["--bind-address", &self.bind])
            .arg("--https-port")
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(&self.extra_args)
            // Cluster DNS on a free port, so parallel servers do not collide.
            .args(
                if self.extra_args.iter().any(|a| a == "--cluster-dns-port") {
                    &[][..]
                } else {
                    &["--cluster-dns-port", "0"][..]
                },
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.kubeconfig().exists() {
                let out = self.kubectl_raw(&["get", "--raw", "/readyz"], None);
                if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rkube server exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "server not ready in 60s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server with SIGTERM, as an operator does, and waits for it to exit.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.wait();
        }
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Merges `status` (JSON) into a node's status, as its kubelet would.
    pub fn patch_node_status(&self, node: &str, status: &str) {
        self.kubectl(&[
            "patch",
            "node",
            node,
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(r#"{{"status":{status}}}"#),
        ]);
    }

    /// Runs kubectl with the admin kubeconfig and optional stdin.
    pub fn kubectl_raw(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .env("HOME", self.dir.path()) // a private discovery cache
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs kubectl and returns stdout, failing the test if kubectl fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_raw(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn kubectl_fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_raw(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed but printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Spawns kubectl in the background (for `get -w`).
    pub fn kubectl_spawn(&self, args: &[&str]) -> Child {
        Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .env("HOME", self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Sends a raw HTTPS request with the admin certificate: (status code, body).
    pub fn curl(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let tls = self.dir.path().join("tls");
        let body_file = self.dir.path().join("curl-body");
        std::fs::write(&body_file, body).unwrap();
        let out = Command::new("curl")
            .args(["-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}"])
            .arg("--cacert")
            .arg(tls.join("ca.crt"))
            .arg("--cert")
            .arg(tls.join("admin.crt"))
            .arg("--key")
            .arg(tls.join("admin.key"))
            .args(["-H", &format!("Content-Type: {content_type}")])
            .arg("--data-binary")
            .arg(format!("@{}", body_file.display()))
            .arg(format!("{}{path}", self.server_url()))
            .output()
            .expect("curl is installed (scripts/setup-debian)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    pub fn kubectl_path(&self) -> &Path {
        &self.kubectl
    }
}

impl Drop for Cluster {
    /// Kills the server, then unmounts what its node left mounted in the data dir (the pods'
    /// tmpfs volumes), so the dir can go and later tests' runc calls do not read the mounts.
    fn drop(&mut self) {
        self.kill();
        unmount_under(self.dir.path());
    }
}

/// Unmounts every mount under `dir`, deepest first (the mount table as the kubelet reads it).
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = rkube_kubelet::volumes::tmpfs::mounts() else {
        return;
    };
    let mut points: Vec<PathBuf> = mounts
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in points {
        // Lazily (not as the kubelet's cleanup does): a process of the killed node that
        // still has it open does not keep it in the table.
        let _ = Command::new("umount")
            .arg("--lazy")
            .arg(&point)
            .stderr(Stdio::null())
            .status();
    }
}
