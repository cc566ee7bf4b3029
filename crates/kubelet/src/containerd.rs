//! The agent's own containerd (as k3s runs one): a generated config under
//! `DATA_DIR/agent/containerd`, Debian's `containerd` binary started with it, restarted if
//! it dies, stopped when the agent stops. Containers outlive it (their shims do), so a
//! restarted agent finds its pods still running.
//!
//! The images the node needs and cannot pull (no registry is assumed) are imported with
//! containerd's own `ctr images import`: rkube's pause image at every start, and the
//! archives placed in `DATA_DIR/agent/images`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rkube_controllers::Stop;
use tokio::process::{Child, Command};

use crate::cri::CriClient;

/// Where Debian's containernetworking-plugins are.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// containerd's CRI namespace: images the kubelet uses live there.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// What starting containerd can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error(
        "{program} not found: install Debian's containerd, runc and containernetworking-plugins (apt-get install containerd runc containernetworking-plugins), or pass --containerd-socket"
    )]
    NotInstalled { program: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd did not answer on {socket} within {seconds} s; its log is {log}")]
    NotReady {
        socket: PathBuf,
        seconds: u64,
        log: PathBuf,
    },
    #[error("importing {file}: {message}")]
    Import { file: PathBuf, message: String },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ContainerdError {
    let path = path.to_owned();
    move |source| ContainerdError::Io { what, path, source }
}

/// The agent's directories under its data dir.
#[derive(Clone, Debug)]
pub struct Layout {
    /// `DATA_DIR/agent`.
    pub agent: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            agent: data_dir.join("agent"),
        }
    }
    pub fn containerd_dir(&self) -> PathBuf {
        self.agent.join("containerd")
    }
    pub fn socket(&self) -> PathBuf {
        self.containerd_dir().join("containerd.sock")
    }
    pub fn config_file(&self) -> PathBuf {
        self.containerd_dir().join("config.toml")
    }
    pub fn log_file(&self) -> PathBuf {
        self.containerd_dir().join("containerd.log")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.containerd_dir().join("containerd.pid")
    }
    /// CNI network configurations (the conflist the agent writes).
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.agent.join("etc").join("cni").join("net.d")
    }
    /// host-local's address reservations.
    pub fn cni_ipam_dir(&self) -> PathBuf {
        self.agent.join("cni").join("networks")
    }
    /// Image archives imported at start.
    pub fn images_dir(&self) -> PathBuf {
        self.agent.join("images")
    }
    /// Container logs, in kube's /var/log/pods layout.
    pub fn pod_logs_dir(&self) -> PathBuf {
        self.agent.join("logs").join("pods")
    }
}

/// A program on `PATH` (or `/usr/sbin`, `/sbin`, which a non-login root shell may lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The TOML string of a path (the paths are ours; quotes and backslashes escaped anyway).
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// containerd's config (version 2): state under the layout, the CRI plugin with rkube's
/// pause image, Debian's CNI plugins and our conf dir, runc with cgroupfs, overlayfs.
///
/// Where the agent may not lower OOM scores (no `CAP_SYS_RESOURCE`: in some VMs and
/// containers), containerd is told to keep them at or above its own, or every sandbox
/// fails (runc cannot write `-998` to `oom_score_adj`).
pub fn config(layout: &Layout, stream_port: u16, restrict_oom_score_adj: bool) -> String {
    let dir = layout.containerd_dir();
    let p = |path: PathBuf| toml_str(&path.to_string_lossy());
    format!(
        r#"# Written by rkube at every agent start; edits are overwritten.
version = 2
root = {root}
state = {state}

[grpc]
  address = {socket}

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {pause}
  stream_server_address = "127.0.0.1"
  stream_server_port = "{stream_port}"
  enable_selinux = false
  restrict_oom_score_adj = {restrict_oom_score_adj}

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {cni_bin}
    conf_dir = {cni_conf}
    max_conf_num = 1
"#,
        root = p(dir.join("root")),
        state = p(dir.join("state")),
        socket = p(layout.socket()),
        opt = p(dir.join("opt")),
        pause = toml_str(crate::oci::PAUSE_IMAGE),
        cni_bin = toml_str(CNI_BIN_DIR),
        cni_conf = p(layout.cni_conf_dir()),
    )
}

