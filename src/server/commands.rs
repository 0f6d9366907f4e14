//! What a door does when it opens: its start command now, its stop command
//! `cmd_timeout` later. The bookkeeping (`Doorman`) is pure, with time as an
//! argument, so replayed captures and live traffic share it; `execute` runs
//! a command without ever blocking the capture loop.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use crate::config::server::{Action, DoorConfig};

/// A door opening or closing for a knocker: its command, already
/// substituted, and (for doors with `[door.routeros]`) a router update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub door: usize,
    pub src: IpAddr,
    pub kind: RunKind,
    /// The command to run; `None` for a door that only updates routers.
    pub action: Option<Action>,
}

impl Run {
    /// `action` of door `door` for knocker `src`, with `%IP%` and `%DOOR%`
    /// filled in; `None` when the door has neither that command nor routers.
    fn new(
        config: &DoorConfig,
        door: usize,
        src: IpAddr,
        kind: RunKind,
        action: Option<&Action>,
    ) -> Option<Run> {
        if action.is_none() && config.routeros.is_none() {
            return None;
        }
        Some(Run {
            door,
            src,
            kind,
            action: action.map(|a| a.substitute(src, &config.door.name)),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Start,
    Stop,
}

/// Which knockers are open at which door, and when each closes.
#[derive(Debug, Default)]
pub struct Doorman {
    /// (door, knocker) -> when its stop command is due.
    open: BTreeMap<(usize, IpAddr), Duration>,
    /// The same, ordered by when: what is due is found without a scan.
    by_due: std::collections::BTreeSet<(Duration, usize, IpAddr)>,
}

impl Doorman {
    /// A knocker completed door `door` at `now`. A knocker that is already open
    /// gets its stop moved later instead of a second start (no duplicate
    /// firewall rules). Without a stop command every success runs start.
    pub fn opened(
        &mut self,
        doors: &[DoorConfig],
        door: usize,
        src: IpAddr,
        now: Duration,
    ) -> Option<Run> {
        let config = &doors[door];
        // A router entry is removed when the door closes, like a stop command.
        let closes = (stop_action(config, src).is_some() || config.routeros.is_some())
            .then_some(config.cmd_timeout)
            .flatten();
        if let Some(after) = closes {
            let already_open = self.open.contains_key(&(door, src));
            self.set_due((door, src), now + after);
            if already_open {
                return None;
            }
        }
        Run::new(config, door, src, RunKind::Start, start_action(config, src))
    }

    /// Stop commands due at `now`.
    pub fn due(&mut self, doors: &[DoorConfig], now: Duration) -> Vec<Run> {
        let mut runs = Vec::new();
        while let Some(&(at, door, src)) = self.by_due.first() {
            if at > now {
                break;
            }
            runs.extend(self.close(doors, (door, src)));
        }
        runs
    }

    /// When the next stop command is due.
    pub fn next_due(&self) -> Option<Duration> {
        self.by_due.first().map(|(at, _, _)| *at)
    }

    fn set_due(&mut self, key: (usize, IpAddr), at: Duration) {
        if let Some(old) = self.open.insert(key, at) {
            self.by_due.remove(&(old, key.0, key.1));
        }
        self.by_due.insert((at, key.0, key.1));
    }

    /// Every pending stop command, for a clean exit: no hole stays open.
    pub fn close_all(&mut self, doors: &[DoorConfig]) -> Vec<Run> {
        let keys: Vec<(usize, IpAddr)> = self.open.keys().copied().collect();
        keys.into_iter()
            .filter_map(|key| self.close(doors, key))
            .collect()
    }

    /// After a reload: moves open knockers to their door's new index, and
    /// closes (returns the stop commands of) those whose door is gone; `doors`
    /// is the old configuration.
    pub fn rekey(
        &mut self,
        doors: &[DoorConfig],
        new_index: impl Fn(usize) -> Option<usize>,
    ) -> Vec<Run> {
        let old = std::mem::take(&mut self.open);
        self.by_due.clear();
        let mut closing = Vec::new();
        for ((door, src), due) in old {
            match new_index(door) {
                Some(index) => self.set_due((index, src), due),
                None => {
                    self.set_due((door, src), due);
                    closing.extend(self.close(doors, (door, src)));
                }
            }
        }
        closing
    }

    /// Knockers currently open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    fn close(&mut self, doors: &[DoorConfig], key: (usize, IpAddr)) -> Option<Run> {
        let at = self.open.remove(&key)?;
        self.by_due.remove(&(at, key.0, key.1));
        let (door, src) = key;
        let config = doors.get(door)?;
        Run::new(config, door, src, RunKind::Stop, stop_action(config, src))
    }
}

/// The start command for this knocker's address family (the config has
/// already resolved the IPv6 fallback).
fn start_action(config: &DoorConfig, src: IpAddr) -> Option<&Action> {
    if src.is_ipv6() {
        config.start6.as_ref()
    } else {
        config.start.as_ref()
    }
}

fn stop_action(config: &DoorConfig, src: IpAddr) -> Option<&Action> {
    if src.is_ipv6() {
        config.stop6.as_ref()
    } else {
        config.stop.as_ref()
    }
}

/// The outcome of a finished command, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub success: bool,
    /// "exit status 1", "killed by signal 9", "cannot start: ...".
    pub status: String,
    /// The first lines of its stderr, trimmed.
    pub stderr: String,
}

/// Longest a command may run before it is killed.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// Runs `action` with no stdin and its output captured. Argv commands run
/// without a shell; knockd.conf commands through `/bin/sh -c`, as knockd.
pub async fn execute(action: &Action) -> Finished {
    let mut command = match action {
        Action::Argv(argv) => {
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        Action::Shell(line) => {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            return Finished {
                success: false,
                status: format!("cannot start: {}", crate::core::text::describe(&err)),
                stderr: String::new(),
            };
        }
    };
    match tokio::time::timeout(COMMAND_LIMIT, child.wait_with_output()).await {
        Err(_) => Finished {
            success: false,
            status: format!("killed after {}s", COMMAND_LIMIT.as_secs()),
            stderr: String::new(),
        },
        Ok(Err(err)) => Finished {
            success: false,
            status: crate::core::text::describe(&err),
            stderr: String::new(),
        },
        Ok(Ok(output)) => {
            use std::os::unix::process::ExitStatusExt as _;
            let status = match (output.status.code(), output.status.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                _ => "unknown status".to_string(),
            };
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(3)
                .collect();
            Finished {
                success: output.status.success(),
                status,
                stderr: stderr.join(" | "),
            }
        }
    }
}
