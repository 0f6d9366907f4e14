//! Pure: an nftables ruleset (`table inet NAME`) that makes a Linux host
//! detect a knock sequence by itself with timed sets, the kernel-only twin of
//! `routeros::rules`. No I/O; the caller prints the text.
//!
//! The text is safe to load twice: it declares the table empty, deletes it and
//! declares it whole, so `nft -f` replaces what an earlier load made, in one
//! transaction.
//!
//! How one new packet walks the knock chain (sets per family, `_v4`/`_v6`):
//! 1. a knocked source's own connection to a protected port returns at once,
//!    so a knocker's ssh never counts as a wrong knock;
//! 2. a blocked source returns at once: it makes no progress until it expires;
//! 3. the advances, last stage first: "on `stage(i-1)` and knock i" moves the
//!    source to the next set (the final one after the last knock) and returns,
//!    so one packet climbs one stage only and the highest stage wins when
//!    knocks repeat a port;
//! 4. a repeat of knock i from a source on `stage(i)` returns (a retransmit);
//! 5. knock 1 (re)starts: the source leaves every stage and lands on `stage1`
//!    (a retry after a typo is not punished);
//! 6. anything else from a source on a stage set removes it from every stage
//!    and puts it on `blocked` for `block_for`: a port scan that hits knock 1
//!    is blocked by the next port it probes.
//!
//! The input chain (priority `filter - 10`, before a distribution's own
//! `inet filter` table) sends new packets through the knock chain, accepts
//! the protected ports from the final set and drops new connections to them
//! from anyone else. nftables's accept ends only this chain: a later table
//! that drops the port still drops it, so such a table must allow it.
//!
//! `for_knockd` leaves out the stage and blocked sets and the knock chain:
//! `knockr knockd` detects the knock and puts the knocker in the final set
//! (`[door.nftables]`); the same input chain gates the ports.

use std::fmt::Write as _;
use std::time::Duration;

use crate::core::knock::{Knock, Proto, Transport};
use crate::core::protect::{Protected, Weakness, weakness};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// The table's name (`table inet NAME`), which a second load replaces.
    pub table: String,
    pub sequence: Vec<Knock>,
    /// The ports opened to a knocker who completed the sequence.
    pub protect: Vec<Protected>,
    /// Base name of the final sets (`NAME_v4`, `NAME_v6`).
    pub set: String,
    /// How long a knocker stays in the final set.
    pub timeout: Duration,
    /// How long a source stays on a stage waiting for its next knock.
    pub stage_timeout: Duration,
    /// The client's delay between knocks, which a stage must outlast.
    pub delay: Duration,
    /// How long a source that began the sequence and then sent anything else is blocked.
    pub block_for: Duration,
    /// Only knocks arriving on this interface count (`iifname`), else any.
    pub interface: Option<String>,
    pub allow_weak: bool,
    pub ipv4: bool,
    pub ipv6: bool,
    /// The table, the final sets and the input chain, without the knock
    /// detection: `knockr knockd` puts knockers in the sets (`[door.nftables]`).
    pub for_knockd: bool,
}

/// Why a ruleset cannot be made; each reads as one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "{what} {text:?} is not usable in nftables: expected a letter, then letters, digits or _"
    )]
    BadName { what: &'static str, text: String },
    #[error("the interface {0:?} is not usable: expected 1 to 15 letters, digits, - _ . or :")]
    BadInterface(String),
    #[error(
        "the set name {0:?} is one the ruleset manages itself (a stage or blocked set): choose another --set"
    )]
    SetClash(String),
    #[error("the sequence is empty: expected one or more PORT[:tcp|udp] or SIZE:icmp")]
    EmptySequence,
    #[error("no port to protect: give --protect PORT[-PORT][:tcp|udp][,...]")]
    NothingProtected,
    #[error("neither IPv4 nor IPv6 rules were asked for")]
    NoFamily,
    #[error(
        "the stage timeout {stage} must be longer than the knock delay {delay}: a stage would expire before the next knock"
    )]
    StageTimeoutTooShort { stage: String, delay: String },
    #[error("{what} {value} is out of range: expected 1s to 24855d")]
    OutOfRange { what: &'static str, value: String },
    #[error("the sequence {sequence} {weakness} (or give --allow-weak to generate it anyway)")]
    Scannable {
        sequence: String,
        weakness: Weakness,
    },
}

/// A ruleset and the weak sequences `allow_weak` let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub text: String,
    pub warnings: Vec<Weakness>,
}

/// The longest timeout written: nftables keeps set timeouts in milliseconds
/// in 32 bits for a set's default on some kernels, so stay under 2^31 s.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24855 * 86400);

