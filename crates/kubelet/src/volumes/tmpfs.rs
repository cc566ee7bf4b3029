//! tmpfs mounts for memory-backed volumes (emptyDir `medium: Memory`, secret and projected
//! volumes), through the mount(2) and umount(2) system calls (rustix's safe wrappers).
//! kube's mount-utils runs util-linux's `mount` instead: a process for each volume, which
//! itself parses every line of `/proc/self/mountinfo`; on a node starting a burst of pods
//! that was more CPU than the mount. A refusal (no CAP_SYS_ADMIN, say) is reported in
//! mount-utils' format, with the system's message as the output. Whether a directory is a
//! tmpfs mount point is answered by statfs(2) and the device of its parent; the mount points
//! under a directory (for unmounting) come from `/proc/self/mountinfo`.

use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

/// A mount or unmount that failed, in kube's format.
#[derive(Debug, thiserror::Error)]
#[error(
    "mount failed: {status}\nMounting command: {command}\nMounting arguments: {arguments}\nOutput: {output}"
)]
pub struct MountError {
    pub status: String,
    pub command: &'static str,
    pub arguments: String,
    pub output: String,
}

impl MountError {
    fn new(command: &'static str, arguments: String, err: rustix::io::Errno) -> Self {
        let err = io::Error::from(err);
        MountError {
            status: err.to_string(),
            command,
            output: format!("{command}: {arguments}: {err}"),
            arguments,
        }
    }
}

/// Mounts a tmpfs of at most `size` bytes (the kernel's default, half the memory, when
/// `None`) on `dir`.
pub fn mount(dir: &Path, size: Option<i64>) -> Result<(), MountError> {
    let options = size.map(|s| format!("size={s}")).unwrap_or_default();
    let arguments = match size {
        Some(_) => format!("-t tmpfs -o {options} tmpfs {}", dir.display()),
        None => format!("-t tmpfs tmpfs {}", dir.display()),
    };
    let data = std::ffi::CString::new(options)
        .map_err(|_| MountError::new("mount", arguments.clone(), rustix::io::Errno::INVAL))?;
    rustix::mount::mount("tmpfs", dir, "tmpfs", MountFlags::empty(), data.as_c_str())
        .map_err(|e| MountError::new("mount", arguments, e))
}

pub fn unmount(dir: &Path) -> Result<(), MountError> {
    rustix::mount::unmount(dir, UnmountFlags::empty())
        .map_err(|e| MountError::new("umount", dir.display().to_string(), e))
}

/// One line of `/proc/self/mountinfo`: the mount point and the file system type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_point: PathBuf,
    pub fs_type: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let fs_type = right.split(' ').next()?;
            Some(MountInfo {
                mount_point: PathBuf::from(unescape(mount_point)),
                fs_type: fs_type.to_owned(),
            })
        })
        .collect()
}

pub fn mounts() -> io::Result<Vec<MountInfo>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// Whether `dir` is a tmpfs mount point: a tmpfs on another device than its parent's.
pub fn is_tmpfs_mount(dir: &Path) -> io::Result<bool> {
    let dir = std::fs::canonicalize(dir)?;
    // TMPFS_MAGIC (linux/magic.h), in the type statfs(2) gives on this platform.
    let on_tmpfs = rustix::fs::statfs(&dir)?.f_type == 0x0102_1994;
    if !on_tmpfs {
        return Ok(false);
    }
    let Some(parent) = dir.parent() else {
        return Ok(true);
    };
    Ok(std::fs::metadata(&dir)?.dev() != std::fs::metadata(parent)?.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_are_parsed_and_unescaped() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    42 22 0:39 / /var/lib/a\\040b rw,relatime - tmpfs tmpfs rw,size=1024k\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].mount_point, PathBuf::from("/var/lib/a b"));
        assert_eq!(m[1].fs_type, "tmpfs");
        assert_eq!(m[0].fs_type, "ext4");
    }

    /// statfs and the parent's device agree with mountinfo: each tmpfs mount point of this
    /// machine is one, a directory made inside one or on another file system is not.
    #[test]
    fn tmpfs_mount_points_are_found_by_statfs() {
        // The last mount on a path is the one seen there.
        let mut seen = std::collections::BTreeMap::new();
        for m in mounts().expect("reading mountinfo") {
            seen.insert(m.mount_point, m.fs_type);
        }
        let tmpfs: Vec<PathBuf> = seen
            .into_iter()
            .filter(|(point, fs)| fs == "tmpfs" && point != Path::new("/"))
            .map(|(point, _)| point)
            .collect();
        let shm = Path::new("/dev/shm");
        assert!(
            tmpfs.iter().any(|p| p == shm),
            "this test needs the tmpfs on /dev/shm"
        );
        for point in tmpfs.iter().filter(|p| std::fs::metadata(p).is_ok()) {
            assert!(is_tmpfs_mount(point).unwrap(), "{}", point.display());
        }
        let inside = tempfile::tempdir_in(shm).unwrap();
        assert!(!is_tmpfs_mount(inside.path()).unwrap());
        let elsewhere = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(!is_tmpfs_mount(elsewhere.path()).unwrap());
    }
}
