//! autoscaling/v1 <-> autoscaling/v2 HorizontalPodAutoscalers, as kube 1.33's
//! `pkg/apis/autoscaling/v1/conversion.go` converts them through the internal type.
//!
//! v1 has one metric, `targetCPUUtilizationPercentage` (a v2 Resource metric `cpu` with a
//! Utilization target). What v1 cannot express travels in annotations: the other metrics
//! (`autoscaling.alpha.kubernetes.io/metrics`, in v1's metric shapes), the current metrics
//! (`.../current-metrics`), the conditions (`.../conditions`) and the behavior
//! (`.../behavior`, which kube writes from the internal Go type, so with Go field names).
//! Reading a v1 object back moves them into fields again and drops the annotations.

use serde_json::{Map, Value, json};

use super::Ordered;

/// `autoscaling.MetricSpecsAnnotation`.
pub const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `autoscaling.MetricStatusesAnnotation`.
pub const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.HorizontalPodAutoscalerConditionsAnnotation`.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.BehaviorSpecsAnnotation`.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// `autoscaling.DefaultCPUUtilization`: v1's implicit target when no metric is given.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

const ROUND_TRIP: [&str; 4] = [
    METRICS_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    CONDITIONS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
];

fn leaf(v: &Value) -> Ordered {
    Ordered::Leaf(v.clone())
}

