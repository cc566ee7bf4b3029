//! Server-side printing: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` answers with
//! the columns kube-apiserver prints for each type, which is what `kubectl get` shows.

use std::collections::HashMap;

use rkube_api::registry::Resource;
use serde_json::{Value, json};

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
            match p["nodePort"].as_i64() {
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

fn columns(resource: &Resource) -> Vec<Column> {
    if let Some(info) = &resource.custom {
        return custom_columns(info);
    }
    let mut cols = vec![col("Name", "string", 0, name)];
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
            col("Cluster-IP", "string", 0, |s| {
                or_none(&s["spec"]["clusterIP"])
            }),
            col("External-IP", "string", 0, |s| {
                let ips: Vec<&str> = s["status"]["loadBalancer"]["ingress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["ip"].as_str())
                    .collect();
                if ips.is_empty() {
                    json!("<none>")
                } else {
                    json!(ips.join(","))
                }
            }),
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
        _ => vec![col("Created At", "date", 0, |o| {
            o["metadata"]["creationTimestamp"].clone()
        })],
    };
    cols.extend(extra);
    cols
}

fn row(resource: &Resource, columns: &[Column], object: &Value, include: &str) -> Value {
    let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(object)).collect();
    let embedded = match include {
        "None" => Value::Null,
        "Object" => {
            let mut o = object.clone();
            o["kind"] = json!(resource.kind);
            o["apiVersion"] = json!(resource.api_version());
            o
        }
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object["metadata"],
        }),
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

/// The Table of a list.
pub fn list_table(resource: &Resource, list: &Value, query: &HashMap<String, String>) -> Value {
    let columns = columns(resource);
    let include = query
        .get("includeObject")
        .map_or("Metadata", String::as_str);
    let rows: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| row(resource, &columns, o, include))
        .collect();
    let mut metadata = json!({"resourceVersion": list["metadata"]["resourceVersion"]});
    if let Some(c) = list["metadata"].get("continue") {
        metadata["continue"] = c.clone();
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions(&columns),
        "rows": rows,
    })
}

/// The Table of one object in a watch event.
pub fn watch_table(resource: &Resource, object: &Value) -> Value {
    let columns = columns(resource);
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": object["metadata"]["resourceVersion"]},
        "columnDefinitions": definitions(&columns),
        "rows": [row(resource, &columns, object, "Metadata")],
    })
}

#[cfg(test)]
mod tests {
    use super::human_duration;

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
