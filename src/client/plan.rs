//! The plan: every (profile, host) to knock with its final settings, made
//! once from the command line and the profiles file. Precedence, highest first:
//! command-line flags, the profile, `[defaults]`, the built-in defaults below.
//!
//! Planning reads no file and no clock itself: the profiles file comes in
//! loaded ([`load_profiles`], called at the edge), and the knocks of one-time
//! and time-based profiles are read when a run starts, for a time given as an
//! argument ([`Plan::read_sequences`]). So the rules here are tested without
//! files, and every subcommand that knocks a profile plans it the same way
//! ([`profile_targets`]).

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::client::local;
use crate::config::profiles::{
    self as config, ConfigError, OtpSequence, Overrides, Profiles, Sequence,
};
use crate::core::host::{self, Host, HostError};
use crate::core::knock::{self, Family, Knock, Mode, Proto, SpecError};
use crate::core::secret::Secret;
use crate::core::text::sanitize;

/// Built-in defaults, documented in `profiles.example.toml` and the README.
pub(crate) const DEFAULT_DELAY: Duration = Duration::from_millis(200);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
pub(crate) const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);
pub(crate) const DEFAULT_CHECK_RETRIES: u32 = 10;
/// As long as one try of glibc's resolver at one server (resolv.conf's
/// `timeout:5`): a DNS server that never answers costs a run this, not
/// every retry of every server.
pub(crate) const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The final settings of `overrides`, with the built-in defaults for anything unsaid.
pub(crate) fn settle(overrides: Overrides) -> Settings {
    Settings {
        delay: overrides.delay.unwrap_or(DEFAULT_DELAY),
        timeout: overrides.timeout.unwrap_or(DEFAULT_TIMEOUT),
        mode: overrides.mode.unwrap_or_default(),
        family: overrides.family.unwrap_or_default(),
        resolve_timeout: overrides.resolve_timeout.unwrap_or(DEFAULT_RESOLVE_TIMEOUT),
        udp_payload: overrides
            .udp_payload
            .unwrap_or_else(|| crate::core::units::DEFAULT_UDP_PAYLOAD.to_vec()),
        check: overrides.check.map(|port| Check {
            port,
            timeout: overrides.check_timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT),
            retries: overrides.check_retries.unwrap_or(DEFAULT_CHECK_RETRIES),
        }),
    }
}

/// How one host is knocked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    /// Pause between the sends of two knocks (not after the last).
    pub(crate) delay: Duration,
    /// How long to watch for an answer to each knock.
    pub(crate) timeout: Duration,
    /// TCP knocks as one bare SYN, or as a full connect.
    pub(crate) mode: Mode,
    /// The addresses of the host that may be knocked.
    pub(crate) family: Family,
    /// How long DNS may take to answer for the host, from the run's start;
    /// a name in the hosts file never waits for it.
    pub(crate) resolve_timeout: Duration,
    /// What each UDP knock carries.
    pub(crate) udp_payload: Vec<u8>,
    /// The destination check after the last knock, if requested.
    pub(crate) check: Option<Check>,
}

/// The destination check: connect to `port` until it opens or `timeout` passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Check {
    /// The TCP port that should open.
    pub(crate) port: u16,
    /// Total time allowed for the check, from its first attempt.
    pub(crate) timeout: Duration,
    /// Further attempts after a refused first one.
    pub(crate) retries: u32,
}

/// One host to knock, as planned: its settings are final, its knocks are
/// found at the moment it is knocked ([`Plan::read_sequences`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    /// The profile it came from; `None` in ad-hoc mode (`-p`).
    pub(crate) profile: Option<String>,
    /// The host as written: a name or an IP literal.
    pub(crate) host: String,
    /// Where its knocks go when `host` is written as an address (`127.1`,
    /// `fe80::1%eth0`): never looked up. `None`: a name, resolved when knocked.
    pub(crate) literal: Option<Destination>,
    /// How its knocks are found: fixed (every ad-hoc target), the first
    /// unused line of a one-time sequences file, or derived from a secret and
    /// the time step.
    pub(crate) sequence: Sequence,
    /// Flags over the profile over `[defaults]` over the built-in defaults.
    pub(crate) settings: Settings,
}

/// Where knocks go: an address, and for a link-local IPv6 address the
/// interface it is on, as `fe80::1%eth0` says (the socket address's scope id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Destination {
    /// The address knocked.
    pub(crate) ip: IpAddr,
    /// The interface index of an IPv6 address's zone; 0 for none.
    pub(crate) scope_id: u32,
}

impl Destination {
    /// The socket address of `port` at this destination.
    pub(crate) fn at(self, port: u16) -> SocketAddr {
        match self.ip {
            IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, port, 0, self.scope_id)),
            IpAddr::V4(_) => SocketAddr::new(self.ip, port),
        }
    }
}

impl From<IpAddr> for Destination {
    /// A looked-up address: names never carry a zone.
    fn from(ip: IpAddr) -> Destination {
        Destination { ip, scope_id: 0 }
    }
}

/// What one target sends when knocked once: made by [`Plan::read_sequences`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Knocks {
    /// The knocks, in the order they go out.
    pub(crate) sequence: Vec<Knock>,
    /// For a one-time profile: the line of its file `sequence` comes from,
    /// marked used once knocked ([`spend_one_time_lines`]).
    pub(crate) one_time_line: Option<OneTimeLine>,
}

/// One run of a plan: every target with the knocks it sends this time, in
/// plan order. Only [`Plan::read_sequences`] makes one, so each target has
/// exactly one entry.
#[derive(Debug)]
pub(crate) struct Run<'p> {
    /// The plan being run.
    plan: &'p Plan,
    /// `knocks[i]` is what `plan.targets[i]` sends.
    knocks: Vec<Knocks>,
}

impl<'p> Run<'p> {
    /// The plan this run knocks.
    pub(crate) fn plan(&self) -> &'p Plan {
        self.plan
    }

    /// Each target with its knocks, in plan order.
    pub(crate) fn targets(&self) -> impl Iterator<Item = (&'p Target, &Knocks)> {
        self.plan.targets.iter().zip(&self.knocks)
    }
}

/// A line of a one-time sequences file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OneTimeLine {
    /// The profile's `one_time_sequences` file.
    pub(crate) file: PathBuf,
    /// 0-based, as [`crate::config::onetime`] counts.
    pub(crate) index: usize,
}

/// How results are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// Progress bars on a terminal, a summary on stdout; `verbose` adds a line
    /// per knock; `color` marks open green and failures red.
    Human { verbose: bool, color: bool },
    /// Errors only.
    Quiet,
    /// One JSON document on stdout.
    Json,
}

/// Everything the client will do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Every (profile, host) to knock, in the order they were named.
    pub(crate) targets: Vec<Target>,
    /// How results are shown.
    pub(crate) output: Output,
    /// The command line's choices that hold for every target.
    pub(crate) conduct: Conduct,
}

/// How every target of a run is knocked: command-line choices, the same for all.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Conduct {
    /// Resolve and report, but send nothing.
    pub(crate) dry_run: bool,
    /// Knock every address of a host, not only the first.
    pub(crate) all_addresses: bool,
    /// Knock rounds to add when the check finds the port closed.
    pub(crate) retry: u32,
    /// Where the knock sockets are bound.
    pub(crate) bind: Bind,
}

