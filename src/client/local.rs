//! What this machine has — its interfaces and addresses — asked of the
//! kernel before anything is sent, so a `--source`, `--interface` or address
//! zone that cannot work is a usage error (exit 2) instead of a failed knock.
//! Nothing here sends a packet: binding a socket only claims a local address.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, UdpSocket};

/// The index of the network interface named `name` in this network
/// namespace (`if_nametoindex`), or `None` when there is none: the zone a
/// link-local address is reached through, and the check of `--interface`.
pub(crate) fn interface_index(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// The names of this machine's network interfaces, in index order, for a
/// message that lists them.
pub(crate) fn interface_names() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: if_nameindex returns NULL or an array ended by a zero entry,
    // whose names are NUL-terminated; it is freed once, after the last read.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return names;
        }
        let mut entry = list;
        while (*entry).if_index != 0 && !(*entry).if_name.is_null() {
            names.push(
                CStr::from_ptr((*entry).if_name)
                    .to_string_lossy()
                    .into_owned(),
            );
            entry = entry.add(1);
        }
        libc::if_freenameindex(list);
    }
    names
}

/// Whether knocks can be sent from `source`: a UDP socket is bound to it
/// (port 0, nothing sent), in the zone of `interface` for a link-local IPv6
/// address, which has no meaning without one.
pub(crate) fn bind_source(source: IpAddr, interface: Option<u32>) -> io::Result<()> {
    let local = match source {
        IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, 0, 0, interface.unwrap_or(0))),
        IpAddr::V4(_) => SocketAddr::new(source, 0),
    };
    UdpSocket::bind(local).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_an_interface_and_its_address_is_local() {
        let lo = interface_index("lo").expect("every Linux machine has lo");
        assert!(interface_names().contains(&"lo".to_string()));
        assert_eq!(interface_index("no-such-if0"), None);
        assert_eq!(interface_index("lo\0x"), None);
        assert!(bind_source("127.0.0.1".parse().unwrap(), None).is_ok());
        assert!(bind_source("127.0.0.1".parse().unwrap(), Some(lo)).is_ok());
        // 192.0.2.0/24 is for documentation: no machine has it.
        let err = bind_source("192.0.2.123".parse().unwrap(), None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable);
    }
}
