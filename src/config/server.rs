//! The server's configuration, in either of two formats told apart by content:
//! knockr's TOML (`[knockd]`, `[[door]]`) or a classic knockd.conf read as-is.
//! Both become the matcher's [`Door`]s plus the commands to run, validated with
//! `file:line:col` messages; [`lint`] adds the warnings of `knockr knockd --check`.
//!
//! Reads files only: it never captures packets or runs commands. What the
//! files it names let knockd's account do (rewrite a one-time file, trust a
//! password file) is judged from their metadata by [`check_files`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::{Spanned, Value};

use crate::config::account::Account;
use crate::config::profiles::{ConfigError, OtpKeys, first_line, line_col};
use crate::config::value::{DurationKey, DurationValue, PortRange, PortValue};
use crate::core::knock::{self, Knock, Proto};
use crate::core::matcher::{Door, FlagRule, Sequence};
use crate::core::otp::OtpSpec;
use crate::core::packet::tcp_flags;
use crate::core::secret::{Secret, SecretSource};
use crate::core::text::sanitize;
use crate::core::units;

/// knockd's defaults.
const DEFAULT_SEQ_TIMEOUT: Duration = Duration::from_secs(25);
const DEFAULT_CMD_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_SOURCES: usize = 100_000;
/// Commands running at once by default: enough for bursts of honest
/// knockers, few enough that a flood of completions cannot fork without bound.
pub const DEFAULT_MAX_COMMANDS: usize = 32;
/// The `max_commands` a file may set: at least one must run, and more than
/// this many processes at once is a fork bomb, not a firewall.
const MAX_COMMANDS: std::ops::RangeInclusive<usize> = 1..=1024;
/// How long a start or stop command may run by default before its process
/// group is killed.
pub const DEFAULT_MAX_COMMAND_TIME: Duration = Duration::from_secs(60);
/// Where open knockers and the replay cache are kept when `state_file` is not
/// written (README, "State file").
pub const DEFAULT_STATE_FILE: &str = "/var/lib/knockr/knockd.state";
/// knockd's limit on the length of a sequence.
const MAX_KNOCKS: usize = 32;

/// Which syntax the file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// knockr's own format: `[knockd]` and `[[door]]` tables.
    Toml,
    /// The classic knockd.conf: `[options]` and one `[NAME]` section per door.
    KnockdConf,
}

/// A loaded, validated server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The file it came from, for messages.
    pub path: PathBuf,
    /// The syntax it was written in; decides how lint messages spell keys.
    pub format: Format,
    /// Interfaces to capture on (`any` allowed); empty: not configured, the
    /// command line decides.
    pub interfaces: Vec<String>,
    /// Where to append the log, besides standard error.
    pub log_file: Option<PathBuf>,
    /// Also log through syslog (knockd.conf `UseSyslog`, TOML `syslog = true`).
    pub use_syslog: bool,
    /// Where to write the process id when running as a daemon.
    pub pid_file: Option<PathBuf>,
    /// The user to drop privileges to once the capture is open (TOML only).
    pub user: Option<String>,
    /// How many knocking sources are tracked at once, bounding memory under a
    /// flood (TOML only).
    pub max_sources: usize,
    /// How many start and stop commands run at once; the others wait in a
    /// bounded queue (TOML only).
    pub max_commands: usize,
    /// How long a command may run before its whole process group is killed
    /// (TOML only).
    pub max_command_time: Duration,
    /// Where the open knockers and the time-based replay cache survive a
    /// crash (TOML `state_file`, knockd.conf `StateFile`); [`DEFAULT_STATE_FILE`]
    /// unless written. `knockr knockd --state-file` overrides it.
    pub state_file: PathBuf,
    /// Doors in file order, which is the order a first knock is tried in.
    pub doors: Vec<DoorConfig>,
}

/// One door: what the matcher looks for and what runs when it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct DoorConfig {
    /// The matcher's view: name, sequence, timeout, TCP flags, target, modes.
    pub door: Door,
    /// When set, `door.sequence` is empty: the runtime reads the current
    /// sequence from this file and disables each line once used.
    pub one_time_sequences: Option<PathBuf>,
    /// When set, `door.sequence` is empty: sequences are derived from the
    /// clients' secrets and the time (TOML only; see [`OtpDoor`]).
    pub otp: Option<OtpDoor>,
    /// Runs when an IPv4 source completes the sequence.
    pub start: Option<Action>,
    /// Runs when an IPv6 source completes the sequence. Already resolved: it
    /// holds the IPv4 command when none was written, and `None` when a
    /// knockd.conf disabled it with an empty `Start_Command_6 =`. The runtime
    /// never falls back to `start` itself.
    pub start6: Option<Action>,
    /// Runs `cmd_timeout` after `start`, for IPv4 sources.
    pub stop: Option<Action>,
    /// The IPv6 counterpart of `stop`, resolved like `start6`.
    pub stop6: Option<Action>,
    /// How long after the start command the stop command runs. Set (10 s
    /// unless written) whenever a stop command exists.
    pub cmd_timeout: Option<Duration>,
    /// Runs once when the server starts, e.g. to create a firewall set (TOML only).
    pub setup: Option<Action>,
    /// Runs once when the server stops, undoing `setup` (TOML only).
    pub teardown: Option<Action>,
    /// Puts knockers on RouterOS address lists (`[door.routeros]`, TOML only).
    pub routeros: Option<super::routeros::RouterosAction>,
    /// Puts knockers in nftables sets over netlink (`[door.nftables]`, TOML only).
    pub nftables: Option<super::nftables::NftablesAction>,
    /// The line the door starts on, for messages.
    pub line: usize,
    /// knockd.conf only: the section name as written, when an earlier
    /// section has it too. knockd runs both; knockr names this one
    /// `NAME#2` (`NAME#3`...), so logs and open knockers tell them apart.
    pub repeats: Option<String>,
}

/// A door whose sequences come from shared secrets and the time
/// (docs/otp-sequences.md), derived with the door's name.
#[derive(Debug, Clone, PartialEq)]
pub struct OtpDoor {
    /// How sequences look; the profiles that knock here must say the same.
    pub spec: OtpSpec,
    /// Steps accepted on either side of the current one: 1 accepts t-1, t, t+1.
    pub window: u64,
    /// Who may knock, each with a secret of its own; a door's own
    /// `secret_file` is one client without a name.
    pub clients: Vec<OtpClient>,
}

/// One holder of a door's secret.
#[derive(Debug, Clone, PartialEq)]
pub struct OtpClient {
    /// Logged when its sequence opens the door; `None` for a door's own `secret_file`.
    pub name: Option<String>,
    /// Where the secret was read from, for messages.
    pub secret_file: PathBuf,
    /// The secret; its `Debug` is redacted.
    pub secret: Secret,
}

/// The window when `otp_window` is not written: t-1, t and t+1.
pub const DEFAULT_OTP_WINDOW: u64 = 1;
/// The widest window accepted: beyond it a sequence lives for minutes.
const MAX_OTP_WINDOW: u64 = 10;

/// A command to run. `%IP%` and `%DOOR%` are filled in by [`Action::substitute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A program and its arguments, run without a shell (TOML).
    Argv(Vec<String>),
    /// A command line run by `/bin/sh -c`, as knockd does (knockd.conf).
    Shell(String),
}

impl Action {
    /// Replaces every `%IP%` with the knocker's address and `%DOOR%` with the
    /// door's name. The address is a parsed [`IpAddr`], so its text is only
    /// hex digits, dots and colons: nothing from a packet can reach a shell.
    pub fn substitute(&self, ip: IpAddr, door: &str) -> Action {
        let ip = ip.to_string();
        let fill = |text: &str| text.replace("%IP%", &ip).replace("%DOOR%", door);
        match self {
            Action::Argv(argv) => Action::Argv(argv.iter().map(|arg| fill(arg)).collect()),
            Action::Shell(command) => Action::Shell(fill(command)),
        }
    }
}

/// A warning from [`lint`]: the file loads, but probably does not do what was meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// The door concerned; `None` for the file as a whole.
    pub door: Option<String>,
    /// One sentence that names the door.
    pub message: String,
}

/// Reads and validates the server configuration at `path`.
pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
    let text = std::fs::read_to_string(path);
    let text = text.map_err(|err| error_at(path, None, format!("cannot read the file: {err}")))?;
    parse(path, &text)
}