/// The local end of every knock and check (`--source`, `--interface`).
/// Only [`Bind::new`] makes one with either, after asking the kernel that
/// both exist, so a typo is a usage error before anything is sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Bind {
    /// `--source`: the local address knocks and the check are sent from.
    source: Option<IpAddr>,
    /// `--interface`: the device they go out of (`SO_BINDTODEVICE`).
    interface: Option<String>,
    /// The interface's index, which a target's zone must agree with.
    index: Option<u32>,
}

impl Bind {
    /// The binding of `--source` and `--interface`, if this machine has
    /// that interface and can send from that address (a socket is bound to
    /// it, nothing is sent).
    pub(crate) fn new(
        source: Option<IpAddr>,
        interface: Option<String>,
    ) -> Result<Bind, PlanError> {
        let index =
            match &interface {
                None => None,
                Some(name) => Some(local::interface_index(name).ok_or_else(|| {
                    PlanError::NoSuchInterface {
                        name: sanitize(name).into_owned(),
                        known: known_interfaces(),
                    }
                })?),
            };
        if let Some(address) = source
            && let Err(err) = local::bind_source(address, index)
        {
            return Err(match err.kind() {
                std::io::ErrorKind::AddrNotAvailable => PlanError::SourceNotLocal { address },
                _ if is_link_local(address) && index.is_none() => {
                    PlanError::SourceNeedsInterface { address }
                }
                _ => PlanError::SourceUnusable {
                    address,
                    reason: crate::core::text::describe(&err),
                },
            });
        }
        Ok(Bind {
            source,
            interface,
            index,
        })
    }

    /// `--source`: the local address knocks and the check are sent from.
    pub(crate) fn source(&self) -> Option<IpAddr> {
        self.source
    }

    /// `--interface`: the device knocks and the check go out of.
    pub(crate) fn interface(&self) -> Option<&str> {
        self.interface.as_deref()
    }
}

/// This machine's interfaces, for a message about one it lacks.
fn known_interfaces() -> String {
    let names: Vec<String> = local::interface_names()
        .iter()
        .map(|n| sanitize(n).into_owned())
        .collect();
    if names.is_empty() {
        "(none found)".to_string()
    } else {
        names.join(", ")
    }
}

/// An IPv6 link-local address (fe80::/10), which means nothing without the
/// interface whose link it is on.
fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// What the command line asked of a knock, before the profiles file is read:
/// `cli` fills it in, so nothing here sees clap.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Request {
    /// Profiles, or a host then its knocks (the old tools' forms); with
    /// `ports`, host names or addresses.
    pub(crate) targets: Vec<String>,
    /// Ad-hoc knock specs (`-p`); empty: knock profiles.
    pub(crate) ports: Vec<String>,
    /// The protocol of `ports` written without one.
    pub(crate) network: Proto,
    /// `-d/--delay`, over the profiles'.
    pub(crate) delay: Option<Duration>,
    /// `-t/--timeout`, over the profiles'.
    pub(crate) timeout: Option<Duration>,
    /// `--resolve-timeout`, over the profiles'.
    pub(crate) resolve_timeout: Option<Duration>,
    /// `--check PORT`, over the profiles'.
    pub(crate) check: Option<u16>,
    /// `--mode`, over the profiles'.
    pub(crate) mode: Option<Mode>,
    /// `-4`: IPv4 addresses only.
    pub(crate) ipv4: bool,
    /// `-6`: IPv6 addresses only.
    pub(crate) ipv6: bool,
    /// `--source`; its family is the only one it can reach.
    pub(crate) source: Option<std::net::IpAddr>,
    /// `--interface`.
    pub(crate) interface: Option<String>,
    /// `--all-addresses`.
    pub(crate) all_addresses: bool,
    /// `--retry N`.
    pub(crate) retry: u32,
    /// `--every`: one-time profiles refuse it.
    pub(crate) every: Option<Duration>,
    /// `--dry-run`.
    pub(crate) dry_run: bool,
    /// `-v`.
    pub(crate) verbose: bool,
    /// `-q`.
    pub(crate) quiet: bool,
    /// `--json`.
    pub(crate) json: bool,
    /// `--color`: `None` is auto (a terminal, unless NO_COLOR is set).
    pub(crate) color: Option<bool>,
}

/// A plan that cannot be made: nothing is sent, and knockr exits 2. Each
/// message is one sentence naming the value and what would be accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    /// The profiles file is refused, or names no such profile.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("nothing to knock: name one or more profiles, or give ports with -p and hosts")]
    NothingToKnock,
    #[error("no host to knock: give one or more host names or addresses after the ports")]
    NoHost,
    #[error("invalid value {spec:?} for -p/--port: {error}")]
    BadPort { spec: String, error: SpecError },
    /// A word after the host in `knockr HOST PORT...` that is no knock.
    #[error(
        "`{word}` after the host `{host}` is not a knock ({error}): `knockr HOST PORT...` \
         knocks one host; to knock several, give the ports with -p: knockr -p PORT,... HOST..."
    )]
    BadKnockAfterHost {
        /// The host, the first word (sanitized).
        host: String,
        /// The word that is no knock (sanitized).
        word: String,
        /// Why it is none.
        error: SpecError,
    },
    /// A host word that is none, with what to write instead.
    #[error("{}", host_message(word, error))]
    Host {
        /// The word as written (sanitized).
        word: String,
        /// What is wrong with it.
        error: HostError,
    },
    /// A word that is no profile but a host: knocking it needs its ports.
    #[error(
        "`{word}` is not a profile but a host: to knock it, give its ports after it \
         (knockr {word} 7000 8000:udp) or with -p (knockr -p 7000,8000:udp {word})"
    )]
    HostWithoutPorts {
        /// The host (sanitized).
        word: String,
    },
    /// A knock written after a profile, which knocks its own sequence.
    #[error(
        "`{word}` after the profile `{profile}` is a knock, not a profile: a profile knocks \
         its own sequence; to check a port after it, write knockr --check PORT {profile}, \
         and to knock ports ad hoc, give a host first: knockr HOST {word}"
    )]
    PortAfterProfile {
        /// The profile before it (sanitized).
        profile: String,
        /// The knock (sanitized).
        word: String,
    },
    #[error("--source {address} is of the other address family than {flag}")]
    SourceFamily {
        /// The `--source` address.
        address: IpAddr,
        /// `-4` or `-6`.
        flag: &'static str,
    },
    #[error(
        "--source {address} is not an address of this machine: give one of its own \
         (`ip address` lists them)"
    )]
    SourceNotLocal {
        /// The `--source` address.
        address: IpAddr,
    },
    #[error(
        "--source {address} is a link-local address, which needs its link: give \
         --interface IFACE too"
    )]
    SourceNeedsInterface {
        /// The `--source` address.
        address: IpAddr,
    },
    #[error(
        "--source {address} cannot be used ({reason}): give one of this machine's own addresses"
    )]
    SourceUnusable {
        /// The `--source` address.
        address: IpAddr,
        /// What the kernel said.
        reason: String,
    },
    #[error(
        "--interface {name} is not a network interface of this machine: expected one of {known}"
    )]
    NoSuchInterface {
        /// The interface asked for (sanitized).
        name: String,
        /// This machine's interfaces.
        known: String,
    },
    #[error(
        "`{host}`: its zone `{zone}` is not a network interface of this machine: expected \
         one of {known}"
    )]
    NoSuchZone {
        /// The host as written (sanitized).
        host: String,
        /// The zone, after `%` (sanitized).
        zone: String,
        /// This machine's interfaces.
        known: String,
    },
    #[error(
        "`{host}` is a link-local address, which needs its interface: write {host}%IFACE \
         (e.g. {host}%eth0), or give --interface IFACE"
    )]
    LinkLocalWithoutZone {
        /// The host as written (sanitized).
        host: String,
    },
    #[error("`{host}` is on interface {zone}, but --interface is {interface}: drop one of them")]
    ZoneAndInterface {
        /// The host as written (sanitized).
        host: String,
        /// Its zone (sanitized).
        zone: String,
        /// The `--interface` (sanitized).
        interface: String,
    },
    /// An address of one family where only the other is knocked.
    #[error("`{host}` is an {actual} address, but {why} asks for {wanted} only: {fix}")]
    LiteralFamily {
        /// The host as written (sanitized).
        host: String,
        /// "IPv4" or "IPv6": what it is.
        actual: &'static str,
        /// The other: what is knocked.
        wanted: &'static str,
        /// What asked for it: `-4`, `-6`, `--source ADDR`, or the profile's `family`.
        why: String,
        /// What to change.
        fix: String,
    },
    #[error(
        "profile `{profile}` knocks one-time sequences, each good for one knock: \
         --every would repeat a used one; knock it without --every"
    )]
    EveryOneTime { profile: String },
    #[error(
        "profile `{profile}`: every sequence in {} is used: append new lines (the same \
         as the server's one_time_sequences file)",
        file.display()
    )]
    OneTimeUsedUp { profile: String, file: PathBuf },
    #[error(
        "profile `{profile}`: cannot read its one_time_sequences file {}: {error}",
        file.display()
    )]
    OneTimeUnreadable {
        profile: String,
        file: PathBuf,
        error: std::io::Error,
    },
    /// The secret file or variable of a time-based profile; `error` names it.
    #[error("profile `{profile}`: {error}")]
    Secret { profile: String, error: String },
    #[error("cannot find the home directory for the profiles file: give one with -c FILE")]
    NoHome,
    #[error(
        "there is no profiles file at {}: create one (see profiles.example.toml), \
         name one with -c FILE, or knock ad hoc with -p PORT HOST",
        path.display()
    )]
    NoProfilesFile { path: PathBuf },
    /// Another usage error of a subcommand, said in a sentence of its own.
    #[error("{0}")]
    Usage(String),
}

