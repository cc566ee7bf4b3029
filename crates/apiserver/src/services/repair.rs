//! The repair pass (kube's `ipallocator/controller/repair.go` and
//! `portallocator/controller/repair.go`): rebuilds each allocation from the Services in the
//! store, so that an allocation lost (a crash between the allocation and the store write, a
//! store restored from backup, a changed `--service-cidr`) is taken again and one leaked is
//! freed. It runs when the server starts and every few minutes after.
//!
//! A value allocated but not held by any Service may belong to a create still under way on
//! this or another server, so it is freed only after it was seen leaked on
//! [`REPAIRS_BEFORE_LEAK_CLEANUP`] passes in a row, as kube does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rkube_store::{RangeRequest, Store};
use serde_json::Value;

use super::ServiceNetwork;
use super::allocator::{AllocError, StoredRange};
use super::ranges::Bitmap;
use super::strategy::{held_ips, held_ports};
use crate::State;

/// How many passes in a row must see a value leaked before it is freed.
pub const REPAIRS_BEFORE_LEAK_CLEANUP: u32 = 3;

/// The leak counters between passes, per range.
#[derive(Default)]
pub struct Leaks {
    ips: HashMap<usize, u32>,
    ports: HashMap<usize, u32>,
}

/// How often the pass runs after the first (kube's repair interval).
pub const REPAIR_INTERVAL: Duration = Duration::from_secs(180);

/// Runs the first pass (which must succeed before the server serves) and starts the
/// periodic ones.
pub async fn start(state: &Arc<State>) -> Result<(), AllocError> {
    let prefix = state
        .resource("", "v1", "services")
        .map(|r| r.storage_prefix())
        .unwrap_or_else(|| "/registry/core/services/".to_owned());
    let mut leaks = Leaks::default();
    repair_once(&state.services, state.store.as_ref(), &prefix, &mut leaks).await?;
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(REPAIR_INTERVAL).await;
            let Some(state) = weak.upgrade() else {
                return;
            };
            if let Err(err) =
                repair_once(&state.services, state.store.as_ref(), &prefix, &mut leaks).await
            {
                tracing::warn!(error = %err, "repairing the service allocations");
            }
        }
    });
    Ok(())
}

/// One pass over both ranges. `services_prefix` is the store prefix of all Services.
pub async fn repair_once(
    net: &ServiceNetwork,
    store: &dyn Store,
    services_prefix: &str,
    leaks: &mut Leaks,
) -> Result<(), AllocError> {
    let ip_range = net.ip_range;
    repair_range(
        &net.ips,
        store,
        services_prefix,
        &mut leaks.ips,
        "ClusterIP",
        |svc| {
            held_ips(svc)
                .into_iter()
                .map(|ip| (ip.to_string(), ip_range.offset(ip)))
                .collect()
        },
    )
    .await?;
    let port_range = net.port_range;
    repair_range(
        &net.ports,
        store,
        services_prefix,
        &mut leaks.ports,
        "NodePort",
        |svc| {
            held_ports(svc)
                .into_iter()
                .map(|port| (port.to_string(), port_range.offset(port)))
                .collect()
        },
    )
    .await
}

/// Every Service in the store, read at one revision.
async fn services(store: &dyn Store, prefix: &str) -> Result<Vec<Value>, AllocError> {
    let mut out = Vec::new();
    let mut start_after = None;
    let mut revision = 0;
    loop {
        let page = store
            .range(RangeRequest {
                prefix: prefix.to_owned(),
                start_after: start_after.take(),
                limit: 1000,
                revision,
            })
            .await?;
        revision = page.revision;
        start_after = page.kvs.last().map(|kv| kv.key.clone());
        out.extend(
            page.kvs
                .iter()
                .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok()),
        );
        if !page.more {
            return Ok(out);
        }
    }
}

