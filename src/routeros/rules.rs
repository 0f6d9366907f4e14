//! Pure: a RouterOS script that makes the router detect a knock sequence by
//! itself with staged address lists (the technique of MikroTik's own port
//! knocking guide), blocks sources that scan, and can be imported again or
//! undone. No I/O; the caller prints the text.
//!
//! How one new packet from the knock interfaces walks the knock chain `N`:
//! 1. a knocked source's own connection to a protected port returns at once,
//!    so a knocker's ssh never counts as a wrong knock;
//! 2. a blocked source returns at once: it makes no progress until the entry expires;
//! 3. the advances, last stage first: "on `N-s(i-1)` and knock i" adds the
//!    source to the next list and then returns (`add-src-to-address-list` is
//!    not terminal, so a second rule with the same match ends the pass).
//!    Last first, so the highest stage a packet completes wins when knocks
//!    repeat a port, and the return means one packet climbs one stage only;
//! 4. a repeat of knock i from a source on `N-s(i)` returns (a retransmit or
//!    a second client costs nothing);
//! 5. anything else from a source on any stage list puts it on `N-blocked`.
//!
//! So a source mid-sequence must send the next knock right after the last
//! one; a sequential or random scan that hits knock 1 is blocked by the next
//! port it probes. Knock 1 itself always restarts (a retry after a typo is
//! not punished), and sources on no stage list are never blocked.
//!
//! ICMP knocks (`56:icmp`) have no port: the router tells them apart by the
//! echo request's whole IP packet size, see [`icmp_packet_size`].

use std::fmt::Write as _;
use std::time::Duration;

use crate::core::knock::{Knock, Proto, Transport};
pub use crate::core::protect::{BadProtect, Protected, Weakness, parse_protect, weakness};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Prefix of the chain, the stage lists and every comment (`N`): the tag
    /// by which a later import or the undo script finds what this one installed.
    pub tag: String,
    pub sequence: Vec<Knock>,
    /// The interface list the knocks arrive on (`W`), e.g. "WAN".
    pub wan: String,
    /// Ports opened to a knocker (`P`).
    pub protect: Vec<Protected>,
    /// The address list a knocker ends on (`F`).
    pub list: String,
    /// How long a knocker stays on `list` (`T`); the router removes it itself.
    pub timeout: Duration,
    /// How long each stage list entry lives (`S`): the time allowed between knocks.
    pub stage_timeout: Duration,
    /// The client's delay between knocks, to check `stage_timeout` against.
    pub delay: Duration,
    /// How long a source that sent a wrong knock mid-sequence stays blocked.
    pub block_for: Duration,
    /// The comment of the input rule the accept goes before; `None`: the
    /// default configuration's drop rule if there is one, else the top.
    pub place_before: Option<String>,
    /// Generate a sequence a scan completes easily, reporting it as a warning.
    pub allow_weak: bool,
    pub ipv4: bool,
    pub ipv6: bool,
}

/// Why a script cannot be made; each reads as one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{what} {text:?} is not usable in a RouterOS rule: expected letters, digits, - _ or .")]
    BadWord { what: &'static str, text: String },
    #[error(
        "the address list {0:?} is one the rules manage themselves (stage or blocked list): choose another --list"
    )]
    ListClash(String),
    #[error("the comment {0:?} is not usable: expected printable text without control characters")]
    BadComment(String),
    #[error("the sequence is empty: expected one or more PORT[:tcp|udp] or SIZE:icmp")]
    EmptySequence,
    #[error("no port to protect: give --protect PORT[-PORT][:tcp|udp][,...]")]
    NothingProtected,
    #[error(
        "{count} {transport} ports or ranges to protect: RouterOS matches at most {MAX_PORTS} in one rule"
    )]
    TooManyPorts { transport: Proto, count: usize },
    #[error("neither IPv4 nor IPv6 rules were asked for")]
    NoFamily,
    #[error(
        "the stage timeout {stage} must be longer than the knock delay {delay}: a stage would expire before the next knock"
    )]
    StageTimeoutTooShort { stage: String, delay: String },
    #[error("{what} {value} is out of range: RouterOS accepts 1s to 35w3d13h13m56s")]
    OutOfRange { what: &'static str, value: String },
    #[error("the sequence {sequence} {weakness} (or give --allow-weak to generate it anyway)")]
    Scannable {
        sequence: String,
        weakness: Weakness,
    },
}

