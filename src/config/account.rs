//! The account a file is read or written as, and what its metadata lets
//! that account do: who may own a secret file, whether the server's user can
//! rewrite a one-time file. Answered from the files' owners and modes (and
//! the filesystem's read-only flag), not by trying: `--check` and a root
//! server must know what another account could do, before becoming it.
//!
//! Looks accounts up (`getpwnam_r`); it never changes the process's ids
//! (that is `server::privileges`, which uses [`Account::lookup`]).

use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// A user as the kernel checks it: its ids, and a name for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name to write in a `chown` advice (the uid's digits if it has none).
    pub name: String,
    /// The user id files are checked against.
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    /// Supplementary groups. Empty for a server's `user =` account: dropping
    /// privileges clears them (`server::privileges`), so they must not count.
    pub groups: Vec<u32>,
}

/// What an account wants of a file or directory, as the `rwx` bits say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Want(u32);

const READ: Want = Want(0o4);
const WRITE: Want = Want(0o2);
const WRITE_SEARCH: Want = Want(0o3);
const SEARCH: Want = Want(0o1);

impl Account {
    /// The account a server with `user` set runs as once privileges are
    /// dropped: the user's uid and primary group only (see [`Account::groups`]).
    /// A number that names no account is taken as a uid and gid.
    pub fn lookup(user: &str) -> Result<Account, String> {
        let name =
            CString::new(user).map_err(|_| format!("user name {user:?} contains a NUL byte"))?;
        // SAFETY: passwd is plain data; all-zero is a valid value to be overwritten.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: buffers are valid for the sizes given; the result points into them.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 {
            return Err(format!(
                "cannot look up user {user}: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        if result.is_null() {
            if let Ok(uid) = user.parse::<u32>() {
                return Ok(Account {
                    name: user.to_string(),
                    uid,
                    gid: uid,
                    groups: Vec::new(),
                });
            }
            return Err(format!(
                "there is no user named {user} (set `user` in [knockd] to an existing account)"
            ));
        }
        Ok(Account {
            name: user.to_string(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            groups: Vec::new(),
        })
    }

    /// This process's effective account, with its supplementary groups.
    pub fn current() -> Account {
        // SAFETY: these calls have no preconditions; getgroups is given a
        // buffer of the size it reported.
        let (uid, gid, groups) = unsafe {
            let count = libc::getgroups(0, std::ptr::null_mut()).max(0);
            let mut groups = vec![0 as libc::gid_t; count as usize];
            let got = libc::getgroups(count, groups.as_mut_ptr()).max(0);
            groups.truncate(got as usize);
            (libc::geteuid(), libc::getegid(), groups)
        };
        Account {
            name: user_name(uid).unwrap_or_else(|| uid.to_string()),
            uid,
            gid,
            groups,
        }
    }

    /// A server's account: its `user =` once privileges are dropped, else
    /// this process.
    pub fn runs_as(user: Option<&str>) -> Result<Account, String> {
        user.map_or_else(|| Ok(Account::current()), Account::lookup)
    }

    fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the mode bits of `meta` grant `want` to this account (root:
    /// always, as the kernel's DAC override does for reading, writing and
    /// searching directories).
    fn may(&self, meta: &std::fs::Metadata, want: Want) -> bool {
        let mode = meta.mode();
        if self.is_root() {
            return true;
        }
        let bits = if meta.uid() == self.uid {
            mode >> 6
        } else if meta.gid() == self.gid || self.groups.contains(&meta.gid()) {
            mode >> 3
        } else {
            mode
        };
        bits & want.0 == want.0
    }

    /// Why this account could not replace `path` the way
    /// [`super::files::replace`] does (read it, create a temporary next to it,
    /// rename it over, sync the directory), or `Ok`. The answer a knockd
    /// needs before it trusts a one-time file to be marked.
    pub fn may_rewrite(&self, path: &Path) -> Result<(), String> {
        let who = &self.name;
        let file = std::fs::metadata(path).map_err(|err| format!("cannot read it: {err}"))?;
        let dir_path = super::files::directory_of(path);
        let dir = std::fs::metadata(dir_path)
            .map_err(|err| format!("cannot read its directory: {err}"))?;
        if read_only(dir_path) {
            return Err(format!(
                "its directory {} is on a read-only filesystem",
                dir_path.display()
            ));
        }
        // Every directory on the way must be searchable to reach it at all.
        let absolute = std::fs::canonicalize(dir_path)
            .map_err(|err| format!("cannot resolve its directory: {err}"))?;
        for ancestor in absolute.ancestors().skip(1) {
            if let Ok(meta) = std::fs::metadata(ancestor)
                && !self.may(&meta, SEARCH)
            {
                return Err(format!(
                    "{who} cannot enter {} (mode {:o}); run chmod o+x {} or move the file",
                    ancestor.display(),
                    meta.mode() & 0o7777,
                    ancestor.display()
                ));
            }
        }
        if !self.may(&file, READ) {
            return Err(format!(
                "{who} cannot read it (owner uid {}, mode {:o}); run chown {who} {}",
                file.uid(),
                file.mode() & 0o7777,
                path.display()
            ));
        }
        // The replacement is a new file renamed over the old one: what counts
        // is writing and searching the directory (and reading it, to sync it).
        if !self.may(&dir, WRITE_SEARCH) || !self.may(&dir, READ) {
            return Err(format!(
                "{who} cannot write its directory {} (owner uid {}, mode {:o}), where the file \
                 is replaced; run chown {who} {} or move the file to a directory {who} owns",
                dir_path.display(),
                dir.uid(),
                dir.mode() & 0o7777,
                dir_path.display()
            ));
        }
        self.may_replace_in_sticky(path, &file)
    }

    /// Why this account could not open `path` to append to it, making it
    /// if missing, as knockd opens its log file; or `Ok`. The directory must
    /// exist: nothing makes it.
    pub fn may_append(&self, path: &Path) -> Result<(), String> {
        let who = &self.name;
        let dir_path = super::files::directory_of(path);
        self.may_enter(dir_path)?;
        match std::fs::metadata(path) {
            Ok(file) if file.is_dir() => Err("it is a directory".to_string()),
            Ok(_) if read_only(dir_path) => Err(format!(
                "its directory {} is on a read-only filesystem",
                dir_path.display()
            )),
            Ok(file) if !self.may(&file, WRITE) => Err(format!(
                "{who} cannot write it (owner uid {}, mode {:o}); run chown {who} {}",
                file.uid(),
                file.mode() & 0o7777,
                path.display()
            )),
            Ok(_) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => self.may_create_in(dir_path),
            Err(err) => Err(format!("cannot read it: {err}")),
        }
    }

    /// Why this account could not put a new file at `path` the way
    /// [`super::files::replace`] does, whether or not one is there already
    /// (the pid file, the state file); or `Ok`.
    pub fn may_replace(&self, path: &Path) -> Result<(), String> {
        let dir_path = super::files::directory_of(path);
        self.may_enter(dir_path)?;
        self.may_create_in(dir_path)?;
        match std::fs::symlink_metadata(path) {
            Ok(file) => self.may_replace_in_sticky(path, &file),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(format!("cannot read it: {err}")),
        }
    }

    /// Why this account could not reach the existing directory `dir_path`
    /// (missing, not a directory, or an ancestor it may not enter).
    fn may_enter(&self, dir_path: &Path) -> Result<(), String> {
        let who = &self.name;
        let dir = std::fs::metadata(dir_path).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => {
                format!("its directory {} does not exist", dir_path.display())
            }
            _ => format!("cannot read its directory {}: {err}", dir_path.display()),
        })?;
        if !dir.is_dir() {
            return Err(format!("{} is not a directory", dir_path.display()));
        }
        let absolute = std::fs::canonicalize(dir_path)
            .map_err(|err| format!("cannot resolve its directory: {err}"))?;
        for ancestor in absolute.ancestors() {
            if let Ok(meta) = std::fs::metadata(ancestor)
                && !self.may(&meta, SEARCH)
            {
                return Err(format!(
                    "{who} cannot enter {} (mode {:o}); run chmod o+x {} or move the file",
                    ancestor.display(),
                    meta.mode() & 0o7777,
                    ancestor.display()
                ));
            }
        }
        Ok(())
    }

    /// Why this account could not make a file in the directory `dir_path`.
    fn may_create_in(&self, dir_path: &Path) -> Result<(), String> {
        let who = &self.name;
        let dir = std::fs::metadata(dir_path)
            .map_err(|err| format!("cannot read its directory: {err}"))?;
        if read_only(dir_path) {
            return Err(format!(
                "its directory {} is on a read-only filesystem",
                dir_path.display()
            ));
        }
        if !self.may(&dir, WRITE_SEARCH) || !self.may(&dir, READ) {
            return Err(format!(
                "{who} cannot write its directory {} (owner uid {}, mode {:o}); run chown {who} \
                 {} or choose a directory {who} owns",
                dir_path.display(),
                dir.uid(),
                dir.mode() & 0o7777,
                dir_path.display()
            ));
        }
        Ok(())
    }

    /// Why this account could not rename a new file over `file` at `path`
    /// in a sticky directory it does not own.
    fn may_replace_in_sticky(&self, path: &Path, file: &std::fs::Metadata) -> Result<(), String> {
        let dir_path = super::files::directory_of(path);
        let dir = std::fs::metadata(dir_path)
            .map_err(|err| format!("cannot read its directory: {err}"))?;
        let sticky = dir.mode() & 0o1000 != 0;
        if sticky && !self.is_root() && file.uid() != self.uid && dir.uid() != self.uid {
            return Err(format!(
                "its directory {} is sticky and {} owns neither it nor the file, so the file \
                 cannot be replaced; run chown {} {}",
                dir_path.display(),
                self.name,
                self.name,
                path.display()
            ));
        }
        Ok(())
    }

    /// Why a secret file with metadata `meta` is refused for this account,
    /// as ssh refuses a private key: owned by someone other than root or
    /// this account, or open to the group or others. `what` names the file
    /// at `path` in the message, which says the fix.
    pub fn refuses_secret(
        &self,
        meta: &std::fs::Metadata,
        path: &Path,
        what: &str,
    ) -> Option<String> {
        let path = path.display();
        if meta.uid() != 0 && meta.uid() != self.uid {
            let owner = user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid()));
            let to = if self.is_root() {
                "root".to_string()
            } else {
                format!("root or {}", self.name)
            };
            return Some(format!(
                "{what} is owned by {owner}, not by {to}, so {owner} could change it: refused; \
                 run chown {} {path}",
                self.name
            ));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            let how = if mode & 0o044 != 0 { "read" } else { "written" };
            return Some(format!(
                "{what} can be {how} by others (mode {mode:o}): refused; run chmod 600 {path}"
            ));
        }
        None
    }
}

