//! The scheduler's connection to the cluster: watches (kube-rs watchers over nodes, pods,
//! namespaces and PodDisruptionBudgets) feed the core on its own thread; the core's
//! actions come back as API calls: bindings (a bounded number in flight), PodScheduled
//! conditions, evictions and events.

use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event, EventSource, Namespace, Node, ObjectReference, Pod};
use k8s_openapi::api::core::v1::{ReplicationController, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::chrono::{SecondsFormat, Utc};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent, watcher};
use kube::{Client, Resource};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::cache::Pdb;
use crate::default_spread::{Owner, OwnerKind};
use crate::framework::{BindError, BindPlugin, BoxFuture};
use crate::labels::Selector;
use crate::pod_info::{PodInfo, pod_key};
use crate::schedule_one::Nomination;
use crate::scheduler::{Action, CoreConfig, FailureReason, Input, Kind, Scheduler};

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// The `spec.schedulerName` of the pods this scheduler places (`default-scheduler`).
    pub scheduler_name: String,
    /// kube's `percentageOfNodesToScore`; `None` or 0 is adaptive (50% minus 1% per 125
    /// nodes, at least 5%, and at least 100 nodes).
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Threads for filtering and scoring nodes.
    pub parallelism: usize,
    /// Bindings in flight at once.
    pub max_concurrent_binds: usize,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            scheduler_name: "default-scheduler".to_owned(),
            percentage_of_nodes_to_score: None,
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_concurrent_binds: 64,
        }
    }
}

enum Msg {
    Input(Input),
    Stop,
}

/// Runs the scheduler until `shutdown` completes (or the scheduling thread dies).
/// Leader election is the caller's: run this while leading.
pub async fn run(
    client: Client,
    opts: SchedulerOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel::<Msg>();
    let (actions_tx, actions_rx) = mpsc::unbounded_channel::<Action>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let core = Scheduler::new(CoreConfig {
        scheduler_name: opts.scheduler_name.clone(),
        percentage_of_nodes_to_score: opts.percentage_of_nodes_to_score,
        parallelism: opts.parallelism.max(1),
    });
    std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || {
            core_loop(core, rx, actions_tx);
            let _ = done_tx.send(());
        })
        .context("starting the scheduling thread")?;

    let watchers = vec![
        tokio::spawn(watch(
            Api::<Node>::all(client.clone()),
            Kind::Node,
            tx.clone(),
            |n: Node| Input::Node(Box::new(n)),
            Input::NodeDeleted,
        )),
        tokio::spawn(watch(
            Api::<Pod>::all(client.clone()),
            Kind::Pod,
            tx.clone(),
            |mut p: Pod| {
                p.metadata.managed_fields = None;
                Input::Pod(Arc::new(PodInfo::new(Arc::new(p))))
            },
            Input::PodDeleted,
        )),
        tokio::spawn(watch(
            Api::<Namespace>::all(client.clone()),
            Kind::Namespace,
            tx.clone(),
            |n: Namespace| Input::Namespace {
                name: n.metadata.name.clone().unwrap_or_default(),
                labels: n.metadata.labels.unwrap_or_default(),
            },
            Input::NamespaceDeleted,
        )),
        tokio::spawn(watch(
            Api::<PodDisruptionBudget>::all(client.clone()),
            Kind::PodDisruptionBudget,
            tx.clone(),
            |p: PodDisruptionBudget| Input::Pdb {
                key: key_of(&p),
                pdb: Pdb::from_api(&p),
            },
            Input::PdbDeleted,
        )),
        tokio::spawn(watch(
            Api::<Service>::all(client.clone()),
            Kind::Owner(OwnerKind::Service),
            tx.clone(),
            |svc: Service| {
                let labels = svc
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.clone())
                    .unwrap_or_default();
                owner_input(OwnerKind::Service, &svc, labels, None)
            },
            |key| Input::OwnerDeleted(OwnerKind::Service, key),
        )),
        tokio::spawn(watch(
            Api::<ReplicationController>::all(client.clone()),
            Kind::Owner(OwnerKind::ReplicationController),
            tx.clone(),
            |rc: ReplicationController| {
                let labels = rc
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.clone())
                    .unwrap_or_default();
                owner_input(OwnerKind::ReplicationController, &rc, labels, None)
            },
            |key| Input::OwnerDeleted(OwnerKind::ReplicationController, key),
        )),
        tokio::spawn(watch(
            Api::<ReplicaSet>::all(client.clone()),
            Kind::Owner(OwnerKind::ReplicaSet),
            tx.clone(),
            |rs: ReplicaSet| {
                let selector = rs.spec.as_ref().map(|s| &s.selector);
                let selector = Selector::parse(selector).unwrap_or(Selector::Nothing);
                owner_input(
                    OwnerKind::ReplicaSet,
                    &rs,
                    Default::default(),
                    Some(selector),
                )
            },
            |key| Input::OwnerDeleted(OwnerKind::ReplicaSet, key),
        )),
        tokio::spawn(watch(
            Api::<StatefulSet>::all(client.clone()),
            Kind::Owner(OwnerKind::StatefulSet),
            tx.clone(),
            |ss: StatefulSet| {
                let selector = ss.spec.as_ref().map(|s| &s.selector);
                let selector = Selector::parse(selector).unwrap_or(Selector::Nothing);
                owner_input(
                    OwnerKind::StatefulSet,
                    &ss,
                    Default::default(),
                    Some(selector),
                )
            },
            |key| Input::OwnerDeleted(OwnerKind::StatefulSet, key),
        )),
    ];
    let executor = tokio::spawn(execute(client, opts, actions_rx, tx.clone()));

    let result = tokio::select! {
        () = shutdown => Ok(()),
        _ = done_rx => Err(anyhow::anyhow!("the scheduling thread stopped")),
    };
    for w in &watchers {
        w.abort();
    }
    executor.abort();
    let _ = tx.send(Msg::Stop);
    result
}

