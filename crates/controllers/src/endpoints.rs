//! The Endpoints and EndpointSlice controllers: for each Service with a selector, the
//! addresses of the pods it selects, ready and not ready, with each service port's target
//! port resolved against the pod (named ports by container port name). A Service without a
//! selector gets neither: its endpoints are the user's to write.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Resource, ResourceExt};

use crate::batchutil::is_ready;
use crate::informer::{Change, Informer, key_of, split_key};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

/// The label that ties a slice to its service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// At most this many endpoints per slice (kube's --max-endpoints-per-slice default).
const MAX_PER_SLICE: usize = 100;

/// A pod's resolved ports: (service port name, port, protocol), sorted.
type PortSet = Vec<(Option<String>, i32, String)>;

/// A pod's address as a service sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct PodEndpoint {
    pub ip: String,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node_name: Option<String>,
    pub hostname: Option<String>,
    pub target: ObjectReference,
    /// (service port name, resolved port, protocol)
    pub ports: Vec<(Option<String>, i32, String)>,
}

fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Resolves a service port's targetPort on a pod: a number as is, a name by the pod's
/// container ports of that name and protocol.
fn resolve_port(pod: &Pod, target: Option<&IntOrString>, port: i32, protocol: &str) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            spec.containers.iter().find_map(|c| {
                c.ports.as_ref()?.iter().find_map(|p| {
                    (p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(p.container_port)
                })
            })
        }
    }
}

/// The endpoint a pod contributes to a service, if any (kube's podToEndpointAddress and
/// ShouldPodBeInEndpoints).
pub fn pod_endpoint(service: &Service, pod: &Pod) -> Option<PodEndpoint> {
    let spec = service.spec.as_ref()?;
    let status = pod.status.as_ref()?;
    let ip = status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    // Terminating pods are not addresses of Endpoints; slices keep them as terminating.
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let ready = publish_not_ready || (is_ready(pod) && !terminating);
    let serving = publish_not_ready || is_ready(pod);
    let pod_spec = pod.spec.as_ref();
    let svc_name = service.name_any();
    let hostname = pod_spec.and_then(|s| {
        let host = s.hostname.clone()?;
        (s.subdomain.as_deref() == Some(svc_name.as_str())).then_some(host)
    });
    let mut ports = Vec::new();
    for port in spec.ports.iter().flatten() {
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".to_owned());
        if let Some(resolved) = resolve_port(pod, port.target_port.as_ref(), port.port, &protocol) {
            ports.push((port.name.clone(), resolved, protocol));
        }
    }
    Some(PodEndpoint {
        ip,
        ready,
        serving,
        terminating,
        node_name: pod_spec.and_then(|s| s.node_name.clone()),
        hostname,
        target: ObjectReference {
            kind: Some("Pod".to_owned()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        },
        ports,
    })
}

/// The Endpoints subsets: addresses grouped by identical port sets, sorted, as kube's
/// RepackSubsets leaves them.
pub fn subsets(endpoints: &[PodEndpoint], publish_not_ready: bool) -> Vec<EndpointSubset> {
    let mut by_ports: BTreeMap<PortSet, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for ep in endpoints {
        if ep.ports.is_empty() || (ep.terminating && !publish_not_ready) {
            continue;
        }
        let mut ports = ep.ports.clone();
        ports.sort();
        let address = EndpointAddress {
            ip: ep.ip.clone(),
            hostname: ep.hostname.clone(),
            node_name: ep.node_name.clone(),
            target_ref: Some(ep.target.clone()),
        };
        let entry = by_ports.entry(ports).or_default();
        if ep.ready {
            entry.0.push(address);
        } else {
            entry.1.push(address);
        }
    }
    by_ports
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            let by_ip = |a: &EndpointAddress, b: &EndpointAddress| {
                a.ip.cmp(&b.ip).then_with(|| {
                    a.target_ref
                        .as_ref()
                        .map(|t| &t.uid)
                        .cmp(&b.target_ref.as_ref().map(|t| &t.uid))
                })
            };
            ready.sort_by(by_ip);
            not_ready.sort_by(by_ip);
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: Some(
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name,
                            port,
                            protocol: Some(protocol),
                            app_protocol: None,
                        })
                        .collect(),
                ),
            }
        })
        .collect()
}

