//! The Job controller, as kube-controller-manager v1.33 runs it.
//!
//! - Pods are created from the template, `parallelism` at a time and never more than the
//!   completions left, named `JOB-xxxxx` (`JOB-INDEX-xxxxx` for Indexed jobs, which also get
//!   the `batch.kubernetes.io/job-completion-index` annotation and label, the hostname
//!   `JOB-INDEX` and the `JOB_COMPLETION_INDEX` variable).
//! - Every pod carries the `batch.kubernetes.io/job-tracking` finalizer, so a finished pod is
//!   counted exactly once even if it is deleted at once: its uid first goes to
//!   `status.uncountedTerminatedPods`, then the finalizer is removed, then the uid moves to the
//!   `succeeded`/`failed` counters (or `completedIndexes`).
//! - Failed pods are replaced after an exponential back-off (10 s, doubling, at most 10 min);
//!   past `backoffLimit` failures, or `activeDeadlineSeconds` after the start, the job gets
//!   `FailureTarget`, its pods are deleted, and once none is left, `Failed` (reasons
//!   BackoffLimitExceeded, DeadlineExceeded). Enough successes give `SuccessCriteriaMet`,
//!   then `Complete` with `completionTime`.
//! - `suspend` deletes the active pods and sets the Suspended condition; resuming resets
//!   `startTime`.
//!
//! Expectations (creations, deletions and finalizer removals not yet seen in the cache) stop
//! the controller from acting on a cache that lags behind its own writes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::batchutil::{
    Expectations, SLOW_START_INITIAL_BATCH, UidExpectations, controlled_by, controller_key,
    controller_of, controller_ref, is_active, is_not_found, is_ready, json_patch, phase,
    slow_start,
};
use crate::events::{Recorder, Type};
use crate::informer::{Change, Informer, split_key};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

/// The finalizer that keeps a job's pod until the job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// An Indexed job's pod's completion index (annotation and label).
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable with the completion index.
const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// kube's DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(600);
/// kube's MaxUncountedPods and MaxPodCreateDeletePerSync.
const MAX_UNCOUNTED: usize = 500;
const MAX_CREATE_DELETE_PER_SYNC: usize = 500;

/// Pod failures since the last success, for the replacement back-off.
#[derive(Default, Clone)]
struct Backoff {
    failures: u32,
    last_failure: Option<DateTime<Utc>>,
    seen: HashSet<String>,
}

impl Backoff {
    fn remaining(&self, now: DateTime<Utc>) -> Duration {
        let (Some(last), true) = (self.last_failure, self.failures > 0) else {
            return Duration::ZERO;
        };
        let delay = BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(self.failures.saturating_sub(1).min(16)))
            .min(BACKOFF_MAX);
        let elapsed = (now - last).to_std().unwrap_or(Duration::ZERO);
        delay.saturating_sub(elapsed)
    }
}

struct Controller {
    ctx: Context,
    /// Events come from this controller, as kube-controller-manager names it.
    recorder: Recorder,
    jobs: Informer<Job>,
    pods: Informer<Pod>,
    expectations: Arc<Expectations>,
    finalizers: Arc<UidExpectations>,
    backoff: Mutex<HashMap<String, Backoff>>,
}

pub fn start(ctx: &Context, options: &Options) {
    let jobs = ctx.informer::<Job>();
    let pods = ctx.informer::<Pod>();
    let queue = WorkQueue::default();
    let expectations = Arc::new(Expectations::default());
    let finalizers = Arc::new(UidExpectations::default());
    let q = queue.clone();
    on_change(&jobs, ctx.stop.clone(), move |change| {
        q.add(crate::informer::key_of(change.object().as_ref()));
    });
    let q = queue.clone();
    let (e, f) = (expectations.clone(), finalizers.clone());
    on_change(&pods, ctx.stop.clone(), move |change| {
        observe_pod(change, &q, &e, &f);
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        recorder: Recorder::new(ctx.client.clone(), "job-controller"),
        jobs,
        pods,
        expectations,
        finalizers,
        backoff: Mutex::default(),
    });
    run_workers(controller, queue, options.workers, ctx.stop.clone());
}

fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
}

/// Feeds a pod change into the owning job's expectations and queue.
fn observe_pod(change: &Change<Pod>, queue: &WorkQueue, exp: &Expectations, fin: &UidExpectations) {
    let uid = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
    match change {
        Change::Added(pod) => {
            if let Some(key) = controller_key(&pod.metadata, "Job") {
                exp.creation_observed(&key);
                queue.add(key);
            }
        }
        Change::Updated(old, new) => {
            let old_key = controller_key(&old.metadata, "Job");
            let new_key = controller_key(&new.metadata, "Job");
            if let Some(key) = &new_key {
                if new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                {
                    exp.deletion_observed(key);
                }
                if !has_tracking_finalizer(new) {
                    fin.observed(key, &uid(new));
                }
                queue.add(key.clone());
            }
            if let Some(key) = old_key
                && Some(&key) != new_key.as_ref()
            {
                queue.add(key);
            }
        }
        Change::Deleted(pod) => {
            if let Some(key) = controller_key(&pod.metadata, "Job") {
                if pod.metadata.deletion_timestamp.is_none() {
                    exp.deletion_observed(&key);
                }
                fin.observed(&key, &uid(pod));
                queue.add(key);
            }
        }
    }
}

