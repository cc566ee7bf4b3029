//! The ResourceQuota controller: `status.hard` mirrors `spec.hard` and `status.used` counts
//! what the namespace uses of each quota'd resource, as kube's quota evaluators count it:
//! object counts (`pods`, `services`, `count/deployments.apps`, ...), the compute requests and
//! limits of pods that are not terminal, NodePort and LoadBalancer services, and PVC storage
//! requests; with the Terminating, NotTerminating, BestEffort and NotBestEffort scopes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use rkube_api::validate_types::Quantity;
use serde_json::json;

use crate::batchutil::is_active;
use crate::informer::{Informer, split_key};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

struct Caches {
    quotas: Informer<ResourceQuota>,
    pods: Informer<Pod>,
    services: Informer<Service>,
    configmaps: Informer<ConfigMap>,
    secrets: Informer<Secret>,
    claims: Informer<PersistentVolumeClaim>,
    controllers: Informer<ReplicationController>,
    deployments: Informer<Deployment>,
    replicasets: Informer<ReplicaSet>,
    statefulsets: Informer<StatefulSet>,
    daemonsets: Informer<DaemonSet>,
    jobs: Informer<Job>,
    cronjobs: Informer<CronJob>,
}

struct Controller {
    ctx: Context,
    caches: Caches,
}

/// Queues every quota of a namespace when something in it changes.
fn requeue_namespace<K>(
    informer: &Informer<K>,
    ctx: &Context,
    quotas: &Informer<ResourceQuota>,
    queue: &WorkQueue,
) where
    K: kube::Resource + Clone + Send + Sync + 'static,
{
    let quotas = quotas.clone();
    let queue = queue.clone();
    on_change(informer, ctx.stop.clone(), move |change| {
        let namespace = change.object().meta().namespace.clone().unwrap_or_default();
        for quota in quotas.list_in(&namespace) {
            queue.add(format!("{namespace}/{}", quota.name_any()));
        }
    });
}

pub fn start(ctx: &Context, options: &Options) {
    let caches = Caches {
        quotas: ctx.informer(),
        pods: ctx.informer(),
        services: ctx.informer(),
        configmaps: ctx.informer(),
        secrets: ctx.informer(),
        claims: ctx.informer(),
        controllers: ctx.informer(),
        deployments: ctx.informer(),
        replicasets: ctx.informer(),
        statefulsets: ctx.informer(),
        daemonsets: ctx.informer(),
        jobs: ctx.informer(),
        cronjobs: ctx.informer(),
    };
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&caches.quotas, ctx.stop.clone(), move |change| {
        let quota = change.object();
        q.add(format!(
            "{}/{}",
            quota.namespace().unwrap_or_default(),
            quota.name_any()
        ));
    });
    requeue_namespace(&caches.pods, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.services, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.configmaps, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.secrets, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.claims, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.controllers, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.deployments, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.replicasets, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.statefulsets, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.daemonsets, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.jobs, ctx, &caches.quotas, &queue);
    requeue_namespace(&caches.cronjobs, ctx, &caches.quotas, &queue);
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        caches,
    });
    run_workers(controller, queue, options.workers.min(2), ctx.stop.clone());
}

/// A pod's requests or limits for one resource: the sum over containers, at least the largest
/// init container's, plus overhead (kube's PodRequests).
fn pod_amount(pod: &Pod, resource: &str, limits: bool) -> Quantity {
    let Some(spec) = pod.spec.as_ref() else {
        return Quantity::zero();
    };
    let of = |r: Option<&k8s_openapi::api::core::v1::ResourceRequirements>| {
        r.and_then(|r| {
            if limits {
                r.limits.as_ref()
            } else {
                r.requests.as_ref()
            }
        })
        .and_then(|m| m.get(resource))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .unwrap_or_else(Quantity::zero)
    };
    let mut sum = Quantity::zero();
    for c in &spec.containers {
        sum = sum.add(&of(c.resources.as_ref()));
    }
    for c in spec.init_containers.iter().flatten() {
        let init = of(c.resources.as_ref());
        if init.greater_than(&sum) {
            sum = init;
        }
    }
    if let Some(overhead) = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get(resource))
        .and_then(|q| Quantity::parse(&q.0).ok())
    {
        sum = sum.add(&overhead);
    }
    sum
}

