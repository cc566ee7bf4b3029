//! `rkube agent --simulate N` end to end: hollow nodes against a real `rkube server` (whose
//! controller manager gives them pod CIDRs and watches their Leases), driven by real kubectl.
//! And a real node's agent as far as it goes without containerd: its client's TLS checks.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, eventually};

/// An `rkube agent` child process, killed when dropped.
struct AgentProcess {
    child: Child,
    log: PathBuf,
}

impl AgentProcess {
    /// Starts `count` hollow nodes against the cluster with the join token and the CA, with
    /// heartbeats fast enough for the server's 4 s grace period.
    fn start(c: &Cluster, count: usize, run: usize) -> Self {
        Self::start_with(c, run, &["--simulate", &count.to_string()])
    }

    /// Starts an agent with `args` (at least `--simulate N`) and the same credentials.
    fn start_with(c: &Cluster, run: usize, args: &[&str]) -> Self {
        let token = std::fs::read_to_string(c.data_dir().join("node-token")).unwrap();
        let log = c.data_dir().join(format!("agent-{run}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .arg("agent")
            .args(["--server", &c.server_url()])
            .args(["--token", token.trim()])
            .arg("--ca-file")
            .arg(c.data_dir().join("tls/ca.crt"))
            .arg("--data-dir")
            .arg(c.data_dir().join(format!("agent-{run}")))
            .args(args)
            .args(["--node-lease-duration-seconds", "4"])
            .args(["--node-status-update-frequency", "1s"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the agent dies without a word, as a crashed machine does.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "agent exited with {status}: {}",
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not stop on SIGTERM: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name podCIDR ready-status` per node.
fn nodes(c: &Cluster) -> Vec<(String, String, String)> {
    c.kubectl(&[
        "get",
        "nodes",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
    ])
    .lines()
    .map(|l| {
        let mut parts = l.split(' ').map(str::to_owned);
        (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        )
    })
    .collect()
}

fn jsonpath(c: &Cluster, args: &[&str], path: &str) -> String {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    let expr = format!("jsonpath={path}");
    full.extend_from_slice(&["-o", &expr]);
    let out = c.kubectl_raw(&full, None);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pod_line(c: &Cluster, name: &str) -> String {
    c.kubectl(&["get", "pods", "-o", "wide"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_default()
        .to_owned()
}

fn apply(c: &Cluster, yaml: &str) {
    c.kubectl_stdin(&["apply", "-f", "-"], Some(yaml));
}

#[test]
fn hollow_nodes_register_run_pods_and_go_unknown_when_the_agent_stops() {
    let Some(c) = common::start_with(&[
        "--node-monitor-grace-period",
        "4s",
        "--node-monitor-period",
        "1s",
    ]) else {
        return;
    };
    let mut agent = AgentProcess::start(&c, 3, 1);

    // Three nodes, each Ready with a pod CIDR from the controller manager.
    eventually("3 hollow nodes Ready", Duration::from_secs(60), || {
        let seen = nodes(&c);
        let good = seen.len() == 3
            && seen.iter().enumerate().all(|(i, (name, cidr, ready))| {
                *name == format!("hollow-{i}") && cidr.starts_with("10.42.") && ready == "True"
            });
        good.then_some(())
            .ok_or_else(|| format!("{seen:?}\nagent log:\n{}", agent.log()))
    });
    let wide = c.kubectl(&["get", "nodes", "-o", "wide"]);
    let line = wide.lines().find(|l| l.starts_with("hollow-0 ")).unwrap();
    for want in ["Ready", "v1.33.0+rkube"] {
        assert!(line.contains(want), "{want} missing from {line:?}\n{wide}");
    }
    assert_eq!(
        jsonpath(&c, &["node", "hollow-0"], "{.status.addresses[0].address}"),
        "10.200.0.1"
    );
    assert_eq!(
        jsonpath(
            &c,
            &["node", "hollow-0"],
            "{.status.nodeInfo.containerRuntimeVersion}"
        ),
        "rkube-simulated://1.0"
    );
    let labels = jsonpath(&c, &["node", "hollow-2"], "{.metadata.labels}");
    for want in [
        r#""kubernetes.io/hostname":"hollow-2""#,
        r#""kubernetes.io/os":"linux""#,
        r#""kubernetes.io/arch":"#,
    ] {
        assert!(labels.contains(want), "{want} missing from {labels}");
    }
    let capacity = jsonpath(&c, &["node", "hollow-2"], "{.status.capacity}");
    for want in [r#""cpu":"4""#, r#""memory":"16Gi""#, r#""pods":"110""#] {
        assert!(capacity.contains(want), "{want} missing from {capacity}");
    }

    // Leases held by their nodes, owned by them, renewed.
    let lease = |field: &str| jsonpath(&c, &["-n", "kube-node-lease", "lease", "hollow-1"], field);
    assert_eq!(lease("{.spec.holderIdentity}"), "hollow-1");
    assert_eq!(lease("{.spec.leaseDurationSeconds}"), "4");
    assert_eq!(lease("{.metadata.ownerReferences[0].kind}"), "Node");
    let first = lease("{.spec.renewTime}");
    eventually("lease renewed", Duration::from_secs(10), || {
        let now = lease("{.spec.renewTime}");
        (now != first && !now.is_empty()).then_some(()).ok_or(now)
    });

    // A pod bound to hollow-1 runs with an address from hollow-1's pod CIDR.
    let cidr = jsonpath(&c, &["node", "hollow-1"], "{.spec.podCIDR}");
    let prefix = cidr.trim_end_matches("0/24").to_owned();
    apply(
        &c,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  nodeName: hollow-1\n  containers:\n  - {name: nginx, image: nginx:1.27}\n",
    );
    eventually("web Running and ready", Duration::from_secs(30), || {
        let line = pod_line(&c, "web");
        let fields: Vec<&str> = line.split_whitespace().collect();
        // NAME READY STATUS RESTARTS AGE IP NODE ...
        let good = fields.len() >= 7
            && fields[1] == "1/1"
            && fields[2] == "Running"
            && fields[5].starts_with(&prefix)
            && fields[6] == "hollow-1";
        good.then_some(())
            .ok_or_else(|| format!("{line:?} (CIDR {cidr})\nagent log:\n{}", agent.log()))
    });
    let status = |pod: &str, path: &str| jsonpath(&c, &["pod", pod], path);
    assert_eq!(status("web", "{.status.hostIP}"), "10.200.0.2");
    assert_eq!(status("web", "{.status.qosClass}"), "BestEffort");
    assert!(
        status("web", "{.status.containerStatuses[0].containerID}")
            .starts_with("rkube-simulated://")
    );
    assert_eq!(
        status("web", "{.status.containerStatuses[0].image}"),
        "docker.io/library/nginx:1.27"
    );
    assert_eq!(
        status(
            "web",
            r#"{.status.conditions[?(@.type=="PodReadyToStartContainers")].status}"#
        ),
        "True"
    );
    assert!(!status("web", "{.status.startTime}").is_empty());

    // `true` with restartPolicy Never completes.
    apply(
        &c,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: once}\nspec:\n  nodeName: hollow-0\n  restartPolicy: Never\n  containers:\n  - {name: c, image: busybox, command: [\"true\"]}\n",
    );
    eventually("once Succeeded", Duration::from_secs(30), || {
        let line = pod_line(&c, "once");
        let phase = status("once", "{.status.phase}");
        (phase == "Succeeded" && line.contains("Completed") && line.contains("0/1"))
            .then_some(())
            .ok_or_else(|| format!("{phase}: {line:?}"))
    });
    assert_eq!(
        status(
            "once",
            "{.status.containerStatuses[0].state.terminated.exitCode}"
        ),
        "0"
    );
    assert_eq!(
        status("once", r#"{.status.conditions[?(@.type=="Ready")].reason}"#),
        "PodCompleted"
    );

    // `false` with restartPolicy Always crash-loops.
    apply(
        &c,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: crash}\nspec:\n  nodeName: hollow-2\n  containers:\n  - {name: c, image: busybox, command: [\"false\"]}\n",
    );
    eventually("crash in CrashLoopBackOff", Duration::from_secs(30), || {
        let line = pod_line(&c, "crash");
        let restarts = status("crash", "{.status.containerStatuses[0].restartCount}");
        (line.contains("CrashLoopBackOff") && restarts.parse::<u32>().unwrap_or(0) >= 1)
            .then_some(())
            .ok_or(line)
    });

    // A readiness probe's initial delay holds READY back.
    apply(
        &c,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: slow}\nspec:\n  nodeName: hollow-0\n  containers:\n  - name: c\n    image: nginx\n    readinessProbe: {initialDelaySeconds: 3, httpGet: {port: 80}}\n",
    );
    eventually("slow Running, not ready", Duration::from_secs(30), || {
        let line = pod_line(&c, "slow");
        (line.contains("Running") && line.contains("0/1"))
            .then_some(())
            .ok_or(line)
    });
    eventually("slow ready", Duration::from_secs(30), || {
        let line = pod_line(&c, "slow");
        line.contains("1/1").then_some(()).ok_or(line)
    });

    // `kubectl delete` returns promptly: the agent stops the pod and deletes it for good.
    let started = Instant::now();
    c.kubectl(&["delete", "pod", "web", "--timeout=30s"]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "kubectl delete took {:?}",
        started.elapsed()
    );
    let gone = c.kubectl_raw(&["get", "pod", "web"], None);
    assert!(!gone.status.success(), "web still there");

    // The agent stops on SIGTERM; silent past the grace period, its nodes go Unknown.
    agent.terminate();
    eventually("nodes Unknown", Duration::from_secs(30), || {
        let seen = nodes(&c);
        (seen.len() == 3 && seen.iter().all(|(_, _, ready)| ready == "Unknown"))
            .then_some(())
            .ok_or_else(|| format!("{seen:?}"))
    });
    let reason = jsonpath(
        &c,
        &["node", "hollow-0"],
        r#"{.status.conditions[?(@.type=="Ready")].message}"#,
    );
    assert_eq!(reason, "Kubelet stopped posting node status.");

    // A new agent takes the nodes over: Ready again, with the same pod CIDRs.
    let agent = AgentProcess::start(&c, 3, 2);
    eventually("nodes Ready again", Duration::from_secs(30), || {
        let seen = nodes(&c);
        (seen.len() == 3 && seen.iter().all(|(_, _, ready)| ready == "True"))
            .then_some(())
            .ok_or_else(|| format!("{seen:?}\nagent log:\n{}", agent.log()))
    });
    assert_eq!(jsonpath(&c, &["node", "hollow-1"], "{.spec.podCIDR}"), cidr);
    eventually(
        "slow Running and ready again",
        Duration::from_secs(30),
        || {
            let line = pod_line(&c, "slow");
            (line.contains("Running") && line.contains("1/1"))
                .then_some(())
                .ok_or(line)
        },
    );
}

/// `node` per running (not terminating) pod of the deployment `app`.
fn placements(c: &Cluster, app: &str) -> Vec<String> {
    let out = c.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("app={app}"),
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.status.phase}|{.spec.nodeName}{"\n"}{end}"#,
    ]);
    out.lines()
        .filter_map(|l| {
            let mut parts = l.split('|');
            let deleting = parts.next()?;
            let phase = parts.next()?;
            let node = parts.next()?;
            (deleting.is_empty() && phase == "Running").then(|| node.to_owned())
        })
        .collect()
}

fn per_node(placed: &[String]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for node in placed {
        *counts.entry(node.clone()).or_insert(0) += 1;
    }
    counts
}

/// The whole control plane of one `rkube server` (API server, scheduler, controller manager)
/// with hollow nodes from two agents: a deployment spread by its topology constraint and
/// requests, then one agent dies: its node goes Unknown, is tainted, its pods are evicted
/// after their toleration and replaced on the nodes that are left.
#[test]
fn a_deployment_spreads_over_nodes_and_is_replaced_when_a_node_dies() {
    let Some(c) = common::start_with(&[
        "--node-monitor-grace-period",
        "4s",
        "--node-monitor-period",
        "1s",
        "--default-unreachable-toleration-seconds",
        "2",
        "--default-not-ready-toleration-seconds",
        "2",
    ]) else {
        return;
    };
    let stay = AgentProcess::start_with(&c, 1, &["--simulate", "2", "--node-name-prefix", "stay"]);
    let mut doomed = AgentProcess::start_with(
        &c,
        2,
        &[
            "--simulate",
            "1",
            "--node-name-prefix",
            "doomed",
            "--simulate-first-ip",
            "10.200.1.1",
        ],
    );
    eventually("3 nodes Ready", Duration::from_secs(60), || {
        let seen = nodes(&c);
        (seen.len() == 3 && seen.iter().all(|(_, _, ready)| ready == "True"))
            .then_some(())
            .ok_or_else(|| format!("{seen:?}\n{}\n{}", stay.log(), doomed.log()))
    });

    // 6 replicas of 1 CPU on three 4-CPU nodes, at most 1 apart per node: 2 on each.
    apply(
        &c,
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        nodeTaintsPolicy: Honor
        labelSelector: {matchLabels: {app: web}}
      containers:
      - name: web
        image: nginx:1.27
        resources: {requests: {cpu: "1"}}
"#,
    );
    eventually(
        "6 pods Running, 2 per node",
        Duration::from_secs(60),
        || {
            let counts = per_node(&placements(&c, "web"));
            let want = [("doomed-0", 2), ("stay-0", 2), ("stay-1", 2)]
                .map(|(n, k)| (n.to_owned(), k))
                .into_iter()
                .collect();
            (counts == want)
                .then_some(())
                .ok_or_else(|| format!("{counts:?}\n{}", c.kubectl(&["get", "pods", "-o", "wide"])))
        },
    );
    let status = c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let events = c.kubectl(&["get", "events", "--field-selector", "reason=Scheduled"]);
    assert!(
        events.contains("Successfully assigned default/web-"),
        "{events}"
    );

    // The doomed node's agent dies: Unknown, tainted, its pods evicted and replaced, 3 and 3.
    doomed.kill();
    eventually(
        "doomed-0 Unknown and tainted",
        Duration::from_secs(30),
        || {
            let taints = jsonpath(&c, &["node", "doomed-0"], "{.spec.taints}");
            let ready = nodes(&c)
                .into_iter()
                .find(|(n, _, _)| n == "doomed-0")
                .map(|(_, _, r)| r)
                .unwrap_or_default();
            (ready == "Unknown"
                && taints.contains("node.kubernetes.io/unreachable")
                && taints.contains("NoExecute"))
            .then_some(())
            .ok_or_else(|| format!("{ready} {taints}"))
        },
    );
    eventually(
        "6 pods Running on the nodes left",
        Duration::from_secs(60),
        || {
            let counts = per_node(&placements(&c, "web"));
            let want = [("stay-0", 3), ("stay-1", 3)]
                .map(|(n, k)| (n.to_owned(), k))
                .into_iter()
                .collect();
            (counts == want)
                .then_some(())
                .ok_or_else(|| format!("{counts:?}\n{}", c.kubectl(&["get", "pods", "-o", "wide"])))
        },
    );
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "reason=TaintManagerEviction",
    ]);
    assert!(
        events.contains("Marking for deletion Pod default/web-"),
        "{events}"
    );
    let ready = c.kubectl(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.status.readyReplicas}/{.status.replicas}",
    ]);
    assert_eq!(ready, "6/6");
}

/// A real node's agent (`rkube agent` without `--simulate`) talks over its own HTTP/2
/// client, which honours a kubeconfig's `tls-server-name`: the server's certificate is
/// checked for that name, not for the URL's address. A name the certificate has connects;
/// one it lacks is refused, though the URL's 127.0.0.1 is in the certificate. The agent
/// is stopped once it said which (before it needs containerd).
#[test]
fn a_real_nodes_agent_checks_the_server_certificate_for_the_kubeconfig_tls_server_name() {
    let Some(c) = common::start() else {
        return;
    };
    let token = std::fs::read_to_string(c.data_dir().join("node-token")).unwrap();
    let ca = c.data_dir().join("tls/ca.crt");
    for (run, name, connects) in [
        (0, "kubernetes.default.svc", true),
        (1, "not-in-the-certificate.example", false),
    ] {
        let kubeconfig = c.data_dir().join(format!("tls-name-{run}.kubeconfig"));
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {
                "server": c.server_url(),
                "certificate-authority": ca,
                "tls-server-name": name,
            }}],
            "users": [{"name": "u", "user": {"token": token.trim()}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        });
        std::fs::write(&kubeconfig, config.to_string()).unwrap();
        let log = c.data_dir().join(format!("tls-name-{run}.log"));
        let dir = c.data_dir().join(format!("tls-name-{run}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .arg("agent")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--data-dir")
            .arg(&dir)
            .arg("--containerd-socket")
            .arg(dir.join("no-containerd.sock"))
            .args([
                "--node-name",
                &format!("tls-name-{run}"),
                "--kubelet-port",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // What the agent said of the server: connected, or why not.
        let deadline = Instant::now() + Duration::from_secs(30);
        let said = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("connected") {
                break Ok(());
            }
            if text.contains("API server not reachable yet") {
                break Err(text);
            }
            assert!(
                Instant::now() < deadline,
                "the agent said nothing of the server: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = child.kill();
        let _ = child.wait();
        match (connects, said) {
            (true, Ok(())) => {}
            (false, Err(text)) => assert!(
                text.contains("certificate"),
                "the refusal names the certificate: {text}"
            ),
            (true, Err(text)) => panic!("{name} is in the certificate, yet: {text}"),
            (false, Ok(())) => {
                panic!("{name} is not in the server's certificate, yet it connected")
            }
        }
    }
}

/// A pod's phase, reason and message.
fn outcome(c: &Cluster, pod: &str) -> (String, String, String) {
    let out = jsonpath(
        c,
        &["pod", pod],
        "{.status.phase}|{.status.reason}|{.status.message}",
    );
    let mut parts = out.splitn(3, '|').map(str::to_owned);
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

/// Waits for a pod bound past the scheduler to be refused; returns its status's message.
fn refused(c: &Cluster, agent: &AgentProcess, pod: &str, reason: &str) -> String {
    let mut message = String::new();
    eventually(&format!("{pod} refused"), Duration::from_secs(30), || {
        let (phase, got, said) = outcome(c, pod);
        message = said;
        (phase == "Failed" && got == reason)
            .then_some(())
            .ok_or_else(|| format!("{phase} {got} {message}\nagent log:\n{}", agent.log()))
    });
    message
}

fn running(c: &Cluster, agent: &AgentProcess, pod: &str) {
    eventually(&format!("{pod} Running"), Duration::from_secs(30), || {
        let (phase, reason, message) = outcome(c, pod);
        (phase == "Running")
            .then_some(())
            .ok_or_else(|| format!("{phase} {reason} {message}\nagent log:\n{}", agent.log()))
    });
}

fn hollow_node_ready(c: &Cluster, agent: &AgentProcess) {
    eventually("hollow-0 Ready", Duration::from_secs(60), || {
        let seen = nodes(c);
        (seen.len() == 1 && seen[0].2 == "True")
            .then_some(())
            .ok_or_else(|| format!("{seen:?}\n{}", agent.log()))
    });
}

/// A pod on hollow-0, past the scheduler, with `extra` lines in its spec and `labels`.
fn bound_pod(name: &str, labels: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{{labels}}}}}\nspec:\n  nodeName: hollow-0\n{extra}  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '3600']\n"
    )
}

#[test]
fn a_node_refuses_pods_bound_past_the_scheduler_that_it_cannot_run() {
    let Some(c) = common::start() else {
        return;
    };
    let agent = AgentProcess::start(&c, 1, 1);
    hollow_node_ready(&c, &agent);
    // Resources: the node's 4 CPUs, of which running pods hold 3.
    let cpu_pod = |name: &str, cpu: &str| {
        bound_pod(name, "", "").replace(
            "command: [sleep, '3600']\n",
            &format!("command: [sleep, '3600']\n    resources: {{requests: {{cpu: '{cpu}'}}}}\n"),
        )
    };
    apply(&c, &cpu_pod("big", "3"));
    running(&c, &agent, "big");
    apply(&c, &cpu_pod("over", "1500m"));
    assert_eq!(
        refused(&c, &agent, "over", "OutOfcpu"),
        "Pod was rejected: Node didn't have enough resource: cpu, requested: 1500, used: 3000, capacity: 4000"
    );
    // Told by an event too, and kubectl shows the reason.
    eventually("the OutOfcpu event", Duration::from_secs(20), || {
        let said = jsonpath(
            &c,
            &["events", "--field-selector", "reason=OutOfcpu"],
            "{.items[0].type} {.items[0].involvedObject.name}: {.items[0].message}",
        );
        (said
            == "Warning over: Node didn't have enough resource: cpu, requested: 1500, used: 3000, capacity: 4000")
            .then_some(())
            .ok_or(said)
    });
    let line = pod_line(&c, "over");
    assert!(line.contains("OutOfcpu"), "{line}");
    // A refused pod holds nothing: one that fits beside `big` runs.
    apply(&c, &cpu_pod("fits", "1"));
    running(&c, &agent, "fits");
    // What a deleted pod held is free again.
    c.kubectl(&["delete", "pod", "big", "--wait=true"]);
    apply(&c, &cpu_pod("after", "2"));
    running(&c, &agent, "after");

    // Host ports.
    let with_port = |name: &str| {
        bound_pod(name, "", "").replace(
            "command: [sleep, '3600']\n",
            "command: [sleep, '3600']\n    ports: [{containerPort: 80, hostPort: 8080}]\n",
        )
    };
    apply(&c, &with_port("port-a"));
    running(&c, &agent, "port-a");
    apply(&c, &with_port("port-b"));
    assert_eq!(
        refused(&c, &agent, "port-b", "NodePorts"),
        "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
    );

    // Node affinity, checked against the node's labels as they are now.
    let selecting = |name: &str| bound_pod(name, "", "  nodeSelector: {disk: ssd}\n");
    apply(&c, &selecting("no-ssd"));
    assert_eq!(
        refused(&c, &agent, "no-ssd", "NodeAffinity"),
        "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
    );
    c.kubectl(&["label", "node", "hollow-0", "disk=ssd"]);
    apply(&c, &selecting("ssd"));
    running(&c, &agent, "ssd");

    // The pod's OS.
    apply(&c, &bound_pod("windows", "kubernetes.io/os: windows", ""));
    assert_eq!(
        refused(&c, &agent, "windows", "PodOSSelectorNodeLabelDoesNotMatch"),
        "Pod was rejected: Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"
    );

    // NoExecute taints the pod does not tolerate (NoSchedule ones are the scheduler's).
    c.kubectl(&["taint", "node", "hollow-0", "gpu=yes:NoSchedule"]);
    apply(&c, &bound_pod("no-schedule", "", ""));
    running(&c, &agent, "no-schedule");
    c.kubectl(&["taint", "node", "hollow-0", "dedicated=x:NoExecute"]);
    apply(&c, &bound_pod("untolerated", "", ""));
    assert_eq!(
        refused(&c, &agent, "untolerated", "TaintToleration"),
        "Pod was rejected: Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate"
    );
    let tolerating = "  tolerations: [{key: dedicated, operator: Exists, effect: NoExecute}]\n";
    apply(&c, &bound_pod("tolerating", "", tolerating));
    running(&c, &agent, "tolerating");
}

#[test]
fn a_pod_past_its_active_deadline_is_failed_and_stopped() {
    let Some(c) = common::start() else {
        return;
    };
    let agent = AgentProcess::start(&c, 1, 1);
    hollow_node_ready(&c, &agent);
    let deadline = "  activeDeadlineSeconds: 2\n  terminationGracePeriodSeconds: 1\n";
    apply(&c, &bound_pod("brief", "", deadline));
    // No deadline at first: one is set later through the API (it may be set or shortened).
    apply(&c, &bound_pod("shortened", "", ""));
    running(&c, &agent, "shortened");
    c.kubectl(&[
        "patch",
        "pod",
        "shortened",
        "-p",
        r#"{"spec":{"activeDeadlineSeconds":1}}"#,
    ]);
    for pod in ["brief", "shortened"] {
        assert_eq!(
            refused(&c, &agent, pod, "DeadlineExceeded"),
            "Pod was active on the node longer than the specified deadline"
        );
        // Its container was stopped.
        eventually(
            &format!("{pod}'s container stopped"),
            Duration::from_secs(20),
            || {
                let state = jsonpath(
                    &c,
                    &["pod", pod],
                    "{.status.containerStatuses[0].state.terminated.reason}",
                );
                (!state.is_empty()).then_some(()).ok_or_else(|| {
                    jsonpath(&c, &["pod", pod], "{.status.containerStatuses[0].state}")
                })
            },
        );
    }
    // The pod was running for those seconds, not less.
    let started = jsonpath(&c, &["pod", "brief"], "{.status.startTime}");
    let finished = jsonpath(
        &c,
        &["pod", "brief"],
        "{.status.containerStatuses[0].state.terminated.finishedAt}",
    );
    let seconds = |t: &str| {
        let out = std::process::Command::new("date")
            .args(["-d", t, "+%s"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    assert!(
        seconds(&finished) - seconds(&started) >= 2,
        "{started} {finished}"
    );
    let event = jsonpath(
        &c,
        &[
            "events",
            "--field-selector",
            "involvedObject.name=brief,reason=DeadlineExceeded",
        ],
        "{.items[0].type}: {.items[0].message}",
    );
    assert_eq!(
        event,
        "Normal: Pod was active on the node longer than the specified deadline"
    );
}