/// Whether this process has `CAP_SYS_RESOURCE` (bit 24 of `CapEff`), which lowering an
/// OOM score adjustment needs.
pub fn can_lower_oom_score() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// A free TCP port on the loopback (for containerd's streaming server: its default, 10010,
/// would clash between two agents on one machine).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(10010, |a| a.port())
}

/// Checks what the supervised containerd needs, with one line naming what to install.
pub fn check_installed() -> Result<PathBuf, ContainerdError> {
    let containerd = find_program("containerd").ok_or_else(|| ContainerdError::NotInstalled {
        program: "containerd".to_owned(),
    })?;
    if find_program("runc").is_none() {
        return Err(ContainerdError::NotInstalled {
            program: "runc".to_owned(),
        });
    }
    if !Path::new(CNI_BIN_DIR).join("bridge").is_file() {
        return Err(ContainerdError::NotInstalled {
            program: format!("the CNI bridge plugin ({CNI_BIN_DIR}/bridge)"),
        });
    }
    Ok(containerd)
}

/// The containerd the agent runs: its socket, and the task that keeps it up.
pub struct Supervised {
    pub socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Waits until containerd has stopped (after the agent's stop signal).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

fn spawn(program: &Path, layout: &Layout) -> Result<Child, ContainerdError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.log_file())
        .map_err(io("cannot open", &layout.log_file()))?;
    let err = log
        .try_clone()
        .map_err(io("cannot open", &layout.log_file()))?;
    let mut command = Command::new(program);
    command
        .arg("--config")
        .arg(layout.config_file())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .kill_on_drop(false);
    // containerd goes when the agent does, even killed (its containers stay, in their
    // shims): a restarted agent starts its own again.
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and only makes the prctl
    // system call, which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
    let child = command.spawn().map_err(io("cannot start", program))?;
    if let Some(pid) = child.id() {
        let _ = std::fs::write(layout.pid_file(), pid.to_string());
    }
    Ok(child)
}

/// Sends SIGTERM to a process and waits for it (SIGKILL after 10 s).
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// A containerd left running by an agent that was killed: it holds the state dir's lock,
/// so it is stopped (its containers keep running) before ours starts.
async fn stop_leftover(layout: &Layout) {
    let Ok(pid) = std::fs::read_to_string(layout.pid_file()) else {
        return;
    };
    let pid = pid.trim();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let config = layout.config_file();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*config.to_string_lossy());
    if !ours {
        return;
    }
    tracing::info!(pid, "stopping the containerd a previous agent left running");
    let _ = Command::new("kill").args(["-TERM", pid]).status().await;
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill").args(["-KILL", pid]).status().await;
}

