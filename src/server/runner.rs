//! How the live server's start and stop commands are scheduled: at most
//! `max_commands` at once, the others waiting in arrival order in a bounded
//! queue, and one knocker's commands (a door and an address) one after
//! another, in the order they were asked for. So a stop never begins before
//! its start has finished, a start never runs while the same knocker's
//! previous stop still does, and a flood of completions cannot fork without
//! bound.
//!
//! [`Queue`] is the rule, pure (no tokio, no clock), so it is unit-tested
//! with plain values; [`Runner`] carries it out with tasks. Setup and
//! teardown commands, and a replay's commands, do not come here: they run
//! one at a time anyway.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use super::commands::RunKind;

/// Commands that may wait for a free slot, all knockers together; a start
/// asked for beyond this is dropped. Stops are never dropped (each is owed
/// to a start that was let in, so they are bounded by those), and may go
/// past it.
pub(crate) const QUEUE: usize = 1024;

/// A knocker: the door's name and the knocker's address.
pub(crate) type Key = (Arc<str>, IpAddr);

/// What became of a command handed to the [`Queue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// It runs when a slot is free and the knocker's earlier commands are done.
    Queued,
    /// A start refused: [`QUEUE`] commands already wait. Nothing was opened,
    /// so no stop is owed; `so_far` counts the starts dropped since start.
    Dropped {
        /// Starts dropped since knockd started.
        so_far: u64,
    },
    /// A stop whose start was still waiting: that start is taken out of the
    /// queue and neither runs (nothing was opened, nothing to close).
    Withdrawn,
}

/// One command waiting or running.
struct Job<T> {
    /// Its place in arrival order, all knockers together.
    seq: u64,
    kind: RunKind,
    /// The command; taken when it begins.
    task: Option<T>,
}

impl<T> Job<T> {
    fn begun(&self) -> bool {
        self.task.is_none()
    }
}

/// The scheduling rule over commands of type `T`, pure.
pub(crate) struct Queue<T> {
    /// Most commands running at once (`max_commands`); a reload may change it.
    max: usize,
    /// Most commands waiting before a start is dropped ([`QUEUE`]).
    limit: usize,
    /// Each knocker's commands in the order asked for; the front one is
    /// running or next. A knocker with none is not here.
    chains: HashMap<Key, VecDeque<Job<T>>>,
    /// Knockers whose front command waits only for a slot, by that
    /// command's arrival: the next to begin is the first.
    ready: BTreeMap<u64, Key>,
    /// Commands begun and not finished.
    running: usize,
    /// Commands not begun, all knockers together.
    waiting: usize,
    /// The next arrival's number.
    next_seq: u64,
    /// Starts dropped since knockd started.
    dropped: u64,
    /// Starts withdrawn by their stop since knockd started.
    withdrawn: u64,
}

impl<T> Queue<T> {
    pub(crate) fn new(max: usize, limit: usize) -> Queue<T> {
        Queue {
            max,
            limit,
            chains: HashMap::new(),
            ready: BTreeMap::new(),
            running: 0,
            waiting: 0,
            next_seq: 0,
            dropped: 0,
            withdrawn: 0,
        }
    }

    /// A reload changed `max_commands`: commands already running go on.
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Starts withdrawn by their stop so far.
    pub(crate) fn withdrawn(&self) -> u64 {
        self.withdrawn
    }

    /// Whether no command is running or waiting.
    #[cfg(test)]
    fn is_idle(&self) -> bool {
        self.chains.is_empty()
    }

