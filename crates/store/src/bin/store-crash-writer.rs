//! The child process of the conformance suite's crash test: writes under load and prints
//! each key on its own line the moment the store has acknowledged it. The test kills this
//! process (or the etcd under it) with SIGKILL and checks that every printed key survived.
//!
//! Usage: `store-crash-writer embedded DIR | etcd ENDPOINT`

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use rkube_store::{Backend, Store};

const WRITERS: usize = 16;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = match args.as_slice() {
        [kind, dir] if kind == "embedded" => Backend::Embedded(dir.into()),
        [kind, endpoint] if kind == "etcd" => Backend::Etcd(vec![endpoint.clone()]),
        _ => {
            eprintln!("usage: store-crash-writer embedded DIR | etcd ENDPOINT");
            std::process::exit(2);
        }
    };
    let store = match backend.open().await {
        Ok(store) => store,
        Err(err) => {
            eprintln!("store-crash-writer: {err}");
            std::process::exit(1);
        }
    };
    let run = std::process::id();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write_forever(store.clone(), run, writer)))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

async fn write_forever(store: Arc<dyn Store>, run: u32, writer: usize) {
    let value = Bytes::from(vec![b'x'; 512]);
    for i in 0u64.. {
        let key = format!("/crash/{run}/{writer}/{i}");
        match store.create(&key, value.clone()).await {
            Ok(_) => {
                let mut out = std::io::stdout().lock();
                // The test reads acknowledgements from this pipe; if it is gone, so is the test.
                if writeln!(out, "{key}").and_then(|()| out.flush()).is_err() {
                    return;
                }
            }
            // The store went away under us (etcd killed): keep trying until we are killed too.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}
