//! End to end: resources served in two versions over one storage, as kube-apiserver serves
//! them: autoscaling/v1 and v2 HorizontalPodAutoscalers (stored as v2), core/v1 and
//! events.k8s.io/v1 Events (stored as core/v1). Driven by real kubectl 1.33 and kube-rs.

#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use std::io::BufReader;
use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::autoscaling::v1 as autoscaling_v1;
use k8s_openapi::api::events::v1 as events_v1;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

const HPA_V1: &str = "horizontalpodautoscalers.v1.autoscaling";
const HPA_V2: &str = "horizontalpodautoscalers.v2.autoscaling";
const EVENTS_NEW: &str = "events.v1.events.k8s.io";

#[test]
fn hpa_is_one_object_through_autoscaling_v1_and_v2() {
    let Some(c) = common::start() else { return };
    c.kubectl(&["create", "deployment", "web", "--image=busybox"]);
    let out = c.kubectl(&[
        "autoscale",
        "deployment",
        "web",
        "--cpu-percent=50",
        "--min=1",
        "--max=5",
    ]);
    assert_eq!(
        out.trim(),
        "horizontalpodautoscaler.autoscaling/web autoscaled"
    );

    // The same object, the same resourceVersion, in each version's shape.
    let v1 = parse(&c.kubectl(&["get", HPA_V1, "web", "-o", "json"]));
    let v2 = parse(&c.kubectl(&["get", HPA_V2, "web", "-o", "json"]));
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(v1["metadata"]["uid"], v2["metadata"]["uid"]);
    assert_eq!(
        v1["metadata"]["resourceVersion"],
        v2["metadata"]["resourceVersion"]
    );
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
    assert_eq!(v1["spec"]["scaleTargetRef"]["name"], "web");
    assert_eq!(
        v1["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}])
    );
    // kubectl expands a short name to its group's preferred version, so hpa.v1.autoscaling
    // reads v2, as it does against kube-apiserver.
    let short = parse(&c.kubectl(&["get", "hpa.v1.autoscaling", "web", "-o", "json"]));
    assert_eq!(short["metadata"]["uid"], v1["metadata"]["uid"]);
    let yaml = c.kubectl(&["get", HPA_V1, "web", "-o", "yaml"]);
    assert!(
        yaml.contains("apiVersion: autoscaling/v1")
            && yaml.contains("targetCPUUtilizationPercentage: 50"),
        "{yaml}"
    );

    // A write through v1 is read back through v2...
    c.kubectl(&[
        "patch",
        HPA_V1,
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"targetCPUUtilizationPercentage":70,"maxReplicas":7}}"#,
    ]);
    let v2 = parse(&c.kubectl(&["get", "hpa", "web", "-o", "json"]));
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    assert_eq!(v2["spec"]["maxReplicas"], 7);

    // ...and the reverse; what v1 cannot say travels in kube's annotation.
    c.kubectl(&[
        "patch",
        "hpa",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/metrics/-","value":{"type":"Resource","resource":{"name":"memory","target":{"type":"AverageValue","averageValue":"100Mi"}}}}]"#,
    ]);
    let v1 = parse(&c.kubectl(&["get", HPA_V1, "web", "-o", "json"]));
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(
        v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"],
        r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]"#
    );

    // A strategic merge patch through v1 keeps the metric v1 cannot express.
    c.kubectl(&[
        "patch",
        HPA_V1,
        "web",
        "-p",
        r#"{"spec":{"maxReplicas":8}}"#,
    ]);
    let v2 = parse(&c.kubectl(&["get", "hpa", "web", "-o", "json"]));
    assert_eq!(v2["spec"]["maxReplicas"], 8);
    let names: Vec<&str> = v2["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["resource"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["memory", "cpu"]);
    assert!(v2["metadata"].get("annotations").is_none(), "{v2}");

    // Status written through v1's status subresource, read through v2 and in the table.
    c.kubectl(&[
        "patch",
        HPA_V1,
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"currentReplicas":2,"desiredReplicas":3,"currentCPUUtilizationPercentage":40}}"#,
    ]);
    let v2 = parse(&c.kubectl(&["get", "hpa", "web", "-o", "json"]));
    assert_eq!(v2["status"]["desiredReplicas"], 3);
    assert_eq!(
        v2["status"]["currentMetrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}])
    );
    assert_eq!(
        v2["spec"]["maxReplicas"], 8,
        "status writes leave the spec alone"
    );

    // Tables and describe, for both versions.
    for resource in ["hpa", HPA_V1] {
        let table = c.kubectl(&["get", resource]);
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE"
            ]
        );
        let row = table.lines().nth(1).unwrap();
        assert!(
            row.starts_with("web ")
                && row.contains("Deployment/web")
                // kube pairs spec and status metrics by index: the memory spec meets
                // the CPU status, which has no average value.
                && row.contains("memory: <nil>/100Mi, cpu: <unknown>/70%"),
            "{table}"
        );
    }
    let described = c.kubectl(&["describe", "hpa", "web"]);
    assert!(
        described.contains("Reference:") && described.contains("Deployment/web"),
        "{described}"
    );
    assert!(
        described
            .lines()
            .any(|l| l.starts_with("Max replicas:") && l.ends_with(" 8")),
        "{described}"
    );

    // Invalid through v1 is a 422 with kube's causes.
    let bad = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "bad"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 0}});
    let err = c.kubectl_fails(&["create", "-f", "-"], Some(&bad.to_string()));
    assert!(
        err.contains(r#"The HorizontalPodAutoscaler "bad" is invalid"#)
            && err.contains("spec.maxReplicas: Invalid value: 0: must be greater than 0"),
        "{err}"
    );

    // Deleting through one version deletes the object for both.
    c.kubectl(&["delete", HPA_V1, "web"]);
    let err = c.kubectl_fails(&["get", "hpa", "web"], None);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn discovery_serves_both_versions_with_v2_preferred() {
    let Some(c) = common::start() else { return };
    let versions = c.kubectl(&["api-versions"]);
    for gv in ["autoscaling/v1", "autoscaling/v2", "events.k8s.io/v1", "v1"] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{gv} missing: {versions}"
        );
    }
    let group = parse(&c.kubectl(&["get", "--raw", "/apis/autoscaling"]));
    assert_eq!(group["preferredVersion"]["version"], "v2");
    let v1 = parse(&c.kubectl(&["get", "--raw", "/apis/autoscaling/v1"]));
    let hpa = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "horizontalpodautoscalers")
        .unwrap();
    assert_eq!(hpa["shortNames"], json!(["hpa"]));
    assert_eq!(hpa["categories"], json!(["all"]));
    let resources = c.kubectl(&["api-resources"]);
    let rows: Vec<Vec<&str>> = resources
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.contains(&vec![
        "horizontalpodautoscalers",
        "hpa",
        "autoscaling/v2",
        "true",
        "HorizontalPodAutoscaler"
    ]));
    assert!(rows.contains(&vec!["events", "ev", "events.k8s.io/v1", "true", "Event"]));
    assert!(rows.contains(&vec!["events", "ev", "v1", "true", "Event"]));
    // OpenAPI describes the v1 HPA and the new Event, so explain works.
    let explained = c.kubectl(&[
        "explain",
        "hpa.spec.targetCPUUtilizationPercentage",
        "--api-version=autoscaling/v1",
    ]);
    assert!(explained.contains("VERSION:    v1"), "{explained}");
    let explained = c.kubectl(&["explain", "events.note", "--api-version=events.k8s.io/v1"]);
    assert!(
        explained.contains("GROUP:      events.k8s.io"),
        "{explained}"
    );
}

