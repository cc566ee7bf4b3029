//! The CRI v1 client: `RuntimeService` and `ImageService` over the container runtime's unix
//! socket (the generated code is the `k8s-cri` crate's, from kubernetes/cri-api's
//! `api.proto`).
//!
//! [`CriClient`] is cheap to clone (one HTTP/2 connection, multiplexed) and is what the
//! containerd runtime, and the probes and streaming server that use `ExecSync`, `Exec`,
//! `Attach` and `PortForward`, call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
pub use k8s_cri::v1 as api;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

/// What a CRI call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("cannot connect to the container runtime at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    /// The runtime answered with an error status; `Display` is gRPC's
    /// `rpc error: code = ... desc = ...`, the text kube's kubelet shows in pod status.
    #[error("rpc error: code = {} desc = {}", code_name(.0.code()), .0.message())]
    Status(#[from] tonic::Status),
    #[error("the container runtime's answer lacks {0}")]
    Missing(&'static str),
}

impl CriError {
    /// The runtime says the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::Status(s) if s.code() == tonic::Code::NotFound)
    }
}

/// gRPC's names of status codes, as Go's `codes.Code.String()` prints them.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// How long a CRI call may take (kube's `--runtime-request-timeout`, 2 min); sandbox
/// operations get twice as long, pulls as long as they take, as in kube's remote runtime.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A request with a deadline.
fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

fn timed<T>(message: T) -> tonic::Request<T> {
    with_timeout(message, REQUEST_TIMEOUT)
}

/// A CRI v1 connection to one runtime.
#[derive(Clone)]
pub struct CriClient {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    socket: PathBuf,
}

