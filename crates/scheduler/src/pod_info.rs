//! A pod as the scheduler sees it (kube's `framework.PodInfo`): the object plus everything
//! the plugins need from it, parsed once when the pod arrives from the watch (requests,
//! host ports, tolerations, node and pod affinity terms, spread constraints).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};
use k8s_openapi::chrono::{DateTime, Utc};

use crate::labels::{LabelSource, NodeTerm, RequiredNodeAffinity, Selector, SelectorError};
use crate::resource::{Resource, pod_requests};
use crate::taints::Toleration;

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// A pod's identity in the scheduler: `namespace/name`.
pub type PodKey = String;

/// `namespace/name`.
pub fn pod_key(namespace: &str, name: &str) -> PodKey {
    format!("{namespace}/{name}")
}

/// A host port a pod's container takes (`v1.ContainerPort` with `hostPort > 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// `0.0.0.0` when unset.
    pub ip: String,
    /// `TCP` when unset.
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Whether two host ports collide: same protocol and port, and the same address or
    /// either one on every address (`HostPortInfo.CheckConflict`).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A pod (anti-)affinity term (kube's `framework.AffinityTerm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityTerm {
    /// The namespaces named by the term, or the pod's own when it names none and has no
    /// namespace selector.
    pub namespaces: Vec<String>,
    pub namespace_selector: Selector,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn parse(pod_namespace: &str, term: &PodAffinityTerm) -> Result<AffinityTerm, SelectorError> {
        let named = term.namespaces.clone().unwrap_or_default();
        let namespaces = if named.is_empty() && term.namespace_selector.is_none() {
            vec![pod_namespace.to_owned()]
        } else {
            named
        };
        Ok(AffinityTerm {
            namespaces,
            namespace_selector: Selector::parse(term.namespace_selector.as_ref())?,
            selector: Selector::parse(term.label_selector.as_ref())?,
            topology_key: term.topology_key.clone(),
        })
    }

    /// Whether `pod` (whose namespace has the labels `ns_labels`) matches the term.
    pub fn matches(&self, pod: &PodInfo, ns_labels: &impl LabelSource) -> bool {
        (self.namespaces.contains(&pod.namespace) || self.namespace_selector.matches(ns_labels))
            && self.selector.matches(pod.labels())
    }

    /// Whether the term may match pods of other namespaces by their namespace's labels.
    pub fn uses_namespace_selector(&self) -> bool {
        !matches!(self.namespace_selector, Selector::Nothing)
    }
}

/// A preferred (anti-)affinity term with its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i64,
}

/// A topology spread constraint, with kube's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpreadConstraint {
    pub max_skew: i64,
    pub topology_key: String,
    /// `whenUnsatisfiable: DoNotSchedule` (else ScheduleAnyway).
    pub hard: bool,
    /// The label selector narrowed by `matchLabelKeys`.
    pub selector: Selector,
    pub min_domains: i64,
    /// `nodeAffinityPolicy: Honor` (the default).
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (the default is Ignore).
    pub honor_node_taints: bool,
}

/// Everything the scheduler reads from one pod.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: PodKey,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.priority` (0 when unset, as `corev1helpers.PodPriority`).
    pub priority: i32,
    /// `preemptionPolicy: Never`.
    pub preempt_never: bool,
    /// `spec.nodeName`, when set.
    pub node_name: Option<String>,
    pub scheduler_name: String,
    /// Has a deletionTimestamp.
    pub terminating: bool,
    /// Phase Succeeded or Failed.
    pub terminal: bool,
    /// Has scheduling gates.
    pub gated: bool,
    pub nominated_node: Option<String>,
    /// Deleted by a scheduler's preemption (a DisruptionTarget condition with reason
    /// PreemptionByScheduler).
    pub preempted_by_scheduler: bool,
    /// Requests for fitting (kube's `PodRequests`).
    pub requests: Resource,
    /// Requests for scoring, absent cpu/memory requests defaulted.
    pub non_zero_requests: Resource,
    pub host_ports: Vec<HostPort>,
    pub tolerations: Vec<Toleration>,
    pub required_node_affinity: RequiredNodeAffinity,
    pub preferred_node_affinity: Vec<(i64, NodeTerm)>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    pub spread_constraints: Vec<SpreadConstraint>,
    pub start_time: Option<DateTime<Utc>>,
    pub creation: Option<DateTime<Utc>>,
    /// A selector in the spec that cannot be parsed: the pod cannot be scheduled.
    pub parse_error: Option<String>,
}

