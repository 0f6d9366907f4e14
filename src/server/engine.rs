//! Pure: the knock server as a state machine, in the shape of quinn-proto's
//! sans-IO connections. [`Engine::packet`] and [`Engine::tick`] take the time
//! as an argument and append what it caused as [`Firing`]s; the caller sleeps
//! until [`Engine::next_deadline`]. The live loop and the replay of a capture
//! drive the same engine and dispatch its firings with the same function
//! (`Server::dispatch` in the parent module).
//!
//! No logging, no files, no sockets, no clock, no tokio: a one-time door's
//! file is read and rewritten by the dispatcher, which then hands the next
//! sequence back ([`Engine::set_sequence`]). So every rule here is tested
//! with made-up times and packets.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod otp;

use super::commands::{Doorman, Run};
use super::state::{OpenKnocker, State};
use crate::config::server::ServerConfig;
use crate::core::matcher::{DoorId, Event, EventKind, Matcher, Sequence};
use crate::core::packet::Hit;
use otp::{SlotId, Slots};

/// What a call to the engine caused, for the dispatcher to log and act on.
/// Within one call, what the matcher saw comes first and the commands it
/// causes last, as knockd logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Firing {
    /// A source's attempt at a door moved: a stage, the opening, a reset, a
    /// timeout, an eviction (only openings with [`Knocks::Openings`]).
    Knock {
        /// The configuration door's name.
        door: Arc<str>,
        /// For a time-based door, the client whose sequence it is (if named).
        client: Option<Arc<str>>,
        /// The knocking source.
        src: IpAddr,
        /// What happened.
        kind: EventKind,
    },
    /// A time-based sequence that already opened its door in its step,
    /// knocked again (from any address): refused, nothing runs.
    Replay {
        /// The configuration door's name.
        door: Arc<str>,
        /// The client whose sequence it is, if named.
        client: Option<Arc<str>>,
        /// Who knocked it this time.
        src: IpAddr,
    },
    /// The table of sources was full and attempts were dropped; `dropped` so
    /// far. Fired when that count reaches a power of two, so a flood is
    /// reported a few times, not once per packet.
    TableFull {
        /// Attempts dropped since the start.
        dropped: u64,
    },
    /// A one-time door opened: its line must be marked used before its start
    /// command runs (then a crash can never offer it again), and the door
    /// moved to the next line with [`Engine::set_sequence`]. Comes before the
    /// door's [`Firing::Run`].
    OneTimeUsed {
        /// The matcher door to give the next line to.
        door: DoorId,
        /// The configuration door's name.
        name: Arc<str>,
        /// The door's sequences file.
        path: PathBuf,
    },
    /// A door opened (start) or closed (stop) for a knocker.
    Run(Run),
}

/// Which matcher events become [`Firing::Knock`]s: what the log shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Knocks {
    /// Openings only, as knockd logs without `-v`: a flood of first knocks
    /// then costs no firing per packet.
    Openings,
    /// Every stage, reset, timeout and eviction too (`-v`, `--json`).
    Every,
}

/// A door of the configuration in force, by its place in its `doors`. Valid
/// until the next reload: nothing that outlives one (open knockers, runs)
/// holds it; they name the door instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConfigDoor(pub(super) usize);

/// What a matcher door stands for.
#[derive(Debug, Clone, Copy)]
enum Stands {
    /// A fixed or one-time door of the configuration (for a time-based door,
    /// its own matcher door, which has no sequence).
    Door(ConfigDoor),
    /// One client's sequence for one step of a time-based door.
    Slot(SlotId),
}

/// The matcher doors of a configuration and what each stands for.
struct Layout {
    /// The per-source state machine over all of them.
    matcher: Matcher,
    /// What each matcher door stands for, by [`DoorId::index`].
    stands: Vec<Stands>,
    /// Each slot's matcher door, by [`SlotId::index`].
    slot_doors: Vec<DoorId>,
    /// The time-based doors' slots: their steps and replay cache.
    slots: Slots,
}