struct Controller {
    ctx: Context,
    services: Informer<Service>,
    pods: Informer<Pod>,
    endpoints: Informer<Endpoints>,
    slices: Informer<EndpointSlice>,
}

pub fn start(ctx: &Context, options: &Options) {
    let services = ctx.informer::<Service>();
    let pods = ctx.informer::<Pod>();
    let endpoints = ctx.informer::<Endpoints>();
    let slices = ctx.informer::<EndpointSlice>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&services, ctx.stop.clone(), move |change| {
        q.add(key_of(change.object().as_ref()));
    });
    // A pod change queues every service that selects it now or selected it before.
    let q = queue.clone();
    let svc_cache = services.clone();
    on_change(&pods, ctx.stop.clone(), move |change| {
        let (old, new) = match change {
            Change::Added(p) | Change::Deleted(p) => (None, p),
            Change::Updated(o, n) => (Some(o), n),
        };
        if let Some(old) = old {
            let same = old.metadata.labels == new.metadata.labels
                && old
                    .status
                    .as_ref()
                    .map(|s| (&s.pod_ip, &s.phase, &s.conditions))
                    == new
                        .status
                        .as_ref()
                        .map(|s| (&s.pod_ip, &s.phase, &s.conditions))
                && old.metadata.deletion_timestamp == new.metadata.deletion_timestamp;
            if same {
                return;
            }
        }
        let namespace = new.namespace().unwrap_or_default();
        let empty = BTreeMap::new();
        for service in svc_cache.list_in(&namespace) {
            let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
                continue;
            };
            let matches_new =
                selector_matches(selector, new.metadata.labels.as_ref().unwrap_or(&empty));
            let matches_old = old.is_some_and(|o| {
                selector_matches(selector, o.metadata.labels.as_ref().unwrap_or(&empty))
            });
            if matches_new || matches_old {
                q.add(key_of(service.as_ref()));
            }
        }
    });
    // Someone else changed our objects: put them back.
    let q = queue.clone();
    on_change(&endpoints, ctx.stop.clone(), move |change| {
        q.add(key_of(change.object().as_ref()));
    });
    let q = queue.clone();
    on_change(&slices, ctx.stop.clone(), move |change| {
        let slice = change.object();
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        if labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
            && let Some(service) = labels.get(SERVICE_NAME_LABEL)
        {
            q.add(format!(
                "{}/{service}",
                slice.namespace().unwrap_or_default()
            ));
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        services,
        pods,
        endpoints,
        slices,
    });
    run_workers(controller, queue, options.workers, ctx.stop.clone());
}

fn ignore_not_found<T>(result: Result<T, kube::Error>) -> anyhow::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "endpoints"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        if !(self.services.has_synced()
            && self.pods.has_synced()
            && self.endpoints.has_synced()
            && self.slices.has_synced())
        {
            return Ok(Next::After(std::time::Duration::from_millis(200)));
        }
        let (namespace, name) = split_key(&key);
        let namespace = namespace.unwrap_or("default");
        let service = self.services.get(&key);
        let selector = service
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.selector.clone());
        let Some((service, selector)) = service.zip(selector) else {
            // Gone, or no selector: the endpoints we made go (slices go with the service
            // through their owner reference).
            if self.endpoints.get(&key).is_some() && self.services.get(&key).is_none() {
                let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), namespace);
                ignore_not_found(api.delete(name, &DeleteParams::default()).await)?;
            }
            return Ok(Next::Done);
        };
        if service.metadata.deletion_timestamp.is_some() {
            return Ok(Next::Done);
        }
        let empty = BTreeMap::new();
        let mut pod_endpoints: Vec<PodEndpoint> = self
            .pods
            .list_in(namespace)
            .iter()
            .filter(|p| selector_matches(&selector, p.metadata.labels.as_ref().unwrap_or(&empty)))
            .filter_map(|p| pod_endpoint(&service, p))
            .collect();
        pod_endpoints.sort_by(|a, b| {
            a.ip.cmp(&b.ip)
                .then_with(|| a.target.name.cmp(&b.target.name))
        });
        self.sync_endpoints(&service, &pod_endpoints).await?;
        self.sync_slices(&service, &pod_endpoints).await?;
        Ok(Next::Done)
    }
}

