//! ReplicaSets, ReplicationControllers and Deployments end to end: a real `rkube server`
//! driven by real kubectl. No kubelet runs, so a stand-in (a kube-rs watch in a thread)
//! marks every new pod Running and Ready, which is what makes pods available.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Cluster, eventually};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::chrono::{SecondsFormat, Utc};
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// Pods whose first image contains this are never made ready (a broken rollout).
const BROKEN: &str = "broken";

/// Plays kubelet: every pod not being deleted is marked Running and Ready as soon as it
/// is seen, unless its image is "broken".
struct Kubelet {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Kubelet {
    fn start(c: &Cluster) -> Kubelet {
        let kubeconfig = c.kubeconfig();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(run_kubelet(kubeconfig, flag));
        });
        Kubelet {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn needs_ready(pod: &Pod) -> bool {
    let broken = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
        .is_some_and(|i| i.contains(BROKEN));
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    !broken && !ready && pod.metadata.deletion_timestamp.is_none()
}

async fn run_kubelet(kubeconfig: PathBuf, stop: Arc<AtomicBool>) {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    let all: Api<Pod> = Api::all(client.clone());
    let mut pods = watcher(all, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while !stop.load(Ordering::SeqCst) {
        let Ok(next) = tokio::time::timeout(Duration::from_millis(200), pods.next()).await else {
            continue;
        };
        let Some(Ok(pod)) = next else { continue };
        if !needs_ready(&pod) {
            continue;
        }
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let status = json!({"status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ],
        }});
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
        // A pod deleted meanwhile is fine.
        let _ = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await;
    }
}

/// A cluster whose default service account exists, with the stand-in kubelet running.
fn cluster() -> Option<(Cluster, Kubelet)> {
    let c = common::start()?;
    eventually("default service account", WAIT, || {
        let out = c.kubectl_raw(&["get", "sa", "default", "-o", "name"], None);
        out.status
            .success()
            .then_some(())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    let kubelet = Kubelet::start(&c);
    Some((c, kubelet))
}

fn get_json(c: &Cluster, args: &[&str]) -> Value {
    let mut full = vec!["get", "-o", "json"];
    full.extend_from_slice(args);
    serde_json::from_str(&c.kubectl(&full)).unwrap()
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The live (not terminating) pods with this label selector.
fn live_pods(c: &Cluster, selector: &str) -> Vec<Value> {
    items(&get_json(c, &["pods", "-l", selector]))
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn name(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn jsonpath(c: &Cluster, args: &[&str], path: &str) -> String {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    let expr = format!("jsonpath={path}");
    full.extend_from_slice(&["-o", &expr]);
    c.kubectl(&full)
}

/// Waits until exactly `n` live pods match, all ready.
fn wait_ready_pods(c: &Cluster, selector: &str, n: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    eventually(&format!("{n} ready pods with {selector}"), WAIT, || {
        seen = live_pods(c, selector);
        let ready = seen.iter().filter(|p| is_ready(p)).count();
        (seen.len() == n && ready == n)
            .then_some(())
            .ok_or(format!("{} live, {ready} ready", seen.len()))
    });
    seen
}

fn replica_set(name: &str, replicas: u32, app: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      containers: [{{name: main, image: nginx:1.25}}]
"
    )
}

fn deployment(name: &str, replicas: u32, image: &str, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  strategy: {strategy}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: main, image: \"{image}\"}}]
"
    )
}

const SURGE_ONLY: &str = "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}";

#[test]
fn a_replica_set_keeps_its_pods() {
    let Some((c, _kubelet)) = cluster() else {
        return;
    };
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&replica_set("web", 3, "web")));
    let pods = wait_ready_pods(&c, "app=web", 3);
    for pod in &pods {
        assert!(name(pod).starts_with("web-"), "{}", name(pod));
        let owner = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet");
        assert_eq!(owner["name"], "web");
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
    }
    eventually("status counts", WAIT, || {
        let s = jsonpath(
            &c,
            &["rs", "web"],
            "{.status.replicas} {.status.fullyLabeledReplicas} {.status.readyReplicas} {.status.availableReplicas} {.status.observedGeneration}",
        );
        (s == "3 3 3 3 1").then_some(()).ok_or(s)
    });

    // A deleted pod is replaced.
    let victim = name(&pods[0]);
    c.kubectl(&["delete", "pod", &victim, "--wait=false"]);
    eventually("replacement pod", WAIT, || {
        let now: Vec<String> = live_pods(&c, "app=web").iter().map(name).collect();
        (now.len() == 3 && !now.contains(&victim))
            .then_some(())
            .ok_or(format!("{now:?}"))
    });

    c.kubectl(&["scale", "rs", "web", "--replicas=5"]);
    wait_ready_pods(&c, "app=web", 5);
    eventually("5 available", WAIT, || {
        let s = jsonpath(
            &c,
            &["rs", "web"],
            "{.status.availableReplicas} {.status.observedGeneration}",
        );
        (s == "5 2").then_some(()).ok_or(s)
    });
    c.kubectl(&["scale", "rs", "web", "--replicas=0"]);
    wait_ready_pods(&c, "app=web", 0);
    eventually("status at zero", WAIT, || {
        let s = jsonpath(
            &c,
            &["rs", "web"],
            "{.status.replicas}/{.status.readyReplicas}",
        );
        (s == "0/").then_some(()).ok_or(s)
    });

    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web,involvedObject.kind=ReplicaSet",
        "-o",
        "jsonpath={range .items[*]}{.reason}|{.message}|{.source.component}{\"\\n\"}{end}",
    ]);
    assert!(
        events
            .lines()
            .any(|l| l.starts_with("SuccessfulCreate|Created pod: web-")
                && l.ends_with("|replicaset-controller")),
        "{events}"
    );
    assert!(
        events.contains("SuccessfulDelete|Deleted pod: "),
        "{events}"
    );
    let describe = c.kubectl(&["describe", "rs", "web"]);
    assert!(describe.contains("SuccessfulCreate"), "{describe}");
}

#[test]
fn orphans_are_adopted_and_mismatches_released() {
    let Some((c, _kubelet)) = cluster() else {
        return;
    };
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: v1
kind: Pod
metadata: {name: stray, labels: {app: cats}}
spec:
  containers: [{name: main, image: nginx:1.25}]
",
        ),
    );
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&replica_set("cats", 2, "cats")));
    eventually("stray adopted", WAIT, || {
        let owner = jsonpath(
            &c,
            &["pod", "stray"],
            "{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}",
        );
        (owner == "cats/true").then_some(()).ok_or(owner)
    });
    let pods = wait_ready_pods(&c, "app=cats", 2);
    assert!(pods.iter().any(|p| name(p) == "stray"));

    // Relabelled out of the selector: released, and replaced.
    c.kubectl(&["label", "pod", "stray", "app=dogs", "--overwrite"]);
    eventually("stray released", WAIT, || {
        // The emptied list is dropped, as kube-apiserver does.
        let owners = jsonpath(&c, &["pod", "stray"], "{.metadata.ownerReferences}");
        owners.is_empty().then_some(()).ok_or(owners)
    });
    let pods = wait_ready_pods(&c, "app=cats", 2);
    assert!(pods.iter().all(|p| name(p) != "stray"));
    assert_eq!(live_pods(&c, "app=dogs").len(), 1);

    // Deleting the replica set takes its pods (not the released one) with it.
    c.kubectl(&["delete", "rs", "cats"]);
    wait_ready_pods(&c, "app=cats", 0);
    assert_eq!(live_pods(&c, "app=dogs").len(), 1);
}

