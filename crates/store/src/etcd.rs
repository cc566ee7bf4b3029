//! The etcd backend: the store contract over the etcd v3 API, for highly available
//! control planes (`rkube server --datastore-endpoint http://HOST:2379,...`).
//!
//! Every guarded write is one etcd transaction comparing the key's create or mod revision,
//! as kube-apiserver's etcd3 storage does; etcd's revision is the store revision.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions,
    Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::contract::{
    Event, EventKind, KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreError,
    WatchStream, check_value_size, prefix_end,
};

/// The etcd store. Cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    endpoints: Arc<[String]>,
    /// The highest compacted revision this process has seen (etcd does not report it).
    compacted: Arc<AtomicI64>,
}

/// etcd's "range end" for "every key": the zero byte.
const ALL_KEYS_END: &[u8] = b"\0";

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` (`http://HOST:PORT` each) and checks that
    /// it answers. An unreachable cluster is [`StoreError::Unavailable`] naming the endpoints.
    pub async fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(10))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let endpoints: Arc<[String]> = endpoints.into();
        let unavailable = |e: etcd_client::Error| StoreError::Unavailable {
            reason: format!("cannot reach etcd at {}: {e}", endpoints.join(",")),
        };
        let mut client = Client::connect(endpoints.as_ref(), Some(options))
            .await
            .map_err(unavailable)?;
        // Connecting is lazy; one read proves the cluster answers.
        client
            .get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(unavailable)?;
        Ok(Self {
            client,
            endpoints,
            compacted: Arc::new(AtomicI64::new(0)),
        })
    }

    fn error(&self, err: etcd_client::Error, requested: Revision) -> StoreError {
        map_error(&self.endpoints, &self.compacted, err, requested)
    }

    async fn txn(&self, txn: Txn) -> Result<etcd_client::TxnResponse, StoreError> {
        self.client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| self.error(e, 0))
    }
}

fn map_error(
    endpoints: &[String],
    compacted: &AtomicI64,
    err: etcd_client::Error,
    requested: Revision,
) -> StoreError {
    if let etcd_client::Error::GRpcStatus(status) = &err {
        let message = status.message();
        if message.contains("required revision has been compacted") {
            let known = compacted.load(Ordering::Acquire);
            return StoreError::Compacted {
                requested,
                compacted: known.max(requested + 1),
            };
        }
        if message.contains("required revision is a future revision") {
            return StoreError::FutureRevision {
                requested,
                current: requested - 1,
            };
        }
        if message.contains("request is too large") {
            return StoreError::ValueTooLarge {
                key: String::new(),
                size: 0,
                limit: crate::contract::MAX_VALUE_BYTES,
            };
        }
        if !matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ) {
            return StoreError::Backend {
                reason: format!("etcd at {}: {message}", endpoints.join(",")),
            };
        }
    }
    StoreError::Unavailable {
        reason: format!("etcd at {}: {err}", endpoints.join(",")),
    }
}

fn to_kv(kv: etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
    let (key, value) = kv.into_key_value();
    let key = String::from_utf8(key).map_err(|_| StoreError::Backend {
        reason: "etcd returned a key that is not UTF-8".into(),
    })?;
    Ok(KeyValue {
        key,
        value: Bytes::from(value),
        create_revision,
        mod_revision,
    })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, |h| h.revision())
}

fn refused(key: &str, found: Option<Revision>, expected: Revision) -> StoreError {
    match found {
        None => StoreError::NotFound {
            key: key.to_owned(),
        },
        Some(actual) => StoreError::Conflict {
            key: key.to_owned(),
            expected,
            actual,
        },
    }
}

fn found_mod_revision(response: &etcd_client::TxnResponse) -> Option<Revision> {
    response.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
        _ => None,
    })
}

fn prev_kv(response: &etcd_client::TxnResponse) -> Option<etcd_client::KeyValue> {
    response.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Put(put) => put.prev_key().cloned(),
        TxnOpResponse::Delete(delete) => delete.prev_kvs().first().cloned(),
        _ => None,
    })
}

