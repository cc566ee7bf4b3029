#![allow(clippy::unwrap_used)] // a test fails by panicking

//! The store contract (see `rkube_store::Store`), checked clause by clause against every
//! backend: the embedded SQLite store and a real etcd started on loopback.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use rkube_store::local_etcd::{LocalEtcd, etcd_installed};
use rkube_store::{
    EmbeddedStore, EtcdStore, Event, EventKind, MAX_VALUE_BYTES, RangeRequest, Revision, Store,
    StoreError, WatchHub, WatchStream,
};
use tempfile::TempDir;

/// A store under test and what keeps it alive.
struct Harness {
    dir: TempDir,
    etcd: Option<std::sync::Mutex<LocalEtcd>>,
    endpoint: Option<String>,
}

impl Harness {
    fn embedded() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            etcd: None,
            endpoint: None,
        }
    }

    /// A fresh etcd, or `None` (with a message) when etcd is not installed outside CI.
    fn etcd() -> Option<Self> {
        if !etcd_installed() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "etcd is not installed but CI=true: apt-get install etcd-server"
            );
            eprintln!("SKIPPED: etcd is not installed (apt-get install etcd-server)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let etcd = LocalEtcd::start(&dir.path().join("etcd")).expect("start etcd");
        Some(Self {
            dir,
            endpoint: Some(etcd.endpoint()),
            etcd: Some(std::sync::Mutex::new(etcd)),
        })
    }

    async fn open(&self) -> Arc<dyn Store> {
        match &self.endpoint {
            Some(endpoint) => Arc::new(
                EtcdStore::connect(std::slice::from_ref(endpoint))
                    .await
                    .expect("connect"),
            ),
            None => Arc::new(EmbeddedStore::open(self.dir.path()).expect("open")),
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let harness = super::Harness::embedded();
                    super::$name(&harness).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(harness) = super::Harness::etcd() else { return };
                    super::$name(&harness).await;
                }
            )*
        }
    };
}

conformance!(
    revisions_advance_by_one_per_successful_write,
    reads_page_through_a_prefix_at_a_revision,
    writes_are_guarded_by_mod_revision,
    watch_is_ordered_gap_free_and_resumable,
    compaction_makes_old_revisions_gone,
    concurrent_compare_and_swap_loses_no_update,
    oversized_values_are_refused,
    data_survives_close_and_reopen,
    hub_fans_out_without_copying,
    writes_survive_sigkill,
);

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn page(prefix: &str, limit: usize, revision: Revision) -> RangeRequest {
    RangeRequest {
        prefix: prefix.into(),
        start_after: None,
        limit,
        revision,
    }
}

async fn next_event(watch: &mut WatchStream) -> Event {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("watch event within 10s")
        .expect("watch stream ended")
        .expect("watch event")
}

