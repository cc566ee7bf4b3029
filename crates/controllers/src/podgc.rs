//! Pod garbage collection, as kube-controller-manager's podgc does it every 20 s:
//! - terminated pods (Succeeded or Failed) over --terminated-pod-gc-threshold, oldest first;
//! - pods bound to nodes that no longer exist (confirmed through the API, not the cache);
//! - terminating pods that were never scheduled;
//! - terminating pods on nodes tainted node.kubernetes.io/out-of-service.
//!
//! Pods it removes are deleted with a grace period of 0: no kubelet will do it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};

use crate::batchutil::is_terminal;
use crate::events::Type;
use crate::informer::Informer;
use crate::{Context, Options};

const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

struct Collector {
    ctx: Context,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    threshold: usize,
}

pub fn start(ctx: &Context, options: &Options) {
    let collector = Arc::new(Collector {
        ctx: ctx.clone(),
        pods: ctx.informer::<Pod>(),
        nodes: ctx.informer::<Node>(),
        threshold: options.terminated_pod_gc_threshold,
    });
    let stop = ctx.stop.clone();
    let period = options.pod_gc_period;
    tokio::spawn(async move {
        collector.pods.synced().await;
        collector.nodes.synced().await;
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = stop.stopped() => break,
            }
            collector.collect().await;
        }
    });
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// The terminated pods to delete so that at most `threshold` remain, oldest first.
pub fn over_threshold(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut done: Vec<Arc<Pod>> = pods.iter().filter(|p| is_terminal(p)).cloned().collect();
    if done.len() <= threshold {
        return Vec::new();
    }
    done.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .cmp(&b.metadata.creation_timestamp)
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let excess = done.len() - threshold;
    done.truncate(excess);
    done
}

impl Collector {
    async fn collect(&self) {
        let pods = self.pods.list();
        let nodes: HashSet<String> = self.nodes.list().iter().map(|n| n.name_any()).collect();
        let mut doomed: Vec<(Arc<Pod>, &str)> = over_threshold(&pods, self.threshold)
            .into_iter()
            .map(|p| (p, "PodGC: the terminated-pod threshold is exceeded"))
            .collect();
        let node_api: Api<Node> = Api::all(self.ctx.client.clone());
        let mut confirmed_gone: HashSet<String> = HashSet::new();
        for pod in &pods {
            match node_name(pod) {
                Some(node) if !nodes.contains(node) => {
                    // The cache may be behind: ask the API server before deleting.
                    if !confirmed_gone.contains(node) {
                        match node_api.get_opt(node).await {
                            Ok(None) => {
                                confirmed_gone.insert(node.to_owned());
                            }
                            _ => continue,
                        }
                    }
                    doomed.push((pod.clone(), "PodGC: node no longer exists"));
                }
                None if pod.metadata.deletion_timestamp.is_some() => {
                    doomed.push((
                        pod.clone(),
                        "PodGC: the pod was terminating and never scheduled",
                    ));
                }
                Some(node) if pod.metadata.deletion_timestamp.is_some() => {
                    let out_of_service = self.nodes.get(node).is_some_and(|n| {
                        n.spec
                            .as_ref()
                            .and_then(|s| s.taints.as_ref())
                            .is_some_and(|t| {
                                t.iter()
                                    .any(|t| t.key == OUT_OF_SERVICE && t.effect == "NoExecute")
                            })
                    });
                    if out_of_service {
                        doomed.push((pod.clone(), "PodGC: the node is out of service"));
                    }
                }
                _ => {}
            }
        }
        for (pod, why) in doomed {
            let namespace = pod.namespace().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &namespace);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            };
            match api.delete(&pod.name_any(), &params).await {
                Ok(_) => {
                    tracing::info!(pod = %format!("{namespace}/{}", pod.name_any()), "{why}");
                    self.ctx
                        .recorder
                        .record(pod.as_ref(), Type::Normal, "PodGC", why);
                }
                Err(err) => tracing::debug!(pod = %pod.name_any(), "pod GC: {err}"),
            }
        }
    }
}

/// How long between passes (kube: 20 s).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::chrono::{TimeZone, Utc};

    fn pod(name: &str, phase: &str, created: i64) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Utc.timestamp_opt(created, 0).single().map(Time),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
            ..Pod::default()
        })
    }

    #[test]
    fn the_oldest_terminated_pods_over_the_threshold_go() {
        let pods = vec![
            pod("new-done", "Succeeded", 30),
            pod("running", "Running", 1),
            pod("old-done", "Failed", 10),
            pod("mid-done", "Succeeded", 20),
        ];
        let names: Vec<String> = over_threshold(&pods, 1)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(names, ["old-done", "mid-done"]);
        assert!(over_threshold(&pods, 3).is_empty());
        assert!(over_threshold(&pods, 0).is_empty());
    }
}
