//! Knockers into nftables sets, talking to the kernel over netlink
//! (`NETLINK_NETFILTER`, the nf_tables messages of
//! linux/netfilter/nf_tables.h) as `nft` itself does, without a process or a
//! shell per knock and without a C library: the `[door.nftables]` action.
//!
//! What arrives together goes in one batch, which the kernel applies as one
//! transaction, all or nothing. A grant is written so that it is right
//! whether the element is there or not: add it (a no-op if present),
//! delete it, add it again with the full timeout, all in the same
//! transaction, so a re-knock restarts the kernel's timeout on every kernel
//! (element timeout updates only came with Linux 6.12) and never makes a
//! duplicate. A removal is add-then-delete for the same reason: a knocker
//! the kernel has already expired is not an error. The messages are built
//! and read by pure functions ([`batch`], [`read_set`]); [`Kernel`] is the
//! socket.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::time::Duration;

use crate::core::netlink::{
    self, Message, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, Writer,
};

/// An nftables address family of a table, as `nft` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `ip`: IPv4 only.
    Ip,
    /// `ip6`: IPv6 only.
    Ip6,
    /// `inet`: both.
    Inet,
}

impl Family {
    /// The family as `nft` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
        }
    }

    /// Reads `ip`, `ip6` or `inet`.
    pub fn parse(text: &str) -> Option<Family> {
        match text {
            "ip" => Some(Family::Ip),
            "ip6" => Some(Family::Ip6),
            "inet" => Some(Family::Inet),
            _ => None,
        }
    }

    /// `NFPROTO_*`, the family byte of every message about this table.
    fn proto(self) -> u8 {
        match self {
            Family::Ip => 2,
            Family::Ip6 => 10,
            Family::Inet => 1,
        }
    }
}

/// What a set's elements are: one knocker's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `type ipv4_addr`.
    Ipv4,
    /// `type ipv6_addr`.
    Ipv6,
}

impl Key {
    /// The key of `addr`'s family (an IPv4-mapped IPv6 address is IPv4).
    pub fn of(addr: IpAddr) -> Key {
        match addr.to_canonical() {
            IpAddr::V4(_) => Key::Ipv4,
            IpAddr::V6(_) => Key::Ipv6,
        }
    }

    /// The type as `nft` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Key::Ipv4 => "ipv4_addr",
            Key::Ipv6 => "ipv6_addr",
        }
    }

    /// nftables' datatype number (`TYPE_IPADDR`, `TYPE_IP6ADDR`) and the key's length.
    fn datatype(self) -> (u32, u32) {
        match self {
            Key::Ipv4 => (7, 4),
            Key::Ipv6 => (8, 16),
        }
    }
}

/// One set of one table, e.g. `inet knockr knocked_v4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRef {
    /// The table's family.
    pub family: Family,
    /// The table's name.
    pub table: String,
    /// The set's name.
    pub set: String,
    /// What its elements are.
    pub key: Key,
}

impl fmt::Display for SetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.family.name(), self.table, self.set)
    }
}

impl SetRef {
    /// The `nft` command that creates the set as knockr needs it.
    fn create_command(&self) -> String {
        format!(
            "nft add set {self} '{{ type {}; flags timeout; }}'",
            self.key.name()
        )
    }
}

/// A name `nft` accepts for a table or a set without quoting: a letter,
/// then letters, digits, `_`, `-`, `.`; at most 255 bytes (the kernel's
/// `NFT_NAME_MAXLEN` less its NUL).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() < 256
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// What a set as the kernel lists it lacks for a door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The table does not exist.
    NoTable,
    /// The table exists, the set does not.
    NoSet,
    /// The set holds other things than the door's addresses (nftables' datatype number).
    WrongKey(u32),
    /// The set has no `flags timeout`, so its elements cannot expire.
    NoTimeout,
    /// The set is an interval set or a map, which single addresses do not fit.
    NotPlain(&'static str),
    /// The kernel could not be asked.
    Failed(String),
}

