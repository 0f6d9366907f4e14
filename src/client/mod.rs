//! The client: plan -> resolve and send -> check -> report.
//!
//! Every target runs in its own task, so N hosts take about as long as one;
//! within a target the knocks go out strictly in order, `delay` apart
//! (measured send to send; there is no pause after the last knock).
//! Answers to knocks are only watched for while nothing else is due: until
//! the next knock, or for the last one until the check starts; they never
//! delay the schedule (a `connect`-mode knock does: it waits for its handshake).

pub(crate) mod connect;
pub(crate) mod every;
pub(crate) mod local;
pub(crate) mod plan;
pub(crate) mod report;
pub(crate) mod resolve;
pub(crate) mod send;

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::resolve::Resolver;
use crate::core::knock::Knock;
use plan::{Bind, Conduct, Destination, Run, Target};
use report::{CheckReport, KnockReport, Progress, Report, TargetProgress, TargetReport, millis};

/// Time the server gets to act on the last knock before the check's first attempt.
pub(crate) const CHECK_SETTLE: Duration = Duration::from_millis(100);

/// Knocks every target of `run` and reports on each (every address of it
/// with `--all-addresses`), in plan order.
pub(crate) async fn run(run: &Run<'_>) -> Report {
    let plan = run.plan();
    let resolver = Resolver::new();
    let progress = Progress::new(plan.output, plan.conduct.dry_run);
    let mut tasks = JoinSet::new();
    for (index, (target, knocks)) in run.targets().enumerate() {
        let resolver = resolver.clone();
        let bar = progress.target(
            target.profile.as_deref(),
            &target.host,
            knocks.sequence.len(),
        );
        let job = Job {
            index,
            target: target.clone(),
            sequence: knocks.sequence.clone(),
        };
        let conduct = plan.conduct.clone();
        tasks.spawn(async move { (index, knock_target(job, &resolver, bar, &conduct).await) });
    }
    let mut targets: Vec<Vec<TargetReport>> = vec![Vec::new(); plan.targets.len()];
    while let Some(joined) = tasks.join_next().await {
        let (index, reports) = joined.expect("a knock task panicked");
        targets[index] = reports;
    }
    Report::new(
        plan.conduct.dry_run,
        targets.into_iter().flatten().collect(),
    )
}

/// One target as its task knocks it: where and how, and this run's knocks.
struct Job {
    /// Its place in the plan, which its reports carry.
    index: usize,
    /// The planned target: host, profile, settings.
    target: Target,
    /// What it sends this time, in order.
    sequence: Vec<Knock>,
}

/// Resolves a target and knocks its address (or all of them, concurrently).
async fn knock_target(
    job: Job,
    resolver: &Resolver,
    progress: TargetProgress,
    conduct: &Conduct,
) -> Vec<TargetReport> {
    let target = &job.target;
    // An address as written was checked by the planner, zone and family.
    let addresses = if let Some(literal) = target.literal {
        Ok(vec![literal])
    } else if conduct.all_addresses {
        resolver
            .resolve_all(
                &target.host,
                target.settings.family,
                target.settings.resolve_timeout,
            )
            .await
            .map(|ips| ips.into_iter().map(Destination::from).collect())
    } else {
        resolver
            .resolve(
                &target.host,
                target.settings.family,
                target.settings.resolve_timeout,
            )
            .await
            .map(|ip| vec![Destination::from(ip)])
    };
    let addresses = match addresses {
        Ok(addresses) => addresses,
        Err(err) => {
            progress.step(format!("FAILED: {err}"));
            progress.finish();
            let mut report = TargetReport::new(job.index, target, &job.sequence, None);
            report.error = Some(err.to_string());
            return vec![report];
        }
    };
    let reports = futures_join_all(
        addresses
            .into_iter()
            .map(|to| knock_address(&job, to, &progress, conduct)),
    )
    .await;
    progress.finish();
    reports
}

/// Runs futures concurrently on this task and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