/// Validates `text` as if read from `path` (which only appears in messages),
/// detecting the format from the content.
pub fn parse(path: &Path, text: &str) -> Result<ServerConfig, ConfigError> {
    let table = toml::from_str::<toml::Table>(text).ok();
    let ours = |table: &toml::Table| table.contains_key("knockd") || table.contains_key("door");
    // A header line decides even when the TOML is broken, so its errors read as TOML errors.
    let header = |line: &str| {
        let line: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        line.starts_with("[knockd]") || line.starts_with("[[door]]")
    };
    if table.as_ref().is_some_and(ours) || text.lines().any(header) {
        return parse_toml(path, text);
    }
    parse_knockd_conf(path, text).map_err(|mut err| {
        if table.is_some_and(|t| !t.is_empty()) {
            err.message +=
                " (read as a knockd.conf: knockr's TOML needs [knockd] or [[door]] tables)";
        }
        err
    })
}

/// Warnings for `knockr knockd --check`, in door order.
pub fn lint(config: &ServerConfig) -> Vec<Lint> {
    let syn = match config.format {
        Format::Toml => "tcp_flags = \"syn\"",
        Format::KnockdConf => "TCPFlags = syn",
    };
    let mut lints = Vec::new();
    // The first door that uses each knock.
    let mut users: HashMap<Knock, &str> = HashMap::new();
    for entry in &config.doors {
        let (door, name) = (&entry.door, entry.door.name.as_str());
        let mut warn = |what: String| {
            let message = format!("door `{name}` {what}");
            lints.push(Lint {
                door: Some(name.to_string()),
                message,
            });
        };
        if let Some(written) = &entry.repeats {
            let first = config.doors.iter().find(|d| d.door.name == *written);
            let line = first.map_or(0, |d| d.line);
            warn(format!(
                "repeats section [{written}] of line {line}: knockd runs both, and so does \
                 knockr, logging this one as `{name}`; give each section a name of its own"
            ));
        }
        let ports: Vec<u16> = door.sequence.knocks().map(|k| k.port).collect();
        let ascending = ports.is_sorted_by(|a, b| a < b);
        if ports.len() >= 2 && (ascending || ports.is_sorted_by(|a, b| a > b)) {
            let order = if ascending { "ascending" } else { "descending" };
            warn(format!(
                "knocks on {order} ports, so a sequential port scan can open it; mix the order"
            ));
        }
        let otp_tcp = entry
            .otp
            .as_ref()
            .is_some_and(|o| o.spec.protos().contains(&Proto::Tcp));
        let tcp = entry.one_time_sequences.is_some()
            || otp_tcp
            || door.sequence.knocks().any(|k| k.proto == Proto::Tcp);
        if tcp && door.flags.set & tcp_flags::SYN == 0 {
            warn(format!(
                "has TCP knocks but does not require the SYN flag, so SSH traffic or a kernel RST \
                 can reset the knock; set {syn}"
            ));
        }
        for knock in door.sequence.knocks() {
            match users.get(&knock) {
                Some(&other) if other != name => warn(format!(
                    "knocks on {knock} like door `{other}`, so a knock meant for one also moves \
                     or resets the other"
                )),
                Some(_) => {}
                None => _ = users.insert(knock, name),
            }
        }
        for other in &config.doors {
            let Some(otp) = &other.otp else { continue };
            let spec = &otp.spec;
            let inside = door.sequence.knocks().find(|k| {
                (spec.low()..=spec.high()).contains(&k.port)
                    && spec.protos().contains(&k.proto)
                    && !spec.avoid().contains(&k.port)
            });
            if let Some(knock) = inside {
                warn(format!(
                    "knocks on {knock}, inside door `{}`'s otp_ports, so a time-based sequence \
                     can move or reset it; add {} to that door's otp_avoid",
                    other.door.name, knock.port
                ));
            }
        }
        if let Some(otp) = &entry.otp {
            for (i, a) in otp.clients.iter().enumerate() {
                if let Some(b) = otp.clients[i + 1..].iter().find(|b| b.secret == a.secret) {
                    let [a, b] = [a, b].map(|c| c.name.as_deref().unwrap_or("(door)"));
                    warn(format!(
                        "has clients `{a}` and `{b}` with the same secret, so the log cannot \
                         tell them apart; give each its own (knockr secret new)"
                    ));
                }
            }
        }
        if entry.start.is_none() && entry.start6.is_none() && !entry.keeps_lists() {
            warn("has no start command, so a correct knock is only logged".into());
        }
    }
    lints
}

/// What a start refuses in the files `config` names, found without
/// starting: [`check_one_time_files`] and [`check_passwords`] for the
/// account knockd will run as ([`ServerConfig::account`]), and
/// [`check_written_files`] for the log, pid and state files (`state_file`:
/// the one in force, `--state-file` or the config's; `None` when none is
/// kept, as in a dry run). `--check` and a live start both call it, so
/// they refuse alike, with the same words.
pub fn check_files(config: &ServerConfig, state_file: Option<&Path>) -> Result<(), ConfigError> {
    let account = config
        .account()
        .map_err(|err| error_at(&config.path, None, err))?;
    check_one_time_files(config, &account)?;
    check_passwords(config, &account)?;
    check_written_files(config, &account, &Account::current(), state_file)
}

/// The files knockd writes must be writable by whoever writes them, as
/// `server::start` does it: the log is opened and the pid file written by
/// the process that starts (`starter`: root, before the drop); the state
/// file's directory is made by it if missing, and the file is rewritten
/// by `account` once it runs as that user. Judged from metadata, as for
/// one-time files, so `--check` knows without becoming either.
pub fn check_written_files(
    config: &ServerConfig,
    account: &Account,
    starter: &Account,
    state_file: Option<&Path>,
) -> Result<(), ConfigError> {
    let refuse = |what: &str, path: &Path, who: &Account, why: String| {
        let message = format!(
            "{what} {} cannot be written by {}: {why}; knockd would fail to start",
            path.display(),
            who.name
        );
        error_at(&config.path, None, message)
    };
    if let Some(log) = &config.log_file {
        starter
            .may_append(log)
            .map_err(|why| refuse("the log file", log, starter, why))?;
    }
    if let Some(pid) = &config.pid_file {
        starter
            .may_replace(pid)
            .map_err(|why| refuse("the pid file", pid, starter, why))?;
    }
    let Some(state) = state_file else {
        return Ok(());
    };
    let dir = crate::config::files::directory_of(state);
    if std::fs::symlink_metadata(dir).is_err() {
        // Made by the starter, given to the account: only its parent matters.
        return starter
            .may_replace(dir)
            .map_err(|why| refuse("the state file's directory", dir, starter, why));
    }
    account
        .may_replace(state)
        .map_err(|why| refuse("the state file", state, account, why))
}

/// Every one-time file must be one `account` can rewrite (see
/// [`Account::may_rewrite`]): a line that opened the door but cannot be
/// marked would open it again, so knockd refuses such a file rather than
/// find out at the first knock.
pub fn check_one_time_files(config: &ServerConfig, account: &Account) -> Result<(), ConfigError> {
    for door in &config.doors {
        let Some(file) = &door.one_time_sequences else {
            continue;
        };
        account.may_rewrite(file).map_err(|why| {
            let message = format!(
                "door `{}`: its one-time sequences {} cannot be rewritten by {}: {why}; used \
                 sequences could not be marked, so knockd refuses the file",
                door.door.name,
                file.display(),
                account.name
            );
            error_at(&config.path, Some((door.line, 1)), message)
        })?;
    }
    Ok(())
}

/// Every router password must load for `account` as it will when knockd
/// starts ([`crate::config::secret::load_password`]); the passwords are
/// read and dropped.
pub fn check_passwords(config: &ServerConfig, account: &Account) -> Result<(), ConfigError> {
    for door in &config.doors {
        let Some(action) = &door.routeros else {
            continue;
        };
        for router in &action.routers {
            crate::config::secret::load_password(&router.password, account).map_err(|err| {
                let message = format!("router {}: {err}", router.url);
                error_at(&config.path, Some((door.line, 1)), message)
            })?;
        }
    }
    Ok(())
}

impl ServerConfig {
    /// The account knockd runs as with this configuration once started:
    /// `user`, else the process itself. Secret and password files must be
    /// its or root's; one-time files must be its to rewrite.
    pub fn account(&self) -> Result<Account, String> {
        Account::runs_as(self.user.as_deref())
    }

    /// A configuration with nothing set and no doors yet.
    fn new(path: &Path, format: Format) -> ServerConfig {
        ServerConfig {
            path: path.to_path_buf(),
            format,
            interfaces: Vec::new(),
            log_file: None,
            use_syslog: false,
            pid_file: None,
            user: None,
            max_sources: DEFAULT_MAX_SOURCES,
            max_commands: DEFAULT_MAX_COMMANDS,
            max_command_time: DEFAULT_MAX_COMMAND_TIME,
            state_file: PathBuf::from(DEFAULT_STATE_FILE),
            doors: Vec::new(),
        }
    }
}

