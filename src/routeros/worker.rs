//! One router's worker for one door: a bounded queue of address-list
//! updates, sent in order over one kept-alive connection (RouterOS runs a
//! user's requests one at a time anyway).
//!
//! Entries with a timeout live in the router's RAM: a reboot drops them while
//! the knocker still expects an open door. So the worker keeps a [`Ledger`]
//! of the knockers it put on the list and until when, asks the router's
//! uptime right after its first entry, every `uptime_check` while entries
//! are open and after a failed request (a reconnect), and when the router
//! booted after an entry was made (or its uptime went backwards) puts each
//! knocker still open back with the time it has left ([`Outcome::Restored`]).
//!
//! [`Worker::submit`] never waits: a full queue refuses the update at once.
//! Each outcome is reported as a typed [`Report`] to the callback the worker
//! was given; the worker itself never logs. Nothing it reports holds a
//! password (the REST client keeps it out of its errors).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::routeros::rest::{AddressList, Entry, Outcome as Done, RestError, comment_for};
use crate::routeros::timeout;

/// Updates waiting per router before new ones are refused.
pub const QUEUE: usize = 256;

/// What a router update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Put the knocker on the list (or refresh its timeout).
    Grant,
    /// Take the knocker off the list (the door closed).
    Remove,
}

/// Where a door's updates go on a router, and for how long they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The door's name: the entries' comment, and what reports name.
    pub door: Arc<str>,
    /// The address list's name.
    pub list: String,
    /// The entries' timeout on the router (the router removes them itself).
    pub timeout: Duration,
    /// Retries of an update stop this long after it was submitted.
    pub retry: Duration,
    /// How often the router's uptime is asked while entries are open.
    pub uptime_check: Duration,
}

/// What a router reboot would lose, and how one is seen: the knockers this
/// door's worker put on the router's list, each with when it was put there
/// and when its entry runs out, and the router's uptime when last asked.
/// Shared, so that a reload hands it to the new worker of the same door and
/// router.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Knocker -> its entry on the router.
    open: HashMap<IpAddr, Granted>,
    /// The router's uptime at the last answer.
    uptime: Option<Duration>,
}

/// One knocker's entry as this side knows it.
#[derive(Debug, Clone, Copy)]
struct Granted {
    /// When the router last confirmed it (added, refreshed or restored).
    at: Instant,
    /// When the router removes it by itself.
    expires: Instant,
}

/// A [`Ledger`] as workers share it; locked briefly, never across a request.
pub type SharedLedger = Arc<Mutex<Ledger>>;

impl Ledger {
    /// Forgets entries that ran out; whether any is still open.
    fn prune(&mut self, now: Instant) -> bool {
        self.open.retain(|_, granted| granted.expires > now);
        !self.open.is_empty()
    }

    /// The router says it has been up `uptime` at `now`: the knockers whose
    /// entries a reboot took, each with the time it has left. An entry is
    /// lost when the router booted after it was put there, or whenever the
    /// uptime went backwards since the last answer. (Putting back one that
    /// was not lost only sets its timeout again: harmless.)
    fn uptime_seen(&mut self, uptime: Duration, now: Instant) -> Vec<(IpAddr, Duration)> {
        let went_back = self
            .uptime
            .replace(uptime)
            .is_some_and(|before| uptime < before);
        self.prune(now);
        let booted = now.checked_sub(uptime);
        let mut lost: Vec<(IpAddr, Duration)> = self
            .open
            .iter()
            .filter(|(_, g)| went_back || booted.is_some_and(|booted| g.at < booted))
            .map(|(src, g)| (*src, g.expires - now))
            .collect();
        lost.sort();
        lost
    }

    /// The router confirmed `src`'s entry at `now`, running out at `expires`.
    fn granted(&mut self, src: IpAddr, now: Instant, expires: Instant) {
        self.open.insert(src, Granted { at: now, expires });
    }
}

