//! A pod's volumes, set up on the node as kube's kubelet does (its volume plugins and
//! `makeMounts`), in kube's layout: `PODS_DIR/UID/volumes/PLUGIN/NAME`, where PODS_DIR is
//! `DATA_DIR/agent/pods` (kube's `/var/lib/kubelet/pods`) and PLUGIN is kube's escaped
//! plugin name (`kubernetes.io~configmap`).
//!
//! - emptyDir: a 0777 directory; `medium: Memory` a tmpfs of the smallest of the node's
//!   allocatable memory, the pod's memory limit and the volume's sizeLimit.
//! - hostPath: the node's path itself, after kube's type checks ([`host_path`]).
//! - configMap, secret, downwardAPI, projected: files written by kube's atomic writer
//!   ([`atomic_writer`]); secret and projected volumes on a tmpfs, so secrets never reach
//!   the disk. [`update`] rewrites them when their sources change and renews service-account
//!   tokens at 80% of their lifetime.
//! - persistentVolumeClaim: the claim's bound PersistentVolume, of type hostPath or local.
//!
//! [`PodVolumes::mounts_for`] gives a container's bind mounts (subPath, readOnly,
//! propagation); [`cleanup`] unmounts and removes a pod's directory.

pub mod atomic_writer;
pub mod host_path;
pub mod tmpfs;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::chrono::{DateTime, Duration, Utc};
use rkube_api::validate_types::Quantity as Amount;

use crate::downward::{self, FieldError};
use crate::envvars;
use crate::objects::{ObjectError, ObjectSource};
use atomic_writer::{FileProjection, WriteError};
use host_path::HostPathError;
use tmpfs::MountError;

pub const EMPTY_DIR_PLUGIN: &str = "kubernetes.io~empty-dir";
pub const CONFIG_MAP_PLUGIN: &str = "kubernetes.io~configmap";
pub const SECRET_PLUGIN: &str = "kubernetes.io~secret";
pub const DOWNWARD_API_PLUGIN: &str = "kubernetes.io~downward-api";
pub const PROJECTED_PLUGIN: &str = "kubernetes.io~projected";

/// The mode of projected files when the volume says none (the API's default, 0644).
const DEFAULT_MODE: i32 = 0o644;
/// kube's token manager renews a token older than a day whatever its lifetime.
const MAX_TOKEN_AGE: i64 = 24 * 3600;

/// What pods' volumes are set up with.
pub struct VolumeContext<'a> {
    /// Where ConfigMaps, Secrets, claims, PersistentVolumes and tokens come from.
    pub objects: &'a dyn ObjectSource,
    /// `DATA_DIR/agent/pods`: each pod's directory is `PODS_DIR/UID`.
    pub pods_dir: &'a Path,
    /// The node's allocatable resources (tmpfs sizes, downward API limits).
    pub allocatable: &'a BTreeMap<String, Quantity>,
}

/// Why one volume could not be set up; the text after kube's
/// `MountVolume.SetUp failed for volume "NAME" : `.
#[derive(Debug, thiserror::Error)]
pub enum SetUpError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    #[error("unknown storage medium {0:?}")]
    Medium(String),
    #[error("path {0:?} does not exist")]
    LocalPathMissing(String),
    #[error("clusterTrustBundle projections are not supported by rkube's kubelet")]
    ClusterTrustBundle,
    #[error("the TokenRequest API answered without a token")]
    NoToken,
    #[error(transparent)]
    HostPath(#[from] HostPathError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Several errors at once (kube's error aggregate: `[a, b]`).
    #[error("[{}]", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Several(Vec<SetUpError>),
}