impl Problem {
    /// One sentence about `set`, ending with the `nft` command that fixes
    /// it. A missing table is made with every set in `door` that it holds
    /// (the door's others), so one command makes all the door needs.
    pub fn describe(&self, set: &SetRef, door: &[&SetRef]) -> String {
        let recreate = || format!("nft delete set {set} && {}", set.create_command());
        match self {
            Problem::NoTable => {
                let mut commands =
                    vec![format!("nft add table {} {}", set.family.name(), set.table)];
                let others = door
                    .iter()
                    .copied()
                    .filter(|s| s.family == set.family && s.table == set.table && *s != set);
                commands.extend(
                    std::iter::once(set)
                        .chain(others)
                        .map(SetRef::create_command),
                );
                let what = if commands.len() > 2 {
                    "the sets"
                } else {
                    "the set"
                };
                format!(
                    "nftables table {} {} does not exist; create it and {what} with: {}",
                    set.family.name(),
                    set.table,
                    commands.join(" && ")
                )
            }
            Problem::NoSet => format!(
                "nftables set {set} does not exist; create it with: {}",
                set.create_command()
            ),
            Problem::WrongKey(found) => format!(
                "nftables set {set} holds {}, not {}; recreate it with: {}",
                datatype_name(*found),
                set.key.name(),
                recreate()
            ),
            Problem::NoTimeout => format!(
                "nftables set {set} has no timeout flag, so the kernel could not close the door by \
                 itself; recreate it with: {}",
                recreate()
            ),
            Problem::NotPlain(what) => format!(
                "nftables set {set} is {what}, not a set of single addresses; recreate it with: {}",
                recreate()
            ),
            Problem::Failed(why) => format!("cannot read nftables set {set}: {why}"),
        }
    }
}

/// nftables' name of a datatype number, for messages.
fn datatype_name(datatype: u32) -> String {
    match datatype {
        7 => "ipv4_addr".into(),
        8 => "ipv6_addr".into(),
        9 => "ether_addr".into(),
        12 => "inet_proto".into(),
        13 => "inet_service".into(),
        19 => "mark".into(),
        41 => "ifname".into(),
        other if other > 0xff => "a concatenation".into(),
        other => format!("datatype {other}"),
    }
}

/// One change to a set: a knocker in (with its timeout) or out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// In, for this long; a knocker already in gets the full time again.
    Add(Duration),
    /// Out, if it is still there.
    Remove,
}

/// `op` on `addr` in `set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    /// The set; its key must be `addr`'s family ([`Key::of`]).
    pub set: &'a SetRef,
    /// The knocker.
    pub addr: IpAddr,
    /// In or out.
    pub op: Op,
}

/// The subsystem of nf_tables messages (`NFNL_SUBSYS_NFTABLES`).
const SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_SET_INTERVAL: u32 = 0x4;
const NFT_SET_MAP: u32 = 0x8;
const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_OBJECT: u32 = 0x40;
/// The longest element timeout the kernel's millisecond field is given.
const MAX_TIMEOUT_MS: u64 = u32::MAX as u64 * 1000;

/// The message type of nf_tables message `msg`.
fn nft_type(msg: u16) -> u16 {
    (SUBSYS_NFTABLES << 8) | msg
}

/// `struct nfgenmsg`: the family, version 0, and a resource id (big-endian).
fn nfgenmsg(family: u8, res_id: u16) -> [u8; 4] {
    let id = res_id.to_be_bytes();
    [family, 0, id[0], id[1]]
}