    /// `task`, knocker `key`'s `kind` command, asked for now. Decided at
    /// once, so the caller knows whether a start will ever have run.
    pub(crate) fn submit(&mut self, key: Key, kind: RunKind, task: T) -> Admission {
        if kind == RunKind::Stop && self.withdraw_start(&key) {
            self.withdrawn += 1;
            return Admission::Withdrawn;
        }
        if kind == RunKind::Start && self.waiting >= self.limit {
            self.dropped += 1;
            return Admission::Dropped {
                so_far: self.dropped,
            };
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.waiting += 1;
        let chain = self.chains.entry(key.clone()).or_default();
        if chain.is_empty() {
            self.ready.insert(seq, key);
        }
        chain.push_back(Job {
            seq,
            kind,
            task: Some(task),
        });
        Admission::Queued
    }

    /// If `key`'s last command is a start not begun, takes it out.
    fn withdraw_start(&mut self, key: &Key) -> bool {
        let Some(chain) = self.chains.get_mut(key) else {
            return false;
        };
        let waiting_start = chain
            .back()
            .is_some_and(|job| job.kind == RunKind::Start && !job.begun());
        if !waiting_start {
            return false;
        }
        if let Some(job) = chain.pop_back() {
            // A front that had not begun was in `ready`.
            self.ready.remove(&job.seq);
        }
        self.waiting -= 1;
        if chain.is_empty() {
            self.chains.remove(key);
        }
        true
    }

    /// The next command to begin, if a slot is free and one may: the
    /// earliest asked for among knockers with nothing running.
    pub(crate) fn next(&mut self) -> Option<(Key, T)> {
        if self.running >= self.max {
            return None;
        }
        let (_, key) = self.ready.pop_first()?;
        let task = self
            .chains
            .get_mut(&key)
            .and_then(|chain| chain.front_mut())
            .and_then(|job| job.task.take())?;
        self.waiting -= 1;
        self.running += 1;
        Some((key, task))
    }

    /// `key`'s running command finished: its next one (if any) may begin.
    pub(crate) fn finished(&mut self, key: &Key) {
        let Some(chain) = self.chains.get_mut(key) else {
            return;
        };
        if !chain.front().is_some_and(Job::begun) {
            return;
        }
        chain.pop_front();
        self.running -= 1;
        match chain.front() {
            Some(job) => {
                self.ready.insert(job.seq, key.clone());
            }
            None => {
                self.chains.remove(key);
            }
        }
    }

    /// At exit: every start not begun is dropped (their stops, asked for
    /// before this, were withdrawn with them; a door without stop owes
    /// none). Returns how many.
    pub(crate) fn drop_waiting_starts(&mut self) -> u64 {
        let mut dropped = 0;
        let mut ready = BTreeMap::new();
        self.chains.retain(|key, chain| {
            let before = chain.len();
            chain.retain(|job| job.begun() || job.kind == RunKind::Stop);
            dropped += (before - chain.len()) as u64;
            if let Some(job) = chain.front().filter(|job| !job.begun()) {
                ready.insert(job.seq, key.clone());
            }
            !chain.is_empty()
        });
        self.ready = ready;
        self.waiting -= dropped as usize;
        dropped
    }
}

/// A command as the runner holds it: any future, run on a task of its own.
pub(crate) type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The [`Queue`] carried out: each command begun on a task of its own.
pub(crate) struct Runner {
    queue: Queue<Task>,
    /// The commands running.
    tasks: tokio::task::JoinSet<()>,
    /// Which knocker each running task is for.
    keys: HashMap<tokio::task::Id, Key>,
}

impl Runner {
    /// A runner of at most `max` commands at once.
    pub(crate) fn new(max: usize) -> Runner {
        Runner {
            queue: Queue::new(max, QUEUE),
            tasks: tokio::task::JoinSet::new(),
            keys: HashMap::new(),
        }
    }

    /// The rule, to ask it or change its limit.
    pub(crate) fn queue(&mut self) -> &mut Queue<Task> {
        &mut self.queue
    }

    /// Hands `task` to the queue; nothing begins until [`Runner::begin`].
    pub(crate) fn submit(&mut self, key: Key, kind: RunKind, task: Task) -> Admission {
        self.queue.submit(key, kind, task)
    }

    /// Begins every command that may begin now.
    pub(crate) fn begin(&mut self) {
        while let Some((key, task)) = self.queue.next() {
            let handle = self.tasks.spawn(task);
            self.keys.insert(handle.id(), key);
        }
    }

