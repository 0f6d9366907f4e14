//! Pure: the per-source knock state machine. Time is an argument (packet
//! timestamps offline, the clock live); it does no I/O and runs no commands,
//! it only says what happened as [`Event`]s.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use crate::core::knock::{Knock, Transport};
use crate::core::packet::{Hit, tcp_flags};

/// Which TCP flags a door pays attention to: `tcp_flags = "syn,!ack"` means
/// SYN must be set and ACK must not. TCP packets that do not fit are ignored
/// by the door (they neither advance nor reset it); UDP is not affected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagRule {
    /// Bits that must be set.
    pub set: u8,
    /// Bits that must be clear.
    pub unset: u8,
}

impl FlagRule {
    pub fn matches(&self, flags: u8) -> bool {
        flags & self.set == self.set && flags & self.unset == 0
    }

    /// Parses `syn,!ack` (comma or `|` separated, case-insensitive, `!` negates;
    /// flags fin syn rst psh ack urg). An empty text is the rule that matches anything.
    pub fn parse(text: &str) -> Result<FlagRule, String> {
        let mut rule = FlagRule::default();
        for item in text
            .split([',', '|'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (negated, name) = match item.strip_prefix('!') {
                Some(name) => (true, name.trim()),
                None => (false, item),
            };
            let bit = match name.to_ascii_lowercase().as_str() {
                "fin" => tcp_flags::FIN,
                "syn" => tcp_flags::SYN,
                "rst" => tcp_flags::RST,
                "psh" => tcp_flags::PSH,
                "ack" => tcp_flags::ACK,
                "urg" => tcp_flags::URG,
                _ => {
                    return Err(format!(
                        "TCP flag {name:?} is not known: expected fin, syn, rst, psh, ack or urg, each optionally negated with !"
                    ));
                }
            };
            if negated {
                rule.unset |= bit
            } else {
                rule.set |= bit
            }
        }
        if rule.set & rule.unset != 0 {
            return Err(format!(
                "TCP flags {text:?} both require and forbid the same flag"
            ));
        }
        Ok(rule)
    }
}

/// A door of a [`Matcher`], by its place among the doors it was built with.
/// Only the matcher hands them out ([`Matcher::ids`]), so an index into some
/// other list (the configuration's doors) cannot pass for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DoorId(u32);

impl DoorId {
    /// Its place among the matcher's doors: for tables kept beside the matcher.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One knock of a sequence, as the matcher compares packets with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Watched {
    /// The destination port.
    port: u16,
    /// TCP or UDP.
    transport: Transport,
}

impl Watched {
    fn of(hit: &Hit) -> Watched {
        Watched {
            port: hit.port,
            transport: hit.transport,
        }
    }
}

/// A door's knocks in order, each TCP or UDP: what a capture can match.
/// [`Sequence::new`] refuses ICMP knocks (they have no port; routers match
/// them by size with their own rules), so no matcher door can hold one.
/// Empty: the door is disabled (a one-time door whose lines are used up).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sequence(Vec<Watched>);

/// Why a [`Sequence`] was refused: it holds this ICMP knock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the ICMP knock {0}: knockr knockd matches TCP and UDP knocks only; \
     ICMP knocks are for the router's native rules (knockr routeros rules)"
)]
pub struct IcmpKnock(pub Knock);

impl Sequence {
    /// `knocks` as a matcher sequence; the first ICMP knock refuses it.
    pub fn new(knocks: &[Knock]) -> Result<Sequence, IcmpKnock> {
        knocks
            .iter()
            .map(|&knock| {
                let transport = knock.transport().ok_or(IcmpKnock(knock))?;
                Ok(Watched {
                    port: knock.port,
                    transport,
                })
            })
            .collect::<Result<_, _>>()
            .map(Sequence)
    }

    /// The knocks in order.
    pub fn knocks(&self) -> impl ExactSizeIterator<Item = Knock> + '_ {
        self.0.iter().map(|w| Knock {
            port: w.port,
            proto: w.transport.into(),
        })
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// As the list of knocks it holds (a configuration's `Debug` shows sequences so).
impl std::fmt::Debug for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.knocks()).finish()
    }
}

/// A door as the matcher sees it: what to match, not what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    /// For messages; the matcher itself goes by [`DoorId`].
    pub name: String,
    /// The knocks in order (for a one-time door: the current sequence).
    pub sequence: Sequence,
    /// The whole sequence must arrive within this time of its first knock.
    pub seq_timeout: Duration,
    pub flags: FlagRule,
    /// The knock must be addressed to this IP; `None`: any address of the
    /// host (a hit whose `to_host` is set).
    pub target: Option<IpAddr>,
    /// Any TCP SYN or UDP packet to the host that is not the expected knock resets.
    pub strict: bool,
    /// A repeat of the knock just matched (a SYN retransmit) is ignored.
    pub tolerate_repeats: bool,
}

impl Door {
    /// Whether `hit` is addressed to this door at all: to its `target`, or
    /// without one to any of the host's own addresses. Others never count,
    /// not even to reset (a router forwarding for its LAN sees them).
    fn accepts(&self, hit: &Hit) -> bool {
        match self.target {
            Some(target) => target == hit.dst,
            None => hit.to_host,
        }
    }
}

/// What happened to one source's attempt at one door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The source matched knock `n` (1-based) of the door's sequence.
    Stage(usize),
    /// The whole sequence matched: the door opens for the source.
    Open,
    /// A wrong knock ended the attempt.
    Reset,
    /// The sequence did not complete within the door's `seq_timeout`.
    Timeout,
    /// The table of tracked sources was full; this source's attempt was
    /// dropped to make room (the oldest goes first).
    Evicted,
}

/// Something that happened to one source's attempt at one door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The door it happened at.
    pub door: DoorId,
    /// The knocking source.
    pub src: IpAddr,
    /// What happened.
    pub kind: EventKind,
}

