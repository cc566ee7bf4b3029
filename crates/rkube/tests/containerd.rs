//! Real pods on a real node: `rkube server` with its agent, which runs its own containerd
//! (Debian's containerd and runc, CNI's bridge), driven by kubectl 1.33. The images are
//! built here from Debian's static busybox and loaded with `rkube image import`.
//!
//! The tests of this file run one at a time (one lock): every cluster's node gets the pod
//! CIDR 10.42.0.0/24 on the bridge `cni0`, which one host has once.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::Cluster;
use common::images::{busybox_archive, full, node_prerequisites as prerequisites};
use rkube_kubelet::cri::CriClient;
use serde_json::Value;

const BUSYBOX: &str = "busybox:e2e";
/// The same image, placed in DATA_DIR/agent/images before the server starts.
const PRELOADED: &str = "busybox:preloaded";

static SERIAL: Mutex<()> = Mutex::new(());

/// A server with a node (its own, or an `rkube agent` beside it), a scheduler, the busybox
/// images; cleaned up when dropped.
struct Node {
    cluster: Cluster,
    scheduler: Child,
    /// The `rkube agent` process of a standalone node.
    agent: Option<Child>,
    /// The node's data dir (the server's own when the server runs the node).
    node_dir: PathBuf,
    /// More flags for a standalone `rkube agent`.
    agent_args: Vec<&'static str>,
    _serial: MutexGuard<'static, ()>,
}

/// Writes the preloaded image where the node imports archives from at start.
fn preload(node_dir: &Path) {
    let images = node_dir.join("agent/images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(
        images.join("preloaded.tar"),
        busybox_archive(&full(PRELOADED)),
    )
    .unwrap();
}

impl Node {
    /// `rkube server` running its own node.
    fn start() -> Option<Node> {
        Self::start_as(false, &[])
    }

    /// `rkube server --disable-agent` and `rkube agent` beside it.
    fn start_standalone() -> Option<Node> {
        Self::start_as(true, &[])
    }

    /// A standalone agent with more flags.
    fn start_standalone_with(agent_args: &[&'static str]) -> Option<Node> {
        Self::start_as(true, agent_args)
    }

    fn start_as(standalone: bool, agent_args: &[&'static str]) -> Option<Node> {
        if let Err(reason) = prerequisites() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "containerd tests need their prerequisites under CI=true: {reason} (scripts/setup-debian installs them)"
            );
            eprintln!("SKIPPED: {reason}");
            return None;
        }
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Archives in DATA_DIR/agent/images are imported when the node starts.
        let cluster = if standalone {
            common::start()?
        } else {
            common::start_with_agent(
                &[
                    "--node-name",
                    "e2e-node",
                    "--kubelet-port",
                    "0",
                    // These tests do not use it, and the host's 80 and 443 may be taken.
                    "--disable-ingress",
                ],
                preload,
            )?
        };
        let node_dir = if standalone {
            let dir = cluster.data_dir().join("node");
            preload(&dir);
            dir
        } else {
            cluster.data_dir().to_owned()
        };
        let scheduler = Command::new(common::rkube_bin())
            .arg("scheduler")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(cluster.data_dir().join("scheduler.log")).unwrap())
            .spawn()
            .unwrap();
        let mut node = Node {
            cluster,
            scheduler,
            agent: None,
            node_dir,
            agent_args: agent_args.to_vec(),
            _serial: serial,
        };
        if standalone {
            node.start_agent();
        }
        node.cluster
            .eventually("the node is Ready", Duration::from_secs(60), || {
                let out = node.cluster.kubectl_raw(
                    &[
                        "get",
                        "node",
                        "e2e-node",
                        "-o",
                        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                    ],
                    None,
                );
                let ready = String::from_utf8_lossy(&out.stdout).into_owned();
                (ready == "True")
                    .then_some(())
                    .ok_or_else(|| format!("{ready}{}", String::from_utf8_lossy(&out.stderr)))
            });
        let archive = node.cluster.data_dir().join("busybox.tar");
        std::fs::write(&archive, busybox_archive(&full(BUSYBOX))).unwrap();
        let out = Command::new(common::rkube_bin())
            .args(["image", "import", "--data-dir"])
            .arg(&node.node_dir)
            .arg(&archive)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rkube image import: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        Some(node)
    }

    fn socket(&self) -> PathBuf {
        self.node_dir.join("agent/containerd/containerd.sock")
    }

    /// Starts `rkube agent` for the node, joining with the token.
    fn start_agent(&mut self) {
        let data = self.cluster.data_dir();
        let token = std::fs::read_to_string(data.join("node-token")).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("agent.log"))
            .unwrap();
        let child = Command::new(common::rkube_bin())
            .arg("agent")
            .args(["--server", &self.cluster.server_url()])
            .args(["--token", token.trim()])
            .arg("--ca-file")
            .arg(data.join("tls/ca.crt"))
            .arg("--data-dir")
            .arg(&self.node_dir)
            .args(["--node-name", "e2e-node", "--kubelet-port", "0"])
            .args(["--file-check-frequency", "1s"])
            .arg("--disable-ingress")
            .args(&self.agent_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.agent = Some(child);
    }

    /// Stops `rkube agent` with SIGTERM; it must exit cleanly.
    fn stop_agent(&mut self) {
        let Some(mut child) = self.agent.take() else {
            return;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = child.wait().unwrap();
        assert!(status.success(), "rkube agent exited with {status}");
    }

    fn agent_log(&self) -> String {
        std::fs::read_to_string(self.cluster.data_dir().join("agent.log")).unwrap_or_default()
    }

    fn apply(&self, yaml: &str) {
        self.cluster
            .kubectl_stdin(&["apply", "-f", "-"], Some(yaml));
    }

    fn pod(&self, name: &str) -> Value {
        let out = self.cluster.kubectl(&["get", "pod", name, "-o", "json"]);
        serde_json::from_str(&out).unwrap()
    }

    /// Waits until `check` holds of the pod's JSON.
    fn wait_pod(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        self.cluster
            .eventually(&format!("{name}: {what}"), Duration::from_secs(90), || {
                last = self.pod(name);
                check(&last)
                    .then_some(())
                    .ok_or_else(|| last["status"].to_string())
            });
        last
    }

    /// Sandboxes containerd has for the pod with this uid (through CRI).
    fn sandboxes_of(&self, uid: &str) -> usize {
        self.try_sandboxes_of(uid).unwrap()
    }

    fn try_sandboxes_of(&self, uid: &str) -> Result<usize, String> {
        let socket = self.socket();
        let uid = uid.to_owned();
        runtime().block_on(async move {
            let cri = CriClient::connect(&socket)
                .await
                .map_err(|e| e.to_string())?;
            cri.list_pod_sandboxes(&[("io.kubernetes.pod.uid", &uid)])
                .await
                .map(|s| s.len())
                .map_err(|e| e.to_string())
        })
    }

    /// The lines a container wrote, from the log file the runtime keeps in kube's layout.
    fn log_lines(&self, pod: &Value, container: &str) -> Vec<String> {
        let dir = format!(
            "{}_{}_{}",
            pod["metadata"]["namespace"].as_str().unwrap(),
            pod["metadata"]["name"].as_str().unwrap(),
            pod["metadata"]["uid"].as_str().unwrap()
        );
        let file = self
            .node_dir
            .join("agent/logs/pods")
            .join(dir)
            .join(container)
            .join("0.log");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // CRI's format: TIME STREAM TAG MESSAGE.
        text.lines()
            .filter_map(|l| l.splitn(4, ' ').nth(3).map(str::to_owned))
            .collect()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Drop for Node {
    /// Removes every sandbox (containers, network namespaces, CNI addresses and rules), stops
    /// the server and its containerd, deletes the bridge.
    fn drop(&mut self) {
        let socket = self.socket();
        if socket.exists() {
            runtime().block_on(async move {
                let Ok(cri) = CriClient::connect(&socket).await else {
                    return;
                };
                for sandbox in cri.list_pod_sandboxes(&[]).await.unwrap_or_default() {
                    let _ = cri.stop_pod_sandbox(&sandbox.id).await;
                    let _ = cri.remove_pod_sandbox(&sandbox.id).await;
                }
            });
        }
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
        if let Some(mut agent) = self.agent.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &agent.id().to_string()])
                .status();
            let _ = agent.wait();
        }
        self.cluster.terminate();
        let _ = Command::new("ip")
            .args(["link", "delete", "cni0"])
            .stderr(Stdio::null())
            .status();
    }
}

