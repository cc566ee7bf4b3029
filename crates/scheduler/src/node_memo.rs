//! Cluster-wide sums kept from one scheduling cycle to the next. Pods of one workload ask
//! the same question of every node (how many of my pods are in each zone? whose
//! anti-affinity would I break?), and between two cycles usually only the node that took
//! the last pod changed. [`Incremental`] keeps each node's part of the answer with the
//! node's generation and the sum of the parts: a cycle recomputes only the parts of nodes
//! whose generation moved, and starts over when the question changes.

use std::sync::{Arc, Mutex};

use crate::node_info::NodeInfo;

/// A sum over the cache's node entries of per-node parts `C`, for the question `K`.
#[derive(Debug)]
pub struct Incremental<K, C, T> {
    key: Option<K>,
    /// Per node entry (by index): the generation seen and its part (`None`: nothing).
    parts: Vec<Option<(u64, Option<C>)>>,
    totals: Arc<T>,
}

impl<K, C, T: Default> Default for Incremental<K, C, T> {
    fn default() -> Self {
        Incremental {
            key: None,
            parts: Vec::new(),
            totals: Arc::new(T::default()),
        }
    }
}

impl<K: PartialEq, C, T: Default + Clone> Incremental<K, C, T> {
    /// Brings the sum up to date for `key` over `nodes`: `part` computes a node's part,
    /// `apply` adds a part to the totals (sign 1) or takes it away (sign -1). The totals
    /// are shared with the caller until the next refresh (copied then only if the caller
    /// still holds them).
    pub fn refresh(
        &mut self,
        key: K,
        nodes: &[NodeInfo],
        part: impl Fn(&NodeInfo) -> Option<C>,
        apply: impl Fn(&mut T, &C, i64),
    ) -> Arc<T> {
        if self.key.as_ref() != Some(&key) {
            self.key = Some(key);
            self.parts.clear();
            self.totals = Arc::new(T::default());
        }
        // Node entries that went away (the cache swaps the last one into their place).
        while self.parts.len() > nodes.len() {
            if let Some(Some((_, Some(old)))) = self.parts.pop() {
                apply(Arc::make_mut(&mut self.totals), &old, -1);
            }
        }
        self.parts.resize_with(nodes.len(), || None);
        for (slot, node) in self.parts.iter_mut().zip(nodes) {
            if matches!(slot, Some((g, _)) if *g == node.generation) {
                continue;
            }
            if let Some((_, Some(old))) = slot.take() {
                apply(Arc::make_mut(&mut self.totals), &old, -1);
            }
            let new = part(node);
            if let Some(new) = &new {
                apply(Arc::make_mut(&mut self.totals), new, 1);
            }
            *slot = Some((node.generation, new));
        }
        self.totals.clone()
    }
}

/// An [`Incremental`] behind a lock, for plugins (which are shared and take `&self`).
/// PreFilter and PreScore run on the scheduling thread only, so it is never contended.
pub type SharedIncremental<K, C, T> = Mutex<Incremental<K, C, T>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::test_nodes::node;

    #[test]
    fn recomputes_only_changed_nodes() {
        let mut nodes: Vec<NodeInfo> = (0..3)
            .map(|i| {
                let mut n = node(&format!("n{i}"), "1", "1Gi").info();
                n.generation = i + 1;
                n
            })
            .collect();
        let computed = std::cell::Cell::new(0);
        let part = |n: &NodeInfo| {
            computed.set(computed.get() + 1);
            Some(n.generation as i64)
        };
        let apply = |t: &mut i64, c: &i64, sign: i64| *t += sign * c;
        let mut inc: Incremental<&str, i64, i64> = Incremental::default();
        assert_eq!(*inc.refresh("q", &nodes, part, apply), 6);
        assert_eq!(*inc.refresh("q", &nodes, part, apply), 6);
        assert_eq!(computed.get(), 3);
        nodes[1].generation = 10;
        assert_eq!(*inc.refresh("q", &nodes, part, apply), 14);
        assert_eq!(computed.get(), 4);
        nodes.pop();
        assert_eq!(*inc.refresh("q", &nodes, part, apply), 11);
        assert_eq!(*inc.refresh("other", &nodes, part, apply), 11);
        assert_eq!(computed.get(), 6, "a new question starts over");
    }
}