/// Sleeps until `at`; forever when `None` (a disabled `select!` branch).
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A time left as a router timeout: whole seconds, rounded up, at least 1 s.
fn whole_seconds(left: Duration) -> Duration {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// How long asking the uptime (and each restore) may take: short, since
/// updates wait behind it.
const CHECK_LIMIT: Duration = Duration::from_secs(5);

/// What became of one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new entry on the list.
    Added {
        /// The address list.
        list: String,
        /// The entry's timeout on the router.
        timeout: Duration,
        /// The router's id of the entry.
        id: String,
    },
    /// The knocker was on the list already: its timeout was set again.
    Refreshed {
        /// The address list.
        list: String,
        /// The timeout set again.
        timeout: Duration,
        /// The router's id of the entry.
        id: String,
    },
    /// The knocker's entries were taken off the list.
    Removed {
        /// The address list.
        list: String,
        /// How many (an address may have been on the list twice).
        entries: usize,
    },
    /// The router rebooted (its uptime went backwards) and lost its dynamic
    /// entries: the knocker, still open, was put back with the time it had left.
    Restored {
        /// The address list.
        list: String,
        /// The time left, now the entry's timeout.
        timeout: Duration,
        /// The router's id of the new entry.
        id: String,
        /// The router's uptime after the reboot.
        uptime: Duration,
    },
    /// The router refused or could not be reached; the update is given up.
    Failed(RestError),
    /// The router refused again for the reason its last [`Outcome::Failed`]
    /// gave (a permission, password or certificate problem), which is
    /// reported once until it is fixed.
    RefusedAgain,
    /// The update was never sent.
    Dropped(Dropped),
}

/// Why an update was never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The router's queue was full.
    QueueFull {
        /// Updates refused so since the start, this one included.
        so_far: u64,
    },
    /// It waited in the queue (the router failing or slow) past its retry time.
    Expired,
}

/// The detail of a report: one sentence, no secrets.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Added { list, timeout, id } => write!(
                f,
                "added to list {list} with timeout {} ({id})",
                timeout::format(*timeout)
            ),
            Outcome::Refreshed { list, timeout, id } => write!(
                f,
                "already on list {list}: timeout set again to {} ({id})",
                timeout::format(*timeout)
            ),
            Outcome::Removed { list, entries } => write!(
                f,
                "removed from list {list} ({entries} entr{})",
                if *entries == 1 { "y" } else { "ies" }
            ),
            Outcome::Restored {
                list,
                timeout,
                id,
                uptime,
            } => write!(
                f,
                "the router rebooted (up {}): put back on list {list} with the {} it had left ({id})",
                timeout::format(*uptime),
                timeout::format(*timeout)
            ),
            Outcome::Failed(err @ RestError::Unavailable { .. }) => {
                write!(f, "{err}; the update is dropped")
            }
            Outcome::Failed(err) => write!(f, "{err}"),
            Outcome::RefusedAgain => f.write_str("refused again (said above)"),
            Outcome::Dropped(Dropped::QueueFull { so_far }) => write!(
                f,
                "queue full ({QUEUE} updates pending): this update is dropped ({so_far} so far)"
            ),
            Outcome::Dropped(Dropped::Expired) => {
                f.write_str("not sent: it waited in the queue past the door's retry time")
            }
        }
    }
}

/// One update's outcome, as the worker tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The door whose knocker it was.
    pub door: Arc<str>,
    /// The knocker.
    pub src: IpAddr,
    /// The router's URL as configured.
    pub router: Arc<str>,
    /// What became of the update.
    pub outcome: Outcome,
}

/// Where a worker's reports go (the server's log).
pub type Reporter = Arc<dyn Fn(Report) + Send + Sync>;

/// One update waiting for its router.
struct Job {
    /// Add/refresh or remove.
    change: Change,
    /// The knocker, IPv4-mapped addresses already made IPv4.
    src: IpAddr,
    /// Retries stop here: the submit time plus the target's `retry`.
    deadline: Instant,
}

/// A running worker: its queue, and the task that empties it.
pub struct Worker {
    /// The router's URL, for reports.
    router: Arc<str>,
    /// The door's name, for reports.
    door: Arc<str>,
    /// How long each update may be tried.
    retry: Duration,
    /// The queue; dropped by [`Worker::close`], which ends the task.
    sender: mpsc::Sender<Job>,
    /// Updates refused because the queue was full, since the start.
    dropped: AtomicU64,
    /// The task, awaited after [`Worker::close`].
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Starts the worker of `client` (its router and password) for
    /// `target`, keeping `ledger`; must run inside a tokio runtime.
    pub fn spawn(
        client: AddressList,
        target: Target,
        ledger: SharedLedger,
        report: Reporter,
    ) -> Worker {
        let (sender, jobs) = mpsc::channel(QUEUE);
        let router: Arc<str> = Arc::from(client.router.url.as_str());
        let door = target.door.clone();
        let retry = target.retry;
        let worker = Work {
            client,
            target,
            router: router.clone(),
            ledger,
            report,
        };
        let task = tokio::spawn(worker.run(jobs));
        Worker {
            router,
            door,
            retry,
            sender,
            dropped: AtomicU64::new(0),
            task,
        }
    }