fn container<'a>(pod: &'a Value, list: &str, name: &str) -> &'a Value {
    pod["status"][list]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

/// GETs a URL from the host: the body, or what went wrong.
fn fetch(url: &str) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-m", "3", url])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let route = Command::new("ip")
            .args([
                "route",
                "get",
                url.trim_start_matches("http://")
                    .split(['/', ':'])
                    .next()
                    .unwrap_or(""),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        Err(format!(
            "curl {url}: {}; route: {route}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn an_httpd_pod_serves_on_its_pod_ip_and_is_cleaned_up_when_deleted() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  containers:
  - name: httpd
    image: {BUSYBOX}
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
"#
    ));
    let pod = node.wait_pod("web", "Running and Ready with a pod IP", |p| {
        p["status"]["phase"] == "Running"
            && p["status"]["podIP"].is_string()
            && container(p, "containerStatuses", "httpd")["ready"] == true
    });
    let ip = pod["status"]["podIP"].as_str().unwrap().to_owned();
    assert!(
        ip.starts_with("10.42.0."),
        "an address of the pod CIDR: {ip}"
    );
    assert_eq!(pod["status"]["hostIP"], pod["status"]["hostIPs"][0]["ip"]);
    let status = container(&pod, "containerStatuses", "httpd");
    assert!(
        status["containerID"]
            .as_str()
            .unwrap()
            .starts_with("containerd://"),
        "{status}"
    );
    assert_eq!(status["image"], full(BUSYBOX));
    let mut body = None;
    node.cluster
        .eventually("the pod answers on its IP", Duration::from_secs(20), || {
            let got = fetch(&format!("http://{ip}/"));
            body = got.as_ref().ok().cloned();
            got.map(|_| ())
        });
    assert_eq!(body.as_deref(), Some("hello from rkube\n"));
    // The node reports a real runtime and machine.
    let runtime = node.cluster.kubectl(&[
        "get",
        "node",
        "e2e-node",
        "-o",
        "jsonpath={.status.nodeInfo.containerRuntimeVersion}",
    ]);
    assert!(runtime.starts_with("containerd://1."), "{runtime}");

    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(node.sandboxes_of(&uid), 1);
    node.cluster.kubectl(&["delete", "pod", "web"]);
    node.cluster.eventually(
        "containerd has nothing left of the pod",
        Duration::from_secs(30),
        || match node.sandboxes_of(&uid) {
            0 => Ok(()),
            n => Err(format!("{n} sandboxes")),
        },
    );
    let out = Command::new("ctr")
        .arg("--address")
        .arg(node.socket())
        .args(["-n", "k8s.io", "containers", "ls", "-q"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    assert!(fetch(&format!("http://{ip}/")).is_err(), "nothing answers");
    let logs = node.node_dir.join("agent/logs/pods");
    node.cluster
        .eventually(
            "the pod's logs are gone",
            Duration::from_secs(10),
            || match std::fs::read_dir(&logs).map(|d| d.count()) {
                Ok(0) => Ok(()),
                other => Err(format!("{other:?} entries in {}", logs.display())),
            },
        );
}

#[test]
fn a_service_reaches_its_pods_through_the_nodes_proxy() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: backend, labels: {{app: backend}}}}
spec:
  containers:
  - name: httpd
    image: {BUSYBOX}
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    ports: [{{containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: backend}}
spec:
  selector: {{app: backend}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    ));
    node.wait_pod("backend", "Running and Ready", |p| {
        container(p, "containerStatuses", "httpd")["ready"] == true
    });
    let ip = node
        .cluster
        .kubectl(&["get", "svc", "backend", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(
        ip.starts_with("10.43."),
        "an address of the service CIDR: {ip}"
    );
    // The server's own node proxies the ClusterIP to the pod, for the node itself too.
    let mut body = None;
    node.cluster.eventually(
        "the service answers on its ClusterIP",
        Duration::from_secs(30),
        || {
            let got = fetch(&format!("http://{ip}/"));
            body = got.as_ref().ok().cloned();
            got.map(|_| ())
        },
    );
    assert_eq!(body.as_deref(), Some("hello from rkube\n"));
    // Pods resolve through cluster DNS (dnsPolicy ClusterFirst), with kube's search paths.
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: resolver}}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["cat", "/etc/resolv.conf"]
"#
    ));
    let pod = node.wait_pod("resolver", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    });
    let resolv = node.log_lines(&pod, "c").join("\n");
    for want in [
        "nameserver 10.43.0.10",
        "search default.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ] {
        assert!(resolv.contains(want), "{want:?} missing from:\n{resolv}");
    }
    // Without a pod behind it, the service refuses at once.
    node.cluster.kubectl(&["delete", "pod", "backend"]);
    node.cluster.eventually(
        "the service refuses",
        Duration::from_secs(30),
        || match fetch(&format!("http://{ip}/")) {
            // Rejected at once (a reset or ICMP unreachable), not left to time out.
            Err(e) if e.contains("refused") || e.contains("Couldn't connect") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

#[test]
fn containers_of_a_pod_share_localhost_and_cannot_share_a_port() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: pair}}
spec:
  restartPolicy: Never
  containers:
  - name: server
    image: {BUSYBOX}
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
  - name: client
    image: {BUSYBOX}
    command: ["sh", "-c", "for i in $(seq 100); do wget -q -O /tmp/page http://127.0.0.1:8080/ && grep -q hello /tmp/page && exit 0; sleep 0.2; done; exit 1"]
  - name: clash
    image: {BUSYBOX}
    command: ["sh", "-c", "until wget -q -O /dev/null http://127.0.0.1:8080/; do sleep 0.2; done; exec httpd -f -p 8080 -h /www"]
"#
    ));
    let pod = node.wait_pod("pair", "client and clash done", |p| {
        container(p, "containerStatuses", "client")["state"]["terminated"].is_object()
            && container(p, "containerStatuses", "clash")["state"]["terminated"].is_object()
    });
    let client = &container(&pod, "containerStatuses", "client")["state"]["terminated"];
    assert_eq!(
        client["exitCode"], 0,
        "the client reached the server: {client}"
    );
    assert_eq!(client["reason"], "Completed");
    let clash = &container(&pod, "containerStatuses", "clash")["state"]["terminated"];
    assert_ne!(clash["exitCode"], 0, "the second bind failed: {clash}");
    assert_eq!(clash["reason"], "Error");
    let server = container(&pod, "containerStatuses", "server");
    assert!(server["state"]["running"].is_object(), "{server}");
    assert_eq!(pod["status"]["phase"], "Running");
}

