//! The CronJob controller (kube-controller-manager's cronjob v2 controller).
//!
//! For each CronJob it keeps `status.active` in step with its Jobs, then, unless suspended,
//! finds the most recent schedule time not yet run (since `lastScheduleTime` or the
//! creation, and no earlier than `startingDeadlineSeconds` ago), applies the concurrency
//! policy (Allow, Forbid, Replace), creates the Job `NAME-<scheduled unix minutes>` from the
//! template, records it, deletes finished Jobs beyond the history limits, and comes back at
//! the next schedule time. Schedules run in `spec.timeZone` (UTC when unset).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::chrono::{DateTime, SecondsFormat, Utc};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};

use crate::batchutil::{
    controlled_by, controller_key, controller_ref, is_already_exists, is_not_found,
};
use crate::cronschedule::{Schedule, Zone, parse};
use crate::events::{Recorder, Type};
use crate::informer::{Informer, key_of};
use crate::job::is_finished;
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

/// The annotation with the nominal time a Job was scheduled for (RFC 3339, in the zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Missed schedules past which the controller warns (kube: 100).
const TOO_MANY_MISSED: u64 = 100;

struct Controller {
    ctx: Context,
    /// Events come from this controller, as kube-controller-manager names it.
    recorder: Recorder,
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
}

pub fn start(ctx: &Context, options: &Options) {
    let cronjobs = ctx.informer::<CronJob>();
    let jobs = ctx.informer::<Job>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&cronjobs, ctx.stop.clone(), move |change| {
        q.add(key_of(change.object().as_ref()));
    });
    let q = queue.clone();
    on_change(&jobs, ctx.stop.clone(), move |change| {
        if let Some(key) = controller_key(&change.object().metadata, "CronJob") {
            q.add(key);
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        recorder: Recorder::new(ctx.client.clone(), "cronjob-controller"),
        cronjobs,
        jobs,
    });
    run_workers(controller, queue, options.workers.min(2), ctx.stop.clone());
}

/// The Job name for a scheduled time: the CronJob's name and the time in minutes since the
/// epoch, so the same time never creates two Jobs.
pub fn job_name(cronjob: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled.timestamp().div_euclid(60))
}

/// The most recent schedule time in `(earliest, now]`, and how many were missed in all.
pub fn most_recent_unmet(
    schedule: &Schedule,
    zone: &Zone,
    earliest: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, u64) {
    let Some(t1) = schedule.next_after(earliest, zone) else {
        return (None, 0);
    };
    if t1 > now {
        return (None, 0);
    }
    let Some(t2) = schedule.next_after(t1, zone) else {
        return (Some(t1), 1);
    };
    if t2 > now {
        return (Some(t1), 1);
    }
    // Many missed: estimate from the period, then walk the last stretch exactly.
    let period = (t2 - t1).num_seconds().max(1);
    let elapsed = (now - t1).num_seconds();
    let estimate = u64::try_from(elapsed / period + 1).unwrap_or(u64::MAX);
    let mut t = if estimate > 1000 {
        now - k8s_openapi::chrono::Duration::seconds(period * 4)
    } else {
        t1
    };
    let mut last = if t == t1 { t1 } else { earliest };
    let mut count = 0u64;
    if t == t1 {
        count = 1;
    }
    for _ in 0..2000 {
        match schedule.next_after(t, zone) {
            Some(next) if next <= now => {
                last = next;
                t = next;
                count += 1;
            }
            _ => break,
        }
    }
    let missed = if estimate > 1000 { estimate } else { count };
    (Some(last).filter(|l| *l > earliest), missed)
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".to_owned()),
        kind: Some("Job".to_owned()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

fn succeeded(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        })
}

fn failed(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
}

/// The Job for one scheduled time.
fn job_for(cronjob: &CronJob, scheduled: DateTime<Utc>, zone: &Zone) -> Job {
    let template = cronjob
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.to_owned(),
        zone.to_local(scheduled)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&cronjob.name_any(), scheduled)),
            namespace: cronjob.namespace(),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cronjob)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "cronjob"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        if !(self.cronjobs.has_synced() && self.jobs.has_synced()) {
            return Ok(Next::After(Duration::from_millis(200)));
        }
        let Some(cj) = self.cronjobs.get(&key) else {
            return Ok(Next::Done);
        };
        let namespace = cj.namespace().unwrap_or_default();
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .list_in(&namespace)
            .into_iter()
            .filter(|j| controlled_by(&j.metadata, &uid))
            .collect();
        let mut status = cj.status.clone().unwrap_or_default();
        self.sync_active(&cj, &jobs, &mut status).await?;
        let next = self.schedule(&cj, &mut status).await?;
        self.write_status(&cj, status).await?;
        self.cleanup(&cj, &jobs).await;
        Ok(next)
    }
}

