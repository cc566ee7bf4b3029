//! Cluster DNS, CoreDNS's role in a Kubernetes cluster: answers for the cluster domain from
//! the API's Services and EndpointSlices ([`zone`]), everything else forwarded to the host's
//! resolvers. Served over UDP and TCP by hickory's server; `rkube server` runs it and
//! publishes it as the `kube-system/kube-dns` Service.

pub mod zone;

use std::net::SocketAddr;
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

/// Cluster DNS's sockets, bound before the server starts so the port is known.
pub struct Sockets {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Sockets {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// Binds UDP and TCP on the same port; with port 0, a free port for both.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<Sockets> {
    let (udp, tcp) = bind_pair(listen).await?;
    Ok(Sockets { udp, tcp })
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
    let Sockets { udp, tcp } = sockets;
    let local = udp.local_addr()?;
    let informers = Informers {
        services: Informer::start(client.clone(), stop.clone()),
        slices: Informer::start(client, stop.clone()),
    };
    informers.services.synced().await;
    informers.slices.synced().await;
    let upstreams: Vec<SocketAddr> = options
        .upstreams
        .into_iter()
        .filter(|u| *u != local)
        .collect();
    let handler = Handler {
        zone,
        view: Arc::new(informers),
        upstreams,
    };
    let mut server = hickory_server::Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, 64);
    tokio::spawn(async move {
        stop.stopped().await;
        if let Err(err) = server.shutdown_gracefully().await {
            tracing::debug!("cluster DNS stopped: {err}");
        }
    });
    tracing::info!(address = %local, "cluster DNS ready");
    Ok(local)
}
