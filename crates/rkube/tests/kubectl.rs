//! End to end: a real `rkube server` driven by real kubectl 1.33.

#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A ConfigMap manifest, sent as JSON (`kubectl create configmap` would send protobuf).
fn configmap(name: &str, namespace: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": "v"},
    })
    .to_string()
}

const CONFIGMAP: &str = "
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    app: web
data:
  color: blue
  size: large
";

#[test]
fn version_discovery_and_health() {
    let Some(c) = common::start() else { return };
    let version = json(&c.kubectl(&["version", "-o", "json"]));
    let git = version["serverVersion"]["gitVersion"].as_str().unwrap();
    assert!(git.starts_with("v1.33."), "{git}");

    let resources = c.kubectl(&["api-resources"]);
    let line = resources
        .lines()
        .find(|l| l.starts_with("deployments "))
        .unwrap_or_else(|| panic!("no deployments in {resources}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert!(
        resources
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["namespaces", "ns", "v1", "false", "Namespace"])
    );
    let versions = c.kubectl(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "rbac.authorization.k8s.io/v1",
        "networking.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{gv} missing from {versions}"
        );
    }
    assert_eq!(c.kubectl(&["get", "--raw", "/healthz"]).trim(), "ok");
    assert_eq!(c.kubectl(&["get", "--raw", "/livez"]).trim(), "ok");

    // The system namespaces exist.
    let namespaces = c.kubectl(&["get", "ns", "-o", "name"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            namespaces.contains(&format!("namespace/{ns}")),
            "{namespaces}"
        );
    }
    let table = c.kubectl(&["get", "namespaces"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.lines().next().unwrap().contains("STATUS"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("default ") && l.contains("Active"))
    );

    // Metrics count what was just done.
    let metrics = c.kubectl(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains(r#"apiserver_request_total{verb="LIST",group="",version="v1",resource="namespaces",subresource="",code="200"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("apiserver_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"etcd_request_duration_seconds_count{operation="create"}"#),
        "{metrics}"
    );
}

#[test]
fn configmap_round_trip_in_every_output_format() {
    let Some(c) = common::start() else { return };
    let out = c.kubectl_stdin(&["create", "-f", "-"], Some(CONFIGMAP));
    assert_eq!(out.trim(), "configmap/settings created");

    let object = json(&c.kubectl(&["get", "cm", "settings", "-o", "json"]));
    assert_eq!(object["data"]["color"], "blue");
    assert_eq!(object["metadata"]["namespace"], "default");
    let uid = object["metadata"]["uid"].as_str().unwrap();
    assert_eq!(uid.len(), 36);
    assert!(
        object["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let rv: i64 = object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv > 0);

    let yaml = c.kubectl(&["get", "configmap", "settings", "-o", "yaml"]);
    assert!(
        yaml.contains("color: blue") && yaml.contains("kind: ConfigMap"),
        "{yaml}"
    );
    assert_eq!(
        c.kubectl(&["get", "cm", "-l", "app=web", "-o", "name"])
            .trim(),
        "configmap/settings"
    );
    assert_eq!(
        c.kubectl(&["get", "cm", "settings", "-o", "jsonpath={.data.size}"]),
        "large"
    );
    let custom = c.kubectl(&[
        "get",
        "cm",
        "-l",
        "app=web",
        "-o",
        "custom-columns=N:.metadata.name,C:.data.color",
    ]);
    assert_eq!(
        custom
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["settings", "blue"]
    );
    let table = c.kubectl(&["get", "cm", "-l", "app=web"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DATA", "AGE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], ["settings", "2"]);

    // Label and annotate, then select by label.
    c.kubectl(&["label", "cm", "settings", "tier=frontend"]);
    c.kubectl(&["annotate", "cm", "settings", "owner=team-a"]);
    assert_eq!(
        c.kubectl(&["get", "cm", "-l", "tier=frontend", "-o", "name"])
            .trim(),
        "configmap/settings"
    );
    assert_eq!(
        c.kubectl(&["get", "cm", "-l", "tier in (backend)", "-o", "name"])
            .trim(),
        ""
    );
    assert_eq!(
        c.kubectl(&["get", "cm", "-l", "app,tier!=backend", "-o", "name"])
            .trim(),
        "configmap/settings"
    );
    assert_eq!(
        c.kubectl(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=settings",
            "-o",
            "name"
        ])
        .trim(),
        "configmap/settings"
    );

    // All three patch types.
    c.kubectl(&[
        "patch",
        "cm",
        "settings",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"color":"red","size":null}}"#,
    ]);
    c.kubectl(&[
        "patch",
        "cm",
        "settings",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/shape","value":"round"}]"#,
    ]);
    c.kubectl(&[
        "patch",
        "cm",
        "settings",
        "-p",
        r#"{"metadata":{"labels":{"patched":"yes"}}}"#,
    ]);
    let object = json(&c.kubectl(&["get", "cm", "settings", "-o", "json"]));
    assert_eq!(
        object["data"],
        serde_json::json!({"color": "red", "shape": "round"})
    );
    assert_eq!(object["metadata"]["labels"]["patched"], "yes");
    assert_eq!(object["metadata"]["labels"]["tier"], "frontend");
    assert_eq!(
        object["metadata"]["uid"].as_str().unwrap(),
        uid,
        "the uid changed on update"
    );

    // Replace with a stale resourceVersion is a conflict.
    let mut stale = object.clone();
    stale["metadata"]["resourceVersion"] = Value::String(rv.to_string());
    stale["data"]["color"] = "green".into();
    let err = c.kubectl_fails(&["replace", "-f", "-"], Some(&stale.to_string()));
    assert!(
        err.contains("Error from server (Conflict)")
            && err.contains("the object has been modified; please apply your changes to the latest version and try again"),
        "{err}"
    );

    c.kubectl(&["delete", "cm", "settings"]);
    let err = c.kubectl_fails(&["get", "cm", "settings"], None);
    assert!(
        err.contains(r#"Error from server (NotFound): configmaps "settings" not found"#),
        "{err}"
    );
}

#[test]
fn errors_carry_kubernetes_codes_and_messages() {
    let Some(c) = common::start() else { return };
    c.kubectl_stdin(&["create", "-f", "-"], Some(CONFIGMAP));
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(CONFIGMAP));
    assert!(err.contains(r#"Error from server (AlreadyExists): error when creating "STDIN": configmaps "settings" already exists"#), "{err}");

    let err = c.kubectl_fails(
        &["create", "-f", "-"],
        Some(&configmap("Bad_Name", "default")),
    );
    assert!(err.contains(r#"The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain"#), "{err}");

    let err = c.kubectl_fails(&["create", "-f", "-"], Some(&configmap("x", "missing")));
    assert!(
        err.contains(r#"Error from server (NotFound): error when creating "STDIN": namespaces "missing" not found"#),
        "{err}"
    );

    // Unknown fields: refused by default (kubectl asks for Strict), a warning with --validate=warn.
    let bogus = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bogus"},"bogus":1,"data":{"k":"v"}}"#;
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(bogus));
    assert!(
        err.contains(r#"Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus""#),
        "{err}"
    );
    let out = c.kubectl_raw(&["create", "--validate=warn", "-f", "-"], Some(bogus));
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(r#"Warning: unknown field "bogus""#),
        "{out:?}"
    );
    let wrong_type =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"typed"},"data":{"k":5}}"#;
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(wrong_type));
    assert!(err.contains("cannot be handled as a ConfigMap"), "{err}");

    // The raw API answers a Status with the right code.
    let out = c.kubectl_raw(
        &["get", "--raw", "/api/v1/namespaces/default/configmaps/nope"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NotFound"), "{stderr}");
    let out = c.kubectl_raw(&["get", "--raw", "/apis/nothing.example.com/v1"], None);
    assert!(!out.status.success());

    // Wrong credentials are refused.
    let out = c.kubectl_raw(
        &[
            "--kubeconfig=/dev/null",
            "--server",
            &c.server_url(),
            "--insecure-skip-tls-verify",
            "--token",
            "wrong",
            "get",
            "ns",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthorized"), "{stderr}");
}

#[test]
fn node_token_authenticates_and_certificates_are_reused_across_restarts() {
    let Some(mut c) = common::start() else { return };
    let token = std::fs::read_to_string(c.data_dir().join("node-token")).unwrap();
    let ca = c.data_dir().join("tls/ca.crt");
    let args = |server: &str| {
        vec![
            "--kubeconfig=/dev/null".to_owned(),
            format!("--server={server}"),
            format!("--certificate-authority={}", ca.display()),
            format!("--token={}", token.trim()),
            "get".into(),
            "nodes".into(),
            "-o".into(),
            "name".into(),
        ]
    };
    let a = args(&c.server_url());
    let out = c.kubectl_raw(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The join token names no audience: a review finds it valid for the API's alone.
    let reviewed = token_review(&c, token.trim(), &[]);
    assert_eq!(reviewed["status"]["authenticated"], true, "{reviewed}");
    assert_eq!(
        reviewed["status"]["audiences"],
        serde_json::json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert_eq!(
        token_review(&c, token.trim(), &["vault"])["status"]["authenticated"],
        false
    );
    // The serving certificate names localhost too.
    let a = args(&format!("https://localhost:{}", c.port));
    let out = c.kubectl_raw(&a.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    c.kubectl_stdin(
        &["create", "-f", "-"],
        Some(&configmap("survivor", "default")),
    );
    let kubeconfig_before = std::fs::read_to_string(c.kubeconfig()).unwrap();
    let ca_before = std::fs::read_to_string(&ca).unwrap();
    c.kill();
    c.boot();
    assert_eq!(
        std::fs::read_to_string(&ca).unwrap(),
        ca_before,
        "the CA was remade"
    );
    assert_eq!(
        std::fs::read_to_string(c.kubeconfig()).unwrap(),
        kubeconfig_before
    );
    assert_eq!(
        c.kubectl(&["get", "cm", "survivor", "-o", "jsonpath={.data.k}"]),
        "v"
    );
}

#[test]
fn apply_scale_and_paging() {
    let Some(c) = common::start() else { return };
    let deployment = |image: &str| {
        format!(
            "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox
"
        )
    };
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(&deployment("nginx:1")));
    assert_eq!(out.trim(), "deployment.apps/web created");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(&deployment("nginx:1")));
    assert_eq!(out.trim(), "deployment.apps/web unchanged");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(&deployment("nginx:2")));
    assert_eq!(out.trim(), "deployment.apps/web configured");
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json"]));
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2, "{containers:?}");
    assert_eq!(containers[0]["image"], "nginx:2");
    assert_eq!(d["metadata"]["generation"], 2);

    c.kubectl(&["scale", "deployment/web", "--replicas=5"]);
    assert_eq!(
        c.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    let scale = json(&c.kubectl(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(scale["status"]["selector"], "app=web");

    // Dry run changes nothing.
    c.kubectl_stdin(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&configmap("ghost", "default")),
    );
    assert!(
        !c.kubectl_raw(&["get", "cm", "ghost"], None)
            .status
            .success()
    );

    // Paging: 25 objects read 10 at a time.
    for i in 0..25 {
        c.kubectl_stdin(
            &["create", "-f", "-"],
            Some(&configmap(&format!("page-{i:02}"), "default")),
        );
    }
    let page = json(&c.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?limit=10",
    ]));
    assert_eq!(page["items"].as_array().unwrap().len(), 10);
    let token = page["metadata"]["continue"].as_str().unwrap();
    let next = json(&c.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/default/configmaps?limit=10&continue={token}"),
    ]));
    // The second page starts where the first ended, in key order (kube-root-ca.crt, which
    // the controller manager publishes, sorts before the pages).
    let all = json(&c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]));
    assert_eq!(
        next["items"][0]["metadata"]["name"],
        all["items"][10]["metadata"]["name"]
    );
    assert_eq!(all["items"].as_array().unwrap().len(), 26);
    let names = c.kubectl(&["get", "cm", "--chunk-size=10", "-o", "name"]);
    assert_eq!(
        names
            .lines()
            .filter(|l| l.starts_with("configmap/page-"))
            .count(),
        25
    );
}

#[test]
fn get_watch_sees_changes() {
    let Some(c) = common::start() else { return };
    let mut watch = c.kubectl_spawn(&["get", "cm", "-w", "-o", "name"]);
    std::thread::sleep(Duration::from_millis(1500));
    c.kubectl_stdin(
        &["create", "-f", "-"],
        Some(&configmap("watched", "default")),
    );
    c.kubectl(&["delete", "configmap", "watched"]);
    let mut stdout = watch.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if seen.matches("configmap/watched").count() >= 2 {
                break;
            }
        }
        seen
    });
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let seen = reader.join().unwrap();
    assert!(
        seen.matches("configmap/watched").count() >= 2,
        "watch printed {seen:?}"
    );
}

