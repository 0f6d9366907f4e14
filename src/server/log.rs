//! The server's event log: knockd-style lines (`[2026-11-22 01:02] 192.0.2.7:
//! openSSH: Stage 1`, in local time as knockd's) or one JSON object per line
//! (UTC, RFC 3339), to a file, syslog or stderr. A failing log (a full disk)
//! never stops matching: write errors are counted and reported once per
//! outage on stderr, and so is the recovery. A log never goes silent: syslog
//! with no daemon listening (a container) falls back to stderr, said once.
//!
//! A log file can be reopened by its path (SIGUSR1, SIGHUP: logrotate moved
//! it away): each line goes whole to the old file or to the new one.

use std::fs::File;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::core::matcher::EventKind;
use crate::routeros::worker::{Outcome, Report};

pub(crate) struct Log {
    /// Where lines go; `None` when syslog is the only destination.
    sink: Option<Box<dyn Write + Send>>,
    /// The file `sink` was opened from, opened again by [`Log::reopen`];
    /// `None` for stderr, syslog or a writer, which have nothing to reopen.
    path: Option<PathBuf>,
    /// Also send each line to syslog (knockd's `UseSyslog`).
    syslog: bool,
    /// One JSON object per line instead of knockd-style text.
    json: bool,
    /// Debug lines (`-v`): packets seen, commands' output.
    pub(crate) verbose: bool,
    /// Lines that could not be written, in all; the first failure is said on stderr.
    pub(crate) lost: u64,
    /// Lines lost since writing last failed; 0 while writing works. The
    /// first success after a failure says on stderr how many were lost.
    failing: u64,
    /// The line being written with its newline, reused: one write per line
    /// without an allocation per line (a replay logs many).
    buffer: Vec<u8>,
}

impl Log {
    pub(crate) fn stderr(json: bool, verbose: bool) -> Log {
        Log::to_writer(Box::new(io::stderr()), json, verbose)
    }

    pub(crate) fn to_writer(sink: Box<dyn Write + Send>, json: bool, verbose: bool) -> Log {
        Log {
            sink: Some(sink),
            path: None,
            syslog: false,
            json,
            verbose,
            lost: 0,
            failing: 0,
            buffer: Vec::new(),
        }
    }

    /// Only syslog (facility daemon, tag `knockr`), as knockd with `UseSyslog`
    /// and no `LogFile`; stderr when no syslog daemon listens (see [`Log::add_syslog`]).
    pub(crate) fn syslog_only(at: Duration, json: bool, verbose: bool) -> Log {
        let mut log = Log {
            sink: None,
            path: None,
            syslog: false,
            json,
            verbose,
            lost: 0,
            failing: 0,
            buffer: Vec::new(),
        };
        log.add_syslog(at);
        log
    }

    /// Also sends every line to syslog, if a syslog daemon listens at
    /// `/dev/log`. libc's `syslog` drops lines silently when none does (a
    /// container, a minimal system), so this looks first: with no daemon,
    /// lines go to the log file alone, or to stderr when there is none, and
    /// one line says so (on stderr too when the log goes to a file).
    pub(crate) fn add_syslog(&mut self, at: Duration) {
        self.add_syslog_at(at, Path::new(SYSLOG_SOCKET));
    }