/// A pod's volume or a container's mount that cannot be made, with kube's messages.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {source}")]
    SetUp {
        volume: String,
        #[source]
        source: SetUpError,
    },
    /// The claim cannot be used yet (absent, unbound, its volume absent); the worker
    /// retries.
    #[error("error processing PVC {namespace}/{claim}: {reason}")]
    Claim {
        volume: String,
        namespace: String,
        claim: String,
        reason: String,
    },
    #[error("volume \"{volume}\" has a type rkube's kubelet does not support")]
    Unsupported { volume: String },
    #[error("cannot find volume \"{volume}\" to mount into container \"{container}\"")]
    MissingVolume { volume: String, container: String },
    #[error("error SubPath `{0}` must not be an absolute path")]
    SubPathAbsolute(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    SubPathBacksteps(String),
    #[error("missing value for {0}")]
    SubPathExpr(String),
    #[error(
        "failed to create subPath directory for volumeMount \"{volume}\" of container \"{container}\""
    )]
    SubPathCreate { volume: String, container: String },
    #[error("failed to prepare subPath for volumeMount \"{volume}\" of container \"{container}\"")]
    SubPathPrepare { volume: String, container: String },
    #[error("invalid MountPropagation mode: \"{0}\"")]
    Propagation(String),
    #[error("failed to clean up {path}: {reason}")]
    Cleanup { path: PathBuf, reason: String },
}

impl VolumeError {
    /// The pod volume this error is about, if any.
    pub fn volume(&self) -> Option<&str> {
        match self {
            VolumeError::SetUp { volume, .. }
            | VolumeError::Claim { volume, .. }
            | VolumeError::Unsupported { volume }
            | VolumeError::MissingVolume { volume, .. }
            | VolumeError::SubPathCreate { volume, .. }
            | VolumeError::SubPathPrepare { volume, .. } => Some(volume),
            _ => None,
        }
    }
}

/// How mounts propagate between host and container (CRI `MountPropagation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    #[default]
    Private,
    HostToContainer,
    Bidirectional,
}

/// One bind mount of a container (CRI `Mount`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The pod volume it comes from.
    pub volume: String,
    pub container_path: String,
    pub host_path: PathBuf,
    pub read_only: bool,
    pub propagation: Propagation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    EmptyDir,
    HostPath,
    ConfigMap,
    Secret,
    DownwardApi,
    Projected,
    Claim,
}

/// A volume set up on the node.
#[derive(Clone, Debug)]
pub struct PreparedVolume {
    /// Where it is on the node.
    pub host_path: PathBuf,
    /// The plugin mounts it read-only whatever the volumeMount says (configMap, secret,
    /// downwardAPI, projected, and a claim with `readOnly`).
    pub read_only: bool,
    kind: Kind,
}

/// A service-account token written into a projected volume.
#[derive(Clone, Debug)]
struct IssuedToken {
    token: String,
    expires: DateTime<Utc>,
    lifetime: i64,
}

impl IssuedToken {
    /// kube's token manager: renew past 80% of the lifetime, or after a day.
    fn refresh_at(&self) -> DateTime<Utc> {
        let issued = self.expires - Duration::seconds(self.lifetime);
        let by_lifetime = self.expires - Duration::seconds(self.lifetime * 20 / 100);
        by_lifetime.min(issued + Duration::seconds(MAX_TOKEN_AGE))
    }
}

/// The volumes of one pod, set up by [`prepare`].
#[derive(Debug, Default)]
pub struct PodVolumes {
    pod_dir: PathBuf,
    volumes: BTreeMap<String, PreparedVolume>,
    /// Tokens by (volume, source index).
    tokens: HashMap<(String, usize), IssuedToken>,
}

impl PodVolumes {
    /// `PODS_DIR/UID`.
    pub fn pod_dir(&self) -> &Path {
        &self.pod_dir
    }

    pub fn get(&self, volume: &str) -> Option<&PreparedVolume> {
        self.volumes.get(volume)
    }

    /// When the next service-account token must be renewed by [`update`].
    pub fn next_token_refresh(&self) -> Option<DateTime<Utc>> {
        self.tokens.values().map(IssuedToken::refresh_at).min()
    }