/// One source's progress through one door.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    /// The door; a source has at most one attempt per door.
    door: DoorId,
    /// Knocks matched so far (1..len-1 while in progress).
    stage: u32,
    /// When its first knock arrived; the timeout counts from here.
    started: Duration,
}

/// Everything in progress for one source address.
#[derive(Debug)]
struct Source {
    /// The source address.
    src: IpAddr,
    /// Inline for the usual one: no allocation and no pointer to
    /// chase per source, which under a flood is most of the cost.
    attempts: smallvec::SmallVec<[Attempt; 1]>,
    /// When it began to be tracked, in `Matcher::clock` ticks (from 1); 0 for
    /// a free slot. Queue entries carry it, so an entry whose slot has since
    /// been freed or reused is recognised as stale.
    since: u64,
}

/// A slot in [`Table`].
type Slot = u32;

/// The sources with an attempt in progress, kept in a slab. The queues name
/// a source by its slot, so expiring and evicting reach it without a hash
/// probe; the index from address to slot holds 4-byte entries, so under a
/// flood of 100,000 sources it stays in cache and a lookup costs one miss
/// (the slot itself), not several.
#[derive(Debug, Default)]
struct Table {
    /// The sources, by slot; a free slot has `since` 0.
    slots: Vec<Source>,
    /// Slots freed for reuse: the slab never outgrows the most sources
    /// tracked at once.
    free: Vec<Slot>,
    /// Slot numbers, hashed by the address in the slot.
    index: hashbrown::HashTable<Slot>,
    /// Seeded per process: nobody can aim packets at one hash bucket.
    hasher: Hasher,
}

impl Table {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn find(&self, src: IpAddr) -> Option<Slot> {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(src), |&slot| {
                slots[slot as usize].src == src
            })
            .copied()
    }

    /// Starts tracking `src`, which must not be tracked yet.
    fn insert(&mut self, src: IpAddr, since: u64) -> Slot {
        let source = Source {
            src,
            attempts: smallvec::SmallVec::new(),
            since,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = source;
                slot
            }
            None => {
                self.slots.push(source);
                Slot::try_from(self.slots.len() - 1).expect("max_sources fits in u32")
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hasher.hash_one(src), slot, |&slot| {
                hasher.hash_one(slots[slot as usize].src)
            });
        slot
    }

    /// Forgets the source in `slot`; entries naming it in the queues go stale.
    fn remove(&mut self, slot: Slot) {
        let source = &mut self.slots[slot as usize];
        if let Ok(entry) = self
            .index
            .find_entry(self.hasher.hash_one(source.src), |&s| s == slot)
        {
            entry.remove();
        }
        source.since = 0;
        source.attempts.clear();
        self.free.push(slot);
    }

    /// The source in `slot` if it is still the one tracked since `since`.
    fn live(&self, slot: Slot, since: u64) -> Option<&Source> {
        self.slots
            .get(slot as usize)
            .filter(|s| s.since == since && since != 0)
    }
}

/// The (transport, port) pairs some door knocks on, as one bit each: the
/// first question for every packet, answered without hashing. One bitmap per
/// [`Transport`], indexed by it: there is none for ICMP, and no door can ask.
#[derive(Debug, Clone)]
struct PortSet([Box<[u64; 1024]>; 2]);

impl PortSet {
    fn new(doors: &[Door]) -> PortSet {
        let mut set = PortSet([Box::new([0; 1024]), Box::new([0; 1024])]);
        for knock in doors.iter().flat_map(|d| d.sequence.0.iter()) {
            set.0[knock.transport as usize][usize::from(knock.port) / 64] |= 1 << (knock.port % 64);
        }
        set
    }

    fn contains(&self, knock: Watched) -> bool {
        self.0[knock.transport as usize][usize::from(knock.port) / 64] & (1 << (knock.port % 64))
            != 0
    }
}

type Hasher = foldhash::fast::RandomState;

/// An entry of a deadline queue: the attempt at `door` `started` by the
/// source tracked in `slot` since `since` times out at `deadline`.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    deadline: Duration,
    started: Duration,
    since: u64,
    slot: Slot,
    door: DoorId,
}

/// Doors by their first knock, each list in door order.
type FirstKnocks = std::collections::HashMap<Watched, smallvec::SmallVec<[DoorId; 2]>, Hasher>;

/// Indexes doors by first knock: a packet that may begin an attempt visits
/// only the doors it can begin, however many there are (a time-based door
/// with many clients is hundreds of matcher doors).
fn by_first_knock(doors: &[Door]) -> FirstKnocks {
    let mut index = FirstKnocks::default();
    for (door, d) in ids(doors.len()).zip(doors) {
        if let Some(first) = d.sequence.0.first() {
            index.entry(*first).or_default().push(door);
        }
    }
    index
}

/// The ids of a matcher's `count` doors, in order.
fn ids(count: usize) -> impl ExactSizeIterator<Item = DoorId> {
    (0..count as u32).map(DoorId)
}

