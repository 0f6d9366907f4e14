//! The order getaddrinfo gives a name's addresses, as glibc sorts them
//! (`rfc3484_sort` in sysdeps/posix/getaddrinfo.c): RFC 3484 rules 1 to 6, 8,
//! 9 and 10, with glibc's default tables or the `label`, `precedence` and
//! `scopev4` lines of /etc/gai.conf. ssh connects to the first address of this
//! order, so knockr knocks it.
//!
//! Pure: gai.conf comes as text and the machine (the source address towards
//! each destination, and that address's prefix length and flags) as a
//! function, so every rule is tested here without a network. Rule 7 (prefer
//! native transport over tunnels) is not applied: it needs each interface's
//! link type and only splits addresses that every earlier rule found equal.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The local address the kernel would send from towards a destination, with
/// what glibc knows about it from the interface list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Source {
    /// The source address itself (IPv4 for an IPv4 destination).
    pub(crate) addr: IpAddr,
    /// Its interface address's prefix length; 0 when glibc does not know it
    /// (see `interfaces` in the parent module).
    pub(crate) prefix_len: u8,
    /// The address is deprecated or optimistic (`IFA_F_DEPRECATED`, `IFA_F_OPTIMISTIC`).
    pub(crate) deprecated: bool,
    /// A Mobile IPv6 home address (`IFA_F_HOMEADDRESS`).
    pub(crate) home: bool,
}

/// One row of a label or precedence table: addresses in `prefix/bits` get `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PrefixRow {
    prefix: Ipv6Addr,
    bits: u8,
    value: u32,
}

/// One row of the IPv4 scope table: addresses with `addr` under `mask` have `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScopeRow {
    addr: u32,
    mask: u32,
    scope: u32,
}

/// The tables the sort reads: glibc's built-in ones, or those of gai.conf.
/// The first row that matches an address gives its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Rule 5: a destination whose label equals its source's is preferred.
    labels: Vec<PrefixRow>,
    /// Rule 6: higher first.
    precedence: Vec<PrefixRow>,
    /// The scope of IPv4 addresses (IPv6 scopes come from the address).
    scopes: Vec<ScopeRow>,
}

const fn row(segments: [u16; 8], bits: u8, value: u32) -> PrefixRow {
    let [a, b, c, d, e, f, g, h] = segments;
    PrefixRow {
        prefix: Ipv6Addr::new(a, b, c, d, e, f, g, h),
        bits,
        value,
    }
}