#[test]
fn init_containers_run_in_order_before_the_app() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: staged}}
spec:
  initContainers:
  - name: first
    image: {PRELOADED}
    command: ["sh", "-c", "sleep 1; echo first"]
  - name: second
    image: {BUSYBOX}
    command: ["sh", "-c", "sleep 1; echo second"]
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
    ));
    let pod = node.wait_pod("staged", "Running", |p| {
        container(p, "containerStatuses", "app")["state"]["running"].is_object()
    });
    let first = &container(&pod, "initContainerStatuses", "first")["state"]["terminated"];
    let second = &container(&pod, "initContainerStatuses", "second")["state"]["terminated"];
    let app = &container(&pod, "containerStatuses", "app")["state"]["running"];
    assert_eq!(first["exitCode"], 0, "{first}");
    assert_eq!(second["exitCode"], 0, "{second}");
    let time = |v: &Value| v.as_str().unwrap().to_owned();
    // RFC 3339 times of one format compare as strings.
    assert!(time(&first["finishedAt"]) <= time(&second["startedAt"]));
    assert!(time(&second["finishedAt"]) <= time(&app["startedAt"]));
    assert_eq!(node.log_lines(&pod, "first"), ["first"]);
    assert_eq!(node.log_lines(&pod, "second"), ["second"]);
    let initialized = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Initialized")
        .unwrap();
    assert_eq!(initialized["status"], "True");
}

#[test]
fn a_crashing_container_backs_off_and_keeps_its_last_state() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  containers:
  - name: boom
    image: {BUSYBOX}
    command: ["sh", "-c", "echo boom; exit 3"]
"#
    ));
    let pod = node.wait_pod("crash", "in CrashLoopBackOff", |p| {
        let c = container(p, "containerStatuses", "boom");
        c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    });
    let c = container(&pod, "containerStatuses", "boom");
    assert!(c["restartCount"].as_i64().unwrap() >= 1, "{c}");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 3, "{c}");
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
    let message = c["state"]["waiting"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("back-off 10s restarting failed container=boom pod=crash_default("),
        "{message}"
    );
    let table = node.cluster.kubectl(&["get", "pod", "crash"]);
    assert!(table.contains("CrashLoopBackOff"), "{table}");

    // A command that is not there: the start fails, as kube reports it.
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: nocommand}}
spec:
  restartPolicy: Never
  containers:
  - {{name: app, image: {BUSYBOX}, command: ["/no/such/program"]}}
"#
    ));
    let pod = node.wait_pod("nocommand", "Failed", |p| p["status"]["phase"] == "Failed");
    let terminated = &container(&pod, "containerStatuses", "app")["state"]["terminated"];
    assert_eq!(terminated["reason"], "StartError", "{terminated}");
    assert_eq!(terminated["exitCode"], 128);
    assert_eq!(terminated["startedAt"], "1970-01-01T00:00:00Z");
    let message = terminated["message"].as_str().unwrap();
    assert!(message.contains("/no/such/program"), "{message}");
}

#[test]
fn an_image_that_cannot_be_pulled_waits_in_err_image_pull_then_back_off() {
    let Some(node) = Node::start() else { return };
    node.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: nopull}
spec:
  containers:
  - name: absent
    image: localhost:1/absent:1
  - name: never
    image: localhost:1/never:1
    imagePullPolicy: Never
"#,
    );
    let pod = node.wait_pod("nopull", "ErrImagePull", |p| {
        container(p, "containerStatuses", "absent")["state"]["waiting"]["reason"] == "ErrImagePull"
    });
    let waiting = &container(&pod, "containerStatuses", "absent")["state"]["waiting"];
    let message = waiting["message"].as_str().unwrap();
    assert!(
        message.starts_with("rpc error: code = ") && message.contains("localhost:1/absent:1"),
        "the runtime's message: {message}"
    );
    let never = &container(&pod, "containerStatuses", "never")["state"]["waiting"];
    assert_eq!(never["reason"], "ErrImageNeverPull", "{never}");
    assert_eq!(
        never["message"],
        "Container image \"localhost:1/never:1\" is not present with pull policy of Never"
    );
    let pod = node.wait_pod("nopull", "ImagePullBackOff", |p| {
        container(p, "containerStatuses", "absent")["state"]["waiting"]["reason"]
            == "ImagePullBackOff"
    });
    let waiting = &container(&pod, "containerStatuses", "absent")["state"]["waiting"];
    let message = waiting["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Back-off pulling image \"localhost:1/absent:1\": ErrImagePull: rpc error"
        ),
        "{message}"
    );
    assert_eq!(pod["status"]["phase"], "Pending");
}

#[test]
fn limits_and_security_context_reach_the_container() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: limited}}
spec:
  restartPolicy: Never
  securityContext: {{runAsUser: 1000, runAsGroup: 3000}}
  containers:
  - name: report
    image: {BUSYBOX}
    workingDir: /tmp
    env: [{{name: GREETING, value: hi}}]
    command: ["sh", "-c", "id -u; id -g; pwd; echo $GREETING; cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]
    resources:
      limits: {{memory: 64Mi, cpu: 500m}}
  - name: readonly
    image: {BUSYBOX}
    command: ["sh", "-c", "id -u; touch /x 2>/dev/null && echo writable || echo read-only; touch /tmp/x 2>/dev/null && echo writable || echo read-only"]
    securityContext: {{runAsUser: 0, readOnlyRootFilesystem: true}}
  - name: writable
    image: {BUSYBOX}
    command: ["sh", "-c", "touch /x && echo writable"]
    securityContext: {{runAsUser: 0}}
  - name: hog
    image: {BUSYBOX}
    command: ["sh", "-c", "tail /dev/zero"]
    resources:
      limits: {{memory: 16Mi}}
"#
    ));
    let pod = node.wait_pod("limited", "its containers ended", |p| {
        ["report", "readonly", "writable", "hog"]
            .iter()
            .all(|c| container(p, "containerStatuses", c)["state"]["terminated"].is_object())
    });
    assert_eq!(
        node.log_lines(&pod, "report"),
        ["1000", "3000", "/tmp", "hi", "67108864"]
    );
    assert_eq!(
        node.log_lines(&pod, "readonly"),
        ["0", "read-only", "read-only"]
    );
    assert_eq!(node.log_lines(&pod, "writable"), ["writable"]);
    let hog = &container(&pod, "containerStatuses", "hog")["state"]["terminated"];
    assert_eq!(hog["reason"], "OOMKilled", "{hog}");
    assert_eq!(hog["exitCode"], 137, "{hog}");
    assert_eq!(pod["status"]["phase"], "Failed");
}

#[test]
fn a_restarted_server_adopts_the_pods_its_node_runs() {
    let Some(mut node) = Node::start() else {
        return;
    };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: steady}}