/// Knocks one address, then checks it; with `--retry`, knocks again while
/// the check finds the port closed, waiting longer each time.
async fn knock_address(
    job: &Job,
    to: Destination,
    progress: &TargetProgress,
    conduct: &Conduct,
) -> TargetReport {
    let ip = to.ip;
    let mut report = TargetReport::new(job.index, &job.target, &job.sequence, Some(ip));
    if conduct.dry_run {
        report.ok = true;
        return report;
    }
    loop {
        report.rounds += 1;
        let round = knock_round(job, to, progress, &conduct.bind).await;
        let closed = round.check.as_ref().is_some_and(|c| !c.open);
        report.knocks = round.knocks;
        report.check = round.check;
        report.error = round.error;
        if !(closed && report.rounds <= conduct.retry) {
            break;
        }
        let pause = RETRY_FIRST_PAUSE
            .saturating_mul(1 << (report.rounds - 1).min(8))
            .min(RETRY_MAX_PAUSE);
        progress.step(format!(
            "port still closed; knocking {ip} again in {} ms",
            millis(pause)
        ));
        tokio::time::sleep(pause).await;
    }
    report.ok = report.error.is_none();
    report
}

/// Pause before the first retry; it doubles each round up to `RETRY_MAX_PAUSE`.
pub(crate) const RETRY_FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause between two retries.
pub(crate) const RETRY_MAX_PAUSE: Duration = Duration::from_secs(8);

/// What one round of knocks (and its check) did.
struct Round {
    /// Every knock of the sequence, sent or not.
    knocks: Vec<KnockReport>,
    /// The check, when asked for and every knock went out.
    check: Option<CheckReport>,
    /// Why the round failed: a knock not sent, or the port still closed.
    error: Option<String>,
}

async fn knock_round(job: &Job, to: Destination, progress: &TargetProgress, bind: &Bind) -> Round {
    let (ip, settings) = (to.ip, &job.target.settings);
    let mut round = Round {
        knocks: KnockReport::unsent(&job.sequence),
        check: None,
        error: None,
    };
    let count = job.sequence.len();
    let start = Instant::now();
    let mut next_send = start;
    let mut last_sent = start;
    for (index, knock) in job.sequence.iter().enumerate() {
        tokio::time::sleep_until(next_send.into()).await;
        let sent_at = Instant::now();
        let entry = &mut round.knocks[index];
        entry.ms = Some(millis(sent_at - start));
        let watch = if index + 1 < count {
            settings.delay
        } else if settings.check.is_some() {
            CHECK_SETTLE
        } else {
            Duration::ZERO
        };
        match send::knock(to, *knock, settings, bind, watch).await {
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
                let err = crate::core::text::describe(&err);
                progress.step(format!(
                    "knock {}/{count} {knock} to {ip} FAILED: {err}",
                    index + 1
                ));
                entry.error = Some(err.clone());
                round.error = Some(format!(
                    "knock {}/{count} ({knock}) to {ip} was not sent: {err}",
                    index + 1
                ));
                return round;
            }
        }
        last_sent = sent_at;
        next_send = sent_at + settings.delay;
    }

    if let Some(check) = settings.check {
        tokio::time::sleep_until((last_sent + CHECK_SETTLE).into()).await;
        progress.say(format!("checking port {}", check.port));
        let outcome = send::check(to, check, bind).await;
        let state = if outcome.open { "open" } else { "closed" };
        progress.step(format!(
            "port {} {state} after {} ms",
            check.port,
            millis(outcome.elapsed)
        ));
        if !outcome.open {
            round.error = Some(format!(
                "port {} on {ip} is still closed after {} attempt(s): {}",
                check.port,
                outcome.attempts,
                outcome.last_error.as_deref().unwrap_or("no answer")
            ));
        }
        round.check = Some(CheckReport {
            port: check.port,
            open: outcome.open,
            ms: millis(outcome.elapsed),
            attempts: outcome.attempts,
            error: outcome.last_error,
        });
    }
    round
}
