//! Shared informers: one LIST+WATCH per resource, an in-memory cache of its objects, and
//! change notifications to every controller that subscribed (client-go's SharedInformer).
//!
//! Controllers read objects only from these caches and learn of changes only from these
//! notifications; each notification carries the old and the new object so a handler can
//! decide which keys to enqueue.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, PartialObjectMeta, ResourceExt};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

use crate::Stop;

/// What changed in an informer's cache.
#[derive(Debug)]
pub enum Change<K> {
    /// A new object, or one seen again after a relist.
    Added(Arc<K>),
    /// An object changed: old and new.
    Updated(Arc<K>, Arc<K>),
    /// An object is gone (its last known state).
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object as it is now (or was last, when deleted).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(o) | Change::Updated(_, o) | Change::Deleted(o) => o,
        }
    }
}

/// `namespace/name`, or `name` for cluster-scoped objects: the key of the cache and the queues.
pub fn key_of<K: Resource>(object: &K) -> String {
    let name = object.meta().name.clone().unwrap_or_default();
    match &object.meta().namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name,
    }
}

/// Splits a key back into namespace and name.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

struct Shared<K> {
    objects: RwLock<HashMap<String, Arc<K>>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Arc<Change<K>>>>>,
}

/// A cache of one resource kept in step with the API server.
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
    synced: watch::Receiver<bool>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            synced: self.synced.clone(),
        }
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// Starts watching every object of the resource, in all namespaces, until `stop`.
    pub fn start(client: Client, stop: Stop) -> Self {
        Self::start_with(Api::all(client), watcher::Config::default(), stop)
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Starts watching the objects an `Api` and a watcher config select, until `stop`.
    pub fn start_with(api: Api<K>, config: watcher::Config, stop: Stop) -> Self {
        Self::from_events(watcher::watcher(api, config), stop)
    }
}

