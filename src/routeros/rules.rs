//! Pure: a RouterOS script that makes the router detect a knock sequence by
//! itself with staged address lists (the technique of MikroTik's own port
//! knocking guide). No I/O; the caller prints the text.
//!
//! Stages are emitted last first: `add-src-to-address-list` passes the packet
//! on, so in first-to-last order one packet could climb several stages when
//! two consecutive knocks share a port.
//!
//! ICMP knocks (`56:icmp`) have no port: the router tells them apart by the
//! echo request's whole IP packet size, see [`icmp_packet_size`].

use std::fmt::Write as _;
use std::time::Duration;

use crate::core::knock::{Knock, Proto};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Prefix of the chain, the stage lists and every comment (`N`).
    pub name: String,
    pub sequence: Vec<Knock>,
    /// The interface list the knocks arrive on (`W`), e.g. "WAN".
    pub wan: String,
    /// TCP ports opened to a knocker (`P`).
    pub protect: Vec<u16>,
    /// The address list a knocker ends on (`F`).
    pub list: String,
    /// How long a knocker stays on `list` (`T`); the router removes it itself.
    pub timeout: Duration,
    /// How long each stage list entry lives (`S`): the time allowed between knocks.
    pub stage_timeout: Duration,
    /// The client's delay between knocks, to check `stage_timeout` against.
    pub delay: Duration,
    pub ipv4: bool,
    pub ipv6: bool,
}

/// The longest timeout RouterOS accepts on an address-list entry.
pub const MAX_TIMEOUT: Duration =
    Duration::from_secs(35 * 7 * 86400 + 3 * 86400 + 13 * 3600 + 13 * 60 + 56);

/// The whole script, or why it cannot be made (one sentence).
pub fn script(spec: &RuleSpec) -> Result<String, String> {
    validate(spec)?;
    let n = &spec.name;
    let k = spec.sequence.len();
    let mut out = String::new();
    let knocks: Vec<String> = spec.sequence.iter().map(Knock::to_string).collect();
    let _ = writeln!(
        out,
        "# knockr: RouterOS detects the knock {} by itself.",
        knocks.join(" ")
    );
    let _ = writeln!(
        out,
        "# A knocker who completes it within {} per step lands on address list \"{}\" for {},",
        duration(spec.stage_timeout),
        spec.list,
        duration(spec.timeout)
    );
    let _ = writeln!(
        out,
        "# which opens TCP port(s) {} from interface list \"{}\".",
        ports(&spec.protect),
        spec.wan
    );
    if spec.sequence.iter().any(|k| k.proto == Proto::Icmp) {
        out.push_str(
            "# ICMP knocks match an echo request by its IP packet size: the payload (ping -s SIZE)\n\
             # + 8 bytes of ICMP header + 20 of IPv4 header (IPv6: + 8 + 40), so 56:icmp is\n\
             # packet-size=84 under /ip and 104 under /ipv6. IP options, IPv6 extension headers or\n\
             # a packet larger than the path MTU (fragments) change the size: keep payloads small.\n\
             # Each echo request must be a new connection here: knockr sends each from a new ICMP\n\
             # identifier; `ping -c 2` (one identifier) counts once.\n",
        );
    }
    out.push_str(
        "# Pitfalls:\n\
         # - Knocks from the LAN never match in-interface-list: test from outside.\n\
         # - Each stage entry lives for the stage timeout: it must exceed the client's delay.\n\
         # - A wrong knock does not reset progress here (unlike knockd); keep sequences long.\n\
         # - Connections already established survive the list entry's expiry.\n\
         # - Undo: /ip firewall filter remove [find comment~\"^NAME: \"] (and the same under /ipv6).\n"
            .replace("NAME", n)
            .as_str(),
    );
    for (enabled, ipv6, section, anchor) in [
        (
            spec.ipv4,
            false,
            "/ip firewall filter",
            "defconf: drop all not coming from LAN",
        ),
        (
            spec.ipv6,
            true,
            "/ipv6 firewall filter",
            "defconf: drop everything else not coming from LAN",
        ),
    ] {
        if !enabled {
            continue;
        }
        let _ = writeln!(out, "{section}");
        let _ = writeln!(
            out,
            "add chain=input action=jump jump-target={n} in-interface-list={} connection-state=new \
             comment=\"{n}: dispatch\" place-before=([find chain=input]->0)",
            spec.wan
        );
        for stage in (1..=k).rev() {
            let knock = spec.sequence[stage - 1];
            let mut rule = format!(
                "add chain={n} action=add-src-to-address-list {}",
                matcher(knock, ipv6)
            );
            if stage > 1 {
                let _ = write!(rule, " src-address-list={n}-s{}", stage - 1);
            }
            if stage == k {
                let _ = write!(
                    rule,
                    " address-list={} address-list-timeout={}",
                    spec.list,
                    duration(spec.timeout)
                );
            } else {
                let _ = write!(
                    rule,
                    " address-list={n}-s{stage} address-list-timeout={}",
                    duration(spec.stage_timeout)
                );
            }
            let _ = writeln!(out, "{rule} comment=\"{n}: knock {stage}/{k}\"");
        }
        let _ = writeln!(out, "add chain={n} action=return comment=\"{n}: end\"");
        let _ = writeln!(
            out,
            "add chain=input action=accept in-interface-list={} src-address-list={} protocol=tcp dst-port={} \
             comment=\"{n}: accept knocked\" place-before=[find comment=\"{anchor}\"]",
            spec.wan,
            spec.list,
            ports(&spec.protect)
        );
    }
    Ok(out)
}

