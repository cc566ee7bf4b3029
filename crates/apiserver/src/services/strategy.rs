//! What kube-apiserver's Service REST storage does around a write (`pkg/registry/core/
//! service/storage`: `beginCreate`, `beginUpdate`, `afterDelete`, and the strategy's
//! `dropTypeDependentFields`), on Services held as JSON.
//!
//! Allocation happens before validation, as in kube; it returns a [`Txn`] that the caller
//! commits once the object is stored (releasing what the change gave up) or reverts when
//! anything failed (releasing what it took). It is better to leak than to hand out twice:
//! releases come after the store write, and the repair pass frees leaks.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use rkube_api::validation::{FieldError, go_quote, go_string_slice};
use serde_json::{Map, Value, json};

use super::ServiceNetwork;
use super::allocator::AllocError;
use crate::errors::ApiError;

/// What one write allocated and what it gives up when it succeeds.
#[derive(Default, Debug)]
pub struct Txn {
    dry_run: bool,
    allocated_ips: Vec<Ipv4Addr>,
    allocated_ports: Vec<i64>,
    release_ips: Vec<Ipv4Addr>,
    release_ports: Vec<i64>,
}

impl Txn {
    /// The write is stored: free what the old object held and the new one does not.
    pub async fn commit(self, net: &ServiceNetwork) {
        if self.dry_run {
            return;
        }
        net.release_ips(&self.release_ips).await;
        net.release_ports(&self.release_ports).await;
    }

    /// The write failed: free what it took.
    pub async fn revert(self, net: &ServiceNetwork) {
        if self.dry_run {
            return;
        }
        net.release_ips(&self.allocated_ips).await;
        net.release_ports(&self.allocated_ports).await;
    }