/// Adds `key: value` unless the value is absent or null (Go's `omitempty` on pointers).
fn opt(fields: &mut Vec<(&'static str, Ordered)>, key: &'static str, value: &Value) {
    if !value.is_null() {
        fields.push((key, leaf(value)));
    }
}

/// A `resource.Quantity` that is not a pointer: absent reads as zero.
fn quantity(v: &Value) -> Value {
    if v.is_null() { json!("0") } else { v.clone() }
}

fn string(v: &Value) -> Value {
    if v.is_null() { json!("") } else { v.clone() }
}

/// `CrossVersionObjectReference` (kind, name, apiVersion omitted when empty).
fn reference(r: &Value) -> Ordered {
    let mut f = vec![
        ("kind", leaf(&string(&r["kind"]))),
        ("name", leaf(&string(&r["name"]))),
    ];
    if r["apiVersion"].as_str().is_some_and(|s| !s.is_empty()) {
        f.push(("apiVersion", leaf(&r["apiVersion"])));
    }
    Ordered::Object(f)
}

fn is_cpu(metric: &Value) -> bool {
    metric["type"] == "Resource" && metric["resource"]["name"] == "cpu"
}

/// The v2 metric v1's `targetCPUUtilizationPercentage` stands for.
fn is_cpu_utilization(metric: &Value) -> bool {
    is_cpu(metric) && !metric["resource"]["target"]["averageUtilization"].is_null()
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A v2 MetricSpec in v1's shape (`Convert_autoscaling_MetricSpec_To_v1_MetricSpec`).
fn v1_metric_spec(m: &Value) -> Ordered {
    let mut f = vec![("type", leaf(&string(&m["type"])))];
    if let Some(o) = m.get("object").filter(|o| o.is_object()) {
        let mut s = vec![
            ("target", reference(&o["describedObject"])),
            ("metricName", leaf(&string(&o["metric"]["name"]))),
            ("targetValue", leaf(&quantity(&o["target"]["value"]))),
        ];
        opt(&mut s, "selector", &o["metric"]["selector"]);
        opt(&mut s, "averageValue", &o["target"]["averageValue"]);
        f.push(("object", Ordered::Object(s)));
    }
    if let Some(p) = m.get("pods").filter(|o| o.is_object()) {
        let mut s = vec![
            ("metricName", leaf(&string(&p["metric"]["name"]))),
            (
                "targetAverageValue",
                leaf(&quantity(&p["target"]["averageValue"])),
            ),
        ];
        opt(&mut s, "selector", &p["metric"]["selector"]);
        f.push(("pods", Ordered::Object(s)));
    }
    if let Some(r) = m.get("resource").filter(|o| o.is_object()) {
        let mut s = vec![("name", leaf(&string(&r["name"])))];
        opt(
            &mut s,
            "targetAverageUtilization",
            &r["target"]["averageUtilization"],
        );
        opt(&mut s, "targetAverageValue", &r["target"]["averageValue"]);
        f.push(("resource", Ordered::Object(s)));
    }
    if let Some(r) = m.get("containerResource").filter(|o| o.is_object()) {
        let mut s = vec![("name", leaf(&string(&r["name"])))];
        opt(
            &mut s,
            "targetAverageUtilization",
            &r["target"]["averageUtilization"],
        );
        opt(&mut s, "targetAverageValue", &r["target"]["averageValue"]);
        s.push(("container", leaf(&string(&r["container"]))));
        f.push(("containerResource", Ordered::Object(s)));
    }
    if let Some(e) = m.get("external").filter(|o| o.is_object()) {
        let mut s = vec![("metricName", leaf(&string(&e["metric"]["name"])))];
        opt(&mut s, "metricSelector", &e["metric"]["selector"]);
        opt(&mut s, "targetValue", &e["target"]["value"]);
        opt(&mut s, "targetAverageValue", &e["target"]["averageValue"]);
        f.push(("external", Ordered::Object(s)));
    }
    Ordered::Object(f)
}

/// A v2 MetricStatus in v1's shape.
fn v1_metric_status(m: &Value) -> Ordered {
    let mut f = vec![("type", leaf(&string(&m["type"])))];
    if let Some(o) = m.get("object").filter(|o| o.is_object()) {
        let mut s = vec![
            ("target", reference(&o["describedObject"])),
            ("metricName", leaf(&string(&o["metric"]["name"]))),
            ("currentValue", leaf(&quantity(&o["current"]["value"]))),
        ];
        opt(&mut s, "selector", &o["metric"]["selector"]);
        opt(&mut s, "averageValue", &o["current"]["averageValue"]);
        f.push(("object", Ordered::Object(s)));
    }
    if let Some(p) = m.get("pods").filter(|o| o.is_object()) {
        let mut s = vec![
            ("metricName", leaf(&string(&p["metric"]["name"]))),
            (
                "currentAverageValue",
                leaf(&quantity(&p["current"]["averageValue"])),
            ),
        ];
        opt(&mut s, "selector", &p["metric"]["selector"]);
        f.push(("pods", Ordered::Object(s)));
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(r) = m.get(key).filter(|o| o.is_object()) {
            let mut s = vec![("name", leaf(&string(&r["name"])))];
            opt(
                &mut s,
                "currentAverageUtilization",
                &r["current"]["averageUtilization"],
            );
            s.push((
                "currentAverageValue",
                leaf(&quantity(&r["current"]["averageValue"])),
            ));
            if container {
                s.push(("container", leaf(&string(&r["container"]))));
            }
            f.push((key, Ordered::Object(s)));
        }
    }
    if let Some(e) = m.get("external").filter(|o| o.is_object()) {
        let mut s = vec![("metricName", leaf(&string(&e["metric"]["name"])))];
        opt(&mut s, "metricSelector", &e["metric"]["selector"]);
        s.push(("currentValue", leaf(&quantity(&e["current"]["value"]))));
        opt(&mut s, "currentAverageValue", &e["current"]["averageValue"]);
        f.push(("external", Ordered::Object(s)));
    }
    Ordered::Object(f)
}

/// A condition in v1's shape (the same fields; `lastTransitionTime` is written as null
/// when unset, as Go writes a zero `metav1.Time`).
fn v1_condition(c: &Value) -> Ordered {
    let mut f = vec![
        ("type", leaf(&string(&c["type"]))),
        ("status", leaf(&string(&c["status"]))),
        ("lastTransitionTime", leaf(&c["lastTransitionTime"])),
    ];
    for key in ["reason", "message"] {
        if c[key].as_str().is_some_and(|s| !s.is_empty()) {
            f.push((key, leaf(&c[key])));
        }
    }
    Ordered::Object(f)
}

/// The behavior as kube marshals the internal `HorizontalPodAutoscalerBehavior`: Go field
/// names, every field present, nil pointers as null.
fn behavior_annotation(b: &Value) -> String {
    let rules = |r: &Value| -> Ordered {
        if !r.is_object() {
            return Ordered::Leaf(Value::Null);
        }
        let policies = match r["policies"].as_array() {
            Some(list) => Ordered::Array(
                list.iter()
                    .map(|p| {
                        Ordered::Object(vec![
                            ("Type", leaf(&string(&p["type"]))),
                            (
                                "Value",
                                leaf(&p["value"].as_i64().map_or(json!(0), |v| json!(v))),
                            ),
                            (
                                "PeriodSeconds",
                                leaf(&p["periodSeconds"].as_i64().map_or(json!(0), |v| json!(v))),
                            ),
                        ])
                    })
                    .collect(),
            ),
            None => Ordered::Leaf(Value::Null),
        };
        Ordered::Object(vec![
            (
                "StabilizationWindowSeconds",
                leaf(&r["stabilizationWindowSeconds"]),
            ),
            ("SelectPolicy", leaf(&r["selectPolicy"])),
            ("Policies", policies),
            ("Tolerance", leaf(&r["tolerance"])),
        ])
    };
    Ordered::Object(vec![
        ("ScaleUp", rules(&b["scaleUp"])),
        ("ScaleDown", rules(&b["scaleDown"])),
    ])
    .render()
}

/// The behavior annotation read back into v2's shape; `None` when it is malformed or empty
/// (kube only moves well-formed data from annotations into fields).
fn behavior_from_annotation(text: &str) -> Option<Value> {
    let b: Value = serde_json::from_str(text).ok()?;
    let b = b.as_object()?;
    let rules = |r: &Value| -> Option<Value> {
        let r = r.as_object()?;
        let mut out = Map::new();
        for (from, to) in [
            ("StabilizationWindowSeconds", "stabilizationWindowSeconds"),
            ("SelectPolicy", "selectPolicy"),
            ("Tolerance", "tolerance"),
        ] {
            if let Some(v) = r.get(from).filter(|v| !v.is_null()) {
                out.insert(to.into(), v.clone());
            }
        }
        if let Some(list) = r.get("Policies").and_then(Value::as_array) {
            let policies: Vec<Value> = list
                .iter()
                .map(|p| {
                    json!({
                        "type": p.get("Type").cloned().unwrap_or(json!("")),
                        "value": p.get("Value").cloned().unwrap_or(json!(0)),
                        "periodSeconds": p.get("PeriodSeconds").cloned().unwrap_or(json!(0)),
                    })
                })
                .collect();
            out.insert("policies".into(), json!(policies));
        }
        Some(Value::Object(out))
    };
    let mut out = Map::new();
    if let Some(up) = b.get("ScaleUp").and_then(rules) {
        out.insert("scaleUp".into(), up);
    }
    if let Some(down) = b.get("ScaleDown").and_then(rules) {
        out.insert("scaleDown".into(), down);
    }
    if out.is_empty() {
        None
    } else {
        Some(Value::Object(out))
    }
}

/// Inserts `key: value` unless null.
fn put(out: &mut Map<String, Value>, key: &str, value: &Value) {
    if !value.is_null() {
        out.insert(key.to_owned(), value.clone());
    }
}

fn metric_identifier(name: &Value, selector: &Value) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), string(name));
    put(&mut m, "selector", selector);
    Value::Object(m)
}