/// Waits until containerd answers CRI `Version` on its socket.
async fn wait_ready(layout: &Layout, timeout: Duration) -> Result<CriClient, ContainerdError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if layout.socket().exists()
            && let Ok(client) = CriClient::connect(&layout.socket()).await
            && client.version().await.is_ok()
        {
            return Ok(client);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ContainerdError::NotReady {
                socket: layout.socket(),
                seconds: timeout.as_secs(),
                log: layout.log_file(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes the config, starts containerd and waits for its socket; a task restarts it if it
/// dies and stops it at `stop`.
pub async fn start(layout: &Layout, stop: Stop) -> Result<Supervised, ContainerdError> {
    let program = check_installed()?;
    let dir = layout.containerd_dir();
    for d in [&dir, &layout.cni_conf_dir(), &layout.images_dir()] {
        std::fs::create_dir_all(d).map_err(io("cannot create", d))?;
    }
    std::fs::write(
        layout.config_file(),
        config(layout, free_port(), !can_lower_oom_score()),
    )
    .map_err(io("cannot write", &layout.config_file()))?;
    stop_leftover(layout).await;
    let _ = std::fs::remove_file(layout.socket());
    let mut child = spawn(&program, layout)?;
    tracing::info!(socket = %layout.socket().display(), "starting containerd");
    if let Err(err) = wait_ready(layout, Duration::from_secs(30)).await {
        terminate(&mut child).await;
        return Err(err);
    }
    let layout_task = layout.clone();
    let task = tokio::spawn(async move {
        let layout = layout_task;
        let mut delay = Duration::from_secs(1);
        loop {
            tokio::select! {
                status = child.wait() => {
                    tracing::warn!(?status, log = %layout.log_file().display(), "containerd exited; restarting it in {delay:?}");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stop.stopped() => return,
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                    match spawn(&program, &layout) {
                        Ok(new) => child = new,
                        Err(err) => {
                            tracing::error!("cannot restart containerd: {err}");
                            continue;
                        }
                    }
                }
                () = stop.stopped() => {
                    tracing::info!("stopping containerd");
                    terminate(&mut child).await;
                    let _ = std::fs::remove_file(layout.pid_file());
                    return;
                }
            }
        }
    });
    Ok(Supervised {
        socket: layout.socket(),
        task,
    })
}

/// The longest one archive's import may take.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(300);

/// Imports an image archive (docker `save` or OCI layout) into containerd's CRI namespace
/// with `ctr`, which ships with containerd.
pub async fn import_archive(socket: &Path, file: &Path) -> Result<(), ContainerdError> {
    let ctr = find_program("ctr").ok_or_else(|| ContainerdError::NotInstalled {
        program: "ctr (containerd's client)".to_owned(),
    })?;
    let run = Command::new(ctr)
        .arg("--address")
        .arg(socket)
        .args(["-n", CRI_NAMESPACE, "images", "import"])
        .arg(file)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    // ctr waits forever on a containerd that went away mid-import.
    let output = tokio::time::timeout(IMPORT_TIMEOUT, run)
        .await
        .map_err(|_| ContainerdError::Import {
            file: file.to_owned(),
            message: format!("ctr did not finish in {} s", IMPORT_TIMEOUT.as_secs()),
        })?
        .map_err(io("cannot run ctr for", file))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(ContainerdError::Import {
        file: file.to_owned(),
        message: stderr.trim().to_owned(),
    })
}

/// Imports rkube's pause image (written to a file under the containerd dir first).
pub async fn import_pause(socket: &Path, dir: &Path) -> Result<(), ContainerdError> {
    let file = dir.join("pause.oci.tar");
    let archive = crate::oci::pause_archive().map_err(io("cannot build", &file))?;
    tokio::fs::write(&file, archive)
        .await
        .map_err(io("cannot write", &file))?;
    import_archive(socket, &file).await
}

/// Imports the archives in `DATA_DIR/agent/images` (`.tar`, `.tar.gz`...); one that fails
/// is reported and skipped.
pub async fn import_dir(socket: &Path, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in files {
        match import_archive(socket, &file).await {
            Ok(()) => tracing::info!(file = %file.display(), "image archive imported"),
            Err(err) => tracing::warn!("{err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_keeps_everything_under_the_data_dir() {
        let layout = Layout::new(Path::new("/data"));
        let text = config(&layout, 4242, true);
        assert!(text.contains(r#"address = "/data/agent/containerd/containerd.sock""#));
        assert!(text.contains(r#"root = "/data/agent/containerd/root""#));
        assert!(text.contains(r#"conf_dir = "/data/agent/etc/cni/net.d""#));
        assert!(text.contains(r#"bin_dir = "/usr/lib/cni""#));
        assert!(text.contains("SystemdCgroup = false"));
        assert!(text.contains(r#"stream_server_port = "4242""#));
        assert!(text.contains("restrict_oom_score_adj = true"));
        assert!(text.contains(&format!("sandbox_image = \"{}\"", crate::oci::PAUSE_IMAGE)));
    }
}
