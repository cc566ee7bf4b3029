//! The nftables rules for a set of service ports, as text for `nft -f -`.
//!
//! The layout is kube-proxy's nftables mode (pkg/proxy/nftables, KEP-3866), in a table of
//! our own:
//! - base chains `nat-prerouting` and `nat-output` (priority dstnat) jump to `services`,
//!   which looks the destination up in the `service-ips` verdict map (ClusterIPs, external
//!   IPs, load-balancer IPs) and, for local destinations, `service-nodeports`;
//! - each service port has a `service-…` chain (Cluster policy), a `local-…` chain (Local
//!   policy endpoints only) and an `external-…` chain (NodePort, load balancer and external
//!   IP traffic); the policy chains pick an endpoint at random (`numgen random mod K == 0`
//!   cascades, uniform) after the session-affinity sets and DNAT to it in the same rule,
//!   recording affinity. Unlike kube-proxy there is no chain per endpoint: every
//!   transaction makes the kernel validate the whole jump graph (and `nft`, on the
//!   fallback path, dump every chain first), so a third of the chains costs a third of the
//!   time of each change;
//! - `filter-input`, `filter-forward` and `filter-output` send new connections to
//!   `endpoints-check`, which rejects (TCP reset, else ICMP port unreachable) or drops
//!   traffic to service ports without usable endpoints (`no-endpoint-services`,
//!   `no-endpoint-nodeports`);
//! - `nat-postrouting` masquerades packets marked by `mark-for-masquerade`, and hairpin
//!   traffic: DNATed packets whose source and destination are the same endpoint (pairs in
//!   the `hairpin` set, which the proxier counts over services sharing an endpoint), and pod
//!   traffic leaving the cluster CIDR (the pod network's egress NAT; pod to pod is never NATed).
//!
//! Each Service renders to a [`Rendered`]: its chains, affinity sets and map elements. A
//! transaction moves the kernel from the previously applied `Rendered` of each changed
//! service to the new one, touching nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::model::{Endpoint, ServicePort, categorize};

/// The mark bit of packets to masquerade (kube-proxy's default, bit 14).
const MASQUERADE_MARK: &str = "0x00004000";

/// Chains whose names carry a `/` are per service port; ours never do.
const REJECT_CHAIN: &str = "reject-chain";
const MARK_MASQ_CHAIN: &str = "mark-for-masquerade";
/// Source and destination pairs of endpoints reaching themselves through a service.
const HAIRPIN_SET: &str = "hairpin";

/// Where the rules go and how traffic is classified.
#[derive(Clone, Debug)]
pub struct RuleConfig {
    /// The nftables table (family `ip`).
    pub table: String,
    /// The pods' addresses (`--cluster-cidr`): traffic to a ClusterIP from elsewhere is
    /// masqueraded, and pod traffic to external destinations of a Local service
    /// short-circuits to its Cluster endpoints. `None`: no such rules, as kube-proxy
    /// without a local-traffic detector.
    pub cluster_cidr: Option<String>,
    /// Masquerade pod traffic leaving the cluster CIDR (to the nodes, the servers and
    /// beyond), the pod network's egress NAT (flannel's ipMasq, ip-masq-agent's default);
    /// traffic between pods keeps its source address. Needs `cluster_cidr`.
    pub pod_egress_masquerade: bool,
}

/// The verdict maps shared by all services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Map {
    ServiceIps,
    ServiceNodePorts,
    NoEndpointServices,
    NoEndpointNodePorts,
    /// Not a verdict map but a set: the ClusterIP ports with endpoints, whose traffic from
    /// outside the pod network is masqueraded (one rule for all, not one per service).
    ClusterIps,
}

impl Map {
    pub fn name(self) -> &'static str {
        match self {
            Map::ServiceIps => "service-ips",
            Map::ServiceNodePorts => "service-nodeports",
            Map::NoEndpointServices => "no-endpoint-services",
            Map::NoEndpointNodePorts => "no-endpoint-nodeports",
            Map::ClusterIps => "cluster-ips",
        }
    }

    const ALL: [Map; 5] = [
        Map::ServiceIps,
        Map::ServiceNodePorts,
        Map::NoEndpointServices,
        Map::NoEndpointNodePorts,
        Map::ClusterIps,
    ];

    fn key_type(self) -> &'static str {
        match self {
            Map::ServiceIps | Map::NoEndpointServices | Map::ClusterIps => {
                "ipv4_addr . inet_proto . inet_service"
            }
            Map::ServiceNodePorts | Map::NoEndpointNodePorts => "inet_proto . inet_service",
        }
    }
}

