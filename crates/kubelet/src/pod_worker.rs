//! One task per pod, kube's pod worker and status manager in one: it waits for the node's
//! pod network, runs the sandbox, the init containers in order, then the containers, restarts
//! them by the restart policy with kube's crash-loop back-off, marks them started and ready
//! by their probes' initial delays, and writes the pod's status through `pods/status`.
//!
//! A pod marked for deletion is stopped (its containers get the grace period, as the
//! runtime honours it), its final status written, and it is deleted with a grace period of
//! 0 and its uid as precondition, as kube's kubelet finishes a graceful deletion. A pod the
//! API no longer has is stopped at once and forgotten.
//!
//! Status writes are coalesced: the worker computes the status after handling all that
//! happened and writes it only when it differs from what it last wrote, or when someone
//! else changed the pod's status since (kube's status manager compares with the API's copy).
//! Each write is a strategic merge patch carrying the pod's uid, like kube's
//! `PatchPodStatus`, so the conditions of other writers are kept.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, LifecycleHandler, ObjectReference, Pod, PodSpec, PodStatus, Probe,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::chrono::{DateTime, Utc};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::agent::{NodeHandle, Shared};
use crate::container_spec;
use crate::envvars::{self, EnvContext};
use crate::events::{self, NORMAL, WARNING};
use crate::lifecycle;
use crate::pod_status::{
    self, ContainerRecord, FAILED, Instance, PodView, SUCCEEDED, Transitions, Waiting, go_duration,
    is_sidecar, restart_policy,
};
use crate::prober::{self, ProbeEvent};
use crate::runtime::{
    ContainerConfig, Exit, FoundContainer, Mount, PullPolicy, Runtime, RuntimeError, SandboxConfig,
};
use crate::start_gate::Turn;
use crate::volumes::{self, PodVolumes, VolumeContext};

/// kubelet's crash-loop back-off: 10 s, doubling, at most 5 min.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A container that ran this long before it exited starts its back-off afresh.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How soon a failed API call or runtime call is tried again.
const RETRY: Duration = Duration::from_secs(1);
const RUNTIME_RETRY: Duration = Duration::from_secs(10);
/// kube's volume manager retries a failed set-up after 0.5 s, doubling to about 2 min.
const VOLUME_BACKOFF: Duration = Duration::from_millis(500);
const MAX_VOLUME_BACKOFF: Duration = Duration::from_secs(122);
/// The longest a postStart hook may run before the container is killed.
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy)]
enum Kind {
    Init,
    Regular,
}

impl Kind {
    /// The field path of a container in events.
    fn field_path(self, name: &str) -> String {
        match self {
            Kind::Init => format!("spec.initContainers{{{name}}}"),
            Kind::Regular => format!("spec.containers{{{name}}}"),
        }
    }
}

/// An image whose pull failed: not pulled again before `until` (kube's image back-off,
/// 10 s doubling to 5 min, per pod and image).
struct PullBackoff {
    backoff: Duration,
    until: DateTime<Utc>,
    message: String,
}

/// What the worker last wrote, and what the API answered, as fingerprints: a pod's status
/// is a few KB, and only equality is ever asked of them.
struct Written {
    desired: Option<u64>,
    resource_version: Option<u64>,
    response: Option<u64>,
}

/// A fingerprint of a status: equal statuses have equal ones (their JSON is the same bytes:
/// fields in declaration order, maps sorted), different ones differ but for a 2^-64 chance.
fn fingerprint(status: Option<&PodStatus>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let json = serde_json::to_vec(status?).ok()?;
    let mut hasher = std::hash::DefaultHasher::new();
    json.hash(&mut hasher);
    Some(hasher.finish())
}

pub(crate) struct PodWorker {
    shared: Arc<Shared>,
    node: Arc<NodeHandle>,
    namespace: String,
    name: String,
    uid: String,
    /// The pod, as events name it.
    reference: ObjectReference,
    sandbox: Option<String>,
    /// What the sandbox is made from (containers are created with it too).
    sandbox_config: SandboxConfig,
    /// The runtime was asked for a sandbox it still runs for this pod (agent restarts).
    looked_for_sandbox: bool,
    /// Images whose pulls failed.
    pulls: HashMap<String, PullBackoff>,
    /// Images the runtime had when the sandbox was made, each kept for the first container
    /// start that needs it (later starts ask again).
    present_images: HashSet<String>,
    /// The pod's turn to start, from its new sandbox until its last container started,
    /// or the pass ends (`start_gate`).
    turn: Option<Turn>,
    /// The pod as last seen.
    pod: Arc<Pod>,
    pod_ip: Option<IpAddr>,
    /// The address the pod had before this agent started (kept if the pool allows).
    previous_ip: Option<IpAddr>,
    init: Vec<ContainerRecord>,
    containers: Vec<ContainerRecord>,
    start_time: DateTime<Utc>,
    transitions: Transitions,
    /// Nothing more will run: the pod reached Succeeded or Failed, or is being deleted.
    finished: bool,
    /// The kubelet failed the pod (its active deadline passed): the reason and message of
    /// its status, whose phase is then Failed whatever its containers did.
    failure: Option<(&'static str, &'static str)>,
    /// Deleted and stopped (kube's podIsTerminal).
    terminal: bool,
    /// Our DELETE went through.
    deleted: bool,
    written: Option<Written>,
    /// Tasks waiting on running containers' exits, each ending with its container's raw id
    /// and exit (none if the runtime could not say).
    waiters: JoinSet<Option<(String, Exit)>>,
    /// What running containers' probers find, by raw container id: made with the first
    /// prober (most containers have no probes, and a channel is a few KB).
    probe_events: Option<mpsc::UnboundedSender<(String, ProbeEvent)>>,
    probe_rx: Option<mpsc::UnboundedReceiver<(String, ProbeEvent)>>,
    /// The prober of each running container, by raw container id.
    probers: HashMap<String, JoinHandle<()>>,
    /// The pod's volumes, once set up (real nodes only).
    volumes: Option<PodVolumes>,
    /// The sandbox was made while the volumes were set up, and they are not there yet:
    /// kube's kubelet would not have made it, so the status shows neither it nor its IP.
    sandbox_ahead_of_volumes: bool,
    /// After a failed volume set-up: when it is tried again, and the back-off.
    volume_retry: Option<(DateTime<Utc>, Duration)>,
    /// When the configMap, secret, downwardAPI and projected volumes are next refreshed.
    next_volume_sync: Option<DateTime<Utc>>,
}

/// The images of the containers a new pod starts first (its first init container, else
/// its containers) that their pull policy lets the kubelet find rather than pull.
fn first_images(spec: &PodSpec) -> Vec<String> {
    let first = match spec.init_containers.as_deref() {
        Some([first, ..]) => std::slice::from_ref(first),
        _ => &spec.containers[..],
    };
    let mut images: Vec<String> = first
        .iter()
        .filter_map(|c| {
            let image = c.image.as_deref().filter(|i| !i.is_empty())?;
            let policy = PullPolicy::of(c.image_pull_policy.as_deref(), image);
            (policy != PullPolicy::Always).then(|| image.to_owned())
        })
        .collect();
    images.sort_unstable();
    images.dedup();
    images
}

