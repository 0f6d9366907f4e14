//! Command-line definitions only. The doc comments here are the `--help` text;
//! `client::plan` takes what `KnockArgs::request` and `ConnectArgs::request`
//! give, so nothing else sees clap. Every flag is honoured where it is
//! written or refused: one written before a subcommand is a usage error
//! ([`Cli::try_parse_args_from`]).

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::core::knock::{Family, Mode, Proto};

const EXAMPLES: &str = "\
Examples:
  knockr home-router office-router           knock every host of two profiles, concurrently
  knockr -p 7000 -p 8000:udp -p 9000 -d 200ms gw.example.net
                                             ad-hoc: no profile, ports on the command line
  knockr gw.example.net 7000 8000:udp 9000   the same, as the C knock writes it
  knockr gw.example.net 7000,8000,9000       the same, as the Go knockr writes it
  knockr --check 22 --json office-router     knock, verify port 22 opened, report as JSON
  knockr --dry-run home-router               show what would be sent, send nothing
  knockr connect home-router 22              knock, then relay stdin/stdout to port 22 (ssh)
  knockr list                                the profiles in the profiles file
  knockr completions zsh > _knockr           shell completion script

Limits: -d and -t 0s to 1m, --every 1s to 24h, --retry 0 to 10; in the profiles
file delay and timeout 0s to 1m, check_timeout 1ms to 5m.

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

    #[command(flatten)]
    pub profiles: ProfilesFile,
}

/// `-c FILE`: every subcommand takes it, wherever it is written.
#[derive(Debug, Args)]
#[group(skip)]
pub struct ProfilesFile {
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

/// What `knockr --version` prints, as clap renders it (a test checks), so
/// that it is answered before clap builds anything.
const VERSION_LINE: &str = concat!("knockr ", env!("CARGO_PKG_VERSION"), "\n");

impl Cli {
    /// Parses the process's arguments as clap's `parse` does (exiting 2 on
    /// a usage error), see [`Cli::try_parse_args_from`]. `knockr --version`
    /// (or `-V`) alone is answered here, byte for byte as clap would, before
    /// clap builds the command tree, which would cost it most of its start-up.
    pub fn parse_args() -> Cli {
        let args: Vec<OsString> = std::env::args_os().collect();
        if let [_, flag] = &args[..]
            && (flag == "--version" || flag == "-V")
        {
            // As clap's own exit: a failed write is ignored, the status is 0.
            let mut stdout = std::io::stdout().lock();
            let _ = stdout
                .write_all(VERSION_LINE.as_bytes())
                .and_then(|()| stdout.flush());
            std::process::exit(0);
        }
        Cli::try_parse_args_from(args).unwrap_or_else(|err| err.exit())
    }

    /// Parses `args`, and refuses a knocking flag written before a
    /// subcommand (`knockr --dry-run connect ...`): the subcommand would
    /// never see it, so it would be silently ignored. The error names the
    /// flag and where it goes.
    ///
    /// A command line that names no subcommand is first parsed by
    /// [`KnockLine`], which clap builds without the subcommands' arguments;
    /// whatever it does not take (an error, `--help`, `--version`) is parsed
    /// again by the whole [`Cli`], which prints the error or the help.
    pub fn try_parse_args_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        if !names_a_subcommand(&args)
            && let Some(line) = KnockLine::try_parse_knock_line(&args)
        {
            return Ok(Cli {
                command: None,
                knock: line.knock,
                profiles: line.profiles,
            });
        }
        Cli::try_parse_whole(args)
    }

    /// [`Cli::try_parse_args_from`] with the whole command tree.
    fn try_parse_whole(args: Vec<OsString>) -> Result<Cli, clap::Error> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let mut command = Cli::command();
        let mut matches = command.try_get_matches_from_mut(args)?;
        if let Some(message) = flag_before_subcommand(&command, &matches) {
            return Err(command.error(clap::error::ErrorKind::ArgumentConflict, message));
        }
        Cli::from_arg_matches_mut(&mut matches)
    }
}

/// [`Cli`]'s own arguments without its subcommands, which are most of what
/// clap builds: what a knocking command line (`knockr -p 7000 HOST`) is
/// parsed with. Never seen by a user: anything it refuses, and every
/// `--help`, is parsed again by [`Cli`].
#[derive(Debug, Parser)]
#[command(
    name = "knockr",
    arg_required_else_help = true,
    // `--help` and `--version` go to the whole tree, which answers them.
    disable_help_flag = true,
    disable_version_flag = true
)]
struct KnockLine {
    #[command(flatten)]
    knock: KnockArgs,

    #[command(flatten)]
    profiles: ProfilesFile,
}

