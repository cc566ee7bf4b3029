//! The controller manager end to end: a real `rkube server` (and standalone
//! `rkube controller-manager` processes), driven by real kubectl.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, eventually};

fn names(c: &Cluster, args: &[&str]) -> Vec<String> {
    let mut full = vec!["get", "-o", "name"];
    full.extend_from_slice(args);
    c.kubectl(&full).lines().map(str::to_owned).collect()
}

fn configmap_owned_by(name: &str, owner: &str, uid: &str, block: bool) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: {owner}, uid: \"{uid}\", blockOwnerDeletion: {block}}}\n"
    )
}

fn make_owner(c: &Cluster, name: &str) -> String {
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n"
        )),
    );
    c.kubectl(&["get", "cm", name, "-o", "jsonpath={.metadata.uid}"])
}

#[test]
fn every_namespace_gets_a_default_account_and_the_root_ca() {
    let Some(c) = common::start() else { return };
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n"),
    );
    eventually(
        "default service account in team",
        Duration::from_secs(10),
        || {
            let out = c.kubectl_raw(&["-n", "team", "get", "sa", "default", "-o", "name"], None);
            out.status
                .success()
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
        },
    );
    let ca = std::fs::read_to_string(c.data_dir().join("tls/ca.crt")).unwrap();
    eventually("kube-root-ca.crt in team", Duration::from_secs(10), || {
        let out = c.kubectl_raw(
            &[
                "-n",
                "team",
                "get",
                "cm",
                "kube-root-ca.crt",
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ],
            None,
        );
        (String::from_utf8_lossy(&out.stdout) == ca)
            .then_some(())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    // Deleted or changed, both come back as they were.
    c.kubectl(&["-n", "team", "delete", "sa", "default"]);
    c.kubectl(&[
        "-n",
        "team",
        "patch",
        "cm",
        "kube-root-ca.crt",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ]);
    eventually(
        "default account and CA restored",
        Duration::from_secs(10),
        || {
            let sa = c.kubectl_raw(&["-n", "team", "get", "sa", "default"], None);
            let ca_now = c.kubectl(&[
                "-n",
                "team",
                "get",
                "cm",
                "kube-root-ca.crt",
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ]);
            (sa.status.success() && ca_now == ca)
                .then_some(())
                .ok_or_else(|| format!("ca: {ca_now:.40}"))
        },
    );
}

#[test]
fn garbage_collection_with_each_propagation_policy() {
    let Some(c) = common::start() else { return };
    // Background (kubectl's default): the owner goes at once, then its dependents.
    let uid = make_owner(&c, "bg");
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&configmap_owned_by("bg-dep", "bg", &uid, false)),
    );
    c.kubectl(&["delete", "cm", "bg"]);
    eventually(
        "background dependent collected",
        Duration::from_secs(10),
        || {
            let left = names(&c, &["cm"]);
            (!left.contains(&"configmap/bg-dep".to_owned()))
                .then_some(())
                .ok_or(format!("{left:?}"))
        },
    );

    // Foreground: the owner waits, with the foregroundDeletion finalizer, for its blocking
    // dependents; a dependent's own finalizer holds the whole chain.
    let uid = make_owner(&c, "fg");
    let held = configmap_owned_by("fg-held", "fg", &uid, true).replace(
        "metadata:\n",
        "metadata:\n  finalizers: [example.com/hold]\n",
    );
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&held));
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&configmap_owned_by("fg-dep", "fg", &uid, true)),
    );
    c.kubectl(&["delete", "cm", "fg", "--cascade=foreground", "--wait=false"]);
    eventually(
        "foreground: free dependent gone, owner waiting",
        Duration::from_secs(10),
        || {
            let left = names(&c, &["cm"]);
            let owner = c.kubectl(&["get", "cm", "fg", "-o", "jsonpath={.metadata.finalizers}"]);
            (!left.contains(&"configmap/fg-dep".to_owned()) && owner.contains("foregroundDeletion"))
                .then_some(())
                .ok_or(format!("{left:?} {owner}"))
        },
    );
    assert!(
        c.kubectl(&[
            "get",
            "cm",
            "fg-held",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}"
        ])
        .len()
            > 10
    );
    c.kubectl(&[
        "patch",
        "cm",
        "fg-held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    eventually(
        "foreground owner gone after its last dependent",
        Duration::from_secs(10),
        || {
            let left = names(&c, &["cm"]);
            (!left.contains(&"configmap/fg".to_owned())
                && !left.contains(&"configmap/fg-held".to_owned()))
            .then_some(())
            .ok_or(format!("{left:?}"))
        },
    );

    // Orphan: the dependents stay, without the owner reference.
    let uid = make_owner(&c, "or");
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&configmap_owned_by("or-dep", "or", &uid, true)),
    );
    c.kubectl(&["delete", "cm", "or", "--cascade=orphan"]);
    eventually(
        "orphaned dependent released",
        Duration::from_secs(10),
        || {
            let refs = c.kubectl(&[
                "get",
                "cm",
                "or-dep",
                "-o",
                "jsonpath={.metadata.ownerReferences}",
            ]);
            let left = names(&c, &["cm"]);
            (refs.is_empty() && !left.contains(&"configmap/or".to_owned()))
                .then_some(())
                .ok_or(format!("{refs} {left:?}"))
        },
    );

    // Two owners: only the dangling reference goes while the other owner lives.
    let a = make_owner(&c, "two-a");
    let b = make_owner(&c, "two-b");
    let both = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two-dep\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: two-a, uid: \"{a}\"}}\n  - {{apiVersion: v1, kind: ConfigMap, name: two-b, uid: \"{b}\"}}\n"
    );
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&both));
    c.kubectl(&["delete", "cm", "two-a"]);
    eventually(
        "dangling reference removed",
        Duration::from_secs(10),
        || {
            let refs = c.kubectl(&[
                "get",
                "cm",
                "two-dep",
                "-o",
                "jsonpath={.metadata.ownerReferences[*].name}",
            ]);
            (refs == "two-b").then_some(()).ok_or(refs)
        },
    );
    // An owner that never existed (wrong uid) is dangling too.
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&configmap_owned_by(
            "ghost-dep",
            "two-b",
            "00000000-0000-0000-0000-000000000000",
            false,
        )),
    );
    eventually(
        "dependent of a ghost collected",
        Duration::from_secs(10),
        || {
            let left = names(&c, &["cm"]);
            (!left.contains(&"configmap/ghost-dep".to_owned()))
                .then_some(())
                .ok_or(format!("{left:?}"))
        },
    );
}

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

