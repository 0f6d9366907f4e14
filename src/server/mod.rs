//! The knock server, `knockr knockd`: loads doors, watches traffic (live, or
//! replayed from a capture file with its timestamps as the clock), feeds the
//! matcher, and runs the doors' commands (and queues their RouterOS
//! address-list updates, see [`routeros`]).
//!
//! The capture readers are threads of their own; this loop only matches and
//! schedules, and commands run in tasks of their own, so neither a slow
//! command nor a flood can stall the other.

pub mod capture;
pub mod commands;
pub mod log;
pub mod otp;
pub mod privileges;
pub mod routers;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::config::onetime;
use crate::config::server::{self as config, Action, ServerConfig};
use crate::core::matcher::{Door, DoorId, Event, EventKind, Matcher, Sequence};
use capture::{Control, Seen};
use commands::{Doorman, Run, RunKind};
use log::Log;

/// How the server runs, as the command line says.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Interfaces to capture on; empty: the config's, else [`DEFAULT_INTERFACE`].
    pub interfaces: Vec<String>,
    /// One JSON object per log line instead of knockd-style text.
    pub json: bool,
    /// Debug lines too.
    pub verbose: bool,
    /// Print commands and router updates instead of carrying them out.
    pub dry_run: bool,
}

/// `--read FILE`: replays `path` through the server's doors, logging to
/// stdout. Returns the number of packets read.
pub fn replay_file(config: ServerConfig, path: &Path, options: &Options) -> anyhow::Result<u64> {
    // Buffered: a replay writes many lines, and flushing each is most of its cost.
    // A handle of its own on fd 1: router workers log from other threads.
    let stdout =
        std::fs::File::from(std::os::fd::AsFd::as_fd(&std::io::stdout()).try_clone_to_owned()?);
    let stdout = std::io::BufWriter::with_capacity(1 << 16, stdout);
    let log = Log::to_writer(Box::new(stdout), options.json, options.verbose);
    let mut server = Server::new(config, log, options.dry_run)?;
    let packets = replay(&mut server, path)?;
    let mut log = server.log();
    log.debug(
        now(),
        &format!("read {packets} packets from {}", path.display()),
    );
    log.flush()?;
    Ok(packets)
}

/// A live server ready to [`serve`]: its log open, its captures open, its pid
/// file written and privileges dropped; no runtime needed yet.
pub struct Started {
    server: Server,
    captures: Vec<capture::Live>,
    /// Read again on [`Request::Reload`].
    config_path: PathBuf,
}

impl Started {
    /// The pid file to remove once [`serve`] returned.
    pub fn pid_file(&self) -> Option<PathBuf> {
        self.server.config.pid_file.clone()
    }
}

/// Opens the log and the captures, writes the pid file and drops privileges,
/// in that order: the capture needs root, the rest of the run does not.
pub fn start(
    config: ServerConfig,
    config_path: &Path,
    options: &Options,
) -> anyhow::Result<Started> {
    let interfaces = if !options.interfaces.is_empty() {
        options.interfaces.clone()
    } else if !config.interfaces.is_empty() {
        config.interfaces.clone()
    } else {
        vec![DEFAULT_INTERFACE.to_string()]
    };
    let (json, verbose) = (options.json, options.verbose);
    let mut log = match (&config.log_file, config.use_syslog) {
        (Some(path), _) => Log::file(path, json, verbose)
            .with_context(|| format!("cannot open the log file {}", path.display()))?,
        (None, true) => Log::syslog_only(json, verbose),
        (None, false) => Log::stderr(json, verbose),
    };
    if config.use_syslog && config.log_file.is_some() {
        log.add_syslog();
    }
    let server = Server::new(config, log, options.dry_run)?;
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
    Ok(Started {
        server,
        captures,
        config_path: config_path.to_path_buf(),
    })
}

/// What the outside (signals, in the binary; a test) asks of a serving server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT: run the pending stop commands and exit.
    Stop,
    /// SIGHUP: load the configuration again.
    Reload,
}