/// The core's thread: applies inputs as they come, schedules one pod at a time, sleeps
/// until an input or the next back-off when there is nothing to do.
fn core_loop(mut core: Scheduler, rx: Receiver<Msg>, out: mpsc::UnboundedSender<Action>) {
    let mut was_synced = false;
    let mut busy = Duration::ZERO;
    let mut inputs = 0u64;
    let report = |core: &Scheduler, busy: Duration, inputs: u64| {
        let s = core.stats;
        tracing::info!(
            attempts = s.attempts,
            scheduled = s.scheduled,
            unschedulable = s.unschedulable,
            errors = s.errors,
            preemptions = s.preemptions,
            inputs,
            busy_ms = busy.as_millis() as u64,
            "scheduler stopped"
        );
    };
    loop {
        let drained = Instant::now();
        loop {
            match rx.try_recv() {
                Ok(Msg::Input(input)) => {
                    inputs += 1;
                    core.handle(input, Instant::now())
                }
                Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => {
                    report(&core, busy, inputs);
                    return;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        busy += drained.elapsed();
        let now = Instant::now();
        if core.synced() {
            if !was_synced {
                was_synced = true;
                tracing::info!(
                    nodes = core.cache.num_nodes(),
                    pending = core.queue.len(),
                    "scheduler caches synced"
                );
            }
            core.flush(now);
            let cycle = core.schedule_one(now);
            busy += now.elapsed();
            if let Some(actions) = cycle {
                for action in actions {
                    if out.send(action).is_err() {
                        return;
                    }
                }
                continue;
            }
        }
        let wait = core
            .next_wakeup()
            .map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now))
            .min(Duration::from_secs(1));
        match rx.recv_timeout(wait) {
            Ok(Msg::Input(input)) => {
                inputs += 1;
                core.handle(input, Instant::now())
            }
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                report(&core, busy, inputs);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn key_of<K: Resource>(o: &K) -> String {
    let name = o.meta().name.as_deref().unwrap_or("");
    match o.meta().namespace.as_deref() {
        Some(ns) if !ns.is_empty() => pod_key(ns, name),
        _ => name.to_owned(),
    }
}

fn owner_input<K: Resource>(
    kind: OwnerKind,
    object: &K,
    labels: std::collections::BTreeMap<String, String>,
    selector: Option<Selector>,
) -> Input {
    Input::Owner {
        kind,
        key: key_of(object),
        owner: Owner {
            namespace: object.meta().namespace.clone().unwrap_or_default(),
            name: object.meta().name.clone().unwrap_or_default(),
            labels,
            selector,
        },
    }
}

/// Follows one resource, sending its changes to the core; after each (re)list, the keys
/// listed.
async fn watch<K>(
    api: Api<K>,
    kind: Kind,
    tx: Sender<Msg>,
    apply: impl Fn(K) -> Input,
    delete: impl Fn(String) -> Input,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut stream = pin!(watcher(api, watcher::Config::default()).default_backoff());
    let mut listed = Vec::new();
    while let Some(event) = stream.next().await {
        let input = match event {
            Ok(WatchEvent::Init) => {
                listed.clear();
                continue;
            }
            Ok(WatchEvent::InitApply(o)) => {
                listed.push(key_of(&o));
                apply(o)
            }
            Ok(WatchEvent::InitDone) => Input::Listed(kind, std::mem::take(&mut listed)),
            Ok(WatchEvent::Apply(o)) => apply(o),
            Ok(WatchEvent::Delete(o)) => delete(key_of(&o)),
            Err(err) => {
                tracing::warn!(?kind, "watch failed, retrying: {err}");
                continue;
            }
        };
        if tx.send(Msg::Input(input)).is_err() {
            return;
        }
    }
}

/// kube-scheduler's DefaultBinder: `POST pods/NAME/binding`.
pub struct DefaultBinder {
    client: Client,
}

impl DefaultBinder {
    pub fn new(client: Client) -> Self {
        DefaultBinder { client }
    }
}

impl BindPlugin for DefaultBinder {
    fn bind(&self, pod: Arc<PodInfo>, node: String) -> BoxFuture<Result<(), BindError>> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        Box::pin(async move {
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let error = |message: String| BindError {
                pod: pod.key.clone(),
                node: node.clone(),
                message,
            };
            let body = serde_json::to_vec(&binding).map_err(|e| error(e.to_string()))?;
            api.create_subresource::<serde_json::Value>(
                "binding",
                &pod.name,
                &PostParams::default(),
                body,
            )
            .await
            .map_err(|e| error(e.to_string()))?;
            // For `rkube bench pods` (see `rkube_kubelet::stage`).
            tracing::debug!(
                target: "rkube::stage",
                uid = pod.uid,
                stage = "bound",
                at_us = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros())
            );
            Ok(())
        })
    }
}

/// Normal or Warning.
#[derive(Debug, Clone, Copy)]
enum EventType {
    Normal,
    Warning,
}

struct PendingEvent {
    pod: Arc<PodInfo>,
    kind: EventType,
    reason: &'static str,
    action: &'static str,
    message: String,
}

/// core/v1 Events, written in the background and dropped when the API falls behind (as
/// client-go's broadcaster does): they are best effort and must not slow scheduling.
#[derive(Clone)]
struct Events {
    tx: mpsc::Sender<PendingEvent>,
}

impl Events {
    const BUFFER: usize = 1000;
    const WRITERS: usize = 4;

    fn start(client: Client, component: String) -> Events {
        let (tx, rx) = mpsc::channel::<PendingEvent>(Self::BUFFER);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        let instance = format!("{component}-{host}");
        for _ in 0..Self::WRITERS {
            let rx = rx.clone();
            let client = client.clone();
            let component = component.clone();
            let instance = instance.clone();
            tokio::spawn(async move {
                loop {
                    let Some(e) = rx.lock().await.recv().await else {
                        return;
                    };
                    write_event(&client, &component, &instance, e).await;
                }
            });
        }
        Events { tx }
    }

    fn record(&self, event: PendingEvent) {
        if self.tx.try_send(event).is_err() {
            tracing::debug!("event dropped: the event writers are behind");
        }
    }
}

async fn write_event(client: &Client, component: &str, instance: &str, e: PendingEvent) {
    let now = Utc::now();
    let nanos = now.timestamp_nanos_opt().unwrap_or(0);
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", e.pod.name, nanos)),
            namespace: Some(e.pod.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(e.pod.name.clone()),
            namespace: Some(e.pod.namespace.clone()),
            uid: Some(e.pod.uid.clone()),
            resource_version: e.pod.pod.metadata.resource_version.clone(),
            field_path: None,
        },
        reason: Some(e.reason.into()),
        message: Some(e.message),
        type_: Some(
            match e.kind {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        action: Some(e.action.into()),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(component.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &e.pod.namespace);
    if let Err(err) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(pod = %e.pod.key, "cannot record event: {err}");
    }
}

/// A strategic-merge patch of the pod's PodScheduled condition (and nomination).
fn failure_patch(
    pod: &PodInfo,
    reason: FailureReason,
    message: &str,
    nomination: &Nomination,
) -> serde_json::Value {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let existing = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    // The transition time moves only when the status does.
    let transition = existing
        .filter(|c| c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or(now);
    let mut status = json!({
        "conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason.as_str(),
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": transition,
        }],
    });
    match nomination {
        Nomination::Set(node) => status["nominatedNodeName"] = json!(node),
        Nomination::Clear => status["nominatedNodeName"] = serde_json::Value::Null,
        Nomination::Keep => {}
    }
    json!({ "status": status })
}

/// Carries out the core's actions.
async fn execute(
    client: Client,
    opts: SchedulerOptions,
    mut actions: mpsc::UnboundedReceiver<Action>,
    tx: Sender<Msg>,
) {
    let binder = Arc::new(DefaultBinder::new(client.clone()));
    let binds = Arc::new(Semaphore::new(opts.max_concurrent_binds.max(1)));
    let events = Events::start(client.clone(), opts.scheduler_name.clone());
    let scheduler_name = opts.scheduler_name.clone();
    while let Some(action) = actions.recv().await {
        match action {
            Action::Bind { pod, node } => {
                let Ok(permit) = binds.clone().acquire_owned().await else {
                    return;
                };
                let (binder, tx, events) = (binder.clone(), tx.clone(), events.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let result = binder.bind(pod.clone(), node.clone()).await;
                    let input = match result {
                        Ok(()) => {
                            events.record(PendingEvent {
                                message: format!(
                                    "Successfully assigned {}/{} to {node}",
                                    pod.namespace, pod.name
                                ),
                                pod: pod.clone(),
                                kind: EventType::Normal,
                                reason: "Scheduled",
                                action: "Binding",
                            });
                            Input::Bound(pod.key.clone())
                        }
                        Err(err) => Input::BindFailed {
                            key: pod.key.clone(),
                            error: err.to_string(),
                        },
                    };
                    let _ = tx.send(Msg::Input(input));
                });
            }
            Action::Failed {
                pod,
                reason,
                message,
                nomination,
                update_status,
                record_event,
            } => {
                if record_event {
                    events.record(PendingEvent {
                        pod: pod.clone(),
                        kind: EventType::Warning,
                        reason: "FailedScheduling",
                        action: "Scheduling",
                        message: message.clone(),
                    });
                }
                if update_status {
                    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
                    let patch = failure_patch(&pod, reason, &message, &nomination);
                    tokio::spawn(async move {
                        if let Err(err) = api
                            .patch_status(
                                &pod.name,
                                &PatchParams::default(),
                                &Patch::Strategic(patch),
                            )
                            .await
                        {
                            tracing::debug!(pod = %pod.key, "cannot update the pod's condition: {err}");
                        }
                    });
                }
            }
            Action::Preempt {
                victim,
                preemptor,
                node,
            } => {
                let api: Api<Pod> = Api::namespaced(client.clone(), &victim.namespace);
                let events = events.clone();
                let scheduler_name = scheduler_name.clone();
                tokio::spawn(async move {
                    let condition = json!({"status": {"conditions": [{
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "PreemptionByScheduler",
                        "message": format!("{scheduler_name}: preempting to accommodate a higher priority pod"),
                        "lastTransitionTime": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                    }]}});
                    if let Err(err) = api
                        .patch_status(
                            &victim.name,
                            &PatchParams::default(),
                            &Patch::Strategic(condition),
                        )
                        .await
                    {
                        tracing::debug!(pod = %victim.key, "cannot mark the victim: {err}");
                    }
                    let params = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: Some(victim.uid.clone()),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    match api.delete(&victim.name, &params).await {
                        Ok(_) => {
                            tracing::info!(victim = %victim.key, preemptor = %preemptor.key, %node, "preempted");
                            events.record(PendingEvent {
                                message: format!(
                                    "Preempted by pod {} on node {node}",
                                    preemptor.uid
                                ),
                                pod: victim,
                                kind: EventType::Normal,
                                reason: "Preempted",
                                action: "Preempting",
                            });
                        }
                        Err(err) => tracing::warn!(victim = %victim.key, "cannot preempt: {err}"),
                    }
                });
            }
            Action::ClearNomination { pod } => {
                let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
                tokio::spawn(async move {
                    let patch = json!({"status": {"nominatedNodeName": null}});
                    if let Err(err) = api
                        .patch_status(&pod.name, &PatchParams::default(), &Patch::Strategic(patch))
                        .await
                    {
                        tracing::debug!(pod = %pod.key, "cannot clear the nomination: {err}");
                    }
                });
            }
        }
    }
}
