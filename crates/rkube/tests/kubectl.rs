//! End to end: a real `rkube server` driven by real kubectl 1.33.

#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A ConfigMap manifest. (`kubectl create configmap` sends protobuf, which rkube does not
/// decode yet; manifests go as JSON.)
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
            "ns".into(),
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

    let ca = c.data_dir().join("tls/ca.crt");
    let as_account = |args: &[&str]| {
        let mut all = vec![
            "--kubeconfig=/dev/null".to_owned(),
            format!("--server={}", c.server_url()),
            format!("--certificate-authority={}", ca.display()),
            format!("--token={token}"),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        c.kubectl_raw(&all.iter().map(String::as_str).collect::<Vec<_>>(), None)
    };
    let out = as_account(&["get", "ns", "-o", "name"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let review = format!(
        r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{token}"}}}}"#
    );
    let reviewed = json(&c.kubectl_stdin(
        &[
            "create",
            "--raw",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "-f",
            "-",
        ],
        Some(&review),
    ));
    assert_eq!(reviewed["status"]["authenticated"], true);
    assert_eq!(
        reviewed["status"]["user"]["username"],
        "system:serviceaccount:default:builder"
    );

    // Too short a lifetime is refused as kube-apiserver does.
    let short = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":60}}"#;
    let err = c.kubectl_fails(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/serviceaccounts/builder/token",
            "-f",
            "-",
        ],
        Some(short),
    );
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );

    c.kubectl(&["delete", "serviceaccount", "builder"]);
    let out = as_account(&["get", "ns"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"));
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
