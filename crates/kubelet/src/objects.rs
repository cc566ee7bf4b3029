//! The API objects a pod's environment and volumes refer to (ConfigMaps, Secrets, Services,
//! PersistentVolumeClaims and PersistentVolumes, service-account tokens), behind one trait so
//! the kubelet can read them from the API ([`ApiObjects`]; Services, ConfigMaps and Secrets
//! from watches, [`WatchedObjects`], as kube's kubelet reads them), and so tests can give
//! them from memory ([`MemoryObjects`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use rkube_controllers::informer::Informer;
use rkube_controllers::{Stop, StopHandle};

/// Reading an object failed for a reason other than its absence (which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ObjectError {
    pub message: String,
}

impl From<kube::Error> for ObjectError {
    fn from(e: kube::Error) -> Self {
        // The API's own message (`configmaps "x" is forbidden: ...`) when it answered.
        let message = match &e {
            kube::Error::Api(status) => status.message.clone(),
            other => other.to_string(),
        };
        ObjectError { message }
    }
}

/// Where the kubelet gets the objects a pod refers to. Absent objects are `Ok(None)`.
#[async_trait::async_trait]
pub trait ObjectSource: Send + Sync {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ObjectError>;
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ObjectError>;
    /// Every Service of a namespace.
    async fn services(&self, namespace: &str) -> Result<Vec<Service>, ObjectError>;
    async fn service(&self, namespace: &str, name: &str) -> Result<Option<Service>, ObjectError>;
    async fn persistent_volume_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PersistentVolumeClaim>, ObjectError>;
    async fn persistent_volume(&self, name: &str) -> Result<Option<PersistentVolume>, ObjectError>;
    /// `serviceaccounts/NAME/token`: a token for the account, as the API answers it.
    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, ObjectError>;
}

/// Reads every object from the API server with a GET (or LIST for services).
#[derive(Clone)]
pub struct ApiObjects {
    client: Client,
}

impl ApiObjects {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn absent_on_404<T>(r: Result<T, kube::Error>) -> Result<Option<T>, ObjectError> {
    match r {
        Ok(o) => Ok(Some(o)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait::async_trait]
impl ObjectSource for ApiObjects {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ObjectError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        absent_on_404(api.get(name).await)
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ObjectError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        absent_on_404(api.get(name).await)
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>, ObjectError> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.list(&ListParams::default()).await?.items)
    }

    async fn service(&self, namespace: &str, name: &str) -> Result<Option<Service>, ObjectError> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), namespace);
        absent_on_404(api.get(name).await)
    }

    async fn persistent_volume_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PersistentVolumeClaim>, ObjectError> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        absent_on_404(api.get(name).await)
    }

    async fn persistent_volume(&self, name: &str) -> Result<Option<PersistentVolume>, ObjectError> {
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        absent_on_404(api.get(name).await)
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, ObjectError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        Ok(api
            .create_token_request(service_account, &PostParams::default(), request)
            .await?)
    }
}

/// [`ApiObjects`], except for what a pod's start reads from watches, as kube's kubelet
/// does: Services from one watch of all of them (every container start needs its
/// namespace's Services for the environment, and a LIST each time costs the API server more
/// than the watch), and each ConfigMap and Secret a pod refers to from a watch of that one
/// object ([`WatchedEach`]).
pub struct WatchedObjects {
    api: ApiObjects,
    services: Informer<Service>,
    config_maps: WatchedEach<ConfigMap>,
    secrets: WatchedEach<Secret>,
}

/// How long a read waits for the first LIST of a watch before failing (the pod's volume or
/// container start is retried as any failed one).
const SYNC_WAIT: Duration = Duration::from_secs(10);

/// At most this many objects of a kind are watched at once; past that, reads are GETs. A
/// real node's watches share one HTTP/2 connection, whose 200 streams they must not take up
/// (client-go opens another connection when one is full; hyper's client waits for a free
/// stream).
const MOST_WATCHED: usize = 64;

