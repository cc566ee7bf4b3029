//! One scheduling cycle for one pod (kube's `schedulePod` and `findNodesThatFitPod`):
//! PreFilter, Filter over a round-robin sample of nodes (in parallel when it pays), Score
//! the feasible ones, pick the best (ties at random); or, when nothing fits, the FitError
//! and the preemption PostFilter.

use std::sync::Arc;

use crate::cache::Cache;
use crate::framework::{CycleContext, CycleState, Framework};
use crate::node_info::NodeInfo;
use crate::nominator::Nominator;
use crate::parallel;
use crate::plugins::default_preemption::Preemption;
use crate::plugins::{PluginName, PluginSet};
use crate::pod_info::PodInfo;
use crate::status::{Code, FitError, Status};

/// kube's `minFeasibleNodesToFind`.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// kube's `minFeasibleNodesPercentageToFind`.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;
/// Nodes filtered on the scheduling thread before others help.
pub const SEQUENTIAL_FILTER_PREFIX: usize = 1024;
/// kube's `ErrNoNodesAvailable`.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// How many feasible nodes to look for before scoring (kube's `numFeasibleNodesToFind`):
/// all of a small cluster; else `percentage` of the nodes (adaptive when unset or 0:
/// 50% minus 1% per 125 nodes, at least 5%), and at least 100.
pub fn num_feasible_nodes_to_find(percentage: Option<u32>, num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let percentage = match percentage {
        Some(p) if p > 0 => (p as usize).min(100),
        _ => 50usize
            .saturating_sub(num_all_nodes / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND),
    };
    (num_all_nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// A small, fast random source for tie-breaking (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Seeded from the clock.
    pub fn from_time() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Rng::new(nanos)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Why the pod did not fit, node by node (kube's `Diagnosis`).
#[derive(Debug, Default)]
pub struct Diagnosis {
    /// The status of each node entry the filters rejected, by index in the cache's nodes.
    pub node_statuses: Vec<Option<Status>>,
    /// The status of nodes not evaluated (excluded by a PreFilter's node set, or all of
    /// them when a PreFilter rejected the pod).
    pub absent: Option<Status>,
    pub pre_filter_msg: Option<String>,
    /// The plugins that rejected the pod somewhere.
    pub unschedulable_plugins: PluginSet,
}

impl Diagnosis {
    /// A node's status, by name.
    pub fn status_of<'a>(&'a self, cache: &Cache, node: &str) -> Option<&'a Status> {
        let i = cache.node_infos().iter().position(|n| n.name == node)?;
        self.node_statuses
            .get(i)
            .and_then(Option::as_ref)
            .or(self.absent.as_ref())
    }

    /// A node's status, by index in the cache's nodes.
    pub fn status_at(&self, index: usize) -> Option<&Status> {
        self.node_statuses
            .get(index)
            .and_then(Option::as_ref)
            .or(self.absent.as_ref())
    }

    fn record(&mut self, index: usize, status: Status) {
        if let Some(p) = status.plugin {
            self.unschedulable_plugins.insert(p);
        }
        if self.node_statuses.len() <= index {
            self.node_statuses.resize(index + 1, None);
        }
        self.node_statuses[index] = Some(status);
    }

    /// The FitError message over the existing nodes.
    pub fn fit_error(&self, cache: &Cache) -> FitError {
        let mut e = FitError::new(cache.num_nodes());
        e.pre_filter_msg = self.pre_filter_msg.clone();
        let mut explicit = 0;
        for (i, n) in cache.node_infos().iter().enumerate() {
            if !n.exists {
                continue;
            }
            if let Some(Some(s)) = self.node_statuses.get(i) {
                e.add_node_status(s);
                explicit += 1;
            }
        }
        if let Some(absent) = &self.absent {
            e.add_node_status_times(absent, cache.num_nodes().saturating_sub(explicit));
        }
        e
    }
}

/// What to do with the pod's `status.nominatedNodeName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nomination {
    Keep,
    Set(String),
    Clear,
}

/// The outcome of one cycle.
#[derive(Debug)]
pub enum CycleOutcome {
    /// Bind here. `evaluated` nodes were filtered, `feasible` passed.
    Fits {
        node: String,
        evaluated: usize,
        feasible: usize,
    },
    /// Nowhere: the message for the pod's condition and event, the plugins that rejected
    /// it, and what preemption did.
    Unschedulable {
        message: String,
        plugins: PluginSet,
        nomination: Nomination,
        victims: Vec<Arc<PodInfo>>,
        victims_node: Option<String>,
        lower_nominated: Vec<Arc<PodInfo>>,
    },
    /// Something broke; retry after a back-off.
    Error(String),
}

