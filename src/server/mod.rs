//! The knock server, `knockr knockd`: loads doors, watches traffic (live, or
//! replayed from a capture file with its timestamps as the clock), feeds the
//! [`engine`], and carries out what it fires: log lines, the doors' commands
//! and their RouterOS address-list updates (see [`routers`]).
//!
//! The engine is pure; this module is its I/O. Live and replay drive it the
//! same way and dispatch its firings with one function, `Server::dispatch`;
//! they differ only in the clock and in how commands run (live: each in a
//! task of its own, scheduled by [`runner`]; replay: one after another).
//!
//! What a crash must not lose, the open knockers and the time-based replay
//! cache, is written to the state file ([`state`]) before the firings that
//! changed it are carried out, and restored at the next start.
//!
//! The capture readers are threads of their own; the loop only matches and
//! schedules, and commands run in tasks of their own, so neither a slow
//! command nor a flood can stall the other.

pub(crate) mod addresses;
pub(crate) mod capture;
pub(crate) mod commands;
pub(crate) mod engine;
pub(crate) mod log;
pub(crate) mod nftables;
pub(crate) mod notify;
mod preflight;
pub(crate) mod privileges;
pub(crate) mod routers;
pub(crate) mod runner;
pub(crate) mod state;

pub(crate) use preflight::preflight;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::config::onetime;
use crate::config::server::{self as config, Action, ServerConfig};
use crate::core::matcher::{DoorId, Sequence};
use crate::core::packet::Hit;
use crate::routeros::worker::Change;
use capture::{Control, Seen};
use commands::{Run, RunKind};
use engine::{Engine, Firing, Knocks};
use log::Log;
use runner::{Admission, Runner};

/// How the server runs, as the command line says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// Interfaces to capture on; empty: the config's, else [`DEFAULT_INTERFACE`].
    pub(crate) interfaces: Vec<String>,
    /// One JSON object per log line instead of knockd-style text.
    pub(crate) json: bool,
    /// Debug lines too.
    pub(crate) verbose: bool,
    /// Print commands and router updates instead of carrying them out.
    pub(crate) dry_run: bool,
    /// `--state-file`: replaces the config's `state_file`.
    pub(crate) state_file: Option<PathBuf>,
}

