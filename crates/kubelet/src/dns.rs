//! A pod's resolver configuration, as kube's kubelet makes it (pkg/kubelet/network/dns):
//! `dnsPolicy` ClusterFirst (the default) points pods at cluster DNS with the search paths
//! `NS.svc.DOMAIN svc.DOMAIN DOMAIN` before the host's and `ndots:5`; host-network pods, and
//! any pod when no cluster DNS is configured, get the host's resolv.conf (Default), unless
//! ClusterFirstWithHostNet; None starts empty. `spec.dnsConfig` is merged in last.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

/// kube's limits (validation.MaxDNSNameservers, MaxDNSSearchPaths).
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;

/// What goes in the pod's resolv.conf (CRI `DNSConfig`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// The node's resolver and the cluster's DNS.
#[derive(Clone, Debug, Default)]
pub struct DnsSettings {
    /// `--cluster-dns`: the kube-dns Service address(es).
    pub cluster_dns: Vec<IpAddr>,
    /// `--cluster-domain`.
    pub cluster_domain: String,
    /// The host's resolv.conf.
    pub host: DnsConfig,
}

/// Parses a resolv.conf (nameserver, search/domain, options lines).
pub fn parse_resolv_conf(text: &str) -> DnsConfig {
    let mut config = DnsConfig::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => config.servers.extend(words.next().map(str::to_owned)),
            Some("search") | Some("domain") => {
                config.searches = words.map(str::to_owned).collect();
            }
            Some("options") => config.options.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    config
}

fn push_unique(into: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        if !into.contains(&item) {
            into.push(item);
        }
    }
}

/// The option's name: `ndots` of `ndots:5`.
fn option_name(option: &str) -> &str {
    option.split(':').next().unwrap_or(option)
}

/// The resolver configuration of `pod` on this node.
pub fn pod_dns(pod: &Pod, settings: &DnsSettings) -> DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster_first = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut config = if policy == "None" {
        DnsConfig::default()
    } else if cluster_first && !settings.cluster_dns.is_empty() {
        let domain = settings.cluster_domain.trim_end_matches('.');
        let mut searches = vec![
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.to_owned(),
        ];
        push_unique(&mut searches, settings.host.searches.iter().cloned());
        DnsConfig {
            servers: settings.cluster_dns.iter().map(IpAddr::to_string).collect(),
            searches,
            options: vec!["ndots:5".to_owned()],
        }
    } else {
        settings.host.clone()
    };
    if let Some(extra) = &spec.dns_config {
        push_unique(
            &mut config.servers,
            extra.nameservers.iter().flatten().cloned(),
        );
        push_unique(
            &mut config.searches,
            extra.searches.iter().flatten().cloned(),
        );
        for option in extra.options.iter().flatten() {
            let text = match &option.value {
                Some(value) => format!("{}:{value}", option.name.as_deref().unwrap_or("")),
                None => option.name.clone().unwrap_or_default(),
            };
            let name = option_name(&text).to_owned();
            config.options.retain(|o| option_name(o) != name);
            config.options.push(text);
        }
    }
    config.servers.truncate(MAX_NAMESERVERS);
    config.searches.truncate(MAX_SEARCHES);
    config
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn settings() -> DnsSettings {
        DnsSettings {
            cluster_dns: vec!["10.43.0.10".parse().unwrap()],
            cluster_domain: "cluster.local".into(),
            host: parse_resolv_conf("nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"),
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": spec}),
        )
        .unwrap()
    }

    #[test]
    fn cluster_first_points_at_cluster_dns() {
        let got = pod_dns(&pod(json!({"containers": []})), &settings());
        assert_eq!(got.servers, ["10.43.0.10"]);
        assert_eq!(
            got.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(got.options, ["ndots:5"]);
    }

    #[test]
    fn host_network_and_default_use_the_hosts_resolver() {
        let host = pod_dns(
            &pod(json!({"containers": [], "hostNetwork": true})),
            &settings(),
        );
        assert_eq!(host, settings().host);
        let with_net = pod_dns(
            &pod(
                json!({"containers": [], "hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}),
            ),
            &settings(),
        );
        assert_eq!(with_net.servers, ["10.43.0.10"]);
        let default = pod_dns(
            &pod(json!({"containers": [], "dnsPolicy": "Default"})),
            &settings(),
        );
        assert_eq!(default.servers, ["192.0.2.53"]);
        // No cluster DNS configured: ClusterFirst falls back to the host's.
        let mut none = settings();
        none.cluster_dns.clear();
        assert_eq!(
            pod_dns(&pod(json!({"containers": []})), &none).servers,
            ["192.0.2.53"]
        );
    }

    #[test]
    fn dns_config_is_merged_and_none_starts_empty() {
        let got = pod_dns(
            &pod(json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
                "nameservers": ["1.1.1.1"], "searches": ["a.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}})),
            &settings(),
        );
        assert_eq!(got.servers, ["1.1.1.1"]);
        assert_eq!(got.searches, ["a.example"]);
        assert_eq!(got.options, ["ndots:2", "edns0"]);
        // Over ClusterFirst: ndots replaced, servers appended.
        let got = pod_dns(
            &pod(json!({"containers": [], "dnsConfig": {
                "nameservers": ["10.43.0.10", "9.9.9.9"],
                "options": [{"name": "ndots", "value": "1"}]}})),
            &settings(),
        );
        assert_eq!(got.servers, ["10.43.0.10", "9.9.9.9"]);
        assert_eq!(got.options, ["ndots:1"]);
    }
}
