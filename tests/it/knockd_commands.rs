//! `knockr knockd`'s start and stop commands live, as root in network
//! namespaces made by the test: a command's status as soon as it exits, its
//! whole process group killed at its time limit, one knocker's commands in
//! order, and at most `max_commands` at once under a flood of completions.
//! Under CI=true these tests must run; elsewhere without root they skip.
#![cfg(feature = "server")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::PATIENCE;
use crate::support::netns::{Net, can_run, sh};

/// Writes `text` as `DIR/knockd.toml`.
fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("knockd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The lines of `path` (none if it does not exist yet).
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits up to `within` until `done` holds for the lines of `path`.
fn wait_lines(path: &Path, within: Duration, what: &str, done: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let now = lines(path);
        if done(&now) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}; {} holds {now:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a process that has not ended (a zombie has ended).
fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command's name in parentheses.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    state.is_some_and(|s| s != 'Z' && s != 'X')
}

/// The process ids written one a line to `path`.
fn pids(path: &Path) -> Vec<i32> {
    lines(path)
        .iter()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Before, a shell that put a child in the background (which kept its
/// stderr) was logged "killed after 60s": knockd read stderr to an end the
/// child held. And a command past its time limit had only itself killed:
/// what it had started lived on.
#[test]
fn a_backgrounding_shell_is_logged_exit_0_at_once_and_a_timed_out_commands_group_is_killed() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let config = format!(
        "[knockd]\nmax_command_time = \"2s\"\n\
         [[door]]\nname = \"bg\"\nsequence = [\"7000:udp\", \"8000:udp\"]\n\
         start = [\"/bin/sh\", \"-c\", \"sleep 30 & echo $! > {d}/bg.pid; exit 0\"]\n\
         [[door]]\nname = \"hang\"\nsequence = [\"7100:udp\", \"8100:udp\"]\n\
         start = [\"/bin/sh\", \"-c\", \"sleep 600 & echo $! > {d}/hang.pids; \
         sh -c 'sleep 600' & echo $! >> {d}/hang.pids; wait\"]\n"
    );
    let mut server = net.server(&write_config(dir.path(), &config));
    let me = net.v4(2);

    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7000:udp,8000:udp", &net.v4(1)]),
        Some(0)
    );
    // Well before the background child's 30 s, let alone the 2 s limit's kill.
    server.expect(&format!(
        "bg: start command for {me} finished (exit status 0)"
    ));
    let bg = pids(&dir.path().join("bg.pid"));
    assert!(
        bg.iter().all(|&pid| alive(pid)),
        "a background child that outlives its command is its own business"
    );

    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7100:udp,8100:udp", &net.v4(1)]),
        Some(0)
    );
    server.expect(
        "hang: command returned non-zero status code (killed after 2s with its process group)",
    );
    let hang_pids = dir.path().join("hang.pids");
    let hang = pids(&hang_pids);
    assert_eq!(hang.len(), 2, "{hang:?}");
    // Killed with SIGKILL; their new parent reaps them a moment later.
    let deadline = Instant::now() + PATIENCE;
    while hang.iter().any(|&pid| alive(pid)) {
        assert!(
            Instant::now() < deadline,
            "the timed-out command's children still run: {hang:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    for pid in bg {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// A door whose start and stop each record their beginning and end in
/// `DIR/ran` and take `[start, stop]` seconds in between.
fn slow_door(dir: &Path, name: &str, ports: &str, secs: [u32; 2], cmd_timeout: &str) -> String {
    let ran = dir.join("ran").display().to_string();
    let command = |kind: &str, secs: u32| {
        format!(
            "[\"/bin/sh\", \"-c\", \"echo {kind}-begin {name} >> {ran}; sleep {secs}; \
             echo {kind}-end {name} >> {ran}\"]"
        )
    };
    format!(
        "[[door]]\nname = \"{name}\"\nsequence = {ports}\nstart = {}\nstop = {}\n\
         cmd_timeout = \"{cmd_timeout}\"\n",
        command("start", secs[0]),
        command("stop", secs[1])
    )
}

/// What `DIR/ran` says door `name` did, in order.
fn done_by(ran: &[String], name: &str) -> Vec<String> {
    ran.iter()
        .filter_map(|l| l.strip_suffix(&format!(" {name}")))
        .map(str::to_string)
        .collect()
}

/// Before, a stop began at its due time (or at SIGTERM) while its slow
/// start still ran, so the start's rule went in after the stop had run and
/// the hole stayed open; and a knock during a slow stop began a start that
/// the stop then undid.
#[test]
fn a_slow_start_finishes_before_its_stop_at_cmd_timeout_and_at_sigterm() {
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}{}",
        slow_door(
            dir.path(),
            "short",
            "[\"7000:udp\", \"8000:udp\"]",
            [3, 1],
            "2s"
        ),
        slow_door(
            dir.path(),
            "long",
            "[\"7100:udp\", \"8100:udp\"]",
            [2, 1],
            "60s"
        )
    );
    let mut server = net.server(&write_config(dir.path(), &config));
    let ran = dir.path().join("ran");
    let short = || net.knock(&["-d", "50ms", "-p", "7000:udp,8000:udp", &net.v4(1)]);

    // The stop falls due 2 s in, while the 3 s start runs.
    assert_eq!(short(), Some(0));
    wait_lines(&ran, PATIENCE, "the first stop beginning", |l| {
        done_by(l, "short").contains(&"stop-begin".to_string())
    });
    // Knocked again while that 1 s stop runs: this start waits for it (and
    // its own stop, due 2 s after the knock, for the start).
    assert_eq!(short(), Some(0));
    let both = Duration::from_secs(30);
    wait_lines(&ran, both, "the second stop ending", |l| {
        done_by(l, "short")
            .iter()
            .filter(|w| *w == "stop-end")
            .count()
            == 2
    });
    let round = ["start-begin", "start-end", "stop-begin", "stop-end"];
    assert_eq!(done_by(&lines(&ran), "short"), [round, round].concat());

    // SIGTERM while the start runs: its stop runs after it, before the exit.
    assert_eq!(
        net.knock(&["-d", "50ms", "-p", "7100:udp,8100:udp", &net.v4(1)]),
        Some(0)
    );
    wait_lines(&ran, PATIENCE, "the long door's start", |l| {
        done_by(l, "long").contains(&"start-begin".to_string())
    });
    server.expect("long: running start command");
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    assert_eq!(done_by(&lines(&ran), "long"), round, "{}", log.join("\n"));
}

/// Sends one UDP datagram to `target`:7000 from each of `count` distinct
/// addresses of 10.99.0.0/16, which the client namespace takes as its own
/// (a local route: no address is configured one by one).
fn flood_from_distinct_sources(net: &Net, target: String, count: u16) {
    sh(&[
        "ip",
        "-n",
        &net.cli,
        "route",
        "add",
        "local",
        "10.99.0.0/16",
        "dev",
        "lo",
    ]);
    net.in_client(move || {
        // The server's MAC address is known before the flood, so none of it
        // waits in the kernel's small queue for an ARP answer.
        let warm = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        warm.send_to(&[0], (target.as_str(), 9)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        for i in 0..count {
            let src = std::net::Ipv4Addr::new(10, 99, (i / 250) as u8, (i % 250 + 1) as u8);
            let socket = std::net::UdpSocket::bind((src, 0)).unwrap();
            socket.send_to(&[0], (target.as_str(), 7000)).unwrap();
        }
    });
}

/// Before, every completion started its command at once: 1000 forged UDP
/// completions made 1000 `sleep` processes, and SIGTERM then waited for all
/// of them and their stops.
#[test]
fn a_flood_of_completions_runs_at_most_max_commands_at_once_and_every_start_that_ran_gets_its_stop()
{
    if !can_run() {
        return;
    }
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Counts the commands running (under a lock), records the count each
    // one saw when it began, and what ran for whom.
    let record = dir.path().join("record.sh");
    std::fs::write(
        &record,
        format!(
            "#!/bin/sh\nexec 9>>{d}/lock\n\
             flock 9; n=$(( $(cat {d}/count 2>/dev/null || echo 0) + 1 )); echo $n > {d}/count\n\
             echo $n >> {d}/seen; echo \"begin $1 $2\" >> {d}/ran; flock -u 9\n\
             sleep $3\n\
             flock 9; echo $(( $(cat {d}/count) - 1 )) > {d}/count; echo \"end $1 $2\" >> {d}/ran\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = record.display();
    let config = format!(
        "[knockd]\nmax_commands = 4\n[[door]]\nname = \"flood\"\nsequence = [\"7000:udp\"]\n\
         start = [\"{r}\", \"start\", \"%IP%\", \"2\"]\nstop = [\"{r}\", \"stop\", \"%IP%\", \"0\"]\n\
         cmd_timeout = \"60s\"\n"
    );
    let mut server = net.server(&write_config(dir.path(), &config));
    // 4 running and 1024 waiting: the last ~270 of these are dropped.
    flood_from_distinct_sources(&net, net.v4(1), 1300);
    server.expect("start commands dropped so far: 1024 commands already wait for one of 4 running (max_commands)");
    let ran = dir.path().join("ran");
    wait_lines(&ran, PATIENCE, "four starts", |l| {
        l.iter().filter(|l| l.starts_with("begin start ")).count() >= 4
    });
    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{}", log.join("\n"));
    let log = log.join("\n");

    let seen: Vec<u32> = lines(&dir.path().join("seen"))
        .iter()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert!(
        seen.iter().all(|&n| (1..=4).contains(&n)),
        "more than 4 commands ran at once: {seen:?}"
    );
    let ran = lines(&ran);
    let whom = |prefix: &str| -> BTreeSet<String> {
        ran.iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
            .collect()
    };
    let started = whom("begin start ");
    assert!(started.len() >= 4, "{ran:?}");
    assert!(
        started.len() < 100,
        "SIGTERM dropped the waiting starts: {ran:?}"
    );
    assert_eq!(
        whom("end start "),
        started,
        "every start began ran to its end"
    );
    assert_eq!(
        whom("end stop "),
        started,
        "every start that ran got its stop, and only those"
    );
    // Counted, a line at each power of two: not one a drop.
    let drop_lines = log.matches("start commands dropped so far").count();
    assert!((1..=12).contains(&drop_lines), "{drop_lines} lines:\n{log}");
    assert!(
        log.contains(" start command(s) that had not begun dropped ("),
        "{log}"
    );
}
