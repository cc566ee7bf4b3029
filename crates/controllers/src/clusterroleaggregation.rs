//! The ClusterRole aggregation controller (kube's `clusterrole-aggregation`): a ClusterRole
//! with an `aggregationRule` gets as its rules those of every other ClusterRole its
//! selectors match, in the order of their names, each rule once. So `admin`, `edit` and
//! `view` grow with the roles labelled `rbac.authorization.k8s.io/aggregate-to-*`, a CRD's
//! included.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, PostParams};

use crate::batchutil::selector_matches;
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

struct Controller {
    ctx: Context,
    roles: Informer<ClusterRole>,
}

pub fn start(ctx: &Context, options: &Options) {
    let roles = ctx.informer::<ClusterRole>();
    let queue = WorkQueue::default();
    let (q, informer) = (queue.clone(), roles.clone());
    // Any ClusterRole may be selected by any aggregating one: a change looks at them all.
    on_change(&roles, ctx.stop.clone(), move |_| {
        for role in informer.list() {
            if role.aggregation_rule.is_some() {
                q.add(role.metadata.name.clone().unwrap_or_default());
            }
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        roles,
    });
    run_workers(controller, queue, options.workers.min(2), ctx.stop.clone());
}

/// The rules `role` aggregates from `all`: those of the other roles its selectors match,
/// by name, without repeats.
pub fn aggregated_rules(role: &ClusterRole, all: &[Arc<ClusterRole>]) -> Vec<PolicyRule> {
    let Some(rule) = &role.aggregation_rule else {
        return Vec::new();
    };
    let selectors = rule.cluster_role_selectors.as_deref().unwrap_or_default();
    let unlabelled = BTreeMap::new();
    let mut sources: Vec<&ClusterRole> = all
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| r.metadata.name != role.metadata.name)
        .filter(|r| {
            let labels = r.metadata.labels.as_ref().unwrap_or(&unlabelled);
            selectors.iter().any(|s| selector_matches(s, labels))
        })
        .collect();
    sources.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for source in sources {
        for rule in source.rules.iter().flatten() {
            if !rules.contains(rule) {
                rules.push(rule.clone());
            }
        }
    }
    rules
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "clusterrole-aggregation"
    }

    async fn reconcile(&self, name: String) -> anyhow::Result<Next> {
        if !self.roles.has_synced() {
            return Ok(Next::After(std::time::Duration::from_millis(200)));
        }
        let Some(role) = self.roles.get(&name) else {
            return Ok(Next::Done);
        };
        let rules = aggregated_rules(&role, &self.roles.list());
        if role.rules.as_deref().unwrap_or_default() == rules.as_slice() {
            return Ok(Next::Done);
        }
        let mut updated = (*role).clone();
        updated.rules = Some(rules);
        let api: Api<ClusterRole> = Api::all(self.ctx.client.clone());
        match api.replace(&name, &PostParams::default(), &updated).await {
            // A stale copy: the informer's next event brings the role back here.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(Next::Done),
            other => other.map(|_| Next::Done).map_err(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    fn role(name: &str, label: Option<&str>, verbs: &[&str]) -> Arc<ClusterRole> {
        Arc::new(ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: label.map(|l| [(l.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            rules: Some(
                verbs
                    .iter()
                    .map(|v| PolicyRule {
                        verbs: vec![(*v).to_owned()],
                        api_groups: Some(vec![String::new()]),
                        resources: Some(vec!["pods".into()]),
                        ..PolicyRule::default()
                    })
                    .collect(),
            ),
            ..ClusterRole::default()
        })
    }

    #[test]
    fn an_aggregating_role_has_the_rules_of_the_roles_it_selects_once_each() {
        let mut view = (*role("view", None, &[])).clone();
        view.aggregation_rule = Some(AggregationRule {
            cluster_role_selectors: Some(vec![LabelSelector {
                match_labels: Some([("to-view".to_owned(), "true".to_owned())].into()),
                ..LabelSelector::default()
            }]),
        });
        let all = vec![
            role("b", Some("to-view"), &["list", "get"]),
            role("a", Some("to-view"), &["get"]),
            role("c", None, &["delete"]),
        ];
        let verbs: Vec<String> = aggregated_rules(&view, &all)
            .into_iter()
            .flat_map(|r| r.verbs)
            .collect();
        assert_eq!(verbs, ["get", "list"]);
    }
}
