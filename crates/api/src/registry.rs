//! The built-in resources: group, version, kind, scope, short names, categories, verbs and
//! subresources, as kube-apiserver v1.33 serves them.

/// Verbs of an ordinary stored resource.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of a resource that is only ever created (reviews, bindings).
pub const CREATE_ONLY: &[&str] = &["create"];

/// How a subresource behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubresourceKind {
    /// `status`: get/update/patch change only `.status`.
    Status,
    /// `scale`: an autoscaling/v1 Scale view of `.spec.replicas`.
    Scale,
    /// A subresource served by a dedicated handler (binding, eviction, token, finalize, ...).
    Action,
    /// Proxied to the node (log, exec, attach, portforward).
    NodeProxy,
}

/// One subresource of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// Path segment: `status`, `scale`, ...
    pub name: &'static str,
    /// How the server treats it.
    pub kind: SubresourceKind,
    /// The kind it speaks, when not the parent's (`Scale`, `Binding`, `Eviction`, ...).
    pub speaks: Option<(&'static str, &'static str, &'static str)>,
    /// Verbs in discovery.
    pub verbs: &'static [&'static str],
}

const STATUS: Subresource = Subresource {
    name: "status",
    kind: SubresourceKind::Status,
    speaks: None,
    verbs: &["get", "patch", "update"],
};
/// A CertificateSigningRequest's approval conditions, written like its status.
const APPROVAL: Subresource = Subresource {
    name: "approval",
    kind: SubresourceKind::Status,
    speaks: None,
    verbs: &["get", "patch", "update"],
};
const SCALE: Subresource = Subresource {
    name: "scale",
    kind: SubresourceKind::Scale,
    speaks: Some(("autoscaling", "v1", "Scale")),
    verbs: &["get", "patch", "update"],
};

const fn action(
    name: &'static str,
    speaks: (&'static str, &'static str, &'static str),
) -> Subresource {
    Subresource {
        name,
        kind: SubresourceKind::Action,
        speaks: Some(speaks),
        verbs: CREATE_ONLY,
    }
}

const fn node_proxy(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        kind: SubresourceKind::NodeProxy,
        speaks: Some(("", "v1", kind)),
        verbs,
    }
}

/// A resource the server serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural, the path segment.
    pub plural: String,
    /// Singular, lowercase kind.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Categories (`all` makes `kubectl get all` include it).
    pub categories: Vec<String>,
    /// Verbs on the resource itself.
    pub verbs: Vec<String>,
    /// Subresources.
    pub subresources: Vec<Subresource>,
    /// Where the objects are kept: resources served in several versions share one place.
    pub storage_group: String,
    /// The version objects are stored in; requests in another version are converted
    /// (`crate::conversion`).
    pub storage_version: String,
    /// Whether objects are stored at all (reviews are not).
    pub stored: bool,
    /// For a custom resource: what its CustomResourceDefinition says.
    pub custom: Option<std::sync::Arc<CustomInfo>>,
}

/// The parts of a CustomResourceDefinition version the server acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomInfo {
    /// The CRD's name (`<plural>.<group>`).
    pub crd_name: String,
    /// The version's `openAPIV3Schema`.
    pub schema: Option<serde_json::Value>,
    /// `additionalPrinterColumns`.
    pub printer_columns: Vec<serde_json::Value>,
    /// `subresources.scale`: specReplicasPath, statusReplicasPath, labelSelectorPath.
    pub scale: Option<serde_json::Value>,
}

impl CustomInfo {
    /// The resources a CustomResourceDefinition serves: one per served version.
    pub fn resources_of(crd: &serde_json::Value) -> Vec<Resource> {
        let spec = &crd["spec"];
        let str_of = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        };
        let group = str_of(&spec["group"]);
        let names = &spec["names"];
        let plural = str_of(&names["plural"]);
        let kind = str_of(&names["kind"]);
        if group.is_empty() || plural.is_empty() || kind.is_empty() {
            return Vec::new();
        }
        let singular = match names["singular"].as_str() {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => kind.to_ascii_lowercase(),
        };
        spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["served"].as_bool().unwrap_or(false))
            .map(|v| {
                let mut subresources = Vec::new();
                if v["subresources"].get("status").is_some() {
                    subresources.push(STATUS);
                }
                let scale = v["subresources"].get("scale").cloned();
                if scale.is_some() {
                    subresources.push(SCALE);
                }
                Resource {
                    group: group.clone(),
                    version: str_of(&v["name"]),
                    kind: kind.clone(),
                    plural: plural.clone(),
                    singular: singular.clone(),
                    namespaced: spec["scope"].as_str() != Some("Cluster"),
                    short_names: strings(&names["shortNames"]),
                    categories: strings(&names["categories"]),
                    verbs: STANDARD_VERBS.iter().map(|s| (*s).to_owned()).collect(),
                    subresources,
                    storage_group: group.clone(),
                    storage_version: str_of(&v["name"]),
                    stored: true,
                    custom: Some(std::sync::Arc::new(CustomInfo {
                        crd_name: str_of(&crd["metadata"]["name"]),
                        schema: v["schema"].get("openAPIV3Schema").cloned(),
                        printer_columns: v["additionalPrinterColumns"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default(),
                        scale,
                    })),
                }
            })
            .collect()
    }
}