impl<K> Informer<PartialObjectMeta<K>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Clone + Send + Sync,
{
    /// Starts watching the metadata alone of the objects an `Api` and a watcher config
    /// select (client-go's metadata informer: `as=PartialObjectMetadata`), until `stop`.
    pub fn start_metadata(api: Api<K>, config: watcher::Config, stop: Stop) -> Self {
        Self::from_events(watcher::metadata_watcher(api, config), stop)
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
{
    fn from_events(
        events: impl futures_util::Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
        stop: Stop,
    ) -> Self {
        let shared = Arc::new(Shared {
            objects: RwLock::new(HashMap::new()),
            subscribers: Mutex::new(Vec::new()),
        });
        let (synced_tx, synced) = watch::channel(false);
        let task_shared = shared.clone();
        tokio::spawn(async move {
            let mut stream = events.boxed();
            let mut relist: Option<HashMap<String, Arc<K>>> = None;
            let mut failures = 0u32;
            loop {
                let event = tokio::select! {
                    event = stream.next() => event,
                    () = stop.stopped() => None,
                };
                let Some(event) = event else { break };
                let event = match event {
                    Ok(event) => {
                        failures = 0;
                        event
                    }
                    Err(err) => {
                        // The watcher relists by itself; wait a little so a dead server is
                        // not hammered.
                        failures = failures.saturating_add(1);
                        tracing::debug!(kind = std::any::type_name::<K>(), "watch failed: {err}");
                        let delay = Duration::from_millis(100 * u64::from(failures.min(50)));
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                };
                match event {
                    Event::Init => relist = Some(HashMap::new()),
                    Event::InitApply(object) => {
                        if let Some(buffer) = relist.as_mut() {
                            buffer.insert(key_of(&object), Arc::new(object));
                        }
                    }
                    Event::InitDone => {
                        if let Some(fresh) = relist.take() {
                            task_shared.replace_all(fresh);
                        }
                        let _ = synced_tx.send(true);
                    }
                    Event::Apply(object) => task_shared.apply(Arc::new(object)),
                    Event::Delete(object) => task_shared.delete(&key_of(&object), object),
                }
            }
        });
        Self { shared, synced }
    }
}

/// Cached objects oldest first (then by key), the order in which a relist and a new
/// subscriber are told of them: kube's kubelet admits the pods it lists in creation order,
/// which decides the pods a node takes when not all of them fit.
fn oldest_first<K: Resource>(objects: &HashMap<String, Arc<K>>) -> Vec<(&String, &Arc<K>)> {
    let mut listed: Vec<(&String, &Arc<K>)> = objects.iter().collect();
    listed.sort_by(|a, b| {
        let created = |o: &Arc<K>| o.meta().creation_timestamp.clone();
        created(a.1).cmp(&created(b.1)).then_with(|| a.0.cmp(b.0))
    });
    listed
}

impl<K: Resource> Shared<K> {
    fn notify(&self, change: Change<K>) {
        let change = Arc::new(change);
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|tx| tx.send(change.clone()).is_ok());
    }

    fn apply(&self, object: Arc<K>) {
        let key = key_of(object.as_ref());
        let old = {
            let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
            objects.insert(key, object.clone())
        };
        match old {
            Some(old) => self.notify(Change::Updated(old, object)),
            None => self.notify(Change::Added(object)),
        }
    }

    fn delete(&self, key: &str, last: K) {
        let old = {
            let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
            objects.remove(key)
        };
        self.notify(Change::Deleted(old.unwrap_or_else(|| Arc::new(last))));
    }

    fn replace_all(&self, fresh: HashMap<String, Arc<K>>) {
        let old = {
            let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *objects, fresh.clone())
        };
        for (key, object) in oldest_first(&fresh) {
            match old.get(key) {
                Some(previous)
                    if previous.meta().resource_version == object.meta().resource_version => {}
                Some(previous) => self.notify(Change::Updated(previous.clone(), object.clone())),
                None => self.notify(Change::Added(object.clone())),
            }
        }
        for (key, object) in old {
            if !fresh.contains_key(&key) {
                self.notify(Change::Deleted(object));
            }
        }
    }
}

impl<K: Resource + Clone> Informer<K> {
    /// Receives every change from now on, after an `Added` for each object already cached.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Arc<Change<K>>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let objects = self
            .shared
            .objects
            .read()
            .unwrap_or_else(|e| e.into_inner());
        for (_, object) in oldest_first(&objects) {
            let _ = tx.send(Arc::new(Change::Added(object.clone())));
        }
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Waits until the first LIST has filled the cache.
    pub async fn synced(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Whether the first LIST has filled the cache.
    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// One object by key.
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.shared
            .objects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// One object by namespace and name.
    pub fn get_in(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        match namespace {
            Some(ns) => self.get(&format!("{ns}/{name}")),
            None => self.get(name),
        }
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.shared
            .objects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The cached objects of one namespace.
    pub fn list_in(&self, namespace: &str) -> Vec<Arc<K>> {
        self.shared
            .objects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|o| o.namespace().as_deref() == Some(namespace))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::chrono::{TimeZone, Utc};

    use super::*;

    fn object(name: &str, created: i64) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.to_owned());
        cm.metadata.namespace = Some("default".to_owned());
        cm.metadata.resource_version = Some("1".to_owned());
        cm.metadata.creation_timestamp = Utc.timestamp_opt(created, 0).single().map(Time);
        cm
    }

    fn added(changes: &mut mpsc::UnboundedReceiver<Arc<Change<ConfigMap>>>) -> Vec<String> {
        let mut names = Vec::new();
        while let Ok(change) = changes.try_recv() {
            if let Change::Added(o) = change.as_ref() {
                names.push(o.metadata.name.clone().unwrap_or_default());
            }
        }
        names
    }

    #[tokio::test]
    async fn a_relist_and_a_late_subscriber_are_told_of_objects_oldest_first() {
        let events = [
            Event::Init,
            Event::InitApply(object("b", 30)),
            Event::InitApply(object("a", 20)),
            Event::InitApply(object("d", 10)),
            Event::InitApply(object("c", 20)),
            Event::InitDone,
        ];
        let stream =
            futures_util::stream::iter(events.map(Ok)).chain(futures_util::stream::pending());
        let informer = Informer::from_events(stream, Stop::never());
        let mut early = informer.subscribe();
        informer.synced().await;
        assert_eq!(added(&mut early), ["d", "a", "c", "b"]);
        let mut late = informer.subscribe();
        assert_eq!(added(&mut late), ["d", "a", "c", "b"]);
    }
}