impl PodInfo {
    /// Parses a pod.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let mut parse_error = None;
        let mut record = |e: SelectorError| {
            if parse_error.is_none() {
                parse_error = Some(e.to_string());
            }
        };

        let mut host_ports = Vec::new();
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        for c in sidecars.chain(spec.containers.iter()) {
            for p in c.ports.iter().flatten() {
                if p.host_port.unwrap_or(0) > 0 {
                    host_ports.push(HostPort {
                        ip: p
                            .host_ip
                            .clone()
                            .filter(|ip| !ip.is_empty())
                            .unwrap_or_else(|| "0.0.0.0".to_owned()),
                        protocol: p
                            .protocol
                            .clone()
                            .filter(|p| !p.is_empty())
                            .unwrap_or_else(|| "TCP".to_owned()),
                        port: p.host_port.unwrap_or(0),
                    });
                }
            }
        }

        let affinity = spec.affinity.as_ref();
        let node_affinity = affinity.and_then(|a| a.node_affinity.as_ref());
        let required_node_affinity = RequiredNodeAffinity::new(
            spec.node_selector.as_ref(),
            node_affinity.and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        );
        let preferred_node_affinity = node_affinity
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|terms| {
                terms
                    .iter()
                    .filter(|t| t.weight != 0)
                    .map(|t| (i64::from(t.weight), NodeTerm::parse(&t.preference)))
                    .collect()
            })
            .unwrap_or_default();

        let mut terms = |list: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            list.into_iter()
                .flatten()
                .filter_map(|t| AffinityTerm::parse(&namespace, t).map_err(&mut record).ok())
                .collect()
        };
        let pod_affinity = affinity.and_then(|a| a.pod_affinity.as_ref());
        let pod_anti_affinity = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required_affinity = terms(pod_affinity.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let required_anti_affinity = terms(pod_anti_affinity.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let mut weighted =
            |list: Option<&Vec<WeightedPodAffinityTerm>>| -> Vec<WeightedAffinityTerm> {
                list.into_iter()
                    .flatten()
                    .filter_map(|t| {
                        AffinityTerm::parse(&namespace, &t.pod_affinity_term)
                            .map_err(&mut record)
                            .ok()
                            .map(|term| WeightedAffinityTerm {
                                term,
                                weight: i64::from(t.weight),
                            })
                    })
                    .collect()
            };
        let preferred_affinity = weighted(pod_affinity.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let preferred_anti_affinity = weighted(pod_anti_affinity.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));

        let labels = meta.labels.as_ref().unwrap_or(&NO_LABELS);
        let mut spread_constraints = Vec::new();
        for c in spec.topology_spread_constraints.iter().flatten() {
            let mut selector = match Selector::parse(c.label_selector.as_ref()) {
                Ok(s) => s,
                Err(e) => {
                    record(e);
                    continue;
                }
            };
            for key in c.match_label_keys.iter().flatten() {
                if let Some(value) = labels.get(key) {
                    selector.add_equals(key, value);
                }
            }
            spread_constraints.push(SpreadConstraint {
                max_skew: i64::from(c.max_skew),
                topology_key: c.topology_key.clone(),
                hard: c.when_unsatisfiable == "DoNotSchedule",
                selector,
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
                honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            });
        }

        let preempted_by_scheduler = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| {
                c.type_ == "DisruptionTarget"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("PreemptionByScheduler")
            });
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");

        PodInfo {
            key: pod_key(&namespace, &name),
            uid: meta.uid.clone().unwrap_or_default(),
            priority: spec.priority.unwrap_or(0),
            preempt_never: spec.preemption_policy.as_deref() == Some("Never"),
            node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
            scheduler_name: spec
                .scheduler_name
                .clone()
                .unwrap_or_else(|| "default-scheduler".to_owned()),
            terminating: meta.deletion_timestamp.is_some(),
            terminal: matches!(phase, "Succeeded" | "Failed"),
            gated: spec
                .scheduling_gates
                .as_ref()
                .is_some_and(|g| !g.is_empty()),
            nominated_node: status
                .and_then(|s| s.nominated_node_name.clone())
                .filter(|n| !n.is_empty()),
            preempted_by_scheduler,
            requests: pod_requests(&spec, false),
            non_zero_requests: pod_requests(&spec, true),
            host_ports,
            tolerations: spec
                .tolerations
                .iter()
                .flatten()
                .map(Toleration::from_api)
                .collect(),
            required_node_affinity,
            preferred_node_affinity,
            required_affinity,
            required_anti_affinity,
            preferred_affinity,
            preferred_anti_affinity,
            spread_constraints,
            start_time: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
            creation: meta.creation_timestamp.as_ref().map(|t| t.0),
            parse_error,
            namespace,
            name,
            pod,
        }
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
    }

    /// Whether it has any pod affinity or anti-affinity (kube's `PodsWithAffinity`).
    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    /// Whether it has required anti-affinity (kube's `PodsWithRequiredAntiAffinity`).
    pub fn has_required_anti_affinity(&self) -> bool {
        !self.required_anti_affinity.is_empty()
    }

    /// A copy bound to a node, as the scheduler assumes it before the binding persists.
    /// (The object itself is shared, unchanged: only `node_name` says where it went.)
    pub fn assumed_on(&self, node: &str) -> PodInfo {
        let mut info = self.clone();
        info.node_name = Some(node.to_owned());
        info
    }
}