    /// Queues `change` of `src`; never waits. A full queue refuses it: the
    /// report of that is returned, for the caller to log at its own time.
    pub fn submit(&self, src: IpAddr, change: Change) -> Result<(), Box<Report>> {
        let src = src.to_canonical();
        let job = Job {
            change,
            src,
            deadline: Instant::now() + self.retry,
        };
        self.sender.try_send(job).map_err(|_| {
            let so_far = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            Box::new(Report {
                door: self.door.clone(),
                src,
                router: self.router.clone(),
                outcome: Outcome::Dropped(Dropped::QueueFull { so_far }),
            })
        })
    }

    /// Closes the queue: the task sends what is queued, then ends.
    pub fn close(self) -> tokio::task::JoinHandle<()> {
        self.task
    }
}

/// What a worker's task holds.
struct Work {
    client: AddressList,
    target: Target,
    /// The router's URL, for reports.
    router: Arc<str>,
    ledger: SharedLedger,
    report: Reporter,
}

impl Work {
    /// The worker's task: the queue's updates, in order, over one
    /// connection, and the uptime checks while entries are open: one right
    /// after the first entry and after a failed request (a reconnect), then
    /// every `uptime_check`.
    async fn run(self, mut jobs: mpsc::Receiver<Job>) {
        // A permission or password problem is said once, as one sentence, until it is fixed.
        let mut denied_said = false;
        let mut next_check: Option<Instant> = None;
        loop {
            let open = self.lock().prune(Instant::now());
            let due = next_check.filter(|_| open);
            let job = tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                () = sleep_until_some(due), if due.is_some() => {
                    self.check_uptime().await;
                    next_check = Some(Instant::now() + self.target.uptime_check);
                    continue;
                }
            };
            let outcome = self.update(&job, &mut denied_said).await;
            match &outcome {
                Outcome::Added { .. } | Outcome::Refreshed { .. } if next_check.is_none() => {
                    next_check = Some(Instant::now());
                }
                Outcome::Failed(RestError::Unavailable { .. }) => next_check = Some(Instant::now()),
                _ => {}
            }
            self.tell(job.src, outcome);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tell(&self, src: IpAddr, outcome: Outcome) {
        (self.report)(Report {
            door: self.target.door.clone(),
            src,
            router: self.router.clone(),
            outcome,
        });
    }

    /// Sends one update and keeps the ledger: what it became.
    async fn update(&self, job: &Job, denied_said: &mut bool) -> Outcome {
        if Instant::now() >= job.deadline {
            // The router was failing or slow while this waited: its retry time is used up.
            return Outcome::Dropped(Dropped::Expired);
        }
        let target = &self.target;
        let result = match job.change {
            Change::Grant => {
                self.client
                    .grant(&self.entry(job.src, target.timeout), job.deadline)
                    .await
            }
            Change::Remove => {
                self.client
                    .remove(job.src, &target.list, job.deadline)
                    .await
            }
        };
        let list = target.list.clone();
        match result {
            Ok(done) => {
                *denied_said = false;
                let mut ledger = self.lock();
                match done {
                    Done::Added(id) => {
                        let now = Instant::now();
                        ledger.granted(job.src, now, now + target.timeout);
                        Outcome::Added {
                            list,
                            timeout: target.timeout,
                            id,
                        }
                    }
                    Done::Refreshed(id) => {
                        let now = Instant::now();
                        ledger.granted(job.src, now, now + target.timeout);
                        Outcome::Refreshed {
                            list,
                            timeout: target.timeout,
                            id,
                        }
                    }
                    Done::Removed(entries) => {
                        ledger.open.remove(&job.src);
                        Outcome::Removed { list, entries }
                    }
                }
            }
            Err(RestError::Denied(_) | RestError::Certificate(_)) if *denied_said => {
                Outcome::RefusedAgain
            }
            Err(err) => {
                *denied_said = matches!(err, RestError::Denied(_) | RestError::Certificate(_));
                Outcome::Failed(err)
            }
        }
    }

    /// Asks the router's uptime; after a reboot puts back every knocker still
    /// open, with the time it has left.
    async fn check_uptime(&self) {
        let deadline = Instant::now() + CHECK_LIMIT;
        let Ok(uptime) = self.client.uptime(deadline).await else {
            // Said by the updates themselves if the router stays unreachable.
            return;
        };
        let back = self.lock().uptime_seen(uptime, Instant::now());
        for (src, left) in back {
            let timeout = whole_seconds(left);
            let outcome = match self
                .client
                .grant(&self.entry(src, timeout), Instant::now() + CHECK_LIMIT)
                .await
            {
                Ok(Done::Added(id) | Done::Refreshed(id)) => {
                    let now = Instant::now();
                    self.lock().granted(src, now, now + timeout);
                    Outcome::Restored {
                        list: self.target.list.clone(),
                        timeout,
                        id,
                        uptime,
                    }
                }
                Ok(Done::Removed(_)) => continue,
                Err(err) => Outcome::Failed(err),
            };
            self.tell(src, outcome);
        }
    }

    fn entry(&self, src: IpAddr, timeout: Duration) -> Entry {
        Entry {
            list: self.target.list.clone(),
            address: src,
            timeout,
            comment: comment_for(&self.target.door),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_reads_as_one_sentence() {
        let list = || "knocked".to_string();
        let timeout = Duration::from_secs(3600);
        let cases = [
            (
                Outcome::Added {
                    list: list(),
                    timeout,
                    id: "*1".into(),
                },
                "added to list knocked with timeout 1h (*1)",
            ),
            (
                Outcome::Refreshed {
                    list: list(),
                    timeout,
                    id: "*1".into(),
                },
                "already on list knocked: timeout set again to 1h (*1)",
            ),
            (
                Outcome::Removed {
                    list: list(),
                    entries: 2,
                },
                "removed from list knocked (2 entries)",
            ),
            (
                Outcome::Dropped(Dropped::QueueFull { so_far: 3 }),
                "queue full (256 updates pending): this update is dropped (3 so far)",
            ),
            (
                Outcome::Failed(RestError::Denied("the router refused user knockr".into())),
                "the router refused user knockr",
            ),
        ];
        for (outcome, sentence) in cases {
            assert_eq!(outcome.to_string(), sentence);
        }
    }

    #[test]
    fn a_reboot_puts_back_what_is_still_open_with_its_time_left() {
        let t0 = Instant::now() + Duration::from_secs(7200);
        let secs = Duration::from_secs;
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let mut ledger = Ledger::default();
        ledger.granted(a, t0, t0 + secs(3600));
        ledger.granted(b, t0, t0 + secs(10));
        let up = secs(86_400);
        assert!(
            ledger.uptime_seen(up, t0).is_empty(),
            "up for a day: nothing lost"
        );
        let later = t0 + secs(60);
        assert!(
            ledger.uptime_seen(up + secs(60), later).is_empty(),
            "uptime went on"
        );
        assert_eq!(ledger.open.len(), 1, "the expired entry is forgotten");
        // Backwards: a reboot, whatever the clocks say.
        assert_eq!(ledger.uptime_seen(secs(30), later), [(a, secs(3540))]);
        // Restored at `later`: a router that booted 30 s before lost nothing since.
        ledger.granted(a, later, t0 + secs(3600));
        assert!(ledger.uptime_seen(secs(31), later + secs(1)).is_empty());
        // No earlier answer, but the router booted after the entry was made.
        let mut fresh = Ledger::default();
        fresh.granted(a, t0, t0 + secs(3600));
        assert_eq!(fresh.uptime_seen(secs(5), t0 + secs(10)), [(a, secs(3590))]);
        assert_eq!(whole_seconds(Duration::from_millis(3_539_001)), secs(3540));
        assert_eq!(whole_seconds(Duration::ZERO), secs(1));
    }
}
