//! The on-disk layout of the embedded store, and opening a file safely.
//!
//! Tables:
//! - `log`: one row per revision (the history). A put row holds the new value; a delete row
//!   (a tombstone, `deleted = 1`) holds the last value so that watchers see what was deleted.
//! - `kv`: one row per live key, pointing at the log row of its current value (`mod_rev`),
//!   so values are stored once.
//! - `meta`: the current and compacted revisions and the format version.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::contract::StoreError;

/// `PRAGMA application_id` of an rkube store: "rkub" in ASCII. A SQLite file with another
/// id belongs to some other program and is never touched.
const APPLICATION_ID: i64 = 0x726b_7562;
const FORMAT_VERSION: i64 = 1;

const CREATE_SCHEMA: &str = "
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE log (
    rev INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL
);
CREATE INDEX log_key_rev ON log (key, rev);
CREATE TABLE kv (
    key BLOB PRIMARY KEY,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('format', 1), ('revision', 0), ('compacted', 0);
";

pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Maps a SQLite error on `path` to the store's error: damage is `Corrupt`, naming the file.
pub(crate) fn sql_error(path: &Path, err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => corrupt(path, "it is not a SQLite database"),
        Some(ErrorCode::DatabaseCorrupt) => {
            corrupt(path, format!("the database is damaged ({err})"))
        }
        _ => StoreError::Backend {
            reason: format!("{}: {err}", path.display()),
        },
    }
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let err = |e| sql_error(path, e);
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(err)?;
    // WAL lets readers run beside the one writer; synchronous=FULL makes every commit
    // durable before it is acknowledged (group commit amortises the fsync).
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(corrupt(
            path,
            format!("cannot switch to WAL journal mode (got {mode})"),
        ));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")
        .map_err(err)
}

/// Opens (creating if needed) the store file for writing, checking that it is ours.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| sql_error(path, e))?;
    let err = |e| sql_error(path, e);
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(err)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .map_err(err)?;
    if app_id == 0 && tables == 0 {
        // A new (or empty) file: lay it out. auto_vacuum must be set before any table.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
            .map_err(err)?;
        configure(&conn, path)?;
        conn.execute_batch(&format!(
            "BEGIN; {CREATE_SCHEMA} PRAGMA application_id = {APPLICATION_ID}; COMMIT;"
        ))
        .map_err(err)?;
        return Ok(conn);
    }
    if app_id != APPLICATION_ID {
        return Err(corrupt(
            path,
            format!("it is a SQLite database of another program (application_id {app_id:#x})"),
        ));
    }
    configure(&conn, path)?;
    let format: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE name = 'format'", [], |row| {
            row.get(0)
        })
        .map_err(|e| corrupt(path, format!("its metadata cannot be read ({e})")))
        .ok();
    match format {
        Some(FORMAT_VERSION) => Ok(conn),
        Some(other) => Err(corrupt(
            path,
            format!("it has store format {other}, this rkube reads format {FORMAT_VERSION}"),
        )),
        None => Err(corrupt(path, "its metadata table is missing or damaged")),
    }
}

/// Opens another connection to an existing store, for reads or compaction.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_error(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| sql_error(path, e))?;
    Ok(conn)
}

/// Reads one `meta` row.
pub(crate) fn meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| {
        row.get(0)
    })
}
