//! The embedded backend: one SQLite file under the data dir, the default store.
//!
//! One writer thread owns the write connection and group-commits (see `writer.rs`);
//! reads run on a small pool of read connections beside it (SQLite's WAL mode lets them
//! read a consistent snapshot while the writer commits). Watchers subscribe to the events
//! the writer publishes after each commit and catch up from the `log` table when they
//! start behind or fall behind.

mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::contract::{
    Event, EventKind, KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreError,
    WatchStream, check_value_size, prefix_end,
};
use schema::{meta, sql_error};
use writer::{WriteOp, WriteRequest};

/// Events buffered for live watchers before a slow one must catch up from the log.
const EVENT_BUFFER: usize = 8192;
/// Log rows read per step when a watcher catches up.
const CATCH_UP_PAGE: usize = 1000;
/// Revisions deleted per transaction during compaction, so writers never wait long.
const COMPACT_CHUNK: i64 = 2000;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;

/// The file name of the store under the data dir.
pub const FILE_NAME: &str = "state.db";

/// State shared by the writer thread and the async front.
pub(crate) struct Shared {
    /// The revision of the last committed write.
    revision: AtomicI64,
    compacted: AtomicI64,
}

/// The embedded store. Cheap to clone; all clones are one store.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    shared: Arc<Shared>,
    writes: mpsc::Sender<WriteRequest>,
    events: broadcast::Sender<Arc<Event>>,
    readers: Mutex<Vec<Connection>>,
    compaction: tokio::sync::Mutex<()>,
}

impl EmbeddedStore {
    /// Opens the store in `data_dir` (creating the directory and file when absent).
    ///
    /// A file that is not an rkube store, or is damaged, is refused with
    /// [`StoreError::Corrupt`] naming it; it is never reset.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Backend {
            reason: format!("cannot create data dir {}: {e}", data_dir.display()),
        })?;
        Self::open_file(&data_dir.join(FILE_NAME))
    }

    /// Opens the store at exactly this file path.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        let conn = schema::open_writer(path)?;
        let revision = meta(&conn, "revision").map_err(|e| sql_error(path, e))?;
        let compacted = meta(&conn, "compacted").map_err(|e| sql_error(path, e))?;
        let shared = Arc::new(Shared {
            revision: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
        });
        let (writes, requests) = mpsc::channel(4096);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let thread_shared = shared.clone();
        let thread_events = events.clone();
        let thread_path = path.to_owned();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, thread_path, thread_shared, requests, thread_events))
            .map_err(|e| StoreError::Backend {
                reason: format!("cannot start the store writer thread: {e}"),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                shared,
                writes,
                events,
                readers: Mutex::new(Vec::new()),
                compaction: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The path of the store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue, StoreError> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Unavailable {
            reason: "the store writer has stopped".into(),
        };
        self.inner
            .writes
            .send(WriteRequest { op, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs `read` on a pooled read connection inside one read transaction (a snapshot).
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let mut conn = match pooled {
                Some(conn) => conn,
                None => schema::open_reader(&inner.path)?,
            };
            let result = conn
                .transaction()
                .map_err(|e| sql_error(&inner.path, e))
                .and_then(|tx| read(&tx, &inner.path));
            if let Ok(mut pool) = inner.readers.lock()
                && pool.len() < MAX_IDLE_READERS
            {
                pool.push(conn);
            }
            result
        });
        task.await.map_err(|e| StoreError::Backend {
            reason: format!("store read task failed: {e}"),
        })?
    }
}

/// Bounds a read at a revision: 0 means the snapshot's own revision.
fn read_revision(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    requested: Revision,
) -> Result<Revision, StoreError> {
    let current = meta(tx, "revision").map_err(|e| sql_error(path, e))?;
    if requested == 0 {
        return Ok(current);
    }
    let compacted = meta(tx, "compacted").map_err(|e| sql_error(path, e))?;
    if requested < compacted {
        return Err(StoreError::Compacted {
            requested,
            compacted,
        });
    }
    if requested > current {
        return Err(StoreError::FutureRevision { requested, current });
    }
    Ok(requested)
}

fn key_string(path: &Path, bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| schema::corrupt(path, "a key is not valid UTF-8"))
}

