//! The scheduling queue (kube's `PriorityQueue`): an active queue ordered by priority, then
//! by the time the pod entered it; a back-off queue for pods that failed recently (1 s,
//! doubling per attempt up to 10 s); and the unschedulable pods, which wait for a cluster
//! change that could help them (or 5 minutes) before they are tried again.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fast_hash::{FxHashMap, FxHashSet};
use crate::plugins::{PluginName, PluginSet};
use crate::pod_info::{PodInfo, PodKey};

/// kube's `DefaultPodInitialBackoffDuration`.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// kube's `DefaultPodMaxBackoffDuration`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// kube's `DefaultPodMaxInUnschedulablePodsDuration`.
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);
/// How often unschedulable pods are checked against `MAX_IN_UNSCHEDULABLE`.
pub const UNSCHEDULABLE_FLUSH_PERIOD: Duration = Duration::from_secs(30);

/// A change in the cluster that may make unschedulable pods schedulable, and the plugins
/// whose rejections it may undo (kube's `EventsToRegister`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterEvent {
    NodeAdd,
    /// Labels, taints, allocatable or schedulability changed.
    NodeUpdate,
    AssignedPodAdd,
    AssignedPodUpdate,
    AssignedPodDelete,
    /// Namespace labels changed (namespace selectors of affinity terms).
    NamespaceChange,
}

impl ClusterEvent {
    fn helps(&self) -> PluginSet {
        use PluginName::*;
        match self {
            ClusterEvent::NodeAdd | ClusterEvent::NodeUpdate => PluginSet::of(&[
                NodeUnschedulable,
                NodeName,
                TaintToleration,
                NodeAffinity,
                NodePorts,
                NodeResourcesFit,
                PodTopologySpread,
                InterPodAffinity,
            ]),
            ClusterEvent::AssignedPodAdd => PluginSet::of(&[PodTopologySpread, InterPodAffinity]),
            ClusterEvent::AssignedPodUpdate => {
                PluginSet::of(&[PodTopologySpread, InterPodAffinity, NodeResourcesFit])
            }
            ClusterEvent::AssignedPodDelete => PluginSet::of(&[
                NodePorts,
                NodeResourcesFit,
                PodTopologySpread,
                InterPodAffinity,
            ]),
            ClusterEvent::NamespaceChange => PluginSet::of(&[InterPodAffinity]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Active,
    Backoff,
    Unschedulable,
    /// Popped: being scheduled.
    InFlight,
    /// Has scheduling gates.
    Gated,
}

#[derive(Debug)]
struct Entry {
    info: Arc<PodInfo>,
    location: Location,
    /// Scheduling attempts so far.
    attempts: u32,
    /// When it entered the active queue or last failed (kube's `Timestamp`).
    timestamp: Instant,
    /// Bumped on every move, so stale heap entries can be told apart.
    generation: u64,
    /// The cycle in which it was last popped.
    cycle: u64,
    /// The plugins that rejected it last.
    unschedulable_plugins: PluginSet,
    seq: u64,
}

impl Entry {
    fn backoff_expiry(&self) -> Instant {
        let mut d = INITIAL_BACKOFF;
        for _ in 1..self.attempts {
            d = d.saturating_mul(2);
            if d >= MAX_BACKOFF {
                d = MAX_BACKOFF;
                break;
            }
        }
        self.timestamp + d
    }
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    generation: u64,
    key: PodKey,
}

impl Ord for ActiveItem {
    /// Higher priority first, then the earlier arrival (kube's PrioritySort).
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.timestamp.cmp(&self.timestamp))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The scheduling queue.
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    pods: FxHashMap<PodKey, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, PodKey)>>,
    seq: u64,
    cycle: u64,
    /// The cycle of the last move request: pods that fail in an earlier cycle go to
    /// back-off instead of waiting, as the change may already help them.
    move_request_cycle: u64,
    last_unschedulable_flush: Option<Instant>,
    /// The keys of the pods in `Location::Unschedulable`, so cluster events cost what is
    /// waiting, not what is queued.
    unschedulable: FxHashSet<PodKey>,
}

impl SchedulingQueue {
    pub fn new() -> SchedulingQueue {
        SchedulingQueue::default()
    }

    /// Pods waiting in any part of the queue (in flight included).
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Pods ready to be scheduled now.
    pub fn active_len(&self) -> usize {
        self.pods
            .values()
            .filter(|e| e.location == Location::Active)
            .count()
    }

