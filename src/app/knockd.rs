//! `knockr knockd`: `--check` (load, print the doors and the lint), `--convert`
//! (a knockd.conf printed as TOML), `--read`
//! (replay a capture) or serve live, with the signal handlers installed here
//! and handed to the server as requests.

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::KnockdArgs;
use crate::config::server::{self as config, ServerConfig};
use crate::exit_codes::ExitCode;
use crate::server::{self, Ending, Request};

pub(super) fn run(args: &KnockdArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.convert {
        return convert(file);
    }
    let config = config::load(&args.config)?;
    let options = server::Options {
        interfaces: args.interfaces.clone(),
        json: args.json,
        verbose: args.verbose,
        dry_run: args.dry_run,
        state_file: args.state_file.clone(),
    };
    if args.check {
        return check(&config, &options);
    }
    if let Some(read) = &args.read {
        server::replay_file(config, read, &options)?;
        return Ok(ExitCode::Success);
    }
    ignore_until_handled();
    let started = server::start(config, &args.config, &options)?;
    let pid_file = started.pid_file();
    let runtime = super::runtime()?;
    let ending = runtime.block_on(async {
        let requests = forward_signals()?;
        server::serve(started, requests).await
    })?;
    if let Some(pid_file) = pid_file {
        // Best effort: after dropping privileges the directory may not let us.
        let _ = std::fs::remove_file(pid_file);
    }
    Ok(match ending {
        Ending::Asked => ExitCode::Success,
        Ending::CaptureFailed(why) => {
            // Also here, not only in the log file: the journal shows why a
            // supervisor had to restart us.
            eprintln!("knockr knockd: {why}; exiting with status 1 (to be restarted)");
            ExitCode::Failure
        }
    })
}

/// `--convert`: the knockd.conf at `file` as knockr's TOML on stdout. It
/// is loaded as a start loads it, so a file knockr would refuse is refused
/// here with the same message, and what is printed is what knockr runs.
fn convert(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let toml = crate::config::convert::to_toml(&config::load(file)?)?;
    std::io::stdout().lock().write_all(toml.as_bytes())?;
    Ok(ExitCode::Success)
}

/// SIGHUP and SIGUSR1 are ignored from before the pid file is written until
/// [`forward_signals`] handles them: by default either kills, and logrotate
/// sends SIGUSR1 to whatever pid the file names. (SIGTERM and SIGINT keep
/// killing a knockd still starting: that is what they ask.) No command runs
/// in between, and a handled signal is reset at exec, so no command inherits
/// the ignoring.
fn ignore_until_handled() {
    for signal in [libc::SIGHUP, libc::SIGUSR1] {
        // SAFETY: SIG_IGN is a valid disposition for both, set before any
        // other thread exists.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
}

/// SIGTERM and SIGINT become [`Request::Stop`], SIGHUP [`Request::Reload`]
/// (which reopens the log too), SIGUSR1 [`Request::ReopenLog`].
fn forward_signals() -> std::io::Result<tokio::sync::mpsc::Receiver<Request>> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigusr1 = signal(SignalKind::user_defined1())?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let request = tokio::select! {
                _ = sigterm.recv() => Request::Stop,
                _ = sigint.recv() => Request::Stop,
                _ = sighup.recv() => Request::Reload,
                _ = sigusr1.recv() => Request::ReopenLog,
            };
            if tx.send(request).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// `--check`: what a start with these options would refuse is refused
/// here, with the same words and the status of a configuration error
/// ([`server::preflight`]); else the doors and the warnings, as text or
/// (`--json`) one JSON document of a stable shape ([`CheckReport`]).
fn check(config: &ServerConfig, options: &server::Options) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let mut lints = server::preflight(config, options)?;
    lints.extend(config::lint(config));
    let mut out = std::io::stdout().lock();
    if options.json {
        let report = CheckReport::of(config, options, &lints);
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(ExitCode::Success);
    }
    writeln!(
        out,
        "{}: {}, {} door(s)",
        config.path.display(),
        format_name(config.format),
        config.doors.len()
    )?;
    for door in &config.doors {
        writeln!(
            out,
            "  {}: {}, timeout {}",
            door.door.name,
            sequence_text(door),
            crate::core::units::format_duration(door.door.seq_timeout)
        )?;
        if let Some(action) = &door.routeros {
            let urls: Vec<&str> = action.routers.iter().map(|r| r.url.as_str()).collect();
            writeln!(
                out,
                "    routeros: {} list {}, timeout {}, {}",
                urls.join(", "),
                action.list,
                crate::routeros::timeout::format(action.timeout),
                action.routers[0].trust.describe()
            )?;
        }
        if let Some(action) = &door.nftables {
            let sets: Vec<String> = action.sets().map(|s| s.to_string()).collect();
            writeln!(
                out,
                "    nftables: {}, timeout {}",
                sets.join(" and "),
                crate::core::units::format_duration(action.timeout)
            )?;
        }
    }
    for lint in lints {
        match lint.door {
            Some(door) => writeln!(out, "warning: {door}: {}", lint.message)?,
            None => writeln!(out, "warning: {}", lint.message)?,
        }
    }
    Ok(ExitCode::Success)
}

