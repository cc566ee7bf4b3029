//! Probes run for real (kube's prober): exec through the runtime (CRI `ExecSync`), tcpSocket
//! and httpGet (plain HTTP) against the pod's address. One task per running container runs its
//! startup probe until it passes, then its liveness and readiness probes, each on its own
//! period and thresholds, and tells the pod worker what changed.
//!
//! Not yet: httpGet over HTTPS and grpc probes (they fail with a message saying so).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::runtime::Runtime;

/// What a container's prober tells its worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    /// The startup probe passed (or there is none): liveness and readiness begin.
    Started,
    /// The readiness probe's verdict changed.
    Ready(bool),
    /// The startup or liveness probe failed its threshold: the container is restarted.
    Unhealthy { probe: &'static str, output: String },
    /// A failed probe, for the `Unhealthy` event (not yet over its threshold).
    Failed { probe: &'static str, output: String },
}

/// Where probes of a container go.
#[derive(Clone)]
pub struct Target {
    pub runtime: Arc<dyn Runtime>,
    pub container_id: String,
    pub pod_ip: Option<IpAddr>,
}

/// One probe's outcome: `Err(output)` when it failed.
pub async fn run_once(target: &Target, probe: &Probe, container: &Container) -> Result<(), String> {
    let timeout =
        Duration::from_secs(u64::try_from(probe.timeout_seconds.unwrap_or(1).max(1)).unwrap_or(1));
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        return match target
            .runtime
            .exec_sync(&target.container_id, &command, timeout)
            .await
        {
            Ok((0, _)) => Ok(()),
            Ok((code, output)) => Err(if output.is_empty() {
                format!("command {command:?} exited with {code}")
            } else {
                output
            }),
            Err(err) => Err(err.to_string()),
        };
    }
    let host = |given: Option<&String>| -> Result<IpAddr, String> {
        match given.filter(|h| !h.is_empty()) {
            Some(h) => h.parse().map_err(|_| format!("invalid host {h:?}")),
            None => target.pod_ip.ok_or_else(|| "the pod has no IP".to_owned()),
        }
    };
    if let Some(tcp) = &probe.tcp_socket {
        let port = resolve_port(&tcp.port, container)?;
        let ip = host(tcp.host.as_ref())?;
        return match tokio::time::timeout(timeout, TcpStream::connect((ip, port))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(format!("dial tcp {ip}:{port}: connect: {err}")),
            Err(_) => Err(format!("dial tcp {ip}:{port}: i/o timeout")),
        };
    }
    if let Some(http) = &probe.http_get {
        let port = resolve_port(&http.port, container)?;
        let ip = host(http.host.as_ref())?;
        return match tokio::time::timeout(timeout, http_get(ip, port, http)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "Get \"http://{ip}:{port}{}\": context deadline exceeded",
                http.path.as_deref().unwrap_or("/")
            )),
        };
    }
    if probe.grpc.is_some() {
        return Err("grpc probes are not supported by this kubelet yet".to_owned());
    }
    Ok(())
}

/// A probe's port: a number, or the name of one of the container's ports.
fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .or_else(|| name.parse().ok())
            .ok_or_else(|| format!("unknown port {name:?}"))?,
    };
    u16::try_from(number).map_err(|_| format!("invalid port {number}"))
}

/// kube's HTTP probe: a GET, success for 200 <= status < 400.
async fn http_get(ip: IpAddr, port: u16, action: &HTTPGetAction) -> Result<(), String> {
    if action.scheme.as_deref() == Some("HTTPS") {
        return Err("HTTPS probes are not supported by this kubelet yet".to_owned());
    }
    let path = action.path.clone().unwrap_or_else(|| "/".to_owned());
    let url = format!("http://{ip}:{port}{path}");
    let mut stream = TcpStream::connect((ip, port))
        .await
        .map_err(|e| format!("Get \"{url}\": dial tcp {ip}:{port}: connect: {e}"))?;
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    };
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for header in action.http_headers.iter().flatten() {
        request.push_str(&format!("{}: {}\r\n", header.name, header.value));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("Get \"{url}\": malformed HTTP response"))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {status}"))
    }
}