impl KnockLine {
    /// The line parsed, or `None` for the whole tree to parse it again.
    ///
    /// The command and its matches are not dropped: freeing what clap built
    /// costs about 2 k instructions at the start of every knock, just
    /// before the process exits and the kernel takes it all back at once
    /// (BENCHMARKS.md, "Start-up in instructions"). Each call keeps a few
    /// kilobytes, and a knocking process parses its line once.
    fn try_parse_knock_line(args: &[OsString]) -> Option<KnockLine> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let mut command = std::mem::ManuallyDrop::new(KnockLine::command());
        let mut matches = std::mem::ManuallyDrop::new(command.try_get_matches_from_mut(args).ok()?);
        // `_mut` takes the values out; `from_arg_matches` would copy the matches first.
        KnockLine::from_arg_matches_mut(&mut matches).ok()
    }
}

/// Whether a word of `args` (after the program's name) could be taken by
/// clap as a subcommand: [`KnockLine`] cannot parse such a line. Words
/// that are values (`-c list`) count too, which only costs a whole parse.
fn names_a_subcommand(args: &[OsString]) -> bool {
    args.iter().skip(1).any(|word| {
        word.to_str()
            .is_some_and(|word| word == "help" || <Command as Subcommand>::has_subcommand(word))
    })
}

/// The sentence about the first knocking flag given before a subcommand,
/// if one was: where it goes, or that the subcommand does not take it.
fn flag_before_subcommand(command: &clap::Command, matches: &clap::ArgMatches) -> Option<String> {
    let (mut path, mut leaf, mut sub) = (Vec::new(), command, matches.subcommand()?);
    loop {
        let (name, sub_matches) = sub;
        path.push(name);
        leaf = leaf.find_subcommand(name)?;
        match sub_matches.subcommand() {
            Some(next) => sub = next,
            None => break,
        }
    }
    let given = command.get_arguments().find(|arg| {
        let id = arg.get_id().as_str();
        // -c is global: every subcommand takes it, wherever it is written.
        !arg.is_global_set()
            && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    })?;
    let (short, long) = (given.get_short(), given.get_long());
    let flag = match (short, long) {
        (Some(short), Some(long)) => format!("-{short}/--{long}"),
        (None, Some(long)) => format!("--{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, None) => given.get_id().to_string(),
    };
    let path = path.join(" ");
    let taken = leaf.get_arguments().any(|arg| {
        (long.is_some() && arg.get_long() == long) || (short.is_some() && arg.get_short() == short)
    });
    Some(if taken {
        let written = long.map_or_else(|| flag.clone(), |l| format!("--{l}"));
        format!(
            "{flag} is written before `{path}`: a subcommand's flags go after its name, e.g. \
             knockr {path} {written} ..."
        )
    } else {
        format!(
            "{flag} is a flag of knocking (knockr [FLAGS] TARGET...), which `knockr {path}` does not take: \
             see knockr {path} --help"
        )
    })
}

/// What to knock and how; flags override the profiles' settings.
#[derive(Debug, Args, Default)]
pub struct KnockArgs {
    /// Profiles to knock; or a host then its knocks, as the C knock and the
    /// Go knockr write them (HOST 7000 8000:udp, HOST 7000,8000); with
    /// -p/--port, host names or IP addresses
    #[arg(value_name = "TARGET")]
    #[cfg_attr(feature = "dynamic-completion", arg(add = profile_candidates()))]
    pub targets: Vec<String>,

    #[command(flatten)]
    pub how: HowArgs,

    /// After the last knock, check that this TCP port accepts connections
    #[arg(long, value_name = "PORT", value_parser = parse_port_arg)]
    pub check: Option<u16>,

    /// Knock every address of each host, not only the one ssh would use
    #[arg(long)]
    pub all_addresses: bool,

    /// Knock again every DURATION (1s to 24h) until stopped (SIGINT/SIGTERM
    /// stop it at once, even mid-round), and at once when this machine's
    /// source address towards the targets changes
    #[arg(long, value_name = "DURATION", value_parser = parse_every, conflicts_with = "dry_run")]
    pub every: Option<Duration>,

    /// Print nothing but errors; the exit status tells the result (-s as
    /// the Go knockr's silent flag)
    #[arg(short, long, visible_short_alias = 's', conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print the results as one JSON document on stdout
    #[arg(long)]
    pub json: bool,

    /// Colour in the summary: auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,
}

/// How each host is knocked: the flags knocking and `connect` share.
#[derive(Debug, Args, Default)]
pub struct HowArgs {
    /// Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT[:PROTO]",
        value_delimiter = ','
    )]
    pub ports: Vec<String>,

    /// Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = parse_delay)]
    pub delay: Option<Duration>,

    /// How long to wait for an answer to each knock, 0s to 1m [default: 200ms]
    #[arg(short = 't', long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// How long DNS may take for the host names, from the start of the run,
    /// 1ms to 1m (names in /etc/hosts never wait) [default: the profiles'
    /// resolve_timeout, else 5s]
    #[arg(long, value_name = "DURATION", value_parser = parse_resolve_timeout)]
    pub resolve_timeout: Option<Duration>,

    /// Protocol for ports given without one
    #[arg(short = 'n', long, value_name = "PROTO", default_value = "tcp")]
    pub network: NetworkArg,

    /// Ports given without a protocol are UDP (the C knock's -u; as -n udp)
    #[arg(short = 'u', long, conflicts_with = "network")]
    pub udp: bool,

    /// How TCP knocks are sent: a bare SYN, or a full connect (for networks
    /// whose proxies swallow bare SYNs) [default: syn]
    #[arg(long, value_name = "MODE")]
    pub mode: Option<ModeArg>,

    /// Send the knocks and the check from this address of this machine
    /// (multi-homed machines, VPNs)
    #[arg(long, value_name = "ADDR")]
    pub source: Option<std::net::IpAddr>,

    /// Send the knocks and the check through this interface of this machine (SO_BINDTODEVICE)
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,

    /// When the check finds the port closed, knock again, up to N (at most
    /// 10) more times (waiting 1s, 2s, 4s, ... up to 8s between rounds)
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_retry)]
    pub retry: u32,

    /// Use IPv4 addresses only
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use IPv6 addresses only
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Print each knock as it is sent, on stderr
    #[arg(short, long)]
    pub verbose: bool,

    /// Resolve and show what would be sent, but send nothing (and connect nothing)
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Knock a profile (or with -p a host), wait until PORT answers, then
    /// relay stdin/stdout to it (for ssh: ProxyCommand knockr connect %n)
    Connect(ConnectArgs),
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
    /// Linux nftables helpers
    Nft {
        #[command(subcommand)]
        command: NftCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum NftCommand {
    /// Print an nftables ruleset (table inet knockr) that makes the kernel detect a
    /// knock sequence by itself (timed sets), opening ports to whoever completes it;
    /// load it with nft -f (again to replace it)
    Rules(Box<NftRulesArgs>),
}

/// `knockr nft rules`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  knockr nft rules home --protect 22 > /etc/nftables.d/knockr.nft\n  \
                  knockr nft rules --sequence 7000,8000:udp,9000 --protect 22,51820:udp | nft -f -\n  \
                  knockr nft rules --for-knockd --protect 22 | nft -f -"
)]
pub struct NftRulesArgs {
    /// Profile whose sequence and delay to use (not needed with --for-knockd)
    #[arg(value_name = "PROFILE", required_unless_present_any = ["sequence", "for_knockd"])]
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