/// The per-source state machine of all doors. Compatible with the C knockd's
/// matching (see the README) except for its bugs: sources never disturb each
/// other, the table is bounded, and expiry needs no traffic (`expire` is
/// called by the run loop at `next_expiry`).
///
/// Built for floods: a packet to a port no door watches costs one bit test;
/// the per-source table uses a seeded hash (no collision flooding); ordering
/// by arrival and by deadline uses queues with lazy deletion, compacted when
/// stale entries outnumber live ones, so memory stays bounded by `max_sources`.
#[derive(Debug)]
pub struct Matcher {
    /// The doors, by [`DoorId`].
    doors: Vec<Door>,
    /// Every knock some door watches: for non-strict doors the only packets
    /// that count at all, as if the capture filter let nothing else in.
    watched: PortSet,
    /// Whether any door is strict (then any SYN or datagram may matter).
    any_strict: bool,
    /// Sources with at least one attempt in progress.
    table: Table,
    /// (tick, slot) in the order sources began to be tracked, oldest first:
    /// who is evicted when full. An entry is live while its slot's `since`
    /// equals its tick. Only new sources add entries, so stale ones are few.
    arrivals: std::collections::VecDeque<(u64, Slot)>,
    /// Doors by first knock (see [`by_first_knock`]); rebuilt with the sequences.
    first_knocks: FirstKnocks,
    /// One queue per distinct `seq_timeout`, of the attempts at doors with
    /// that timeout in order of start, so in order of deadline. An entry is
    /// live while its source still has that attempt. Few queues (usually
    /// one) whatever the number of doors: the timer looks at each front.
    deadlines: Vec<std::collections::VecDeque<Deadline>>,
    /// Per door, the index of its queue in `deadlines`.
    queue_of: Vec<u32>,
    /// Attempts in progress, to know when the queues need compacting.
    attempts: usize,
    /// Bumped for every newly tracked source; orders `arrivals`.
    clock: u64,
    /// The most sources tracked at once; a new one beyond evicts the oldest.
    max_sources: usize,
    /// Sources evicted so, since the start.
    evictions: u64,
}

impl Matcher {
    /// `max_sources` (at least 1) bounds the sources tracked at once. The
    /// doors get their [`DoorId`]s in order (see [`Matcher::ids`]).
    pub fn new(doors: Vec<Door>, max_sources: usize) -> Matcher {
        let mut timeouts: Vec<Duration> = Vec::new();
        let queue_of = doors
            .iter()
            .map(
                |d| match timeouts.iter().position(|t| *t == d.seq_timeout) {
                    Some(queue) => queue as u32,
                    None => {
                        timeouts.push(d.seq_timeout);
                        (timeouts.len() - 1) as u32
                    }
                },
            )
            .collect();
        Matcher {
            watched: PortSet::new(&doors),
            first_knocks: by_first_knock(&doors),
            any_strict: doors.iter().any(|d| d.strict),
            deadlines: vec![Default::default(); timeouts.len()],
            queue_of,
            doors,
            table: Table::default(),
            arrivals: Default::default(),
            attempts: 0,
            clock: 0,
            max_sources: max_sources.clamp(1, Slot::MAX as usize),
            evictions: 0,
        }
    }