spec:
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
"#
    ));
    let before = node.wait_pod("steady", "Running", |p| {
        container(p, "containerStatuses", "app")["ready"] == true
    });
    let id = container(&before, "containerStatuses", "app")["containerID"].clone();
    let ip = before["status"]["podIP"].as_str().unwrap().to_owned();
    node.cluster.terminate();
    // The pod keeps serving while the node is down (checked once the node is back, so a
    // failure still finds a containerd to clean up with).
    let while_down = fetch(&format!("http://{ip}/"));
    node.cluster.boot();
    if let Err(err) = while_down {
        panic!("the pod stopped serving with its node: {err}");
    }
    node.cluster
        .eventually("the node is Ready again", Duration::from_secs(60), || {
            let log = node.cluster.log();
            log.contains("adopting the running pod")
                .then_some(())
                .ok_or_else(|| "not adopted yet".to_owned())
        });
    let after = node.wait_pod("steady", "Ready", |p| {
        container(p, "containerStatuses", "app")["ready"] == true
    });
    let c = container(&after, "containerStatuses", "app");
    assert_eq!(c["containerID"], id, "the same container: {c}");
    assert_eq!(c["restartCount"], 0);
    assert_eq!(after["status"]["podIP"].as_str(), Some(ip.as_str()));
    assert_eq!(
        node.sandboxes_of(after["metadata"]["uid"].as_str().unwrap()),
        1
    );
}

#[test]
fn a_standalone_agent_removes_the_pods_deleted_while_it_was_down() {
    let Some(mut node) = Node::start_standalone() else {
        return;
    };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: kept}}
spec:
  containers:
  - {{name: app, image: {PRELOADED}, command: ["sleep", "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: gone}}
spec:
  containers:
  - {{name: app, image: {BUSYBOX}, command: ["sleep", "3600"]}}
"#
    ));
    let running =
        |p: &Value| container(p, "containerStatuses", "app")["state"]["running"].is_object();
    let kept = node.wait_pod("kept", "Running", running);
    let gone = node.wait_pod("gone", "Running", running);
    let kept_id = container(&kept, "containerStatuses", "app")["containerID"].clone();
    node.stop_agent();
    node.cluster
        .kubectl(&["delete", "pod", "gone", "--grace-period=0", "--force"]);
    node.start_agent();
    let gone_uid = gone["metadata"]["uid"].as_str().unwrap().to_owned();
    node.cluster.eventually(
        "the deleted pod's sandbox is removed",
        Duration::from_secs(60),
        || match node.try_sandboxes_of(&gone_uid) {
            Ok(0) => Ok(()),
            other => Err(format!(
                "{other:?} sandboxes; agent log:\n{}",
                node.agent_log()
            )),
        },
    );
    let kept = node.wait_pod("kept", "Running", running);
    assert_eq!(
        container(&kept, "containerStatuses", "app")["containerID"],
        kept_id,
        "the other pod was adopted, not restarted; agent log:\n{}",
        node.agent_log()
    );
    let info = node.cluster.kubectl(&[
        "get",
        "node",
        "e2e-node",
        "-o",
        "jsonpath={.status.capacity.cpu} {.status.capacity.pods} {.status.addresses[0].type}",
    ]);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(info, format!("{cpus} 110 InternalIP"));
}

#[test]
fn probes_gate_readiness_and_restart_unhealthy_containers() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: probed}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {BUSYBOX}
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: [{{name: http, containerPort: 80}}]
    readinessProbe:
      httpGet: {{path: /index.html, port: http}}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {{port: 80}}
      periodSeconds: 1
  - name: waiting
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    readinessProbe:
      exec: {{command: ["cat", "/tmp/ready"]}}
      periodSeconds: 1
  - name: dying
    image: {BUSYBOX}
    command: ["sh", "-c", "touch /tmp/alive; sleep 2; rm /tmp/alive; exec sleep 3600"]
    livenessProbe:
      exec: {{command: ["cat", "/tmp/alive"]}}
      periodSeconds: 1
      failureThreshold: 2
"#
    ));
    let pod = node.wait_pod("probed", "web ready, dying restarted", |p| {
        container(p, "containerStatuses", "web")["ready"] == true
            && container(p, "containerStatuses", "dying")["restartCount"]
                .as_i64()
                .is_some_and(|n| n >= 1)
    });
    // The exec readiness probe keeps failing: not ready, and so neither is the pod.
    let waiting = container(&pod, "containerStatuses", "waiting");
    assert_eq!(waiting["ready"], false, "{waiting}");
    assert!(waiting["state"]["running"].is_object(), "{waiting}");
    let ready = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "False");
    let web = container(&pod, "containerStatuses", "web");
    assert_eq!(web["restartCount"], 0, "tcp liveness holds: {web}");
    let events = node.cluster.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=probed,reason=Killing",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains("Container dying failed liveness probe, will be restarted"),
        "{events}"
    );
    // Once the file is there (made through CRI ExecSync), the pod turns Ready.
    let id = waiting["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("containerd://")
        .to_owned();
    let socket = node.socket();
    let made = runtime().block_on(async move {
        let cri = CriClient::connect(&socket).await.unwrap();
        let command = ["touch".to_owned(), "/tmp/ready".to_owned()];
        cri.exec_sync(&id, &command, Duration::from_secs(10))
            .await
            .unwrap()
    });
    assert_eq!(made.exit_code, 0, "{made:?}");
    node.wait_pod("probed", "Ready", |p| {
        container(p, "containerStatuses", "waiting")["ready"] == true
    });
}

/// A child's stdout, read by lines.
fn lines_of(child: &mut Child) -> std::io::Lines<std::io::BufReader<std::process::ChildStdout>> {
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap()).lines()
}

/// The local port `kubectl port-forward` says it listens on.
fn forwarded_port(
    out: &mut std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) -> String {
    let lines = read_until(out, |l| l.starts_with("Forwarding from 127.0.0.1:"));
    lines
        .last()
        .and_then(|l| l.strip_prefix("Forwarding from 127.0.0.1:"))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("port-forward printed {lines:?}"))
        .to_owned()
}

/// Reads lines until `done` says so (or the output ends); the lines read.
fn read_until(
    out: &mut std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    done: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    for line in out {
        let Ok(line) = line else { break };
        let stop = done(&line);
        lines.push(line);
        if stop {
            break;
        }
    }
    lines
}

#[test]
fn kubectl_logs_exec_attach_port_forward_and_cp_reach_the_containers() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  containers:
  - name: httpd
    image: {BUSYBOX}
    command: ["sh", "-c", "echo started; i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done & exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sh", "-c", "echo run at $(date +%s%N); sleep 1; exit 1"]
