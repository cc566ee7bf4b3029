//! WATCH: a stream of `{"type": ..., "object": ...}` lines, fed from the resource's watch hub
//! so that many watchers share one store watch.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use rkube_api::registry::Resource;
use rkube_store::{EventKind, RangeRequest, Revision};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::State;
use crate::errors::ApiError;
use crate::http_util::Body;
use crate::metrics::RequestLabels;
use crate::objects::{Filter, from_kv, set_resource_version, to_version};
use crate::table;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);

/// One event as its line: `{"type":KIND,"object":OBJECT}`, written straight from the
/// object (once per watcher and event, so no copy of the object is made for it).
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
    as_table: bool,
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
        let render = |object: Value| {
            if as_table {
                table::watch_table((&resource, &storage), &object)
            } else {
                to_version(&resource, object)
            }
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
            if tx.send(line("ADDED", &render(object))).await.is_err() {
                return;
            }
        }
        if initial_end_bookmark {
            let bookmark = json!({
                "kind": kind, "apiVersion": api_version,
                "metadata": {"resourceVersion": start.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}},
            });
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
                    let bookmark = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": last.to_string()}});
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
                    let Ok(mut object) = from_kv(&event.kv) else { continue };
                    set_resource_version(&mut object, event.revision());
                    if !filter.matches(&storage, &object) {
                        continue;
                    }
                    let kind = match event.kind {
                        EventKind::Delete => "DELETED",
                        EventKind::Put if event.is_create() => "ADDED",
                        EventKind::Put => "MODIFIED",
                    };
                    if tx.send(line(kind, &render(object))).await.is_err() {
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
