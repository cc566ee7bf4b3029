//! rkube's API server: the Kubernetes v1.33 REST API over HTTPS.
//!
//! A request goes: TLS (client certificate, if any) -> [`auth`] (who is asking) ->
//! [`routes`] (which resource) -> [`objects`] (create, read, update, patch, delete, list,
//! watch on the store) -> a JSON answer or a `metav1.Status` ([`errors`]).

pub mod admission;
pub mod auth;
mod bootstrap;
mod cache;
mod crd;
mod deletion;
mod discovery;
pub mod errors;
mod http_util;
pub mod metrics;
mod node_proxy;
mod objects;
mod openapi;
pub mod pki;
mod rbac;
mod rbac_policy;
mod routes;
pub mod sa_token;
pub mod services;
mod spdy;
mod table;
mod time_util;
mod typed;
mod watch;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use rkube_api::registry::{Resource, builtin_resources};
use rkube_store::{Store, WatchHub};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the API server needs to start.
pub struct Config {
    /// Where certificates and kubeconfigs live.
    pub data_dir: PathBuf,
    /// The HTTPS port.
    pub https_port: u16,
    /// The listen address.
    pub bind_address: IpAddr,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Admission plugin settings.
    pub admission: admission::AdmissionConfig,
    /// The cluster's join token: for a new cluster, the token to use; for a server joining a
    /// cluster already in the store, the key to its bootstrap data.
    pub token: Option<String>,
    /// Service CIDR, node port range and the address advertised in `default/kubernetes`.
    pub service_network: services::ServiceNetworkConfig,
}

/// Shared state of every request.
pub(crate) struct State {
    pub store: Arc<dyn Store>,
    pub resources: std::sync::RwLock<Arc<Vec<Resource>>>,
    pub hubs: tokio::sync::Mutex<HashMap<String, Arc<WatchHub>>>,
    /// Recent watch events, decoded and written once for all their watchers.
    pub shared_events: Arc<watch::SharedEvents>,
    pub node_token: String,
    pub ready: AtomicBool,
    pub server_address: String,
    pub metrics: Arc<metrics::Metrics>,
    pub cacher: Arc<cache::Cacher>,
    pub signer: Arc<sa_token::TokenSigner>,
    pub admission: admission::AdmissionConfig,
    pub services: services::ServiceNetwork,
    /// How kubelets are reached for logs, exec, attach and port-forward.
    pub kubelet_tls: node_proxy::KubeletTls,
}

impl State {
    /// Every resource served now (built-in and custom).
    pub fn resources(&self) -> Arc<Vec<Resource>> {
        self.resources
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|_| Arc::new(builtin_resources()))
    }

    /// The resource served at group/version/plural.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        self.resources()
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// The resource `resource`'s objects are stored as (itself unless its version is
    /// converted to another for storage).
    pub fn storage_of(&self, resource: &Resource) -> Resource {
        if !resource.converts() {
            return resource.clone();
        }
        self.resource(
            &resource.storage_group,
            &resource.storage_version,
            &resource.plural,
        )
        .unwrap_or_else(|| resource.clone())
    }

    /// The watch hub of a resource, started on first use.
    pub async fn hub(&self, resource: &Resource) -> Result<Arc<WatchHub>, errors::ApiError> {
        let prefix = resource.storage_prefix();
        let mut hubs = self.hubs.lock().await;
        if let Some(hub) = hubs.get(&prefix) {
            return Ok(hub.clone());
        }
        let head = self.store.current_revision().await?;
        let hub = Arc::new(WatchHub::start(self.store.clone(), &prefix, head, 1024));
        hubs.insert(prefix, hub.clone());
        Ok(hub)
    }
}

