//! The single writer thread: group commit.
//!
//! Every write is sent here. The thread takes the first waiting write and every other one
//! queued behind it (up to [`MAX_BATCH`]), applies them in one SQLite transaction, commits
//! once (one fsync for the whole batch), publishes the events, and only then answers the
//! callers. Concurrent writers therefore share one durable commit.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::Shared;
use super::schema::sql_error;
use crate::contract::{Event, EventKind, KeyValue, Revision, StoreError};

/// The most writes committed together.
const MAX_BATCH: usize = 512;

pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

pub(crate) struct WriteRequest {
    pub op: WriteOp,
    pub reply: oneshot::Sender<Result<KeyValue, StoreError>>,
}

pub(crate) fn run(
    conn: Connection,
    path: PathBuf,
    shared: Arc<Shared>,
    mut requests: mpsc::Receiver<WriteRequest>,
    events: broadcast::Sender<Arc<Event>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = requests.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let base = shared.revision.load(Ordering::Acquire);
        match apply_batch(&conn, base, &batch) {
            Ok((results, head)) => {
                shared.revision.store(head, Ordering::Release);
                for (request, result) in batch.drain(..).zip(results) {
                    if let Ok(kv) = &result.0 {
                        // A send error only means nobody is watching.
                        let _ = events.send(Arc::new(Event {
                            kind: result.1,
                            kv: kv.clone(),
                        }));
                    }
                    let _ = request.reply.send(result.0);
                }
            }
            Err(err) => {
                let reason = sql_error(&path, err).to_string();
                tracing::error!(%reason, "store commit failed; the batch was rolled back");
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(StoreError::Backend {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }
}

type Outcome = (Result<KeyValue, StoreError>, EventKind);

/// Applies a batch in one transaction. A write refused by its guard changes nothing and
/// uses no revision; a SQLite failure rolls the whole batch back.
///
/// The transaction's statements are prepared once and kept, as every write's are: this
/// runs for every commit, and preparing `BEGIN`, `COMMIT` and the revision's update anew
/// each time was a tenth of this thread's work outside the commit itself.
fn apply_batch(
    conn: &Connection,
    base: Revision,
    batch: &[WriteRequest],
) -> rusqlite::Result<(Vec<Outcome>, Revision)> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let applied = apply_writes(conn, base, batch).and_then(|(results, head)| {
        if head != base {
            conn.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
                .execute([head])?;
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok((results, head))
    });
    if applied.is_err() && !conn.is_autocommit() {
        // The failure is the one reported; a rollback that fails too leaves nothing more
        // to undo (SQLite has rolled back already).
        let _ = conn.execute_batch("ROLLBACK");
    }
    applied
}

fn apply_writes(
    tx: &Connection,
    base: Revision,
    batch: &[WriteRequest],
) -> rusqlite::Result<(Vec<Outcome>, Revision)> {
    let mut head = base;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        let outcome = match &request.op {
            WriteOp::Create { key, value } => (create(tx, &mut head, key, value)?, EventKind::Put),
            WriteOp::Update {
                key,
                value,
                expected,
            } => (
                update(tx, &mut head, key, value, *expected)?,
                EventKind::Put,
            ),
            WriteOp::Delete { key, expected } => {
                (delete(tx, &mut head, key, *expected)?, EventKind::Delete)
            }
        };
        results.push(outcome);
    }
    Ok((results, head))
}

/// The key's (create_rev, mod_rev) when it exists.
fn current(tx: &Connection, key: &str) -> rusqlite::Result<Option<(Revision, Revision)>> {
    tx.prepare_cached("SELECT create_rev, mod_rev FROM kv WHERE key = ?1")?
        .query_row([key.as_bytes()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

fn append_log(
    tx: &Connection,
    rev: Revision,
    key: &str,
    deleted: bool,
    value: &[u8],
    create_rev: Revision,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO log (rev, key, deleted, value, create_rev) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![rev, key.as_bytes(), deleted, value, create_rev])?;
    Ok(())
}

fn create(
    tx: &Connection,
    head: &mut Revision,
    key: &str,
    value: &Bytes,
) -> rusqlite::Result<Result<KeyValue, StoreError>> {
    if current(tx, key)?.is_some() {
        return Ok(Err(StoreError::AlreadyExists {
            key: key.to_owned(),
        }));
    }
    let rev = *head + 1;
    append_log(tx, rev, key, false, value, rev)?;
    tx.prepare_cached("INSERT INTO kv (key, create_rev, mod_rev) VALUES (?1, ?2, ?2)")?
        .execute(params![key.as_bytes(), rev])?;
    *head = rev;
    Ok(Ok(KeyValue {
        key: key.to_owned(),
        value: value.clone(),
        create_revision: rev,
        mod_revision: rev,
    }))
}

fn guard(
    key: &str,
    found: Option<(Revision, Revision)>,
    expected: Option<Revision>,
) -> Result<(Revision, Revision), StoreError> {
    let Some((create_rev, mod_rev)) = found else {
        return Err(StoreError::NotFound {
            key: key.to_owned(),
        });
    };
    match expected {
        Some(expected) if expected != mod_rev => Err(StoreError::Conflict {
            key: key.to_owned(),
            expected,
            actual: mod_rev,
        }),
        _ => Ok((create_rev, mod_rev)),
    }
}

fn update(
    tx: &Connection,
    head: &mut Revision,
    key: &str,
    value: &Bytes,
    expected: Revision,
) -> rusqlite::Result<Result<KeyValue, StoreError>> {
    let (create_rev, _) = match guard(key, current(tx, key)?, Some(expected)) {
        Ok(found) => found,
        Err(refused) => return Ok(Err(refused)),
    };
    let rev = *head + 1;
    append_log(tx, rev, key, false, value, create_rev)?;
    tx.prepare_cached("UPDATE kv SET mod_rev = ?2 WHERE key = ?1")?
        .execute(params![key.as_bytes(), rev])?;
    *head = rev;
    Ok(Ok(KeyValue {
        key: key.to_owned(),
        value: value.clone(),
        create_revision: create_rev,
        mod_revision: rev,
    }))
}

fn delete(
    tx: &Connection,
    head: &mut Revision,
    key: &str,
    expected: Option<Revision>,
) -> rusqlite::Result<Result<KeyValue, StoreError>> {
    let (create_rev, mod_rev) = match guard(key, current(tx, key)?, expected) {
        Ok(found) => found,
        Err(refused) => return Ok(Err(refused)),
    };
    let last: Vec<u8> = tx
        .prepare_cached("SELECT value FROM log WHERE rev = ?1")?
        .query_row([mod_rev], |row| row.get(0))?;
    let rev = *head + 1;
    append_log(tx, rev, key, true, &last, create_rev)?;
    tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
        .execute([key.as_bytes()])?;
    *head = rev;
    Ok(Ok(KeyValue {
        key: key.to_owned(),
        value: Bytes::from(last),
        create_revision: create_rev,
        mod_revision: rev,
    }))
}