impl Resource {
    /// `apiVersion` as objects carry it: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        group_version(&self.group, &self.version)
    }

    /// Whether objects are stored in another group or version than the one served here.
    pub fn converts(&self) -> bool {
        self.group != self.storage_group || self.version != self.storage_version
    }

    /// The subresource named `name`.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the resource has a status subresource (so the main resource ignores status).
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// The store prefix of all objects of this resource: `/registry/<group>/<plural>/`.
    pub fn storage_prefix(&self) -> String {
        let group = if self.storage_group.is_empty() {
            "core"
        } else {
            &self.storage_group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The store key of one object.
    pub fn storage_key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.storage_prefix()),
            _ => format!("{}{name}", self.storage_prefix()),
        }
    }

    /// The store prefix of the objects in one namespace (or all of them).
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.storage_prefix()),
            _ => self.storage_prefix(),
        }
    }
}

/// `v1` for the core group, `GROUP/VERSION` otherwise.
pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    sub: &'static [Subresource],
    create_only: bool,
    /// Stored as this group and version instead of its own.
    stored_as: Option<(&'static str, &'static str)>,
}

const fn r(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short,
        all: false,
        sub: &[],
        create_only: false,
        stored_as: None,
    }
}

impl Builtin {
    const fn all(mut self) -> Self {
        self.all = true;
        self
    }
    const fn sub(mut self, sub: &'static [Subresource]) -> Self {
        self.sub = sub;
        self
    }
    const fn create_only(mut self) -> Self {
        self.create_only = true;
        self
    }
    const fn stored_as(mut self, group: &'static str, version: &'static str) -> Self {
        self.stored_as = Some((group, version));
        self
    }
}

const NS: bool = true;
const CLUSTER: bool = false;
const RBAC: &str = "rbac.authorization.k8s.io";
const NET: &str = "networking.k8s.io";

const BUILTINS: &[Builtin] = &[
    // core/v1
    r("", "v1", "Binding", "bindings", NS, &[]).create_only(),
    r("", "v1", "ConfigMap", "configmaps", NS, &["cm"]),
    r("", "v1", "Endpoints", "endpoints", NS, &["ep"]),
    r("", "v1", "Event", "events", NS, &["ev"]),
    r("", "v1", "LimitRange", "limitranges", NS, &["limits"]),
    r("", "v1", "Namespace", "namespaces", CLUSTER, &["ns"])
        .sub(&[action("finalize", ("", "v1", "Namespace")), STATUS]),
    r("", "v1", "Node", "nodes", CLUSTER, &["no"]).sub(&[
        node_proxy(
            "proxy",
            "NodeProxyOptions",
            &["create", "delete", "get", "patch", "update"],
        ),
        STATUS,
    ]),
    r(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        NS,
        &["pvc"],
    )
    .sub(&[STATUS]),
    r(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        CLUSTER,
        &["pv"],
    )
    .sub(&[STATUS]),
    r("", "v1", "Pod", "pods", NS, &["po"]).all().sub(&[
        node_proxy("attach", "PodAttachOptions", &["create", "get"]),
        action("binding", ("", "v1", "Binding")),
        action("eviction", ("policy", "v1", "Eviction")),
        node_proxy("exec", "PodExecOptions", &["create", "get"]),
        node_proxy("log", "Pod", &["get"]),
        node_proxy("portforward", "PodPortForwardOptions", &["create", "get"]),
        node_proxy(
            "proxy",
            "PodProxyOptions",
            &["create", "delete", "get", "patch", "update"],
        ),
        STATUS,
    ]),
    r("", "v1", "PodTemplate", "podtemplates", NS, &[]),
    r(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        NS,
        &["rc"],
    )
    .all()
    .sub(&[SCALE, STATUS]),
    r("", "v1", "ResourceQuota", "resourcequotas", NS, &["quota"]).sub(&[STATUS]),
    r("", "v1", "Secret", "secrets", NS, &[]),
    r("", "v1", "ServiceAccount", "serviceaccounts", NS, &["sa"]).sub(&[action(
        "token",
        ("authentication.k8s.io", "v1", "TokenRequest"),
    )]),
    r("", "v1", "Service", "services", NS, &["svc"])
        .all()
        .sub(&[
            node_proxy(
                "proxy",
                "ServiceProxyOptions",
                &["create", "delete", "get", "patch", "update"],
            ),
            STATUS,
        ]),
    // apps/v1
    r(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        NS,
        &[],
    ),
    r("apps", "v1", "DaemonSet", "daemonsets", NS, &["ds"])
        .all()
        .sub(&[STATUS]),
    r("apps", "v1", "Deployment", "deployments", NS, &["deploy"])
        .all()
        .sub(&[SCALE, STATUS]),
    r("apps", "v1", "ReplicaSet", "replicasets", NS, &["rs"])
        .all()
        .sub(&[SCALE, STATUS]),
    r("apps", "v1", "StatefulSet", "statefulsets", NS, &["sts"])
        .all()
        .sub(&[SCALE, STATUS]),
    // autoscaling
    r(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        NS,
        &["hpa"],
    )
    .all()
    .sub(&[STATUS]),
    // Served after v2, so v2 is the preferred version; stored as v2, as kube-apiserver does.
    r(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        NS,
        &["hpa"],
    )
    .all()
    .sub(&[STATUS])
    .stored_as("autoscaling", "v2"),
    // batch/v1
    r("batch", "v1", "CronJob", "cronjobs", NS, &["cj"])
        .all()
        .sub(&[STATUS]),
    r("batch", "v1", "Job", "jobs", NS, &[])
        .all()
        .sub(&[STATUS]),
    // networking.k8s.io/v1
    r(NET, "v1", "IngressClass", "ingressclasses", CLUSTER, &[]),
    r(NET, "v1", "Ingress", "ingresses", NS, &["ing"]).sub(&[STATUS]),
    r(
        NET,
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        NS,
        &["netpol"],
    ),
    // discovery, coordination, policy
    r(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        NS,
        &[],
    ),
    r("coordination.k8s.io", "v1", "Lease", "leases", NS, &[]),
    // events.k8s.io/v1: the core Events, seen through the newer API.
    r("events.k8s.io", "v1", "Event", "events", NS, &["ev"]).stored_as("", "v1"),
    r(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        NS,
        &["pdb"],
    )
    .sub(&[STATUS]),
    // rbac
    r(
        RBAC,
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        CLUSTER,
        &[],
    ),
    r(RBAC, "v1", "ClusterRole", "clusterroles", CLUSTER, &[]),
    r(RBAC, "v1", "RoleBinding", "rolebindings", NS, &[]),
    r(RBAC, "v1", "Role", "roles", NS, &[]),
    // certificates
    r(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        CLUSTER,
        &["csr"],
    )
    .sub(&[APPROVAL, STATUS]),
    // storage, scheduling
    r(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        CLUSTER,
        &["sc"],
    ),
    r(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        CLUSTER,
        &["pc"],
    ),
    // apiextensions
    r(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        CLUSTER,
        &["crd", "crds"],
    )
    .sub(&[STATUS]),
    // reviews: created, answered, never stored
    r(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        CLUSTER,
        &[],
    )
    .create_only(),
    r(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        CLUSTER,
        &[],
    )
    .create_only(),
    r(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        NS,
        &[],
    )
    .create_only(),
    r(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        CLUSTER,
        &[],
    )
    .create_only(),
    r(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        CLUSTER,
        &[],
    )
    .create_only(),
    r(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        CLUSTER,
        &[],
    )
    .create_only(),
];

