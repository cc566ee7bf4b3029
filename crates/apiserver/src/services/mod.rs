//! Service networking in the API server, as kube-apiserver's Service registry does it:
//! ClusterIPs from the service CIDR and NodePorts from the node port range, allocated when a
//! Service is created or changes type and released when it is removed from the store
//! ([`strategy`]); the allocations kept in the store ([`allocator`]) and rebuilt from the
//! Services that exist ([`repair`]); and the `default/kubernetes` Service whose endpoints are
//! the live API servers ([`kubernetes`]).

pub(crate) mod allocator;
pub(crate) mod kubernetes;
pub mod ranges;
pub(crate) mod repair;
pub(crate) mod strategy;

pub use kubernetes::advertise_address;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rkube_store::Store;

use allocator::{AllocError, StoredRange};
pub use ranges::{IpRange, PortRange};

/// The store key of the ClusterIP allocation (kube-apiserver's).
pub const SERVICE_IPS_KEY: &str = "/registry/ranges/serviceips";
/// The store key of the NodePort allocation (kube-apiserver's).
pub const NODE_PORTS_KEY: &str = "/registry/ranges/servicenodeports";

/// rkube's convention: the `kubernetes` Service takes the first address of the range and
/// cluster DNS the tenth; neither is handed out unless asked for by name.
const RESERVED_IP_OFFSETS: [usize; 2] = [0, 9];

/// The service network settings of `rkube server`.
#[derive(Clone, Debug)]
pub struct ServiceNetworkConfig {
    /// `--service-cidr`.
    pub service_cidr: IpRange,
    /// `--service-node-port-range`.
    pub node_port_range: PortRange,
    /// `--advertise-address`: the address other components reach this server at, listed in
    /// the `kubernetes` endpoints. `None`: the host's primary IPv4 address.
    pub advertise_address: Option<IpAddr>,
    /// How long a server's endpoint lease lives without renewal (kube's master lease TTL).
    pub endpoint_lease_duration: Duration,
    /// The port the servers' cluster DNS listens on: the `kube-system/kube-dns` Service
    /// points there. `None`: the servers run no cluster DNS.
    pub cluster_dns_port: Option<u16>,
}

impl Default for ServiceNetworkConfig {
    fn default() -> Self {
        Self {
            service_cidr: IpRange::default_cidr(),
            node_port_range: PortRange::default_range(),
            advertise_address: None,
            endpoint_lease_duration: Duration::from_secs(15),
            cluster_dns_port: None,
        }
    }
}

impl IpRange {
    /// 10.43.0.0/16.
    pub fn default_cidr() -> Self {
        Self::from_octets([10, 43, 0, 0], 16)
    }
}

impl PortRange {
    /// 30000-32767.
    pub fn default_range() -> Self {
        Self::from_bounds(30000, 32767)
    }
}

/// The allocators of one API server.
pub(crate) struct ServiceNetwork {
    pub config: ServiceNetworkConfig,
    pub ip_range: IpRange,
    pub port_range: PortRange,
    pub ips: StoredRange,
    pub ports: StoredRange,
}

impl ServiceNetwork {
    pub fn new(store: Arc<dyn Store>, config: ServiceNetworkConfig) -> Self {
        let ip_range = config.service_cidr;
        let port_range = config.node_port_range;
        Self {
            ips: StoredRange::new(
                store.clone(),
                SERVICE_IPS_KEY,
                ip_range.to_string(),
                ip_range.size(),
            ),
            ports: StoredRange::new(
                store,
                NODE_PORTS_KEY,
                port_range.to_string(),
                port_range.size(),
            ),
            ip_range,
            port_range,
            config,
        }
    }

    /// The `kubernetes` Service's ClusterIP: the first address of the range.
    pub fn kubernetes_ip(&self) -> Ipv4Addr {
        self.ip_range.ip(0)
    }

    /// The cluster DNS Service's address: the tenth of the range (10.43.0.10 by default).
    pub fn dns_ip(&self) -> Ipv4Addr {
        self.ip_range.ip(9)
    }