/// A v1 MetricSpec (from the metrics annotation) in v2's shape.
fn v2_metric_spec(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), string(&m["type"]));
    if let Some(o) = m.get("object").filter(|o| o.is_object()) {
        let average = &o["averageValue"];
        let mut target = Map::new();
        let kind = if average.is_null() {
            "Value"
        } else {
            "AverageValue"
        };
        target.insert("type".into(), json!(kind));
        target.insert("value".into(), quantity(&o["targetValue"]));
        put(&mut target, "averageValue", average);
        out.insert(
            "object".into(),
            json!({
                "describedObject": o["target"],
                "metric": metric_identifier(&o["metricName"], &o["selector"]),
                "target": target,
            }),
        );
    }
    if let Some(p) = m.get("pods").filter(|o| o.is_object()) {
        out.insert(
            "pods".into(),
            json!({
                "metric": metric_identifier(&p["metricName"], &p["selector"]),
                "target": {"type": "AverageValue", "averageValue": quantity(&p["targetAverageValue"])},
            }),
        );
    }
    for key in ["resource", "containerResource"] {
        if let Some(r) = m.get(key).filter(|o| o.is_object()) {
            let utilization = &r["targetAverageUtilization"];
            let mut target = Map::new();
            let kind = if utilization.is_null() {
                "AverageValue"
            } else {
                "Utilization"
            };
            target.insert("type".into(), json!(kind));
            put(&mut target, "averageUtilization", utilization);
            put(&mut target, "averageValue", &r["targetAverageValue"]);
            let mut source = Map::new();
            source.insert("name".into(), string(&r["name"]));
            if key == "containerResource" {
                source.insert("container".into(), string(&r["container"]));
            }
            source.insert("target".into(), Value::Object(target));
            out.insert(key.into(), Value::Object(source));
        }
    }
    if let Some(e) = m.get("external").filter(|o| o.is_object()) {
        let value = &e["targetValue"];
        let mut target = Map::new();
        let kind = if value.is_null() {
            "AverageValue"
        } else {
            "Value"
        };
        target.insert("type".into(), json!(kind));
        put(&mut target, "value", value);
        put(&mut target, "averageValue", &e["targetAverageValue"]);
        out.insert(
            "external".into(),
            json!({
                "metric": metric_identifier(&e["metricName"], &e["metricSelector"]),
                "target": target,
            }),
        );
    }
    Value::Object(out)
}

