//! The profiles file: its schema, loading, and validation with `file:line:col`
//! messages. A profile names hosts and a knock sequence, or includes other
//! profiles to form a group.
//!
//! Reads one file and nothing else; it never resolves names or sends packets.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::config::value::{DurationKey, DurationValue, PayloadValue, PortRange, PortValue};
use crate::core::host::HostError;
use crate::core::knock::{Family, Knock, Mode, Proto};
use crate::core::otp::{OtpError, OtpSpec};

/// Where the profiles file is looked for when `-c` and `$KNOCKR_CONFIG` are absent.
pub fn default_path() -> Option<PathBuf> {
    use etcetera::BaseStrategy as _;
    let dirs = etcetera::choose_base_strategy().ok()?;
    Some(dirs.config_dir().join("knockr").join("profiles.toml"))
}

/// Settings as written in one place (flags, a profile, `[defaults]`); `None`
/// means "not said here".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub delay: Option<Duration>,
    pub timeout: Option<Duration>,
    pub check: Option<u16>,
    pub check_timeout: Option<Duration>,
    pub check_retries: Option<u32>,
    pub family: Option<Family>,
    pub resolve_timeout: Option<Duration>,
    pub udp_payload: Option<Vec<u8>>,
    pub mode: Option<Mode>,
}

impl Overrides {
    /// Each setting from `self`, else from `fallback`.
    pub fn or(self, fallback: &Overrides) -> Overrides {
        Overrides {
            delay: self.delay.or(fallback.delay),
            timeout: self.timeout.or(fallback.timeout),
            check: self.check.or(fallback.check),
            check_timeout: self.check_timeout.or(fallback.check_timeout),
            check_retries: self.check_retries.or(fallback.check_retries),
            family: self.family.or(fallback.family),
            resolve_timeout: self.resolve_timeout.or(fallback.resolve_timeout),
            udp_payload: self.udp_payload.or_else(|| fallback.udp_payload.clone()),
            mode: self.mode.or(fallback.mode),
        }
    }
}

/// A loaded, validated profiles file.
#[derive(Debug, Clone)]
pub struct Profiles {
    /// The file it came from, for messages.
    pub path: PathBuf,
    /// `[defaults]`: settings every profile falls back to.
    pub defaults: Overrides,
    /// Profiles in file order.
    pub profiles: IndexMap<String, Profile>,
}

/// One `[profiles.NAME]` table.
#[derive(Debug, Clone)]
pub enum Profile {
    /// Hosts knocked with one sequence.
    Hosts {
        hosts: Vec<String>,
        sequence: Sequence,
        settings: Overrides,
    },
    /// A group: the listed profiles, knocked together.
    Group { include: Vec<String> },
}

/// What a profile knocks.
#[derive(Debug, Clone, PartialEq)]
pub enum Sequence {
    /// The same knocks every time.
    Fixed(Vec<Knock>),
    /// Knocks derived from a secret and the time (docs/otp-sequences.md).
    Otp(Box<OtpSequence>),
    /// The first unused line of a one-time sequences file, in the C knockd's
    /// format (see [`crate::config::onetime`]); marked used once knocked.
    OneTime(PathBuf),
}

/// A time-based sequence: where the secret is and how sequences look.
#[derive(Debug, Clone, PartialEq)]
pub struct OtpSequence {
    pub secret: crate::core::secret::SecretSource,
    /// The server door's name, part of the derivation.
    pub door: String,
    pub spec: OtpSpec,
}

/// One host of one profile, as the client will knock it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub profile: String,
    pub host: String,
    pub sequence: Sequence,
    /// The profile's settings already merged over `[defaults]`.
    pub settings: Overrides,
}

