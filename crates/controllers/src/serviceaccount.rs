//! The service account controller (a `default` ServiceAccount in every active namespace,
//! recreated if deleted) and the root CA publisher (the `kube-root-ca.crt` ConfigMap with the
//! cluster CA in every namespace, put back if changed or deleted).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::informer::{Informer, split_key};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
const ROOT_CA_DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Controller {
    ctx: Context,
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
    configmaps: Informer<ConfigMap>,
    root_ca: Option<String>,
}

pub fn start(ctx: &Context, options: &Options) {
    let namespaces = ctx.informer::<Namespace>();
    let accounts = ctx.informer::<ServiceAccount>();
    let configmaps = ctx.informer::<ConfigMap>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&namespaces, ctx.stop.clone(), move |change| {
        q.add(change.object().metadata.name.clone().unwrap_or_default());
    });
    let q = queue.clone();
    on_change(&accounts, ctx.stop.clone(), move |change| {
        let sa = change.object();
        if sa.metadata.name.as_deref() == Some("default") {
            q.add(sa.metadata.namespace.clone().unwrap_or_default());
        }
    });
    let q = queue.clone();
    on_change(&configmaps, ctx.stop.clone(), move |change| {
        let cm = change.object();
        if cm.metadata.name.as_deref() == Some(ROOT_CA_CONFIGMAP) {
            q.add(cm.metadata.namespace.clone().unwrap_or_default());
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        namespaces,
        accounts,
        configmaps,
        root_ca: options.root_ca_pem.clone(),
    });
    run_workers(controller, queue, options.workers.min(2), ctx.stop.clone());
}

fn ignore_exists(result: Result<(), kube::Error>) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(()),
        // Created meanwhile, or the namespace is going away: nothing to do.
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 403 || e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "serviceaccount"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        let (_, namespace) = split_key(&key);
        if !(self.namespaces.has_synced()
            && self.accounts.has_synced()
            && self.configmaps.has_synced())
        {
            return Ok(Next::After(std::time::Duration::from_millis(200)));
        }
        let Some(ns) = self.namespaces.get(namespace) else {
            return Ok(Next::Done);
        };
        if ns.metadata.deletion_timestamp.is_some() {
            return Ok(Next::Done);
        }
        if self.accounts.get_in(Some(namespace), "default").is_none() {
            let api: Api<ServiceAccount> = Api::namespaced(self.ctx.client.clone(), namespace);
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some("default".to_owned()),
                    namespace: Some(namespace.to_owned()),
                    ..ObjectMeta::default()
                },
                ..ServiceAccount::default()
            };
            ignore_exists(api.create(&PostParams::default(), &sa).await.map(drop))?;
        }
        if let Some(ca) = &self.root_ca {
            let want: BTreeMap<String, String> = [("ca.crt".to_owned(), ca.clone())].into();
            let api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), namespace);
            match self.configmaps.get_in(Some(namespace), ROOT_CA_CONFIGMAP) {
                None => {
                    let cm = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(ROOT_CA_CONFIGMAP.to_owned()),
                            namespace: Some(namespace.to_owned()),
                            annotations: Some(
                                [(
                                    "kubernetes.io/description".to_owned(),
                                    ROOT_CA_DESCRIPTION.to_owned(),
                                )]
                                .into(),
                            ),
                            ..ObjectMeta::default()
                        },
                        data: Some(want),
                        ..ConfigMap::default()
                    };
                    ignore_exists(api.create(&PostParams::default(), &cm).await.map(drop))?;
                }
                Some(cm) if cm.data.as_ref() != Some(&want) => {
                    let mut cm = (*cm).clone();
                    cm.data = Some(want);
                    cm.binary_data = None;
                    ignore_exists(
                        api.replace(ROOT_CA_CONFIGMAP, &PostParams::default(), &cm)
                            .await
                            .map(drop),
                    )?;
                }
                Some(_) => {}
            }
        }
        Ok(Next::Done)
    }
}
