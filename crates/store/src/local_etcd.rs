//! A single-member etcd on loopback, started from the `etcd` binary on the PATH. The
//! conformance suite and `rkube bench store` use it to run the etcd backend against the
//! real thing.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd child process. Killed when dropped.
pub struct LocalEtcd {
    child: Option<Child>,
    data_dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

/// Whether an `etcd` binary is on the PATH.
pub fn etcd_installed() -> bool {
    Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl LocalEtcd {
    /// Starts etcd with its data under `data_dir` and waits until it accepts clients. Its
    /// log is `data_dir` with the extension `log`, beside it: give a directory inside a
    /// scratch dir, not the scratch dir itself.
    pub fn start(data_dir: &Path) -> std::io::Result<Self> {
        let mut etcd = Self {
            child: None,
            data_dir: data_dir.to_owned(),
            client_port: free_port()?,
            peer_port: free_port()?,
        };
        etcd.restart()?;
        Ok(etcd)
    }

    /// The client URL, for `--datastore-endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Kills etcd with SIGKILL, as a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same data and ports (after [`LocalEtcd::kill`]).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.data_dir.with_extension("log"))?;
        let child = Command::new("etcd")
            .arg("--name=rkube-test")
            .arg(format!("--data-dir={}", self.data_dir.display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=rkube-test={peer}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot start etcd (apt install etcd-server): {e}"),
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.client_port)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(std::io::Error::other(format!(
                    "etcd exited with {status}; see {}",
                    self.data_dir.with_extension("log").display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(std::io::Error::other(
            "etcd did not start listening within 20s",
        ))
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}
