//! The scheduler's picture of the cluster (kube's scheduler cache and snapshot in one):
//! every node with the pods bound to it, pods the scheduler has *assumed* onto a node while
//! their binding is still in flight, namespace labels and PodDisruptionBudgets.
//!
//! kube needs a separate snapshot because its informers write the cache while a cycle
//! runs. Here the scheduling loop owns the cache and applies watch events between cycles,
//! so a cycle reads the cache itself: it is the snapshot, refreshed incrementally, one event
//! at a time.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::fast_hash::FxHashMap;
use crate::labels::Selector;
use crate::node_info::NodeInfo;
use crate::pod_info::{PodInfo, PodKey};

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

#[derive(Debug, Clone)]
struct CachedPod {
    node: String,
    /// Placed by this scheduler, binding not yet seen in the watch.
    assumed: bool,
}

/// A PodDisruptionBudget as preemption reads it.
#[derive(Debug, Clone)]
pub struct Pdb {
    pub namespace: String,
    pub selector: Selector,
    pub disruptions_allowed: i32,
    pub disrupted_pods: HashSet<String>,
}

impl Pdb {
    pub fn from_api(pdb: &PodDisruptionBudget) -> Pdb {
        let selector = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .map(|s| Selector::parse(Some(s)).unwrap_or(Selector::Nothing))
            .unwrap_or(Selector::Nothing);
        // A nil or empty selector matches nothing for a budget.
        let selector = if selector.is_empty() {
            Selector::Nothing
        } else {
            selector
        };
        let status = pdb.status.as_ref();
        Pdb {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector,
            disruptions_allowed: status.map(|s| s.disruptions_allowed).unwrap_or(0),
            disrupted_pods: status
                .and_then(|s| s.disrupted_pods.as_ref())
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// What a change to a bound pod did, for the queue's requeueing decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodChange {
    Added,
    Updated,
    /// Nothing the scheduler counts changed (e.g. the watch confirmed an assumed pod).
    Confirmed,
}

#[derive(Debug, Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: FxHashMap<String, usize>,
    existing: usize,
    pods: FxHashMap<PodKey, CachedPod>,
    namespaces: FxHashMap<String, BTreeMap<String, String>>,
    pdbs: FxHashMap<String, Pdb>,
    next_generation: u64,
    /// Bumped when namespace labels change.
    namespace_generation: u64,
    /// Services' and controllers' selectors, for the default topology spread.
    pub owners: crate::default_spread::Owners,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Every node entry, including ones kept only for their pods (`exists == false`).
    pub fn node_infos(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// How many Node objects exist.
    pub fn num_nodes(&self) -> usize {
        self.existing
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// A node entry to change (created when missing), with a new generation.
    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        self.next_generation += 1;
        let generation = self.next_generation;
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.nodes.push(NodeInfo::new(name));
                self.index.insert(name.to_owned(), self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        self.nodes[i].generation = generation;
        &mut self.nodes[i]
    }

    fn drop_node_if_unused(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.nodes[i].exists || !self.nodes[i].pods.is_empty() {
            return;
        }
        self.index.remove(name);
        self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name.clone(), i);
        }
    }

    /// A node was added or changed.
    pub fn apply_node(&mut self, node: &Node) {
        let Some(name) = node.metadata.name.as_deref() else {
            return;
        };
        let info = self.node_mut(name);
        let was = info.exists;
        info.set_node(node);
        if !was {
            self.existing += 1;
        }
    }

    /// A node was deleted; its pods stay counted until they are deleted too.
    pub fn delete_node(&mut self, name: &str) {
        if let Some(&i) = self.index.get(name)
            && self.nodes[i].exists
        {
            self.next_generation += 1;
            self.nodes[i].generation = self.next_generation;
            self.nodes[i].exists = false;
            self.existing -= 1;
            self.drop_node_if_unused(name);
        }
    }

    /// Node names, to diff after a relist.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.exists)
            .map(|n| n.name.clone())
            .collect()
    }

    /// A bound pod from the watch (non-terminal, with spec.nodeName).
    pub fn apply_pod(&mut self, pod: Arc<PodInfo>) -> PodChange {
        let Some(node) = pod.node_name.clone() else {
            return PodChange::Confirmed;
        };
        let change = match self.pods.get(&pod.key) {
            None => PodChange::Added,
            Some(c) if c.assumed && c.node == node => PodChange::Confirmed,
            Some(_) => PodChange::Updated,
        };
        if let Some(old) = self.pods.remove(&pod.key) {
            self.node_mut(&old.node).remove_pod(&pod.key);
            if old.node != node {
                self.drop_node_if_unused(&old.node);
            }
        }
        self.pods.insert(
            pod.key.clone(),
            CachedPod {
                node: node.clone(),
                assumed: false,
            },
        );
        self.node_mut(&node).add_pod(pod);
        change
    }