#[test]
fn deleting_a_namespace_deletes_everything_in_it() {
    let Some(c) = common::start() else { return };
    c.kubectl_stdin(&["apply", "-f", "-"], Some(WIDGET_CRD));
    c.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: doomed}\n"),
    );
    let content = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: doomed}\n---\n\
        apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: doomed}\nspec: {containers: [{name: c, image: busybox}]}\n---\n\
        apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: doomed, finalizers: [example.com/hold]}\n";
    c.kubectl_stdin(&["apply", "-f", "-"], Some(content));
    c.kubectl(&["delete", "ns", "doomed", "--wait=false"]);
    // The widget's finalizer keeps the namespace Terminating, with the reason in a condition.
    eventually(
        "namespace terminating, content gone but the held widget",
        Duration::from_secs(15),
        || {
            let phase = c.kubectl(&["get", "ns", "doomed", "-o", "jsonpath={.status.phase}"]);
            let left = names(&c, &["-n", "doomed", "cm,pods,widgets"]);
            (phase == "Terminating" && left == ["widget.example.com/w"])
                .then_some(())
                .ok_or(format!("{phase} {left:?}"))
        },
    );
    let refused = c.kubectl_fails(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, namespace: doomed}\n"),
    );
    assert!(
        refused.contains("because it is being terminated"),
        "{refused}"
    );
    eventually(
        "NamespaceContentRemaining condition",
        Duration::from_secs(10),
        || {
            let conditions =
                c.kubectl(&["get", "ns", "doomed", "-o", "jsonpath={.status.conditions}"]);
            conditions
                .contains("NamespaceContentRemaining")
                .then_some(())
                .ok_or(conditions)
        },
    );
    c.kubectl(&[
        "-n",
        "doomed",
        "patch",
        "widget",
        "w",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    eventually("namespace gone", Duration::from_secs(15), || {
        let out = c.kubectl_raw(&["get", "ns", "doomed"], None);
        (!out.status.success())
            .then_some(())
            .ok_or_else(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
}

fn controller_manager(c: &Cluster, log: &str) -> Child {
    let log = std::fs::File::create(c.data_dir().join(log)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["controller-manager", "--kubeconfig"])
        .arg(c.kubeconfig())
        .args(common::SHORT_LEASES)
        .env("RKUBE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[test]
fn two_controller_managers_only_the_leader_acts() {
    let Some(c) = common::start_with(&["--disable-controller-manager"]) else {
        return;
    };
    // No controller manager yet: a new namespace gets no service account.
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: one}\n"),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(names(&c, &["-n", "one", "sa"]).is_empty());

    let mut first = controller_manager(&c, "cm1.log");
    let mut second = controller_manager(&c, "cm2.log");
    let holder = || {
        c.kubectl(&[
            "-n",
            "kube-system",
            "get",
            "lease",
            "kube-controller-manager",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
    };
    let mut leader = String::new();
    eventually("a leader", Duration::from_secs(15), || {
        let out = c.kubectl_raw(
            &[
                "-n",
                "kube-system",
                "get",
                "lease",
                "kube-controller-manager",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
            None,
        );
        leader = String::from_utf8_lossy(&out.stdout).into_owned();
        (!leader.is_empty())
            .then_some(())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    eventually("the leader acts", Duration::from_secs(10), || {
        (names(&c, &["-n", "one", "sa"]) == ["serviceaccount/default"])
            .then_some(())
            .ok_or_default()
    });
    // Exactly one of the two logs says it leads.
    let leading = |log: &str| {
        std::fs::read_to_string(c.data_dir().join(log))
            .unwrap_or_default()
            .contains("became leader")
    };
    assert_eq!(
        u8::from(leading("cm1.log")) + u8::from(leading("cm2.log")),
        1
    );

    // Kill the leader without a chance to release: the other takes over after the lease ends.
    let (dead, alive_log) = if leading("cm1.log") {
        (&mut first, "cm2.log")
    } else {
        (&mut second, "cm1.log")
    };
    dead.kill().unwrap();
    dead.wait().unwrap();
    eventually("the other takes over", Duration::from_secs(20), || {
        let now = holder();
        (now != leader && !now.is_empty() && leading(alive_log))
            .then_some(())
            .ok_or(now)
    });
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: two}\n"),
    );
    eventually("the new leader acts", Duration::from_secs(10), || {
        (names(&c, &["-n", "two", "sa"]) == ["serviceaccount/default"])
            .then_some(())
            .ok_or_default()
    });
    let transitions = c.kubectl(&[
        "-n",
        "kube-system",
        "get",
        "lease",
        "kube-controller-manager",
        "-o",
        "jsonpath={.spec.leaseTransitions}",
    ]);
    assert_eq!(transitions, "1");
    let _ = first.kill();
    let _ = second.kill();
    let _ = first.wait();
    let _ = second.wait();
}

trait OkOrDefault {
    fn ok_or_default(self) -> Result<(), String>;
}

impl OkOrDefault for Option<()> {
    fn ok_or_default(self) -> Result<(), String> {
        self.ok_or_else(String::new)
    }
}

fn pod_with_ip(c: &Cluster, name: &str, app: &str, ip: &str, ready: bool) {
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {app}}}}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports: [{{name: web, containerPort: 8080}}]\n"
    );
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&pod));
    let status = format!(
        r#"{{"status":{{"phase":"Running","podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}],"conditions":[{{"type":"Ready","status":"{}"}}]}}}}"#,
        if ready { "True" } else { "False" }
    );
    c.kubectl(&[
        "patch",
        "pod",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
}

#[test]
fn services_get_endpoints_and_slices_of_the_pods_they_select() {
    let Some(c) = common::start() else { return };
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: web, labels: {tier: front}}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: web}]\n";
    c.kubectl_stdin(&["apply", "-f", "-"], Some(service));
    c.kubectl_stdin(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: Service\nmetadata: {name: manual}\nspec:\n  ports: [{port: 80}]\n"));
    pod_with_ip(&c, "web-1", "web", "10.42.0.11", true);
    pod_with_ip(&c, "web-2", "web", "10.42.0.12", false);
    pod_with_ip(&c, "other", "db", "10.42.0.13", true);
    eventually(
        "endpoints with ready and not-ready addresses",
        Duration::from_secs(10),
        || {
            let ready = c.kubectl(&[
                "get",
                "endpoints",
                "web",
                "-o",
                "jsonpath={.subsets[0].addresses[*].ip}",
            ]);
            let not_ready = c.kubectl(&[
                "get",
                "endpoints",
                "web",
                "-o",
                "jsonpath={.subsets[0].notReadyAddresses[*].ip}",
            ]);
            let port = c.kubectl(&[
                "get",
                "endpoints",
                "web",
                "-o",
                "jsonpath={.subsets[0].ports[0].port}",
            ]);
            (ready == "10.42.0.11" && not_ready == "10.42.0.12" && port == "8080")
                .then_some(())
                .ok_or(format!("{ready}|{not_ready}|{port}"))
        },
    );
    assert_eq!(
        c.kubectl(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.metadata.labels.tier}"
        ]),
        "front"
    );
    eventually(
        "an endpoint slice owned by the service",
        Duration::from_secs(10),
        || {
            let out = c.kubectl(&[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "jsonpath={range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready} {end}",
            ]);
            (out.trim() == "10.42.0.11=true 10.42.0.12=false")
                .then_some(())
                .ok_or(out)
        },
    );
    let owner = c.kubectl(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "jsonpath={.items[0].metadata.ownerReferences[0].kind}",
    ]);
    assert_eq!(owner, "Service");
    // The pod turns ready, another leaves the selector: both views follow.
    c.kubectl(&[
        "patch",
        "pod",
        "web-2",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    c.kubectl(&["label", "pod", "web-1", "app=gone", "--overwrite"]);
    eventually("endpoints follow pods", Duration::from_secs(10), || {
        let ready = c.kubectl(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ]);
        let sliced = c.kubectl(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[0]}",
        ]);
        (ready == "10.42.0.12" && sliced == "10.42.0.12")
            .then_some(())
            .ok_or(format!("{ready}|{sliced}"))
    });
    // A service without a selector gets no endpoints from the controller.
    let manual = c.kubectl_raw(&["get", "endpoints", "manual"], None);
    assert!(!manual.status.success());
    // Deleting the service removes its endpoints and (through the collector) its slices.
    c.kubectl(&["delete", "svc", "web"]);
    eventually(
        "endpoints and slices gone with the service",
        Duration::from_secs(10),
        || {
            let left = names(&c, &["endpoints,endpointslices"]);
            left.iter()
                .all(|n| !n.contains("/web"))
                .then_some(())
                .ok_or(format!("{left:?}"))
        },
    );
}