impl CriClient {
    /// Connects to the runtime's unix socket (reconnecting by itself if the runtime restarts).
    pub async fn connect(socket: &Path) -> Result<Self, CriError> {
        let path = socket.to_owned();
        // The URI is required by tonic but unused: the connector below dials the socket.
        let channel =
            Endpoint::from_static("http://cri.invalid")
                .connect_timeout(Duration::from_secs(5))
                .connect_with_connector(tower::service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }))
                .await
                .map_err(|source| CriError::Connect {
                    path: socket.to_owned(),
                    source,
                })?;
        // Image pulls and big container configs can be large messages.
        let limit = 16 * 1024 * 1024;
        Ok(Self {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            images: ImageServiceClient::new(channel)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            socket: socket.to_owned(),
        })
    }

    /// The socket this client dials.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The generated `RuntimeService` client, for calls this wrapper does not name
    /// (`ExecSync`, `Exec`, `Attach`, `PortForward`, stats).
    pub fn runtime_service(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    /// The generated `ImageService` client.
    pub fn image_service(&self) -> ImageServiceClient<Channel> {
        self.images.clone()
    }

    pub async fn version(&self) -> Result<api::VersionResponse, CriError> {
        let request = api::VersionRequest {
            version: "v1".to_owned(),
        };
        Ok(self
            .runtime
            .clone()
            .version(timed(request))
            .await?
            .into_inner())
    }

    pub async fn status(&self) -> Result<api::RuntimeStatus, CriError> {
        let response = self
            .runtime
            .clone()
            .status(timed(api::StatusRequest { verbose: false }))
            .await?
            .into_inner();
        response.status.ok_or(CriError::Missing("status"))
    }

    /// Whether the runtime reports the condition (`RuntimeReady`, `NetworkReady`) true.
    pub async fn condition(&self, name: &str) -> Result<bool, CriError> {
        Ok(self
            .status()
            .await?
            .conditions
            .iter()
            .any(|c| c.r#type == name && c.status))
    }

    pub async fn update_pod_cidr(&self, cidr: &str) -> Result<(), CriError> {
        let request = api::UpdateRuntimeConfigRequest {
            runtime_config: Some(api::RuntimeConfig {
                network_config: Some(api::NetworkConfig {
                    pod_cidr: cidr.to_owned(),
                }),
            }),
        };
        self.runtime
            .clone()
            .update_runtime_config(timed(request))
            .await?;
        Ok(())
    }

    pub async fn run_pod_sandbox(&self, config: api::PodSandboxConfig) -> Result<String, CriError> {
        let request = api::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        Ok(self
            .runtime
            .clone()
            .run_pod_sandbox(with_timeout(request, 2 * REQUEST_TIMEOUT))
            .await?
            .into_inner()
            .pod_sandbox_id)
    }

    pub async fn pod_sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus, CriError> {
        let request = api::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: false,
        };
        self.runtime
            .clone()
            .pod_sandbox_status(timed(request))
            .await?
            .into_inner()
            .status
            .ok_or(CriError::Missing("status"))
    }

    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let request = api::StopPodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        self.runtime
            .clone()
            .stop_pod_sandbox(with_timeout(request, 2 * REQUEST_TIMEOUT))
            .await?;
        Ok(())
    }

    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let request = api::RemovePodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        };
        self.runtime
            .clone()
            .remove_pod_sandbox(with_timeout(request, 2 * REQUEST_TIMEOUT))
            .await?;
        Ok(())
    }

    /// Sandboxes whose labels include all of `labels`.
    pub async fn list_pod_sandboxes(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<api::PodSandbox>, CriError> {
        let request = api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter {
                label_selector: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ..Default::default()
            }),
        };
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox(timed(request))
            .await?
            .into_inner()
            .items)
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String, CriError> {
        let request = api::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.to_owned(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        Ok(self
            .runtime
            .clone()
            .create_container(timed(request))
            .await?
            .into_inner()
            .container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), CriError> {
        let request = api::StartContainerRequest {
            container_id: id.to_owned(),
        };
        self.runtime.clone().start_container(timed(request)).await?;
        Ok(())
    }

    pub async fn container_status(&self, id: &str) -> Result<api::ContainerStatus, CriError> {
        let request = api::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        };
        self.runtime
            .clone()
            .container_status(timed(request))
            .await?
            .into_inner()
            .status
            .ok_or(CriError::Missing("status"))
    }

    /// Stops a container: SIGTERM (or the image's stop signal), SIGKILL after `timeout`.
    pub async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), CriError> {
        let request = api::StopContainerRequest {
            container_id: id.to_owned(),
            timeout: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        };
        self.runtime
            .clone()
            .stop_container(with_timeout(request, timeout + REQUEST_TIMEOUT))
            .await?;
        Ok(())
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), CriError> {
        let request = api::RemoveContainerRequest {
            container_id: id.to_owned(),
        };
        self.runtime
            .clone()
            .remove_container(timed(request))
            .await?;
        Ok(())
    }

    /// Containers of a sandbox (all of them with `None`).
    pub async fn list_containers(
        &self,
        sandbox_id: Option<&str>,
    ) -> Result<Vec<api::Container>, CriError> {
        let request = api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                pod_sandbox_id: sandbox_id.unwrap_or_default().to_owned(),
                ..Default::default()
            }),
        };
        Ok(self
            .runtime
            .clone()
            .list_containers(timed(request))
            .await?
            .into_inner()
            .containers)
    }

    /// The image if the runtime has it.
    pub async fn image_status(&self, image: &str) -> Result<Option<api::Image>, CriError> {
        let request = api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: image.to_owned(),
                ..Default::default()
            }),
            verbose: false,
        };
        Ok(self
            .images
            .clone()
            .image_status(timed(request))
            .await?
            .into_inner()
            .image)
    }

    /// Pulls an image; returns its reference (the image id).
    pub async fn pull_image(
        &self,
        image: &str,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> Result<String, CriError> {
        let request = api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: image.to_owned(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config,
        };
        Ok(self
            .images
            .clone()
            .pull_image(request)
            .await?
            .into_inner()
            .image_ref)
    }

    pub async fn list_images(&self) -> Result<Vec<api::Image>, CriError> {
        Ok(self
            .images
            .clone()
            .list_images(timed(api::ListImagesRequest { filter: None }))
            .await?
            .into_inner()
            .images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_grpc_go_prints_them() {
        let err = CriError::from(tonic::Status::not_found("no such image"));
        assert_eq!(
            err.to_string(),
            "rpc error: code = NotFound desc = no such image"
        );
        assert!(err.is_not_found());
    }
}