/// A running API server.
pub struct ApiServer {
    /// The address it listens on.
    pub local_addr: SocketAddr,
    /// The admin kubeconfig.
    pub admin_kubeconfig: PathBuf,
    /// The address listed for this server in the `default/kubernetes` endpoints.
    pub advertise_address: IpAddr,
    task: tokio::task::JoinHandle<()>,
    state: Arc<State>,
    endpoints: Arc<tokio::sync::Mutex<services::kubernetes::Reconciler>>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiServer {
    /// Makes or loads the certificates, binds the port, creates the system namespaces and
    /// starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        bootstrap::restore(
            config.store.as_ref(),
            &config.data_dir,
            config.token.as_deref(),
        )
        .await?;
        let advertise_address = services::kubernetes::advertise_address(
            config.service_network.advertise_address,
            config.bind_address,
        );
        let kubernetes_ip = config.service_network.service_cidr.ip(0);
        let pki = pki::Pki::load_or_create(
            &config.data_dir,
            config.https_port,
            config.bind_address,
            &[IpAddr::V4(kubernetes_ip), advertise_address],
        )?;
        let addr = SocketAddr::new(config.bind_address, config.https_port);
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "port {} on {} is already in use: stop the other server or pass --https-port",
                    config.https_port,
                    config.bind_address
                )
            } else {
                anyhow::anyhow!("cannot listen on {addr}: {e}")
            }
        })?;
        let local_addr = listener.local_addr()?;
        let tls = Arc::new(auth::server_tls_config(&pki)?);
        let metrics = Arc::new(metrics::Metrics::default());
        let store: Arc<dyn Store> = Arc::new(metrics::InstrumentedStore {
            inner: config.store,
            metrics: metrics.clone(),
        });
        let shared_events = Arc::new(watch::SharedEvents::default());
        let cacher = cache::Cacher::start(store.clone(), shared_events.clone())
            .await
            .map_err(|e| anyhow::anyhow!("loading the watch cache: {e}"))?;
        let signer = Arc::new(sa_token::TokenSigner::load_or_create(&config.data_dir)?);
        bootstrap::upload(store.as_ref(), &config.data_dir)
            .await
            .map_err(|e| anyhow::anyhow!("storing the cluster's bootstrap data: {e:#}"))?;
        let kubelet_tls = node_proxy::KubeletTls::new(
            &pki.ca_pem,
            &pki.kubelet_client_pem,
            &pki.kubelet_client_key_pem,
        )?;
        let state = Arc::new(State {
            kubelet_tls,
            services: services::ServiceNetwork::new(store.clone(), config.service_network.clone()),
            admission: config.admission.clone(),
            signer,
            cacher,
            store,
            metrics,
            resources: std::sync::RwLock::new(Arc::new(builtin_resources())),
            hubs: tokio::sync::Mutex::new(HashMap::new()),
            shared_events,
            node_token: pki.node_token.clone(),
            ready: AtomicBool::new(false),
            server_address: local_addr.to_string(),
        });
        objects::ensure_system_namespaces(&state)
            .await
            .map_err(|e| anyhow::anyhow!("creating the system namespaces: {}", e.message))?;
        admission::ensure_system_priority_classes(&state)
            .await
            .map_err(|e| anyhow::anyhow!("creating the system priority classes: {}", e.message))?;
        rbac_policy::ensure(&state)
            .await
            .map_err(|e| anyhow::anyhow!("creating the default RBAC policy: {}", e.message))?;
        crd::load(&state)
            .await
            .map_err(|e| anyhow::anyhow!("loading CustomResourceDefinitions: {e}"))?;
        crd::spawn(Arc::downgrade(&state));
        // Rebuild the allocations from the Services before any is written.
        services::repair::start(&state)
            .await
            .map_err(|e| anyhow::anyhow!("repairing the service allocations: {e}"))?;
        let endpoints = Arc::new(tokio::sync::Mutex::new(
            services::kubernetes::Reconciler::new(&state, advertise_address, local_addr.port()),
        ));
        if let Err(err) = endpoints.lock().await.reconcile_once(&state).await {
            tracing::warn!(error = %err.message, "creating the kubernetes service");
        }
        services::kubernetes::Reconciler::spawn(endpoints.clone());
        state.ready.store(true, Ordering::Release);
        let task = tokio::spawn(accept_loop(listener, TlsAcceptor::from(tls), state.clone()));
        Ok(Self {
            local_addr,
            admin_kubeconfig: pki.admin_kubeconfig,
            advertise_address,
            task,
            state,
            endpoints,
        })
    }

    /// A door into this server for a component of its own process, acting as `user`
    /// (kube's loopback client): see [`LocalDoor`].
    pub fn local_door(&self, user: auth::User) -> LocalDoor {
        LocalDoor {
            state: self.state.clone(),
            user,
        }
    }

    /// A clean shutdown: this server's address leaves the `kubernetes` endpoints at once
    /// rather than when its lease expires.
    pub async fn shutdown(&self) {
        self.endpoints.lock().await.remove_own(&self.state).await;
    }
}

/// How the components of the server's own process (controller manager, scheduler, DNS,
/// its node) reach it: each request goes straight to the handler a connection's request
/// goes to, already authenticated as the component, with no TCP, TLS or HTTP framing
/// between them. The same JSON is written and read as over a connection.
#[derive(Clone)]
pub struct LocalDoor {
    state: Arc<State>,
    user: auth::User,
}

/// The body of an answer.
pub type ResponseBody = http_util::Body;

impl LocalDoor {
    /// Answers one request (its whole body read).
    pub fn call(
        &self,
        req: http::Request<bytes::Bytes>,
    ) -> impl std::future::Future<Output = http::Response<ResponseBody>> + Send + 'static {
        routes::answer(
            self.state.clone(),
            Some(self.user.clone()),
            req.map(routes::RequestBody::Local),
        )
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let cert_user = auth::user_from_connection(tls.get_ref().1);
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let cert_user = cert_user.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(routes::handle(state, cert_user, req).await)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(err) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %err, "connection ended");
            }
        });
    }
}
