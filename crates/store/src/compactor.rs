//! Automatic compaction: keep about `retention` of history, as kube-apiserver does for etcd.
//!
//! Every `interval` the compactor notes the store's revision; it then compacts to the newest
//! noted revision that is at least `retention` old. History therefore stays between
//! `retention` and `retention + interval` long, and the store does not grow without bound.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::contract::{Revision, Store};

/// How much history to keep, and how often to trim it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// History younger than this is kept. kube-apiserver's default is 5 minutes.
    pub retention: Duration,
    /// How often to look.
    pub interval: Duration,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(300),
            interval: Duration::from_secs(60),
        }
    }
}

/// Runs the compactor until the returned handle is aborted or dropped with the runtime.
pub fn spawn_compactor(
    store: Arc<dyn Store>,
    policy: CompactionPolicy,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut samples: VecDeque<(Instant, Revision)> = VecDeque::new();
        let mut ticker = tokio::time::interval(policy.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = Instant::now();
            match store.current_revision().await {
                Ok(revision) => samples.push_back((now, revision)),
                Err(err) => {
                    tracing::warn!(error = %err, "compactor cannot read the revision");
                    continue;
                }
            }
            let Some(target) = due(&mut samples, now, policy.retention) else {
                continue;
            };
            match store.compact(target).await {
                Ok(()) => tracing::debug!(revision = target, "compacted the store"),
                Err(err) => tracing::warn!(error = %err, revision = target, "compaction failed"),
            }
        }
    })
}

/// The newest sampled revision at least `retention` old, dropping the samples it supersedes.
fn due(
    samples: &mut VecDeque<(Instant, Revision)>,
    now: Instant,
    retention: Duration,
) -> Option<Revision> {
    let mut target = None;
    while let Some(&(at, revision)) = samples.front() {
        if now.duration_since(at) < retention {
            break;
        }
        target = Some(revision);
        samples.pop_front();
    }
    target.filter(|&revision| revision > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_to_the_newest_revision_older_than_retention() {
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        let mut samples: VecDeque<_> =
            [(start, 10), (start + minute, 20), (start + 2 * minute, 30)]
                .into_iter()
                .collect();
        // At 5m30s, only samples at least 5 minutes old count: none of them yet at 4m59s.
        assert_eq!(
            due(&mut samples, start + Duration::from_secs(299), 5 * minute),
            None
        );
        assert_eq!(due(&mut samples, start + 6 * minute, 5 * minute), Some(20));
        assert_eq!(samples.len(), 1);
        assert_eq!(due(&mut samples, start + 6 * minute, 5 * minute), None);
    }

    #[test]
    fn an_empty_store_is_never_compacted() {
        let start = Instant::now();
        let mut samples: VecDeque<_> = [(start, 0)].into_iter().collect();
        assert_eq!(due(&mut samples, start, Duration::ZERO), None);
    }
}
