//! Command-line definitions only. The doc comments here are the `--help` text;
//! `client::plan` takes what `KnockArgs::request` gives, so nothing else sees clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::core::knock::{Family, Mode, Proto};

const EXAMPLES: &str = "\
Examples:
  knockr home-router office-router           knock every host of two profiles, concurrently
  knockr -p 7000 -p 8000:udp -p 9000 -d 200ms gw.example.net
                                             ad-hoc: no profile, ports on the command line
  knockr --check 22 --json office-router     knock, verify port 22 opened, report as JSON
  knockr --dry-run home-router               show what would be sent, send nothing
  knockr list                                the profiles in the profiles file
  knockr completions zsh > _knockr           shell completion script

Exit status:
  0  every target was knocked and every requested check found its port open
  1  at least one target failed (name not resolved, knock not sent, check closed)
  2  usage or profiles-file error; nothing was sent";

/// Port knocking for MikroTik routers and Linux hosts: knocks every host of
/// the named profiles at once, then optionally checks the door opened.
#[derive(Debug, Parser)]
#[command(
    name = "knockr",
    version,
    after_help = EXAMPLES,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub knock: KnockArgs,

    /// Profiles file [default: ~/.config/knockr/profiles.toml]
    #[arg(
        short = 'c',
        long,
        global = true,
        env = "KNOCKR_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
}

/// What to knock and how; flags override the profiles' settings.
#[derive(Debug, Args, Default)]
pub struct KnockArgs {
    /// Profiles to knock; with -p/--port, host names or IP addresses instead
    #[arg(value_name = "TARGET")]
    #[cfg_attr(feature = "dynamic-completion", arg(add = profile_candidates()))]
    pub targets: Vec<String>,

    /// Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT[:PROTO]",
        value_delimiter = ','
    )]
    pub ports: Vec<String>,

    /// Pause between knocks on one host, e.g. 200ms or 1s (bare number: ms) [default: 200ms]
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = crate::core::units::parse_duration)]
    pub delay: Option<Duration>,

    /// How long to wait for an answer to each knock [default: 200ms]
    #[arg(short = 't', long, value_name = "DURATION", value_parser = crate::core::units::parse_duration)]
    pub timeout: Option<Duration>,

    /// Protocol for -p ports given without one
    #[arg(short = 'n', long, value_name = "PROTO", default_value = "tcp")]
    pub network: NetworkArg,

    /// After the last knock, check that this TCP port accepts connections
    #[arg(long, value_name = "PORT", value_parser = parse_port_arg)]
    pub check: Option<u16>,

    /// How TCP knocks are sent: a bare SYN, or a full connect (for networks
    /// whose proxies swallow bare SYNs) [default: syn]
    #[arg(long, value_name = "MODE")]
    pub mode: Option<ModeArg>,

    /// Knock every address of each host, not only the one ssh would use
    #[arg(long)]
    pub all_addresses: bool,

    /// Send the knocks from this local address (multi-homed machines, VPNs)
    #[arg(long, value_name = "ADDR")]
    pub source: Option<std::net::IpAddr>,

    /// Send the knocks through this network interface (SO_BINDTODEVICE)
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,

    /// Knock again every DURATION until stopped (SIGINT/SIGTERM), and at once
    /// when this machine's source address towards the targets changes
    #[arg(long, value_name = "DURATION", value_parser = crate::core::units::parse_duration, conflicts_with = "dry_run")]
    pub every: Option<Duration>,

    /// When the check finds the port closed, knock again, up to N more times
    /// (waiting 1s, 2s, 4s, ... up to 8s between rounds)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,

    /// Use IPv4 addresses only
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use IPv6 addresses only
    #[arg(short = '6')]
    pub ipv6: bool,

    /// Print each knock as it is sent, on stderr
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print nothing but errors; the exit status tells the result
    #[arg(short, long)]
    pub quiet: bool,

    /// Print the results as one JSON document on stdout
    #[arg(long)]
    pub json: bool,

    /// Colour in the summary: auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,

    /// Resolve and show what would be sent, but send nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Knock a profile, wait until PORT answers, then relay stdin/stdout to it
    /// (for ssh: ProxyCommand knockr connect %n)
    Connect {
        /// The profile to knock; its first host is connected to
        #[arg(value_name = "PROFILE")]
        #[cfg_attr(feature = "dynamic-completion", arg(add = profile_candidates()))]
        profile: String,
        /// The port to connect to [default: the profile's `check` port]
        #[arg(value_name = "PORT", value_parser = parse_port_arg)]
        port: Option<u16>,
        /// Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]
        #[arg(short = 'c', long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// List the profiles in the profiles file, one a line
    List {
        /// Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]
        #[arg(short = 'c', long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print a shell completion script
    Completions {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
    /// Print the man page knockr(1) (roff), or write every page into a directory
    Man {
        /// Write every page into DIR: knockr(1), one per subcommand, and the
        /// files' knockr-profiles(5) and knockr-knockd.toml(5)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run the knock server: watch traffic, match knock sequences, run commands
    #[cfg(feature = "server")]
    Knockd(KnockdArgs),
    /// Shared secrets for time-based knock sequences (docs/otp-sequences.md)
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// MikroTik RouterOS helpers
    Routeros {
        #[command(subcommand)]
        command: RouterosCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)
    New,
}

#[derive(Debug, Subcommand)]
pub enum RouterosCommand {
    /// Print a RouterOS script that makes the router detect a knock sequence
    /// by itself (staged address lists), opening ports to whoever completes it
    Rules(RulesArgs),
    /// Check that knockd can use each router of each [door.routeros]:
    /// reachable, its certificate, credentials, and the list readable and
    /// writable (exit 0 when every router is ready, 1 otherwise)
    #[cfg(feature = "server")]
    Check(CheckArgs),
}

/// `knockr routeros check`.
#[cfg(feature = "server")]
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  knockr routeros check -c /etc/knockr/knockd.toml")]
pub struct CheckArgs {
    /// The knockd configuration whose [door.routeros] tables to check
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        default_value = "/etc/knockr/knockd.toml"
    )]
    pub config: PathBuf,
}

/// `knockr routeros rules`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  knockr routeros rules home-router --wan WAN --protect 22,8291 > knock.rsc"
)]
pub struct RulesArgs {
    /// Profile whose sequence and delay to use
    #[arg(value_name = "PROFILE", required_unless_present = "sequence")]
    #[cfg_attr(feature = "dynamic-completion", arg(add = profile_candidates()))]
    pub profile: Option<String>,