#[test]
fn service_account_tokens_authenticate_until_the_account_is_gone() {
    let Some(c) = common::start() else { return };
    let account = r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"builder"}}"#;
    c.kubectl_stdin(&["create", "-f", "-"], Some(account));
    let request = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}"#;
    let answer = json(&c.kubectl_stdin(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/serviceaccounts/builder/token",
            "-f",
            "-",
        ],
        Some(request),
    ));
    let token = answer["status"]["token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token}");
    assert!(
        answer["status"]["expirationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    assert_authenticates(&c, &token);

    let reviewed = token_review(&c, &token, &[]);
    assert_eq!(reviewed["status"]["authenticated"], true);
    assert_eq!(
        reviewed["status"]["user"]["username"],
        "system:serviceaccount:default:builder"
    );
    // A review without audiences asks for the API's, which the token is valid for.
    assert_eq!(
        reviewed["status"]["audiences"],
        serde_json::json!(["https://kubernetes.default.svc.cluster.local"])
    );
    // A token for another audience (a resource server's, Vault's say) is not one for the
    // API, but a review for that audience accepts it and names the audience it matched.
    let vault = c.kubectl(&["create", "token", "builder", "--audience", "vault"]);
    let vault = vault.trim();
    assert_unauthorized(&c, vault);
    assert_eq!(
        token_review(&c, vault, &[])["status"]["authenticated"],
        false
    );
    let for_vault = token_review(&c, vault, &["other", "vault"]);
    assert_eq!(for_vault["status"]["authenticated"], true, "{for_vault}");
    assert_eq!(
        for_vault["status"]["audiences"],
        serde_json::json!(["vault"])
    );
    assert_eq!(
        token_review(&c, &token, &["vault"])["status"]["authenticated"],
        false
    );
    let empty = c.kubectl_fails(
        &[
            "create",
            "--raw",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "-f",
            "-",
        ],
        Some(r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{}}"#),
    );
    assert!(
        empty.contains("token is required for TokenReview in authentication"),
        "{empty}"
    );

    // Too short a lifetime is refused as kube-apiserver does.
    let short = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":60}}"#;
    let err = refused_token_request(&c, short);
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );

    c.kubectl(&["delete", "serviceaccount", "builder"]);
    assert_unauthorized(&c, &token);
}

