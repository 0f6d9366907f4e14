//! The hosts file as glibc's `files` source reads it for getaddrinfo
//! (nss/nss_files/files-hosts.c), so that a name it answers is never asked of
//! DNS, as nsswitch.conf's usual `hosts: files dns` has it.
//!
//! Pure: the file's text and host.conf's `multi` come as arguments; the
//! parent module reads them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::sort::is_space;
use crate::core::knock::Family;

/// A hosts file's text, and whether every matching line counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostsFile {
    /// The file as read; not UTF-8 necessarily.
    text: Vec<u8>,
    /// host.conf's `multi on`: every line naming the host gives an address;
    /// off (glibc's default without host.conf), only the first such line.
    multi: bool,
}

impl HostsFile {
    pub(crate) fn new(text: Vec<u8>, multi: bool) -> HostsFile {
        HostsFile { text, multi }
    }

    /// The addresses the file gives `name` in `family`, in file order; empty:
    /// the file does not answer, ask DNS.
    ///
    /// As glibc: names match case-insensitively, the canonical name or an
    /// alias; `#` starts a comment anywhere; a line whose address does not
    /// parse is skipped. `-4` also takes `::ffff:a.b.c.d` lines as a.b.c.d
    /// and `::1` lines as 127.0.0.1; `-6` skips IPv4 lines.
    pub(crate) fn lookup(&self, name: &str, family: Family) -> Vec<IpAddr> {
        let mut found = Vec::new();
        for line in self.text.split(|&b| b == b'\n') {
            let line = line.split(|&b| b == b'#').next().unwrap_or_default();
            let mut words = line.split(|&b| is_space(b)).filter(|w| !w.is_empty());
            let Some(address) = words.next().and_then(|w| address(w, family)) else {
                continue;
            };
            if words.any(|w| w.eq_ignore_ascii_case(name.as_bytes())) {
                found.push(address);
                if !self.multi {
                    break;
                }
            }
        }
        found
    }
}

/// A line's address as glibc's parser takes it for `family`.
fn address(word: &[u8], family: Family) -> Option<IpAddr> {
    let text = std::str::from_utf8(word).ok()?;
    let v4 = text.parse::<Ipv4Addr>().ok();
    let v6 = || text.parse::<Ipv6Addr>().ok();
    match family {
        Family::Any => v4.map(IpAddr::V4).or_else(|| v6().map(IpAddr::V6)),
        Family::Ipv4 => v4
            .or_else(|| {
                let v6 = v6()?;
                v6.to_ipv4_mapped()
                    .or_else(|| v6.is_loopback().then_some(Ipv4Addr::LOCALHOST))
            })
            .map(IpAddr::V4),
        Family::Ipv6 => v6().map(IpAddr::V6),
    }
}

/// Whether host.conf (`host_conf`, its text if it could be read) and the
/// `RESOLV_MULTI` variable (`env`) turn `multi` on, as glibc's res_hconf.c
/// reads them: the last `multi on|off` line wins, the variable over the file;
/// the keyword is case-insensitive and `on`/`off` are matched as prefixes.
pub(crate) fn multi(host_conf: Option<&[u8]>, env: Option<&[u8]>) -> bool {
    let mut multi = false;
    for line in host_conf.unwrap_or_default().split(|&b| b == b'\n') {
        let start = line
            .iter()
            .position(|&b| !is_space(b))
            .unwrap_or(line.len());
        let line = &line[start..];
        let end = line
            .iter()
            .position(|&b| is_space(b) || b == b'#' || b == b',')
            .unwrap_or(line.len());
        if line[..end].eq_ignore_ascii_case(b"multi") {
            let rest = &line[end..];
            let start = rest
                .iter()
                .position(|&b| !is_space(b))
                .unwrap_or(rest.len());
            multi = switch(&rest[start..]).unwrap_or(multi);
        }
    }
    env.and_then(switch).unwrap_or(multi)
}

/// `on` or `off` at the start of `value` (glibc's `arg_bool`).
fn switch(value: &[u8]) -> Option<bool> {
    let starts =
        |word: &[u8]| value.len() >= word.len() && value[..word.len()].eq_ignore_ascii_case(word);
    if starts(b"on") {
        Some(true)
    } else if starts(b"off") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| ip(s)).collect()
    }

    const FILE: &str = "\
127.0.0.1\tlocalhost
  10.9.0.77 both.example both   # a comment
fd00:9::1 both
# 10.9.0.66 both
10.9.0.1 Both
::1 loopy
::ffff:10.9.0.8 mapped
fe80::1%eth0 both
10.9.0.300 both
0x0a.1 both
10.9.0.9
\r
10.9.0.10 crlf\r
";

    #[test]
    fn every_line_of_both_families_in_file_order() {
        let file = HostsFile::new(FILE.into(), true);
        assert_eq!(
            file.lookup("both", Family::Any),
            ips(&["10.9.0.77", "fd00:9::1", "10.9.0.1"]),
            "comments, a scoped address, a bad address and inet_aton forms are skipped"
        );
        assert_eq!(
            file.lookup("BOTH.example", Family::Any),
            ips(&["10.9.0.77"])
        );
        assert_eq!(file.lookup("crlf", Family::Any), ips(&["10.9.0.10"]));
        assert_eq!(file.lookup("other", Family::Any), Vec::<IpAddr>::new());
    }

    #[test]
    fn a_family_takes_its_own_lines_and_ipv4_reads_two_ipv6_forms() {
        let file = HostsFile::new(FILE.into(), true);
        assert_eq!(
            file.lookup("both", Family::Ipv4),
            ips(&["10.9.0.77", "10.9.0.1"])
        );
        assert_eq!(file.lookup("both", Family::Ipv6), ips(&["fd00:9::1"]));
        // glibc's quirks, as `getent ahostsv4` shows them.
        assert_eq!(file.lookup("loopy", Family::Ipv4), ips(&["127.0.0.1"]));
        assert_eq!(file.lookup("mapped", Family::Ipv4), ips(&["10.9.0.8"]));
        assert_eq!(
            file.lookup("mapped", Family::Any),
            ips(&["::ffff:10.9.0.8"])
        );
        assert_eq!(file.lookup("localhost", Family::Ipv6), Vec::<IpAddr>::new());
    }

    #[test]
    fn without_multi_only_the_first_line_counts() {
        let file = HostsFile::new(FILE.into(), false);
        assert_eq!(file.lookup("both", Family::Any), ips(&["10.9.0.77"]));
        assert_eq!(file.lookup("both", Family::Ipv6), ips(&["fd00:9::1"]));
    }

    #[test]
    fn host_conf_multi_is_read_as_glibc_reads_it() {
        assert!(!multi(None, None), "glibc's default is off");
        assert!(multi(Some(b"multi on\n"), None), "Debian's host.conf");
        assert!(multi(Some(b"  MULTI   ON # yes\n"), None));
        assert!(
            !multi(Some(b"multi on\nmulti off\n"), None),
            "the last line wins"
        );
        assert!(multi(
            Some(b"multi off\nmulti bogus\nmultiple off\nmulti onward\n"),
            None
        ));
        assert!(!multi(Some(b"#multi on\norder hosts,bind\n"), None));
        assert!(
            !multi(Some(b"multi on\n"), Some(b"off")),
            "RESOLV_MULTI wins"
        );
        assert!(
            multi(Some(b"multi on\n"), Some(b"maybe")),
            "unless it says neither"
        );
    }
}
