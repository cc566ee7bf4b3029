//! A pod's status as kube's kubelet writes it (`generateAPIPodStatus`,
//! `pkg/kubelet/status/generate.go`): phase, the conditions PodReadyToStartContainers,
//! Initialized, Ready, ContainersReady and PodScheduled with their reasons and messages, host
//! and pod addresses, start time, QoS class, and a status per container. Pure functions of
//! what the pod worker knows ([`PodView`]), so every rule is tested here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, ContainerUser, HostIP, LinuxContainerUser, Pod,
    PodCondition, PodIP, PodSpec, PodStatus, VolumeMountStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::chrono::{DateTime, Utc};
use serde_json::Value;

use crate::runtime::Exit;

pub const PENDING: &str = "Pending";
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";

/// The condition types the kubelet owns; others (DisruptionTarget, readiness gates) are
/// left to their writers.
pub const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// One run of a container, as the runtime reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// `<runtime>://<id>`.
    pub id: String,
    pub image: String,
    pub image_id: String,
    pub started_at: DateTime<Utc>,
    /// `None` while it runs.
    pub exit: Option<Exit>,
}

/// Why a container is not running now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: Option<String>,
}

/// What the kubelet knows of one container of a pod (init or regular).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerRecord {
    pub name: String,
    pub restart_count: i32,
    /// The current run, or the last one if it ended and is not being restarted.
    pub current: Option<Instance>,
    /// The run before the current one (`lastState.terminated`).
    pub last_termination: Option<Instance>,
    /// Set while it waits to (re)start: `CrashLoopBackOff`, `RunContainerError`...
    pub waiting: Option<Waiting>,
    /// The startup probe passed (or there is none) and it runs.
    pub started: bool,
    /// The readiness probe passed (or there is none) and it runs.
    pub ready: bool,
    /// The restart back-off for the next crash (kubelet: 10 s doubling to 5 min).
    pub backoff: Duration,
    /// When it may be started again (after a back-off or a runtime error).
    pub next_start: Option<DateTime<Utc>>,
    /// The spec's image the current run was started from.
    pub spec_image: String,
}

impl ContainerRecord {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    pub fn is_running(&self) -> bool {
        self.waiting.is_none() && self.current.as_ref().is_some_and(|i| i.exit.is_none())
    }

    /// The exit of the current run, if it ended.
    pub fn exit(&self) -> Option<&Exit> {
        if self.waiting.is_some() {
            return None;
        }
        self.current.as_ref().and_then(|i| i.exit.as_ref())
    }

    fn has_started_once(&self) -> bool {
        self.current.is_some() || self.last_termination.is_some()
    }
}

/// When each condition last changed, kept so `lastTransitionTime` only moves on a change.
#[derive(Clone, Debug, Default)]
pub struct Transitions(HashMap<String, (String, Time)>);

impl Transitions {
    /// Seeded from the pod's conditions (a restarted agent keeps their times).
    pub fn from_pod(pod: &Pod) -> Self {
        let mut out = Self::default();
        for condition in pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(time) = &condition.last_transition_time {
                out.0.insert(
                    condition.type_.clone(),
                    (condition.status.clone(), time.clone()),
                );
            }
        }
        out
    }

    fn stamp(&mut self, kind: &str, status: &str, now: DateTime<Utc>) -> Time {
        match self.0.get(kind) {
            Some((previous, time)) if previous == status => time.clone(),
            _ => {
                self.0
                    .insert(kind.to_owned(), (status.to_owned(), Time(now)));
                Time(now)
            }
        }
    }
}

/// What the pod worker knows of a pod, to build its status from.
pub struct PodView<'a> {
    pub pod: &'a Pod,
    pub host_ip: IpAddr,
    /// The sandbox's address (the node's for host-network pods); `None` before it exists.
    pub pod_ip: Option<IpAddr>,
    /// A sandbox with its network is up (PodReadyToStartContainers).
    pub sandbox_ready: bool,
    pub init: &'a [ContainerRecord],
    pub containers: &'a [ContainerRecord],
    pub start_time: DateTime<Utc>,
    /// The pod is done for good (deleted and stopped): its containers will not be restarted.
    pub terminal: bool,
    /// The kubelet failed the pod: the reason and message of its status.
    pub failure: Option<(&'a str, &'a str)>,
}

fn spec(pod: &Pod) -> PodSpec {
    pod.spec.clone().unwrap_or_default()
}