/// One probe's schedule and counts.
struct Schedule {
    name: &'static str,
    probe: Probe,
    due: tokio::time::Instant,
    successes: i32,
    failures: i32,
}

impl Schedule {
    fn new(name: &'static str, probe: &Probe, start: tokio::time::Instant) -> Self {
        let delay = u64::try_from(probe.initial_delay_seconds.unwrap_or(0).max(0)).unwrap_or(0);
        Self {
            name,
            probe: probe.clone(),
            due: start + Duration::from_secs(delay),
            successes: 0,
            failures: 0,
        }
    }

    fn period(&self) -> Duration {
        Duration::from_secs(
            u64::try_from(self.probe.period_seconds.unwrap_or(10).max(1)).unwrap_or(10),
        )
    }

    /// Counts a result; `Some(verdict)` when a threshold is crossed.
    fn count(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes += 1;
            (self.successes == self.probe.success_threshold.unwrap_or(1).max(1)).then_some(true)
        } else {
            self.successes = 0;
            self.failures += 1;
            (self.failures == self.probe.failure_threshold.unwrap_or(3).max(1)).then_some(false)
        }
    }
}

/// Probes a running container until the task is aborted or the container fails its
/// startup or liveness probe.
pub async fn run(target: Target, container: Container, events: mpsc::UnboundedSender<ProbeEvent>) {
    let now = tokio::time::Instant::now();
    let mut startup = container
        .startup_probe
        .as_ref()
        .map(|p| Schedule::new("Startup", p, now));
    if startup.is_none() {
        let _ = events.send(ProbeEvent::Started);
    }
    let mut liveness = container
        .liveness_probe
        .as_ref()
        .map(|p| Schedule::new("Liveness", p, now));
    let mut readiness = container
        .readiness_probe
        .as_ref()
        .map(|p| Schedule::new("Readiness", p, now));
    loop {
        let active: Vec<&mut Schedule> = match startup.as_mut() {
            Some(s) => vec![s],
            None => liveness.iter_mut().chain(readiness.iter_mut()).collect(),
        };
        let Some(next) = active.into_iter().min_by_key(|s| s.due) else {
            return;
        };
        tokio::time::sleep_until(next.due).await;
        let result = run_once(&target, &next.probe, &container).await;
        next.due = tokio::time::Instant::now() + next.period();
        let name = next.name;
        let verdict = next.count(result.is_ok());
        // The first failure of a run is told (an event), not every one.
        if let Err(output) = &result
            && next.failures == 1
        {
            let _ = events.send(ProbeEvent::Failed {
                probe: name,
                output: output.clone(),
            });
        }
        match (name, verdict) {
            ("Startup", Some(true)) => {
                startup = None;
                // Liveness and readiness start counting their delays now.
                let now = tokio::time::Instant::now();
                liveness = container
                    .liveness_probe
                    .as_ref()
                    .map(|p| Schedule::new("Liveness", p, now));
                readiness = container
                    .readiness_probe
                    .as_ref()
                    .map(|p| Schedule::new("Readiness", p, now));
                let _ = events.send(ProbeEvent::Started);
            }
            ("Startup" | "Liveness", Some(false)) => {
                let _ = events.send(ProbeEvent::Unhealthy {
                    probe: name,
                    output: result.err().unwrap_or_default(),
                });
                return;
            }
            ("Readiness", Some(ready)) => {
                let _ = events.send(ProbeEvent::Ready(ready));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn thresholds_decide_verdicts() {
        let probe = Probe {
            success_threshold: Some(2),
            failure_threshold: Some(2),
            ..Probe::default()
        };
        let mut s = Schedule::new("Readiness", &probe, tokio::time::Instant::now());
        assert_eq!(s.count(true), None);
        assert_eq!(s.count(true), Some(true));
        assert_eq!(s.count(true), None);
        assert_eq!(s.count(false), None);
        assert_eq!(s.count(false), Some(false));
        assert_eq!(s.count(false), None);
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let c = Container {
            name: "c".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
        assert!(resolve_port(&IntOrString::String("nope".into()), &c).is_err());
    }
}
