//! One-layer OCI image archives (an image layout in a tar: `oci-layout`, `index.json`, and
//! the blobs), made in memory: the pause image the agent imports at start, and test images
//! made from a static binary (busybox).

use std::io;

use serde_json::json;

/// A file in the image's one layer.
#[derive(Clone, Debug)]
pub enum Entry {
    Dir {
        path: String,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// The image's run configuration (the OCI image config's `config`).
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
}

fn sha256(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    // A fixed time: the same files make the same digests.
    header.set_mtime(0);
    header
}

fn add_file<W: io::Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut header = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    tar.append_data(&mut header, path, data)
}

/// The layer's tar (uncompressed).
fn layer(entries: &[Entry]) -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for entry in entries {
        match entry {
            Entry::Dir { path } => {
                let mut header = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut header, path, io::empty())?;
            }
            Entry::File { path, mode, data } => {
                let mut header = header(tar::EntryType::Regular, *mode, data.len() as u64);
                tar.append_data(&mut header, path, data.as_slice())?;
            }
            Entry::Symlink { path, target } => {
                let mut header = header(tar::EntryType::Symlink, 0o777, 0);
                tar.append_link(&mut header, path, target)?;
            }
        }
    }
    tar.into_inner()
}

/// An OCI image layout archive of one image named `reference` (a full reference,
/// `docker.io/library/busybox:latest`) whose one layer holds `entries`.
pub fn archive(reference: &str, entries: &[Entry], run: &RunConfig) -> io::Result<Vec<u8>> {
    let arch = crate::node::go_arch();
    let layer = layer(entries)?;
    let layer_digest = sha256(&layer);
    let mut config = serde_json::Map::new();
    if !run.entrypoint.is_empty() {
        config.insert("Entrypoint".into(), json!(run.entrypoint));
    }
    if !run.cmd.is_empty() {
        config.insert("Cmd".into(), json!(run.cmd));
    }
    let env = if run.env.is_empty() {
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned()]
    } else {
        run.env.clone()
    };
    config.insert("Env".into(), json!(env));
    if let Some(dir) = &run.working_dir {
        config.insert("WorkingDir".into(), json!(dir));
    }
    let image_config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "rkube"}],
    });
    let image_config = serde_json::to_vec(&image_config)?;
    let config_digest = sha256(&image_config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": image_config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    });
    let manifest = serde_json::to_vec(&manifest)?;
    let manifest_digest = sha256(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {
                // containerd's importer names the image from the first, other tools from
                // the second.
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": reference,
            },
        }],
    });
    let mut tar = tar::Builder::new(Vec::new());
    add_file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add_file(&mut tar, "index.json", &serde_json::to_vec(&index)?)?;
    for (digest, blob) in [
        (&manifest_digest, &manifest),
        (&config_digest, &image_config),
        (&layer_digest, &layer),
    ] {
        let hex = digest.trim_start_matches("sha256:");
        add_file(&mut tar, &format!("blobs/sha256/{hex}"), blob)?;
    }
    tar.into_inner()
}

/// rkube's pause binary (pause/pause.c, compiled static by build.rs).
pub const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// The sandbox image's name; containerd's `sandbox_image` names it too.
pub const PAUSE_IMAGE: &str = "localhost/rkube/pause:1.0";

/// The pause image: `/pause` alone, its entrypoint.
pub fn pause_archive() -> io::Result<Vec<u8>> {
    archive(
        PAUSE_IMAGE,
        &[Entry::File {
            path: "pause".to_owned(),
            mode: 0o755,
            data: PAUSE_BINARY.to_vec(),
        }],
        &RunConfig {
            entrypoint: vec!["/pause".to_owned()],
            working_dir: Some("/".to_owned()),
            ..RunConfig::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn an_archive_is_an_image_layout_whose_digests_match() {
        let bytes = archive(
            "docker.io/library/x:1",
            &[
                Entry::Dir { path: "bin".into() },
                Entry::File {
                    path: "bin/x".into(),
                    mode: 0o755,
                    data: b"#!/bin/sh\n".to_vec(),
                },
                Entry::Symlink {
                    path: "bin/y".into(),
                    target: "x".into(),
                },
            ],
            &RunConfig::default(),
        )
        .expect("archive");
        let mut files = std::collections::HashMap::new();
        let mut tar = tar::Archive::new(bytes.as_slice());
        for entry in tar.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("read");
            files.insert(path, data);
        }
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).expect("index");
        let manifest_ref = &index["manifests"][0];
        assert_eq!(
            manifest_ref["annotations"]["io.containerd.image.name"],
            "docker.io/library/x:1"
        );
        let blob = |digest: &serde_json::Value| {
            let digest = digest.as_str().expect("digest");
            let data = files[&format!("blobs/sha256/{}", &digest[7..])].clone();
            assert_eq!(sha256(&data), digest, "the blob's digest");
            data
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(&manifest_ref["digest"])).expect("manifest");
        let config: serde_json::Value =
            serde_json::from_slice(&blob(&manifest["config"]["digest"])).expect("config");
        let layer = blob(&manifest["layers"][0]["digest"]);
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            manifest["layers"][0]["digest"]
        );
        let names: Vec<String> = tar::Archive::new(layer.as_slice())
            .entries()
            .expect("layer")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["bin", "bin/x", "bin/y"]);
    }

    #[test]
    fn the_pause_image_holds_the_static_pause() {
        assert!(PAUSE_BINARY.starts_with(b"\x7fELF"));
        assert!(pause_archive().is_ok());
    }
}