    async fn alloc_port(
        &mut self,
        net: &ServiceNetwork,
        requested: Option<i64>,
    ) -> Result<i64, AllocError> {
        if self.dry_run {
            return match requested {
                Some(port) => {
                    if self.allocated_ports.contains(&port) {
                        return Err(AllocError::Allocated);
                    }
                    net.check_port(port).await?;
                    self.allocated_ports.push(port);
                    Ok(port)
                }
                None => {
                    // kube's dry run makes up a port past the last one it took.
                    let port = self.allocated_ports.iter().max().map_or(32769, |p| p + 1);
                    self.allocated_ports.push(port);
                    Ok(port)
                }
            };
        }
        let port = net.allocate_port(requested).await?;
        self.allocated_ports.push(port);
        Ok(port)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the spec
// ---------------------------------------------------------------------------------------------

fn spec(svc: &Value) -> &Value {
    &svc["spec"]
}

fn spec_mut(svc: &mut Value) -> &mut Map<String, Value> {
    if !svc.is_object() {
        *svc = json!({});
    }
    if !svc["spec"].is_object() {
        svc["spec"] = json!({});
    }
    match svc.get_mut("spec") {
        Some(Value::Object(spec)) => spec,
        _ => unreachable!("spec was just made an object"),
    }
}

fn svc_type(svc: &Value) -> &str {
    spec(svc)["type"].as_str().unwrap_or("ClusterIP")
}

fn name(svc: &Value) -> &str {
    svc["metadata"]["name"].as_str().unwrap_or("")
}

fn cluster_ip(svc: &Value) -> &str {
    spec(svc)["clusterIP"].as_str().unwrap_or("")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn cluster_ips(svc: &Value) -> Vec<String> {
    strings(&spec(svc)["clusterIPs"])
}

fn families(svc: &Value) -> Vec<String> {
    strings(&spec(svc)["ipFamilies"])
}

fn set_list(svc: &mut Value, field: &str, values: &[String]) {
    let spec = spec_mut(svc);
    if values.is_empty() {
        spec.remove(field);
    } else {
        spec.insert(field.to_owned(), json!(values));
    }
}

fn policy(svc: &Value) -> Option<&str> {
    spec(svc)["ipFamilyPolicy"].as_str()
}

fn needs_cluster_ip(svc: &Value) -> bool {
    svc_type(svc) != "ExternalName"
}

fn needs_node_port(svc: &Value) -> bool {
    matches!(svc_type(svc), "NodePort" | "LoadBalancer")
}

/// `apiservice.NeedsHealthCheck`.
fn needs_health_check(svc: &Value) -> bool {
    svc_type(svc) == "LoadBalancer" && spec(svc)["externalTrafficPolicy"] == "Local"
}

fn should_allocate_node_ports(svc: &Value) -> bool {
    match svc_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => spec(svc)["allocateLoadBalancerNodePorts"] != false,
        _ => false,
    }
}

fn is_headless(svc: &Value) -> bool {
    cluster_ip(svc) == "None" || cluster_ips(svc).first().is_some_and(|ip| ip == "None")
}

fn node_port(port: &Value) -> i64 {
    port["nodePort"].as_i64().unwrap_or(0)
}

fn health_check_node_port(svc: &Value) -> i64 {
    spec(svc)["healthCheckNodePort"].as_i64().unwrap_or(0)
}

fn ports(svc: &Value) -> Vec<Value> {
    spec(svc)["ports"].as_array().cloned().unwrap_or_default()
}

/// `collectServiceNodePorts`: the node ports of the service's ports.
fn service_node_ports(svc: &Value) -> Vec<i64> {
    ports(svc)
        .iter()
        .map(node_port)
        .filter(|p| *p != 0)
        .collect()
}

/// The ClusterIPs a stored Service holds (none for ExternalName and headless ones).
pub fn held_ips(svc: &Value) -> Vec<Ipv4Addr> {
    if !needs_cluster_ip(svc) {
        return Vec::new();
    }
    let mut ips = cluster_ips(svc);
    if ips.is_empty() && !cluster_ip(svc).is_empty() {
        ips.push(cluster_ip(svc).to_owned());
    }
    ips.iter().filter_map(|ip| ip.parse().ok()).collect()
}

/// The node ports a stored Service holds, its health check port included.
pub fn held_ports(svc: &Value) -> Vec<i64> {
    let mut ports = service_node_ports(svc);
    let hc = health_check_node_port(svc);
    if hc != 0 {
        ports.push(hc);
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

// ---------------------------------------------------------------------------------------------
// Errors, worded as kube's
// ---------------------------------------------------------------------------------------------

fn invalid(svc: &Value, errors: Vec<FieldError>) -> ApiError {
    ApiError::from_field_errors("", "Service", name(svc), &errors)
}

fn ip_error(net: &ServiceNetwork, ip: &str, err: &AllocError) -> String {
    match err {
        AllocError::NotInRange => format!(
            "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
            net.ip_range
        ),
        AllocError::Allocated => "provided IP is already allocated".to_owned(),
        other => other.to_string(),
    }
}

fn port_error(net: &ServiceNetwork, err: &AllocError) -> String {
    match err {
        AllocError::NotInRange => format!(
            "provided port is not in the valid range. The range of valid ports is {}",
            net.port_range
        ),
        AllocError::Allocated => "provided port is already allocated".to_owned(),
        other => other.to_string(),
    }
}

/// A failure of the store or of contention is not the client's fault.
fn infrastructure(err: &AllocError) -> Option<ApiError> {
    match err {
        AllocError::Store(e) => Some(ApiError::internal(format!("allocating: {e}"))),
        AllocError::Contended | AllocError::Mismatch { .. } | AllocError::Damaged { .. } => {
            Some(ApiError::internal(err.to_string()))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Normalization (storage.go)
// ---------------------------------------------------------------------------------------------

/// `normalizeClusterIPs`: keeps `clusterIP` and `clusterIPs` in step for clients that only
/// know the singular field.
pub fn normalize_cluster_ips(new: &mut Value, old: Option<&Value>) {
    let ip = cluster_ip(new).to_owned();
    let ips = cluster_ips(new);
    let Some(old) = old else {
        if !ip.is_empty() && ips.is_empty() {
            set_list(new, "clusterIPs", &[ip]);
        }
        return;
    };
    let old_ip = cluster_ip(old).to_owned();
    let old_ips = cluster_ips(old);
    if !old_ips.is_empty() && ips.is_empty() && old_ip == ip {
        set_list(new, "clusterIPs", &old_ips);
    }
    if old_ip != ip {
        let same = cluster_ips(new) == old_ips;
        if !old_ip.is_empty() && ip.is_empty() {
            if same {
                set_list(new, "clusterIPs", &[]);
            }
        } else if same {
            set_list(new, "clusterIPs", &[ip]);
        }
    }
}

/// `patchAllocatedValues`: a client that resubmits what it created (without the allocated
/// values) keeps them.
fn patch_allocated_values(new: &mut Value, old: &Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if cluster_ip(new).is_empty() && !cluster_ip(old).is_empty() {
            spec_mut(new).insert("clusterIP".into(), json!(cluster_ip(old)));
        }
        if cluster_ips(new).is_empty() && !cluster_ips(old).is_empty() {
            set_list(new, "clusterIPs", &cluster_ips(old));
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let old_used: BTreeSet<i64> = service_node_ports(old).into_iter().collect();
        let new_used: BTreeSet<i64> = service_node_ports(new).into_iter().collect();
        let used: BTreeSet<i64> = old_used.intersection(&new_used).copied().collect();
        let by_name: HashMap<String, i64> = ports(old)
            .iter()
            .map(|p| (p["name"].as_str().unwrap_or("").to_owned(), node_port(p)))
            .collect();
        if let Some(list) = spec_mut(new).get_mut("ports").and_then(Value::as_array_mut) {
            for port in list.iter_mut() {
                if node_port(port) == 0 {
                    let old_value = by_name
                        .get(port["name"].as_str().unwrap_or(""))
                        .copied()
                        .unwrap_or(0);
                    if old_value != 0 && !used.contains(&old_value) {
                        port["nodePort"] = json!(old_value);
                    }
                }
            }
        }
    }
    if needs_health_check(old) && needs_health_check(new) && health_check_node_port(new) == 0 {
        let old_hc = health_check_node_port(old);
        if old_hc != 0 {
            spec_mut(new).insert("healthCheckNodePort".into(), json!(old_hc));
        }
    }
}

/// The strategy's `dropTypeDependentFields`: fields the new type does not use are cleared
/// when the client left them as they were.
fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if cluster_ip(old) == cluster_ip(new) && cluster_ips(old) == cluster_ips(new) {
            let spec = spec_mut(new);
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if families(old) == families(new) {
            spec_mut(new).remove("ipFamilies");
        }
        if policy(old) == policy(new) {
            spec_mut(new).remove("ipFamilyPolicy");
        }
    }
    let old_ports: BTreeSet<i64> = service_node_ports(old).into_iter().collect();
    let new_ports: BTreeSet<i64> = service_node_ports(new).into_iter().collect();
    if needs_node_port(old)
        && !needs_node_port(new)
        && new_ports.is_subset(&old_ports)
        && let Some(list) = spec_mut(new).get_mut("ports").and_then(Value::as_array_mut)
    {
        for port in list.iter_mut() {
            if let Some(p) = port.as_object_mut() {
                p.remove("nodePort");
            }
        }
    }
    if needs_health_check(old)
        && !needs_health_check(new)
        && health_check_node_port(old) == health_check_node_port(new)
    {
        spec_mut(new).remove("healthCheckNodePort");
    }
    let (old_type, new_type) = (svc_type(old).to_owned(), svc_type(new).to_owned());
    if old_type == "LoadBalancer" && new_type != "LoadBalancer" {
        let same = spec(old)["allocateLoadBalancerNodePorts"]
            == spec(new)["allocateLoadBalancerNodePorts"];
        if same {
            spec_mut(new).remove("allocateLoadBalancerNodePorts");
        }
        if spec(old)["loadBalancerClass"] == spec(new)["loadBalancerClass"] {
            spec_mut(new).remove("loadBalancerClass");
        }
    }
    if needs_node_port(old)
        && !needs_node_port(new)
        && spec(old)["externalTrafficPolicy"] == spec(new)["externalTrafficPolicy"]
    {
        spec_mut(new).remove("externalTrafficPolicy");
    }
    if new_type != "LoadBalancer" {
        new["status"]["loadBalancer"] = json!({});
    }
}

/// `initIPFamilyFields` on a single-stack IPv4 cluster.
fn init_ip_family_fields(new: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    if !needs_cluster_ip(new) {
        return Ok(());
    }
    if policy(new).is_none() {
        let inherited = old.and_then(policy).map(str::to_owned);
        let chosen = match inherited {
            Some(p) => p,
            None if cluster_ip(new) == "None"
                && spec(new)["selector"].as_object().is_none_or(Map::is_empty) =>
            {
                "RequireDualStack".to_owned()
            }
            None => "SingleStack".to_owned(),
        };
        spec_mut(new).insert("ipFamilyPolicy".into(), json!(chosen));
    }
    let pre = rkube_api::validate_types::validate_service_cluster_ips_related(new);
    if !pre.is_empty() {
        return Err(invalid(new, pre));
    }
    let mut errors = Vec::new();
    let policy_value = policy(new).unwrap_or("").to_owned();
    if let Some(old) = old {
        if policy_value == "SingleStack" {
            if cluster_ips(old) == cluster_ips(new) && cluster_ips(new).len() > 1 {
                set_list(new, "clusterIPs", &cluster_ips(new)[..1]);
            }
            if families(old) == families(new) && families(new).len() > 1 {
                set_list(new, "ipFamilies", &families(new)[..1]);
            }
        } else {
            if cluster_ips(new).len() < cluster_ips(old).len() {
                errors.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    &policy_value,
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            if families(new).len() < families(old).len() {
                errors.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    &policy_value,
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }
    if policy_value == "SingleStack" {
        if cluster_ips(new).len() == 2 {
            errors.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                &policy_value,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families(new).len() == 2 {
            errors.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                &policy_value,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    let ips = cluster_ips(new);
    let mut fams = families(new);
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
        if i >= fams.len() {
            if family == "IPv4" {
                fams.push(family.to_owned());
            } else {
                errors.push(FieldError::invalid_rendered(
                    format!("spec.clusterIPs[{i}]"),
                    Some(go_string_slice(Some(&ips))),
                    "IPv6 is not configured on this cluster",
                ));
            }
        }
    }
    set_list(new, "ipFamilies", &fams);
    if !errors.is_empty() {
        return Err(invalid(new, errors));
    }
    let selectorless = spec(new)["selector"].as_object().is_none_or(Map::is_empty);
    if cluster_ip(new) == "None" && selectorless {
        if fams.is_empty() {
            fams.push("IPv4".into());
        }
        if fams.len() < 2 && policy_value != "SingleStack" {
            let other = if fams[0] == "IPv4" { "IPv6" } else { "IPv4" };
            fams.push(other.to_owned());
        }
        set_list(new, "ipFamilies", &fams);
        return Ok(());
    }
    if policy_value == "RequireDualStack" {
        errors.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            &policy_value,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in fams.iter().enumerate() {
        if family != "IPv4" {
            errors.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                family,
                "not configured on this cluster",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(invalid(new, errors));
    }
    if fams.is_empty() {
        set_list(new, "ipFamilies", &["IPv4".to_owned()]);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Allocation
// ---------------------------------------------------------------------------------------------

/// `allocClusterIPs`: the ClusterIP of a new (or no longer ExternalName) Service.
async fn alloc_cluster_ips(
    net: &ServiceNetwork,
    svc: &mut Value,
    txn: &mut Txn,
) -> Result<(), ApiError> {
    if !needs_cluster_ip(svc) || is_headless(svc) {
        return Ok(());
    }
    let ips = cluster_ips(svc);
    let requested = ips.first().cloned().unwrap_or_default();
    let ip = if requested.is_empty() {
        net.allocate_ip(None, txn.dry_run).await.map_err(|e| {
            infrastructure(&e).unwrap_or_else(|| {
                ApiError::internal(format!("failed to allocate a serviceIP: {e}"))
            })
        })?
    } else {
        let parsed: Ipv4Addr = requested.parse().map_err(|_| {
            ApiError::internal(format!(
                "failed to parse service IP {}",
                go_quote(&requested)
            ))
        })?;
        net.allocate_ip(Some(parsed), txn.dry_run)
            .await
            .map_err(|e| {
                infrastructure(&e).unwrap_or_else(|| {
                    invalid(
                        svc,
                        vec![FieldError::invalid_rendered(
                            "spec.clusterIPs",
                            Some(go_string_slice(Some(&ips))),
                            format!(
                                "failed to allocate IP {requested}: {}",
                                ip_error(net, &requested, &e)
                            ),
                        )],
                    )
                })
            })?
    };
    if !txn.dry_run {
        txn.allocated_ips.push(ip);
    }
    let mut ips = ips;
    if ips.is_empty() {
        ips.push(String::new());
    }
    ips[0] = ip.to_string();
    set_list(svc, "clusterIPs", &ips);
    spec_mut(svc).insert("clusterIP".into(), json!(ip.to_string()));
    Ok(())
}

fn node_port_invalid(
    net: &ServiceNetwork,
    svc: &Value,
    index: usize,
    port: i64,
    e: &AllocError,
) -> ApiError {
    infrastructure(e).unwrap_or_else(|| {
        invalid(
            svc,
            vec![FieldError::invalid_rendered(
                format!("spec.ports[{index}].nodePort"),
                Some(port.to_string()),
                port_error(net, e),
            )],
        )
    })
}

fn node_port_full(e: &AllocError) -> ApiError {
    infrastructure(e)
        .unwrap_or_else(|| ApiError::internal(format!("failed to allocate a nodePort: {e}")))
}

fn set_node_port(svc: &mut Value, index: usize, port: i64) {
    if let Some(p) = spec_mut(svc)
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .and_then(|l| l.get_mut(index))
    {
        p["nodePort"] = json!(port);
    }
}

/// `initNodePorts`: the node ports of a new NodePort or LoadBalancer Service. Ports with the
/// same number (TCP and UDP) share one node port.
async fn init_node_ports(
    net: &ServiceNetwork,
    svc: &mut Value,
    txn: &mut Txn,
) -> Result<(), ApiError> {
    let list = ports(svc);
    let allocate = should_allocate_node_ports(svc);
    let mut by_port: HashMap<i64, i64> = HashMap::new();
    for (i, port) in list.iter().enumerate() {
        let np = node_port(port);
        if np == 0 && !allocate {
            continue;
        }
        let number = port["port"].as_i64().unwrap_or(0);
        match by_port.get(&number).copied() {
            None => {
                let requested = list
                    .iter()
                    .find(|p| p["port"].as_i64() == Some(number) && node_port(p) != 0)
                    .map(node_port);
                let got = match requested {
                    Some(r) => txn
                        .alloc_port(net, Some(r))
                        .await
                        .map_err(|e| node_port_invalid(net, svc, i, r, &e))?,
                    None => txn
                        .alloc_port(net, None)
                        .await
                        .map_err(|e| node_port_full(&e))?,
                };
                set_node_port(svc, i, got);
                by_port.insert(number, got);
            }
            Some(shared) if np != shared => {
                if np == 0 {
                    set_node_port(svc, i, shared);
                } else {
                    txn.alloc_port(net, Some(np))
                        .await
                        .map_err(|e| node_port_invalid(net, svc, i, np, &e))?;
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `allocHealthCheckNodePort`.
async fn alloc_health_check_port(
    net: &ServiceNetwork,
    svc: &mut Value,
    txn: &mut Txn,
) -> Result<(), ApiError> {
    let requested = health_check_node_port(svc);
    if requested != 0 {
        txn.alloc_port(net, Some(requested)).await.map_err(|e| {
            infrastructure(&e).unwrap_or_else(|| {
                ApiError::internal(format!(
                    "failed to allocate requested HealthCheck NodePort {requested}: {}",
                    port_error(net, &e)
                ))
            })
        })?;
    } else {
        let port = txn.alloc_port(net, None).await.map_err(|e| {
            infrastructure(&e).unwrap_or_else(|| {
                ApiError::internal(format!("failed to allocate a HealthCheck NodePort 0: {e}"))
            })
        })?;
        spec_mut(svc).insert("healthCheckNodePort".into(), json!(port));
    }
    Ok(())
}

/// Before a Service is created: normalize, fill the IP family fields, allocate. On error
/// nothing stays allocated.
pub async fn begin_create(
    net: &ServiceNetwork,
    svc: &mut Value,
    dry_run: bool,
) -> Result<Txn, ApiError> {
    // A new Service's status starts empty (Go's zero `LoadBalancerStatus` is `{}`).
    svc["status"] = json!({"loadBalancer": {}});
    normalize_cluster_ips(svc, None);
    init_ip_family_fields(svc, None)?;
    let mut txn = Txn {
        dry_run,
        ..Txn::default()
    };
    let result = async {
        alloc_cluster_ips(net, svc, &mut txn).await?;
        if needs_node_port(svc) {
            init_node_ports(net, svc, &mut txn).await?;
        }
        if needs_health_check(svc) {
            alloc_health_check_port(net, svc, &mut txn).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(txn),
        Err(e) => {
            txn.revert(net).await;
            Err(e)
        }
    }
}

/// `updateNodePorts`: the node ports of a Service that is (still) NodePort or
/// LoadBalancer; the old ones it no longer uses are released on commit.
async fn update_node_ports(
    net: &ServiceNetwork,
    new: &mut Value,
    old: &Value,
    txn: &mut Txn,
) -> Result<(), ApiError> {
    let old_ports = service_node_ports(old);
    let allocate = should_allocate_node_ports(new);
    let mut taken_now: BTreeSet<i64> = BTreeSet::new();
    let mut seen: BTreeSet<(String, i64)> = BTreeSet::new();
    for (i, port) in ports(new).iter().enumerate() {
        let mut np = node_port(port);
        if np == 0 && !allocate {
            continue;
        }
        if np != 0 {
            if !old_ports.contains(&np) && !taken_now.contains(&np) {
                txn.alloc_port(net, Some(np))
                    .await
                    .map_err(|e| node_port_invalid(net, new, i, np, &e))?;
                taken_now.insert(np);
            }
        } else {
            np = txn
                .alloc_port(net, None)
                .await
                .map_err(|e| node_port_full(&e))?;
            set_node_port(new, i, np);
        }
        let protocol = port["protocol"].as_str().unwrap_or("TCP").to_owned();
        if !seen.insert((protocol.clone(), np)) {
            return Err(ApiError::internal(format!(
                "duplicate nodePort: {{{protocol} {np}}}"
            )));
        }
    }
    let new_ports = service_node_ports(new);
    for port in old_ports {
        if !new_ports.contains(&port) {
            txn.release_ports.push(port);
        }
    }
    Ok(())
}

/// `updateHealthCheckNodePort`.
async fn update_health_check_port(
    net: &ServiceNetwork,
    new: &mut Value,
    old: &Value,
    txn: &mut Txn,
) -> Result<(), ApiError> {
    let (needed, needs) = (needs_health_check(old), needs_health_check(new));
    let old_hc = health_check_node_port(old);
    match (needed, needs) {
        (false, true) => alloc_health_check_port(net, new, txn).await,
        (true, false) => {
            if old_hc != 0 {
                txn.release_ports.push(old_hc);
            }
            Ok(())
        }
        (true, true) if health_check_node_port(new) != old_hc => Err(invalid(
            new,
            vec![FieldError::invalid_rendered(
                "spec.healthCheckNodePort",
                Some(health_check_node_port(new).to_string()),
                "cannot change healthCheckNodePort on loadBalancer service with externalTraffic=Local during update",
            )],
        )),
        _ => Ok(()),
    }
}

/// Before a Service is updated: keep what was allocated for the client, normalize,
/// allocate for a new type, note what the old type held for release, and clear the fields
/// the new type does not use.
pub async fn begin_update(
    net: &ServiceNetwork,
    new: &mut Value,
    old: &Value,
    dry_run: bool,
) -> Result<Txn, ApiError> {
    patch_allocated_values(new, old);
    normalize_cluster_ips(new, Some(old));
    init_ip_family_fields(new, Some(old))?;
    let mut txn = Txn {
        dry_run,
        ..Txn::default()
    };
    let result = async {
        // updateClusterIPs (single stack: no upgrade or downgrade).
        if !needs_cluster_ip(old) && needs_cluster_ip(new) {
            alloc_cluster_ips(net, new, &mut txn).await?;
        } else if needs_cluster_ip(old) && !is_headless(old) && !needs_cluster_ip(new) {
            txn.release_ips.extend(held_ips(old));
        }
        // txnUpdateNodePorts.
        if needs_node_port(old) && !needs_node_port(new) {
            txn.release_ports.extend(service_node_ports(old));
        }
        if needs_node_port(new) {
            update_node_ports(net, new, old, &mut txn).await?;
        }
        update_health_check_port(net, new, old, &mut txn).await
    }
    .await;
    if let Err(e) = result {
        txn.revert(net).await;
        return Err(e);
    }
    drop_type_dependent_fields(new, old);
    Ok(txn)
}

/// After a Service left the store (`afterDelete`): its addresses are free again.
pub async fn release_all(net: &ServiceNetwork, svc: &Value) {
    net.release_ips(&held_ips(svc)).await;
    net.release_ports(&held_ports(svc)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_mirrors_the_singular_field() {
        let mut svc = json!({"spec": {"clusterIP": "10.43.0.5"}});
        normalize_cluster_ips(&mut svc, None);
        assert_eq!(svc["spec"]["clusterIPs"], json!(["10.43.0.5"]));
        // An update that leaves clusterIPs out keeps them.
        let old = svc.clone();
        let mut new = json!({"spec": {"clusterIP": "10.43.0.5"}});
        normalize_cluster_ips(&mut new, Some(&old));
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.43.0.5"]));
        // Changing only the singular field changes the plural too (and validation refuses).
        let mut new = json!({"spec": {"clusterIP": "10.43.0.6", "clusterIPs": ["10.43.0.5"]}});
        normalize_cluster_ips(&mut new, Some(&old));
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.43.0.6"]));
    }

    #[test]
    fn resubmitting_keeps_allocated_values() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"],
            "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30081}]}});
        let mut new = json!({"spec": {"type": "NodePort",
            "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30080}]}});
        patch_allocated_values(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.43.0.5");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.43.0.5"]));
        // 30080 is used by port b now, so port a does not get it back.
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
    }

    #[test]
    fn type_changes_drop_what_the_new_type_does_not_use() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "nodePort": 30080}]}});
        let mut to_cluster_ip = old.clone();
        to_cluster_ip["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent_fields(&mut to_cluster_ip, &old);
        assert!(to_cluster_ip["spec"]["ports"][0].get("nodePort").is_none());
        assert!(to_cluster_ip["spec"].get("externalTrafficPolicy").is_none());
        assert_eq!(to_cluster_ip["spec"]["clusterIP"], "10.43.0.5");
        let mut to_external = old.clone();
        to_external["spec"]["type"] = json!("ExternalName");
        drop_type_dependent_fields(&mut to_external, &old);
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            assert!(to_external["spec"].get(field).is_none(), "{field}");
        }
        assert_eq!(held_ips(&old), vec![Ipv4Addr::new(10, 43, 0, 5)]);
        assert_eq!(held_ports(&old), vec![30080]);
    }

    #[test]
    fn ip_families_for_single_stack() {
        let mut svc = json!({"metadata": {"name": "s"}, "spec": {"type": "ClusterIP", "selector": {"a": "b"}}});
        init_ip_family_fields(&mut svc, None).expect("valid");
        assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
        let mut headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
        init_ip_family_fields(&mut headless, None).expect("valid");
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
        let mut dual = json!({"metadata": {"name": "d"}, "spec": {"ipFamilyPolicy": "RequireDualStack", "selector": {"a": "b"}}});
        let err = init_ip_family_fields(&mut dual, None).expect_err("single stack cluster");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "Service \"d\" is invalid: spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
        );
        let mut v6 = json!({"metadata": {"name": "v"}, "spec": {"clusterIP": "fd00::1", "clusterIPs": ["fd00::1"], "ipFamilyPolicy": "SingleStack"}});
        let err = init_ip_family_fields(&mut v6, None).expect_err("no IPv6");
        assert!(err.message.contains("spec.clusterIPs[0]: Invalid value: []string{\"fd00::1\"}: IPv6 is not configured on this cluster"), "{}", err.message);
    }
}
