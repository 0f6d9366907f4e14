//! `knockr completions SHELL` and `knockr man`: generated from the clap
//! definitions, the same text as committed under `completions/` and `man/`.
//!
//! Everything is generated into memory and written here, never by the
//! generators themselves: `clap_complete::generate` panics on a write error
//! (a closed pipe, a full disk), and a panic is for bugs only.

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory as _;

use crate::cli::{Cli, Shell};
use crate::exit_codes::ExitCode;

pub(super) fn run(shell: Shell) -> anyhow::Result<ExitCode> {
    write_stdout(&completion_script(shell), "the completion script")?;
    Ok(ExitCode::Success)
}

pub(super) fn man(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let pages = man_pages()?;
    match dir {
        None => write_stdout(&pages[0].roff, "the man page")?,
        Some(dir) => {
            for page in &pages {
                let path = dir.join(&page.file);
                std::fs::write(&path, &page.roff).map_err(|err| {
                    let message = format!(
                        "cannot write the man page {}: {}",
                        path.display(),
                        crate::core::text::describe(&err)
                    );
                    io::Error::new(err.kind(), message)
                })?;
            }
        }
    }
    Ok(ExitCode::Success)
}

/// One man page: its file name (`knockr-connect.1`) and its roff text.
struct ManPage {
    file: String,
    roff: Vec<u8>,
}

/// The files' pages, hand-written: the committed copies are the source.
const FILE_FORMAT_PAGES: [(&str, &str); 2] = [
    (
        "knockr-profiles.5",
        include_str!("../../man/knockr-profiles.5"),
    ),
    (
        "knockr-knockd.toml.5",
        include_str!("../../man/knockr-knockd.toml.5"),
    ),
];

/// Every page, knockr(1) first: one per command and subcommand, each ending
/// in a SEE ALSO of pages that exist, then the files' pages.
fn man_pages() -> io::Result<Vec<ManPage>> {
    // No `help` subcommand pages: `knockr help` is --help, not a command to document.
    let mut cmd = without_help_subcommands(Cli::command());
    cmd.build();
    let mut pages = Vec::new();
    command_pages(&cmd, None, &mut pages)?;
    pages.extend(FILE_FORMAT_PAGES.map(|(file, roff)| ManPage {
        file: file.to_owned(),
        roff: roff.as_bytes().to_vec(),
    }));
    Ok(pages)
}

fn without_help_subcommands(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    names
        .iter()
        .fold(cmd.disable_help_subcommand(true), |cmd, name| {
            cmd.mut_subcommand(name, without_help_subcommands)
        })
}

/// The page of `cmd` (`parent` is its parent's page name), then its subcommands'.
fn command_pages(
    cmd: &clap::Command,
    parent: Option<&str>,
    pages: &mut Vec<ManPage>,
) -> io::Result<()> {
    // Subcommands have no version of their own: each page says knockr's.
    let man =
        clap_mangen::Man::new(cmd.clone()).source(concat!("knockr ", env!("CARGO_PKG_VERSION")));
    // After build(), a subcommand's display name is its page's: `knockr-routeros-rules`.
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    let mut see_also: Vec<String> = parent
        .map(|parent| format!("{parent}(1)"))
        .into_iter()
        .collect();
    see_also.extend(files_read_by(&name).iter().map(|page| page.to_string()));
    if !see_also.is_empty() {
        let names: Vec<String> = see_also
            .iter()
            .map(|page| {
                let (name, section) = page.split_once('(').unwrap_or((page, ""));
                format!("\\fB{}\\fR({section}", name.replace('-', "\\-"))
            })
            .collect();
        writeln!(roff, ".SH \"SEE ALSO\"\n{}", names.join(", "))?;
    }
    pages.push(ManPage {
        file: man.get_filename(),
        roff,
    });
    for sub in cmd.get_subcommands() {
        command_pages(sub, Some(&name), pages)?;
    }
    Ok(())
}

/// The file-format pages a command's page points to: the file it reads.
fn files_read_by(page: &str) -> &'static [&'static str] {
    match page {
        "knockr" => &["knockr-profiles(5)", "knockr-knockd.toml(5)"],
        "knockr-connect" | "knockr-list" | "knockr-routeros-rules" => &["knockr-profiles(5)"],
        "knockr-knockd" | "knockr-routeros-check" => &["knockr-knockd.toml(5)"],
        "knockr-secret" => &["knockr-profiles(5)", "knockr-knockd.toml(5)"],
        _ => &[],
    }
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
