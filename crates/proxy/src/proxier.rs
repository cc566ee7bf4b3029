//! The proxier: what is in the kernel (the applied rendering of each Service) and the
//! transactions that bring it to what should be.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::nft;
use crate::rules::{self, HairpinChange, Mode, Rendered, RuleConfig};

/// How long an emptied chain waits before it is deleted.
const CHAIN_DELETE_DELAY: Duration = Duration::from_secs(1);

/// The rules of one table and what the kernel holds of them.
pub struct Proxier {
    cfg: RuleConfig,
    /// Service key (`namespace/name`) → its rules as last applied.
    applied: HashMap<String, Rendered>,
    /// Chains emptied by a transaction, with when: deleted by a later one.
    emptied: HashMap<String, Instant>,
    /// The next full sync replaces the table (at start, and after a failure).
    recreate: bool,
    /// Hairpin address → how many applied services have it.
    hairpin: HashMap<Ipv4Addr, usize>,
}

/// What a sync did, for logs and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncStats {
    pub services: usize,
    pub bytes: usize,
    pub recreated: bool,
}

impl Proxier {
    pub fn new(cfg: RuleConfig) -> Self {
        Self {
            cfg,
            applied: HashMap::new(),
            emptied: HashMap::new(),
            recreate: true,
            hairpin: HashMap::new(),
        }
    }

    pub fn config(&self) -> &RuleConfig {
        &self.cfg
    }

    /// Brings the whole table to `desired` (every service; absent ones are removed). The first
    /// time, and after any failure, the table is deleted and recreated in the same
    /// transaction; otherwise it is rewritten in place, keeping affinity entries.
    pub async fn sync_all(
        &mut self,
        mut desired: HashMap<String, Rendered>,
    ) -> anyhow::Result<SyncStats> {
        desired.retain(|_, r| !r.is_empty());
        let empty = Rendered::default();
        let mut keys: Vec<&String> = desired.keys().chain(self.applied.keys()).collect();
        keys.sort();
        keys.dedup();
        let changes: Vec<(&Rendered, &Rendered)> = keys
            .iter()
            .map(|k| {
                (
                    self.applied.get(*k).unwrap_or(&empty),
                    desired.get(*k).unwrap_or(&empty),
                )
            })
            .collect();
        let mut mode = if self.recreate {
            Mode::Recreate
        } else {
            Mode::Full
        };
        let mut hairpin: HashMap<Ipv4Addr, usize> = HashMap::new();
        for ip in desired.values().flat_map(|r| &r.hairpin) {
            *hairpin.entry(*ip).or_default() += 1;
        }
        let mut all: Vec<Ipv4Addr> = hairpin.keys().copied().collect();
        all.sort_unstable();
        let hairpin_change = HairpinChange {
            add: all,
            delete: vec![],
        };
        let mut tx = rules::transaction(&self.cfg, mode, &changes, &hairpin_change);
        if let Err(err) = nft::apply(&tx.text).await {
            if mode == Mode::Recreate {
                return Err(err);
            }
            tracing::warn!("rewriting the table failed, replacing it: {err:#}");
            mode = Mode::Recreate;
            tx = rules::transaction(&self.cfg, mode, &changes, &hairpin_change);
            nft::apply(&tx.text).await?;
        }
        let stats = SyncStats {
            services: desired.len(),
            bytes: tx.text.len(),
            recreated: mode == Mode::Recreate,
        };
        drop(changes);
        if mode == Mode::Recreate {
            self.emptied.clear();
        }
        self.note_emptied(tx.emptied_chains, &desired);
        self.applied = desired;
        self.hairpin = hairpin;
        self.recreate = false;
        Ok(stats)
    }

    /// Applies the new rendering of some services only (an empty one: the service is gone).
    /// On failure nothing changed in the kernel; the caller follows with [`Self::sync_all`].
    pub async fn sync_changed(
        &mut self,
        changed: Vec<(String, Rendered)>,
    ) -> anyhow::Result<SyncStats> {
        let empty = Rendered::default();
        let changed: Vec<(String, Rendered)> = changed
            .into_iter()
            .filter(|(k, new)| self.applied.get(k).unwrap_or(&empty) != new)
            .collect();
        if changed.is_empty() {
            return Ok(SyncStats::default());
        }
        let changes: Vec<(&Rendered, &Rendered)> = changed
            .iter()
            .map(|(k, new)| (self.applied.get(k).unwrap_or(&empty), new))
            .collect();
        let (hairpin_change, counts) = hairpin_change(&self.hairpin, &changes);
        let tx = rules::transaction(&self.cfg, Mode::Partial, &changes, &hairpin_change);
        drop(changes);
        if let Err(err) = nft::apply(&tx.text).await {
            self.recreate = true;
            return Err(err);
        }
        let stats = SyncStats {
            services: changed.len(),
            bytes: tx.text.len(),
            recreated: false,
        };
        let now = Instant::now();
        for chain in tx.emptied_chains {
            self.emptied.insert(chain, now);
        }
        for (ip, count) in counts {
            if count == 0 {
                self.hairpin.remove(&ip);
            } else {
                self.hairpin.insert(ip, count);
            }
        }
        for (key, new) in changed {
            for chain in new.chains.keys() {
                self.emptied.remove(chain);
            }
            if new.is_empty() {
                self.applied.remove(&key);
            } else {
                self.applied.insert(key, new);
            }
        }
        Ok(stats)
    }