/// A profiles file that cannot be used; the message is one sentence that names
/// the file, the position when there is one, the value and what is accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based line and column of the offending value, when known.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.path.display(), self.message)
            }
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl Profiles {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Profiles, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            path: path.to_path_buf(),
            position: None,
            message: format!("cannot read the profiles file: {err}"),
        })?;
        Profiles::parse(path, &text)
    }

    /// Validates `text` as if read from `path` (which only appears in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Profiles, ConfigError> {
        let at = |span: Option<Range<usize>>, message: String| ConfigError {
            path: path.to_path_buf(),
            position: span.map(|span| line_col(text, span.start)),
            message,
        };
        let raw: RawFile =
            toml::from_str(text).map_err(|err| at(err.span(), first_line(err.message())))?;

        let defaults = match raw.defaults {
            None => Overrides::default(),
            Some(defaults) => {
                if let Some((key, span)) = defaults.profile_only_keys().into_iter().next() {
                    return Err(at(
                        Some(span),
                        format!(
                            "`{key}` cannot be set in [defaults]: defaults hold only delay, timeout, check, \
                             check_timeout, check_retries, family, resolve_timeout, udp_payload and mode"
                        ),
                    ));
                }
                defaults
                    .overrides()
                    .map_err(|(span, err)| at(Some(span), err))?
            }
        };

        let mut profiles = IndexMap::new();
        // Where each include entry was written, for messages about it.
        let mut include_spans: IndexMap<String, Vec<Range<usize>>> = IndexMap::new();
        for (name, raw) in raw.profiles {
            let (name, name_span) = (name.get_ref().clone(), name.span());
            let profile = if let Some(include) = raw.include.clone() {
                if let Some((key, span)) = raw
                    .profile_only_keys()
                    .into_iter()
                    .find(|(k, _)| *k != "include")
                    .or_else(|| raw.setting_keys().into_iter().next())
                {
                    return Err(at(
                        Some(span),
                        format!(
                            "profile `{name}` includes other profiles, so `{key}` cannot be set here: \
                             a group holds only `include`; set it in the included profiles"
                        ),
                    ));
                }
                if include.get_ref().is_empty() {
                    return Err(at(
                        Some(include.span()),
                        format!(
                            "profile `{name}` has an empty include list: expected one or more profile names"
                        ),
                    ));
                }
                include_spans.insert(
                    name.clone(),
                    include.get_ref().iter().map(Spanned::span).collect(),
                );
                Profile::Group {
                    include: include
                        .into_inner()
                        .into_iter()
                        .map(|n| n.into_inner())
                        .collect(),
                }
            } else {
                let hosts = match (raw.host.clone(), raw.hosts.clone()) {
                    (Some(_), Some(hosts)) => {
                        return Err(at(
                            Some(hosts.span()),
                            format!(
                                "profile `{name}` sets both `host` and `hosts`: expected one of them"
                            ),
                        ));
                    }
                    (Some(host), None) => vec![host],
                    (None, Some(hosts)) if hosts.get_ref().is_empty() => {
                        return Err(at(
                            Some(hosts.span()),
                            format!(
                                "profile `{name}` has an empty `hosts` list: expected one or more host names or addresses"
                            ),
                        ));
                    }
                    (None, Some(hosts)) => hosts.into_inner(),
                    (None, None) => {
                        return Err(at(
                            Some(name_span),
                            format!(
                                "profile `{name}` has no `host`: expected `host = \"NAME\"`, \
                                 `hosts = [..]` or `include = [..]`"
                            ),
                        ));
                    }
                };
                for host in &hosts {
                    if let Err(err) = crate::core::host::parse(host.get_ref()) {
                        return Err(at(
                            Some(host.span()),
                            host_message(&name, host.get_ref(), &err),
                        ));
                    }
                }
                let secret = match (&raw.secret_file, &raw.secret_env) {
                    (Some(_), Some(env)) => {
                        return Err(at(
                            Some(env.span()),
                            format!(
                                "profile `{name}` sets both `secret_file` and `secret_env`: expected one of them"
                            ),
                        ));
                    }
                    (Some(file), None) => Some(crate::core::secret::SecretSource::File(
                        PathBuf::from(file.get_ref()),
                    )),
                    (None, Some(env)) => Some(crate::core::secret::SecretSource::Env(
                        env.get_ref().clone(),
                    )),
                    (None, None) => None,
                };
                let otp_door = raw.otp_door.as_ref().map(|d| ("otp_door", d.span()));
                let otp_key = otp_door.into_iter().chain(raw.otp_keys().written()).next();
                if let (None, Some((key, span))) = (&secret, otp_key) {
                    return Err(at(
                        Some(span),
                        format!(
                            "`{key}` in profile `{name}` needs `secret_file` or `secret_env`: it only shapes time-based sequences"
                        ),
                    ));
                }
                let sequence = match (&raw.sequence, &raw.one_time_sequences, secret) {
                    (None, Some(file), None) => Sequence::OneTime(PathBuf::from(file.get_ref())),
                    (_, Some(file), _) => {
                        return Err(at(
                            Some(file.span()),
                            format!(
                                "profile `{name}` has `one_time_sequences` and also a `sequence` or a secret: expected one of them"
                            ),
                        ));
                    }
                    (Some(seq), None, Some(_)) => {
                        return Err(at(
                            Some(seq.span()),
                            format!(
                                "profile `{name}` has both a `sequence` and a secret: a time-based profile derives its sequence, remove one"
                            ),
                        ));
                    }
                    (None, None, Some(secret)) => {
                        let owner = format!("profile `{name}`");
                        let spec = raw
                            .otp_keys()
                            .spec(&owner)
                            .map_err(|(span, err)| at(span.or(Some(name_span.clone())), err))?;
                        let door = raw
                            .otp_door
                            .as_ref()
                            .map_or_else(|| name.clone(), |d| d.get_ref().clone());
                        Sequence::Otp(Box::new(OtpSequence { secret, door, spec }))
                    }
                    (None, None, None) => {
                        return Err(at(
                            Some(name_span),
                            format!(
                                "profile `{name}` has no `sequence`: expected e.g. sequence = [\"7000\", \"8000:udp\"], secret_file for time-based sequences, or one_time_sequences"
                            ),
                        ));
                    }
                    (Some(seq), None, None) if seq.get_ref().is_empty() => {
                        return Err(at(
                            Some(seq.span()),
                            format!(
                                "profile `{name}` has an empty `sequence`: expected one or more \"PORT[:tcp|udp]\" or \"SIZE:icmp\""
                            ),
                        ));
                    }
                    (Some(seq), None, None) => Sequence::Fixed(seq.get_ref().clone()),
                };
                Profile::Hosts {
                    hosts: hosts.into_iter().map(|h| h.into_inner()).collect(),
                    sequence,
                    settings: raw.overrides().map_err(|(span, err)| at(Some(span), err))?,
                }
            };
            profiles.insert(name, (name_span, profile));
        }

        // Includes must name profiles, and must not loop back on themselves.
        for (name, (_, profile)) in &profiles {
            if let Profile::Group { include } = profile {
                for (index, member) in include.iter().enumerate() {
                    if !profiles.contains_key(member) {
                        return Err(at(
                            Some(include_spans[name][index].clone()),
                            format!(
                                "profile `{name}` includes `{member}`, which is not a profile: expected one of {}",
                                names_list(profiles.keys())
                            ),
                        ));
                    }
                }
            }
        }
        // Shared by every search: a profile explored once is not explored again.
        let mut acyclic = HashSet::new();
        for (name, (span, _)) in &profiles {
            let mut path = vec![name.clone()];
            if let Some(cycle) = find_cycle(&profiles, &mut path, &mut acyclic) {
                return Err(at(
                    Some(span.clone()),
                    format!(
                        "profiles include each other in a cycle: {}; a group cannot contain itself",
                        cycle.join(" -> ")
                    ),
                ));
            }
        }

        Ok(Profiles {
            path: path.to_path_buf(),
            defaults,
            profiles: profiles
                .into_iter()
                .map(|(name, (_, profile))| (name, profile))
                .collect(),
        })
    }

    /// Expands profile names (groups included) into the hosts to knock, in
    /// order, each (profile, host) pair once.
    pub fn members(&self, names: &[String]) -> Result<Vec<Member>, ConfigError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut expanded = HashSet::new();
        for name in names {
            if !self.profiles.contains_key(name) {
                return Err(ConfigError {
                    path: self.path.clone(),
                    position: None,
                    message: format!(
                        "there is no profile named `{}`: expected one of {}",
                        crate::core::text::sanitize(name),
                        names_list(self.profiles.keys())
                    ),
                });
            }
            self.expand(name, &mut out, &mut seen, &mut expanded);
        }
        Ok(out)
    }

    /// Appends `name`'s members not yet in `seen`. A profile already in
    /// `expanded` adds nothing new, so it is skipped: groups that include the
    /// same profile along many paths would otherwise take exponential time.
    fn expand<'a>(
        &'a self,
        name: &'a str,
        out: &mut Vec<Member>,
        seen: &mut HashSet<(String, String)>,
        expanded: &mut HashSet<&'a str>,
    ) {
        if !expanded.insert(name) {
            return;
        }
        match &self.profiles[name] {
            Profile::Group { include } => include
                .iter()
                .for_each(|member| self.expand(member, out, seen, expanded)),
            Profile::Hosts {
                hosts,
                sequence,
                settings,
            } => {
                for host in hosts {
                    if seen.insert((name.to_string(), host.clone())) {
                        out.push(Member {
                            profile: name.to_string(),
                            host: host.clone(),
                            sequence: sequence.clone(),
                            settings: settings.clone().or(&self.defaults),
                        });
                    }
                }
            }
        }
    }
}

