//! kube's atomic writer (`pkg/volume/util/atomic_writer.go`): a volume's files live in a
//! hidden timestamped directory (`..2025_01_31_12_00_00.123456789`); `..data` is a symlink
//! to it, and each top-level name of the payload is a symlink `NAME -> ..data/NAME`. An
//! update writes a new timestamped directory, points `..data_tmp` at it and renames that
//! over `..data` (rename is atomic), so readers see the old files or the new ones, never a
//! mix; then stale names and the old directory go. Names starting with `..` are reserved.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_FILE_NAME: usize = 255;
const MAX_PATH: usize = 4096;

/// One file of a volume's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    /// Permission bits (`0o644`).
    pub mode: u32,
}

/// Why a payload was not written, with kube's messages for invalid paths.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("invalid path: must not be empty: {0:?}")]
    Empty(String),
    #[error("invalid path: must be relative path: {0}")]
    Absolute(String),
    #[error("invalid path: must be less than or equal to {MAX_PATH} characters")]
    TooLong,
    #[error("invalid path: must not contain '..': {0}")]
    Backsteps(String),
    #[error("invalid path: filenames must be less than or equal to {MAX_FILE_NAME} characters")]
    NameTooLong,
    #[error("invalid path: must not start with '..': {0}")]
    Reserved(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError + use<> {
    let path = path.to_owned();
    move |source| WriteError::Io { op, path, source }
}

/// kube's `validatePath`, then the path cleaned (`a//b/./c` is `a/b/c`).
fn clean_path(path: &str) -> Result<String, WriteError> {
    if path.is_empty() {
        return Err(WriteError::Empty(path.to_owned()));
    }
    if path.starts_with('/') {
        return Err(WriteError::Absolute(path.to_owned()));
    }
    if path.len() > MAX_PATH {
        return Err(WriteError::TooLong);
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(WriteError::Backsteps(path.to_owned()));
        }
        if item.len() > MAX_FILE_NAME {
            return Err(WriteError::NameTooLong);
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(WriteError::Reserved(path.to_owned()));
    }
    let parts: Vec<&str> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return Err(WriteError::Empty(path.to_owned()));
    }
    Ok(parts.join("/"))
}

/// Writes `payload` (relative path to file) into `target`, which must exist. Returns
/// whether anything changed; a payload equal to what is there writes nothing.
pub fn write(
    target: &Path,
    payload: &BTreeMap<String, FileProjection>,
) -> Result<bool, WriteError> {
    let mut clean = BTreeMap::new();
    for (path, file) in payload {
        clean.insert(clean_path(path)?, file);
    }
    let data_link = target.join(DATA_DIR);
    let old = match std::fs::read_link(&data_link) {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("readlink", &data_link)(e)),
    };
    let mut to_remove = BTreeSet::new();
    if let Some(old) = &old {
        let old_dir = target.join(old);
        to_remove = stale_paths(&old_dir, &clean)?;
        let mut changed = false;
        for (path, file) in &clean {
            match std::fs::read(old_dir.join(path)) {
                Ok(existing) if existing == file.data => {}
                _ => {
                    changed = true;
                    break;
                }
            }
        }
        if !changed && to_remove.is_empty() {
            return Ok(false);
        }
    }

    let ts_dir = new_timestamp_dir(target)?;
    let ts_name = ts_dir.file_name().map(PathBuf::from).unwrap_or_default();
    let written = write_files(&ts_dir, &clean).and_then(|()| {
        let tmp_link = target.join(NEW_DATA_DIR);
        match std::fs::remove_file(&tmp_link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &tmp_link)(e)),
        }
        std::os::unix::fs::symlink(&ts_name, &tmp_link).map_err(io_err("symlink", &tmp_link))?;
        std::fs::rename(&tmp_link, &data_link).map_err(|e| {
            let _ = std::fs::remove_file(&tmp_link);
            io_err("rename", &data_link)(e)
        })
    });
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&ts_dir);
        return Err(e);
    }

    // The user-visible names: one symlink per top-level entry, into ..data.
    for path in clean.keys() {
        let top = path.split('/').next().unwrap_or(path);
        let visible = target.join(top);
        if std::fs::symlink_metadata(&visible).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA_DIR).join(top), &visible)
                .map_err(io_err("symlink", &visible))?;
        }
    }
    for path in to_remove.iter().filter(|p| !p.contains('/')) {
        let visible = target.join(path);
        match std::fs::remove_file(&visible) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &visible)(e)),
        }
    }
    if let Some(old) = old {
        let old_dir = target.join(old);
        std::fs::remove_dir_all(&old_dir).map_err(io_err("remove", &old_dir))?;
    }
    Ok(true)
}