/// The longest timeout RouterOS accepts on an address-list entry.
pub const MAX_TIMEOUT: Duration =
    Duration::from_secs(35 * 7 * 86400 + 3 * 86400 + 13 * 3600 + 13 * 60 + 56);

/// How many ports and ranges one `dst-port` takes.
pub const MAX_PORTS: usize = 15;

/// A generated script and what it let through with `allow_weak`.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub text: String,
    pub warnings: Vec<Weakness>,
}

/// One family's firewall: where its rules and lists live and the default
/// configuration's drop rule.
struct Section {
    filter: &'static str,
    lists: &'static str,
    ipv6: bool,
    defconf_drop: &'static str,
}

const V4: Section = Section {
    filter: "/ip firewall filter",
    lists: "/ip firewall address-list",
    ipv6: false,
    defconf_drop: "defconf: drop all not coming from LAN",
};

const V6: Section = Section {
    filter: "/ipv6 firewall filter",
    lists: "/ipv6 firewall address-list",
    ipv6: true,
    defconf_drop: "defconf: drop everything else not coming from LAN",
};

fn sections(ipv4: bool, ipv6: bool) -> impl Iterator<Item = &'static Section> {
    [(ipv4, &V4), (ipv6, &V6)]
        .into_iter()
        .filter_map(|(on, section)| on.then_some(section))
}

/// The whole script, or why it cannot be made.
pub fn script(spec: &RuleSpec) -> Result<Script, RuleError> {
    let warnings = validate(spec)?;
    let mut out = header(spec);
    if let Some(anchor) = &spec.place_before {
        // Checked before anything changes, so a wrong anchor leaves the router as it was.
        for section in sections(spec.ipv4, spec.ipv6) {
            let _ = writeln!(out, "{}", section.filter);
            let _ = writeln!(
                out,
                ":if ([:len [find chain=input comment={}]] = 0) do={{:error {}}}",
                quote(anchor),
                quote(&format!(
                    "knockr: no input rule is commented \"{anchor}\" under {}: nothing was changed",
                    section.filter
                ))
            );
        }
    }
    for section in sections(spec.ipv4, spec.ipv6) {
        out.push_str(&removal(&spec.tag, section));
        out.push_str(&install(spec, section));
    }
    Ok(Script {
        text: out,
        warnings,
    })
}

/// The script that takes out what [`script`] installed under `tag`.
pub fn undo(tag: &str, ipv4: bool, ipv6: bool) -> Result<String, RuleError> {
    word("the tag", tag)?;
    if !ipv4 && !ipv6 {
        return Err(RuleError::NoFamily);
    }
    let mut out = format!(
        "# knockr: removes the knock detection tagged \"{tag}\": every rule commented \"{tag}: ...\"\n\
         # and the entries of its stage and blocked lists. Entries of the final list stay until\n\
         # their timeout (knockd may share that list); without the accept rule they open nothing.\n"
    );
    for section in sections(ipv4, ipv6) {
        out.push_str(&removal(tag, section));
    }
    Ok(out)
}

/// Removes every rule and list entry a script with `tag` installed, so an
/// import replaces the previous one instead of adding a second copy.
fn removal(tag: &str, section: &Section) -> String {
    let re = regex_literal(tag);
    format!(
        "{}\nremove [find comment~\"^{re}: \"]\n{}\nremove [find list~\"^{re}-(s[0-9]+|blocked)\\$\"]\n",
        section.filter, section.lists
    )
}

/// `tag` as a regular expression matching itself: tags are letters,
/// digits, `-`, `_` and `.`, and only the dot is special.
fn regex_literal(tag: &str) -> String {
    tag.replace('.', "[.]")
}

