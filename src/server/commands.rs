//! What a door does when it opens: its start command now, its stop command
//! `cmd_timeout` later. The bookkeeping (`Doorman`) is pure, with time as an
//! argument, so replayed captures and live traffic share it; `execute` runs
//! a command, in a process group of its own, without ever blocking the
//! capture loop. When each command runs is `runner`'s business.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crate::config::server::{Action, DoorConfig};

/// A door opening or closing for a knocker: its command, already
/// substituted, and (for doors with `[door.routeros]`) a router update.
/// It names its door, so it still says the right one when a reload has
/// removed the door meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    /// The door's name: what the run is logged as, and whose routers it updates.
    pub(crate) door: Arc<str>,
    /// The knocker, as `%IP%` was filled in.
    pub(crate) src: IpAddr,
    /// Opening (start) or closing (stop).
    pub(crate) kind: RunKind,
    /// The command to run; `None` for a door that only updates routers.
    pub(crate) action: Option<Action>,
}

impl Run {
    /// `action` of `config` for knocker `src`, with `%IP%` and `%DOOR%`
    /// filled in; `None` when the door has neither that command nor a list
    /// of knockers (routers, nftables sets).
    fn new(
        config: &DoorConfig,
        door: Arc<str>,
        src: IpAddr,
        kind: RunKind,
        action: Option<&Action>,
    ) -> Option<Run> {
        if action.is_none() && !config.keeps_lists() {
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

/// Which of a door's commands a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunKind {
    /// The knocker completed the sequence: open.
    Start,
    /// `cmd_timeout` later, or at exit or when the door is removed: close.
    Stop,
}

impl RunKind {
    /// As the log says it: "start command", "stop command".
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunKind::Start => "start",
            RunKind::Stop => "stop",
        }
    }
}

/// An open knocker: the door's name and the knocker's address.
type Key = (Arc<str>, IpAddr);

/// Which knockers are open at which door, and when each closes. Doors are
/// known by name, so a reload keeps the knockers of the doors that remain
/// whatever their new place in the file.
#[derive(Debug, Default)]
pub(crate) struct Doorman {
    /// (door, knocker) -> when its stop command is due.
    open: BTreeMap<Key, Duration>,
    /// The same, ordered by when: what is due is found without a scan.
    by_due: BTreeSet<(Duration, Key)>,
    /// Whether `open` changed since [`Doorman::take_changed`] last asked:
    /// then the state file is rewritten.
    changed: bool,
}

impl Doorman {
    /// A knocker completed door `door` at `now`. A knocker that is already open
    /// gets its stop moved later instead of a second start (no duplicate
    /// firewall rules), and its lists refreshed (a run without a command).
    /// Without a stop command every success runs start.
    pub(crate) fn opened(&mut self, door: &DoorConfig, src: IpAddr, now: Duration) -> Option<Run> {
        let name: Arc<str> = Arc::from(door.door.name.as_str());
        // A router entry or a set element is removed when the door closes,
        // like a stop command.
        let closes = (stop_action(door, src).is_some() || door.keeps_lists())
            .then_some(door.cmd_timeout)
            .flatten();
        if let Some(after) = closes {
            let key = (name.clone(), src);
            let already_open = self.open.contains_key(&key);
            self.set_due(key, now + after);
            if already_open {
                // No second start command, but the door's lists take the
                // knocker again: a router entry or a set element gets its
                // full timeout back.
                return door.keeps_lists().then_some(Run {
                    door: name,
                    src,
                    kind: RunKind::Start,
                    action: None,
                });
            }
        }
        Run::new(door, name, src, RunKind::Start, start_action(door, src))
    }

    /// Stop commands due at `now`, with the commands of `doors` (the
    /// configuration in force).
    pub(crate) fn due(&mut self, doors: &[DoorConfig], now: Duration) -> Vec<Run> {
        let mut runs = Vec::new();
        while let Some((at, key)) = self.by_due.first() {
            if *at > now {
                break;
            }
            let key = key.clone();
            runs.extend(self.close(doors, &key));
        }
        runs
    }

