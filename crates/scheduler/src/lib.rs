//! rkube's scheduler: kube-scheduler's framework and default plugins, talking to the
//! cluster only through the Kubernetes API.
//!
//! The path of a pod: the pod watch puts it in the [`queue`] (priority first); each cycle
//! takes one pod and runs the [`framework`]'s PreFilter, Filter (a round-robin sample of
//! nodes, in parallel) and Score plugins over the [`cache`], assumes the best node at once
//! and binds asynchronously through `pods/binding`; a pod that fits nowhere may preempt
//! pods of lower priority ([`plugins::default_preemption`]) and waits, with kube's message
//! in its PodScheduled condition and a FailedScheduling event, for a cluster change.
//!
//! [`scheduler::Scheduler`] is the whole decision-making core with no I/O (cluster changes
//! in, actions out); [`run`] connects it to an API server.

pub mod admission;
pub mod cache;
mod client;
pub mod default_spread;
pub mod fast_hash;
pub mod framework;
pub mod labels;
pub mod node_info;
pub mod node_memo;
pub mod nominator;
pub mod parallel;
pub mod plugins;
pub mod pod_info;
pub mod queue;
pub mod resource;
pub mod schedule_one;
pub mod scheduler;
pub mod status;
pub mod taints;

pub use client::{DefaultBinder, SchedulerOptions, run};
