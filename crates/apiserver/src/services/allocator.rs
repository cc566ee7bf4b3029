//! A range allocation kept in the store, as kube-apiserver's legacy allocators keep theirs
//! (`/registry/ranges/serviceips`, `/registry/ranges/servicenodeports`): one key holding a
//! `RangeAllocation` (the range and a bitmap), changed only by compare-and-swap on the key's
//! mod revision. Every API server sharing the store therefore agrees on what is taken: a
//! write based on a stale bitmap fails and is retried on the fresh one. Within one server a
//! mutex serializes the writes so they do not conflict with each other.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use rkube_store::{Revision, Store, StoreError};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::ranges::Bitmap;

/// How often a write is retried after losing a compare-and-swap to another server.
const MAX_ATTEMPTS: usize = 64;

/// Why an allocation failed.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    /// The value is outside the range.
    #[error("not in range")]
    NotInRange,
    /// The value is taken.
    #[error("already allocated")]
    Allocated,
    /// Nothing is free.
    #[error("range is full")]
    Full,
    /// The store holds an allocation for another range (the flag changed, or another server
    /// runs with another one) and the repair pass has not rebuilt it.
    #[error("the allocation in the store is for {stored}, not {configured}")]
    Mismatch { stored: String, configured: String },
    /// The stored allocation is not readable.
    #[error("the allocation under {key} is damaged: {reason}")]
    Damaged { key: String, reason: String },
    /// Too many servers wrote at once.
    #[error("too many concurrent allocations; try again")]
    Contended,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The bitmap as last read or written, and the key's mod revision then (`None`: no key).
#[derive(Clone)]
pub struct Snapshot {
    pub bitmap: Bitmap,
    pub revision: Option<Revision>,
}

/// One range's allocation in the store.
pub struct StoredRange {
    store: Arc<dyn Store>,
    key: String,
    spec: String,
    size: usize,
    serial: Mutex<()>,
}

impl StoredRange {
    /// The allocation of the range `spec` (its text form, e.g. `10.43.0.0/16`) of `size`
    /// values under `key`.
    pub fn new(store: Arc<dyn Store>, key: &str, spec: String, size: usize) -> Self {
        Self {
            store,
            key: key.to_owned(),
            spec,
            size,
            serial: Mutex::new(()),
        }
    }

    /// The stored allocation now. A missing key is an empty bitmap; a bitmap for another
    /// range is [`AllocError::Mismatch`] unless `accept_other_range` (the repair pass, which
    /// replaces it).
    pub async fn read(&self, accept_other_range: bool) -> Result<Snapshot, AllocError> {
        let Some(kv) = self.store.get(&self.key).await? else {
            return Ok(Snapshot {
                bitmap: Bitmap::new(self.size),
                revision: None,
            });
        };
        let damaged = |reason: &str| AllocError::Damaged {
            key: self.key.clone(),
            reason: reason.to_owned(),
        };
        let value: Value =
            serde_json::from_slice(&kv.value).map_err(|e| damaged(&e.to_string()))?;
        let stored = value["range"].as_str().unwrap_or("");
        let bitmap = if stored != self.spec {
            if !accept_other_range {
                return Err(AllocError::Mismatch {
                    stored: stored.to_owned(),
                    configured: self.spec.clone(),
                });
            }
            Bitmap::new(self.size)
        } else {
            let data = base64::engine::general_purpose::STANDARD
                .decode(value["data"].as_str().unwrap_or(""))
                .map_err(|e| damaged(&e.to_string()))?;
            Bitmap::from_bytes(self.size, &data)
                .ok_or_else(|| damaged("the bitmap does not fit the range"))?
        };
        Ok(Snapshot {
            bitmap,
            revision: Some(kv.mod_revision),
        })
    }

    fn encode(&self, bitmap: &Bitmap) -> Bytes {
        let data = base64::engine::general_purpose::STANDARD.encode(bitmap.to_bytes());
        let value = json!({
            "kind": "RangeAllocation",
            "apiVersion": "v1",
            "metadata": {},
            "range": self.spec,
            "data": data,
        });
        Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
    }

    /// Writes `bitmap` over the allocation read as `revision` (compare-and-swap). Returns
    /// the new revision, or `Ok(None)` when another write came first.
    pub async fn write(
        &self,
        bitmap: &Bitmap,
        revision: Option<Revision>,
    ) -> Result<Option<Revision>, AllocError> {
        let value = self.encode(bitmap);
        let written = match revision {
            None => self.store.create(&self.key, value).await,
            Some(rev) => self.store.update(&self.key, value, rev).await,
        };
        match written {
            Ok(kv) => Ok(Some(kv.mod_revision)),
            Err(
                StoreError::Conflict { .. }
                | StoreError::AlreadyExists { .. }
                | StoreError::NotFound { .. },
            ) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `change` to the allocation as stored now and writes the result, retrying on
    /// a fresh read when another server wrote first. `change` returns its result and whether
    /// it changed the bitmap (nothing is written when it did not).
    pub async fn modify<T>(
        &self,
        mut change: impl FnMut(&mut Bitmap) -> Result<(T, bool), AllocError>,
    ) -> Result<T, AllocError> {
        // Writes from this server go one at a time, so they never conflict with each other.
        let _serial = self.serial.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            let mut snapshot = self.read(false).await?;
            let (result, changed) = change(&mut snapshot.bitmap)?;
            if !changed {
                return Ok(result);
            }
            if self
                .write(&snapshot.bitmap, snapshot.revision)
                .await?
                .is_some()
            {
                return Ok(result);
            }
            // Another server wrote first: read again and decide again.
        }
        Err(AllocError::Contended)
    }
}