    /// [`Log::add_syslog`] with the daemon's socket at `socket` (the tests' own).
    fn add_syslog_at(&mut self, at: Duration, socket: &Path) {
        if syslog_listens(socket) {
            static IDENT: &std::ffi::CStr = c"knockr";
            // SAFETY: the ident is 'static, as openlog requires.
            unsafe { libc::openlog(IDENT.as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
            self.syslog = true;
            return;
        }
        let to_file = self.sink.is_some();
        if !to_file {
            self.sink = Some(Box::new(io::stderr()));
        }
        let warning = no_syslog_warning(socket, to_file);
        if to_file {
            eprintln!("knockr: {warning}");
        }
        self.note(at, &warning);
    }

    /// Appends to `path`, creating it (mode 0640) if needed. Unbuffered:
    /// each line is one write, so a line that failed is not retried later
    /// in front of newer ones.
    pub(crate) fn file(path: &Path, json: bool, verbose: bool) -> io::Result<Log> {
        let mut log = Log::to_writer(Box::new(open_append(path)?), json, verbose);
        log.path = Some(path.to_path_buf());
        Ok(log)
    }

    /// Opens the log file again by its path, for logrotate: after it moved
    /// the file away, the lines so far stay in the moved file and the next
    /// ones go to a new file at the path. Each line is written whole to one
    /// of them (the caller holds the log), and what is buffered is flushed
    /// to the old file before the switch. If the path cannot be opened (after
    /// `user =` dropped root, a directory only root may write), lines keep
    /// going to the old file: nothing is lost, and the error says why.
    pub(crate) fn reopen(&mut self) -> Result<Reopened, ReopenError> {
        let Some(path) = self.path.clone() else {
            return Ok(Reopened::NoFile);
        };
        let file = open_append(&path).map_err(|err| ReopenError {
            path: path.clone(),
            err,
        })?;
        if let Some(old) = self.sink.as_mut() {
            // Unbuffered today (each line one write): this only matters
            // if a buffer is ever put in between. A flush that fails lost
            // its lines to the old file either way.
            let _ = old.flush();
        }
        self.sink = Some(Box::new(file));
        Ok(Reopened::File(path))
    }

    /// A matcher event of door `door` for `src` at `at` (since the Unix epoch).
    /// Whether `event` logs every kind of event, or only openings.
    pub(crate) fn every_event(&self) -> bool {
        self.json || self.verbose
    }

    /// In text, only the opening is logged unless `-v` (as knockd, whose stage
    /// lines are verbose-only): a flood of first knocks must not flood the
    /// log. JSON lines carry every event; they are the machine interface.
    /// (The tests' shorthand for an event of no client.)
    #[cfg(test)]
    pub(crate) fn event(&mut self, at: Duration, door: &str, src: IpAddr, kind: EventKind) {
        self.client_event(at, door, None, src, kind);
    }

    /// [`Log::event`] naming the client whose time-based sequence it is
    /// (`"client": "alice"` in JSON, `door (client alice)` in text).
    pub(crate) fn client_event(
        &mut self,
        at: Duration,
        door: &str,
        client: Option<&str>,
        src: IpAddr,
        kind: EventKind,
    ) {
        if !self.every_event() && kind != EventKind::Open {
            return;
        }
        let line = if self.json {
            let (event, stage) = match kind {
                EventKind::Stage(n) => ("stage", Some(n)),
                EventKind::Open => ("open", None),
                EventKind::Reset => ("reset", None),
                EventKind::Timeout => ("timeout", None),
                EventKind::Evicted => ("evicted", None),
            };
            event_line(at, door, client, src, event, stage)
        } else {
            let what = match kind {
                EventKind::Stage(n) => format!("Stage {n}"),
                EventKind::Open => "OPEN SESAME".to_string(),
                EventKind::Reset => "sequence reset by a wrong knock".to_string(),
                EventKind::Timeout => "sequence timeout".to_string(),
                EventKind::Evicted => {
                    "sequence dropped: too many sources in progress (see max_sources)".to_string()
                }
            };
            format!("{} {src}: {}: {what}", stamp(at), who(door, client))
        };
        self.line(&line);
    }

    /// A time-based sequence that already opened the door, knocked again
    /// (from any address) within its validity: refused. Always logged.
    pub(crate) fn replay(&mut self, at: Duration, door: &str, client: Option<&str>, src: IpAddr) {
        let line = if self.json {
            event_line(at, door, client, src, "replay", None)
        } else {
            format!(
                "{} {src}: {}: sequence already used in its time step: refused as a replay",
                stamp(at),
                who(door, client)
            )
        };
        self.line(&line);
    }

    /// A door's command event: `close` when a stop command ran.
    pub(crate) fn close(&mut self, at: Duration, door: &str, src: IpAddr) {
        if self.json {
            self.line(&event_line(at, door, None, src, "close", None));
        } else {
            self.line(&format!("{} {src}: {}: closing", stamp(at), sanitize(door)));
        }
    }

    /// A capture's libpcap counters so far (at exit, and every minute with `-v`).
    pub(crate) fn capture(
        &mut self,
        at: Duration,
        interface: &str,
        drops: crate::server::capture::Drops,
    ) {
        if self.json {
            /// Fields in this order, time and event first as in event lines.
            #[derive(serde::Serialize)]
            struct Line<'a> {
                time: String,
                event: &'a str,
                interface: &'a str,
                received: u32,
                dropped: u32,
                if_dropped: u32,
            }
            let line = Line {
                time: rfc3339(at),
                event: "capture",
                interface,
                received: drops.received,
                dropped: drops.dropped,
                if_dropped: drops.if_dropped,
            };
            self.line(&serde_json::to_string(&line).expect("a line serializes"));
        } else {
            let line = format!(
                "{} capture on {}: {} packets received by the filter, {} dropped by the kernel, {} dropped by the interface",
                stamp(at),
                sanitize(interface),
                drops.received,
                drops.dropped,
                drops.if_dropped
            );
            self.line(&line);
        }
    }

    /// A router update's outcome, as its worker reported it. A refusal
    /// repeated from the report before is a debug line: said once is enough.
    pub(crate) fn router(&mut self, at: Duration, report: &Report) {
        let event = match &report.outcome {
            Outcome::Added { .. } => "granted",
            Outcome::Refreshed { .. } => "refreshed",
            Outcome::Removed { .. } => "removed",
            Outcome::Restored { .. } => "restored",
            Outcome::Failed(_) => "failed",
            Outcome::Dropped(_) => "dropped",
            Outcome::RefusedAgain => {
                let line = format!(
                    "{}: router {}: {}",
                    report.door, report.router, report.outcome
                );
                self.debug(at, &line);
                return;
            }
        };
        let detail = report.outcome.to_string();
        let (door, src, router) = (&*report.door, report.src, &*report.router);
        if self.json {
            let line = serde_json::json!({
                "time": rfc3339(at),
                "door": door,
                "src": src,
                "event": event,
                "router": router,
                "detail": detail,
            });
            self.line(&line.to_string());
        } else {
            self.line(&format!(
                "{} {src}: {}: router {}: {event}: {}",
                stamp(at),
                sanitize(door),
                sanitize(router),
                sanitize(&detail)
            ));
        }
    }

    /// A free-form message (commands run, failures, start-up), as knockd logs them.
    pub(crate) fn note(&mut self, at: Duration, message: &str) {
        if self.json {
            let line = serde_json::json!({ "time": rfc3339(at), "message": message });
            self.line(&line.to_string());
        } else {
            self.line(&format!("{} {}", stamp(at), sanitize(message)));
        }
    }

    pub(crate) fn debug(&mut self, at: Duration, message: &str) {
        if self.verbose {
            self.note(at, message);
        }
    }

    /// Writes out what is buffered (a replay's stdout).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.sink.as_mut().map_or(Ok(()), |sink| sink.flush())
    }