    /// Drops the knocker `src` of door `door` without a stop: its start
    /// never ran (the command queue was full, or a one-time line could not
    /// be marked), so there is nothing to close.
    pub(crate) fn forget(&mut self, door: &str, src: IpAddr) {
        let key: Key = (Arc::from(door), src);
        if let Some(at) = self.open.remove(&key) {
            self.by_due.remove(&(at, key));
            self.changed = true;
        }
    }

    /// When the next stop command is due.
    pub(crate) fn next_due(&self) -> Option<Duration> {
        self.by_due.first().map(|(at, _)| *at)
    }

    fn set_due(&mut self, key: Key, at: Duration) {
        self.changed = true;
        if let Some(old) = self.open.insert(key.clone(), at) {
            self.by_due.remove(&(old, key.clone()));
        }
        self.by_due.insert((at, key));
    }

    /// Every pending stop command, for a clean exit: no hole stays open.
    /// In the order of `doors`, then of the knockers' addresses.
    pub(crate) fn close_all(&mut self, doors: &[DoorConfig]) -> Vec<Run> {
        let place = |name: &str| doors.iter().position(|d| d.door.name == name);
        let mut keys: Vec<Key> = self.open.keys().cloned().collect();
        keys.sort_by_key(|(name, src)| (place(name), *src));
        keys.iter()
            .filter_map(|key| self.close(doors, key))
            .collect()
    }

    /// A reload replaces `old` by `new`: knockers at doors `new` still has
    /// (by name) keep their due stop, which runs `new`'s command; the others
    /// are closed now, with `old`'s commands (returned).
    pub(crate) fn reload(&mut self, old: &[DoorConfig], new: &[DoorConfig]) -> Vec<Run> {
        let gone: Vec<&DoorConfig> = old
            .iter()
            .filter(|o| !new.iter().any(|n| n.door.name == o.door.name))
            .collect();
        let mut closing = Vec::new();
        for door in gone {
            let keys: Vec<Key> = self
                .open
                .keys()
                .filter(|(name, _)| **name == *door.door.name)
                .cloned()
                .collect();
            closing.extend(keys.iter().filter_map(|key| self.close(old, key)));
        }
        closing
    }

    /// The open knockers and when each closes, for the state file.
    pub(crate) fn knockers(&self) -> impl Iterator<Item = (&str, IpAddr, Duration)> + '_ {
        self.open
            .iter()
            .map(|((door, src), due)| (&**door, *src, *due))
    }

    /// A knocker of door `door` read back from the state file: it closes at
    /// `due` (at once if that has passed), with the command in force then.
    pub(crate) fn restore(&mut self, door: &DoorConfig, src: IpAddr, due: Duration) {
        let key = (Arc::from(door.door.name.as_str()), src);
        // A knocker recorded twice keeps the later stop: it closes last.
        let due = self.open.get(&key).map_or(due, |&old| old.max(due));
        self.set_due(key, due);
    }

    /// Whether the open knockers changed since the last call.
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Forgets the knocker `key` and returns its stop run, with the command
    /// of its door in `doors`.
    fn close(&mut self, doors: &[DoorConfig], key: &Key) -> Option<Run> {
        let at = self.open.remove(key)?;
        self.changed = true;
        self.by_due.remove(&(at, key.clone()));
        let (name, src) = key;
        let door = doors.iter().find(|d| d.door.name == **name)?;
        Run::new(
            door,
            name.clone(),
            *src,
            RunKind::Stop,
            stop_action(door, *src),
        )
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
pub(crate) struct Finished {
    pub(crate) success: bool,
    /// "exit status 1", "killed by signal 9", "cannot start: ...".
    pub(crate) status: String,
    /// Its stderr on one line: the first [`OUTPUT_KEPT`] bytes, escaped,
    /// lines trimmed and joined by " | ", and how much was cut.
    pub(crate) stderr: String,
}

/// How long stderr is still read once the command itself exited: what it
/// wrote before exiting is already in the pipe, and a child it left in the
/// background may hold the pipe open for hours. Its status is not held
/// back for that child.
const STDERR_GRACE: Duration = Duration::from_millis(100);

/// How much of a command's stderr is kept for the log. The rest is read and
/// thrown away: a command that writes a lot neither blocks on a full pipe
/// nor makes knockd hold it all in memory.
pub(crate) const OUTPUT_KEPT: usize = 4096;

/// The whole PATH a command gets (README, "Commands"): knockd's own
/// environment, which may hold a router password (`password_env`), is not
/// passed on.
pub(crate) const COMMAND_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Who a command runs for: the door, and for start and stop commands the
/// knocker. They become the command's `KNOCKR_DOOR` and `KNOCKR_IP`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct For<'a> {
    pub(crate) door: &'a str,
    pub(crate) src: Option<IpAddr>,
}