"#
    ));
    node.wait_pod("web", "running", |p| p["status"]["phase"] == "Running");
    let c = &node.cluster;

    // Logs: whole, tail, follow.
    c.eventually("the log has lines", Duration::from_secs(30), || {
        let out = c.kubectl(&["logs", "web"]);
        (out.starts_with("started\n") && out.contains("tick 1\n"))
            .then_some(())
            .ok_or(out)
    });
    let tail = c.kubectl(&["logs", "web", "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.starts_with("tick "), "{tail}");
    let stamped = c.kubectl(&["logs", "web", "--timestamps", "--tail=1"]);
    assert!(stamped.contains("Z tick "), "{stamped}");
    let mut follow = c.kubectl_spawn(&["logs", "-f", "web", "--tail=1"]);
    let mut follow_out = lines_of(&mut follow);
    let first: u32 = {
        let lines = read_until(&mut follow_out, |_| true);
        lines[0].trim_start_matches("tick ").parse().unwrap()
    };
    let later = read_until(&mut follow_out, |l| l.starts_with("tick "));
    let _ = follow.kill();
    let _ = follow.wait();
    let next: u32 = later
        .last()
        .unwrap()
        .trim_start_matches("tick ")
        .parse()
        .unwrap();
    assert!(
        next > first,
        "logs -f followed from tick {first} to {later:?}"
    );

    // Exec: output, stderr, exit codes, stdin (closed at its end), a TTY.
    assert_eq!(
        c.kubectl(&["exec", "web", "--", "echo", "hello", "world"]),
        "hello world\n"
    );
    let out = c.kubectl_raw(
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("err\n"),
        "{out:?}"
    );
    let echoed = c.kubectl_stdin(
        &["exec", "-i", "web", "--", "sh", "-c", "cat; echo eof"],
        Some("line one\nline two\n"),
    );
    assert_eq!(echoed, "line one\nline two\neof\n");
    // A TTY needs a terminal on kubectl's side: `script` gives it one.
    let command = format!(
        "HOME={} {} --kubeconfig {} exec -i -t web -- sh -c 'test -t 0 && stty size && echo a tty'",
        c.data_dir().display(),
        c.kubectl_path().display(),
        c.kubeconfig().display()
    );
    let tty = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let tty_out = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{tty:?}");
    assert!(tty_out.contains("a tty"), "{tty_out:?}");
    let missing = c.kubectl_fails(&["exec", "web", "-c", "nope", "--", "true"], None);
    assert!(
        missing.contains("container nope is not valid for pod web"),
        "{missing}"
    );

    // The SPDY protocols kubectl falls back to, proxied as they are.
    let spdy = Command::new(c.kubectl_path())
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .args(["exec", "-i", "web", "--", "sh", "-c", "cat; exit 4"])
        .env("HOME", c.data_dir())
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let spdy = {
        let mut spdy = spdy;
        use std::io::Write;
        spdy.stdin
            .take()
            .unwrap()
            .write_all(b"over spdy\n")
            .unwrap();
        spdy.wait_with_output().unwrap()
    };
    assert_eq!(spdy.status.code(), Some(4), "{spdy:?}");
    assert_eq!(String::from_utf8_lossy(&spdy.stdout), "over spdy\n");

    // The kubelet's own port: clients other than the API server and admins are refused.
    let node_json = c.kubectl(&["get", "node", "e2e-node", "-o", "json"]);
    let node_json: Value = serde_json::from_str(&node_json).unwrap();
    let kubelet_port = node_json["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_i64()
        .unwrap();
    let anonymous = Command::new("curl")
        .args([
            "-sk",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!(
            "https://127.0.0.1:{kubelet_port}/containerLogs/default/web/httpd"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "401");

    // cp both ways (tar in the container through exec).
    let local = c.data_dir().join("cp-in.txt");
    std::fs::write(&local, "copied in\n").unwrap();
    c.kubectl(&["cp", local.to_str().unwrap(), "web:/tmp/cp.txt"]);
    assert_eq!(
        c.kubectl(&["exec", "web", "--", "cat", "/tmp/cp.txt"]),
        "copied in\n"
    );
    let back = c.data_dir().join("cp-out.txt");
    c.kubectl(&["cp", "web:/tmp/cp.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "copied in\n");

    // Port-forward to the httpd, and a request through it.
    let mut forward = c.kubectl_spawn(&["port-forward", "pod/web", ":8080"]);
    let spdy_forward = Command::new(c.kubectl_path())
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .args(["port-forward", "pod/web", ":8080"])
        .env("HOME", c.data_dir())
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its stdout stays open while it runs: it prints a line for each connection.
    let mut forward_out = lines_of(&mut forward);
    let port = forwarded_port(&mut forward_out);
    let page = fetch(&format!("http://127.0.0.1:{port}/"));
    let again = fetch(&format!("http://127.0.0.1:{port}/index.html"));
    let _ = forward.kill();
    drop(forward_out);
    let mut errors = String::new();
    if let Some(mut stderr) = forward.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut errors);
    }
    let _ = forward.wait();
    let mut spdy_forward = spdy_forward;
    let mut spdy_out = lines_of(&mut spdy_forward);
    let spdy_port = forwarded_port(&mut spdy_out);
    let spdy_page = fetch(&format!("http://127.0.0.1:{spdy_port}/"));
    let _ = spdy_forward.kill();
    drop(spdy_out);
    let _ = spdy_forward.wait();
    assert_eq!(
        spdy_page,
        Ok("hello from rkube\n".to_owned()),
        "SPDY port-forward"
    );
    assert_eq!(
        page,
        Ok("hello from rkube\n".to_owned()),
        "port-forward: {errors}"
    );
    assert_eq!(
        again,
        Ok("hello from rkube\n".to_owned()),
        "port-forward: {errors}"
    );

    // Attach: the main process's output.
    let mut attach = c.kubectl_spawn(&["attach", "web"]);
    let attached = read_until(&mut lines_of(&mut attach), |l| l.starts_with("tick "));
    let _ = attach.kill();
    let _ = attach.wait();
    assert!(
        attached.iter().any(|l| l.starts_with("tick ")),
        "{attached:?}"
    );

    // The previous run's log once the container restarted.
    node.wait_pod("crash", "restarted", |p| {
        container(p, "containerStatuses", "c")["restartCount"].as_i64() >= Some(1)
    });
    let previous = c.kubectl(&["logs", "crash", "--previous"]);
    assert!(previous.starts_with("run at "), "{previous}");
}

#[test]
fn config_maps_secrets_and_the_downward_api_reach_the_containers() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{greeting: hello, mode: fast}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: Pod
metadata:
  name: consumer
  labels: {{app: consumer}}
spec:
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "echo said $(GREETING); exec sleep 3600"]
    resources: {{limits: {{memory: 64Mi}}}}
    envFrom:
    - prefix: CM_
      configMapRef: {{name: settings}}
    env:
    - name: GREETING
      valueFrom: {{configMapKeyRef: {{name: settings, key: greeting}}}}
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}
    - name: MY_POD_IP
      valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
    - name: MY_NODE
      valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
    - name: MEMORY_LIMIT
      valueFrom: {{resourceFieldRef: {{resource: limits.memory}}}}
    - name: SENTENCE
      value: "$(GREETING) world"
    volumeMounts:
    - {{name: settings, mountPath: /etc/settings}}
    - {{name: creds, mountPath: /etc/creds}}
    - {{name: podinfo, mountPath: /etc/podinfo}}
    - {{name: scratch, mountPath: /scratch}}
  volumes:
  - name: settings
    configMap: {{name: settings}}
  - name: creds
    secret: {{secretName: creds}}
  - name: podinfo
    downwardAPI:
      items:
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}
  - name: scratch
    emptyDir: {{medium: Memory}}
"#
    ));
    let pod = node.wait_pod("consumer", "Running", |p| {
        container(p, "containerStatuses", "app")["state"]["running"].is_object()
    });
    let exec = |args: &[&str]| {
        let mut all = vec!["exec", "consumer", "--"];
        all.extend_from_slice(args);
        node.cluster.kubectl(&all)
    };
    // Files of the volumes.
    assert_eq!(exec(&["cat", "/etc/settings/greeting"]), "hello");
    assert_eq!(exec(&["cat", "/etc/creds/password"]), "s3cret");
    assert_eq!(exec(&["cat", "/etc/podinfo/name"]), "consumer");
    assert_eq!(exec(&["cat", "/etc/podinfo/labels"]), "app=\"consumer\"");
    let mounts = exec(&["cat", "/proc/mounts"]);
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" /scratch ") && l.starts_with("tmpfs")),
        "{mounts}"
    );
    // configMap volumes are read-only.
    let refused = node.cluster.kubectl_raw(
        &["exec", "consumer", "--", "touch", "/etc/settings/new"],
        None,
    );
    assert!(!refused.status.success(), "a read-only volume took a write");
    // The service-account token the API server's admission added.
    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    assert_eq!(exec(&["cat", &format!("{sa}/namespace")]), "default");
    assert!(exec(&["cat", &format!("{sa}/ca.crt")]).starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(exec(&["cat", &format!("{sa}/token")]).split('.').count(), 3);
    // The environment.
    let env: std::collections::HashMap<String, String> = exec(&["env"])
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let ip = pod["status"]["podIP"].as_str().unwrap();
    for (key, want) in [
        ("GREETING", "hello"),
        ("PASSWORD", "s3cret"),
        ("CM_mode", "fast"),
        ("MY_POD_IP", ip),
        ("MY_NODE", "e2e-node"),
        ("MEMORY_LIMIT", "67108864"),
        ("SENTENCE", "hello world"),
    ] {
        assert_eq!(
            env.get(key).map(String::as_str),
            Some(want),
            "{key}: {env:?}"
        );
    }
    // The service links of the namespace: the API server's own service.
    assert!(env.contains_key("KUBERNETES_SERVICE_HOST"), "{env:?}");
    // The kubelet's /etc/hosts names the pod.
    let hosts = exec(&["cat", "/etc/hosts"]);
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file."),
        "{hosts}"
    );
    assert!(hosts.contains(&format!("{ip}\tconsumer")), "{hosts}");
    // $(VAR) in the command is expanded from the environment.
    assert_eq!(node.log_lines(&pod, "app"), ["said hello"]);

    // Deleted: its volumes go, tmpfs unmounted.
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    let pod_dir = node.node_dir.join("agent/pods").join(&uid);
    assert!(pod_dir.exists(), "{}", pod_dir.display());
    node.cluster.kubectl(&["delete", "pod", "consumer"]);
    node.cluster.eventually(
        "the pod's volumes are gone",
        Duration::from_secs(30),
        || match pod_dir.exists() {
            false => Ok(()),
            true => Err(format!("{} is still there", pod_dir.display())),
        },
    );
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&uid), "{mounts}");
}