/// The pod's completion index, if it has a valid one.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let from = |m: &Option<BTreeMap<String, String>>| {
        m.as_ref()
            .and_then(|m| m.get(COMPLETION_INDEX))
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|i| *i >= 0)
    };
    from(&pod.metadata.annotations).or_else(|| from(&pod.metadata.labels))
}

/// Parses `status.completedIndexes` ("1,3-5,7").
pub fn parse_indexes(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        if let (Ok(lo), Ok(hi)) = (lo, hi) {
            for i in lo.max(0)..=hi.min(completions - 1) {
                out.insert(i);
            }
        }
    }
    out
}

/// Formats indexes as `status.completedIndexes` does: ascending, runs as ranges.
pub fn format_indexes(indexes: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        if first == last {
            parts.push(first.to_string());
        } else {
            parts.push(format!("{first}-{last}"));
        }
    }
    parts.join(",")
}

/// The lowest `count` indexes below `completions` that have neither succeeded nor an active
/// pod (kube's firstPendingIndexes).
pub fn first_pending_indexes(
    succeeded: &BTreeSet<i32>,
    active: &HashSet<i32>,
    count: usize,
    completions: i32,
) -> Vec<i32> {
    (0..completions.max(0))
        .filter(|i| !succeeded.contains(i) && !active.contains(i))
        .take(count)
        .collect()
}

fn condition_true<'a>(status: Option<&'a JobStatus>, kind: &str) -> Option<&'a JobCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
}

/// Complete or Failed.
pub fn is_finished(job: &Job) -> bool {
    condition_true(job.status.as_ref(), "Complete").is_some()
        || condition_true(job.status.as_ref(), "Failed").is_some()
}

/// When the job finished (its Complete or Failed condition's transition time).
pub fn finish_time(job: &Job) -> Option<DateTime<Utc>> {
    ["Complete", "Failed"].iter().find_map(|kind| {
        condition_true(job.status.as_ref(), kind)
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
    })
}

/// Sets a condition's status (kube's ensureJobConditionStatus): a new condition is only added
/// when true; a changed one gets a new transition time. Returns whether anything changed.
fn ensure_condition(
    conditions: &mut Vec<JobCondition>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> bool {
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == kind) {
        if c.status != status
            || c.reason.as_deref() != Some(reason)
            || c.message.as_deref() != Some(message)
        {
            if c.status != status {
                c.last_transition_time = Some(Time(now));
            }
            c.status = status.to_owned();
            c.reason = Some(reason.to_owned());
            c.message = Some(message.to_owned());
            c.last_probe_time = Some(Time(now));
            return true;
        }
        return false;
    }
    if status != "True" {
        return false;
    }
    conditions.push(JobCondition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    });
    true
}

/// A terminal condition being reached: the interim type written first, the final type
/// written once no pod is left running.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Finish {
    success: bool,
    reason: String,
    message: String,
}

impl Finish {
    fn interim(&self) -> &'static str {
        if self.success {
            "SuccessCriteriaMet"
        } else {
            "FailureTarget"
        }
    }
    fn terminal(&self) -> &'static str {
        if self.success { "Complete" } else { "Failed" }
    }
}

/// The status as Go writes it: zero counters and empty lists omitted (`ready` and
/// `terminating` are pointers and stay).
fn normalized(mut status: JobStatus) -> JobStatus {
    for n in [
        &mut status.active,
        &mut status.succeeded,
        &mut status.failed,
    ] {
        if *n == Some(0) {
            *n = None;
        }
    }
    if status.completed_indexes.as_deref() == Some("") {
        status.completed_indexes = None;
    }
    let mut uncounted = status.uncounted_terminated_pods.take().unwrap_or_default();
    for list in [&mut uncounted.succeeded, &mut uncounted.failed] {
        if list.as_ref().is_some_and(Vec::is_empty) {
            *list = None;
        }
    }
    status.uncounted_terminated_pods = Some(uncounted);
    status
}

/// With restartPolicy OnFailure, container restarts count against the backoff limit.
fn past_backoff_limit_on_failure(job: &Job, active: &[Arc<Pod>]) -> bool {
    let Some(spec) = job.spec.as_ref() else {
        return false;
    };
    if spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        != Some("OnFailure")
    {
        return false;
    }
    let restarts: i32 = active
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending" | ""))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum();
    match spec.backoff_limit.unwrap_or(6) {
        0 => restarts > 0,
        limit => restarts >= limit,
    }
}