#[test]
fn rbac_decides_what_each_user_may_do() {
    let Some(mut c) = common::start() else { return };
    c.kubectl(&["create", "namespace", "team"]);
    c.kubectl(&["-n", "team", "create", "serviceaccount", "dev"]);
    let token = c.kubectl(&["-n", "team", "create", "token", "dev"]);
    let token = token.trim();
    let dev = |args: &[&str]| kubectl_as(&c, token, args);
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

    // Authenticated, but bound to nothing: only the defaults everyone has.
    let out = dev(&["-n", "team", "get", "pods"]);
    assert!(
        stderr(&out).contains(
            r#"pods is forbidden: User "system:serviceaccount:team:dev" cannot list resource "pods" in API group "" in the namespace "team""#
        ),
        "{out:?}"
    );
    let out = dev(&["get", "nodes"]);
    assert!(
        stderr(&out)
            .contains(r#"cannot list resource "nodes" in API group "" at the cluster scope"#),
        "{out:?}"
    );
    let can_i = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend(args);
        String::from_utf8_lossy(&dev(&all).stdout).trim().to_owned()
    };
    assert_eq!(can_i(&["list", "pods", "-n", "team"]), "no");
    assert!(dev(&["auth", "whoami"]).status.success());

    // `view` in its namespace, as the aggregation of the roles labelled for it.
    c.kubectl(&[
        "-n",
        "team",
        "create",
        "rolebinding",
        "dev-view",
        "--clusterrole=view",
        "--serviceaccount=team:dev",
    ]);
    c.eventually("the binding takes effect", Duration::from_secs(10), || {
        let out = dev(&["-n", "team", "get", "pods,services,deployments"]);
        out.status
            .success()
            .then_some(())
            .ok_or_else(|| stderr(&out))
    });
    assert_eq!(can_i(&["list", "pods", "-n", "team"]), "yes");
    assert_eq!(can_i(&["get", "pods/log", "-n", "team"]), "yes");
    assert_eq!(can_i(&["delete", "pods", "-n", "team"]), "no");
    assert_eq!(can_i(&["get", "secrets", "-n", "team"]), "no");
    assert_eq!(can_i(&["list", "pods", "-n", "default"]), "no");
    let out = dev(&["-n", "default", "get", "configmaps"]);
    assert!(stderr(&out).contains("Forbidden"), "{out:?}");
    let rules = String::from_utf8_lossy(&dev(&["auth", "can-i", "--list", "-n", "team"]).stdout)
        .into_owned();
    let pods = rules
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("no pods rule: {rules}"));
    assert!(pods.contains("[get list watch]"), "{rules}");
    let admin = json(&c.kubectl(&["get", "clusterrole", "admin", "-o", "json"]));
    assert!(
        admin["rules"].as_array().is_some_and(|r| r.len() > 10),
        "admin aggregates edit, view and its own: {admin}"
    );

    // An administrator acts as someone else; the account may not.
    let as_dev = c.kubectl_raw(
        &[
            "-n",
            "team",
            "auth",
            "can-i",
            "watch",
            "pods",
            "--as=system:serviceaccount:team:dev",
        ],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&as_dev.stdout).trim(), "yes");
    let out = c.kubectl_raw(
        &[
            "-n",
            "team",
            "get",
            "secrets",
            "--as=bob",
            "--as-group=devs",
        ],
        None,
    );
    assert!(
        stderr(&out).contains(r#"User "bob" cannot list resource "secrets""#),
        "{out:?}"
    );
    let whoami = |args: &[&str]| {
        let mut all = vec!["auth", "whoami", "-o", "json"];
        all.extend(args);
        json(&c.kubectl(&all))["status"]["userInfo"].clone()
    };
    let bob = whoami(&["--as=bob", "--as-group=devs", "--as-uid=u-1"]);
    assert_eq!(
        bob,
        serde_json::json!({"username": "bob", "groups": ["devs", "system:authenticated"], "uid": "u-1"})
    );
    let account = whoami(&["--as=system:serviceaccount:team:dev"]);
    assert_eq!(
        account["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:team",
            "system:authenticated"
        ])
    );
    let out = dev(&["-n", "team", "get", "pods", "--as=bob"]);
    assert!(
        stderr(&out).contains(
            r#"users "bob" is forbidden: User "system:serviceaccount:team:dev" cannot impersonate resource "users" in API group "" at the cluster scope"#
        ),
        "{out:?}"
    );

    // An administrator asks about someone else.
    let review = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "system:serviceaccount:team:dev",
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "resourceAttributes": {"namespace": "team", "verb": "watch", "resource": "pods"},
        },
    });
    let answer = json(&c.kubectl_stdin(
        &["create", "-o", "json", "-f", "-"],
        Some(&review.to_string()),
    ));
    assert_eq!(answer["status"]["allowed"], true, "{answer}");
    assert_eq!(
        answer["status"]["reason"],
        r#"RBAC: allowed by RoleBinding "dev-view/team" of ClusterRole "view" to ServiceAccount "dev/team""#
    );
    // The same in one namespace, which must be the one asked about.
    let local = |namespace: &str| {
        serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": "team"},
            "spec": {
                "user": "system:serviceaccount:team:dev",
                "resourceAttributes": {"namespace": namespace, "verb": "delete", "resource": "pods"},
            },
        })
        .to_string()
    };
    let answer = json(&c.kubectl_stdin(&["create", "-o", "json", "-f", "-"], Some(&local("team"))));
    assert_eq!(answer["status"]["allowed"], false, "{answer}");
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(&local("default")));
    assert!(
        err.contains("spec.resourceAttributes.namespace must match namespace: team"),
        "{err}"
    );
    let nobody = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}},
    });
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(&nobody.to_string()));
    assert!(
        err.contains(r#"The SubjectAccessReview "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified"#),
        "{err}"
    );
    // Asking about nothing is refused, as is asking about both a resource and a path.
    let empty = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {},
    });
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(&empty.to_string()));
    assert!(
        err.contains(r#"spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified"#),
        "{err}"
    );
    let both = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "LocalSubjectAccessReview",
        "metadata": {"namespace": "team"},
        "spec": {
            "groups": ["team-devs"],
            "resourceAttributes": {"namespace": "team", "verb": "get", "resource": "pods"},
            "nonResourceAttributes": {"path": "/api", "verb": "get"},
        },
    });
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(&both.to_string()));
    let bad = r#"* spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/api", Verb:"get"}"#;
    assert!(
        err.contains(&format!(
            "{bad}: cannot be specified in combination with resourceAttributes\n{bad}: disallowed on this kind of request"
        )),
        "{err}"
    );

    // Whoever may write roles and bindings grants only what they hold.
    c.kubectl(&[
        "-n",
        "team",
        "create",
        "role",
        "team:granter",
        "--verb=create,update",
        "--resource=roles,rolebindings",
    ]);
    c.kubectl(&[
        "-n",
        "team",
        "create",
        "rolebinding",
        "dev-granter",
        "--role=team:granter",
        "--serviceaccount=team:dev",
    ]);
    let until_can_i = |what: &str, args: &[&str], answer: &str| {
        c.eventually(what, Duration::from_secs(10), || {
            let got = can_i(args);
            (got == answer).then_some(()).ok_or(got)
        });
    };
    until_can_i(
        "the second binding takes effect",
        &["create", "roles", "-n", "team"],
        "yes",
    );
    let out = dev(&[
        "-n",
        "team",
        "create",
        "rolebinding",
        "sneaky",
        "--clusterrole=cluster-admin",
        "--serviceaccount=team:dev",
    ]);
    assert!(
        stderr(&out).contains(
            r#"rolebindings.rbac.authorization.k8s.io "sneaky" is forbidden: user "system:serviceaccount:team:dev" (groups=["system:serviceaccounts" "system:serviceaccounts:team" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#
        ),
        "{out:?}"
    );
    let out = dev(&[
        "-n",
        "team",
        "create",
        "role",
        "deleter",
        "--verb=delete",
        "--resource=pods",
    ]);
    assert!(
        stderr(&out).contains(r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#),
        "{out:?}"
    );
    let out = dev(&[
        "-n",
        "team",
        "create",
        "role",
        "reader",
        "--verb=get,list",
        "--resource=pods",
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = dev(&[
        "-n",
        "team",
        "create",
        "rolebinding",
        "dev-reader",
        "--role=reader",
        "--serviceaccount=team:dev",
    ]);
    assert!(out.status.success(), "{out:?}");

    // The binding goes, and the permission with it.
    c.kubectl(&[
        "-n",
        "team",
        "delete",
        "rolebinding",
        "dev-view",
        "dev-reader",
    ]);
    until_can_i(
        "the bindings' removal takes effect",
        &["list", "pods", "-n", "team"],
        "no",
    );

    // At start the server puts back what the default roles lack, unless told not to.
    let empty = [
        "--type=json",
        r#"-p=[{"op":"replace","path":"/rules","value":[]}]"#,
    ];
    for role in ["system:basic-user", "system:public-info-viewer"] {
        let mut args = vec!["patch", "clusterrole", role];
        args.extend(empty);
        c.kubectl(&args);
    }
    c.kubectl(&[
        "annotate",
        "--overwrite",
        "clusterrole",
        "system:public-info-viewer",
        "rbac.authorization.kubernetes.io/autoupdate=false",
    ]);
    c.kill();
    c.boot();
    let rules = |role: &str| {
        json(&c.kubectl(&["get", "clusterrole", role, "-o", "json"]))["rules"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(rules("system:basic-user"), 2);
    assert_eq!(rules("system:public-info-viewer"), 0);
}

/// The answer to a TokenReview of `token` for `audiences` (none: the API's).
fn token_review(c: &common::Cluster, token: &str, audiences: &[&str]) -> Value {
    let review = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences},
    });
    json(&c.kubectl_stdin(
        &[
            "create",
            "--raw",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "-f",
            "-",
        ],
        Some(&review.to_string()),
    ))
}

/// The error of a TokenRequest for the `builder` service account that must be refused.
fn refused_token_request(c: &common::Cluster, request: &str) -> String {
    c.kubectl_fails(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/serviceaccounts/builder/token",
            "-f",
            "-",
        ],
        Some(request),
    )
}

