//! End to end: the kubelet's volume and environment preparation against a real
//! `rkube server`. Objects are made with kubectl, the pod goes through the API (so admission
//! adds the kube-api-access volume), then rkube_kubelet's `volumes::prepare` and
//! `envvars::container_env` run for it on this machine: files, tmpfs mounts, the projected
//! service-account token (checked by the server), and the variables. Needs root for the
//! tmpfs mounts of secret, projected and memory emptyDir volumes.

#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rkube_controllers::Stop;
use rkube_kubelet::envvars::{self, EnvContext};
use rkube_kubelet::objects::{ObjectSource as _, WatchedObjects};
use rkube_kubelet::volumes::{self, Propagation, VolumeContext, tmpfs};

async fn client(c: &common::Cluster) -> Client {
    let kubeconfig = Kubeconfig::read_from(c.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The super options (`rw,size=65536k`) of the mount at `dir`.
fn mount_options(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
        .and_then(|l| l.split(" - ").nth(1))
        .and_then(|r| r.split(' ').nth(2))
        .unwrap_or_default()
        .to_owned()
}

fn objects_yaml(pv_path: &Path) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: app-config}}
data: {{a.conf: "alpha=1", KEY: "from-config"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: "s3cret", user: "admin"}}
---
apiVersion: v1
kind: Service
metadata: {{name: kubernetes}}
spec: {{clusterIP: 10.43.0.1, ports: [{{name: https, port: 443, targetPort: 6443}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-front}}
spec: {{clusterIP: 10.43.0.20, selector: {{app: web}}, ports: [{{name: http, port: 80}}, {{name: dns, port: 53, protocol: UDP}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: headless}}
spec: {{clusterIP: None, selector: {{app: web}}, ports: [{{port: 80}}]}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data}}
spec: {{accessModes: [ReadWriteOnce], volumeName: pv-data, storageClassName: "", resources: {{requests: {{storage: 1Gi}}}}}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: pv-data}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {{path: {path}, type: DirectoryOrCreate}}
"#,
        path = pv_path.display()
    )
}

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web, tier: front}, annotations: {note: "a \"quoted\" value"}}
spec:
  containers:
  - name: app
    image: busybox
    resources: {limits: {memory: 64Mi, cpu: 250m}}
    envFrom:
    - {prefix: CFG_, configMapRef: {name: app-config}}
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: GREETING, value: "hello $(POD_NAME) at $(WEB_FRONT_SERVICE_HOST), $$(POD_NAME)"}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MEM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU_M, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    volumeMounts:
    - {name: config, mountPath: /etc/app}
    - {name: creds, mountPath: /etc/creds, readOnly: true}
    - {name: info, mountPath: /etc/podinfo}
    - {name: cache, mountPath: /cache}
    - {name: data, mountPath: /data, subPath: web}
    - {name: token, mountPath: /var/run/secrets/tokens}
  volumes:
  - {name: config, configMap: {name: app-config, items: [{key: a.conf, path: conf/a.conf}]}}
  - {name: creds, secret: {secretName: creds, defaultMode: 0400}}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: annotations, fieldRef: {fieldPath: metadata.annotations}}
      - {path: mem, resourceFieldRef: {containerName: app, resource: limits.memory, divisor: 1Mi}}
  - {name: cache, emptyDir: {medium: Memory, sizeLimit: 16Mi}}
  - {name: data, persistentVolumeClaim: {claimName: data}}
  - name: token
    projected:
      sources:
      - serviceAccountToken: {path: vault-token, expirationSeconds: 7200}
      - configMap: {name: app-config, items: [{key: KEY, path: key}]}
      - secret: {name: creds, items: [{key: user, path: user}]}
"#;

