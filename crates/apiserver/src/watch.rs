//! WATCH: a stream of `{"type": ..., "object": ...}` lines, fed from the resource's watch hub
//! so that many watchers share one store watch.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use rkube_api::registry::Resource;
use rkube_store::{Event, EventKind, RangeRequest, Revision};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::State;
use crate::cache::Cached;
use crate::errors::ApiError;
use crate::http_util::Body;
use crate::metrics::RequestLabels;
use crate::objects::{Filter, Shape, from_kv, metadata_only, to_version};
use crate::table;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);

/// One event as its line: `{"type":KIND,"object":OBJECT}`, the type first as
/// kube-apiserver writes it, written straight from the object (no copy of it is made).
fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes = Vec::with_capacity(1024);
    bytes.extend_from_slice(b"{\"type\":");
    let written = serde_json::to_writer(&mut bytes, kind)
        .and_then(|()| {
            bytes.extend_from_slice(b",\"object\":");
            serde_json::to_writer(&mut bytes, object)
        })
        .is_ok();
    if !written {
        // Writing a string and a JSON value into memory cannot fail; were it to, the
        // watcher would get an empty line rather than half an event.
        return Bytes::from_static(b"\n");
    }
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}

/// How many recent events [`SharedEvents`] keeps: the watch cache puts every write in, so
/// it covers the writes of every resource, watched or not.
const SHARED_EVENTS: usize = 256;

/// The recent events as the watch cache and the watchers of every resource share them:
/// each event's object is decoded once, for the cache and all watchers (the cache keeps
/// the same object), and its line written once for each API version asked for, rather
/// than once for each watcher (kube-apiserver's watch cache serializes an event once per
/// format the same way). A watcher that falls further behind decodes for itself.
#[derive(Default)]
pub(crate) struct SharedEvents {
    window: Mutex<SharedWindow>,
}

#[derive(Default)]
struct SharedWindow {
    /// The events kept, oldest first, by revision (one revision can change several keys).
    order: VecDeque<Arc<SharedEvent>>,
    events: HashMap<Revision, Vec<Arc<SharedEvent>>>,
}

impl SharedWindow {
    /// The event at `revision` of `key`, if kept: found without copying the key, as every
    /// watcher of every event asks.
    fn find(&self, revision: Revision, key: &str, kind: &str) -> Option<Arc<SharedEvent>> {
        self.events
            .get(&revision)?
            .iter()
            .find(|e| e.key == key && e.kind == kind)
            .cloned()
    }
}

/// One event as its watchers see it.
pub(crate) struct SharedEvent {
    revision: Revision,
    key: String,
    /// ADDED, MODIFIED or DELETED.
    kind: &'static str,
    /// The object as stored, its resourceVersion set: the one the watch cache keeps.
    cached: Arc<Cached>,
    /// Its lines so far, by apiVersion.
    lines: Mutex<Vec<(String, Bytes)>>,
}

fn event_kind(event: &Event) -> &'static str {
    match event.kind {
        EventKind::Delete => "DELETED",
        EventKind::Put if event.is_create() => "ADDED",
        EventKind::Put => "MODIFIED",
    }
}

impl SharedEvents {
    /// The event as shared by the watch cache and the watchers; `None` if its stored object
    /// is not JSON.
    pub(crate) fn get(&self, event: &Event) -> Option<Arc<SharedEvent>> {
        let (revision, key, kind) = (event.revision(), event.kv.key.as_str(), event_kind(event));
        let window = || self.window.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = window().find(revision, key, kind) {
            return Some(found);
        }
        // Decoded outside the lock; a watcher that decoded it meanwhile wins.
        let object = serde_json::from_slice(&event.kv.value).ok()?;
        let decoded = Arc::new(SharedEvent {
            revision,
            key: key.to_owned(),
            kind,
            cached: Arc::new(Cached::new(object, revision)),
            lines: Mutex::default(),
        });
        let mut window = window();
        if let Some(found) = window.find(revision, key, kind) {
            return Some(found);
        }
        window
            .events
            .entry(revision)
            .or_default()
            .push(decoded.clone());
        window.order.push_back(decoded.clone());
        while window.order.len() > SHARED_EVENTS {
            let Some(oldest) = window.order.pop_front() else {
                break;
            };
            if let Some(same) = window.events.get_mut(&oldest.revision) {
                same.retain(|e| !Arc::ptr_eq(e, &oldest));
                if same.is_empty() {
                    window.events.remove(&oldest.revision);
                }
            }
        }
        Some(decoded)
    }
}

impl SharedEvent {
    /// The object as stored, its resourceVersion set.
    pub(crate) fn object(&self) -> &Value {
        &self.cached.value
    }

    /// The object as the watch cache keeps it.
    pub(crate) fn cached(&self) -> &Arc<Cached> {
        &self.cached
    }

