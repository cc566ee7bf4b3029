//! Events, recorded as client-go's event recorder writes them (core/v1 Event), so
//! `kubectl describe` and `kubectl get events` tell what the controllers did.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::chrono::Utc;
use kube::api::PostParams;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;

/// Normal or Warning.
#[derive(Clone, Copy, Debug)]
pub enum Type {
    Normal,
    Warning,
}

/// Writes events for one component.
#[derive(Clone)]
pub struct Recorder {
    sink: EventSink,
    component: String,
    instance: String,
}

/// Where a component's events go: one task writes them one at a time, in the order they
/// were recorded, as client-go's event broadcaster does. A burst of events so never crowds
/// out the component's own writes (a kubelet's pod status, a controller's creates), and
/// the API server sees at most one event write of the component at a time. Up to
/// [`EventSink::QUEUE`] events wait; past that they are dropped, as client-go drops them.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Event>,
}

impl EventSink {
    /// As client-go's broadcaster's queue.
    pub const QUEUE: usize = 1000;

    /// Starts the writer; it ends when the last clone of the sink is dropped.
    pub fn start(client: Client) -> Self {
        let (tx, mut rx) = mpsc::channel::<Event>(Self::QUEUE);
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if let Err(err) = create(&client, &event).await {
                    tracing::debug!(
                        event = %event.name_any(),
                        reason = ?event.reason,
                        "cannot record event: {err}"
                    );
                }
            }
        });
        Self { tx }
    }

    /// Queues an event for writing, or drops it when the queue is full.
    pub fn send(&self, event: Event) {
        if let Err(err) = self.tx.try_send(event) {
            tracing::debug!("event dropped: {err}");
        }
    }
}

/// Creates the event. The answer (the event as stored) is not decoded: nothing reads it.
async fn create(client: &Client, event: &Event) -> Result<(), kube::Error> {
    let namespace = event.metadata.namespace.as_deref();
    let body = serde_json::to_vec(event).map_err(kube::Error::SerdeError)?;
    let request = kube::core::Request::new(Event::url_path(&(), namespace))
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    client.request_text(request).await.map(drop)
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
            sink: EventSink::start(client),
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
        self.sink.send(event);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use http_body_util::BodyExt as _;
    use tokio::sync::Semaphore;

    use super::*;

    /// What a fake API server saw of the events written to it.
    #[derive(Default)]
    struct Seen {
        names: Mutex<Vec<String>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    /// A client whose event creates are answered once `gate` lets them through.
    fn client(seen: Arc<Seen>, gate: Arc<Semaphore>) -> Client {
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let seen = seen.clone();
            let gate = gate.clone();
            async move {
                let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
                let body = req.into_body().collect().await?.to_bytes();
                let event: Event = serde_json::from_slice(&body)?;
                gate.acquire().await?.forget();
                tokio::time::sleep(Duration::from_millis(1)).await;
                seen.names
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(event.name_any());
                seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    http::Response::builder()
                        .status(201)
                        .body(kube::client::Body::from(body.to_vec()))?,
                )
            }
        });
        Client::new(service, "default")
    }

    fn named(name: &str) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("default".to_owned()),
                ..ObjectMeta::default()
            },
            ..Event::default()
        }
    }

    async fn written(seen: &Seen, count: usize) -> Vec<String> {
        for _ in 0..500 {
            let names = seen.names.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if names.len() >= count {
                return names;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {count} events were written");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_are_written_one_at_a_time_in_the_order_recorded() {
        let seen = Arc::new(Seen::default());
        let sink = EventSink::start(client(
            seen.clone(),
            Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        ));
        let expected: Vec<String> = (0..30).map(|i| format!("pod-{i}.event")).collect();
        for name in &expected {
            sink.send(named(name));
        }
        assert_eq!(written(&seen, expected.len()).await, expected);
        assert_eq!(seen.most_in_flight.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn events_past_a_full_queue_are_dropped() {
        let seen = Arc::new(Seen::default());
        let gate = Arc::new(Semaphore::new(0));
        let sink = EventSink::start(client(seen.clone(), gate.clone()));
        // The writer has not run yet (one thread, no await): the queue takes QUEUE events.
        for i in 0..EventSink::QUEUE + 10 {
            sink.send(named(&format!("e{i}")));
        }
        gate.add_permits(EventSink::QUEUE + 10);
        let names = written(&seen, EventSink::QUEUE).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let names_later = seen.names.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            names_later.len(),
            EventSink::QUEUE,
            "{} written",
            names_later.len()
        );
        assert_eq!(names.first().map(String::as_str), Some("e0"));
        assert_eq!(
            names_later.last().cloned(),
            Some(format!("e{}", EventSink::QUEUE - 1))
        );
    }
}
