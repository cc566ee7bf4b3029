//! The simulated runtime of hollow nodes (kubemark's and KWOK's idea): no processes, no
//! images, but the runtime's answers a real one would give, so one agent process can act as
//! thousands of nodes for scale tests.
//!
//! What a container does is read from its command line ([`behaviour`]): `true` exits 0 at
//! once, `false` exits 1, `exit N` exits N, `sleep N` exits 0 after N seconds, anything else
//! runs until stopped. Pod addresses come from the node's pod CIDR as CNI's host-local plugin
//! gives them ([`crate::ipam`]). A stop takes the grace period, capped (1 s by default), and a
//! container stopped with a grace period exits 0 (`Completed`, as a process that handles
//! SIGTERM does), one killed with none exits 137 (`Error`, SIGKILL).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ipam::HostLocal;
use crate::runtime::{
    ContainerConfig, ContainerStatus, Exit, Runtime, RuntimeError, RuntimeVersion, Sandbox,
    SandboxConfig,
};

/// The runtime's name: container ids read `rkube-simulated://<id>`.
pub const RUNTIME_NAME: &str = "rkube-simulated";
/// The runtime's version: nodes show `rkube-simulated://1.0`.
pub const RUNTIME_VERSION: &str = "1.0";
/// The longest a simulated stop takes by default, whatever the grace period.
pub const DEFAULT_STOP_DELAY_CAP: Duration = Duration::from_secs(1);

/// What a simulated container does once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Runs until stopped (a server, `sleep infinity`, an unknown command).
    RunForever,
    /// Exits with `code` after `after`.
    Exit { after: Duration, code: i32 },
}