impl Layout {
    /// The configuration's doors first, then the slot doors of its
    /// time-based doors. The one place that decides the order; everything
    /// else asks `stands` or `slot_doors`.
    fn new(config: &ServerConfig) -> Layout {
        let slots = Slots::new(config);
        let mut doors = Vec::new();
        let mut stands = Vec::new();
        for (index, entry) in config.doors.iter().enumerate() {
            doors.push(entry.door.clone());
            stands.push(Stands::Door(ConfigDoor(index)));
        }
        for (slot, door) in slots.matcher_doors() {
            doors.push(door);
            stands.push(Stands::Slot(slot));
        }
        let matcher = Matcher::new(doors, config.max_sources);
        // The matcher numbers its doors in the order it was given them.
        let slot_doors = matcher
            .ids()
            .zip(&stands)
            .filter_map(|(id, stands)| matches!(stands, Stands::Slot(_)).then_some(id))
            .collect();
        Layout {
            matcher,
            stands,
            slot_doors,
            slots,
        }
    }
}

/// The server's state: the configuration in force, the knocks in progress,
/// the open knockers and the time-based doors' slots.
pub(crate) struct Engine {
    /// The configuration in force; replaced by [`Engine::reload`].
    config: ServerConfig,
    /// Which knock events to fire; set once.
    knocks: Knocks,
    /// The configuration's doors' names, by [`ConfigDoor`], shared by the
    /// firings that name them (no allocation per event).
    names: Vec<Arc<str>>,
    /// The matcher, what its doors stand for, and the slots.
    layout: Layout,
    /// Open knockers and their due stop commands, by door name.
    doorman: Doorman,
    /// Reused for each call's matcher events: no allocation per packet.
    events: Vec<Event>,
    /// Reused for the slots that moved to a new step.
    moved: Vec<(SlotId, Sequence)>,
    /// Reused for the same moves as matcher doors.
    changes: Vec<(DoorId, Sequence)>,
    /// The current call's runs, appended after what the matcher saw.
    runs: Vec<Firing>,
}