    /// Whether a command is running (and [`Runner::reap`] has one to wait for).
    pub(crate) fn is_busy(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Waits for a running command to finish and begins what may follow it.
    /// Cancel-safe: a finish not yet seen is seen at the next call.
    pub(crate) async fn reap(&mut self) {
        let Some(done) = self.tasks.join_next_with_id().await else {
            return;
        };
        // A command's task that panicked is finished all the same.
        let id = match done {
            Ok((id, ())) => id,
            Err(err) => err.id(),
        };
        if let Some(key) = self.keys.remove(&id) {
            self.queue.finished(&key);
        }
        self.begin();
    }

    /// Runs everything queued to its end.
    pub(crate) async fn finish(&mut self) {
        self.begin();
        while self.is_busy() {
            self.reap().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(door: &str, src: &str) -> Key {
        (Arc::from(door), src.parse().unwrap())
    }

    fn begin_all(queue: &mut Queue<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| queue.next().map(|(_, task)| task)).collect()
    }

    #[test]
    fn a_stop_waits_for_its_start_and_a_start_for_the_previous_stop() {
        let mut queue = Queue::new(8, 8);
        let a = key("ssh", "192.0.2.7");
        assert_eq!(
            queue.submit(a.clone(), RunKind::Start, "start 1"),
            Admission::Queued
        );
        assert_eq!(begin_all(&mut queue), ["start 1"]);
        queue.submit(a.clone(), RunKind::Stop, "stop 1");
        assert_eq!(
            begin_all(&mut queue),
            [] as [&str; 0],
            "the start still runs"
        );
        queue.finished(&a);
        assert_eq!(begin_all(&mut queue), ["stop 1"]);
        queue.submit(a.clone(), RunKind::Start, "start 2");
        assert_eq!(
            begin_all(&mut queue),
            [] as [&str; 0],
            "the stop still runs"
        );
        queue.finished(&a);
        assert_eq!(begin_all(&mut queue), ["start 2"]);
        queue.finished(&a);
        assert!(queue.is_idle());
    }

    #[test]
    fn at_most_max_run_and_the_others_begin_in_arrival_order() {
        let mut queue = Queue::new(2, 8);
        let [a, b, c, d] =
            ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"].map(|s| key("ssh", s));
        queue.submit(a.clone(), RunKind::Start, "a");
        queue.submit(b.clone(), RunKind::Start, "b");
        queue.submit(c.clone(), RunKind::Start, "c");
        queue.submit(d.clone(), RunKind::Start, "d");
        assert_eq!(begin_all(&mut queue), ["a", "b"]);
        queue.submit(a.clone(), RunKind::Stop, "a stop");
        queue.finished(&b);
        assert_eq!(begin_all(&mut queue), ["c"]);
        queue.finished(&a);
        // "a stop" came after "d", and only now may begin: "d" is first.
        assert_eq!(begin_all(&mut queue), ["d"]);
        queue.finished(&c);
        assert_eq!(begin_all(&mut queue), ["a stop"]);
    }

    #[test]
    fn a_full_queue_drops_starts_counting_them_but_never_a_stop() {
        let mut queue = Queue::new(1, 2);
        let keys: Vec<Key> = (1..=5)
            .map(|i| key("ssh", &format!("192.0.2.{i}")))
            .collect();
        queue.submit(keys[0].clone(), RunKind::Start, "1");
        assert_eq!(begin_all(&mut queue), ["1"]);
        queue.submit(keys[1].clone(), RunKind::Start, "2");
        queue.submit(keys[2].clone(), RunKind::Start, "3");
        assert_eq!(
            queue.submit(keys[3].clone(), RunKind::Start, "4"),
            Admission::Dropped { so_far: 1 }
        );
        assert_eq!(
            queue.submit(keys[4].clone(), RunKind::Start, "5"),
            Admission::Dropped { so_far: 2 }
        );
        assert_eq!(
            queue.submit(keys[0].clone(), RunKind::Stop, "1 stop"),
            Admission::Queued,
            "a stop goes past the limit"
        );
    }

    #[test]
    fn a_stop_whose_start_has_not_begun_withdraws_it_and_neither_runs() {
        let mut queue = Queue::new(1, 8);
        let (a, b) = (key("ssh", "192.0.2.1"), key("ssh", "192.0.2.2"));
        queue.submit(a.clone(), RunKind::Start, "a");
        queue.submit(b.clone(), RunKind::Start, "b");
        assert_eq!(begin_all(&mut queue), ["a"]);
        assert_eq!(
            queue.submit(b.clone(), RunKind::Stop, "b stop"),
            Admission::Withdrawn
        );
        assert_eq!(
            queue.submit(a.clone(), RunKind::Stop, "a stop"),
            Admission::Queued,
            "a's start has begun: its stop is owed"
        );
        assert_eq!(queue.withdrawn(), 1);
        queue.finished(&a);
        assert_eq!(begin_all(&mut queue), ["a stop"]);
        queue.finished(&a);
        assert!(queue.is_idle());
    }

    #[test]
    fn at_exit_starts_not_begun_are_dropped_and_stops_stay() {
        let mut queue = Queue::new(1, 8);
        let (a, b, c) = (
            key("ssh", "192.0.2.1"),
            key("ssh", "192.0.2.2"),
            key("web", "192.0.2.3"),
        );
        queue.submit(a.clone(), RunKind::Start, "a");
        assert_eq!(begin_all(&mut queue), ["a"]);
        queue.submit(b.clone(), RunKind::Start, "b");
        queue.submit(c.clone(), RunKind::Start, "c");
        queue.submit(a.clone(), RunKind::Stop, "a stop");
        assert_eq!(queue.drop_waiting_starts(), 2);
        queue.finished(&a);
        assert_eq!(begin_all(&mut queue), ["a stop"]);
        queue.finished(&a);
        assert!(queue.is_idle());
    }
}
