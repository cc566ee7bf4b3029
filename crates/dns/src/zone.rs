//! The cluster zone's answers, as Kubernetes' DNS specification for service discovery
//! (kubernetes/dns docs/specification.md) and CoreDNS's kubernetes plugin give them:
//!
//! - `SVC.NS.svc.ZONE`: A/AAAA of a service's ClusterIPs; for a headless service, one
//!   record per ready endpoint address (all of them with publishNotReadyAddresses); a CNAME
//!   to spec.externalName for an ExternalName service.
//! - `HOST.SVC.NS.svc.ZONE`: an endpoint of a headless service by its hostname (StatefulSet
//!   pods) or by its dashed address (`10-42-0-5`).
//! - `_PORT._PROTO.SVC.NS.svc.ZONE` SRV per named port (for a headless service, one per
//!   endpoint, targeting its name above), and SRV on `SVC.NS.svc.ZONE` for every port.
//! - `A-B-C-D.NS.pod.ZONE`: the address written in the name (CoreDNS `pods insecure`).
//! - PTR for service ClusterIPs and headless endpoints.
//!
//! A name in the zone that does not exist is NXDOMAIN; one that exists without records of
//! the asked type is NOERROR with no answer (NODATA); both carry the zone's SOA. Everything
//! outside the zone (and outside the reverse zones of what we serve) is forwarded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// What the zone is built from: the informers' caches in the server, fixtures in tests.
pub trait ClusterView: Send + Sync {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    /// The EndpointSlices of a service (label `kubernetes.io/service-name`).
    fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>>;
    /// Every service, for reverse lookups.
    fn services(&self) -> Vec<Arc<Service>>;
}

/// The cluster domain and the answers' TTL.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: Name,
    ttl: u32,
}

/// What to do with a query.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// Answered from the cluster.
    Answer(Answer),
    /// Not ours: ask the upstream resolvers.
    Forward,
}

#[derive(Debug, PartialEq)]
pub struct Answer {
    pub code: ResponseCode,
    pub answers: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The zone's SOA, for negative answers.
    pub soa: Option<Box<Record>>,
}

/// One endpoint address of a service, with its DNS name's first label.
struct Endpoint {
    ip: IpAddr,
    label: String,
    port_of: Vec<(String, String, u16)>,
}