/// Why `host` in profile `name` is refused, and what to write in the file instead.
fn host_message(name: &str, host: &str, err: &HostError) -> String {
    let fix = match err {
        HostError::WithPort { host, port } => {
            format!(
                "write host = \"{host}\", and check = {port} to check that port after the knock"
            )
        }
        HostError::WithUser { host, .. } => {
            format!("write host = \"{host}\": knockr knocks hosts, ssh logs in")
        }
        _ => "expected a name such as gw.example.net or an IP address".to_string(),
    };
    format!(
        "host {:?} in profile `{name}` {err}: {}",
        host,
        crate::core::text::sanitize(&fix)
    )
}

fn names_list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<String> = names
        .map(|n| format!("`{}`", crate::core::text::sanitize(n)))
        .collect();
    if names.is_empty() {
        "(the file defines no profiles)".to_string()
    } else {
        names.join(", ")
    }
}

/// Depth-first search for an include path that returns to a profile already
/// on it. `acyclic` holds the profiles already explored without finding one:
/// none of them can lead back to the path, so each is explored once and the
/// search stays linear in the number of includes.
fn find_cycle(
    profiles: &IndexMap<String, (Range<usize>, Profile)>,
    path: &mut Vec<String>,
    acyclic: &mut HashSet<String>,
) -> Option<Vec<String>> {
    let current = path.last()?.clone();
    if acyclic.contains(&current) {
        return None;
    }
    if let (_, Profile::Group { include }) = &profiles[&current] {
        for member in include {
            if let Some(start) = path.iter().position(|p| p == member) {
                let mut cycle = path[start..].to_vec();
                cycle.push(member.clone());
                return Some(cycle);
            }
            path.push(member.clone());
            if let Some(cycle) = find_cycle(profiles, path, acyclic) {
                return Some(cycle);
            }
            path.pop();
        }
    }
    acyclic.insert(current);
    None
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// toml's messages may carry a trailing newline or detail lines; keep one sentence.
pub(crate) fn first_line(message: &str) -> String {
    message
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    defaults: Option<RawProfile>,
    #[serde(default)]
    profiles: IndexMap<Spanned<String>, RawProfile>,
}

/// A `[profiles.NAME]` or `[defaults]` table as written. Values are checked as
/// they are read, so toml attaches the position of a bad one to the error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    host: Option<Spanned<String>>,
    hosts: Option<Spanned<Vec<Spanned<String>>>>,
    sequence: Option<Spanned<Vec<Knock>>>,
    include: Option<Spanned<Vec<Spanned<String>>>>,
    delay: Option<Spanned<DurationValue>>,
    timeout: Option<Spanned<DurationValue>>,
    check: Option<Spanned<PortValue>>,
    check_timeout: Option<Spanned<DurationValue>>,
    check_retries: Option<Spanned<u32>>,
    family: Option<Spanned<Family>>,
    resolve_timeout: Option<Spanned<DurationValue>>,
    udp_payload: Option<Spanned<PayloadValue>>,
    mode: Option<Spanned<Mode>>,
    secret_file: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    one_time_sequences: Option<Spanned<String>>,
    otp_door: Option<Spanned<String>>,
    otp_length: Option<Spanned<u32>>,
    otp_ports: Option<Spanned<PortRange>>,
    otp_step: Option<Spanned<DurationValue>>,
    otp_protocols: Option<Spanned<Vec<Proto>>>,
    otp_avoid: Option<Spanned<Vec<PortValue>>>,
}