fn best_effort(pod: &Pod) -> bool {
    pod.spec.as_ref().is_none_or(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .all(|c| {
                c.resources.as_ref().is_none_or(|r| {
                    r.requests.as_ref().is_none_or(|m| m.is_empty())
                        && r.limits.as_ref().is_none_or(|m| m.is_empty())
                })
            })
    })
}

fn pod_in_scopes(pod: &Pod, scopes: &[String]) -> bool {
    scopes.iter().all(|scope| {
        let terminating = pod
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds)
            .is_some();
        match scope.as_str() {
            "Terminating" => terminating,
            "NotTerminating" => !terminating,
            "BestEffort" => best_effort(pod),
            "NotBestEffort" => !best_effort(pod),
            _ => true,
        }
    })
}

/// What the namespace uses of each resource in `hard`.
fn usage(
    caches: &Caches,
    namespace: &str,
    hard: &BTreeMap<String, KQuantity>,
    scopes: &[String],
) -> BTreeMap<String, KQuantity> {
    let pods: Vec<Arc<Pod>> = caches
        .pods
        .list_in(namespace)
        .into_iter()
        .filter(|p| is_active(p) && pod_in_scopes(p, scopes))
        .collect();
    let services = caches.services.list_in(namespace);
    let count = |n: usize| Quantity::parse(&n.to_string()).unwrap_or_else(|_| Quantity::zero());
    let mut used = BTreeMap::new();
    for resource in hard.keys() {
        let pod_sum = |name: &str, limits: bool| {
            pods.iter().fold(Quantity::zero(), |acc, p| {
                acc.add(&pod_amount(p, name, limits))
            })
        };
        let amount = match resource.as_str() {
            "pods" | "count/pods" => count(pods.len()),
            "cpu" | "requests.cpu" => pod_sum("cpu", false),
            "memory" | "requests.memory" => pod_sum("memory", false),
            "ephemeral-storage" | "requests.ephemeral-storage" => {
                pod_sum("ephemeral-storage", false)
            }
            "limits.cpu" => pod_sum("cpu", true),
            "limits.memory" => pod_sum("memory", true),
            "limits.ephemeral-storage" => pod_sum("ephemeral-storage", true),
            "services" | "count/services" => count(services.len()),
            "services.nodeports" => count(
                services
                    .iter()
                    .filter_map(|s| s.spec.as_ref())
                    .filter(|s| matches!(s.type_.as_deref(), Some("NodePort" | "LoadBalancer")))
                    .map(|s| s.ports.as_ref().map_or(0, Vec::len))
                    .sum(),
            ),
            "services.loadbalancers" => count(
                services
                    .iter()
                    .filter(|s| {
                        s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
                    })
                    .count(),
            ),
            "configmaps" | "count/configmaps" => count(caches.configmaps.list_in(namespace).len()),
            "secrets" | "count/secrets" => count(caches.secrets.list_in(namespace).len()),
            "persistentvolumeclaims" | "count/persistentvolumeclaims" => {
                count(caches.claims.list_in(namespace).len())
            }
            "requests.storage" => {
                caches
                    .claims
                    .list_in(namespace)
                    .iter()
                    .fold(Quantity::zero(), |acc, c| {
                        let q = c
                            .spec
                            .as_ref()
                            .and_then(|s| s.resources.as_ref())
                            .and_then(|r| r.requests.as_ref())
                            .and_then(|r| r.get("storage"))
                            .and_then(|q| Quantity::parse(&q.0).ok())
                            .unwrap_or_else(Quantity::zero);
                        acc.add(&q)
                    })
            }
            "replicationcontrollers" | "count/replicationcontrollers" => {
                count(caches.controllers.list_in(namespace).len())
            }
            "resourcequotas" | "count/resourcequotas" => {
                count(caches.quotas.list_in(namespace).len())
            }
            "count/deployments.apps" => count(caches.deployments.list_in(namespace).len()),
            "count/replicasets.apps" => count(caches.replicasets.list_in(namespace).len()),
            "count/statefulsets.apps" => count(caches.statefulsets.list_in(namespace).len()),
            "count/daemonsets.apps" => count(caches.daemonsets.list_in(namespace).len()),
            "count/jobs.batch" => count(caches.jobs.list_in(namespace).len()),
            "count/cronjobs.batch" => count(caches.cronjobs.list_in(namespace).len()),
            // A resource no evaluator counts (extended resources, other count/ kinds).
            _ => continue,
        };
        used.insert(resource.clone(), KQuantity(amount.to_go_string()));
    }
    used
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "resourcequota"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        let c = &self.caches;
        let synced = c.quotas.has_synced()
            && c.pods.has_synced()
            && c.services.has_synced()
            && c.claims.has_synced();
        if !synced {
            return Ok(Next::After(Duration::from_millis(200)));
        }
        let Some(quota) = c.quotas.get(&key) else {
            return Ok(Next::Done);
        };
        let (namespace, name) = split_key(&key);
        let namespace = namespace.unwrap_or("default");
        let hard = quota
            .spec
            .as_ref()
            .and_then(|s| s.hard.clone())
            .unwrap_or_default();
        let scopes = quota
            .spec
            .as_ref()
            .and_then(|s| s.scopes.clone())
            .unwrap_or_default();
        let used = usage(c, namespace, &hard, &scopes);
        let status = quota.status.clone().unwrap_or_default();
        if status.hard.as_ref() == Some(&hard) && status.used.as_ref() == Some(&used) {
            // Full resync every 5 minutes, as kube does.
            return Ok(Next::After(Duration::from_secs(300)));
        }
        let api: Api<ResourceQuota> = Api::namespaced(self.ctx.client.clone(), namespace);
        let patch = json!({"status": {"hard": hard, "used": used}});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(Next::After(Duration::from_secs(300)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};

    fn pod(requests: &[(&str, &str)], init: &[(&str, &str)]) -> Pod {
        let reqs = |r: &[(&str, &str)]| ResourceRequirements {
            requests: Some(
                r.iter()
                    .map(|(k, v)| ((*k).to_owned(), KQuantity((*v).to_owned())))
                    .collect(),
            ),
            ..ResourceRequirements::default()
        };
        Pod {
            spec: Some(PodSpec {
                containers: vec![
                    Container {
                        name: "a".into(),
                        resources: Some(reqs(requests)),
                        ..Container::default()
                    },
                    Container {
                        name: "b".into(),
                        resources: Some(reqs(requests)),
                        ..Container::default()
                    },
                ],
                init_containers: Some(vec![Container {
                    name: "i".into(),
                    resources: Some(reqs(init)),
                    ..Container::default()
                }]),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn pod_requests_sum_containers_and_take_the_largest_init() {
        let p = pod(&[("cpu", "250m"), ("memory", "64Mi")], &[("cpu", "1")]);
        assert_eq!(pod_amount(&p, "cpu", false).to_go_string(), "1");
        assert_eq!(pod_amount(&p, "memory", false).to_go_string(), "128Mi");
        let small_init = pod(&[("cpu", "250m")], &[("cpu", "100m")]);
        assert_eq!(pod_amount(&small_init, "cpu", false).to_go_string(), "500m");
        assert!(!best_effort(&p));
        assert!(best_effort(&Pod {
            spec: Some(PodSpec::default()),
            ..Pod::default()
        }));
    }
}
