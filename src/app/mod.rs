//! One file per subcommand: the parsed command line becomes a plan, the plan
//! runs, and the outcome becomes an exit code. This is the only room that
//! sees both the client and the server, and (with `cli`) the only one that
//! sees clap.

mod completions;
mod connect;
mod knock;
#[cfg(feature = "server")]
mod knockd;
mod list;
mod nft;
mod routeros;
mod secret;

use crate::cli::{Cli, Command};
use crate::exit_codes::ExitCode;

/// Runs a parsed command line. `Err` carries a usage or configuration error
/// (exit 2: a `PlanError` or `ConfigError`) or a failure (exit 1).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Connect(args)) => connect::run(&args, cli.profiles.config),
        Some(Command::List { config }) => list::run(config.or(cli.profiles.config)),
        Some(Command::Completions { shell }) => completions::run(shell),
        Some(Command::Man { dir }) => completions::man(dir.as_deref()),
        #[cfg(feature = "server")]
        Some(Command::Knockd(_)) => exec_server_half(),
        Some(Command::Secret {
            command: crate::cli::SecretCommand::New,
        }) => secret::new(),
        Some(Command::Routeros {
            command: crate::cli::RouterosCommand::Rules(args),
        }) => routeros::rules(&args, cli.profiles.config),
        #[cfg(feature = "server")]
        Some(Command::Routeros {
            command: crate::cli::RouterosCommand::Check(args),
        }) => routeros::check(&args),
        #[cfg(feature = "server")]
        Some(Command::Routeros {
            command: crate::cli::RouterosCommand::Apply(args),
        }) => routeros::apply(&args),
        Some(Command::Nft {
            command: crate::cli::NftCommand::Rules(args),
        }) => nft::rules(&args, cli.profiles.config),
        None => knock::run(&cli.knock, cli.profiles.config),
    }
}

/// Runs a parsed command line in the server half, `knockr-knockd`: only
/// `knockr knockd`, which the front door execs it for.
#[cfg(feature = "server")]
pub fn run_server_half(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Knockd(args)) => knockd::run(&args),
        _ => anyhow::bail!("{SERVER_HALF} runs `knockr knockd` only; use knockr for the rest"),
    }
}

/// The server half's executable: installed next to `knockr`.
#[cfg(feature = "server")]
const SERVER_HALF: &str = "knockr-knockd";

/// `knockr knockd ...`: replaces this process by the server half with the
/// same arguments (already checked by clap here), environment and process
/// id, as git runs its subcommands. The client never links libpcap, whose
/// own dependencies would cost every `knockr` run most of its start-up.
#[cfg(feature = "server")]
fn exec_server_half() -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt as _;
    let path = server_half_path().ok_or_else(|| {
        anyhow::anyhow!(
            "`knockr knockd` needs the {SERVER_HALF} executable, next to knockr or on PATH; \
             `cargo install --path .` installs both"
        )
    })?;
    let err = std::process::Command::new(&path)
        .arg0("knockr")
        .args(std::env::args_os().skip(1))
        .exec();
    Err(anyhow::Error::new(err).context(format!("cannot run {}", path.display())))
}

/// Where the server half is: next to this executable (an install, or
/// cargo's target directory), else the first on PATH.
#[cfg(feature = "server")]
fn server_half_path() -> Option<std::path::PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(SERVER_HALF))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(SERVER_HALF))
                .find(|p| p.is_file())
        })
    })
}

/// What a run's outcome says on stderr and returns as the exit status: the
/// error (with its causes) and [`status_of`] it; nothing for a reader that
/// went away (`knockr list | head -1`).
pub fn finish(outcome: anyhow::Result<ExitCode>) -> ExitCode {
    let err = match outcome {
        Ok(code) => return code,
        Err(err) => err,
    };
    let broken_pipe = err
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
    if broken_pipe {
        return ExitCode::Success;
    }
    eprintln!("knockr: {err:#}");
    status_of(&err)
}

/// The exit status for an error [`run`] returned: 2 for usage and
/// configuration errors (nothing was sent or started), 1 for the rest.
pub fn status_of(err: &anyhow::Error) -> ExitCode {
    let usage = err
        .downcast_ref::<crate::client::plan::PlanError>()
        .is_some()
        || err
            .downcast_ref::<crate::config::profiles::ConfigError>()
            .is_some();
    if usage {
        ExitCode::Usage
    } else {
        ExitCode::Failure
    }
}

/// A current-thread tokio runtime: the client and the checks wait on sockets
/// and timers, so one thread is plenty.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