impl RawProfile {
    /// The keys that shape time-based sequences.
    fn otp_keys(&self) -> OtpKeys<'_> {
        OtpKeys {
            length: self.otp_length.as_ref(),
            ports: self.otp_ports.as_ref(),
            step: self.otp_step.as_ref(),
            protocols: self.otp_protocols.as_ref(),
            avoid: self.otp_avoid.as_ref(),
        }
    }

    fn profile_only_keys(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut keys = Vec::new();
        if let Some(v) = &self.host {
            keys.push(("host", v.span()));
        }
        if let Some(v) = &self.hosts {
            keys.push(("hosts", v.span()));
        }
        if let Some(v) = &self.sequence {
            keys.push(("sequence", v.span()));
        }
        if let Some(v) = &self.include {
            keys.push(("include", v.span()));
        }
        if let Some(v) = &self.secret_file {
            keys.push(("secret_file", v.span()));
        }
        if let Some(v) = &self.secret_env {
            keys.push(("secret_env", v.span()));
        }
        if let Some(v) = &self.one_time_sequences {
            keys.push(("one_time_sequences", v.span()));
        }
        if let Some(v) = &self.otp_door {
            keys.push(("otp_door", v.span()));
        }
        keys.extend(self.otp_keys().written());
        keys
    }

    fn setting_keys(&self) -> Vec<(&'static str, Range<usize>)> {
        let spans = [
            ("delay", self.delay.as_ref().map(Spanned::span)),
            ("timeout", self.timeout.as_ref().map(Spanned::span)),
            ("check", self.check.as_ref().map(Spanned::span)),
            (
                "check_timeout",
                self.check_timeout.as_ref().map(Spanned::span),
            ),
            (
                "check_retries",
                self.check_retries.as_ref().map(Spanned::span),
            ),
            ("family", self.family.as_ref().map(Spanned::span)),
            (
                "resolve_timeout",
                self.resolve_timeout.as_ref().map(Spanned::span),
            ),
            ("udp_payload", self.udp_payload.as_ref().map(Spanned::span)),
            ("mode", self.mode.as_ref().map(Spanned::span)),
        ];
        spans
            .into_iter()
            .filter_map(|(key, span)| Some((key, span?)))
            .collect()
    }

    /// The settings written here; an error carries the span of the value at fault.
    fn overrides(&self) -> Result<Overrides, (Range<usize>, String)> {
        let duration = |key: &DurationKey, value: &Option<Spanned<DurationValue>>| {
            value.as_ref().map(|v| key.read(v)).transpose()
        };
        Ok(Overrides {
            delay: duration(&DELAY, &self.delay)?,
            timeout: duration(&TIMEOUT, &self.timeout)?,
            check: self.check.as_ref().map(|p| p.get_ref().0),
            check_timeout: duration(&CHECK_TIMEOUT, &self.check_timeout)?,
            check_retries: self.check_retries.as_ref().map(|r| *r.get_ref()),
            family: self.family.as_ref().map(|f| *f.get_ref()),
            resolve_timeout: duration(&RESOLVE_TIMEOUT, &self.resolve_timeout)?,
            udp_payload: self.udp_payload.as_ref().map(|p| p.get_ref().0.clone()),
            mode: self.mode.as_ref().map(|m| *m.get_ref()),
        })
    }
}

