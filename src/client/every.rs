//! `--every DURATION`: knock the plan again and again until a signal asks to
//! stop, one line per round, and at once when the machine's source address
//! towards the targets changes (a new DHCP lease, a VPN coming up).
//!
//! A signal stops a round where it is: its tasks are dropped with it, so no
//! further knock, check or retry goes out, and the exit follows at once.

use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use crate::client::plan::{Output, Plan};
use crate::client::report::Report;
use crate::client::resolve::route_source;
use crate::core::text::sanitize;
use crate::exit_codes::ExitCode;

/// How often the source address is looked at between rounds.
pub(crate) const SOURCE_POLL: Duration = Duration::from_secs(1);

/// Knocks every `every` until SIGINT or SIGTERM, even in the middle of a
/// round; then exits 0.
pub(crate) async fn repeat(
    plan: &Plan,
    every: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut round = 0u64;
    loop {
        round += 1;
        // Time-based profiles: this round's step, never the first round's.
        let run = plan.read_sequences(SystemTime::now())?;
        // Dropping the round drops its knock tasks (they never run again on
        // this one-thread runtime): nothing is sent after the signal.
        let report = tokio::select! {
            report = crate::client::run(&run) => report,
            _ = sigterm.recv() => return Ok(ExitCode::Success),
            _ = sigint.recv() => return Ok(ExitCode::Success),
        };
        crate::client::report::failures_if_quiet(&report, plan.output);
        if let Err(err) = write_round(out, plan.output, round, &report) {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::Success);
            }
            return Err(err.into());
        }
        let sources = sources(&report);
        let next = Instant::now() + every;
        loop {
            let wake = (Instant::now() + SOURCE_POLL).min(next);
            tokio::select! {
                _ = sigterm.recv() => return Ok(ExitCode::Success),
                _ = sigint.recv() => return Ok(ExitCode::Success),
                () = tokio::time::sleep_until(wake) => {}
            }
            if Instant::now() >= next {
                break;
            }
            let now = self::sources(&report);
            if now != sources {
                let _ = writeln!(
                    out,
                    "source address changed ({} -> {}): knocking now",
                    list(&sources),
                    list(&now)
                );
                break;
            }
        }
    }
}

/// For each knocked address, the local address the kernel would send from.
fn sources(report: &Report) -> Vec<Option<IpAddr>> {
    report
        .targets
        .iter()
        .filter_map(|t| t.address)
        .map(route_source)
        .collect()
}

fn list(sources: &[Option<IpAddr>]) -> String {
    let mut seen: Vec<String> = sources
        .iter()
        .map(|s| s.map_or("none".into(), |ip| ip.to_string()))
        .collect();
    seen.dedup();
    seen.join(", ")
}

/// One line per round: a time stamp, the round, how many targets are ok, and why the others failed.
fn write_round(
    out: &mut dyn Write,
    output: Output,
    round: u64,
    report: &Report,
) -> std::io::Result<()> {
    match output {
        Output::Json => {
            serde_json::to_writer(&mut *out, report)?;
            writeln!(out)?;
        }
        Output::Quiet => {}
        Output::Human { .. } => {
            let ok = report.targets.iter().filter(|t| t.ok).count();
            let mut line = format!(
                "{} round {round}: {ok}/{} targets ok",
                humantime::format_rfc3339_seconds(SystemTime::now()),
                report.targets.len()
            );
            for target in report.targets.iter().filter(|t| !t.ok) {
                line.push_str(&format!(
                    "; {} {}: {}",
                    target.profile.as_deref().map_or("-".into(), sanitize),
                    sanitize(&target.host),
                    sanitize(target.error.as_deref().unwrap_or("failed"))
                ));
            }
            writeln!(out, "{line}")?;
        }
    }
    out.flush()
}
