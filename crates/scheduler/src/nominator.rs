//! Pods nominated to a node by preemption (`status.nominatedNodeName`): until they are
//! bound, the room made for them is held against pods of lower priority.

use std::sync::Arc;

use crate::fast_hash::FxHashMap;
use crate::pod_info::{PodInfo, PodKey};

#[derive(Debug, Default)]
pub struct Nominator {
    by_node: FxHashMap<String, Vec<Arc<PodInfo>>>,
    by_pod: FxHashMap<PodKey, String>,
}

impl Nominator {
    /// Nominates a pod (replacing an earlier nomination).
    pub fn add(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.remove(&pod.key);
        self.by_pod.insert(pod.key.clone(), node.to_owned());
        self.by_node.entry(node.to_owned()).or_default().push(pod);
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(node) = self.by_pod.remove(key)
            && let Some(pods) = self.by_node.get_mut(&node)
        {
            pods.retain(|p| p.key != key);
            if pods.is_empty() {
                self.by_node.remove(&node);
            }
        }
    }

    /// The pods nominated to a node.
    pub fn for_node(&self, node: &str) -> &[Arc<PodInfo>] {
        if self.by_node.is_empty() {
            return &[];
        }
        self.by_node.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.by_pod.get(key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.by_pod.is_empty()
    }
}
