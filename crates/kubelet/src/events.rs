//! The events kube's kubelet records about pods (`pkg/kubelet/events`), so `kubectl describe
//! pod` tells the same story: Pulled, Created, Started, Killing, BackOff,
//! FailedCreatePodSandBox. Best effort, as in client-go: written in the background, one at a
//! time and apart from the pods' status writes (`rkube_controllers::events::EventSink`), a
//! failure only logged.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::chrono::Utc;

use crate::agent::Shared;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// The reporting component, as kube's kubelet names itself.
const COMPONENT: &str = "kubelet";

/// What an event is about: a pod, or one of its containers (`spec.containers{name}`).
pub fn pod_reference(pod: &Pod, field_path: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Pod".to_owned()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path,
    }
}

/// A node, as kube's kubelet names its own node in events (the uid is the node's name).
pub fn node_reference(node: &str) -> ObjectReference {
    ObjectReference {
        kind: Some("Node".to_owned()),
        name: Some(node.to_owned()),
        uid: Some(node.to_owned()),
        ..ObjectReference::default()
    }
}

/// The event kube's recorder would write now, from node `node`.
pub fn event(
    node: &str,
    involved: ObjectReference,
    type_: &str,
    reason: &str,
    message: String,
) -> Event {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let now = Utc::now();
    Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{nanos:x}",
                involved.name.clone().unwrap_or_default()
            )),
            // Events about cluster-scoped objects go to "default", as client-go puts them.
            namespace: Some(
                involved
                    .namespace
                    .clone()
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or_else(|| "default".to_owned()),
            ),
            ..ObjectMeta::default()
        },
        involved_object: involved,
        reason: Some(reason.to_owned()),
        message: Some(message),
        type_: Some(type_.to_owned()),
        source: Some(EventSource {
            component: Some(COMPONENT.to_owned()),
            host: Some(node.to_owned()),
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: None::<MicroTime>,
        count: Some(1),
        reporting_component: Some(COMPONENT.to_owned()),
        reporting_instance: Some(node.to_owned()),
        ..Event::default()
    }
}

/// Writes an event in the background, if the agent records events.
pub(crate) fn record(
    shared: &Arc<Shared>,
    node: &str,
    involved: ObjectReference,
    type_: &str,
    reason: &str,
    message: String,
) {
    if !shared.options.record_events {
        return;
    }
    shared
        .events
        .send(event(node, involved, type_, reason, message));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_the_container_and_the_node() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        let reference = pod_reference(&pod, Some("spec.containers{nginx}".into()));
        let e = event(
            "hollow-1",
            reference,
            NORMAL,
            "Started",
            "Started container nginx".into(),
        );
        assert!(
            e.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("web."))
        );
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            e.involved_object.field_path.as_deref(),
            Some("spec.containers{nginx}")
        );
        let source = e.source.expect("source");
        assert_eq!(source.component.as_deref(), Some("kubelet"));
        assert_eq!(source.host.as_deref(), Some("hollow-1"));
        assert_eq!(e.reporting_instance.as_deref(), Some("hollow-1"));
    }
}