/// Everything one Service puts in the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Chain name → its rules, in order.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Affinity set name → its definition (`{ type …; flags …; timeout …; }`).
    pub sets: BTreeMap<String, String>,
    /// (map, key) → verdict (empty for the [`Map::ClusterIps`] set).
    pub elements: BTreeMap<(Map, String), String>,
    /// Endpoint addresses that may reach themselves through the service (hairpin): the
    /// `hairpin` set holds them for all services, counted by the proxier.
    pub hairpin: BTreeSet<Ipv4Addr>,
}

impl Rendered {
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
            && self.sets.is_empty()
            && self.elements.is_empty()
            && self.hairpin.is_empty()
    }
}

/// A short, stable hash of a name, so chain names stay unique and distinguishable
/// (FNV-1a, 40 bits in base32).
fn hash8(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..8)
        .map(|i| char::from(ALPHABET[((h >> (59 - 5 * i)) & 31) as usize]))
        .collect()
}

/// `HASH-namespace/name/protocol/port`: names and protocols never contain `/`, so the
/// parts stay apart, and a name with `/` is always one of ours.
fn port_base(sp: &ServicePort) -> String {
    let name = format!(
        "{}/{}/{}/{}",
        sp.namespace, sp.name, sp.protocol, sp.port_name
    );
    format!("{}-{name}", hash8(&name))
}

fn endpoint_base(sp: &ServicePort, ep: &Endpoint) -> String {
    let name = format!(
        "{}/{}/{}/{}__{}/{}",
        sp.namespace, sp.name, sp.protocol, sp.port_name, ep.ip, ep.port
    );
    format!("{}-{name}", hash8(&name))
}

/// Renders a Service's ports with their endpoints.
pub fn render_service(cfg: &RuleConfig, ports: &[(ServicePort, Vec<Endpoint>)]) -> Rendered {
    let mut out = Rendered::default();
    for (sp, endpoints) in ports {
        render_port(cfg, sp, endpoints, &mut out);
    }
    out
}