/// kubectl with `token` as its only credential.
fn kubectl_as(c: &common::Cluster, token: &str, args: &[&str]) -> std::process::Output {
    kubectl_as_with(c, token, args, None)
}

/// kubectl with `token` as its only credential, `stdin` on its standard input.
fn kubectl_as_with(
    c: &common::Cluster,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    let ca = c.data_dir().join("tls/ca.crt");
    let mut all = vec![
        "--kubeconfig=/dev/null".to_owned(),
        format!("--server={}", c.server_url()),
        format!("--certificate-authority={}", ca.display()),
        format!("--token={token}"),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    c.kubectl_raw(&all.iter().map(String::as_str).collect::<Vec<_>>(), stdin)
}

/// The claims of a JWT.
fn jwt_payload(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice::<Value>(&bytes).expect("JSON claims")
}

/// The `kubernetes.io` claims of a JWT.
fn token_claims(token: &str) -> Value {
    jwt_payload(token)["kubernetes.io"].clone()
}

#[test]
fn bound_tokens_name_their_object_and_end_with_it() {
    let Some(c) = common::start() else { return };
    let account = r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"builder"}}"#;
    c.kubectl_stdin(&["create", "-f", "-"], Some(account));
    let pod = |name: &str, account: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"serviceAccountName":"{account}","containers":[{{"name":"c","image":"busybox"}}]}}}}"#
        )
    };
    c.kubectl_stdin(&["create", "-f", "-"], Some(&pod("web", "builder")));
    c.kubectl_stdin(&["create", "-f", "-"], Some(&pod("other", "default")));
    c.kubectl(&["create", "secret", "generic", "key", "--from-literal=k=v"]);
    let uid =
        |kind: &str, name: &str| c.kubectl(&["get", kind, name, "-o", "jsonpath={.metadata.uid}"]);
    let web_uid = uid("pod", "web");

    // kubectl create token --bound-object-*: the token names the pod as it is on record.
    let token_for = |kind: &str, name: &str, extra: &[&str]| {
        c.kubectl(&bound_token_args(kind, name, extra))
            .trim()
            .to_owned()
    };
    let token = token_for("Pod", "web", &[]);
    let claims = token_claims(&token);
    assert_eq!(claims["pod"]["name"], "web");
    assert_eq!(claims["pod"]["uid"], web_uid.as_str());
    assert!(
        claims.get("node").is_none(),
        "the pod has no node yet: {claims}"
    );
    assert_authenticates(&c, &token);

    // Refused as kube-apiserver refuses them.
    let bind = |kind: &str, name: &str, extra: &[&str]| {
        c.kubectl_fails(&bound_token_args(kind, name, extra), None)
    };
    let err = bind("Pod", "web", &["--bound-object-uid", "0000"]);
    assert!(
        err.contains(
            "the UID in the bound object reference (0000) does not match the UID in record"
        ),
        "{err}"
    );
    let err = bind("Pod", "other", &[]);
    assert!(
        err.contains(r#"cannot bind token for serviceaccount "builder" to pod running with different serviceaccount name"#),
        "{err}"
    );
    let err = bind("Pod", "missing", &[]);
    assert!(err.contains(r#"pods "missing" not found"#), "{err}");
    let configmap = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"boundObjectRef":{"apiVersion":"v1","kind":"ConfigMap","name":"kube-root-ca.crt"}}}"#;
    let err = refused_token_request(&c, configmap);
    assert!(
        err.contains("cannot bind token to object of type /v1, Kind=ConfigMap"),
        "{err}"
    );

    // A token bound to a secret ends with the secret, one bound to a pod with the pod.
    let secret_token = token_for(
        "Secret",
        "key",
        &["--bound-object-uid", &uid("secret", "key")],
    );
    assert_eq!(token_claims(&secret_token)["secret"]["name"], "key");
    assert_authenticates(&c, &secret_token);
    c.kubectl(&["delete", "secret", "key"]);
    assert_unauthorized(&c, &secret_token);

    // A pod on a node: its token names the node too. A token bound to the node itself ends
    // with the node.
    let node = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}"#;
    c.kubectl_stdin(&["create", "-f", "-"], Some(node));
    let placed = pod("placed", "builder").replace(r#""spec":{"#, r#""spec":{"nodeName":"n1","#);
    c.kubectl_stdin(&["create", "-f", "-"], Some(&placed));
    let node_uid = uid("node", "n1");
    let placed_token = token_for("Pod", "placed", &[]);
    let claims = token_claims(&placed_token);
    assert_eq!(claims["pod"]["name"], "placed");
    assert_eq!(claims["node"]["name"], "n1");
    assert_eq!(claims["node"]["uid"], node_uid.as_str());
    // Its user carries them as kube-apiserver's does: `kubectl auth whoami` shows them.
    let whoami = kubectl_as(&c, &placed_token, &["auth", "whoami", "-o", "json"]);
    assert!(whoami.status.success(), "{whoami:?}");
    let info = json(&String::from_utf8_lossy(&whoami.stdout))["status"]["userInfo"].clone();
    assert_eq!(info["username"], "system:serviceaccount:default:builder");
    assert_eq!(info["uid"], uid("serviceaccount", "builder").as_str());
    let jti = jwt_payload(&placed_token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let extra = |key: &str| info["extra"][format!("authentication.kubernetes.io/{key}")].clone();
    assert_eq!(
        extra("credential-id"),
        serde_json::json!([format!("JTI={jti}")])
    );
    assert_eq!(extra("pod-name"), serde_json::json!(["placed"]));
    assert_eq!(extra("pod-uid"), serde_json::json!([uid("pod", "placed")]));
    assert_eq!(extra("node-name"), serde_json::json!(["n1"]));
    assert_eq!(extra("node-uid"), serde_json::json!([node_uid]));
    // A TokenReview of the token says the same; a CSR the token's user makes records it.
    let reviewed = token_review(&c, &placed_token, &[]);
    assert_eq!(reviewed["status"]["user"], info);
    let csr = format!(
        r#"{{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{{"name":"from-placed"}},"spec":{{"request":"{}","signerName":"example.com/any","usages":["digital signature"],"uid":"forged","extra":{{"forged":["yes"]}}}}}}"#,
        csr_request("builder", &[]).1
    );
    // The account may ask for certificates as a node bootstrapper does.
    c.kubectl(&[
        "create",
        "clusterrolebinding",
        "builder-csr",
        "--clusterrole=system:node-bootstrapper",
        "--serviceaccount=default:builder",
    ]);
    let made = kubectl_as_with(&c, &placed_token, &["create", "-f", "-"], Some(&csr));
    assert!(made.status.success(), "{made:?}");
    let spec = json(&c.kubectl(&["get", "csr", "from-placed", "-o", "jsonpath={.spec}"]));
    assert_eq!(spec["username"], info["username"], "{spec}");
    assert_eq!(spec["uid"], info["uid"], "{spec}");
    assert_eq!(spec["extra"], info["extra"], "{spec}");
    let node_token = token_for("Node", "n1", &[]);
    assert_eq!(token_claims(&node_token)["node"]["uid"], node_uid.as_str());
    assert_authenticates(&c, &node_token);
    c.kubectl(&["delete", "node", "n1"]);
    assert_unauthorized(&c, &node_token);

    // An unscheduled pod goes at once; so does the token's validity.
    c.kubectl(&["delete", "pod", "web"]);
    assert_unauthorized(&c, &token);
    // Another pod of the same name is not the one the token names.
    c.kubectl_stdin(&["create", "-f", "-"], Some(&pod("web", "builder")));
    assert_unauthorized(&c, &token);
}

/// A new key and a PEM certificate request for `name` in `groups`, base64-encoded as a
/// CSR's `spec.request`.
fn csr_request(name: &str, groups: &[&str]) -> (rcgen::KeyPair, String) {
    use base64::Engine as _;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    for group in groups {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, *group);
    }
    let request = params.serialize_request(&key).unwrap().pem().unwrap();
    (
        key,
        base64::engine::general_purpose::STANDARD.encode(request),
    )
}