async fn revisions_advance_by_one_per_successful_write(h: &Harness) {
    let store = h.open().await;
    let r0 = store.current_revision().await.unwrap();
    let a = store.create("/r/a", val("1")).await.unwrap();
    assert_eq!(a.mod_revision, r0 + 1);
    assert_eq!(a.create_revision, r0 + 1);
    assert!(matches!(
        store.create("/r/a", val("again")).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        store.current_revision().await.unwrap(),
        r0 + 1,
        "a failed write moved the revision"
    );
    let a2 = store
        .update("/r/a", val("2"), a.mod_revision)
        .await
        .unwrap();
    assert_eq!((a2.create_revision, a2.mod_revision), (r0 + 1, r0 + 2));
    let deleted = store.delete("/r/a", None).await.unwrap();
    assert_eq!(deleted.mod_revision, r0 + 3);
    assert_eq!(deleted.value, val("2"), "delete returns the last value");
    assert_eq!(store.current_revision().await.unwrap(), r0 + 3);
    assert_eq!(store.get("/r/a").await.unwrap(), None);
}

async fn reads_page_through_a_prefix_at_a_revision(h: &Harness) {
    let store = h.open().await;
    for name in ["c", "a", "e", "b", "d"] {
        store
            .create(&format!("/p/{name}"), val(name))
            .await
            .unwrap();
    }
    store.create("/pq/outside", val("x")).await.unwrap();
    let before_update = store.current_revision().await.unwrap();
    let b = store.get("/p/b").await.unwrap().unwrap();
    store
        .update("/p/b", val("b2"), b.mod_revision)
        .await
        .unwrap();

    // Ascending key order, a limit, and a continue key.
    let mut seen = Vec::new();
    let mut request = page("/p/", 2, 0);
    let mut pages = 0;
    loop {
        let response = store.range(request.clone()).await.unwrap();
        pages += 1;
        assert!(response.kvs.len() <= 2);
        seen.extend(response.kvs.iter().map(|kv| kv.key.clone()));
        if !response.more {
            break;
        }
        request.start_after = response.kvs.last().map(|kv| kv.key.clone());
        request.revision = response.revision; // later pages read the same snapshot
    }
    assert_eq!(seen, ["/p/a", "/p/b", "/p/c", "/p/d", "/p/e"]);
    assert_eq!(pages, 3);

    // An older revision shows the old value.
    let old = store.range(page("/p/", 0, before_update)).await.unwrap();
    assert_eq!(old.revision, before_update);
    let old_b = old.kvs.iter().find(|kv| kv.key == "/p/b").unwrap();
    assert_eq!(old_b.value, val("b"));
    let now = store.range(page("/p/", 0, 0)).await.unwrap();
    assert_eq!(
        now.kvs.iter().find(|kv| kv.key == "/p/b").unwrap().value,
        val("b2")
    );

    // Deleted keys vanish from the current view but not from the past.
    store.delete("/p/a", None).await.unwrap();
    assert_eq!(store.range(page("/p/", 0, 0)).await.unwrap().kvs.len(), 4);
    assert_eq!(
        store
            .range(page("/p/", 0, before_update))
            .await
            .unwrap()
            .kvs
            .len(),
        5
    );

    // The future is an error.
    let current = store.current_revision().await.unwrap();
    assert!(matches!(
        store.range(page("/p/", 0, current + 100)).await,
        Err(StoreError::FutureRevision { .. })
    ));
}

async fn writes_are_guarded_by_mod_revision(h: &Harness) {
    let store = h.open().await;
    let v1 = store.create("/g/k", val("1")).await.unwrap();
    let v2 = store
        .update("/g/k", val("2"), v1.mod_revision)
        .await
        .unwrap();
    match store.update("/g/k", val("stale"), v1.mod_revision).await {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!((expected, actual), (v1.mod_revision, v2.mod_revision));
        }
        other => panic!("stale update gave {other:?}"),
    }
    assert!(matches!(
        store.delete("/g/k", Some(v1.mod_revision)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get("/g/k").await.unwrap().unwrap().value, val("2"));
    assert!(matches!(
        store.update("/g/missing", val("x"), 1).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete("/g/missing", None).await,
        Err(StoreError::NotFound { .. })
    ));
    store.delete("/g/k", Some(v2.mod_revision)).await.unwrap();
    // A key can be created again after deletion, with a new create revision.
    let again = store.create("/g/k", val("3")).await.unwrap();
    assert!(again.create_revision > v2.mod_revision);
}

async fn watch_is_ordered_gap_free_and_resumable(h: &Harness) {
    let store = h.open().await;
    let start = store.current_revision().await.unwrap();
    let mut live = store.watch("/w/", start).await.unwrap();
    let a = store.create("/w/a", val("1")).await.unwrap();
    store
        .create("/wx/not-under-prefix", val("x"))
        .await
        .unwrap();
    let a2 = store
        .update("/w/a", val("2"), a.mod_revision)
        .await
        .unwrap();
    store.create("/w/b", val("b")).await.unwrap();
    let gone = store.delete("/w/a", None).await.unwrap();

    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(next_event(&mut live).await);
    }
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.kv.key.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Put, "/w/a"),
            (EventKind::Put, "/w/a"),
            (EventKind::Put, "/w/b"),
            (EventKind::Delete, "/w/a"),
        ]
    );
    assert!(events[0].is_create() && !events[1].is_create());
    assert_eq!(events[1].revision(), a2.mod_revision);
    assert_eq!(events[3].revision(), gone.mod_revision);
    assert_eq!(
        events[3].kv.value,
        val("2"),
        "a delete event carries the last value"
    );
    assert!(events.windows(2).all(|w| w[0].revision() < w[1].revision()));

    // Watching from an old revision replays history; resuming from the middle continues
    // exactly after the last revision seen.
    let mut replay = store.watch("/w/", start).await.unwrap();
    let first = next_event(&mut replay).await;
    assert_eq!(first.revision(), a.mod_revision);
    drop(replay);
    let mut resumed = store.watch("/w/", first.revision()).await.unwrap();
    let resumed_events: Vec<_> = [
        next_event(&mut resumed).await,
        next_event(&mut resumed).await,
        next_event(&mut resumed).await,
    ]
    .into_iter()
    .map(|e| e.revision())
    .collect();
    let expected: Vec<_> = events[1..].iter().map(Event::revision).collect();
    assert_eq!(resumed_events, expected);

    // Nothing more arrives: no duplicates.
    let extra = tokio::time::timeout(Duration::from_millis(300), live.next()).await;
    assert!(extra.is_err(), "unexpected extra event {extra:?}");
}

