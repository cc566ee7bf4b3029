//! A deployment's status: replica counts summed over its ReplicaSets, the Available condition
//! (enough pods up), and the Progressing condition that says whether the rollout moves,
//! finished, or missed its progress deadline.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::chrono::{DateTime, Utc};

use super::rollout::{self, actual, ready, replicas, total_available, total_replicas};
use crate::replicaset::REPLICA_FAILURE;

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";

pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";

/// A new condition, both times `now`.
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// kube's SetDeploymentCondition: nothing if the same status and reason are already there;
/// otherwise the condition replaces its type's (moved to the end), keeping the transition
/// time while the status stays.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = get_condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    let mut conditions: Vec<DeploymentCondition> = status
        .conditions
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != cond.type_)
        .collect();
    conditions.push(cond);
    status.conditions = Some(conditions);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.take() {
        let kept: Vec<DeploymentCondition> = conditions
            .into_iter()
            .filter(|c| c.type_ != type_)
            .collect();
        status.conditions = (!kept.is_empty()).then_some(kept);
    }
}

/// A deadline is set and is not "never" (MaxInt32).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

fn deadline_seconds(d: &Deployment) -> i64 {
    i64::from(
        d.spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(0),
    )
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

fn count(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// kube's calculateStatus: counts over all ReplicaSets, the conditions carried over, and
/// Available set from whether enough replicas are available.
pub fn calculate(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: DateTime<Utc>,
) -> DeploymentStatus {
    let available_replicas = total_available(all);
    let unavailable = (total_replicas(all) - available_replicas).max(0);
    let current = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation.filter(|g| *g != 0),
        replicas: nonzero(all.iter().map(|rs| actual(rs)).sum()),
        updated_replicas: nonzero(new.map(actual).unwrap_or(0)),
        ready_replicas: nonzero(all.iter().map(|rs| ready(rs)).sum()),
        available_replicas: nonzero(available_replicas),
        unavailable_replicas: nonzero(unavailable),
        collision_count: current.collision_count,
        conditions: current.conditions.clone().filter(|c| !c.is_empty()),
        terminating_replicas: None,
    };
    if available_replicas >= replicas(d) - rollout::max_unavailable(d) {
        set_condition(
            &mut status,
            condition(
                AVAILABLE,
                "True",
                MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.".to_owned(),
                now,
            ),
        );
    } else {
        set_condition(
            &mut status,
            condition(
                AVAILABLE,
                "False",
                MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.".to_owned(),
                now,
            ),
        );
    }
    status
}

/// Whether two statuses say the same (absent counts are zero).
pub fn same(a: &DeploymentStatus, b: &DeploymentStatus) -> bool {
    a.observed_generation.unwrap_or(0) == b.observed_generation.unwrap_or(0)
        && count(a.replicas) == count(b.replicas)
        && count(a.updated_replicas) == count(b.updated_replicas)
        && count(a.ready_replicas) == count(b.ready_replicas)
        && count(a.available_replicas) == count(b.available_replicas)
        && count(a.unavailable_replicas) == count(b.unavailable_replicas)
        && a.collision_count == b.collision_count
        && a.conditions.as_deref().unwrap_or_default()
            == b.conditions.as_deref().unwrap_or_default()
}

/// kube's DeploymentComplete: every replica updated and available, and the spec observed.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    count(s.updated_replicas) == want
        && count(s.replicas) == want
        && count(s.available_replicas) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// kube's DeploymentProgressing: more updated, ready or available replicas, or fewer old ones,
/// than the deployment's current status says.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = count(old.replicas) - count(old.updated_replicas);
    let new_old = count(new.replicas) - count(new.updated_replicas);
    count(new.updated_replicas) > count(old.updated_replicas)
        || new_old < old_old
        || count(new.ready_replicas) > count(old.ready_replicas)
        || count(new.available_replicas) > count(old.available_replicas)
}

