//! Dropping root after the captures are open: supplementary groups, then the
//! group, then the user, in that order (the other order leaves root's groups
//! or fails), and a check that root cannot be regained. Called on the main
//! thread before the async runtime starts any thread.

use anyhow::{Context, bail};

use crate::config::account::Account;

/// Becomes `user` (a name or a numeric uid) and its primary group. With
/// `keep_net_admin` the process keeps CAP_NET_ADMIN, and only it, in its
/// effective and permitted sets: the nftables doors' netlink messages need
/// it. It is not in the inheritable or ambient sets, so the commands knockd
/// runs (exec'd as the user) do not get it.
pub(crate) fn drop_to(user: &str, keep_net_admin: bool) -> anyhow::Result<()> {
    let (uid, gid) = lookup(user)?;
    if keep_net_admin && uid != 0 {
        // SAFETY: prctl with integer arguments; the result is checked.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error())
                .context("cannot keep CAP_NET_ADMIN across the change of user");
        }
    }
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
    if keep_net_admin && uid != 0 {
        only_net_admin().context("cannot keep CAP_NET_ADMIN after dropping root")?;
    }
    Ok(())
}

/// Sets the capabilities to CAP_NET_ADMIN alone (effective and permitted;
/// nothing inheritable), then clears the keep-capabilities flag again.
fn only_net_admin() -> std::io::Result<()> {
    // linux/capability.h: version 3 takes two 32-bit words per set.
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let low = Data {
        effective: 1 << CAP_NET_ADMIN,
        permitted: 1 << CAP_NET_ADMIN,
        inheritable: 0,
    };
    let high = Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    };
    let data = [low, high];
    // SAFETY: capset reads one header and two data words, which live on
    // this stack frame for the call; the result is checked.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: prctl with integer arguments; the result is checked.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
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