async fn compaction_makes_old_revisions_gone(h: &Harness) {
    let store = h.open().await;
    let first = store.create("/c/k", val("0")).await.unwrap();
    let mut last = first.clone();
    for i in 1..10 {
        last = store
            .update("/c/k", val(&i.to_string()), last.mod_revision)
            .await
            .unwrap();
    }
    let compact_at = last.mod_revision - 3;
    store.compact(compact_at).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), compact_at);

    match store.range(page("/c/", 0, compact_at - 1)).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!((requested, compacted), (compact_at - 1, compact_at));
        }
        other => panic!("read below compaction gave {other:?}"),
    }
    // Reads at and after the compacted revision still work, with the value as of then.
    let at = store.range(page("/c/", 0, compact_at)).await.unwrap();
    assert_eq!(at.kvs[0].mod_revision, compact_at);
    assert_eq!(store.get("/c/k").await.unwrap().unwrap().value, val("9"));

    // A watch that would need compacted history fails with the compacted error.
    let mut watch_result = store.watch("/c/", first.mod_revision).await;
    let err = match &mut watch_result {
        Err(err) => format!("{err:?}"),
        Ok(stream) => format!(
            "{:?}",
            tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("watch answers")
                .expect("watch yields")
        ),
    };
    assert!(
        err.contains("Compacted"),
        "watch below compaction gave {err}"
    );
    // One starting at the compacted revision still sees what followed.
    let mut watch = store.watch("/c/", compact_at - 1).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), compact_at);

    // Compacting again at or below is a no-op; beyond the head is refused.
    store.compact(compact_at - 1).await.unwrap();
    let head = store.current_revision().await.unwrap();
    assert!(matches!(
        store.compact(head + 10).await,
        Err(StoreError::FutureRevision { .. })
    ));
}

async fn concurrent_compare_and_swap_loses_no_update(h: &Harness) {
    const WRITERS: usize = 16;
    const INCREMENTS: usize = 25;
    let store = h.open().await;
    store.create("/cas/counter", val("0")).await.unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut acknowledged = 0;
                while acknowledged < INCREMENTS {
                    let kv = store.get("/cas/counter").await.unwrap().unwrap();
                    let n: usize = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match store
                        .update("/cas/counter", val(&(n + 1).to_string()), kv.mod_revision)
                        .await
                    {
                        Ok(_) => acknowledged += 1,
                        Err(StoreError::Conflict { .. }) => {}
                        Err(err) => panic!("update failed: {err}"),
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let kv = store.get("/cas/counter").await.unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&kv.value).unwrap(), total.to_string());
    assert_eq!(total, WRITERS * INCREMENTS);
}

async fn oversized_values_are_refused(h: &Harness) {
    let store = h.open().await;
    let before = store.current_revision().await.unwrap();
    let big = Bytes::from(vec![0u8; MAX_VALUE_BYTES + 1]);
    assert!(matches!(
        store.create("/big/k", big.clone()).await,
        Err(StoreError::ValueTooLarge { .. })
    ));
    let small = store
        .create("/big/k", Bytes::from(vec![7u8; 1024 * 1024]))
        .await
        .unwrap();
    assert!(matches!(
        store.update("/big/k", big, small.mod_revision).await,
        Err(StoreError::ValueTooLarge { .. })
    ));
    assert_eq!(store.current_revision().await.unwrap(), before + 1);
    assert_eq!(
        store.get("/big/k").await.unwrap().unwrap().value.len(),
        1024 * 1024
    );
}

