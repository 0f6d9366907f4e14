//! Dropping root after the captures are open: supplementary groups, then the
//! group, then the user, in that order (the other order leaves root's groups
//! or fails), and a check that root cannot be regained. Called on the main
//! thread before the async runtime starts any thread.

use anyhow::{Context, bail};

use crate::config::account::Account;

/// Becomes `user` (a name or a numeric uid) and its primary group.
pub(crate) fn drop_to(user: &str) -> anyhow::Result<()> {
    let (uid, gid) = lookup(user)?;
    // SAFETY: plain libc calls with values from getpwnam_r; errors are checked.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(std::io::Error::last_os_error())
                .context("cannot clear supplementary groups");
        }
        if libc::setgid(gid) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot switch to group {gid}"));
        }
        if libc::setuid(uid) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot switch to user {user}"));
        }
        if uid != 0 && libc::setuid(0) == 0 {
            bail!("dropped to user {user} but could become root again; refusing to run");
        }
    }
    Ok(())
}

/// The uid and primary gid of `user`: the one lookup knockd makes, so the
/// account `--check` and the start judge files for is the one it becomes.
pub(crate) fn lookup(user: &str) -> anyhow::Result<(libc::uid_t, libc::gid_t)> {
    let account = Account::lookup(user).map_err(anyhow::Error::msg)?;
    Ok((account.uid, account.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_looked_up_by_name() {
        assert_eq!(lookup("root").unwrap(), (0, 0));
        let err = lookup("no-such-user-knockr").unwrap_err().to_string();
        assert_eq!(
            err,
            "there is no user named no-such-user-knockr (set `user` in [knockd] to an existing account)"
        );
    }
}
