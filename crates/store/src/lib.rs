//! rkube's store: a revisioned key-value store with etcd's semantics (see [`Store`] for the
//! contract), with an embedded SQLite backend (the default) and an etcd backend, a watch hub
//! that fans one watch out to many subscribers, and automatic compaction.

mod compactor;
mod contract;
mod embedded;
mod etcd;
mod hub;
pub mod local_etcd;

pub use compactor::{CompactionPolicy, spawn_compactor};
pub use contract::{
    Event, EventKind, KeyValue, MAX_VALUE_BYTES, RangeRequest, RangeResponse, Revision, Store,
    StoreError, WatchStream, check_value_size, prefix_end,
};
pub use embedded::{EmbeddedStore, FILE_NAME as EMBEDDED_FILE_NAME};
pub use etcd::EtcdStore;
pub use hub::{HubStream, WatchHub};

use std::path::PathBuf;
use std::sync::Arc;

/// Where the store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file under this data dir.
    Embedded(PathBuf),
    /// An etcd cluster at these `http://HOST:PORT` endpoints.
    Etcd(Vec<String>),
}

impl Backend {
    /// Parses `--datastore-endpoint`: empty or absent means embedded under `data_dir`;
    /// otherwise a comma-separated list of `http://` or `https://` etcd endpoints.
    pub fn from_endpoint(endpoint: Option<&str>, data_dir: PathBuf) -> Result<Self, StoreError> {
        let Some(endpoint) = endpoint.filter(|e| !e.trim().is_empty()) else {
            return Ok(Backend::Embedded(data_dir));
        };
        let endpoints: Vec<String> = endpoint
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = endpoints
            .iter()
            .find(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err(StoreError::Unavailable {
                reason: format!(
                    "--datastore-endpoint {bad:?} is not an etcd URL; use http://HOST:2379[,http://HOST2:2379]"
                ),
            });
        }
        Ok(Backend::Etcd(endpoints))
    }

    /// Opens the store.
    pub async fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        match self {
            Backend::Embedded(dir) => Ok(Arc::new(EmbeddedStore::open(dir)?)),
            Backend::Etcd(endpoints) => Ok(Arc::new(EtcdStore::connect(endpoints).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_selects_the_backend() {
        let dir = PathBuf::from("/d");
        assert_eq!(
            Backend::from_endpoint(None, dir.clone()).unwrap(),
            Backend::Embedded(dir.clone())
        );
        assert_eq!(
            Backend::from_endpoint(Some("http://a:2379, http://b:2379"), dir.clone()).unwrap(),
            Backend::Etcd(vec!["http://a:2379".into(), "http://b:2379".into()])
        );
        assert!(Backend::from_endpoint(Some("a:2379"), dir).is_err());
    }
}