/// The format's name, as `--check` prints it.
fn format_name(format: config::Format) -> &'static str {
    match format {
        config::Format::Toml => "knockr TOML",
        config::Format::KnockdConf => "knockd.conf",
    }
}

/// A door's sequence in one line of `--check`'s text.
fn sequence_text(door: &config::DoorConfig) -> String {
    match (&door.one_time_sequences, &door.otp) {
        (Some(path), _) => format!("one-time sequences from {}", path.display()),
        (None, Some(otp)) => {
            let protos: Vec<String> = otp.spec.protos().iter().map(|p| p.to_string()).collect();
            let clients: Vec<&str> = otp
                .clients
                .iter()
                .map(|c| c.name.as_deref().unwrap_or("(one secret)"))
                .collect();
            format!(
                "time-based sequences of {} knocks in {}-{} ({}), steps of {}s, window +-{}, clients {}",
                otp.spec.length(),
                otp.spec.low(),
                otp.spec.high(),
                protos.join(","),
                otp.spec.step(),
                otp.window,
                clients.join(", ")
            )
        }
        (None, None) => knocks(door).join(","),
    }
}

/// A fixed sequence's knocks as written back (`7000:tcp`); none for a
/// one-time or time-based door, whose knocks are not in the file.
fn knocks(door: &config::DoorConfig) -> Vec<String> {
    door.door.sequence.knocks().map(|k| k.to_string()).collect()
}

/// `--check --json`: one document that tools can diff between two
/// configurations. Its shape is documented in README ("`--check`"); keys
/// are only ever added, and `knockr_check` changes if one changes meaning.
/// Durations are whole milliseconds; an absent value is `null`.
#[derive(serde::Serialize)]
struct CheckReport<'a> {
    /// The version of this shape.
    knockr_check: u32,
    config: &'a std::path::Path,
    /// `"toml"` or `"knockd.conf"`.
    format: &'static str,
    /// What a start would capture on (`-i`, else the file's, else `any`).
    interfaces: Vec<String>,
    user: Option<&'a str>,
    log_file: Option<&'a std::path::Path>,
    syslog: bool,
    pid_file: Option<&'a std::path::Path>,
    /// The state file a start would keep (`--state-file`, else the file's).
    state_file: std::path::PathBuf,
    max_sources: usize,
    max_commands: usize,
    max_command_time_ms: u128,
    doors: Vec<DoorReport<'a>>,
    warnings: Vec<WarningReport<'a>>,
}

/// One door in [`CheckReport`].
#[derive(serde::Serialize)]
struct DoorReport<'a> {
    name: &'a str,
    /// The line it starts on.
    line: usize,
    /// `"fixed"`, `"one_time"` or `"time_based"`.
    kind: &'static str,
    /// A fixed sequence's knocks, `PORT:PROTO`; empty for the other kinds.
    knocks: Vec<String>,
    one_time_sequences: Option<&'a std::path::Path>,
    time_based: Option<TimeBasedReport<'a>>,
    seq_timeout_ms: u128,
    /// `syn,!ack`: flags that must be set, then `!` those that must be clear.
    tcp_flags: String,
    target: Option<std::net::IpAddr>,
    strict: bool,
    tolerate_repeats: bool,
    start: Option<CommandReport<'a>>,
    start6: Option<CommandReport<'a>>,
    stop: Option<CommandReport<'a>>,
    stop6: Option<CommandReport<'a>>,
    cmd_timeout_ms: Option<u128>,
    setup: Option<CommandReport<'a>>,
    teardown: Option<CommandReport<'a>>,
    routeros: Option<RouterosReport<'a>>,
    nftables: Option<NftablesReport>,
}

/// A door's nftables sets, each as `nft` names it (`inet knockr knocked_v4`).
#[derive(serde::Serialize)]
struct NftablesReport {
    /// Where IPv4 knockers go, if anywhere.
    set: Option<String>,
    /// Where IPv6 knockers go, if anywhere.
    set6: Option<String>,
    timeout_ms: u128,
}

/// A time-based door's shape; the secrets themselves never appear.
#[derive(serde::Serialize)]
struct TimeBasedReport<'a> {
    length: usize,
    ports: String,
    protocols: Vec<String>,
    avoid: &'a [u16],
    step_secs: u64,
    window: u64,
    clients: Vec<ClientReport<'a>>,
}

#[derive(serde::Serialize)]
struct ClientReport<'a> {
    /// `null` for a door's own `secret_file`.
    name: Option<&'a str>,
    secret_file: &'a std::path::Path,
}