    /// The bind mounts of `container` (kube's `makeMounts`): its volumeMounts with subPath
    /// or subPathExpr (expanded with `env`, the container's environment) resolved inside
    /// the volume, readOnly, and propagation.
    pub fn mounts_for(
        &self,
        container: &Container,
        env: &[(String, String)],
    ) -> Result<Vec<Mount>, VolumeError> {
        let mut out = Vec::new();
        for m in container.volume_mounts.iter().flatten() {
            let volume = self
                .volumes
                .get(&m.name)
                .ok_or_else(|| VolumeError::MissingVolume {
                    volume: m.name.clone(),
                    container: container.name.clone(),
                })?;
            let sub_path = match m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
                Some(expr) => expand_sub_path(expr, env)?,
                None => m.sub_path.clone().unwrap_or_default(),
            };
            let host_path = if sub_path.is_empty() {
                volume.host_path.clone()
            } else {
                if sub_path.starts_with('/') {
                    return Err(VolumeError::SubPathAbsolute(sub_path));
                }
                if sub_path.split('/').any(|p| p == "..") {
                    return Err(VolumeError::SubPathBacksteps(sub_path));
                }
                resolve_sub_path(&volume.host_path, &sub_path).map_err(|e| match e {
                    SubPathFailure::Create => VolumeError::SubPathCreate {
                        volume: m.name.clone(),
                        container: container.name.clone(),
                    },
                    SubPathFailure::Escape => VolumeError::SubPathPrepare {
                        volume: m.name.clone(),
                        container: container.name.clone(),
                    },
                })?
            };
            let container_path = if m.mount_path.starts_with('/') {
                m.mount_path.clone()
            } else {
                format!("/{}", m.mount_path)
            };
            let propagation = match m.mount_propagation.as_deref() {
                None | Some("None") => Propagation::Private,
                Some("HostToContainer") => Propagation::HostToContainer,
                Some("Bidirectional") => Propagation::Bidirectional,
                Some(other) => return Err(VolumeError::Propagation(other.to_owned())),
            };
            out.push(Mount {
                volume: m.name.clone(),
                container_path,
                host_path,
                read_only: m.read_only.unwrap_or(false) || volume.read_only,
                propagation,
            });
        }
        Ok(out)
    }
}

/// kube's `ExpandContainerVolumeMounts`: every referenced variable must have a value.
fn expand_sub_path(expr: &str, env: &[(String, String)]) -> Result<String, VolumeError> {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let missing = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let expanded = envvars::expand(expr, |name| match map.get(name) {
        Some(v) if !v.is_empty() => Some((*v).to_owned()),
        _ => {
            missing.borrow_mut().insert(name.to_owned());
            Some(String::new())
        }
    });
    let missing = missing.into_inner();
    if !missing.is_empty() {
        return Err(VolumeError::SubPathExpr(
            missing.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    Ok(expanded)
}

enum SubPathFailure {
    Create,
    Escape,
}

/// The subPath inside the volume, made as directories (with the volume's mode) where
/// missing, refusing any symlink that leads out of the volume.
fn resolve_sub_path(root: &Path, sub_path: &str) -> Result<PathBuf, SubPathFailure> {
    let root = std::fs::canonicalize(root).map_err(|_| SubPathFailure::Escape)?;
    let mode = std::fs::metadata(&root)
        .map(|m| m.permissions().mode() & 0o7777)
        .map_err(|_| SubPathFailure::Escape)?;
    let mut current = root.clone();
    for part in Path::new(sub_path).components() {
        let Component::Normal(part) = part else {
            continue;
        };
        let next = current.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                let real = std::fs::canonicalize(&next).map_err(|_| SubPathFailure::Escape)?;
                if !real.starts_with(&root) {
                    return Err(SubPathFailure::Escape);
                }
                current = real;
            }
            Err(_) => {
                std::fs::create_dir(&next).map_err(|_| SubPathFailure::Create)?;
                std::fs::set_permissions(&next, std::fs::Permissions::from_mode(mode))
                    .map_err(|_| SubPathFailure::Create)?;
                current = next;
            }
        }
    }
    Ok(current)
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SetUpError + use<> {
    let path = path.to_owned();
    move |source| SetUpError::Io { op, path, source }
}

/// Sets up every volume of `pod` under `PODS_DIR/UID`. Idempotent: a pod whose volumes are
/// already there (an agent restarted) keeps them, and unchanged files are not rewritten.
pub async fn prepare(ctx: &VolumeContext<'_>, pod: &Pod) -> Result<PodVolumes, VolumeError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let pod_dir = ctx.pods_dir.join(uid);
    let mut volumes = PodVolumes {
        pod_dir: pod_dir.clone(),
        ..Default::default()
    };
    for dir in [
        pod_dir.clone(),
        pod_dir.join("volumes"),
        pod_dir.join("plugins"),
    ] {
        make_dir(&dir, 0o750).map_err(|source| VolumeError::SetUp {
            volume: String::new(),
            source,
        })?;
    }
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let prepared = set_up(ctx, pod, volume, &mut volumes).await?;
        volumes.volumes.insert(volume.name.clone(), prepared);
    }
    Ok(volumes)
}

/// Brings the configMap, secret, downwardAPI and projected volumes of `pod` up to date
/// (kube's periodic remount): rewrites the files whose sources changed and renews the
/// service-account tokens due for it. Other volumes are left as they are.
pub async fn update(
    ctx: &VolumeContext<'_>,
    pod: &Pod,
    volumes: &mut PodVolumes,
) -> Result<(), VolumeError> {
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let kind = volumes.volumes.get(&volume.name).map(|v| v.kind);
        if matches!(
            kind,
            Some(Kind::ConfigMap | Kind::Secret | Kind::DownwardApi | Kind::Projected)
        ) {
            let prepared = set_up(ctx, pod, volume, volumes).await?;
            volumes.volumes.insert(volume.name.clone(), prepared);
        }
    }
    Ok(())
}