    /// The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list
    #[arg(
        long,
        value_name = "PORT[:PROTO]",
        value_delimiter = ',',
        conflicts_with = "profile"
    )]
    pub sequence: Vec<String>,

    /// Interface list the knocks arrive on
    #[arg(long, value_name = "LIST", default_value = "WAN")]
    pub wan: String,

    /// TCP ports to open to a knocker, e.g. 22,8291
    #[arg(long, value_name = "PORT", value_delimiter = ',', required = true, value_parser = parse_port_arg)]
    pub protect: Vec<u16>,

    /// Address list a knocker lands on
    #[arg(long, value_name = "NAME", default_value = "knocked")]
    pub list: String,

    /// How long a knocker stays on the list (the router removes it itself)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::core::units::parse_duration)]
    pub timeout: Duration,

    /// Time allowed between two knocks [default: 10s, or 4x the profile's delay if longer]
    #[arg(long, value_name = "DURATION", value_parser = crate::core::units::parse_duration)]
    pub stage_timeout: Option<Duration>,

    /// Prefix of the chain, lists and comments [default: knockr-PROFILE]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Rules for ipv4, ipv6, or both (any)
    #[arg(long, value_name = "FAMILY", default_value = "any")]
    pub family: FamilyArg,

    /// Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `knockr knockd`: the server's command line.
#[cfg(feature = "server")]
#[derive(Debug, Args)]
#[command(after_help = KNOCKD_EXAMPLES)]
pub struct KnockdArgs {
    /// Server configuration: a knockr TOML file or a classic knockd.conf (told apart by content)
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        default_value = "/etc/knockr/knockd.toml"
    )]
    pub config: PathBuf,

    /// Capture on this interface ("any": all of them); repeatable; replaces the config's
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,

    /// Validate and lint the configuration, print what was found, and exit
    #[arg(long, conflicts_with_all = ["read", "dry_run"])]
    pub check: bool,

    /// Replay a capture file (pcap) instead of capturing live; its timestamps are the clock
    #[arg(long, value_name = "FILE")]
    pub read: Option<PathBuf>,

    /// Print the commands instead of running them (one-time sequence files are not changed)
    #[arg(long)]
    pub dry_run: bool,

    /// Log one JSON object per line instead of knockd-style lines
    #[arg(long)]
    pub json: bool,

    /// Also log debug lines
    #[arg(short, long)]
    pub verbose: bool,
}

#[cfg(feature = "server")]
const KNOCKD_EXAMPLES: &str = "\
Examples:
  knockr knockd -c /etc/knockr/knockd.toml          live, on the configured interfaces
  knockr knockd -c /etc/knockd.conf -i eth0         an existing knockd.conf, unchanged
  knockr knockd -c knockd.toml --check              validate and lint the config, exit
  knockr knockd -c knockd.toml --read knocks.pcap --dry-run --json
                                                    replay a capture offline

Exit status:
  0  stopped by SIGTERM/SIGINT after running every pending stop command (or --check/--read done)
  1  a capture failed (interface gone), or a command-line action failed
  2  the configuration is invalid";

/// `-n`: the protocol of ports given without one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// A TCP SYN (a connection attempt).
    #[default]
    Tcp,
    /// One UDP datagram.
    Udp,
}

impl From<NetworkArg> for Proto {
    fn from(arg: NetworkArg) -> Proto {
        match arg {
            NetworkArg::Tcp => Proto::Tcp,
            NetworkArg::Udp => Proto::Udp,
        }
    }
}

