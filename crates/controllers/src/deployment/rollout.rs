//! The arithmetic of a rollout, as kube's deployment controller does it, free of I/O: surge
//! and unavailability budgets, how far the new ReplicaSet may grow and the old ones shrink
//! in one step, and how a scaled deployment's replicas are spread over its ReplicaSets.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::revision::{self, DESIRED_REPLICAS, MAX_REPLICAS};
use crate::batchutil::scaled_value;
use crate::replicaset::ReplicaOwner;

/// A ReplicaSet to be resized: its uid and its new `spec.replicas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resize {
    pub uid: String,
    pub replicas: i32,
}

/// `spec.replicas` of the deployment.
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet.
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.desired()
}

fn status_of(
    rs: &ReplicaSet,
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    rs.status.as_ref().and_then(f).unwrap_or(0)
}

/// `status.replicas` of a ReplicaSet.
pub fn actual(rs: &ReplicaSet) -> i32 {
    status_of(rs, |s| Some(s.replicas))
}

pub fn ready(rs: &ReplicaSet) -> i32 {
    status_of(rs, |s| s.ready_replicas)
}

pub fn available(rs: &ReplicaSet) -> i32 {
    status_of(rs, |s| s.available_replicas)
}

fn uid(rs: &ReplicaSet) -> String {
    rs.metadata.uid.clone().unwrap_or_default()
}

/// Whether the deployment uses the RollingUpdate strategy (the default).
pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// kube's ResolveFenceposts: maxSurge rounded up, maxUnavailable rounded down, and never
/// both zero (then one pod may be unavailable).
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

fn fenceposts(d: &Deployment) -> Result<(i32, i32), String> {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        rolling.and_then(|r| r.max_surge.as_ref()),
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        replicas(d),
    )
}

/// How many pods over `spec.replicas` a rolling update may run (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).map(|(s, _)| s).unwrap_or(0)
}

/// How many of `spec.replicas` may be unavailable during a rolling update.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    let unavailable = fenceposts(d).map(|(_, u)| u).unwrap_or(0);
    unavailable.min(replicas(d))
}

/// Sum of `spec.replicas`.
pub fn total_replicas(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| rs_replicas(rs)).sum()
}

/// Sum of `status.availableReplicas`.
pub fn total_available(rss: &[&ReplicaSet]) -> i32 {
    rss.iter().map(|rs| available(rs)).sum()
}

/// Oldest first, then by name (kube's ReplicaSetsByCreationTimestamp).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Largest first; among equals, oldest first (ReplicaSetsBySizeOlder).
fn by_size_older(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Largest first; among equals, newest first (ReplicaSetsBySizeNewer).
fn by_size_newer(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    rs_replicas(b)
        .cmp(&rs_replicas(a))
        .then_with(|| by_creation(b, a))
}

/// Lowest revision first, then oldest (ReplicaSetsByRevision).
pub fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let r = |rs: &ReplicaSet| revision::revision(&rs.metadata).unwrap_or(0);
    r(a).cmp(&r(b)).then_with(|| by_creation(a, b))
}

/// The replica sets with pods wanted.
pub fn active<'a>(rss: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    rss.iter()
        .copied()
        .filter(|rs| rs_replicas(rs) > 0)
        .collect()
}

/// kube's NewRSNewReplicas: the size the new ReplicaSet may grow to now.
pub fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: &ReplicaSet,
) -> Result<i32, String> {
    if !is_rolling(d) {
        return Ok(replicas(d));
    }
    let surge = fenceposts(d)?.0;
    let current = total_replicas(all);
    let max_total = replicas(d) + surge;
    if current >= max_total {
        return Ok(rs_replicas(new));
    }
    let up = (max_total - current).min(replicas(d) - rs_replicas(new));
    Ok(rs_replicas(new) + up)
}

/// kube's reconcileNewReplicaSet: the new ReplicaSet's next size, if it changes.
pub fn reconcile_new(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: &ReplicaSet,
) -> Result<Option<i32>, String> {
    let want = replicas(d);
    let have = rs_replicas(new);
    if have == want {
        return Ok(None);
    }
    if have > want {
        return Ok(Some(want));
    }
    let next = new_rs_new_replicas(d, all, new)?;
    Ok((next != have).then_some(next))
}