impl Controller {
    async fn sync_endpoints(&self, service: &Service, pods: &[PodEndpoint]) -> anyhow::Result<()> {
        let namespace = service.namespace().unwrap_or_default();
        let name = service.name_any();
        let publish = service
            .spec
            .as_ref()
            .and_then(|s| s.publish_not_ready_addresses)
            == Some(true);
        let subsets = subsets(pods, publish);
        let mut labels = service.metadata.labels.clone().unwrap_or_default();
        if service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
            labels.insert("service.kubernetes.io/headless".to_owned(), String::new());
        }
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let subsets_opt = (!subsets.is_empty()).then_some(subsets);
        match self.endpoints.get_in(Some(&namespace), &name) {
            Some(current) => {
                let current_labels = current.metadata.labels.clone().unwrap_or_default();
                if current.subsets == subsets_opt && current_labels == labels {
                    return Ok(());
                }
                let mut updated = (*current).clone();
                updated.subsets = subsets_opt;
                updated.metadata.labels = Some(labels);
                ignore_not_found(api.replace(&name, &PostParams::default(), &updated).await)
            }
            None => {
                let endpoints = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.clone()),
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    },
                    subsets: subsets_opt,
                };
                match api.create(&PostParams::default(), &endpoints).await {
                    Ok(_) => Ok(()),
                    // Our cache is behind; the next change reconciles again.
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        Err(anyhow::anyhow!("endpoints {name} exist already"))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    async fn sync_slices(&self, service: &Service, pods: &[PodEndpoint]) -> anyhow::Result<()> {
        let namespace = service.namespace().unwrap_or_default();
        let name = service.name_any();
        // Desired: endpoints grouped by port set, chunked to MAX_PER_SLICE.
        let mut groups: BTreeMap<PortSet, Vec<&PodEndpoint>> = BTreeMap::new();
        for ep in pods {
            if ep.ports.is_empty()
                && service
                    .spec
                    .as_ref()
                    .and_then(|s| s.ports.as_ref())
                    .is_some_and(|p| !p.is_empty())
            {
                continue;
            }
            let mut ports = ep.ports.clone();
            ports.sort();
            groups.entry(ports).or_default().push(ep);
        }
        let mut desired: Vec<(Option<Vec<SlicePort>>, Vec<Endpoint>)> = Vec::new();
        for (ports, eps) in groups {
            let slice_ports: Vec<SlicePort> = ports
                .into_iter()
                .map(|(name, port, protocol)| SlicePort {
                    name: Some(name.unwrap_or_default()),
                    port: Some(port),
                    protocol: Some(protocol),
                    app_protocol: None,
                })
                .collect();
            for chunk in eps.chunks(MAX_PER_SLICE) {
                let endpoints = chunk
                    .iter()
                    .map(|ep| Endpoint {
                        addresses: vec![ep.ip.clone()],
                        conditions: Some(EndpointConditions {
                            ready: Some(ep.ready),
                            serving: Some(ep.serving),
                            terminating: Some(ep.terminating),
                        }),
                        hostname: ep.hostname.clone(),
                        node_name: ep.node_name.clone(),
                        target_ref: Some(ep.target.clone()),
                        ..Endpoint::default()
                    })
                    .collect();
                desired.push((Some(slice_ports.clone()), endpoints));
            }
        }
        if desired.is_empty() {
            // A service with no endpoints keeps one empty placeholder slice, as kube does.
            desired.push((None, Vec::new()));
        }
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .list_in(&namespace)
            .into_iter()
            .filter(|s| {
                let labels = s.metadata.labels.clone().unwrap_or_default();
                labels.get(SERVICE_NAME_LABEL) == Some(&name)
                    && labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
            })
            .collect();
        let api: Api<EndpointSlice> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let mut labels: BTreeMap<String, String> =
            service.metadata.labels.clone().unwrap_or_default();
        labels.insert(SERVICE_NAME_LABEL.to_owned(), name.clone());
        labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
        if service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
            labels.insert("service.kubernetes.io/headless".to_owned(), String::new());
        }
        // Reuse existing slices in order; an unchanged one is left alone.
        let mut unused: Vec<Arc<EndpointSlice>> = existing;
        unused.sort_by_key(|s| s.name_any());
        let mut matched: HashMap<usize, Arc<EndpointSlice>> = HashMap::new();
        for (i, (ports, endpoints)) in desired.iter().enumerate() {
            if let Some(pos) = unused
                .iter()
                .position(|s| &s.ports == ports && &s.endpoints == endpoints)
            {
                matched.insert(i, unused.remove(pos));
            }
        }
        for (i, (ports, endpoints)) in desired.into_iter().enumerate() {
            if let Some(same) = matched.get(&i) {
                if same.metadata.labels.as_ref() != Some(&labels) {
                    let mut updated = (**same).clone();
                    updated.metadata.labels = Some(labels.clone());
                    ignore_not_found(
                        api.replace(&same.name_any(), &PostParams::default(), &updated)
                            .await,
                    )?;
                }
                continue;
            }
            if let Some(reuse) = unused.pop() {
                let mut updated = (*reuse).clone();
                updated.ports = ports;
                updated.endpoints = endpoints;
                updated.metadata.labels = Some(labels.clone());
                ignore_not_found(
                    api.replace(&reuse.name_any(), &PostParams::default(), &updated)
                        .await,
                )?;
                continue;
            }
            let slice = EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{name}-")),
                    namespace: Some(namespace.clone()),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner_ref(service)]),
                    ..ObjectMeta::default()
                },
                address_type: "IPv4".to_owned(),
                endpoints,
                ports,
            };
            api.create(&PostParams::default(), &slice).await?;
        }
        for extra in &unused {
            ignore_not_found(
                api.delete(&extra.name_any(), &DeleteParams::default())
                    .await,
            )?;
        }
        Ok(())
    }
}

