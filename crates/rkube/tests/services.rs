//! Service networking in the API server, driven by kubectl 1.33: ClusterIP and NodePort
//! allocation, refusal with kube's messages, release on every kind of removal, type
//! changes, the `default/kubernetes` Service and its endpoints, repair after a lost
//! allocation, and two API servers on one etcd.

#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use common::Cluster;
use serde_json::Value;

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl(&full)).unwrap()
}

fn service_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n  - port: 80\n{spec}"
    )
}

fn create(c: &Cluster, name: &str, spec: &str) -> Value {
    c.kubectl_stdin(&["create", "-f", "-"], Some(&service_yaml(name, spec)));
    json(c, &["get", "svc", name])
}

fn create_fails(c: &Cluster, name: &str, spec: &str) -> String {
    c.kubectl_fails(&["create", "-f", "-"], Some(&service_yaml(name, spec)))
}

fn cluster_ip(svc: &Value) -> Ipv4Addr {
    svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap()
}

fn in_default_range(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 10 && b == 43
}

#[test]
fn cluster_ips_are_allocated_honoured_refused_and_released() {
    let Some(c) = common::start() else { return };

    // A random free address, never the network address nor .1 (kubernetes) or .10 (DNS).
    let a = create(&c, "a", "");
    let ip = cluster_ip(&a);
    assert!(in_default_range(ip), "{ip}");
    assert!(![0, 1, 10].contains(&(u32::from(ip) & 0xffff)), "{ip}");
    assert_eq!(a["spec"]["clusterIPs"], serde_json::json!([ip.to_string()]));
    assert_eq!(a["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(a["spec"]["ipFamilyPolicy"], "SingleStack");

    // A requested address is honoured, and refused to the next one who asks.
    let b = create(&c, "b", "  clusterIP: 10.43.0.20\n");
    assert_eq!(b["spec"]["clusterIP"], "10.43.0.20");
    let err = create_fails(&c, "c", "  clusterIP: 10.43.0.20\n");
    assert!(
        err.contains(r#"The Service "c" is invalid: spec.clusterIPs: Invalid value: []string{"10.43.0.20"}: failed to allocate IP 10.43.0.20: provided IP is already allocated"#),
        "{err}"
    );
    let err = create_fails(&c, "c", "  clusterIP: 10.44.0.1\n");
    assert!(
        err.contains(r#"spec.clusterIPs: Invalid value: []string{"10.44.0.1"}: failed to allocate IP 10.44.0.1: the provided IP (10.44.0.1) is not in the valid range. The range of valid IPs is 10.43.0.0/16"#),
        "{err}"
    );
    // The kubernetes Service holds .1.
    let err = create_fails(&c, "c", "  clusterIP: 10.43.0.1\n");
    assert!(err.contains("provided IP is already allocated"), "{err}");

    // Deleted, the address can be had again.
    c.kubectl(&["delete", "svc", "b"]);
    let again = create(&c, "c", "  clusterIP: 10.43.0.20\n");
    assert_eq!(again["spec"]["clusterIP"], "10.43.0.20");

    // The ClusterIP cannot change.
    let out = c.kubectl_raw(
        &[
            "patch",
            "svc",
            "a",
            "-p",
            r#"{"spec":{"clusterIP":"10.43.0.99"}}"#,
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"spec.clusterIPs[0]: Invalid value: []string{"10.43.0.99"}: may not change once set"#
        ),
        "{err}"
    );

    // Headless and ExternalName services take nothing.
    let headless = create(&c, "headless", "  clusterIP: None\n");
    assert_eq!(headless["spec"]["clusterIPs"], serde_json::json!(["None"]));
    assert_eq!(headless["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));
    c.kubectl_stdin(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\nspec:\n  type: ExternalName\n  externalName: example.com\n"),
    );
    let ext = json(&c, &["get", "svc", "ext"]);
    assert!(ext["spec"].get("clusterIP").is_none(), "{ext}");

    // A dry run checks but keeps nothing.
    let err = c.kubectl_fails(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&service_yaml("dry", "  clusterIP: 10.43.0.20\n")),
    );
    assert!(err.contains("provided IP is already allocated"), "{err}");
    c.kubectl_stdin(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&service_yaml("dry", "  clusterIP: 10.43.0.77\n")),
    );
    assert_eq!(
        create(&c, "real", "  clusterIP: 10.43.0.77\n")["spec"]["clusterIP"],
        "10.43.0.77"
    );

    // kubectl get svc prints kube's columns.
    let table = c.kubectl(&["get", "svc"]);
    let header = table.lines().next().unwrap();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in\n{table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        row("headless")[1..5],
        ["ClusterIP", "None", "<none>", "80/TCP"]
    );
    assert_eq!(
        row("ext")[1..5],
        ["ExternalName", "<none>", "example.com", "<none>"]
    );
    assert_eq!(
        row("kubernetes")[1..5],
        ["ClusterIP", "10.43.0.1", "<none>", "443/TCP"]
    );
}

#[test]
fn node_ports_follow_the_service_type() {
    let Some(c) = common::start() else { return };

    let np = create(&c, "np", "  type: NodePort\n");
    let port = np["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&port), "{port}");
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    let table = c.kubectl(&["get", "svc", "np"]);
    assert!(table.contains(&format!("80:{port}/TCP")), "{table}");

    // Requested ports: honoured, refused when taken or out of range.
    let fixed = create(
        &c,
        "fixed",
        "  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 30500\n",
    );
    assert_eq!(fixed["spec"]["ports"][0]["nodePort"], 30500);
    let err = create_fails(
        &c,
        "other",
        "  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 30500\n",
    );
    assert!(
        err.contains(r#"The Service "other" is invalid: spec.ports[0].nodePort: Invalid value: 30500: provided port is already allocated"#),
        "{err}"
    );
    let err = create_fails(
        &c,
        "other",
        "  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 40000\n",
    );
    assert!(
        err.contains("spec.ports[0].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{err}"
    );

    // NodePort -> ClusterIP frees the port; ClusterIP -> NodePort takes one.
    c.kubectl(&[
        "patch",
        "svc",
        "fixed",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    let fixed = json(&c, &["get", "svc", "fixed"]);
    assert!(
        fixed["spec"]["ports"][0].get("nodePort").is_none(),
        "{fixed}"
    );
    assert!(
        fixed["spec"].get("externalTrafficPolicy").is_none(),
        "{fixed}"
    );
    let other = create(
        &c,
        "other",
        "  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 30500\n",
    );
    assert_eq!(other["spec"]["ports"][0]["nodePort"], 30500);
    c.kubectl(&[
        "patch",
        "svc",
        "fixed",
        "-p",
        r#"{"spec":{"type":"NodePort"}}"#,
    ]);
    let fixed = json(&c, &["get", "svc", "fixed"]);
    let port = fixed["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&port) && port != 30500, "{port}");

    // LoadBalancer: node ports unless allocateLoadBalancerNodePorts is false; a health check
    // port for externalTrafficPolicy Local.
    let lb = create(
        &c,
        "lb",
        "  type: LoadBalancer\n  externalTrafficPolicy: Local\n",
    );
    assert!(
        lb["spec"]["ports"][0]["nodePort"].as_i64().is_some(),
        "{lb}"
    );
    let hc = lb["spec"]["healthCheckNodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&hc), "{hc}");
    let table = c.kubectl(&["get", "svc", "lb"]);
    assert!(table.contains("<pending>"), "{table}");
    let bare = create(
        &c,
        "bare",
        "  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n",
    );
    assert!(bare["spec"]["ports"][0].get("nodePort").is_none(), "{bare}");

    // ClusterIP -> ExternalName frees the address; ExternalName -> ClusterIP takes one.
    c.kubectl(&[
        "patch",
        "svc",
        "np",
        "-p",
        r#"{"spec":{"type":"ExternalName","externalName":"example.com"}}"#,
    ]);
    let ext = json(&c, &["get", "svc", "np"]);
    assert!(ext["spec"].get("clusterIP").is_none(), "{ext}");
    assert!(ext["spec"]["ports"][0].get("nodePort").is_none(), "{ext}");
    let np_ip = cluster_ip(&np);
    let taker = create(&c, "taker", &format!("  clusterIP: {np_ip}\n"));
    assert_eq!(
        cluster_ip(&taker),
        np_ip,
        "the released address is free again"
    );
    c.kubectl(&[
        "patch",
        "svc",
        "np",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/type","value":"ClusterIP"},{"op":"remove","path":"/spec/externalName"}]"#,
    ]);
    let back = json(&c, &["get", "svc", "np"]);
    assert!(in_default_range(cluster_ip(&back)), "{back}");
    assert_ne!(cluster_ip(&back), np_ip);
}

#[test]
fn addresses_are_released_when_the_service_really_leaves_the_store() {
    let Some(c) = common::start() else { return };

    // Namespace deletion.
    c.kubectl(&["create", "namespace", "doomed"]);
    c.kubectl_stdin(
        &["create", "-n", "doomed", "-f", "-"],
        Some(&service_yaml("s", "  type: NodePort\n  clusterIP: 10.43.0.200\n  ports:\n  - port: 80\n    nodePort: 30200\n")),
    );
    c.kubectl(&["delete", "namespace", "doomed", "--wait=false"]);
    c.eventually("the namespace is gone", Duration::from_secs(60), || {
        let out = c.kubectl_raw(&["get", "namespace", "doomed"], None);
        if out.status.success() {
            Err("still there".into())
        } else {
            Ok(())
        }
    });
    let s = create(
        &c,
        "s",
        "  type: NodePort\n  clusterIP: 10.43.0.200\n  ports:\n  - port: 80\n    nodePort: 30200\n",
    );
    assert_eq!(s["spec"]["clusterIP"], "10.43.0.200");

    // A finalizer holds the Service, and its address, until it is removed.
    c.kubectl_stdin(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Service\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\nspec:\n  clusterIP: 10.43.0.201\n  ports:\n  - port: 80\n"),
    );
    c.kubectl(&["delete", "svc", "held", "--wait=false"]);
    let err = create_fails(&c, "next", "  clusterIP: 10.43.0.201\n");
    assert!(err.contains("provided IP is already allocated"), "{err}");
    c.kubectl(&[
        "patch",
        "svc",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert_eq!(
        create(&c, "next", "  clusterIP: 10.43.0.201\n")["spec"]["clusterIP"],
        "10.43.0.201"
    );

    // The garbage collector deletes a Service whose owner is gone.
    c.kubectl(&["create", "configmap", "owner"]);
    let uid = json(&c, &["get", "configmap", "owner"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    c.kubectl_stdin(
        &["create", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: owned\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: owner\n    uid: {uid}\nspec:\n  clusterIP: 10.43.0.202\n  ports:\n  - port: 80\n"
        )),
    );
    c.kubectl(&["delete", "configmap", "owner"]);
    c.eventually(
        "the collector deletes the service",
        Duration::from_secs(60),
        || {
            let out = c.kubectl_raw(&["get", "svc", "owned"], None);
            if out.status.success() {
                Err("still there".into())
            } else {
                Ok(())
            }
        },
    );
    assert_eq!(
        create(&c, "after-gc", "  clusterIP: 10.43.0.202\n")["spec"]["clusterIP"],
        "10.43.0.202"
    );
}

#[test]
fn the_kubernetes_service_points_at_the_api_server() {
    let Some(c) = common::start_with(&["--advertise-address", "127.0.0.1"]) else {
        return;
    };
    let svc = json(&c, &["get", "svc", "kubernetes"]);
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
    assert_eq!(svc["metadata"]["labels"]["component"], "apiserver");
    assert_eq!(svc["metadata"]["labels"]["provider"], "kubernetes");
    assert!(svc["spec"].get("selector").is_none(), "{svc}");
    let port = &svc["spec"]["ports"][0];
    assert_eq!(
        (port["name"].as_str(), port["port"].as_i64()),
        (Some("https"), Some(443))
    );
    assert_eq!(port["targetPort"], c.port);
    let ep = json(&c, &["get", "endpoints", "kubernetes"]);
    assert_eq!(
        ep["subsets"],
        serde_json::json!([{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": c.port, "protocol": "TCP"}]}])
    );
    assert_eq!(
        ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"],
        "true"
    );
    let slice = json(&c, &["get", "endpointslices", "kubernetes"]);
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["endpoints"][0]["addresses"],
        serde_json::json!(["127.0.0.1"])
    );
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "kubernetes"
    );
    // Deleted, it comes back.
    c.kubectl(&["delete", "svc", "kubernetes"]);
    c.eventually(
        "the kubernetes service is back",
        Duration::from_secs(30),
        || {
            let out = c.kubectl_raw(
                &[
                    "get",
                    "svc",
                    "kubernetes",
                    "-o",
                    "jsonpath={.spec.clusterIP}",
                ],
                None,
            );
            match String::from_utf8_lossy(&out.stdout).as_ref() {
                "10.43.0.1" => Ok(()),
                other => Err(other.to_owned()),
            }
        },
    );
}

#[test]
fn a_restart_keeps_allocations_and_repair_rebuilds_a_lost_one() {
    let Some(mut c) = common::start_with(&["--service-cidr", "10.96.0.0/24"]) else {
        return;
    };
    let a = create(&c, "a", "  type: NodePort\n");
    let ip = cluster_ip(&a);
    let [x, y, ..] = ip.octets();
    assert_eq!((x, y), (10, 96), "{ip}");
    let node_port = a["spec"]["ports"][0]["nodePort"].as_i64().unwrap();

    // Restarted, the allocation is still there.
    c.kill();
    c.boot();
    let err = create_fails(&c, "b", &format!("  clusterIP: {ip}\n"));
    assert!(err.contains("provided IP is already allocated"), "{err}");

    // Lose both allocations (as a crash or a restored backup could), then restart: the
    // repair pass takes them back from the services.
    c.kill();
    {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let store = rkube_store::EmbeddedStore::open(c.data_dir()).unwrap();
        runtime.block_on(async {
            use rkube_store::Store;
            for key in [
                "/registry/ranges/serviceips",
                "/registry/ranges/servicenodeports",
            ] {
                store.delete(key, None).await.unwrap();
            }
        });
    }
    c.boot();
    let err = create_fails(&c, "b", &format!("  clusterIP: {ip}\n"));
    assert!(err.contains("provided IP is already allocated"), "{err}");
    let err = create_fails(
        &c,
        "b",
        &format!("  type: NodePort\n  ports:\n  - port: 80\n    nodePort: {node_port}\n"),
    );
    assert!(err.contains("provided port is already allocated"), "{err}");
    // Out of the configured range.
    let err = create_fails(&c, "b", "  clusterIP: 10.43.0.5\n");
    assert!(
        err.contains("The range of valid IPs is 10.96.0.0/24"),
        "{err}"
    );
}

/// Two loopback addresses with one free port on both.
fn shared_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.2:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if TcpListener::bind(("127.0.0.3", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn two_api_servers_on_one_etcd_never_hand_out_an_address_twice() {
    if !rkube_store::local_etcd::etcd_installed() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "etcd is missing but CI=true"
        );
        eprintln!("SKIPPED: etcd not installed");
        return;
    }
    let etcd_dir = tempfile::tempdir().unwrap();
    // Its log goes beside its data dir: both inside the scratch dir.
    let etcd = rkube_store::local_etcd::LocalEtcd::start(&etcd_dir.path().join("etcd")).unwrap();
    let endpoint = etcd.endpoint();
    let port = shared_port();
    let args = |ip: &'static str| -> Vec<String> {
        [
            "--datastore-endpoint",
            &endpoint,
            "--advertise-address",
            ip,
            "--endpoint-lease-duration-secs",
            "3",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let first_args = args("127.0.0.2");
    let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let Some(a) = common::start_at("127.0.0.2", port, &first_args) else {
        return;
    };
    // The second server joins the cluster in the store with its token.
    let token = std::fs::read_to_string(a.data_dir().join("node-token")).unwrap();
    let mut second_args = args("127.0.0.3");
    second_args.extend(["--token".to_owned(), token.trim().to_owned()]);
    let second_args: Vec<&str> = second_args.iter().map(String::as_str).collect();
    let Some(mut b) = common::start_at("127.0.0.3", port, &second_args) else {
        return;
    };

    // Both servers are in the kubernetes endpoints.
    let ips = |c: &Cluster| -> Vec<String> {
        let out = c.kubectl_raw(
            &[
                "get",
                "endpoints",
                "kubernetes",
                "-o",
                "jsonpath={.subsets[*].addresses[*].ip}",
            ],
            None,
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    a.eventually(
        "both servers are endpoints",
        Duration::from_secs(30),
        || {
            let seen = ips(&a);
            if seen == ["127.0.0.2", "127.0.0.3"] {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        },
    );

    // Many creates at once, half through each server.
    let batches = 4;
    let per_batch = 15;
    std::thread::scope(|scope| {
        for batch in 0..batches {
            for (server, c) in [("a", &a), ("b", &b)] {
                scope.spawn(move || {
                    let docs: Vec<String> = (0..per_batch)
                        .map(|i| {
                            service_yaml(&format!("s-{server}-{batch}-{i}"), "  type: NodePort\n")
                        })
                        .collect();
                    c.kubectl_stdin(&["create", "-f", "-"], Some(&docs.join("---\n")));
                });
            }
        }
    });
    let list = json(&a, &["get", "svc"]);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), batches * per_batch * 2 + 1);
    let ips_seen: BTreeSet<&str> = items
        .iter()
        .map(|s| s["spec"]["clusterIP"].as_str().unwrap())
        .collect();
    assert_eq!(ips_seen.len(), items.len(), "every ClusterIP is unique");
    let ports_seen: BTreeSet<i64> = items
        .iter()
        .filter_map(|s| s["spec"]["ports"][0]["nodePort"].as_i64())
        .collect();
    assert_eq!(
        ports_seen.len(),
        items.len() - 1,
        "every NodePort is unique"
    );

    // A stopped server leaves the endpoints once its lease runs out.
    b.kill();
    a.eventually(
        "the dead server is dropped",
        Duration::from_secs(30),
        || {
            let seen = ips(&a);
            if seen == ["127.0.0.2"] {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        },
    );
    drop(etcd);
}