fn validate(spec: &RuleSpec) -> Result<(), String> {
    let word = |what: &str, text: &str| {
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            Err(format!(
                "{what} {text:?} is not usable in a RouterOS rule: expected letters, digits, - _ or ."
            ))
        } else {
            Ok(())
        }
    };
    word("the rule name", &spec.name)?;
    word("the interface list", &spec.wan)?;
    word("the address list", &spec.list)?;
    if spec.sequence.is_empty() {
        return Err(
            "the sequence is empty: expected one or more PORT[:tcp|udp] or SIZE:icmp".into(),
        );
    }
    if spec.protect.is_empty() {
        return Err("no port to protect: give --protect PORT[,PORT...]".into());
    }
    if !spec.ipv4 && !spec.ipv6 {
        return Err("neither IPv4 nor IPv6 rules were asked for".into());
    }
    if spec.stage_timeout <= spec.delay {
        return Err(format!(
            "the stage timeout {} must be longer than the knock delay {}: a stage would expire before the next knock",
            crate::core::units::format_duration(spec.stage_timeout),
            crate::core::units::format_duration(spec.delay)
        ));
    }
    for (what, value) in [
        ("the stage timeout", spec.stage_timeout),
        ("the list timeout", spec.timeout),
    ] {
        if value < Duration::from_secs(1) || value > MAX_TIMEOUT {
            return Err(format!(
                "{what} {} is out of range: RouterOS accepts 1s to 35w3d13h13m56s",
                duration(value)
            ));
        }
    }
    Ok(())
}

/// The rule's match for one knock: protocol and port, or for ICMP the echo
/// request and its packet size.
fn matcher(knock: Knock, ipv6: bool) -> String {
    match (knock.proto, ipv6) {
        (Proto::Tcp | Proto::Udp, _) => format!("protocol={} dst-port={}", knock.proto, knock.port),
        (Proto::Icmp, false) => format!(
            "protocol=icmp icmp-options=8:0 packet-size={}",
            icmp_packet_size(knock.port, ipv6)
        ),
        (Proto::Icmp, true) => format!(
            "protocol=icmpv6 icmp-options=128:0 packet-size={}",
            icmp_packet_size(knock.port, ipv6)
        ),
    }
}

/// The IP packet size of an echo request with `payload` bytes, as RouterOS's
/// `packet-size` counts it: the payload, 8 bytes of ICMP header, and the IP
/// header (20 bytes for IPv4 without options, 40 for IPv6). Sequence parsing
/// caps `payload` so that this fits `packet-size`'s 0..=65535.
pub fn icmp_packet_size(payload: u16, ipv6: bool) -> u32 {
    u32::from(payload) + 8 + if ipv6 { 40 } else { 20 }
}