    /// Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,51820:udp,60000-60010
    #[arg(long, value_name = "PORT", value_delimiter = ',', required = true)]
    pub protect: Vec<String>,

    /// Only knocks arriving on this interface count [default: any interface]
    #[arg(long, value_name = "IFNAME")]
    pub interface: Option<String>,

    /// Name of the table (table inet NAME), which loading again replaces
    #[arg(long, value_name = "NAME", default_value = "knockr")]
    pub table: String,

    /// Base name of the sets a knocker lands in (NAME_v4 and NAME_v6)
    #[arg(long, value_name = "NAME", default_value = "knocked")]
    pub set: String,

    /// How long a knocker stays in the set (the kernel removes it itself)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::core::units::parse_duration)]
    pub timeout: Duration,

    /// Time allowed between two knocks [default: 10s, or 4x the profile's delay if longer]
    #[arg(long, value_name = "DURATION", value_parser = crate::core::units::parse_duration)]
    pub stage_timeout: Option<Duration>,

    /// How long a source that began the sequence and then sent anything else (a scan) is
    /// blocked from knocking
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = crate::core::units::parse_duration)]
    pub block_for: Duration,

    /// Generate a sequence a port scan completes easily (one knock, or one protocol in
    /// ascending or descending order), with a warning, instead of refusing it
    #[arg(long)]
    pub allow_weak: bool,

    /// Print only what a [door.nftables] door needs: the table, its two sets, and the
    /// input chain that opens the --protect ports to the addresses in them (knockd
    /// detects the knock, so no sequence is needed)
    #[arg(long)]
    pub for_knockd: bool,

    /// Sets and rules for ipv4, ipv6, or both (any)
    #[arg(long, value_name = "FAMILY", default_value = "any")]
    pub family: FamilyArg,

    /// Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `knockr connect`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  knockr connect home-router 22\n  knockr connect -p 7000,8000:udp -4 gw.example.net 22\n  ssh -o ProxyCommand='knockr connect %n %p' home-router"
)]
pub struct ConnectArgs {
    /// The profile to knock, whose first host is connected to; with -p, a host name or address
    #[arg(value_name = "TARGET")]
    #[cfg_attr(feature = "dynamic-completion", arg(add = profile_candidates()))]
    pub target: String,

    /// The port to connect to [default: the profile's `check` port]
    #[arg(value_name = "PORT", value_parser = parse_port_arg)]
    pub port: Option<u16>,

    #[command(flatten)]
    pub how: HowArgs,