impl Builtin {
    fn resource(&self) -> Resource {
        let strs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Resource {
            group: self.group.to_owned(),
            version: self.version.to_owned(),
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
            singular: self.kind.to_ascii_lowercase(),
            namespaced: self.namespaced,
            short_names: strs(self.short),
            categories: if self.all { vec!["all".into()] } else { vec![] },
            verbs: strs(if self.create_only {
                CREATE_ONLY
            } else {
                STANDARD_VERBS
            }),
            subresources: self.sub.to_vec(),
            storage_group: self.stored_as.map_or(self.group, |(g, _)| g).to_owned(),
            storage_version: self.stored_as.map_or(self.version, |(_, v)| v).to_owned(),
            stored: !self.create_only,
            custom: None,
        }
    }
}

/// The built-in resources, in discovery order.
pub fn builtin_resources() -> Vec<Resource> {
    BUILTINS.iter().map(Builtin::resource).collect()
}

/// The order groups appear in `/apis` (kube-apiserver lists the core group first, then
/// built-in groups by priority, then others alphabetically).
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_and_well_formed() {
        let all = builtin_resources();
        let mut seen = std::collections::HashSet::new();
        for r in &all {
            assert!(seen.insert((r.group.clone(), r.version.clone(), r.plural.clone())));
            assert_eq!(r.plural, r.plural.to_ascii_lowercase());
            assert!(
                GROUP_ORDER.contains(&r.group.as_str()),
                "{} not ordered",
                r.group
            );
        }
        let pods = all.iter().find(|r| r.plural == "pods").unwrap();
        assert_eq!(
            pods.storage_key(Some("default"), "web"),
            "/registry/core/pods/default/web"
        );
        assert!(pods.has_status());
        // Versions served over one storage share its keys.
        let hpa = |v: &str| {
            all.iter()
                .find(|r| r.group == "autoscaling" && r.version == v)
                .unwrap()
        };
        assert!(hpa("v1").converts() && !hpa("v2").converts());
        assert_eq!(
            hpa("v1").storage_key(Some("d"), "h"),
            hpa("v2").storage_key(Some("d"), "h")
        );
        let events = all.iter().find(|r| r.group == "events.k8s.io").unwrap();
        assert_eq!(events.storage_prefix(), "/registry/core/events/");
        assert!(events.converts());
        let ns = all.iter().find(|r| r.plural == "namespaces").unwrap();
        assert_eq!(
            ns.storage_key(Some("ignored"), "default"),
            "/registry/core/namespaces/default"
        );
    }
}