impl Request {
    /// How results are shown; `--color` auto asks the terminal and `NO_COLOR`.
    fn output(&self) -> Output {
        if self.json {
            Output::Json
        } else if self.quiet {
            Output::Quiet
        } else {
            Output::Human {
                verbose: self.verbose,
                color: self.color.unwrap_or_else(|| {
                    // https://no-color.org: a non-empty NO_COLOR turns colour off.
                    use std::io::IsTerminal as _;
                    std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }),
            }
        }
    }

    /// The settings the flags say, which beat every profile's.
    fn flags(&self) -> Overrides {
        Overrides {
            delay: self.delay,
            timeout: self.timeout,
            resolve_timeout: self.resolve_timeout,
            check: self.check,
            // A source address can only reach its own family.
            family: if self.ipv4 || self.source.is_some_and(|s| s.is_ipv4()) {
                Some(Family::Ipv4)
            } else if self.ipv6 || self.source.is_some_and(|s| s.is_ipv6()) {
                Some(Family::Ipv6)
            } else {
                None
            },
            mode: self.mode,
            ..Overrides::default()
        }
    }
}

impl Plan {
    /// The planner of `knockr [TARGET...]`, `--every` and `connect`.
    /// `profiles` gives the loaded profiles file ([`load_profiles`] at the
    /// edge, a parsed text in tests); it is called only when the words may
    /// name profiles, so ad-hoc knocks (`-p`) never read the file and a
    /// broken one never blocks them. Without `-p` the words are profiles,
    /// or, when the first is no profile and a knock follows it, the old
    /// tools' `HOST PORT...` (the C `knock`) or `ADDRESS PORT,PORT...` (the
    /// Go `knockr`). Asks the kernel only whether `--source` and
    /// `--interface` exist; the knocks themselves come from
    /// [`Plan::read_sequences`].
    pub(crate) fn new(
        request: &Request,
        profiles: impl FnOnce() -> Result<Profiles, PlanError>,
    ) -> Result<Plan, PlanError> {
        if let Some(source) = request.source
            && (request.ipv4 && source.is_ipv6() || request.ipv6 && source.is_ipv4())
        {
            return Err(PlanError::SourceFamily {
                address: source,
                flag: if request.ipv4 { "-4" } else { "-6" },
            });
        }
        let bind = Bind::new(request.source, request.interface.clone())?;
        let flags = request.flags();
        let targets = if !request.ports.is_empty() {
            if request.targets.is_empty() {
                return Err(PlanError::NoHost);
            }
            ad_hoc_targets(&request.targets, &request.ports, request, &flags, &bind)?
        } else {
            word_targets(request, profiles, &flags, &bind)?
        };
        for target in &targets {
            check_literal_family(target, request)?;
        }
        Ok(Plan::of(targets, request, bind))
    }

    /// The plan of `targets` as `request` says to knock them.
    fn of(targets: Vec<Target>, request: &Request, bind: Bind) -> Plan {
        Plan {
            targets,
            output: request.output(),
            conduct: Conduct {
                dry_run: request.dry_run,
                all_addresses: request.all_addresses,
                retry: request.retry,
                bind,
            },
        }
    }

    /// Each target's knocks if knocked at `now`: the fixed ones, the first
    /// unused line of a one-time sequences file, or the sequence a secret
    /// gives for the time step of `now`. The one step of knocking that reads
    /// those files (a secret again each time: `--every` picks up a changed one).
    pub(crate) fn read_sequences(&self, now: SystemTime) -> Result<Run<'_>, PlanError> {
        let knocks = self
            .targets
            .iter()
            .map(|target| read_knocks(target, now))
            .collect::<Result<_, _>>()?;
        Ok(Run { plan: self, knocks })
    }
}

/// The planner every subcommand that knocks a profile, or needs its knock,
/// goes through (`knockr PROFILE...`, `--every`, `connect`, `routeros rules`):
/// every host of the profiles `names` (groups expanded, each (profile, host)
/// once, in order), with `flags` over each profile's settings.
pub(crate) fn profile_targets(
    profiles: &Profiles,
    names: &[String],
    flags: &Overrides,
    bind: &Bind,
) -> Result<Vec<Target>, PlanError> {
    profiles
        .members(names)?
        .into_iter()
        .map(|member| {
            Ok(Target {
                settings: settle(flags.clone().or(&member.settings)),
                literal: literal(&member.host, bind)?,
                profile: Some(member.profile),
                host: member.host,
                sequence: member.sequence,
            })
        })
        .collect()
}