/// Unmounts what is mounted under a pod's directory (its tmpfs volumes), deepest first,
/// then removes the directory.
pub async fn cleanup(pod_dir: &Path) -> Result<(), VolumeError> {
    let pod_dir = pod_dir.to_owned();
    let path = pod_dir.clone();
    tokio::task::spawn_blocking(move || cleanup_blocking(&pod_dir))
        .await
        .map_err(|e| VolumeError::Cleanup {
            path,
            reason: e.to_string(),
        })?
}

fn cleanup_blocking(pod_dir: &Path) -> Result<(), VolumeError> {
    let fail = |reason: String| VolumeError::Cleanup {
        path: pod_dir.to_owned(),
        reason,
    };
    let real = match std::fs::canonicalize(pod_dir) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(e.to_string())),
    };
    let mut under: Vec<PathBuf> = tmpfs::mounts()
        .map_err(|e| fail(e.to_string()))?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(&real))
        .collect();
    under.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    under.dedup();
    for mount_point in under {
        tmpfs::unmount(&mount_point).map_err(|e| fail(e.to_string()))?;
    }
    std::fs::remove_dir_all(&real).map_err(|e| fail(e.to_string()))
}

fn make_dir(dir: &Path, mode: u32) -> Result<(), SetUpError> {
    std::fs::create_dir_all(dir).map_err(io_error("mkdir", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(io_error("chmod", dir))
}

fn volume_dir(volumes: &PodVolumes, plugin: &str, name: &str) -> PathBuf {
    volumes.pod_dir.join("volumes").join(plugin).join(name)
}

async fn set_up(
    ctx: &VolumeContext<'_>,
    pod: &Pod,
    volume: &Volume,
    state: &mut PodVolumes,
) -> Result<PreparedVolume, VolumeError> {
    let name = volume.name.clone();
    let setup = |source: SetUpError| VolumeError::SetUp {
        volume: name.clone(),
        source,
    };
    let prepared = |host_path: PathBuf, read_only: bool, kind: Kind| PreparedVolume {
        host_path,
        read_only,
        kind,
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    if let Some(src) = &volume.empty_dir {
        let dir = volume_dir(state, EMPTY_DIR_PLUGIN, &name);
        let medium = src.medium.as_deref().unwrap_or("");
        match medium {
            "" => make_dir(&dir, 0o777).map_err(setup)?,
            "Memory" => {
                let size = memory_size(pod, ctx.allocatable, src.size_limit.as_ref());
                mount_tmpfs(&dir, size).map_err(setup)?;
            }
            other => return Err(setup(SetUpError::Medium(other.to_owned()))),
        }
        return Ok(prepared(dir, false, Kind::EmptyDir));
    }
    if let Some(src) = &volume.host_path {
        let path = PathBuf::from(&src.path);
        host_path::check_type(&path, src.type_.as_deref().unwrap_or(""))
            .map_err(|e| setup(e.into()))?;
        return Ok(prepared(path, false, Kind::HostPath));
    }
    if let Some(src) = &volume.config_map {
        let dir = volume_dir(state, CONFIG_MAP_PLUGIN, &name);
        make_dir(&dir, 0o777).map_err(setup)?;
        let optional = src.optional.unwrap_or(false);
        let cm = get_config_map(ctx, namespace, &src.name, optional)
            .await
            .map_err(setup)?;
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        let payload =
            config_map_payload(src.items.as_deref(), &cm, mode, optional).map_err(setup)?;
        atomic_writer::write(&dir, &payload).map_err(|e| setup(e.into()))?;
        return Ok(prepared(dir, true, Kind::ConfigMap));
    }
    if let Some(src) = &volume.secret {
        let dir = volume_dir(state, SECRET_PLUGIN, &name);
        mount_tmpfs(&dir, memory_size(pod, ctx.allocatable, None)).map_err(setup)?;
        let optional = src.optional.unwrap_or(false);
        let secret_name = src.secret_name.clone().unwrap_or_default();
        let secret = get_secret(ctx, namespace, &secret_name, optional)
            .await
            .map_err(setup)?;
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        let payload =
            secret_payload(src.items.as_deref(), &secret, mode, optional).map_err(setup)?;
        atomic_writer::write(&dir, &payload).map_err(|e| setup(e.into()))?;
        return Ok(prepared(dir, true, Kind::Secret));
    }
    if let Some(src) = &volume.downward_api {
        let dir = volume_dir(state, DOWNWARD_API_PLUGIN, &name);
        make_dir(&dir, 0o777).map_err(setup)?;
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        let payload =
            downward_payload(src.items.as_deref().unwrap_or(&[]), pod, ctx, mode).map_err(setup)?;
        atomic_writer::write(&dir, &payload).map_err(|e| setup(e.into()))?;
        return Ok(prepared(dir, true, Kind::DownwardApi));
    }
    if let Some(src) = &volume.projected {
        let dir = volume_dir(state, PROJECTED_PLUGIN, &name);
        mount_tmpfs(&dir, memory_size(pod, ctx.allocatable, None)).map_err(setup)?;
        let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
        let mut payload = BTreeMap::new();
        let mut errors = Vec::new();
        // Together: a service-account volume's token request and its kube-root-ca.crt GET
        // would otherwise wait on each other before the pod's sandbox can start.
        let parts = src
            .sources
            .iter()
            .flatten()
            .enumerate()
            .map(|(index, source)| {
                projected_source(ctx, pod, &name, index, source, mode, &state.tokens)
            });
        for part in futures_util::future::join_all(parts).await {
            match part {
                Ok((files, issued)) => {
                    payload.extend(files);
                    state.tokens.extend(issued);
                }
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => {}
            1 => return Err(setup(errors.remove(0))),
            _ => return Err(setup(SetUpError::Several(errors))),
        }
        atomic_writer::write(&dir, &payload).map_err(|e| setup(e.into()))?;
        return Ok(prepared(dir, true, Kind::Projected));
    }
    if let Some(src) = &volume.persistent_volume_claim {
        let path = claimed_path(ctx, namespace, &name, &src.claim_name).await?;
        return Ok(prepared(path, src.read_only.unwrap_or(false), Kind::Claim));
    }
    Err(VolumeError::Unsupported { volume: name })
}

/// Makes `dir` and mounts a tmpfs on it unless one is there already (system calls that
/// take microseconds: done in place, as the volume's other file calls are).
fn mount_tmpfs(dir: &Path, size: Option<i64>) -> Result<(), SetUpError> {
    make_dir(dir, 0o777)?;
    let mounted = tmpfs::is_tmpfs_mount(dir).map_err(io_error("statfs", dir))?;
    if !mounted {
        tmpfs::mount(dir, size)?;
    }
    Ok(())
}

/// kube's `calculateEmptyDirMemorySize`: the node's allocatable memory, or less: the pod's
/// memory limit (when every container has one), then the volume's sizeLimit.
fn memory_size(
    pod: &Pod,
    allocatable: &BTreeMap<String, Quantity>,
    size_limit: Option<&Quantity>,
) -> Option<i64> {
    let bytes = |q: &Quantity| Amount::parse(&q.0).map(|a| a.int_value()).ok();
    let mut size = allocatable.get("memory").and_then(bytes)?;
    let limit_of = |c: &Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory"))
            .and_then(bytes)
    };
    if let Some(spec) = &pod.spec {
        let app: Option<Vec<i64>> = spec.containers.iter().map(limit_of).collect();
        let init: Option<Vec<i64>> = spec
            .init_containers
            .iter()
            .flatten()
            .map(limit_of)
            .collect();
        if let (Some(app), Some(init)) = (app, init) {
            let sum: i64 = app.iter().sum();
            let limit = init.into_iter().fold(sum, i64::max);
            if limit > 0 && limit <= size {
                size = limit;
            }
        }
    }
    if let Some(limit) = size_limit.and_then(bytes)
        && limit > 0
        && limit <= size
    {
        size = limit;
    }
    (size > 0).then_some(size)
}

async fn get_config_map(
    ctx: &VolumeContext<'_>,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<ConfigMap, SetUpError> {
    match ctx.objects.config_map(namespace, name).await? {
        Some(cm) => Ok(cm),
        None if optional => Ok(ConfigMap::default()),
        None => Err(SetUpError::ConfigMapNotFound(name.to_owned())),
    }
}

async fn get_secret(
    ctx: &VolumeContext<'_>,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<Secret, SetUpError> {
    match ctx.objects.secret(namespace, name).await? {
        Some(s) => Ok(s),
        None if optional => Ok(Secret::default()),
        None => Err(SetUpError::SecretNotFound(name.to_owned())),
    }
}

fn file(data: Vec<u8>, mode: i32) -> FileProjection {
    FileProjection {
        data,
        mode: u32::try_from(mode).unwrap_or(0o644),
    }
}

/// kube's configmap `MakePayload`: every key (data and binaryData) with the default mode,
/// or the listed items at their paths.
fn config_map_payload(
    items: Option<&[KeyToPath]>,
    cm: &ConfigMap,
    default_mode: i32,
    optional: bool,
) -> Result<BTreeMap<String, FileProjection>, SetUpError> {
    let lookup = |key: &str| {
        cm.data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|s| s.as_bytes().to_vec())
            .or_else(|| {
                cm.binary_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .map(|b| b.0.clone())
            })
    };
    let mut payload = BTreeMap::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in cm.data.iter().flatten() {
                payload.insert(k.clone(), file(v.as_bytes().to_vec(), default_mode));
            }
            for (k, v) in cm.binary_data.iter().flatten() {
                payload.insert(k.clone(), file(v.0.clone(), default_mode));
            }
        }
        Some(items) => {
            for item in items {
                match lookup(&item.key) {
                    Some(data) => {
                        payload.insert(
                            item.path.clone(),
                            file(data, item.mode.unwrap_or(default_mode)),
                        );
                    }
                    None if optional => {}
                    None => return Err(SetUpError::ConfigMapKey(item.key.clone())),
                }
            }
        }
    }
    Ok(payload)
}

