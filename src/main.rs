//! Parses the arguments, runs, and maps the outcome to an exit status.

use std::process::ExitCode as ProcessExitCode;

use knockr::cli::Cli;
use knockr::exit_codes::ExitCode;

fn main() -> ProcessExitCode {
    #[cfg(feature = "dynamic-completion")]
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();

    // clap exits 2 on usage errors (a knocking flag before a subcommand
    // too) and 0 for --help and --version.
    let cli = Cli::parse_args();
    match knockr::app::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            let broken_pipe = err
                .chain()
                .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
                .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
            if broken_pipe {
                // The reader went away (`knockr list | head -1`): nothing left to say.
                return ExitCode::Success.into();
            }
            eprintln!("knockr: {err:#}");
            knockr::app::status_of(&err).into()
        }
    }
}
