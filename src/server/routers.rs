//! The RouterOS door action on the server's side: each door's
//! `[door.routeros]` routers, one [`Worker`] per router (see
//! [`crate::routeros::worker`]), and the log lines of what they report.
//!
//! The capture loop only ever calls [`Routers::submit`], which never waits;
//! a full queue drops the update and says so. Several routers of a door are
//! updated concurrently. Nothing here may log a password; the REST client
//! itself keeps it out of errors.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::routeros::RouterosAction;
use crate::config::server::ServerConfig;
use crate::routeros::rest::{self, AddressList, Entry, Router};
use crate::routeros::worker::{Change, Report, Reporter, SharedLedger, Target, Worker};
use crate::server::log::Log;
use crate::server::{lock, now};

/// One door's routers.
struct DoorRouters {
    /// The door's name, as runs name it.
    door: Arc<str>,
    /// The door's list, timeout, retry bound and routers.
    action: RouterosAction,
    /// The clients, made (passwords read) at load time; taken by [`Routers::start`].
    clients: Vec<AddressList>,
    /// The workers, once [`Routers::start`] ran in a runtime, in router order.
    workers: Vec<Worker>,
    /// What each router's worker put on its list, in router order: kept
    /// across a reload, so a router reboot after it still restores them.
    ledgers: Vec<SharedLedger>,
}

/// Every door's routers: their clients until started, then their workers.
pub(crate) struct Routers {
    /// The doors that have routers, in config order.
    doors: Vec<DoorRouters>,
    /// Print what would be sent instead of sending (`--dry-run`).
    dry_run: bool,
    /// The server's log: the workers' reports go there.
    log: Arc<Mutex<Log>>,
}

impl Routers {
    /// Reads every router's password and prepares its client (no connection
    /// yet); in a dry run nothing is read. Call before dropping privileges.
    pub(crate) fn new(
        config: &ServerConfig,
        dry_run: bool,
        log: Arc<Mutex<Log>>,
    ) -> anyhow::Result<Routers> {
        let mut doors = Vec::new();
        let mut reader = None;
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
                    let reader = match &mut reader {
                        Some(reader) => reader,
                        None => reader.insert(config.account().map_err(anyhow::Error::msg)?),
                    };
                    let password =
                        crate::config::secret::load_password(&router.password, reader)
                            .map_err(|err| anyhow::anyhow!("router {}: {err}", router.url))?;
                    clients.push(AddressList::new(router, password).map_err(anyhow::Error::msg)?);
                }
            }
            doors.push(DoorRouters {
                door: Arc::from(door.door.name.as_str()),
                action: action.clone(),
                clients,
                workers: Vec::new(),
                ledgers: action
                    .routers
                    .iter()
                    .map(|_| SharedLedger::default())
                    .collect(),
            });
        }
        Ok(Routers {
            doors,
            dry_run,
            log,
        })
    }

    /// A reload: each router that `old` had for the same door and list
    /// hands its ledger over (what it put on the list, and its uptime), so
    /// the new worker still restores those knockers after a router reboot.
    /// Call before [`Routers::start`].
    pub(crate) fn adopt(&mut self, old: &Routers) {
        for door in &mut self.doors {
            let Some(before) = old
                .doors
                .iter()
                .find(|o| o.door == door.door && o.action.list == door.action.list)
            else {
                continue;
            };
            for (router, ledger) in door.action.routers.iter().zip(&mut door.ledgers) {
                let same = before
                    .action
                    .routers
                    .iter()
                    .position(|r| r.url == router.url);
                if let Some(kept) = same.and_then(|i| before.ledgers.get(i)) {
                    *ledger = kept.clone();
                }
            }
        }
    }

    /// Starts one worker per router; must run inside a tokio runtime.
    pub(crate) fn start(&mut self) {
        let log = self.log.clone();
        // Reports come from the workers' tasks and are logged as they come.
        let report: Reporter = Arc::new(move |report: Report| lock(&log).router(now(), &report));
        for door in &mut self.doors {
            let target = Target {
                door: door.door.clone(),
                list: door.action.list.clone(),
                timeout: door.action.timeout,
                retry: door.action.retry,
                uptime_check: door.action.uptime_check,
            };
            let clients = std::mem::take(&mut door.clients);
            for (client, ledger) in clients.into_iter().zip(&door.ledgers) {
                let worker = Worker::spawn(client, target.clone(), ledger.clone(), report.clone());
                door.workers.push(worker);
            }
        }
    }

    /// Queues `change` of `src` on every router of the door named `name`, if
    /// it has any; never waits. A full queue drops the update and logs it.
    pub(crate) fn submit(&self, name: &str, src: IpAddr, change: Change, at: Duration) {
        let Some(door) = self.doors.iter().find(|d| *d.door == *name) else {
            return;
        };
        if self.dry_run {
            let src = src.to_canonical();
            for router in &door.action.routers {
                let line = describe(router, &door.action, name, src, change);
                lock(&self.log).note(at, &format!("{name}: would send to router {line}"));
            }
            return;
        }
        for worker in &door.workers {
            if let Err(dropped) = worker.submit(src, change) {
                lock(&self.log).router(at, &dropped);
            }
        }
    }

    /// The longest retry bound of any door: how long [`Routers::finish`] may wait.
    pub(crate) fn longest_retry(&self) -> Duration {
        self.doors
            .iter()
            .map(|d| d.action.retry)
            .max()
            .unwrap_or_default()
    }

    /// Closes the queues and waits for the pending updates to be sent or
    /// given up, at most `limit`.
    pub(crate) async fn finish(&mut self, limit: Duration) {
        let tasks: Vec<_> = self
            .doors
            .iter_mut()
            .flat_map(|d| std::mem::take(&mut d.workers))
            .map(Worker::close)
            .collect();
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            lock(&self.log).note(now(), "router updates still pending at exit were abandoned");
        }
    }
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
