//! The service proxy end to end: a real `rkube server`, Services and EndpointSlices written
//! with kubectl 1.33, `rkube proxy` programming real nftables, and "pods" that are network
//! namespaces on a test bridge, each running busybox httpd answering its own name.
//!
//! Every test has its own number X: bridge `rkpbX` at 10.244.X.1/24, pods at
//! 10.244.X.10+i, service IPs 10.96.X.Y, its own nft table `rkp-test-X`; traffic goes only
//! to those addresses. Needs root, nft, iproute2, busybox (httpd) and curl: skipped without them, and a
//! failure under CI=true.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::Cluster;

const WAIT: Duration = Duration::from_secs(30);

/// Whether this machine can run the tests; under CI=true a missing piece fails the test.
fn prerequisites() -> bool {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let has = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    let missing: Vec<&str> = [
        (!is_root).then_some("root"),
        (!has("nft", "--version")).then_some("nft"),
        (!has("ip", "-V")).then_some("iproute2"),
        (!has("busybox", "true")).then_some("busybox"),
        (!has("curl", "--version")).then_some("curl"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "proxy tests need {missing:?} but CI=true"
    );
    eprintln!("SKIPPED: proxy tests need {missing:?}");
    false
}

fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_quiet(cmd: &str, args: &[&str]) {
    let _ = Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A test bridge with pods: network namespaces, each with a veth on the bridge and busybox
/// httpd on :8080 answering its name. Torn down when dropped.
struct Lab {
    x: u8,
    dir: tempfile::TempDir,
    pods: Vec<Pod>,
}

struct Pod {
    name: String,
    netns: String,
    ip: String,
    httpd: Option<Child>,
}

impl Lab {
    fn new(x: u8, pods: usize) -> Lab {
        let bridge = format!("rkpb{x}");
        let mut lab = Lab {
            x,
            dir: tempfile::tempdir().unwrap(),
            pods: Vec::new(),
        };
        lab.teardown(pods); // leftovers of a crashed run
        sh("ip", &["link", "add", &bridge, "type", "bridge"]);
        sh(
            "ip",
            &["addr", "add", &format!("10.244.{x}.1/24"), "dev", &bridge],
        );
        sh("ip", &["link", "set", &bridge, "up"]);
        // Forwarding for packets arriving on this bridge only (pod → service → pod).
        std::fs::write(format!("/proc/sys/net/ipv4/conf/{bridge}/forwarding"), "1").unwrap();
        for i in 0..pods {
            let name = format!("pod{i}");
            let netns = format!("rkp{x}-{i}");
            let veth = format!("rkpv{x}-{i}");
            let ip = format!("10.244.{x}.{}", 10 + i);
            sh("ip", &["netns", "add", &netns]);
            sh(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
                ],
            );
            sh("ip", &["link", "set", &veth, "master", &bridge, "up"]);
            // As kubelet and the CNI bridge plugin set it: a pod's packets DNATed back to
            // the pod itself are bridged out of the port they came in on.
            sh(
                "ip",
                &[
                    "link",
                    "set",
                    &veth,
                    "type",
                    "bridge_slave",
                    "hairpin",
                    "on",
                ],
            );
            sh(
                "ip",
                &[
                    "-n",
                    &netns,
                    "addr",
                    "add",
                    &format!("{ip}/24"),
                    "dev",
                    "eth0",
                ],
            );
            sh("ip", &["-n", &netns, "link", "set", "eth0", "up"]);
            sh("ip", &["-n", &netns, "link", "set", "lo", "up"]);
            sh(
                "ip",
                &[
                    "-n",
                    &netns,
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("10.244.{x}.1"),
                ],
            );
            let root = lab.dir.path().join(&name);
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("index.html"), &name).unwrap();
            let httpd = Command::new("ip")
                .args([
                    "netns", "exec", &netns, "busybox", "httpd", "-f", "-p", "8080", "-h",
                ])
                .arg(&root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            lab.pods.push(Pod {
                name,
                netns,
                ip,
                httpd: Some(httpd),
            });
        }
        // Every pod answers directly before any test relies on the proxy.
        for pod in &lab.pods {
            let addr: SocketAddr = format!("{}:8080", pod.ip).parse().unwrap();
            common::eventually(&format!("{} answers", pod.name), WAIT, || {
                get(addr)
                    .map_err(|e| e.to_string())
                    .and_then(|body| (body == pod.name).then_some(()).ok_or(body))
            });
        }
        lab
    }

    fn pod_ip(&self, i: usize) -> &str {
        &self.pods[i].ip
    }

    fn gateway(&self) -> String {
        format!("10.244.{}.1", self.x)
    }

    fn teardown(&mut self, pods: usize) {
        for pod in &mut self.pods {
            if let Some(mut child) = pod.httpd.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for i in 0..pods.max(self.pods.len()) {
            sh_quiet("ip", &["netns", "del", &format!("rkp{}-{i}", self.x)]);
            sh_quiet("ip", &["link", "del", &format!("rkpv{}-{i}", self.x)]);
        }
        sh_quiet("ip", &["link", "del", &format!("rkpb{}", self.x)]);
    }

    /// An HTTP GET from inside pod `i`'s network namespace: the body, or the error.
    fn get_from_pod(&self, i: usize, addr: &str) -> Result<String, String> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.pods[i].netns,
                "curl",
                "-sS",
                "-m",
                "3",
            ])
            .arg(format!("http://{addr}/"))
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let n = self.pods.len();
        self.teardown(n);
    }
}