/// Reads log rows after `after` under the prefix, at most one page, checking compaction.
fn catch_up(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    prefix: &str,
    after: Revision,
) -> Result<Vec<Event>, StoreError> {
    let compacted = meta(tx, "compacted").map_err(|e| sql_error(path, e))?;
    if after + 1 < compacted {
        return Err(StoreError::Compacted {
            requested: after + 1,
            compacted,
        });
    }
    let start = prefix.as_bytes();
    let end = prefix_end(start);
    let sql = "SELECT rev, key, deleted, value, create_rev FROM log
               WHERE rev > ?1 AND key >= ?2 AND (?3 IS NULL OR key < ?3)
               ORDER BY rev LIMIT ?4";
    let mut stmt = tx.prepare_cached(sql).map_err(|e| sql_error(path, e))?;
    let rows = stmt
        .query_map(params![after, start, end, CATCH_UP_PAGE as i64], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, bool>(2)?,
                row.get::<_, Vec<u8>>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })
        .map_err(|e| sql_error(path, e))?;
    let mut events = Vec::new();
    for row in rows {
        let (rev, key, deleted, value, create_rev) = row.map_err(|e| sql_error(path, e))?;
        events.push(Event {
            kind: if deleted {
                EventKind::Delete
            } else {
                EventKind::Put
            },
            kv: KeyValue {
                key: key_string(path, key)?,
                value: Bytes::from(value),
                create_revision: create_rev,
                mod_revision: rev,
            },
        });
    }
    Ok(events)
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.inner.shared.revision.load(Ordering::Acquire))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_owned();
        self.read(move |tx, path| {
            let sql = "SELECT log.value, kv.create_rev, kv.mod_rev FROM kv
                       JOIN log ON log.rev = kv.mod_rev WHERE kv.key = ?1";
            let found = tx
                .prepare_cached(sql)
                .and_then(|mut stmt| {
                    stmt.query_row([key.as_bytes()], |row| {
                        Ok((row.get::<_, Vec<u8>>(0)?, row.get(1)?, row.get(2)?))
                    })
                    .optional()
                })
                .map_err(|e| sql_error(path, e))?;
            Ok(
                found.map(|(value, create_revision, mod_revision)| KeyValue {
                    key,
                    value: Bytes::from(value),
                    create_revision,
                    mod_revision,
                }),
            )
        })
        .await
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError> {
        self.read(move |tx, path| {
            let revision = read_revision(tx, path, request.revision)?;
            let start = match &request.start_after {
                // The smallest key greater than `after` is `after` + NUL.
                Some(after) if after.as_str() >= request.prefix.as_str() => {
                    let mut start = after.as_bytes().to_vec();
                    start.push(0);
                    start
                }
                _ => request.prefix.as_bytes().to_vec(),
            };
            let end = prefix_end(request.prefix.as_bytes());
            let limit = if request.limit == 0 {
                -1
            } else {
                request.limit as i64 + 1
            };
            let current = meta(tx, "revision").map_err(|e| sql_error(path, e))?;
            let sql = if revision == current {
                "SELECT kv.key, log.value, kv.create_rev, kv.mod_rev FROM kv
                 JOIN log ON log.rev = kv.mod_rev
                 WHERE kv.key >= ?1 AND (?2 IS NULL OR kv.key < ?2) AND ?3 >= 0
                 ORDER BY kv.key LIMIT ?4"
            } else {
                // The newest log row of each key at or below the revision, unless a delete.
                "SELECT l.key, l.value, l.create_rev, l.rev FROM log l
                 WHERE l.key >= ?1 AND (?2 IS NULL OR l.key < ?2) AND l.deleted = 0
                   AND l.rev = (SELECT max(n.rev) FROM log n WHERE n.key = l.key AND n.rev <= ?3)
                 ORDER BY l.key LIMIT ?4"
            };
            let mut stmt = tx.prepare_cached(sql).map_err(|e| sql_error(path, e))?;
            let rows = stmt
                .query_map(params![start, end, revision, limit], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .map_err(|e| sql_error(path, e))?;
            let mut kvs = Vec::new();
            for row in rows {
                let (key, value, create_revision, mod_revision) =
                    row.map_err(|e| sql_error(path, e))?;
                kvs.push(KeyValue {
                    key: key_string(path, key)?,
                    value: Bytes::from(value),
                    create_revision,
                    mod_revision,
                });
            }
            let more = request.limit != 0 && kvs.len() > request.limit;
            kvs.truncate(if more { request.limit } else { kvs.len() });
            Ok(RangeResponse {
                kvs,
                more,
                revision,
            })
        })
        .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        check_value_size(key, &value)?;
        self.write(WriteOp::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StoreError> {
        check_value_size(key, &value)?;
        self.write(WriteOp::Update {
            key: key.to_owned(),
            value,
            expected: expected_mod_revision,
        })
        .await
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<KeyValue, StoreError> {
        self.write(WriteOp::Delete {
            key: key.to_owned(),
            expected: expected_mod_revision,
        })
        .await
    }

    async fn watch(
        &self,
        prefix: &str,
        after_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        // Subscribe before reading history, so no event falls between the two.
        let live = self.inner.events.subscribe();
        let compacted = self.inner.shared.compacted.load(Ordering::Acquire);
        if after_revision + 1 < compacted {
            return Err(StoreError::Compacted {
                requested: after_revision + 1,
                compacted,
            });
        }
        let (tx, rx) = mpsc::channel(256);
        let store = self.clone();
        let prefix = prefix.to_owned();
        tokio::spawn(async move { store.feed_watch(prefix, after_revision, live, tx).await });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let _one_at_a_time = self.inner.compaction.lock().await;
        let previous = self.inner.shared.compacted.load(Ordering::Acquire);
        if revision <= previous {
            return Ok(());
        }
        let current = self.inner.shared.revision.load(Ordering::Acquire);
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || compact_file(&inner, revision));
        task.await.map_err(|e| StoreError::Backend {
            reason: format!("compaction task failed: {e}"),
        })?
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.inner.shared.compacted.load(Ordering::Acquire))
    }
}

impl EmbeddedStore {
    /// Feeds one watcher: history from the log, then live events, catching up from the log
    /// again whenever it falls behind the live buffer.
    async fn feed_watch(
        self,
        prefix: String,
        mut last: Revision,
        mut live: broadcast::Receiver<Arc<Event>>,
        tx: mpsc::Sender<Result<Event, StoreError>>,
    ) {
        let mut behind = true;
        loop {
            if behind {
                let page = {
                    let prefix = prefix.clone();
                    self.read(move |t, path| catch_up(t, path, &prefix, last))
                        .await
                };
                match page {
                    Ok(events) => {
                        behind = events.len() == CATCH_UP_PAGE;
                        for event in events {
                            last = event.revision();
                            if tx.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                }
                continue;
            }
            let received = tokio::select! {
                _ = tx.closed() => return,
                received = live.recv() => received,
            };
            match received {
                Ok(event) => {
                    if event.revision() > last && event.kv.key.starts_with(&prefix) {
                        last = event.revision();
                        if tx.send(Ok(Event::clone(&event))).await.is_err() {
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => behind = true,
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = tx
                        .send(Err(StoreError::Unavailable {
                            reason: "the store was closed".into(),
                        }))
                        .await;
                    return;
                }
            }
        }
    }
}

/// Compacts the file to `revision`: first records the new compacted revision (so reads
/// below it fail at once), then deletes superseded history in short transactions.
fn compact_file(inner: &Inner, revision: Revision) -> Result<(), StoreError> {
    let path = &inner.path;
    let err = |e| sql_error(path, e);
    let conn = schema::open_reader(path)?;
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE name = 'compacted' AND value < ?1",
        [revision],
    )
    .map_err(err)?;
    inner.shared.compacted.store(revision, Ordering::Release);
    let oldest: Option<i64> = conn
        .query_row("SELECT min(rev) FROM log", [], |row| row.get(0))
        .map_err(err)?;
    let mut from = oldest.unwrap_or(revision);
    // A row below the compacted revision goes when it is a tombstone or a newer row of its
    // key exists at or below the compacted revision: reads at `revision` or later never
    // need it. The newest value of every live key stays.
    let sql = "DELETE FROM log WHERE rev >= ?1 AND rev < ?2 AND (deleted = 1 OR EXISTS (
                   SELECT 1 FROM log n WHERE n.key = log.key AND n.rev > log.rev AND n.rev <= ?3))";
    while from < revision {
        let to = (from + COMPACT_CHUNK).min(revision);
        conn.execute(sql, params![from, to, revision])
            .map_err(err)?;
        from = to;
    }
    // Give the freed pages back to the file system so the file shrinks.
    conn.execute_batch("PRAGMA incremental_vacuum;")
        .map_err(err)?;
    Ok(())
}