#[async_trait]
impl Store for EtcdStore {
    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let response = self
            .client
            .kv_client()
            .get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(|e| self.error(e, 0))?;
        Ok(header_revision(response.header()))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut response = self
            .client
            .kv_client()
            .get(key, None)
            .await
            .map_err(|e| self.error(e, 0))?;
        response
            .take_kvs()
            .into_iter()
            .next()
            .map(to_kv)
            .transpose()
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError> {
        let start = match &request.start_after {
            Some(after) if after.as_str() >= request.prefix.as_str() => {
                let mut start = after.as_bytes().to_vec();
                start.push(0);
                start
            }
            _ if request.prefix.is_empty() => ALL_KEYS_END.to_vec(),
            _ => request.prefix.as_bytes().to_vec(),
        };
        let end = prefix_end(request.prefix.as_bytes()).unwrap_or_else(|| ALL_KEYS_END.to_vec());
        let options = GetOptions::new()
            .with_range(end)
            .with_limit(request.limit as i64)
            .with_revision(request.revision);
        let mut response = self
            .client
            .kv_client()
            .get(start, Some(options))
            .await
            .map_err(|e| self.error(e, request.revision))?;
        let current = header_revision(response.header());
        let more = response.more();
        let kvs = response
            .take_kvs()
            .into_iter()
            .map(to_kv)
            .collect::<Result<_, _>>()?;
        Ok(RangeResponse {
            kvs,
            more,
            revision: if request.revision == 0 {
                current
            } else {
                request.revision
            },
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        check_value_size(key, &value)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let rev = header_revision(response.header());
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: rev,
            mod_revision: rev,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StoreError> {
        check_value_size(key, &value)?;
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key,
                CompareOp::Equal,
                expected_mod_revision,
            )])
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = self.txn(txn).await?;
        if !response.succeeded() {
            return Err(refused(
                key,
                found_mod_revision(&response),
                expected_mod_revision,
            ));
        }
        let create_revision = prev_kv(&response).map_or(0, |prev| prev.create_revision());
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: header_revision(response.header()),
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<KeyValue, StoreError> {
        let delete = TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()));
        let txn = match expected_mod_revision {
            Some(expected) => Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
                .and_then([delete])
                .or_else([TxnOp::get(key, None)]),
            None => Txn::new().and_then([delete]),
        };
        let response = self.txn(txn).await?;
        let prev = if response.succeeded() {
            prev_kv(&response)
        } else {
            None
        };
        let Some(prev) = prev else {
            return Err(refused(
                key,
                found_mod_revision(&response),
                expected_mod_revision.unwrap_or(0),
            ));
        };
        let mut kv = to_kv(prev)?;
        kv.mod_revision = header_revision(response.header());
        Ok(kv)
    }

    async fn watch(
        &self,
        prefix: &str,
        after_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        let known = self.compacted.load(Ordering::Acquire);
        if after_revision + 1 < known {
            return Err(StoreError::Compacted {
                requested: after_revision + 1,
                compacted: known,
            });
        }
        let (key, end) = if prefix.is_empty() {
            (ALL_KEYS_END.to_vec(), ALL_KEYS_END.to_vec())
        } else {
            let end = prefix_end(prefix.as_bytes()).unwrap_or_else(|| ALL_KEYS_END.to_vec());
            (prefix.as_bytes().to_vec(), end)
        };
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(after_revision + 1)
            .with_prev_key();
        let mut stream = self
            .client
            .watch_client()
            .watch(key, Some(options))
            .await
            .map_err(|e| self.error(e, after_revision))?;
        let (tx, rx) = mpsc::channel(256);
        let store = self.clone();
        tokio::spawn(async move {
            let mut last = after_revision;
            loop {
                let message = tokio::select! {
                    _ = tx.closed() => return,
                    message = stream.message() => message,
                };
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => {
                        let reason = "etcd closed the watch stream".to_owned();
                        let _ = tx.send(Err(StoreError::Unavailable { reason })).await;
                        return;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(store.error(err, last))).await;
                        return;
                    }
                };
                if response.canceled() {
                    let compacted = response.compact_revision();
                    let err = if compacted > 0 {
                        store.compacted.fetch_max(compacted, Ordering::AcqRel);
                        StoreError::Compacted {
                            requested: last,
                            compacted,
                        }
                    } else {
                        StoreError::Unavailable {
                            reason: format!(
                                "etcd cancelled the watch: {}",
                                response.cancel_reason()
                            ),
                        }
                    };
                    let _ = tx.send(Err(err)).await;
                    return;
                }
                for event in response.events() {
                    let Some(kv) = event.kv() else { continue };
                    let converted = match event.event_type() {
                        EventType::Put => to_kv(kv.clone()).map(|kv| Event {
                            kind: EventKind::Put,
                            kv,
                        }),
                        EventType::Delete => {
                            // The delete carries only the key; the last value is prev_kv.
                            let prev = event.prev_kv().cloned().unwrap_or_else(|| kv.clone());
                            to_kv(prev).map(|mut last_value| {
                                last_value.mod_revision = kv.mod_revision();
                                Event {
                                    kind: EventKind::Delete,
                                    kv: last_value,
                                }
                            })
                        }
                    };
                    if let Ok(event) = &converted {
                        last = event.revision();
                    }
                    if tx.send(converted).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        if revision <= self.compacted.load(Ordering::Acquire) {
            return Ok(());
        }
        match self.client.kv_client().compact(revision, None).await {
            Ok(_) => {}
            Err(err) => match self.error(err, revision) {
                // Someone (another server) compacted further already.
                StoreError::Compacted { .. } => {}
                StoreError::FutureRevision { requested, .. } => {
                    return Err(StoreError::FutureRevision {
                        requested,
                        current: self.current_revision().await?,
                    });
                }
                other => return Err(other),
            },
        }
        self.compacted.fetch_max(revision, Ordering::AcqRel);
        Ok(())
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.compacted.load(Ordering::Acquire))
    }
}