#[test]
fn kubectl_watch_through_autoscaling_v1_sees_v1_objects() {
    let Some(c) = common::start() else { return };
    let manifest = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "watched"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "maxReplicas": 3, "targetCPUUtilizationPercentage": 40}});
    c.kubectl_stdin(&["create", "-f", "-"], Some(&manifest.to_string()));
    let mut watch = c.kubectl_spawn(&[
        "get",
        HPA_V1,
        "--watch",
        "--output-watch-events",
        "-o",
        "json",
    ]);
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for event in serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter() {
            let Ok(event) = event else { return };
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("no watch event ({e}); server log:\n{}", c.log()))
    };
    let added = next();
    assert_eq!(added["type"], "ADDED", "{added}");
    assert_eq!(added["object"]["apiVersion"], "autoscaling/v1");
    assert_eq!(
        added["object"]["spec"]["targetCPUUtilizationPercentage"],
        40
    );

    // A change written through v2 arrives converted.
    c.kubectl(&[
        "patch",
        HPA_V2,
        "watched",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/metrics/0/resource/target/averageUtilization","value":65}]"#,
    ]);
    let modified = next();
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(modified["type"], "MODIFIED", "{modified}");
    assert_eq!(modified["object"]["apiVersion"], "autoscaling/v1");
    assert_eq!(
        modified["object"]["spec"]["targetCPUUtilizationPercentage"],
        65
    );
}