/// One element message: `kind` (new or delete) of `addr` in `set`, asking
/// for an acknowledgement.
fn element(
    w: &mut Writer,
    kind: u16,
    seq: u32,
    set: &SetRef,
    addr: IpAddr,
    timeout: Option<Duration>,
) {
    // No NLM_F_EXCL: adding an element that is there is no error.
    let flags = match kind {
        NFT_MSG_NEWSETELEM => NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK,
        _ => NLM_F_REQUEST | NLM_F_ACK,
    };
    w.begin(nft_type(kind), flags, seq);
    w.header(&nfgenmsg(set.family.proto(), 0));
    w.attr_str(NFTA_SET_ELEM_LIST_TABLE, &set.table);
    w.attr_str(NFTA_SET_ELEM_LIST_SET, &set.set);
    w.nest_begin(NFTA_SET_ELEM_LIST_ELEMENTS);
    w.nest_begin(NFTA_LIST_ELEM);
    w.nest_begin(NFTA_SET_ELEM_KEY);
    match addr.to_canonical() {
        IpAddr::V4(v4) => w.attr(NFTA_DATA_VALUE, &v4.octets()),
        IpAddr::V6(v6) => w.attr(NFTA_DATA_VALUE, &v6.octets()),
    }
    w.nest_end();
    if let Some(timeout) = timeout {
        let ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .min(MAX_TIMEOUT_MS);
        w.attr(NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
    }
    w.nest_end();
    w.nest_end();
    w.end();
}

/// A batch carrying `changes` as one transaction, its messages numbered
/// from `seq`: the bytes, and the sequence numbers of its first and last
/// message (every element message asks for an acknowledgement).
pub fn batch(changes: &[Change<'_>], seq: u32) -> (Vec<u8>, u32, u32) {
    let mut w = Writer::default();
    let mut next = seq;
    let mut number = || {
        let n = next;
        next = next.wrapping_add(1);
        n
    };
    w.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, number());
    w.header(&nfgenmsg(0, SUBSYS_NFTABLES));
    w.end();
    // (message, timeout): a new element with this timeout, or a delete.
    const ADD: u16 = NFT_MSG_NEWSETELEM;
    const DEL: u16 = NFT_MSG_DELSETELEM;
    for change in changes {
        let steps = match change.op {
            Op::Add(timeout) => vec![(ADD, Some(timeout)), (DEL, None), (ADD, Some(timeout))],
            // A short timeout: should the delete ever be refused, the
            // element added here expires by itself within a second.
            Op::Remove => vec![(ADD, Some(Duration::from_secs(1))), (DEL, None)],
        };
        for (kind, timeout) in steps {
            element(&mut w, kind, number(), change.set, change.addr, timeout);
        }
    }
    let last = number();
    w.begin(NFNL_MSG_BATCH_END, NLM_F_REQUEST, last);
    w.header(&nfgenmsg(0, SUBSYS_NFTABLES));
    w.end();
    (w.into_bytes(), seq, last)
}

/// The request for table `set.table` (`seq`), which answers whether it exists.
fn get_table(set: &SetRef, seq: u32) -> Vec<u8> {
    let mut w = Writer::default();
    w.begin(nft_type(NFT_MSG_GETTABLE), NLM_F_REQUEST | NLM_F_ACK, seq);
    w.header(&nfgenmsg(set.family.proto(), 0));
    w.attr_str(NFTA_TABLE_NAME, &set.table);
    w.end();
    w.into_bytes()
}

/// The request for set `set` (`seq`).
fn get_set(set: &SetRef, seq: u32) -> Vec<u8> {
    let mut w = Writer::default();
    w.begin(nft_type(NFT_MSG_GETSET), NLM_F_REQUEST | NLM_F_ACK, seq);
    w.header(&nfgenmsg(set.family.proto(), 0));
    w.attr_str(NFTA_SET_TABLE, &set.table);
    w.attr_str(NFTA_SET_NAME, &set.set);
    w.end();
    w.into_bytes()
}

/// Judges a set from the kernel's `NFT_MSG_NEWSET` payload (after nfgenmsg).
pub fn read_set(attrs: &[u8], want: Key) -> Result<(), Problem> {
    let be32 = |v: &[u8]| v.try_into().ok().map(u32::from_be_bytes);
    let (mut flags, mut key_type, mut key_len) = (None, None, None);
    for (kind, value) in netlink::attrs(attrs) {
        match kind {
            NFTA_SET_FLAGS => flags = be32(value),
            NFTA_SET_KEY_TYPE => key_type = be32(value),
            NFTA_SET_KEY_LEN => key_len = be32(value),
            _ => {}
        }
    }
    let flags = flags.unwrap_or(0);
    let (datatype, len) = want.datatype();
    if flags & NFT_SET_MAP != 0 || flags & NFT_SET_OBJECT != 0 {
        return Err(Problem::NotPlain("a map"));
    }
    if key_type != Some(datatype) || key_len != Some(len) {
        return Err(Problem::WrongKey(key_type.unwrap_or(0)));
    }
    if flags & NFT_SET_INTERVAL != 0 {
        return Err(Problem::NotPlain("an interval set"));
    }
    if flags & NFT_SET_TIMEOUT == 0 {
        return Err(Problem::NoTimeout);
    }
    Ok(())
}

/// What a batch came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The kernel refused it (the first error it gave, as errno): nothing of it was applied.
    Kernel(i32),
    /// The socket failed or the kernel did not answer in time.
    Io(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Kernel(libc::ENOENT) => f.write_str("the table or the set does not exist"),
            Refused::Kernel(libc::EPERM) => {
                f.write_str("operation not permitted (it needs CAP_NET_ADMIN)")
            }
            Refused::Kernel(errno) => write!(f, "{}", std::io::Error::from_raw_os_error(*errno)),
            Refused::Io(why) => f.write_str(why),
        }
    }
}

