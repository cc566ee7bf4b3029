//! Service networking end to end on the multi-node lab: a server in the host's network
//! namespace (`--disable-agent`, reached on the lab bridge) and two `rkube agent`s, each in
//! its own network namespace with its own data dir and its own supervised containerd, so
//! traffic between nodes crosses their veths and the bridge. Pods run Debian's static
//! busybox (httpd answering with its pod's name); clients are pods (`kubectl exec`) and the
//! host (curl), the "outside" of the cluster.
//!
//! Node 0 runs the proxy inside its agent; node 1 runs `rkube agent --disable-proxy` and
//! `rkube proxy` beside it in its namespace, so the proxy can be restarted on its own.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::images::{busybox_archive_with, full, node_prerequisites};
use common::lab::Lab;
use rkube_kubelet::cri::CriClient;
use serde_json::Value;

const IMAGE: &str = "busybox:lab";
const WAIT: Duration = Duration::from_secs(90);

/// A lab with two real nodes; removes every pod sandbox from both containerds before the
/// lab stops the agents and removes the namespaces and the bridge.
struct NodeLab {
    lab: Lab,
    node_dirs: Vec<PathBuf>,
    /// `rkube proxy` on node 1.
    proxy_pid: Option<u32>,
}

impl Drop for NodeLab {
    fn drop(&mut self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for dir in &self.node_dirs {
            let socket = dir.join("agent/containerd/containerd.sock");
            if !socket.exists() {
                continue;
            }
            runtime.block_on(async {
                let Ok(cri) = CriClient::connect(&socket).await else {
                    return;
                };
                for sandbox in cri.list_pod_sandboxes(&[]).await.unwrap_or_default() {
                    let _ = cri.stop_pod_sandbox(&sandbox.id).await;
                    let _ = cri.remove_pod_sandbox(&sandbox.id).await;
                }
            });
        }
    }
}

/// Whether the lab can run here; under CI=true a missing piece fails the test.
fn prerequisites() -> bool {
    let missing = node_prerequisites()
        .err()
        .into_iter()
        .chain(
            Command::new("nft")
                .arg("--version")
                .output()
                .is_err()
                .then(|| "nftables".to_owned()),
        )
        .chain(
            Command::new("curl")
                .arg("--version")
                .output()
                .is_err()
                .then(|| "curl".to_owned()),
        )
        .collect::<Vec<_>>();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the lab's service tests need {missing:?} but CI=true"
    );
    eprintln!("SKIPPED: the lab's service tests need {missing:?}");
    false
}