/// kube's secret `MakePayload`.
fn secret_payload(
    items: Option<&[KeyToPath]>,
    secret: &Secret,
    default_mode: i32,
    optional: bool,
) -> Result<BTreeMap<String, FileProjection>, SetUpError> {
    let mut payload = BTreeMap::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in secret.data.iter().flatten() {
                payload.insert(k.clone(), file(v.0.clone(), default_mode));
            }
        }
        Some(items) => {
            for item in items {
                match secret.data.as_ref().and_then(|d| d.get(&item.key)) {
                    Some(v) => {
                        payload.insert(
                            item.path.clone(),
                            file(v.0.clone(), item.mode.unwrap_or(default_mode)),
                        );
                    }
                    None if optional => {}
                    None => return Err(SetUpError::SecretKey(item.key.clone())),
                }
            }
        }
    }
    Ok(payload)
}

/// kube's downwardAPI `CollectData`: each item's field or resource; errors aggregated.
fn downward_payload(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    ctx: &VolumeContext<'_>,
    default_mode: i32,
) -> Result<BTreeMap<String, FileProjection>, SetUpError> {
    let mut payload = BTreeMap::new();
    let mut errors = Vec::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            downward::metadata_field(pod, &f.field_path)
        } else if let Some(r) = &item.resource_field_ref {
            downward::resource_value(r, pod, None, ctx.allocatable)
        } else {
            Ok(String::new())
        };
        match value {
            Ok(v) => {
                payload.insert(
                    item.path.clone(),
                    file(v.into_bytes(), item.mode.unwrap_or(default_mode)),
                );
            }
            Err(e) => errors.push(SetUpError::Field(e)),
        }
    }
    match errors.len() {
        0 => Ok(payload),
        1 => Err(errors.remove(0)),
        _ => Err(SetUpError::Several(errors)),
    }
}

