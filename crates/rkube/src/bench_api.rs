//! `rkube bench api`: the API server over HTTPS, measured the way clients use it (HTTP/2,
//! client certificates), against an in-process server on loopback with the embedded store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;

use crate::bench::{ms, percentile};

#[derive(clap::Args, Debug)]
pub struct ApiBenchArgs {
    /// Seconds to run each create and get phase.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// Pods for the LIST measurement.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Watchers for the watch latency measurement.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
}

/// An HTTP/2 connection to the server, as kubectl and client-go make.
#[derive(Clone)]
struct Conn {
    send: SendRequest<Full<Bytes>>,
}

struct Target {
    addr: std::net::SocketAddr,
    tls: tokio_rustls::TlsConnector,
}

impl Target {
    fn new(dir: &std::path::Path, addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(dir.join("tls/ca.crt"))? {
            roots.add(cert?)?;
        }
        let chain = CertificateDer::pem_file_iter(dir.join("tls/admin.crt"))?
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(dir.join("tls/admin.key"))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            addr,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    async fn connect(&self) -> anyhow::Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let tls = self
            .tls
            .connect(ServerName::try_from("localhost")?.to_owned(), tcp)
            .await?;
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(Conn { send })
    }
}

impl Conn {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"))
            .header("content-type", "application/json")
            .body(Full::new(body))?;
        self.send.ready().await?;
        let response = self.send.send_request(req).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    async fn expect(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        want: StatusCode,
    ) -> anyhow::Result<Bytes> {
        let (status, bytes) = self.call(method, path, body).await?;
        anyhow::ensure!(
            status == want,
            "{path}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(bytes)
    }
}

fn configmap(name: &str, value: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}})
}

