//! The knock server, `knockr knockd`: loads doors, watches traffic (live, or
//! replayed from a capture file with its timestamps as the clock), feeds the
//! matcher, and runs the doors' commands.
//!
//! The capture readers are threads of their own; this loop only matches and
//! schedules, and commands run in tasks of their own, so neither a slow
//! command nor a flood can stall the other.

pub mod actions;
pub mod config;
pub mod log;
pub mod onetime;
pub mod privileges;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::capture::{self, Control, Seen};
use crate::cli::KnockdArgs;
use crate::exit_codes::ExitCode;
use crate::knock::plan::PlanError;
use crate::matcher::{Door, Event, EventKind, Matcher};
use actions::{Doorman, Run, RunKind};
use config::{Action, ServerConfig};
use log::Log;

/// `knockr knockd`: check, replay or serve, as the flags say.
pub fn main(args: &KnockdArgs) -> anyhow::Result<ExitCode> {
    let config = config::load(&args.config).map_err(PlanError::Config)?;
    if args.check {
        return check(&config);
    }
    if let Some(read) = &args.read {
        // Buffered: a replay writes many lines, and flushing each is most of its cost.
        let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
        let log = Log::to_writer(Box::new(stdout), args.json, args.verbose);
        let mut server = Server::new(config, log, args.dry_run)?;
        let packets = replay(&mut server, read)?;
        let mut log = server.log();
        log.debug(
            now(),
            &format!("read {packets} packets from {}", read.display()),
        );
        log.flush()?;
        return Ok(ExitCode::Success);
    }

    let interfaces = if !args.interfaces.is_empty() {
        args.interfaces.clone()
    } else if !config.interfaces.is_empty() {
        config.interfaces.clone()
    } else {
        vec![DEFAULT_INTERFACE.to_string()]
    };
    let mut log = match (&config.log_file, config.use_syslog) {
        (Some(path), _) => Log::file(path, args.json, args.verbose)
            .with_context(|| format!("cannot open the log file {}", path.display()))?,
        (None, true) => Log::syslog_only(args.json, args.verbose),
        (None, false) => Log::stderr(args.json, args.verbose),
    };
    if config.use_syslog && config.log_file.is_some() {
        log.add_syslog();
    }
    let server = Server::new(config, log, args.dry_run)?;
    let filter = filter_for(&server);
    server
        .log()
        .debug(now(), &format!("capture filter: {filter}"));
    let captures = interfaces
        .iter()
        .map(|i| capture::open_live(i, &filter))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(pid_file) = &server.config.pid_file {
        std::fs::write(pid_file, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write the pid file {}", pid_file.display()))?;
    }
    if let Some(user) = server.config.user.clone() {
        privileges::drop_to(&user)?;
        server.log().note(
            now(),
            &format!(
                "capturing on {}; now running as {user}",
                interfaces.join(", ")
            ),
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pid_file = server.config.pid_file.clone();
    let ending = runtime.block_on(serve(
        server,
        captures,
        args.config.clone(),
        std::future::pending(),
    ))?;
    if let Some(pid_file) = pid_file {
        // Best effort: after dropping privileges the directory may not let us.
        let _ = std::fs::remove_file(pid_file);
    }
    Ok(match ending {
        Ending::Asked => ExitCode::Success,
        Ending::CaptureFailed => ExitCode::Failure,
    })
}

/// The kernel filter for the server's doors. One-time doors move to ports
/// not known yet: then every TCP/UDP packet goes through and the matcher picks.
fn filter_for(server: &Server) -> String {
    if server
        .config
        .doors
        .iter()
        .any(|d| d.one_time_sequences.is_some())
    {
        "tcp or udp or (vlan and (tcp or udp))".to_string()
    } else {
        capture::bpf_filter(server.matcher.doors())
    }
}

/// `--check`: the config loaded; print its doors and the lint warnings.
fn check(config: &ServerConfig) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let format = match config.format {
        config::Format::Toml => "knockr TOML",
        config::Format::KnockdConf => "knockd.conf",
    };
    writeln!(
        out,
        "{}: {format}, {} door(s)",
        config.path.display(),
        config.doors.len()
    )?;
    for door in &config.doors {
        let sequence = match &door.one_time_sequences {
            Some(path) => format!("one-time sequences from {}", path.display()),
            None => door
                .door
                .sequence
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(","),
        };
        writeln!(
            out,
            "  {}: {sequence}, timeout {}",
            door.door.name,
            crate::values::format_duration(door.door.seq_timeout)
        )?;
    }
    for lint in config::lint(config) {
        match lint.door {
            Some(door) => writeln!(out, "warning: {door}: {}", lint.message)?,
            None => writeln!(out, "warning: {}", lint.message)?,
        }
    }
    Ok(ExitCode::Success)
}

/// Interfaces captured when neither `-i` nor the config names any.
pub const DEFAULT_INTERFACE: &str = "any";

/// Wall-clock time as the matcher counts it: since the Unix epoch.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The matcher's doors, with one-time doors given their current sequence.
pub fn doors(config: &ServerConfig) -> anyhow::Result<Vec<Door>> {
    config
        .doors
        .iter()
        .map(|d| {
            let mut door = d.door.clone();
            if let Some(path) = &d.one_time_sequences {
                door.sequence = onetime::current(path)
                    .with_context(|| {
                        format!(
                            "door {}: cannot read its one-time sequences {}",
                            d.door.name,
                            path.display()
                        )
                    })?
                    .map(|(_, knocks)| knocks)
                    .unwrap_or_default();
            }
            Ok(door)
        })
        .collect()
}

/// The state shared by live and offline runs: matching, bookkeeping, logging.
pub struct Server {
    pub config: ServerConfig,
    pub matcher: Matcher,
    pub doorman: Doorman,
    pub log: Arc<Mutex<Log>>,
    pub dry_run: bool,
    /// Whether every matcher event is logged (`-v` or `--json`), or only openings.
    log_every_event: bool,
    /// Reused for each packet's events: no allocation per packet.
    events: Vec<Event>,
}

impl Server {
    pub fn new(config: ServerConfig, log: Log, dry_run: bool) -> anyhow::Result<Server> {
        let matcher = Matcher::new(doors(&config)?, config.max_sources);
        Ok(Server {
            config,
            matcher,
            doorman: Doorman::default(),
            log_every_event: log.every_event(),
            log: Arc::new(Mutex::new(log)),
            dry_run,
            events: Vec::new(),
        })
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One packet at `seen.at`: returns the commands it makes due.
    pub fn packet(&mut self, seen: Seen) -> Vec<Run> {
        let mut runs = self.doorman.due(&self.config.doors, seen.at);
        let mut events = std::mem::take(&mut self.events);
        self.matcher.hit(&seen.hit, seen.at, &mut events);
        if !events.is_empty() {
            runs.extend(self.events(seen.at, &mut events));
        }
        self.events = events;
        runs
    }

    /// Time passed with no packet: timeouts and due stop commands.
    pub fn tick(&mut self, at: Duration) -> Vec<Run> {
        let mut events = std::mem::take(&mut self.events);
        self.matcher.expire(at, &mut events);
        let mut runs = self.events(at, &mut events);
        self.events = events;
        runs.extend(self.doorman.due(&self.config.doors, at));
        runs
    }

    /// The next moment `tick` has work to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        match (self.matcher.next_expiry(), self.doorman.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Logs and acts on `events`, leaving the vector empty for reuse.
    fn events(&mut self, at: Duration, events: &mut Vec<Event>) -> Vec<Run> {
        let mut runs = Vec::new();
        for event in events.drain(..) {
            if self.log_every_event || event.kind == EventKind::Open {
                let name = &self.config.doors[event.door].door.name;
                let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
                log.event(at, name, event.src, event.kind);
            }
            if event.kind == EventKind::Evicted {
                let evictions = self.matcher.evictions();
                if evictions.is_power_of_two() {
                    self.log().note(at, &format!("{evictions} knocks in progress dropped so far: the table of sources is full (max_sources)"));
                }
            }
            if event.kind != EventKind::Open {
                continue;
            }
            self.use_one_time_sequence(at, event.door);
            runs.extend(
                self.doorman
                    .opened(&self.config.doors, event.door, event.src, at),
            );
        }
        runs
    }

    /// A one-time door opened: its line is spent before the command runs, so
    /// a crash afterwards can never offer it again.
    fn use_one_time_sequence(&mut self, at: Duration, door: usize) {
        let Some(path) = self.config.doors[door].one_time_sequences.clone() else {
            return;
        };
        let name = self.config.doors[door].door.name.clone();
        let spent = onetime::current(&path).and_then(|line| match line {
            Some((index, _)) if !self.dry_run => onetime::consume(&path, index),
            _ => Ok(()),
        });
        let next = if self.dry_run {
            // Nothing is written in a dry run; later knocks still see the next line.
            Vec::new()
        } else {
            onetime::current(&path)
                .ok()
                .flatten()
                .map(|(_, knocks)| knocks)
                .unwrap_or_default()
        };
        match spent {
            Err(err) => {
                self.log().note(at, &format!("{name}: cannot mark the used one-time sequence in {}: {err}; the door is disabled", path.display()));
                self.matcher.set_sequence(door, Vec::new());
            }
            Ok(()) => {
                if next.is_empty() && !self.dry_run {
                    self.log().note(
                        at,
                        &format!(
                            "{name}: no one-time sequences left in {}; the door is disabled",
                            path.display()
                        ),
                    );
                }
                if !self.dry_run {
                    self.matcher.set_sequence(door, next);
                }
            }
        }
    }

    /// The future that runs `run` and logs how it ended.
    fn execution(&self, run: Run) -> impl std::future::Future<Output = ()> + Send + 'static {
        let door = self.config.doors[run.door].door.name.clone();
        let what = format!("{} command for {}", kind_name(run.kind), run.src);
        execute(self.log.clone(), door, what, run.action)
    }

    /// Logs a command about to run (or, in a dry run, what would run).
    fn announce(&self, at: Duration, run: &Run) {
        let name = &self.config.doors[run.door].door.name;
        let verb = if self.dry_run { "would run" } else { "running" };
        if run.kind == RunKind::Stop {
            self.log().close(at, name, run.src);
        }
        self.log().note(
            at,
            &format!(
                "{name}: {verb} {} command: {}",
                kind_name(run.kind),
                describe(&run.action)
            ),
        );
    }
}

fn kind_name(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Start => "start",
        RunKind::Stop => "stop",
    }
}

/// A command as it would be typed: argv words quoted where needed.
pub fn describe(action: &Action) -> String {
    match action {
        Action::Shell(line) => line.clone(),
        Action::Argv(argv) => argv
            .iter()
            .map(|w| {
                if !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./:=%,@+".contains(c))
                {
                    w.clone()
                } else {
                    format!("'{}'", w.replace('\'', r"'\''"))
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Runs `run` and logs how it ended; never fails.
async fn execute(log: Arc<Mutex<Log>>, door: String, what: String, action: Action) {
    let finished = actions::execute(&action).await;
    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
    if finished.success {
        log.debug(now(), &format!("{door}: {what} finished"));
    } else {
        let stderr = if finished.stderr.is_empty() {
            String::new()
        } else {
            format!(": {}", finished.stderr)
        };
        log.note(
            now(),
            &format!(
                "{door}: command returned non-zero status code ({}){stderr}",
                finished.status
            ),
        );
    }
}

/// `--read FILE`: replays a capture with its timestamps as the clock.
/// Commands run one after another (or are printed, with `dry_run`); stop
/// commands still pending at the end of the file run then, so a replay
/// leaves no hole open either. Returns the number of packets read.
pub fn replay(server: &mut Server, path: &std::path::Path) -> anyhow::Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut last = Duration::ZERO;
    let mut pending: Vec<(Duration, Run)> = Vec::new();
    let packets = capture::read_file(path, |seen| {
        while let Some(deadline) = server.next_deadline().filter(|d| *d <= seen.at) {
            let runs = server.tick(deadline);
            if !runs.is_empty() {
                pending.extend(runs.into_iter().map(|r| (deadline, r)));
            }
        }
        last = seen.at;
        let runs = server.packet(seen);
        if !runs.is_empty() {
            pending.extend(runs.into_iter().map(|r| (seen.at, r)));
        }
        for (at, run) in pending.drain(..) {
            server.announce(at, &run);
            if !server.dry_run {
                runtime.block_on(server.execution(run));
            }
        }
    })?;
    let closing = server.doorman.close_all(&server.config.doors);
    for run in closing {
        server.announce(last, &run);
        if !server.dry_run {
            runtime.block_on(server.execution(run));
        }
    }
    Ok(packets)
}

/// Why a live run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// SIGTERM, SIGINT or the shutdown future: a clean exit.
    Asked,
    /// A capture failed (the interface went away): exit non-zero for systemd to restart.
    CaptureFailed,
}

/// Serves live until `shutdown` resolves or a signal asks to stop, then runs
/// every pending stop command and the doors' teardown. `captures` were opened
/// (and privileges dropped) before the runtime started.
pub async fn serve(
    mut server: Server,
    captures: Vec<capture::Live>,
    config_path: PathBuf,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Ending> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Seen>(65_536);
    let (ended_tx, mut ended_rx) =
        tokio::sync::mpsc::unbounded_channel::<(String, Option<String>, capture::Drops)>();
    let control = Control::default();
    let mut readers = Vec::new();
    for live in captures {
        let tx = tx.clone();
        let ended_tx = ended_tx.clone();
        readers.push(live.spawn(
            control.clone(),
            move |seen| tx.blocking_send(seen).is_ok(),
            move |name, error, drops| {
                let _ = ended_tx.send((name, error.map(|e| format!("{e:#}")), drops));
            },
        ));
    }
    drop(tx);
    drop(ended_tx);
    // Running commands; reaped as they finish, awaited at exit.
    let mut tasks = Tasks::new();

    for door in server.config.doors.clone() {
        if let Some(setup) = &door.setup {
            run_now(&server, &door.door.name, setup, "setup").await;
        }
    }
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    tokio::pin!(shutdown);
    server.log().note(
        now(),
        &format!(
            "listening: {} doors, {} readers",
            server.config.doors.len(),
            readers.len()
        ),
    );

    // With -v, the capture counters every minute (the first tick is at once:
    // skipped): the readers are asked to refresh them, and they are logged a
    // moment later, at `drops_due`.
    let mut drops_timer = tokio::time::interval(DROPS_LOG_EVERY);
    drops_timer.tick().await;
    let verbose = server.log().verbose;
    let mut drops_due: Option<tokio::time::Instant> = None;

    let ending = loop {
        let due = drops_due;
        let wait = server
            .next_deadline()
            .map(|d| d.saturating_sub(now()))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            seen = rx.recv() => match seen {
                Some(seen) => {
                    for run in server.packet(seen) {
                        spawn_run(&server, &mut tasks, run);
                    }
                }
                None => break Ending::CaptureFailed,
            },
            () = tokio::time::sleep(wait) => {
                for run in server.tick(now()) {
                    spawn_run(&server, &mut tasks, run);
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            Some((name, error, drops)) = ended_rx.recv() => {
                let why = error.unwrap_or_else(|| "it stopped".into());
                server.log().note(now(), &format!("capture on {name} ended: {why} (kernel dropped {} of {} packets)", drops.dropped, drops.received));
                break Ending::CaptureFailed;
            }
            _ = sighup.recv() => {
                for run in reload(&mut server, &config_path) {
                    spawn_run(&server, &mut tasks, run);
                }
                control.set_filter(filter_for(&server));
            }
            _ = drops_timer.tick(), if verbose => {
                control.refresh_drops();
                drops_due = Some(tokio::time::Instant::now() + DROPS_ANSWER);
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                drops_due = None;
                log_drops(&server, &control);
            }
            _ = sigterm.recv() => break Ending::Asked,
            _ = sigint.recv() => break Ending::Asked,
            () = &mut shutdown => break Ending::Asked,
        }
    };

    // Readers blocked on a full channel see it closed; the others are woken.
    drop(rx);
    control.stop();
    for reader in readers {
        let _ = reader.join();
    }
    log_drops(&server, &control);
    let closing = server.doorman.close_all(&server.config.doors);
    server.log().note(
        now(),
        &format!(
            "stopping: running {} pending stop command(s)",
            closing.len()
        ),
    );
    for run in closing {
        spawn_run(&server, &mut tasks, run);
    }
    while tasks.join_next().await.is_some() {}
    for door in server.config.doors.clone() {
        if let Some(teardown) = &door.teardown {
            run_now(&server, &door.door.name, teardown, "teardown").await;
        }
    }
    Ok(ending)
}

/// How often `-v` logs the capture counters.
const DROPS_LOG_EVERY: Duration = Duration::from_secs(60);

/// How long the readers are given to refresh their counters before they are logged.
const DROPS_ANSWER: Duration = Duration::from_millis(200);

/// Logs every capture's libpcap counters (received, dropped by the kernel, by the interface).
fn log_drops(server: &Server, control: &Control) {
    let mut log = server.log();
    for (interface, drops) in control.drops() {
        log.capture(now(), &interface, drops);
    }
}

type Tasks = tokio::task::JoinSet<()>;

fn spawn_run(server: &Server, tasks: &mut Tasks, run: Run) {
    server.announce(now(), &run);
    if !server.dry_run {
        tasks.spawn(server.execution(run));
    }
}

async fn run_now(server: &Server, door: &str, action: &Action, what: &str) {
    server.log().note(
        now(),
        &format!("{door}: running {what} command: {}", describe(action)),
    );
    if !server.dry_run {
        execute(
            server.log.clone(),
            door.to_string(),
            format!("{what} command"),
            action.clone(),
        )
        .await;
    }
}

/// SIGHUP: the new config replaces the old only if it loads; knocks in
/// progress restart. Open knockers keep their pending stop commands, matched
/// to the new doors by name; those whose door is gone are closed now (the
/// returned commands).
fn reload(server: &mut Server, path: &std::path::Path) -> Vec<Run> {
    let loaded = config::load(path)
        .map_err(anyhow::Error::from)
        .and_then(|c| Ok((doors(&c)?, c)));
    match loaded {
        Ok((doors, config)) => {
            let old_names: Vec<String> = server
                .config
                .doors
                .iter()
                .map(|d| d.door.name.clone())
                .collect();
            let new_index = |old: usize| {
                config
                    .doors
                    .iter()
                    .position(|d| d.door.name == old_names[old])
            };
            let closing = server.doorman.rekey(&server.config.doors, new_index);
            server.matcher = Matcher::new(doors, config.max_sources);
            server.log().note(
                now(),
                &format!("reloaded {}: {} doors", path.display(), config.doors.len()),
            );
            server.config = config;
            closing
        }
        Err(err) => {
            server.log().note(
                now(),
                &format!(
                    "reload of {} refused, the old configuration keeps running: {err:#}",
                    path.display()
                ),
            );
            Vec::new()
        }
    }
}