/// An HTTP GET from the host: the body.
fn get(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    Ok(body.trim().to_owned())
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The names `n` requests reach.
fn reached(
    n: usize,
    mut request: impl FnMut() -> Result<String, String>,
) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    for _ in 0..n {
        names.insert(request()?);
    }
    Ok(names)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// A running `rkube proxy`; killed (and its table deleted) when dropped.
struct Proxy {
    child: Option<Child>,
    table: String,
    log: PathBuf,
}

impl Proxy {
    fn start(cluster: &Cluster, x: u8, hostname: &str, extra: &[&str]) -> Proxy {
        let table = format!("rkp-test-{x}");
        let log = cluster
            .data_dir()
            .join(format!("proxy-{}.log", rand_suffix()));
        let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .arg("proxy")
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["--hostname-override", hostname])
            .args(if extra.contains(&"--cluster-cidr") {
                vec![]
            } else {
                vec!["--cluster-cidr".to_owned(), format!("10.244.{x}.0/24")]
            })
            .args(["--nft-table", &table])
            .args(extra)
            .env("RKUBE_LOG", "info,rkube_proxy=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let proxy = Proxy {
            child: Some(child),
            table,
            log,
        };
        // Nothing goes to a service address before the rules are in: it would leave the host.
        proxy.wait_synced();
        proxy
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_synced(&self) {
        common::eventually("the proxy's first sync", WAIT, || {
            let log = self.log();
            if log.contains("proxy rules synced (full, table replaced)") {
                Ok(())
            } else {
                Err(log)
            }
        });
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        sh("kill", &["-TERM", &child.id().to_string()]);
        child.wait().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill();
        sh_quiet("nft", &["delete", "table", "ip", &self.table]);
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A selector-less Service; `extra` is YAML merged into its spec (indented 2 spaces).
fn service_yaml(name: &str, cluster_ip: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  clusterIP: {cluster_ip}
  clusterIPs: [{cluster_ip}]
{extra}"
    )
}

/// An EndpointSlice for `service`: (address, ready, nodeName) per endpoint, port 8080 named http.
fn slice_yaml(service: &str, endpoints: &[(&str, bool, &str)]) -> String {
    let mut eps = String::new();
    for (ip, ready, node) in endpoints {
        eps.push_str(&format!(
            "- addresses: [\"{ip}\"]\n  conditions: {{ready: {ready}, serving: {ready}, terminating: false}}\n  nodeName: {node}\n"
        ));
    }
    if endpoints.is_empty() {
        eps.push_str("[]\n");
    }
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {service}-1
  namespace: default
  labels:
    kubernetes.io/service-name: {service}
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:
{eps}"
    )
    .replace("endpoints:\n[]", "endpoints: []")
}

fn apply(cluster: &Cluster, yaml: &str) {
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(yaml));
}

