//! Label and node selectors, parsed once and matched many times: `metav1.LabelSelector`
//! (matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist) and `v1.NodeSelector`
//! terms (also Gt/Lt and matchFields on `metadata.name`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Anything with labels to match against.
pub trait LabelSource {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSource for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A node's labels, with shared strings so topology counts can keep values cheaply.
pub type NodeLabels = BTreeMap<Arc<str>, Arc<str>>;

impl LabelSource for NodeLabels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(|v| &**v)
    }
}

/// No labels at all.
pub struct NoLabels;

impl LabelSource for NoLabels {
    fn label(&self, _key: &str) -> Option<&str> {
        None
    }
}

/// Why a selector could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("{0:?} is not a valid label selector operator")]
    Operator(String),
    #[error("values: must be specified when `operator` is 'In' or 'NotIn'")]
    MissingValues,
    #[error("values: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")]
    UnexpectedValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &impl LabelSource) -> bool {
        let value = labels.label(&self.key);
        match self.op {
            Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
        }
    }
}

/// A parsed label selector (`metav1.LabelSelectorAsSelector`): a missing selector selects
/// nothing, an empty one everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Nothing,
    Requirements(Vec<Requirement>),
}

impl Selector {
    /// Everything.
    pub fn everything() -> Selector {
        Selector::Requirements(Vec::new())
    }

