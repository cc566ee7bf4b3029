//! End to end: kube-rs (typed API, watcher, reflector) against a real `rkube server`.

#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Config, ResourceExt};
use serde_json::json;

async fn client(c: &common::Cluster) -> Client {
    let kubeconfig = Kubeconfig::read_from(c.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn configmap(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("suite".to_owned(), "kube-rs".to_owned())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("value".to_owned(), value.to_owned())])),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_api_round_trip() {
    let Some(c) = common::start() else { return };
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let created = api
        .create(&PostParams::default(), &configmap("one", "1"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    let mut fetched = api.get("one").await.unwrap();
    assert_eq!(fetched.data.as_ref().unwrap()["value"], "1");

    fetched.data = Some(BTreeMap::from([("value".to_owned(), "2".to_owned())]));
    let replaced = api
        .replace("one", &PostParams::default(), &fetched)
        .await
        .unwrap();
    assert_ne!(replaced.resource_version(), created.resource_version());
    // Replacing again with the now stale object is a 409.
    match api.replace("one", &PostParams::default(), &fetched).await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (409, "Conflict")),
        other => panic!("stale replace gave {other:?}"),
    }
    let list = api
        .list(&ListParams::default().labels("suite=kube-rs"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    api.delete("one", &DeleteParams::default()).await.unwrap();
    match api.get("one").await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (404, "NotFound")),
        other => panic!("get after delete gave {other:?}"),
    }
}

/// An update starts from the watch cache's copy of the object, as kube's GuaranteedUpdate
/// does, and from the store's whenever that copy may be behind: writes made back to back
/// each build on the last, preconditions and no-ops are answered from the current version,
/// and a second binding of a pod is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_updates_build_on_the_current_object() {
    let Some(c) = common::start() else { return };
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("rapid", "0"))
        .await
        .unwrap();
    let version = |cm: &ConfigMap| -> u64 { cm.resource_version().unwrap().parse().unwrap() };
    let mut last = created.clone();
    for i in 1..=20 {
        let patch = json!({"data": {"value": i.to_string(), format!("k{i}"): "x"}});
        let patched = api
            .patch("rapid", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        let data = patched.data.as_ref().unwrap();
        assert_eq!(data["value"], i.to_string());
        // Every earlier patch's key is still there: none started from an older copy.
        assert_eq!(data.len(), i + 1, "patch {i} lost an earlier one: {data:?}");
        assert!(version(&patched) > version(&last));
        last = patched;
    }
    // Each JSON patch tests the value the one before it wrote: none may be refused for a
    // copy that has not caught up with that write.
    for i in 21..=40 {
        let ops = json!([
            {"op": "test", "path": "/data/value", "value": (i - 1).to_string()},
            {"op": "replace", "path": "/data/value", "value": i.to_string()},
        ]);
        let request = http::Request::patch("/api/v1/namespaces/default/configmaps/rapid")
            .header("Content-Type", "application/json-patch+json")
            .body(serde_json::to_vec(&ops).unwrap())
            .unwrap();
        let patched: ConfigMap = client.request(request).await.unwrap();
        assert_eq!(patched.data.as_ref().unwrap()["value"], i.to_string());
        assert!(version(&patched) > version(&last));
        last = patched;
    }
    let stale = json!({"metadata": {"resourceVersion": created.resource_version()}, "data": {"value": "x"}});
    match api
        .patch("rapid", &PatchParams::default(), &Patch::Merge(&stale))
        .await
    {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (409, "Conflict")),
        other => panic!("a patch with a stale resourceVersion gave {other:?}"),
    }
    let unchanged = api
        .patch(
            "rapid",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"value": "40"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        version(&unchanged),
        version(&last),
        "a no-op patch writes nothing"
    );
    for i in 0..10 {
        last.data
            .as_mut()
            .unwrap()
            .insert("value".into(), format!("put-{i}"));
        let replaced = api
            .replace("rapid", &PostParams::default(), &last)
            .await
            .unwrap();
        assert!(version(&replaced) > version(&last));
        last = replaced;
    }
    let again = api
        .replace("rapid", &PostParams::default(), &last)
        .await
        .unwrap();
    assert_eq!(
        version(&again),
        version(&last),
        "a no-op replace writes nothing"
    );
    let mut invalid = last.clone();
    invalid
        .metadata
        .labels
        .get_or_insert_default()
        .insert("tier".into(), "not a label value!".into());
    match api.replace("rapid", &PostParams::default(), &invalid).await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (422, "Invalid")),
        other => panic!("an invalid replace gave {other:?}"),
    }
    assert_eq!(
        api.get("rapid").await.unwrap().data.unwrap()["value"],
        "put-9"
    );

    // A scheduler name nobody serves keeps rkube's scheduler away from the pod.
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bound-once"},
        "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let binding = |node: &str| {
        serde_json::to_vec(&json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "bound-once"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }))
        .unwrap()
    };
    let bound: serde_json::Value = pods
        .create_subresource(
            "binding",
            "bound-once",
            &PostParams::default(),
            binding("n1"),
        )
        .await
        .unwrap();
    assert_eq!(bound["status"], "Success");
    match pods
        .create_subresource::<serde_json::Value>(
            "binding",
            "bound-once",
            &PostParams::default(),
            binding("n2"),
        )
        .await
    {
        Err(kube::Error::Api(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
            assert!(
                e.message.contains("already assigned to node \"n1\""),
                "{}",
                e.message
            );
        }
        other => panic!("a second binding gave {other:?}"),
    }
    let pod = pods.get("bound-once").await.unwrap();
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("n1"));
    let conditions = pod.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True")
    );
}