#[test]
fn events_are_one_object_through_core_and_events_k8s_io() {
    let Some(c) = common::start() else { return };
    let new_style = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web-scaled", "namespace": "default"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "example.com/scaler", "reportingInstance": "scaler-1",
        "action": "Scale", "reason": "Scaled", "type": "Normal", "note": "scaled web to 3",
        "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "default"},
    });
    let out = c.kubectl_stdin(&["create", "-f", "-"], Some(&new_style.to_string()));
    assert_eq!(out.trim(), "event.events.k8s.io/web-scaled created");

    // Through core/v1, with core's field names.
    let core = parse(&c.kubectl(&["get", "events", "web-scaled", "-o", "json"]));
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "scaled web to 3");
    assert_eq!(core["involvedObject"]["name"], "web");
    assert_eq!(core["reportingComponent"], "example.com/scaler");
    assert_eq!(core["reportingInstance"], "scaler-1");
    assert_eq!(core["action"], "Scale");
    assert!(core.get("note").is_none() && core.get("regarding").is_none());
    let new = parse(&c.kubectl(&["get", EVENTS_NEW, "web-scaled", "-o", "json"]));
    assert_eq!(
        core["metadata"]["resourceVersion"],
        new["metadata"]["resourceVersion"]
    );
    let table = c.kubectl(&["get", "events"]);
    assert!(
        table.lines().any(|l| l.contains("Normal")
            && l.contains("Scaled")
            && l.contains("deployment/web")
            && l.ends_with("scaled web to 3")),
        "{table}"
    );

    // A core event through events.k8s.io/v1.
    let old_style = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "pod-pulled", "namespace": "default"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "p1", "namespace": "default"},
        "reason": "Pulled", "message": "image pulled", "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"}, "count": 2,
        "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:01:00Z",
    });
    c.kubectl_stdin(&["create", "-f", "-"], Some(&old_style.to_string()));
    let new = parse(&c.kubectl(&["get", EVENTS_NEW, "pod-pulled", "-o", "json"]));
    assert_eq!(new["apiVersion"], "events.k8s.io/v1");
    assert_eq!(new["note"], "image pulled");
    assert_eq!(new["regarding"]["name"], "p1");
    assert_eq!(
        new["deprecatedSource"],
        json!({"component": "kubelet", "host": "node-1"})
    );
    assert_eq!(new["deprecatedCount"], 2);
    assert_eq!(new["deprecatedLastTimestamp"], "2025-01-01T00:01:00Z");
    assert!(new.get("message").is_none() && new.get("involvedObject").is_none());

    // Both versions list both, with the same tables and field selectors (on core's names).
    let names = c.kubectl(&["get", EVENTS_NEW, "-o", "name"]);
    assert!(
        names.contains("event.events.k8s.io/web-scaled")
            && names.contains("event.events.k8s.io/pod-pulled"),
        "{names}"
    );
    let table = c.kubectl(&["get", EVENTS_NEW]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert!(table.contains("pod/p1"), "{table}");
    for resource in ["events", EVENTS_NEW] {
        let selected = c.kubectl(&[
            "get",
            resource,
            "--field-selector",
            "involvedObject.kind=Pod,reason=Pulled",
            "-o",
            "name",
        ]);
        assert_eq!(selected.lines().count(), 1, "{resource}: {selected}");
        assert!(selected.trim().ends_with("/pod-pulled"), "{selected}");
    }
    let listed = c.kubectl(&["events"]);
    assert!(
        listed.contains("scaled web to 3") && listed.contains("image pulled"),
        "{listed}"
    );

    // events.k8s.io/v1 holds new events to kube's stricter rules: 422 with its causes.
    let mut bad = new_style.clone();
    bad["metadata"]["name"] = json!("bad");
    bad.as_object_mut().unwrap().remove("eventTime");
    let (code, body) = c.curl(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        "application/json",
        bad.to_string().as_bytes(),
    );
    let status = parse(&body);
    assert_eq!(
        (code, status["reason"].as_str()),
        (422, Some("Invalid")),
        "{body}"
    );
    assert_eq!(
        status["message"],
        r#"Event "bad" is invalid: eventTime: Required value"#
    );
    assert_eq!(status["details"]["causes"][0]["field"], "eventTime");
    // The same event is fine through core/v1, which keeps the legacy rules.
    let mut legacy = events_v1_to_core_manifest(&bad);
    legacy["metadata"]["name"] = json!("legacy");
    c.kubectl_stdin(&["create", "-f", "-"], Some(&legacy.to_string()));
    let err = c.kubectl_fails(
        &[
            "patch",
            EVENTS_NEW,
            "web-scaled",
            "--type=merge",
            "-p",
            r#"{"note":"rewritten"}"#,
        ],
        None,
    );
    assert!(
        err.contains(r#"message: Invalid value: "rewritten": field is immutable"#),
        "{err}"
    );
}

/// A core/v1 manifest with the fields of an events.k8s.io/v1 one (what the server's
/// conversion does, written out by hand for the test).
fn events_v1_to_core_manifest(new: &Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": new["metadata"],
        "involvedObject": new["regarding"],
        "reason": new["reason"], "message": new["note"], "type": new["type"],
    })
}

