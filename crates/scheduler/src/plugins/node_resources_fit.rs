//! NodeResourcesFit: the pod's requests must fit in what the node's allocatable leaves
//! after its pods' requests (and a slot must be left under its `pods` capacity); nodes are
//! scored by the LeastAllocated strategy (cpu and memory, weight 1 each).

use std::borrow::Cow;

use crate::framework::{
    CycleContext, FilterPlugin, Plugin, PreFilterPlugin, PreFilterResult, PreScorePlugin,
    ScorePlugin,
};
use crate::node_info::NodeInfo;
use crate::plugins::{MAX_NODE_SCORE, PluginName};
use crate::pod_info::PodInfo;
use crate::resource::Resource;
use crate::status::{Code, Status};

/// kube-scheduler's default weight.
pub const WEIGHT: i64 = 1;

pub struct NodeResourcesFit;

impl Plugin for NodeResourcesFit {
    fn name(&self) -> PluginName {
        PluginName::NodeResourcesFit
    }
}

/// One resource a node lacks for a pod (kube's `noderesources.InsufficientResource`):
/// what the pod requests, what the node's pods use, and what it has (millicores for cpu,
/// bytes for memory and storage, a count for pods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientResource {
    pub name: Cow<'static, str>,
    pub requested: i64,
    pub used: i64,
    pub capacity: i64,
}

impl InsufficientResource {
    /// The scheduler's reason: "Too many pods" or "Insufficient <resource>".
    pub fn reason(&self) -> Cow<'static, str> {
        match self.name.as_ref() {
            "pods" => Cow::Borrowed("Too many pods"),
            "cpu" => Cow::Borrowed("Insufficient cpu"),
            "memory" => Cow::Borrowed("Insufficient memory"),
            "ephemeral-storage" => Cow::Borrowed("Insufficient ephemeral-storage"),
            name => Cow::Owned(format!("Insufficient {name}")),
        }
    }
}

/// What a node lacks to take `request` (kube's `fitsRequest`): a slot under its `pods`
/// capacity, then cpu, memory, ephemeral storage and extended resources.
pub fn insufficient_resources(request: &Resource, node: &NodeInfo) -> Vec<InsufficientResource> {
    let mut lacking = Vec::new();
    let pods = node.pods.len() as i64;
    if pods + 1 > node.allocatable.allowed_pod_number {
        lacking.push(InsufficientResource {
            name: Cow::Borrowed("pods"),
            requested: 1,
            used: pods,
            capacity: node.allocatable.allowed_pod_number,
        });
    }
    if request.is_zero() {
        return lacking;
    }
    let mut check = |name: Cow<'static, str>, requested: i64, used: i64, capacity: i64| {
        if requested > 0 && requested > capacity.saturating_sub(used) {
            lacking.push(InsufficientResource {
                name,
                requested,
                used,
                capacity,
            });
        }
    };
    let (alloc, used) = (&node.allocatable, &node.requested);
    check(
        "cpu".into(),
        request.milli_cpu,
        used.milli_cpu,
        alloc.milli_cpu,
    );
    check("memory".into(), request.memory, used.memory, alloc.memory);
    check(
        "ephemeral-storage".into(),
        request.ephemeral_storage,
        used.ephemeral_storage,
        alloc.ephemeral_storage,
    );
    for (name, amount) in &request.scalar {
        check(
            Cow::Owned(name.clone()),
            *amount,
            used.scalar(name),
            alloc.scalar(name),
        );
    }
    lacking
}

impl PreFilterPlugin for NodeResourcesFit {
    type State = ();

    fn pre_filter(&self, _ctx: &CycleContext<'_>, _pod: &PodInfo) -> PreFilterResult<()> {
        PreFilterResult::Run(())
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, _state: &(), pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let lacking = insufficient_resources(&pod.requests, node);
        if lacking.is_empty() {
            Ok(())
        } else {
            Err(Status {
                code: Code::Unschedulable,
                reasons: lacking.iter().map(InsufficientResource::reason).collect(),
                plugin: None,
            })
        }
    }
}