/// How long an answer is waited for.
const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// Reads before giving up on an answer that never completes.
const MAX_READS: usize = 4096;

/// A netfilter netlink socket, closed on drop (and on exec).
pub struct Kernel {
    /// The socket; unbound, so it sends to the kernel.
    socket: socket2::Socket,
    /// The next sequence number.
    seq: u32,
    /// The buffer replies are read into.
    buf: Vec<u8>,
}

impl Kernel {
    /// Opens the socket. Fails where the kernel has no netlink (not Linux).
    pub fn open() -> std::io::Result<Kernel> {
        use socket2::{Domain, Protocol, Socket, Type};
        const AF_NETLINK: i32 = 16;
        const NETLINK_NETFILTER: i32 = 12;
        let socket = Socket::new(
            Domain::from(AF_NETLINK),
            Type::RAW.cloexec(),
            Some(Protocol::from(NETLINK_NETFILTER)),
        )?;
        socket.set_read_timeout(Some(ANSWER_WAIT))?;
        Ok(Kernel {
            socket,
            seq: std::process::id().wrapping_mul(0x9e37_79b9),
            buf: vec![0; 64 * 1024],
        })
    }

    /// Whether `set` exists and fits a door: an address key of the right
    /// family, `flags timeout`, not a map or an interval set.
    pub fn check(&mut self, set: &SetRef) -> Result<(), Problem> {
        let seq = self.next_seq(1);
        let failed = |why: Refused| Problem::Failed(why.to_string());
        match self.ask(&get_table(set, seq), seq, seq, |_| {}) {
            Ok(()) => {}
            Err(Refused::Kernel(libc::ENOENT)) => return Err(Problem::NoTable),
            Err(why) => return Err(failed(why)),
        }
        let seq = self.next_seq(1);
        let mut found = None;
        let asked = self.ask(&get_set(set, seq), seq, seq, |message| {
            if message.kind == nft_type(NFT_MSG_NEWSET) {
                found = Some(read_set(
                    message.payload.get(4..).unwrap_or_default(),
                    set.key,
                ));
            }
        });
        match asked {
            Ok(()) => {
                found.unwrap_or_else(|| Err(failed(Refused::Io("the kernel sent no set".into()))))
            }
            Err(Refused::Kernel(libc::ENOENT)) => Err(Problem::NoSet),
            Err(why) => Err(failed(why)),
        }
    }

    /// Applies `changes` as one transaction: all of them, or (refused) none.
    pub fn apply(&mut self, changes: &[Change<'_>]) -> Result<(), Refused> {
        if changes.is_empty() {
            return Ok(());
        }
        let messages = changes
            .iter()
            .map(|c| match c.op {
                Op::Add(_) => 3,
                Op::Remove => 2,
            })
            .sum::<u32>();
        let seq = self.next_seq(messages + 2);
        let (bytes, first, last) = batch(changes, seq);
        self.ask(&bytes, first, last, |_| {})
    }

    /// `count` fresh sequence numbers, the first returned.
    fn next_seq(&mut self, count: u32) -> u32 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(count);
        seq
    }