fn node(c: &Cluster, name: &str) {
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}}}}}\n")));
    let now = c.kubectl(&[
        "get",
        "node",
        name,
        "-o",
        "jsonpath={.metadata.creationTimestamp}",
    ]);
    let status = format!(
        r#"{{"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","lastHeartbeatTime":"{now}","lastTransitionTime":"{now}"}}],"capacity":{{"cpu":"4","memory":"8Gi","pods":"110"}},"allocatable":{{"cpu":"4","memory":"8Gi","pods":"110"}}}}"#
    );
    c.patch_node_status(name, &status);
}

fn renew_lease(c: &Cluster, name: &str) {
    let now = time_now_micro();
    let lease = format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: {name}, namespace: kube-node-lease}}\nspec: {{holderIdentity: {name}, leaseDurationSeconds: 40, renewTime: \"{now}\"}}\n"
    );
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&lease));
}

fn time_now_micro() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_silent_node_goes_unknown_is_tainted_and_its_pods_are_evicted() {
    let Some(c) = common::start_with(&[
        "--node-monitor-period",
        "1s",
        "--node-monitor-grace-period",
        "4s",
        "--default-unreachable-toleration-seconds",
        "2",
    ]) else {
        return;
    };
    node(&c, "alive");
    node(&c, "silent");
    renew_lease(&c, "alive");
    renew_lease(&c, "silent");
    let pods = "apiVersion: v1\nkind: Pod\nmetadata: {name: on-silent}\nspec: {nodeName: silent, containers: [{name: c, image: busybox}]}\n---\n\
        apiVersion: v1\nkind: Pod\nmetadata: {name: stays}\nspec:\n  nodeName: silent\n  containers: [{name: c, image: busybox}]\n  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}]\n---\n\
        apiVersion: v1\nkind: Pod\nmetadata: {name: on-alive}\nspec: {nodeName: alive, containers: [{name: c, image: busybox}]}\n";
    c.kubectl_stdin(&["apply", "-f", "-"], Some(pods));
    // The API server's DefaultTolerationSeconds admission.
    let tolerations = c.kubectl(&[
        "get",
        "pod",
        "on-silent",
        "-o",
        "jsonpath={.spec.tolerations[*].tolerationSeconds}",
    ]);
    assert_eq!(tolerations, "300 2");
    // Each node gets its own pod CIDR.
    eventually("pod CIDRs assigned", Duration::from_secs(10), || {
        let cidrs = c.kubectl(&["get", "nodes", "-o", "jsonpath={.items[*].spec.podCIDR}"]);
        let list: Vec<&str> = cidrs.split_whitespace().collect();
        (list.len() == 2
            && list[0] != list[1]
            && list
                .iter()
                .all(|c| c.starts_with("10.42.") && c.ends_with("/24")))
        .then_some(())
        .ok_or(cidrs)
    });
    // Only "alive" keeps renewing.
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut went_unknown = false;
    while Instant::now() < deadline {
        renew_lease(&c, "alive");
        let ready = c.kubectl(&[
            "get",
            "node",
            "silent",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        let evicted = c.kubectl(&[
            "get",
            "pod",
            "on-silent",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ]);
        if ready == "Unknown" && !evicted.is_empty() {
            went_unknown = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        went_unknown,
        "the silent node never went Unknown with its pod evicted:\n{}",
        c.kubectl(&["get", "nodes,pods", "-o", "wide"])
    );
    let message = c.kubectl(&[
        "get",
        "node",
        "silent",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
    ]);
    assert_eq!(message, "Kubelet stopped posting node status.");
    let taints = c.kubectl(&[
        "get",
        "node",
        "silent",
        "-o",
        "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
    ]);
    assert_eq!(
        taints.trim(),
        "node.kubernetes.io/unreachable:NoSchedule node.kubernetes.io/unreachable:NoExecute"
    );
    // The pod that tolerates the taint forever stays, not ready; the healthy node is untouched.
    assert!(
        c.kubectl(&[
            "get",
            "pod",
            "stays",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}"
        ])
        .is_empty()
    );
    assert!(
        c.kubectl(&["get", "node", "alive", "-o", "jsonpath={.spec.taints}"])
            .is_empty()
    );
    assert_eq!(
        c.kubectl(&[
            "get",
            "node",
            "alive",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"
        ]),
        "True"
    );
    assert!(
        c.kubectl(&[
            "get",
            "pod",
            "on-alive",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}"
        ])
        .is_empty()
    );
    let events = c.kubectl(&["get", "events", "-o", "jsonpath={.items[*].reason}"]);
    assert!(
        events.contains("TaintManagerEviction") && events.contains("NodeNotReady"),
        "{events}"
    );
    // The node comes back: taints go.
    let back = format!(
        r#"{{"status":{{"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","lastHeartbeatTime":"{}"}}]}}}}"#,
        time_now_micro().split('.').next().unwrap().to_owned() + "Z"
    );
    c.kubectl(&[
        "patch",
        "node",
        "silent",
        "--subresource=status",
        "--type=merge",
        "-p",
        &back,
    ]);
    renew_lease(&c, "silent");
    eventually(
        "taints removed when the node is back",
        Duration::from_secs(10),
        || {
            renew_lease(&c, "silent");
            let taints = c.kubectl(&["get", "node", "silent", "-o", "jsonpath={.spec.taints}"]);
            taints.is_empty().then_some(()).ok_or(taints)
        },
    );
}

#[test]
fn pod_garbage_collection() {
    let Some(c) = common::start_with(&[
        "--pod-gc-period",
        "1s",
        "--terminated-pod-gc-threshold",
        "2",
    ]) else {
        return;
    };
    for i in 0..4 {
        c.kubectl_stdin(&["apply", "-f", "-"], Some(&format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: done-{i}}}\nspec: {{containers: [{{name: c, image: busybox}}]}}\n")));
        c.kubectl(&[
            "patch",
            "pod",
            &format!("done-{i}"),
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Succeeded"}}"#,
        ]);
        // Distinct creation seconds, so "oldest" is well defined.
        std::thread::sleep(Duration::from_millis(1100));
    }
    c.kubectl_stdin(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: Pod\nmetadata: {name: on-ghost}\nspec: {nodeName: ghost, containers: [{name: c, image: busybox}]}\n"));
    c.kubectl_stdin(&["apply", "-f", "-"], Some("apiVersion: v1\nkind: Pod\nmetadata: {name: pending}\nspec: {containers: [{name: c, image: busybox}]}\n"));
    eventually(
        "terminated pods over the threshold and orphans collected",
        Duration::from_secs(15),
        || {
            let left = names(&c, &["pods"]);
            (left == ["pod/done-2", "pod/done-3", "pod/pending"])
                .then_some(())
                .ok_or(format!("{left:?}"))
        },
    );
}

#[test]
fn resource_quota_usage_is_counted() {
    let Some(c) = common::start() else { return };
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec:\n  hard: {pods: \"10\", requests.cpu: \"2\", requests.memory: 1Gi, limits.memory: 2Gi, configmaps: \"5\", services: \"3\", count/deployments.apps: \"4\"}\n";
    c.kubectl_stdin(&["apply", "-f", "-"], Some(quota));
    let pods = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: busybox, resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {memory: 128Mi}}}]}\n---\n\
        apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c, image: busybox, resources: {requests: {cpu: 500m, memory: 64Mi}}}]}\n---\n\
        apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n";
    c.kubectl_stdin(&["apply", "-f", "-"], Some(pods));
    let used = |r: &str| {
        c.kubectl(&[
            "get",
            "resourcequota",
            "q",
            "-o",
            &format!("jsonpath={{.status.used.{}}}", r.replace('.', "\\.")),
        ])
    };
    eventually("quota usage", Duration::from_secs(10), || {
        let got = [
            "pods",
            "requests.cpu",
            "requests.memory",
            "limits.memory",
            "configmaps",
            "services",
            "count/deployments.apps",
        ]
        .map(used);
        // kube-root-ca.crt is the namespace's one ConfigMap; `kubernetes` is a service of
        // `default` too.
        (got == ["2", "750m", "128Mi", "128Mi", "1", "2", "0"])
            .then_some(())
            .ok_or(format!("{got:?}"))
    });
    assert_eq!(
        c.kubectl(&[
            "get",
            "resourcequota",
            "q",
            "-o",
            "jsonpath={.status.hard.pods}"
        ]),
        "10"
    );
    // A finished pod no longer counts.
    c.kubectl(&[
        "patch",
        "pod",
        "b",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Succeeded"}}"#,
    ]);
    eventually("finished pods released", Duration::from_secs(10), || {
        let got = [used("pods"), used("requests.cpu")];
        (got == ["1", "250m"])
            .then_some(())
            .ok_or(format!("{got:?}"))
    });
}