fn render_port(cfg: &RuleConfig, sp: &ServicePort, endpoints: &[Endpoint], out: &mut Rendered) {
    let c = categorize(sp, endpoints);
    let base = port_base(sp);
    let cluster_chain = format!("service-{base}");
    let local_chain = format!("local-{base}");
    let external_chain = format!("external-{base}");
    let proto = sp.protocol;
    let ip_key = |ip: &dyn std::fmt::Display| format!("{ip} . {proto} . {}", sp.port);

    let uses_cluster_chain = !c.cluster.is_empty() && sp.uses_cluster_endpoints();
    let uses_local_chain = !c.local.is_empty() && sp.uses_local_endpoints();
    let (internal_chain, has_internal) = if sp.internal_local {
        (&local_chain, !c.local.is_empty())
    } else {
        (&cluster_chain, c.has_any)
    };
    let external_local = sp.external_policy_local();
    let (external_policy_chain, has_external) = if external_local {
        (&local_chain, c.has_any && !c.local.is_empty())
    } else {
        (&cluster_chain, c.has_any)
    };
    let uses_external_chain = c.has_any && sp.externally_accessible();
    // No endpoints anywhere: refuse at once. Endpoints elsewhere only (Local policy): drop
    // what was not short-circuited, as kube-proxy does.
    let no_endpoint_verdict = if c.has_any {
        "drop".to_owned()
    } else {
        format!("goto {REJECT_CHAIN}")
    };

    // ClusterIP.
    let key = ip_key(&sp.cluster_ip);
    if has_internal {
        out.elements
            .insert((Map::ServiceIps, key), format!("goto {internal_chain}"));
    } else {
        out.elements
            .insert((Map::NoEndpointServices, key), no_endpoint_verdict.clone());
    }
    // External IPs and load-balancer ingress IPs.
    for ip in sp.external_ips.iter().chain(&sp.load_balancer_ips) {
        let key = ip_key(ip);
        if uses_external_chain {
            out.elements.insert(
                (Map::ServiceIps, key.clone()),
                format!("goto {external_chain}"),
            );
        }
        if !has_external {
            out.elements
                .insert((Map::NoEndpointServices, key), no_endpoint_verdict.clone());
        }
    }
    // NodePort.
    if sp.node_port != 0 {
        let key = format!("{proto} . {}", sp.node_port);
        if uses_external_chain {
            out.elements.insert(
                (Map::ServiceNodePorts, key.clone()),
                format!("goto {external_chain}"),
            );
        }
        if !has_external {
            out.elements
                .insert((Map::NoEndpointNodePorts, key), no_endpoint_verdict.clone());
        }
    }

    // Traffic to the ClusterIP from outside the pod network is masqueraded, so replies come
    // back through this node even when the endpoint is elsewhere.
    if has_internal && cfg.cluster_cidr.is_some() {
        out.elements
            .insert((Map::ClusterIps, ip_key(&sp.cluster_ip)), String::new());
    }

    if uses_external_chain {
        let mut rules = Vec::new();
        if !external_local {
            // Cluster policy may send it to another node: masquerade.
            rules.push(format!("jump {MARK_MASQ_CHAIN}"));
        } else if uses_cluster_chain {
            // Pods and the node itself reach external destinations as if going out and back
            // in through a load balancer: no traffic policy applies.
            if let Some(cidr) = &cfg.cluster_cidr {
                rules.push(format!("ip saddr {cidr} goto {cluster_chain}"));
            }
            rules.push(format!("fib saddr type local jump {MARK_MASQ_CHAIN}"));
            rules.push(format!("fib saddr type local goto {cluster_chain}"));
        }
        if has_external {
            rules.push(format!("goto {external_policy_chain}"));
        }
        out.chains.insert(external_chain.clone(), rules);
    }

    if let Some(timeout) = sp.affinity_timeout {
        for ep in &c.reachable {
            out.sets.insert(
                format!("affinity-{}", endpoint_base(sp, ep)),
                format!("{{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"),
            );
        }
    }

    let mut policy_chain = |chain: &String, endpoints: &[Endpoint]| {
        let mut rules = Vec::new();
        // Each endpoint's DNAT is inline (no chain per endpoint: the kernel validates the
        // whole jump graph on every transaction, and nft dumps every chain first).
        let dnat = |ep: &Endpoint| {
            let mut rule = format!("meta l4proto {proto} ");
            if sp.affinity_timeout.is_some() {
                let _ = write!(
                    rule,
                    "update @affinity-{} {{ ip saddr }} ",
                    endpoint_base(sp, ep)
                );
            }
            let _ = write!(rule, "dnat to {}:{}", ep.ip, ep.port);
            rule
        };
        if sp.affinity_timeout.is_some() {
            for ep in endpoints {
                let base = endpoint_base(sp, ep);
                rules.push(format!("ip saddr @affinity-{base} {}", dnat(ep)));
            }
        }
        // Uniform choice as a cascade: endpoint i with probability 1/(N-i) among those
        // left. kube-proxy's nftables mode uses one anonymous `numgen … vmap` per service
        // instead, but the kernel allocates anonymous sets' names by scanning every set of
        // the table, which makes a transaction of 10,000 services take ~25 s instead of ~1 s.
        let n = endpoints.len();
        for (i, ep) in endpoints.iter().enumerate() {
            if i + 1 < n {
                rules.push(format!("numgen random mod {} == 0 {}", n - i, dnat(ep)));
            } else {
                rules.push(dnat(ep));
            }
        }
        out.chains.insert(chain.clone(), rules);
    };
    if uses_cluster_chain {
        policy_chain(&cluster_chain, &c.cluster);
    }
    if uses_local_chain {
        policy_chain(&local_chain, &c.local);
    }

    // Hairpin: a pod reaching itself through the service must see the reply come from the
    // service, so `nat-postrouting` masquerades DNATed packets whose source and destination
    // are the same endpoint.
    out.hairpin.extend(c.reachable.iter().map(|ep| ep.ip));
}

/// How a transaction treats what is already in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Delete the table and create it afresh, in the same transaction (start-up, and the
    /// fallback when anything else fails): no moment without rules.
    Recreate,
    /// Rewrite every chain and map of the table in place (the periodic resync); affinity
    /// sets keep their entries.
    Full,
    /// Change only what differs between the old and new rendering of the given services.
    Partial,
}

/// A transaction's text and the chains it emptied, to be deleted by a later one (kernels
/// before 6.2 refuse to delete a chain in the transaction that drops the last map element
/// pointing at it).
#[derive(Debug, Default)]
pub struct Transaction {
    pub text: String,
    pub emptied_chains: Vec<String>,
}

/// Changes to the `hairpin` set, whose addresses the proxier counts over all services (two
/// services may share an endpoint). Outside partial mode the set is refilled: `add` holds
/// every address.
#[derive(Debug, Default)]
pub struct HairpinChange {
    pub add: Vec<Ipv4Addr>,
    pub delete: Vec<Ipv4Addr>,
}