    fn line(&mut self, line: &str) {
        if self.syslog
            && let Ok(text) = std::ffi::CString::new(line)
        {
            // SAFETY: a constant format with one C string argument.
            unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), text.as_ptr()) };
        }
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        self.buffer.clear();
        self.buffer.extend_from_slice(line.as_bytes());
        self.buffer.push(b'\n');
        match sink.write_all(&self.buffer) {
            Err(err) => {
                if self.failing == 0 {
                    eprintln!(
                        "knockr: cannot write the log ({err}); matching goes on, lines are lost until it recovers"
                    );
                }
                self.failing += 1;
                self.lost += 1;
            }
            Ok(()) if self.failing > 0 => {
                eprintln!(
                    "knockr: the log can be written again; {} line(s) were lost",
                    self.failing
                );
                self.failing = 0;
            }
            Ok(()) => {}
        }
    }
}

/// What [`Log::reopen`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reopened {
    /// Lines now go to this path, opened anew.
    File(PathBuf),
    /// No log file (stderr or syslog only): nothing to reopen.
    NoFile,
}

/// The log file could not be opened again; the old one is still written.
#[derive(Debug, thiserror::Error)]
#[error("cannot reopen the log file {}: {err}; lines keep going to the file it had open", path.display())]
pub(crate) struct ReopenError {
    path: PathBuf,
    err: io::Error,
}