/// A watch nobody read for this long is stopped (kube's watch-based manager stops a
/// reflector idle for five resync periods), and started again by the next read.
const IDLE: Duration = Duration::from_secs(300);

impl WatchedObjects {
    /// Starts the watch of Services; it and the watches started later run until `stop`.
    pub fn start(client: Client, stop: Stop) -> Self {
        Self {
            services: Informer::start_with(
                Api::all(client.clone()),
                kube::runtime::watcher::Config::default(),
                stop.clone(),
            ),
            config_maps: WatchedEach::new(client.clone(), "configmap", stop.clone()),
            secrets: WatchedEach::new(client.clone(), "secret", stop),
            api: ApiObjects::new(client),
        }
    }

    async fn synced(&self) -> Result<(), ObjectError> {
        if self.services.has_synced() {
            return Ok(());
        }
        tokio::time::timeout(SYNC_WAIT, self.services.synced())
            .await
            .map_err(|_| ObjectError {
                // kube's words for the same wait.
                message: "services have not yet been read at least once, cannot construct envvars"
                    .to_owned(),
            })
    }
}

/// Objects of one kind read each from a watch of its own (`metadata.name=NAME` in its
/// namespace), started on the first read: kube's kubelet's watch-based manager (its default
/// `configMapAndSecretChangeDetectionStrategy: Watch`). The pods that refer to an object
/// read it from memory, however many they are, and a change reaches their volumes at their
/// next sync without a GET.
struct WatchedEach<K> {
    client: Client,
    /// `configmap` or `secret`, for kube's error text.
    kind: &'static str,
    watches: Arc<Mutex<Watches<K>>>,
}

/// The watches of a kind, by namespace and name.
type Watches<K> = HashMap<(String, String), Watch<K>>;

struct Watch<K> {
    informer: Informer<K>,
    last_read: Instant,
    /// Stops the watch when dropped.
    _stop: StopHandle,
}

impl<K> WatchedEach<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    fn new(client: Client, kind: &'static str, stop: Stop) -> Self {
        let watches: Arc<Mutex<Watches<K>>> = Arc::default();
        // Idle watches are stopped every tenth of the idle time; the agent's stop ends them
        // all.
        let held = Arc::downgrade(&watches);
        tokio::spawn(async move {
            loop {
                let stopped = tokio::select! {
                    () = stop.stopped() => true,
                    () = tokio::time::sleep(IDLE / 10) => false,
                };
                let Some(watches) = held.upgrade() else {
                    return;
                };
                let mut watches = watches.lock().unwrap_or_else(|e| e.into_inner());
                if stopped {
                    watches.clear();
                    return;
                }
                let now = Instant::now();
                watches.retain(|_, watch| now.duration_since(watch.last_read) < IDLE);
            }
        });
        Self {
            client,
            kind,
            watches,
        }
    }

    /// The object from its watch, started now if need be; `None` when the kind has as many
    /// watches as it may, and the caller reads the object itself.
    async fn get(&self, namespace: &str, name: &str) -> Option<Result<Option<K>, ObjectError>> {
        let informer = {
            let now = Instant::now();
            let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
            let key = (namespace.to_owned(), name.to_owned());
            if watches.len() >= MOST_WATCHED && !watches.contains_key(&key) {
                return None;
            }
            let watch = watches.entry(key).or_insert_with(|| {
                let (handle, stop) = Stop::new();
                Watch {
                    informer: Informer::start_with(
                        Api::namespaced(self.client.clone(), namespace),
                        kube::runtime::watcher::Config::default()
                            .fields(&format!("metadata.name={name}")),
                        stop,
                    ),
                    last_read: now,
                    _stop: handle,
                }
            });
            watch.last_read = now;
            watch.informer.clone()
        };
        if !informer.has_synced()
            && tokio::time::timeout(SYNC_WAIT, informer.synced())
                .await
                .is_err()
        {
            return Some(Err(ObjectError {
                // kube's words for the same wait.
                message: format!(
                    "failed to sync {} cache: timed out waiting for the condition",
                    self.kind
                ),
            }));
        }
        Some(Ok(informer
            .get_in(Some(namespace), name)
            .map(|o| K::clone(&o))))
    }
}