/// Runs `action` with stdin and stdout on /dev/null, stderr read (the first
/// [`OUTPUT_KEPT`] bytes kept), a fixed environment, no descriptor of
/// knockd's but those three, in a process group of its own. Argv commands
/// run without a shell; knockd.conf commands through `/bin/sh -c`, as
/// knockd.
///
/// Its status is the direct child's, as soon as that child exits: children
/// it put in the background keep running. If it runs longer than `limit`,
/// its whole group is killed, so nothing it started outlives the timeout.
pub(crate) async fn execute(action: &Action, who: For<'_>, limit: Duration) -> Finished {
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
        .env_clear()
        .env("PATH", COMMAND_PATH)
        .env("KNOCKR_DOOR", who.door);
    if let Some(src) = who.src {
        command.env("KNOCKR_IP", src.to_string());
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own group, led by the child: a timeout kills what it forked too.
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: `inherit_nothing` makes raw system calls only (no allocation,
    // no locks), which is what may run between fork and exec.
    unsafe {
        command.pre_exec(|| {
            inherit_nothing();
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            return Finished {
                success: false,
                status: format!("cannot start: {}", crate::core::text::describe(&err)),
                stderr: String::new(),
            };
        }
    };
    let mut stderr = Stderr::new(child.stderr.take());
    let waited = tokio::time::timeout(limit, async {
        loop {
            tokio::select! {
                status = child.wait() => break status,
                () = stderr.read_some(), if stderr.is_open() => {}
            }
        }
    })
    .await;
    let status = match waited {
        Ok(status) => status,
        Err(_) => {
            kill_group(child.id());
            // Reaped now, so its pid (the group's id) is not freed before the kill.
            let _ = child.wait().await;
            return Finished {
                success: false,
                status: format!("killed after {} with its process group", show(limit)),
                stderr: stderr.line(),
            };
        }
    };
    let _ = tokio::time::timeout(STDERR_GRACE, async {
        while stderr.is_open() {
            stderr.read_some().await;
        }
    })
    .await;
    let stderr = stderr.finish();
    match status {
        Err(err) => Finished {
            success: false,
            status: crate::core::text::describe(&err),
            stderr,
        },
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt as _;
            let text = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                _ => "unknown status".to_string(),
            };
            Finished {
                success: status.success(),
                status: text,
                stderr,
            }
        }
    }
}

/// A time limit as the log says it: "60s", "1.5s".
fn show(limit: Duration) -> String {
    crate::core::units::format_duration(limit)
}

/// SIGKILL to the process group `leader` leads (it was spawned with
/// `process_group(0)`); nothing when the child is already reaped.
fn kill_group(leader: Option<u32>) {
    let Some(pgid) = leader.and_then(|pid| libc::pid_t::try_from(pid).ok()) else {
        return;
    };
    // SAFETY: a system call on plain integers. The leader is not reaped yet
    // (a zombie at worst), so the group id cannot name another group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// A command's stderr as it is read: the first [`OUTPUT_KEPT`] bytes, and
/// how many came in all.
struct Stderr {
    /// The pipe, until its end (or a read error) is seen.
    pipe: Option<tokio::process::ChildStderr>,
    kept: Vec<u8>,
    total: u64,
    /// Where each read lands before its start is kept.
    buf: Vec<u8>,
}

impl Stderr {
    fn new(pipe: Option<tokio::process::ChildStderr>) -> Stderr {
        Stderr {
            pipe,
            kept: Vec::with_capacity(OUTPUT_KEPT),
            total: 0,
            buf: vec![0u8; 64 * 1024],
        }
    }

    fn is_open(&self) -> bool {
        self.pipe.is_some()
    }

    /// One read: keeps what fits, counts the rest. Cancel-safe (a read
    /// that did not complete took nothing), so it can race the child's exit.
    async fn read_some(&mut self) {
        use tokio::io::AsyncReadExt as _;
        let Some(pipe) = &mut self.pipe else {
            return std::future::pending().await;
        };
        match pipe.read(&mut self.buf).await {
            // A read error (none is expected on a pipe) ends the reading
            // like the end of the pipe; the command is still waited for.
            Ok(0) | Err(_) => self.pipe = None,
            Ok(n) => {
                self.total += n as u64;
                let room = OUTPUT_KEPT - self.kept.len();
                self.kept.extend_from_slice(&self.buf[..n.min(room)]);
            }
        }
    }

    /// What was kept, for the log.
    fn line(&self) -> String {
        one_line(&self.kept, self.total)
    }

    /// What was kept, for the log. A pipe still open (a background child
    /// holds it) is drained and thrown away by a task of its own until that
    /// child closes it: closing it here would kill the child with SIGPIPE
    /// at its next write.
    fn finish(self) -> String {
        let line = self.line();
        if let Some(mut pipe) = self.pipe {
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt as _;
                let mut buf = [0u8; 512];
                while let Ok(1..) = pipe.read(&mut buf).await {}
            });
        }
        line
    }
}

