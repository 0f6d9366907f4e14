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
    if args.check {
        return check(&config);
    }
    let options = server::Options {
        interfaces: args.interfaces.clone(),
        json: args.json,
        verbose: args.verbose,
        dry_run: args.dry_run,
        state_file: args.state_file.clone(),
    };
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

/// `--check`: the config loaded; print its doors and the lint warnings.
/// The files it names are judged as a start judges them (a one-time file
/// the account cannot rewrite, a password file others can read): the same
/// error, and the status of a configuration error.
fn check(config: &ServerConfig) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    config::check_files(config)?;
    let mut out = std::io::stdout().lock();
    let format = match config.format {
        config::Format::Toml => "knockr TOML",
        config::Format::KnockdConf => "knockd.conf",
    };
    writeln!(
        out,
        "{}: {format}, {} door(s)",
        config.path.display(),
        config.doors.len()
    )?;
    for door in &config.doors {
        let sequence = match (&door.one_time_sequences, &door.otp) {
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
            (None, None) => door
                .door
                .sequence
                .knocks()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(","),
        };
        writeln!(
            out,
            "  {}: {sequence}, timeout {}",
            door.door.name,
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
    }
    for lint in config::lint(config) {
        match lint.door {
            Some(door) => writeln!(out, "warning: {door}: {}", lint.message)?,
            None => writeln!(out, "warning: {}", lint.message)?,
        }
    }
    Ok(ExitCode::Success)
}