/// kube's reconcileOldReplicaSets for a rolling update: first the old ReplicaSets' unhealthy
/// replicas are dropped (they do not count toward availability), then old ReplicaSets shrink,
/// oldest first, as far as the available pods allow. The resizes in order (one ReplicaSet may
/// appear twice).
pub fn reconcile_old(
    d: &Deployment,
    all: &[&ReplicaSet],
    old: &[&ReplicaSet],
    new: &ReplicaSet,
) -> Vec<Resize> {
    let old_total = total_replicas(old);
    if old_total == 0 {
        return Vec::new();
    }
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = rs_replicas(new) - available(new);
    let max_scaled_down = total_replicas(all) - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut resizes = Vec::new();
    // Working sizes of the old ReplicaSets, oldest first.
    let mut olds: Vec<(&ReplicaSet, i32)> = old.iter().map(|rs| (*rs, rs_replicas(rs))).collect();
    olds.sort_by(|a, b| by_creation(a.0, b.0));

    // Unhealthy replicas first.
    let mut cleaned = 0;
    for (rs, size) in &mut olds {
        if cleaned >= max_scaled_down {
            break;
        }
        if *size == 0 || *size == available(rs) {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(*size - available(rs));
        *size -= down;
        cleaned += down;
        resizes.push(Resize {
            uid: uid(rs),
            replicas: *size,
        });
    }

    // Then as many available ones as availability allows.
    let available_now = total_available(all);
    if available_now > min_available {
        let budget = available_now - min_available;
        let mut scaled = 0;
        for (rs, size) in &mut olds {
            if scaled >= budget {
                break;
            }
            if *size == 0 {
                continue;
            }
            let down = (*size).min(budget - scaled);
            *size -= down;
            scaled += down;
            resizes.push(Resize {
                uid: uid(rs),
                replicas: *size,
            });
        }
    }
    resizes
}

/// kube's FindActiveOrLatest: the one ReplicaSet with replicas, or the newest when none has
/// any; `None` when several have replicas.
pub fn find_active_or_latest<'a>(
    new: Option<&'a ReplicaSet>,
    old: &[&'a ReplicaSet],
) -> Option<&'a ReplicaSet> {
    if new.is_none() && old.is_empty() {
        return None;
    }
    let mut old_newest_first: Vec<&ReplicaSet> = old.to_vec();
    old_newest_first.sort_by(|a, b| by_creation(b, a));
    let mut all = old_newest_first.clone();
    all.extend(new);
    let active = active(&all);
    match active.len() {
        0 => new.or_else(|| old_newest_first.first().copied()),
        1 => active.first().copied(),
        _ => None,
    }
}

/// kube's IsSaturated: the new ReplicaSet runs all the deployment's replicas, available.
pub fn is_saturated(d: &Deployment, new: Option<&ReplicaSet>) -> bool {
    let Some(rs) = new else {
        return false;
    };
    let want = replicas(d);
    rs_replicas(rs) == want
        && revision::replicas_annotation(&rs.metadata, DESIRED_REPLICAS) == Some(want)
        && available(rs) == want
}

/// Go's integer.RoundToInt32: half away from zero.
fn round(x: f64) -> i32 {
    if x < 0.0 {
        (x - 0.5) as i32
    } else {
        (x + 0.5) as i32
    }
}

/// kube's getReplicaSetFraction: the change that keeps this ReplicaSet's share of the
/// deployment when the deployment is resized.
fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = replicas(d) + max_surge(d);
    let annotated = revision::replicas_annotation(&rs.metadata, MAX_REPLICAS)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        // kube divides by zero here (an infinite size); give the ReplicaSet everything.
        return deployment_replicas - rs_replicas(rs);
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
    round(size) - rs_replicas(rs)
}

/// kube's GetProportion: this ReplicaSet's part of `to_add`, given `added` so far.
fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let share = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        share.min(allowed)
    } else {
        share.max(allowed)
    }
}