/// Builds the transaction taking each service from `old` to `new` (an empty [`Rendered`]
/// for a service that appears or goes). In `Recreate` mode `old` is ignored.
pub fn transaction(
    cfg: &RuleConfig,
    mode: Mode,
    changes: &[(&Rendered, &Rendered)],
    hairpin: &HairpinChange,
) -> Transaction {
    let t = &cfg.table;
    let mut text = String::new();
    let empty = Rendered::default();
    if mode == Mode::Recreate {
        let _ = writeln!(text, "add table ip {t}\ndelete table ip {t}");
    }
    if mode != Mode::Partial {
        skeleton(cfg, &mut text);
    }
    let changes: Vec<(&Rendered, &Rendered)> = changes
        .iter()
        .map(|(old, new)| match mode {
            Mode::Recreate => (&empty, *new),
            _ => (*old, *new),
        })
        .collect();
    // Which chains each service rewrites: every chain unless partial, then only those that
    // differ, or all when an affinity set's definition changed (its rules must go before
    // the set can be replaced).
    let rewrites: Vec<Vec<&String>> = changes
        .iter()
        .map(|(old, new)| {
            let redefined = new
                .sets
                .iter()
                .any(|(name, def)| old.sets.get(name).is_some_and(|d| d != def));
            new.chains
                .iter()
                .filter(|(name, rules)| {
                    mode != Mode::Partial || redefined || old.chains.get(*name) != Some(*rules)
                })
                .map(|(name, _)| name)
                .collect()
        })
        .collect();

    let mut emptied_chains = Vec::new();
    // 1. Map elements that go or change (maps were flushed already outside partial mode).
    if mode == Mode::Partial {
        let mut gone: BTreeMap<Map, Vec<&str>> = BTreeMap::new();
        for (old, new) in &changes {
            for ((map, key), value) in &old.elements {
                if new.elements.get(&(*map, key.clone())) != Some(value) {
                    gone.entry(*map).or_default().push(key);
                }
            }
        }
        write_elements(&mut text, "delete", t, &gone);
        write_hairpin(&mut text, "delete", t, &hairpin.delete);
    }
    // 2. Chains exist before anything points at them.
    for (_, new) in &changes {
        for name in new.chains.keys() {
            let _ = writeln!(text, "add chain ip {t} {name}");
        }
    }
    // 3. Empty the chains to rewrite and the chains that go.
    for ((old, new), rewrite) in changes.iter().zip(&rewrites) {
        for name in rewrite {
            if mode != Mode::Recreate {
                let _ = writeln!(text, "flush chain ip {t} {name}");
            }
        }
        for name in old.chains.keys() {
            if !new.chains.contains_key(name) {
                let _ = writeln!(text, "flush chain ip {t} {name}");
                emptied_chains.push(name.clone());
            }
        }
    }
    // 4. Affinity sets that go or change, now that no rule refers to them; then new ones.
    for (old, new) in &changes {
        for (name, def) in &old.sets {
            if new.sets.get(name) != Some(def) {
                let _ = writeln!(text, "delete set ip {t} {name}");
            }
        }
    }
    for (old, new) in &changes {
        for (name, def) in &new.sets {
            // Outside partial mode an unchanged set is added too: a no-op that keeps its
            // entries, or creates it if it went missing.
            if mode != Mode::Partial || old.sets.get(name) != Some(def) {
                let _ = writeln!(text, "add set ip {t} {name} {def}");
            }
        }
    }
    // 5. The rules of the rewritten chains.
    for ((_, new), rewrite) in changes.iter().zip(&rewrites) {
        for name in rewrite {
            for rule in &new.chains[*name] {
                let _ = writeln!(text, "add rule ip {t} {name} {rule}");
            }
        }
    }
    // 6. Map elements that are new or changed.
    let mut added: BTreeMap<Map, Vec<String>> = BTreeMap::new();
    for (old, new) in &changes {
        for ((map, key), value) in &new.elements {
            if mode != Mode::Partial || old.elements.get(&(*map, key.clone())) != Some(value) {
                let element = if value.is_empty() {
                    key.clone()
                } else {
                    format!("{key} : {value}")
                };
                added.entry(*map).or_default().push(element);
            }
        }
    }
    write_elements(&mut text, "add", t, &added);
    write_hairpin(&mut text, "add", t, &hairpin.add);
    Transaction {
        text,
        emptied_chains,
    }
}

/// Map elements per command: one `add element` (or `delete element`) command per map and
/// this many elements, as nft spends far less time on one command of many elements than on
/// many commands of one (~20% of a full sync of 10,000 services).
const ELEMENTS_PER_COMMAND: usize = 1000;

fn write_elements<S: AsRef<str>>(
    text: &mut String,
    verb: &str,
    table: &str,
    elements: &BTreeMap<Map, Vec<S>>,
) {
    for (map, items) in elements {
        write_set_elements(text, verb, table, map.name(), items);
    }
}

