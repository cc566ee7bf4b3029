//! The disruption controller: the status of every PodDisruptionBudget, which the API
//! server's `pods/eviction` reads and spends.
//!
//! - expectedPods and desiredHealthy: with an integer `minAvailable`, the selected pods and
//!   that number; with a percentage `minAvailable` or any `maxUnavailable`, the sum of the
//!   scales of the pods' controllers (ReplicaSets, or the Deployments that own them,
//!   ReplicationControllers, StatefulSets), percentages rounded up.
//! - currentHealthy: selected pods that are Ready, not being deleted and not in
//!   `disruptedPods` (evictions the API server granted whose pods are not gone yet).
//! - disruptionsAllowed = currentHealthy - desiredHealthy (never below 0, and 0 without
//!   pods), with the DisruptionAllowed condition; `disruptedPods` entries are dropped once
//!   their pod is deleted, or after two minutes if it never was.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use crate::batchutil::{controller_of, is_ready, scaled_value, selector_matches};
use crate::events::{Recorder, Type};
use crate::informer::{Change, Informer, key_of};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

/// How long an eviction's pod may take to be deleted before its entry is dropped.
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

struct Controller {
    ctx: Context,
    /// Events come from this controller, as kube-controller-manager names it.
    recorder: Recorder,
    pdbs: Informer<PodDisruptionBudget>,
    pods: Informer<Pod>,
    replicasets: Informer<ReplicaSet>,
    deployments: Informer<Deployment>,
    rcs: Informer<ReplicationController>,
    statefulsets: Informer<StatefulSet>,
}

pub fn start(ctx: &Context, options: &Options) {
    let pdbs = ctx.informer::<PodDisruptionBudget>();
    let pods = ctx.informer::<Pod>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&pdbs, ctx.stop.clone(), move |change| {
        q.add(key_of(change.object().as_ref()));
    });
    let (q, pdb_cache) = (queue.clone(), pdbs.clone());
    on_change(&pods, ctx.stop.clone(), move |change| {
        let (old, new) = match change {
            Change::Added(p) | Change::Deleted(p) => (None, p),
            Change::Updated(o, n) => (Some(o), n),
        };
        let ns = new.metadata.namespace.clone().unwrap_or_default();
        let empty = BTreeMap::new();
        for pdb in pdb_cache.list_in(&ns) {
            let selects = |p: &Pod| selects(&pdb, p.metadata.labels.as_ref().unwrap_or(&empty));
            if selects(new) || old.is_some_and(|o| selects(o)) {
                q.add(key_of(pdb.as_ref()));
            }
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        recorder: Recorder::new(ctx.client.clone(), "controllermanager"),
        pdbs,
        pods,
        replicasets: ctx.informer::<ReplicaSet>(),
        deployments: ctx.informer::<Deployment>(),
        rcs: ctx.informer::<ReplicationController>(),
        statefulsets: ctx.informer::<StatefulSet>(),
    });
    run_workers(controller, queue, options.workers.min(2), ctx.stop.clone());
}

/// policy/v1: a null selector selects nothing, an empty one every pod of the namespace.
fn selects(pdb: &PodDisruptionBudget, labels: &BTreeMap<String, String>) -> bool {
    pdb.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|sel| selector_matches(sel, labels))
}

/// (expectedPods, desiredHealthy) from the budget and, when a percentage or maxUnavailable
/// needs it, the total scale of the pods' controllers.
pub fn expected_and_desired(
    min_available: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    pod_count: i32,
    controller_scale: impl FnOnce() -> Result<i32, String>,
) -> Result<(i32, i32), String> {
    if let Some(max) = max_unavailable {
        let expected = controller_scale()?;
        let max = scaled_value(max, expected, true)?;
        return Ok((expected, (expected - max).max(0)));
    }
    match min_available {
        Some(IntOrString::Int(n)) => Ok((pod_count, *n)),
        Some(percent @ IntOrString::String(_)) => {
            let expected = controller_scale()?;
            Ok((expected, scaled_value(percent, expected, true)?))
        }
        None => Ok((pod_count, 0)),
    }
}

/// disruptionsAllowed for the counts.
pub fn disruptions_allowed(expected: i32, healthy: i32, desired: i32) -> i32 {
    if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    }
}