/// The kernel filter for the server's doors. One-time doors move to ports
/// not known yet: then every TCP/UDP packet goes through and the matcher picks.
/// Time-based doors move within their port range: the filter lets the range in.
pub fn filter_for(server: &Server) -> String {
    let config = &server.config;
    if config.doors.iter().any(|d| d.one_time_sequences.is_some()) {
        return "tcp or udp or (vlan and (tcp or udp))".to_string();
    }
    // The configuration's own doors come first; time-based ones are empty there.
    let ranges: Vec<String> = config
        .doors
        .iter()
        .filter_map(|d| d.otp.as_ref())
        .flat_map(|otp| {
            let (low, high) = (otp.spec.low, otp.spec.high);
            let protos = otp.spec.protos.iter();
            protos.map(move |proto| format!("{} dst portrange {low}-{high}", proto.as_str()))
        })
        .collect();
    let doors: Vec<Door> = (server.ids[..config.doors.len()].iter())
        .map(|&id| server.matcher.door(id).clone())
        .collect();
    capture::bpf_filter_with(&doors, &ranges)
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
                door.sequence = one_time_sequence(path).with_context(|| {
                    format!(
                        "door {}: cannot read its one-time sequences {}",
                        d.door.name,
                        path.display()
                    )
                })?;
            }
            Ok(door)
        })
        .collect()
}

/// The first unused line of a one-time sequences file, as a matcher
/// sequence; empty when every line is used (the door is then disabled).
fn one_time_sequence(path: &Path) -> std::io::Result<Sequence> {
    let knocks = onetime::current(path, config::refuse_line)?;
    let knocks = knocks.map(|(_, knocks)| knocks).unwrap_or_default();
    // `refuse_line` already turned ICMP knocks away, naming the line.
    Sequence::new(&knocks)
        .map_err(|icmp| std::io::Error::new(std::io::ErrorKind::InvalidData, icmp))
}

/// The matcher for `config` (its doors, then the slot doors of its
/// time-based doors) and those slots.
fn matcher_for(config: &ServerConfig) -> anyhow::Result<(Matcher, otp::Slots)> {
    let slots = otp::Slots::new(config);
    let mut doors = doors(config)?;
    doors.extend(slots.matcher_doors());
    Ok((Matcher::new(doors, config.max_sources), slots))
}

/// The state shared by live and offline runs: matching, bookkeeping, logging.
pub struct Server {
    pub config: ServerConfig,
    pub matcher: Matcher,
    /// The time-based doors' slots in the matcher, moved on by packet time,
    /// and their replay cache.
    otp: otp::Slots,
    /// Reused for the slots' new sequences: no allocation per packet.
    changes: Vec<(usize, Sequence)>,
    /// The same as matcher changes.
    moved: Vec<(DoorId, Sequence)>,
    /// The matcher's door ids, by index.
    ids: Vec<DoorId>,
    pub doorman: Doorman,
    pub log: Arc<Mutex<Log>>,
    /// The doors' RouterOS address-list updates: queues and workers.
    pub routers: routers::Routers,
    pub dry_run: bool,
    /// Whether every matcher event is logged (`-v` or `--json`), or only openings.
    log_every_event: bool,
    /// Reused for each packet's events: no allocation per packet.
    events: Vec<Event>,
}

