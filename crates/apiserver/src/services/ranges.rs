//! The ranges Services take addresses from, and the bitmap that records what is taken:
//! kube-apiserver's `ipallocator`/`portallocator` over `allocator.AllocationBitmap`, with
//! its offset strategy (KEP-3070 and KEP-3668): dynamic allocations come from the upper
//! part of a range first, so the lower part stays free for addresses chosen by hand.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use rand::Rng;

/// A set of offsets `0..size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    words: Vec<u64>,
    size: usize,
}

impl Bitmap {
    /// An empty bitmap of `size` offsets.
    pub fn new(size: usize) -> Self {
        Self {
            words: vec![0; size.div_ceil(64)],
            size,
        }
    }

    /// How many offsets it can hold.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether `offset` is taken.
    pub fn has(&self, offset: usize) -> bool {
        offset < self.size && self.words[offset / 64] & (1 << (offset % 64)) != 0
    }

    /// Takes `offset`; false when it was taken already or is out of range.
    pub fn set(&mut self, offset: usize) -> bool {
        if offset >= self.size || self.has(offset) {
            return false;
        }
        self.words[offset / 64] |= 1 << (offset % 64);
        true
    }

    /// Frees `offset`; false when it was free.
    pub fn clear(&mut self, offset: usize) -> bool {
        if !self.has(offset) {
            return false;
        }
        self.words[offset / 64] &= !(1 << (offset % 64));
        true
    }

    /// How many offsets are taken.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The taken offsets, in order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.size).filter(|o| self.has(*o))
    }

    /// A free offset: a random one from `[band, size)` first, then from `[0, band)`,
    /// never one of `never`. `None` when the range is full.
    pub fn next_free(&self, band: usize, never: &[usize], rng: &mut impl Rng) -> Option<usize> {
        let band = band.min(self.size);
        let usable = |o: usize| !self.has(o) && !never.contains(&o);
        let scan = |lo: usize, hi: usize, rng: &mut dyn rand::RngCore| {
            if lo >= hi {
                return None;
            }
            let start = rng.random_range(lo..hi);
            (start..hi).chain(lo..start).find(|o| usable(*o))
        };
        scan(band, self.size, rng).or_else(|| scan(0, band, rng))
    }

    /// The bytes kept in the store: offset `i` is bit `i % 8` of byte `i / 8`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.truncate(self.size.div_ceil(8));
        bytes
    }

    /// The bitmap [`Bitmap::to_bytes`] wrote; `None` when the bytes do not fit `size`.
    pub fn from_bytes(size: usize, bytes: &[u8]) -> Option<Self> {
        if bytes.len() > size.div_ceil(8) {
            return None;
        }
        let mut bitmap = Self::new(size);
        for (i, byte) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    let offset = i * 8 + bit;
                    if offset >= size {
                        return None;
                    }
                    bitmap.set(offset);
                }
            }
        }
        Some(bitmap)
    }
}

/// Why a range cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RangeParseError(String);

/// An IPv4 service CIDR (`--service-cidr`). Its allocatable addresses exclude the network
/// and broadcast addresses, as kube's bitmap allocator's do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    network: u32,
    prefix: u8,
}

impl IpRange {
    /// The range `a.b.c.d/prefix` (prefix between 12 and 30).
    pub(crate) fn from_octets(octets: [u8; 4], prefix: u8) -> Self {
        let prefix = prefix.clamp(12, 30);
        Self {
            network: u32::from(Ipv4Addr::from(octets)) & (u32::MAX << (32 - prefix)),
            prefix,
        }
    }

    /// The number of allocatable addresses.
    pub fn size(&self) -> usize {
        (1usize << (32 - self.prefix)) - 2
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    /// The address at `offset` (offset 0 is the first address after the network address).
    pub fn ip(&self, offset: usize) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1 + offset as u32)
    }

    /// The offset of `ip`, when it is allocatable in this range.
    pub fn offset(&self, ip: Ipv4Addr) -> Option<usize> {
        let ip = u32::from(ip);
        let offset = ip.checked_sub(self.network)?.checked_sub(1)? as usize;
        (offset < self.size()).then_some(offset)
    }

    /// kube's `calculateRangeOffset` for service CIDRs: min(max(16, cidr size / 16), 256),
    /// 0 for a CIDR of 16 addresses or fewer.
    pub fn dynamic_band(&self) -> usize {
        let cidr_size = 1usize << (32 - self.prefix);
        if cidr_size <= 16 {
            0
        } else {
            (cidr_size / 16).clamp(16, 256)
        }
    }
}