    /// Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    Rules(Box<RulesArgs>),
    /// Check that knockd can use each router of each [door.routeros]:
    /// reachable, its certificate, credentials, and the list readable and
    /// writable (exit 0 when every router is ready, 1 otherwise)
    #[cfg(feature = "server")]
    Check(CheckArgs),
    /// Install the rules of `routeros rules` on one or more routers over the
    /// REST API, or take them out with --remove; a second run changes nothing
    /// (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)
    #[cfg(feature = "server")]
    Apply(Box<ApplyArgs>),
}

/// `knockr routeros apply`.
#[cfg(feature = "server")]
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  knockr routeros apply home-router --protect 22,8291 -c /etc/knockr/knockd.toml --door winbox\n  \
                  knockr routeros apply --sequence 7000,8000:udp,9000 --protect 22 --url https://192.168.88.1 \\\n      \
                  --user knockr --password-file /etc/knockr/router.pass --fingerprint sha256:AB:CD:...\n  \
                  knockr routeros apply home-router --protect 22 --url https://192.168.88.1 --user knockr \\\n      \
                  --password-env ROUTER_PASS --ca-file ca.pem --dry-run\n  \
                  knockr routeros apply --remove --tag knockr-home-router -c /etc/knockr/knockd.toml --door winbox"
)]
pub struct ApplyArgs {
    /// The rules, as `routeros rules` takes them (--undo is --remove here)
    #[command(flatten)]
    pub rules: RuleFlags,

    /// Take out every rule and stage list entry of the tag instead
    #[arg(long = "remove", id = "undo", conflicts_with_all = ["sequence", "protect", "place_before", "allow_weak"])]
    pub remove: bool,

    /// Print what would change on each router, change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// The door of -c's knockd configuration whose [door.routeros] names the routers,
    /// the user, the password and the certificate check
    #[arg(long, value_name = "NAME", conflicts_with_all = ["url", "user", "password_file", "password_env", "ca_file", "fingerprint", "insecure"], required_unless_present = "url")]
    pub door: Option<String>,

    /// The knockd configuration that --door names a door of
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        default_value = "/etc/knockr/knockd.toml"
    )]
    pub config: PathBuf,

    /// A router, as http(s)://HOST[:PORT] (repeatable)
    #[arg(long, value_name = "URL", requires = "user")]
    pub url: Vec<String>,

    /// The RouterOS user (its group needs read,write,api,rest-api)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// File whose first line is the password (mode 600, yours or root's)
    #[arg(long, value_name = "FILE", conflicts_with = "password_env", required_unless_present_any = ["door", "password_env"])]
    pub password_file: Option<PathBuf>,

    /// Environment variable holding the password
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,

    /// Trust only this CA (PEM) for the routers' certificates
    #[arg(long, value_name = "FILE", conflicts_with_all = ["fingerprint", "insecure"])]
    pub ca_file: Option<PathBuf>,

    /// Trust the certificate with this SHA-256 fingerprint (`routeros check` shows it)
    #[arg(long, value_name = "sha256:HEX", conflicts_with = "insecure")]
    pub fingerprint: Option<String>,

    /// Do not check the certificate at all (anyone on the path can take the password)
    #[arg(long)]
    pub insecure: bool,

    /// How long each request to a router is retried while it fails (5xx, unreachable)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::core::units::parse_duration)]
    pub retry: Duration,

    /// Profiles file for PROFILE [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]
    #[arg(long, value_name = "FILE", env = "KNOCKR_CONFIG")]
    pub profiles: Option<PathBuf>,
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
    after_help = "Examples:\n  knockr routeros rules home-router --wan WAN --protect 22,8291 > knock.rsc\n  \
                  knockr routeros rules --sequence 7000,8000:udp,9000 --protect 22,51820:udp\n  \
                  knockr routeros rules home-router --protect 22 --place-before \"my: drop\"\n  \
                  knockr routeros rules home-router --undo > unknock.rsc"
)]
pub struct RulesArgs {
    /// The rules
    #[command(flatten)]
    pub rules: RuleFlags,

    /// Print the script that removes the rules and lists of this tag instead
    #[arg(long, conflicts_with_all = ["sequence", "protect", "place_before", "allow_weak"])]
    pub undo: bool,

    /// Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The rules' flags, shared by `routeros rules` and `routeros apply`.
#[derive(Debug, Args)]
pub struct RuleFlags {
    /// Profile whose sequence and delay to use
    #[arg(value_name = "PROFILE", required_unless_present_any = ["sequence", "undo"])]
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