const HTTP_PORT: &str = "  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n";

#[test]
fn cluster_ip_balances_follows_readiness_refuses_when_empty_and_hairpins() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = common::start_with(&["--service-cidr", "10.96.0.0/12"]) else {
        return;
    };
    let lab = Lab::new(201, 3);
    let node = "rkp-node-201";
    apply(&cluster, &service_yaml("web", "10.96.201.10", HTTP_PORT));
    apply(
        &cluster,
        &slice_yaml(
            "web",
            &[
                (lab.pod_ip(0), true, node),
                (lab.pod_ip(1), true, node),
                (lab.pod_ip(2), true, "elsewhere"),
            ],
        ),
    );
    // The API server keeps the ClusterIP it was given.
    assert_eq!(
        cluster.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]),
        "10.96.201.10"
    );
    let mut proxy = Proxy::start(&cluster, 201, node, &["--disable-host-routes"]);
    let vip = addr("10.96.201.10:80");
    let all = set(&["pod0", "pod1", "pod2"]);

    // From the node itself: every endpoint gets traffic.
    cluster.eventually(
        "the ClusterIP reaches all 3 pods from the host",
        WAIT,
        || {
            let names = reached(40, || get(vip).map_err(|e| e.to_string()))?;
            (names == all)
                .then_some(())
                .ok_or(format!("{names:?}\n{}", proxy.log()))
        },
    );
    // From a pod, including the pod itself through its own service (hairpin).
    cluster.eventually("the ClusterIP reaches all 3 pods from pod0", WAIT, || {
        let names = reached(40, || lab.get_from_pod(0, "10.96.201.10:80"))?;
        (names == all).then_some(()).ok_or(format!("{names:?}"))
    });

    // pod1 fails readiness: it stops getting traffic.
    apply(
        &cluster,
        &slice_yaml(
            "web",
            &[
                (lab.pod_ip(0), true, node),
                (lab.pod_ip(1), false, node),
                (lab.pod_ip(2), true, "elsewhere"),
            ],
        ),
    );
    cluster.eventually("a not-ready endpoint gets no traffic", WAIT, || {
        let names = reached(40, || get(vip).map_err(|e| e.to_string()))?;
        (names == set(&["pod0", "pod2"]))
            .then_some(())
            .ok_or(format!("{names:?}"))
    });

    // Only pod0 left: a pod reaching itself through its service (hairpin).
    apply(&cluster, &slice_yaml("web", &[(lab.pod_ip(0), true, node)]));
    cluster.eventually("pod0 reaches itself through the service", WAIT, || {
        let names = reached(5, || lab.get_from_pod(0, "10.96.201.10:80"))?;
        (names == set(&["pod0"]))
            .then_some(())
            .ok_or(format!("{names:?}"))
    });

    // No ready endpoint at all: refused at once, from the host and from a pod.
    apply(
        &cluster,
        &slice_yaml(
            "web",
            &[(lab.pod_ip(0), false, node), (lab.pod_ip(1), false, node)],
        ),
    );
    cluster.eventually(
        "a service without endpoints refuses connections",
        WAIT,
        || match TcpStream::connect_timeout(&vip, Duration::from_secs(3)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    // curl: (7) "Couldn't connect to server" is a refusal (a TCP reset); a drop would be
    // (28), a timeout.
    let from_pod = lab.get_from_pod(1, "10.96.201.10:80").unwrap_err();
    assert!(from_pod.starts_with("curl: (7)"), "{from_pod}");

    // A clean exit removes the table.
    assert!(table_exists(&proxy.table));
    let status = proxy.terminate();
    assert!(status.success(), "{status}: {}", proxy.log());
    assert!(!table_exists(&proxy.table), "{}", proxy.log());
}

#[test]
fn nodeport_session_affinity_and_load_balancer() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = common::start_with(&[
        "--service-cidr",
        "10.96.0.0/12",
        "--loadbalancer-ip-pool",
        "10.96.202.240/29",
    ]) else {
        return;
    };
    let lab = Lab::new(202, 3);
    let node = "rkp-node-202";
    let endpoints = [
        (lab.pod_ip(0), true, node),
        (lab.pod_ip(1), true, node),
        (lab.pod_ip(2), true, node),
    ];
    apply(
        &cluster,
        &service_yaml(
            "np",
            "10.96.202.10",
            "  type: NodePort\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n    nodePort: 30202\n",
        ),
    );
    apply(&cluster, &slice_yaml("np", &endpoints));
    apply(
        &cluster,
        &service_yaml(
            "sticky",
            "10.96.202.11",
            &format!(
                "  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 600\n{HTTP_PORT}"
            ),
        ),
    );
    apply(&cluster, &slice_yaml("sticky", &endpoints));
    apply(
        &cluster,
        &service_yaml(
            "lb",
            "10.96.202.12",
            &format!("  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n{HTTP_PORT}"),
        ),
    );
    apply(&cluster, &slice_yaml("lb", &endpoints));
    let _proxy = Proxy::start(&cluster, 202, node, &["--disable-host-routes"]);
    let all = set(&["pod0", "pod1", "pod2"]);

    // The NodePort answers on the node's address, from the node and from a pod.
    let node_port = addr(&format!("{}:30202", lab.gateway()));
    cluster.eventually("the NodePort reaches all pods from the host", WAIT, || {
        let names = reached(40, || get(node_port).map_err(|e| e.to_string()))?;
        (names == all).then_some(()).ok_or(format!("{names:?}"))
    });
    cluster.eventually("the NodePort reaches all pods from a pod", WAIT, || {
        let names = reached(40, || lab.get_from_pod(1, &node_port.to_string()))?;
        (names == all).then_some(()).ok_or(format!("{names:?}"))
    });

    // ClientIP affinity: one client keeps reaching the same pod.
    let sticky = addr("10.96.202.11:80");
    cluster.eventually("the sticky service answers", WAIT, || {
        get(sticky).map(|_| ()).map_err(|e| e.to_string())
    });
    let names = reached(30, || get(sticky).map_err(|e| e.to_string())).unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    let names = reached(30, || lab.get_from_pod(2, "10.96.202.11:80")).unwrap();
    assert_eq!(names.len(), 1, "{names:?}");

    // The load balancer's ingress address (from the controller manager's pool) routes to
    // the service.
    let mut ingress = String::new();
    cluster.eventually("the LoadBalancer gets an address", WAIT, || {
        ingress = cluster.kubectl(&[
            "get",
            "svc",
            "lb",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ]);
        (!ingress.is_empty())
            .then_some(())
            .ok_or_else(|| "no ingress yet".to_owned())
    });
    assert!(ingress.starts_with("10.96.202.24"), "{ingress}");
    let lb = addr(&format!("{ingress}:80"));
    cluster.eventually("the load balancer address reaches all pods", WAIT, || {
        let names = reached(40, || lab.get_from_pod(0, &lb.to_string()))?;
        (names == all).then_some(()).ok_or(format!("{names:?}"))
    });
}