impl Controller {
    /// Drops finished and vanished Jobs from `status.active` and records the last success.
    async fn sync_active(
        &self,
        cj: &CronJob,
        jobs: &[Arc<Job>],
        status: &mut CronJobStatus,
    ) -> anyhow::Result<()> {
        let mut active = status.active.clone().unwrap_or_default();
        let in_active =
            |active: &[ObjectReference], uid: &Option<String>| active.iter().any(|r| r.uid == *uid);
        for job in jobs {
            let found = in_active(&active, &job.metadata.uid);
            if !found && !is_finished(job) {
                // Ours but not recorded: created by kubectl create job --from, or recorded in
                // a status write the cache has not seen yet.
                let api: Api<CronJob> =
                    Api::namespaced(self.ctx.client.clone(), &cj.namespace().unwrap_or_default());
                let fresh = api.get_opt(&cj.name_any()).await?;
                let recorded = fresh
                    .and_then(|c| c.status)
                    .and_then(|s| s.active)
                    .is_some_and(|a| in_active(&a, &job.metadata.uid));
                if !recorded {
                    self.recorder.record(
                        cj,
                        Type::Warning,
                        "UnexpectedJob",
                        format!(
                            "Saw a job that the controller did not create or forgot: {}",
                            job.name_any()
                        ),
                    );
                }
            } else if found && is_finished(job) {
                active.retain(|r| r.uid != job.metadata.uid);
                let condition = if succeeded(job) { "Complete" } else { "Failed" };
                self.recorder.record(
                    cj,
                    Type::Normal,
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {}, condition: {condition}",
                        job.name_any()
                    ),
                );
            }
            if succeeded(job)
                && let Some(done) = job.status.as_ref().and_then(|s| s.completion_time.clone())
                && status
                    .last_successful_time
                    .as_ref()
                    .is_none_or(|t| t.0 < done.0)
            {
                status.last_successful_time = Some(done);
            }
        }
        // References to Jobs that are gone (confirmed by the API server).
        let live: HashSet<Option<String>> = jobs.iter().map(|j| j.metadata.uid.clone()).collect();
        let mut kept = Vec::new();
        for r in active {
            if live.contains(&r.uid) {
                kept.push(r);
                continue;
            }
            let api: Api<Job> = Api::namespaced(
                self.ctx.client.clone(),
                r.namespace.as_deref().unwrap_or(""),
            );
            match api.get_opt(r.name.as_deref().unwrap_or("")).await? {
                Some(j) if j.metadata.uid == r.uid => kept.push(r),
                _ => {
                    self.recorder.record(
                        cj,
                        Type::Normal,
                        "MissingJob",
                        format!(
                            "Active job went missing: {}",
                            r.name.clone().unwrap_or_default()
                        ),
                    );
                }
            }
        }
        status.active = (!kept.is_empty()).then_some(kept);
        Ok(())
    }

    /// Starts the Job due now, if any; returns when to look again.
    async fn schedule(&self, cj: &CronJob, status: &mut CronJobStatus) -> anyhow::Result<Next> {
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok(Next::Done);
        }
        let spec = cj.spec.clone().unwrap_or_default();
        let zone = match Zone::load(spec.time_zone.as_deref()) {
            Ok(z) => z,
            Err(err) => {
                self.recorder.record(
                    cj,
                    Type::Warning,
                    "UnknownTimeZone",
                    format!(
                        "invalid timeZone: {:?}: {err}",
                        spec.time_zone.clone().unwrap_or_default()
                    ),
                );
                return Ok(Next::Done);
            }
        };
        let schedule = match parse(&spec.schedule) {
            Ok(s) => s,
            Err(err) => {
                self.recorder.record(
                    cj,
                    Type::Warning,
                    "InvalidSchedule",
                    format!("invalid schedule: {} : {err}", spec.schedule),
                );
                return Ok(Next::Done);
            }
        };
        if spec.suspend == Some(true) {
            return Ok(Next::Done);
        }
        let now = Utc::now();
        let next_wait = |from: DateTime<Utc>| -> Next {
            match schedule.next_after(from.max(now), &zone) {
                Some(t) => Next::After(
                    (t - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(100),
                ),
                None => Next::Done,
            }
        };
        let mut earliest = status
            .last_schedule_time
            .as_ref()
            .map(|t| t.0)
            .or_else(|| cj.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .unwrap_or(now);
        if let Some(deadline) = spec.starting_deadline_seconds {
            earliest = earliest.max(now - k8s_openapi::chrono::Duration::seconds(deadline));
        }
        let (scheduled, missed) = most_recent_unmet(&schedule, &zone, earliest, now);
        if missed > TOO_MANY_MISSED {
            self.recorder.record(
                cj,
                Type::Warning,
                "TooManyMissedTimes",
                format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
            );
        }
        let Some(scheduled) = scheduled else {
            return Ok(next_wait(now));
        };
        if let Some(deadline) = spec.starting_deadline_seconds
            && scheduled + k8s_openapi::chrono::Duration::seconds(deadline) < now
        {
            self.recorder.record(
                cj,
                Type::Warning,
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    scheduled.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
            );
            return Ok(next_wait(now));
        }
        let name = job_name(&cj.name_any(), scheduled);
        let active = status.active.clone().unwrap_or_default();
        if active.iter().any(|r| r.name.as_deref() == Some(&name))
            || status.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled)
        {
            return Ok(next_wait(now));
        }
        match spec.concurrency_policy.as_deref() {
            Some("Forbid") if !active.is_empty() => {
                self.recorder.record(
                    cj,
                    Type::Normal,
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid",
                );
                return Ok(next_wait(now));
            }
            Some("Replace") => {
                for r in &active {
                    let job_name = r.name.clone().unwrap_or_default();
                    let api: Api<Job> = Api::namespaced(
                        self.ctx.client.clone(),
                        r.namespace.as_deref().unwrap_or(""),
                    );
                    let params = DeleteParams {
                        propagation_policy: Some(PropagationPolicy::Background),
                        ..DeleteParams::default()
                    };
                    match api.delete(&job_name, &params).await {
                        Ok(_) => self.recorder.record(
                            cj,
                            Type::Normal,
                            "SuccessfulDelete",
                            format!("Deleted job {job_name}"),
                        ),
                        Err(err) if is_not_found(&err) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                status.active = None;
            }
            _ => {}
        }
        let job = job_for(cj, scheduled, &zone);
        let api: Api<Job> =
            Api::namespaced(self.ctx.client.clone(), &cj.namespace().unwrap_or_default());
        let created = match api.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.recorder.record(
                    cj,
                    Type::Normal,
                    "SuccessfulCreate",
                    format!("Created job {}", created.name_any()),
                );
                created
            }
            Err(err) if is_already_exists(&err) => {
                // Created by an earlier pass whose status write was lost.
                let existing = api.get(&name).await?;
                if !controlled_by(&existing.metadata, cj.metadata.uid.as_deref().unwrap_or("")) {
                    return Err(err.into());
                }
                existing
            }
            Err(err) => {
                self.recorder.record(
                    cj,
                    Type::Warning,
                    "FailedCreate",
                    format!("Error creating job: {err}"),
                );
                return Err(err.into());
            }
        };
        if !is_finished(&created) {
            let mut active = status.active.clone().unwrap_or_default();
            if !active.iter().any(|r| r.uid == created.metadata.uid) {
                active.push(job_ref(&created));
            }
            status.active = Some(active);
        }
        status.last_schedule_time = Some(Time(scheduled));
        Ok(next_wait(scheduled))
    }

    async fn write_status(&self, cj: &CronJob, status: CronJobStatus) -> anyhow::Result<()> {
        if cj.status.clone().unwrap_or_default() == status {
            return Ok(());
        }
        let mut updated = cj.clone();
        updated.status = Some(status);
        let api: Api<CronJob> =
            Api::namespaced(self.ctx.client.clone(), &cj.namespace().unwrap_or_default());
        api.replace_status(
            &cj.name_any(),
            &PostParams::default(),
            serde_json::to_vec(&updated)?,
        )
        .await?;
        Ok(())
    }

    /// Deletes the oldest finished Jobs beyond the history limits.
    async fn cleanup(&self, cj: &CronJob, jobs: &[Arc<Job>]) {
        let spec = cj.spec.clone().unwrap_or_default();
        for (limit, pick) in [
            (
                spec.successful_jobs_history_limit,
                succeeded as fn(&Job) -> bool,
            ),
            (spec.failed_jobs_history_limit, failed as fn(&Job) -> bool),
        ] {
            let Some(limit) = limit else { continue };
            let mut done: Vec<&Arc<Job>> = jobs.iter().filter(|j| pick(j)).collect();
            let limit = usize::try_from(limit.max(0)).unwrap_or(0);
            if done.len() <= limit {
                continue;
            }
            // Oldest start first; jobs that never started last.
            done.sort_by(|a, b| {
                let start = |j: &Job| {
                    j.status
                        .as_ref()
                        .and_then(|s| s.start_time.clone())
                        .map(|t| t.0)
                };
                match (start(a), start(b)) {
                    (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.name_any().cmp(&b.name_any())),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => a.name_any().cmp(&b.name_any()),
                }
            });
            let excess = done.len() - limit;
            for job in done.into_iter().take(excess) {
                let api: Api<Job> = Api::namespaced(
                    self.ctx.client.clone(),
                    &job.namespace().unwrap_or_default(),
                );
                let params = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    ..DeleteParams::default()
                };
                match api.delete(&job.name_any(), &params).await {
                    Ok(_) => self.recorder.record(
                        cj,
                        Type::Normal,
                        "SuccessfulDelete",
                        format!("Deleted job {}", job.name_any()),
                    ),
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => {
                        tracing::debug!(job = %job.name_any(), "cannot delete old job: {err}")
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn job_names_carry_the_scheduled_minute() {
        assert_eq!(
            job_name("hello", at("2025-01-01T00:01:00Z")),
            "hello-28928161"
        );
    }

    #[test]
    fn the_most_recent_unmet_time_is_found_and_misses_are_counted() {
        let every_minute = parse("* * * * *").unwrap_or_else(|e| panic!("{e}"));
        let z = Zone::Utc;
        // Nothing due yet.
        let (t, n) = most_recent_unmet(
            &every_minute,
            &z,
            at("2025-01-01T10:00:00Z"),
            at("2025-01-01T10:00:59Z"),
        );
        assert_eq!((t, n), (None, 0));
        // One due.
        let (t, n) = most_recent_unmet(
            &every_minute,
            &z,
            at("2025-01-01T10:00:00Z"),
            at("2025-01-01T10:01:05Z"),
        );
        assert_eq!((t, n), (Some(at("2025-01-01T10:01:00Z")), 1));
        // Five missed: the last one is run.
        let (t, n) = most_recent_unmet(
            &every_minute,
            &z,
            at("2025-01-01T10:00:00Z"),
            at("2025-01-01T10:05:30Z"),
        );
        assert_eq!((t, n), (Some(at("2025-01-01T10:05:00Z")), 5));
        // Days missed: estimated count, exact last time.
        let (t, n) = most_recent_unmet(
            &every_minute,
            &z,
            at("2025-01-01T00:00:00Z"),
            at("2025-01-03T00:00:30Z"),
        );
        assert_eq!(t, Some(at("2025-01-03T00:00:00Z")));
        assert_eq!(n, 2 * 24 * 60);
        let hourly = parse("@hourly").unwrap_or_else(|e| panic!("{e}"));
        let (t, _) = most_recent_unmet(
            &hourly,
            &z,
            at("2025-01-01T10:00:00Z"),
            at("2025-01-01T12:30:00Z"),
        );
        assert_eq!(t, Some(at("2025-01-01T12:00:00Z")));
    }

    #[test]
    fn jobs_from_the_template_are_owned_and_stamped() {
        let cj = CronJob {
            metadata: ObjectMeta {
                name: Some("c".into()),
                namespace: Some("default".into()),
                uid: Some("u".into()),
                ..ObjectMeta::default()
            },
            ..CronJob::default()
        };
        let job = job_for(&cj, at("2025-01-01T10:01:00Z"), &Zone::Utc);
        assert_eq!(job.metadata.name.as_deref(), Some("c-28928761"));
        assert_eq!(
            job.metadata
                .annotations
                .unwrap_or_default()
                .get(SCHEDULED_TIMESTAMP)
                .map(String::as_str),
            Some("2025-01-01T10:01:00Z")
        );
        assert_eq!(
            job.metadata.owner_references.unwrap_or_default()[0].kind,
            "CronJob"
        );
    }
}