/// Those of `images` the runtime has (one it could not answer for is asked again later).
async fn images_present(runtime: &dyn Runtime, images: Vec<String>) -> HashSet<String> {
    let mut present = HashSet::new();
    for image in images {
        if let Ok(true) = runtime.image_present(&image).await {
            present.insert(image);
        }
    }
    present
}

fn records(
    names: &[Container],
    status: Option<&Vec<k8s_openapi::api::core::v1::ContainerStatus>>,
) -> Vec<ContainerRecord> {
    names
        .iter()
        .map(|c| {
            let mut record = ContainerRecord::new(&c.name);
            // A restarted agent keeps counting restarts.
            record.restart_count = status
                .into_iter()
                .flatten()
                .find(|s| s.name == c.name)
                .map_or(0, |s| s.restart_count);
            record
        })
        .collect()
}

fn resource_version(pod: &Pod) -> Option<u64> {
    pod.metadata.resource_version.as_deref()?.parse().ok()
}

fn delay_of(probe: Option<&Probe>) -> Option<k8s_openapi::chrono::Duration> {
    probe.map(|p| {
        k8s_openapi::chrono::Duration::seconds(i64::from(
            p.initial_delay_seconds.unwrap_or(0).max(0),
        ))
    })
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + k8s_openapi::chrono::Duration::from_std(d).unwrap_or_default()
}

/// Marks a running container started and ready by its probes' initial delays; returns when
/// that changes next.
fn probe(
    record: &mut ContainerRecord,
    spec: &Container,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let started_at = match &record.current {
        Some(Instance {
            exit: None,
            started_at,
            ..
        }) => *started_at,
        _ => {
            record.started = false;
            record.ready = false;
            return None;
        }
    };
    let started = started_at + delay_of(spec.startup_probe.as_ref()).unwrap_or_default();
    let ready = match delay_of(spec.readiness_probe.as_ref()) {
        Some(delay) => started.max(started_at + delay),
        None => started,
    };
    record.started = now >= started;
    record.ready = now >= ready;
    [started, ready].into_iter().filter(|t| *t > now).min()
}

