//! A RouterOS firewall simulator for the scripts `knockr routeros rules`
//! prints: it imports them the way `/import` would and runs packets through
//! the filter table on a simulated clock, following the reference
//! (`shared/reference/routeros.md`, "Firewall filter semantics"): chains
//! top to bottom, `jump`/`return`, `accept`/`drop`/`reject` end the packet,
//! `add-src-to-address-list` does not, the end of `input` accepts, address
//! lists whose entries expire, `!` on matchers.
//!
//! It parses only what the generator emits (and the few default-config rules
//! the tests add), strictly: any other construct panics, so a change in the
//! script's syntax fails the tests instead of being half understood.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// What the firewall did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Reject,
}

/// One packet arriving at the router (chain `input`).
#[derive(Debug, Clone)]
pub struct Packet {
    pub src: IpAddr,
    /// `tcp`, `udp`, `icmp` or `icmpv6`.
    pub proto: &'static str,
    pub dst_port: Option<u16>,
    /// The IP packet's total length, as `packet-size` sees it.
    pub size: u16,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    /// The interface lists the in-interface belongs to.
    pub in_lists: Vec<&'static str>,
    /// `new`, `established`, ...
    pub state: &'static str,
}

impl Packet {
    /// A TCP SYN from the WAN: a new connection to `port`.
    pub fn tcp(src: &str, port: u16) -> Packet {
        let src: IpAddr = src.parse().unwrap();
        Packet {
            size: if src.is_ipv4() { 60 } else { 80 },
            src,
            proto: "tcp",
            dst_port: Some(port),
            icmp: None,
            in_lists: vec!["WAN"],
            state: "new",
        }
    }

    /// One UDP datagram (one byte of payload) from the WAN.
    pub fn udp(src: &str, port: u16) -> Packet {
        let src: IpAddr = src.parse().unwrap();
        Packet {
            size: if src.is_ipv4() { 29 } else { 49 },
            proto: "udp",
            ..Packet::tcp(&src.to_string(), port)
        }
    }

    /// An echo request with `payload` bytes from the WAN (`ping -s payload`).
    pub fn ping(src: &str, payload: u16) -> Packet {
        let src: IpAddr = src.parse().unwrap();
        let (proto, icmp, header) = if src.is_ipv4() {
            ("icmp", (8, 0), 28)
        } else {
            ("icmpv6", (128, 0), 48)
        };
        Packet {
            proto,
            dst_port: None,
            size: payload + header,
            icmp: Some(icmp),
            ..Packet::tcp(&src.to_string(), 1)
        }
    }

    /// The same packet as part of an established connection.
    pub fn established(self) -> Packet {
        Packet {
            state: "established",
            ..self
        }
    }

    /// The same packet arriving from the LAN.
    pub fn on_the_lan(self) -> Packet {
        Packet {
            in_lists: vec!["LAN"],
            ..self
        }
    }
}

#[derive(Debug, Clone)]
enum Action {
    Accept,
    Drop,
    Reject,
    Jump(String),
    Return,
    AddSrc { list: String, timeout: Duration },
}

#[derive(Debug, Clone)]
enum Match {
    Protocol(String),
    DstPort(Vec<(u16, u16)>),
    SrcList(String),
    InInterfaceList(String),
    State(Vec<String>),
    PacketSize(u16, u16),
    IcmpOptions(u8, u8),
}

#[derive(Debug, Clone)]
struct Rule {
    id: u32,
    /// The fields as they were added (`place-before` left out), for comparing tables.
    fields: Vec<(String, String)>,
    chain: String,
    comment: Option<String>,
    action: Action,
    /// Each matcher, with whether it is negated (`!`).
    matchers: Vec<(bool, Match)>,
}

/// One family's firewall: its filter table and its address lists.
#[derive(Debug, Default)]
struct Table {
    rules: Vec<Rule>,
    /// (list, address) -> when the entry expires.
    lists: HashMap<(String, IpAddr), Duration>,
    next_id: u32,
}

/// A router: the `/ip` and `/ipv6` firewalls and a clock.
#[derive(Debug, Default)]
pub struct Router {
    now: Duration,
    v4: Table,
    v6: Table,
}