/// kube's proportional scaling: when a deployment is resized during a rollout, the change is
/// spread over the active ReplicaSets by their share of the last size (bigger first), the
/// rounding leftovers going to the biggest. Every active ReplicaSet is listed, in the order
/// to write them (its annotations are refreshed even if its size stays).
pub fn proportional_scale(d: &Deployment, active_rss: &[&ReplicaSet]) -> Vec<Resize> {
    let mut rss: Vec<&ReplicaSet> = active_rss.to_vec();
    let allowed = if replicas(d) > 0 {
        replicas(d) + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total_replicas(&rss);
    match to_add.cmp(&0) {
        Ordering::Greater => rss.sort_by(|a, b| by_size_newer(a, b)),
        Ordering::Less => rss.sort_by(|a, b| by_size_older(a, b)),
        Ordering::Equal => {}
    }
    let mut added = 0;
    let mut sizes: Vec<i32> = Vec::with_capacity(rss.len());
    for rs in &rss {
        if to_add != 0 {
            let p = proportion(rs, d, to_add, added);
            sizes.push(rs_replicas(rs) + p);
            added += p;
        } else {
            sizes.push(rs_replicas(rs));
        }
    }
    if to_add != 0
        && let Some(first) = sizes.first_mut()
    {
        *first = (*first + to_add - added).max(0);
    }
    rss.iter()
        .zip(sizes)
        .map(|(rs, replicas)| Resize {
            uid: uid(rs),
            replicas,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus,
        RollingUpdateDeployment,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::chrono::{TimeZone, Utc};

    pub(crate) fn deployment(
        replicas: i32,
        surge: IntOrString,
        unavailable: IntOrString,
    ) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    /// A ReplicaSet `name` created at minute `age` with `replicas` wanted and `available` up.
    pub(crate) fn rs(name: &str, minute: u32, replicas: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(name.into()),
                creation_timestamp: Utc
                    .with_ymd_and_hms(2025, 1, 1, 0, minute, 0)
                    .single()
                    .map(Time),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..ReplicaSetSpec::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                available_replicas: Some(available),
                ready_replicas: Some(available),
                ..ReplicaSetStatus::default()
            }),
        }
    }

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        assert_eq!(
            resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10),
            Ok((3, 2))
        );
        assert_eq!(
            resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 1),
            Ok((1, 0))
        );
        // Both zero: one may be unavailable.
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&pct("10%")), 5),
            Ok((0, 1))
        );
        assert_eq!(resolve_fenceposts(None, None, 5), Ok((0, 1)));
        assert!(resolve_fenceposts(Some(&pct("x")), None, 5).is_err());
        let d = deployment(3, IntOrString::Int(1), IntOrString::Int(5));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 3));
        let zero = deployment(0, IntOrString::Int(1), IntOrString::Int(1));
        assert_eq!(max_unavailable(&zero), 0);
        let mut recreate = d.clone();
        if let Some(s) = recreate.spec.as_mut() {
            s.strategy = Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            });
        }
        assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    }

    /// One step of a rolling update with maxSurge 1, maxUnavailable 0 from 3 old pods.
    #[test]
    fn a_surge_only_rollout_adds_one_then_removes_one() {
        let d = deployment(3, IntOrString::Int(1), IntOrString::Int(0));
        let old = rs("old", 0, 3, 3);
        let new = rs("new", 1, 0, 0);
        let all = [&old, &new];
        // Up by the surge only.
        assert_eq!(reconcile_new(&d, &all, &new), Ok(Some(1)));
        // With the surge used and the new pod not yet available, nothing goes down.
        let new = rs("new", 1, 1, 0);
        let all = [&old, &new];
        assert_eq!(reconcile_new(&d, &all, &new), Ok(None));
        assert!(reconcile_old(&d, &all, &[&old], &new).is_empty());
        // Once it is available, one old replica goes.
        let new = rs("new", 1, 1, 1);
        let all = [&old, &new];
        assert_eq!(
            reconcile_old(&d, &all, &[&old], &new),
            vec![Resize {
                uid: "old".into(),
                replicas: 2
            }]
        );
    }

    #[test]
    fn unhealthy_old_replicas_go_before_available_ones() {
        // 25%/25% of 4: surge 1, unavailable 1. Old has 4 wanted, only 2 available.
        let d = deployment(4, pct("25%"), pct("25%"));
        let old = rs("old", 0, 4, 2);
        let new = rs("new", 1, 1, 0);
        let all = [&old, &new];
        // All 5 - min 3 - new unavailable 1 = 1 may go: an unhealthy one.
        assert_eq!(
            reconcile_old(&d, &all, &[&old], &new),
            vec![Resize {
                uid: "old".into(),
                replicas: 3
            }]
        );
        // Older ReplicaSets shrink first.
        let d = deployment(4, IntOrString::Int(0), IntOrString::Int(2));
        let oldest = rs("oldest", 0, 2, 2);
        let old = rs("old", 1, 2, 2);
        let new = rs("new", 2, 0, 0);
        let all = [&oldest, &old, &new];
        assert_eq!(
            reconcile_old(&d, &all, &[&old, &oldest], &new),
            vec![Resize {
                uid: "oldest".into(),
                replicas: 0
            }]
        );
    }

    #[test]
    fn proportional_scaling_keeps_shares_and_gives_leftovers_to_the_biggest() {
        // 10 replicas, surge 3 (max 13), mid-rollout: old 8, new 5. Scaled to 20 (max 23).
        let mut d = deployment(20, IntOrString::Int(3), IntOrString::Int(2));
        d.status = Some(Default::default());
        let mut old = rs("old", 0, 8, 8);
        let mut new = rs("new", 1, 5, 5);
        for r in [&mut old, &mut new] {
            r.metadata.annotations = Some([(MAX_REPLICAS.to_owned(), "13".to_owned())].into());
        }
        let plan = proportional_scale(&d, &[&old, &new]);
        // 8 * 23/13 = 14.15 -> 14, 5 * 23/13 = 8.8 -> 9: 23 exactly.
        assert_eq!(
            plan,
            vec![
                Resize {
                    uid: "old".into(),
                    replicas: 14
                },
                Resize {
                    uid: "new".into(),
                    replicas: 9
                },
            ]
        );
        // Scaling down to zero empties everything.
        let zero = deployment(0, IntOrString::Int(3), IntOrString::Int(2));
        let plan = proportional_scale(&zero, &[&old, &new]);
        assert!(plan.iter().all(|r| r.replicas == 0));
    }

    #[test]
    fn the_active_or_latest_replica_set() {
        let a = rs("a", 0, 0, 0);
        let b = rs("b", 1, 0, 0);
        let c = rs("c", 2, 3, 3);
        assert_eq!(
            find_active_or_latest(None, &[&a, &b]).map(uid),
            Some("b".into())
        );
        assert_eq!(
            find_active_or_latest(Some(&c), &[&a, &b]).map(uid),
            Some("c".into())
        );
        let d = rs("d", 3, 1, 1);
        assert!(find_active_or_latest(Some(&c), &[&d]).is_none());
        assert!(find_active_or_latest(None, &[]).is_none());
    }
}