/// A command: an array for an argv run without a shell (TOML), a string
/// for a knockd.conf line run by `/bin/sh -c`.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum CommandReport<'a> {
    Argv(&'a [String]),
    Shell(&'a str),
}

#[derive(serde::Serialize)]
struct RouterosReport<'a> {
    routers: Vec<RouterReport<'a>>,
    list: &'a str,
    timeout_ms: u128,
}

#[derive(serde::Serialize)]
struct RouterReport<'a> {
    url: &'a str,
    user: &'a str,
    /// How the router's certificate is checked, in words.
    trust: String,
}

#[derive(serde::Serialize)]
struct WarningReport<'a> {
    /// `null` for the file as a whole (a missing interface).
    door: Option<&'a str>,
    message: &'a str,
}

impl<'a> CheckReport<'a> {
    fn of(
        config: &'a ServerConfig,
        options: &server::Options,
        lints: &'a [config::Lint],
    ) -> CheckReport<'a> {
        CheckReport {
            knockr_check: 1,
            config: &config.path,
            format: match config.format {
                config::Format::Toml => "toml",
                config::Format::KnockdConf => "knockd.conf",
            },
            interfaces: options.interfaces_for(config),
            user: config.user.as_deref(),
            log_file: config.log_file.as_deref(),
            syslog: config.use_syslog,
            pid_file: config.pid_file.as_deref(),
            state_file: options.state_file_for(config),
            max_sources: config.max_sources,
            max_commands: config.max_commands,
            max_command_time_ms: config.max_command_time.as_millis(),
            doors: config.doors.iter().map(DoorReport::of).collect(),
            warnings: lints
                .iter()
                .map(|lint| WarningReport {
                    door: lint.door.as_deref(),
                    message: &lint.message,
                })
                .collect(),
        }
    }
}

impl<'a> DoorReport<'a> {
    fn of(door: &'a config::DoorConfig) -> DoorReport<'a> {
        let command = |action: &'a Option<config::Action>| {
            action.as_ref().map(|action| match action {
                config::Action::Argv(argv) => CommandReport::Argv(argv),
                config::Action::Shell(line) => CommandReport::Shell(line),
            })
        };
        let kind = match (&door.one_time_sequences, &door.otp) {
            (Some(_), _) => "one_time",
            (None, Some(_)) => "time_based",
            (None, None) => "fixed",
        };
        DoorReport {
            name: &door.door.name,
            line: door.line,
            kind,
            knocks: knocks(door),
            one_time_sequences: door.one_time_sequences.as_deref(),
            time_based: door.otp.as_ref().map(|otp| TimeBasedReport {
                length: otp.spec.length(),
                ports: format!("{}-{}", otp.spec.low(), otp.spec.high()),
                protocols: otp.spec.protos().iter().map(|p| p.to_string()).collect(),
                avoid: otp.spec.avoid(),
                step_secs: otp.spec.step(),
                window: otp.window,
                clients: otp
                    .clients
                    .iter()
                    .map(|c| ClientReport {
                        name: c.name.as_deref(),
                        secret_file: &c.secret_file,
                    })
                    .collect(),
            }),
            seq_timeout_ms: door.door.seq_timeout.as_millis(),
            tcp_flags: flags_text(door.door.flags),
            target: door.door.target,
            strict: door.door.strict,
            tolerate_repeats: door.door.tolerate_repeats,
            start: command(&door.start),
            start6: command(&door.start6),
            stop: command(&door.stop),
            stop6: command(&door.stop6),
            cmd_timeout_ms: door.cmd_timeout.map(|t| t.as_millis()),
            setup: command(&door.setup),
            teardown: command(&door.teardown),
            routeros: door.routeros.as_ref().map(|action| RouterosReport {
                routers: action
                    .routers
                    .iter()
                    .map(|r| RouterReport {
                        url: &r.url,
                        user: &r.user,
                        trust: r.trust.describe(),
                    })
                    .collect(),
                list: &action.list,
                timeout_ms: action.timeout.as_millis(),
            }),
            nftables: door.nftables.as_ref().map(|action| NftablesReport {
                set: action.set.as_ref().map(|s| s.to_string()),
                set6: action.set6.as_ref().map(|s| s.to_string()),
                timeout_ms: action.timeout.as_millis(),
            }),
        }
    }
}

/// A flag rule as `tcp_flags` writes it, in a fixed order: `syn,!ack`.
fn flags_text(rule: crate::core::matcher::FlagRule) -> String {
    use crate::core::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN, URG};
    let names = [
        (FIN, "fin"),
        (SYN, "syn"),
        (RST, "rst"),
        (PSH, "psh"),
        (ACK, "ack"),
        (URG, "urg"),
    ];
    let set = names.iter().filter(|(bit, _)| rule.set & bit != 0);
    let unset = names.iter().filter(|(bit, _)| rule.unset & bit != 0);
    set.map(|(_, name)| name.to_string())
        .chain(unset.map(|(_, name)| format!("!{name}")))
        .collect::<Vec<_>>()
        .join(",")
}
