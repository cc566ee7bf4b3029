//! Events, recorded as client-go's event recorder writes them (core/v1 Event), so
//! `kubectl describe` and `kubectl get events` tell what the controllers did.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::chrono::Utc;
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};

/// Normal or Warning.
#[derive(Clone, Copy, Debug)]
pub enum Type {
    Normal,
    Warning,
}

/// Writes events for one component.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    instance: String,
}

/// An object reference for an event's involvedObject.
pub fn reference<K: Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: object.meta().name.clone(),
        namespace: object.meta().namespace.clone(),
        uid: object.meta().uid.clone(),
        resource_version: object.meta().resource_version.clone(),
        field_path: None,
    }
}

impl Recorder {
    pub fn new(client: Client, component: &str) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        Self {
            client,
            component: component.to_owned(),
            instance: format!("{component}-{host}"),
        }
    }

    /// Records an event about `object` in the background; a failure is only logged, as in
    /// client-go (events are best effort).
    pub fn record<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        kind: Type,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.record_ref(reference(object), kind, reason, message);
    }

    /// Records an event about the object a reference names.
    pub fn record_ref(
        &self,
        involved: ObjectReference,
        kind: Type,
        reason: &str,
        message: impl Into<String>,
    ) {
        let now_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let namespace = involved
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let name = format!(
            "{}.{:x}",
            involved.name.clone().unwrap_or_default(),
            now_nanos
        );
        let now = Utc::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: involved,
            reason: Some(reason.to_owned()),
            message: Some(message.into()),
            type_: Some(
                match kind {
                    Type::Normal => "Normal",
                    Type::Warning => "Warning",
                }
                .to_owned(),
            ),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        tokio::spawn(async move {
            if let Err(err) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(event = %event.name_any(), "cannot record event: {err}");
            }
        });
    }
}