/// `kubectl create token builder` bound to the object `kind` `name`, with `extra` flags.
fn bound_token_args<'a>(kind: &'a str, name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "create",
        "token",
        "builder",
        "--bound-object-kind",
        kind,
        "--bound-object-name",
        name,
    ];
    args.extend(extra);
    args
}

/// `token` authenticates: `kubectl auth whoami`, which every authenticated user may ask,
/// answers.
fn assert_authenticates(c: &common::Cluster, token: &str) {
    let out = kubectl_as(c, token, &["auth", "whoami"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `token` no longer authenticates.
fn assert_unauthorized(c: &common::Cluster, token: &str) {
    let out = kubectl_as(c, token, &["auth", "whoami"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unauthorized"),
        "{out:?}"
    );
}

#[test]
fn bodies_yaml_and_hostile_input() {
    let Some(c) = common::start() else { return };
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, body) = c.curl("POST", cms, "application/yaml", CONFIGMAP.as_bytes());
    assert_eq!(code, 201, "{body}");
    assert_eq!(json(&body)["data"]["color"], "blue");

    // A YAML alias bomb is refused at once.
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
    let mut prev = "a";
    for n in names {
        bomb.push_str(&format!(
            "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = n;
    }
    let started = Instant::now();
    let (code, body) = c.curl("POST", cms, "application/yaml", bomb.as_bytes());
    assert_eq!(code, 400, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Deep nesting, a body over 3 MiB, an unknown media type, a bad method.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (code, body) = c.curl("POST", cms, "application/json", deep.as_bytes());
    assert_eq!(code, 400, "{body}");
    let big = vec![b' '; 4 * 1024 * 1024];
    let (code, body) = c.curl("POST", cms, "application/json", &big);
    assert_eq!(code, 413, "{body}");
    assert_eq!(json(&body)["reason"], "RequestEntityTooLarge");
    let (code, body) = c.curl("POST", cms, "text/plain", b"{}");
    assert_eq!(code, 415, "{body}");
    assert_eq!(json(&body)["reason"], "UnsupportedMediaType");
    let (code, body) = c.curl("PUT", cms, "application/json", b"{}");
    assert_eq!(code, 405, "{body}");
    let (code, _) = c.curl("POST", cms, "application/json", b"{not json");
    assert_eq!(code, 400);
    // ConfigMap data over 1 MiB is refused by validation, as kube-apiserver does (422).
    let huge = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"k": "x".repeat(2 * 1024 * 1024)}});
    let (code, body) = c.curl("POST", cms, "application/json", huge.to_string().as_bytes());
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("1048576 bytes"), "{body}");
    // Any object over the store's 1.5 MiB value limit (but under the 3 MiB body limit) is a 413.
    let huge = serde_json::json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "huge"},
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox", "args": ["x".repeat(2 * 1024 * 1024)]}]}}});
    let (code, body) = c.curl(
        "POST",
        "/api/v1/namespaces/default/podtemplates",
        "application/json",
        huge.to_string().as_bytes(),
    );
    assert_eq!(code, 413, "{body}");
    // The server is still healthy.
    assert_eq!(c.kubectl(&["get", "--raw", "/readyz"]).trim(), "ok");
}

const CRONTAB_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [cronSpec]
            properties:
              cronSpec: {type: string}
              image: {type: string}
              replicas: {type: integer, minimum: 0, maximum: 10, default: 1}
          status:
            type: object
            properties:
              replicas: {type: integer}
"#;

#[test]
fn custom_resource_definition_round_trip() {
    let Some(c) = common::start() else { return };
    c.kubectl_stdin(&["apply", "-f", "-"], Some(CRONTAB_CRD));
    c.kubectl(&[
        "wait",
        "--for=condition=established",
        "--timeout=20s",
        "crd/crontabs.stable.example.com",
    ]);
    let resources = c.kubectl(&["api-resources", "--api-group=stable.example.com"]);
    assert!(
        resources
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["crontabs", "ct", "stable.example.com/v1", "true", "CronTab"]),
        "{resources}"
    );

    let crontab = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: nightly\nspec:\n  cronSpec: '0 3 * * *'\n  image: backup\n";
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(crontab));
    assert_eq!(out.trim(), "crontab.stable.example.com/nightly created");
    let object = json(&c.kubectl(&["get", "ct", "nightly", "-o", "json"]));
    assert_eq!(
        object["spec"]["replicas"], 1,
        "the schema default was not applied"
    );
    assert_eq!(object["metadata"]["generation"], 1);
    let table = c.kubectl(&["get", "crontabs"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SPEC", "REPLICAS", "AGE"], "{table}");
    assert!(table.contains("0 3 * * *"), "{table}");

    // Schema validation and strict field validation.
    let bad = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: bad\nspec:\n  cronSpec: x\n  replicas: 50\n";
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(bad));
    assert!(
        err.contains("Invalid") && err.contains("spec.replicas"),
        "{err}"
    );
    let unknown = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: odd\nspec:\n  cronSpec: x\n  bogus: 1\n";
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(unknown));
    assert!(err.contains(r#"unknown field "spec.bogus""#), "{err}");
    let missing = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: missing\nspec:\n  image: x\n";
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(missing));
    assert!(err.contains("spec.cronSpec: Required value"), "{err}");

    // Scale and status subresources change only their part.
    c.kubectl(&["scale", "crontab/nightly", "--replicas=3"]);
    assert_eq!(
        c.kubectl(&["get", "ct", "nightly", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    c.kubectl(&[
        "patch",
        "ct",
        "nightly",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":3}}"#,
    ]);
    c.kubectl(&[
        "patch",
        "ct",
        "nightly",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":9}}"#,
    ]);
    assert_eq!(
        c.kubectl(&["get", "ct", "nightly", "-o", "jsonpath={.status.replicas}"]),
        "3"
    );

    // Deleting the CRD deletes its objects and stops serving it.
    c.kubectl(&[
        "delete",
        "crd",
        "crontabs.stable.example.com",
        "--timeout=30s",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = c.kubectl_raw(
            &[
                "get",
                "--raw",
                "/apis/stable.example.com/v1/namespaces/default/crontabs",
            ],
            None,
        );
        if !out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "crontabs still served");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = c.kubectl_raw(&["get", "crd", "crontabs.stable.example.com"], None);
    assert!(!out.status.success(), "the CRD is still there");
    // Its objects went with it: recreating the CRD shows none.
    c.kubectl_stdin(&["apply", "-f", "-"], Some(CRONTAB_CRD));
    c.kubectl(&[
        "wait",
        "--for=condition=established",
        "--timeout=20s",
        "crd/crontabs.stable.example.com",
    ]);
    let list = json(&c.kubectl(&[
        "get",
        "--raw",
        "/apis/stable.example.com/v1/namespaces/default/crontabs",
    ]));
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
}

#[test]
fn diff_finalizers_and_graceful_pod_deletion() {
    let Some(c) = common::start() else { return };
    // diff: nothing to show for the live state (exit 0), the change otherwise (exit 1).
    c.kubectl_stdin(&["apply", "-f", "-"], Some(CONFIGMAP));
    let same = c.kubectl_raw(&["diff", "-f", "-"], Some(CONFIGMAP));
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    let changed = c.kubectl_raw(
        &["diff", "-f", "-"],
        Some(&CONFIGMAP.replace("color: blue", "color: green")),
    );
    assert_eq!(
        changed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let out = String::from_utf8_lossy(&changed.stdout);
    assert!(
        out.contains("-  color: blue") && out.contains("+  color: green"),
        "{out}"
    );
    // The diff was a dry run: nothing changed.
    assert_eq!(
        c.kubectl(&["get", "cm", "settings", "-o", "jsonpath={.data.color}"]),
        "blue"
    );

    // An object with a finalizer stays, marked, until the finalizer is removed.
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, finalizers: [example.com/hold]}\n"),
    );
    c.kubectl(&["delete", "cm", "held", "--wait=false"]);
    let marked = c.kubectl(&[
        "get",
        "cm",
        "held",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(marked.ends_with('Z'), "{marked}");
    // It can still be updated; removing the last finalizer deletes it.
    c.kubectl(&["label", "cm", "held", "still=here"]);
    c.kubectl(&[
        "patch",
        "cm",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    assert!(!c.kubectl_raw(&["get", "cm", "held"], None).status.success());

    // A pod on a node is deleted gracefully: Terminating until its kubelet (here, the test)
    // confirms with a grace period of 0; --force does that at once.
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: n1, terminationGracePeriodSeconds: 45, containers: [{name: c, image: busybox}]}\n"),
    );
    // A new pod starts Pending with its QoS class.
    assert_eq!(
        c.kubectl(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.status.phase}/{.status.qosClass}"
        ]),
        "Pending/BestEffort"
    );
    c.kubectl(&["delete", "pod", "p", "--wait=false"]);
    assert_eq!(
        c.kubectl(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.metadata.deletionGracePeriodSeconds}"
        ]),
        "45"
    );
    let row = c.kubectl(&["get", "pod", "p", "--no-headers"]);
    assert!(row.contains("Terminating"), "{row}");
    c.kubectl(&["delete", "pod", "p", "--grace-period=0", "--force"]);
    assert!(!c.kubectl_raw(&["get", "pod", "p"], None).status.success());
    // An unscheduled pod goes at once.
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec: {containers: [{name: c, image: busybox}]}\n"),
    );
    c.kubectl(&["delete", "pod", "q", "--wait=false"]);
    assert!(!c.kubectl_raw(&["get", "pod", "q"], None).status.success());

    // A bad propagation policy is a 422 with kube's message.
    let (code, body) = c.curl(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/settings?propagationPolicy=Sideways",
        "application/json",
        b"",
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("Unsupported value: \\\"Sideways\\\""),
        "{body}"
    );
}

