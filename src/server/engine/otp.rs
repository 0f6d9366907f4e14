//! Pure: the server's side of time-based sequences (docs/otp-sequences.md).
//! Each OTP door becomes slot doors, one per (client, step slot) with
//! slot = step mod (2 window + 1). When the clock (packet time) crosses a
//! step boundary only the slot whose step left the window takes the step
//! that entered it, so knocks in progress on steps still valid go on.
//!
//! It also keeps the replay cache: a (door, client, step) that opened once is
//! refused until that step leaves the window, whatever the source address.
//! The used sequence stays watched, so a replay is seen and can be logged.
//!
//! No I/O, no clock (time is an argument) and no logging: the engine acts
//! on what it returns. It knows slots by [`SlotId`]; where their matcher
//! doors sit is the engine's business. Secrets stay inside; only names come out.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::ConfigDoor;
use crate::config::server::{OtpDoor, ServerConfig};
use crate::core::matcher::{Door, Sequence};
use crate::server::state::UsedSequence;

/// One slot door of a [`Slots`], by its place among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotId(usize);

impl SlotId {
    /// Its place among the slots: for tables kept beside them.
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

/// The slot doors of every OTP door of a configuration, and what was used.
#[derive(Debug)]
pub(crate) struct Slots {
    /// One per OTP door, in configuration order.
    doors: Vec<Rolling>,
    /// One per slot door, by [`SlotId`].
    slots: Vec<Slot>,
    /// (index in `doors`, client, step) that opened. Steps that left their
    /// door's window are dropped as the clock moves, so it never holds more
    /// than clients × (2 window + 1) entries per door.
    used: HashSet<(usize, usize, u64)>,
    /// Whether `used` gained an entry since [`Slots::take_changed`] last
    /// asked: then the state file is rewritten.
    changed: bool,
}

/// One OTP door as the clock moves.
#[derive(Debug)]
struct Rolling {
    /// The configuration door it is.
    door: ConfigDoor,
    /// The door's name: part of the derivation.
    name: String,
    /// Its secrets, window and what its sequences look like.
    otp: OtpDoor,
    /// Its clients' names as the engine's firings carry them, by client.
    clients: Vec<Option<Arc<str>>>,
    /// The matcher door its slots copy (timeout, flags, target, modes).
    template: Door,
    /// The step of the latest time seen; `None` before any.
    current: Option<u64>,
    /// The highest step seen. Steps before `highest - window` are refused even
    /// if the clock goes back: their replay cache entries are gone.
    highest: u64,
}

/// One slot door: the sequence of one client for one step of the window.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Index in `Slots::doors`.
    rolling: usize,
    /// Index in the door's clients.
    client: usize,
    /// Which of the 2 window + 1 slots: holds steps with step mod (2 window + 1) = k.
    k: u64,
    /// The step whose sequence it holds; `None`: none (before the first
    /// time, or a step that cannot be accepted).
    step: Option<u64>,
}

/// What an opening of a slot door means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// A client's sequence for a step, the first time: the door opens.
    Fresh,
    /// That client's sequence for that step opened before: refused.
    Replay,
}

impl Slots {
    /// The slots of `config`'s OTP doors, holding no sequence until the first
    /// [`Slots::advance`].
    pub(crate) fn new(config: &ServerConfig) -> Slots {
        let mut doors = Vec::new();
        let mut slots = Vec::new();
        for (index, entry) in config.doors.iter().enumerate() {
            let Some(otp) = &entry.otp else { continue };
            let rolling = doors.len();
            for client in 0..otp.clients.len() {
                for k in 0..2 * otp.window + 1 {
                    slots.push(Slot {
                        rolling,
                        client,
                        k,
                        step: None,
                    });
                }
            }
            doors.push(Rolling {
                door: ConfigDoor(index),
                name: entry.door.name.clone(),
                otp: otp.clone(),
                clients: otp
                    .clients
                    .iter()
                    .map(|c| c.name.as_deref().map(Arc::from))
                    .collect(),
                template: entry.door.clone(),
                current: None,
                highest: 0,
            });
        }
        Slots {
            doors,
            slots,
            used: HashSet::new(),
            changed: false,
        }
    }

    /// Whether no door is time-based (then no sequence changes with time).
    pub(crate) fn is_empty(&self) -> bool {
        self.doors.is_empty()
    }

