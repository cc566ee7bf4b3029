//! The garbage collector: owner references with kube's three propagation policies.
//!
//! It watches the metadata of every resource that can be listed, watched and deleted
//! (custom resources too, found by re-running discovery), and keeps a graph of objects by
//! uid. Then, as
//! kube-controller-manager's garbagecollector does:
//! - an object whose owners are all gone is deleted (Background propagation);
//! - an object with owners of which some are gone has the dangling references removed;
//! - an owner being deleted with the `foregroundDeletion` finalizer has its dependents
//!   deleted first, and loses the finalizer once no dependent with `blockOwnerDeletion` is
//!   left;
//! - an owner being deleted with the `orphan` finalizer has its dependents' references to it
//!   removed, then loses the finalizer.
//!
//! An owner missing from the graph is looked up through the API before anything is deleted,
//! so a cache that has not caught up never causes a deletion.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, PostParams,
};
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use kube::runtime::watcher;
use serde_json::json;

use crate::informer::{Change, Informer};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// Resources the collector leaves alone, as kube's defaults do.
fn ignored(resource: &ApiResource) -> bool {
    matches!(
        (resource.group.as_str(), resource.plural.as_str()),
        ("", "events") | ("events.k8s.io", "events")
    )
}

#[derive(Clone, Debug)]
struct Node {
    resource: ApiResource,
    namespaced: bool,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    /// owner uid -> dependent uids.
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn upsert(&mut self, uid: &str, node: Node) {
        if let Some(old) = self.nodes.get(uid) {
            for owner in &old.owners {
                if let Some(set) = self.dependents.get_mut(&owner.uid) {
                    set.remove(uid);
                }
            }
        }
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.to_owned());
        }
        self.nodes.insert(uid.to_owned(), node);
    }

    fn remove(&mut self, uid: &str) -> Option<Node> {
        let old = self.nodes.remove(uid)?;
        for owner in &old.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
        Some(old)
    }

    fn dependents_of(&self, uid: &str) -> Vec<(String, Node)> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect()
    }
}

/// (apiVersion, kind) -> (resource, namespaced).
type KindMap = HashMap<(String, String), (ApiResource, bool)>;

struct Collector {
    ctx: Context,
    graph: Arc<RwLock<Graph>>,
    /// What discovery found.
    kinds: Arc<RwLock<KindMap>>,
}

fn node_of(meta: &ObjectMeta, resource: &ApiResource, namespaced: bool) -> Node {
    Node {
        resource: resource.clone(),
        namespaced,
        namespace: meta.namespace.clone(),
        name: meta.name.clone().unwrap_or_default(),
        owners: meta.owner_references.clone().unwrap_or_default(),
        deleting: meta.deletion_timestamp.is_some(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
    }
}

pub async fn start(ctx: &Context, options: &Options) -> anyhow::Result<()> {
    let collector = Arc::new(Collector {
        ctx: ctx.clone(),
        graph: Arc::default(),
        kinds: Arc::default(),
    });
    let queue = WorkQueue::default();
    run_workers(
        collector.clone(),
        queue.clone(),
        options.workers,
        ctx.stop.clone(),
    );
    // Discovery now and every 30 s, so new custom resources are watched too.
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let mut watched: HashSet<(String, String)> = HashSet::new();
        loop {
            if let Err(err) = collector.discover(&queue, &mut watched).await {
                tracing::debug!("garbage collector discovery failed: {err:#}");
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
                () = ctx.stop.stopped() => break,
            }
        }
    });
    Ok(())
}