/// Which menu an imported line runs in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Menu {
    Filter(bool),
    Lists(bool),
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// A router with the default configuration's input rules (the ones that
    /// matter here) under `/ip` and `/ipv6`.
    pub fn defconf() -> Router {
        let mut router = Router::new();
        router.import(DEFCONF).unwrap();
        router
    }

    /// Lets `by` pass on the clock: list entries expire.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Imports `script` as `/import` runs it: line by line, stopping at the
    /// first failing command (`:error`, a placement that finds nothing).
    pub fn import(&mut self, script: &str) -> Result<(), String> {
        let mut menu = None;
        for line in script.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            menu = match line {
                "/ip firewall filter" => Some(Menu::Filter(false)),
                "/ipv6 firewall filter" => Some(Menu::Filter(true)),
                "/ip firewall address-list" => Some(Menu::Lists(false)),
                "/ipv6 firewall address-list" => Some(Menu::Lists(true)),
                _ => {
                    let menu = menu.unwrap_or_else(|| panic!("a command before any menu: {line}"));
                    let mut parser = Parser { text: line, at: 0 };
                    let statement = parser.statement();
                    parser.end();
                    self.run(menu, &statement)?;
                    continue;
                }
            };
        }
        Ok(())
    }

    /// The filter table of one family, each rule as `key=value` words.
    pub fn rules(&self, ipv6: bool) -> Vec<String> {
        self.table(ipv6)
            .rules
            .iter()
            .map(|rule| {
                rule.fields
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// Whether `address` is on `list` now (its entry has not expired).
    pub fn on_list(&self, list: &str, address: &str) -> bool {
        let address: IpAddr = address.parse().unwrap();
        self.table(address.is_ipv6())
            .lists
            .get(&(list.to_string(), address))
            .is_some_and(|expiry| *expiry > self.now)
    }

    /// The entries of one family's lists that have not expired, sorted.
    pub fn entries(&self, ipv6: bool) -> Vec<(String, IpAddr)> {
        let mut entries: Vec<_> = self
            .table(ipv6)
            .lists
            .iter()
            .filter(|(_, expiry)| **expiry > self.now)
            .map(|(key, _)| key.clone())
            .collect();
        entries.sort();
        entries
    }

    /// Runs `packet` through the input chain.
    pub fn packet(&mut self, packet: &Packet) -> Verdict {
        let now = self.now;
        let table = if packet.src.is_ipv6() {
            &mut self.v6
        } else {
            &mut self.v4
        };
        let Table { rules, lists, .. } = table;
        walk(rules, lists, now, "input", packet, 0).unwrap_or(Verdict::Accept)
    }

    fn table(&self, ipv6: bool) -> &Table {
        if ipv6 { &self.v6 } else { &self.v4 }
    }

    fn table_mut(&mut self, ipv6: bool) -> &mut Table {
        if ipv6 { &mut self.v6 } else { &mut self.v4 }
    }

    fn run(&mut self, menu: Menu, statement: &Statement) -> Result<(), String> {
        match statement {
            Statement::Error(message) => Err(message.clone()),
            Statement::If {
                find,
                op,
                value,
                then,
                otherwise,
            } => {
                let len = self.find(menu, find).len();
                let holds = match op {
                    '>' => len > *value,
                    '=' => len == *value,
                    _ => unreachable!(),
                };
                match (holds, otherwise) {
                    (true, _) => self.run(menu, then),
                    (false, Some(otherwise)) => self.run(menu, otherwise),
                    (false, None) => Ok(()),
                }
            }
            Statement::Remove(find) => {
                let ids = self.find(menu, find);
                match menu {
                    Menu::Filter(ipv6) => self
                        .table_mut(ipv6)
                        .rules
                        .retain(|rule| !ids.contains(&Id::Rule(rule.id))),
                    Menu::Lists(ipv6) => self
                        .table_mut(ipv6)
                        .lists
                        .retain(|key, _| !ids.contains(&Id::Entry(key.clone()))),
                }
                Ok(())
            }
            Statement::Add { fields, place } => {
                let Menu::Filter(ipv6) = menu else {
                    panic!("the generator adds no address-list entries: {fields:?}");
                };
                let at = match place {
                    None => None,
                    Some((find, index)) => {
                        let ids = self.find(menu, find);
                        let Some(Id::Rule(id)) = ids.get(*index) else {
                            return Err(format!("no such item: [find ...]->{index} is empty"));
                        };
                        self.table(ipv6).rules.iter().position(|r| r.id == *id)
                    }
                };
                let table = self.table_mut(ipv6);
                table.next_id += 1;
                let rule = compile(table.next_id, fields);
                match at {
                    Some(at) => table.rules.insert(at, rule),
                    None => table.rules.push(rule),
                }
                Ok(())
            }
        }
    }

    /// What `[find ...]` returns in `menu`, in table order.
    fn find(&self, menu: Menu, find: &[Condition]) -> Vec<Id> {
        match menu {
            Menu::Filter(ipv6) => self
                .table(ipv6)
                .rules
                .iter()
                .filter(|rule| {
                    find.iter().all(|c| match (c.key.as_str(), &c.test) {
                        ("chain", Test::Equals(v)) => rule.chain == *v,
                        ("comment", test) => rule.comment.as_deref().is_some_and(|t| test.holds(t)),
                        (key, _) => panic!("find by {key} is not simulated"),
                    })
                })
                .map(|rule| Id::Rule(rule.id))
                .collect(),
            Menu::Lists(ipv6) => {
                let mut keys: Vec<_> = self
                    .table(ipv6)
                    .lists
                    .keys()
                    .filter(|(list, _)| {
                        find.iter().all(|c| match c.key.as_str() {
                            "list" => c.test.holds(list),
                            key => panic!("find by {key} is not simulated"),
                        })
                    })
                    .cloned()
                    .collect();
                keys.sort();
                keys.into_iter().map(Id::Entry).collect()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Id {
    Rule(u32),
    Entry((String, IpAddr)),
}

/// The rules of `chain`, in order, for `packet`; `None` when it returns or ends.
fn walk(
    rules: &[Rule],
    lists: &mut HashMap<(String, IpAddr), Duration>,
    now: Duration,
    chain: &str,
    packet: &Packet,
    depth: usize,
) -> Option<Verdict> {
    assert!(depth < 16, "jump loop");
    for rule in rules.iter().filter(|r| r.chain == chain) {
        let on = |list: &str| {
            lists
                .get(&(list.to_string(), packet.src))
                .is_some_and(|expiry| *expiry > now)
        };
        let matched = rule.matchers.iter().all(|(negated, m)| {
            let hit = match m {
                Match::Protocol(p) => packet.proto == p,
                Match::DstPort(ranges) => packet
                    .dst_port
                    .is_some_and(|port| ranges.iter().any(|(l, h)| (*l..=*h).contains(&port))),
                Match::SrcList(list) => on(list),
                Match::InInterfaceList(list) => packet.in_lists.contains(&list.as_str()),
                Match::State(states) => states.iter().any(|s| s == packet.state),
                Match::PacketSize(l, h) => (*l..=*h).contains(&packet.size),
                Match::IcmpOptions(t, c) => packet.icmp == Some((*t, *c)),
            };
            hit != *negated
        });
        if !matched {
            continue;
        }
        match &rule.action {
            Action::Accept => return Some(Verdict::Accept),
            Action::Drop => return Some(Verdict::Drop),
            Action::Reject => return Some(Verdict::Reject),
            Action::Return => return None,
            Action::Jump(target) => {
                if let Some(verdict) = walk(rules, lists, now, target, packet, depth + 1) {
                    return Some(verdict);
                }
            }
            Action::AddSrc { list, timeout } => {
                lists.insert((list.clone(), packet.src), now + *timeout);
            }
        }
    }
    None
}

/// A rule from its fields, refusing what RouterOS would refuse or the
/// simulator does not model.
fn compile(id: u32, fields: &[(String, String)]) -> Rule {
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let chain = get("chain").expect("a rule has a chain");
    let action = match get("action").as_deref() {
        Some("accept") => Action::Accept,
        Some("drop") => Action::Drop,
        Some("reject") => Action::Reject,
        Some("return") => Action::Return,
        Some("jump") => Action::Jump(get("jump-target").expect("jump needs jump-target")),
        Some("add-src-to-address-list") => Action::AddSrc {
            list: get("address-list").expect("add-src-to-address-list needs address-list"),
            timeout: routeros_duration(
                &get("address-list-timeout").expect("the generator always sets a timeout"),
            ),
        },
        other => panic!("action {other:?} is not simulated"),
    };
    let mut matchers = Vec::new();
    for (key, value) in fields {
        let (negated, v) = match value.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, value.as_str()),
        };
        let m = match key.as_str() {
            "chain"
            | "action"
            | "jump-target"
            | "address-list"
            | "address-list-timeout"
            | "comment" => continue,
            "protocol" => {
                assert!(
                    ["tcp", "udp", "icmp", "icmpv6"].contains(&v),
                    "protocol={v}"
                );
                Match::Protocol(v.to_string())
            }
            "dst-port" => {
                let protocol = get("protocol");
                assert!(
                    matches!(protocol.as_deref(), Some("tcp" | "udp")),
                    "dst-port needs protocol=tcp or udp: {fields:?}"
                );
                let ranges: Vec<(u16, u16)> = v.split(',').map(port_range).collect();
                assert!(ranges.len() <= 15, "RouterOS takes at most 15 ports: {v}");
                Match::DstPort(ranges)
            }
            "src-address-list" => Match::SrcList(word(v)),
            "in-interface-list" => Match::InInterfaceList(word(v)),
            "connection-state" => Match::State(
                v.split(',')
                    .map(|s| {
                        assert!(
                            ["new", "established", "related", "untracked", "invalid"].contains(&s),
                            "connection-state {s}"
                        );
                        s.to_string()
                    })
                    .collect(),
            ),
            "packet-size" => {
                let (l, h) = port_range(v);
                Match::PacketSize(l, h)
            }
            "icmp-options" => {
                let (t, c) = v.split_once(':').expect("icmp-options=TYPE:CODE");
                Match::IcmpOptions(t.parse().unwrap(), c.parse().unwrap())
            }
            other => panic!("matcher {other}= is not simulated"),
        };
        matchers.push((negated, m));
    }
    Rule {
        id,
        fields: fields.to_vec(),
        chain: word(&chain),
        comment: get("comment"),
        action,
        matchers,
    }
}

/// A list or chain name as the generator writes them.
fn word(text: &str) -> String {
    assert!(
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "name {text:?}"
    );
    text.to_string()
}

/// `22` or `60000-60010`.
fn port_range(text: &str) -> (u16, u16) {
    let (l, h) = text.split_once('-').unwrap_or((text, text));
    let (l, h): (u16, u16) = (l.parse().unwrap(), h.parse().unwrap());
    assert!(l <= h, "range {text}");
    (l, h)
}

/// `1h`, `10s`, `1m30s`, `35w3d13h13m56s`.
fn routeros_duration(text: &str) -> Duration {
    let mut secs = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'w' => 7 * 86400,
            'd' => 86400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => panic!("duration {text}"),
        };
        secs += unit * number.parse::<u64>().expect("a number before each unit");
        number.clear();
    }
    assert!(number.is_empty() && secs > 0, "duration {text}");
    Duration::from_secs(secs)
}

#[derive(Debug)]
struct Condition {
    key: String,
    test: Test,
}

#[derive(Debug)]
enum Test {
    Equals(String),
    /// `~"^LITERAL: "` (a prefix) or `~"^LITERAL-(s[0-9]+|blocked)$"`: the
    /// two regular expressions the generator writes.
    Regex(String),
}

impl Test {
    fn holds(&self, text: &str) -> bool {
        match self {
            Test::Equals(value) => text == value,
            Test::Regex(re) => {
                let re = re.strip_prefix('^').expect("an anchored expression");
                let (literal, lists) = match re.strip_suffix("-(s[0-9]+|blocked)$") {
                    Some(literal) => (literal, true),
                    None => (re, false),
                };
                let literal = literal.replace("[.]", ".");
                assert!(
                    literal
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.: ".contains(c))
                        && !literal.replace('.', "").contains('['),
                    "regular expression {re:?} is not one the generator writes"
                );
                let literal = if lists {
                    format!("{literal}-")
                } else {
                    literal
                };
                let Some(rest) = text.strip_prefix(&literal) else {
                    return false;
                };
                !lists
                    || rest == "blocked"
                    || rest
                        .strip_prefix('s')
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }
        }
    }
}

#[derive(Debug)]
enum Statement {
    Add {
        fields: Vec<(String, String)>,
        /// `place-before=([find ...]->N)`.
        place: Option<(Vec<Condition>, usize)>,
    },
    Remove(Vec<Condition>),
    If {
        find: Vec<Condition>,
        op: char,
        value: usize,
        then: Box<Statement>,
        otherwise: Option<Box<Statement>>,
    },
    Error(String),
}

/// A strict reader of one script line.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.rest().starts_with(literal) {
            self.at += literal.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, literal: &str) {
        assert!(
            self.eat(literal),
            "expected {literal:?} at {:?} in {:?}",
            self.rest(),
            self.text
        );
    }

    fn end(&self) {
        assert!(self.rest().is_empty(), "left over: {:?}", self.rest());
    }

    fn statement(&mut self) -> Statement {
        if self.eat("add ") {
            let mut fields = Vec::new();
            let mut place = None;
            loop {
                let key = self.key();
                self.expect("=");
                if key == "place-before" {
                    self.expect("(");
                    let find = self.find();
                    self.expect("->");
                    place = Some((find, self.number()));
                    self.expect(")");
                } else {
                    let value = self.value();
                    assert!(
                        !fields.iter().any(|(k, _)| *k == key),
                        "{key} twice in {:?}",
                        self.text
                    );
                    fields.push((key, value));
                }
                if !self.eat(" ") {
                    break;
                }
            }
            Statement::Add { fields, place }
        } else if self.eat("remove ") {
            Statement::Remove(self.find())
        } else if self.eat(":error ") {
            Statement::Error(self.quoted())
        } else if self.eat(":if ([:len ") {
            let find = self.find();
            self.expect("] ");
            let op = if self.eat("> ") {
                '>'
            } else {
                self.expect("= ");
                '='
            };
            let value = self.number();
            self.expect(") do={");
            let then = Box::new(self.statement());
            self.expect("}");
            let otherwise = if self.eat(" else={") {
                let statement = self.statement();
                self.expect("}");
                Some(Box::new(statement))
            } else {
                None
            };
            Statement::If {
                find,
                op,
                value,
                then,
                otherwise,
            }
        } else {
            panic!("unknown statement {:?}", self.rest())
        }
    }

    /// `[find key=value key~"re" ...]`.
    fn find(&mut self) -> Vec<Condition> {
        self.expect("[find");
        let mut conditions = Vec::new();
        while self.eat(" ") {
            let key = self.key();
            let test = if self.eat("~") {
                Test::Regex(self.quoted())
            } else {
                self.expect("=");
                Test::Equals(self.value())
            };
            conditions.push(Condition { key, test });
        }
        self.expect("]");
        conditions
    }

    fn key(&mut self) -> String {
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .unwrap_or(self.rest().len());
        assert!(len > 0, "expected a key at {:?}", self.rest());
        let key = self.rest()[..len].to_string();
        self.at += len;
        key
    }

    fn number(&mut self) -> usize {
        let len = self
            .rest()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.rest().len());
        let n = self.rest()[..len].parse().expect("a number");
        self.at += len;
        n
    }

    /// A bare word (up to a space, `]` or `}`) or a quoted string.
    fn value(&mut self) -> String {
        if self.rest().starts_with('"') {
            return self.quoted();
        }
        let len = self
            .rest()
            .find([' ', ']', '}'])
            .unwrap_or(self.rest().len());
        let value = &self.rest()[..len];
        assert!(
            !value.is_empty() && !value.contains(['"', '$', '[', '(', '\\', '{']),
            "value {value:?} in {:?}",
            self.text
        );
        self.at += len;
        value.to_string()
    }

    /// `"..."` with the escapes `\" \\ \$ \?`; a bare `$` (a variable) is refused.
    fn quoted(&mut self) -> String {
        self.expect("\"");
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return out;
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\' | '$' | '?'))) => out.push(e),
                    other => panic!("escape {other:?} in {:?}", self.text),
                },
                '$' => panic!("a variable in {:?}", self.text),
                c => out.push(c),
            }
        }
        panic!("unterminated string in {:?}", self.text)
    }
}

