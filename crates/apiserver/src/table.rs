//! Server-side printing: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` answers with
//! the columns kube-apiserver prints for each type, which is what `kubectl get` shows.

use std::collections::HashMap;

use rkube_api::registry::Resource;
use serde_json::{Value, json};

use crate::objects::{META_V1, metadata_only};
use crate::time_util;

struct Column {
    name: String,
    kind: String,
    priority: u8,
    description: String,
    cell: Box<dyn Fn(&Value) -> Value + Send + Sync>,
}

fn col(name: &'static str, kind: &'static str, priority: u8, cell: fn(&Value) -> Value) -> Column {
    Column {
        name: name.to_owned(),
        kind: kind.to_owned(),
        priority,
        description: name.to_owned(),
        cell: Box::new(cell),
    }
}

/// Evaluates the simple JSONPath of a printer column (`.spec.replicas`, `.status.conditions[0].type`).
fn json_path<'a>(object: &'a Value, path: &str) -> &'a Value {
    let mut cur = object;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        let mut pieces = part.split('[');
        cur = &cur[pieces.next().unwrap_or("")];
        for index in pieces {
            match index.trim_end_matches(']').parse::<usize>() {
                Ok(i) => cur = &cur[i],
                Err(_) => return &Value::Null,
            }
        }
    }
    cur
}

fn age_of(value: &Value) -> Value {
    match value.as_str().and_then(time_util::parse) {
        Some(t) => json!(human_duration(
            (time::OffsetDateTime::now_utc() - t).whole_seconds()
        )),
        None => Value::Null,
    }
}

/// A CRD's additionalPrinterColumns (or Age when it has none).
fn custom_columns(info: &rkube_api::registry::CustomInfo) -> Vec<Column> {
    let mut cols = vec![col("Name", "string", 0, name)];
    if info.printer_columns.is_empty() {
        cols.push(col("Age", "date", 0, age));
        return cols;
    }
    for c in &info.printer_columns {
        let path = c["jsonPath"].as_str().unwrap_or("").to_owned();
        let kind = c["type"].as_str().unwrap_or("string").to_owned();
        let is_date = kind == "date";
        cols.push(Column {
            name: c["name"].as_str().unwrap_or("").to_owned(),
            kind,
            priority: c["priority"].as_u64().unwrap_or(0).min(255) as u8,
            description: c["description"].as_str().unwrap_or("").to_owned(),
            cell: Box::new(move |o| {
                let v = json_path(o, &path);
                if is_date { age_of(v) } else { v.clone() }
            }),
        });
    }
    cols
}

/// Age as kubectl shows it (apimachinery's `duration.HumanDuration`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h) = (s / 60, s / 3600);
    let (d, y) = (h / 24, h / (24 * 365));
    let with = |big: i64, bu: &str, small: i64, su: &str| {
        if small == 0 {
            format!("{big}{bu}")
        } else {
            format!("{big}{bu}{small}{su}")
        }
    };
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        with(m, "m", s % 60, "s")
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        with(h, "h", m % 60, "m")
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        with(d, "d", h % 24, "h")
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        with(y, "y", d % 365, "d")
    } else {
        format!("{y}y")
    }
}

