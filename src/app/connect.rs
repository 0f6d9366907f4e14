//! `knockr connect PROFILE [PORT]`: knock, then relay stdin/stdout (ssh's ProxyCommand).

use std::path::PathBuf;
use std::time::SystemTime;

use crate::client::connect::{self, Connection};
use crate::client::plan::{self, Request};
use crate::exit_codes::ExitCode;

pub(super) fn run(
    profile: &str,
    port: Option<u16>,
    config: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let request = Request {
        targets: vec![profile.to_string()],
        ..Request::default()
    };
    let connection = Connection::new(&request, port, || plan::load_profiles(config))?;
    let run = connection.plan().read_sequences(SystemTime::now())?;
    let runtime = super::runtime()?;
    let result = runtime.block_on(connect::connect(&connection, &run));
    // A read of stdin may still be blocked in its thread: do not wait for it.
    runtime.shutdown_background();
    result
}
