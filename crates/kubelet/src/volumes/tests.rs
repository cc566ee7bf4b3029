//! Volume plugins on temporary directories (no mounts: tmpfs volumes are covered by the
//! kubelet_volumes end-to-end test, which runs as root).

use super::*;
use crate::objects::MemoryObjects;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, DownwardAPIVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource,
    ObjectFieldSelector, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeClaimVolumeSource,
    PersistentVolumeSpec, PodSpec, ResourceFieldSelector, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn meta(ns: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(str::to_owned),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    }
}

fn pod(volumes: Vec<Volume>) -> Pod {
    let mut m = meta(Some("ns"), "web");
    m.labels = Some([("app".to_owned(), "web".to_owned())].into());
    Pod {
        metadata: m,
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                ..Default::default()
            }],
            volumes: Some(volumes),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn config_map(data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: meta(Some("ns"), "cfg"),
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn allocatable() -> BTreeMap<String, Quantity> {
    [
        ("cpu".to_owned(), Quantity("2".into())),
        ("memory".to_owned(), Quantity("4Gi".into())),
    ]
    .into()
}

fn read_link(p: &Path) -> String {
    std::fs::read_link(p)
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn config_map_volumes_are_written_and_updated() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut objects = MemoryObjects {
        config_maps: vec![config_map(&[("a.conf", "one"), ("b.conf", "two")])],
        ..Default::default()
    };
    let alloc = allocatable();
    let p = pod(vec![
        Volume {
            name: "all".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "cfg".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "some".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "cfg".into(),
                default_mode: Some(0o600),
                items: Some(vec![KeyToPath {
                    key: "b.conf".into(),
                    path: "sub/b".into(),
                    mode: Some(0o640),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        },
    ]);
    let mut volumes = {
        let ctx = VolumeContext {
            objects: &objects,
            pods_dir: dir.path(),
            allocatable: &alloc,
        };
        prepare(&ctx, &p).await?
    };
    let all = dir
        .path()
        .join("uid-web/volumes/kubernetes.io~configmap/all");
    assert_eq!(volumes.get("all").map(|v| &v.host_path), Some(&all));
    assert_eq!(volumes.get("all").map(|v| v.read_only), Some(true));
    assert_eq!(std::fs::read_to_string(all.join("a.conf"))?, "one");
    assert_eq!(read_link(&all.join("a.conf")), "..data/a.conf");
    let some = dir
        .path()
        .join("uid-web/volumes/kubernetes.io~configmap/some");
    assert_eq!(std::fs::read_to_string(some.join("sub/b"))?, "two");
    assert!(std::fs::symlink_metadata(some.join("a.conf")).is_err());
    let mode = std::fs::metadata(some.join("sub/b"))?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let mode = std::fs::metadata(all.join("b.conf"))?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    // The ConfigMap changes: update rewrites the files.
    objects.config_maps = vec![config_map(&[("a.conf", "uno"), ("b.conf", "two")])];
    let before = read_link(&all.join("..data"));
    let ctx = VolumeContext {
        objects: &objects,
        pods_dir: dir.path(),
        allocatable: &alloc,
    };
    update(&ctx, &p, &mut volumes).await?;
    assert_eq!(std::fs::read_to_string(all.join("a.conf"))?, "uno");
    assert_ne!(read_link(&all.join("..data")), before);
    // Unchanged: the data link stays.
    let some_data = read_link(&some.join("..data"));
    update(&ctx, &p, &mut volumes).await?;
    assert_eq!(read_link(&some.join("..data")), some_data);

    // The volumes go with the pod directory.
    cleanup(volumes.pod_dir()).await?;
    assert!(!dir.path().join("uid-web").exists());
    Ok(())
}

#[tokio::test]
async fn missing_config_maps_and_keys_fail_with_kube_messages() -> TestResult {
    let dir = tempfile::tempdir()?;
    let objects = MemoryObjects {
        config_maps: vec![config_map(&[("a", "1")])],
        ..Default::default()
    };
    let alloc = allocatable();
    let ctx = VolumeContext {
        objects: &objects,
        pods_dir: dir.path(),
        allocatable: &alloc,
    };
    let volume = |name: &str, key: &str, optional: Option<bool>| Volume {
        name: "v".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: name.into(),
            optional,
            items: Some(vec![KeyToPath {
                key: key.into(),
                path: "f".into(),
                mode: None,
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = prepare(&ctx, &pod(vec![volume("absent", "a", None)]))
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("MountVolume.SetUp failed for volume \"v\" : configmap \"absent\" not found")
    );
    let err = prepare(&ctx, &pod(vec![volume("cfg", "nope", None)]))
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "MountVolume.SetUp failed for volume \"v\" : configmap references non-existent config key: nope"
        )
    );
    // Optional: an empty volume.
    let v = prepare(&ctx, &pod(vec![volume("absent", "a", Some(true))])).await?;
    let path = v.get("v").map(|v| v.host_path.clone()).unwrap_or_default();
    assert!(path.join("..data").exists());
    assert!(!path.join("f").exists());
    Ok(())
}

#[tokio::test]
async fn downward_api_files_in_kube_format() -> TestResult {
    let dir = tempfile::tempdir()?;
    let objects = MemoryObjects::default();
    let alloc = allocatable();
    let ctx = VolumeContext {
        objects: &objects,
        pods_dir: dir.path(),
        allocatable: &alloc,
    };
    let item = |path: &str, field: &str| DownwardAPIVolumeFile {
        path: path.into(),
        field_ref: Some(ObjectFieldSelector {
            api_version: Some("v1".into()),
            field_path: field.into(),
        }),
        ..Default::default()
    };
    let mut p = pod(vec![Volume {
        name: "info".into(),
        downward_api: Some(DownwardAPIVolumeSource {
            items: Some(vec![
                item("name", "metadata.name"),
                item("labels", "metadata.labels"),
                item("annotations", "metadata.annotations"),
                DownwardAPIVolumeFile {
                    path: "cpu_limit".into(),
                    resource_field_ref: Some(ResourceFieldSelector {
                        container_name: Some("app".into()),
                        resource: "limits.cpu".into(),
                        divisor: Some(Quantity("1m".into())),
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    p.metadata.annotations = Some(
        [
            ("z".to_owned(), "last".to_owned()),
            ("a/b".to_owned(), "say \"hi\"".to_owned()),
        ]
        .into(),
    );
    let v = prepare(&ctx, &p).await?;
    let d = v
        .get("info")
        .map(|v| v.host_path.clone())
        .unwrap_or_default();
    assert!(d.ends_with("volumes/kubernetes.io~downward-api/info"));
    assert_eq!(std::fs::read_to_string(d.join("name"))?, "web");
    assert_eq!(std::fs::read_to_string(d.join("labels"))?, "app=\"web\"");
    assert_eq!(
        std::fs::read_to_string(d.join("annotations"))?,
        "a/b=\"say \\\"hi\\\"\"\nz=\"last\""
    );
    // No CPU limit: the node's allocatable (2 CPUs) in millicores.
    assert_eq!(std::fs::read_to_string(d.join("cpu_limit"))?, "2000");

    // A field volumes do not support.
    let bad = pod(vec![Volume {
        name: "bad".into(),
        downward_api: Some(DownwardAPIVolumeSource {
            items: Some(vec![item("node", "spec.nodeName")]),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    let err = prepare(&ctx, &bad).await.err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("MountVolume.SetUp failed for volume \"bad\" : unsupported fieldPath: spec.nodeName")
    );
    Ok(())
}

#[tokio::test]
async fn empty_dir_host_path_and_mounts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let host = tempfile::tempdir()?;
    let objects = MemoryObjects::default();
    let alloc = allocatable();
    let ctx = VolumeContext {
        objects: &objects,
        pods_dir: dir.path(),
        allocatable: &alloc,
    };
    let data_dir = host.path().join("data");
    let mut p = pod(vec![
        Volume {
            name: "scratch".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        Volume {
            name: "data".into(),
            host_path: Some(HostPathVolumeSource {
                path: data_dir.to_string_lossy().into_owned(),
                type_: Some("DirectoryOrCreate".into()),
            }),
            ..Default::default()
        },
    ]);
    let v = prepare(&ctx, &p).await?;
    let scratch = dir
        .path()
        .join("uid-web/volumes/kubernetes.io~empty-dir/scratch");
    assert!(scratch.is_dir());
    assert_eq!(
        std::fs::metadata(&scratch)?.permissions().mode() & 0o777,
        0o777
    );
    assert!(data_dir.is_dir());

    let mount = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    };
    let container = Container {
        name: "app".into(),
        volume_mounts: Some(vec![
            mount("scratch", "/scratch"),
            VolumeMount {
                read_only: Some(true),
                sub_path: Some("logs/app".into()),
                mount_propagation: Some("HostToContainer".into()),
                ..mount("data", "/var/log/app")
            },
            VolumeMount {
                sub_path_expr: Some("$(POD_NAME)".into()),
                ..mount("scratch", "relative")
            },
        ]),
        ..Default::default()
    };
    let env = vec![("POD_NAME".to_owned(), "web".to_owned())];
    let mounts = v.mounts_for(&container, &env)?;
    assert_eq!(
        mounts[0],
        Mount {
            volume: "scratch".into(),
            container_path: "/scratch".into(),
            host_path: scratch.clone(),
            read_only: false,
            propagation: Propagation::Private,
        }
    );
    let real_data = std::fs::canonicalize(&data_dir)?;
    assert_eq!(mounts[1].host_path, real_data.join("logs/app"));
    assert!(real_data.join("logs/app").is_dir());
    assert!(mounts[1].read_only);
    assert_eq!(mounts[1].propagation, Propagation::HostToContainer);
    assert_eq!(mounts[2].container_path, "/relative");
    assert_eq!(
        mounts[2].host_path,
        std::fs::canonicalize(&scratch)?.join("web")
    );

    // kube's subPath checks.
    let with = |m: VolumeMount| Container {
        name: "app".into(),
        volume_mounts: Some(vec![m]),
        ..Default::default()
    };
    let err = |m: VolumeMount| v.mounts_for(&with(m), &env).err().map(|e| e.to_string());
    assert_eq!(
        err(VolumeMount {
            sub_path: Some("/etc".into()),
            ..mount("scratch", "/x")
        })
        .as_deref(),
        Some("error SubPath `/etc` must not be an absolute path")
    );
    assert_eq!(
        err(VolumeMount {
            sub_path: Some("a/../../b".into()),
            ..mount("scratch", "/x")
        })
        .as_deref(),
        Some("unable to provision SubPath `a/../../b`: must not contain '..'")
    );
    assert_eq!(
        err(VolumeMount {
            sub_path_expr: Some("$(NOPE)/$(POD_NAME)".into()),
            ..mount("scratch", "/x")
        })
        .as_deref(),
        Some("missing value for NOPE")
    );
    assert_eq!(
        err(mount("absent", "/x")).as_deref(),
        Some("cannot find volume \"absent\" to mount into container \"app\"")
    );
    assert_eq!(
        err(VolumeMount {
            mount_propagation: Some("Sideways".into()),
            ..mount("scratch", "/x")
        })
        .as_deref(),
        Some("invalid MountPropagation mode: \"Sideways\"")
    );
    // A symlink in the volume that leads out of it is refused.
    std::os::unix::fs::symlink("/etc", scratch.join("escape"))?;
    assert_eq!(
        err(VolumeMount {
            sub_path: Some("escape".into()),
            ..mount("scratch", "/x")
        })
        .as_deref(),
        Some("failed to prepare subPath for volumeMount \"scratch\" of container \"app\"")
    );

    // A hostPath of the wrong type.
    if let Some(spec) = p.spec.as_mut() {
        spec.volumes = Some(vec![Volume {
            name: "sock".into(),
            host_path: Some(HostPathVolumeSource {
                path: data_dir.to_string_lossy().into_owned(),
                type_: Some("Socket".into()),
            }),
            ..Default::default()
        }]);
    }
    let e = prepare(&ctx, &p).await.err().map(|e| e.to_string());
    assert_eq!(
        e,
        Some(format!(
            "MountVolume.SetUp failed for volume \"sock\" : hostPath type check failed: {} is not a socket file",
            data_dir.display()
        ))
    );
    Ok(())
}

#[tokio::test]
async fn claims_resolve_to_their_bound_volume() -> TestResult {
    let dir = tempfile::tempdir()?;
    let local = tempfile::tempdir()?;
    let claim = |phase: Option<&str>, volume: Option<&str>| PersistentVolumeClaim {
        metadata: meta(Some("ns"), "claim"),
        spec: Some(PersistentVolumeClaimSpec {
            volume_name: volume.map(str::to_owned),
            ..Default::default()
        }),
        status: Some(PersistentVolumeClaimStatus {
            phase: phase.map(str::to_owned),
            ..Default::default()
        }),
    };
    let pv = PersistentVolume {
        metadata: meta(None, "pv-1"),
        spec: Some(PersistentVolumeSpec {
            claim_ref: Some(ObjectReference {
                uid: Some("uid-claim".into()),
                ..Default::default()
            }),
            local: Some(k8s_openapi::api::core::v1::LocalVolumeSource {
                path: local.path().to_string_lossy().into_owned(),
                fs_type: None,
            }),
            ..Default::default()
        }),
        status: None,
    };
    let p = pod(vec![Volume {
        name: "data".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: "claim".into(),
            read_only: Some(true),
        }),
        ..Default::default()
    }]);
    let alloc = allocatable();
    let run = |objects: MemoryObjects| {
        let dir = dir.path().to_owned();
        let p = p.clone();
        let alloc = alloc.clone();
        async move {
            let ctx = VolumeContext {
                objects: &objects,
                pods_dir: &dir,
                allocatable: &alloc,
            };
            prepare(&ctx, &p).await
        }
    };
    let err = run(MemoryObjects::default())
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "error processing PVC ns/claim: failed to fetch PVC from API server: persistentvolumeclaims \"claim\" not found"
        )
    );
    let err = run(MemoryObjects {
        claims: vec![claim(Some("Pending"), None)],
        ..Default::default()
    })
    .await
    .err()
    .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("error processing PVC ns/claim: PVC is not bound")
    );
    let v = run(MemoryObjects {
        claims: vec![claim(Some("Bound"), Some("pv-1"))],
        volumes: vec![pv.clone()],
        ..Default::default()
    })
    .await?;
    let data = v.get("data");
    assert_eq!(data.map(|d| d.host_path.as_path()), Some(local.path()));
    assert_eq!(data.map(|d| d.read_only), Some(true));
    let mut other = pv;
    if let Some(s) = other.spec.as_mut() {
        s.claim_ref = Some(ObjectReference {
            uid: Some("someone-else".into()),
            ..Default::default()
        });
    }
    let err = run(MemoryObjects {
        claims: vec![claim(Some("Bound"), Some("pv-1"))],
        volumes: vec![other],
        ..Default::default()
    })
    .await
    .err()
    .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "error processing PVC ns/claim: found PV object pv-1 but its pv.Spec.ClaimRef.UID someone-else does not point to claim.UID uid-claim"
        )
    );
    Ok(())
}

#[test]
fn tokens_are_renewed_at_80_percent_or_after_a_day() {
    let expires = Utc::now();
    let hour = IssuedToken {
        token: String::new(),
        expires,
        lifetime: 3600,
    };
    assert_eq!(hour.refresh_at(), expires - Duration::seconds(720));
    let week = IssuedToken {
        token: String::new(),
        expires,
        lifetime: 7 * 24 * 3600,
    };
    assert_eq!(
        week.refresh_at(),
        expires - Duration::seconds(6 * 24 * 3600)
    );
}

#[test]
fn tmpfs_size_is_the_smallest_limit() {
    let q = |s: &str| Quantity(s.into());
    let alloc = allocatable();
    let mut p = pod(vec![]);
    assert_eq!(memory_size(&p, &alloc, None), Some(4 << 30));
    assert_eq!(memory_size(&p, &alloc, Some(&q("64Mi"))), Some(64 << 20));
    // A sizeLimit over the node's memory does not count.
    assert_eq!(memory_size(&p, &alloc, Some(&q("8Gi"))), Some(4 << 30));
    if let Some(spec) = p.spec.as_mut() {
        spec.containers[0].resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
            limits: Some([("memory".to_owned(), q("128Mi"))].into()),
            ..Default::default()
        });
    }
    assert_eq!(memory_size(&p, &alloc, None), Some(128 << 20));
    assert_eq!(memory_size(&p, &alloc, Some(&q("256Mi"))), Some(128 << 20));
}