/// The disruptedPods entries still pending: their pod exists, is not being deleted, and was
/// evicted less than two minutes ago. Also returns the earliest expiry.
pub fn pending_disruptions(
    disrupted: &BTreeMap<String, Time>,
    pods: &[Arc<Pod>],
    now: DateTime<Utc>,
) -> (BTreeMap<String, Time>, Vec<String>, Option<DateTime<Utc>>) {
    let timeout = k8s_openapi::chrono::Duration::from_std(DELETION_TIMEOUT)
        .unwrap_or_else(|_| k8s_openapi::chrono::Duration::seconds(120));
    let mut kept = BTreeMap::new();
    let mut overdue = Vec::new();
    let mut recheck: Option<DateTime<Utc>> = None;
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.name_any();
        let Some(at) = disrupted.get(&name) else {
            continue;
        };
        let expected_deletion = at.0 + timeout;
        if expected_deletion < now {
            overdue.push(name);
        } else {
            recheck = Some(recheck.map_or(expected_deletion, |r| r.min(expected_deletion)));
            kept.insert(name, at.clone());
        }
    }
    (kept, overdue, recheck)
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "disruption"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        if !(self.pdbs.has_synced() && self.pods.has_synced()) {
            return Ok(Next::After(Duration::from_millis(200)));
        }
        let Some(pdb) = self.pdbs.get(&key) else {
            return Ok(Next::Done);
        };
        let ns = pdb.namespace().unwrap_or_default();
        let empty = BTreeMap::new();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_in(&ns)
            .into_iter()
            .filter(|p| selects(&pdb, p.metadata.labels.as_ref().unwrap_or(&empty)))
            .collect();
        if pods.is_empty() {
            self.recorder.record(
                pdb.as_ref(),
                Type::Normal,
                "NoPods",
                "No matching pods found",
            );
        }
        let spec = pdb.spec.clone().unwrap_or_default();
        let pod_count = i32::try_from(pods.len()).unwrap_or(i32::MAX);
        let counts = expected_and_desired(
            spec.min_available.as_ref(),
            spec.max_unavailable.as_ref(),
            pod_count,
            || self.controller_scale(&pdb, &pods),
        );
        let (expected, desired) = match counts {
            Ok(c) => c,
            Err(message) => {
                self.recorder.record(
                    pdb.as_ref(),
                    Type::Warning,
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {message}"),
                );
                self.fail_safe(&pdb, &message).await?;
                return Ok(Next::Done);
            }
        };
        let now = Utc::now();
        let status = pdb.status.clone().unwrap_or_default();
        let (disrupted, overdue, recheck) = pending_disruptions(
            &status.disrupted_pods.clone().unwrap_or_default(),
            &pods,
            now,
        );
        for name in overdue {
            if let Some(pod) = pods.iter().find(|p| p.name_any() == name) {
                self.recorder.record(
                    pod.as_ref(),
                    Type::Warning,
                    "NotDeleted",
                    format!(
                        "Pod was expected by PDB {ns}/{} to be deleted but it wasn't",
                        pdb.name_any()
                    ),
                );
            }
        }
        let healthy = i32::try_from(
            pods.iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| !disrupted.contains_key(&p.name_any()))
                .filter(|p| is_ready(p))
                .count(),
        )
        .unwrap_or(i32::MAX);
        let allowed = disruptions_allowed(expected, healthy, desired);
        let (cond_status, reason) = if allowed > 0 {
            ("True", "SufficientPods")
        } else {
            ("False", "InsufficientPods")
        };
        let new_status = PodDisruptionBudgetStatus {
            current_healthy: healthy,
            desired_healthy: desired,
            expected_pods: expected,
            disruptions_allowed: allowed,
            disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
            observed_generation: pdb.metadata.generation,
            conditions: Some(set_condition(
                status.conditions.clone(),
                cond_status,
                reason,
                "",
                pdb.metadata.generation,
                now,
            )),
        };
        self.write_status(&pdb, new_status).await?;
        Ok(match recheck {
            Some(at) => Next::After(
                (at - now).to_std().unwrap_or(Duration::from_secs(1)) + Duration::from_millis(100),
            ),
            None => Next::Done,
        })
    }
}

/// Sets the DisruptionAllowed condition, keeping its transition time unless the status
/// changes (apimachinery's SetStatusCondition).
fn set_condition(
    conditions: Option<Vec<Condition>>,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let mut conditions = conditions.unwrap_or_default();
    match conditions
        .iter_mut()
        .find(|c| c.type_ == "DisruptionAllowed")
    {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Time(now);
            }
            c.status = status.to_owned();
            c.reason = reason.to_owned();
            c.message = message.to_owned();
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: "DisruptionAllowed".to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: Time(now),
        }),
    }
    conditions
}