    /// A pod is gone (deleted, or finished); returns it when it was counted.
    pub fn delete_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let cached = self.pods.remove(key)?;
        let pod = self.node_mut(&cached.node).remove_pod(key);
        self.drop_node_if_unused(&cached.node);
        pod
    }

    /// Counts a pod on its chosen node before the binding persists.
    pub fn assume(&mut self, pod: Arc<PodInfo>) {
        let Some(node) = pod.node_name.clone() else {
            return;
        };
        if self.pods.contains_key(&pod.key) {
            return;
        }
        self.pods.insert(
            pod.key.clone(),
            CachedPod {
                node: node.clone(),
                assumed: true,
            },
        );
        self.node_mut(&node).add_pod(pod);
    }

    /// Un-counts an assumed pod whose binding failed.
    pub fn forget(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|c| c.assumed) {
            self.delete_pod(key);
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|c| c.assumed)
    }

    /// Whether the pod is counted on a node (bound or assumed).
    pub fn contains_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Bound (not assumed) pod keys, to diff after a relist.
    pub fn bound_pod_keys(&self) -> Vec<PodKey> {
        self.pods
            .iter()
            .filter(|(_, c)| !c.assumed)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn apply_namespace(&mut self, name: &str, labels: BTreeMap<String, String>) {
        if self.namespaces.get(name) != Some(&labels) {
            self.namespace_generation += 1;
            self.namespaces.insert(name.to_owned(), labels);
        }
    }

    pub fn delete_namespace(&mut self, name: &str) {
        if self.namespaces.remove(name).is_some() {
            self.namespace_generation += 1;
        }
    }

    /// Changes whenever any namespace's labels do.
    pub fn namespace_generation(&self) -> u64 {
        self.namespace_generation
    }

    pub fn namespace_names(&self) -> Vec<String> {
        self.namespaces.keys().cloned().collect()
    }

    /// A namespace's labels (none when unknown).
    pub fn namespace_labels(&self, name: &str) -> &BTreeMap<String, String> {
        self.namespaces.get(name).unwrap_or(&NO_LABELS)
    }

    pub fn apply_pdb(&mut self, key: &str, pdb: Pdb) {
        self.pdbs.insert(key.to_owned(), pdb);
    }

    pub fn delete_pdb(&mut self, key: &str) {
        self.pdbs.remove(key);
    }

    pub fn pdb_keys(&self) -> Vec<String> {
        self.pdbs.keys().cloned().collect()
    }

    pub fn pdbs(&self) -> Vec<&Pdb> {
        self.pdbs.values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;

    #[test]
    fn assumed_pods_count_until_confirmed_or_forgotten() {
        let mut c = Cache::new();
        c.apply_node(&node("n1", "4", "8Gi").0);
        c.apply_node(&node("n2", "4", "8Gi").0);
        assert_eq!(c.num_nodes(), 2);
        let p = pod("p").req("1", "").info();
        c.assume(Arc::new(p.assumed_on("n1")));
        assert!(c.is_assumed("default/p"));
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 1000);
        // The watch shows the binding: confirmed, still counted once.
        let bound = pod("p").req("1", "").node("n1").info();
        assert_eq!(c.apply_pod(bound.clone()), PodChange::Confirmed);
        assert!(!c.is_assumed("default/p"));
        assert_eq!(c.node("n1").unwrap().requested.milli_cpu, 1000);
        c.forget("default/p");
        assert_eq!(
            c.node("n1").unwrap().pods.len(),
            1,
            "bound pods are not forgotten"
        );

        let q = pod("q").req("1", "").info();
        c.assume(Arc::new(q.assumed_on("n2")));
        c.forget("default/q");
        assert_eq!(c.node("n2").unwrap().requested.milli_cpu, 0);
    }

    #[test]
    fn nodes_deleted_with_pods_stay_until_the_pods_go() {
        let mut c = Cache::new();
        c.apply_node(&node("n1", "4", "8Gi").0);
        c.apply_node(&node("n2", "4", "8Gi").0);
        c.apply_pod(pod("p").node("n1").info());
        c.delete_node("n1");
        assert_eq!(c.num_nodes(), 1);
        assert!(c.node("n1").is_some_and(|n| !n.exists));
        c.delete_pod("default/p");
        assert!(c.node("n1").is_none());
        assert_eq!(c.node("n2").map(|n| n.name.as_str()), Some("n2"));
        // A pod bound to a node not seen yet.
        c.apply_pod(pod("r").node("n3").info());
        assert_eq!(c.num_nodes(), 1);
        c.apply_node(&node("n3", "4", "8Gi").0);
        assert_eq!(c.node("n3").unwrap().pods.len(), 1);
        assert_eq!(c.num_nodes(), 2);
    }
}
