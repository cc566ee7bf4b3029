//! A multi-node lab on one machine: a bridge in the host's network namespace with the
//! server's address, and one network namespace per node joined to it by a veth pair, each
//! with its own address, so traffic between nodes really crosses a network. Everything the
//! lab makes is named after it and removed when it is dropped.

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::Cluster;

static LABS: AtomicU32 = AtomicU32::new(0);

/// One node's network namespace.
pub struct LabNode {
    pub name: String,
    pub netns: String,
    pub ip: String,
    processes: Vec<Child>,
}

/// The lab: its bridge, its nodes and the server behind them.
pub struct Lab {
    pub bridge: String,
    /// The host's (the server's) address on the bridge.
    pub host_ip: String,
    pub nodes: Vec<LabNode>,
    pub cluster: Cluster,
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A command that runs in the network namespace `netns` and nowhere else: `nsenter`, not
/// `ip netns exec`, which also gives the command a mount namespace with a /sys of that
/// network namespace, where runc finds no cgroup mounts.
fn in_netns(netns: &str) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{netns}"));
    cmd
}

/// Whether this process may make network namespaces (root with iproute2 and nsenter).
pub fn available() -> bool {
    let root = std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    root && Command::new("ip").arg("-V").output().is_ok()
        && Command::new("nsenter").arg("--version").output().is_ok()
}

impl Lab {
    /// Makes the bridge and `nodes` namespaces, then starts a server listening on all
    /// addresses with `extra_args`. `None` (after saying so) where labs cannot be made
    /// outside CI; under CI=true that fails the test.
    pub fn start(nodes: usize, extra_args: &[&str]) -> Option<Lab> {
        if !available() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the multi-node lab needs root, iproute2 and nsenter, but CI=true"
            );
            eprintln!("SKIPPED: the multi-node lab needs root, iproute2 and nsenter");
            return None;
        }
        // A subnet and names of its own: 172.31.X.0/24, X from the pid and a counter.
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let id = (std::process::id() * 7 + n) % 200 + 20;
        let bridge = format!("rkl{id}");
        let host_ip = format!("172.31.{id}.1");
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        run(&["ip", "link", "add", &bridge, "type", "bridge"]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &bridge,
        ]);
        run(&["ip", "link", "set", &bridge, "up"]);
        let mut made = Vec::new();
        for i in 0..nodes {
            let name = format!("lab{id}-node{i}");
            let netns = format!("rkl{id}n{i}");
            let ip = format!("172.31.{id}.{}", 10 + i);
            let host_end = format!("rkl{id}h{i}");
            let _ = Command::new("ip").args(["netns", "del", &netns]).output();
            run(&["ip", "netns", "add", &netns]);
            run(&[
                "ip", "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns",
                &netns,
            ]);
            run(&["ip", "link", "set", &host_end, "master", &bridge, "up"]);
            let exec = |cmd: &[&str]| {
                let mut full = vec!["ip", "netns", "exec", &netns];
                full.extend_from_slice(cmd);
                run(&full);
            };
            exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            exec(&["ip", "link", "set", "eth0", "up"]);
            exec(&["ip", "link", "set", "lo", "up"]);
            exec(&["ip", "route", "add", "default", "via", &host_ip]);
            made.push(LabNode {
                name,
                netns,
                ip,
                processes: Vec::new(),
            });
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = super::start_at("0.0.0.0", port, extra_args)?;
        Some(Lab {
            bridge,
            host_ip,
            nodes: made,
            cluster,
        })
    }

    /// The server's URL as the nodes reach it.
    pub fn server_url(&self) -> String {
        format!("https://{}:{}", self.host_ip, self.cluster.port)
    }

    /// Runs a command in a node's namespace.
    pub fn exec(&self, node: usize, cmd: &[&str]) -> Output {
        in_netns(&self.nodes[node].netns)
            .args(cmd)
            .output()
            .unwrap()
    }

    /// Starts a long-running command in a node's namespace (stopped with the lab), its
    /// output appended to `log` under the server's data dir; returns its process id.
    pub fn spawn(&mut self, node: usize, cmd: &[&str], log: &str) -> u32 {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cluster.data_dir().join(log))
            .unwrap();
        let child = in_netns(&self.nodes[node].netns)
            .args(cmd)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.nodes[node].processes.push(child);
        pid
    }

    /// Stops a process [`Lab::spawn`] started (SIGTERM) and waits for it; its exit status.
    pub fn terminate(&mut self, node: usize, pid: u32) -> std::process::ExitStatus {
        let processes = &mut self.nodes[node].processes;
        let index = processes.iter().position(|p| p.id() == pid).unwrap();
        let mut child = processes.remove(index);
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        child.wait().unwrap()
    }

    /// The text of a log [`Lab::spawn`] wrote.
    pub fn log(&self, log: &str) -> String {
        std::fs::read_to_string(self.cluster.data_dir().join(log)).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            for p in &mut node.processes {
                let _ = Command::new("kill")
                    .args(["-TERM", &p.id().to_string()])
                    .status();
            }
            for p in &mut node.processes {
                let _ = p.wait();
            }
            let _ = Command::new("ip")
                .args(["netns", "del", &node.netns])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}