impl NodeLab {
    fn start() -> Option<NodeLab> {
        if !prerequisites() {
            return None;
        }
        let lab = Lab::start(2, &[])?;
        let mut this = NodeLab {
            lab,
            node_dirs: Vec::new(),
            proxy_pid: None,
        };
        let data = this.lab.cluster.data_dir().to_owned();
        let token = std::fs::read_to_string(data.join("node-token")).unwrap();
        let archive =
            busybox_archive_with(&full(IMAGE), &["nslookup", "timeout", "printf", "chmod"]);
        let url = this.lab.server_url();
        // Something else holds node 1's port 443: its ingress controller serves port 80
        // only, with a warning, and the node runs as usual.
        this.lab
            .spawn(1, &["busybox", "nc", "-l", "-p", "443"], "port443.log");
        common::eventually("port 443 is taken on node 1", WAIT, || {
            let out = this.lab.exec(1, &["ss", "-Htln", "sport = :443"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            (!text.trim().is_empty()).then_some(()).ok_or(text)
        });
        for i in 0..2 {
            let dir = data.join(format!("node{i}"));
            // The image is imported by the node's containerd when the agent starts.
            std::fs::create_dir_all(dir.join("agent/images")).unwrap();
            std::fs::write(dir.join("agent/images/busybox.tar"), &archive).unwrap();
            // The cluster CA (not its key): the agent checks the server with it, and gets
            // its kubelet's serving certificate through a CertificateSigningRequest, which
            // kubectl exec and logs need.
            std::fs::create_dir_all(dir.join("tls")).unwrap();
            std::fs::copy(data.join("tls/ca.crt"), dir.join("tls/ca.crt")).unwrap();
            let name = this.lab.nodes[i].name.clone();
            let mut cmd = vec![
                common::rkube_bin().to_string_lossy().into_owned(),
                "agent".into(),
                "--server".into(),
                url.clone(),
                "--token".into(),
                token.trim().to_owned(),
                "--data-dir".into(),
                dir.to_string_lossy().into_owned(),
                "--node-name".into(),
                name.clone(),
            ];
            if i == 1 {
                cmd.push("--disable-proxy".into());
            }
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            this.lab.spawn(i, &cmd, &format!("agent{i}.log"));
            this.node_dirs.push(dir);
        }
        // Node 1's proxy: `rkube proxy` in its namespace, with a kubeconfig naming the
        // server's bridge address.
        let kubeconfig = std::fs::read_to_string(this.lab.cluster.kubeconfig())
            .unwrap()
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("server:") {
                    format!("    server: {url}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(data.join("node1.kubeconfig"), kubeconfig).unwrap();
        this.start_proxy();
        for i in 0..2 {
            let name = this.lab.nodes[i].name.clone();
            this.eventually(&format!("{name} is Ready"), || {
                let ready = this.kubectl(&[
                    "get",
                    "node",
                    &name,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])?;
                (ready == "True").then_some(()).ok_or(ready)
            });
        }
        Some(this)
    }

    /// Starts `rkube proxy` on node 1; it keeps its rules when stopped, as kube-proxy does.
    fn start_proxy(&mut self) {
        let bin = common::rkube_bin();
        let kubeconfig = self.lab.cluster.data_dir().join("node1.kubeconfig");
        let name = self.lab.nodes[1].name.clone();
        let pid = self.lab.spawn(
            1,
            &[
                bin.to_str().unwrap(),
                "proxy",
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
                "--hostname-override",
                &name,
                "--keep-rules-on-exit",
            ],
            "proxy1.log",
        );
        self.proxy_pid = Some(pid);
    }

    /// Like [`common::eventually`], with the ends of the agents' logs in the failure.
    fn eventually(&self, what: &str, mut check: impl FnMut() -> Result<(), String>) {
        let started = std::time::Instant::now();
        loop {
            match check() {
                Ok(()) => return,
                Err(last) if started.elapsed() > WAIT => {
                    let tail = |log: &str| {
                        let text = self.lab.log(log);
                        let lines: Vec<&str> = text.lines().collect();
                        lines[lines.len().saturating_sub(30)..].join("\n")
                    };
                    let pods = self
                        .kubectl(&["get", "pods", "-o", "wide"])
                        .unwrap_or_else(|e| e);
                    let events = self
                        .kubectl(&["get", "events", "--sort-by=.lastTimestamp"])
                        .unwrap_or_else(|e| e);
                    panic!(
                        "{what}: still not true after {WAIT:?}: {last}\n--- pods\n{pods}\n--- events\n{events}\n--- agent0.log\n{}\n--- agent1.log\n{}\n--- proxy1.log\n{}\n--- server.log\n{}",
                        tail("agent0.log"),
                        tail("agent1.log"),
                        tail("proxy1.log"),
                        tail("server.log"),
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// kubectl's stdout, or its stderr as the error.
    fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let out = self.lab.cluster.kubectl_raw(args, None);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// A command in a pod (`kubectl exec`): its stdout, or stdout and stderr as the error.
    fn exec(&self, pod: &str, cmd: &[&str]) -> Result<String, String> {
        let mut args = vec!["exec", pod, "--"];
        args.extend_from_slice(cmd);
        let out = self.lab.cluster.kubectl_raw(&args, None);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        serde_json::from_str(&self.lab.cluster.kubectl(&args)).unwrap()
    }

    /// The names of the ready pods with this label, by node.
    fn ready_pods(&self, selector: &str) -> Vec<(String, String, String)> {
        let list = self.json(&["get", "pods", "-l", selector]);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap().to_owned(),
                    p["spec"]["nodeName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    p["status"]["podIP"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// GETs a URL from the host's namespace (outside the nodes): the body, or curl's error.
fn curl(url: &str, host: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--noproxy", "*", "-m", "3"]);
    if let Some(host) = host {
        cmd.args(["-H", &format!("Host: {host}")]);
    }
    let out = cmd.arg(url).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The answers of `count` requests from a pod to `url`, one line each.
fn answers(lab: &NodeLab, client: &str, url: &str, count: usize) -> Result<Vec<String>, String> {
    let script = format!(
        "for i in $(seq {count}); do timeout 5 wget -q -O - {url} || echo FAILED; done 2>&1"
    );
    let out = lab.exec(client, &["sh", "-c", &script])?;
    Ok(out.lines().map(str::to_owned).collect())
}

fn workloads(lb_port: u16) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {{matchLabels: {{app: web}}}}
      containers:
      - name: httpd
        image: {IMAGE}
        # Each pod answers with its own name; /ready is what the readiness probe reads.
        # /cgi-bin/ip answers with the client's address as the pod sees it.
        command:
        - sh
        - -c
        - |
          mkdir -p /tmp/www/cgi-bin && hostname > /tmp/www/index.html && echo ok > /tmp/www/ready
          printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n' > /tmp/www/cgi-bin/ip
          chmod +x /tmp/www/cgi-bin/ip
          exec httpd -f -p 8080 -h /tmp/www
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          httpGet: {{path: /ready, port: 8080}}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-nodeport}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-lb}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: {lb_port}, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: other, labels: {{app: other}}}}
spec:
  containers:
  - name: httpd
    image: {IMAGE}
    command: ["sh", "-c", "mkdir -p /tmp/www && echo other > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]
---
apiVersion: v1
kind: Service
metadata: {{name: other}}
spec:
  selector: {{app: other}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: two-hosts}}
spec:
  rules:
  - host: web.lab.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
  - host: other.lab.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: other, port: {{number: 80}}}}}}}}
"#
    )
}

fn client_pod(name: &str, node: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{role: client}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: {IMAGE}
    command: ["sleep", "3600"]
"#
    )
}