#[test]
fn a_replication_controller_keeps_its_pods() {
    let Some((c, _kubelet)) = cluster() else {
        return;
    };
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            "apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 2
  selector: {app: legacy}
  template:
    metadata: {labels: {app: legacy}}
    spec:
      containers: [{name: main, image: nginx:1.25}]
",
        ),
    );
    let pods = wait_ready_pods(&c, "app=legacy", 2);
    assert_eq!(
        pods[0]["metadata"]["ownerReferences"][0]["kind"],
        "ReplicationController"
    );
    assert!(name(&pods[0]).starts_with("legacy-"));
    c.kubectl(&["scale", "rc", "legacy", "--replicas=3"]);
    wait_ready_pods(&c, "app=legacy", 3);
    eventually("rc status", WAIT, || {
        let s = jsonpath(
            &c,
            &["rc", "legacy"],
            "{.status.replicas} {.status.readyReplicas} {.status.availableReplicas}",
        );
        (s == "3 3 3").then_some(()).ok_or(s)
    });
    let table = c.kubectl(&["get", "rc", "legacy"]);
    assert!(
        table.lines().nth(1).is_some_and(
            |l| l.split_whitespace().take(4).collect::<Vec<_>>() == ["legacy", "3", "3", "3"]
        ),
        "{table}"
    );
    c.kubectl(&["delete", "rc", "legacy"]);
    wait_ready_pods(&c, "app=legacy", 0);
}