/// kube's `leastRequestedScore`: the share of the resource left free, 0..=100.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl PreScorePlugin for NodeResourcesFit {
    /// The pod's cpu and memory requests, absent requests defaulted.
    type ScoreState = (i64, i64);

    fn pre_score(
        &self,
        _ctx: &CycleContext<'_>,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
    ) -> Option<(i64, i64)> {
        Some((
            pod.non_zero_requests.milli_cpu,
            pod.non_zero_requests.memory,
        ))
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn weight(&self) -> i64 {
        WEIGHT
    }

    /// LeastAllocated over cpu and memory, equally weighted.
    fn score(&self, &(cpu, memory): &(i64, i64), _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let mut total = 0;
        let mut weights = 0;
        for (alloc, requested) in [
            (
                node.allocatable.milli_cpu,
                node.non_zero_requested.milli_cpu + cpu,
            ),
            (
                node.allocatable.memory,
                node.non_zero_requested.memory + memory,
            ),
        ] {
            if alloc == 0 {
                continue;
            }
            total += least_requested_score(requested, alloc);
            weights += 1;
        }
        if weights == 0 { 0 } else { total / weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::node_info::test_nodes::node;
    use crate::pod_info::test_pods::pod;

    #[test]
    fn filter_golden() {
        let mut n = node("n", "2", "4Gi").pods("2").info();
        n.add_pod(pod("a").req("1500m", "1Gi").info());
        let fits =
            |p: &PodInfo, n: &NodeInfo| NodeResourcesFit.filter(&(), p, n).map_err(|e| e.message());
        assert_eq!(fits(&pod("p").req("500m", "3Gi").info(), &n), Ok(()));
        assert_eq!(
            fits(&pod("p").req("600m", "3Gi").info(), &n),
            Err("Insufficient cpu".to_owned())
        );
        assert_eq!(
            fits(&pod("p").req("1", "4Gi").info(), &n),
            Err("Insufficient cpu, Insufficient memory".to_owned())
        );
        // A pod without requests still needs a pod slot.
        n.add_pod(pod("b").info());
        assert_eq!(fits(&pod("p").info(), &n), Err("Too many pods".to_owned()));
        let err = NodeResourcesFit
            .filter(&(), &pod("p").req("1", "").info(), &n)
            .unwrap_err();
        assert_eq!(err.code, Code::Unschedulable);
        assert_eq!(err.message(), "Too many pods, Insufficient cpu");
    }

    #[test]
    fn extended_resources() {
        let mut gpu = node("n", "2", "4Gi");
        if let Some(a) = gpu.0.status.as_mut().and_then(|s| s.allocatable.as_mut()) {
            a.insert(
                "example.com/gpu".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("1".into()),
            );
        }
        let gpu = gpu.info();
        let mut p = pod("p");
        if let Some(spec) = p.0.spec.as_mut() {
            spec.containers[0].resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
                requests: Some(std::collections::BTreeMap::from([(
                    "example.com/gpu".to_owned(),
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
                )])),
                ..Default::default()
            });
        }
        let err = NodeResourcesFit.filter(&(), &p.info(), &gpu).unwrap_err();
        assert_eq!(err.message(), "Insufficient example.com/gpu");
        assert!(crate::resource::is_extended_resource_name(
            "example.com/gpu"
        ));
    }

    #[test]
    fn least_allocated_golden() {
        // kube's test: node 4000m/10000 memory with nothing on it; pod 3000m/5000 memory:
        // cpu (4000-3000)*100/4000 = 25, memory (10000-5000)*100/10000 = 50; (25+50)/2 = 37.
        let n = node("n", "4", "10000").info();
        let p = pod("p").req("3", "5000").info();
        let cache = Cache::new();
        let ctx = CycleContext {
            cache: &cache,
            parallelism: 1,
        };
        let s = NodeResourcesFit.pre_score(&ctx, &p, &[&n]).unwrap();
        assert_eq!(NodeResourcesFit.score(&s, &p, &n), 37);
        // A pod without requests counts 100m and 200Mi.
        let big = node("m", "1", "2000Mi").info();
        let q = pod("q").info();
        let s = NodeResourcesFit.pre_score(&ctx, &q, &[&big]).unwrap();
        assert_eq!(NodeResourcesFit.score(&s, &q, &big), (90 + 90) / 2);
        assert_eq!(least_requested_score(5, 4), 0);
    }
}