fn ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// RouterOS duration syntax: `1h30m`, `45s`, `2w`; whole seconds, rounded up.
pub fn duration(value: Duration) -> String {
    let mut secs = value.as_secs() + u64::from(value.subsec_nanos() > 0);
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", 7 * 86400),
        ("d", 86400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::knock::parse_list;

    fn spec(sequence: &str) -> RuleSpec {
        RuleSpec {
            name: "knockr-home".into(),
            sequence: parse_list(sequence, Proto::Tcp).unwrap(),
            wan: "WAN".into(),
            protect: vec![22, 8291],
            list: "knocked".into(),
            timeout: Duration::from_secs(3600),
            stage_timeout: Duration::from_secs(10),
            delay: Duration::from_millis(200),
            ipv4: true,
            ipv6: false,
        }
    }

    /// The value of `key=` in a rule line.
    fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        line.split(' ')
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
    }

    fn rules(script: &str) -> Vec<&str> {
        script.lines().filter(|l| l.starts_with("add ")).collect()
    }

    #[test]
    fn stages_are_emitted_last_first_and_chain_through_their_lists() {
        let script = script(&spec("7000,8000:udp,9000")).unwrap();
        let rules = rules(&script);
        assert_eq!(rules.len(), 6, "{script}");
        // Dispatch first, at the very top of input.
        assert_eq!(field(rules[0], "chain"), Some("input"));
        assert_eq!(field(rules[0], "jump-target"), Some("knockr-home"));
        assert_eq!(field(rules[0], "place-before"), Some("([find"));
        assert!(rules[0].ends_with("place-before=([find chain=input]->0)"));
        assert_eq!(field(rules[0], "in-interface-list"), Some("WAN"));
        // Then stages 3, 2, 1.
        let stage = |l: &str| {
            (
                field(l, "protocol").unwrap().to_string(),
                field(l, "dst-port").unwrap().to_string(),
            )
        };
        assert_eq!(stage(rules[1]), ("tcp".into(), "9000".into()));
        assert_eq!(stage(rules[2]), ("udp".into(), "8000".into()));
        assert_eq!(stage(rules[3]), ("tcp".into(), "7000".into()));
        // Each stage needs the previous one's list and feeds the next.
        assert_eq!(
            field(rules[3], "src-address-list"),
            None,
            "the first knock needs nothing"
        );
        assert_eq!(field(rules[3], "address-list"), Some("knockr-home-s1"));
        assert_eq!(field(rules[2], "src-address-list"), Some("knockr-home-s1"));
        assert_eq!(field(rules[2], "address-list"), Some("knockr-home-s2"));
        assert_eq!(field(rules[2], "address-list-timeout"), Some("10s"));
        assert_eq!(field(rules[1], "src-address-list"), Some("knockr-home-s2"));
        assert_eq!(field(rules[1], "address-list"), Some("knocked"));
        assert_eq!(field(rules[1], "address-list-timeout"), Some("1h"));
        assert!(rules[1].ends_with("comment=\"knockr-home: knock 3/3\""));
        assert_eq!(field(rules[4], "action"), Some("return"));
        // The accept rule goes before the default drop.
        assert_eq!(field(rules[5], "action"), Some("accept"));
        assert_eq!(field(rules[5], "src-address-list"), Some("knocked"));
        assert_eq!(field(rules[5], "dst-port"), Some("22,8291"));
        assert!(
            rules[5]
                .ends_with("place-before=[find comment=\"defconf: drop all not coming from LAN\"]")
        );
        assert!(script.contains("# Pitfalls:"));
        assert!(script.lines().any(|l| l == "/ip firewall filter"));
        assert!(!script.lines().any(|l| l == "/ipv6 firewall filter"));
    }

    #[test]
    fn a_single_knock_goes_straight_to_the_final_list() {
        let script = script(&spec("4444:udp")).unwrap();
        let rules = rules(&script);
        assert_eq!(field(rules[1], "address-list"), Some("knocked"));
        assert_eq!(field(rules[1], "src-address-list"), None);
        assert_eq!(field(rules[1], "protocol"), Some("udp"));
    }

    #[test]
    fn ipv6_gets_its_own_section_and_anchor() {
        let mut both = spec("7000,8000");
        both.ipv6 = true;
        let script = script(&both).unwrap();
        let (v4, v6) = script.split_once("/ipv6 firewall filter\n").unwrap();
        assert!(v4.contains("/ip firewall filter\n"));
        assert_eq!(rules(v4).len(), 5);
        assert_eq!(rules(v6).len(), 5);
        assert!(rules(v6)[4].ends_with(
            "place-before=[find comment=\"defconf: drop everything else not coming from LAN\"]"
        ));
    }

    #[test]
    fn repeated_ports_still_need_their_previous_stage() {
        // 7000 twice in a row: emitted last-first, one packet cannot climb both stages.
        let script = script(&spec("7000,7000,9000")).unwrap();
        let rules = rules(&script);
        assert_eq!(field(rules[2], "dst-port"), Some("7000"));
        assert_eq!(field(rules[2], "src-address-list"), Some("knockr-home-s1"));
        assert_eq!(field(rules[3], "dst-port"), Some("7000"));
        assert_eq!(field(rules[3], "address-list"), Some("knockr-home-s1"));
    }

    #[test]
    fn impossible_specs_are_refused_with_a_reason() {
        let mut slow = spec("7000,8000");
        slow.delay = Duration::from_secs(10);
        assert_eq!(
            script(&slow).unwrap_err(),
            "the stage timeout 10s must be longer than the knock delay 10s: a stage would expire before the next knock"
        );
        let mut evil = spec("7000");
        evil.wan = "WAN\" action=accept".into();
        assert!(
            script(&evil)
                .unwrap_err()
                .contains("is not usable in a RouterOS rule")
        );
        let mut long = spec("7000");
        long.timeout = MAX_TIMEOUT + Duration::from_secs(1);
        assert!(script(&long).unwrap_err().contains("out of range"));
        let mut none = spec("7000");
        none.protect.clear();
        assert!(script(&none).is_err());
    }

    #[test]
    fn icmp_knocks_match_echo_requests_by_packet_size_on_ipv4_and_ipv6() {
        let mut both = spec("7000,56:icmp,1000:icmp");
        both.ipv6 = true;
        let script = script(&both).unwrap();
        let (v4, v6) = script.split_once("/ipv6 firewall filter\n").unwrap();
        let (v4, v6) = (rules(v4), rules(v6));
        assert_eq!((v4.len(), v6.len()), (6, 6));
        // Stages last first: 1000:icmp, 56:icmp, 7000.
        for (rules, protocol, request, sizes) in [
            (&v4, "icmp", "8:0", ["1028", "84"]),
            (&v6, "icmpv6", "128:0", ["1048", "104"]),
        ] {
            for (rule, size) in rules[1..3].iter().zip(sizes) {
                assert_eq!(field(rule, "protocol"), Some(protocol), "{rule}");
                assert_eq!(field(rule, "icmp-options"), Some(request), "{rule}");
                assert_eq!(field(rule, "packet-size"), Some(size), "{rule}");
                assert_eq!(field(rule, "dst-port"), None, "ICMP has no port: {rule}");
            }
            assert_eq!(field(rules[1], "src-address-list"), Some("knockr-home-s2"));
            assert_eq!(field(rules[1], "address-list"), Some("knocked"));
            assert_eq!(field(rules[2], "src-address-list"), Some("knockr-home-s1"));
            assert_eq!(field(rules[2], "address-list"), Some("knockr-home-s2"));
            assert_eq!(field(rules[3], "protocol"), Some("tcp"));
            assert_eq!(field(rules[3], "dst-port"), Some("7000"));
            assert_eq!(field(rules[3], "address-list"), Some("knockr-home-s1"));
        }
        assert!(
            script.contains("packet-size=84 under /ip and 104 under /ipv6"),
            "the arithmetic is explained: {script}"
        );
        assert!(
            !super::script(&spec("7000,8000:udp"))
                .unwrap()
                .contains("ICMP knocks match"),
            "the ICMP note only comes with ICMP knocks"
        );
    }

    #[test]
    fn the_largest_icmp_payload_fits_routeros_packet_size() {
        let max = crate::core::knock::MAX_ICMP_PAYLOAD;
        assert_eq!(icmp_packet_size(max, true), 65535);
        assert_eq!(icmp_packet_size(max, false), 65515);
        assert_eq!(icmp_packet_size(0, false), 28);
    }

    #[test]
    fn durations_use_routeros_units() {
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(3600)), "1h");
        assert_eq!(duration(MAX_TIMEOUT), "35w3d13h13m56s");
        assert_eq!(duration(Duration::from_millis(1500)), "2s");
    }
}