/// The keys that shape time-based sequences, as written in a client profile
/// or a server door: one reading, one set of defaults and one check for both
/// sides, so a profile and its door cannot mean different things by the same
/// words. Each side's raw table holds the values (serde cannot flatten spanned
/// values) and lends them here.
pub(crate) struct OtpKeys<'a> {
    /// `otp_length`: knocks per sequence.
    pub length: Option<&'a Spanned<u32>>,
    /// `otp_ports`: the range knocks are drawn from.
    pub ports: Option<&'a Spanned<PortRange>>,
    /// `otp_step`: the time step, whole seconds.
    pub step: Option<&'a Spanned<DurationValue>>,
    /// `otp_protocols`: tcp, udp or both, in derivation order.
    pub protocols: Option<&'a Spanned<Vec<Proto>>>,
    /// `otp_avoid`: ports never used.
    pub avoid: Option<&'a Spanned<Vec<PortValue>>>,
}

impl OtpKeys<'_> {
    /// The keys that were written, with where.
    pub(crate) fn written(&self) -> Vec<(&'static str, Range<usize>)> {
        let spans = [
            ("otp_length", self.length.map(Spanned::span)),
            ("otp_ports", self.ports.map(Spanned::span)),
            ("otp_step", self.step.map(Spanned::span)),
            ("otp_protocols", self.protocols.map(Spanned::span)),
            ("otp_avoid", self.avoid.map(Spanned::span)),
        ];
        spans
            .into_iter()
            .filter_map(|(key, span)| Some((key, span?)))
            .collect()
    }

    /// The spec they describe, with the documented defaults (4 knocks, ports
    /// 10000-60000, steps of 30 s, TCP, nothing avoided). An error carries
    /// the span of the key at fault when one is; one about how the keys go
    /// together names `owner` (e.g. "door `ssh`").
    pub(crate) fn spec(&self, owner: &str) -> Result<OtpSpec, (Option<Range<usize>>, String)> {
        let step = match self.step {
            Some(step) => OTP_STEP
                .read(step)
                .map_err(|(span, err)| (Some(span), err))?,
            None => Duration::from_secs(30),
        };
        OtpSpec::new(
            self.length.map_or(4, |l| *l.get_ref() as usize),
            self.ports
                .map_or(10000..=60000, |p| p.get_ref().0..=p.get_ref().1),
            self.avoid
                .map_or_else(Vec::new, |a| a.get_ref().iter().map(|p| p.0).collect()),
            self.protocols
                .map_or_else(|| vec![Proto::Tcp], |p| p.get_ref().clone()),
            step.as_secs(),
        )
        .map_err(|err| {
            let (length, ports) = (
                self.length.map(Spanned::span),
                self.ports.map(Spanned::span),
            );
            let at = match err {
                OtpError::EmptyRange { .. } => ports,
                OtpError::Length { .. } => length.or(ports),
                OtpError::NoProtocol => self.protocols.map(Spanned::span),
                OtpError::ZeroStep => self.step.map(Spanned::span),
            };
            (at, format!("{owner}: {err}"))
        })
    }
}