impl DoorConfig {
    /// A door with knockd's defaults and nothing to run.
    fn new(name: &str, line: usize) -> DoorConfig {
        DoorConfig {
            door: Door {
                name: name.to_string(),
                sequence: Sequence::default(),
                seq_timeout: DEFAULT_SEQ_TIMEOUT,
                flags: FlagRule::default(),
                target: None,
                strict: false,
                tolerate_repeats: false,
            },
            one_time_sequences: None,
            otp: None,
            start: None,
            start6: None,
            stop: None,
            stop6: None,
            cmd_timeout: None,
            setup: None,
            teardown: None,
            routeros: None,
            nftables: None,
            line,
            repeats: None,
        }
    }

    /// Whether the door puts knockers on lists of its own (RouterOS address
    /// lists, nftables sets), which a close takes them off again.
    pub fn keeps_lists(&self) -> bool {
        self.routeros.is_some() || self.nftables.is_some()
    }

    /// knockd's rules for what was not written: an empty command is none, an
    /// absent IPv6 command is the IPv4 one (an empty one disables IPv6), and a
    /// stop command without cmd_timeout waits 10 s.
    fn with_fallbacks(mut self) -> DoorConfig {
        let written =
            |action: Option<Action>| action.filter(|a| *a != Action::Shell(String::new()));
        self.start = written(self.start.take());
        self.stop = written(self.stop.take());
        self.start6 = self
            .start6
            .take()
            .map_or(self.start.clone(), |a| written(Some(a)));
        self.stop6 = self
            .stop6
            .take()
            .map_or(self.stop.clone(), |a| written(Some(a)));
        if self.stop.is_some() || self.stop6.is_some() {
            self.cmd_timeout.get_or_insert(DEFAULT_CMD_TIMEOUT);
        }
        self
    }
}

fn error_at(path: &Path, position: Option<(usize, usize)>, message: String) -> ConfigError {
    let path = path.to_path_buf();
    ConfigError {
        path,
        position,
        message,
    }
}

/// A door as read from either format, before the rules common to both are checked.
struct Draft {
    config: DoorConfig,
    /// The sequence as written; checked, it becomes `config.door.sequence`.
    knocks: Vec<Knock>,
    /// Where the name, the sequence, the one-time sequences file and the
    /// secret (or first client) were written.
    name_at: (usize, usize),
    sequence_at: Option<(usize, usize)>,
    one_time_at: Option<(usize, usize)>,
    otp_at: Option<(usize, usize)>,
}

/// The rules every door obeys whatever the format; applies the fallbacks.
fn check_doors(path: &Path, drafts: Vec<Draft>) -> Result<Vec<DoorConfig>, ConfigError> {
    if drafts.is_empty() {
        let message = "the file defines no doors: expected [[door]] tables (knockr's TOML format) \
                       or [NAME] sections besides [options] (knockd.conf)";
        return Err(error_at(path, None, message.into()));
    }
    let mut lines: HashMap<String, usize> = HashMap::new();
    let mut doors = Vec::new();
    for draft in drafts {
        let sequence = check_door(&draft, &lines)
            .map_err(|(at, message)| error_at(path, Some(at), message))?;
        lines.insert(draft.config.door.name.clone(), draft.config.line);
        let mut config = draft.config;
        if let Some(sequence) = sequence {
            config.door.sequence = sequence;
        }
        doors.push(config.with_fallbacks());
    }
    Ok(doors)
}

/// Why `draft` cannot be a door, given the doors before it (name -> line);
/// for a door with a fixed sequence, that sequence as the matcher takes it.
fn check_door(
    draft: &Draft,
    lines: &HashMap<String, usize>,
) -> Result<Option<Sequence>, (Position, String)> {
    let name = &draft.config.door.name;
    if name.trim().is_empty() || sanitize(name) != name.as_str() {
        let message = format!(
            "door name \"{}\" is not usable: expected a name without control characters",
            sanitize(name)
        );
        return Err((draft.name_at, message));
    }
    if let Some(line) = lines.get(name) {
        let message =
            format!("door name `{name}` is already used on line {line}: expected unique names");
        return Err((draft.name_at, message));
    }
    let knocks = &draft.knocks;
    match (draft.sequence_at, draft.one_time_at, draft.otp_at) {
        (Some(_), _, Some(at)) | (_, Some(_), Some(at)) => Err((
            at,
            format!(
                "door `{name}` has a secret and also sequence or one_time_sequences: \
                 expected one of them (a secret derives the sequence)"
            ),
        )),
        (Some(_), Some(at), None) => Err((
            at,
            format!(
                "door `{name}` sets both sequence and one_time_sequences: expected one of them"
            ),
        )),
        (None, None, None) => Err((
            draft.name_at,
            format!("door `{name}` has no sequence: expected sequence or one_time_sequences"),
        )),
        (None, None, Some(_)) | (None, Some(_), None) => Ok(None),
        (Some(at), None, None) if !(1..=MAX_KNOCKS).contains(&knocks.len()) => Err((
            at,
            format!(
                "door `{name}` has {} knocks: expected 1 to {MAX_KNOCKS}",
                knocks.len()
            ),
        )),
        (Some(at), None, None) => Sequence::new(knocks)
            .map(Some)
            .map_err(|icmp| (at, format!("door `{name}` has {icmp}"))),
    }
}

/// Why knockd cannot use a one-time line, for [`crate::config::onetime::current`]:
/// the matcher's sequences are TCP and UDP only (see [`Sequence::new`]).
pub fn refuse_line(sequence: &[Knock]) -> Option<String> {
    Sequence::new(sequence).err().map(|icmp| icmp.to_string())
}

fn parse_toml(path: &Path, text: &str) -> Result<ServerConfig, ConfigError> {
    let at = |span: Range<usize>| line_col(text, span.start);
    let raw: RawToml = toml::from_str(text)
        .map_err(|err| error_at(path, err.span().map(at), first_line(err.message())))?;
    let options = raw.knockd.unwrap_or_default();
    // Who reads the secret files, so who besides root may own them.
    let reader = Account::runs_as(options.user.as_deref());
    let mut drafts = Vec::new();
    for door in raw.door {
        let (span, raw) = (door.span(), door.into_inner());
        let Some(name) = raw.name.clone() else {
            let message = "door has no name: expected name = \"NAME\"";
            return Err(error_at(path, Some(at(span)), message.into()));
        };
        let mut config = DoorConfig::new(name.get_ref(), at(span).0);
        let (otp, otp_at) = otp_door(path, text, name.get_ref(), &raw, &reader)?.unzip();
        config.otp = otp;
        let sequence_at = raw.sequence.as_ref().map(|s| at(s.span()));
        let one_time_at = raw.one_time_sequences.as_ref().map(|f| at(f.span()));
        let sequence = raw.sequence.map(Spanned::into_inner).unwrap_or_default();
        config.one_time_sequences = raw.one_time_sequences.map(Spanned::into_inner);
        let duration = |key: &DurationKey, value: &Option<Spanned<DurationValue>>| {
            let read = value.as_ref().map(|v| key.read(v)).transpose();
            read.map_err(|(span, message)| error_at(path, Some(at(span)), message))
        };
        config.door.seq_timeout =
            duration(&SEQ_TIMEOUT, &raw.seq_timeout)?.unwrap_or(DEFAULT_SEQ_TIMEOUT);
        config.cmd_timeout = duration(&CMD_TIMEOUT, &raw.cmd_timeout)?;
        config.door.flags = raw.tcp_flags.map(|f| f.0).unwrap_or_default();
        config.door.target = raw.target.map(|t| t.0);
        config.door.strict = raw.strict;
        config.door.tolerate_repeats = raw.tolerate_repeats;
        [config.start, config.start6] = [raw.start, raw.start6].map(|a| a.map(|a| a.0));
        [config.stop, config.stop6] = [raw.stop, raw.stop6].map(|a| a.map(|a| a.0));
        [config.setup, config.teardown] = [raw.setup, raw.teardown].map(|a| a.map(|a| a.0));
        if let Some(table) = raw.routeros {
            let span = table.span();
            config.routeros = Some(
                super::routeros::RouterosAction::from_raw(table.into_inner(), span)
                    .map_err(|(span, message)| error_at(path, Some(at(span)), message))?,
            );
        }
        if let Some(table) = raw.nftables {
            let span = table.span();
            config.nftables = Some(
                super::nftables::NftablesAction::from_raw(
                    table.into_inner(),
                    config.cmd_timeout,
                    span,
                )
                .map_err(|(span, message)| error_at(path, Some(at(span)), message))?,
            );
        }
        drafts.push(Draft {
            config,
            knocks: sequence,
            name_at: at(name.span()),
            sequence_at,
            one_time_at,
            otp_at,
        });
    }
    let max_commands = match options.max_commands {
        None => DEFAULT_MAX_COMMANDS,
        Some(n) if MAX_COMMANDS.contains(n.get_ref()) => *n.get_ref(),
        Some(n) => {
            let message = format!(
                "max_commands = {} is not usable: expected {} to {} commands running at once",
                n.get_ref(),
                MAX_COMMANDS.start(),
                MAX_COMMANDS.end()
            );
            return Err(error_at(path, Some(at(n.span())), message));
        }
    };
    let max_command_time = options
        .max_command_time
        .as_ref()
        .map(|v| MAX_COMMAND_TIME.read(v))
        .transpose()
        .map_err(|(span, message)| error_at(path, Some(at(span)), message))?
        .unwrap_or(DEFAULT_MAX_COMMAND_TIME);
    Ok(ServerConfig {
        interfaces: options.interfaces,
        log_file: options.log_file,
        use_syslog: options.syslog,
        pid_file: options.pid_file,
        user: options.user,
        max_sources: options.max_sources.unwrap_or(DEFAULT_MAX_SOURCES),
        max_commands,
        max_command_time,
        state_file: options
            .state_file
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_FILE)),
        doors: check_doors(path, drafts)?,
        ..ServerConfig::new(path, Format::Toml)
    })
}

