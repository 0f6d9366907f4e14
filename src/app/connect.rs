//! `knockr connect PROFILE [PORT]`: knock, then relay stdin/stdout (ssh's ProxyCommand).

use std::path::PathBuf;

use crate::exit_codes::ExitCode;

pub(super) fn run(
    profile: &str,
    port: Option<u16>,
    config: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    let result = runtime.block_on(crate::client::connect::connect(profile, port, config));
    // A read of stdin may still be blocked in its thread: do not wait for it.
    runtime.shutdown_background();
    result
}
