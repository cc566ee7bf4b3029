//! The kubelet server's [`Streams`] on CRI: which container a request means comes from the
//! pod's status as this kubelet wrote it (kube's `validateContainerLogStatus`: the running
//! container, else the last terminated one; `previous` is `lastState.terminated`), the log
//! file from CRI `ContainerStatus`, and the streaming URLs from CRI `Exec`, `Attach` and
//! `PortForward`.

use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::Api;

use crate::cri::{CriClient, api};
use crate::cri_runtime::LABEL_POD_UID;
use crate::server::{LogSource, StreamError, StreamOptions, Streams};

/// [`Streams`] over a CRI runtime for one node.
pub struct CriStreams {
    cri: CriClient,
    client: kube::Client,
    node_name: String,
}

impl CriStreams {
    pub fn new(cri: CriClient, client: kube::Client, node_name: &str) -> Self {
        Self {
            cri,
            client,
            node_name: node_name.to_owned(),
        }
    }

    /// The pod, if it is bound to this node.
    async fn pod(&self, namespace: &str, name: &str) -> Result<Pod, StreamError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(pod))
                if pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                    == Some(self.node_name.as_str()) =>
            {
                Ok(pod)
            }
            Ok(_) => Err(StreamError::not_found(format!(
                "pod {name:?} does not exist"
            ))),
            Err(err) => Err(StreamError::internal(err.to_string())),
        }
    }

    async fn running_container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<String, StreamError> {
        let pod = self.pod(namespace, pod).await?;
        let status = container_status(&pod, container)?;
        status
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and(status.container_id.as_deref())
            .map(raw_id)
            .ok_or_else(|| StreamError::not_found(format!("container not found ({container:?})")))
    }
}

/// `containerd://ID` -> `ID`.
fn raw_id(id: &str) -> String {
    id.split_once("://").map_or(id, |(_, id)| id).to_owned()
}

fn container_status<'a>(pod: &'a Pod, container: &str) -> Result<&'a ContainerStatus, StreamError> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let in_spec = spec.is_some_and(|s| {
        s.containers.iter().any(|c| c.name == container)
            || s.init_containers
                .iter()
                .flatten()
                .any(|c| c.name == container)
    });
    if !in_spec {
        return Err(StreamError::not_found(format!(
            "container {container:?} not found in pod {name:?}"
        )));
    }
    let status = pod.status.as_ref();
    status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .chain(
            status
                .and_then(|s| s.init_container_statuses.as_ref())
                .into_iter()
                .flatten(),
        )
        .find(|s| s.name == container)
        .ok_or_else(|| {
            StreamError::bad_request(format!(
                "container {container:?} in pod {name:?} is waiting to start: ContainerCreating"
            ))
        })
}

/// The container whose logs are asked for, as kube's kubelet picks it.
pub fn log_container_id(pod: &Pod, container: &str, previous: bool) -> Result<String, StreamError> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = container_status(pod, container)?;
    let state = status.state.clone().unwrap_or_default();
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    let last_id = last
        .and_then(|t| t.container_id.clone())
        .filter(|id| !id.is_empty());
    let terminated = || {
        StreamError::bad_request(format!(
            "container {container:?} in pod {name:?} is terminated"
        ))
    };
    let id = if previous {
        last_id.ok_or_else(|| {
            StreamError::bad_request(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            ))
        })?
    } else if state.running.is_some() {
        status.container_id.clone().ok_or_else(terminated)?
    } else if let Some(t) = &state.terminated {
        match t.container_id.clone().filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => last_id.ok_or_else(terminated)?,
        }
    } else if last.is_some() {
        last_id.ok_or_else(terminated)?
    } else if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let why = match reason {
            "ErrImagePull" => "image can't be pulled".to_owned(),
            "ImagePullBackOff" => "trying and failing to pull image".to_owned(),
            other => other.to_owned(),
        };
        return Err(StreamError::bad_request(format!(
            "container {container:?} in pod {name:?} is waiting to start: {why}"
        )));
    } else {
        return Err(StreamError::bad_request(format!(
            "container {container:?} in pod {name:?} is waiting to start - no logs yet"
        )));
    };
    Ok(raw_id(&id))
}

fn cri_error(err: tonic::Status) -> StreamError {
    if err.code() == tonic::Code::NotFound {
        StreamError::not_found(err.message().to_owned())
    } else {
        StreamError::internal(crate::cri::CriError::from(err).to_string())
    }
}