/// The targets of `knockr WORD...` without `-p`: profiles, or the old
/// tools' ad-hoc knock of the first word when it is no profile and knocks
/// follow it. A machine without a profiles file has no profiles.
fn word_targets(
    request: &Request,
    profiles: impl FnOnce() -> Result<Profiles, PlanError>,
    flags: &Overrides,
    bind: &Bind,
) -> Result<Vec<Target>, PlanError> {
    let Some((first, rest)) = request.targets.split_first() else {
        return Err(PlanError::NothingToKnock);
    };
    let old_tools = || ad_hoc_targets(std::slice::from_ref(first), rest, request, flags, bind);
    let file = match profiles() {
        Ok(file) => file,
        Err(PlanError::NoProfilesFile { .. } | PlanError::NoHome)
            if old_tools_form(rest, request.network) =>
        {
            return old_tools();
        }
        Err(missing @ (PlanError::NoProfilesFile { .. } | PlanError::NoHome)) => {
            return Err(not_a_profile(first, None).unwrap_or(missing));
        }
        Err(err) => return Err(err),
    };
    if !file.profiles.contains_key(first) && old_tools_form(rest, request.network) {
        return old_tools();
    }
    // The first word that is no profile: a hint if it looks like something
    // else, else the profiles file's own message naming the known ones.
    let unknown = request
        .targets
        .iter()
        .position(|word| !file.profiles.contains_key(word));
    if let Some(at) = unknown {
        let previous = at.checked_sub(1).map(|p| request.targets[p].as_str());
        if let Some(hint) = not_a_profile(&request.targets[at], previous) {
            return Err(hint);
        }
    }
    let targets = profile_targets(&file, &request.targets, flags, bind)?;
    if request.every.is_some()
        && let Some(target) = targets
            .iter()
            .find(|t| matches!(t.sequence, Sequence::OneTime(_)))
    {
        return Err(PlanError::EveryOneTime {
            profile: target.profile.clone().unwrap_or_default(),
        });
    }
    Ok(targets)
}

/// The targets of an ad-hoc knock: each of `hosts` once, in order, knocking
/// `specs` (bare ports in `request.network`) with the flags' settings.
fn ad_hoc_targets(
    hosts: &[String],
    specs: &[String],
    request: &Request,
    flags: &Overrides,
    bind: &Bind,
) -> Result<Vec<Target>, PlanError> {
    let from_flag = !request.ports.is_empty();
    let mut sequence = Vec::new();
    for spec in specs {
        let knocks = if from_flag {
            knock::parse_knock(spec, request.network).map(|k| vec![k])
        } else {
            knock::parse_list(spec, request.network)
        };
        match knocks {
            Ok(knocks) => sequence.extend(knocks),
            Err(error) if from_flag => {
                return Err(PlanError::BadPort {
                    spec: spec.clone(),
                    error,
                });
            }
            Err(error) => {
                return Err(PlanError::BadKnockAfterHost {
                    host: sanitize(&hosts[0]).into_owned(),
                    word: sanitize(spec).into_owned(),
                    error,
                });
            }
        }
    }
    let settings = settle(flags.clone());
    let mut seen: Vec<&String> = Vec::new();
    let mut targets = Vec::new();
    for host in hosts {
        if seen.contains(&host) {
            continue;
        }
        seen.push(host);
        targets.push(Target {
            profile: None,
            host: host.clone(),
            literal: literal(host, bind)?,
            sequence: Sequence::Fixed(sequence.clone()),
            settings: settings.clone(),
        });
    }
    Ok(targets)
}

/// Whether `knockr FIRST REST...` is the old tools' form, given that FIRST
/// is no profile (the caller asks): a knock follows it. Every word after it
/// must then be one, which [`ad_hoc_targets`] says when one is not.
fn old_tools_form(rest: &[String], network: Proto) -> bool {
    rest.iter()
        .any(|word| knock::parse_list(word, network).is_ok())
}

/// What to say about `word`, named where a profile goes but none: a knock
/// after a profile, a host or a host near miss gets its hint; `None`: just
/// an unknown profile, which the profiles file's message lists the known
/// ones for.
fn not_a_profile(word: &str, previous: Option<&str>) -> Option<PlanError> {
    let shown = || sanitize(word).into_owned();
    if let Some(profile) = previous
        && knock::parse_list(word, Proto::Tcp).is_ok()
    {
        return Some(PlanError::PortAfterProfile {
            profile: sanitize(profile).into_owned(),
            word: shown(),
        });
    }
    match host::parse(word) {
        Ok(Host::Address { .. }) => Some(PlanError::HostWithoutPorts { word: shown() }),
        Ok(Host::Name(name)) if name.trim_end_matches('.').contains('.') => {
            Some(PlanError::HostWithoutPorts { word: shown() })
        }
        Ok(Host::Name(_)) | Err(HostError::NotAHost | HostError::BareNumber) => None,
        Err(error) => Some(PlanError::Host {
            word: shown(),
            error,
        }),
    }
}

/// Where `host`'s knocks go when it is written as an address: its zone
/// found among this machine's interfaces (it must agree with `--interface`),
/// a link-local address refused without either. `None`: a name.
fn literal(host: &str, bind: &Bind) -> Result<Option<Destination>, PlanError> {
    let shown = || sanitize(host).into_owned();
    let (ip, zone) = match host::parse(host) {
        Ok(Host::Name(_)) => return Ok(None),
        Ok(Host::Address { ip, zone }) => (ip, zone),
        Err(error) => {
            return Err(PlanError::Host {
                word: shown(),
                error,
            });
        }
    };
    let scope_id = match zone {
        None if is_link_local(ip) => bind
            .index
            .ok_or_else(|| PlanError::LinkLocalWithoutZone { host: shown() })?,
        None => 0,
        Some(zone) => {
            let index = zone
                .parse::<u32>()
                .ok()
                .or_else(|| local::interface_index(&zone))
                .ok_or_else(|| PlanError::NoSuchZone {
                    host: shown(),
                    zone: sanitize(&zone).into_owned(),
                    known: known_interfaces(),
                })?;
            if let (Some(bound), Some(interface)) = (bind.index, bind.interface())
                && bound != index
            {
                return Err(PlanError::ZoneAndInterface {
                    host: shown(),
                    zone: sanitize(&zone).into_owned(),
                    interface: sanitize(interface).into_owned(),
                });
            }
            index
        }
    };
    Ok(Some(Destination { ip, scope_id }))
}

/// Refuses a target written as an address of the family its settings do
/// not knock, saying what asked for the other: the flags, else its profile.
fn check_literal_family(target: &Target, request: &Request) -> Result<(), PlanError> {
    let Some(literal) = target.literal else {
        return Ok(());
    };
    let (actual, wanted) = match (literal.ip, target.settings.family) {
        (IpAddr::V4(_), Family::Ipv6) => ("IPv4", "IPv6"),
        (IpAddr::V6(_), Family::Ipv4) => ("IPv6", "IPv4"),
        _ => return Ok(()),
    };
    let flag = if request.ipv4 {
        Some("-4".to_string())
    } else if request.ipv6 {
        Some("-6".to_string())
    } else {
        request.source.map(|s| format!("--source {s}"))
    };
    let (why, fix) = match (flag, &target.profile) {
        (Some(flag), _) => (
            flag.clone(),
            format!("drop {flag}, or give the host's {wanted} address"),
        ),
        (None, profile) => (
            format!(
                "family = \"{}\" in profile `{}`",
                wanted.to_lowercase(),
                sanitize(profile.as_deref().unwrap_or_default())
            ),
            format!("write the host's {wanted} address there, or another family"),
        ),
    };
    Err(PlanError::LiteralFamily {
        host: sanitize(&target.host).into_owned(),
        actual,
        wanted,
        why,
        fix,
    })
}