    /// From an API label selector.
    pub fn parse(selector: Option<&LabelSelector>) -> Result<Selector, SelectorError> {
        let Some(selector) = selector else {
            return Ok(Selector::Nothing);
        };
        let mut reqs = Vec::new();
        for (k, v) in selector.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
            });
        }
        for e in selector.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => return Err(SelectorError::Operator(other.to_owned())),
            };
            match op {
                Op::In | Op::NotIn if values.is_empty() => {
                    return Err(SelectorError::MissingValues);
                }
                Op::Exists | Op::DoesNotExist if !values.is_empty() => {
                    return Err(SelectorError::UnexpectedValues);
                }
                _ => {}
            }
            reqs.push(Requirement {
                key: e.key.clone(),
                op,
                values,
            });
        }
        Ok(Selector::Requirements(reqs))
    }

    /// Adds `key In (value)` (how matchLabelKeys narrow a selector).
    pub fn add_equals(&mut self, key: &str, value: &str) {
        if let Selector::Requirements(reqs) = self {
            reqs.push(Requirement {
                key: key.to_owned(),
                op: Op::In,
                values: vec![value.to_owned()],
            });
        }
    }

    pub fn matches(&self, labels: &impl LabelSource) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Requirements(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }

    /// kube's `Selector.Empty()`: true for the selector that selects everything.
    pub fn is_empty(&self) -> bool {
        matches!(self, Selector::Requirements(r) if r.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeOp {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeRequirement {
    key: String,
    op: NodeOp,
}

impl NodeRequirement {
    fn parse(r: &NodeSelectorRequirement) -> Option<NodeRequirement> {
        let values = r.values.clone().unwrap_or_default();
        let single_int = || -> Option<i64> {
            match values.as_slice() {
                [v] => v.parse().ok(),
                _ => None,
            }
        };
        let op = match r.operator.as_str() {
            "In" if !values.is_empty() => NodeOp::In(values.clone()),
            "NotIn" if !values.is_empty() => NodeOp::NotIn(values.clone()),
            "Exists" if values.is_empty() => NodeOp::Exists,
            "DoesNotExist" if values.is_empty() => NodeOp::DoesNotExist,
            "Gt" => NodeOp::Gt(single_int()?),
            "Lt" => NodeOp::Lt(single_int()?),
            _ => return None,
        };
        Some(NodeRequirement {
            key: r.key.clone(),
            op,
        })
    }

    fn matches_value(&self, value: Option<&str>) -> bool {
        match &self.op {
            NodeOp::In(vs) => value.is_some_and(|v| vs.iter().any(|x| x == v)),
            NodeOp::NotIn(vs) => value.is_none_or(|v| !vs.iter().any(|x| x == v)),
            NodeOp::Exists => value.is_some(),
            NodeOp::DoesNotExist => value.is_none(),
            NodeOp::Gt(n) => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            NodeOp::Lt(n) => value
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        }
    }
}

/// One node selector term: its expressions on labels and fields all hold. A term that
/// failed to parse, or an empty one, matches no node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTerm {
    labels: Vec<NodeRequirement>,
    fields: Vec<NodeRequirement>,
    valid: bool,
}

impl NodeTerm {
    pub fn parse(term: &NodeSelectorTerm) -> NodeTerm {
        let mut valid = true;
        let mut labels = Vec::new();
        for r in term.match_expressions.iter().flatten() {
            match NodeRequirement::parse(r) {
                Some(r) => labels.push(r),
                None => valid = false,
            }
        }
        let mut fields = Vec::new();
        for r in term.match_fields.iter().flatten() {
            match NodeRequirement::parse(r) {
                // Only metadata.name is a supported field, with In/NotIn.
                Some(req)
                    if req.key == "metadata.name"
                        && matches!(req.op, NodeOp::In(_) | NodeOp::NotIn(_)) =>
                {
                    fields.push(req)
                }
                _ => valid = false,
            }
        }
        if labels.is_empty() && fields.is_empty() {
            valid = false;
        }
        NodeTerm {
            labels,
            fields,
            valid,
        }
    }

    pub fn matches(&self, node_name: &str, labels: &impl LabelSource) -> bool {
        self.valid
            && self
                .labels
                .iter()
                .all(|r| r.matches_value(labels.label(&r.key)))
            && self.fields.iter().all(|r| r.matches_value(Some(node_name)))
    }
}

/// What a pod requires of a node: its `nodeSelector` and its required node affinity
/// (kube's `nodeaffinity.RequiredNodeAffinity`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequiredNodeAffinity {
    node_selector: Vec<(String, String)>,
    /// Terms are ORed; `None` when the pod has no required affinity.
    terms: Option<Vec<NodeTerm>>,
}

impl RequiredNodeAffinity {
    pub fn new(
        node_selector: Option<&BTreeMap<String, String>>,
        required: Option<&NodeSelector>,
    ) -> Self {
        RequiredNodeAffinity {
            node_selector: node_selector
                .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            terms: required.map(|r| r.node_selector_terms.iter().map(NodeTerm::parse).collect()),
        }
    }

    /// Whether the pod constrains nodes at all.
    pub fn is_empty(&self) -> bool {
        self.node_selector.is_empty() && self.terms.is_none()
    }

    pub fn matches(&self, node_name: &str, labels: &impl LabelSource) -> bool {
        if !self
            .node_selector
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
        {
            return false;
        }
        match &self.terms {
            None => true,
            Some(terms) => terms.iter().any(|t| t.matches(node_name, labels)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn label_selectors() {
        assert_eq!(Selector::parse(None), Ok(Selector::Nothing));
        let all = Selector::parse(Some(&LabelSelector::default())).unwrap();
        assert!(all.is_empty() && all.matches(&labels(&[])));
        let s = Selector::parse(Some(&LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_owned(), "web".to_owned())])),
            match_expressions: Some(vec![
                expr("tier", "NotIn", &["db"]),
                expr("env", "Exists", &[]),
                expr("legacy", "DoesNotExist", &[]),
            ]),
        }))
        .unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "x"), ("legacy", "1")])));
        assert_eq!(
            Selector::parse(Some(&LabelSelector {
                match_expressions: Some(vec![expr("a", "In", &[])]),
                ..Default::default()
            })),
            Err(SelectorError::MissingValues)
        );
    }

    fn node_req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn node_selector_terms() {
        let term = |exprs: Vec<NodeSelectorRequirement>, fields: Vec<NodeSelectorRequirement>| {
            NodeTerm::parse(&NodeSelectorTerm {
                match_expressions: Some(exprs),
                match_fields: Some(fields),
            })
        };
        let l = labels(&[("zone", "a"), ("cores", "8")]);
        assert!(term(vec![node_req("cores", "Gt", &["4"])], vec![]).matches("n1", &l));
        assert!(!term(vec![node_req("cores", "Lt", &["4"])], vec![]).matches("n1", &l));
        assert!(!term(vec![node_req("zone", "Gt", &["4"])], vec![]).matches("n1", &l));
        assert!(!term(vec![node_req("cores", "Gt", &["x"])], vec![]).matches("n1", &l));
        assert!(term(vec![node_req("zone", "In", &["a", "b"])], vec![]).matches("n1", &l));
        assert!(term(vec![node_req("gpu", "NotIn", &["x"])], vec![]).matches("n1", &l));
        assert!(term(vec![node_req("gpu", "DoesNotExist", &[])], vec![]).matches("n1", &l));
        assert!(term(vec![], vec![node_req("metadata.name", "In", &["n1"])]).matches("n1", &l));
        assert!(!term(vec![], vec![node_req("metadata.name", "In", &["n1"])]).matches("n2", &l));
        assert!(!term(vec![], vec![node_req("metadata.uid", "In", &["n1"])]).matches("n1", &l));
        assert!(
            !term(vec![], vec![]).matches("n1", &l),
            "an empty term matches nothing"
        );

        let required = RequiredNodeAffinity::new(
            Some(&BTreeMap::from([("zone".to_owned(), "a".to_owned())])),
            Some(&NodeSelector {
                node_selector_terms: vec![
                    NodeSelectorTerm {
                        match_expressions: Some(vec![node_req("zone", "In", &["z"])]),
                        match_fields: None,
                    },
                    NodeSelectorTerm {
                        match_expressions: Some(vec![node_req("cores", "Exists", &[])]),
                        match_fields: None,
                    },
                ],
            }),
        );
        assert!(required.matches("n1", &l), "terms are ORed, selector ANDed");
        assert!(!required.matches("n1", &labels(&[("cores", "8")])));
    }
}