/// One address family: the match word and the set suffix and type.
struct Family {
    /// `ip` or `ip6`, the address selector (`ip saddr`).
    addr: &'static str,
    /// `ipv4` or `ipv6`, for `meta nfproto` where no address is matched
    /// (an `inet` table sees both families).
    nfproto: &'static str,
    /// `v4` or `v6`, the set names' suffix.
    suffix: &'static str,
    /// The set type.
    kind: &'static str,
    ipv6: bool,
}

const V4: Family = Family {
    addr: "ip",
    nfproto: "ipv4",
    suffix: "v4",
    kind: "ipv4_addr",
    ipv6: false,
};
const V6: Family = Family {
    addr: "ip6",
    nfproto: "ipv6",
    suffix: "v6",
    kind: "ipv6_addr",
    ipv6: true,
};

fn families(spec: &RuleSpec) -> Vec<&'static Family> {
    [(spec.ipv4, &V4), (spec.ipv6, &V6)]
        .into_iter()
        .filter_map(|(on, family)| on.then_some(family))
        .collect()
}

/// The ruleset for `spec`, or why there is none.
pub fn ruleset(spec: &RuleSpec) -> Result<Ruleset, RuleError> {
    let warnings = validate(spec)?;
    let families = families(spec);
    let mut out = header(spec);
    let _ = writeln!(
        out,
        "table inet {0} {{}}\ndelete table inet {0}",
        spec.table
    );
    let _ = writeln!(out, "table inet {} {{", spec.table);
    // A door on an inet table takes knockers of both families, so it needs
    // both sets; `--family` narrows only what the input chain opens.
    let set_families = if spec.for_knockd {
        vec![&V4, &V6]
    } else {
        families.clone()
    };
    for family in &set_families {
        out.push_str(&set(&final_set(spec, family), family, spec.timeout));
    }
    if !spec.for_knockd {
        for family in &families {
            for stage in 1..spec.sequence.len() {
                out.push_str(&set(&stage_set(stage, family), family, spec.stage_timeout));
            }
            out.push_str(&set(&blocked_set(family), family, spec.block_for));
        }
        out.push_str(&knock_chain(spec, &families));
    }
    out.push_str(&input_chain(spec, &families));
    out.push_str("}\n");
    Ok(Ruleset {
        text: out,
        warnings,
    })
}

fn header(spec: &RuleSpec) -> String {
    let sequence = sequence_text(&spec.sequence);
    if spec.for_knockd {
        let sets: String = [&V4, &V6]
            .iter()
            .map(|family| {
                let key = if family.ipv6 { "set6" } else { "set" };
                format!(", {key} = \"{}\"", final_set(spec, family))
            })
            .collect();
        // Both sets are made whatever --family says: say what it narrowed.
        let one_family = match (spec.ipv4, spec.ipv6) {
            (true, false) => {
                "# Only IPv4 knockers get through (--family ipv4); both sets exist for the door.\n"
            }
            (false, true) => {
                "# Only IPv6 knockers get through (--family ipv6); both sets exist for the door.\n"
            }
            _ => "",
        };
        format!(
            "# knockr nft rules --for-knockd: the table and sets a [door.nftables] door puts\n\
             # knockers in (table = \"{table}\", family = \"inet\"{sets}),\n\
             # and an input chain that opens {opened} to the addresses in them\n\
             # and drops new connections to those ports from anyone else.\n\
             {one_family}\
             # Load with: nft -f FILE (again to replace; it deletes only table inet {table}).\n",
            opened = opened(&spec.protect),
            table = spec.table,
        )
    } else {
        format!(
            "# knockr nft rules: the kernel detects the knock sequence {sequence} and opens\n\
             # {opened} to whoever completes it, for {timeout}.\n\
             # Load with: nft -f FILE (again to replace; it deletes only table inet {table}).\n",
            opened = opened(&spec.protect),
            timeout = duration(spec.timeout),
            table = spec.table,
        )
    }
}

fn set(name: &str, family: &Family, timeout: Duration) -> String {
    format!(
        "\tset {name} {{\n\t\ttype {};\n\t\tflags timeout;\n\t\ttimeout {};\n\t}}\n",
        family.kind,
        duration(timeout)
    )
}

fn final_set(spec: &RuleSpec, family: &Family) -> String {
    format!("{}_{}", spec.set, family.suffix)
}

fn stage_set(stage: usize, family: &Family) -> String {
    format!("stage{stage}_{}", family.suffix)
}

fn blocked_set(family: &Family) -> String {
    format!("blocked_{}", family.suffix)
}

