//! One node as the scheduler sees it (kube's `framework.NodeInfo`): what it offers
//! (allocatable, labels, taints, schedulability) and what its pods, bound or assumed,
//! already take (requests, host ports).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::labels::NodeLabels;
use crate::pod_info::{HostPort, PodInfo};
use crate::resource::Resource;
use crate::taints::Taint;

#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    /// Whether the Node object exists; pods can refer to a node the scheduler has not
    /// seen (yet, or any more), which is then kept only to count them.
    pub exists: bool,
    pub labels: NodeLabels,
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    pub allocatable: Resource,
    pub pods: Vec<Arc<PodInfo>>,
    /// The sum of the pods' requests.
    pub requested: Resource,
    /// The same with absent cpu/memory requests defaulted, for scoring.
    pub non_zero_requested: Resource,
    pub used_ports: Vec<HostPort>,
    /// Pods with any pod affinity or anti-affinity.
    pub pods_with_affinity: usize,
    /// Pods with required anti-affinity.
    pub pods_with_required_anti_affinity: usize,
    /// Changes whenever anything above does; unique across the cache's nodes, so plugins
    /// can keep per-node results between cycles (kube's `NodeInfo.Generation`).
    pub generation: u64,
}

impl NodeInfo {
    /// A node known only by name.
    pub fn new(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_owned(),
            exists: false,
            labels: NodeLabels::new(),
            taints: Vec::new(),
            unschedulable: false,
            allocatable: Resource::default(),
            pods: Vec::new(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            used_ports: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            generation: 0,
        }
    }

    /// From a Node object.
    pub fn from_node(node: &Node) -> NodeInfo {
        let mut info = NodeInfo::new(node.metadata.name.as_deref().unwrap_or(""));
        info.set_node(node);
        info
    }

    /// Takes the node's current labels, taints, schedulability and allocatable.
    pub fn set_node(&mut self, node: &Node) {
        self.exists = true;
        let mut labels = NodeLabels::new();
        for (k, v) in node.metadata.labels.iter().flatten() {
            // Keep the shared strings of unchanged labels.
            match self.labels.get_key_value(k.as_str()) {
                Some((key, value)) if **value == **v => {
                    labels.insert(key.clone(), value.clone());
                }
                _ => {
                    labels.insert(Arc::from(k.as_str()), Arc::from(v.as_str()));
                }
            }
        }
        self.labels = labels;
        let spec = node.spec.as_ref();
        self.taints = spec
            .and_then(|s| s.taints.as_ref())
            .map(|t| t.iter().map(Taint::from_api).collect())
            .unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(Resource::from_list)
            .unwrap_or_default();
    }

    /// Adds a pod (bound, assumed or, in a simulation, nominated).
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.milli_cpu += pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory += pod.non_zero_requests.memory;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if pod.has_required_anti_affinity() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(pod);
    }

    /// Removes a pod by key; returns it when it was there.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.key == key)?;
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.milli_cpu -= pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory -= pod.non_zero_requests.memory;
        for port in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(j);
            }
        }
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if pod.has_required_anti_affinity() {
            self.pods_with_required_anti_affinity -= 1;
        }
        Some(pod)
    }
}

#[cfg(test)]
pub(crate) mod test_nodes {
    //! Builders for nodes in tests.

    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus, Taint};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[derive(Clone)]
    pub struct N(pub Node);

    /// A node with `cpu` cores, `mem` memory and room for 110 pods, labelled with its
    /// hostname.
    pub fn node(name: &str, cpu: &str, mem: &str) -> N {
        let allocatable = BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.into())),
            ("memory".to_owned(), Quantity(mem.into())),
            ("pods".to_owned(), Quantity("110".into())),
        ]);
        N(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([(
                    "kubernetes.io/hostname".to_owned(),
                    name.to_owned(),
                )])),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                capacity: Some(allocatable.clone()),
                allocatable: Some(allocatable),
                ..Default::default()
            }),
        })
    }

    impl N {
        pub fn label(mut self, k: &str, v: &str) -> N {
            self.0
                .metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(k.into(), v.into());
            self
        }

        pub fn taint(mut self, key: &str, value: &str, effect: &str) -> N {
            self.0
                .spec
                .get_or_insert_with(Default::default)
                .taints
                .get_or_insert_with(Default::default)
                .push(Taint {
                    key: key.into(),
                    value: (!value.is_empty()).then(|| value.into()),
                    effect: effect.into(),
                    time_added: None,
                });
            self
        }

        pub fn unschedulable(mut self) -> N {
            self.0
                .spec
                .get_or_insert_with(Default::default)
                .unschedulable = Some(true);
            self
        }

        pub fn pods(mut self, n: &str) -> N {
            if let Some(a) = self.0.status.as_mut().and_then(|s| s.allocatable.as_mut()) {
                a.insert("pods".into(), Quantity(n.into()));
            }
            self
        }

        pub fn info(&self) -> super::NodeInfo {
            super::NodeInfo::from_node(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_nodes::node;
    use crate::pod_info::test_pods::pod;

    #[test]
    fn pods_add_up_and_come_off() {
        let mut n = node("n1", "4", "8Gi").info();
        assert_eq!(n.allocatable.milli_cpu, 4000);
        assert_eq!(n.allocatable.allowed_pod_number, 110);
        n.add_pod(pod("a").req("1", "1Gi").host_port(80).info());
        n.add_pod(pod("b").info());
        assert_eq!(n.requested.milli_cpu, 1000);
        assert_eq!(
            n.non_zero_requested.milli_cpu, 1100,
            "b counts 100m for scoring"
        );
        assert_eq!(n.used_ports.len(), 1);
        assert!(n.remove_pod("default/a").is_some());
        assert!(n.remove_pod("default/a").is_none());
        assert_eq!(n.requested.milli_cpu, 0);
        assert_eq!(
            n.non_zero_requested.memory,
            crate::resource::DEFAULT_MEMORY_REQUEST
        );
        assert!(n.used_ports.is_empty());
    }
}
