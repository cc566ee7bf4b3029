//! The pod network's CNI configuration: a conflist of Debian's plugins (bridge with
//! host-local addresses from the node's pod CIDR, then portmap for hostPorts), written
//! into containerd's CNI conf dir when the node gets its `spec.podCIDR`. containerd's CRI
//! plugin watches the directory and reports `NetworkReady` once it loads the file; it brings
//! each pod's loopback up itself.

use std::path::Path;

use serde_json::json;

/// The network's name (what containerd and host-local key state by).
pub const NETWORK_NAME: &str = "rkube";
/// The conflist's file name.
pub const CONFLIST: &str = "10-rkube.conflist";
/// The bridge pods attach to.
pub const DEFAULT_BRIDGE: &str = "cni0";

/// The conflist for a pod CIDR. The bridge plugin's `ipMasq` stays off: it would NAT
/// everything leaving this node's pod CIDR, other nodes' pods included, where Kubernetes'
/// network model wants pods to see each other's own addresses. The node's proxy
/// masquerades only what leaves the cluster CIDR (`rkube_proxy`'s pod egress rule).
pub fn conflist(cidr: &str, bridge: &str, ipam_dir: &Path) -> serde_json::Value {
    json!({
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir.to_string_lossy(),
                    "ranges": [[{"subnet": cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
        ],
    })
}

/// Writes the conflist (atomically: containerd watches the directory and must not read a
/// half-written file).
pub fn write(conf_dir: &Path, cidr: &str, bridge: &str, ipam_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(conf_dir)?;
    std::fs::create_dir_all(ipam_dir)?;
    let text = serde_json::to_vec_pretty(&conflist(cidr, bridge, ipam_dir))?;
    let target = conf_dir.join(CONFLIST);
    if std::fs::read(&target).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let tmp = conf_dir.join(format!(".{CONFLIST}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conflist_bridges_pods_on_the_pod_cidr() {
        let conf = conflist("10.42.0.0/24", "cni0", Path::new("/d/cni"));
        assert_eq!(conf["plugins"][0]["type"], "bridge");
        assert_eq!(conf["plugins"][0]["isGateway"], true);
        assert_eq!(conf["plugins"][0]["ipMasq"], false);
        assert_eq!(
            conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.0.0/24"
        );
        assert_eq!(conf["plugins"][1]["type"], "portmap");
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "10.42.0.0/24", "cni0", &dir.path().join("ipam")).expect("write");
        let text = std::fs::read_to_string(dir.path().join(CONFLIST)).expect("read");
        assert!(text.contains("10.42.0.0/24"));
    }
}