/// `delay` (and `-d`): the pause between two knocks. A minute is far more
/// than any knock server waits between knocks; more is a typo ("200h") that
/// would hang a cron job.
pub(crate) const DELAY: DurationKey = DurationKey {
    name: "delay",
    range: Duration::ZERO..=Duration::from_secs(60),
    whole_seconds: false,
    expected: "a duration from 0s to 1m, e.g. \"200ms\"",
};
/// `timeout` (and `-t`): how long an answer to a knock is watched for (the
/// handshake in `connect` mode); bounded as `delay` is.
pub(crate) const TIMEOUT: DurationKey = DurationKey {
    name: "timeout",
    range: Duration::ZERO..=Duration::from_secs(60),
    whole_seconds: false,
    expected: "a duration from 0s to 1m, e.g. \"200ms\"",
};
/// `check_timeout`: how long the check may take. Zero would report the port
/// closed after no attempt at all; five minutes outlasts a router's reboot.
pub(crate) const CHECK_TIMEOUT: DurationKey = DurationKey {
    name: "check_timeout",
    range: Duration::from_millis(1)..=Duration::from_secs(5 * 60),
    whole_seconds: false,
    expected: "a duration from 1ms to 5m, e.g. \"3s\"",
};
/// `resolve_timeout` (and `--resolve-timeout`): how long DNS may take; zero
/// would refuse every name the hosts file lacks without asking, and past a
/// minute a silent DNS server would hold a cron job for nothing.
pub(crate) const RESOLVE_TIMEOUT: DurationKey = DurationKey {
    name: "resolve_timeout",
    range: Duration::from_millis(1)..=Duration::from_secs(60),
    whole_seconds: false,
    expected: "a duration from 1ms to 1m, e.g. \"5s\"",
};
/// `otp_step`: the derivation counts whole seconds, and a step cannot be empty.
const OTP_STEP: DurationKey = DurationKey {
    name: "otp_step",
    range: Duration::from_secs(1)..=Duration::MAX,
    whole_seconds: true,
    expected: "a whole number of seconds, at least 1s, e.g. \"30s\"",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::knock::Proto;

    fn parse(text: &str) -> Result<Profiles, String> {
        Profiles::parse(Path::new("profiles.toml"), text).map_err(|err| err.to_string())
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("the file should be refused")
    }

    #[test]
    fn the_example_file_loads_and_documents_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles.example.toml");
        let file = Profiles::load(&path).expect("profiles.example.toml loads");
        let names: Vec<&String> = file.profiles.keys().collect();
        assert_eq!(
            names,
            [
                "home-router",
                "office-router",
                "lab",
                "everywhere",
                "rolling",
                "once"
            ]
        );
        let text = std::fs::read_to_string(&path).unwrap();
        for key in [
            "host",
            "hosts",
            "sequence",
            "delay",
            "timeout",
            "check",
            "check_timeout",
            "check_retries",
            "family",
            "resolve_timeout",
            "udp_payload",
            "mode",
            "include",
            "secret_file",
            "secret_env",
            "one_time_sequences",
            "otp_door",
            "otp_length",
            "otp_ports",
            "otp_step",
            "otp_protocols",
            "otp_avoid",
        ] {
            assert!(
                text.contains(&format!("\n{key} = ")) || text.contains(&format!("# {key} = ")),
                "{key} is documented"
            );
        }
        let members = file.members(&["everywhere".into()]).unwrap();
        let hosts: Vec<&str> = members.iter().map(|m| m.host.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "gw.home.example.net",
                "vpn1.office.example.net",
                "vpn2.office.example.net"
            ]
        );
        assert_eq!(members[1].settings.delay, Some(Duration::from_millis(500)));
        assert_eq!(
            members[1].settings.udp_payload.as_deref(),
            Some(&b"knock"[..])
        );
        assert_eq!(
            members[0].settings.udp_payload.as_deref(),
            Some(&[0u8][..]),
            "from [defaults]"
        );
    }

    #[test]
    fn groups_expand_in_order_without_repeating_a_host() {
        let file = parse(
            r#"
            [profiles.a]
            host = "10.0.0.1"
            sequence = ["1"]
            [profiles.b]
            hosts = ["10.0.0.2", "10.0.0.3"]
            sequence = ["2:udp"]
            [profiles.g]
            include = ["b", "a"]
            [profiles.gg]
            include = ["g", "a"]
            "#,
        )
        .unwrap();
        let members = file.members(&["gg".into(), "a".into()]).unwrap();
        let got: Vec<(&str, &str)> = members
            .iter()
            .map(|m| (m.profile.as_str(), m.host.as_str()))
            .collect();
        assert_eq!(
            got,
            [("b", "10.0.0.2"), ("b", "10.0.0.3"), ("a", "10.0.0.1")]
        );
        assert_eq!(
            members[0].sequence,
            Sequence::Fixed(vec![Knock {
                port: 2,
                proto: Proto::Udp
            }])
        );
    }

    /// Found while writing the profiles fuzz target: a 904-byte file of 22
    /// groups, each including the next one twice, did not load in two minutes,
    /// as the include check and the expansion walked every one of the 2^22
    /// paths. 64 levels (2^64 paths) would never finish without the fix.
    #[test]
    fn regression_diamond_includes_took_exponential_time() {
        let mut text = String::new();
        for level in 0..64 {
            let next = level + 1;
            text += &format!("[profiles.p{level}]\ninclude = [\"p{next}\", \"p{next}\"]\n");
        }
        text += "[profiles.p64]\nhost = \"192.0.2.1\"\nsequence = [7000]\n";
        let file = parse(&text).unwrap();
        let members = file.members(&["p0".into(), "p1".into()]).unwrap();
        let got: Vec<(&str, &str)> = members
            .iter()
            .map(|m| (m.profile.as_str(), m.host.as_str()))
            .collect();
        assert_eq!(got, [("p64", "192.0.2.1")]);

        // A cycle at the bottom of the same diamond is still found, and named.
        let looped = text.replace(
            "host = \"192.0.2.1\"\nsequence = [7000]",
            "include = [\"p63\"]",
        );
        let err = parse(&looped).unwrap_err();
        assert!(
            err.ends_with("p63 -> p64 -> p63; a group cannot contain itself"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_file_has_no_profiles() {
        assert!(parse("").unwrap().profiles.is_empty());
    }

    #[test]
    fn error_messages() {
        let cases = [
            (
                "unknown key",
                "[profiles.a]\nhost = \"h\"\nsequence = [\"1\"]\ndely = \"1s\"\n",
            ),
            (
                "port zero",
                "[profiles.a]\nhost = \"h\"\nsequence = [\"7000\", \"0:udp\"]\n",
            ),
            (
                "port too big",
                "[profiles.a]\nhost = \"h\"\nsequence = [70000]\n",
            ),
            (
                "bad protocol",
                "[profiles.a]\nhost = \"h\"\nsequence = [\"7000:sctp\"]\n",
            ),
            (
                "ICMP in time-based sequences",
                "[profiles.a]\nhost = \"h\"\nsecret_env = \"S\"\notp_protocols = [\"udp\", \"icmp\"]\n",
            ),
            (
                "empty sequence",
                "[profiles.a]\nhost = \"h\"\nsequence = []\n",
            ),
            ("no sequence", "[profiles.a]\nhost = \"h\"\n"),
            ("no host", "[profiles.a]\nsequence = [\"1\"]\n"),
            (
                "host and hosts",
                "[profiles.a]\nhost = \"h\"\nhosts = [\"i\"]\nsequence = [\"1\"]\n",
            ),
            (
                "blank host",
                "[profiles.a]\nhosts = [\"ok\", \"bad host\"]\nsequence = [\"1\"]\n",
            ),
            (
                "host and port",
                "[profiles.a]\nhost = \"gw:22\"\nsequence = [\"1\"]\n",
            ),
            (
                "user and host",
                "[profiles.a]\nhost = \"root@gw\"\nsequence = [\"1\"]\n",
            ),
            (
                "port for a host",
                "[profiles.a]\nhosts = [\"gw\", \"8000\"]\nsequence = [\"1\"]\n",
            ),
            ("bad duration", "[defaults]\ndelay = \"soon\"\n"),
            ("delay too long", "[defaults]\ndelay = \"200h\"\n"),
            ("check_timeout zero", "[defaults]\ncheck_timeout = \"0s\"\n"),
            (
                "duration without a unit",
                "[defaults]\ncheck_timeout = 500\n",
            ),
            (
                "otp_step without a unit",
                "[profiles.a]\nhost = \"h\"\nsecret_env = \"S\"\notp_step = 30\n",
            ),
            (
                "otp_step not whole seconds",
                "[profiles.a]\nhost = \"h\"\nsecret_env = \"S\"\notp_step = \"1.5s\"\n",
            ),
            (
                "otp length too long",
                "[profiles.a]\nhost = \"h\"\nsecret_env = \"S\"\notp_length = 33\n",
            ),
            (
                "no otp protocol",
                "[profiles.a]\nhost = \"h\"\nsecret_env = \"S\"\notp_protocols = []\n",
            ),
            (
                "bad check port",
                "[profiles.a]\nhost = \"h\"\nsequence = [\"1\"]\ncheck = 0\n",
            ),
            ("bad family", "[defaults]\nfamily = \"ipv5\"\n"),
            (
                "zero resolve_timeout",
                "[defaults]\nresolve_timeout = \"0s\"\n",
            ),
            ("bad mode", "[defaults]\nmode = \"ack\"\n"),
            ("bad payload", "[defaults]\nudp_payload = \"hex:0\"\n"),
            ("host in defaults", "[defaults]\nhost = \"h\"\n"),
            (
                "unknown include",
                "[profiles.a]\nhost = \"h\"\nsequence = [\"1\"]\n[profiles.g]\ninclude = [\"a\", \"nope\"]\n",
            ),
            (
                "include cycle",
                "[profiles.x]\ninclude = [\"y\"]\n[profiles.y]\ninclude = [\"z\"]\n[profiles.z]\ninclude = [\"x\"]\n",
            ),
            ("self include", "[profiles.x]\ninclude = [\"x\"]\n"),
            (
                "group with settings",
                "[profiles.a]\nhost = \"h\"\nsequence = [\"1\"]\n[profiles.g]\ninclude = [\"a\"]\ndelay = \"5s\"\n",
            ),
            ("empty include", "[profiles.g]\ninclude = []\n"),
            ("wrong type", "[profiles.a]\nhost = 5\nsequence = [\"1\"]\n"),
            ("not toml", "[profiles.a\nhost = \"h\"\n"),
            ("unknown table", "[profile.a]\nhost = \"h\"\n"),
            (
                "secret and sequence",
                "[profiles.a]\nhost = \"h\"\nsecret_file = \"/s\"\nsequence = [\"1\"]\n",
            ),
            (
                "two secrets",
                "[profiles.a]\nhost = \"h\"\nsecret_file = \"/s\"\nsecret_env = \"S\"\n",
            ),
            (
                "otp key without secret",
                "[profiles.a]\nhost = \"h\"\nsequence = [\"1\"]\notp_length = 5\n",
            ),
            (
                "bad otp range",
                "[profiles.a]\nhost = \"h\"\nsecret_env = \"S\"\notp_ports = \"9000-8000\"\n",
            ),
            (
                "otp range too small",
                "[profiles.a]\nhost = \"h\"\nsecret_env = \"S\"\notp_ports = \"9000-9002\"\n",
            ),
            ("secret in defaults", "[defaults]\nsecret_env = \"S\"\n"),
            (
                "one-time and sequence",
                "[profiles.a]\nhost = \"h\"\nsequence = [\"1\"]\none_time_sequences = \"f\"\n",
            ),
            (
                "one-time in defaults",
                "[defaults]\none_time_sequences = \"f\"\n",
            ),
        ];
        let report: String = cases
            .iter()
            .map(|(what, text)| format!("{what}:\n  {}\n", error(text)))
            .collect();
        insta::assert_snapshot!(report);
    }

    #[test]
    fn unknown_profile_on_the_command_line_lists_the_known_ones() {
        let file = parse(
            "[profiles.a]\nhost = \"h\"\nsequence = [\"1\"]\n[profiles.b]\ninclude = [\"a\"]\n",
        )
        .unwrap();
        let err = file
            .members(&["a".into(), "c\u{1b}".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "profiles.toml: there is no profile named `c\\u{1b}`: expected one of `a`, `b`"
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(line_col("ab\ncdé", 7), (2, 4));
        assert_eq!(line_col("x", 0), (1, 1));
    }
}