/// Watches a workload's pods until stopped and checks every state they pass through,
/// recording each breach.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(usize, Vec<String>)>>,
}

impl Sampler {
    fn start(
        c: &Cluster,
        selector: &str,
        check: impl Fn(&[Value]) -> Result<(), String> + Send + 'static,
    ) -> Sampler {
        let kubeconfig = c.kubeconfig();
        let selector = selector.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(watch_pods(kubeconfig, selector, flag, started_tx, check))
        });
        // The first list is in before the caller changes anything.
        started_rx.recv_timeout(WAIT).unwrap();
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching: how many states were checked, and the breaches.
    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

async fn watch_pods(
    kubeconfig: PathBuf,
    selector: String,
    stop: Arc<AtomicBool>,
    started: std::sync::mpsc::Sender<()>,
    check: impl Fn(&[Value]) -> Result<(), String>,
) -> (usize, Vec<String>) {
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::read_from(kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let api: Api<Pod> = Api::default_namespaced(Client::try_from(config).unwrap());
    let mut events = watcher(api, watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    type Pods = std::collections::BTreeMap<String, Value>;
    let apply = |pods: &mut Pods, pod: Pod| {
        if pod.metadata.deletion_timestamp.is_some() {
            pods.remove(&pod.name_any());
        } else {
            pods.insert(pod.name_any(), serde_json::to_value(&pod).unwrap());
        }
    };
    let (mut live, mut listing) = (Pods::new(), Pods::new());
    let (mut states, mut breaches) = (0, Vec::new());
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(Ok(event))) =
            tokio::time::timeout(Duration::from_millis(100), events.next()).await
        else {
            continue;
        };
        match event {
            watcher::Event::Init => {
                listing.clear();
                continue;
            }
            watcher::Event::InitApply(pod) => {
                apply(&mut listing, pod);
                continue;
            }
            watcher::Event::InitDone => {
                live = std::mem::take(&mut listing);
                let _ = started.send(());
            }
            watcher::Event::Apply(pod) => apply(&mut live, pod),
            watcher::Event::Delete(pod) => {
                live.remove(&pod.name_any());
            }
        }
        states += 1;
        let pods: Vec<Value> = live.values().cloned().collect();
        if let Err(e) = check(&pods) {
            breaches.push(e);
        }
    }
    (states, breaches)
}