/// The knock chain: see the module comment for the order and why.
fn knock_chain(spec: &RuleSpec, families: &[&Family]) -> String {
    let mut out = String::from("\n\tchain knock {\n");
    let n = spec.sequence.len();
    for family in families {
        let a = family.addr;
        let knocked = final_set(spec, family);
        let blocked = blocked_set(family);
        let stages: Vec<String> = (1..n).map(|i| stage_set(i, family)).collect();
        let leave_all = |skip: Option<usize>| -> String {
            stages
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i + 1) != skip)
                .map(|(_, s)| format!(" delete @{s} {{ {a} saddr }}"))
                .collect()
        };
        let mut rule = |text: String| {
            let _ = writeln!(out, "\t\t{text}");
        };
        for (proto, ports) in by_transport(&spec.protect) {
            rule(format!(
                "{a} saddr @{knocked} {proto} dport {{ {ports} }} return"
            ));
        }
        rule(format!("{a} saddr @{blocked} counter return"));
        for i in (2..=n).rev() {
            let next = if i == n {
                knocked.clone()
            } else {
                stages[i - 1].clone()
            };
            let from = &stages[i - 2];
            rule(format!(
                "{a} saddr @{from} {} delete @{from} {{ {a} saddr }} update @{next} {{ {a} saddr }} counter return",
                matcher(spec.sequence[i - 1], family)
            ));
        }
        for i in 2..n {
            rule(format!(
                "{a} saddr @{} {} counter return",
                stages[i - 1],
                matcher(spec.sequence[i - 1], family)
            ));
        }
        let first = if n == 1 {
            knocked.clone()
        } else {
            stages[0].clone()
        };
        rule(format!(
            "meta nfproto {} {}{} update @{first} {{ {a} saddr }} counter return",
            family.nfproto,
            matcher(spec.sequence[0], family),
            leave_all(Some(1))
        ));
        for stage in &stages {
            rule(format!(
                "{a} saddr @{stage}{} update @{blocked} {{ {a} saddr }} counter return",
                leave_all(None)
            ));
        }
    }
    out.push_str("\t}\n");
    out
}

/// The input hook: new packets (from the interface) go through the knock
/// chain, unless knockd detects the knock (`for_knockd`); the protected
/// ports are accepted from the final set and their new connections dropped
/// from anyone else.
fn input_chain(spec: &RuleSpec, families: &[&Family]) -> String {
    let mut out = String::from(
        "\n\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n",
    );
    let iif = spec
        .interface
        .as_ref()
        .map(|name| format!("iifname \"{name}\" "))
        .unwrap_or_default();
    if !spec.for_knockd {
        let _ = writeln!(out, "\t\t{iif}ct state new jump knock");
    }
    for family in families {
        for (proto, ports) in by_transport(&spec.protect) {
            let _ = writeln!(
                out,
                "\t\t{} saddr @{} {proto} dport {{ {ports} }} counter accept",
                family.addr,
                final_set(spec, family)
            );
        }
    }
    let nfprotos = families
        .iter()
        .map(|family| family.nfproto)
        .collect::<Vec<_>>()
        .join(", ");
    for (proto, ports) in by_transport(&spec.protect) {
        let _ = writeln!(
            out,
            "\t\t{iif}meta nfproto {{ {nfprotos} }} {proto} dport {{ {ports} }} ct state new counter drop"
        );
    }
    out.push_str("\t}\n");
    out
}

/// The match for one knock: protocol and port, or for ICMP the echo request
/// and its size (`ip length` is the whole IPv4 packet, `ip6 length` the
/// payload after the 40-byte header, as the client sends them).
fn matcher(knock: Knock, family: &Family) -> String {
    match (knock.proto, family.ipv6) {
        (Proto::Tcp | Proto::Udp, _) => format!("{} dport {}", knock.proto, knock.port),
        (Proto::Icmp, false) => format!(
            "icmp type echo-request ip length {}",
            u32::from(knock.port) + 8 + 20
        ),
        (Proto::Icmp, true) => format!(
            "icmpv6 type echo-request ip6 length {}",
            u32::from(knock.port) + 8
        ),
    }
}

/// The protected ports per transport, as an anonymous set's elements.
fn by_transport(protect: &[Protected]) -> Vec<(Proto, String)> {
    [Transport::Tcp, Transport::Udp]
        .into_iter()
        .filter_map(|transport| {
            let ports: Vec<String> = protect
                .iter()
                .filter(|p| p.transport() == transport)
                .map(|p| p.ports())
                .collect();
            (!ports.is_empty()).then(|| (Proto::from(transport), ports.join(", ")))
        })
        .collect()
}

