//! The RouterOS door action: a door's `[door.routeros]` table, and the
//! workers that put knockers on (and take them off) its routers' address lists.
//!
//! The capture loop only ever calls [`Routers::submit`], which never waits:
//! each router has a bounded queue feeding one async worker (RouterOS runs a
//! user's requests one at a time anyway), and a full queue drops the update
//! and says so. Several routers of a door are updated concurrently. Nothing
//! here may log a password; the REST client itself keeps it out of errors.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::routeros::RouterosAction;
use crate::config::server::ServerConfig;
use crate::routeros::rest::{self, AddressList, Entry, Outcome, RestError, Router};
use crate::routeros::timeout;
use crate::server::log::Log;
use crate::server::now;

/// Updates waiting per router before new ones are dropped.
pub const QUEUE: usize = 256;

/// What a router update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Put the knocker on the list (or refresh its timeout).
    Grant,
    /// Take the knocker off the list (the door closed).
    Remove,
}

/// One update waiting for its router.
struct Job {
    /// Add/refresh or remove.
    change: Change,
    /// The door's name, for the comment and the log.
    door: String,
    /// The knocker, IPv4-mapped addresses already made IPv4.
    src: IpAddr,
    /// The list and the entry's timeout, from the door's action.
    list: String,
    timeout: Duration,
    /// Retries stop here: the knock's time plus the door's `retry`.
    deadline: Instant,
}

/// One router's queue and what the capture loop needs to know about it.
struct Queue {
    url: String,
    sender: mpsc::Sender<Job>,
    /// Updates dropped because the queue was full.
    dropped: Arc<AtomicU64>,
}

/// One door's routers.
struct DoorRouters {
    /// The door's name, as runs name it.
    door: Arc<str>,
    /// The door's list, timeout and retry bound.
    action: RouterosAction,
    /// The clients, made (passwords read) at load time; taken by [`Routers::start`].
    clients: Vec<AddressList>,
    /// The queues, once [`Routers::start`] ran in a runtime, in router order.
    queues: Vec<Queue>,
}

/// Every door's routers: their clients until started, then their queues.
pub struct Routers {
    /// The doors that have routers, in config order.
    doors: Vec<DoorRouters>,
    /// The workers, awaited by [`Routers::finish`].
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// Print what would be sent instead of sending (`--dry-run`).
    dry_run: bool,
    /// The server's log, shared with the workers.
    log: Arc<Mutex<Log>>,
}

impl Routers {
    /// Reads every router's password and prepares its client (no connection
    /// yet); in a dry run nothing is read. Call before dropping privileges.
    pub fn new(
        config: &ServerConfig,
        dry_run: bool,
        log: Arc<Mutex<Log>>,
    ) -> anyhow::Result<Routers> {
        let mut doors = Vec::new();
        for door in &config.doors {
            let Some(action) = &door.routeros else {
                continue;
            };
            let mut clients = Vec::new();
            for router in &action.routers {
                for warning in router.warnings() {
                    lock(&log).note(now(), &warning);
                }
                if !dry_run {
                    let password = crate::config::secret::load_password(&router.password)
                        .map_err(|err| anyhow::anyhow!("router {}: {err}", router.url))?;
                    clients.push(AddressList::new(router, password).map_err(anyhow::Error::msg)?);
                }
            }
            doors.push(DoorRouters {
                door: Arc::from(door.door.name.as_str()),
                action: action.clone(),
                clients,
                queues: Vec::new(),
            });
        }
        Ok(Routers {
            doors,
            workers: Vec::new(),
            dry_run,
            log,
        })
    }

    /// Starts one worker per router; must run inside a tokio runtime.
    pub fn start(&mut self) {
        for door in &mut self.doors {
            for client in std::mem::take(&mut door.clients) {
                let (sender, receiver) = mpsc::channel(QUEUE);
                door.queues.push(Queue {
                    url: client.router.url.clone(),
                    sender,
                    dropped: Arc::default(),
                });
                self.workers
                    .push(tokio::spawn(work(client, receiver, self.log.clone())));
            }
        }
    }

    /// Queues `change` of `src` on every router of the door named `name`, if
    /// it has any; never waits. A full queue drops the update and logs it.
    pub fn submit(&self, name: &str, src: IpAddr, change: Change, at: Duration) {
        let Some(door) = self.doors.iter().find(|d| *d.door == *name) else {
            return;
        };
        let action = &door.action;
        let src = src.to_canonical();
        if self.dry_run {
            for router in &action.routers {
                let line = describe(router, action, name, src, change);
                lock(&self.log).note(at, &format!("{name}: would send to router {line}"));
            }
            return;
        }
        for queue in &door.queues {
            let job = Job {
                change,
                door: name.to_string(),
                src,
                list: action.list.clone(),
                timeout: action.timeout,
                deadline: Instant::now() + action.retry,
            };
            if queue.sender.try_send(job).is_err() {
                let dropped = queue.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                let detail = format!(
                    "queue full ({QUEUE} updates pending): this update is dropped ({dropped} so far)"
                );
                lock(&self.log).router(at, name, src, "dropped", &queue.url, &detail);
            }
        }
    }