fn images(pods: &[Value]) -> BTreeSet<String> {
    pods.iter()
        .map(|p| {
            p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

fn rollout_status(c: &Cluster, deploy: &str) -> String {
    c.kubectl(&[
        "rollout",
        "status",
        &format!("deployment/{deploy}"),
        "--timeout=90s",
    ])
}

/// The deployment's replica sets: name -> (revision, spec.replicas, image).
fn replica_sets_of(c: &Cluster, app: &str) -> Vec<(String, String, i64, String)> {
    let mut out: Vec<(String, String, i64, String)> =
        items(&get_json(c, &["rs", "-l", &format!("app={app}")]))
            .iter()
            .map(|rs| {
                (
                    name(rs),
                    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    rs["spec"]["replicas"].as_i64().unwrap_or(-1),
                    rs["spec"]["template"]["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                )
            })
            .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

#[test]
fn a_deployment_rolls_out_within_its_budget_and_rolls_back() {
    let Some((c, _kubelet)) = cluster() else {
        return;
    };
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&deployment("web", 3, "nginx:1.0", SURGE_ONLY)),
    );
    let status = rollout_status(&c, "web");
    assert!(
        status.contains("deployment \"web\" successfully rolled out"),
        "{status}"
    );
    let pods = wait_ready_pods(&c, "app=web", 3);
    let rss = replica_sets_of(&c, "web");
    assert_eq!(rss.len(), 1, "{rss:?}");
    let (rs1, rev, size, _) = &rss[0];
    assert_eq!((rev.as_str(), *size), ("1", 3));
    let hash = rs1.strip_prefix("web-").unwrap();
    for pod in &pods {
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], hash);
        assert!(name(pod).starts_with(&format!("{rs1}-")));
    }
    let rs = get_json(&c, &["rs", rs1]);
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(rs["metadata"]["labels"]["pod-template-hash"], hash);
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "3"
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
        "4"
    );
    assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    let d = get_json(&c, &["deploy", "web"]);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["observedGeneration"], 1);
    let reasons: Vec<(String, String)> = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_owned(),
                c["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "Available".to_owned(),
                "MinimumReplicasAvailable".to_owned()
            ),
            (
                "Progressing".to_owned(),
                "NewReplicaSetAvailable".to_owned()
            )
        ]
    );

    // A new image: never more than 4 pods, never fewer than 3 ready.
    let sampler = Sampler::start(&c, "app=web", |pods| {
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        if pods.len() > 4 || ready < 3 {
            return Err(format!(
                "{} pods, {ready} ready: {:?}",
                pods.len(),
                images(pods)
            ));
        }
        Ok(())
    });
    c.kubectl(&["set", "image", "deployment/web", "main=nginx:2.0"]);
    let status = rollout_status(&c, "web");
    let pods = wait_ready_pods(&c, "app=web", 3);
    let (samples, breaches) = sampler.finish();
    assert!(status.contains("successfully rolled out"), "{status}");
    assert!(samples > 2, "only {samples} states seen");
    assert!(breaches.is_empty(), "budget breached: {breaches:?}");
    assert_eq!(images(&pods), BTreeSet::from(["nginx:2.0".to_owned()]));
    let rss = replica_sets_of(&c, "web");
    assert_eq!(rss.len(), 2, "{rss:?}");
    assert_eq!((rss[0].1.as_str(), rss[0].2), ("1", 0));
    assert_eq!(
        (rss[1].1.as_str(), rss[1].2, rss[1].3.as_str()),
        ("2", 3, "nginx:2.0")
    );

    let history = c.kubectl(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let one = c.kubectl(&["rollout", "history", "deployment/web", "--revision=1"]);
    assert!(one.contains("nginx:1.0"), "{one}");

    // Back to revision 1: its replica set returns as revision 3.
    let undo = c.kubectl(&["rollout", "undo", "deployment/web", "--to-revision=1"]);
    assert!(undo.contains("rolled back"), "{undo}");
    rollout_status(&c, "web");
    let pods = wait_ready_pods(&c, "app=web", 3);
    assert_eq!(images(&pods), BTreeSet::from(["nginx:1.0".to_owned()]));
    let rss = replica_sets_of(&c, "web");
    assert_eq!(rss.len(), 2, "{rss:?}");
    assert_eq!(
        (rss[1].0.as_str(), rss[1].1.as_str(), rss[1].2),
        (rs1.as_str(), "3", 3),
        "{rss:?}"
    );
    assert_eq!((rss[0].1.as_str(), rss[0].2), ("2", 0), "{rss:?}");
    let rs = get_json(&c, &["rs", rs1]);
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );
    eventually("deployment revision 3", WAIT, || {
        let r = jsonpath(
            &c,
            &["deploy", "web"],
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        );
        (r == "3").then_some(()).ok_or(r)
    });
    let history = c.kubectl(&["rollout", "history", "deployment/web"]);
    assert!(history.lines().any(|l| l.starts_with("3 ")), "{history}");
    assert!(!history.lines().any(|l| l.starts_with("1 ")), "{history}");

    let describe = c.kubectl(&["describe", "deployment", "web"]);
    assert!(describe.contains("ScalingReplicaSet"), "{describe}");
    assert!(
        describe.contains(&format!("Scaled up replica set {rs1} from 0 to 3")),
        "{describe}"
    );
    assert!(describe.contains("Scaled down replica set"), "{describe}");
    assert!(describe.contains("deployment-controller"), "{describe}");
    assert!(
        describe.contains("3 desired | 3 updated | 3 total | 3 available | 0 unavailable"),
        "{describe}"
    );
    assert!(
        describe.contains(&format!("NewReplicaSet:   {rs1} (3/3 replicas created)")),
        "{describe}"
    );
}