pub async fn api(args: ApiBenchArgs) -> anyhow::Result<()> {
    let scratch = crate::bench::ScratchServer::start().await?;
    let target = Target::new(scratch.dir.path(), scratch.server.local_addr)?;
    let phase = Duration::from_secs(args.seconds.max(1));

    for clients in [1usize, 16, 64] {
        let deadline = Instant::now() + phase;
        let mut tasks = Vec::new();
        for c in 0..clients {
            // kubectl and client-go share one HTTP/2 connection per process; give each
            // client its own, as separate processes would have.
            let mut conn = target.connect().await?;
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let body = configmap(&format!("c{clients}-{c}-{i}"), "x");
                    let started = Instant::now();
                    conn.expect(
                        Method::POST,
                        "/api/v1/namespaces/default/configmaps",
                        Some(&body),
                        StatusCode::CREATED,
                    )
                    .await?;
                    latencies.push(started.elapsed());
                    i += 1;
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        all.sort_unstable();
        println!(
            "api.create.c{clients}.throughput: {:.0} ops/s",
            all.len() as f64 / phase.as_secs_f64()
        );
        println!(
            "api.create.c{clients}.p50: {:.3} ms",
            ms(percentile(&all, 0.5))
        );
        println!(
            "api.create.c{clients}.p99: {:.3} ms",
            ms(percentile(&all, 0.99))
        );
    }

    for clients in [1usize, 16, 64] {
        let deadline = Instant::now() + phase;
        let mut tasks = Vec::new();
        for c in 0..clients {
            let mut conn = target.connect().await?;
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let path = format!(
                        "/api/v1/namespaces/default/configmaps/c16-{}-{}",
                        c % 16,
                        i % 50
                    );
                    let started = Instant::now();
                    let (status, _) = conn.call(Method::GET, &path, None).await?;
                    anyhow::ensure!(
                        status.is_success() || status == StatusCode::NOT_FOUND,
                        "{path}: {status}"
                    );
                    latencies.push(started.elapsed());
                    i += 1;
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        all.sort_unstable();
        println!(
            "api.get.c{clients}.throughput: {:.0} ops/s",
            all.len() as f64 / phase.as_secs_f64()
        );
        println!(
            "api.get.c{clients}.p50: {:.3} ms",
            ms(percentile(&all, 0.5))
        );
        println!(
            "api.get.c{clients}.p99: {:.3} ms",
            ms(percentile(&all, 0.99))
        );
    }

    list_pods(&target, args.pods).await?;
    watch_latency(&target, args.watchers).await?;
    Ok(())
}

async fn list_pods(target: &Target, pods: usize) -> anyhow::Result<()> {
    let writers = 64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut conn = target.connect().await?;
        tasks.push(tokio::spawn(async move {
            for i in (w..pods).step_by(writers) {
                let pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("pod-{i:05}"), "labels": {"app": "bench", "n": (i % 10).to_string()}},
                    "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"],
                             "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
                });
                conn.expect(Method::POST, "/api/v1/namespaces/default/pods", Some(&pod), StatusCode::CREATED).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut conn = target.connect().await?;
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let bytes = conn
            .expect(Method::GET, "/api/v1/pods", None, StatusCode::OK)
            .await?;
        times.push(started.elapsed());
        let list: serde_json::Value = serde_json::from_slice(&bytes)?;
        anyhow::ensure!(
            list["items"].as_array().map_or(0, Vec::len) == pods,
            "the list is short"
        );
    }
    times.sort_unstable();
    println!(
        "api.list.pods{pods}.p50: {:.1} ms",
        ms(percentile(&times, 0.5))
    );
    let started = Instant::now();
    conn.expect(
        Method::GET,
        "/api/v1/pods?labelSelector=n%3D3",
        None,
        StatusCode::OK,
    )
    .await?;
    println!(
        "api.list.pods{pods}.selector: {:.1} ms",
        ms(started.elapsed())
    );
    Ok(())
}

async fn watch_latency(target: &Target, watchers: usize) -> anyhow::Result<()> {
    const EVENTS: usize = 50;
    let origin = Instant::now();
    let per_conn = 100;
    let mut conns = Vec::new();
    for _ in 0..watchers.div_ceil(per_conn) {
        conns.push(target.connect().await?);
    }
    let mut conn = target.connect().await?;
    let list: serde_json::Value = serde_json::from_slice(
        &conn
            .expect(
                Method::GET,
                "/api/v1/namespaces/kube-public/configmaps",
                None,
                StatusCode::OK,
            )
            .await?,
    )?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_owned();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers);
    let mut tasks = Vec::new();
    for w in 0..watchers {
        let mut conn = conns[w / per_conn].clone();
        let rv = rv.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::builder()
                .uri(format!("https://localhost/api/v1/namespaces/kube-public/configmaps?watch=true&resourceVersion={rv}"))
                .body(Full::new(Bytes::new()))?;
            conn.send.ready().await?;
            let response = conn.send.send_request(req).await?;
            let _ = ready.send(()).await;
            let mut body = response.into_body();
            let mut buffer = Vec::new();
            let mut latencies = Vec::new();
            while latencies.len() < EVENTS {
                let Some(frame) = body.frame().await else { break };
                let Ok(data) = frame?.into_data() else { continue };
                buffer.extend_from_slice(&data);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let event: serde_json::Value = serde_json::from_slice(&line)?;
                    let sent: u64 = event["object"]["data"]["v"].as_str().unwrap_or("0").parse()?;
                    let now = origin.elapsed().as_nanos() as u64;
                    latencies.push(Duration::from_nanos(now.saturating_sub(sent)));
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    drop(ready_tx);
    for _ in 0..watchers {
        ready_rx.recv().await.context("a watcher failed to start")?;
    }
    for i in 0..EVENTS {
        let sent = origin.elapsed().as_nanos() as u64;
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("w-{i}"), "namespace": "kube-public"}, "data": {"v": sent.to_string()}});
        conn.expect(
            Method::POST,
            "/api/v1/namespaces/kube-public/configmaps",
            Some(&body),
            StatusCode::CREATED,
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .context("watchers stalled")???,
        );
    }
    anyhow::ensure!(
        all.len() == watchers * EVENTS,
        "watchers saw {} of {} events",
        all.len(),
        watchers * EVENTS
    );
    all.sort_unstable();
    println!(
        "api.watch.w{watchers}.p50: {:.3} ms",
        ms(percentile(&all, 0.5))
    );
    println!(
        "api.watch.w{watchers}.p99: {:.3} ms",
        ms(percentile(&all, 0.99))
    );
    Ok(())
}