/// `path` for appending, created with mode 0640 if missing; close-on-exec
/// (as every std open), so a door's command never inherits it.
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

fn sanitize(text: &str) -> std::borrow::Cow<'_, str> {
    crate::core::text::sanitize(text)
}

/// `door`, or `door (client NAME)` for a client of a time-based door.
fn who(door: &str, client: Option<&str>) -> String {
    match client {
        Some(client) => format!("{} (client {})", sanitize(door), sanitize(client)),
        None => sanitize(door).into_owned(),
    }
}

/// One JSON event line; the field order is the documented one.
fn event_line(
    at: Duration,
    door: &str,
    client: Option<&str>,
    src: IpAddr,
    event: &str,
    stage: Option<usize>,
) -> String {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        time: String,
        door: &'a str,
        /// Only for time-based doors with named clients.
        #[serde(skip_serializing_if = "Option::is_none")]
        client: Option<&'a str>,
        src: IpAddr,
        event: &'a str,
        stage: Option<usize>,
    }
    serde_json::to_string(&Line {
        time: rfc3339(at),
        door,
        client,
        src,
        event,
        stage,
    })
    .expect("a line serializes")
}

/// Where glibc's `syslog` sends lines (`_PATH_LOG`).
const SYSLOG_SOCKET: &str = "/dev/log";

/// Whether a syslog daemon takes lines at `socket`, tried as glibc tries
/// it: a datagram socket, then a stream.
fn syslog_listens(socket: &Path) -> bool {
    use std::os::unix::net::{UnixDatagram, UnixStream};
    UnixDatagram::unbound().is_ok_and(|s| s.connect(socket).is_ok())
        || UnixStream::connect(socket).is_ok()
}

/// The one line that says syslog is missing and where lines go instead.
fn no_syslog_warning(socket: &Path, to_file: bool) -> String {
    let instead = if to_file {
        "the log file only"
    } else {
        "stderr instead"
    };
    format!(
        "no syslog daemon listens at {}: log lines go to {instead}",
        socket.display()
    )
}

/// `[YYYY-MM-DD HH:MM]` in local time, as knockd prints: the zone of `TZ`,
/// else of /etc/localtime. JSON lines stay UTC (see [`rfc3339`]).
fn stamp(at: Duration) -> String {
    civil_stamp(&local(at))
}

/// A time of day on a calendar date, as a wall clock shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
}