/// kubectl 1.33 sends the bodies of `create <kind>`, `create token`, `auth can-i`,
/// `auth whoami` and `drain` as Kubernetes protobuf; the server decodes them into the same
/// objects their JSON would give, and answers in JSON.
#[test]
fn protobuf_bodies_from_kubectl_create() {
    let Some(c) = common::start() else { return };
    let file = |name: &str, content: &[u8]| {
        let path = c.data_dir().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let binary = file("blob.bin", &[0, 1, 0xfe, 0xff, b'\n', 0x80]);
    let notes = file("notes.txt", b"hello\nworld\n");
    let tls = c.data_dir().join("tls");
    let (cert, key) = (
        tls.join("admin.crt").to_str().unwrap().to_owned(),
        tls.join("admin.key").to_str().unwrap().to_owned(),
    );

    // It really is protobuf, answered with JSON.
    let out = c.kubectl_raw(
        &["create", "configmap", "lit", "--from-literal=a=b", "-v=8"],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Content-Type: application/vnd.kubernetes.protobuf")
            && log.contains("Accept: application/vnd.kubernetes.protobuf,application/json")
            && log.contains("Content-Type: application/json"),
        "{log}"
    );

    let creates: &[&[&str]] = &[
        &[
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=3",
            "--port=8080",
        ],
        &["deployment", "idle", "--image=nginx", "--replicas=0"],
        &[
            "configmap",
            "files",
            &format!("--from-file={notes}"),
            "--from-literal=k=v",
        ],
        &[
            "secret",
            "generic",
            "blob",
            &format!("--from-file=bin={binary}"),
            "--from-literal=user=admin",
        ],
        &[
            "secret",
            "tls",
            "cert",
            &format!("--cert={cert}"),
            &format!("--key={key}"),
        ],
        &["service", "clusterip", "web", "--tcp=80:8080"],
        &["namespace", "team"],
        &["serviceaccount", "robot", "-n", "team"],
        &["job", "once", "--image=busybox", "--", "echo", "hi"],
        &[
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/5 * * * *",
            "--",
            "date",
        ],
        &["role", "reader", "--verb=get,list", "--resource=pods"],
        &["rolebinding", "reader", "--role=reader", "--user=alice"],
        &[
            "clusterrole",
            "node-reader",
            "--verb=get",
            "--resource=nodes",
        ],
        &[
            "clusterrole",
            "aggregate",
            "--aggregation-rule=rbac.example.com/aggregate=true",
        ],
        &[
            "clusterrolebinding",
            "node-reader",
            "--clusterrole=node-reader",
            "--group=ops",
        ],
        &["quota", "small", "--hard=pods=10,requests.cpu=500m"],
        &[
            "priorityclass",
            "high",
            "--value=1000",
            "--description=important",
        ],
        &["ingress", "web", "--rule=web.example.com/api*=web:80"],
        &["pdb", "web", "--selector=app=web", "--min-available=1"],
    ];
    for args in creates {
        let out = c.kubectl(&[&["create"], *args].concat());
        assert!(out.contains("created"), "{args:?}: {out}");
    }

    // Requests that are not stored: a token, an access review, a self review.
    let token = c.kubectl(&["create", "token", "default"]);
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert!(
        parts.len() == 3 && token.starts_with("eyJ") && parts.iter().all(|p| !p.is_empty()),
        "{token}"
    );
    assert_eq!(
        c.kubectl(&["auth", "can-i", "create", "pods"]).trim(),
        "yes"
    );
    let whoami = json(&c.kubectl(&["auth", "whoami", "-o", "json"]));
    assert_eq!(whoami["kind"], "SelfSubjectReview");
    assert_eq!(whoami["status"]["userInfo"]["username"], "admin");

    // The objects are what the JSON path makes of the same requests.
    let get = |args: &[&str]| json(&c.kubectl(&[&["get"], args, &["-o", "json"]].concat()));
    let web = get(&["deployment", "web"]);
    assert_eq!(web["spec"]["replicas"], 3);
    assert_eq!(web["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(
        web["spec"]["strategy"],
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(
        container["ports"],
        serde_json::json!([{"containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(container["resources"], serde_json::json!({}));
    assert_eq!(web["spec"]["template"]["metadata"]["labels"]["app"], "web");
    // A pointer field's zero survives: replicas 0 is not defaulted to 1.
    assert_eq!(get(&["deployment", "idle"])["spec"]["replicas"], 0);

    let files = get(&["configmap", "files"]);
    assert_eq!(
        files["data"],
        serde_json::json!({"notes.txt": "hello\nworld\n", "k": "v"})
    );
    // Binary secret data round-trips byte for byte.
    assert_eq!(
        c.kubectl(&["get", "secret", "blob", "-o", "jsonpath={.data.bin}"]),
        "AAH+/wqA"
    );
    let blob = get(&["secret", "blob"]);
    assert_eq!(blob["data"]["user"], "YWRtaW4=");
    assert_eq!(blob["type"], "Opaque");
    let cert_secret = get(&["secret", "cert"]);
    assert_eq!(cert_secret["type"], "kubernetes.io/tls");
    assert!(
        cert_secret["data"]["tls.crt"]
            .as_str()
            .is_some_and(|s| s.starts_with("LS0tLS1CRUdJTi")),
        "{cert_secret}"
    );

    let svc = get(&["service", "web"]);
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(
        svc["spec"]["ports"],
        serde_json::json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
    assert_eq!(get(&["namespace", "team"])["status"]["phase"], "Active");
    assert_eq!(
        get(&["serviceaccount", "robot", "-n", "team"])["metadata"]["namespace"],
        "team"
    );

    let job = get(&["job", "once"]);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].is_string()
    );
    let tick = get(&["cronjob", "tick"]);
    assert_eq!(tick["spec"]["schedule"], "*/5 * * * *");
    assert_eq!(
        tick["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["date"])
    );

    assert_eq!(
        get(&["role", "reader"])["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
    );
    assert_eq!(
        get(&["rolebinding", "reader"])["subjects"],
        serde_json::json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}])
    );
    let aggregate = get(&["clusterrole", "aggregate"]);
    assert_eq!(
        aggregate["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"],
        serde_json::json!({"rbac.example.com/aggregate": "true"})
    );
    assert_eq!(
        get(&["clusterrolebinding", "node-reader"])["roleRef"],
        serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "node-reader"})
    );
    assert_eq!(
        get(&["quota", "small"])["spec"]["hard"],
        serde_json::json!({"pods": "10", "requests.cpu": "500m"})
    );
    let high = get(&["priorityclass", "high"]);
    assert_eq!(high["value"], 1000);
    assert_eq!(high["description"], "important");
    assert_eq!(high["preemptionPolicy"], "PreemptLowerPriority");
    // globalDefault is a Go bool with omitempty: false is not printed.
    assert!(high.get("globalDefault").is_none(), "{high}");
    let ingress = get(&["ingress", "web"]);
    assert_eq!(
        ingress["spec"]["rules"],
        serde_json::json!([{"host": "web.example.com", "http": {"paths": [{
            "path": "/api",
            "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}},
        }]}}])
    );
    assert_eq!(get(&["pdb", "web"])["spec"]["minAvailable"], 1);

    // drain: evictions (policy/v1 Eviction with DeleteOptions) in protobuf.
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: stray}\nspec: {nodeName: n1, containers: [{name: c, image: busybox}]}\n"),
    );
    let drained = c.kubectl(&[
        "drain",
        "n1",
        "--force",
        "--grace-period=0",
        "--timeout=30s",
    ]);
    assert!(
        drained.contains("pod/stray evicted") && drained.contains("node/n1 drained"),
        "{drained}"
    );
    assert_eq!(
        c.kubectl(&["get", "node", "n1", "-o", "jsonpath={.spec.unschedulable}"]),
        "true"
    );
    // And a DELETE with protobuf DeleteOptions (drain without evictions).
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Pod\nmetadata: {name: stray2}\nspec: {nodeName: n1, containers: [{name: c, image: busybox}]}\n"),
    );
    let drained = c.kubectl(&[
        "drain",
        "n1",
        "--force",
        "--disable-eviction",
        "--grace-period=0",
        "--timeout=30s",
    ]);
    assert!(drained.contains("pod/stray2 deleted"), "{drained}");
    assert!(
        !c.kubectl_raw(&["get", "pod", "stray2"], None)
            .status
            .success()
    );

    // Malformed protobuf is a 400 in kube's words.
    let cms = "/api/v1/namespaces/default/configmaps";
    for body in [&b"k8s\0\x0a\xff"[..], b"{}", b"k8s\0\x0a\x02\x0a\x00"] {
        let (code, answer) = c.curl("POST", cms, "application/vnd.kubernetes.protobuf", body);
        assert_eq!(code, 400, "{answer}");
        assert!(
            answer.contains("the object provided is unrecognized or malformed"),
            "{answer}"
        );
    }
}