/// kube's DeploymentTimedOut: no progress reported for progressDeadlineSeconds.
pub fn timed_out(d: &Deployment, new: &DeploymentStatus, now: DateTime<Utc>) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = get_condition(new, PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => return false,
        Some(TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = cond.last_update_time.as_ref() else {
        return false;
    };
    from.0 + k8s_openapi::chrono::Duration::seconds(deadline_seconds(d)) < now
}

/// The deployment-level form of a ReplicaSet condition.
fn from_rs_condition(c: &k8s_openapi::api::apps::v1::ReplicaSetCondition) -> DeploymentCondition {
    DeploymentCondition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        last_transition_time: c.last_transition_time.clone(),
        last_update_time: c.last_transition_time.clone(),
    }
}

/// The first ReplicaFailure condition, the new ReplicaSet's first.
fn replica_failure(all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .map(from_rs_condition)
    };
    new.and_then(failure)
        .or_else(|| all.iter().find_map(|rs| failure(rs)))
}

/// kube's syncRolloutStatus without the write: the status with Progressing moved on
/// (NewReplicaSetAvailable when complete, ReplicaSetUpdated while progressing,
/// ProgressDeadlineExceeded when stuck past the deadline) and ReplicaFailure carried over.
pub fn rollout(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: DateTime<Utc>,
) -> DeploymentStatus {
    let mut status = calculate(all, new, d, now);
    if !has_progress_deadline(d) {
        remove_condition(&mut status, PROGRESSING);
    }
    let current_status = d.status.clone().unwrap_or_default();
    let current = get_condition(&current_status, PROGRESSING);
    let finished = count(status.replicas) == count(status.updated_replicas)
        && current.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let name = d.metadata.name.clone().unwrap_or_default();
    let rs_name = new.and_then(|rs| rs.metadata.name.clone());
    if has_progress_deadline(d) && !finished {
        if complete(d, &status) {
            let message = match &rs_name {
                Some(rs) => format!("ReplicaSet \"{rs}\" has successfully progressed."),
                None => format!("Deployment \"{name}\" has successfully progressed."),
            };
            set_condition(
                &mut status,
                condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now),
            );
        } else if progressing(d, &status) {
            let message = match &rs_name {
                Some(rs) => format!("ReplicaSet \"{rs}\" is progressing."),
                None => format!("Deployment \"{name}\" is progressing."),
            };
            let mut cond = condition(PROGRESSING, "True", RS_UPDATED, message, now);
            // Every sign of progress refreshes lastUpdateTime, even with the same reason.
            if let Some(current) = current {
                if current.status == "True" {
                    cond.last_transition_time = current.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, cond);
        } else if timed_out(d, &status, now) {
            let message = match &rs_name {
                Some(rs) => format!("ReplicaSet \"{rs}\" has timed out progressing."),
                None => format!("Deployment \"{name}\" has timed out progressing."),
            };
            set_condition(
                &mut status,
                condition(PROGRESSING, "False", TIMED_OUT, message, now),
            );
        }
    }
    match replica_failure(all, new) {
        Some(cond) => set_condition(&mut status, cond),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    status
}

/// kube's requeueStuckDeployment: when to look again for a missed deadline, if the rollout
/// is neither finished nor already timed out.
pub fn recheck_after(
    d: &Deployment,
    new: &DeploymentStatus,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let current_status = d.status.clone().unwrap_or_default();
    let current = get_condition(&current_status, PROGRESSING)?;
    if !has_progress_deadline(d) || complete(d, new) || current.reason.as_deref() == Some(TIMED_OUT)
    {
        return None;
    }
    let updated = current.last_update_time.as_ref()?.0;
    let due = updated + k8s_openapi::chrono::Duration::seconds(deadline_seconds(d));
    let after = (due - now).to_std().unwrap_or(Duration::ZERO);
    Some(after.max(Duration::from_millis(250)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::rollout::tests::{deployment, rs};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn now() -> DateTime<Utc> {
        crate::replicaset::now()
    }

    fn with_deadline(replicas: i32) -> Deployment {
        let mut d = deployment(replicas, IntOrString::Int(1), IntOrString::Int(0));
        if let Some(s) = d.spec.as_mut() {
            s.progress_deadline_seconds = Some(600);
        }
        d
    }

    #[test]
    fn counts_and_availability() {
        let d = with_deadline(3);
        let old = rs("old", 0, 2, 2);
        let new = rs("new", 1, 2, 1);
        let s = calculate(&[&old, &new], Some(&new), &d, now());
        assert_eq!(s.replicas, Some(4));
        assert_eq!(s.updated_replicas, Some(2));
        assert_eq!(s.available_replicas, Some(3));
        assert_eq!(s.unavailable_replicas, Some(1));
        assert_eq!(s.observed_generation, Some(1));
        let available = get_condition(&s, AVAILABLE).cloned().unwrap_or_default();
        assert_eq!(
            available.reason.as_deref(),
            Some(MINIMUM_REPLICAS_AVAILABLE)
        );
        let short = rs("new", 1, 3, 1);
        let s = calculate(&[&short], Some(&short), &d, now());
        let available = get_condition(&s, AVAILABLE).cloned().unwrap_or_default();
        assert_eq!(
            (available.status.as_str(), available.reason.as_deref()),
            ("False", Some(MINIMUM_REPLICAS_UNAVAILABLE))
        );
    }

    #[test]
    fn progressing_then_complete_then_left_alone() {
        let mut d = with_deadline(3);
        let new = rs("web-abc", 1, 3, 1);
        let s = rollout(&[&new], Some(&new), &d, now());
        let p = get_condition(&s, PROGRESSING).cloned().unwrap_or_default();
        assert_eq!(p.reason.as_deref(), Some(RS_UPDATED));
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-abc\" is progressing.")
        );
        d.status = Some(s);
        let done = rs("web-abc", 1, 3, 3);
        let s = rollout(&[&done], Some(&done), &d, now());
        let p = get_condition(&s, PROGRESSING).cloned().unwrap_or_default();
        assert_eq!(p.reason.as_deref(), Some(NEW_RS_AVAILABLE));
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-abc\" has successfully progressed.")
        );
        // Conditions end Available, Progressing as kube leaves them.
        let types: Vec<String> = s
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.clone())
            .collect();
        assert_eq!(types, [AVAILABLE, PROGRESSING]);
        d.status = Some(s.clone());
        assert!(same(&rollout(&[&done], Some(&done), &d, now()), &s));
        assert_eq!(recheck_after(&d, &s, now()), None);
    }

    #[test]
    fn a_stuck_rollout_times_out_after_the_deadline() {
        let mut d = with_deadline(3);
        let stuck = rs("web-abc", 1, 3, 0);
        let long_ago = now() - k8s_openapi::chrono::Duration::seconds(601);
        let mut s = calculate(&[&stuck], Some(&stuck), &d, long_ago);
        set_condition(
            &mut s,
            condition(PROGRESSING, "True", RS_UPDATED, "x".into(), long_ago),
        );
        d.status = Some(s.clone());
        assert_eq!(
            recheck_after(&d, &s, long_ago),
            Some(Duration::from_secs(600))
        );
        let s = rollout(&[&stuck], Some(&stuck), &d, now());
        let p = get_condition(&s, PROGRESSING).cloned().unwrap_or_default();
        assert_eq!(
            (p.status.as_str(), p.reason.as_deref()),
            ("False", Some(TIMED_OUT))
        );
        assert_eq!(
            p.message.as_deref(),
            Some("ReplicaSet \"web-abc\" has timed out progressing.")
        );
    }

    #[test]
    fn set_condition_keeps_transition_time_for_the_same_status() {
        let t0 = now() - k8s_openapi::chrono::Duration::seconds(100);
        let mut s = DeploymentStatus::default();
        set_condition(
            &mut s,
            condition(PROGRESSING, "True", NEW_RS_CREATED, "a".into(), t0),
        );
        set_condition(
            &mut s,
            condition(PROGRESSING, "True", RS_UPDATED, "b".into(), now()),
        );
        let p = get_condition(&s, PROGRESSING).cloned().unwrap_or_default();
        assert_eq!(p.last_transition_time, Some(Time(t0)));
        assert_eq!(p.last_update_time, Some(Time(now())));
        // Same status and reason: untouched.
        set_condition(
            &mut s,
            condition(PROGRESSING, "True", RS_UPDATED, "c".into(), now()),
        );
        assert_eq!(
            get_condition(&s, PROGRESSING).and_then(|c| c.message.clone()),
            Some("b".into())
        );
    }
}
