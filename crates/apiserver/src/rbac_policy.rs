//! The default RBAC policy kube-apiserver bootstraps (kube's `bootstrappolicy`): the
//! ClusterRoles users bind (`cluster-admin`, `admin`, `edit`, `view`), the roles of the
//! system's components and the ClusterRoleBindings that give them to their users. Created at
//! start when missing and, like kube's, reconciled while annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"`: missing rules, subjects and labels
//! are added, anything added by an operator is kept.
//!
//! Where rkube differs from kube it says so here:
//! - rkube has no Node authorizer, so `system:node` is bound to the `system:nodes` group (as
//!   kube did before 1.8), and a node's agent also runs the service proxy and the ingress
//!   controller, so that group has `system:node-proxier` and `system:rkube-ingress` too.
//! - rkube's controller manager runs every controller under its own user (kube's
//!   `--use-service-account-credentials=false`), so `system:kube-controller-manager` holds
//!   what all of kube's `system:controller:*` roles hold together: every resource.
//! - The cluster DNS runs in the server as `system:kube-dns`, bound beside kube's
//!   `kube-system/kube-dns` service account.

use rkube_store::StoreError;
use serde_json::{Value, json};

use crate::State;
use crate::errors::ApiError;

const GROUP: &str = "rbac.authorization.k8s.io";
const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "resourceNames": names})
}

fn urls(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

/// kube's `eventsRule`.
fn events() -> Value {
    rule(
        &["create", "update", "patch"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

fn role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    let mut all = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for (k, v) in labels {
        all[*k] = json!(v);
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": all, "annotations": {AUTOUPDATE: "true"}},
        "rules": rules,
    })
}

fn aggregated(name: &str, labels: &[(&str, &str)], from: &str) -> Value {
    let mut role = role(name, labels, Vec::new());
    role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {from: "true"}}]});
    role
}

/// The ClusterRoleBinding of the ClusterRole `name`, of the same name, to `subjects`.
fn binding(name: &str, subjects: &[(&str, &str)]) -> Value {
    let subjects: Vec<Value> = subjects
        .iter()
        .map(|(kind, name)| match (*kind, name.split_once('/')) {
            ("ServiceAccount", Some((ns, sa))) => {
                json!({"kind": kind, "name": sa, "namespace": ns})
            }
            _ => json!({"kind": kind, "apiGroup": GROUP, "name": name}),
        })
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {AUTOUPDATE: "true"},
        },
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
        "subjects": subjects,
    })
}

