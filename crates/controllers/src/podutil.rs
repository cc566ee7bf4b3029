//! What the ReplicaSet, ReplicationController and Deployment controllers know about pods:
//! which pod goes first when scaling down (kube's `ActivePodsWithRanks`), and the pod a
//! template makes (kube's `GetPodFromTemplate`).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::chrono::{DateTime, Utc};

use crate::batchutil::{is_active, is_ready, phase};

/// The annotation that tells controllers which pods to delete first (lower cost first).
pub const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Pending < Unknown < Running; anything else counts as Pending.
fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// When a ready pod's Ready condition last changed; `None` is Go's zero time (not ready, or
/// no transition time).
fn ready_time(pod: &Pod) -> Option<DateTime<Utc>> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// The pod's deletion cost; a missing or invalid annotation is 0, as in kube.
pub fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST_ANNOTATION))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0)
}

/// The highest restart count of the regular containers and of the sidecars (init containers
/// with `restartPolicy: Always`).
fn max_restarts(pod: &Pod) -> (i32, i32) {
    let Some(status) = pod.status.as_ref() else {
        return (0, 0);
    };
    let regular = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    let sidecars: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let sidecar = status
        .init_container_statuses
        .iter()
        .flatten()
        .filter(|c| sidecars.contains(&c.name.as_str()))
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    (regular, sidecar)
}

/// Go's `afterOrZero`: a zero time sorts first, else the later time does.
fn after_or_zero(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a > b,
        (a, _) => a.is_none(),
    }
}