/// `kept` (the start of `total` bytes of output) for a log line: escaped,
/// its lines trimmed and joined by " | ", and what was cut said at the end.
fn one_line(kept: &[u8], total: u64) -> String {
    let text = String::from_utf8_lossy(kept);
    let mut line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(crate::core::text::sanitize)
        .collect::<Vec<_>>()
        .join(" | ");
    let cut = total.saturating_sub(kept.len() as u64);
    if cut > 0 {
        line.push_str(&format!(" ... ({total} bytes, {cut} cut)"));
    }
    line
}

/// In the child, before exec: every descriptor above stderr gets
/// close-on-exec, so the command inherits only stdin, stdout and stderr.
/// libpcap's capture socket and eventfd are not close-on-exec, and a command
/// holding them could send frames or change the capture's filter. Marked
/// rather than closed: the standard library reports a failed exec through a
/// close-on-exec pipe, which must stay open until the exec.
fn inherit_nothing() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a system call on plain integers.
        let done = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        } == 0;
        if done {
            return;
        }
    }
    // Kernels before 5.11 have no close_range: every possible descriptor.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `limit`; fcntl takes plain integers.
    unsafe {
        let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20) as libc::c_int
        } else {
            1 << 16
        };
        for fd in 3..top {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Duration = Duration::from_secs(1_795_000_000);

    fn secs(n: u64) -> Duration {
        AT + Duration::from_secs(n)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn doors(text: &str) -> Vec<DoorConfig> {
        crate::config::server::parse(std::path::Path::new("k.toml"), text)
            .unwrap()
            .doors
    }

    /// Door "ssh": start and stop for both families, closing after 10 s.
    const SSH: &str = r#"
[[door]]
name = "ssh"
sequence = ["7000"]
start = ["open", "%IP%", "%DOOR%"]
stop = ["close", "%IP%"]
start6 = ["open6", "%IP%"]
stop6 = ["close6", "%IP%"]
cmd_timeout = "10s"
"#;

    fn argv(words: &[&str]) -> Option<Action> {
        Some(Action::Argv(words.iter().map(|w| w.to_string()).collect()))
    }

    fn run(door: &str, src: &str, kind: RunKind, action: &[&str]) -> Run {
        Run {
            door: Arc::from(door),
            src: ip(src),
            kind,
            action: argv(action),
        }
    }

    #[test]
    fn an_opening_runs_start_now_and_its_stop_falls_due_after_cmd_timeout_not_before() {
        let doors = doors(SSH);
        let mut doorman = Doorman::default();
        let opened = doorman.opened(&doors[0], ip("192.0.2.7"), secs(0));
        assert_eq!(
            opened,
            Some(run(
                "ssh",
                "192.0.2.7",
                RunKind::Start,
                &["open", "192.0.2.7", "ssh"]
            ))
        );
        assert_eq!(doorman.next_due(), Some(secs(10)));
        let just_before = secs(10) - Duration::from_nanos(1);
        assert_eq!(doorman.due(&doors, just_before), []);
        assert_eq!(
            doorman.due(&doors, secs(10)),
            [run(
                "ssh",
                "192.0.2.7",
                RunKind::Stop,
                &["close", "192.0.2.7"]
            )]
        );
        assert_eq!(doorman.next_due(), None, "a closed knocker is forgotten");
        assert_eq!(doorman.due(&doors, secs(100)), []);
    }

    #[test]
    fn a_re_knock_at_a_door_with_a_set_refreshes_it_without_a_second_start_command() {
        let doors = doors(&format!("{SSH}[door.nftables]\n"));
        let mut doorman = Doorman::default();
        let first = doorman.opened(&doors[0], ip("192.0.2.7"), secs(0)).unwrap();
        assert!(first.action.is_some());
        let again = doorman.opened(&doors[0], ip("192.0.2.7"), secs(5));
        let refresh = Run {
            door: Arc::from("ssh"),
            src: ip("192.0.2.7"),
            kind: RunKind::Start,
            action: None,
        };
        assert_eq!(again, Some(refresh));
        assert_eq!(doorman.next_due(), Some(secs(15)));
    }

    #[test]
    fn a_knocker_already_open_gets_its_stop_moved_later_not_a_second_start() {
        let doors = doors(SSH);
        let mut doorman = Doorman::default();
        assert!(
            doorman
                .opened(&doors[0], ip("192.0.2.7"), secs(0))
                .is_some()
        );
        assert_eq!(doorman.opened(&doors[0], ip("192.0.2.7"), secs(5)), None);
        assert_eq!(doorman.next_due(), Some(secs(15)));
        assert_eq!(
            doorman.due(&doors, secs(10)),
            [],
            "the old due time is gone"
        );
        assert_eq!(doorman.due(&doors, secs(15)).len(), 1);
    }

    /// A start the command queue dropped never ran: no stop may follow it.
    #[test]
    fn a_forgotten_knocker_owes_no_stop_and_opens_again_with_a_start() {
        let doors = doors(SSH);
        let mut doorman = Doorman::default();
        doorman.opened(&doors[0], ip("192.0.2.7"), secs(0));
        doorman.opened(&doors[0], ip("192.0.2.8"), secs(0));
        doorman.forget("ssh", ip("192.0.2.7"));
        let closing: Vec<IpAddr> = doorman.close_all(&doors).iter().map(|r| r.src).collect();
        assert_eq!(closing, [ip("192.0.2.8")]);
        doorman.forget("ssh", ip("192.0.2.7"));
        assert!(
            doorman
                .opened(&doors[0], ip("192.0.2.7"), secs(1))
                .is_some_and(|r| r.kind == RunKind::Start)
        );
    }

    #[test]
    fn ipv6_knockers_get_the_ipv6_commands() {
        let doors = doors(SSH);
        let mut doorman = Doorman::default();
        let opened = doorman.opened(&doors[0], ip("2001:db8::7"), secs(0));
        assert_eq!(
            opened.and_then(|r| r.action),
            argv(&["open6", "2001:db8::7"])
        );
        let closed = doorman.due(&doors, secs(10));
        assert_eq!(
            closed[0].action,
            argv(&["close6", "2001:db8::7"]),
            "{closed:?}"
        );
    }

    #[test]
    fn without_a_stop_command_every_success_runs_start_and_nothing_is_kept() {
        let doors = doors("[[door]]\nname = \"once\"\nsequence = [\"7000\"]\nstart = [\"go\"]\n");
        let mut doorman = Doorman::default();
        for at in [0, 1] {
            assert_eq!(
                doorman.opened(&doors[0], ip("192.0.2.7"), secs(at)),
                Some(run("once", "192.0.2.7", RunKind::Start, &["go"]))
            );
        }
        assert_eq!(doorman.next_due(), None);
        assert_eq!(doorman.close_all(&doors), []);
    }

    #[test]
    fn a_forgotten_knocker_gets_no_stop_and_the_others_keep_theirs() {
        let text = "[[door]]\nname = \"once\"\nsequence = [\"7000\"]\nstart = [\"go\"]\n\
                    stop = [\"close\"]\ncmd_timeout = \"3s\"\n";
        let doors = doors(text);
        let mut doorman = Doorman::default();
        doorman.opened(&doors[0], ip("192.0.2.7"), secs(0));
        doorman.opened(&doors[0], ip("192.0.2.8"), secs(1));
        doorman.forget("once", ip("192.0.2.7"));
        assert_eq!(doorman.next_due(), Some(secs(4)));
        assert_eq!(
            doorman.close_all(&doors),
            [run("once", "192.0.2.8", RunKind::Stop, &["close"])]
        );
    }

    #[test]
    fn a_door_with_nothing_to_run_gives_no_run() {
        let doors = doors("[[door]]\nname = \"quiet\"\nsequence = [\"7000\"]\n");
        let mut doorman = Doorman::default();
        assert_eq!(doorman.opened(&doors[0], ip("192.0.2.7"), secs(0)), None);
    }

    #[test]
    fn stops_fall_due_in_time_order_and_close_all_goes_in_door_order() {
        let text = format!(
            "{SSH}\n[[door]]\nname = \"a-web\"\nsequence = [\"8000\"]\nstop = [\"web-off\"]\ncmd_timeout = \"3s\"\n"
        );
        let doors = doors(&text);
        let mut doorman = Doorman::default();
        doorman.opened(&doors[0], ip("192.0.2.9"), secs(0));
        doorman.opened(&doors[0], ip("192.0.2.8"), secs(1));
        doorman.opened(&doors[1], ip("192.0.2.7"), secs(2));
        let due: Vec<(String, IpAddr)> = doorman
            .due(&doors, secs(11))
            .into_iter()
            .map(|r| (r.door.to_string(), r.src))
            .collect();
        assert_eq!(
            due,
            [
                ("a-web".to_string(), ip("192.0.2.7")),
                ("ssh".to_string(), ip("192.0.2.9")),
                ("ssh".to_string(), ip("192.0.2.8"))
            ]
        );
        doorman.opened(&doors[1], ip("192.0.2.7"), secs(20));
        doorman.opened(&doors[0], ip("192.0.2.9"), secs(20));
        doorman.opened(&doors[0], ip("192.0.2.8"), secs(20));
        let closing: Vec<(String, IpAddr)> = doorman
            .close_all(&doors)
            .into_iter()
            .map(|r| (r.door.to_string(), r.src))
            .collect();
        // The file's order ("ssh" first), not the names' order.
        assert_eq!(
            closing,
            [
                ("ssh".to_string(), ip("192.0.2.8")),
                ("ssh".to_string(), ip("192.0.2.9")),
                ("a-web".to_string(), ip("192.0.2.7"))
            ]
        );
        assert_eq!(doorman.next_due(), None);
    }

    /// Before open knockers were kept by name, a reload renumbered them and
    /// returned the removed doors' stop runs by their old index, which then
    /// named whatever door the new file had there (or none: a panic).
    #[test]
    fn a_reload_keeps_knockers_of_doors_that_remain_and_closes_the_others_with_their_old_commands()
    {
        let old = doors(&format!(
            "[[door]]\nname = \"gone\"\nsequence = [\"6000\"]\nstop = [\"gone-off\", \"%IP%\"]\n{SSH}"
        ));
        let new = doors(&SSH.replace("\"close\"", "\"close-v2\""));
        let mut doorman = Doorman::default();
        doorman.opened(&old[0], ip("192.0.2.7"), secs(0));
        doorman.opened(&old[1], ip("192.0.2.8"), secs(5));
        let closing = doorman.reload(&old, &new);
        assert_eq!(
            closing,
            [run(
                "gone",
                "192.0.2.7",
                RunKind::Stop,
                &["gone-off", "192.0.2.7"]
            )]
        );
        // The knocker at "ssh" keeps its due time and closes with the new command.
        assert_eq!(doorman.next_due(), Some(secs(15)));
        assert_eq!(
            doorman.due(&new, secs(15)),
            [run(
                "ssh",
                "192.0.2.8",
                RunKind::Stop,
                &["close-v2", "192.0.2.8"]
            )]
        );
    }

    fn shell(line: &str) -> Finished {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let who = For {
            door: "ssh",
            src: Some(ip("192.0.2.7")),
        };
        runtime.block_on(execute(
            &Action::Shell(line.to_string()),
            who,
            Duration::from_secs(60),
        ))
    }

    /// Before, a descriptor knockd had without close-on-exec (libpcap's
    /// socket and eventfd are such) reached every command.
    #[test]
    fn a_command_inherits_no_descriptor_but_stdin_stdout_and_stderr() {
        // As libpcap does: an eventfd without EFD_CLOEXEC.
        let leaky = unsafe { libc::eventfd(0, 0) };
        assert!(leaky > 2);
        // The shell lists its own descriptors; the glob reads /proc/PID/fd
        // through a directory descriptor of its own, the lowest free: 3. (It
        // is expanded in `set`, where no redirection has moved fd 1 aside.)
        let finished =
            shell(r#"set -- /proc/$$/fd/*; for f; do printf '%s ' "${f##*/}"; done >&2; exit 1"#);
        unsafe { libc::close(leaky) };
        assert_eq!(finished.stderr, "0 1 2 3", "{finished:?}");
    }

    /// Before, the command got knockd's whole environment (a router's
    /// `password_env` variable included).
    #[test]
    fn a_command_gets_path_and_its_door_and_knocker_and_nothing_else() {
        let finished = shell(r#"tr '\0' '\n' < /proc/$$/environ >&2; exit 1"#);
        let mut vars: Vec<&str> = finished.stderr.split(" | ").collect();
        vars.sort();
        assert_eq!(
            vars,
            [
                "KNOCKR_DOOR=ssh",
                "KNOCKR_IP=192.0.2.7",
                &format!("PATH={COMMAND_PATH}")
            ],
            "{finished:?}"
        );
    }

    /// Before, all of stderr was held in memory and its first lines logged
    /// however long they were.
    #[test]
    fn a_long_stderr_is_read_to_its_end_but_only_its_start_is_kept() {
        let finished = shell("yes 0123456789 | head -c 10000000 >&2; exit 3");
        assert_eq!(finished.status, "exit status 3");
        let start = "0123456789 | ".repeat(3);
        assert!(finished.stderr.starts_with(&start), "{finished:?}");
        assert!(
            finished
                .stderr
                .ends_with(" ... (10000000 bytes, 9995904 cut)"),
            "{finished:?}"
        );
        assert!(
            finished.stderr.len() < 2 * OUTPUT_KEPT,
            "{}",
            finished.stderr.len()
        );
    }

    /// Before, stderr was read to its end, which the background child held:
    /// the command was "killed after 60s" though it had exited 0 at once.
    #[test]
    fn a_shell_that_leaves_a_child_in_the_background_is_done_when_it_exits() {
        let began = std::time::Instant::now();
        let finished = shell("echo before >&2; sleep 5 & exit 0");
        assert_eq!(finished.status, "exit status 0", "{finished:?}");
        assert_eq!(finished.stderr, "before");
        assert!(
            began.elapsed() < Duration::from_secs(4),
            "{:?}",
            began.elapsed()
        );
    }

    /// Before, only the direct child was killed: what it had started lived on.
    #[test]
    fn a_command_past_its_time_limit_is_killed_with_its_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let line = format!(
            "sleep 60 & echo $! > {0}; sh -c 'sleep 60' & echo $! >> {0}; wait",
            pids.display()
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let who = For {
            door: "ssh",
            src: None,
        };
        let finished = runtime.block_on(execute(&Action::Shell(line), who, Duration::from_secs(1)));
        assert_eq!(finished.status, "killed after 1s with its process group");
        let text = std::fs::read_to_string(&pids).unwrap();
        let pids: Vec<libc::pid_t> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(pids.len(), 2, "{text}");
        // Killed at once; their new parent reaps them a moment later.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&pid| alive(pid)) {
            assert!(std::time::Instant::now() < until, "still running: {pids:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether `pid` is a process that has not ended (a zombie has ended).
    fn alive(pid: libc::pid_t) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command's closing parenthesis.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        state.is_some_and(|s| s != 'Z' && s != 'X')
    }

    #[test]
    fn output_goes_on_one_line_escaped() {
        assert_eq!(
            one_line(b"  first\n\n\x1b[31mred\t\n", 19),
            "first | \\u{1b}[31mred"
        );
        assert_eq!(one_line(b"abc", 10), "abc ... (10 bytes, 7 cut)");
        assert_eq!(one_line(b"", 0), "");
    }
}