#[test]
fn missing_config_maps_hold_the_pod_until_they_exist() {
    let Some(node) = Node::start() else { return };
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: needs-env}}
spec:
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    env:
    - name: LATER
      valueFrom: {{configMapKeyRef: {{name: later, key: value}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: needs-volume}}
spec:
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts: [{{name: files, mountPath: /files}}]
  volumes:
  - name: files
    configMap: {{name: files}}
"#
    ));
    let pod = node.wait_pod("needs-env", "CreateContainerConfigError", |p| {
        container(p, "containerStatuses", "app")["state"]["waiting"]["reason"]
            == "CreateContainerConfigError"
    });
    let waiting = &container(&pod, "containerStatuses", "app")["state"]["waiting"];
    assert_eq!(
        waiting["message"], "configmap \"later\" not found",
        "{waiting}"
    );
    node.cluster.eventually(
        "a FailedMount event for the missing volume",
        Duration::from_secs(30),
        || {
            let events = node.cluster.kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=needs-volume,reason=FailedMount",
                "-o",
                "jsonpath={.items[*].message}",
            ]);
            events
                .contains(
                    "MountVolume.SetUp failed for volume \"files\" : configmap \"files\" not found",
                )
                .then_some(())
                .ok_or(events)
        },
    );
    assert_eq!(node.pod("needs-volume")["status"]["phase"], "Pending");
    // Until its volume is mounted the pod has no sandbox as the API sees it, as with kube's
    // kubelet (which makes none before): no IP, and PodReadyToStartContainers False.
    let sandbox_condition = |p: &Value| {
        p["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "PodReadyToStartContainers"))
            .map(|c| c["status"].clone())
    };
    let waiting = node.wait_pod("needs-volume", "a status from the kubelet", |p| {
        sandbox_condition(p).is_some()
    });
    assert_eq!(
        sandbox_condition(&waiting),
        Some(Value::from("False")),
        "{}",
        waiting["status"]
    );
    assert!(
        waiting["status"]["podIP"].is_null(),
        "{}",
        waiting["status"]
    );
    node.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: later}
data: {value: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: files}
data: {a: "1"}
"#,
    );
    for name in ["needs-env", "needs-volume"] {
        let running = node.wait_pod(name, "Running once its ConfigMap exists", |p| {
            container(p, "containerStatuses", "app")["state"]["running"].is_object()
        });
        assert_eq!(
            sandbox_condition(&running),
            Some(Value::from("True")),
            "{}",
            running["status"]
        );
        assert!(
            running["status"]["podIP"].is_string(),
            "{}",
            running["status"]
        );
    }
}

#[test]
fn hooks_run_and_deletion_honours_the_grace_period() {
    let Some(node) = Node::start() else { return };
    let hooks = node.cluster.data_dir().join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let hooks = hooks.to_str().unwrap();
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "trap 'echo term >> /hooks/order; exit 0' TERM; while true; do sleep 0.2; done"]
    lifecycle:
      postStart:
        exec: {{command: ["sh", "-c", "echo post-start >> /hooks/order"]}}
      preStop:
        exec: {{command: ["sh", "-c", "echo pre-stop >> /hooks/order; sleep 1"]}}
    volumeMounts: [{{name: hooks, mountPath: /hooks}}]
  volumes:
  - name: hooks
    hostPath: {{path: {hooks}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: stubborn}}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: app
    image: {BUSYBOX}
    # PID 1 has no default action for SIGTERM: only SIGKILL ends it.
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata: {{name: bad-hook}}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    lifecycle:
      postStart:
        exec: {{command: ["sh", "-c", "exit 3"]}}