impl FromStr for IpRange {
    type Err = RangeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| RangeParseError(format!("invalid service CIDR {s:?}: {why}"));
        let (ip, prefix) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX, for example 10.43.0.0/16"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| bad("only IPv4 service CIDRs are supported"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
        // kube refuses IPv4 ranges wider than /12; below /30 nothing is left to allocate.
        if !(12..=30).contains(&prefix) {
            return Err(bad("the prefix length must be between 12 and 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            network: u32::from(ip) & mask,
            prefix,
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

/// A node port range (`--service-node-port-range`), both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    base: u16,
    size: usize,
}

impl PortRange {
    /// The ports `low..=high` (`high` at least `low`).
    pub(crate) fn from_bounds(low: u16, high: u16) -> Self {
        Self {
            base: low,
            size: usize::from(high.max(low) - low) + 1,
        }
    }

    /// The number of ports.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The port at `offset`.
    pub fn port(&self, offset: usize) -> u16 {
        self.base + offset as u16
    }

    /// The offset of `port`, when it is in the range.
    pub fn offset(&self, port: i64) -> Option<usize> {
        let offset = usize::try_from(port.checked_sub(i64::from(self.base))?).ok()?;
        (offset < self.size).then_some(offset)
    }

    /// kube's `calculateRangeOffset` for node ports: min(max(16, size / 32), 128), 0 for a
    /// range of 16 ports or fewer.
    pub fn dynamic_band(&self) -> usize {
        if self.size <= 16 {
            0
        } else {
            (self.size / 32).clamp(16, 128)
        }
    }
}

impl FromStr for PortRange {
    type Err = RangeParseError;
    /// `LOW-HIGH` or `BASE+SIZE`, as kube's `net.ParsePortRange`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| RangeParseError(format!("invalid port range {s:?}: {why}"));
        let s = s.trim();
        let (low, high) = if let Some((low, high)) = s.split_once('-') {
            let low: u16 = low.parse().map_err(|_| bad("bad low port"))?;
            let high: u16 = high.parse().map_err(|_| bad("bad high port"))?;
            (low, high)
        } else if let Some((base, size)) = s.split_once('+') {
            let base: u16 = base.parse().map_err(|_| bad("bad base port"))?;
            let size: u16 = size.parse().map_err(|_| bad("bad size"))?;
            let high = base
                .checked_add(size.saturating_sub(1))
                .ok_or_else(|| bad("past port 65535"))?;
            (base, high)
        } else {
            let port: u16 = s.parse().map_err(|_| bad("expected LOW-HIGH"))?;
            (port, port)
        };
        if low == 0 || high < low {
            return Err(bad("expected 1 <= LOW <= HIGH <= 65535"));
        }
        Ok(Self {
            base: low,
            size: usize::from(high - low) + 1,
        })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.base, self.port(self.size - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_sets_clears_and_round_trips() {
        let mut b = Bitmap::new(70);
        assert!(b.set(0));
        assert!(!b.set(0));
        assert!(b.set(69));
        assert!(!b.set(70));
        assert_eq!(b.count(), 2);
        let again = Bitmap::from_bytes(70, &b.to_bytes()).expect("round trip");
        assert_eq!(again, b);
        assert_eq!(again.iter().collect::<Vec<_>>(), vec![0, 69]);
        assert!(b.clear(69));
        assert!(!b.clear(69));
        // Bytes for a bigger bitmap do not fit.
        assert!(Bitmap::from_bytes(8, &[0, 1]).is_none());
        assert!(Bitmap::from_bytes(4, &[0x10]).is_none());
    }

    #[test]
    fn next_free_prefers_the_upper_band_and_skips_reserved() {
        let mut rng = rand::rng();
        let mut b = Bitmap::new(40);
        // 24 dynamic allocations fill the upper band [16, 40) before the lower one is used.
        for _ in 0..24 {
            let o = b.next_free(16, &[0, 9], &mut rng).expect("free offset");
            assert!(o >= 16, "{o} came from the lower band first");
            assert!(b.set(o));
        }
        let mut lower = Vec::new();
        while let Some(o) = b.next_free(16, &[0, 9], &mut rng) {
            assert!(b.set(o));
            lower.push(o);
        }
        lower.sort_unstable();
        let expected: Vec<usize> = (1..16).filter(|o| *o != 9).collect();
        assert_eq!(lower, expected, "reserved offsets are never handed out");
        assert!(!b.has(0) && !b.has(9));
    }

    #[test]
    fn ip_ranges() {
        let r: IpRange = "10.43.7.9/16".parse().expect("valid");
        assert_eq!(r.to_string(), "10.43.0.0/16");
        assert_eq!(r.size(), 65534);
        assert_eq!(r.ip(0), Ipv4Addr::new(10, 43, 0, 1));
        assert_eq!(r.offset(Ipv4Addr::new(10, 43, 0, 10)), Some(9));
        assert_eq!(r.offset(Ipv4Addr::new(10, 43, 0, 0)), None, "network");
        assert_eq!(r.offset(Ipv4Addr::new(10, 43, 255, 255)), None, "broadcast");
        assert_eq!(r.offset(Ipv4Addr::new(10, 44, 0, 1)), None);
        assert_eq!(r.dynamic_band(), 256);
        let small: IpRange = "192.168.0.0/24".parse().expect("valid");
        assert_eq!(small.dynamic_band(), 16);
        assert_eq!(
            "10.0.0.0/29".parse::<IpRange>().map(|r| r.dynamic_band()),
            Ok(0)
        );
        for bad in [
            "10.43.0.0",
            "10.43.0.0/8",
            "10.43.0.0/31",
            "fd00::/112",
            "x/16",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn port_ranges() {
        let r: PortRange = "30000-32767".parse().expect("valid");
        assert_eq!(r.size(), 2768);
        assert_eq!(r.to_string(), "30000-32767");
        assert_eq!(r.offset(30000), Some(0));
        assert_eq!(r.offset(32767), Some(2767));
        assert_eq!(r.offset(32768), None);
        assert_eq!(r.offset(80), None);
        assert_eq!(r.dynamic_band(), 86);
        assert_eq!(
            "30000+10".parse::<PortRange>().map(|r| r.to_string()).ok(),
            Some("30000-30009".into())
        );
        for bad in ["", "0-10", "20-10", "a-b", "65535+2"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }
}