/// `--mode`: how a TCP knock is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One SYN; the socket is abandoned before the kernel would retransmit it.
    Syn,
    /// A full connect (the kernel may retransmit), for networks whose proxies
    /// swallow bare SYNs.
    Connect,
}

impl From<ModeArg> for Mode {
    fn from(arg: ModeArg) -> Mode {
        match arg {
            ModeArg::Syn => Mode::Syn,
            ModeArg::Connect => Mode::Connect,
        }
    }
}

/// `--family` of `routeros rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FamilyArg {
    /// Rules for both IPv4 and IPv6.
    Any,
    Ipv4,
    Ipv6,
}

impl From<FamilyArg> for Family {
    fn from(arg: FamilyArg) -> Family {
        match arg {
            FamilyArg::Any => Family::Any,
            FamilyArg::Ipv4 => Family::Ipv4,
            FamilyArg::Ipv6 => Family::Ipv6,
        }
    }
}

impl KnockArgs {
    /// The knock as the client's planner takes it.
    pub(crate) fn request(&self) -> crate::client::plan::Request {
        crate::client::plan::Request {
            targets: self.targets.clone(),
            ports: self.ports.clone(),
            network: self.network.into(),
            delay: self.delay,
            timeout: self.timeout,
            check: self.check,
            mode: self.mode.map(Mode::from),
            ipv4: self.ipv4,
            ipv6: self.ipv6,
            source: self.source,
            interface: self.interface.clone(),
            all_addresses: self.all_addresses,
            retry: self.retry,
            every: self.every,
            dry_run: self.dry_run,
            verbose: self.verbose,
            quiet: self.quiet,
            json: self.json,
            color: match self.color {
                ColorWhen::Auto => None,
                ColorWhen::Always => Some(true),
                ColorWhen::Never => Some(false),
            },
        }
    }
}

/// When the summary is coloured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    #[default]
    Auto,
    Always,
    Never,
}

/// Shells `knockr completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

fn parse_port_arg(text: &str) -> Result<u16, String> {
    crate::core::knock::parse_port(text).map_err(|err| err.to_string())
}

/// Profile names for dynamic completion, wherever a profile goes. The file
/// is the one the completed command line would use: its last `-c FILE` or
/// `--config FILE`, else `$KNOCKR_CONFIG`, else the default path. Any error
/// just means no candidates.
#[cfg(feature = "dynamic-completion")]
fn profile_candidates() -> clap_complete::engine::ArgValueCandidates {
    use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
    ArgValueCandidates::new(|| {
        // The engine hands the closure no arguments; the words being
        // completed are this process's own, after the first `--`
        // (`COMPLETE=bash knockr -- knockr connect -c FILE ...`).
        let words: Vec<std::ffi::OsString> = std::env::args_os()
            .skip_while(|word| word != "--")
            .skip(1)
            .collect();
        let path = config_in_words(&words)
            .or_else(|| std::env::var_os("KNOCKR_CONFIG").map(PathBuf::from))
            .or_else(crate::config::profiles::default_path);
        let Some(file) = path.and_then(|path| crate::config::profiles::Profiles::load(&path).ok())
        else {
            return Vec::new();
        };
        file.profiles
            .keys()
            // The shell inserts a candidate as it is: a name with a control
            // character (ESC, a newline that splits into a fake candidate) is
            // skipped rather than escaped, since an escaped spelling would
            // not be a profile name.
            .filter(|name| !name.chars().any(char::is_control))
            .map(CompletionCandidate::new)
            .collect()
    })
}

/// The last `-c FILE`, `-cFILE`, `--config FILE` or `--config=FILE` among the
/// words of a command line (the program name first), before a `--`.
#[cfg(feature = "dynamic-completion")]
fn config_in_words(words: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut config = None;
    let mut words = words.iter().skip(1);
    while let Some(word) = words.next() {
        let Some(word) = word.to_str() else { continue };
        if word == "--" {
            break;
        }
        if word == "-c" || word == "--config" {
            config = words.next().map(PathBuf::from).or(config);
        } else if let Some(value) = word.strip_prefix("--config=") {
            config = Some(PathBuf::from(value));
        } else if let Some(value) = word.strip_prefix("-c").filter(|v| !v.is_empty()) {
            // `-cFILE`; a cluster like `-vc FILE` is not recognised (rare when completing).
            config = Some(PathBuf::from(value));
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[cfg(feature = "dynamic-completion")]
    #[test]
    fn the_completed_line_names_its_profiles_file_in_every_spelling() {
        let config = |line: &str| {
            let words: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            config_in_words(&words).map(|path| path.display().to_string())
        };
        assert_eq!(config("knockr h"), None);
        assert_eq!(
            config("knockr connect -c a.toml h").as_deref(),
            Some("a.toml")
        );
        assert_eq!(
            config("knockr --config=a.toml -cb.toml h").as_deref(),
            Some("b.toml")
        );
        assert_eq!(
            config("knockr -c a.toml routeros rules --config b.toml").as_deref(),
            Some("b.toml")
        );
        assert_eq!(
            config("knockr -- -c a.toml"),
            None,
            "after -- it is a profile"
        );
    }
}
