//! The watch cache: every object of every resource in memory, kept current by one store
//! watch over `/registry/`, so LIST is answered without reading the store (as
//! kube-apiserver's cacher does).
//!
//! Each object is kept parsed (for selectors and tables) and, once a LIST first needs them,
//! as the JSON bytes of a list item, so a LIST of many objects is a concatenation, not a
//! serialization.
//!
//! Consistency: the cache knows the revision of the last event it applied. Because every
//! write is an event under `/registry/`, that is the store's revision once the cache has
//! caught up; a LIST that must be current (no resourceVersion) waits for that.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use rkube_store::{Event, EventKind, RangeRequest, Revision, Store, StoreError};
use serde_json::Value;
use tokio::sync::watch;

use crate::objects::set_resource_version;
use crate::watch::SharedEvents;

/// The root of every key the API server writes.
pub const ROOT: &str = "/registry/";

/// One object as the cache holds it.
pub struct Cached {
    /// The object, with its resourceVersion.
    pub value: Value,
    /// The store revision it was written at (its resourceVersion).
    pub revision: Revision,
    /// The object as a list item, serialized when a LIST first needs it: most versions of
    /// an object (a pod's create, binding and status writes) are never listed, and
    /// serializing each as it was applied was a tenth of the cache's work.
    item: OnceLock<Bytes>,
}

impl Cached {
    pub(crate) fn new(mut value: Value, revision: Revision) -> Self {
        set_resource_version(&mut value, revision);
        Self {
            value,
            revision,
            item: OnceLock::new(),
        }
    }

    /// The object as a list item: without kind and apiVersion, serialized.
    pub fn item(&self) -> &Bytes {
        self.item
            .get_or_init(|| Bytes::from(list_item(&self.value)))
    }
}

/// `object` serialized without its kind and apiVersion (a list's items have neither).
fn list_item(object: &Value) -> Vec<u8> {
    let Some(fields) = object.as_object() else {
        return serde_json::to_vec(object).unwrap_or_default();
    };
    let mut out = Vec::with_capacity(1024);
    out.push(b'{');
    let mut first = true;
    for (key, value) in fields {
        if key == "kind" || key == "apiVersion" {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // Writing to a Vec fails only for values that are not JSON, which a Value is not.
        let _ = serde_json::to_writer(&mut out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, value);
    }
    out.push(b'}');
    out
}

/// The resource prefix of a key: `/registry/<group>/<plural>/`.
fn resource_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(ROOT)?;
    let mut slashes = rest.match_indices('/');
    slashes.next()?;
    let (second, _) = slashes.next()?;
    Some(&key[..ROOT.len() + second + 1])
}

/// The cache of all objects.
pub struct Cacher {
    store: Arc<dyn Store>,
    /// The recent writes, decoded once for the cache and the watchers alike.
    shared: Arc<SharedEvents>,
    resources: RwLock<HashMap<String, BTreeMap<String, Arc<Cached>>>>,
    revision: watch::Sender<Revision>,
}

/// A page read from the cache.
pub struct Page {
    /// The objects, in key order.
    pub items: Vec<Arc<Cached>>,
    /// The revision they were read at.
    pub revision: Revision,
    /// Whether more matched after the last one.
    pub more: bool,
    /// The last key looked at (for a continue token).
    pub last_key: Option<String>,
}

impl Cacher {
    /// Loads every object and starts following the store; each write it applies is
    /// decoded once, in `shared`, for the watchers too.
    pub(crate) async fn start(
        store: Arc<dyn Store>,
        shared: Arc<SharedEvents>,
    ) -> Result<Arc<Self>, StoreError> {
        let cacher = Arc::new(Self {
            store,
            shared,
            resources: RwLock::new(HashMap::new()),
            revision: watch::channel(0).0,
        });
        let revision = cacher.load().await?;
        tokio::spawn(follow(Arc::downgrade(&cacher), revision));
        Ok(cacher)
    }