/// Tuning of the node search.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub percentage_of_nodes_to_score: Option<u32>,
    pub parallelism: usize,
}

/// The highest total score; ties broken uniformly at random (kube's `selectHost`).
pub fn select_host(scores: &[i64], rng: &mut Rng) -> usize {
    let mut best = 0;
    let mut ties = 0;
    for (i, s) in scores.iter().enumerate() {
        if i == 0 || *s > scores[best] {
            best = i;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            if rng.below(ties) == 0 {
                best = i;
            }
        }
    }
    best
}

fn unschedulable_outcome(
    fw: &Framework,
    ctx: &CycleContext<'_>,
    state: &CycleState,
    pod: &PodInfo,
    diagnosis: Diagnosis,
    nominator: &Nominator,
    rng: &mut Rng,
) -> CycleOutcome {
    let mut fit_error = diagnosis.fit_error(ctx.cache);
    let preemption = if fw.disabled.contains(PluginName::DefaultPreemption) {
        Preemption::NotHelpful {
            message: String::new(),
            clear_nomination: false,
        }
    } else {
        fw.preemption
            .preempt(fw, ctx, state, pod, &diagnosis, nominator, rng)
    };
    match preemption {
        Preemption::Nominate {
            node,
            victims,
            lower_nominated,
        } => CycleOutcome::Unschedulable {
            message: fit_error.to_string(),
            plugins: diagnosis.unschedulable_plugins,
            nomination: Nomination::Set(node.clone()),
            victims,
            victims_node: Some(node),
            lower_nominated,
        },
        Preemption::NotHelpful {
            message,
            clear_nomination,
        } => {
            if !message.is_empty() {
                fit_error.post_filter_msg = Some(message);
            }
            CycleOutcome::Unschedulable {
                message: fit_error.to_string(),
                plugins: diagnosis.unschedulable_plugins,
                nomination: if clear_nomination && pod.nominated_node.is_some() {
                    Nomination::Clear
                } else {
                    Nomination::Keep
                },
                victims: Vec::new(),
                victims_node: None,
                lower_nominated: Vec::new(),
            }
        }
    }
}