/// Whether an init container is a sidecar (`restartPolicy: Always`).
pub fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// The pod's restart policy (`Always` when unset, as defaulted).
pub fn restart_policy(spec: &PodSpec) -> &str {
    spec.restart_policy.as_deref().unwrap_or("Always")
}

/// kubelet's `getPhase`.
pub fn phase(
    spec: &PodSpec,
    init: &[ContainerRecord],
    containers: &[ContainerRecord],
    terminal: bool,
) -> &'static str {
    let policy = restart_policy(spec);
    let init_specs = spec.init_containers.as_deref().unwrap_or_default();
    let mut pending_init = 0;
    let mut failed_init = 0;
    for (container, record) in init_specs.iter().zip(init) {
        if is_sidecar(container) {
            if !record.started && !record.has_started_once() {
                pending_init += 1;
            }
            continue;
        }
        match (&record.waiting, &record.current) {
            (Some(_), _) => {
                if record
                    .last_termination
                    .as_ref()
                    .and_then(|i| i.exit.as_ref())
                    .is_some_and(|e| e.code != 0)
                {
                    failed_init += 1;
                } else {
                    pending_init += 1;
                }
            }
            (None, Some(Instance { exit: Some(e), .. })) => {
                if e.code != 0 {
                    failed_init += 1;
                }
            }
            _ => pending_init += 1,
        }
    }
    let (mut unknown, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for record in containers {
        match (&record.waiting, &record.current) {
            (Some(_), _) => {
                if record.last_termination.is_some() {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
            (None, Some(Instance { exit: None, .. })) => running += 1,
            (None, Some(Instance { exit: Some(e), .. })) => {
                stopped += 1;
                if e.code == 0 {
                    succeeded += 1;
                }
            }
            // Not created yet: a default "waiting" status.
            (None, None) => waiting += 1,
        }
    }
    unknown += spec.containers.len().saturating_sub(containers.len());
    if failed_init > 0 && policy == "Never" {
        return FAILED;
    }
    if pending_init > 0 || (failed_init > 0 && !terminal) {
        return PENDING;
    }
    if waiting > 0 {
        return PENDING;
    }
    if running > 0 && unknown == 0 {
        return RUNNING;
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if terminal {
            return if stopped == succeeded {
                SUCCEEDED
            } else {
                FAILED
            };
        }
        return match policy {
            "Always" => RUNNING,
            _ if stopped == succeeded => SUCCEEDED,
            "Never" => FAILED,
            _ => RUNNING,
        };
    }
    PENDING
}

/// Go's `%s` of a `[]string`: `[a b]`.
fn go_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

/// A duration as Go prints it: `10s`, `1m20s`, `5m0s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

fn condition(
    kind: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<String>,
) -> PodCondition {
    PodCondition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: reason.map(str::to_owned),
        message,
        ..PodCondition::default()
    }
}

/// ContainersReady (kube's `GenerateContainersReadyCondition`).
fn containers_ready(view: &PodView<'_>, phase: &str) -> PodCondition {
    let spec = spec(view.pod);
    if phase == SUCCEEDED {
        return condition("ContainersReady", "False", Some("PodCompleted"), None);
    }
    if phase == FAILED {
        return condition("ContainersReady", "False", Some("PodFailed"), None);
    }
    let mut unready: Vec<&str> = Vec::new();
    let init_specs = spec.init_containers.as_deref().unwrap_or_default();
    for (container, record) in init_specs.iter().zip(view.init) {
        if is_sidecar(container) && !(record.ready && record.is_running()) {
            unready.push(&container.name);
        }
    }
    for record in view.containers {
        if !(record.ready && record.is_running()) {
            unready.push(&record.name);
        }
    }
    if unready.is_empty() {
        condition("ContainersReady", "True", None, None)
    } else {
        condition(
            "ContainersReady",
            "False",
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: {}",
                go_list(&unready)
            )),
        )
    }
}

