//! CPU-bound work over nodes spread on scoped threads (kube's `parallelize.Until`). Below a
//! size where a thread costs more than it saves, everything runs on the caller's thread.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Items per thread below which work stays on one thread.
pub const MIN_ITEMS_PER_THREAD: usize = 256;

fn workers_for(n: usize, parallelism: usize) -> usize {
    parallelism.min(n / MIN_ITEMS_PER_THREAD).max(1)
}

/// `f(0..n)` in order.
pub fn map<T, F>(n: usize, parallelism: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    let workers = workers_for(n, parallelism);
    if workers <= 1 {
        return (0..n).map(f).collect();
    }
    let chunk = n.div_ceil(workers);
    let mut parts: Vec<Vec<T>> = Vec::with_capacity(workers);
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (1..workers)
            .map(|w| {
                let range = (w * chunk).min(n)..((w + 1) * chunk).min(n);
                s.spawn(move || range.map(f).collect::<Vec<T>>())
            })
            .collect();
        parts.push((0..chunk.min(n)).map(f).collect());
        for h in handles {
            match h.join() {
                Ok(part) => parts.push(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    parts.into_iter().flatten().collect()
}

/// Evaluates `f(i)` for `i` in `0..n` until `wanted` of the results are accepted by `ok`,
/// spreading chunks over threads. Returns `(i, result)` in index order, cut after the
/// `wanted`-th accepted one, so the outcome does not depend on thread timing.
pub fn until<T, F, A>(n: usize, parallelism: usize, wanted: usize, f: F, ok: A) -> Vec<(usize, T)>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
    A: Fn(&T) -> bool + Sync,
{
    let workers = workers_for(n, parallelism);
    let mut out = Vec::new();
    if workers <= 1 {
        let mut found = 0;
        for i in 0..n {
            if found >= wanted {
                break;
            }
            let r = f(i);
            if ok(&r) {
                found += 1;
            }
            out.push((i, r));
        }
        return out;
    }
    let chunk = (n / (workers * 8)).clamp(64, 1024);
    let next = AtomicUsize::new(0);
    let found = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let work = || {
            let mut local = Vec::new();
            loop {
                if found.load(Ordering::Relaxed) >= wanted {
                    break;
                }
                let start = next.fetch_add(chunk, Ordering::Relaxed);
                if start >= n {
                    break;
                }
                for i in start..(start + chunk).min(n) {
                    let r = f(i);
                    if ok(&r) {
                        found.fetch_add(1, Ordering::Relaxed);
                    }
                    local.push((i, r));
                }
            }
            if let Ok(mut all) = results.lock() {
                all.append(&mut local);
            }
        };
        for _ in 1..workers {
            s.spawn(work);
        }
        work();
    });
    out = results.into_inner().unwrap_or_else(|p| p.into_inner());
    out.sort_unstable_by_key(|(i, _)| *i);
    let mut accepted = 0;
    let mut cut = out.len();
    for (pos, (_, r)) in out.iter().enumerate() {
        if ok(r) {
            accepted += 1;
            if accepted == wanted {
                cut = pos + 1;
                break;
            }
        }
    }
    out.truncate(cut);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_order() {
        for threads in [1, 4] {
            let v = map(10_000, threads, |i| i * 2);
            assert_eq!(v.len(), 10_000);
            assert!(v.iter().enumerate().all(|(i, x)| *x == i * 2));
        }
    }

    #[test]
    fn until_stops_after_wanted_in_order() {
        for threads in [1, 4] {
            let v = until(10_000, threads, 10, |i| i % 3 == 0, |ok| *ok);
            assert_eq!(v.iter().filter(|(_, ok)| *ok).count(), 10);
            assert_eq!(v.last().map(|(i, _)| *i), Some(27));
            assert!(v.windows(2).all(|w| w[0].0 + 1 == w[1].0));
            let all = until(1000, threads, 2000, |i| i, |_| false);
            assert_eq!(all.len(), 1000);
        }
    }
}
