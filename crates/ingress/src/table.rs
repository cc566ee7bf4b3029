//! The route table: every served Ingress's rules merged, each backend resolved to its
//! Service's ready endpoints, and the TLS certificates by host. It is built whole from the
//! informers' caches after any change and never modified afterwards; requests read the
//! table that was current when they arrived.
//!
//! Merging follows ingress-nginx: a request's host selects one set of rules (a precise host
//! first, then a wildcard, then the rules without host), and there the best matching path
//! wins; when no path matches, the default backend of an Ingress that has rules for that
//! host answers, then the default backend of any served Ingress, else 404. Where Ingresses
//! conflict (the same host and path, two certificates for one host, two default backends),
//! the oldest Ingress wins.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::matching::{HostPattern, PathRule, precedence, wildcard_suffix};
use crate::tls::CertCache;

/// What the table is built from: the caches, behind a trait so tests can hand objects in.
pub trait ClusterView {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    /// The EndpointSlices labelled `kubernetes.io/service-name: SERVICE`.
    fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>>;
    fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>>;
}

/// Where a request goes: a Service port's ready endpoints, or why there are none.
#[derive(Debug)]
pub struct Backend {
    /// `namespace/service:port`, for logs and error pages.
    pub name: String,
    pub endpoints: Vec<SocketAddr>,
    /// Why a backend has no endpoints when that is not just readiness (no such service,
    /// no such port, a resource backend).
    pub problem: Option<String>,
    next: AtomicUsize,
}

impl Backend {
    fn new(name: String, endpoints: Vec<SocketAddr>, problem: Option<String>) -> Self {
        Self {
            name,
            endpoints,
            problem,
            next: AtomicUsize::new(0),
        }
    }

    /// Every endpoint once, starting with the next in round-robin order: the first is the
    /// one to use, the others are for retrying when it cannot be reached.
    pub fn pick(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let n = self.endpoints.len();
        let start = if n == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        };
        (0..n).map(move |i| self.endpoints[(start + i) % n])
    }
}

#[derive(Debug, Default)]
struct HostRoutes {
    /// In precedence order.
    paths: Vec<(PathRule, Arc<Backend>)>,
    /// The default backend of the oldest Ingress with rules for this host.
    default: Option<Arc<Backend>>,
}

impl HostRoutes {
    fn route(&self, path: &str) -> Option<&Arc<Backend>> {
        self.paths
            .iter()
            .find(|(rule, _)| rule.matches(path))
            .map(|(_, b)| b)
            .or(self.default.as_ref())
    }
}

/// One immutable routing state.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<String, HostRoutes>,
    wildcard: HashMap<String, HostRoutes>,
    any: HostRoutes,
    default: Option<Arc<Backend>>,
    exact_certs: HashMap<String, Arc<CertifiedKey>>,
    wildcard_certs: HashMap<String, Arc<CertifiedKey>>,
}

/// A resolved backend reference, the key that shares one [`Backend`] (and its round-robin
/// position) among all rules naming it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BackendKey {
    Port(String, String, u16),
    NamedPort(String, String, String),
    Resource(String, String),
    Invalid(String),
}

impl RouteTable {
    /// The backend for a request, or `None` for 404.
    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<Backend>> {
        let routes = self
            .exact
            .get(host)
            .or_else(|| wildcard_suffix(host).and_then(|s| self.wildcard.get(s)))
            .unwrap_or(&self.any);
        routes.route(path).or(self.default.as_ref())
    }

    /// The certificate for a TLS server name, if an Ingress has one for it.
    pub fn certificate(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.exact_certs
            .get(host)
            .or_else(|| wildcard_suffix(host).and_then(|s| self.wildcard_certs.get(s)))
            .cloned()
    }

