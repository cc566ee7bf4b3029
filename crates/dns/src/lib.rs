//! Cluster DNS, CoreDNS's role in a Kubernetes cluster: answers for the cluster domain from
//! the API's Services and EndpointSlices ([`zone`]), everything else forwarded to the host's
//! resolvers. Served over UDP and TCP by hickory's server; `rkube server` runs it and
//! publishes it as the `kube-system/kube-dns` Service.

pub mod zone;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hickory_proto::op::{Message, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use rkube_controllers::Stop;
use rkube_controllers::informer::Informer;
use tokio::net::{TcpListener, UdpSocket};

use crate::zone::{ClusterView, Lookup, Zone};

/// How long a forwarded query may take per upstream.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle TCP client connection is kept.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Options {
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    /// Where names outside the cluster go (the host's resolvers by default).
    pub upstreams: Vec<SocketAddr>,
    /// The TTL of cluster answers (CoreDNS's default: 5 s).
    pub ttl: u32,
}

/// The nameservers of a resolv.conf, on port 53.
pub fn upstreams_from(resolv_conf: &Path) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(resolv_conf) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let ip: std::net::IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// The informers' caches as the zone's view of the cluster.
struct Informers {
    services: Informer<Service>,
    slices: Informer<EndpointSlice>,
}

impl ClusterView for Informers {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get_in(Some(namespace), name)
    }

    fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .list_in(namespace)
            .into_iter()
            .filter(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    .is_some_and(|n| n == service)
            })
            .collect()
    }

    fn services(&self) -> Vec<Arc<Service>> {
        self.services.list()
    }
}

struct Handler {
    zone: Zone,
    view: Arc<dyn ClusterView>,
    upstreams: Vec<SocketAddr>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let info = match request.request_info() {
            Ok(info) => info,
            Err(_) => {
                let msg = builder.error_msg(&request.metadata, ResponseCode::FormErr);
                return send(&mut response, msg, request).await;
            }
        };
        let lookup = self.zone.lookup(
            self.view.as_ref(),
            &info.query.name().into(),
            info.query.query_type(),
        );
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        match lookup {
            Lookup::Answer(answer) => {
                metadata.authoritative = true;
                metadata.response_code = answer.code;
                let msg = builder.build(
                    metadata,
                    answer.answers.iter(),
                    std::iter::empty::<&Record>(),
                    answer.soa.as_deref(),
                    answer.additionals.iter(),
                );
                send(&mut response, msg, request).await
            }
            Lookup::Forward => match forward(&self.upstreams, request.as_slice()).await {
                Some(upstream) => {
                    metadata.response_code = upstream.metadata.response_code;
                    let msg = builder.build(
                        metadata,
                        upstream.answers.iter(),
                        upstream.authorities.iter(),
                        std::iter::empty::<&Record>(),
                        upstream
                            .additionals
                            .iter()
                            .filter(|r| r.record_type() != hickory_proto::rr::RecordType::OPT),
                    );
                    send(&mut response, msg, request).await
                }
                None => {
                    let msg = builder.error_msg(&request.metadata, ResponseCode::ServFail);
                    send(&mut response, msg, request).await
                }
            },
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    msg: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match response.send_response(msg).await {
        Ok(info) => info,
        Err(err) => {
            tracing::debug!("cannot answer {}: {err}", request.src());
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            hickory_proto::op::Header {
                metadata,
                counts: Default::default(),
            }
            .into()
        }
    }
}

/// Relays the query to each upstream in turn over UDP; the first answer wins.
async fn forward(upstreams: &[SocketAddr], query: &[u8]) -> Option<Message> {
    for upstream in upstreams {
        let bind: SocketAddr = if upstream.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(socket) = UdpSocket::bind(bind).await else {
            continue;
        };
        let attempt = async {
            socket.send_to(query, upstream).await.ok()?;
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, from) = socket.recv_from(&mut buf).await.ok()?;
                if from == *upstream {
                    return Message::from_vec(&buf[..n]).ok();
                }
            }
        };
        match tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            Ok(Some(message)) => return Some(message),
            _ => tracing::debug!(%upstream, "upstream resolver did not answer"),
        }
    }
    None
}

/// Cluster DNS's sockets, bound before the server starts so the port is known: UDP and TCP
/// on one port, on one or more addresses.
pub struct Sockets {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
}

impl Sockets {
    /// The first address listened on (all share its port).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self.udp.first() {
            Some(udp) => udp.local_addr(),
            None => Err(std::io::Error::other("no socket")),
        }
    }

    /// Every address listened on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|u| u.local_addr().ok())
            .collect()
    }
}

/// Where cluster DNS listens, given the server's bind address and the address it advertises
/// (where the `kube-dns` endpoints point, so where pods' queries arrive).
///
/// Never a wildcard address: a UDP socket bound to one answers from whichever address the
/// route back picks, and a pod's query reached us through the kube-dns Service's DNAT, whose
/// connection tracking drops a reply from any address but the one it sent to. So a wildcard
/// bind address becomes the advertised address plus loopback (for the host's own tools); a
/// specific one is kept, with the advertised address beside it when that differs.
pub fn listen_addresses(bind: IpAddr, advertise: IpAddr) -> Vec<IpAddr> {
    let first = if bind.is_unspecified() {
        if advertise.is_unspecified() {
            return vec![match bind {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            }];
        }
        advertise
    } else {
        bind
    };
    let mut out = vec![first];
    let second = if bind.is_unspecified() {
        match advertise {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        }
    } else {
        advertise
    };
    if !out.contains(&second) && !second.is_unspecified() {
        out.push(second);
    }
    out
}