impl Engine {
    /// The engine for `config`, firing `knocks`. A one-time door matches the
    /// sequence its `door.sequence` holds: the caller puts the file's current
    /// line there (the engine reads no files).
    pub(crate) fn new(config: ServerConfig, knocks: Knocks) -> Engine {
        Engine {
            names: names(&config),
            layout: Layout::new(&config),
            config,
            knocks,
            doorman: Doorman::default(),
            events: Vec::new(),
            moved: Vec::new(),
            changes: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Whether [`Engine::packet`] would do nothing with `hit` but let time
    /// pass, whatever the state: a replay skips such packets (most of a
    /// flood) as long as it still calls [`Engine::tick`] at each deadline.
    /// Never with time-based doors: their watched ports move with time.
    pub(crate) fn ignores(&self, hit: &Hit) -> bool {
        self.layout.slots.is_empty() && self.layout.matcher.ignores(hit)
    }

    /// One packet, seen at `now` (since the Unix epoch): appends what it
    /// caused, and the stop commands due by then, to `out`.
    pub(crate) fn packet(&mut self, now: Duration, hit: &Hit, out: &mut Vec<Firing>) {
        self.roll(now);
        self.due(now);
        let mut events = std::mem::take(&mut self.events);
        self.layout.matcher.hit(hit, now, &mut events);
        self.events(now, &mut events, out);
        self.events = events;
        out.append(&mut self.runs);
    }

    /// Time passed with no packet: the attempts that timed out and the stop
    /// commands due by `now`.
    pub(crate) fn tick(&mut self, now: Duration, out: &mut Vec<Firing>) {
        self.roll(now);
        let mut events = std::mem::take(&mut self.events);
        self.layout.matcher.expire(now, &mut events);
        self.events(now, &mut events, out);
        self.events = events;
        self.due(now);
        out.append(&mut self.runs);
    }

    /// The next moment [`Engine::tick`] has work to do; it may be early (an
    /// attempt may have ended meanwhile), never late.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        let expiry = self.layout.matcher.next_expiry();
        match (expiry, self.doorman.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A one-time door (named by its [`Firing::OneTimeUsed`]) moves to
    /// `sequence`, its file's next line; empty disables it. Attempts on the
    /// old line are dropped.
    pub(crate) fn set_sequence(&mut self, door: DoorId, sequence: Sequence) {
        self.layout.matcher.set_sequence(door, sequence);
    }

    /// Forgets knocker `src` at door `door`, as if it had never opened: its
    /// start was dropped (the command queue was full) or skipped (its
    /// one-time line could not be marked), so no stop is owed.
    pub(crate) fn forget(&mut self, door: &str, src: IpAddr) {
        self.doorman.forget(door, src);
    }

    /// Replaces the configuration by `config` (its one-time doors holding
    /// their current line, as for [`Engine::new`]). Knocks in progress
    /// restart; open knockers keep their due stop at doors that remain (by
    /// name), and those at doors that are gone are closed now: their stop
    /// runs, with the old commands, are appended to `out`. Time-based doors
    /// that remain keep their replay cache.
    pub(crate) fn reload(&mut self, config: ServerConfig, out: &mut Vec<Firing>) {
        let closing = self.doorman.reload(&self.config.doors, &config.doors);
        out.extend(closing.into_iter().map(Firing::Run));
        let mut layout = Layout::new(&config);
        layout.slots.carry_over(&self.layout.slots);
        self.layout = layout;
        self.names = names(&config);
        self.config = config;
    }

    /// Every pending stop command, for a clean exit (appended to `out`).
    pub(crate) fn close_all(&mut self, out: &mut Vec<Firing>) {
        let closing = self.doorman.close_all(&self.config.doors);
        out.extend(closing.into_iter().map(Firing::Run));
    }

    /// What must survive a crash, for the state file: the open knockers and
    /// the time-based replay cache.
    pub(crate) fn export(&self) -> State {
        let open = self.doorman.knockers().map(|(door, src, due)| OpenKnocker {
            door: door.to_string(),
            src,
            due,
        });
        State {
            open: open.collect(),
            used: self.layout.slots.used_sequences().collect(),
        }
    }

    /// Takes back what a state file kept (see [`Engine::export`]) at `now`:
    /// knockers at doors of the configuration close at their due time, those
    /// overdue at the next [`Engine::tick`]; used time-based sequences are
    /// refused again. What no longer fits the configuration is left out, and
    /// said in the returned [`Restored`].
    pub(crate) fn restore(&mut self, mut state: State, now: Duration) -> Restored {
        state.prune(now);
        let mut restored = Restored::default();
        for knocker in state.open {
            let door = self
                .config
                .doors
                .iter()
                .find(|d| d.door.name == knocker.door);
            match door {
                Some(door) => {
                    self.doorman.restore(door, knocker.src, knocker.due);
                    if knocker.due <= now {
                        restored.overdue.push(knocker);
                    } else {
                        restored.scheduled += 1;
                    }
                }
                None => restored.gone.push(knocker),
            }
        }
        restored.used = self.layout.slots.restore(&state.used);
        restored.forgotten = state.used.len() - restored.used;
        restored
    }

    /// Whether what [`Engine::export`] returns changed since the last call:
    /// a knocker opened, moved its stop or closed, or a time-based sequence
    /// was used. The caller then rewrites the state file.
    pub(crate) fn take_changed(&mut self) -> bool {
        // Both asked: each forgets what it said.
        let doorman = self.doorman.take_changed();
        self.layout.slots.take_changed() || doorman
    }

    /// Time-based doors' slots whose step changed by `now` get their new sequence.
    fn roll(&mut self, now: Duration) {
        let layout = &mut self.layout;
        layout.slots.advance(now, &mut self.moved);
        let slot_doors = &layout.slot_doors;
        let moved = self.moved.drain(..);
        self.changes
            .extend(moved.map(|(slot, sequence)| (slot_doors[slot.index()], sequence)));
        layout.matcher.set_sequences(&mut self.changes);
    }

    /// The stop commands due by `now`, into this call's runs.
    fn due(&mut self, now: Duration) {
        let due = self.doorman.due(&self.config.doors, now);
        self.runs.extend(due.into_iter().map(Firing::Run));
    }

    /// Turns matcher `events` into firings (appended to `out`, their runs to
    /// `self.runs`), leaving the vector empty for reuse.
    fn events(&mut self, now: Duration, events: &mut Vec<Event>, out: &mut Vec<Firing>) {
        for event in events.drain(..) {
            let (door, client, opening) = match self.layout.stands[event.door.index()] {
                Stands::Door(door) => (door, None, otp::Opening::Fresh),
                // A slot stands for its door and one client; its sequence
                // opens once per step.
                Stands::Slot(slot) => {
                    let opening = match event.kind {
                        EventKind::Open => self.layout.slots.open(slot),
                        _ => otp::Opening::Fresh,
                    };
                    let (door, client) = self.layout.slots.who(slot);
                    (door, client.cloned(), opening)
                }
            };
            let name = &self.names[door.0];
            if opening == otp::Opening::Replay {
                out.push(Firing::Replay {
                    door: name.clone(),
                    client,
                    src: event.src,
                });
                continue;
            }
            if self.knocks == Knocks::Every || event.kind == EventKind::Open {
                out.push(Firing::Knock {
                    door: name.clone(),
                    client,
                    src: event.src,
                    kind: event.kind,
                });
            }
            match event.kind {
                EventKind::Evicted => {
                    let dropped = self.layout.matcher.evictions();
                    if dropped.is_power_of_two() {
                        out.push(Firing::TableFull { dropped });
                    }
                }
                EventKind::Open => {
                    let config = &self.config.doors[door.0];
                    if let Some(path) = &config.one_time_sequences {
                        out.push(Firing::OneTimeUsed {
                            door: event.door,
                            name: name.clone(),
                            path: path.clone(),
                        });
                    }
                    let run = self.doorman.opened(config, event.src, now);
                    self.runs.extend(run.map(Firing::Run));
                }
                _ => {}
            }
        }
    }
}

/// What [`Engine::restore`] made of a state file, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Restored {
    /// Knockers whose stop was due before `now`: it runs at the next tick.
    pub(crate) overdue: Vec<OpenKnocker>,
    /// Knockers whose stop is scheduled at its due time.
    pub(crate) scheduled: usize,
    /// Knockers of doors the configuration no longer has: dropped, since
    /// their stop command is not known.
    pub(crate) gone: Vec<OpenKnocker>,
    /// Used time-based sequences refused again.
    pub(crate) used: usize,
    /// Used sequences of doors or clients that are gone or changed their step.
    pub(crate) forgotten: usize,
}

/// `config`'s door names, by [`ConfigDoor`].
fn names(config: &ServerConfig) -> Vec<Arc<str>> {
    config
        .doors
        .iter()
        .map(|d| Arc::from(d.door.name.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::core::knock::{Knock, Proto, Transport};

    /// A capture's time 0 (Unix seconds), a multiple of the 30 s OTP step.
    const T0: Duration = Duration::from_secs(1_795_000_020);

    fn at(ms: u64) -> Duration {
        T0 + Duration::from_millis(ms)
    }

    fn config(text: &str) -> ServerConfig {
        crate::config::server::parse(std::path::Path::new("knockd.toml"), text).unwrap()
    }

    /// A packet from `src` to `knock` ("7000", "8000:udp"); TCP ones are SYNs.
    fn hit(src: &str, knock: &str) -> Hit {
        let knock = crate::core::knock::parse_knock(knock, Proto::Tcp).unwrap();
        hit_of(src, knock)
    }

    fn hit_of(src: &str, knock: Knock) -> Hit {
        let transport = knock.transport().unwrap();
        Hit {
            src: src.parse().unwrap(),
            dst: "192.0.2.1".parse().unwrap(),
            transport,
            port: knock.port,
            flags: match transport {
                Transport::Tcp => crate::core::packet::tcp_flags::SYN,
                Transport::Udp => 0,
            },
            to_host: true,
        }
    }

    /// A firing in a few words, for assertions that read like the log.
    fn show(firing: &Firing) -> String {
        match firing {
            Firing::Knock {
                door,
                client,
                src,
                kind,
            } => match client {
                Some(client) => format!("{door}/{client} {src} {kind:?}"),
                None => format!("{door} {src} {kind:?}"),
            },
            Firing::Replay { door, client, src } => {
                format!("replay {door}/{} {src}", client.as_deref().unwrap_or("-"))
            }
            Firing::TableFull { dropped } => format!("table full {dropped}"),
            Firing::OneTimeUsed { name, path, .. } => {
                format!("one-time {name} {}", path.display())
            }
            Firing::Run(run) => {
                let action = match &run.action {
                    Some(crate::config::server::Action::Argv(argv)) => argv.join(" "),
                    Some(crate::config::server::Action::Shell(line)) => line.clone(),
                    None => "-".into(),
                };
                format!("{} {} {}: {action}", run.kind.as_str(), run.door, run.src)
            }
        }
    }

    fn packet(engine: &mut Engine, now: Duration, hit: &Hit) -> Vec<String> {
        let mut out = Vec::new();
        engine.packet(now, hit, &mut out);
        out.iter().map(show).collect()
    }

    fn tick(engine: &mut Engine, now: Duration) -> Vec<String> {
        let mut out = Vec::new();
        engine.tick(now, &mut out);
        out.iter().map(show).collect()
    }

    const NANO: Duration = Duration::from_nanos(1);

    fn every(config: ServerConfig) -> Engine {
        Engine::new(config, Knocks::Every)
    }

    #[test]
    fn each_door_that_opens_fires_its_own_start_after_the_knocks_it_saw() {
        let mut engine = every(config(
            r#"
[[door]]
name = "a"
sequence = ["7000:udp"]
start = ["a-on", "%IP%"]
[[door]]
name = "b"
sequence = ["7000:udp"]
start = ["b-on", "%IP%"]
stop = ["b-off", "%IP%"]
[[door]]
name = "c"
sequence = ["7000:udp", "8000:udp"]
start = ["c-on"]
"#,
        ));
        assert_eq!(
            packet(&mut engine, at(0), &hit("198.51.100.7", "7000:udp")),
            [
                "a 198.51.100.7 Stage(1)",
                "a 198.51.100.7 Open",
                "b 198.51.100.7 Stage(1)",
                "b 198.51.100.7 Open",
                "c 198.51.100.7 Stage(1)",
                "start a 198.51.100.7: a-on 198.51.100.7",
                "start b 198.51.100.7: b-on 198.51.100.7",
            ]
        );
        assert_eq!(
            packet(&mut engine, at(1), &hit("198.51.100.7", "8000:udp")),
            [
                "c 198.51.100.7 Stage(2)",
                "c 198.51.100.7 Open",
                "start c 198.51.100.7: c-on"
            ]
        );
        assert!(
            packet(&mut engine, at(2), &hit("198.51.100.7", "9000:udp")).is_empty(),
            "a port no door watches fires nothing"
        );
    }

    #[test]
    fn with_openings_only_the_knocks_before_the_last_fire_nothing() {
        let mut engine = Engine::new(
            config("[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"8000\"]\nstart = [\"on\"]\n"),
            Knocks::Openings,
        );
        assert!(packet(&mut engine, at(0), &hit("10.0.0.1", "7000")).is_empty());
        assert!(packet(&mut engine, at(1), &hit("10.0.0.2", "7000")).is_empty());
        assert!(
            packet(&mut engine, at(2), &hit("10.0.0.2", "7000")).is_empty(),
            "a reset"
        );
        assert_eq!(
            packet(&mut engine, at(3), &hit("10.0.0.1", "8000")),
            ["ssh 10.0.0.1 Open", "start ssh 10.0.0.1: on"]
        );
    }

    #[test]
    fn timeouts_and_stops_fire_at_their_exact_deadline_not_a_nanosecond_before() {
        let mut engine = every(config(
            r#"
[[door]]
name = "ssh"
sequence = ["7000", "8000"]
seq_timeout = "5s"
stop = ["off", "%IP%"]
cmd_timeout = "10s"
"#,
        ));
        packet(&mut engine, at(0), &hit("10.0.0.1", "7000"));
        packet(&mut engine, at(0), &hit("10.0.0.2", "7000"));
        let opened = packet(&mut engine, at(1_000), &hit("10.0.0.2", "8000"));
        assert_eq!(opened.last().unwrap(), "ssh 10.0.0.2 Open");
        assert_eq!(engine.next_deadline(), Some(at(5_000)));
        assert!(tick(&mut engine, at(5_000) - NANO).is_empty());
        assert_eq!(tick(&mut engine, at(5_000)), ["ssh 10.0.0.1 Timeout"]);
        assert_eq!(engine.next_deadline(), Some(at(11_000)));
        assert!(tick(&mut engine, at(11_000) - NANO).is_empty());
        assert_eq!(
            tick(&mut engine, at(11_000)),
            ["stop ssh 10.0.0.2: off 10.0.0.2"]
        );
        assert_eq!(engine.next_deadline(), None);
        // A packet past a deadline the timer missed still sees it first.
        packet(&mut engine, at(20_000), &hit("10.0.0.3", "7000"));
        assert_eq!(
            packet(&mut engine, at(25_000), &hit("10.0.0.3", "8000")),
            ["ssh 10.0.0.3 Timeout"]
        );
    }

    #[test]
    fn a_reload_keeps_pending_stops_and_closes_the_knockers_of_removed_doors_under_their_name() {
        let ssh = "[[door]]\nname = \"ssh\"\nsequence = [\"7000\"]\nstop = [\"off\", \"%IP%\"]\ncmd_timeout = \"10s\"\n";
        let old = format!(
            "[[door]]\nname = \"gone\"\nsequence = [\"6000\"]\nstop = [\"gone-off\", \"%IP%\"]\ncmd_timeout = \"30s\"\n{ssh}\
             [[door]]\nname = \"two\"\nsequence = [\"5000\", \"5001\"]\n"
        );
        let mut engine = every(config(&old));
        packet(&mut engine, at(0), &hit("10.0.0.7", "6000"));
        packet(&mut engine, at(1_000), &hit("10.0.0.8", "7000"));
        packet(&mut engine, at(1_000), &hit("10.0.0.9", "5000"));
        let mut out = Vec::new();
        engine.reload(config(&ssh.replace("\"off\"", "\"off-v2\"")), &mut out);
        let out: Vec<String> = out.iter().map(show).collect();
        assert_eq!(out, ["stop gone 10.0.0.7: gone-off 10.0.0.7"]);
        assert_eq!(engine.config().doors.len(), 1);
        // The knocker at "ssh" still closes at its time, with the new command.
        assert_eq!(engine.next_deadline(), Some(at(11_000)));
        assert_eq!(
            tick(&mut engine, at(11_000)),
            ["stop ssh 10.0.0.8: off-v2 10.0.0.8"]
        );
        // Knocks in progress restart: the removed door's ports are not watched.
        assert!(packet(&mut engine, at(12_000), &hit("10.0.0.9", "5001")).is_empty());
    }

    /// A time-based door with one client, "alice", whose secret is in `dir`.
    fn team(dir: &std::path::Path, window: u64) -> ServerConfig {
        let secret = dir.join("alice.secret");
        std::fs::write(&secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        config(&format!(
            r#"
[[door]]
name = "team"
otp_length = 3
otp_ports = "20000-29999"
otp_protocols = ["udp"]
otp_window = {window}
start = ["on", "%IP%"]
[[door.client]]
name = "alice"
secret_file = "{}"
"#,
            secret.display()
        ))
    }

    /// Alice's sequence of `step` at door "team" of `config`.
    fn sequence(config: &ServerConfig, step: u64) -> Vec<Knock> {
        let otp = config.doors[0].otp.as_ref().unwrap();
        otp.spec
            .sequence(otp.clients[0].secret.bytes(), "team", step)
    }

    /// Knocks `knocks` from `src`, all at `now`; the firings of the last.
    fn knock(engine: &mut Engine, now: Duration, src: &str, knocks: &[Knock]) -> Vec<String> {
        let mut last = Vec::new();
        for &knock in knocks {
            last = packet(engine, now, &hit_of(src, knock));
        }
        last
    }

    #[test]
    fn time_based_slots_move_to_the_next_step_exactly_at_its_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let config = team(dir.path(), 0);
        let step = T0.as_secs() / 30;
        let (this, next) = (sequence(&config, step), sequence(&config, step + 1));
        assert_ne!(
            this[0], next[0],
            "the test needs two steps that start apart"
        );
        let boundary = Duration::from_secs((step + 1) * 30);
        let mut engine = Engine::new(config, Knocks::Every);
        assert_eq!(
            knock(&mut engine, boundary - NANO, "10.0.0.1", &this),
            [
                "team/alice 10.0.0.1 Stage(3)",
                "team/alice 10.0.0.1 Open",
                "start team 10.0.0.1: on 10.0.0.1"
            ]
        );
        assert!(
            knock(&mut engine, boundary - NANO, "10.0.0.2", &next).is_empty(),
            "the next step's sequence is not valid yet (window 0)"
        );
        assert!(
            knock(&mut engine, boundary, "10.0.0.3", &this[..1]).is_empty(),
            "at the boundary the old step's sequence is no longer watched"
        );
        assert_eq!(
            knock(&mut engine, boundary, "10.0.0.4", &next)
                .last()
                .unwrap(),
            "start team 10.0.0.4: on 10.0.0.4"
        );
    }

    #[test]
    fn a_time_based_sequence_opens_once_in_its_step_and_a_replay_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = team(dir.path(), 1);
        let this = sequence(&config, T0.as_secs() / 30);
        let mut engine = Engine::new(config, Knocks::Every);
        let first = knock(&mut engine, at(0), "10.0.0.1", &this);
        assert_eq!(first.last().unwrap(), "start team 10.0.0.1: on 10.0.0.1");
        assert_eq!(
            knock(&mut engine, at(1_000), "10.0.0.2", &this),
            ["team/alice 10.0.0.2 Stage(3)", "replay team/alice 10.0.0.2"],
            "from another address too, and nothing runs"
        );
    }

    #[test]
    fn a_full_table_drops_the_oldest_attempt_and_says_so_at_powers_of_two() {
        let mut engine = every(config(
            "[knockd]\nmax_sources = 1\n[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"8000\"]\n",
        ));
        packet(&mut engine, at(0), &hit("10.0.0.1", "7000"));
        assert_eq!(
            packet(&mut engine, at(1), &hit("10.0.0.2", "7000")),
            [
                "ssh 10.0.0.1 Evicted",
                "table full 1",
                "ssh 10.0.0.2 Stage(1)"
            ]
        );
        assert!(
            packet(&mut engine, at(2), &hit("10.0.0.3", "7000")).contains(&"table full 2".into())
        );
        let third = packet(&mut engine, at(3), &hit("10.0.0.4", "7000"));
        assert_eq!(third, ["ssh 10.0.0.3 Evicted", "ssh 10.0.0.4 Stage(1)"]);
    }

    #[test]
    fn a_one_time_door_asks_for_its_line_to_be_spent_before_its_start_runs() {
        let mut config = config(
            "[[door]]\nname = \"once\"\none_time_sequences = \"/var/lib/knockr/once\"\nstart = [\"on\"]\n",
        );
        // The dispatcher reads the file; the engine is handed the line.
        let line = |text| Sequence::new(&crate::core::knock::parse_list(text, Proto::Tcp).unwrap());
        config.doors[0].door.sequence = line("7000,8000").unwrap();
        let mut engine = Engine::new(config, Knocks::Every);
        packet(&mut engine, at(0), &hit("10.0.0.1", "7000"));
        let mut out = Vec::new();
        engine.packet(at(1), &hit("10.0.0.1", "8000"), &mut out);
        assert_eq!(
            out.iter().map(show).collect::<Vec<_>>(),
            [
                "once 10.0.0.1 Stage(2)",
                "once 10.0.0.1 Open",
                "one-time once /var/lib/knockr/once",
                "start once 10.0.0.1: on"
            ]
        );
        let Firing::OneTimeUsed { door, .. } = out[2] else {
            panic!("{out:?}")
        };
        engine.set_sequence(door, line("7100,8100").unwrap());
        assert!(packet(&mut engine, at(2), &hit("10.0.0.1", "7000")).is_empty());
        packet(&mut engine, at(3), &hit("10.0.0.1", "7100"));
        assert_eq!(
            packet(&mut engine, at(4), &hit("10.0.0.1", "8100"))
                .last()
                .unwrap(),
            "start once 10.0.0.1: on"
        );
    }

    #[test]
    fn a_restart_from_the_exported_state_runs_overdue_stops_at_once_and_schedules_the_rest() {
        let doors = "[[door]]\nname = \"ssh\"\nsequence = [\"7000\"]\nstop = [\"off\", \"%IP%\"]\ncmd_timeout = \"10s\"\n\
                     [[door]]\nname = \"web\"\nsequence = [\"6000\"]\nstop = [\"web-off\", \"%IP%\"]\ncmd_timeout = \"60s\"\n";
        let mut before = every(config(doors));
        packet(&mut before, at(0), &hit("10.0.0.9", "7001"));
        assert!(
            !before.take_changed(),
            "a packet that opens nothing writes nothing"
        );
        packet(&mut before, at(0), &hit("10.0.0.1", "7000"));
        packet(&mut before, at(0), &hit("10.0.0.2", "6000"));
        assert!(before.take_changed());
        assert!(!before.take_changed(), "asked once, forgotten");
        let mut saved = before.export();
        saved.open.push(OpenKnocker {
            door: "gone".into(),
            src: "10.0.0.3".parse().unwrap(),
            due: at(5_000),
        });

        // Killed; back at 30 s with the web door's stop command changed.
        let mut after = every(config(&doors.replace("\"web-off\"", "\"web-off-v2\"")));
        let restored = after.restore(saved, at(30_000));
        assert_eq!(
            restored
                .overdue
                .iter()
                .map(|o| (o.door.as_str(), o.due))
                .collect::<Vec<_>>(),
            [("ssh", at(10_000))]
        );
        assert_eq!(restored.scheduled, 1);
        assert_eq!(restored.gone.len(), 1, "{restored:?}");
        assert_eq!(after.next_deadline(), Some(at(10_000)));
        assert_eq!(
            tick(&mut after, at(30_000)),
            ["stop ssh 10.0.0.1: off 10.0.0.1"]
        );
        assert_eq!(after.next_deadline(), Some(at(60_000)));
        assert!(tick(&mut after, at(60_000) - NANO).is_empty());
        assert_eq!(
            tick(&mut after, at(60_000)),
            ["stop web 10.0.0.2: web-off-v2 10.0.0.2"],
            "the stop runs with the command in force"
        );
        assert!(after.take_changed());
        assert_eq!(after.export(), State::default());
    }

    #[test]
    fn a_time_based_sequence_used_before_a_restart_is_refused_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let this = sequence(&team(dir.path(), 1), T0.as_secs() / 30);
        let mut before = Engine::new(team(dir.path(), 1), Knocks::Every);
        let first = knock(&mut before, at(0), "10.0.0.1", &this);
        assert_eq!(first.last().unwrap(), "start team 10.0.0.1: on 10.0.0.1");
        assert!(before.take_changed(), "a used sequence is worth a write");
        let saved = before.export();
        assert_eq!(saved.used.len(), 1);
        assert_eq!(saved.used[0].client.as_deref(), Some("alice"));
        // The step leaves the window (t+1) two steps later.
        assert_eq!(
            saved.used[0].until,
            Duration::from_secs((T0.as_secs() / 30 + 2) * 30)
        );

        let mut after = Engine::new(team(dir.path(), 1), Knocks::Every);
        assert_eq!(after.restore(saved.clone(), at(1_000)).used, 1);
        assert_eq!(
            knock(&mut after, at(1_000), "10.0.0.2", &this),
            ["team/alice 10.0.0.2 Stage(3)", "replay team/alice 10.0.0.2"]
        );
        // Restored once the step has left the window: pruned, nothing refused.
        let mut late = Engine::new(team(dir.path(), 1), Knocks::Every);
        assert_eq!(late.restore(saved, at(60_000)).used, 0);
    }
}
