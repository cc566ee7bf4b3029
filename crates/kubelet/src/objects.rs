//! The API objects a pod's environment and volumes refer to (ConfigMaps, Secrets, Services,
//! PersistentVolumeClaims and PersistentVolumes, service-account tokens), behind one trait so
//! the kubelet can read them from the API ([`ApiObjects`]; Services from a watch cache,
//! [`WatchedServices`], as kube's kubelet lists them from an informer for every container's
//! environment), and so tests can give them from memory ([`MemoryObjects`]).

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use rkube_controllers::Stop;
use rkube_controllers::informer::Informer;

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

/// [`ApiObjects`], except for Services, read from one watch of all of them: every
/// container start needs its namespace's Services for the environment, and a LIST each time
/// costs the API server more than the watch.
pub struct WatchedServices {
    api: ApiObjects,
    services: Informer<Service>,
}

/// How long a container start waits for the first LIST of Services before failing (it is
/// retried as any failed start).
const SERVICES_SYNC_WAIT: Duration = Duration::from_secs(10);

impl WatchedServices {
    /// Starts the watch; it runs until `stop`.
    pub fn start(client: Client, stop: Stop) -> Self {
        Self {
            services: Informer::start_with(
                Api::all(client.clone()),
                kube::runtime::watcher::Config::default(),
                stop,
            ),
            api: ApiObjects::new(client),
        }
    }

    async fn synced(&self) -> Result<(), ObjectError> {
        if self.services.has_synced() {
            return Ok(());
        }
        tokio::time::timeout(SERVICES_SYNC_WAIT, self.services.synced())
            .await
            .map_err(|_| ObjectError {
                // kube's words for the same wait.
                message: "services have not yet been read at least once, cannot construct envvars"
                    .to_owned(),
            })
    }
}

#[async_trait::async_trait]
impl ObjectSource for WatchedServices {
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMap>, ObjectError> {
        self.api.config_map(namespace, name).await
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ObjectError> {
        self.api.secret(namespace, name).await
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