    /// Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,8291,51820:udp,60000-60010
    #[arg(
        long,
        value_name = "PORT",
        value_delimiter = ',',
        required_unless_present = "undo"
    )]
    pub protect: Vec<String>,

    /// Address list a knocker lands on
    #[arg(long, value_name = "NAME", default_value = "knocked")]
    pub list: String,

    /// How long a knocker stays on the list (the router removes it itself)
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::core::units::parse_duration)]
    pub timeout: Duration,

    /// Time allowed between two knocks [default: 10s, or 4x the profile's delay if longer]
    #[arg(long, value_name = "DURATION", value_parser = crate::core::units::parse_duration)]
    pub stage_timeout: Option<Duration>,

    /// How long a source that began the sequence and then sent anything else (a scan) is
    /// blocked from knocking
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = crate::core::units::parse_duration)]
    pub block_for: Duration,

    /// Comment of the input rule the accept goes before [default: the default configuration's
    /// drop rule if there is one, else the top of the input chain]
    #[arg(long, value_name = "COMMENT")]
    pub place_before: Option<String>,

    /// Generate a sequence a port scan completes easily (one knock, or one protocol in
    /// ascending or descending order), with a warning, instead of refusing it
    #[arg(long)]
    pub allow_weak: bool,

    /// Tag of the chain, lists and comments, by which importing again (or apply) replaces
    /// the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]
    #[arg(long, visible_alias = "name", value_name = "NAME")]
    pub tag: Option<String>,

    /// Rules under /ip (ipv4), /ipv6 (ipv6), or both (any): knockers of either family
    #[arg(long, value_name = "FAMILY", default_value = "any")]
    pub family: FamilyArg,
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

    /// Keep open knockers and used time-based sequences in this file; replaces the config's state_file (--read and --dry-run use none)
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    /// Validate the configuration as a start would (files, state file, kernel filter), print the doors and warnings, and exit: 0 only if it would start
    #[arg(long, conflicts_with_all = ["read", "dry_run"])]
    pub check: bool,

    /// Print a classic knockd.conf as knockr's TOML (the same doors, commands and timeouts, with comments on what TOML adds), and exit
    #[arg(long, value_name = "FILE", conflicts_with_all = ["check", "read", "dry_run"])]
    pub convert: Option<PathBuf>,

    /// Replay a capture file (pcap) instead of capturing live; its timestamps are the clock
    #[arg(long, value_name = "FILE")]
    pub read: Option<PathBuf>,

    /// Print the commands instead of running them (one-time sequence files are not changed)
    #[arg(long)]
    pub dry_run: bool,

    /// Log one JSON object per line instead of knockd-style lines; with --check, print the configuration as one JSON document
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
  knockr knockd -c knockd.toml --check --json       the doors as JSON, to diff configurations
  knockr knockd --convert /etc/knockd.conf > knockd.toml
                                                    the same doors in knockr's TOML
  knockr knockd -c knockd.toml --read knocks.pcap --dry-run --json
                                                    replay a capture offline

Exit status:
  0  stopped by SIGTERM/SIGINT after running every pending stop command (or --check/--read done)
  1  a capture failed (interface gone), the state file is corrupt or held by another knockd,
     or a command-line action failed
  2  the configuration is invalid (--check: a start would fail)

Signals:
  TERM, INT  run every pending stop command and the teardowns, then exit 0
  HUP        reopen the log file, then reload the configuration
  USR1       reopen the log file (logrotate's postrotate)";

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
    /// Rules for both /ip and /ipv6, so knockers of either family are seen.
    Any,
    /// Rules under /ip only.
    Ipv4,
    /// Rules under /ipv6 only.
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
            check: self.check,
            all_addresses: self.all_addresses,
            every: self.every,
            quiet: self.quiet,
            json: self.json,
            color: match self.color {
                ColorWhen::Auto => None,
                ColorWhen::Always => Some(true),
                ColorWhen::Never => Some(false),
            },
            ..self.how.request(&self.targets)
        }
    }
}

impl ConnectArgs {
    /// The knock before the connection, as the client's planner takes it;
    /// the port is [`ConnectArgs::port`], which `client::connect` makes the check.
    pub(crate) fn request(&self) -> crate::client::plan::Request {
        self.how.request(std::slice::from_ref(&self.target))
    }
}