fn header(spec: &RuleSpec) -> String {
    let n = &spec.tag;
    let knocks: Vec<String> = spec.sequence.iter().map(Knock::to_string).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# knockr: RouterOS detects the knock {} by itself.",
        knocks.join(" ")
    );
    let _ = writeln!(
        out,
        "# A knocker who completes it within {} per step lands on address list \"{}\" for {},\n\
         # which opens {} from interface list \"{}\".",
        duration(spec.stage_timeout),
        spec.list,
        duration(spec.timeout),
        opened(&spec.protect),
        spec.wan
    );
    let _ = writeln!(
        out,
        "# Scans: a source that has begun the sequence and then sends anything but its next knock\n\
         # (or the same knock again) lands on \"{n}-blocked\" for {} and makes no progress meanwhile.\n\
         # Once knocked, its own connections to the opened ports never count as knocks.\n\
         # Importing this again replaces what it installed before: every rule commented \"{n}: ...\"\n\
         # and the lists {n}-s1.. and {n}-blocked (--tag keeps several knocks apart);\n\
         # `knockr routeros rules --undo` prints the script that only removes them.",
        duration(spec.block_for)
    );
    match &spec.place_before {
        Some(anchor) => {
            let _ = writeln!(
                out,
                "# Assumed: the accept goes before the input rule commented \"{anchor}\" (--place-before);\n\
                 # if there is none the import stops before changing anything."
            );
        }
        None => {
            let _ = writeln!(
                out,
                "# Assumed: the accept goes before the default configuration's drop rule (\"{}\"{}),\n\
                 # or at the top of the input chain when there is none; the jump into the knock chain\n\
                 # always goes first. A firewall of your own: give --place-before COMMENT.",
                V4.defconf_drop,
                if spec.ipv6 {
                    format!("; IPv6: \"{}\"", V6.defconf_drop)
                } else {
                    String::new()
                }
            );
        }
    }
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
         # - Anything else the knocker sends to the router between two knocks blocks it.\n\
         # - Connections already established survive the list entry's expiry.\n",
    );
    out
}

/// One family's rules, after the removal of the previous copy.
fn install(spec: &RuleSpec, section: &Section) -> String {
    let mut out = format!("{}\n", section.filter);
    for rule in family_rules(spec, section) {
        let line = rule.line();
        let _ = match rule.place {
            Place::BeforeAnchor => writeln!(
                out,
                "{}",
                placed(&line, spec.place_before.as_deref(), section)
            ),
            Place::Top => writeln!(out, "{line} place-before=([find chain=input]->0)"),
            Place::End => writeln!(out, "{line}"),
        };
    }
    out
}

/// Where a rule goes in the filter table (the script's placement, which
/// `routeros apply` follows too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Before the anchor (`--place-before`'s rule, else the default drop
    /// rule), else at the top of input, else (input empty) at the end.
    BeforeAnchor,
    /// First in the input chain.
    Top,
    /// Appended at the end of the table (the knock chain's own rules).
    End,
}

/// One filter rule as RouterOS holds it: its fields in the order the
/// script writes them (every value as RouterOS prints it), and its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub fields: Vec<(&'static str, String)>,
    pub place: Place,
}

impl Rule {
    fn new(place: Place, fields: Vec<(&'static str, String)>) -> Rule {
        Rule { fields, place }
    }

    /// The value of `key`, if the rule sets it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `add chain=... comment="..."`, as the script writes it.
    fn line(&self) -> String {
        let words: Vec<String> = self
            .fields
            .iter()
            .map(|(key, value)| match *key {
                "comment" => format!("{key}={}", quote(value)),
                _ => format!("{key}={value}"),
            })
            .collect();
        format!("add {}", words.join(" "))
    }
}

/// One family's firewall filter, for a client that installs the rules itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRules {
    pub ipv6: bool,
    /// The comment of the input rule the accepts go before when present
    /// (`--place-before`, which must then exist, else the default drop rule).
    pub anchor: String,
    /// Whether the anchor must exist (`--place-before`) or is only preferred.
    pub anchor_required: bool,
    /// The rules in the order the script adds them.
    pub rules: Vec<Rule>,
}

/// The rules of [`script`] as data, one entry per family, for `routeros
/// apply`; the same checks refuse the same specs.
pub fn rules(spec: &RuleSpec) -> Result<(Vec<FamilyRules>, Vec<Weakness>), RuleError> {
    let warnings = validate(spec)?;
    let families = sections(spec.ipv4, spec.ipv6)
        .map(|section| FamilyRules {
            ipv6: section.ipv6,
            anchor: spec
                .place_before
                .clone()
                .unwrap_or_else(|| section.defconf_drop.to_string()),
            anchor_required: spec.place_before.is_some(),
            rules: family_rules(spec, section),
        })
        .collect();
    Ok((families, warnings))
}

/// Whether `comment` marks a rule installed under `tag` (`TAG: ...`).
pub fn is_tagged(tag: &str, comment: &str) -> bool {
    comment
        .strip_prefix(tag)
        .is_some_and(|rest| rest.starts_with(": "))
}

