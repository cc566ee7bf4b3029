//! DefaultPreemption, the PostFilter plugin: when a pod fits nowhere, find a node where
//! evicting pods of lower priority makes room, evicting as few and as unimportant pods as
//! possible (and sparing those a PodDisruptionBudget protects), and nominate the pod to it.

use std::sync::Arc;

use k8s_openapi::chrono::{DateTime, Utc};

use crate::cache::Pdb;
use crate::framework::{CycleContext, CycleState, Framework, Plugin};
use crate::node_info::NodeInfo;
use crate::nominator::Nominator;
use crate::plugins::PluginName;
use crate::pod_info::PodInfo;
use crate::schedule_one::{Diagnosis, Rng};
use crate::status::{Code, FitError, Status};

/// The status of a node where no pod has a lower priority than the preemptor.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
/// The status of the nodes preemption did not consider.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

/// DefaultPreemptionArgs.
pub struct DefaultPreemption {
    /// `minCandidateNodesPercentage` (10).
    pub min_candidate_nodes_percentage: usize,
    /// `minCandidateNodesAbsolute` (100).
    pub min_candidate_nodes_absolute: usize,
}

impl Default for DefaultPreemption {
    fn default() -> Self {
        DefaultPreemption {
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> PluginName {
        PluginName::DefaultPreemption
    }
}

/// What preemption decided.
#[derive(Debug)]
pub enum Preemption {
    /// Evict `victims` from `node` and nominate the pod to it; `lower_nominated` are pods
    /// of lower priority nominated to that node, whose nomination is cleared.
    Nominate {
        node: String,
        victims: Vec<Arc<PodInfo>>,
        lower_nominated: Vec<Arc<PodInfo>>,
    },
    /// Preemption cannot help: the message (already prefixed `preemption: `) and whether
    /// the pod's nomination is cleared.
    NotHelpful {
        message: String,
        clear_nomination: bool,
    },
}

/// A node where preemption would work.
struct Candidate {
    node: String,
    /// Most important first.
    victims: Vec<Arc<PodInfo>>,
    pdb_violations: usize,
}

/// When a pod started; pods not started yet count as starting now.
fn start_time(p: &PodInfo, now: DateTime<Utc>) -> DateTime<Utc> {
    p.start_time.unwrap_or(now)
}

/// kube's `util.MoreImportantPod`: higher priority, then running longer.
fn more_important(a: &PodInfo, b: &PodInfo, now: DateTime<Utc>) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| start_time(a, now).cmp(&start_time(b, now)))
}

/// Splits pods (in order) into those whose eviction would break a PodDisruptionBudget and
/// the rest (kube's `filterPodsWithPDBViolation`).
fn split_by_pdb(pods: Vec<Arc<PodInfo>>, pdbs: &[&Pdb]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let mut violating = Vec::new();
    let mut fine = Vec::new();
    for pod in pods {
        let mut violates = false;
        if !pod.labels().is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.namespace != pod.namespace
                    || !pdb.selector.matches(pod.labels())
                    || pdb.disrupted_pods.contains(&pod.name)
                {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violates = true;
                }
            }
        }
        if violates {
            violating.push(pod);
        } else {
            fine.push(pod);
        }
    }
    (violating, fine)
}

impl DefaultPreemption {
    fn num_candidates(&self, nodes: usize) -> usize {
        (nodes * self.min_candidate_nodes_percentage / 100)
            .max(self.min_candidate_nodes_absolute)
            .min(nodes)
    }