impl Zone {
    /// `domain` like `cluster.local`; `ttl` in seconds (CoreDNS's default is 5).
    pub fn new(domain: &str, ttl: u32) -> Result<Self, hickory_proto::ProtoError> {
        let mut origin = Name::from_ascii(domain.trim_end_matches('.'))?.to_lowercase();
        origin.set_fqdn(true);
        Ok(Self { origin, ttl })
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    fn soa(&self) -> Record {
        let ns = Name::from_ascii("ns.dns")
            .and_then(|n| n.append_domain(&self.origin))
            .unwrap_or_else(|_| self.origin.clone());
        let host = Name::from_ascii("hostmaster")
            .and_then(|n| n.append_domain(&self.origin))
            .unwrap_or_else(|_| self.origin.clone());
        // CoreDNS's kubernetes plugin: refresh 7200, retry 1800, expire 86400, minimum = ttl.
        let soa = SOA::new(ns, host, 1, 7200, 1800, 86400, self.ttl);
        Record::from_rdata(self.origin.clone(), self.ttl, RData::SOA(soa))
    }

    fn name(&self, labels: &[&str]) -> Option<Name> {
        Name::from_labels(labels.iter().map(|l| l.as_bytes()))
            .ok()?
            .append_domain(&self.origin)
            .ok()
    }

    fn record(&self, name: &Name, rdata: RData) -> Record {
        Record::from_rdata(name.clone(), self.ttl, rdata)
    }

    fn negative(&self, code: ResponseCode) -> Lookup {
        Lookup::Answer(Answer {
            code,
            answers: Vec::new(),
            additionals: Vec::new(),
            soa: Some(Box::new(self.soa())),
        })
    }

    fn found(&self, answers: Vec<Record>, additionals: Vec<Record>) -> Lookup {
        if answers.is_empty() {
            return self.negative(ResponseCode::NoError);
        }
        Lookup::Answer(Answer {
            code: ResponseCode::NoError,
            answers,
            additionals,
            soa: None,
        })
    }

    /// The answer to `name`/`qtype`.
    pub fn lookup(&self, view: &dyn ClusterView, name: &Name, qtype: RecordType) -> Lookup {
        let name = name.to_lowercase();
        if qtype == RecordType::PTR {
            return self.reverse(view, &name);
        }
        if !self.origin.zone_of(&name) {
            return Lookup::Forward;
        }
        let labels: Vec<String> = name
            .iter()
            .take(usize::from(name.num_labels() - self.origin.num_labels()))
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        match labels.as_slice() {
            [] => {
                if qtype == RecordType::SOA {
                    self.found(vec![self.soa()], Vec::new())
                } else {
                    self.negative(ResponseCode::NoError)
                }
            }
            [service, namespace, "svc"] => self.service(view, &name, namespace, service, qtype),
            [host, service, namespace, "svc"] => {
                self.endpoint(view, &name, namespace, service, host, qtype)
            }
            [port, proto, service, namespace, "svc"]
                if port.starts_with('_') && proto.starts_with('_') =>
            {
                let (port, proto) = (&port[1..], &proto[1..]);
                self.srv(view, namespace, service, Some((port, proto)), qtype)
            }
            [dashed, _namespace, "pod"] => match (parse_dashed(dashed), qtype) {
                (Some(ip @ IpAddr::V4(v4)), RecordType::A | RecordType::ANY) => {
                    let _ = ip;
                    self.found(vec![self.record(&name, RData::A(A(v4)))], Vec::new())
                }
                (Some(IpAddr::V6(v6)), RecordType::AAAA | RecordType::ANY) => {
                    self.found(vec![self.record(&name, RData::AAAA(AAAA(v6)))], Vec::new())
                }
                (Some(_), _) => self.negative(ResponseCode::NoError),
                (None, _) => self.negative(ResponseCode::NXDomain),
            },
            // `svc.ZONE`, `NS.svc.ZONE`, `pod.ZONE`, `NS.pod.ZONE` exist as parents.
            ["svc" | "pod"] | [_, "svc" | "pod"] => self.negative(ResponseCode::NoError),
            _ => self.negative(ResponseCode::NXDomain),
        }
    }

    fn service(
        &self,
        view: &dyn ClusterView,
        name: &Name,
        namespace: &str,
        service: &str,
        qtype: RecordType,
    ) -> Lookup {
        let Some(svc) = view.service(namespace, service) else {
            return self.negative(ResponseCode::NXDomain);
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            let target = spec
                .external_name
                .as_deref()
                .and_then(|n| Name::from_ascii(n.trim_end_matches('.')).ok())
                .map(|mut n| {
                    n.set_fqdn(true);
                    n
                });
            return match target {
                Some(target) if qtype != RecordType::SRV => self.found(
                    vec![self.record(name, RData::CNAME(CNAME(target)))],
                    Vec::new(),
                ),
                _ => self.negative(ResponseCode::NoError),
            };
        }
        if qtype == RecordType::SRV {
            return self.srv(view, namespace, service, None, qtype);
        }
        let ips: Vec<IpAddr> = if is_headless(&svc) {
            endpoints(view, &svc, namespace, service)
                .into_iter()
                .map(|e| e.ip)
                .collect()
        } else {
            cluster_ips(&svc)
        };
        let answers = ips
            .into_iter()
            .filter_map(|ip| self.address(name, ip, qtype))
            .collect();
        self.found(answers, Vec::new())
    }

    fn address(&self, name: &Name, ip: IpAddr, qtype: RecordType) -> Option<Record> {
        match (ip, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => {
                Some(self.record(name, RData::A(A(v4))))
            }
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => {
                Some(self.record(name, RData::AAAA(AAAA(v6))))
            }
            _ => None,
        }
    }

    fn endpoint(
        &self,
        view: &dyn ClusterView,
        name: &Name,
        namespace: &str,
        service: &str,
        host: &str,
        qtype: RecordType,
    ) -> Lookup {
        let Some(svc) = view.service(namespace, service) else {
            return self.negative(ResponseCode::NXDomain);
        };
        let matching: Vec<Endpoint> = if is_headless(&svc) {
            endpoints(view, &svc, namespace, service)
                .into_iter()
                .filter(|e| e.label == host)
                .collect()
        } else {
            Vec::new()
        };
        if matching.is_empty() {
            return self.negative(ResponseCode::NXDomain);
        }
        let answers = matching
            .into_iter()
            .filter_map(|e| self.address(name, e.ip, qtype))
            .collect();
        self.found(answers, Vec::new())
    }

    /// SRV records: for one named port (`_port._proto`), or all ports when `port` is `None`.
    fn srv(
        &self,
        view: &dyn ClusterView,
        namespace: &str,
        service: &str,
        port: Option<(&str, &str)>,
        qtype: RecordType,
    ) -> Lookup {
        let Some(svc) = view.service(namespace, service) else {
            return self.negative(ResponseCode::NXDomain);
        };
        let wanted = |name: &str, protocol: &str| match port {
            Some((p, proto)) => p == name && proto.eq_ignore_ascii_case(protocol),
            None => true,
        };
        let Some(svc_name) = self.name(&[service, namespace, "svc"]) else {
            return self.negative(ResponseCode::NXDomain);
        };
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        if is_headless(&svc) {
            let eps = endpoints(view, &svc, namespace, service);
            for e in &eps {
                let Some(target) = self.name(&[&e.label, service, namespace, "svc"]) else {
                    continue;
                };
                let mut any = false;
                for (name, protocol, number) in &e.port_of {
                    if wanted(name, protocol) && (port.is_none() || !name.is_empty()) {
                        let srv = SRV::new(0, srv_weight(eps.len()), *number, target.clone());
                        answers.push(self.record(&qname(port, &svc_name), RData::SRV(srv)));
                        any = true;
                    }
                }
                if any {
                    additionals.extend(self.address(&target, e.ip, RecordType::ANY));
                }
            }
        } else {
            let ports = svc
                .spec
                .as_ref()
                .and_then(|s| s.ports.clone())
                .unwrap_or_default();
            for p in &ports {
                let name = p.name.as_deref().unwrap_or("");
                let protocol = p.protocol.as_deref().unwrap_or("TCP");
                if wanted(name, protocol) && (port.is_none() || !name.is_empty()) {
                    let srv = SRV::new(0, 100, p.port as u16, svc_name.clone());
                    answers.push(self.record(&qname(port, &svc_name), RData::SRV(srv)));
                }
            }
            if !answers.is_empty() {
                for ip in cluster_ips(&svc) {
                    additionals.extend(self.address(&svc_name, ip, RecordType::ANY));
                }
            }
        }
        match port {
            // `_port._proto` names exist only for ports the service has.
            Some(_) if answers.is_empty() => self.negative(ResponseCode::NXDomain),
            _ if qtype != RecordType::SRV && qtype != RecordType::ANY => {
                self.negative(ResponseCode::NoError)
            }
            _ => self.found(answers, additionals),
        }
    }

    /// PTR for service ClusterIPs and headless endpoint addresses.
    fn reverse(&self, view: &dyn ClusterView, name: &Name) -> Lookup {
        let Some(ip) = parse_reverse(name) else {
            return Lookup::Forward;
        };
        for svc in view.services() {
            let namespace = svc.metadata.namespace.as_deref().unwrap_or("default");
            let service = svc.metadata.name.as_deref().unwrap_or("");
            let target = if is_headless(&svc) {
                endpoints(view, &svc, namespace, service)
                    .into_iter()
                    .find(|e| e.ip == ip)
                    .and_then(|e| self.name(&[&e.label, service, namespace, "svc"]))
            } else if cluster_ips(&svc).contains(&ip) {
                self.name(&[service, namespace, "svc"])
            } else {
                None
            };
            if let Some(target) = target {
                return self.found(vec![self.record(name, RData::PTR(PTR(target)))], Vec::new());
            }
        }
        Lookup::Forward
    }
}

/// The owner name of SRV answers: the queried `_port._proto.SVC...` or the service's name.
fn qname(port: Option<(&str, &str)>, svc_name: &Name) -> Name {
    match port {
        Some((p, proto)) => {
            Name::from_labels([format!("_{p}"), format!("_{}", proto.to_lowercase())])
                .and_then(|n| n.append_domain(svc_name))
                .unwrap_or_else(|_| svc_name.clone())
        }
        None => svc_name.clone(),
    }
}

/// CoreDNS spreads SRV weight evenly: 100 / n, at least 1.
fn srv_weight(n: usize) -> u16 {
    (100 / n.max(1)).max(1) as u16
}

fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn cluster_ips(svc: &Service) -> Vec<IpAddr> {
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    let ips = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.clone(),
        _ => spec.cluster_ip.iter().cloned().collect(),
    };
    ips.iter().filter_map(|ip| ip.parse().ok()).collect()
}