impl Collector {
    async fn discover(
        self: &Arc<Self>,
        queue: &WorkQueue,
        watched: &mut HashSet<(String, String)>,
    ) -> anyhow::Result<()> {
        let discovery = Discovery::new(self.ctx.client.clone()).run().await?;
        for group in discovery.groups() {
            for (resource, caps) in group.recommended_resources() {
                let namespaced = caps.scope == Scope::Namespaced;
                self.kinds
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        (resource.api_version.clone(), resource.kind.clone()),
                        (resource.clone(), namespaced),
                    );
                if ignored(&resource)
                    || !caps.supports_operation(verbs::LIST)
                    || !caps.supports_operation(verbs::WATCH)
                    || !caps.supports_operation(verbs::DELETE)
                {
                    continue;
                }
                if !watched.insert((resource.group.clone(), resource.plural.clone())) {
                    continue;
                }
                self.watch(resource, namespaced, queue.clone());
            }
        }
        Ok(())
    }

    fn watch(self: &Arc<Self>, resource: ApiResource, namespaced: bool, queue: WorkQueue) {
        // Owner references, finalizers and deletion are all metadata: the objects' specs
        // and statuses are neither sent nor decoded.
        let api: Api<DynamicObject> = Api::all_with(self.ctx.client.clone(), &resource);
        let informer: Informer<PartialObjectMeta<DynamicObject>> =
            Informer::start_metadata(api, watcher::Config::default(), self.ctx.stop.clone());
        let graph = self.graph.clone();
        on_change(&informer, self.ctx.stop.clone(), move |change| {
            let object = change.object();
            let Some(uid) = object.metadata.uid.clone() else {
                return;
            };
            let mut graph = graph.write().unwrap_or_else(|e| e.into_inner());
            match change {
                Change::Added(_) | Change::Updated(_, _) => {
                    let node = node_of(&object.metadata, &resource, namespaced);
                    let interesting = !node.owners.is_empty()
                        || (node.deleting
                            && node
                                .finalizers
                                .iter()
                                .any(|f| f == ORPHAN || f == FOREGROUND));
                    // An owner deleting in the foreground waits on this dependent.
                    for owner in &node.owners {
                        if graph.nodes.get(&owner.uid).is_some_and(|o| o.deleting) {
                            queue.add(owner.uid.clone());
                        }
                    }
                    graph.upsert(&uid, node);
                    if interesting {
                        queue.add(uid);
                    }
                }
                Change::Deleted(_) => {
                    if let Some(old) = graph.remove(&uid) {
                        for owner in &old.owners {
                            queue.add(owner.uid.clone());
                        }
                    }
                    for (dependent, _) in graph.dependents_of(&uid) {
                        queue.add(dependent);
                    }
                }
            }
        });
    }

    fn api_for(&self, node: &Node) -> Api<DynamicObject> {
        match (&node.namespace, node.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.ctx.client.clone(), ns, &node.resource),
            _ => Api::all_with(self.ctx.client.clone(), &node.resource),
        }
    }

    /// Whether an owner exists (by uid), and whether it is deleting its dependents first.
    async fn owner_state(&self, owner: &OwnerReference, namespace: Option<&str>) -> OwnerState {
        let known = {
            let graph = self.graph.read().unwrap_or_else(|e| e.into_inner());
            graph.nodes.get(&owner.uid).cloned()
        };
        let node = match known {
            Some(node) => node,
            None => {
                // Not in the graph (yet): ask the API server.
                let kind = self
                    .kinds
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&(owner.api_version.clone(), owner.kind.clone()))
                    .cloned();
                let Some((resource, namespaced)) = kind else {
                    // A kind the server does not serve: kube treats the owner as absent.
                    return OwnerState::Absent;
                };
                let api: Api<DynamicObject> = match (namespace, namespaced) {
                    (Some(ns), true) => {
                        Api::namespaced_with(self.ctx.client.clone(), ns, &resource)
                    }
                    _ => Api::all_with(self.ctx.client.clone(), &resource),
                };
                return match api.get_metadata_opt(&owner.name).await {
                    Ok(Some(o)) if o.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                        let n = node_of(&o.metadata, &resource, namespaced);
                        owner_state_of(&n)
                    }
                    Ok(_) => OwnerState::Absent,
                    Err(_) => OwnerState::Unknown,
                };
            }
        };
        owner_state_of(&node)
    }

    async fn delete(&self, node: &Node, policy: &str) -> anyhow::Result<()> {
        let params = DeleteParams {
            propagation_policy: Some(match policy {
                "Foreground" => kube::api::PropagationPolicy::Foreground,
                "Orphan" => kube::api::PropagationPolicy::Orphan,
                _ => kube::api::PropagationPolicy::Background,
            }),
            ..DeleteParams::default()
        };
        match self.api_for(node).delete(&node.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes owner references (by owner uid) from an object.
    async fn remove_owner_refs(
        &self,
        node: &Node,
        uid: &str,
        drop: &HashSet<String>,
    ) -> anyhow::Result<()> {
        let api = self.api_for(node);
        let Some(mut object) = api.get_opt(&node.name).await? else {
            return Ok(());
        };
        if object.metadata.uid.as_deref() != Some(uid) {
            return Ok(());
        }
        let owners = object.metadata.owner_references.take().unwrap_or_default();
        let kept: Vec<OwnerReference> = owners
            .into_iter()
            .filter(|o| !drop.contains(&o.uid))
            .collect();
        object.metadata.owner_references = (!kept.is_empty()).then_some(kept);
        api.replace(&node.name, &PostParams::default(), &object)
            .await?;
        Ok(())
    }

    async fn remove_finalizer(
        &self,
        node: &Node,
        uid: &str,
        finalizer: &str,
    ) -> anyhow::Result<()> {
        let api = self.api_for(node);
        let Some(object) = api.get_opt(&node.name).await? else {
            return Ok(());
        };
        if object.metadata.uid.as_deref() != Some(uid) {
            return Ok(());
        }
        let finalizers: Vec<String> = object
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        // A merge patch guarded by the resource version: a racing writer makes it fail and
        // the key is retried.
        let patch = json!({"metadata": {
            "resourceVersion": object.metadata.resource_version,
            "finalizers": finalizers,
        }});
        api.patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum OwnerState {
    Solid,
    WaitingForDependents,
    Absent,
    Unknown,
}

fn owner_state_of(node: &Node) -> OwnerState {
    if node.deleting && node.finalizers.iter().any(|f| f == FOREGROUND) {
        OwnerState::WaitingForDependents
    } else {
        OwnerState::Solid
    }
}

impl Reconcile for Collector {
    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    async fn reconcile(&self, uid: String) -> anyhow::Result<Next> {
        let (node, dependents) = {
            let graph = self.graph.read().unwrap_or_else(|e| e.into_inner());
            let Some(node) = graph.nodes.get(&uid).cloned() else {
                return Ok(Next::Done);
            };
            (node, graph.dependents_of(&uid))
        };
        if node.deleting && node.finalizers.iter().any(|f| f == ORPHAN) {
            let drop: HashSet<String> = [uid.clone()].into();
            for (dependent_uid, dependent) in &dependents {
                self.remove_owner_refs(dependent, dependent_uid, &drop)
                    .await?;
            }
            self.remove_finalizer(&node, &uid, ORPHAN).await?;
            return Ok(Next::Done);
        }
        if node.deleting && node.finalizers.iter().any(|f| f == FOREGROUND) {
            let mut blocking = 0;
            for (_, dependent) in &dependents {
                let blocks = dependent
                    .owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true));
                if blocks {
                    blocking += 1;
                }
                if !dependent.deleting {
                    self.delete(dependent, "Foreground").await?;
                }
            }
            if blocking == 0 {
                self.remove_finalizer(&node, &uid, FOREGROUND).await?;
                return Ok(Next::Done);
            }
            // Dependents' changes queue this owner again; look anyway in a while.
            return Ok(Next::After(Duration::from_secs(5)));
        }
        if node.owners.is_empty() || node.deleting {
            return Ok(Next::Done);
        }
        let mut solid = Vec::new();
        let mut dangling = HashSet::new();
        let mut waiting = HashSet::new();
        for owner in &node.owners {
            match self.owner_state(owner, node.namespace.as_deref()).await {
                OwnerState::Solid => solid.push(owner.uid.clone()),
                OwnerState::Absent => {
                    dangling.insert(owner.uid.clone());
                }
                OwnerState::WaitingForDependents => {
                    waiting.insert(owner.uid.clone());
                }
                OwnerState::Unknown => {
                    return Err(anyhow::anyhow!("cannot look up owner {}", owner.name));
                }
            }
        }
        if !solid.is_empty() {
            if !dangling.is_empty() {
                self.remove_owner_refs(&node, &uid, &dangling).await?;
            }
            return Ok(Next::Done);
        }
        if !waiting.is_empty() {
            // An owner deletes in the foreground: so does this dependent, if it has its own.
            let policy = if dependents.is_empty() {
                "Background"
            } else {
                "Foreground"
            };
            self.delete(&node, policy).await?;
            return Ok(Next::Done);
        }
        let policy = if node.finalizers.iter().any(|f| f == ORPHAN) {
            "Orphan"
        } else if node.finalizers.iter().any(|f| f == FOREGROUND) {
            "Foreground"
        } else {
            "Background"
        };
        tracing::debug!(kind = %node.resource.kind, name = %node.name, "deleting an object whose owners are gone");
        self.delete(&node, policy).await?;
        Ok(Next::Done)
    }
}
