//! One router's worker for one door: a bounded queue of address-list
//! updates, sent in order over one kept-alive connection (RouterOS runs a
//! user's requests one at a time anyway).
//!
//! [`Worker::submit`] never waits: a full queue refuses the update at once.
//! Each outcome is reported as a typed [`Report`] to the callback the worker
//! was given; the worker itself never logs. Nothing it reports holds a
//! password (the REST client keeps it out of its errors).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

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
    /// `target`; must run inside a tokio runtime.
    pub fn spawn(client: AddressList, target: Target, report: Reporter) -> Worker {
        let (sender, jobs) = mpsc::channel(QUEUE);
        let router: Arc<str> = Arc::from(client.router.url.as_str());
        let door = target.door.clone();
        let retry = target.retry;
        let task = tokio::spawn(work(client, target, router.clone(), jobs, report));
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

/// The worker's task: the queue's updates, in order, over one connection.
async fn work(
    client: AddressList,
    target: Target,
    router: Arc<str>,
    mut jobs: mpsc::Receiver<Job>,
    report: Reporter,
) {
    // A permission or password problem is said once, as one sentence, until it is fixed.
    let mut denied_said = false;
    while let Some(job) = jobs.recv().await {
        let outcome = if Instant::now() >= job.deadline {
            // The router was failing or slow while this waited: its retry time is used up.
            Outcome::Dropped(Dropped::Expired)
        } else {
            let result = match job.change {
                Change::Grant => {
                    let entry = Entry {
                        list: target.list.clone(),
                        address: job.src,
                        timeout: target.timeout,
                        comment: comment_for(&target.door),
                    };
                    client.grant(&entry, job.deadline).await
                }
                Change::Remove => client.remove(job.src, &target.list, job.deadline).await,
            };
            let list = target.list.clone();
            match result {
                Ok(done) => {
                    denied_said = false;
                    match done {
                        Done::Added(id) => Outcome::Added {
                            list,
                            timeout: target.timeout,
                            id,
                        },
                        Done::Refreshed(id) => Outcome::Refreshed {
                            list,
                            timeout: target.timeout,
                            id,
                        },
                        Done::Removed(entries) => Outcome::Removed { list, entries },
                    }
                }
                Err(RestError::Denied(_) | RestError::Certificate(_)) if denied_said => {
                    Outcome::RefusedAgain
                }
                Err(err) => {
                    denied_said = matches!(err, RestError::Denied(_) | RestError::Certificate(_));
                    Outcome::Failed(err)
                }
            }
        };
        report(Report {
            door: target.door.clone(),
            src: job.src,
            router: router.clone(),
            outcome,
        });
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
}