/// A pod counts as failed when Failed, or when deleted before it succeeded (with the
/// default podReplacementPolicy, as orphaned pods never reach a phase).
fn is_pod_failed(pod: &Pod, job: &Job) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    let spec = job.spec.as_ref();
    let only_failed = spec.is_some_and(|s| {
        s.pod_failure_policy.is_some() || s.pod_replacement_policy.as_deref() == Some("Failed")
    });
    !only_failed && pod.metadata.deletion_timestamp.is_some() && phase(pod) != "Succeeded"
}

/// When a pod finished: its containers' latest termination, else its deletion, else now.
fn finished_at(pod: &Pod, now: DateTime<Utc>) -> DateTime<Utc> {
    let terminated = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    terminated
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now)
}

/// Which active pods to delete to get rid of `at_least` of them, plus (Indexed) those with
/// a bad, duplicated or already succeeded index: not ready and unscheduled ones first,
/// newest first.
fn pods_for_removal(
    job: &Job,
    active: &[Arc<Pod>],
    at_least: usize,
    succeeded: &BTreeSet<i32>,
) -> Vec<Arc<Pod>> {
    let mut rank: Vec<Arc<Pod>> = active.to_vec();
    rank.sort_by(|a, b| {
        let key = |p: &Pod| {
            (
                p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some(),
                is_ready(p),
                std::cmp::Reverse(p.metadata.creation_timestamp.clone()),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut remove: Vec<Arc<Pod>> = Vec::new();
    let mut keep: Vec<Arc<Pod>> = Vec::new();
    if is_indexed(job) {
        let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
        let mut seen: HashSet<i32> = HashSet::new();
        // Keep the best pod of each index: iterate best first.
        for pod in rank.iter().rev() {
            match completion_index(pod) {
                Some(i) if i < completions && !succeeded.contains(&i) && seen.insert(i) => {
                    keep.push(pod.clone());
                }
                _ => remove.push(pod.clone()),
            }
        }
        keep.reverse();
    } else {
        keep = rank;
    }
    let more = at_least.saturating_sub(remove.len());
    remove.extend(keep.into_iter().take(more));
    remove
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

/// A pod for the job (and index), as kube's job controller builds it.
fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let name = job.name_any();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    let mut finalizers = tmeta.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_owned());
    }
    let mut spec = template.spec.unwrap_or_default();
    let generate_name = match index {
        Some(i) => {
            annotations.insert(COMPLETION_INDEX.to_owned(), i.to_string());
            labels.insert(COMPLETION_INDEX.to_owned(), i.to_string());
            if spec.hostname.as_deref().unwrap_or("").is_empty() {
                spec.hostname = Some(format!("{name}-{i}"));
            }
            let env = EnvVar {
                name: COMPLETION_INDEX_ENV.to_owned(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                    }),
                    ..EnvVarSource::default()
                }),
            };
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                let vars = c.env.get_or_insert_with(Vec::new);
                if !vars.iter().any(|v| v.name == COMPLETION_INDEX_ENV) {
                    vars.push(env.clone());
                }
            }
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_ref(job)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// What one sync learned about the job's pods.
struct Counts {
    active: Vec<Arc<Pod>>,
    terminating: i32,
    ready: i32,
    succeeded: i32,
    failed: i32,
    succeeded_indexes: BTreeSet<i32>,
    /// Pods created in this sync (not in the cache yet).
    created: usize,
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "job"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        if !(self.jobs.has_synced() && self.pods.has_synced()) {
            return Ok(Next::After(Duration::from_millis(200)));
        }
        let Some(job) = self.jobs.get(&key) else {
            self.expectations.forget(&key);
            self.finalizers.forget(&key);
            self.lock_backoff().remove(&key);
            self.release_orphans(&key, None).await?;
            return Ok(Next::Done);
        };
        let uid = job.metadata.uid.clone().unwrap_or_default();
        self.release_orphans(&key, Some(&uid)).await?;
        if is_finished(&job) {
            self.lock_backoff().remove(&key);
            // Pods left over (counted already) lose their finalizer.
            let leftovers: Vec<Arc<Pod>> = self
                .owned_pods(&job)
                .into_iter()
                .filter(|p| has_tracking_finalizer(p))
                .collect();
            self.remove_finalizers(&key, &leftovers).await?;
            return Ok(Next::Done);
        }
        self.sync(&key, &job).await
    }
}

impl Controller {
    fn lock_backoff(&self) -> std::sync::MutexGuard<'_, HashMap<String, Backoff>> {
        self.backoff.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn owned_pods(&self, job: &Job) -> Vec<Arc<Pod>> {
        let uid = job.metadata.uid.as_deref().unwrap_or("");
        self.pods
            .list_in(&job.namespace().unwrap_or_default())
            .into_iter()
            .filter(|p| controlled_by(&p.metadata, uid))
            .collect()
    }

