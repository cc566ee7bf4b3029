//! events.k8s.io/v1 <-> core/v1 Events, as kube's `pkg/apis/events/v1/conversion.go` maps
//! them through the internal core Event: `regarding` is `involvedObject`, `note` is
//! `message`, `deprecatedSource`/`deprecatedFirstTimestamp`/`deprecatedLastTimestamp`/
//! `deprecatedCount` are `source`/`firstTimestamp`/`lastTimestamp`/`count`, and
//! `reportingController` is core's `reportingComponent`. The rest share their names.

use serde_json::{Map, Value, json};

/// (events.k8s.io/v1 name, core/v1 name) of the fields whose names differ.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

/// Fields with the same name in both.
const SHARED: &[&str] = &[
    "metadata",
    "eventTime",
    "series",
    "action",
    "reason",
    "related",
    "type",
    "reportingInstance",
];

fn copy(
    from: &Value,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (src, dst) in pairs {
        if let Some(v) = from.get(src).filter(|v| !v.is_null()) {
            out.insert(dst.to_owned(), v.clone());
        }
    }
    out
}

/// events.k8s.io/v1 to core/v1.
pub fn events_to_core(event: &Value) -> Value {
    let pairs = RENAMED
        .iter()
        .copied()
        .chain(SHARED.iter().map(|f| (*f, *f)));
    let mut out = copy(event, pairs);
    // core/v1 requires involvedObject (kube writes the empty struct).
    out.entry("involvedObject").or_insert_with(|| json!({}));
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

/// core/v1 to events.k8s.io/v1.
pub fn core_to_events(event: &Value) -> Value {
    let pairs = RENAMED
        .iter()
        .map(|(new, old)| (*old, *new))
        .chain(SHARED.iter().map(|f| (*f, *f)));
    let mut out = copy(event, pairs);
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_both_ways() {
        let new = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000000Z"},
            "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
            "action": "Scale", "reason": "Scaled", "type": "Normal",
            "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"},
            "related": {"kind": "Pod", "name": "web-1"},
            "note": "scaled up",
            "deprecatedSource": {"component": "ctl"},
            "deprecatedFirstTimestamp": "2025-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2025-01-01T00:01:00Z",
            "deprecatedCount": 2,
        });
        let core = events_to_core(&new);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["message"], "scaled up");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["reportingComponent"], "example.com/ctl");
        assert_eq!(core["reportingInstance"], "ctl-1");
        assert_eq!(core["source"]["component"], "ctl");
        assert_eq!(core["firstTimestamp"], "2025-01-01T00:00:00Z");
        assert_eq!(core["lastTimestamp"], "2025-01-01T00:01:00Z");
        assert_eq!(core["count"], 2);
        assert_eq!(core["series"]["count"], 2);
        assert!(core.get("note").is_none() && core.get("regarding").is_none());
        assert_eq!(core_to_events(&core), new);
    }

    #[test]
    fn a_core_event_round_trips() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "p.1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "Scheduled", "message": "assigned", "type": "Normal",
            "source": {"component": "default-scheduler"}, "count": 1,
            "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:00:00Z",
        });
        let new = core_to_events(&core);
        assert_eq!(new["note"], "assigned");
        assert_eq!(new["regarding"]["name"], "p");
        assert_eq!(new["deprecatedCount"], 1);
        assert_eq!(events_to_core(&new), core);
    }

    #[test]
    fn core_always_has_an_involved_object() {
        let new =
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "x"}});
        assert_eq!(events_to_core(&new)["involvedObject"], json!({}));
    }
}