/// A host word refused on the command line, said as one sentence: what it
/// is, and what to write instead.
fn host_message(word: &str, error: &HostError) -> String {
    let fix = match error {
        HostError::WithPort { host, port } => {
            let (host, port) = (sanitize(host), sanitize(port));
            format!(
                ": write the host alone and the port apart: knockr --check {port} {host} knocks \
                 {host}, then checks that port {port} opens"
            )
        }
        HostError::WithUser { host, .. } => {
            format!(
                ": knockr knocks hosts, ssh logs in: write `{}`",
                sanitize(host)
            )
        }
        HostError::BareNumber => ": write the host first and its ports after it (knockr HOST \
                                  PORT...), or give the ports with -p"
            .to_string(),
        HostError::NotAHost => ": expected a name such as gw.example.net or an address such \
                                as 192.0.2.1 or 2001:db8::1"
            .to_string(),
        HostError::BadIpv4 | HostError::BadZone => String::new(),
    };
    format!("`{word}` {error}{fix}")
}

/// What `target` sends if knocked at `now`; reads its one-time file or secret.
fn read_knocks(target: &Target, now: SystemTime) -> Result<Knocks, PlanError> {
    // Only profiles have one-time and time-based sequences, so a name is there.
    let profile = target.profile.as_deref().unwrap_or_default();
    match &target.sequence {
        Sequence::Fixed(knocks) => Ok(Knocks {
            sequence: knocks.clone(),
            one_time_line: None,
        }),
        Sequence::OneTime(file) => match crate::config::onetime::current(file, |_| None) {
            Ok(Some((index, sequence))) => Ok(Knocks {
                sequence,
                one_time_line: Some(OneTimeLine {
                    file: file.clone(),
                    index,
                }),
            }),
            Ok(None) => Err(PlanError::OneTimeUsedUp {
                profile: profile.to_string(),
                file: file.clone(),
            }),
            Err(error) => Err(PlanError::OneTimeUnreadable {
                profile: profile.to_string(),
                file: file.clone(),
                error,
            }),
        },
        Sequence::Otp(otp) => {
            let reader = crate::config::account::Account::current();
            let secret =
                crate::config::secret::load_secret(&otp.secret, &reader).map_err(|error| {
                    PlanError::Secret {
                        profile: profile.to_string(),
                        error,
                    }
                })?;
            Ok(Knocks {
                sequence: time_based(otp, &secret, now),
                one_time_line: None,
            })
        }
    }
}

/// The time-based knocks of `otp` for the time step `now` falls in.
fn time_based(otp: &OtpSequence, secret: &Secret, now: SystemTime) -> Vec<Knock> {
    let unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    otp.spec
        .sequence(secret.bytes(), &otp.door, otp.spec.step_of(unix))
}

/// Marks used each one-time line whose knocks all went out to at least one
/// address of its target (a dry run sends none, so marks none). A line that
/// was not sent stays unused: the server is still waiting for it. Returns the
/// lines that could not be marked.
pub(crate) fn spend_one_time_lines(
    run: &Run,
    sent_in_full: impl Fn(usize) -> bool,
) -> Vec<Unmarked> {
    knocked_lines(run, sent_in_full)
        .into_iter()
        .filter_map(|line| {
            let error = crate::config::onetime::consume(&line.file, line.index).err()?;
            Some(Unmarked {
                line: line.clone(),
                error,
            })
        })
        .collect()
}

/// A one-time line that was knocked but could not be marked used: the run
/// fails (exit 1), since the next knock would repeat it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the one-time sequence on line {} of {} was knocked but cannot be marked used \
     ({error}): put a # at the start of that line, or the next knock repeats it",
    line.index + 1,
    line.file.display()
)]
pub(crate) struct Unmarked {
    /// The line knocked.
    pub(crate) line: OneTimeLine,
    /// Why it could not be rewritten.
    pub(crate) error: std::io::Error,
}

/// The one-time lines of `run` that a target sent in full to one of its
/// addresses, each once (hosts of one profile share a line), as
/// `sent_in_full(target index)` says (the report knows): a report is tied to
/// its target by the target's index, never by names that could repeat.
fn knocked_lines<'r>(run: &'r Run, sent_in_full: impl Fn(usize) -> bool) -> Vec<&'r OneTimeLine> {
    let mut knocked: Vec<&OneTimeLine> = Vec::new();
    for (index, (_, knocks)) in run.targets().enumerate() {
        let Some(line) = &knocks.one_time_line else {
            continue;
        };
        if sent_in_full(index) && !knocked.contains(&line) {
            knocked.push(line);
        }
    }
    knocked
}

