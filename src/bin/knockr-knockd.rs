//! The server half of knockr: `knockr knockd` execs this with its own
//! arguments, so only this executable links libpcap. Parses the same
//! command line as `knockr` and maps the outcome to an exit status the same
//! way.

use std::process::ExitCode as ProcessExitCode;

use knockr::cli::Cli;

fn main() -> ProcessExitCode {
    let cli = Cli::parse_args();
    knockr::app::finish(knockr::app::run_server_half(cli)).into()
}
