//! Probes run for real (kube's prober): exec through the runtime (CRI `ExecSync`), tcpSocket,
//! httpGet (HTTP, or HTTPS without verifying the certificate, as kube's prober does) and grpc
//! (the gRPC health-checking protocol, `grpc.health.v1.Health/Check`, in plain text) against
//! the pod's address. One task per running container runs its startup probe until it passes,
//! then its liveness and readiness probes, each on its own period and thresholds, and tells
//! the pod worker what changed.

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
    if let Some(grpc) = &probe.grpc {
        let ip = host(None)?;
        let port = u16::try_from(grpc.port).map_err(|_| format!("invalid port {}", grpc.port))?;
        let service = grpc.service.clone().unwrap_or_default();
        return grpc_check(ip, port, service, timeout).await;
    }
    Ok(())
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`; status 1 is `SERVING`.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

const SERVING_STATUS: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// kube's gRPC probe: `Health/Check` for `service`, healthy when the answer is SERVING.
async fn grpc_check(
    ip: IpAddr,
    port: u16,
    service: String,
    timeout: Duration,
) -> Result<(), String> {
    let addr = std::net::SocketAddr::new(ip, port);
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint.connect().await.map_err(|_| {
        format!(
            "timeout: failed to connect service {:?} within {}",
            addr.to_string(),
            crate::pod_status::go_duration(timeout)
        )
    })?;
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| format!("timeout: failed to connect service {addr:?}: {e}"))?;
    let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
    let answer = client
        .unary(
            tonic::Request::new(HealthCheckRequest { service }),
            path,
            tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default(),
        )
        .await;
    match answer {
        Ok(response) if response.get_ref().status == 1 => Ok(()),
        Ok(response) => {
            let status = response.get_ref().status;
            let name = usize::try_from(status)
                .ok()
                .and_then(|i| SERVING_STATUS.get(i))
                .copied()
                .unwrap_or("UNKNOWN");
            Err(format!("service unhealthy (responded with {name:?})"))
        }
        Err(status) if status.code() == tonic::Code::DeadlineExceeded => Err(format!(
            "timeout: health rpc did not complete within {}",
            crate::pod_status::go_duration(timeout)
        )),
        Err(status) => Err(format!(
            "error: health rpc probe failed: rpc error: code = {:?} desc = {}",
            status.code(),
            status.message()
        )),
    }
}

/// Accepts any certificate: kube's HTTPS probes do not verify the container's (its
/// `InsecureSkipVerify`), though the handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client of HTTPS probes.
fn probe_tls() -> Result<tokio_rustls::TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
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
    let https = action.scheme.as_deref() == Some("HTTPS");
    let path = action.path.clone().unwrap_or_else(|| "/".to_owned());
    let url = format!(
        "{}://{ip}:{port}{path}",
        if https { "https" } else { "http" }
    );
    let tcp = TcpStream::connect((ip, port))
        .await
        .map_err(|e| format!("Get \"{url}\": dial tcp {ip}:{port}: connect: {e}"))?;
    if !https {
        return http_exchange(tcp, ip, port, &path, &url, action).await;
    }
    let name = rustls::pki_types::ServerName::IpAddress(ip.into());
    let tls = probe_tls()?
        .connect(name, tcp)
        .await
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    http_exchange(tls, ip, port, &path, &url, action).await
}

/// The GET itself, over plain TCP or TLS.
async fn http_exchange(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    ip: IpAddr,
    port: u16,
    path: &str,
    url: &str,
    action: &HTTPGetAction,
) -> Result<(), String> {
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

    fn target(ip: &str) -> Target {
        Target {
            runtime: Arc::new(crate::SimulatedRuntime::new(Duration::ZERO)),
            container_id: "c".into(),
            pod_ip: ip.parse().ok(),
        }
    }

    #[tokio::test]
    async fn https_probes_take_any_certificate() {
        let (cert, key) =
            crate::server::serving_certificate("pod", &["127.0.0.1".parse().unwrap()], None)
                .unwrap();
        use rustls::pki_types::pem::PemObject;
        let chain =
            vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for answer in ["200 OK", "503 Service Unavailable"] {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = tls.read(&mut buf).await;
                let reply = format!("HTTP/1.1 {answer}\r\nContent-Length: 0\r\n\r\n");
                tls.write_all(reply.as_bytes()).await.unwrap();
                let _ = tls.shutdown().await;
            }
        });
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                scheme: Some("HTTPS".into()),
                port: IntOrString::Int(i32::from(port)),
                path: Some("/healthz".into()),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        let container = Container::default();
        assert_eq!(
            run_once(&target("127.0.0.1"), &probe, &container).await,
            Ok(())
        );
        let failed = run_once(&target("127.0.0.1"), &probe, &container).await;
        assert_eq!(failed, Err("HTTP probe failed with statuscode: 503".into()));
    }

    /// A gRPC health server answering `status` to every check.
    #[derive(Clone)]
    struct Health(i32);

    impl tonic::server::NamedService for Health {
        const NAME: &'static str = "grpc.health.v1.Health";
    }

    struct Check(i32);

    impl tonic::server::UnaryService<HealthCheckRequest> for Check {
        type Response = HealthCheckResponse;
        type Future =
            std::future::Ready<Result<tonic::Response<HealthCheckResponse>, tonic::Status>>;
        fn call(&mut self, _: tonic::Request<HealthCheckRequest>) -> Self::Future {
            std::future::ready(Ok(tonic::Response::new(HealthCheckResponse {
                status: self.0,
            })))
        }
    }

    impl tower::Service<http::Request<tonic::body::Body>> for Health {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
        >;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
            let status = self.0;
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(Check(status), request).await)
            })
        }
    }

    #[tokio::test]
    async fn grpc_probes_ask_the_health_service() {
        let probe_of = |port: u16| Probe {
            grpc: Some(k8s_openapi::api::core::v1::GRPCAction {
                port: i32::from(port),
                service: None,
            }),
            timeout_seconds: Some(2),
            ..Probe::default()
        };
        let container = Container::default();
        let mut ports = Vec::new();
        for status in [1, 2] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ports.push(listener.local_addr().unwrap().port());
            let incoming = tokio_stream_of(listener);
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(Health(status))
                    .serve_with_incoming(incoming),
            );
        }
        let serving = run_once(&target("127.0.0.1"), &probe_of(ports[0]), &container).await;
        assert_eq!(serving, Ok(()));
        let not_serving = run_once(&target("127.0.0.1"), &probe_of(ports[1]), &container).await;
        assert_eq!(
            not_serving,
            Err("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        // Nothing listening.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap().port();
        drop(listener);
        let refused = run_once(&target("127.0.0.1"), &probe_of(closed), &container).await;
        assert!(
            refused
                .unwrap_err()
                .starts_with("timeout: failed to connect service")
        );
    }

    fn tokio_stream_of(
        listener: tokio::net::TcpListener,
    ) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
        futures_util::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(s, _)| s);
            Some((accepted, listener))
        })
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