impl Server {
    pub fn new(config: ServerConfig, log: Log, dry_run: bool) -> anyhow::Result<Server> {
        let (matcher, otp) = matcher_for(&config)?;
        let log_every_event = log.every_event();
        let log = Arc::new(Mutex::new(log));
        let routers = routers_for(&config, dry_run, log.clone())?;
        Ok(Server {
            config,
            ids: matcher.ids().collect(),
            matcher,
            otp,
            changes: Vec::new(),
            moved: Vec::new(),
            doorman: Doorman::default(),
            log_every_event,
            log,
            routers,
            dry_run,
            events: Vec::new(),
        })
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Time-based doors' slots whose step changed by `at` get their new sequence.
    fn roll(&mut self, at: Duration) {
        self.otp.advance(at, &mut self.changes);
        let ids = &self.ids;
        self.moved
            .extend(self.changes.drain(..).map(|(i, s)| (ids[i], s)));
        self.matcher.set_sequences(&mut self.moved);
    }

    /// One packet at `seen.at`: returns the commands it makes due.
    pub fn packet(&mut self, seen: Seen) -> Vec<Run> {
        self.roll(seen.at);
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
        self.roll(at);
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
            // A time-based door's slot stands for the door and one client.
            let opening = match event.kind {
                EventKind::Open => self.otp.open(event.door.index()),
                _ => otp::Opening::Plain,
            };
            let index = event.door.index();
            let (door, client) = self.otp.who(index).unwrap_or((index, None));
            let name = &self.config.doors[door].door.name;
            if opening == otp::Opening::Replay {
                let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
                log.replay(at, name, client, event.src);
                continue;
            }
            if self.log_every_event || event.kind == EventKind::Open {
                let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
                log.client_event(at, name, client, event.src, event.kind);
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
            self.use_one_time_sequence(at, door);
            runs.extend(self.doorman.opened(&self.config.doors, door, event.src, at));
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
        let spent = onetime::current(&path, config::refuse_line).and_then(|line| match line {
            Some((index, _)) if !self.dry_run => onetime::consume(&path, index),
            _ => Ok(()),
        });
        let next = if self.dry_run {
            // Nothing is written in a dry run; later knocks still see the next line.
            Ok(Sequence::default())
        } else {
            one_time_sequence(&path)
        };
        match (spent, next) {
            (Err(err), _) => {
                self.log().note(at, &format!("{name}: cannot mark the used one-time sequence in {}: {err}; the door is disabled", path.display()));
                self.matcher
                    .set_sequence(self.ids[door], Sequence::default());
            }
            // A bad next line (a typo, an ICMP knock) disables the door and says why.
            (Ok(()), Err(err)) => {
                self.log().note(
                    at,
                    &format!("{name}: cannot read the next one-time sequence: {err}; the door is disabled"),
                );
                self.matcher
                    .set_sequence(self.ids[door], Sequence::default());
            }
            (Ok(()), Ok(next)) => {
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
                    self.matcher.set_sequence(self.ids[door], next);
                }
            }
        }
    }

    /// The future that runs `run`'s command and logs how it ended; `None`
    /// when the door has no command for it.
    fn execution(
        &self,
        run: Run,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let door = self.config.doors[run.door].door.name.clone();
        let what = format!("{} command for {}", kind_name(run.kind), run.src);
        Some(execute(self.log.clone(), door, what, run.action?))
    }

    /// Queues `run`'s address-list update on the door's routers, if it has
    /// any (in a dry run: logs what would be sent). Never waits.
    fn update_routers(&self, at: Duration, run: &Run) {
        let change = match run.kind {
            RunKind::Start => routers::Change::Grant,
            RunKind::Stop => routers::Change::Remove,
        };
        let name = &self.config.doors[run.door].door.name;
        self.routers.submit(run.door, name, run.src, change, at);
    }

    /// Logs a command about to run (or, in a dry run, what would run).
    fn announce(&self, at: Duration, run: &Run) {
        let name = &self.config.doors[run.door].door.name;
        let verb = if self.dry_run { "would run" } else { "running" };
        if run.kind == RunKind::Stop {
            self.log().close(at, name, run.src);
        }
        let Some(action) = &run.action else {
            return;
        };
        self.log().note(
            at,
            &format!(
                "{name}: {verb} {} command: {}",
                kind_name(run.kind),
                describe(action)
            ),
        );
    }
}

/// The doors' routers, their passwords read now (before any privilege drop).
fn routers_for(
    config: &ServerConfig,
    dry_run: bool,
    log: Arc<Mutex<Log>>,
) -> anyhow::Result<routers::Routers> {
    let actions = config.doors.iter().map(|d| d.routeros.clone()).collect();
    routers::Routers::new(actions, dry_run, log)
}

/// How long an exit waits for pending router updates: their retry bound and
/// a request's time limit.
fn router_grace(server: &Server) -> Duration {
    server.routers.longest_retry() + crate::routeros::rest::REQUEST_LIMIT
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
    let finished = commands::execute(&action).await;
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
    // One worker thread: router updates proceed while packets are read.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    {
        let _runtime = runtime.enter();
        server.routers.start();
    }
    let mut last = Duration::ZERO;
    let mut pending: Vec<(Duration, Run)> = Vec::new();
    let act = |server: &mut Server, pending: &mut Vec<(Duration, Run)>| {
        for (at, run) in pending.drain(..) {
            server.announce(at, &run);
            server.update_routers(at, &run);
            if let Some(execution) = server.execution(run).filter(|_| !server.dry_run) {
                runtime.block_on(execution);
            }
        }
    };
    let packets = read_ahead(path, |seen| {
        last = seen.at;
        // Changes nothing; what falls due meanwhile is handled, at its own
        // time, before the next packet that matters (or at the end). With
        // time-based doors the ports watched change at each step, so every
        // packet goes through `packet`, which rolls them first.
        if server.otp.is_empty() && server.matcher.ignores(&seen.hit) {
            return;
        }
        catch_up(server, seen.at, &mut pending);
        let runs = server.packet(seen);
        pending.extend(runs.into_iter().map(|r| (seen.at, r)));
        act(server, &mut pending);
    })?;
    // Timeouts and stop commands that fell due after the last knock, as a
    // live server would have seen them; then what is still open closes.
    catch_up(server, last, &mut pending);
    pending.extend(
        server
            .doorman
            .close_all(&server.config.doors)
            .into_iter()
            .map(|r| (last, r)),
    );
    act(server, &mut pending);
    // The router updates still queued are sent (or given up) before the replay ends.
    let grace = router_grace(server);
    runtime.block_on(server.routers.finish(grace));
    Ok(packets)
}