#[test]
fn services_dns_ingress_and_load_balancers_across_two_real_nodes() {
    let Some(mut lab) = NodeLab::start() else {
        return;
    };
    let nodes: Vec<(String, String)> = lab
        .lab
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.ip.clone()))
        .collect();
    // The load balancer's port differs from the ingress controller's 80 and 443, which the
    // same node addresses serve.
    let lb_port = 8081;
    lab.lab
        .cluster
        .kubectl_stdin(&["apply", "-f", "-"], Some(&workloads(lb_port)));
    for (i, (node, _)) in nodes.iter().enumerate() {
        lab.lab.cluster.kubectl_stdin(
            &["apply", "-f", "-"],
            Some(&client_pod(&format!("client-{i}"), node)),
        );
    }
    let mut web = Vec::new();
    lab.eventually("3 web pods ready", || {
        web = lab.ready_pods("app=web");
        (web.len() == 3).then_some(()).ok_or(format!("{web:?}"))
    });
    let on_nodes: BTreeSet<&str> = web.iter().map(|(_, node, _)| node.as_str()).collect();
    assert_eq!(on_nodes.len(), 2, "spread over both nodes: {web:?}");
    for (_, _, ip) in &web {
        assert!(ip.starts_with("10.42."), "a pod address: {web:?}");
    }
    lab.eventually("the clients and the other pod are ready", || {
        let ready = lab.ready_pods("role=client").len() + lab.ready_pods("app=other").len();
        (ready == 3).then_some(()).ok_or(format!("{ready} ready"))
    });
    let mut clients = lab.ready_pods("role=client");
    clients.sort();
    let all_web: BTreeSet<String> = web.iter().map(|(name, _, _)| name.clone()).collect();
    let cluster_ip =
        lab.lab
            .cluster
            .kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);

    // Pod to pod across nodes: each client reaches the web pods of the other node directly.
    for (i, client) in ["client-0", "client-1"].iter().enumerate() {
        for (name, node, ip) in &web {
            if *node == nodes[i].0 {
                continue;
            }
            let url = format!("http://{ip}:8080/");
            lab.eventually(&format!("{client} reaches {name} on {node}"), || {
                let got = lab.exec(client, &["timeout", "5", "wget", "-q", "-O", "-", &url])?;
                (got.trim() == name).then_some(()).ok_or(got)
            });
            // Without NAT: the pod sees the client pod's own address.
            let url = format!("http://{ip}:8080/cgi-bin/ip");
            let seen = lab
                .exec(client, &["timeout", "5", "wget", "-q", "-O", "-", &url])
                .unwrap();
            // busybox httpd writes IPv4 clients as [::ffff:A.B.C.D].
            let seen = seen
                .trim()
                .trim_matches(['[', ']'])
                .trim_start_matches("::ffff:");
            assert_eq!(seen, clients[i].2, "{client} as {name} sees it");
        }
    }

    // The ClusterIP from a pod on either node reaches all 3 pods.
    for client in ["client-0", "client-1"] {
        let url = format!("http://{cluster_ip}/");
        let mut seen = BTreeSet::new();
        lab.eventually(&format!("{client} reaches every web pod"), || {
            for answer in answers(&lab, client, &url, 30)? {
                if answer == "FAILED" {
                    return Err(format!("a request failed; seen {seen:?}"));
                }
                seen.insert(answer);
            }
            (seen == all_web).then_some(()).ok_or(format!("{seen:?}"))
        });
        assert!(seen.is_subset(&all_web), "{seen:?}");
    }

    // The service's name resolves in a pod through cluster DNS (10.43.0.10, on the server).
    for client in ["client-0", "client-1"] {
        lab.eventually(&format!("{client} resolves the service"), || {
            let out = lab.exec(client, &["nslookup", "web.default.svc.cluster.local"])?;
            out.contains(&cluster_ip).then_some(()).ok_or(out)
        });
        // The search path: the short name works for wget too.
        let got = lab
            .exec(
                client,
                &["timeout", "5", "wget", "-q", "-O", "-", "http://web/"],
            )
            .unwrap();
        assert!(all_web.contains(got.trim()), "{got}");
    }

    // The API server through the `kubernetes` Service (in-cluster clients' way in): its
    // name resolves and its address takes TCP connections from a pod.
    let api_ip = lab.lab.cluster.kubectl(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let out = lab
        .exec(
            "client-1",
            &["nslookup", "kubernetes.default.svc.cluster.local"],
        )
        .unwrap();
    assert!(out.contains(&api_ip), "{out}");
    lab.exec("client-1", &["nc", "-w", "3", &api_ip, "443"])
        .unwrap();

    // A NodePort answers on every node's address, from outside the nodes.
    let node_port = lab.lab.cluster.kubectl(&[
        "get",
        "svc",
        "web-nodeport",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    for (name, ip) in &nodes {
        let url = format!("http://{ip}:{node_port}/");
        lab.eventually(&format!("the NodePort answers on {name}"), || {
            let got = curl(&url, None)?;
            all_web
                .contains(got.trim())
                .then_some(())
                .ok_or(got.clone())
        });
    }

    // The Ingress routes two hosts to two services, on every node's port 80.
    for (name, ip) in &nodes {
        let url = format!("http://{ip}/");
        lab.eventually(
            &format!("the Ingress routes web.lab.test on {name}"),
            || {
                let got = curl(&url, Some("web.lab.test"))?;
                all_web
                    .contains(got.trim())
                    .then_some(())
                    .ok_or(got.clone())
            },
        );
        lab.eventually(
            &format!("the Ingress routes other.lab.test on {name}"),
            || {
                let got = curl(&url, Some("other.lab.test"))?;
                (got.trim() == "other").then_some(()).ok_or(got.clone())
            },
        );
    }
    // HTTPS on node 0 (the default certificate: the Ingress has no tls section).
    let resolve = format!("web.lab.test:443:{}", nodes[0].1);
    lab.eventually("the Ingress answers HTTPS on node 0", || {
        let out = Command::new("curl")
            .args(["-sSk", "--noproxy", "*", "-m", "3", "--resolve", &resolve])
            .arg("https://web.lab.test/")
            .output()
            .map_err(|e| e.to_string())?;
        let got = String::from_utf8_lossy(&out.stdout).into_owned();
        all_web
            .contains(got.trim())
            .then_some(())
            .ok_or(format!("{got}{}", String::from_utf8_lossy(&out.stderr)))
    });
    // Node 1's taken port 443 is one warning line; its kubelet and port 80 went on.
    let log = lab.lab.log("agent1.log");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(":443"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("ingress cannot listen on 0.0.0.0:443 (HTTPS)")
            && warnings[0].contains("serving HTTP on 0.0.0.0:80 only"),
        "{}",
        warnings[0]
    );
    lab.eventually("the Ingress's status has the nodes' addresses", || {
        let got = lab.kubectl(&[
            "get",
            "ingress",
            "two-hosts",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[*].ip}",
        ])?;
        let ips: BTreeSet<&str> = got.split_whitespace().collect();
        let want: BTreeSet<&str> = nodes.iter().map(|(_, ip)| ip.as_str()).collect();
        (ips == want).then_some(()).ok_or(got.clone())
    });

    // A LoadBalancer service answers on its address.
    let mut lb_ips = Vec::new();
    lab.eventually("the LoadBalancer has an address", || {
        let got = lab.kubectl(&[
            "get",
            "svc",
            "web-lb",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[*].ip}",
        ])?;
        lb_ips = got.split_whitespace().map(str::to_owned).collect();
        (!lb_ips.is_empty()).then_some(()).ok_or(got)
    });
    for ip in &lb_ips {
        let url = format!("http://{ip}:{lb_port}/");
        lab.eventually(&format!("the LoadBalancer answers on {ip}"), || {
            let got = curl(&url, None)?;
            all_web
                .contains(got.trim())
                .then_some(())
                .ok_or(got.clone())
        });
    }

    // Restarting node 1's proxy does not interrupt traffic: a pod on node 1 keeps making
    // new connections to the service while the proxy stops and a new one starts.
    restart_proxy_under_load(&mut lab, &cluster_ip, &all_web);

    // A pod that fails its readiness probe stops getting traffic.
    let (unready, _, _) = web[0].clone();
    lab.exec(&unready, &["rm", "/tmp/www/ready"]).unwrap();
    lab.eventually(&format!("{unready} is no longer ready"), || {
        let ready = lab.ready_pods("app=web");
        (ready.len() == 2 && ready.iter().all(|(n, _, _)| *n != unready))
            .then_some(())
            .ok_or(format!("{ready:?}"))
    });
    let url = format!("http://{cluster_ip}/");
    for client in ["client-0", "client-1"] {
        lab.eventually(&format!("{client} no longer reaches {unready}"), || {
            let got = answers(&lab, client, &url, 20)?;
            let seen: BTreeSet<&str> = got.iter().map(String::as_str).collect();
            let want: BTreeSet<&str> = all_web
                .iter()
                .map(String::as_str)
                .filter(|n| *n != unready)
                .collect();
            (seen == want).then_some(()).ok_or(format!("{seen:?}"))
        });
    }

    // Scaled to zero, the service refuses at once: connection refused, not a timeout.
    lab.lab
        .cluster
        .kubectl(&["scale", "deployment", "web", "--replicas=0"]);
    for client in ["client-0", "client-1"] {
        lab.eventually(&format!("the empty service refuses {client}"), || match lab
            .exec(client, &["timeout", "10", "wget", "-q", "-O", "-", &url])
        {
            Err(e) if e.contains("Connection refused") => Ok(()),
            other => Err(format!("{other:?}")),
        });
    }
    lab.eventually("the empty NodePort refuses from outside", || {
        match curl(&format!("http://{}:{node_port}/", nodes[0].1), None) {
            Err(e) if e.contains("refused") || e.contains("Couldn't connect") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// Runs requests from `client-1` (node 1) to the ClusterIP in a loop while node 1's
/// `rkube proxy` is stopped and started again; every request must succeed.
fn restart_proxy_under_load(lab: &mut NodeLab, cluster_ip: &str, all_web: &BTreeSet<String>) {
    // Until /tmp/stop exists: one new connection every 50 ms, one line per answer.
    let script = format!(
        "rm -f /tmp/stop; while [ ! -f /tmp/stop ]; do timeout 5 wget -q -O - http://{cluster_ip}/ || echo FAILED; sleep 0.05; done 2>&1"
    );
    let mut looping = lab
        .lab
        .cluster
        .kubectl_spawn(&["exec", "client-1", "--", "sh", "-c", &script]);
    let mut lines = BufReader::new(looping.stdout.take().unwrap()).lines();
    let mut answers = Vec::new();
    let mut read = |n: usize, answers: &mut Vec<String>| {
        for _ in 0..n {
            match lines.next() {
                Some(Ok(line)) => answers.push(line),
                other => panic!("the request loop ended: {other:?} after {answers:?}"),
            }
        }
    };
    read(10, &mut answers);
    let before = lab.lab.log("proxy1.log").matches("table replaced").count();
    let pid = lab.proxy_pid.take().unwrap();
    let status = lab.lab.terminate(1, pid);
    assert!(status.success(), "rkube proxy exited with {status}");
    // Stopped with its rules kept: traffic goes on while no proxy runs.
    read(10, &mut answers);
    lab.start_proxy();
    lab.eventually("the new proxy has synced its rules", || {
        let log = lab.lab.log("proxy1.log");
        (log.matches("table replaced").count() > before)
            .then_some(())
            .ok_or_else(|| log.lines().last().unwrap_or_default().to_owned())
    });
    read(20, &mut answers);
    let stop = lab.exec("client-1", &["touch", "/tmp/stop"]);
    assert!(stop.is_ok(), "{stop:?}");
    let _ = looping.wait();
    let failed = answers.iter().filter(|a| *a == "FAILED").count();
    assert_eq!(failed, 0, "requests failed across the restart: {answers:?}");
    for answer in &answers {
        assert!(all_web.contains(answer), "{answer}: {answers:?}");
    }
}
