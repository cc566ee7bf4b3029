//! The TTL-after-finished controller: a finished Job (Complete or Failed) with
//! `spec.ttlSecondsAfterFinished` is deleted, with background propagation, that many seconds
//! after it finished. Before deleting, the job is read again from the API server, so a
//! stale cache or a TTL changed meanwhile never deletes a job too early.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};

use crate::batchutil::is_not_found;
use crate::informer::{Informer, key_of, split_key};
use crate::job::{finish_time, is_finished};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

struct Controller {
    ctx: Context,
    jobs: Informer<Job>,
}

pub fn start(ctx: &Context, options: &Options) {
    let jobs = ctx.informer::<Job>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&jobs, ctx.stop.clone(), move |change| {
        let job = change.object();
        if needs_cleanup(job) {
            q.add(key_of(job.as_ref()));
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        jobs,
    });
    run_workers(controller, queue, options.workers.min(2), ctx.stop.clone());
}

fn needs_cleanup(job: &Job) -> bool {
    job.metadata.deletion_timestamp.is_none()
        && job
            .spec
            .as_ref()
            .is_some_and(|s| s.ttl_seconds_after_finished.is_some())
        && is_finished(job)
}

/// When a finished job expires; `None` if it never does.
pub fn expires_at(job: &Job) -> Option<DateTime<Utc>> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = finish_time(job)?;
    Some(finished + k8s_openapi::chrono::Duration::seconds(i64::from(ttl)))
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "ttl-after-finished"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        let Some(cached) = self.jobs.get(&key) else {
            return Ok(Next::Done);
        };
        if !needs_cleanup(&cached) {
            return Ok(Next::Done);
        }
        let now = Utc::now();
        match expires_at(&cached) {
            None => return Ok(Next::Done),
            Some(at) if at > now => {
                return Ok(Next::After(
                    (at - now).to_std().unwrap_or(Duration::from_secs(1)),
                ));
            }
            Some(_) => {}
        }
        // Expired in the cache: confirm with the API server's copy.
        let (ns, name) = split_key(&key);
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns.unwrap_or(""));
        let Some(fresh) = api.get_opt(name).await? else {
            return Ok(Next::Done);
        };
        if !needs_cleanup(&fresh) {
            return Ok(Next::Done);
        }
        match expires_at(&fresh) {
            Some(at) if at <= now => {}
            Some(at) => {
                return Ok(Next::After(
                    (at - now).to_std().unwrap_or(Duration::from_secs(1)),
                ));
            }
            None => return Ok(Next::Done),
        }
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: fresh.metadata.uid.clone(),
                resource_version: fresh.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        match api.delete(&fresh.name_any(), &params).await {
            Ok(_) => {
                tracing::info!(job = %key, "deleted the finished job after its TTL");
                Ok(Next::Done)
            }
            Err(err) if is_not_found(&err) => Ok(Next::Done),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn a_job_expires_ttl_seconds_after_its_terminal_condition() {
        let finished = Utc::now();
        let job = Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: Some(30),
                ..JobSpec::default()
            }),
            status: Some(JobStatus {
                conditions: Some(vec![JobCondition {
                    type_: "Complete".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(finished)),
                    ..JobCondition::default()
                }]),
                ..JobStatus::default()
            }),
            ..Job::default()
        };
        assert!(needs_cleanup(&job));
        assert_eq!(
            expires_at(&job),
            Some(finished + k8s_openapi::chrono::Duration::seconds(30))
        );
        let mut running = job.clone();
        running.status = None;
        assert!(!needs_cleanup(&running));
    }
}