    /// The longest retry bound of any door: how long [`Routers::finish`] may wait.
    pub fn longest_retry(&self) -> Duration {
        self.doors
            .iter()
            .map(|d| d.action.retry)
            .max()
            .unwrap_or_default()
    }

    /// Closes the queues and waits for the pending updates to be sent or
    /// given up, at most `limit`.
    pub async fn finish(&mut self, limit: Duration) {
        for door in &mut self.doors {
            door.queues.clear();
        }
        let workers = std::mem::take(&mut self.workers);
        let all = async {
            for worker in workers {
                let _ = worker.await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            lock(&self.log).note(now(), "router updates still pending at exit were abandoned");
        }
    }
}

fn lock(log: &Arc<Mutex<Log>>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a dry run prints: the request that would be sent (no password).
fn describe(
    router: &Router,
    action: &RouterosAction,
    door: &str,
    src: IpAddr,
    change: Change,
) -> String {
    let base = rest::rest_base(&router.url).unwrap_or_else(|_| router.url.clone());
    let path = rest::list_path(src);
    match change {
        Change::Grant => {
            let entry = Entry {
                list: action.list.clone(),
                address: src,
                timeout: action.timeout,
                comment: rest::comment_for(door),
            };
            format!(
                "{}: PUT {base}/{path} {} as user {}",
                router.url,
                rest::add_body(&entry),
                router.user
            )
        }
        Change::Remove => format!(
            "{}: DELETE {base}/{path}/<id of {} on list {}> as user {}",
            router.url,
            rest::stored_address(src),
            action.list,
            router.user
        ),
    }
}

/// One router's worker: its queue's updates, in order, over one connection.
async fn work(client: AddressList, mut jobs: mpsc::Receiver<Job>, log: Arc<Mutex<Log>>) {
    let url = client.router.url.clone();
    // A permission or password problem is said once, as one sentence, until it is fixed.
    let mut denied_said = false;
    while let Some(job) = jobs.recv().await {
        if Instant::now() >= job.deadline {
            // The router was failing or slow while this waited: its retry time is used up.
            let detail = "not sent: it waited in the queue past the door's retry time";
            lock(&log).router(now(), &job.door, job.src, "dropped", &url, detail);
            continue;
        }
        let result = match job.change {
            Change::Grant => {
                let entry = Entry {
                    list: job.list.clone(),
                    address: job.src,
                    timeout: job.timeout,
                    comment: rest::comment_for(&job.door),
                };
                client.grant(&entry, job.deadline).await
            }
            Change::Remove => client.remove(job.src, &job.list, job.deadline).await,
        };
        let mut log = lock(&log);
        let (event, detail) = match result {
            Ok(outcome) => {
                denied_said = false;
                match outcome {
                    Outcome::Added(id) => (
                        "granted",
                        format!(
                            "added to list {} with timeout {} ({id})",
                            job.list,
                            timeout::format(job.timeout)
                        ),
                    ),
                    Outcome::Refreshed(id) => (
                        "refreshed",
                        format!(
                            "already on list {}: timeout set again to {} ({id})",
                            job.list,
                            timeout::format(job.timeout)
                        ),
                    ),
                    Outcome::Removed(n) => (
                        "removed",
                        format!(
                            "removed from list {} ({n} entr{})",
                            job.list,
                            if n == 1 { "y" } else { "ies" }
                        ),
                    ),
                }
            }
            Err(RestError::Denied(sentence) | RestError::Certificate(sentence)) => {
                if denied_said {
                    log.debug(
                        now(),
                        &format!("{}: router {url}: refused again (said above)", job.door),
                    );
                    continue;
                }
                denied_said = true;
                ("failed", sentence)
            }
            Err(err @ RestError::Unavailable { .. }) => {
                ("failed", format!("{err}; the update is dropped"))
            }
            Err(err) => ("failed", err.to_string()),
        };
        log.router(now(), &job.door, job.src, event, &url, &detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(table: &str) -> Result<RouterosAction, String> {
        let text = format!(
            "[[door]]\nname = \"winbox\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n[door.routeros]\n{table}"
        );
        crate::config::server::parse(Path::new("knockd.toml"), &text)
            .map(|c| c.doors[0].routeros.clone().expect("a routeros action"))
            .map_err(|e| e.to_string())
    }

    const GOOD: &str = "url = \"https://192.168.88.1\"\nuser = \"knockr\"\npassword_file = \"/etc/knockr/router.pass\"\nlist = \"knocked\"\n";

    #[test]
    fn a_dry_run_says_what_would_be_sent_without_the_password() {
        let action = load(GOOD).unwrap();
        let src: IpAddr = "::ffff:203.0.113.45".parse().unwrap();
        let line = describe(
            &action.routers[0],
            &action,
            "winbox",
            src.to_canonical(),
            Change::Grant,
        );
        assert_eq!(
            line,
            "https://192.168.88.1: PUT https://192.168.88.1/rest/ip/firewall/address-list \
             {\"address\":\"203.0.113.45\",\"comment\":\"knockr: winbox\",\"list\":\"knocked\",\"timeout\":\"1h\"} as user knockr"
        );
    }
}