    /// The slot doors for the matcher, each still without a sequence.
    pub(crate) fn matcher_doors(&self) -> impl Iterator<Item = (SlotId, Door)> + '_ {
        self.slots.iter().enumerate().map(|(index, slot)| {
            let door = Door {
                sequence: Sequence::default(),
                ..self.doors[slot.rolling].template.clone()
            };
            (SlotId(index), door)
        })
    }

    /// Brings every slot to the time `now` (since the Unix epoch): appends
    /// (slot, sequence) for each slot whose step changed. Cheap when no step
    /// boundary was crossed.
    pub(crate) fn advance(&mut self, now: Duration, changes: &mut Vec<(SlotId, Sequence)>) {
        for (r, rolling) in self.doors.iter_mut().enumerate() {
            let step = rolling.otp.spec.step_of(now.as_secs());
            if rolling.current == Some(step) {
                continue;
            }
            rolling.current = Some(step);
            rolling.highest = rolling.highest.max(step);
            let window = rolling.otp.window;
            let floor = rolling.highest.saturating_sub(window);
            self.used
                .retain(|&(door, _, used)| door != r || used >= floor);
            for (index, slot) in self.slots.iter_mut().enumerate() {
                if slot.rolling != r {
                    continue;
                }
                let wanted = slot_step(step, window, slot.k).filter(|s| *s >= floor);
                if slot.step == wanted {
                    continue;
                }
                slot.step = wanted;
                let secret = rolling.otp.clients[slot.client].secret.bytes();
                // The configuration allows time-based knocks on TCP and UDP
                // only; were an ICMP one derived, the slot would stay shut.
                let sequence = wanted
                    .map(|s| rolling.otp.spec.sequence(secret, &rolling.name, s))
                    .and_then(|knocks| Sequence::new(&knocks).ok())
                    .unwrap_or_default();
                changes.push((SlotId(index), sequence));
            }
        }
    }

    /// The configuration door and client `slot` stands for.
    pub(crate) fn who(&self, slot: SlotId) -> (ConfigDoor, Option<&Arc<str>>) {
        let slot = &self.slots[slot.0];
        let rolling = &self.doors[slot.rolling];
        (rolling.door, rolling.clients[slot.client].as_ref())
    }

    /// `slot` opened: its first opening for a step is fresh and recorded,
    /// any later one (from any source) a replay.
    pub(crate) fn open(&mut self, slot: SlotId) -> Opening {
        let slot = &self.slots[slot.0];
        match slot.step {
            Some(step) if self.used.insert((slot.rolling, slot.client, step)) => {
                self.changed = true;
                Opening::Fresh
            }
            // A slot without a step has no sequence, so it cannot open: refuse anyway.
            _ => Opening::Replay,
        }
    }

    /// Entries in the replay cache (what the tests check is bounded).
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.len()
    }

    /// The replay cache for the state file: each used sequence with its
    /// door's and client's names and when its step leaves the window.
    pub(crate) fn used_sequences(&self) -> impl Iterator<Item = UsedSequence> + '_ {
        self.used.iter().map(|&(door, client, step)| {
            let rolling = &self.doors[door];
            let step_secs = rolling.otp.spec.step();
            let leaves = step.saturating_add(rolling.otp.window + 1);
            UsedSequence {
                door: rolling.name.clone(),
                client: rolling.otp.clients[client].name.clone(),
                step_secs,
                step,
                until: Duration::from_secs(leaves.saturating_mul(step_secs)),
            }
        })
    }

    /// Used sequences read back from the state file are refused again, for
    /// the doors and clients still there under the same names and step
    /// length (as [`Slots::carry_over`] keeps them across a reload); those
    /// whose step has left the window by the next [`Slots::advance`] are
    /// dropped then. Returns how many were taken.
    pub(crate) fn restore(&mut self, used: &[UsedSequence]) -> usize {
        let mut taken = 0;
        for entry in used {
            let Some((r, rolling)) = self
                .doors
                .iter_mut()
                .enumerate()
                .find(|(_, d)| d.name == entry.door && d.otp.spec.step() == entry.step_secs)
            else {
                continue;
            };
            let clients = &rolling.otp.clients;
            let Some(c) = clients.iter().position(|c| c.name == entry.client) else {
                continue;
            };
            // The steps before this one's window stay refused, as before the crash.
            rolling.highest = rolling.highest.max(entry.step);
            // Slots already holding a sequence re-derive at the next advance.
            rolling.current = None;
            self.used.insert((r, c, entry.step));
            taken += 1;
        }
        taken
    }

    /// Whether the replay cache gained an entry since the last call.
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// After a reload: keeps what `old` saw of the doors and clients that are
    /// still there under the same names and step length, so a sequence used
    /// before the reload is still refused after it.
    pub(crate) fn carry_over(&mut self, old: &Slots) {
        for (r, rolling) in self.doors.iter_mut().enumerate() {
            let Some((o, before)) = old.doors.iter().enumerate().find(|(_, d)| {
                d.name == rolling.name && d.otp.spec.step() == rolling.otp.spec.step()
            }) else {
                continue;
            };
            rolling.highest = rolling.highest.max(before.highest);
            for &(door, client, step) in old.used.iter().filter(|u| u.0 == o) {
                let name = &old.doors[door].otp.clients[client].name;
                if let Some(c) = rolling.otp.clients.iter().position(|c| &c.name == name) {
                    self.used.insert((r, c, step));
                }
            }
        }
    }
}