impl HowArgs {
    /// A request to knock `targets` as these flags say, nothing else asked.
    fn request(&self, targets: &[String]) -> crate::client::plan::Request {
        crate::client::plan::Request {
            targets: targets.to_vec(),
            ports: self.ports.clone(),
            network: if self.udp {
                Proto::Udp
            } else {
                self.network.into()
            },
            delay: self.delay,
            timeout: self.timeout,
            resolve_timeout: self.resolve_timeout,
            mode: self.mode.map(Mode::from),
            ipv4: self.ipv4,
            ipv6: self.ipv6,
            source: self.source,
            interface: self.interface.clone(),
            retry: self.retry,
            dry_run: self.dry_run,
            verbose: self.verbose,
            ..crate::client::plan::Request::default()
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

/// `-d`: the profiles' `delay`, with its bounds.
fn parse_delay(text: &str) -> Result<Duration, String> {
    crate::config::profiles::DELAY.read_flag(text)
}

/// `-t`: the profiles' `timeout`, with its bounds.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::config::profiles::TIMEOUT.read_flag(text)
}

/// `--resolve-timeout`: the profiles' `resolve_timeout`, with its bounds.
fn parse_resolve_timeout(text: &str) -> Result<Duration, String> {
    crate::config::profiles::RESOLVE_TIMEOUT.read_flag(text)
}

/// `--every`: at least a second (`--every 1ms` knocked 860 rounds in two
/// seconds), at most a day (more is a typo: the door would stay shut).
const EVERY: crate::config::value::DurationKey = crate::config::value::DurationKey {
    name: "--every",
    range: Duration::from_secs(1)..=Duration::from_secs(24 * 60 * 60),
    whole_seconds: false,
    expected: "a duration from 1s to 24h, e.g. 5m",
};

fn parse_every(text: &str) -> Result<Duration, String> {
    EVERY.read_flag(text)
}

/// The most rounds `--retry` adds: ten rounds, 8 s apart at most, already
/// keep a cron job waiting over a minute for a door that stays shut.
const MAX_RETRY: u32 = 10;

fn parse_retry(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n <= MAX_RETRY => Ok(n),
        _ => Err(format!(
            "{} is not usable: expected a number of rounds from 0 to {MAX_RETRY}",
            text.trim()
        )),
    }
}

/// Profile names for dynamic completion, wherever a profile goes. The file
/// is the one the completed command line would use: the one it names
/// ([`config_in_words`]), else `$KNOCKR_CONFIG`, else the default path. Any
/// error just means no candidates.
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

/// The profiles file a command line names (its words, the program name
/// first, up to a `--`), read as clap reads them: the last value of the
/// profiles-file flag of the (sub)command it is written in (`-c`/`--config`,
/// `routeros apply`'s `--profiles`), written `-c FILE`, `-cFILE`, `-c=FILE`,
/// `--config FILE`, `--config=FILE`, or at the end of a group of short flags
/// (`-vc FILE`, `-vcFILE`); the value of any other flag is skipped, so
/// `-pc` (`-p c`) names no file. The words being completed are raw, so a
/// value that is a word of its own and starts with `~/` is read from `$HOME`,
/// as the shell expands it when the line runs (and as it does not expand
/// `--config=~/...`).
#[cfg(feature = "dynamic-completion")]
fn config_in_words(words: &[std::ffi::OsString]) -> Option<PathBuf> {
    use clap::CommandFactory as _;
    let mut root = Cli::command();
    // Built, each subcommand holds the global -c too.
    root.build();
    let mut command = &root;
    let mut config = None;
    let mut words = words.iter().skip(1).map(|word| word.to_str());
    while let Some(word) = words.next() {
        let Some(word) = word else { continue };
        if word == "--" {
            break;
        }
        // The flag this word gives a value to, and the value if written in it.
        let (arg, inline) = if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let arg = command.get_arguments().find(|arg| {
                arg.get_long_and_visible_aliases()
                    .is_some_and(|longs| longs.contains(&name))
            });
            (arg, value)
        } else if let Some(group) = word.strip_prefix('-').filter(|group| !group.is_empty()) {
            // clap reads a group flag by flag; the first that takes a value
            // takes the rest of the word (after an `=`), else the next word.
            let mut found = (None, None);
            for (at, short) in group.char_indices() {
                let Some(arg) = command.get_arguments().find(|arg| {
                    arg.get_short_and_visible_aliases()
                        .is_some_and(|shorts| shorts.contains(&short))
                }) else {
                    break;
                };
                if arg.get_action().takes_values() {
                    let rest = &group[at + short.len_utf8()..];
                    let rest = rest.strip_prefix('=').unwrap_or(rest);
                    found = (Some(arg), Some(rest).filter(|rest| !rest.is_empty()));
                    break;
                }
            }
            found
        } else {
            if let Some(sub) = command.find_subcommand(word) {
                command = sub;
            }
            continue;
        };
        let Some(arg) = arg.filter(|arg| arg.get_action().takes_values()) else {
            continue;
        };
        // The shell expands `~/` at the start of a word only: `-c ~/p.toml`
        // runs with $HOME's file, `--config=~/p.toml` with a `~` directory.
        let value = match inline {
            Some(value) => Some(PathBuf::from(value)),
            None => words.next().flatten().map(expand_home),
        };
        if is_profiles_file(command, arg) && value.is_some() {
            config = value;
        }
    }
    config
}

/// Whether `arg` names the profiles file in `command`: `routeros apply`'s
/// `--profiles` (its `-c` is knockd's configuration), everywhere else `-c`.
#[cfg(feature = "dynamic-completion")]
fn is_profiles_file(command: &clap::Command, arg: &clap::Arg) -> bool {
    let has_profiles = command
        .get_arguments()
        .any(|arg| arg.get_id() == "profiles");
    arg.get_id() == if has_profiles { "profiles" } else { "config" }
}

