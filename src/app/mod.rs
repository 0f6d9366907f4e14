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
mod routeros;
mod secret;

use crate::cli::{Cli, Command};
use crate::exit_codes::ExitCode;

/// Runs a parsed command line. `Err` carries a usage or configuration error
/// (exit 2: a `PlanError` or `ConfigError`) or a failure (exit 1).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Connect(args)) => connect::run(&args, cli.config),
        Some(Command::List { config }) => list::run(config.or(cli.config)),
        Some(Command::Completions { shell }) => completions::run(shell),
        Some(Command::Man { dir }) => completions::man(dir.as_deref()),
        #[cfg(feature = "server")]
        Some(Command::Knockd(args)) => knockd::run(&args),
        Some(Command::Secret {
            command: crate::cli::SecretCommand::New,
        }) => secret::new(),
        Some(Command::Routeros {
            command: crate::cli::RouterosCommand::Rules(args),
        }) => routeros::rules(&args, cli.config),
        #[cfg(feature = "server")]
        Some(Command::Routeros {
            command: crate::cli::RouterosCommand::Check(args),
        }) => routeros::check(&args),
        #[cfg(feature = "server")]
        Some(Command::Routeros {
            command: crate::cli::RouterosCommand::Apply(args),
        }) => routeros::apply(&args),
        None => knock::run(&cli.knock, cli.config),
    }
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