    /// Builds the table from the served Ingresses (any order; sorted here oldest first).
    pub fn build(
        ingresses: &[Arc<Ingress>],
        view: &dyn ClusterView,
        certs: &mut CertCache,
        provider: &CryptoProvider,
    ) -> RouteTable {
        let mut ingresses = ingresses.to_vec();
        ingresses.sort_by(|a, b| {
            let age = |i: &Ingress| i.metadata.creation_timestamp.as_ref().map(|t| t.0);
            age(a)
                .cmp(&age(b))
                .then_with(|| a.metadata.namespace.cmp(&b.metadata.namespace))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        let mut table = RouteTable::default();
        let mut backends: HashMap<BackendKey, Arc<Backend>> = HashMap::new();
        let mut resolve = |ns: &str, backend: &IngressBackend| {
            let key = backend_key(ns, backend);
            backends
                .entry(key.clone())
                .or_insert_with(|| Arc::new(resolve_backend(&key, view)))
                .clone()
        };
        for ingress in &ingresses {
            let ns = ingress.metadata.namespace.as_deref().unwrap_or("default");
            let Some(spec) = ingress.spec.as_ref() else {
                continue;
            };
            let default = spec.default_backend.as_ref().map(|b| resolve(ns, b));
            if table.default.is_none() {
                table.default = default.clone();
            }
            for rule in spec.rules.iter().flatten() {
                let routes = match HostPattern::parse(rule.host.as_deref()) {
                    HostPattern::Any => &mut table.any,
                    HostPattern::Exact(h) => table.exact.entry(h).or_default(),
                    HostPattern::Wildcard(s) => table.wildcard.entry(s).or_default(),
                };
                if routes.default.is_none() {
                    routes.default = default.clone();
                }
                for path in rule.http.iter().flat_map(|h| &h.paths) {
                    let Some(matcher) = PathRule::new(path.path.as_deref(), &path.path_type) else {
                        continue;
                    };
                    // The same host, path and type in an older Ingress wins.
                    if routes.paths.iter().any(|(m, _)| *m == matcher) {
                        continue;
                    }
                    routes.paths.push((matcher, resolve(ns, &path.backend)));
                }
            }
            for tls in spec.tls.iter().flatten() {
                let Some(secret_name) = tls.secret_name.as_deref() else {
                    continue;
                };
                let Some(secret) = view.secret(ns, secret_name) else {
                    tracing::debug!(namespace = ns, secret = secret_name, "TLS secret not found");
                    continue;
                };
                let cert = match certs.get(&format!("{ns}/{secret_name}"), &secret, provider) {
                    Ok(cert) => cert,
                    Err(err) => {
                        tracing::debug!(
                            namespace = ns,
                            secret = secret_name,
                            "TLS secret unusable: {err}"
                        );
                        continue;
                    }
                };
                // Without hosts, the entry covers the hosts of this Ingress's rules.
                let hosts: Vec<HostPattern> = match &tls.hosts {
                    Some(hosts) if !hosts.is_empty() => {
                        hosts.iter().map(|h| HostPattern::parse(Some(h))).collect()
                    }
                    _ => spec
                        .rules
                        .iter()
                        .flatten()
                        .map(|r| HostPattern::parse(r.host.as_deref()))
                        .collect(),
                };
                for host in hosts {
                    match host {
                        HostPattern::Exact(h) => {
                            table.exact_certs.entry(h).or_insert_with(|| cert.clone());
                        }
                        HostPattern::Wildcard(s) => {
                            table
                                .wildcard_certs
                                .entry(s)
                                .or_insert_with(|| cert.clone());
                        }
                        HostPattern::Any => {}
                    }
                }
            }
        }
        certs.sweep();
        for routes in table
            .exact
            .values_mut()
            .chain(table.wildcard.values_mut())
            .chain(std::iter::once(&mut table.any))
        {
            routes.paths.sort_by(|a, b| precedence(&a.0, &b.0));
        }
        table
    }
}

fn backend_key(ns: &str, backend: &IngressBackend) -> BackendKey {
    if let Some(service) = &backend.service {
        let port = service.port.as_ref();
        if let Some(number) = port.and_then(|p| p.number) {
            return match u16::try_from(number) {
                Ok(n) => BackendKey::Port(ns.to_owned(), service.name.clone(), n),
                Err(_) => BackendKey::Invalid(format!("{ns}/{}:{number}", service.name)),
            };
        }
        if let Some(name) = port.and_then(|p| p.name.clone()) {
            return BackendKey::NamedPort(ns.to_owned(), service.name.clone(), name);
        }
        return BackendKey::Invalid(format!("{ns}/{}", service.name));
    }
    if let Some(resource) = &backend.resource {
        return BackendKey::Resource(
            ns.to_owned(),
            format!("{}/{}", resource.kind, resource.name),
        );
    }
    BackendKey::Invalid(ns.to_owned())
}

/// A backend's endpoints: the service port named by number or name, then that port (by the
/// service port's name) in each EndpointSlice of the service, over its ready endpoints.
fn resolve_backend(key: &BackendKey, view: &dyn ClusterView) -> Backend {
    let (ns, service_name, port_label) = match key {
        BackendKey::Port(ns, s, n) => (ns, s, n.to_string()),
        BackendKey::NamedPort(ns, s, n) => (ns, s, n.clone()),
        BackendKey::Resource(ns, r) => {
            return Backend::new(
                format!("{ns}/{r}"),
                Vec::new(),
                Some("resource backends are not supported by rkube's ingress controller".into()),
            );
        }
        BackendKey::Invalid(what) => {
            return Backend::new(what.clone(), Vec::new(), Some("invalid backend".into()));
        }
    };
    let name = format!("{ns}/{service_name}:{port_label}");
    let Some(service) = view.service(ns, service_name) else {
        return Backend::new(name, Vec::new(), Some("service not found".into()));
    };
    let spec = service.spec.clone().unwrap_or_default();
    if spec.type_.as_deref() == Some("ExternalName") {
        return Backend::new(
            name,
            Vec::new(),
            Some("ExternalName services are not supported as ingress backends".into()),
        );
    }
    let service_port = spec.ports.iter().flatten().find(|p| match key {
        BackendKey::Port(_, _, n) => p.port == i32::from(*n),
        BackendKey::NamedPort(_, _, n) => p.name.as_deref() == Some(n.as_str()),
        _ => false,
    });
    let Some(service_port) = service_port else {
        return Backend::new(name, Vec::new(), Some("service has no such port".into()));
    };
    let port_name = service_port.name.clone().unwrap_or_default();
    let mut endpoints = Vec::new();
    for slice in view.slices(ns, service_name) {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.clone().unwrap_or_default() == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // A nil ready condition means ready (discovery.k8s.io/v1).
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<IpAddr>() {
                    endpoints.push(SocketAddr::new(ip, port));
                }
            }
        }
    }
    endpoints.sort();
    endpoints.dedup();
    Backend::new(name, endpoints, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Default)]
    struct View {
        services: Vec<Service>,
        slices: Vec<EndpointSlice>,
    }

    impl ClusterView for View {
        fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
            self.services
                .iter()
                .find(|s| {
                    s.metadata.namespace.as_deref() == Some(namespace)
                        && s.metadata.name.as_deref() == Some(name)
                })
                .cloned()
                .map(Arc::new)
        }
        fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
            self.slices
                .iter()
                .filter(|s| {
                    s.metadata.namespace.as_deref() == Some(namespace)
                        && s.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get("kubernetes.io/service-name"))
                            .is_some_and(|n| n == service)
                })
                .cloned()
                .map(Arc::new)
                .collect()
        }
        fn secret(&self, _: &str, _: &str) -> Option<Arc<Secret>> {
            None
        }
    }

    fn from<T: k8s_openapi::serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A service `name` with ports http=80 and admin=9000, and a slice whose `http` port is
    /// 8080 and `admin` port 9090 over the given (ip, ready) endpoints.
    fn service(view: &mut View, name: &str, endpoints: &[(&str, Option<bool>)]) {
        view.services.push(from(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}]}
        })));
        let endpoints: Vec<_> = endpoints
            .iter()
            .map(|(ip, ready)| json!({"addresses": [ip], "conditions": {"ready": ready}}))
            .collect();
        view.slices.push(from(json!({
            "metadata": {"name": format!("{name}-x"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
            "endpoints": endpoints
        })));
    }

    fn ingress(name: &str, created: &str, spec: serde_json::Value) -> Arc<Ingress> {
        Arc::new(from(json!({
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
            "spec": spec
        })))
    }

    fn backend(service: &str) -> serde_json::Value {
        json!({"service": {"name": service, "port": {"number": 80}}})
    }

    fn build(view: &View, ingresses: &[Arc<Ingress>]) -> RouteTable {
        RouteTable::build(
            ingresses,
            view,
            &mut CertCache::default(),
            &rustls::crypto::ring::default_provider(),
        )
    }

    fn routed(table: &RouteTable, host: &str, path: &str) -> Option<String> {
        table.route(host, path).map(|b| b.name.clone())
    }

    #[test]
    fn hosts_paths_and_defaults_merge_across_ingresses() {
        let mut view = View::default();
        for s in ["a", "b", "c", "d"] {
            service(&mut view, s, &[("10.0.0.1", Some(true))]);
        }
        let table = build(
            &view,
            &[
                ingress(
                    "one",
                    "2024-01-01T00:00:00Z",
                    json!({"rules": [
                        {"host": "a.example.com", "http": {"paths": [
                            {"path": "/", "pathType": "Prefix", "backend": backend("a")},
                            {"path": "/foo", "pathType": "Exact", "backend": backend("b")},
                            {"path": "/foo", "pathType": "Prefix", "backend": backend("c")}]}},
                        {"host": "*.example.com", "http": {"paths": [
                            {"path": "/", "pathType": "Prefix", "backend": backend("b")}]}}]}),
                ),
                ingress(
                    "two",
                    "2024-01-02T00:00:00Z",
                    json!({"defaultBackend": backend("d"), "rules": [
                        {"host": "a.example.com", "http": {"paths": [
                            {"path": "/", "pathType": "Prefix", "backend": backend("d")},
                            {"path": "/bar/baz", "pathType": "Prefix", "backend": backend("d")}]}},
                        {"http": {"paths": [
                            {"path": "/only", "pathType": "Exact", "backend": backend("c")}]}}]}),
                ),
            ],
        );
        let a = Some("default/a:80".to_owned());
        let b = Some("default/b:80".to_owned());
        let c = Some("default/c:80".to_owned());
        let d = Some("default/d:80".to_owned());
        assert_eq!(routed(&table, "a.example.com", "/foo"), b);
        assert_eq!(routed(&table, "a.example.com", "/foo/x"), c);
        assert_eq!(
            routed(&table, "a.example.com", "/foobar"),
            a,
            "oldest / wins"
        );
        assert_eq!(routed(&table, "a.example.com", "/bar/baz/q"), d);
        assert_eq!(routed(&table, "x.example.com", "/anything"), b);
        assert_eq!(
            routed(&table, "x.y.example.com", "/only"),
            c,
            "two labels: no wildcard"
        );
        assert_eq!(
            routed(&table, "other", "/nothing"),
            d,
            "the default backend"
        );
        let table = build(
            &view,
            &[ingress(
                "one",
                "2024-01-01T00:00:00Z",
                json!({"rules": [
            {"host": "a.example.com", "http": {"paths": [
                {"path": "/x", "pathType": "Exact", "backend": backend("a")}]}}]}),
            )],
        );
        assert_eq!(routed(&table, "a.example.com", "/y"), None, "404");
        assert_eq!(routed(&table, "b.example.com", "/x"), None, "404");
    }

    #[test]
    fn backends_resolve_ports_and_ready_endpoints() {
        let mut view = View::default();
        service(
            &mut view,
            "a",
            &[
                ("10.0.0.1", Some(true)),
                ("10.0.0.2", None),
                ("10.0.0.3", Some(false)),
            ],
        );
        service(&mut view, "none", &[("10.0.0.9", Some(false))]);
        let named = json!({"service": {"name": "a", "port": {"name": "admin"}}});
        let table = build(
            &view,
            &[ingress(
                "one",
                "2024-01-01T00:00:00Z",
                json!({"rules": [{"http": {"paths": [
                    {"path": "/num", "pathType": "Prefix", "backend": backend("a")},
                    {"path": "/named", "pathType": "Prefix", "backend": named},
                    {"path": "/none", "pathType": "Prefix", "backend": backend("none")},
                    {"path": "/missing", "pathType": "Prefix", "backend": backend("missing")},
                    {"path": "/badport", "pathType": "Prefix",
                     "backend": {"service": {"name": "a", "port": {"number": 81}}}},
                    {"path": "/res", "pathType": "Prefix",
                     "backend": {"resource": {"kind": "Bucket", "name": "b", "apiGroup": "x.io"}}}]}}]}),
            )],
        );
        let endpoints = |path: &str| {
            table.route("h", path).map(|b| {
                b.endpoints
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            endpoints("/num"),
            Some(vec!["10.0.0.1:8080".to_owned(), "10.0.0.2:8080".to_owned()])
        );
        assert_eq!(
            endpoints("/named"),
            Some(vec!["10.0.0.1:9090".to_owned(), "10.0.0.2:9090".to_owned()])
        );
        assert_eq!(endpoints("/none"), Some(vec![]));
        for path in ["/missing", "/badport", "/res"] {
            let b = table.route("h", path).unwrap_or_else(|| panic!("{path}"));
            assert!(
                b.endpoints.is_empty() && b.problem.is_some(),
                "{path}: {b:?}"
            );
        }
        // Round robin over the ready endpoints.
        let b = table.route("h", "/num").unwrap_or_else(|| panic!());
        let firsts: Vec<_> = (0..4).filter_map(|_| b.pick().next()).collect();
        assert_eq!(firsts[0], firsts[2]);
        assert_ne!(firsts[0], firsts[1]);
        assert_eq!(b.pick().count(), 2);
    }
}
