//! One-time sequence files, in the C knockd's format: one sequence a line
//! (`7000,8000:udp,9000`), lines starting with `#` skipped; a used line is
//! disabled by writing `#` over its first byte. The file is rewritten
//! atomically ([`super::files::replace`]: a new file of a random name,
//! fsync, rename, fsync of the directory), so a crash
//! at any moment leaves either the old or the new file — never a torn one,
//! and a used sequence is never offered again once its knocker got in.
//!
//! Shared by both sides: the server disables the line that opened its door,
//! the client (`one_time_sequences` in a profile) the line it knocked.

use std::fs;
use std::io;
use std::path::Path;

use crate::core::knock::{self, Knock, Proto};

/// The first unused sequence of the file: its 0-based line number and knocks.
/// `None` when every line is used (the door is then disabled).
/// `refuse` says why a sequence cannot be used on this side (knockd refuses
/// ICMP knocks, the client sends them), or `None`.
pub fn current(
    path: &Path,
    refuse: impl Fn(&[Knock]) -> Option<String>,
) -> io::Result<Option<(usize, Vec<Knock>)>> {
    let text = fs::read_to_string(path)?;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let bad = |err: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{}: {err}", path.display(), index + 1),
            )
        };
        let knocks = knock::parse_list(line.trim(), Proto::Tcp).map_err(|e| bad(e.to_string()))?;
        if let Some(refusal) = refuse(&knocks) {
            return Err(bad(refusal));
        }
        return Ok(Some((index, knocks)));
    }
    Ok(None)
}

/// Marks line `index` used by replacing its first byte with `#`.
pub fn consume(path: &Path, index: usize) -> io::Result<()> {
    let mut bytes = fs::read(path)?;
    let start = bytes
        .split_inclusive(|b| *b == b'\n')
        .take(index)
        .map(<[u8]>::len)
        .sum::<usize>();
    match bytes.get_mut(start) {
        Some(first) if *first != b'\n' => *first = b'#',
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} has no line {}", path.display(), index + 1),
            ));
        }
    }
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    super::files::replace(path, &bytes, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_unused_line_is_current_and_using_it_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        fs::write(&path, "# comment\n\n 7000,8000:udp\n 7100,8100\n").unwrap();
        assert_eq!(
            current(&path, |_| None).unwrap().map(|(i, k)| (i, k.len())),
            Some((2, 2))
        );
        consume(&path, 2).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "# comment\n\n#7000,8000:udp\n 7100,8100\n"
        );
        let (index, knocks) = current(&path, |_| None).unwrap().unwrap();
        assert_eq!((index, knocks[0].port), (3, 7100));
        consume(&path, 3).unwrap();
        assert_eq!(
            current(&path, |_| None).unwrap(),
            None,
            "all used: the door is disabled"
        );
    }

    #[test]
    fn without_a_leading_space_the_first_digit_is_overwritten_as_in_knockd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        fs::write(&path, "7000,8000\n").unwrap();
        consume(&path, 0).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "#000,8000\n");
    }

    #[test]
    fn the_rewrite_keeps_the_files_permissions_and_leaves_no_temporary() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        fs::write(&path, " 1,2\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        consume(&path, 0).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(feature = "server")]
    #[test]
    fn knockd_refuses_an_icmp_knock_with_the_file_and_line_and_the_client_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        fs::write(&path, " 7000,56:icmp\n").unwrap();
        assert_eq!(current(&path, |_| None).unwrap().unwrap().1.len(), 2);
        let err = current(&path, crate::config::server::refuse_line)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}:1: the ICMP knock 56:icmp: knockr knockd matches TCP and UDP knocks only; \
                 ICMP knocks are for the router's native rules (knockr routeros rules)",
                path.display()
            )
        );
    }

    #[test]
    fn a_temporary_left_by_a_crash_does_not_lend_the_file_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        fs::write(&path, " 1,2\n 3,4\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let stale = dir.path().join(".seq.knockr-tmp");
        fs::write(&stale, "half a file").unwrap();
        fs::set_permissions(&stale, fs::Permissions::from_mode(0o644)).unwrap();
        consume(&path, 0).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "#1,2\n 3,4\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        fs::write(&path, "#used\n 7000,99999\n").unwrap();
        let err = current(&path, |_| None).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}:2: port 99999 is out of range: expected 1..=65535",
                path.display()
            )
        );
    }
}