/// The default configuration's input rules (RouterOS 7), and a forward rule
/// to show chains apart.
pub const DEFCONF: &str = r#"
/ip firewall filter
add chain=input action=accept connection-state=established,related,untracked comment="defconf: accept established,related,untracked"
add chain=input action=drop connection-state=invalid comment="defconf: drop invalid"
add chain=input action=accept protocol=icmp comment="defconf: accept ICMP"
add chain=input action=drop in-interface-list=!LAN comment="defconf: drop all not coming from LAN"
add chain=forward action=accept connection-state=established,related,untracked comment="defconf: accept established,related, untracked"
/ipv6 firewall filter
add chain=input action=accept connection-state=established,related,untracked comment="defconf: accept established,related,untracked"
add chain=input action=drop connection-state=invalid comment="defconf: drop invalid"
add chain=input action=accept protocol=icmpv6 comment="defconf: accept ICMPv6"
add chain=input action=accept protocol=udp dst-port=33434-33534 comment="defconf: accept UDP traceroute"
add chain=input action=drop in-interface-list=!LAN comment="defconf: drop everything else not coming from LAN"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_drops_the_wan_accepts_the_lan_and_established() {
        let mut router = Router::defconf();
        for src in ["198.51.100.7", "2001:db8::7"] {
            assert_eq!(router.packet(&Packet::tcp(src, 22)), Verdict::Drop);
            assert_eq!(
                router.packet(&Packet::tcp(src, 22).established()),
                Verdict::Accept
            );
            assert_eq!(
                router.packet(&Packet::tcp(src, 22).on_the_lan()),
                Verdict::Accept
            );
            assert_eq!(router.packet(&Packet::ping(src, 56)), Verdict::Accept);
        }
    }

    #[test]
    fn jump_return_and_list_entries_that_expire() {
        let mut router = Router::new();
        router
            .import(
                "/ip firewall filter\n\
                 add chain=input action=jump jump-target=k\n\
                 add chain=k action=add-src-to-address-list protocol=udp dst-port=!1-99 address-list=l address-list-timeout=10s\n\
                 add chain=k action=return src-address-list=!l\n\
                 add chain=k action=reject\n\
                 add chain=input action=drop packet-size=29\n",
            )
            .unwrap();
        let src = "192.0.2.1";
        assert_eq!(
            router.packet(&Packet::udp(src, 50)),
            Verdict::Drop,
            "returned, then dropped by size"
        );
        assert_eq!(
            router.packet(&Packet::udp(src, 500)),
            Verdict::Reject,
            "listed, went on"
        );
        assert!(router.on_list("l", src));
        router.advance(Duration::from_secs(10));
        assert!(!router.on_list("l", src));
        assert_eq!(
            router.packet(&Packet::tcp(src, 500)),
            Verdict::Accept,
            "the end of input accepts"
        );
    }

    #[test]
    #[should_panic(expected = "unknown statement")]
    fn a_construct_the_generator_does_not_write_fails() {
        let _ = Router::new().import("/ip firewall filter\nset 0 disabled=yes\n");
    }

    #[test]
    fn a_placement_that_finds_nothing_fails_the_import() {
        let err = Router::new()
            .import("/ip firewall filter\nadd chain=input action=drop place-before=([find chain=input]->0)\n")
            .unwrap_err();
        assert!(err.contains("no such item"), "{err}");
    }
}