fn lb_service(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: LoadBalancer\n  selector: {{app: {name}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n{extra}"
    )
}

fn external_ip(c: &Cluster, svc: &str) -> String {
    c.kubectl(&[
        "get",
        "svc",
        svc,
        "-o",
        "jsonpath={.status.loadBalancer.ingress[*].ip}",
    ])
}

#[test]
fn load_balancers_get_addresses_from_the_pool() {
    let Some(c) = common::start_with(&["--loadbalancer-ip-pool", "10.44.0.0/30"]) else {
        return;
    };
    // Two usable addresses: .1 and .2. `b` asks for .2.
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&lb_service("a", "")));
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&lb_service("b", "  loadBalancerIP: 10.44.0.2\n")),
    );
    c.eventually("a and b get addresses", Duration::from_secs(20), || {
        let got = (external_ip(&c, "a"), external_ip(&c, "b"));
        (got == ("10.44.0.1".into(), "10.44.0.2".into()))
            .then_some(())
            .ok_or(format!("{got:?}"))
    });
    let table = c.kubectl(&["get", "svc", "a"]);
    assert!(table.contains("10.44.0.1"), "{table}");
    let finalizers = c.kubectl(&["get", "svc", "a", "-o", "jsonpath={.metadata.finalizers}"]);
    assert!(
        finalizers.contains("service.kubernetes.io/load-balancer-cleanup"),
        "{finalizers}"
    );
    assert_eq!(
        c.kubectl(&[
            "get",
            "svc",
            "a",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ipMode}"
        ]),
        "VIP"
    );

    // The pool is empty: `c` stays pending with a warning, until `a` goes and frees .1.
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&lb_service("c", "")));
    c.eventually("c fails to sync", Duration::from_secs(20), || {
        let events = c.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=c,reason=SyncLoadBalancerFailed",
        ]);
        events
            .contains("no free address in the load balancer pool 10.44.0.0/30")
            .then_some(())
            .ok_or(events)
    });
    assert!(c.kubectl(&["get", "svc", "c"]).contains("<pending>"));
    c.kubectl(&["delete", "svc", "a", "--timeout=20s"]);
    c.eventually("c gets a's address", Duration::from_secs(45), || {
        let got = external_ip(&c, "c");
        (got == "10.44.0.1").then_some(()).ok_or(got)
    });

    // No longer a load balancer: the address and the finalizer go.
    c.kubectl(&[
        "patch",
        "svc",
        "b",
        "--type=merge",
        "-p",
        r#"{"spec":{"type":"ClusterIP","loadBalancerIP":null,"allocateLoadBalancerNodePorts":null,"externalTrafficPolicy":null}}"#,
    ]);
    c.eventually("b released", Duration::from_secs(20), || {
        let got = (
            external_ip(&c, "b"),
            c.kubectl(&["get", "svc", "b", "-o", "jsonpath={.metadata.finalizers}"]),
        );
        (got == (String::new(), String::new()))
            .then_some(())
            .ok_or(format!("{got:?}"))
    });
    let events = c.kubectl(&["get", "events", "--field-selector", "involvedObject.name=b"]);
    for reason in ["EnsuredLoadBalancer", "DeletedLoadBalancer"] {
        assert!(events.contains(reason), "{reason} missing:\n{events}");
    }
}