/// Whether `list` is one of `tag`'s own stage or blocked lists.
pub fn is_stage_list(tag: &str, list: &str) -> bool {
    list.strip_prefix(tag)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| {
            rest == "blocked"
                || rest
                    .strip_prefix('s')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// One family's rules in the order the script adds them: the accepts, the
/// dispatch, then the knock chain.
fn family_rules(spec: &RuleSpec, section: &Section) -> Vec<Rule> {
    let n = &spec.tag;
    let k = spec.sequence.len();
    let s = |text: &str| text.to_string();
    let mut rules = Vec::new();
    for (transport, ports) in by_transport(&spec.protect) {
        let proto = Proto::from(transport);
        rules.push(Rule::new(
            Place::BeforeAnchor,
            vec![
                ("chain", s("input")),
                ("action", s("accept")),
                ("in-interface-list", spec.wan.clone()),
                ("src-address-list", spec.list.clone()),
                ("protocol", proto.to_string()),
                ("dst-port", ports),
                ("comment", format!("{n}: accept knocked {proto}")),
            ],
        ));
    }
    // At the very top, above the accept: the default configuration accepts
    // ICMP (and under /ipv6 some UDP) before its drop rule, and those are knocks too.
    rules.push(Rule::new(
        Place::Top,
        vec![
            ("chain", s("input")),
            ("action", s("jump")),
            ("jump-target", n.clone()),
            ("in-interface-list", spec.wan.clone()),
            ("connection-state", s("new")),
            ("comment", format!("{n}: dispatch")),
        ],
    ));
    let chain = |action: &str, mut fields: Vec<(&'static str, String)>, comment: String| {
        let mut all = vec![("chain", n.clone()), ("action", action.to_string())];
        all.append(&mut fields);
        all.push(("comment", comment));
        Rule::new(Place::End, all)
    };
    for (transport, ports) in by_transport(&spec.protect) {
        let proto = Proto::from(transport);
        rules.push(chain(
            "return",
            vec![
                ("src-address-list", spec.list.clone()),
                ("protocol", proto.to_string()),
                ("dst-port", ports.clone()),
            ],
            format!("{n}: knocked, to {proto} {ports}"),
        ));
    }
    rules.push(chain(
        "return",
        vec![("src-address-list", format!("{n}-blocked"))],
        format!("{n}: blocked"),
    ));
    for stage in (1..=k).rev() {
        let mut matched = matcher(spec.sequence[stage - 1], section.ipv6);
        if stage > 1 {
            matched.push(("src-address-list", format!("{n}-s{}", stage - 1)));
        }
        let (list, timeout) = if stage == k {
            (spec.list.clone(), spec.timeout)
        } else {
            (format!("{n}-s{stage}"), spec.stage_timeout)
        };
        let mut advance = matched.clone();
        advance.push(("address-list", list));
        advance.push(("address-list-timeout", duration(timeout)));
        rules.push(chain(
            "add-src-to-address-list",
            advance,
            format!("{n}: knock {stage}/{k}"),
        ));
        rules.push(chain(
            "return",
            matched,
            format!("{n}: knock {stage}/{k} done"),
        ));
    }
    // Knock 1 always matches its advance above; later knocks repeat here
    // once the stage before them has expired.
    for stage in 2..k {
        let mut matched = matcher(spec.sequence[stage - 1], section.ipv6);
        matched.push(("src-address-list", format!("{n}-s{stage}")));
        rules.push(chain(
            "return",
            matched,
            format!("{n}: knock {stage}/{k} again"),
        ));
    }
    for stage in 1..k {
        rules.push(chain(
            "add-src-to-address-list",
            vec![
                ("src-address-list", format!("{n}-s{stage}")),
                ("address-list", format!("{n}-blocked")),
                ("address-list-timeout", duration(spec.block_for)),
            ],
            format!("{n}: wrong knock after {stage}/{k}"),
        ));
    }
    rules.push(chain("return", Vec::new(), format!("{n}: end")));
    rules
}

/// `rule` with its place: before the rule commented `anchor` (the script
/// checked it exists), or before the default drop rule when there is one,
/// else at the top of input, else (an empty input chain) simply added.
fn placed(rule: &str, anchor: Option<&str>, section: &Section) -> String {
    let before = |comment: &str| format!("[find chain=input comment={}]", quote(comment));
    match anchor {
        Some(anchor) => format!("{rule} place-before=({}->0)", before(anchor)),
        None => format!(
            ":if ([:len {find}] > 0) do={{{rule} place-before=({find}->0)}} \
             else={{:if ([:len [find chain=input]] > 0) do={{{rule} place-before=([find chain=input]->0)}} \
             else={{{rule}}}}}",
            find = before(section.defconf_drop)
        ),
    }
}

/// The protected ports of each transport, as one `dst-port` value.
fn by_transport(protect: &[Protected]) -> Vec<(Transport, String)> {
    [Transport::Tcp, Transport::Udp]
        .into_iter()
        .filter_map(|transport| {
            let ports: Vec<String> = protect
                .iter()
                .filter(|p| p.transport() == transport)
                .map(|p| p.ports())
                .collect();
            (!ports.is_empty()).then(|| (transport, ports.join(",")))
        })
        .collect()
}

/// `tcp 22,8291 and udp 51820`, for the header.
fn opened(protect: &[Protected]) -> String {
    by_transport(protect)
        .into_iter()
        .map(|(transport, ports)| format!("{} {ports}", Proto::from(transport)))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// A RouterOS string literal: `"`, `\`, `$` and `?` escaped.
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '$' | '?') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn word(what: &'static str, text: &str) -> Result<(), RuleError> {
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(RuleError::BadWord {
            what,
            text: text.to_string(),
        });
    }
    Ok(())
}

/// Checks `spec`; the weaknesses `allow_weak` let through.
fn validate(spec: &RuleSpec) -> Result<Vec<Weakness>, RuleError> {
    word("the tag", &spec.tag)?;
    word("the interface list", &spec.wan)?;
    word("the address list", &spec.list)?;
    if is_stage_list(&spec.tag, &spec.list) {
        return Err(RuleError::ListClash(spec.list.clone()));
    }
    if let Some(anchor) = &spec.place_before
        && (anchor.is_empty() || anchor.chars().any(char::is_control))
    {
        return Err(RuleError::BadComment(anchor.clone()));
    }
    if spec.sequence.is_empty() {
        return Err(RuleError::EmptySequence);
    }
    if spec.protect.is_empty() {
        return Err(RuleError::NothingProtected);
    }
    for transport in [Transport::Tcp, Transport::Udp] {
        let count = spec
            .protect
            .iter()
            .filter(|p| p.transport() == transport)
            .count();
        if count > MAX_PORTS {
            return Err(RuleError::TooManyPorts {
                transport: transport.into(),
                count,
            });
        }
    }
    if !spec.ipv4 && !spec.ipv6 {
        return Err(RuleError::NoFamily);
    }
    if spec.stage_timeout <= spec.delay {
        return Err(RuleError::StageTimeoutTooShort {
            stage: crate::core::units::format_duration(spec.stage_timeout),
            delay: crate::core::units::format_duration(spec.delay),
        });
    }
    for (what, value) in [
        ("the stage timeout", spec.stage_timeout),
        ("the list timeout", spec.timeout),
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
            sequence: spec
                .sequence
                .iter()
                .map(Knock::to_string)
                .collect::<Vec<_>>()
                .join(","),
            weakness,
        }),
        found => Ok(found.into_iter().collect()),
    }
}

