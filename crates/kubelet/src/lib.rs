//! rkube's kubelet: registers nodes, reports their status, renews their Leases in
//! kube-node-lease, and runs the pods bound to them through a container [`Runtime`],
//! writing their status back, all through the Kubernetes API.
//!
//! One [`Agent`] runs any number of nodes in one process, sharing one pod watch, one node
//! watch, one heartbeat task and a bound on concurrent API writes, so a single process can
//! be thousands of hollow nodes ([`simulated`]). Each node has its own runtime; the
//! containerd (CRI) runtime of real nodes plugs in behind the same trait.
//!
//! - [`node`]: the Node object and its status, as kube's kubelet builds them;
//! - [`heartbeat`]: Lease renewals and node status posts;
//! - [`events`]: the events kube's kubelet records about pods;
//! - [`pod_worker`]: one task per pod, moving it through the runtime;
//! - [`pod_status`]: the pod status kube's kubelet writes, from what a worker knows;
//! - [`runtime`], [`simulated`], [`ipam`]: the runtime seam, the simulated runtime and its
//!   host-local address pool;
//! - [`envvars`], [`volumes`], [`downward`], [`objects`]: a container's environment and a
//!   pod's volumes as kube's kubelet makes them, from the API objects they refer to;
//! - [`dns`], [`hosts`]: a pod's resolver configuration by its dnsPolicy, and its /etc/hosts;
//! - [`lifecycle`]: postStart and preStop hooks;
//! - [`static_pods`]: pods from a manifest directory, with their mirror pods in the API;
//! - [`cri`], [`cri_runtime`], [`containerd`], [`cni`], [`oci`]: the CRI v1 client, the
//!   runtime over it, the agent's supervised containerd, the pod network's CNI config, and
//!   the image archives rkube makes (the pause image);
//! - [`server`], [`cri_streams`], [`container_logs`], [`certificate`]: the kubelet's HTTPS
//!   server (logs, exec, attach, port-forward), its CRI side, and its serving certificate
//!   from the certificates API;
//! - [`container_spec`], [`machine`]: what a pod's spec asks of the runtime, and what a real
//!   node reports about its machine.

pub mod admission;
mod agent;
pub mod certificate;
pub mod cni;
pub mod container_logs;
pub mod container_spec;
pub mod containerd;
pub mod cri;
pub mod cri_runtime;
pub mod cri_streams;
pub mod dns;
pub mod downward;
pub mod envvars;
pub mod events;
pub mod heartbeat;
pub mod hosts;
pub mod ipam;
pub mod lifecycle;
pub mod machine;
pub mod node;
pub mod objects;
pub mod oci;
pub mod pod_status;
pub mod pod_worker;
pub mod prober;
pub mod runtime;
pub mod server;
pub mod simulated;
pub mod start_gate;
pub mod static_pods;
pub mod volumes;

pub use agent::{Agent, NodeSetup, Options, hollow_nodes};
pub use cri_runtime::CriRuntime;
pub use node::{Capacity, NodeConfig, SystemInfo};
pub use runtime::Runtime;
pub use simulated::SimulatedRuntime;

/// Marks a step of a pod's start (`seen`, `sandbox`, `volumes`, `started`, `reported`) as a
/// debug line of the `rkube::stage` target, for `rkube bench pods` to time each step from
/// the pod's create. Nothing is formatted unless that target is enabled.
pub(crate) fn stage(uid: &str, stage: &'static str) {
    tracing::debug!(target: "rkube::stage", uid, stage, at_us = unix_micros());
}

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}