/// Everything that falls due up to `until`, each at its own moment: attempts
/// timing out, stop commands due (added to `pending`).
fn catch_up(server: &mut Server, until: Duration, pending: &mut Vec<(Duration, Run)>) {
    while let Some(deadline) = server.next_deadline().filter(|d| *d <= until) {
        let runs = server.tick(deadline);
        pending.extend(runs.into_iter().map(|r| (deadline, r)));
    }
}

/// Packets per batch handed from the reading thread to the matching one:
/// large enough that the hand-over costs nothing per packet, small enough
/// (about 48 KiB) to stay in cache.
const BATCH: usize = 1024;

/// [`capture::read_file`] on a thread of its own, feeding `each` on this one
/// in the file's order: reading and parsing a packet overlap with matching
/// the ones before it, so a replay takes about the longer of the two rather
/// than their sum. At most a few batches are in flight, so memory stays
/// small whatever the file's size.
fn read_ahead(path: &std::path::Path, mut each: impl FnMut(Seen)) -> anyhow::Result<u64> {
    let (batches, received) = std::sync::mpsc::sync_channel::<Vec<Seen>>(4);
    let (spares, spare) = std::sync::mpsc::channel::<Vec<Seen>>();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let packets = capture::read_file(path, |seen| {
                batch.push(seen);
                if batch.len() == BATCH {
                    let next = spare
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH));
                    // A closed channel means the matching side stopped: nothing
                    // more to do, and the reader finishes on its own.
                    let _ = batches.send(std::mem::replace(&mut batch, next));
                }
            });
            if !batch.is_empty() {
                let _ = batches.send(batch);
            }
            packets
        });
        for mut batch in received {
            batch.drain(..).for_each(&mut each);
            let _ = spares.send(batch);
        }
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Why a live run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// [`Request::Stop`] (SIGTERM, SIGINT): a clean exit.
    Asked,
    /// A capture failed for good (the interface went away and did not come
    /// back in time), said in one sentence: exit non-zero for systemd to restart.
    CaptureFailed(String),
}