async fn repair_range(
    range: &StoredRange,
    store: &dyn Store,
    services_prefix: &str,
    leaks: &mut HashMap<usize, u32>,
    what: &str,
    held: impl Fn(&Value) -> Vec<(String, Option<usize>)>,
) -> Result<(), AllocError> {
    for _ in 0..16 {
        // The allocation first, then the Services: a Service stored after this read was
        // allocated before it (or its allocation conflicts with the write below).
        let stored = range.read(true).await?;
        let services = services(store, services_prefix).await?;
        let mut rebuilt = Bitmap::new(stored.bitmap.size());
        for svc in &services {
            let ns = svc["metadata"]["namespace"].as_str().unwrap_or("");
            let name = svc["metadata"]["name"].as_str().unwrap_or("");
            for (value, offset) in held(svc) {
                match offset {
                    None => tracing::warn!(
                        "the {what} {value} of service {ns}/{name} is outside the configured range; please recreate the service"
                    ),
                    Some(o) if !rebuilt.set(o) => {
                        // A NodePort shared by a TCP and a UDP port of one service is
                        // counted once by held_*; twice here means two services.
                        tracing::warn!(
                            "the {what} {value} of service {ns}/{name} is also held by another service; please recreate one of them"
                        );
                    }
                    Some(o) => {
                        if !stored.bitmap.has(o) && stored.revision.is_some() {
                            tracing::warn!(
                                "the {what} {value} of service {ns}/{name} was not allocated; repairing"
                            );
                        }
                    }
                }
            }
        }
        let mut next_leaks = HashMap::new();
        for offset in stored.bitmap.iter() {
            if rebuilt.has(offset) {
                continue;
            }
            let count = leaks
                .get(&offset)
                .copied()
                .unwrap_or(REPAIRS_BEFORE_LEAK_CLEANUP - 1);
            if count > 0 {
                // Perhaps a create under way: keep it for now.
                rebuilt.set(offset);
                next_leaks.insert(offset, count - 1);
            } else {
                tracing::info!(offset, "a {what} appears to have leaked: freeing it");
            }
        }
        if rebuilt == stored.bitmap && stored.revision.is_some() {
            *leaks = next_leaks;
            return Ok(());
        }
        if range.write(&rebuilt, stored.revision).await?.is_some() {
            *leaks = next_leaks;
            return Ok(());
        }
    }
    Err(AllocError::Contended)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use bytes::Bytes;
    use rkube_store::EmbeddedStore;
    use serde_json::json;

    use super::*;
    use crate::services::ServiceNetworkConfig;

    const PREFIX: &str = "/registry/core/services/";

    async fn put_service(store: &dyn Store, name: &str, ip: &str, node_port: Option<i64>) {
        let mut svc = json!({"metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ports": [{"port": 80}]}});
        if let Some(np) = node_port {
            svc["spec"]["type"] = json!("NodePort");
            svc["spec"]["ports"][0]["nodePort"] = json!(np);
        }
        store
            .create(
                &format!("{PREFIX}default/{name}"),
                Bytes::from(serde_json::to_vec(&svc).unwrap_or_default()),
            )
            .await
            .expect("stored");
    }

    #[tokio::test]
    async fn repair_takes_missing_values_and_frees_leaks_after_three_passes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
        let net = ServiceNetwork::new(store.clone(), ServiceNetworkConfig::default());
        // A service whose address the allocation does not know (lost), and an allocation no
        // service holds (leaked).
        put_service(store.as_ref(), "lost", "10.43.3.3", Some(30333)).await;
        let leaked = net.allocate_ip(None, false).await.expect("allocated");
        let mut leaks = Leaks::default();
        repair_once(&net, store.as_ref(), PREFIX, &mut leaks)
            .await
            .expect("repaired");
        let taken = |ip: Ipv4Addr| net.allocate_ip(Some(ip), true);
        assert!(matches!(
            taken(Ipv4Addr::new(10, 43, 3, 3)).await,
            Err(AllocError::Allocated)
        ));
        assert!(matches!(
            net.check_port(30333).await,
            Err(AllocError::Allocated)
        ));
        // The leak survives two passes (it could be a create under way), not three.
        assert!(matches!(taken(leaked).await, Err(AllocError::Allocated)));
        repair_once(&net, store.as_ref(), PREFIX, &mut leaks)
            .await
            .expect("repaired");
        assert!(matches!(taken(leaked).await, Err(AllocError::Allocated)));
        repair_once(&net, store.as_ref(), PREFIX, &mut leaks)
            .await
            .expect("repaired");
        assert!(taken(leaked).await.is_ok(), "freed on the third pass");
        assert!(matches!(
            taken(Ipv4Addr::new(10, 43, 3, 3)).await,
            Err(AllocError::Allocated)
        ));
    }

    #[tokio::test]
    async fn a_changed_range_is_rebuilt_from_the_services() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).expect("store"));
        let old = ServiceNetwork::new(store.clone(), ServiceNetworkConfig::default());
        old.allocate_ip(None, false).await.expect("allocated");
        put_service(store.as_ref(), "kept", "10.43.0.20", None).await;
        let config = ServiceNetworkConfig {
            service_cidr: "10.43.0.0/24".parse().expect("cidr"),
            ..ServiceNetworkConfig::default()
        };
        let new = ServiceNetwork::new(store.clone(), config);
        assert!(matches!(
            new.allocate_ip(None, false).await,
            Err(AllocError::Mismatch { .. })
        ));
        repair_once(&new, store.as_ref(), PREFIX, &mut Leaks::default())
            .await
            .expect("repaired");
        assert!(matches!(
            new.allocate_ip(Some(Ipv4Addr::new(10, 43, 0, 20)), false)
                .await,
            Err(AllocError::Allocated)
        ));
        assert!(new.allocate_ip(None, false).await.is_ok());
    }
}