    /// Allocates `requested`, or a free address when `None`. A dry run only checks.
    pub async fn allocate_ip(
        &self,
        requested: Option<Ipv4Addr>,
        dry_run: bool,
    ) -> Result<Ipv4Addr, AllocError> {
        let range = self.ip_range;
        match requested {
            Some(ip) => {
                let offset = range.offset(ip).ok_or(AllocError::NotInRange)?;
                if dry_run {
                    let snapshot = self.ips.read(false).await?;
                    return if snapshot.bitmap.has(offset) {
                        Err(AllocError::Allocated)
                    } else {
                        Ok(ip)
                    };
                }
                self.ips
                    .modify(|b| {
                        if b.set(offset) {
                            Ok(((), true))
                        } else {
                            Err(AllocError::Allocated)
                        }
                    })
                    .await?;
                Ok(ip)
            }
            // kube's dry run answers the network address rather than reserving anything.
            None if dry_run => Ok(range.network()),
            None => {
                let band = range.dynamic_band();
                let offset = self
                    .ips
                    .modify(|b| {
                        let offset = b
                            .next_free(band, &RESERVED_IP_OFFSETS, &mut rand::rng())
                            .ok_or(AllocError::Full)?;
                        b.set(offset);
                        Ok((offset, true))
                    })
                    .await?;
                Ok(range.ip(offset))
            }
        }
    }

    /// Frees addresses (those outside the range are ignored). Failures are logged: the
    /// repair pass frees what is left.
    pub async fn release_ips(&self, ips: &[Ipv4Addr]) {
        let offsets: Vec<usize> = ips
            .iter()
            .filter_map(|ip| self.ip_range.offset(*ip))
            .collect();
        if offsets.is_empty() {
            return;
        }
        let released = self
            .ips
            .modify(|b| {
                let changed = offsets.iter().fold(false, |c, o| b.clear(*o) | c);
                Ok(((), changed))
            })
            .await;
        if let Err(err) = released {
            tracing::warn!(?ips, error = %err, "releasing ClusterIPs failed; the repair pass will");
        }
    }

    /// Allocates the node port `requested`, or a free one when `None` (dry runs use
    /// [`ServiceNetwork::check_port`] instead).
    pub async fn allocate_port(&self, requested: Option<i64>) -> Result<i64, AllocError> {
        let range = self.port_range;
        match requested {
            Some(port) => {
                let offset = range.offset(port).ok_or(AllocError::NotInRange)?;
                self.ports
                    .modify(|b| {
                        if b.set(offset) {
                            Ok(((), true))
                        } else {
                            Err(AllocError::Allocated)
                        }
                    })
                    .await?;
                Ok(port)
            }
            None => {
                let band = range.dynamic_band();
                let offset = self
                    .ports
                    .modify(|b| {
                        let offset = b
                            .next_free(band, &[], &mut rand::rng())
                            .ok_or(AllocError::Full)?;
                        b.set(offset);
                        Ok((offset, true))
                    })
                    .await?;
                Ok(i64::from(range.port(offset)))
            }
        }
    }

    /// Whether `port` could be allocated now (for dry runs).
    pub async fn check_port(&self, port: i64) -> Result<(), AllocError> {
        let offset = self.port_range.offset(port).ok_or(AllocError::NotInRange)?;
        if self.ports.read(false).await?.bitmap.has(offset) {
            Err(AllocError::Allocated)
        } else {
            Ok(())
        }
    }

    /// Frees node ports. Failures are logged: the repair pass frees what is left.
    pub async fn release_ports(&self, ports: &[i64]) {
        let offsets: Vec<usize> = ports
            .iter()
            .filter_map(|p| self.port_range.offset(*p))
            .collect();
        if offsets.is_empty() {
            return;
        }
        let released = self
            .ports
            .modify(|b| {
                let changed = offsets.iter().fold(false, |c, o| b.clear(*o) | c);
                Ok(((), changed))
            })
            .await;
        if let Err(err) = released {
            tracing::warn!(?ports, error = %err, "releasing NodePorts failed; the repair pass will");
        }
    }
}