    /// Replaces the cache's contents with the store's at its current revision.
    async fn load(&self) -> Result<Revision, StoreError> {
        let mut fresh: HashMap<String, BTreeMap<String, Arc<Cached>>> = HashMap::new();
        let mut start_after = None;
        let mut revision = 0;
        loop {
            let page = self
                .store
                .range(RangeRequest {
                    prefix: ROOT.into(),
                    start_after: start_after.clone(),
                    limit: 2000,
                    revision,
                })
                .await?;
            revision = page.revision;
            for kv in page.kvs {
                // Keys that are not objects (allocation ranges, server leases) are skipped,
                // but the next page still starts after them.
                start_after = Some(kv.key.clone());
                let Some(prefix) = resource_prefix(&kv.key) else {
                    continue;
                };
                let Ok(value) = serde_json::from_slice::<Value>(&kv.value) else {
                    continue;
                };
                fresh.entry(prefix.to_owned()).or_default().insert(
                    kv.key.clone(),
                    Arc::new(Cached::new(value, kv.mod_revision)),
                );
            }
            if !page.more {
                break;
            }
        }
        if let Ok(mut resources) = self.resources.write() {
            *resources = fresh;
        }
        self.revision.send_replace(revision);
        Ok(revision)
    }

    fn apply(&self, event: &Event) {
        let (key, revision) = (event.kv.key.as_str(), event.revision());
        let Some(prefix) = resource_prefix(key) else {
            self.revision.send_replace(revision);
            return;
        };
        // Decoded (or found decoded by a watcher) before the lock is taken.
        let put = match event.kind {
            EventKind::Put => self.shared.get(event),
            EventKind::Delete => None,
        };
        if let Ok(mut resources) = self.resources.write() {
            let objects = resources.entry(prefix.to_owned()).or_default();
            match (event.kind, put) {
                (EventKind::Delete, _) => {
                    objects.remove(key);
                }
                (EventKind::Put, Some(shared)) => {
                    objects.insert(key.to_owned(), shared.cached().clone());
                }
                // Not JSON: nothing an API reader could be given.
                (EventKind::Put, None) => {}
            }
        }
        self.revision.send_replace(revision);
    }

