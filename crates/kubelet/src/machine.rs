//! What a real node reports about its machine: CPUs, memory, disk, its address and name.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};

use crate::node::{Capacity, Pressure};

/// kube's default `--max-pods`.
pub const MAX_PODS: u32 = 110;

/// The machine's capacity: online CPUs, `MemTotal`, and the size of the file system that
/// holds `data_dir` (kube's ephemeral storage is the node's root file system).
pub fn capacity(data_dir: &Path) -> Capacity {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(mem_total_kib)
        .unwrap_or(0);
    let disk = rustix::fs::statvfs(data_dir)
        .map(|s| s.f_blocks.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    Capacity {
        cpu: cpus.to_string(),
        memory: format!("{memory_kib}Ki"),
        pods: MAX_PODS.to_string(),
        ephemeral_storage: format!("{}Ki", disk / 1024),
    }
}

/// `MemTotal` of /proc/meminfo, in KiB.
fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The host's primary address: the source address of its default route (found by
/// "connecting" a UDP socket, which sends nothing), else the loopback.
pub fn primary_ip() -> IpAddr {
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:53")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The host's name, lowercased, as kube's kubelet names its node by default.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// One eviction threshold: a signal's minimum, as a quantity or a share of the whole.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    Bytes(u64),
    Percent(f64),
}

impl Threshold {
    /// Whether `available` of `total` is under the threshold.
    fn crossed(self, available: u64, total: u64) -> bool {
        match self {
            Threshold::Bytes(min) => available < min,
            // Precision is not a concern at these magnitudes.
            #[allow(clippy::cast_precision_loss)]
            Threshold::Percent(p) => total > 0 && (available as f64) < (total as f64) * p / 100.0,
        }
    }
}

/// kube's hard eviction thresholds (`--eviction-hard`), by signal; the node reports
/// MemoryPressure, DiskPressure and PIDPressure when they are crossed.
#[derive(Clone, Debug, PartialEq)]
pub struct Eviction {
    /// The file system of the node's data (kube's nodefs).
    pub data_dir: PathBuf,
    pub memory_available: Option<Threshold>,
    pub nodefs_available: Option<Threshold>,
    pub nodefs_inodes_free: Option<Threshold>,
    pub pid_available: Option<Threshold>,
}

impl Eviction {
    /// kube's defaults on Linux: `memory.available<100Mi,nodefs.available<10%,
    /// nodefs.inodesFree<5%` (and the same for imagefs, which is nodefs here).
    pub fn defaults(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            memory_available: Some(Threshold::Bytes(100 << 20)),
            nodefs_available: Some(Threshold::Percent(10.0)),
            nodefs_inodes_free: Some(Threshold::Percent(5.0)),
            pid_available: None,
        }
    }

    /// Parses kube's `--eviction-hard` (`signal<quantity|percent`, comma separated); the
    /// signals not named keep no threshold, as in kube when the flag is given.
    pub fn parse(data_dir: PathBuf, text: &str) -> Result<Self, String> {
        let mut eviction = Self {
            data_dir,
            memory_available: None,
            nodefs_available: None,
            nodefs_inodes_free: None,
            pid_available: None,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (signal, value) = part.split_once('<').ok_or_else(|| {
                format!("{part:?}: expected SIGNAL<VALUE, e.g. memory.available<100Mi")
            })?;
            let threshold = match value.strip_suffix('%') {
                Some(p) => Threshold::Percent(
                    p.parse()
                        .ok()
                        .filter(|p: &f64| (0.0..=100.0).contains(p))
                        .ok_or_else(|| format!("{part:?}: invalid percentage"))?,
                ),
                None => Threshold::Bytes(
                    rkube_api::validate_types::Quantity::parse(value)
                        .ok()
                        .and_then(|q| u64::try_from(q.int_value()).ok())
                        .ok_or_else(|| format!("{part:?}: invalid quantity"))?,
                ),
            };
            let slot = match signal.trim() {
                "memory.available" => &mut eviction.memory_available,
                "nodefs.available" | "imagefs.available" => &mut eviction.nodefs_available,
                "nodefs.inodesFree" | "imagefs.inodesFree" => &mut eviction.nodefs_inodes_free,
                "pid.available" => &mut eviction.pid_available,
                other => return Err(format!("unknown eviction signal {other:?}")),
            };
            *slot = Some(threshold);
        }
        Ok(eviction)
    }

    /// The machine's pressures now.
    pub fn pressure(&self) -> Pressure {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib = |key: &str| {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|k| k * 1024)
        };
        let memory = match (
            self.memory_available,
            kib("MemAvailable:"),
            kib("MemTotal:"),
        ) {
            (Some(t), Some(available), Some(total)) => t.crossed(available, total),
            _ => false,
        };
        let disk = rustix::fs::statvfs(&self.data_dir).is_ok_and(|s| {
            let bytes = self
                .nodefs_available
                .is_some_and(|t| t.crossed(s.f_bavail * s.f_frsize, s.f_blocks * s.f_frsize));
            let inodes = self
                .nodefs_inodes_free
                .is_some_and(|t| s.f_files > 0 && t.crossed(s.f_favail, s.f_files));
            bytes || inodes
        });
        let pid = self.pid_available.is_some_and(|t| {
            let max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
                .ok()
                .and_then(|m| m.trim().parse::<u64>().ok());
            // The fourth field of /proc/loadavg is running/total tasks.
            let tasks = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| {
                l.split_whitespace()
                    .nth(3)?
                    .split_once('/')?
                    .1
                    .parse::<u64>()
                    .ok()
            });
            match (max, tasks) {
                (Some(max), Some(tasks)) => t.crossed(max.saturating_sub(tasks), max),
                _ => false,
            }
        });
        Pressure { memory, disk, pid }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_thresholds_parse_as_kubes_flag() {
        let e = Eviction::parse(
            "/".into(),
            "memory.available<1Gi, nodefs.available<15%,pid.available<1000",
        )
        .unwrap();
        assert_eq!(e.memory_available, Some(Threshold::Bytes(1 << 30)));
        assert_eq!(e.nodefs_available, Some(Threshold::Percent(15.0)));
        assert_eq!(e.pid_available, Some(Threshold::Bytes(1000)));
        assert_eq!(e.nodefs_inodes_free, None);
        for bad in [
            "memory.available>1Gi",
            "cpu.available<1",
            "nodefs.available<120%",
            "memory.available<lots",
        ] {
            assert!(Eviction::parse("/".into(), bad).is_err(), "{bad}");
        }
        assert!(Threshold::Percent(10.0).crossed(5, 100));
        assert!(!Threshold::Percent(10.0).crossed(50, 100));
        assert!(Threshold::Bytes(10).crossed(5, 0));
    }

    #[test]
    fn pressure_is_measured_against_the_thresholds() {
        // Nothing is ever under 0, and everything is under 100% of itself.
        let none = Eviction::parse("/".into(), "memory.available<0,nodefs.available<0%").unwrap();
        assert_eq!(none.pressure(), Pressure::default());
        let all = Eviction::parse(
            "/".into(),
            "memory.available<100%,nodefs.available<100%,pid.available<100%",
        )
        .unwrap();
        assert_eq!(
            all.pressure(),
            Pressure {
                memory: true,
                disk: true,
                pid: true
            }
        );
    }

    #[test]
    fn memory_comes_from_meminfo() {
        let text = "MemTotal:       16318480 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total_kib(text), Some(16318480));
        assert_eq!(mem_total_kib("nothing"), None);
        let c = capacity(Path::new("/"));
        assert!(c.memory.ends_with("Ki") && c.memory != "0Ki");
        assert!(c.cpu.parse::<u32>().is_ok_and(|n| n > 0));
        assert_eq!(c.pods, "110");
    }
}