/// A word `~/x.toml` as the shell expands it: `$HOME/x.toml` (unchanged
/// without `$HOME`; `~user/` is left alone).
#[cfg(feature = "dynamic-completion")]
fn expand_home(value: &str) -> PathBuf {
    match (value.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
        KnockLine::command().debug_assert();
    }

    #[test]
    fn version_line_is_what_clap_prints() {
        assert_eq!(Cli::command().render_version(), VERSION_LINE);
    }

    /// `names_a_subcommand` knows every word clap takes as a subcommand, so
    /// [`KnockLine`] never parses a line that names one.
    #[test]
    fn every_subcommand_name_is_known_without_building_the_tree() {
        let mut command = Cli::command();
        command.build();
        for sub in command.get_subcommands() {
            let name = sub.get_name();
            assert!(
                names_a_subcommand(&["knockr".into(), name.into()]),
                "{name}"
            );
            // has_subcommand does not know aliases: a new one needs a check here.
            assert_eq!(sub.get_all_aliases().count(), 0, "{name} has an alias");
        }
        assert!(!names_a_subcommand(&[
            "knockr".into(),
            "home-router".into()
        ]));
    }

    /// A knocking command line parses to the same [`Cli`] through
    /// [`KnockLine`] as through the whole tree, and what the short parse
    /// refuses is the whole tree's error (or help).
    #[test]
    fn knock_line_parses_as_the_whole_tree_does() {
        let lines: &[&[&str]] = &[
            &[
                "-q",
                "-d",
                "0s",
                "-p",
                "47301:udp,47302:udp,47303:udp",
                "127.0.0.1",
            ],
            &["home-router", "office-router"],
            &["gw.example.net", "7000", "8000:udp", "9000"],
            &["--check", "22", "--json", "-c", "p.toml", "office-router"],
            &[
                "--dry-run",
                "-v",
                "-4",
                "-u",
                "--retry",
                "2",
                "--color",
                "never",
                "gw",
            ],
            &[
                "-s",
                "--mode",
                "connect",
                "--source",
                "127.0.0.1",
                "--interface",
                "lo",
                "gw",
            ],
            &[
                "--every",
                "1m",
                "--all-addresses",
                "-t",
                "1s",
                "-n",
                "udp",
                "gw",
            ],
            &["-c", "list", "gw"],
            &["--", "list"],
        ];
        for line in lines {
            let args: Vec<OsString> = std::iter::once("knockr")
                .chain(line.iter().copied())
                .map(OsString::from)
                .collect();
            let short = Cli::try_parse_args_from(args.clone()).unwrap();
            let whole = Cli::try_parse_whole(args).unwrap();
            assert_eq!(format!("{short:?}"), format!("{whole:?}"), "{line:?}");
        }
        for line in [
            &[][..],
            &["--help"],
            &["-h"],
            &["--version"],
            &["-V", "gw"],
            &["--bogus", "gw"],
            &["-q", "-v", "gw"],
            &["-d", "2m", "gw"],
            &["--dry-run", "--every", "1m", "gw"],
        ] {
            let args: Vec<OsString> = std::iter::once("knockr")
                .chain(line.iter().copied())
                .map(OsString::from)
                .collect();
            let short = Cli::try_parse_args_from(args.clone()).unwrap_err();
            let whole = Cli::try_parse_whole(args).unwrap_err();
            assert_eq!(short.kind(), whole.kind(), "{line:?}");
            assert_eq!(short.to_string(), whole.to_string(), "{line:?}");
        }
    }

    /// A value each knocking flag takes, so it can be written before a
    /// subcommand; a new flag without one fails here, so it is thought about.
    fn sample_value(id: &str) -> Option<&'static str> {
        Some(match id {
            "ports" | "check" => "7000",
            "delay" | "timeout" | "resolve_timeout" => "1s",
            "every" => "1m",
            "network" => "udp",
            "mode" => "connect",
            "source" => "127.0.0.1",
            "interface" => "lo",
            "retry" => "1",
            "color" => "never",
            "udp" | "all_addresses" | "quiet" | "json" | "ipv4" | "ipv6" | "verbose"
            | "dry_run" => return None,
            other => panic!("no sample value for --{other}: add one"),
        })
    }

    /// Reproduced: `knockr --dry-run connect home-router 22` sent the knocks
    /// and connected; `--source`, `-v`, `-p` before `connect` were ignored.
    #[test]
    fn regression_every_knocking_flag_before_a_subcommand_was_silently_ignored() {
        let command = Cli::command();
        let subcommands: [&[&str]; 7] = [
            &["connect", "home", "22"],
            &["list"],
            &["man"],
            &["completions", "bash"],
            &["secret", "new"],
            &["routeros", "rules", "--sequence", "1", "--protect", "22"],
            &["knockd"],
        ];
        let mut refused = 0;
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_global_set() || arg.is_positional() || ["help", "version"].contains(&id) {
                continue;
            }
            let flag = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => format!("-{}", arg.get_short().unwrap()),
            };
            for subcommand in subcommands {
                if subcommand[0] == "knockd" && !cfg!(feature = "server") {
                    continue;
                }
                let mut words = vec!["knockr".to_string(), flag.clone()];
                words.extend(sample_value(id).map(String::from));
                words.extend(subcommand.iter().map(|w| w.to_string()));
                let err = Cli::try_parse_args_from(&words).expect_err(&words.join(" "));
                assert_eq!(
                    err.kind(),
                    clap::error::ErrorKind::ArgumentConflict,
                    "{words:?}"
                );
                let message = err.to_string();
                assert!(
                    message.contains(&format!("--{}", arg.get_long().unwrap_or("")))
                        || message.contains(&flag),
                    "{message}"
                );
                refused += 1;
            }
        }
        assert!(refused > 100, "only {refused} cases");
        // The same flags after `connect` are its own.
        let cli = Cli::try_parse_args_from([
            "knockr",
            "connect",
            "--dry-run",
            "-v",
            "-4",
            "-p",
            "7000,8000:udp",
            "--source",
            "127.0.0.1",
            "--interface",
            "lo",
            "-u",
            "gw",
            "22",
        ])
        .unwrap();
        let Some(Command::Connect(args)) = cli.command else {
            panic!("{:?}", cli.command)
        };
        let request = args.request();
        assert!(request.dry_run && request.verbose && request.ipv4);
        assert_eq!(request.ports, ["7000", "8000:udp"]);
        assert_eq!(request.network, Proto::Udp);
        assert_eq!(request.targets, ["gw"]);
        assert_eq!(request.source, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(request.interface.as_deref(), Some("lo"));
        assert_eq!(args.port, Some(22));
        // -c is everyone's, before or after.
        assert!(Cli::try_parse_args_from(["knockr", "-c", "p.toml", "list"]).is_ok());
        let message = Cli::try_parse_args_from(["knockr", "--dry-run", "connect", "home", "22"])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(
                "error: --dry-run is written before `connect`: a subcommand's flags go after \
                 its name, e.g. knockr connect --dry-run ..."
            ),
            "{message}"
        );
        let message = Cli::try_parse_args_from(["knockr", "--json", "list"])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(
                "error: --json is a flag of knocking (knockr [FLAGS] TARGET...), which `knockr \
                 list` does not take"
            ),
            "{message}"
        );
    }

    #[test]
    fn the_old_tools_short_flags_mean_what_they_meant_there() {
        let request = |words: &[&str]| {
            let mut all = vec!["knockr"];
            all.extend(words);
            Cli::try_parse_args_from(all).unwrap().knock.request()
        };
        // The C knock: -u, -d in milliseconds, -4/-6 (and --ipv4/--ipv6), -v.
        let c = request(&["-u", "-d", "50", "--ipv4", "-v", "gw", "7000"]);
        assert_eq!(c.network, Proto::Udp);
        assert_eq!(c.delay, Some(Duration::from_millis(50)));
        assert!(c.ipv4 && c.verbose);
        // The Go knockr: -s is silent, -n the protocol, -t the timeout.
        let go = request(&["-s", "-n", "udp", "-t", "1s", "gw", "7000,8000"]);
        assert!(go.quiet);
        assert_eq!(go.network, Proto::Udp);
        assert_eq!(go.timeout, Some(Duration::from_secs(1)));
        assert!(Cli::try_parse_args_from(["knockr", "-u", "-n", "tcp", "gw", "1"]).is_err());
    }

    #[test]
    fn durations_and_rounds_outside_their_bounds_are_usage_errors() {
        let refused = |words: &[&str]| {
            let mut all = vec!["knockr"];
            all.extend(words);
            all.extend(["-p", "1", "gw"]);
            let err = Cli::try_parse_args_from(all).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{words:?}"
            );
            err.to_string()
        };
        assert!(
            refused(&["-d", "200h"])
                .contains("200h is not usable: expected a duration from 0s to 1m")
        );
        assert!(refused(&["-t", "61s"]).contains("61s is not usable"));
        assert!(
            refused(&["--every", "1ms"])
                .contains("1ms is not usable: expected a duration from 1s to 24h")
        );
        assert!(refused(&["--every", "25h"]).contains("25h is not usable"));
        assert!(
            refused(&["--retry", "11"])
                .contains("11 is not usable: expected a number of rounds from 0 to 10")
        );
        for ok in [
            ["-d", "1m"],
            ["-d", "0"],
            ["--every", "1s"],
            ["--retry", "10"],
        ] {
            let mut all = vec!["knockr"];
            all.extend(ok);
            all.extend(["-p", "1", "gw"]);
            assert!(Cli::try_parse_args_from(all).is_ok(), "{ok:?}");
        }
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
