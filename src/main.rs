//! Parses the arguments, runs, and maps the outcome to an exit status.

use std::process::ExitCode as ProcessExitCode;

use knockr::cli::Cli;

fn main() -> ProcessExitCode {
    #[cfg(feature = "dynamic-completion")]
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();

    // clap exits 2 on usage errors (a knocking flag before a subcommand
    // too) and 0 for --help and --version.
    let cli = Cli::parse_args();
    knockr::app::finish(knockr::app::run(cli)).into()
}