async fn data_survives_close_and_reopen(h: &Harness) {
    let store = h.open().await;
    for i in 0..50 {
        store
            .create(&format!("/o/{i:03}"), val(&i.to_string()))
            .await
            .unwrap();
    }
    store.delete("/o/007", None).await.unwrap();
    let revision = store.current_revision().await.unwrap();
    drop(store);

    let store = h.open().await;
    assert_eq!(store.current_revision().await.unwrap(), revision);
    let all = store.range(page("/o/", 0, 0)).await.unwrap();
    assert_eq!(all.kvs.len(), 49);
    assert_eq!(store.get("/o/042").await.unwrap().unwrap().value, val("42"));
    assert_eq!(store.get("/o/007").await.unwrap(), None);
    // The revision continues where it stopped.
    let next = store.create("/o/new", val("n")).await.unwrap();
    assert_eq!(next.mod_revision, revision + 1);
}

async fn hub_fans_out_without_copying(h: &Harness) {
    let store = h.open().await;
    let start = store.current_revision().await.unwrap();
    let hub = WatchHub::start(store.clone(), "/hub/", start, 1000);
    let mut subscribers = Vec::new();
    for _ in 0..5 {
        subscribers.push(hub.subscribe("/hub/", start).await.unwrap());
    }
    let mut narrow = hub.subscribe("/hub/b/", start).await.unwrap();
    for i in 0..20 {
        let group = if i % 2 == 0 { "a" } else { "b" };
        store
            .create(&format!("/hub/{group}/{i}"), val("v"))
            .await
            .unwrap();
    }
    let mut received = Vec::new();
    for subscriber in &mut subscribers {
        let mut events = Vec::new();
        for _ in 0..20 {
            let event = tokio::time::timeout(Duration::from_secs(10), subscriber.next())
                .await
                .expect("event within 10s")
                .unwrap()
                .unwrap();
            events.push(event);
        }
        received.push(events);
    }
    for events in &received[1..] {
        for (mine, theirs) in events.iter().zip(&received[0]) {
            assert!(
                Arc::ptr_eq(mine, theirs),
                "the hub copied an event per subscriber"
            );
        }
    }
    for i in (1..20).step_by(2) {
        let event = narrow.next().await.unwrap().unwrap();
        assert_eq!(event.kv.key, format!("/hub/b/{i}"));
    }
    // A subscriber that joins late catches up from the window, then continues live.
    let mut late = hub.subscribe("/hub/", start + 10).await.unwrap();
    let first = late.next().await.unwrap().unwrap();
    assert_eq!(first.revision(), start + 11);
}

/// Kills a writer under load at random points and checks every acknowledged key after
/// reopening. For the embedded store the writer process holds the store, so it is what is
/// killed; for etcd the etcd server itself is killed and restarted.
async fn writes_survive_sigkill(h: &Harness) {
    use rand::Rng;
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    for round in 0..4 {
        let target = match &h.endpoint {
            Some(endpoint) => ["etcd".to_owned(), endpoint.clone()],
            None => ["embedded".to_owned(), h.dir.path().display().to_string()],
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
            .args(&target)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().unwrap();
        let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader = {
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                {
                    acknowledged.lock().unwrap().push(line);
                }
            })
        };
        // Kill at a random point once the writer is under way.
        let started = std::time::Instant::now();
        while acknowledged.lock().unwrap().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: the writer acknowledged nothing"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = rand::rng().random_range(50..1000);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        // With etcd, the store dies first, in the middle of the writer's requests.
        if let Some(etcd) = &h.etcd {
            etcd.lock().unwrap().kill();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
        if let Some(etcd) = &h.etcd {
            etcd.lock().unwrap().restart().expect("restart etcd");
        }
        let store = h.open().await;
        for key in &acknowledged {
            assert!(
                store.get(key).await.unwrap().is_some(),
                "round {round}: acknowledged key {key} was lost ({} acknowledged)",
                acknowledged.len()
            );
        }
    }
}