#[test]
fn explain_and_openapi_documents() {
    let Some(c) = common::start() else { return };

    // The swagger 2.0 document, built on first request (kubectl's own time included).
    let started = Instant::now();
    let doc = json(&c.kubectl(&["get", "--raw", "/openapi/v2"]));
    let first = started.elapsed();
    let started = Instant::now();
    let again = c.kubectl(&["get", "--raw", "/openapi/v2"]);
    eprintln!(
        "/openapi/v2: {} bytes, first GET {first:?}, cached GET {:?}",
        again.len(),
        started.elapsed()
    );
    assert_eq!(doc["swagger"], "2.0");
    let pod = &doc["definitions"]["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod",
        "{pod}"
    );
    let containers = &doc["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");

    // kubectl explain reads the OpenAPI v3 schemas: fields, types and descriptions.
    let ports = c.kubectl(&["explain", "pods.spec.containers.ports"]);
    assert!(ports.contains("FIELD: ports <[]ContainerPort>"), "{ports}");
    assert!(
        ports.contains("containerPort\t<integer> -required-"),
        "{ports}"
    );
    assert!(
        ports.contains("Number of port to expose on the pod's IP address."),
        "{ports}"
    );
    assert!(
        ports.contains("protocol\t<string>\n  enum: SCTP, TCP, UDP"),
        "{ports}"
    );
    let protocol = c.kubectl(&["explain", "pods.spec.containers.ports.protocol"]);
    assert!(
        protocol.contains("ENUM:\n    SCTP\n    TCP\n    UDP\n"),
        "{protocol}"
    );
    assert!(
        protocol.contains("Possible enum values:\n     - `\"SCTP\"` is the SCTP protocol."),
        "{protocol}"
    );
    let recursive = c.kubectl(&["explain", "deployments", "--recursive"]);
    assert!(recursive.contains("maxSurge\t<IntOrString>"), "{recursive}");
    let surge = c.kubectl(&["explain", "deploy.spec.strategy.rollingUpdate.maxSurge"]);
    assert!(surge.contains("FIELD: maxSurge <IntOrString>"), "{surge}");
    assert!(
        surge.contains("The maximum number of pods that can be scheduled"),
        "{surge}"
    );
    // kubectl fetches the swagger 2.0 document as protobuf.
    let v2 = c.kubectl(&[
        "explain",
        "pods.spec.containers.ports",
        "--output=plaintext-openapiv2",
    ]);
    assert!(v2.contains("containerPort\t<integer> -required-"), "{v2}");

    // The v3 index names each group-version's document with its hash; asked with the hash, a
    // document may be cached forever.
    let index = json(&c.kubectl(&["get", "--raw", "/openapi/v3"]));
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
    let apps = json(&c.kubectl(&["get", "--raw", &url]));
    assert_eq!(apps["openapi"], "3.0.0");
    assert_eq!(
        apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
        serde_json::json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    let verbose = c.kubectl_raw(&["get", "--raw", &url, "-v=8"], None);
    let log = String::from_utf8_lossy(&verbose.stderr);
    assert!(log.contains("Cache-Control: public, immutable"), "{log}");

    // A custom resource's document is built from its CRD's schema.
    c.kubectl_stdin(&["apply", "-f", "-"], Some(CRONTAB_CRD));
    c.kubectl(&[
        "wait",
        "--for=condition=established",
        "--timeout=20s",
        "crd/crontabs.stable.example.com",
    ]);
    let crontabs = c.kubectl(&["explain", "crontabs.spec"]);
    for field in [
        "cronSpec\t<string> -required-",
        "image\t<string>",
        "replicas\t<integer>",
    ] {
        assert!(crontabs.contains(field), "{crontabs}");
    }
    let index = json(&c.kubectl(&["get", "--raw", "/openapi/v3"]));
    assert!(
        index["paths"]["apis/stable.example.com/v1"].is_object(),
        "{index}"
    );

    // Client-side apply computes strategic merge patches from the schemas: containers merge
    // by name, so a container added by someone else survives a re-apply (a strategic merge
    // patch puts a new list item first, as kube's does).
    let deployment = |image: &str, env: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n{env}"
        )
    };
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&deployment("nginx:1.27", "")));
    c.kubectl(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ]);
    let env = "        env:\n        - name: MODE\n          value: fast\n";
    let out = c.kubectl_raw(&["apply", "-f", "-"], Some(&deployment("nginx:1.28", env)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("warning"),
        "{stderr}"
    );
    let object = json(&c.kubectl(&["get", "deployment", "web", "-o", "json"]));
    let containers = object["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sidecar", "web"], "{object}");
    assert_eq!(containers[1]["image"], "nginx:1.28");
    assert_eq!(containers[1]["env"][0]["name"], "MODE");
}

