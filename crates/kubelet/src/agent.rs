//! Runs many nodes in one process: registers them, follows their Node objects (pod CIDRs),
//! starts the heartbeat task, and hands each pod bound to one of them to a pod worker.
//!
//! What the nodes share, so thousands fit in one process: one client, one watch of nodes,
//! one watch of scheduled pods (filtered by node name here), one heartbeat task spreading
//! Lease renewals over the renew interval, and one bound on concurrent API requests.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::chrono::Utc;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use rkube_controllers::Stop;
use rkube_controllers::informer::{Change, Informer};
use rkube_scheduler::node_info::NodeInfo;
use rkube_scheduler::pod_info::PodInfo;
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use crate::admission::Rejection;
use crate::node::{self, Capacity, NodeConfig, Pressure, SystemInfo};
use crate::pod_worker::PodWorker;
use crate::runtime::Runtime;
use crate::simulated::SimulatedRuntime;
use crate::start_gate::StartGate;

/// The kubelet's timing and limits (kube's flag names in the comments).
#[derive(Clone, Debug)]
pub struct Options {
    /// Lease duration (`--node-lease-duration-seconds`, 40 s); renewed every quarter of it.
    pub lease_duration: Duration,
    /// How often each node's status is checked and posted if changed
    /// (`--node-status-update-frequency`, 10 s).
    pub status_update_frequency: Duration,
    /// How often an unchanged status is posted anyway (`--node-status-report-frequency`,
    /// 5 min).
    pub status_report_frequency: Duration,
    /// Concurrent API writes across all nodes and pods of this process.
    pub max_concurrent_writes: usize,
    /// Record kubelet's events about pods (Pulled, Created, Started, Killing, BackOff).
    pub record_events: bool,
    /// Cluster DNS and the host's resolver, for pods' resolv.conf (real nodes); `None`:
    /// the runtime's default.
    pub dns: Option<crate::dns::DnsSettings>,
    /// Where pods' volumes are set up, `DATA_DIR/agent/pods` (real nodes). `None`: hollow
    /// nodes, whose containers get no volumes and only their plain `value` variables.
    pub pods_dir: Option<std::path::PathBuf>,
    /// How often a pod's configMap, secret, downwardAPI and projected volumes are brought
    /// up to date (`--sync-frequency`, 1 min).
    pub sync_frequency: Duration,
    /// The directory of static pod manifests (`--pod-manifest-path`; real nodes only).
    pub static_pod_path: Option<std::path::PathBuf>,
    /// How often that directory is read (`--file-check-frequency`, 20 s).
    pub file_check_frequency: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(40),
            status_update_frequency: Duration::from_secs(10),
            status_report_frequency: Duration::from_secs(300),
            max_concurrent_writes: 64,
            record_events: true,
            dns: None,
            pods_dir: None,
            sync_frequency: Duration::from_secs(60),
            static_pod_path: None,
            file_check_frequency: Duration::from_secs(20),
        }
    }
}

/// One node to run: what it is and its runtime.
pub struct NodeSetup {
    pub config: NodeConfig,
    pub runtime: Arc<dyn Runtime>,
}

/// `count` hollow nodes named `PREFIX-0`..: internal addresses counted up from
/// `first_ip`, the host's kernel and OS, and a simulated runtime each.
pub fn hollow_nodes(
    prefix: &str,
    count: usize,
    capacity: &Capacity,
    first_ip: Ipv4Addr,
    stop_delay_cap: Duration,
) -> Vec<NodeSetup> {
    let boot = format!("{:x}", rand::random::<u64>());
    (0..count)
        .map(|i| {
            let name = format!("{prefix}-{i}");
            let offset = u32::try_from(i).unwrap_or(u32::MAX);
            let ip = Ipv4Addr::from(u32::from(first_ip).wrapping_add(offset));
            let runtime = SimulatedRuntime::new(stop_delay_cap);
            let version = runtime.version();
            NodeSetup {
                config: NodeConfig {
                    system: SystemInfo::of_host(&name, &boot),
                    name,
                    internal_ip: IpAddr::V4(ip),
                    capacity: capacity.clone(),
                    container_runtime_version: format!("{}://{}", version.name, version.version),
                    kubelet_port: node::KUBELET_PORT,
                    eviction: None,
                },
                runtime: Arc::new(runtime),
            }
        })
        .collect()
}

