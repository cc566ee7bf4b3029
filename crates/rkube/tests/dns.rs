//! Cluster DNS end to end: `rkube server` serving DNS on a loopback port, Services and
//! EndpointSlices made with real kubectl, queries sent over UDP and TCP as a resolver sends
//! them. Names outside the cluster go to the upstream given with --cluster-dns-upstream: a
//! small responder in this test stands in for the host's resolver.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A free port for both UDP and TCP on loopback.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn query_message(name: &str, qtype: RecordType) -> Message {
    let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    msg
}

fn rand_id() -> u16 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        & 0xffff) as u16
}

fn udp_query(port: u16, name: &str, qtype: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let msg = query_message(name, qtype);
    socket
        .send_to(&msg.to_vec().unwrap(), ("127.0.0.1", port))
        .unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    let answer = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(answer.metadata.id, msg.metadata.id);
    answer
}

fn tcp_query(port: u16, name: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let bytes = query_message(name, qtype).to_vec().unwrap();
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(&bytes).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).unwrap();
    Message::from_vec(&buf).unwrap()
}

/// The answers' data as text, sorted.
fn answers(msg: &Message) -> Vec<String> {
    let mut v: Vec<String> = msg.answers.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

/// Answers every query with `A 192.0.2.7`, as an upstream resolver would for a real name.
fn fake_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            reply.metadata.recursion_available = true;
            for q in &query.queries {
                reply.add_query(q.clone());
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    300,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
                ));
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), from);
        }
    });
    addr
}

const OBJECTS: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.43.0.50
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Namespace
metadata: {name: db}
---
apiVersion: v1
kind: Service
metadata: {name: pg, namespace: db}
spec:
  clusterIP: None
  ports: [{name: sql, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: pg-1
  namespace: db
  labels: {kubernetes.io/service-name: pg, endpointslice.kubernetes.io/managed-by: test}
addressType: IPv4
ports: [{name: sql, port: 5432, protocol: TCP}]
endpoints:
- addresses: [10.42.0.5]
  hostname: pg-0
  conditions: {ready: true}
- addresses: [10.42.1.6]
  hostname: pg-1
  conditions: {ready: true}
- addresses: [10.42.2.7]
  hostname: pg-2
  conditions: {ready: false}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: example.org
"#;

#[test]
fn cluster_dns_answers_for_services_and_forwards_the_rest() {
    let port = free_port();
    let upstream = fake_upstream();
    let Some(c) = common::start_with(&[
        "--cluster-dns-port",
        &port.to_string(),
        "--cluster-dns-upstream",
        &upstream.to_string(),
    ]) else {
        return;
    };
    c.kubectl_stdin(&["apply", "-f", "-"], Some(OBJECTS));

    // A ClusterIP service: its address over UDP and TCP, authoritative, TTL 5.
    c.eventually("web resolves", Duration::from_secs(20), || {
        let got = answers(&udp_query(
            port,
            "web.default.svc.cluster.local.",
            RecordType::A,
        ));
        (got == ["10.43.0.50"])
            .then_some(())
            .ok_or(format!("{got:?}"))
    });
    let msg = tcp_query(port, "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(answers(&msg), ["10.43.0.50"]);
    assert!(msg.metadata.authoritative);
    assert_eq!(msg.answers[0].ttl, 5);
    let srv = udp_query(
        port,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(answers(&srv), ["0 100 80 web.default.svc.cluster.local."]);

    // A headless service: one record per ready endpoint, and each by its hostname.
    c.eventually("pg resolves", Duration::from_secs(20), || {
        let got = answers(&udp_query(port, "pg.db.svc.cluster.local.", RecordType::A));
        (got == ["10.42.0.5", "10.42.1.6"])
            .then_some(())
            .ok_or(format!("{got:?}"))
    });
    let one = udp_query(port, "pg-1.pg.db.svc.cluster.local.", RecordType::A);
    assert_eq!(answers(&one), ["10.42.1.6"]);
    let not_ready = udp_query(port, "pg-2.pg.db.svc.cluster.local.", RecordType::A);
    assert_eq!(not_ready.metadata.response_code, ResponseCode::NXDomain);

    // ExternalName: a CNAME. Pods: the address in the name. Missing: NXDOMAIN with the SOA.
    let ext = udp_query(port, "ext.default.svc.cluster.local.", RecordType::A);
    assert_eq!(answers(&ext), ["example.org."]);
    let pod = udp_query(port, "10-42-0-9.default.pod.cluster.local.", RecordType::A);
    assert_eq!(answers(&pod), ["10.42.0.9"]);
    let missing = udp_query(port, "nope.default.svc.cluster.local.", RecordType::A);
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(missing.authorities.len(), 1, "{missing:?}");
    let ptr = udp_query(port, "50.0.43.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(answers(&ptr), ["web.default.svc.cluster.local."]);

    // Pods reach it through the kube-dns Service at the tenth service address, whose
    // endpoints are the servers' DNS port; it resolves itself.
    let svc = c.kubectl(&[
        "-n",
        "kube-system",
        "get",
        "svc",
        "kube-dns",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[*].protocol} {.spec.ports[*].targetPort}",
    ]);
    assert_eq!(svc, format!("10.43.0.10 UDP TCP {port} {port}"));
    // The same servers as the kubernetes Service's endpoints (their advertised addresses).
    let servers = c.kubectl(&[
        "get",
        "endpointslice",
        "kubernetes",
        "-o",
        "jsonpath={.endpoints[*].addresses[*]}",
    ]);
    c.eventually("kube-dns endpoints", Duration::from_secs(20), || {
        let slice = c.kubectl(&[
            "-n",
            "kube-system",
            "get",
            "endpointslice",
            "kube-dns",
            "-o",
            "jsonpath={.endpoints[*].addresses[*]} {.ports[*].port}",
        ]);
        (!servers.is_empty() && slice == format!("{servers} {port} {port}"))
            .then_some(())
            .ok_or(slice)
    });
    let dns = udp_query(
        port,
        "kube-dns.kube-system.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(answers(&dns), ["10.43.0.10"]);

    // Names outside the cluster domain go upstream.
    let outside = udp_query(port, "www.example.com.", RecordType::A);
    assert_eq!(outside.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&outside), ["192.0.2.7"]);
    assert!(!outside.metadata.authoritative);

    // Changes show at once: pg-2 becomes ready, web is deleted.
    c.kubectl(&[
        "-n",
        "db",
        "patch",
        "endpointslice",
        "pg-1",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/endpoints/2/conditions/ready","value":true}]"#,
    ]);
    c.eventually("pg-2 published", Duration::from_secs(10), || {
        let got = answers(&udp_query(port, "pg.db.svc.cluster.local.", RecordType::A));
        (got.len() == 3).then_some(()).ok_or(format!("{got:?}"))
    });
    c.kubectl(&["delete", "service", "web"]);
    c.eventually("web gone", Duration::from_secs(10), || {
        let msg = udp_query(port, "web.default.svc.cluster.local.", RecordType::A);
        (msg.metadata.response_code == ResponseCode::NXDomain)
            .then_some(())
            .ok_or(format!("{msg:?}"))
    });
}

#[test]
fn a_taken_dns_port_is_one_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(["server", "--disable-agent", "--bind-address", "127.0.0.1"])
        .args(["--https-port", &free_port().to_string()])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--cluster-dns-port", &port.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("rkube: cluster DNS cannot listen on 127.0.0.1:")
            && last.contains("--cluster-dns-port"),
        "{stderr}"
    );
}