fn owner_ref(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: Service::api_version(&()).into_owned(),
        kind: Service::kind(&()).into_owned(),
        name: service.name_any(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };

    fn service(ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_owned(), "web".to_owned())].into()),
                ports: Some(ports),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn pod(name: &str, ip: &str, ready: bool, port_name: &str, port: i32) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some(port_name.into()),
                        container_port: port,
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                node_name: Some("n1".into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some(ip.into()),
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_subsets_split_by_ports() {
        let svc = service(vec![ServicePort {
            name: Some("http".into()),
            port: 80,
            target_port: Some(IntOrString::String("web".into())),
            ..ServicePort::default()
        }]);
        let a = pod_endpoint(&svc, &pod("a", "10.0.0.2", true, "web", 8080)).unwrap();
        let b = pod_endpoint(&svc, &pod("b", "10.0.0.1", false, "web", 8080)).unwrap();
        let c = pod_endpoint(&svc, &pod("c", "10.0.0.3", true, "web", 9090)).unwrap();
        let other = pod_endpoint(&svc, &pod("d", "10.0.0.4", true, "metrics", 9100)).unwrap();
        assert!(other.ports.is_empty());
        let subsets = subsets(&[a, b, c, other], false);
        assert_eq!(subsets.len(), 2);
        let first = &subsets[0];
        assert_eq!(first.ports.as_ref().unwrap()[0].port, 8080);
        assert_eq!(first.addresses.as_ref().unwrap()[0].ip, "10.0.0.2");
        assert_eq!(
            first.not_ready_addresses.as_ref().unwrap()[0].ip,
            "10.0.0.1"
        );
        assert_eq!(subsets[1].ports.as_ref().unwrap()[0].port, 9090);
    }

    #[test]
    fn pods_without_ip_or_finished_are_not_endpoints() {
        let svc = service(vec![ServicePort {
            port: 80,
            ..ServicePort::default()
        }]);
        let mut p = pod("a", "", true, "web", 80);
        assert!(pod_endpoint(&svc, &p).is_none());
        p.status.as_mut().unwrap().pod_ip = Some("10.0.0.9".into());
        p.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(pod_endpoint(&svc, &p).is_none());
    }
}