/// Ready: ContainersReady and every readiness gate (kube's `GeneratePodReadyCondition`).
fn ready(view: &PodView<'_>, containers_ready: &PodCondition) -> PodCondition {
    if containers_ready.status != "True" {
        return PodCondition {
            type_: "Ready".to_owned(),
            ..containers_ready.clone()
        };
    }
    let existing = view
        .pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut messages = Vec::new();
    for gate in spec(view.pod).readiness_gates.unwrap_or_default() {
        match existing.iter().find(|c| c.type_ == gate.condition_type) {
            None => messages.push(format!(
                "corresponding condition of pod readiness gate {:?} does not exist.",
                gate.condition_type
            )),
            Some(c) if c.status != "True" => messages.push(format!(
                "the status of pod readiness gate {:?} is not \"True\", but {}",
                gate.condition_type, c.status
            )),
            Some(_) => {}
        }
    }
    if messages.is_empty() {
        condition("Ready", "True", None, None)
    } else {
        condition(
            "Ready",
            "False",
            Some("ReadinessGatesNotReady"),
            Some(messages.join(", ")),
        )
    }
}

/// Initialized (kube's `GeneratePodInitializedCondition`).
fn initialized(view: &PodView<'_>, phase: &str) -> PodCondition {
    let spec = spec(view.pod);
    if phase == SUCCEEDED {
        return condition("Initialized", "True", Some("PodCompleted"), None);
    }
    // A regular container that ran means the pod was initialized (a sidecar may restart).
    if view
        .containers
        .iter()
        .any(ContainerRecord::has_started_once)
    {
        return condition("Initialized", "True", None, None);
    }
    let mut incomplete: Vec<&str> = Vec::new();
    for (container, record) in spec
        .init_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .zip(view.init)
    {
        let done = if is_sidecar(container) {
            record.started
        } else {
            record.exit().is_some_and(|e| e.code == 0)
        };
        if !done {
            incomplete.push(&container.name);
        }
    }
    if incomplete.is_empty() {
        condition("Initialized", "True", None, None)
    } else {
        condition(
            "Initialized",
            "False",
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                go_list(&incomplete)
            )),
        )
    }
}

fn terminated(instance: &Instance, exit: &Exit) -> ContainerStateTerminated {
    ContainerStateTerminated {
        container_id: Some(instance.id.clone()),
        exit_code: exit.code,
        reason: Some(exit.reason.clone()),
        message: exit.message.clone(),
        started_at: Some(Time(instance.started_at)),
        finished_at: Some(Time(exit.finished_at)),
        ..ContainerStateTerminated::default()
    }
}

fn volume_mounts(container: &Container) -> Option<Vec<VolumeMountStatus>> {
    let mounts = container.volume_mounts.as_ref()?;
    Some(
        mounts
            .iter()
            .map(|m| {
                let read_only = m.read_only == Some(true);
                VolumeMountStatus {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: read_only.then_some(true),
                    recursive_read_only: read_only.then(|| {
                        m.recursive_read_only
                            .clone()
                            .unwrap_or_else(|| "Disabled".to_owned())
                    }),
                }
            })
            .collect(),
    )
}

/// The identity the container's first process runs with: `runAsUser`/`runAsGroup` (the
/// container's over the pod's), root otherwise, plus the pod's supplemental groups.
fn user(spec: &PodSpec, container: &Container) -> ContainerUser {
    let pod_sc = spec.security_context.as_ref();
    let sc = container.security_context.as_ref();
    let uid = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_sc.and_then(|s| s.run_as_user))
        .unwrap_or(0);
    let gid = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_sc.and_then(|s| s.run_as_group))
        .unwrap_or(0);
    let mut groups = vec![gid];
    for g in pod_sc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
    {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    ContainerUser {
        linux: Some(LinuxContainerUser {
            uid,
            gid,
            supplemental_groups: Some(groups),
        }),
    }
}