/// kubectl's CSR condition: the condition types, `Issued` once signed, else `Pending`.
fn csr_condition(csr: &Value) -> Value {
    let mut parts: Vec<String> = csr["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str().map(str::to_owned))
        .collect();
    if csr["status"]["certificate"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
    {
        parts.push("Issued".to_owned());
    }
    if parts.is_empty() {
        parts.push("Pending".to_owned());
    }
    json!(parts.join(","))
}

fn age(object: &Value) -> Value {
    let Some(created) = object["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(time_util::parse)
    else {
        return json!("<unknown>");
    };
    let seconds = (time::OffsetDateTime::now_utc() - created).whole_seconds();
    json!(human_duration(seconds))
}

fn name(object: &Value) -> Value {
    object["metadata"]["name"].clone()
}

/// `NAME (default)` for the default class, as kubectl prints storage and ingress classes.
fn default_class_name(object: &Value, annotations: &[&str]) -> Value {
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let is_default = annotations
        .iter()
        .any(|a| object["metadata"]["annotations"][*a] == "true");
    if is_default {
        json!(format!("{name} (default)"))
    } else {
        json!(name)
    }
}

fn storage_class_name(object: &Value) -> Value {
    default_class_name(
        object,
        &[
            "storageclass.kubernetes.io/is-default-class",
            "storageclass.beta.kubernetes.io/is-default-class",
        ],
    )
}

fn ingress_class_name(object: &Value) -> Value {
    default_class_name(object, &["ingressclass.kubernetes.io/is-default-class"])
}

fn count(v: &Value) -> usize {
    v.as_object().map_or(0, |m| m.len())
}

fn pod_ready(pod: &Value) -> Value {
    let statuses = pod["status"]["containerStatuses"].as_array();
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
    json!(format!("{ready}/{total}"))
}

fn pod_status(pod: &Value) -> Value {
    if pod["metadata"].get("deletionTimestamp").is_some() {
        return json!("Terminating");
    }
    let mut reason = pod["status"]["reason"]
        .as_str()
        .or_else(|| pod["status"]["phase"].as_str())
        .unwrap_or("Pending")
        .to_owned();
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array() {
        for c in statuses.iter().rev() {
            if let Some(r) = c["state"]["waiting"]["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
            {
                reason = r.to_owned();
            } else if let Some(r) = c["state"]["terminated"]["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
            {
                reason = r.to_owned();
            }
        }
    }
    json!(reason)
}

fn pod_restarts(pod: &Value) -> Value {
    let n: i64 = pod["status"]["containerStatuses"]
        .as_array()
        .map_or(0, |s| {
            s.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
        });
    json!(n)
}

fn or_none(v: &Value) -> Value {
    match v.as_str() {
        Some(s) if !s.is_empty() => json!(s),
        _ => json!("<none>"),
    }
}

fn int(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

fn service_ports(svc: &Value) -> Value {
    let ports: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64().filter(|np| *np > 0) {
                Some(np) => format!("{}:{np}/{proto}", p["port"]),
                None => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    if ports.is_empty() {
        json!("<none>")
    } else {
        json!(ports.join(","))
    }
}

/// kube's `getServiceExternalIP` (server-side tables are wide: no truncation).
fn service_external_ip(svc: &Value) -> Value {
    let external_ips: Vec<&str> = svc["spec"]["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match svc["spec"]["type"].as_str().unwrap_or("ClusterIP") {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => json!("<none>"),
        "ClusterIP" | "NodePort" => json!(external_ips.join(",")),
        "LoadBalancer" => {
            let mut balancer: Vec<&str> = svc["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i["ip"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .or_else(|| i["hostname"].as_str().filter(|s| !s.is_empty()))
                })
                .collect();
            balancer.sort_unstable();
            balancer.dedup();
            balancer.extend(external_ips);
            if balancer.is_empty() {
                json!("<pending>")
            } else {
                json!(balancer.join(","))
            }
        }
        "ExternalName" => json!(svc["spec"]["externalName"].as_str().unwrap_or("")),
        _ => json!("<unknown>"),
    }
}

fn selector_string(v: &Value) -> Value {
    let Some(m) = v.as_object().filter(|m| !m.is_empty()) else {
        return json!("<none>");
    };
    json!(
        m.iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The columns of a resource, as stored: cells read the stored form of an object (kube
/// prints its internal type), so versions served over one storage print alike.
fn columns(resource: &Resource) -> Vec<Column> {
    if let Some(info) = &resource.custom {
        return custom_columns(info);
    }
    if resource.group.is_empty() && resource.plural == "events" {
        return event_columns();
    }
    let name_cell = match (resource.group.as_str(), resource.plural.as_str()) {
        ("storage.k8s.io", "storageclasses") => storage_class_name,
        ("networking.k8s.io", "ingressclasses") => ingress_class_name,
        _ => name,
    };
    let mut cols = vec![col("Name", "string", 0, name_cell)];
    let extra: Vec<Column> = match (resource.group.as_str(), resource.plural.as_str()) {
        ("", "pods") => vec![
            col("Ready", "string", 0, pod_ready),
            col("Status", "string", 0, pod_status),
            col("Restarts", "string", 0, pod_restarts),
            col("Age", "string", 0, age),
            col("IP", "string", 1, |p| or_none(&p["status"]["podIP"])),
            col("Node", "string", 1, |p| or_none(&p["spec"]["nodeName"])),
            col("Nominated Node", "string", 1, |p| {
                or_none(&p["status"]["nominatedNodeName"])
            }),
            col("Readiness Gates", "string", 1, |_| json!("<none>")),
        ],
        ("", "namespaces") => vec![
            col("Status", "string", 0, |n| n["status"]["phase"].clone()),
            col("Age", "string", 0, age),
        ],
        ("", "configmaps") => vec![
            col("Data", "integer", 0, |c| {
                json!(count(&c["data"]) + count(&c["binaryData"]))
            }),
            col("Age", "string", 0, age),
        ],
        ("", "secrets") => vec![
            col("Type", "string", 0, |s| s["type"].clone()),
            col("Data", "integer", 0, |s| json!(count(&s["data"]))),
            col("Age", "string", 0, age),
        ],
        ("", "serviceaccounts") => vec![
            col("Secrets", "integer", 0, |s| {
                json!(s["secrets"].as_array().map_or(0, Vec::len))
            }),
            col("Age", "string", 0, age),
        ],
        ("", "services") => vec![
            col("Type", "string", 0, |s| {
                json!(s["spec"]["type"].as_str().unwrap_or("ClusterIP"))
            }),
            col("Cluster-IP", "string", 0, |s| match s["spec"]["clusterIPs"]
                .get(0)
                .and_then(Value::as_str)
            {
                Some(ip) => json!(ip),
                None => json!("<none>"),
            }),
            col("External-IP", "string", 0, service_external_ip),
            col("Port(s)", "string", 0, service_ports),
            col("Age", "string", 0, age),
            col("Selector", "string", 1, |s| {
                selector_string(&s["spec"]["selector"])
            }),
        ],
        ("", "nodes") => vec![
            col("Status", "string", 0, |n| {
                let ready = n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Ready")
                    .map(|c| c["status"] == "True");
                let mut s = match ready {
                    Some(true) => "Ready".to_owned(),
                    _ => "NotReady".to_owned(),
                };
                if n["spec"]["unschedulable"] == true {
                    s.push_str(",SchedulingDisabled");
                }
                json!(s)
            }),
            col("Roles", "string", 0, |n| {
                let roles: Vec<String> = n["metadata"]["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, _)| {
                        k.strip_prefix("node-role.kubernetes.io/")
                            .map(str::to_owned)
                    })
                    .collect();
                if roles.is_empty() {
                    json!("<none>")
                } else {
                    json!(roles.join(","))
                }
            }),
            col("Age", "string", 0, age),
            col("Version", "string", 0, |n| {
                n["status"]["nodeInfo"]["kubeletVersion"].clone()
            }),
        ],
        ("apps", "deployments") => vec![
            col("Ready", "string", 0, |d| {
                json!(format!(
                    "{}/{}",
                    d["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    d["spec"]["replicas"].as_i64().unwrap_or(1)
                ))
            }),
            col("Up-to-date", "integer", 0, |d| {
                int(&d["status"]["updatedReplicas"])
            }),
            col("Available", "integer", 0, |d| {
                int(&d["status"]["availableReplicas"])
            }),
            col("Age", "string", 0, age),
        ],
        ("apps", "replicasets") | ("", "replicationcontrollers") => vec![
            col("Desired", "integer", 0, |r| {
                json!(r["spec"]["replicas"].as_i64().unwrap_or(1))
            }),
            col("Current", "integer", 0, |r| int(&r["status"]["replicas"])),
            col("Ready", "integer", 0, |r| {
                int(&r["status"]["readyReplicas"])
            }),
            col("Age", "string", 0, age),
        ],
        ("", "endpoints") => vec![
            col("Endpoints", "string", 0, endpoints_list),
            col("Age", "string", 0, age),
        ],
        ("discovery.k8s.io", "endpointslices") => vec![
            col("AddressType", "string", 0, |e| e["addressType"].clone()),
            col("Ports", "string", 0, |e| {
                let ports: Vec<String> = e["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["port"].as_i64().map(|n| n.to_string()))
                    .collect();
                json!(if ports.is_empty() {
                    "<unset>".to_owned()
                } else {
                    ports.join(",")
                })
            }),
            col("Endpoints", "string", 0, |e| {
                let ips: Vec<String> = e["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|ep| ep["addresses"].as_array().cloned().unwrap_or_default())
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect();
                json!(limited_list(&ips))
            }),
            col("Age", "string", 0, age),
        ],
        ("coordination.k8s.io", "leases") => vec![
            col("Holder", "string", 0, |l| {
                json!(l["spec"]["holderIdentity"].as_str().unwrap_or(""))
            }),
            col("Age", "string", 0, age),
        ],
        ("", "persistentvolumeclaims") => vec![
            col("Status", "string", 0, |c| c["status"]["phase"].clone()),
            col("Volume", "string", 0, |c| {
                json!(c["spec"]["volumeName"].as_str().unwrap_or(""))
            }),
            col("Capacity", "string", 0, |c| {
                json!(c["status"]["capacity"]["storage"].as_str().unwrap_or(""))
            }),
            col("Access Modes", "string", 0, |c| {
                access_modes(&c["status"]["accessModes"])
            }),
            col("StorageClass", "string", 0, |c| {
                json!(c["spec"]["storageClassName"].as_str().unwrap_or(""))
            }),
            col("VolumeAttributesClass", "string", 0, |c| {
                or_unset(&c["spec"]["volumeAttributesClassName"])
            }),
            col("Age", "string", 0, age),
        ],
        ("", "persistentvolumes") => vec![
            col("Capacity", "string", 0, |v| {
                json!(v["spec"]["capacity"]["storage"].as_str().unwrap_or(""))
            }),
            col("Access Modes", "string", 0, |v| {
                access_modes(&v["spec"]["accessModes"])
            }),
            col("Reclaim Policy", "string", 0, |v| {
                json!(
                    v["spec"]["persistentVolumeReclaimPolicy"]
                        .as_str()
                        .unwrap_or("Retain")
                )
            }),
            col("Status", "string", 0, |v| v["status"]["phase"].clone()),
            col("Claim", "string", 0, |v| {
                let r = &v["spec"]["claimRef"];
                json!(match (r["namespace"].as_str(), r["name"].as_str()) {
                    (Some(ns), Some(n)) => format!("{ns}/{n}"),
                    _ => String::new(),
                })
            }),
            col("StorageClass", "string", 0, |v| {
                json!(v["spec"]["storageClassName"].as_str().unwrap_or(""))
            }),
            col("VolumeAttributesClass", "string", 0, |v| {
                or_unset(&v["spec"]["volumeAttributesClassName"])
            }),
            col("Reason", "string", 0, |v| {
                json!(v["status"]["reason"].as_str().unwrap_or(""))
            }),
            col("Age", "string", 0, age),
        ],
        ("", "resourcequotas") => vec![
            col("Age", "string", 0, age),
            col("Request", "string", 0, |q| quota_usage(q, false)),
            col("Limit", "string", 0, |q| quota_usage(q, true)),
        ],
        ("apps", "statefulsets") => vec![
            col("Ready", "string", 0, |s| {
                json!(format!(
                    "{}/{}",
                    s["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    s["spec"]["replicas"].as_i64().unwrap_or(1)
                ))
            }),
            col("Age", "string", 0, age),
        ],
        ("apps", "daemonsets") => vec![
            col("Desired", "integer", 0, |d| {
                int(&d["status"]["desiredNumberScheduled"])
            }),
            col("Current", "integer", 0, |d| {
                int(&d["status"]["currentNumberScheduled"])
            }),
            col("Ready", "integer", 0, |d| int(&d["status"]["numberReady"])),
            col("Up-to-date", "integer", 0, |d| {
                int(&d["status"]["updatedNumberScheduled"])
            }),
            col("Available", "integer", 0, |d| {
                int(&d["status"]["numberAvailable"])
            }),
            col("Node Selector", "string", 0, |d| {
                selector_string(&d["spec"]["template"]["spec"]["nodeSelector"])
            }),
            col("Age", "string", 0, age),
        ],
        ("apps", "controllerrevisions") => vec![
            col("Controller", "string", 0, |r| {
                let owner = r["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|o| o["controller"] == true);
                json!(owner.map_or(String::new(), |o| {
                    format!(
                        "{}/{}",
                        o["kind"]
                            .as_str()
                            .unwrap_or("")
                            .to_lowercase()
                            .replace("statefulset", "statefulset.apps")
                            .replace("daemonset", "daemonset.apps"),
                        o["name"].as_str().unwrap_or("")
                    )
                }))
            }),
            col("Revision", "integer", 0, |r| int(&r["revision"])),
            col("Age", "string", 0, age),
        ],
        ("batch", "jobs") => vec![
            col("Status", "string", 0, job_status),
            col("Completions", "string", 0, |j| {
                let want = j["spec"]["completions"].as_i64();
                let done = j["status"]["succeeded"].as_i64().unwrap_or(0);
                json!(match want {
                    Some(n) => format!("{done}/{n}"),
                    None => format!(
                        "{done}/1 of {}",
                        j["spec"]["parallelism"].as_i64().unwrap_or(1)
                    ),
                })
            }),
            col("Duration", "string", 0, |j| {
                let start = j["status"]["startTime"].as_str().and_then(time_util::parse);
                let end = j["status"]["completionTime"]
                    .as_str()
                    .and_then(time_util::parse)
                    .unwrap_or_else(time::OffsetDateTime::now_utc);
                json!(start.map_or(String::new(), |s| human_duration((end - s).whole_seconds())))
            }),
            col("Age", "string", 0, age),
        ],
        ("batch", "cronjobs") => vec![
            col("Schedule", "string", 0, |c| c["spec"]["schedule"].clone()),
            col("Timezone", "string", 0, |c| or_none(&c["spec"]["timeZone"])),
            col("Suspend", "boolean", 0, |c| {
                json!(c["spec"]["suspend"].as_bool().unwrap_or(false))
            }),
            col("Active", "integer", 0, |c| {
                json!(c["status"]["active"].as_array().map_or(0, Vec::len))
            }),
            col("Last Schedule", "string", 0, |c| {
                let t = age_of(&c["status"]["lastScheduleTime"]);
                if t.is_null() { json!("<none>") } else { t }
            }),
            col("Age", "string", 0, age),
        ],
        ("policy", "poddisruptionbudgets") => vec![
            col("Min Available", "string", 0, |p| {
                int_or_string_or_na(&p["spec"]["minAvailable"])
            }),
            col("Max Unavailable", "string", 0, |p| {
                int_or_string_or_na(&p["spec"]["maxUnavailable"])
            }),
            col("Allowed Disruptions", "integer", 0, |p| {
                int(&p["status"]["disruptionsAllowed"])
            }),
            col("Age", "string", 0, age),
        ],
        ("certificates.k8s.io", "certificatesigningrequests") => vec![
            col("Age", "string", 0, age),
            col("SignerName", "string", 0, |c| {
                json!(c["spec"]["signerName"].as_str().unwrap_or(""))
            }),
            col("Requestor", "string", 0, |c| {
                json!(c["spec"]["username"].as_str().unwrap_or(""))
            }),
            col("RequestedDuration", "string", 0, |c| {
                json!(match c["spec"]["expirationSeconds"].as_i64() {
                    Some(seconds) => human_duration(seconds),
                    None => "<none>".to_owned(),
                })
            }),
            col("Condition", "string", 0, csr_condition),
        ],
        ("scheduling.k8s.io", "priorityclasses") => vec![
            col("Value", "integer", 0, |p| int(&p["value"])),
            col("Global-Default", "boolean", 0, |p| {
                json!(p["globalDefault"].as_bool().unwrap_or(false))
            }),
            col("Age", "string", 0, age),
            col("PreemptionPolicy", "string", 0, |p| {
                json!(
                    p["preemptionPolicy"]
                        .as_str()
                        .unwrap_or("PreemptLowerPriority")
                )
            }),
        ],
        ("networking.k8s.io", "ingresses") => vec![
            col("Class", "string", 0, |i| {
                or_none(&i["spec"]["ingressClassName"])
            }),
            col("Hosts", "string", 0, |i| {
                let hosts: Vec<String> = i["spec"]["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["host"].as_str().map(str::to_owned))
                    .collect();
                json!(if hosts.is_empty() {
                    "*".to_owned()
                } else {
                    hosts.join(",")
                })
            }),
            col("Address", "string", 0, |i| {
                let ips: Vec<String> = i["status"]["loadBalancer"]["ingress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| {
                        e["ip"]
                            .as_str()
                            .or_else(|| e["hostname"].as_str())
                            .map(str::to_owned)
                    })
                    .collect();
                json!(ips.join(","))
            }),
            col("Ports", "string", 0, |i| {
                json!(
                    if i["spec"]["tls"].as_array().is_some_and(|t| !t.is_empty()) {
                        "80, 443"
                    } else {
                        "80"
                    }
                )
            }),
            col("Age", "string", 0, age),
        ],
        ("networking.k8s.io", "ingressclasses") => vec![
            col("Controller", "string", 0, |c| {
                c["spec"]["controller"].clone()
            }),
            col("Parameters", "string", 0, |c| {
                or_none(&c["spec"]["parameters"]["name"])
            }),
            col("Age", "string", 0, age),
        ],
        ("storage.k8s.io", "storageclasses") => vec![
            col("Provisioner", "string", 0, |c| c["provisioner"].clone()),
            col("ReclaimPolicy", "string", 0, |c| {
                json!(c["reclaimPolicy"].as_str().unwrap_or("Delete"))
            }),
            col("VolumeBindingMode", "string", 0, |c| {
                json!(c["volumeBindingMode"].as_str().unwrap_or("Immediate"))
            }),
            col("AllowVolumeExpansion", "string", 0, |c| {
                json!(c["allowVolumeExpansion"].as_bool().unwrap_or(false))
            }),
            col("Age", "string", 0, age),
        ],
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => vec![
            col("Role", "string", 0, |b| {
                json!(format!(
                    "{}/{}",
                    b["roleRef"]["kind"].as_str().unwrap_or(""),
                    b["roleRef"]["name"].as_str().unwrap_or("")
                ))
            }),
            col("Age", "string", 0, age),
        ],
        ("autoscaling", "horizontalpodautoscalers") => vec![
            col("Reference", "string", 0, |h| {
                json!(format!(
                    "{}/{}",
                    h["spec"]["scaleTargetRef"]["kind"].as_str().unwrap_or(""),
                    h["spec"]["scaleTargetRef"]["name"].as_str().unwrap_or("")
                ))
            }),
            col("Targets", "string", 0, |h| {
                json!(hpa_metrics(
                    &h["spec"]["metrics"],
                    &h["status"]["currentMetrics"]
                ))
            }),
            col("MinPods", "string", 0, |h| {
                match h["spec"]["minReplicas"].as_i64() {
                    Some(n) => json!(n.to_string()),
                    None => json!("<unset>"),
                }
            }),
            col("MaxPods", "integer", 0, |h| int(&h["spec"]["maxReplicas"])),
            col("Replicas", "integer", 0, |h| {
                int(&h["status"]["currentReplicas"])
            }),
            col("Age", "string", 0, age),
        ],
        _ => vec![col("Created At", "date", 0, |o| {
            o["metadata"]["creationTimestamp"].clone()
        })],
    };
    cols.extend(extra);
    cols
}

/// A quantity as kube prints it in the Targets column (Go's `(*Quantity).String`, which
/// prints `<nil>` for a missing one: kube pairs specs and statuses by index).
fn quantity_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "<nil>".to_owned(),
    }
}

/// kube's `formatHPAMetrics`: `cpu: 40%/50%`, `<unknown>` for a current value not yet
/// measured, at most two metrics and `+ N more...`.
fn hpa_metrics(specs: &Value, statuses: &Value) -> String {
    let Some(specs) = specs.as_array().filter(|s| !s.is_empty()) else {
        return "<none>".into();
    };
    let status = |i: usize, source: &str| -> Option<&Value> {
        statuses
            .as_array()
            .and_then(|s| s.get(i))
            .and_then(|m| m.get(source))
            .filter(|v| v.is_object())
    };
    let unknown = || "<unknown>".to_owned();
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let kind = spec["type"].as_str().unwrap_or("");
        let text = match kind {
            "External" | "Object" => {
                let source = if kind == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = &spec[source]["target"];
                let current = status(i, source).map(|s| &s["current"]);
                if !target["averageValue"].is_null() {
                    let now = current
                        .map(|c| &c["averageValue"])
                        .filter(|v| !v.is_null())
                        .map_or_else(unknown, quantity_text);
                    format!("{now}/{} (avg)", quantity_text(&target["averageValue"]))
                } else {
                    let now = current.map_or_else(unknown, |c| quantity_text(&c["value"]));
                    format!("{now}/{}", quantity_text(&target["value"]))
                }
            }
            "Pods" => {
                let now = status(i, "pods")
                    .map_or_else(unknown, |s| quantity_text(&s["current"]["averageValue"]));
                format!(
                    "{now}/{}",
                    quantity_text(&spec["pods"]["target"]["averageValue"])
                )
            }
            "Resource" | "ContainerResource" => {
                let source = if kind == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let metric = &spec[source];
                let name = metric["name"].as_str().unwrap_or("");
                let target = &metric["target"];
                let current = status(i, source).map(|s| &s["current"]);
                if !target["averageValue"].is_null() {
                    let now = current.map_or_else(unknown, |c| quantity_text(&c["averageValue"]));
                    format!("{name}: {now}/{}", quantity_text(&target["averageValue"]))
                } else {
                    let now = current
                        .and_then(|c| c["averageUtilization"].as_i64())
                        .map_or_else(unknown, |u| format!("{u}%"));
                    let goal = target["averageUtilization"]
                        .as_i64()
                        .map_or_else(|| "<auto>".to_owned(), |u| format!("{u}%"));
                    format!("{name}: {now}/{goal}")
                }
            }
            _ => "<unknown type>".to_owned(),
        };
        list.push(text);
    }
    let count = list.len();
    if count > 2 {
        list.truncate(2);
        return format!("{} + {} more...", list.join(", "), count - 2);
    }
    list.join(", ")
}

/// kube's event table: no leading Name column; the Name comes last, in wide output.
fn event_columns() -> Vec<Column> {
    vec![
        col("Last Seen", "string", 0, |e| {
            let last = if e["lastTimestamp"].is_string() {
                &e["lastTimestamp"]
            } else {
                &e["eventTime"]
            };
            let seen = age_of(last);
            let count = e["count"].as_i64().unwrap_or(1);
            if count > 1 {
                let first = age_of(&e["firstTimestamp"]);
                json!(format!(
                    "{} (x{count} over {})",
                    seen.as_str().unwrap_or(""),
                    first.as_str().unwrap_or("")
                ))
            } else {
                seen
            }
        }),
        col("Type", "string", 0, |e| e["type"].clone()),
        col("Reason", "string", 0, |e| e["reason"].clone()),
        col("Object", "string", 0, |e| {
            let o = &e["involvedObject"];
            json!(format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("").to_lowercase(),
                o["name"].as_str().unwrap_or("")
            ))
        }),
        col("Subobject", "string", 1, |e| {
            json!(e["involvedObject"]["fieldPath"].as_str().unwrap_or(""))
        }),
        col("Source", "string", 1, |e| {
            let component = e["source"]["component"]
                .as_str()
                .or_else(|| e["reportingComponent"].as_str())
                .unwrap_or("");
            json!(match e["source"]["host"].as_str() {
                Some(host) if !host.is_empty() => format!("{component}, {host}"),
                _ => component.to_owned(),
            })
        }),
        col("Message", "string", 0, |e| {
            json!(e["message"].as_str().unwrap_or("").trim())
        }),
        col("First Seen", "string", 1, |e| age_of(&e["firstTimestamp"])),
        col("Count", "string", 1, |e| {
            json!(e["count"].as_i64().unwrap_or(1))
        }),
        col("Name", "string", 1, name),
    ]
}

fn endpoints_list(e: &Value) -> Value {
    let mut out = Vec::new();
    for subset in e["subsets"].as_array().into_iter().flatten() {
        for port in subset["ports"].as_array().into_iter().flatten() {
            for address in subset["addresses"].as_array().into_iter().flatten() {
                out.push(format!(
                    "{}:{}",
                    address["ip"].as_str().unwrap_or(""),
                    port["port"]
                ));
            }
        }
        if subset["ports"].as_array().is_none_or(Vec::is_empty) {
            for address in subset["addresses"].as_array().into_iter().flatten() {
                out.push(address["ip"].as_str().unwrap_or("").to_owned());
            }
        }
    }
    json!(limited_list(&out))
}

/// kube prints at most three items, then "+ N more...".
fn limited_list(items: &[String]) -> String {
    match items.len() {
        0 => "<none>".to_owned(),
        n if n <= 3 => items.join(","),
        n => format!("{} + {} more...", items[..3].join(","), n - 3),
    }
}

fn access_modes(v: &Value) -> Value {
    let modes: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    json!(modes.join(","))
}

fn or_unset(v: &Value) -> Value {
    match v.as_str() {
        Some(s) if !s.is_empty() => json!(s),
        _ => json!("<unset>"),
    }
}

fn int_or_string_or_na(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.to_string()),
        Value::String(s) => json!(s),
        _ => json!("N/A"),
    }
}

fn job_status(j: &Value) -> Value {
    let conditions = j["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let has = |t: &str| {
        conditions
            .iter()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if has("Suspended") {
        "Suspended"
    } else if j["metadata"].get("deletionTimestamp").is_some() {
        "Terminating"
    } else {
        "Running"
    };
    json!(status)
}

/// `requests.cpu: 750m/2, pods: 2/10` style usage of a quota's request or limit resources.
fn quota_usage(q: &Value, limits: bool) -> Value {
    let hard = q["status"]["hard"].as_object().cloned().unwrap_or_default();
    let parts: Vec<String> = hard
        .iter()
        .filter(|(k, _)| k.starts_with("limits.") == limits)
        .map(|(k, v)| {
            let used = q["status"]["used"][k].as_str().unwrap_or("0");
            format!("{k}: {used}/{}", v.as_str().unwrap_or(""))
        })
        .collect();
    json!(parts.join(", "))
}

/// One row: cells from the stored form of the object, the embedded object (when asked
/// for) in the requested version.
fn row(request: &Resource, columns: &[Column], stored: &Value, include: &str) -> Value {
    let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(stored)).collect();
    let embedded = match include {
        "None" => Value::Null,
        "Object" => crate::objects::to_version(request, stored.clone()),
        _ => metadata_only(stored, META_V1),
    };
    json!({"cells": cells, "object": embedded})
}

fn definitions(columns: &[Column]) -> Vec<Value> {
    columns
        .iter()
        .map(|c| {
            let mut d = json!({"name": c.name, "type": c.kind, "format": "", "description": c.description, "priority": c.priority});
            if c.name == "Name" {
                d["format"] = json!("name");
                d["description"] = json!("Name must be unique within a namespace. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names");
            }
            d
        })
        .collect()
}

/// The Table of a list. `resources` are the resource as requested and as stored; `items`
/// are in their stored form (with apiVersion and kind), `list_meta` the list's metadata.
pub fn list_table(
    resources: (&Resource, &Resource),
    items: &[&Value],
    list_meta: &Value,
    query: &HashMap<String, String>,
) -> Value {
    let (request, storage) = resources;
    let columns = columns(storage);
    let include = query
        .get("includeObject")
        .map_or("Metadata", String::as_str);
    let rows: Vec<Value> = items
        .iter()
        .map(|o| row(request, &columns, o, include))
        .collect();
    let mut metadata = json!({"resourceVersion": list_meta["resourceVersion"]});
    if let Some(c) = list_meta.get("continue") {
        metadata["continue"] = c.clone();
    }
    json!({
        "kind": "Table",
        "apiVersion": META_V1,
        "metadata": metadata,
        "columnDefinitions": definitions(&columns),
        "rows": rows,
    })
}

/// The Table of one object (stored form) in a watch event.
pub fn watch_table(resources: (&Resource, &Resource), stored: &Value) -> Value {
    let (request, storage) = resources;
    let columns = columns(storage);
    json!({
        "kind": "Table",
        "apiVersion": META_V1,
        "metadata": {"resourceVersion": stored["metadata"]["resourceVersion"]},
        "columnDefinitions": definitions(&columns),
        "rows": [row(request, &columns, stored, "Metadata")],
    })
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn hpa_targets_read_like_kubectl() {
        use serde_json::json;
        let cpu = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}});
        let mem = json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
        let pods = json!({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}});
        assert_eq!(
            super::hpa_metrics(&json!([cpu]), &json!(null)),
            "cpu: <unknown>/50%"
        );
        assert_eq!(
            super::hpa_metrics(
                &json!([cpu]),
                &json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}])
            ),
            "cpu: 12%/50%"
        );
        assert_eq!(
            super::hpa_metrics(&json!([cpu, mem, pods]), &json!([])),
            "cpu: <unknown>/50%, memory: <unknown>/100Mi + 1 more..."
        );
        assert_eq!(super::hpa_metrics(&json!([]), &json!([])), "<none>");
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400), "3d");
        assert_eq!(human_duration(3 * 86400 + 7200), "3d2h");
        assert_eq!(human_duration(40 * 86400), "40d");
    }
}