/// The `hairpin` set's elements: each address paired with itself.
fn write_hairpin(text: &mut String, verb: &str, table: &str, addresses: &[Ipv4Addr]) {
    let pairs: Vec<String> = addresses.iter().map(|ip| format!("{ip} . {ip}")).collect();
    write_set_elements(text, verb, table, HAIRPIN_SET, &pairs);
}

fn write_set_elements<S: AsRef<str>>(
    text: &mut String,
    verb: &str,
    table: &str,
    set: &str,
    items: &[S],
) {
    for chunk in items.chunks(ELEMENTS_PER_COMMAND) {
        let _ = write!(text, "{verb} element ip {table} {set} {{ ");
        for (i, item) in chunk.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            text.push_str(item.as_ref());
        }
        text.push_str(" }\n");
    }
}

/// Deletes chains emptied by an earlier transaction.
pub fn delete_chains(cfg: &RuleConfig, chains: &[String]) -> String {
    let mut text = String::new();
    for name in chains {
        let _ = writeln!(text, "delete chain ip {} {name}", cfg.table);
    }
    text
}

/// The table, its base chains, top-level chains and maps, all emptied and refilled (maps
/// are left empty for the services to fill).
fn skeleton(cfg: &RuleConfig, text: &mut String) {
    let t = &cfg.table;
    let _ = writeln!(text, "add table ip {t}");
    // Filtering sees destinations before DNAT; reject is allowed only in input, forward
    // and output.
    let base = [
        ("filter-input", "filter", "input", -110),
        ("filter-forward", "filter", "forward", -110),
        ("filter-output", "filter", "output", -110),
        ("nat-prerouting", "nat", "prerouting", -100),
        ("nat-output", "nat", "output", -100),
        ("nat-postrouting", "nat", "postrouting", 100),
    ];
    for (name, kind, hook, priority) in base {
        let _ = writeln!(
            text,
            "add chain ip {t} {name} {{ type {kind} hook {hook} priority {priority}; policy accept; }}\nflush chain ip {t} {name}"
        );
    }
    for name in [
        "services",
        "endpoints-check",
        REJECT_CHAIN,
        MARK_MASQ_CHAIN,
        "masquerading",
    ] {
        let _ = writeln!(text, "add chain ip {t} {name}\nflush chain ip {t} {name}");
    }
    for map in Map::ALL {
        let (kind, data) = match map {
            Map::ClusterIps => ("set", ""),
            _ => ("map", " : verdict"),
        };
        let _ = writeln!(
            text,
            "add {kind} ip {t} {} {{ type {}{data}; }}\nflush {kind} ip {t} {}",
            map.name(),
            map.key_type(),
            map.name()
        );
    }
    let _ = writeln!(
        text,
        "add set ip {t} {HAIRPIN_SET} {{ type ipv4_addr . ipv4_addr; }}\nflush set ip {t} {HAIRPIN_SET}"
    );
    if let Some(cidr) = &cfg.cluster_cidr {
        let _ = writeln!(
            text,
            "add rule ip {t} services ip saddr != {cidr} ip daddr . meta l4proto . th dport @{} jump {MARK_MASQ_CHAIN}",
            Map::ClusterIps.name()
        );
    }
    let mut rules = vec![
        ("filter-input", "ct state new jump endpoints-check".to_owned()),
        ("filter-forward", "ct state new jump endpoints-check".to_owned()),
        ("filter-output", "ct state new jump endpoints-check".to_owned()),
        ("nat-prerouting", "jump services".to_owned()),
        ("nat-output", "jump services".to_owned()),
        ("nat-postrouting", "jump masquerading".to_owned()),
        (
            "services",
            "ip daddr . meta l4proto . th dport vmap @service-ips".to_owned(),
        ),
        (
            "services",
            "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
                .to_owned(),
        ),
        (
            "endpoints-check",
            "ip daddr . meta l4proto . th dport vmap @no-endpoint-services".to_owned(),
        ),
        (
            "endpoints-check",
            "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports"
                .to_owned(),
        ),
        (REJECT_CHAIN, "meta l4proto tcp reject with tcp reset".to_owned()),
        (REJECT_CHAIN, "reject".to_owned()),
        (
            MARK_MASQ_CHAIN,
            format!("meta mark set meta mark | {MASQUERADE_MARK}"),
        ),
        (
            "masquerading",
            format!("ct status dnat ip saddr . ip daddr @{HAIRPIN_SET} jump {MARK_MASQ_CHAIN}"),
        ),
        (
            "masquerading",
            format!("meta mark & {MASQUERADE_MARK} == 0 return"),
        ),
        (
            "masquerading",
            format!("meta mark set meta mark ^ {MASQUERADE_MARK}"),
        ),
        ("masquerading", "masquerade fully-random".to_owned()),
    ];
    if cfg.pod_egress_masquerade
        && let Some(cidr) = &cfg.cluster_cidr
    {
        rules.push((
            "nat-postrouting",
            format!("ip saddr {cidr} ip daddr != {cidr} ip daddr != 224.0.0.0/4 masquerade"),
        ));
    }
    for (chain, rule) in rules {
        let _ = writeln!(text, "add rule ip {t} {chain} {rule}");
    }
}