/// Whether the filesystem `dir` is on is mounted read-only, where even root
/// cannot write.
fn read_only(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs is plain data; all-zero is a valid value to be overwritten.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a struct of the right type.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    rc == 0 && stat.f_flag & libc::ST_RDONLY != 0
}

/// The name of `uid`, if it has one.
fn user_name(uid: u32) -> Option<String> {
    // SAFETY: passwd is plain data; all-zero is a valid value to be overwritten.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: buffers are valid for the sizes given; the result points into them.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name is a C string inside `buf`.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn someone(uid: u32, gid: u32) -> Account {
        Account {
            name: format!("u{uid}"),
            uid,
            gid,
            groups: Vec::new(),
        }
    }

    #[test]
    fn users_are_looked_up_by_name_or_number() {
        let root = Account::lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(Account::lookup("4000000").unwrap().uid, 4_000_000);
        let err = Account::lookup("no-such-user-knockr").unwrap_err();
        assert_eq!(
            err,
            "there is no user named no-such-user-knockr (set `user` in [knockd] to an existing account)"
        );
    }

    #[test]
    fn appending_and_replacing_need_an_existing_directory_the_account_may_write() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let me = Account::current();
        let log = dir.path().join("knockd.log");
        assert_eq!(me.may_append(&log), Ok(()));
        assert_eq!(me.may_replace(&dir.path().join("knockd.pid")), Ok(()));
        let missing = dir.path().join("missing").join("knockd.log");
        let err = me.may_append(&missing).unwrap_err();
        assert!(err.ends_with("/missing does not exist"), "{err}");
        assert_eq!(me.may_replace(&missing), Err(err));
        // A stranger may neither make a file in the directory nor write one there.
        let stranger = someone(4_000_002, 4_000_002);
        let err = stranger.may_append(&log).unwrap_err();
        assert!(
            err.starts_with("u4000002 cannot write its directory"),
            "{err}"
        );
        std::fs::write(&log, "").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = stranger.may_append(&log).unwrap_err();
        assert!(
            err.starts_with("u4000002 cannot write it (owner uid"),
            "{err}"
        );
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(stranger.may_append(&log), Ok(()));
        assert_eq!(
            me.may_append(dir.path()),
            Err("it is a directory".to_string())
        );
    }

    #[test]
    fn rewriting_needs_the_directory_and_respects_the_sticky_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        std::fs::write(&path, " 1,2\n").unwrap();
        let me = Account::current();
        let set = |mode: u32| {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap()
        };
        assert_eq!(me.may_rewrite(&path), Ok(()));
        // A stranger: the file is readable by all, the directory is not writable by others.
        let stranger = someone(4_000_001, 4_000_001);
        set(0o755);
        let err = stranger.may_rewrite(&path).unwrap_err();
        assert!(err.contains("cannot write its directory"), "{err}");
        set(0o777);
        assert_eq!(stranger.may_rewrite(&path), Ok(()));
        set(0o1777);
        let err = stranger.may_rewrite(&path).unwrap_err();
        assert!(err.contains("is sticky"), "{err}");
        set(0o700);
    }

    #[test]
    fn a_secret_file_must_be_the_accounts_or_roots_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let what = format!("the secret file {}", path.display());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(Account::current().refuses_secret(&meta, &path, &what), None);
        let owner = meta.uid();
        if owner != 0 {
            // Owned by us, a non-root: a third account must refuse it.
            let err = someone(4_000_002, 4_000_002)
                .refuses_secret(&meta, &path, &what)
                .unwrap();
            assert!(err.contains("not by root or u4000002"), "{err}");
            assert!(err.ends_with(&format!("run chown u4000002 {}", path.display())));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let err = Account::current()
            .refuses_secret(&meta, &path, &what)
            .unwrap();
        assert_eq!(
            err,
            format!(
                "{what} can be read by others (mode 640): refused; run chmod 600 {}",
                path.display()
            )
        );
    }
}