/// Loads the profiles file named by `-c`/`$KNOCKR_CONFIG`, else the default one.
pub(crate) fn load_profiles(config: Option<PathBuf>) -> Result<Profiles, PlanError> {
    match config {
        Some(path) => Ok(Profiles::load(&path)?),
        None => {
            let path = config::default_path().ok_or(PlanError::NoHome)?;
            if !path.exists() {
                return Err(PlanError::NoProfilesFile { path });
            }
            Ok(Profiles::load(&path)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::report::Report;
    use crate::config::profiles::Profile;
    use crate::core::knock::Proto;

    /// The profiles loader of an ad-hoc knock, which must never call it.
    fn unread() -> Result<Profiles, PlanError> {
        panic!("an ad-hoc knock read the profiles file")
    }

    #[test]
    fn flags_beat_profile_beats_defaults_beats_builtin() {
        let defaults = Overrides {
            delay: Some(Duration::from_millis(1)),
            timeout: Some(Duration::from_millis(2)),
            check: Some(22),
            ..Default::default()
        };
        let profile = Overrides {
            delay: Some(Duration::from_millis(10)),
            ..Default::default()
        };
        let flags = Overrides {
            check: Some(2222),
            ..Default::default()
        };
        let settings = settle(flags.or(&profile.or(&defaults)));
        assert_eq!(settings.delay, Duration::from_millis(10));
        assert_eq!(settings.timeout, Duration::from_millis(2));
        assert_eq!(settings.check.map(|c| c.port), Some(2222));
        assert_eq!(
            settings.check.map(|c| c.timeout),
            Some(DEFAULT_CHECK_TIMEOUT)
        );
        assert_eq!(settings.mode, Mode::Syn);
        assert_eq!(settings.udp_payload, vec![0]);
    }

    #[test]
    fn ad_hoc_ports_take_the_network_default_and_hosts_are_deduplicated() {
        let args = Request {
            targets: vec!["a".into(), "b".into(), "a".into()],
            ports: vec!["7000".into(), "8000:tcp".into()],
            network: Proto::Udp,
            ..Default::default()
        };
        let plan = Plan::new(&args, unread).unwrap();
        assert_eq!(plan.targets.len(), 2);
        assert_eq!(
            plan.targets[0].sequence,
            Sequence::Fixed(vec![
                Knock {
                    port: 7000,
                    proto: Proto::Udp
                },
                Knock {
                    port: 8000,
                    proto: Proto::Tcp
                }
            ])
        );
        assert_eq!(plan.targets[1].host, "b");
        assert_eq!(plan.targets[0].profile, None);
    }

    #[test]
    fn bad_ad_hoc_port_is_a_usage_error_naming_the_value() {
        let args = Request {
            targets: vec!["a".into()],
            ports: vec!["70000".into()],
            ..Default::default()
        };
        let err = Plan::new(&args, unread).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid value \"70000\" for -p/--port: port 70000 is out of range: expected 1..=65535"
        );
    }

    /// A report of `target` whose knocks were sent (`sent` of them) or not.
    fn reported(target: usize, sent: &[bool]) -> crate::client::report::TargetReport {
        let plan_target = Target {
            profile: Some("p".into()),
            host: "h".into(),
            literal: None,
            sequence: Sequence::Fixed(Vec::new()),
            settings: settle(Overrides::default()),
        };
        let knocks: Vec<Knock> = sent
            .iter()
            .map(|_| Knock {
                port: 1,
                proto: Proto::Udp,
            })
            .collect();
        let mut report =
            crate::client::report::TargetReport::new(target, &plan_target, &knocks, None);
        for (knock, sent) in report.knocks.iter_mut().zip(sent) {
            knock.sent = *sent;
        }
        report
    }

    #[test]
    fn a_one_time_line_is_spent_once_and_only_by_its_own_target_sending_it_all() {
        let line = |file: &str| OneTimeLine {
            file: PathBuf::from(file),
            index: 3,
        };
        let target = |profile: &str, host: &str| Target {
            profile: Some(profile.into()),
            host: host.into(),
            literal: None,
            sequence: Sequence::OneTime(PathBuf::from("a")),
            settings: settle(Overrides::default()),
        };
        // Two hosts of one profile share line 4 of `a`; a third target of
        // another profile has line 4 of `b`.
        let plan = Plan {
            targets: vec![
                target("once", "h1"),
                target("once", "h2"),
                target("other", "h3"),
            ],
            output: Output::Quiet,
            conduct: Conduct::default(),
        };
        let knocks = |file: &str| Knocks {
            sequence: vec![Knock {
                port: 1,
                proto: Proto::Udp,
            }],
            one_time_line: Some(line(file)),
        };
        let run = Run {
            plan: &plan,
            knocks: vec![knocks("a"), knocks("a"), knocks("b")],
        };
        let report = |targets| Report {
            ok: true,
            dry_run: false,
            targets,
        };
        // h1 sent all, h2 too: `a` is spent once; h3's second address sent
        // only part, its first nothing: `b` stays unused.
        let both = report(vec![
            reported(0, &[true]),
            reported(1, &[true]),
            reported(2, &[false]),
            reported(2, &[true, false]),
        ]);
        assert_eq!(knocked_lines(&run, |t| both.sent_in_full(t)), [&line("a")]);
        // Only the third target sent: its own line, not the first two's.
        let third = report(vec![
            reported(0, &[false]),
            reported(1, &[true, false]),
            reported(2, &[true]),
        ]);
        assert_eq!(knocked_lines(&run, |t| third.sent_in_full(t)), [&line("b")]);
        // A dry run sends nothing, so spends nothing.
        let dry = report(vec![
            reported(0, &[false]),
            reported(1, &[false]),
            reported(2, &[false]),
        ]);
        assert!(knocked_lines(&run, |t| dry.sent_in_full(t)).is_empty());
    }

    #[test]
    fn a_knocked_line_that_cannot_be_marked_says_which_and_what_to_do() {
        let plan = Plan {
            targets: vec![Target {
                profile: Some("once".into()),
                host: "h".into(),
                literal: None,
                sequence: Sequence::OneTime(PathBuf::from("/nonexistent/list")),
                settings: settle(Overrides::default()),
            }],
            output: Output::Quiet,
            conduct: Conduct::default(),
        };
        let run = Run {
            plan: &plan,
            knocks: vec![Knocks {
                sequence: vec![Knock {
                    port: 1,
                    proto: Proto::Udp,
                }],
                one_time_line: Some(OneTimeLine {
                    file: PathBuf::from("/nonexistent/list"),
                    index: 1,
                }),
            }],
        };
        let report = Report {
            ok: true,
            dry_run: false,
            targets: vec![reported(0, &[true])],
        };
        let unmarked: Vec<String> = spend_one_time_lines(&run, |t| report.sent_in_full(t))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            unmarked,
            [
                "the one-time sequence on line 2 of /nonexistent/list was knocked but cannot be \
              marked used (No such file or directory (os error 2)): put a # at the start of \
              that line, or the next knock repeats it"
            ]
        );
    }

    /// A profiles file as text: planning needs it loaded, never read.
    fn profiles(text: &str) -> Profiles {
        Profiles::parse(std::path::Path::new("profiles.toml"), text).unwrap()
    }

    const FILE: &str = r#"
        [defaults]
        delay = "1ms"
        timeout = "2ms"
        check = 22
        [profiles.home]
        hosts = ["h1", "h2"]
        sequence = ["7000", "8000:udp"]
        delay = "10ms"
        [profiles.once]
        host = "h3"
        one_time_sequences = "/nonexistent/one-time"
        [profiles.rolling]
        host = "h4"
        secret_env = "KNOCKR_TEST_UNSET_SECRET"
        otp_step = "30s"
        [profiles.all]
        include = ["home", "once", "home"]
    "#;

    fn knock_profiles(targets: &[&str]) -> Request {
        Request {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn every_subcommand_gets_flags_over_the_profile_over_defaults_over_builtins() {
        let file = profiles(FILE);
        let flags = Overrides {
            timeout: Some(Duration::from_millis(5)),
            ..Default::default()
        };
        let targets = profile_targets(&file, &["all".into()], &flags, &Bind::default()).unwrap();
        let hosts: Vec<(&str, &str)> = targets
            .iter()
            .map(|t| (t.profile.as_deref().unwrap(), t.host.as_str()))
            .collect();
        assert_eq!(hosts, [("home", "h1"), ("home", "h2"), ("once", "h3")]);
        let home = &targets[0].settings;
        assert_eq!(home.delay, Duration::from_millis(10), "the profile's");
        assert_eq!(home.timeout, Duration::from_millis(5), "the flag's");
        assert_eq!(home.check.map(|c| c.port), Some(22), "[defaults]'");
        assert_eq!(
            home.check.map(|c| c.retries),
            Some(DEFAULT_CHECK_RETRIES),
            "built in"
        );
        assert_eq!(targets[2].settings.delay, Duration::from_millis(1));
        // The knock command plans the same targets from the same rules.
        let request = Request {
            timeout: Some(Duration::from_millis(5)),
            ..knock_profiles(&["all"])
        };
        let plan = Plan::new(&request, || Ok(file.clone())).unwrap();
        assert_eq!(plan.targets, targets);
    }

    /// `--resolve-timeout` is a flag like `-t`: over the profile, over
    /// `[defaults]`, over the built-in 5 s, for profiles and ad-hoc knocks.
    #[test]
    fn the_resolve_timeout_flag_beats_the_profile_the_defaults_and_the_builtin() {
        let file = profiles(
            r#"
            [defaults]
            resolve_timeout = "20s"
            [profiles.slow]
            host = "h1"
            sequence = ["7000"]
            resolve_timeout = "50s"
            [profiles.plain]
            host = "h2"
            sequence = ["7000"]
            "#,
        );
        let plan = |request: Request| {
            Plan::new(&request, || Ok(file.clone()))
                .unwrap()
                .targets
                .iter()
                .map(|t| t.settings.resolve_timeout)
                .collect::<Vec<_>>()
        };
        let (second, twenty, fifty) = (
            Duration::from_secs(1),
            Duration::from_secs(20),
            Duration::from_secs(50),
        );
        assert_eq!(plan(knock_profiles(&["slow", "plain"])), [fifty, twenty]);
        let flag = |request: Request| Request {
            resolve_timeout: Some(second),
            ..request
        };
        assert_eq!(
            plan(flag(knock_profiles(&["slow", "plain"]))),
            [second, second]
        );
        let ad_hoc = Request {
            targets: vec!["h3".into()],
            ports: vec!["7000".into()],
            ..Default::default()
        };
        assert_eq!(plan(ad_hoc.clone()), [DEFAULT_RESOLVE_TIMEOUT]);
        assert_eq!(plan(flag(ad_hoc)), [second]);
    }

    #[test]
    fn nothing_to_knock_is_said_before_any_profiles_file_is_read() {
        let err = Plan::new(&Request::default(), unread).unwrap_err();
        assert!(matches!(err, PlanError::NothingToKnock), "{err}");
        let ad_hoc = Request {
            ports: vec!["7000".into()],
            ..Default::default()
        };
        let err = Plan::new(&ad_hoc, unread).unwrap_err();
        assert!(matches!(err, PlanError::NoHost), "{err}");
    }

    #[test]
    fn every_is_refused_for_a_one_time_profile_without_reading_its_file() {
        let file = profiles(FILE);
        let request = Request {
            every: Some(Duration::from_secs(60)),
            ..knock_profiles(&["home", "once"])
        };
        let err = Plan::new(&request, || Ok(file.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "profile `once` knocks one-time sequences, each good for one knock: --every would \
             repeat a used one; knock it without --every"
        );
        // Without --every the plan is made; its file is read when the run starts.
        let plan = Plan::new(&knock_profiles(&["once"]), || Ok(file.clone())).unwrap();
        let err = plan.read_sequences(UNIX_EPOCH).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "profile `once`: cannot read its one_time_sequences file /nonexistent/one-time: "
            ),
            "{err}"
        );
    }

    #[test]
    fn a_source_address_picks_the_family_and_one_of_the_other_family_is_refused() {
        let ad_hoc = |source: &str, ipv4: bool| Request {
            targets: vec!["gw".into()],
            ports: vec!["7000".into()],
            source: Some(source.parse().unwrap()),
            ipv4,
            ..Default::default()
        };
        let plan = Plan::new(&ad_hoc("::1", false), unread).unwrap();
        assert_eq!(plan.targets[0].settings.family, Family::Ipv6);
        assert_eq!(plan.conduct.bind.source(), Some("::1".parse().unwrap()));
        let err = Plan::new(&ad_hoc("::1", true), unread).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--source ::1 is of the other address family than -4"
        );
    }

    /// An ad-hoc knock of `hosts` with `adjust` applied, planned.
    fn ad_hoc(hosts: &[&str], adjust: impl FnOnce(&mut Request)) -> Result<Plan, String> {
        let mut request = Request {
            targets: hosts.iter().map(|h| h.to_string()).collect(),
            ports: vec!["7000".into()],
            ..Default::default()
        };
        adjust(&mut request);
        Plan::new(&request, unread).map_err(|err| err.to_string())
    }

    /// Reproduced: `--source 192.0.2.9` and `--interface nope0` were tried
    /// on the first knock and failed it (exit 1, "cannot assign requested
    /// address", "no such device"); the planner now asks the kernel first.
    #[test]
    fn regression_a_source_or_interface_this_machine_lacks_failed_the_knock_instead_of_the_usage() {
        let err = ad_hoc(&["127.0.0.1"], |r| {
            r.source = Some("192.0.2.9".parse().unwrap())
        });
        assert_eq!(
            err.unwrap_err(),
            "--source 192.0.2.9 is not an address of this machine: give one of its own \
             (`ip address` lists them)"
        );
        let err = ad_hoc(&["127.0.0.1"], |r| r.interface = Some("nope0".into())).unwrap_err();
        assert!(
            err.starts_with(
                "--interface nope0 is not a network interface of this machine: expected one of "
            ) && err.contains("lo"),
            "{err}"
        );
        let plan = ad_hoc(&["127.0.0.1"], |r| {
            r.source = Some("127.0.0.1".parse().unwrap());
            r.interface = Some("lo".into());
        })
        .unwrap();
        assert_eq!(plan.conduct.bind.interface(), Some("lo"));
    }

    /// Reproduced: `-6 -p 7000 127.0.0.1` exited 1 after planning ("only
    /// IPv6 was asked for"); an address of the other family is a usage error.
    #[test]
    fn regression_an_address_of_the_other_family_than_asked_was_a_failed_target() {
        let err = ad_hoc(&["127.0.0.1"], |r| r.ipv6 = true).unwrap_err();
        assert_eq!(
            err,
            "`127.0.0.1` is an IPv4 address, but -6 asks for IPv6 only: drop -6, or give the \
             host's IPv6 address"
        );
        let err = ad_hoc(&["[::1]"], |r| r.ipv4 = true).unwrap_err();
        assert!(
            err.starts_with("`[::1]` is an IPv6 address, but -4 asks for IPv4 only"),
            "{err}"
        );
        let err = ad_hoc(&["::1"], |r| r.source = Some("127.0.0.1".parse().unwrap())).unwrap_err();
        assert!(
            err.contains("but --source 127.0.0.1 asks for IPv4 only"),
            "{err}"
        );
        let file =
            profiles("[profiles.v6]\nhost = \"192.0.2.1\"\nsequence = [1]\nfamily = \"ipv6\"\n");
        let err = Plan::new(&knock_profiles(&["v6"]), || Ok(file.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`192.0.2.1` is an IPv4 address, but family = \"ipv6\" in profile `v6` asks for \
             IPv6 only: write the host's IPv6 address there, or another family"
        );
    }

    /// Reproduced: `host:22`, `user@host` and `[2001:db8::1]:22` were looked
    /// up as names and failed (exit 1, "protocol error: Label contains
    /// invalid characters: Err(Errors)").
    #[test]
    fn regression_ssh_spellings_of_a_host_were_looked_up_as_names() {
        assert_eq!(
            ad_hoc(&["gw:22"], |_| {}).unwrap_err(),
            "`gw:22` is a host and a port: write the host alone and the port apart: knockr \
             --check 22 gw knocks gw, then checks that port 22 opens"
        );
        assert!(
            ad_hoc(&["[2001:db8::1]:22"], |_| {})
                .unwrap_err()
                .contains("knockr --check 22 2001:db8::1 knocks 2001:db8::1")
        );
        assert_eq!(
            ad_hoc(&["root@gw"], |_| {}).unwrap_err(),
            "`root@gw` names a user: knockr knocks hosts, ssh logs in: write `gw`"
        );
        assert!(
            ad_hoc(&["8000"], |_| {})
                .unwrap_err()
                .contains("is a bare number, not a host")
        );
        assert!(
            ad_hoc(&["a b"], |_| {})
                .unwrap_err()
                .contains("is not a host name: expected a name")
        );
    }

    #[test]
    fn addresses_are_read_as_getaddrinfo_reads_them_and_zones_name_interfaces() {
        let plan = ad_hoc(&["127.1", "gw.example.net"], |_| {}).unwrap();
        assert_eq!(
            plan.targets[0].literal,
            Some(Destination::from("127.0.0.1".parse::<IpAddr>().unwrap()))
        );
        assert_eq!(plan.targets[0].host, "127.1", "reports show it as written");
        assert_eq!(plan.targets[1].literal, None, "a name is looked up");
        let lo = local::interface_index("lo").unwrap();
        let plan = ad_hoc(&["fe80::1%lo"], |_| {}).unwrap();
        assert_eq!(plan.targets[0].literal.map(|d| d.scope_id), Some(lo));
        let plan = ad_hoc(&["fe80::1"], |r| r.interface = Some("lo".into())).unwrap();
        assert_eq!(plan.targets[0].literal.map(|d| d.scope_id), Some(lo));
        let err = ad_hoc(&["fe80::1"], |_| {}).unwrap_err();
        assert!(
            err.starts_with("`fe80::1` is a link-local address, which needs its interface"),
            "{err}"
        );
        let err = ad_hoc(&["fe80::1%nope0"], |_| {}).unwrap_err();
        assert!(
            err.starts_with("`fe80::1%nope0`: its zone `nope0` is not a network interface"),
            "{err}"
        );
    }

    /// The profiles loader of a machine without a profiles file.
    fn no_file() -> Result<Profiles, PlanError> {
        Err(PlanError::NoProfilesFile {
            path: PathBuf::from("/home/me/.config/knockr/profiles.toml"),
        })
    }

    #[test]
    fn the_old_tools_forms_knock_a_host_unless_the_first_word_is_a_profile() {
        let words = |words: &[&str]| Request {
            targets: words.iter().map(|w| w.to_string()).collect(),
            network: Proto::Udp,
            ..Default::default()
        };
        let sequence = |plan: &Plan| -> Vec<String> {
            match &plan.targets[0].sequence {
                Sequence::Fixed(knocks) => knocks.iter().map(ToString::to_string).collect(),
                other => panic!("{other:?}"),
            }
        };
        // The C knock's HOST PORT[:PROTO]..., bare ports in -n/-u's protocol.
        let plan = Plan::new(&words(&["127.0.0.1", "7000", "8000:tcp"]), no_file).unwrap();
        assert_eq!(plan.targets[0].profile, None);
        assert_eq!(sequence(&plan), ["7000:udp", "8000:tcp"]);
        // The Go knockr's ADDRESS PORT,PORT,...
        let plan = Plan::new(&words(&["gw.example.net", "7000,8000,9000"]), no_file).unwrap();
        assert_eq!(plan.targets[0].host, "gw.example.net");
        assert_eq!(sequence(&plan), ["7000:udp", "8000:udp", "9000:udp"]);
        // With a profiles file, a word that is no profile is still a host.
        let file = profiles(FILE);
        let plan = Plan::new(&words(&["gw", "7000"]), || Ok(file.clone())).unwrap();
        assert_eq!(plan.targets[0].host, "gw");
        // A profile name always wins.
        let err = Plan::new(&words(&["home", "22"]), || Ok(file.clone())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`22` after the profile `home` is a knock, not a profile"),
            "{err}"
        );
        let err = Plan::new(&words(&["gw", "7000", "nope"]), no_file).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "`nope` after the host `gw` is not a knock (port \"nope\" is not a number"
            ),
            "{err}"
        );
        // A host without ports, and a word that is neither, get hints.
        let err = Plan::new(&words(&["gw.example.net"]), || Ok(file.clone())).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`gw.example.net` is not a profile but a host"),
            "{err}"
        );
        let err = Plan::new(&words(&["home", "gw:22"]), || Ok(file.clone())).unwrap_err();
        assert!(
            err.to_string().starts_with("`gw:22` is a host and a port"),
            "{err}"
        );
        let err = Plan::new(&words(&["homer"]), || Ok(file.clone())).unwrap_err();
        assert!(
            err.to_string()
                .contains("there is no profile named `homer`: expected one of `home`"),
            "{err}"
        );
        let err = Plan::new(&words(&["homer"]), no_file).unwrap_err();
        assert!(matches!(err, PlanError::NoProfilesFile { .. }), "{err}");
        // The old forms are planned as -p is: -6 refuses an IPv4 host.
        let v6 = Request {
            ipv6: true,
            ..words(&["127.0.0.1", "7000"])
        };
        let err = Plan::new(&v6, no_file).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`127.0.0.1` is an IPv4 address, but -6"),
            "{err}"
        );
    }

    #[test]
    fn fixed_sequences_are_read_without_a_file_and_keep_their_order() {
        let file = profiles(FILE);
        let plan = Plan::new(&knock_profiles(&["home"]), || Ok(file.clone())).unwrap();
        let run = plan.read_sequences(UNIX_EPOCH).unwrap();
        let knocks: Vec<&Knocks> = run.targets().map(|(_, k)| k).collect();
        assert_eq!(knocks.len(), 2);
        assert_eq!(knocks[0].sequence.len(), 2);
        assert_eq!(knocks[0].sequence[1].to_string(), "8000:udp");
        assert_eq!(knocks[0].one_time_line, None);
    }

    /// `--every` knocks each round the sequence of that round's step; the
    /// step must come from the time given, in seconds of the step length.
    #[test]
    fn time_based_knocks_are_those_of_the_step_the_given_time_falls_in() {
        let file = profiles(FILE);
        let Some(Profile::Hosts {
            sequence: Sequence::Otp(otp),
            ..
        }) = file.profiles.get("rolling")
        else {
            panic!("`rolling` is time-based")
        };
        let secret = Secret::new(b"12345678901234567890".to_vec());
        let at = |seconds: u64| time_based(otp, &secret, UNIX_EPOCH + Duration::from_secs(seconds));
        let of_step = |step: u64| otp.spec.sequence(secret.bytes(), "rolling", step);
        assert_eq!(at(1_800_000_000), of_step(60_000_000));
        assert_eq!(at(1_800_000_029), of_step(60_000_000), "the same 30 s step");
        assert_eq!(at(1_800_000_030), of_step(60_000_001), "the next step");
        assert_ne!(at(1_800_000_029), at(1_800_000_030));
        // A secret that cannot be read stops the run before anything is sent.
        let plan = Plan::new(&knock_profiles(&["rolling"]), || Ok(file.clone())).unwrap();
        let err = plan.read_sequences(UNIX_EPOCH).unwrap_err();
        assert_eq!(
            err.to_string(),
            "profile `rolling`: the environment variable KNOCKR_TEST_UNSET_SECRET named by \
             secret_env is not set (or not UTF-8)"
        );
    }
}
