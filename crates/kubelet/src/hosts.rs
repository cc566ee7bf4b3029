//! The pod's `/etc/hosts`, managed as kube's kubelet does (`managedHostsFileContent`): the
//! loopback and IPv6 names, the pod's own address with its hostname (and its fully
//! qualified name when it has a subdomain), then `spec.hostAliases`. A host-network pod gets
//! the node's file with the aliases added. Written once to `PODS_DIR/UID/etc-hosts` and bound
//! into every container that does not mount `/etc/hosts` itself.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

pub const FILE: &str = "etc-hosts";

const HEADER: &str = "# Kubernetes-managed hosts file.\n";
const DEFAULTS: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
fe00::0\tip6-mcastprefix\n\
fe00::1\tip6-allnodes\n\
fe00::2\tip6-allrouters\n";

/// The file for `pod` at `pod_ips`; `node_hosts` is the node's own file (host network).
pub fn content(pod: &Pod, pod_ips: &[IpAddr], cluster_domain: &str, node_hosts: &str) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut out = String::new();
    if spec.host_network == Some(true) {
        out.push_str(node_hosts);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    } else {
        out.push_str(HEADER);
        out.push_str(DEFAULTS);
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let hostname = spec
            .hostname
            .as_deref()
            .filter(|h| !h.is_empty())
            .unwrap_or(name);
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        for ip in pod_ips {
            match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) => out.push_str(&format!(
                    "{ip}\t{hostname}.{sub}.{namespace}.svc.{cluster_domain}\t{hostname}\n"
                )),
                None => out.push_str(&format!("{ip}\t{hostname}\n")),
            }
        }
    }
    let aliases = spec.host_aliases.unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            let names = alias.hostnames.unwrap_or_default().join("\t");
            out.push_str(&format!("{}\t{names}\n", alias.ip));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    #[test]
    fn pods_get_their_own_name_and_aliases() {
        let ip: IpAddr = "10.42.0.7".parse().unwrap();
        let plain = content(&pod(PodSpec::default()), &[ip], "cluster.local", "");
        assert!(plain.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(
            plain.ends_with("fe00::2\tip6-allrouters\n10.42.0.7\tweb-0\n"),
            "{plain}"
        );
        let with_sub = content(
            &pod(PodSpec {
                hostname: Some("db".into()),
                subdomain: Some("backend".into()),
                host_aliases: Some(vec![HostAlias {
                    ip: "10.1.2.3".into(),
                    hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
                }]),
                ..PodSpec::default()
            }),
            &[ip],
            "cluster.local",
            "",
        );
        assert!(
            with_sub.contains("10.42.0.7\tdb.backend.shop.svc.cluster.local\tdb\n"),
            "{with_sub}"
        );
        assert!(
            with_sub
                .ends_with("\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"),
            "{with_sub}"
        );
        let host = content(
            &pod(PodSpec {
                host_network: Some(true),
                ..PodSpec::default()
            }),
            &[ip],
            "cluster.local",
            "127.0.0.1 localhost\n192.0.2.2 machine",
        );
        assert_eq!(host, "127.0.0.1 localhost\n192.0.2.2 machine\n");
    }
}