/// A 1-based (line, column) in the configuration file.
type Position = (usize, usize);

/// The time-based part of a TOML door, if it has one, and where its secret
/// (or first client) was written. Secret files are read here, so a file that
/// others can read is refused at its line.
fn otp_door(
    path: &Path,
    text: &str,
    door: &str,
    raw: &RawDoor,
    reader: &Result<Account, String>,
) -> Result<Option<(OtpDoor, Position)>, ConfigError> {
    let at = |span: Range<usize>| Some(line_col(text, span.start));
    let fail = |span: Range<usize>, message: String| error_at(path, at(span), message);
    let keys = raw.otp_keys();
    let window_at = raw.otp_window.as_ref().map(|w| ("otp_window", w.span()));
    let (secret_file, clients) = (&raw.secret_file, &raw.client);
    let first = match (secret_file, clients.first()) {
        (Some(file), Some(_)) => {
            let message = format!(
                "door `{door}` has both secret_file and [[door.client]] entries: expected one \
                 secret_file, or a secret_file in each client"
            );
            return Err(fail(file.span(), message));
        }
        (Some(file), None) => file.span(),
        (None, Some(client)) => client.span(),
        (None, None) => {
            return match keys.written().into_iter().chain(window_at).next() {
                Some((key, span)) => Err(fail(
                    span,
                    format!(
                        "`{key}` in door `{door}` needs secret_file or [[door.client]] entries: \
                         it only shapes time-based sequences"
                    ),
                )),
                None => Ok(None),
            };
        }
    };
    let spec = keys
        .spec(&format!("door `{door}`"))
        .map_err(|(span, err)| fail(span.unwrap_or(first.clone()), err))?;
    let window = raw
        .otp_window
        .as_ref()
        .map_or(DEFAULT_OTP_WINDOW, |w| *w.get_ref());
    if let Some(written) = raw.otp_window.as_ref().filter(|_| window > MAX_OTP_WINDOW) {
        let message = format!(
            "otp_window {window} in door `{door}` is too wide: expected 0 to {MAX_OTP_WINDOW} \
             steps on either side of the current one"
        );
        return Err(fail(written.span(), message));
    }
    let load = |file: &Spanned<PathBuf>, who: String| {
        let source = SecretSource::File(file.get_ref().clone());
        reader
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|reader| crate::config::secret::load_secret(&source, reader))
            .map_err(|err| fail(file.span(), format!("{who}: {err}")))
    };
    let mut otp_clients: Vec<OtpClient> = Vec::new();
    if let Some(file) = secret_file {
        otp_clients.push(OtpClient {
            name: None,
            secret_file: file.get_ref().clone(),
            secret: load(file, format!("door `{door}`"))?,
        });
    }
    let mut named: Vec<(&String, &Spanned<PathBuf>)> = Vec::new();
    for client in clients {
        let (span, client) = (client.span(), client.get_ref());
        let Some(name) = &client.name else {
            let message = format!(
                "a client of door `{door}` has no name: expected name = \"NAME\", which the log \
                 shows when it knocks"
            );
            return Err(fail(span, message));
        };
        let (name_span, name) = (name.span(), name.get_ref());
        if name.trim().is_empty() || sanitize(name) != name.as_str() {
            let message = format!(
                "client name \"{}\" in door `{door}` is not usable: expected a name without \
                 control characters",
                sanitize(name)
            );
            return Err(fail(name_span, message));
        }
        if named.iter().any(|(n, _)| *n == name) {
            let message = format!(
                "client name `{name}` is used twice in door `{door}`: expected unique names"
            );
            return Err(fail(name_span, message));
        }
        let Some(file) = &client.secret_file else {
            let message = format!(
                "client `{name}` of door `{door}` has no secret_file: expected secret_file = \
                 \"PATH\", a file only its owner can read"
            );
            return Err(fail(span, message));
        };
        named.push((name, file));
    }
    // Read only once every client is well formed.
    for (name, file) in named {
        otp_clients.push(OtpClient {
            name: Some(name.clone()),
            secret_file: file.get_ref().clone(),
            secret: load(file, format!("client `{name}` of door `{door}`"))?,
        });
    }
    let otp = OtpDoor {
        spec,
        window,
        clients: otp_clients,
    };
    Ok(Some((otp, line_col(text, first.start))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToml {
    knockd: Option<RawOptions>,
    #[serde(default)]
    door: Vec<Spanned<RawDoor>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    #[serde(default)]
    interfaces: Vec<String>,
    log_file: Option<PathBuf>,
    #[serde(default)]
    syslog: bool,
    pid_file: Option<PathBuf>,
    user: Option<String>,
    max_sources: Option<usize>,
    max_commands: Option<Spanned<usize>>,
    max_command_time: Option<Spanned<DurationValue>>,
    state_file: Option<PathBuf>,
}

/// A `[[door]]` table as written. Values are checked as they are read, so toml
/// attaches the position of a bad one to the error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoor {
    name: Option<Spanned<String>>,
    sequence: Option<Spanned<Vec<Knock>>>,
    one_time_sequences: Option<Spanned<PathBuf>>,
    seq_timeout: Option<Spanned<DurationValue>>,
    tcp_flags: Option<FlagsValue>,
    target: Option<IpValue>,
    start: Option<ArgvValue>,
    start6: Option<ArgvValue>,
    stop: Option<ArgvValue>,
    stop6: Option<ArgvValue>,
    cmd_timeout: Option<Spanned<DurationValue>>,
    setup: Option<ArgvValue>,
    teardown: Option<ArgvValue>,
    #[serde(default)]
    strict: bool,
    #[serde(default)]
    tolerate_repeats: bool,
    routeros: Option<Spanned<super::routeros::RawRouteros>>,
    nftables: Option<Spanned<super::nftables::RawNftables>>,
    secret_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    client: Vec<Spanned<RawClient>>,
    otp_length: Option<Spanned<u32>>,
    otp_ports: Option<Spanned<PortRange>>,
    otp_step: Option<Spanned<DurationValue>>,
    otp_protocols: Option<Spanned<Vec<Proto>>>,
    otp_avoid: Option<Spanned<Vec<PortValue>>>,
    otp_window: Option<Spanned<u64>>,
}

impl RawDoor {
    /// The keys shared with client profiles, read by the same code.
    fn otp_keys(&self) -> OtpKeys<'_> {
        OtpKeys {
            length: self.otp_length.as_ref(),
            ports: self.otp_ports.as_ref(),
            step: self.otp_step.as_ref(),
            protocols: self.otp_protocols.as_ref(),
            avoid: self.otp_avoid.as_ref(),
        }
    }
}

/// A `[[door.client]]` table: one holder of the door's secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    name: Option<Spanned<String>>,
    secret_file: Option<Spanned<PathBuf>>,
}

/// `seq_timeout`: how long a whole sequence may take. Zero is refused: no
/// sequence completes in no time, so the door could never open.
const SEQ_TIMEOUT: DurationKey = DurationKey {
    name: "seq_timeout",
    range: Duration::from_nanos(1)..=Duration::MAX,
    whole_seconds: false,
    expected: "a duration above zero, e.g. \"5s\" (with none, no sequence can complete in time)",
};
/// `cmd_timeout`: how long after the start command the stop command runs.
const CMD_TIMEOUT: DurationKey = DurationKey::any("cmd_timeout");
/// `max_command_time`: how long a start or stop command may run.
const MAX_COMMAND_TIME: DurationKey = DurationKey {
    name: "max_command_time",
    range: Duration::from_secs(1)..=Duration::from_secs(3600),
    whole_seconds: false,
    expected: "1s to 1h, e.g. \"60s\" (a command that hangs longer holds one of max_commands)",
};