/// What everything in the agent shares.
pub(crate) struct Shared {
    pub client: Client,
    pub options: Options,
    /// Bounds concurrent API writes.
    pub writes: Semaphore,
    /// Where the agent's events are written.
    pub events: rkube_controllers::events::EventSink,
    pub stop: Stop,
    /// Where the objects pods refer to (ConfigMaps, Secrets, claims, tokens) are read.
    pub objects: Arc<dyn crate::objects::ObjectSource>,
}

/// One node's state, shared by the heartbeat, the node watch and its pod workers.
pub(crate) struct NodeHandle {
    pub config: NodeConfig,
    pub runtime: Arc<dyn Runtime>,
    /// The runtime's name, the scheme of container ids.
    pub runtime_name: String,
    /// Whether the runtime has its pod network (the node got its pod CIDR).
    pub network: watch::Sender<bool>,
    /// The Node's uid once registered (owner of the Lease); `None` before, or once deleted.
    pub uid: Mutex<Option<String>>,
    /// The Lease as last written.
    pub lease: Mutex<Option<Lease>>,
    /// When the status was last posted.
    pub last_report: Mutex<Option<Instant>>,
    /// A heartbeat for this node is under way.
    pub busy: AtomicBool,
    /// Something changed: post the status at the next tick, not at the node's turn.
    pub dirty: AtomicBool,
    /// The "Starting kubelet." event was recorded.
    pub announced: AtomicBool,
    /// Turns for new pods to make their sandbox and start their containers.
    pub starts: StartGate,
    /// The pressures the last status reported, which new pods are admitted under.
    pub pressure: Mutex<Pressure>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NodeHandle {
    fn new(setup: NodeSetup) -> Self {
        let runtime_name = setup.runtime.version().name;
        let ready = setup.runtime.network_ready();
        Self {
            config: setup.config,
            runtime: setup.runtime,
            runtime_name,
            network: watch::Sender::new(ready),
            uid: Mutex::new(None),
            lease: Mutex::new(None),
            last_report: Mutex::new(None),
            busy: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            announced: AtomicBool::new(false),
            starts: StartGate::for_this_machine(),
            pressure: Mutex::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn uid(&self) -> Option<String> {
        lock(&self.uid).clone()
    }
}

/// Many nodes, run together until stopped.
pub struct Agent {
    shared: Arc<Shared>,
    nodes: Arc<Vec<Arc<NodeHandle>>>,
    by_name: Arc<HashMap<String, Arc<NodeHandle>>>,
}

impl Agent {
    pub fn new(client: Client, nodes: Vec<NodeSetup>, options: Options, stop: Stop) -> Self {
        let nodes: Vec<Arc<NodeHandle>> = nodes
            .into_iter()
            .map(|n| Arc::new(NodeHandle::new(n)))
            .collect();
        let by_name = nodes
            .iter()
            .map(|n| (n.name().to_owned(), n.clone()))
            .collect();
        Self {
            shared: Arc::new(Shared {
                objects: Arc::new(crate::objects::WatchedObjects::start(
                    client.clone(),
                    stop.clone(),
                )),
                events: rkube_controllers::events::EventSink::start(client.clone()),
                client,
                writes: Semaphore::new(options.max_concurrent_writes.max(1)),
                options,
                stop,
            }),
            nodes: Arc::new(nodes),
            by_name: Arc::new(by_name),
        }
    }

    /// Registers the nodes and runs them until the stop signal. Objects are left as they
    /// are on the way out (a restarted agent takes them over); the controller manager marks
    /// the nodes Unknown when their Leases run out.
    pub async fn run(self) {
        let client = self.shared.client.clone();
        let stop = self.shared.stop.clone();
        // One node: watch only it and its pods. Many: one watch for all, filtered here.
        let (node_fields, pod_fields) = match self.nodes.as_slice() {
            [one] => (
                format!("metadata.name={}", one.name()),
                format!("spec.nodeName={}", one.name()),
            ),
            _ => (String::new(), "spec.nodeName!=".to_owned()),
        };
        let node_config = if node_fields.is_empty() {
            watcher::Config::default()
        } else {
            watcher::Config::default().fields(&node_fields)
        };
        let nodes_seen =
            Informer::<Node>::start_with(Api::all(client.clone()), node_config, stop.clone());
        let pods = Informer::<Pod>::start_with(
            Api::all(client.clone()),
            watcher::Config::default().fields(&pod_fields),
            stop.clone(),
        );
        tokio::spawn(follow_nodes(
            self.shared.clone(),
            self.by_name.clone(),
            nodes_seen.clone(),
        ));
        tokio::spawn(crate::heartbeat::run(
            self.shared.clone(),
            self.nodes.clone(),
            nodes_seen.clone(),
        ));
        tokio::spawn(remove_orphans(
            self.shared.clone(),
            self.nodes.clone(),
            pods.clone(),
        ));
        if let (Some(dir), [node]) = (&self.shared.options.static_pod_path, self.nodes.as_slice()) {
            tokio::spawn(crate::static_pods::run(
                self.shared.clone(),
                node.clone(),
                dir.clone(),
                self.shared.options.file_check_frequency,
                pods.clone(),
            ));
        }
        tokio::spawn(dispatch_pods(
            self.shared.clone(),
            self.by_name.clone(),
            pods,
            nodes_seen,
        ));
        let registering = {
            let shared = self.shared.clone();
            let limit = shared.options.max_concurrent_writes.max(1);
            futures_util::stream::iter(self.nodes.iter().cloned()).for_each_concurrent(
                limit,
                move |node| {
                    let shared = shared.clone();
                    async move { register(&shared, &node).await }
                },
            )
        };
        tokio::select! {
            () = registering => {
                tracing::info!(nodes = self.nodes.len(), "nodes registered");
                stop.stopped().await;
            }
            () = stop.stopped() => {}
        }
    }
}

/// kube's `registerWithAPIServer`: create the Node, or take over the one that exists
/// (adding the default labels it lacks); retried with back-off until it works.
async fn register(shared: &Shared, node: &NodeHandle) {
    let api: Api<Node> = Api::all(shared.client.clone());
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        let body = node::registration(&node.config, *node.network.borrow(), Utc::now());
        let result = {
            let _permit = shared.writes.acquire().await;
            match api.create(&PostParams::default(), &body).await {
                Err(kube::Error::Api(e)) if e.code == 409 => take_over(&api, node).await,
                other => other,
            }
        };
        match result {
            Ok(registered) => {
                *lock(&node.uid) = registered.metadata.uid.clone();
                // Unchanged status is reported at a random point of the report period, so
                // thousands of nodes started together do not report together.
                let spread = shared
                    .options
                    .status_report_frequency
                    .mul_f64(rand::random::<f64>());
                *lock(&node.last_report) = Instant::now().checked_sub(spread);
                node.dirty.store(true, Ordering::Release);
                tracing::debug!(node = node.name(), "registered");
                return;
            }
            Err(err) => {
                attempts += 1;
                if attempts <= 3 || attempts.is_multiple_of(20) {
                    tracing::warn!(node = node.name(), "unable to register node: {err}");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.stop.stopped() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(7));
    }
}

/// The node exists already (an agent restart): use it, adding missing default labels.
async fn take_over(api: &Api<Node>, node: &NodeHandle) -> Result<Node, kube::Error> {
    let existing = api.get(node.name()).await?;
    let labels = existing.metadata.labels.clone().unwrap_or_default();
    let missing: serde_json::Map<String, serde_json::Value> = node::default_labels(node.name())
        .into_iter()
        .filter(|(k, v)| labels.get(k) != Some(v))
        .map(|(k, v)| (k, json!(v)))
        .collect();
    if missing.is_empty() {
        return Ok(existing);
    }
    api.patch(
        node.name(),
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": missing}})),
    )
    .await
}

/// Follows our Node objects: a pod CIDR configures the runtime's network (and so makes the
/// node Ready); a deleted node stops heartbeating (kube's kubelet does not re-register).
async fn follow_nodes(
    shared: Arc<Shared>,
    by_name: Arc<HashMap<String, Arc<NodeHandle>>>,
    nodes: Informer<Node>,
) {
    let mut changes = nodes.subscribe();
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            () = shared.stop.stopped() => None,
        };
        let Some(change) = change else { return };
        let object = change.object();
        let Some(handle) = by_name.get(&object.name_any()) else {
            continue;
        };
        match change.as_ref() {
            Change::Deleted(_) => {
                if lock(&handle.uid).take().is_some() {
                    tracing::warn!(
                        node = handle.name(),
                        "node object deleted: no more heartbeats until the agent restarts"
                    );
                }
            }
            Change::Added(node) | Change::Updated(_, node) => {
                let cidr = node.spec.as_ref().and_then(|s| s.pod_cidr.clone());
                if let Some(cidr) = cidr.filter(|_| !*handle.network.borrow()) {
                    match handle.runtime.update_pod_cidr(&cidr).await {
                        Ok(()) if handle.runtime.network_ready() => {
                            tracing::debug!(node = handle.name(), %cidr, "pod network ready");
                            handle.network.send_replace(true);
                            handle.dirty.store(true, Ordering::Release);
                        }
                        Ok(()) => {}
                        Err(err) => {
                            tracing::warn!(node = handle.name(), %cidr, "unusable pod CIDR: {err}")
                        }
                    }
                }
            }
        }
    }
}

/// Once the pods bound to the nodes are known, removes the sandboxes the runtimes still have
/// for pods that are gone (deleted while the agent was down), as kube's kubelet removes
/// orphaned pods at start; and the volume directories of such pods.
async fn remove_orphans(
    shared: Arc<Shared>,
    nodes: Arc<Vec<Arc<NodeHandle>>>,
    pods: Informer<Pod>,
) {
    pods.synced().await;
    // Listed before the pods: a worker makes its pod's directory only after its pod is in
    // the cache, so every directory of a pod still there is in the list below.
    let dirs: Vec<std::fs::DirEntry> = match &shared.options.pods_dir {
        Some(pods_dir) => std::fs::read_dir(pods_dir)
            .into_iter()
            .flatten()
            .flatten()
            .collect(),
        None => Vec::new(),
    };
    let known: std::collections::HashSet<String> = pods
        .list()
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    {
        for dir in dirs
            .iter()
            .filter(|d| !known.contains(&*d.file_name().to_string_lossy()))
        {
            tracing::info!(dir = %dir.path().display(), "removing the volumes of a pod that is gone");
            if let Err(err) = crate::volumes::cleanup(&dir.path()).await {
                tracing::warn!("{err}");
            }
        }
    }
    for node in nodes.iter() {
        let sandboxes = match node.runtime.list_pod_uids().await {
            Ok(sandboxes) => sandboxes,
            Err(err) => {
                tracing::warn!(
                    node = node.name(),
                    "cannot list the runtime's sandboxes: {err}"
                );
                continue;
            }
        };
        for (sandbox, uid) in sandboxes
            .into_iter()
            .filter(|(_, uid)| !known.contains(uid))
        {
            tracing::info!(node = node.name(), %sandbox, pod_uid = %uid, "removing the sandbox of a pod that is gone");
            remove_sandbox(node, &sandbox).await;
        }
    }
}

/// Stops a sandbox at once and removes it.
async fn remove_sandbox(node: &NodeHandle, sandbox: &str) {
    if let Err(err) = node.runtime.stop_pod_sandbox(sandbox, Duration::ZERO).await {
        tracing::warn!(%sandbox, "stopping a sandbox: {err}");
    }
    if let Err(err) = node.runtime.remove_pod_sandbox(sandbox).await {
        tracing::warn!(%sandbox, "removing a sandbox: {err}");
    }
}

/// Removes what a pod the agent does not run left on the node: its sandboxes and its
/// volumes.
async fn remove_remains(shared: &Shared, node: &NodeHandle, uid: &str) {
    match node.runtime.list_pod_uids().await {
        Ok(sandboxes) => {
            for (sandbox, _) in sandboxes.iter().filter(|(_, of)| of == uid) {
                remove_sandbox(node, sandbox).await;
            }
        }
        Err(err) => tracing::warn!(
            node = node.name(),
            "cannot list the runtime's sandboxes: {err}"
        ),
    }
    if let Some(pods_dir) = &shared.options.pods_dir
        && let Err(err) = crate::volumes::cleanup(&pods_dir.join(uid)).await
    {
        tracing::warn!("{err}");
    }
}

/// Hands each pod bound to one of our nodes to its worker (one per pod uid) once the node
/// admits it; a pod gone from the API is forgotten.
async fn dispatch_pods(
    shared: Arc<Shared>,
    by_name: Arc<HashMap<String, Arc<NodeHandle>>>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
) {
    let mut changes = pods.subscribe();
    let mut workers: HashMap<String, watch::Sender<Option<Arc<Pod>>>> = HashMap::new();
    let mut admitted = Admitted::default();
    // Pods the node did not admit: failed, never run.
    let mut rejected: HashSet<String> = HashSet::new();
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            () = shared.stop.stopped() => None,
        };
        let Some(change) = change else { return };
        let pod = change.object();
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| by_name.get(n))
        else {
            continue;
        };
        let Some(uid) = pod.metadata.uid.clone() else {
            continue;
        };
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        match change.as_ref() {
            Change::Deleted(_) => {
                rejected.remove(&uid);
                admitted.forget(node.name(), &uid);
                if let Some(worker) = workers.remove(&uid) {
                    worker.send_replace(None);
                }
            }
            Change::Added(pod) | Change::Updated(_, pod) => {
                if finished {
                    // No longer takes the node's resources.
                    admitted.forget(node.name(), &uid);
                }
                if let Some(worker) = workers.get(&uid) {
                    if worker.send(Some(pod.clone())).is_ok() {
                        continue;
                    }
                    workers.remove(&uid);
                }
                // A pod that finished before this agent started has nothing left to run.
                if finished || rejected.contains(&uid) {
                    continue;
                }
                if let Err(rejection) = admitted.admit(&shared, node, &nodes, pod).await {
                    rejected.insert(uid);
                    tokio::spawn(reject(shared.clone(), node.clone(), pod.clone(), rejection));
                    continue;
                }
                crate::stage(&uid, "seen");
                let (tx, rx) = watch::channel(Some(pod.clone()));
                let worker = PodWorker::new(shared.clone(), node.clone(), pod);
                tokio::spawn(worker.run(rx));
                workers.insert(uid, tx);
            }
        }
    }
}

