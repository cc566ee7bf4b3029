//! Pod addresses from the node's pod CIDR, the way CNI's `host-local` plugin hands them out:
//! the network address and the gateway (`.1`) are never given, neither is the broadcast
//! address; allocation goes round-robin from the last address given, so an address just
//! released is not reused at once (a late packet for a deleted pod does not reach a new one).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Why a pod CIDR cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("invalid pod CIDR {cidr:?}: expected an IPv4 ADDRESS/BITS")]
    Invalid { cidr: String },
    #[error("pod CIDR {cidr:?} is too small: it needs at least 4 addresses")]
    TooSmall { cidr: String },
}

/// The addresses of one node's pod CIDR.
#[derive(Debug, Clone)]
pub struct HostLocal {
    cidr: String,
    /// The first and last address that may be given (inclusive), as integers.
    first: u32,
    last: u32,
    used: BTreeSet<u32>,
    /// The last address given; the next search starts after it.
    cursor: Option<u32>,
}

impl HostLocal {
    /// A pool over `cidr` (`10.42.3.0/24`). The host bits of the address are ignored.
    pub fn new(cidr: &str) -> Result<Self, IpamError> {
        let invalid = || IpamError::Invalid {
            cidr: cidr.to_owned(),
        };
        let (address, bits) = cidr.split_once('/').ok_or_else(invalid)?;
        let address: Ipv4Addr = address.parse().map_err(|_| invalid())?;
        let bits: u32 = bits.parse().map_err(|_| invalid())?;
        if bits > 32 {
            return Err(invalid());
        }
        if bits > 30 {
            return Err(IpamError::TooSmall {
                cidr: cidr.to_owned(),
            });
        }
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        let network = u32::from(address) & mask;
        let broadcast = network | !mask;
        Ok(Self {
            cidr: format!("{}/{bits}", Ipv4Addr::from(network)),
            // .0 is the network, .1 the bridge's gateway.
            first: network + 2,
            last: broadcast - 1,
            used: BTreeSet::new(),
            cursor: None,
        })
    }

    /// The CIDR, normalised (`10.42.3.0/24`).
    pub fn cidr(&self) -> &str {
        &self.cidr
    }

    /// Whether `ip` is one this pool may give.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(ip))
    }

    /// How many addresses are given out.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    /// The next free address after the last one given, wrapping around; `None` when all are
    /// in use.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let start = match self.cursor {
            Some(c) if c < self.last => c + 1,
            _ => self.first,
        };
        let found = (start..=self.last)
            .chain(self.first..start)
            .find(|ip| !self.used.contains(ip))?;
        self.used.insert(found);
        self.cursor = Some(found);
        Some(Ipv4Addr::from(found))
    }

    /// Takes a particular address (a pod keeping its address across an agent restart);
    /// false if it is outside the pool or already in use.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        if !(self.first..=self.last).contains(&ip) {
            return false;
        }
        self.used.insert(ip)
    }

    /// Gives an address back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("a test address")
    }

    #[test]
    fn skips_network_gateway_and_broadcast() {
        let mut pool = HostLocal::new("10.42.3.0/24").expect("valid");
        assert_eq!(pool.cidr(), "10.42.3.0/24");
        assert_eq!(pool.allocate(), Some(ip("10.42.3.2")));
        assert_eq!(pool.allocate(), Some(ip("10.42.3.3")));
        assert!(!pool.contains(ip("10.42.3.0")));
        assert!(!pool.contains(ip("10.42.3.1")));
        assert!(!pool.contains(ip("10.42.3.255")));
        assert!(pool.contains(ip("10.42.3.254")));
        let mut given = 2;
        while pool.allocate().is_some() {
            given += 1;
        }
        // .2 to .254
        assert_eq!(given, 253);
        assert_eq!(pool.in_use(), 253);
    }

    #[test]
    fn round_robin_does_not_reuse_a_released_address_at_once() {
        let mut pool = HostLocal::new("10.42.0.0/24").expect("valid");
        let a = pool.allocate().expect("free");
        let b = pool.allocate().expect("free");
        pool.release(a);
        let c = pool.allocate().expect("free");
        assert_ne!(c, a);
        assert_eq!(u32::from(c), u32::from(b) + 1);
    }

    #[test]
    fn wraps_around_to_released_addresses_when_full() {
        let mut pool = HostLocal::new("10.0.0.0/30").expect("valid");
        // A /30 has one usable address after network and gateway: .2 (.3 is broadcast).
        assert_eq!(pool.allocate(), Some(ip("10.0.0.2")));
        assert_eq!(pool.allocate(), None);
        pool.release(ip("10.0.0.2"));
        assert_eq!(pool.allocate(), Some(ip("10.0.0.2")));
    }

    #[test]
    fn reserve_keeps_an_address_and_refuses_others() {
        let mut pool = HostLocal::new("10.42.7.9/24").expect("valid");
        assert_eq!(pool.cidr(), "10.42.7.0/24");
        assert!(pool.reserve(ip("10.42.7.2")));
        assert!(!pool.reserve(ip("10.42.7.2")));
        assert!(!pool.reserve(ip("10.42.8.2")));
        assert!(!pool.reserve(ip("10.42.7.1")));
        assert_eq!(pool.allocate(), Some(ip("10.42.7.3")));
    }

    #[test]
    fn bad_cidrs() {
        assert!(matches!(
            HostLocal::new("10.42.0.0"),
            Err(IpamError::Invalid { .. })
        ));
        assert!(matches!(
            HostLocal::new("fd00::/64"),
            Err(IpamError::Invalid { .. })
        ));
        assert!(matches!(
            HostLocal::new("10.42.0.0/31"),
            Err(IpamError::TooSmall { .. })
        ));
    }
}