/// Serves live until a [`Request::Stop`] arrives (or `requests` closes),
/// then runs every pending stop command and the doors' teardown.
pub async fn serve(
    started: Started,
    mut requests: tokio::sync::mpsc::Receiver<Request>,
) -> anyhow::Result<Ending> {
    let Started {
        mut server,
        captures,
        config_path,
    } = started;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Seen>(65_536);
    let (ended_tx, mut ended_rx) =
        tokio::sync::mpsc::unbounded_channel::<(String, Option<String>, capture::Drops)>();
    // A reader's news while it goes on: its capture failed, or came back.
    let (notice_tx, mut notice_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let control = Control::default();
    let mut readers = Vec::new();
    for live in captures {
        let tx = tx.clone();
        let ended_tx = ended_tx.clone();
        let notice_tx = notice_tx.clone();
        readers.push(live.spawn(
            control.clone(),
            move |seen| tx.blocking_send(seen).is_ok(),
            move |news| {
                let _ = notice_tx.send(news);
            },
            move |name, error, drops| {
                let _ = ended_tx.send((name, error.map(|e| format!("{e:#}")), drops));
            },
        ));
    }
    drop(tx);
    drop(ended_tx);
    drop(notice_tx);
    // Running commands; reaped as they finish, awaited at exit.
    let mut tasks = Tasks::new();
    server.routers.start();

    for door in server.config.doors.clone() {
        if let Some(setup) = &door.setup {
            run_now(&server, &door.door.name, setup, "setup").await;
        }
    }
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
                None => break Ending::CaptureFailed("every capture ended".into()),
            },
            () = tokio::time::sleep(wait) => {
                for run in server.tick(now()) {
                    spawn_run(&server, &mut tasks, run);
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            Some(news) = notice_rx.recv() => {
                // Said on stderr too when the log goes elsewhere: the
                // journal then shows it even if the log file is what fails.
                if server.config.log_file.is_some() || server.config.use_syslog {
                    eprintln!("knockr knockd: {news}");
                }
                server.log().note(now(), &news);
            }
            Some((name, error, drops)) = ended_rx.recv() => {
                let why = error.unwrap_or_else(|| format!("capture on {name} stopped"));
                server.log().note(now(), &format!("{why} (kernel dropped {} of {} packets)", drops.dropped, drops.received));
                break Ending::CaptureFailed(why);
            }
            request = requests.recv() => match request {
                Some(Request::Reload) => {
                    for run in reload(&mut server, &config_path) {
                        spawn_run(&server, &mut tasks, run);
                    }
                    control.set_filter(filter_for(&server));
                }
                Some(Request::Stop) | None => break Ending::Asked,
            },
            _ = drops_timer.tick(), if verbose => {
                control.refresh_drops();
                drops_due = Some(tokio::time::Instant::now() + DROPS_ANSWER);
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                drops_due = None;
                log_drops(&server, &control);
            }
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
    let grace = router_grace(&server);
    server.routers.finish(grace).await;
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
    let at = now();
    server.announce(at, &run);
    server.update_routers(at, &run);
    if let Some(execution) = server.execution(run).filter(|_| !server.dry_run) {
        tasks.spawn(execution);
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
        .and_then(|c| Ok((matcher_for(&c)?, c)))
        .and_then(|(m, c)| Ok((m, routers_for(&c, server.dry_run, server.log.clone())?, c)));
    match loaded {
        Ok(((matcher, mut slots), mut routers, config)) => {
            // The old routers' queued updates go out in the background.
            routers.start();
            let mut old = std::mem::replace(&mut server.routers, routers);
            let grace = router_grace(server);
            tokio::spawn(async move { old.finish(grace).await });
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
            slots.carry_over(&server.otp);
            server.ids = matcher.ids().collect();
            server.matcher = matcher;
            server.otp = slots;
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