/// Binds UDP and TCP on one port on each address (with port 0, a port free on all of them).
/// The first address must be bindable; the others are skipped with a warning when they are
/// not this host's (an advertised address behind NAT).
pub async fn bind(addresses: &[IpAddr], port: u16) -> anyhow::Result<Sockets> {
    let Some(first) = addresses.first() else {
        anyhow::bail!("cluster DNS has no address to listen on");
    };
    let mut attempts = 0;
    'attempt: loop {
        let (udp, tcp) = bind_pair(SocketAddr::new(*first, port)).await?;
        let chosen = udp.local_addr()?.port();
        let mut sockets = Sockets {
            udp: vec![udp],
            tcp: vec![tcp],
        };
        for ip in &addresses[1..] {
            let listen = SocketAddr::new(*ip, chosen);
            match bind_exact(listen).await {
                Ok((udp, tcp)) => {
                    sockets.udp.push(udp);
                    sockets.tcp.push(tcp);
                }
                // A free port on the first address was taken here: try another.
                Err(err)
                    if port == 0
                        && attempts < 10
                        && err.kind() == std::io::ErrorKind::AddrInUse =>
                {
                    attempts += 1;
                    continue 'attempt;
                }
                Err(err) if err.kind() == std::io::ErrorKind::AddrNotAvailable => {
                    tracing::warn!(
                        "cluster DNS does not listen on {listen}: {err} (not an address of this host)"
                    );
                }
                Err(err) => {
                    return Err(err).with_context(|| {
                        format!(
                            "cluster DNS cannot listen on {listen}; free the port or choose another with --cluster-dns-port"
                        )
                    });
                }
            }
        }
        return Ok(sockets);
    }
}

async fn bind_exact(listen: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind(listen).await?;
    let tcp = TcpListener::bind(listen).await?;
    Ok((udp, tcp))
}

async fn bind_pair(listen: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    let hint = "free the port or choose another with --cluster-dns-port";
    let mut attempts = 0;
    loop {
        let udp = UdpSocket::bind(listen)
            .await
            .with_context(|| format!("cluster DNS cannot listen on {listen} (UDP); {hint}"))?;
        let local = udp.local_addr()?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // The free UDP port was taken for TCP: try another.
            Err(_) if listen.port() == 0 && attempts < 10 => attempts += 1,
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cluster DNS cannot listen on {local} (TCP); {hint}")
                });
            }
        }
    }
}

/// Serves cluster DNS on `sockets` (UDP and TCP); returns their address. It answers from the
/// informers' caches once they synced, until `stop`.
pub async fn serve(
    client: Client,
    sockets: Sockets,
    options: Options,
    stop: Stop,
) -> anyhow::Result<SocketAddr> {
    let zone = Zone::new(&options.domain, options.ttl)
        .with_context(|| format!("bad cluster domain {:?}", options.domain))?;
    let local = sockets.local_addr()?;
    let locals = sockets.local_addrs();
    let Sockets { udp, tcp } = sockets;
    let informers = Informers {
        services: Informer::start(client.clone(), stop.clone()),
        slices: Informer::start(client, stop.clone()),
    };
    informers.services.synced().await;
    informers.slices.synced().await;
    let upstreams: Vec<SocketAddr> = options
        .upstreams
        .into_iter()
        .filter(|u| !locals.contains(u))
        .collect();
    let handler = Handler {
        zone,
        view: Arc::new(informers),
        upstreams,
    };
    let mut server = hickory_server::Server::new(handler);
    for socket in udp {
        server.register_socket(socket);
    }
    for listener in tcp {
        server.register_listener(listener, TCP_TIMEOUT, 64);
    }
    tokio::spawn(async move {
        stop.stopped().await;
        if let Err(err) = server.shutdown_gracefully().await {
            tracing::debug!("cluster DNS stopped: {err}");
        }
    });
    tracing::info!(addresses = ?locals, "cluster DNS ready");
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn dns_listens_where_the_kube_dns_endpoints_point_and_never_on_a_wildcard() {
        // A wildcard bind: the advertised address, and loopback for the host.
        assert_eq!(
            listen_addresses(ip("0.0.0.0"), ip("192.0.2.2")),
            vec![ip("192.0.2.2"), ip("127.0.0.1")]
        );
        // A specific bind address is kept, the advertised one added.
        assert_eq!(
            listen_addresses(ip("127.0.0.1"), ip("192.0.2.2")),
            vec![ip("127.0.0.1"), ip("192.0.2.2")]
        );
        assert_eq!(
            listen_addresses(ip("10.0.0.5"), ip("10.0.0.5")),
            vec![ip("10.0.0.5")]
        );
        assert_eq!(
            listen_addresses(ip("0.0.0.0"), ip("127.0.0.1")),
            vec![ip("127.0.0.1")]
        );
    }

    #[tokio::test]
    async fn every_address_gets_the_same_port() {
        let sockets = bind(&[ip("127.0.0.1"), ip("127.0.0.2")], 0)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let addrs = sockets.local_addrs();
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        assert_eq!(addrs[0].port(), addrs[1].port());
        assert_eq!(sockets.tcp.len(), 2);
    }
}