fn container_status(
    spec: &PodSpec,
    container: &Container,
    record: &ContainerRecord,
    default_waiting: &str,
    init: bool,
) -> ContainerStatus {
    let running = record.is_running();
    // An init container that completed counts as ready (kube's prober manager).
    let ready = if init && !is_sidecar(container) {
        record.exit().is_some_and(|e| e.code == 0)
    } else {
        running && record.ready
    };
    let state = match (&record.waiting, &record.current) {
        (Some(w), _) => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(w.reason.clone()),
                message: w.message.clone(),
            }),
            ..ContainerState::default()
        },
        (None, Some(instance)) => match &instance.exit {
            None => ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(instance.started_at)),
                }),
                ..ContainerState::default()
            },
            Some(exit) => ContainerState {
                terminated: Some(terminated(instance, exit)),
                ..ContainerState::default()
            },
        },
        (None, None) => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(default_waiting.to_owned()),
                message: None,
            }),
            ..ContainerState::default()
        },
    };
    let last_state = match &record.last_termination {
        Some(instance) => match &instance.exit {
            Some(exit) => ContainerState {
                terminated: Some(terminated(instance, exit)),
                ..ContainerState::default()
            },
            None => ContainerState::default(),
        },
        None => ContainerState::default(),
    };
    // The image the runtime runs; before any run, the spec's.
    let shown = record
        .current
        .as_ref()
        .filter(|_| record.waiting.is_none())
        .or(record.last_termination.as_ref());
    let has_run = shown.is_some();
    ContainerStatus {
        name: container.name.clone(),
        image: shown.map_or_else(
            || container.image.clone().unwrap_or_default(),
            |i| i.image.clone(),
        ),
        image_id: shown.map(|i| i.image_id.clone()).unwrap_or_default(),
        container_id: record
            .current
            .as_ref()
            .filter(|_| record.waiting.is_none())
            .map(|i| i.id.clone()),
        ready,
        started: Some(running && record.started),
        restart_count: record.restart_count,
        state: Some(state),
        last_state: Some(last_state),
        volume_mounts: volume_mounts(container),
        user: has_run.then(|| user(spec, container)),
        ..ContainerStatus::default()
    }
}

/// The pod's QoS class (kube's `GetPodQOS`, shared with the API server, which sets it when
/// the pod is created).
pub fn qos_class(spec: &PodSpec) -> &'static str {
    rkube_api::pods::qos_class(&serde_json::to_value(spec).unwrap_or_default())
}

/// The pod's status.
pub fn build(view: &PodView<'_>, transitions: &mut Transitions, now: DateTime<Utc>) -> PodStatus {
    let spec = spec(view.pod);
    let phase = match view.failure {
        Some(_) => FAILED,
        None => phase(&spec, view.init, view.containers, view.terminal),
    };
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let default_waiting = if init_specs.is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let init_statuses: Vec<ContainerStatus> = init_specs
        .iter()
        .zip(view.init)
        .map(|(c, r)| container_status(&spec, c, r, default_waiting, true))
        .collect();
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .zip(view.containers)
        .map(|(c, r)| container_status(&spec, c, r, default_waiting, false))
        .collect();

    let sandbox = condition(
        "PodReadyToStartContainers",
        if view.sandbox_ready { "True" } else { "False" },
        None,
        None,
    );
    let containers_ready = containers_ready(view, phase);
    let ready = ready(view, &containers_ready);
    let scheduled = condition("PodScheduled", "True", None, None);
    let mut conditions = vec![
        sandbox,
        initialized(view, phase),
        ready,
        containers_ready,
        scheduled,
    ];
    for c in &mut conditions {
        c.last_transition_time = Some(transitions.stamp(&c.type_, &c.status, now));
    }

    let existing_qos = view.pod.status.as_ref().and_then(|s| s.qos_class.clone());
    PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(conditions),
        host_ip: Some(view.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: view.host_ip.to_string(),
        }]),
        pod_ip: view.pod_ip.map(|ip| ip.to_string()),
        pod_ips: view.pod_ip.map(|ip| vec![PodIP { ip: ip.to_string() }]),
        start_time: Some(Time(view.start_time)),
        qos_class: Some(existing_qos.unwrap_or_else(|| qos_class(&spec).to_owned())),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        reason: view.failure.map(|(reason, _)| reason.to_owned()),
        message: view.failure.map(|(_, message)| message.to_owned()),
        ..PodStatus::default()
    }
}

