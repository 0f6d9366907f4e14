//! `knockr connect TARGET [PORT]`: knock, then relay stdin/stdout (ssh's ProxyCommand).

use std::path::PathBuf;
use std::time::SystemTime;

use crate::cli::ConnectArgs;
use crate::client::connect::{self, Connection};
use crate::client::plan;
use crate::exit_codes::ExitCode;

pub(super) fn run(args: &ConnectArgs, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = args.config.clone().or(config);
    let connection = Connection::new(&args.request(), args.port, || plan::load_profiles(config))?;
    let run = connection.plan().read_sequences(SystemTime::now())?;
    let runtime = super::runtime()?;
    let result = runtime.block_on(connect::connect(&connection, &run));
    // A read of stdin may still be blocked in its thread: do not wait for it.
    runtime.shutdown_background();
    result
}