    /// Every queued pod's key.
    pub fn keys(&self) -> Vec<PodKey> {
        self.pods.keys().cloned().collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&Arc<PodInfo>> {
        self.pods.get(key).map(|e| &e.info)
    }

    fn push_active(&mut self, key: &str, now: Instant) {
        self.unschedulable.remove(key);
        if let Some(e) = self.pods.get_mut(key) {
            e.location = Location::Active;
            e.generation += 1;
            e.timestamp = now;
            self.active.push(ActiveItem {
                priority: e.info.priority,
                timestamp: e.timestamp,
                seq: e.seq,
                generation: e.generation,
                key: key.to_owned(),
            });
        }
    }

    fn push_backoff(&mut self, key: &str) {
        self.unschedulable.remove(key);
        if let Some(e) = self.pods.get_mut(key) {
            e.location = Location::Backoff;
            e.generation += 1;
            self.backoff
                .push(Reverse((e.backoff_expiry(), e.generation, key.to_owned())));
        }
    }

    /// A new unscheduled pod, or an update to one already queued.
    pub fn add(&mut self, info: Arc<PodInfo>, now: Instant) {
        if self.pods.contains_key(&info.key) {
            self.update(info, now);
            return;
        }
        let key = info.key.clone();
        let gated = info.gated;
        self.seq += 1;
        self.pods.insert(
            key.clone(),
            Entry {
                info,
                location: Location::Gated,
                attempts: 0,
                timestamp: now,
                generation: 0,
                cycle: 0,
                unschedulable_plugins: PluginSet::default(),
                seq: self.seq,
            },
        );
        if !gated {
            self.push_active(&key, now);
        }
    }

    /// An update to a queued pod: a change to what scheduling reads (spec, labels) sends an
    /// unschedulable pod back to be tried; status updates (ours included) do not.
    pub fn update(&mut self, info: Arc<PodInfo>, now: Instant) {
        let key = info.key.clone();
        let Some(e) = self.pods.get_mut(&key) else {
            self.add(info, now);
            return;
        };
        let relevant = e.info.pod.spec != info.pod.spec
            || e.info.pod.metadata.labels != info.pod.metadata.labels;
        let gated = info.gated;
        e.info = info;
        let (location, expired) = (e.location, e.backoff_expiry() <= now);
        match location {
            Location::Gated if !gated => self.push_active(&key, now),
            Location::Active | Location::Backoff | Location::Unschedulable if gated => {
                e.location = Location::Gated;
                e.generation += 1;
                self.unschedulable.remove(&key);
            }
            Location::Unschedulable if relevant => {
                if expired {
                    self.push_active(&key, now);
                } else {
                    self.push_backoff(&key);
                }
            }
            _ => {}
        }
    }

    pub fn delete(&mut self, key: &str) {
        self.pods.remove(key);
        self.unschedulable.remove(key);
    }

    /// The next pod to schedule, marked in flight.
    pub fn pop(&mut self) -> Option<Arc<PodInfo>> {
        while let Some(item) = self.active.pop() {
            let Some(e) = self.pods.get_mut(&item.key) else {
                continue;
            };
            if e.generation != item.generation || e.location != Location::Active {
                continue;
            }
            self.cycle += 1;
            e.location = Location::InFlight;
            e.attempts += 1;
            e.cycle = self.cycle;
            return Some(e.info.clone());
        }
        None
    }

    /// The in-flight pod was placed: it leaves the queue.
    pub fn done(&mut self, key: &str) {
        self.pods.remove(key);
        self.unschedulable.remove(key);
    }

    /// The in-flight pod fits nowhere: it waits for a cluster change, or backs off if one
    /// already happened while it was being scheduled.
    pub fn unschedulable(&mut self, key: &str, plugins: PluginSet, now: Instant) {
        let move_request_cycle = self.move_request_cycle;
        let Some(e) = self.pods.get_mut(key) else {
            return;
        };
        if e.location != Location::InFlight {
            return;
        }
        e.timestamp = now;
        e.unschedulable_plugins = plugins;
        if move_request_cycle >= e.cycle || plugins.is_empty() {
            self.push_backoff(key);
        } else {
            e.location = Location::Unschedulable;
            e.generation += 1;
            self.unschedulable.insert(key.to_owned());
        }
    }

    /// The in-flight pod hit an error (or its binding failed): it backs off.
    pub fn backoff(&mut self, key: &str, now: Instant) {
        if let Some(e) = self.pods.get_mut(key) {
            e.timestamp = now;
            e.unschedulable_plugins = PluginSet::default();
            self.push_backoff(key);
        }
    }

    /// Re-adds a pod whose binding failed (it had left the queue when it was assumed).
    pub fn requeue_after_bind_failure(&mut self, info: Arc<PodInfo>, now: Instant) {
        let key = info.key.clone();
        if !self.pods.contains_key(&key) {
            self.seq += 1;
            self.pods.insert(
                key.clone(),
                Entry {
                    info,
                    location: Location::InFlight,
                    attempts: 1,
                    timestamp: now,
                    generation: 0,
                    cycle: self.cycle,
                    unschedulable_plugins: PluginSet::default(),
                    seq: self.seq,
                },
            );
        }
        self.backoff(&key, now);
    }

    /// A cluster change: unschedulable pods it may help go back to be tried (to back-off
    /// first if theirs has not expired).
    pub fn move_for(&mut self, event: ClusterEvent, now: Instant) {
        let helps = event.helps();
        let keys: Vec<PodKey> = self
            .unschedulable
            .iter()
            .filter(|k| {
                self.pods.get(*k).is_some_and(|e| {
                    e.unschedulable_plugins.is_empty() || e.unschedulable_plugins.intersects(helps)
                })
            })
            .cloned()
            .collect();
        for key in keys {
            let expired = self
                .pods
                .get(&key)
                .is_some_and(|e| e.backoff_expiry() <= now);
            if expired {
                self.push_active(&key, now);
            } else {
                self.push_backoff(&key);
            }
        }
        self.move_request_cycle = self.cycle;
    }

    /// Moves pods whose back-off expired to the active queue, and pods unschedulable for
    /// too long back to be tried.
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((expiry, generation, key))) = self.backoff.peek().cloned() {
            if expiry > now {
                break;
            }
            self.backoff.pop();
            if self
                .pods
                .get(&key)
                .is_some_and(|e| e.generation == generation && e.location == Location::Backoff)
            {
                self.push_active(&key, now);
            }
        }
        let due = self
            .last_unschedulable_flush
            .is_none_or(|t| now.duration_since(t) >= UNSCHEDULABLE_FLUSH_PERIOD);
        if due {
            self.last_unschedulable_flush = Some(now);
            let stale: Vec<PodKey> = self
                .unschedulable
                .iter()
                .filter(|k| {
                    self.pods
                        .get(*k)
                        .is_some_and(|e| now.duration_since(e.timestamp) >= MAX_IN_UNSCHEDULABLE)
                })
                .cloned()
                .collect();
            for key in stale {
                self.push_active(&key, now);
            }
        }
    }

