//! CustomResourceDefinitions: the part of kube-apiserver's apiextensions server that turns a
//! stored CRD into served resources. It follows the CRDs in the store, marks each one
//! `NamesAccepted` and `Established`, serves its versions (discovery, OpenAPI, CRUD, watch)
//! without a restart, and when a CRD is deleted stops serving it, deletes its objects, and
//! then removes the cleanup finalizer so the CRD itself goes.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use rkube_api::registry::{CustomInfo, builtin_resources};
use rkube_store::{EventKind, RangeRequest, StoreError};
use serde_json::{Value, json};

use crate::State;
use crate::objects::{from_kv, to_bytes};
use crate::time_util;

/// The finalizer that holds a deleted CRD until its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
const PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

/// Follows the CRDs until the server goes away.
pub fn spawn(state: Weak<State>) {
    tokio::spawn(async move {
        loop {
            let Some(strong) = state.upgrade() else {
                return;
            };
            if let Err(err) = follow(&strong).await {
                tracing::warn!(error = %err, "CRD controller restarting");
            }
            drop(strong);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// Serves the CRDs in the store now; the server calls this before it reports ready.
pub async fn load(state: &State) -> Result<(), StoreError> {
    let (known, _) = list(state).await?;
    publish(state, &known);
    Ok(())
}

async fn list(
    state: &State,
) -> Result<(BTreeMap<String, Value>, rkube_store::Revision), StoreError> {
    let mut known: BTreeMap<String, Value> = BTreeMap::new();
    let mut start_after = None;
    let mut revision = 0;
    loop {
        let page = state
            .store
            .range(RangeRequest {
                prefix: PREFIX.into(),
                start_after: start_after.clone(),
                limit: 500,
                revision,
            })
            .await?;
        revision = page.revision;
        for kv in &page.kvs {
            if let Ok(crd) = from_kv(kv) {
                known.insert(kv.key.clone(), crd);
            }
            start_after = Some(kv.key.clone());
        }
        if !page.more {
            break;
        }
    }
    Ok((known, revision))
}

async fn follow(state: &Arc<State>) -> Result<(), StoreError> {
    let (mut known, revision) = list(state).await?;
    publish(state, &known);
    for (key, crd) in known.clone() {
        reconcile(state, &key, &crd).await;
    }
    let mut events = state.store.watch(PREFIX, revision).await?;
    while let Some(event) = events.next().await {
        let event = event?;
        match event.kind {
            EventKind::Delete => {
                known.remove(&event.kv.key);
            }
            EventKind::Put => {
                if let Ok(crd) = from_kv(&event.kv) {
                    known.insert(event.kv.key.clone(), crd);
                }
            }
        }
        publish(state, &known);
        if let Some(crd) = known.get(&event.kv.key).cloned() {
            reconcile(state, &event.kv.key, &crd).await;
        }
    }
    Ok(())
}

/// Serves the built-in resources and every CRD that is not being deleted.
fn publish(state: &State, crds: &BTreeMap<String, Value>) {
    let mut resources = builtin_resources();
    for crd in crds.values() {
        if crd["metadata"].get("deletionTimestamp").is_none() {
            resources.extend(CustomInfo::resources_of(crd));
        }
    }
    if let Ok(mut served) = state.resources.write() {
        *served = Arc::new(resources);
    }
}

fn condition(kind: &str, reason: &str, message: &str, old: &Value) -> Value {
    let since = old["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind && c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned))
        .unwrap_or_else(time_util::now);
    json!({"type": kind, "status": "True", "lastTransitionTime": since, "reason": reason, "message": message})
}

async fn reconcile(state: &State, key: &str, crd: &Value) {
    if crd["metadata"].get("deletionTimestamp").is_some() {
        clean_up(state, key, crd).await;
        return;
    }
    let mut accepted = crd["spec"]["names"].clone();
    if accepted["singular"].as_str().is_none_or(str::is_empty) {
        accepted["singular"] = json!(accepted["kind"].as_str().unwrap_or("").to_ascii_lowercase());
    }
    let mut stored: Vec<Value> = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
        if v["storage"] == true && !stored.contains(&v["name"]) {
            stored.push(v["name"].clone());
        }
    }
    let status = json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found", crd),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted", crd),
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    });
    if crd["status"] == status {
        return;
    }
    let mut updated = crd.clone();
    updated["status"] = status;
    let Some(revision) = crd["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
    else {
        return;
    };
    // A conflict means a newer version is on its way to us; it is reconciled then.
    let _ = state.store.update(key, to_bytes(&updated), revision).await;
}

/// Deletes every object of a deleted CRD, then lets the CRD go.
async fn clean_up(state: &State, key: &str, crd: &Value) {
    let has_finalizer = crd["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == CLEANUP_FINALIZER));
    if !has_finalizer {
        return;
    }
    let group = crd["spec"]["group"].as_str().unwrap_or("");
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or("");
    if group.is_empty() || plural.is_empty() {
        return;
    }
    let prefix = format!("/registry/{group}/{plural}/");
    loop {
        let page = match state
            .store
            .range(RangeRequest {
                prefix: prefix.clone(),
                start_after: None,
                limit: 500,
                revision: 0,
            })
            .await
        {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, crd = key, "cannot list custom objects to delete");
                return;
            }
        };
        for kv in &page.kvs {
            match state.store.delete(&kv.key, None).await {
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(err) => {
                    tracing::warn!(error = %err, key = kv.key, "cannot delete a custom object");
                    return;
                }
            }
        }
        if !page.more {
            break;
        }
    }
    let mut updated = crd.clone();
    if let Some(finalizers) = updated["metadata"]["finalizers"].as_array_mut() {
        finalizers.retain(|f| f != CLEANUP_FINALIZER);
    }
    let Some(revision) = crd["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
    else {
        return;
    };
    let others_left = updated["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let _ = if others_left {
        state.store.update(key, to_bytes(&updated), revision).await
    } else {
        state.store.delete(key, Some(revision)).await
    };
}