#[test]
fn traffic_policy_local_uses_this_nodes_endpoints() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = common::start_with(&["--service-cidr", "10.96.0.0/12"]) else {
        return;
    };
    let lab = Lab::new(203, 3);
    let node = "rkp-node-203";
    let endpoints = [
        (lab.pod_ip(0), true, node),
        (lab.pod_ip(1), true, "other-node"),
        (lab.pod_ip(2), true, "other-node"),
    ];
    apply(
        &cluster,
        &service_yaml(
            "internal",
            "10.96.203.10",
            &format!("  internalTrafficPolicy: Local\n{HTTP_PORT}"),
        ),
    );
    apply(&cluster, &slice_yaml("internal", &endpoints));
    apply(
        &cluster,
        &service_yaml(
            "external",
            "10.96.203.11",
            "  type: NodePort\n  externalTrafficPolicy: Local\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n    nodePort: 30203\n",
        ),
    );
    apply(&cluster, &slice_yaml("external", &endpoints));
    let _proxy = Proxy::start(
        &cluster,
        203,
        node,
        &["--disable-host-routes", "--cluster-cidr", "10.244.203.0/25"],
    );

    // internalTrafficPolicy Local: the ClusterIP reaches this node's endpoint only.
    let names = reached(30, || {
        get(addr("10.96.203.10:80")).map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(names, set(&["pod0"]));

    // externalTrafficPolicy Local: its ClusterIP still uses every endpoint ...
    cluster.eventually(
        "the Local NodePort service's ClusterIP reaches all pods",
        WAIT,
        || {
            let names = reached(40, || lab.get_from_pod(1, "10.96.203.11:80"))?;
            (names == set(&["pod0", "pod1", "pod2"]))
                .then_some(())
                .ok_or(format!("{names:?}"))
        },
    );
    // ... and traffic from outside the cluster to the NodePort only this node's. The
    // "outside" client is a namespace on the bridge with an address outside the cluster CIDR.
    let outside = Outside::new(203);
    let node_port = format!("{}:30203", lab.gateway());
    let names = reached(20, || outside.get(&node_port)).unwrap();
    assert_eq!(names, set(&["pod0"]));
}

/// A client outside the cluster: a namespace on the test bridge at 10.244.X.200, outside
/// the cluster CIDR the proxy is given (10.244.X.0/25, where the pods are).
struct Outside {
    netns: String,
    veth: String,
}

impl Outside {
    fn new(x: u8) -> Outside {
        let netns = format!("rkp{x}-out");
        let veth = format!("rkpv{x}-out");
        sh_quiet("ip", &["netns", "del", &netns]);
        sh_quiet("ip", &["link", "del", &veth]);
        sh("ip", &["netns", "add", &netns]);
        sh(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ],
        );
        sh(
            "ip",
            &["link", "set", &veth, "master", &format!("rkpb{x}"), "up"],
        );
        sh(
            "ip",
            &[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("10.244.{x}.200/24"),
                "dev",
                "eth0",
            ],
        );
        sh("ip", &["-n", &netns, "link", "set", "eth0", "up"]);
        sh(
            "ip",
            &[
                "-n",
                &netns,
                "route",
                "add",
                "default",
                "via",
                &format!("10.244.{x}.1"),
            ],
        );
        Outside { netns, veth }
    }

    fn get(&self, addr: &str) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns, "curl", "-sS", "-m", "3"])
            .arg(format!("http://{addr}/"))
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        sh_quiet("ip", &["netns", "del", &self.netns]);
        sh_quiet("ip", &["link", "del", &self.veth]);
    }
}

