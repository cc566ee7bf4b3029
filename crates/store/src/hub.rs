//! Fan-out of one store watch to many subscribers.
//!
//! A [`WatchHub`] holds one upstream [`Store::watch`] on a prefix and a window of recent
//! events. Each subscriber gets the events after the revision it asks for, under its own
//! (narrower or equal) prefix, as `Arc<Event>`: the event, key and value are shared by all
//! subscribers, never copied per subscriber. A subscriber that starts before the window, or
//! falls more than the window behind, is served by its own store watch instead, so slow
//! watchers cannot hold the hub back and nobody misses an event.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::contract::{Event, Revision, Store, StoreError};

/// The events a subscriber receives; it ends after yielding an error.
pub type HubStream = Pin<Box<dyn Stream<Item = Result<Arc<Event>, StoreError>> + Send>>;

/// Upstream watch retry delay after an error other than compaction.
const RETRY: Duration = Duration::from_millis(500);

/// One upstream watch shared by many subscribers.
pub struct WatchHub {
    shared: Arc<HubShared>,
    task: tokio::task::JoinHandle<()>,
}

struct HubShared {
    store: Arc<dyn Store>,
    prefix: String,
    capacity: usize,
    window: Mutex<Window>,
    /// Live events. Carries errors too: a compaction of the hub's own position.
    live: broadcast::Sender<Result<Arc<Event>, Arc<StoreError>>>,
}

struct Window {
    /// Every event under the hub's prefix with a revision above `floor` is in `events`.
    floor: Revision,
    events: VecDeque<Arc<Event>>,
    /// The revision of the last event received from upstream (or the start revision).
    head: Revision,
}

impl WatchHub {
    /// Starts a hub watching `prefix` after `after_revision`, keeping the last `capacity`
    /// events for subscribers that start a little behind.
    pub fn start(
        store: Arc<dyn Store>,
        prefix: &str,
        after_revision: Revision,
        capacity: usize,
    ) -> Self {
        let (live, _) = broadcast::channel(capacity.max(16));
        let shared = Arc::new(HubShared {
            store,
            prefix: prefix.to_owned(),
            capacity: capacity.max(1),
            window: Mutex::new(Window {
                floor: after_revision,
                events: VecDeque::new(),
                head: after_revision,
            }),
            live,
        });
        let task = tokio::spawn(upstream(shared.clone()));
        Self { shared, task }
    }

    /// The revision of the newest event the hub has seen.
    pub fn head(&self) -> Revision {
        self.shared.window.lock().map_or(0, |w| w.head)
    }