/// The status as JSON for a patch.
pub fn to_json(status: &PodStatus) -> Value {
    serde_json::to_value(status).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PodReadinessGate, PodSecurityContext, ResourceRequirements, VolumeMount,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn container(name: &str) -> Container {
        Container {
            name: name.into(),
            image: Some("busybox".into()),
            ..Container::default()
        }
    }

    fn pod(containers: &[&str], init: &[&str], policy: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: containers.iter().map(|n| container(n)).collect(),
                init_containers: (!init.is_empty())
                    .then(|| init.iter().map(|n| container(n)).collect()),
                restart_policy: Some(policy.into()),
                ..PodSpec::default()
            }),
            status: None,
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("a valid time")
    }

    fn instance(id: &str, exit: Option<i32>) -> Instance {
        Instance {
            id: format!("rkube-simulated://{id}"),
            image: "docker.io/library/busybox:latest".into(),
            image_id: "docker.io/library/busybox@sha256:00".into(),
            started_at: t(1),
            exit: exit.map(|code| Exit::with_code(code, t(2))),
        }
    }

    fn running(name: &str) -> ContainerRecord {
        ContainerRecord {
            current: Some(instance(name, None)),
            started: true,
            ready: true,
            ..ContainerRecord::new(name)
        }
    }

    fn exited(name: &str, code: i32) -> ContainerRecord {
        ContainerRecord {
            current: Some(instance(name, Some(code))),
            ..ContainerRecord::new(name)
        }
    }

    fn view<'a>(
        pod: &'a Pod,
        init: &'a [ContainerRecord],
        containers: &'a [ContainerRecord],
        sandbox: bool,
    ) -> PodView<'a> {
        PodView {
            pod,
            host_ip: "10.200.0.2".parse().expect("ip"),
            pod_ip: sandbox.then(|| "10.42.1.2".parse().expect("ip")),
            sandbox_ready: sandbox,
            init,
            containers,
            start_time: t(0),
            terminal: false,
            failure: None,
        }
    }

    fn conditions(status: &PodStatus) -> Vec<(String, String, Option<String>)> {
        status
            .conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    fn cond(kind: &str, status: &str, reason: Option<&str>) -> (String, String, Option<String>) {
        (kind.into(), status.into(), reason.map(Into::into))
    }

    #[test]
    fn a_running_pod_is_ready_with_every_field_kubelet_sets() {
        let pod = pod(&["app"], &[], "Always");
        let containers = [running("app")];
        let mut transitions = Transitions::default();
        let status = build(&view(&pod, &[], &containers, true), &mut transitions, t(5));
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(
            conditions(&status),
            [
                cond("PodReadyToStartContainers", "True", None),
                cond("Initialized", "True", None),
                cond("Ready", "True", None),
                cond("ContainersReady", "True", None),
                cond("PodScheduled", "True", None),
            ]
        );
        assert_eq!(status.host_ip.as_deref(), Some("10.200.0.2"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.42.1.2"));
        assert_eq!(status.pod_ips.as_ref().map(Vec::len), Some(1));
        assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
        assert_eq!(status.start_time, Some(Time(t(0))));
        let c = &status.container_statuses.as_ref().expect("statuses")[0];
        assert!(c.ready);
        assert_eq!(c.started, Some(true));
        assert_eq!(c.container_id.as_deref(), Some("rkube-simulated://app"));
        assert_eq!(c.image, "docker.io/library/busybox:latest");
        assert_eq!(
            c.state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.clone()),
            Some(Time(t(1)))
        );
        let json = to_json(&status);
        assert_eq!(
            json["containerStatuses"][0]["lastState"],
            serde_json::json!({})
        );
        assert_eq!(json["containerStatuses"][0]["user"]["linux"]["uid"], 0);
    }

    #[test]
    fn a_pod_the_kubelet_failed_is_failed_with_its_reason_whatever_its_containers_did() {
        let pod = pod(&["app"], &[], "Always");
        let containers = [running("app")];
        let mut transitions = Transitions::default();
        let mut failed = view(&pod, &[], &containers, true);
        failed.failure = Some(("DeadlineExceeded", "too long"));
        let status = build(&failed, &mut transitions, t(5));
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
        assert_eq!(status.message.as_deref(), Some("too long"));
        let json = to_json(&status);
        assert_eq!(json["reason"], "DeadlineExceeded");
        let status = build(&view(&pod, &[], &containers, true), &mut transitions, t(5));
        assert_eq!(status.reason, None);
    }

    #[test]
    fn before_the_sandbox_containers_are_creating() {
        let pod = pod(&["a", "b"], &[], "Always");
        let containers = [ContainerRecord::new("a"), ContainerRecord::new("b")];
        let status = build(
            &view(&pod, &[], &containers, false),
            &mut Transitions::default(),
            t(5),
        );
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert_eq!(status.pod_ip, None);
        let c = &status.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("ContainerCreating")
        );
        assert_eq!(c.image, "busybox");
        assert_eq!(c.image_id, "");
        assert_eq!(c.user, None);
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [a b]")
        );
    }

    #[test]
    fn completed_pods_by_restart_policy() {
        let spec = |policy: &str| pod(&["c"], &[], policy).spec.expect("spec");
        let ok = [exited("c", 0)];
        let bad = [exited("c", 1)];
        assert_eq!(phase(&spec("Never"), &[], &ok, false), SUCCEEDED);
        assert_eq!(phase(&spec("OnFailure"), &[], &ok, false), SUCCEEDED);
        assert_eq!(phase(&spec("Always"), &[], &ok, false), RUNNING);
        assert_eq!(phase(&spec("Never"), &[], &bad, false), FAILED);
        assert_eq!(phase(&spec("OnFailure"), &[], &bad, false), RUNNING);
        // Deleted and stopped: terminal whatever the policy.
        assert_eq!(phase(&spec("Always"), &[], &ok, true), SUCCEEDED);
        assert_eq!(phase(&spec("Always"), &[], &bad, true), FAILED);

        let pod = pod(&["c"], &[], "Never");
        let mut v = view(&pod, &[], &ok, false);
        v.terminal = false;
        let status = build(&v, &mut Transitions::default(), t(5));
        assert_eq!(status.phase.as_deref(), Some("Succeeded"));
        assert_eq!(
            conditions(&status),
            [
                cond("PodReadyToStartContainers", "False", None),
                cond("Initialized", "True", Some("PodCompleted")),
                cond("Ready", "False", Some("PodCompleted")),
                cond("ContainersReady", "False", Some("PodCompleted")),
                cond("PodScheduled", "True", None),
            ]
        );
        let c = &status.container_statuses.as_ref().expect("statuses")[0];
        let done = c
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("terminated");
        assert_eq!(
            (done.exit_code, done.reason.as_deref()),
            (0, Some("Completed"))
        );
        assert_eq!(c.started, Some(false));
        assert!(!c.ready);
        // Failed: PodFailed.
        let status = build(
            &view(&pod, &[], &bad, false),
            &mut Transitions::default(),
            t(5),
        );
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        assert!(conditions(&status).contains(&cond("Ready", "False", Some("PodFailed"))));
    }

    #[test]
    fn crash_loop_back_off_keeps_the_last_termination() {
        let pod = pod(&["c"], &[], "Always");
        let record = ContainerRecord {
            restart_count: 2,
            last_termination: Some(instance("old", Some(1))),
            waiting: Some(Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(
                    "back-off 20s restarting failed container=c pod=p_default(u1)".into(),
                ),
            }),
            ..ContainerRecord::new("c")
        };
        let containers = [record];
        let spec = pod.spec.clone().expect("spec");
        assert_eq!(phase(&spec, &[], &containers, false), RUNNING);
        let status = build(
            &view(&pod, &[], &containers, true),
            &mut Transitions::default(),
            t(5),
        );
        let c = &status.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(c.restart_count, 2);
        assert_eq!(c.container_id, None);
        assert_eq!(
            c.last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code),
            Some(1)
        );
        assert_eq!(
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("CrashLoopBackOff")
        );
    }

    #[test]
    fn init_containers_gate_the_pod() {
        let pod = pod(&["app"], &["setup"], "Always");
        let spec = pod.spec.clone().expect("spec");
        let waiting_app = [ContainerRecord::new("app")];
        // Init running: Pending, Initialized False, regular containers PodInitializing.
        let init = [running("setup")];
        assert_eq!(phase(&spec, &init, &waiting_app, false), PENDING);
        let status = build(
            &view(&pod, &init, &waiting_app, true),
            &mut Transitions::default(),
            t(5),
        );
        assert!(conditions(&status).contains(&cond(
            "Initialized",
            "False",
            Some("ContainersNotInitialized")
        )));
        let app = &status.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(
            app.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("PodInitializing")
        );
        // Init done: Initialized True, init status terminated Completed.
        let init = [exited("setup", 0)];
        let containers = [running("app")];
        let status = build(
            &view(&pod, &init, &containers, true),
            &mut Transitions::default(),
            t(5),
        );
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(conditions(&status).contains(&cond("Initialized", "True", None)));
        let setup = &status
            .init_container_statuses
            .as_ref()
            .expect("init statuses")[0];
        assert_eq!(
            setup
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.reason.as_deref()),
            Some("Completed")
        );
        // A failed init container fails a Never pod.
        let never = self::pod(&["app"], &["setup"], "Never").spec.expect("spec");
        assert_eq!(
            phase(&never, &[exited("setup", 1)], &waiting_app, false),
            FAILED
        );
    }

    #[test]
    fn transition_times_move_only_on_change() {
        let pod = pod(&["app"], &[], "Always");
        let mut transitions = Transitions::default();
        let creating = [ContainerRecord::new("app")];
        let first = build(&view(&pod, &[], &creating, false), &mut transitions, t(1));
        let containers = [running("app")];
        let second = build(&view(&pod, &[], &containers, true), &mut transitions, t(9));
        let time = |s: &PodStatus, kind: &str| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == kind)
                .and_then(|c| c.last_transition_time.clone())
        };
        assert_eq!(time(&first, "PodScheduled"), Some(Time(t(1))));
        assert_eq!(time(&second, "PodScheduled"), Some(Time(t(1))));
        assert_eq!(time(&second, "Ready"), Some(Time(t(9))));
        // An agent that restarts keeps the times the pod has.
        let mut seen = pod.clone();
        seen.status = Some(second.clone());
        let mut seeded = Transitions::from_pod(&seen);
        let third = build(&view(&pod, &[], &containers, true), &mut seeded, t(20));
        assert_eq!(time(&third, "Ready"), Some(Time(t(9))));
    }

    #[test]
    fn readiness_gates_hold_ready_back() {
        let mut pod = pod(&["app"], &[], "Always");
        if let Some(spec) = pod.spec.as_mut() {
            spec.readiness_gates = Some(vec![PodReadinessGate {
                condition_type: "example.com/lb".into(),
            }]);
        }
        let containers = [running("app")];
        let status = build(
            &view(&pod, &[], &containers, true),
            &mut Transitions::default(),
            t(5),
        );
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some(
                "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
            )
        );
        assert!(conditions(&status).contains(&cond("ContainersReady", "True", None)));
    }

    #[test]
    fn qos_classes() {
        let with = |requests: &[(&str, &str)], limits: &[(&str, &str)]| {
            let map = |pairs: &[(&str, &str)]| {
                (!pairs.is_empty()).then(|| {
                    pairs
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
                        .collect()
                })
            };
            let mut c = container("c");
            c.resources = Some(ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
                ..ResourceRequirements::default()
            });
            PodSpec {
                containers: vec![c],
                ..PodSpec::default()
            }
        };
        assert_eq!(qos_class(&with(&[], &[])), "BestEffort");
        assert_eq!(qos_class(&with(&[("cpu", "100m")], &[])), "Burstable");
        assert_eq!(
            qos_class(&with(
                &[("cpu", "1"), ("memory", "1Gi")],
                &[("cpu", "1000m"), ("memory", "1024Mi")]
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&with(
                &[("cpu", "500m"), ("memory", "1Gi")],
                &[("cpu", "1"), ("memory", "1Gi")]
            )),
            "Burstable"
        );
        assert_eq!(qos_class(&with(&[], &[("cpu", "1")])), "Burstable");
    }

    #[test]
    fn volume_mounts_and_users_in_container_status() {
        let mut pod = pod(&["app"], &[], "Always");
        if let Some(spec) = pod.spec.as_mut() {
            spec.security_context = Some(PodSecurityContext {
                run_as_user: Some(1000),
                run_as_group: Some(3000),
                supplemental_groups: Some(vec![4000]),
                ..PodSecurityContext::default()
            });
            spec.containers[0].volume_mounts = Some(vec![
                VolumeMount {
                    name: "token".into(),
                    mount_path: "/var/run/secrets/kubernetes.io/serviceaccount".into(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
                VolumeMount {
                    name: "data".into(),
                    mount_path: "/data".into(),
                    ..VolumeMount::default()
                },
            ]);
        }
        let containers = [running("app")];
        let json = to_json(&build(
            &view(&pod, &[], &containers, true),
            &mut Transitions::default(),
            t(5),
        ));
        let status = &json["containerStatuses"][0];
        assert_eq!(
            status["volumeMounts"],
            serde_json::json!([
                {"name": "token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true, "recursiveReadOnly": "Disabled"},
                {"name": "data", "mountPath": "/data"},
            ])
        );
        assert_eq!(
            status["user"],
            serde_json::json!({"linux": {"uid": 1000, "gid": 3000, "supplementalGroups": [3000, 4000]}})
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(3700)), "1h1m40s");
    }
}