#[test]
fn restarting_the_proxy_keeps_traffic_flowing() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = common::start_with(&["--service-cidr", "10.96.0.0/12"]) else {
        return;
    };
    let lab = Lab::new(204, 2);
    let node = "rkp-node-204";
    apply(&cluster, &service_yaml("web", "10.96.204.10", HTTP_PORT));
    apply(
        &cluster,
        &slice_yaml(
            "web",
            &[(lab.pod_ip(0), true, node), (lab.pod_ip(1), true, node)],
        ),
    );
    let mut first = Proxy::start(&cluster, 204, node, &["--disable-host-routes"]);
    let vip = addr("10.96.204.10:80");
    cluster.eventually("the service answers", WAIT, || {
        get(vip).map(|_| ()).map_err(|e| e.to_string())
    });

    // Connect in a loop while the proxy dies and a new one replaces its table.
    let running = Arc::new(AtomicBool::new(true));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let looper = {
        let (running, ok, failures) = (running.clone(), ok.clone(), failures.clone());
        std::thread::spawn(move || {
            while running.load(Ordering::SeqCst) {
                match get(vip) {
                    Ok(body) if body.starts_with("pod") => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    other => failures.lock().unwrap().push(format!("{other:?}")),
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    first.kill(); // as a crash or an upgrade would
    let second = Proxy::start(&cluster, 204, node, &["--disable-host-routes"]);
    // The new proxy programs changes: traffic moves to pod1 only.
    apply(
        &cluster,
        &slice_yaml(
            "web",
            &[(lab.pod_ip(0), false, node), (lab.pod_ip(1), true, node)],
        ),
    );
    cluster.eventually("the new proxy applies changes", WAIT, || {
        let names = reached(20, || get(vip).map_err(|e| e.to_string()))?;
        (names == set(&["pod1"]))
            .then_some(())
            .ok_or(format!("{names:?}"))
    });
    running.store(false, Ordering::SeqCst);
    looper.join().unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed across the restart: {:?}",
        failures.len(),
        failures.len() + ok.load(Ordering::SeqCst),
        &failures[..failures.len().min(5)]
    );
    assert!(ok.load(Ordering::SeqCst) > 0);
    drop(second);
    drop(first);
}

#[test]
fn host_gw_routes_follow_nodes() {
    if !prerequisites() {
        return;
    }
    let Some(cluster) = common::start_with(&["--service-cidr", "10.96.0.0/12"]) else {
        return;
    };
    let lab = Lab::new(206, 0);
    let me = "rkp-node-206";
    let protocol = "206";
    let routes = || sh("ip", &["route", "show", "proto", protocol]);
    let node = |name: &str, cidr: &str, ip: &str| {
        apply(
            &cluster,
            &format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\nspec:\n  podCIDR: {cidr}\n  podCIDRs: [{cidr}]\n"
            ),
        );
        cluster.kubectl(&[
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(
                "{{\"status\":{{\"addresses\":[{{\"type\":\"InternalIP\",\"address\":\"{ip}\"}}]}}}}"
            ),
        ]);
    };
    // Another node's pod CIDR through its InternalIP (on the test bridge); ourselves: none.
    node("rkp-other-206", "10.245.206.0/24", "10.244.206.50");
    node(me, "10.245.207.0/24", "10.244.206.1");
    let _proxy = Proxy::start(&cluster, 206, me, &["--route-protocol", protocol]);
    cluster.eventually("a route to the other node's pods", WAIT, || {
        let r = routes();
        (r.contains("10.245.206.0/24 via 10.244.206.50 dev rkpb206") && !r.contains("10.245.207.0"))
            .then_some(())
            .ok_or(r)
    });
    // A route someone else made is left alone.
    sh(
        "ip",
        &["route", "add", "10.245.208.0/24", "via", "10.244.206.60"],
    );
    // The node moves, then goes away: the route follows, then goes.
    cluster.kubectl(&[
        "patch",
        "node",
        "rkp-other-206",
        "--subresource=status",
        "--type=merge",
        "-p",
        "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.244.206.51\"}]}}",
    ]);
    cluster.eventually("the route follows the node's address", WAIT, || {
        let r = routes();
        r.contains("10.245.206.0/24 via 10.244.206.51")
            .then_some(())
            .ok_or(r)
    });
    cluster.kubectl(&["delete", "node", "rkp-other-206"]);
    cluster.eventually("the route goes with the node", WAIT, || {
        let r = routes();
        r.trim().is_empty().then_some(()).ok_or(r)
    });
    let all = sh("ip", &["route", "show", "10.245.208.0/24"]);
    assert!(all.contains("via 10.244.206.60"), "{all}");
    sh_quiet("ip", &["route", "del", "10.245.208.0/24"]);
    drop(lab);
}
