//! Container lifecycle hooks (kube's `pkg/kubelet/lifecycle` handler runner): `postStart`
//! runs right after a container starts, `preStop` before it is sent SIGTERM, each an exec in
//! the container, an HTTP GET against the pod, or a sleep. A `tcpSocket` handler is
//! deprecated and does nothing, as in kube.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};

use crate::prober::{self, Target};

/// kube's minimum grace period left for the container's own shutdown after its preStop
/// hook (`minimumGracePeriodInSeconds`).
pub const MIN_GRACE: Duration = Duration::from_secs(2);

/// Runs one hook within `timeout`; `Err` is kube's message for the failed hook event.
pub async fn run(
    target: &Target,
    handler: &LifecycleHandler,
    container: &Container,
    pod: &str,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(sleep) = &handler.sleep {
        let seconds = u64::try_from(sleep.seconds).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(seconds).min(timeout)).await;
        return Ok(());
    }
    // An exec or an HTTP GET is what a probe does, with the hook's time instead of the
    // probe's timeout.
    let as_probe = Probe {
        exec: handler.exec.clone(),
        http_get: handler.http_get.clone(),
        timeout_seconds: Some(i32::try_from(timeout.as_secs().max(1)).unwrap_or(i32::MAX)),
        ..Probe::default()
    };
    if as_probe.exec.is_none() && as_probe.http_get.is_none() {
        return Ok(());
    }
    prober::run_once(target, &as_probe, container)
        .await
        .map_err(|output| match &handler.exec {
            Some(exec) => format!(
                "Exec lifecycle hook ({:?}) for Container {:?} in Pod {pod:?} failed - error: {output}",
                exec.command.clone().unwrap_or_default(),
                container.name
            ),
            None => format!(
                "HTTP lifecycle hook ({}) for Container {:?} in Pod {pod:?} failed - error: {output}",
                handler
                    .http_get
                    .as_ref()
                    .and_then(|h| h.path.clone())
                    .unwrap_or_default(),
                container.name
            ),
        })
}

/// What is left of the grace period for SIGTERM after a preStop hook took `spent` (kube
/// gives at least two seconds).
pub fn remaining_grace(grace: Duration, spent: Duration) -> Duration {
    grace.saturating_sub(spent).max(MIN_GRACE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{SleepAction, TCPSocketAction};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn target() -> Target {
        Target {
            runtime: std::sync::Arc::new(crate::SimulatedRuntime::new(Duration::ZERO)),
            container_id: "none".into(),
            pod_ip: None,
        }
    }

    #[test]
    fn the_grace_left_after_a_hook_is_at_least_two_seconds() {
        let s = Duration::from_secs;
        assert_eq!(remaining_grace(s(30), s(10)), s(20));
        assert_eq!(remaining_grace(s(5), s(4)), s(2));
        assert_eq!(remaining_grace(s(5), s(60)), s(2));
    }

    #[tokio::test]
    async fn sleep_hooks_sleep_and_tcp_hooks_do_nothing() {
        let container = Container::default();
        let sleep = LifecycleHandler {
            sleep: Some(SleepAction { seconds: 1 }),
            ..LifecycleHandler::default()
        };
        let started = std::time::Instant::now();
        run(&target(), &sleep, &container, "p", Duration::from_secs(5))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
        let tcp = LifecycleHandler {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(1),
                host: None,
            }),
            ..LifecycleHandler::default()
        };
        assert!(
            run(&target(), &tcp, &container, "p", Duration::from_secs(1))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_failed_exec_hook_says_which_container_and_pod() {
        let container = Container {
            name: "app".into(),
            ..Container::default()
        };
        let exec = LifecycleHandler {
            exec: Some(k8s_openapi::api::core::v1::ExecAction {
                command: Some(vec!["false".into()]),
            }),
            ..LifecycleHandler::default()
        };
        let err = run(&target(), &exec, &container, "web", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            err.starts_with(
                "Exec lifecycle hook ([\"false\"]) for Container \"app\" in Pod \"web\" failed"
            ),
            "{err}"
        );
    }
}