#[cfg(test)]
pub(crate) mod test_pods {
    //! Builders for pods in tests.

    use super::*;
    use k8s_openapi::api::core::v1::{
        Affinity, Container, ContainerPort, NodeAffinity, NodeSelector, NodeSelectorRequirement,
        NodeSelectorTerm, PodAntiAffinity, PodSpec, ResourceRequirements, TopologySpreadConstraint,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    /// A pod builder.
    #[derive(Clone)]
    pub struct P(pub Pod);

    pub fn pod(name: &str) -> P {
        P(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ..Default::default()
                }],
                scheduler_name: Some("default-scheduler".into()),
                ..Default::default()
            }),
            status: None,
        })
    }

    impl P {
        fn spec(&mut self) -> &mut PodSpec {
            self.0.spec.get_or_insert_with(Default::default)
        }

        pub fn ns(mut self, ns: &str) -> P {
            self.0.metadata.namespace = Some(ns.into());
            self
        }

        pub fn req(mut self, cpu: &str, mem: &str) -> P {
            let mut list = BTreeMap::new();
            if !cpu.is_empty() {
                list.insert("cpu".to_owned(), Quantity(cpu.into()));
            }
            if !mem.is_empty() {
                list.insert("memory".to_owned(), Quantity(mem.into()));
            }
            self.spec().containers[0].resources = Some(ResourceRequirements {
                requests: Some(list),
                ..Default::default()
            });
            self
        }

        pub fn label(mut self, k: &str, v: &str) -> P {
            self.0
                .metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(k.into(), v.into());
            self
        }

        pub fn priority(mut self, p: i32) -> P {
            self.spec().priority = Some(p);
            self
        }

        pub fn node(mut self, n: &str) -> P {
            self.spec().node_name = Some(n.into());
            self
        }

        pub fn host_port(mut self, port: i32) -> P {
            self.spec().containers[0]
                .ports
                .get_or_insert_with(Default::default)
                .push(ContainerPort {
                    container_port: port,
                    host_port: Some(port),
                    ..Default::default()
                });
            self
        }

        pub fn toleration(mut self, key: &str, op: &str, value: &str, effect: &str) -> P {
            self.spec()
                .tolerations
                .get_or_insert_with(Default::default)
                .push(k8s_openapi::api::core::v1::Toleration {
                    key: Some(key.into()),
                    operator: Some(op.into()),
                    value: (!value.is_empty()).then(|| value.into()),
                    effect: (!effect.is_empty()).then(|| effect.into()),
                    toleration_seconds: None,
                });
            self
        }

        pub fn node_selector(mut self, k: &str, v: &str) -> P {
            self.spec()
                .node_selector
                .get_or_insert_with(Default::default)
                .insert(k.into(), v.into());
            self
        }

        fn node_affinity(&mut self) -> &mut NodeAffinity {
            self.spec()
                .affinity
                .get_or_insert_with(Affinity::default)
                .node_affinity
                .get_or_insert_with(Default::default)
        }

        pub fn require_node(mut self, key: &str, op: &str, values: &[&str]) -> P {
            let term = NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: key.into(),
                    operator: op.into(),
                    values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
                }]),
                match_fields: None,
            };
            self.node_affinity()
                .required_during_scheduling_ignored_during_execution
                .get_or_insert_with(|| NodeSelector {
                    node_selector_terms: vec![],
                })
                .node_selector_terms
                .push(term);
            self
        }

        pub fn prefer_node(mut self, weight: i32, key: &str, op: &str, values: &[&str]) -> P {
            self.node_affinity()
                .preferred_during_scheduling_ignored_during_execution
                .get_or_insert_with(Default::default)
                .push(k8s_openapi::api::core::v1::PreferredSchedulingTerm {
                    weight,
                    preference: NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: key.into(),
                            operator: op.into(),
                            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
                        }]),
                        match_fields: None,
                    },
                });
            self
        }

        fn term(key: &str, value: &str, topology: &str) -> PodAffinityTerm {
            PodAffinityTerm {
                label_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
                    match_expressions: None,
                }),
                topology_key: topology.into(),
                ..Default::default()
            }
        }

        pub fn anti_affinity(mut self, key: &str, value: &str, topology: &str) -> P {
            self.spec()
                .affinity
                .get_or_insert_with(Affinity::default)
                .pod_anti_affinity
                .get_or_insert_with(PodAntiAffinity::default)
                .required_during_scheduling_ignored_during_execution
                .get_or_insert_with(Default::default)
                .push(Self::term(key, value, topology));
            self
        }

        pub fn affinity(mut self, key: &str, value: &str, topology: &str) -> P {
            self.spec()
                .affinity
                .get_or_insert_with(Affinity::default)
                .pod_affinity
                .get_or_insert_with(Default::default)
                .required_during_scheduling_ignored_during_execution
                .get_or_insert_with(Default::default)
                .push(Self::term(key, value, topology));
            self
        }

        pub fn preferred_affinity(
            mut self,
            anti: bool,
            weight: i32,
            key: &str,
            value: &str,
            topology: &str,
        ) -> P {
            let a = self.spec().affinity.get_or_insert_with(Affinity::default);
            let list = if anti {
                a.pod_anti_affinity
                    .get_or_insert_with(Default::default)
                    .preferred_during_scheduling_ignored_during_execution
                    .get_or_insert_with(Default::default)
            } else {
                a.pod_affinity
                    .get_or_insert_with(Default::default)
                    .preferred_during_scheduling_ignored_during_execution
                    .get_or_insert_with(Default::default)
            };
            list.push(WeightedPodAffinityTerm {
                weight,
                pod_affinity_term: Self::term(key, value, topology),
            });
            self
        }

        pub fn spread(
            mut self,
            max_skew: i32,
            topology: &str,
            hard: bool,
            key: &str,
            value: &str,
        ) -> P {
            self.spec()
                .topology_spread_constraints
                .get_or_insert_with(Default::default)
                .push(TopologySpreadConstraint {
                    max_skew,
                    topology_key: topology.into(),
                    when_unsatisfiable: if hard {
                        "DoNotSchedule"
                    } else {
                        "ScheduleAnyway"
                    }
                    .into(),
                    label_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
                        match_expressions: None,
                    }),
                    ..Default::default()
                });
            self
        }

        pub fn min_domains(mut self, n: i32) -> P {
            if let Some(c) = self
                .spec()
                .topology_spread_constraints
                .as_mut()
                .and_then(|c| c.last_mut())
            {
                c.min_domains = Some(n);
            }
            self
        }

        pub fn info(self) -> Arc<PodInfo> {
            Arc::new(PodInfo::new(Arc::new(self.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_pods::pod;

    #[test]
    fn parses_what_the_plugins_need() {
        let p = pod("p")
            .req("500m", "1Gi")
            .priority(10)
            .host_port(8080)
            .label("app", "web")
            .anti_affinity("app", "web", "kubernetes.io/hostname")
            .spread(1, "zone", true, "app", "web")
            .info();
        assert_eq!(p.key, "default/p");
        assert_eq!(p.priority, 10);
        assert_eq!(p.requests.milli_cpu, 500);
        assert_eq!(p.requests.memory, 1 << 30);
        assert_eq!(p.host_ports.len(), 1);
        assert_eq!(p.host_ports[0].ip, "0.0.0.0");
        assert_eq!(p.host_ports[0].protocol, "TCP");
        assert_eq!(p.required_anti_affinity[0].namespaces, vec!["default"]);
        assert!(p.has_required_anti_affinity() && p.has_affinity());
        assert!(p.spread_constraints[0].hard);
        assert_eq!(p.spread_constraints[0].min_domains, 1);
        assert!(p.spread_constraints[0].honor_node_affinity);
        assert!(!p.spread_constraints[0].honor_node_taints);
        let bound = p.assumed_on("n1");
        assert_eq!(bound.node_name.as_deref(), Some("n1"));
    }
}
