//! The API objects a pod's environment and volumes refer to (ConfigMaps, Secrets, Services,
//! PersistentVolumeClaims and PersistentVolumes, service-account tokens), behind one trait so
//! the kubelet can read them from the API directly ([`ApiObjects`]) or from watch caches
//! later, as kube's kubelet does with its configMap/secret managers, and so tests can give
//! them from memory ([`MemoryObjects`]).

use std::sync::Mutex;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};

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