#[async_trait::async_trait]
impl Streams for CriStreams {
    async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<LogSource, StreamError> {
        let object = self.pod(namespace, pod).await?;
        let id = log_container_id(&object, container, previous)?;
        let status = self.cri.container_status(&id).await.map_err(|err| {
            if err.is_not_found() {
                StreamError::not_found(format!("container {id:?} not found: {err}"))
            } else {
                StreamError::internal(err.to_string())
            }
        })?;
        if status.log_path.is_empty() {
            return Err(StreamError::not_found(format!(
                "container {container:?} in pod {pod:?} has no log"
            )));
        }
        let cri = self.cri.clone();
        Ok(LogSource {
            path: PathBuf::from(&status.log_path),
            running: Arc::new(move || {
                let cri = cri.clone();
                let id = id.clone();
                Box::pin(async move {
                    cri.container_status(&id)
                        .await
                        .is_ok_and(|s| s.state == api::ContainerState::ContainerRunning as i32)
                })
            }),
        })
    }

    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: Vec<String>,
        options: &StreamOptions,
    ) -> Result<String, StreamError> {
        let id = self.running_container(namespace, pod, container).await?;
        let request = api::ExecRequest {
            container_id: id,
            cmd: command,
            tty: options.tty,
            stdin: options.stdin,
            stdout: options.stdout,
            // A TTY joins stderr to stdout, as kube's kubelet asks.
            stderr: options.stderr && !options.tty,
        };
        let response = self
            .cri
            .runtime_service()
            .exec(request)
            .await
            .map_err(cri_error)?;
        Ok(response.into_inner().url)
    }

    async fn attach(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        options: &StreamOptions,
    ) -> Result<String, StreamError> {
        let id = self.running_container(namespace, pod, container).await?;
        let request = api::AttachRequest {
            container_id: id,
            stdin: options.stdin,
            tty: options.tty,
            stdout: options.stdout,
            stderr: options.stderr && !options.tty,
        };
        let response = self
            .cri
            .runtime_service()
            .attach(request)
            .await
            .map_err(cri_error)?;
        Ok(response.into_inner().url)
    }

    async fn port_forward(
        &self,
        namespace: &str,
        pod: &str,
        ports: Vec<i32>,
    ) -> Result<String, StreamError> {
        let object = self.pod(namespace, pod).await?;
        let uid = object.metadata.uid.clone().unwrap_or_default();
        let sandboxes = self
            .cri
            .list_pod_sandboxes(&[(LABEL_POD_UID, &uid)])
            .await
            .map_err(|err| StreamError::internal(err.to_string()))?;
        let sandbox = sandboxes
            .into_iter()
            .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
            .max_by_key(|s| s.created_at)
            .ok_or_else(|| StreamError::not_found(format!("pod {pod:?} has no running sandbox")))?;
        let request = api::PortForwardRequest {
            pod_sandbox_id: sandbox.id,
            port: ports,
        };
        let response = self
            .cri
            .runtime_service()
            .port_forward(request)
            .await
            .map_err(cri_error)?;
        Ok(response.into_inner().url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            "status": {"containerStatuses": [status]},
        }))
        .expect("a pod")
    }

    #[test]
    fn log_containers_are_picked_as_kubes_kubelet_does() {
        let running = pod(serde_json::json!({
            "name": "c", "ready": true, "restartCount": 1, "image": "i", "imageID": "",
            "containerID": "containerd://new",
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://old"}},
        }));
        assert_eq!(
            log_container_id(&running, "c", false).expect("current"),
            "new"
        );
        assert_eq!(
            log_container_id(&running, "c", true).expect("previous"),
            "old"
        );
        let backoff = pod(serde_json::json!({
            "name": "c", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://old"}},
        }));
        assert_eq!(log_container_id(&backoff, "c", false).expect("last"), "old");
        let fresh = pod(serde_json::json!({
            "name": "c", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }));
        let err = log_container_id(&fresh, "c", false).expect_err("waiting");
        assert_eq!(
            err.message,
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        let err = log_container_id(&fresh, "c", true).expect_err("no previous");
        assert_eq!(
            err.message,
            "previous terminated container \"c\" in pod \"p\" not found"
        );
        let err = log_container_id(&fresh, "x", false).expect_err("unknown");
        assert_eq!(err.status, http::StatusCode::NOT_FOUND);
    }
}
