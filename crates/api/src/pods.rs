//! Pod rules shared by the API server and the node agent.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::validate_types::Quantity;

/// The pod's QoS class, as kube's `GetPodQOS` computes it from `spec` (JSON): the CPU and
/// memory requests and limits of all containers and init containers are summed; no request
/// or limit at all is BestEffort; limits on both resources for every container, equal in
/// sum to the requests, is Guaranteed; anything else is Burstable.
pub fn qos_class(spec: &Value) -> &'static str {
    const SUPPORTED: [&str; 2] = ["cpu", "memory"];
    let mut requests: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut limits: BTreeMap<&str, Quantity> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"]
        .iter()
        .filter_map(|field| spec[*field].as_array())
        .flatten();
    for container in containers {
        let resources = &container["resources"];
        let sum = |into: &mut BTreeMap<&'static str, Quantity>, list: &Value| {
            let mut found = 0;
            for name in SUPPORTED {
                let Some(q) = list[name].as_str().and_then(|q| Quantity::parse(q).ok()) else {
                    continue;
                };
                if q.greater_than(&Quantity::zero()) {
                    found += 1;
                    let total = into.get(name).map_or_else(|| q.clone(), |t| t.add(&q));
                    into.insert(name, total);
                }
            }
            found
        };
        sum(&mut requests, &resources["requests"]);
        if sum(&mut limits, &resources["limits"]) < SUPPORTED.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        for (name, request) in &requests {
            match limits.get(name) {
                Some(limit) if !limit.greater_than(request) && !request.greater_than(limit) => {}
                _ => guaranteed = false,
            }
        }
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(containers: Value) -> Value {
        json!({ "containers": containers })
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(&spec(json!([{"name": "a"}]))), "BestEffort");
        let both = json!({"cpu": "500m", "memory": "64Mi"});
        assert_eq!(
            qos_class(&spec(
                json!([{"resources": {"requests": both, "limits": both}}])
            )),
            "Guaranteed"
        );
        // 0.5 and 500m are the same quantity.
        assert_eq!(
            qos_class(&spec(json!([{"resources": {
                "requests": {"cpu": "0.5", "memory": "64Mi"},
                "limits": {"cpu": "500m", "memory": "64Mi"}}}]))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&spec(json!([{"resources": {"requests": {"cpu": "100m"}}}]))),
            "Burstable"
        );
        // One container without limits makes the pod Burstable.
        assert_eq!(
            qos_class(&spec(json!([
                {"resources": {"requests": both, "limits": both}},
                {"name": "sidecar"}
            ]))),
            "Burstable"
        );
        // Limits only on cpu: Burstable.
        assert_eq!(
            qos_class(&spec(json!([{"resources": {"limits": {"cpu": "1"}}}]))),
            "Burstable"
        );
    }
}