/// One source's files, and the token it was newly issued, to keep until its refresh.
type Projected = (
    BTreeMap<String, FileProjection>,
    Option<((String, usize), IssuedToken)>,
);

/// One source of a projected volume.
async fn projected_source(
    ctx: &VolumeContext<'_>,
    pod: &Pod,
    volume: &str,
    index: usize,
    source: &k8s_openapi::api::core::v1::VolumeProjection,
    default_mode: i32,
    tokens: &HashMap<(String, usize), IssuedToken>,
) -> Result<Projected, SetUpError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    if let Some(src) = &source.config_map {
        let optional = src.optional.unwrap_or(false);
        let cm = get_config_map(ctx, namespace, &src.name, optional).await?;
        return config_map_payload(src.items.as_deref(), &cm, default_mode, optional)
            .map(|files| (files, None));
    }
    if let Some(src) = &source.secret {
        let optional = src.optional.unwrap_or(false);
        let secret = get_secret(ctx, namespace, &src.name, optional).await?;
        return secret_payload(src.items.as_deref(), &secret, default_mode, optional)
            .map(|files| (files, None));
    }
    if let Some(src) = &source.downward_api {
        return downward_payload(src.items.as_deref().unwrap_or(&[]), pod, ctx, default_mode)
            .map(|files| (files, None));
    }
    if let Some(src) = &source.service_account_token {
        let key = (volume.to_owned(), index);
        let now = Utc::now();
        let cached = tokens.get(&key).filter(|t| now < t.refresh_at()).cloned();
        let (token, issued) = match cached {
            Some(t) => (t, None),
            None => {
                let t = request_token(ctx, pod, src.audience.as_deref(), src.expiration_seconds)
                    .await?;
                (t.clone(), Some((key, t)))
            }
        };
        let mut payload = BTreeMap::new();
        payload.insert(
            src.path.clone(),
            file(token.token.into_bytes(), default_mode),
        );
        return Ok((payload, issued));
    }
    if source.cluster_trust_bundle.is_some() {
        return Err(SetUpError::ClusterTrustBundle);
    }
    Ok((BTreeMap::new(), None))
}

