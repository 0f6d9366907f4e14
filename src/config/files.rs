//! Writing a file as root without being led astray: the one way knockr
//! replaces a file it owns (one-time sequences, the server's state, its pid
//! file).
//!
//! A fixed temporary name (`.NAME.knockr-tmp`) let anyone who can write the
//! directory plant a symlink there and have a root `knockr` overwrite and
//! chmod the file it points to. Here the temporary gets a random name and is
//! created with `O_CREAT | O_EXCL | O_NOFOLLOW`, so it is always a new file
//! of our own; `rename` then replaces the target itself (a symlink at the
//! target is replaced, never followed).

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// How many random names are tried before giving up: a collision of 64
/// random bits means someone is guessing, not bad luck.
const ATTEMPTS: usize = 8;

/// Replaces `path` with `bytes` atomically: a new temporary file in the same
/// directory (random name, `O_EXCL | O_NOFOLLOW`, mode `mode`), written and
/// synced, renamed over `path`, then the directory synced. A crash at any
/// moment leaves the old file or the new one, never a torn one. On failure
/// the temporary is removed.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = directory_of(path);
    let (mut file, tmp) = create_temporary(path, mode)?;
    let written = (|| {
        // `mode` passed to open is masked by the umask: set it exactly.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    fs::File::open(dir)?.sync_all()
}

/// The directory `path` is in (`.` for a bare name).
pub fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A new file next to `path`, `.NAME.RANDOM.knockr-tmp`, that did not exist
/// before (not even as a symlink).
fn create_temporary(path: &Path, mode: u32) -> io::Result<(fs::File, PathBuf)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let dir = directory_of(path);
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let tmp = dir.join(format!(
            ".{}.{:016x}.knockr-tmp",
            name.to_string_lossy(),
            random()?
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(mode)
            .open(&tmp)
        {
            Ok(file) => return Ok((file, tmp)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary name left")))
}

fn random() -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|err| io::Error::other(err.to_string()))?;
    Ok(u64::from_ne_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_file_is_replaced_whole_with_the_mode_asked_and_no_temporary_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        fs::write(&path, "old").unwrap();
        replace(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state"]);
    }

    #[test]
    fn a_symlink_at_the_old_temporary_name_or_the_target_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
        // What the fixed temporary name of old allowed.
        std::os::unix::fs::symlink(&victim, dir.path().join(".seq.knockr-tmp")).unwrap();
        let path = dir.path().join("seq");
        replace(&path, b" 1,2\n", 0o644).unwrap();
        // And a symlink at the target itself is replaced, not written through.
        let pid = dir.path().join("knockd.pid");
        std::os::unix::fs::symlink(&victim, &pid).unwrap();
        replace(&pid, b"42\n", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(
            fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!fs::symlink_metadata(&pid).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(&pid).unwrap(), "42\n");
    }

    #[test]
    fn a_directory_that_cannot_be_written_fails_and_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("state");
        let err = replace(&path, b"x", 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
