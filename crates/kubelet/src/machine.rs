//! What a real node reports about its machine: CPUs, memory, disk, its address and name.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;

use crate::node::Capacity;

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

#[cfg(test)]
mod tests {
    use super::*;

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
