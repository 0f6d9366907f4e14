//! `knockr completions SHELL` and `knockr man`: generated from the clap
//! definitions, the same text as committed under `completions/` and `man/`.
//!
//! Everything is generated into memory and written here, never by the
//! generators themselves: `clap_complete::generate` panics on a write error
//! (a closed pipe, a full disk), and a panic is for bugs only.

use std::io::{self, Write};

use clap::CommandFactory as _;

use crate::cli::{Cli, Shell};
use crate::exit_codes::ExitCode;

pub(super) fn run(shell: Shell) -> anyhow::Result<ExitCode> {
    write_stdout(&completion_script(shell), "the completion script")?;
    Ok(ExitCode::Success)
}

pub(super) fn man() -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    write_stdout(&page, "the man page")?;
    Ok(ExitCode::Success)
}

/// The completion script for `shell`, as committed under `completions/`.
fn completion_script(shell: Shell) -> Vec<u8> {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
        Shell::Elvish => S::Elvish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "knockr", &mut script);
    script
}

/// Writes `bytes` to stdout. The error keeps the io::Error's kind, so `main`
/// still exits quietly on a broken pipe, and reads as one sentence
/// ("cannot write the man page: no space left on device").
fn write_stdout(bytes: &[u8], what: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|err| {
            let message = format!("cannot write {what}: {}", crate::core::text::describe(&err));
            io::Error::new(err.kind(), message)
        })
}