/// The API server's count of answered GETs of ConfigMaps, from its metrics.
fn configmap_gets(c: &common::Cluster) -> u64 {
    c.kubectl(&["get", "--raw", "/metrics"])
        .lines()
        .filter(|l| {
            l.starts_with(
                r#"apiserver_request_total{verb="GET",group="",version="v1",resource="configmaps","#,
            )
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_and_environment_of_a_pod() {
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kubelet_volumes mounts tmpfs and needs root, but CI=true and this is not root"
        );
        eprintln!("SKIPPED: kubelet_volumes needs root for tmpfs mounts");
        return;
    }
    let Some(c) = common::start() else { return };
    let client = client(&c).await;
    let scratch = tempfile::tempdir().unwrap();
    let pv_path = scratch.path().join("pv");
    let pods_dir = scratch.path().join("agent/pods");

    // The namespace's ServiceAccount and root CA come from the controller manager.
    c.eventually(
        "default ServiceAccount and kube-root-ca.crt",
        Duration::from_secs(20),
        || {
            let out = c.kubectl_raw(
                &[
                    "get",
                    "serviceaccount/default",
                    "configmap/kube-root-ca.crt",
                ],
                None,
            );
            out.status
                .success()
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
        },
    );
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&objects_yaml(&pv_path)));
    // The controller manager's binder binds the claim to the volume it names.
    c.eventually("data Bound", Duration::from_secs(20), || {
        let phase = c.kubectl(&["get", "pvc", "data", "-o", "jsonpath={.status.phase}"]);
        (phase == "Bound").then_some(()).ok_or(phase)
    });
    c.kubectl_stdin(&["create", "-f", "-"], Some(POD));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = pods.get("web").await.unwrap();
    let uid = pod.metadata.uid.clone().unwrap();

    // The agent's object source: Services from a watch, the rest from the API.
    let (_stop_handle, stop) = Stop::new();
    let objects = WatchedObjects::start(client.clone(), stop);
    let allocatable: BTreeMap<String, Quantity> = [
        ("cpu".to_owned(), Quantity("2".into())),
        ("memory".to_owned(), Quantity("1Gi".into())),
    ]
    .into();
    let ctx = VolumeContext {
        objects: &objects,
        pods_dir: &pods_dir,
        allocatable: &allocatable,
    };

    let mut vols = volumes::prepare(&ctx, &pod).await.unwrap();
    let pod_dir = pods_dir.join(&uid);
    assert_eq!(vols.pod_dir(), pod_dir);
    let vol = |plugin: &str, name: &str| pod_dir.join("volumes").join(plugin).join(name);

    // configMap with items, in the atomic writer's layout.
    let config = vol("kubernetes.io~configmap", "config");
    assert_eq!(
        std::fs::read_to_string(config.join("conf/a.conf")).unwrap(),
        "alpha=1"
    );
    assert_eq!(
        std::fs::read_link(config.join("conf")).unwrap(),
        Path::new("..data/conf")
    );
    assert!(
        std::fs::read_link(config.join("..data"))
            .unwrap()
            .to_string_lossy()
            .starts_with("..20")
    );

    // secret: on a tmpfs, with its defaultMode.
    let creds = vol("kubernetes.io~secret", "creds");
    assert!(tmpfs::is_tmpfs_mount(&creds).unwrap());
    assert_eq!(
        std::fs::read_to_string(creds.join("password")).unwrap(),
        "s3cret"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(creds.join("user"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o400
    );

    // downwardAPI in kube's formats.
    let info = vol("kubernetes.io~downward-api", "info");
    assert_eq!(
        std::fs::read_to_string(info.join("labels")).unwrap(),
        "app=\"web\"\ntier=\"front\""
    );
    assert_eq!(
        std::fs::read_to_string(info.join("annotations")).unwrap(),
        "note=\"a \\\"quoted\\\" value\""
    );
    assert_eq!(std::fs::read_to_string(info.join("mem")).unwrap(), "64");

    // emptyDir medium Memory: a tmpfs of the sizeLimit.
    let cache = vol("kubernetes.io~empty-dir", "cache");
    assert!(tmpfs::is_tmpfs_mount(&cache).unwrap());
    assert!(
        mount_options(&cache).contains("size=16384k"),
        "{}",
        mount_options(&cache)
    );

    // The claim is its PV's hostPath.
    assert_eq!(vols.get("data").unwrap().host_path, pv_path);
    assert!(pv_path.is_dir());

    // The admission-added kube-api-access volume: token, ca.crt, namespace.
    let access = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.starts_with("kube-api-access-"))
        .map(|v| v.name.clone())
        .unwrap();
    let access_dir = vol("kubernetes.io~projected", &access);
    assert!(tmpfs::is_tmpfs_mount(&access_dir).unwrap());
    let ca = std::fs::read_to_string(c.data_dir().join("tls/ca.crt")).unwrap();
    assert_eq!(
        std::fs::read_to_string(access_dir.join("ca.crt"))
            .unwrap()
            .trim(),
        ca.trim()
    );
    assert_eq!(
        std::fs::read_to_string(access_dir.join("namespace")).unwrap(),
        "default"
    );
    let token = std::fs::read_to_string(access_dir.join("token")).unwrap();

    // The server accepts the token: a TokenReview, and a request with it as bearer.
    let reviews: Api<TokenReview> = Api::all(client.clone());
    let review = reviews
        .create(
            &PostParams::default(),
            &TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token.clone()),
                    audiences: None,
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let status = review.status.unwrap();
    assert_eq!(status.authenticated, Some(true), "{status:?}");
    assert_eq!(
        status.user.and_then(|u| u.username).as_deref(),
        Some("system:serviceaccount:default:default")
    );
    // It authenticates: discovery answers, and the account, bound to no role, may not list
    // pods.
    let status_of = |path: &str| {
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(c.data_dir().join("tls/ca.crt"))
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .arg(format!("{}{path}", c.server_url()))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(status_of("/api/v1"), "200");
    assert_eq!(status_of("/api/v1/namespaces/default/pods"), "403");

    // The custom projected volume: token, a ConfigMap key and a Secret key.
    let projected = vol("kubernetes.io~projected", "token");
    assert_eq!(
        std::fs::read_to_string(projected.join("key")).unwrap(),
        "from-config"
    );
    assert_eq!(
        std::fs::read_to_string(projected.join("user")).unwrap(),
        "admin"
    );
    let vault_token = std::fs::read_to_string(projected.join("vault-token")).unwrap();
    assert!(!vault_token.is_empty() && vault_token != token);
    // 80% of two hours from now, give or take the test's own time.
    let refresh = vols.next_token_refresh().unwrap();
    let in_secs = (refresh - k8s_openapi::chrono::Utc::now()).num_seconds();
    assert!((2800..=2900).contains(&in_secs), "{in_secs}");

    // The environment.
    let host_ips: [IpAddr; 1] = ["192.168.7.7".parse().unwrap()];
    let pod_ips: [IpAddr; 1] = ["10.42.0.9".parse().unwrap()];
    let env_ctx = EnvContext {
        objects: &objects,
        allocatable: &allocatable,
        host_ips: &host_ips,
        pod_ips: &pod_ips,
    };
    let container = &pod.spec.as_ref().unwrap().containers[0];
    let env = envvars::container_env(&env_ctx, &pod, container)
        .await
        .unwrap();
    assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
    assert_eq!(get(&env, "KUBERNETES_SERVICE_PORT"), Some("443"));
    assert_eq!(
        get(&env, "KUBERNETES_PORT_443_TCP"),
        Some("tcp://10.43.0.1:443")
    );
    assert_eq!(get(&env, "WEB_FRONT_SERVICE_PORT_HTTP"), Some("80"));
    assert_eq!(get(&env, "WEB_FRONT_PORT_53_UDP_PROTO"), Some("udp"));
    assert_eq!(get(&env, "HEADLESS_SERVICE_HOST"), None);
    assert_eq!(get(&env, "CFG_KEY"), Some("from-config"));
    assert_eq!(get(&env, "CFG_a.conf"), Some("alpha=1"));
    assert_eq!(
        get(&env, "GREETING"),
        Some("hello web at 10.43.0.20, $(POD_NAME)")
    );
    assert_eq!(get(&env, "PASSWORD"), Some("s3cret"));
    assert_eq!(get(&env, "MEM_MI"), Some("64"));
    assert_eq!(get(&env, "CPU_M"), Some("250"));
    assert_eq!(get(&env, "HOST_IP"), Some("192.168.7.7"));
    assert_eq!(get(&env, "POD_IP"), Some("10.42.0.9"));

    // The container's mounts.
    let mounts = vols.mounts_for(container, &env).unwrap();
    let by_path = |p: &str| mounts.iter().find(|m| m.container_path == p).unwrap();
    assert_eq!(by_path("/etc/app").host_path, config);
    assert!(
        by_path("/etc/app").read_only,
        "configMap volumes are read-only"
    );
    assert!(!by_path("/cache").read_only);
    assert_eq!(by_path("/data").host_path, pv_path.join("web"));
    assert!(pv_path.join("web").is_dir());
    let sa = by_path("/var/run/secrets/kubernetes.io/serviceaccount");
    assert_eq!(
        (sa.host_path.as_path(), sa.read_only),
        (access_dir.as_path(), true)
    );
    assert_eq!(sa.propagation, Propagation::Private);

    // The ConfigMap changes; the resync rewrites the volume.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = cms.get("app-config").await.unwrap();
    cm.data
        .as_mut()
        .unwrap()
        .insert("a.conf".into(), "alpha=2".into());
    cms.replace("app-config", &PostParams::default(), &cm)
        .await
        .unwrap();
    // The change comes by the ConfigMap's watch: a later sync has it.
    for _ in 0..100 {
        volumes::update(&ctx, &pod, &mut vols).await.unwrap();
        if std::fs::read_to_string(config.join("conf/a.conf")).unwrap() == "alpha=2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        std::fs::read_to_string(config.join("conf/a.conf")).unwrap(),
        "alpha=2"
    );
    assert_eq!(
        std::fs::read_to_string(projected.join("vault-token")).unwrap(),
        vault_token,
        "a fresh token is kept"
    );

    // A key that is gone: kube's error, as the worker will report it.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    assert!(claims.get("data").await.is_ok());
    c.kubectl(&["delete", "secret", "creds"]);
    let mut err = None;
    for _ in 0..100 {
        err = envvars::container_env(&env_ctx, &pod, container)
            .await
            .err()
            .map(|e| e.to_string());
        if err.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(err.as_deref(), Some("secret \"creds\" not found"));
    let err = volumes::update(&ctx, &pod, &mut vols)
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("MountVolume.SetUp failed for volume \"creds\" : secret \"creds\" not found")
    );

    // Each ConfigMap is read from a watch of its own: many reads are no GET, and one
    // created after a read that found nothing is found by the next.
    let gets = || configmap_gets(&c);
    let before = gets();
    for _ in 0..20 {
        assert!(
            objects
                .config_map("default", "app-config")
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        objects
            .config_map("default", "late")
            .await
            .unwrap()
            .is_none()
    );
    c.kubectl(&["create", "configmap", "late", "--from-literal=k=v"]);
    let mut late = None;
    for _ in 0..100 {
        late = objects.config_map("default", "late").await.unwrap();
        if late.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        late.and_then(|cm| cm.data)
            .and_then(|d| d.get("k").cloned())
            .as_deref(),
        Some("v")
    );
    assert_eq!(gets(), before, "reads from the watches made GETs");

    // Cleanup unmounts the tmpfs volumes and removes the pod's directory, not the PV's data.
    volumes::cleanup(&pod_dir).await.unwrap();
    assert!(!pod_dir.exists());
    assert!(
        !tmpfs::mounts()
            .unwrap()
            .iter()
            .any(|m| m.mount_point.starts_with(&pod_dir))
    );
    assert!(pv_path.join("web").is_dir());
}