#[test]
fn emptied_metadata_lists_are_dropped() {
    let Some(c) = common::start() else { return };
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: e, finalizers: [example.com/a], labels: {a: b}}\n"),
    );
    c.kubectl(&["patch", "cm", "e", "--type=json", "-p", r#"[{"op":"replace","path":"/metadata/finalizers","value":[]},{"op":"replace","path":"/metadata/labels","value":{}}]"#]);
    let meta = json(&c.kubectl(&["get", "cm", "e", "-o", "json"]))["metadata"].clone();
    assert!(
        meta.get("finalizers").is_none() && meta.get("labels").is_none(),
        "{meta}"
    );
}

#[test]
fn an_approved_client_certificate_request_is_signed_and_authenticates() {
    let Some(c) = common::start() else { return };
    let (key, encoded) = csr_request("jane", &["developers"]);
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {{name: jane}}
spec:
  request: {encoded}
  signerName: kubernetes.io/kube-apiserver-client
  usages: [client auth]
"
        )),
    );
    // Not a kubelet's request: it waits for an admin.
    let table = c.kubectl(&["get", "csr", "jane"]);
    assert!(table.contains("Pending"), "{table}");
    let spec = json(&c.kubectl(&["get", "csr", "jane", "-o", "jsonpath={.spec}"]));
    // Who asked is who the API server authenticated, not what the body said: the admin,
    // with the credential id of the certificate it connected with, as whoami shows it.
    assert_eq!(spec["username"], "admin", "{spec}");
    let admin = json(&c.kubectl(&["auth", "whoami", "-o", "json"]))["status"]["userInfo"].clone();
    let credential = |extra: &serde_json::Value| {
        extra["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        credential(&admin["extra"]).starts_with("X509SHA256="),
        "{admin}"
    );
    assert_eq!(
        credential(&spec["extra"]),
        credential(&admin["extra"]),
        "{spec}"
    );
    c.kubectl(&["certificate", "approve", "jane"]);
    let mut cert = String::new();
    c.eventually("the request is signed", Duration::from_secs(20), || {
        cert = c.kubectl(&["get", "csr", "jane", "-o", "jsonpath={.status.certificate}"]);
        (!cert.is_empty())
            .then_some(())
            .ok_or_else(|| "not yet".to_owned())
    });
    let table = c.kubectl(&["get", "csr", "jane"]);
    assert!(table.contains("Approved,Issued"), "{table}");
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(cert.trim())
        .unwrap();
    let pem = String::from_utf8(pem).unwrap();
    let dir = c.data_dir().join("jane");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jane.crt"), &pem).unwrap();
    std::fs::write(dir.join("jane.key"), key.serialize_pem()).unwrap();
    // A kubeconfig of her own: the cluster's CA and her certificate.
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: \"{}\", certificate-authority: {}}}}}]
users: [{{name: jane, user: {{client-certificate: {}, client-key: {}}}}}]
contexts: [{{name: jane, context: {{cluster: c, user: jane}}}}]
current-context: jane
",
            c.server_url(),
            c.data_dir().join("tls/ca.crt").display(),
            dir.join("jane.crt").display(),
            dir.join("jane.key").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(c.kubectl_path())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["auth", "whoami", "-o", "json"])
        .output()
        .unwrap();
    let who = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = &json(&who)["status"]["userInfo"];
    assert_eq!(info["username"], "jane", "{who}");
    // Her credential id is her certificate's SHA-256, as kube-apiserver's.
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        credential(&info["extra"]),
        format!("X509SHA256={hex}"),
        "{who}"
    );
    assert!(
        info["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "developers"),
        "{who}"
    );
}