impl Controller {
    /// The summed scale of the pods' controllers.
    fn controller_scale(
        &self,
        pdb: &PodDisruptionBudget,
        pods: &[Arc<Pod>],
    ) -> Result<i32, String> {
        let ns = pdb.namespace().unwrap_or_default();
        let mut scales: HashMap<String, i32> = HashMap::new();
        let mut unmanaged = Vec::new();
        for pod in pods {
            let Some(owner) = controller_of(&pod.metadata) else {
                unmanaged.push(pod.name_any());
                continue;
            };
            if scales.contains_key(&owner.uid) {
                continue;
            }
            let found: Option<(String, i32)> = match owner.kind.as_str() {
                "ReplicaSet" => self
                    .replicasets
                    .get_in(Some(&ns), &owner.name)
                    .filter(|rs| rs.metadata.uid.as_deref() == Some(owner.uid.as_str()))
                    .map(|rs| {
                        let deployment = controller_of(&rs.metadata)
                            .filter(|d| d.kind == "Deployment")
                            .and_then(|d| {
                                self.deployments.get_in(Some(&ns), &d.name).filter(|dep| {
                                    dep.metadata.uid.as_deref() == Some(d.uid.as_str())
                                })
                            });
                        match deployment {
                            Some(d) => (
                                d.metadata.uid.clone().unwrap_or_default(),
                                d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                            ),
                            None => (
                                owner.uid.clone(),
                                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                            ),
                        }
                    }),
                "ReplicationController" => self
                    .rcs
                    .get_in(Some(&ns), &owner.name)
                    .filter(|rc| rc.metadata.uid.as_deref() == Some(owner.uid.as_str()))
                    .map(|rc| {
                        (
                            owner.uid.clone(),
                            rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                        )
                    }),
                "StatefulSet" => self
                    .statefulsets
                    .get_in(Some(&ns), &owner.name)
                    .filter(|s| s.metadata.uid.as_deref() == Some(owner.uid.as_str()))
                    .map(|s| {
                        (
                            owner.uid.clone(),
                            s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                        )
                    }),
                _ => None,
            };
            match found {
                Some((uid, scale)) => {
                    scales.insert(owner.uid.clone(), 0);
                    scales.insert(uid, scale);
                }
                None => return Err(format!("found no controllers for pod {:?}", pod.name_any())),
            }
        }
        if !unmanaged.is_empty() {
            let selector = pdb
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .map(|s| format!("{s:?}"))
                .unwrap_or_default();
            self.recorder.record(
                pdb,
                Type::Normal,
                "UnmanagedPods",
                format!("Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."),
            );
        }
        Ok(scales.values().sum())
    }

    /// kube's failSafe: no disruption allowed while the status cannot be computed.
    async fn fail_safe(&self, pdb: &PodDisruptionBudget, message: &str) -> anyhow::Result<()> {
        let mut status = pdb.status.clone().unwrap_or_default();
        status.disruptions_allowed = 0;
        status.conditions = Some(set_condition(
            status.conditions.take(),
            "False",
            "SyncFailed",
            message,
            pdb.metadata.generation,
            Utc::now(),
        ));
        self.write_status(pdb, status).await
    }

    async fn write_status(
        &self,
        pdb: &PodDisruptionBudget,
        status: PodDisruptionBudgetStatus,
    ) -> anyhow::Result<()> {
        if pdb.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut updated = pdb.clone();
        updated.status = Some(status);
        let api: Api<PodDisruptionBudget> = Api::namespaced(
            self.ctx.client.clone(),
            &pdb.namespace().unwrap_or_default(),
        );
        api.replace_status(
            &pdb.name_any(),
            &PostParams::default(),
            serde_json::to_vec(&updated)?,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.to_owned())
    }

    #[test]
    fn budgets_from_min_available_and_max_unavailable() {
        // minAvailable 2 over 3 pods: expected 3, desired 2, one disruption.
        let (e, d) =
            expected_and_desired(Some(&IntOrString::Int(2)), None, 3, || Err("unused".into()))
                .unwrap_or_default();
        assert_eq!((e, d), (3, 2));
        assert_eq!(disruptions_allowed(e, 3, d), 1);
        assert_eq!(disruptions_allowed(e, 2, d), 0);
        // maxUnavailable 1 over a scale of 5: desired 4.
        assert_eq!(
            expected_and_desired(None, Some(&IntOrString::Int(1)), 3, || Ok(5)),
            Ok((5, 4))
        );
        // Percentages round up: minAvailable 50% of 3 is 2; maxUnavailable 50% of 3 is 2, so 1.
        assert_eq!(
            expected_and_desired(Some(&pct("50%")), None, 3, || Ok(3)),
            Ok((3, 2))
        );
        assert_eq!(
            expected_and_desired(None, Some(&pct("50%")), 3, || Ok(3)),
            Ok((3, 1))
        );
        // Controllers that cannot be found fail the computation.
        assert!(
            expected_and_desired(None, Some(&pct("50%")), 3, || Err(
                "found no controllers".into()
            ))
            .is_err()
        );
        // No pods: nothing may be disrupted.
        assert_eq!(disruptions_allowed(0, 0, 0), 0);
    }

    #[test]
    fn disrupted_pods_are_dropped_when_deleted_or_overdue() {
        let now = Utc::now();
        let pod = |name: &str, deleting: bool| {
            Arc::new(Pod {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    deletion_timestamp: deleting.then_some(Time(now)),
                    ..ObjectMeta::default()
                },
                ..Pod::default()
            })
        };
        let recent = Time(now - k8s_openapi::chrono::Duration::seconds(10));
        let old = Time(now - k8s_openapi::chrono::Duration::seconds(300));
        let disrupted: BTreeMap<String, Time> = [
            ("fresh".to_owned(), recent.clone()),
            ("stale".to_owned(), old),
            ("going".to_owned(), recent.clone()),
            ("gone".to_owned(), recent.clone()),
        ]
        .into();
        let pods = vec![pod("fresh", false), pod("stale", false), pod("going", true)];
        let (kept, overdue, recheck) = pending_disruptions(&disrupted, &pods, now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["fresh"]);
        assert_eq!(overdue, ["stale"]);
        assert_eq!(
            recheck,
            Some(recent.0 + k8s_openapi::chrono::Duration::seconds(120))
        );
    }
}
