//! `knockr knockd` and its signals, live as root in namespaces the tests
//! make: logrotate's way of rotating (move the file, then SIGUSR1 or SIGHUP)
//! sends the next lines to a new file and loses none; knockd keeps running,
//! and SIGTERM still ends it cleanly. Under CI=true these tests must run;
//! elsewhere without root they skip, saying why.
#![cfg(feature = "server")]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::PATIENCE;
use crate::support::netns::{Net, Server, can_run, sh};

/// A door opened by two UDP knocks (`ports`), recording its commands in `DIR/ran`.
fn door(dir: &Path, name: &str, ports: [u16; 2]) -> String {
    format!(
        "[[door]]\nname = \"{name}\"\nsequence = [\"{}:udp\", \"{}:udp\"]\n\
         start = [\"/bin/sh\", \"-c\", \"echo start {name} %IP% >> {2}/ran\"]\n\
         stop = [\"/bin/sh\", \"-c\", \"echo stop {name} %IP% >> {2}/ran\"]\ncmd_timeout = \"60s\"\n",
        ports[0],
        ports[1],
        dir.display()
    )
}

const FIRST: [u16; 2] = [7000, 8000];
const SECOND: [u16; 2] = [7100, 8100];

/// Knocks `ports` from `source` (an address of the client namespace) at the server.
fn knock(net: &Net, source: &str, ports: [u16; 2]) {
    let (source, target) = (source.to_string(), net.v4(1));
    net.in_client(move || {
        let socket = UdpSocket::bind((source.as_str(), 0)).unwrap();
        for port in ports {
            socket.send_to(&[0], (target.as_str(), port)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

/// What `path` holds once it has a line containing `needle` (panics after `PATIENCE`).
fn wait_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(server: &Server, signal: i32) {
    // SAFETY: kill with a child's pid we own.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, signal) }, 0);
}

fn opened(source: &str) -> String {
    format!("] {source}: udp: OPEN SESAME")
}

fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// The paths one rotation test uses: the log, where logrotate moves it, the pid file.
struct Files {
    log: PathBuf,
    moved: PathBuf,
    pid: PathBuf,
    config: PathBuf,
}

impl Files {
    fn new(dir: &Path) -> Files {
        Files {
            log: dir.join("knockd.log"),
            moved: dir.join("knockd.log.1"),
            pid: dir.join("knockd.pid"),
            config: dir.join("knockd.toml"),
        }
    }

    fn write_config(&self, doors: &str) {
        let text = format!(
            "[knockd]\nlog_file = \"{}\"\npid_file = \"{}\"\n{doors}",
            self.log.display(),
            self.pid.display()
        );
        std::fs::write(&self.config, text).unwrap();
    }
}

/// Serves with one door, knocks from a first source, moves the log away and
/// knocks from a second, then sends `rotate` (after `before_signal`) and
/// waits for the new file; returns the server and the client sources.
fn rotate(
    net: &Net,
    dir: &Path,
    files: &Files,
    rotate: i32,
    before_signal: impl FnOnce(),
) -> (Server, Vec<String>) {
    let sources = net.client_addresses(3);
    files.write_config(&door(dir, "udp", FIRST));
    let server = net.start_server(&files.config);
    wait_file(&files.log, "listening: 1 doors");
    knock(net, &sources[0], FIRST);
    wait_file(&files.log, &opened(&sources[0]));
    std::fs::rename(&files.log, &files.moved).unwrap();
    // Written after the move, before the signal: into the moved file.
    knock(net, &sources[1], FIRST);
    wait_file(&files.moved, &opened(&sources[1]));
    wait_file(&dir.join("ran"), &format!("start udp {}", sources[1]));
    before_signal();
    signal(&server, rotate);
    wait_file(&files.log, "reopened the log file");
    (server, sources)
}

/// Checks the two files after a rotation and a SIGTERM: the moved one has
/// every line up to the signal, the new one starts with the reopen and has
/// every line after it, and no line is in both or in neither.
fn check_split(files: &Files, sources: &[String]) -> (String, String) {
    let old = std::fs::read_to_string(&files.moved).unwrap();
    let new = std::fs::read_to_string(&files.log).unwrap();
    let both = format!("{old}{new}");
    assert!(old.contains("listening: 1 doors"), "{old}");
    for (i, source) in sources.iter().enumerate() {
        let (in_old, in_new) = (count(&old, &opened(source)), count(&new, &opened(source)));
        let expected = if i < 2 { (1, 0) } else { (0, 1) };
        assert_eq!(
            (in_old, in_new),
            expected,
            "{source}'s opening: old file:\n{old}\nnew file:\n{new}"
        );
        assert_eq!(
            count(&both, &format!("] {source}: ")),
            // Its two stages (-v), its opening, and its closing at SIGTERM.
            4,
            "{source}: old file:\n{old}\nnew file:\n{new}"
        );
    }
    assert_eq!(
        count(&old, "running start command"),
        2,
        "the starts before the signal are in the moved file:\n{old}"
    );
    assert!(!old.contains("reopened"), "{old}");
    assert!(
        new.lines()
            .next()
            .is_some_and(|l| l.contains(&format!("reopened the log file {}", files.log.display()))),
        "the new file starts with the reopen, nothing before it:\n{new}"
    );
    assert!(
        new.contains("stopping: running 3 pending stop command(s)"),
        "{new}"
    );
    (old, new)
}

#[test]
fn sigusr1_after_moving_the_log_sends_new_lines_to_a_new_file_and_loses_none() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let files = Files::new(dir.path());
    // Today's main: SIGUSR1 killed knockd at once, no stop run, pid file left.
    let (server, sources) = rotate(&net, dir.path(), &files, libc::SIGUSR1, || {});
    knock(&net, &sources[2], FIRST);
    wait_file(&files.log, &opened(&sources[2]));

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    assert!(!files.pid.exists(), "the pid file is removed at exit");
    let (_, new) = check_split(&files, &sources);
    assert!(!new.contains("reloaded"), "SIGUSR1 only reopens:\n{new}");
    let ran = std::fs::read_to_string(dir.path().join("ran")).unwrap();
    for source in &sources {
        assert_eq!(count(&ran, &format!("stop udp {source}")), 1, "{ran}");
    }
}

#[test]
fn sighup_after_moving_the_log_reopens_it_before_reloading_and_loses_no_line() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let files = Files::new(dir.path());
    let doors = format!(
        "{}{}",
        door(dir.path(), "udp", FIRST),
        door(dir.path(), "second", SECOND)
    );
    let (server, sources) = rotate(&net, dir.path(), &files, libc::SIGHUP, || {
        files.write_config(&doors)
    });
    let new = wait_file(&files.log, "reloaded");
    let at = |needle: &str| new.find(needle).unwrap();
    assert!(
        at("reopened the log file") < at(&format!("reloaded {}: 2 doors", files.config.display())),
        "the reload's lines land in the new file:\n{new}"
    );
    // The reload happened: the new door opens, the old knockers stay open.
    knock(&net, &sources[2], SECOND);
    wait_file(
        &files.log,
        &format!("] {}: second: OPEN SESAME", sources[2]),
    );
    wait_file(
        &dir.path().join("ran"),
        &format!("start second {}", sources[2]),
    );

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    assert!(!files.pid.exists(), "the pid file is removed at exit");
    let old = std::fs::read_to_string(&files.moved).unwrap();
    let new = std::fs::read_to_string(&files.log).unwrap();
    assert!(!old.contains("reloaded"), "{old}");
    for source in &sources[..2] {
        assert_eq!(count(&old, &opened(source)), 1, "{old}");
        assert_eq!(count(&new, &opened(source)), 0, "{new}");
        assert_eq!(
            count(&new, &format!("] {source}: udp: closing")),
            1,
            "{new}"
        );
    }
    assert_eq!(
        count(&new, &format!("] {}: second: closing", sources[2])),
        1,
        "{new}"
    );
    assert!(
        new.lines()
            .next()
            .is_some_and(|l| l.contains("reopened the log file")),
        "{new}"
    );
    assert!(
        new.contains("stopping: running 3 pending stop command(s)"),
        "{new}"
    );
}

/// After `user =` dropped root, a directory only root may write cannot
/// take a new log file: the reopen fails, says so (in the old file and on
/// stderr), and lines keep going to the old file. A file made for the user
/// first (logrotate's `create`, as `contrib/logrotate/knockr` does) is
/// reopened.
#[test]
fn after_dropping_root_a_refused_reopen_keeps_the_old_file_and_a_created_one_is_used() {
    if !can_run() {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let net = Net::new();
    let sources = net.client_addresses(2);
    let dir = tempfile::tempdir().unwrap();
    // Commands run as nobody and record what ran here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    // Only root may make files in logs/, as in /var/log.
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (log, moved) = (logs.join("knockd.log"), logs.join("knockd.log.1"));
    let config = dir.path().join("knockd.toml");
    std::fs::write(
        &config,
        format!(
            "[knockd]\nuser = \"nobody\"\nlog_file = \"{}\"\n{}",
            log.display(),
            door(dir.path(), "udp", FIRST)
        ),
    )
    .unwrap();
    let mut server = net.start_server(&config);
    wait_file(&log, "listening: 1 doors");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("now running as nobody")
    );

    std::fs::rename(&log, &moved).unwrap();
    signal(&server, libc::SIGUSR1);
    let refused = format!(
        "cannot reopen the log file {}: Permission denied",
        log.display()
    );
    server.expect(&refused);
    wait_file(&moved, &refused);
    knock(&net, &sources[0], FIRST);
    wait_file(&moved, &opened(&sources[0]));
    assert!(!log.exists(), "nobody cannot create it");

    // As logrotate's `create 0640 nobody root` would.
    std::fs::write(&log, "").unwrap();
    sh(&["chown", "nobody", log.to_str().unwrap()]);
    signal(&server, libc::SIGUSR1);
    wait_file(&log, "reopened the log file");
    knock(&net, &sources[1], FIRST);
    wait_file(&log, &opened(&sources[1]));

    let (status, stderr) = server.terminate();
    assert_eq!(status, Some(0), "{}", stderr.join("\n"));
    let old = std::fs::read_to_string(&moved).unwrap();
    let new = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        count(&old, &refused),
        1,
        "said once, in the old file:\n{old}"
    );
    assert_eq!(
        (
            count(&old, &opened(&sources[1])),
            count(&new, &opened(&sources[0]))
        ),
        (0, 0),
        "old file:\n{old}\nnew file:\n{new}"
    );
    assert!(
        new.contains("stopping: running 2 pending stop command(s)"),
        "{new}"
    );
}

/// The shipped `contrib/logrotate/knockr`, run by logrotate itself on a
/// log of the test's: it moves the file, creates the new one and signals
/// knockd through the pid file; the lines split at the signal.
#[test]
fn the_contrib_logrotate_snippet_rotates_a_running_knockds_log() {
    if !crate::support::netns::can_run_with(&["logrotate"]) {
        return;
    }
    let net = Net::new();
    let sources = net.client_addresses(2);
    let dir = tempfile::tempdir().unwrap();
    let files = Files::new(dir.path());
    files.write_config(&door(dir.path(), "udp", FIRST));
    let snippet = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/logrotate/knockr"),
    )
    .unwrap();
    for shipped in ["/var/log/knockr.log", "/run/knockr-knockd.pid"] {
        assert!(snippet.contains(shipped), "{snippet}");
    }
    let snippet = snippet
        .replace("/var/log/knockr.log", files.log.to_str().unwrap())
        .replace("/run/knockr-knockd.pid", files.pid.to_str().unwrap())
        // Never a real knockd this machine may run.
        .replace("knockr-knockd.service", "knockr-test-absent.service");
    let rotate_config = dir.path().join("logrotate.conf");
    std::fs::write(&rotate_config, snippet).unwrap();

    let server = net.start_server(&files.config);
    wait_file(&files.log, "listening: 1 doors");
    knock(&net, &sources[0], FIRST);
    wait_file(&files.log, &opened(&sources[0]));
    let state = dir.path().join("logrotate.state");
    sh(&[
        crate::support::netns::which("logrotate")
            .unwrap()
            .to_str()
            .unwrap(),
        "-f",
        "-s",
        state.to_str().unwrap(),
        rotate_config.to_str().unwrap(),
    ]);
    wait_file(&files.log, "reopened the log file");
    knock(&net, &sources[1], FIRST);
    wait_file(&files.log, &opened(&sources[1]));

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let old = std::fs::read_to_string(&files.moved).unwrap();
    let new = std::fs::read_to_string(&files.log).unwrap();
    assert_eq!(
        (
            count(&old, &opened(&sources[0])),
            count(&old, &opened(&sources[1]))
        ),
        (1, 0),
        "{old}"
    );
    assert_eq!(
        (
            count(&new, &opened(&sources[0])),
            count(&new, &opened(&sources[1]))
        ),
        (0, 1),
        "{new}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&files.log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "created as the snippet says");
}

/// Logging to stderr there is no file to reopen: SIGUSR1 and SIGHUP say so
/// (`-v`) and change nothing else; an open knocker still gets its stop.
#[test]
fn logging_to_stderr_a_reopen_is_a_no_op_said_with_v() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("knockd.toml");
    std::fs::write(&config, door(dir.path(), "udp", FIRST)).unwrap();
    let mut server = net.server(&config);
    knock(&net, &net.v4(2), FIRST);
    server.expect(&opened(&net.v4(2)));
    signal(&server, libc::SIGUSR1);
    server.expect("no log file to reopen: logging to stderr or syslog only");
    signal(&server, libc::SIGHUP);
    server.expect("reloaded");

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    assert_eq!(
        count(&log.join("\n"), "no log file to reopen"),
        2,
        "once per signal:\n{}",
        log.join("\n")
    );
    let ran = std::fs::read_to_string(dir.path().join("ran")).unwrap();
    assert_eq!(count(&ran, &format!("stop udp {}", net.v4(2))), 1, "{ran}");
}
