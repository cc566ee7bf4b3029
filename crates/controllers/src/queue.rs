//! A rate-limited work queue of keys, with client-go's workqueue semantics: a key is queued
//! at most once; a key being processed that is added again is processed again afterwards,
//! never by two workers at once; failures are retried with per-key exponential back-off.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    queue: VecDeque<String>,
    queued: HashSet<String>,
    processing: HashSet<String>,
    /// Added while being processed: queued again when done.
    dirty: HashSet<String>,
    failures: HashMap<String, u32>,
    shut_down: bool,
}

/// A queue of object keys shared by a controller's event handlers and workers.
#[derive(Clone)]
pub struct WorkQueue {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    base_delay: Duration,
    max_delay: Duration,
}

impl Default for WorkQueue {
    fn default() -> Self {
        Self::new(Duration::from_millis(5), Duration::from_secs(60))
    }
}

impl WorkQueue {
    /// A queue whose retries wait `base * 2^failures`, at most `max`.
    pub fn new(base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            notify: Arc::new(Notify::new()),
            base_delay,
            max_delay,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a key now.
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let mut inner = self.lock();
        if inner.shut_down {
            return;
        }
        if inner.processing.contains(&key) {
            inner.dirty.insert(key);
            return;
        }
        if inner.queued.insert(key.clone()) {
            inner.queue.push_back(key);
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Queues a key after a delay.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Queues a key again after its back-off, which doubles with each failure.
    pub fn add_rate_limited(&self, key: impl Into<String>) {
        let key = key.into();
        let failures = {
            let mut inner = self.lock();
            let n = inner.failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        let delay = self.base_delay.saturating_mul(factor).min(self.max_delay);
        self.add_after(key, delay);
    }

    /// Clears a key's failure count (it succeeded).
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// How many times a key has failed in a row.
    pub fn failures(&self, key: &str) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to process; `None` once the queue is shut down.
    pub async fn next(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            {
                let mut inner = self.lock();
                if inner.shut_down {
                    return None;
                }
                if let Some(key) = inner.queue.pop_front() {
                    inner.queued.remove(&key);
                    inner.processing.insert(key.clone());
                    if !inner.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks a key processed; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &str) {
        let mut inner = self.lock();
        inner.processing.remove(key);
        if inner.dirty.remove(key) && inner.queued.insert(key.to_owned()) {
            inner.queue.push_back(key.to_owned());
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Stops the queue: workers waiting in `next` get `None`.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.notify.notify_waiters();
    }

    /// Keys waiting (not counting those being processed).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_queued_once_and_never_processed_twice_at_once() {
        let q = WorkQueue::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let first = q.next().await;
        assert_eq!(first.as_deref(), Some("a"));
        // Added while processing: not handed out again until done.
        q.add("a");
        assert_eq!(q.next().await.as_deref(), Some("b"));
        assert!(q.is_empty());
        q.done("a");
        assert_eq!(q.next().await.as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn failures_back_off_and_forget_resets() {
        let q = WorkQueue::new(Duration::from_millis(10), Duration::from_millis(40));
        q.add_rate_limited("k");
        q.add_rate_limited("k");
        assert_eq!(q.failures("k"), 2);
        let started = tokio::time::Instant::now();
        assert_eq!(q.next().await.as_deref(), Some("k"));
        assert!(started.elapsed() >= Duration::from_millis(10));
        q.forget("k");
        assert_eq!(q.failures("k"), 0);
    }

    #[tokio::test]
    async fn shut_down_wakes_workers() {
        let q = WorkQueue::default();
        let worker = {
            let q = q.clone();
            tokio::spawn(async move { q.next().await })
        };
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(worker.await.ok().flatten(), None);
    }
}