/// `--read FILE`: replays `path` through the server's doors, logging to
/// stdout. Returns the number of packets read.
pub(crate) fn replay_file(
    config: ServerConfig,
    path: &Path,
    options: &Options,
) -> anyhow::Result<u64> {
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
pub(crate) struct Started {
    /// The engine and its outputs.
    server: Server,
    /// One per interface, opened as root, read once serving.
    captures: Vec<capture::Live>,
    /// Read again on [`Request::Reload`].
    config_path: PathBuf,
    /// Changes of the host's own addresses, from the thread that follows them.
    addresses: Following,
}

/// The thread following the host's addresses, and what it tells.
struct Following {
    changes: tokio::sync::mpsc::UnboundedReceiver<addresses::Change>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Started {
    /// The pid file to remove once [`serve`] returned.
    pub(crate) fn pid_file(&self) -> Option<PathBuf> {
        self.server.config().pid_file.clone()
    }
}

/// Opens the log and the captures, writes the pid file and drops privileges,
/// in that order: the capture needs root, the rest of the run does not.
pub(crate) fn start(
    config: ServerConfig,
    config_path: &Path,
    options: &Options,
) -> anyhow::Result<Started> {
    let interfaces = options.interfaces_for(&config);
    let (json, verbose) = (options.json, options.verbose);
    let mut log = match (&config.log_file, config.use_syslog) {
        (Some(path), _) => Log::file(path, json, verbose)
            .with_context(|| format!("cannot open the log file {}", path.display()))?,
        (None, true) => Log::syslog_only(now(), json, verbose),
        (None, false) => Log::stderr(json, verbose),
    };
    if config.use_syslog && config.log_file.is_some() {
        log.add_syslog(now());
    }
    // Refused as `--check` refuses it. A dry run writes no one-time line
    // and reads no password.
    if !options.dry_run {
        config::check_files(&config, Some(&options.state_file_for(&config)))?;
    }
    let mut server = Server::new(config, log, options.dry_run)?;
    // Only knocks addressed to this host count: its addresses, followed live.
    let (changes_tx, changes) = tokio::sync::mpsc::unbounded_channel();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (own, thread) =
        addresses::follow(stop.clone(), move |change| changes_tx.send(change).is_ok())
            .context("cannot read this host's addresses (rtnetlink)")?;
    let own = addresses::Own::new(own);
    server
        .log()
        .debug(now(), &format!("own addresses: {}", own.describe()));
    server.own = Some(own);
    let addresses = Following {
        changes,
        stop,
        thread,
    };
    // A dry run carries nothing out, so it has nothing to remember: it
    // neither reads nor writes the state file (nor takes its lock).
    if !options.dry_run {
        let path = options.state_file_for(server.config());
        server.take_state(&path)?;
    }
    let filter = filter_for(server.config());
    server
        .log()
        .debug(now(), &format!("capture filter: {}", filter.expression));
    if let Some(notice) = filter.notice() {
        server.log().note(now(), &notice);
    }
    // libpcap only warns on stderr when the kernel refuses a filter, and
    // then copies every packet to userspace to filter there: say it in the log.
    if let Err(why) = capture::filter_compiles(&filter.expression) {
        server.log().note(now(), &format!("capture filter: {why}"));
    }
    let captures = interfaces
        .iter()
        .map(|i| capture::open_live(i, &filter.expression))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(pid_file) = &server.config().pid_file {
        // Replaced, not written through: a symlink planted at the pid
        // file's path cannot make root overwrite another file.
        crate::config::files::replace(
            pid_file,
            format!("{}\n", std::process::id()).as_bytes(),
            0o644,
        )
        .with_context(|| format!("cannot write the pid file {}", pid_file.display()))?;
    }
    if let Some(user) = server.config().user.clone() {
        // The nftables doors' socket needs CAP_NET_ADMIN for every message.
        let keep = nftables::Nftables::needed(server.config());
        privileges::drop_to(&user, keep)?;
        server.log().note(
            now(),
            &format!(
                "capturing on {}; now running as {user}",
                interfaces.join(", ")
            ),
        );
    }
    // Written once now, as the user it runs as: a state file that user
    // cannot rewrite is refused here, not found out after the first opening.
    if let Some(store) = &server.state {
        let as_user = server
            .config()
            .user
            .as_ref()
            .map(|user| format!(" as user {user}"))
            .unwrap_or_default();
        store.save(&server.engine.export()).with_context(|| {
            format!(
                "cannot write the state file {}{as_user} (its directory must be writable by that user)",
                store.path().display()
            )
        })?;
    }
    Ok(Started {
        server,
        captures,
        config_path: config_path.to_path_buf(),
        addresses,
    })
}

/// What the outside (signals, in the binary; a test) asks of a serving server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// SIGTERM or SIGINT: run the pending stop commands and exit.
    Stop,
    /// SIGHUP: reopen the log file, then load the configuration again (the
    /// reload's lines land in the new file).
    Reload,
    /// SIGUSR1 (logrotate's postrotate): reopen the log file, nothing else.
    ReopenLog,
}

/// The kernel filter for the server's doors. One-time doors move to ports
/// not known yet: then every TCP/UDP packet goes through and the matcher picks.
/// Time-based doors move within their port range: the filter lets the range in.
pub(crate) fn filter_for(config: &ServerConfig) -> capture::KernelFilter {
    if config.doors.iter().any(|d| d.one_time_sequences.is_some()) {
        return capture::KernelFilter::every_tcp_and_udp();
    }
    // Time-based doors' own sequences are empty: their range stands for them.
    let ranges: Vec<capture::PortRange> = config
        .doors
        .iter()
        .filter_map(|d| d.otp.as_ref())
        .flat_map(|otp| {
            let (low, high) = (otp.spec.low(), otp.spec.high());
            let protos = otp.spec.protos().iter();
            protos.map(move |&proto| capture::PortRange { proto, low, high })
        })
        .collect();
    let doors: Vec<&crate::core::matcher::Door> = config.doors.iter().map(|d| &d.door).collect();
    capture::bpf_filter(&doors, &ranges)
}

/// Interfaces captured when neither `-i` nor the config names any.
pub(crate) const DEFAULT_INTERFACE: &str = "any";

/// Wall-clock time as the matcher counts it: since the Unix epoch.
pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `config` with each one-time door's sequence set to its file's current
/// line, as the engine wants it.
fn with_one_time_sequences(mut config: ServerConfig) -> anyhow::Result<ServerConfig> {
    for door in &mut config.doors {
        if let Some(path) = &door.one_time_sequences {
            door.door.sequence = one_time_sequence(path).with_context(|| {
                format!(
                    "door {}: cannot read its one-time sequences {}",
                    door.door.name,
                    path.display()
                )
            })?;
        }
    }
    Ok(config)
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

/// How dispatched commands run.
enum Commands<'a> {
    /// Live: each in a task of its own, so a slow one stalls nothing, at
    /// most `max_commands` at once and one knocker's in order ([`runner`]).
    Spawn(&'a mut Runner),
    /// Replay: one after another, each to its end before the next packet;
    /// the one submitted and not yet run.
    Block(&'a tokio::runtime::Runtime, Option<runner::Task>),
}

impl Commands<'_> {
    /// Hands over knocker `key`'s `kind` command; it begins at
    /// [`Commands::begin`] at the earliest. Decided now: a dropped start
    /// must not be announced, nor owe a stop.
    fn submit(
        &mut self,
        key: runner::Key,
        kind: RunKind,
        command: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Admission {
        match self {
            Commands::Spawn(runner) => runner.submit(key, kind, Box::pin(command)),
            Commands::Block(_, next) => {
                *next = Some(Box::pin(command));
                Admission::Queued
            }
        }
    }

    /// Begins what was submitted and may begin (a replay: runs it to its end).
    fn begin(&mut self) {
        match self {
            Commands::Spawn(runner) => runner.begin(),
            Commands::Block(runtime, next) => {
                if let Some(command) = next.take() {
                    runtime.block_on(command);
                }
            }
        }
    }

    /// Starts withdrawn by their stop so far (a replay withdraws none).
    fn withdrawn(&mut self) -> u64 {
        match self {
            Commands::Spawn(runner) => runner.queue().withdrawn(),
            Commands::Block(..) => 0,
        }
    }

    /// At exit: drops the starts that have not begun; how many (a replay
    /// has none waiting).
    fn drop_waiting_starts(&mut self) -> u64 {
        match self {
            Commands::Spawn(runner) => runner.queue().drop_waiting_starts(),
            Commands::Block(..) => 0,
        }
    }
}

/// The engine and its outputs: the log, the routers, the commands. What
/// live runs and replays share.
pub(crate) struct Server {
    /// The pure state machine: doors, knocks in progress, open knockers.
    engine: Engine,
    /// Where every line goes; shared with router workers and running commands.
    log: Arc<Mutex<Log>>,
    /// The doors' RouterOS address-list updates: queues and workers.
    routers: routers::Routers,
    /// The doors' nftables sets: the netlink socket and its thread.
    nftables: nftables::Nftables,
    /// Print commands and router updates instead of carrying them out.
    dry_run: bool,
    /// Where open knockers and the replay cache survive a crash; `None` for
    /// `--read` and `--dry-run`. Set by [`Server::take_state`].
    state: Option<state::Store>,
    /// Reused for each engine call's firings: no allocation per packet.
    firings: Vec<Firing>,
    /// One-time doors whose line could not be marked in the firings being
    /// dispatched: their start, which follows in the same batch, is skipped
    /// (fail closed). Emptied after each batch.
    unmarked: Vec<Arc<str>>,
    /// Reused by [`Server::packets`]: a batch's firings, each with its
    /// packet's time, until they are carried out.
    held: Vec<(Duration, Firing)>,
    /// Live: the host's own addresses; a door without `target` counts only
    /// knocks to them. `None` in a replay, where every destination counts
    /// (the capture's host is not this one).
    own: Option<addresses::Own>,
    /// Set by `close_all`: from then on the starts dropped with their stop
    /// are counted in one line, not one line each (up to the queue's 1024).
    stopping: bool,
}

impl Server {
    /// Reads the one-time doors' current lines and the routers' passwords
    /// (so: before dropping privileges).
    pub(crate) fn new(config: ServerConfig, log: Log, dry_run: bool) -> anyhow::Result<Server> {
        // The log shows every knock event with -v or --json, else openings.
        let knocks = if log.every_event() {
            Knocks::Every
        } else {
            Knocks::Openings
        };
        let engine = Engine::new(with_one_time_sequences(config)?, knocks);
        let log = Arc::new(Mutex::new(log));
        let routers = routers::Routers::new(engine.config(), dry_run, log.clone())?;
        let nftables = nftables::Nftables::new(engine.config(), dry_run, log.clone())?;
        Ok(Server {
            engine,
            log,
            routers,
            nftables,
            dry_run,
            state: None,
            firings: Vec::new(),
            unmarked: Vec::new(),
            held: Vec::new(),
            own: None,
            stopping: false,
        })
    }

    /// Takes the state file at `path` (its directory, made if missing and
    /// given to `user =`, and its lock) and restores what it kept, logging
    /// what becomes of each knocker. As root, before the drop. Overdue stops
    /// run at the first tick of [`serve`].
    fn take_state(&mut self, path: &Path) -> anyhow::Result<()> {
        let owner = self
            .config()
            .user
            .as_deref()
            .map(privileges::lookup)
            .transpose()?;
        let store = state::Store::open(path, owner)?;
        let saved = state::load(path)?;
        let at = now();
        let restored = self.engine.restore(saved, at);
        let mut log = self.log();
        for knocker in &restored.overdue {
            let since = humantime::format_rfc3339_seconds(UNIX_EPOCH + knocker.due);
            log.note(
                at,
                &format!(
                    "{}: stop for {} overdue since {since} (kept in the state file): running it now",
                    knocker.door, knocker.src
                ),
            );
        }
        for knocker in &restored.gone {
            log.note(
                at,
                &format!(
                    "state file: {} at door {} dropped: the configuration has no such door, so its stop command is not known",
                    knocker.src,
                    crate::core::text::sanitize(&knocker.door)
                ),
            );
        }
        let forgotten = match restored.forgotten {
            0 => String::new(),
            n => format!(" ({n} more forgotten: their door or client is gone or its step changed)"),
        };
        log.note(
            at,
            &format!(
                "state file {}: {} open knocker(s) restored ({} overdue), {} used time-based sequence(s) refused again{forgotten}",
                path.display(),
                restored.overdue.len() + restored.scheduled,
                restored.overdue.len(),
                restored.used
            ),
        );
        drop(log);
        self.state = Some(store);
        Ok(())
    }

    /// Rewrites the state file if the engine's open knockers or replay
    /// cache changed: before the firings that changed them are carried out,
    /// so a start command never runs for a knocker a crash would forget.
    fn persist(&mut self, at: Duration) {
        if !self.engine.take_changed() {
            return;
        }
        let Some(store) = &self.state else { return };
        let mut state = self.engine.export();
        let left_out = state.bound();
        let saved = store.save(&state);
        let path = store.path().display().to_string();
        let was_failing = store.failing;
        let mut log = lock(&self.log);
        if left_out > 0 {
            log.note(
                at,
                &format!(
                    "state file {path}: {left_out} entries not recorded (at most {} open knockers and {} used sequences are)",
                    state::MAX_OPEN,
                    state::MAX_USED
                ),
            );
        }
        match &saved {
            Err(err) if !was_failing => log.note(
                at,
                &format!(
                    "cannot write the state file {path}: {}; open knockers will not survive a crash until it can",
                    crate::core::text::describe(err)
                ),
            ),
            Ok(()) if was_failing => log.note(at, &format!("state file {path} written again")),
            _ => {}
        }
        drop(log);
        if let Some(store) = &mut self.state {
            store.failing = saved.is_err();
        }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> &ServerConfig {
        self.engine.config()
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        lock(&self.log)
    }

    /// One packet seen at `at`, and what it makes due.
    fn packet(&mut self, at: Duration, hit: &Hit, commands: &mut Commands) {
        let mut firings = std::mem::take(&mut self.firings);
        let mut hit = *hit;
        if let Some(own) = &self.own {
            hit.to_host = own.contains(hit.dst);
        }
        self.engine.packet(at, &hit, &mut firings);
        self.dispatch_all(at, firings, commands);
    }

    /// Live: the packets that arrived together, matched one after another
    /// and carried out together, so the state file is written once for the
    /// lot (a flood of completions costs a few writes, not one each), still
    /// before any of their commands runs. A one-time door's opening is
    /// carried out at once: its next line must be in force before the next
    /// packet is matched.
    fn packets(&mut self, batch: &mut Vec<Seen>, commands: &mut Commands) {
        let mut held = std::mem::take(&mut self.held);
        for seen in batch.drain(..) {
            let mut firings = std::mem::take(&mut self.firings);
            let mut hit = seen.hit;
            if let Some(own) = &self.own {
                hit.to_host = own.contains(hit.dst);
            }
            self.engine.packet(seen.at, &hit, &mut firings);
            let one_time = firings
                .iter()
                .any(|f| matches!(f, Firing::OneTimeUsed { .. }));
            held.extend(firings.drain(..).map(|firing| (seen.at, firing)));
            self.firings = firings;
            if one_time {
                self.carry_out(&mut held, commands);
            }
        }
        self.carry_out(&mut held, commands);
        self.held = held;
    }

    /// Persists what `held` changed, then dispatches it, each firing at its
    /// packet's time.
    fn carry_out(&mut self, held: &mut Vec<(Duration, Firing)>, commands: &mut Commands) {
        let Some((last, _)) = held.last() else {
            return;
        };
        self.persist(*last);
        for (at, firing) in held.drain(..) {
            self.dispatch(at, firing, commands);
        }
        self.unmarked.clear();
    }

    /// Time passed with no packet: timeouts and due stop commands.
    fn tick(&mut self, at: Duration, commands: &mut Commands) {
        let mut firings = std::mem::take(&mut self.firings);
        self.engine.tick(at, &mut firings);
        self.dispatch_all(at, firings, commands);
    }

    /// Every pending stop command, at the end of a run. Knockers whose
    /// start still waits for a slot are dropped with their stop (nothing
    /// was opened), as is every other start not begun.
    fn close_all(&mut self, at: Duration, commands: &mut Commands) {
        self.stopping = true;
        let mut firings = std::mem::take(&mut self.firings);
        self.engine.close_all(&mut firings);
        let closing = firings.len() as u64;
        let withdrawn = commands.withdrawn();
        self.dispatch_all(at, firings, commands);
        let withdrawn = commands.withdrawn() - withdrawn;
        let dropped = commands.drop_waiting_starts();
        self.log().note(
            at,
            &format!(
                "stopping: running {} pending stop command(s)",
                closing - withdrawn
            ),
        );
        if withdrawn + dropped > 0 {
            self.log().note(
                at,
                &format!(
                    "stopping: {} start command(s) that had not begun dropped ({withdrawn} with their stop command)",
                    withdrawn + dropped
                ),
            );
        }
    }

    /// SIGHUP: the new config replaces the old only if it loads (its one-time
    /// files and router passwords included); knocks in progress restart.
    /// Open knockers keep their pending stop commands, matched to the new
    /// doors by name; those whose door is gone are closed now, their router
    /// entries removed through the old routers (the new ones lack the door).
    fn reload(&mut self, path: &Path, commands: &mut Commands) {
        let dry_run = self.dry_run;
        let loaded = config::load(path)
            .and_then(|c| {
                // As at start, for the account now running: a one-time file
                // it cannot rewrite (say, the one whose line could not be
                // marked) keeps the old configuration and its door disabled.
                if !dry_run {
                    let account = crate::config::account::Account::current();
                    config::check_one_time_files(&c, &account)?;
                }
                Ok(c)
            })
            .map_err(anyhow::Error::from)
            .and_then(with_one_time_sequences)
            .and_then(|c| {
                Ok((
                    routers::Routers::new(&c, self.dry_run, self.log.clone())?,
                    nftables::Nftables::new(&c, self.dry_run, self.log.clone())?,
                    c,
                ))
            });
        let at = now();
        let (mut routers, mut nft, config) = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                self.log().note(
                    at,
                    &format!(
                        "reload of {} refused, the old configuration keeps running: {err:#}",
                        path.display()
                    ),
                );
                return;
            }
        };
        let doors = config.doors.len();
        if let Commands::Spawn(runner) = commands {
            runner.queue().set_max(config.max_commands);
        }
        let mut firings = std::mem::take(&mut self.firings);
        self.engine.reload(config, &mut firings);
        self.log()
            .note(at, &format!("reloaded {}: {doors} doors", path.display()));
        self.dispatch_all(at, firings, commands);
        // The old routers' queued updates go out in the background; what
        // they put on their lists is the new ones' to restore after a reboot.
        routers.adopt(&self.routers);
        routers.start();
        let mut old = std::mem::replace(&mut self.routers, routers);
        // The old sets' thread carries out what it was given, then ends.
        nft.start();
        std::mem::replace(&mut self.nftables, nft).retire();
        let grace = router_grace(&old);
        tokio::spawn(async move { old.finish(grace).await });
    }

    /// SIGUSR1 or SIGHUP: the log file is opened again by its path (see
    /// [`Log::reopen`]). A failure is said in the old file and on stderr (the
    /// journal), since the file's reader may be looking at the new one.
    fn reopen_log(&self) {
        let mut log = self.log();
        match log.reopen() {
            Ok(log::Reopened::File(path)) => {
                log.note(now(), &format!("reopened the log file {}", path.display()));
            }
            Ok(log::Reopened::NoFile) => {
                log.debug(
                    now(),
                    "no log file to reopen: logging to stderr or syslog only",
                );
            }
            Err(err) => {
                eprintln!("knockr knockd: {err}");
                log.note(now(), &err.to_string());
            }
        }
    }

    /// Dispatches `firings` in order, then keeps the emptied vector for the
    /// next engine call.
    fn dispatch_all(&mut self, at: Duration, mut firings: Vec<Firing>, commands: &mut Commands) {
        self.persist(at);
        for firing in firings.drain(..) {
            self.dispatch(at, firing, commands);
        }
        self.unmarked.clear();
        self.firings = firings;
    }

    /// Carries out one firing of the engine at `at`: logs it, spends a
    /// one-time line, queues a run's router updates and hands its command
    /// to `commands` (unless this is a dry run). A start the command queue
    /// has no room for is dropped here, before anything of it is done: the
    /// engine forgets the knocker, so no stop is owed.
    fn dispatch(&mut self, at: Duration, firing: Firing, commands: &mut Commands) {
        match firing {
            Firing::Knock {
                door,
                client,
                src,
                kind,
            } => self
                .log()
                .client_event(at, &door, client.as_deref(), src, kind),
            Firing::Replay { door, client, src } => {
                self.log().replay(at, &door, client.as_deref(), src);
            }
            Firing::TableFull { dropped } => self.log().note(
                at,
                &format!(
                    "{dropped} knocks in progress dropped so far: the table of sources is full (max_sources)"
                ),
            ),
            Firing::OneTimeUsed { door, name, path } => {
                if !self.use_one_time_sequence(at, door, &name, &path) {
                    self.unmarked.push(name);
                }
            }
            // Its line is still in the file: opening would let the same
            // sequence in again. Nothing runs and the knocker is not kept open.
            // (A knocker already open has no start here: it keeps its stop.)
            Firing::Run(run) if run.kind == RunKind::Start && self.unmarked.contains(&run.door) => {
                self.engine.forget(&run.door, run.src);
            }
            Firing::Run(run) => self.dispatch_run(at, run, commands),
        }
    }

    /// A start or stop: submitted first (a start may be dropped, a stop
    /// may withdraw its start), then announced and sent to the routers.
    fn dispatch_run(&mut self, at: Duration, run: Run, commands: &mut Commands) {
        let admission = match run.action.as_ref().filter(|_| !self.dry_run) {
            None => Admission::Queued,
            Some(action) => {
                let what = format!("{} command for {}", run.kind.as_str(), run.src);
                let command = execute(
                    self.log.clone(),
                    run.door.to_string(),
                    Some(run.src),
                    what,
                    action.clone(),
                    self.config().max_command_time,
                );
                commands.submit((run.door.clone(), run.src), run.kind, command)
            }
        };
        match admission {
            Admission::Queued => {
                self.announce(at, &run);
                self.update_lists(at, &run);
                commands.begin();
            }
            Admission::Dropped { so_far } => {
                self.engine.forget(&run.door, run.src);
                // As the table of sources: a few lines under a flood, not one a drop.
                if so_far.is_power_of_two() {
                    self.log().note(
                        at,
                        &format!(
                            "{so_far} start commands dropped so far: {} commands already wait for one of {} running (max_commands)",
                            runner::QUEUE,
                            self.config().max_commands
                        ),
                    );
                }
            }
            Admission::Withdrawn => {
                let line = format!(
                    "{}: start command for {} dropped before it began, with its stop command: nothing was opened",
                    run.door, run.src
                );
                let mut log = self.log();
                log.close(at, &run.door, run.src);
                if self.stopping {
                    log.debug(at, &line);
                } else {
                    log.note(at, &line);
                }
                drop(log);
                // Its router entry and set element went out with the start: they are removed.
                self.update_lists(at, &run);
            }
        }
    }

    /// A one-time door opened: its line is spent before the command runs, so
    /// a crash afterwards can never offer it again; the door moves to the
    /// next line (or is disabled, saying why). Returns whether the line was
    /// marked: if not (permissions, a full disk), the door must not open and
    /// is disabled until a reload, which refuses a file knockd cannot rewrite.
    fn use_one_time_sequence(
        &mut self,
        at: Duration,
        door: DoorId,
        name: &str,
        path: &Path,
    ) -> bool {
        let spent = onetime::current(path, config::refuse_line).and_then(|line| match line {
            Some((index, _)) if !self.dry_run => onetime::consume(path, index),
            _ => Ok(()),
        });
        let next = if self.dry_run {
            // Nothing is written in a dry run; later knocks still see the next line.
            Ok(Sequence::default())
        } else {
            one_time_sequence(path)
        };
        match (spent, next) {
            (Err(err), _) => {
                self.log().note(at, &format!("{name}: cannot mark the used one-time sequence in {}: {err}; the door does not open and is disabled", path.display()));
                self.engine.set_sequence(door, Sequence::default());
                return false;
            }
            // A bad next line (a typo, an ICMP knock) disables the door and says why.
            (Ok(()), Err(err)) => {
                self.log().note(
                    at,
                    &format!("{name}: cannot read the next one-time sequence: {err}; the door is disabled"),
                );
                self.engine.set_sequence(door, Sequence::default());
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
                    self.engine.set_sequence(door, next);
                }
            }
        }
        true
    }

    /// Queues `run`'s address-list update on the door's routers and its
    /// nftables sets, if it has any (in a dry run: logs what would be
    /// done). Never waits.
    fn update_lists(&self, at: Duration, run: &Run) {
        let change = match run.kind {
            RunKind::Start => Change::Grant,
            RunKind::Stop => Change::Remove,
        };
        self.routers.submit(&run.door, run.src, change, at);
        self.nftables.submit(&run.door, run.src, run.kind, at);
    }

    /// Logs a command about to run (or, in a dry run, what would run).
    fn announce(&self, at: Duration, run: &Run) {
        let name = &run.door;
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
                run.kind.as_str(),
                describe(action)
            ),
        );
    }

    /// The host gained or lost an address: knocks to it count from now on,
    /// or no longer.
    fn address_changed(&mut self, change: addresses::Change) {
        let line = match &change {
            addresses::Change::Added(a) => format!("address {a} added: knocks to it count"),
            addresses::Change::Removed(a) => {
                format!("address {a} removed: knocks to it no longer count")
            }
            addresses::Change::Everything(_) => {
                "address events were lost: read them all again".into()
            }
        };
        let own = self.own.get_or_insert_with(Default::default);
        own.apply(change);
        let line = format!("{line} (own addresses: {})", own.describe());
        self.log().note(now(), &line);
    }

    /// Runs a door's setup or teardown command (`what`) to its end.
    async fn run_now(&self, door: &str, action: &Action, what: &str) {
        self.log().note(
            now(),
            &format!("{door}: running {what} command: {}", describe(action)),
        );
        if !self.dry_run {
            execute(
                self.log.clone(),
                door.to_string(),
                None,
                format!("{what} command"),
                action.clone(),
                self.config().max_command_time,
            )
            .await;
        }
    }
}