/// A v1 MetricStatus (from the current-metrics annotation) in v2's shape.
fn v2_metric_status(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), string(&m["type"]));
    if let Some(o) = m.get("object").filter(|o| o.is_object()) {
        let mut current = Map::new();
        current.insert("value".into(), quantity(&o["currentValue"]));
        put(&mut current, "averageValue", &o["averageValue"]);
        out.insert(
            "object".into(),
            json!({
                "describedObject": o["target"],
                "metric": metric_identifier(&o["metricName"], &o["selector"]),
                "current": current,
            }),
        );
    }
    if let Some(p) = m.get("pods").filter(|o| o.is_object()) {
        out.insert(
            "pods".into(),
            json!({
                "metric": metric_identifier(&p["metricName"], &p["selector"]),
                "current": {"averageValue": quantity(&p["currentAverageValue"])},
            }),
        );
    }
    for key in ["resource", "containerResource"] {
        if let Some(r) = m.get(key).filter(|o| o.is_object()) {
            let mut current = Map::new();
            current.insert("averageValue".into(), quantity(&r["currentAverageValue"]));
            put(
                &mut current,
                "averageUtilization",
                &r["currentAverageUtilization"],
            );
            let mut source = Map::new();
            source.insert("name".into(), string(&r["name"]));
            if key == "containerResource" {
                source.insert("container".into(), string(&r["container"]));
            }
            source.insert("current".into(), Value::Object(current));
            out.insert(key.into(), Value::Object(source));
        }
    }
    if let Some(e) = m.get("external").filter(|o| o.is_object()) {
        let mut current = Map::new();
        current.insert("value".into(), quantity(&e["currentValue"]));
        put(&mut current, "averageValue", &e["currentAverageValue"]);
        out.insert(
            "external".into(),
            json!({
                "metric": metric_identifier(&e["metricName"], &e["metricSelector"]),
                "current": current,
            }),
        );
    }
    Value::Object(out)
}

fn v2_condition(c: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), string(&c["type"]));
    out.insert("status".into(), string(&c["status"]));
    put(&mut out, "lastTransitionTime", &c["lastTransitionTime"]);
    for key in ["reason", "message"] {
        if c[key].as_str().is_some_and(|s| !s.is_empty()) {
            out.insert(key.into(), c[key].clone());
        }
    }
    Value::Object(out)
}

/// The object's metadata with the round-trip annotations removed (kube drops any a client
/// sent, so that only those the conversion produced are there).
fn metadata_without_round_trip(object: &Value) -> Map<String, Value> {
    let mut meta = object["metadata"].as_object().cloned().unwrap_or_default();
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        for key in ROUND_TRIP {
            annotations.remove(key);
        }
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
    meta
}

