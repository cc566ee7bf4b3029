//! The scheduler end to end: a real `rkube server` (without its controller manager, so no
//! node lifecycle taints plain Node objects), a separate `rkube scheduler` process with
//! the admin kubeconfig, and real kubectl creating nodes and pods and reading what the
//! scheduler did: bindings, PodScheduled conditions with kube-scheduler's messages,
//! events, preemption.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Cluster, eventually};

/// A `rkube scheduler` process, killed when dropped.
struct Scheduler(Child);

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start() -> Option<(Cluster, Scheduler)> {
    let c = common::start_with(&["--disable-controller-manager", "--disable-scheduler"])?;
    let log = std::fs::File::create(c.data_dir().join("scheduler.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .arg("scheduler")
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .env("RKUBE_LOG", "info,rkube_scheduler=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Some((c, Scheduler(child)))
}

fn scheduler_log(c: &Cluster) -> String {
    std::fs::read_to_string(c.data_dir().join("scheduler.log")).unwrap_or_default()
}

/// A Node object with allocatable set through `nodes/status`, as a kubelet would.
fn add_node(c: &Cluster, name: &str, cpu: &str, labels: &[(&str, &str)], taints: &str) {
    let mut label_lines = format!("    kubernetes.io/hostname: {name}\n");
    for (k, v) in labels {
        label_lines.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    let spec = if taints.is_empty() {
        String::new()
    } else {
        format!("spec:\n  taints:\n{taints}")
    };
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n{label_lines}{spec}"
        )),
    );
    let resources = format!(r#"{{"cpu":"{cpu}","memory":"8Gi","pods":"110"}}"#);
    c.kubectl(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"capacity":{resources},"allocatable":{resources},"conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
        ),
    ]);
}

fn node_of(c: &Cluster, pod: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"])
}

fn wait_bound(c: &Cluster, pod: &str) -> String {
    eventually(&format!("{pod} is bound"), Duration::from_secs(30), || {
        let node = node_of(c, pod);
        if node.is_empty() {
            Err(format!("not bound; scheduler log:\n{}", scheduler_log(c)))
        } else {
            Ok(())
        }
    });
    node_of(c, pod)
}

/// Waits for the pod's PodScheduled=False condition; returns its reason and message.
fn wait_unschedulable(c: &Cluster, pod: &str) -> (String, String) {
    let get = || {
        c.kubectl(&[
            "get",
            "pod",
            pod,
            "-o",
            r#"jsonpath={range .status.conditions[?(@.type=="PodScheduled")]}{.status}|{.reason}|{.message}{end}"#,
        ])
    };
    eventually(
        &format!("{pod} is unschedulable"),
        Duration::from_secs(30),
        || {
            let got = get();
            if got.starts_with("False|") {
                Ok(())
            } else {
                Err(format!(
                    "condition {got:?}; scheduler log:\n{}",
                    scheduler_log(c)
                ))
            }
        },
    );
    let got = get();
    let mut parts = got.splitn(3, '|').skip(1);
    (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    )
}