/// glibc's labels: RFC 3484's, with site-local, unique-local and Teredo
/// addresses apart (so a ULA source does not pull a global IPv6 address
/// ahead of IPv4). In glibc's order, which is also the match order.
const DEFAULT_LABELS: [PrefixRow; 8] = [
    row([0, 0, 0, 0, 0, 0, 0, 1], 128, 0),
    row([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, 2),
    row([0, 0, 0, 0, 0, 0, 0, 0], 96, 3),
    row([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, 4),
    row([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, 5),
    row([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, 6),
    row([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, 7),
    row([0, 0, 0, 0, 0, 0, 0, 0], 0, 1),
];

/// glibc's precedences, RFC 3484's: IPv4 (10) below every IPv6 address but
/// the IPv4-compatible ones, and unique-local IPv6 as high as global IPv6
/// (RFC 6724 would put it below IPv4; glibc does not).
const DEFAULT_PRECEDENCE: [PrefixRow; 5] = [
    row([0, 0, 0, 0, 0, 0, 0, 1], 128, 50),
    row([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, 30),
    row([0, 0, 0, 0, 0, 0, 0, 0], 96, 20),
    row([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, 10),
    row([0, 0, 0, 0, 0, 0, 0, 0], 0, 40),
];

/// glibc's IPv4 scopes: link-local and loopback are link scope (2), the rest global.
const DEFAULT_SCOPES: [ScopeRow; 3] = [
    ScopeRow {
        addr: 0xa9fe_0000,
        mask: 0xffff_0000,
        scope: 2,
    },
    ScopeRow {
        addr: 0x7f00_0000,
        mask: 0xff00_0000,
        scope: 2,
    },
    ScopeRow {
        addr: 0,
        mask: 0,
        scope: 14,
    },
];

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            labels: DEFAULT_LABELS.to_vec(),
            precedence: DEFAULT_PRECEDENCE.to_vec(),
            scopes: DEFAULT_SCOPES.to_vec(),
        }
    }
}

impl Policy {
    /// The tables /etc/gai.conf's text makes, read as glibc reads it
    /// (`gaiconf_init`): any `label` line replaces the whole built-in label
    /// table, any `precedence` line the precedence table, any `scopev4` line
    /// the scope table; each gets a catch-all row unless it has one; rows
    /// match longest prefix first, file order among equals. Lines glibc
    /// would not take are skipped, as glibc skips them.
    pub(crate) fn from_gai_conf(text: &[u8]) -> Policy {
        let mut labels = Vec::new();
        let mut precedence = Vec::new();
        let mut scopes = Vec::new();
        for line in text.split(|&b| b == b'\n') {
            let line = line.split(|&b| b == b'#').next().unwrap_or_default();
            let mut words = line.split(|&b| is_space(b)).filter(|w| !w.is_empty());
            let (Some(command), value1) = (words.next(), words.next().unwrap_or_default()) else {
                continue;
            };
            let value2 = words.next().unwrap_or_default();
            match command {
                b"label" => labels.extend(prefix_row(value1, value2)),
                b"precedence" => precedence.extend(prefix_row(value1, value2)),
                b"scopev4" => scopes.extend(scope_row(value1, value2)),
                _ => {}
            }
        }
        let mut policy = Policy::default();
        if !labels.is_empty() {
            policy.labels = finish_prefix_table(labels, 1);
        }
        if !precedence.is_empty() {
            policy.precedence = finish_prefix_table(precedence, 40);
        }
        if !scopes.is_empty() {
            if !scopes.iter().any(|s| s.mask == 0) {
                scopes.push(ScopeRow {
                    addr: 0,
                    mask: 0,
                    scope: 14,
                });
            }
            // Stable: among equal masks the file's order stays, as with glibc's merge sort.
            scopes.sort_by_key(|s| std::cmp::Reverse(s.mask));
            policy.scopes = scopes;
        }
        policy
    }

    fn label(&self, ip: IpAddr) -> u32 {
        first_match(&self.labels, ip)
    }

    fn precedence(&self, ip: IpAddr) -> u32 {
        first_match(&self.precedence, ip)
    }

    /// glibc's `get_scope`: 2 link-local and loopback, 5 site-local, 14
    /// global; a multicast address's own scope; IPv4 from the scope table.
    fn scope(&self, ip: IpAddr) -> u32 {
        match ip {
            IpAddr::V6(v6) if v6.is_multicast() => u32::from(v6.octets()[1] & 0xf),
            IpAddr::V6(v6) if v6.is_loopback() || v6.segments()[0] & 0xffc0 == 0xfe80 => 2,
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfec0 => 5,
            IpAddr::V6(_) => 14,
            IpAddr::V4(v4) => {
                let addr = u32::from(v4);
                self.scopes
                    .iter()
                    .find(|s| addr & s.mask == s.addr)
                    .map_or(14, |s| s.scope)
            }
        }
    }
}

fn finish_prefix_table(mut rows: Vec<PrefixRow>, catch_all: u32) -> Vec<PrefixRow> {
    if !rows.iter().any(|r| r.bits == 0) {
        rows.push(row([0; 8], 0, catch_all));
    }
    // Stable: among equal lengths the file's order stays, as with glibc's merge sort.
    rows.sort_by_key(|r| std::cmp::Reverse(r.bits));
    rows
}

fn first_match(table: &[PrefixRow], ip: IpAddr) -> u32 {
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let addr = u128::from(v6);
    table
        .iter()
        .find(|r| {
            let mask = u128::MAX.checked_shl(128 - u32::from(r.bits)).unwrap_or(0);
            addr & mask == u128::from(r.prefix) & mask
        })
        .map_or(u32::MAX, |r| r.value)
}

/// `label`/`precedence PREFIX[/BITS] VALUE`.
fn prefix_row(value1: &[u8], value2: &[u8]) -> Option<PrefixRow> {
    let (prefix, bits) = split_prefix(value1);
    let prefix: Ipv6Addr = std::str::from_utf8(prefix).ok()?.parse().ok()?;
    let bits = bits.map_or(Some(128), c_number)?;
    let value = c_number(value2)?;
    (bits <= 128 && value <= i32::MAX as u64).then_some(PrefixRow {
        prefix,
        bits: bits as u8,
        value: value as u32,
    })
}

/// `scopev4 PREFIX[/BITS] VALUE`, the prefix IPv4 (`/0` to `/32`) or
/// IPv4-mapped IPv6 (`/96` to `/128`).
fn scope_row(value1: &[u8], value2: &[u8]) -> Option<ScopeRow> {
    let (prefix, bits) = split_prefix(value1);
    let prefix = std::str::from_utf8(prefix).ok()?;
    let value = c_number(value2)?;
    let (addr, bits) = if let Ok(v6) = prefix.parse::<Ipv6Addr>() {
        let bits = bits.map_or(Some(128), c_number)?;
        (
            v6.to_ipv4_mapped()?,
            (96..=128).contains(&bits).then_some(bits)?,
        )
    } else {
        let v4: Ipv4Addr = prefix.parse().ok()?;
        let bits = bits.map_or(Some(32), c_number)?;
        (v4, (bits <= 32).then_some(bits + 96)?)
    };
    if value > i32::MAX as u64 {
        return None;
    }
    let mask = u32::MAX.checked_shl(128 - bits as u32).unwrap_or(0);
    Some(ScopeRow {
        addr: u32::from(addr) & mask,
        mask,
        scope: value as u32,
    })
}

fn split_prefix(value: &[u8]) -> (&[u8], Option<&[u8]>) {
    match value.iter().position(|&b| b == b'/') {
        Some(at) => (&value[..at], Some(&value[at + 1..])),
        None => (value, None),
    }
}

/// A whole word read as C's `strtoul(word, &end, 10)` with `*end == '\0'`
/// required: empty is 0, a sign is allowed (minus wraps around, which the
/// callers' bounds then refuse), an overflow is refused.
fn c_number(word: &[u8]) -> Option<u64> {
    if word.is_empty() {
        return Some(0);
    }
    let (negative, digits) = match word[0] {
        b'-' => (true, &word[1..]),
        b'+' => (false, &word[1..]),
        _ => (false, word),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some(if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    })
}

/// C's `isspace` in the C locale.
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// One address as the sort sees it.
struct Candidate {
    dest: IpAddr,
    /// `None`: no route, so unusable (rule 1).
    source: Option<Source>,
}

/// `candidates` in getaddrinfo's order, each address once. `source` tells
/// the source towards a destination, `None` when there is no route.
pub(crate) fn order(
    candidates: &[IpAddr],
    policy: &Policy,
    source: &dyn Fn(IpAddr) -> Option<Source>,
) -> Vec<IpAddr> {
    let found: Vec<Candidate> = candidates
        .iter()
        .map(|&dest| Candidate {
            dest,
            source: source(dest),
        })
        .collect();
    let mut indices: Vec<usize> = (0..found.len()).collect();
    merge_sort(&mut indices, &|&a, &b| {
        compare(policy, (a, &found[a]), (b, &found[b]))
    });
    let mut ordered: Vec<IpAddr> = Vec::with_capacity(indices.len());
    for index in indices {
        if !ordered.contains(&found[index].dest) {
            ordered.push(found[index].dest);
        }
    }
    ordered
}

/// glibc's `rfc3484_sort`: `Less` puts `a` first. Rule 10 (the order the
/// addresses came in) decides last, so two entries are never equal.
fn compare(
    policy: &Policy,
    (ia, a): (usize, &Candidate),
    (ib, b): (usize, &Candidate),
) -> Ordering {
    let first = |a_wins: bool| {
        if a_wins {
            Ordering::Less
        } else {
            Ordering::Greater
        }
    };
    // Rule 1: avoid unusable destinations.
    if a.source.is_some() != b.source.is_some() {
        return first(a.source.is_some());
    }
    let (a_scope, b_scope) = (policy.scope(a.dest), policy.scope(b.dest));
    if let (Some(sa), Some(sb)) = (&a.source, &b.source) {
        // Rule 2: prefer matching scope.
        let (a_match, b_match) = (
            a_scope == policy.scope(sa.addr),
            b_scope == policy.scope(sb.addr),
        );
        if a_match != b_match {
            return first(a_match);
        }
        // Rule 3: avoid deprecated addresses.
        if sa.deprecated != sb.deprecated {
            return first(!sa.deprecated);
        }
        // Rule 4: prefer home addresses.
        if sa.home != sb.home {
            return first(sa.home);
        }
        // Rule 5: prefer matching label.
        let (a_match, b_match) = (
            policy.label(a.dest) == policy.label(sa.addr),
            policy.label(b.dest) == policy.label(sb.addr),
        );
        if a_match != b_match {
            return first(a_match);
        }
    }
    // Rule 6: prefer higher precedence.
    let (a_precedence, b_precedence) = (policy.precedence(a.dest), policy.precedence(b.dest));
    if a_precedence != b_precedence {
        return first(a_precedence > b_precedence);
    }
    // Rule 8: prefer smaller scope.
    if a_scope != b_scope {
        return first(a_scope < b_scope);
    }
    // Rule 9: use the longest matching prefix, within one family.
    if let (Some(sa), Some(sb)) = (&a.source, &b.source)
        && let Some((a_bits, b_bits)) = matching_bits((a.dest, sa), (b.dest, sb))
        && a_bits != b_bits
    {
        return first(a_bits > b_bits);
    }
    // Rule 10: leave the order unchanged.
    ia.cmp(&ib)
}

/// Rule 9's measure for two destinations of one family, as glibc computes
/// it. IPv4: the bits the destination shares with its source, counted only
/// when both are in the source's subnet; with the prefix length unknown (0)
/// glibc's mask keeps every bit, so only a destination equal to its source
/// counts. IPv6: the bits shared in the first 32-bit word where either pair
/// differs (no subnet limit).
fn matching_bits((da, sa): (IpAddr, &Source), (db, sb): (IpAddr, &Source)) -> Option<(u32, u32)> {
    match (da, sa.addr, db, sb.addr) {
        (IpAddr::V4(da), IpAddr::V4(s1), IpAddr::V4(db), IpAddr::V4(s2)) => {
            let bits = |dest: Ipv4Addr, src: Ipv4Addr, prefix_len: u8| {
                let (dest, src) = (u32::from(dest), u32::from(src));
                // `0xffffffff << (32 - prefixlen)`: x86 and arm shift by the
                // count modulo 32, so 0 (unknown) keeps all 32 bits.
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(prefix_len))
                    .filter(|_| prefix_len > 0)
                    .unwrap_or(u32::MAX);
                if src & mask == dest & mask {
                    (dest ^ src).leading_zeros()
                } else {
                    0
                }
            };
            Some((bits(da, s1, sa.prefix_len), bits(db, s2, sb.prefix_len)))
        }
        (IpAddr::V6(da), IpAddr::V6(s1), IpAddr::V6(db), IpAddr::V6(s2)) => {
            let words = |ip: Ipv6Addr| {
                let o = ip.octets();
                [0, 4, 8, 12].map(|i| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]))
            };
            let (da, s1, db, s2) = (words(da), words(s1), words(db), words(s2));
            Some(
                (0..4)
                    .find(|&i| da[i] != s1[i] || db[i] != s2[i])
                    .map_or((0, 0), |i| {
                        (
                            (da[i] ^ s1[i]).leading_zeros(),
                            (db[i] ^ s2[i]).leading_zeros(),
                        )
                    }),
            )
        }
        _ => None,
    }
}

/// glibc's qsort on small arrays: a top-down merge sort that takes from the
/// left half on a tie. Matching its steps matters only when a gai.conf
/// makes the rules disagree with one another (rule 9 applies within a family
/// only, so a custom table can make the comparison cyclic); std's sort may
/// panic on such a comparison.
fn merge_sort(items: &mut [usize], compare: &dyn Fn(&usize, &usize) -> Ordering) {
    if items.len() <= 1 {
        return;
    }
    let middle = items.len() / 2;
    merge_sort(&mut items[..middle], compare);
    merge_sort(&mut items[middle..], compare);
    let (left, right) = (items[..middle].to_vec(), items[middle..].to_vec());
    let (mut l, mut r) = (0, 0);
    for slot in items.iter_mut() {
        let take_left = r == right.len()
            || (l < left.len() && compare(&left[l], &right[r]) != Ordering::Greater);
        if take_left {
            *slot = left[l];
            l += 1;
        } else {
            *slot = right[r];
            r += 1;
        }
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

    /// A machine with one IPv4 and one IPv6 address, both on-link /24 and /64.
    fn dual(v4: &'static str, v6: &'static str) -> impl Fn(IpAddr) -> Option<Source> {
        move |dest| {
            Some(Source {
                addr: if dest.is_ipv4() { ip(v4) } else { ip(v6) },
                prefix_len: if dest.is_ipv4() { 24 } else { 64 },
                deprecated: false,
                home: false,
            })
        }
    }

    fn glibc(candidates: &[&str], source: &dyn Fn(IpAddr) -> Option<Source>) -> Vec<IpAddr> {
        order(&ips(candidates), &Policy::default(), source)
    }

    #[test]
    fn global_ipv6_is_preferred_when_the_machine_has_global_ipv6() {
        let src = dual("192.0.2.99", "2001:db8:2::99");
        assert_eq!(
            glibc(&["192.0.2.1", "2001:db8:1::1"], &src),
            ips(&["2001:db8:1::1", "192.0.2.1"])
        );
    }

    #[test]
    fn ipv4_is_preferred_when_ipv6_has_no_route() {
        let src = |d: IpAddr| dual("192.0.2.99", "::")(d).filter(|_| d.is_ipv4());
        assert_eq!(
            glibc(&["2001:db8:1::1", "192.0.2.1"], &src),
            ips(&["192.0.2.1", "2001:db8:1::1"])
        );
    }

    #[test]
    fn ipv4_is_preferred_when_the_only_ipv6_source_is_unique_local() {
        // A ULA source's label (6) is not a global destination's (1): rule 5.
        let src = dual("192.0.2.99", "fd00::2");
        assert_eq!(
            glibc(&["2001:db8:1::1", "192.0.2.1"], &src)[0],
            ip("192.0.2.1")
        );
    }

    #[test]
    fn unique_local_ipv6_beats_ipv4_as_glibc_ranks_it_not_as_rfc_6724_does() {
        // What `getent ahosts` says in the test namespaces: RFC 6724 would
        // rank fd00::/7 (3) below IPv4 (35); glibc keeps RFC 3484's 40 over 10.
        let src = dual("10.200.1.2", "fd00:200:1::2");
        assert_eq!(
            glibc(&["10.200.1.1", "fd00:200:1::1"], &src),
            ips(&["fd00:200:1::1", "10.200.1.1"])
        );
    }

    #[test]
    fn loopback_prefers_ipv6_like_ssh_localhost() {
        let src = |d: IpAddr| {
            Some(Source {
                addr: d,
                prefix_len: 0,
                deprecated: false,
                home: false,
            })
        };
        assert_eq!(glibc(&["127.0.0.1", "::1"], &src)[0], ip("::1"));
    }

    #[test]
    fn within_the_subnet_the_longest_matching_prefix_wins() {
        let src = dual("10.9.0.2", "fd00:9::2");
        assert_eq!(
            glibc(&["10.9.0.77", "10.9.0.1"], &src),
            ips(&["10.9.0.1", "10.9.0.77"])
        );
        assert_eq!(
            glibc(&["fd00:8::1", "fd00:9::77"], &src),
            ips(&["fd00:9::77", "fd00:8::1"]),
            "IPv6 counts shared bits without a subnet limit"
        );
    }

    #[test]
    fn with_the_prefix_length_unknown_only_the_source_itself_moves_up() {
        // An IPv4-only machine: glibc keeps no interface list, so rule 9 sees
        // a mask of 32 bits (as `getent ahosts` shows in such a namespace).
        let src = |_: IpAddr| {
            Some(Source {
                addr: ip("10.9.0.2"),
                prefix_len: 0,
                deprecated: false,
                home: false,
            })
        };
        assert_eq!(
            glibc(&["10.9.0.200", "10.9.0.3", "10.9.0.2"], &src),
            ips(&["10.9.0.2", "10.9.0.200", "10.9.0.3"])
        );
    }

    #[test]
    fn outside_the_subnet_the_order_the_addresses_came_in_stays() {
        let src = dual("192.0.2.99", "2001:db8:2::99");
        assert_eq!(
            glibc(&["198.51.100.2", "198.51.100.1"], &src),
            ips(&["198.51.100.2", "198.51.100.1"])
        );
    }

    #[test]
    fn unusable_destinations_go_last_and_duplicates_go() {
        let src = |d: IpAddr| dual("10.9.0.2", "fd00:9::2")(d).filter(|_| d != ip("192.0.2.1"));
        assert_eq!(
            glibc(&["192.0.2.1", "10.9.0.5", "192.0.2.1", "10.9.0.5"], &src),
            ips(&["10.9.0.5", "192.0.2.1"])
        );
        assert_eq!(glibc(&[], &src), Vec::<IpAddr>::new());
    }

    #[test]
    fn a_deprecated_source_pushes_its_destination_back() {
        let src = |d: IpAddr| {
            Some(Source {
                addr: if d == ip("2001:db8:1::1") {
                    ip("2001:db8:1::99")
                } else {
                    ip("2001:db8:2::99")
                },
                prefix_len: 64,
                deprecated: d == ip("2001:db8:1::1"),
                home: false,
            })
        };
        assert_eq!(
            glibc(&["2001:db8:1::1", "2001:db8:2::1"], &src),
            ips(&["2001:db8:2::1", "2001:db8:1::1"])
        );
    }

    #[test]
    fn link_local_beats_global_of_the_same_rank_by_smaller_scope() {
        // Rule 8, after rule 6 found both at precedence 40.
        let src = |d: IpAddr| {
            Some(Source {
                addr: if d.is_ipv4() { ip("169.254.0.2") } else { d },
                prefix_len: 16,
                deprecated: false,
                home: false,
            })
        };
        assert_eq!(
            glibc(&["2001:db8::1", "fe80::1"], &src),
            ips(&["fe80::1", "2001:db8::1"])
        );
    }

    #[test]
    fn gai_conf_precedence_can_prefer_ipv4() {
        // The line Debian's gai.conf suggests for "prefer IPv4".
        let policy = Policy::from_gai_conf(b"# comment\nprecedence  ::ffff:0:0/96  100\n");
        let src = dual("10.9.0.2", "fd00:9::2");
        assert_eq!(
            order(&ips(&["fd00:9::1", "10.9.0.1"]), &policy, &src),
            ips(&["10.9.0.1", "fd00:9::1"])
        );
        // The rest of the table is gone: every other IPv6 address is at 40.
        assert_eq!(policy.precedence(ip("::1")), 40);
        assert_eq!(policy.precedence(ip("10.0.0.1")), 100);
    }

    #[test]
    fn gai_conf_tables_replace_the_built_in_ones_longest_prefix_first() {
        let policy = Policy::from_gai_conf(
            b"label ::/0 9\nlabel 2001:db8::/32 3 # trailing words are ignored\n\
              label fd00::/8 5\nprecedence ::1/129 70\nprecedence bogus 7\n\
              scopev4 ::ffff:10.0.0.0/104 5\nscopev4 192.168.0.0/16 5\nreload yes\n",
        );
        assert_eq!(policy.label(ip("2001:db8::1")), 3);
        assert_eq!(policy.label(ip("fd00::1")), 5);
        assert_eq!(policy.label(ip("::1")), 9, "the built-in ::1 row is gone");
        assert_eq!(
            policy.precedence,
            DEFAULT_PRECEDENCE.to_vec(),
            "no precedence line was usable: /129 is too long, bogus is no prefix"
        );
        assert_eq!(policy.scope(ip("10.1.2.3")), 5);
        assert_eq!(policy.scope(ip("192.168.1.1")), 5);
        assert_eq!(
            policy.scope(ip("127.0.0.1")),
            14,
            "the built-in scopes are gone"
        );
    }

    #[test]
    fn numbers_are_read_as_strtoul_reads_them() {
        assert_eq!(c_number(b""), Some(0));
        assert_eq!(c_number(b"+12"), Some(12));
        assert_eq!(c_number(b"-1"), Some(u64::MAX));
        assert_eq!(c_number(b"1x"), None);
        assert_eq!(c_number(b"+"), None);
        assert_eq!(c_number(b"99999999999999999999999"), None);
        let policy = Policy::from_gai_conf(b"precedence ::/0 -1\nprecedence ::1/128\n");
        assert_eq!(policy.precedence(ip("::1")), 0, "a missing value is 0");
        assert_eq!(
            policy.precedence(ip("::2")),
            40,
            "-1 is refused; the catch-all is added"
        );
    }

    #[test]
    fn a_cyclic_custom_table_still_gives_one_order() {
        // Equal precedence across families: rule 9 orders the IPv4 pair, rule
        // 10 the pairs across families, which is no total order.
        let policy = Policy::from_gai_conf(b"precedence ::/0 40\nlabel ::/0 1\n");
        let src = dual("10.9.0.2", "fd00:9::2");
        let got = order(
            &ips(&["10.9.0.200", "fd00:9::1", "10.9.0.3"]),
            &policy,
            &src,
        );
        // glibc's merge sort never compares the two IPv4 addresses directly.
        assert_eq!(got, ips(&["10.9.0.200", "fd00:9::1", "10.9.0.3"]));
    }
}
