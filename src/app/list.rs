//! `knockr list`: the profiles of the profiles file, one a line.

use std::io::Write as _;
use std::path::PathBuf;

use crate::client::plan;
use crate::core::text::sanitize;
use crate::exit_codes::ExitCode;

pub(super) fn run(config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let profiles = plan::load_profiles(config)?;
    let mut stdout = std::io::stdout().lock();
    for name in profiles.profiles.keys() {
        writeln!(stdout, "{}", sanitize(name))?;
    }
    Ok(ExitCode::Success)
}