// Each value below is checked as it is read, so toml attaches its position to the error.

/// `"syn,!ack"` or `["syn", "!ack"]`.
struct FlagsValue(FlagRule);
/// An IP address written as a string.
struct IpValue(IpAddr);
/// A command as a non-empty argv array.
struct ArgvValue(Action);

impl<'de> Deserialize<'de> for FlagsValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let expected = "TCP flags such as \"syn,!ack\" or [\"syn\", \"!ack\"]";
        let flags = match Value::deserialize(deserializer)? {
            Value::Array(flags) => texts(flags, expected)?.join(","),
            value => text(value, expected)?,
        };
        FlagRule::parse(&flags)
            .map(FlagsValue)
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for IpValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_target(&text).map(IpValue).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ArgvValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let expected = "a command as an array of arguments, e.g. [\"/usr/sbin/nft\", \"add\"]";
        match Value::deserialize(deserializer)? {
            Value::Array(argv) if argv.is_empty() => Err(de::Error::custom(format!(
                "command is an empty array: expected {expected}"
            ))),
            Value::Array(argv) => Ok(ArgvValue(Action::Argv(texts(argv, expected)?))),
            Value::String(line) => Err(de::Error::custom(format!(
                "command {line:?} is a string: expected an array of arguments such as {:?}, \
                 as TOML commands run without a shell",
                line.split_whitespace().collect::<Vec<_>>()
            ))),
            value => Err(invalid(&value, expected)),
        }
    }
}

/// `target`, in both formats.
fn parse_target(text: &str) -> Result<IpAddr, String> {
    text.parse().map_err(|_| {
        format!("target {text:?} is not an IP address: expected e.g. 192.0.2.1 or 2001:db8::1")
    })
}

fn text<E: de::Error>(value: Value, expected: &str) -> Result<String, E> {
    match value {
        Value::String(text) => Ok(text),
        value => Err(invalid(&value, expected)),
    }
}

fn texts<E: de::Error>(values: Vec<Value>, expected: &str) -> Result<Vec<String>, E> {
    values
        .into_iter()
        .map(|value| text(value, expected))
        .collect()
}

fn invalid<E: de::Error>(value: &Value, expected: &str) -> E {
    E::custom(format!(
        "invalid type: {} `{value}`, expected {expected}",
        value.type_str()
    ))
}

/// Where the knockd.conf parser is; a door is pushed when the next section starts.
enum Section {
    Before,
    Options,
    Door(Box<Draft>),
}

const OPTIONS: &str = "UseSyslog, LogFile, PidFile, StateFile or Interface";
const DIRECTIVES: &str = "Sequence, One_Time_Sequences, Seq_Timeout, TCPFlags, Target, \
    Start_Command, Start_Command_6, Cmd_Timeout, Stop_Command or Stop_Command_6";

/// Reads a knockd.conf as knockd does.
fn parse_knockd_conf(path: &Path, text: &str) -> Result<ServerConfig, ConfigError> {
    // Every piece handled below is a slice of `text`, so its address gives its position.
    let at = |part: &str| line_col(text, part.as_ptr() as usize - text.as_ptr() as usize);
    let mut config = ServerConfig::new(path, Format::KnockdConf);
    let (mut drafts, mut section) = (Vec::new(), Section::Before);
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let next = match name.trim() {
                _ if name == "options" => Section::Options,
                name => Section::Door(Box::new(Draft {
                    config: DoorConfig::new(name, index + 1),
                    knocks: Vec::new(),
                    name_at: at(name),
                    sequence_at: None,
                    one_time_at: None,
                    otp_at: None,
                })),
            };
            if let Section::Door(draft) = std::mem::replace(&mut section, next) {
                drafts.push(*draft);
            }
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (without_comment(line), None),
        };
        let lower = key.to_ascii_lowercase();
        let directive = match lower.as_str() {
            "command" => "start_command",
            "command_6" => "start_command_6",
            "timeout" => "seq_timeout",
            other => other,
        };
        let value = match value.map(|value| conf_value(directive, key, value)) {
            Some(Err((part, message))) => return Err(error_at(path, Some(at(part)), message)),
            Some(Ok(value)) => Some(value),
            None => None,
        };
        let applied = match (&mut section, value) {
            (Section::Before, _) => Err((
                key,
                format!(
                    "{line:?} is outside any section: expected [options] or a [NAME] section above it"
                ),
            )),
            (Section::Options, None) if directive == "usesyslog" => {
                config.use_syslog = true;
                Ok(())
            }
            (_, None) => Err((
                line,
                format!("{line:?} is not a directive: expected NAME = VALUE"),
            )),
            (_, Some("")) if !directive.contains("_command") => Err((
                key,
                format!("`{key}` has no value: expected a value after ="),
            )),
            (Section::Options, Some(value)) => option(&mut config, directive, key, value),
            (Section::Door(draft), Some(value)) => {
                door_directive(draft, directive, (key, at(key)), value)
            }
        };
        applied.map_err(|(part, message)| error_at(path, Some(at(part)), message))?;
    }
    if let Section::Door(draft) = section {
        drafts.push(*draft);
    }
    rename_repeated_sections(&mut drafts);
    config.doors = check_doors(path, drafts)?;
    Ok(config)
}

/// A knockd.conf value as knockd 0.8 means it, without a trailing comment.
///
/// knockd keeps the whole text after `=`, so what a `#` does depends on who
/// reads the value: its numbers go through `atoi`, which stops at the first
/// non-digit (so `seq_timeout = 10 # seconds` is 10, and a comment after the
/// last port of a sequence is ignored); a command goes to `/bin/sh -c`, where
/// a word that starts with `#` begins a comment; a file name keeps the `#`
/// and what follows. knockr cuts the comment where the meaning is clear (a
/// number, a port, a flag, an address or an interface name cannot hold a
/// `#`), passes commands on whole for the shell to read as knockd's shell
/// does, and refuses what knockd would misread: a comment after a file name
/// (knockd would open `/var/log/knockd.log # log`) and a comment holding a
/// comma after a sequence (knockd reads a port from each piece after it).
fn conf_value<'t>(
    directive: &str,
    key: &str,
    value: &'t str,
) -> Result<&'t str, (&'t str, String)> {
    let Some(hash) = value.find('#') else {
        return Ok(value);
    };
    let comment = &value[hash..];
    match directive {
        _ if directive.contains("_command") => Ok(value),
        "logfile" | "pidfile" | "statefile" | "one_time_sequences" => {
            match value[..hash].ends_with(char::is_whitespace) {
                true => Err((
                    comment,
                    format!(
                        "`{key}` value {value:?} has a `#` after a space: knockd 0.8 reads it as \
                         part of the file name; put the comment on a line of its own"
                    ),
                )),
                // `/srv/knockd#1.log`: a file name, read as knockd reads it.
                false => Ok(value),
            }
        }
        "sequence" if comment.contains(',') => Err((
            comment,
            format!(
                "the comment after `{key}` holds a comma: knockd 0.8 reads a port from each \
                 piece after a comma; put the comment on a line of its own"
            ),
        )),
        _ => Ok(value[..hash].trim_end()),
    }
}

/// A directive written alone (`UseSyslog # log to syslog`), without its comment.
fn without_comment(line: &str) -> &str {
    line.split_once('#')
        .map_or(line, |(word, _)| word.trim_end())
}

/// knockd runs every section, even two of the same name, so knockr does
/// too; but open knockers, the state file and the log know a door by its
/// name, so each repeat is renamed `NAME#2`, `NAME#3`... (the first number
/// no section of the file is named), and remembers the name it was written
/// with for `--check` and `--convert` to tell.
fn rename_repeated_sections(drafts: &mut [Draft]) {
    let mut taken: std::collections::HashSet<String> =
        drafts.iter().map(|d| d.config.door.name.clone()).collect();
    let mut seen = std::collections::HashSet::new();
    for draft in drafts {
        let name = draft.config.door.name.clone();
        if seen.insert(name.clone()) {
            continue;
        }
        let renamed = (2..)
            .map(|n| format!("{name}#{n}"))
            .find(|candidate| !taken.contains(candidate))
            .unwrap_or_default();
        taken.insert(renamed.clone());
        draft.config.door.name = renamed;
        draft.config.repeats = Some(name);
    }
}