fn pod_yaml(name: &str, cpu: &str, extra_spec: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n{extra_spec}  \
         terminationGracePeriodSeconds: 0\n  containers:\n  - name: app\n    image: busybox\n    \
         resources: {{requests: {{cpu: \"{cpu}\"}}}}\n"
    )
}

fn create(c: &Cluster, yaml: &str) {
    c.kubectl_stdin(&["create", "-f", "-"], Some(yaml));
}

#[test]
fn requests_taints_and_node_affinity() {
    let Some((c, _scheduler)) = start() else {
        return;
    };
    add_node(&c, "n1", "2", &[("zone", "a"), ("disk", "ssd")], "");
    add_node(&c, "n2", "2", &[("zone", "b")], "");
    add_node(
        &c,
        "n3",
        "2",
        &[("zone", "c")],
        "  - {key: dedicated, value: gpu, effect: NoSchedule}\n",
    );

    create(&c, &pod_yaml("fits", "1500m", "", ""));
    let fits_on = wait_bound(&c, "fits");
    assert!(fits_on == "n1" || fits_on == "n2", "{fits_on} is tainted");

    // Too big for every node: kube-scheduler's message, word for word.
    create(&c, &pod_yaml("too-big", "3", "", ""));
    let (reason, message) = wait_unschedulable(&c, "too-big");
    assert_eq!(reason, "Unschedulable");
    assert_eq!(
        message,
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
         2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not \
         helpful for scheduling, 2 No preemption victims found for incoming pod.."
    );
    assert_eq!(node_of(&c, "too-big"), "");

    // Tolerating the taint and selecting the zone: only n3.
    create(
        &c,
        &pod_yaml(
            "gpu",
            "500m",
            "  nodeSelector: {zone: c}\n  tolerations:\n  - {key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}\n",
            "",
        ),
    );
    assert_eq!(wait_bound(&c, "gpu"), "n3");

    // Required node affinity: zone In (b).
    let affinity = "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        \
                    nodeSelectorTerms:\n        - matchExpressions:\n          - {key: zone, operator: In, values: [b]}\n";
    create(&c, &pod_yaml("in-b", "100m", affinity, ""));
    assert_eq!(wait_bound(&c, "in-b"), "n2");

    // The Scheduled events, and the FailedScheduling warning in describe.
    eventually("Scheduled events", Duration::from_secs(20), || {
        let events = c.kubectl(&["get", "events"]);
        let want = format!("Successfully assigned default/fits to {fits_on}");
        if events.contains("Scheduled") && events.contains(&want) {
            Ok(())
        } else {
            Err(events)
        }
    });
    eventually(
        "FailedScheduling in describe",
        Duration::from_secs(20),
        || {
            let described = c.kubectl(&["describe", "pod", "too-big"]);
            if described.contains("FailedScheduling")
                && described.contains("default-scheduler")
                && described.contains("2 Insufficient cpu")
            {
                Ok(())
            } else {
                Err(described)
            }
        },
    );

    // More room: the waiting pod is placed once a node can take it.
    add_node(&c, "n4", "4", &[("zone", "d")], "");
    assert_eq!(wait_bound(&c, "too-big"), "n4");
}

#[test]
fn anti_affinity_and_topology_spread() {
    let Some((c, _scheduler)) = start() else {
        return;
    };
    for (name, zone) in [("n1", "a"), ("n2", "b"), ("n3", "c")] {
        add_node(&c, name, "4", &[("topology.kubernetes.io/zone", zone)], "");
    }
    let anti = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      \
                - labelSelector: {matchLabels: {app: web}}\n        topologyKey: kubernetes.io/hostname\n";
    for i in 0..3 {
        create(&c, &pod_yaml(&format!("web-{i}"), "100m", anti, "app: web"));
    }
    let mut nodes: Vec<String> = (0..3)
        .map(|i| wait_bound(&c, &format!("web-{i}")))
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2", "n3"], "one per node");
    create(&c, &pod_yaml("web-3", "100m", anti, "app: web"));
    let (_, message) = wait_unschedulable(&c, "web-3");
    assert_eq!(
        message,
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.."
    );

    let spread = "  topologySpreadConstraints:\n  - maxSkew: 1\n    topologyKey: topology.kubernetes.io/zone\n    \
                  whenUnsatisfiable: DoNotSchedule\n    labelSelector: {matchLabels: {app: spread}}\n";
    for i in 0..6 {
        create(
            &c,
            &pod_yaml(&format!("spread-{i}"), "100m", spread, "app: spread"),
        );
    }
    let mut per_node = std::collections::BTreeMap::new();
    for i in 0..6 {
        *per_node
            .entry(wait_bound(&c, &format!("spread-{i}")))
            .or_insert(0) += 1;
    }
    assert_eq!(per_node.into_values().collect::<Vec<_>>(), [2, 2, 2]);
}

#[test]
fn priority_preemption() {
    let Some((c, _scheduler)) = start() else {
        return;
    };
    add_node(&c, "n1", "1", &[], "");
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 10\n---\n\
             apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n",
        ),
    );
    create(
        &c,
        &pod_yaml("victim", "800m", "  priorityClassName: low\n", ""),
    );
    assert_eq!(wait_bound(&c, "victim"), "n1");
    create(
        &c,
        &pod_yaml("important", "800m", "  priorityClassName: high\n", ""),
    );
    assert_eq!(wait_bound(&c, "important"), "n1");
    eventually("the victim is gone", Duration::from_secs(20), || {
        let out = c.kubectl_raw(&["get", "pod", "victim"], None);
        if out.status.success() {
            Err(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Ok(())
        }
    });
    let events = c.kubectl(&["get", "events"]);
    assert!(events.contains("Preempted"), "{events}");
    assert_eq!(
        c.kubectl(&[
            "get",
            "pod",
            "important",
            "-o",
            "jsonpath={.status.nominatedNodeName}"
        ]),
        "n1"
    );
}

/// A `rkube scheduler` with short leases, logging to `log` in the data dir.
fn elected_scheduler(c: &Cluster, log: &str) -> Scheduler {
    let log = std::fs::File::create(c.data_dir().join(log)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["scheduler", "--kubeconfig"])
        .arg(c.kubeconfig())
        .args(common::SHORT_LEASES)
        .env("RKUBE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Scheduler(child)
}

#[test]
fn two_schedulers_only_the_leader_schedules() {
    let Some(c) = common::start_with(&["--disable-controller-manager", "--disable-scheduler"])
    else {
        return;
    };
    add_node(&c, "n1", "4", &[], "");
    let mut first = elected_scheduler(&c, "s1.log");
    let mut second = elected_scheduler(&c, "s2.log");
    let log = |name: &str| std::fs::read_to_string(c.data_dir().join(name)).unwrap_or_default();
    let holder = || {
        let out = c.kubectl_raw(
            &[
                "-n",
                "kube-system",
                "get",
                "lease",
                "kube-scheduler",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
            None,
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    create(&c, &pod_yaml("p1", "100m", "", ""));
    assert_eq!(wait_bound(&c, "p1"), "n1");
    let leader = holder();
    assert!(!leader.is_empty());
    // Only the leader started scheduling; the other waits for the lease.
    let active = |name: &str| log(name).contains("scheduler caches synced");
    assert_eq!(
        u8::from(active("s1.log")) + u8::from(active("s2.log")),
        1,
        "s1:\n{}\ns2:\n{}",
        log("s1.log"),
        log("s2.log")
    );

    // The leader dies without releasing the lease: the other takes over when it runs out.
    let (dead, alive_log) = if active("s1.log") {
        (&mut first, "s2.log")
    } else {
        (&mut second, "s1.log")
    };
    let _ = dead.0.kill();
    let _ = dead.0.wait();
    eventually("the other takes over", Duration::from_secs(20), || {
        let now = holder();
        (now != leader && !now.is_empty() && active(alive_log))
            .then_some(())
            .ok_or(now)
    });
    create(&c, &pod_yaml("p2", "100m", "", ""));
    assert_eq!(wait_bound(&c, "p2"), "n1");
}
