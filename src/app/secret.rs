//! `knockr secret new`: a fresh shared secret for time-based sequences.

use std::io::Write as _;

use crate::exit_codes::ExitCode;

pub(super) fn new() -> anyhow::Result<ExitCode> {
    let (base32, hex) = crate::config::secret::new_secret().map_err(anyhow::Error::msg)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "base32: {base32}\nhex:    {hex}")?;
    writeln!(
        stdout,
        "# Store it in a file only you can read (chmod 600); give the same secret to the door and the profile."
    )?;
    Ok(ExitCode::Success)
}