#[test]
fn load_balancers_publish_the_ready_nodes_addresses_without_a_pool() {
    let Some(c) = common::start() else {
        return;
    };
    for (name, ip) in [("n1", "192.0.2.11"), ("n2", "192.0.2.12")] {
        node(&c, name);
        c.patch_node_status(
            name,
            &format!(r#"{{"addresses":[{{"type":"InternalIP","address":"{ip}"}}]}}"#),
        );
        renew_lease(&c, name);
    }
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&lb_service("web", "")));
    c.eventually(
        "web has both node addresses",
        Duration::from_secs(20),
        || {
            let got = external_ip(&c, "web");
            (got == "192.0.2.11 192.0.2.12").then_some(()).ok_or(got)
        },
    );
}

#[test]
fn claims_bind_to_volumes_and_the_default_class_provisions() {
    let Some(c) = common::start_with(&["--local-path-dir", "/srv/rkube-test-volumes"]) else {
        return;
    };
    // A static volume and a claim of no class: bound to each other.
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            r#"apiVersion: v1
kind: PersistentVolume
metadata: {name: static-1}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {path: /tmp/static-1}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  storageClassName: ""
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 500Mi}}
"#,
        ),
    );
    c.eventually("data bound to static-1", Duration::from_secs(20), || {
        let line = c.kubectl(&["get", "pvc", "data", "--no-headers"]);
        let f: Vec<&str> = line.split_whitespace().collect();
        // NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS ...
        (f.get(1) == Some(&"Bound") && f.get(2) == Some(&"static-1") && f.get(3) == Some(&"1Gi"))
            .then_some(())
            .ok_or(line)
    });
    let pv = c.kubectl(&[
        "get",
        "pv",
        "static-1",
        "-o",
        "jsonpath={.status.phase} {.spec.claimRef.namespace}/{.spec.claimRef.name}",
    ]);
    assert_eq!(pv, "Bound default/data");

    // A claim without a class gets the default class and a provisioned volume.
    let class = c.kubectl(&["get", "storageclass"]);
    assert!(
        class.contains("local-path (default)") && class.contains("rkube.io/local-path"),
        "{class}"
    );
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: dyn}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 2Gi}}\n",
        ),
    );
    assert_eq!(
        c.kubectl(&[
            "get",
            "pvc",
            "dyn",
            "-o",
            "jsonpath={.spec.storageClassName}"
        ]),
        "local-path"
    );
    let uid = c.kubectl(&["get", "pvc", "dyn", "-o", "jsonpath={.metadata.uid}"]);
    let volume = format!("pvc-{uid}");
    c.eventually("dyn bound to a new volume", Duration::from_secs(20), || {
        let got = c.kubectl(&[
            "get",
            "pvc",
            "dyn",
            "-o",
            "jsonpath={.status.phase} {.spec.volumeName} {.status.capacity.storage}",
        ]);
        (got == format!("Bound {volume} 2Gi"))
            .then_some(())
            .ok_or(got)
    });
    let path = c.kubectl(&["get", "pv", &volume, "-o", "jsonpath={.spec.hostPath.path}"]);
    assert_eq!(
        path,
        format!("/srv/rkube-test-volumes/{volume}_default_dyn")
    );
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=dyn",
    ]);
    assert!(events.contains("ProvisioningSucceeded"), "{events}");

    // Deleting the claims: the provisioned volume goes (Delete), the static one is Released.
    c.kubectl(&["delete", "pvc", "dyn", "data", "--timeout=20s"]);
    c.eventually("volumes reclaimed", Duration::from_secs(20), || {
        let pvs = c.kubectl(&[
            "get",
            "pv",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}",
        ]);
        (pvs.trim() == "static-1=Released").then_some(()).ok_or(pvs)
    });

    // No class and nothing that fits: the claim waits, and says why.
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: lonely}\nspec:\n  storageClassName: \"\"\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"),
    );
    c.eventually("lonely says why", Duration::from_secs(20), || {
        let events = c.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=lonely",
        ]);
        events
            .contains("no persistent volumes available for this claim and no storage class is set")
            .then_some(())
            .ok_or(events)
    });
    assert!(c.kubectl(&["get", "pvc", "lonely"]).contains("Pending"));
}
