//! hostPath types, checked as kube 1.33's hostPath plugin does (`checkType`): the
//! `...OrCreate` types make what is missing (a 0755 directory with its parents, or an empty
//! 0644 file in an existing directory), the others only check, and `""` checks nothing.

use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    #[error("hostPath type check failed: {path} is not a {what}")]
    WrongType { path: String, what: &'static str },
    #[error("{0} is an invalid volume type")]
    InvalidType(String),
    #[error("{op} {path}: {source}")]
    Create {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Checks (and for the `...OrCreate` types makes) `path` as `type_` says.
pub fn check_type(path: &Path, type_: &str) -> Result<(), HostPathError> {
    let shown = path.to_string_lossy().into_owned();
    let exists = std::fs::metadata(path).is_ok();
    let kind =
        |what: &'static str, ok: fn(&std::fs::FileType) -> bool| match std::fs::metadata(path) {
            Ok(m) if ok(&m.file_type()) => Ok(()),
            _ => Err(HostPathError::WrongType {
                path: shown.clone(),
                what,
            }),
        };
    match type_ {
        "" => Ok(()),
        "DirectoryOrCreate" if !exists => {
            std::fs::create_dir_all(path).map_err(|source| HostPathError::Create {
                op: "mkdir",
                path: shown.clone(),
                source,
            })?;
            // MkdirAll's 0755, whatever the umask, on the directory asked for.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(
                |source| HostPathError::Create {
                    op: "chmod",
                    path: shown.clone(),
                    source,
                },
            )
        }
        "DirectoryOrCreate" | "Directory" => kind("directory", |t| t.is_dir()),
        "FileOrCreate" if !exists => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map(drop)
            .map_err(|source| HostPathError::Create {
                op: "open",
                path: shown.clone(),
                source,
            }),
        "FileOrCreate" | "File" => kind("file", |t| t.is_file()),
        "Socket" => kind("socket file", |t| t.is_socket()),
        "CharDevice" => kind("character device", |t| t.is_char_device()),
        "BlockDevice" => kind("block device", |t| t.is_block_device()),
        other => Err(HostPathError::InvalidType(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked_and_created_like_kube() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::write(d.join("file"), "x")?;
        let _socket = std::os::unix::net::UnixListener::bind(d.join("sock"))?;
        let msg = |p: &str, t: &str| {
            check_type(&d.join(p), t).err().map(|e| {
                e.to_string()
                    .replace(&d.to_string_lossy().into_owned(), "D")
            })
        };

        assert_eq!(msg("missing", ""), None);
        assert_eq!(msg("file", "File"), None);
        assert_eq!(
            msg("file", "Directory"),
            Some("hostPath type check failed: D/file is not a directory".into())
        );
        assert_eq!(msg(".", "Directory"), None);
        assert_eq!(
            msg("missing", "Directory"),
            Some("hostPath type check failed: D/missing is not a directory".into())
        );
        assert_eq!(
            msg("missing", "File"),
            Some("hostPath type check failed: D/missing is not a file".into())
        );
        assert_eq!(msg("sock", "Socket"), None);
        assert_eq!(
            msg("file", "Socket"),
            Some("hostPath type check failed: D/file is not a socket file".into())
        );
        assert_eq!(
            msg("file", "CharDevice"),
            Some("hostPath type check failed: D/file is not a character device".into())
        );
        assert_eq!(
            msg("file", "BlockDevice"),
            Some("hostPath type check failed: D/file is not a block device".into())
        );
        assert_eq!(
            check_type(Path::new("/dev/null"), "CharDevice").ok(),
            Some(())
        );
        assert_eq!(
            msg("file", "Fifo"),
            Some("Fifo is an invalid volume type".into())
        );

        // The ...OrCreate types make what is missing, and check what is there.
        assert_eq!(msg("made/deep", "DirectoryOrCreate"), None);
        assert!(d.join("made/deep").is_dir());
        assert_eq!(
            msg("file", "DirectoryOrCreate"),
            Some("hostPath type check failed: D/file is not a directory".into())
        );
        assert_eq!(msg("new-file", "FileOrCreate"), None);
        assert!(d.join("new-file").is_file());
        assert_eq!(
            std::fs::metadata(d.join("new-file"))?.permissions().mode() & 0o777 & !0o022,
            0o644 & !0o022
        );
        assert_eq!(
            msg("made", "FileOrCreate"),
            Some("hostPath type check failed: D/made is not a file".into())
        );
        // FileOrCreate does not make parent directories.
        assert!(msg("no-dir/file", "FileOrCreate").is_some());
        Ok(())
    }
}