/// The next event of the pod's probers; never, while no prober ran.
async fn next_probe_event(
    rx: &mut Option<mpsc::UnboundedReceiver<(String, ProbeEvent)>>,
) -> Option<(String, ProbeEvent)> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl PodWorker {
    pub(crate) fn new(shared: Arc<Shared>, node: Arc<NodeHandle>, pod: &Pod) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        Self {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            reference: events::pod_reference(pod, None),
            sandbox: None,
            sandbox_config: SandboxConfig {
                dns: shared
                    .options
                    .dns
                    .as_ref()
                    .map(|settings| crate::dns::pod_dns(pod, settings)),
                ..container_spec::sandbox_config(pod)
            },
            looked_for_sandbox: false,
            pulls: HashMap::new(),
            present_images: HashSet::new(),
            turn: None,
            pod: Arc::new(pod.clone()),
            pod_ip: None,
            previous_ip: status
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|ip| ip.parse().ok()),
            init: records(
                spec.init_containers.as_deref().unwrap_or_default(),
                status.and_then(|s| s.init_container_statuses.as_ref()),
            ),
            containers: records(
                &spec.containers,
                status.and_then(|s| s.container_statuses.as_ref()),
            ),
            start_time: status
                .and_then(|s| s.start_time.as_ref())
                .map_or_else(Utc::now, |t| t.0),
            transitions: Transitions::from_pod(pod),
            finished: false,
            failure: None,
            terminal: false,
            deleted: false,
            written: None,
            waiters: JoinSet::new(),
            probe_events: None,
            probe_rx: None,
            probers: HashMap::new(),
            volumes: None,
            volume_retry: None,
            sandbox_ahead_of_volumes: false,
            next_volume_sync: None,
            shared,
            node,
        }
    }

    /// Works on the pod until it is gone from the API or the agent stops.
    pub(crate) async fn run(mut self, mut pod: watch::Receiver<Option<Arc<Pod>>>) {
        let mut network = self.node.network.subscribe();
        let stop = self.shared.stop.clone();
        loop {
            // Marked seen before the sync, so a change during it wakes the select below.
            let Some(current) = pod.borrow_and_update().clone() else {
                break;
            };
            network.borrow_and_update();
            self.pod = current.clone();
            // Boxed: the sync's state lives only while it runs, not in every resting worker
            // (the worker's future was ~11 KB a pod with it inline).
            let wake = Box::pin(self.sync(&current)).await;
            let needs_network = self.sandbox.is_none() && !self.finished;
            let deadline = wake.map(|at| {
                let wait = (at - Utc::now()).to_std().unwrap_or_default();
                tokio::time::Instant::now() + wait
            });
            tokio::select! {
                () = stop.stopped() => return,
                changed = pod.changed() => {
                    // The dispatcher is gone: the agent is stopping (a deleted pod is a
                    // `None`, above). What runs stays, for the next agent to adopt.
                    if changed.is_err() {
                        return;
                    }
                }
                Some(Ok(Some((id, exit)))) = self.waiters.join_next() => self.record_exit(&id, exit),
                Some((id, event)) = next_probe_event(&mut self.probe_rx) => {
                    Box::pin(self.on_probe(&current, &id, event)).await;
                }
                Ok(()) = network.changed(), if needs_network => {}
                () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {}
            }
        }
        // Gone from the API: stop what runs, give the address back, drop its logs.
        Box::pin(async {
            self.stop_sandbox(Duration::ZERO).await;
            self.node.runtime.forget_pod(&self.sandbox_config).await;
            self.clean_up_volumes().await;
        })
        .await;
    }

    fn records_mut(&mut self, kind: Kind) -> &mut Vec<ContainerRecord> {
        match kind {
            Kind::Init => &mut self.init,
            Kind::Regular => &mut self.containers,
        }
    }

    /// One pass over the pod; returns when the next pass is due, if something is timed.
    async fn sync(&mut self, pod: &Pod) -> Option<DateTime<Utc>> {
        if self.deleted {
            return None;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return self.terminate(pod).await;
        }
        let now = Utc::now();
        let mut wake = None;
        if !self.finished {
            wake = self.past_active_deadline(pod, now).await;
        }
        if !self.finished {
            wake = later(wake, self.advance(pod, now).await);
            self.turn = None;
        }
        if let Err(retry) = self.write_status(pod, Utc::now()).await {
            wake = later(wake, Some(retry));
        }
        wake
    }

    /// kube's active deadline handler: a pod whose `activeDeadlineSeconds` have passed since
    /// its start is failed (`DeadlineExceeded`) and its containers are stopped with its
    /// grace period; before that, returns when it passes (the field may be shortened).
    async fn past_active_deadline(
        &mut self,
        pod: &Pod,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let spec = pod.spec.as_ref()?;
        let seconds = spec.active_deadline_seconds?;
        let deadline = self.start_time + k8s_openapi::chrono::Duration::seconds(seconds);
        if now < deadline {
            return Some(deadline);
        }
        const REASON: &str = "DeadlineExceeded";
        const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";
        self.event(None, NORMAL, REASON, MESSAGE.to_owned());
        self.failure = Some((REASON, MESSAGE));
        self.finished = true;
        // Failed at once, as kube's status manager has it, then stopped (which may take
        // the whole grace period); the status is written again after.
        let _ = self.write_status(pod, now).await;
        let grace = Duration::from_secs(
            u64::try_from(spec.termination_grace_period_seconds.unwrap_or(30)).unwrap_or(0),
        );
        self.stop_sandbox(grace).await;
        None
    }

    /// Moves the pod's containers forward: sandbox, init containers in order, containers.
    async fn advance(&mut self, pod: &Pod, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let spec = pod.spec.clone().unwrap_or_default();
        let runtime = self.node.runtime.clone();
        if self.sandbox.is_none() && !self.looked_for_sandbox {
            match self.adopt(&spec).await {
                Ok(true) => return Some(now),
                Ok(false) => self.looked_for_sandbox = true,
                // Not knowing whether the pod runs already (the runtime is still
                // starting, or too busy to answer): a new sandbox now could run the pod
                // twice.
                Err(()) => return Some(after(now, RETRY)),
            }
        }
        // A new sandbox is made while the volumes are set up and the first containers'
        // images are looked for: none needs the others, and the sandbox is the slowest step
        // of a pod's start. kube's kubelet mounts the volumes first, so until they are there
        // the pod's status shows neither the sandbox nor its IP (`sandbox_ahead_of_volumes`).
        let host_network = spec.host_network == Some(true);
        let new_sandbox = (self.sandbox.is_none() && (host_network || runtime.network_ready()))
            .then(|| SandboxConfig {
                previous_ip: self.previous_ip,
                ..self.sandbox_config.clone()
            });
        let (volumes, made) = match &new_sandbox {
            Some(config) => {
                let images = first_images(&spec);
                // The volumes are set up in the pod's turn too: each one mounted lengthens
                // the node's mount table, which every runc call of every start reads.
                self.turn = Some(self.node.starts.turn().await);
                crate::stage(&self.uid, "turn");
                let now = Utc::now();
                let (volumes, made, present) = tokio::join!(
                    self.sync_volumes(pod, now),
                    runtime.run_pod_sandbox(config),
                    images_present(&*runtime, images),
                );
                if made.is_ok() {
                    self.present_images = present;
                }
                (volumes, Some(made))
            }
            None => (self.sync_volumes(pod, now).await, None),
        };
        // The turn and the sandbox took time: what follows is timed from their end.
        let now = if new_sandbox.is_some() {
            Utc::now()
        } else {
            now
        };
        match made {
            Some(Ok(sandbox)) => {
                crate::stage(&self.uid, "sandbox");
                self.pod_ip = sandbox.ip.or(Some(self.node.config.internal_ip));
                self.sandbox = Some(sandbox.id);
                self.sandbox_ahead_of_volumes = volumes.is_err();
            }
            Some(Err(err)) => {
                tracing::debug!(pod = %self.key(), "failed to create pod sandbox: {err}");
                self.event(
                    None,
                    WARNING,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {err}"),
                );
                let retry = after(now, RUNTIME_RETRY);
                return Some(volumes.err().map_or(retry, |at| at.min(retry)));
            }
            None => {}
        }
        let volumes_due = match volumes {
            Ok(due) => {
                self.sandbox_ahead_of_volumes = false;
                due
            }
            // Nothing starts before its volumes are there.
            Err(retry) => return Some(retry),
        };
        let Some(sandbox) = self.sandbox.clone() else {
            // The network watch wakes the worker.
            return None;
        };
        let grace = Duration::from_secs(
            u64::try_from(spec.termination_grace_period_seconds.unwrap_or(30)).unwrap_or(0),
        );
        let policy = restart_policy(&spec).to_owned();
        let mut wake = None;
        let mut initialized = true;
        for (i, container) in spec.init_containers.iter().flatten().enumerate() {
            let sidecar = is_sidecar(container);
            let effective = match (sidecar, policy.as_str()) {
                (true, _) => "Always",
                (false, "Never") => "Never",
                (false, _) => "OnFailure",
            };
            let next = self
                .advance_container(Kind::Init, i, container, effective, &sandbox, grace, now)
                .await;
            wake = later(wake, next);
            let record = &self.init[i];
            let done = if sidecar {
                record.started
            } else {
                record.exit().is_some_and(|e| e.code == 0)
            };
            if !done {
                initialized = false;
                break;
            }
        }
        let ran_before = self
            .containers
            .iter()
            .any(|c| c.current.is_some() || c.last_termination.is_some());
        if initialized || ran_before {
            for (i, container) in spec.containers.iter().enumerate() {
                let next = self
                    .advance_container(Kind::Regular, i, container, &policy, &sandbox, grace, now)
                    .await;
                wake = later(wake, next);
            }
        }
        let phase = pod_status::phase(&spec, &self.init, &self.containers, false);
        if phase == SUCCEEDED || phase == FAILED {
            // Done for good: sidecars are stopped, the sandbox goes, the address is free.
            self.stop_sandbox(grace).await;
            self.finished = true;
            return None;
        }
        later(wake, volumes_due)
    }

    /// Sets up the pod's volumes (real nodes), or brings them up to date when that is due:
    /// `Ok(when)` the next refresh is due, `Err(when)` to try the set-up again (a
    /// `FailedMount` event says why, as kube's volume manager does).
    async fn sync_volumes(
        &mut self,
        pod: &Pod,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DateTime<Utc>> {
        let shared = self.shared.clone();
        let Some(pods_dir) = shared.options.pods_dir.as_deref() else {
            return Ok(None);
        };
        let allocatable = self.node.config.capacity.quantities();
        let ctx = VolumeContext {
            objects: &*shared.objects,
            pods_dir,
            allocatable: &allocatable,
        };
        let resync = after(now, shared.options.sync_frequency);
        let result = match &mut self.volumes {
            None => {
                if let Some((at, _)) = self.volume_retry.filter(|(at, _)| now < *at) {
                    return Err(at);
                }
                volumes::prepare(&ctx, pod).await.map(|prepared| {
                    crate::stage(&self.uid, "volumes");
                    self.volumes = Some(prepared);
                    self.volume_retry = None;
                })
            }
            Some(prepared) => {
                let token_due = prepared.next_token_refresh();
                let due = later(self.next_volume_sync, token_due).unwrap_or(now);
                if now < due {
                    return Ok(Some(due));
                }
                volumes::update(&ctx, pod, prepared).await
            }
        };
        self.next_volume_sync = Some(resync);
        if let Err(err) = result {
            self.event(None, WARNING, "FailedMount", err.to_string());
            if self.volumes.is_none() {
                let backoff = self
                    .volume_retry
                    .map_or(VOLUME_BACKOFF, |(_, b)| (b * 2).min(MAX_VOLUME_BACKOFF));
                let at = after(now, backoff);
                self.volume_retry = Some((at, backoff));
                return Err(at);
            }
        }
        let token_due = self
            .volumes
            .as_ref()
            .and_then(PodVolumes::next_token_refresh);
        Ok(later(Some(resync), token_due))
    }

    /// Unmounts and removes the pod's volumes (the pod is gone or being deleted).
    async fn clean_up_volumes(&mut self) {
        let Some(prepared) = self.volumes.take() else {
            return;
        };
        if let Err(err) = volumes::cleanup(prepared.pod_dir()).await {
            tracing::warn!(pod = %self.key(), "cleaning up the pod's volumes: {err}");
        }
    }

    /// Starts, restarts or waits on one container; returns when to look again.
    #[allow(clippy::too_many_arguments)]
    async fn advance_container(
        &mut self,
        kind: Kind,
        i: usize,
        spec: &Container,
        policy: &str,
        sandbox: &str,
        grace: Duration,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let runtime = self.node.runtime.clone();
        let image = spec.image.clone().unwrap_or_default();
        let key = self.key();
        let uid = self.uid.clone();
        let record = &mut self.records_mut(kind)[i];
        if record.is_running() {
            if record.spec_image == image {
                // Real probes report through the prober; simulated ones pass on time.
                if runtime.runs_probes() {
                    return None;
                }
                return probe(record, spec, now);
            }
            // A new image (`kubectl set image`): the container is replaced.
            if let Some(id) = record.current.as_ref().map(|c| raw_id(&c.id).to_owned()) {
                self.event(
                    Some(kind.field_path(&spec.name)),
                    NORMAL,
                    "Killing",
                    format!(
                        "Container {} definition changed, will be restarted",
                        spec.name
                    ),
                );
                let grace = self.pre_stop(vec![(id.clone(), spec.clone())], grace).await;
                let _ = runtime.stop_container(&id, grace).await;
                let exit = runtime
                    .container_status(&id)
                    .await
                    .ok()
                    .and_then(|s| s.exit);
                let record = &mut self.records_mut(kind)[i];
                if let Some(current) = record.current.as_mut() {
                    current.exit = exit.or_else(|| Some(Exit::with_code(0, Utc::now())));
                }
            }
            let record = &mut self.records_mut(kind)[i];
            record.last_termination = record.current.take();
            record.restart_count += 1;
            return self.start(kind, i, spec, sandbox, now).await;
        }
        if let Some(at) = record.next_start {
            if now < at {
                return Some(at);
            }
            record.next_start = None;
            let crashed = record
                .waiting
                .take()
                .is_some_and(|w| w.reason == "CrashLoopBackOff");
            if crashed {
                record.restart_count += 1;
                record.backoff = (record.backoff * 2).min(MAX_BACKOFF);
            }
            return self.start(kind, i, spec, sandbox, now).await;
        }
        let Some(exit) = record.exit().cloned() else {
            // Never started yet.
            if record.current.is_none() && record.waiting.is_none() {
                return self.start(kind, i, spec, sandbox, now).await;
            }
            return None;
        };
        let restart = match policy {
            "Always" => true,
            "OnFailure" => exit.code != 0,
            _ => false,
        };
        if !restart {
            return None;
        }
        let ran_for = record
            .current
            .as_ref()
            .map(|c| {
                (exit.finished_at - c.started_at)
                    .to_std()
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        if ran_for >= BACKOFF_RESET {
            record.backoff = Duration::ZERO;
        }
        // The run before the last one is no longer shown: the runtime may forget it.
        if let Some(old) = record.last_termination.take() {
            let runtime = runtime.clone();
            tokio::spawn(async move {
                let _ = runtime.remove_container(raw_id(&old.id)).await;
            });
        }
        record.last_termination = record.current.take();
        if record.backoff.is_zero() {
            // The first crash restarts at once; the next ones wait.
            record.backoff = INITIAL_BACKOFF;
            record.restart_count += 1;
            return self.start(kind, i, spec, sandbox, now).await;
        }
        let due = after(exit.finished_at, record.backoff);
        if now >= due {
            record.restart_count += 1;
            record.backoff = (record.backoff * 2).min(MAX_BACKOFF);
            return self.start(kind, i, spec, sandbox, now).await;
        }
        let (namespace, name) = key.split_once('/').unwrap_or(("", &key));
        record.waiting = Some(Waiting {
            reason: "CrashLoopBackOff".to_owned(),
            message: Some(format!(
                "back-off {} restarting failed container={} pod={name}_{namespace}({uid})",
                go_duration(record.backoff),
                spec.name
            )),
        });
        record.next_start = Some(due);
        self.event(
            Some(kind.field_path(&spec.name)),
            WARNING,
            "BackOff",
            format!(
                "Back-off restarting failed container {} in pod {}_{}({})",
                spec.name, self.name, self.namespace, self.uid
            ),
        );
        Some(due)
    }

    /// Creates and starts a container; an exit at once is seen at once.
    async fn start(
        &mut self,
        kind: Kind,
        i: usize,
        spec: &Container,
        sandbox: &str,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let runtime = self.node.runtime.clone();
        let attempt = u32::try_from(self.records_mut(kind)[i].restart_count).unwrap_or(0);
        let field_path = kind.field_path(&spec.name);
        let image = spec.image.clone().unwrap_or_default();
        if let Err(retry) = self.ensure_image(kind, i, spec, &image, now).await {
            return Some(retry);
        }
        let config = match self.container_config(kind, spec, attempt).await {
            Ok(config) => config,
            Err(message) => {
                self.event(
                    Some(field_path),
                    WARNING,
                    "Failed",
                    format!("Error: {message}"),
                );
                let at = after(now, RUNTIME_RETRY);
                self.wait(kind, i, "CreateContainerConfigError", message, at);
                return Some(at);
            }
        };
        let sandbox_config = self.sandbox_config.clone();
        let started = match runtime
            .start_container(sandbox, &sandbox_config, &config)
            .await
        {
            Ok(id) => {
                crate::stage(&self.uid, "started");
                // What follows (its status, the events) costs the node little: the next
                // pod may start, unless another container of this pod starts next.
                if matches!(kind, Kind::Init) || i + 1 == self.containers.len() {
                    self.turn = None;
                }
                runtime.container_status(&id).await
            }
            Err(err) => Err(err),
        };
        let scheme = self.node.runtime_name.clone();
        let status = match started {
            Ok(status) => status,
            Err(err) => {
                self.event(Some(field_path), WARNING, "Failed", format!("Error: {err}"));
                let record = &mut self.records_mut(kind)[i];
                record.waiting = Some(Waiting {
                    reason: "RunContainerError".to_owned(),
                    message: Some(err.to_string()),
                });
                let at = after(now, RUNTIME_RETRY);
                record.next_start = Some(at);
                return Some(at);
            }
        };
        self.event(
            Some(field_path.clone()),
            NORMAL,
            "Created",
            format!("Created container: {}", spec.name),
        );
        match status.exit.as_ref().filter(|e| e.reason == "StartError") {
            Some(exit) => self.event(
                Some(field_path),
                WARNING,
                "Failed",
                format!("Error: {}", exit.message.as_deref().unwrap_or_default()),
            ),
            None => self.event(
                Some(field_path),
                NORMAL,
                "Started",
                format!("Started container {}", spec.name),
            ),
        }
        if status.exit.is_none() {
            self.watch(&status.id, spec);
            let hook = spec.lifecycle.as_ref().and_then(|l| l.post_start.as_ref());
            if let Some(hook) = hook.filter(|_| runtime.runs_probes()) {
                // The hook is the pod's own work: the next pod need not wait for it.
                self.turn = None;
                self.post_start(&status.id, spec, hook).await;
            }
        }
        let exited = status.exit.is_some();
        let record = &mut self.records_mut(kind)[i];
        record.waiting = None;
        record.spec_image = config.image;
        record.current = Some(Instance {
            id: format!("{scheme}://{}", status.id),
            image: status.image,
            image_id: status.image_id,
            started_at: status.started_at,
            exit: status.exit,
        });
        if exited {
            // Look again at once: the restart policy decides what comes next.
            record.started = false;
            record.ready = false;
            return Some(now);
        }
        if runtime.runs_probes() {
            // Until its prober says otherwise; without probes it is started and ready as
            // soon as it runs, as kube's prober manager has it.
            let probed = has_probes(spec);
            record.started = !probed;
            record.ready = !probed;
            return None;
        }
        probe(record, spec, Utc::now())
    }

    /// Follows a running container: its exit, and its probes where they run for real.
    fn watch(&mut self, id: &str, spec: &Container) {
        let runtime = self.node.runtime.clone();
        let raw = id.to_owned();
        self.waiters.spawn(async move {
            let exit = runtime.wait_container(&raw).await.ok()?;
            Some((raw, exit))
        });
        if !self.node.runtime.runs_probes() || !has_probes(spec) {
            return;
        }
        let target = prober::Target {
            runtime: self.node.runtime.clone(),
            container_id: id.to_owned(),
            pod_ip: self.pod_ip,
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let events = match &self.probe_events {
            Some(events) => events.clone(),
            None => {
                let (events, probe_rx) = mpsc::unbounded_channel();
                self.probe_rx = Some(probe_rx);
                self.probe_events.insert(events).clone()
            }
        };
        let spec_owned = spec.clone();
        let key = id.to_owned();
        let task = tokio::spawn(async move {
            let forward = async {
                while let Some(event) = rx.recv().await {
                    let _ = events.send((key.clone(), event));
                }
            };
            tokio::join!(prober::run(target, spec_owned, tx), forward);
        });
        if let Some(old) = self.probers.insert(id.to_owned(), task) {
            old.abort();
        }
    }

    /// kube's postStart: the container is not running for the kubelet until its hook is
    /// done; a failed hook kills it (`FailedPostStartHook`), and its restart policy decides.
    async fn post_start(&mut self, id: &str, spec: &Container, hook: &LifecycleHandler) {
        let target = self.target(id);
        let grace = self.grace();
        let pod = self.name.clone();
        if let Err(message) = lifecycle::run(&target, hook, spec, &pod, HOOK_TIMEOUT).await {
            // The field path is the container's, as kube's events say.
            let path = if self.init.iter().any(|r| r.name == spec.name) {
                Kind::Init.field_path(&spec.name)
            } else {
                Kind::Regular.field_path(&spec.name)
            };
            self.event(Some(path.clone()), WARNING, "FailedPostStartHook", message);
            self.event(
                Some(path),
                NORMAL,
                "Killing",
                format!(
                    "FailedPostStartHook: container {} will be killed",
                    spec.name
                ),
            );
            let _ = self.node.runtime.stop_container(id, grace).await;
        }
    }

    /// Where a running container's probes and hooks go.
    fn target(&self, id: &str) -> prober::Target {
        prober::Target {
            runtime: self.node.runtime.clone(),
            container_id: id.to_owned(),
            pod_ip: self.pod_ip,
        }
    }

    /// The pod's termination grace period.
    fn grace(&self) -> Duration {
        let seconds = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    }

    /// Runs the preStop hooks of these running containers together, each within `grace`
    /// (`FailedPreStopHook` when one fails); returns the grace left for SIGTERM.
    async fn pre_stop(&self, containers: Vec<(String, Container)>, grace: Duration) -> Duration {
        // Hooks run in real containers only, and not for a pod that is gone already.
        if grace.is_zero() || !self.node.runtime.runs_probes() {
            return grace;
        }
        let started = std::time::Instant::now();
        let hooks = containers.into_iter().filter_map(|(id, spec)| {
            let hook = spec.lifecycle.as_ref()?.pre_stop.clone()?;
            let target = self.target(&id);
            let pod = self.name.clone();
            Some(async move {
                let ran =
                    tokio::time::timeout(grace, lifecycle::run(&target, &hook, &spec, &pod, grace))
                        .await;
                match ran {
                    Ok(Ok(())) => None,
                    Ok(Err(message)) => Some((spec.name, message)),
                    Err(_) => Some((
                        spec.name,
                        format!("PreStopHook did not finish in {}", go_duration(grace)),
                    )),
                }
            })
        });
        let failed = futures_util::future::join_all(hooks).await;
        let ran_any = !failed.is_empty();
        for (name, message) in failed.into_iter().flatten() {
            let path = if self.init.iter().any(|r| r.name == name) {
                Kind::Init.field_path(&name)
            } else {
                Kind::Regular.field_path(&name)
            };
            self.event(Some(path), WARNING, "FailedPreStopHook", message);
        }
        if ran_any {
            lifecycle::remaining_grace(grace, started.elapsed())
        } else {
            grace
        }
    }

    /// The running containers, by raw id, with their specs.
    fn running_containers(&self) -> Vec<(String, Container)> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let specs: Vec<Container> = spec
            .init_containers
            .unwrap_or_default()
            .into_iter()
            .chain(spec.containers)
            .collect();
        self.init
            .iter()
            .chain(self.containers.iter())
            .filter(|r| r.is_running())
            .filter_map(|r| {
                let id = raw_id(&r.current.as_ref()?.id).to_owned();
                let spec = specs.iter().find(|c| c.name == r.name)?.clone();
                Some((id, spec))
            })
            .collect()
    }

    /// What a container's prober found.
    async fn on_probe(&mut self, pod: &Pod, id: &str, event: ProbeEvent) {
        let full = format!("{}://{id}", self.node.runtime_name);
        let spec = pod.spec.clone().unwrap_or_default();
        let Some((kind, i)) = self
            .init
            .iter()
            .position(|r| {
                r.current
                    .as_ref()
                    .is_some_and(|c| c.id == full && c.exit.is_none())
            })
            .map(|i| (Kind::Init, i))
            .or_else(|| {
                self.containers
                    .iter()
                    .position(|r| {
                        r.current
                            .as_ref()
                            .is_some_and(|c| c.id == full && c.exit.is_none())
                    })
                    .map(|i| (Kind::Regular, i))
            })
        else {
            return;
        };
        let container = match kind {
            Kind::Init => spec
                .init_containers
                .clone()
                .unwrap_or_default()
                .get(i)
                .cloned(),
            Kind::Regular => spec.containers.get(i).cloned(),
        };
        let Some(container) = container else { return };
        let field_path = kind.field_path(&container.name);
        match event {
            ProbeEvent::Started => {
                let record = &mut self.records_mut(kind)[i];
                record.started = true;
                if container.readiness_probe.is_none() {
                    record.ready = true;
                }
            }
            ProbeEvent::Ready(ready) => {
                let record = &mut self.records_mut(kind)[i];
                record.ready = ready && record.started;
            }
            ProbeEvent::Failed { probe, output } => {
                self.event(
                    Some(field_path),
                    WARNING,
                    "Unhealthy",
                    format!("{probe} probe failed: {output}"),
                );
            }
            ProbeEvent::Unhealthy { probe, output } => {
                self.event(
                    Some(field_path.clone()),
                    WARNING,
                    "Unhealthy",
                    format!("{probe} probe failed: {output}"),
                );
                self.event(
                    Some(field_path),
                    NORMAL,
                    "Killing",
                    format!(
                        "Container {} failed {} probe, will be restarted",
                        container.name,
                        probe.to_lowercase()
                    ),
                );
                let grace = self
                    .pre_stop(vec![(id.to_owned(), container)], self.grace())
                    .await;
                let record = &mut self.records_mut(kind)[i];
                record.started = false;
                record.ready = false;
                // The exit waiter records the end; the restart policy restarts it.
                let runtime = self.node.runtime.clone();
                let raw = id.to_owned();
                tokio::spawn(async move {
                    let _ = runtime.stop_container(&raw, grace).await;
                });
            }
        }
    }

    /// Makes sure the container's image is there, by its pull policy (kube's image
    /// manager): `Err(when)` to look again, with the container waiting on `ErrImagePull`,
    /// `ImagePullBackOff` or `ErrImageNeverPull`.
    async fn ensure_image(
        &mut self,
        kind: Kind,
        i: usize,
        spec: &Container,
        image: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DateTime<Utc>> {
        let runtime = self.node.runtime.clone();
        let field_path = kind.field_path(&spec.name);
        let policy = PullPolicy::of(spec.image_pull_policy.as_deref(), image);
        if let Some(pull) = self.pulls.get(image).filter(|p| now < p.until) {
            let until = pull.until;
            let message = format!("Back-off pulling image {image:?}: {}", pull.message);
            self.event(
                Some(field_path),
                NORMAL,
                "BackOff",
                format!("Back-off pulling image {image:?}"),
            );
            self.wait(kind, i, "ImagePullBackOff", message, until);
            return Err(until);
        }
        // Found while the sandbox was made: the container starts right after.
        let present = if self.present_images.remove(image) {
            Ok(true)
        } else {
            runtime.image_present(image).await
        };
        let present = match present {
            Ok(present) => present,
            Err(err) => {
                let at = after(now, RUNTIME_RETRY);
                self.wait(kind, i, "ErrImagePull", err.to_string(), at);
                return Err(at);
            }
        };
        let pull = match policy {
            PullPolicy::Always => true,
            PullPolicy::IfNotPresent => !present,
            PullPolicy::Never => {
                if present {
                    false
                } else {
                    let err = RuntimeError::ImageNeverPull {
                        image: image.to_owned(),
                    };
                    self.event(
                        Some(field_path.clone()),
                        WARNING,
                        "ErrImageNeverPull",
                        err.to_string(),
                    );
                    self.event(
                        Some(field_path),
                        WARNING,
                        "Failed",
                        "Error: ErrImageNeverPull".to_owned(),
                    );
                    let at = after(now, RUNTIME_RETRY);
                    self.wait(kind, i, "ErrImageNeverPull", err.to_string(), at);
                    return Err(at);
                }
            }
        };
        if !pull {
            self.event(
                Some(field_path),
                NORMAL,
                "Pulled",
                format!("Container image {image:?} already present on machine"),
            );
            return Ok(());
        }
        self.event(
            Some(field_path.clone()),
            NORMAL,
            "Pulling",
            format!("Pulling image {image:?}"),
        );
        let started = std::time::Instant::now();
        // A pull waits on the registry: the next pod need not wait for it.
        self.turn = None;
        match runtime.pull_image(image, &self.sandbox_config).await {
            Ok(size) => {
                self.pulls.remove(image);
                let took = started.elapsed();
                self.event(
                    Some(field_path),
                    NORMAL,
                    "Pulled",
                    format!(
                        "Successfully pulled image {image:?} in {} ({} including waiting). Image size: {size} bytes.",
                        go_duration(took),
                        go_duration(took)
                    ),
                );
                Ok(())
            }
            Err(err) => {
                let message = err.to_string();
                self.event(
                    Some(field_path.clone()),
                    WARNING,
                    "Failed",
                    format!("Failed to pull image {image:?}: {message}"),
                );
                self.event(
                    Some(field_path),
                    WARNING,
                    "Failed",
                    "Error: ErrImagePull".to_owned(),
                );
                let now = Utc::now();
                let backoff = self
                    .pulls
                    .get(image)
                    .map_or(INITIAL_BACKOFF, |p| (p.backoff * 2).min(MAX_BACKOFF));
                let until = after(now, backoff);
                self.pulls.insert(
                    image.to_owned(),
                    PullBackoff {
                        backoff,
                        until,
                        message: format!("ErrImagePull: {message}"),
                    },
                );
                // ErrImagePull shows until the worker looks again, half-way through the
                // back-off; ImagePullBackOff from then until the next pull.
                let again = after(now, backoff / 2);
                self.wait(kind, i, "ErrImagePull", message, again);
                Err(again)
            }
        }
    }

    /// The container waits on `reason` until `until`.
    fn wait(&mut self, kind: Kind, i: usize, reason: &str, message: String, until: DateTime<Utc>) {
        let record = &mut self.records_mut(kind)[i];
        record.waiting = Some(Waiting {
            reason: reason.to_owned(),
            message: Some(message),
        });
        record.next_start = Some(until);
    }

    /// What the runtime creates the container from; `Err` is kube's
    /// `CreateContainerConfigError` message (a missing ConfigMap, key or Secret, a mount
    /// that cannot be made).
    async fn container_config(
        &self,
        kind: Kind,
        spec: &Container,
        attempt: u32,
    ) -> Result<ContainerConfig, String> {
        let node_memory =
            container_spec::value(&Quantity(self.node.config.capacity.memory.clone()));
        let mut config = ContainerConfig {
            name: spec.name.clone(),
            image: spec.image.clone().unwrap_or_default(),
            command: spec.command.clone().unwrap_or_default(),
            args: spec.args.clone().unwrap_or_default(),
            attempt,
            env: container_spec::plain_env(spec),
            mounts: Vec::new(),
            working_dir: spec.working_dir.clone(),
            resources: container_spec::resources(&self.pod, spec, node_memory),
            security: container_spec::security(&self.pod, spec),
            stdin: spec.stdin == Some(true),
            stdin_once: spec.stdin_once == Some(true),
            tty: spec.tty == Some(true),
            termination_message_path: spec.termination_message_path.clone(),
            init: matches!(kind, Kind::Init),
        };
        // Hollow nodes stop at the plain variables; real ones resolve everything.
        let Some(volumes) = &self.volumes else {
            return Ok(config);
        };
        let allocatable = self.node.config.capacity.quantities();
        let host_ips = [self.node.config.internal_ip];
        let pod_ips: Vec<IpAddr> = self.pod_ip.into_iter().collect();
        let ctx = EnvContext {
            objects: &*self.shared.objects,
            allocatable: &allocatable,
            host_ips: &host_ips,
            pod_ips: &pod_ips,
        };
        let env = envvars::container_env(&ctx, &self.pod, spec)
            .await
            .map_err(|e| e.to_string())?;
        (config.command, config.args) = envvars::expand_command_and_args(spec, &env);
        config.mounts = volumes
            .mounts_for(spec, &env)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|m| Mount {
                container_path: m.container_path,
                host_path: m.host_path.to_string_lossy().into_owned(),
                readonly: m.read_only,
                propagation: m.propagation,
            })
            .collect();
        let mounts_hosts = spec
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path.trim_end_matches('/') == "/etc/hosts");
        if !mounts_hosts && !pod_ips.is_empty() {
            config.mounts.push(Mount {
                container_path: "/etc/hosts".to_owned(),
                host_path: self.hosts_file(volumes.pod_dir(), &pod_ips)?,
                readonly: false,
                propagation: crate::volumes::Propagation::Private,
            });
        }
        config.env = env;
        Ok(config)
    }

    /// The pod's managed /etc/hosts, written the first time a container needs it.
    fn hosts_file(&self, pod_dir: &std::path::Path, pod_ips: &[IpAddr]) -> Result<String, String> {
        let path = pod_dir.join(crate::hosts::FILE);
        if !path.exists() {
            let domain = self
                .shared
                .options
                .dns
                .as_ref()
                .map_or("cluster.local", |d| d.cluster_domain.as_str());
            let node_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            let text = crate::hosts::content(&self.pod, pod_ips, domain, &node_hosts);
            std::fs::write(&path, text).map_err(|e| {
                format!(
                    "failed to write the pod's hosts file {}: {e}",
                    path.display()
                )
            })?;
        }
        Ok(path.to_string_lossy().into_owned())
    }

    /// Takes over the sandbox and containers the runtime still runs for this pod (the agent
    /// restarted): nothing is restarted. Returns whether there was one; `Err` when the
    /// runtime could not tell.
    async fn adopt(&mut self, spec: &PodSpec) -> Result<bool, ()> {
        let runtime = self.node.runtime.clone();
        let found = match runtime.find_pod_sandbox(&self.uid).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(false),
            Err(err) => {
                tracing::info!(pod = %self.key(), "looking for the pod's sandbox, will retry: {err}");
                return Err(());
            }
        };
        tracing::info!(pod = %self.key(), sandbox = %found.sandbox.id, "adopting the running pod");
        self.sandbox = Some(found.sandbox.id.clone());
        self.pod_ip = found.sandbox.ip.or(Some(self.node.config.internal_ip));
        let scheme = self.node.runtime_name.clone();
        let instance = |f: &FoundContainer| Instance {
            id: format!("{scheme}://{}", f.status.id),
            image: f.status.image.clone(),
            image_id: f.status.image_id.clone(),
            started_at: f.status.started_at,
            exit: f.status.exit.clone(),
        };
        let lists = [
            (Kind::Init, spec.init_containers.clone().unwrap_or_default()),
            (Kind::Regular, spec.containers.clone()),
        ];
        for (kind, containers) in lists {
            for (i, container) in containers.iter().enumerate() {
                let mut runs: Vec<&FoundContainer> = found
                    .containers
                    .iter()
                    .filter(|f| f.name == container.name)
                    .collect();
                let Some(last) = runs.pop() else { continue };
                let running = last.status.exit.is_none();
                if running {
                    let id = last.status.id.clone();
                    self.watch(&id, container);
                }
                let record = &mut self.records_mut(kind)[i];
                if running && runtime.runs_probes() && !has_probes(container) {
                    // No prober to say so: started and ready as it runs (as in `start`).
                    record.started = true;
                    record.ready = true;
                }
                record.current = Some(instance(last));
                record.last_termination = runs.pop().map(instance);
                record.spec_image = container.image.clone().unwrap_or_default();
                record.waiting = None;
            }
        }
        Ok(true)
    }

    /// A container the runtime saw exit.
    fn record_exit(&mut self, id: &str, exit: Exit) {
        if let Some(prober) = self.probers.remove(id) {
            prober.abort();
        }
        let full = format!("{}://{id}", self.node.runtime_name);
        for record in self.init.iter_mut().chain(self.containers.iter_mut()) {
            if let Some(current) = record.current.as_mut()
                && current.id == full
                && current.exit.is_none()
            {
                current.exit = Some(exit.clone());
                record.started = false;
                record.ready = false;
            }
        }
    }

    /// Stops the sandbox's containers with the grace period, records how they ended, then
    /// removes the sandbox (its address goes back to the pool).
    async fn stop_sandbox(&mut self, grace: Duration) {
        let Some(sandbox) = self.sandbox.take() else {
            return;
        };
        let runtime = self.node.runtime.clone();
        let running: Vec<(String, String)> = self
            .init
            .iter()
            .map(|r| (Kind::Init, r))
            .chain(self.containers.iter().map(|r| (Kind::Regular, r)))
            .filter(|(_, r)| r.is_running())
            .map(|(kind, r)| (kind.field_path(&r.name), r.name.clone()))
            .collect();
        for (path, name) in running {
            self.event(
                Some(path),
                NORMAL,
                "Killing",
                format!("Stopping container {name}"),
            );
        }
        let grace = self.pre_stop(self.running_containers(), grace).await;
        if let Err(err) = runtime.stop_pod_sandbox(&sandbox, grace).await {
            tracing::debug!(pod = %self.key(), "stopping the sandbox: {err}");
        }
        for record in self.init.iter_mut().chain(self.containers.iter_mut()) {
            let Some(current) = record.current.as_mut().filter(|c| c.exit.is_none()) else {
                continue;
            };
            if let Ok(status) = runtime.container_status(raw_id(&current.id)).await {
                current.exit = status.exit;
            }
            record.started = false;
            record.ready = false;
        }
        if let Err(err) = runtime.remove_pod_sandbox(&sandbox).await {
            tracing::debug!(pod = %self.key(), "removing the sandbox: {err}");
        }
        self.waiters.abort_all();
        for (_, prober) in self.probers.drain() {
            prober.abort();
        }
    }

    /// A pod marked for deletion: stop it, write its final status, delete it for good.
    async fn terminate(&mut self, pod: &Pod) -> Option<DateTime<Utc>> {
        if !self.terminal {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .and_then(|g| u64::try_from(g).ok())
                .unwrap_or(0);
            self.stop_sandbox(Duration::from_secs(grace)).await;
            self.clean_up_volumes().await;
            self.terminal = true;
            self.finished = true;
        }
        let now = Utc::now();
        if let Err(retry) = self.write_status(pod, now).await {
            return Some(retry);
        }
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let result = {
            let _permit = self.shared.writes.acquire().await;
            api.delete(&self.name, &params).await
        };
        match result {
            Ok(_) => self.deleted = true,
            // Gone already, or another pod of the same name.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => self.deleted = true,
            Err(err) => {
                tracing::debug!(pod = %self.key(), "failed to delete: {err}");
                return Some(after(now, RETRY));
            }
        }
        None
    }

    /// Writes the pod's status if it changed; `Err(when)` to try again.
    async fn write_status(&mut self, pod: &Pod, now: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
        let view = PodView {
            pod,
            host_ip: self.node.config.internal_ip,
            pod_ip: self.pod_ip.filter(|_| !self.sandbox_ahead_of_volumes),
            sandbox_ready: self.sandbox.is_some() && !self.sandbox_ahead_of_volumes,
            init: &self.init,
            containers: &self.containers,
            start_time: self.start_time,
            terminal: self.terminal,
            failure: self.failure,
        };
        let desired = pod_status::build(&view, &mut self.transitions, now);
        let desired_print = fingerprint(Some(&desired));
        let needed = match self.written.as_ref().filter(|_| desired_print.is_some()) {
            None => true,
            Some(written) => {
                let newer = match (resource_version(pod), written.resource_version) {
                    (Some(seen), Some(ours)) => seen > ours,
                    _ => true,
                };
                written.desired != desired_print
                    || (newer && fingerprint(pod.status.as_ref()) != written.response)
            }
        };
        if !needed {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &self.namespace);
        let body = json!({"metadata": {"uid": self.uid}, "status": pod_status::to_json(&desired)});
        let result = {
            let _permit = self.shared.writes.acquire().await;
            api.patch_status(&self.name, &PatchParams::default(), &Patch::Strategic(body))
                .await
        };
        match result {
            Ok(updated) => {
                if desired.phase.as_deref() == Some("Running") {
                    crate::stage(&self.uid, "reported");
                }
                self.written = Some(Written {
                    desired: desired_print,
                    resource_version: resource_version(&updated),
                    response: fingerprint(updated.status.as_ref()),
                });
                Ok(())
            }
            // Gone: the watch tells the worker.
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 400 || e.code == 422 => {
                // Refused as it is: not retried until the status changes.
                tracing::warn!(pod = %self.key(), "pod status refused: {}", e.message);
                self.written = Some(Written {
                    desired: desired_print,
                    resource_version: Some(u64::MAX),
                    response: None,
                });
                Ok(())
            }
            Err(err) => {
                tracing::debug!(pod = %self.key(), "failed to update pod status: {err}");
                Err(after(now, RETRY))
            }
        }
    }

    fn event(&self, field_path: Option<String>, type_: &str, reason: &str, message: String) {
        let involved = ObjectReference {
            field_path,
            ..self.reference.clone()
        };
        events::record(
            &self.shared,
            self.node.name(),
            involved,
            type_,
            reason,
            message,
        );
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Whether a container has a startup, liveness or readiness probe to run.
fn has_probes(spec: &Container) -> bool {
    spec.startup_probe.is_some() || spec.liveness_probe.is_some() || spec.readiness_probe.is_some()
}

/// A container id without its `runtime://` scheme.
fn raw_id(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, raw)| raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ExecAction;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("a valid time")
    }

    #[test]
    fn status_fingerprints_tell_equal_statuses_from_different_ones() {
        let running = PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some("10.0.0.5".into()),
            ..PodStatus::default()
        };
        let same = running.clone();
        let other_ip = PodStatus {
            pod_ip: Some("10.0.0.6".into()),
            ..running.clone()
        };
        assert_eq!(fingerprint(Some(&running)), fingerprint(Some(&same)));
        assert!(fingerprint(Some(&running)).is_some());
        assert_ne!(fingerprint(Some(&running)), fingerprint(Some(&other_ip)));
        assert_ne!(fingerprint(Some(&running)), fingerprint(None));
        assert_eq!(fingerprint(None), None);
    }

    #[test]
    fn the_images_looked_for_with_the_sandbox_are_those_started_first_and_not_always_pulled() {
        let container = |image: &str, policy: Option<&str>| Container {
            name: image.replace([':', '/'], "-"),
            image: Some(image.to_owned()),
            image_pull_policy: policy.map(str::to_owned),
            ..Container::default()
        };
        let mut spec = PodSpec {
            containers: vec![
                container("busybox:1", None),
                container("busybox:1", Some("IfNotPresent")),
                container("web:2", Some("Never")),
                container("pulled:3", Some("Always")),
                // No tag: kube's default policy is Always.
                container("untagged", None),
            ],
            ..PodSpec::default()
        };
        assert_eq!(first_images(&spec), ["busybox:1", "web:2"]);
        // With init containers, only the first of them starts first.
        spec.init_containers = Some(vec![container("init:1", None), container("init:2", None)]);
        assert_eq!(first_images(&spec), ["init:1"]);
        spec.init_containers = Some(vec![container("init:latest", None)]);
        assert!(first_images(&spec).is_empty());
    }

    #[test]
    fn probes_delay_started_and_ready() {
        let probe_after = |seconds| Probe {
            initial_delay_seconds: Some(seconds),
            exec: Some(ExecAction {
                command: Some(vec!["true".into()]),
            }),
            ..Probe::default()
        };
        let mut spec = Container {
            name: "c".into(),
            readiness_probe: Some(probe_after(5)),
            ..Container::default()
        };
        let mut record = ContainerRecord {
            current: Some(Instance {
                id: "x://1".into(),
                image: String::new(),
                image_id: String::new(),
                started_at: t(0),
                exit: None,
            }),
            ..ContainerRecord::new("c")
        };
        assert_eq!(probe(&mut record, &spec, t(1)), Some(t(5)));
        assert!(record.started && !record.ready);
        assert_eq!(probe(&mut record, &spec, t(5)), None);
        assert!(record.ready);
        // A startup probe holds both back.
        spec.startup_probe = Some(probe_after(8));
        assert_eq!(probe(&mut record, &spec, t(6)), Some(t(8)));
        assert!(!record.started && !record.ready);
        // Without probes: started and ready at once.
        let plain = Container {
            name: "c".into(),
            ..Container::default()
        };
        assert_eq!(probe(&mut record, &plain, t(0)), None);
        assert!(record.started && record.ready);
    }

    #[test]
    fn container_ids_lose_their_scheme() {
        assert_eq!(raw_id("rkube-simulated://abc"), "abc");
        assert_eq!(raw_id("abc"), "abc");
    }
}