/// The pods each node admitted that have not finished: what the admission of the next
/// one counts as the node's pods (kube's active pods).
#[derive(Default)]
struct Admitted {
    /// Node name to pod uid to the pod as parsed for the predicates.
    by_node: HashMap<String, HashMap<String, Arc<PodInfo>>>,
    /// Stands for the pod objects in what is kept: the predicates read only the parsed
    /// requests, ports and terms, and the informer holds the pods themselves.
    no_pod: Arc<Pod>,
}

impl Admitted {
    fn forget(&mut self, node: &str, uid: &str) {
        if let Some(pods) = self.by_node.get_mut(node) {
            pods.remove(uid);
        }
    }

    /// Admits the pod to the node, or says why not: node pressure first, then the
    /// predicates over the node as last seen (or as the agent registers it, before that).
    async fn admit(
        &mut self,
        shared: &Shared,
        node: &NodeHandle,
        nodes: &Informer<Node>,
        pod: &Arc<Pod>,
    ) -> Result<(), Rejection> {
        crate::admission::admit(pod, *lock(&node.pressure))?;
        let info = PodInfo::new(pod.clone());
        let seen = nodes.get(node.name()).unwrap_or_else(|| {
            let ready = *node.network.borrow();
            Arc::new(node::registration(&node.config, ready, Utc::now()))
        });
        let mut verdict = self.predicates(pod, &info, node.name(), &seen);
        if let Err(refusal) = &verdict
            && refusal.node_affinity_only
        {
            // The Node's labels may be newer than the watch has brought (kube's kubelet
            // reads the Node from the API then and checks again).
            let api: Api<Node> = Api::all(shared.client.clone());
            if let Ok(fresh) = api.get(node.name()).await {
                verdict = self.predicates(pod, &info, node.name(), &fresh);
            }
        }
        verdict.map_err(|refusal| refusal.rejection)?;
        let kept = PodInfo {
            pod: self.no_pod.clone(),
            ..info
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.by_node
            .entry(node.name().to_owned())
            .or_default()
            .insert(uid, Arc::new(kept));
        Ok(())
    }

    fn predicates(
        &self,
        pod: &Pod,
        info: &PodInfo,
        name: &str,
        node: &Node,
    ) -> Result<(), crate::admission::Refusal> {
        let mut node_info = NodeInfo::from_node(node);
        for other in self.by_node.get(name).into_iter().flat_map(|p| p.values()) {
            node_info.add_pod(other.clone());
        }
        crate::admission::predicates(pod, info, &node_info)
    }
}

/// How many times a rejected pod's status is written before the agent gives up on it.
const REJECT_ATTEMPTS: usize = 10;

/// Fails a pod the node did not admit (kube's `rejectPod`): a warning event, and the
/// status's phase `Failed` with the reason and `Pod was rejected: ` and the message.
async fn reject(shared: Arc<Shared>, node: Arc<NodeHandle>, pod: Arc<Pod>, rejection: Rejection) {
    let key = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
    tracing::info!(pod = %key, "pod not admitted: {}", rejection.message);
    crate::events::record(
        &shared,
        node.name(),
        crate::events::pod_reference(&pod, None),
        "Warning",
        &rejection.reason,
        rejection.message.clone(),
    );
    let api: Api<Pod> =
        Api::namespaced(shared.client.clone(), &pod.namespace().unwrap_or_default());
    let body = json!({
        "metadata": {"uid": pod.metadata.uid},
        "status": {
            "phase": "Failed",
            "reason": rejection.reason,
            "message": format!("Pod was rejected: {}", rejection.message),
        },
    });
    // A pod that ran before the agent restarted, and that the node no longer admits, is
    // stopped (kube's kubelet kills a pod it rejects).
    if pod.status.as_ref().is_some_and(|s| s.start_time.is_some()) {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        remove_remains(&shared, &node, uid).await;
    }
    for _ in 0..REJECT_ATTEMPTS {
        let result = {
            let _permit = shared.writes.acquire().await;
            api.patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(&body),
            )
            .await
        };
        match result {
            Ok(_) => return,
            // Gone, or refused as it is: nothing to retry.
            Err(kube::Error::Api(e)) if matches!(e.code, 400 | 404 | 409 | 422) => return,
            Err(err) => {
                tracing::debug!(pod = %key, "failed to write the rejected pod's status: {err}");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shared.stop.stopped() => return,
                }
            }
        }
    }
}