    /// Whether the pod may preempt (kube's `PodEligibleToPreemptOthers`).
    fn eligible(
        &self,
        ctx: &CycleContext<'_>,
        pod: &PodInfo,
        diagnosis: &Diagnosis,
    ) -> Result<(), String> {
        if pod.preempt_never {
            return Err("not eligible due to preemptionPolicy=Never.".to_owned());
        }
        if let Some(nominated) = &pod.nominated_node {
            // Its nominated node no longer fits at all: it may preempt elsewhere.
            if diagnosis
                .status_of(ctx.cache, nominated)
                .is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable)
            {
                return Ok(());
            }
            if let Some(node) = ctx.cache.node(nominated)
                && node
                    .pods
                    .iter()
                    .any(|p| p.priority < pod.priority && p.terminating && p.preempted_by_scheduler)
            {
                return Err(
                    "not eligible due to a terminating pod on the nominated node.".to_owned(),
                );
            }
        }
        Ok(())
    }

    /// The fewest, least important pods to evict from `node` for the pod to fit (kube's
    /// `SelectVictimsOnNode`): evict every lower-priority pod, then put back as many as
    /// still let the pod fit, most important first, PDB-protected ones before the rest.
    #[allow(clippy::too_many_arguments)]
    fn select_victims(
        &self,
        fw: &Framework,
        ctx: &CycleContext<'_>,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        pdbs: &[&Pdb],
        nominator: &Nominator,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
        let mut node = node.clone();
        let mut state = state.clone();
        let mut potential: Vec<Arc<PodInfo>> = node
            .pods
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        if potential.is_empty() {
            return Err(Status::unresolvable(NO_VICTIMS));
        }
        for p in &potential {
            node.remove_pod(&p.key);
            fw.run_pre_filter_extension(ctx, &mut state, pod, p, &node, false);
        }
        let nominated = nominator.for_node(&node.name);
        fw.run_filter_with_nominated(ctx, &state, pod, &node, nominated)?;
        potential.sort_by(|a, b| more_important(a, b, now));
        let (violating, fine) = split_by_pdb(potential, pdbs);
        let mixed = !violating.is_empty() && !fine.is_empty();
        let mut victims = Vec::new();
        let mut violations = 0;
        let mut reprieve = |p: Arc<PodInfo>, node: &mut NodeInfo, state: &mut CycleState| -> bool {
            node.add_pod(p.clone());
            fw.run_pre_filter_extension(ctx, state, pod, &p, node, true);
            if fw
                .run_filter_with_nominated(ctx, state, pod, node, nominated)
                .is_ok()
            {
                return true;
            }
            node.remove_pod(&p.key);
            fw.run_pre_filter_extension(ctx, state, pod, &p, node, false);
            victims.push(p);
            false
        };
        for p in violating {
            if !reprieve(p, &mut node, &mut state) {
                violations += 1;
            }
        }
        for p in fine {
            reprieve(p, &mut node, &mut state);
        }
        if mixed {
            victims.sort_by(|a, b| more_important(a, b, now));
        }
        Ok((victims, violations))
    }

    /// Runs preemption for a pod that fits nowhere.
    #[allow(clippy::too_many_arguments)]
    pub fn preempt(
        &self,
        fw: &Framework,
        ctx: &CycleContext<'_>,
        state: &CycleState,
        pod: &PodInfo,
        diagnosis: &Diagnosis,
        nominator: &Nominator,
        rng: &mut Rng,
    ) -> Preemption {
        if let Err(message) = self.eligible(ctx, pod, diagnosis) {
            return Preemption::NotHelpful {
                message: format!("preemption: {message}"),
                clear_nomination: false,
            };
        }
        let num_all = ctx.cache.num_nodes();
        let potential: Vec<&NodeInfo> = ctx
            .nodes()
            .iter()
            .enumerate()
            .filter(|(i, n)| {
                n.exists
                    && diagnosis
                        .status_at(*i)
                        .is_some_and(|s| s.code == Code::Unschedulable)
            })
            .map(|(_, n)| n)
            .collect();
        let not_helpful = Status::unresolvable(NOT_HELPFUL);
        if potential.is_empty() {
            let mut e = FitError::new(num_all);
            e.add_node_status_times(&not_helpful, num_all);
            return Preemption::NotHelpful {
                message: format!("preemption: {e}"),
                clear_nomination: true,
            };
        }
        let pdbs = ctx.cache.pdbs();
        let wanted = self.num_candidates(potential.len());
        let offset = rng.below(potential.len());
        let now = Utc::now();
        let mut fine = Vec::new();
        let mut violating = Vec::new();
        let mut statuses: Vec<Status> = Vec::new();
        for i in 0..potential.len() {
            if !fine.is_empty() && fine.len() + violating.len() >= wanted {
                break;
            }
            let node = potential[(offset + i) % potential.len()];
            match self.select_victims(fw, ctx, state, pod, node, &pdbs, nominator, now) {
                Ok((victims, _)) if victims.is_empty() => statuses.push(Status::error(format!(
                    "expected at least one victim pod on node {:?}",
                    node.name
                ))),
                Ok((victims, pdb_violations)) => {
                    let c = Candidate {
                        node: node.name.clone(),
                        victims,
                        pdb_violations,
                    };
                    if pdb_violations == 0 {
                        fine.push(c);
                    } else {
                        violating.push(c);
                    }
                }
                Err(status) => statuses.push(status),
            }
        }
        fine.append(&mut violating);
        let candidates = fine;
        if candidates.is_empty() {
            let mut e = FitError::new(num_all);
            for s in &statuses {
                e.add_node_status(s);
            }
            e.add_node_status_times(&not_helpful, num_all.saturating_sub(statuses.len()));
            return Preemption::NotHelpful {
                message: format!("preemption: {e}"),
                clear_nomination: true,
            };
        }
        let best = pick_one(candidates, now);
        let lower_nominated = nominator
            .for_node(&best.node)
            .iter()
            .filter(|p| p.priority < pod.priority && p.key != pod.key)
            .cloned()
            .collect();
        Preemption::Nominate {
            node: best.node,
            victims: best.victims,
            lower_nominated,
        }
    }
}