fn opened(protect: &[Protected]) -> String {
    by_transport(protect)
        .iter()
        .map(|(proto, ports)| format!("{proto} {}", ports.replace(", ", ",")))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn sequence_text(sequence: &[Knock]) -> String {
    sequence
        .iter()
        .map(Knock::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// nftables's time syntax: `1h30m`, `45s`, `2d`; whole seconds, rounded up.
pub fn duration(value: Duration) -> String {
    let mut secs = value.as_secs() + u64::from(value.subsec_nanos() > 0);
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    out
}

/// An nftables identifier: a letter, then letters, digits or `_` (what
/// `nft` reads unquoted; no `-`, which it would read as an operator).
fn name(what: &'static str, text: &str) -> Result<(), RuleError> {
    let mut chars = text.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && text.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(RuleError::BadName {
            what,
            text: text.to_string(),
        })
    }
}

/// Checks `spec`; the weaknesses `allow_weak` let through.
fn validate(spec: &RuleSpec) -> Result<Vec<Weakness>, RuleError> {
    name("the table name", &spec.table)?;
    name("the set name", &spec.set)?;
    if spec.set == "blocked"
        || spec
            .set
            .strip_prefix("stage")
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(RuleError::SetClash(spec.set.clone()));
    }
    if let Some(interface) = &spec.interface
        && (interface.is_empty()
            || interface.len() > 15
            || !interface
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)))
    {
        return Err(RuleError::BadInterface(interface.clone()));
    }
    if spec.sequence.is_empty() && !spec.for_knockd {
        return Err(RuleError::EmptySequence);
    }
    if spec.protect.is_empty() {
        return Err(RuleError::NothingProtected);
    }
    if !spec.ipv4 && !spec.ipv6 {
        return Err(RuleError::NoFamily);
    }
    if spec.timeout < Duration::from_secs(1) || spec.timeout > MAX_TIMEOUT {
        return Err(RuleError::OutOfRange {
            what: "the set timeout",
            value: duration(spec.timeout),
        });
    }
    if spec.for_knockd {
        // No knock chain: the sequence and its timing are knockd's, which
        // judges them itself.
        return Ok(Vec::new());
    }
    if spec.stage_timeout <= spec.delay {
        return Err(RuleError::StageTimeoutTooShort {
            stage: crate::core::units::format_duration(spec.stage_timeout),
            delay: crate::core::units::format_duration(spec.delay),
        });
    }
    for (what, value) in [
        ("the stage timeout", spec.stage_timeout),
        ("the block time", spec.block_for),
    ] {
        if value < Duration::from_secs(1) || value > MAX_TIMEOUT {
            return Err(RuleError::OutOfRange {
                what,
                value: duration(value),
            });
        }
    }
    match weakness(&spec.sequence) {
        Some(weakness) if !spec.allow_weak => Err(RuleError::Scannable {
            sequence: sequence_text(&spec.sequence),
            weakness,
        }),
        found => Ok(found.into_iter().collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::knock::parse_list;
    use crate::core::protect::parse_protect;

    fn spec(sequence: &str) -> RuleSpec {
        RuleSpec {
            table: "knockr".into(),
            sequence: parse_list(sequence, Proto::Tcp).unwrap(),
            protect: vec![
                parse_protect("22").unwrap(),
                parse_protect("51820:udp").unwrap(),
            ],
            set: "knocked".into(),
            timeout: Duration::from_secs(3600),
            stage_timeout: Duration::from_secs(10),
            delay: Duration::from_millis(100),
            block_for: Duration::from_secs(60),
            interface: None,
            allow_weak: false,
            ipv4: true,
            ipv6: true,
            for_knockd: false,
        }
    }

    #[test]
    fn a_wrong_knock_mid_sequence_blocks_and_resets() {
        let text = ruleset(&spec("7000,8000:udp,9000")).unwrap().text;
        assert!(text.contains(
            "ip saddr @stage2_v4 tcp dport 9000 delete @stage2_v4 { ip saddr } update @knocked_v4 { ip saddr } counter return"
        ), "{text}");
        assert!(text.contains(
            "ip6 saddr @stage1_v6 delete @stage1_v6 { ip6 saddr } delete @stage2_v6 { ip6 saddr } update @blocked_v6 { ip6 saddr } counter return"
        ), "{text}");
        assert!(
            text.contains(
                "meta nfproto ipv4 tcp dport 7000 delete @stage2_v4 { ip saddr } update @stage1_v4"
            ),
            "{text}"
        );
        assert!(
            text.contains("meta nfproto { ipv4, ipv6 } tcp dport { 22 } ct state new counter drop"),
            "{text}"
        );
        // The advance from the last stage comes before the others.
        let last = text.find("@stage2_v4 tcp dport 9000").unwrap();
        let second = text.find("@stage1_v4 udp dport 8000").unwrap();
        assert!(last < second);
        assert!(text.starts_with("# knockr nft rules"));
        assert!(
            text.contains("table inet knockr {}\ndelete table inet knockr\ntable inet knockr {\n")
        );
        assert!(text.contains("priority filter - 10; policy accept;"));
        assert!(text.contains("ip saddr @knocked_v4 udp dport { 51820 } counter accept"));
    }

    #[test]
    fn weak_sequences_are_refused_unless_allowed() {
        for weak in ["7000", "7000,8000,9000"] {
            assert!(
                matches!(ruleset(&spec(weak)), Err(RuleError::Scannable { .. })),
                "{weak}"
            );
            let mut allowed = spec(weak);
            allowed.allow_weak = true;
            assert_eq!(ruleset(&allowed).unwrap().warnings.len(), 1);
        }
    }

    #[test]
    fn for_knockd_is_the_table_and_final_sets_only() {
        let mut spec = spec("7000,8000:udp,9000");
        spec.for_knockd = true;
        spec.ipv6 = false;
        let text = ruleset(&spec).unwrap().text;
        assert!(text.contains("set knocked_v4 {"));
        // The door takes both families, so both sets exist; the chain opens only IPv4.
        assert!(text.contains("set knocked_v6 {"), "{text}");
        assert!(!text.contains("ip6 saddr @knocked_v6"), "{text}");
        assert!(
            text.contains("set = \"knocked_v4\", set6 = \"knocked_v6\")"),
            "{text}"
        );
        assert!(!text.contains("chain knock"), "{text}");
        assert!(!text.contains("jump knock"), "{text}");
        assert!(!text.contains("stage1"));
        assert!(!text.contains("blocked"));
        // The same input chain as the full ruleset gates the ports.
        assert!(text.contains("priority filter - 10; policy accept;"));
        assert!(text.contains("ip saddr @knocked_v4 tcp dport { 22 } counter accept"));
        assert!(text.contains("ip saddr @knocked_v4 udp dport { 51820 } counter accept"));
        assert!(
            text.contains("meta nfproto { ipv4 } tcp dport { 22 } ct state new counter drop"),
            "{text}"
        );
        assert!(text.contains("opens tcp 22 and udp 51820 to the addresses"));
        assert!(
            text.contains("Only IPv4 knockers get through (--family ipv4)"),
            "{text}"
        );
        spec.ipv6 = true;
        assert!(!ruleset(&spec).unwrap().text.contains("Only IPv"));
        // It needs no sequence: the knock is knockd's to detect.
        spec.sequence.clear();
        assert!(ruleset(&spec).is_ok());
    }

    #[test]
    fn for_knockd_does_not_judge_the_sequence_it_does_not_print() {
        let mut spec = spec("7000,8000,9000");
        spec.for_knockd = true;
        assert_eq!(ruleset(&spec).unwrap().warnings, vec![]);
        spec.for_knockd = false;
        assert!(matches!(ruleset(&spec), Err(RuleError::Scannable { .. })));
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        let mut bad = spec("7000,8000:udp,9000");
        bad.table = "knockr-home".into();
        assert!(matches!(ruleset(&bad), Err(RuleError::BadName { .. })));
        let mut bad = spec("7000,8000:udp,9000");
        bad.set = "stage1".into();
        assert_eq!(ruleset(&bad), Err(RuleError::SetClash("stage1".into())));
        let mut bad = spec("7000,8000:udp,9000");
        bad.interface = Some("eth0\"; drop".into());
        assert!(matches!(ruleset(&bad), Err(RuleError::BadInterface(_))));
        let mut bad = spec("7000,8000:udp,9000");
        bad.stage_timeout = Duration::from_millis(50);
        assert!(matches!(
            ruleset(&bad),
            Err(RuleError::StageTimeoutTooShort { .. })
        ));
        assert_eq!(duration(Duration::from_secs(90061)), "1d1h1m1s");
    }

    #[test]
    fn icmp_knocks_match_the_echo_size_per_family() {
        let text = ruleset(&spec("7000,56:icmp,9000")).unwrap().text;
        assert!(
            text.contains("icmp type echo-request ip length 84"),
            "{text}"
        );
        assert!(
            text.contains("icmpv6 type echo-request ip6 length 64"),
            "{text}"
        );
    }
}
