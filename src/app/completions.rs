//! `knockr completions SHELL` and `knockr man`: generated from the clap
//! definitions, the same text as committed under `completions/` and `man/`.

use std::io::{self, Write};

use clap::CommandFactory as _;

use crate::cli::{Cli, Shell};
use crate::exit_codes::ExitCode;

pub(super) fn run(shell: Shell) -> anyhow::Result<ExitCode> {
    write_completions(shell, &mut io::stdout().lock())?;
    Ok(ExitCode::Success)
}

pub(super) fn man() -> anyhow::Result<ExitCode> {
    clap_mangen::Man::new(Cli::command()).render(&mut io::stdout().lock())?;
    Ok(ExitCode::Success)
}

/// The completion script for `shell`, as committed under `completions/`.
fn write_completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
        Shell::Elvish => S::Elvish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "knockr", out);
    Ok(())
}