/// A token for the pod's service account, bound to the pod (kube's projected
/// `serviceAccountToken`).
async fn request_token(
    ctx: &VolumeContext<'_>,
    pod: &Pod,
    audience: Option<&str>,
    expiration_seconds: Option<i64>,
) -> Result<IssuedToken, SetUpError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audience
                .filter(|a| !a.is_empty())
                .map(|a| vec![a.to_owned()])
                .unwrap_or_default(),
            expiration_seconds,
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let answer = ctx
        .objects
        .service_account_token(namespace, &account, &request)
        .await?;
    let status = answer.status.ok_or(SetUpError::NoToken)?;
    let expires = status.expiration_timestamp.0;
    let lifetime = answer
        .spec
        .expiration_seconds
        .or(expiration_seconds)
        .unwrap_or(3600);
    Ok(IssuedToken {
        token: status.token,
        expires,
        lifetime,
    })
}

/// The node path of a claim's PersistentVolume (hostPath or local), as kube's volume
/// manager finds it: the claim must be bound, and its volume must point back at it.
async fn claimed_path(
    ctx: &VolumeContext<'_>,
    namespace: &str,
    volume: &str,
    claim_name: &str,
) -> Result<PathBuf, VolumeError> {
    let claim_error = |reason: String| VolumeError::Claim {
        volume: volume.to_owned(),
        namespace: namespace.to_owned(),
        claim: claim_name.to_owned(),
        reason,
    };
    let claim = ctx
        .objects
        .persistent_volume_claim(namespace, claim_name)
        .await
        .map_err(|e| claim_error(format!("failed to fetch PVC from API server: {e}")))?
        .ok_or_else(|| {
            claim_error(format!(
                "failed to fetch PVC from API server: persistentvolumeclaims \"{claim_name}\" not found"
            ))
        })?;
    if claim.metadata.deletion_timestamp.is_some() {
        return Err(claim_error(
            "can't start pod because PVC is being deleted".to_owned(),
        ));
    }
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
    let pv_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|n| !n.is_empty());
    let (Some("Bound"), Some(pv_name)) = (phase, pv_name) else {
        return Err(claim_error("PVC is not bound".to_owned()));
    };
    let pv = ctx
        .objects
        .persistent_volume(&pv_name)
        .await
        .map_err(|e| claim_error(format!("failed to fetch PV {pv_name} from API server: {e}")))?
        .ok_or_else(|| {
            claim_error(format!(
                "failed to fetch PV {pv_name} from API server: persistentvolumes \"{pv_name}\" not found"
            ))
        })?;
    let claim_uid = claim.metadata.uid.clone().unwrap_or_default();
    let spec = pv.spec.unwrap_or_default();
    match spec
        .claim_ref
        .as_ref()
        .map(|r| r.uid.clone().unwrap_or_default())
    {
        None => {
            return Err(claim_error(format!(
                "found PV object {pv_name} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"
            )));
        }
        Some(uid) if uid != claim_uid => {
            return Err(claim_error(format!(
                "found PV object {pv_name} but its pv.Spec.ClaimRef.UID {uid} does not point to claim.UID {claim_uid}"
            )));
        }
        Some(_) => {}
    }
    let setup = |source: SetUpError| VolumeError::SetUp {
        volume: volume.to_owned(),
        source,
    };
    if let Some(hp) = &spec.host_path {
        let path = PathBuf::from(&hp.path);
        host_path::check_type(&path, hp.type_.as_deref().unwrap_or(""))
            .map_err(|e| setup(e.into()))?;
        return Ok(path);
    }
    if let Some(local) = &spec.local {
        let path = PathBuf::from(&local.path);
        if std::fs::metadata(&path).is_err() {
            return Err(setup(SetUpError::LocalPathMissing(local.path.clone())));
        }
        return Ok(path);
    }
    Err(claim_error(format!(
        "PV {pv_name} is neither hostPath nor local, the persistent volume types rkube's kubelet mounts"
    )))
}

#[cfg(test)]
mod tests;