    /// Whether a pod is ready now.
    pub fn has_active(&self) -> bool {
        self.active.iter().any(|item| {
            self.pods
                .get(&item.key)
                .is_some_and(|e| e.generation == item.generation && e.location == Location::Active)
        })
    }

    /// When the next back-off expires or the unschedulable pods are due a check.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.backoff.peek().map(|Reverse((t, _, _))| *t);
        let waiting = !self.unschedulable.is_empty();
        let flush = self
            .last_unschedulable_flush
            .filter(|_| waiting)
            .map(|t| t + UNSCHEDULABLE_FLUSH_PERIOD);
        match (backoff, flush) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_info::test_pods::pod;

    fn names(q: &mut SchedulingQueue) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(p) = q.pop() {
            out.push(p.name.clone());
        }
        out
    }

    #[test]
    fn priority_then_arrival() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add(pod("low").priority(1).info(), t0);
        q.add(
            pod("high").priority(100).info(),
            t0 + Duration::from_millis(2),
        );
        q.add(
            pod("first").priority(10).info(),
            t0 + Duration::from_millis(1),
        );
        q.add(
            pod("second").priority(10).info(),
            t0 + Duration::from_millis(3),
        );
        q.add(
            pod("also-first").priority(10).info(),
            t0 + Duration::from_millis(1),
        );
        assert_eq!(
            names(&mut q),
            ["high", "first", "also-first", "second", "low"]
        );
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add(pod("p").info(), t0);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let p = q.pop().expect("pod is active");
            q.backoff(&p.key, now);
            let until = q.next_wakeup().expect("backing off");
            waits.push(until.duration_since(now).as_secs());
            q.flush(until - Duration::from_millis(1));
            assert!(!q.has_active(), "not before the back-off ends");
            now = until;
            q.flush(now);
        }
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_helpful_event() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add(pod("p").info(), t0);
        let p = q.pop().unwrap();
        q.unschedulable(&p.key, PluginSet::of(&[PluginName::TaintToleration]), t0);
        q.flush(t0 + Duration::from_secs(20));
        assert!(!q.has_active(), "stays unschedulable without an event");
        // A pod deletion does not help a taint.
        q.move_for(
            ClusterEvent::AssignedPodDelete,
            t0 + Duration::from_secs(20),
        );
        assert!(!q.has_active());
        q.move_for(ClusterEvent::NodeUpdate, t0 + Duration::from_secs(21));
        assert_eq!(names(&mut q), ["p"]);
        // Five minutes without an event: tried again.
        let p = q.get("default/p").unwrap().clone();
        q.unschedulable(
            &p.key,
            PluginSet::of(&[PluginName::TaintToleration]),
            t0 + Duration::from_secs(22),
        );
        q.flush(t0 + Duration::from_secs(400));
        assert_eq!(names(&mut q), ["p"]);
    }

    #[test]
    fn an_event_during_the_cycle_sends_the_pod_to_backoff() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add(pod("p").info(), t0);
        let p = q.pop().unwrap();
        q.move_for(ClusterEvent::NodeAdd, t0);
        q.unschedulable(&p.key, PluginSet::of(&[PluginName::NodeResourcesFit]), t0);
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(names(&mut q), ["p"]);
    }

    #[test]
    fn gated_pods_wait_for_their_gates_to_go() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        let mut gated = pod("g");
        if let Some(spec) = gated.0.spec.as_mut() {
            spec.scheduling_gates = Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate {
                name: "wait".into(),
            }]);
        }
        q.add(gated.clone().info(), t0);
        assert!(q.pop().is_none());
        if let Some(spec) = gated.0.spec.as_mut() {
            spec.scheduling_gates = None;
        }
        q.update(gated.info(), t0);
        assert_eq!(names(&mut q), ["g"]);
    }
}