    /// The doors' ids, in the order [`Matcher::new`] was given the doors.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = DoorId> + use<> {
        ids(self.doors.len())
    }

    /// The door `door` as it is now (a one-time door: its current sequence).
    pub fn door(&self, door: DoorId) -> &Door {
        &self.doors[door.index()]
    }

    /// Sources with a knock in progress.
    pub fn tracked_sources(&self) -> usize {
        self.table.len()
    }

    /// Attempts dropped because the table was full, since the start.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The earliest moment an attempt may time out, for the run loop's timer
    /// (it may be early: the attempt may have ended meanwhile).
    pub fn next_expiry(&self) -> Option<Duration> {
        self.deadlines
            .iter()
            .filter_map(|q| q.front().map(|e| e.deadline))
            .min()
    }

    /// Replaces a door's sequence (a one-time door moving to its next line;
    /// empty disables the door). Attempts on its old sequence are dropped.
    pub fn set_sequence(&mut self, door: DoorId, sequence: Sequence) {
        self.set_sequences(&mut vec![(door, sequence)]);
    }

    /// [`Matcher::set_sequence`] for several doors at once (time-based doors
    /// moving to a new step), with one rebuild of the watched ports and one
    /// pass over the sources instead of one per door. Drains `changes`.
    pub fn set_sequences(&mut self, changes: &mut Vec<(DoorId, Sequence)>) {
        if changes.is_empty() {
            return;
        }
        let mut changed = vec![false; self.doors.len()];
        for (door, sequence) in changes.drain(..) {
            changed[door.index()] = true;
            self.doors[door.index()].sequence = sequence;
        }
        self.watched = PortSet::new(&self.doors);
        self.first_knocks = by_first_knock(&self.doors);
        let affected: Vec<Slot> = (0..self.table.slots.len() as Slot)
            .filter(|&slot| {
                let source = &self.table.slots[slot as usize];
                source.since != 0 && source.attempts.iter().any(|a| changed[a.door.index()])
            })
            .collect();
        for slot in affected {
            self.end_attempts(slot, |a| changed[a.door.index()]);
        }
    }

    /// Attempts that have run out of time by `now`, ended with `Timeout` events.
    pub fn expire(&mut self, now: Duration, events: &mut Vec<Event>) {
        let mut expired = false;
        for queue in 0..self.deadlines.len() {
            while let Some(&entry) = self.deadlines[queue].front() {
                if entry.deadline > now {
                    break;
                }
                self.deadlines[queue].pop_front();
                expired = true;
                let Some(source) = self.table.live(entry.slot, entry.since) else {
                    continue;
                };
                let src = source.src;
                let door = entry.door;
                if self.end_attempts(entry.slot, |a| a.door == door && a.started == entry.started) {
                    events.push(Event {
                        door,
                        src,
                        kind: EventKind::Timeout,
                    });
                }
            }
        }
        // Timed-out sources are mostly the oldest arrivals: drop their entries
        // now, while their slots are still in cache, not in a compaction.
        while expired && let Some(&(tick, slot)) = self.arrivals.front() {
            if self.table.live(slot, tick).is_some() {
                break;
            }
            self.arrivals.pop_front();
        }
    }

    /// Whether `hit` can neither be a knock nor reset one, whatever the
    /// state: the common case under a flood, so callers may skip all other
    /// per-packet work for it ([`Matcher::hit`] would do nothing).
    pub fn ignores(&self, hit: &Hit) -> bool {
        // What a strict door counts as a knock: a connection attempt or a datagram.
        let strict_kind = hit.transport != Transport::Tcp || hit.flags & tcp_flags::SYN != 0;
        !(self.watched.contains(Watched::of(hit)) || (strict_kind && self.any_strict))
    }

    /// Feeds one packet seen at `now`; what it caused is appended to `events`.
    pub fn hit(&mut self, hit: &Hit, now: Duration, events: &mut Vec<Event>) {
        if self.ignores(hit) {
            return;
        }
        let knock = Watched::of(hit);
        let watched = self.watched.contains(knock);
        let is_tcp = hit.transport == Transport::Tcp;
        let strict_kind = !is_tcp || hit.flags & tcp_flags::SYN != 0;
        self.expire(now, events);

        let Some(slot) = self.table.find(hit.src) else {
            if watched {
                self.start(hit, knock, now, events);
            }
            return;
        };
        let source = &mut self.table.slots[slot as usize];
        // The source's attempts at doors that accept this destination, in door order.
        let (mut concerned, mut index) = (false, 0);
        while index < source.attempts.len() {
            let attempt = source.attempts[index];
            let door = &self.doors[attempt.door.index()];
            if !door.accepts(hit) {
                index += 1;
                continue;
            }
            concerned = true;
            let stage = attempt.stage as usize;
            let ended = if now.saturating_sub(attempt.started) >= door.seq_timeout {
                // Exact even when the timer has not fired yet.
                Some(EventKind::Timeout)
            } else if !(watched || (door.strict && strict_kind))
                || (is_tcp && !door.flags.matches(hit.flags))
            {
                None
            } else {
                if door.sequence.0[stage] == knock {
                    events.push(Event {
                        door: attempt.door,
                        src: hit.src,
                        kind: EventKind::Stage(stage + 1),
                    });
                    source.attempts[index].stage += 1;
                    (stage + 1 == door.sequence.len()).then_some(EventKind::Open)
                } else if door.tolerate_repeats && door.sequence.0[stage - 1] == knock {
                    // A retransmitted SYN or a doubled datagram of the knock just matched.
                    None
                } else {
                    Some(EventKind::Reset)
                }
            };
            match ended {
                Some(kind) => {
                    source.attempts.remove(index);
                    self.attempts -= 1;
                    events.push(Event {
                        door: attempt.door,
                        src: hit.src,
                        kind,
                    });
                }
                None => index += 1,
            }
        }
        if source.attempts.is_empty() {
            self.table.remove(slot);
        }
        if !concerned && watched {
            self.start(hit, knock, now, events);
        }
    }

    /// No attempt of this source is in progress here: the packet may begin one
    /// at every door whose first knock it is.
    fn start(&mut self, hit: &Hit, knock: Watched, now: Duration, events: &mut Vec<Event>) {
        let is_tcp = hit.transport == Transport::Tcp;
        let Some(doors) = self.first_knocks.get(&knock) else {
            return;
        };
        // Copied out: tracking below needs `self` mutably.
        let doors = doors.clone();
        for door in doors {
            let d = &self.doors[door.index()];
            let starts = (!is_tcp || d.flags.matches(hit.flags)) && d.accepts(hit);
            if !starts {
                continue;
            }
            let single = d.sequence.len() == 1;
            if !single {
                self.track(
                    hit.src,
                    Attempt {
                        door,
                        stage: 1,
                        started: now,
                    },
                    events,
                );
            }
            events.push(Event {
                door,
                src: hit.src,
                kind: EventKind::Stage(1),
            });
            if single {
                events.push(Event {
                    door,
                    src: hit.src,
                    kind: EventKind::Open,
                });
            }
        }
    }

    /// Adds `attempt` for `src`, making room by evicting the source tracked
    /// longest when the table is full.
    fn track(&mut self, src: IpAddr, attempt: Attempt, events: &mut Vec<Event>) {
        let slot = match self.table.find(src) {
            Some(slot) => slot,
            None => {
                if self.table.len() >= self.max_sources {
                    self.evict_oldest(events);
                }
                self.clock += 1;
                let slot = self.table.insert(src, self.clock);
                self.arrivals.push_back((self.clock, slot));
                slot
            }
        };
        let source = &mut self.table.slots[slot as usize];
        source.attempts.push(attempt);
        let door = attempt.door.index();
        self.deadlines[self.queue_of[door] as usize].push_back(Deadline {
            deadline: attempt.started + self.doors[door].seq_timeout,
            started: attempt.started,
            since: source.since,
            slot,
            door: attempt.door,
        });
        self.attempts += 1;
        self.compact();
    }

    fn evict_oldest(&mut self, events: &mut Vec<Event>) {
        while let Some((tick, slot)) = self.arrivals.pop_front() {
            let Some(source) = self.table.live(slot, tick) else {
                continue;
            };
            let src = source.src;
            let doors: smallvec::SmallVec<[DoorId; 2]> =
                source.attempts.iter().map(|a| a.door).collect();
            self.end_attempts(slot, |_| true);
            self.evictions += 1;
            events.extend(doors.into_iter().map(|door| Event {
                door,
                src,
                kind: EventKind::Evicted,
            }));
            return;
        }
    }

    /// Drops stale queue entries once they outnumber the live ones, so the
    /// queues never outgrow the table: amortized O(1) per entry.
    fn compact(&mut self) {
        let slack = 2 * self.attempts.max(self.table.len()) + 1024;
        if self.arrivals.len() > slack {
            let table = &self.table;
            self.arrivals
                .retain(|&(tick, slot)| table.live(slot, tick).is_some());
        }
        if self.deadlines.iter().map(|q| q.len()).sum::<usize>() > slack {
            let table = &self.table;
            for queue in &mut self.deadlines {
                queue.retain(|entry| {
                    table.live(entry.slot, entry.since).is_some_and(|s| {
                        s.attempts
                            .iter()
                            .any(|a| a.door == entry.door && a.started == entry.started)
                    })
                });
            }
        }
    }

    /// Ends the attempts of the source in `slot` that `which` selects,
    /// forgetting the source when none is left (its queue entries go stale).
    /// Whether any ended.
    fn end_attempts(&mut self, slot: Slot, which: impl Fn(&Attempt) -> bool) -> bool {
        let source = &mut self.table.slots[slot as usize];
        let before = source.attempts.len();
        source.attempts.retain(|a| !which(a));
        let ended = before - source.attempts.len();
        self.attempts -= ended;
        if source.attempts.is_empty() {
            self.table.remove(slot);
        }
        ended > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::knock::{Proto, parse_list};
    use crate::core::packet::Hit;
    use EventKind::*;

    const SYN: u8 = tcp_flags::SYN;
    const ACK: u8 = tcp_flags::ACK;

    fn door(name: &str, sequence: &str) -> Door {
        Door {
            name: name.into(),
            sequence: seq(sequence),
            seq_timeout: Duration::from_secs(5),
            flags: FlagRule::default(),
            target: None,
            strict: false,
            tolerate_repeats: false,
        }
    }

    /// `"7000,8000:udp"` as a matcher sequence.
    fn seq(knocks: &str) -> Sequence {
        Sequence::new(&parse_list(knocks, Proto::Tcp).unwrap()).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A packet from `src` to `port` ("7000" or "8000:udp") with TCP flags `flags`.
    fn pkt(src: &str, knock: &str, flags: u8) -> Hit {
        let knock = crate::core::knock::parse_knock(knock, Proto::Tcp).unwrap();
        Hit {
            src: ip(src),
            dst: ip("192.0.2.1"),
            transport: knock.transport().unwrap(),
            port: knock.port,
            flags,
            to_host: true,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds (time ms, packet) pairs; returns the events as (door, src, kind).
    fn run(m: &mut Matcher, packets: &[(u64, Hit)]) -> Vec<(usize, String, EventKind)> {
        let mut events = Vec::new();
        for (t, hit) in packets {
            m.hit(hit, ms(*t), &mut events);
        }
        events
            .into_iter()
            .map(|e| (e.door.index(), e.src.to_string(), e.kind))
            .collect()
    }

    fn ev(door: usize, src: &str, kind: EventKind) -> (usize, String, EventKind) {
        (door, src.to_string(), kind)
    }

    #[test]
    fn the_whole_sequence_in_order_opens_the_door() {
        let mut m = Matcher::new(vec![door("ssh", "7000,8000:udp,9000")], 10);
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (100, pkt("10.0.0.1", "8000:udp", 0)),
                (200, pkt("10.0.0.1", "9000", SYN)),
            ],
        );
        assert_eq!(
            got,
            [
                ev(0, "10.0.0.1", Stage(1)),
                ev(0, "10.0.0.1", Stage(2)),
                ev(0, "10.0.0.1", Stage(3)),
                ev(0, "10.0.0.1", Open)
            ]
        );
        assert_eq!(m.tracked_sources(), 0, "a finished attempt is forgotten");
        // Its deadline may still wake the timer once; that wake-up finds nothing.
        let mut events = Vec::new();
        m.expire(ms(5_000), &mut events);
        assert!(events.is_empty(), "a finished attempt never times out");
        assert_eq!(m.next_expiry(), None);
    }

    #[test]
    fn a_single_knock_door_opens_at_once() {
        let mut m = Matcher::new(vec![door("one", "4444:udp")], 10);
        let got = run(&mut m, &[(0, pkt("10.0.0.1", "4444:udp", 0))]);
        assert_eq!(got, [ev(0, "10.0.0.1", Stage(1)), ev(0, "10.0.0.1", Open)]);
        assert_eq!(m.tracked_sources(), 0);
    }

    #[test]
    fn a_wrong_watched_port_resets_and_that_packet_starts_nothing() {
        let mut m = Matcher::new(vec![door("ssh", "7000,8000,9000")], 10);
        // 7000 again is a watched port but not the expected 8000: reset, and it
        // does not start a new attempt (as the C knockd does).
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (10, pkt("10.0.0.1", "7000", SYN)),
                (20, pkt("10.0.0.1", "8000", SYN)),
            ],
        );
        assert_eq!(got, [ev(0, "10.0.0.1", Stage(1)), ev(0, "10.0.0.1", Reset)]);
    }

    #[test]
    fn protocol_is_part_of_the_knock() {
        // 8000/tcp is watched (the last knock) but 8000/udp is expected second.
        let mut m = Matcher::new(vec![door("ssh", "7000,8000:udp,8000:tcp")], 10);
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (10, pkt("10.0.0.1", "8000:tcp", SYN)),
            ],
        );
        assert_eq!(got, [ev(0, "10.0.0.1", Stage(1)), ev(0, "10.0.0.1", Reset)]);
    }

    #[test]
    fn ports_no_door_watches_are_invisible_to_ordinary_doors() {
        let mut m = Matcher::new(vec![door("ssh", "7000,8000")], 10);
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (5, pkt("10.0.0.1", "443", SYN)),
                (10, pkt("10.0.0.1", "8000", SYN)),
            ],
        );
        assert_eq!(got.last(), Some(&ev(0, "10.0.0.1", Open)));
    }

    #[test]
    fn strict_doors_count_any_syn_or_datagram_as_a_wrong_knock() {
        let mut strict = door("strict", "7000,8000");
        strict.strict = true;
        let mut m = Matcher::new(vec![strict, door("loose", "7100,8100")], 10);
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (1, pkt("10.0.0.1", "22", ACK)), // established traffic: not a knock
                (2, pkt("10.0.0.1", "443", SYN)), // a scan's SYN: wrong knock
                (3, pkt("10.0.0.2", "7100", SYN)),
                (4, pkt("10.0.0.2", "443", SYN)), // invisible to the loose door
                (5, pkt("10.0.0.2", "53:udp", 0)),
                (6, pkt("10.0.0.2", "8100", SYN)),
            ],
        );
        assert_eq!(
            got,
            [
                ev(0, "10.0.0.1", Stage(1)),
                ev(0, "10.0.0.1", Reset),
                ev(1, "10.0.0.2", Stage(1)),
                ev(1, "10.0.0.2", Stage(2)),
                ev(1, "10.0.0.2", Open)
            ]
        );
    }

    #[test]
    fn strict_mode_defeats_an_ascending_port_scan() {
        // Ascending, but not adjacent: a scan hits other ports in between.
        let mut strict = door("strict", "7000,7100,7200");
        strict.strict = true;
        let mut m = Matcher::new(vec![strict, door("plain", "8000,8100,8200")], 10);
        let scan = |base: u16| -> Vec<(u64, Hit)> {
            (base - 3..=base + 205)
                .map(|p| {
                    (
                        u64::from(p + 3 - base),
                        pkt("10.0.0.9", &p.to_string(), SYN),
                    )
                })
                .collect()
        };
        let strict_events = run(&mut m, &scan(7000));
        assert!(
            !strict_events.contains(&ev(0, "10.0.0.9", Open)),
            "{strict_events:?}"
        );
        let plain_events = run(&mut m, &scan(8000));
        assert!(
            plain_events.contains(&ev(1, "10.0.0.9", Open)),
            "the compatible mode is open to scans: {plain_events:?}"
        );
    }

    #[test]
    fn tcp_packets_whose_flags_do_not_fit_are_ignored_not_a_reset() {
        let mut d = door("ssh", "7000,8000");
        d.flags = FlagRule::parse("syn,!ack").unwrap();
        let mut m = Matcher::new(vec![d], 10);
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN | ACK)), // does not start
                (1, pkt("10.0.0.1", "7000", SYN)),
                (2, pkt("10.0.0.1", "7000", tcp_flags::RST)), // kernel RST to the knock: ignored
                (3, pkt("10.0.0.1", "8000", SYN)),
            ],
        );
        assert_eq!(
            got,
            [
                ev(0, "10.0.0.1", Stage(1)),
                ev(0, "10.0.0.1", Stage(2)),
                ev(0, "10.0.0.1", Open)
            ]
        );
    }

    #[test]
    fn without_a_flag_rule_a_repeat_resets_and_with_tolerate_repeats_it_is_ignored() {
        let mut m = Matcher::new(vec![door("ssh", "7000,8000")], 10);
        let packets = [
            (0, pkt("10.0.0.1", "7000", SYN)),
            (1000, pkt("10.0.0.1", "7000", SYN)),
            (1100, pkt("10.0.0.1", "8000", SYN)),
        ];
        assert_eq!(
            run(&mut m, &packets),
            [ev(0, "10.0.0.1", Stage(1)), ev(0, "10.0.0.1", Reset)]
        );

        let mut tolerant = door("ssh", "7000,8000");
        tolerant.tolerate_repeats = true;
        let mut m = Matcher::new(vec![tolerant], 10);
        assert_eq!(
            run(&mut m, &packets),
            [
                ev(0, "10.0.0.1", Stage(1)),
                ev(0, "10.0.0.1", Stage(2)),
                ev(0, "10.0.0.1", Open)
            ]
        );
    }

    #[test]
    fn the_timeout_counts_from_the_first_knock_and_its_boundary_is_expired() {
        let packets = |last: u64| {
            [
                (0, pkt("10.0.0.1", "7000", SYN)),
                (4000, pkt("10.0.0.1", "8000", SYN)),
                (last, pkt("10.0.0.1", "9000", SYN)),
            ]
        };
        let mut m = Matcher::new(vec![door("ssh", "7000,8000,9000")], 10);
        assert_eq!(
            run(&mut m, &packets(4999)).last(),
            Some(&ev(0, "10.0.0.1", Open))
        );
        let mut m = Matcher::new(vec![door("ssh", "7000,8000,9000")], 10);
        let got = run(&mut m, &packets(5000));
        assert_eq!(got[2], ev(0, "10.0.0.1", Timeout));
        assert!(!got.contains(&ev(0, "10.0.0.1", Open)));
    }

    #[test]
    fn expired_attempts_are_purged_without_waiting_for_traffic() {
        let mut m = Matcher::new(vec![door("ssh", "7000,8000")], 10);
        run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (2000, pkt("10.0.0.2", "7000", SYN)),
            ],
        );
        assert_eq!(m.next_expiry(), Some(ms(5000)));
        let mut events = Vec::new();
        m.expire(ms(4999), &mut events);
        assert!(events.is_empty());
        m.expire(ms(5000), &mut events);
        assert_eq!(
            events,
            [Event {
                door: DoorId(0),
                src: ip("10.0.0.1"),
                kind: Timeout
            }]
        );
        assert_eq!(m.tracked_sources(), 1);
        assert_eq!(m.next_expiry(), Some(ms(7000)));
    }

    #[test]
    fn a_first_knock_starts_every_door_it_begins_in_config_order() {
        let mut m = Matcher::new(
            vec![
                door("a", "7000,8000"),
                door("b", "7000,9000"),
                door("c", "6000,7000"),
            ],
            10,
        );
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (1, pkt("10.0.0.1", "9000", SYN)),
            ],
        );
        assert_eq!(
            got,
            [
                ev(0, "10.0.0.1", Stage(1)),
                ev(1, "10.0.0.1", Stage(1)),
                ev(0, "10.0.0.1", Reset),
                ev(1, "10.0.0.1", Stage(2)),
                ev(1, "10.0.0.1", Open)
            ]
        );
    }

    #[test]
    fn interleaved_knockers_all_get_through() {
        // The C knockd loses in-progress knocks when another source's attempt ends.
        let mut m = Matcher::new(vec![door("ssh", "7000,8000:udp,9000")], 1000);
        let sources: Vec<String> = (1..=20).map(|n| format!("10.0.1.{n}")).collect();
        let mut packets = Vec::new();
        for (step, knock) in ["7000", "8000:udp", "9000"].iter().enumerate() {
            for (n, src) in sources.iter().enumerate() {
                packets.push(((step * 100 + n) as u64, pkt(src, knock, SYN)));
            }
        }
        let got = run(&mut m, &packets);
        let opened: Vec<&String> = got.iter().filter(|e| e.2 == Open).map(|e| &e.1).collect();
        assert_eq!(opened.len(), 20, "{got:?}");
    }

    #[test]
    fn one_sources_reset_never_touches_another_source() {
        let mut m = Matcher::new(vec![door("ssh", "7000,8000,9000")], 10);
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (1, pkt("10.0.0.2", "7000", SYN)),
                (2, pkt("10.0.0.1", "9000", SYN)), // wrong for .1
                (3, pkt("10.0.0.2", "8000", SYN)),
                (4, pkt("10.0.0.2", "9000", SYN)),
            ],
        );
        assert!(got.contains(&ev(0, "10.0.0.1", Reset)));
        assert_eq!(got.last(), Some(&ev(0, "10.0.0.2", Open)));
    }

    #[test]
    fn a_full_table_evicts_the_oldest_source() {
        let mut m = Matcher::new(vec![door("ssh", "7000,8000,9000")], 2);
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (1, pkt("10.0.0.2", "7000", SYN)),
                (2, pkt("10.0.0.2", "8000", SYN)),
                (3, pkt("10.0.0.3", "7000", SYN)), // table full: .1, the oldest, goes
            ],
        );
        assert!(got.contains(&ev(0, "10.0.0.1", Evicted)), "{got:?}");
        assert_eq!(m.evictions(), 1);
        assert_eq!(m.tracked_sources(), 2);
        let got = run(&mut m, &[(4, pkt("10.0.0.2", "9000", SYN))]);
        assert_eq!(
            got.last(),
            Some(&ev(0, "10.0.0.2", Open)),
            "the survivor still opens"
        );
    }

    #[test]
    fn state_stays_bounded_under_a_flood_of_sources() {
        let mut m = Matcher::new(vec![door("ssh", "7000,8000")], 100);
        let mut events = Vec::new();
        for n in 0..10_000u32 {
            let src = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            let hit = Hit {
                src,
                dst: ip("192.0.2.1"),
                transport: Transport::Tcp,
                port: 7000,
                flags: SYN,
                to_host: true,
            };
            m.hit(&hit, ms(u64::from(n)), &mut events);
        }
        assert_eq!(m.tracked_sources(), 100);
        assert_eq!(m.evictions(), 9_900);
        // Stale queue entries are compacted away: the queues stay near the table's size.
        let slack = 2 * 100 + 1024;
        assert!(m.arrivals.len() <= slack + 1, "{}", m.arrivals.len());
        assert!(m.deadlines.iter().map(|q| q.len()).sum::<usize>() <= slack + 1);
    }

    /// Doors share a deadline queue per timeout and are found by first knock:
    /// each attempt still times out at its own door's deadline, and a first
    /// knock starts exactly the doors that begin with it, in door order.
    #[test]
    fn many_doors_with_mixed_timeouts_each_time_out_at_their_own_deadline() {
        let mut doors: Vec<Door> = (0..300u16)
            .map(|n| {
                door(
                    &format!("d{n}"),
                    &format!("{},{}", 20000 + n % 100, 30000 + n),
                )
            })
            .collect();
        for (n, d) in doors.iter_mut().enumerate() {
            d.seq_timeout = ms([1_000, 2_000, 3_000][n % 3]);
        }
        let mut m = Matcher::new(doors, 10);
        let got = run(&mut m, &[(0, pkt("10.0.0.1", "20007", SYN))]);
        let started: Vec<usize> = got.iter().map(|e| e.0).collect();
        assert_eq!(started, [7, 107, 207]);
        let mut events = Vec::new();
        m.expire(ms(999), &mut events);
        assert!(events.is_empty(), "{events:?}");
        for (at, door) in [(1_000, 207), (2_000, 7), (3_000, 107)] {
            assert_eq!(m.next_expiry(), Some(ms(at)));
            m.expire(ms(at), &mut events);
            assert_eq!(
                events
                    .drain(..)
                    .map(|e| (e.door.index(), e.kind))
                    .collect::<Vec<_>>(),
                [(door, Timeout)],
                "at {at} ms"
            );
        }
        assert_eq!(m.tracked_sources(), 0);
    }

    #[test]
    fn a_reused_slot_is_not_expired_by_its_previous_sources_deadline() {
        let mut m = Matcher::new(vec![door("ssh", "7000,8000,9000")], 10);
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (1, pkt("10.0.0.1", "9000", SYN)),
                // Takes the slot 10.0.0.1 left; the old deadline (5000) is stale.
                (2, pkt("10.0.0.2", "7000", SYN)),
            ],
        );
        assert_eq!(got[1], ev(0, "10.0.0.1", Reset));
        let mut events = Vec::new();
        m.expire(ms(5_000), &mut events);
        assert!(events.is_empty(), "{events:?}");
        let got = run(
            &mut m,
            &[
                (4_000, pkt("10.0.0.2", "8000", SYN)),
                (5_001, pkt("10.0.0.2", "9000", SYN)),
            ],
        );
        assert_eq!(got.last(), Some(&ev(0, "10.0.0.2", Open)));
    }

    #[test]
    fn a_knock_not_addressed_to_the_host_counts_nowhere_not_even_as_a_reset() {
        let mut strict = door("ssh", "7000,8000");
        strict.strict = true;
        let mut m = Matcher::new(vec![strict], 100);
        let mut events = Vec::new();
        m.hit(&pkt("10.0.0.1", "7000", SYN), ms(0), &mut events);
        // Forwarded through us to another host: neither a knock nor a reset.
        let mut passing = pkt("10.0.0.1", "8000", SYN);
        passing.to_host = false;
        m.hit(&passing, ms(1), &mut events);
        let mut wrong = pkt("10.0.0.1", "9999", SYN);
        wrong.to_host = false;
        m.hit(&wrong, ms(2), &mut events);
        assert_eq!(events.len(), 1, "only the first knock: {events:?}");
        m.hit(&pkt("10.0.0.1", "8000", SYN), ms(3), &mut events);
        assert_eq!(events.last().unwrap().kind, EventKind::Open);
        // And a first knock that is not ours starts nothing.
        let mut first = pkt("10.0.0.2", "7000", SYN);
        first.to_host = false;
        m.hit(&first, ms(4), &mut events);
        assert_eq!(m.tracked_sources(), 0);
    }

    #[test]
    fn a_door_with_a_target_only_counts_knocks_to_that_address() {
        let mut d = door("ssh", "7000,8000");
        d.target = Some(ip("192.0.2.99"));
        let mut m = Matcher::new(vec![d], 10);
        let mut to_target = pkt("10.0.0.1", "7000", SYN);
        to_target.dst = ip("192.0.2.99");
        let mut second = pkt("10.0.0.1", "8000", SYN);
        second.dst = ip("192.0.2.99");
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (1, to_target),
                (2, pkt("10.0.0.1", "8000", SYN)),
                (3, second),
            ],
        );
        assert_eq!(
            got,
            [
                ev(0, "10.0.0.1", Stage(1)),
                ev(0, "10.0.0.1", Stage(2)),
                ev(0, "10.0.0.1", Open)
            ]
        );
    }

    #[test]
    fn a_new_sequence_drops_attempts_on_the_old_one_and_empty_disables() {
        let mut m = Matcher::new(vec![door("otp", "7000,8000")], 10);
        run(&mut m, &[(0, pkt("10.0.0.1", "7000", SYN))]);
        m.set_sequence(DoorId(0), seq("7100,8100"));
        assert_eq!(m.tracked_sources(), 0);
        assert!(
            run(&mut m, &[(1, pkt("10.0.0.1", "8000", SYN))]).is_empty(),
            "old ports are no longer watched"
        );
        let got = run(
            &mut m,
            &[
                (2, pkt("10.0.0.1", "7100", SYN)),
                (3, pkt("10.0.0.1", "8100", SYN)),
            ],
        );
        assert_eq!(got.last(), Some(&ev(0, "10.0.0.1", Open)));
        m.set_sequence(DoorId(0), Sequence::default());
        assert!(run(&mut m, &[(4, pkt("10.0.0.1", "7100", SYN))]).is_empty());
    }

    /// `Matcher::new` once indexed its port bitmap by the knock's protocol,
    /// and ICMP (a valid `Knock`) was past its end: a panic. A matcher door's
    /// sequence is now TCP and UDP only, so an ICMP knock is refused when the
    /// sequence is made and never reaches the matcher.
    #[test]
    fn an_icmp_knock_is_refused_by_the_sequence_instead_of_panicking_the_matcher() {
        let knocks = parse_list("7000,56:icmp", Proto::Tcp).unwrap();
        let refused = Sequence::new(&knocks).unwrap_err();
        assert_eq!(refused, IcmpKnock(knocks[1]));
        assert_eq!(
            refused.to_string(),
            "the ICMP knock 56:icmp: knockr knockd matches TCP and UDP knocks only; \
             ICMP knocks are for the router's native rules (knockr routeros rules)"
        );
        // What is accepted round-trips, protocol and order kept.
        let knocks = parse_list("7000,8000:udp,7000:udp", Proto::Tcp).unwrap();
        let sequence = Sequence::new(&knocks).unwrap();
        assert_eq!(sequence.knocks().collect::<Vec<_>>(), knocks);
        assert_eq!(format!("{sequence:?}"), format!("{knocks:?}"));
        // A door may use the same port over both transports; each is its own knock.
        let mut m = Matcher::new(vec![door("mixed", "7000,8000:udp,7000:udp")], 10);
        let got = run(
            &mut m,
            &[
                (0, pkt("10.0.0.1", "7000", SYN)),
                (1, pkt("10.0.0.1", "8000:udp", 0)),
                (2, pkt("10.0.0.1", "7000:udp", 0)),
            ],
        );
        assert_eq!(got.last(), Some(&ev(0, "10.0.0.1", Open)));
    }

    #[test]
    fn door_ids_follow_the_order_the_doors_were_given_in() {
        let m = Matcher::new(vec![door("a", "7000"), door("b", "8000")], 10);
        let ids: Vec<DoorId> = m.ids().collect();
        assert_eq!(ids, [DoorId(0), DoorId(1)]);
        assert_eq!(m.door(ids[1]).name, "b");
    }

    #[test]
    fn flag_rules_parse_like_knockd() {
        assert_eq!(
            FlagRule::parse("syn,!ack"),
            Ok(FlagRule {
                set: SYN,
                unset: ACK
            })
        );
        assert_eq!(
            FlagRule::parse("SYN|urg"),
            Ok(FlagRule {
                set: SYN | tcp_flags::URG,
                unset: 0
            })
        );
        assert_eq!(FlagRule::parse(""), Ok(FlagRule::default()));
        assert!(FlagRule::parse("syn,!syn").is_err());
        assert_eq!(
            FlagRule::parse("sin"),
            Err("TCP flag \"sin\" is not known: expected fin, syn, rst, psh, ack or urg, each optionally negated with !".into())
        );
        assert!(
            FlagRule::parse("syn,!ack")
                .unwrap()
                .matches(SYN | tcp_flags::PSH)
        );
        assert!(!FlagRule::parse("syn,!ack").unwrap().matches(SYN | ACK));
    }
}