    /// Sends `request` (messages numbered `first..=last`) and reads until
    /// every message asking for an acknowledgement has one, or an error
    /// comes; other messages of the request go to `each`.
    fn ask(
        &mut self,
        request: &[u8],
        first: u32,
        last: u32,
        mut each: impl FnMut(&Message<'_>),
    ) -> Result<(), Refused> {
        let io = |err: std::io::Error| Refused::Io(err.to_string());
        let sent = self.socket.send(request).map_err(io)?;
        if sent != request.len() {
            return Err(Refused::Io("the request was cut short".into()));
        }
        // A batch's first and last messages ask for no acknowledgement.
        let batch = last != first;
        let mut waiting = if batch { last - first - 1 } else { 1 };
        let mut refused = None;
        let ours = |seq: u32| seq.wrapping_sub(first) <= last.wrapping_sub(first);
        for _ in 0..MAX_READS {
            let len = match (&self.socket).read(&mut self.buf) {
                Ok(len) => len,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(Refused::Io("the kernel did not answer within 2 s".into()));
                }
                Err(err) => return Err(io(err)),
            };
            for message in netlink::messages(&self.buf[..len]) {
                if !ours(message.seq) {
                    continue;
                }
                match message.error() {
                    Some(0) => waiting = waiting.saturating_sub(1),
                    Some(code) => {
                        // An error on the batch's first message is the whole batch's.
                        if batch && message.seq == first {
                            return Err(Refused::Kernel(-code));
                        }
                        refused.get_or_insert(Refused::Kernel(-code));
                        waiting = waiting.saturating_sub(1);
                    }
                    None if message.kind == NLMSG_DONE => {}
                    None if message.kind == NLMSG_ERROR => {
                        return Err(Refused::Io("a truncated answer".into()));
                    }
                    None => each(&message),
                }
            }
            if waiting == 0 {
                return refused.map_or(Ok(()), Err);
            }
        }
        Err(Refused::Io("the answer never ended".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: Key) -> SetRef {
        SetRef {
            family: Family::Inet,
            table: "knockr".into(),
            set: match key {
                Key::Ipv4 => "knocked_v4".into(),
                Key::Ipv6 => "knocked_v6".into(),
            },
            key,
        }
    }

    /// The element messages of a batch: (type, flags, key bytes, timeout in ms).
    fn elements(bytes: &[u8]) -> Vec<(u16, Vec<u8>, Option<u64>)> {
        let mut out = Vec::new();
        for message in netlink::messages(bytes) {
            if message.kind >> 8 != SUBSYS_NFTABLES {
                continue;
            }
            for (kind, list) in netlink::attrs(&message.payload[4..]) {
                if kind != NFTA_SET_ELEM_LIST_ELEMENTS {
                    continue;
                }
                for (_, elem) in netlink::attrs(list) {
                    let (mut key, mut timeout) = (Vec::new(), None);
                    for (kind, value) in netlink::attrs(elem) {
                        match kind {
                            NFTA_SET_ELEM_KEY => {
                                key = netlink::attrs(value).next().unwrap().1.to_vec();
                            }
                            NFTA_SET_ELEM_TIMEOUT => {
                                timeout = Some(u64::from_be_bytes(value.try_into().unwrap()));
                            }
                            _ => {}
                        }
                    }
                    out.push((message.kind & 0xff, key, timeout));
                }
            }
        }
        out
    }

    #[test]
    fn a_grant_is_add_delete_add_so_a_re_knock_restarts_the_timeout_and_a_removal_never_fails() {
        let (v4, v6) = (set(Key::Ipv4), set(Key::Ipv6));
        let hour = Duration::from_secs(3600);
        let changes = [
            Change {
                set: &v4,
                addr: "::ffff:10.0.0.2".parse().unwrap(),
                op: Op::Add(hour),
            },
            Change {
                set: &v6,
                addr: "2001:db8::2".parse().unwrap(),
                op: Op::Remove,
            },
        ];
        let (bytes, first, last) = batch(&changes, 100);
        assert_eq!((first, last), (100, 106));
        let kinds: Vec<u16> = netlink::messages(&bytes).map(|m| m.kind).collect();
        assert_eq!(kinds.first(), Some(&NFNL_MSG_BATCH_BEGIN));
        assert_eq!(kinds.last(), Some(&NFNL_MSG_BATCH_END));
        let seqs: Vec<u32> = netlink::messages(&bytes).map(|m| m.seq).collect();
        assert_eq!(seqs, (100..=106).collect::<Vec<_>>());
        let v6_key = "2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
            .to_vec();
        assert_eq!(
            elements(&bytes),
            [
                (NFT_MSG_NEWSETELEM, vec![10, 0, 0, 2], Some(3_600_000)),
                (NFT_MSG_DELSETELEM, vec![10, 0, 0, 2], None),
                (NFT_MSG_NEWSETELEM, vec![10, 0, 0, 2], Some(3_600_000)),
                (NFT_MSG_NEWSETELEM, v6_key.clone(), Some(1000)),
                (NFT_MSG_DELSETELEM, v6_key, None),
            ]
        );
        // The batch is addressed to nf_tables; element messages to the inet family.
        let begin = netlink::messages(&bytes).next().unwrap();
        assert_eq!(begin.payload, &[0, 0, 0, 10]);
        let element = netlink::messages(&bytes).nth(1).unwrap();
        assert_eq!(element.payload[0], 1);
    }

    /// A set's attributes as the kernel lists them.
    fn listed(flags: u32, key_type: u32, key_len: u32) -> Vec<u8> {
        let mut w = Writer::default();
        w.begin(0, 0, 0);
        w.attr_str(NFTA_SET_TABLE, "knockr");
        w.attr_str(NFTA_SET_NAME, "knocked_v4");
        w.attr(NFTA_SET_FLAGS, &flags.to_be_bytes());
        w.attr(NFTA_SET_KEY_TYPE, &key_type.to_be_bytes());
        w.attr(NFTA_SET_KEY_LEN, &key_len.to_be_bytes());
        w.end();
        w.into_bytes()[16..].to_vec()
    }

    #[test]
    fn a_set_fits_only_with_the_right_key_and_a_timeout_flag() {
        assert_eq!(read_set(&listed(NFT_SET_TIMEOUT, 7, 4), Key::Ipv4), Ok(()));
        assert_eq!(read_set(&listed(NFT_SET_TIMEOUT, 8, 16), Key::Ipv6), Ok(()));
        assert_eq!(
            read_set(&listed(NFT_SET_TIMEOUT, 8, 16), Key::Ipv4),
            Err(Problem::WrongKey(8))
        );
        assert_eq!(
            read_set(&listed(0, 7, 4), Key::Ipv4),
            Err(Problem::NoTimeout)
        );
        assert_eq!(
            read_set(&listed(NFT_SET_TIMEOUT | NFT_SET_INTERVAL, 7, 4), Key::Ipv4),
            Err(Problem::NotPlain("an interval set"))
        );
        assert_eq!(
            read_set(&listed(NFT_SET_TIMEOUT | NFT_SET_MAP, 7, 4), Key::Ipv4),
            Err(Problem::NotPlain("a map"))
        );
    }

    #[test]
    fn each_problem_is_one_sentence_with_the_command_that_fixes_it() {
        let v4 = set(Key::Ipv4);
        assert_eq!(
            Problem::NoTable.describe(&v4, &[&v4]),
            "nftables table inet knockr does not exist; create it and the set with: \
             nft add table inet knockr && nft add set inet knockr knocked_v4 '{ type ipv4_addr; flags timeout; }'"
        );
        let v6 = set(Key::Ipv6);
        assert_eq!(
            Problem::NoTable.describe(&v4, &[&v4, &v6]),
            "nftables table inet knockr does not exist; create it and the sets with: \
             nft add table inet knockr && nft add set inet knockr knocked_v4 '{ type ipv4_addr; flags timeout; }' \
             && nft add set inet knockr knocked_v6 '{ type ipv6_addr; flags timeout; }'"
        );
        assert_eq!(
            Problem::NoSet.describe(&v4, &[&v4]),
            "nftables set inet knockr knocked_v4 does not exist; create it with: \
             nft add set inet knockr knocked_v4 '{ type ipv4_addr; flags timeout; }'"
        );
        assert_eq!(
            Problem::WrongKey(8).describe(&v4, &[&v4]),
            "nftables set inet knockr knocked_v4 holds ipv6_addr, not ipv4_addr; recreate it with: \
             nft delete set inet knockr knocked_v4 && nft add set inet knockr knocked_v4 '{ type ipv4_addr; flags timeout; }'"
        );
    }

    #[test]
    fn names_are_those_nft_takes_unquoted() {
        for good in ["knockr", "knocked_v4", "a-b.c", "K9"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "9lives", "a b", "a;b", "a\nb", "é", &"x".repeat(256)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