/// The difference of the base-2 logarithms of two ages (kube's LogarithmicScaleDown), so pods
/// of about the same age count as the same age.
fn logarithmic_rank_diff(a: DateTime<Utc>, b: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let rank = |t: DateTime<Utc>| -> i64 {
        match (now - t).num_nanoseconds() {
            Some(d) if d > 0 => (d as f64).log2() as i64,
            Some(_) => -1,
            // Older than ~292 years: the largest rank there is.
            None => 64,
        }
    };
    rank(a) - rank(b)
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// Whether `a` should be deleted before `b` (kube's `ActivePodsWithRanks.Less`); `rank_*`
/// is how many active pods of the same owner family share the pod's node.
pub fn delete_before(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: DateTime<Utc>) -> bool {
    // 1. Unassigned < assigned.
    let (node_a, node_b) = (node_name(a), node_name(b));
    if node_a != node_b && (node_a.is_empty() || node_b.is_empty()) {
        return node_a.is_empty();
    }
    // 2. Pending < Unknown < Running.
    if phase_ordinal(a) != phase_ordinal(b) {
        return phase_ordinal(a) < phase_ordinal(b);
    }
    // 3. Not ready < ready.
    if is_ready(a) != is_ready(b) {
        return !is_ready(a);
    }
    // 4. Lower pod-deletion-cost < higher.
    if deletion_cost(a) != deletion_cost(b) {
        return deletion_cost(a) < deletion_cost(b);
    }
    // 5. Doubled up (more pods of the family on the node) < not doubled up.
    if rank_a != rank_b {
        return rank_a > rank_b;
    }
    // 6. Ready for less time < ready for longer (in logarithmic buckets).
    if is_ready(a) && is_ready(b) {
        let (ta, tb) = (ready_time(a), ready_time(b));
        if ta != tb {
            return match (ta, tb) {
                (Some(ta), Some(tb)) => match logarithmic_rank_diff(ta, tb, now) {
                    0 => uid(a) < uid(b),
                    d => d < 0,
                },
                _ => after_or_zero(ta, tb),
            };
        }
    }
    // 7. More restarts < fewer restarts (regular containers first, then sidecars).
    let (ra, rb) = (max_restarts(a), max_restarts(b));
    if ra.0 != rb.0 {
        return ra.0 > rb.0;
    }
    if ra.1 != rb.1 {
        return ra.1 > rb.1;
    }
    // 8. Newer < older (in logarithmic buckets); no creation time first.
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let (ca, cb) = (created(a), created(b));
    if ca != cb {
        return match (ca, cb) {
            (Some(ca), Some(cb)) => match logarithmic_rank_diff(ca, cb, now) {
                0 => uid(a) < uid(b),
                d => d < 0,
            },
            _ => after_or_zero(ca, cb),
        };
    }
    false
}

/// A stable merge sort by a "less" function that need not be a total order (kube's ranking
/// is not one), so it never panics.
fn sort_by_less<T: Clone>(items: &mut [T], less: &impl Fn(&T, &T) -> bool) {
    if items.len() < 2 {
        return;
    }
    let mid = items.len() / 2;
    sort_by_less(&mut items[..mid], less);
    sort_by_less(&mut items[mid..], less);
    let mut merged = Vec::with_capacity(items.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < items.len() {
        if less(&items[j], &items[i]) {
            merged.push(items[j].clone());
            j += 1;
        } else {
            merged.push(items[i].clone());
            i += 1;
        }
    }
    merged.extend_from_slice(&items[i..mid]);
    merged.extend_from_slice(&items[j..]);
    items.clone_from_slice(&merged);
}

/// The `count` pods to delete first: ranked by kube's rules, where a pod sharing its node with
/// more active `related` pods (all pods of the owner's controller's replica sets) goes first.
pub fn pods_to_delete<P>(pods: &[P], related: &[P], count: usize, now: DateTime<Utc>) -> Vec<P>
where
    P: Borrow<Pod> + Clone,
{
    if count >= pods.len() {
        return pods.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().map(Borrow::borrow).filter(|p| is_active(p)) {
        *on_node.entry(node_name(pod)).or_default() += 1;
    }
    let mut ranked: Vec<(P, usize)> = pods
        .iter()
        .map(|p| {
            let rank = on_node.get(node_name(p.borrow())).copied().unwrap_or(0);
            (p.clone(), rank)
        })
        .collect();
    sort_by_less(&mut ranked, &|(a, ra), (b, rb)| {
        delete_before(a.borrow(), *ra, b.borrow(), *rb, now)
    });
    ranked.into_iter().take(count).map(|(p, _)| p).collect()
}

/// Sorts pods in deletion order (first to delete first).
pub fn sort_for_deletion(pods: &mut [Pod], now: DateTime<Utc>) {
    sort_by_less(pods, &|a: &Pod, b: &Pod| delete_before(a, 0, b, 0, now));
}

/// The prefix of the names of an owner's pods: `NAME-`, or `NAME` when that would not be a
/// valid name prefix.
fn pod_name_prefix(owner: &str) -> String {
    let prefix = format!("{owner}-");
    if prefix.len() > 253 {
        owner.to_owned()
    } else {
        prefix
    }
}

/// Why a pod cannot be made from a template.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unable to create pods, no labels")]
    NoLabels,
}

/// The pod an owner creates from its template: the template's labels, annotations and
/// finalizers, the name prefix `OWNER-`, the controller reference and the template's spec.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    owner_name: &str,
    controller_ref: OwnerReference,
) -> Result<Pod, TemplateError> {
    let meta = template.metadata.clone().unwrap_or_default();
    let labels: BTreeMap<String, String> = meta.labels.unwrap_or_default();
    if labels.is_empty() {
        return Err(TemplateError::NoLabels);
    }
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(pod_name_prefix(owner_name)),
            labels: Some(labels),
            annotations: meta.annotations.filter(|a| !a.is_empty()),
            finalizers: meta.finalizers.filter(|f| !f.is_empty()),
            owner_references: Some(vec![controller_ref]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    struct P {
        name: &'static str,
        node: &'static str,
        phase: &'static str,
        ready_for: Option<i64>,
        age: i64,
        restarts: i32,
        cost: Option<&'static str>,
    }

    impl Default for P {
        fn default() -> Self {
            P {
                name: "p",
                node: "n1",
                phase: "Running",
                ready_for: Some(3600),
                age: 7200,
                restarts: 0,
                cost: None,
            }
        }
    }

    fn pod(p: P) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(p.name.to_owned()),
                uid: Some(format!("uid-{}", p.name)),
                creation_timestamp: Some(Time(now() - Duration::seconds(p.age))),
                annotations: p
                    .cost
                    .map(|c| [(DELETION_COST_ANNOTATION.to_owned(), c.to_owned())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: (!p.node.is_empty()).then(|| p.node.to_owned()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(p.phase.to_owned()),
                conditions: p.ready_for.map(|secs| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(now() - Duration::seconds(secs))),
                        ..PodCondition::default()
                    }]
                }),
                container_statuses: Some(vec![ContainerStatus {
                    name: "c".into(),
                    restart_count: p.restarts,
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    fn order(mut pods: Vec<Pod>) -> Vec<String> {
        sort_for_deletion(&mut pods, now());
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn unassigned_pending_and_unready_pods_go_first() {
        let pods = vec![
            pod(P {
                name: "running-ready",
                ..P::default()
            }),
            pod(P {
                name: "running-unready",
                ready_for: None,
                ..P::default()
            }),
            pod(P {
                name: "pending",
                phase: "Pending",
                ready_for: None,
                ..P::default()
            }),
            pod(P {
                name: "unknown",
                phase: "Unknown",
                ready_for: None,
                ..P::default()
            }),
            pod(P {
                name: "unassigned",
                node: "",
                ..P::default()
            }),
        ];
        assert_eq!(
            order(pods),
            [
                "unassigned",
                "pending",
                "unknown",
                "running-unready",
                "running-ready"
            ]
        );
    }

    #[test]
    fn deletion_cost_then_ready_time_then_restarts_then_age() {
        let pods = vec![
            pod(P {
                name: "costly",
                cost: Some("100"),
                ..P::default()
            }),
            pod(P {
                name: "cheap",
                cost: Some("-5"),
                ..P::default()
            }),
            pod(P {
                name: "bad-cost",
                cost: Some("x"),
                ready_for: Some(100_000),
                ..P::default()
            }),
            pod(P {
                name: "fresh",
                ready_for: Some(10),
                ..P::default()
            }),
        ];
        // Invalid cost counts as 0; among equal costs the one ready for less time goes first.
        assert_eq!(order(pods), ["cheap", "fresh", "bad-cost", "costly"]);

        // Ready for about the same time (same log2 bucket): restarts decide, then age.
        let pods = vec![
            pod(P {
                name: "old",
                age: 100_000,
                ready_for: None,
                phase: "Pending",
                ..P::default()
            }),
            pod(P {
                name: "new",
                age: 10,
                ready_for: None,
                phase: "Pending",
                ..P::default()
            }),
            pod(P {
                name: "crashy",
                restarts: 7,
                ready_for: None,
                phase: "Pending",
                ..P::default()
            }),
        ];
        assert_eq!(order(pods), ["crashy", "new", "old"]);
    }

    #[test]
    fn doubled_up_pods_go_first_and_only_count_are_returned() {
        let pods = vec![
            pod(P {
                name: "alone",
                node: "n1",
                ..P::default()
            }),
            pod(P {
                name: "crowded",
                node: "n2",
                ..P::default()
            }),
        ];
        let related = vec![
            pods[1].clone(),
            pod(P {
                name: "sibling",
                node: "n2",
                ..P::default()
            }),
            pods[0].clone(),
        ];
        let chosen = pods_to_delete(&pods, &related, 1, now());
        assert_eq!(chosen[0].metadata.name.as_deref(), Some("crowded"));
        assert_eq!(pods_to_delete(&pods, &related, 5, now()).len(), 2);
    }

    #[test]
    fn a_template_makes_a_labelled_owned_pod() {
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec::default()),
        };
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let pod = pod_from_template(&template, "web", owner.clone()).unwrap_or_default();
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.metadata.owner_references, Some(vec![owner.clone()]));
        let bare = PodTemplateSpec::default();
        assert_eq!(
            pod_from_template(&bare, "web", owner).err(),
            Some(TemplateError::NoLabels)
        );
    }
}