#[async_trait::async_trait]
impl ObjectSource for WatchedObjects {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ObjectError> {
        match self.config_maps.get(namespace, name).await {
            Some(read) => read,
            None => self.api.config_map(namespace, name).await,
        }
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ObjectError> {
        match self.secrets.get(namespace, name).await {
            Some(read) => read,
            None => self.api.secret(namespace, name).await,
        }
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>, ObjectError> {
        self.synced().await?;
        Ok(self
            .services
            .list_in(namespace)
            .iter()
            .map(|s| Service::clone(s))
            .collect())
    }

    async fn service(&self, namespace: &str, name: &str) -> Result<Option<Service>, ObjectError> {
        self.synced().await?;
        Ok(self
            .services
            .get_in(Some(namespace), name)
            .map(|s| Service::clone(&s)))
    }

    async fn persistent_volume_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PersistentVolumeClaim>, ObjectError> {
        self.api.persistent_volume_claim(namespace, name).await
    }

    async fn persistent_volume(&self, name: &str) -> Result<Option<PersistentVolume>, ObjectError> {
        self.api.persistent_volume(name).await
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, ObjectError> {
        self.api
            .service_account_token(namespace, service_account, request)
            .await
    }
}

/// Objects held in memory, for tests and for pods that never reach the API. Tokens are
/// `token-N` strings that expire after the requested lifetime.
#[derive(Default)]
pub struct MemoryObjects {
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<Secret>,
    pub services: Vec<Service>,
    pub claims: Vec<PersistentVolumeClaim>,
    pub volumes: Vec<PersistentVolume>,
    /// The token requests received, in order.
    pub token_requests: Mutex<Vec<TokenRequest>>,
}

fn find<T: kube::Resource + Clone>(items: &[T], namespace: &str, name: &str) -> Option<T> {
    items
        .iter()
        .find(|o| o.namespace().as_deref().unwrap_or("") == namespace && o.name_any() == name)
        .cloned()
}

#[async_trait::async_trait]
impl ObjectSource for MemoryObjects {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ObjectError> {
        Ok(find(&self.config_maps, namespace, name))
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ObjectError> {
        Ok(find(&self.secrets, namespace, name))
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>, ObjectError> {
        Ok(self
            .services
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace))
            .cloned()
            .collect())
    }

    async fn service(&self, namespace: &str, name: &str) -> Result<Option<Service>, ObjectError> {
        Ok(find(&self.services, namespace, name))
    }

    async fn persistent_volume_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PersistentVolumeClaim>, ObjectError> {
        Ok(find(&self.claims, namespace, name))
    }

    async fn persistent_volume(&self, name: &str) -> Result<Option<PersistentVolume>, ObjectError> {
        Ok(find(&self.volumes, "", name))
    }

    async fn service_account_token(
        &self,
        _namespace: &str,
        _service_account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, ObjectError> {
        let mut requests = self.token_requests.lock().map_err(|_| ObjectError {
            message: "token request log poisoned".to_owned(),
        })?;
        requests.push(request.clone());
        let lifetime = request.spec.expiration_seconds.unwrap_or(3600);
        let mut answer = request.clone();
        answer.status = Some(k8s_openapi::api::authentication::v1::TokenRequestStatus {
            token: format!("token-{}", requests.len()),
            expiration_timestamp: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::chrono::Utc::now() + k8s_openapi::chrono::Duration::seconds(lifetime),
            ),
        });
        Ok(answer)
    }
}