/// Finds a node for the pod. `next_start` is the round-robin position, advanced by the
/// nodes evaluated.
pub fn schedule_pod(
    fw: &Framework,
    cache: &Cache,
    pod: &PodInfo,
    nominator: &Nominator,
    opts: &SearchOptions,
    next_start: &mut usize,
    rng: &mut Rng,
) -> CycleOutcome {
    if let Some(err) = &pod.parse_error {
        return CycleOutcome::Error(err.clone());
    }
    let ctx = CycleContext {
        cache,
        parallelism: opts.parallelism.max(1),
    };
    if cache.num_nodes() == 0 {
        return CycleOutcome::Unschedulable {
            message: NO_NODES_AVAILABLE.to_owned(),
            plugins: PluginSet::default(),
            nomination: if pod.nominated_node.is_some() {
                Nomination::Clear
            } else {
                Nomination::Keep
            },
            victims: Vec::new(),
            victims_node: None,
            lower_nominated: Vec::new(),
        };
    }
    let state = match fw.run_pre_filter(&ctx, pod) {
        Ok(state) => state,
        Err(status) if status.is_rejected() => {
            let mut diagnosis = Diagnosis {
                pre_filter_msg: Some(status.message()),
                ..Default::default()
            };
            if let Some(p) = status.plugin {
                diagnosis.unschedulable_plugins.insert(p);
            }
            diagnosis.absent = Some(status);
            return unschedulable_outcome(
                fw,
                &ctx,
                &CycleState::default(),
                pod,
                diagnosis,
                nominator,
                rng,
            );
        }
        Err(status) => return CycleOutcome::Error(status.message()),
    };

    let nodes = cache.node_infos();
    // A pod nominated by an earlier preemption tries its node first.
    if let Some(name) = &pod.nominated_node
        && let Some(node) = cache.node(name)
        && node.exists
        && state.node_names.as_ref().is_none_or(|n| n.contains(name))
        && fw
            .run_filter_with_nominated(&ctx, &state, pod, node, nominator.for_node(name))
            .is_ok()
    {
        return CycleOutcome::Fits {
            node: name.clone(),
            evaluated: 1,
            feasible: 1,
        };
    }

    let mut diagnosis = Diagnosis::default();
    // The node entries to evaluate, as indexes into the cache's nodes.
    let candidates: Vec<usize> = match &state.node_names {
        Some(names) => {
            let plugins: Vec<&str> = state.narrowed_by.iter().map(|p| p.as_str()).collect();
            diagnosis.absent = Some(Status::unresolvable(format!(
                "node(s) didn't satisfy plugin(s) [{}]",
                plugins.join(" ")
            )));
            for p in &state.narrowed_by {
                diagnosis.unschedulable_plugins.insert(*p);
            }
            names
                .iter()
                .filter_map(|n| nodes.iter().position(|info| info.exists && info.name == *n))
                .collect()
        }
        None => {
            let n = nodes.len();
            let start = if n == 0 { 0 } else { *next_start % n };
            (0..n)
                .map(|i| (start + i) % n)
                .filter(|i| nodes[*i].exists)
                .collect()
        }
    };
    let wanted = num_feasible_nodes_to_find(opts.percentage_of_nodes_to_score, candidates.len());
    let check = |i: usize| -> Result<(), Status> {
        let node = &nodes[candidates[i]];
        fw.run_filter_with_nominated(&ctx, &state, pod, node, nominator.for_node(&node.name))
    };
    // A thread costs more than filtering a few hundred nodes: the first ones are checked
    // here, the rest (when most nodes fail) in parallel.
    let prefix = candidates.len().min(SEQUENTIAL_FILTER_PREFIX);
    let mut results = parallel::until(prefix, 1, wanted, check, Result::is_ok);
    let found = results.iter().filter(|(_, r)| r.is_ok()).count();
    if found < wanted && candidates.len() > prefix {
        let rest = parallel::until(
            candidates.len() - prefix,
            ctx.parallelism,
            wanted - found,
            |i| check(i + prefix),
            Result::is_ok,
        );
        results.extend(rest.into_iter().map(|(i, r)| (i + prefix, r)));
    }
    let evaluated = results.len();
    if state.node_names.is_none() && !nodes.is_empty() {
        // Advance by the entries walked, ghosts included, so the next pod starts after.
        let walked = results
            .last()
            .map(|(i, _)| {
                let last = candidates[*i];
                let start = *next_start % nodes.len();
                (last + nodes.len() - start) % nodes.len() + 1
            })
            .unwrap_or(0);
        *next_start = (*next_start % nodes.len() + walked) % nodes.len();
    }
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    for (i, result) in results {
        match result {
            Ok(()) => feasible.push(&nodes[candidates[i]]),
            Err(status) if status.code == Code::Error => {
                return CycleOutcome::Error(status.message());
            }
            Err(status) => diagnosis.record(candidates[i], status),
        }
    }
    if feasible.is_empty() {
        return unschedulable_outcome(fw, &ctx, &state, pod, diagnosis, nominator, rng);
    }
    let chosen = if feasible.len() == 1 {
        0
    } else {
        let scores = fw.run_score(&ctx, pod, &feasible);
        select_host(&scores, rng)
    };
    CycleOutcome::Fits {
        node: feasible[chosen].name.clone(),
        evaluated,
        feasible: feasible.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feasible_nodes_to_find() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(None, 100), 100, "at least 100");
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420, "50 - 8 = 42%");
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500, "50 - 40 = 10%");
        assert_eq!(num_feasible_nodes_to_find(None, 10_000), 500, "at least 5%");
        assert_eq!(
            num_feasible_nodes_to_find(Some(0), 5000),
            500,
            "0 is adaptive"
        );
        assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
        assert_eq!(num_feasible_nodes_to_find(Some(1), 5000), 100);
    }

    #[test]
    fn ties_are_broken_at_random() {
        let mut rng = Rng::new(7);
        let mut seen = [0; 4];
        for _ in 0..400 {
            seen[select_host(&[5, 9, 9, 9], &mut rng)] += 1;
        }
        assert_eq!(seen[0], 0);
        assert!(seen[1..].iter().all(|n| *n > 80), "{seen:?}");
        assert_eq!(select_host(&[1, 3, 2], &mut rng), 1);
    }
}