    fn note_emptied(&mut self, chains: Vec<String>, desired: &HashMap<String, Rendered>) {
        let now = Instant::now();
        for chain in chains {
            self.emptied.insert(chain, now);
        }
        let live: HashSet<&String> = desired.values().flat_map(|r| r.chains.keys()).collect();
        self.emptied.retain(|chain, _| !live.contains(chain));
    }

    /// Whether emptied chains wait for deletion.
    pub fn has_emptied(&self) -> bool {
        !self.emptied.is_empty()
    }

    /// Deletes the chains emptied at least a second ago.
    pub async fn delete_emptied(&mut self) {
        let due: Vec<String> = self
            .emptied
            .iter()
            .filter(|(_, at)| at.elapsed() >= CHAIN_DELETE_DELAY)
            .map(|(c, _)| c.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        for chain in &due {
            self.emptied.remove(chain);
        }
        if let Err(err) = nft::apply(&rules::delete_chains(&self.cfg, &due)).await {
            // Leftover empty chains are harmless; the next replacement of the table drops them.
            tracing::debug!("deleting {} emptied chains failed: {err:#}", due.len());
            self.recreate = true;
        }
    }

    /// Removes the table.
    pub async fn cleanup(&self) -> anyhow::Result<()> {
        nft::delete_table("ip", &self.cfg.table).await
    }
}

/// The hairpin addresses that appear (no applied service had them) and go (no service has
/// them any more) when services change, and the new count of every address involved.
fn hairpin_change(
    counts: &HashMap<Ipv4Addr, usize>,
    changes: &[(&Rendered, &Rendered)],
) -> (HairpinChange, Vec<(Ipv4Addr, usize)>) {
    let mut delta: HashMap<Ipv4Addr, isize> = HashMap::new();
    for (old, new) in changes {
        for ip in old.hairpin.difference(&new.hairpin) {
            *delta.entry(*ip).or_default() -= 1;
        }
        for ip in new.hairpin.difference(&old.hairpin) {
            *delta.entry(*ip).or_default() += 1;
        }
    }
    let mut change = HairpinChange::default();
    let mut after_counts = Vec::with_capacity(delta.len());
    for (ip, d) in delta {
        let before = counts.get(&ip).copied().unwrap_or(0);
        let after = before.saturating_add_signed(d);
        if before == 0 && after > 0 {
            change.add.push(ip);
        } else if before > 0 && after == 0 {
            change.delete.push(ip);
        }
        after_counts.push((ip, after));
    }
    change.add.sort_unstable();
    change.delete.sort_unstable();
    (change, after_counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(ips: &[u8]) -> Rendered {
        Rendered {
            hairpin: ips.iter().map(|i| Ipv4Addr::new(10, 0, 0, *i)).collect(),
            ..Rendered::default()
        }
    }

    #[test]
    fn hairpin_addresses_shared_by_services_stay_until_the_last_goes() {
        let empty = Rendered::default();
        let (a, b) = (with(&[1, 2]), with(&[2]));
        let mut counts = HashMap::new();
        let mut apply = |changes: &[(&Rendered, &Rendered)]| {
            let (change, after) = hairpin_change(&counts, changes);
            for (ip, n) in after {
                if n == 0 {
                    counts.remove(&ip);
                } else {
                    counts.insert(ip, n);
                }
            }
            (change.add, change.delete)
        };
        let ip = |i| Ipv4Addr::new(10, 0, 0, i);
        assert_eq!(
            apply(&[(&empty, &a), (&empty, &b)]),
            (vec![ip(1), ip(2)], vec![])
        );
        // Service a goes: 10.0.0.2 is still an endpoint of b.
        assert_eq!(apply(&[(&a, &empty)]), (vec![], vec![ip(1)]));
        assert_eq!(apply(&[(&b, &with(&[3]))]), (vec![ip(3)], vec![ip(2)]));
    }
}
