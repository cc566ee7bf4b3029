//! rkube's controller manager: the control loops of kube-controller-manager, talking to the
//! cluster only through the Kubernetes API.
//!
//! Every controller is level-triggered in client-go's way: shared informers keep caches of
//! the objects ([`informer`]), event handlers turn changes into keys on a rate-limited
//! [`queue::WorkQueue`], and workers reconcile each key from the caches, retrying failures
//! with back-off. Controllers that create objects keep expectations so they never act twice
//! on a cache that has not seen their own writes yet.

pub mod batchutil;
pub mod certificates;
pub mod clusterroleaggregation;
pub mod controllerref;
pub mod cronjob;
pub mod cronschedule;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod informer;
pub mod job;
pub mod leader;
pub mod namespace;
pub mod nodelifecycle;
pub mod podgc;
pub mod podutil;
pub mod queue;
pub mod replicaset;
pub mod resourcequota;
pub mod revisionhistory;
pub mod serviceaccount;
pub mod servicelb;
pub mod statefulset;
pub mod ttlafterfinished;
pub mod volume;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::events::Recorder;
use crate::informer::Informer;
use crate::queue::WorkQueue;

/// A stop signal shared by everything a controller manager started.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

/// Fires a [`Stop`].
pub struct StopHandle(watch::Sender<bool>);

impl Stop {
    pub fn new() -> (StopHandle, Stop) {
        let (tx, rx) = watch::channel(false);
        (StopHandle(tx), Stop(rx))
    }

    /// Never fires.
    pub fn never() -> Stop {
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        Stop(rx)
    }

    /// Resolves once stopped.
    pub async fn stopped(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Drop for StopHandle {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// What the controllers share: the client, the informers, the event recorder, the stop signal.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub stop: Stop,
    pub recorder: Recorder,
    informers: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
}

impl Context {
    pub fn new(client: Client, component: &str, stop: Stop) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), component),
            client,
            stop,
            informers: Arc::default(),
        }
    }

    /// The shared informer of a resource (all namespaces), started on first use.
    pub fn informer<K>(&self) -> Informer<K>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let mut informers = self.informers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = informers
            .get(&TypeId::of::<K>())
            .and_then(|i| i.downcast_ref::<Informer<K>>())
        {
            return existing.clone();
        }
        let informer = Informer::<K>::start(self.client.clone(), self.stop.clone());
        informers.insert(TypeId::of::<K>(), Box::new(informer.clone()));
        informer
    }
}

/// What a reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing until something changes.
    Done,
    /// Look again after this long (a deadline, a pending expectation).
    After(Duration),
}

/// One controller's reconcile of one key.
pub trait Reconcile: Send + Sync + 'static {
    /// The controller's name, for logs.
    fn name(&self) -> &'static str;
    /// Moves the object with this key toward its desired state.
    fn reconcile(&self, key: String) -> impl Future<Output = anyhow::Result<Next>> + Send;
}

/// Runs `workers` workers on the queue until it is shut down or `stop` fires.
pub fn run_workers<R: Reconcile>(reconciler: Arc<R>, queue: WorkQueue, workers: usize, stop: Stop) {
    for _ in 0..workers.max(1) {
        let reconciler = reconciler.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            while let Some(key) = queue.next().await {
                match reconciler.reconcile(key.clone()).await {
                    Ok(next) => {
                        queue.forget(&key);
                        if let Next::After(delay) = next {
                            queue.add_after(key.clone(), delay);
                        }
                    }
                    Err(err) => {
                        let failures = queue.failures(&key);
                        if failures < 3 {
                            tracing::debug!(controller = reconciler.name(), %key, "reconcile failed: {err:#}");
                        } else {
                            tracing::warn!(controller = reconciler.name(), %key, failures, "reconcile failed: {err:#}");
                        }
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    tokio::spawn(async move {
        stop.stopped().await;
        queue.shut_down();
    });
}

/// Feeds an informer's changes into a handler until stopped.
pub fn on_change<K, F>(informer: &Informer<K>, stop: Stop, mut handler: F)
where
    K: Resource + Clone + Send + Sync + 'static,
    F: FnMut(&informer::Change<K>) + Send + 'static,
{
    let mut changes = informer.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Some(change) => handler(&change),
                    None => break,
                },
                () = stop.stopped() => break,
            }
        }
    });
}

/// The controller manager's settings (kube-controller-manager's flags of the same names).
#[derive(Clone, Debug)]
pub struct Options {
    /// Workers per controller.
    pub workers: usize,
    /// The PEM of the cluster CA, published in each namespace as kube-root-ca.crt.
    pub root_ca_pem: Option<String>,
    /// Node lifecycle and IPAM.
    pub nodes: nodelifecycle::NodeOptions,
    /// Terminated pods kept before the oldest are deleted (0: never).
    pub terminated_pod_gc_threshold: usize,
    /// How often pod garbage collection runs.
    pub pod_gc_period: Duration,
    /// Where LoadBalancer services get their addresses.
    pub load_balancer_addresses: servicelb::Addresses,
    /// The directory on the nodes where the local-path provisioner makes volumes.
    pub local_path_dir: String,
    /// The CA that signs approved certificate signing requests; `None`: none are signed.
    pub signing_ca: Option<certificates::SigningCa>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 4,
            root_ca_pem: None,
            nodes: nodelifecycle::NodeOptions::default(),
            terminated_pod_gc_threshold: 12_500,
            pod_gc_period: podgc::DEFAULT_PERIOD,
            load_balancer_addresses: servicelb::Addresses::Nodes,
            local_path_dir: "/var/lib/rkube/storage".to_owned(),
            signing_ca: None,
        }
    }
}

/// Starts every controller; they run until `stop` fires.
pub async fn start(client: Client, options: Options, stop: Stop) -> anyhow::Result<Context> {
    let ctx = Context::new(client, "kube-controller-manager", stop);
    namespace::start(&ctx, &options);
    serviceaccount::start(&ctx, &options);
    gc::start(&ctx, &options).await?;
    endpoints::start(&ctx, &options);
    nodelifecycle::start(&ctx, &options);
    podgc::start(&ctx, &options);
    resourcequota::start(&ctx, &options);
    job::start(&ctx, &options);
    ttlafterfinished::start(&ctx, &options);
    cronjob::start(&ctx, &options);
    daemonset::start(&ctx, &options);
    statefulset::start(&ctx, &options);
    disruption::start(&ctx, &options);
    replicaset::start(&ctx, &options);
    deployment::start(&ctx, &options);
    servicelb::start(&ctx, &options);
    volume::start(&ctx, &options);
    certificates::start(&ctx, &options);
    clusterroleaggregation::start(&ctx, &options);
    Ok(ctx)
}