/// `[YYYY-MM-DD HH:MM]`.
fn civil_stamp(t: &Civil) -> String {
    format!(
        "[{:04}-{:02}-{:02} {:02}:{:02}]",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

/// `at` (since the Unix epoch) in the local time zone, by libc's
/// `localtime_r` (no time-zone database of our own); UTC if libc cannot
/// say (a time it cannot represent).
fn local(at: Duration) -> Civil {
    unsafe extern "C" {
        /// POSIX: reads `TZ`; `localtime_r`, unlike `localtime`, need not.
        fn tzset();
    }
    static ZONE: std::sync::Once = std::sync::Once::new();
    // SAFETY: tzset only reads the environment, which knockd never changes.
    ZONE.call_once(|| unsafe { tzset() });
    let secs = libc::time_t::try_from(at.as_secs()).unwrap_or(libc::time_t::MAX);
    // SAFETY: an all-zero `tm` is valid (its zone name pointer null).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r is thread-safe.
    let done = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    let field = |v: libc::c_int| u32::try_from(v).unwrap_or(0);
    if done {
        Civil {
            year: tm.tm_year + 1900,
            month: field(tm.tm_mon) + 1,
            day: field(tm.tm_mday),
            hour: field(tm.tm_hour),
            minute: field(tm.tm_min),
        }
    } else {
        utc(at)
    }
}

/// `at` in UTC, read back from its RFC 3339 text.
fn utc(at: Duration) -> Civil {
    let text = rfc3339(at);
    let number = |range: std::ops::Range<usize>| text[range].parse().unwrap_or(0);
    Civil {
        year: text[..4].parse().unwrap_or(1970),
        month: number(5..7),
        day: number(8..10),
        hour: number(11..13),
        minute: number(14..16),
    }
}

/// `2026-11-22T01:02:03.456Z`.
pub(crate) fn rfc3339(at: Duration) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const AT: Duration = Duration::from_millis(1_795_000_000_123);

    /// `text` with AT's stamp written `[AT]`: text stamps are in the
    /// machine's zone, which these tests do not depend on.
    fn marked(text: &str) -> String {
        text.replace(&stamp(AT), "[AT]")
    }

    #[test]
    fn lines_read_like_knockd_and_stages_only_when_verbose() {
        let quiet = Shared::default();
        let mut log = Log::to_writer(Box::new(quiet.clone()), false, false);
        log.event(
            AT,
            "openSSH",
            "192.0.2.7".parse().unwrap(),
            EventKind::Stage(1),
        );
        log.event(
            AT,
            "openSSH",
            "192.0.2.7".parse().unwrap(),
            EventKind::Reset,
        );
        assert!(
            quiet.0.lock().unwrap().is_empty(),
            "stage lines are verbose-only, as in knockd"
        );

        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(out.clone()), false, true);
        let src: IpAddr = "192.0.2.7".parse().unwrap();
        log.event(AT, "openSSH", src, EventKind::Stage(1));
        log.event(AT, "openSSH", src, EventKind::Open);
        log.note(AT, "openSSH: command returned non-zero status code (1)");
        let text = marked(&String::from_utf8(out.0.lock().unwrap().clone()).unwrap());
        assert_eq!(
            text,
            "[AT] 192.0.2.7: openSSH: Stage 1\n[AT] 192.0.2.7: openSSH: OPEN SESAME\n\
             [AT] openSSH: command returned non-zero status code (1)\n"
        );
    }

    #[test]
    fn json_lines_have_the_documented_fields() {
        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(out.clone()), true, false);
        log.event(
            AT,
            "ssh",
            "2001:db8::7".parse().unwrap(),
            EventKind::Stage(2),
        );
        log.close(AT, "ssh", "2001:db8::7".parse().unwrap());
        let drops = crate::server::capture::Drops {
            received: 7,
            dropped: 2,
            if_dropped: 1,
        };
        log.capture(AT, "eth0", drops);
        let text = marked(&String::from_utf8(out.0.lock().unwrap().clone()).unwrap());
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"time": "2026-11-18T11:06:40.123Z", "door": "ssh", "src": "2001:db8::7", "event": "stage", "stage": 2})
        );
        assert_eq!(lines[1]["event"], "close");
        assert_eq!(
            lines[2],
            serde_json::json!({"time": "2026-11-18T11:06:40.123Z", "event": "capture", "interface": "eth0", "received": 7, "dropped": 2, "if_dropped": 1})
        );
    }

    #[test]
    fn a_clients_events_and_replays_name_it() {
        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(out.clone()), true, false);
        let src: IpAddr = "192.0.2.7".parse().unwrap();
        log.client_event(AT, "team", Some("alice"), src, EventKind::Open);
        log.replay(AT, "team", Some("alice"), src);
        let text = marked(&String::from_utf8(out.0.lock().unwrap().clone()).unwrap());
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"time": "2026-11-18T11:06:40.123Z", "door": "team", "client": "alice", "src": "192.0.2.7", "event": "open", "stage": null})
        );
        assert_eq!(
            (lines[1]["event"].as_str(), lines[1]["client"].as_str()),
            (Some("replay"), Some("alice"))
        );

        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(out.clone()), false, false);
        log.client_event(AT, "team", Some("bob"), src, EventKind::Open);
        log.replay(AT, "team", None, src);
        let text = marked(&String::from_utf8(out.0.lock().unwrap().clone()).unwrap());
        assert_eq!(
            text,
            "[AT] 192.0.2.7: team (client bob): OPEN SESAME\n\
             [AT] 192.0.2.7: team: sequence already used in its time step: refused as a replay\n"
        );
    }

    #[test]
    fn router_reports_read_as_one_line_and_a_repeated_refusal_only_with_v() {
        use crate::routeros::worker::{Dropped, Outcome, Report};
        let report = |outcome| Report {
            door: "winbox".into(),
            src: "192.0.2.7".parse().unwrap(),
            router: "https://192.168.88.1".into(),
            outcome,
        };
        let added = report(Outcome::Added {
            list: "knocked".into(),
            timeout: Duration::from_secs(3600),
            id: "*1".into(),
        });
        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(out.clone()), false, false);
        log.router(AT, &added);
        log.router(AT, &report(Outcome::Dropped(Dropped::Expired)));
        log.router(AT, &report(Outcome::RefusedAgain));
        let text = marked(&String::from_utf8(out.0.lock().unwrap().clone()).unwrap());
        assert_eq!(
            text,
            "[AT] 192.0.2.7: winbox: router https://192.168.88.1: granted: added to list knocked with timeout 1h (*1)\n\
             [AT] 192.0.2.7: winbox: router https://192.168.88.1: dropped: not sent: it waited in the queue past the door's retry time\n"
        );

        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(out.clone()), true, true);
        log.router(AT, &added);
        log.router(AT, &report(Outcome::RefusedAgain));
        let text = marked(&String::from_utf8(out.0.lock().unwrap().clone()).unwrap());
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"time": "2026-11-18T11:06:40.123Z", "door": "winbox", "src": "192.0.2.7", "event": "granted", "router": "https://192.168.88.1", "detail": "added to list knocked with timeout 1h (*1)"})
        );
        assert_eq!(
            lines[1]["message"],
            "winbox: router https://192.168.88.1: refused again (said above)"
        );
    }

    #[test]
    fn a_full_disk_loses_lines_but_does_not_fail() {
        let mut log = Log::to_writer(Box::new(Full), false, false);
        for _ in 0..3 {
            log.event(AT, "ssh", "192.0.2.7".parse().unwrap(), EventKind::Open);
        }
        assert_eq!(log.lost, 3);
    }

    /// Fails while `full` is set, as a disk that fills and is then cleaned.
    struct Filling(Arc<Mutex<bool>>, Shared);
    impl Write for Filling {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if *self.0.lock().unwrap() {
                return Err(io::Error::from_raw_os_error(28));
            }
            self.1.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn after_a_full_disk_lines_resume_whole_and_the_lost_ones_are_counted() {
        let full = Arc::new(Mutex::new(false));
        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(Filling(full.clone(), out.clone())), false, false);
        log.note(AT, "one");
        *full.lock().unwrap() = true;
        log.note(AT, "two");
        log.note(AT, "three");
        *full.lock().unwrap() = false;
        log.note(AT, "four");
        assert_eq!((log.lost, log.failing), (2, 0));
        let text = marked(&String::from_utf8(out.0.lock().unwrap().clone()).unwrap());
        assert_eq!(
            text, "[AT] one\n[AT] four\n",
            "nothing of the lost lines comes back later"
        );
    }

    #[test]
    fn a_reopen_after_a_move_sends_the_next_lines_to_a_new_file_and_none_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (path, moved) = (
            dir.path().join("knockd.log"),
            dir.path().join("knockd.log.1"),
        );
        let mut log = Log::file(&path, false, false).unwrap();
        log.note(AT, "one");
        std::fs::rename(&path, &moved).unwrap();
        log.note(AT, "two: after the move, before the reopen");
        assert_eq!(log.reopen().unwrap(), Reopened::File(path.clone()));
        log.note(AT, "three");
        assert_eq!(
            marked(&std::fs::read_to_string(&moved).unwrap()),
            "[AT] one\n[AT] two: after the move, before the reopen\n"
        );
        assert_eq!(
            marked(&std::fs::read_to_string(&path).unwrap()),
            "[AT] three\n"
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o007,
            0,
            "others cannot read it, as with the first open"
        );
    }

    #[test]
    fn a_reopen_that_fails_keeps_the_old_file_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let path = logs.join("knockd.log");
        let mut log = Log::file(&path, false, false).unwrap();
        let moved = dir.path().join("knockd.log.1");
        std::fs::rename(&path, &moved).unwrap();
        // The directory is gone: the path cannot be created again, whoever we are.
        std::fs::remove_dir(&logs).unwrap();
        let err = log.reopen().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot reopen the log file {}: ", path.display()))
                && err.ends_with("; lines keep going to the file it had open"),
            "{err}"
        );
        log.note(AT, "still written");
        assert_eq!(
            marked(&std::fs::read_to_string(&moved).unwrap()),
            "[AT] still written\n"
        );
        assert_eq!(log.lost, 0);
    }

    #[test]
    fn stderr_syslog_and_writers_have_nothing_to_reopen() {
        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(out.clone()), false, false);
        assert_eq!(log.reopen().unwrap(), Reopened::NoFile);
        log.note(AT, "same writer");
        assert_eq!(
            marked(&String::from_utf8(out.0.lock().unwrap().clone()).unwrap()),
            "[AT] same writer\n"
        );
        assert_eq!(
            Log::stderr(false, false).reopen().unwrap(),
            Reopened::NoFile
        );
    }

    #[test]
    fn text_stamps_read_as_knockd_prints_them() {
        assert_eq!(civil_stamp(&utc(AT)), "[2026-11-18 11:06]");
        let new_year = Civil {
            year: 2027,
            month: 1,
            day: 2,
            hour: 3,
            minute: 4,
        };
        assert_eq!(civil_stamp(&new_year), "[2027-01-02 03:04]");
    }

    #[test]
    fn syslog_with_no_daemon_listening_says_so_once_and_keeps_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("log");
        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(out.clone()), false, false);
        log.add_syslog_at(AT, &absent);
        assert!(
            !log.syslog,
            "lines are not handed to a syslog that drops them"
        );
        log.note(AT, "kept");
        assert_eq!(
            marked(&String::from_utf8(out.0.lock().unwrap().clone()).unwrap()),
            format!(
                "[AT] no syslog daemon listens at {}: log lines go to the log file only\n[AT] kept\n",
                absent.display()
            )
        );

        let mut log = Log {
            sink: None,
            ..Log::to_writer(Box::new(io::sink()), false, false)
        };
        log.add_syslog_at(AT, &absent);
        assert!(log.sink.is_some(), "syslog alone falls back to stderr");
    }

    #[test]
    fn syslog_is_used_when_a_daemon_listens() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("log");
        let _daemon = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
        let out = Shared::default();
        let mut log = Log::to_writer(Box::new(out.clone()), false, false);
        log.add_syslog_at(AT, &socket);
        assert!(log.syslog);
        assert!(out.0.lock().unwrap().is_empty(), "no warning");
    }
}
