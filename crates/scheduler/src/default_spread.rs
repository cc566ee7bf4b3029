//! PodTopologySpread's system default constraints (kube-scheduler's `defaultingType:
//! System`): a pod without constraints of its own, selected by a Service or controlled by a
//! ReplicationController, ReplicaSet or StatefulSet, is spread softly over hostnames
//! (maxSkew 3) and zones (maxSkew 5) among the pods the same selector picks (kube's
//! `helper.DefaultSelector`).

use std::collections::BTreeMap;

use crate::fast_hash::FxHashMap;
use crate::labels::Selector;
use crate::pod_info::{PodInfo, SpreadConstraint};

/// kube-scheduler's system default constraints: (topology key, maxSkew).
pub const SYSTEM_DEFAULTS: [(&str, i64); 2] = [
    ("kubernetes.io/hostname", 3),
    ("topology.kubernetes.io/zone", 5),
];

/// What selects pods, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    Service,
    ReplicationController,
    ReplicaSet,
    StatefulSet,
}

/// A Service's or controller's pod selector.
#[derive(Debug, Clone)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    /// A Service's or RC's `spec.selector` (a plain label map).
    pub labels: BTreeMap<String, String>,
    /// A ReplicaSet's or StatefulSet's label selector.
    pub selector: Option<Selector>,
}

/// The selectors the scheduler knows, by kind and `namespace/name`.
#[derive(Debug, Default)]
pub struct Owners {
    owners: FxHashMap<(OwnerKind, String), Owner>,
}

impl Owners {
    pub fn apply(&mut self, kind: OwnerKind, key: String, owner: Owner) {
        self.owners.insert((kind, key), owner);
    }

    pub fn delete(&mut self, kind: OwnerKind, key: &str) {
        self.owners.remove(&(kind, key.to_owned()));
    }

    pub fn keys(&self, kind: OwnerKind) -> Vec<String> {
        self.owners
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, key)| key.clone())
            .collect()
    }

    fn get(&self, kind: OwnerKind, namespace: &str, name: &str) -> Option<&Owner> {
        self.owners.get(&(kind, format!("{namespace}/{name}")))
    }

    /// kube's DefaultSelector: the labels of the services selecting the pod, and its
    /// controller's selector.
    pub fn default_selector(&self, pod: &PodInfo) -> Selector {
        let labels = pod.pod.metadata.labels.clone().unwrap_or_default();
        let mut set: BTreeMap<String, String> = BTreeMap::new();
        for ((kind, _), svc) in &self.owners {
            if *kind == OwnerKind::Service
                && svc.namespace == pod.namespace
                && !svc.labels.is_empty()
                && svc.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            {
                set.extend(svc.labels.clone());
            }
        }
        let controller = pod
            .pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true));
        let mut base: Option<Selector> = None;
        if let Some(owner) = controller {
            let kind = match (owner.api_version.as_str(), owner.kind.as_str()) {
                ("v1", "ReplicationController") => Some(OwnerKind::ReplicationController),
                ("apps/v1", "ReplicaSet") => Some(OwnerKind::ReplicaSet),
                ("apps/v1", "StatefulSet") => Some(OwnerKind::StatefulSet),
                _ => None,
            };
            if let Some(found) = kind.and_then(|k| self.get(k, &pod.namespace, &owner.name)) {
                match &found.selector {
                    Some(selector) => base = Some(selector.clone()),
                    None => set.extend(found.labels.clone()),
                }
            }
        }
        let mut selector = base.unwrap_or_else(Selector::everything);
        for (k, v) in &set {
            selector.add_equals(k, v);
        }
        selector
    }

    /// The system default constraints for a pod without its own, if anything selects it.
    pub fn default_constraints(&self, pod: &PodInfo) -> Vec<SpreadConstraint> {
        if !pod.spread_constraints.is_empty() {
            return Vec::new();
        }
        let selector = self.default_selector(pod);
        if selector.is_empty() || selector == Selector::Nothing {
            return Vec::new();
        }
        SYSTEM_DEFAULTS
            .iter()
            .map(|(key, skew)| SpreadConstraint {
                max_skew: *skew,
                topology_key: (*key).to_owned(),
                hard: false,
                selector: selector.clone(),
                min_domains: 1,
                honor_node_affinity: true,
                honor_node_taints: false,
            })
            .collect()
    }
}