#[test]
fn pause_resume_restart_scale_and_delete() {
    let Some((c, _kubelet)) = cluster() else {
        return;
    };
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&deployment("app", 2, "nginx:1.0", SURGE_ONLY).replace(
            "spec:\n  replicas",
            "spec:\n  revisionHistoryLimit: 1\n  replicas",
        )),
    );
    rollout_status(&c, "app");

    // Paused: a template change makes no replica set, but scaling works.
    c.kubectl(&["rollout", "pause", "deployment/app"]);
    eventually("paused condition", WAIT, || {
        let r = jsonpath(
            &c,
            &["deploy", "app"],
            "{.status.conditions[?(@.type==\"Progressing\")].reason}",
        );
        (r == "DeploymentPaused").then_some(()).ok_or(r)
    });
    c.kubectl(&["set", "image", "deployment/app", "main=nginx:2.0"]);
    c.kubectl(&["scale", "deployment/app", "--replicas=4"]);
    wait_ready_pods(&c, "app=app", 4);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(replica_sets_of(&c, "app").len(), 1);
    assert_eq!(
        images(&live_pods(&c, "app=app")),
        BTreeSet::from(["nginx:1.0".to_owned()])
    );

    c.kubectl(&["rollout", "resume", "deployment/app"]);
    rollout_status(&c, "app");
    let pods = wait_ready_pods(&c, "app=app", 4);
    assert_eq!(images(&pods), BTreeSet::from(["nginx:2.0".to_owned()]));

    // Restart: a new replica set with the restartedAt annotation.
    c.kubectl(&["rollout", "restart", "deployment/app"]);
    rollout_status(&c, "app");
    let pods = wait_ready_pods(&c, "app=app", 4);
    assert!(
        pods.iter()
            .all(|p| !p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_null())
    );
    // revisionHistoryLimit 1: of the two old replica sets only the newest is kept.
    eventually("old replica sets cleaned up", WAIT, || {
        let rss = replica_sets_of(&c, "app");
        (rss.len() == 2).then_some(()).ok_or(format!("{rss:?}"))
    });
    let revisions: Vec<String> = replica_sets_of(&c, "app")
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(revisions, ["2", "3"]);

    c.kubectl(&["scale", "deployment/app", "--replicas=0"]);
    wait_ready_pods(&c, "app=app", 0);
    eventually("zero replicas", WAIT, || {
        let s = jsonpath(
            &c,
            &["deploy", "app"],
            "{.status.replicas}|{.status.availableReplicas}|{.status.observedGeneration}",
        );
        (s.starts_with("||")).then_some(()).ok_or(s)
    });
    c.kubectl(&["scale", "deployment/app", "--replicas=2"]);
    rollout_status(&c, "app");
    wait_ready_pods(&c, "app=app", 2);

    // Deleting the deployment (background) takes its replica sets and pods.
    c.kubectl(&["delete", "deployment", "app"]);
    eventually("replica sets collected", WAIT, || {
        let rss = replica_sets_of(&c, "app");
        rss.is_empty().then_some(()).ok_or(format!("{rss:?}"))
    });
    wait_ready_pods(&c, "app=app", 0);
}

#[test]
fn recreate_stops_every_old_pod_before_starting_new_ones() {
    let Some((c, _kubelet)) = cluster() else {
        return;
    };
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&deployment("batch", 3, "nginx:1.0", "{type: Recreate}")),
    );
    rollout_status(&c, "batch");
    wait_ready_pods(&c, "app=batch", 3);
    let sampler = Sampler::start(&c, "app=batch", |pods| {
        let seen = images(pods);
        if seen.len() > 1 {
            return Err(format!("old and new together: {seen:?}"));
        }
        Ok(())
    });
    c.kubectl(&["set", "image", "deployment/batch", "main=nginx:2.0"]);
    rollout_status(&c, "batch");
    let pods = wait_ready_pods(&c, "app=batch", 3);
    let (samples, breaches) = sampler.finish();
    assert!(samples > 2, "only {samples} states seen");
    assert!(breaches.is_empty(), "{breaches:?}");
    assert_eq!(images(&pods), BTreeSet::from(["nginx:2.0".to_owned()]));
    let describe = c.kubectl(&["describe", "deployment", "batch"]);
    assert!(
        describe
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["StrategyType:", "Recreate"]),
        "{describe}"
    );
    assert!(
        describe.contains("Scaled down replica set batch-"),
        "{describe}"
    );
}

#[test]
fn a_stuck_rollout_misses_its_progress_deadline() {
    let Some((c, _kubelet)) = cluster() else {
        return;
    };
    let manifest = deployment("stuck", 2, &format!("example.com/{BROKEN}:1"), SURGE_ONLY).replace(
        "spec:\n  replicas",
        "spec:\n  progressDeadlineSeconds: 3\n  replicas",
    );
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&manifest));
    let out = c.kubectl_raw(
        &["rollout", "status", "deployment/stuck", "--timeout=60s"],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("deployment \"stuck\" exceeded its progress deadline"),
        "{stderr}"
    );
    let cond = jsonpath(
        &c,
        &["deploy", "stuck"],
        "{.status.conditions[?(@.type==\"Progressing\")].status}/{.status.conditions[?(@.type==\"Progressing\")].reason}",
    );
    assert_eq!(cond, "False/ProgressDeadlineExceeded");
    let available = jsonpath(
        &c,
        &["deploy", "stuck"],
        "{.status.conditions[?(@.type==\"Available\")].reason}|{.status.unavailableReplicas}",
    );
    assert_eq!(available, "MinimumReplicasUnavailable|2");
}