/// What a container with this command and these args does (the image's entrypoint, when
/// both are empty, runs forever).
pub fn behaviour(command: &[String], args: &[String]) -> Behaviour {
    let argv: Vec<&str> = command.iter().chain(args).map(String::as_str).collect();
    match argv.as_slice() {
        [shell, "-c", script, ..] if is_shell(shell) => script_behaviour(script),
        words => words_behaviour(words),
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_shell(program: &str) -> bool {
    matches!(basename(program), "sh" | "bash" | "ash" | "dash")
}

fn script_behaviour(script: &str) -> Behaviour {
    let words: Vec<&str> = script
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        [":"] | ["exit"] => exit_now(0),
        ["exit", code] => code.parse().map_or(Behaviour::RunForever, exit_now),
        other => words_behaviour(other),
    }
}

fn words_behaviour(words: &[&str]) -> Behaviour {
    match words {
        [program] if basename(program) == "true" => exit_now(0),
        [program] if basename(program) == "false" => exit_now(1),
        [program, seconds] if basename(program) == "sleep" => {
            parse_sleep(seconds).map_or(Behaviour::RunForever, |after| Behaviour::Exit {
                after,
                code: 0,
            })
        }
        _ => Behaviour::RunForever,
    }
}

fn exit_now(code: i32) -> Behaviour {
    Behaviour::Exit {
        after: Duration::ZERO,
        code,
    }
}

/// `sleep`'s argument: `5`, `0.5`, `5s`, `2m`, `1h`; `infinity` (and anything else) is
/// `None`.
fn parse_sleep(arg: &str) -> Option<Duration> {
    let (number, unit) = match arg.char_indices().last()? {
        (i, c @ ('s' | 'm' | 'h' | 'd')) => (&arg[..i], c),
        _ => (arg, 's'),
    };
    let value: f64 = number.parse().ok()?;
    let factor = match unit {
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => 1.0,
    };
    let seconds = value * factor;
    (0.0..1e9)
        .contains(&seconds)
        .then(|| Duration::from_secs_f64(seconds))
}

/// An image reference as containerd normalises it: `busybox` is
/// `docker.io/library/busybox:latest`, `me/app:1` is `docker.io/me/app:1`.
pub fn normalize_image(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let (first, _) = name.split_once('/').unwrap_or(("", name));
    let has_registry = first.contains('.') || first.contains(':') || first == "localhost";
    let mut full = if has_registry {
        name.to_owned()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    match digest {
        Some(digest) => format!("{full}@{digest}"),
        None => {
            if !last.contains(':') {
                full.push_str(":latest");
            }
            full
        }
    }
}

/// The digest reference of an image (`docker.io/library/busybox@sha256:...`): the image's
/// own digest if it names one, else a stable made-up one.
pub fn image_id(image: &str) -> String {
    let normalized = normalize_image(image);
    if normalized.contains('@') {
        return normalized;
    }
    let last_slash = normalized.rfind('/').unwrap_or(0);
    let repository = match normalized[last_slash..].rfind(':') {
        Some(colon) => &normalized[..last_slash + colon],
        None => normalized.as_str(),
    };
    format!("{repository}@sha256:{}", stable_hex(&normalized, 64))
}

/// `len` hex digits derived from `seed` (FNV-1a): the same seed gives the same digits, on
/// every machine and release.
pub fn stable_hex(seed: &str, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut round = 0u64;
    while out.len() < len {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ round;
        for byte in seed.bytes().chain(round.to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{hash:016x}"));
        round += 1;
    }
    out.truncate(len);
    out
}

/// 64 random hex digits, as containerd's ids.
fn random_id() -> String {
    (0..4)
        .map(|_| format!("{:016x}", rand::random::<u64>()))
        .collect()
}

struct SimSandbox {
    ip: Option<Ipv4Addr>,
    containers: Vec<String>,
}

struct SimContainer {
    status: ContainerStatus,
    /// The exit, once there is one: the one source of truth, shared with the timer.
    exit: Arc<watch::Sender<Option<Exit>>>,
    timer: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    ipam: Option<HostLocal>,
    sandboxes: HashMap<String, SimSandbox>,
    containers: HashMap<String, SimContainer>,
}

/// The simulated runtime of one hollow node.
pub struct SimulatedRuntime {
    state: Mutex<State>,
    stop_delay_cap: Duration,
}

impl Default for SimulatedRuntime {
    fn default() -> Self {
        Self::new(DEFAULT_STOP_DELAY_CAP)
    }
}

impl SimulatedRuntime {
    /// A runtime whose stops take at most `stop_delay_cap`.
    pub fn new(stop_delay_cap: Duration) -> Self {
        Self {
            state: Mutex::default(),
            stop_delay_cap,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many pod addresses are in use.
    pub fn addresses_in_use(&self) -> usize {
        self.state().ipam.as_ref().map_or(0, HostLocal::in_use)
    }

    /// The exit senders of a sandbox's containers still running.
    fn running_in(
        &self,
        sandbox_id: &str,
    ) -> Result<Vec<Arc<watch::Sender<Option<Exit>>>>, RuntimeError> {
        let state = self.state();
        let sandbox =
            state
                .sandboxes
                .get(sandbox_id)
                .ok_or_else(|| RuntimeError::SandboxNotFound {
                    id: sandbox_id.to_owned(),
                })?;
        Ok(sandbox
            .containers
            .iter()
            .filter_map(|id| state.containers.get(id))
            .filter(|c| c.exit.borrow().is_none())
            .map(|c| c.exit.clone())
            .collect())
    }

    /// Waits out the (capped) grace period, then ends what still runs: code 0 after a grace
    /// period, 137 (SIGKILL) without one.
    async fn stop(&self, running: Vec<Arc<watch::Sender<Option<Exit>>>>, grace: Duration) {
        if running.is_empty() {
            return;
        }
        tokio::time::sleep(grace.min(self.stop_delay_cap)).await;
        let code = if grace.is_zero() { 137 } else { 0 };
        for exit in running {
            finish(&exit, code);
        }
    }
}

/// Sets the exit if there is none yet.
fn finish(exit: &watch::Sender<Option<Exit>>, code: i32) {
    exit.send_if_modified(|e| {
        if e.is_some() {
            return false;
        }
        *e = Some(Exit::with_code(code, Utc::now()));
        true
    });
}

#[async_trait::async_trait]
impl Runtime for SimulatedRuntime {
    fn version(&self) -> RuntimeVersion {
        RuntimeVersion {
            name: RUNTIME_NAME.to_owned(),
            version: RUNTIME_VERSION.to_owned(),
        }
    }

    async fn update_pod_cidr(&self, cidr: &str) -> Result<(), RuntimeError> {
        let pool = HostLocal::new(cidr)?;
        let mut state = self.state();
        // A node's pod CIDR never changes; one given again is the same.
        if state.ipam.is_none() {
            state.ipam = Some(pool);
        }
        Ok(())
    }

    fn network_ready(&self) -> bool {
        self.state().ipam.is_some()
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<Sandbox, RuntimeError> {
        let mut state = self.state();
        let ip = if config.host_network {
            None
        } else {
            let ipam = state.ipam.as_mut().ok_or(RuntimeError::NetworkNotReady)?;
            let previous = match config.previous_ip {
                Some(IpAddr::V4(ip)) if ipam.reserve(ip) => Some(ip),
                _ => None,
            };
            match previous.or_else(|| ipam.allocate()) {
                Some(ip) => Some(ip),
                None => {
                    return Err(RuntimeError::AddressesExhausted {
                        range: ipam.cidr().to_owned(),
                    });
                }
            }
        };
        let id = random_id();
        state.sandboxes.insert(
            id.clone(),
            SimSandbox {
                ip,
                containers: Vec::new(),
            },
        );
        Ok(Sandbox {
            id,
            ip: ip.map(IpAddr::V4),
        })
    }

    async fn image_present(&self, _image: &str) -> Result<bool, RuntimeError> {
        Ok(true)
    }

    async fn pull_image(
        &self,
        _image: &str,
        _sandbox: &SandboxConfig,
    ) -> Result<u64, RuntimeError> {
        Ok(0)
    }

    async fn start_container(
        &self,
        sandbox_id: &str,
        _sandbox: &SandboxConfig,
        config: &ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let id = random_id();
        let now = Utc::now();
        let (exit, timer) = match behaviour(&config.command, &config.args) {
            Behaviour::Exit { after, code } if after.is_zero() => {
                (watch::channel(Some(Exit::with_code(code, now))).0, None)
            }
            Behaviour::Exit { after, code } => {
                let (tx, _) = watch::channel(None);
                (tx, Some((after, code)))
            }
            Behaviour::RunForever => (watch::channel(None).0, None),
        };
        let exit = Arc::new(exit);
        let timer = timer.map(|(after, code)| {
            let exit = exit.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                finish(&exit, code);
            })
        });
        let mut state = self.state();
        let sandbox =
            state
                .sandboxes
                .get_mut(sandbox_id)
                .ok_or_else(|| RuntimeError::SandboxNotFound {
                    id: sandbox_id.to_owned(),
                })?;
        sandbox.containers.push(id.clone());
        state.containers.insert(
            id.clone(),
            SimContainer {
                status: ContainerStatus {
                    id: id.clone(),
                    image: normalize_image(&config.image),
                    image_id: image_id(&config.image),
                    started_at: now,
                    exit: None,
                },
                exit,
                timer,
            },
        );
        Ok(id)
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        let state = self.state();
        let container = state
            .containers
            .get(id)
            .ok_or_else(|| RuntimeError::ContainerNotFound { id: id.to_owned() })?;
        let mut status = container.status.clone();
        status.exit = container.exit.borrow().clone();
        Ok(status)
    }

    async fn wait_container(&self, id: &str) -> Result<Exit, RuntimeError> {
        let not_found = || RuntimeError::ContainerNotFound { id: id.to_owned() };
        let mut rx = self
            .state()
            .containers
            .get(id)
            .ok_or_else(not_found)?
            .exit
            .subscribe();
        let exit = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| not_found())?;
        exit.clone().ok_or_else(not_found)
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let exit = self
            .state()
            .containers
            .get(id)
            .ok_or_else(|| RuntimeError::ContainerNotFound { id: id.to_owned() })?
            .exit
            .clone();
        let running = if exit.borrow().is_none() {
            vec![exit]
        } else {
            Vec::new()
        };
        self.stop(running, grace).await;
        Ok(())
    }

    async fn stop_pod_sandbox(
        &self,
        sandbox_id: &str,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        let running = self.running_in(sandbox_id)?;
        self.stop(running, grace).await;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<(), RuntimeError> {
        let mut state = self.state();
        let Some(sandbox) = state.sandboxes.remove(sandbox_id) else {
            // Removing is idempotent, as in CRI.
            return Ok(());
        };
        for id in &sandbox.containers {
            if let Some(timer) = state.containers.remove(id).and_then(|c| c.timer) {
                timer.abort();
            }
        }
        if let (Some(ip), Some(ipam)) = (sandbox.ip, state.ipam.as_mut()) {
            ipam.release(ip);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn of(command: &[&str], args: &[&str]) -> Behaviour {
        behaviour(&argv(command), &argv(args))
    }

    #[test]
    fn commands_decide_what_a_container_does() {
        let done = exit_now(0);
        assert_eq!(of(&["true"], &[]), done);
        assert_eq!(of(&[], &["true"]), done);
        assert_eq!(of(&["/bin/true"], &[]), done);
        assert_eq!(of(&["sh", "-c", "true"], &[]), done);
        assert_eq!(of(&["sh", "-c"], &["true"]), done);
        assert_eq!(of(&["/bin/sh", "-c", "exit 0"], &[]), done);
        assert_eq!(of(&["false"], &[]), exit_now(1));
        assert_eq!(of(&["/bin/false"], &[]), exit_now(1));
        assert_eq!(of(&["sh", "-c", "exit 3"], &[]), exit_now(3));
        assert_eq!(
            of(&["sleep", "5"], &[]),
            Behaviour::Exit {
                after: Duration::from_secs(5),
                code: 0
            }
        );
        assert_eq!(
            of(&["sh", "-c", "sleep 1.5"], &[]),
            Behaviour::Exit {
                after: Duration::from_millis(1500),
                code: 0
            }
        );
        assert_eq!(
            of(&["sleep"], &["2m"]),
            Behaviour::Exit {
                after: Duration::from_secs(120),
                code: 0
            }
        );
        assert_eq!(of(&["sleep", "infinity"], &[]), Behaviour::RunForever);
        assert_eq!(of(&[], &[]), Behaviour::RunForever);
        assert_eq!(
            of(&["nginx", "-g", "daemon off;"], &[]),
            Behaviour::RunForever
        );
        assert_eq!(of(&["true", "now"], &[]), Behaviour::RunForever);
    }

    #[test]
    fn images_are_normalized_as_containerd_does() {
        assert_eq!(
            normalize_image("busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize_image("me/app:1"), "docker.io/me/app:1");
        assert_eq!(
            normalize_image("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
        assert_eq!(
            normalize_image("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            normalize_image("nginx@sha256:abc"),
            "docker.io/library/nginx@sha256:abc"
        );
        let id = image_id("busybox:1.36");
        assert!(id.starts_with("docker.io/library/busybox@sha256:"), "{id}");
        assert_eq!(id.len(), "docker.io/library/busybox@sha256:".len() + 64);
        assert_eq!(id, image_id("docker.io/library/busybox:1.36"));
        assert_eq!(
            image_id("localhost:5000/app"),
            format!(
                "localhost:5000/app@sha256:{}",
                stable_hex("localhost:5000/app:latest", 64)
            )
        );
    }

    fn config(command: &[&str]) -> ContainerConfig {
        ContainerConfig {
            name: "c".into(),
            image: "busybox".into(),
            command: argv(command),
            ..ContainerConfig::default()
        }
    }

    #[tokio::test]
    async fn sandboxes_take_and_give_back_addresses() {
        let runtime = SimulatedRuntime::new(Duration::from_millis(10));
        let pod = SandboxConfig {
            name: "p".into(),
            ..SandboxConfig::default()
        };
        assert_eq!(
            runtime.run_pod_sandbox(&pod).await,
            Err(RuntimeError::NetworkNotReady)
        );
        assert!(!runtime.network_ready());
        runtime
            .update_pod_cidr("10.42.1.0/24")
            .await
            .expect("valid CIDR");
        assert!(runtime.network_ready());
        let sandbox = runtime.run_pod_sandbox(&pod).await.expect("an address");
        assert_eq!(sandbox.ip, Some("10.42.1.2".parse().expect("ip")));
        let host = runtime
            .run_pod_sandbox(&SandboxConfig {
                host_network: true,
                ..pod.clone()
            })
            .await
            .expect("host network");
        assert_eq!(host.ip, None);
        assert_eq!(runtime.addresses_in_use(), 1);
        runtime
            .remove_pod_sandbox(&sandbox.id)
            .await
            .expect("removed");
        assert_eq!(runtime.addresses_in_use(), 0);
        let again = runtime
            .run_pod_sandbox(&SandboxConfig {
                previous_ip: Some("10.42.1.9".parse().expect("ip")),
                ..pod
            })
            .await
            .expect("an address");
        assert_eq!(again.ip, Some("10.42.1.9".parse().expect("ip")));
    }

    #[tokio::test]
    async fn containers_exit_as_their_command_says() {
        let runtime = SimulatedRuntime::new(Duration::from_millis(10));
        let sandbox = runtime
            .run_pod_sandbox(&SandboxConfig {
                host_network: true,
                ..SandboxConfig::default()
            })
            .await
            .expect("sandbox");
        let done = runtime
            .start_container(&sandbox.id, &SandboxConfig::default(), &config(&["true"]))
            .await
            .expect("started");
        let status = runtime.container_status(&done).await.expect("status");
        assert_eq!(status.exit.as_ref().map(|e| e.code), Some(0));
        assert_eq!(status.image, "docker.io/library/busybox:latest");
        let failed = runtime
            .start_container(&sandbox.id, &SandboxConfig::default(), &config(&["false"]))
            .await
            .expect("started");
        let exit = runtime.wait_container(&failed).await.expect("exit");
        assert_eq!((exit.code, exit.reason.as_str()), (1, "Error"));
        let sleeper = runtime
            .start_container(
                &sandbox.id,
                &SandboxConfig::default(),
                &config(&["sleep", "0.05"]),
            )
            .await
            .expect("started");
        assert_eq!(
            runtime
                .container_status(&sleeper)
                .await
                .expect("status")
                .exit,
            None
        );
        let exit = runtime.wait_container(&sleeper).await.expect("exit");
        assert_eq!((exit.code, exit.reason.as_str()), (0, "Completed"));
        // A server stops with its grace period (exit 0), or is killed without one (137).
        let server = runtime
            .start_container(&sandbox.id, &SandboxConfig::default(), &config(&["nginx"]))
            .await
            .expect("started");
        let killed = runtime
            .start_container(&sandbox.id, &SandboxConfig::default(), &config(&["nginx"]))
            .await
            .expect("started");
        runtime
            .stop_container(&killed, Duration::ZERO)
            .await
            .expect("stopped");
        runtime
            .stop_pod_sandbox(&sandbox.id, Duration::from_secs(30))
            .await
            .expect("stopped");
        let code = |id: String| {
            let runtime = &runtime;
            async move {
                runtime
                    .container_status(&id)
                    .await
                    .expect("status")
                    .exit
                    .map(|e| e.code)
            }
        };
        assert_eq!(code(server).await, Some(0));
        assert_eq!(code(killed).await, Some(137));
    }
}