/// Applies one `key = value` line of `[options]`. An error carries the piece
/// of the line at fault.
fn option<'t>(
    config: &mut ServerConfig,
    directive: &str,
    key: &'t str,
    value: &str,
) -> Result<(), (&'t str, String)> {
    match directive {
        "logfile" => config.log_file = Some(value.into()),
        "pidfile" => config.pid_file = Some(value.into()),
        "statefile" => config.state_file = value.into(),
        "interface" => config.interfaces.push(value.into()),
        "usesyslog" => {
            return Err((
                key,
                format!("`{key}` takes no value: write it alone on its line"),
            ));
        }
        _ => {
            let message = format!("unknown directive `{key}` in [options]: expected {OPTIONS}");
            return Err((key, message));
        }
    }
    Ok(())
}

/// A knockd.conf `Seq_Timeout` of `seconds`, refused at zero as TOML refuses
/// it: knockd takes 0, and the door never opens.
fn seq_timeout<'t>(
    key: &str,
    value: &'t str,
    seconds: Duration,
) -> Result<Duration, (&'t str, String)> {
    if seconds.is_zero() {
        let message = format!(
            "`{key}` value {value:?} is not usable: expected at least 1 second (with none, no \
             sequence can complete in time)"
        );
        return Err((value, message));
    }
    Ok(seconds)
}