/// The step slot `k` holds when the current step is `now`: the one step of
/// now-window..=now+window with step mod (2 window + 1) = k; `None` if it
/// would be before step 0.
fn slot_step(now: u64, window: u64, k: u64) -> Option<u64> {
    let n = 2 * window + 1;
    let low = i128::from(now) - i128::from(window);
    let step = low + (i128::from(k) - low).rem_euclid(i128::from(n));
    u64::try_from(step).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::server::{DoorConfig, OtpClient};
    use crate::core::knock::Proto;
    use crate::core::otp::OtpSpec;
    use crate::core::secret::Secret;

    const STEP: u64 = 30;
    /// A time well inside step T.
    const T: u64 = 60_000_000;

    fn spec() -> OtpSpec {
        OtpSpec::new(4, 10000..=60000, vec![], vec![Proto::Tcp, Proto::Udp], STEP).unwrap()
    }

    fn secret(byte: u8) -> Secret {
        Secret::new(vec![byte; 20])
    }

    fn client(name: &str, byte: u8) -> OtpClient {
        OtpClient {
            name: Some(name.into()),
            secret_file: "/dev/null".into(),
            secret: secret(byte),
        }
    }

    /// A fixed door, then door "team" with `clients`.
    fn config(window: u64, clients: Vec<OtpClient>) -> ServerConfig {
        let text = "[[door]]\nname = \"fixed\"\nsequence = [7000]\n\
                    [[door]]\nname = \"team\"\nsequence = [1]\n";
        let mut config =
            crate::config::server::parse(std::path::Path::new("k.toml"), text).unwrap();
        let team: &mut DoorConfig = &mut config.doors[1];
        team.door.sequence = Sequence::default();
        team.otp = Some(OtpDoor {
            spec: spec(),
            window,
            clients,
        });
        config
    }

    fn at(step: u64) -> Duration {
        Duration::from_secs(step * STEP + 7)
    }

    /// The (client, step) each slot door holds, from the sequences set so far.
    fn held(slots: &Slots, sequences: &[Sequence], clients: &[u8]) -> Vec<(usize, Option<u64>)> {
        sequences
            .iter()
            .enumerate()
            .map(|(i, sequence)| {
                let client = slots.slots[i].client;
                let step = (T - 5..T + 5).find(|s| {
                    sequence.knocks().eq(spec().sequence(
                        secret(clients[client]).bytes(),
                        "team",
                        *s,
                    ))
                });
                (client, step)
            })
            .collect()
    }

    #[test]
    fn the_window_holds_each_clients_sequences_of_t_minus_w_to_t_plus_w() {
        let mut slots = Slots::new(&config(1, vec![client("alice", 1), client("bob", 2)]));
        assert_eq!(slots.matcher_doors().count(), 6, "2 clients x 3 steps");
        let mut sequences = vec![Sequence::default(); 6];
        let mut changes = Vec::new();
        slots.advance(at(T), &mut changes);
        assert_eq!(changes.len(), 6);
        for (slot, sequence) in changes.drain(..) {
            sequences[slot.0] = sequence;
        }
        let mut got = held(&slots, &sequences, &[1, 2]);
        got.sort();
        let expected = [0, 1].map(|c| [T - 1, T, T + 1].map(|s| (c, Some(s))));
        assert_eq!(got, expected.concat());
        let (door, client) = slots.who(SlotId(0));
        assert_eq!((door, client.map(|c| &**c)), (ConfigDoor(1), Some("alice")));

        // Within the step nothing moves; at the next one, one slot per client.
        slots.advance(at(T) + Duration::from_secs(20), &mut changes);
        assert!(changes.is_empty());
        slots.advance(at(T + 1), &mut changes);
        assert_eq!(changes.len(), 2);
        for (slot, sequence) in changes.drain(..) {
            sequences[slot.0] = sequence;
        }
        let mut got = held(&slots, &sequences, &[1, 2]);
        got.sort();
        let expected = [0, 1].map(|c| [T, T + 1, T + 2].map(|s| (c, Some(s))));
        assert_eq!(got, expected.concat());
    }

    #[test]
    fn a_slot_opens_once_per_step_and_the_cache_forgets_steps_that_left_the_window() {
        let mut slots = Slots::new(&config(1, vec![client("alice", 1)]));
        let mut changes = Vec::new();
        slots.advance(at(T), &mut changes);
        let door = changes.iter().map(|c| c.0.0).max().map(SlotId).unwrap();
        assert_eq!(slots.open(door), Opening::Fresh);
        assert_eq!(slots.open(door), Opening::Replay);
        assert_eq!(slots.used(), 1);
        // Two steps later that step left the window; the slot holds a new one.
        slots.advance(at(T + 3), &mut changes);
        assert_eq!(slots.used(), 0);
        assert_eq!(slots.open(door), Opening::Fresh);
    }

    #[test]
    fn steps_before_the_highest_window_stay_refused_when_the_clock_goes_back() {
        let mut slots = Slots::new(&config(1, vec![client("alice", 1)]));
        let mut changes = Vec::new();
        slots.advance(at(T + 10), &mut changes);
        changes.clear();
        slots.advance(at(T), &mut changes);
        assert_eq!(changes.len(), 3);
        assert!(
            changes.iter().all(|(_, sequence)| sequence.is_empty()),
            "{changes:?}"
        );
    }

    #[test]
    fn a_reload_keeps_the_replay_cache_of_doors_and_clients_that_remain() {
        let clients = || vec![client("alice", 1), client("bob", 2)];
        let mut old = Slots::new(&config(1, clients()));
        let mut changes = Vec::new();
        old.advance(at(T), &mut changes);
        for slot in 0..6 {
            assert_eq!(old.open(SlotId(slot)), Opening::Fresh);
        }
        // bob is gone after the reload; alice's used sequences stay used.
        let mut new = Slots::new(&config(1, vec![client("alice", 1)]));
        new.carry_over(&old);
        new.advance(at(T), &mut changes);
        assert_eq!(new.used(), 3);
        for slot in 0..3 {
            assert_eq!(new.open(SlotId(slot)), Opening::Replay);
        }
    }

    /// An Ethernet frame of a TCP SYN or a UDP datagram to `port`.
    fn frame(proto: Proto, port: u16) -> Vec<u8> {
        let ip = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
            [198, 51, 100, 7],
            [192, 0, 2, 1],
            64,
        );
        let mut out = Vec::new();
        match proto {
            Proto::Tcp => ip.tcp(40_000, port, 1, 64_240).syn().write(&mut out, &[]),
            Proto::Udp => ip.udp(40_000, port).write(&mut out, &[0]),
            Proto::Icmp => unreachable!("time-based doors knock on tcp and udp"),
        }
        .unwrap();
        out
    }

    #[test]
    fn the_capture_filter_lets_in_the_whole_range_of_a_time_based_door() {
        let mut config = config(1, vec![client("alice", 1)]);
        config.doors[1].otp.as_mut().unwrap().spec =
            OtpSpec::new(4, 10000..=60000, vec![], vec![Proto::Udp], STEP).unwrap();
        let log = crate::server::log::Log::to_writer(Box::new(std::io::sink()), false, false);
        let server = crate::server::Server::new(config, log, true).unwrap();
        let filter = crate::server::filter_for(server.config()).expression;
        let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        let program = dead.compile(&filter, true).unwrap();
        let passes = |proto, port| program.filter(&frame(proto, port));
        // The fixed door's knock, and UDP anywhere in 10000-60000.
        assert!(passes(Proto::Tcp, 7000), "{filter}");
        for port in [10000, 23456, 60000] {
            assert!(passes(Proto::Udp, port), "{port}: {filter}");
        }
        assert!(!passes(Proto::Udp, 9999), "{filter}");
        assert!(!passes(Proto::Udp, 60001), "{filter}");
        assert!(
            !passes(Proto::Tcp, 23456),
            "TCP is not the door's: {filter}"
        );
    }

    #[test]
    fn slot_steps_cover_the_window_once() {
        for now in [0, 1, 2, 5, 1000, 1001] {
            for window in [0, 1, 3] {
                let mut steps: Vec<Option<u64>> = (0..2 * window + 1)
                    .map(|k| slot_step(now, window, k))
                    .collect();
                steps.sort();
                let expected: Vec<Option<u64>> = (now as i64 - window as i64
                    ..=now as i64 + window as i64)
                    .map(|s| u64::try_from(s).ok())
                    .collect();
                let mut expected = expected;
                expected.sort();
                assert_eq!(steps, expected, "now {now} window {window}");
            }
        }
    }
}