/// autoscaling/v2 to autoscaling/v1.
pub fn v2_to_v1(v2: &Value) -> Value {
    let spec = &v2["spec"];
    let status = &v2["status"];
    let mut meta = metadata_without_round_trip(v2);
    let mut annotations = Map::new();

    let mut v1_spec = Map::new();
    put(&mut v1_spec, "scaleTargetRef", &spec["scaleTargetRef"]);
    put(&mut v1_spec, "minReplicas", &spec["minReplicas"]);
    v1_spec.insert(
        "maxReplicas".into(),
        spec["maxReplicas"].as_i64().map_or(json!(0), |n| json!(n)),
    );
    let metrics = array(&spec["metrics"]);
    if let Some(cpu) = metrics.iter().find(|m| is_cpu_utilization(m)) {
        v1_spec.insert(
            "targetCPUUtilizationPercentage".into(),
            cpu["resource"]["target"]["averageUtilization"].clone(),
        );
    }
    let others: Vec<Ordered> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(v1_metric_spec)
        .collect();
    if !others.is_empty() {
        annotations.insert(
            METRICS_ANNOTATION.into(),
            json!(Ordered::Array(others).render()),
        );
    }

    let mut v1_status = Map::new();
    put(
        &mut v1_status,
        "observedGeneration",
        &status["observedGeneration"],
    );
    put(&mut v1_status, "lastScaleTime", &status["lastScaleTime"]);
    for key in ["currentReplicas", "desiredReplicas"] {
        v1_status.insert(
            key.into(),
            status[key].as_i64().map_or(json!(0), |n| json!(n)),
        );
    }
    let current = array(&status["currentMetrics"]);
    // As kube: the last CPU metric with a utilization wins.
    if let Some(cpu) = current
        .iter()
        .rev()
        .find(|m| is_cpu(m) && !m["resource"]["current"]["averageUtilization"].is_null())
    {
        v1_status.insert(
            "currentCPUUtilizationPercentage".into(),
            cpu["resource"]["current"]["averageUtilization"].clone(),
        );
    }
    if !current.is_empty() {
        let list = Ordered::Array(current.iter().map(v1_metric_status).collect());
        annotations.insert(CURRENT_METRICS_ANNOTATION.into(), json!(list.render()));
    }
    if spec["behavior"].is_object() {
        annotations.insert(
            BEHAVIOR_ANNOTATION.into(),
            json!(behavior_annotation(&spec["behavior"])),
        );
    }
    let conditions = array(&status["conditions"]);
    if !conditions.is_empty() {
        let list = Ordered::Array(conditions.iter().map(v1_condition).collect());
        annotations.insert(CONDITIONS_ANNOTATION.into(), json!(list.render()));
    }
    if !annotations.is_empty() {
        let entry = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(existing) = entry.as_object_mut() {
            existing.extend(annotations);
        }
    }
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": v1_spec,
        "status": v1_status,
    })
}

