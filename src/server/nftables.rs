//! The nftables door action on the server's side: each door's
//! `[door.nftables]` sets, checked when the server starts (and by
//! `--check`), and one thread that owns the netlink socket and carries out
//! what the doors ask, a batch per wake-up (see [`crate::nft::netlink`]).
//!
//! The capture loop only ever calls [`Nftables::submit`], which never waits:
//! a full queue drops the change and says so. The kernel keeps the
//! elements' timeouts, so a knockd that dies leaves no door open for longer
//! than the door's `timeout`.

use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::nftables::NftablesAction;
use crate::config::server::ServerConfig;
use crate::core::units::format_duration;
use crate::nft::netlink::{Change, Kernel, Op, Problem, SetRef};
use crate::server::commands::RunKind;
use crate::server::log::Log;
use crate::server::{lock, now};

/// Changes waiting for the thread; past this a change is dropped (and logged).
const QUEUE: usize = 4096;
/// Changes carried out in one batch at most.
const BATCH: usize = 256;

/// One change for the thread: door `door` wants `op` for `src`.
struct Job {
    /// The door, by its index in [`Nftables::doors`].
    door: usize,
    /// The knocker (canonical: an IPv4-mapped address is IPv4).
    src: IpAddr,
    /// In (with the door's timeout) or out.
    op: Op,
}

/// One door's sets.
#[derive(Clone)]
struct Door {
    /// The door's name, as runs name it.
    name: Arc<str>,
    /// Its sets and timeout.
    action: NftablesAction,
}

/// Every door's nftables sets and the thread that writes them.
pub(crate) struct Nftables {
    /// The doors that have `[door.nftables]`, in config order.
    doors: Arc<Vec<Door>>,
    /// Log what would be done instead of doing it (`--dry-run`).
    dry_run: bool,
    /// The socket, opened by [`Nftables::new`] and taken by [`Nftables::start`].
    kernel: Option<Kernel>,
    /// The thread's queue and handle, once started.
    worker: Option<(SyncSender<Job>, JoinHandle<()>)>,
    /// The server's log: the thread's outcomes go there.
    log: Arc<Mutex<Log>>,
}

/// The sentence for the first set of `config`'s doors that is missing or
/// does not fit, asking the kernel through `kernel` (opened if `None` and a
/// door needs it). `--check` and a start both call it.
pub(crate) fn check_sets(config: &ServerConfig, kernel: &mut Option<Kernel>) -> Result<(), String> {
    for door in &config.doors {
        let Some(action) = &door.nftables else {
            continue;
        };
        let kernel = match kernel {
            Some(kernel) => kernel,
            None => kernel.insert(Kernel::open().map_err(|err| {
                format!(
                    "door {}: cannot talk to nftables over netlink: {err}",
                    door.door.name
                )
            })?),
        };
        let sets: Vec<&SetRef> = action.sets().collect();
        for set in &sets {
            kernel.check(set).map_err(|problem: Problem| {
                format!("door {}: {}", door.door.name, problem.describe(set, &sets))
            })?;
        }
    }
    Ok(())
}

impl Nftables {
    /// Opens the netlink socket and checks every door's sets, when a door
    /// has them (in a dry run nothing is asked). Call before dropping
    /// privileges; a set that is missing or does not fit refuses the start
    /// with the sentence [`check_sets`] gives.
    pub(crate) fn new(
        config: &ServerConfig,
        dry_run: bool,
        log: Arc<Mutex<Log>>,
    ) -> anyhow::Result<Nftables> {
        let doors: Vec<Door> = config
            .doors
            .iter()
            .filter_map(|d| {
                d.nftables.as_ref().map(|action| Door {
                    name: Arc::from(d.door.name.as_str()),
                    action: action.clone(),
                })
            })
            .collect();
        let mut kernel = None;
        if !dry_run {
            check_sets(config, &mut kernel).map_err(anyhow::Error::msg)?;
        }
        Ok(Nftables {
            doors: Arc::new(doors),
            dry_run,
            kernel,
            worker: None,
            log,
        })
    }

    /// Whether any door puts knockers in nftables sets (knockd then keeps
    /// CAP_NET_ADMIN when it drops root).
    pub(crate) fn needed(config: &ServerConfig) -> bool {
        config.doors.iter().any(|d| d.nftables.is_some())
    }

