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

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::profiles::{
    self as config, ConfigError, OtpSequence, Overrides, Profiles, Sequence,
};
use crate::core::knock::{self, Family, Knock, Mode, Proto, SpecError};
use crate::core::secret::Secret;

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
    /// How its knocks are found: fixed (every ad-hoc target), the first
    /// unused line of a one-time sequences file, or derived from a secret and
    /// the time step.
    pub(crate) sequence: Sequence,
    /// Flags over the profile over `[defaults]` over the built-in defaults.
    pub(crate) settings: Settings,
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
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Bind {
    /// `--source`: the local address knocks and the check are sent from.
    pub(crate) source: Option<std::net::IpAddr>,
    /// `--interface`: the device they go out of (`SO_BINDTODEVICE`).
    pub(crate) interface: Option<String>,
}

/// What the command line asked of a knock, before the profiles file is read:
/// `cli` fills it in, so nothing here sees clap.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Request {
    /// Profiles; with `ports`, host names or addresses instead.
    pub(crate) targets: Vec<String>,
    /// Ad-hoc knock specs (`-p`); empty: knock profiles.
    pub(crate) ports: Vec<String>,
    /// The protocol of `ports` written without one.
    pub(crate) network: Proto,
    /// `-d/--delay`, over the profiles'.
    pub(crate) delay: Option<Duration>,
    /// `-t/--timeout`, over the profiles'.
    pub(crate) timeout: Option<Duration>,
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
    #[error("--source {address} is of the other address family than {flag}")]
    SourceFamily {
        /// The `--source` address.
        address: std::net::IpAddr,
        /// `-4` or `-6`.
        flag: &'static str,
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
    /// The planner of `knockr [TARGET...]` and `--every`. `profiles` gives the
    /// loaded profiles file ([`load_profiles`] at the edge, a parsed text in
    /// tests); it is called only when the request names profiles, so ad-hoc
    /// knocks (`-p`) never read the file and a broken one never blocks them.
    /// Reads nothing else: the knocks themselves come from [`Plan::read_sequences`].
    pub(crate) fn new(
        request: &Request,
        profiles: impl FnOnce() -> Result<Profiles, PlanError>,
    ) -> Result<Plan, PlanError> {
        let flags = request.flags();
        let targets = if request.ports.is_empty() {
            if request.targets.is_empty() {
                return Err(PlanError::NothingToKnock);
            }
            let targets = profile_targets(&profiles()?, &request.targets, &flags)?;
            if request.every.is_some()
                && let Some(target) = targets
                    .iter()
                    .find(|t| matches!(t.sequence, Sequence::OneTime(_)))
            {
                return Err(PlanError::EveryOneTime {
                    profile: target.profile.clone().unwrap_or_default(),
                });
            }
            targets
        } else {
            if request.targets.is_empty() {
                return Err(PlanError::NoHost);
            }
            let mut sequence = Vec::new();
            for spec in &request.ports {
                let knock = knock::parse_knock(spec, request.network).map_err(|error| {
                    PlanError::BadPort {
                        spec: spec.clone(),
                        error,
                    }
                })?;
                sequence.push(knock);
            }
            let settings = settle(flags);
            let mut hosts: Vec<&String> = Vec::new();
            for host in &request.targets {
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
            hosts
                .into_iter()
                .map(|host| Target {
                    profile: None,
                    host: host.clone(),
                    sequence: Sequence::Fixed(sequence.clone()),
                    settings: settings.clone(),
                })
                .collect()
        };
        if let Some(source) = request.source
            && (request.ipv4 && source.is_ipv6() || request.ipv6 && source.is_ipv4())
        {
            return Err(PlanError::SourceFamily {
                address: source,
                flag: if request.ipv4 { "-4" } else { "-6" },
            });
        }
        Ok(Plan {
            targets,
            output: request.output(),
            conduct: Conduct {
                dry_run: request.dry_run,
                all_addresses: request.all_addresses,
                retry: request.retry,
                bind: Bind {
                    source: request.source,
                    interface: request.interface.clone(),
                },
            },
        })
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
) -> Result<Vec<Target>, PlanError> {
    Ok(profiles
        .members(names)?
        .into_iter()
        .map(|member| Target {
            settings: settle(flags.clone().or(&member.settings)),
            profile: Some(member.profile),
            host: member.host,
            sequence: member.sequence,
        })
        .collect())
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
            let secret = crate::config::secret::load_secret(&otp.secret).map_err(|error| {
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
        let targets = profile_targets(&file, &["all".into()], &flags).unwrap();
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
        let plan = Plan::new(&ad_hoc("2001:db8::1", false), unread).unwrap();
        assert_eq!(plan.targets[0].settings.family, Family::Ipv6);
        assert_eq!(
            plan.conduct.bind.source,
            Some("2001:db8::1".parse().unwrap())
        );
        let err = Plan::new(&ad_hoc("2001:db8::1", true), unread).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--source 2001:db8::1 is of the other address family than -4"
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
