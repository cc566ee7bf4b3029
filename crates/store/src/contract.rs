//! The storage contract every backend implements: etcd's semantics, sized for Kubernetes.

use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

/// A point in the store's history. Revisions start at 1 and grow by one with every
/// successful write (create, update or delete), across all keys.
pub type Revision = i64;

/// The largest value a write may carry: etcd's default request limit (1.5 MiB).
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;

/// One key as stored at some revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, for example `/registry/core/pods/default/web-0`.
    pub key: String,
    /// The stored bytes. Cloning shares the buffer; it never copies the value.
    pub value: Bytes,
    /// The revision at which the key was (last) created.
    pub create_revision: Revision,
    /// The revision of the last write to the key. This is Kubernetes' `resourceVersion`.
    pub mod_revision: Revision,
}

/// What happened to a key at one revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created (`kv.create_revision == kv.mod_revision`) or updated.
    Put,
    /// The key was deleted. The event's `kv` holds the last value the key had, with
    /// `mod_revision` set to the revision of the delete.
    Delete,
}

/// One change, as delivered by [`Store::watch`]. Every revision is exactly one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after a put, or the last value before a delete (see [`EventKind::Delete`]).
    pub kv: KeyValue,
}

impl Event {
    /// The revision at which this event happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }

    /// Whether this put created the key (as opposed to updating it).
    pub fn is_create(&self) -> bool {
        self.kind == EventKind::Put && self.kv.create_revision == self.kv.mod_revision
    }
}

/// A read of every key under a prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    /// Only keys that start with this prefix are returned. An empty prefix means all keys.
    pub prefix: String,
    /// Return only keys strictly greater than this one: the continue key of a paged read.
    pub start_after: Option<String>,
    /// At most this many keys; 0 means no limit.
    pub limit: usize,
    /// Read the keys as they were at this revision; 0 means the current revision.
    pub revision: Revision,
}

/// The answer to a [`RangeRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// The keys, in ascending byte order of key.
    pub kvs: Vec<KeyValue>,
    /// Whether more keys matched than `limit` allowed. Continue with the last key.
    pub more: bool,
    /// The revision the read was served at. For paged reads, pass it as `revision`
    /// to read the next page from the same snapshot.
    pub revision: Revision,
}

/// Every way a store operation can fail. Each variant is a distinct outcome that callers
/// act on; none carries a message to be parsed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` of a key that exists.
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// `update` or `delete` of a key that does not exist.
    #[error("key {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// `update` or `delete` whose expected mod revision is not the key's current one.
    #[error("key {key} was modified: expected mod revision {expected}, it is at {actual}")]
    Conflict {
        /// The key.
        key: String,
        /// The mod revision the caller expected.
        expected: Revision,
        /// The key's mod revision now.
        actual: Revision,
    },
    /// A read or watch below the compacted revision. The API turns this into 410 Gone.
    #[error("revision {requested} has been compacted; the oldest readable revision is {compacted}")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The compacted revision: the oldest one still readable.
        compacted: Revision,
    },
    /// A read at a revision the store has not reached yet.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// A value over [`MAX_VALUE_BYTES`]. The API turns this into 413.
    #[error("value for key {key} is {size} bytes, over the limit of {limit} bytes")]
    ValueTooLarge {
        /// The key.
        key: String,
        /// The value's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The file at the data path is not an rkube store, or is damaged. Never silently reset.
    #[error("store file {path} is unusable: {reason}; move it away or point --data-dir elsewhere")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend cannot be reached or has been closed; the operation may be retried.
    #[error("store unavailable: {reason}")]
    Unavailable {
        /// Why, in words for an operator.
        reason: String,
    },
    /// The backend failed in a way not listed above (I/O error, disk full, ...).
    #[error("store backend error: {reason}")]
    Backend {
        /// Why, in words for an operator.
        reason: String,
    },
}

/// The changes under a prefix, in revision order. It ends after yielding an error.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StoreError>> + Send>>;

/// A revisioned key-value store with etcd's semantics.
///
/// The contract, which `tests/conformance.rs` checks clause by clause for every backend:
///
/// 1. **Revisions.** There is one global revision. Every successful write increments it by
///    exactly one and stamps the written key with it (`mod_revision`). Failed writes do not
///    change it. [`Store::current_revision`] is the revision of the last successful write
///    (a new embedded store is at 0; a new etcd cluster at 1).
/// 2. **Reads.** [`Store::get`] reads one key at the current revision. [`Store::range`]
///    reads the keys under a prefix in ascending key order, at the current revision or at
///    an older one, with a limit and a continue key (`start_after`).
/// 3. **Guarded writes.** [`Store::create`] succeeds only when the key is absent.
///    [`Store::update`] and [`Store::delete`] succeed only when the key's mod revision is the
///    one the caller read (compare-and-swap); `delete` may skip the guard.
/// 4. **Watch.** [`Store::watch`] yields every event under a prefix with a revision
///    strictly greater than `after_revision`: ordered by revision, with no gaps and no
///    duplicates. Each revision is one event, so events are atomic per revision. A watch
///    resumes where an earlier one stopped by passing the last revision it saw.
/// 5. **Compaction.** After [`Store::compact`] at `c`, reading at a revision below `c`, or
///    watching for events from a revision below `c` (`after_revision < c - 1`), fails with [`StoreError::Compacted`] (410 Gone in the API); reads at
///    `c` or later are unaffected.
/// 6. **Durability.** A write that returned `Ok` survives the process being killed.
/// 7. **Limits.** A value over [`MAX_VALUE_BYTES`] is refused with
///    [`StoreError::ValueTooLarge`] and changes nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The revision of the last successful write.
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// The key at the current revision, or `None` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// The keys under a prefix, at a revision, one page at a time.
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError>;

    /// Creates a key that must not exist. Returns it as stored.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError>;

    /// Replaces the value of a key whose mod revision is `expected_mod_revision`.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StoreError>;

    /// Deletes a key, guarded by its mod revision when `expected_mod_revision` is given.
    /// Returns the last value, with `mod_revision` set to the revision of the delete.
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<KeyValue, StoreError>;

    /// The events under `prefix` after `after_revision`; see the contract above.
    async fn watch(
        &self,
        prefix: &str,
        after_revision: Revision,
    ) -> Result<WatchStream, StoreError>;

    /// Forgets history below `revision`. Compacting to a revision at or below the
    /// compacted one is a no-op; above the current one is [`StoreError::FutureRevision`].
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// The oldest revision still readable (0 before any compaction).
    async fn compacted_revision(&self) -> Result<Revision, StoreError>;
}

/// Refuses values over [`MAX_VALUE_BYTES`]; every backend calls this before writing.
pub fn check_value_size(key: &str, value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::ValueTooLarge {
            key: key.to_owned(),
            size: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// The first key after every key that starts with `prefix`, as etcd's `range_end`.
/// `None` means the prefix has no upper bound (it is empty or all 0xff bytes).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(
            prefix_end(b"/registry/pods/"),
            Some(b"/registry/pods0".to_vec())
        );
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }

    #[test]
    fn value_size_limit_is_etcds() {
        assert!(check_value_size("k", &vec![0; MAX_VALUE_BYTES]).is_ok());
        let err = check_value_size("k", &vec![0; MAX_VALUE_BYTES + 1]).unwrap_err();
        assert!(
            matches!(err, StoreError::ValueTooLarge { size, .. } if size == MAX_VALUE_BYTES + 1)
        );
    }
}