async fn client(c: &common::Cluster) -> Client {
    let kubeconfig = Kubeconfig::read_from(c.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// The next ADDED or MODIFIED object called `name` of a watch.
async fn next_object<K>(
    stream: &mut (impl futures_util::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
    name: &str,
) -> K
where
    K: Clone + std::fmt::Debug + kube::Resource,
{
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await {
                Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)))
                    if o.name_any() == name =>
                {
                    return o;
                }
                Some(Ok(_)) => continue,
                other => panic!("watch ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a watch event within 20s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_typed_apis_for_both_versions() {
    let Some(c) = common::start() else { return };
    let client = client(&c).await;

    // autoscaling/v1 HorizontalPodAutoscaler, k8s-openapi's type.
    let hpas: Api<autoscaling_v1::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), "default");
    let hpa: autoscaling_v1::HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                 "minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 55},
    }))
    .unwrap();
    let created = hpas.create(&PostParams::default(), &hpa).await.unwrap();
    let spec = created.spec.clone().unwrap();
    assert_eq!(spec.target_cpu_utilization_percentage, Some(55));
    assert_eq!(spec.min_replicas, Some(2));
    assert_eq!(created.status.as_ref().unwrap().current_replicas, 0);
    let fetched = hpas.get("api").await.unwrap();
    assert_eq!(fetched.resource_version(), created.resource_version());
    let listed = hpas.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0]
            .spec
            .as_ref()
            .unwrap()
            .target_cpu_utilization_percentage,
        Some(55)
    );
    let mut stream = hpas
        .watch(
            &WatchParams::default(),
            &created.resource_version().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    // Changed through v2, seen through v1.
    let v2: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), "default");
    let mut as_v2 = v2.get("api").await.unwrap();
    as_v2.spec.as_mut().unwrap().max_replicas = 9;
    v2.replace("api", &PostParams::default(), &as_v2)
        .await
        .unwrap();
    let seen = next_object(&mut stream, "api").await;
    assert_eq!(seen.spec.as_ref().unwrap().max_replicas, 9);
    assert_eq!(
        seen.spec
            .as_ref()
            .unwrap()
            .target_cpu_utilization_percentage,
        Some(55)
    );

    // events.k8s.io/v1 Event, k8s-openapi's type.
    let events: Api<events_v1::Event> = Api::namespaced(client.clone(), "default");
    let event: events_v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "api-scaled"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "example.com/scaler", "reportingInstance": "scaler-1",
        "action": "Scale", "reason": "Scaled", "type": "Normal", "note": "scaled api",
        "regarding": {"kind": "HorizontalPodAutoscaler", "name": "api", "namespace": "default"},
    }))
    .unwrap();
    let mut stream = events
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let created = events.create(&PostParams::default(), &event).await.unwrap();
    assert_eq!(created.note.as_deref(), Some("scaled api"));
    let seen = next_object(&mut stream, "api-scaled").await;
    assert_eq!(seen.name_any(), "api-scaled");
    assert_eq!(
        seen.regarding.as_ref().unwrap().name.as_deref(),
        Some("api")
    );
    let fetched = events.get("api-scaled").await.unwrap();
    assert_eq!(
        fetched.reporting_controller.as_deref(),
        Some("example.com/scaler")
    );
    let listed = events
        .list(&ListParams::default().fields("reason=Scaled"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    // And the core type reads the same object.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "default");
    let as_core = core.get("api-scaled").await.unwrap();
    assert_eq!(as_core.message.as_deref(), Some("scaled api"));
    assert_eq!(as_core.involved_object.name.as_deref(), Some("api"));
}
