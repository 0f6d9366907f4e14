//! The plan: every (profile, host) to knock with its final settings, resolved
//! once from the command line and the profiles file. Precedence, highest first:
//! command-line flags, the profile, `[defaults]`, the built-in defaults below.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::profiles::{self as config, ConfigError, Overrides, Profiles};
use crate::core::knock::{self, Family, Knock, Mode, Proto};

/// Built-in defaults, documented in `profiles.example.toml` and the README.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(200);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_CHECK_RETRIES: u32 = 10;

/// The final settings of `overrides`, with the built-in defaults for anything unsaid.
pub fn settle(overrides: Overrides) -> Settings {
    Settings {
        delay: overrides.delay.unwrap_or(DEFAULT_DELAY),
        timeout: overrides.timeout.unwrap_or(DEFAULT_TIMEOUT),
        mode: overrides.mode.unwrap_or_default(),
        family: overrides.family.unwrap_or_default(),
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
pub struct Settings {
    /// Pause between the sends of two knocks (not after the last).
    pub delay: Duration,
    /// How long to watch for an answer to each knock.
    pub timeout: Duration,
    pub mode: Mode,
    pub family: Family,
    pub udp_payload: Vec<u8>,
    /// The destination check after the last knock, if requested.
    pub check: Option<Check>,
}

/// The destination check: connect to `port` until it opens or `timeout` passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    pub port: u16,
    /// Total time allowed for the check, from its first attempt.
    pub timeout: Duration,
    /// Further attempts after a refused first one.
    pub retries: u32,
}

/// One host to knock.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The profile it came from; `None` in ad-hoc mode (`-p`).
    pub profile: Option<String>,
    /// The host as written: a name or an IP literal.
    pub host: String,
    pub sequence: Vec<Knock>,
    pub settings: Settings,
    /// For a one-time profile: the line of its file `sequence` comes from,
    /// marked used once knocked ([`spend_one_time_lines`]).
    pub one_time_line: Option<OneTimeLine>,
    /// For a time-based profile: what derives `sequence`, so that each round
    /// of `--every` knocks the sequence of its own time step ([`Plan::at`]);
    /// the server refuses a step's sequence once used.
    pub rolling: Option<Box<config::OtpSequence>>,
}

/// A line of a one-time sequences file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeLine {
    pub file: PathBuf,
    /// 0-based, as [`crate::config::onetime`] counts.
    pub index: usize,
}

/// How results are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
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
pub struct Plan {
    pub targets: Vec<Target>,
    pub output: Output,
    pub conduct: Conduct,
}

/// How every target of a run is knocked: command-line choices, the same for all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conduct {
    /// Resolve and report, but send nothing.
    pub dry_run: bool,
    /// Knock every address of a host, not only the first.
    pub all_addresses: bool,
    /// Knock rounds to add when the check finds the port closed.
    pub retry: u32,
    /// Where the knock sockets are bound.
    pub bind: Bind,
}

/// The local end of every knock and check (`--source`, `--interface`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bind {
    pub source: Option<std::net::IpAddr>,
    pub interface: Option<String>,
}

/// What the command line asked of a knock, before the profiles file is read:
/// `cli` fills it in, so nothing here sees clap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// Profiles; with `ports`, host names or addresses instead.
    pub targets: Vec<String>,
    /// Ad-hoc knock specs (`-p`); empty: knock profiles.
    pub ports: Vec<String>,
    /// The protocol of `ports` written without one.
    pub network: Proto,
    pub delay: Option<Duration>,
    pub timeout: Option<Duration>,
    pub check: Option<u16>,
    pub mode: Option<Mode>,
    /// `-4` / `-6`.
    pub ipv4: bool,
    pub ipv6: bool,
    pub source: Option<std::net::IpAddr>,
    pub interface: Option<String>,
    pub all_addresses: bool,
    pub retry: u32,
    /// `--every`: one-time profiles refuse it.
    pub every: Option<Duration>,
    pub dry_run: bool,
    pub verbose: bool,
    pub quiet: bool,
    pub json: bool,
    /// `--color`: `None` is auto (a terminal, unless NO_COLOR is set).
    pub color: Option<bool>,
}