    /// Starts the thread that owns the socket, if a door needs it.
    pub(crate) fn start(&mut self) {
        let Some(kernel) = self.kernel.take() else {
            return;
        };
        let (sender, receiver) = mpsc::sync_channel(QUEUE);
        let (doors, log) = (self.doors.clone(), self.log.clone());
        let spawned = std::thread::Builder::new()
            .name("nftables".into())
            .spawn(move || run(kernel, &doors, &receiver, &log));
        match spawned {
            Ok(handle) => self.worker = Some((sender, handle)),
            Err(err) => {
                lock(&self.log).note(now(), &format!("cannot start the nftables thread: {err}"))
            }
        }
    }

    /// Puts `src` in the sets of the door named `name` (a start) or takes
    /// it out (a stop), if the door has sets; never waits. A knocker of a
    /// family the door has no set for is logged.
    pub(crate) fn submit(&self, name: &str, src: IpAddr, kind: RunKind, at: Duration) {
        let Some(index) = self.doors.iter().position(|d| *d.name == *name) else {
            return;
        };
        let door = &self.doors[index];
        let op = match kind {
            RunKind::Start => Op::Add(door.action.timeout),
            RunKind::Stop => Op::Remove,
        };
        let src = src.to_canonical();
        let Some(set) = door.action.set_for(src) else {
            let family = if src.is_ipv4() { "IPv4" } else { "IPv6" };
            let line = format!(
                "{name}: {src} is not put in nftables: the door has no set for {family} knockers"
            );
            lock(&self.log).note(at, &line);
            return;
        };
        if self.dry_run {
            let line = match op {
                Op::Add(timeout) => format!(
                    "{name}: would add {src} to nftables set {set} (timeout {})",
                    format_duration(timeout)
                ),
                Op::Remove => format!("{name}: would remove {src} from nftables set {set}"),
            };
            lock(&self.log).note(at, &line);
            return;
        }
        let Some((sender, _)) = &self.worker else {
            return;
        };
        let job = Job {
            door: index,
            src,
            op,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = sender.try_send(job) {
            let line = format!("{name}: {src} dropped: the nftables queue is full");
            lock(&self.log).note(at, &line);
        }
    }

    /// Closes the queue and waits for the thread to carry out what is in it
    /// (each batch is bounded by the socket's answer wait).
    pub(crate) fn finish(&mut self) {
        if let Some((sender, handle)) = self.worker.take() {
            drop(sender);
            let _ = handle.join();
        }
    }

    /// Closes the queue; the thread carries out what is left and ends by
    /// itself (a reload: the new doors' thread takes over at once).
    pub(crate) fn retire(&mut self) {
        self.worker.take();
    }
}

/// The thread: waits for a change, takes whatever else is queued (up to
/// [`BATCH`]), carries them out as one transaction and logs each. A batch
/// the kernel refuses is tried change by change, so one deleted set does
/// not stop the other doors.
fn run(mut kernel: Kernel, doors: &[Door], receiver: &Receiver<Job>, log: &Mutex<Log>) {
    while let Ok(first) = receiver.recv() {
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let changes: Vec<(Change<'_>, &Door)> = jobs
            .iter()
            .filter_map(|job| {
                let door = &doors[job.door];
                let set = door.action.set_for(job.src)?;
                Some((
                    Change {
                        set,
                        addr: job.src,
                        op: job.op,
                    },
                    door,
                ))
            })
            .collect();
        let all: Vec<Change<'_>> = changes.iter().map(|(c, _)| *c).collect();
        let outcomes: Vec<Result<(), String>> = match kernel.apply(&all) {
            Ok(()) => all.iter().map(|_| Ok(())).collect(),
            Err(_) if all.len() > 1 => all
                .iter()
                .map(|c| {
                    kernel
                        .apply(std::slice::from_ref(c))
                        .map_err(|e| e.to_string())
                })
                .collect(),
            Err(err) => vec![Err(err.to_string())],
        };
        let mut log = lock(log);
        let at = now();
        for ((change, door), outcome) in changes.iter().zip(outcomes) {
            log.note(at, &describe(&door.name, change, outcome));
        }
    }
}

/// The log line of one change and its outcome.
fn describe(door: &str, change: &Change<'_>, outcome: Result<(), String>) -> String {
    let (src, set) = (change.addr, change.set);
    match (change.op, outcome) {
        (Op::Add(timeout), Ok(())) => format!(
            "{door}: {src} added to nftables set {set} (timeout {})",
            format_duration(timeout)
        ),
        (Op::Remove, Ok(())) => format!("{door}: {src} removed from nftables set {set}"),
        (Op::Add(_), Err(err)) => format!("{door}: cannot add {src} to nftables set {set}: {err}"),
        (Op::Remove, Err(err)) => {
            format!("{door}: cannot remove {src} from nftables set {set}: {err}")
        }
    }
}
