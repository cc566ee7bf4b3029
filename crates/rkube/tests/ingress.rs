//! The ingress controller end to end: a real `rkube server`, `rkube ingress` as its own
//! process on free loopback ports, Ingresses, Services, EndpointSlices and TLS Secrets made
//! with real kubectl, and real HTTP(S) requests made with curl and openssl.
//!
//! The "pods" are small HTTP servers in this test on 127.0.0.X addresses, each answering
//! with its own name; their Services have no selector, and the test writes their
//! EndpointSlices itself (the endpoints controller only makes slices from pods).

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Cluster;

const WAIT: Duration = Duration::from_secs(30);

/// An HTTP backend on `ip`: answers every request with one line naming itself and what it
/// saw; a request with `Upgrade: echo` is switched to a byte echo.
fn backend(name: &'static str, ip: &str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(name, stream));
        }
    });
    addr
}

fn answer(name: &str, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let mut headers = std::collections::HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let header = |k: &str| headers.get(k).cloned().unwrap_or_default();
    if header("upgrade") == "echo" {
        writer
            .write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
            )
            .unwrap();
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || writer.write_all(&buf[..n]).is_err() {
                return;
            }
        }
        return;
    }
    let length: usize = header("content-length").parse().unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let text = format!(
        "{name} path={path} host={} xff={} proto={} fhost={} body={}\n",
        header("host"),
        header("x-forwarded-for"),
        header("x-forwarded-proto"),
        header("x-forwarded-host"),
        body.len(),
    );
    let _ = write!(
        writer,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `rkube ingress` as a process, killed when dropped.
struct IngressProcess {
    child: Child,
    log: std::path::PathBuf,
}

impl IngressProcess {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for IngressProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl` over plain HTTP with a Host header: (status, body).
fn http(port: u16, host: &str, path: &str) -> (u16, String) {
    curl(&[
        "-H".into(),
        format!("Host: {host}"),
        format!("http://127.0.0.1:{port}{path}"),
    ])
}

/// `curl` over HTTPS, the name resolved to 127.0.0.1 and the certificate checked against
/// the test's CA: (status, body); status 0 when the handshake or verification failed.
fn https(port: u16, host: &str, path: &str, ca: &Path) -> (u16, String) {
    https_with(&[], port, host, path, ca)
}

fn https_with(extra: &[&str], port: u16, host: &str, path: &str, ca: &Path) -> (u16, String) {
    let mut args: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
    args.extend([
        "--cacert".into(),
        ca.display().to_string(),
        "--resolve".into(),
        format!("{host}:{port}:127.0.0.1"),
        format!("https://{host}:{port}{path}"),
    ]);
    curl(&args)
}

fn curl(args: &[String]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    (code.trim().parse().unwrap_or(0), format!("{body}{stderr}"))
}

/// The subject of the certificate served for `server_name` (none: no SNI at all).
fn served_subject(port: u16, server_name: Option<&str>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")]);
    match server_name {
        Some(name) => cmd.args(["-servername", name]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("openssl is installed");
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-subject"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    x509.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let out = x509.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes a CA and, for each host, a certificate it signed; returns the CA's path.
fn certificates(dir: &Path, hosts: &[&str]) -> std::path::PathBuf {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ingress test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    for host in hosts {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![(*host).to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, *host);
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{host}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{host}.key")), key.serialize_pem()).unwrap();
    }
    let path = dir.join("ca.crt");
    std::fs::write(&path, ca.pem()).unwrap();
    path
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  ports: [{{name: http, port: 80, targetPort: 8080}}]\n---\n"
    )
}

fn slice(name: &str, service: &str, addr: SocketAddr, ready: bool) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/service-name: {service}}}\naddressType: IPv4\nports: [{{name: http, port: {}, protocol: TCP}}]\nendpoints: [{{addresses: [\"{}\"], conditions: {{ready: {ready}}}}}]\n---\n",
        addr.port(),
        addr.ip()
    )
}

/// Starts `rkube ingress` on loopback with the given ports and node flags.
fn start_ingress(
    cluster: &Cluster,
    http_port: u16,
    https_port: u16,
    node_args: &[&str],
) -> IngressProcess {
    let log = cluster.data_dir().join(format!("ingress-{http_port}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
        .arg("ingress")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["--bind-address", "127.0.0.1"])
        .args(node_args)
        .args(["--http-port", &http_port.to_string()])
        .args(["--https-port", &https_port.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    IngressProcess { child, log }
}

/// Expects `body` to come from the backend named `name` (its first word).
fn from_backend(result: &(u16, String), name: &str) -> Result<(), String> {
    match result {
        (200, body) if body.split_whitespace().next() == Some(name) => Ok(()),
        other => Err(format!("expected 200 from {name}, got {other:?}")),
    }
}

#[test]
fn ingress_routes_hosts_paths_tls_and_status() {
    let Some(cluster) = common::start() else {
        return;
    };
    let a1 = backend("a1", "127.0.0.2");
    let a2 = backend("a2", "127.0.0.3");
    let b1 = backend("b1", "127.0.0.4");
    let c1 = backend("c1", "127.0.0.5");
    let d1 = backend("d1", "127.0.0.6");
    let mut objects = String::new();
    for s in ["svc-a", "svc-b", "svc-c", "svc-d", "svc-empty"] {
        objects.push_str(&service(s));
    }
    objects.push_str(&slice("svc-a-1", "svc-a", a1, true));
    objects.push_str(&slice("svc-a-2", "svc-a", a2, true));
    objects.push_str(&slice("svc-b-1", "svc-b", b1, true));
    objects.push_str(&slice("svc-c-1", "svc-c", c1, true));
    objects.push_str(&slice("svc-d-1", "svc-d", d1, true));
    objects.push_str(&slice("svc-empty-1", "svc-empty", d1, false));
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&objects));

    let dir = cluster.data_dir().join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let ca = certificates(&dir, &["a.example.com", "b.example.com"]);
    for (secret, host) in [("tls-a", "a.example.com"), ("tls-b", "b.example.com")] {
        cluster.kubectl(&[
            "create",
            "secret",
            "tls",
            secret,
            &format!("--cert={}", dir.join(format!("{host}.crt")).display()),
            &format!("--key={}", dir.join(format!("{host}.key")).display()),
        ]);
    }

    let (http_port, https_port) = (free_port(), free_port());
    let ingress = start_ingress(&cluster, http_port, https_port, &["--node-ip", "127.0.0.1"]);
    let check = |what: &str, mut f: Box<dyn FnMut() -> Result<(), String> + '_>| {
        cluster.eventually(what, WAIT, || {
            f().map_err(|e| format!("{e}\ningress log:\n{}", ingress.log()))
        })
    };

    // The IngressClass, made by the controller as the default class.
    check(
        "the IngressClass rkube exists",
        Box::new(|| {
            let out = cluster.kubectl_raw(&["get", "ingressclass", "rkube", "-o", "json"], None);
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
            let controller = &json["spec"]["controller"];
            let default =
                &json["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"];
            if controller == "rkube.io/ingress-controller" && default == "true" {
                Ok(())
            } else {
                Err(json.to_string())
            }
        }),
    );

    // Two hosts to two services, by port number and by port name; no ingressClassName, so
    // served because rkube is the default class; TLS for both hosts.
    cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: hosts}
spec:
  tls:
  - {hosts: [a.example.com], secretName: tls-a}
  - {hosts: [b.example.com], secretName: tls-b}
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: svc-a, port: {number: 80}}}}
  - host: b.example.com
    http:
      paths:
      - {path: /, pathType: ImplementationSpecific, backend: {service: {name: svc-b, port: {name: http}}}}
"#,
        ),
    );
    check(
        "b.example.com reaches svc-b",
        Box::new(|| from_backend(&http(http_port, "b.example.com", "/x"), "b1")),
    );
    // Both endpoints of svc-a get traffic.
    let mut seen = std::collections::BTreeSet::new();
    check(
        "a.example.com reaches both endpoints of svc-a",
        Box::new(|| {
            let (code, body) = http(http_port, "a.example.com", "/hello?q=1");
            if code != 200 {
                return Err(format!("{code} {body}"));
            }
            seen.insert(body.split_whitespace().next().unwrap_or("").to_owned());
            if seen.contains("a1") && seen.contains("a2") {
                Ok(())
            } else {
                Err(format!("seen {seen:?}"))
            }
        }),
    );
    // What the backend saw: the path and query, the Host kept, the forwarded headers.
    let (_, body) = http(http_port, "A.Example.com:8080", "/hello?q=1");
    assert!(body.contains("path=/hello?q=1"), "{body}");
    assert!(body.contains("host=A.Example.com:8080"), "{body}");
    assert!(body.contains("xff=127.0.0.1 "), "{body}");
    assert!(body.contains("proto=http "), "{body}");
    assert!(body.contains("fhost=A.Example.com:8080"), "{body}");
    // A request body streamed through.
    let big = "x".repeat(300_000);
    let big_file = cluster.data_dir().join("big");
    std::fs::write(&big_file, &big).unwrap();
    let (code, body) = curl(&[
        "-H".into(),
        "Host: b.example.com".into(),
        "--data-binary".into(),
        format!("@{}", big_file.display()),
        format!("http://127.0.0.1:{http_port}/upload"),
    ]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("body=300000"), "{body}");

    // An endpoint going not ready stops getting traffic.
    cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&slice("svc-a-2", "svc-a", a2, false)),
    );
    check(
        "a2 no longer gets traffic",
        Box::new(|| {
            for _ in 0..6 {
                from_backend(&http(http_port, "a.example.com", "/"), "a1")?;
            }
            Ok(())
        }),
    );

    // TLS: each host gets its own certificate by SNI, valid for the test CA.
    check(
        "https://a.example.com with its certificate",
        Box::new(|| from_backend(&https(https_port, "a.example.com", "/", &ca), "a1")),
    );
    let (_, body) = https(https_port, "a.example.com", "/", &ca);
    assert!(body.contains("proto=https"), "{body}");
    from_backend(&https(https_port, "b.example.com", "/", &ca), "b1").unwrap();
    // HTTP/2 from the client (ALPN), HTTP/1.1 to the backend with the Host from :authority.
    let h2 = https_with(&["--http2"], https_port, "b.example.com", "/h2", &ca);
    from_backend(&h2, "b1").unwrap();
    assert!(
        h2.1.contains(&format!("host=b.example.com:{https_port} ")),
        "{h2:?}"
    );
    assert_eq!(
        served_subject(https_port, Some("a.example.com")),
        "subject=CN = a.example.com"
    );
    assert_eq!(
        served_subject(https_port, Some("b.example.com")),
        "subject=CN = b.example.com"
    );
    // No SNI, or a name without certificate: the default self-signed certificate.
    for name in [None, Some("nocert.example.com")] {
        let subject = served_subject(https_port, name);
        assert!(
            subject.contains("CN = rkube ingress default certificate"),
            "{name:?}: {subject}"
        );
    }

    // Paths: Exact before Prefix at the same length, the longest prefix wins, element-wise.
    cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: paths}
spec:
  ingressClassName: rkube
  rules:
  - host: paths.example.com
    http:
      paths:
      - {path: /foo, pathType: Prefix, backend: {service: {name: svc-b, port: {number: 80}}}}
      - {path: /foo, pathType: Exact, backend: {service: {name: svc-c, port: {number: 80}}}}
      - {path: /foo/bar, pathType: Prefix, backend: {service: {name: svc-a, port: {number: 80}}}}
  - host: empty.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: svc-empty, port: {number: 80}}}}
      - {path: /missing, pathType: Prefix, backend: {service: {name: svc-missing, port: {number: 80}}}}
  - host: ws.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: svc-d, port: {number: 80}}}}
"#,
        ),
    );
    check(
        "Exact /foo wins over Prefix /foo",
        Box::new(|| from_backend(&http(http_port, "paths.example.com", "/foo"), "c1")),
    );
    from_backend(&http(http_port, "paths.example.com", "/foo/"), "b1").unwrap();
    from_backend(&http(http_port, "paths.example.com", "/foo/barbaz"), "b1").unwrap();
    from_backend(&http(http_port, "paths.example.com", "/foo/bar/baz"), "a1").unwrap();
    // Nothing matches and no default backend: 404.
    assert_eq!(http(http_port, "paths.example.com", "/foobar").0, 404);
    assert_eq!(http(http_port, "unknown.example.com", "/").0, 404);
    // No ready endpoint, or no such service: 503.
    assert_eq!(http(http_port, "empty.example.com", "/").0, 503);
    assert_eq!(http(http_port, "empty.example.com", "/missing").0, 503);

    // An upgrade (as WebSocket does) passes through, then bytes flow both ways.
    let mut stream = TcpStream::connect(("127.0.0.1", http_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
    }
    stream.write_all(b"ping through the ingress").unwrap();
    let mut echoed = [0u8; 24];
    reader.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping through the ingress");
    drop(stream);

    // A default backend takes what nothing else matches.
    cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(
            r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fallback}
spec:
  defaultBackend: {service: {name: svc-d, port: {number: 80}}}
"#,
        ),
    );
    check(
        "the default backend answers unknown hosts",
        Box::new(|| from_backend(&http(http_port, "unknown.example.com", "/"), "d1")),
    );
    from_backend(&http(http_port, "paths.example.com", "/foobar"), "d1").unwrap();

    // status.loadBalancer.ingress: the node address on every served Ingress.
    let addresses = |name: &str| {
        cluster.kubectl(&[
            "get",
            "ingress",
            name,
            "-o",
            "jsonpath={.status.loadBalancer.ingress[*].ip}",
        ])
    };
    for name in ["hosts", "paths", "fallback"] {
        check(
            "status.loadBalancer set",
            Box::new(|| match addresses(name).as_str() {
                "127.0.0.1" => Ok(()),
                other => Err(format!("{name}: {other:?}")),
            }),
        );
    }

    // A second instance on a Node (as each agent runs one) adds the Node's InternalIP and
    // leaves the first instance's address alone; it follows the Node's address.
    cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Node\nmetadata: {name: edge-1}\n"),
    );
    let node_address = |ip: &str| {
        cluster.kubectl(&[
            "patch",
            "node",
            "edge-1",
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"{ip}"}},{{"type":"Hostname","address":"edge-1"}}]}}}}"#),
        ])
    };
    node_address("127.0.0.9");
    let (http_port2, https_port2) = (free_port(), free_port());
    let second = start_ingress(
        &cluster,
        http_port2,
        https_port2,
        &["--node-name", "edge-1"],
    );
    let second = &second;
    let addresses = &addresses;
    let both = |want: &'static str| {
        move || {
            for name in ["hosts", "paths", "fallback"] {
                let got = addresses(name);
                if got != want {
                    return Err(format!("{name}: {got:?}\nsecond log:\n{}", second.log()));
                }
            }
            Ok(())
        }
    };
    check(
        "both instances' addresses",
        Box::new(both("127.0.0.1 127.0.0.9")),
    );
    from_backend(&http(http_port2, "b.example.com", "/"), "b1").unwrap();
    node_address("127.0.0.10");
    check(
        "the Node's new address",
        Box::new(both("127.0.0.1 127.0.0.10")),
    );

    // Another class: no longer served, its routes and its address go.
    cluster.kubectl(&[
        "patch",
        "ingress",
        "paths",
        "--type=merge",
        "-p",
        r#"{"spec":{"ingressClassName":"other"}}"#,
    ]);
    check(
        "status.loadBalancer removed when no longer served",
        Box::new(|| match addresses("paths").as_str() {
            "" => Ok(()),
            other => Err(format!("{other:?}")),
        }),
    );
    check(
        "routes of an Ingress no longer served go",
        Box::new(|| from_backend(&http(http_port, "paths.example.com", "/foo"), "d1")),
    );
    let table = cluster.kubectl(&["get", "ingress", "hosts"]);
    assert!(table.contains("127.0.0.1"), "{table}");
}