const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// The default ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    vec![
        role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        role(
            "system:discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        role(
            "system:public-info-viewer",
            &[],
            vec![urls(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        role(
            "system:monitoring",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/metrics",
                    "/metrics/slis",
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/livez/*",
                    "/readyz/*",
                    "/healthz/*",
                ],
            )],
        ),
        aggregated("admin", &[], TO_ADMIN),
        aggregated("edit", &[(TO_ADMIN, "true")], TO_EDIT),
        aggregated("view", &[(TO_EDIT, "true")], TO_VIEW),
        role(
            "system:aggregate-to-admin",
            &[(TO_ADMIN, "true")],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                rule(READ_WRITE, &[GROUP], &["roles", "rolebindings"]),
            ],
        ),
        role(
            "system:aggregate-to-edit",
            &[(TO_EDIT, "true")],
            vec![
                rule(
                    READ,
                    &[""],
                    &[
                        "pods/attach",
                        "pods/proxy",
                        "pods/exec",
                        "pods/portforward",
                        "secrets",
                        "services/proxy",
                    ],
                ),
                rule(&["impersonate"], &[""], &["serviceaccounts"]),
                rule(
                    WRITE,
                    &[""],
                    &[
                        "pods",
                        "pods/attach",
                        "pods/proxy",
                        "pods/exec",
                        "pods/portforward",
                    ],
                ),
                rule(&["create"], &[""], &["pods/eviction"]),
                rule(
                    WRITE,
                    &[""],
                    &[
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                        "persistentvolumeclaims",
                        "configmaps",
                        "secrets",
                    ],
                ),
                rule(&["create"], &[""], &["serviceaccounts/token"]),
                rule(
                    WRITE,
                    &["apps"],
                    &[
                        "statefulsets",
                        "statefulsets/scale",
                        "daemonsets",
                        "deployments",
                        "deployments/scale",
                        "deployments/rollback",
                        "replicasets",
                        "replicasets/scale",
                    ],
                ),
                rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
                rule(WRITE, &["batch"], &["jobs", "cronjobs"]),
                rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
                rule(
                    WRITE,
                    &["networking.k8s.io"],
                    &["networkpolicies", "ingresses"],
                ),
            ],
        ),
        role(
            "system:aggregate-to-view",
            &[(TO_VIEW, "true")],
            vec![
                rule(
                    READ,
                    &[""],
                    &[
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "configmaps",
                    ],
                ),
                rule(
                    READ,
                    &[""],
                    &[
                        "limitranges",
                        "resourcequotas",
                        "bindings",
                        "events",
                        "pods/status",
                        "resourcequotas/status",
                        "namespaces/status",
                        "replicationcontrollers/status",
                        "pods/log",
                    ],
                ),
                rule(READ, &[""], &["namespaces"]),
                rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
                rule(
                    READ,
                    &["apps"],
                    &[
                        "controllerrevisions",
                        "statefulsets",
                        "statefulsets/status",
                        "statefulsets/scale",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/status",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/status",
                        "replicasets/scale",
                    ],
                ),
                rule(
                    READ,
                    &["autoscaling"],
                    &[
                        "horizontalpodautoscalers",
                        "horizontalpodautoscalers/status",
                    ],
                ),
                rule(
                    READ,
                    &["batch"],
                    &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
                ),
                rule(
                    READ,
                    &["policy"],
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                ),
                rule(
                    READ,
                    &["networking.k8s.io"],
                    &["networkpolicies", "ingresses", "ingresses/status"],
                ),
            ],
        ),
        role("system:node", &[], node_rules()),
        role(
            "system:node-proxier",
            &[],
            vec![
                rule(&["list", "watch"], &[""], &["services", "endpoints"]),
                rule(READ, &[""], &["nodes"]),
                events(),
                rule(
                    &["list", "watch"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
            ],
        ),
        role(
            "system:rkube-ingress",
            &[],
            vec![
                rule(
                    READ,
                    &["networking.k8s.io"],
                    &["ingresses", "ingressclasses"],
                ),
                // The controller makes its default IngressClass, `rkube`, where missing.
                rule(&["create"], &["networking.k8s.io"], &["ingressclasses"]),
                rule(
                    &["update", "patch"],
                    &["networking.k8s.io"],
                    &["ingresses/status"],
                ),
                rule(READ, &[""], &["services", "secrets", "endpoints"]),
                rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
                events(),
            ],
        ),
        role(
            "system:node-bootstrapper",
            &[],
            vec![rule(
                &["create", "get", "list", "watch"],
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
            )],
        ),
        role(
            "system:auth-delegator",
            &[],
            vec![
                rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ],
        ),
        role(
            "system:kubelet-api-admin",
            &[],
            vec![
                rule(READ, &[""], &["nodes"]),
                rule(&["proxy"], &[""], &["nodes"]),
                rule(
                    &["*"],
                    &[""],
                    &[
                        "nodes/proxy",
                        "nodes/metrics",
                        "nodes/spec",
                        "nodes/stats",
                        "nodes/log",
                    ],
                ),
            ],
        ),
        role(
            "system:kube-controller-manager",
            &[],
            vec![rule(&["*"], &["*"], &["*"])],
        ),
        role("system:kube-scheduler", &[], scheduler_rules()),
        role(
            "system:volume-scheduler",
            &[],
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &[""],
                    &["persistentvolumes"],
                ),
                rule(READ, &["storage.k8s.io"], &["storageclasses"]),
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &[""],
                    &["persistentvolumeclaims"],
                ),
            ],
        ),
        role(
            "system:kube-dns",
            &[],
            vec![
                rule(
                    &["list", "watch"],
                    &[""],
                    &["endpoints", "services", "pods", "namespaces"],
                ),
                rule(
                    &["list", "watch"],
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                ),
            ],
        ),
    ]
}

/// kube's `NodeRules`.
fn node_rules() -> Vec<Value> {
    vec![
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
        ),
        rule(READ, &[""], &["services"]),
        rule(&["create", "get", "list", "watch"], &[""], &["nodes"]),
        rule(&["update", "patch"], &[""], &["nodes/status"]),
        rule(&["update", "patch"], &[""], &["nodes"]),
        rule(&["create", "update", "patch"], &[""], &["events"]),
        rule(READ, &[""], &["pods"]),
        rule(&["create", "delete"], &[""], &["pods"]),
        rule(&["update", "patch"], &[""], &["pods/status"]),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(READ, &[""], &["secrets", "configmaps"]),
        rule(
            &["get"],
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["get"], &[""], &["endpoints"]),
        rule(
            &["create", "get", "list", "watch"],
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
        ),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &["coordination.k8s.io"],
            &["leases"],
        ),
        rule(&["get"], &["storage.k8s.io"], &["volumeattachments"]),
        rule(
            &["get", "update", "patch"],
            &[""],
            &["persistentvolumeclaims/status"],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(READ, &["storage.k8s.io"], &["csidrivers"]),
        rule(
            &["get", "create", "update", "patch", "delete"],
            &["storage.k8s.io"],
            &["csinodes"],
        ),
        rule(READ, &["node.k8s.io"], &["runtimeclasses"]),
    ]
}

/// kube's `system:kube-scheduler` rules.
fn scheduler_rules() -> Vec<Value> {
    vec![
        events(),
        rule(&["create"], &["coordination.k8s.io"], &["leases"]),
        named(
            &["get", "update"],
            &["coordination.k8s.io"],
            &["leases"],
            &["kube-scheduler"],
        ),
        rule(READ, &[""], &["nodes"]),
        rule(&["get", "list", "watch", "delete"], &[""], &["pods"]),
        rule(&["create"], &[""], &["pods/binding", "bindings"]),
        rule(&["patch", "update"], &[""], &["pods/status"]),
        rule(READ, &[""], &["services", "replicationcontrollers"]),
        rule(READ, &["apps", "extensions"], &["replicasets"]),
        rule(READ, &["apps"], &["statefulsets"]),
        rule(READ, &["policy"], &["poddisruptionbudgets"]),
        rule(
            READ,
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
        ),
        rule(READ, &["storage.k8s.io"], &["csinodes"]),
        rule(READ, &[""], &["namespaces"]),
        rule(READ, &["storage.k8s.io"], &["csidrivers"]),
        rule(READ, &["storage.k8s.io"], &["csistoragecapacities"]),
    ]
}

/// The default ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", &[("Group", "system:masters")]),
        binding("system:discovery", &[("Group", "system:authenticated")]),
        binding("system:basic-user", &[("Group", "system:authenticated")]),
        binding(
            "system:public-info-viewer",
            &[
                ("Group", "system:authenticated"),
                ("Group", "system:unauthenticated"),
            ],
        ),
        binding("system:monitoring", &[("Group", "system:monitoring")]),
        binding("system:node", &[("Group", "system:nodes")]),
        binding(
            "system:node-proxier",
            &[("User", "system:kube-proxy"), ("Group", "system:nodes")],
        ),
        binding("system:rkube-ingress", &[("Group", "system:nodes")]),
        binding(
            "system:kube-controller-manager",
            &[("User", "system:kube-controller-manager")],
        ),
        binding(
            "system:kube-scheduler",
            &[("User", "system:kube-scheduler")],
        ),
        binding(
            "system:volume-scheduler",
            &[("User", "system:kube-scheduler")],
        ),
        binding(
            "system:kube-dns",
            &[
                ("ServiceAccount", "kube-system/kube-dns"),
                ("User", "system:kube-dns"),
            ],
        ),
    ]
}

/// Creates the default policy's objects that are missing, and adds to those still
/// annotated for it what the defaults have and they lack.
pub(crate) async fn ensure(state: &State) -> Result<(), ApiError> {
    for (plural, objects) in [
        ("clusterroles", cluster_roles()),
        ("clusterrolebindings", cluster_role_bindings()),
    ] {
        let Some(resource) = state.resource(GROUP, "v1", plural) else {
            continue;
        };
        for mut object in objects {
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let key = resource.storage_key(None, &name);
            let Some(kv) = state.store.get(&key).await? else {
                crate::objects::prepare_new(&resource, &mut object);
                match state
                    .store
                    .create(&key, crate::objects::to_bytes(&object))
                    .await
                {
                    Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
                continue;
            };
            let Ok(mut current) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if current["metadata"]["annotations"][AUTOUPDATE] != "true" {
                continue;
            }
            if reconcile(&mut current, &object) {
                crate::objects::set_resource_version(&mut current, kv.mod_revision);
                if let Err(err) = crate::objects::update_internal_in(
                    state, GROUP, "v1", plural, None, &name, current,
                )
                .await
                {
                    // Another server reconciling at the same time wins; the next start
                    // tries again.
                    tracing::warn!(%name, error = %err.message, "reconciling the default RBAC policy");
                }
            }
        }
    }
    Ok(())
}

/// Adds to `current` the labels, rules and subjects of `default` it lacks (kube's
/// reconciliation with `autoupdate`); true when anything was added. Rules of a role that
/// aggregates are the aggregation controller's to fill.
fn reconcile(current: &mut Value, default: &Value) -> bool {
    let mut changed = false;
    if let Some(labels) = default["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            if current["metadata"]["labels"][k] != *v {
                if !current["metadata"]["labels"].is_object() {
                    current["metadata"]["labels"] = json!({});
                }
                current["metadata"]["labels"][k] = v.clone();
                changed = true;
            }
        }
    }
    let fields: &[&str] = if default["aggregationRule"].is_object() {
        &["subjects"]
    } else {
        &["rules", "subjects"]
    };
    for field in fields {
        let Some(wanted) = default[*field].as_array() else {
            continue;
        };
        if !current[*field].is_array() {
            current[*field] = json!([]);
        }
        for item in wanted {
            if let Some(have) = current[*field].as_array_mut()
                && !have.contains(item)
            {
                have.push(item.clone());
                changed = true;
            }
        }
    }
    if default["aggregationRule"].is_object() && current["aggregationRule"].is_null() {
        current["aggregationRule"] = default["aggregationRule"].clone();
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciling_adds_what_is_missing_and_keeps_the_rest() {
        let default = role("r", &[], vec![rule(&["get"], &[""], &["pods"])]);
        let mut current = role("r", &[], vec![rule(&["list"], &[""], &["secrets"])]);
        current["metadata"]["labels"] = json!({"team": "a"});
        assert!(reconcile(&mut current, &default));
        assert_eq!(current["rules"].as_array().map(Vec::len), Some(2));
        assert_eq!(current["metadata"]["labels"]["team"], "a");
        assert_eq!(
            current["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
        assert!(!reconcile(&mut current, &default));
    }

    #[test]
    fn every_default_binding_names_a_default_role() {
        let roles: Vec<Value> = cluster_roles();
        for b in cluster_role_bindings() {
            let name = &b["roleRef"]["name"];
            assert!(
                roles.iter().any(|r| r["metadata"]["name"] == *name),
                "{name}"
            );
        }
    }
}