/// Applies one `key = value` line of a knockd.conf door section. An error
/// carries the piece of the line at fault.
fn door_directive<'t>(
    draft: &mut Draft,
    directive: &str,
    (key, key_at): (&'t str, (usize, usize)),
    value: &'t str,
) -> Result<(), (&'t str, String)> {
    let door = &mut draft.config;
    let seconds = || {
        units::parse(units::Rule::KnockdConf, value).map_err(|_| {
            let message = format!(
                "`{key}` value {value:?} is not a whole number of seconds: expected e.g. 5"
            );
            (value, message)
        })
    };
    let shell = Some(Action::Shell(value.to_string()));
    match directive {
        "sequence" => {
            let knock = |item: &'t str| match item.trim() {
                // knockd's `atoi("")` makes it a knock on port 0, which no packet has.
                "" => Err((
                    item,
                    format!(
                        "`{key}` value {value:?} has an empty knock (a trailing or doubled \
                         comma): knockd 0.8 reads it as port 0; remove the comma"
                    ),
                )),
                trimmed => {
                    knock::parse_knock(item, Proto::Tcp).map_err(|e| (trimmed, e.to_string()))
                }
            };
            draft.knocks = value.split(',').map(knock).collect::<Result<_, _>>()?;
            draft.sequence_at = Some(key_at);
        }
        "one_time_sequences" => {
            door.one_time_sequences = Some(value.into());
            draft.one_time_at = Some(key_at);
        }
        "seq_timeout" => door.door.seq_timeout = seq_timeout(key, value, seconds()?)?,
        "cmd_timeout" => door.cmd_timeout = Some(seconds()?),
        "tcpflags" => door.door.flags = FlagRule::parse(value).map_err(|e| (value, e))?,
        "target" => door.door.target = Some(parse_target(value).map_err(|e| (value, e))?),
        "start_command" => door.start = shell,
        "start_command_6" => door.start6 = shell,
        "stop_command" => door.stop = shell,
        "stop_command_6" => door.stop6 = shell,
        _ => {
            let name = &door.door.name;
            let hint = match name.eq_ignore_ascii_case("options") {
                true => " ([options] must be written in lower case)",
                false => "",
            };
            let message =
                format!("unknown directive `{key}` in door `{name}`: expected {DIRECTIVES}{hint}");
            return Err((key, message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of knockd-semantics.md, as a knockd user would have it.
    const KNOCKD_EXAMPLE: &str = "
[options]
    UseSyslog
    LogFile = /var/log/knockd.log
    PidFile = /var/run/knockd.pid
    Interface = eth0
[openSSH]
    sequence    = 7000,8000:udp,9000
    seq_timeout = 5
    tcpflags    = syn
    command     = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
[openClose]
    sequence      = 2222:udp,3333:tcp,4444:udp
    seq_timeout   = 15
    start_command = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
    cmd_timeout   = 10
    stop_command  = /sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
[oneTime]
    one_time_sequences = /etc/knockd/ssh_sequences
    seq_timeout = 15
    tcpflags    = fin,!ack
    start_command = ...
";

    const TOML_EXAMPLE: &str = r#"
[knockd]
interfaces = ["eth0"]
log_file = "/var/log/knockr.log"
syslog = false
pid_file = "/run/knockr.pid"
user = "nobody"
max_sources = 100000

[[door]]
name = "openSSH"
sequence = ["7000", "8000:udp", 9000]
seq_timeout = "5s"
tcp_flags = "syn,!ack"
target = "192.0.2.1"
start = ["/usr/sbin/nft", "add", "element", "inet", "fw", "knocked", "{", "%IP%", "}"]
stop = ["/usr/sbin/nft", "delete", "element", "inet", "fw", "knocked", "{", "%IP%", "}"]
cmd_timeout = "10s"
setup = ["/usr/sbin/nft", "-f", "/etc/knockr/fw.nft"]
teardown = ["/usr/sbin/nft", "delete", "table", "inet", "fw"]
strict = false
tolerate_repeats = false
"#;

    /// One case a line: `what | file text`, `\n` for line breaks, `{door}` for
    /// the start of a TOML door. `toml:` cases are read from knockr.toml.
    const ERROR_CASES: &str = r#"
toml: unknown key              | {door}sequence = [1]\nstart_command = ["x"]
toml: unknown key in [knockd]  | [knockd]\ninterface = "eth0"
toml: no command may run       | [knockd]\nmax_commands = 0\n{door}sequence = [1]
toml: too many commands        | [knockd]\nmax_commands = 5000\n{door}sequence = [1]
toml: command time too long    | [knockd]\nmax_command_time = "2h"\n{door}sequence = [1]
toml: unknown tables only      | [server]\nport = 1
toml: no doors                 | [knockd]\nsyslog = true
toml: broken                   | {door}sequence = [1
toml: bare integer duration    | {door}sequence = [1]\nseq_timeout = 5
toml: bare number in a string  | {door}sequence = [1]\ncmd_timeout = "10"
toml: otp_step without a unit  | {door}secret_file = "/s"\notp_step = 30
toml: otp_step in milliseconds | {door}secret_file = "/s"\notp_step = 30000
toml: seq_timeout of zero      | {door}sequence = [1]\nseq_timeout = "0s"
toml: bad duration             | {door}sequence = [1]\nseq_timeout = "soon"
toml: empty command            | {door}sequence = [1]\nstart = []
toml: command as a string      | {door}sequence = [1]\nstart = "nft add x"
toml: port zero                | {door}sequence = ["7000", "0:udp"]
toml: empty sequence           | {door}sequence = []
toml: 33 knocks                | {door}sequence = [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]
toml: sequence and one-time    | {door}sequence = [1]\none_time_sequences = "f"
toml: no sequence              | {door}
toml: no name                  | [[door]]\nsequence = [1]
toml: blank name               | [[door]]\nname = " "\nsequence = [1]
toml: duplicate name           | {door}sequence = [1]\n{door}sequence = [2]
toml: bad flag                 | {door}sequence = [1]\ntcp_flags = ["syn", "fun"]
toml: bad target               | {door}sequence = [1]\ntarget = "router"
toml: ICMP knock               | {door}sequence = ["7000", "56:icmp"]
toml: otp key without secret   | {door}sequence = [1]\notp_length = 5
toml: window without secret    | {door}sequence = [1]\notp_window = 2
toml: secret and clients       | {door}secret_file = "/s"\n[[door.client]]\nname = "a"\nsecret_file = "/a"
toml: client without a name    | {door}[[door.client]]\nsecret_file = "/a"
toml: client without a secret  | {door}[[door.client]]\nname = "a"
toml: client named twice       | {door}[[door.client]]\nname = "a"\nsecret_file = "/a"\n[[door.client]]\nname = "a"\nsecret_file = "/b"
toml: window too wide          | {door}secret_file = "/s"\notp_window = 11
toml: step not whole seconds   | {door}secret_file = "/s"\notp_step = "1500ms"
toml: step of zero             | {door}secret_file = "/s"\notp_step = "0s"
toml: range too small          | {door}secret_file = "/s"\notp_ports = "9000-9002"
toml: missing secret file      | {door}secret_file = "/nonexistent/knockr.secret"
conf: port zero                | [d]\nsequence = 7000, 0:udp
conf: port too big             | [d]\nsequence = 7000,70000
conf: ICMP knock               | [d]\nsequence = 7000,56:icmp
conf: 33 knocks                | [d]\nsequence = 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
conf: unknown directive        | [d]\nsequence = 1\ncmd = x
conf: unknown option           | [options]\nLogfile = /l\nUser = nobody
conf: [Options] is a door      | [Options]\nLogFile = /l
conf: outside any section      | # knockd\nUseSyslog\n[d]\nsequence = 1
conf: no sequence              | [d]\nsequence = 1\n[e]\ncommand = x
conf: seq_timeout of zero      | [d]\nsequence = 7000:udp\nseq_timeout = 0
conf: timeout with a unit      | [d]\nsequence = 1\nseq_timeout = 5s
conf: UseSyslog with a value   | [options]\nUseSyslog = yes
conf: no equals sign           | [d]\nsequence 1
conf: trailing comma           | [d]\nsequence = 7000,8000,
conf: doubled comma            | [d]\nsequence = 7000,,8000
conf: negative timeout         | [d]\nsequence = 1\ncmd_timeout = -1
conf: timeout in hours         | [d]\nsequence = 1\nseq_timeout = 1h # an hour
conf: comment after a path     | [options]\nLogFile = /var/log/knockd.log # log\n[d]\nsequence = 1
conf: comment with a comma     | [d]\nsequence = 7000:udp # then, 8000
conf: comment as the value     | [d]\nsequence = 1\nseq_timeout = # none
conf: empty file               |
"#;

    fn conf(text: &str) -> ServerConfig {
        parse(Path::new("knockd.conf"), text).expect("the knockd.conf loads")
    }

    fn knocks(spec: &str) -> Sequence {
        Sequence::new(&knock::parse_list(spec, Proto::Tcp).unwrap()).unwrap()
    }

    /// A knockd.conf door in one line: `seq_timeout cmd_timeout: start start6 stop stop6`.
    fn summary(door: &DoorConfig) -> String {
        let shell = |action: &Option<Action>| match action {
            Some(Action::Shell(command)) => command.clone(),
            other => format!("{other:?}").replace("None", "-"),
        };
        let commands = [&door.start, &door.start6, &door.stop, &door.stop6].map(shell);
        let cmd_timeout = door.cmd_timeout.map_or("-".into(), units::format_duration);
        let seq_timeout = units::format_duration(door.door.seq_timeout);
        format!("{seq_timeout} {cmd_timeout}: {}", commands.join(" "))
    }

    #[test]
    fn the_knockd_example_parses_to_its_doors_and_commands() {
        insta::assert_debug_snapshot!(conf(KNOCKD_EXAMPLE));
    }

    #[test]
    fn aliases_and_ipv6_fallbacks_follow_knockd() {
        let config = conf(
            "[aliases]\nsequence = 1\ntimeout = 7\ncommand = on4\ncommand_6 = on6\nstop_command = off4\n\
             [explicit]\nsequence = 2\nstart_command = on4\nstart_command_6 = on6\n\
             stop_command = off4\nstop_command_6 = off6\ncmd_timeout = 3\n\
             [disabled6]\nsequence = 3\nstart_command = on4\nstart_command_6 =\n\
             stop_command = off4\nstop_command_6 =\n[defaults]\nsequence = 4\n",
        );
        let summaries: Vec<String> = config.doors.iter().map(summary).collect();
        let expected = [
            "7s 10s: on4 on6 off4 off4",
            "25s 3s: on4 on6 off4 off6",
            "25s 10s: on4 - off4 -",
        ];
        assert_eq!(summaries, [&expected[..], &["25s -: - - - -"]].concat());
    }

    #[test]
    fn directive_names_and_protocols_are_case_insensitive() {
        let config = conf(
            "[options]\n  # comment\n\nINTERFACE = wlan0\n[d]\nSEQUENCE = 1:UDP, 2:Tcp\n\
             Seq_TimeOut = 3\nTcpFlags = SYN\nTARGET = 2001:db8::1\nCoMmAnD = x\n",
        );
        let door = &config.doors[0];
        assert_eq!(config.interfaces, ["wlan0"]);
        assert_eq!(door.door.sequence, knocks("1:udp,2:tcp"));
        assert_eq!(door.door.flags, FlagRule::parse("syn").unwrap());
        assert_eq!(door.door.target, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(summary(door), "3s -: x x - -");
    }

    /// As `knockd -D` shows knockd 0.8 reading them: numbers, ports, flags
    /// and addresses without their comment; commands whole, for the shell.
    #[test]
    fn a_comment_after_a_value_is_read_as_knockd_reads_it() {
        let config = conf(
            "[options]\nInterface = eth1 # uplink\nUseSyslog # too\nLogFile = /srv/k#1.log\n\
             [d]\nsequence = 7000,8000:udp,9000 # knock\nseq_timeout = 10 # seconds\n\
             tcpflags = syn,!ack # new connections\ntarget = 192.0.2.1 # wan\n\
             cmd_timeout = 5# s\nstart_command = echo %IP% # a shell comment\nstop_command = x\n",
        );
        let door = &config.doors[0];
        assert_eq!(config.interfaces, ["eth1"]);
        assert!(config.use_syslog);
        assert_eq!(config.log_file, Some("/srv/k#1.log".into()));
        assert_eq!(door.door.sequence, knocks("7000,8000:udp,9000"));
        assert_eq!(door.door.flags, FlagRule::parse("syn,!ack").unwrap());
        assert_eq!(door.door.target, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            summary(door),
            "10s 5s: echo %IP% # a shell comment echo %IP% # a shell comment x x"
        );
    }

    #[test]
    fn repeated_section_names_become_distinct_doors_and_a_warning() {
        let config = conf(
            "[ssh]\nsequence = 1\ntcpflags = syn\ncommand = a\n[ssh#2]\nsequence = 2\n\
             tcpflags = syn\ncommand = b\n[ssh]\nsequence = 3\ntcpflags = syn\ncommand = c\n\
             [ssh]\nsequence = 4\ntcpflags = syn\ncommand = d\n",
        );
        let names: Vec<(&str, Option<&str>)> = config
            .doors
            .iter()
            .map(|d| (d.door.name.as_str(), d.repeats.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("ssh", None),
                ("ssh#2", None),
                ("ssh#3", Some("ssh")),
                ("ssh#4", Some("ssh"))
            ]
        );
        let lints: Vec<String> = lint(&config).into_iter().map(|l| l.message).collect();
        assert_eq!(
            lints,
            [3, 4].map(|n| format!(
                "door `ssh#{n}` repeats section [ssh] of line 1: knockd runs both, and so does \
                 knockr, logging this one as `ssh#{n}`; give each section a name of its own"
            ))
        );
    }

    #[test]
    fn use_syslog_is_a_bare_word_and_off_by_default() {
        assert!(conf("[options]\n  UseSyslog  \n[d]\nsequence = 1\n").use_syslog);
        assert!(!conf("[options]\nlogfile = /l\n[d]\nsequence = 1\n").use_syslog);
    }

    #[test]
    fn the_toml_example_gives_the_door_it_spells_out() {
        let config = parse(Path::new("knockr.toml"), TOML_EXAMPLE).unwrap();
        let argv = |line: &str| Some(Action::Argv(line.split(' ').map(String::from).collect()));
        let door = DoorConfig {
            door: Door {
                name: "openSSH".into(),
                sequence: knocks("7000,8000:udp,9000"),
                seq_timeout: Duration::from_secs(5),
                flags: FlagRule::parse("syn,!ack").unwrap(),
                target: Some("192.0.2.1".parse().unwrap()),
                strict: false,
                tolerate_repeats: false,
            },
            one_time_sequences: None,
            otp: None,
            start: argv("/usr/sbin/nft add element inet fw knocked { %IP% }"),
            start6: argv("/usr/sbin/nft add element inet fw knocked { %IP% }"),
            stop: argv("/usr/sbin/nft delete element inet fw knocked { %IP% }"),
            stop6: argv("/usr/sbin/nft delete element inet fw knocked { %IP% }"),
            cmd_timeout: Some(Duration::from_secs(10)),
            setup: argv("/usr/sbin/nft -f /etc/knockr/fw.nft"),
            teardown: argv("/usr/sbin/nft delete table inet fw"),
            routeros: None,
            nftables: None,
            line: 10,
            repeats: None,
        };
        let expected = ServerConfig {
            interfaces: vec!["eth0".into()],
            log_file: Some("/var/log/knockr.log".into()),
            pid_file: Some("/run/knockr.pid".into()),
            user: Some("nobody".into()),
            doors: vec![door],
            ..ServerConfig::new(Path::new("knockr.toml"), Format::Toml)
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn the_format_comes_from_the_content_not_the_file_name() {
        let text = "[[door]]\nname = \"d\"\nsequence = [1]\ntcp_flags = [\"syn\", \"!ack\"]\n";
        let as_toml = parse(Path::new("knockd.conf"), text).unwrap();
        assert_eq!(as_toml.format, Format::Toml);
        assert_eq!(
            as_toml.doors[0].door.flags,
            FlagRule::parse("syn,!ack").unwrap()
        );
        let as_conf = parse(Path::new("knockr.toml"), "[d]\nsequence = 1\n").unwrap();
        assert_eq!(as_conf.format, Format::KnockdConf);
    }

    #[test]
    fn substitute_fills_in_ipv4_and_ipv6_addresses_and_the_door() {
        let action = Action::Argv(vec!["{ %IP% }".into(), "%DOOR%-%IP%".into()]);
        let done = action.substitute("192.0.2.7".parse().unwrap(), "ssh");
        assert_eq!(
            done,
            Action::Argv(vec!["{ 192.0.2.7 }".into(), "ssh-192.0.2.7".into()])
        );
        let action = Action::Shell("ip6tables -s %IP% # %DOOR%".into());
        let done = action.substitute("2001:db8::1".parse().unwrap(), "d");
        assert_eq!(done, Action::Shell("ip6tables -s 2001:db8::1 # d".into()));
    }

    #[test]
    fn shell_commands_receive_only_address_characters() {
        // The knocker's address arrives as an IpAddr, and text with shell syntax is not one.
        assert!("1.2.3.4; rm -rf /".parse::<IpAddr>().is_err());
        assert!("::1$(reboot)".parse::<IpAddr>().is_err());
        for ip in ["::ffff:1.2.3.4", "1.2.3.4", "fe80::1", "2001:db8::8329"] {
            let done = Action::Shell("%IP%".into()).substitute(ip.parse().unwrap(), "d");
            assert_eq!(done, Action::Shell(ip.into()));
            assert!(
                ip.chars()
                    .all(|c| c.is_ascii_hexdigit() || ".:".contains(c))
            );
        }
    }

    proptest::proptest! {
        /// Whatever address a packet carries, the shell sees only address
        /// characters where %IP% stood: no quoting, spacing or syntax.
        #[test]
        fn no_address_can_inject_shell_syntax(bits: u128, v6: bool) {
            let ip: IpAddr = if v6 { std::net::Ipv6Addr::from(bits).into() } else { std::net::Ipv4Addr::from(bits as u32).into() };
            let Action::Shell(done) = Action::Shell("echo %IP% >> /tmp/x".into()).substitute(ip, "d") else { unreachable!() };
            let inserted = done.strip_prefix("echo ").and_then(|s| s.strip_suffix(" >> /tmp/x")).unwrap();
            proptest::prop_assert!(!inserted.is_empty() && inserted.chars().all(|c| c.is_ascii_hexdigit() || ".:".contains(c)), "{}", inserted);
        }
    }

    #[test]
    fn error_messages() {
        let report: String = ERROR_CASES
            .lines()
            .filter_map(|line| line.split_once('|'))
            .map(|(what, text)| {
                let file = if what.starts_with("toml") {
                    "knockr.toml"
                } else {
                    "knockd.conf"
                };
                let text = text.trim().replace("{door}", "[[door]]\\nname = \"d\"\\n");
                let err = parse(Path::new(file), &text.replace("\\n", "\n")).expect_err(what);
                format!("{}:\n  {err}\n", what.trim())
            })
            .collect();
        insta::assert_snapshot!(report);
    }

    #[test]
    fn lint_names_each_risky_door() {
        let config = conf(
            "[ascending]\nsequence = 1,2:udp,3\ntcpflags = syn\ncommand = x\n\
             [descending]\nsequence = 19:udp,18:udp\ncommand = x\n\
             [no_syn]\nsequence = 25,24,26\ncommand = x\n\
             [first]\nsequence = 37:udp,33:udp,38:udp\ncommand = x\n\
             [shared]\nsequence = 47:udp,33:udp,45:udp\ncommand = x\n\
             [quiet]\nsequence = 56:udp,52:udp,57:udp\nstop_command = x\n\
             [fine]\nsequence = 66,33,67\ntcpflags = syn,!ack\ncommand = x\n",
        );
        let report: Vec<String> = lint(&config)
            .into_iter()
            .map(|lint| format!("{}: {}", lint.door.unwrap_or_default(), lint.message))
            .collect();
        insta::assert_snapshot!(report.join("\n"));
        let toml = "[[door]]\nname = \"t\"\nsequence = [5, 4, 6]\nstart = [\"x\"]\n";
        let lints = lint(&parse(Path::new("knockr.toml"), toml).unwrap());
        assert!(
            lints[0].message.ends_with("set tcp_flags = \"syn\""),
            "{lints:?}"
        );
    }

    #[test]
    fn a_door_with_a_secret_takes_the_profiles_defaults_and_no_sequence() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let door = format!(
            "[[door]]\nname = \"d\"\nsecret_file = \"{}\"\n",
            secret.display()
        );
        let config = parse(Path::new("k.toml"), &door).unwrap();
        let otp = config.doors[0].otp.as_ref().unwrap();
        let profile = format!(
            "[profiles.d]\nhost = \"h\"\nsecret_file = \"{}\"\n",
            secret.display()
        );
        let profiles =
            crate::config::profiles::Profiles::parse(Path::new("p.toml"), &profile).unwrap();
        let crate::config::profiles::Profile::Hosts { sequence, .. } = &profiles.profiles["d"]
        else {
            panic!("a profile with hosts")
        };
        let crate::config::profiles::Sequence::Otp(client) = sequence else {
            panic!("a time-based profile")
        };
        assert_eq!(otp.spec, client.spec, "one set of defaults for both sides");
        assert_eq!((otp.window, otp.clients.len()), (1, 1));
        assert_eq!(otp.clients[0].secret.bytes(), b"12345678901234567890");
        assert!(config.doors[0].door.sequence.is_empty());
        assert!(
            !format!("{config:?}").contains("12345"),
            "Debug hides the secret"
        );
        let err = parse(Path::new("k.toml"), &format!("{door}sequence = [1]\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "k.toml:3:15: door `d` has a secret and also sequence or one_time_sequences: \
             expected one of them (a secret derives the sequence)"
        );
    }

    /// Found while taking the `expect("checked")` out of the door checks: a
    /// time-based door skipped the name checks, so two doors named alike (or
    /// a name of control characters) loaded, and the log and a reload's
    /// replay cache could not tell them apart.
    #[test]
    fn regression_time_based_doors_skipped_the_name_checks() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let door = |name: &str| {
            format!(
                "[[door]]\nname = \"{name}\"\nsecret_file = \"{}\"\n",
                secret.display()
            )
        };
        let error = |text: String| parse(Path::new("k.toml"), &text).unwrap_err().to_string();
        assert_eq!(
            error(door("d") + &door("d")),
            "k.toml:5:8: door name `d` is already used on line 1: expected unique names"
        );
        assert_eq!(
            error(door("\\u001b[2J")),
            "k.toml:2:8: door name \"\\u{1b}[2J\" is not usable: expected a name without control characters"
        );
        assert!(parse(Path::new("k.toml"), &(door("d") + &door("e"))).is_ok());
    }

    #[test]
    fn one_time_files_are_checked_for_the_account_that_rewrites_them() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let [present, missing] = ["present", "missing"].map(|name| dir.path().join(name));
        std::fs::write(&present, " 1,2,3\n").unwrap();
        let door = |file: &Path| {
            let name = file.file_name().unwrap().to_string_lossy();
            let file = file.display();
            format!("[{name}]\none_time_sequences = {file}\ntcpflags = syn\ncommand = x\n")
        };
        let me = Account::current();
        assert_eq!(check_files(&conf(&door(&present)), None), Ok(()));
        let err = check_files(&conf(&(door(&present) + &door(&missing))), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "door `missing`: its one-time sequences {} cannot be rewritten by {}: cannot read it",
                missing.display(),
                me.name
            )),
            "{err}"
        );
        assert!(!missing.exists(), "checking must not create the file");
        // Someone else, to whom the directory is closed.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let other = Account {
            name: "u4000003".into(),
            uid: 4_000_003,
            gid: 4_000_003,
            groups: Vec::new(),
        };
        let err = check_one_time_files(&conf(&door(&present)), &other)
            .unwrap_err()
            .to_string();
        assert!(err.contains("u4000003 cannot write its directory"), "{err}");
        assert!(err.ends_with("so knockd refuses the file"), "{err}");
    }

    #[test]
    fn the_state_file_is_a_default_under_var_lib_unless_either_format_names_one() {
        let door = "[[door]]\nname = \"d\"\nsequence = [1]\n";
        let toml = |text: &str| parse(Path::new("k.toml"), text).unwrap().state_file;
        assert_eq!(toml(door), Path::new(DEFAULT_STATE_FILE));
        assert_eq!(
            toml(&format!("[knockd]\nstate_file = \"/srv/k.state\"\n{door}")),
            Path::new("/srv/k.state")
        );
        let conf = conf("[options]\nStateFile = /srv/knockd.state\n[d]\nsequence = 1\n");
        assert_eq!(conf.state_file, Path::new("/srv/knockd.state"));
    }
}