/// The endpoint addresses DNS publishes for a service: ready ones, or all with
/// publishNotReadyAddresses; each named by its hostname or its dashed address.
fn endpoints(
    view: &dyn ClusterView,
    svc: &Service,
    namespace: &str,
    service: &str,
) -> Vec<Endpoint> {
    let publish_all = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut out: Vec<Endpoint> = Vec::new();
    for slice in view.slices(namespace, service) {
        let ports: Vec<(String, String, u16)> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p.name.clone().unwrap_or_default(),
                    p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                    u16::try_from(p.port?).ok()?,
                ))
            })
            .collect();
        for ep in &slice.endpoints {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready && !publish_all {
                continue;
            }
            for address in &ep.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    continue;
                };
                if out.iter().any(|e| e.ip == ip) {
                    continue;
                }
                let label = ep.hostname.clone().unwrap_or_else(|| dashed(ip));
                out.push(Endpoint {
                    ip,
                    label,
                    port_of: ports.clone(),
                });
            }
        }
    }
    out
}

/// `10.42.0.5` as `10-42-0-5`; IPv6 with `-` for `:`.
fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

fn parse_dashed(label: &str) -> Option<IpAddr> {
    if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    label
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// `D.C.B.A.in-addr.arpa.` as `A.B.C.D` (IPv4 only; IPv6 reverse names are forwarded).
fn parse_reverse(name: &Name) -> Option<IpAddr> {
    let labels: Vec<String> = name
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_lowercase())
        .collect();
    match labels.as_slice() {
        [d, c, b, a, inaddr, arpa] if inaddr == "in-addr" && arpa == "arpa" => {
            format!("{a}.{b}.{c}.{d}")
                .parse::<Ipv4Addr>()
                .ok()
                .map(IpAddr::V4)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{
        Endpoint as SliceEndpoint, EndpointConditions, EndpointPort,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[derive(Default)]
    struct Fixture {
        services: Vec<Arc<Service>>,
        slices: Vec<(String, String, Arc<EndpointSlice>)>,
    }

    impl ClusterView for Fixture {
        fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
            self.services
                .iter()
                .find(|s| {
                    s.metadata.namespace.as_deref() == Some(namespace)
                        && s.metadata.name.as_deref() == Some(name)
                })
                .cloned()
        }
        fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
            self.slices
                .iter()
                .filter(|(ns, svc, _)| ns == namespace && svc == service)
                .map(|(_, _, s)| s.clone())
                .collect()
        }
        fn services(&self) -> Vec<Arc<Service>> {
            self.services.clone()
        }
    }

    fn service(ns: &str, name: &str, cluster_ip: &str, ports: &[(&str, i32)]) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(cluster_ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p)| ServicePort {
                            name: (!n.is_empty()).then(|| n.to_string()),
                            port: *p,
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn slice(eps: &[(&str, Option<&str>, bool)], port: (&str, i32)) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: eps
                .iter()
                .map(|(ip, host, ready)| SliceEndpoint {
                    addresses: vec![ip.to_string()],
                    hostname: host.map(str::to_owned),
                    conditions: Some(EndpointConditions {
                        ready: Some(*ready),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ports: Some(vec![EndpointPort {
                name: Some(port.0.into()),
                port: Some(port.1),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn fixture() -> Fixture {
        let mut f = Fixture::default();
        f.services.push(Arc::new(service(
            "default",
            "web",
            "10.43.0.20",
            &[("http", 80)],
        )));
        f.services
            .push(Arc::new(service("db", "pg", "None", &[("sql", 5432)])));
        let mut ext = service("default", "ext", "", &[]);
        let spec = ext.spec.as_mut().unwrap();
        spec.type_ = Some("ExternalName".into());
        spec.external_name = Some("example.org".into());
        spec.cluster_ip = None;
        f.services.push(Arc::new(ext));
        f.slices.push((
            "db".into(),
            "pg".into(),
            Arc::new(slice(
                &[
                    ("10.42.0.5", Some("pg-0"), true),
                    ("10.42.1.6", None, true),
                    ("10.42.2.7", Some("pg-2"), false),
                ],
                ("sql", 5432),
            )),
        ));
        f
    }

    fn ask(name: &str, qtype: RecordType) -> Answer {
        let zone = Zone::new("cluster.local", 5).unwrap();
        match zone.lookup(&fixture(), &Name::from_ascii(name).unwrap(), qtype) {
            Lookup::Answer(a) => a,
            Lookup::Forward => panic!("{name} forwarded"),
        }
    }

    fn rdata(a: &Answer) -> Vec<String> {
        let mut v: Vec<String> = a.answers.iter().map(|r| r.data.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn cluster_ip_service() {
        let a = ask("web.default.svc.cluster.local.", RecordType::A);
        assert_eq!(a.code, ResponseCode::NoError);
        assert_eq!(rdata(&a), ["10.43.0.20"]);
        assert_eq!(a.answers[0].ttl, 5);
        // Case does not matter; AAAA of a v4 service is NODATA with the SOA.
        assert_eq!(
            rdata(&ask("WEB.Default.svc.cluster.local.", RecordType::A)),
            ["10.43.0.20"]
        );
        let aaaa = ask("web.default.svc.cluster.local.", RecordType::AAAA);
        assert_eq!(
            (aaaa.code, aaaa.answers.len(), aaaa.soa.is_some()),
            (ResponseCode::NoError, 0, true)
        );
    }

    #[test]
    fn missing_names_are_nxdomain() {
        for name in [
            "nope.default.svc.cluster.local.",
            "a.b.c.d.e.f.cluster.local.",
            "web.default.svc.x.cluster.local.",
            "_nope._tcp.web.default.svc.cluster.local.",
            "not-an-ip.default.pod.cluster.local.",
        ] {
            let a = ask(name, RecordType::A);
            assert_eq!(a.code, ResponseCode::NXDomain, "{name}");
            assert!(a.soa.is_some());
        }
    }

    #[test]
    fn headless_service_lists_ready_endpoints() {
        let a = ask("pg.db.svc.cluster.local.", RecordType::A);
        assert_eq!(rdata(&a), ["10.42.0.5", "10.42.1.6"]);
        assert_eq!(
            rdata(&ask("pg-0.pg.db.svc.cluster.local.", RecordType::A)),
            ["10.42.0.5"]
        );
        assert_eq!(
            rdata(&ask("10-42-1-6.pg.db.svc.cluster.local.", RecordType::A)),
            ["10.42.1.6"]
        );
        // Not ready: not published.
        assert_eq!(
            ask("pg-2.pg.db.svc.cluster.local.", RecordType::A).code,
            ResponseCode::NXDomain
        );
    }

    #[test]
    fn srv_records() {
        let a = ask("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(rdata(&a), ["0 100 80 web.default.svc.cluster.local."]);
        assert_eq!(
            a.answers[0].name.to_string(),
            "_http._tcp.web.default.svc.cluster.local."
        );
        assert_eq!(a.additionals.len(), 1);
        let a = ask("_sql._tcp.pg.db.svc.cluster.local.", RecordType::SRV);
        assert_eq!(
            rdata(&a),
            [
                "0 50 5432 10-42-1-6.pg.db.svc.cluster.local.",
                "0 50 5432 pg-0.pg.db.svc.cluster.local."
            ]
        );
        assert_eq!(a.additionals.len(), 2);
        let all = ask("web.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(rdata(&all), ["0 100 80 web.default.svc.cluster.local."]);
    }

    #[test]
    fn external_name_pods_and_reverse() {
        let a = ask("ext.default.svc.cluster.local.", RecordType::A);
        assert_eq!(rdata(&a), ["example.org."]);
        assert_eq!(a.answers[0].record_type(), RecordType::CNAME);
        assert_eq!(
            rdata(&ask("10-42-0-9.default.pod.cluster.local.", RecordType::A)),
            ["10.42.0.9"]
        );
        assert_eq!(
            rdata(&ask("20.0.43.10.in-addr.arpa.", RecordType::PTR)),
            ["web.default.svc.cluster.local."]
        );
        assert_eq!(
            rdata(&ask("5.0.42.10.in-addr.arpa.", RecordType::PTR)),
            ["pg-0.pg.db.svc.cluster.local."]
        );
    }

    #[test]
    fn other_names_are_forwarded() {
        let zone = Zone::new("cluster.local", 5).unwrap();
        for (name, t) in [
            ("example.org.", RecordType::A),
            ("local.", RecordType::A),
            ("1.2.3.4.in-addr.arpa.", RecordType::PTR),
        ] {
            assert_eq!(
                zone.lookup(&fixture(), &Name::from_ascii(name).unwrap(), t),
                Lookup::Forward
            );
        }
    }
}