/// autoscaling/v1 to autoscaling/v2.
pub fn v1_to_v2(v1: &Value) -> Value {
    let spec = &v1["spec"];
    let status = &v1["status"];
    let annotation = |key: &str| -> Option<Value> {
        let text = v1["metadata"]["annotations"][key].as_str()?;
        serde_json::from_str(text).ok()
    };

    let mut v2_spec = Map::new();
    put(&mut v2_spec, "scaleTargetRef", &spec["scaleTargetRef"]);
    put(&mut v2_spec, "minReplicas", &spec["minReplicas"]);
    put(&mut v2_spec, "maxReplicas", &spec["maxReplicas"]);
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(Value::Array(others)) = annotation(METRICS_ANNOTATION) {
        metrics.extend(others.iter().map(v2_metric_spec));
    }
    let cpu = |utilization: Value| json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}}});
    if !spec["targetCPUUtilizationPercentage"].is_null() {
        metrics.push(cpu(spec["targetCPUUtilizationPercentage"].clone()));
    }
    if metrics.is_empty() {
        // v1's implicit default, made explicit (kube does it here, where every metric is known).
        metrics.push(cpu(json!(DEFAULT_CPU_UTILIZATION)));
    }
    v2_spec.insert("metrics".into(), json!(metrics));
    if let Some(behavior) = v1["metadata"]["annotations"][BEHAVIOR_ANNOTATION]
        .as_str()
        .and_then(behavior_from_annotation)
    {
        v2_spec.insert("behavior".into(), behavior);
    }

    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("autoscaling/v2"));
    out.insert("kind".into(), json!("HorizontalPodAutoscaler"));
    out.insert(
        "metadata".into(),
        Value::Object(metadata_without_round_trip(v1)),
    );
    out.insert("spec".into(), Value::Object(v2_spec));
    if status.is_object() {
        let mut v2_status = Map::new();
        put(
            &mut v2_status,
            "observedGeneration",
            &status["observedGeneration"],
        );
        put(&mut v2_status, "lastScaleTime", &status["lastScaleTime"]);
        put(
            &mut v2_status,
            "currentReplicas",
            &status["currentReplicas"],
        );
        put(
            &mut v2_status,
            "desiredReplicas",
            &status["desiredReplicas"],
        );
        if !status["currentCPUUtilizationPercentage"].is_null() {
            v2_status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": status["currentCPUUtilizationPercentage"]}}}]),
            );
        }
        // The annotation has more than the one CPU figure: it wins.
        if let Some(Value::Array(current)) = annotation(CURRENT_METRICS_ANNOTATION) {
            let list: Vec<Value> = current.iter().map(v2_metric_status).collect();
            v2_status.insert("currentMetrics".into(), json!(list));
        }
        if let Some(Value::Array(conditions)) = annotation(CONDITIONS_ANNOTATION) {
            let list: Vec<Value> = conditions.iter().map(v2_condition).collect();
            v2_status.insert("conditions".into(), json!(list));
        }
        out.insert("status".into(), Value::Object(v2_status));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_full() -> Value {
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                ],
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
                },
            },
            "status": {
                "currentReplicas": 3, "desiredReplicas": 4,
                "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "50Mi"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "200m", "averageUtilization": 45}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "7"}}},
                ],
                "conditions": [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z", "reason": "ReadyForNewScale"}],
            },
        })
    }

    #[test]
    fn v2_to_v1_keeps_what_v1_cannot_say_in_annotations() {
        let v1 = v2_to_v1(&v2_full());
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["spec"]["minReplicas"], 2);
        assert_eq!(v1["spec"]["maxReplicas"], 10);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 45);
        assert_eq!(v1["status"]["currentReplicas"], 3);
        let a = &v1["metadata"]["annotations"];
        assert_eq!(a["team"], "a");
        assert_eq!(
            a[METRICS_ANNOTATION],
            r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}},{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]"#
        );
        assert_eq!(
            a[CURRENT_METRICS_ANNOTATION],
            r#"[{"type":"Resource","resource":{"name":"memory","currentAverageValue":"50Mi"}},{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":45,"currentAverageValue":"200m"}},{"type":"Pods","pods":{"metricName":"qps","currentAverageValue":"7"}}]"#
        );
        assert_eq!(
            a[BEHAVIOR_ANNOTATION],
            r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15}],"Tolerance":null},"ScaleDown":null}"#
        );
        assert_eq!(
            a[CONDITIONS_ANNOTATION],
            r#"[{"type":"AbleToScale","status":"True","lastTransitionTime":"2025-01-01T00:00:00Z","reason":"ReadyForNewScale"}]"#
        );
    }

    #[test]
    fn v2_round_trips_through_v1() {
        let v2 = v2_full();
        let back = v1_to_v2(&v2_to_v1(&v2));
        // The CPU metric comes back last, as kube appends it after the annotation's.
        let mut expected = v2.clone();
        let metrics = expected["spec"]["metrics"].as_array_mut().unwrap();
        let cpu = metrics.remove(1);
        metrics.push(cpu);
        assert_eq!(back, expected);
    }

    #[test]
    fn v1_round_trips_through_v2() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 1, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 70},
        });
        let v2 = v1_to_v2(&v1);
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        assert_eq!(
            v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            70
        );
        let back = v2_to_v1(&v2);
        // Only the current-metrics annotation is new: the raw status travels with it.
        let mut expected = v1.clone();
        expected["metadata"]["annotations"] = json!({CURRENT_METRICS_ANNOTATION: r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":70,"currentAverageValue":"0"}}]"#});
        assert_eq!(back, expected);
        // Read again, the annotation's figure (with v1's zero average value) is the status.
        assert_eq!(
            v1_to_v2(&back)["status"]["currentMetrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70, "averageValue": "0"}}}])
        );
    }

    #[test]
    fn v1_without_target_gets_the_implicit_default() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 3}});
        let v2 = v1_to_v2(&v1);
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert!(v2.get("status").is_none());
    }

    #[test]
    fn unreadable_annotations_are_ignored_and_dropped() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "annotations": {METRICS_ANNOTATION: "not json", BEHAVIOR_ANNOTATION: "{}"}},
            "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 20}});
        let v2 = v1_to_v2(&v1);
        assert_eq!(v2["spec"]["metrics"].as_array().map(Vec::len), Some(1));
        assert!(v2["spec"].get("behavior").is_none());
        assert!(v2["metadata"].get("annotations").is_none());
    }

    #[test]
    fn every_metric_source_round_trips() {
        let metrics = json!([
            {"type": "Object", "object": {"describedObject": {"kind": "Ingress", "name": "main", "apiVersion": "networking.k8s.io/v1"}, "metric": {"name": "rps"}, "target": {"type": "Value", "value": "2k"}}},
            {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}}, "target": {"type": "AverageValue", "averageValue": "30"}}},
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 70}}},
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
        ]);
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"}, "spec": {"maxReplicas": 3, "metrics": metrics}});
        let back = v1_to_v2(&v2_to_v1(&v2));
        assert_eq!(back["spec"]["metrics"], v2["spec"]["metrics"]);
    }
}