/// A file that is not an rkube store is refused with an error naming it, and left alone.
#[test]
fn corrupt_or_foreign_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(rkube_store::EMBEDDED_FILE_NAME);

    std::fs::write(
        &path,
        b"this is not a database, it is a shopping list\n".repeat(100),
    )
    .unwrap();
    let err = EmbeddedStore::open(dir.path())
        .err()
        .expect("garbage must be refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap().len(),
        4600,
        "the file was touched"
    );

    // Another program's SQLite database.
    std::fs::remove_file(&path).unwrap();
    let foreign = write_foreign_sqlite_db(&path);
    let err = EmbeddedStore::open(dir.path())
        .err()
        .expect("foreign db must be refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        foreign,
        "the foreign file was touched"
    );

    // An rkube store whose pages were damaged.
    std::fs::remove_file(&path).unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            for i in 0..200 {
                store
                    .create(&format!("/k/{i}"), Bytes::from(vec![1u8; 2000]))
                    .await
                    .unwrap();
            }
        });
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    for b in &mut bytes[100..60_000] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = match EmbeddedStore::open(dir.path()) {
        Err(err) => err,
        Ok(store) => {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(store.range(page("/k/", 0, 0)))
                .expect_err("a damaged store must not read as healthy")
        }
    };
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

/// Writes a minimal valid SQLite database (one empty page) with another program's
/// application id, built by hand so the test needs no SQLite of its own.
fn write_foreign_sqlite_db(path: &std::path::Path) -> Vec<u8> {
    let mut page = vec![0u8; 4096];
    page[..16].copy_from_slice(b"SQLite format 3\0");
    page[16..18].copy_from_slice(&4096u16.to_be_bytes()); // page size
    page[18] = 1; // write version
    page[19] = 1; // read version
    page[21] = 64; // max embedded payload fraction
    page[22] = 32; // min embedded payload fraction
    page[23] = 32; // leaf payload fraction
    page[28..32].copy_from_slice(&1u32.to_be_bytes()); // database size in pages
    page[44..48].copy_from_slice(&4u32.to_be_bytes()); // schema format
    page[56..60].copy_from_slice(&1u32.to_be_bytes()); // text encoding UTF-8
    page[68..72].copy_from_slice(&0x0bad_f00du32.to_be_bytes()); // someone else's application id
    page[92..96].copy_from_slice(&1u32.to_be_bytes()); // version-valid-for
    page[96..100].copy_from_slice(&3_045_000u32.to_be_bytes()); // SQLite version
    page[100] = 0x0d; // an empty table b-tree leaf page (sqlite_schema)
    page[105..107].copy_from_slice(&4096u16.to_be_bytes());
    std::fs::write(path, &page).unwrap();
    page
}

/// An unreachable etcd is a clear error naming the endpoint, returned promptly.
#[tokio::test]
async fn unreachable_etcd_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let err = EtcdStore::connect(std::slice::from_ref(&endpoint))
        .await
        .err()
        .expect("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains(&endpoint), "{err}");
}

/// With the compactor running, rewriting the same keys over and over keeps the file bounded
/// instead of growing with every write (the kine/SQLite complaint).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compactor_keeps_the_file_bounded() {
    use rkube_store::{CompactionPolicy, spawn_compactor};
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let policy = CompactionPolicy {
        retention: Duration::from_millis(200),
        interval: Duration::from_millis(50),
    };
    let compactor = spawn_compactor(store.clone(), policy);
    let value = Bytes::from(vec![b'v'; 4096]);
    let mut revisions = std::collections::HashMap::new();
    // 100 keys rewritten 60 times: 24 MiB of history for 400 KiB of live data.
    for round in 0..60 {
        for key in 0..100 {
            let key = format!("/bounded/{key}");
            let kv = match revisions.get(&key) {
                None => store.create(&key, value.clone()).await.unwrap(),
                Some(&rev) => store.update(&key, value.clone(), rev).await.unwrap(),
            };
            revisions.insert(key, kv.mod_revision);
        }
        if round % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    compactor.abort();
    assert!(
        store.compacted_revision().await.unwrap() > 0,
        "the compactor never ran"
    );
    let size = std::fs::metadata(dir.path().join(rkube_store::EMBEDDED_FILE_NAME))
        .unwrap()
        .len();
    assert!(
        size < 8 * 1024 * 1024,
        "the store file grew to {size} bytes"
    );
}