/// Waits until the watcher yields the object called `name`.
/// kube-rs's metadata calls (`as=PartialObjectMetadata`, `as=PartialObjectMetadataList`, as
/// client-go's metadata client sends them) get metadata alone, typed as kube-apiserver types
/// it: GET, LIST and WATCH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_calls_get_partial_object_metadata() {
    let Some(c) = common::start() else { return };
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &configmap("only-meta", "1"))
        .await
        .unwrap();
    let partial = |types: Option<kube::core::TypeMeta>| {
        let types = types.unwrap_or_default();
        (types.kind, types.api_version)
    };
    let wanted = (
        "PartialObjectMetadata".to_owned(),
        "meta.k8s.io/v1".to_owned(),
    );

    let one = api.get_metadata("only-meta").await.unwrap();
    assert_eq!(partial(one.types.clone()), wanted);
    assert_eq!(
        one.labels().get("suite").map(String::as_str),
        Some("kube-rs")
    );
    // A GET asking for the metadata form, as kube-rs and client-go send it.
    let get_metadata_form = |path: &str| {
        let request = http::Request::get(path)
            .header(
                "Accept",
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            )
            .body(Vec::new())
            .unwrap();
        client.request_text(request)
    };
    // No more than the metadata comes back.
    let text = get_metadata_form("/api/v1/namespaces/default/configmaps/only-meta")
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(body.get("data").is_none(), "{text}");
    assert_eq!(body["metadata"]["name"], "only-meta", "{text}");
    // The object form for a list is refused, as kube-apiserver refuses it.
    match get_metadata_form("/api/v1/namespaces/default/configmaps").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 406, "{status:?}"),
        other => panic!("expected 406, got {other:?}"),
    }

    let list = api
        .list_metadata(&ListParams::default().labels("suite=kube-rs"))
        .await
        .unwrap();
    assert_eq!(list.types.kind, "PartialObjectMetadataList");
    assert_eq!(list.types.api_version, "meta.k8s.io/v1");
    let item = list
        .items
        .iter()
        .find(|m| m.name_any() == "only-meta")
        .expect("the ConfigMap is listed");
    assert_eq!(partial(item.types.clone()), wanted);

    let params = WatchParams::default().fields("metadata.name=only-meta");
    let mut events = api.watch_metadata(&params, "0").await.unwrap().boxed();
    match events.next().await {
        Some(Ok(WatchEvent::Added(m))) => {
            assert_eq!(partial(m.types.clone()), wanted);
            assert_eq!(m.name_any(), "only-meta");
        }
        other => panic!("expected the ConfigMap ADDED, got {other:?}"),
    }
    // With the initial events asked for, the bookmark that ends them is metadata too.
    let initial = WatchParams::default()
        .fields("metadata.name=only-meta")
        .initial_events();
    let mut stream = api.watch_metadata(&initial, "").await.unwrap().boxed();
    loop {
        match stream.next().await {
            Some(Ok(WatchEvent::Added(m))) => assert_eq!(partial(m.types.clone()), wanted),
            Some(Ok(WatchEvent::Bookmark(b))) => {
                assert_eq!((b.types.kind, b.types.api_version), wanted);
                assert_eq!(
                    b.metadata.annotations.get("k8s.io/initial-events-end"),
                    Some(&"true".to_owned())
                );
                break;
            }
            other => panic!("expected the initial events and their bookmark, got {other:?}"),
        }
    }
    api.delete("only-meta", &DeleteParams::default())
        .await
        .unwrap();
    loop {
        match events.next().await {
            Some(Ok(WatchEvent::Deleted(m))) => {
                assert_eq!(partial(m.types.clone()), wanted);
                break;
            }
            Some(Ok(WatchEvent::Modified(_) | WatchEvent::Bookmark(_))) => {}
            other => panic!("expected the ConfigMap DELETED, got {other:?}"),
        }
    }
}