    /// The events under `prefix` (which must lie under the hub's prefix) after `after`.
    pub async fn subscribe(&self, prefix: &str, after: Revision) -> Result<HubStream, StoreError> {
        if !prefix.starts_with(&self.shared.prefix) {
            return direct(&self.shared.store, prefix, after).await;
        }
        let (tx, rx) = mpsc::channel(256);
        let shared = self.shared.clone();
        let prefix = prefix.to_owned();
        // Served from the window if it reaches back far enough, else straight from the store.
        let Some((backlog, live)) = shared.join(after) else {
            return direct(&self.shared.store, &prefix, after).await;
        };
        tokio::spawn(async move { feed(shared, prefix, after, backlog, live, tx).await });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

impl Drop for WatchHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type LiveReceiver = broadcast::Receiver<Result<Arc<Event>, Arc<StoreError>>>;

impl HubShared {
    /// The window's events after `after` and a live receiver that continues exactly where
    /// they end, or `None` when the window no longer reaches back to `after`.
    fn join(&self, after: Revision) -> Option<(Vec<Arc<Event>>, LiveReceiver)> {
        let window = self.window.lock().ok()?;
        if after < window.floor {
            return None;
        }
        let backlog = window
            .events
            .iter()
            .filter(|e| e.revision() > after)
            .cloned()
            .collect();
        // Subscribing under the window lock: the upstream task appends and broadcasts under
        // the same lock, so nothing falls between the backlog and the live stream.
        Some((backlog, self.live.subscribe()))
    }
}

async fn direct(
    store: &Arc<dyn Store>,
    prefix: &str,
    after: Revision,
) -> Result<HubStream, StoreError> {
    let stream = store.watch(prefix, after).await?;
    Ok(Box::pin(stream.map(|item| item.map(Arc::new))))
}

/// Feeds one subscriber: its backlog, then live events; when it lags, it rejoins from the
/// window or, failing that, continues on its own store watch.
async fn feed(
    shared: Arc<HubShared>,
    prefix: String,
    mut last: Revision,
    backlog: Vec<Arc<Event>>,
    mut live: LiveReceiver,
    tx: mpsc::Sender<Result<Arc<Event>, StoreError>>,
) {
    let mut pending: VecDeque<Arc<Event>> = backlog.into();
    loop {
        while let Some(event) = pending.pop_front() {
            if event.revision() > last && event.kv.key.starts_with(&prefix) {
                last = event.revision();
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        }
        let received = tokio::select! {
            _ = tx.closed() => return,
            received = live.recv() => received,
        };
        match received {
            Ok(Ok(event)) => pending.push_back(event),
            Ok(Err(err)) => {
                let _ = tx.send(Err(clone_error(&err))).await;
                return;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => match shared.join(last) {
                Some((backlog, rejoined)) => {
                    pending = backlog.into();
                    live = rejoined;
                }
                None => {
                    // Too far behind for the window: continue on a private store watch.
                    match direct(&shared.store, &prefix, last).await {
                        Ok(mut stream) => {
                            while let Some(item) = stream.next().await {
                                let end = item.is_err();
                                if tx.send(item).await.is_err() || end {
                                    return;
                                }
                            }
                        }
                        Err(err) => {
                            let _ = tx.send(Err(err)).await;
                        }
                    }
                    return;
                }
            },
            Err(broadcast::error::RecvError::Closed) => {
                let reason = "the watch hub stopped".to_owned();
                let _ = tx.send(Err(StoreError::Unavailable { reason })).await;
                return;
            }
        }
    }
}

fn clone_error(err: &StoreError) -> StoreError {
    match err {
        StoreError::Compacted {
            requested,
            compacted,
        } => StoreError::Compacted {
            requested: *requested,
            compacted: *compacted,
        },
        other => StoreError::Unavailable {
            reason: other.to_string(),
        },
    }
}

/// The hub's one upstream watch, re-established after errors.
async fn upstream(shared: Arc<HubShared>) {
    loop {
        let head = shared.window.lock().map_or(0, |w| w.head);
        let mut stream = match shared.store.watch(&shared.prefix, head).await {
            Ok(stream) => stream,
            Err(err) => {
                handle_upstream_error(&shared, err).await;
                continue;
            }
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    let event = Arc::new(event);
                    let Ok(mut window) = shared.window.lock() else {
                        return;
                    };
                    window.head = event.revision();
                    window.events.push_back(event.clone());
                    while window.events.len() > shared.capacity {
                        if let Some(evicted) = window.events.pop_front() {
                            window.floor = evicted.revision();
                        }
                    }
                    let _ = shared.live.send(Ok(event));
                }
                Err(err) => {
                    handle_upstream_error(&shared, err).await;
                    break;
                }
            }
        }
    }
}

/// After a compaction the hub's history has a hole: subscribers are told (410 in the API)
/// and the hub starts again from the current revision. Other errors are retried.
async fn handle_upstream_error(shared: &HubShared, err: StoreError) {
    match err {
        StoreError::Compacted { .. } => {
            let current = shared.store.current_revision().await.unwrap_or(0);
            if let Ok(mut window) = shared.window.lock() {
                window.events.clear();
                window.floor = current;
                window.head = current;
                let _ = shared.live.send(Err(Arc::new(err)));
            }
        }
        other => {
            tracing::warn!(prefix = %shared.prefix, error = %other, "watch hub lost its store watch; retrying");
            tokio::time::sleep(RETRY).await;
        }
    }
}
