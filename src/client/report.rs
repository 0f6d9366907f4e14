//! What the user sees: progress bars while knocking (stderr, terminals only),
//! then a summary or one JSON document (stdout). Untrusted text — host and
//! profile names, error messages quoting them — is sanitized before it
//! reaches a terminal; JSON escapes it by itself.

use std::io::{self, Write};
use std::net::IpAddr;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::client::plan::Output;
use crate::core::text::sanitize;
use crate::exit_codes::ExitCode;

/// The result of a whole run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// Every target knocked and every requested check open: the targets'
    /// merged exit code is success ([`Report::exit_code`]).
    pub(crate) ok: bool,
    /// Nothing was sent: the knocks are what would have been.
    pub(crate) dry_run: bool,
    /// Every target's report, in plan order.
    pub(crate) targets: Vec<TargetReport>,
}

impl Report {
    /// Whether target `target` (its index in the plan) sent every knock to
    /// at least one of its addresses.
    pub(crate) fn sent_in_full(&self, target: usize) -> bool {
        self.targets
            .iter()
            .any(|r| r.target == target && !r.knocks.is_empty() && r.knocks.iter().all(|k| k.sent))
    }

    /// The report of a run of `targets`.
    pub(crate) fn new(dry_run: bool, targets: Vec<TargetReport>) -> Report {
        Report {
            ok: merged(&targets) == ExitCode::Success,
            dry_run,
            targets,
        }
    }

    /// The run's exit status: every target's, merged (the worst wins).
    pub(crate) fn exit_code(&self) -> ExitCode {
        merged(&self.targets)
    }
}

fn merged(targets: &[TargetReport]) -> ExitCode {
    targets
        .iter()
        .map(TargetReport::exit_code)
        .fold(ExitCode::Success, ExitCode::merge)
}

/// One (profile, host) pair, or one address of it with `--all-addresses`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TargetReport {
    /// Which of the plan's targets this reports on: its index in plan order.
    /// Not in the JSON, which lists targets in that order.
    #[serde(skip)]
    pub(crate) target: usize,
    /// The profile it came from; `None` for an ad-hoc knock.
    pub(crate) profile: Option<String>,
    /// The host as written.
    pub(crate) host: String,
    /// The address knocked; `None` when the host did not resolve. JSON has
    /// it as the string `IpAddr` displays.
    pub(crate) address: Option<IpAddr>,
    /// Every knock of the sequence, sent or not, as of the last round.
    pub(crate) knocks: Vec<KnockReport>,
    /// The last round's check, when one was asked for and the knocks went out.
    pub(crate) check: Option<CheckReport>,
    /// Rounds of knocks sent: 1, more with `--retry` when the check found the port closed.
    pub(crate) rounds: u32,
    /// Every knock sent and, when asked for, the port found open.
    pub(crate) ok: bool,
    /// Why the target failed, when it did.
    pub(crate) error: Option<String>,
}

impl KnockReport {
    /// One entry per knock of `sequence`, none sent yet.
    pub(crate) fn unsent(sequence: &[crate::core::knock::Knock]) -> Vec<KnockReport> {
        sequence
            .iter()
            .map(|k| KnockReport {
                port: k.port,
                proto: k.proto.as_str(),
                sent: false,
                answer: None,
                ms: None,
                error: None,
            })
            .collect()
    }
}

impl TargetReport {
    /// This target's part of the exit status.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from_ok(self.ok)
    }

    /// Nothing sent yet: every knock of `sequence` listed as not sent.
    /// `index` is the target's place in the plan.
    pub(crate) fn new(
        index: usize,
        target: &crate::client::plan::Target,
        sequence: &[crate::core::knock::Knock],
        address: Option<IpAddr>,
    ) -> TargetReport {
        TargetReport {
            target: index,
            profile: target.profile.clone(),
            host: target.host.clone(),
            address,
            knocks: KnockReport::unsent(sequence),
            check: None,
            rounds: 0,
            ok: false,
            error: None,
        }
    }
}

/// One knock of a target's sequence.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct KnockReport {
    /// The port knocked, or an ICMP knock's payload size.
    pub(crate) port: u16,
    /// "tcp", "udp" or "icmp".
    pub(crate) proto: &'static str,
    /// It left this machine.
    pub(crate) sent: bool,
    /// "none", "refused" or "open" once sent (see `send::Answer`).
    pub(crate) answer: Option<&'static str>,
    /// Milliseconds from the target's first knock to this one's send.
    pub(crate) ms: Option<u64>,
    /// Why it could not be sent, when it could not.
    pub(crate) error: Option<String>,
}

