//! tmpfs mounts for memory-backed volumes (emptyDir `medium: Memory`, secret and projected
//! volumes), through util-linux's `mount`/`umount`, as kube's mount-utils does: no
//! `unsafe`, no new dependency, and the command's own message when the kernel refuses
//! (no CAP_SYS_ADMIN, say). Mount points are read from `/proc/self/mountinfo`.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

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

fn run(command: &'static str, args: &[&str]) -> Result<(), MountError> {
    let arguments = args.join(" ");
    match Command::new(command).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(MountError {
            status: out.status.to_string(),
            command,
            arguments,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }),
        Err(e) => Err(MountError {
            status: e.to_string(),
            command,
            arguments,
            output: String::new(),
        }),
    }
}

/// Mounts a tmpfs of at most `size` bytes (the kernel's default, half the memory, when
/// `None`) on `dir`.
pub fn mount(dir: &Path, size: Option<i64>) -> Result<(), MountError> {
    let dir = dir.to_string_lossy();
    let options = size.map(|s| format!("size={s}"));
    let mut args = vec!["-t", "tmpfs"];
    if let Some(o) = &options {
        args.extend(["-o", o.as_str()]);
    }
    args.extend(["tmpfs", &dir]);
    run("mount", &args)
}

pub fn unmount(dir: &Path) -> Result<(), MountError> {
    run("umount", &[&dir.to_string_lossy()])
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

/// Whether `dir` is a tmpfs mount point.
pub fn is_tmpfs_mount(dir: &Path) -> io::Result<bool> {
    let dir = std::fs::canonicalize(dir)?;
    Ok(mounts()?
        .iter()
        .any(|m| m.mount_point == dir && m.fs_type == "tmpfs"))
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
}