"#
    ));
    for name in ["graceful", "stubborn"] {
        node.wait_pod(name, "Running", |p| {
            container(p, "containerStatuses", "app")["state"]["running"].is_object()
        });
    }
    let order = Path::new(hooks).join("order");
    // postStart has run by the time the container shows running.
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "post-start\n");

    // A failed postStart hook kills the container.
    let pod = node.wait_pod("bad-hook", "killed by its failed hook", |p| {
        container(p, "containerStatuses", "app")["state"]["terminated"].is_object()
    });
    let terminated = &container(&pod, "containerStatuses", "app")["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 137, "{terminated}");
    let events = node.cluster.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=bad-hook,reason=FailedPostStartHook",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(events.contains("exit"), "{events}");

    // preStop, then SIGTERM; the container ends on its own well before its grace period.
    let started = std::time::Instant::now();
    node.cluster.kubectl(&["delete", "pod", "graceful"]);
    let took = started.elapsed();
    assert_eq!(
        std::fs::read_to_string(&order).unwrap(),
        "post-start\npre-stop\nterm\n"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");

    // SIGTERM ignored: killed when the grace period is up, not before.
    let started = std::time::Instant::now();
    node.cluster.kubectl(&["delete", "pod", "stubborn"]);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(3), "killed after {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

/// New pods take turns to start (`start_gate`): one more at a time than the node has CPUs.
/// Pods busy in a long postStart hook hold all of them, yet the next pod still starts.
#[test]
fn pods_in_long_post_start_hooks_do_not_hold_back_the_next_pods() {
    let Some(node) = Node::start() else { return };
    let hooks = node.cluster.data_dir().join("hooking");
    std::fs::create_dir_all(&hooks).unwrap();
    let turns = std::thread::available_parallelism().map_or(1, |n| n.get()) + 1;
    let mut yaml = String::new();
    for i in 0..turns {
        yaml.push_str(&format!(
            r#"
---
apiVersion: v1
kind: Pod
metadata: {{name: hooked-{i}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    lifecycle:
      postStart:
        exec: {{command: ["sh", "-c", "touch /hooks/{i}; sleep 90"]}}
    volumeMounts: [{{name: hooks, mountPath: /hooks}}]
  volumes:
  - name: hooks
    hostPath: {{path: {}}}
"#,
            hooks.display()
        ));
    }
    node.apply(&yaml);
    // Every turn's pod is in its hook.
    node.cluster
        .eventually("the hooks run", Duration::from_secs(90), || {
            let running = (0..turns)
                .filter(|i| hooks.join(i.to_string()).exists())
                .count();
            (running == turns)
                .then_some(())
                .ok_or_else(|| format!("{running} of {turns} hooks running"))
        });
    let created = std::time::Instant::now();
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: after-the-hooks}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
    ));
    node.wait_pod("after-the-hooks", "Running", |p| {
        p["status"]["phase"] == "Running"
    });
    let took = created.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the pod waited {took:?} behind pods in their postStart hooks (90 s)"
    );
    for i in 0..turns {
        let pod = node.pod(&format!("hooked-{i}"));
        assert_ne!(
            pod["status"]["phase"], "Running",
            "hooked-{i} is still in its hook"
        );
    }
}

#[test]
fn static_pods_run_from_manifests_with_mirror_pods() {
    let Some(node) = Node::start_standalone() else {
        return;
    };
    let manifests = node.node_dir.join("agent/pod-manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let manifest = |text: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: kube-system, labels: {{tier: static}}}}
spec:
  containers:
  - name: httpd
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo {text} > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
"#
        )
    };
    std::fs::write(manifests.join("web.yaml"), manifest("first")).unwrap();
    std::fs::write(manifests.join("broken.yaml"), "kind: Pod\n{").unwrap();
    // The mirror pod as the API has it (null while there is none).
    let get = || -> Value {
        let args = [
            "get",
            "pod",
            "-n",
            "kube-system",
            "web-e2e-node",
            "-o",
            "json",
        ];
        let out = node.cluster.kubectl_raw(&args, None);
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let mut pod = Value::Null;
    node.cluster
        .eventually("the mirror pod runs", Duration::from_secs(90), || {
            pod = get();
            (container(&pod, "containerStatuses", "httpd")["ready"] == true)
                .then_some(())
                .ok_or_else(|| pod["status"].to_string())
        });
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["kubernetes.io/config.source"], "file");
    assert_eq!(
        annotations["kubernetes.io/config.mirror"],
        annotations["kubernetes.io/config.hash"]
    );
    let owner = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str()),
        (Some("Node"), Some("e2e-node"))
    );
    // No service-account token for mirror pods.
    assert!(pod["spec"]["volumes"].is_null(), "{}", pod["spec"]);
    let ip = pod["status"]["podIP"].as_str().unwrap().to_owned();
    node.cluster
        .eventually("it serves", Duration::from_secs(20), || {
            fetch(&format!("http://{ip}/")).and_then(|b| (b == "first\n").then_some(()).ok_or(b))
        });
    assert!(
        node.agent_log().contains("static pod manifest skipped"),
        "{}",
        node.agent_log()
    );

    // A changed manifest replaces the pod.
    let first_uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    std::fs::write(manifests.join("web.yaml"), manifest("second")).unwrap();
    node.cluster
        .eventually("the pod is replaced", Duration::from_secs(90), || {
            let pod = get();
            let fresh = pod["metadata"]["uid"]
                .as_str()
                .is_some_and(|u| u != first_uid);
            let ready = container(&pod, "containerStatuses", "httpd")["ready"] == true;
            (fresh && ready)
                .then_some(())
                .ok_or_else(|| pod["status"].to_string())
        });
    let ip = get()["status"]["podIP"].as_str().unwrap().to_owned();
    node.cluster
        .eventually("it serves the new page", Duration::from_secs(20), || {
            fetch(&format!("http://{ip}/")).and_then(|b| (b == "second\n").then_some(()).ok_or(b))
        });
    assert_eq!(node.sandboxes_of(&first_uid), 0);

    // A removed manifest removes the pod.
    let uid = get()["metadata"]["uid"].as_str().unwrap().to_owned();
    std::fs::remove_file(manifests.join("web.yaml")).unwrap();
    node.cluster
        .eventually("the pod is gone", Duration::from_secs(60), || {
            let out = node
                .cluster
                .kubectl_raw(&["get", "pod", "-n", "kube-system", "web-e2e-node"], None);
            match (out.status.success(), node.sandboxes_of(&uid)) {
                (false, 0) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
}

#[test]
fn a_node_past_its_eviction_thresholds_reports_pressure_and_is_tainted() {
    // Less than 100% of the disk is always free: disk pressure.
    let Some(node) = Node::start_standalone_with(&["--eviction-hard", "nodefs.available<100%"])
    else {
        return;
    };
    let conditions = |node: &Node| -> Value {
        serde_json::from_str(&node.cluster.kubectl(&[
            "get",
            "node",
            "e2e-node",
            "-o",
            "jsonpath={.status.conditions}",
        ]))
        .unwrap()
    };
    node.cluster
        .eventually("DiskPressure is True", Duration::from_secs(30), || {
            let all = conditions(&node);
            let disk = all
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "DiskPressure")
                .cloned()
                .unwrap_or_default();
            (disk["status"] == "True" && disk["reason"] == "KubeletHasDiskPressure")
                .then_some(())
                .ok_or_else(|| all.to_string())
        });
    let memory = conditions(&node)
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "MemoryPressure")
        .cloned()
        .unwrap();
    assert_eq!(memory["status"], "False", "{memory}");
    node.cluster.eventually(
        "the node lifecycle controller taints it",
        Duration::from_secs(30),
        || {
            let taints = node.cluster.kubectl(&[
                "get",
                "node",
                "e2e-node",
                "-o",
                "jsonpath={.spec.taints[*].key}",
            ]);
            taints
                .contains("node.kubernetes.io/disk-pressure")
                .then_some(())
                .ok_or(taints)
        },
    );

    // A pod bound to the node past the scheduler is not admitted: it fails, never runs.
    // A system-critical one is admitted and runs.
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: refused}}
spec:
  nodeName: e2e-node
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata: {{name: critical, namespace: kube-system}}
spec:
  nodeName: e2e-node
  priorityClassName: system-node-critical
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
    ));
    let refused = node.wait_pod("refused", "failed", |p| p["status"]["phase"] == "Failed");
    assert_eq!(refused["status"]["reason"], "Evicted", "{refused}");
    assert_eq!(
        refused["status"]["message"], "Pod was rejected: The node had condition: [DiskPressure]. ",
        "{refused}"
    );
    let uid = refused["metadata"]["uid"].as_str().unwrap();
    assert_eq!(node.sandboxes_of(uid), 0, "a rejected pod never runs");
    node.cluster
        .eventually("the Evicted event", Duration::from_secs(30), || {
            let events = node.cluster.kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=refused,reason=Evicted",
                "-o",
                "jsonpath={.items[*].message}",
            ]);
            (events == "The node had condition: [DiskPressure]. ")
                .then_some(())
                .ok_or(events)
        });
    let out = node.cluster.kubectl(&[
        "-n",
        "kube-system",
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod/critical",
        "--timeout=90s",
    ]);
    assert!(out.contains("condition met"), "{out}");
}