/// A plan that cannot be made; exits 2.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
}

impl Plan {
    /// Builds the plan from the flags; `config` is the `-c`/`$KNOCKR_CONFIG` path.
    pub fn new(args: &Request, config: Option<PathBuf>) -> Result<Plan, PlanError> {
        let output = if args.json {
            Output::Json
        } else if args.quiet {
            Output::Quiet
        } else {
            Output::Human {
                verbose: args.verbose,
                color: args.color.unwrap_or_else(|| {
                    // https://no-color.org: a non-empty NO_COLOR turns colour off.
                    use std::io::IsTerminal as _;
                    std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }),
            }
        };
        let flags = Overrides {
            delay: args.delay,
            timeout: args.timeout,
            check: args.check,
            // A source address can only reach its own family.
            family: if args.ipv4 || args.source.is_some_and(|s| s.is_ipv4()) {
                Some(Family::Ipv4)
            } else if args.ipv6 || args.source.is_some_and(|s| s.is_ipv6()) {
                Some(Family::Ipv6)
            } else {
                None
            },
            mode: args.mode,
            ..Overrides::default()
        };

        let targets = if args.ports.is_empty() {
            if args.targets.is_empty() {
                return Err(PlanError::Usage(
                    "nothing to knock: name one or more profiles, or give ports with -p and hosts"
                        .into(),
                ));
            }
            let profiles = load_profiles(config)?;
            profiles
                .members(&args.targets)?
                .into_iter()
                .map(|member| {
                    let (sequence, one_time_line) = current_sequence(
                        &member.profile,
                        &member.sequence,
                        std::time::SystemTime::now(),
                    )?;
                    if one_time_line.is_some() && args.every.is_some() {
                        return Err(PlanError::Usage(format!(
                            "profile `{}` knocks one-time sequences, each good for one knock: \
                             --every would repeat a used one; knock it without --every",
                            member.profile
                        )));
                    }
                    let rolling = match &member.sequence {
                        config::Sequence::Otp(otp) => Some(otp.clone()),
                        _ => None,
                    };
                    Ok(Target {
                        sequence,
                        one_time_line,
                        rolling,
                        profile: Some(member.profile),
                        host: member.host,
                        settings: settle(flags.clone().or(&member.settings)),
                    })
                })
                .collect::<Result<Vec<_>, PlanError>>()?
        } else {
            // Ad hoc: the profiles file is not read, so a broken one never blocks this.
            if args.targets.is_empty() {
                return Err(PlanError::Usage(
                    "no host to knock: give one or more host names or addresses after the ports"
                        .into(),
                ));
            }
            let mut sequence = Vec::new();
            for spec in &args.ports {
                let knock = knock::parse_knock(spec, args.network).map_err(|err| {
                    PlanError::Usage(format!("invalid value {spec:?} for -p/--port: {err}"))
                })?;
                sequence.push(knock);
            }
            let settings = settle(flags);
            let mut hosts: Vec<&String> = Vec::new();
            for host in &args.targets {
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
            hosts
                .into_iter()
                .map(|host| Target {
                    profile: None,
                    host: host.clone(),
                    sequence: sequence.clone(),
                    settings: settings.clone(),
                    one_time_line: None,
                    rolling: None,
                })
                .collect()
        };
        if let Some(source) = args.source
            && (args.ipv4 && source.is_ipv6() || args.ipv6 && source.is_ipv4())
        {
            return Err(PlanError::Usage(format!(
                "--source {source} is of the other address family than {}",
                if args.ipv4 { "-4" } else { "-6" }
            )));
        }
        Ok(Plan {
            targets,
            output,
            conduct: Conduct {
                dry_run: args.dry_run,
                all_addresses: args.all_addresses,
                retry: args.retry,
                bind: Bind {
                    source: args.source,
                    interface: args.interface.clone(),
                },
            },
        })
    }
}

impl Plan {
    /// The plan as it stands at `now`: time-based targets get the sequence
    /// of the current time step (a secret file changed meanwhile is read again).
    pub fn at(&self, now: std::time::SystemTime) -> Result<Plan, PlanError> {
        let mut plan = self.clone();
        for target in &mut plan.targets {
            if let (Some(rolling), Some(profile)) = (&target.rolling, &target.profile) {
                let sequence = config::Sequence::Otp(rolling.clone());
                target.sequence = current_sequence(profile, &sequence, now)?.0;
            }
        }
        Ok(plan)
    }
}

/// The knocks a profile sends at `now`: its fixed sequence, the one its
/// secret gives for the current time step, or the first unused line of its
/// one-time sequences file (returned too, to be marked once knocked).
pub fn current_sequence(
    profile: &str,
    sequence: &config::Sequence,
    now: std::time::SystemTime,
) -> Result<(Vec<Knock>, Option<OneTimeLine>), PlanError> {
    match sequence {
        config::Sequence::Fixed(knocks) => Ok((knocks.clone(), None)),
        config::Sequence::OneTime(file) => match crate::config::onetime::current(file, |_| None) {
            Ok(Some((index, knocks))) => {
                let file = file.clone();
                Ok((knocks, Some(OneTimeLine { file, index })))
            }
            Ok(None) => Err(PlanError::Usage(format!(
                "profile `{profile}`: every sequence in {} is used: append new lines (the same \
                 as the server's one_time_sequences file)",
                file.display()
            ))),
            Err(err) => Err(PlanError::Usage(format!(
                "profile `{profile}`: cannot read its one_time_sequences file {}: {err}",
                file.display()
            ))),
        },
        config::Sequence::Otp(otp) => {
            let secret = crate::config::secret::load(&otp.secret)
                .map_err(|err| PlanError::Usage(format!("profile `{profile}`: {err}")))?;
            let unix = now
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let step = otp.spec.step_of(unix);
            Ok((otp.spec.sequence(&secret, &otp.door, step), None))
        }
    }
}

/// Marks used each one-time line whose knocks all went out to at least one
/// address of its target (a dry run sends none, so marks none). A line that
/// was not sent stays unused: the server is still waiting for it. Returns a
/// message for each line that could not be marked.
pub fn spend_one_time_lines(plan: &Plan, report: &crate::client::report::Report) -> Vec<String> {
    let mut spent: Vec<&OneTimeLine> = Vec::new();
    let mut problems = Vec::new();
    for target in &plan.targets {
        let Some(line) = &target.one_time_line else {
            continue;
        };
        let sent = report.targets.iter().any(|r| {
            r.profile == target.profile
                && r.host == target.host
                && !r.knocks.is_empty()
                && r.knocks.iter().all(|k| k.sent)
        });
        if !sent || spent.contains(&line) {
            continue;
        }
        spent.push(line);
        if let Err(err) = crate::config::onetime::consume(&line.file, line.index) {
            problems.push(format!(
                "the one-time sequence on line {} of {} was knocked but cannot be marked used \
                 ({err}): put a # at the start of that line, or the next knock repeats it",
                line.index + 1,
                line.file.display()
            ));
        }
    }
    problems
}

/// Loads the profiles file named by `-c`/`$KNOCKR_CONFIG`, else the default one.
pub fn load_profiles(config: Option<PathBuf>) -> Result<Profiles, PlanError> {
    match config {
        Some(path) => Ok(Profiles::load(&path)?),
        None => {
            let path = config::default_path().ok_or_else(|| {
                PlanError::Usage(
                    "cannot find the home directory for the profiles file: give one with -c FILE"
                        .into(),
                )
            })?;
            if !path.exists() {
                return Err(PlanError::Usage(format!(
                    "there is no profiles file at {}: create one (see profiles.example.toml), \
                     name one with -c FILE, or knock ad hoc with -p PORT HOST",
                    path.display()
                )));
            }
            Ok(Profiles::load(&path)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::knock::Proto;

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
        let plan = Plan::new(&args, None).unwrap();
        assert_eq!(plan.targets.len(), 2);
        assert_eq!(
            plan.targets[0].sequence,
            vec![
                Knock {
                    port: 7000,
                    proto: Proto::Udp
                },
                Knock {
                    port: 8000,
                    proto: Proto::Tcp
                }
            ]
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
        let err = Plan::new(&args, None).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid value \"70000\" for -p/--port: port 70000 is out of range: expected 1..=65535"
        );
    }
}