/// The destination check.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CheckReport {
    /// The TCP port checked.
    pub(crate) port: u16,
    /// It accepted a connection.
    pub(crate) open: bool,
    /// From the first connect attempt to the port opening, or to giving up.
    pub(crate) ms: u64,
    /// Connection attempts made.
    pub(crate) attempts: u32,
    /// The last attempt's failure, when closed.
    pub(crate) error: Option<String>,
}

/// With `-q` the summary is not printed: failures still go to stderr.
pub(crate) fn failures_if_quiet(report: &Report, output: Output) {
    if output != Output::Quiet {
        return;
    }
    for target in report.targets.iter().filter(|t| !t.ok) {
        let who = match &target.profile {
            Some(profile) => format!("{profile} {}", target.host),
            None => target.host.clone(),
        };
        let err = target.error.as_deref().unwrap_or("failed");
        eprintln!("knockr: {}: {}", sanitize(&who), sanitize(err));
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    duration.as_millis().try_into().unwrap_or(u64::MAX)
}

/// Writes the report to `out` in the chosen form.
pub(crate) fn write(report: &Report, output: Output, out: &mut dyn Write) -> io::Result<()> {
    match output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)
        }
        Output::Quiet => Ok(()),
        Output::Human { color, .. } => write_summary(report, color, out),
    }
}