/// The log, even if a thread panicked while holding it: losing every later
/// line would be worse than one line left unfinished.
fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long an exit waits for pending router updates: their retry bound and
/// a request's time limit.
fn router_grace(routers: &routers::Routers) -> Duration {
    routers.longest_retry() + crate::routeros::rest::REQUEST_LIMIT
}

/// A command as it would be typed: argv words quoted where needed.
pub(crate) fn describe(action: &Action) -> String {
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

/// Runs `action` (door `door`'s `what`, for knocker `src` if any) and logs
/// how it ended; never fails.
async fn execute(
    log: Arc<Mutex<Log>>,
    door: String,
    src: Option<std::net::IpAddr>,
    what: String,
    action: Action,
    limit: Duration,
) {
    let who = commands::For { door: &door, src };
    let finished = commands::execute(&action, who, limit).await;
    let mut log = lock(&log);
    if finished.success {
        log.debug(
            now(),
            &format!("{door}: {what} finished ({})", finished.status),
        );
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
fn replay(server: &mut Server, path: &Path) -> anyhow::Result<u64> {
    // One worker thread: router updates proceed while packets are read.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    {
        let _runtime = runtime.enter();
        server.routers.start();
    }
    server.nftables.start();
    let commands = &mut Commands::Block(&runtime, None);
    let mut last = Duration::ZERO;
    let packets = read_ahead(path, |seen| {
        last = seen.at;
        // Changes nothing; what falls due meanwhile is handled, at its own
        // time, before the next packet that matters (or at the end).
        if server.engine.ignores(&seen.hit) {
            return;
        }
        catch_up(server, seen.at, commands);
        server.packet(seen.at, &seen.hit, commands);
    })?;
    // Timeouts and stop commands that fell due after the last knock, as a
    // live server would have seen them; then what is still open closes.
    catch_up(server, last, commands);
    let mut firings = std::mem::take(&mut server.firings);
    server.engine.close_all(&mut firings);
    server.dispatch_all(last, firings, commands);
    // The router updates still queued are sent (or given up) before the replay ends.
    let grace = router_grace(&server.routers);
    runtime.block_on(server.routers.finish(grace));
    server.nftables.finish();
    Ok(packets)
}

/// Everything that falls due up to `until`, each at its own moment:
/// attempts timing out, stop commands due.
fn catch_up(server: &mut Server, until: Duration, commands: &mut Commands) {
    while let Some(deadline) = server.engine.next_deadline().filter(|d| *d <= until) {
        server.tick(deadline, commands);
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
pub(crate) enum Ending {
    /// [`Request::Stop`] (SIGTERM, SIGINT): a clean exit.
    Asked,
    /// A capture failed for good (the interface went away and did not come
    /// back in time), said in one sentence: exit non-zero for systemd to restart.
    CaptureFailed(String),
}

/// Serves live until a [`Request::Stop`] arrives (or `requests` closes),
/// then runs every pending stop command and the doors' teardown.
pub(crate) async fn serve(
    started: Started,
    mut requests: tokio::sync::mpsc::Receiver<Request>,
) -> anyhow::Result<Ending> {
    let Started {
        mut server,
        captures,
        config_path,
        addresses: mut following,
    } = started;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Seen>(65_536);
    let (ended_tx, mut ended_rx) = tokio::sync::mpsc::unbounded_channel::<capture::Ended>();
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
            move |ended| {
                let _ = ended_tx.send(ended);
            },
        ));
    }
    drop(tx);
    drop(ended_tx);
    drop(notice_tx);
    // Start and stop commands: queued, reaped as they finish, awaited at exit.
    let mut tasks = Runner::new(server.config().max_commands);
    server.routers.start();
    server.nftables.start();

    for door in server.config().doors.clone() {
        if let Some(setup) = &door.setup {
            server.run_now(&door.door.name, setup, "setup").await;
        }
    }
    let listening = |server: &Server| {
        let doors = server.config().doors.len();
        format!("listening: {doors} doors, {} readers", readers.len())
    };
    server.log().note(now(), &listening(&server));
    // systemd (`Type=notify`) starts what comes after knockd only now.
    let systemd = notify::Notifier::from_env().unwrap_or_else(|err| {
        server.log().note(now(), &err.to_string());
        None
    });
    tell_systemd(&server, &systemd, notify::State::Ready(&listening(&server)));

    // With -v, the capture counters every minute (the first tick is at once:
    // skipped): the readers are asked to refresh them, and they are logged a
    // moment later, at `drops_due`.
    let mut drops_timer = tokio::time::interval(DROPS_LOG_EVERY);
    drops_timer.tick().await;
    let verbose = server.log().verbose;
    let mut drops_due: Option<tokio::time::Instant> = None;

    // Packets taken from the channel at once (see `Server::packets`).
    let mut batch: Vec<Seen> = Vec::with_capacity(BATCH);
    let ending = loop {
        let due = drops_due;
        let wait = server
            .engine
            .next_deadline()
            .map(|d| d.saturating_sub(now()))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            seen = rx.recv() => match seen {
                Some(seen) => {
                    // With what else is already there: one state write for the lot.
                    batch.push(seen);
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(seen) => batch.push(seen),
                            Err(_) => break,
                        }
                    }
                    server.packets(&mut batch, &mut Commands::Spawn(&mut tasks));
                }
                None => break Ending::CaptureFailed("every capture ended".into()),
            },
            () = tokio::time::sleep(wait) => server.tick(now(), &mut Commands::Spawn(&mut tasks)),
            () = tasks.reap(), if tasks.is_busy() => {}
            Some(change) = following.changes.recv() => server.address_changed(change),
            Some(news) = notice_rx.recv() => {
                // Said on stderr too when the log goes elsewhere: the
                // journal then shows it even if the log file is what fails.
                if server.config().log_file.is_some() || server.config().use_syslog {
                    eprintln!("knockr knockd: {news}");
                }
                server.log().note(now(), &news);
            }
            Some(ended) = ended_rx.recv() => {
                let why = ended.why();
                let drops = ended.drops;
                server.log().note(now(), &format!("{why} (kernel dropped {} of {} packets)", drops.dropped, drops.received));
                break Ending::CaptureFailed(why);
            }
            request = requests.recv() => match request {
                Some(Request::ReopenLog) => server.reopen_log(),
                Some(Request::Reload) => {
                    tell_systemd(&server, &systemd, notify::State::Reloading);
                    server.reopen_log();
                    server.reload(&config_path, &mut Commands::Spawn(&mut tasks));
                    let filter = filter_for(server.config());
                    if let Some(notice) = filter.notice() {
                        server.log().note(now(), &notice);
                    }
                    control.set_filter(filter.expression);
                    tell_systemd(&server, &systemd, notify::State::Ready(&listening(&server)));
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

    tell_systemd(&server, &systemd, notify::State::Stopping);
    // Readers blocked on a full channel see it closed; the others are woken.
    drop(rx);
    control.stop();
    for reader in readers {
        let _ = reader.join();
    }
    log_drops(&server, &control);
    following
        .stop
        .store(true, std::sync::atomic::Ordering::Relaxed);
    // It looks at `stop` at least twice a second.
    let _ = following.thread.join();
    server.close_all(now(), &mut Commands::Spawn(&mut tasks));
    tasks.finish().await;
    let grace = router_grace(&server.routers);
    server.routers.finish(grace).await;
    // Before teardown, which may delete the sets.
    server.nftables.finish();
    for door in server.config().doors.clone() {
        if let Some(teardown) = &door.teardown {
            server.run_now(&door.door.name, teardown, "teardown").await;
        }
    }
    Ok(ending)
}

/// Tells systemd `state` when it asked to be told (`$NOTIFY_SOCKET`); a
/// failure is logged and serving goes on.
fn tell_systemd(server: &Server, systemd: &Option<notify::Notifier>, state: notify::State<'_>) {
    if let Some(Err(err)) = systemd.as_ref().map(|systemd| systemd.tell(state)) {
        server.log().note(now(), &err.to_string());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Capturing on `lo` needs root (CAP_NET_RAW): under CI=true the test
    /// must run; elsewhere without root it skips, saying why.
    fn can_capture() -> bool {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return true;
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "live test cannot run under CI: it needs root to capture on lo"
        );
        eprintln!("skipping live test: it needs root to capture on lo");
        false
    }

    /// What `path` holds once it contains `needle` (waiting up to 10 s).
    fn wait_for(path: &Path, needle: &str) -> String {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            assert!(
                std::time::Instant::now() < until,
                "no {needle:?} in {}:\n{text}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A door knocked with UDP datagrams to 127.0.0.1, recording its
    /// commands in `dir/ran`; `stop` names its stop command.
    fn door(dir: &Path, name: &str, ports: [u16; 2], stop: &str) -> String {
        let ran = dir.join("ran").display().to_string();
        format!(
            "[[door]]\nname = \"{name}\"\nsequence = [\"{}:udp\", \"{}:udp\"]\n\
             start = [\"/bin/sh\", \"-c\", \"echo start {name} %IP% >> {ran}\"]\n\
             stop = [\"/bin/sh\", \"-c\", \"echo {stop} %IP% >> {ran}\"]\ncmd_timeout = \"60s\"\n",
            ports[0], ports[1]
        )
    }

    /// serve driven through its request channel, as the binary's signal
    /// handlers drive it: a reload that drops a door closes that door's open
    /// knocker at once, under its own name and with its own stop command (a
    /// reload once announced it against the new file's doors by index), and
    /// a stop runs what is still pending.
    #[test]
    fn serve_reloads_and_stops_on_request_running_the_pending_stop_commands() {
        if !can_capture() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (kept, removed) = ([47301, 47302], [47311, 47312]);
        let log = dir.path().join("knockd.log");
        let options = format!("[knockd]\nlog_file = \"{}\"\n", log.display());
        let path = dir.path().join("knockd.toml");
        let first = format!(
            "{options}{}{}",
            door(dir.path(), "kept", kept, "stop kept"),
            door(dir.path(), "removed", removed, "stop removed")
        );
        std::fs::write(&path, first).unwrap();

        let (requests, received) = tokio::sync::mpsc::channel(8);
        let serving = {
            let path = path.clone();
            std::thread::spawn(move || {
                let config = config::load(&path).unwrap();
                let options = Options {
                    interfaces: vec!["lo".into()],
                    state_file: Some(path.with_file_name("state").join("knockd.state")),
                    ..Options::default()
                };
                let started = start(config, &path, &options).unwrap();
                let runtime = tokio::runtime::Runtime::new().unwrap();
                runtime.block_on(serve(started, received)).unwrap()
            })
        };
        wait_for(&log, "listening: 2 doors, 1 readers");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for port in kept.into_iter().chain(removed) {
            socket.send_to(&[0], ("127.0.0.1", port)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let ran = dir.path().join("ran");
        wait_for(&ran, "start kept 127.0.0.1");
        wait_for(&ran, "start removed 127.0.0.1");

        let second = format!(
            "{options}{}",
            door(dir.path(), "kept", kept, "stop-v2 kept")
        );
        std::fs::write(&path, second).unwrap();
        requests.blocking_send(Request::Reload).unwrap();
        wait_for(&log, "reloaded");
        wait_for(&ran, "stop removed 127.0.0.1");
        let text = wait_for(&log, "127.0.0.1: removed: closing");
        assert!(
            text.contains(
                "removed: running stop command: /bin/sh -c 'echo stop removed 127.0.0.1 >> "
            ),
            "{text}"
        );

        requests.blocking_send(Request::Stop).unwrap();
        assert_eq!(serving.join().unwrap(), Ending::Asked);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("stopping: running 1 pending stop command(s)"),
            "{text}"
        );
        assert!(text.contains("127.0.0.1: kept: closing"), "{text}");
        let mut lines: Vec<String> = std::fs::read_to_string(&ran)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "start kept 127.0.0.1",
                "start removed 127.0.0.1",
                "stop removed 127.0.0.1",
                "stop-v2 kept 127.0.0.1"
            ],
            "the kept door's stop is the reloaded one's"
        );
    }
}
