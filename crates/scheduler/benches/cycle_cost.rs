//! The cost of scheduling cycles without any API: 5,000 nodes, 1,000 pods placed, then
//! pods in scheduler_perf's shapes. Prints one `name: value unit` line per figure:
//! `cargo bench -p rkube-scheduler --bench cycle_cost`.

#![allow(clippy::unwrap_used)] // a benchmark over fixed, valid inputs

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use rkube_scheduler::pod_info::PodInfo;
use rkube_scheduler::scheduler::{Action, CoreConfig, Input, Kind, Scheduler};
use serde_json::json;

fn node(i: usize) -> Node {
    let r = json!({"pods": "110", "cpu": "4", "memory": "32Gi"});
    serde_json::from_value(json!({
        "metadata": {"name": format!("node-{i:05}"), "labels": {
            "kubernetes.io/hostname": format!("node-{i:05}"),
            "topology.kubernetes.io/zone": format!("moon-{}", i % 3 + 1)}},
        "status": {"capacity": r, "allocatable": r},
    }))
    .unwrap()
}

fn pod(ns: &str, i: usize, shape: &str) -> Pod {
    let container = json!({"name": "pause", "image": "pause", "ports": [{"containerPort": 80}],
        "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}});
    let mut v = json!({"metadata": {"name": format!("p-{i}"), "namespace": ns, "uid": format!("{ns}-{i}")},
        "spec": {"containers": [container], "schedulerName": "default-scheduler"}});
    match shape {
        "anti" => {
            v["metadata"]["labels"] = json!({"color": "green"});
            v["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"color": "green"}},
                "topologyKey": "kubernetes.io/hostname", "namespaces": ["sched-1", "sched-0"]}]}});
        }
        "spread" => {
            v["metadata"]["labels"] = json!({"color": "blue"});
            v["spec"]["topologySpreadConstraints"] = json!([{"maxSkew": 5,
                "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"color": "blue"}}}]);
        }
        _ => {}
    }
    serde_json::from_value(v).unwrap()
}

fn drain(s: &mut Scheduler) -> usize {
    let mut bound = 0;
    while let Some(actions) = s.schedule_one(Instant::now()) {
        for a in actions {
            if let Action::Bind { pod, node } = a {
                s.handle(Input::Bound(pod.key.clone()), Instant::now());
                let mut p = (*pod.pod).clone();
                p.spec.as_mut().unwrap().node_name = Some(node);
                s.handle(
                    Input::Pod(Arc::new(PodInfo::new(Arc::new(p)))),
                    Instant::now(),
                );
                bound += 1;
            }
        }
    }
    bound
}

fn run(shape: &str, existing: usize, measured: usize) {
    let mut s = Scheduler::new(CoreConfig {
        scheduler_name: "default-scheduler".into(),
        percentage_of_nodes_to_score: None,
        parallelism: 2,
    });
    let now = Instant::now();
    for i in 0..5000 {
        s.handle(Input::Node(Box::new(node(i))), now);
    }
    s.handle(
        Input::Listed(
            Kind::Node,
            (0..5000).map(|i| format!("node-{i:05}")).collect(),
        ),
        now,
    );
    s.handle(Input::Listed(Kind::Pod, vec![]), now);
    for ns in ["sched-0", "sched-1"] {
        s.handle(
            Input::Namespace {
                name: ns.into(),
                labels: BTreeMap::new(),
            },
            now,
        );
    }
    s.handle(
        Input::Listed(Kind::Namespace, vec!["sched-0".into(), "sched-1".into()]),
        now,
    );
    let existing_shape = if shape == "anti" { "anti" } else { "basic" };
    for i in 0..existing {
        s.handle(
            Input::Pod(Arc::new(PodInfo::new(Arc::new(pod(
                "sched-0",
                i,
                existing_shape,
            ))))),
            now,
        );
    }
    assert_eq!(drain(&mut s), existing);
    for i in 0..measured {
        s.handle(
            Input::Pod(Arc::new(PodInfo::new(Arc::new(pod("sched-1", i, shape))))),
            now,
        );
    }
    let started = Instant::now();
    assert_eq!(drain(&mut s), measured);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "cycle_{shape}_per_pod: {:.0} us",
        secs * 1e6 / measured as f64
    );
    println!(
        "cycle_{shape}_throughput: {:.0} pods/s",
        measured as f64 / secs
    );
}

fn main() {
    run("basic", 1000, 10_000);
    run("anti", 1000, 1000);
    run("spread", 1000, 10_000);
}
