//! `knockr PROFILE...` and `knockr -p PORT HOST...`: plan, knock (once, or
//! `--every` round), mark one-time lines used, report.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::time::SystemTime;

use crate::cli::KnockArgs;
use crate::client::plan::{self, Plan};
use crate::client::{self, report};
use crate::core::text::sanitize;
use crate::exit_codes::ExitCode;

pub(super) fn run(args: &KnockArgs, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(&args.request(), || plan::load_profiles(config))?;
    let mut stdout = io::stdout().lock();
    if let Some(every) = args.every {
        return super::runtime()?.block_on(client::every::repeat(&plan, every, &mut stdout));
    }
    let run = plan.read_sequences(SystemTime::now())?;
    let report = super::runtime()?.block_on(client::run(&run));
    report::failures_if_quiet(&report, plan.output);
    let unmarked = plan::spend_one_time_lines(&run, |t| report.sent_in_full(t));
    for problem in &unmarked {
        eprintln!("knockr: {}", sanitize(&problem.to_string()));
    }
    // A line knocked but not marked used fails the run: the next knock would repeat it.
    let code = report
        .exit_code()
        .merge(ExitCode::from_ok(unmarked.is_empty()));
    match report::write(&report, plan.output, &mut stdout).and_then(|()| stdout.flush()) {
        // The reader went away; the knocks were still made, so the status stands.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        Err(err) => Err(err.into()),
        Ok(()) => Ok(code),
    }
}