/// One aligned line per target.
fn write_summary(report: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let (open, closed, failed) = (
        paint("32", "open"),
        paint("31", "CLOSED"),
        paint("31", "FAILED"),
    );
    let rows: Vec<[String; 4]> = report
        .targets
        .iter()
        .map(|t| {
            let profile = t
                .profile
                .as_deref()
                .map_or("-".into(), |p| sanitize(p).into_owned());
            let address = t.address.map_or("-".into(), |ip| ip.to_string());
            let sent = t.knocks.iter().filter(|k| k.sent).count();
            let result = if report.dry_run {
                let knocks: Vec<String> = t
                    .knocks
                    .iter()
                    .map(|k| format!("{}:{}", k.port, k.proto))
                    .collect();
                match &t.error {
                    Some(err) => format!("{failed}: {}", sanitize(err)),
                    None => format!("would knock {}", knocks.join(" ")),
                }
            } else {
                let mut text = format!("{sent}/{} knocks sent", t.knocks.len());
                if t.rounds > 1 {
                    text.push_str(&format!(" (round {})", t.rounds));
                }
                match &t.check {
                    Some(check) if check.open => {
                        text.push_str(&format!(
                            ", port {} {open} after {} ms",
                            check.port, check.ms
                        ));
                    }
                    Some(check) => text.push_str(&format!(
                        ", port {} {closed} after {} ms ({} attempts: {})",
                        check.port,
                        check.ms,
                        check.attempts,
                        check.error.as_deref().unwrap_or("no answer")
                    )),
                    None => {
                        if let Some(err) = &t.error {
                            text.push_str(&format!(", {failed}: {}", sanitize(err)));
                        }
                    }
                }
                text
            };
            [profile, sanitize(&t.host).into_owned(), address, result]
        })
        .collect();
    let width = |col: usize| {
        rows.iter()
            .map(|r| r[col].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for [profile, host, address, result] in &rows {
        writeln!(out, "{profile:w0$}  {host:w1$}  {address:w2$}  {result}")?;
    }
    Ok(())
}

/// Progress while knocking: one bar per target on a terminal's stderr, and
/// with `-v` one line per knock.
pub(crate) struct Progress {
    /// The bars' shared stderr; `None` when nothing is drawn (quiet, JSON, dry run).
    multi: Option<MultiProgress>,
    /// `-v`: a line per step.
    verbose: bool,
}

/// The progress of one target.
pub(crate) struct TargetProgress {
    /// This target's bar, when bars are drawn.
    bar: Option<ProgressBar>,
    /// "profile host", sanitized, that starts each `-v` line.
    label: String,
    /// `-v`: a line per step.
    verbose: bool,
    /// Where `-v` lines go above the bars, when bars are drawn.
    multi: Option<MultiProgress>,
}

impl Progress {
    pub(crate) fn new(output: Output, dry_run: bool) -> Progress {
        let (show, verbose) = match output {
            Output::Human { verbose, .. } if !dry_run => (true, verbose),
            _ => (false, false),
        };
        // A hidden bar prints nothing, so a non-terminal stderr shows no bars.
        let multi = show.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { multi, verbose }
    }

    pub(crate) fn target(&self, profile: Option<&str>, host: &str, knocks: usize) -> TargetProgress {
        let label = match profile {
            Some(profile) => format!("{} {}", sanitize(profile), sanitize(host)),
            None => sanitize(host).into_owned(),
        };
        let bar = self.multi.as_ref().map(|multi| {
            let style = ProgressStyle::with_template("{prefix} [{bar:12}] {pos}/{len} {msg}")
                .expect("the template is valid")
                .progress_chars("=> ");
            let bar = multi.add(
                ProgressBar::new(knocks as u64)
                    .with_style(style)
                    .with_prefix(label.clone()),
            );
            bar.set_message("resolving");
            bar
        });
        TargetProgress {
            bar,
            label,
            verbose: self.verbose,
            multi: self.multi.clone(),
        }
    }
}

impl TargetProgress {
    /// Replaces the bar's message; `message` may quote untrusted text.
    pub(crate) fn say(&self, message: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.set_message(sanitize(message.as_ref()).into_owned());
        }
    }

    /// A step worth a line of its own under `-v`.
    pub(crate) fn step(&self, message: impl AsRef<str>) {
        self.say(message.as_ref());
        if self.verbose {
            let line = format!("{}: {}", self.label, sanitize(message.as_ref()));
            match &self.multi {
                Some(multi) if !multi.is_hidden() => {
                    let _ = multi.println(line);
                }
                _ => eprintln!("{line}"),
            }
        }
    }

    pub(crate) fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_in_names_are_neutralised() {
        assert_eq!(sanitize("gw.example.net"), "gw.example.net");
        assert_eq!(sanitize("evil\u{1b}[2Jhost"), "evil\\u{1b}[2Jhost");
        assert_eq!(sanitize("a\nb"), "a\\u{a}b");
        assert_eq!(sanitize("x\u{202e}y"), "x\\u{202e}y");
    }

    fn sample() -> Report {
        Report {
            ok: false,
            dry_run: false,
            targets: vec![
                TargetReport {
                    target: 0,
                    profile: Some("home".into()),
                    host: "127.0.0.1".into(),
                    address: Some(IpAddr::from([127, 0, 0, 1])),
                    knocks: vec![KnockReport {
                        port: 7000,
                        proto: "tcp",
                        sent: true,
                        answer: Some("refused"),
                        ms: Some(0),
                        error: None,
                    }],
                    check: Some(CheckReport {
                        port: 22,
                        open: true,
                        ms: 12,
                        attempts: 1,
                        error: None,
                    }),
                    rounds: 1,
                    ok: true,
                    error: None,
                },
                TargetReport {
                    target: 1,
                    profile: None,
                    host: "nowhere.invalid".into(),
                    address: None,
                    knocks: vec![KnockReport {
                        port: 7000,
                        proto: "udp",
                        sent: false,
                        answer: None,
                        ms: None,
                        error: None,
                    }],
                    check: None,
                    rounds: 0,
                    ok: false,
                    error: Some("cannot resolve nowhere.invalid: no such host".into()),
                },
            ],
        }
    }

    #[test]
    fn json_shape_is_stable() {
        let value = serde_json::to_value(sample()).unwrap();
        insta::assert_json_snapshot!(value);
    }

    #[test]
    fn summary_has_one_aligned_line_per_target() {
        let mut out = Vec::new();
        write(
            &sample(),
            Output::Human {
                verbose: false,
                color: false,
            },
            &mut out,
        )
        .unwrap();
        insta::assert_snapshot!(String::from_utf8(out).unwrap());
    }

    /// The report keeps addresses as `IpAddr`; scripts still read the string.
    #[test]
    fn addresses_are_written_as_they_display_in_json_and_the_summary() {
        let mut report = sample();
        report.targets[0].address = Some("2001:db8::7".parse().unwrap());
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains(r#""address":"2001:db8::7""#), "{json}");
        assert!(json.contains(r#""address":null"#), "{json}");
        let mut out = Vec::new();
        write(
            &report,
            Output::Human {
                verbose: false,
                color: false,
            },
            &mut out,
        )
        .unwrap();
        let summary = String::from_utf8(out).unwrap();
        assert!(
            summary.lines().next().unwrap().contains("  2001:db8::7  "),
            "{summary}"
        );
    }

    #[test]
    fn one_failed_target_fails_the_run_and_none_is_a_success() {
        let [good, bad] = sample().targets.try_into().unwrap();
        let run = |targets: Vec<TargetReport>| {
            let report = Report::new(false, targets);
            (report.exit_code(), report.ok)
        };
        assert_eq!(
            run(vec![good.clone(), good.clone()]),
            (ExitCode::Success, true)
        );
        assert_eq!(
            run(vec![good.clone(), bad.clone(), good]),
            (ExitCode::Failure, false)
        );
        assert_eq!(run(vec![bad]), (ExitCode::Failure, false));
        assert_eq!(run(vec![]), (ExitCode::Success, true), "nothing failed");
    }
}