/// Whether a chain name is one of the per-service-port chains.
pub fn is_service_chain(name: &str) -> bool {
    name.contains('/')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::Ipv4Addr;

    use super::*;

    fn cfg() -> RuleConfig {
        RuleConfig {
            table: "t".into(),
            cluster_cidr: Some("10.244.0.0/16".into()),
            pod_egress_masquerade: true,
        }
    }

    fn port(name: &str) -> ServicePort {
        ServicePort {
            namespace: "ns".into(),
            name: name.into(),
            port_name: "http".into(),
            protocol: "tcp",
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 80,
            node_port: 0,
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_timeout: None,
            external_local: false,
            internal_local: false,
        }
    }

    fn ep(last: u8, ready: bool, local: bool) -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::new(10, 244, 1, last),
            port: 8080,
            ready,
            serving: ready,
            terminating: false,
            local,
        }
    }

    /// Chain names with their hash replaced by `H`, for readable expectations.
    fn unhash(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find(['-']) {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
            let word: String = rest.chars().take(9).collect();
            if word.len() == 9
                && word.ends_with('-')
                && word[..8]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
            {
                out.push_str("H-");
                rest = &rest[9..];
            }
        }
        out.push_str(rest);
        out
    }

    fn flat(r: &Rendered) -> Vec<String> {
        let mut lines = Vec::new();
        for ((map, key), value) in &r.elements {
            if value.is_empty() {
                lines.push(format!("{} {key}", map.name()));
            } else {
                lines.push(format!("{} {key} : {value}", map.name()));
            }
        }
        for (name, def) in &r.sets {
            lines.push(format!("set {name} {def}"));
        }
        for (name, rules) in &r.chains {
            for rule in rules {
                lines.push(format!("{name}: {rule}"));
            }
        }
        for ip in &r.hairpin {
            lines.push(format!("hairpin {ip}"));
        }
        lines.iter().map(|l| unhash(l)).collect()
    }

    #[test]
    fn cluster_ip_with_two_endpoints() {
        let r = render_service(
            &cfg(),
            &[(port("web"), vec![ep(1, true, false), ep(2, true, true)])],
        );
        assert_eq!(
            flat(&r),
            vec![
                "service-ips 10.96.0.10 . tcp . 80 : goto service-H-ns/web/tcp/http",
                // Masqueraded from outside the pod network.
                "cluster-ips 10.96.0.10 . tcp . 80",
                "service-H-ns/web/tcp/http: numgen random mod 2 == 0 meta l4proto tcp dnat to 10.244.1.1:8080",
                "service-H-ns/web/tcp/http: meta l4proto tcp dnat to 10.244.1.2:8080",
                // Both endpoints may reach themselves through the service.
                "hairpin 10.244.1.1",
                "hairpin 10.244.1.2",
            ]
        );
    }

    #[test]
    fn no_ready_endpoints_reject_at_once() {
        let mut p = port("web");
        p.node_port = 30080;
        let r = render_service(&cfg(), &[(p, vec![ep(1, false, true)])]);
        assert_eq!(
            flat(&r),
            vec![
                "no-endpoint-services 10.96.0.10 . tcp . 80 : goto reject-chain",
                "no-endpoint-nodeports tcp . 30080 : goto reject-chain",
            ]
        );
    }

    #[test]
    fn nodeport_and_load_balancer_go_through_the_external_chain_and_masquerade() {
        let mut p = port("web");
        p.node_port = 30080;
        p.load_balancer_ips = vec![Ipv4Addr::new(192, 0, 2, 50)];
        let r = render_service(&cfg(), &[(p, vec![ep(1, true, false)])]);
        let lines = flat(&r);
        for expected in [
            "service-ips 192.0.2.50 . tcp . 80 : goto external-H-ns/web/tcp/http",
            "service-nodeports tcp . 30080 : goto external-H-ns/web/tcp/http",
            "external-H-ns/web/tcp/http: jump mark-for-masquerade",
            "external-H-ns/web/tcp/http: goto service-H-ns/web/tcp/http",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} missing from {lines:#?}"
            );
        }
    }

    #[test]
    fn external_local_without_local_endpoints_drops_external_traffic() {
        let mut p = port("web");
        p.node_port = 30080;
        p.external_local = true;
        let r = render_service(&cfg(), &[(p, vec![ep(1, true, false)])]);
        assert_eq!(
            flat(&r)
                .into_iter()
                .filter(|l| l.starts_with("external")
                    || l.starts_with("no-endpoint")
                    || l.starts_with("service-nodeports"))
                .collect::<Vec<_>>(),
            vec![
                "service-nodeports tcp . 30080 : goto external-H-ns/web/tcp/http",
                "no-endpoint-nodeports tcp . 30080 : drop",
                "external-H-ns/web/tcp/http: ip saddr 10.244.0.0/16 goto service-H-ns/web/tcp/http",
                "external-H-ns/web/tcp/http: fib saddr type local jump mark-for-masquerade",
                "external-H-ns/web/tcp/http: fib saddr type local goto service-H-ns/web/tcp/http",
            ]
        );
    }

    #[test]
    fn internal_local_uses_the_local_chain() {
        let mut p = port("web");
        p.internal_local = true;
        let r = render_service(
            &cfg(),
            &[(p.clone(), vec![ep(1, true, false), ep(2, true, true)])],
        );
        let lines = flat(&r);
        assert!(lines.contains(
            &"service-ips 10.96.0.10 . tcp . 80 : goto local-H-ns/web/tcp/http".to_owned()
        ));
        assert!(lines.contains(
            &"local-H-ns/web/tcp/http: meta l4proto tcp dnat to 10.244.1.2:8080".to_owned()
        ));
        assert!(
            !lines.iter().any(|l| l.contains("10.244.1.1")),
            "{lines:#?}"
        );
        // Endpoints on other nodes only: the ClusterIP drops (not rejects) here.
        let r = render_service(&cfg(), &[(p, vec![ep(1, true, false)])]);
        assert_eq!(
            flat(&r),
            vec!["no-endpoint-services 10.96.0.10 . tcp . 80 : drop"]
        );
    }

    #[test]
    fn session_affinity_sets() {
        let mut p = port("web");
        p.affinity_timeout = Some(60);
        let r = render_service(&cfg(), &[(p, vec![ep(1, true, false)])]);
        let lines = flat(&r);
        for expected in [
            "set affinity-H-ns/web/tcp/http__10.244.1.1/8080 { type ipv4_addr; flags dynamic,timeout; timeout 60s; }",
            // A known client goes back to its endpoint, refreshing the entry; a new one is
            // recorded where it goes.
            "service-H-ns/web/tcp/http: ip saddr @affinity-H-ns/web/tcp/http__10.244.1.1/8080 meta l4proto tcp update @affinity-H-ns/web/tcp/http__10.244.1.1/8080 { ip saddr } dnat to 10.244.1.1:8080",
            "service-H-ns/web/tcp/http: meta l4proto tcp update @affinity-H-ns/web/tcp/http__10.244.1.1/8080 { ip saddr } dnat to 10.244.1.1:8080",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} missing from {lines:#?}"
            );
        }
    }

    #[test]
    fn recreate_replaces_the_table_in_one_transaction() {
        let r = render_service(&cfg(), &[(port("web"), vec![ep(1, true, false)])]);
        let tx = transaction(
            &cfg(),
            Mode::Recreate,
            &[(&Rendered::default(), &r)],
            &HairpinChange::default(),
        );
        let lines: Vec<&str> = tx.text.lines().collect();
        assert_eq!(
            &lines[..3],
            &["add table ip t", "delete table ip t", "add table ip t"]
        );
        assert!(tx.text.contains(
            "add chain ip t nat-output { type nat hook output priority -100; policy accept; }"
        ));
        assert!(
            tx.text
                .contains("add rule ip t reject-chain meta l4proto tcp reject with tcp reset")
        );
        assert!(tx.emptied_chains.is_empty());
    }

    #[test]
    fn pod_traffic_is_masqueraded_only_when_it_leaves_the_cluster_cidr() {
        let rule = "add rule ip t nat-postrouting ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade";
        let tx = transaction(&cfg(), Mode::Recreate, &[], &HairpinChange::default());
        assert!(tx.text.contains(rule), "{}", tx.text);
        let off = RuleConfig {
            pod_egress_masquerade: false,
            ..cfg()
        };
        let tx = transaction(&off, Mode::Recreate, &[], &HairpinChange::default());
        assert!(!tx.text.contains("224.0.0.0/4 masquerade"));
        let no_cidr = RuleConfig {
            cluster_cidr: None,
            ..cfg()
        };
        let tx = transaction(&no_cidr, Mode::Recreate, &[], &HairpinChange::default());
        assert!(!tx.text.contains("224.0.0.0/4 masquerade"));
    }

    #[test]
    fn partial_transaction_touches_only_what_changed() {
        let c = cfg();
        let other = render_service(&c, &[(port("other"), vec![ep(9, true, false)])]);
        let old = render_service(
            &c,
            &[(port("web"), vec![ep(1, true, false), ep(2, true, false)])],
        );
        let new = render_service(
            &c,
            &[(port("web"), vec![ep(1, true, false), ep(2, false, false)])],
        );
        let tx = transaction(
            &c,
            Mode::Partial,
            &[(&old, &new)],
            &HairpinChange::default(),
        );
        let text = unhash(&tx.text);
        assert!(!text.contains("other"), "{text}");
        assert!(!text.contains("table"), "{text}");
        // Only the service chain is rewritten: the map element points at the same chain and
        // the hairpin set changes only as the proxier counts it.
        assert_eq!(
            text,
            "add chain ip t service-H-ns/web/tcp/http\n\
             flush chain ip t service-H-ns/web/tcp/http\n\
             add rule ip t service-H-ns/web/tcp/http meta l4proto tcp dnat to 10.244.1.1:8080\n"
        );
        assert!(tx.emptied_chains.is_empty());
        let hairpin = HairpinChange {
            add: vec![Ipv4Addr::new(10, 244, 1, 3)],
            delete: vec![Ipv4Addr::new(10, 244, 1, 2)],
        };
        let text = transaction(&c, Mode::Partial, &[(&old, &new)], &hairpin).text;
        assert!(
            text.starts_with("delete element ip t hairpin { 10.244.1.2 . 10.244.1.2 }\n"),
            "{text}"
        );
        assert!(
            text.ends_with("add element ip t hairpin { 10.244.1.3 . 10.244.1.3 }\n"),
            "{text}"
        );
        drop(other);

        // The last endpoint goes: the ClusterIP moves to the reject map.
        let none = render_service(&c, &[(port("web"), vec![])]);
        let tx = transaction(
            &c,
            Mode::Partial,
            &[(&new, &none)],
            &HairpinChange::default(),
        );
        let text = unhash(&tx.text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "delete element ip t service-ips { 10.96.0.10 . tcp . 80 }"
        );
        assert_eq!(
            *lines.last().unwrap(),
            "add element ip t no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }"
        );
        assert_eq!(tx.emptied_chains.len(), 1);

        // A service that goes removes everything it had.
        let tx = transaction(
            &c,
            Mode::Partial,
            &[(&none, &Rendered::default())],
            &HairpinChange::default(),
        );
        assert_eq!(
            tx.text,
            "delete element ip t no-endpoint-services { 10.96.0.10 . tcp . 80 }\n"
        );
    }

    #[test]
    fn changed_affinity_timeout_replaces_sets_after_flushing_their_rules() {
        let c = cfg();
        let mut p = port("web");
        p.affinity_timeout = Some(60);
        let old = render_service(&c, &[(p.clone(), vec![ep(1, true, false)])]);
        p.affinity_timeout = Some(120);
        let new = render_service(&c, &[(p, vec![ep(1, true, false)])]);
        let text = unhash(
            &transaction(
                &c,
                Mode::Partial,
                &[(&old, &new)],
                &HairpinChange::default(),
            )
            .text,
        );
        let pos = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{needle} not in {text}"))
        };
        let flush = pos("flush chain ip t service-H-ns/web/tcp/http\n");
        let delete = pos("delete set ip t affinity-H-ns/web/tcp/http__10.244.1.1/8080");
        let add = pos(
            "add set ip t affinity-H-ns/web/tcp/http__10.244.1.1/8080 { type ipv4_addr; flags dynamic,timeout; timeout 120s; }",
        );
        let rule = pos("add rule ip t service-H-ns/web/tcp/http ip saddr @affinity");
        assert!(flush < delete && delete < add && add < rule, "{text}");
    }

    #[test]
    fn hash_is_stable_and_short() {
        assert_eq!(hash8("ns/web/tcp/http"), hash8("ns/web/tcp/http"));
        assert_ne!(hash8("ns/web/tcp/http"), hash8("ns/web/tcp/https"));
        assert_eq!(hash8("x").len(), 8);
    }
}
