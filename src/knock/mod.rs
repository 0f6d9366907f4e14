//! The client: plan -> resolve and send -> check -> report.
//!
//! Every target runs in its own task, so N hosts take about as long as one;
//! within a target the knocks go out strictly in order, `delay` apart
//! (measured send to send; there is no pause after the last knock).
//! Answers to knocks are only watched for while nothing else is due: until
//! the next knock, or for the last one until the check starts; they never
//! delay the schedule (a `connect`-mode knock does: it waits for its handshake).

pub mod plan;
pub mod report;
pub mod send;

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::resolve::Resolver;
use plan::{Plan, Target};
use report::{CheckReport, KnockReport, Progress, Report, TargetProgress, TargetReport, millis};

/// Time the server gets to act on the last knock before the check's first attempt.
pub const CHECK_SETTLE: Duration = Duration::from_millis(100);

/// Runs the plan and reports on every target, in plan order.
pub async fn run(plan: &Plan) -> Report {
    let resolver = Resolver::new();
    let progress = Progress::new(plan.output, plan.dry_run);
    let mut tasks = JoinSet::new();
    for (index, target) in plan.targets.iter().cloned().enumerate() {
        let resolver = resolver.clone();
        let bar = progress.target(
            target.profile.as_deref(),
            &target.host,
            target.sequence.len(),
        );
        let dry_run = plan.dry_run;
        tasks.spawn(async move { (index, knock_target(target, &resolver, bar, dry_run).await) });
    }
    let mut targets: Vec<Option<TargetReport>> = vec![None; plan.targets.len()];
    while let Some(joined) = tasks.join_next().await {
        let (index, report) = joined.expect("a knock task panicked");
        targets[index] = Some(report);
    }
    let targets: Vec<TargetReport> = targets
        .into_iter()
        .map(|t| t.expect("every task reports"))
        .collect();
    Report {
        ok: targets.iter().all(|t| t.ok),
        dry_run: plan.dry_run,
        targets,
    }
}

async fn knock_target(
    target: Target,
    resolver: &Resolver,
    progress: TargetProgress,
    dry_run: bool,
) -> TargetReport {
    let settings = &target.settings;
    let mut report = TargetReport {
        profile: target.profile.clone(),
        host: target.host.clone(),
        address: None,
        knocks: target
            .sequence
            .iter()
            .map(|k| KnockReport {
                port: k.port,
                proto: k.proto.as_str(),
                sent: false,
                answer: None,
                ms: None,
                error: None,
            })
            .collect(),
        check: None,
        ok: false,
        error: None,
    };

    let ip = match resolver.resolve(&target.host, settings.family).await {
        Ok(ip) => ip,
        Err(err) => {
            progress.step(format!("FAILED: {err}"));
            progress.finish();
            report.error = Some(err.to_string());
            return report;
        }
    };
    report.address = Some(ip.to_string());
    if dry_run {
        report.ok = true;
        return report;
    }

    let count = target.sequence.len();
    let start = Instant::now();
    let mut next_send = start;
    let mut last_sent = start;
    for (index, knock) in target.sequence.iter().enumerate() {
        tokio::time::sleep_until(next_send.into()).await;
        let sent_at = Instant::now();
        let entry = &mut report.knocks[index];
        entry.ms = Some(millis(sent_at - start));
        let watch = if index + 1 < count {
            settings.delay
        } else if settings.check.is_some() {
            CHECK_SETTLE
        } else {
            Duration::ZERO
        };
        match send::knock(ip, *knock, settings, watch).await {
            Ok(answer) => {
                entry.sent = true;
                entry.answer = Some(answer.as_str());
                progress.advance();
                progress.step(format!(
                    "knock {}/{count} {knock} to {ip} sent, answer: {}",
                    index + 1,
                    answer.as_str()
                ));
            }
            Err(err) => {
                let err = send::describe(&err);
                progress.step(format!(
                    "knock {}/{count} {knock} to {ip} FAILED: {err}",
                    index + 1
                ));
                entry.error = Some(err.clone());
                report.error = Some(format!(
                    "knock {}/{count} ({knock}) to {ip} was not sent: {err}",
                    index + 1
                ));
                break;
            }
        }
        last_sent = sent_at;
        next_send = sent_at + settings.delay;
    }

    if report.error.is_none()
        && let Some(check) = settings.check
    {
        tokio::time::sleep_until((last_sent + CHECK_SETTLE).into()).await;
        progress.say(format!("checking port {}", check.port));
        let outcome = send::check(ip, check).await;
        let state = if outcome.open { "open" } else { "closed" };
        progress.step(format!(
            "port {} {state} after {} ms",
            check.port,
            millis(outcome.elapsed)
        ));
        if !outcome.open {
            report.error = Some(format!(
                "port {} on {ip} is still closed after {} attempt(s): {}",
                check.port,
                outcome.attempts,
                outcome.last_error.as_deref().unwrap_or("no answer")
            ));
        }
        report.check = Some(CheckReport {
            port: check.port,
            open: outcome.open,
            ms: millis(outcome.elapsed),
            attempts: outcome.attempts,
            error: outcome.last_error,
        });
    }
    progress.finish();
    report.ok = report.error.is_none();
    report
}