/// The rule's match for one knock: protocol and port, or for ICMP the echo
/// request and its packet size.
fn matcher(knock: Knock, ipv6: bool) -> Vec<(&'static str, String)> {
    let size = || {
        (
            "packet-size",
            icmp_packet_size(knock.port, ipv6).to_string(),
        )
    };
    match (knock.proto, ipv6) {
        (Proto::Tcp | Proto::Udp, _) => vec![
            ("protocol", knock.proto.to_string()),
            ("dst-port", knock.port.to_string()),
        ],
        (Proto::Icmp, false) => vec![
            ("protocol", "icmp".into()),
            ("icmp-options", "8:0".into()),
            size(),
        ],
        (Proto::Icmp, true) => vec![
            ("protocol", "icmpv6".into()),
            ("icmp-options", "128:0".into()),
            size(),
        ],
    }
}

/// The IP packet size of an echo request with `payload` bytes, as RouterOS's
/// `packet-size` counts it: the payload, 8 bytes of ICMP header, and the IP
/// header (20 bytes for IPv4 without options, 40 for IPv6). Sequence parsing
/// caps `payload` so that this fits `packet-size`'s 0..=65535.
pub fn icmp_packet_size(payload: u16, ipv6: bool) -> u32 {
    u32::from(payload) + 8 + if ipv6 { 40 } else { 20 }
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
            tag: "knockr-home".into(),
            sequence: parse_list(sequence, Proto::Tcp).unwrap(),
            wan: "WAN".into(),
            protect: vec![parse_protect("22").unwrap(), parse_protect("8291").unwrap()],
            list: "knocked".into(),
            timeout: Duration::from_secs(3600),
            stage_timeout: Duration::from_secs(10),
            delay: Duration::from_millis(200),
            block_for: Duration::from_secs(60),
            place_before: None,
            allow_weak: false,
            ipv4: true,
            ipv6: false,
        }
    }

    fn text(spec: &RuleSpec) -> String {
        script(spec).unwrap().text
    }

    /// The value of `key=` in a rule line.
    fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        line.split(' ')
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
    }

    /// The rules added to the knock chain, in order.
    fn chain(script: &str) -> Vec<&str> {
        script
            .lines()
            .filter(|l| l.starts_with("add chain=knockr-home "))
            .collect()
    }

    #[test]
    fn stages_are_emitted_last_first_each_advance_ends_the_pass_and_guards_come_last() {
        let script = text(&spec("7000,8000:udp,9000"));
        let comments: Vec<&str> = chain(&script)
            .iter()
            .map(|l| l.split_once("comment=\"knockr-home: ").unwrap().1)
            .collect();
        assert_eq!(
            comments,
            [
                "knocked, to tcp 22,8291\"",
                "blocked\"",
                "knock 3/3\"",
                "knock 3/3 done\"",
                "knock 2/3\"",
                "knock 2/3 done\"",
                "knock 1/3\"",
                "knock 1/3 done\"",
                "knock 2/3 again\"",
                "wrong knock after 1/3\"",
                "wrong knock after 2/3\"",
                "end\"",
            ]
        );
        let rules = chain(&script);
        assert_eq!(field(rules[2], "dst-port"), Some("9000"));
        assert_eq!(field(rules[2], "src-address-list"), Some("knockr-home-s2"));
        assert_eq!(field(rules[2], "address-list"), Some("knocked"));
        assert_eq!(field(rules[2], "address-list-timeout"), Some("1h"));
        assert_eq!(field(rules[3], "action"), Some("return"));
        assert_eq!(field(rules[4], "protocol"), Some("udp"));
        assert_eq!(field(rules[4], "address-list-timeout"), Some("10s"));
        assert_eq!(
            field(rules[6], "src-address-list"),
            None,
            "knock 1 needs nothing"
        );
        assert_eq!(field(rules[9], "address-list"), Some("knockr-home-blocked"));
        assert_eq!(field(rules[9], "address-list-timeout"), Some("1m"));
    }

    #[test]
    fn scannable_sequences_are_refused_unless_allowed_and_then_reported() {
        for (sequence, weak) in [
            ("7000", Some(Weakness::OneKnock)),
            (
                "7000,8000,9000",
                Some(Weakness::Monotone {
                    proto: Proto::Tcp,
                    ascending: true,
                }),
            ),
            (
                "9:udp,8:udp",
                Some(Weakness::Monotone {
                    proto: Proto::Udp,
                    ascending: false,
                }),
            ),
            ("7000,8000:udp,9000", None),
            ("7000,7000,9000", None),
            ("8000,7000,9000", None),
        ] {
            let mut spec = spec(sequence);
            assert_eq!(weakness(&spec.sequence), weak, "{sequence}");
            match weak {
                Some(weak) => {
                    let err = script(&spec).unwrap_err();
                    assert!(err.to_string().contains("--allow-weak"), "{err}");
                    spec.allow_weak = true;
                    assert_eq!(script(&spec).unwrap().warnings, [weak]);
                }
                None => assert!(script(&spec).unwrap().warnings.is_empty()),
            }
        }
        assert_eq!(
            script(&spec("7000,8000,9000")).unwrap_err().to_string(),
            "the sequence 7000:tcp,8000:tcp,9000:tcp knocks on ascending tcp ports, so a sequential \
             port scan can open it; mix the order (or give --allow-weak to generate it anyway)"
        );
    }

    #[test]
    fn the_script_first_removes_its_own_tag_and_the_undo_script_only_that() {
        let mut dotted = spec("7000,8000:udp");
        dotted.tag = "door.a".into();
        let script = text(&dotted);
        let removal = "/ip firewall filter\nremove [find comment~\"^door[.]a: \"]\n\
                       /ip firewall address-list\nremove [find list~\"^door[.]a-(s[0-9]+|blocked)\\$\"]\n";
        let at = script.find(removal).expect(&script);
        assert!(
            script[..at].lines().all(|l| l.starts_with('#')),
            "nothing is added before the removal"
        );
        assert_eq!(
            undo("door.a", true, false)
                .unwrap()
                .split_once("/ip")
                .unwrap()
                .1,
            &removal[3..]
        );
        let both = undo("door.a", true, true).unwrap();
        assert!(both.contains("/ipv6 firewall address-list\n"), "{both}");
        assert!(undo("door a", true, false).is_err());
    }

    #[test]
    fn the_accept_goes_before_the_given_rule_after_a_check_or_before_defconf_or_on_top() {
        let script = text(&spec("7000,8000:udp"));
        let accept = script
            .lines()
            .find(|l| l.contains("accept knocked tcp"))
            .unwrap();
        assert!(accept.starts_with(
            ":if ([:len [find chain=input comment=\"defconf: drop all not coming from LAN\"]] > 0) do={add chain=input action=accept"
        ), "{accept}");
        assert!(
            accept.contains("else={:if ([:len [find chain=input]] > 0) do={add"),
            "{accept}"
        );
        assert!(
            accept.ends_with("comment=\"knockr-home: accept knocked tcp\"}}"),
            "{accept}"
        );

        let mut custom = spec("7000,8000:udp");
        custom.place_before = Some("my \"drop\" $all".into());
        let script = text(&custom);
        let check =
            ":if ([:len [find chain=input comment=\"my \\\"drop\\\" \\$all\"]] = 0) do={:error";
        let accept = "place-before=([find chain=input comment=\"my \\\"drop\\\" \\$all\"]->0)";
        assert!(
            script.find(check).unwrap() < script.find("remove ").unwrap(),
            "{script}"
        );
        assert!(script.contains(accept), "{script}");
        custom.place_before = Some("a\nb".into());
        assert!(matches!(script_err(&custom), RuleError::BadComment(_)));
    }

    fn script_err(spec: &RuleSpec) -> RuleError {
        script(spec).unwrap_err()
    }

    #[test]
    fn protect_takes_ports_ranges_and_udp_in_one_rule_per_protocol() {
        let mut spec = spec("7000,8000:udp");
        spec.protect = ["22", "8291", "51820:udp", "60000-60010", "5000-5001:UDP"]
            .iter()
            .map(|p| parse_protect(p).unwrap())
            .collect();
        let script = text(&spec);
        let accepts: Vec<&str> = script
            .lines()
            .filter(|l| l.contains("action=accept"))
            .collect();
        assert_eq!(accepts.len(), 2);
        assert!(
            accepts[0].contains("protocol=tcp dst-port=22,8291,60000-60010 "),
            "{}",
            accepts[0]
        );
        assert!(
            accepts[1].contains("protocol=udp dst-port=51820,5000-5001 "),
            "{}",
            accepts[1]
        );
        assert!(
            script.contains("which opens tcp 22,8291,60000-60010 and udp 51820,5000-5001 from")
        );
        for bad in ["", "0", "22:icmp", "10-9", "1-", "65536", "22:"] {
            assert_eq!(parse_protect(bad), Err(BadProtect(bad.into())), "{bad:?}");
        }
        spec.protect = (1..=16)
            .map(|p| parse_protect(&p.to_string()).unwrap())
            .collect();
        assert!(matches!(
            script_err(&spec),
            RuleError::TooManyPorts { count: 16, .. }
        ));
    }

    #[test]
    fn repeated_ports_still_need_their_previous_stage() {
        // 7000 twice in a row: the higher stage comes first, one packet climbs one stage.
        let mut spec = spec("7000,7000,9000");
        spec.protect = vec![parse_protect("22").unwrap()];
        let script = text(&spec);
        let rules = chain(&script);
        assert_eq!(field(rules[4], "dst-port"), Some("7000"));
        assert_eq!(field(rules[4], "src-address-list"), Some("knockr-home-s1"));
        assert_eq!(field(rules[4], "address-list"), Some("knockr-home-s2"));
        assert_eq!(field(rules[6], "dst-port"), Some("7000"));
        assert_eq!(field(rules[6], "address-list"), Some("knockr-home-s1"));
    }

    #[test]
    fn impossible_specs_are_refused_with_a_reason() {
        let mut slow = spec("7000,8000:udp");
        slow.delay = Duration::from_secs(10);
        assert_eq!(
            script_err(&slow).to_string(),
            "the stage timeout 10s must be longer than the knock delay 10s: a stage would expire before the next knock"
        );
        let mut evil = spec("7000,8000:udp");
        evil.wan = "WAN\" action=accept".into();
        assert!(
            script_err(&evil)
                .to_string()
                .contains("is not usable in a RouterOS rule")
        );
        let mut long = spec("7000,8000:udp");
        long.timeout = MAX_TIMEOUT + Duration::from_secs(1);
        assert!(script_err(&long).to_string().contains("out of range"));
        let mut never = spec("7000,8000:udp");
        never.block_for = Duration::ZERO;
        assert!(script_err(&never).to_string().contains("the block time 0s"));
        let mut none = spec("7000,8000:udp");
        none.protect.clear();
        assert_eq!(script_err(&none), RuleError::NothingProtected);
        let mut clash = spec("7000,8000:udp");
        clash.list = "knockr-home-blocked".into();
        assert!(matches!(script_err(&clash), RuleError::ListClash(_)));
    }

    #[test]
    fn ipv6_gets_its_own_section_and_anchor() {
        let mut both = spec("7000,8000:udp");
        both.ipv6 = true;
        let script = text(&both);
        let (v4, v6) = script.split_once("/ipv6 firewall filter\n").unwrap();
        assert!(v4.contains("/ip firewall filter\n"));
        assert_eq!(chain(v4).len(), chain(v6).len());
        assert!(v6.contains(
            "[find chain=input comment=\"defconf: drop everything else not coming from LAN\"]"
        ));
        assert!(!v6.contains("defconf: drop all not coming from LAN\"]"));
    }

    #[test]
    fn icmp_knocks_match_echo_requests_by_packet_size_on_ipv4_and_ipv6() {
        let mut both = spec("7000,56:icmp,1000:icmp");
        both.ipv6 = true;
        let script = text(&both);
        let (v4, v6) = script.split_once("/ipv6 firewall filter\n").unwrap();
        // Advances last first: 1000:icmp, 56:icmp, 7000.
        for (rules, protocol, request, sizes) in [
            (chain(v4), "icmp", "8:0", ["1028", "84"]),
            (chain(v6), "icmpv6", "128:0", ["1048", "104"]),
        ] {
            for (rule, size) in [rules[2], rules[4]].iter().zip(sizes) {
                assert_eq!(field(rule, "protocol"), Some(protocol), "{rule}");
                assert_eq!(field(rule, "icmp-options"), Some(request), "{rule}");
                assert_eq!(field(rule, "packet-size"), Some(size), "{rule}");
                assert_eq!(field(rule, "dst-port"), None, "ICMP has no port: {rule}");
            }
            assert_eq!(field(rules[2], "src-address-list"), Some("knockr-home-s2"));
            assert_eq!(field(rules[6], "dst-port"), Some("7000"));
        }
        assert!(
            script.contains("packet-size=84 under /ip and 104 under /ipv6"),
            "the arithmetic is explained: {script}"
        );
        assert!(
            !text(&spec("7000,8000:udp")).contains("ICMP knocks match"),
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
    fn the_rules_as_data_are_the_scripts_rules_in_its_order() {
        let mut both = spec("7000,56:icmp,9000:udp");
        both.ipv6 = true;
        let text = text(&both);
        let (families, warnings) = rules(&both).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(families.len(), 2);
        let (v4, v6) = text.split_once("/ipv6 firewall filter\n").unwrap();
        for (family, section) in families.iter().zip([v4, v6]) {
            let added: Vec<&str> = section
                .lines()
                .filter(|l| l.contains("add chain="))
                .collect();
            assert_eq!(added.len(), family.rules.len());
            for (line, rule) in added.iter().zip(&family.rules) {
                assert!(line.contains(&rule.line()), "{line}\n{}", rule.line());
                assert_eq!(
                    line.contains("place-before=([find chain=input]->0)") && !line.starts_with(':'),
                    rule.place == Place::Top,
                    "{line}"
                );
            }
            assert!(!family.anchor_required);
        }
        assert_eq!(families[1].anchor, V6.defconf_drop);
        assert!(families[1].ipv6);
        let mut custom = spec("7000,8000:udp");
        custom.place_before = Some("my: drop".into());
        let (families, _) = rules(&custom).unwrap();
        assert!(families[0].anchor_required && families[0].anchor == "my: drop");
        custom.sequence.truncate(1);
        assert!(matches!(rules(&custom), Err(RuleError::Scannable { .. })));
        assert!(is_tagged("door", "door: end") && !is_tagged("door", "door2: end"));
        assert!(is_stage_list("door", "door-s12") && is_stage_list("door", "door-blocked"));
        assert!(!is_stage_list("door", "door-s") && !is_stage_list("door", "doors1"));
    }

    #[test]
    fn durations_use_routeros_units() {
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(3600)), "1h");
        assert_eq!(duration(MAX_TIMEOUT), "35w3d13h13m56s");
        assert_eq!(duration(Duration::from_millis(1500)), "2s");
    }
}