/// kube's `pickOneNodeForPreemption`: the fewest PDB violations, then the lowest
/// highest-priority victim, then the lowest sum of priorities, then the fewest victims,
/// then the latest start among the highest-priority victims, then the first.
fn pick_one(mut candidates: Vec<Candidate>, now: DateTime<Utc>) -> Candidate {
    let criteria: [&dyn Fn(&Candidate) -> i128; 5] = [
        &|c| -(c.pdb_violations as i128),
        &|c| -(c.victims.first().map_or(0, |p| i128::from(p.priority))),
        &|c| {
            -c.victims
                .iter()
                .map(|p| i128::from(p.priority) + i128::from(i32::MAX) + 1)
                .sum::<i128>()
        },
        &|c| -(c.victims.len() as i128),
        &|c| {
            // The earliest start among the highest-priority victims; later is better.
            let top = c.victims.iter().map(|p| p.priority).max().unwrap_or(0);
            c.victims
                .iter()
                .filter(|p| p.priority == top)
                .map(|p| start_time(p, now))
                .min()
                .and_then(|t| t.timestamp_nanos_opt())
                .map_or(i128::MIN, i128::from)
        },
    ];
    for score in criteria {
        if candidates.len() == 1 {
            break;
        }
        let best = candidates.iter().map(score).max().unwrap_or(0);
        candidates.retain(|c| score(c) == best);
    }
    candidates.swap_remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_info::test_pods::pod;

    fn candidate(node: &str, victims: &[(i32, &str)], pdb: usize) -> Candidate {
        Candidate {
            node: node.into(),
            victims: victims
                .iter()
                .map(|(prio, name)| pod(name).priority(*prio).info())
                .collect(),
            pdb_violations: pdb,
        }
    }

    #[test]
    fn picks_the_cheapest_node() {
        let now = Utc::now();
        let pick = |cs: Vec<Candidate>| pick_one(cs, now).node;
        assert_eq!(
            pick(vec![
                candidate("a", &[(1, "x")], 1),
                candidate("b", &[(5, "y")], 0)
            ]),
            "b",
            "PDB violations first"
        );
        assert_eq!(
            pick(vec![
                candidate("a", &[(5, "x")], 0),
                candidate("b", &[(3, "y"), (3, "z")], 0)
            ]),
            "b",
            "then the lowest top priority"
        );
        assert_eq!(
            pick(vec![
                candidate("a", &[(3, "x"), (2, "w")], 0),
                candidate("b", &[(3, "y"), (1, "z")], 0)
            ]),
            "b",
            "then the lowest sum"
        );
        assert_eq!(
            pick(vec![
                candidate("a", &[(3, "x"), (1, "w"), (-10, "v")], 0),
                candidate("b", &[(3, "y"), (1, "z")], 0)
            ]),
            "b",
            "a negative priority does not make more victims cheaper"
        );
        assert_eq!(
            pick(vec![
                candidate("a", &[(3, "x"), (3, "w")], 0),
                candidate("b", &[(6, "y")], 0)
            ]),
            "a"
        );
    }

    #[test]
    fn pdb_split_keeps_order() {
        let pdb = Pdb {
            namespace: "default".into(),
            selector: crate::labels::Selector::parse(Some(
                &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some([("app".to_owned(), "db".to_owned())].into()),
                    match_expressions: None,
                },
            ))
            .unwrap(),
            disruptions_allowed: 1,
            disrupted_pods: Default::default(),
        };
        let pods = vec![
            pod("db-1").label("app", "db").info(),
            pod("web").label("app", "web").info(),
            pod("db-2").label("app", "db").info(),
        ];
        let (violating, fine) = split_by_pdb(pods, &[&pdb]);
        let names = |v: &[Arc<PodInfo>]| v.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&violating), ["db-2"]);
        assert_eq!(names(&fine), ["db-1", "web"]);
    }
}