/// The paths in the old timestamped directory that the new payload no longer has
/// (directories that still hold new files are kept).
fn stale_paths(
    old_dir: &Path,
    payload: &BTreeMap<String, &FileProjection>,
) -> Result<BTreeSet<String>, WriteError> {
    let mut existing = BTreeSet::new();
    let mut stack = vec![(old_dir.to_owned(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("readdir", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("readdir", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                stack.push((entry.path(), path.clone()));
            }
            existing.insert(path);
        }
    }
    let mut wanted = BTreeSet::new();
    for path in payload.keys() {
        let mut sub = path.as_str();
        loop {
            wanted.insert(sub.to_owned());
            match sub.rsplit_once('/') {
                Some((parent, _)) => sub = parent,
                None => break,
            }
        }
    }
    Ok(existing.difference(&wanted).cloned().collect())
}

/// `..YYYY_MM_DD_HH_MM_SS.<random>`, mode 0755 whatever the umask.
fn new_timestamp_dir(target: &Path) -> Result<PathBuf, WriteError> {
    let stamp = k8s_openapi::chrono::Utc::now().format("..%Y_%m_%d_%H_%M_%S.");
    for _ in 0..100 {
        let dir = target.join(format!("{stamp}{}", rand::random::<u32>()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(io_err("chmod", &dir))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("mkdir", &dir)(e)),
        }
    }
    Err(io_err("mkdir", target)(io::Error::from(
        io::ErrorKind::AlreadyExists,
    )))
}

fn write_files(dir: &Path, payload: &BTreeMap<String, &FileProjection>) -> Result<(), WriteError> {
    for (path, file) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(io_err("mkdir", parent))?;
        }
        std::fs::write(&full, &file.data).map_err(io_err("write", &full))?;
        // The mode exactly, whatever the umask.
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(io_err("chmod", &full))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn payload(files: &[(&str, &str, u32)]) -> BTreeMap<String, FileProjection> {
        files
            .iter()
            .map(|(p, d, m)| {
                (
                    (*p).to_owned(),
                    FileProjection {
                        data: d.as_bytes().to_vec(),
                        mode: *m,
                    },
                )
            })
            .collect()
    }

    fn link(p: &Path) -> String {
        std::fs::read_link(p)
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn hidden_dirs(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..2"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn layout_is_kube_s_and_updates_swap_data() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let target = dir.path();
        let first = payload(&[
            ("config.yaml", "a: 1\n", 0o644),
            ("nested/dir/key", "v", 0o400),
            ("gone", "x", 0o644),
        ]);
        assert!(write(target, &first)?);
        let ts = hidden_dirs(target);
        assert_eq!(ts.len(), 1);
        assert!(ts[0].starts_with("..20") && ts[0].len() > "..2025_01_01_00_00_00.".len());
        assert_eq!(link(&target.join("..data")), ts[0]);
        assert_eq!(link(&target.join("config.yaml")), "..data/config.yaml");
        assert_eq!(link(&target.join("nested")), "..data/nested");
        assert_eq!(std::fs::read_to_string(target.join("nested/dir/key"))?, "v");
        let mode = std::fs::metadata(target.join("nested/dir/key"))?.mode() & 0o7777;
        assert_eq!(mode, 0o400);
        let ts_mode = std::fs::metadata(target.join(&ts[0]))?.mode() & 0o7777;
        assert_eq!(ts_mode, 0o755);

        // The same payload writes nothing.
        assert!(!write(target, &first)?);
        assert_eq!(hidden_dirs(target), ts);

        // A change gets a new directory; removed names go; the old directory goes.
        let second = payload(&[
            ("config.yaml", "a: 2\n", 0o644),
            ("nested/dir/key", "v", 0o400),
        ]);
        assert!(write(target, &second)?);
        let ts2 = hidden_dirs(target);
        assert_eq!(ts2.len(), 1);
        assert_ne!(ts2, ts);
        assert_eq!(link(&target.join("..data")), ts2[0]);
        assert_eq!(
            std::fs::read_to_string(target.join("config.yaml"))?,
            "a: 2\n"
        );
        assert!(std::fs::symlink_metadata(target.join("gone")).is_err());
        assert!(std::fs::symlink_metadata(target.join("..data_tmp")).is_err());

        // Removing a file alone is a change too.
        assert!(write(
            target,
            &payload(&[("config.yaml", "a: 2\n", 0o644)])
        )?);
        assert!(std::fs::symlink_metadata(target.join("nested")).is_err());
        Ok(())
    }

    #[test]
    fn invalid_paths_are_refused_with_kube_messages() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else {
            panic!("tempdir");
        };
        let cases = [
            ("/abs", "invalid path: must be relative path: /abs"),
            ("a/../b", "invalid path: must not contain '..': a/../b"),
            (
                "..hidden",
                "invalid path: must not start with '..': ..hidden",
            ),
            ("", "invalid path: must not be empty: \"\""),
        ];
        for (path, want) in cases {
            let err = write(dir.path(), &payload(&[(path, "x", 0o644)])).err();
            assert_eq!(err.map(|e| e.to_string()).as_deref(), Some(want), "{path}");
        }
        assert!(clean_path("a//b/./c").is_ok_and(|p| p == "a/b/c"));
    }
}