    /// The revision of the last change applied.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Waits until the cache has applied `revision`; false after `timeout`.
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> bool {
        let mut rx = self.revision.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the cache is as current as the store is now.
    pub async fn wait_until_current(&self, timeout: Duration) -> Result<bool, StoreError> {
        let current = self.store.current_revision().await?;
        Ok(self.wait_for(current, timeout).await)
    }

    /// The object at `key`, as of the cache's revision (which may trail the store's).
    pub fn get(&self, key: &str) -> Option<Arc<Cached>> {
        let resources = self.resources.read().ok()?;
        resources.get(resource_prefix(key)?)?.get(key).cloned()
    }

    /// Up to `limit` objects (0: all) under `prefix` after `start_after` that `keep` accepts.
    pub fn page(
        &self,
        resource_prefix: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&Value) -> bool,
    ) -> Page {
        // Read the revision before the objects: the objects are then at least that new, and
        // the lock makes the read a snapshot.
        let Ok(resources) = self.resources.read() else {
            return Page {
                items: vec![],
                revision: self.revision(),
                more: false,
                last_key: None,
            };
        };
        let revision = self.revision();
        let mut page = Page {
            items: Vec::new(),
            revision,
            more: false,
            last_key: None,
        };
        let Some(objects) = resources.get(resource_prefix) else {
            return page;
        };
        let lower = match start_after {
            Some(after) => Bound::Excluded(after.to_owned()),
            None => Bound::Included(prefix.to_owned()),
        };
        for (key, object) in objects.range((lower, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if limit > 0 && page.items.len() == limit {
                page.more = true;
                break;
            }
            page.last_key = Some(key.clone());
            if keep(&object.value) {
                page.items.push(object.clone());
            }
        }
        page
    }
}

/// Follows the store from `revision`, reloading if the watch breaks.
async fn follow(cacher: std::sync::Weak<Cacher>, mut revision: Revision) {
    loop {
        let Some(strong) = cacher.upgrade() else {
            return;
        };
        let mut events = match strong.store.watch(ROOT, revision).await {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(error = %err, "watch cache cannot watch the store; reloading");
                drop(strong);
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Some(c) = cacher.upgrade()
                    && let Ok(r) = c.load().await
                {
                    revision = r;
                }
                continue;
            }
        };
        drop(strong);
        while let Some(event) = events.next().await {
            let Some(c) = cacher.upgrade() else { return };
            match event {
                Ok(event) => {
                    revision = event.revision();
                    c.apply(&event);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "watch cache lost the store watch; reloading");
                    if let Ok(r) = c.load().await {
                        revision = r;
                    }
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use rkube_store::{EmbeddedStore, Store};

    /// A watch cache over a new store (sharing its decodes through `shared`) that has
    /// applied `body` written at `key`.
    async fn cache_with(
        shared: Arc<crate::watch::SharedEvents>,
        key: &str,
        body: &'static [u8],
    ) -> (tempfile::TempDir, Arc<super::Cacher>, rkube_store::KeyValue) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
        let cacher = super::Cacher::start(store.clone(), shared)
            .await
            .expect("cache");
        assert!(cacher.get(key).is_none());
        let kv = store
            .create(key, Bytes::from_static(body))
            .await
            .expect("created");
        assert!(
            cacher
                .wait_for(kv.mod_revision, Duration::from_secs(5))
                .await
        );
        (dir, cacher, kv)
    }

    #[tokio::test]
    async fn get_answers_what_the_store_holds_once_the_cache_follows() {
        let key = "/registry/core/namespaces/team";
        let body = br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team"}}"#;
        let (_dir, cacher, kv) = cache_with(Arc::default(), key, body).await;
        let cached = cacher.get(key).expect("cached");
        assert_eq!(cached.value["metadata"]["name"], "team");
        assert_eq!(
            cached.value["metadata"]["resourceVersion"],
            kv.mod_revision.to_string()
        );
        assert!(cacher.get("/registry/core/namespaces/other").is_none());
        assert!(cacher.get("not-a-key").is_none());
    }

    #[tokio::test]
    async fn the_cache_and_the_watchers_share_one_decoded_object_per_write() {
        let shared = Arc::new(crate::watch::SharedEvents::default());
        let key = "/registry/core/configmaps/default/a";
        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#;
        let (_dir, cacher, kv) = cache_with(shared.clone(), key, body).await;
        // A watcher of the write finds the object the cache decoded.
        let event = rkube_store::Event {
            kind: rkube_store::EventKind::Put,
            kv,
        };
        let watched = shared.get(&event).expect("decoded");
        let cached = cacher.get(key).expect("cached");
        assert!(Arc::ptr_eq(watched.cached(), &cached));
        assert_eq!(
            watched.object()["metadata"]["resourceVersion"],
            event.revision().to_string()
        );
    }

    #[test]
    fn a_list_item_is_the_object_without_kind_and_api_version() {
        let cached = super::Cached::new(
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "a \"quoted\" name", "labels": {"kind": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            }),
            7,
        );
        let item: serde_json::Value = serde_json::from_slice(cached.item()).expect("JSON");
        assert_eq!(
            item,
            serde_json::json!({
                "metadata": {
                    "name": "a \"quoted\" name",
                    "labels": {"kind": "web"},
                    "resourceVersion": "7",
                },
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            })
        );
        assert_eq!(cached.revision, 7);
        assert_eq!(
            cached.value["kind"], "Pod",
            "the object itself keeps its kind"
        );
        let scalar = super::Cached::new(serde_json::json!(3), 1);
        assert_eq!(scalar.item().as_ref(), b"3");
    }

    #[test]
    fn keys_map_to_resource_prefixes() {
        assert_eq!(
            super::resource_prefix("/registry/core/pods/ns/a"),
            Some("/registry/core/pods/")
        );
        assert_eq!(
            super::resource_prefix("/registry/core/namespaces/a"),
            Some("/registry/core/namespaces/")
        );
        assert_eq!(super::resource_prefix("/registry/x"), None);
        assert_eq!(super::resource_prefix("/other/a/b/c"), None);
    }
}