async fn seen<S>(stream: &mut S, name: &str)
where
    S: futures_util::Stream<Item = Result<ConfigMap, watcher::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.next().await {
                Some(Ok(cm)) if cm.name_any() == name => return,
                Some(_) => {} // other objects, or a restart in progress: the watcher retries
                None => panic!("watcher ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("watcher never saw {name}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_and_reflector_follow_changes_across_a_restart() {
    let Some(mut c) = common::start() else { return };
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    api.create(&PostParams::default(), &configmap("before", "0"))
        .await
        .unwrap();

    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    let mut stream = Box::pin(stream);
    seen(&mut stream, "before").await;
    api.create(&PostParams::default(), &configmap("during", "1"))
        .await
        .unwrap();
    seen(&mut stream, "during").await;
    assert!(
        reader
            .get(&reflector::ObjectRef::new("during").within("default"))
            .is_some()
    );

    // The server goes away and comes back; the watcher resumes and sees new objects.
    c.kill();
    c.boot();
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    api.create(&PostParams::default(), &configmap("after", "2"))
        .await
        .unwrap();
    seen(&mut stream, "after").await;
    let names: Vec<String> = reader.state().iter().map(|cm| cm.name_any()).collect();
    for name in ["before", "during", "after"] {
        assert!(names.contains(&name.to_owned()), "{names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_version_is_410_gone() {
    let Some(c) = common::start_with(&["--compaction-retention-secs", "1"]) else {
        return;
    };
    let api: Api<ConfigMap> = Api::namespaced(client(&c).await, "default");
    let first = api
        .create(&PostParams::default(), &configmap("old", "0"))
        .await
        .unwrap();
    let old_version = first.resource_version().unwrap();
    let mut latest = first;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // The watch cache serves a window of recent events (1024 per resource) whatever the
    // store compacted, as kube-apiserver's does; the version must fall out of both.
    for round in 1.. {
        for step in 0..100 {
            latest.data = Some(BTreeMap::from([(
                "value".to_owned(),
                format!("{round}.{step}"),
            )]));
            latest = api
                .replace("old", &PostParams::default(), &latest)
                .await
                .unwrap();
        }
        let mut events = api
            .watch(&WatchParams::default(), &old_version)
            .await
            .unwrap()
            .boxed();
        let first_event = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
        if let Ok(Some(Ok(WatchEvent::Error(e)))) = first_event {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {old_version} (")),
                "{}",
                e.message
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never compacted: {first_event:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A fresh list works and the watcher relists from it.
    let list = api
        .list(&ListParams::default().fields("metadata.name=old"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
}
