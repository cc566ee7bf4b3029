//! The namespace controller: a namespace being deleted (phase Terminating) has everything in
//! it deleted, built-in and custom resources alike; once nothing is left, its `kubernetes`
//! finalizer is removed through namespaces/finalize and the API server lets it go.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::chrono::Utc;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use serde_json::json;

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

/// The finalizer the namespace controller owns (`spec.finalizers`).
pub const FINALIZER: &str = "kubernetes";

struct Controller {
    ctx: Context,
    namespaces: Informer<Namespace>,
}

pub fn start(ctx: &Context, options: &Options) {
    let namespaces = ctx.informer::<Namespace>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&namespaces, ctx.stop.clone(), move |change| {
        let ns = change.object();
        if ns.metadata.deletion_timestamp.is_some() {
            q.add(ns.metadata.name.clone().unwrap_or_default());
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        namespaces,
    });
    run_workers(controller, queue, options.workers.min(2), ctx.stop.clone());
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "namespace"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        let Some(ns) = self.namespaces.get(&key) else {
            return Ok(Next::Done);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(Next::Done);
        }
        let has_finalizer = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
        if !has_finalizer {
            return Ok(Next::Done);
        }
        let remaining = self.delete_content(&key).await?;
        if remaining.is_empty() {
            self.finalize(&ns).await?;
            return Ok(Next::Done);
        }
        self.set_conditions(&key, &remaining).await;
        // Pods with grace periods and objects with finalizers take a while.
        Ok(Next::After(Duration::from_secs(2)))
    }
}

impl Controller {
    /// Deletes every namespaced object in the namespace; returns what is still there, as
    /// `resource.group: count`.
    async fn delete_content(&self, namespace: &str) -> anyhow::Result<Vec<String>> {
        let client = self.ctx.client.clone();
        let discovery = Discovery::new(client.clone()).run().await?;
        let mut remaining = Vec::new();
        for group in discovery.groups() {
            for (resource, caps) in group.recommended_resources() {
                if caps.scope != Scope::Namespaced
                    || !caps.supports_operation(verbs::LIST)
                    || !caps.supports_operation(verbs::DELETE_COLLECTION)
                    || resource.kind == "Event"
                {
                    continue;
                }
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &resource);
                let listed = api.list_metadata(&ListParams::default()).await?;
                if listed.items.is_empty() {
                    continue;
                }
                api.delete_collection(&DeleteParams::background(), &ListParams::default())
                    .await?;
                let left = api.list_metadata(&ListParams::default()).await?;
                if !left.items.is_empty() {
                    let name = if resource.group.is_empty() {
                        resource.plural.clone()
                    } else {
                        format!("{}.{}", resource.plural, resource.group)
                    };
                    remaining.push(format!(
                        "{name} has {} resource instances",
                        left.items.len()
                    ));
                }
            }
        }
        // Events go last, as in kube: what happened while the namespace emptied stays
        // visible until then.
        if remaining.is_empty() {
            let events: Api<DynamicObject> = Api::namespaced_with(
                client,
                namespace,
                &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Event>(&()),
            );
            events
                .delete_collection(&DeleteParams::background(), &ListParams::default())
                .await?;
        }
        Ok(remaining)
    }

    async fn set_conditions(&self, namespace: &str, remaining: &[String]) {
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        let condition = NamespaceCondition {
            type_: "NamespaceContentRemaining".to_owned(),
            status: "True".to_owned(),
            reason: Some("SomeResourcesRemain".to_owned()),
            message: Some(format!(
                "Some resources are remaining: {}",
                remaining.join(", ")
            )),
            last_transition_time: Some(Time(Utc::now())),
        };
        let patch = json!({"status": {"conditions": [condition]}});
        let _ = api
            .patch_status(namespace, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
    }

    async fn finalize(&self, ns: &Namespace) -> anyhow::Result<()> {
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        let mut ns = ns.clone();
        if let Some(spec) = ns.spec.as_mut() {
            let finalizers = spec.finalizers.take().unwrap_or_default();
            spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
        }
        let name = ns.metadata.name.clone().unwrap_or_default();
        let body = serde_json::to_vec(&ns)?;
        match api
            .replace_subresource("finalize", &name, &PostParams::default(), body)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