#[test]
fn a_node_under_memory_pressure_refuses_only_best_effort_pods() {
    // Less than all of the memory is always available: memory pressure.
    let Some(node) = Node::start_standalone_with(&["--eviction-hard", "memory.available<100%"])
    else {
        return;
    };
    node.cluster
        .eventually("MemoryPressure is True", Duration::from_secs(30), || {
            let status = node.cluster.kubectl(&[
                "get",
                "node",
                "e2e-node",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"MemoryPressure\")].status}",
            ]);
            (status == "True").then_some(()).ok_or(status)
        });
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: best-effort}}
spec:
  nodeName: e2e-node
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata: {{name: burstable}}
spec:
  nodeName: e2e-node
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources: {{requests: {{memory: 8Mi}}}}
"#
    ));
    let refused = node.wait_pod("best-effort", "failed", |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(refused["status"]["reason"], "Evicted", "{refused}");
    assert_eq!(
        refused["status"]["message"],
        "Pod was rejected: The node had condition: [MemoryPressure]. ",
        "{refused}"
    );
    node.wait_pod("burstable", "Running", |p| {
        p["status"]["phase"] == "Running"
    });
}

#[test]
fn a_standalone_agent_gets_its_serving_certificate_through_a_csr() {
    let Some(node) = Node::start_standalone() else {
        return;
    };
    // The agent's data dir has no CA key: it asked the API for a certificate.
    assert!(!node.node_dir.join("tls/ca.key").exists());
    let csrs: Value =
        serde_json::from_str(&node.cluster.kubectl(&["get", "csr", "-o", "json"])).unwrap();
    let csr = csrs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["spec"]["signerName"] == "kubernetes.io/kubelet-serving")
        .unwrap_or_else(|| panic!("no kubelet-serving CSR: {csrs}"))
        .clone();
    assert_eq!(csr["spec"]["username"], "system:node-bootstrap", "{csr}");
    assert_eq!(csr["status"]["conditions"][0]["type"], "Approved", "{csr}");
    assert!(csr["status"]["certificate"].is_string(), "{csr}");
    // The table kubectl prints.
    let table = node.cluster.kubectl(&["get", "csr"]);
    assert!(table.contains("Approved,Issued"), "{table}");

    // So the API server reaches the kubelet: logs and exec work.
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: talker}}
spec:
  containers:
  - name: app
    image: {BUSYBOX}
    command: ["sh", "-c", "echo hello from a standalone node; exec sleep 3600"]
"#
    ));
    node.wait_pod("talker", "Running", |p| {
        container(p, "containerStatuses", "app")["state"]["running"].is_object()
    });
    node.cluster
        .eventually("kubectl logs", Duration::from_secs(20), || {
            let out = node.cluster.kubectl_raw(&["logs", "talker"], None);
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            text.contains("hello from a standalone node")
                .then_some(())
                .ok_or(text)
        });
    assert_eq!(
        node.cluster
            .kubectl(&["exec", "talker", "--", "echo", "hi"])
            .trim(),
        "hi"
    );
}

#[test]
fn a_pod_past_its_active_deadline_is_killed_and_failed() {
    let Some(node) = Node::start() else {
        return;
    };
    // `sleep` as a container's first process ignores SIGTERM: killed after the grace period.
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: deadline}}
spec:
  activeDeadlineSeconds: 4
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"#
    ));
    let running = node.wait_pod("deadline", "Running", |p| p["status"]["phase"] == "Running");
    let uid = running["metadata"]["uid"].as_str().unwrap().to_owned();
    let failed = node.wait_pod("deadline", "Failed", |p| {
        p["status"]["phase"] == "Failed"
            && !p["status"]["containerStatuses"][0]["state"]["terminated"].is_null()
    });
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded", "{failed}");
    assert_eq!(
        failed["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    let terminated = &failed["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 137, "{failed}");
    assert_eq!(terminated["reason"], "Error", "{failed}");
    // Stopped on the node: its sandbox is gone, while the pod stays in the API, Failed.
    node.cluster.eventually(
        "the pod's sandbox removed",
        Duration::from_secs(20),
        || match node.sandboxes_of(&uid) {
            0 => Ok(()),
            n => Err(format!("{n} sandboxes")),
        },
    );
}

#[test]
fn a_restarted_agent_stops_a_running_pod_the_node_no_longer_admits() {
    let Some(mut node) = Node::start_standalone() else {
        return;
    };
    node.cluster
        .kubectl(&["label", "node", "e2e-node", "rkube.test/pool=a"]);
    node.apply(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: pinned}}
spec:
  nodeSelector: {{rkube.test/pool: a}}
  containers:
  - {{name: app, image: {BUSYBOX}, command: ["sleep", "3600"]}}
"#
    ));
    let running = node.wait_pod("pinned", "Running", |p| p["status"]["phase"] == "Running");
    let uid = running["metadata"]["uid"].as_str().unwrap().to_owned();
    assert_eq!(node.sandboxes_of(&uid), 1);
    let pod_dir = node.node_dir.join("agent/pods").join(&uid);
    assert!(pod_dir.exists(), "{} missing", pod_dir.display());
    // While the agent is down the node loses the label the pod needs: the restarted agent
    // admits its pods again (as kube's kubelet does) and refuses this one.
    node.stop_agent();
    node.cluster
        .kubectl(&["label", "node", "e2e-node", "rkube.test/pool-"]);
    node.start_agent();
    let refused = node.wait_pod("pinned", "Failed", |p| p["status"]["phase"] == "Failed");
    assert_eq!(refused["status"]["reason"], "NodeAffinity", "{refused}");
    assert_eq!(
        refused["status"]["message"],
        "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
    );
    // What it ran is gone from the node: its sandbox and its volumes.
    node.cluster.eventually(
        "the refused pod's sandbox removed",
        Duration::from_secs(30),
        || match node.try_sandboxes_of(&uid) {
            Ok(0) => Ok(()),
            other => Err(format!(
                "{other:?} sandboxes; agent log:\n{}",
                node.agent_log()
            )),
        },
    );
    node.cluster.eventually(
        "the refused pod's volumes removed",
        Duration::from_secs(30),
        || {
            (!pod_dir.exists())
                .then_some(())
                .ok_or_else(|| format!("{} still there", pod_dir.display()))
        },
    );
}