    /// The event's line for watchers of `resource` (the object in its version).
    fn line(&self, resource: &Resource) -> Bytes {
        let version = resource.api_version();
        let lines = || self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, line)) = lines().iter().find(|(v, _)| *v == version) {
            return line.clone();
        }
        let object = self.object();
        let written = if object["apiVersion"].as_str() == Some(version.as_str()) {
            line(self.kind, object)
        } else {
            line(self.kind, &to_version(resource, object.clone()))
        };
        let mut lines = lines();
        // Another watcher may have written it meanwhile: one line a version is kept.
        if let Some((_, line)) = lines.iter().find(|(v, _)| *v == version) {
            return line.clone();
        }
        lines.push((version, written.clone()));
        written
    }
}

/// Counts an open watch until dropped.
struct OpenWatch {
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    labels: RequestLabels,
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.metrics.watch(&self.labels, -1);
    }
}

/// Starts a watch. `resources` are the resource as requested and as stored: selectors
/// apply to the stored form, each event is converted to the requested version.
pub async fn serve(
    state: &State,
    resources: (&Resource, &Resource),
    namespace: Option<&str>,
    query: &HashMap<String, String>,
    shape: Shape,
) -> Result<Response<Body>, ApiError> {
    let (resource, storage) = resources;
    let filter = Filter::from_query(storage, query)?;
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let rv = query
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or("");
    let send_initial = match query.get("sendInitialEvents").map(String::as_str) {
        Some("true") => true,
        Some("false") | None => rv.is_empty() || rv == "0",
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid sendInitialEvents {other:?}"
            )));
        }
    };
    let prefix = resource.namespace_prefix(namespace);
    let hub = state.hub(resource).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(256);

    // Initial state: every current object as ADDED, then changes after that revision.
    let mut initial = Vec::new();
    let start: Revision = if send_initial {
        let mut start_after = None;
        let mut revision = 0;
        loop {
            let page = state
                .store
                .range(RangeRequest {
                    prefix: prefix.clone(),
                    start_after: start_after.clone(),
                    limit: 1000,
                    revision,
                })
                .await?;
            revision = page.revision;
            for kv in &page.kvs {
                let object = from_kv(kv)?;
                if filter.matches(storage, &object) {
                    initial.push(object);
                }
            }
            if !page.more {
                break;
            }
            start_after = page.kvs.last().map(|kv| kv.key.clone());
        }
        revision
    } else {
        rv.parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?
    };
    let subscription = hub.subscribe(&prefix, start).await;
    let resource = resource.clone();
    let storage = storage.clone();
    let initial_end_bookmark =
        send_initial && query.get("sendInitialEvents").is_some_and(|s| s == "true");
    let api_version = resource.api_version();
    let kind = resource.kind.clone();
    let metrics = state.metrics.clone();
    let shared_events = state.shared_events.clone();
    let labels = RequestLabels {
        verb: "WATCH".into(),
        group: resource.group.clone(),
        version: resource.version.clone(),
        resource: resource.plural.clone(),
        subresource: String::new(),
    };
    tokio::spawn(async move {
        metrics.watch(&labels, 1);
        let _open = OpenWatch { metrics, labels };
        // A bookmark is an empty object of the kind the watch gives.
        let bookmark = |metadata: Value| match shape {
            Shape::Metadata {
                api_version: meta, ..
            } => metadata_only(&json!({ "metadata": metadata }), meta),
            _ => json!({"kind": kind, "apiVersion": api_version, "metadata": metadata}),
        };
        // The object as a Table row or its metadata alone; `None` for the object itself,
        // which is converted to the requested version (or, for events, shared).
        let reshape = |object: &Value| match shape {
            Shape::Table => Some(table::watch_table((&resource, &storage), object)),
            Shape::Metadata { api_version, .. } => Some(metadata_only(object, api_version)),
            Shape::Object => None,
        };
        let mut events = match subscription {
            Ok(events) => events,
            Err(err) => {
                let err = match err {
                    // kube-apiserver names the version the client asked for.
                    rkube_store::StoreError::Compacted { compacted, .. } => {
                        ApiError::expired(start, compacted)
                    }
                    other => ApiError::from(other),
                };
                let _ = tx.send(line("ERROR", &err.status())).await;
                return;
            }
        };
        for object in initial {
            let object = reshape(&object).unwrap_or_else(|| to_version(&resource, object));
            if tx.send(line("ADDED", &object)).await.is_err() {
                return;
            }
        }
        if initial_end_bookmark {
            let bookmark = bookmark(json!({
                "resourceVersion": start.to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"},
            }));
            if tx.send(line("BOOKMARK", &bookmark)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = start;
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = ticker.tick(), if bookmarks => {
                    let bookmark = bookmark(json!({"resourceVersion": last.to_string()}));
                    if tx.send(line("BOOKMARK", &bookmark)).await.is_err() { return; }
                }
                _ = tx.closed() => return,
                next = events.next() => {
                    let event = match next {
                        None => return,
                        Some(Err(err)) => {
                            let _ = tx.send(line("ERROR", &ApiError::from(err).status())).await;
                            return;
                        }
                        Some(Ok(event)) => event,
                    };
                    last = event.revision();
                    let Some(shared) = shared_events.get(&event) else { continue };
                    if !filter.matches(&storage, shared.object()) {
                        continue;
                    }
                    let next = match reshape(shared.object()) {
                        Some(object) => line(shared.kind, &object),
                        None => shared.line(&resource),
                    };
                    if tx.send(next).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let stream = ReceiverStream::new(rx).map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b)));
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::registry::{builtin_resources, group_version};
    use rkube_store::KeyValue;

    fn put(key: &str, value: &Value, created: Revision, revision: Revision) -> Event {
        Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: key.to_owned(),
                value: Bytes::from(serde_json::to_vec(value).expect("JSON")),
                create_revision: created,
                mod_revision: revision,
            },
        }
    }

    fn pods() -> Resource {
        builtin_resources()
            .into_iter()
            .find(|r| r.group.is_empty() && r.plural == "pods")
            .expect("pods")
    }

    fn parse(line: &Bytes) -> Value {
        assert!(line.ends_with(b"\n"), "a line ends with a newline");
        serde_json::from_slice(line).expect("a JSON line")
    }

    #[test]
    fn an_event_is_decoded_and_written_once_for_all_its_watchers() {
        let events = SharedEvents::default();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}});
        let created = put("/registry/pods/default/a", &pod, 5, 5);
        let first = events.get(&created).expect("decoded");
        let second = events.get(&created).expect("decoded");
        assert!(
            Arc::ptr_eq(&first, &second),
            "the second watcher shares the first's"
        );
        assert_eq!(first.object()["metadata"]["resourceVersion"], "5");
        let line = first.line(&pods());
        assert!(
            line.starts_with(b"{\"type\":\"ADDED\""),
            "the type comes first"
        );
        assert_eq!(parse(&line)["object"]["metadata"]["name"], "a");
        assert_eq!(second.line(&pods()), line);

        let updated = put("/registry/pods/default/a", &pod, 5, 6);
        let modified = events.get(&updated).expect("decoded");
        assert_eq!(parse(&modified.line(&pods()))["type"], "MODIFIED");
        assert_eq!(modified.object()["metadata"]["resourceVersion"], "6");
        // One revision can change several keys (etcd revokes a lease's keys at once).
        let other = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}});
        let beside = events
            .get(&put("/registry/pods/default/b", &other, 6, 6))
            .expect("decoded");
        assert_eq!(beside.object()["metadata"]["name"], "b");
        assert!(Arc::ptr_eq(
            &events.get(&updated).expect("decoded"),
            &modified
        ));
        let deleted = Event {
            kind: EventKind::Delete,
            ..updated
        };
        let gone = events.get(&deleted).expect("decoded");
        assert!(
            !Arc::ptr_eq(&gone, &modified),
            "a delete is an event of its own"
        );
        assert_eq!(parse(&gone.line(&pods()))["type"], "DELETED");
    }

    #[test]
    fn each_api_version_gets_its_own_line() {
        let Some(converted) = builtin_resources().into_iter().find(|r| r.converts()) else {
            panic!("no built-in resource is served in a version other than its storage's");
        };
        let stored = json!({
            "apiVersion": group_version(&converted.storage_group, &converted.storage_version),
            "kind": converted.kind,
            "metadata": {"name": "x", "namespace": "default"},
        });
        let events = SharedEvents::default();
        let event = events
            .get(&put("/registry/x/default/x", &stored, 3, 3))
            .expect("decoded");
        let line = parse(&event.line(&converted));
        assert_eq!(line["object"]["apiVersion"], converted.api_version());
        assert_eq!(event.lines.lock().expect("lines").len(), 1);
    }

    #[test]
    fn old_events_leave_the_window_and_bad_ones_are_skipped() {
        let events = SharedEvents::default();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}});
        let first = put("/registry/pods/default/a", &pod, 1, 1);
        let kept = events.get(&first).expect("decoded");
        for revision in 2..=(SHARED_EVENTS as Revision + 1) {
            events.get(&put("/registry/pods/default/a", &pod, 1, revision));
        }
        let again = events.get(&first).expect("decoded");
        assert!(
            !Arc::ptr_eq(&kept, &again),
            "decoded anew once out of the window"
        );
        let mut broken = put("/registry/pods/default/b", &pod, 9, 9);
        broken.kv.value = Bytes::from_static(b"not json");
        assert!(events.get(&broken).is_none());
    }
}