    /// Removes the tracking finalizer from pods whose job (named by `key`) is gone or was
    /// replaced by another with the same name: nobody will count them.
    async fn release_orphans(&self, key: &str, live_uid: Option<&str>) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let orphans: Vec<Arc<Pod>> = self
            .pods
            .list_in(ns.unwrap_or(""))
            .into_iter()
            .filter(|p| has_tracking_finalizer(p))
            .filter(|p| {
                controller_of(&p.metadata).is_some_and(|r| {
                    r.kind == "Job" && r.name == name && Some(r.uid.as_str()) != live_uid
                })
            })
            .collect();
        if orphans.is_empty() {
            return Ok(());
        }
        // The cache may lag: only release them if the API server agrees the job is gone.
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns.unwrap_or(""));
        let live = api.get_opt(name).await?;
        let live_uid = live.and_then(|j| j.metadata.uid);
        let orphans: Vec<Arc<Pod>> = orphans
            .into_iter()
            .filter(|p| {
                controller_of(&p.metadata).is_some_and(|r| Some(&r.uid) != live_uid.as_ref())
            })
            .collect();
        self.remove_finalizers(key, &orphans).await
    }

    async fn remove_finalizers(&self, key: &str, pods: &[Arc<Pod>]) -> anyhow::Result<()> {
        let mut first_error = None;
        for pod in pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let Some(finalizers) = &pod.metadata.finalizers else {
                continue;
            };
            let Some(pos) = finalizers.iter().position(|f| f == TRACKING_FINALIZER) else {
                continue;
            };
            let api: Api<Pod> = Api::namespaced(
                self.ctx.client.clone(),
                &pod.namespace().unwrap_or_default(),
            );
            let patch = json_patch(vec![
                json!({"op": "test", "path": format!("/metadata/finalizers/{pos}"), "value": TRACKING_FINALIZER}),
                json!({"op": "remove", "path": format!("/metadata/finalizers/{pos}")}),
            ])?;
            self.finalizers.expect(key, &uid);
            match api
                .patch(&pod.name_any(), &kube::api::PatchParams::default(), &patch)
                .await
            {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => self.finalizers.observed(key, &uid),
                Err(err) => {
                    self.finalizers.observed(key, &uid);
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }

    fn count(&self, job: &Job, pods: &[Arc<Pod>], pending_rm: &HashSet<String>) -> Counts {
        let status = job.status.clone().unwrap_or_default();
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let un_s: HashSet<&String> = uncounted.succeeded.iter().flatten().collect();
        let un_f: HashSet<&String> = uncounted.failed.iter().flatten().collect();
        let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
        let mut succeeded = status.succeeded.unwrap_or(0) + i32::try_from(un_s.len()).unwrap_or(0);
        let mut failed = status.failed.unwrap_or(0) + i32::try_from(un_f.len()).unwrap_or(0);
        let mut succeeded_indexes = parse_indexes(
            status.completed_indexes.as_deref().unwrap_or(""),
            completions,
        );
        let mut active = Vec::new();
        let (mut terminating, mut ready) = (0, 0);
        for pod in pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if is_active(pod) {
                if is_ready(pod) {
                    ready += 1;
                }
                active.push(pod.clone());
            } else if pod.metadata.deletion_timestamp.is_some()
                && !crate::batchutil::is_terminal(pod)
            {
                terminating += 1;
            }
            if !has_tracking_finalizer(pod) || pending_rm.contains(&uid) {
                continue;
            }
            if phase(pod) == "Succeeded" && !un_f.contains(&uid) {
                if is_indexed(job) {
                    if let Some(i) = completion_index(pod).filter(|i| *i < completions) {
                        succeeded_indexes.insert(i);
                    }
                } else if !un_s.contains(&uid) {
                    succeeded += 1;
                }
            } else if is_pod_failed(pod, job) && !un_f.contains(&uid) && !un_s.contains(&uid) {
                failed += 1;
            }
        }
        if is_indexed(job) {
            succeeded = i32::try_from(succeeded_indexes.len()).unwrap_or(i32::MAX);
        }
        Counts {
            active,
            terminating,
            ready,
            succeeded,
            failed,
            succeeded_indexes,
            created: 0,
        }
    }

    /// Updates the back-off record from pods that finished since it was last updated.
    fn update_backoff(
        &self,
        key: &str,
        job: &Job,
        pods: &[Arc<Pod>],
        now: DateTime<Utc>,
    ) -> Duration {
        let mut all = self.lock_backoff();
        let record = all.entry(key.to_owned()).or_default();
        let mut newly: Vec<(DateTime<Utc>, bool)> = Vec::new();
        for pod in pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if record.seen.contains(&uid) {
                continue;
            }
            if phase(pod) == "Succeeded" {
                record.seen.insert(uid);
                newly.push((finished_at(pod, now), true));
            } else if is_pod_failed(pod, job) {
                record.seen.insert(uid);
                newly.push((finished_at(pod, now), false));
            }
        }
        newly.sort_by_key(|(t, _)| *t);
        for (at, success) in newly {
            if success {
                record.failures = 0;
                record.last_failure = None;
            } else {
                record.failures += 1;
                record.last_failure = Some(record.last_failure.map_or(at, |l| l.max(at)));
            }
        }
        record.remaining(now)
    }

    async fn sync(&self, key: &str, job: &Arc<Job>) -> anyhow::Result<Next> {
        let now = Utc::now();
        let spec = job.spec.clone().unwrap_or_default();
        let pods = self.owned_pods(job);
        let pending_rm = self.finalizers.pending(key);
        let satisfied = self.expectations.satisfied(key) && pending_rm.is_empty();
        let backoff_wait = self.update_backoff(key, job, &pods, now);
        let mut counts = self.count(job, &pods, &pending_rm);
        let mut status = job.status.clone().unwrap_or_default();
        let mut conditions = status.conditions.clone().unwrap_or_default();
        let suspended = spec.suspend == Some(true);
        let mut requeue: Option<Duration> = None;

        if status.start_time.is_none() && !suspended {
            status.start_time = Some(Time(now));
        }

        // A terminal condition already decided on.
        let mut finish: Option<Finish> =
            ["FailureTarget", "SuccessCriteriaMet"]
                .iter()
                .find_map(|kind| {
                    conditions
                        .iter()
                        .find(|c| c.type_ == *kind && c.status == "True")
                        .map(|c| Finish {
                            success: *kind == "SuccessCriteriaMet",
                            reason: c.reason.clone().unwrap_or_default(),
                            message: c.message.clone().unwrap_or_default(),
                        })
                });
        if finish.is_none() {
            let backoff_limit = spec.backoff_limit.unwrap_or(6);
            if counts.failed > backoff_limit || past_backoff_limit_on_failure(job, &counts.active) {
                finish = Some(Finish {
                    success: false,
                    reason: "BackoffLimitExceeded".to_owned(),
                    message: "Job has reached the specified backoff limit".to_owned(),
                });
            } else if let (Some(deadline), Some(start), false) = (
                spec.active_deadline_seconds,
                status.start_time.as_ref(),
                suspended,
            ) {
                let end = start.0 + k8s_openapi::chrono::Duration::seconds(deadline);
                if now >= end {
                    finish = Some(Finish {
                        success: false,
                        reason: "DeadlineExceeded".to_owned(),
                        message: "Job was active longer than specified deadline".to_owned(),
                    });
                } else {
                    requeue = (end - now).to_std().ok();
                }
            }
        }

        if finish.as_ref().is_some_and(|f| !f.success) {
            // Failing: every pod still running goes (and counts as failed).
            let doomed = counts.active.clone();
            self.delete_pods(key, job, &doomed).await?;
            counts.failed += i32::try_from(doomed.len()).unwrap_or(0);
            counts.terminating += i32::try_from(doomed.len()).unwrap_or(0);
            counts.active.clear();
            counts.ready = 0;
        } else if satisfied && job.metadata.deletion_timestamp.is_none() {
            if let Some(wait) = self
                .manage(key, job, &mut counts, suspended, backoff_wait)
                .await?
            {
                requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
            }
            if finish.is_none() {
                let idle = counts.active.is_empty() && counts.created == 0;
                let complete = match spec.completions {
                    None => counts.succeeded > 0 && idle,
                    Some(c) => counts.succeeded >= c && idle,
                };
                if complete {
                    finish = Some(Finish {
                        success: true,
                        reason: "CompletionsReached".to_owned(),
                        message: "Reached expected number of succeeded pods".to_owned(),
                    });
                }
            }
        }

        // Suspension.
        if finish.is_none() {
            if suspended {
                if ensure_condition(
                    &mut conditions,
                    "Suspended",
                    "True",
                    "JobSuspended",
                    "Job suspended",
                    now,
                ) {
                    self.recorder
                        .record(job.as_ref(), Type::Normal, "Suspended", "Job suspended");
                }
            } else if ensure_condition(
                &mut conditions,
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
                now,
            ) {
                self.ctx
                    .recorder
                    .record(job.as_ref(), Type::Normal, "Resumed", "Job resumed");
                // activeDeadlineSeconds counts time continuously active.
                status.start_time = Some(Time(now));
            }
        }
        if let Some(f) = &finish {
            ensure_condition(
                &mut conditions,
                f.interim(),
                "True",
                &f.reason,
                &f.message,
                now,
            );
        }

        status.active =
            Some(i32::try_from(counts.active.len() + counts.created).unwrap_or(i32::MAX));
        status.ready = Some(counts.ready);
        status.terminating = Some(counts.terminating);
        status.conditions = (!conditions.is_empty()).then_some(conditions);
        self.track(key, job, &pods, status, &counts, finish, now)
            .await?;
        Ok(requeue.map_or(Next::Done, Next::After))
    }

    /// Creates or deletes pods toward the wanted number of active pods; returns how long to
    /// wait before creating again when the failure back-off holds creations back.
    async fn manage(
        &self,
        key: &str,
        job: &Arc<Job>,
        counts: &mut Counts,
        suspended: bool,
        backoff_wait: Duration,
    ) -> anyhow::Result<Option<Duration>> {
        let spec = job.spec.clone().unwrap_or_default();
        let active = i32::try_from(counts.active.len()).unwrap_or(i32::MAX);
        if suspended {
            let doomed = counts.active.clone();
            self.delete_pods(key, job, &doomed).await?;
            counts.terminating += i32::try_from(doomed.len()).unwrap_or(0);
            counts.active.clear();
            counts.ready = 0;
            return Ok(None);
        }
        let parallelism = spec.parallelism.unwrap_or(1).max(0);
        let want = match spec.completions {
            None if counts.succeeded > 0 => active,
            None => parallelism,
            Some(c) => (c - counts.succeeded).clamp(0, parallelism),
        };
        let at_least = usize::try_from(active - want).unwrap_or(0);
        let mut doomed = pods_for_removal(job, &counts.active, at_least, &counts.succeeded_indexes);
        doomed.truncate(MAX_CREATE_DELETE_PER_SYNC);
        if !doomed.is_empty() {
            self.delete_pods(key, job, &doomed).await?;
            let gone: HashSet<String> = doomed.iter().map(|p| p.name_any()).collect();
            counts.active.retain(|p| !gone.contains(&p.name_any()));
            counts.terminating += i32::try_from(doomed.len()).unwrap_or(0);
            return Ok(None);
        }
        let only_failed = spec.pod_failure_policy.is_some()
            || spec.pod_replacement_policy.as_deref() == Some("Failed");
        let terminating = if only_failed { counts.terminating } else { 0 };
        let indexes: Vec<Option<i32>> = if is_indexed(job) {
            let active_ix: HashSet<i32> = counts
                .active
                .iter()
                .filter_map(|p| completion_index(p))
                .collect();
            let count = usize::try_from(want - active).unwrap_or(0);
            first_pending_indexes(
                &counts.succeeded_indexes,
                &active_ix,
                count,
                spec.completions.unwrap_or(0),
            )
            .into_iter()
            .map(Some)
            .collect()
        } else {
            let diff = usize::try_from(want - terminating - active).unwrap_or(0);
            vec![None; diff]
        };
        if indexes.is_empty() {
            return Ok(None);
        }
        if !backoff_wait.is_zero() {
            return Ok(Some(backoff_wait));
        }
        let indexes: Vec<Option<i32>> = indexes
            .into_iter()
            .take(MAX_CREATE_DELETE_PER_SYNC)
            .collect();
        self.expectations.expect(key, indexes.len(), 0);
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &job.namespace().unwrap_or_default(),
        );
        let (created, err) = slow_start(indexes.len(), SLOW_START_INITIAL_BATCH, |i| {
            let pod = new_pod(job, indexes[i]);
            let api = api.clone();
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        self.recorder.record(
                            job.as_ref(),
                            Type::Normal,
                            "SuccessfulCreate",
                            format!("Created pod: {}", p.name_any()),
                        );
                        Ok(())
                    }
                    Err(e) => {
                        self.recorder.record(
                            job.as_ref(),
                            Type::Warning,
                            "FailedCreate",
                            format!("Error creating: {e}"),
                        );
                        Err(e)
                    }
                }
            }
        })
        .await;
        // Creations that failed or were never tried will not be observed.
        for _ in created..indexes.len() {
            self.expectations.creation_observed(key);
        }
        // The new pods are active from now on (for the status and the success check).
        counts.created += created;
        if let Some(err) = err {
            if let kube::Error::Api(e) = &err
                && e.code == 403
                && e.message.contains("being terminated")
            {
                return Ok(None);
            }
            return Err(err.into());
        }
        Ok(None)
    }

    /// Deletes pods (their finalizers stay until they are counted).
    async fn delete_pods(&self, key: &str, job: &Job, pods: &[Arc<Pod>]) -> anyhow::Result<()> {
        if pods.is_empty() {
            return Ok(());
        }
        self.expectations.expect(key, 0, pods.len());
        let mut first_error = None;
        for pod in pods {
            let api: Api<Pod> = Api::namespaced(
                self.ctx.client.clone(),
                &pod.namespace().unwrap_or_default(),
            );
            match api.delete(&pod.name_any(), &DeleteParams::default()).await {
                Ok(_) => self.recorder.record(
                    job,
                    Type::Normal,
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", pod.name_any()),
                ),
                Err(err) => {
                    self.expectations.deletion_observed(key);
                    if !is_not_found(&err) {
                        self.recorder.record(
                            job,
                            Type::Warning,
                            "FailedDelete",
                            format!("Error deleting: {err}"),
                        );
                        first_error.get_or_insert(err);
                    }
                }
            }
        }
        match first_error {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    }

    /// kube's trackJobStatusAndRemoveFinalizers: records finished pods in
    /// uncountedTerminatedPods, removes their finalizers, moves them to the counters, and
    /// writes the terminal condition once nothing is left uncounted or terminating.
    #[allow(clippy::too_many_arguments)]
    async fn track(
        &self,
        key: &str,
        job: &Arc<Job>,
        pods: &[Arc<Pod>],
        mut status: JobStatus,
        counts: &Counts,
        finish: Option<Finish>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
        let indexed = is_indexed(job);
        let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let mut un_s: Vec<String> = uncounted.succeeded.clone().unwrap_or_default();
        let mut un_f: Vec<String> = uncounted.failed.clone().unwrap_or_default();
        let with_finalizer: HashSet<String> = pods
            .iter()
            .filter(|p| has_tracking_finalizer(p))
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        // Uids whose finalizers are gone are counted now.
        let clean = |status: &mut JobStatus,
                     un_s: &mut Vec<String>,
                     un_f: &mut Vec<String>,
                     with: &HashSet<String>| {
            let before = (un_s.len(), un_f.len());
            un_s.retain(|u| with.contains(u));
            un_f.retain(|u| with.contains(u));
            let s = i32::try_from(before.0 - un_s.len()).unwrap_or(0);
            let f = i32::try_from(before.1 - un_f.len()).unwrap_or(0);
            status.succeeded = Some(status.succeeded.unwrap_or(0) + s);
            status.failed = Some(status.failed.unwrap_or(0) + f);
        };
        clean(&mut status, &mut un_s, &mut un_f, &with_finalizer);
        let mut succeeded_indexes = parse_indexes(
            status.completed_indexes.as_deref().unwrap_or(""),
            completions,
        );
        let pending_rm = self.finalizers.pending(key);
        let mut to_release: Vec<Arc<Pod>> = Vec::new();
        let failing = finish.as_ref().is_some_and(|f| !f.success);
        for pod in pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if !has_tracking_finalizer(pod) || pending_rm.contains(&uid) {
                continue;
            }
            if un_s.len() + un_f.len() >= MAX_UNCOUNTED {
                break;
            }
            let terminal_or_going = crate::batchutil::is_terminal(pod)
                || pod.metadata.deletion_timestamp.is_some()
                || failing;
            if !terminal_or_going {
                continue;
            }
            if phase(pod) == "Succeeded" && !un_f.contains(&uid) {
                if indexed {
                    if let Some(i) = completion_index(pod).filter(|i| *i < completions) {
                        succeeded_indexes.insert(i);
                    }
                } else if !un_s.contains(&uid) {
                    un_s.push(uid.clone());
                }
            } else if (is_pod_failed(pod, job) || failing)
                && !un_f.contains(&uid)
                && !un_s.contains(&uid)
            {
                let ix_ok = !indexed || completion_index(pod).is_some_and(|i| i < completions);
                if ix_ok {
                    un_f.push(uid.clone());
                }
            }
            to_release.push(pod.clone());
        }
        if indexed {
            status.completed_indexes = Some(format_indexes(&succeeded_indexes));
            status.succeeded = Some(i32::try_from(succeeded_indexes.len()).unwrap_or(i32::MAX));
        }
        uncounted.succeeded = Some(un_s.clone());
        uncounted.failed = Some(un_f.clone());
        status.uncounted_terminated_pods = Some(uncounted);
        // Step 1: the uids are recorded before the finalizers go.
        let mut job_now = self.write_status(job, status.clone()).await?;
        if to_release.is_empty() {
            return self
                .finish(job, job_now, finish, counts.terminating, now)
                .await;
        }
        // Step 2: the finalizers go.
        let result = self.remove_finalizers(key, &to_release).await;
        let mut still: HashSet<String> = with_finalizer;
        for pod in &to_release {
            if let Some(uid) = &pod.metadata.uid {
                still.remove(uid);
            }
        }
        // Only count what certainly lost its finalizer: on an error, the next sync re-derives.
        result?;
        // Step 3: they are counted.
        let mut status = job_now.status.clone().unwrap_or_default();
        let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let mut un_s = uncounted.succeeded.clone().unwrap_or_default();
        let mut un_f = uncounted.failed.clone().unwrap_or_default();
        clean(&mut status, &mut un_s, &mut un_f, &still);
        uncounted.succeeded = Some(un_s);
        uncounted.failed = Some(un_f);
        status.uncounted_terminated_pods = Some(uncounted);
        job_now = self
            .write_status(&Arc::new(job_now.clone()), status)
            .await?;
        self.finish(job, job_now, finish, counts.terminating, now)
            .await
    }

    /// Writes the final condition once nothing is uncounted and no pod is terminating.
    async fn finish(
        &self,
        job: &Arc<Job>,
        current: Job,
        finish: Option<Finish>,
        terminating: i32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(finish) = finish else { return Ok(()) };
        let mut status = current.status.clone().unwrap_or_default();
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        if !uncounted.succeeded.unwrap_or_default().is_empty()
            || !uncounted.failed.unwrap_or_default().is_empty()
        {
            return Ok(());
        }
        // Pods being deleted still hold the terminal condition back.
        if terminating > 0 {
            return Ok(());
        }
        let mut conditions = status.conditions.clone().unwrap_or_default();
        if !ensure_condition(
            &mut conditions,
            finish.terminal(),
            "True",
            &finish.reason,
            &finish.message,
            now,
        ) {
            return Ok(());
        }
        if finish.success {
            status.completion_time = Some(Time(now));
        }
        status.conditions = Some(conditions);
        status.active = Some(0);
        status.ready = Some(0);
        status.terminating = Some(0);
        self.write_status(&Arc::new(current), status).await?;
        if finish.success {
            self.ctx
                .recorder
                .record(job.as_ref(), Type::Normal, "Completed", "Job completed");
        } else {
            self.recorder.record(
                job.as_ref(),
                Type::Warning,
                &finish.reason,
                finish.message.clone(),
            );
        }
        Ok(())
    }

    /// PUT /status when the status changed; returns the job as it now is.
    async fn write_status(&self, job: &Arc<Job>, status: JobStatus) -> anyhow::Result<Job> {
        let status = normalized(status);
        if job.status.as_ref() == Some(&status) {
            return Ok((**job).clone());
        }
        let mut updated = (**job).clone();
        updated.status = Some(status);
        let api: Api<Job> = Api::namespaced(
            self.ctx.client.clone(),
            &job.namespace().unwrap_or_default(),
        );
        let written = api
            .replace_status(
                &job.name_any(),
                &PostParams::default(),
                serde_json::to_vec(&updated)?,
            )
            .await?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;

    #[test]
    fn completed_indexes_round_trip_as_ranges() {
        let set: BTreeSet<i32> = [0, 1, 2, 4, 6, 7, 9].into();
        assert_eq!(format_indexes(&set), "0-2,4,6-7,9");
        assert_eq!(parse_indexes("0-2,4,6-7,9", 10), set);
        // Indexes past completions are dropped.
        assert_eq!(parse_indexes("0-2,4,6-7,9", 5), [0, 1, 2, 4].into());
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn pending_indexes_skip_succeeded_and_running_ones() {
        let succeeded: BTreeSet<i32> = [0, 2].into();
        let active: HashSet<i32> = [1].into();
        assert_eq!(first_pending_indexes(&succeeded, &active, 2, 6), vec![3, 4]);
        assert_eq!(first_pending_indexes(&succeeded, &active, 9, 4), vec![3]);
    }

    fn indexed_job(completions: i32) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("ix".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                completions: Some(completions),
                completion_mode: Some("Indexed".into()),
                ..JobSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn indexed_pods_get_their_index_hostname_and_variable() {
        let mut job = indexed_job(3);
        if let Some(spec) = job.spec.as_mut() {
            spec.template.spec = Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![k8s_openapi::api::core::v1::Container {
                    name: "c".into(),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        let pod = new_pod(&job, Some(2));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("ix-2-"));
        assert_eq!(completion_index(&pod), Some(2));
        let spec = pod.spec.unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("ix-2"));
        assert_eq!(
            spec.containers[0].env.as_ref().map(|e| e[0].name.as_str()),
            Some(COMPLETION_INDEX_ENV)
        );
        assert_eq!(
            pod.metadata.finalizers,
            Some(vec![TRACKING_FINALIZER.to_owned()])
        );
        assert_eq!(
            pod.metadata.owner_references.unwrap_or_default()[0].uid,
            "u1"
        );
    }

    #[test]
    fn duplicate_and_succeeded_indexes_are_removed() {
        let job = indexed_job(3);
        let pod = |name: &str, ix: &str| {
            Arc::new(Pod {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    annotations: Some([(COMPLETION_INDEX.to_owned(), ix.to_owned())].into()),
                    ..ObjectMeta::default()
                },
                ..Pod::default()
            })
        };
        let active = vec![pod("a", "0"), pod("b", "0"), pod("c", "1"), pod("d", "7")];
        let succeeded: BTreeSet<i32> = [1].into();
        let mut removed: Vec<String> = pods_for_removal(&job, &active, 0, &succeeded)
            .iter()
            .map(|p| p.name_any())
            .collect();
        removed.sort();
        // One of the two index-0 pods, the succeeded index 1, the out-of-range index 7.
        assert_eq!(removed.len(), 3);
        assert!(removed.contains(&"c".to_owned()) && removed.contains(&"d".to_owned()));
    }

    #[test]
    fn backoff_doubles_from_ten_seconds() {
        let now = Utc::now();
        let mut b = Backoff {
            failures: 1,
            last_failure: Some(now),
            seen: HashSet::new(),
        };
        assert_eq!(b.remaining(now), Duration::from_secs(10));
        b.failures = 3;
        assert_eq!(b.remaining(now), Duration::from_secs(40));
        b.failures = 30;
        assert_eq!(b.remaining(now), BACKOFF_MAX);
        b.failures = 0;
        assert_eq!(b.remaining(now), Duration::ZERO);
    }

    #[test]
    fn conditions_change_only_when_they_differ() {
        let now = Utc::now();
        let mut c = Vec::new();
        assert!(!ensure_condition(
            &mut c,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now
        ));
        assert!(ensure_condition(
            &mut c,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now
        ));
        assert!(!ensure_condition(
            &mut c,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now
        ));
        assert!(ensure_condition(
            &mut c,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now
        ));
        assert_eq!(c.len(), 1);
    }
}
