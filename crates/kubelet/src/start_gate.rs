//! How many pods of a node make their sandbox and start their containers at once.
//!
//! A burst of new pods is bound by the node's CPU: runc, the shims and the CNI plugins of
//! every sandbox compete for it. Started all at once, the pods share the CPU and all of them
//! are Running only near the end of the burst. Taken a few at a time, in the order they came,
//! the first are Running while the last still wait, and the last are no later than before:
//! the work is the same, with less contention. (One more turn than the node has CPUs keeps
//! them busy while a start waits on a disk or a process.)
//!
//! A turn is for what costs the node's CPU: the sandbox, the containers' create and start.
//! A pod gives it up before what waits on something else (an image pull, a postStart hook),
//! and a turn lasts at most [`HOLD`], so a stuck start never holds the others back for long.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

/// The longest a pod keeps its turn; past it, the next pod starts alongside.
pub const HOLD: Duration = Duration::from_secs(2);

/// The turns of one node.
#[derive(Debug)]
pub struct StartGate {
    turns: Arc<Semaphore>,
    width: usize,
}

/// A pod's turn to start; given back when dropped, or after [`HOLD`].
#[derive(Debug)]
pub struct Turn {
    _release: oneshot::Sender<()>,
}

impl StartGate {
    /// `at_once` pods start together (at least one).
    pub fn new(at_once: usize) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(at_once.max(1))),
            width: at_once.max(1),
        }
    }

    /// How many pods start together.
    pub fn width(&self) -> usize {
        self.width
    }

    /// One more than the machine's CPUs.
    pub fn for_this_machine() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cpus + 1)
    }

    /// Waits for a turn; turns are given in the order they are asked for.
    pub async fn turn(&self) -> Turn {
        let (release, released) = oneshot::channel::<()>();
        // The semaphore is never closed, so the permit is always granted.
        if let Ok(permit) = self.turns.clone().acquire_owned().await {
            tokio::spawn(async move {
                // Either end gives the turn back: the pod drops it, or it held it too long.
                tokio::select! {
                    _ = released => {}
                    () = tokio::time::sleep(HOLD) => {}
                }
                drop(permit);
            });
        }
        Turn { _release: release }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A turn, if one is granted within `within`.
    async fn granted(gate: &StartGate, within: Duration) -> Option<Turn> {
        tokio::time::timeout(within, gate.turn()).await.ok()
    }

    const SOON: Duration = Duration::from_millis(500);

    #[tokio::test]
    async fn at_most_so_many_pods_start_at_once_and_a_dropped_turn_lets_the_next_in() {
        let gate = StartGate::new(2);
        let first = granted(&gate, SOON).await.expect("first turn");
        let _second = granted(&gate, SOON).await.expect("second turn");
        assert!(granted(&gate, SOON).await.is_none(), "a third pod waits");
        drop(first);
        assert!(
            granted(&gate, SOON).await.is_some(),
            "the first one's turn is free"
        );
    }

    #[tokio::test]
    async fn turns_are_given_in_the_order_asked_for() {
        let gate = Arc::new(StartGate::new(1));
        let held = gate.turn().await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for i in 0..5 {
            let (gate, order) = (gate.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = gate.turn().await;
                order.lock().unwrap_or_else(|e| e.into_inner()).push(i);
            }));
            // Each asks after the one before.
            tokio::task::yield_now().await;
        }
        drop(held);
        for w in waiting {
            w.await.expect("waiter");
        }
        assert_eq!(
            *order.lock().unwrap_or_else(|e| e.into_inner()),
            [0, 1, 2, 3, 4]
        );
    }

    #[tokio::test]
    async fn a_turn_held_too_long_lets_the_next_pod_start() {
        let gate = StartGate::new(1);
        let since = Instant::now();
        let _stuck = gate.turn().await;
        assert!(
            granted(&gate, HOLD / 2).await.is_none(),
            "within the hold, the next pod waits"
        );
        let next = granted(&gate, HOLD * 2).await;
        assert!(next.is_some(), "past the hold, the next pod starts");
        assert!(since.elapsed() >= HOLD, "not before the hold is over");
    }
}
